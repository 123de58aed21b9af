/*
 * bench_util.h - what the benchmarks that run the real `firesync` binary share: a private
 * MariaDB for the run, the agent and the fake Firestore server around it, the employees
 * documents as Firestore sends them, /proc readings and FIGURE lines.
 *
 * Header-only on purpose: the Makefile links each benchmark from its own object plus the test
 * harness and the fake, so these helpers are static functions of the one program that includes
 * this file (bench_sink.c, bench_pipeline.c, bench_rss.c, bench_lag.c).
 *
 * Cleanup, whatever happens: bench_db_up() registers an atexit handler and a SIGINT/SIGTERM/
 * SIGHUP handler that stop the agent (the one set up by bench_agent_env()) and mariadbd
 * (a child in its own process group), then remove the run directory, unless a failure asked to
 * keep it (bench_die() does, so the logs stay). The fake server is a thread of this process and
 * goes with it.
 *
 * The agent: FIRESYNC_BIN, else ./firesync (the release build of `make firesync`; scripts/bench.sh
 * builds it). Ownership: everything here is process-wide state of the benchmark, freed at exit.
 */
#ifndef FIRESYNC_BENCH_UTIL_H
#define FIRESYNC_BENCH_UTIL_H

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "tests/fake/fake_fs.h"
#include "tests/harness/agent_util.h"
#include "tests/harness/svc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BENCH_DB "firesync_bench"
#define BENCH_PROJECT "bench"
#define BENCH_ROOT "projects/" BENCH_PROJECT "/databases/(default)/documents"
#define BENCH_TARGET 2 /* the agent's target id for its first collection */

/* The employees mapping of bench_sink: six columns, one from a nested map, plus the extra JSON
 * column the defaults add (NULL here: every field is mapped). */
#define BENCH_COLUMNS                                                                              \
    "[collections.columns]\n"                                                                      \
    "name = { field = \"name\", type = \"VARCHAR(200)\" }\n"                                       \
    "employee_no = { field = \"employeeNo\", type = \"BIGINT\" }\n"                                \
    "salary = { field = \"salary\", type = \"DECIMAL(12,2)\" }\n"                                  \
    "active = { field = \"active\", type = \"BOOLEAN\" }\n"                                        \
    "hired_at = { field = \"hiredAt\", type = \"DATETIME(6)\" }\n"                                 \
    "city = { field = \"address.city\", type = \"VARCHAR(100)\" }\n"

static struct {
    const char *prog;        /* for messages */
    struct svc_env env;      /* dir, socket, port of the private MariaDB */
    bool started, keep;      /* mariadbd may be running; keep the directory (a failure) */
    struct agent_env *agent; /* the agent to stop at exit, or NULL */
    volatile sig_atomic_t db_pid, agent_pid; /* for the signal handler */
    char rm_dir[sizeof(((struct svc_env *)0)->dir)];
} bench_st;

static inline void bench_die(const char *what, const fserr *e)
{
    fprintf(stderr, "%s: %s%s%s\n", bench_st.prog, what, e ? ": " : "", e ? e->msg : "");
    bench_st.keep = true;
    exit(1);
}

static inline void bench_dief(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void bench_dief(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    bench_die(msg, NULL);
}

/* ---- clocks and /proc ------------------------------------------------------------------------ */

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void bench_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* User + system CPU of process pid so far (all its threads), in microseconds; -1 when gone. */
static inline double bench_cpu_us(pid_t pid)
{
    char path[64], st[1024], *p;
    unsigned long long ut, stime;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(st, 1, sizeof(st) - 1, f);
    fclose(f);
    st[n] = '\0';
    /* after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime stime, the two in clock ticks */
    if (!(p = strrchr(st, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stime) != 2)
        return -1;
    return (double)(ut + stime) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* A "Key:   123 kB" line of /proc/PID/status (VmRSS, VmHWM, RssAnon...), in kB; -1 if none. */
static inline long bench_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    size_t klen = strlen(key);
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = atol(line + klen + 1);
            break;
        }
    fclose(f);
    return kb;
}

/* Waits until pid uses under 2% of a CPU over `window_ms` (at most max_s seconds); false if it
 * never got that quiet. */
static inline bool bench_quiet(pid_t pid, long window_ms, double max_s)
{
    double t0 = bench_now();

    while (bench_now() - t0 < max_s) {
        double c0 = bench_cpu_us(pid);
        bench_sleep_ms(window_ms);
        if (bench_cpu_us(pid) - c0 < (double)window_ms * 1000.0 * 0.02)
            return true;
    }
    return false;
}

static inline void bench_figure(const char *name, const char *fmt, double v, const char *unit,
                                const char *aim, const char *what)
{
    char val[32];
    snprintf(val, sizeof(val), fmt, v);
    printf("FIGURE|%s|%s|%s|%s|%s\n", name, val, unit, aim, what);
}

/* ---- the private MariaDB, and stopping everything whatever happens ----------------------------
 */

static inline bool bench_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char dirs[4096], full[4200];

    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/usr/local/sbin:/sbin",
             path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(full, sizeof(full), "%s/%s", d, prog);
        if (access(full, X_OK) == 0)
            return true;
    }
    return false;
}

static inline int bench_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static inline void bench_cleanup(void)
{
    fserr e = {0};

    if (bench_st.agent && bench_st.agent->pid > 0)
        agent_stop(bench_st.agent, SIGKILL, 5000);
    bench_st.agent_pid = 0;
    if (bench_st.started) {
        svc_mariadb_stop(&bench_st.env, &e);
        bench_st.started = false;
        bench_st.db_pid = 0;
    }
    if (!bench_st.env.dir[0])
        return;
    if (bench_st.keep)
        fprintf(stderr, "%s: logs kept in %s\n", bench_st.prog, bench_st.env.dir);
    else
        nftw(bench_st.env.dir, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    bench_st.env.dir[0] = '\0';
}

/* Kills the agent, stops mariadbd (SIGTERM to its group, SIGKILL after 10 s) and removes the run
 * directory, with async-signal-safe calls only; then dies of the signal. */
static inline void bench_on_signal(int sig)
{
    static char *const no_env[] = {NULL};
    char *rm_argv[] = {"/bin/rm", "-rf", bench_st.rm_dir, NULL};
    struct timespec tick = {0, 50 * 1000000L};
    pid_t pid = (pid_t)bench_st.agent_pid;

    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    if ((pid = (pid_t)bench_st.db_pid) > 0) {
        kill(-pid, SIGTERM);
        kill(pid, SIGTERM);
        for (int i = 0; i < 200 && waitpid(pid, NULL, WNOHANG) == 0; i++)
            nanosleep(&tick, NULL);
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, WNOHANG);
    }
    if (bench_st.rm_dir[0] && (pid = fork()) == 0) {
        execve(rm_argv[0], rm_argv, no_env);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
    signal(sig, SIG_DFL);
    raise(sig);
}

static inline int bench_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

/* A fresh MariaDB in TMPDIR/firesync-<name>.XXXXXX, with the database BENCH_DB (utf8mb4_bin),
 * installed and started as the integration tests do theirs (svc_mariadb_install and
 * svc_mariadb_start: binlog on, InnoDB flushing at every commit). */
static inline void bench_db_up(const char *name)
{
    const char *tmp = getenv("TMPDIR");
    char dir[200], path[600];
    struct sigaction sa;
    fserr e = {0};
    int port = bench_free_port(), pid = 0;
    FILE *f;

    snprintf(dir, sizeof(dir), "%s/firesync-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (port < 0 || !mkdtemp(dir))
        bench_die("no free port or no temporary directory", NULL);
    snprintf(bench_st.env.dir, sizeof(bench_st.env.dir), "%s", dir);
    memcpy(bench_st.rm_dir, bench_st.env.dir, sizeof(bench_st.rm_dir));
    snprintf(bench_st.env.mysql_socket, sizeof(bench_st.env.mysql_socket), "%s/mysql.sock", dir);
    snprintf(bench_st.env.project, sizeof(bench_st.env.project), BENCH_PROJECT);
    bench_st.env.mysql_port = port;
    atexit(bench_cleanup);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bench_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    if (svc_mariadb_install(dir, &e) != 0)
        bench_die("mariadb-install-db failed; see mariadb-install.log", &e);
    bench_st.started = true; /* from here on bench_cleanup() stops what svc started */
    if (svc_mariadb_start(&bench_st.env, &e) != 0)
        bench_die("starting mariadbd", &e);
    snprintf(path, sizeof(path), "%s/mariadb.pid", dir);
    if ((f = fopen(path, "r"))) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    if (pid <= 0)
        bench_die("mariadbd started but left no pid file", NULL);
    bench_st.db_pid = pid;
    if (svc_mysql_exec(&bench_st.env,
                       "CREATE DATABASE " BENCH_DB " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                       &e) != 0)
        bench_die("creating the database", &e);
}

static inline MYSQL *bench_connect(void)
{
    fserr e = {0};
    MYSQL *m = svc_mysql_connect(&bench_st.env, BENCH_DB, &e);
    if (!m)
        bench_die("connecting", &e);
    return m;
}

static inline void bench_exec(MYSQL *m, const char *sql)
{
    if (mysql_query(m, sql) != 0)
        bench_dief("%s: %s", sql, mysql_error(m));
}

/* The integer in the first column of the first row of the query (-1 for NULL or no row). */
static inline long long bench_scalar(MYSQL *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline long long bench_scalar(MYSQL *m, const char *fmt, ...)
{
    char sql[2048];
    MYSQL_RES *r;
    MYSQL_ROW row;
    long long v = -1;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (mysql_query(m, sql) != 0 || !(r = mysql_store_result(m)))
        bench_dief("%s: %s", sql, mysql_error(m));
    if ((row = mysql_fetch_row(r)) && row[0])
        v = atoll(row[0]);
    mysql_free_result(r);
    return v;
}

/* ---- the agent ----------------------------------------------------------------------------- */

/* Finds the agent binary (FIRESYNC_BIN, else ./firesync) and exports it as FIRESYNC_BIN for
 * agent_start(); false when there is none. Warns when it is older than the release library. */
static inline bool bench_find_firesync(void)
{
    const char *bin = getenv("FIRESYNC_BIN");
    char abs[4096];
    struct stat sb, sl;

    if (!bin || !*bin)
        bin = "./firesync";
    if (access(bin, X_OK) != 0 || !realpath(bin, abs))
        return false;
    if (stat(abs, &sb) == 0 && stat("build/rel/libfiresync.a", &sl) == 0 &&
        sb.st_mtime < sl.st_mtime)
        printf("warning: %s is older than build/rel/libfiresync.a; `make firesync` rebuilds it\n",
               abs);
    setenv("FIRESYNC_BIN", abs, 1);
    return true;
}

/* Writes the agent's configuration into the run directory: the fake as its Firestore (the
 * emulator mode: plain HTTP on loopback, token "owner"), the private MariaDB as root over the
 * socket, the employees collection; `extra` holds more top-level sections. Automatic resyncs
 * are off: the fake's runQuery is not a collection, and these benchmarks measure the stream. */
static inline void bench_agent_env(struct agent_env *ae, const fake_fs *fs, const char *extra)
{
    char cfg[4096];
    FILE *f;

    memset(ae, 0, sizeof(*ae));
    ae->svc = bench_st.env;
    snprintf(ae->dir, sizeof(ae->dir), "%s", bench_st.env.dir);
    snprintf(ae->project, sizeof(ae->project), BENCH_PROJECT);
    snprintf(ae->db, sizeof(ae->db), BENCH_DB);
    snprintf(ae->config, sizeof(ae->config), "%s/config.toml", ae->dir);
    snprintf(ae->status, sizeof(ae->status), "%s/status.json", ae->dir);
    snprintf(cfg, sizeof(cfg),
             "[firestore]\nproject_id = \"" BENCH_PROJECT "\"\nemulator_host = \"127.0.0.1:%d\"\n"
             "[mysql]\nsocket = \"%s\"\nuser = \"root\"\ndatabase = \"" BENCH_DB "\"\n"
             "[mysql.tls]\nmode = \"disabled\"\n"
             "[agent]\nstatus_file = \"%s\"\ncontrol_socket = \"%s/control.sock\"\n"
             "status_interval = \"1s\"\n"
             "[resync]\nenabled = false\n%s\n"
             "[[collections]]\npath = \"employees\"\ntable = \"employees\"\nkey = "
             "\"id\"\n" BENCH_COLUMNS,
             fake_fs_port(fs), bench_st.env.mysql_socket, ae->status, ae->dir, extra ? extra : "");
    if (!(f = fopen(ae->config, "w")))
        bench_dief("%s: %s", ae->config, strerror(errno));
    fputs(cfg, f);
    fclose(f);
    chmod(ae->config, 0600);
    bench_st.agent = ae;
}

/* Starts the agent and plays the server's side of its first Listen on the fake: waits for the
 * session and the target, then (when `resumed`, the checkpoint's token was sent and the server
 * has nothing new) ADD, CURRENT with `token`; otherwise ADD, CURRENT of an empty collection;
 * then a global NO_CHANGE carrying `token`, and waits until the status file says healthy. */
static inline void bench_agent_up(struct agent_env *ae, fake_fs *fs, const char *token,
                                  bool resumed)
{
    long sessions = fake_fs_stat(fs, FAKE_FS_SESSIONS);
    char want[128];

    if (agent_start(ae, NULL, NULL) != 0)
        bench_die("starting the agent", NULL);
    bench_st.agent_pid = ae->pid;
    snprintf(want, sizeof(want), "\"targetId\":%d", BENCH_TARGET);
    if (!fake_fs_wait(fs, FAKE_FS_SESSIONS, sessions + 1, 120000) ||
        !fake_fs_wait_map(fs, want, 10000))
        bench_dief("the agent opened no Listen on the fake; see %s/agent-%d.log", ae->dir,
                   ae->runs);
    if (resumed) {
        snprintf(want, sizeof(want), "\"resumeToken\":\"%s\"", token);
        if (!fake_fs_wait_map(fs, want, 10000))
            bench_dief("the agent did not resume from token %s; see %s/agent-%d.log", token,
                       ae->dir, ae->runs);
    }
    fake_fs_pushf(fs, "[{\"targetChange\":{\"targetChangeType\":\"ADD\",\"targetIds\":[%d]}}]",
                  BENCH_TARGET);
    fake_fs_pushf(fs,
                  "[{\"targetChange\":{\"targetChangeType\":\"CURRENT\",\"targetIds\":[%d],"
                  "\"resumeToken\":\"%s\",\"readTime\":\"2026-11-23T07:00:00Z\"}}]",
                  BENCH_TARGET, token);
    fake_fs_pushf(fs,
                  "[{\"targetChange\":{\"resumeToken\":\"%s\","
                  "\"readTime\":\"2026-11-23T07:00:00Z\"}}]",
                  token);
    if (!agent_wait_state(ae, "healthy", 120000))
        bench_dief("the agent did not become healthy; see %s/agent-%d.log", ae->dir, ae->runs);
}

/* SIGTERM and the clean exit the agent promises (exit 0 after committing what it holds). */
static inline void bench_agent_down(struct agent_env *ae)
{
    int rc = agent_stop(ae, SIGTERM, 60000);
    bench_st.agent_pid = 0;
    if (rc != 0)
        bench_dief("the agent exited %d on SIGTERM; see %s/agent-%d.log", rc, ae->dir, ae->runs);
}

/* ---- the documents -----------------------------------------------------------------------------
 */

#define BENCH_T0_US INT64_C(1795420800000000) /* 2026-11-23T08:00:00Z */
#define BENCH_DAY_US (INT64_C(86400) * 1000000)
#define BENCH_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const bench_first[] = {"Ana", "Bea", "Zoë", "João", "Mia", "Noah", "Léa"};
static const char *const bench_last[] = {"O'Neil", "Sousa", "Müller", "Smith & Co", "Øster"};
static const char *const bench_city[] = {"Lisbon", "München", "São Paulo", "Zürich", "東京"};

/* Version `version` (0: the create, 1: an update changing one or two columns) of employee i. */
struct bench_emp {
    char id[24];
    char name[96];
    int64_t no, cents; /* salary in cents, a multiple of 25: exact as a double */
    bool active;
    int64_t hired_us, create_us, update_us;
    const char *city;
};

static inline void bench_emp_gen(size_t i, int version, struct bench_emp *e)
{
    snprintf(e->id, sizeof(e->id), "emp-%07zu", i);
    snprintf(e->name, sizeof(e->name), "%s %s %zu", bench_first[i % BENCH_COUNT(bench_first)],
             bench_last[(i / 7) % BENCH_COUNT(bench_last)], i);
    e->no = 1000000 + (int64_t)i;
    e->cents = 2500000 + (int64_t)(i * 7919 % 500000) * 25;
    e->active = i % 9 != 0;
    e->hired_us = BENCH_T0_US - (int64_t)(1 + i % 5000) * BENCH_DAY_US + (int64_t)(i % 991) * 7;
    e->city = bench_city[i % BENCH_COUNT(bench_city)];
    e->create_us = BENCH_T0_US + (int64_t)i * 1000;
    e->update_us = e->create_us + (int64_t)version * BENCH_DAY_US;
    if (!version)
        return;
    switch (i % 4) {
    case 0:
        e->cents += 10000;
        break;
    case 1:
        strncat(e->name, " Jr.", sizeof(e->name) - strlen(e->name) - 1);
        break;
    case 2:
        e->cents += 5000;
        e->city = bench_city[(i + 1) % BENCH_COUNT(bench_city)];
        break;
    default:
        e->active = !e->active;
        e->hired_us += BENCH_DAY_US;
        break;
    }
}

/* RFC 3339 UTC with microseconds, as Firestore writes times ("2026-11-23T08:00:00.000123Z");
 * with sql, the DATETIME(6) literal form ("2026-11-23 08:00:00.000123"). */
static inline void bench_time(char *out, size_t n, int64_t us, bool sql)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&s, &tm);
    snprintf(out, n, "%04d-%02d-%02d%c%02d:%02d:%02d.%06d%s", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, sql ? ' ' : 'T', tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000),
             sql ? "" : "Z");
}

/* A JSON string as WebChannel carries it: Gson escapes < > & = ' as \u00XX, UTF-8 stays raw. */
static inline void bench_json_str(buf *b, const char *s)
{
    buf_addc(b, '"');
    for (; *s; s++) {
        if (strchr("<>&='", *s))
            buf_printf(b, "\\u%04x", (unsigned)*s);
        else if (*s == '"' || *s == '\\')
            buf_printf(b, "\\%c", *s);
        else
            buf_addc(b, *s);
    }
    buf_addc(b, '"');
}

/* Appends e as one WebChannel array's data: [{"documentChange":{...}}] for the agent's target. */
static inline void bench_emp_json(buf *b, const struct bench_emp *e)
{
    char hired[40], created[40], updated[40];

    bench_time(hired, sizeof(hired), e->hired_us, false);
    bench_time(created, sizeof(created), e->create_us, false);
    bench_time(updated, sizeof(updated), e->update_us, false);
    buf_printf(b,
               "[{\"documentChange\":{\"document\":{\"name\":\"" BENCH_ROOT "/employees/%s\","
               "\"fields\":{\"name\":{\"stringValue\":",
               e->id);
    bench_json_str(b, e->name);
    buf_printf(b,
               "},\"employeeNo\":{\"integerValue\":\"%" PRId64 "\"},"
               "\"salary\":{\"doubleValue\":%" PRId64 ".%02d},"
               "\"active\":{\"booleanValue\":%s},\"hiredAt\":{\"timestampValue\":\"%s\"},"
               "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":",
               e->no, e->cents / 100, (int)(e->cents % 100), e->active ? "true" : "false", hired);
    bench_json_str(b, e->city);
    buf_printf(b, "}}}}},\"createTime\":\"%s\",\"updateTime\":\"%s\"},\"targetIds\":[%d]}}]",
               created, updated, BENCH_TARGET);
}

/* A global NO_CHANGE (no target ids, no type): a consistent point with a resume token. The
 * token is alphanumeric, a multiple of 4 long: valid base64, as the server's are. */
static inline void bench_push_consistent(fake_fs *fs, const char *token, int64_t read_us)
{
    char rt[40];
    bench_time(rt, sizeof(rt), read_us, false);
    fake_fs_pushf(fs, "[{\"targetChange\":{\"resumeToken\":\"%s\",\"readTime\":\"%s\"}}]", token,
                  rt);
}

/* Versions `version` of employees [from, to) as WebChannel array data, made before they are
 * pushed (Firestore builds its messages on its own machines; here that work would otherwise
 * share the two cores with the agent): NUL-terminated texts one after the other in `text`. */
struct bench_docs {
    buf text;
    size_t *off; /* where document from + k starts in text */
    size_t from, to;
    int version;
    int64_t last_update_us;
};

static inline void bench_docs_make(struct bench_docs *d, size_t from, size_t to, int version)
{
    struct bench_emp e;

    buf_init(&d->text, 0);
    d->off = xcalloc(to - from, sizeof(*d->off));
    d->from = from;
    d->to = to;
    d->version = version;
    for (size_t i = from; i < to; i++) {
        bench_emp_gen(i, version, &e);
        d->off[i - from] = d->text.len;
        bench_emp_json(&d->text, &e);
        buf_addc(&d->text, '\0');
        d->last_update_us = e.update_us;
    }
}

static inline void bench_docs_release(struct bench_docs *d)
{
    buf_release(&d->text);
    free(d->off);
    d->off = NULL;
}

/* Pushes the documents of d as fast as the fake delivers them, each in a WebChannel array of its
 * own (the fake puts every array queued when the agent's next long-poll GET arrives into one
 * chunk, as the server does), with a consistent point after every `every`-th document (counted
 * from 0 over all of them) and after the last one, whose token goes into `token`. Flow control:
 * at most `window` arrays beyond what the agent acknowledged (the AID of its latest GET) are
 * queued; so the server holds back too (the agent stops reading while MySQL lags), and the
 * fake's queue, whose every push walks it, stays short. */
static inline void bench_docs_push(fake_fs *fs, const struct bench_docs *d, size_t every,
                                   long window, char *token, size_t token_len)
{
    for (size_t i = d->from; i < d->to; i++) {
        long id = fake_fs_push(fs, d->text.p + d->off[i - d->from]);
        if (id <= 0)
            bench_die("the fake has no live session", NULL);
        if ((i + 1) % every == 0 || i + 1 == d->to) {
            snprintf(token, token_len, "T%dx%09zu", d->version, i + 1);
            bench_push_consistent(fs, token, d->last_update_us + 1);
        }
        if (id - window > fake_fs_stat(fs, FAKE_FS_LAST_AID) &&
            !fake_fs_wait(fs, FAKE_FS_LAST_AID, id - window / 2, 120000))
            bench_dief("the agent acknowledged nothing past array %ld for 120 s",
                       fake_fs_stat(fs, FAKE_FS_LAST_AID));
    }
}

/* Waits (polling every 5 ms, a primary-key read) until the checkpoint of employees holds
 * `token`: the sink commits it behind every row it covers. Returns the time it was seen. */
static inline double bench_wait_token(MYSQL *m, const char *token, double timeout_s)
{
    char sql[256];
    double t0 = bench_now();

    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM firesync_checkpoint WHERE target = 'employees' AND "
             "resume_token = '%s'",
             token);
    for (;;) {
        double t = bench_now();
        if (bench_scalar(m, "%s", sql) == 1)
            return t;
        if (t - t0 > timeout_s)
            bench_dief("the checkpoint did not reach %s within %.0f s", token, timeout_s);
        if (bench_st.agent && bench_st.agent->pid > 0 &&
            waitpid(bench_st.agent->pid, NULL, WNOHANG) == bench_st.agent->pid) {
            bench_st.agent->pid = 0;
            bench_dief("the agent exited; see %s/agent-%d.log", bench_st.agent->dir,
                       bench_st.agent->runs);
        }
        bench_sleep_ms(5);
    }
}

#endif
