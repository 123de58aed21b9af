/*
 * bench_resync.c - a full resync of 100,000 documents already in step with MySQL: how long it
 * takes and how many MySQL writes it makes (aim: 0), beside the time the emulator takes just to
 * serve the same pages.
 *
 * The services: a private MariaDB and the Firestore emulator started for this run with the test
 * harness's svc_up() in a fresh directory under TMPDIR, stopped at the end whatever happens
 * (atexit, and a handler for SIGINT/SIGTERM/SIGHUP); with FIRESYNC_TEST_DIR set, the services
 * already running there are used instead. Without mariadbd or the emulator the program says so
 * and prints no figure.
 *
 * The data: NDOCS employees-like documents (name with quotes and non-ASCII, BIGINT, DECIMAL from
 * a double, BOOLEAN, DATETIME(6), a nested city, and an unmapped field for the extra JSON
 * column) written to the emulator in commits of 500.
 *
 * The path: the agent's own pieces on one libuv loop, as agent/daemon.c joins them: the HTTP
 * client, the diff, the MySQL sink (its thread, its queue) and agent/resync.c, with pages of
 * PAGE documents and no pacing (pages_per_second very high: the figure is the work, not the
 * read-quota guard). The emulator scans the whole collection for every runQuery (about 0.8 s
 * per request at 100,000 documents, whatever the page size or cursor, measured), so pages of
 * the default 500 would spend 150 s per pass in the emulator alone; PAGE keeps the run short.
 *   1. a first resync fills the empty table (100,000 inserts);
 *   2. the measured one: the same snapshot compared again; MariaDB's own row counter
 *      (information_schema.TABLE_STATISTICS, userstat on) and the sink's counters must not move;
 *   3. the floor: the same pages read with firestore/rest.c alone (request, reply, decode), no
 *      MySQL at all.
 * Checked, exiting non-zero otherwise: the first run wrote every row, the second found no
 * difference, and both read every document.
 *
 * Output: progress lines, then one "FIGURE|name|value|unit|aim|meaning" line per figure for
 * scripts/bench.sh. Figures, not verdicts.
 */
#include "agent/config.h"
#include "agent/resync.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "diff/diff.h"
#include "firestore/http.h"
#include "firestore/rest.h"
#include "mysql/sink.h"
#include "tests/harness/svc.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define NDOCS 100000
#define PER_COMMIT 500
#define PAGE 5000
#define PROJECT "bench-resync"
#define DBNAME "bench_resync"
#define DATABASE "projects/" PROJECT "/databases/(default)"

static char own_dir[256]; /* services started here, stopped at exit */

static void die(const char *what, const fserr *e)
{
    fprintf(stderr, "bench_resync: %s%s%s\n", what, e ? ": " : "", e ? e->msg : "");
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void stop_services(void)
{
    char cmd[300];

    if (!own_dir[0])
        return;
    svc_down(own_dir);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", own_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_resync: could not remove %s\n", own_dir);
    own_dir[0] = '\0';
}

static void on_signal(int sig)
{
    (void)sig;
    exit(1); /* runs stop_services */
}

/* The services of FIRESYNC_TEST_DIR, or new ones. False when they cannot run here. */
static bool services(struct svc_env *env)
{
    const char *tmp = getenv("TMPDIR");
    fserr e = {0};

    if (!getenv("FIRESYNC_TEST_DIR")) {
        if (access(SVC_EMULATOR_BIN, X_OK) != 0 || system("command -v mariadbd >/dev/null") != 0)
            return false;
        snprintf(own_dir, sizeof(own_dir), "%s/bench-resync.XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(own_dir))
            die("mkdtemp", NULL);
        atexit(stop_services);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGHUP, on_signal);
        printf("starting MariaDB and the Firestore emulator in %s\n", own_dir);
        fflush(stdout);
        if (svc_up(own_dir, &e) != 0)
            die("svc_up", &e);
        setenv("FIRESYNC_TEST_DIR", own_dir, 1);
    }
    if (svc_env_load(env, &e) != 0)
        die("svc_env_load", &e);
    return true;
}

/* ---- the data -------------------------------------------------------------------------------- */

static void load_documents(const struct svc_env *env)
{
    static const char *const first[] = {"Ana", "Zoë", "João", "O'Neil", "Léa", "Sven \"S\""};
    static const char *const city[] = {"Lisboa", "München", "São Paulo", "東京"};
    buf w, out;
    fserr e = {0};
    long status = 0;
    double t0 = now_s();

    buf_init(&w, 0);
    buf_init(&out, 1 << 20);
    for (int from = 0; from < NDOCS; from += PER_COMMIT) {
        buf_reset(&w);
        buf_adds(&w, "{\"writes\":[");
        for (int i = from; i < from + PER_COMMIT; i++) {
            const char *n = first[i % 6];
            buf_printf(&w,
                       "%s{\"update\":{\"name\":\"" DATABASE "/documents/employees/e%06d\","
                       "\"fields\":{\"name\":{\"stringValue\":\"",
                       i > from ? "," : "", i);
            for (; *n; n++)
                buf_printf(&w, *n == '"' ? "\\%c" : "%c", *n);
            buf_printf(
                &w,
                " %d\"},\"no\":{\"integerValue\":\"%d\"},\"salary\":{\"doubleValue\":"
                "%d.25},\"active\":{\"booleanValue\":%s},\"hired\":{\"timestampValue\":"
                "\"2026-01-05T09:%02d:00.123456Z\"},\"address\":{\"mapValue\":{\"fields\":"
                "{\"city\":{\"stringValue\":\"%s\"}}}},\"note\":{\"stringValue\":\"n%d\"}}}}",
                i, i, 1000 + i % 5000, i % 3 ? "true" : "false", i % 60, city[i % 4], i);
        }
        buf_adds(&w, "]}");
        buf_reset(&out);
        if (svc_http(env, "POST", "/v1/" DATABASE "/documents:commit", buf_str(&w), &out, &status,
                     &e) != 0 ||
            status != 200)
            die("commit to the emulator failed", status != 200 ? NULL : &e);
    }
    buf_release(&w);
    buf_release(&out);
    printf("wrote %d documents to the emulator in %.1f s\n", NDOCS, now_s() - t0);
}

static struct cfg *make_config(const struct svc_env *env)
{
    char src[2048];
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};

    snprintf(src, sizeof(src),
             "[firestore]\nproject_id = \"" PROJECT "\"\nemulator_host = \"127.0.0.1:%d\"\n"
             "[mysql]\nsocket = \"%s\"\nuser = \"root\"\ndatabase = \"" DBNAME "\"\n"
             "[resync]\npages_per_second = 1000000.0\npage_size = %d\n"
             "[[collections]]\npath = \"employees\"\ntable = \"employees\"\n"
             "[collections.columns]\n"
             "name = { field = \"name\", type = \"VARCHAR(200)\" }\n"
             "employee_no = { field = \"no\", type = \"BIGINT\" }\n"
             "salary = { field = \"salary\", type = \"DECIMAL(12,2)\" }\n"
             "active = { field = \"active\", type = \"BOOLEAN\" }\n"
             "hired_at = { field = \"hired\", type = \"DATETIME(6)\" }\n"
             "city = { field = \"address.city\", type = \"VARCHAR(100)\" }\n",
             env->emulator_port, env->mysql_socket, PAGE);
    buf_init(&errs, 0);
    if (cfg_load_mem("bench", src, strlen(src), &c, &errs, &e) != 0) {
        fprintf(stderr, "%s", buf_str(&errs));
        die("config", &e);
    }
    buf_release(&errs);
    return c;
}

/* ---- the runs -------------------------------------------------------------------------------- */

static long rows_changed(const struct svc_env *env)
{
    char out[64];
    fserr e = {0};

    if (svc_mysql_scalar(env,
                         "SELECT IFNULL(SUM(ROWS_CHANGED),0) FROM information_schema."
                         "TABLE_STATISTICS WHERE TABLE_SCHEMA='" DBNAME "' AND "
                         "TABLE_NAME='employees'",
                         out, sizeof(out), &e) != 0)
        die("TABLE_STATISTICS", &e);
    return atol(out);
}

static int no_emit(void *ud, struct sink_event *ev)
{
    (void)ud;
    sink_event_free(ev);
    return 0;
}

/* One resync run of collection 0 on the loop; returns its wall time. */
static double run_resync(uv_loop_t *loop, struct resync *rs, uint64_t runs)
{
    fserr e = {0};
    double t0 = now_s();

    if (resync_request(rs, 0, "bench", &e) != 0)
        die("resync_request", &e);
    while (resync_runs_ended(rs, 0) < runs)
        uv_run(loop, UV_RUN_ONCE);
    return now_s() - t0;
}

struct serve {
    uv_loop_t *loop;
    http_client *http;
    struct rest_query q;
    char *after;
    size_t docs;
    bool done;
    fserr e;
    int rc;
};

static void served(void *ud, int rc, const fserr *e, long status, struct rest_page *page)
{
    struct serve *s = ud;
    (void)status;
    if (rc) {
        s->rc = rc;
        s->e = *e;
        s->done = true;
        return;
    }
    s->docs += page->ndocs;
    if (!s->q.read_time.seconds)
        s->q.read_time = page->read_time;
    if (!page->more) {
        s->done = true;
    } else {
        free(s->after);
        s->after = xstrdup(page->docs[page->ndocs - 1].name);
        s->q.start_after = s->after;
        s->rc = rest_query_start(s->http, &s->q, served, s, NULL, &s->e);
        s->done = s->rc != 0;
    }
    rest_page_release(page);
}

/* The same pages through firestore/rest.c alone. */
static double serve_only(uv_loop_t *loop, http_client *http, const struct cfg *c, char *base)
{
    struct serve s = {loop, http, {0}, NULL, 0, false, {0}, 0};
    double t0 = now_s();

    s.q.base_url = base;
    s.q.parent = DATABASE "/documents";
    s.q.collection_id = "employees";
    s.q.limit = (unsigned)c->resync.page_size;
    s.rc = rest_query_start(http, &s.q, served, &s, NULL, &s.e);
    while (!s.rc && !s.done)
        uv_run(loop, UV_RUN_ONCE);
    if (s.rc)
        die("serving pages", &s.e);
    free(s.after);
    if (s.docs != NDOCS)
        die("the pages did not hold every document", NULL);
    return now_s() - t0;
}

static void closed(void *ud)
{
    (void)ud;
}

static void figure(const char *name, double v, const char *unit, const char *aim, const char *what)
{
    printf("FIGURE|%s|%.2f|%s|%s|%s\n", name, v, unit, aim, what);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void check(bool ok, const char *what)
{
    if (!ok)
        die(what, NULL);
}

int main(void)
{
    struct svc_env env;
    struct cfg *c;
    uv_loop_t loop;
    http_client *http;
    struct diff *diff;
    struct sink *sink;
    struct resync *rs;
    struct rusage ru;
    const struct status_resync *st;
    char base[64];
    fserr e = {0};
    double t_fill, t_step, t_serve, cpu;
    long before;
    uint64_t sink_before;

    log_set_level(LOG_LVL_WARN);
    if (!services(&env)) {
        printf("bench_resync: needs mariadbd and the Firestore emulator; skipped\n");
        return 0;
    }
    if (svc_mysql_exec(&env, "DROP DATABASE IF EXISTS " DBNAME "; CREATE DATABASE " DBNAME, &e))
        die("creating the database", &e);
    load_documents(&env);
    c = make_config(&env);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", env.emulator_port);
    uv_loop_init(&loop);
    if (!(http = http_client_new(&loop, &e)))
        die("http_client_new", &e);
    sink = sink_new(c);
    if (sink_start(sink, 30000, &e) != 0 || diff_new(c, DATABASE, no_emit, NULL, &diff, &e) != 0)
        die("starting the sink", &e);
    {
        struct resync_env re = {&loop, c, http, base, DATABASE, diff, sink, {0}, NULL};
        if (resync_new(&re, &rs, &e) != 0)
            die("resync_new", &e);
        resync_stream_state(rs, true); /* no stream here: no fallback either */
    }
    t_fill = run_resync(&loop, rs, 1);
    st = resync_status(rs, 0);
    printf("first resync (empty table): %.1f s: %s\n", t_fill, st->result);
    check(st->docs_read == NDOCS && st->fixed == NDOCS, "the first resync did not write every row");
    before = rows_changed(&env);
    sink_before = atomic_load(&sink_stats(sink)->created) +
                  atomic_load(&sink_stats(sink)->updated) + atomic_load(&sink_stats(sink)->deleted);
    cpu = cpu_s();
    t_step = run_resync(&loop, rs, 2);
    cpu = cpu_s() - cpu;
    printf("second resync (in step): %.1f s: %s\n", t_step, st->result);
    check(st->docs_read == NDOCS && st->differences == 0, "the second resync found differences");
    check(sink_before == atomic_load(&sink_stats(sink)->created) +
                             atomic_load(&sink_stats(sink)->updated) +
                             atomic_load(&sink_stats(sink)->deleted),
          "the sink counted writes in the second resync");
    t_serve = serve_only(&loop, http, c, base);
    printf("the same pages without MySQL: %.1f s\n", t_serve);
    getrusage(RUSAGE_SELF, &ru);
    figure("resync_100k_in_step", t_step, "s", "-",
           "full resync of 100,000 documents already in step (pages of 5,000, no pacing)");
    figure("resync_100k_agent_cpu", cpu, "s", "-",
           "CPU of the agent's threads in that resync (loop, sink, libmariadb)");
    figure("resync_100k_mysql_writes", (double)(rows_changed(&env) - before), "rows", "0",
           "rows MariaDB changed in that resync (TABLE_STATISTICS.ROWS_CHANGED)");
    figure("resync_100k_emulator_only", t_serve, "s", "-",
           "the same runQuery pages fetched and decoded alone, no MySQL (the floor)");
    figure("resync_100k_first_fill", t_fill, "s", "-",
           "the first resync into an empty table: 100,000 inserts");
    figure("resync_max_rss", (double)ru.ru_maxrss / 1024.0, "MiB", "-",
           "peak memory of the process (the applied index included)");
    resync_close(rs);
    http_client_close(http, closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    resync_free(rs);
    http_client_free(http);
    sink_free(sink);
    diff_free(diff);
    cfg_free(c);
    uv_loop_close(&loop);
    return 0;
}
