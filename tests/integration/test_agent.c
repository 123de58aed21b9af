/*
 * test_agent.c - the whole agent, end to end: the real `firesync run` binary listening to the
 * Firestore emulator and writing to MariaDB. Documents created, updated (nested fields, removed
 * fields), deleted, re-created and written in bursts end up exactly equal in MySQL; only changed
 * columns are written; a RESET re-sending thousands of unchanged documents writes nothing;
 * SIGTERM exits cleanly and a restart resumes; SIGKILL at random points loses and repeats
 * nothing; simulated changes go through the same path; `firesync status` reports each state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/harness/agent_util.h"

#include <cjson/cJSON.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define EMPLOYEES                                                                                 \
    "[[collections]]\npath = \"employees\"\ntable = \"employees\"\nhistory = true\n"             \
    "[collections.columns]\n"                                                                     \
    "name = { field = \"name\", type = \"VARCHAR(100)\" }\n"                                      \
    "city = { field = \"address.city\", type = \"VARCHAR(100)\" }\n"                              \
    "age = { field = \"age\", type = \"BIGINT\" }\n"

#define WAIT_MS 20000

static struct agent_env ae;

static int teardown(void **state)
{
    (void)state;
    agent_env_cleanup(&ae);
    return 0;
}

static void start_healthy(const char *name, const char *colls, const char *agent_extra)
{
    assert_int_equal(agent_env_init(&ae, name, colls, agent_extra), 0);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    if (!agent_wait_state(&ae, "healthy", WAIT_MS))
        fail_msg("the agent did not become healthy; see %s/agent-%d.log", ae.dir, ae.runs);
}

static const char *row(const char *id, const char *col)
{
    return sql_scalar(&ae, "SELECT IFNULL(%s,'NULL') FROM employees WHERE id='%s'", col, id);
}

#define ANA "{\"name\":{\"stringValue\":\"Ana\"},\"age\":{\"integerValue\":\"41\"}," \
            "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":\"Lisboa\"}}}}}"

static void test_create_update_nested_remove_delete_and_recreate_end_equal(void **state)
{
    (void)state;
    start_healthy("lifecycle", EMPLOYEES, NULL);
    assert_int_equal(fs_put(&ae, "employees", "e1", ANA), 0);
    assert_true(sql_wait(&ae, "Lisboa", WAIT_MS, "SELECT city FROM employees WHERE id='e1'"));
    assert_string_equal(row("e1", "name"), "Ana");
    assert_string_equal(row("e1", "age"), "41");
    /* nested field */
    assert_int_equal(fs_put(&ae, "employees", "e1",
                            "{\"name\":{\"stringValue\":\"Ana\"},\"age\":{\"integerValue\":\"41\"},"
                            "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":"
                            "\"Porto\"}}}}}"),
                     0);
    assert_true(sql_wait(&ae, "Porto", WAIT_MS, "SELECT city FROM employees WHERE id='e1'"));
    /* a field removed */
    assert_int_equal(fs_put(&ae, "employees", "e1", "{\"name\":{\"stringValue\":\"Ana\"}}"), 0);
    assert_true(sql_wait(&ae, "NULL", WAIT_MS,
                         "SELECT IFNULL(city,'NULL') FROM employees WHERE id='e1'"));
    assert_string_equal(row("e1", "age"), "NULL");
    /* deleted: soft */
    assert_int_equal(fs_delete(&ae, "employees", "e1"), 0);
    assert_true(sql_wait(&ae, "1", WAIT_MS,
                         "SELECT deleted_at IS NOT NULL FROM employees WHERE id='e1'"));
    assert_string_equal(row("e1", "name"), "Ana");
    /* re-created */
    assert_int_equal(fs_put(&ae, "employees", "e1", ANA), 0);
    assert_true(sql_wait(&ae, "0", WAIT_MS,
                         "SELECT deleted_at IS NOT NULL FROM employees WHERE id='e1'"));
    assert_string_equal(row("e1", "city"), "Lisboa");
    /* the history has each change once: create, 2 updates, delete, create */
    assert_true(sql_wait(&ae, "CREATE,UPDATE,UPDATE,DELETE,CREATE", WAIT_MS,
                         "SELECT GROUP_CONCAT(op ORDER BY update_time, applied_at) FROM "
                         "firesync_changes WHERE doc_key='e1'"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_only_changed_columns_are_written(void **state)
{
    (void)state;
    start_healthy("columns", EMPLOYEES, NULL);
    assert_int_equal(fs_put(&ae, "employees", "e1", ANA), 0);
    assert_true(sql_wait(&ae, "Ana", WAIT_MS, "SELECT name FROM employees WHERE id='e1'"));
    /* set by hand in MySQL; the next change does not touch `name` */
    assert_int_equal(sql_exec(&ae, "UPDATE employees SET name='set by hand' WHERE id='e1'"), 0);
    assert_int_equal(fs_put(&ae, "employees", "e1",
                            "{\"name\":{\"stringValue\":\"Ana\"},\"age\":{\"integerValue\":\"42\"},"
                            "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":"
                            "\"Lisboa\"}}}}}"),
                     0);
    assert_true(sql_wait(&ae, "42", WAIT_MS, "SELECT age FROM employees WHERE id='e1'"));
    assert_string_equal(row("e1", "name"), "set by hand");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void burst(int from, int n, const char *tag)
{
    size_t cap = (size_t)n * 400 + 64, o = 0;
    char *w = malloc(cap);

    o += (size_t)snprintf(w + o, cap - o, "{\"writes\":[");
    for (int i = from; i < from + n; i++)
        o += (size_t)snprintf(w + o, cap - o,
                              "%s{\"update\":{\"name\":\"projects/%s/databases/(default)/documents/"
                              "employees/b%04d\",\"fields\":{\"name\":{\"stringValue\":\"%s%d\"},"
                              "\"age\":{\"integerValue\":\"%d\"}}}}",
                              i > from ? "," : "", ae.project, i, tag, i, i);
    snprintf(w + o, cap - o, "]}");
    assert_int_equal(fs_commit(&ae, w), 0);
    free(w);
}

static void test_burst_of_a_thousand_changes_ends_equal(void **state)
{
    (void)state;
    start_healthy("burst", EMPLOYEES, NULL);
    for (int i = 0; i < 1000; i += 100)
        burst(i, 100, "v1-");
    for (int i = 0; i < 1000; i += 250) /* and update them all again */
        burst(i, 250, "v2-");
    assert_true(sql_wait(&ae, "1000", 60000,
                         "SELECT COUNT(*) FROM employees WHERE name = CONCAT('v2-', age)"));
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM employees"), "1000");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_reset_with_five_thousand_unchanged_documents_writes_nothing(void **state)
{
    long before, after;
    (void)state;
    assert_int_equal(agent_env_init(&ae, "reset5000", EMPLOYEES, NULL), 0);
    for (int i = 0; i < 5000; i += 500)
        burst(i, 500, "x");
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(agent_wait_state(&ae, "healthy", 60000));
    assert_true(sql_wait(&ae, "5000", 60000, "SELECT COUNT(*) FROM employees"));
    before = rows_changed(&ae, "employees");
    /* one write: the emulator re-sends all 5,001 documents */
    assert_int_equal(fs_put(&ae, "employees", "new", ANA), 0);
    assert_true(sql_wait(&ae, "5001", WAIT_MS, "SELECT COUNT(*) FROM employees"));
    assert_true(sql_wait(&ae, "1", WAIT_MS,
                         "SELECT COUNT(*) FROM firesync_checkpoint WHERE read_time >= "
                         "(SELECT fs_update_time FROM employees WHERE id='new')"));
    after = rows_changed(&ae, "employees");
    assert_int_equal(after - before, 1);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_sigterm_exits_zero_and_a_restart_resumes_without_repeating(void **state)
{
    (void)state;
    start_healthy("restart", EMPLOYEES, NULL);
    assert_int_equal(fs_put(&ae, "employees", "e1", ANA), 0);
    assert_true(sql_wait(&ae, "1", WAIT_MS, "SELECT COUNT(*) FROM firesync_changes"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 5000), 0);
    assert_string_equal(sql_scalar(&ae, "SELECT resume_token IS NOT NULL FROM firesync_checkpoint "
                                        "WHERE target='employees'"),
                        "1");
    /* changed while the agent was away, then deleted while away */
    assert_int_equal(fs_put(&ae, "employees", "e2", ANA), 0);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(agent_wait_state(&ae, "healthy", WAIT_MS));
    assert_true(sql_wait(&ae, "Ana", WAIT_MS, "SELECT name FROM employees WHERE id='e2'"));
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM firesync_changes WHERE doc_key='e1'"),
                        "1");
    assert_int_equal(agent_stop(&ae, SIGTERM, 5000), 0);
    assert_int_equal(fs_delete(&ae, "employees", "e2"), 0);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(sql_wait(&ae, "1", WAIT_MS,
                         "SELECT deleted_at IS NOT NULL FROM employees WHERE id='e2'"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 5000), 0);
}

static void test_sigkill_at_random_points_loses_and_repeats_nothing(void **state)
{
    unsigned seed = (unsigned)time(NULL);
    char fields[256];
    (void)state;

    print_message("seed %u\n", seed);
    srand(seed);
    start_healthy("sigkill", EMPLOYEES, NULL);
    for (int round = 0; round < 10; round++) {
        for (int k = 0; k < 5; k++) {
            int id = rand() % 8;
            char doc[16];
            snprintf(doc, sizeof(doc), "k%d", id);
            if (rand() % 5 == 0) {
                fs_delete(&ae, "employees", doc);
            } else {
                snprintf(fields, sizeof(fields),
                         "{\"name\":{\"stringValue\":\"r%d-%d\"},\"age\":{\"integerValue\":\"%d\"}}",
                         round, k, rand() % 100);
                assert_int_equal(fs_put(&ae, "employees", doc, fields), 0);
            }
            usleep((useconds_t)(rand() % 200) * 1000);
        }
        agent_stop(&ae, SIGKILL, 5000);
        if (rand() % 2)
            fs_put(&ae, "employees", "while-down", "{\"name\":{\"stringValue\":\"x\"}}");
        assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    }
    assert_true(agent_wait_state(&ae, "healthy", WAIT_MS));
    /* every document equal: compare against the emulator, document by document */
    for (int id = 0; id < 8; id++) {
        char doc[16], path[256], want[128];
        buf out;
        long status = 0;
        fserr e = {0};
        struct svc_env env = ae.svc;
        snprintf(doc, sizeof(doc), "k%d", id);
        snprintf(path, sizeof(path), "/v1/projects/%s/databases/(default)/documents/employees/%s",
                 ae.project, doc);
        buf_init(&out, 1 << 20);
        assert_int_equal(svc_http(&env, "GET", path, NULL, &out, &status, &e), 0);
        if (status == 404) {
            snprintf(want, sizeof(want), "gone");
        } else {
            const char *n = strstr(buf_str(&out), "\"stringValue\": \"");
            assert_non_null(n);
            snprintf(want, sizeof(want), "%.*s", (int)strcspn(n + 16, "\""), n + 16);
        }
        buf_release(&out);
        assert_true(sql_wait(&ae, want, WAIT_MS,
                             "SELECT IF(deleted_at IS NULL, name, 'gone') FROM employees WHERE "
                             "id='%s' UNION ALL SELECT 'gone' LIMIT 1",
                             doc));
    }
    /* nothing applied twice: one history row per (document, update time, operation) */
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM (SELECT doc_key, update_time, op, "
                                        "COUNT(*) c FROM firesync_changes GROUP BY 1,2,3 "
                                        "HAVING c > 1) d"),
                        "0");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_simulated_change_goes_through_the_pipeline_and_real_changes_win(void **state)
{
    char out[4096];
    (void)state;
    start_healthy("simulate", EMPLOYEES, NULL);
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "simulate-change", "--config", ae.config,
                                  "--collection", "employees", "--doc", "s1", "--type", "CREATE",
                                  "--data", "{\"name\":\"Sim\",\"age\":7,\"address\":{\"city\":\"X\"}}",
                                  NULL),
                     0);
    assert_true(sql_wait(&ae, "Sim", WAIT_MS, "SELECT name FROM employees WHERE id='s1'"));
    assert_true(sql_wait(&ae, "simulated", WAIT_MS,
                         "SELECT source FROM firesync_changes WHERE doc_key='s1'"));
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "simulate-change", "--config", ae.config,
                                  "--collection", "nope", "--doc", "s1", "--type", "CREATE", NULL),
                     1);
    assert_non_null(strstr(out, "collection \"nope\" is not configured"));
    /* a later real change wins */
    assert_int_equal(fs_put(&ae, "employees", "s1", ANA), 0);
    assert_true(sql_wait(&ae, "Ana", WAIT_MS, "SELECT name FROM employees WHERE id='s1'"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_status_exit_codes_follow_the_agent(void **state)
{
    char out[8192];
    (void)state;
    start_healthy("status", EMPLOYEES, "stream_grace = \"2s\"");
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "status", "--config", ae.config, NULL), 0);
    assert_non_null(strstr(out, "firesync healthy"));
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "status", "--live", "--config", ae.config,
                                  NULL),
                     0);
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "status", "--json", "--status-file",
                                  ae.status, NULL),
                     0);
    assert_non_null(strstr(out, "\"collections\""));
    agent_stop(&ae, SIGKILL, 5000);
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "status", "--config", ae.config, NULL), 3);
    assert_non_null(strstr(out, "is not running"));
}

/* An existing table that lacks a mapped column: the agent refuses to start, exits 1, creates
 * none of its own tables, and its last status says why, which `firesync status` repeats after
 * the process is gone. */
static void test_a_refused_start_exits_one_and_the_status_says_why(void **state)
{
    char out[8192];
    int st = 0;
    (void)state;
    assert_int_equal(agent_env_init(&ae, "refused", EMPLOYEES, ""), 0);
    assert_int_equal(sql_exec(&ae, "CREATE TABLE employees (id VARBINARY(1500) PRIMARY KEY)"), 0);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    for (int i = 0; i < 400 && waitpid(ae.pid, &st, WNOHANG) != ae.pid; i++)
        usleep(50 * 1000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    ae.pid = 0;
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "status", "--config", ae.config, NULL), 3);
    assert_non_null(strstr(out, "is not running; it last said unhealthy: could not start: table "
                                "`employees` has no column `name`"));
    /* refused before anything was created */
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                                        "TABLE_SCHEMA = DATABASE()"),
                        "1");
}

static void test_stream_down_past_grace_is_unhealthy(void **state)
{
    char out[8192], cfg[4096];
    FILE *f;
    (void)state;
    assert_int_equal(agent_env_init(&ae, "down", EMPLOYEES, "stream_grace = \"1s\""), 0);
    /* point the agent at a port where nothing listens */
    f = fopen(ae.config, "r");
    cfg[fread(cfg, 1, sizeof(cfg) - 1, f)] = '\0';
    fclose(f);
    {
        char port[32], *p, fixed[4200];
        snprintf(port, sizeof(port), "127.0.0.1:%d", ae.svc.emulator_port);
        p = strstr(cfg, port);
        assert_non_null(p);
        snprintf(fixed, sizeof(fixed), "%.*s127.0.0.1:1%s", (int)(p - cfg), cfg, p + strlen(port));
        f = fopen(ae.config, "w");
        fputs(fixed, f);
        fclose(f);
    }
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(agent_wait_state(&ae, "unhealthy", WAIT_MS));
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "status", "--config", ae.config, NULL), 2);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void replace_in_config(const char *from, const char *to)
{
    assert_int_equal(agent_config_replace(&ae, from, to), 0);
}

static bool log_contains(const char *needle, int timeout_ms)
{
    char path[700], text[1 << 16];
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        FILE *f;
        snprintf(path, sizeof(path), "%s/agent-%d.log", ae.dir, ae.runs);
        f = fopen(path, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof(text) - 1, f);
            text[n] = '\0';
            fclose(f);
            if (strstr(text, needle))
                return true;
        }
        usleep(100000);
    }
    return false;
}

static void test_minimal_grant_works_with_tables_from_firesync_schema(void **state)
{
    char *ddl = malloc(1 << 16), sql[512];
    fserr e = {0};
    (void)state;
    assert_int_equal(agent_env_init(&ae, "grant", EMPLOYEES, NULL), 0);
    /* a DBA creates the tables from `firesync schema` and grants only what the README says */
    assert_int_equal(run_firesync(&ae, ddl, 1 << 16, "schema", "--config", ae.config, NULL), 0);
    assert_non_null(strstr(ddl, "CREATE TABLE IF NOT EXISTS `employees`"));
    snprintf(sql, sizeof(sql), "USE `%s`;", ae.db);
    {
        size_t n = strlen(sql) + strlen(ddl) + 1;
        char *all = malloc(n);
        snprintf(all, n, "%s%s", sql, ddl);
        assert_int_equal(svc_mysql_exec(&ae.svc, all, &e), 0);
        free(all);
    }
    snprintf(sql, sizeof(sql),
             "CREATE USER IF NOT EXISTS 'fsmin'@'localhost' IDENTIFIED BY 'fs-pass-123';"
             "GRANT SELECT, INSERT, UPDATE ON `%s`.* TO 'fsmin'@'localhost';",
             ae.db);
    assert_int_equal(svc_mysql_exec(&ae.svc, sql, &e), 0);
    replace_in_config("user = \"firesync\"", "user = \"fsmin\"\ncreate_tables = false");
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(agent_wait_state(&ae, "healthy", WAIT_MS));
    assert_int_equal(fs_put(&ae, "employees", "g1", ANA), 0);
    assert_true(sql_wait(&ae, "Ana", WAIT_MS, "SELECT name FROM employees WHERE id='g1'"));
    assert_int_equal(fs_delete(&ae, "employees", "g1"), 0);
    assert_true(sql_wait(&ae, "1", WAIT_MS,
                         "SELECT deleted_at IS NOT NULL FROM employees WHERE id='g1'"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(ddl);
}

static void test_sighup_applies_live_settings_and_refuses_mapping_changes(void **state)
{
    (void)state;
    start_healthy("sighup", EMPLOYEES, NULL);
    replace_in_config("log_level = \"debug\"", "log_level = \"info\"");
    kill(ae.pid, SIGHUP);
    assert_true(log_contains("SIGHUP: configuration reloaded", 10000));
    replace_in_config("age = { field = \"age\", type = \"BIGINT\" }",
                      "age = { field = \"age\", type = \"BIGINT\" }\n"
                      "zip = { field = \"zip\", type = \"TEXT\" }");
    kill(ae.pid, SIGHUP);
    assert_true(log_contains("need a restart", 10000));
    replace_in_config("[mysql]", "[mysql]\nbogus_key = 1");
    kill(ae.pid, SIGHUP);
    assert_true(log_contains("unknown key 'bogus_key' in [mysql]", 10000));
    /* still running the old configuration, and healthy */
    assert_int_equal(fs_put(&ae, "employees", "h1", ANA), 0);
    assert_true(sql_wait(&ae, "Ana", WAIT_MS, "SELECT name FROM employees WHERE id='h1'"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

/* The employees collection's entry of the status file, parsed (caller frees the root). */
static cJSON *status_collection(cJSON **root)
{
    char text[65536];
    FILE *f = fopen(ae.status, "r");
    size_t n;

    *root = NULL;
    if (!f)
        return NULL;
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    *root = cJSON_Parse(text);
    return cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(*root, "collections"), 0);
}

static double field(const cJSON *c, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, k);
    if (!cJSON_IsNumber(v))
        fail_msg("status file: %s is not a number", k);
    return v->valuedouble;
}

static void test_status_file_carries_latency_quantiles_of_the_applied_changes(void **state)
{
    char line[700], out[8192], prom[700], text[16384];
    cJSON *root = NULL, *c = NULL;
    double p50, p95, p99, max;
    FILE *f;
    size_t n;
    (void)state;

    /* every change waits alone in its batch for batch_max_delay_ms: each latency is at least
     * that, so the figures must show it */
    assert_int_equal(agent_env_init(&ae, "latency", EMPLOYEES, "batch_max_delay_ms = 300"), 0);
    snprintf(prom, sizeof(prom), "%s/firesync.prom", ae.dir);
    snprintf(line, sizeof(line), "[agent]\nmetrics_file = \"%s\"\n", prom);
    replace_in_config("[agent]\n", line);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(agent_wait_state(&ae, "healthy", WAIT_MS));
    root = NULL;
    c = status_collection(&root);
    assert_non_null(c);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(c, "lag_p99_ms")));
    cJSON_Delete(root);
    for (int i = 0; i < 10; i++) { /* one at a time: each alone in its batch */
        char id[16];
        snprintf(id, sizeof(id), "l%d", i);
        assert_int_equal(fs_put(&ae, "employees", id, ANA), 0);
        assert_true(sql_wait(&ae, "Ana", WAIT_MS, "SELECT name FROM employees WHERE id='%s'", id));
    }
    /* every change the agent applied is timed once it committed */
    for (int waited = 0;; waited += 100) {
        c = status_collection(&root);
        if (c && field(c, "lag_events") == 10 &&
            field(cJSON_GetObjectItemCaseSensitive(c, "counters"), "created") == 10)
            break;
        cJSON_Delete(root);
        if (waited > WAIT_MS)
            fail_msg("the status file never counted the 10 changes; see %s", ae.status);
        usleep(100000);
    }
    p50 = field(c, "lag_p50_ms");
    p95 = field(c, "lag_p95_ms");
    p99 = field(c, "lag_p99_ms");
    max = field(c, "lag_max_ms");
    if (!(p50 >= 300 && p50 <= p95 && p95 <= p99 && p99 <= max && max < 300 + 10000))
        fail_msg("latency p50 %.3f p95 %.3f p99 %.3f max %.3f ms", p50, p95, p99, max);
    assert_true(field(c, "lag_ms") >= 300);
    assert_int_equal((int)field(c, "lag_window_s"), 60);
    cJSON_Delete(root);
    /* for people */
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "status", "--config", ae.config, NULL), 0);
    assert_non_null(strstr(out, "(event received -> row committed, last 60 s)"));
    assert_non_null(strstr(out, " ms "));
    /* and for Prometheus */
    f = fopen(prom, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "firesync_event_latency_seconds{collection=\"employees\","
                                 "quantile=\"0.99\"} "));
    assert_null(strstr(text, "quantile=\"0.99\"} NaN"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_create_update_nested_remove_delete_and_recreate_end_equal),
        T(test_only_changed_columns_are_written),
        T(test_burst_of_a_thousand_changes_ends_equal),
        T(test_reset_with_five_thousand_unchanged_documents_writes_nothing),
        T(test_sigterm_exits_zero_and_a_restart_resumes_without_repeating),
        T(test_sigkill_at_random_points_loses_and_repeats_nothing),
        T(test_simulated_change_goes_through_the_pipeline_and_real_changes_win),
        T(test_status_exit_codes_follow_the_agent),
        T(test_a_refused_start_exits_one_and_the_status_says_why),
        T(test_stream_down_past_grace_is_unhealthy),
        T(test_minimal_grant_works_with_tables_from_firesync_schema),
        T(test_sighup_applies_live_settings_and_refuses_mapping_changes),
        T(test_status_file_carries_latency_quantiles_of_the_applied_changes),
    };
    return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
