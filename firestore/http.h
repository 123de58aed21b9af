/*
 * http.h - a small asynchronous HTTP client: curl's multi-socket API driven by a libuv loop.
 *
 * The agent's loop never blocks, so every request runs inside curl's multi handle, whose sockets
 * are watched by one uv_poll_t each and whose timeouts are driven by one uv_timer_t per client
 * (the scheme of curl's docs/examples/multi-uv.c). The same timer also enforces each request's
 * idle timeout ("no byte for N ms"), which the WebChannel back channel uses as its 45 s
 * watchdog.
 *
 * Requests speak HTTP/1.1 (the WebChannel transport as measured), each on a connection of its
 * own while it runs; curl reuses idle connections.
 *
 * Safety rules enforced here, whatever the caller asks:
 *   - TLS is always verified (peer and host name); there is no option to turn it off.
 *   - Plain http:// is refused unless the host is loopback (127.0.0.0/8, ::1, localhost) or
 *     the Google Cloud metadata server's link-local address (169.254.169.254);
 *     every other scheme is refused. Redirects are never followed.
 *   - A buffered response body has a hard cap; a streamed one may have one too.
 *   - Error messages name the method, host and path, never the query, headers or body (where
 *     tokens and session ids travel).
 *
 * Callbacks. on_header and on_data run while curl is working (inside the loop's poll or timer
 * callbacks, or inside http_resume()); on_done runs once per request from the loop, after curl
 * has let go of the request. From any callback the caller may start new requests, cancel
 * requests (this one included), and pause or resume: those calls are deferred internally when
 * curl cannot take them at that moment. After on_done returns, or after http_cancel(), the
 * request handle is gone and must not be used again.
 *
 * Ownership: the client owns its requests. http_client_close() cancels whatever is still running
 * (without callbacks), closes the uv handles asynchronously and calls done_cb once the loop holds
 * none of them; then http_client_free() releases the memory. Not thread-safe: one loop thread.
 */
#ifndef FIRESYNC_HTTP_H
#define FIRESYNC_HTTP_H

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_client http_client;
typedef struct http_request http_request;

/* Returned by on_data: "I took none of these bytes; hold them and stop reading". The same bytes
 * are offered again, in full, after http_resume(). */
#define HTTP_PAUSE 1

/* Cap on a buffered body (on_data == NULL) when the request gives none. */
#define HTTP_DEFAULT_BODY_CAP ((size_t)1 << 20)

/* What on_done receives. */
struct http_result {
    int rc;            /* 0 when an HTTP response was received in full (any status), else FS_E* */
    long status;       /* HTTP status, 0 when none was received */
    const char *body;  /* buffered mode only: the body, NUL-terminated; "" otherwise */
    size_t body_len;   /* its length */
    const fserr *err;  /* rc != 0: what went wrong (never NULL then) */
    uint64_t received; /* body bytes received */
};

/* A header line of the response, name and value trimmed, both NUL-terminated and valid only
 * during the call. Return 0, or a negative FS_E* code to abort the request (on_done gets it). */
typedef int (*http_header_fn)(void *ud, const char *name, const char *value);
/* A piece of the response body (status is the response's HTTP status). Return 0 when all n
 * bytes were taken, HTTP_PAUSE to hand them back and pause, or a negative FS_E* code to abort. */
typedef int (*http_data_fn)(void *ud, long status, const char *p, size_t n);
/* The request is over: called exactly once unless the request was cancelled. */
typedef void (*http_done_fn)(void *ud, const struct http_result *res);

struct http_req_opts {
    const char *method;         /* "GET", "POST", ... (NULL means GET, or POST with a body) */
    const char *url;            /* absolute http(s) URL; see the rules above */
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;           /* request body (copied), or NULL for none */
    size_t body_len;            /* its length */
    long timeout_ms;            /* whole-request limit; 0 means none */
    long connect_timeout_ms;    /* connection limit; 0 means curl's default */
    long idle_timeout_ms;       /* no response byte for this long: FS_ETIMEOUT; 0 means none */
    bool fresh_connection;      /* a connection of its own, closed after this request */
    size_t body_cap;            /* cap on body bytes (buffered: 0 means the default; streamed:
                                   0 means no cap on the total) */
    http_header_fn on_header;   /* may be NULL */
    http_data_fn on_data;       /* NULL: the body is buffered and handed to on_done */
    http_done_fn on_done;       /* required */
    void *ud;                   /* passed to the callbacks */
};

/* A client on `loop`. Returns NULL (e filled) only when curl cannot be set up. */
http_client *http_client_new(uv_loop_t *loop, fserr *e);

/* Cancels every request without callbacks and closes the client's uv handles; done_cb(ud) runs
 * from the loop once they are all closed (never from inside this call). Calling it twice, or
 * starting requests afterwards, is refused. */
void http_client_close(http_client *c, void (*done_cb)(void *ud), void *ud);

/* Frees a closed client (from done_cb or later). On a client still open it closes it first (no
 * done_cb) and frees it once its handles are closed; the caller must not touch it again. Accepts
 * NULL. */
void http_client_free(http_client *c);

/* Starts a request. Returns its handle, or NULL with e filled (FS_EINVAL for a refused URL or
 * bad options, FS_ECANCELED when the client is closing); on failure no callback is ever called. */
http_request *http_request_new(http_client *c, const struct http_req_opts *o, fserr *e);

/* Stops a request; none of its callbacks runs afterwards and the handle is gone. Safe from any
 * callback, including the request's own. */
void http_cancel(http_request *r);

/* Stops delivering body bytes until http_resume(). From inside on_data the current piece counts
 * as taken and the next one is held. The idle timeout does not run while paused. A response
 * that was already complete still ends (on_done) while paused. */
void http_pause(http_request *r);
/* Continues a paused request; held bytes may be delivered before this returns. */
void http_resume(http_request *r);
bool http_paused(const http_request *r);

/* Refuses (FS_EINVAL) URLs that are not https://, or http:// to a loopback host. Pure. */
int http_check_url(const char *url, fserr *e);

/* Number of requests running on the client (for status and tests). */
size_t http_active(const http_client *c);

#endif
