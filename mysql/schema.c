/*
 * schema.c - the MySQL tables firesync writes: their layout, the DDL that creates them, the check
 * of existing tables at start, and reading rows back (the applied index, checkpoints).
 *
 * Owns one description per table (struct tspec: columns with kind, size, nullability), from
 * which both the CREATE TABLE text and the compatibility check are derived, so the two cannot
 * drift apart. Every table is InnoDB (the checkpoint must commit with its rows) and states
 * utf8mb4 / utf8mb4_bin itself: a server started without configuration defaults to latin1, and
 * Firestore strings are arbitrary Unicode compared byte for byte.
 *
 * Key sizes. A document id is at most 1,500 bytes: `id` VARBINARY(1500). A path key is
 * VARBINARY(3072), the largest key InnoDB accepts with DYNAMIC rows and 16 KiB pages (MariaDB
 * 10.11 and MySQL 8 defaults; VARBINARY(3073) is refused with "max key length is 3072 bytes").
 * Firestore allows names up to 6 KiB; a longer path does not fit and goes to the dead letter.
 *
 * Also here, shared through internal.h: the DATETIME(6) text format, numeric-literal validation,
 * quoting of identifiers and hex literals. No state; every function works on the caller's
 * connection or opens its own (sink_load_*).
 */
#include "mysql/internal.h"
#include "mysql/sink.h"

#include "common/log.h"
#include "common/xalloc.h"
#include "mysql/conn.h"

#include <ctype.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- small shared helpers ------------------------------------------------------------------ */

/* The classified error of the last call on m; FS_EMYSQL even when the server said nothing. */
static int sql_error(MYSQL *m, const char *what, fserr *e)
{
    int rc = sink_conn_error(m, what, e);
    return rc ? rc : fserr_set(e, FS_EMYSQL, "%s failed", what);
}

const char *sink_key_column(const struct cfg_collection *cl)
{
    return cl->key == CFG_KEY_PATH ? "path" : "id";
}

int sink_key_len(const struct cfg_collection *cl)
{
    return cl->key == CFG_KEY_PATH ? SINK_KEY_PATH_LEN : SINK_KEY_ID_LEN;
}

size_t sink_ncells(const struct cfg_collection *cl)
{
    return cl->ncolumns + (cl->extra_column ? 1 : 0);
}

bool sink_history_used(const struct cfg *cfg)
{
    for (size_t i = 0; i < cfg->ncollections; i++)
        if (cfg->collections[i].history)
            return true;
    return false;
}

#define SECS_MIN (-62135596800LL) /* 0001-01-01 00:00:00 */
#define SECS_MAX 253402300799LL   /* 9999-12-31 23:59:59 */

int sink_time_format(int64_t us, char out[SINK_TIME_LEN])
{
    int64_t secs = us / 1000000, frac = us % 1000000;
    struct tm tm;
    time_t t;

    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    out[0] = '\0';
    if (secs < SECS_MIN || secs > SECS_MAX)
        return FS_ERANGE;
    t = (time_t)secs;
    if (!gmtime_r(&t, &tm))
        return FS_ERANGE;
    snprintf(out, SINK_TIME_LEN, "%04d-%02d-%02d %02d:%02d:%02d.%06d", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
    return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t p = y - 1; /* whole years before y, counted from year 1 */
    int64_t days = 365 * p + p / 4 - p / 100 + p / 400 + before[m - 1] + (d - 1);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    if (leap && m > 2)
        days++;
    return days - 719162; /* days from 0001-01-01 to 1970-01-01 */
}

static int digits(const char *s, size_t n, size_t at, int count, int *out)
{
    int v = 0;
    for (int i = 0; i < count; i++) {
        if (at + (size_t)i >= n || !isdigit((unsigned char)s[at + (size_t)i]))
            return -1;
        v = v * 10 + (s[at + (size_t)i] - '0');
    }
    *out = v;
    return 0;
}

int sink_time_parse(const char *s, size_t n, int64_t *us)
{
    int y, mo, d, h, mi, se, frac = 0, nf = 0;

    if (n < 19 || digits(s, n, 0, 4, &y) || s[4] != '-' || digits(s, n, 5, 2, &mo) || s[7] != '-' ||
        digits(s, n, 8, 2, &d) || s[10] != ' ' || digits(s, n, 11, 2, &h) || s[13] != ':' ||
        digits(s, n, 14, 2, &mi) || s[16] != ':' || digits(s, n, 17, 2, &se))
        return FS_EPARSE;
    if (n > 19) {
        if (s[19] != '.')
            return FS_EPARSE;
        for (size_t i = 20; i < n; i++) {
            if (!isdigit((unsigned char)s[i]) || nf == 6)
                return FS_EPARSE;
            frac = frac * 10 + (s[i] - '0');
            nf++;
        }
        for (; nf < 6; nf++)
            frac *= 10;
    }
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59)
        return FS_ERANGE;
    *us = ((days_from_civil(y, mo, d) * 86400) + h * 3600 + mi * 60 + se) * 1000000 + frac;
    return 0;
}

bool sink_num_ok(const char *p, size_t n)
{
    size_t i = 0, mant = 0;

    if (!p || n == 0 || n > 64)
        return false;
    if (p[i] == '+' || p[i] == '-')
        i++;
    for (; i < n && isdigit((unsigned char)p[i]); i++)
        mant++;
    if (i < n && p[i] == '.')
        for (i++; i < n && isdigit((unsigned char)p[i]); i++)
            mant++;
    if (!mant)
        return false;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        for (; i < n && isdigit((unsigned char)p[i]); i++)
            exp++;
        if (!exp)
            return false;
    }
    return i == n;
}

int sink_add_ident(buf *b, const char *name)
{
    int rc = buf_addc(b, '`');
    if (!rc)
        rc = buf_adds(b, name);
    if (!rc)
        rc = buf_addc(b, '`');
    return rc;
}

int sink_add_hex(buf *b, const void *p, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    const unsigned char *s = p;
    char chunk[512];
    size_t k = 0;
    int rc = buf_add(b, "X'", 2);

    for (size_t i = 0; i < n && !rc; i++) {
        chunk[k++] = hx[s[i] >> 4];
        chunk[k++] = hx[s[i] & 15];
        if (k == sizeof(chunk)) {
            rc = buf_add(b, chunk, k);
            k = 0;
        }
    }
    if (!rc && k)
        rc = buf_add(b, chunk, k);
    return rc ? rc : buf_addc(b, '\'');
}

int sink_add_str(MYSQL *m, struct sink_esc *esc, buf *b, const char *p, size_t n)
{
    unsigned long k;
    int rc;

    if (esc->cap < 2 * n + 1) {
        esc->cap = 2 * n + 1;
        esc->p = xrealloc(esc->p, esc->cap);
    }
    k = mysql_real_escape_string(m, esc->p, p ? p : "", (unsigned long)n);
    if (k == (unsigned long)-1)
        return FS_EINVAL;
    rc = buf_addc(b, '\'');
    if (!rc)
        rc = buf_add(b, esc->p, k);
    return rc ? rc : buf_addc(b, '\'');
}

int sink_add_cell(MYSQL *m, struct sink_esc *esc, buf *b, const struct sink_cell *c)
{
    switch (c->kind) {
    case SINK_CELL_NUM:
        return buf_add(b, c->p, c->len);
    case SINK_CELL_STR:
        return sink_add_str(m, esc, b, c->p, c->len);
    case SINK_CELL_BIN:
        return sink_add_hex(b, c->p, c->len);
    case SINK_CELL_NULL:
        break;
    }
    return buf_adds(b, "NULL");
}

int sink_add_hashes(buf *b, const uint64_t *h, size_t n)
{
    unsigned char raw[SINK_HASHES_LEN];

    if (!h || n * 8 > sizeof(raw))
        return buf_adds(b, "NULL");
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++)
            raw[i * 8 + (size_t)k] = (unsigned char)(h[i] >> (8 * k));
    return sink_add_hex(b, raw, n * 8);
}

/* ---- table descriptions -------------------------------------------------------------------- */

/* Column kinds: the first eleven are cfg_coltype's, in the same order. */
enum ck {
    CK_VARCHAR,
    CK_TEXT,
    CK_BIGINT,
    CK_INT,
    CK_DOUBLE,
    CK_DECIMAL,
    CK_BOOLEAN,
    CK_DATETIME,
    CK_DATE,
    CK_JSON,
    CK_VARBINARY,
    CK_MEDIUMTEXT,
    CK_BINARY,
    CK_ASCII_CHAR,    /* CHAR(n) CHARACTER SET ascii */
    CK_ASCII_VARCHAR, /* VARCHAR(n) CHARACTER SET ascii */
    CK_ENUM,          /* values in cspec.values */
    CK_SERIAL,        /* BIGINT AUTO_INCREMENT */
};

struct cspec {
    const char *name;
    enum ck kind;
    int len, scale;
    bool notnull;
    const char *values; /* CK_ENUM: "'A','B'" */
    const char *dflt;   /* DEFAULT clause value, or NULL */
};

struct tspec {
    const char *name;
    struct cspec cols[SINK_MAX_CELLS + 16];
    size_t ncols;
    const char *pk;     /* primary-key column */
    const char *unique; /* a UNIQUE column, or NULL */
    const char *index;  /* KEY (collection, doc_key(255)) of the changes table, or NULL */
};

static struct cspec *add_col(struct tspec *t, const char *name, enum ck kind, int len, bool notnull)
{
    struct cspec *c = &t->cols[t->ncols++];
    memset(c, 0, sizeof(*c));
    c->name = name;
    c->kind = kind;
    c->len = len;
    c->notnull = notnull;
    return c;
}

static void spec_mapped(const struct cfg_collection *cl, struct tspec *t)
{
    memset(t, 0, sizeof(*t));
    t->name = cl->table;
    t->pk = sink_key_column(cl);
    add_col(t, t->pk, CK_VARBINARY, sink_key_len(cl), true);
    for (size_t i = 0; i < cl->ncolumns; i++) {
        const struct cfg_column *col = &cl->columns[i];
        add_col(t, col->name, (enum ck)col->type, col->len, false)->scale = col->scale;
    }
    if (cl->extra_column)
        add_col(t, cl->extra_column, CK_JSON, 0, false);
    add_col(t, "fs_create_time", CK_DATETIME, 6, false);
    add_col(t, "fs_update_time", CK_DATETIME, 6, false);
    add_col(t, "fs_delete_time", CK_DATETIME, 6, false);
    add_col(t, "deleted_at", CK_DATETIME, 6, false);
    add_col(t, "synced_at", CK_DATETIME, 6, true);
    add_col(t, "fs_hashes", CK_VARBINARY, SINK_HASHES_LEN, false);
}

static void spec_checkpoint(const struct cfg *cfg, struct tspec *t)
{
    memset(t, 0, sizeof(*t));
    t->name = cfg->mysql.checkpoint_table;
    t->pk = "target";
    add_col(t, "target", CK_VARCHAR, SINK_TARGET_LEN, true);
    add_col(t, "resume_token", CK_ASCII_VARCHAR, SINK_TOKEN_LEN, false);
    add_col(t, "read_time", CK_DATETIME, 6, false);
    add_col(t, "updated_at", CK_DATETIME, 6, true);
    add_col(t, "resync_generation", CK_BIGINT, 0, true)->dflt = "0";
    add_col(t, "resync_started_at", CK_DATETIME, 6, false);
    add_col(t, "resync_finished_at", CK_DATETIME, 6, false);
    add_col(t, "resync_read_time", CK_DATETIME, 6, false);
    add_col(t, "resync_cursor", CK_VARBINARY, SINK_KEY_PATH_LEN, false);
    add_col(t, "resync_result", CK_VARCHAR, 1024, false);
}

static void spec_changes(const struct cfg *cfg, struct tspec *t)
{
    memset(t, 0, sizeof(*t));
    t->name = cfg->mysql.changes_table;
    t->pk = "event_id";
    t->index = "collection_doc_key";
    add_col(t, "event_id", CK_ASCII_CHAR, 36, true);
    add_col(t, "collection", CK_VARCHAR, SINK_TARGET_LEN, true);
    add_col(t, "doc_key", CK_VARBINARY, SINK_KEY_PATH_LEN, true);
    add_col(t, "op", CK_ENUM, 0, true)->values = "'CREATE','UPDATE','DELETE'";
    add_col(t, "changed", CK_JSON, 0, false);
    add_col(t, "update_time", CK_DATETIME, 6, false);
    add_col(t, "source", CK_ENUM, 0, true)->values = "'stream','resync','simulated'";
    add_col(t, "applied_at", CK_DATETIME, 6, true);
}

static void spec_dead_letter(const struct cfg *cfg, struct tspec *t)
{
    memset(t, 0, sizeof(*t));
    t->name = cfg->mysql.dead_letter_table;
    t->pk = "id";
    t->unique = "doc_hash";
    add_col(t, "id", CK_SERIAL, 0, true);
    add_col(t, "collection", CK_VARCHAR, SINK_TARGET_LEN, false);
    add_col(t, "doc_name", CK_VARBINARY, SINK_DOCNAME_LEN, true);
    add_col(t, "doc_hash", CK_BINARY, 32, true);
    add_col(t, "reason", CK_TEXT, 0, true);
    add_col(t, "raw", CK_MEDIUMTEXT, 0, false);
    add_col(t, "first_seen", CK_DATETIME, 6, true);
    add_col(t, "last_seen", CK_DATETIME, 6, true);
    add_col(t, "seen_count", CK_BIGINT, 0, true)->dflt = "1";
}

/* Every table of cfg, mapped ones first; *n set. The caller frees the array. */
static struct tspec *all_specs(const struct cfg *cfg, size_t *n)
{
    struct tspec *t = xcalloc(cfg->ncollections + 3, sizeof(*t));
    size_t k = 0;

    for (size_t i = 0; i < cfg->ncollections; i++)
        spec_mapped(&cfg->collections[i], &t[k++]);
    spec_checkpoint(cfg, &t[k++]);
    if (sink_history_used(cfg))
        spec_changes(cfg, &t[k++]);
    spec_dead_letter(cfg, &t[k++]);
    *n = k;
    return t;
}

/* ---- DDL ----------------------------------------------------------------------------------- */

#define UTF8MB4 " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
#define ASCII " CHARACTER SET ascii COLLATE ascii_bin"
#define TABLE_OPTIONS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

/* The SQL type of c, as created. */
static void type_sql(const struct cspec *c, char *out, size_t n)
{
    switch (c->kind) {
    case CK_VARCHAR:
        snprintf(out, n, "VARCHAR(%d)" UTF8MB4, c->len);
        break;
    case CK_TEXT:
        snprintf(out, n, "TEXT" UTF8MB4);
        break;
    case CK_MEDIUMTEXT:
        snprintf(out, n, "MEDIUMTEXT" UTF8MB4);
        break;
    case CK_BIGINT:
        snprintf(out, n, "BIGINT");
        break;
    case CK_INT:
        snprintf(out, n, "INT");
        break;
    case CK_DOUBLE:
        snprintf(out, n, "DOUBLE");
        break;
    case CK_DECIMAL:
        snprintf(out, n, "DECIMAL(%d,%d)", c->len, c->scale);
        break;
    case CK_BOOLEAN:
        snprintf(out, n, "TINYINT(1)");
        break;
    case CK_DATETIME:
        snprintf(out, n, "DATETIME(6)");
        break;
    case CK_DATE:
        snprintf(out, n, "DATE");
        break;
    case CK_JSON:
        snprintf(out, n, "JSON");
        break;
    case CK_VARBINARY:
        snprintf(out, n, "VARBINARY(%d)", c->len);
        break;
    case CK_BINARY:
        snprintf(out, n, "BINARY(%d)", c->len);
        break;
    case CK_ASCII_CHAR:
        snprintf(out, n, "CHAR(%d)" ASCII, c->len);
        break;
    case CK_ASCII_VARCHAR:
        snprintf(out, n, "VARCHAR(%d)" ASCII, c->len);
        break;
    case CK_ENUM:
        snprintf(out, n, "ENUM(%s)" ASCII, c->values);
        break;
    case CK_SERIAL:
        snprintf(out, n, "BIGINT");
        break;
    }
}

/* "`name` TYPE [NOT ]NULL [DEFAULT x] [AUTO_INCREMENT]" */
static int column_sql(const struct cspec *c, buf *b)
{
    char ty[160];
    int rc;

    type_sql(c, ty, sizeof(ty));
    rc = sink_add_ident(b, c->name);
    if (!rc)
        rc = buf_printf(b, " %s %s", ty, c->notnull ? "NOT NULL" : "NULL");
    if (!rc && c->dflt)
        rc = buf_printf(b, " DEFAULT %s", c->dflt);
    if (!rc && c->kind == CK_SERIAL)
        rc = buf_adds(b, " AUTO_INCREMENT");
    return rc;
}

static int table_sql(const struct tspec *t, buf *b)
{
    int rc = buf_adds(b, "CREATE TABLE IF NOT EXISTS ");

    if (!rc)
        rc = sink_add_ident(b, t->name);
    if (!rc)
        rc = buf_adds(b, " (\n");
    for (size_t i = 0; i < t->ncols && !rc; i++) {
        rc = buf_adds(b, "  ");
        if (!rc)
            rc = column_sql(&t->cols[i], b);
        if (!rc)
            rc = buf_adds(b, ",\n");
    }
    if (!rc)
        rc = buf_printf(b, "  PRIMARY KEY (`%s`)", t->pk);
    if (!rc && t->unique)
        rc = buf_printf(b, ",\n  UNIQUE KEY `%s` (`%s`)", t->unique, t->unique);
    if (!rc && t->index)
        rc = buf_printf(b, ",\n  KEY `%s` (`collection`, `doc_key`(255))", t->index);
    if (!rc)
        rc = buf_adds(b, "\n)" TABLE_OPTIONS);
    return rc;
}

static const char *const bookkeeping[] = {"fs_create_time", "fs_update_time", "fs_delete_time",
                                          "deleted_at",     "synced_at",      "fs_hashes"};

/* A mapped column name that would collide with the key or a bookkeeping column. */
static const char *clash(const struct cfg_collection *cl, const char *name)
{
    if (strcasecmp(name, sink_key_column(cl)) == 0)
        return "the key column";
    for (size_t i = 0; i < sizeof(bookkeeping) / sizeof(bookkeeping[0]); i++)
        if (strcasecmp(name, bookkeeping[i]) == 0)
            return "a bookkeeping column";
    return NULL;
}

static int validate_collection(const struct cfg_collection *cl, fserr *e)
{
    const char *why;

    if (!cl->path || strlen(cl->path) > SINK_TARGET_LEN)
        return fserr_set(e, FS_ECONFIG,
                         "collection \"%.80s...\": a path longer than %d bytes "
                         "does not fit the checkpoint table",
                         cl->path ? cl->path : "", SINK_TARGET_LEN);
    if (!cfg_identifier_ok(cl->table))
        return fserr_set(e, FS_ECONFIG, "collection %s: table name is not a plain identifier",
                         cl->path);
    if (sink_ncells(cl) > SINK_MAX_CELLS)
        return fserr_set(e, FS_ECONFIG,
                         "collection %s: %zu columns; at most %d (the extra "
                         "column counts)",
                         cl->path, sink_ncells(cl), SINK_MAX_CELLS);
    for (size_t j = 0; j < cl->ncolumns; j++) {
        const char *n = cl->columns[j].name;
        if (!cfg_identifier_ok(n))
            return fserr_set(e, FS_ECONFIG, "table %s: column name is not a plain identifier",
                             cl->table);
        if ((why = clash(cl, n)))
            return fserr_set(e, FS_ECONFIG, "table %s: column '%s' is the name of %s", cl->table, n,
                             why);
    }
    if (cl->extra_column) {
        if (!cfg_identifier_ok(cl->extra_column))
            return fserr_set(e, FS_ECONFIG, "table %s: extra_column is not a plain identifier",
                             cl->table);
        if ((why = clash(cl, cl->extra_column)))
            return fserr_set(e, FS_ECONFIG, "table %s: extra_column '%s' is the name of %s",
                             cl->table, cl->extra_column, why);
    }
    return 0;
}

int sink_schema_validate(const struct cfg *cfg, fserr *e)
{
    const char *own[3] = {cfg->mysql.checkpoint_table, cfg->mysql.changes_table,
                          cfg->mysql.dead_letter_table};
    int rc;

    for (size_t i = 0; i < 3; i++) {
        if (!cfg_identifier_ok(own[i]))
            return fserr_set(e, FS_ECONFIG,
                             "mysql: bookkeeping table name \"%s\" is not a "
                             "plain identifier",
                             own[i] ? own[i] : "");
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(own[i], own[j]) == 0)
                return fserr_set(e, FS_ECONFIG, "mysql: table %s is used for two purposes", own[i]);
    }
    for (size_t i = 0; i < cfg->ncollections; i++) {
        const struct cfg_collection *cl = &cfg->collections[i];
        rc = validate_collection(cl, e);
        if (rc)
            return rc;
        for (size_t j = 0; j < 3; j++)
            if (strcasecmp(cl->table, own[j]) == 0)
                return fserr_set(e, FS_ECONFIG,
                                 "collection %s: table %s is one of firesync's "
                                 "bookkeeping tables",
                                 cl->path, cl->table);
    }
    return 0;
}

int sink_schema_sql(const struct cfg *cfg, buf *out)
{
    struct tspec *t;
    size_t n;
    int rc = sink_schema_validate(cfg, NULL);

    if (rc)
        return rc;
    t = all_specs(cfg, &n);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = table_sql(&t[i], out);
        if (!rc)
            rc = buf_adds(out, ";\n\n");
    }
    free(t);
    return rc;
}

/* ---- checking existing tables -------------------------------------------------------------- */

/* One row of information_schema.COLUMNS. */
struct found {
    const char *name, *data_type, *column_type, *charset, *dflt, *extra, *key;
    long long chars, octets, prec, scale, dtprec;
    bool nullable;
};

static bool is(const char *a, const char *b)
{
    return a && strcasecmp(a, b) == 0;
}

static bool is_text(const struct found *f)
{
    return is(f->data_type, "text") || is(f->data_type, "mediumtext") ||
           is(f->data_type, "longtext");
}

static bool is_int(const struct found *f)
{
    return is(f->data_type, "tinyint") || is(f->data_type, "smallint") ||
           is(f->data_type, "mediumint") || is(f->data_type, "int") || is(f->data_type, "bigint");
}

static bool is_unsigned(const struct found *f)
{
    return f->column_type && strstr(f->column_type, "unsigned");
}

static bool utf8mb4(const struct found *f)
{
    return f->charset && strncasecmp(f->charset, "utf8mb4", 7) == 0;
}

static bool enum_has_all(const struct found *f, const char *values)
{
    char v[64];
    const char *p = values;

    if (!is(f->data_type, "enum"))
        return false;
    while (*p) {
        const char *q = strchr(p + 1, '\'');
        size_t n = (size_t)(q - p + 1);
        snprintf(v, sizeof(v), "%.*s", (int)n, p);
        if (!strstr(f->column_type, v))
            return false;
        p = q + 1;
        if (*p == ',')
            p++;
    }
    return true;
}

/* True when the column found can hold every value firesync writes to a column of spec c. */
static bool type_fits(const struct cspec *c, const struct found *f)
{
    switch (c->kind) {
    case CK_VARCHAR:
        return utf8mb4(f) && ((is(f->data_type, "varchar") && f->chars >= c->len) ||
                              (is_text(f) && f->octets >= 4LL * c->len));
    case CK_TEXT:
        return utf8mb4(f) && is_text(f);
    case CK_MEDIUMTEXT:
        return utf8mb4(f) && (is(f->data_type, "mediumtext") || is(f->data_type, "longtext"));
    case CK_BIGINT:
        return is(f->data_type, "bigint") && !is_unsigned(f);
    case CK_INT:
        return (is(f->data_type, "int") || is(f->data_type, "bigint")) && !is_unsigned(f);
    case CK_BOOLEAN:
        return is_int(f);
    case CK_DOUBLE:
        return is(f->data_type, "double");
    case CK_DECIMAL:
        return is(f->data_type, "decimal") && !is_unsigned(f) && f->scale >= c->scale &&
               f->prec - f->scale >= c->len - c->scale;
    case CK_DATETIME:
        return is(f->data_type, "datetime") && f->dtprec >= 6;
    case CK_DATE:
        return is(f->data_type, "date") || is(f->data_type, "datetime");
    case CK_JSON: /* MySQL: json; MariaDB: longtext CHECK (json_valid(...)) */
        return is(f->data_type, "json") || (is(f->data_type, "longtext") && utf8mb4(f));
    case CK_VARBINARY:
        return (is(f->data_type, "varbinary") || is(f->data_type, "blob") ||
                is(f->data_type, "mediumblob") || is(f->data_type, "longblob")) &&
               f->octets >= c->len;
    case CK_BINARY:
        return (is(f->data_type, "binary") && f->octets == c->len) ||
               (is(f->data_type, "varbinary") && f->octets >= c->len);
    case CK_ASCII_CHAR:
    case CK_ASCII_VARCHAR:
        return (is(f->data_type, "char") || is(f->data_type, "varchar")) && f->chars >= c->len;
    case CK_ENUM:
        return enum_has_all(f, c->values);
    case CK_SERIAL:
        return is(f->data_type, "bigint") && f->extra && strstr(f->extra, "auto_increment");
    }
    return false;
}

/* Problems found in one table, kept for one message and logged one by one. */
struct report {
    int count;
    char first[400];
};

static void problem(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct report *r, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_error("MySQL schema: %s", msg);
    if (!r->count++)
        snprintf(r->first, sizeof(r->first), "%s", msg);
}

static void check_column(const struct tspec *t, const struct cspec *c, const struct found *f,
                         struct report *r)
{
    char ty[160];

    type_sql(c, ty, sizeof(ty));
    if (!type_fits(c, f))
        problem(r, "table `%s` column `%s`: expected %s%s, found %s%s%s", t->name, c->name, ty,
                c->kind <= CK_VARBINARY && c->kind != CK_TEXT ? " or wider" : "", f->column_type,
                f->charset ? " " : "", f->charset ? f->charset : "");
    else if (!c->notnull && !f->nullable)
        problem(r,
                "table `%s` column `%s` is NOT NULL; firesync writes NULL there (expected "
                "%s NULL)",
                t->name, c->name, ty);
    else if (strcmp(c->name, t->pk) == 0 && !is(f->key, "PRI"))
        problem(r, "table `%s`: column `%s` must be the primary key", t->name, c->name);
    else if (t->unique && strcmp(c->name, t->unique) == 0 && !is(f->key, "UNI") &&
             !is(f->key, "PRI"))
        problem(r, "table `%s`: column `%s` must be UNIQUE", t->name, c->name);
}

static const struct cspec *spec_col(const struct tspec *t, const char *name)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, name) == 0)
            return &t->cols[i];
    return NULL;
}

/* A column firesync does not know: harmless unless it makes our INSERTs fail. */
static void check_foreign(const struct tspec *t, const struct found *f, struct report *r)
{
    if (is(f->key, "PRI"))
        problem(r,
                "table `%s`: column `%s` is part of the primary key; the key must be `%s` "
                "alone",
                t->name, f->name, t->pk);
    else if (!f->nullable && !f->dflt && (!f->extra || !*f->extra))
        problem(r,
                "table `%s`: column `%s` is NOT NULL without a default, so firesync cannot "
                "insert rows; give it a default or allow NULL",
                t->name, f->name);
}

static long long num(const char *s)
{
    return s ? strtoll(s, NULL, 10) : -1;
}

static const char columns_sql[] =
    "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_MAXIMUM_LENGTH, "
    "CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, "
    "CHARACTER_SET_NAME, IS_NULLABLE, COLUMN_KEY, COLUMN_DEFAULT, EXTRA "
    "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s' "
    "ORDER BY ORDINAL_POSITION";

static int check_table(MYSQL *m, const struct tspec *t, struct report *r, fserr *e)
{
    char sql[sizeof(columns_sql) + 80];
    bool seen[SINK_MAX_CELLS + 16] = {false};
    MYSQL_RES *res;
    MYSQL_ROW row;

    snprintf(sql, sizeof(sql), columns_sql, t->name); /* a validated identifier */
    if (mysql_query(m, sql) != 0 || !(res = mysql_store_result(m)))
        return sql_error(m, "reading information_schema.COLUMNS", e);
    while ((row = mysql_fetch_row(res))) {
        struct found f = {
            .name = row[0],
            .data_type = row[1],
            .column_type = row[2] ? row[2] : "?",
            .chars = num(row[3]),
            .octets = num(row[4]),
            .prec = num(row[5]),
            .scale = num(row[6]),
            .dtprec = num(row[7]),
            .charset = row[8],
            .nullable = is(row[9], "YES"),
            .key = row[10],
            .dflt = row[11],
            .extra = row[12],
        };
        const struct cspec *c = spec_col(t, f.name ? f.name : "");
        if (c) {
            seen[c - t->cols] = true;
            check_column(t, c, &f, r);
        } else {
            check_foreign(t, &f, r);
        }
    }
    mysql_free_result(res);
    for (size_t i = 0; i < t->ncols; i++) {
        if (seen[i])
            continue;
        buf add;
        buf_init(&add, 0);
        column_sql(&t->cols[i], &add);
        problem(r, "table `%s` has no column `%s`; add it with: ALTER TABLE `%s` ADD COLUMN %s",
                t->name, t->cols[i].name, t->name, buf_str(&add));
        buf_release(&add);
    }
    return 0;
}

/* Names and engines of the tables of the current database. */
static int list_tables(MYSQL *m, MYSQL_RES **out, fserr *e)
{
    if (mysql_query(m, "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES "
                       "WHERE TABLE_SCHEMA = DATABASE()") != 0 ||
        !(*out = mysql_store_result(m)))
        return sql_error(m, "reading information_schema.TABLES", e);
    return 0;
}

/* The engine of table `name` ("" for a view), or NULL when it does not exist. */
static const char *table_engine(MYSQL_RES *res, const char *name)
{
    MYSQL_ROW row;

    mysql_data_seek(res, 0);
    while ((row = mysql_fetch_row(res)))
        if (row[0] && strcmp(row[0], name) == 0)
            return row[1] ? row[1] : "";
    return NULL;
}

static int create_table(MYSQL *m, const struct tspec *t, fserr *e)
{
    buf sql;
    int rc;

    buf_init(&sql, 0);
    rc = table_sql(t, &sql);
    if (!rc && mysql_real_query(m, sql.p, sql.len) != 0) {
        char what[128];
        snprintf(what, sizeof(what), "creating table `%s`", t->name);
        rc = sql_error(m, what, e);
    } else if (!rc) {
        log_info("created MySQL table `%s`", t->name);
    }
    buf_release(&sql);
    return rc;
}

/* Creates t when missing (and allowed), checks its engine and columns. */
static int ensure_table(const struct cfg *cfg, MYSQL *m, MYSQL_RES *tables, const struct tspec *t,
                        struct report *r, fserr *e)
{
    const char *engine = table_engine(tables, t->name);
    int rc;

    if (!engine) {
        if (!cfg->mysql.create_tables)
            return fserr_set(e, FS_EMYSQL_SCHEMA,
                             "table `%s` does not exist in database `%s` "
                             "and mysql.create_tables is false; create it (see `firesync "
                             "schema`) or set create_tables = true",
                             t->name, cfg->mysql.database ? cfg->mysql.database : "");
        rc = create_table(m, t, e);
        if (rc)
            return rc;
    } else if (!is(engine, "InnoDB")) {
        problem(r,
                "table `%s` uses the %s engine; firesync needs InnoDB (rows and checkpoint in "
                "one transaction): ALTER TABLE `%s` ENGINE=InnoDB",
                t->name, *engine ? engine : "(view)", t->name);
        return 0;
    }
    return check_table(m, t, r, e);
}

int sink_schema_ensure(const struct cfg *cfg, MYSQL *m, fserr *e)
{
    struct report r = {0};
    MYSQL_RES *tables = NULL;
    struct tspec *t;
    size_t n;
    int rc = sink_schema_validate(cfg, e);

    if (rc)
        return rc;
    rc = list_tables(m, &tables, e);
    if (rc)
        return rc;
    t = all_specs(cfg, &n);
    /* the existing tables first, then the missing ones: a start refused for an existing table
     * creates nothing */
    for (size_t i = 0; i < n && !rc; i++)
        if (table_engine(tables, t[i].name))
            rc = ensure_table(cfg, m, tables, &t[i], &r, e);
    for (size_t i = 0; i < n && !rc && !r.count; i++)
        if (!table_engine(tables, t[i].name))
            rc = ensure_table(cfg, m, tables, &t[i], &r, e);
    free(t);
    mysql_free_result(tables);
    if (!rc && r.count)
        rc = fserr_set(e, FS_EMYSQL_SCHEMA, "%s%s", r.first,
                       r.count > 1 ? " (and more problems: see the log)" : "");
    mysql_commit(m); /* end the read view the information_schema queries may have opened */
    return rc;
}

/* ---- reading back -------------------------------------------------------------------------- */

#define INDEX_PAGE 5000

static void decode_hashes(const unsigned char *p, size_t len, uint64_t *out, size_t *n)
{
    *n = len / 8;
    for (size_t i = 0; i < *n; i++) {
        uint64_t v = 0;
        for (int k = 7; k >= 0; k--)
            v = (v << 8) | p[i * 8 + (size_t)k];
        out[i] = v;
    }
}

static int64_t time_or_zero(const char *s, unsigned long n)
{
    int64_t us = 0;
    if (!s || sink_time_parse(s, n, &us) != 0)
        return 0;
    return us;
}

/* Reads one page after `last` (NULL: from the start); returns the number of rows seen, or a
 * negative code. `last` is updated to the page's last key. */
static int index_page(MYSQL *m, const struct cfg_collection *cl, buf *last, bool first,
                      int (*fn)(void *ud, const struct sink_index_row *row), void *ud, fserr *e)
{
    const char *k = sink_key_column(cl);
    uint64_t hashes[SINK_HASHES_LEN / 8];
    MYSQL_RES *res;
    MYSQL_ROW row;
    buf sql;
    int rc = 0, count = 0;

    buf_init(&sql, 0);
    buf_printf(&sql,
               "SELECT `%s`, fs_update_time, fs_delete_time, deleted_at IS NOT NULL, "
               "deleted_at, fs_hashes FROM `%s`",
               k, cl->table);
    if (!first) {
        buf_printf(&sql, " WHERE `%s` > ", k);
        sink_add_hex(&sql, last->p, last->len);
    }
    buf_printf(&sql, " ORDER BY `%s` LIMIT %d", k, INDEX_PAGE);
    if (mysql_real_query(m, sql.p, sql.len) != 0 || !(res = mysql_store_result(m))) {
        rc = mysql_errno(m) == ER_NO_SUCH_TABLE ? 0 : sql_error(m, cl->table, e);
        buf_release(&sql);
        return rc;
    }
    buf_release(&sql);
    while (!rc && (row = mysql_fetch_row(res))) {
        unsigned long *len = mysql_fetch_lengths(res);
        struct sink_index_row ir = {.key = row[0], .keylen = len[0], .hashes = hashes};
        bool deleted = row[3] && row[3][0] == '1';
        ir.update_us = time_or_zero(row[1], len[1]);
        ir.delete_us = !deleted ? 0
                       : row[2] ? time_or_zero(row[2], len[2])
                                : time_or_zero(row[4], len[4]);
        /* a column widened by hand may hold more: only what fits the index is read */
        decode_hashes((const unsigned char *)(row[5] ? row[5] : ""),
                      !row[5]                   ? 0
                      : len[5] > sizeof(hashes) ? sizeof(hashes)
                                                : len[5],
                      hashes, &ir.nhashes);
        rc = fn(ud, &ir);
        if (rc)
            fserr_set(e, rc, "loading the applied index of `%s` stopped at a row", cl->table);
        buf_reset(last);
        buf_add(last, row[0], len[0]);
        count++;
    }
    mysql_free_result(res);
    return rc ? rc : count;
}

int sink_load_index(const struct cfg *cfg, int coll,
                    int (*fn)(void *ud, const struct sink_index_row *row), void *ud, fserr *e)
{
    const struct cfg_collection *cl;
    MYSQL *m = NULL;
    buf last;
    int rc;

    if (coll < 0 || (size_t)coll >= cfg->ncollections)
        return fserr_set(e, FS_EINVAL, "sink_load_index: no collection %d", coll);
    cl = &cfg->collections[coll];
    rc = sink_schema_validate(cfg, e);
    if (rc)
        return rc;
    rc = sink_conn_open_retry(&cfg->mysql, cfg->mysql.connect_timeout_ms, NULL, &m, e);
    if (rc)
        return rc;
    buf_init(&last, 0);
    for (bool first = true;; first = false) {
        rc = index_page(m, cl, &last, first, fn, ud, e);
        if (rc < INDEX_PAGE)
            break;
    }
    buf_release(&last);
    mysql_close(m);
    return rc < 0 ? rc : 0;
}

int sink_load_checkpoint(const struct cfg *cfg, const char *target, char **token, int64_t *read_us,
                         fserr *e)
{
    MYSQL *m = NULL;
    MYSQL_RES *res;
    MYSQL_ROW row;
    buf sql;
    char esc[2 * SINK_TARGET_LEN + 1];
    int rc;

    *token = NULL;
    *read_us = 0;
    if (!target || strlen(target) > SINK_TARGET_LEN)
        return fserr_set(e, FS_EINVAL, "checkpoint target longer than %d bytes", SINK_TARGET_LEN);
    rc = sink_schema_validate(cfg, e);
    if (!rc)
        rc = sink_conn_open_retry(&cfg->mysql, cfg->mysql.connect_timeout_ms, NULL, &m, e);
    if (rc)
        return rc;
    mysql_real_escape_string(m, esc, target, (unsigned long)strlen(target));
    buf_init(&sql, 0);
    buf_printf(&sql, "SELECT resume_token, read_time FROM `%s` WHERE target = '%s'",
               cfg->mysql.checkpoint_table, esc);
    if (mysql_real_query(m, sql.p, sql.len) != 0 || !(res = mysql_store_result(m))) {
        if (mysql_errno(m) != ER_NO_SUCH_TABLE)
            rc = sql_error(m, "reading the checkpoint", e);
    } else {
        if ((row = mysql_fetch_row(res))) {
            unsigned long *len = mysql_fetch_lengths(res);
            *token = xstrdup(row[0] ? row[0] : "");
            *read_us = time_or_zero(row[1], len[1]);
        }
        mysql_free_result(res);
    }
    buf_release(&sql);
    mysql_close(m);
    if (!rc && !*token)
        *token = xstrdup("");
    return rc;
}
