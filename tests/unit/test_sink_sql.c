/*
 * test_sink_sql.c - the SQL text of the MySQL sink that needs no server: the DDL for a sample
 * mapping (column order, types, character sets, keys, bookkeeping tables), refusal of names that
 * would clash or are not identifiers, the DATETIME(6) text format both ways, and the check that
 * keeps a numeric cell from smuggling anything into a statement.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/config.h"
#include "mysql/internal.h"
#include "mysql/sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SAMPLE                                                                                     \
    "[firestore]\nproject_id = \"p\"\n"                                                            \
    "[mysql]\ndatabase = \"d\"\n"                                                                  \
    "[[collections]]\npath = \"employees\"\ntable = \"employees\"\nkey = \"id\"\n"                 \
    "history = true\n"                                                                             \
    "[collections.columns]\n"                                                                      \
    "name = { field = \"name\", type = \"VARCHAR(200)\" }\n"                                       \
    "salary = { field = \"salary\", type = \"DECIMAL(12,2)\" }\n"                                  \
    "active = { field = \"active\", type = \"BOOLEAN\" }\n"                                        \
    "hired_at = { field = \"hiredAt\", type = \"DATETIME(6)\" }\n"                                 \
    "born = { field = \"born\", type = \"DATE\" }\n"                                               \
    "notes = { field = \"notes\", type = \"TEXT\" }\n"                                             \
    "score = { field = \"score\", type = \"DOUBLE\" }\n"                                           \
    "visits = { field = \"visits\", type = \"BIGINT\" }\n"                                         \
    "age = { field = \"age\", type = \"INT\" }\n"                                                  \
    "tags = { field = \"tags\", type = \"JSON\" }\n"                                               \
    "photo = { field = \"photo\", type = \"VARBINARY(64)\" }\n"                                    \
    "[[collections]]\npath = \"users/*/orders\"\ntable = \"orders\"\nextra_column = \"\"\n"        \
    "[collections.columns]\n"                                                                      \
    "total = { field = \"total\", type = \"DECIMAL(10,2)\" }\n"

static struct cfg *load(const char *src)
{
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};

    buf_init(&errs, 0);
    if (cfg_load_mem("t.toml", src, strlen(src), &c, &errs, &e) != 0)
        fail_msg("config does not load:\n%s%s", buf_str(&errs), e.msg);
    buf_release(&errs);
    return c;
}

/* The DDL of SAMPLE, owned by the caller. */
static char *ddl(const struct cfg *c)
{
    buf out;

    buf_init(&out, 0);
    assert_int_equal(sink_schema_sql(c, &out), 0);
    return buf_take(&out);
}

/* The CREATE TABLE statement for `table` within the DDL (static storage). */
static const char *table_ddl(const char *all, const char *table)
{
    static char one[16384];
    char head[128];
    const char *p, *end;

    snprintf(head, sizeof(head), "CREATE TABLE IF NOT EXISTS `%s` (", table);
    p = strstr(all, head);
    assert_non_null(p);
    end = strstr(p, ";\n");
    assert_non_null(end);
    snprintf(one, sizeof(one), "%.*s", (int)(end - p), p);
    return one;
}

static void assert_in_order(const char *text, const char *const *parts)
{
    const char *p = text;
    for (; *parts; parts++) {
        const char *q = strstr(p, *parts);
        if (!q)
            fail_msg("\"%s\" missing or out of order in:\n%s", *parts, text);
        p = q + strlen(*parts);
    }
}

static void test_mapped_table_has_key_columns_extra_and_bookkeeping_in_order(void **state)
{
    struct cfg *c = load(SAMPLE);
    char *all = ddl(c);
    const char *t = table_ddl(all, "employees");
    static const char *const parts[] = {
        "`id` VARBINARY(1500) NOT NULL,",
        "`name` VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,",
        "`salary` DECIMAL(12,2) NULL,",
        "`active` TINYINT(1) NULL,",
        "`hired_at` DATETIME(6) NULL,",
        "`born` DATE NULL,",
        "`notes` TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,",
        "`score` DOUBLE NULL,",
        "`visits` BIGINT NULL,",
        "`age` INT NULL,",
        "`tags` JSON NULL,",
        "`photo` VARBINARY(64) NULL,",
        "`extra` JSON NULL,",
        "`fs_create_time` DATETIME(6) NULL,",
        "`fs_update_time` DATETIME(6) NULL,",
        "`fs_delete_time` DATETIME(6) NULL,",
        "`deleted_at` DATETIME(6) NULL,",
        "`synced_at` DATETIME(6) NOT NULL,",
        "`fs_hashes` VARBINARY(520) NULL,",
        "PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
        NULL,
    };
    (void)state;

    assert_in_order(t, parts);
    free(all);
    cfg_free(c);
}

static void test_collection_group_is_keyed_by_path_without_extra_column(void **state)
{
    struct cfg *c = load(SAMPLE);
    char *all = ddl(c);
    const char *t = table_ddl(all, "orders");
    static const char *const parts[] = {"`path` VARBINARY(3072) NOT NULL,",
                                        "`total` DECIMAL(10,2) NULL,", "`fs_create_time`",
                                        "PRIMARY KEY (`path`)", NULL};
    (void)state;

    assert_in_order(t, parts);
    assert_null(strstr(t, "`extra`"));
    free(all);
    cfg_free(c);
}

static void test_bookkeeping_tables_have_their_documented_layout(void **state)
{
    struct cfg *c = load(SAMPLE);
    char *all = ddl(c);
    static const char *const ck[] = {
        "`target` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,",
        "`resume_token` VARCHAR(4096) CHARACTER SET ascii COLLATE ascii_bin NULL,",
        "`read_time` DATETIME(6) NULL,",
        "`updated_at` DATETIME(6) NOT NULL,",
        "`resync_generation` BIGINT NOT NULL DEFAULT 0,",
        "`resync_started_at` DATETIME(6) NULL,",
        "`resync_finished_at` DATETIME(6) NULL,",
        "`resync_read_time` DATETIME(6) NULL,",
        "`resync_cursor` VARBINARY(3072) NULL,",
        "`resync_result` VARCHAR(1024) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,",
        "PRIMARY KEY (`target`)",
        NULL,
    };
    static const char *const ch[] = {
        "`event_id` CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,",
        "`collection` VARCHAR(255)",
        "`doc_key` VARBINARY(3072) NOT NULL,",
        "`op` ENUM('CREATE','UPDATE','DELETE')",
        "`changed` JSON NULL,",
        "`update_time` DATETIME(6) NULL,",
        "`source` ENUM('stream','resync','simulated')",
        "`applied_at` DATETIME(6) NOT NULL,",
        "PRIMARY KEY (`event_id`),",
        "KEY `collection_doc_key` (`collection`, `doc_key`(255))",
        NULL,
    };
    static const char *const dl[] = {
        "`id` BIGINT NOT NULL AUTO_INCREMENT,",
        "`collection` VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,",
        "`doc_name` VARBINARY(6144) NOT NULL,",
        "`doc_hash` BINARY(32) NOT NULL,",
        "`reason` TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,",
        "`raw` MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,",
        "`first_seen` DATETIME(6) NOT NULL,",
        "`last_seen` DATETIME(6) NOT NULL,",
        "`seen_count` BIGINT NOT NULL DEFAULT 1,",
        "PRIMARY KEY (`id`),",
        "UNIQUE KEY `doc_hash` (`doc_hash`)",
        NULL,
    };
    (void)state;

    assert_in_order(table_ddl(all, "firesync_checkpoint"), ck);
    assert_in_order(table_ddl(all, "firesync_changes"), ch);
    assert_in_order(table_ddl(all, "firesync_dead_letter"), dl);
    free(all);
    cfg_free(c);
}

static void test_every_table_states_innodb_and_utf8mb4_bin(void **state)
{
    struct cfg *c = load(SAMPLE);
    char *all = ddl(c);
    int creates = 0, options = 0;
    (void)state;

    for (const char *p = all; (p = strstr(p, "CREATE TABLE IF NOT EXISTS")); p++)
        creates++;
    for (const char *p = all; (p = strstr(p, ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                                             "COLLATE=utf8mb4_bin;\n"));
         p++)
        options++;
    assert_int_equal(creates, 5); /* two mapped, checkpoint, changes, dead letter */
    assert_int_equal(options, 5);
    free(all);
    cfg_free(c);
}

static void test_changes_table_only_when_a_collection_keeps_history(void **state)
{
    struct cfg *c = load(SAMPLE);
    char *all;
    (void)state;

    c->collections[0].history = false;
    all = ddl(c);
    assert_null(strstr(all, "firesync_changes"));
    assert_non_null(strstr(all, "firesync_checkpoint"));
    free(all);
    cfg_free(c);
}

static void test_bookkeeping_table_names_come_from_the_config(void **state)
{
    struct cfg *c = load(SAMPLE);
    char *all;
    (void)state;

    free(c->mysql.checkpoint_table);
    c->mysql.checkpoint_table = strdup("my_ckpt");
    all = ddl(c);
    assert_non_null(strstr(all, "CREATE TABLE IF NOT EXISTS `my_ckpt` ("));
    assert_null(strstr(all, "firesync_checkpoint"));
    free(all);
    cfg_free(c);
}

static void expect_refused(struct cfg *c, const char *needle)
{
    buf out;
    fserr e = {0};

    buf_init(&out, 0);
    assert_int_equal(sink_schema_sql(c, &out), FS_ECONFIG);
    assert_int_equal(sink_schema_validate(c, &e), FS_ECONFIG);
    if (!strstr(e.msg, needle))
        fail_msg("\"%s\" not in \"%s\"", needle, e.msg);
    buf_release(&out);
}

static void test_names_that_are_not_identifiers_or_clash_are_refused(void **state)
{
    struct cfg *c = load(SAMPLE);
    char *saved;
    (void)state;

    saved = c->collections[0].columns[0].name;
    c->collections[0].columns[0].name = "na`me";
    expect_refused(c, "employees");
    c->collections[0].columns[0].name = "id"; /* the key column */
    expect_refused(c, "key column");
    c->collections[0].columns[0].name = "FS_HASHES";
    expect_refused(c, "bookkeeping");
    c->collections[0].columns[0].name = saved;

    saved = c->collections[0].table;
    c->collections[0].table = "emp; DROP TABLE x";
    expect_refused(c, "not a plain identifier");
    c->collections[0].table = "firesync_dead_letter";
    expect_refused(c, "bookkeeping");
    c->collections[0].table = saved;

    saved = c->mysql.changes_table;
    c->mysql.changes_table = "x`y";
    expect_refused(c, "x`y");
    c->mysql.changes_table = c->mysql.checkpoint_table;
    expect_refused(c, "two purposes");
    c->mysql.changes_table = saved;
    cfg_free(c);
}

static const char *fmt(int64_t us)
{
    static char out[SINK_TIME_LEN];
    assert_int_equal(sink_time_format(us, out), 0);
    return out;
}

static void test_times_format_as_datetime6_in_utc(void **state)
{
    char out[SINK_TIME_LEN];
    (void)state;

    assert_string_equal(fmt(0), "1970-01-01 00:00:00.000000");
    assert_string_equal(fmt(1700000000123456LL), "2023-11-14 22:13:20.123456");
    assert_string_equal(fmt(-1), "1969-12-31 23:59:59.999999");
    assert_string_equal(fmt(951782400000001LL), "2000-02-29 00:00:00.000001");
    assert_string_equal(fmt(-62135596800LL * 1000000), "0001-01-01 00:00:00.000000");
    assert_string_equal(fmt(253402300799999999LL), "9999-12-31 23:59:59.999999");
    assert_int_equal(sink_time_format(253402300800LL * 1000000, out), FS_ERANGE);
    assert_string_equal(out, "");
    assert_int_equal(sink_time_format(-62135596801LL * 1000000, out), FS_ERANGE);
}

static void test_times_parse_back_to_the_same_microsecond(void **state)
{
    static const int64_t samples[] = {0,
                                      1,
                                      -1,
                                      1700000000123456LL,
                                      951782400000001LL,
                                      -62135596800LL * 1000000,
                                      253402300799999999LL,
                                      4102444800000000LL /* 2100-01-01, not leap */};
    int64_t us;
    (void)state;

    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        const char *s = fmt(samples[i]);
        assert_int_equal(sink_time_parse(s, strlen(s), &us), 0);
        assert_int_equal(us, samples[i]);
    }
    assert_int_equal(sink_time_parse("2023-11-14 22:13:20", 19, &us), 0);
    assert_int_equal(us, 1700000000000000LL);
    assert_int_equal(sink_time_parse("2023-11-14 22:13:20.5", 21, &us), 0);
    assert_int_equal(us, 1700000000500000LL);
    assert_int_equal(sink_time_parse("2023-11-14T22:13:20", 19, &us), FS_EPARSE);
    assert_int_equal(sink_time_parse("2023-11-14 22:13:20.1234567", 27, &us), FS_EPARSE);
    assert_int_equal(sink_time_parse("2023-13-14 22:13:20", 19, &us), FS_ERANGE);
    assert_int_equal(sink_time_parse("2023-11-14", 10, &us), FS_EPARSE);
}

static void test_only_plain_numbers_pass_as_numeric_literals(void **state)
{
    static const char *const good[] = {"0",  "-42", "1000.50", "1.5e+300", "1E5", "+3",
                                       ".5", "5.",  "-0.0",    "2e-7",     NULL};
    static const char *const bad[] = {
        "",     "-",   "+",   ".",  "1e", "1e+",   "1.2.3", "1;DROP TABLE t",
        "0x10", "NaN", "inf", " 1", "1 ", "1e5e5", "1,5",   "'1'",
        "--1",  "1-1", NULL};
    char big[80];
    (void)state;

    for (const char *const *p = good; *p; p++)
        if (!sink_num_ok(*p, strlen(*p)))
            fail_msg("\"%s\" should pass", *p);
    for (const char *const *p = bad; *p; p++)
        if (sink_num_ok(*p, strlen(*p)))
            fail_msg("\"%s\" should be refused", *p);
    assert_false(sink_num_ok(NULL, 0));
    assert_false(sink_num_ok("12\0"
                             "3",
                             4)); /* the length counts, not the NUL */
    memset(big, '9', sizeof(big));
    assert_true(sink_num_ok(big, 64));
    assert_false(sink_num_ok(big, 65));
}

static void test_binary_goes_out_as_hex_and_names_in_backquotes(void **state)
{
    buf b;
    (void)state;

    buf_init(&b, 0);
    assert_int_equal(sink_add_hex(&b, "\x00\xff'a", 4), 0);
    assert_string_equal(buf_str(&b), "X'00FF2761'");
    buf_reset(&b);
    assert_int_equal(sink_add_hex(&b, "", 0), 0);
    assert_string_equal(buf_str(&b), "X''");
    buf_reset(&b);
    assert_int_equal(sink_add_ident(&b, "employees"), 0);
    assert_string_equal(buf_str(&b), "`employees`");
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapped_table_has_key_columns_extra_and_bookkeeping_in_order),
        cmocka_unit_test(test_collection_group_is_keyed_by_path_without_extra_column),
        cmocka_unit_test(test_bookkeeping_tables_have_their_documented_layout),
        cmocka_unit_test(test_every_table_states_innodb_and_utf8mb4_bin),
        cmocka_unit_test(test_changes_table_only_when_a_collection_keeps_history),
        cmocka_unit_test(test_bookkeeping_table_names_come_from_the_config),
        cmocka_unit_test(test_names_that_are_not_identifiers_or_clash_are_refused),
        cmocka_unit_test(test_times_format_as_datetime6_in_utc),
        cmocka_unit_test(test_times_parse_back_to_the_same_microsecond),
        cmocka_unit_test(test_only_plain_numbers_pass_as_numeric_literals),
        cmocka_unit_test(test_binary_goes_out_as_hex_and_names_in_backquotes),
    };
    return cmocka_run_group_tests_name("sink_sql", tests, NULL, NULL);
}
