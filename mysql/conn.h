/*
 * conn.h - the agent's MySQL connection: open it from [mysql], classify failures, and retry
 * with bounded exponential backoff and jitter (prefix sink_conn_ / sink_backoff_).
 *
 * Only the sink thread talks to MySQL, so the blocking calls here never run on the event loop.
 * Every session is set up the same way: utf8mb4, UTC time zone, strict SQL mode, read and write
 * timeouts, so that a value is stored exactly or refused, never silently truncated.
 *
 * Errors are mapped onto err.h codes: refused / lost / deadlock / read-only are transient and
 * retried; access denied, unknown database, missing table or privilege are permanent and
 * reported with the server's words (never the password).
 *
 * Ownership: sink_conn_open() returns a MYSQL handle owned by the caller (mysql_close()).
 */
#ifndef FIRESYNC_MYSQL_CONN_H
#define FIRESYNC_MYSQL_CONN_H

#include "agent/config.h"
#include "common/err.h"

#include <mysql.h>
#include <stdatomic.h>
#include <stdint.h>

/* One connection attempt. On failure *out is NULL and `e` names host/socket and reason. */
int sink_conn_open(const struct cfg_mysql *cfg, MYSQL **out, fserr *e);

/* Opens a connection, retrying transient failures with backoff until `max_wait_ms` has passed
 * (0: retry forever) or *stop becomes true (FS_ECANCELED). Permanent failures return at once. */
int sink_conn_open_retry(const struct cfg_mysql *cfg, int64_t max_wait_ms,
                         const atomic_bool *stop, MYSQL **out, fserr *e);

/* The err.h code for the last error on `m` (0 if none), with the server's message in `e`. */
int sink_conn_error(MYSQL *m, const char *what, fserr *e);
/* The err.h code for a client/server error number. */
int sink_conn_classify(unsigned int mysql_errno_value);

/* Reads the password from `path` (first line, without its line end); refuses a file readable
 * by group or others. The result is owned by the caller. */
int sink_conn_read_password(const char *path, char **out, fserr *e);

/* Exponential backoff with full jitter: each delay is uniform in [min, cap], cap doubling from
 * `min_ms` up to `max_ms`; sink_backoff_reset() after a success. */
struct sink_backoff {
    int64_t min_ms, max_ms, cap_ms;
    uint64_t rng;
};
void sink_backoff_init(struct sink_backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed);
int64_t sink_backoff_next(struct sink_backoff *b);
void sink_backoff_reset(struct sink_backoff *b);

#endif
