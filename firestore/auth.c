/*
 * auth.c - the access-token provider: emulator, service-account key, GCE metadata (see auth.h).
 *
 * Owns the current bearer token and its lifecycle: choosing where tokens come from, fetching
 * them through http.h without ever blocking the loop, refreshing them ahead of expiry from one
 * uv_timer_t, retrying failures with jittered exponential backoff on that same timer, and telling
 * the owner (the WebChannel transport, the REST reads) through two callbacks. The signing and the
 * parsing of token replies are jwt.c's; this file adds the network, the clock and the policy.
 *
 * It is kept apart from the transport because it is where secrets live: the token, the JWT
 * assertion and the raw token reply all pass through here and nowhere else. Each is held in a
 * buffer reserved up front (so no realloc leaves copies behind) and wiped with explicit_bzero as
 * soon as it has served; tokens are registered with log_secret_add() the moment they arrive, and
 * every error text goes through log_scrub() before it is logged or handed to on_error.
 */
#include "firestore/auth.h"

#include "common/log.h"
#include "common/xalloc.h"
#include "firestore/jwt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Room reserved for the JWT, the form body and the token reply: real ones are 1-2 KB. */
#define SECRET_RESERVE 8192
/* Hard cap on the JWT and the form body built from it. */
#define FORM_MAX ((size_t)16 << 10)
/* The connection part of a fetch never waits longer than this. */
#define CONNECT_TIMEOUT_MS 10000L

struct fsauth {
    uv_loop_t *loop;
    http_client *http;
    enum fsauth_mode mode;
    struct fsauth_callbacks cb;
    void *ud;

    struct fsauth_key *key; /* service-account mode: the loaded key */
    char *url;              /* token_uri or the metadata URL */
    char *label;            /* "token endpoint https://host/path" for messages: no query */

    char *token;           /* the current token (a registered secret), or NULL */
    uint64_t expires_loop; /* loop time (ms) at which it expires; unused in emulator mode */
    int64_t expires_at;    /* Unix ms at which it expires; 0: none or never */
    http_request *req;     /* the fetch in flight, or NULL */
    buf reply;             /* its body so far; wiped after each fetch */
    bool flavor_ok;        /* metadata: the reply carried "Metadata-Flavor: Google" */
    unsigned failures;     /* consecutive failed fetches */
    uint64_t rng;          /* jitter state (xorshift64) */
    int64_t backoff_base_ms, backoff_max_ms;
    long timeout_ms;

    uv_timer_t timer; /* refresh, retry, and the emulator's deferred on_token */
    bool started, closing, closed, free_on_close;
};

/* ---- pure helpers ------------------------------------------------------------------------- */

enum fsauth_mode fsauth_mode_select(const struct cfg_firestore *cfg)
{
    if (cfg->emulator_host && cfg->emulator_host[0])
        return FSAUTH_EMULATOR;
    if (cfg->credentials_file && cfg->credentials_file[0])
        return FSAUTH_SERVICE_ACCOUNT;
    return FSAUTH_METADATA;
}

const char *fsauth_mode_name(enum fsauth_mode m)
{
    switch (m) {
    case FSAUTH_EMULATOR:
        return "emulator";
    case FSAUTH_SERVICE_ACCOUNT:
        return "service-account";
    case FSAUTH_METADATA:
        return "metadata";
    }
    return "unknown";
}

/* A port of 1 to 5 digits, 1..65535. */
static bool port_ok(const char *p)
{
    long v = 0;
    size_t n = 0;

    for (; p[n]; n++) {
        if (p[n] < '0' || p[n] > '9' || n >= 5)
            return false;
        v = v * 10 + (p[n] - '0');
    }
    return n > 0 && v >= 1 && v <= 65535;
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port" (or a bare IPv6 literal, which has no port)
 * into host (n bytes, NUL-terminated); *has_port tells whether a valid port followed. */
static bool split_host_port(const char *hp, char *host, size_t n, bool *bracketed, bool *has_port)
{
    const char *start = hp, *port = NULL, *colon;
    size_t len;

    *bracketed = *has_port = false;
    if (!hp || !hp[0])
        return false;
    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (!end)
            return false;
        start = hp + 1;
        len = (size_t)(end - start);
        if (end[1] == ':')
            port = end + 2;
        else if (end[1])
            return false;
        *bracketed = true;
    } else if ((colon = strchr(hp, ':')) && !strchr(colon + 1, ':')) {
        len = (size_t)(colon - hp);
        port = colon + 1;
    } else {
        len = strlen(hp); /* no colon, or a bare IPv6 literal */
    }
    if (len == 0 || len >= n || (port && !port_ok(port)))
        return false;
    memcpy(host, start, len);
    host[len] = '\0';
    *has_port = port != NULL;
    return true;
}

static bool loopback_name(const char *host, bool bracketed)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (!bracketed && strcasecmp(host, "localhost") == 0)
        return true;
    if (!bracketed && inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

bool fsauth_host_is_loopback(const char *hostport)
{
    char host[256];
    bool bracketed, has_port;

    return split_host_port(hostport, host, sizeof(host), &bracketed, &has_port) &&
           loopback_name(host, bracketed);
}

int fsauth_emulator_check(const char *hostport, fserr *e)
{
    char host[256];
    bool bracketed, has_port;

    if (!split_host_port(hostport, host, sizeof(host), &bracketed, &has_port) || !has_port)
        return fserr_set(e, FS_ECONFIG,
                         "firestore.emulator_host \"%.200s\" is not host:port (an IPv6 address "
                         "goes in brackets: [::1]:8080)",
                         hostport ? hostport : "");
    if (!loopback_name(host, bracketed))
        return fserr_set(e, FS_ECONFIG,
                         "firestore.emulator_host \"%.200s\" is not a loopback host: the emulator "
                         "speaks plain HTTP and takes the admin token, so firesync talks only to "
                         "one on 127.0.0.0/8, ::1 or localhost (run the agent beside the emulator "
                         "or tunnel its port)",
                         hostport);
    return 0;
}

int64_t fsauth_refresh_delay_ms(int64_t expires_in_s)
{
    int64_t life, at80, before5, floor;

    if (expires_in_s <= 0)
        return 0;
    if (expires_in_s > INT64_MAX / 1000)
        expires_in_s = INT64_MAX / 1000;
    life = expires_in_s * 1000;
    at80 = life / 10 * 8 + (life % 10) * 8 / 10;
    before5 = life - 5 * 60 * 1000;
    floor = life / 2;
    at80 = before5 < at80 ? before5 : at80;
    return at80 < floor ? floor : at80;
}

int64_t fsauth_backoff_ms(unsigned n, int64_t base_ms, int64_t max_ms, uint64_t rnd)
{
    int64_t cap = base_ms > 0 ? base_ms : 1, half;

    if (max_ms < cap)
        max_ms = cap;
    for (unsigned i = 1; i < n && cap < max_ms; i++)
        cap = cap > max_ms / 2 ? max_ms : cap * 2;
    if (cap > max_ms)
        cap = max_ms;
    half = cap / 2;
    return half + (int64_t)(rnd % (uint64_t)(cap - half + 1));
}

int fsauth_metadata_url(const char *env_value, buf *out)
{
    const char *v = env_value && env_value[0] ? env_value : FSAUTH_METADATA_DEFAULT_BASE;
    const char *sep = strstr(v, "://"), *host = sep ? sep + 3 : v;
    size_t n = strlen(v), start = out->len;
    int rc;

    if (sep && strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0)
        return FS_EINVAL;
    if (n && v[n - 1] == '/' && sep)
        n--; /* "http://host/" */
    if ((size_t)(host - v) >= n)
        return FS_EINVAL; /* no host */
    for (const char *c = host; c < v + n; c++)
        if (*c <= ' ' || *c >= 0x7f || *c == '/' || *c == '?' || *c == '#' || *c == '@' ||
            *c == '\\')
            return FS_EINVAL;
    rc = sep ? 0 : buf_adds(out, "http://");
    if (!rc)
        rc = buf_add(out, v, n);
    if (!rc)
        rc = buf_adds(out, FSAUTH_METADATA_TOKEN_PATH);
    if (rc) {
        out->len = start; /* leave out as it was */
        if (out->p)
            out->p[start] = '\0';
    }
    return rc;
}

/* ---- secrets in buffers -------------------------------------------------------------------- */

/* Makes room for n bytes at once, so that filling b with a secret never reallocates (which
 * would leave a copy of its first part in freed memory). */
static void reserve(buf *b, size_t n)
{
    char *zeros = xcalloc(1, n);

    if (buf_add(b, zeros, n) == 0)
        buf_reset(b);
    free(zeros);
}

/* Wipes everything b ever held and empties it (the allocation stays). */
static void wipe_buf(buf *b)
{
    if (b->p)
        explicit_bzero(b->p, b->cap);
    buf_reset(b);
}

static void wipe_release(buf *b)
{
    wipe_buf(b);
    buf_release(b);
}

static void wipe_str(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_rand(struct fsauth *a)
{
    uint64_t x = a->rng;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return a->rng = x;
}

/* url without its query or fragment: the part that is safe to print. */
static char *url_label(const char *what, const char *url)
{
    size_t n = strcspn(url, "?#");

    return xasprintf("%s %.*s", what, (int)(n > 200 ? 200 : n), url);
}

/* Copies at most n - 1 printable ASCII bytes of p[0..len) into out, stopping at a line end. */
static void first_line(const char *p, size_t len, char *out, size_t n)
{
    size_t i = 0;

    for (; i < len && i + 1 < n && p[i] != '\r' && p[i] != '\n'; i++)
        out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    out[i] = '\0';
}

/* Replaces every run of 32 or more token characters (base64url and '.') in s with "[redacted]".
 * Access tokens and JWTs are such runs; words, host names and URLs are not (spaces, '/' and ':'
 * break them up). A last guard for text from the network, which might echo what we sent. */
static void redact_runs(char *s)
{
    static const char mark[] = "[redacted]";
    char *w = s;

    while (*s) {
        size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");
        if (n >= 32) {
            memcpy(w, mark, sizeof(mark) - 1);
            w += sizeof(mark) - 1;
        } else {
            memmove(w, s, n);
            w += n;
        }
        s += n;
        if (*s)
            *w++ = *s++;
    }
    *w = '\0';
}

/* ---- setup --------------------------------------------------------------------------------- */

static int setup_service_account(struct fsauth *a, const char *path, fserr *e)
{
    fserr ue = {0};
    int rc = fsauth_key_load(path, &a->key, e);

    if (rc)
        return fserr_prefix(e, "auth");
    a->url = xstrdup(fsauth_key_token_uri(a->key));
    a->label = url_label("token endpoint", a->url);
    if (http_check_url(a->url, &ue) != 0)
        return fserr_set(e, FS_ECONFIG,
                         "auth: service-account key file %s names a token_uri firesync will not "
                         "use (%s)",
                         path, ue.msg);
    return 0;
}

static int setup_metadata(struct fsauth *a, fserr *e)
{
    const char *env = getenv(FSAUTH_METADATA_ENV);
    fserr ue = {0};
    buf u;

    buf_init(&u, 4096);
    if (fsauth_metadata_url(env, &u) != 0) {
        buf_release(&u);
        return fserr_set(e, FS_ECONFIG,
                         "auth: %s \"%.200s\" is neither host[:port] nor an http(s) base URL",
                         FSAUTH_METADATA_ENV, env ? env : "");
    }
    a->url = buf_take(&u);
    a->label = url_label("metadata server", a->url);
    if (http_check_url(a->url, &ue) != 0)
        return fserr_set(e, FS_ECONFIG,
                         "auth: neither firestore.emulator_host nor firestore.credentials_file "
                         "is set, so tokens would come from the %s, but that URL is refused "
                         "(%s); set firestore.credentials_file (or GOOGLE_APPLICATION_CREDENTIALS) "
                         "to a service-account key file",
                         a->label, ue.msg);
    return 0;
}

/* Frees everything but the timer (which the caller closed, or never initialised). */
static void destroy(struct fsauth *a)
{
    wipe_str(a->token);
    wipe_release(&a->reply);
    fsauth_key_free(a->key);
    free(a->url);
    free(a->label);
    free(a);
}

int fsauth_new(uv_loop_t *loop, http_client *http, const struct cfg_firestore *cfg,
               const struct fsauth_callbacks *cb, void *ud, struct fsauth **out, fserr *e)
{
    struct fsauth *a;
    int rc = 0;

    if (!out)
        return fserr_set(e, FS_EINVAL, "auth: fsauth_new needs somewhere to put the provider");
    *out = NULL;
    if (!loop || !cfg)
        return fserr_set(e, FS_EINVAL, "auth: fsauth_new needs a loop and a configuration");
    a = xcalloc(1, sizeof(*a));
    a->loop = loop;
    a->http = http;
    a->mode = fsauth_mode_select(cfg);
    a->ud = ud;
    if (cb)
        a->cb = *cb;
    buf_init(&a->reply, FSAUTH_REPLY_MAX);
    if (a->mode == FSAUTH_EMULATOR)
        rc = fsauth_emulator_check(cfg->emulator_host, e);
    else if (a->mode == FSAUTH_SERVICE_ACCOUNT)
        rc = setup_service_account(a, cfg->credentials_file, e);
    else
        rc = setup_metadata(a, e);
    if (!rc && a->mode != FSAUTH_EMULATOR && !http)
        rc = fserr_set(e, FS_EINVAL, "auth: %s mode needs an HTTP client",
                       fsauth_mode_name(a->mode));
    if (!rc && (rc = uv_timer_init(loop, &a->timer)) != 0)
        rc = fserr_set(e, FS_EINTERNAL, "auth: cannot set up the refresh timer: %s",
                       uv_strerror(rc));
    if (rc) {
        destroy(a);
        return rc;
    }
    a->timer.data = a;
    reserve(&a->reply, SECRET_RESERVE);
    a->timeout_ms =
        cfg->request_timeout_ms > 0 ? (long)cfg->request_timeout_ms : FSAUTH_DEFAULT_TIMEOUT_MS;
    a->backoff_base_ms = FSAUTH_BACKOFF_BASE_MS;
    a->backoff_max_ms = FSAUTH_BACKOFF_MAX_MS;
    a->rng = uv_hrtime() ^ ((uint64_t)(uintptr_t)a << 16) ^ (uint64_t)getpid();
    if (!a->rng)
        a->rng = 0x9e3779b97f4a7c15ULL;
    *out = a;
    return 0;
}

/* ---- fetching ------------------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

/* Appends the JWT-bearer form body for a freshly signed assertion. */
static int build_form(struct fsauth *a, buf *form, fserr *e)
{
    buf jwt;
    int rc;

    buf_init(&jwt, FORM_MAX);
    reserve(&jwt, SECRET_RESERVE);
    rc = fsauth_jwt_sign(a->key, FSAUTH_SCOPE_DATASTORE, (int64_t)time(NULL), &jwt, e);
    if (!rc && (rc = fsauth_token_request_body(buf_str(&jwt), form)) != 0)
        fserr_set(e, rc, "auth: cannot build the token request body: %s", fserr_str(rc));
    wipe_release(&jwt);
    return rc;
}

static int on_reply_header(void *ud, const char *name, const char *value)
{
    struct fsauth *a = ud;

    if (strcasecmp(name, "Metadata-Flavor") == 0 && strcmp(value, "Google") == 0)
        a->flavor_ok = true;
    return 0;
}

static int on_reply_data(void *ud, long status, const char *p, size_t n)
{
    struct fsauth *a = ud;

    (void)status;
    return buf_add(&a->reply, p, n) ? FS_ETOOBIG : 0;
}

static void on_fetch_done(void *ud, const struct http_result *res);

/* Starts one fetch of a token (not in emulator mode); e is non-NULL. On failure no callback
 * will run. */
static int start_fetch(struct fsauth *a, fserr *e)
{
    static const char *const sa_headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                             "Accept: application/json", NULL};
    static const char *const md_headers[] = {"Metadata-Flavor: Google", NULL};
    bool sa = a->mode == FSAUTH_SERVICE_ACCOUNT;
    struct http_req_opts o = {0};
    buf form;
    int rc = 0;

    buf_init(&form, FORM_MAX);
    if (sa) {
        reserve(&form, SECRET_RESERVE);
        rc = build_form(a, &form, e);
    }
    if (!rc) {
        wipe_buf(&a->reply);
        a->flavor_ok = false;
        o.method = sa ? "POST" : "GET";
        o.url = a->url;
        o.headers = sa ? sa_headers : md_headers;
        o.body = sa ? form.p : NULL;
        o.body_len = sa ? form.len : 0;
        o.timeout_ms = a->timeout_ms;
        o.connect_timeout_ms =
            a->timeout_ms < CONNECT_TIMEOUT_MS ? a->timeout_ms : CONNECT_TIMEOUT_MS;
        o.body_cap = FSAUTH_REPLY_MAX;
        o.on_header = on_reply_header;
        o.on_data = on_reply_data;
        o.on_done = on_fetch_done;
        o.ud = a;
        a->req = http_request_new(a->http, &o, e);
        if (!a->req)
            rc = e->code ? e->code : fserr_set(e, FS_EHTTP, "%s: cannot start", a->label);
    }
    wipe_release(&form); /* http.h copied the body */
    return rc;
}

/* FS_E* for an HTTP status of a token reply: refusals are auth errors, overload is transient. */
static int status_code(long status)
{
    if (status == 400 || status == 401 || status == 403)
        return FS_EAUTH;
    if (status == 408 || status == 429 || status >= 500)
        return FS_EAGAIN;
    return FS_EHTTPSTATUS;
}

/* Describes a non-200 reply: the OAuth2 error text for the token endpoint (jwt.c sanitises it),
 * the first line of the body for the metadata server (which never saw a secret of ours). */
static int status_error(struct fsauth *a, long status, fserr *e)
{
    int code = status_code(status);
    char line[384] = "";
    fserr pe = {0};

    if (a->mode == FSAUTH_SERVICE_ACCOUNT && a->reply.len) {
        char *tok = NULL;
        int64_t life = 0;
        if (fsauth_token_response_parse(a->reply.p, a->reply.len, &tok, &life, &pe) == FS_EAUTH)
            snprintf(line, sizeof(line), "%s", pe.msg);
        wipe_str(tok);
    } else if (a->mode == FSAUTH_METADATA) {
        first_line(buf_str(&a->reply), a->reply.len, line, sizeof(line));
    }
    return fserr_set(e, code, "%s answered HTTP %ld%s%s", a->label, status, line[0] ? ": " : "",
                     line);
}

/* Reads the finished reply into a token; e is non-NULL. */
static int read_reply(struct fsauth *a, long status, char **token, int64_t *life, fserr *e)
{
    int rc;

    if (status != 200)
        return status_error(a, status, e);
    if (a->mode == FSAUTH_METADATA && !a->flavor_ok)
        return fserr_set(e, FS_EPROTO,
                         "%s answered without the \"Metadata-Flavor: Google\" header, so it is "
                         "not a GCE metadata server (check %s and proxies)",
                         a->label, FSAUTH_METADATA_ENV);
    rc = fsauth_token_response_parse(buf_str(&a->reply), a->reply.len, token, life, e);
    return rc ? fserr_prefix(e, "%s", a->label) : 0;
}

/* A fetch failed: schedule the retry, then tell the owner (who may close us from on_error). */
static void fetch_failed(struct fsauth *a, int rc, const fserr *e)
{
    int64_t delay;
    char raw[sizeof(e->msg) + 128], why[sizeof(raw)];

    a->failures++;
    delay = fsauth_backoff_ms(a->failures, a->backoff_base_ms, a->backoff_max_ms, next_rand(a));
    uv_timer_start(&a->timer, on_timer, (uint64_t)delay, 0);
    snprintf(raw, sizeof(raw), "auth (%s): %s; retry %u in %lld ms", fsauth_mode_name(a->mode),
             e->msg[0] ? e->msg : fserr_str(rc), a->failures, (long long)delay);
    log_scrub(raw, why, sizeof(why));
    redact_runs(why);
    if (!a->cb.on_error) {
        log_warn("%s", why);
        return;
    }
    log_debug("%s", why); /* the owner reports it */
    a->cb.on_error(a->ud, rc, why);
}

/* A new token (owned by us from now on): register it, replace and wipe the old one, schedule the
 * refresh, then tell the owner. */
static void install_token(struct fsauth *a, char *token, int64_t life_s)
{
    int64_t delay = fsauth_refresh_delay_ms(life_s);

    log_secret_add(token);
    wipe_str(a->token);
    a->token = token;
    a->expires_loop = uv_now(a->loop) + (uint64_t)life_s * 1000;
    a->expires_at = wall_ms() + life_s * 1000;
    a->failures = 0;
    uv_timer_start(&a->timer, on_timer, (uint64_t)delay, 0);
    log_info("auth (%s): new access token from the %s, valid %llds; refresh in %llds",
             fsauth_mode_name(a->mode),
             a->mode == FSAUTH_METADATA ? "metadata server" : "token endpoint", (long long)life_s,
             (long long)(delay / 1000));
    if (a->cb.on_token)
        a->cb.on_token(a->ud);
}

static void on_fetch_done(void *ud, const struct http_result *res)
{
    struct fsauth *a = ud;
    char *token = NULL;
    int64_t life = 0;
    fserr e = {0};
    int rc;

    a->req = NULL;
    if (res->rc)
        rc = fserr_set(&e, res->rc, "%s", res->err ? res->err->msg : fserr_str(res->rc));
    else
        rc = read_reply(a, res->status, &token, &life, &e);
    wipe_buf(&a->reply);
    if (rc)
        fetch_failed(a, rc, &e);
    else
        install_token(a, token, life);
}

static void on_timer(uv_timer_t *t)
{
    struct fsauth *a = t->data;
    fserr e = {0};
    int rc;

    if (a->mode == FSAUTH_EMULATOR) {
        if (a->cb.on_token)
            a->cb.on_token(a->ud); /* the deferred first (and only) notice */
        return;
    }
    if (a->req)
        return; /* a fetch is already under way */
    rc = start_fetch(a, &e);
    if (rc)
        fetch_failed(a, rc, &e);
}

/* ---- the public rest ----------------------------------------------------------------------- */

int fsauth_start(struct fsauth *a, fserr *e)
{
    fserr le = {0};
    int rc;

    if (!a)
        return fserr_set(e, FS_EINVAL, "auth: no provider");
    if (a->closing)
        return fserr_set(e, FS_ECANCELED, "auth: the provider is closed");
    if (a->started)
        return fserr_set(e, FS_EINVAL, "auth: the provider is already started");
    if (a->mode == FSAUTH_EMULATOR) {
        a->token = xstrdup(FSAUTH_EMULATOR_TOKEN);
        a->started = true;
        uv_timer_start(&a->timer, on_timer, 0, 0);
        log_info("auth (emulator): using the emulator's admin token");
        return 0;
    }
    rc = start_fetch(a, &le);
    if (rc)
        return fserr_set(e, rc, "auth (%s): %s", fsauth_mode_name(a->mode), le.msg);
    a->started = true;
    return 0;
}

void fsauth_set_backoff(struct fsauth *a, int64_t base_ms, int64_t max_ms)
{
    if (!a || base_ms <= 0)
        return;
    a->backoff_base_ms = base_ms;
    a->backoff_max_ms = max_ms < base_ms ? base_ms : max_ms;
}

bool fsauth_ready(const struct fsauth *a)
{
    if (!a || a->closing || !a->token)
        return false;
    return a->mode == FSAUTH_EMULATOR || uv_now(a->loop) < a->expires_loop;
}

int fsauth_header(const struct fsauth *a, buf *out)
{
    size_t need;

    if (!fsauth_ready(a))
        return FS_EAGAIN;
    need = strlen("Bearer ") + strlen(a->token);
    if (out->max && (out->len > out->max || need > out->max - out->len))
        return FS_ETOOBIG;
    if (buf_adds(out, "Bearer ") != 0 || buf_adds(out, a->token) != 0)
        return FS_ETOOBIG; /* not reached: checked above */
    return 0;
}

enum fsauth_mode fsauth_mode(const struct fsauth *a)
{
    return a->mode;
}

int64_t fsauth_expires_at(const struct fsauth *a)
{
    return a && a->token && a->mode != FSAUTH_EMULATOR ? a->expires_at : 0;
}

unsigned fsauth_failures(const struct fsauth *a)
{
    return a ? a->failures : 0;
}

int64_t fsauth_next_fetch_in(const struct fsauth *a)
{
    if (!a || a->closing || a->req || a->mode == FSAUTH_EMULATOR ||
        !uv_is_active((const uv_handle_t *)&a->timer))
        return -1;
    return (int64_t)uv_timer_get_due_in(&a->timer);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct fsauth *a = h->data;

    a->closed = true;
    if (a->free_on_close)
        destroy(a);
}

void fsauth_close(struct fsauth *a)
{
    if (!a || a->closing)
        return;
    a->closing = true;
    if (a->req) {
        http_cancel(a->req);
        a->req = NULL;
    }
    wipe_buf(&a->reply);
    uv_close((uv_handle_t *)&a->timer, on_timer_closed);
}

void fsauth_free(struct fsauth *a)
{
    if (!a)
        return;
    fsauth_close(a);
    if (a->closed)
        destroy(a);
    else
        a->free_on_close = true;
}
