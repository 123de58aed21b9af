/*
 * bench_lag.c - the agent's own share of latency at a steady 10 and 100 writes per second, as
 * production Firestore delivers them: each change alone, followed by a consistent point.
 *
 * Why not the emulator (bench_latency.c measures end to end there): the emulator answers every
 * change with a RESET and re-sends the whole collection, and its JVM takes most of this 2-core
 * machine while it does, so the agent's figures there are mostly time spent waiting for a CPU.
 * Here the fake Firestore server (tests/fake/, a thread of this program) delivers what
 * production sends: one documentChange per write, then a global targetChange with a resume
 * token; the agent (the release `firesync run`, FIRESYNC_BIN or ./firesync) writes into a
 * private MariaDB (bench_util.h) with its default settings.
 *
 * Each phase starts with sync() and restarts the agent, so that its status file's one-minute window (lag_p50_ms,
 * lag_p95_ms, lag_p99_ms: event received -> its row's COMMIT returned) holds that phase alone;
 * the pusher paces creates of new documents at the rate for 20 s, waits until the last resume
 * token is committed, then reads the status file.
 */
#include "tests/bench/bench_util.h"

#include <cjson/cJSON.h>

#define SECONDS 20

static char token_of_previous[64]; /* the last resume token the previous phase committed */

static double status_ms(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char text[65536];
    size_t n;
    double v = -1;

    if (!f)
        bench_dief("%s: %s", path, strerror(errno));
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *o = cJSON_Parse(text);
    cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "collections"), 0);
    cJSON *it = cJSON_GetObjectItemCaseSensitive(c, key);
    if (cJSON_IsNumber(it))
        v = it->valuedouble;
    cJSON_Delete(o);
    if (v < 0)
        bench_dief("the status file has no %s", key);
    return v;
}

static void phase(MYSQL *m, fake_fs *fs, int rate, size_t *next_doc, int run)
{
    struct agent_env ae;
    struct bench_docs d;
    size_t n = (size_t)rate * SECONDS, from = *next_doc;
    char token[64], init[32];
    double t0;

    /* dirty pages of earlier work written back first: a write-back under way stalls MySQL's
     * commits (measured: p99 3 ms quiet, 150-950 ms with gigabytes being written back), and
     * that is the disk's share, not the agent's */
    sync();
    bench_docs_make(&d, from, from + n, 0);
    bench_agent_env(&ae, fs, NULL);
    ae.runs = run;
    snprintf(init, sizeof(init), "INIT%d", run);
    /* a restart resumes from the checkpoint, which holds the previous phase's last token */
    bench_agent_up(&ae, fs, run == 0 ? init : token_of_previous, run > 0);
    t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        double due = t0 + (double)i / rate;
        double now = bench_now();
        if (due > now)
            bench_sleep_ms((long)((due - now) * 1000));
        if (fake_fs_push(fs, d.text.p + d.off[i]) <= 0)
            bench_die("the fake has no live session", NULL);
        snprintf(token, sizeof(token), "L%dx%09zu", rate, from + i + 1);
        bench_push_consistent(fs, token, BENCH_T0_US + (int64_t)(from + i + 1) * 1000);
    }
    bench_wait_token(m, token, 60);
    snprintf(token_of_previous, sizeof(token_of_previous), "%s", token);
    double p50 = status_ms(ae.status, "lag_p50_ms"), p95 = status_ms(ae.status, "lag_p95_ms"),
           p99 = status_ms(ae.status, "lag_p99_ms");
    printf("%d writes/s for %d s: %zu changes, the agent's share p50 %.2f ms, p95 %.2f ms, "
           "p99 %.2f ms\n",
           rate, SECONDS, n, p50, p95, p99);
    char name[64], what[200];
    snprintf(name, sizeof(name), "agent_share_p50_%d_per_s", rate);
    snprintf(what, sizeof(what),
             "the agent's own share, p50, %d single-document changes/s from the fake server "
             "(received -> COMMIT returned)",
             rate);
    bench_figure(name, "%.2f", p50, "ms", "-", what);
    snprintf(name, sizeof(name), "agent_share_p99_%d_per_s", rate);
    snprintf(what, sizeof(what), "the same, p99");
    bench_figure(name, "%.2f", p99, "ms", rate == 100 ? "20" : "-", what);
    bench_agent_down(&ae);
    bench_docs_release(&d);
    *next_doc = from + n;
}

int main(void)
{
    fake_fs *fs;
    MYSQL *m;
    size_t next = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_st.prog = "bench_lag";
    if (!bench_on_path("mariadbd") || !bench_on_path("mariadb-install-db")) {
        printf("mariadbd or mariadb-install-db not found: no latency figures (make deps "
               "installs mariadb-server)\n");
        return 0;
    }
    if (!bench_find_firesync())
        bench_die("no agent binary: set FIRESYNC_BIN or run `make firesync` first", NULL);
    bench_db_up("bench-lag");
    m = bench_connect();
    if (!(fs = fake_fs_start()))
        bench_die("the fake server did not start", NULL);
    fake_fs_set_noop_on_empty_get(fs, false);
    phase(m, fs, 10, &next, 0);
    phase(m, fs, 100, &next, 1);
    fake_fs_free(fs);
    mysql_close(m);
    bench_cleanup();
    return 0;
}
