/*
 * test_security.c - what the README's "Security" section promises, checked on the real binary:
 * plain http:// to anything but loopback is refused (by http_check_url, by check-config with
 * file:line:col, and at startup), a TLS server whose certificate does not verify is refused;
 * no password, access token, private key or JWT assertion reaches the logs, the status file,
 * the metrics file, command output or error text (the agent runs at debug level with an inline
 * MySQL password, and with a service-account key against the fake token endpoint); the control
 * socket is 0600 and the status file 0644 whatever the umask; key and password files readable
 * by others are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "firestore/http.h"
#include "tests/fake/fake_fs.h"
#include "tests/harness/agent_util.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <arpa/inet.h>
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
#include <uv.h>

#define WAIT_MS 30000
#define PASSWORD "Pw-5ecret-XYZZY-42"
#define TOKEN "ya29.SECRET-ACCESS-TOKEN-0123456789"

#define COLLS                                                                                     \
    "[[collections]]\npath = \"s\"\ntable = \"s\"\n[collections.columns]\n"                        \
    "name = { field = \"name\", type = \"VARCHAR(100)\" }\n"

static struct agent_env ae;
static fake_fs *fs;

static int teardown(void **state)
{
    (void)state;
    agent_env_cleanup(&ae);
    fake_fs_free(fs);
    fs = NULL;
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    buf b;
    char tmp[65536];
    size_t n;

    if (!f)
        return xstrdup("");
    buf_init(&b, 0);
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        buf_add(&b, tmp, n);
    fclose(f);
    buf_add(&b, "", 1);
    return buf_take(&b);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

/* Replaces the first `from` in the config with `to`. */
static void edit_config(const char *from, const char *to)
{
    char *text = slurp(ae.config), *p = strstr(text, from);
    FILE *f;

    if (!p)
        fail_msg("\"%s\" not in %s", from, ae.config);
    f = fopen(ae.config, "w");
    fprintf(f, "%.*s%s%s", (int)(p - text), text, to, p + strlen(from));
    fclose(f);
    free(text);
}

/* Removes the whole line that starts with `prefix`. */
static void drop_config_line(const char *prefix)
{
    char *text = slurp(ae.config), *p = strstr(text, prefix), *end;
    FILE *f;

    assert_non_null(p);
    end = strchr(p, '\n');
    f = fopen(ae.config, "w");
    fprintf(f, "%.*s%s", (int)(p - text), text, end ? end + 1 : "");
    fclose(f);
    free(text);
}

/* Fails naming the file when `secret` (or its base64 in a JWT) appears in `text`. */
static void assert_absent(const char *what, const char *text, const char *secret)
{
    if (secret && *secret && strstr(text, secret))
        fail_msg("a secret (%.12s...) appears in %s", secret, what);
}

/* Every file the agent wrote (its logs, status file, metrics file) and `extra` output. */
static void assert_nothing_leaks(const char *const *secrets, size_t nsecrets, const char *extra)
{
    char path[800];
    const char *files[] = {"status.json", "metrics.prom"};

    for (int run = 1; run <= ae.runs; run++) {
        snprintf(path, sizeof(path), "%s/agent-%d.log", ae.dir, run);
        char *t = slurp(path);
        assert_true(strlen(t) > 0); /* the agent did write its log */
        for (size_t i = 0; i < nsecrets; i++)
            assert_absent(path, t, secrets[i]);
        free(t);
    }
    for (size_t k = 0; k < sizeof(files) / sizeof(files[0]); k++) {
        snprintf(path, sizeof(path), "%s/%s", ae.dir, files[k]);
        char *t = slurp(path);
        for (size_t i = 0; i < nsecrets; i++)
            assert_absent(path, t, secrets[i]);
        free(t);
    }
    for (size_t i = 0; extra && i < nsecrets; i++)
        assert_absent("command output", extra, secrets[i]);
}

/* A fresh database and an empty emulator project (agent_env_init() empties it). */
static void env_init(const char *name)
{
    assert_int_equal(agent_env_init(&ae, name, COLLS, NULL), 0);
}

/* ---- plain HTTP and TLS ------------------------------------------------------------------- */

static void test_plain_http_is_refused_for_every_non_loopback_host(void **state)
{
    static const char *refused[] = {
        "http://firestore.googleapis.com/v1",
        "http://10.0.0.5:8080/x",
        "http://127.0.0.1.nip.io/",          /* a name that starts like loopback */
        "http://localhost.evil.example/",
        "http://127.0.0.1@evil.example/",    /* userinfo that looks like the host */
        "http://evil.example#@127.0.0.1/",
        "http://evil.example/?@127.0.0.1",
        "HTTP://evil.example/",
        "http://[::ffff:8.8.8.8]/",
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
        "gopher://127.0.0.1/",
        "//evil.example/",
        "",
    };
    static const char *allowed[] = {
        "http://127.0.0.1:8080/x", "http://127.9.8.7/", "http://localhost:1/",
        "http://[::1]:80/",        "https://firestore.googleapis.com/",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        fserr e = {0};
        if (http_check_url(refused[i], &e) == 0)
            fail_msg("http_check_url accepted \"%s\"", refused[i]);
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        fserr e = {0};
        if (http_check_url(allowed[i], &e) != 0)
            fail_msg("http_check_url refused \"%s\": %s", allowed[i], e.msg);
    }
}

static void test_check_config_and_startup_refuse_plain_http_to_remote_hosts(void **state)
{
    char out[16384], path[800];
    (void)state;
    assert_int_equal(agent_env_init(&ae, "secplain", COLLS, NULL), 0);
    snprintf(path, sizeof(path), "%s/plain.toml", ae.dir);
    write_text(path,
               "[firestore]\nproject_id = \"p\"\nendpoint = \"http://firestore.example.com\"\n"
               "[mysql]\ndatabase = \"x\"\n" COLLS,
               0600);
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "check-config", path, NULL), 1);
    if (!strstr(out, "plain.toml:3:12: firestore.endpoint"))
        fail_msg("check-config said:\n%s", out);
    /* and startup, even without check-config */
    assert_int_not_equal(run_firesync(&ae, out, sizeof(out), "tail", "--config", path, NULL), 0);
    assert_non_null(strstr(out, "firestore.example.com"));
    write_text(path,
               "[firestore]\nproject_id = \"p\"\nemulator_host = \"192.0.2.7:8080\"\n"
               "[mysql]\ndatabase = \"x\"\n" COLLS,
               0600);
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "check-config", path, NULL), 1);
    if (!strstr(out, "plain.toml:3:17: firestore.emulator_host \"192.0.2.7:8080\" is not a loopback"))
        fail_msg("check-config said:\n%s", out);
}

/* A TLS server with a self-signed certificate (openssl s_server). */
struct tls_server {
    pid_t pid;
    int port;
    char dir[64];
};

static int free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t n = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static bool port_open(int port)
{
    struct sockaddr_in a = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;

    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

static void tls_server_start(struct tls_server *t)
{
    char cmd[512], accept_arg[64], cert[128], key[128];

    snprintf(t->dir, sizeof(t->dir), "/tmp/fs-sectls.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(cert, sizeof(cert), "%s/cert.pem", t->dir);
    snprintf(key, sizeof(key), "%s/key.pem", t->dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -days 1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    t->port = free_port();
    snprintf(accept_arg, sizeof(accept_arg), "127.0.0.1:%d", t->port);
    t->pid = fork();
    if (t->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execlp("openssl", "openssl", "s_server", "-quiet", "-www", "-accept", accept_arg, "-cert",
               cert, "-key", key, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && !port_open(t->port); i++)
        usleep(25000);
    assert_true(port_open(t->port));
}

static void tls_server_stop(struct tls_server *t)
{
    char cmd[128];
    kill(t->pid, SIGTERM);
    waitpid(t->pid, NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
    assert_int_equal(system(cmd), 0);
}

struct tls_probe {
    bool done;
    int rc;
    long status;
    char msg[512];
};

static void probe_done(void *ud, const struct http_result *res)
{
    struct tls_probe *p = ud;
    p->done = true;
    p->rc = res->rc;
    p->status = res->status;
    if (res->err)
        snprintf(p->msg, sizeof(p->msg), "%s", res->err->msg);
}

static void closed(void *ud)
{
    *(bool *)ud = true;
}

static void test_tls_server_whose_certificate_does_not_verify_is_refused(void **state)
{
    struct tls_server t;
    uv_loop_t loop;
    fserr e = {0};
    http_client *c;
    struct tls_probe p = {0};
    struct http_req_opts o = {0};
    char url[128];
    bool is_closed = false;
    (void)state;

    tls_server_start(&t);
    uv_loop_init(&loop);
    c = http_client_new(&loop, &e);
    assert_non_null(c);
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/", t.port);
    o.url = url;
    o.timeout_ms = 10000;
    o.on_done = probe_done;
    o.ud = &p;
    assert_non_null(http_request_new(c, &o, &e));
    while (!p.done)
        uv_run(&loop, UV_RUN_ONCE);
    http_client_close(c, closed, &is_closed);
    while (!is_closed)
        uv_run(&loop, UV_RUN_ONCE);
    http_client_free(c);
    uv_loop_close(&loop);
    tls_server_stop(&t);
    /* the server answers any request with 200: a response means verification was skipped */
    assert_int_not_equal(p.rc, 0);
    assert_int_equal(p.status, 0);
    if (!strstr(p.msg, "certificate") && !strstr(p.msg, "SSL") && !strstr(p.msg, "TLS"))
        fail_msg("refused, but not for TLS: %s", p.msg);
}

/* ---- secrets ------------------------------------------------------------------------------ */

static void test_mysql_password_never_reaches_logs_status_metrics_or_output(void **state)
{
    char sql[512], metrics[800], line[900], out[65536], all[200000] = "";
    fserr e = {0};
    const char *secrets[] = {PASSWORD, "Wrong-" PASSWORD};
    (void)state;

    env_init("secpw");
    snprintf(sql, sizeof(sql),
             "CREATE USER IF NOT EXISTS 'fssec'@'localhost' IDENTIFIED BY '" PASSWORD "';"
             "GRANT ALL ON `%s`.* TO 'fssec'@'localhost';",
             ae.db);
    assert_int_equal(svc_mysql_exec(&ae.svc, sql, &e), 0);
    drop_config_line("password_file = ");
    edit_config("user = \"firesync\"", "user = \"fssec\"\npassword = \"" PASSWORD "\"");
    snprintf(metrics, sizeof(metrics), "%s/metrics.prom", ae.dir);
    snprintf(line, sizeof(line), "[agent]\nmetrics_file = \"%s\"", metrics);
    edit_config("[agent]", line);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    if (!agent_wait_state(&ae, "healthy", WAIT_MS))
        fail_msg("the agent did not become healthy; see %s/agent-%d.log", ae.dir, ae.runs);
    assert_int_equal(fs_put(&ae, "s", "d1", "{\"name\":{\"stringValue\":\"x\"}}"), 0);
    assert_true(sql_wait(&ae, "x", WAIT_MS, "SELECT name FROM s WHERE id='d1'"));
    /* a value that dead-letters, so that error paths run too */
    assert_int_equal(fs_put(&ae, "s", "d2", "{\"name\":{\"integerValue\":\"1\"}}"), 0);
    assert_true(sql_wait(&ae, "1", WAIT_MS, "SELECT COUNT(*) FROM firesync_dead_letter"));
    usleep(500000); /* a status and metrics refresh */
    /* what commands print */
    run_firesync(&ae, out, sizeof(out), "check-config", ae.config, NULL);
    assert_non_null(strstr(out, "[redacted]"));
    strcat(all, out);
    run_firesync(&ae, out, sizeof(out), "status", "--live", "--config", ae.config, NULL);
    strcat(all, out);
    run_firesync(&ae, out, sizeof(out), "status", "--json", "--config", ae.config, NULL);
    strcat(all, out);
    run_firesync(&ae, out, sizeof(out), "check-config", "--connect", ae.config, NULL);
    strcat(all, out);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    /* a wrong password: access denied, said without the password */
    edit_config(PASSWORD, "Wrong-" PASSWORD);
    run_firesync(&ae, out, sizeof(out), "check-config", "--connect", ae.config, NULL);
    assert_non_null(strstr(out, "ccess denied"));
    strcat(all, out);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    for (int i = 0; i < 100; i++) {
        char logpath[800], *log;
        bool denied;
        snprintf(logpath, sizeof(logpath), "%s/agent-%d.log", ae.dir, ae.runs);
        log = slurp(logpath);
        denied = strstr(log, "ccess denied") != NULL;
        free(log);
        if (denied)
            break;
        assert_true(i < 99); /* the refusal must be logged */
        usleep(100000);
    }
    agent_stop(&ae, SIGTERM, 10000);
    /* the metrics file exists: the scan below covers it */
    assert_int_equal(access(metrics, R_OK), 0);
    assert_nothing_leaks(secrets, 2, all);
}

/* A throwaway service-account key (mode 0600 unless told) whose token_uri is the fake's. */
static char *write_key(const char *dir, const char *token_uri, mode_t mode, char **pem_out)
{
    EVP_PKEY *pkey = EVP_RSA_gen(2048);
    BIO *bio = BIO_new(BIO_s_mem());
    cJSON *o = cJSON_CreateObject();
    char *pem, *json, *path = xasprintf("%s/key.json", dir), *data;
    long n;

    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
    n = BIO_get_mem_data(bio, &data);
    pem = xstrndup(data, (size_t)n);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    cJSON_AddStringToObject(o, "type", "service_account");
    cJSON_AddStringToObject(o, "project_id", "p-secsa");
    cJSON_AddStringToObject(o, "private_key_id", "0123456789abcdef0123456789abcdef01234567");
    cJSON_AddStringToObject(o, "private_key", pem);
    cJSON_AddStringToObject(o, "client_email", "firesync@p-secsa.iam.gserviceaccount.com");
    cJSON_AddStringToObject(o, "token_uri", token_uri);
    json = cJSON_Print(o);
    cJSON_Delete(o);
    unlink(path);
    write_text(path, json, mode);
    cJSON_free(json);
    *pem_out = pem;
    return path;
}

/* The agent's config switched from the emulator to the fake with a service-account key. */
static char *use_fake_with_key(mode_t key_mode, char **pem)
{
    char from[64], line[1200], *key, token_uri[128];

    fs = fake_fs_start();
    assert_non_null(fs);
    fake_fs_set_noop_on_empty_get(fs, false);
    fake_fs_set_token(fs, TOKEN, 3600);
    snprintf(token_uri, sizeof(token_uri), "%s/token", fake_fs_url(fs));
    key = write_key(ae.dir, token_uri, key_mode, pem);
    snprintf(from, sizeof(from), "emulator_host = \"127.0.0.1:%d\"", ae.svc.emulator_port);
    snprintf(line, sizeof(line), "endpoint = \"%s\"\ncredentials_file = \"%s\"", fake_fs_url(fs),
             key);
    edit_config(from, line);
    return key;
}

static void test_access_token_key_and_assertion_never_reach_logs_status_or_metrics(void **state)
{
    char *pem, *key, *assertion, *hs, metrics[800], line[900], out[65536];
    char pem_piece[65] = "", *sig;
    const char *body;
    (void)state;

    assert_int_equal(agent_env_init(&ae, "secsa", COLLS, NULL), 0);
    key = use_fake_with_key(0600, &pem);
    snprintf(metrics, sizeof(metrics), "%s/metrics.prom", ae.dir);
    snprintf(line, sizeof(line), "[agent]\nmetrics_file = \"%s\"", metrics);
    edit_config("[agent]", line);
    /* the first token request fails, with the server echoing what it got (a hostile server) */
    fake_fs_fail_next(fs, FAKE_FS_REQ_TOKEN, 400,
                      "{\"error\":\"invalid_grant\",\"error_description\":\"Bearer " TOKEN "\"}");
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(fake_fs_wait(fs, FAKE_FS_TOKENS, 2, WAIT_MS));
    assert_true(fake_fs_wait(fs, FAKE_FS_SESSIONS, 1, WAIT_MS));
    /* the token was really used: the handshake carried it */
    hs = fake_fs_handshake_headers(fs);
    assert_non_null(hs);
    assert_non_null(strstr(hs, TOKEN));
    free(hs);
    assert_true(fake_fs_wait_map(fs, "\"targetId\":2", WAIT_MS));
    fake_fs_pushf(fs, "[{\"targetChange\":{\"targetChangeType\":\"ADD\",\"targetIds\":[2]}}]");
    fake_fs_pushf(fs, "[{\"documentChange\":{\"document\":{\"name\":\"projects/%s/databases/"
                      "(default)/documents/s/d1\",\"fields\":{\"name\":{\"stringValue\":\"x\"}},"
                      "\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":"
                      "\"2026-01-01T00:00:01Z\"},\"targetIds\":[2]}}]",
                  ae.project);
    fake_fs_push(fs, "[{\"targetChange\":{\"targetChangeType\":\"CURRENT\",\"targetIds\":[2],"
                     "\"resumeToken\":\"VDE=\"}}]");
    fake_fs_push(fs, "[{\"targetChange\":{\"resumeToken\":\"VDI=\","
                     "\"readTime\":\"2026-01-01T00:00:02Z\"}}]");
    assert_true(sql_wait(&ae, "x", WAIT_MS, "SELECT name FROM s WHERE id='d1'"));
    assert_true(agent_wait_state(&ae, "healthy", WAIT_MS));
    run_firesync(&ae, out, sizeof(out), "status", "--live", "--config", ae.config, NULL);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);

    assertion = fake_fs_token_assertion(fs);
    assert_non_null(assertion);
    sig = strrchr(assertion, '.'); /* the RS256 signature: proof of the key */
    assert_non_null(sig);
    /* a line of the PEM body (never a header line) */
    body = strchr(pem, '\n');
    assert_non_null(body);
    snprintf(pem_piece, sizeof(pem_piece), "%.64s", body + 1);
    {
        const char *secrets[] = {TOKEN, assertion, sig + 1, pem_piece};
        char logpath[800], *log;
        assert_nothing_leaks(secrets, 4, out);
        /* the echoed error did reach the log, scrubbed */
        snprintf(logpath, sizeof(logpath), "%s/agent-1.log", ae.dir);
        log = slurp(logpath);
        assert_non_null(strstr(log, "invalid_grant: Bearer [redacted]"));
        free(log);
    }
    free(assertion);
    free(pem);
    free(key);
}

/* ---- files and modes ---------------------------------------------------------------------- */

static void test_control_socket_is_0600_and_status_file_0644_whatever_the_umask(void **state)
{
    struct stat st;
    char sock[800];
    mode_t old;
    (void)state;

    env_init("secmode");
    old = umask(0); /* the agent inherits the most permissive umask... */
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    umask(old);
    if (!agent_wait_state(&ae, "healthy", WAIT_MS))
        fail_msg("the agent did not become healthy; see %s/agent-%d.log", ae.dir, ae.runs);
    snprintf(sock, sizeof(sock), "%s/control.sock", ae.dir);
    assert_int_equal(stat(sock, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(ae.status, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    /* ...and the most restrictive one: the status file stays readable for `firesync status` */
    old = umask(077);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    umask(old);
    assert_true(agent_wait_state(&ae, "healthy", WAIT_MS));
    assert_int_equal(stat(ae.status, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(stat(sock, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_key_and_password_files_readable_by_others_are_refused(void **state)
{
    char *pem, *key, out[65536], pwfile[800];
    const char *body;
    char pem_piece[65];
    (void)state;

    assert_int_equal(agent_env_init(&ae, "seckey", COLLS, NULL), 0);
    key = use_fake_with_key(0644, &pem);
    assert_int_not_equal(run_firesync(&ae, out, sizeof(out), "tail", "--config", ae.config, NULL),
                         0);
    if (!strstr(out, "chmod 600"))
        fail_msg("a 0644 key file was not refused for its mode:\n%s", out);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_TOKENS), 0); /* nothing was sent */
    body = strchr(pem, '\n');
    snprintf(pem_piece, sizeof(pem_piece), "%.64s", body + 1);
    assert_absent("tail's output", out, pem_piece);
    /* group-readable is refused too */
    assert_int_equal(chmod(key, 0640), 0);
    assert_int_not_equal(run_firesync(&ae, out, sizeof(out), "tail", "--config", ae.config, NULL),
                         0);
    assert_non_null(strstr(out, "chmod 600"));
    /* the MySQL password file */
    snprintf(pwfile, sizeof(pwfile), "%s/mysql-password", ae.dir);
    assert_int_equal(chmod(key, 0600), 0);
    assert_int_equal(chmod(pwfile, 0604), 0);
    assert_int_not_equal(run_firesync(&ae, out, sizeof(out), "run", "--config", ae.config, NULL),
                         0);
    if (!strstr(out, "readable by group or others"))
        fail_msg("a 0604 password file was not refused for its mode:\n%s", out);
    assert_absent("run's output", out, "fs-pass-123");
    free(pem);
    free(key);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_plain_http_is_refused_for_every_non_loopback_host),
        T(test_check_config_and_startup_refuse_plain_http_to_remote_hosts),
        T(test_tls_server_whose_certificate_does_not_verify_is_refused),
        T(test_mysql_password_never_reaches_logs_status_metrics_or_output),
        T(test_access_token_key_and_assertion_never_reach_logs_status_or_metrics),
        T(test_control_socket_is_0600_and_status_file_0644_whatever_the_umask),
        T(test_key_and_password_files_readable_by_others_are_refused),
    };
    return cmocka_run_group_tests_name("security", tests, NULL, NULL);
}
