/*
 * http.c - asynchronous HTTP over curl's multi-socket API and a libuv loop (see http.h).
 *
 * Owns the curl multi handle, one uv_poll_t per socket curl asks us to watch, and the one
 * uv_timer_t that serves both curl's timeout and every request's idle deadline (the timer is
 * armed for whichever comes first). It lives apart from the WebChannel logic so that the
 * delicate part, curl's re-entrancy rules, sits in one place:
 *
 *   - curl must not be re-entered from its own callbacks (no curl_multi_add_handle or
 *     curl_multi_remove_handle from a write callback). `depth` counts how deep we are inside
 *     curl; starting, cancelling, pausing or resuming a request at depth > 0 only sets flags,
 *     and settle() carries them out once curl has returned (right after, in the loop callback
 *     that called curl, or from a 0 ms timer).
 *   - Completion is read with curl_multi_info_read() only at depth 0, so on_done can do
 *     anything, including starting the next request.
 *   - A caller's pause becomes curl's pause either by CURL_WRITEFUNC_PAUSE (when the next piece
 *     arrives, nothing consumed) or by curl_easy_pause(CURLPAUSE_RECV) at depth 0.
 *
 * Memory: a request is freed right after its on_done returns or when it is cancelled; socket
 * contexts are freed in their uv close callbacks.
 */
#include "firestore/http.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Header lines longer than this are not handed to on_header (curl itself caps them at 100 KB). */
#define HEADER_LINE_MAX 8192

struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    http_client *c;
    int events;   /* UV_READABLE | UV_WRITABLE as curl last asked */
    bool closing; /* curl let go of the socket; the handle is closing */
    struct sock_ctx *next;
    struct sock_ctx **pprev;
};

struct http_request {
    http_client *c;
    CURL *h;
    CURLU *url;
    struct curl_slist *hdrs;
    struct http_request *next;
    struct http_request **pprev;
    http_header_fn on_header;
    http_data_fn on_data;
    http_done_fn on_done;
    void *ud;
    buf body;             /* buffered mode only */
    size_t body_cap;      /* 0: no cap (streamed only) */
    uint64_t received;    /* body bytes taken */
    long idle_ms;         /* 0: no idle timeout */
    uint64_t last_active; /* loop time of the last byte (or start, or resume) */
    int cb_rc;            /* code a callback (or the cap) aborted with */
    fserr cb_err;
    bool added;       /* in the multi handle */
    bool paused;      /* the caller wants no body bytes */
    bool curl_paused; /* curl's receive side is paused */
    bool cancelled;   /* no callback may run; free when curl lets go */
    bool done;        /* on_done running or ran */
    char label[256];  /* "GET http://host:port/path" for messages: no query, no secrets */
    char errbuf[CURL_ERROR_SIZE];
};

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    bool curl_armed; /* curl wants a timeout call at curl_due */
    uint64_t curl_due;
    bool kick; /* deferred work waits for settle() */
    int depth; /* > 0 while curl is running our callbacks */
    struct sock_ctx *socks;
    http_request *reqs;
    size_t nreqs;
    bool closing;       /* http_client_close() was called */
    bool close_started; /* the uv handles are being closed */
    bool closed;        /* every uv handle is closed */
    bool free_on_close;
    int open_handles; /* uv handles not yet closed */
    void (*done_cb)(void *ud);
    void *done_ud;
};

static void on_timer(uv_timer_t *t);
static void settle(http_client *c);

/* ---- small helpers ------------------------------------------------------------------------ */

static void link_req(http_client *c, http_request *r)
{
    r->next = c->reqs;
    if (r->next)
        r->next->pprev = &r->next;
    r->pprev = &c->reqs;
    c->reqs = r;
    c->nreqs++;
}

static void unlink_req(http_request *r)
{
    if (!r->pprev)
        return;
    *r->pprev = r->next;
    if (r->next)
        r->next->pprev = r->pprev;
    r->pprev = NULL;
    r->next = NULL;
    r->c->nreqs--;
}

/* Frees a request that is already out of the multi handle and the client's list. */
static void destroy(http_request *r)
{
    if (r->h)
        curl_easy_cleanup(r->h);
    curl_url_cleanup(r->url);
    curl_slist_free_all(r->hdrs);
    buf_release(&r->body);
    free(r);
}

/* Takes a request out of curl and the list (depth 0 only). */
static void detach(http_request *r)
{
    if (r->added) {
        curl_multi_remove_handle(r->c->multi, r->h);
        r->added = false;
    }
    unlink_req(r);
}

static bool is_tls_error(CURLcode cc)
{
    switch (cc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return true;
    default:
        return false;
    }
}

/* curl's result as one of our codes. */
static int map_curl(CURLcode cc)
{
    if (cc == CURLE_OK)
        return 0;
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return FS_ETIMEOUT;
    if (is_tls_error(cc))
        return FS_ETLS;
    switch (cc) {
    case CURLE_OUT_OF_MEMORY:
        return FS_ENOMEM;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return FS_EINVAL;
    case CURLE_FILESIZE_EXCEEDED:
        return FS_ETOOBIG;
    default:
        return FS_EHTTP; /* resolve, connect, send, receive, empty reply, broken stream, ... */
    }
}

/* ---- URL policy --------------------------------------------------------------------------- */

static bool loopback_host(const char *host)
{
    struct in_addr a4;

    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
        strcmp(host, "::1") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return false;
}

/* The Google Cloud metadata server: link-local, reachable only from the instance itself, and
 * served over plain HTTP only. Exactly this address, never a name that DNS could redirect. */
static bool metadata_host(const char *host)
{
    return strcmp(host, "169.254.169.254") == 0;
}

/* Parses and checks url; on success *out (when non-NULL) gets the parsed handle and label
 * "scheme://host[:port]/path". */
static int parse_url(const char *url, CURLU **out, char *label, size_t label_n, fserr *e)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    int rc = 0;

    if (!u)
        return fserr_set(e, FS_ENOMEM, "http: cannot allocate a URL handle");
    if (!url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = fserr_set(e, FS_EINVAL, "http: not an absolute http(s) URL");
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    if (strcasecmp(scheme, "https") != 0) {
        if (strcasecmp(scheme, "http") != 0) {
            rc = fserr_set(e, FS_EINVAL,
                           "http: scheme '%.16s' refused: only https://, or http:// to loopback",
                           scheme);
            goto out;
        }
        if (!loopback_host(host) && !metadata_host(host)) {
            rc = fserr_set(e, FS_EINVAL,
                           "http: plain http:// to '%.100s' refused: without TLS only a "
                           "loopback host (127.0.0.0/8, ::1, localhost) or the metadata "
                           "server (169.254.169.254) may be reached",
                           host);
            goto out;
        }
    }
    if (label)
        snprintf(label, label_n, "%s://%.100s%s%s%.100s", scheme, host, port ? ":" : "",
                 port ? port : "", path ? path : "/");
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    if (rc == 0 && out)
        *out = u;
    else
        curl_url_cleanup(u);
    return rc;
}

int http_check_url(const char *url, fserr *e)
{
    return parse_url(url, NULL, NULL, 0, e);
}

/* ---- finishing ---------------------------------------------------------------------------- */

/* Ends a request at depth 0: out of curl, on_done (unless cancelled), freed. */
static void finish(http_request *r, int rc, const fserr *err)
{
    struct http_result res = {0};
    long status = 0;

    r->done = true;
    if (r->h)
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    detach(r);
    if (!r->cancelled) {
        res.rc = rc;
        res.status = status;
        res.body = r->body.p ? r->body.p : "";
        res.body_len = r->body.len;
        res.err = rc ? err : NULL;
        res.received = r->received;
        r->on_done(r->ud, &res);
    }
    destroy(r);
}

static void finish_curl(http_request *r, CURLcode cc)
{
    fserr e = {0};
    int rc;

    if (r->cb_rc &&
        (cc == CURLE_WRITE_ERROR || cc == CURLE_ABORTED_BY_CALLBACK || cc == CURLE_OK)) {
        finish(r, r->cb_rc, &r->cb_err);
        return;
    }
    rc = map_curl(cc);
    if (rc)
        fserr_set(&e, rc, "%s: %s", r->label, r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
    finish(r, rc, &e);
}

/* Reads curl's completion messages (depth 0). */
static void check_done(http_client *c)
{
    CURLMsg *m;
    int left;

    while (!c->close_started && (m = curl_multi_info_read(c->multi, &left))) {
        http_request *r = NULL;
        CURLcode cc;

        if (m->msg != CURLMSG_DONE)
            continue;
        cc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r)
            finish_curl(r, cc);
    }
}

/* Fails requests that have been silent longer than their idle timeout. */
static void check_idle(http_client *c)
{
    uint64_t now = uv_now(c->loop);
    http_request *r;
    bool again = true;

    while (again && !c->close_started) {
        again = false;
        for (r = c->reqs; r; r = r->next) {
            fserr e = {0};
            if (!r->idle_ms || !r->added || r->paused || r->cancelled || r->done)
                continue;
            if (now < r->last_active + (uint64_t)r->idle_ms)
                continue;
            fserr_set(&e, FS_ETIMEOUT, "%s: no data for %ld ms", r->label, r->idle_ms);
            finish(r, FS_ETIMEOUT, &e);
            again = true; /* the list changed under us */
            break;
        }
    }
}

/* ---- the timer ---------------------------------------------------------------------------- */

/* Arms the one timer for the earliest of curl's timeout, any idle deadline and deferred work. */
static void rearm(http_client *c)
{
    uint64_t due = UINT64_MAX, now;

    if (c->close_started)
        return;
    now = uv_now(c->loop);
    if (c->kick)
        due = now;
    if (c->curl_armed && c->curl_due < due)
        due = c->curl_due;
    for (http_request *r = c->reqs; r; r = r->next)
        if (r->idle_ms && r->added && !r->paused && !r->cancelled &&
            r->last_active + (uint64_t)r->idle_ms < due)
            due = r->last_active + (uint64_t)r->idle_ms;
    if (due == UINT64_MAX)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

static int on_curl_timer(CURLM *m, long ms, void *ud)
{
    http_client *c = ud;
    (void)m;
    if (ms < 0) {
        c->curl_armed = false;
    } else {
        c->curl_armed = true;
        c->curl_due = uv_now(c->loop) + (uint64_t)ms;
    }
    rearm(c);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    http_client *c = t->data;
    int running;

    c->kick = false;
    if (c->curl_armed && c->curl_due <= uv_now(c->loop)) {
        c->curl_armed = false;
        c->depth++;
        curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        c->depth--;
    }
    settle(c);
    check_idle(c);
    settle(c);
}

/* ---- sockets ------------------------------------------------------------------------------ */

/* Once the last handle is closed: done_cb (which may free the client), or the deferred free. */
static void maybe_closed(http_client *c)
{
    void (*cb)(void *ud) = c->done_cb;
    void *ud = c->done_ud;

    if (!c->close_started || c->open_handles > 0 || c->closed)
        return;
    c->closed = true;
    if (c->free_on_close) {
        http_client_free(c);
        return;
    }
    if (cb)
        cb(ud); /* may call http_client_free(c): c is not touched after this */
}

static void on_handle_closed(uv_handle_t *h)
{
    http_client *c;

    if (h->type == UV_POLL) {
        struct sock_ctx *s = h->data;
        c = s->c;
        free(s);
    } else {
        c = h->data;
    }
    c->open_handles--;
    maybe_closed(c);
}

static void sock_close(struct sock_ctx *s)
{
    *s->pprev = s->next;
    if (s->next)
        s->next->pprev = s->pprev;
    s->closing = true;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    struct sock_ctx *s = p->data;
    http_client *c = s->c;
    int flags = 0, running;

    /* On a socket error (libuv reports POLLERR as a status and stops the handle) let curl find
     * the error itself by reading and writing: that is how it notices a reused connection the
     * server had closed and retries on a fresh one, which CURL_CSELECT_ERR would turn into a
     * hard failure. */
    if (status < 0)
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    c->depth++;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    c->depth--;
    if (status < 0 && !s->closing && !c->close_started)
        uv_poll_start(&s->poll, s->events, on_poll); /* curl still wants it: watch again */
    settle(c);
}

static int on_socket(CURL *h, curl_socket_t fd, int what, void *ud, void *sockp)
{
    http_client *c = ud;
    struct sock_ctx *s = sockp;
    int ev = 0;
    (void)h;

    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_close(s);
        }
        return 0;
    }
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = c->socks;
        if (s->next)
            s->next->pprev = &s->next;
        s->pprev = &c->socks;
        c->socks = s;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    s->events = ev;
    uv_poll_start(&s->poll, ev, on_poll);
    return 0;
}

/* ---- curl callbacks ----------------------------------------------------------------------- */

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    http_request *r = ud;
    size_t n = size * nmemb;
    long status = 0;
    int rc;

    if (r->cancelled || r->done)
        return 0;
    if (r->paused) {
        r->curl_paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (n == 0)
        return 0;
    r->last_active = uv_now(r->c->loop);
    if (r->body_cap && (r->received + n > r->body_cap)) {
        r->cb_rc = fserr_set(&r->cb_err, FS_ETOOBIG, "%s: response body passes the %zu-byte cap",
                             r->label, r->body_cap);
        return 0;
    }
    if (!r->on_data) {
        if (buf_add(&r->body, p, n) != 0) {
            r->cb_rc = fserr_set(&r->cb_err, FS_ETOOBIG, "%s: response body too big", r->label);
            return 0;
        }
        r->received += n;
        return n;
    }
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    rc = r->on_data(r->ud, status, p, n);
    if (r->cancelled)
        return 0;
    if (rc == HTTP_PAUSE) {
        r->paused = true;
        r->curl_paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (rc < 0) {
        r->cb_rc = fserr_set(&r->cb_err, rc, "%s: response body handler failed: %s", r->label,
                             fserr_str(rc));
        return 0;
    }
    r->received += n;
    return n;
}

/* Splits "Name: value\r\n" into trimmed, NUL-terminated parts in line (size HEADER_LINE_MAX).
 * Returns false for status lines, blank lines and lines too long to keep. */
static bool split_header(const char *p, size_t n, char *line, char **name, char **value)
{
    char *colon, *end;

    if (n == 0 || n >= HEADER_LINE_MAX)
        return false;
    memcpy(line, p, n);
    line[n] = '\0';
    end = line + n;
    while (end > line && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';
    colon = strchr(line, ':');
    if (!colon || colon == line || strncmp(line, "HTTP/", 5) == 0)
        return false;
    *colon = '\0';
    for (char *t = colon; t > line && (t[-1] == ' ' || t[-1] == '\t');)
        *--t = '\0';
    *name = line;
    *value = colon + 1;
    while (**value == ' ' || **value == '\t')
        (*value)++;
    return true;
}

static size_t on_header_line(char *p, size_t size, size_t nmemb, void *ud)
{
    http_request *r = ud;
    size_t n = size * nmemb;
    char line[HEADER_LINE_MAX], *name, *value;
    int rc;

    if (r->cancelled || r->done)
        return 0;
    r->last_active = uv_now(r->c->loop);
    if (!r->on_header || !split_header(p, n, line, &name, &value))
        return n;
    rc = r->on_header(r->ud, name, value);
    if (r->cancelled)
        return 0;
    if (rc < 0) {
        r->cb_rc = fserr_set(&r->cb_err, rc, "%s: response header handler failed: %s", r->label,
                             fserr_str(rc));
        return 0;
    }
    return n;
}

/* ---- deferred work ------------------------------------------------------------------------ */

static void do_close(http_client *c);

/* Makes curl's pause state match the caller's wish (depth 0 only). */
static void sync_pause(http_request *r)
{
    http_client *c = r->c;

    if (!r->added || r->cancelled || r->done)
        return;
    if (r->paused && !r->curl_paused) {
        r->curl_paused = true;
        c->depth++;
        curl_easy_pause(r->h, CURLPAUSE_RECV);
        c->depth--;
    } else if (!r->paused && r->curl_paused) {
        r->curl_paused = false;
        r->last_active = uv_now(c->loop);
        c->depth++;
        curl_easy_pause(r->h, CURLPAUSE_CONT); /* may deliver held bytes right here */
        c->depth--;
    }
}

/* Carries out what was deferred while curl was running, reads completions, re-arms the timer.
 * Safe to call at depth 0 from anywhere. */
static void settle(http_client *c)
{
    bool again = true;

    if (c->depth > 0) {
        c->kick = true;
        return;
    }
    while (again) {
        again = false;
        if (c->closing && !c->close_started) {
            do_close(c);
            return;
        }
        check_done(c);
        for (http_request *r = c->reqs, *next; r; r = next) {
            next = r->next;
            if (r->cancelled) {
                detach(r);
                destroy(r);
                again = true;
                break;
            }
            if (!r->added) {
                CURLMcode mc = curl_multi_add_handle(c->multi, r->h);
                if (mc != CURLM_OK) {
                    fserr e = {0};
                    fserr_set(&e, FS_EHTTP, "%s: cannot start: %s", r->label,
                              curl_multi_strerror(mc));
                    finish(r, FS_EHTTP, &e);
                    again = true;
                    break;
                }
                r->added = true;
            }
            if (r->paused != r->curl_paused) {
                sync_pause(r);
                again = true; /* callbacks may have changed the list */
                break;
            }
        }
    }
    if (!c->close_started) {
        c->kick = false;
        rearm(c);
    }
}

/* ---- public API --------------------------------------------------------------------------- */

http_client *http_client_new(uv_loop_t *loop, fserr *e)
{
    http_client *c;

    if (!loop) {
        fserr_set(e, FS_EINVAL, "http: no loop");
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fserr_set(e, FS_EINTERNAL, "http: curl_global_init failed");
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        curl_global_cleanup();
        fserr_set(e, FS_ENOMEM, "http: curl_multi_init failed");
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    return c;
}

/* Tears everything down at depth 0: requests, curl, sockets, then the timer. */
static void do_close(http_client *c)
{
    c->close_started = true;
    while (c->reqs) {
        http_request *r = c->reqs;
        r->cancelled = true;
        detach(r);
        destroy(r);
    }
    curl_multi_cleanup(c->multi); /* may report sockets removed: they close below or there */
    c->multi = NULL;
    while (c->socks)
        sock_close(c->socks);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void http_client_close(http_client *c, void (*done_cb)(void *ud), void *ud)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    c->done_cb = done_cb;
    c->done_ud = ud;
    for (http_request *r = c->reqs; r; r = r->next)
        r->cancelled = true;
    if (c->depth > 0) {
        c->kick = true; /* the loop callback that entered curl runs settle() on return */
        return;
    }
    do_close(c);
}

void http_client_free(http_client *c)
{
    if (!c)
        return;
    if (!c->closed) {
        /* still open: close it now and free it from the last close callback */
        c->free_on_close = true;
        if (!c->closing)
            http_client_close(c, NULL, NULL);
        else
            c->done_cb = NULL;
        return;
    }
    free(c);
    curl_global_cleanup();
}

/* Sets the method and body of h. */
static int set_method(CURL *h, const struct http_req_opts *o, fserr *e)
{
    const char *m = o->method ? o->method : (o->body ? "POST" : "GET");

    if (strcmp(m, "GET") == 0 && !o->body) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        return 0;
    }
    for (const char *t = m; *t; t++)
        if (*t < 'A' || *t > 'Z')
            return fserr_set(e, FS_EINVAL, "http: bad method");
    if (o->body || strcmp(m, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(o->body ? o->body_len : 0));
        curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, o->body ? o->body : "");
    }
    if (strcmp(m, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    return 0;
}

/* Builds the header list: the caller's lines (no CR or LF inside) plus "Expect:". */
static int set_headers(http_request *r, const struct http_req_opts *o, fserr *e)
{
    struct curl_slist *l;

    for (const char *const *hp = o->headers; hp && *hp; hp++) {
        if (strpbrk(*hp, "\r\n") || !strchr(*hp, ':'))
            return fserr_set(e, FS_EINVAL, "http: malformed request header line");
        l = curl_slist_append(r->hdrs, *hp);
        if (!l)
            return fserr_set(e, FS_ENOMEM, "http: cannot build the header list");
        r->hdrs = l;
    }
    l = curl_slist_append(r->hdrs, "Expect:"); /* no 100-continue round trip */
    if (!l)
        return fserr_set(e, FS_ENOMEM, "http: cannot build the header list");
    r->hdrs = l;
    curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, r->hdrs);
    return 0;
}

static void set_options(http_request *r, const struct http_req_opts *o, bool loopback)
{
    CURL *h = r->h;

    curl_easy_setopt(h, CURLOPT_CURLU, r->url);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    /* WebChannel as measured is HTTP/1.1: one request per connection at a time, so a held
     * (paused) back channel never stalls a forward POST sharing its connection */
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (loopback)
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* a proxy has no business with loopback */
    if (o->timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->connect_timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    if (o->fresh_connection) {
        curl_easy_setopt(h, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
    }
}

http_request *http_request_new(http_client *c, const struct http_req_opts *o, fserr *e)
{
    http_request *r;
    char host_label[256];
    int rc;

    if (!c || !o || !o->on_done) {
        fserr_set(e, FS_EINVAL, "http: a request needs a client and an on_done callback");
        return NULL;
    }
    if (c->closing) {
        fserr_set(e, FS_ECANCELED, "http: the client is closing");
        return NULL;
    }
    if (o->timeout_ms < 0 || o->idle_timeout_ms < 0 || o->connect_timeout_ms < 0) {
        fserr_set(e, FS_EINVAL, "http: negative timeout");
        return NULL;
    }
    r = xcalloc(1, sizeof(*r));
    r->c = c;
    rc = parse_url(o->url, &r->url, host_label, sizeof(host_label), e);
    if (rc)
        goto fail;
    snprintf(r->label, sizeof(r->label), "%s %s",
             o->method ? o->method : (o->body ? "POST" : "GET"), host_label);
    r->h = curl_easy_init();
    if (!r->h) {
        rc = fserr_set(e, FS_ENOMEM, "http: curl_easy_init failed");
        goto fail;
    }
    {
        char *host = NULL;
        curl_url_get(r->url, CURLUPART_HOST, &host, 0);
        /* no proxy for loopback or the metadata server: neither is reached through one */
        set_options(r, o, host && (loopback_host(host) || metadata_host(host)));
        curl_free(host);
    }
    rc = set_method(r->h, o, e);
    if (rc == 0)
        rc = set_headers(r, o, e);
    if (rc)
        goto fail;
    r->on_header = o->on_header;
    r->on_data = o->on_data;
    r->on_done = o->on_done;
    r->ud = o->ud;
    r->idle_ms = o->idle_timeout_ms;
    r->body_cap = o->body_cap ? o->body_cap : (o->on_data ? 0 : HTTP_DEFAULT_BODY_CAP);
    buf_init(&r->body, r->body_cap);
    if (c->depth == 0)
        uv_update_time(c->loop); /* the idle clock starts now, not at the last loop turn */
    r->last_active = uv_now(c->loop);
    link_req(c, r);
    if (c->depth > 0) {
        c->kick = true; /* curl_multi_add_handle must wait until curl returns */
        return r;
    }
    if (curl_multi_add_handle(c->multi, r->h) != CURLM_OK) {
        unlink_req(r);
        rc = fserr_set(e, FS_EHTTP, "%s: cannot start the transfer", r->label);
        goto fail;
    }
    r->added = true;
    rearm(c);
    return r;
fail:
    destroy(r);
    return NULL;
}

void http_cancel(http_request *r)
{
    if (!r || r->cancelled || r->done)
        return;
    r->cancelled = true;
    if (r->c->depth > 0) {
        r->c->kick = true;
        return;
    }
    detach(r);
    destroy(r);
}

void http_pause(http_request *r)
{
    if (!r || r->paused || r->cancelled || r->done)
        return;
    r->paused = true;
    if (r->c->depth > 0) {
        r->c->kick = true; /* the next piece is held by CURL_WRITEFUNC_PAUSE meanwhile */
        return;
    }
    sync_pause(r);
}

void http_resume(http_request *r)
{
    http_client *c;

    if (!r || !r->paused || r->cancelled || r->done)
        return;
    c = r->c;
    r->paused = false;
    r->last_active = uv_now(c->loop);
    if (c->depth > 0) {
        c->kick = true;
        return;
    }
    sync_pause(r);
    /* callbacks run by curl_easy_pause may have deferred work; let the loop settle it */
    c->kick = true;
    rearm(c);
}

bool http_paused(const http_request *r)
{
    return r && r->paused;
}

size_t http_active(const http_client *c)
{
    return c ? c->nreqs : 0;
}
