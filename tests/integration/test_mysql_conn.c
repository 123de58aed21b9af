/*
 * test_mysql_conn.c - the MySQL connection (mysql/conn.c) against the private MariaDB that
 * tests/run.sh starts: real connects over socket and TCP, each failure classified with a clear
 * message, password files, bounded retry, and a utf8mb4 round trip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/log.h"
#include "mysql/conn.h"
#include "tests/harness/svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct svc_env env;

static int setup(void **state)
{
    fserr e = {0};
    (void)state;
    if (svc_env_load(&env, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    if (svc_mysql_exec(&env,
                       "CREATE DATABASE IF NOT EXISTS conn_test;"
                       "CREATE USER IF NOT EXISTS 'fsuser'@'localhost' IDENTIFIED BY 'pw-s3cret';"
                       "CREATE USER IF NOT EXISTS 'fsuser'@'127.0.0.1' IDENTIFIED BY 'pw-s3cret';"
                       "GRANT ALL ON conn_test.* TO 'fsuser'@'localhost';"
                       "GRANT ALL ON conn_test.* TO 'fsuser'@'127.0.0.1';",
                       &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    return 0;
}

static void base_cfg(struct cfg_mysql *m)
{
    memset(m, 0, sizeof(*m));
    m->host = "localhost";
    m->socket = env.mysql_socket;
    m->port = env.mysql_port;
    m->user = "fsuser";
    m->password = "pw-s3cret";
    m->database = "conn_test";
    m->tls_mode = CFG_TLS_DISABLED;
    m->connect_timeout_ms = 2000;
    m->reconnect_min_ms = 20;
    m->reconnect_max_ms = 100;
}

static void test_connects_over_unix_socket_with_password(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    (void)state;

    base_cfg(&c);
    assert_int_equal(sink_conn_open(&c, &m, &e), 0);
    assert_non_null(m);
    mysql_close(m);
}

static void test_connects_over_tcp(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    (void)state;

    base_cfg(&c);
    c.host = "127.0.0.1";
    c.socket = NULL;
    assert_int_equal(sink_conn_open(&c, &m, &e), 0);
    mysql_close(m);
}

static void test_session_is_utc_strict_and_utf8mb4(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    MYSQL_RES *r;
    MYSQL_ROW row;
    fserr e = {0};
    (void)state;

    base_cfg(&c);
    assert_int_equal(sink_conn_open(&c, &m, &e), 0);
    assert_int_equal(mysql_query(m, "DROP TABLE IF EXISTS t_utf8"), 0);
    assert_int_equal(mysql_query(m, "CREATE TABLE t_utf8 (s VARCHAR(20) CHARACTER SET utf8mb4 "
                                    "COLLATE utf8mb4_bin) DEFAULT CHARSET=utf8mb4"),
                     0);
    assert_int_equal(mysql_query(m, "INSERT INTO t_utf8 VALUES ('é日本😀')"), 0);
    /* strict mode: too long is an error, not a silent truncation */
    assert_int_not_equal(mysql_query(m, "INSERT INTO t_utf8 VALUES (REPEAT('x', 21))"), 0);
    assert_int_equal(mysql_query(m, "SELECT s, @@session.time_zone FROM t_utf8"), 0);
    r = mysql_store_result(m);
    row = mysql_fetch_row(r);
    assert_string_equal(row[0], "é日本😀");
    assert_string_equal(row[1], "+00:00");
    mysql_free_result(r);
    mysql_close(m);
}

static void test_wrong_password_is_an_auth_error_without_the_password(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    (void)state;

    base_cfg(&c);
    c.password = "wrong-guess-123";
    assert_int_equal(sink_conn_open(&c, &m, &e), FS_EMYSQL_AUTH);
    assert_null(m);
    assert_false(fserr_transient(e.code));
    assert_non_null(strstr(e.msg, "Access denied"));
    assert_null(strstr(e.msg, "wrong-guess-123"));
}

static void test_unknown_database_is_named(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    (void)state;

    base_cfg(&c);
    c.user = "root";
    c.password = NULL;
    c.database = "no_such_db";
    assert_int_equal(sink_conn_open(&c, &m, &e), FS_EMYSQL_NODB);
    assert_non_null(strstr(e.msg, "no_such_db"));
}

static void test_refused_port_is_transient(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    (void)state;

    base_cfg(&c);
    c.host = "127.0.0.1";
    c.socket = NULL;
    c.port = 1; /* nothing listens there */
    assert_int_equal(sink_conn_open(&c, &m, &e), FS_EMYSQL_REFUSED);
    assert_true(fserr_transient(e.code));
    assert_non_null(strstr(e.msg, "127.0.0.1:1"));
}

static void test_retry_gives_up_after_its_deadline(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    struct timespec t0, t1;
    (void)state;

    base_cfg(&c);
    c.host = "127.0.0.1";
    c.socket = NULL;
    c.port = 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(sink_conn_open_retry(&c, 500, NULL, &m, &e), FS_EMYSQL_REFUSED);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(e.msg, "gave up after"));
    assert_true(t1.tv_sec - t0.tv_sec < 5);
}

static void test_retry_does_not_retry_permanent_errors(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    (void)state;

    base_cfg(&c);
    c.password = "nope-nope";
    assert_int_equal(sink_conn_open_retry(&c, 0, NULL, &m, &e), FS_EMYSQL_AUTH);
    assert_null(strstr(e.msg, "gave up"));
}

static void test_password_file_is_read_and_must_be_private(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    char path[512];
    FILE *f;
    (void)state;

    snprintf(path, sizeof(path), "%s/pw.txt", env.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("pw-s3cret\n", f);
    fclose(f);
    chmod(path, 0644);
    base_cfg(&c);
    c.password = NULL;
    c.password_file = path;
    assert_int_equal(sink_conn_open(&c, &m, &e), FS_EPERM);
    assert_non_null(strstr(e.msg, "chmod 600"));
    chmod(path, 0600);
    assert_int_equal(sink_conn_open(&c, &m, &e), 0);
    mysql_close(m);
    unlink(path);
}

static void test_option_file_supplies_the_password(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    char path[512];
    FILE *f;
    (void)state;

    snprintf(path, sizeof(path), "%s/my.cnf", env.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("[firesync]\npassword=pw-s3cret\n", f);
    fclose(f);
    base_cfg(&c);
    c.password = NULL;
    c.defaults_file = path;
    assert_int_equal(sink_conn_open(&c, &m, &e), 0);
    mysql_close(m);
    unlink(path);
}

static void test_tls_required_fails_clearly_on_a_server_without_tls(void **state)
{
    struct cfg_mysql c;
    MYSQL *m = NULL;
    fserr e = {0};
    (void)state;

    base_cfg(&c);
    c.host = "127.0.0.1";
    c.socket = NULL;
    c.tls_mode = CFG_TLS_REQUIRED;
    assert_int_equal(sink_conn_open(&c, &m, &e), FS_ETLS);
    assert_null(m);
    assert_non_null(strstr(e.msg, "does not offer TLS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connects_over_unix_socket_with_password),
        cmocka_unit_test(test_connects_over_tcp),
        cmocka_unit_test(test_session_is_utc_strict_and_utf8mb4),
        cmocka_unit_test(test_wrong_password_is_an_auth_error_without_the_password),
        cmocka_unit_test(test_unknown_database_is_named),
        cmocka_unit_test(test_refused_port_is_transient),
        cmocka_unit_test(test_retry_gives_up_after_its_deadline),
        cmocka_unit_test(test_retry_does_not_retry_permanent_errors),
        cmocka_unit_test(test_password_file_is_read_and_must_be_private),
        cmocka_unit_test(test_option_file_supplies_the_password),
        cmocka_unit_test(test_tls_required_fails_clearly_on_a_server_without_tls),
    };
    log_init(LOG_STYLE_PLAIN, LOG_LVL_ERROR);
    int rc = cmocka_run_group_tests_name("mysql_conn", tests, setup, NULL);
    mysql_library_end();
    log_secret_clear();
    return rc;
}
