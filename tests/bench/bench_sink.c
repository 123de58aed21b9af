/*
 * bench_sink.c - how fast the MySQL sink writes, against the best a plain client could do on the
 * same server (aim: the sink reaches at least 0.7 of the plain loop's rows per second).
 *
 * The server: a private MariaDB started for this run by bench_util.h (mariadb-install-db into a
 * fresh directory under TMPDIR, then svc_mariadb_start() of tests/harness/svc.c: the same
 * mariadbd options the integration tests use, binlog on, InnoDB flushing at every commit),
 * stopped at the end whatever happens (atexit, and a handler for SIGINT/SIGTERM/SIGHUP). Without mariadbd the
 * program says so and prints no figure.
 *
 * The data: an employees-like collection of NROWS documents with six mapped columns: name
 * VARCHAR(200) (quotes and non-ASCII included), employee_no BIGINT, salary DECIMAL(12,2) (from a
 * double), active BOOLEAN, hired_at DATETIME(6), and city VARCHAR(100) from the nested
 * address.city; the config leaves the agent's defaults alone, so the table also has the extra
 * JSON column (NULL here: every field of the documents is mapped). Every row is first created,
 * then updated once; each update changes one or two columns (row i: i % 4 picks salary / name /
 * salary+city / active+hired_at), so that an update batch holds four sets of changed columns,
 * as a live stream would.
 *
 * (a) The sink, through the agent's own path: each version is built as a struct fsdoc (the
 *     stand-in for decoding; included in the time), handed to diff_upsert(), whose emit callback
 *     does sink_push(); the config is the default one (batch_max_rows 500, batch_max_delay_ms
 *     0, queue_max_events 20000), and the queue stays bounded as agent/daemon.c keeps it: when
 *     a push leaves queue_max_events queued, the producer waits (woken by the sink's notify
 *     callback) until sink_stats()->queued is down to half. The phase ends when sink_flush()
 *     returns: everything is committed.
 * (b) The ceiling: on its own connection, the same NROWS rows as multi-row
 *     INSERT ... ON DUPLICATE KEY UPDATE statements of PLAIN_BATCH rows, one transaction each,
 *     into a plain table holding the key and the same six columns (no bookkeeping columns, no
 *     guard, no secondary index); then the NROWS updates the same way (the whole row sent,
 *     every column assigned from VALUES()).
 * Each phase (creates, then updates) runs the two loops in alternating chunks of CHUNK rows
 * (sink, plain, plain, sink, sink, ...), so that both meet the server in the same state and
 * the machine's slow moments fall on both; each chunk starts only once mariadbd has gone quiet
 * (InnoDB purge and flushing of the previous chunk no longer use a CPU), and a sink chunk ends
 * when sink_flush() returns.
 *
 * Measured per phase: wall clock (CLOCK_MONOTONIC) from the first document to the last commit
 * of each chunk, summed, giving rows/s and the ratio sink / plain; the ratio of each pair of
 * chunks, whose median is the figure held against the aim: this machine's MariaDB now and then
 * stalls a commit for hundreds of milliseconds (disk write-back), which moves a whole-phase
 * ratio by ±0.1 between runs depending on which loop it hits, and moves one chunk of eight
 * out of the median; the client's CPU per row (getrusage of this process:
 * all threads, i.e. building the documents, the diff and the sink thread with libmariadb, or the
 * plain loop), with the split between the producing thread and the sink thread (RUSAGE_THREAD)
 * and, measured apart, what building the fsdoc values costs; and mariadbd's CPU per row (from
 * /proc/PID/stat), to show where the time goes.
 *
 * Checked after every phase, exiting non-zero otherwise: the sink's counters (every row created,
 * then every row updated; nothing unchanged, retried or dead-lettered), and MySQL's own view of
 * both tables: row count, the sums of salary, active, name and city lengths and hired_at, and the
 * number of rows at the phase's update time, against what the generator says; finally the two
 * tables must hold the same six values for every key.
 *
 * Output: progress lines, then one "FIGURE|name|value|unit|aim|meaning" line per figure for
 * scripts/bench.sh (an aim written ">=x" is a floor). Figures, not verdicts.
 */
#include "agent/config.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "diff/diff.h"
#include "firestore/value.h"
#include "mysql/sink.h"
#include "tests/bench/bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NROWS 200000
#define PLAIN_BATCH 500
#define CHUNK 25000 /* rows per chunk: the sink's and the plain loop's chunks alternate */
#define NCHUNKS (NROWS / CHUNK)
#define DBNAME BENCH_DB
#define FS_DB "projects/bench/databases/(default)"
#define DOC_PREFIX FS_DB "/documents/employees/"
#define T0_US INT64_C(1795420800000000)                /* 2026-11-23T08:00:00Z: creates */
#define T1_US (T0_US + INT64_C(86400) * 1000000)       /* a day later: updates */
#define HIRE0_US (T0_US - INT64_C(86400) * 1000000 * 4000) /* hires go back from here */
#define SETTLE_MS 250  /* mariadbd is quiet when it used under 5% of a CPU over this */
#define SETTLE_MAX_S 20

static const char CONFIG[] =
    "[firestore]\nproject_id = \"bench\"\n"
    "[mysql]\nhost = \"localhost\"\nsocket = \"%s\"\nuser = \"root\"\n"
    "database = \"" DBNAME "\"\ncreate_tables = true\n"
    "[mysql.tls]\nmode = \"disabled\"\n"
    "[[collections]]\npath = \"employees\"\ntable = \"employees\"\nkey = \"id\"\n"
    "[collections.columns]\n"
    "name = { field = \"name\", type = \"VARCHAR(200)\" }\n"
    "employee_no = { field = \"employeeNo\", type = \"BIGINT\" }\n"
    "salary = { field = \"salary\", type = \"DECIMAL(12,2)\" }\n"
    "active = { field = \"active\", type = \"BOOLEAN\" }\n"
    "hired_at = { field = \"hiredAt\", type = \"DATETIME(6)\" }\n"
    "city = { field = \"address.city\", type = \"VARCHAR(100)\" }\n";

static const char PLAIN_DDL[] =
    "CREATE TABLE plain_employees (id VARBINARY(1500) NOT NULL PRIMARY KEY, "
    "name VARCHAR(200), employee_no BIGINT, salary DECIMAL(12,2), active BOOLEAN, "
    "hired_at DATETIME(6), city VARCHAR(100)) "
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

static const char PLAIN_HEAD[] =
    "INSERT INTO plain_employees (id, name, employee_no, salary, active, hired_at, city) VALUES ";
static const char PLAIN_TAIL[] =
    " ON DUPLICATE KEY UPDATE name = VALUES(name), employee_no = VALUES(employee_no), "
    "salary = VALUES(salary), active = VALUES(active), hired_at = VALUES(hired_at), "
    "city = VALUES(city)";

static const char *const FIRST[] = {"Ana", "Bea", "Zoë", "João", "Mia", "Noah", "Léa", "Sven"};
static const char *const LAST[] = {"O'Neil", "Sousa", "Müller", "Smith & Co", "Øster", "Kim"};
static const char *const CITY[] = {"Lisbon", "München", "São Paulo", "Zürich", "Kraków", "東京"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the server, and stopping it whatever happens ------------------------------------------ */

/* ---- clocks ---------------------------------------------------------------------------------- */

static double rusage_us(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* mariadbd's user+system CPU so far (clock-tick resolution). */
static double server_cpu_us(void)
{
    return bench_cpu_us((pid_t)bench_st.db_pid);
}

/* Waits until mariadbd is quiet: the previous phase's purge and page flushing are done. */
static void settle(void)
{
    bench_sleep_ms(SETTLE_MS);
    if (!bench_quiet((pid_t)bench_st.db_pid, SETTLE_MS, SETTLE_MAX_S))
        printf("mariadbd still busy after %d s; measuring anyway\n", SETTLE_MAX_S);
}

/* ---- the documents --------------------------------------------------------------------------- */

/* One version of employee i: the values of the six columns and the document's times. */
struct emp {
    char id[16];
    char name[80];
    int64_t no;
    int64_t cents; /* salary * 100; multiples of 25, exact as a double */
    bool active;
    int64_t hired_us;
    const char *city;
    int64_t create_us, update_us;
};

/* phase 0: the create; phase 1: the update, changing one or two columns by i % 4. */
static void emp_gen(size_t i, int phase, struct emp *e)
{
    snprintf(e->id, sizeof(e->id), "emp-%06zu", i);
    snprintf(e->name, sizeof(e->name), "%s %s %zu", FIRST[i % COUNT(FIRST)],
             LAST[(i / COUNT(FIRST)) % COUNT(LAST)], i);
    e->no = 100000 + (int64_t)i;
    e->cents = (30000 + (int64_t)(i * 7919 % 60000)) * 100 + (int64_t)(i % 4) * 25;
    e->active = i % 7 != 0;
    e->hired_us = HIRE0_US + (int64_t)(i % 3000) * INT64_C(86400000000) + (int64_t)(i % 977) * 1001;
    e->city = CITY[i % COUNT(CITY)];
    e->create_us = T0_US + (int64_t)i * 1000 + 1;
    e->update_us = e->create_us;
    if (phase == 0)
        return;
    e->update_us = T1_US + (int64_t)i * 1000 + 1;
    switch (i % 4) {
    case 0:
        e->cents += 100000;
        break;
    case 1:
        strncat(e->name, " Jr.", sizeof(e->name) - strlen(e->name) - 1);
        break;
    case 2:
        e->cents += 50000;
        e->city = CITY[(i + 1) % COUNT(CITY)];
        break;
    default:
        e->active = !e->active;
        e->hired_us += INT64_C(86400000000);
        break;
    }
}

static struct fs_time fs_time_of(int64_t us)
{
    return (struct fs_time){us / 1000000, (int32_t)(us % 1000000) * 1000};
}

static void set_string(fsval *v, const char *s)
{
    v->type = FSVAL_STRING;
    v->u.s.len = strlen(s);
    v->u.s.p = xstrndup(s, v->u.s.len);
}

static fsval *add_field(struct fsval_field *f, const char *name)
{
    f->name = xstrdup(name);
    f->name_len = strlen(name);
    fsval_init(&f->v);
    return &f->v;
}

/* The document of e, as fsdoc_decode() would leave it (fields sorted by name). */
static void emp_doc(const struct emp *e, struct fsdoc *doc)
{
    struct fsval_field *f = xcalloc(6, sizeof(*f)), *city = xcalloc(1, sizeof(*city));
    fsval *v;
    char name[sizeof(DOC_PREFIX) + sizeof(e->id)];

    fsdoc_init(doc);
    snprintf(name, sizeof(name), DOC_PREFIX "%s", e->id);
    doc->name = xstrdup(name);
    doc->create_time = fs_time_of(e->create_us);
    doc->update_time = fs_time_of(e->update_us);
    v = add_field(&f[0], "active");
    v->type = FSVAL_BOOL;
    v->u.b = e->active;
    v = add_field(&f[1], "address");
    v->type = FSVAL_MAP;
    v->u.map.fields = city;
    v->u.map.n = 1;
    set_string(add_field(city, "city"), e->city);
    v = add_field(&f[2], "employeeNo");
    v->type = FSVAL_INT;
    v->u.i = e->no;
    v = add_field(&f[3], "hiredAt");
    v->type = FSVAL_TIMESTAMP;
    v->u.ts = fs_time_of(e->hired_us);
    set_string(add_field(&f[4], "name"), e->name);
    v = add_field(&f[5], "salary");
    v->type = FSVAL_DOUBLE;
    v->u.d = (double)e->cents / 100.0;
    doc->fields.type = FSVAL_MAP;
    doc->fields.u.map.fields = f;
    doc->fields.u.map.n = 6;
}

/* CPU per document of building it and releasing it (emp_gen, emp_doc, fsdoc_release): the part
 * of the producer's time that stands in for decoding, not the agent's work. */
static double doc_build_us(void)
{
    double c0 = rusage_us(RUSAGE_THREAD);
    struct emp e;

    for (size_t i = 0; i < NROWS; i++) {
        struct fsdoc doc;
        emp_gen(i, 1, &e);
        emp_doc(&e, &doc);
        fsdoc_release(&doc);
    }
    return (rusage_us(RUSAGE_THREAD) - c0) / NROWS;
}

/* What MySQL must hold after a phase, from the generator. */
struct expect {
    long long rows, cents, active, name_chars, city_chars, hired_s, hired_frac;
};

static long long utf8_chars(const char *s)
{
    long long n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static struct expect expected(int phase)
{
    struct expect x = {0};
    struct emp e;
    const int64_t base = INT64_C(946684800) * 1000000; /* 2000-01-01, for TIMESTAMPDIFF */

    for (size_t i = 0; i < NROWS; i++) {
        emp_gen(i, phase, &e);
        x.rows++;
        x.cents += e.cents;
        x.active += e.active;
        x.name_chars += utf8_chars(e.name);
        x.city_chars += utf8_chars(e.city);
        x.hired_s += (e.hired_us - base) / 1000000;
        x.hired_frac += (e.hired_us - base) % 1000000;
    }
    return x;
}

/* ---- checking what MySQL holds ----------------------------------------------------------------- */

/* The integers of the first row of sql into out[0..n). */
static void query_row(MYSQL *m, const char *sql, long long *out, unsigned n)
{
    MYSQL_RES *r;
    MYSQL_ROW row;

    if (mysql_query(m, sql) != 0 || !(r = mysql_store_result(m))) {
        fprintf(stderr, "bench_sink: %s: %s\n", sql, mysql_error(m));
        bench_die("query failed", NULL);
    }
    row = mysql_fetch_row(r);
    if (!row || mysql_num_fields(r) < n)
        bench_die("query returned no row", NULL);
    for (unsigned i = 0; i < n; i++)
        out[i] = row[i] ? atoll(row[i]) : -1;
    mysql_free_result(r);
}

static void verify_table(MYSQL *m, const char *table, int phase, bool sink_table)
{
    static const char *const what[] = {"rows",        "SUM(salary) in cents", "SUM(active)",
                                       "name chars",  "city chars",           "hired_at seconds",
                                       "hired_at us", "rows at this version", "live rows"};
    const char *since = phase ? "'2026-11-24 08:00:00'" : "'2026-11-23 08:00:00'";
    struct expect x = expected(phase);
    long long want[9] = {x.rows,    x.cents,      x.active, x.name_chars, x.city_chars,
                         x.hired_s, x.hired_frac, x.rows,   x.rows};
    long long got[9];
    char sql[1024], extra[256] = "";
    unsigned n = sink_table ? 9 : 7;

    if (sink_table) /* the sink's bookkeeping: this phase's update times, no tombstone */
        snprintf(extra, sizeof(extra),
                 ", SUM(fs_update_time >= %s AND fs_update_time < %s + INTERVAL 1 DAY), "
                 "SUM(deleted_at IS NULL AND fs_delete_time IS NULL)",
                 since, since);
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*), CAST(SUM(salary * 100) AS SIGNED), SUM(active), "
             "SUM(CHAR_LENGTH(name)), SUM(CHAR_LENGTH(city)), "
             "SUM(TIMESTAMPDIFF(SECOND, '2000-01-01', hired_at)), SUM(MICROSECOND(hired_at))%s "
             "FROM %s",
             extra, table);
    query_row(m, sql, got, n);
    for (unsigned i = 0; i < n; i++)
        if (got[i] != want[i]) {
            fprintf(stderr, "bench_sink: table %s after the %s: %s is %lld, expected %lld\n",
                    table, phase ? "updates" : "creates", what[i], got[i], want[i]);
            bench_die("MySQL does not hold what was written", NULL);
        }
}

static void verify_same(MYSQL *m)
{
    long long n;

    query_row(m,
              "SELECT COUNT(*) FROM employees e JOIN plain_employees p ON p.id = e.id "
              "WHERE e.name <=> p.name AND e.employee_no <=> p.employee_no AND "
              "e.salary <=> p.salary AND e.active <=> p.active AND e.hired_at <=> p.hired_at "
              "AND e.city <=> p.city",
              &n, 1);
    if (n != NROWS) {
        fprintf(stderr, "bench_sink: %lld of %d keys hold the same values in both tables\n", n,
                NROWS);
        bench_die("the sink and the plain loop disagree", NULL);
    }
}

/* ---- (a) the sink, through diff_upsert ------------------------------------------------------ */

struct run {
    struct cfg *cfg;
    struct diff *diff;
    struct sink *sink;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled by the sink's notify callback */
    uint64_t events, pauses;
};

struct result {
    double wall, cpu_us, producer_us, server_us; /* sums over the chunks */
    uint64_t pauses;
    double chunk[NCHUNKS]; /* wall clock of each chunk */
    size_t nchunks;
};

static void on_sink_notify(void *ud)
{
    struct run *r = ud;
    pthread_mutex_lock(&r->mu);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* What agent/daemon.c does: at queue_max_events the stream pauses, and it resumes at half. */
static void wait_for_room(struct run *r)
{
    const uint64_t low = (uint64_t)r->cfg->agent.queue_max_events / 2;
    const struct sink_stats *st = sink_stats(r->sink);

    r->pauses++;
    pthread_mutex_lock(&r->mu);
    while (atomic_load(&st->queued) > low) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L; /* a safety net; the notify callback wakes us first */
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    pthread_mutex_unlock(&r->mu);
    if (sink_health(r->sink, NULL, 0) == SINK_FAILED)
        bench_die("the sink failed", NULL);
}

static int on_event(void *ud, struct sink_event *ev)
{
    struct run *r = ud;

    r->events++;
    if (sink_push(r->sink, ev) >= (size_t)r->cfg->agent.queue_max_events)
        wait_for_room(r);
    return 0;
}

static void sink_setup(struct run *r)
{
    char src[sizeof(CONFIG) + 400];
    fserr e = {0};
    buf errs;

    snprintf(src, sizeof(src), CONFIG, bench_st.env.mysql_socket);
    buf_init(&errs, 0);
    if (cfg_load_mem("bench_sink.toml", src, strlen(src), &r->cfg, &errs, &e) != 0) {
        fprintf(stderr, "%s", buf_str(&errs));
        bench_die("cfg_load_mem", &e);
    }
    buf_release(&errs);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (diff_new(r->cfg, FS_DB, on_event, r, &r->diff, &e) != 0)
        bench_die("diff_new", &e);
    r->sink = sink_new(r->cfg);
    sink_set_notify(r->sink, on_sink_notify, r);
    if (sink_start(r->sink, 10000, &e) != 0)
        bench_die("sink_start", &e);
}

static void sink_teardown(struct run *r)
{
    sink_free(r->sink);
    diff_free(r->diff);
    cfg_free(r->cfg);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
}

/* Rows from..to of a phase through the sink, its figures added to *out. */
static void sink_chunk(struct run *r, int phase, size_t from, size_t to, struct result *out)
{
    double w0, c0, p0, s0, wall;
    fserr e = {0};
    struct emp em;

    settle();
    s0 = server_cpu_us();
    p0 = rusage_us(RUSAGE_THREAD);
    c0 = rusage_us(RUSAGE_SELF);
    w0 = bench_now();
    for (size_t i = from; i < to; i++) {
        struct fsdoc doc;
        emp_gen(i, phase, &em);
        emp_doc(&em, &doc);
        if (diff_upsert(r->diff, 0, &doc, SINK_SRC_STREAM, &e) != 0)
            bench_die("diff_upsert", &e);
    }
    if (sink_flush(r->sink, &e) != 0)
        bench_die("sink_flush", &e);
    wall = bench_now() - w0;
    out->wall += wall;
    out->cpu_us += rusage_us(RUSAGE_SELF) - c0;
    out->producer_us += rusage_us(RUSAGE_THREAD) - p0;
    out->server_us += server_cpu_us() - s0;
    out->chunk[out->nchunks++] = wall;
}

/* The sink's counters before a phase, checked after it. */
struct sink_counts {
    uint64_t created, updated, unchanged, dead, retries, batches, events, pauses;
};

static struct sink_counts sink_counts(const struct run *r)
{
    const struct sink_stats *st = sink_stats(r->sink);

    return (struct sink_counts){atomic_load(&st->created),   atomic_load(&st->updated),
                                atomic_load(&st->unchanged), atomic_load(&st->dead_letters),
                                atomic_load(&st->retries),   atomic_load(&st->batches),
                                r->events,                   r->pauses};
}

static void sink_check(const struct run *r, int phase, const struct sink_counts *before,
                       struct result *out)
{
    const struct sink_stats *st = sink_stats(r->sink);
    uint64_t created = before->created, updated = before->updated;
    uint64_t unchanged = before->unchanged, dead = before->dead;
    uint64_t retries = before->retries, batches = before->batches;
    uint64_t ev0 = before->events;

    out->pauses = r->pauses - before->pauses;
    created = atomic_load(&st->created) - created;
    updated = atomic_load(&st->updated) - updated;
    unchanged = atomic_load(&st->unchanged) - unchanged;
    dead = atomic_load(&st->dead_letters) - dead;
    retries = atomic_load(&st->retries) - retries;
    batches = atomic_load(&st->batches) - batches;
    printf("sink %s: %" PRIu64 " events, %" PRIu64 " batches, %" PRIu64
           " pauses at the queue bound; created %" PRIu64 ", updated %" PRIu64
           ", unchanged %" PRIu64 ", dead letters %" PRIu64 ", retries %" PRIu64 "\n",
           phase ? "updates" : "creates", r->events - ev0, batches, out->pauses, created, updated,
           unchanged, dead, retries);
    if (r->events - ev0 != NROWS || (phase ? updated : created) != NROWS ||
        (phase ? created : updated) != 0 || unchanged || dead || retries)
        bench_die("the sink's counters do not show one write per document", NULL);
}

/* ---- (b) the plain loop: the ceiling ----------------------------------------------------- */

static void add_quoted(MYSQL *m, buf *b, const char *s)
{
    char esc[2 * 200 + 1];
    size_t n = strlen(s);
    unsigned long k = mysql_real_escape_string(m, esc, s, (unsigned long)n);

    buf_addc(b, '\'');
    buf_add(b, esc, k);
    buf_addc(b, '\'');
}

static void add_datetime(buf *b, int64_t us)
{
    char t[40];

    bench_time(t, sizeof(t), us, true);
    buf_printf(b, "'%s'", t);
}

static void plain_row(MYSQL *m, buf *b, const struct emp *e)
{
    buf_printf(b, "('%s',", e->id);
    add_quoted(m, b, e->name);
    buf_printf(b, ",%" PRId64 ",%" PRId64 ".%02d,%d,", e->no, e->cents / 100,
               (int)(e->cents % 100), e->active ? 1 : 0);
    add_datetime(b, e->hired_us);
    buf_addc(b, ',');
    add_quoted(m, b, e->city);
    buf_addc(b, ')');
}

static unsigned long long plain_send(MYSQL *m, buf *sql)
{
    unsigned long long n;

    buf_adds(sql, PLAIN_TAIL);
    if (mysql_real_query(m, sql->p, (unsigned long)sql->len) != 0 ||
        (n = mysql_affected_rows(m), mysql_commit(m) != 0)) {
        fprintf(stderr, "bench_sink: plain loop: %s\n", mysql_error(m));
        bench_die("the plain loop failed", NULL);
    }
    buf_reset(sql);
    buf_adds(sql, PLAIN_HEAD);
    return n;
}

/* Rows from..to of a phase through the plain loop, its figures added to *out; returns the rows
 * the server reports affected. */
static unsigned long long plain_chunk(MYSQL *m, int phase, size_t from, size_t to,
                                      struct result *out)
{
    unsigned long long affected = 0;
    double w0, c0, s0, wall;
    struct emp em;
    buf sql;
    size_t rows = 0;

    buf_init(&sql, 0);
    buf_adds(&sql, PLAIN_HEAD);
    settle();
    s0 = server_cpu_us();
    c0 = rusage_us(RUSAGE_SELF);
    w0 = bench_now();
    for (size_t i = from; i < to; i++) {
        emp_gen(i, phase, &em);
        if (rows++)
            buf_addc(&sql, ',');
        plain_row(m, &sql, &em);
        if (rows == PLAIN_BATCH) {
            affected += plain_send(m, &sql);
            rows = 0;
        }
    }
    if (rows)
        affected += plain_send(m, &sql);
    wall = bench_now() - w0;
    out->wall += wall;
    out->cpu_us += rusage_us(RUSAGE_SELF) - c0;
    out->server_us += server_cpu_us() - s0;
    out->producer_us = out->cpu_us;
    out->chunk[out->nchunks++] = wall;
    buf_release(&sql);
    return affected;
}

static void plain_check(int phase, unsigned long long affected)
{
    printf("plain %s: %d statements of %d rows, %llu rows affected\n",
           phase ? "updates" : "creates", (NROWS + PLAIN_BATCH - 1) / PLAIN_BATCH, PLAIN_BATCH,
           affected);
    /* without CLIENT_FOUND_ROWS: 1 per inserted row, 2 per changed row */
    if (affected != (unsigned long long)NROWS * (phase ? 2 : 1))
        bench_die("the plain loop did not write one row per document", NULL);
}

/* ---- one phase: the two loops in alternating chunks ---------------------------------------- */

/* Chunk k of the sink, then chunk k of the plain loop; the other way round for odd k, so that
 * neither always meets the server just after the other. */
static void run_phase(struct run *r, MYSQL *m, MYSQL *v, int phase, struct result *rs,
                      struct result *rp)
{
    struct sink_counts before = sink_counts(r);
    unsigned long long affected = 0;

    memset(rs, 0, sizeof(*rs));
    memset(rp, 0, sizeof(*rp));
    for (size_t k = 0; k < NCHUNKS; k++) {
        if (k % 2)
            affected += plain_chunk(m, phase, k * CHUNK, (k + 1) * CHUNK, rp);
        sink_chunk(r, phase, k * CHUNK, (k + 1) * CHUNK, rs);
        if (!(k % 2))
            affected += plain_chunk(m, phase, k * CHUNK, (k + 1) * CHUNK, rp);
    }
    sink_check(r, phase, &before, rs);
    plain_check(phase, affected);
    verify_table(v, "employees", phase, true);
    verify_table(v, "plain_employees", phase, false);
    verify_same(v);
}

/* ---- report ------------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The ratios plain time / sink time of the pairs of chunks, in ascending order, in q. */
static void chunk_ratios(const struct result *rs, const struct result *rp, double q[NCHUNKS])
{
    for (size_t k = 0; k < NCHUNKS; k++)
        q[k] = rp->chunk[k] / rs->chunk[k];
    qsort(q, NCHUNKS, sizeof(q[0]), cmp_double);
}

static double median(const double q[NCHUNKS])
{
    return (q[(NCHUNKS - 1) / 2] + q[NCHUNKS / 2]) / 2;
}

static void report_phase(const char *what, const struct result *rs, const struct result *rp,
                         double build_us)
{
    double q[NCHUNKS];

    chunk_ratios(rs, rp, q);
    printf("%s: sink %.2f s (%.0f rows/s), plain %.2f s (%.0f rows/s), ratio %.2f\n", what,
           rs->wall, NROWS / rs->wall, rp->wall, NROWS / rp->wall, rp->wall / rs->wall);
    printf("  ratio per chunk of %d rows: min %.2f, median %.2f, max %.2f\n", CHUNK, q[0],
           median(q), q[NCHUNKS - 1]);
    printf("  client CPU per row: sink %.2f us = producer %.2f (of which %.2f building the "
           "fsdoc) + sink thread %.2f; plain loop %.2f us\n",
           rs->cpu_us / NROWS, rs->producer_us / NROWS, build_us,
           (rs->cpu_us - rs->producer_us) / NROWS, rp->cpu_us / NROWS);
    printf("  mariadbd CPU per row: sink %.2f us, plain loop %.2f us\n", rs->server_us / NROWS,
           rp->server_us / NROWS);
}

static double median_ratio(const struct result *rs, const struct result *rp)
{
    double q[NCHUNKS];

    chunk_ratios(rs, rp, q);
    return median(q);
}

static void figures(const struct result *sc, const struct result *pc, const struct result *su,
                    const struct result *pu)
{
    bench_figure("sink_create_rows_per_s", "%.0f", NROWS / sc->wall, "rows/s", "-",
           "sink: created rows per second, wall clock (fsdoc -> diff_upsert -> sink_push -> "
           "commit, default batching)");
    bench_figure("plain_create_rows_per_s", "%.0f", NROWS / pc->wall, "rows/s", "-",
           "plain loop: inserted rows per second, 500-row INSERT ... ON DUPLICATE KEY UPDATE "
           "per transaction (the ceiling)");
    bench_figure("sink_create_vs_plain", "%.2f", median_ratio(sc, pc), "x", ">=0.7",
           "sink creates / plain creates, rows per second: median over 8 alternating chunks");
    bench_figure("sink_create_vs_plain_total", "%.2f", pc->wall / sc->wall, "x", "-",
           "the same over the whole phase (moved by the machine's commit stalls)");
    bench_figure("sink_update_rows_per_s", "%.0f", NROWS / su->wall, "rows/s", "-",
           "sink: updated rows per second (one or two columns changed per document)");
    bench_figure("plain_update_rows_per_s", "%.0f", NROWS / pu->wall, "rows/s", "-",
           "plain loop: updated rows per second, whole rows in 500-row upserts (the ceiling)");
    bench_figure("sink_update_vs_plain", "%.2f", median_ratio(su, pu), "x", ">=0.7",
           "sink updates / plain updates, rows per second: median over 8 alternating chunks");
    bench_figure("sink_update_vs_plain_total", "%.2f", pu->wall / su->wall, "x", "-",
           "the same over the whole phase (moved by the machine's commit stalls)");
    bench_figure("sink_cpu_per_create", "%.0f", sc->cpu_us * 1e3 / NROWS, "ns", "-",
           "client CPU per created row, all threads: fsdoc, diff, queue, SQL text, libmariadb");
    bench_figure("sink_cpu_per_update", "%.0f", su->cpu_us * 1e3 / NROWS, "ns", "-",
           "client CPU per updated row, all threads");
    bench_figure("plain_cpu_per_create", "%.0f", pc->cpu_us * 1e3 / NROWS, "ns", "-",
           "plain loop's client CPU per inserted row (SQL text, libmariadb)");
    bench_figure("plain_cpu_per_update", "%.0f", pu->cpu_us * 1e3 / NROWS, "ns", "-",
           "plain loop's client CPU per updated row");
}

int main(void)
{
    struct run r;
    struct result sc, pc, su, pu;
    MYSQL *m, *v; /* the plain loop's connection (transactions); checks (autocommit) */
    double t0, build;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!bench_on_path("mariadbd") || !bench_on_path("mariadb-install-db")) {
        printf("mariadbd or mariadb-install-db not found: no sink figures (make deps installs "
               "mariadb-server)\n");
        return 0;
    }
    log_set_level(LOG_LVL_WARN);
    memset(&r, 0, sizeof(r));
    t0 = bench_now();
    bench_st.prog = "bench_sink";
    bench_db_up("bench-sink"); /* also creates the database DBNAME (BENCH_DB) */
    m = bench_connect();
    if (mysql_query(m, PLAIN_DDL) != 0) {
        fprintf(stderr, "bench_sink: %s\n", mysql_error(m));
        bench_die("creating the plain table", NULL);
    }
    mysql_autocommit(m, 0);
    v = bench_connect();
    sink_setup(&r);
    printf("private MariaDB %s up in %.1f s; %d rows, six mapped columns, batches of %lld rows, "
           "queue bound %lld events\n",
           mysql_get_server_info(m), bench_now() - t0, NROWS, (long long)r.cfg->agent.batch_max_rows,
           (long long)r.cfg->agent.queue_max_events);

    run_phase(&r, m, v, 0, &sc, &pc);
    run_phase(&r, m, v, 1, &su, &pu);
    printf("MySQL holds %d rows in each table after each phase, with the generator's values, "
           "the same in both tables\n",
           NROWS);
    build = doc_build_us();
    report_phase("creates", &sc, &pc, build);
    report_phase("updates", &su, &pu, build);
    figures(&sc, &pc, &su, &pu);

    mysql_close(v);
    mysql_close(m);
    sink_teardown(&r);
    bench_cleanup();
    return 0;
}
