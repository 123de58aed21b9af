/*
 * test_sink.c - the MySQL sink (mysql/sink.c, mysql/schema.c) against the private MariaDB that
 * tests/run.sh starts: tables created and checked, rows created, updated and soft-deleted under
 * the update-time guard whatever the order, replays that change nothing (counted by the server
 * itself), checkpoints that commit with their rows even under SIGKILL, a MariaDB restart under
 * load, the dead letter, history written once, a permanent failure that keeps the queue, the
 * applied index read back, and the throughput of 20,000-row runs. Each test uses its own
 * database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/config.h"
#include "common/log.h"
#include "mysql/sink.h"
#include "tests/harness/svc.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct svc_env env;

#define T0 1700000000000000LL /* 2023-11-14 22:13:20 UTC */
#define T(n) (T0 + (int64_t)(n)*1000000)
#define NCELLS 5 /* name, salary, active, city, extra */
#define B_NAME 0x1u
#define B_SALARY 0x2u
#define B_ACTIVE 0x4u
#define B_CITY 0x8u

/* ---- helpers ------------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void exec_sql(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void exec_sql(const char *fmt, ...)
{
    char sql[2048];
    fserr e = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (svc_mysql_exec(&env, sql, &e) != 0)
        fail_msg("%s: %s", sql, e.msg);
}

/* The first column of the first row; "<null>" for NULL, "<none>" without rows. */
static const char *q(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *q(const char *fmt, ...)
{
    static char out[4096];
    char sql[2048], wrapped[2200];
    fserr e = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    snprintf(wrapped, sizeof(wrapped), "SELECT IFNULL((%s), '<null>')", sql);
    if (svc_mysql_scalar(&env, wrapped, out, sizeof(out), &e) != 0)
        fail_msg("%s: %s", sql, e.msg);
    return out;
}

static long long qn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static long long qn(const char *fmt, ...)
{
    char sql[2048], out[64];
    fserr e = {0};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (svc_mysql_scalar(&env, sql, out, sizeof(out), &e) != 0)
        fail_msg("%s: %s", sql, e.msg);
    return atoll(out);
}

static void fresh_db(const char *db)
{
    exec_sql("DROP DATABASE IF EXISTS `%s`", db);
    exec_sql("CREATE DATABASE `%s`", db);
}

struct opts {
    bool no_create, history;
    int batch_rows, delay_ms;
};

static struct cfg *make_cfg(const char *db, struct opts o)
{
    char src[4096];
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};

    snprintf(src, sizeof(src),
             "[firestore]\nproject_id = \"p\"\n"
             "[mysql]\nhost = \"localhost\"\nsocket = \"%s\"\nuser = \"root\"\n"
             "database = \"%s\"\nconnect_timeout = \"2s\"\nreconnect_min = \"20ms\"\n"
             "reconnect_max = \"300ms\"\ncreate_tables = %s\n"
             "[mysql.tls]\nmode = \"disabled\"\n"
             "[agent]\nbatch_max_rows = %d\nbatch_max_delay_ms = %d\n"
             "[[collections]]\npath = \"employees\"\ntable = \"employees\"\nkey = \"id\"\n"
             "history = %s\n"
             "[collections.columns]\n"
             "name = { field = \"name\", type = \"VARCHAR(20)\" }\n"
             "salary = { field = \"salary\", type = \"DECIMAL(12,2)\" }\n"
             "active = { field = \"active\", type = \"BOOLEAN\" }\n"
             "city = { field = \"address.city\", type = \"VARCHAR(50)\" }\n",
             env.mysql_socket, db, o.no_create ? "false" : "true",
             o.batch_rows ? o.batch_rows : 500, o.delay_ms ? o.delay_ms : 5,
             o.history ? "true" : "false");
    buf_init(&errs, 0);
    if (cfg_load_mem("test.toml", src, strlen(src), &c, &errs, &e) != 0)
        fail_msg("config: %s%s", buf_str(&errs), e.msg);
    buf_release(&errs);
    return c;
}

static struct sink *start_sink(const struct cfg *c)
{
    struct sink *s = sink_new(c);
    fserr e = {0};

    sink_set_retry_interval(s, 300);
    if (sink_start(s, 5000, &e) != 0)
        fail_msg("sink_start: %s", e.msg);
    return s;
}

static void flush(struct sink *s)
{
    fserr e = {0};
    if (sink_flush(s, &e) != 0)
        fail_msg("sink_flush: %s", e.msg);
}

static uint64_t hash_text(const char *p)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; p && *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
    return p ? h : 0;
}

static void set_cell(struct sink_event *ev, size_t i, enum sink_cell_kind k, const char *v)
{
    ev->cells[i].kind = v ? k : SINK_CELL_NULL;
    ev->cells[i].p = v ? strdup(v) : NULL;
    ev->cells[i].len = v ? strlen(v) : 0;
    ev->hashes[i] = hash_text(v);
}

struct vals {
    const char *name, *salary, *active, *city, *extra;
};

static struct sink_event *up(const char *key, int64_t ut, bool create, uint64_t changed,
                             struct vals v)
{
    struct sink_event *ev = sink_event_new(SINK_OP_UPSERT, 0);

    ev->key = strdup(key);
    ev->keylen = strlen(key);
    ev->create_us = T(0);
    ev->update_us = ut;
    ev->create = create;
    ev->changed = create ? 0x1f : changed;
    ev->ncells = NCELLS;
    ev->cells = calloc(NCELLS, sizeof(*ev->cells));
    ev->hashes = calloc(NCELLS, sizeof(*ev->hashes));
    set_cell(ev, 0, SINK_CELL_STR, v.name);
    set_cell(ev, 1, SINK_CELL_NUM, v.salary);
    set_cell(ev, 2, SINK_CELL_NUM, v.active);
    set_cell(ev, 3, SINK_CELL_STR, v.city);
    set_cell(ev, 4, SINK_CELL_STR, v.extra);
    return ev;
}

static struct sink_event *del(const char *key, int64_t t)
{
    struct sink_event *ev = sink_event_new(SINK_OP_DELETE, 0);
    ev->key = strdup(key);
    ev->keylen = strlen(key);
    ev->delete_us = t;
    return ev;
}

static struct sink_event *ckpt(const char *token, int64_t read_us)
{
    struct sink_event *ev = sink_event_new(SINK_OP_CHECKPOINT, 0);
    ev->token = strdup(token);
    ev->read_us = read_us;
    return ev;
}

static uint64_t counter(const atomic_uint_fast64_t *v)
{
    return atomic_load(v);
}

/* ---- setup --------------------------------------------------------------------------------- */

static int setup(void **state)
{
    fserr e = {0};
    (void)state;

    log_init(LOG_STYLE_PLAIN, LOG_LVL_ERROR);
    if (svc_env_load(&env, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    return 0;
}

/* ---- schema -------------------------------------------------------------------------------- */

static void test_create_tables_creates_every_table_innodb_utf8mb4_bin(void **state)
{
    struct cfg *c;
    struct sink *s;
    (void)state;

    fresh_db("sink_create");
    c = make_cfg("sink_create", (struct opts){.history = true});
    s = start_sink(c);
    sink_free(s);
    assert_int_equal(qn("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                        "'sink_create' AND ENGINE = 'InnoDB' AND TABLE_COLLATION = 'utf8mb4_bin' "
                        "AND TABLE_NAME IN ('employees', 'firesync_checkpoint', "
                        "'firesync_changes', 'firesync_dead_letter')"),
                     4);
    assert_string_equal(q("SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) FROM "
                          "information_schema.COLUMNS WHERE TABLE_SCHEMA = 'sink_create' AND "
                          "TABLE_NAME = 'employees'"),
                        "id,name,salary,active,city,extra,fs_create_time,fs_update_time,"
                        "fs_delete_time,deleted_at,synced_at,fs_hashes");
    assert_string_equal(q("SELECT CONCAT(CHARACTER_SET_NAME, ' ', COLLATION_NAME) FROM "
                          "information_schema.COLUMNS WHERE TABLE_SCHEMA = 'sink_create' AND "
                          "TABLE_NAME = 'employees' AND COLUMN_NAME = 'name'"),
                        "utf8mb4 utf8mb4_bin");
    /* a second start finds everything in place */
    s = start_sink(c);
    sink_free(s);
    cfg_free(c);
}

static void test_mapped_table_has_only_its_primary_key_and_an_added_index_is_kept(void **state)
{
    static const char idx[] = "SELECT GROUP_CONCAT(DISTINCT INDEX_NAME ORDER BY INDEX_NAME <> "
                              "'PRIMARY', INDEX_NAME) FROM information_schema.STATISTICS WHERE "
                              "TABLE_SCHEMA = 'sink_index' AND TABLE_NAME = 'employees'";
    struct cfg *c;
    struct sink *s;
    (void)state;

    fresh_db("sink_index");
    c = make_cfg("sink_index", (struct opts){0});
    sink_free(start_sink(c));
    assert_string_equal(q(idx), "PRIMARY");
    exec_sql("ALTER TABLE sink_index.employees ADD KEY deleted_at (deleted_at)");
    s = start_sink(c); /* the schema check accepts it */
    sink_push(s, up("a", T(1), true, 0, (struct vals){"Ann", "1.50", "1", "Porto", NULL}));
    flush(s);
    sink_free(s);
    assert_string_equal(q(idx), "PRIMARY,deleted_at");
    assert_string_equal(q("SELECT city FROM sink_index.employees WHERE id = 'a'"), "Porto");
    cfg_free(c);
}

static void test_missing_table_refuses_start_without_create_tables(void **state)
{
    struct cfg *c;
    struct sink *s;
    fserr e = {0};
    (void)state;

    fresh_db("sink_nocreate");
    c = make_cfg("sink_nocreate", (struct opts){.no_create = true});
    s = sink_new(c);
    assert_int_equal(sink_start(s, 5000, &e), FS_EMYSQL_SCHEMA);
    assert_non_null(strstr(e.msg, "`employees`"));
    assert_non_null(strstr(e.msg, "create_tables"));
    sink_free(s);
    assert_int_equal(qn("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                        "'sink_nocreate'"),
                     0);
    cfg_free(c);
}

static void expect_schema_error(const struct cfg *c, const char *a, const char *b)
{
    struct sink *s = sink_new(c);
    fserr e = {0};

    assert_int_equal(sink_start(s, 5000, &e), FS_EMYSQL_SCHEMA);
    if (!strstr(e.msg, a) || !strstr(e.msg, b))
        fail_msg("\"%s\" and \"%s\" expected in: %s", a, b, e.msg);
    sink_free(s);
}

static void test_missing_or_narrower_column_refuses_start_naming_table_and_column(void **state)
{
    struct cfg *c;
    struct sink *s;
    (void)state;

    fresh_db("sink_check");
    c = make_cfg("sink_check", (struct opts){0});
    sink_free(start_sink(c));

    exec_sql("ALTER TABLE sink_check.employees DROP COLUMN city");
    expect_schema_error(c, "`employees`", "`city`");
    exec_sql("ALTER TABLE sink_check.employees ADD COLUMN city VARCHAR(50) CHARACTER SET utf8mb4 "
             "NULL AFTER active");

    exec_sql("ALTER TABLE sink_check.employees MODIFY name VARCHAR(10) CHARACTER SET utf8mb4");
    expect_schema_error(c, "`name`", "VARCHAR(20)");
    exec_sql("ALTER TABLE sink_check.employees MODIFY salary DECIMAL(12,1)");
    exec_sql("ALTER TABLE sink_check.employees MODIFY name VARCHAR(20) CHARACTER SET latin1");
    expect_schema_error(c, "`name`", "latin1");
    exec_sql("ALTER TABLE sink_check.employees MODIFY name VARCHAR(100) CHARACTER SET utf8mb4");
    expect_schema_error(c, "`salary`", "DECIMAL(12,2)");
    exec_sql("ALTER TABLE sink_check.employees MODIFY salary DECIMAL(20,4)");
    exec_sql("ALTER TABLE sink_check.firesync_checkpoint DROP COLUMN read_time");
    expect_schema_error(c, "`firesync_checkpoint`", "`read_time`");
    exec_sql("ALTER TABLE sink_check.firesync_checkpoint ADD COLUMN read_time DATETIME(6) NULL");

    /* wider columns are compatible */
    s = start_sink(c);
    sink_push(s, up("a", T(1), true, 0,
                    (struct vals){"a name longer than 20 chars", "1.2345", "1", NULL, NULL}));
    flush(s);
    sink_free(s);
    assert_string_equal(q("SELECT salary FROM sink_check.employees WHERE id = 'a'"), "1.2345");
    cfg_free(c);
}

/* ---- rows and the guard ---------------------------------------------------------------------- */

static void test_create_update_and_soft_delete(void **state)
{
    struct cfg *c;
    struct sink *s;
    const struct sink_stats *st;
    (void)state;

    fresh_db("sink_cud");
    c = make_cfg("sink_cud", (struct opts){0});
    s = start_sink(c);
    st = sink_stats(s);
    sink_push(
        s, up("e1", T(10), true, 0, (struct vals){"Ana", "1000.50", "1", "Lisboa", "{\"x\": 7}"}));
    flush(s);
    assert_string_equal(q("SELECT CONCAT_WS('|', name, salary, active, city, extra, "
                          "fs_create_time, fs_update_time) FROM sink_cud.employees"),
                        "Ana|1000.50|1|Lisboa|{\"x\": 7}|2023-11-14 22:13:20.000000|"
                        "2023-11-14 22:13:30.000000");
    assert_string_equal(q("SELECT HEX(fs_hashes) IS NOT NULL AND LENGTH(fs_hashes) = 40 FROM "
                          "sink_cud.employees"),
                        "1");
    assert_int_equal(counter(&st->created), 1);

    sink_push(s, up("e1", T(20), false, B_NAME | B_SALARY,
                    (struct vals){"Ana Maria", "1100.00", "1", "Lisboa", "{\"x\": 7}"}));
    flush(s);
    assert_string_equal(q("SELECT CONCAT_WS('|', name, salary, fs_update_time, "
                          "IFNULL(deleted_at, '-')) FROM sink_cud.employees"),
                        "Ana Maria|1100.00|2023-11-14 22:13:40.000000|-");
    assert_int_equal(counter(&st->updated), 1);

    sink_push(s, del("e1", T(30)));
    flush(s);
    assert_string_equal(q("SELECT CONCAT_WS('|', name, deleted_at, fs_delete_time) FROM "
                          "sink_cud.employees"),
                        "Ana Maria|2023-11-14 22:13:50.000000|2023-11-14 22:13:50.000000");
    assert_int_equal(counter(&st->deleted), 1);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_cud.employees"), 1);
    assert_int_equal(counter(&st->batches), 3);
    sink_free(s);
    cfg_free(c);
}

static void test_update_writes_only_the_changed_columns(void **state)
{
    struct cfg *c;
    struct sink *s;
    (void)state;

    fresh_db("sink_cols");
    c = make_cfg("sink_cols", (struct opts){0});
    s = start_sink(c);
    sink_push(s, up("e1", T(10), true, 0, (struct vals){"Ana", "10.00", "1", "Lisboa", NULL}));
    flush(s);
    exec_sql("UPDATE sink_cols.employees SET city = 'set by hand', active = 0 WHERE id = 'e1'");
    /* the event carries every cell, but says only the name changed */
    sink_push(s,
              up("e1", T(20), false, B_NAME, (struct vals){"Bia", "10.00", "1", "Lisboa", NULL}));
    flush(s);
    assert_string_equal(q("SELECT CONCAT_WS('|', name, city, active) FROM sink_cols.employees"),
                        "Bia|set by hand|0");
    sink_free(s);
    cfg_free(c);
}

static void test_older_version_after_newer_one_leaves_the_newer(void **state)
{
    struct cfg *c;
    struct sink *s;
    const struct sink_stats *st;
    (void)state;

    fresh_db("sink_order");
    c = make_cfg("sink_order", (struct opts){0});
    s = start_sink(c);
    st = sink_stats(s);
    /* separate batches */
    sink_push(s, up("a", T(20), true, 0, (struct vals){"v2", "2.00", "1", "B", NULL}));
    flush(s);
    sink_push(s, up("a", T(10), true, 0, (struct vals){"v1", "1.00", "0", "A", NULL}));
    flush(s);
    /* and within one batch, where they share a statement generation order */
    sink_push(s, up("b", T(20), true, 0, (struct vals){"v2", "2.00", "1", "B", NULL}));
    sink_push(s, up("b", T(10), true, 0, (struct vals){"v1", "1.00", "0", "A", NULL}));
    flush(s);
    assert_string_equal(q("SELECT GROUP_CONCAT(CONCAT_WS('|', id, name, salary, active, city, "
                          "fs_update_time) ORDER BY id) FROM sink_order.employees"),
                        "a|v2|2.00|1|B|2023-11-14 22:13:40.000000,"
                        "b|v2|2.00|1|B|2023-11-14 22:13:40.000000");
    assert_int_equal(counter(&st->created), 2);
    assert_int_equal(counter(&st->unchanged), 2);
    sink_free(s);
    cfg_free(c);
}

static void test_two_versions_of_a_key_in_one_batch_apply_in_order(void **state)
{
    struct cfg *c;
    struct sink *s;
    (void)state;

    fresh_db("sink_gen");
    c = make_cfg("sink_gen", (struct opts){0});
    s = start_sink(c);
    sink_push(s, up("a", T(10), true, 0, (struct vals){"n1", "1.00", "1", "c1", NULL}));
    flush(s);
    /* v2 changes the salary, v3 only the city: v3's statement must not run before v2's */
    sink_push(s, up("a", T(20), false, B_SALARY, (struct vals){"n1", "2.00", "1", "c1", NULL}));
    sink_push(s, up("a", T(30), false, B_CITY, (struct vals){"n1", "2.00", "1", "c3", NULL}));
    sink_push(s, del("a", T(40)));
    sink_push(s, up("a", T(50), true, 0, (struct vals){"n5", "5.00", "0", "c5", NULL}));
    sink_push(s, up("a", T(60), false, B_NAME, (struct vals){"n6", "5.00", "0", "c5", NULL}));
    flush(s);
    assert_string_equal(q("SELECT CONCAT_WS('|', name, salary, active, city, "
                          "IFNULL(deleted_at, '-'), IFNULL(fs_delete_time, '-')) FROM "
                          "sink_gen.employees"),
                        "n6|5.00|0|c5|-|-");
    sink_free(s);
    cfg_free(c);
}

static void test_stale_update_after_delete_stays_deleted_and_newer_create_revives(void **state)
{
    struct cfg *c;
    struct sink *s;
    (void)state;

    fresh_db("sink_tomb");
    c = make_cfg("sink_tomb", (struct opts){0});
    s = start_sink(c);
    sink_push(s, up("a", T(10), true, 0, (struct vals){"n1", "1.00", "1", "c1", NULL}));
    sink_push(s, del("a", T(30)));
    flush(s);
    sink_push(s, up("a", T(20), false, B_NAME, (struct vals){"stale", "1.00", "1", "c1", NULL}));
    sink_push(s, up("a", T(25), true, 0, (struct vals){"stale too", "9.00", "0", "c9", NULL}));
    flush(s);
    assert_string_equal(q("SELECT CONCAT_WS('|', name, deleted_at) FROM sink_tomb.employees"),
                        "n1|2023-11-14 22:13:50.000000");

    /* a delete of a key never seen leaves a tombstone that an older create cannot undo */
    sink_push(s, del("ghost", T(30)));
    flush(s);
    sink_push(s, up("ghost", T(29), true, 0, (struct vals){"boo", "1.00", "1", "x", NULL}));
    flush(s);
    assert_string_equal(q("SELECT CONCAT_WS('|', IFNULL(name, '-'), IFNULL(fs_update_time, '-'), "
                          "deleted_at) FROM sink_tomb.employees WHERE id = 'ghost'"),
                        "-|-|2023-11-14 22:13:50.000000");

    /* a newer create revives both */
    sink_push(s, up("a", T(40), true, 0, (struct vals){"n4", "4.00", "1", "c4", NULL}));
    sink_push(s, up("ghost", T(40), true, 0, (struct vals){"g4", "4.00", "1", "c4", NULL}));
    flush(s);
    assert_string_equal(q("SELECT GROUP_CONCAT(CONCAT_WS('|', id, name, salary, city, "
                          "IFNULL(deleted_at, '-'), IFNULL(fs_delete_time, '-')) ORDER BY id) "
                          "FROM sink_tomb.employees"),
                        "a|n4|4.00|c4|-|-,ghost|g4|4.00|c4|-|-");
    sink_free(s);
    cfg_free(c);
}

/* A mixed batch of creates, updates and deletes over 40 keys. */
static void push_mixed(struct sink *s)
{
    char key[32], name[32];

    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        snprintf(name, sizeof(name), "n%d", i);
        sink_push(s, up(key, T(10), true, 0, (struct vals){name, "1.50", "1", "c", "{\"a\":1}"}));
        if (i % 3 == 0)
            sink_push(s, up(key, T(20), false, B_CITY,
                            (struct vals){name, "1.50", "1", "d", "{\"a\":1}"}));
        if (i % 5 == 0)
            sink_push(s, del(key, T(30)));
    }
    sink_push(s, ckpt("tok-mixed", T(31)));
}

static void test_same_batch_applied_twice_changes_nothing(void **state)
{
    struct cfg *c;
    struct sink *s;
    const struct sink_stats *st;
    long long changed;
    char sum[64];
    uint64_t unchanged;
    (void)state;

    fresh_db("sink_twice");
    c = make_cfg("sink_twice", (struct opts){.batch_rows = 1000});
    s = start_sink(c);
    st = sink_stats(s);
    push_mixed(s);
    flush(s);
    assert_int_equal(counter(&st->created), 40);
    assert_int_equal(counter(&st->updated), 14);
    assert_int_equal(counter(&st->deleted), 8);
    changed = qn("SELECT ROWS_CHANGED FROM information_schema.TABLE_STATISTICS WHERE "
                 "TABLE_SCHEMA = 'sink_twice' AND TABLE_NAME = 'employees'");
    assert_true(changed >= 40);
    snprintf(sum, sizeof(sum), "%s",
             q("SELECT SUM(CRC32(CONCAT_WS('|', id, name, salary, active, city, extra, "
               "fs_create_time, fs_update_time, fs_delete_time, deleted_at, synced_at, "
               "HEX(fs_hashes)))) FROM sink_twice.employees"));
    unchanged = counter(&st->unchanged);

    push_mixed(s); /* the very same events, as a replay after a crash would send them */
    flush(s);
    assert_int_equal(qn("SELECT ROWS_CHANGED FROM information_schema.TABLE_STATISTICS WHERE "
                        "TABLE_SCHEMA = 'sink_twice' AND TABLE_NAME = 'employees'"),
                     changed);
    assert_string_equal(q("SELECT SUM(CRC32(CONCAT_WS('|', id, name, salary, active, city, "
                          "extra, fs_create_time, fs_update_time, fs_delete_time, deleted_at, "
                          "synced_at, HEX(fs_hashes)))) FROM sink_twice.employees"),
                        sum);
    assert_int_equal(counter(&st->unchanged) - unchanged, 40 + 14 + 8);
    assert_int_equal(counter(&st->created), 40);
    assert_int_equal(counter(&st->updated), 14);
    assert_int_equal(counter(&st->deleted), 8);
    sink_free(s);
    cfg_free(c);
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

#define KILL_ROWS 25 /* rows before each checkpoint */

/* The child: pushes batches of rows, each followed by its checkpoint, until killed. */
static void kill_child(const char *db)
{
    struct cfg *c = make_cfg(db, (struct opts){.batch_rows = 37, .delay_ms = 3});
    struct sink *s = sink_new(c);
    char key[32], tok[32];
    fserr e = {0};

    if (sink_start(s, 5000, &e) != 0) {
        fprintf(stderr, "child: %s\n", e.msg);
        _exit(2);
    }
    for (int k = 0; k < 1000000; k++) {
        for (int r = 0; r < KILL_ROWS; r++) {
            snprintf(key, sizeof(key), "r%06d-%02d", k, r);
            sink_push(s, up(key, T(k + 1), true, 0, (struct vals){"x", "1.00", "1", "c", NULL}));
        }
        snprintf(tok, sizeof(tok), "tok-%06d", k);
        if (sink_push(s, ckpt(tok, T(k + 1))) > 2000)
            sleep_ms(2);
    }
    _exit(0);
}

static void test_checkpoint_commits_with_the_rows_before_it_under_sigkill(void **state)
{
    (void)state;

    for (int round = 0; round < 3; round++) {
        struct cfg *c;
        const char *tok;
        pid_t pid;
        int k, wst;
        int64_t t0;

        fresh_db("sink_kill");
        c = make_cfg("sink_kill", (struct opts){0});
        sink_free(start_sink(c)); /* tables in place, so the child starts at once */
        cfg_free(c);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            kill_child("sink_kill");
        t0 = now_ms();
        while (qn("SELECT COUNT(*) FROM sink_kill.firesync_checkpoint") == 0) {
            assert_true(now_ms() - t0 < 10000);
            sleep_ms(5);
        }
        int wait_ms = rand() % 400;
        sleep_ms(wait_ms);
        kill(pid, SIGKILL);
        waitpid(pid, &wst, 0);
        assert_true(WIFSIGNALED(wst));

        tok = q("SELECT resume_token FROM sink_kill.firesync_checkpoint WHERE target = "
                "'employees'");
        assert_int_equal(strncmp(tok, "tok-", 4), 0);
        k = atoi(tok + 4);
        /* every row pushed before that checkpoint is there, with the checkpoint's read time */
        assert_int_equal(qn("SELECT COUNT(*) FROM sink_kill.employees WHERE id <= "
                            "'r%06d-99'",
                            k),
                         (long long)(k + 1) * KILL_ROWS);
        assert_int_equal(qn("SELECT TIMESTAMPDIFF(SECOND, '2023-11-14 22:13:20', read_time) FROM "
                            "sink_kill.firesync_checkpoint"),
                         k + 1);
        print_message("round %d: killed %d ms after the first checkpoint, at checkpoint %d; "
                      "%lld rows in all\n",
                      round, wait_ms, k, qn("SELECT COUNT(*) FROM sink_kill.employees"));
    }
}

static void test_checkpoint_reads_back_and_later_one_wins(void **state)
{
    struct cfg *c;
    struct sink *s;
    char *tok = NULL;
    int64_t rt = -1;
    fserr e = {0};
    (void)state;

    fresh_db("sink_ck");
    c = make_cfg("sink_ck", (struct opts){0});
    assert_int_equal(sink_load_checkpoint(c, "employees", &tok, &rt, &e), 0);
    assert_string_equal(tok, ""); /* no table yet: no checkpoint */
    assert_int_equal(rt, 0);
    free(tok);
    s = start_sink(c);
    sink_push(s, ckpt("CgkI-first==", T(1)));
    sink_push(s, ckpt("CgkI+second==", T(2)));
    flush(s);
    sink_free(s);
    assert_int_equal(sink_load_checkpoint(c, "employees", &tok, &rt, &e), 0);
    assert_string_equal(tok, "CgkI+second==");
    assert_int_equal(rt, T(2));
    free(tok);
    cfg_free(c);
}

/* ---- failures ------------------------------------------------------------------------------ */

struct restart {
    pthread_t th;
    atomic_bool done;
    int rc;
};

static void *restart_mariadb(void *arg)
{
    struct restart *r = arg;
    fserr e = {0};

    sleep_ms(300);
    svc_mariadb_stop(&env, &e);
    sleep_ms(300);
    r->rc = svc_mariadb_start(&env, &e);
    if (r->rc)
        fprintf(stderr, "restart: %s\n", e.msg);
    atomic_store(&r->done, true);
    return NULL;
}

static void test_mariadb_restart_under_load_loses_nothing(void **state)
{
    struct cfg *c;
    struct sink *s;
    struct restart r = {.rc = 0};
    char key[32], name[32];
    int n = 0, updates = 0, after = 0;
    char why[256];
    (void)state;

    fresh_db("sink_restart");
    c = make_cfg("sink_restart", (struct opts){.batch_rows = 50, .delay_ms = 5});
    s = start_sink(c);
    atomic_init(&r.done, false);
    pthread_create(&r.th, NULL, restart_mariadb, &r);
    while (!atomic_load(&r.done) || after++ < 300) {
        snprintf(key, sizeof(key), "r%06d", n);
        sink_push(s, up(key, T(1), true, 0, (struct vals){"v1", "1.00", "1", "c", NULL}));
        if (n >= 10 && n % 4 == 0) { /* and an update of an earlier row */
            snprintf(key, sizeof(key), "r%06d", n - 10);
            snprintf(name, sizeof(name), "v2-%s", key);
            sink_push(s, up(key, T(2), false, B_NAME, (struct vals){name, "1.00", "1", "c", NULL}));
            updates++;
        }
        n++;
        if (n % 10 == 0)
            sleep_ms(2);
    }
    pthread_join(r.th, NULL);
    assert_int_equal(r.rc, 0);
    flush(s);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_restart.employees"), n);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_restart.employees WHERE name = "
                        "CONCAT('v2-', id)"),
                     updates);
    assert_true(counter(&sink_stats(s)->retries) >= 1);
    assert_int_equal(sink_health(s, why, sizeof(why)), SINK_OK);
    print_message("%d rows and %d updates across a MariaDB restart, %llu retries\n", n, updates,
                  (unsigned long long)counter(&sink_stats(s)->retries));
    sink_free(s);
    cfg_free(c);
}

/* Kills the connections of database `db` (the sink's two) one after the other, every few ms. */
struct killer {
    pthread_t th;
    const char *db;
    atomic_bool stop;
    atomic_int kills;
};

static void *kill_connections(void *arg)
{
    struct killer *k = arg;
    char sql[256], id[32];
    fserr e = {0};

    while (!atomic_load(&k->stop)) {
        sleep_ms(15 + rand() % 30);
        snprintf(sql, sizeof(sql),
                 "SELECT IFNULL(%s(ID), 0) FROM information_schema.PROCESSLIST WHERE DB = '%s'",
                 atomic_load(&k->kills) % 2 ? "MAX" : "MIN", k->db);
        if (svc_mysql_scalar(&env, sql, id, sizeof(id), &e) != 0 || atoll(id) == 0)
            continue;
        snprintf(sql, sizeof(sql), "KILL %lld", atoll(id));
        if (svc_mysql_exec(&env, sql, &e) == 0) /* it may have gone already */
            atomic_fetch_add(&k->kills, 1);
    }
    return NULL;
}

/* With a backlog, a batch's COMMIT overlaps the next batch on the sink's other connection; a
 * connection killed at any point (a statement, a COMMIT whose answer is unread) replays what
 * did not commit, in order. Every batch leaves a mark of its own (round r creates its keys and
 * updates round r-1's), so that a lost batch shows; the last checkpoint is the last pushed. */
static void test_killed_connections_while_commits_overlap_lose_nothing(void **state)
{
    enum { N = 1000 };
    struct killer k = {.db = "sink_ovl"};
    struct cfg *c;
    struct sink *s;
    char key[32], tok[32];
    char why[256];
    int round = 0;
    (void)state;

    fresh_db("sink_ovl");
    c = make_cfg("sink_ovl", (struct opts){.batch_rows = 40, .delay_ms = 5});
    s = start_sink(c);
    atomic_init(&k.stop, false);
    atomic_init(&k.kills, 0);
    pthread_create(&k.th, NULL, kill_connections, &k);
    for (; round < 3 || atomic_load(&k.kills) < 10; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "r%03d-%05d", round, i);
            sink_push(s, up(key, T(1), true, 0, (struct vals){"c", "1.00", "1", "c", NULL}));
            if (round) {
                snprintf(key, sizeof(key), "r%03d-%05d", round - 1, i);
                sink_push(s, up(key, T(2), false, B_NAME, (struct vals){"u", "1.00", "1", "c",
                                                                        NULL}));
            }
            if (i % 50 == 49) {
                snprintf(tok, sizeof(tok), "tok-%d-%d", round, i);
                if (sink_push(s, ckpt(tok, T(round + 1))) > 1000)
                    sleep_ms(2);
            }
        }
        assert_true(round < 500);
    }
    flush(s);
    atomic_store(&k.stop, true);
    pthread_join(k.th, NULL);
    flush(s);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_ovl.employees"), (long long)round * N);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_ovl.employees WHERE name = 'u' AND "
                        "TIMESTAMPDIFF(SECOND, '2023-11-14 22:13:20', fs_update_time) = 2"),
                     (long long)(round - 1) * N);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_ovl.employees WHERE name = 'c' AND id LIKE "
                        "'r%03d-%%'",
                        round - 1),
                     N);
    snprintf(tok, sizeof(tok), "tok-%d-%d", round - 1, N - 1);
    assert_string_equal(q("SELECT resume_token FROM sink_ovl.firesync_checkpoint"), tok);
    assert_true(counter(&sink_stats(s)->retries) >= 1);
    assert_int_equal(sink_health(s, why, sizeof(why)), SINK_OK);
    print_message("%d rounds of %d rows, %d connections killed, %llu retries\n", round, N,
                  atomic_load(&k.kills), (unsigned long long)counter(&sink_stats(s)->retries));
    sink_free(s);
    cfg_free(c);
}

static void test_refused_row_goes_to_dead_letter_and_the_rest_of_its_batch_applies(void **state)
{
    struct cfg *c;
    struct sink *s;
    const struct sink_stats *st;
    struct sink_event *dl;
    (void)state;

    fresh_db("sink_dead");
    c = make_cfg("sink_dead", (struct opts){0});
    s = start_sink(c);
    st = sink_stats(s);
    sink_push(s, up("ok1", T(1), true, 0, (struct vals){"a", "1.00", "1", "c", NULL}));
    sink_push(s, up("toolong", T(1), true, 0,
                    (struct vals){"a name of thirty characters!!", "1.00", "1", "c", NULL}));
    sink_push(s, up("ok2", T(1), true, 0, (struct vals){"b", "2.00", "1", "c", NULL}));
    sink_push(s, up("badnum", T(1), true, 0, (struct vals){"c", "1;DROP TABLE x", "1", "c", NULL}));
    sink_push(s, up("badjson", T(1), true, 0, (struct vals){"d", "1.00", "1", "c", "{nope"}));
    sink_push(s, up("ok3", T(1), true, 0, (struct vals){"e", "3.00", "0", "c", NULL}));
    sink_push(s, ckpt("tok-dead", T(2)));
    flush(s);

    assert_string_equal(q("SELECT GROUP_CONCAT(id ORDER BY id) FROM sink_dead.employees"),
                        "ok1,ok2,ok3");
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_dead.firesync_checkpoint"), 1);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_dead.firesync_dead_letter"), 3);
    assert_non_null(strstr(q("SELECT reason FROM sink_dead.firesync_dead_letter WHERE doc_name "
                             "= 'projects/p/databases/(default)/documents/employees/toolong'"),
                           "Data too long for column 'name'"));
    assert_non_null(strstr(q("SELECT reason FROM sink_dead.firesync_dead_letter WHERE doc_name "
                             "LIKE '%%/badnum'"),
                           "not a plain number"));
    assert_string_equal(q("SELECT JSON_VALUE(raw, '$.columns.salary') FROM "
                          "sink_dead.firesync_dead_letter WHERE doc_name LIKE '%%/toolong'"),
                        "1.00");
    assert_string_equal(q("SELECT LOWER(HEX(doc_hash)) = SHA2(doc_name, 256) FROM "
                          "sink_dead.firesync_dead_letter WHERE doc_name LIKE '%%/badjson'"),
                        "1");
    assert_int_equal(counter(&st->created), 3);
    assert_int_equal(counter(&st->dead_letters), 3);

    /* a document the diff could not map, twice: one row, seen twice */
    for (int i = 0; i < 2; i++) {
        dl = sink_event_new(SINK_OP_DEADLETTER, 0);
        dl->doc_name = strdup("projects/p/databases/(default)/documents/employees/x9");
        dl->reason = strdup("fields.salary: a string does not fit DECIMAL(12,2)");
        dl->raw = strdup("{\"salary\":\"lots\"}");
        sink_push(s, dl);
        flush(s);
    }
    assert_string_equal(q("SELECT CONCAT_WS('|', collection, seen_count, reason, raw) FROM "
                          "sink_dead.firesync_dead_letter WHERE doc_name LIKE '%%/x9'"),
                        "employees|2|fields.salary: a string does not fit DECIMAL(12,2)|"
                        "{\"salary\":\"lots\"}");
    assert_int_equal(counter(&st->dead_letters), 5);
    sink_free(s);
    cfg_free(c);
}

static void test_dropped_table_fails_keeps_the_queue_and_recovers_when_fixed(void **state)
{
    struct cfg *c, *c2;
    struct sink *s;
    char why[512];
    fserr e = {0};
    int64_t t0;
    (void)state;

    fresh_db("sink_fail");
    c = make_cfg("sink_fail", (struct opts){0});
    sink_free(start_sink(c));
    c2 = make_cfg("sink_fail", (struct opts){.no_create = true});
    s = start_sink(c2);
    exec_sql("CREATE TABLE sink_fail.saved LIKE sink_fail.employees");
    exec_sql("DROP TABLE sink_fail.employees");
    sink_push(s, up("a", T(1), true, 0, (struct vals){"a", "1.00", "1", "c", NULL}));
    sink_push(s, ckpt("tok-a", T(1)));
    t0 = now_ms();
    while (sink_health(s, why, sizeof(why)) != SINK_FAILED) {
        assert_true(now_ms() - t0 < 5000);
        sleep_ms(10);
    }
    assert_non_null(strstr(why, "employees"));
    assert_int_not_equal(sink_flush(s, &e), 0);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_fail.firesync_checkpoint"), 0);
    sink_push(s, up("b", T(1), true, 0, (struct vals){"b", "1.00", "1", "c", NULL}));
    assert_true(counter(&sink_stats(s)->queued) >= 2);

    exec_sql("RENAME TABLE sink_fail.saved TO sink_fail.employees"); /* the operator's fix */
    t0 = now_ms();
    while (sink_flush(s, &e) != 0) {
        assert_true(now_ms() - t0 < 10000);
        sleep_ms(50);
    }
    assert_int_equal(sink_health(s, why, sizeof(why)), SINK_OK);
    assert_string_equal(q("SELECT GROUP_CONCAT(id ORDER BY id) FROM sink_fail.employees"), "a,b");
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_fail.firesync_checkpoint"), 1);
    sink_free(s);
    cfg_free(c2);
    cfg_free(c);
}

/* ---- history --------------------------------------------------------------------------------- */

/* The id of the connection running a statement that starts with `prefix`, or 0. */
static long long find_query(const char *db, const char *prefix)
{
    return qn("SELECT IFNULL(MAX(ID), 0) FROM information_schema.PROCESSLIST WHERE DB = '%s' "
              "AND INFO LIKE '%s%%'",
              db, prefix);
}

static void test_history_rows_are_written_once_even_when_a_batch_is_replayed(void **state)
{
    struct cfg *c;
    struct sink *s;
    MYSQL *lock;
    MYSQL_RES *res;
    fserr e = {0};
    long long id;
    int64_t t0;
    (void)state;

    fresh_db("sink_hist");
    c = make_cfg("sink_hist", (struct opts){.history = true});
    s = start_sink(c);
    sink_push(s, up("a", T(10), true, 0, (struct vals){"A1", "1.00", "1", "c", NULL}));
    sink_push(s, up("b", T(10), true, 0, (struct vals){"B1", "1.00", "1", "c", NULL}));
    sink_push(s, up("a", T(20), false, B_NAME, (struct vals){"A2", "1.00", "1", "c", NULL}));
    sink_push(s, del("b", T(30)));
    sink_push(s, up("a", T(15), false, B_NAME, (struct vals){"stale", "1.00", "1", "c", NULL}));
    sink_push(s, ckpt("tok-1", T(31)));
    flush(s);
    assert_string_equal(q("SELECT GROUP_CONCAT(CONCAT_WS('|', doc_key, op, source, update_time) "
                          "ORDER BY doc_key, update_time) FROM sink_hist.firesync_changes"),
                        "a|CREATE|stream|2023-11-14 22:13:30.000000,"
                        "a|UPDATE|stream|2023-11-14 22:13:40.000000,"
                        "b|CREATE|stream|2023-11-14 22:13:30.000000,"
                        "b|DELETE|stream|2023-11-14 22:13:50.000000");
    assert_string_equal(q("SELECT CONCAT_WS('|', JSON_VALUE(changed, '$.name.old'), "
                          "JSON_VALUE(changed, '$.name.new'), JSON_LENGTH(changed)) FROM "
                          "sink_hist.firesync_changes WHERE op = 'UPDATE'"),
                        "A1|A2|1");
    assert_string_equal(q("SELECT CONCAT_WS('|', JSON_VALUE(changed, '$.salary.new'), "
                          "JSON_TYPE(JSON_EXTRACT(changed, '$.active.new')), "
                          "JSON_TYPE(JSON_EXTRACT(changed, '$.name.old'))) FROM "
                          "sink_hist.firesync_changes WHERE doc_key = 'a' AND op = 'CREATE'"),
                        "1.00|BOOLEAN|NULL");
    assert_string_equal(q("SELECT JSON_VALUE(changed, '$.name.old') FROM "
                          "sink_hist.firesync_changes WHERE op = 'DELETE'"),
                        "B1");

    /* a replay of the same events adds nothing */
    sink_push(s, up("a", T(10), true, 0, (struct vals){"A1", "1.00", "1", "c", NULL}));
    sink_push(s, up("a", T(20), false, B_NAME, (struct vals){"A2", "1.00", "1", "c", NULL}));
    sink_push(s, del("b", T(30)));
    flush(s);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_hist.firesync_changes"), 4);

    /* a transient failure in the middle of a batch: the sink's connection is killed while it
     * waits for a lock on the checkpoint row, after it wrote the row and its history */
    lock = svc_mysql_connect(&env, "sink_hist", &e);
    assert_non_null(lock);
    assert_int_equal(mysql_query(lock, "START TRANSACTION"), 0);
    assert_int_equal(mysql_query(lock, "SELECT * FROM firesync_checkpoint FOR UPDATE"), 0);
    res = mysql_store_result(lock);
    mysql_free_result(res);
    sink_push(s, up("a", T(40), false, B_NAME, (struct vals){"A4", "1.00", "1", "c", NULL}));
    sink_push(s, ckpt("tok-2", T(41)));
    t0 = now_ms();
    while (!(id = find_query("sink_hist", "INSERT INTO `firesync_checkpoint`"))) {
        assert_true(now_ms() - t0 < 5000);
        sleep_ms(5);
    }
    exec_sql("KILL %lld", id);
    assert_int_equal(mysql_query(lock, "COMMIT"), 0);
    mysql_close(lock);
    flush(s);
    assert_true(counter(&sink_stats(s)->retries) >= 1);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_hist.firesync_changes WHERE doc_key = 'a' AND "
                        "update_time = '2023-11-14 22:14:00'"),
                     1);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_hist.firesync_changes"), 5);
    assert_string_equal(q("SELECT CONCAT_WS('|', e.name, c.resume_token) FROM "
                          "sink_hist.employees e, sink_hist.firesync_checkpoint c WHERE "
                          "e.id = 'a'"),
                        "A4|tok-2");
    sink_free(s);
    cfg_free(c);
}

/* ---- reading back and throughput ------------------------------------------------------------- */

struct loaded {
    size_t rows, live, tombstones;
    char last[32];
    bool ordered, hashes_ok;
};

static int on_row(void *ud, const struct sink_index_row *row)
{
    struct loaded *l = ud;
    char key[32];

    snprintf(key, sizeof(key), "%.*s", (int)row->keylen, row->key);
    if (l->rows && strcmp(key, l->last) <= 0)
        l->ordered = false;
    snprintf(l->last, sizeof(l->last), "%s", key);
    l->rows++;
    if (row->delete_us) {
        l->tombstones++;
    } else {
        l->live++;
        if (row->nhashes != NCELLS || row->hashes[2] != hash_text("1") || row->hashes[4] != 0 ||
            row->update_us != T(2))
            l->hashes_ok = false;
    }
    return 0;
}

static void test_twenty_thousand_rows_created_updated_and_read_back(void **state)
{
    enum { N = 20000 };
    struct cfg *c;
    struct sink *s;
    const struct sink_stats *st;
    struct loaded l = {.ordered = true, .hashes_ok = true};
    char key[32], name[32];
    fserr e = {0};
    int64_t t0, t1, t2;
    (void)state;

    fresh_db("sink_perf");
    c = make_cfg("sink_perf", (struct opts){.batch_rows = 500, .delay_ms = 50});
    s = start_sink(c);
    st = sink_stats(s);
    t0 = now_ms();
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "emp%06d", i);
        snprintf(name, sizeof(name), "name %d", i);
        sink_push(s, up(key, T(1), true, 0,
                        (struct vals){name, "1234.50", "1", "Lisboa", "{\"team\":\"core\"}"}));
    }
    flush(s);
    t1 = now_ms();
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "emp%06d", i);
        snprintf(name, sizeof(name), "renamed %d", i);
        sink_push(
            s, up(key, T(2), false, B_NAME, (struct vals){name, "1234.50", "1", "Lisboa", NULL}));
    }
    sink_push(s, del("emp000007", T(3)));
    flush(s);
    t2 = now_ms();
    assert_int_equal(counter(&st->created), N);
    assert_int_equal(counter(&st->updated), N);
    assert_int_equal(counter(&st->deleted), 1);
    assert_int_equal(qn("SELECT COUNT(*) FROM sink_perf.employees WHERE name LIKE 'renamed %%'"),
                     N);
    print_message("%d creates: %lld ms (%.0f rows/s); %d updates: %lld ms (%.0f rows/s); "
                  "%llu batches\n",
                  N, (long long)(t1 - t0), N * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1), N,
                  (long long)(t2 - t1), N * 1000.0 / (double)(t2 - t1 ? t2 - t1 : 1),
                  (unsigned long long)counter(&st->batches));
    sink_free(s);

    /* the applied index comes back a page at a time, in key order, hashes decoded */
    assert_int_equal(sink_load_index(c, 0, on_row, &l, &e), 0);
    assert_int_equal(l.rows, N);
    assert_int_equal(l.tombstones, 1);
    assert_true(l.ordered);
    assert_true(l.hashes_ok);
    cfg_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_tables_creates_every_table_innodb_utf8mb4_bin),
        cmocka_unit_test(test_missing_table_refuses_start_without_create_tables),
        cmocka_unit_test(test_missing_or_narrower_column_refuses_start_naming_table_and_column),
        cmocka_unit_test(test_mapped_table_has_only_its_primary_key_and_an_added_index_is_kept),
        cmocka_unit_test(test_create_update_and_soft_delete),
        cmocka_unit_test(test_update_writes_only_the_changed_columns),
        cmocka_unit_test(test_older_version_after_newer_one_leaves_the_newer),
        cmocka_unit_test(test_two_versions_of_a_key_in_one_batch_apply_in_order),
        cmocka_unit_test(test_stale_update_after_delete_stays_deleted_and_newer_create_revives),
        cmocka_unit_test(test_same_batch_applied_twice_changes_nothing),
        cmocka_unit_test(test_checkpoint_reads_back_and_later_one_wins),
        cmocka_unit_test(test_checkpoint_commits_with_the_rows_before_it_under_sigkill),
        cmocka_unit_test(test_refused_row_goes_to_dead_letter_and_the_rest_of_its_batch_applies),
        cmocka_unit_test(test_dropped_table_fails_keeps_the_queue_and_recovers_when_fixed),
        cmocka_unit_test(test_history_rows_are_written_once_even_when_a_batch_is_replayed),
        cmocka_unit_test(test_twenty_thousand_rows_created_updated_and_read_back),
        cmocka_unit_test(test_mariadb_restart_under_load_loses_nothing),
        cmocka_unit_test(test_killed_connections_while_commits_overlap_lose_nothing),
    };
    if (getenv("SINK_TEST_FILTER")) /* e.g. SINK_TEST_FILTER='*sigkill*' */
        cmocka_set_test_filter(getenv("SINK_TEST_FILTER"));
    return cmocka_run_group_tests_name("sink", tests, setup, NULL);
}
