/*
 * bench_pipeline.c - apply throughput of the whole pipeline: the real release `firesync` agent
 * fed by the fake Firestore server at full speed, writing into MariaDB, against the ceiling of
 * a plain batched-upsert loop into the same MariaDB in the same run (aim: at least 0.7 of it).
 *
 * Where bench_sink measures the sink alone (documents built in memory, handed to diff_upsert),
 * this one measures what a deployment gets: the agent process (WebChannel long-poll on curl and
 * libuv, chunk framer, JSON tokenizer, listen state, value decoding, diff, applied index, the
 * sink thread and libmariadb) from the first byte the server offers to the last commit.
 *
 * The services: a private MariaDB started for this run (bench_util.h: mariadb-install-db into a
 * fresh directory under TMPDIR, svc_mariadb_start() as the integration tests do, binlog on,
 * InnoDB flushing at every commit), the fake server (tests/fake/fake_fs.c, a thread of this
 * process) as the agent's Firestore, through `firestore.emulator_host` (plain HTTP on
 * loopback), and the agent, FIRESYNC_BIN or ./firesync (scripts/bench.sh runs `make firesync`
 * first), with its default batching (500 rows, 50 ms, a queue of 20,000 events) and automatic
 * resyncs off. All of them are stopped at exit whatever happens. Without mariadbd the program
 * says so and prints no figure.
 *
 * The data: NDOCS employees documents with six mapped columns (bench_util.h: a VARCHAR name
 * with quotes, `&` and non-ASCII, BIGINT, DECIMAL from a double, BOOLEAN, DATETIME(6) from a
 * timestamp, a VARCHAR city from the nested address.city), about 500 bytes of JSON each. After
 * an initial load of the empty collection (ADD, CURRENT, NO_CHANGE; the agent is healthy):
 *   1. creates: every document pushed once, as the incremental documentChange messages a
 *      listening client receives, a consistent point (global NO_CHANGE with a new resume token)
 *      every EVERY documents and after the last;
 *   2. updates: every document again with a newer update time and one or two columns changed
 *      (document i: i % 4 picks salary / name / salary+city / active+hired_at).
 * The fake gives each message a WebChannel array of its own; when the agent's next long-poll GET
 * arrives, every array queued meanwhile goes out in one chunk (production batches the same
 * way), so chunks grow as large as the agent lags. The pusher keeps at most WINDOW arrays beyond
 * the agent's acknowledgement (AID): the server never waits for the agent before that, and the
 * fake's queue stays short (its per-push cost grows with it).
 *
 * Timed per phase: from the first push to the moment the last consistent point's resume token
 * is in firesync_checkpoint (read every 5 ms by primary key): the sink commits a checkpoint in
 * the transaction that holds, or follows, every row it covers, so every row is committed then.
 * The agent's CPU (utime + stime of the process, /proc/PID/stat, all threads) over the phase,
 * per document; the CPU of this process (the fake server and the pusher, which share the two
 * cores with the agent) and of mariadbd are printed beside it.
 *
 * The ceiling, in the same run: on its own connection, the same NDOCS rows as multi-row
 * INSERT ... ON DUPLICATE KEY UPDATE statements of PLAIN_BATCH rows, one transaction each, into
 * a plain table of the key and the same six columns (no bookkeeping column, no guard, no
 * secondary index); then the NDOCS updates the same way, whole rows. This is bench_sink's plain
 * loop (written again here on bench_util.h's documents: each benchmark is one object file, see
 * the Makefile). Phases interleave (pipeline creates, plain creates, pipeline updates, plain
 * updates), each once mariadbd and the agent have gone quiet.
 *
 * Checked after each phase, exiting non-zero otherwise: MySQL holds NDOCS live rows at the
 * phase's update times, MariaDB's row counter (TABLE_STATISTICS) moved by one write per
 * document, no dead letter; the plain loop wrote one row per document; both tables hold the
 * same six values for every key.
 *
 * Output: progress lines, then one "FIGURE|name|value|unit|aim|meaning" line per figure for
 * scripts/bench.sh (an aim written ">=x" is a floor). Figures, not verdicts.
 */
#include "common/buf.h"
#include "common/err.h"
#include "tests/bench/bench_util.h"
#include "tests/fake/fake_fs.h"
#include "tests/harness/agent_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define NDOCS 200000
#define EVERY 1000 /* documents between consistent points */
#define WINDOW 600
#define PLAIN_BATCH 500

static const char PLAIN_DDL[] =
    "CREATE TABLE plain_employees (id VARBINARY(1500) NOT NULL PRIMARY KEY, "
    "name VARCHAR(200), employee_no BIGINT, salary DECIMAL(12,2), active BOOLEAN, "
    "hired_at DATETIME(6), city VARCHAR(100)) "
    "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

static const char PLAIN_UPSERT[] =
    " ON DUPLICATE KEY UPDATE name = VALUES(name), employee_no = VALUES(employee_no), "
    "salary = VALUES(salary), active = VALUES(active), hired_at = VALUES(hired_at), "
    "city = VALUES(city)";

struct phase {
    double wall, agent_us, self_us, db_us;
};

static double self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static long long rows_written(MYSQL *m, const char *table)
{
    return bench_scalar(m,
                        "SELECT IFNULL(SUM(ROWS_CHANGED), 0) FROM information_schema."
                        "TABLE_STATISTICS WHERE TABLE_SCHEMA = '" BENCH_DB
                        "' AND TABLE_NAME = '%s'",
                        table);
}

/* Before a phase: mariadbd's purge and flushing and the agent's last status write are over. */
static void settle(pid_t agent)
{
    if (!bench_quiet((pid_t)bench_st.db_pid, 250, 20) || !bench_quiet(agent, 250, 10))
        printf("mariadbd or the agent still busy; measuring anyway\n");
}

/* ---- the pipeline ---------------------------------------------------------------------------- */

static void pipeline_phase(struct agent_env *ae, fake_fs *fs, MYSQL *v, int version,
                           struct phase *out)
{
    char token[32], since[40];
    long long w0 = rows_written(v, "employees");
    double c0, s0, d0, t0, t1;
    struct bench_docs docs;
    size_t json_bytes;

    bench_docs_make(&docs, 0, NDOCS, version);
    settle(ae->pid);
    c0 = bench_cpu_us(ae->pid);
    d0 = bench_cpu_us((pid_t)bench_st.db_pid);
    s0 = self_cpu_us();
    t0 = bench_now();
    bench_docs_push(fs, &docs, EVERY, WINDOW, token, sizeof(token));
    t1 = bench_wait_token(v, token, 600);
    out->wall = t1 - t0;
    out->agent_us = bench_cpu_us(ae->pid) - c0;
    out->db_us = bench_cpu_us((pid_t)bench_st.db_pid) - d0;
    out->self_us = self_cpu_us() - s0;
    json_bytes = (docs.text.len - NDOCS) / NDOCS; /* each text ends with a NUL */
    bench_docs_release(&docs);

    bench_time(since, sizeof(since), BENCH_T0_US + version * BENCH_DAY_US, true);
    {
        long long at = bench_scalar(v,
                                    "SELECT COUNT(*) FROM employees WHERE fs_update_time >= '%s' "
                                    "AND fs_update_time < '%s' + INTERVAL 1 DAY AND deleted_at "
                                    "IS NULL AND fs_delete_time IS NULL",
                                    since, since);
        long long rows = bench_scalar(v, "SELECT COUNT(*) FROM employees");
        long long dead = bench_scalar(v, "SELECT COUNT(*) FROM firesync_dead_letter");
        long long written = rows_written(v, "employees") - w0;

        printf("pipeline %s: %.2f s; %lld rows, %lld live at this version, %lld row writes, "
               "%lld dead letters; %zu bytes of JSON a document; the fake so far: %ld GETs, %ld "
               "arrays sent\n",
               version ? "updates" : "creates", out->wall, rows, at, written, dead, json_bytes,
               fake_fs_stat(fs, FAKE_FS_GETS), fake_fs_stat(fs, FAKE_FS_ARRAYS_SENT));
        if (rows != NDOCS || at != NDOCS || written != NDOCS || dead != 0)
            bench_die("MySQL does not hold one write per document", NULL);
    }
}

/* ---- the ceiling: a plain batched upsert loop ------------------------------------------------ */

static void plain_value(MYSQL *m, buf *b, const char *s)
{
    char esc[2 * 200 + 1];
    unsigned long n = mysql_real_escape_string(m, esc, s, (unsigned long)strlen(s));

    buf_addc(b, '\'');
    buf_add(b, esc, n);
    buf_addc(b, '\'');
}

static void plain_row(MYSQL *m, buf *b, const struct bench_emp *e)
{
    char hired[40];

    bench_time(hired, sizeof(hired), e->hired_us, true);
    buf_printf(b, "('%s',", e->id);
    plain_value(m, b, e->name);
    buf_printf(b, ",%" PRId64 ",%" PRId64 ".%02d,%d,'%s',", e->no, e->cents / 100,
               (int)(e->cents % 100), e->active, hired);
    plain_value(m, b, e->city);
    buf_addc(b, ')');
}

static unsigned long long plain_commit(MYSQL *m, buf *sql)
{
    unsigned long long n;

    buf_adds(sql, PLAIN_UPSERT);
    if (mysql_real_query(m, sql->p, (unsigned long)sql->len) != 0)
        bench_dief("plain loop: %s", mysql_error(m));
    n = mysql_affected_rows(m);
    if (mysql_commit(m) != 0)
        bench_dief("plain loop commit: %s", mysql_error(m));
    buf_reset(sql);
    return n;
}

static void plain_phase(MYSQL *m, pid_t agent, int version, struct phase *out)
{
    unsigned long long affected = 0;
    struct bench_emp e;
    double s0, d0, t0;
    buf sql;

    buf_init(&sql, 0);
    settle(agent);
    d0 = bench_cpu_us((pid_t)bench_st.db_pid);
    s0 = self_cpu_us();
    t0 = bench_now();
    for (size_t i = 0; i < NDOCS; i++) {
        if (!sql.len)
            buf_adds(&sql, "INSERT INTO plain_employees (id, name, employee_no, salary, active, "
                           "hired_at, city) VALUES ");
        else
            buf_addc(&sql, ',');
        bench_emp_gen(i, version, &e);
        plain_row(m, &sql, &e);
        if ((i + 1) % PLAIN_BATCH == 0 || i + 1 == NDOCS)
            affected += plain_commit(m, &sql);
    }
    out->wall = bench_now() - t0;
    out->self_us = self_cpu_us() - s0;
    out->db_us = bench_cpu_us((pid_t)bench_st.db_pid) - d0;
    out->agent_us = 0;
    buf_release(&sql);
    printf("plain %s: %.2f s, %d statements of %d rows, %llu rows affected\n",
           version ? "updates" : "creates", out->wall, (NDOCS + PLAIN_BATCH - 1) / PLAIN_BATCH,
           PLAIN_BATCH, affected);
    /* without CLIENT_FOUND_ROWS: 1 per inserted row, 2 per changed row */
    if (affected != (unsigned long long)NDOCS * (version ? 2 : 1))
        bench_die("the plain loop did not write one row per document", NULL);
}

static void verify_same(MYSQL *v)
{
    long long n = bench_scalar(
        v, "SELECT COUNT(*) FROM employees e JOIN plain_employees p ON p.id = e.id "
           "WHERE e.name <=> p.name AND e.employee_no <=> p.employee_no AND e.salary <=> p.salary "
           "AND e.active <=> p.active AND e.hired_at <=> p.hired_at AND e.city <=> p.city");
    if (n != NDOCS)
        bench_dief("%lld of %d keys hold the same six values in both tables", n, NDOCS);
}

/* ---- report -------------------------------------------------------------------------------- */

static void report(const char *what, const struct phase *p, const struct phase *c)
{
    printf("%s: pipeline %.0f docs/s, plain loop %.0f rows/s, ratio %.2f\n", what, NDOCS / p->wall,
           NDOCS / c->wall, c->wall / p->wall);
    printf("  CPU per document: agent %.2f us, this process (fake server + pusher) %.2f us, "
           "mariadbd %.2f us (plain loop: client %.2f us, mariadbd %.2f us)\n",
           p->agent_us / NDOCS, p->self_us / NDOCS, p->db_us / NDOCS, c->self_us / NDOCS,
           c->db_us / NDOCS);
}

static void figures(const struct phase *pc, const struct phase *cc, const struct phase *pu,
                    const struct phase *cu)
{
    bench_figure("pipeline_create_docs_per_s", "%.0f", NDOCS / pc->wall, "docs/s", "-",
                 "whole pipeline: fake server -> firesync agent (release) -> MariaDB, created "
                 "rows per second, first push to last commit");
    bench_figure("pipeline_plain_create_rows_s", "%.0f", NDOCS / cc->wall, "rows/s", "-",
                 "the ceiling in the same run: 500-row INSERT ... ON DUPLICATE KEY UPDATE per "
                 "transaction into a plain table");
    bench_figure("pipeline_create_vs_plain", "%.2f", cc->wall / pc->wall, "x", ">=0.7",
                 "pipeline creates / plain creates, rows per second");
    bench_figure("pipeline_update_docs_per_s", "%.0f", NDOCS / pu->wall, "docs/s", "-",
                 "whole pipeline, updated rows per second (one or two columns changed each)");
    bench_figure("pipeline_plain_update_rows_s", "%.0f", NDOCS / cu->wall, "rows/s", "-",
                 "the ceiling: whole rows in 500-row upserts");
    bench_figure("pipeline_update_vs_plain", "%.2f", cu->wall / pu->wall, "x", ">=0.7",
                 "pipeline updates / plain updates, rows per second");
    bench_figure("agent_cpu_per_create", "%.2f", pc->agent_us / NDOCS, "us", "-",
                 "agent process CPU (user+sys, all threads) per created document, HTTP to SQL");
    bench_figure("agent_cpu_per_update", "%.2f", pu->agent_us / NDOCS, "us", "-",
                 "agent process CPU per updated document");
}

int main(void)
{
    struct phase pc, cc, pu, cu;
    struct agent_env ae;
    fake_fs *fs;
    MYSQL *m, *v; /* the plain loop's connection (one transaction per statement); checks */
    double t0 = bench_now();

    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_st.prog = "bench_pipeline";
    if (!bench_on_path("mariadbd") || !bench_on_path("mariadb-install-db")) {
        printf("mariadbd or mariadb-install-db not found: no pipeline figures (make deps "
               "installs mariadb-server)\n");
        return 0;
    }
    if (!bench_find_firesync())
        bench_die("no agent binary: set FIRESYNC_BIN or run `make firesync` first", NULL);
    bench_db_up("bench-pipeline");
    m = bench_connect();
    v = bench_connect();
    bench_exec(m, PLAIN_DDL);
    mysql_autocommit(m, 0);
    if (!(fs = fake_fs_start()))
        bench_die("the fake server did not start", NULL);
    fake_fs_set_noop_on_empty_get(fs, false);
    bench_agent_env(&ae, fs, NULL);
    bench_agent_up(&ae, fs, "INIT", false);
    printf("private MariaDB %s, fake server and agent %s (pid %d) up in %.1f s; %d documents, "
           "six mapped columns, a consistent point every %d\n",
           mysql_get_server_info(m), getenv("FIRESYNC_BIN"), (int)ae.pid, bench_now() - t0, NDOCS,
           EVERY);

    pipeline_phase(&ae, fs, v, 0, &pc);
    plain_phase(m, ae.pid, 0, &cc);
    verify_same(v);
    pipeline_phase(&ae, fs, v, 1, &pu);
    plain_phase(m, ae.pid, 1, &cu);
    verify_same(v);
    printf("both tables hold the same six values for all %d keys after each phase\n", NDOCS);
    bench_agent_down(&ae);
    report("creates", &pc, &cc);
    report("updates", &pu, &cu);
    figures(&pc, &cc, &pu, &cu);

    fake_fs_free(fs);
    mysql_close(v);
    mysql_close(m);
    bench_cleanup();
    return 0;
}
