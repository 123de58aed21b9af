/*
 * bench_latency.c - end-to-end latency from a Firestore commit to its MySQL row, with the real
 * release agent (./firesync, or FIRESYNC_BIN) between the Firestore emulator and MariaDB, at 10
 * and 100 writes per second and at saturation; and the agent's own share at 100 writes/s as it
 * reports it in its status file (aim: p99 under 20 ms).
 *
 * The services: a private MariaDB and the emulator, started with the test harness's svc_up() in
 * a fresh directory under TMPDIR and stopped at exit whatever happens (atexit, and SIGINT,
 * SIGTERM, SIGHUP); with FIRESYNC_TEST_DIR set, the services running there are used. Without
 * mariadbd or the emulator the program says so and prints no figure.
 *
 * The data: one collection of NDOCS documents, history on, written round-robin (document k %
 * NDOCS gets n = k, so every write is a new version). The emulator answers every change of a
 * listened collection with a RESET that re-sends the whole result set, so its own latency grows
 * with the collection's size: the set is kept at NDOCS documents, updated, never grown. On this
 * project's shared 2-core machine the emulator then acknowledges about 50-100 writes/s: the
 * "100 writes/s" phase reaches what it can, and the rate it reached is printed.
 *
 * The writes: one document per REST request (PATCH), each writer thread on its own keep-alive
 * connection; paced phases send on a fixed schedule (10/s from one writer, 100/s from WRITERS
 * writers at 100/WRITERS each, their schedules interleaved), the saturating one from WRITERS
 * writers as fast as the emulator answers. Each phase lasts PHASE_S seconds.
 *
 * The measure, read from MySQL afterwards so that no polling distorts it: per change, the
 * history row's applied_at minus its update_time (both DATETIME(6)). update_time is the
 * document's update time as the emulator assigned it at commit; the emulator runs on this
 * machine and stamps it from the same wall clock (checked on every write: the updateTime of the
 * answer must fall between the request's sending and its answer). applied_at is stamped by the
 * sink when the transaction holding the row starts (with the default agent.batch_max_delay_ms
 * of 0 a batch does not wait for more rows), so these figures leave out the transaction's own
 * time (its statements and the COMMIT's fsync): a few milliseconds on a quiet machine, far more
 * on a busy one. The agent's own share (its status file's lag_p99_ms: received from the stream
 * -> COMMIT returned) does include it; it is read right after the 100/s phase, from an agent
 * restarted just before it, so that its one-minute window holds that phase alone.
 *
 * The agent runs with its default configuration (batching included), status every 500 ms.
 * Checked, exiting non-zero otherwise: every acknowledged write reaches the history table, or
 * (a listener receives snapshots, so two changes of a document that reach the stream together
 * arrive as their net result, with one history row) MySQL holds every document at its last
 * acknowledged version; how many writes arrived only that way is printed.
 *
 * Output: progress lines, then "FIGURE|name|value|unit|aim|meaning" lines for scripts/bench.sh.
 */
#include "common/err.h"
#include "tests/harness/agent_util.h"
#include "tests/harness/svc.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NDOCS 200
#define PHASE_S 20
#define WRITERS 8 /* for 100/s and saturation: pacing must not wait on slow answers */
#define COLL "bench_lat"
#define NAME "bench_latency" /* agent_env: project p-bench-latency, database e2e_bench_latency */

static char own_dir[256]; /* services started here, stopped at exit */
static struct agent_env ae;
static atomic_uint_fast64_t next_k; /* the next write's number */

/* Each document's last acknowledged version (the greatest update time the emulator answered). */
static pthread_mutex_t last_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int64_t ut;
    uint64_t n;
} last[NDOCS];

static void note_last(uint64_t k, int64_t ut)
{
    pthread_mutex_lock(&last_mu);
    if (ut > last[k % NDOCS].ut) {
        last[k % NDOCS].ut = ut;
        last[k % NDOCS].n = k;
    }
    pthread_mutex_unlock(&last_mu);
}

static void die(const char *what, const fserr *e)
{
    fprintf(stderr, "bench_latency: %s%s%s\n", what, e ? ": " : "", e ? e->msg : "");
    exit(1);
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts;
    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

/* ---- services and the agent ---------------------------------------------------------------- */

static void at_exit(void)
{
    char cmd[300];

    if (ae.pid > 0)
        agent_stop(&ae, SIGKILL, 5000);
    if (!own_dir[0])
        return;
    svc_down(own_dir);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", own_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_latency: could not remove %s\n", own_dir);
    own_dir[0] = '\0';
}

static void on_signal(int sig)
{
    (void)sig;
    exit(1); /* runs at_exit */
}

/* Starts the services unless FIRESYNC_TEST_DIR names running ones. False when they cannot run
 * on this machine. */
static bool start_services(void)
{
    const char *tmp = getenv("TMPDIR");
    fserr e = {0};

    atexit(at_exit);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    if (getenv("FIRESYNC_TEST_DIR"))
        return true;
    if (access(SVC_EMULATOR_BIN, X_OK) != 0 || system("command -v mariadbd >/dev/null") != 0)
        return false;
    snprintf(own_dir, sizeof(own_dir), "%s/bench-latency.XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(own_dir))
        die("mkdtemp", NULL);
    printf("starting MariaDB and the Firestore emulator in %s\n", own_dir);
    fflush(stdout);
    if (svc_up(own_dir, &e) != 0)
        die("svc_up", &e);
    setenv("FIRESYNC_TEST_DIR", own_dir, 1);
    return true;
}

/* The agent's configuration: defaults, but for logging at info and a status every 500 ms. */
static void write_config(void)
{
    char text[4096];
    FILE *f;

    snprintf(text, sizeof(text),
             "[firestore]\nproject_id = \"%s\"\nemulator_host = \"127.0.0.1:%d\"\n\n"
             "[mysql]\nsocket = \"%s\"\nuser = \"firesync\"\n"
             "password_file = \"%s/mysql-password\"\ndatabase = \"%s\"\n\n"
             "[agent]\nstatus_file = \"%s\"\ncontrol_socket = \"%s/control.sock\"\n"
             "status_interval = \"500ms\"\nlog_level = \"info\"\n\n"
             "[[collections]]\npath = \"" COLL "\"\ntable = \"" COLL "\"\nhistory = true\n"
             "[collections.columns]\nn = { field = \"n\", type = \"BIGINT\" }\n"
             "w = { field = \"w\", type = \"BIGINT\" }\n",
             ae.project, ae.svc.emulator_port, ae.svc.mysql_socket, ae.dir, ae.db, ae.status,
             ae.dir);
    f = fopen(ae.config, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write the agent's configuration", NULL);
}

static void start_agent(void)
{
    if (agent_start(&ae, NULL, NULL) != 0 || !agent_wait_state(&ae, "healthy", 60000)) {
        fprintf(stderr, "see %s/agent-%d.log\n", ae.dir, ae.runs);
        die("the agent did not become healthy", NULL);
    }
}

/* ---- writers --------------------------------------------------------------------------------- */

struct writer {
    pthread_t th;
    int id;
    double rate;  /* writes per second; 0: as fast as answered */
    double start; /* monotonic time of the first write */
    double end;   /* no write starts after this */
    uint64_t ok, failed, clock_off; /* clock_off: updateTime outside [sent, answered] */
    char body[4096];
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct writer *w = ud;
    size_t k = size * n, room = sizeof(w->body) - 1 - w->len;

    memcpy(w->body + w->len, p, k < room ? k : room);
    w->len += k < room ? k : room;
    w->body[w->len] = '\0';
    return k;
}

/* "2026-11-23T14:42:00.123456Z" (up to 9 fraction digits) in µs; 0 when absent. */
static int64_t update_time_us(const char *json)
{
    const char *p = strstr(json, "\"updateTime\"");
    struct tm tm = {0};
    int64_t frac = 0, scale = 1000000;
    int n = 0;

    if (!p || !(p = strchr(p + 12, '"')))
        return 0;
    if (sscanf(p + 1, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return 0;
    p += 1 + n;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000 + frac;
}

static void *write_loop(void *arg)
{
    struct writer *w = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[512], body[256];

    h = curl_slist_append(h, "Authorization: Bearer owner");
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
    for (uint64_t i = 0;; i++) {
        double at = w->rate > 0 ? w->start + (double)i / w->rate : mono_s();
        uint64_t k;
        int64_t sent, answered, ut;
        long status = 0;

        if (at >= w->end || mono_s() >= w->end) /* behind schedule: the phase still ends */
            break;
        sleep_s(at - mono_s());
        k = atomic_fetch_add(&next_k, 1);
        snprintf(url, sizeof(url),
                 "http://127.0.0.1:%d/v1/projects/%s/databases/(default)/documents/" COLL "/d%03d",
                 ae.svc.emulator_port, ae.project, (int)(k % NDOCS));
        snprintf(body, sizeof(body),
                 "{\"fields\":{\"n\":{\"integerValue\":\"%llu\"},\"w\":{\"integerValue\":\"%d\"}}}",
                 (unsigned long long)k, w->id);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        w->len = 0;
        sent = wall_us();
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        answered = wall_us();
        if (status != 200) {
            w->failed++;
            continue;
        }
        w->ok++;
        ut = update_time_us(w->body);
        note_last(k, ut);
        if (ut < sent - 1000 || ut > answered + 1000) /* a millisecond for rounding */
            w->clock_off++;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

struct phase {
    const char *name;
    int64_t from_us, to_us; /* wall clock around every write of the phase */
    double seconds;         /* first write to last answer */
    uint64_t ok, failed, clock_off;
};

/* Runs nw writers for PHASE_S seconds; rate 0 = saturating, else the total rate. */
static struct phase run_phase(const char *name, int nw, double rate)
{
    struct writer w[WRITERS];
    struct phase ph = {name, 0, 0, 0, 0, 0, 0};
    double t0 = mono_s() + 0.1;

    printf("%s: %d writer%s, %s for %d s\n", name, nw, nw > 1 ? "s" : "",
           rate > 0 ? "paced" : "as fast as the emulator answers", PHASE_S);
    fflush(stdout);
    ph.from_us = wall_us();
    for (int i = 0; i < nw; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].id = i;
        w[i].rate = rate / nw;
        w[i].start = rate > 0 ? t0 + (double)i / rate : t0;
        w[i].end = t0 + PHASE_S;
        if (pthread_create(&w[i].th, NULL, write_loop, &w[i]) != 0)
            die("pthread_create", NULL);
    }
    for (int i = 0; i < nw; i++) {
        pthread_join(w[i].th, NULL);
        ph.ok += w[i].ok;
        ph.failed += w[i].failed;
        ph.clock_off += w[i].clock_off;
    }
    ph.to_us = wall_us();
    ph.seconds = mono_s() - t0;
    printf("  %llu writes acknowledged (%.1f/s), %llu refused; emulator updateTime outside "
           "[sent, answered] for %llu of them\n",
           (unsigned long long)ph.ok, (double)ph.ok / ph.seconds, (unsigned long long)ph.failed,
           (unsigned long long)ph.clock_off);
    return ph;
}

/* ---- what MySQL says -------------------------------------------------------------------------- */

static void sql_time(int64_t us, char out[32])
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, 32, "%04d-%02d-%02d %02d:%02d:%02d.%06d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double quantile_ms(const int64_t *v, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n);
    if ((double)rank < q * (double)n)
        rank++;
    return n ? (double)v[(rank ? rank : 1) - 1] / 1000.0 : 0;
}

/* Whether MySQL holds every document at its last acknowledged version (or a later one). */
static bool converged(void)
{
    fserr e = {0};
    MYSQL *m = svc_mysql_connect(&ae.svc, ae.db, &e);
    MYSQL_RES *r;
    MYSQL_ROW row;
    int at = 0;

    if (!m)
        die("mysql", &e);
    if (mysql_query(m, "SELECT id, n FROM " COLL " WHERE deleted_at IS NULL") != 0 ||
        !(r = mysql_store_result(m)))
        die(mysql_error(m), NULL);
    pthread_mutex_lock(&last_mu);
    while ((row = mysql_fetch_row(r))) {
        int d = row[0] && row[0][0] == 'd' ? atoi(row[0] + 1) : -1;
        if (d >= 0 && d < NDOCS && row[1] && strtoull(row[1], NULL, 10) >= last[d].n)
            at++;
    }
    pthread_mutex_unlock(&last_mu);
    mysql_free_result(r);
    mysql_close(m);
    return at == NDOCS;
}

/* Waits until the history holds a row per acknowledged write of ph, or MySQL holds every
 * document's last acknowledged version (a listener receives snapshots: when a document changed
 * twice before the stream delivered it, for instance across a reconnection, only the later
 * version arrives, and it has one history row), then returns the sorted latencies
 * (applied_at - update_time, µs) of the history rows in *out (caller frees). */
static size_t phase_latencies(const struct phase *ph, int64_t **out)
{
    char from[32], to[32], where[256], sql[512];
    MYSQL *m;
    MYSQL_RES *r;
    MYSQL_ROW row;
    fserr e = {0};
    size_t n = 0;
    double t0 = mono_s();

    sql_time(ph->from_us, from);
    sql_time(ph->to_us, to);
    snprintf(where, sizeof(where),
             "FROM firesync_changes WHERE collection = '" COLL "' AND op = 'UPDATE' AND "
             "update_time BETWEEN '%s' AND '%s'",
             from, to);
    for (;;) {
        long have = atol(sql_scalar(&ae, "SELECT COUNT(*) %s", where));
        if (have >= (long)ph->ok) {
            printf("  every write in MySQL %.1f s after the phase\n", mono_s() - t0);
            break;
        }
        if (converged()) { /* the history rows of what was delivered committed before */
            have = atol(sql_scalar(&ae, "SELECT COUNT(*) %s", where));
            if (have >= (long)ph->ok)
                continue; /* they came in meanwhile: "every write" */
            printf("  every document at its last version in MySQL %.1f s after the phase; %ld "
                   "of %llu writes arrived only through a later version of their document\n",
                   mono_s() - t0, (long)ph->ok - have, (unsigned long long)ph->ok);
            break;
        }
        if (mono_s() - t0 > 120)
            die("MySQL never held every document's last acknowledged version", NULL);
        sleep_s(0.2);
    }
    m = svc_mysql_connect(&ae.svc, ae.db, &e);
    if (!m)
        die("mysql", &e);
    snprintf(sql, sizeof(sql), "SELECT TIMESTAMPDIFF(MICROSECOND, update_time, applied_at) %s",
             where);
    if (mysql_query(m, sql) != 0 || !(r = mysql_store_result(m)))
        die(mysql_error(m), NULL);
    *out = malloc((mysql_num_rows(r) + 1) * sizeof(**out));
    while ((row = mysql_fetch_row(r)))
        (*out)[n++] = row[0] ? atoll(row[0]) : 0;
    mysql_free_result(r);
    mysql_close(m);
    qsort(*out, n, sizeof(**out), cmp_i64);
    return n;
}

static void figure(const char *name, double v, const char *unit, const char *aim, const char *what)
{
    printf("FIGURE|%s|%.2f|%s|%s|%s\n", name, v, unit, aim, what);
}

/* Prints the end-to-end figures of one phase. */
static void e2e_figures(const struct phase *ph, const char *tag, const char *rate_words)
{
    int64_t *v = NULL;
    size_t n = phase_latencies(ph, &v);
    const double qs[] = {0.50, 0.95, 0.99};
    const char *qn[] = {"p50", "p95", "p99"};
    char name[64], what[256];

    printf("  end to end over %zu changes: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms\n", n,
           quantile_ms(v, n, 0.50), quantile_ms(v, n, 0.95), quantile_ms(v, n, 0.99),
           quantile_ms(v, n, 1.0));
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "e2e_%s_%s", qn[i], tag);
        snprintf(what, sizeof(what),
                 "%s of Firestore commit (emulator updateTime) -> MySQL applied_at, %s, %d docs",
                 qn[i], rate_words, NDOCS);
        figure(name, quantile_ms(v, n, qs[i]), "ms", "-", what);
    }
    free(v);
}

/* The agent's own share as its status file reports it, once it counted `want` events. */
static void own_share(uint64_t want)
{
    double t0 = mono_s();

    for (;;) {
        char text[65536];
        FILE *f = fopen(ae.status, "r");
        size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
        cJSON *o, *c;

        if (f)
            fclose(f);
        text[n] = '\0';
        o = cJSON_Parse(text);
        c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "collections"), 0);
        if (c && cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "lag_events")) >=
                     (double)want) {
            double p99 = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "lag_p99_ms"));
            printf("  the agent's own share (status file, last minute: this phase alone): %.0f "
                   "events, p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms\n",
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "lag_events")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "lag_p50_ms")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "lag_p95_ms")), p99,
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "lag_max_ms")));
            figure("emulator_agent_share_p99_100", p99, "ms", "-",
                   "the same share on the emulator (status lag_p99_ms), where its JVM re-sending "
                   "every document per change takes most CPUs: see bench_lag for the aim");
            cJSON_Delete(o);
            return;
        }
        cJSON_Delete(o);
        if (mono_s() - t0 > 30)
            die("the status file never counted the phase's events", NULL);
        sleep_s(0.25);
    }
}

/* ---- the run ------------------------------------------------------------------------------------ */

static void seed(void)
{
    char w[NDOCS * 200 + 64];
    size_t o = 0;

    o += (size_t)snprintf(w + o, sizeof(w) - o, "{\"writes\":[");
    for (int i = 0; i < NDOCS; i++)
        o += (size_t)snprintf(w + o, sizeof(w) - o,
                              "%s{\"update\":{\"name\":\"projects/%s/databases/(default)/"
                              "documents/" COLL "/d%03d\",\"fields\":{\"n\":{\"integerValue\":"
                              "\"-1\"}}}}",
                              i ? "," : "", ae.project, i);
    snprintf(w + o, sizeof(w) - o, "]}");
    if (fs_commit(&ae, w) != 0)
        die("seeding the collection failed", NULL);
    if (!sql_wait(&ae, "200", 60000, "SELECT COUNT(*) FROM " COLL))
        die("the seeded documents never reached MySQL", NULL);
}

int main(void)
{
    const char *bin = getenv("FIRESYNC_BIN");
    struct phase ph;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!start_services()) {
        printf("bench_latency: needs mariadbd and the Firestore emulator; skipped\n");
        return 0;
    }
    if (access(bin ? bin : "./firesync", X_OK) != 0)
        die("no agent binary: build it with `make firesync`, or set FIRESYNC_BIN", NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (agent_env_init(&ae, NAME, "", NULL) != 0)
        die("agent_env_init", NULL);
    write_config();
    start_agent();
    seed();
    printf("agent %s running, %d documents in step\n", bin ? bin : "./firesync", NDOCS);

    ph = run_phase("10 writes/s", 1, 10);
    e2e_figures(&ph, "10_per_s", "10 writes/s");

    /* a fresh agent: its latency window then holds the next phase alone */
    if (agent_stop(&ae, SIGTERM, 20000) != 0)
        die("the agent did not stop cleanly", NULL);
    start_agent();
    ph = run_phase("100 writes/s", WRITERS, 100);
    e2e_figures(&ph, "100_per_s", "100 writes/s");
    figure("write_rate_100_per_s_phase", (double)ph.ok / ph.seconds, "writes/s", "-",
           "writes/s the emulator acknowledged in the 100 writes/s phase (under 100: the "
           "emulator set the pace, not the agent)");
    own_share(ph.ok);

    ph = run_phase("saturating", WRITERS, 0);
    e2e_figures(&ph, "saturating", "saturating writes");
    figure("saturating_write_rate", (double)ph.ok / ph.seconds, "writes/s", "-",
           "writes/s the emulator acknowledged at saturation (8 writers, one document each) while "
           "the agent followed");

    if (agent_stop(&ae, SIGTERM, 30000) != 0)
        die("the agent did not stop cleanly", NULL);
    curl_global_cleanup();
    return 0;
}
