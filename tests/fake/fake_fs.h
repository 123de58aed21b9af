/*
 * fake_fs.h - a scriptable fake of Firestore's HTTP surface, for tests of the agent's transport.
 *
 * Google's emulator never sends deltas, documentRemove, existence filters, gsessionid, noops,
 * stop/close/error arrays or error statuses, and it hangs where production fails. This fake plays
 * all of that on demand. It serves, on 127.0.0.1 and an ephemeral port, over plain HTTP/1.1
 * (request line, headers, Content-Length bodies, keep-alive, chunked replies written over time):
 *
 *   /google.firestore.v1.Firestore/Listen/channel   WebChannel VER=8 (docs/webchannel.md 1, 3, 4):
 *       POST without SID      handshake; answers <len>\n[[0,["c",SID,"",8,12,30000]]] (no
 *                             30000 without CVER; 200 empty without VER or a numeric RID;
 *                             never answered without `database`, as the emulator)
 *       POST with SID         forward channel; maps delivered in ofs order; answers [1|0,last,7]
 *       GET RID=rpc           back channel; re-sends every unacknowledged array > AID
 *       GET TYPE=terminate    ends the session; later requests with its SID get 400
 *   POST /token (any path ending in /token)   OAuth2 jwt-bearer grant
 *   GET  /computeMetadata/v1/instance/service-accounts/default/token   needs Metadata-Flavor
 *   POST /v1/projects/P/databases/D/documents[/...]:runQuery           canned reply
 *
 * WebChannel model. A session holds a queue of arrays. Array 0 is the handshake's "c" array;
 * fake_fs_push() appends the next id to the newest live session (or, when none lives, holds the
 * data until the next handshake, which assigns the ids then). An array stays queued until an AID
 * (on a GET or a forward POST) acknowledges it, so every new GET re-sends all arrays > its AID,
 * in one chunk, like the emulator. While a GET is open, each push is written at once as its own
 * chunk. A GET with CI=1 ends after the first write that holds a non-noop array; a CI=0 GET ends
 * at the first write after its start + the stream hold (45 s by default). A new GET supersedes the
 * open one, which ends cleanly (200 + last zero chunk). A GET that finds nothing to send gets a
 * fresh ["noop"] first (the emulator's habit; fake_fs_set_noop_on_empty_get() turns it off).
 * Chunk lengths count UTF-16 code units. Map ids must be contiguous per session: a repeated id is
 * dropped (FAKE_FS_DUP_MAPS), one after a gap is held until the gap fills. Requests naming an
 * unknown, terminated or killed SID get 400 with a body containing "Unknown SID", as production
 * (the emulator's body is empty; fake_fs_fail_next() can imitate that).
 *
 * Threads. The server runs its own uv loop on its own thread. Every function here may be called
 * from any other thread (the test's); they take the fake's mutex and wake the loop with a
 * uv_async. Waits use a condition variable, so tests never sleep blindly. Strings returned as
 * `char *` are copies the caller frees with free(); NULL means "none".
 *
 * Lifetime: fake_fs_start() returns once the socket listens; fake_fs_free() (NULL is fine) stops
 * the loop, closes every connection and handle, joins the thread and frees everything.
 */
#ifndef FIRESYNC_FAKE_FS_H
#define FIRESYNC_FAKE_FS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fake_fs fake_fs;

#define FAKE_FS_CHANNEL_PATH "/google.firestore.v1.Firestore/Listen/channel"
#define FAKE_FS_METADATA_PATH "/computeMetadata/v1/instance/service-accounts/default/token"

/* The kinds of request the fake tells apart (for fail_next, counters and recorded requests). */
enum fake_fs_req {
    FAKE_FS_REQ_HANDSHAKE, /* POST .../channel without SID */
    FAKE_FS_REQ_GET,       /* GET .../channel, back channel (anything but TYPE=terminate) */
    FAKE_FS_REQ_POST,      /* POST .../channel with SID, forward channel */
    FAKE_FS_REQ_TERMINATE, /* GET .../channel?...&TYPE=terminate */
    FAKE_FS_REQ_TOKEN,     /* POST .../token */
    FAKE_FS_REQ_METADATA,  /* GET FAKE_FS_METADATA_PATH */
    FAKE_FS_REQ_RUNQUERY,  /* POST /v1/...:runQuery */
    FAKE_FS_REQ_OTHER,     /* anything else: 404 */
    FAKE_FS_REQ_COUNT_
};

/* Special `status` values for fake_fs_fail_next(). */
#define FAKE_FS_HANG (-1)  /* read the request, never answer anything (a hung server) */
#define FAKE_FS_CLOSE (-2) /* close the connection without answering */
/* answer 200 chunked headers, then never a byte; a stalled GET is not the session's back
 * channel, so pushes wait for the next GET */
#define FAKE_FS_STALL (-3)

/* Counters and values a test can read or wait for. The first FAKE_FS_REQ_COUNT_ entries count
 * the requests of each kind received (failed, rejected and hanging ones included). */
enum fake_fs_stat {
    FAKE_FS_HANDSHAKES = FAKE_FS_REQ_HANDSHAKE,
    FAKE_FS_GETS = FAKE_FS_REQ_GET,
    FAKE_FS_POSTS = FAKE_FS_REQ_POST,
    FAKE_FS_TERMINATES = FAKE_FS_REQ_TERMINATE,
    FAKE_FS_TOKENS = FAKE_FS_REQ_TOKEN,
    FAKE_FS_METADATAS = FAKE_FS_REQ_METADATA,
    FAKE_FS_RUNQUERIES = FAKE_FS_REQ_RUNQUERY,
    FAKE_FS_OTHERS = FAKE_FS_REQ_OTHER,
    FAKE_FS_MAPS = FAKE_FS_REQ_COUNT_, /* maps delivered (all sessions, in delivery order) */
    FAKE_FS_DUP_MAPS,                  /* maps dropped because their id was already delivered */
    FAKE_FS_LAST_AID,                  /* AID of the last GET or forward POST; -1 before any */
    FAKE_FS_LAST_ARRAY,                /* last array id assigned in the newest session */
    FAKE_FS_GET_OPEN,                  /* back-channel GETs open right now */
    FAKE_FS_GETS_ENDED,                /* back-channel GETs the server ended cleanly */
    FAKE_FS_GETS_CLOSED,               /* back-channel GETs gone for any reason (client too) */
    FAKE_FS_ARRAYS_SENT,               /* arrays written on back channels (re-sends included) */
    FAKE_FS_UNKNOWN_SID,               /* requests answered 400 Unknown SID */
    FAKE_FS_GSID_PRESENT,              /* SID requests carrying the right gsessionid */
    FAKE_FS_GSID_MISSING,              /* SID requests lacking it (or wrong), when one was set */
    FAKE_FS_CONNECTIONS,               /* TCP connections accepted */
    FAKE_FS_SESSIONS,                  /* sessions created by handshakes */
    FAKE_FS_STAT_COUNT_
};

/* ---- lifetime ------------------------------------------------------------------------------ */

/* Starts the server thread; returns once it listens, or NULL (with a message on stderr). */
fake_fs *fake_fs_start(void);
/* Stops the loop, closes every connection and joins the thread; idempotent. Recorded data stays
 * readable until fake_fs_free(). */
void fake_fs_stop(fake_fs *fs);
/* fake_fs_stop(), then frees everything. NULL is fine. */
void fake_fs_free(fake_fs *fs);
int fake_fs_port(const fake_fs *fs);
/* "http://127.0.0.1:<port>", no trailing slash; owned by the fake. */
const char *fake_fs_url(const fake_fs *fs);

/* ---- back-channel scripting ---------------------------------------------------------------- */

/* Appends an array whose data part is `json_data` (e.g. `[{"targetChange":{...}}]`, `["noop"]`,
 * `["stop"]`, `["close"]`, `[{"error":{...}}]`) to the newest live session. Returns its array
 * id, or 0 when no session lives (the data then waits for the next handshake). */
long fake_fs_push(fake_fs *fs, const char *json_data);
long fake_fs_pushf(fake_fs *fs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Like fake_fs_push(), but the array is always written in a WebChannel chunk of its own, sent as
 * two HTTP chunks cut `split_at` bytes into `json_data` (a cut inside a UTF-8 sequence is the
 * point), with the split gap (50 ms by default) between the two writes. */
long fake_fs_push_split(fake_fs *fs, const char *json_data, size_t split_at);
/* Writes `n` arbitrary bytes on the back channel (the open GET, else the next one; with no live
 * session, the first GET of the next), in queue order with the arrays, as two HTTP chunks cut at
 * `split_at` (0 or >= n: one chunk). No framing is added and no id is used: the test writes
 * "<len>\n<payload>" itself, or garbage, or an oversized prefix. Raw bytes are written once,
 * never re-sent, and never end a GET by themselves (push an array, or fake_fs_end_get()). */
void fake_fs_push_raw(fake_fs *fs, const void *bytes, size_t n, size_t split_at);
/* Ends the newest session's open GET cleanly (200 + last chunk). */
void fake_fs_end_get(fake_fs *fs);
/* Cuts the newest session's open GET: closes the connection with no last chunk (truncated). */
void fake_fs_drop_get(fake_fs *fs);
/* The newest live session dies (a server restart): its open GET ends cleanly and every later
 * request naming its SID gets 400 Unknown SID. Later pushes wait for the next handshake. */
void fake_fs_kill_session(fake_fs *fs);
/* Pushes a ["noop"] every interval_ms to the newest session while it has a GET open; 0 stops. */
void fake_fs_noops(fake_fs *fs, unsigned interval_ms);

/* ---- failures and settings ----------------------------------------------------------------- */

/* Queues a failure for the next request of `kind` (each call queues one more, FIFO): `status`
 * is an HTTP status (answered with `body`, NULL for none, Content-Length framed) or FAKE_FS_HANG,
 * FAKE_FS_CLOSE, FAKE_FS_STALL. A failed request changes no session state. */
void fake_fs_fail_next(fake_fs *fs, enum fake_fs_req kind, int status, const char *body);
/* Handshakes that carry X-HTTP-Session-Id=<param> get the response header
 * `X-HTTP-Session-Id: value`, and later requests of that session are checked for <param>=value
 * (FAKE_FS_GSID_PRESENT / _MISSING). NULL turns it off for later handshakes. */
void fake_fs_set_session_header(fake_fs *fs, const char *value);
/* When on, a SID request of such a session without the right gsessionid gets 400 Unknown SID
 * (the request reached a backend that does not know the session). Off by default. */
void fake_fs_require_gsessionid(fake_fs *fs, bool on);
/* Whether a GET that finds nothing to send gets a fresh ["noop"] at once (default true). */
void fake_fs_set_noop_on_empty_get(fake_fs *fs, bool on);
/* How long a CI=0 GET may stream before the next write ends it (default 45000 ms). */
void fake_fs_set_stream_hold(fake_fs *fs, unsigned ms);
/* Cuts every back-channel write into HTTP chunks of at most n bytes, wherever that falls (the
 * emulator uses 4096); 0 (default) writes each WebChannel chunk as one HTTP chunk. */
void fake_fs_set_http_chunk_max(fake_fs *fs, size_t n);
/* Pause between the two pieces of a split write (default 50 ms). */
void fake_fs_set_split_gap(fake_fs *fs, unsigned ms);
/* What the token and metadata endpoints hand out: `access_token` (NULL: "fake-token-<n>", n
 * counting the tokens issued from 1) valid for `expires_in` seconds (default 3600). */
void fake_fs_set_token(fake_fs *fs, const char *access_token, int expires_in);
/* Queues a runQuery reply body (a JSON array). Each runQuery takes the next one; the last one is
 * repeated once the queue runs dry. With none queued the reply is an empty result. */
void fake_fs_push_runquery(fake_fs *fs, const char *json_body);

/* ---- observing ----------------------------------------------------------------------------- */

/* The current value of a stat (-1 for an out-of-range `st`). */
long fake_fs_stat(fake_fs *fs, enum fake_fs_stat st);
/* Waits until stat `st` >= at_least; false if timeout_ms passed first. */
bool fake_fs_wait(fake_fs *fs, enum fake_fs_stat st, long at_least, int timeout_ms);
/* Waits until some delivered map contains `needle`; false on timeout. */
bool fake_fs_wait_map(fake_fs *fs, const char *needle, int timeout_ms);
/* The i-th delivered map (decoded JSON text, all sessions, delivery order), or NULL. */
char *fake_fs_map(fake_fs *fs, size_t i);
/* SID of the newest live session, or NULL. */
char *fake_fs_sid(fake_fs *fs);
/* The decoded URL query parameter `param` of the last request of `kind`, or NULL. */
char *fake_fs_last_query(fake_fs *fs, enum fake_fs_req kind, const char *param);
/* The value of HTTP header `name` (case-insensitive) of the last request of `kind`, or NULL. */
char *fake_fs_last_header(fake_fs *fs, enum fake_fs_req kind, const char *name);
/* The body of the last request of `kind` as received, or NULL. */
char *fake_fs_last_body(fake_fs *fs, enum fake_fs_req kind);
/* The decoded `headers=` field ("Name:Value\r\n...") of the last handshake that opened a session,
 * or NULL when it had none. */
char *fake_fs_handshake_headers(fake_fs *fs);
/* The `assertion` (the JWT) of the last token request that carried one, or NULL. */
char *fake_fs_token_assertion(fake_fs *fs);

#endif
