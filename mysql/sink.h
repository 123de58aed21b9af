/*
 * sink.h - the MySQL sink: one thread that owns the connection and turns row events into the
 * fewest correct writes (prefix sink_).
 *
 * The event loop (diff) pushes events onto a bounded queue; the sink thread takes them in order,
 * groups them into transactions (at most batch_max_rows row events; a batch takes what is queued
 * and waits for more at most batch_max_delay_ms after its first, 0 by default), and commits. Every write is guarded by the document's Firestore update time,
 * so that replays, resyncs and the live stream can interleave in any order and still converge:
 *
 *   upsert:     INSERT ... ON DUPLICATE KEY UPDATE, assigning only the changed columns, and only
 *               where the new update time is newer than the row's fs_update_time and than its
 *               tombstone (fs_delete_time). A missing row is inserted whole.
 *   delete:     soft: deleted_at and fs_delete_time set to the delete's read time, where that is
 *               newer than fs_update_time; a tombstone row is inserted for a row never seen, so
 *               an older create arriving later cannot revive it.
 *   checkpoint: the target's resume token and read time, in the same transaction as the rows
 *               that precede it in the queue (design invariant 2).
 *   deadletter: a document that cannot be mapped, with the reason; the stream goes on.
 *
 * Transient MySQL errors (lost connection, deadlock, read-only) reconnect with backoff and replay
 * the open batch; the guards make the replay harmless. Permanent errors on the whole sink
 * (table dropped, privilege revoked) stop applying, keep the queue (the stream then pauses),
 * and report the reason through sink_health().
 *
 * Tables: see sink_schema_sql() and README ("MySQL tables").
 *
 * Ownership: the sink owns pushed events until it frees them (sink_event_free) once committed:
 * sink_push() frees a few committed ones on the caller's thread, the sink thread the rest.
 * `struct sink` holds a borrowed pointer to the config, which must outlive it.
 */
#ifndef FIRESYNC_MYSQL_SINK_H
#define FIRESYNC_MYSQL_SINK_H

#include "agent/config.h"
#include "common/buf.h"
#include "common/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sink_source { SINK_SRC_STREAM, SINK_SRC_RESYNC, SINK_SRC_SIMULATED };
enum sink_op {
    SINK_OP_UPSERT,
    SINK_OP_DELETE,
    SINK_OP_CHECKPOINT,
    SINK_OP_DEADLETTER,
    SINK_OP_RESYNC_PAGE, /* one page of a full resync: compared and fixed in MySQL (page.h) */
};

struct sink_page; /* mysql/page.h */

/* One column value, already converted for its SQL type (diff/convert.h decides). */
enum sink_cell_kind {
    SINK_CELL_NULL,
    SINK_CELL_NUM, /* a numeric literal written as is: "-42", "1000.50", "1.5e+300", "1" */
    SINK_CELL_STR, /* text (UTF-8) to escape and quote: VARCHAR, TEXT, JSON, DATETIME, DATE */
    SINK_CELL_BIN, /* bytes to write as a hex literal: VARBINARY */
};

struct sink_cell {
    enum sink_cell_kind kind;
    char *p; /* owned; NULL for SINK_CELL_NULL */
    size_t len;
};

struct sink_event {
    enum sink_op op;
    enum sink_source source;
    int coll;     /* index of the collection in cfg->collections (not for DEADLETTER of
                     unknown docs: -1 allowed there) */
    char *key;    /* row key: document id or path relative to .../documents (owned) */
    size_t keylen;
    /* UPSERT */
    int64_t create_us, update_us; /* Firestore times, microseconds since the epoch (UTC) */
    bool create;                  /* the document was not live in the applied index */
    uint64_t changed;             /* bit i: column i changed; bit ncolumns: the extra column */
    struct sink_cell *cells;      /* ncolumns cells, then the extra column's when configured */
    uint64_t *hashes;             /* as many hashes as cells, stored in fs_hashes */
    size_t ncells;                /* cells and hashes */
    /* DELETE */
    int64_t delete_us; /* the delete's read time */
    /* CHECKPOINT */
    char *token;     /* base64 resume token */
    int64_t read_us; /* read time of the consistent point */
    /* DEADLETTER */
    char *doc_name; /* full resource name */
    char *reason;   /* what and where: "fields.salary: a string does not fit DECIMAL(12,2)" */
    char *raw;      /* the document as JSON (may be large), or NULL */
    /* RESYNC_PAGE */
    struct sink_page *page; /* owned; handed to page->done once it committed */
    struct sink_event *next; /* queue link, owned by the queue */
};

struct sink_event *sink_event_new(enum sink_op op, int coll);
void sink_event_free(struct sink_event *ev); /* accepts NULL; frees cells, hashes, strings */

/* Counters, updated by the sink thread when a batch commits, read by anyone. From the server's
 * own row counts: created = rows inserted; updated = existing rows an upsert changed (a revived
 * tombstone counts here); deleted = tombstones written; unchanged = row events the guard
 * refused (stale versions, replays); dead_letters = dead-letter rows written. */
struct sink_stats {
    atomic_uint_fast64_t created, updated, deleted, unchanged, dead_letters;
    atomic_uint_fast64_t batches, retries; /* committed batches; failed attempts replayed */
    atomic_uint_fast64_t queued; /* events waiting: pushed and not yet committed */
    /* events pushed so far, and committed so far: the queue is in order, so the first
     * `committed` events pushed are durable (the agent times each event with these) */
    atomic_uint_fast64_t pushed, committed;
};

enum sink_health { SINK_OK, SINK_RETRYING, SINK_FAILED };

struct sink;

/* A sink for cfg (mysql section and collections). Nothing runs until sink_start(). */
struct sink *sink_new(const struct cfg *cfg);
/* Connects (retrying transient failures for up to max_wait_ms; 0 = forever), creates missing
 * tables when mysql.create_tables is set, checks every mapped table's columns, then starts the
 * thread. A table that lacks a mapped column or has an incompatible type is FS_EMYSQL_SCHEMA
 * naming table and column. */
int sink_start(struct sink *s, int64_t max_wait_ms, fserr *e);
/* Queues ev (ownership moves to the sink) and frees up to two committed events. Never blocks;
 * returns the queue length after the push, so the caller can pause the stream when it reaches
 * queue_max_events. */
size_t sink_push(struct sink *s, struct sink_event *ev);
/* Called on the sink thread after each commit or state change: lets the loop resume a paused
 * stream (uv_async_send) or refresh the status. Set before sink_start(). */
void sink_set_notify(struct sink *s, void (*fn)(void *ud), void *ud);
/* After a permanent failure (SINK_FAILED) the sink tries again every `ms` (default 30 s):
 * reconnects, checks the tables, replays the batch it holds. Set before sink_start(). */
void sink_set_retry_interval(struct sink *s, int64_t ms);
/* Commits what is queued now and returns when it is durable (or the sink failed). */
int sink_flush(struct sink *s, fserr *e);
/* Finishes the open batch, commits, stops the thread, closes the connection. Events still queued
 * are written first while MySQL answers; when it does not (or the sink has failed) they are
 * dropped: they follow the last checkpoint, so the next start replays them. */
void sink_stop(struct sink *s);
void sink_free(struct sink *s); /* accepts NULL; stops first */

const struct sink_stats *sink_stats(const struct sink *s);
/* Health and, when not SINK_OK, the reason (copied into why). */
enum sink_health sink_health(const struct sink *s, char *why, size_t n);

/* The DDL for every mapped table and the bookkeeping tables (CREATE TABLE IF NOT EXISTS ...;
 * the changes table only when a collection keeps history). FS_ECONFIG for a name that is not
 * an identifier or clashes with a bookkeeping column. */
int sink_schema_sql(const struct cfg *cfg, buf *out);

/* One applied-index row read back at start: key, update time, tombstone, stored hashes. */
struct sink_index_row {
    const char *key;
    size_t keylen;
    int64_t update_us; /* 0 when the row is only a tombstone */
    int64_t delete_us; /* 0 when live */
    const uint64_t *hashes;
    size_t nhashes;
};
/* Reads every row of collection coll's table (key order, a page at a time) and calls fn for
 * each; used to rebuild the applied index at start. Runs on the caller's thread with its own
 * connection, before sink_start(). */
int sink_load_index(const struct cfg *cfg, int coll,
                    int (*fn)(void *ud, const struct sink_index_row *row), void *ud, fserr *e);

/* The checkpoint of a target (collection path), or "" with read_us 0 when none. */
int sink_load_checkpoint(const struct cfg *cfg, const char *target, char **token,
                         int64_t *read_us, fserr *e);

#endif
