/*
 * stream.h - the Firestore side of the agent in one piece (prefix stream_): the HTTP client,
 * the token provider, the WebChannel session and the Listen state, wired together on one libuv
 * loop. `firesync run` and `firesync tail` both use it; they differ only in what they do with
 * the document events (listen.h's callbacks, minus `send`, which the stream provides).
 *
 * The stream starts once the first access token is in place, re-adds every target with its
 * resume token whenever a new session opens, restarts the session when the token is refreshed
 * (identity is bound at the handshake), and lets the owner apply back-pressure: when
 * `should_pause` says so after a message, the back channel pauses until stream_resume().
 *
 * Ownership: the stream borrows the loop and the config; stream_close() tears everything down
 * asynchronously and calls done() when the loop holds nothing of it, then frees it.
 */
#ifndef FIRESYNC_STREAM_H
#define FIRESYNC_STREAM_H

#include "agent/config.h"
#include "common/err.h"
#include "firestore/listen.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct stream;

struct stream_hooks {
    /* After each message: true pauses the stream until stream_resume(). May be NULL. */
    bool (*should_pause)(void *ud);
    /* The stream went up or down (a session opened or died). May be NULL. */
    void (*on_state)(void *ud, bool up, const char *why);
};

/* Builds the stream for cfg; `cb` are the Listen callbacks (its `send` is ignored). */
int stream_new(uv_loop_t *loop, const struct cfg *cfg, const struct listen_callbacks *cb,
               const struct stream_hooks *hooks, void *ud, struct stream **out, fserr *e);
/* Adds a target before stream_start(); returns its index (see listen_add_target). */
int stream_add_target(struct stream *s, const char *path, const char *resume_token, fserr *e);
/* Fetches the first token, then opens the session. */
int stream_start(struct stream *s, fserr *e);
void stream_resume(struct stream *s);
/* Re-listens a target without its resume token (a full reload that counts as a reset). */
int stream_relisten(struct stream *s, int target, fserr *e);
void stream_close(struct stream *s, void (*done)(void *ud), void *ud);

bool stream_up(const struct stream *s);
int64_t stream_since_us(const struct stream *s);       /* last up/down change */
int64_t stream_last_data_us(const struct stream *s);   /* last array from the server */
uint64_t stream_reconnects(const struct stream *s);
listen_state *stream_listen(struct stream *s);
/* "projects/P/databases/D" */
const char *stream_database(const struct stream *s);
/* Base URL of the service or emulator, for REST reads. */
const char *stream_base_url(const struct stream *s);
/* Appends the Authorization header value for REST reads ("Bearer ..."). */
int stream_auth_header(struct stream *s, buf *out);
struct http_client *stream_http(struct stream *s);

#endif
