/*
 * webchannel.c - the WebChannel VER=8 client of Firestore's Listen stream (see webchannel.h and
 * /work/shared/docs/webchannel.md).
 *
 * Owns one logical Listen stream across any number of WebChannel sessions: the handshake, the
 * back-channel GET loop and its watchdog and retries, the forward POST queue with its map ids,
 * the dead-session detection and the backoff before a new session, the terminate request, and the
 * pause/resume contract with the owner. HTTP itself is firestore/http; chunk framing is
 * firestore/frame; JSON tokenizing is firestore/json. The pure pieces (URL and body building,
 * payload shape, classification) are at the top and exported for tests.
 *
 * How the moving parts relate:
 *   - `epoch` grows whenever a session is torn down or started. Every path that calls the owner
 *     remembers it and stops as soon as it changed (the owner may have called wc_close(),
 *     wc_restart(), or the callback may have ended the session).
 *   - `last_aid` is the last array *processed*, so it is both the AID we acknowledge and the
 *     skip threshold. Held payloads (during a pause) are copies of whole chunks; resuming simply
 *     processes them again, and the arrays already delivered are skipped by id.
 *   - The session struct is freed only from a uv close callback, so a callback that closes the
 *     session never pulls the memory from under the code that called it.
 */
#include "firestore/webchannel.h"

#include "common/log.h"
#include "common/xalloc.h"
#include "firestore/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_KEEPALIVE_MS 30000
#define DEFAULT_GET_RETRY_MS 5000
#define DEFAULT_BACKOFF_MIN_MS 1000
#define DEFAULT_BACKOFF_MAX_MS 60000
#define TERMINATE_TIMEOUT_MS 5000
#define MAX_GET_RETRIES 3         /* the 4th failure in a row without data ends the session */
#define MAX_POST_ATTEMPTS 3       /* a first try and 2 retries, as the JS client */
#define GET_RESTART_AFTER_MS 3000 /* "no back channel" in a POST reply restarts an older GET */
#define QUICK_EMPTY_GET_MS 1000   /* a 200 GET with no new array faster than this ... */
#define EMPTY_GET_STEP_MS 250     /* ... delays the next one by this much more each time, */
#define EMPTY_GET_MAX_MS 5000     /* up to this: never a tight loop, never a session loss */
#define MAX_MESSAGE_BYTES ((size_t)4 << 20)
#define MAX_BATCH 100 /* forward messages per POST */
#define POST_REPLY_CAP ((size_t)64 << 10)
#define ERROR_BODY_CAP ((size_t)64 << 10) /* bytes of an error page read before giving up */
#define URL_CAP ((size_t)16 << 10)
#define AUTH_CAP ((size_t)16 << 10)
#define HOLD_SLACK ((size_t)1 << 20) /* held payloads may exceed one chunk cap by this much */

/* process() result: the session was torn down, replaced or closed by a callback. */
#define STOPPED 2

struct fwd {
    struct fwd *next;
    size_t len;
    char json[];
};

struct held {
    struct held *next;
    size_t len;
    char p[];
};

struct wc_session {
    uv_loop_t *loop;
    http_client *http;
    char *base, *database, *path;
    long timeout_ms, watchdog_cfg, get_retry_ms, backoff_min, backoff_max;
    size_t max_chunk;
    int (*auth_header)(void *, buf *);
    void *auth_ud;
    struct wc_callbacks cb;
    void *ud;

    enum wc_state state;
    uint64_t epoch;
    char sid[WC_SID_MAX];
    char gsid[WC_SID_MAX];
    long keepalive_ms;
    int64_t last_aid;
    int64_t next_map_id;
    long rid;
    unsigned attempt; /* new-session backoff step */
    uint64_t rng;

    http_request *hs, *get, *post;
    size_t hs_discard, get_discard; /* bytes of error pages dropped (capped) */
    wc_framer hs_fr, get_fr;
    json_doc doc;

    struct fwd *q, **q_tail; /* queued forward messages */
    size_t nq;
    struct fwd *inflight; /* the batch of the POST in flight (or waiting for its retry) */
    size_t ninflight;
    int64_t inflight_ofs;
    long inflight_rid;
    unsigned post_attempt;

    struct held *held, **held_tail; /* received, not delivered (pause) */
    size_t held_bytes;
    bool paused, delivering, get_wanted;
    unsigned get_retries;
    unsigned empty_gets; /* quick empty 200 answers in a row */
    uint64_t get_started;
    uint64_t get_arrays; /* arrays processed during the current GET */

    uv_timer_t timer;      /* backoff, restart, back-channel retry */
    uv_timer_t post_timer; /* forward POST retry */
    int nterm;             /* terminate requests in flight */
    int open_timers;
    bool closing;
    void (*close_cb)(void *);
    void *close_ud;

    struct wc_stats st;
};

/* ---- pure helpers ------------------------------------------------------------------------- */

int wc_urlenc(buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            strchr("-_.!~*'()", c) != NULL) {
            if (c == '\0')
                rc = buf_add(out, "%00", 3);
            else
                rc = buf_addc(out, (char)c);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = buf_add(out, enc, 3);
        }
    }
    return rc;
}

static int add_param(buf *out, const char *name, const char *value)
{
    int rc = buf_printf(out, "&%s=", name);
    if (rc == 0)
        rc = wc_urlenc(out, value ? value : "", value ? strlen(value) : 0);
    return rc;
}

int wc_build_url(buf *out, const struct wc_url_params *p)
{
    int rc;

    rc = buf_printf(out, "%s%s?database=", p->base_url, p->path ? p->path : WC_LISTEN_PATH);
    if (rc == 0)
        rc = wc_urlenc(out, p->database, strlen(p->database));
    if (rc == 0)
        rc = buf_adds(out, "&VER=8");
    if (rc)
        return rc;
    switch (p->kind) {
    case WC_REQ_HANDSHAKE:
        rc = buf_printf(out, "&RID=%ld&CVER=22&X-HTTP-Session-Id=gsessionid", p->rid);
        break;
    case WC_REQ_FORWARD:
        rc = add_param(out, "SID", p->sid);
        if (rc == 0)
            rc = buf_printf(out, "&RID=%ld&AID=%lld", p->rid, (long long)p->aid);
        break;
    case WC_REQ_BACK:
        rc = buf_adds(out, "&RID=rpc");
        if (rc == 0)
            rc = add_param(out, "SID", p->sid);
        if (rc == 0)
            rc = buf_printf(out, "&AID=%lld&CI=1&TYPE=xmlhttp", (long long)p->aid);
        break;
    case WC_REQ_TERMINATE:
        rc = add_param(out, "SID", p->sid);
        if (rc == 0)
            rc = buf_printf(out, "&RID=%ld&TYPE=terminate", p->rid);
        break;
    }
    if (rc == 0 && p->kind != WC_REQ_HANDSHAKE && p->gsessionid && *p->gsessionid)
        rc = add_param(out, "gsessionid", p->gsessionid);
    if (rc == 0)
        rc = add_param(out, "zx", p->zx);
    if (rc == 0)
        rc = buf_printf(out, "&t=%u", p->attempt ? p->attempt : 1);
    return rc;
}

int wc_build_body(buf *out, const char *auth, int64_t ofs, const char *const *msgs, size_t n)
{
    int rc = 0;

    if (auth && *auth) {
        rc = buf_adds(out, "headers=");
        if (rc == 0)
            rc = wc_urlenc(out, "Authorization:", 14);
        if (rc == 0)
            rc = wc_urlenc(out, auth, strlen(auth));
        if (rc == 0)
            rc = wc_urlenc(out, "\r\n", 2);
        if (rc == 0)
            rc = buf_addc(out, '&');
    }
    if (rc == 0)
        rc = buf_printf(out, "count=%zu&ofs=%lld", n, (long long)ofs);
    for (size_t k = 0; k < n && rc == 0; k++) {
        rc = buf_printf(out, "&req%zu___data__=", k);
        if (rc == 0)
            rc = wc_urlenc(out, msgs[k], strlen(msgs[k]));
    }
    return rc;
}

int wc_payload_parse(json_doc *d, const char *p, size_t n, fserr *e)
{
    int rc = json_parse(d, p, n, e);

    if (rc)
        return rc;
    if (json_type_of(d, 0) != JSON_ARRAY)
        return fserr_set(e, FS_EPROTO, "webchannel: payload is not an array of arrays");
    for (int a = json_child(d, 0); a >= 0; a = json_sibling(d, 0, a)) {
        int id = json_child(d, a);
        int64_t v;
        if (json_type_of(d, a) != JSON_ARRAY || json_tok_at(d, a)->count < 2 ||
            json_type_of(d, id) != JSON_NUMBER || json_int64(d, id, &v, NULL) != 0 || v < 0)
            return fserr_set(e, FS_EPROTO,
                             "webchannel: payload element is not [non-negative id, data]");
    }
    return 0;
}

bool wc_array_next(const json_doc *d, int *it, int64_t last_id, int64_t *id, int *data)
{
    int a;

    if (*it < 0)
        return false;
    for (a = *it == 0 ? json_child(d, 0) : json_sibling(d, 0, *it); a >= 0;
         a = json_sibling(d, 0, a)) {
        int t = json_child(d, a);
        int64_t v;
        if (t < 0 || json_int64(d, t, &v, NULL) != 0 || v <= last_id)
            continue;
        *it = a;
        *id = v;
        *data = json_sibling(d, a, t);
        return true;
    }
    *it = JSON_NONE;
    return false;
}

static bool is_error_obj(const json_doc *d, int t)
{
    return json_type_of(d, t) == JSON_OBJECT && json_obj_get(d, t, "error") >= 0;
}

enum wc_kind wc_classify(const json_doc *d, int data, int *msg)
{
    int first, inner;

    *msg = JSON_NONE;
    if (is_error_obj(d, data)) {
        *msg = data;
        return WC_K_ERROR;
    }
    if (json_type_of(d, data) != JSON_ARRAY || (first = json_child(d, data)) < 0)
        return WC_K_OTHER;
    switch (json_type_of(d, first)) {
    case JSON_STRING:
        if (json_str_eq(d, first, "noop"))
            return WC_K_NOOP;
        if (json_str_eq(d, first, "stop"))
            return WC_K_STOP;
        if (json_str_eq(d, first, "close"))
            return WC_K_CLOSE;
        if (json_str_eq(d, first, "c"))
            return WC_K_HELLO;
        return WC_K_OTHER;
    case JSON_OBJECT:
        *msg = first;
        return is_error_obj(d, first) ? WC_K_ERROR : WC_K_DATA;
    case JSON_ARRAY:
        inner = json_child(d, first);
        if (inner >= 0 && is_error_obj(d, inner)) {
            *msg = inner;
            return WC_K_ERROR;
        }
        return WC_K_OTHER;
    default:
        return WC_K_OTHER;
    }
}

int wc_parse_hello(const json_doc *d, int data, struct wc_hello *h, fserr *e)
{
    int t_sid, t_host, t_ver, t_ka;
    buf sid;
    int rc;

    memset(h, 0, sizeof(*h));
    h->keepalive_ms = DEFAULT_KEEPALIVE_MS;
    t_sid = json_arr_at(d, data, 1);
    t_host = json_arr_at(d, data, 2);
    t_ver = json_arr_at(d, data, 3);
    t_ka = json_arr_at(d, data, 5);
    if (json_type_of(d, t_sid) != JSON_STRING || t_host < 0 ||
        json_int64(d, t_ver, &h->version, NULL) != 0)
        return fserr_set(e, FS_EPROTO, "webchannel: handshake reply: malformed \"c\" array");
    if (h->version != 8)
        return fserr_set(e, FS_EPROTO, "webchannel: handshake reply: server speaks VER=%lld, not 8",
                         (long long)h->version);
    buf_init(&sid, WC_SID_MAX - 1);
    rc = json_str_unescape(d, t_sid, &sid, NULL);
    if (rc == 0 && sid.len == 0)
        rc = FS_EPROTO;
    for (size_t i = 0; rc == 0 && i < sid.len; i++)
        if ((unsigned char)sid.p[i] < 0x21 || (unsigned char)sid.p[i] > 0x7e)
            rc = FS_EPROTO;
    if (rc == 0)
        memcpy(h->sid, sid.p, sid.len + 1);
    buf_release(&sid);
    if (rc)
        return fserr_set(e, FS_EPROTO,
                         "webchannel: handshake reply: session id is empty, "
                         "longer than %d bytes or not printable ASCII",
                         WC_SID_MAX - 1);
    if (t_ka >= 0) {
        int64_t ka;
        if (json_int64(d, t_ka, &ka, NULL) == 0 && ka >= 1000 && ka <= 3600000)
            h->keepalive_ms = ka;
    }
    return 0;
}

/* Appends the decoded string at tok (or nothing) to out, ignoring the cap's refusal. */
static void add_str(const json_doc *d, int tok, buf *out)
{
    if (json_type_of(d, tok) == JSON_STRING)
        json_str_unescape(d, tok, out, NULL);
}

int wc_error_info(const json_doc *d, int msg, char *why, size_t n)
{
    int err = json_obj_get(d, msg, "error"), t;
    int code = FS_ESESSION;
    int64_t num = 0;
    buf status, text;
    char scrubbed[512];

    buf_init(&status, 64);
    buf_init(&text, 300);
    add_str(d, json_obj_get(d, err, "status"), &status);
    add_str(d, json_obj_get(d, err, "message"), &text);
    t = json_obj_get(d, err, "code");
    if (t >= 0)
        json_int64(d, t, &num, NULL);
    if (strcmp(buf_str(&status), "UNAUTHENTICATED") == 0 ||
        strcmp(buf_str(&status), "PERMISSION_DENIED") == 0 || num == 16 || num == 7)
        code = FS_EAUTH;
    log_scrub(buf_str(&text), scrubbed, sizeof(scrubbed));
    snprintf(why, n, "server error %s (code %lld): %s",
             status.len ? buf_str(&status) : "(no status)", (long long)num, scrubbed);
    buf_release(&status);
    buf_release(&text);
    return code;
}

struct reply_ctx {
    int64_t *out;
    int found;
};

static int reply_chunk(void *ud, const char *p, size_t n)
{
    struct reply_ctx *rc = ud;
    json_doc d;
    int ok = 0, i = 0;

    if (rc->found++)
        return 0; /* only the first chunk matters */
    json_doc_init(&d);
    if (json_parse(&d, p, n, NULL) == 0 && json_type_of(&d, 0) == JSON_ARRAY &&
        json_tok_at(&d, 0)->count >= 3) {
        ok = 1;
        for (int t = json_child(&d, 0); t >= 0 && i < 3; t = json_sibling(&d, 0, t), i++)
            if (json_int64(&d, t, &rc->out[i], NULL) != 0)
                ok = 0;
    }
    json_doc_release(&d);
    return ok ? 0 : FS_EPROTO;
}

int wc_parse_post_reply(const char *p, size_t n, int64_t out[3], fserr *e)
{
    wc_framer f;
    struct reply_ctx ctx = {out, 0};
    int rc;

    wc_frame_init(&f, POST_REPLY_CAP);
    rc = wc_frame_feed(&f, p, n, reply_chunk, &ctx, NULL);
    if (rc == 0 && (ctx.found == 0 || wc_frame_pending(&f)))
        rc = FS_EPROTO;
    wc_frame_release(&f);
    if (rc)
        return fserr_set(e, FS_EPROTO, "webchannel: forward reply is not a [n,n,n] chunk");
    return 0;
}

long wc_backoff_ms(long min, long max, unsigned attempt, double r)
{
    long base = min > 0 ? min : 1;
    long d;

    if (max < base)
        max = base;
    for (unsigned i = 0; i < attempt && base < max; i++)
        base = base > max / 2 ? max : base * 2;
    if (r < 0)
        r = 0;
    if (r >= 1)
        r = 0.999999;
    d = base / 2 + (long)((double)(base - base / 2) * r);
    return d > 0 ? d : 1;
}

/* ---- small session helpers ---------------------------------------------------------------- */

static uint64_t next_rand(wc_session *s)
{
    /* xorshift64*: unpredictability is not needed, only spread */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ULL;
}

static double rand01(wc_session *s)
{
    return (double)(next_rand(s) >> 11) / 9007199254740992.0;
}

static void make_zx(wc_session *s, char zx[13])
{
    static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint64_t v = next_rand(s);
    for (int i = 0; i < 12; i++) {
        zx[i] = digits[v % 36];
        v /= 36;
    }
    zx[12] = '\0';
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wipe_buf(buf *b)
{
    if (b->p)
        explicit_bzero(b->p, b->cap);
    buf_release(b);
}

/* Builds the URL of a request of `kind` for the current session into out. */
static int session_url(wc_session *s, buf *out, enum wc_req_kind kind, long rid, unsigned t)
{
    char zx[13];
    struct wc_url_params p = {
        .kind = kind,
        .base_url = s->base,
        .path = s->path,
        .database = s->database,
        .sid = s->sid,
        .gsessionid = s->gsid,
        .zx = zx,
        .rid = rid,
        .aid = s->last_aid,
        .attempt = t,
    };

    if (p.aid < 0)
        p.aid = 0;
    make_zx(s, zx);
    buf_init(out, URL_CAP);
    return wc_build_url(out, &p);
}

static void free_fwd_list(struct fwd *f)
{
    while (f) {
        struct fwd *n = f->next;
        free(f);
        f = n;
    }
}

static void drop_held(wc_session *s)
{
    while (s->held) {
        struct held *h = s->held;
        s->held = h->next;
        free(h);
    }
    s->held_tail = &s->held;
    s->held_bytes = 0;
}

static void drop_queue(wc_session *s)
{
    free_fwd_list(s->q);
    s->q = NULL;
    s->q_tail = &s->q;
    s->nq = 0;
    free_fwd_list(s->inflight);
    s->inflight = NULL;
    s->ninflight = 0;
}

static void on_timer(uv_timer_t *t);
static void on_post_timer(uv_timer_t *t);
static void start_session(wc_session *s);
static void start_get(wc_session *s);
static void start_post(wc_session *s);
static void finalize(wc_session *s);

/* ---- terminate ---------------------------------------------------------------------------- */

static void term_done(void *ud, const struct http_result *res)
{
    wc_session *s = ud;

    if (res->rc)
        log_debug("webchannel: terminate: %s", res->err->msg);
    s->nterm--;
    if (s->closing && s->nterm == 0)
        finalize(s);
}

/* Fire-and-forget TYPE=terminate for the session held now (its reply is ignored). */
static void send_terminate(wc_session *s)
{
    struct http_req_opts o = {0};
    buf url;
    fserr e = {0};

    if (!s->sid[0])
        return;
    if (session_url(s, &url, WC_REQ_TERMINATE, ++s->rid, 1) == 0) {
        o.method = "GET";
        o.url = buf_str(&url);
        o.timeout_ms = s->timeout_ms < TERMINATE_TIMEOUT_MS ? s->timeout_ms : TERMINATE_TIMEOUT_MS;
        o.body_cap = POST_REPLY_CAP;
        o.on_done = term_done;
        o.ud = s;
        if (http_request_new(s->http, &o, &e))
            s->nterm++;
        else
            log_debug("webchannel: terminate not sent: %s", e.msg);
    }
    buf_release(&url);
}

/* Ends whatever the current session was doing, optionally telling the server; what was queued
 * or held for it dies with it. */
static void teardown(wc_session *s, bool terminate)
{
    s->epoch++;
    http_cancel(s->hs);
    http_cancel(s->get);
    http_cancel(s->post);
    s->hs = s->get = s->post = NULL;
    uv_timer_stop(&s->timer);
    uv_timer_stop(&s->post_timer);
    if (terminate)
        send_terminate(s);
    s->sid[0] = '\0';
    s->gsid[0] = '\0';
    drop_queue(s);
    drop_held(s);
    s->get_wanted = false;
}

/* The session is dead: tell the owner and open a new one after backoff. */
static void session_down(wc_session *s, int code, bool terminate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void session_down(wc_session *s, int code, bool terminate, const char *fmt, ...)
{
    char why[600], clean[600];
    va_list ap;
    long delay;

    if (s->closing)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_scrub(why, clean, sizeof(clean));
    teardown(s, terminate);
    s->state = WC_BACKOFF;
    s->st.reconnects++;
    delay = wc_backoff_ms(s->backoff_min, s->backoff_max, s->attempt, rand01(s));
    if (s->attempt < 30)
        s->attempt++;
    uv_timer_start(&s->timer, on_timer, (uint64_t)delay, 0);
    log_warn("webchannel: session lost (%s): %s; new session in %ld ms", fserr_name(code), clean,
             delay);
    if (s->cb.on_down)
        s->cb.on_down(s->ud, code, clean);
}

/* ---- processing received arrays ----------------------------------------------------------- */

static int handle_hello(wc_session *s, int data)
{
    struct wc_hello h;
    fserr e = {0};
    uint64_t epoch = s->epoch;

    if (s->state != WC_CONNECTING) {
        log_debug("webchannel: ignoring a \"c\" array outside a handshake");
        return 0;
    }
    if (wc_parse_hello(&s->doc, data, &h, &e) != 0) {
        session_down(s, FS_EPROTO, false, "%s", e.msg);
        return STOPPED;
    }
    memcpy(s->sid, h.sid, sizeof(s->sid));
    s->keepalive_ms = (long)h.keepalive_ms;
    s->state = WC_OPEN;
    s->st.sessions++;
    log_info("webchannel: session open (keep-alive %ld ms)", s->keepalive_ms);
    if (s->cb.on_open)
        s->cb.on_open(s->ud);
    return s->epoch != epoch || s->closing ? STOPPED : 0;
}

/* Acts on one new array; returns 0, STOPPED, or WC_PAUSE (handled by the caller). */
static int handle_array(wc_session *s, int64_t id, int data)
{
    char why[600];
    int msg, rc, code;
    uint64_t epoch = s->epoch;

    if (s->last_aid >= 0 && id > s->last_aid + 1) {
        /* Arrays are numbered without gaps and re-sent until acknowledged: a gap means the
         * server dropped some that we never processed. Nothing after it can be trusted to
         * complete the picture, so start over from the resume tokens. */
        session_down(s, FS_EPROTO, true,
                     "back channel: arrays %lld to %lld never arrived; opening a new session",
                     (long long)s->last_aid + 1, (long long)id - 1);
        return STOPPED;
    }
    s->last_aid = id;
    s->st.last_array_id = id;
    s->st.arrays_received++;
    s->st.last_data_unix_ms = wall_ms();
    s->get_arrays++;
    s->get_retries = 0;
    s->empty_gets = 0;
    if (id > 0)
        s->attempt = 0; /* the session delivers: the next loss starts the backoff afresh */
    switch (wc_classify(&s->doc, data, &msg)) {
    case WC_K_HELLO:
        return handle_hello(s, data);
    case WC_K_NOOP:
    case WC_K_OTHER:
        return 0;
    case WC_K_STOP:
        session_down(s, FS_ESESSION, false, "the server stopped the channel");
        return STOPPED;
    case WC_K_CLOSE:
        session_down(s, FS_ESESSION, true, "the server closed the channel");
        return STOPPED;
    case WC_K_ERROR:
        code = wc_error_info(&s->doc, msg, why, sizeof(why));
        session_down(s, code, true, "%s", why);
        return STOPPED;
    case WC_K_DATA:
        break;
    }
    s->st.messages++;
    rc = s->cb.on_message(s->ud, &s->doc, msg);
    if (s->epoch != epoch || s->closing)
        return STOPPED;
    if (rc < 0) {
        session_down(s, rc, true, "the listener refused a message (%s)", fserr_name(rc));
        return STOPPED;
    }
    return rc == WC_PAUSE ? WC_PAUSE : 0;
}

/* Processes the new arrays of one payload. Returns 0 (*incomplete when a pause left some
 * undelivered), STOPPED, or a negative code for a malformed payload. */
static int process(wc_session *s, const char *p, size_t n, bool *incomplete)
{
    fserr e = {0};
    int64_t id;
    int it = 0, data, rc;

    *incomplete = false;
    rc = wc_payload_parse(&s->doc, p, n, &e);
    if (rc) {
        log_warn("webchannel: %s", e.msg);
        return FS_EPROTO;
    }
    while (wc_array_next(&s->doc, &it, s->last_aid, &id, &data)) {
        if (s->paused) {
            *incomplete = true;
            return 0;
        }
        rc = handle_array(s, id, data);
        if (rc == STOPPED)
            return STOPPED;
        if (rc == WC_PAUSE)
            s->paused = true;
    }
    return 0;
}

static int hold(wc_session *s, const char *p, size_t n)
{
    struct held *h;

    if (s->held_bytes + n > s->max_chunk + HOLD_SLACK)
        return FS_ETOOBIG;
    h = xmalloc(sizeof(*h) + n);
    h->next = NULL;
    h->len = n;
    memcpy(h->p, p, n);
    *s->held_tail = h;
    s->held_tail = &h->next;
    s->held_bytes += n;
    s->st.held_bytes = s->held_bytes;
    return 0;
}

/* Framer callback for the handshake and back-channel bodies. */
static int on_chunk(void *ud, const char *p, size_t n)
{
    wc_session *s = ud;
    bool incomplete;
    int rc;

    if (s->paused || s->held)
        return hold(s, p, n);
    s->delivering = true;
    rc = process(s, p, n, &incomplete);
    s->delivering = false;
    if (rc == STOPPED)
        return FS_ECANCELED;
    if (rc < 0)
        return rc;
    return incomplete ? hold(s, p, n) : 0;
}

/* Delivers held payloads until a pause or the end; then lets the back channel go on. */
static void pump(wc_session *s)
{
    uint64_t epoch = s->epoch;

    if (s->delivering)
        return;
    while (s->held && !s->paused) {
        struct held *h = s->held;
        bool incomplete;
        int rc;

        s->delivering = true;
        rc = process(s, h->p, h->len, &incomplete);
        s->delivering = false;
        if (rc == STOPPED || s->epoch != epoch || s->closing)
            return;
        if (rc < 0) {
            session_down(s, FS_EPROTO, true, "malformed payload in the back channel");
            return;
        }
        if (incomplete)
            break;
        s->held = h->next;
        if (!s->held)
            s->held_tail = &s->held;
        s->held_bytes -= h->len;
        s->st.held_bytes = s->held_bytes;
        free(h);
    }
    if (s->paused || s->held || s->state != WC_OPEN)
        return;
    if (s->get && http_paused(s->get))
        http_resume(s->get);
    else if (!s->get && s->get_wanted && !s->hs)
        start_get(s);
}

/* ---- handshake ---------------------------------------------------------------------------- */

static int hs_header(void *ud, const char *name, const char *value)
{
    wc_session *s = ud;

    if (strcasecmp(name, "X-HTTP-Session-Id") == 0) {
        size_t n = strlen(value);
        bool ok = n > 0 && n < sizeof(s->gsid);
        for (size_t i = 0; ok && i < n; i++)
            ok = (unsigned char)value[i] > 0x20 && (unsigned char)value[i] < 0x7f;
        if (ok)
            memcpy(s->gsid, value, n + 1);
    }
    return 0;
}

/* Drops n bytes of an error page (the status decides what happens), up to ERROR_BODY_CAP. */
static int discard(size_t *count, size_t n)
{
    *count += n;
    return *count > ERROR_BODY_CAP ? FS_ETOOBIG : 0;
}

static int hs_data(void *ud, long status, const char *p, size_t n)
{
    wc_session *s = ud;
    fserr e = {0};

    if (status != 200)
        return discard(&s->hs_discard, n);
    return wc_frame_feed(&s->hs_fr, p, n, on_chunk, s, &e);
}

static void hs_done(void *ud, const struct http_result *res)
{
    wc_session *s = ud;

    s->hs = NULL;
    if (res->rc == 0 && res->status == 200 && s->state == WC_OPEN && !wc_frame_pending(&s->hs_fr)) {
        start_get(s);
        start_post(s);
        return;
    }
    if (res->status == 401 || res->status == 403)
        session_down(s, FS_EAUTH, false, "handshake: HTTP %ld (credentials refused)", res->status);
    else if (res->status != 0 && res->status != 200)
        session_down(s, FS_EHTTPSTATUS, false, "handshake: HTTP %ld", res->status);
    else if (res->rc)
        session_down(s, res->rc, s->sid[0] != '\0', "handshake: %s", res->err->msg);
    else
        session_down(s, FS_EPROTO, s->sid[0] != '\0',
                     "handshake: the reply holds no complete \"c\" array");
}

/* Builds and sends the handshake with every queued message; map ids start at 0. */
static int send_handshake(wc_session *s, fserr *e)
{
    const char **msgs = xcalloc(s->nq + 1, sizeof(*msgs));
    struct http_req_opts o = {0};
    const char *headers[3] = {"Content-Type: application/x-www-form-urlencoded", NULL, NULL};
    buf auth, url, body, hline;
    size_t n = 0;
    int rc = 0;

    buf_init(&auth, AUTH_CAP);
    buf_init(&url, URL_CAP);
    buf_init(&body, 0);
    buf_init(&hline, AUTH_CAP + 32);
    for (struct fwd *f = s->q; f; f = f->next)
        msgs[n++] = f->json;
    if (s->auth_header && (rc = s->auth_header(s->auth_ud, &auth)) != 0)
        rc = fserr_set(e, rc < 0 ? rc : FS_EAUTH, "handshake: no credentials (%s)", fserr_name(rc));
    if (rc == 0 && (strpbrk(buf_str(&auth), "\r\n") != NULL))
        rc = fserr_set(e, FS_EAUTH, "handshake: the credentials hold a line break");
    s->rid = (long)(next_rand(s) % 100000);
    if (rc == 0 && (session_url(s, &url, WC_REQ_HANDSHAKE, s->rid, 1) != 0 ||
                    wc_build_body(&body, buf_str(&auth), 0, msgs, n) != 0))
        rc = fserr_set(e, FS_ETOOBIG, "handshake: request too large");
    if (rc == 0 && auth.len) {
        buf_printf(&hline, "Authorization: %s", buf_str(&auth));
        headers[1] = buf_str(&hline);
    }
    if (rc == 0) {
        o.method = "POST";
        o.url = buf_str(&url);
        o.headers = headers;
        o.body = body.p;
        o.body_len = body.len;
        o.timeout_ms = s->timeout_ms;
        o.on_header = hs_header;
        o.on_data = hs_data;
        o.on_done = hs_done;
        o.ud = s;
        wc_frame_reset(&s->hs_fr);
        s->hs_discard = 0;
        s->hs = http_request_new(s->http, &o, e);
        if (!s->hs)
            rc = e && e->code ? e->code : FS_EHTTP;
    }
    if (rc == 0) {
        s->next_map_id = (int64_t)n;
        free_fwd_list(s->q); /* carried by the handshake now */
        s->q = NULL;
        s->q_tail = &s->q;
        s->nq = 0;
    }
    buf_release(&url);
    wipe_buf(&auth);
    wipe_buf(&hline);
    wipe_buf(&body);
    free(msgs);
    return rc;
}

/* Opens a session: on_connect, then the handshake with whatever is queued (messages sent while
 * no session was open, then on_connect's). */
static void start_session(wc_session *s)
{
    fserr e = {0};
    uint64_t epoch;
    int rc;

    s->epoch++;
    epoch = s->epoch;
    s->state = WC_CONNECTING;
    s->sid[0] = '\0';
    s->gsid[0] = '\0';
    s->last_aid = -1;
    s->next_map_id = 0;
    s->get_retries = 0;
    s->empty_gets = 0;
    s->get_wanted = false;
    s->keepalive_ms = DEFAULT_KEEPALIVE_MS;
    if (s->cb.on_connect)
        s->cb.on_connect(s->ud);
    if (s->epoch != epoch || s->closing)
        return;
    rc = send_handshake(s, &e);
    if (rc)
        session_down(s, rc, false, "%s", e.msg);
}

/* ---- back channel ------------------------------------------------------------------------- */

static int get_data(void *ud, long status, const char *p, size_t n)
{
    wc_session *s = ud;
    fserr e = {0};
    int rc;

    if (status != 200)
        return discard(&s->get_discard, n); /* get_done acts on the status */
    if (s->paused || s->held)
        return HTTP_PAUSE;
    rc = wc_frame_feed(&s->get_fr, p, n, on_chunk, s, &e);
    if (rc == FS_ECANCELED)
        return rc; /* the session is gone; this request was cancelled */
    if (rc) {
        log_warn("webchannel: back channel: %s", e.msg);
        return rc;
    }
    if (s->paused && s->get)
        http_pause(s->get); /* these bytes are taken; curl holds the next ones */
    return 0;
}

static long get_watchdog(const wc_session *s)
{
    if (s->watchdog_cfg > 0)
        return s->watchdog_cfg;
    return s->keepalive_ms + s->keepalive_ms / 2;
}

/* A back-channel attempt failed: retry after (k-1) x (base + rand x 2 x base), or give up after
 * MAX_GET_RETRIES retries without data. */
static void get_failed(wc_session *s, int code, const char *what)
{
    long delay;

    s->st.get_failures++;
    s->get_retries++;
    if (s->get_retries > MAX_GET_RETRIES) {
        session_down(s, code, true, "back channel failed %u times without data: %s", s->get_retries,
                     what);
        return;
    }
    delay = (long)(s->get_retries - 1) *
            (s->get_retry_ms + (long)(rand01(s) * 2.0 * (double)s->get_retry_ms));
    log_debug("webchannel: back channel: %s; retry %u in %ld ms", what, s->get_retries, delay);
    uv_timer_start(&s->timer, on_timer, (uint64_t)delay, 0);
}

static void get_done(void *ud, const struct http_result *res)
{
    wc_session *s = ud;
    uint64_t took = uv_now(s->loop) - s->get_started;

    s->get = NULL;
    if (res->status != 0 && res->status != 200) {
        session_down(s, FS_ESESSION, false,
                     "back channel: HTTP %ld for the session (unknown or dead)", res->status);
    } else if (res->rc == 0 && wc_frame_pending(&s->get_fr)) {
        get_failed(s, FS_EPROTO, "the response ended inside a chunk");
    } else if (res->rc == 0) {
        if (s->get_arrays == 0 && took < QUICK_EMPTY_GET_MS) {
            /* the emulator does this now and then: poll again, but not in a tight loop */
            uint64_t delay = (uint64_t)s->empty_gets++ * EMPTY_GET_STEP_MS;
            uv_timer_start(&s->timer, on_timer, delay < EMPTY_GET_MAX_MS ? delay : EMPTY_GET_MAX_MS,
                           0);
        } else {
            start_get(s);
        }
    } else {
        get_failed(s, res->rc, res->err->msg);
    }
}

static void start_get(wc_session *s)
{
    struct http_req_opts o = {0};
    fserr e = {0};
    buf url;

    if (s->state != WC_OPEN || s->get || s->closing)
        return;
    if (s->paused || s->held) {
        s->get_wanted = true;
        return;
    }
    s->get_wanted = false;
    if (session_url(s, &url, WC_REQ_BACK, 0, s->get_retries + 1) != 0) {
        buf_release(&url);
        session_down(s, FS_ETOOBIG, true, "back channel: URL too long");
        return;
    }
    o.method = "GET";
    o.url = buf_str(&url);
    o.idle_timeout_ms = get_watchdog(s);
    /* The emulator closes a connection after a back-channel response, and a long poll sent
     * on such a kept-alive connection can lose arrays: give each GET a connection of its own
     * on plain-HTTP (loopback) servers; over TLS the connection is kept, and array-id gaps are
     * caught in handle_array() whatever happens. */
    o.fresh_connection = strncmp(s->base, "http://", 7) == 0;
    o.on_data = get_data;
    o.on_done = get_done;
    o.ud = s;
    wc_frame_reset(&s->get_fr);
    s->get_discard = 0;
    s->get_arrays = 0;
    s->get_started = uv_now(s->loop);
    s->get = http_request_new(s->http, &o, &e);
    buf_release(&url);
    if (!s->get) {
        session_down(s, e.code ? e.code : FS_EHTTP, true, "back channel: %s", e.msg);
        return;
    }
    s->st.gets++;
}

/* ---- forward channel ---------------------------------------------------------------------- */

static void post_done(void *ud, const struct http_result *res)
{
    wc_session *s = ud;
    int64_t reply[3];
    long delay;

    s->post = NULL;
    if (res->rc == 0 && res->status == 200) {
        s->next_map_id = s->inflight_ofs + (int64_t)s->ninflight;
        free_fwd_list(s->inflight);
        s->inflight = NULL;
        s->ninflight = 0;
        if (wc_parse_post_reply(res->body, res->body_len, reply, NULL) == 0 && reply[0] == 0 &&
            s->get && !s->paused && uv_now(s->loop) - s->get_started > GET_RESTART_AFTER_MS) {
            /* the server holds no back channel for us: ours is stale */
            http_cancel(s->get);
            s->get = NULL;
            start_get(s);
        }
        start_post(s);
        return;
    }
    if (res->status != 0 && res->status != 200) {
        session_down(s, FS_ESESSION, false, "forward channel: HTTP %ld", res->status);
        return;
    }
    if (++s->post_attempt > MAX_POST_ATTEMPTS) {
        session_down(s, res->rc, true, "forward channel failed %u times: %s", MAX_POST_ATTEMPTS,
                     res->err->msg);
        return;
    }
    delay = wc_backoff_ms(s->backoff_min, s->backoff_max, s->post_attempt - 2, rand01(s));
    log_debug("webchannel: forward channel: %s; retry in %ld ms", res->err->msg, delay);
    uv_timer_start(&s->post_timer, on_post_timer, (uint64_t)delay, 0);
}

/* Sends the batch in flight (a retry: same map ids, same RID) or the next queued batch. */
static void start_post(wc_session *s)
{
    const char *msgs[MAX_BATCH];
    struct http_req_opts o = {0};
    fserr e = {0};
    buf url, body;
    size_t n = 0;
    int rc;

    if (s->state != WC_OPEN || s->hs || s->post || s->closing ||
        uv_is_active((uv_handle_t *)&s->post_timer))
        return;
    if (!s->inflight) {
        struct fwd **tail = &s->inflight;
        if (!s->q)
            return;
        while (s->q && n < MAX_BATCH) {
            struct fwd *f = s->q;
            s->q = f->next;
            f->next = NULL;
            *tail = f;
            tail = &f->next;
            n++;
        }
        if (!s->q)
            s->q_tail = &s->q;
        s->nq -= n;
        s->ninflight = n;
        s->inflight_ofs = s->next_map_id;
        s->inflight_rid = ++s->rid;
        s->post_attempt = 1;
    }
    n = 0;
    for (struct fwd *f = s->inflight; f; f = f->next)
        msgs[n++] = f->json;
    buf_init(&body, 0);
    rc = session_url(s, &url, WC_REQ_FORWARD, s->inflight_rid, s->post_attempt);
    if (rc == 0)
        rc = wc_build_body(&body, NULL, s->inflight_ofs, msgs, n);
    if (rc == 0) {
        o.method = "POST";
        o.url = buf_str(&url);
        o.headers = (const char *[]){"Content-Type: application/x-www-form-urlencoded", NULL};
        o.body = body.p;
        o.body_len = body.len;
        o.timeout_ms = s->timeout_ms;
        o.body_cap = POST_REPLY_CAP;
        o.on_done = post_done;
        o.ud = s;
        s->post = http_request_new(s->http, &o, &e);
        if (!s->post)
            rc = e.code ? e.code : FS_EHTTP;
    }
    buf_release(&url);
    buf_release(&body);
    if (rc) {
        session_down(s, rc, true, "forward channel: %s", e.code ? e.msg : "request too large");
        return;
    }
    s->st.posts++;
}

/* ---- timers and closing ------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
    wc_session *s = t->data;

    if (s->closing)
        return;
    if (s->state == WC_BACKOFF || s->state == WC_IDLE)
        start_session(s);
    else if (s->state == WC_OPEN)
        start_get(s);
}

static void on_post_timer(uv_timer_t *t)
{
    wc_session *s = t->data;

    if (!s->closing)
        start_post(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    wc_session *s = h->data;
    void (*cb)(void *) = s->close_cb;
    void *ud = s->close_ud;

    if (--s->open_timers > 0)
        return;
    wc_frame_release(&s->hs_fr);
    wc_frame_release(&s->get_fr);
    json_doc_release(&s->doc);
    free(s->base);
    free(s->database);
    free(s->path);
    free(s);
    if (cb)
        cb(ud);
}

static void finalize(wc_session *s)
{
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    uv_close((uv_handle_t *)&s->post_timer, on_timer_closed);
}

/* ---- public API --------------------------------------------------------------------------- */

static void seed(wc_session *s)
{
    uint64_t v = 0;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
        v = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    s->rng = v ? v : 0x9e3779b97f4a7c15ULL;
}

static int check_config(const struct wc_config *cfg, const struct wc_callbacks *cb, fserr *e)
{
    char url[2048];

    if (!cfg || !cb || !cb->on_message)
        return fserr_set(e, FS_EINVAL,
                         "webchannel: a config and an on_message callback are "
                         "required");
    if (!cfg->base_url || !*cfg->base_url || strlen(cfg->base_url) > 1000)
        return fserr_set(e, FS_EINVAL, "webchannel: base_url missing or too long");
    if (!cfg->database || strncmp(cfg->database, "projects/", 9) != 0 ||
        !strstr(cfg->database, "/databases/") || strlen(cfg->database) > 512)
        return fserr_set(e, FS_EINVAL,
                         "webchannel: database must look like projects/P/databases/D");
    if (cfg->path && (cfg->path[0] != '/' || strlen(cfg->path) > 512 || strpbrk(cfg->path, "?#")))
        return fserr_set(e, FS_EINVAL, "webchannel: path must start with '/' and hold no query");
    if (cfg->request_timeout_ms < 0 || cfg->watchdog_ms < 0 || cfg->get_retry_ms < 0 ||
        cfg->backoff_min_ms < 0 || cfg->backoff_max_ms < 0)
        return fserr_set(e, FS_EINVAL, "webchannel: negative timeout");
    snprintf(url, sizeof(url), "%s%s", cfg->base_url, cfg->path ? cfg->path : WC_LISTEN_PATH);
    if (http_check_url(url, e) != 0)
        return fserr_prefix(e, "webchannel: base_url");
    return 0;
}

wc_session *wc_new(uv_loop_t *loop, http_client *http, const struct wc_config *cfg,
                   const struct wc_callbacks *cb, void *ud, fserr *e)
{
    wc_session *s;
    size_t n;

    if (!loop || !http) {
        fserr_set(e, FS_EINVAL, "webchannel: a loop and an HTTP client are required");
        return NULL;
    }
    if (check_config(cfg, cb, e) != 0)
        return NULL;
    s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->http = http;
    s->base = xstrdup(cfg->base_url);
    for (n = strlen(s->base); n > 0 && s->base[n - 1] == '/'; n--)
        s->base[n - 1] = '\0';
    s->database = xstrdup(cfg->database);
    s->path = xstrdup(cfg->path ? cfg->path : WC_LISTEN_PATH);
    s->timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : DEFAULT_TIMEOUT_MS;
    s->watchdog_cfg = cfg->watchdog_ms;
    s->get_retry_ms = cfg->get_retry_ms ? cfg->get_retry_ms : DEFAULT_GET_RETRY_MS;
    s->backoff_min = cfg->backoff_min_ms ? cfg->backoff_min_ms : DEFAULT_BACKOFF_MIN_MS;
    s->backoff_max = cfg->backoff_max_ms ? cfg->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    if (s->backoff_max < s->backoff_min)
        s->backoff_max = s->backoff_min;
    s->max_chunk = cfg->max_chunk_bytes ? cfg->max_chunk_bytes : WC_FRAME_DEFAULT_MAX;
    s->auth_header = cfg->auth_header;
    s->auth_ud = cfg->auth_ud;
    s->cb = *cb;
    s->ud = ud;
    s->state = WC_IDLE;
    s->keepalive_ms = DEFAULT_KEEPALIVE_MS;
    s->last_aid = -1;
    s->st.last_array_id = -1;
    s->q_tail = &s->q;
    s->held_tail = &s->held;
    seed(s);
    wc_frame_init(&s->hs_fr, s->max_chunk);
    wc_frame_init(&s->get_fr, s->max_chunk);
    json_doc_init(&s->doc);
    uv_timer_init(loop, &s->timer);
    uv_timer_init(loop, &s->post_timer);
    s->timer.data = s;
    s->post_timer.data = s;
    s->open_timers = 2;
    return s;
}

int wc_start(wc_session *s, fserr *e)
{
    if (!s || s->closing || s->state != WC_IDLE || uv_is_active((uv_handle_t *)&s->timer))
        return fserr_set(e, FS_EINVAL, "webchannel: already started or closed");
    uv_timer_start(&s->timer, on_timer, 0, 0);
    return 0;
}

int wc_send(wc_session *s, const char *json, fserr *e)
{
    json_doc d;
    struct fwd *f;
    size_t n;
    int rc;

    if (!s || s->closing)
        return fserr_set(e, FS_ECANCELED, "webchannel: the session is closed");
    if (!json)
        return fserr_set(e, FS_EINVAL, "webchannel: no message");
    n = strlen(json);
    if (n > MAX_MESSAGE_BYTES)
        return fserr_set(e, FS_ETOOBIG,
                         "webchannel: a %zu-byte message is over the %zu-byte "
                         "limit",
                         n, MAX_MESSAGE_BYTES);
    json_doc_init(&d);
    rc = json_parse(&d, json, n, e);
    if (rc) {
        fserr_prefix(e, "webchannel: message is not valid JSON");
        if (e)
            e->code = FS_EINVAL;
        rc = FS_EINVAL;
    } else if (json_type_of(&d, 0) != JSON_OBJECT) {
        rc = fserr_set(e, FS_EINVAL, "webchannel: a message must be a JSON object");
    }
    json_doc_release(&d);
    if (rc)
        return rc;
    f = xmalloc(sizeof(*f) + n + 1);
    f->next = NULL;
    f->len = n;
    memcpy(f->json, json, n + 1);
    *s->q_tail = f;
    s->q_tail = &f->next;
    s->nq++;
    start_post(s); /* does nothing unless the session is open and the forward channel idle */
    return 0;
}

void wc_resume(wc_session *s)
{
    if (!s || s->closing || !s->paused)
        return;
    s->paused = false;
    pump(s); /* does nothing while a delivery loop is running: that loop sees the flag */
}

int wc_restart(wc_session *s, fserr *e)
{
    if (!s || s->closing)
        return fserr_set(e, FS_ECANCELED, "webchannel: the session is closed");
    teardown(s, true);
    s->state = WC_BACKOFF;
    s->st.restarts++;
    uv_timer_start(&s->timer, on_timer, 0, 0);
    return 0;
}

void wc_close(wc_session *s, void (*done)(void *ud), void *ud)
{
    if (!s || s->closing)
        return;
    s->closing = true;
    s->close_cb = done;
    s->close_ud = ud;
    teardown(s, true);
    s->state = WC_CLOSED;
    if (s->nterm == 0)
        finalize(s);
}

void wc_free(wc_session *s)
{
    wc_close(s, NULL, NULL);
}

void wc_stats_get(const wc_session *s, struct wc_stats *out)
{
    *out = s->st;
    out->state = s->state;
    out->has_session = s->sid[0] != '\0';
    out->paused = s->paused;
    out->last_array_id = s->last_aid;
    out->queued = s->nq + s->ninflight;
    out->held_bytes = s->held_bytes;
}

const char *wc_state_name(enum wc_state st)
{
    switch (st) {
    case WC_IDLE:
        return "idle";
    case WC_CONNECTING:
        return "connecting";
    case WC_OPEN:
        return "open";
    case WC_BACKOFF:
        return "backoff";
    case WC_CLOSED:
        return "closed";
    }
    return "unknown";
}

const char *wc_session_id(const wc_session *s)
{
    return s ? s->sid : "";
}
