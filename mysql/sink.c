/*
 * sink.c - the sink thread: takes events off the queue and writes them to MySQL in batched,
 * guarded transactions, and survives MySQL's failures (see sink.h; table layouts: schema.c).
 *
 * Owns the queue (a mutex and two condition variables: one wakes the sink thread, one tells
 * flushers about progress), the thread, its two MYSQL connections and the batches in flight
 * (events themselves are made and freed by event.c). A batch's
 * events stay in memory until its transaction commits, so that:
 *   - a transient failure (lost connection, deadlock, read-only server) rolls back, reconnects
 *     with backoff and jitter, and replays the whole batch: the guards make the replay harmless;
 *   - a value the server refuses (data too long, bad JSON, ...) aborts one multi-row statement:
 *     the batch is replayed a row per statement, and the one refused document goes to the dead
 *     letter with the server's words while the others apply;
 *   - a failure of the sink itself (table dropped, privilege revoked, schema changed) keeps the
 *     batch and the queue, reports SINK_FAILED, and retries every retry interval (30 s):
 *     reconnect, check the tables again, replay;
 *   - sink_stop() drains the queue while MySQL answers; a batch that cannot commit when a stop
 *     is requested (MySQL down, sink failed) is dropped, since it follows the last checkpoint.
 *
 * One transaction per batch:
 *   1. history snapshot: for collections that keep history, SELECT ... FOR UPDATE of the keys;
 *   2. rows: the n-th event of a key within the batch belongs to generation n; generations run
 *      in order, so a key's events apply in order and no statement holds a key twice. Within a
 *      generation, one multi-row INSERT ... ON DUPLICATE KEY UPDATE per (collection, operation,
 *      set of changed columns), each assignment guarded by the update time (see upsert_tail);
 *      sent as a prepared statement with the values bound (ps_run), or as text in single mode;
 *   3. history rows, decided in C from the snapshot with the same guard as the SQL, so that a
 *      replay (which the guard refuses) never adds a second row for a change;
 *   4. checkpoints, 5. dead letters, 6. COMMIT. While a backlog waits, the COMMIT is only
 *      sent, and the next batch runs on the other connection meanwhile; its own COMMIT goes
 *      out once the first one's answer is in (see "overlapped commits").
 *
 * Counters (struct sink_stats), added when a batch commits, from the server's own report
 * (mysql_info's Records and Duplicates with the affected-rows count; conn.c connects with
 * CLIENT_FOUND_ROWS, so a row found but left as it was counts 1, an updated row 2):
 *   created    upserts that inserted a new row;
 *   updated    upserts that changed an existing row (reviving a tombstone counts here);
 *   deleted    deletes that wrote a tombstone (on a live row, a newer delete time on a deleted
 *              row, or a new tombstone row for a key never seen);
 *   unchanged  row events the guard refused: stale versions and replays;
 *   dead_letters  dead-letter rows written (pushed DEADLETTER events and refused rows).
 */
#include "mysql/sink.h"

#include "common/base64.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "mysql/conn.h"
#include "mysql/internal.h"
#include "mysql/page.h"

#include <cjson/cJSON.h>
#include <mysqld_error.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAILED_RETRY_MS 30000  /* SINK_FAILED: try again this often */
#define STMT_TARGET (4u << 20) /* bytes per multi-row statement */
#define PACKET_SLACK 1024      /* below max_allowed_packet */
#define ALL_CELLS(n) ((n) >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << (n)) - 1)

/* ---- the sink and its events --------------------------------------------------------------- */

struct snap;

/* One (collection, key) of the batch. */
struct slot {
    int coll; /* -1: empty slot */
    const char *key;
    size_t keylen;
    uint64_t hash;
    int count;         /* events of this key met so far */
    struct snap *snap; /* history collections, during an attempt */
};

/* One event of the batch. */
struct item {
    struct sink_event *ev;
    struct slot *slot; /* UPSERT and DELETE */
    int gen;           /* earlier events of the same key in this batch */
    uint64_t mask;     /* columns an upsert assigns on an existing row */
    char *invalid;     /* refused before any SQL (owned reason) */
    char *refused;     /* refused by the server in this attempt (owned reason) */
};

struct counts {
    uint64_t created, updated, deleted, unchanged, dead;
};

struct batch {
    struct item *it;
    size_t n, cap;
    struct slot *slots;
    size_t nslots; /* a power of two */
    bool single;   /* one row per statement (after a refused value) */
    struct counts c;
    char now[SINK_TIME_LEN];
};

struct sink {
    const struct cfg *cfg;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the sink thread: events, flush, stop */
    pthread_cond_t done; /* flushers: progress or failure */
    struct sink_event *head, *tail;
    uint64_t pushed, retired, flush_to;
    bool started, running, stop_req;
    atomic_bool stop; /* stop_req, readable without the lock (sink_conn_open_retry) */
    enum sink_health health;
    int fail_code;
    char why[512];
    void (*notify)(void *ud);
    void *notify_ud;
    int64_t retry_ms;
    struct sink_stats st;
    pthread_t th;
    /* sink thread only */
    MYSQL *m;
    bool mariadb, need_schema;
    unsigned int last_errno;
    size_t packet_max, stmt_max;
    struct sink_backoff bo;
    struct sink_esc esc; /* escaping scratch */
    struct batch b;
    struct sink_event *grave; /* committed events not freed yet (under mu): see bury() */
    /* prepared row statements of s->m (see ps_run) */
    struct ps *ps;
    /* the other connection and the batch whose COMMIT it runs (see "overlapped commits") */
    MYSQL *pm;
    struct ps *pps;
    struct batch pb;
    bool pending;        /* pb's COMMIT was sent on pm, its answer not read yet */
    bool pending_failed; /* ... and read: it failed, pb must be replayed */
    uint64_t taken;      /* events moved from the queue into a batch */
    uint64_t ps_tick;
    MYSQL_BIND *pbind;
    MYSQL_TIME *ptime;
    unsigned char *phash;
    size_t pcap, prows; /* values that pbind holds; rows that ptime and phash hold */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Waits on cv until the monotonic time `until_ms` (caller holds s->mu). */
static int wait_until(struct sink *s, pthread_cond_t *cv, int64_t until_ms)
{
    struct timespec ts = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000L};
    return pthread_cond_timedwait(cv, &s->mu, &ts);
}

static void call_notify(struct sink *s)
{
    if (s->notify)
        s->notify(s->notify_ud);
}

static void set_health(struct sink *s, enum sink_health h, int code, const char *why)
{
    bool changed;

    pthread_mutex_lock(&s->mu);
    changed = s->health != h || strcmp(s->why, why ? why : "") != 0;
    s->health = h;
    s->fail_code = code;
    log_scrub(why ? why : "", s->why, sizeof(s->why));
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
    if (changed)
        call_notify(s);
}

/* Sleeps ms unless the sink is stopping; false when it is. */
static bool nap(struct sink *s, int64_t ms)
{
    int64_t until = mono_ms() + ms;
    bool stopping;

    pthread_mutex_lock(&s->mu);
    while (!s->stop_req && mono_ms() < until)
        wait_until(s, &s->wake, until);
    stopping = s->stop_req;
    pthread_mutex_unlock(&s->mu);
    return !stopping;
}

/* ---- SQL text ------------------------------------------------------------------------------ */


/* The microseconds sink_time_format() accepts: years 1 to 9999. */
#define TIME_US_MIN (INT64_C(-62135596800) * 1000000)
#define TIME_US_MAX (INT64_C(253402300799) * 1000000 + 999999)

static bool time_ok(int64_t us)
{
    return us >= TIME_US_MIN && us <= TIME_US_MAX;
}

static void put_digits(char *p, unsigned v, int n)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* A time_ok() value as its UTC fields: year, month, day, hour, minute, second, microsecond. */
static void time_split(int64_t us, unsigned f[7])
{
    int64_t secs = us / 1000000, frac = us % 1000000, days, sod;
    int64_t z, era, doe, yoe, doy, mp;

    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    days = secs / 86400;
    sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    /* days since 1970-01-01 to a civil date, counting in 400-year eras from 0000-03-01 */
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    f[2] = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    f[1] = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    f[0] = (unsigned)(yoe + era * 400 + (f[1] <= 2));
    f[3] = (unsigned)(sod / 3600);
    f[4] = (unsigned)(sod / 60 % 60);
    f[5] = (unsigned)(sod % 60);
    f[6] = (unsigned)frac;
}

/* sink_time_format()'s text for a time_ok() value, without snprintf: 'YYYY-MM-DD
 * HH:MM:SS.ffffff' and a NUL into t (SINK_TIME_LEN bytes). */
static void time_text(int64_t us, char *t)
{
    unsigned f[7];

    time_split(us, f);
    put_digits(t, f[0], 4);
    t[4] = '-';
    put_digits(t + 5, f[1], 2);
    t[7] = '-';
    put_digits(t + 8, f[2], 2);
    t[10] = ' ';
    put_digits(t + 11, f[3], 2);
    t[13] = ':';
    put_digits(t + 14, f[4], 2);
    t[16] = ':';
    put_digits(t + 17, f[5], 2);
    t[19] = '.';
    put_digits(t + 20, f[6], 6);
    t[26] = '\0';
}

/* A time literal, or NULL for 0. Times were checked when the batch was formed. */
static int add_time(buf *b, int64_t us)
{
    char t[SINK_TIME_LEN + 2];

    if (!us || !time_ok(us))
        return buf_adds(b, "NULL");
    t[0] = '\'';
    time_text(us, t + 1);
    t[SINK_TIME_LEN] = '\'';
    return buf_add(b, t, SINK_TIME_LEN + 1);
}



/* Copies p[0..n) as valid UTF-8 of at most max bytes: a bad byte becomes U+FFFD. */
static void utf8_clean(const char *p, size_t n, size_t max, buf *out)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (s[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) {
            static const uint32_t least[5] = {0, 0, 0x80, 0x800, 0x10000}; /* no overlongs */
            uint32_t cp = c & (0x7F >> len);
            for (size_t k = 1; k < len; k++)
                cp = (cp << 6) | (s[i + k] & 0x3F);
            ok = cp >= least[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (!ok)
            len = 1;
        if (out->len + (ok ? len : 3) > max)
            break;
        if (ok)
            buf_add(out, p + i, len);
        else
            buf_add(out, "\xEF\xBF\xBD", 3);
        i += len;
    }
}

/* True when p is a JSON number as RFC 8259 spells it. */
static bool json_number(const char *p, size_t n)
{
    size_t i = 0;

    if (i < n && p[i] == '-')
        i++;
    if (i < n && p[i] == '0')
        i++;
    else if (i < n && p[i] >= '1' && p[i] <= '9')
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
    else
        return false;
    if (i < n && p[i] == '.') {
        size_t d = ++i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        size_t d = i;
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    return i == n;
}

/* A column value (a cell's or MySQL's text) as JSON, for history and dead letters: numbers as
 * numbers, BOOLEAN as true/false, JSON parsed, VARBINARY as base64, the rest as strings. The
 * caller owns the result. */
static cJSON *value_json(int type, const char *p, size_t n, bool null)
{
    cJSON *j = NULL;
    char *z;

    if (null || !p)
        return cJSON_CreateNull();
    switch (type) {
    case CFG_COL_BOOLEAN:
        return cJSON_CreateBool(!(n == 1 && p[0] == '0'));
    case CFG_COL_BIGINT:
    case CFG_COL_INT:
    case CFG_COL_DOUBLE:
    case CFG_COL_DECIMAL:
        if (json_number(p, n)) {
            z = xstrndup(p, n);
            j = cJSON_CreateRaw(z);
            free(z);
            return j;
        }
        break;
    case CFG_COL_JSON:
        if ((j = cJSON_ParseWithLength(p, n)))
            return j;
        break;
    case CFG_COL_VARBINARY: {
        buf b64;
        buf_init(&b64, 0);
        base64_encode(BASE64_STD, p, n, &b64);
        j = cJSON_CreateString(buf_str(&b64));
        buf_release(&b64);
        return j;
    }
    default:
        break;
    }
    buf clean;
    buf_init(&clean, 0);
    utf8_clean(p, n, n * 3 + 3, &clean);
    j = cJSON_CreateString(buf_str(&clean));
    buf_release(&clean);
    return j;
}

/* The type of cell i of collection cl (the extra column is JSON). */
static int cell_type(const struct cfg_collection *cl, size_t i)
{
    return i < cl->ncolumns ? (int)cl->columns[i].type : CFG_COL_JSON;
}

static const char *cell_name(const struct cfg_collection *cl, size_t i)
{
    return i < cl->ncolumns ? cl->columns[i].name : cl->extra_column;
}

/* ---- statements ---------------------------------------------------------------------------- */

static int sql_fail(struct sink *s, const char *what, fserr *e)
{
    int rc;

    s->last_errno = mysql_errno(s->m);
    rc = sink_conn_error(s->m, what, e);
    return rc ? rc : fserr_set(e, FS_EMYSQL, "%s failed", what);
}

static int run_sql(struct sink *s, const char *sql, size_t len, const char *what, fserr *e)
{
    s->last_errno = 0;
    if (mysql_real_query(s->m, sql, (unsigned long)len) != 0)
        return sql_fail(s, what, e);
    return 0;
}

/* A refusal that concerns one row's values, not the sink: the row goes to the dead letter. */
static bool data_error(const struct sink *s)
{
    switch (s->last_errno) {
    case ER_BAD_NULL_ERROR:
    case ER_DUP_ENTRY:
    case ER_WARN_NULL_TO_NOTNULL:
    case ER_WARN_DATA_OUT_OF_RANGE:
    case WARN_DATA_TRUNCATED:
    case ER_TRUNCATED_WRONG_VALUE:
    case ER_INVALID_CHARACTER_STRING:
    case ER_DIVISION_BY_ZERO:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_ILLEGAL_VALUE_FOR_TYPE:
    case ER_DATA_TOO_LONG:
    case ER_WRONG_VALUE_FOR_TYPE:
    case ER_WRONG_VALUE:
    case ER_DATA_OUT_OF_RANGE:
    case ER_NO_REFERENCED_ROW_2:
        return true;
    case ER_CONSTRAINT_FAILED: /* MariaDB: CHECK (json_valid(...)) */
        return s->mariadb;
    case 3140: /* MySQL: ER_INVALID_JSON_TEXT */
    case 3819: /* MySQL: ER_CHECK_CONSTRAINT_VIOLATED */
        return !s->mariadb;
    default:
        return false;
    }
}

static void refuse(struct item *it, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse(struct item *it, const char *fmt, ...)
{
    char msg[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    free(it->refused);
    it->refused = xstrdup(msg);
}

static bool skipped(const struct item *it)
{
    return it->invalid || it->refused;
}

/* A multi-row statement being assembled: head, rows, tail. In single mode, or for a lone row,
 * each statement holds one item; rows of upserts and deletes are counted from mysql_info. */
struct stmt {
    struct sink *s;
    struct batch *b;
    const char *what; /* for messages: "writing `employees`" */
    int op;           /* SINK_OP_UPSERT or _DELETE: rows are counted; -1: not counted */
    bool count;
    buf sql, tail, row;
    size_t head_len, first_at, first_len, nrows;
    struct item *only; /* the item of a one-row statement */
};

static void stmt_init(struct stmt *st, struct sink *s, const char *what, int op)
{
    memset(st, 0, sizeof(*st));
    st->s = s;
    st->b = &s->b;
    st->what = what;
    st->op = op;
    st->count = op >= 0;
    buf_init(&st->sql, 0);
    buf_init(&st->tail, 0);
    buf_init(&st->row, 0);
}

static void stmt_release(struct stmt *st)
{
    buf_release(&st->sql);
    buf_release(&st->tail);
    buf_release(&st->row);
}

/* Call after writing the head into st->sql. */
static void stmt_head_done(struct stmt *st)
{
    st->head_len = st->sql.len;
}

/* Adds the server's count of what one statement did: its rows plus `dup` copies. */
static void account(struct stmt *st, size_t dup)
{
    unsigned long long rec = 0, dups = 0, aff = mysql_affected_rows(st->s->m);
    unsigned long long ins, upd, unch;
    const char *info = mysql_info(st->s->m);
    struct counts *c = &st->b->c;

    if (!info || sscanf(info, "Records: %llu Duplicates: %llu", &rec, &dups) != 2) {
        log_debug("%s: no row report from the server; counted as unchanged", st->what);
        c->unchanged += st->nrows;
        return;
    }
    ins = rec >= dups ? rec - dups : 0;
    upd = aff > rec ? aff - rec : 0;
    unch = dups > upd + dup ? dups - upd - dup : 0;
    if (st->op == SINK_OP_DELETE) {
        c->deleted += ins + upd;
    } else {
        c->created += ins;
        c->updated += upd;
    }
    c->unchanged += unch;
}

static int stmt_flush(struct stmt *st, fserr *e)
{
    size_t dup = 0;
    int rc = 0;

    if (!st->nrows)
        return 0;
    /* mysql_info() reports Records/Duplicates only for multi-row INSERTs: a lone row is sent
     * twice; the copy meets the row's own times, which the guard refuses, so it changes
     * nothing and is taken out of the count. */
    if (st->count && st->nrows == 1) {
        char *copy = xstrndup(st->sql.p + st->first_at, st->first_len); /* sql may move */
        rc = buf_addc(&st->sql, ',');
        if (!rc)
            rc = buf_add(&st->sql, copy, st->first_len);
        free(copy);
        dup = 1;
    }
    if (!rc)
        rc = buf_add(&st->sql, st->tail.p, st->tail.len);
    if (!rc)
        rc = run_sql(st->s, st->sql.p, st->sql.len, st->what, e);
    if (rc && st->b->single && data_error(st->s)) {
        if (st->only) {
            refuse(st->only, "MySQL refused the row: %s", mysql_error(st->s->m));
            log_warn("%s: %s", st->what, st->only->refused);
        } else {
            log_error("%s: %s; this row is skipped", st->what, e ? e->msg : "");
        }
        rc = 0;
    } else if (!rc && st->count) {
        account(st, dup);
    }
    st->sql.len = st->head_len;
    st->sql.p[st->sql.len] = '\0';
    st->nrows = 0;
    st->only = NULL;
    return rc;
}

/* Adds the row in st->row for item `it` (NULL when not a row event), flushing first when the
 * statement is full. A row too large for the server is refused. */
static int stmt_add(struct stmt *st, struct item *it, fserr *e)
{
    struct sink *s = st->s;
    size_t need = st->head_len + st->row.len * (st->count ? 2 : 1) + st->tail.len + 2;
    int rc = 0;

    if (need > s->packet_max) {
        if (it)
            refuse(it,
                   "the row takes %zu bytes of SQL, more than the server's "
                   "max_allowed_packet allows",
                   st->row.len);
        else
            log_error("%s: a row of %zu bytes exceeds max_allowed_packet; skipped", st->what,
                      st->row.len);
        return 0;
    }
    if (st->nrows &&
        (st->b->single || st->sql.len + st->row.len + st->tail.len + 2 > s->stmt_max)) {
        rc = stmt_flush(st, e);
        if (rc)
            return rc;
    }
    if (st->nrows)
        rc = buf_addc(&st->sql, ',');
    else {
        st->first_at = st->sql.len;
        st->first_len = st->row.len;
    }
    if (!rc)
        rc = buf_add(&st->sql, st->row.p, st->row.len);
    if (rc)
        return fserr_set(e, rc, "%s: statement too large", st->what);
    st->nrows++;
    st->only = st->nrows == 1 ? it : NULL;
    return 0;
}

/* ---- row statements ------------------------------------------------------------------------ */

/* The time t is newer than the row's update time and tombstone, a NULL counting as the earliest
 * DATETIME: t > IFNULL(`fs_update_time`, '0001-01-01') AND t > IFNULL(`fs_delete_time`,
 * '0001-01-01'), written so that the server compares DATETIME fields directly, and meets the
 * literal only on a row without either time. */
#define T_MIN "TIMESTAMP'0001-01-01 00:00:00'"
#define NEWER(t)                                                                                   \
    "(`fs_update_time` IS NULL OR " t " > `fs_update_time`) AND "                                  \
    "(`fs_delete_time` IS NULL OR " t " > `fs_delete_time`) AND "                                  \
    "(`fs_update_time` IS NOT NULL OR `fs_delete_time` IS NOT NULL OR " t " > " T_MIN ")"
#define GUARD NEWER("VALUES(`fs_update_time`)")
#define DGUARD NEWER("VALUES(`fs_delete_time`)")

static int guarded(buf *b, const char *col, const char *guard, const char *value)
{
    return buf_printf(b, "`%s` = IF(%s, %s, `%s`), ", col, guard, value, col);
}

static int assign_values(buf *b, const char *col)
{
    char v[96];
    snprintf(v, sizeof(v), "VALUES(`%s`)", col);
    return guarded(b, col, GUARD, v);
}

/* INSERT INTO `t` (`key`, cells..., `fs_create_time`, `fs_update_time`, `synced_at`,
 * `fs_hashes`) VALUES */
static int upsert_head(const struct cfg_collection *cl, buf *b)
{
    int rc = buf_printf(b, "INSERT INTO `%s` (`%s`", cl->table, sink_key_column(cl));

    for (size_t i = 0; i < sink_ncells(cl) && !rc; i++)
        rc = buf_printf(b, ", `%s`", cell_name(cl, i));
    if (!rc)
        rc = buf_adds(b, ", `fs_create_time`, `fs_update_time`, `synced_at`, `fs_hashes`) VALUES ");
    return rc;
}

/* ON DUPLICATE KEY UPDATE: the changed columns, then the bookkeeping. MySQL evaluates the
 * assignments left to right and later ones see the new values, so every guard must run before
 * fs_update_time and fs_delete_time change: fs_delete_time := NULL (a newer create revives a
 * tombstone) leaves the guard's value as it was, and fs_update_time comes last. */
static int upsert_tail(const struct cfg_collection *cl, uint64_t mask, buf *b)
{
    int rc = buf_adds(b, " ON DUPLICATE KEY UPDATE ");

    for (size_t i = 0; i < sink_ncells(cl) && !rc; i++)
        if (mask & (UINT64_C(1) << i))
            rc = assign_values(b, cell_name(cl, i));
    if (!rc)
        rc = assign_values(b, "fs_hashes");
    /* the next three are tested for a change first (AND stops at the first false term), so
     * that the guard runs only where the value would differ: same results, cheaper */
    if (!rc)
        rc = guarded(b, "fs_create_time",
                     "NOT (`fs_create_time` <=> VALUES(`fs_create_time`)) AND " GUARD,
                     "VALUES(`fs_create_time`)");
    if (!rc)
        rc = assign_values(b, "synced_at");
    if (!rc)
        rc = guarded(b, "deleted_at", "`deleted_at` IS NOT NULL AND " GUARD, "NULL");
    if (!rc)
        rc = guarded(b, "fs_delete_time", "`fs_delete_time` IS NOT NULL AND " GUARD, "NULL");
    if (!rc)
        rc = buf_printf(b,
                        "`fs_update_time` = IF(%s, VALUES(`fs_update_time`), "
                        "`fs_update_time`)",
                        GUARD);
    return rc;
}

static int upsert_row(struct sink *s, const struct cfg_collection *cl, const struct item *it,
                      buf *b)
{
    const struct sink_event *ev = it->ev;
    int rc = buf_addc(b, '(');

    if (!rc)
        rc = sink_add_hex(b, ev->key, ev->keylen);
    for (size_t i = 0; i < ev->ncells && !rc; i++) {
        rc = buf_addc(b, ',');
        if (!rc)
            rc = sink_add_cell(s->m, &s->esc, b, &ev->cells[i]);
    }
    if (!rc)
        rc = buf_addc(b, ',');
    if (!rc)
        rc = add_time(b, ev->create_us);
    if (!rc)
        rc = buf_addc(b, ',');
    if (!rc)
        rc = add_time(b, ev->update_us);
    if (!rc)
        rc = buf_printf(b, ",'%s',", s->b.now);
    if (!rc)
        rc = sink_add_hashes(b, ev->hashes, ev->hashes ? sink_ncells(cl) : 0);
    return rc ? rc : buf_addc(b, ')');
}

/* Deletes: a tombstone row for an unknown key; on an existing row deleted_at is set when the
 * row is live, and fs_delete_time moves forward, where the delete is newer than both times. */
static int delete_head(const struct cfg_collection *cl, buf *b)
{
    return buf_printf(b,
                      "INSERT INTO `%s` (`%s`, `fs_delete_time`, `deleted_at`, `synced_at`) "
                      "VALUES ",
                      cl->table, sink_key_column(cl));
}

static int delete_tail(buf *b)
{
    int rc = buf_adds(b, " ON DUPLICATE KEY UPDATE ");
    if (!rc)
        rc = guarded(b, "deleted_at", DGUARD " AND `deleted_at` IS NULL", "VALUES(`deleted_at`)");
    if (!rc)
        rc = guarded(b, "synced_at", DGUARD, "VALUES(`synced_at`)");
    if (!rc)
        rc = buf_printf(b,
                        "`fs_delete_time` = IF(%s, VALUES(`fs_delete_time`), "
                        "`fs_delete_time`)",
                        DGUARD);
    return rc;
}

static int delete_row(struct sink *s, const struct item *it, buf *b)
{
    int rc = buf_addc(b, '(');
    if (!rc)
        rc = sink_add_hex(b, it->ev->key, it->ev->keylen);
    if (!rc)
        rc = buf_addc(b, ',');
    if (!rc)
        rc = add_time(b, it->ev->delete_us);
    if (!rc)
        rc = buf_addc(b, ',');
    if (!rc)
        rc = add_time(b, it->ev->delete_us);
    return rc ? rc : buf_printf(b, ",'%s')", s->b.now);
}

/* Position of a row event in the write order: generation, collection, operation, columns. */
struct order {
    int gen, coll, op;
    uint64_t mask;
    size_t idx;
};

static int order_cmp(const void *pa, const void *pb)
{
    const struct order *a = pa, *b = pb;

    if (a->gen != b->gen)
        return a->gen < b->gen ? -1 : 1;
    if (a->coll != b->coll)
        return a->coll < b->coll ? -1 : 1;
    if (a->op != b->op)
        return a->op < b->op ? -1 : 1;
    if (a->mask != b->mask)
        return a->mask < b->mask ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* ---- prepared row statements --------------------------------------------------------------- */

/* Outside single mode, a run's rows go out as prepared multi-row statements: the same text as
 * below with a placeholder for every value, prepared once per shape (collection, operation,
 * columns, row count) and kept while the connection lives. The server then neither parses nor
 * converts the values (the statement's text and guards are those of the text path, and its
 * Records/Duplicates report is counted the same way), and the sink formats and escapes nothing.
 * Statements hold up to PS_ROWS rows, in a few shapes (ps_shape). A row too large for half a
 * statement, single mode (finding a refused row) and a statement the server will not prepare
 * use the text path. Plain prepared statements: any MySQL or MariaDB. */
#define PS_ROWS 512
#define PS_CACHE 48

struct ps {
    MYSQL_STMT *st; /* NULL: a free entry */
    int coll, op;
    uint64_t mask;
    size_t nrows;
    uint64_t used;
};

static void ps_clear(struct sink *s)
{
    for (size_t i = 0; s->ps && i < PS_CACHE; i++)
        if (s->ps[i].st)
            mysql_stmt_close(s->ps[i].st);
    free(s->ps);
    s->ps = NULL;
}

/* Values per row: key, cells, fs_create_time, fs_update_time, synced_at, fs_hashes; or key,
 * fs_delete_time, deleted_at, synced_at. */
static size_t ps_per_row(const struct cfg_collection *cl, bool del)
{
    return del ? 4 : sink_ncells(cl) + 5;
}

/* The prepared statement of a shape, or NULL when the server would not prepare it. */
static MYSQL_STMT *ps_get(struct sink *s, int coll, int op, uint64_t mask, size_t nrows)
{
    const struct cfg_collection *cl = &s->cfg->collections[coll];
    bool del = op == SINK_OP_DELETE;
    size_t per = ps_per_row(cl, del), pick = 0;
    struct ps *p;
    buf sql;
    int rc;

    if (!s->ps)
        s->ps = xcalloc(PS_CACHE, sizeof(*s->ps));
    for (size_t i = 0; i < PS_CACHE; i++) {
        p = &s->ps[i];
        if (p->st && p->coll == coll && p->op == op && p->mask == mask && p->nrows == nrows) {
            p->used = ++s->ps_tick;
            return p->st;
        }
        if (!p->st ? s->ps[pick].st != NULL : s->ps[pick].st && p->used < s->ps[pick].used)
            pick = i;
    }
    p = &s->ps[pick];
    if (p->st)
        mysql_stmt_close(p->st);
    memset(p, 0, sizeof(*p));
    buf_init(&sql, 0);
    rc = del ? delete_head(cl, &sql) : upsert_head(cl, &sql);
    for (size_t r = 0; r < nrows && !rc; r++) {
        rc = buf_adds(&sql, r ? ",(?" : "(?");
        for (size_t k = 1; k < per && !rc; k++)
            rc = buf_adds(&sql, ",?");
        if (!rc)
            rc = buf_addc(&sql, ')');
    }
    if (!rc)
        rc = del ? delete_tail(&sql) : upsert_tail(cl, mask, &sql);
    if (!rc && (p->st = mysql_stmt_init(s->m)) &&
        mysql_stmt_prepare(p->st, sql.p, (unsigned long)sql.len) != 0) {
        log_debug("preparing a statement for `%s` failed (%s); the text statement is used",
                  cl->table, mysql_stmt_error(p->st));
        mysql_stmt_close(p->st);
        p->st = NULL;
    }
    buf_release(&sql);
    if (!p->st)
        return NULL;
    *p = (struct ps){p->st, coll, op, mask, nrows, ++s->ps_tick};
    return p->st;
}

static void bind_bytes(MYSQL_BIND *b, enum enum_field_types type, const void *p, size_t n)
{
    b->buffer_type = type;
    b->buffer = (void *)p;
    b->buffer_length = (unsigned long)n;
    b->length = &b->buffer_length;
}

/* A time, or NULL for 0 (times were checked when the batch was formed). */
static void bind_time(MYSQL_BIND *b, MYSQL_TIME *t, int64_t us)
{
    unsigned f[7];

    if (!us || !time_ok(us)) {
        b->buffer_type = MYSQL_TYPE_NULL;
        return;
    }
    time_split(us, f);
    memset(t, 0, sizeof(*t));
    t->year = f[0];
    t->month = f[1];
    t->day = f[2];
    t->hour = f[3];
    t->minute = f[4];
    t->second = f[5];
    t->second_part = f[6];
    t->time_type = MYSQL_TIMESTAMP_DATETIME;
    b->buffer_type = MYSQL_TYPE_DATETIME;
    b->buffer = t;
    b->buffer_length = sizeof(*t);
}

static void bind_cell(MYSQL_BIND *b, const struct sink_cell *c)
{
    switch (c->kind) {
    case SINK_CELL_NUM: /* the server reads the text as it reads the literal */
    case SINK_CELL_STR:
        bind_bytes(b, MYSQL_TYPE_STRING, c->p, c->len);
        return;
    case SINK_CELL_BIN:
        bind_bytes(b, MYSQL_TYPE_BLOB, c->p, c->len);
        return;
    case SINK_CELL_NULL:
        break;
    }
    b->buffer_type = MYSQL_TYPE_NULL;
}

/* The values of row r of a statement: item it; times in t[0..3), hashes in h. */
static void ps_bind_row(const struct cfg_collection *cl, bool del, const struct item *it,
                        int64_t now_us, MYSQL_BIND *b, MYSQL_TIME *t, unsigned char *h)
{
    const struct sink_event *ev = it->ev;
    size_t nc = sink_ncells(cl), k = 0;

    bind_bytes(&b[k++], MYSQL_TYPE_BLOB, ev->key, ev->keylen);
    if (del) {
        bind_time(&b[k++], &t[0], ev->delete_us);
        bind_time(&b[k++], &t[1], ev->delete_us);
        bind_time(&b[k++], &t[2], now_us);
        return;
    }
    for (size_t i = 0; i < nc; i++)
        bind_cell(&b[k++], &ev->cells[i]);
    bind_time(&b[k++], &t[0], ev->create_us);
    bind_time(&b[k++], &t[1], ev->update_us);
    bind_time(&b[k++], &t[2], now_us);
    if (!ev->hashes || nc * 8 > SINK_HASHES_LEN) {
        b[k].buffer_type = MYSQL_TYPE_NULL;
        return;
    }
    for (size_t i = 0; i < nc; i++)
        for (int x = 0; x < 8; x++)
            h[i * 8 + (size_t)x] = (unsigned char)(ev->hashes[i] >> (8 * x));
    bind_bytes(&b[k], MYSQL_TYPE_BLOB, h, nc * 8);
}

/* Bytes a row takes in an execute packet, near enough. */
static size_t row_bytes(const struct item *it, size_t per)
{
    size_t n = it->ev->keylen + per * 20 + SINK_HASHES_LEN;

    for (size_t i = 0; it->ev->op == SINK_OP_UPSERT && i < it->ev->ncells; i++)
        n += it->ev->cells[i].len;
    return n;
}

/* Rows of the statement that carries the next *rows rows: a few shapes per run (2, 4, 8, 16,
 * 32, then multiples of 16), the free places filled with copies of the last row (which the guard
 * refuses, and which are taken out of the count, as the copy of a lone row in stmt_flush()).
 * Where that would take more than 4 copies and at most 4 rows are left over a multiple of 16,
 * those go in the next statement (*rows is lowered). */
static size_t ps_shape(size_t *rows)
{
    size_t sn = 2;

    while (sn < *rows && sn < 32)
        sn *= 2;
    if (sn >= *rows)
        return sn;
    sn = (*rows + 15) / 16 * 16;
    if (sn - *rows > 4 && *rows % 16 <= 4)
        sn = *rows = *rows / 16 * 16;
    return sn;
}

/* Writes the first rows of a run as prepared statements; *done tells how many (the rest, if
 * any, go as text). */
static int ps_run(struct sink *s, const struct order *o, size_t n, struct stmt *st, size_t *done,
                  fserr *e)
{
    const struct cfg_collection *cl = &s->cfg->collections[o[0].coll];
    bool del = o[0].op == SINK_OP_DELETE;
    size_t per = ps_per_row(cl, del), i = 0;
    int64_t now_us;

    *done = 0;
    if (s->b.single || sink_time_parse(s->b.now, strlen(s->b.now), &now_us) != 0)
        return 0;
    while (i < n) {
        size_t rows = 0, bytes = 0, last, sn;
        MYSQL_STMT *ps;
        while (i + rows < n && rows < PS_ROWS &&
               bytes + row_bytes(&s->b.it[o[i + rows].idx], per) <= s->stmt_max / 2)
            bytes += row_bytes(&s->b.it[o[i + rows++].idx], per);
        if (!rows)
            break; /* a row too large: text */
        sn = ps_shape(&rows);
        last = row_bytes(&s->b.it[o[i + rows - 1].idx], per);
        if (bytes + (sn - rows) * last > s->stmt_max)
            sn = rows > 1 ? rows : 2;
        if (!(ps = ps_get(s, o[0].coll, o[0].op, o[0].mask, sn)))
            break;
        if (s->pcap < sn * per) {
            s->pcap = sn * per;
            s->pbind = xrealloc(s->pbind, s->pcap * sizeof(*s->pbind));
        }
        if (s->prows < sn) {
            s->prows = sn;
            s->ptime = xrealloc(s->ptime, s->prows * 3 * sizeof(*s->ptime));
            s->phash = xrealloc(s->phash, s->prows * SINK_HASHES_LEN);
        }
        memset(s->pbind, 0, sn * per * sizeof(*s->pbind));
        for (size_t r = 0; r < sn; r++)
            ps_bind_row(cl, del, &s->b.it[o[i + (r < rows ? r : rows - 1)].idx], now_us,
                        &s->pbind[r * per], &s->ptime[r * 3], &s->phash[r * SINK_HASHES_LEN]);
        s->last_errno = 0;
        if (mysql_stmt_bind_param(ps, s->pbind) != 0 || mysql_stmt_execute(ps) != 0) {
            int rc = sql_fail(s, st->what, e);
            if (!s->last_errno)
                log_error("%s: %s", st->what, mysql_stmt_error(ps));
            return rc;
        }
        st->nrows = rows;
        account(st, sn - rows);
        st->nrows = 0;
        i += rows;
        *done = i;
    }
    return 0;
}

/* Writes one run: row events of the same generation, collection, operation and columns. */
static int write_run(struct sink *s, const struct order *o, size_t n, fserr *e)
{
    const struct cfg_collection *cl = &s->cfg->collections[o[0].coll];
    bool del = o[0].op == SINK_OP_DELETE;
    char what[128];
    struct stmt st;
    size_t from = 0;
    int rc;

    snprintf(what, sizeof(what), "writing `%s`", cl->table);
    stmt_init(&st, s, what, o[0].op);
    rc = ps_run(s, o, n, &st, &from, e);
    if (!rc && from == n) {
        stmt_release(&st);
        return 0;
    }
    if (!rc)
        rc = del ? delete_head(cl, &st.sql) : upsert_head(cl, &st.sql);
    if (!rc)
        rc = del ? delete_tail(&st.tail) : upsert_tail(cl, o[0].mask, &st.tail);
    stmt_head_done(&st);
    for (size_t i = from; i < n && !rc; i++) {
        struct item *it = &s->b.it[o[i].idx];
        buf_reset(&st.row);
        rc = del ? delete_row(s, it, &st.row) : upsert_row(s, cl, it, &st.row);
        if (!rc)
            rc = stmt_add(&st, it, e);
    }
    if (!rc)
        rc = stmt_flush(&st, e);
    stmt_release(&st);
    return rc;
}

static int write_rows(struct sink *s, fserr *e)
{
    struct batch *b = &s->b;
    struct order *o = xcalloc(b->n ? b->n : 1, sizeof(*o));
    size_t n = 0;
    int rc = 0;

    for (size_t i = 0; i < b->n; i++) {
        const struct item *it = &b->it[i];
        if (it->invalid || (it->ev->op != SINK_OP_UPSERT && it->ev->op != SINK_OP_DELETE))
            continue;
        o[n++] = (struct order){it->gen, it->ev->coll, (int)it->ev->op,
                                it->ev->op == SINK_OP_UPSERT ? it->mask : 0, i};
    }
    qsort(o, n, sizeof(*o), order_cmp);
    for (size_t i = 0, j; i < n && !rc; i = j) {
        for (j = i + 1; j < n && o[j].gen == o[i].gen && o[j].coll == o[i].coll &&
                        o[j].op == o[i].op && o[j].mask == o[i].mask;
             j++)
            ;
        rc = write_run(s, &o[i], j - i, e);
    }
    free(o);
    return rc;
}

/* ---- forming a batch ----------------------------------------------------------------------- */

struct snap {
    bool exists, live;
    int64_t update_us, delete_us; /* INT64_MIN for NULL */
    char **val;                   /* one per cell (owned), NULL for SQL NULL */
    size_t *len;
    size_t ncells;
};

static void snap_free(struct snap *sn)
{
    if (!sn)
        return;
    for (size_t i = 0; i < sn->ncells; i++)
        free(sn->val[i]);
    free(sn->val);
    free(sn->len);
    free(sn);
}

static uint64_t key_hash(int coll, const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)(unsigned)coll;

    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

/* The slot of (coll, key); a new one when `add`, else NULL when absent. */
static struct slot *slot_get(struct batch *b, int coll, const char *key, size_t len, bool add)
{
    uint64_t h = key_hash(coll, key, len);
    size_t mask = b->nslots - 1;

    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        struct slot *sl = &b->slots[i];
        if (sl->coll < 0) {
            if (!add)
                return NULL;
            *sl = (struct slot){coll, key, len, h, 0, NULL};
            return sl;
        }
        if (sl->hash == h && sl->coll == coll && sl->keylen == len &&
            memcmp(sl->key, key, len) == 0)
            return sl;
    }
}

static char *bad_cells(const struct cfg_collection *cl, const struct sink_event *ev)
{
    if (!ev->cells || ev->ncells != sink_ncells(cl))
        return xasprintf("the event has %zu cells; table `%s` maps %zu", ev->ncells, cl->table,
                         sink_ncells(cl));
    for (size_t i = 0; i < ev->ncells; i++) {
        const struct sink_cell *c = &ev->cells[i];
        if (c->kind != SINK_CELL_NULL && !c->p)
            return xasprintf("column `%s`: a value without bytes", cell_name(cl, i));
        if (c->kind == SINK_CELL_NUM && !sink_num_ok(c->p, c->len))
            return xasprintf("column `%s`: \"%.*s\" is not a plain number", cell_name(cl, i),
                             (int)(c->len > 40 ? 40 : c->len), c->p);
    }
    return NULL;
}

/* Why a row event cannot be written at all, or NULL. */
static char *bad_row_event(const struct cfg *cfg, const struct sink_event *ev)
{
    const struct cfg_collection *cl;

    if (ev->coll < 0 || (size_t)ev->coll >= cfg->ncollections)
        return xasprintf("the event names collection #%d, which is not mapped", ev->coll);
    cl = &cfg->collections[ev->coll];
    if (!ev->key || !ev->keylen)
        return xstrdup("the event has no document key");
    if (ev->keylen > (size_t)sink_key_len(cl))
        return xasprintf("the document key has %zu bytes; column `%s`.`%s` holds %d", ev->keylen,
                         cl->table, sink_key_column(cl), sink_key_len(cl));
    if (ev->op == SINK_OP_DELETE)
        return !ev->delete_us || !time_ok(ev->delete_us)
                   ? xasprintf("delete time %lld us is not a DATETIME", (long long)ev->delete_us)
                   : NULL;
    if (!ev->update_us || !time_ok(ev->update_us) || (ev->create_us && !time_ok(ev->create_us)))
        return xasprintf("update time %lld us or create time %lld us is not a DATETIME",
                         (long long)ev->update_us, (long long)ev->create_us);
    return bad_cells(cl, ev);
}

static bool checkpoint_ok(const struct cfg *cfg, const struct sink_event *ev)
{
    char t[SINK_TIME_LEN];
    size_t n;

    if (ev->coll < 0 || (size_t)ev->coll >= cfg->ncollections || !ev->token)
        return false;
    n = strlen(ev->token);
    if (n > SINK_TOKEN_LEN || (ev->read_us && sink_time_format(ev->read_us, t)))
        return false;
    for (size_t i = 0; i < n; i++)
        if (ev->token[i] < 0x21 || ev->token[i] > 0x7e)
            return false;
    return true;
}

/* Sizes the key table, then gives each event its slot, generation, columns, or refusal. */
static void prepare(struct sink *s)
{
    struct batch *b = &s->b;
    size_t rows = 0;

    for (size_t i = 0; i < b->n; i++)
        rows += b->it[i].ev->op == SINK_OP_UPSERT || b->it[i].ev->op == SINK_OP_DELETE;
    for (b->nslots = 16; b->nslots < 2 * rows + 2; b->nslots *= 2)
        ;
    b->slots = xcalloc(b->nslots, sizeof(*b->slots));
    for (size_t i = 0; i < b->nslots; i++)
        b->slots[i].coll = -1;
    b->single = false;
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = &b->it[i];
        struct sink_event *ev = it->ev;
        if (ev->op == SINK_OP_CHECKPOINT && !checkpoint_ok(s->cfg, ev)) {
            log_error("a checkpoint of collection #%d with an unusable token or read time is "
                      "ignored",
                      ev->coll);
            it->invalid = xstrdup("bad checkpoint");
        }
        if (ev->op != SINK_OP_UPSERT && ev->op != SINK_OP_DELETE)
            continue;
        it->invalid = bad_row_event(s->cfg, ev);
        if (it->invalid) {
            log_warn("dead letter: collection #%d key %.*s: %s", ev->coll,
                     (int)(ev->keylen > 200 ? 200 : ev->keylen), ev->key ? ev->key : "",
                     it->invalid);
            continue;
        }
        size_t nc = sink_ncells(&s->cfg->collections[ev->coll]);
        it->slot = slot_get(b, ev->coll, ev->key, ev->keylen, true);
        it->gen = it->slot->count++;
        it->mask = (ev->changed | (ev->create ? ~UINT64_C(0) : 0)) & ALL_CELLS(nc);
    }
}

/* Forgets what one attempt found or decided, keeping the batch's events and refusals. */
static void attempt_reset(struct batch *b)
{
    memset(&b->c, 0, sizeof(b->c));
    for (size_t i = 0; i < b->n; i++) {
        free(b->it[i].refused);
        b->it[i].refused = NULL;
    }
    for (size_t i = 0; i < b->nslots; i++) {
        snap_free(b->slots[i].snap);
        b->slots[i].snap = NULL;
    }
}

/* Committed events wait in s->grave to be freed, and not by the sink thread while a backlog
 * waits: there, every moment between two statements leaves the server idle, and freeing a
 * batch's events took about a microsecond per event. sink_push() frees GRAVE_PER_PUSH of them
 * for each event it queues (so the grave drains faster than batches fill it, and stays about
 * a batch long); the sink thread frees what is left when no full batch waits (bury()), and at
 * its end. */
#define GRAVE_PER_PUSH 2

/* Takes up to max events (all: 0) off the grave; the caller frees them. */
static struct sink_event *unearth(struct sink *s, size_t max)
{
    struct sink_event *out = NULL;

    for (size_t k = 0; s->grave && (!max || k < max); k++) {
        struct sink_event *ev = s->grave;
        s->grave = ev->next;
        ev->next = out;
        out = ev;
    }
    return out;
}

static void free_chain(struct sink_event *ev)
{
    while (ev) {
        struct sink_event *next = ev->next;
        sink_event_free(ev);
        ev = next;
    }
}

/* Frees every committed event. */
static void bury(struct sink *s)
{
    struct sink_event *dead;

    pthread_mutex_lock(&s->mu);
    dead = unearth(s, 0);
    pthread_mutex_unlock(&s->mu);
    free_chain(dead);
}

/* Sends COMMIT; the answer is left to read. Nonzero on failure, as mysql_commit(). */
static int commit_send(struct sink *s)
{
    return mysql_send_query(s->m, "COMMIT", 6) != 0;
}

static int commit_wait(struct sink *s)
{
    return commit_send(s) || mysql_read_query_result(s->m) != 0;
}

static void batch_clear(struct batch *b)
{
    attempt_reset(b);
    for (size_t i = 0; i < b->n; i++) {
        sink_event_free(b->it[i].ev);
        free(b->it[i].invalid);
    }
    free(b->slots);
    b->slots = NULL;
    b->nslots = 0;
    b->n = 0;
}

/* ---- history ------------------------------------------------------------------------------- */

static void snap_row(struct batch *b, int coll, size_t nc, MYSQL_ROW row, unsigned long *len)
{
    struct slot *sl = slot_get(b, coll, row[0] ? row[0] : "", len[0], false);
    struct snap *sn;

    if (!sl || !(sn = sl->snap))
        return;
    sn->exists = true;
    for (size_t i = 0; i < nc; i++) {
        if (!row[1 + i])
            continue;
        sn->val[i] = xstrndup(row[1 + i], len[1 + i]);
        sn->len[i] = len[1 + i];
    }
    if (row[1 + nc] && sink_time_parse(row[1 + nc], len[1 + nc], &sn->update_us) != 0)
        sn->update_us = INT64_MIN;
    if (row[2 + nc] && sink_time_parse(row[2 + nc], len[2 + nc], &sn->delete_us) != 0)
        sn->delete_us = INT64_MIN;
    sn->live = !(row[3 + nc] && row[3 + nc][0] == '1');
}

static int snap_query(struct sink *s, int coll, buf *sql, fserr *e)
{
    size_t nc = sink_ncells(&s->cfg->collections[coll]);
    MYSQL_RES *res;
    MYSQL_ROW row;
    int rc = buf_adds(sql, ") FOR UPDATE");

    if (!rc)
        rc = run_sql(s, sql->p, sql->len, "reading rows for history", e);
    if (rc)
        return rc;
    if (!(res = mysql_store_result(s->m)))
        return sql_fail(s, "reading rows for history", e);
    while ((row = mysql_fetch_row(res)))
        snap_row(&s->b, coll, nc, row, mysql_fetch_lengths(res));
    mysql_free_result(res);
    return 0;
}

/* SELECT ... FOR UPDATE of every key of collection coll in the batch, into the slots' snaps. */
static int snap_collection(struct sink *s, int coll, fserr *e)
{
    const struct cfg_collection *cl = &s->cfg->collections[coll];
    size_t nc = sink_ncells(cl), head, nkeys = 0;
    struct batch *b = &s->b;
    buf sql;
    int rc;

    buf_init(&sql, 0);
    rc = buf_printf(&sql, "SELECT `%s`", sink_key_column(cl));
    for (size_t i = 0; i < nc && !rc; i++)
        rc = buf_printf(&sql, ", `%s`", cell_name(cl, i));
    if (!rc)
        rc = buf_printf(&sql,
                        ", `fs_update_time`, `fs_delete_time`, `deleted_at` IS NOT NULL "
                        "FROM `%s` WHERE `%s` IN (",
                        cl->table, sink_key_column(cl));
    head = sql.len;
    for (size_t i = 0; i < b->nslots && !rc; i++) {
        struct slot *sl = &b->slots[i];
        if (sl->coll != coll)
            continue;
        sl->snap = xcalloc(1, sizeof(*sl->snap));
        sl->snap->ncells = nc;
        sl->snap->val = xcalloc(nc ? nc : 1, sizeof(char *));
        sl->snap->len = xcalloc(nc ? nc : 1, sizeof(size_t));
        sl->snap->update_us = sl->snap->delete_us = INT64_MIN;
        if (nkeys++)
            rc = buf_addc(&sql, ',');
        if (!rc)
            rc = sink_add_hex(&sql, sl->key, sl->keylen);
        if (!rc && sql.len > s->stmt_max) {
            rc = snap_query(s, coll, &sql, e);
            sql.len = head;
            nkeys = 0;
        }
    }
    if (!rc && nkeys)
        rc = snap_query(s, coll, &sql, e);
    buf_release(&sql);
    return rc;
}

static int history_snapshot(struct sink *s, fserr *e)
{
    int rc = 0;

    for (size_t c = 0; c < s->cfg->ncollections && !rc; c++) {
        bool any = false;
        if (!s->cfg->collections[c].history)
            continue;
        for (size_t i = 0; i < s->b.n && !any; i++)
            any = s->b.it[i].slot && s->b.it[i].slot->coll == (int)c;
        if (any)
            rc = snap_collection(s, (int)c, e);
    }
    return rc;
}

enum chg { CHG_NONE, CHG_CREATE, CHG_UPDATE, CHG_DELETE };
static const char *const chg_names[] = {"", "CREATE", "UPDATE", "DELETE"};

static void json_pair(cJSON *obj, const char *name, cJSON *old, cJSON *new_)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddItemToObject(p, "old", old);
    cJSON_AddItemToObject(p, "new", new_);
    cJSON_AddItemToObject(obj, name, p);
}

static void snap_set(struct snap *sn, size_t i, const struct sink_cell *c)
{
    free(sn->val[i]);
    sn->val[i] = c->kind == SINK_CELL_NULL ? NULL : xstrndup(c->p ? c->p : "", c->len);
    sn->len[i] = c->len;
}

/* What an upsert does to the row in sn, as the SQL guard decides; updates sn and fills
 * `changed` with {"column": {"old": .., "new": ..}}. */
static enum chg sim_upsert(const struct cfg_collection *cl, const struct item *it, struct snap *sn,
                           cJSON *changed)
{
    const struct sink_event *ev = it->ev;
    enum chg op;
    uint64_t mask = it->mask;

    if (sn->exists && !(ev->update_us > sn->update_us && ev->update_us > sn->delete_us))
        return CHG_NONE;
    op = sn->exists && sn->live ? CHG_UPDATE : CHG_CREATE;
    if (!sn->exists)
        mask = ALL_CELLS(sn->ncells);
    for (size_t i = 0; i < sn->ncells; i++) {
        const struct sink_cell *c = &ev->cells[i];
        int ty = cell_type(cl, i);
        if (!(mask & (UINT64_C(1) << i)))
            continue;
        if (op == CHG_UPDATE || c->kind != SINK_CELL_NULL)
            json_pair(changed, cell_name(cl, i),
                      op == CHG_CREATE ? cJSON_CreateNull()
                                       : value_json(ty, sn->val[i], sn->len[i], !sn->val[i]),
                      value_json(ty, c->p, c->len, c->kind == SINK_CELL_NULL));
        snap_set(sn, i, c);
    }
    sn->exists = sn->live = true;
    sn->update_us = ev->update_us;
    sn->delete_us = INT64_MIN;
    return op;
}

static enum chg sim_delete(const struct cfg_collection *cl, const struct item *it, struct snap *sn,
                           cJSON *changed)
{
    int64_t t = it->ev->delete_us;
    bool was_live = sn->exists && sn->live;

    if (sn->exists && !(t > sn->update_us && t > sn->delete_us))
        return CHG_NONE;
    if (was_live)
        for (size_t i = 0; i < sn->ncells; i++)
            if (sn->val[i])
                json_pair(changed, cell_name(cl, i),
                          value_json(cell_type(cl, i), sn->val[i], sn->len[i], false),
                          cJSON_CreateNull());
    sn->exists = true;
    sn->live = false;
    sn->delete_us = t;
    return was_live ? CHG_DELETE : CHG_NONE;
}

static int uuid4(char out[37])
{
    unsigned char r[16];

    if (RAND_bytes(r, sizeof(r)) != 1)
        return FS_EINTERNAL;
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    return 0;
}

static const char *source_name(enum sink_source src)
{
    return src == SINK_SRC_RESYNC ? "resync" : src == SINK_SRC_SIMULATED ? "simulated" : "stream";
}

/* The changes row of item it, or 0 without a row (the guard refuses it, or nothing shows). */
static int change_row(struct sink *s, const struct item *it, buf *row, bool *have)
{
    const struct cfg_collection *cl = &s->cfg->collections[it->ev->coll];
    cJSON *changed = cJSON_CreateObject();
    enum chg op = it->ev->op == SINK_OP_UPSERT ? sim_upsert(cl, it, it->slot->snap, changed)
                                               : sim_delete(cl, it, it->slot->snap, changed);
    char id[37], *js = NULL;
    int rc = 0;

    *have = op != CHG_NONE;
    if (*have) {
        rc = uuid4(id);
        js = cJSON_PrintUnformatted(changed);
        if (!rc)
            rc = buf_printf(row, "('%s',", id);
        if (!rc)
            rc = sink_add_str(s->m, &s->esc, row, cl->path, strlen(cl->path));
        if (!rc)
            rc = buf_addc(row, ',');
        if (!rc)
            rc = sink_add_hex(row, it->ev->key, it->ev->keylen);
        if (!rc)
            rc = buf_printf(row, ",'%s',", chg_names[op]);
        if (!rc)
            rc = js ? sink_add_str(s->m, &s->esc, row, js, strlen(js)) : buf_adds(row, "NULL");
        if (!rc)
            rc = buf_addc(row, ',');
        if (!rc)
            rc = add_time(row, op == CHG_DELETE ? it->ev->delete_us : it->ev->update_us);
        if (!rc)
            rc = buf_printf(row, ",'%s','%s')", source_name(it->ev->source), s->b.now);
    }
    free(js);
    cJSON_Delete(changed);
    return rc;
}

static int write_history(struct sink *s, fserr *e)
{
    struct stmt st;
    int rc = 0;
    bool have;

    stmt_init(&st, s, "writing the history", -1);
    rc = buf_printf(&st.sql,
                    "INSERT INTO `%s` (`event_id`, `collection`, `doc_key`, `op`, "
                    "`changed`, `update_time`, `source`, `applied_at`) VALUES ",
                    s->cfg->mysql.changes_table);
    stmt_head_done(&st);
    for (size_t i = 0; i < s->b.n && !rc; i++) {
        struct item *it = &s->b.it[i];
        if (!it->slot || !it->slot->snap || skipped(it))
            continue;
        buf_reset(&st.row);
        rc = change_row(s, it, &st.row, &have);
        if (!rc && have)
            rc = stmt_add(&st, NULL, e);
    }
    if (!rc)
        rc = stmt_flush(&st, e);
    stmt_release(&st);
    return rc;
}

/* ---- checkpoints and dead letters ---------------------------------------------------------- */

static int write_checkpoints(struct sink *s, fserr *e)
{
    struct stmt st;
    int rc;

    stmt_init(&st, s, "writing the checkpoint", -1);
    rc = buf_printf(&st.sql,
                    "INSERT INTO `%s` (`target`, `resume_token`, `read_time`, "
                    "`updated_at`) VALUES ",
                    s->cfg->mysql.checkpoint_table);
    if (!rc)
        rc = buf_adds(&st.tail,
                      " ON DUPLICATE KEY UPDATE `resume_token` = VALUES(`resume_token`),"
                      " `read_time` = VALUES(`read_time`), `updated_at` = VALUES(`updated_at`)");
    stmt_head_done(&st);
    for (size_t i = 0; i < s->b.n && !rc; i++) {
        const struct sink_event *ev = s->b.it[i].ev;
        const char *target;
        if (ev->op != SINK_OP_CHECKPOINT || s->b.it[i].invalid)
            continue;
        target = s->cfg->collections[ev->coll].path;
        buf_reset(&st.row);
        rc = buf_addc(&st.row, '(');
        if (!rc)
            rc = sink_add_str(s->m, &s->esc, &st.row, target, strlen(target));
        if (!rc)
            rc = buf_addc(&st.row, ',');
        if (!rc)
            rc = sink_add_str(s->m, &s->esc, &st.row, ev->token, strlen(ev->token));
        if (!rc)
            rc = buf_addc(&st.row, ',');
        if (!rc)
            rc = add_time(&st.row, ev->read_us);
        if (!rc)
            rc = buf_printf(&st.row, ",'%s')", s->b.now);
        if (!rc)
            rc = stmt_add(&st, NULL, e);
    }
    if (!rc)
        rc = stmt_flush(&st, e);
    stmt_release(&st);
    return rc;
}

/* The full resource name of a row event's document. */
static char *row_doc_name(const struct cfg *cfg, const struct sink_event *ev)
{
    const char *db = cfg->firestore.database ? cfg->firestore.database : "(default)";
    const char *proj = cfg->firestore.project_id ? cfg->firestore.project_id : "";
    int kl = (int)(ev->keylen > SINK_DOCNAME_LEN ? SINK_DOCNAME_LEN : ev->keylen);
    const char *key = ev->key ? ev->key : "";

    if (ev->coll < 0 || (size_t)ev->coll >= cfg->ncollections)
        return xasprintf("projects/%s/databases/%s/documents/?/%.*s", proj, db, kl, key);
    if (cfg->collections[ev->coll].key == CFG_KEY_PATH)
        return xasprintf("projects/%s/databases/%s/documents/%.*s", proj, db, kl, key);
    return xasprintf("projects/%s/databases/%s/documents/%s/%.*s", proj, db,
                     cfg->collections[ev->coll].path, kl, key);
}

/* The row event as JSON, for the dead letter's raw column. Owned by the caller. */
static char *row_raw(const struct cfg *cfg, const struct sink_event *ev)
{
    cJSON *o = cJSON_CreateObject(), *cols;
    char t[SINK_TIME_LEN], *js;

    if (ev->op == SINK_OP_DELETE) {
        sink_time_format(ev->delete_us, t);
        cJSON_AddStringToObject(o, "delete_time", t);
    } else {
        sink_time_format(ev->update_us, t);
        cJSON_AddStringToObject(o, "update_time", t);
        if (ev->coll >= 0 && (size_t)ev->coll < cfg->ncollections && ev->cells &&
            ev->ncells == sink_ncells(&cfg->collections[ev->coll])) {
            const struct cfg_collection *cl = &cfg->collections[ev->coll];
            cols = cJSON_AddObjectToObject(o, "columns");
            for (size_t i = 0; i < ev->ncells; i++)
                cJSON_AddItemToObject(cols, cell_name(cl, i),
                                      value_json(cell_type(cl, i), ev->cells[i].p, ev->cells[i].len,
                                                 ev->cells[i].kind == SINK_CELL_NULL));
        }
    }
    js = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return js;
}

static int dead_row(struct sink *s, int coll, const char *name, const char *reason, const char *raw,
                    buf *row)
{
    unsigned char h[32];
    unsigned int hl = 0;
    size_t nl = strlen(name);
    buf clean;
    int rc;

    if (EVP_Digest(name, nl, h, &hl, EVP_sha256(), NULL) != 1 || hl != 32)
        return FS_EINTERNAL;
    rc = buf_addc(row, '(');
    if (!rc && coll >= 0 && (size_t)coll < s->cfg->ncollections)
        rc = sink_add_str(s->m, &s->esc, row, s->cfg->collections[coll].path,
                          strlen(s->cfg->collections[coll].path));
    else if (!rc)
        rc = buf_adds(row, "NULL");
    if (!rc)
        rc = buf_addc(row, ',');
    if (!rc)
        rc = sink_add_hex(row, name, nl > SINK_DOCNAME_LEN ? SINK_DOCNAME_LEN : nl);
    if (!rc)
        rc = buf_addc(row, ',');
    if (!rc)
        rc = sink_add_hex(row, h, sizeof(h));
    buf_init(&clean, 0);
    utf8_clean(reason, strlen(reason), SINK_REASON_LEN, &clean);
    if (!rc)
        rc = buf_addc(row, ',');
    if (!rc)
        rc = sink_add_str(s->m, &s->esc, row, buf_str(&clean), clean.len);
    buf_reset(&clean);
    if (raw)
        utf8_clean(raw, strlen(raw), SINK_RAW_LEN, &clean);
    if (!rc)
        rc = buf_addc(row, ',');
    if (!rc)
        rc = raw ? sink_add_str(s->m, &s->esc, row, buf_str(&clean), clean.len)
                 : buf_adds(row, "NULL");
    buf_release(&clean);
    return rc ? rc : buf_printf(row, ",'%s','%s',1)", s->b.now, s->b.now);
}

/* The dead-letter row of item it, or 0 with *have false when it is not one. */
static int dead_item_row(struct sink *s, const struct item *it, buf *row, bool *have)
{
    const struct sink_event *ev = it->ev;
    char *name, *raw;
    int rc;

    *have = false;
    if (ev->op == SINK_OP_DEADLETTER) {
        *have = true;
        return dead_row(s, ev->coll, ev->doc_name ? ev->doc_name : "(unknown document)",
                        ev->reason ? ev->reason : "(no reason given)", ev->raw, row);
    }
    if ((ev->op != SINK_OP_UPSERT && ev->op != SINK_OP_DELETE) || !skipped(it))
        return 0;
    *have = true;
    name = row_doc_name(s->cfg, ev);
    raw = row_raw(s->cfg, ev);
    rc = dead_row(s, ev->coll, name, it->invalid ? it->invalid : it->refused, raw, row);
    free(name);
    free(raw);
    return rc;
}

static int write_dead_letters(struct sink *s, fserr *e)
{
    struct stmt st;
    bool have;
    int rc;

    stmt_init(&st, s, "writing the dead letter", -1);
    rc = buf_printf(&st.sql,
                    "INSERT INTO `%s` (`collection`, `doc_name`, `doc_hash`, `reason`, "
                    "`raw`, `first_seen`, `last_seen`, `seen_count`) VALUES ",
                    s->cfg->mysql.dead_letter_table);
    if (!rc)
        rc = buf_adds(&st.tail, " ON DUPLICATE KEY UPDATE `reason` = VALUES(`reason`), `raw` = "
                                "VALUES(`raw`), `last_seen` = VALUES(`last_seen`), `seen_count` = "
                                "`seen_count` + 1");
    stmt_head_done(&st);
    for (size_t i = 0; i < s->b.n && !rc; i++) {
        buf_reset(&st.row);
        rc = dead_item_row(s, &s->b.it[i], &st.row, &have);
        if (!rc && have) {
            rc = stmt_add(&st, NULL, e);
            s->b.c.dead++;
        }
    }
    if (!rc)
        rc = stmt_flush(&st, e);
    stmt_release(&st);
    return rc;
}

/* ---- the transaction and its failures ------------------------------------------------------ */

static void close_conn(struct sink *s)
{
    ps_clear(s);
    if (s->m)
        mysql_close(s->m);
    s->m = NULL;
}

/* The other connection (with its statements) becomes s->m. */
static void swap_conn(struct sink *s)
{
    MYSQL *m = s->m;
    struct ps *ps = s->ps;

    s->m = s->pm;
    s->ps = s->pps;
    s->pm = m;
    s->pps = ps;
}

static void close_both(struct sink *s)
{
    close_conn(s);
    swap_conn(s);
    close_conn(s);
}

/* Server flavour and packet size, for error classification and statement sizes. */
static int session_setup(struct sink *s, fserr *e)
{
    MYSQL_RES *res;
    MYSQL_ROW row;
    long long packet = 0;
    const char *info = mysql_get_server_info(s->m);

    int rc;

    s->mariadb = info && strstr(info, "MariaDB");
    rc = run_sql(s, "SELECT @@max_allowed_packet", 27, "reading max_allowed_packet", e);
    if (rc)
        return rc;
    if (!(res = mysql_store_result(s->m)))
        return sql_fail(s, "reading max_allowed_packet", e);
    if ((row = mysql_fetch_row(res)) && row[0])
        packet = strtoll(row[0], NULL, 10);
    mysql_free_result(res);
    if (packet < 64 * 1024)
        packet = 64 * 1024;
    s->packet_max = (size_t)packet - PACKET_SLACK;
    s->stmt_max = s->packet_max < STMT_TARGET ? s->packet_max : STMT_TARGET;
    if (mysql_autocommit(s->m, 0) != 0)
        return sql_fail(s, "SET autocommit = 0", e);
    return 0;
}

/* Opens the connection (retrying transient failures until the sink stops) and, after a
 * failure of the sink, checks the tables again. */
static int connect_sink(struct sink *s, fserr *e)
{
    MYSQL *m = NULL;
    int rc = sink_conn_open_retry(&s->cfg->mysql, 0, &s->stop, &m, e);

    if (rc)
        return rc;
    s->m = m;
    if (s->need_schema) {
        rc = sink_schema_ensure(s->cfg, m, e);
        if (!rc)
            s->need_schema = false;
    }
    if (!rc)
        rc = session_setup(s, e);
    if (rc)
        close_conn(s);
    else
        log_info("connected to MySQL %s", mysql_get_server_info(m));
    return rc;
}

/* ---- resync pages (SINK_OP_RESYNC_PAGE, see page.h) ----------------------------------------- */

cJSON *sink_value_json(int type, const char *p, size_t n, bool null)
{
    return value_json(type, p, n, null);
}

static bool page_data_error(void *ud, unsigned int err)
{
    struct sink *s = ud;
    s->last_errno = err;
    return data_error(s);
}

/* Applies the batch's resync pages, after its stream rows, in the same transaction. */
static int apply_pages(struct sink *s, fserr *e)
{
    struct batch *b = &s->b;
    int rc = 0;

    for (size_t i = 0; i < b->n && !rc; i++) {
        struct sink_page *pg = b->it[i].ev->page;
        struct sink_page_ctx ctx = {s->m, s->cfg, b->now, s->stmt_max, b->single, 0,
                                    page_data_error, s};
        if (b->it[i].ev->op != SINK_OP_RESYNC_PAGE || !pg)
            continue;
        rc = sink_page_apply(&ctx, pg, e);
        if (rc) {
            s->last_errno = ctx.errnum;
            break;
        }
        b->c.created += pg->got.inserted;
        b->c.updated += pg->got.updated;
        b->c.deleted += pg->got.soft_deleted;
    }
    return rc;
}

/* After the commit: each page goes back to its resync. */
static void pages_done(struct sink *s)
{
    for (size_t i = 0; i < s->b.n; i++) {
        struct sink_event *ev = s->b.it[i].ev;
        struct sink_page *pg = ev->page;
        if (ev->op != SINK_OP_RESYNC_PAGE || !pg || !pg->done)
            continue;
        ev->page = NULL;
        pg->done(pg->ud, pg);
    }
}

/* ---- overlapped commits ---------------------------------------------------------------------- */

/* While a backlog waits, a batch's COMMIT (mostly the server's log flush) need not hold up the
 * next batch: it is sent and left unanswered on its connection, the batch becomes s->pb, and
 * the next batch runs its statements on the other connection. Before that batch sends its own
 * COMMIT, settle() reads the first one's answer: so batches still commit one after the other,
 * in queue order, and a checkpoint never commits before the rows it follows. The next batch may
 * wait for row locks the committing one still holds; the committing one waits for nothing, so
 * no deadlock. When that COMMIT failed (its outcome then unknown), the second batch is rolled
 * back and resolve() replays the first one, then the second, as after any transient failure.
 * Batches that read rows first (history snapshots, resync pages) do not overlap: the batch
 * before them is settled first. swap_side() exchanges the two sides, so that the code of a
 * batch always works on s->b and s->m. */
static bool apply(struct sink *s, bool defer);
static void retire(struct sink *s, bool ok);
static void committed(struct sink *s);

static void swap_side(struct sink *s)
{
    struct batch b = s->b;

    s->b = s->pb;
    s->pb = b;
    swap_conn(s);
}

/* Reads the answer to the pending COMMIT: committed, its events retire; failed, it stays
 * pending (pending_failed) for resolve() to replay, and the error is returned. */
static int settle(struct sink *s, fserr *e)
{
    int rc = 0;

    swap_side(s);
    s->last_errno = 0;
    if (mysql_read_query_result(s->m) != 0) {
        rc = sql_fail(s, "COMMIT", e);
        s->pending_failed = true;
        atomic_fetch_add(&s->st.retries, 1);
        log_warn("%s; that batch will be replayed", e->msg);
    } else {
        s->pending = false;
        committed(s);
        retire(s, true);
    }
    swap_side(s);
    return rc;
}

/* Settles the pending batch while the current one has no open transaction, replaying it when
 * its COMMIT failed. False when the sink stopped first (the batch was dropped). */
static bool resolve(struct sink *s)
{
    fserr e = {0};
    bool ok;

    if (!s->pending || (!s->pending_failed && settle(s, &e) == 0))
        return true;
    swap_side(s);
    s->pending = s->pending_failed = false;
    close_conn(s);
    ok = apply(s, false);
    retire(s, ok);
    swap_side(s);
    return ok;
}

/* Whether the current batch may run while the previous one commits: it reads no rows. */
static bool overlappable(const struct sink *s)
{
    for (size_t i = 0; i < s->b.n; i++) {
        const struct item *it = &s->b.it[i];
        if (it->ev->op == SINK_OP_RESYNC_PAGE ||
            (it->slot && s->cfg->collections[it->ev->coll].history))
            return false;
    }
    return true;
}

/* ---- one attempt ------------------------------------------------------------------------------ */

/* The batch's transaction; with `defer`, COMMIT is sent and not waited for. */
static int attempt(struct sink *s, bool defer, fserr *e)
{
    struct batch *b = &s->b;
    int rc;

    attempt_reset(b);
    sink_time_format(wall_us(), b->now);
    rc = history_snapshot(s, e);
    if (!rc)
        rc = write_rows(s, e);
    if (!rc)
        rc = apply_pages(s, e);
    if (!rc)
        rc = write_history(s, e);
    if (!rc)
        rc = write_checkpoints(s, e);
    if (!rc)
        rc = write_dead_letters(s, e);
    if (!rc && s->pending)
        rc = settle(s, e);
    if (!rc && (defer ? commit_send(s) : commit_wait(s)) != 0)
        rc = sql_fail(s, "COMMIT", e);
    if (rc && e && !e->code) /* assembly, not the server */
        fserr_set(e, rc, "assembling the batch's statements failed: %s", fserr_str(rc));
    return rc;
}

static void committed(struct sink *s)
{
    struct counts *c = &s->b.c;

    atomic_fetch_add(&s->st.created, c->created);
    atomic_fetch_add(&s->st.updated, c->updated);
    atomic_fetch_add(&s->st.deleted, c->deleted);
    atomic_fetch_add(&s->st.unchanged, c->unchanged);
    atomic_fetch_add(&s->st.dead_letters, c->dead);
    atomic_fetch_add(&s->st.batches, 1);
    sink_backoff_reset(&s->bo);
    if (s->health != SINK_OK)
        set_health(s, SINK_OK, 0, "");
}

/* Writes the batch until it commits (with `defer`: until its COMMIT is sent). False when it was
 * given up because the sink is stopping (its events are after the last checkpoint: the next
 * start replays them). */
static bool apply(struct sink *s, bool defer)
{
    fserr e;

    for (;;) {
        int rc;
        fserr_clear(&e);
        s->last_errno = 0;
        rc = s->m ? 0 : connect_sink(s, &e);
        if (!rc)
            rc = attempt(s, defer, &e);
        if (!rc) {
            if (!defer)
                committed(s);
            return true;
        }
        if (rc == FS_ECANCELED)
            return false;
        if (s->m && mysql_rollback(s->m) != 0)
            close_conn(s);
        if (s->pending) { /* settled first; when its COMMIT failed, both are replayed */
            bool theirs = s->pending_failed;
            unsigned int err = s->last_errno;
            if (!resolve(s))
                return false;
            if (theirs)
                continue;
            s->last_errno = err;
        }
        if (!s->b.single && data_error(s)) {
            log_warn("%s; writing this batch a row at a time to find the refused document", e.msg);
            s->b.single = true;
            continue;
        }
        if (fserr_transient(rc)) {
            atomic_fetch_add(&s->st.retries, 1);
            log_warn("%s; the batch will be replayed", e.msg);
            set_health(s, SINK_RETRYING, rc, e.msg);
            if (!nap(s, sink_backoff_next(&s->bo)))
                return false;
            continue;
        }
        log_error("%s; the sink stops writing and tries again in %lld ms", e.msg,
                  (long long)s->retry_ms);
        set_health(s, SINK_FAILED, rc, e.msg);
        close_conn(s);
        s->need_schema = true;
        if (!nap(s, s->retry_ms))
            return false;
    }
}

/* ---- the thread ---------------------------------------------------------------------------- */

static void take(struct sink *s)
{
    struct batch *b = &s->b;
    struct sink_event *ev = s->head;

    s->head = ev->next;
    if (!s->head)
        s->tail = NULL;
    ev->next = NULL;
    s->taken++;
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->it = xrealloc(b->it, b->cap * sizeof(*b->it));
    }
    b->it[b->n++] = (struct item){.ev = ev};
}

/* Moves events from the queue into the batch: waits for one, then takes more until
 * batch_max_rows, batch_max_delay_ms after the first, a flush or a stop. False when the sink
 * is stopping and the queue is empty. */
static bool collect(struct sink *s)
{
    size_t max = (size_t)(s->cfg->agent.batch_max_rows > 0 ? s->cfg->agent.batch_max_rows : 1);
    int64_t deadline;

    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->stop_req)
        pthread_cond_wait(&s->wake, &s->mu);
    deadline = mono_ms() + s->cfg->agent.batch_max_delay_ms;
    for (;;) {
        while (s->head && s->b.n < max)
            take(s);
        if (s->b.n >= max || s->stop_req || s->flush_to > s->retired || mono_ms() >= deadline)
            break;
        wait_until(s, &s->wake, deadline);
    }
    pthread_mutex_unlock(&s->mu);
    return s->b.n > 0;
}

/* True when a full batch is already queued: the next batch will follow at once. */
static bool backlog(struct sink *s)
{
    size_t max = (size_t)(s->cfg->agent.batch_max_rows > 0 ? s->cfg->agent.batch_max_rows : 1);
    bool full;

    pthread_mutex_lock(&s->mu);
    full = s->pushed - s->taken >= max;
    pthread_mutex_unlock(&s->mu);
    return full;
}

static void retire(struct sink *s, bool ok)
{
    size_t n = s->b.n;
    struct sink_event *first = NULL, *last = NULL;

    if (ok)
        pages_done(s);
    for (size_t i = 0; ok && i < n; i++) { /* committed: to the grave (see bury()) */
        struct sink_event *ev = s->b.it[i].ev;
        ev->next = first;
        first = ev;
        if (!last)
            last = ev;
        s->b.it[i].ev = NULL;
    }
    batch_clear(&s->b);
    pthread_mutex_lock(&s->mu);
    if (last) {
        last->next = s->grave;
        s->grave = first;
    }
    if (ok)
        s->retired += n; /* abandoned events stay counted: the thread is ending */
    atomic_store(&s->st.queued, s->pushed - s->retired);
    atomic_store(&s->st.committed, s->retired);
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
    call_notify(s);
}

static void *run(void *arg)
{
    struct sink *s = arg;

    for (;;) {
        bool ok, defer, full = backlog(s);
        if (!full)
            bury(s);
        if (s->pending && !full && !resolve(s))
            break;
        if (!collect(s))
            break;
        prepare(s);
        defer = backlog(s);
        if (s->pending && !overlappable(s) && !resolve(s)) {
            retire(s, false);
            break;
        }
        ok = apply(s, defer);
        if (ok && defer) { /* committing: the next batch runs on the other connection */
            swap_side(s);
            s->pending = true;
            s->pending_failed = false;
            continue;
        }
        retire(s, ok);
        if (!ok)
            break;
    }
    resolve(s);
    bury(s);
    close_both(s);
    pthread_mutex_lock(&s->mu);
    s->running = false;
    pthread_cond_broadcast(&s->done);
    pthread_mutex_unlock(&s->mu);
    call_notify(s);
    return NULL;
}

/* ---- public -------------------------------------------------------------------------------- */

struct sink *sink_new(const struct cfg *cfg)
{
    struct sink *s = xcalloc(1, sizeof(*s));
    pthread_condattr_t ca;

    s->cfg = cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_cond_init(&s->done, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&s->stop, false);
    s->retry_ms = FAILED_RETRY_MS;
    s->health = SINK_OK;
    return s;
}

void sink_set_notify(struct sink *s, void (*fn)(void *ud), void *ud)
{
    s->notify = fn;
    s->notify_ud = ud;
}

void sink_set_retry_interval(struct sink *s, int64_t ms)
{
    s->retry_ms = ms > 0 ? ms : FAILED_RETRY_MS;
}

int sink_start(struct sink *s, int64_t max_wait_ms, fserr *e)
{
    const struct cfg_mysql *my = &s->cfg->mysql;
    MYSQL *m = NULL;
    int rc;

    if (s->started)
        return fserr_set(e, FS_EINVAL, "the sink is already started");
    rc = sink_schema_validate(s->cfg, e);
    if (!rc)
        rc = sink_conn_open_retry(my, max_wait_ms, &s->stop, &m, e);
    if (rc)
        return rc;
    s->m = m;
    rc = sink_schema_ensure(s->cfg, m, e);
    if (!rc)
        rc = session_setup(s, e);
    if (rc) {
        close_conn(s);
        return rc;
    }
    sink_backoff_init(&s->bo, my->reconnect_min_ms, my->reconnect_max_ms,
                      (uint64_t)wall_us() ^ ((uint64_t)getpid() << 32));
    s->started = s->running = true;
    rc = pthread_create(&s->th, NULL, run, s);
    if (rc) {
        s->started = s->running = false;
        close_conn(s);
        return fserr_set(e, FS_EINTERNAL, "cannot start the sink thread: %s", strerror(rc));
    }
    return 0;
}

size_t sink_push(struct sink *s, struct sink_event *ev)
{
    struct sink_event *dead;
    size_t n;

    ev->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = ev;
    else
        s->head = ev;
    s->tail = ev;
    s->pushed++;
    n = (size_t)(s->pushed - s->retired);
    atomic_store(&s->st.queued, n);
    atomic_store(&s->st.pushed, s->pushed);
    pthread_cond_signal(&s->wake);
    dead = unearth(s, GRAVE_PER_PUSH);
    pthread_mutex_unlock(&s->mu);
    free_chain(dead);
    return n;
}

int sink_flush(struct sink *s, fserr *e)
{
    uint64_t target;
    int rc = 0;

    pthread_mutex_lock(&s->mu);
    target = s->pushed;
    if (s->flush_to < target)
        s->flush_to = target;
    pthread_cond_signal(&s->wake);
    while (s->retired < target && s->running && s->health != SINK_FAILED)
        pthread_cond_wait(&s->done, &s->mu);
    if (s->retired >= target)
        rc = 0;
    else if (s->health == SINK_FAILED)
        rc = fserr_set(e, s->fail_code ? s->fail_code : FS_EMYSQL, "%s", s->why);
    else
        rc = fserr_set(e, FS_ECANCELED, "the sink is not running");
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void sink_stop(struct sink *s)
{
    if (!s || !s->started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop_req = true;
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    s->started = false;
    close_both(s);
}

void sink_free(struct sink *s)
{
    if (!s)
        return;
    sink_stop(s);
    free_chain(s->head); /* the queue is a chain too */
    s->head = s->tail = NULL;
    bury(s);
    batch_clear(&s->b);
    free(s->b.it);
    batch_clear(&s->pb);
    free(s->pb.it);
    free(s->esc.p);
    close_both(s);
    free(s->pbind);
    free(s->ptime);
    free(s->phash);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

const struct sink_stats *sink_stats(const struct sink *s)
{
    return &s->st;
}

enum sink_health sink_health(const struct sink *s, char *why, size_t n)
{
    struct sink *w = (struct sink *)s; /* the lock is not part of the value */
    enum sink_health h;

    pthread_mutex_lock(&w->mu);
    h = w->health;
    if (why && n)
        snprintf(why, n, "%s", h == SINK_OK ? "" : w->why);
    pthread_mutex_unlock(&w->mu);
    return h;
}
