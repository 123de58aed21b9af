/*
 * page.h - one page of a full resync against MySQL (prefix sink_page_).
 *
 * The resync (agent/resync.c) reads a collection from Firestore as one snapshot, page by page in
 * __name__ order, converts each document to cells exactly as the diff does, and pushes the page
 * onto the sink queue as a SINK_OP_RESYNC_PAGE event. The sink thread applies it in the batch's
 * transaction, after the batch's stream rows (so it sees them):
 *
 *   1. it reads, in key order and a chunk at a time (SELECT ... FOR UPDATE), the rows of the
 *      page's fresh key range (lo, hi], and the rows of the page's keys that lie outside it or
 *      that an earlier page left undecided (recheck);
 *   2. each document is compared cell by cell with its row, type-aware (DECIMAL and DATETIME by
 *      value, DOUBLE numerically, JSON semantically, since MySQL 8 normalises it), together with
 *      its create time and stored hashes; an equal row costs nothing, even when its
 *      fs_update_time is older (only unmapped fields changed, as the stream leaves it);
 *   3. a differing, missing or wrongly deleted row is written whole with the resync guard: only
 *      where the document's update time is not older than the row's (equal is allowed: a row
 *      changed by hand keeps its update time) and the row's tombstone, if any, is not newer than
 *      the snapshot's read time;
 *   4. a live row of the range that is not in the page and whose fs_update_time is older than
 *      the read time is soft-deleted at the read time; a row touched after it is left alone;
 *   5. the resync state (cursor, read time, generation; at the end the result and finish time)
 *      goes to the checkpoint table in the same transaction, so that a restart resumes after
 *      the last committed page; with history, each fix is a change row of source "resync".
 *
 * Key order. MySQL orders VARBINARY keys by bytes; Firestore orders names segment by segment,
 * with reserved numeric ids first (rest_path_cmp). Where they disagree, a row of the fresh range
 * may belong to a document of a later page: such a row is never deleted on the spot. If it sorts
 * after the page's last name in Firestore's order it is handed back as `deferred`, and the resync
 * sends it again (recheck) once a page has passed it; past max_deferred such rows are only
 * counted (undecided) and left as they are. Rows at or before `settled` (the cursor a resumed run
 * starts after) were decided before the restart and are skipped.
 *
 * Ownership: the page owns every key, cell and hash in it. After the commit the sink thread
 * hands the page to done(), which takes it (sink_page_free); a page dropped at shutdown is freed
 * with its event.
 */
#ifndef FIRESYNC_MYSQL_PAGE_H
#define FIRESYNC_MYSQL_PAGE_H

#include "agent/config.h"
#include "common/err.h"
#include "mysql/sink.h"

#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the page did with a document's row (sink_page_doc.outcome). */
enum sink_page_outcome {
    SINK_PAGE_KEEP = 0, /* left alone: the row is newer, or the document could not be compared */
    SINK_PAGE_EQUAL,    /* the row holds the document already */
    SINK_PAGE_WRITTEN,  /* the row was written (inserted, corrected or revived) */
    SINK_PAGE_REFUSED,  /* MySQL refused the row's values; left as it was */
};

struct sink_page_key {
    char *p; /* owned; NULL: none (an unbounded end, an absent bound) */
    size_t n;
};

struct sink_page_doc {
    struct sink_page_key key;     /* row key */
    int64_t create_us, update_us; /* the document's times */
    struct sink_cell *cells;      /* sink_ncells() cells; NULL: in the snapshot but not mappable
                                     (a dead letter): its row is neither compared nor deleted */
    uint64_t *hashes;             /* as many hashes (stored in fs_hashes) */
    size_t ncells;                /* cells and hashes */
    uint8_t outcome;              /* enum sink_page_outcome, set by the sink */
};

/* Counts of a run or of one page. */
struct sink_page_totals {
    uint64_t docs_read;   /* documents of the snapshot read so far */
    uint64_t billed;      /* Firestore reads billed */
    uint64_t differences; /* rows that differed from the snapshot (deletes included) */
    uint64_t fixed;       /* rows written: inserted + updated + soft_deleted */
    uint64_t inserted, updated, soft_deleted;
    uint64_t refused;   /* rows MySQL refused, documents that could not be compared */
    uint64_t undecided; /* rows whose deletion could not be decided (key order, see above) */
};

struct sink_page {
    int coll;
    int64_t read_us;               /* the snapshot's read time */
    struct sink_page_key lo, hi;   /* the fresh key range (lo, hi]; NULL ends are open */
    struct sink_page_key f_last;   /* the page's last name (as a key) in Firestore's order;
                                      NULL on the run's last page */
    struct sink_page_key settled;  /* rows at or before it (Firestore's order) are decided */
    struct sink_page_key *recheck; /* keys left undecided by earlier pages, now decidable */
    size_t nrecheck;
    size_t max_deferred; /* at most this many keys handed back in `deferred` */
    struct sink_page_doc *docs;
    size_t ndocs;
    /* resync state for the checkpoint table */
    int64_t generation, started_us;
    struct sink_page_key cursor; /* path after which a restart resumes; NULL: the run ends here */
    struct sink_page_totals before; /* the run's totals before this page (for the result) */
    /* filled by the sink thread; reset at each attempt */
    struct sink_page_totals got;
    struct sink_page_key *deleted; /* keys soft-deleted at read_us */
    size_t ndeleted;
    struct sink_page_key *deferred; /* keys a later page may still hold */
    size_t ndeferred;
    int64_t finished_us; /* the run's last page: when it committed */
    /* called on the sink thread once the page committed; takes the page */
    void (*done)(void *ud, struct sink_page *pg);
    void *ud;
};

struct sink_page *sink_page_new(void);
void sink_page_free(struct sink_page *pg); /* accepts NULL */
/* Sets k to a copy of the n bytes at p (p NULL: none). */
void sink_page_key_set(struct sink_page_key *k, const char *p, size_t n);

/* What the sink thread lends a page for one attempt. */
struct sink_page_ctx {
    MYSQL *m;
    const struct cfg *cfg;
    const char *now;     /* the batch's time, 'YYYY-MM-DD HH:MM:SS.ffffff' */
    size_t stmt_max;     /* bytes per statement */
    bool single;         /* one row per statement; a refused row is skipped */
    unsigned int errnum; /* out: the server's error number of a failed statement */
    /* true when err (a server error number) concerns one row's values, not the sink */
    bool (*data_error)(void *ud, unsigned int err);
    void *ud;
};

/* Applies pg inside the caller's open transaction (see the header comment). Returns 0, or the
 * classified error of the failed statement (ctx->errnum set) for the sink to roll back and
 * retry. */
int sink_page_apply(struct sink_page_ctx *ctx, struct sink_page *pg, fserr *e);

/* True when MySQL's text for a column of type `type` (enum cfg_coltype; the extra column is
 * CFG_COL_JSON) holds the same value as cell c. */
bool sink_page_cell_equal(int type, const char *mysql, size_t n, bool null,
                          const struct sink_cell *c);

/* "ok: 1000 read (1001 billed), 3 differences, 3 fixed, 1 soft-deleted, 2.1 s" and the like. */
void sink_page_summary(const struct sink_page_totals *t, int64_t duration_ms, char *out, size_t n);

/* The resync state of a target kept in the checkpoint table. */
struct sink_resync_state {
    int64_t generation;
    int64_t started_us, finished_us, read_us; /* 0 when NULL */
    char *cursor;                             /* owned; NULL when no run is in progress */
    size_t cursor_len;
    char *result; /* owned; "" when none */
};
/* Reads it (its own connection, before sink_start or from the loop's startup). */
int sink_page_load_state(const struct cfg *cfg, const char *target, struct sink_resync_state *out,
                         fserr *e);
void sink_page_state_release(struct sink_resync_state *st);

/* Defined in sink.c: a column value as JSON for the change history (see there). */
struct cJSON;
struct cJSON *sink_value_json(int type, const char *p, size_t n, bool null);

#endif
