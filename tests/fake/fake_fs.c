/*
 * fake_fs.c - the scriptable fake Firestore server (what it plays is described in fake_fs.h).
 *
 * Layers, top to bottom of this file:
 *   1. small text helpers: header and form lookups, URL decoding, UTF-16 unit counting;
 *   2. the HTTP/1.1 connection: accept, read into a capped buffer, parse one request at a time
 *      (request line, headers, Content-Length body, Expect: 100-continue), and an output queue
 *      per connection whose items may wait on the connection's timer, so a reply can be written
 *      piece by piece over time (chunked replies, split chunks, a GET held open for minutes);
 *   3. the WebChannel session: array queue with acknowledgement, contiguous map delivery, the
 *      back-channel GET and the writes to it;
 *   4. the request handlers (channel, token, metadata, runQuery) and the dispatcher;
 *   5. the thread-safe API used by the test thread.
 *
 * Threads and locking: the uv loop runs on the fake's own thread. One mutex guards every field
 * shared with the test thread; every uv callback takes it on entry and, on leaving, broadcasts the
 * condition variable that fake_fs_wait() sleeps on. API calls change state under the mutex and
 * wake the loop with `async` (sent under the mutex, so it cannot race the handle's close).
 *
 * Ownership: connections are heap objects freed in the close callback of their last handle;
 * sessions are freed by the loop (terminate, kill) or by fake_fs_free(). Stopping closes every
 * handle, so uv_loop_close() succeeds and nothing leaks under ASan.
 */
#include "tests/fake/fake_fs.h"

#include "common/buf.h"
#include "common/xalloc.h"

#include <uv.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HEAD_MAX ((size_t)64 << 10) /* request line + headers */
#define BODY_MAX ((size_t)64 << 20) /* request body */
#define NOOP_DATA "[\"noop\"]"
#define JWT_GRANT "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define UNKNOWN_SID_BODY "<html><body>Unknown SID</body></html>"
#define EMPTY_RUNQUERY "[{\"readTime\":\"2026-01-01T00:00:00.000000Z\",\"done\":true}]"

/* One item of a session's back-channel queue. */
struct entry {
    struct entry *next;
    long id;         /* array id; 0 for raw bytes and for arrays waiting for a session */
    bool raw;        /* bytes written as they are, once */
    bool noop;       /* the data is ["noop"] */
    char *p;         /* the array's data part, or the raw bytes; NUL-terminated */
    size_t n;        /* bytes in p */
    size_t split_at; /* arrays: cut this far into the data; raw: into the bytes; 0: no cut */
};

/* A map received after a gap, or a queued runQuery reply (id unused). */
struct held {
    struct held *next;
    long id;
    char *json;
};

struct session {
    struct session *next;
    char sid[48];
    char gsid_param[64]; /* URL parameter named by X-HTTP-Session-Id, "" when none */
    char gsid[128];      /* the value sent in the header, "" when none */
    bool killed;         /* dead; freed by the loop at its next chance */
    long last_array;     /* last array id assigned (0 is the "c" array) */
    long next_map;       /* next map id to deliver */
    struct entry *q;     /* unacknowledged arrays (ascending ids) and unwritten raw bytes */
    struct entry *last;  /* the last entry of q, or NULL when unknown (reset on every removal) */
    struct held *held;   /* maps after a gap, ascending ids */
    struct conn *get;    /* the open back-channel GET, or NULL */
    long get_sent;       /* highest array id written to `get` */
    bool get_ci;         /* `get` is a long-poll (CI=1) */
    uint64_t get_start;  /* loop time `get` started, ms */
};

enum { OP_DATA, OP_END, OP_CLOSE };

/* Output waiting to be written: bytes, "the response is complete", or "close gracefully". */
struct outitem {
    struct outitem *next;
    int op;
    unsigned delay_ms; /* wait this long before acting on the item */
    size_t n;
    char p[];
};

struct conn {
    struct conn *next;
    fake_fs *fs;
    uv_tcp_t tcp;
    uv_timer_t timer; /* delays between output items */
    uv_shutdown_t sreq;
    int open_handles; /* tcp + timer not yet closed; freed at 0 */
    buf in;           /* bytes read and not yet parsed */
    bool busy;        /* a response is under way; later requests wait */
    bool keepalive;   /* the current request lets the connection live on */
    bool closing;
    bool waiting;    /* the output queue waits on the timer */
    bool pumping;    /* pump() is on the stack */
    bool processing; /* process() is on the stack */
    bool sent_continue;
    struct outitem *oq;
    struct session *sess; /* the session whose back channel this is */
};

struct request {
    char method[16];
    char *target;      /* path[?query] as received */
    char *path;        /* target up to '?' */
    const char *query; /* into target after '?', or "" */
    char *headers;     /* "Name: value\r\n" lines */
    char *body;        /* NUL-terminated */
    size_t body_len;
    bool keepalive;
};

struct failure {
    struct failure *next;
    int status;
    char *body;
};

struct record {
    char *target;
    char *headers;
    char *body;
};

struct fake_fs {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running;  /* the thread runs and has not been joined */
    bool stopping; /* the loop has been told to close everything */
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t async;
    uv_timer_t noop_timer;
    int port;
    char url[64];

    struct conn *conns;
    struct session *sessions; /* newest first */
    long session_seq;
    struct entry *pending; /* pushes made while no session lived */
    struct failure *fail[FAKE_FS_REQ_COUNT_];
    struct record last[FAKE_FS_REQ_COUNT_];
    long stats[FAKE_FS_STAT_COUNT_];
    char **maps;
    size_t nmaps, capmaps;
    char *hs_headers;
    char *assertion;
    long tokens_issued;
    struct held *runquery;

    /* settings */
    char *session_header;
    bool strict_gsid;
    bool noop_on_empty;
    unsigned hold_ms;
    size_t http_chunk_max;
    unsigned split_gap_ms;
    unsigned noop_ms;
    char *token;
    int token_expires;

    /* requests from the test thread to the loop */
    bool noop_changed, cmd_end_get, cmd_drop_get;
};

static void pump(struct conn *c);
static void process(struct conn *c);

/* ---- 1. text helpers ----------------------------------------------------------------------- */

static void lock(fake_fs *fs)
{
    pthread_mutex_lock(&fs->mu);
}

static void unlock_notify(fake_fs *fs)
{
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
}

/* Wakes the loop, then unlocks. The send happens under the mutex: once `stopping` is set the
 * loop may close `async`, and it can only do so holding the mutex. */
static void wake_unlock(fake_fs *fs)
{
    if (fs->running && !fs->stopping)
        uv_async_send(&fs->async);
    unlock_notify(fs);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* Strict decimal (optional '-'); *out untouched and -1 returned on anything else. */
static int parse_long(const char *s, long *out)
{
    char *end;
    long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || end == s || s[0] == ' ' || s[0] == '+')
        return -1;
    *out = v;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded text ('+' is a space, %XX a byte). */
static char *url_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t i, j = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[j++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[j++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* The decoded value of `name` in a query string or form body, "" for a bare name, or NULL. */
static char *form_get(const char *form, const char *name)
{
    size_t nl = strlen(name);
    const char *p = form;

    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len >= nl && strncmp(p, name, nl) == 0 && (len == nl || p[nl] == '='))
            return len == nl ? xstrdup("") : url_decode(p + nl + 1, len - nl - 1);
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* The trimmed value of header `name` (case-insensitive) in "Name: value\r\n" lines, or NULL. */
static char *header_get(const char *headers, const char *name)
{
    size_t nl = strlen(name);
    const char *line = headers;

    while (line && *line) {
        const char *eol = strstr(line, "\r\n");
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1, *e = line + len;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            return xstrndup(v, (size_t)(e - v));
        }
        line = eol ? eol + 2 : NULL;
    }
    return NULL;
}

/* UTF-16 code units of UTF-8 text: every byte that does not continue a sequence counts one, a
 * four-byte lead counts one more (the surrogate pair). */
static size_t utf16_units(const char *p, size_t n)
{
    size_t i, u = 0;

    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if ((ch & 0xC0) != 0x80)
            u++;
        if (ch >= 0xF0)
            u++;
    }
    return u;
}

static bool is_noop(const char *data)
{
    const char *want = NOOP_DATA;

    for (; *data; data++) {
        if (*data == ' ' || *data == '\t' || *data == '\r' || *data == '\n')
            continue;
        if (*data != *want)
            return false;
        want++;
    }
    return *want == '\0';
}

/* Three non-empty base64url parts joined by dots. */
static bool jwt_shaped(const char *s)
{
    int dots = 0;
    size_t part = 0;

    for (; *s; s++) {
        if (*s == '.') {
            if (!part)
                return false;
            dots++;
            part = 0;
        } else if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                   (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '=') {
            part++;
        } else {
            return false;
        }
    }
    return dots == 2 && part > 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* ---- 2. HTTP connection -------------------------------------------------------------------- */

struct wreq {
    uv_write_t req; /* first: the callback frees the whole struct through it */
    char data[];
};

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* a failed write means the peer left; the read side closes the connection */
    free(req);
}

static void conn_send(struct conn *c, const char *p, size_t n)
{
    struct wreq *w = xmalloc(sizeof(*w) + n);
    uv_buf_t b;

    memcpy(w->data, p, n);
    b = uv_buf_init(w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        free(w);
}

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data, **pp;
    fake_fs *fs = c->fs;

    if (--c->open_handles > 0)
        return;
    lock(fs);
    for (pp = &fs->conns; *pp && *pp != c; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = c->next;
    unlock_notify(fs);
    buf_release(&c->in);
    free(c);
}

static void close_handles(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    close_handles(c);
}

/* Forgets the session this connection carries the GET of. */
static struct conn *detach_get(fake_fs *fs, struct session *s)
{
    struct conn *c = s->get;

    if (!c)
        return NULL;
    s->get = NULL;
    c->sess = NULL;
    fs->stats[FAKE_FS_GET_OPEN]--;
    fs->stats[FAKE_FS_GETS_CLOSED]++;
    return c;
}

/* Closes the connection: `graceful` lets queued writes out and sends FIN first; otherwise the
 * socket just closes. Queued output not yet handed to libuv is dropped. */
static void conn_close(struct conn *c, bool graceful)
{
    struct outitem *it;

    if (c->closing)
        return;
    c->closing = true;
    if (c->sess)
        detach_get(c->fs, c->sess);
    while ((it = c->oq)) {
        c->oq = it->next;
        free(it);
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    c->sreq.data = c;
    if (graceful && uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
        return;
    close_handles(c);
}

static void out_push(struct conn *c, int op, const char *p, size_t n, unsigned delay_ms)
{
    struct outitem *it, **pp;

    if (c->closing)
        return;
    it = xmalloc(sizeof(*it) + n);
    it->next = NULL;
    it->op = op;
    it->delay_ms = delay_ms;
    it->n = n;
    if (n)
        memcpy(it->p, p, n);
    for (pp = &c->oq; *pp; pp = &(*pp)->next)
        ;
    *pp = it;
    pump(c);
}

/* The response is complete: the connection closes or takes the next request. */
static void response_done(struct conn *c)
{
    c->busy = false;
    if (!c->keepalive)
        conn_close(c, true);
    else if (!c->processing)
        process(c);
}

static void on_delay(uv_timer_t *t)
{
    struct conn *c = t->data;
    fake_fs *fs = c->fs;

    lock(fs);
    c->waiting = false;
    pump(c);
    unlock_notify(fs);
}

/* Acts on queued output in order, stopping at an item that must first wait. */
static void pump(struct conn *c)
{
    struct outitem *it;

    if (c->pumping || c->waiting)
        return;
    c->pumping = true;
    while (!c->closing && !c->waiting && (it = c->oq)) {
        if (it->delay_ms) {
            uv_timer_start(&c->timer, on_delay, it->delay_ms, 0);
            it->delay_ms = 0;
            c->waiting = true;
            break;
        }
        c->oq = it->next;
        if (it->op == OP_DATA)
            conn_send(c, it->p, it->n);
        else if (it->op == OP_END)
            response_done(c);
        else
            conn_close(c, true);
        free(it);
    }
    c->pumping = false;
}

/* A whole response with a Content-Length body. */
static void reply(struct conn *c, int status, const char *ctype, const char *extra,
                  const char *body)
{
    size_t n = body ? strlen(body) : 0;
    buf b;

    buf_init(&b, 0);
    buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n", status,
               reason(status), ctype, n, extra ? extra : "",
               c->keepalive ? "" : "Connection: close\r\n");
    buf_add(&b, body, n);
    c->busy = true;
    out_push(c, OP_DATA, b.p, b.len, 0);
    out_push(c, OP_END, NULL, 0, 0);
    buf_release(&b);
}

static void chunked_begin(struct conn *c, const char *extra)
{
    buf b;

    buf_init(&b, 0);
    buf_printf(&b,
               "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Transfer-Encoding: chunked\r\n"
               "Cache-Control: no-cache, no-store, max-age=0, must-revalidate\r\n"
               "X-Content-Type-Options: nosniff\r\n%s%s\r\n",
               extra ? extra : "", c->keepalive ? "" : "Connection: close\r\n");
    c->busy = true;
    out_push(c, OP_DATA, b.p, b.len, 0);
    buf_release(&b);
}

/* Bytes as HTTP chunks of at most http_chunk_max, the first one after `delay_ms`. */
static void chunk_piece(struct conn *c, const char *p, size_t n, unsigned delay_ms)
{
    size_t max = c->fs->http_chunk_max ? c->fs->http_chunk_max : n;
    buf b;

    buf_init(&b, 0);
    while (n) {
        size_t k = n < max ? n : max;
        buf_reset(&b);
        buf_printf(&b, "%zx\r\n", k);
        buf_add(&b, p, k);
        buf_adds(&b, "\r\n");
        out_push(c, OP_DATA, b.p, b.len, delay_ms);
        delay_ms = 0;
        p += k;
        n -= k;
    }
    buf_release(&b);
}

/* Body bytes of a chunked response, cut in two writes at `split_at` when 0 < split_at < n. */
static void chunk_write(struct conn *c, const char *p, size_t n, size_t split_at)
{
    if (split_at && split_at < n) {
        chunk_piece(c, p, split_at, 0);
        chunk_piece(c, p + split_at, n - split_at, c->fs->split_gap_ms);
    } else {
        chunk_piece(c, p, n, 0);
    }
}

static void chunked_end(struct conn *c)
{
    out_push(c, OP_DATA, "0\r\n\r\n", 5, 0);
    out_push(c, OP_END, NULL, 0, 0);
}

/* A complete chunked reply holding one WebChannel chunk (or nothing, for payload NULL). */
static void channel_reply(struct conn *c, const char *payload, const char *extra)
{
    buf b;

    chunked_begin(c, extra);
    if (payload) {
        buf_init(&b, 0);
        buf_printf(&b, "%zu\n%s", utf16_units(payload, strlen(payload)), payload);
        chunk_write(c, b.p, b.len, 0);
        buf_release(&b);
    }
    chunked_end(c);
}

static void request_release(struct request *r)
{
    free(r->target);
    free(r->path);
    free(r->headers);
    free(r->body);
}

/* Parses the request line and headers in [p, hend); fills r except the body. Returns 0 or a
 * negative HTTP status. */
static int parse_head(const char *p, const char *hend, struct request *r)
{
    const char *eol = memmem(p, (size_t)(hend - p) + 2, "\r\n", 2);
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p)), *sp2, *q;
    char *conn;

    if (!sp1 || (size_t)(sp1 - p) >= sizeof(r->method))
        return -400;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1 || (size_t)(eol - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7))
        return -400;
    memcpy(r->method, p, (size_t)(sp1 - p));
    r->method[sp1 - p] = '\0';
    r->target = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    q = strchr(r->target, '?');
    r->path = q ? xstrndup(r->target, (size_t)(q - r->target)) : xstrdup(r->target);
    r->query = q ? q + 1 : "";
    r->headers = xstrndup(eol + 2, (size_t)(hend + 2 - (eol + 2)));
    conn = header_get(r->headers, "Connection");
    if (sp2[8] == '1')
        r->keepalive = !(conn && strcasecmp(conn, "close") == 0);
    else
        r->keepalive = conn && strcasecmp(conn, "keep-alive") == 0;
    free(conn);
    return 0;
}

/* Takes one complete request out of c->in: 1 done, 0 more bytes needed, or a negative HTTP
 * status for a request the fake will not serve. */
static int parse_request(struct conn *c, struct request *r)
{
    const char *p = c->in.p, *hend;
    size_t head;
    long cl = 0;
    char *v;
    int rc;

    memset(r, 0, sizeof(*r));
    if (!c->in.len)
        return 0;
    hend = memmem(p, c->in.len, "\r\n\r\n", 4);
    if (!hend)
        return c->in.len > HEAD_MAX ? -431 : 0;
    head = (size_t)(hend - p) + 4;
    rc = parse_head(p, hend, r);
    if (rc == 0 && (v = header_get(r->headers, "Transfer-Encoding"))) {
        free(v);
        rc = -501;
    }
    if (rc == 0 && (v = header_get(r->headers, "Content-Length"))) {
        if (parse_long(v, &cl) || cl < 0)
            rc = -400;
        else if ((size_t)cl > BODY_MAX)
            rc = -413;
        free(v);
    }
    if (rc == 0 && c->in.len - head < (size_t)cl) {
        v = header_get(r->headers, "Expect");
        if (v && strcasecmp(v, "100-continue") == 0 && !c->sent_continue) {
            conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            c->sent_continue = true;
        }
        free(v);
        request_release(r);
        return 0;
    }
    if (rc) {
        request_release(r);
        return rc;
    }
    r->body = xstrndup(p + head, (size_t)cl);
    r->body_len = (size_t)cl;
    buf_consume(&c->in, head + (size_t)cl);
    c->sent_continue = false;
    return 1;
}

static void dispatch(fake_fs *fs, struct conn *c, struct request *r);

/* Serves the requests waiting in c->in, one at a time, until one stays under way. */
static void process(struct conn *c)
{
    struct request r;
    int rc;

    if (c->processing)
        return;
    c->processing = true;
    while (!c->busy && !c->closing) {
        rc = parse_request(c, &r);
        if (rc == 0)
            break;
        if (rc < 0) {
            c->keepalive = false;
            reply(c, -rc, "text/plain; charset=utf-8", NULL, "bad request\n");
            break;
        }
        c->keepalive = r.keepalive;
        dispatch(c->fs, c, &r);
        request_release(&r);
    }
    c->processing = false;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    b->base = xmalloc(suggested);
    b->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;
    fake_fs *fs = c->fs;

    lock(fs);
    if (nread < 0) {
        conn_close(c, false);
    } else if (nread > 0 && !c->closing) {
        if (buf_add(&c->in, b->base, (size_t)nread))
            conn_close(c, false);
        else
            process(c);
    }
    free(b->base);
    unlock_notify(fs);
}

static void on_connection(uv_stream_t *server, int status)
{
    fake_fs *fs = server->data;
    struct conn *c;

    lock(fs);
    if (status == 0 && !fs->stopping) {
        c = xcalloc(1, sizeof(*c));
        c->fs = fs;
        buf_init(&c->in, HEAD_MAX + BODY_MAX);
        uv_tcp_init(&fs->loop, &c->tcp);
        uv_timer_init(&fs->loop, &c->timer);
        c->tcp.data = c;
        c->timer.data = c;
        c->open_handles = 2;
        c->keepalive = true;
        c->next = fs->conns;
        fs->conns = c;
        if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
            conn_close(c, false);
        } else {
            uv_tcp_nodelay(&c->tcp, 1);
            fs->stats[FAKE_FS_CONNECTIONS]++;
        }
    }
    unlock_notify(fs);
}

/* ---- 3. WebChannel sessions ---------------------------------------------------------------- */

static struct entry *entry_new(const void *p, size_t n, bool raw, size_t split_at)
{
    struct entry *e = xcalloc(1, sizeof(*e));

    e->p = xmalloc(n + 1);
    if (n)
        memcpy(e->p, p, n);
    e->p[n] = '\0';
    e->n = n;
    e->raw = raw;
    e->split_at = split_at;
    e->noop = !raw && is_noop(e->p);
    return e;
}

static void entry_free(struct entry *e)
{
    free(e->p);
    free(e);
}

static void entries_free(struct entry *e)
{
    struct entry *next;

    for (; e; e = next) {
        next = e->next;
        entry_free(e);
    }
}

static void held_free(struct held *h)
{
    struct held *next;

    for (; h; h = next) {
        next = h->next;
        free(h->json);
        free(h);
    }
}

static void session_free(struct session *s)
{
    entries_free(s->q);
    held_free(s->held);
    free(s);
}

static struct session *newest(fake_fs *fs)
{
    struct session *s;

    for (s = fs->sessions; s; s = s->next)
        if (!s->killed)
            return s;
    return NULL;
}

static struct session *find_session(fake_fs *fs, const char *sid)
{
    struct session *s;

    for (s = fs->sessions; s; s = s->next)
        if (!s->killed && strcmp(s->sid, sid) == 0)
            return s;
    return NULL;
}

/* Queues an entry on a session; an array gets the session's next id. */
static void session_append(fake_fs *fs, struct session *s, struct entry *e)
{
    struct entry **pp;

    if (!e->raw) {
        e->id = ++s->last_array;
        if (s == newest(fs))
            fs->stats[FAKE_FS_LAST_ARRAY] = e->id;
    }
    /* from the last entry when it is known: pushes are frequent, removals (acks) are not */
    for (pp = s->last ? &s->last->next : &s->q; *pp; pp = &(*pp)->next)
        ;
    e->next = NULL;
    *pp = e;
    s->last = e;
}

/* Drops the arrays the client has acknowledged (raw bytes stay until written). */
static void ack(struct session *s, long aid)
{
    struct entry **pp = &s->q, *e;

    while ((e = *pp)) {
        if (!e->raw && e->id <= aid) {
            *pp = e->next;
            s->last = NULL;
            entry_free(e);
        } else {
            pp = &e->next;
        }
    }
}

static bool has_unsent(const struct session *s)
{
    const struct entry *e;

    for (e = s->q; e; e = e->next)
        if (e->raw || e->id > s->get_sent)
            return true;
    return false;
}

/* Ends the session's open GET cleanly (200 + last chunk). */
static void end_get(fake_fs *fs, struct session *s)
{
    struct conn *c = detach_get(fs, s);

    if (!c)
        return;
    fs->stats[FAKE_FS_GETS_ENDED]++;
    chunked_end(c);
}

/* Cuts the session's open GET: the connection closes after what is queued, with no last chunk. */
static void drop_get(fake_fs *fs, struct session *s)
{
    struct conn *c = detach_get(fs, s);

    if (c)
        out_push(c, OP_CLOSE, NULL, 0, 0);
}

/* Frees the sessions marked dead; their open GETs end cleanly. */
static void reap_sessions(fake_fs *fs)
{
    struct session **pp = &fs->sessions, *s;

    while ((s = *pp)) {
        if (!s->killed) {
            pp = &s->next;
            continue;
        }
        end_get(fs, s);
        *pp = s->next;
        session_free(s);
    }
}

/* Writes `arr` ("[id,data],[id,data]...") as one WebChannel chunk on the session's GET, cut
 * `split_off` bytes into the payload when non-zero, then ends the GET when its rules say so:
 * CI=1 and the chunk held data, or the stream hold has passed. Returns true if it ended. */
static bool send_arrays(fake_fs *fs, struct session *s, buf *arr, size_t split_off, bool data)
{
    buf frame;
    size_t units = utf16_units(arr->p, arr->len) + 2, prefix;

    buf_init(&frame, 0);
    buf_printf(&frame, "%zu\n[", units);
    prefix = frame.len - 1;
    buf_add(&frame, arr->p, arr->len);
    buf_addc(&frame, ']');
    chunk_write(s->get, frame.p, frame.len, split_off ? prefix + split_off : 0);
    buf_release(&frame);
    buf_reset(arr);
    if ((s->get_ci && data) || uv_now(&fs->loop) - s->get_start >= fs->hold_ms) {
        end_get(fs, s);
        return true;
    }
    return false;
}

/* Writes to the session's open GET what it has not had yet, in queue order: arrays above
 * get_sent and unwritten raw bytes. With `batch` (a GET just opened), consecutive plain arrays
 * share one chunk, as the emulator re-sends them; otherwise each entry is its own chunk. */
static void flush(fake_fs *fs, struct session *s, bool batch)
{
    struct entry **pp = &s->q, *e;
    bool data = false;
    buf arr;

    buf_init(&arr, 0);
    while (s->get && (e = *pp)) {
        if (!e->raw && e->id <= s->get_sent) {
            pp = &e->next;
            continue;
        }
        if (!e->raw && batch && !e->split_at) {
            /* the payload with buf_add, not through printf: the fake shares the benchmark's
             * CPUs with the agent, and its cost should stay small */
            buf_printf(&arr, "%s[%ld,", arr.len ? "," : "", e->id);
            buf_add(&arr, e->p, e->n);
            buf_addc(&arr, ']');
            s->get_sent = e->id;
            data |= !e->noop;
            fs->stats[FAKE_FS_ARRAYS_SENT]++;
            pp = &e->next;
            continue;
        }
        if (arr.len && send_arrays(fs, s, &arr, 0, data))
            break;
        data = false;
        if (e->raw) {
            chunk_write(s->get, e->p, e->n, e->split_at);
            *pp = e->next;
            s->last = NULL;
            entry_free(e);
            continue;
        }
        buf_printf(&arr, "[%ld,", e->id);
        buf_adds(&arr, e->p);
        buf_addc(&arr, ']');
        s->get_sent = e->id;
        fs->stats[FAKE_FS_ARRAYS_SENT]++;
        /* the data starts after "[" (the payload's) and "[id," */
        if (send_arrays(fs, s, &arr, e->split_at ? arr.len - e->n + e->split_at : 0, !e->noop))
            break;
        pp = &e->next;
    }
    if (arr.len && s->get)
        send_arrays(fs, s, &arr, 0, data);
    buf_release(&arr);
}

static void maps_add(fake_fs *fs, char *json)
{
    if (fs->nmaps == fs->capmaps) {
        fs->capmaps = fs->capmaps ? 2 * fs->capmaps : 16;
        fs->maps = xrealloc(fs->maps, fs->capmaps * sizeof(*fs->maps));
    }
    fs->maps[fs->nmaps++] = json;
    fs->stats[FAKE_FS_MAPS] = (long)fs->nmaps;
}

/* Map `id` arrived (takes `json`): delivered when it is the next one, with any held maps that
 * follow it; held after a gap; dropped when already seen. */
static void map_arrive(fake_fs *fs, struct session *s, long id, char *json)
{
    struct held **pp, *m;

    if (id < s->next_map) {
        fs->stats[FAKE_FS_DUP_MAPS]++;
        free(json);
        return;
    }
    if (id > s->next_map) {
        for (pp = &s->held; *pp && (*pp)->id < id; pp = &(*pp)->next)
            ;
        if (*pp && (*pp)->id == id) {
            fs->stats[FAKE_FS_DUP_MAPS]++;
            free(json);
            return;
        }
        m = xmalloc(sizeof(*m));
        m->id = id;
        m->json = json;
        m->next = *pp;
        *pp = m;
        return;
    }
    maps_add(fs, json);
    s->next_map++;
    while ((m = s->held) && m->id == s->next_map) {
        s->held = m->next;
        maps_add(fs, m->json);
        free(m);
        s->next_map++;
    }
}

/* Delivers the maps of a POST body: count=N&ofs=K&req0___data__=...; ofs defaults to the next
 * expected id, count to 0. */
static void deliver_maps(fake_fs *fs, struct session *s, const char *body)
{
    long count = 0, ofs = s->next_map, k;
    char key[48], *v;

    v = form_get(body, "count");
    parse_long(v, &count);
    free(v);
    v = form_get(body, "ofs");
    parse_long(v, &ofs);
    free(v);
    for (k = 0; k < count && k < 100000; k++) {
        snprintf(key, sizeof(key), "req%ld___data__", k);
        v = form_get(body, key);
        if (v)
            map_arrive(fs, s, ofs + k, v);
    }
}

static struct session *session_new(fake_fs *fs)
{
    struct session *s = xcalloc(1, sizeof(*s));
    struct entry *e;

    fs->session_seq++;
    /* '+', '/' and '=' force the client to URL-encode the SID, as emulator SIDs do. */
    snprintf(s->sid, sizeof(s->sid), "fake%ld+sid/%04ld==", fs->session_seq,
             (fs->session_seq * 7919) % 10000);
    s->next = fs->sessions;
    fs->sessions = s;
    fs->stats[FAKE_FS_SESSIONS]++;
    fs->stats[FAKE_FS_LAST_ARRAY] = 0;
    while ((e = fs->pending)) {
        fs->pending = e->next;
        session_append(fs, s, e);
    }
    return s;
}

/* ---- 4. handlers --------------------------------------------------------------------------- */

static void unknown_sid(fake_fs *fs, struct conn *c)
{
    fs->stats[FAKE_FS_UNKNOWN_SID]++;
    reply(c, 400, "text/html; charset=utf-8", NULL, UNKNOWN_SID_BODY);
}

/* The live session a request's SID names, counting its gsessionid; answers 400 Unknown SID and
 * returns NULL when there is none (or the gsessionid is wrong and must be right). */
static struct session *sid_session(fake_fs *fs, struct conn *c, const struct request *r)
{
    char *sid = form_get(r->query, "SID"), *g;
    struct session *s = sid ? find_session(fs, sid) : NULL;
    bool ok;

    free(sid);
    if (s && s->gsid[0]) {
        g = form_get(r->query, s->gsid_param);
        ok = g && strcmp(g, s->gsid) == 0;
        free(g);
        fs->stats[ok ? FAKE_FS_GSID_PRESENT : FAKE_FS_GSID_MISSING]++;
        if (!ok && fs->strict_gsid)
            s = NULL;
    }
    if (!s)
        unknown_sid(fs, c);
    return s;
}

static void on_handshake(fake_fs *fs, struct conn *c, const struct request *r)
{
    char *ver = form_get(r->query, "VER"), *rid = form_get(r->query, "RID");
    char *db = form_get(r->query, "database"), *cver = form_get(r->query, "CVER");
    char *gparam = form_get(r->query, "X-HTTP-Session-Id");
    char payload[160], extra[200] = "";
    struct session *s;
    long v = 0, rv = 0;

    if (parse_long(ver, &v) || v < 1 || parse_long(rid, &rv)) {
        reply(c, 200, "text/plain; charset=utf-8", NULL, ""); /* emulator: 200, empty */
    } else if (!db) {
        c->busy = true; /* the emulator never answers a handshake without `database` */
    } else {
        s = session_new(fs);
        if (gparam && *gparam && fs->session_header) {
            snprintf(s->gsid_param, sizeof(s->gsid_param), "%s", gparam);
            snprintf(s->gsid, sizeof(s->gsid), "%s", fs->session_header);
            snprintf(extra, sizeof(extra), "X-HTTP-Session-Id: %s\r\n", s->gsid);
        }
        free(fs->hs_headers);
        fs->hs_headers = form_get(r->body, "headers");
        deliver_maps(fs, s, r->body);
        if (cver)
            snprintf(payload, sizeof(payload), "[[0,[\"c\",\"%s\",\"\",%ld,12,30000]]]", s->sid,
                     v < 8 ? v : 8);
        else
            snprintf(payload, sizeof(payload), "[[0,[\"c\",\"%s\",\"\",%ld,12]]]", s->sid,
                     v < 8 ? v : 8);
        channel_reply(c, payload, extra);
    }
    free(ver);
    free(rid);
    free(db);
    free(cver);
    free(gparam);
}

static void on_forward_post(fake_fs *fs, struct conn *c, const struct request *r)
{
    struct session *s = sid_session(fs, c, r);
    char payload[64], *v;
    long aid;

    if (!s)
        return;
    v = form_get(r->query, "AID");
    if (parse_long(v, &aid) == 0) {
        fs->stats[FAKE_FS_LAST_AID] = aid;
        ack(s, aid);
    }
    free(v);
    deliver_maps(fs, s, r->body);
    snprintf(payload, sizeof(payload), "[%d,%ld,7]", s->get ? 1 : 0, s->last_array);
    channel_reply(c, payload, NULL);
}

static void on_get(fake_fs *fs, struct conn *c, const struct request *r)
{
    struct session *s = sid_session(fs, c, r);
    char *rid, *v;
    long aid = 0;
    bool ci;

    if (!s)
        return;
    rid = form_get(r->query, "RID");
    if (!rid || strcmp(rid, "rpc") != 0) {
        free(rid);
        reply(c, 400, "text/plain; charset=utf-8", NULL, "");
        return;
    }
    free(rid);
    v = form_get(r->query, "AID");
    parse_long(v, &aid);
    free(v);
    v = form_get(r->query, "CI");
    ci = v && strcmp(v, "1") == 0;
    free(v);
    fs->stats[FAKE_FS_LAST_AID] = aid;
    ack(s, aid);
    end_get(fs, s); /* a new GET supersedes the open one */
    chunked_begin(c, NULL);
    s->get = c;
    c->sess = s;
    s->get_sent = aid;
    s->get_ci = ci;
    s->get_start = uv_now(&fs->loop);
    fs->stats[FAKE_FS_GET_OPEN]++;
    if (fs->noop_on_empty && !has_unsent(s))
        session_append(fs, s, entry_new(NOOP_DATA, strlen(NOOP_DATA), false, 0));
    flush(fs, s, true);
}

static void on_terminate(fake_fs *fs, struct conn *c, const struct request *r)
{
    struct session *s = sid_session(fs, c, r);

    if (!s)
        return;
    s->killed = true;
    reap_sessions(fs);
    reply(c, 200, "text/plain; charset=utf-8", NULL, "");
}

static void token_reply(fake_fs *fs, struct conn *c, const char *extra)
{
    char *tok, *body;

    fs->tokens_issued++;
    tok = fs->token ? xstrdup(fs->token) : xasprintf("fake-token-%ld", fs->tokens_issued);
    body = xasprintf("{\"access_token\":\"%s\",\"expires_in\":%d,\"token_type\":\"Bearer\"}", tok,
                     fs->token_expires);
    reply(c, 200, "application/json; charset=utf-8", extra, body);
    free(tok);
    free(body);
}

static void token_error(struct conn *c, const char *error, const char *desc)
{
    char *body = xasprintf("{\"error\":\"%s\",\"error_description\":\"%s\"}", error, desc);
    reply(c, 400, "application/json; charset=utf-8", NULL, body);
    free(body);
}

static void on_token(fake_fs *fs, struct conn *c, const struct request *r)
{
    char *ct = header_get(r->headers, "Content-Type");
    char *grant = form_get(r->body, "grant_type"), *as = form_get(r->body, "assertion");

    if (strcmp(r->method, "POST") != 0)
        reply(c, 405, "text/plain; charset=utf-8", NULL, "POST only\n");
    else if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)
        token_error(c, "invalid_request", "Content-Type must be application/x-www-form-urlencoded");
    else if (!grant || strcmp(grant, JWT_GRANT) != 0)
        token_error(c, "unsupported_grant_type", "Invalid grant_type");
    else if (!as || !*as)
        token_error(c, "invalid_request", "Missing required parameter: assertion");
    else {
        free(fs->assertion);
        fs->assertion = as;
        as = NULL;
        if (!jwt_shaped(fs->assertion))
            token_error(c, "invalid_grant", "Invalid JWT: Token must be a short-lived token");
        else
            token_reply(fs, c, NULL);
    }
    free(ct);
    free(grant);
    free(as);
}

static void on_metadata(fake_fs *fs, struct conn *c, const struct request *r)
{
    char *flavor = header_get(r->headers, "Metadata-Flavor");

    if (strcmp(r->method, "GET") != 0)
        reply(c, 405, "text/plain; charset=utf-8", "Metadata-Flavor: Google\r\n", "GET only\n");
    else if (!flavor || strcmp(flavor, "Google") != 0)
        reply(c, 403, "text/html; charset=UTF-8", "Metadata-Flavor: Google\r\n",
              "Missing Metadata-Flavor:Google header.\n");
    else
        token_reply(fs, c, "Metadata-Flavor: Google\r\n");
    free(flavor);
}

static void on_runquery(fake_fs *fs, struct conn *c, const struct request *r)
{
    struct held *h = fs->runquery;

    if (strcmp(r->method, "POST") != 0) {
        reply(c, 405, "text/plain; charset=utf-8", NULL, "POST only\n");
        return;
    }
    reply(c, 200, "application/json; charset=UTF-8", NULL, h ? h->json : EMPTY_RUNQUERY);
    if (h && h->next) {
        fs->runquery = h->next;
        free(h->json);
        free(h);
    }
}

static enum fake_fs_req classify(const struct request *r)
{
    bool post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    char *v;
    enum fake_fs_req k = FAKE_FS_REQ_OTHER;

    if (strcmp(r->path, FAKE_FS_CHANNEL_PATH) == 0) {
        if (post) {
            v = form_get(r->query, "SID");
            k = v ? FAKE_FS_REQ_POST : FAKE_FS_REQ_HANDSHAKE;
            free(v);
        } else if (get) {
            v = form_get(r->query, "TYPE");
            k = v && strcmp(v, "terminate") == 0 ? FAKE_FS_REQ_TERMINATE : FAKE_FS_REQ_GET;
            free(v);
        }
    } else if (strcmp(r->path, FAKE_FS_METADATA_PATH) == 0) {
        k = FAKE_FS_REQ_METADATA;
    } else if (ends_with(r->path, "/token")) {
        k = FAKE_FS_REQ_TOKEN;
    } else if (strncmp(r->path, "/v1/projects/", 13) == 0 && ends_with(r->path, ":runQuery")) {
        k = FAKE_FS_REQ_RUNQUERY;
    }
    return k;
}

static void record(fake_fs *fs, enum fake_fs_req kind, const struct request *r)
{
    struct record *rec = &fs->last[kind];

    free(rec->target);
    free(rec->headers);
    free(rec->body);
    rec->target = xstrdup(r->target);
    rec->headers = xstrdup(r->headers);
    rec->body = xstrndup(r->body, r->body_len);
}

static void fail_apply(struct conn *c, const struct failure *f)
{
    const char *b = f->body ? f->body : "";

    if (f->status == FAKE_FS_HANG)
        c->busy = true;
    else if (f->status == FAKE_FS_CLOSE)
        conn_close(c, false);
    else if (f->status == FAKE_FS_STALL)
        chunked_begin(c, NULL);
    else
        reply(c, f->status,
              (b[0] == '{' || b[0] == '[') ? "application/json; charset=UTF-8"
                                           : "text/plain; charset=utf-8",
              NULL, b);
}

static void dispatch(fake_fs *fs, struct conn *c, struct request *r)
{
    enum fake_fs_req kind = classify(r);
    struct failure *f = fs->fail[kind];

    fs->stats[kind]++;
    record(fs, kind, r);
    if (f) {
        fs->fail[kind] = f->next;
        fail_apply(c, f);
        free(f->body);
        free(f);
        return;
    }
    switch (kind) {
    case FAKE_FS_REQ_HANDSHAKE:
        on_handshake(fs, c, r);
        break;
    case FAKE_FS_REQ_GET:
        on_get(fs, c, r);
        break;
    case FAKE_FS_REQ_POST:
        on_forward_post(fs, c, r);
        break;
    case FAKE_FS_REQ_TERMINATE:
        on_terminate(fs, c, r);
        break;
    case FAKE_FS_REQ_TOKEN:
        on_token(fs, c, r);
        break;
    case FAKE_FS_REQ_METADATA:
        on_metadata(fs, c, r);
        break;
    case FAKE_FS_REQ_RUNQUERY:
        on_runquery(fs, c, r);
        break;
    default:
        reply(c, 404, "text/plain; charset=utf-8", NULL, "not found\n");
        break;
    }
}

/* ---- loop-side callbacks of the API -------------------------------------------------------- */

static void on_noop_timer(uv_timer_t *t)
{
    fake_fs *fs = t->data;
    struct session *s;

    lock(fs);
    s = newest(fs);
    if (s && s->get) {
        session_append(fs, s, entry_new(NOOP_DATA, strlen(NOOP_DATA), false, 0));
        flush(fs, s, false);
    }
    unlock_notify(fs);
}

static void close_all(fake_fs *fs)
{
    struct conn *c;

    for (c = fs->conns; c; c = c->next) {
        conn_close(c, false);
        close_handles(c); /* also those waiting on a graceful shutdown */
    }
    uv_close((uv_handle_t *)&fs->server, NULL);
    uv_close((uv_handle_t *)&fs->noop_timer, NULL);
    uv_close((uv_handle_t *)&fs->async, NULL);
}

/* Carries out what the test thread asked for: write new pushes, end or cut the GET, free killed
 * sessions, (re)arm the noop timer, or close everything. */
static void on_async(uv_async_t *a)
{
    fake_fs *fs = a->data;
    struct session *s;

    lock(fs);
    if (fs->stopping) {
        close_all(fs);
        unlock_notify(fs);
        return;
    }
    for (s = fs->sessions; s; s = s->next)
        if (s->get)
            flush(fs, s, false);
    s = newest(fs);
    if (s && fs->cmd_end_get)
        end_get(fs, s);
    if (s && fs->cmd_drop_get)
        drop_get(fs, s);
    fs->cmd_end_get = fs->cmd_drop_get = false;
    reap_sessions(fs);
    if (fs->noop_changed) {
        uv_timer_stop(&fs->noop_timer);
        if (fs->noop_ms)
            uv_timer_start(&fs->noop_timer, on_noop_timer, fs->noop_ms, fs->noop_ms);
        fs->noop_changed = false;
    }
    unlock_notify(fs);
}

static void *loop_main(void *arg)
{
    fake_fs *fs = arg;

    uv_run(&fs->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- 5. API -------------------------------------------------------------------------------- */

static int listen_on_loopback(fake_fs *fs)
{
    struct sockaddr_in addr;
    struct sockaddr_storage ss;
    int len = sizeof(ss), rc;

    uv_ip4_addr("127.0.0.1", 0, &addr);
    rc = uv_tcp_bind(&fs->server, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&fs->server, 128, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&fs->server, (struct sockaddr *)&ss, &len);
    if (rc == 0) {
        fs->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(fs->url, sizeof(fs->url), "http://127.0.0.1:%d", fs->port);
    }
    return rc;
}

fake_fs *fake_fs_start(void)
{
    fake_fs *fs = xcalloc(1, sizeof(*fs));
    pthread_condattr_t ca;
    int rc;

    /* a client that hangs up mid-answer must not kill the test process with SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&fs->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&fs->cv, &ca);
    pthread_condattr_destroy(&ca);
    fs->noop_on_empty = true;
    fs->hold_ms = 45000;
    fs->split_gap_ms = 50;
    fs->token_expires = 3600;
    fs->stats[FAKE_FS_LAST_AID] = -1;
    rc = uv_loop_init(&fs->loop);
    if (rc) {
        fprintf(stderr, "fake_fs: uv_loop_init: %s\n", uv_strerror(rc));
        fake_fs_free(fs);
        return NULL;
    }
    uv_tcp_init(&fs->loop, &fs->server);
    uv_async_init(&fs->loop, &fs->async, on_async);
    uv_timer_init(&fs->loop, &fs->noop_timer);
    fs->server.data = fs->async.data = fs->noop_timer.data = fs;
    rc = listen_on_loopback(fs);
    if (rc == 0)
        rc = -pthread_create(&fs->thread, NULL, loop_main, fs);
    if (rc) {
        fprintf(stderr, "fake_fs: cannot start: %s\n", uv_strerror(rc));
        uv_close((uv_handle_t *)&fs->server, NULL);
        uv_close((uv_handle_t *)&fs->async, NULL);
        uv_close((uv_handle_t *)&fs->noop_timer, NULL);
        uv_run(&fs->loop, UV_RUN_DEFAULT);
        uv_loop_close(&fs->loop);
        fake_fs_free(fs);
        return NULL;
    }
    fs->running = true;
    return fs;
}

void fake_fs_stop(fake_fs *fs)
{
    bool run;

    if (!fs)
        return;
    lock(fs);
    run = fs->running && !fs->stopping;
    if (run)
        uv_async_send(&fs->async);
    fs->stopping = true;
    unlock_notify(fs);
    if (!run)
        return;
    pthread_join(fs->thread, NULL);
    lock(fs);
    fs->running = false;
    unlock_notify(fs);
    if (uv_loop_close(&fs->loop) != 0)
        fprintf(stderr, "fake_fs: the loop still has handles after stop\n");
}

void fake_fs_free(fake_fs *fs)
{
    struct session *s;
    struct failure *f;
    size_t i;
    int k;

    if (!fs)
        return;
    fake_fs_stop(fs);
    while ((s = fs->sessions)) {
        fs->sessions = s->next;
        session_free(s);
    }
    entries_free(fs->pending);
    for (k = 0; k < FAKE_FS_REQ_COUNT_; k++) {
        while ((f = fs->fail[k])) {
            fs->fail[k] = f->next;
            free(f->body);
            free(f);
        }
        free(fs->last[k].target);
        free(fs->last[k].headers);
        free(fs->last[k].body);
    }
    for (i = 0; i < fs->nmaps; i++)
        free(fs->maps[i]);
    free(fs->maps);
    free(fs->hs_headers);
    free(fs->assertion);
    held_free(fs->runquery);
    free(fs->session_header);
    free(fs->token);
    pthread_cond_destroy(&fs->cv);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}

int fake_fs_port(const fake_fs *fs)
{
    return fs->port;
}

const char *fake_fs_url(const fake_fs *fs)
{
    return fs->url;
}

/* Queues an entry on the newest live session, or for the next one; returns the array id. */
static long push_entry(fake_fs *fs, struct entry *e)
{
    struct session *s;
    struct entry **pp;
    long id = 0;

    lock(fs);
    s = newest(fs);
    if (s) {
        session_append(fs, s, e);
        id = e->id;
    } else {
        for (pp = &fs->pending; *pp; pp = &(*pp)->next)
            ;
        *pp = e;
    }
    wake_unlock(fs);
    return e->raw ? 0 : id;
}

long fake_fs_push(fake_fs *fs, const char *json_data)
{
    return push_entry(fs, entry_new(json_data, strlen(json_data), false, 0));
}

long fake_fs_pushf(fake_fs *fs, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;
    long id;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    id = fake_fs_push(fs, s);
    free(s);
    return id;
}

long fake_fs_push_split(fake_fs *fs, const char *json_data, size_t split_at)
{
    return push_entry(fs, entry_new(json_data, strlen(json_data), false, split_at));
}

void fake_fs_push_raw(fake_fs *fs, const void *bytes, size_t n, size_t split_at)
{
    push_entry(fs, entry_new(bytes, n, true, split_at));
}

void fake_fs_end_get(fake_fs *fs)
{
    lock(fs);
    fs->cmd_end_get = true;
    wake_unlock(fs);
}

void fake_fs_drop_get(fake_fs *fs)
{
    lock(fs);
    fs->cmd_drop_get = true;
    wake_unlock(fs);
}

void fake_fs_kill_session(fake_fs *fs)
{
    struct session *s;

    lock(fs);
    s = newest(fs);
    if (s)
        s->killed = true;
    s = newest(fs);
    fs->stats[FAKE_FS_LAST_ARRAY] = s ? s->last_array : 0;
    wake_unlock(fs);
}

void fake_fs_noops(fake_fs *fs, unsigned interval_ms)
{
    lock(fs);
    fs->noop_ms = interval_ms;
    fs->noop_changed = true;
    wake_unlock(fs);
}

void fake_fs_fail_next(fake_fs *fs, enum fake_fs_req kind, int status, const char *body)
{
    struct failure *f, **pp;

    if ((int)kind < 0 || kind >= FAKE_FS_REQ_COUNT_)
        return;
    f = xcalloc(1, sizeof(*f));
    f->status = status;
    f->body = dup_or_null(body);
    lock(fs);
    for (pp = &fs->fail[kind]; *pp; pp = &(*pp)->next)
        ;
    *pp = f;
    unlock_notify(fs);
}

void fake_fs_set_session_header(fake_fs *fs, const char *value)
{
    lock(fs);
    free(fs->session_header);
    fs->session_header = dup_or_null(value);
    unlock_notify(fs);
}

void fake_fs_require_gsessionid(fake_fs *fs, bool on)
{
    lock(fs);
    fs->strict_gsid = on;
    unlock_notify(fs);
}

void fake_fs_set_noop_on_empty_get(fake_fs *fs, bool on)
{
    lock(fs);
    fs->noop_on_empty = on;
    unlock_notify(fs);
}

void fake_fs_set_stream_hold(fake_fs *fs, unsigned ms)
{
    lock(fs);
    fs->hold_ms = ms;
    unlock_notify(fs);
}

void fake_fs_set_http_chunk_max(fake_fs *fs, size_t n)
{
    lock(fs);
    fs->http_chunk_max = n;
    unlock_notify(fs);
}

void fake_fs_set_split_gap(fake_fs *fs, unsigned ms)
{
    lock(fs);
    fs->split_gap_ms = ms;
    unlock_notify(fs);
}

void fake_fs_set_token(fake_fs *fs, const char *access_token, int expires_in)
{
    lock(fs);
    free(fs->token);
    fs->token = dup_or_null(access_token);
    fs->token_expires = expires_in;
    unlock_notify(fs);
}

void fake_fs_push_runquery(fake_fs *fs, const char *json_body)
{
    struct held *h = xcalloc(1, sizeof(*h)), **pp;

    h->json = xstrdup(json_body);
    lock(fs);
    for (pp = &fs->runquery; *pp; pp = &(*pp)->next)
        ;
    *pp = h;
    unlock_notify(fs);
}

long fake_fs_stat(fake_fs *fs, enum fake_fs_stat st)
{
    long v;

    if ((int)st < 0 || st >= FAKE_FS_STAT_COUNT_)
        return -1;
    lock(fs);
    v = fs->stats[st];
    unlock_notify(fs);
    return v;
}

static void deadline_in(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

bool fake_fs_wait(fake_fs *fs, enum fake_fs_stat st, long at_least, int timeout_ms)
{
    struct timespec ts;
    bool ok;

    if ((int)st < 0 || st >= FAKE_FS_STAT_COUNT_)
        return false;
    deadline_in(&ts, timeout_ms);
    lock(fs);
    while (!(ok = fs->stats[st] >= at_least))
        if (pthread_cond_timedwait(&fs->cv, &fs->mu, &ts) == ETIMEDOUT) {
            ok = fs->stats[st] >= at_least;
            break;
        }
    pthread_mutex_unlock(&fs->mu);
    return ok;
}

static bool some_map_has(const fake_fs *fs, const char *needle)
{
    size_t i;

    for (i = 0; i < fs->nmaps; i++)
        if (strstr(fs->maps[i], needle))
            return true;
    return false;
}

bool fake_fs_wait_map(fake_fs *fs, const char *needle, int timeout_ms)
{
    struct timespec ts;
    bool ok;

    deadline_in(&ts, timeout_ms);
    lock(fs);
    while (!(ok = some_map_has(fs, needle)))
        if (pthread_cond_timedwait(&fs->cv, &fs->mu, &ts) == ETIMEDOUT) {
            ok = some_map_has(fs, needle);
            break;
        }
    pthread_mutex_unlock(&fs->mu);
    return ok;
}

char *fake_fs_map(fake_fs *fs, size_t i)
{
    char *s;

    lock(fs);
    s = i < fs->nmaps ? xstrdup(fs->maps[i]) : NULL;
    unlock_notify(fs);
    return s;
}

char *fake_fs_sid(fake_fs *fs)
{
    struct session *s;
    char *sid;

    lock(fs);
    s = newest(fs);
    sid = s ? xstrdup(s->sid) : NULL;
    unlock_notify(fs);
    return sid;
}

char *fake_fs_last_query(fake_fs *fs, enum fake_fs_req kind, const char *param)
{
    const char *q;
    char *v = NULL;

    if ((int)kind < 0 || kind >= FAKE_FS_REQ_COUNT_)
        return NULL;
    lock(fs);
    if (fs->last[kind].target) {
        q = strchr(fs->last[kind].target, '?');
        v = q ? form_get(q + 1, param) : NULL;
    }
    unlock_notify(fs);
    return v;
}

char *fake_fs_last_header(fake_fs *fs, enum fake_fs_req kind, const char *name)
{
    char *v = NULL;

    if ((int)kind < 0 || kind >= FAKE_FS_REQ_COUNT_)
        return NULL;
    lock(fs);
    if (fs->last[kind].headers)
        v = header_get(fs->last[kind].headers, name);
    unlock_notify(fs);
    return v;
}

char *fake_fs_last_body(fake_fs *fs, enum fake_fs_req kind)
{
    char *v;

    if ((int)kind < 0 || kind >= FAKE_FS_REQ_COUNT_)
        return NULL;
    lock(fs);
    v = dup_or_null(fs->last[kind].body);
    unlock_notify(fs);
    return v;
}

char *fake_fs_handshake_headers(fake_fs *fs)
{
    char *v;

    lock(fs);
    v = dup_or_null(fs->hs_headers);
    unlock_notify(fs);
    return v;
}

char *fake_fs_token_assertion(fake_fs *fs)
{
    char *v;

    lock(fs);
    v = dup_or_null(fs->assertion);
    unlock_notify(fs);
    return v;
}
