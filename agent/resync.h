/*
 * resync.h - the full resync: the safety net under the stream (prefix resync_).
 *
 * When: every resync.interval, counted from the end of the last completed resync (kept in the
 * checkpoint table across restarts; before the first one, from the agent's start); on demand
 * (`firesync resync`, the control socket); and at once for a collection the stream cannot prove
 * complete (resume token refused, REMOVE with a cause, an existence filter a re-listen did not
 * settle) or when the stream has been down past resync.fallback_after. A run interrupted by a
 * stop or a crash continues after its last committed page at the next start, with a new read
 * time. One run per collection at a time; automatic runs only when resync.enabled.
 *
 * How: the collection is read as one snapshot with REST runQuery pages (firestore/rest.h),
 * ordered by __name__, every page at the read time of the first, at most
 * resync.pages_per_second pages per second over all collections and resync.page_size documents
 * each. Each page is converted with the diff's own conversion and handed to the sink thread as
 * a SINK_OP_RESYNC_PAGE event (mysql/page.h), which compares it with what MySQL really holds,
 * writes only the differences (source "resync", guarded so that a newer change is never
 * overwritten), soft-deletes the rows the snapshot no longer has, and saves the cursor in the
 * same transaction. What MySQL then holds refreshes the applied index. At most one page is in
 * the sink and one being read, so memory is bounded by the page size.
 *
 * Visible: each collection's struct status_resync (state, phase, documents read, differences,
 * fixed, soft deletes, reads billed, duration, result; resync_status()) is kept up to date; the
 * last result stays until the next run ends, across restarts too (the checkpoint table keeps
 * it).
 *
 * Everything runs on the agent's loop (the sink thread only hands pages back through a
 * uv_async). Ownership: the resync borrows the loop, config, HTTP client, diff and sink;
 * resync_stop() before the HTTP client closes, resync_close() before the loop's last run,
 * resync_free() after it.
 */
#ifndef FIRESYNC_RESYNC_H
#define FIRESYNC_RESYNC_H

#include "agent/config.h"
#include "agent/status.h"
#include "common/buf.h"
#include "common/err.h"
#include "diff/diff.h"
#include "firestore/http.h"
#include "mysql/sink.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct resync;

struct resync_hooks {
    /* Appends the Authorization header value ("Bearer ..."); FS_EAGAIN while no token is ready.
     * NULL: requests carry none. */
    int (*auth_header)(void *ud, buf *out);
    /* True when the full name belongs to collection coll (patterns); NULL: every document of
     * the query does. */
    bool (*matches)(void *ud, int coll, const char *name, size_t len);
    /* A run started, advanced or ended (refresh the status file); may be NULL. */
    void (*changed)(void *ud);
};

struct resync_env {
    uv_loop_t *loop;
    const struct cfg *cfg;
    http_client *http;
    const char *base_url; /* "https://firestore.googleapis.com" or "http://127.0.0.1:8080" */
    const char *database; /* "projects/P/databases/D" */
    struct diff *diff;
    struct sink *sink;
    struct resync_hooks hooks;
    void *ud;
};

/* Reads each collection's resync state from the checkpoint table (blocking: call it at start,
 * before the loop runs) and starts the schedule. */
int resync_new(const struct resync_env *env, struct resync **out, fserr *e);

/* Starts a run of collection coll now. FS_EEXISTS when one is running, FS_EINVAL for a
 * collection that does not exist, FS_ECANCELED while stopping. */
int resync_request(struct resync *r, int coll, const char *why, fserr *e);
/* The stream cannot prove coll complete: a run at once when resync.enabled (logged otherwise). */
void resync_doubt(struct resync *r, int coll, const char *why);
/* The stream went up or down (for resync.fallback_after). */
void resync_stream_state(struct resync *r, bool up);

bool resync_running(const struct resync *r, int coll);
/* Runs of coll that ended (completed or failed) since the agent started. */
uint64_t resync_runs_ended(const struct resync *r, int coll);
const struct status_resync *resync_status(const struct resync *r, int coll);
/* True when some collection's last completed resync is older than twice resync.interval. */
bool resync_overdue(const struct resync *r, int64_t now_us);

/* Cancels the requests and timers (call it before the HTTP client closes); a page already in
 * the sink still commits, so the next start resumes after it. */
void resync_stop(struct resync *r);
/* Closes the uv handles (after the sink thread stopped); the loop finishes closing them. */
void resync_close(struct resync *r);
/* Frees everything; the handles must be closed (the loop ran after resync_close). NULL is fine. */
void resync_free(struct resync *r);

#endif
