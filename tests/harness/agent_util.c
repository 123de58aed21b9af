/*
 * agent_util.c - running the real agent in end-to-end tests (see agent_util.h). Owns nothing
 * beyond each call; the scratch directory is removed by agent_env_cleanup().
 */
#include "tests/harness/agent_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, mode);
}

int agent_env_init(struct agent_env *ae, const char *name, const char *collections_toml,
                   const char *agent_extra)
{
    fserr e = {0};
    char sql[512], path[700], cfg[8192];

    memset(ae, 0, sizeof(*ae));
    if (svc_env_load(&ae->svc, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    snprintf(ae->dir, sizeof(ae->dir), "%s/%s", ae->svc.dir, name);
    mkdir(ae->dir, 0700);
    snprintf(ae->project, sizeof(ae->project), "p-%s", name);
    for (char *c = ae->project; *c; c++)
        if (*c == '_')
            *c = '-';
    snprintf(ae->db, sizeof(ae->db), "e2e_%s", name);
    {
        /* the emulator keeps documents across runs of one services directory: start empty */
        struct svc_env env = ae->svc;
        snprintf(env.project, sizeof(env.project), "%s", ae->project);
        if (svc_emulator_clear(&env, &e) != 0) {
            fprintf(stderr, "%s\n", e.msg);
            return -1;
        }
    }
    snprintf(sql, sizeof(sql),
             "DROP DATABASE IF EXISTS `%s`; CREATE DATABASE `%s`;"
             "CREATE USER IF NOT EXISTS 'firesync'@'localhost' IDENTIFIED BY 'fs-pass-123';"
             "GRANT ALL ON `%s`.* TO 'firesync'@'localhost';",
             ae->db, ae->db, ae->db);
    if (svc_mysql_exec(&ae->svc, sql, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/mysql-password", ae->dir);
    write_file(path, "fs-pass-123\n", 0600);
    snprintf(ae->config, sizeof(ae->config), "%s/config.toml", ae->dir);
    snprintf(ae->status, sizeof(ae->status), "%s/status.json", ae->dir);
    snprintf(cfg, sizeof(cfg),
             "[firestore]\nproject_id = \"%s\"\nemulator_host = \"127.0.0.1:%d\"\n\n"
             "[mysql]\nsocket = \"%s\"\nuser = \"firesync\"\npassword_file = \"%s\"\n"
             "database = \"%s\"\nreconnect_min = \"50ms\"\nreconnect_max = \"500ms\"\n\n"
             "[agent]\nstatus_file = \"%s\"\ncontrol_socket = \"%s/control.sock\"\n"
             "status_interval = \"200ms\"\nlog_level = \"debug\"\n%s\n\n%s",
             ae->project, ae->svc.emulator_port, ae->svc.mysql_socket, path, ae->db,
             ae->status, ae->dir, agent_extra ? agent_extra : "", collections_toml);
    return write_file(ae->config, cfg, 0600);
}

int agent_config_replace(struct agent_env *ae, const char *from, const char *to)
{
    char text[16384], out[17000], *p;
    FILE *f = fopen(ae->config, "r");
    size_t n;

    if (!f)
        return -1;
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    if (!(p = strstr(text, from)))
        return -1;
    snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
    if (!(f = fopen(ae->config, "w")))
        return -1;
    fputs(out, f);
    return fclose(f) == 0 ? 0 : -1;
}

void agent_env_cleanup(struct agent_env *ae)
{
    if (ae->pid > 0)
        agent_stop(ae, SIGKILL, 5000);
}

int agent_start(struct agent_env *ae, const char *extra_arg1, const char *extra_arg2)
{
    const char *bin = getenv("FIRESYNC_BIN");
    char log[700];
    pid_t pid;

    if (!bin)
        bin = "./firesync";
    snprintf(log, sizeof(log), "%s/agent-%d.log", ae->dir, ++ae->runs);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0", 0);
        execl(bin, bin, "run", "--config", ae->config, extra_arg1, extra_arg2, (char *)NULL);
        _exit(127);
    }
    ae->pid = pid;
    return 0;
}

int agent_stop(struct agent_env *ae, int sig, int timeout_ms)
{
    long t0 = now_ms();
    int st;

    if (ae->pid <= 0)
        return -1;
    kill(ae->pid, sig);
    for (;;) {
        pid_t r = waitpid(ae->pid, &st, WNOHANG);
        if (r == ae->pid)
            break;
        if (now_ms() - t0 > timeout_ms) {
            kill(ae->pid, SIGKILL);
            waitpid(ae->pid, &st, 0);
            ae->pid = 0;
            return -1;
        }
        sleep_ms(20);
    }
    ae->pid = 0;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

bool agent_wait_state(struct agent_env *ae, const char *state, int timeout_ms)
{
    long t0 = now_ms();
    char want[64], text[65536];

    snprintf(want, sizeof(want), "\"state\":\t\"%s\"", state);
    while (now_ms() - t0 < timeout_ms) {
        FILE *f = fopen(ae->status, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof(text) - 1, f);
            text[n] = '\0';
            fclose(f);
            if (strstr(text, want))
                return true;
        }
        sleep_ms(50);
    }
    return false;
}

static int rest(struct agent_env *ae, const char *method, const char *path, const char *body)
{
    char url[1200];
    long status = 0;
    fserr e = {0};
    struct svc_env env = ae->svc;

    snprintf(env.project, sizeof(env.project), "%s", ae->project);
    snprintf(url, sizeof(url), "/v1/projects/%s/databases/(default)/documents%s", ae->project,
             path);
    if (svc_http(&env, method, url, body, NULL, &status, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    if (status != 200) {
        fprintf(stderr, "%s %s: HTTP %ld\n", method, url, status);
        return -1;
    }
    return 0;
}

int fs_put(struct agent_env *ae, const char *coll, const char *id, const char *fields_json)
{
    char path[600], *body;
    int rc;
    size_t n = strlen(fields_json) + 32;

    snprintf(path, sizeof(path), "/%s/%s", coll, id);
    body = malloc(n);
    snprintf(body, n, "{\"fields\":%s}", fields_json);
    rc = rest(ae, "PATCH", path, body);
    free(body);
    return rc;
}

int fs_delete(struct agent_env *ae, const char *coll, const char *id)
{
    char path[600];
    snprintf(path, sizeof(path), "/%s/%s", coll, id);
    return rest(ae, "DELETE", path, NULL);
}

int fs_commit(struct agent_env *ae, const char *writes_json)
{
    return rest(ae, "POST", ":commit", writes_json);
}

static MYSQL *db_connect(struct agent_env *ae)
{
    fserr e = {0};
    MYSQL *m = svc_mysql_connect(&ae->svc, ae->db, &e);
    if (!m)
        fprintf(stderr, "%s\n", e.msg);
    return m;
}

int sql_exec(struct agent_env *ae, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    MYSQL *m = db_connect(ae);
    int rc;

    if (!m)
        return -1;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    rc = mysql_query(m, sql);
    if (rc)
        fprintf(stderr, "%s: %s\n", sql, mysql_error(m));
    mysql_close(m);
    return rc ? -1 : 0;
}

static const char *vscalar(struct agent_env *ae, const char *fmt, va_list ap)
{
    static char out[4096];
    char sql[8192];
    MYSQL *m = db_connect(ae);
    MYSQL_RES *r;
    MYSQL_ROW row;

    snprintf(out, sizeof(out), "<error>");
    if (!m)
        return out;
    vsnprintf(sql, sizeof(sql), fmt, ap);
    if (mysql_query(m, sql) == 0 && (r = mysql_store_result(m))) {
        row = mysql_fetch_row(r);
        snprintf(out, sizeof(out), "%s", !row ? "<none>" : row[0] ? row[0] : "");
        mysql_free_result(r);
    }
    mysql_close(m);
    return out;
}

const char *sql_scalar(struct agent_env *ae, const char *fmt, ...)
{
    va_list ap;
    const char *s;
    va_start(ap, fmt);
    s = vscalar(ae, fmt, ap);
    va_end(ap);
    return s;
}

bool sql_wait(struct agent_env *ae, const char *want, int timeout_ms, const char *fmt, ...)
{
    long t0 = now_ms();
    const char *got = "";

    while (now_ms() - t0 < timeout_ms) {
        va_list ap;
        va_start(ap, fmt);
        got = vscalar(ae, fmt, ap);
        va_end(ap);
        if (strcmp(got, want) == 0)
            return true;
        sleep_ms(50);
    }
    fprintf(stderr, "sql_wait: want \"%s\", last got \"%s\" (%s)\n", want, got, fmt);
    return false;
}

long rows_changed(struct agent_env *ae, const char *table)
{
    const char *v = sql_scalar(ae,
                               "SELECT IFNULL(SUM(ROWS_CHANGED),0) FROM "
                               "information_schema.TABLE_STATISTICS WHERE TABLE_SCHEMA='%s' "
                               "AND TABLE_NAME='%s'",
                               ae->db, table);
    return atol(v);
}

int run_firesync(struct agent_env *ae, char *out, size_t n, const char *arg, ...)
{
    const char *bin = getenv("FIRESYNC_BIN");
    const char *argv[16];
    int argc = 0, pipefd[2], st;
    va_list ap;
    pid_t pid;
    size_t got = 0;

    (void)ae;
    if (!bin)
        bin = "./firesync";
    argv[argc++] = bin;
    va_start(ap, arg);
    for (const char *a = arg; a && argc < 15; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    if (pipe(pipefd) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    for (;;) {
        char tmp[4096];
        ssize_t r = read(pipefd[0], tmp, sizeof(tmp));
        if (r <= 0)
            break;
        if (out && got + 1 < n) {
            size_t k = (size_t)r < n - 1 - got ? (size_t)r : n - 1 - got;
            memcpy(out + got, tmp, k);
            got += k;
        }
    }
    if (out && n)
        out[got] = '\0';
    close(pipefd[0]);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
