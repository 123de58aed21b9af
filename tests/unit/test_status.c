/*
 * test_status.c - the health rule for every state, the status file's atomic JSON and its
 * reading back (including stale files whose agent is gone), the people's table and the
 * Prometheus text file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define S 1000000LL
#define NOW (1767225600LL * S)

static char dir[64];
static struct status_collection coll;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/fs-status.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static struct status healthy(void)
{
    struct status st = {0};
    st.now_us = NOW;
    st.started_us = NOW - 3600 * S;
    st.stream_up = true;
    st.stream_since_us = NOW - 600 * S;
    st.last_heartbeat_us = NOW - 5 * S;
    st.all_current = true;
    st.mysql_ok = true;
    st.silence_window_ms = 300000;
    st.stream_grace_ms = 120000;
    st.pid = (int)getpid();
    strcpy(st.version, "0.1.0");
    memset(&coll, 0, sizeof(coll));
    strcpy(coll.path, "employees");
    strcpy(coll.table, "employees");
    coll.current = true;
    coll.last_event_us = NOW - 2 * S;
    coll.tracked = 1000;
    coll.counters.created = 1000;
    coll.counters.updated = 7;
    strcpy(coll.resync.state, "idle");
    st.collections = &coll;
    st.ncollections = 1;
    return st;
}

static void test_consistent_stream_with_recent_activity_is_healthy(void **state)
{
    struct status st = healthy();
    (void)state;
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_HEALTHY);
}

static void test_warning_cases(void **state)
{
    struct status st;
    (void)state;
    st = healthy();
    st.last_heartbeat_us = NOW - 400 * S;
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_WARNING);
    assert_string_equal(st.reason, "the stream has been silent for 6m");
    st = healthy();
    st.resync_overdue = true;
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_WARNING);
    st = healthy();
    st.dead_letters_growing = true;
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_WARNING);
    st = healthy();
    st.mysql_retrying = true;
    strcpy(st.mysql_reason, "lost connection");
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_WARNING);
    assert_string_equal(st.reason, "MySQL is retrying: lost connection");
    st = healthy();
    st.all_current = false;
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_WARNING);
    st = healthy();
    st.stream_up = false;
    st.stream_since_us = NOW - 30 * S;
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_WARNING);
}

static void test_unhealthy_cases(void **state)
{
    struct status st;
    (void)state;
    st = healthy();
    st.stream_up = false;
    st.stream_since_us = NOW - 180 * S;
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_UNHEALTHY);
    assert_string_equal(st.reason, "the Firestore stream has been down for 3m");
    st = healthy();
    st.mysql_failed = true;
    strcpy(st.mysql_reason, "table employees was dropped");
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_UNHEALTHY);
    assert_string_equal(st.reason, "MySQL unusable: table employees was dropped");
    st = healthy();
    st.mysql_ok = false;
    status_evaluate(&st);
    assert_int_equal(st.health, STATUS_UNHEALTHY);
}

static void read_back(const char *path, int64_t now, enum status_health want, const char *why_part)
{
    char *json = NULL, why[256];
    enum status_health h;
    fserr e = {0};

    assert_int_equal(status_read(path, now, 30000, &json, &h, why, sizeof(why), &e), 0);
    assert_int_equal(h, want);
    if (why_part)
        assert_non_null(strstr(why, why_part));
    free(json);
}

static void test_file_round_trip_keeps_state_and_counters(void **state)
{
    struct status st = healthy();
    char path[128], *json = NULL, why[64];
    enum status_health h;
    fserr e = {0};
    struct stat sb;
    (void)state;

    snprintf(path, sizeof(path), "%s/status.json", dir);
    st.health = STATUS_WARNING;
    strcpy(st.reason, "the stream has been silent for 6m");
    assert_int_equal(status_write(path, &st, &e), 0);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    assert_int_equal(status_read(path, NOW + 2 * S, 30000, &json, &h, why, sizeof(why), &e), 0);
    assert_int_equal(h, STATUS_WARNING);
    assert_non_null(strstr(json, "\"created\":\t1000"));
    assert_non_null(strstr(json, "\"path\":\t\"employees\""));
    assert_non_null(strstr(json, "\"written_at\":\t\"2026-01-01T00:00:00.000000Z\""));
    free(json);
}

static void test_stale_file_whose_agent_is_gone_is_unknown(void **state)
{
    struct status st = healthy();
    char path[128];
    fserr e = {0};
    pid_t child = fork();
    (void)state;

    if (child == 0)
        _exit(0);
    waitpid(child, NULL, 0); /* its pid is now free */
    st.pid = (int)child;
    status_evaluate(&st);
    snprintf(path, sizeof(path), "%s/status.json", dir);
    assert_int_equal(status_write(path, &st, &e), 0);
    read_back(path, NOW, STATUS_UNKNOWN, "is not running");
}

static void test_file_not_refreshed_is_unknown(void **state)
{
    struct status st = healthy();
    char path[128];
    fserr e = {0};
    (void)state;

    status_evaluate(&st);
    snprintf(path, sizeof(path), "%s/status.json", dir);
    assert_int_equal(status_write(path, &st, &e), 0);
    read_back(path, NOW + 10 * S, STATUS_HEALTHY, NULL);
    read_back(path, NOW + 60 * S, STATUS_UNKNOWN, "not updated for 60s");
}

static void test_missing_and_garbage_files_are_errors(void **state)
{
    char path[128], *json, why[64];
    enum status_health h;
    fserr e = {0};
    FILE *f;
    (void)state;

    snprintf(path, sizeof(path), "%s/none.json", dir);
    assert_int_equal(status_read(path, NOW, 30000, &json, &h, why, sizeof(why), &e), FS_ENOTFOUND);
    assert_int_equal(h, STATUS_UNKNOWN);
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    f = fopen(path, "w");
    fputs("{not json", f);
    fclose(f);
    assert_int_equal(status_read(path, NOW, 30000, &json, &h, why, sizeof(why), &e), FS_EPARSE);
}

static void test_people_table_shows_state_and_collections(void **state)
{
    struct status st = healthy();
    buf b;
    char out[4096];
    FILE *f = fmemopen(out, sizeof(out), "w");
    (void)state;

    status_evaluate(&st);
    buf_init(&b, 0);
    status_to_json(&st, &b);
    assert_int_equal(status_print(f, buf_str(&b), NOW + 3 * S, st.health, NULL), 0);
    fclose(f);
    assert_non_null(strstr(out, "firesync healthy: stream consistent, MySQL in step\n"));
    assert_non_null(strstr(out, "stream: up, consistent, last activity 8s ago"));
    assert_non_null(strstr(out, "mysql: connected, 0 events queued"));
    assert_non_null(strstr(out, "employees"));
    assert_non_null(strstr(out, "5s ago"));
    assert_non_null(strstr(out, "1000"));
    buf_release(&b);
}

static void test_metrics_file_has_prometheus_counters(void **state)
{
    struct status st = healthy();
    char path[128], text[4096];
    fserr e = {0};
    FILE *f;
    size_t n;
    (void)state;

    snprintf(path, sizeof(path), "%s/firesync.prom", dir);
    status_evaluate(&st);
    assert_int_equal(status_write_metrics(path, &st, &e), 0);
    f = fopen(path, "r");
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "# TYPE firesync_documents_created_total counter\n"));
    assert_non_null(strstr(text, "firesync_documents_created_total{collection=\"employees\","
                                 "table=\"employees\"} 1000\n"));
    assert_non_null(strstr(text, "firesync_health 0\n"));
}

static void read_text(const char *path, char *text, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;
    assert_non_null(f);
    n = fread(text, 1, cap - 1, f);
    text[n] = '\0';
    fclose(f);
}

/* st as the status file's text, as `firesync status` prints it, and as the metrics file. */
static void render(struct status *st, char *file, char *people, char *prom, size_t cap)
{
    char path[128];
    fserr e = {0};
    buf b;
    FILE *f = fmemopen(people, cap, "w");

    status_evaluate(st);
    snprintf(path, sizeof(path), "%s/status.json", dir);
    assert_int_equal(status_write(path, st, &e), 0);
    read_text(path, file, cap);
    buf_init(&b, 0);
    status_to_json(st, &b);
    assert_int_equal(status_print(f, buf_str(&b), NOW + 3 * S, st->health, NULL), 0);
    fclose(f);
    buf_release(&b);
    snprintf(path, sizeof(path), "%s/firesync.prom", dir);
    assert_int_equal(status_write_metrics(path, st, &e), 0);
    read_text(path, prom, cap);
}

static void test_latency_quantiles_reach_the_file_the_table_and_the_metrics(void **state)
{
    struct status st = healthy();
    char text[8192], out[8192], prom[8192];
    (void)state;

    coll.lag_ms = 41;
    coll.lag_events = 1200;
    coll.lag_p50_us = 3125;
    coll.lag_p95_us = 8000;
    coll.lag_p99_us = 12500;
    coll.lag_max_us = 41007;
    coll.lag_total_events = 5000;
    coll.lag_total_s = 17.5;
    render(&st, text, out, prom, sizeof(text));
    assert_non_null(strstr(text, "\"lag_ms\":\t41,"));
    assert_non_null(strstr(text, "\"lag_p50_ms\":\t3.125,"));
    assert_non_null(strstr(text, "\"lag_p95_ms\":\t8,"));
    assert_non_null(strstr(text, "\"lag_p99_ms\":\t12.5,"));
    assert_non_null(strstr(text, "\"lag_max_ms\":\t41.007,"));
    assert_non_null(strstr(text, "\"lag_events\":\t1200,"));
    assert_non_null(strstr(text, "\"lag_window_s\":\t60,"));
    assert_non_null(strstr(out, "(event received -> row committed, last 60 s)"));
    assert_non_null(strstr(out, "  employees                    3.1 ms     8.0 ms    12.5 ms    "
                                "41.0 ms     1200\n"));
    assert_non_null(strstr(prom, "# TYPE firesync_event_latency_seconds summary\n"));
    assert_non_null(strstr(prom, "firesync_event_latency_seconds{collection=\"employees\","
                                 "quantile=\"0.99\"} 0.012500\n"));
    assert_non_null(strstr(prom, "firesync_event_latency_seconds_count{collection=\"employees\"} "
                                 "5000\n"));
    assert_non_null(strstr(prom, "firesync_event_latency_seconds_sum{collection=\"employees\"} "
                                 "17.500000\n"));
    assert_non_null(strstr(prom, "firesync_lag_milliseconds{collection=\"employees\"} 41\n"));
}

static void test_a_quiet_minute_has_no_latency_quantiles(void **state)
{
    struct status st = healthy();
    char text[8192], out[8192], prom[8192];
    (void)state;

    coll.lag_total_events = 10; /* earlier events, none in the last minute */
    render(&st, text, out, prom, sizeof(text));
    assert_non_null(strstr(text, "\"lag_p99_ms\":\tnull,"));
    assert_non_null(strstr(text, "\"lag_events\":\t0,"));
    assert_non_null(strstr(out, "  employees                         -          -          -  "
                                "        -        0\n"));
    assert_non_null(strstr(prom, "firesync_event_latency_seconds{collection=\"employees\","
                                 "quantile=\"0.5\"} NaN\n"));
    assert_non_null(strstr(prom, "firesync_event_latency_seconds_count{collection=\"employees\"} "
                                 "10\n"));
}

static void test_a_file_without_latency_prints_no_latency_table(void **state)
{
    char out[4096];
    FILE *f = fmemopen(out, sizeof(out), "w");
    (void)state;

    assert_int_equal(status_print(f,
                                  "{\"state\":\"healthy\",\"collections\":[{\"path\":\"e\","
                                  "\"table\":\"e\"}]}",
                                  NOW, STATUS_HEALTHY, NULL),
                     0);
    fclose(f);
    assert_non_null(strstr(out, "COLLECTION"));
    assert_null(strstr(out, "LATENCY"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_consistent_stream_with_recent_activity_is_healthy),
        T(test_warning_cases),
        T(test_unhealthy_cases),
        T(test_file_round_trip_keeps_state_and_counters),
        T(test_stale_file_whose_agent_is_gone_is_unknown),
        T(test_file_not_refreshed_is_unknown),
        T(test_missing_and_garbage_files_are_errors),
        T(test_people_table_shows_state_and_collections),
        T(test_metrics_file_has_prometheus_counters),
        T(test_latency_quantiles_reach_the_file_the_table_and_the_metrics),
        T(test_a_quiet_minute_has_no_latency_quantiles),
        T(test_a_file_without_latency_prints_no_latency_table),
    };
    return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
