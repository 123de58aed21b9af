/*
 * stream.c - HTTP client + token provider + WebChannel session + Listen state (see stream.h).
 *
 * Owns those four objects and the glue between them: the session asks the provider for the
 * Authorization header at each handshake and asks Listen for its addTarget requests at each
 * connect; Listen sends through the session; messages from the session go to Listen, then the
 * owner's hooks decide whether to pause. Teardown runs in order (session, provider, client),
 * each step from the previous one's completion callback.
 */
#include "agent/stream.h"

#include "common/log.h"
#include "common/xalloc.h"
#include "firestore/auth.h"
#include "firestore/http.h"
#include "firestore/webchannel.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct stream {
    uv_loop_t *loop;
    const struct cfg *cfg;
    http_client *http;
    struct fsauth *auth;
    wc_session *wc;
    listen_state *ls;
    struct listen_callbacks cb;
    struct stream_hooks hooks;
    void *ud;
    char *database;
    char *base_url;
    bool started; /* the session was started (after the first token) */
    bool up;
    int64_t since_us;
    uint64_t reconnects;
    void (*done)(void *ud);
    void *done_ud;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int send_request(void *ud, const char *json)
{
    struct stream *s = ud;
    fserr e = {0};
    return wc_send(s->wc, json, &e);
}

static void on_connect(void *ud)
{
    struct stream *s = ud;
    fserr e = {0};

    if (listen_connect(s->ls, &e) != 0)
        log_error("stream: %s", e.msg);
}

static void set_up(struct stream *s, bool up, const char *why)
{
    if (s->up == up)
        return;
    s->up = up;
    s->since_us = now_us();
    if (s->hooks.on_state)
        s->hooks.on_state(s->ud, up, why);
}

static void on_open(void *ud)
{
    struct stream *s = ud;
    log_info("stream: session open to %s", s->base_url);
    set_up(s, true, "session open");
}

static void on_down(void *ud, int code, const char *why)
{
    struct stream *s = ud;
    s->reconnects++;
    log_warn("stream: session lost (%s): %s; reconnecting", fserr_name(code), why);
    set_up(s, false, why);
}

static int on_message(void *ud, const json_doc *d, int tok)
{
    struct stream *s = ud;
    fserr e = {0};
    int rc = listen_handle(s->ls, d, tok, &e);

    if (rc) {
        log_error("stream: %s", e.msg);
        return rc;
    }
    if (s->hooks.should_pause && s->hooks.should_pause(s->ud))
        return WC_PAUSE;
    return 0;
}

static int auth_header(void *ud, buf *out)
{
    struct stream *s = ud;
    return fsauth_header(s->auth, out);
}

static void on_token(void *ud)
{
    struct stream *s = ud;
    fserr e = {0};

    if (!s->started) {
        s->started = true;
        if (wc_start(s->wc, &e) != 0)
            log_error("stream: %s", e.msg);
        return;
    }
    /* identity is bound at the handshake: a new token needs a new session */
    log_info("stream: access token refreshed; opening a new session");
    if (wc_restart(s->wc, &e) != 0)
        log_error("stream: %s", e.msg);
}

static void on_auth_error(void *ud, int code, const char *why)
{
    struct stream *s = ud;
    (void)s;
    log_warn("stream: access token: %s (%s); retrying", why, fserr_name(code));
}

static void set_true(void *ud)
{
    *(bool *)ud = true;
}

int stream_new(uv_loop_t *loop, const struct cfg *cfg, const struct listen_callbacks *cb,
               const struct stream_hooks *hooks, void *ud, struct stream **out, fserr *e)
{
    struct stream *s = xcalloc(1, sizeof(*s));
    struct listen_callbacks lcb = *cb;
    struct fsauth_callbacks acb = {on_token, on_auth_error};
    struct wc_config wcfg = {0};
    struct wc_callbacks wcb = {on_connect, on_open, on_message, on_down};
    int rc;

    s->loop = loop;
    s->cfg = cfg;
    s->cb = *cb;
    if (hooks)
        s->hooks = *hooks;
    s->ud = ud;
    s->since_us = now_us();
    s->database = xasprintf("projects/%s/databases/%s", cfg->firestore.project_id,
                            cfg->firestore.database);
    s->base_url = cfg->firestore.emulator_host
                      ? xasprintf("http://%s", cfg->firestore.emulator_host)
                      : xstrdup(cfg->firestore.endpoint);
    lcb.send = send_request;
    s->ls = listen_new(s->database, &lcb, ud);
    /* Listen calls its callbacks with the owner's ud, but `send` needs the stream: */
    listen_set_send(s->ls, send_request, s);
    s->http = http_client_new(loop, e);
    if (!s->http) {
        rc = e ? e->code : FS_EINTERNAL;
        goto fail;
    }
    rc = fsauth_new(loop, s->http, &cfg->firestore, &acb, s, &s->auth, e);
    if (rc)
        goto fail;
    wcfg.base_url = s->base_url;
    wcfg.database = s->database;
    wcfg.request_timeout_ms = (long)cfg->firestore.request_timeout_ms;
    wcfg.auth_header = auth_header;
    wcfg.auth_ud = s;
    s->wc = wc_new(loop, s->http, &wcfg, &wcb, s, e);
    if (!s->wc) {
        rc = e ? e->code : FS_EINTERNAL;
        goto fail;
    }
    *out = s;
    return 0;
fail:
    /* the provider and the client hold uv handles: close them and let the loop finish that */
    fsauth_free(s->auth);
    if (s->http) {
        bool closed = false;
        http_client_close(s->http, set_true, &closed);
        for (int i = 0; i < 100 && !closed; i++)
            uv_run(loop, UV_RUN_NOWAIT);
        http_client_free(s->http);
    }
    listen_free(s->ls);
    free(s->database);
    free(s->base_url);
    free(s);
    return rc ? rc : FS_EINTERNAL;
}

int stream_add_target(struct stream *s, const char *path, const char *resume_token, fserr *e)
{
    return listen_add_target(s->ls, path, resume_token, e);
}

int stream_start(struct stream *s, fserr *e)
{
    /* the session starts from on_token, once the first token is in place */
    return fsauth_start(s->auth, e);
}

void stream_resume(struct stream *s)
{
    wc_resume(s->wc);
}

int stream_relisten(struct stream *s, int target, fserr *e)
{
    return listen_relisten(s->ls, target, e);
}

static void http_closed(void *ud)
{
    struct stream *s = ud;
    void (*done)(void *) = s->done;
    void *done_ud = s->done_ud;

    http_client_free(s->http);
    listen_free(s->ls);
    free(s->database);
    free(s->base_url);
    free(s);
    if (done)
        done(done_ud);
}

static void wc_closed(void *ud)
{
    struct stream *s = ud;
    fsauth_free(s->auth);
    s->auth = NULL;
    http_client_close(s->http, http_closed, s);
}

void stream_close(struct stream *s, void (*done)(void *ud), void *ud)
{
    s->done = done;
    s->done_ud = ud;
    wc_close(s->wc, wc_closed, s);
    s->wc = NULL;
}

bool stream_up(const struct stream *s)
{
    return s->up;
}

int64_t stream_since_us(const struct stream *s)
{
    return s->since_us;
}

int64_t stream_last_data_us(const struct stream *s)
{
    struct wc_stats st;
    if (!s->wc)
        return 0;
    wc_stats_get(s->wc, &st);
    return st.last_data_unix_ms * 1000;
}

uint64_t stream_reconnects(const struct stream *s)
{
    return s->reconnects;
}

listen_state *stream_listen(struct stream *s)
{
    return s->ls;
}

const char *stream_database(const struct stream *s)
{
    return s->database;
}

const char *stream_base_url(const struct stream *s)
{
    return s->base_url;
}

int stream_auth_header(struct stream *s, buf *out)
{
    return fsauth_header(s->auth, out);
}

struct http_client *stream_http(struct stream *s)
{
    return s->http;
}
