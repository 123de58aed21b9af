/*
 * svc.c - starts, finds and stops the private MariaDB and the Firestore emulator the
 * integration tests use (see svc.h). State lives in files of the run directory, so that any
 * process of the run can reach or stop the servers; nothing here is used by the agent.
 */
#include "tests/harness/svc.h"

#include "common/xalloc.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(fserr *e)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return fserr_set(e, FS_EIO, "no free TCP port on 127.0.0.1: %s", strerror(errno));
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Runs argv in a new session (its own process group) with stdout and stderr to `log`.
 * When `wait_exit`, waits and returns its exit status; otherwise returns its pid. */
static int spawn(char *const argv[], const char *log, int wait_exit, fserr *e)
{
    pid_t pid = fork();
    int st;

    if (pid < 0)
        return fserr_set(e, FS_EIO, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        setsid();
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 0);
            close(fd);
        }
        execvp(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (!wait_exit)
        return pid;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return fserr_set(e, FS_EIO, "%s failed (exit %d); see %s", argv[0],
                         WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
    return 0;
}

static int write_pid(const char *dir, const char *name, int pid)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.pid", dir, name);
    f = fopen(path, "w");
    if (!f)
        return FS_EIO;
    fprintf(f, "%d\n", pid);
    fclose(f);
    return 0;
}

static int read_pid(const char *dir, const char *name)
{
    char path[512];
    FILE *f;
    int pid = 0;

    snprintf(path, sizeof(path), "%s/%s.pid", dir, name);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

/* Fields of /proc/PID/stat after the command name: state and process group. */
static int proc_stat(int pid, char *state, int *pgrp)
{
    char path[64], pst[512];
    FILE *f;
    size_t n;
    char *rp;
    int ppid;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    n = fread(pst, 1, sizeof(pst) - 1, f);
    fclose(f);
    pst[n] = 0;
    rp = strrchr(pst, ')');
    if (!rp || sscanf(rp + 1, " %c %d %d", state, &ppid, pgrp) != 3)
        return -1;
    return 0;
}

/* Alive and not a zombie (nobody may reap a server whose starter has exited). */
static int alive(int pid)
{
    char state;
    int pgrp;

    return proc_stat(pid, &state, &pgrp) == 0 && state != 'Z';
}

/* Some live (non-zombie) process is still in process group `pgid`. */
static int group_alive(int pgid)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int found = 0;

    if (!d)
        return alive(pgid);
    while (!found && (de = readdir(d))) {
        char state;
        int pgrp, pid = atoi(de->d_name);
        if (pid > 0 && proc_stat(pid, &state, &pgrp) == 0 && pgrp == pgid && state != 'Z')
            found = 1;
    }
    closedir(d);
    return found;
}

static void stop_pid(const char *dir, const char *name)
{
    int pid = read_pid(dir, name);
    char path[512];
    double t0;

    if (pid <= 0)
        return;
    kill(-pid, SIGTERM);
    kill(pid, SIGTERM);
    t0 = now_s();
    while (group_alive(pid) && now_s() - t0 < 10.0) {
        waitpid(pid, NULL, WNOHANG);
        sleep_ms(50);
    }
    if (group_alive(pid)) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    waitpid(pid, NULL, WNOHANG);
    snprintf(path, sizeof(path), "%s/%s.pid", dir, name);
    unlink(path);
}

MYSQL *svc_mysql_connect(const struct svc_env *env, const char *db, fserr *e)
{
    MYSQL *m = mysql_init(NULL);
    unsigned int timeout = 5;

    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!mysql_real_connect(m, NULL, "root", "", db, 0, env->mysql_socket,
                            CLIENT_MULTI_STATEMENTS)) {
        fserr_set(e, FS_EMYSQL_REFUSED, "test MariaDB at %s: %s", env->mysql_socket,
                  mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    return m;
}

static int mariadb_spawn(const struct svc_env *env, fserr *e)
{
    char datadir[512], sock[512], port[32], log[512], logerr[600], binlog[600], tmpdir[512];
    int pid;

    snprintf(datadir, sizeof(datadir), "--datadir=%s/mysql-data", env->dir);
    snprintf(sock, sizeof(sock), "--socket=%s", env->mysql_socket);
    snprintf(port, sizeof(port), "--port=%d", env->mysql_port);
    snprintf(log, sizeof(log), "%s/mariadb.log", env->dir);
    snprintf(logerr, sizeof(logerr), "--log-error=%s/mariadb.err", env->dir);
    snprintf(binlog, sizeof(binlog), "--log-bin=%s/binlog", env->dir);
    /* temporary tables in the run directory, not /tmp: servers running side by side (other
     * runs, benchmarks) never meet in it */
    snprintf(tmpdir, sizeof(tmpdir), "--tmpdir=%s", env->dir);
    char *argv[] = {"mariadbd", "--no-defaults", datadir, sock, port, "--bind-address=127.0.0.1",
                    "--user=root", logerr, binlog, tmpdir, "--userstat=1", "--skip-name-resolve",
                    "--innodb-buffer-pool-size=256M", NULL};
    pid = spawn(argv, log, 0, e);
    if (pid < 0)
        return pid;
    return write_pid(env->dir, "mariadb", pid);
}

static int mariadb_wait(const struct svc_env *env, fserr *e)
{
    double t0 = now_s();
    int pid = read_pid(env->dir, "mariadb");

    for (;;) {
        MYSQL *m = svc_mysql_connect(env, NULL, e);
        if (m) {
            mysql_close(m);
            return 0;
        }
        if (!alive(pid))
            return fserr_set(e, FS_EIO, "mariadbd exited during start; see %s/mariadb.err",
                             env->dir);
        if (now_s() - t0 > 60)
            return fserr_set(e, FS_ETIMEOUT, "mariadbd not ready after 60 s; see %s/mariadb.err",
                             env->dir);
        sleep_ms(100);
    }
}

int svc_mariadb_start(const struct svc_env *env, fserr *e)
{
    int rc = mariadb_spawn(env, e);
    return rc ? rc : mariadb_wait(env, e);
}

int svc_mariadb_stop(const struct svc_env *env, fserr *e)
{
    (void)e;
    stop_pid(env->dir, "mariadb");
    return 0;
}

static int emulator_spawn(const struct svc_env *env, fserr *e)
{
    char port[32], log[512];
    int pid;

    if (access(SVC_EMULATOR_BIN, X_OK) != 0)
        return fserr_set(e, FS_ENOTFOUND,
                         "the Firestore emulator is not installed (%s); install the Debian "
                         "package google-cloud-cli-firestore-emulator from Google's Cloud SDK "
                         "apt repository",
                         SVC_EMULATOR_BIN);
    snprintf(port, sizeof(port), "--port=%d", env->emulator_port);
    snprintf(log, sizeof(log), "%s/emulator.log", env->dir);
    char *argv[] = {SVC_EMULATOR_BIN, "start", "--host=127.0.0.1", port, NULL};
    pid = spawn(argv, log, 0, e);
    if (pid < 0)
        return pid;
    return write_pid(env->dir, "emulator", pid);
}

static int emulator_wait(const struct svc_env *env, fserr *e)
{
    double t0 = now_s();
    int pid = read_pid(env->dir, "emulator");

    for (;;) {
        long status = 0;
        if (svc_http(env, "GET", "/", NULL, NULL, &status, NULL) == 0 && status == 200)
            return 0;
        if (!alive(pid))
            return fserr_set(e, FS_EIO, "the Firestore emulator exited during start; see %s",
                             env->dir);
        if (now_s() - t0 > 90)
            return fserr_set(e, FS_ETIMEOUT,
                             "the Firestore emulator not ready after 90 s; see %s/emulator.log",
                             env->dir);
        sleep_ms(200);
    }
}

static int write_env(const struct svc_env *env, fserr *e)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/env", env->dir);
    f = fopen(path, "w");
    if (!f)
        return fserr_set(e, FS_EIO, "%s: %s", path, strerror(errno));
    fprintf(f, "mysql_socket=%s\nmysql_port=%d\nemulator_port=%d\nproject=%s\n",
            env->mysql_socket, env->mysql_port, env->emulator_port, env->project);
    fclose(f);
    return 0;
}

int svc_mariadb_install(const char *dir, fserr *e)
{
    char datadir[600], dd[700], td[600], log[600];
    struct stat st;

    snprintf(datadir, sizeof(datadir), "%s/mysql-data", dir);
    if (stat(datadir, &st) == 0)
        return 0;
    snprintf(dd, sizeof(dd), "--datadir=%s", datadir);
    snprintf(td, sizeof(td), "--tmpdir=%s", dir);
    snprintf(log, sizeof(log), "%s/mariadb-install.log", dir);
    char *argv[] = {"mariadb-install-db", "--no-defaults", dd, td, "--user=root",
                    "--auth-root-authentication-method=normal", "--skip-test-db", NULL};
    return spawn(argv, log, 1, e);
}

int svc_up(const char *dir, fserr *e)
{
    struct svc_env env = {0};
    int rc, port;

    mkdir(dir, 0700);
    snprintf(env.dir, sizeof(env.dir), "%s", dir);
    snprintf(env.mysql_socket, sizeof(env.mysql_socket), "%s/mysql.sock", dir);
    snprintf(env.project, sizeof(env.project), "%s", SVC_PROJECT);
    if ((port = free_port(e)) < 0)
        return port;
    env.mysql_port = port;
    if ((port = free_port(e)) < 0)
        return port;
    env.emulator_port = port;

    rc = emulator_spawn(&env, e); /* slowest first: Java starts while MariaDB installs */
    if (rc)
        goto out;
    rc = svc_mariadb_install(dir, e);
    if (rc)
        goto out;
    rc = mariadb_spawn(&env, e);
    if (rc)
        goto out;
    rc = mariadb_wait(&env, e);
    if (rc)
        goto out;
    rc = emulator_wait(&env, e);
    if (rc)
        goto out;
    rc = write_env(&env, e);
out:
    if (rc)
        svc_down(dir);
    return rc;
}

void svc_down(const char *dir)
{
    stop_pid(dir, "emulator");
    stop_pid(dir, "mariadb");
}

int svc_env_load(struct svc_env *env, fserr *e)
{
    const char *dir = getenv("FIRESYNC_TEST_DIR");
    char path[512], line[512];
    FILE *f;

    memset(env, 0, sizeof(*env));
    if (!dir || !*dir)
        return fserr_set(e, FS_ENOTFOUND,
                         "FIRESYNC_TEST_DIR is not set: integration tests run under tests/run.sh "
                         "(make check), which starts MariaDB and the Firestore emulator");
    snprintf(env->dir, sizeof(env->dir), "%s", dir);
    snprintf(path, sizeof(path), "%s/env", dir);
    f = fopen(path, "r");
    if (!f)
        return fserr_set(e, FS_ENOTFOUND, "%s: %s (services not started?)", path,
                         strerror(errno));
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "mysql_socket=", 13) == 0)
            snprintf(env->mysql_socket, sizeof(env->mysql_socket), "%s", line + 13);
        else if (strncmp(line, "mysql_port=", 11) == 0)
            env->mysql_port = atoi(line + 11);
        else if (strncmp(line, "emulator_port=", 14) == 0)
            env->emulator_port = atoi(line + 14);
        else if (strncmp(line, "project=", 8) == 0)
            snprintf(env->project, sizeof(env->project), "%s", line + 8);
    }
    fclose(f);
    if (!env->mysql_socket[0] || !env->mysql_port || !env->emulator_port)
        return fserr_set(e, FS_EPARSE, "%s is incomplete", path);
    return 0;
}

int svc_mysql_exec(const struct svc_env *env, const char *sql, fserr *e)
{
    MYSQL *m = svc_mysql_connect(env, NULL, e);
    int rc = 0;

    if (!m)
        return FS_EMYSQL_REFUSED;
    if (mysql_query(m, sql) != 0) {
        rc = fserr_set(e, FS_EMYSQL, "%s: %s", sql, mysql_error(m));
        goto out;
    }
    do {
        MYSQL_RES *r = mysql_store_result(m);
        if (r)
            mysql_free_result(r);
        else if (mysql_errno(m)) {
            rc = fserr_set(e, FS_EMYSQL, "%s: %s", sql, mysql_error(m));
            goto out;
        }
    } while (mysql_next_result(m) == 0);
    if (mysql_errno(m))
        rc = fserr_set(e, FS_EMYSQL, "%s: %s", sql, mysql_error(m));
out:
    mysql_close(m);
    return rc;
}

int svc_mysql_scalar(const struct svc_env *env, const char *sql, char *out, size_t n, fserr *e)
{
    MYSQL *m = svc_mysql_connect(env, NULL, e);
    MYSQL_RES *r;
    MYSQL_ROW row;
    int rc = 0;

    if (!m)
        return FS_EMYSQL_REFUSED;
    out[0] = '\0';
    if (mysql_query(m, sql) != 0 || !(r = mysql_store_result(m))) {
        rc = fserr_set(e, FS_EMYSQL, "%s: %s", sql, mysql_error(m));
        goto out;
    }
    row = mysql_fetch_row(r);
    if (row && row[0])
        snprintf(out, n, "%s", row[0]);
    else if (!row)
        rc = fserr_set(e, FS_ENOTFOUND, "%s: no row", sql);
    mysql_free_result(r);
out:
    mysql_close(m);
    return rc;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    buf *out = ud;
    if (out && buf_add(out, p, size * nmemb) != 0)
        return 0;
    return size * nmemb;
}

int svc_http(const struct svc_env *env, const char *method, const char *path, const char *body,
             buf *out, long *status, fserr *e)
{
    char url[1024];
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    CURLcode cc;

    if (!c)
        return fserr_set(e, FS_ENOMEM, "curl_easy_init failed");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", env->emulator_port, path);
    h = curl_slist_append(h, "Authorization: Bearer owner");
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    cc = curl_easy_perform(c);
    *status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK)
        return fserr_set(e, FS_EHTTP, "%s %s: %s", method, url, curl_easy_strerror(cc));
    return 0;
}

int svc_emulator_clear(const struct svc_env *env, fserr *e)
{
    char path[256];
    long status;
    int rc;

    snprintf(path, sizeof(path), "/emulator/v1/projects/%s/databases/(default)/documents",
             env->project);
    rc = svc_http(env, "DELETE", path, NULL, NULL, &status, e);
    if (rc)
        return rc;
    if (status != 200)
        return fserr_set(e, FS_EHTTPSTATUS, "DELETE %s: HTTP %ld", path, status);
    return 0;
}
