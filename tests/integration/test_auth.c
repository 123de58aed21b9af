/*
 * test_auth.c - the token provider on a real libuv loop against the fake Firestore server
 * (tests/fake/fake_fs.h): a throwaway service-account key gets a token whose JWT assertion
 * verifies with the public key and carries the right claims; short-lived tokens are refreshed
 * before they expire and on_token fires for each; refusals and outages of the token endpoint are
 * reported, retried with growing backoff, and never leak a secret into the error text; the
 * metadata mode sends Metadata-Flavor and refuses a reply without it; the emulator mode is ready
 * at once on loopback and refused elsewhere; closing mid-fetch leaves no live uv handle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/testkey.h"

#include "common/base64.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "firestore/auth.h"
#include "firestore/http.h"
#include "firestore/jwt.h"
#include "tests/fake/fake_fs.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define KID "5f0c0ffee5f0c0ffee5f0c0ffee5f0c0ffee5f0c"
#define EMAIL "firesync-test@demo-project.iam.gserviceaccount.com"
#define MAX_EVENTS 16

/* Made once for the group: the throwaway key pair and a private directory for key files. */
static struct {
    struct test_key k; /* the throwaway key pair and its directory */
    int nfiles;
} g;

/* One test's world: a loop, an HTTP client, the fake, the provider and what it reported. */
struct t {
    uv_loop_t loop;
    uv_timer_t deadline, tick;
    bool expired;
    http_client *http;
    bool http_closed;
    fake_fs *fs;
    struct fsauth *auth;
    struct cfg_firestore cfg;
    char *key_path;
    bool free_in_on_token; /* on_token frees the provider */

    int ntoken, nerror;
    char tokens[MAX_EVENTS][128];    /* the Authorization value at each on_token */
    uint64_t token_at[MAX_EVENTS];   /* loop time of each on_token */
    int64_t refresh_in[MAX_EVENTS];  /* fsauth_next_fetch_in() at each on_token */
    int codes[MAX_EVENTS];           /* each on_error's code */
    char whys[MAX_EVENTS][1024];     /* and text */
    bool ready_at_error[MAX_EVENTS]; /* fsauth_ready() during each on_error */
    uint64_t error_at[MAX_EVENTS];   /* loop time of each on_error */
    int64_t retry_in[MAX_EVENTS];    /* fsauth_next_fetch_in() during each on_error */
};

/* ---- key material -------------------------------------------------------------------------- */


static int group_setup(void **state)
{
    (void)state;

    log_init(LOG_STYLE_PLAIN, LOG_LVL_WARN);
    return test_key_make(&g.k, "test_auth");
}

static int group_teardown(void **state)
{
    (void)state;
    test_key_free(&g.k);
    return 0;
}

/* Writes a service-account key file whose token_uri is `token_uri`, with `mode`; returns its
 * path (caller frees). */
static char *write_key(const char *token_uri, mode_t mode)
{
    cJSON *o = cJSON_CreateObject();
    char *json, *path = xasprintf("%s/key%d.json", g.k.dir, g.nfiles++);
    int fd;
    size_t n;

    cJSON_AddStringToObject(o, "type", "service_account");
    cJSON_AddStringToObject(o, "project_id", "demo-project");
    cJSON_AddStringToObject(o, "private_key_id", KID);
    cJSON_AddStringToObject(o, "private_key", g.k.pem);
    cJSON_AddStringToObject(o, "client_email", EMAIL);
    cJSON_AddStringToObject(o, "token_uri", token_uri);
    json = cJSON_Print(o);
    cJSON_Delete(o);
    n = strlen(json);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    cJSON_free(json);
    return path;
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void on_deadline(uv_timer_t *h)
{
    struct t *t = h->data;
    t->expired = true;
}

static void on_tick(uv_timer_t *h)
{
    (void)h; /* only wakes the loop so that predicates on the fake's thread are re-checked */
}

/* Runs the loop until pred(t) holds or ms pass; returns pred(t). */
static bool run_until(struct t *t, bool (*pred)(struct t *t), uint64_t ms)
{
    t->expired = false;
    uv_timer_start(&t->deadline, on_deadline, ms, 0);
    uv_timer_start(&t->tick, on_tick, 10, 10);
    while (!pred(t) && !t->expired)
        uv_run(&t->loop, UV_RUN_ONCE);
    uv_timer_stop(&t->deadline);
    uv_timer_stop(&t->tick);
    return pred(t);
}

static int want_tokens, want_errors;
static long want_requests;
static enum fake_fs_stat want_stat;

static bool enough_tokens(struct t *t)
{
    return t->ntoken >= want_tokens;
}

static bool enough_errors(struct t *t)
{
    return t->nerror >= want_errors;
}

static bool enough_requests(struct t *t)
{
    return fake_fs_stat(t->fs, want_stat) >= want_requests;
}

static bool wait_tokens(struct t *t, int n)
{
    want_tokens = n;
    return run_until(t, enough_tokens, 15000);
}

static bool wait_errors(struct t *t, int n)
{
    want_errors = n;
    return run_until(t, enough_errors, 15000);
}

static bool never(struct t *t)
{
    (void)t;
    return false;
}

/* ---- the provider's callbacks -------------------------------------------------------------- */

static void cb_token(void *ud)
{
    struct t *t = ud;
    buf b;

    if (t->ntoken < MAX_EVENTS) {
        buf_init(&b, sizeof(t->tokens[0]) - 1);
        if (fsauth_header(t->auth, &b) == 0)
            snprintf(t->tokens[t->ntoken], sizeof(t->tokens[0]), "%s", buf_str(&b));
        buf_release(&b);
        t->token_at[t->ntoken] = uv_now(&t->loop);
        t->refresh_in[t->ntoken] = fsauth_next_fetch_in(t->auth);
    }
    t->ntoken++;
    if (t->free_in_on_token) {
        fsauth_free(t->auth);
        t->auth = NULL;
    }
}

static void cb_error(void *ud, int code, const char *why)
{
    struct t *t = ud;

    if (t->nerror < MAX_EVENTS) {
        t->codes[t->nerror] = code;
        snprintf(t->whys[t->nerror], sizeof(t->whys[0]), "%s", why);
        t->ready_at_error[t->nerror] = fsauth_ready(t->auth);
        t->error_at[t->nerror] = uv_now(&t->loop);
        t->retry_in[t->nerror] = fsauth_next_fetch_in(t->auth);
    }
    t->nerror++;
}

static const struct fsauth_callbacks callbacks = {cb_token, cb_error};

/* ---- setup and teardown -------------------------------------------------------------------- */

static int setup(void **state)
{
    struct t *t = xcalloc(1, sizeof(*t));
    fserr e = {0};

    if (uv_loop_init(&t->loop) != 0)
        return -1;
    uv_timer_init(&t->loop, &t->deadline);
    uv_timer_init(&t->loop, &t->tick);
    t->deadline.data = t->tick.data = t;
    t->http = http_client_new(&t->loop, &e);
    t->fs = fake_fs_start();
    if (!t->http || !t->fs) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    t->cfg.database = (char *)"(default)";
    t->cfg.project_id = (char *)"demo-project";
    t->cfg.endpoint = (char *)"https://firestore.googleapis.com";
    t->cfg.request_timeout_ms = 10000;
    unsetenv(FSAUTH_METADATA_ENV);
    *state = t;
    return 0;
}

static void on_http_closed(void *ud)
{
    struct t *t = ud;
    t->http_closed = true;
}

/* Closes the provider, then the client, then the loop; fails if a handle is left behind. */
static int close_all(struct t *t)
{
    int rc;

    fsauth_free(t->auth);
    t->auth = NULL;
    if (t->http)
        http_client_close(t->http, on_http_closed, t);
    uv_close((uv_handle_t *)&t->deadline, NULL);
    uv_close((uv_handle_t *)&t->tick, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    http_client_free(t->http);
    t->http = NULL;
    rc = uv_loop_close(&t->loop);
    if (rc != 0)
        fprintf(stderr, "the loop still holds handles: %s\n", uv_strerror(rc));
    return rc;
}

static int teardown(void **state)
{
    struct t *t = *state;
    int rc = t->http || t->auth ? close_all(t) : 0;

    unsetenv(FSAUTH_METADATA_ENV);
    fake_fs_free(t->fs);
    free(t->key_path);
    free(t);
    return rc ? -1 : 0;
}

/* A provider from a key file whose token_uri is the fake's, started. */
static void start_service_account(struct t *t)
{
    char *uri = xasprintf("%s/token", fake_fs_url(t->fs));
    fserr e = {0};

    t->key_path = write_key(uri, 0600);
    free(uri);
    t->cfg.credentials_file = t->key_path;
    if (fsauth_new(&t->loop, t->http, &t->cfg, &callbacks, t, &t->auth, &e) != 0)
        fail_msg("fsauth_new: %s", e.msg);
    assert_int_equal(fsauth_mode(t->auth), FSAUTH_SERVICE_ACCOUNT);
    if (fsauth_start(t->auth, &e) != 0)
        fail_msg("fsauth_start: %s", e.msg);
}

/* ---- JWT checks ---------------------------------------------------------------------------- */

static char *decode_part(const char *part, size_t n)
{
    buf b;

    buf_init(&b, 0);
    assert_int_equal(base64_decode(BASE64_URL, part, n, &b), 0);
    return buf_take(&b);
}

/* Verifies the RS256 signature of jwt with the public key alone. */
static bool signature_verifies(const char *jwt)
{
    const char *dot2 = strrchr(jwt, '.');
    BIO *bio = BIO_new_mem_buf(g.k.pub_pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    buf sig;
    bool ok;

    assert_non_null(dot2);
    assert_non_null(pub);
    buf_init(&sig, 0);
    assert_int_equal(base64_decode(BASE64_URL, dot2 + 1, strlen(dot2 + 1), &sig), 0);
    ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
         EVP_DigestVerify(ctx, (const unsigned char *)sig.p, sig.len, (const unsigned char *)jwt,
                          (size_t)(dot2 - jwt)) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pub);
    BIO_free(bio);
    buf_release(&sig);
    return ok;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_true(cJSON_IsString(it));
    return it->valuestring;
}

static double jnum(const cJSON *o, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, name);
    assert_true(cJSON_IsNumber(it));
    return it->valuedouble;
}

/* No error text may hold key material, a JWT, a token or a Bearer value. */
static void assert_no_secret(const char *why)
{
    char *copy = xstrdup(g.k.pem);

    assert_null(strstr(why, "PRIVATE KEY"));
    assert_null(strstr(why, "eyJ")); /* every JWT part starts so: base64url of '{"' */
    assert_null(strstr(why, "assertion="));
    assert_null(strstr(why, "fake-token"));
    assert_null(strstr(why, "impostor"));
    assert_null(strstr(why, "Bearer"));
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n"))
        if (strlen(line) >= 16 && strstr(why, line))
            fail_msg("error text leaks a PEM line: %s", why);
    free(copy);
}

/* ---- tests: service account ---------------------------------------------------------------- */

static void test_service_account_key_gets_a_token_with_a_verifiable_assertion(void **state)
{
    struct t *t = *state;
    char *uri = xasprintf("%s/token", fake_fs_url(t->fs));
    char *jwt, *ct, *hdr, *claims;
    const char *d1, *d2;
    cJSON *h, *c;
    int64_t now = (int64_t)time(NULL), exp_at;

    start_service_account(t);
    assert_false(fsauth_ready(t->auth));
    assert_true(wait_tokens(t, 1));
    assert_true(fsauth_ready(t->auth));
    assert_string_equal(t->tokens[0], "Bearer fake-token-1");
    assert_int_equal(fsauth_failures(t->auth), 0);
    assert_true(t->refresh_in[0] > 2870000 && t->refresh_in[0] <= 2880000); /* 80% of 1 h */
    exp_at = fsauth_expires_at(t->auth);
    assert_true(exp_at >= (now + 3500) * 1000 && exp_at <= (now + 3700) * 1000);

    ct = fake_fs_last_header(t->fs, FAKE_FS_REQ_TOKEN, "Content-Type");
    assert_non_null(ct);
    assert_string_equal(ct, "application/x-www-form-urlencoded");
    jwt = fake_fs_token_assertion(t->fs);
    assert_non_null(jwt);
    assert_true(signature_verifies(jwt));

    d1 = strchr(jwt, '.');
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    assert_non_null(d2);
    hdr = decode_part(jwt, (size_t)(d1 - jwt));
    claims = decode_part(d1 + 1, (size_t)(d2 - d1 - 1));
    h = cJSON_Parse(hdr);
    c = cJSON_Parse(claims);
    assert_non_null(h);
    assert_non_null(c);
    assert_string_equal(jstr(h, "alg"), "RS256");
    assert_string_equal(jstr(h, "kid"), KID);
    assert_string_equal(jstr(c, "iss"), EMAIL);
    assert_string_equal(jstr(c, "scope"), "https://www.googleapis.com/auth/datastore");
    assert_string_equal(jstr(c, "aud"), uri);
    assert_true(jnum(c, "iat") >= (double)(now - 60) && jnum(c, "iat") <= (double)(now + 60));
    assert_true(jnum(c, "exp") - jnum(c, "iat") == 3600.0);
    cJSON_Delete(h);
    cJSON_Delete(c);
    free(hdr);
    free(claims);
    free(jwt);
    free(ct);
    free(uri);
}

static void test_short_lived_tokens_are_refreshed_before_expiry(void **state)
{
    struct t *t = *state;
    char scrubbed[128];

    fake_fs_set_token(t->fs, NULL, 1); /* each token lives 1 s: refreshed after half of it */
    start_service_account(t);
    assert_true(wait_tokens(t, 3));
    assert_string_equal(t->tokens[0], "Bearer fake-token-1");
    assert_string_equal(t->tokens[1], "Bearer fake-token-2");
    assert_string_equal(t->tokens[2], "Bearer fake-token-3");
    /* each refresh was scheduled inside the token's life: after half of it (80% is later than
     * 5 minutes before expiry only for long tokens), well before its end */
    for (int i = 0; i < 3; i++)
        if (t->refresh_in[i] < 400 || t->refresh_in[i] > 800)
            fail_msg("token %d: refresh scheduled in %lld ms, want about 500 of its 1000", i,
                     (long long)t->refresh_in[i]);
    /* and it was not a hot loop: each refresh waited that long */
    assert_true(t->token_at[1] - t->token_at[0] >= 500);
    assert_true(t->token_at[2] - t->token_at[1] >= 500);
    assert_true(fake_fs_stat(t->fs, FAKE_FS_TOKENS) >= 3);
    assert_int_equal(t->nerror, 0);
    /* every token was registered as a secret: log lines cannot carry it */
    log_scrub("token fake-token-2 here", scrubbed, sizeof(scrubbed));
    assert_null(strstr(scrubbed, "fake-token-2"));
    assert_non_null(strstr(scrubbed, "[redacted]"));
}

static void test_token_endpoint_errors_are_reported_and_retried_with_backoff(void **state)
{
    struct t *t = *state;

    fake_fs_fail_next(t->fs, FAKE_FS_REQ_TOKEN, 401,
                      "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT "
                      "Signature.\"}");
    fake_fs_fail_next(t->fs, FAKE_FS_REQ_TOKEN, 503, "upstream unavailable");
    fake_fs_fail_next(t->fs, FAKE_FS_REQ_TOKEN, 400,
                      "{\"error\":\"invalid_grant\",\"error_description\":\"bad assertion "
                      "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU\"}");
    start_service_account(t);
    fsauth_set_backoff(t->auth, 100, 1000);
    assert_true(wait_errors(t, 3));
    assert_true(wait_tokens(t, 1));
    assert_int_equal(t->nerror, 3);

    assert_int_equal(t->codes[0], FS_EAUTH);
    assert_non_null(strstr(t->whys[0], "HTTP 401"));
    assert_non_null(strstr(t->whys[0], "invalid_grant"));
    assert_int_equal(t->codes[1], FS_EAGAIN);
    assert_true(fserr_transient(t->codes[1]));
    assert_non_null(strstr(t->whys[1], "HTTP 503"));
    assert_int_equal(t->codes[2], FS_EAUTH);
    assert_non_null(strstr(t->whys[2], "[redacted]")); /* an echoed JWT is cut out */
    for (int i = 0; i < 3; i++) {
        assert_false(t->ready_at_error[i]);
        assert_non_null(strstr(t->whys[i], "/token"));
        assert_non_null(strstr(t->whys[i], "retry"));
        assert_no_secret(t->whys[i]);
    }
    /* each retry was scheduled in its doubling jitter band (base 100 ms)... */
    for (int i = 0; i < 3; i++)
        if (t->retry_in[i] < (50 << i) || t->retry_in[i] > (100 << i))
            fail_msg("retry %d scheduled in %lld ms, want [%d, %d]", i + 1,
                     (long long)t->retry_in[i], 50 << i, 100 << i);
    /* ...and really waited that long */
    assert_true(t->error_at[1] - t->error_at[0] >= 50);
    assert_true(t->error_at[2] - t->error_at[1] >= 100);
    assert_int_equal(fake_fs_stat(t->fs, FAKE_FS_TOKENS), 4);
    assert_true(fsauth_ready(t->auth));
    assert_int_equal(fsauth_failures(t->auth), 0);
}

static void test_failed_refresh_keeps_the_valid_token_in_use(void **state)
{
    struct t *t = *state;
    buf b;

    fake_fs_set_token(t->fs, NULL, 4); /* refresh after 2 s */
    start_service_account(t);
    fsauth_set_backoff(t->auth, 100, 200);
    assert_true(wait_tokens(t, 1));
    fake_fs_fail_next(t->fs, FAKE_FS_REQ_TOKEN, 503, NULL);
    assert_true(wait_errors(t, 1));
    assert_true(t->ready_at_error[0]);
    buf_init(&b, 256);
    assert_int_equal(fsauth_header(t->auth, &b), 0);
    assert_string_equal(buf_str(&b), "Bearer fake-token-1");
    buf_release(&b);
    assert_no_secret(t->whys[0]);
    assert_true(wait_tokens(t, 2));
    assert_string_equal(t->tokens[1], "Bearer fake-token-2");
}

static void test_expired_token_is_no_longer_offered_while_refresh_fails(void **state)
{
    struct t *t = *state;
    buf b;

    fake_fs_set_token(t->fs, NULL, 1); /* refresh after 500 ms, expiry after 1000 ms */
    start_service_account(t);
    fsauth_set_backoff(t->auth, 400, 400); /* retries after 200-400 ms */
    assert_true(wait_tokens(t, 1));
    for (int i = 0; i < 4; i++)
        fake_fs_fail_next(t->fs, FAKE_FS_REQ_TOKEN, 503, NULL);
    /* the 4th failure comes at least 500 + 3 * 200 ms after the token: past its expiry */
    assert_true(wait_errors(t, 4));
    assert_true(t->error_at[3] - t->token_at[0] >= 1100);
    assert_false(t->ready_at_error[3]);
    assert_true(wait_tokens(t, 2));
    assert_string_equal(t->tokens[1], "Bearer fake-token-2");
    buf_init(&b, 256);
    assert_int_equal(fsauth_header(t->auth, &b), 0);
    buf_release(&b);
}

static void test_key_file_problems_are_refused_at_setup(void **state)
{
    struct t *t = *state;
    struct fsauth *a = (struct fsauth *)&a; /* must come back NULL */
    fserr e = {0};

    t->cfg.credentials_file = (char *)"/nonexistent/firesync-key.json";
    assert_int_equal(fsauth_new(&t->loop, t->http, &t->cfg, &callbacks, t, &a, &e), FS_ENOTFOUND);
    assert_null(a);
    assert_non_null(strstr(e.msg, "/nonexistent/firesync-key.json"));

    t->key_path = write_key("https://oauth2.googleapis.com/token", 0644);
    t->cfg.credentials_file = t->key_path;
    assert_int_equal(fsauth_new(&t->loop, t->http, &t->cfg, &callbacks, t, &a, &e), FS_EPERM);
    assert_null(a);
    assert_non_null(strstr(e.msg, "chmod 600"));
    assert_no_secret(e.msg);
    free(t->key_path);

    /* a token_uri that would send the assertion in clear text to another host */
    t->key_path = write_key("http://oauth.example.com/token", 0600);
    t->cfg.credentials_file = t->key_path;
    assert_int_equal(fsauth_new(&t->loop, t->http, &t->cfg, &callbacks, t, &a, &e), FS_ECONFIG);
    assert_null(a);
    assert_non_null(strstr(e.msg, "token_uri"));
    assert_no_secret(e.msg);
}

/* ---- tests: metadata server ---------------------------------------------------------------- */

static void start_metadata(struct t *t, const char *env)
{
    fserr e = {0};

    setenv(FSAUTH_METADATA_ENV, env, 1);
    if (fsauth_new(&t->loop, t->http, &t->cfg, &callbacks, t, &t->auth, &e) != 0)
        fail_msg("fsauth_new: %s", e.msg);
    assert_int_equal(fsauth_mode(t->auth), FSAUTH_METADATA);
    if (fsauth_start(t->auth, &e) != 0)
        fail_msg("fsauth_start: %s", e.msg);
}

static void test_metadata_server_named_by_gce_metadata_host_gives_a_token(void **state)
{
    struct t *t = *state;
    char host[64], *flavor;

    snprintf(host, sizeof(host), "127.0.0.1:%d", fake_fs_port(t->fs));
    start_metadata(t, host);
    assert_true(wait_tokens(t, 1));
    assert_string_equal(t->tokens[0], "Bearer fake-token-1");
    assert_int_equal(t->nerror, 0);
    assert_int_equal(fake_fs_stat(t->fs, FAKE_FS_METADATAS), 1);
    assert_int_equal(fake_fs_stat(t->fs, FAKE_FS_TOKENS), 0);
    flavor = fake_fs_last_header(t->fs, FAKE_FS_REQ_METADATA, "Metadata-Flavor");
    assert_non_null(flavor);
    assert_string_equal(flavor, "Google");
    free(flavor);
}

static void test_metadata_reply_without_the_flavor_header_is_refused(void **state)
{
    struct t *t = *state;

    /* what the metadata server says to a request without the header, then an impostor that
     * answers with a token but without the response header */
    fake_fs_fail_next(t->fs, FAKE_FS_REQ_METADATA, 403, "Missing Metadata-Flavor:Google header.");
    fake_fs_fail_next(t->fs, FAKE_FS_REQ_METADATA, 200,
                      "{\"access_token\":\"impostor-token-0123\",\"expires_in\":3600,"
                      "\"token_type\":\"Bearer\"}");
    start_metadata(t, fake_fs_url(t->fs));
    fsauth_set_backoff(t->auth, 20, 40);
    assert_true(wait_errors(t, 2));
    assert_int_equal(t->codes[0], FS_EAUTH);
    assert_non_null(strstr(t->whys[0], "HTTP 403"));
    assert_int_equal(t->codes[1], FS_EPROTO);
    assert_non_null(strstr(t->whys[1], "Metadata-Flavor"));
    assert_false(t->ready_at_error[1]);
    assert_no_secret(t->whys[0]);
    assert_no_secret(t->whys[1]);
    /* the genuine server is believed */
    assert_true(wait_tokens(t, 1));
    assert_string_equal(t->tokens[0], "Bearer fake-token-1");
}

/* ---- tests: emulator ----------------------------------------------------------------------- */

static void test_emulator_on_a_remote_host_is_refused(void **state)
{
    static const char *const hosts[] = {"firestore.example.com:8080", "10.1.2.3:8080",
                                        "[2001:db8::1]:8080"};
    struct t *t = *state;

    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        struct fsauth *a = (struct fsauth *)&a;
        fserr e = {0};
        t->cfg.emulator_host = (char *)hosts[i];
        t->cfg.credentials_file = (char *)"/does/not/matter.json"; /* emulator wins: no fallback */
        assert_int_equal(fsauth_new(&t->loop, t->http, &t->cfg, &callbacks, t, &a, &e), FS_ECONFIG);
        assert_null(a);
        assert_non_null(strstr(e.msg, hosts[i]));
        assert_non_null(strstr(e.msg, "loopback"));
    }
}

static void test_emulator_on_loopback_is_ready_at_once_with_owner(void **state)
{
    struct t *t = *state;
    fserr e = {0};
    buf b;

    t->cfg.emulator_host = (char *)"127.0.0.1:8080";
    assert_int_equal(fsauth_new(&t->loop, NULL, &t->cfg, &callbacks, t, &t->auth, &e), 0);
    assert_int_equal(fsauth_mode(t->auth), FSAUTH_EMULATOR);
    assert_false(fsauth_ready(t->auth));
    assert_int_equal(fsauth_start(t->auth, &e), 0);
    assert_true(fsauth_ready(t->auth));
    assert_int_equal(t->ntoken, 0); /* never from inside fsauth_start */
    buf_init(&b, 64);
    assert_int_equal(fsauth_header(t->auth, &b), 0);
    assert_string_equal(buf_str(&b), "Bearer owner");
    buf_release(&b);
    assert_int_equal(fsauth_expires_at(t->auth), 0);
    assert_true(wait_tokens(t, 1));
    assert_string_equal(t->tokens[0], "Bearer owner");
    assert_int_equal(fsauth_start(t->auth, &e), FS_EINVAL); /* once only */
    assert_int_equal(fsauth_next_fetch_in(t->auth), -1);    /* "owner" is never refreshed */
    run_until(t, never, 50);
    assert_int_equal(t->ntoken, 1);
    assert_int_equal(http_active(t->http), 0);
}

/* ---- tests: lifetime ----------------------------------------------------------------------- */

static void test_closing_mid_fetch_leaves_no_live_handle(void **state)
{
    struct t *t = *state;
    buf b;

    fake_fs_fail_next(t->fs, FAKE_FS_REQ_TOKEN, FAKE_FS_HANG, NULL);
    start_service_account(t);
    want_stat = FAKE_FS_TOKENS;
    want_requests = 1;
    assert_true(run_until(t, enough_requests, 15000));
    assert_int_equal(http_active(t->http), 1);
    fsauth_close(t->auth);
    assert_int_equal(http_active(t->http), 0); /* the fetch was cancelled */
    assert_false(fsauth_ready(t->auth));
    buf_init(&b, 64);
    assert_int_equal(fsauth_header(t->auth, &b), FS_EAGAIN);
    buf_release(&b);
    fsauth_close(t->auth); /* idempotent */
    assert_int_equal(close_all(t), 0);
    assert_int_equal(t->ntoken, 0);
    assert_int_equal(t->nerror, 0);
}

static void test_a_callback_may_free_the_provider(void **state)
{
    struct t *t = *state;

    t->free_in_on_token = true;
    start_service_account(t);
    assert_true(wait_tokens(t, 1));
    assert_null(t->auth);
    assert_int_equal(close_all(t), 0);
    assert_int_equal(t->ntoken, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_service_account_key_gets_a_token_with_a_verifiable_assertion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_lived_tokens_are_refreshed_before_expiry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_token_endpoint_errors_are_reported_and_retried_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_refresh_keeps_the_valid_token_in_use, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expired_token_is_no_longer_offered_while_refresh_fails,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_problems_are_refused_at_setup, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_metadata_server_named_by_gce_metadata_host_gives_a_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_reply_without_the_flavor_header_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_emulator_on_a_remote_host_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emulator_on_loopback_is_ready_at_once_with_owner,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_closing_mid_fetch_leaves_no_live_handle, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_callback_may_free_the_provider, setup, teardown),
    };
    return cmocka_run_group_tests_name("auth_integration", tests, group_setup, group_teardown);
}
