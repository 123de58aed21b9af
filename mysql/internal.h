/*
 * internal.h - what the files of mysql/ share and nobody else uses (prefix sink_).
 *
 * schema.c owns the table layouts: the DDL, the check of existing tables at start, and reading
 * rows back (applied index, checkpoints). sink.c owns the thread, the queue and the writes. Both
 * need the same column sizes, the same time format and the same validation of numeric
 * literals, so those live here. The unit tests include this header too.
 */
#ifndef FIRESYNC_MYSQL_INTERNAL_H
#define FIRESYNC_MYSQL_INTERNAL_H

#include "agent/config.h"
#include "common/buf.h"
#include "common/err.h"
#include "mysql/sink.h"

#include <mysql.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Column sizes of the table layouts (see schema.c for the reasons). */
#define SINK_KEY_ID_LEN 1500   /* a Firestore document id is at most 1,500 bytes */
#define SINK_KEY_PATH_LEN 3072 /* InnoDB's largest index key (DYNAMIC rows, 16 KiB pages) */
#define SINK_HASHES_LEN 520    /* 8 bytes per cell, 65 cells */
#define SINK_MAX_CELLS 64      /* sink_event.changed is a 64-bit mask */
#define SINK_TARGET_LEN 255    /* checkpoint target and changes/dead-letter collection */
#define SINK_TOKEN_LEN 4096    /* resume token, base64 */
#define SINK_DOCNAME_LEN 6144  /* Firestore's limit on a document name */
#define SINK_REASON_LEN 4000   /* dead-letter reason, bytes (TEXT holds 65,535) */
#define SINK_RAW_LEN 16000000  /* dead-letter raw document, bytes (MEDIUMTEXT: 16 MiB - 1) */
#define SINK_TIME_LEN 27       /* "YYYY-MM-DD HH:MM:SS.ffffff" and its NUL */

/* "id" or "path": the primary-key column of a mapped table. */
const char *sink_key_column(const struct cfg_collection *cl);
/* Size in bytes of that key column. */
int sink_key_len(const struct cfg_collection *cl);
/* Cells of a row of cl: its columns, plus one for the extra column. */
size_t sink_ncells(const struct cfg_collection *cl);
/* Some collection keeps history (the changes table exists). */
bool sink_history_used(const struct cfg *cfg);

/* Microseconds since the epoch (UTC) as 'YYYY-MM-DD HH:MM:SS.ffffff' (no quotes) into out.
 * FS_ERANGE outside years 1..9999 (out is then ""). */
int sink_time_format(int64_t us, char out[SINK_TIME_LEN]);
/* The inverse, for what MySQL returns for DATETIME(6) (fraction optional, 0 to 6 digits). */
int sink_time_parse(const char *s, size_t n, int64_t *us);

/* A plain numeric literal that is safe to write unquoted into SQL: optional sign, digits with
 * at most one '.', optional exponent (e or E, optional sign, digits); at most 64 bytes. */
bool sink_num_ok(const char *p, size_t n);

/* Checks every identifier, size and name clash of cfg's mapping that the tables depend on;
 * FS_ECONFIG naming the culprit. */
int sink_schema_validate(const struct cfg *cfg, fserr *e);

/* At start: creates the missing tables when mysql.create_tables, else refuses to start naming
 * the first missing one; then checks every table's columns against the mapping. Leaves no
 * transaction open. */
int sink_schema_ensure(const struct cfg *cfg, MYSQL *m, fserr *e);

/* Appends `name` quoted with backquotes (name must be a validated identifier). */
int sink_add_ident(buf *b, const char *name);
/* Appends the bytes as a hex literal X'..'. */
int sink_add_hex(buf *b, const void *p, size_t n);

/* A scratch buffer for mysql_real_escape_string, owned by the caller (free(p) when done). */
struct sink_esc {
    char *p;
    size_t cap;
};
/* Appends n bytes as a quoted string literal escaped for connection m. */
int sink_add_str(MYSQL *m, struct sink_esc *esc, buf *b, const char *p, size_t n);
/* Appends one converted cell as an SQL literal: number, quoted string, X'..' or NULL. */
int sink_add_cell(MYSQL *m, struct sink_esc *esc, buf *b, const struct sink_cell *c);
/* Appends n column hashes as the fs_hashes value (8 bytes each, little-endian), or NULL. */
int sink_add_hashes(buf *b, const uint64_t *h, size_t n);

#endif
