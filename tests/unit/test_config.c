/*
 * test_config.c - the configuration layer: the shipped example loads cleanly, defaults are
 * filled in, every mistake is reported with file:line:col in one run, unknown keys and wrong
 * types are errors, the environment conventions apply only when the file is silent, and the
 * printed effective configuration hides secrets and reads back to the same settings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINIMAL "[firestore]\nproject_id = \"p\"\n[mysql]\ndatabase = \"d\"\n"

static struct cfg *load_ok(const char *src)
{
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};
    int rc;

    buf_init(&errs, 0);
    rc = cfg_load_mem("t.toml", src, strlen(src), &c, &errs, &e);
    if (rc)
        fail_msg("unexpected errors:\n%s", buf_str(&errs));
    buf_release(&errs);
    return c;
}

/* Loads src expecting failure; returns the error lines (static storage). */
static const char *load_bad(const char *src)
{
    static char out[8192];
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};

    buf_init(&errs, 0);
    assert_int_equal(cfg_load_mem("t.toml", src, strlen(src), &c, &errs, &e), FS_ECONFIG);
    assert_null(c);
    snprintf(out, sizeof(out), "%s", buf_str(&errs));
    buf_release(&errs);
    return out;
}

static void test_example_config_loads_without_errors(void **state)
{
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};
    (void)state;

    unsetenv("FIRESTORE_EMULATOR_HOST");
    buf_init(&errs, 0);
    if (cfg_load_file("config.example.toml", &c, &errs, &e) != 0)
        fail_msg("config.example.toml: %s\n%s", e.msg, buf_str(&errs));
    assert_string_equal(c->firestore.project_id, "demo-project");
    assert_int_equal(c->ncollections, 1);
    assert_string_equal(c->collections[0].table, "employees");
    assert_int_equal(c->collections[0].ncolumns, 6);
    assert_true(c->collections[0].history);
    assert_int_equal(c->collections[0].columns[2].type, CFG_COL_DECIMAL);
    assert_int_equal(c->collections[0].columns[2].len, 12);
    assert_int_equal(c->collections[0].columns[2].scale, 2);
    assert_string_equal(c->collections[0].columns[5].field, "address.city");
    cfg_free(c);
    buf_release(&errs);
}

static void test_defaults_are_filled_in(void **state)
{
    struct cfg *c;
    (void)state;
    unsetenv("FIRESTORE_EMULATOR_HOST");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    c = load_ok(MINIMAL);
    assert_string_equal(c->firestore.database, "(default)");
    assert_null(c->firestore.emulator_host);
    assert_int_equal(c->mysql.port, 3306);
    assert_int_equal(c->mysql.tls_mode, CFG_TLS_PREFERRED);
    assert_int_equal(c->resync.interval_ms, 6 * 3600 * 1000);
    assert_int_equal(c->agent.batch_max_rows, 500);
    assert_string_equal(c->mysql.checkpoint_table, "firesync_checkpoint");
    assert_int_equal(c->ncollections, 0);
    cfg_free(c);
}

static void test_two_mistakes_on_different_lines_are_both_reported(void **state)
{
    const char *out;
    (void)state;
    out = load_bad("[firestore]\nproject_id = 7\n[mysql]\ndatabase = \"d\"\nport = \"x\"\n");
    assert_non_null(strstr(out, "t.toml:2:14: firestore.project_id must be a string, not an "
                                "integer\n"));
    assert_non_null(strstr(out, "t.toml:5:8: mysql.port must be an integer, not a string\n"));
    assert_true(strstr(out, "t.toml:2:") < strstr(out, "t.toml:5:"));
}

static void test_unknown_key_is_an_error_with_its_position(void **state)
{
    (void)state;
    assert_string_equal(load_bad(MINIMAL "prot = 3306\n"),
                        "t.toml:5:1: unknown key 'prot' in [mysql]\n");
    assert_string_equal(load_bad(MINIMAL "[mysqll]\nx = 1\n"),
                        "t.toml:5:2: unknown section 'mysqll' (sections are [firestore], "
                        "[mysql], [agent], [resync] and [[collections]])\n");
}

static void test_syntax_errors_and_semantic_errors_come_together(void **state)
{
    const char *out;
    (void)state;
    out = load_bad(MINIMAL "[agent]\nlog_level = \"loud\"\nbatch_max_rows = = 3\n");
    assert_non_null(strstr(out, "t.toml:6:13: agent.log_level: unknown level \"loud\""));
    assert_non_null(strstr(out, "t.toml:7:"));
}

static void test_missing_required_keys_are_named(void **state)
{
    const char *out;
    (void)state;
    out = load_bad("");
    assert_non_null(strstr(out, "missing required key 'project_id' in [firestore]"));
    assert_non_null(strstr(out, "missing required key 'database' in [mysql]"));
}

static void test_durations_parse_and_print(void **state)
{
    int64_t ms;
    char out[32];
    (void)state;
    assert_int_equal(cfg_duration_parse("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(cfg_duration_parse("6h", &ms), 0);
    assert_int_equal(ms, 6 * 3600 * 1000);
    assert_int_equal(cfg_duration_parse("1h30m", &ms), 0);
    assert_int_equal(ms, 90 * 60 * 1000);
    assert_int_equal(cfg_duration_parse("2d", &ms), 0);
    assert_int_equal(ms, 2 * 86400000LL);
    assert_int_equal(cfg_duration_parse("", &ms), FS_EINVAL);
    assert_int_equal(cfg_duration_parse("5", &ms), FS_EINVAL);
    assert_int_equal(cfg_duration_parse("5x", &ms), FS_EINVAL);
    assert_int_equal(cfg_duration_parse("-5s", &ms), FS_EINVAL);
    assert_int_equal(cfg_duration_parse("5 s", &ms), FS_EINVAL);
    assert_int_equal(cfg_duration_parse("5mss", &ms), FS_EINVAL);
    assert_int_equal(cfg_duration_parse("99999999999999999999h", &ms), FS_ERANGE);
    cfg_duration_format(90 * 60 * 1000, out, sizeof(out));
    assert_string_equal(out, "1h30m");
    cfg_duration_format(250, out, sizeof(out));
    assert_string_equal(out, "250ms");
    cfg_duration_format(0, out, sizeof(out));
    assert_string_equal(out, "0s");
}

static void test_bad_durations_and_ranges_are_explained(void **state)
{
    (void)state;
    assert_non_null(strstr(load_bad(MINIMAL "[resync]\ninterval = \"often\"\n"),
                           "t.toml:6:12: resync.interval: \"often\" is not a duration"));
    assert_non_null(strstr(load_bad(MINIMAL "[resync]\ninterval = \"1s\"\n"),
                           "resync.interval must be between 1m and 365d"));
    assert_non_null(strstr(load_bad(MINIMAL "port = 70000\n"),
                           "t.toml:5:8: mysql.port must be between 1 and 65535"));
    assert_non_null(strstr(load_bad(MINIMAL "[resync]\npages_per_second = -1.5\n"),
                           "resync.pages_per_second must be a positive number"));
}

static void test_environment_applies_only_when_the_file_is_silent(void **state)
{
    struct cfg *c;
    (void)state;
    setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8085", 1);
    setenv("GOOGLE_APPLICATION_CREDENTIALS", "/k.json", 1);
    c = load_ok(MINIMAL);
    assert_string_equal(c->firestore.emulator_host, "127.0.0.1:8085");
    assert_null(c->firestore.credentials_file);
    cfg_free(c);
    c = load_ok("[firestore]\nproject_id = \"p\"\ncredentials_file = \"/mine.json\"\n"
                "[mysql]\ndatabase = \"d\"\n");
    assert_null(c->firestore.emulator_host);
    assert_string_equal(c->firestore.credentials_file, "/mine.json");
    cfg_free(c);
    unsetenv("FIRESTORE_EMULATOR_HOST");
    c = load_ok(MINIMAL);
    assert_string_equal(c->firestore.credentials_file, "/k.json");
    cfg_free(c);
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
}

static void test_printed_config_redacts_secrets_and_reads_back(void **state)
{
    struct cfg *c, *c2;
    buf out;
    (void)state;
    unsetenv("FIRESTORE_EMULATOR_HOST");
    c = load_ok("[firestore]\nproject_id = \"p\\\"q\"\n[mysql]\ndatabase = \"d\"\n"
                "password = \"hunter2\"\n[agent]\nbatch_max_delay_ms = 7\n"
                "[[collections]]\npath = \"users/*/orders\"\ntable = \"orders\"\n"
                "[collections.columns]\ntotal = { field = \"total\", type = \"decimal(10,2)\" }\n");
    buf_init(&out, 0);
    cfg_print(c, &out);
    assert_null(strstr(buf_str(&out), "hunter2"));
    assert_non_null(strstr(buf_str(&out), "password = \"[redacted]\""));
    assert_non_null(strstr(buf_str(&out), "key = \"path\""));
    assert_non_null(strstr(buf_str(&out), "type = \"DECIMAL(10,2)\""));
    c2 = load_ok(buf_str(&out));
    assert_string_equal(c2->firestore.project_id, "p\"q");
    assert_int_equal(c2->agent.batch_max_delay_ms, 7);
    assert_int_equal(c2->collections[0].key, CFG_KEY_PATH);
    assert_true(c2->collections[0].is_group);
    assert_int_equal(c2->collections[0].columns[0].type, CFG_COL_DECIMAL);
    buf_release(&out);
    cfg_free(c);
    cfg_free(c2);
}

static void test_collection_mapping_errors_are_caught(void **state)
{
    const char *out;
    (void)state;
    out = load_bad(MINIMAL "[[collections]]\npath = \"a/b\"\ntable = \"bad-name\"\n"
                           "[collections.columns]\n"
                           "x = { field = \"x\", type = \"VARCHAR\" }\n"
                           "deleted_at = { field = \"d\", type = \"TEXT\" }\n"
                           "y = { field = \"y\" }\n"
                           "z = { field = \"z\", type = \"DATETIME(3)\", extra = 1 }\n");
    assert_non_null(strstr(out, "t.toml:6:8: collections.path \"a/b\" is not a collection path"));
    assert_non_null(strstr(out, "t.toml:7:9: collections.table \"bad-name\" is not a plain SQL"));
    assert_non_null(strstr(out, "t.toml:9:27: collections[0].columns.x: unknown or malformed "
                                "type \"VARCHAR\""));
    assert_non_null(strstr(out, "t.toml:10:1: column name 'deleted_at' is reserved"));
    assert_non_null(strstr(out, "collections[0].columns.y needs both field and type"));
    assert_non_null(strstr(out, "unknown key 'extra' in collections[0].columns.z"));
}

static void test_patterns_need_path_keys_and_tables_are_unique(void **state)
{
    const char *out;
    (void)state;
    out = load_bad(MINIMAL "[[collections]]\npath = \"users/*/orders\"\ntable = \"o\"\nkey = \"id\"\n"
                           "[[collections]]\npath = \"x\"\ntable = \"O\"\n"
                           "[[collections]]\npath = \"*/y\"\ntable = \"p\"\n");
    assert_non_null(strstr(out, "t.toml:8:7: collections.key = \"id\" is ambiguous"));
    assert_non_null(strstr(out, "table 'O' is used by two collections"));
    assert_non_null(strstr(out, "collections.path \"*/y\" is not a collection path"));
}

static void test_column_types_cover_every_sql_type(void **state)
{
    struct cfg *c;
    char ty[32];
    static const char *types[] = {"VARCHAR(100)", "TEXT",        "BIGINT", "INT",
                                  "DOUBLE",       "DECIMAL(12,2)", "BOOLEAN", "DATETIME(6)",
                                  "DATE",         "JSON",        "VARBINARY(16)"};
    char src[2048];
    size_t o;
    (void)state;

    o = (size_t)snprintf(src, sizeof(src),
                         MINIMAL "[[collections]]\npath = \"c\"\ntable = \"c\"\n"
                                 "[collections.columns]\n");
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        o += (size_t)snprintf(src + o, sizeof(src) - o, "c%zu = { field = \"f%zu\", type = \"%s\" }\n",
                              i, i, types[i]);
    c = load_ok(src);
    assert_int_equal(c->collections[0].ncolumns, 11);
    for (size_t i = 0; i < 11; i++) {
        cfg_coltype_format(&c->collections[0].columns[i], ty, sizeof(ty));
        assert_string_equal(ty, types[i]);
        assert_int_equal(c->collections[0].columns[i].type, (int)i);
    }
    cfg_free(c);
    assert_non_null(strstr(load_bad(MINIMAL "[[collections]]\npath = \"c\"\ntable = \"c\"\n"
                                            "[collections.columns]\n"
                                            "a = { field = \"a\", type = \"DECIMAL(5,9)\" }\n"),
                           "malformed type \"DECIMAL(5,9)\""));
}

static void test_conflicting_settings_are_refused(void **state)
{
    const char *out;
    (void)state;
    out = load_bad(MINIMAL "password = \"a\"\npassword_file = \"/f\"\n"
                           "reconnect_min = \"10s\"\nreconnect_max = \"1s\"\n"
                           "[mysql.tls]\nmode = \"verify_ca\"\n");
    assert_non_null(strstr(out, "sets both password and password_file"));
    assert_non_null(strstr(out, "reconnect_min is larger than mysql.reconnect_max"));
    assert_non_null(strstr(out, "mysql.tls.mode = \"verify_ca\" needs mysql.tls.ca"));
    assert_non_null(strstr(load_bad(MINIMAL "[mysql.tls]\nmode = \"sometimes\"\n"),
                           "unknown mode \"sometimes\""));
}

static void test_missing_file_is_a_clear_error(void **state)
{
    struct cfg *c = NULL;
    fserr e = {0};
    (void)state;
    assert_int_equal(cfg_load_file("/nonexistent/firesync.toml", &c, NULL, &e), FS_ENOTFOUND);
    assert_non_null(strstr(e.msg, "/nonexistent/firesync.toml"));
    cfg_free(NULL);
}

static void test_identifiers_are_plain(void **state)
{
    (void)state;
    assert_true(cfg_identifier_ok("employees"));
    assert_true(cfg_identifier_ok("_x9$"));
    assert_false(cfg_identifier_ok("9x"));
    assert_false(cfg_identifier_ok("a`b"));
    assert_false(cfg_identifier_ok("a b"));
    assert_false(cfg_identifier_ok(""));
    assert_false(cfg_identifier_ok(NULL));
    assert_false(cfg_identifier_ok("a123456789012345678901234567890123456789012345678901234567890123"
                                   "45"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_config_loads_without_errors),
        cmocka_unit_test(test_defaults_are_filled_in),
        cmocka_unit_test(test_two_mistakes_on_different_lines_are_both_reported),
        cmocka_unit_test(test_unknown_key_is_an_error_with_its_position),
        cmocka_unit_test(test_syntax_errors_and_semantic_errors_come_together),
        cmocka_unit_test(test_missing_required_keys_are_named),
        cmocka_unit_test(test_durations_parse_and_print),
        cmocka_unit_test(test_bad_durations_and_ranges_are_explained),
        cmocka_unit_test(test_environment_applies_only_when_the_file_is_silent),
        cmocka_unit_test(test_printed_config_redacts_secrets_and_reads_back),
        cmocka_unit_test(test_collection_mapping_errors_are_caught),
        cmocka_unit_test(test_patterns_need_path_keys_and_tables_are_unique),
        cmocka_unit_test(test_column_types_cover_every_sql_type),
        cmocka_unit_test(test_conflicting_settings_are_refused),
        cmocka_unit_test(test_missing_file_is_a_clear_error),
        cmocka_unit_test(test_identifiers_are_plain),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
