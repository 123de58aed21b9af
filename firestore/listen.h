/*
 * listen.h - Listen state: what the stream's ListenResponses mean for each target (prefix
 * listen_).
 *
 * One target per configured collection, all in one WebChannel session. This module turns the
 * protocol's target changes (ADD, CURRENT, RESET, REMOVE, NO_CHANGE), document messages
 * (documentChange, documentDelete, documentRemove) and existence filters into calls on its
 * owner, and decides when a target's set of documents is complete:
 *
 *   - seen/upsert: a document of the target in its current version. Before decoding, the owner
 *     is asked whether it already applied exactly this update time (seen); only a new version is
 *     decoded and handed over (upsert), so a RESET re-sending thousands of unchanged documents
 *     costs a lookup each and copies nothing.
 *   - remove: a document left the target (deleted, or no longer matching), at a read time.
 *   - reset: the server will re-send the whole set; every document of the target it does not
 *     re-send before the next consistent point is gone. A first listen without a resume token,
 *     and a re-listen after an existence-filter mismatch, count as resets too.
 *   - consistent: a point where the set is complete (a global NO_CHANGE with a read time after
 *     CURRENT, as the backend guarantees); with `after_reset`, the owner deletes what was not
 *     seen since the reset. Only then is the resume token worth checkpointing.
 *   - target_error: REMOVE with a cause (resume token refused, permission, bad query), or an
 *     existence filter that a re-listen did not settle: the stream cannot prove completeness.
 *
 * Messages for targets with outstanding add/remove requests are ignored, as the JS SDK does,
 * so that a re-listen never mixes old and new answers.
 *
 * Collection paths: "employees" and "shops/s1/items" listen to one collection; a pattern such as
 * "users/ * /orders" (without the spaces) listens to the collection group "orders" and keeps only
 * documents whose names match the pattern.
 *
 * Ownership: listen_state owns its targets (paths, resume tokens). Callbacks get borrowed
 * pointers valid for the call only; an upserted fsdoc is the owner's to keep (it must release it).
 */
#ifndef FIRESYNC_LISTEN_H
#define FIRESYNC_LISTEN_H

#include "common/err.h"
#include "firestore/json.h"
#include "firestore/value.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct listen_state listen_state;

struct listen_callbacks {
    /* The owner already applied this name at exactly this update time: it marks it seen and
     * returns true, and the document is not decoded. `name` is the full resource name. */
    bool (*seen)(void *ud, int target, const char *name, size_t len, struct fs_time update_time);
    /* A new version of a document; `doc` is moved to the owner (fsdoc_release when done). A
     * negative return stops handling the message and is returned by listen_handle(). */
    int (*upsert)(void *ud, int target, struct fsdoc *doc);
    /* The document left the target at read_time (deleted, or no longer matching). */
    int (*remove)(void *ud, int target, const char *name, size_t len, struct fs_time read_time);
    /* The server starts re-sending the whole set of the target. */
    void (*reset)(void *ud, int target);
    /* The target's set is complete as of read_time; resume_token (base64) resumes after it. */
    int (*consistent)(void *ud, int target, const char *resume_token, struct fs_time read_time,
                      bool after_reset);
    /* How many live documents the owner holds for the target (for existence filters). */
    size_t (*live_count)(void *ud, int target);
    /* The stream cannot prove the target complete (see above); `code` is the gRPC code or 0. */
    void (*target_error)(void *ud, int target, int code, const char *message);
    /* Sends one ListenRequest (JSON) on the forward channel. */
    int (*send)(void *ud, const char *json);
    /* A new version of a document that cannot be decoded (a duplicate field, a second kind key,
     * nesting past FSVAL_MAX_DEPTH, a value out of range: only a misbehaving server sends one).
     * `raw` is the document's JSON text (rawlen bytes), `why` the decoder's reason, which names
     * the field. The owner dead-letters it and the stream goes on. May be NULL: the message is
     * then refused (listen_handle fails) and the transport opens a new session. */
    int (*undecodable)(void *ud, int target, const char *name, size_t len,
                       struct fs_time update_time, const char *raw, size_t rawlen,
                       const char *why);
};

/* database: "projects/P/databases/D". */
listen_state *listen_new(const char *database, const struct listen_callbacks *cb, void *ud);
void listen_free(listen_state *ls);

/* Routes `send` to fn(send_ud, json) instead of cb->send(ud, json): for an owner whose
 * transport is not the object that receives the document events. */
void listen_set_send(listen_state *ls, int (*fn)(void *send_ud, const char *json), void *send_ud);

/* Adds a target for a collection path (see above) resuming from resume_token (base64, NULL or
 * "" for a full initial load). Returns the target's index (0, 1, ...) or FS_EINVAL for a path
 * that is not a collection path. Nothing is sent until listen_connect(). */
int listen_add_target(listen_state *ls, const char *path, const char *resume_token, fserr *e);

/* Sends addTarget for every target, with its latest resume token: call it before each new
 * session's handshake (the transport's on_connect). Pending requests from the old session are
 * forgotten. */
int listen_connect(listen_state *ls, fserr *e);

/* Handles one ListenResponse object (token tok of d). Unknown members are ignored for forward
 * compatibility; a malformed message is FS_EPROTO with what and where. */
int listen_handle(listen_state *ls, const json_doc *d, int tok, fserr *e);

/* Re-listens target without a resume token (removeTarget, then addTarget): a full initial load
 * that counts as a reset. Used after an existence-filter mismatch and on demand. */
int listen_relisten(listen_state *ls, int target, fserr *e);

/* Adds the target again without a resume token, after the server removed it (REMOVE with a
 * cause): a full reload that counts as a reset. */
int listen_readd(listen_state *ls, int target, fserr *e);

/* True when name (full resource name) belongs to target: its collection, or its pattern. */
bool listen_target_matches(const listen_state *ls, int target, const char *name, size_t len);

/* Introspection for status and tests. */
int listen_target_count(const listen_state *ls);
const char *listen_target_path(const listen_state *ls, int target);
const char *listen_resume_token(const listen_state *ls, int target); /* "" when none */
bool listen_target_current(const listen_state *ls, int target);
int listen_target_id(const listen_state *ls, int target); /* the protocol's targetId */

#endif
