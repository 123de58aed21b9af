/*
 * err.h - firesync's one error vocabulary.
 *
 * Every function that can fail returns 0 or one of the negative FS_E* codes below and, when the
 * caller passes a non-NULL `fserr`, fills it with the code and a human message (like curl's
 * CURLOPT_ERRORBUFFER). The table is an X-macro, so the enum, the names, the default messages and
 * the "transient" flag cannot drift apart (libuv's UV_ERRNO_MAP does the same).
 *
 * Transient errors are worth retrying with backoff (a lost MySQL connection, an HTTP timeout);
 * permanent ones are not (a value that does not fit its column goes to the dead letter, a bad
 * config refuses to start). Messages never contain secrets: callers name files and keys, never
 * their contents.
 */
#ifndef FIRESYNC_ERR_H
#define FIRESYNC_ERR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/*      name            default message                              transient */
#define FSERR_MAP(X)                                                                   \
    X(NOMEM, "out of memory", false)                                                   \
    X(INVAL, "invalid argument", false)                                                \
    X(IO, "input/output error", true)                                                  \
    X(NOTFOUND, "not found", false)                                                    \
    X(EXISTS, "already exists", false)                                                 \
    X(PERM, "permission denied", false)                                                \
    X(CONFIG, "invalid configuration", false)                                          \
    X(PARSE, "malformed input", false)                                                 \
    X(TOOBIG, "input larger than allowed", false)                                      \
    X(TYPE, "value of the wrong type", false)                                          \
    X(RANGE, "value out of range", false)                                              \
    X(UTF8, "invalid UTF-8", false)                                                    \
    X(TIMEOUT, "timed out", true)                                                      \
    X(AGAIN, "temporarily unavailable, try again", true)                               \
    X(CANCELED, "canceled", false)                                                     \
    X(HTTP, "HTTP request failed", true)                                               \
    X(HTTPSTATUS, "HTTP error status", false)                                          \
    X(PROTO, "protocol violation by the peer", true)                                   \
    X(SESSION, "WebChannel session is dead", true)                                     \
    X(AUTH, "authentication failed", false)                                            \
    X(TLS, "TLS failure", false)                                                       \
    X(MYSQL_REFUSED, "MySQL server unreachable", true)                                 \
    X(MYSQL_AUTH, "MySQL access denied", false)                                        \
    X(MYSQL_NODB, "MySQL database does not exist", false)                              \
    X(MYSQL_LOST, "MySQL connection lost", true)                                       \
    X(MYSQL_DEADLOCK, "MySQL deadlock or lock wait timeout", true)                     \
    X(MYSQL_READONLY, "MySQL server is read-only", true)                               \
    X(MYSQL_SCHEMA, "MySQL schema does not match the mapping", false)                  \
    X(MYSQL_PRIV, "MySQL privilege missing", false)                                    \
    X(MYSQL, "MySQL error", false)                                                     \
    X(INTERNAL, "internal error", false)

enum fserr_code {
    FS_OK = 0,
#define FSERR_ENUM(name, msg, transient) FS_E##name,
    FS_EFIRST_ = -1000, /* codes run from -999 upwards; see fserr_index() */
    FSERR_MAP(FSERR_ENUM)
#undef FSERR_ENUM
        FS_ELAST_
};

/* What a failing call leaves for its caller. `code` is the returned code, `msg` a full sentence
 * naming what and where ("config.toml:3:7: unknown key 'prot'"). Embed it; it owns no memory. */
typedef struct fserr {
    int code;
    char msg[512];
} fserr;

/* Fills `e` (when non-NULL) with `code` and the formatted message; returns `code`, so that
 * `return fserr_set(e, FS_ECONFIG, "...")` reads naturally. */
int fserr_set(fserr *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fserr_vset(fserr *e, int code, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

/* Prepends "prefix: " to the message already in `e`; returns e->code (or FS_EINTERNAL if e is
 * NULL). Used to add context while an error travels up ("mysql: " + "connection refused"). */
int fserr_prefix(fserr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets `e` to "no error". */
void fserr_clear(fserr *e);

/* "FS_ECONFIG" for FS_ECONFIG, "FS_OK" for 0, "FS_E?" for anything else. Never NULL. */
const char *fserr_name(int code);

/* The table's default message for `code`. Never NULL. */
const char *fserr_str(int code);

/* True when `code` is worth retrying with backoff. */
bool fserr_transient(int code);

/* Number of codes in the table (for tests that walk it). */
size_t fserr_count(void);

/* The code at position i of the table, 0 <= i < fserr_count(). */
int fserr_at(size_t i);

#endif
