/*
 * conn.c - opening and re-opening the MySQL connection (see conn.h). Owns no long-lived state:
 * the MYSQL handle belongs to the caller, the password lives only for the connect call (and in
 * the log scrubber's list, so that it can never be printed).
 */
#include "mysql/conn.h"

#include "common/log.h"
#include "common/xalloc.h"

#include <errmsg.h>
#include <errno.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int sink_conn_classify(unsigned int n)
{
    switch (n) {
    case 0:
        return 0;
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_UNKNOWN_HOST:
    case CR_IPSOCK_ERROR:
    case CR_SOCKET_CREATE_ERROR:
    case ER_CON_COUNT_ERROR:
    case ER_TOO_MANY_USER_CONNECTIONS:
    case ER_SERVER_SHUTDOWN:
    case ER_NORMAL_SHUTDOWN:
        return FS_EMYSQL_REFUSED;
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case CR_SERVER_LOST_EXTENDED:
    case CR_COMMANDS_OUT_OF_SYNC:
    case ER_CONNECTION_KILLED:
    case ER_QUERY_INTERRUPTED:
        return FS_EMYSQL_LOST;
    case ER_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
    case ER_ACCESS_DENIED_NO_PASSWORD_ERROR:
        return FS_EMYSQL_AUTH;
    case ER_BAD_DB_ERROR:
        return FS_EMYSQL_NODB;
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
        return FS_EMYSQL_DEADLOCK;
    case ER_OPTION_PREVENTS_STATEMENT: /* --read-only */
    case ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION:
        return FS_EMYSQL_READONLY;
    case ER_NO_SUCH_TABLE:
    case ER_BAD_FIELD_ERROR:
    case ER_BAD_TABLE_ERROR:
        return FS_EMYSQL_SCHEMA;
    case ER_TABLEACCESS_DENIED_ERROR:
    case ER_COLUMNACCESS_DENIED_ERROR:
    case ER_SPECIFIC_ACCESS_DENIED_ERROR:
        return FS_EMYSQL_PRIV;
    case CR_SSL_CONNECTION_ERROR:
        return FS_ETLS;
    default:
        return FS_EMYSQL;
    }
}

int sink_conn_error(MYSQL *m, const char *what, fserr *e)
{
    unsigned int n = mysql_errno(m);
    int code = sink_conn_classify(n);

    if (!code)
        return 0;
    return fserr_set(e, code, "%s: %s (MySQL error %u)", what, mysql_error(m), n);
}

int sink_conn_read_password(const char *path, char **out, fserr *e)
{
    struct stat st;
    char line[1024];
    FILE *f = fopen(path, "r");

    *out = NULL;
    if (!f)
        return fserr_set(e, errno == EACCES ? FS_EPERM : FS_ENOTFOUND,
                         "mysql.password_file %s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        fclose(f);
        return fserr_set(e, FS_EPERM,
                         "mysql.password_file %s is readable by group or others; run: chmod 600 %s",
                         path, path);
    }
    if (!fgets(line, sizeof(line), f)) {
        fclose(f);
        return fserr_set(e, FS_ECONFIG, "mysql.password_file %s is empty", path);
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    *out = xstrdup(line);
    explicit_bzero(line, sizeof(line));
    return 0;
}

static void set_tls(MYSQL *m, const struct cfg_mysql *cfg)
{
    my_bool on = 1, off = 0;

    if (cfg->tls_mode == CFG_TLS_DISABLED)
        return;
    /* Connector/C: mysql_ssl_set turns TLS on; ENFORCE makes a server without TLS an error. */
    mysql_ssl_set(m, cfg->tls_key, cfg->tls_cert, cfg->tls_ca, NULL, NULL);
    mysql_options(m, MYSQL_OPT_SSL_ENFORCE, cfg->tls_mode == CFG_TLS_PREFERRED ? &off : &on);
    mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
                  cfg->tls_mode >= CFG_TLS_VERIFY_CA ? &on : &off);
}

static const char session_setup[] =
    "SET time_zone = '+00:00', "
    "sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ENGINE_SUBSTITUTION'";

int sink_conn_open(const struct cfg_mysql *cfg, MYSQL **out, fserr *e)
{
    MYSQL *m = mysql_init(NULL);
    char *pw = NULL, where[400];
    unsigned int ct = (unsigned int)((cfg->connect_timeout_ms + 999) / 1000), rw = 60;
    const char *host = cfg->host;
    int rc = 0;

    *out = NULL;
    if (!m)
        return fserr_set(e, FS_ENOMEM, "mysql_init failed");
    if (cfg->password_file) {
        rc = sink_conn_read_password(cfg->password_file, &pw, e);
        if (rc)
            goto out;
    } else if (cfg->password) {
        pw = xstrdup(cfg->password);
    }
    if (pw)
        log_secret_pin(pw);
    if (cfg->defaults_file) {
        mysql_options(m, MYSQL_READ_DEFAULT_FILE, cfg->defaults_file);
        mysql_options(m, MYSQL_READ_DEFAULT_GROUP, "firesync");
    }
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rw);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rw);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    set_tls(m, cfg);
    if (cfg->socket)
        snprintf(where, sizeof(where), "MySQL at %s (socket %s)", host ? host : "localhost",
                 cfg->socket);
    else
        snprintf(where, sizeof(where), "MySQL at %s:%d", host ? host : "localhost", cfg->port);
    if (!mysql_real_connect(m, host, cfg->user, pw, cfg->database, (unsigned int)cfg->port,
                            cfg->socket, CLIENT_FOUND_ROWS)) {
        rc = sink_conn_error(m, where, e);
        if (!rc)
            rc = fserr_set(e, FS_EMYSQL, "%s: connection failed", where);
        goto out;
    }
    /* Connector/C only refuses a server without TLS when it verifies certificates: check. */
    if (cfg->tls_mode >= CFG_TLS_REQUIRED && !mysql_get_ssl_cipher(m)) {
        rc = fserr_set(e, FS_ETLS, "%s: mysql.tls.mode = \"%s\" but the server does not offer TLS",
                       where, cfg_tls_mode_name(cfg->tls_mode));
        goto out;
    }
    if (mysql_query(m, session_setup) != 0) {
        rc = sink_conn_error(m, "MySQL session setup", e);
        goto out;
    }
out:
    if (pw) {
        explicit_bzero(pw, strlen(pw));
        free(pw);
    }
    if (rc) {
        mysql_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void sink_backoff_init(struct sink_backoff *b, int64_t min_ms, int64_t max_ms, uint64_t seed)
{
    b->min_ms = min_ms > 0 ? min_ms : 1;
    b->max_ms = max_ms > b->min_ms ? max_ms : b->min_ms;
    b->cap_ms = b->min_ms;
    b->rng = seed;
}

int64_t sink_backoff_next(struct sink_backoff *b)
{
    int64_t span = b->cap_ms - b->min_ms;
    int64_t d = b->min_ms + (span > 0 ? (int64_t)(splitmix(&b->rng) % (uint64_t)(span + 1)) : 0);

    b->cap_ms = b->cap_ms > b->max_ms / 2 ? b->max_ms : b->cap_ms * 2;
    return d;
}

void sink_backoff_reset(struct sink_backoff *b)
{
    b->cap_ms = b->min_ms;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sink_conn_open_retry(const struct cfg_mysql *cfg, int64_t max_wait_ms,
                         const atomic_bool *stop, MYSQL **out, fserr *e)
{
    struct sink_backoff b;
    int64_t t0 = mono_ms();
    int rc, attempt = 0;

    sink_backoff_init(&b, cfg->reconnect_min_ms, cfg->reconnect_max_ms,
                      (uint64_t)t0 ^ ((uint64_t)getpid() << 32));
    for (;;) {
        rc = sink_conn_open(cfg, out, e);
        attempt++;
        if (rc == 0 || !fserr_transient(rc))
            return rc;
        int64_t d = sink_backoff_next(&b), waited = mono_ms() - t0;
        if (max_wait_ms && waited + d > max_wait_ms)
            return fserr_prefix(e, "gave up after %d attempts in %lld ms", attempt,
                                (long long)waited);
        log_warn("%s; retrying in %lld ms", e ? e->msg : fserr_str(rc), (long long)d);
        for (int64_t slept = 0; slept < d; slept += 50) {
            if (stop && atomic_load(stop))
                return fserr_set(e, FS_ECANCELED, "MySQL connect canceled");
            struct timespec ts = {0, (d - slept < 50 ? d - slept : 50) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}
