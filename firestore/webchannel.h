/*
 * webchannel.h - the WebChannel (VER=8) transport of Firestore's Listen stream, in plain
 * HTTP/1.1 (webchannel.md sections 0 to 4 and 9).
 *
 * A session is: a handshake POST that carries the first ListenRequests and returns the session
 * id (`["c",SID,host,8,12,keepAliveMs]`, array 0); a back channel, one long-poll GET after
 * another, each streaming length-prefixed chunks of `[[arrayId,data],...]`; forward POSTs that
 * carry later ListenRequests (one in flight, contiguous map ids, a retry reuses its ids); and a
 * TYPE=terminate GET at the end. This module owns all of that and hands the owner each
 * ListenResponse object in order, exactly once per session, skipping arrays it has seen (ids at
 * or below the last one processed) and acknowledging everything (noops included) through AID.
 *
 * The owner (firestore/listen) owns the meaning: which targets exist and their resume tokens.
 * The transport never rewrites a message. When a session dies (any non-200 answer carrying the
 * session id, `["stop"]`, `["close"]`, an `{"error":...}` payload, or a back channel that fails
 * four times running without data) the transport tells the owner (on_down), waits an
 * exponential backoff with jitter, and opens a new session, calling on_connect again so that the
 * owner re-adds its targets with resume tokens. Forward messages not yet sent, and ListenResponses
 * received but not yet delivered, die with their session: on_connect must send everything the new
 * session needs.
 *
 * Back-pressure: on_message may return WC_PAUSE. The message counts as delivered; the transport
 * pauses the back-channel GET (curl stops reading, so the server is held back by TCP), keeps the
 * arrays it already received but has not delivered, and wc_resume() continues with exactly the
 * next one. While paused no watchdog runs and no new GET starts.
 *
 * Secrets: the access token (from cfg.auth_header) travels only in the handshake, both as the
 * real Authorization header and inside the `headers=` form field, as the JS SDK does; forward
 * POSTs and GETs carry none. No token and no session id appears in a log line or error message.
 *
 * Callbacks run on the loop thread. From any of them the owner may call wc_send(), wc_resume(),
 * wc_restart() and wc_close(); the message passed to on_message is valid only during the call.
 *
 * Ownership: wc_new() borrows the loop and the HTTP client, which must outlive the session (close
 * the session first, then the client from the session's close callback). wc_close() frees the
 * session once its terminate request and timers are done.
 */
#ifndef FIRESYNC_WEBCHANNEL_H
#define FIRESYNC_WEBCHANNEL_H

#include "common/buf.h"
#include "common/err.h"
#include "firestore/http.h"
#include "firestore/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* on_message's "deliver nothing more until wc_resume()". */
#define WC_PAUSE 1

/* Path of the Listen channel under the base URL. */
#define WC_LISTEN_PATH "/google.firestore.v1.Firestore/Listen/channel"
/* Longest session id (or gsessionid) accepted from a server. */
#define WC_SID_MAX 256

typedef struct wc_session wc_session;

struct wc_config {
    const char *base_url;    /* "https://firestore.googleapis.com" or "http://127.0.0.1:8080" */
    const char *database;    /* "projects/P/databases/D" */
    const char *path;        /* channel path; NULL means WC_LISTEN_PATH */
    long request_timeout_ms; /* handshake, forward POST, terminate; 0 means 30 000 */
    long watchdog_ms;        /* back channel silent this long is retried; 0 means 1.5 x the
                                server's keep-alive (45 s with the usual 30 s) */
    long get_retry_ms;       /* back-channel retry k waits (k-1) x (this + rand x 2 x this);
                                0 means 5000, as the JS client */
    long backoff_min_ms;     /* new-session backoff, first step; 0 means 1000 */
    long backoff_max_ms;     /* and its ceiling; 0 means 60 000 */
    size_t max_chunk_bytes;  /* cap on one chunk's payload; 0 means WC_FRAME_DEFAULT_MAX */
    /* Appends the Authorization value ("Bearer <token>") to out, or nothing for no auth. Called
     * before every handshake. Returns 0 or a negative FS_E* code (the session attempt fails
     * with it and is retried after backoff). May be NULL. */
    int (*auth_header)(void *auth_ud, buf *out);
    void *auth_ud;
};

struct wc_callbacks {
    /* A handshake is about to be sent: call wc_send() for every message it must carry (the
     * addTarget requests, with resume tokens). May be NULL (an empty handshake). */
    void (*on_connect)(void *ud);
    /* The server accepted the handshake (a session id is held). May be NULL. */
    void (*on_open)(void *ud);
    /* One ListenResponse object: token `tok` of d. Return 0, WC_PAUSE, or a negative FS_E* code,
     * which ends the session (on_down follows) like a protocol error. Required. */
    int (*on_message)(void *ud, const json_doc *d, int tok);
    /* The session died (code, and a message without secrets); a new one follows after backoff
     * unless the owner calls wc_close(). Not called for wc_restart() or wc_close(). May be NULL. */
    void (*on_down)(void *ud, int code, const char *why);
};

enum wc_state {
    WC_IDLE,       /* not started */
    WC_CONNECTING, /* handshake in flight */
    WC_OPEN,       /* session id held; back channel running (or paused) */
    WC_BACKOFF,    /* waiting to open a new session */
    WC_CLOSED,     /* wc_close() called */
};

struct wc_stats {
    enum wc_state state;
    bool has_session;          /* a session id is held */
    bool paused;               /* the owner asked for a pause and has not resumed */
    int64_t last_array_id;     /* AID: the last array processed; -1 before any */
    uint64_t arrays_received;  /* arrays processed, noops included, over all sessions */
    uint64_t messages;         /* ListenResponses delivered */
    uint64_t sessions;         /* handshakes that returned a session id */
    uint64_t reconnects;       /* sessions lost (each followed by a new one) */
    uint64_t restarts;         /* wc_restart() calls */
    uint64_t gets;             /* back-channel GETs started */
    uint64_t get_failures;     /* GETs that failed or timed out */
    uint64_t posts;            /* forward POSTs started (retries included) */
    int64_t last_data_unix_ms; /* wall clock of the last array received; 0 if none */
    size_t queued;             /* forward messages not yet acknowledged by the server */
    size_t held_bytes;         /* received payload bytes not yet delivered (during a pause) */
};

/* A session on `loop` over `http`. Validates the config (the URL rules of http.h, a database)
 * and copies what it keeps. Nothing is sent until wc_start(). NULL with e filled on error. */
wc_session *wc_new(uv_loop_t *loop, http_client *http, const struct wc_config *cfg,
                   const struct wc_callbacks *cb, void *ud, fserr *e);

/* Opens the first session: on_connect runs from the loop, never inside this call. Returns 0, or
 * FS_EINVAL when already started or closed. */
int wc_start(wc_session *s, fserr *e);

/* Queues one forward message (a ListenRequest as JSON text: addTarget or removeTarget), sent
 * verbatim. While no session is open (before wc_start(), during backoff, inside on_connect) it
 * goes into the next handshake; otherwise with the next forward POST of the open session. A
 * message still queued when its session dies is dropped (on_connect re-sends what matters).
 * Returns 0, FS_EINVAL (not a JSON object), FS_ETOOBIG (over 4 MiB) or FS_ECANCELED (closed). */
int wc_send(wc_session *s, const char *json, fserr *e);

/* Ends a pause: delivers the held messages in order (the owner may pause again), then lets the
 * back channel read on. Does nothing when not paused. */
void wc_resume(wc_session *s);

/* Terminates the current session and opens a new one at once (after a token refresh, say):
 * on_connect runs again from the loop. Returns 0 or FS_ECANCELED when closed. */
int wc_restart(wc_session *s, fserr *e);

/* Sends TYPE=terminate for a held session, cancels everything else, and frees the session; done
 * (may be NULL) runs from the loop once nothing of the session is left in the loop. No other
 * callback runs after this call. Accepts NULL. */
void wc_close(wc_session *s, void (*done)(void *ud), void *ud);

/* wc_close() without a completion callback. Accepts NULL. */
void wc_free(wc_session *s);

void wc_stats_get(const wc_session *s, struct wc_stats *out);
const char *wc_state_name(enum wc_state st);

/* The current session id ("" when none). For tests and diagnostics: never log it. */
const char *wc_session_id(const wc_session *s);

/* ---- pure helpers, exposed for unit tests and fuzzing -------------------------------------- */

enum wc_req_kind { WC_REQ_HANDSHAKE, WC_REQ_FORWARD, WC_REQ_BACK, WC_REQ_TERMINATE };

struct wc_url_params {
    enum wc_req_kind kind;
    const char *base_url; /* without a trailing '/' */
    const char *path;     /* WC_LISTEN_PATH or another channel */
    const char *database;
    const char *sid;        /* all but the handshake */
    const char *gsessionid; /* NULL or "" when the server sent no X-HTTP-Session-Id */
    const char *zx;         /* cache buster */
    long rid;               /* handshake, forward and terminate */
    int64_t aid;            /* forward and back channel */
    unsigned attempt;       /* t: 1 for a first try */
};

/* Appends s[0..n) encoded like JavaScript's encodeURIComponent (all but A-Z a-z 0-9 - _ . ! ~
 * * ' ( ) becomes %XX). FS_ETOOBIG at out's cap. */
int wc_urlenc(buf *out, const char *s, size_t n);

/* Appends the request URL: the parameters of webchannel.md section 1 in the JS client's order,
 * every value encoded. */
int wc_build_url(buf *out, const struct wc_url_params *p);

/* Appends a POST body: `headers=<enc "Authorization:<auth>\r\n">&` when auth is non-NULL and
 * non-empty (the handshake), then `count=n&ofs=ofs&req0___data__=<enc msg0>&...`. */
int wc_build_body(buf *out, const char *auth, int64_t ofs, const char *const *msgs, size_t n);

/* Tokenizes one chunk payload into d and checks its shape: an array of [id, data] arrays, each
 * id a non-negative integer. FS_EPROTO (or the tokenizer's code) with e filled otherwise. */
int wc_payload_parse(json_doc *d, const char *p, size_t n, fserr *e);

/* Iterates the arrays of a parsed payload whose id is above last_id. *it starts at 0; returns
 * true with *id and *data (the data token) set, false at the end. */
bool wc_array_next(const json_doc *d, int *it, int64_t last_id, int64_t *id, int *data);

enum wc_kind {
    WC_K_DATA,  /* [<ListenResponse object>]: *msg is the object */
    WC_K_NOOP,  /* ["noop"] */
    WC_K_STOP,  /* ["stop"] */
    WC_K_CLOSE, /* ["close"] */
    WC_K_HELLO, /* ["c", SID, ...] */
    WC_K_ERROR, /* {"error":...} in data, data[0] or data[0][0]: *msg is the object with "error" */
    WC_K_OTHER, /* anything else: ignored */
};

/* What the data token of an array is. *msg gets the object for WC_K_DATA and WC_K_ERROR. */
enum wc_kind wc_classify(const json_doc *d, int data, int *msg);

struct wc_hello {
    char sid[WC_SID_MAX];
    int64_t version;      /* negotiated VER (must be 8) */
    int64_t keepalive_ms; /* c[5], or 30 000 when absent or implausible */
};

/* Reads ["c", SID, host, VER, SVER?, keepAlive?]. FS_EPROTO for a missing or oversized SID,
 * a SID with control characters, or a VER other than 8. */
int wc_parse_hello(const json_doc *d, int data, struct wc_hello *h, fserr *e);

/* Reads an error object ({"error":{"code"?,"status"?,"message"?}}) into an FS_E* code
 * (FS_EAUTH for UNAUTHENTICATED and PERMISSION_DENIED, FS_ESESSION otherwise) and a message. */
int wc_error_info(const json_doc *d, int msg, char *why, size_t n);

/* Reads a forward-POST reply body (`7\n[1,6,7]`) into out: backChannelPresent, the last array id
 * the server sent, outstanding bytes. FS_EPROTO when it is not such a chunk. */
int wc_parse_post_reply(const char *p, size_t n, int64_t out[3], fserr *e);

/* Backoff before new-session attempt `attempt` (0 for the first retry): base = min x 2^attempt
 * capped at max, then jittered by r in [0,1) to between half and all of base. */
long wc_backoff_ms(long min, long max, unsigned attempt, double r);

#endif
