/*
 * bench_rss.c - resident memory of the real release agent: idle (aim: under 16 MB), and per
 * tracked document with 100,000 and 1,000,000 of them (aim: under 100 bytes each besides its id).
 *
 * bench_index measures the applied index alone, inside its own process; this one measures the
 * whole `firesync run` process as a deployment has it: libcurl, OpenSSL, libmariadb, libuv, the
 * sink thread and its queue, the status and control machinery, and the index.
 *
 * The services, as bench_pipeline's (bench_util.h): a private MariaDB for this run, the fake
 * Firestore server as the agent's Firestore (`firestore.emulator_host`), the agent from
 * FIRESYNC_BIN or ./firesync, with the employees mapping (six columns plus the extra JSON column:
 * 7 cell hashes per document) and automatic resyncs off; all stopped at exit whatever happens.
 *
 * How the documents get there: through the stream itself, so that MySQL holds exactly what the
 * sink writes (bookkeeping columns and column hashes included) and the agent's resume is the
 * real one. The fake pushes the documents as incremental documentChange messages (bench_util.h,
 * ids "emp-0000123", 11 bytes), with a consistent point every EVERY documents; then the agent
 * is stopped (SIGTERM) and started again: it rebuilds its index from MySQL, as every start does,
 * and resumes the stream from the checkpoint's resume token (the fake answers ADD and CURRENT
 * with nothing new, so no document is re-sent and no resync runs). Filling MySQL by hand would
 * be quicker but would have to copy the sink's hashes; through the stream, a million documents
 * take well under a minute here.
 *
 * Measured: VmRSS and VmHWM of the agent's /proc/PID/status once it is healthy and quiet (under
 * 2% of a CPU over half a second):
 *   (a) idle: one collection, no document, just after the start;
 *   (b) 100,000 tracked documents, after a restart; (c) 1,000,000, after a restart.
 * The restarted figures are the steady state of an agent holding n documents. Right after
 * streaming them (before the restart) the RSS also holds what the burst left in malloc's free
 * lists (queues, buffers at their high-water mark); it is printed beside, with the peak.
 * Per tracked document: (RSS_n - RSS_idle) / n, then minus the average id length, which is what
 * the aim counts ("besides its id"). Idle RSS is also split into anonymous memory and mapped
 * files, with the largest mappings, to show what dominates it.
 *
 * Checked, exiting non-zero otherwise: MySQL holds n live rows, no dead letter, and the status
 * file of the restarted agent tracks n documents.
 *
 * Output: progress lines, then one "FIGURE|name|value|unit|aim|meaning" line per figure for
 * scripts/bench.sh. Figures, not verdicts.
 */
#include "common/buf.h"
#include "common/err.h"
#include "tests/bench/bench_util.h"
#include "tests/fake/fake_fs.h"
#include "tests/harness/agent_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMALL 100000
#define LARGE 1000000
#define EVERY 1000  /* documents between consistent points */
#define WINDOW 600  /* arrays queued beyond the agent's acknowledgement */
#define BLOCK 50000 /* documents made at a time */
#define ID_BYTES 11 /* "emp-0000123" */

struct mem {
    long rss_kb, hwm_kb, anon_kb, file_kb;
};

static struct mem mem_of(pid_t pid)
{
    struct mem m = {bench_status_kb(pid, "VmRSS"), bench_status_kb(pid, "VmHWM"),
                    bench_status_kb(pid, "RssAnon"), bench_status_kb(pid, "RssFile")};
    if (m.rss_kb <= 0)
        bench_die("cannot read the agent's /proc/PID/status", NULL);
    return m;
}

/* The agent once it has nothing left to do: healthy (checked by the caller) and quiet. */
static struct mem quiet_mem(pid_t pid)
{
    if (!bench_quiet(pid, 500, 60))
        printf("the agent is still busy after 60 s; measuring anyway\n");
    return mem_of(pid);
}

static void print_mem(const char *what, const struct mem *m)
{
    printf("%s: VmRSS %.1f MiB (anonymous %.1f, files %.1f), VmHWM %.1f MiB\n", what,
           m->rss_kb / 1024.0, m->anon_kb / 1024.0, m->file_kb / 1024.0, m->hwm_kb / 1024.0);
}

/* The largest mappings of the process by resident size (a library's mappings summed), from
 * /proc/PID/smaps. */
static void print_mappings(pid_t pid, int top)
{
    struct {
        char name[96];
        long kb;
    } m[256];
    char path[64], line[512], cur[96] = "";
    int n = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    if (!(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        char *dash = strchr(line, '-'), *sp = strchr(line, ' '), *p = line;
        long kb;
        int i;
        if (dash && sp && dash < sp) { /* "addr-addr perms offset dev inode [name]" */
            for (int field = 0; field < 5 && p; field++)
                p = strchr(p + 1, ' ');
            while (p && *p == ' ')
                p++;
            snprintf(cur, sizeof(cur), "%s", p && *p != '\n' ? p : "[anonymous]");
            cur[strcspn(cur, "\n")] = '\0';
            continue;
        }
        if (strncmp(line, "Rss:", 4) != 0 || (kb = atol(line + 4)) <= 0)
            continue;
        for (i = 0; i < n && strcmp(m[i].name, cur) != 0; i++)
            ;
        if (i == n) {
            if (n == (int)(sizeof(m) / sizeof(m[0])))
                continue;
            snprintf(m[n].name, sizeof(m[n].name), "%s", cur);
            m[n++].kb = 0;
        }
        m[i].kb += kb;
    }
    fclose(f);
    printf("  largest mappings by resident size:\n");
    for (int k = 0; k < top; k++) {
        int best = -1;
        for (int i = 0; i < n; i++)
            if (m[i].kb > 0 && (best < 0 || m[i].kb > m[best].kb))
                best = i;
        if (best < 0)
            break;
        printf("    %7.2f MiB  %s\n", m[best].kb / 1024.0, m[best].name);
        m[best].kb = 0;
    }
}

/* The number after the first "key": in the status file (e.g. "tracked" of the first
 * collection, "index_bytes"); -1 if none yet. */
static long status_number(const struct agent_env *ae, const char *key)
{
    char text[65536], want[64], *p;
    size_t n;
    FILE *f = fopen(ae->status, "r");

    if (!f)
        return -1;
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    snprintf(want, sizeof(want), "\"%s\":", key);
    if (!(p = strstr(text, want)))
        return -1;
    return atol(p + strlen(want));
}

/* Streams creates of employees [from, to) through the fake and waits for their last commit. */
static void stream_docs(fake_fs *fs, MYSQL *v, size_t from, size_t to, char *token, size_t n)
{
    double t0 = bench_now();

    for (size_t b = from; b < to; b += BLOCK) {
        struct bench_docs d;
        bench_docs_make(&d, b, b + BLOCK < to ? b + BLOCK : to, 0);
        bench_docs_push(fs, &d, EVERY, WINDOW, token, n);
        bench_docs_release(&d);
    }
    bench_wait_token(v, token, 600);
    printf("streamed %zu documents in %.1f s\n", to - from, bench_now() - t0);
}

/* Restarts the agent (SIGTERM, start, resume from `token`) and checks what it holds. */
static struct mem restarted(struct agent_env *ae, fake_fs *fs, MYSQL *v, const char *token, long n)
{
    long long live, dead;
    double t0 = bench_now();
    struct mem m;
    long tracked;

    bench_agent_down(ae);
    bench_agent_up(ae, fs, token, true);
    printf("restarted with %ld documents: healthy in %.1f s\n", n, bench_now() - t0);
    m = quiet_mem(ae->pid);
    live = bench_scalar(v, "SELECT COUNT(*) FROM employees WHERE deleted_at IS NULL");
    dead = bench_scalar(v, "SELECT COUNT(*) FROM firesync_dead_letter");
    /* the status file is rewritten every status_interval (1 s); quiet_mem waited longer */
    tracked = status_number(ae, "tracked");
    printf("the agent's index holds %.1f MiB (%.1f B per document, by its own count)\n",
           status_number(ae, "index_bytes") / 1048576.0,
           (double)status_number(ae, "index_bytes") / (double)n);
    if (live != n || dead != 0 || tracked != n)
        bench_dief("expected %ld documents: MySQL has %lld live rows and %lld dead letters, the "
                   "agent tracks %ld",
                   n, live, dead, tracked);
    return m;
}

int main(void)
{
    struct mem idle, s_small, r_small, s_large, r_large;
    struct agent_env ae;
    char token[32] = "INIT";
    fake_fs *fs;
    MYSQL *v;
    double t0 = bench_now(), per_small, per_large;

    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_st.prog = "bench_rss";
    if (!bench_on_path("mariadbd") || !bench_on_path("mariadb-install-db")) {
        printf("mariadbd or mariadb-install-db not found: no RSS figures (make deps installs "
               "mariadb-server)\n");
        return 0;
    }
    if (!bench_find_firesync())
        bench_die("no agent binary: set FIRESYNC_BIN or run `make firesync` first", NULL);
    bench_db_up("bench-rss");
    v = bench_connect();
    if (!(fs = fake_fs_start()))
        bench_die("the fake server did not start", NULL);
    fake_fs_set_noop_on_empty_get(fs, false);
    bench_agent_env(&ae, fs, NULL);
    bench_agent_up(&ae, fs, token, false);
    printf("private MariaDB, fake server and agent %s (pid %d) up in %.1f s\n",
           getenv("FIRESYNC_BIN"), (int)ae.pid, bench_now() - t0);

    idle = quiet_mem(ae.pid);
    print_mem("idle, one collection, no document", &idle);
    print_mappings(ae.pid, 6);

    stream_docs(fs, v, 0, SMALL, token, sizeof(token));
    s_small = quiet_mem(ae.pid);
    print_mem("right after streaming 100,000", &s_small);
    r_small = restarted(&ae, fs, v, token, SMALL);
    print_mem("100,000 tracked, after a restart", &r_small);

    stream_docs(fs, v, SMALL, LARGE, token, sizeof(token));
    s_large = quiet_mem(ae.pid);
    print_mem("right after streaming up to 1,000,000", &s_large);
    r_large = restarted(&ae, fs, v, token, LARGE);
    print_mem("1,000,000 tracked, after a restart", &r_large);
    bench_agent_down(&ae);

    per_small = (double)(r_small.rss_kb - idle.rss_kb) * 1024.0 / SMALL;
    per_large = (double)(r_large.rss_kb - idle.rss_kb) * 1024.0 / LARGE;
    printf("per tracked document: %.1f B at 100,000 and %.1f B at 1,000,000, of which the id "
           "is %d B\n",
           per_small, per_large, ID_BYTES);
    bench_figure("agent_rss_idle_mb", "%.1f", idle.rss_kb / 1024.0, "MiB", "16",
                 "firesync run, release, healthy and quiet: one collection, no document (VmRSS)");
    bench_figure("agent_doc_bytes_100k", "%.1f", per_small, "B", "-",
                 "(VmRSS with 100,000 tracked documents - idle) / 100,000, agent restarted "
                 "(index rebuilt from MySQL); the id included");
    bench_figure("agent_doc_id_bytes", "%.0f", (double)ID_BYTES, "B", "-",
                 "average document id length in these runs (\"emp-0000123\")");
    bench_figure("agent_besides_id_100k", "%.1f", per_small - ID_BYTES, "B", "100",
                 "the same per document, minus its id: what the aim counts");
    bench_figure("agent_doc_bytes_1m", "%.1f", per_large, "B", "-",
                 "(VmRSS with 1,000,000 tracked - idle) / 1,000,000, agent restarted");
    bench_figure("agent_besides_id_1m", "%.1f", per_large - ID_BYTES, "B", "100",
                 "the same minus the id");
    bench_figure("agent_rss_1m_streamed_mb", "%.1f", s_large.rss_kb / 1024.0, "MiB", "-",
                 "VmRSS right after streaming 1,000,000 creates, before the restart (malloc "
                 "keeps the burst's high water)");
    bench_figure("agent_hwm_1m_streamed_mb", "%.1f", s_large.hwm_kb / 1024.0, "MiB", "-",
                 "VmHWM, the agent's peak, over that run");

    fake_fs_free(fs);
    mysql_close(v);
    bench_cleanup();
    return 0;
}
