/*
 * diff.h - the field-level diff: a new document version against what was last applied, giving
 * the fewest row events for the sink (prefix diff_).
 *
 * One `struct diff` serves every configured collection; each has its mapping (parsed field
 * paths, column types) and its applied index (diff/index.h). For each stream or resync event:
 *
 *   upsert(doc): same update time as applied -> nothing; older than applied (or than the
 *                tombstone) -> nothing (a stale replay); otherwise every column is converted
 *                (diff/convert.h) and hashed, and only a version whose cells differ becomes an
 *                UPSERT event naming the changed columns. A value that does not fit its column
 *                becomes a DEADLETTER event instead, and the stream goes on.
 *   remove(name): a live document becomes a DELETE event and a tombstone; an unknown one a
 *                tombstone too (so that an older create cannot revive it later).
 *   reset / consistent(after_reset): documents of the collection not seen since the reset
 *                become DELETE events at the consistent point's read time.
 *
 * The index is updated as events are produced: it describes what has been handed to the sink,
 * which applies everything it is handed (retrying MySQL failures forever, dead-lettering what
 * MySQL refuses), and it is rebuilt from MySQL at start.
 *
 * Ownership: `struct diff` owns its mappings and indexes, and borrows the config, which must
 * outlive it. Events handed to `emit` belong to the callee.
 */
#ifndef FIRESYNC_DIFF_H
#define FIRESYNC_DIFF_H

#include "agent/config.h"
#include "common/err.h"
#include "diff/index.h"
#include "firestore/value.h"
#include "mysql/sink.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct diff;

/* Where events go; a negative return is passed back to the caller. */
typedef int (*diff_emit_fn)(void *ud, struct sink_event *ev);

struct diff_stats {
    uint64_t unchanged; /* versions skipped: same update time, or no mapped column changed */
    uint64_t stale;     /* versions or deletes older than what was applied */
    uint64_t dead_letters;
};

/* database: "projects/P/databases/D". Parses every mapped field path (config validation
 * already checked them, so a failure here is FS_ECONFIG naming the column). */
int diff_new(const struct cfg *cfg, const char *database, diff_emit_fn emit, void *ud,
             struct diff **out, fserr *e);
void diff_free(struct diff *d);

/* The row key of a full document name for collection coll (document id, or the path relative
 * to the database's documents), pointing into name. FS_EINVAL when name is not under the
 * database. */
int diff_key(const struct diff *d, int coll, const char *name, size_t len, const char **key,
             size_t *keylen);

/* True when this exact version is already applied; marks the document seen. */
bool diff_seen(struct diff *d, int coll, const char *name, size_t len, struct fs_time ut);
/* Takes doc (released here). */
int diff_upsert(struct diff *d, int coll, struct fsdoc *doc, enum sink_source src, fserr *e);
/* A version of document `name` that could not be decoded (listen.h's `undecodable`): unless it
 * is stale or already applied, it becomes a DEADLETTER event with `why` as the reason and the
 * document's JSON text `raw` (rawlen bytes), and the index takes its update time, as for a value
 * that does not fit its column. */
int diff_undecodable(struct diff *d, int coll, const char *name, size_t len,
                     struct fs_time update_time, const char *raw, size_t rawlen,
                     const char *why, enum sink_source src, fserr *e);
int diff_remove(struct diff *d, int coll, const char *name, size_t len, struct fs_time read_time,
                enum sink_source src, fserr *e);
void diff_reset(struct diff *d, int coll);
/* Emits a DELETE for every live document of coll not seen since the last reset. */
int diff_sweep(struct diff *d, int coll, struct fs_time read_time, enum sink_source src,
               fserr *e);

/* Loads one row read back from MySQL into coll's index (see sink_load_index). */
int diff_load_row(struct diff *d, int coll, const struct sink_index_row *row);

size_t diff_live(const struct diff *d, int coll);
size_t diff_tracked(const struct diff *d, int coll);
size_t diff_index_memory(const struct diff *d);
const struct diff_stats *diff_stats(const struct diff *d);
/* Number of cells per row of coll: its columns, plus one for the extra column. */
unsigned diff_ncells(const struct diff *d, int coll);

/* ---- for the full resync (agent/resync.c) ---------------------------------------------------
 * The resync compares Firestore's snapshot with MySQL itself, not with the index, but it
 * converts documents exactly as the diff does and refreshes the index from what it found. */

/* doc's cells and hashes for coll (the conversion of diff_upsert). On a value that does not fit
 * its column, returns the error with the reason in e and gives nothing. The caller frees each
 * cell (diff_cell_release), the cells array and the hashes. */
int diff_cells(struct diff *d, int coll, const struct fsdoc *doc, struct sink_cell **cells,
               uint64_t **hashes, size_t *ncells, fserr *e);
/* What the index holds for key: false when nothing, else the time and whether it is live. */
bool diff_peek(const struct diff *d, int coll, const char *key, size_t len, int64_t *time_us,
               bool *live);

/* What MySQL holds for a key after a resync page, and what the index held when the page was
 * pushed (when known). */
struct diff_refresh {
    const char *key;
    size_t keylen;
    bool live;              /* live at time_us (update time), or a tombstone at time_us */
    int64_t time_us;
    const uint64_t *hashes; /* live: one per cell */
    bool seen;              /* the index state at the push is known (seen_*) */
    bool seen_exists, seen_live;
    int64_t seen_us;
};
/* Sets the key's entry to r when the index did not move since the push, or when r is newer
 * than what the stream has put there since (the sink applied both; the newer one stands). The
 * entry's RESET membership is left as it is: a resync says nothing about what the stream sent. */
void diff_refresh(struct diff *d, int coll, const struct diff_refresh *r);

#endif
