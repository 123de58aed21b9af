/*
 * test_resync_compare.c - what a resync page decides without MySQL: a cell against MySQL's text
 * for it (DECIMAL and DATETIME by value, DOUBLE numerically, DATE in a DATETIME column, JSON
 * semantically as MySQL 8 normalises it, text byte for byte), the run's summary, the diff's own
 * conversion for a page, and how the applied index is refreshed from what the page found while
 * the stream keeps changing it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "diff/convert.h"
#include "diff/diff.h"
#include "mysql/page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool eq(int type, const char *mysql, enum sink_cell_kind kind, const char *cell)
{
    struct sink_cell c = {kind, (char *)cell, cell ? strlen(cell) : 0};
    return sink_page_cell_equal(type, mysql, mysql ? strlen(mysql) : 0, mysql == NULL, &c);
}

#define NUM SINK_CELL_NUM
#define STR SINK_CELL_STR

static void test_decimals_compare_by_value_whatever_the_column_scale(void **state)
{
    (void)state;
    assert_true(eq(CFG_COL_DECIMAL, "1005.50", NUM, "1005.50"));
    assert_true(eq(CFG_COL_DECIMAL, "1005.5000", NUM, "1005.50")); /* a wider column */
    assert_true(eq(CFG_COL_DECIMAL, "-0.00", NUM, "0.00"));
    assert_true(eq(CFG_COL_DECIMAL, "0.10", NUM, "0.1"));
    assert_false(eq(CFG_COL_DECIMAL, "12.30", NUM, "12.31"));
    assert_false(eq(CFG_COL_DECIMAL, "-12.30", NUM, "12.30"));
    assert_false(eq(CFG_COL_DECIMAL, "120", NUM, "12"));
}

static void test_doubles_compare_numerically(void **state)
{
    (void)state;
    assert_true(eq(CFG_COL_DOUBLE, "0.30000000000000004", NUM, "0.30000000000000004"));
    assert_true(eq(CFG_COL_DOUBLE, "1e300", NUM, "1e+300"));
    assert_true(eq(CFG_COL_DOUBLE, "3", NUM, "3"));
    assert_false(eq(CFG_COL_DOUBLE, "0.3", NUM, "0.30000000000000004"));
    assert_false(eq(CFG_COL_DOUBLE, "", NUM, "0"));
}

static void test_times_and_dates_compare_by_value(void **state)
{
    (void)state;
    assert_true(
        eq(CFG_COL_DATETIME, "2026-01-05 09:00:00.123456", STR, "2026-01-05 09:00:00.123456"));
    assert_true(eq(CFG_COL_DATETIME, "2026-01-05 09:00:00.100", STR, "2026-01-05 09:00:00.100000"));
    assert_false(eq(CFG_COL_DATETIME, "2026-01-05 09:00:00", STR, "2026-01-05 09:00:00.000001"));
    assert_true(eq(CFG_COL_DATE, "2026-01-05", STR, "2026-01-05"));
    assert_true(eq(CFG_COL_DATE, "2026-01-05 00:00:00.000000", STR, "2026-01-05"));
    assert_false(eq(CFG_COL_DATE, "2026-01-05 00:00:01", STR, "2026-01-05"));
}

static void test_json_compares_as_mysql_8_normalises_it(void **state)
{
    (void)state;
    /* MySQL 8 reorders keys and adds spaces; MariaDB keeps the text */
    assert_true(eq(CFG_COL_JSON, "{\"z\": 1, \"a\": [1.5, \"\\u00e9\"]}", STR,
                   "{\"a\":[1.5,\"\xC3\xA9\"],\"z\":1}"));
    assert_true(eq(CFG_COL_JSON, "{\"d\": 1e300}", STR, "{\"d\":1e+300}"));
    assert_false(
        eq(CFG_COL_JSON, "{\"a\": [\"é\", 1.5], \"z\": 1}", STR, "{\"a\":[1.5,\"é\"],\"z\":1}"));
    assert_false(eq(CFG_COL_JSON, "{\"a\": 1}", STR, "{\"a\":1,\"b\":null}"));
    assert_false(eq(CFG_COL_JSON, "{\"a\": 1.0}", STR, "{\"a\":1}")); /* double vs integer */
    assert_false(eq(CFG_COL_JSON, "{\"a\": 9007199254740993}", STR, "{\"a\":9007199254740992}"));
    assert_false(eq(CFG_COL_JSON, "not json", STR, "{}"));
}

static void test_text_null_and_integers_compare_exactly(void **state)
{
    (void)state;
    assert_true(eq(CFG_COL_VARCHAR, "Ana", STR, "Ana"));
    assert_false(eq(CFG_COL_VARCHAR, "Ana ", STR, "Ana"));
    assert_false(eq(CFG_COL_VARCHAR, "ana", STR, "Ana"));
    assert_true(eq(CFG_COL_VARCHAR, NULL, SINK_CELL_NULL, NULL));
    assert_false(eq(CFG_COL_VARCHAR, NULL, STR, ""));
    assert_false(eq(CFG_COL_VARCHAR, "", SINK_CELL_NULL, NULL));
    assert_true(eq(CFG_COL_BIGINT, "-42", NUM, "-42"));
    assert_false(eq(CFG_COL_BOOLEAN, "2", NUM, "1"));
}

static void test_the_summary_names_every_count(void **state)
{
    struct sink_page_totals t = {
        .docs_read = 1000, .billed = 1001, .differences = 3, .fixed = 3, .soft_deleted = 1};
    char out[300];
    (void)state;

    sink_page_summary(&t, 2100, out, sizeof(out));
    assert_string_equal(out, "ok: 1000 read (1001 billed), 3 differences, 3 fixed, 1 "
                             "soft-deleted in 2.1 s");
    t.undecided = 4;
    sink_page_summary(&t, 0, out, sizeof(out));
    assert_non_null(strstr(out, ", 4 rows not checked for deletion"));
}

/* ---- the diff's side ------------------------------------------------------------------------- */

#define DB "projects/p/databases/(default)"

static struct cfg *cfg;
static struct diff *df;
static int nev;

static int count_events(void *ud, struct sink_event *ev)
{
    (void)ud;
    nev++;
    sink_event_free(ev);
    return 0;
}

static int setup(void **state)
{
    const char *src = "[firestore]\nproject_id=\"p\"\n[mysql]\ndatabase=\"d\"\n"
                      "[[collections]]\npath=\"employees\"\ntable=\"employees\"\n"
                      "[collections.columns]\n"
                      "name = { field = \"name\", type = \"VARCHAR(20)\" }\n"
                      "pay = { field = \"pay\", type = \"DECIMAL(8,2)\" }\n";
    buf errs;
    fserr e = {0};
    (void)state;

    buf_init(&errs, 0);
    if (cfg_load_mem("t", src, strlen(src), &cfg, &errs, &e) != 0)
        fail_msg("%s", buf_str(&errs));
    buf_release(&errs);
    assert_int_equal(diff_new(cfg, DB, count_events, NULL, &df, &e), 0);
    nev = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    diff_free(df);
    cfg_free(cfg);
    return 0;
}

static void doc_at(struct fsdoc *doc, const char *id, const char *fields, int secs)
{
    char json[512];
    fserr e = {0};

    snprintf(json, sizeof(json),
             "{\"name\":\"" DB "/documents/employees/%s\",\"fields\":%s,\"createTime\":"
             "\"2026-01-01T00:00:00Z\",\"updateTime\":\"2026-01-01T00:00:%02dZ\"}",
             id, fields, secs);
    assert_int_equal(fsdoc_parse(json, strlen(json), doc, &e), 0);
}

#define T0 INT64_C(1767225600000000)

static void test_a_page_converts_documents_as_the_diff_does(void **state)
{
    struct fsdoc doc;
    struct sink_cell *cells = NULL;
    uint64_t *hashes = NULL;
    size_t n = 0;
    fserr e = {0};
    (void)state;

    doc_at(&doc, "e1",
           "{\"name\":{\"stringValue\":\"Ana\"},\"pay\":{\"doubleValue\":10.5},"
           "\"x\":{\"booleanValue\":true}}",
           1);
    assert_int_equal(diff_cells(df, 0, &doc, &cells, &hashes, &n, &e), 0);
    assert_int_equal(n, 3); /* two columns and the extra one */
    assert_string_equal(cells[0].p, "Ana");
    assert_string_equal(cells[1].p, "10.50");
    assert_string_equal(cells[2].p, "{\"x\":true}");
    assert_int_equal(hashes[1], diff_cell_hash(&cells[1]));
    for (size_t i = 0; i < n; i++)
        diff_cell_release(&cells[i]);
    free(cells);
    free(hashes);
    fsdoc_release(&doc);
    doc_at(&doc, "e2", "{\"pay\":{\"doubleValue\":10.125}}", 1);
    assert_int_equal(diff_cells(df, 0, &doc, &cells, &hashes, &n, &e), FS_ERANGE);
    assert_non_null(strstr(e.msg, "pay"));
    fsdoc_release(&doc);
}

static void upsert(const char *id, int secs)
{
    struct fsdoc doc;
    fserr e = {0};

    doc_at(&doc, id, "{\"name\":{\"stringValue\":\"Ana\"}}", secs);
    assert_int_equal(diff_upsert(df, 0, &doc, SINK_SRC_STREAM, &e), 0);
}

static void refresh(const char *key, bool live, int64_t us, bool seen, bool seen_exists,
                    bool seen_live, int64_t seen_us)
{
    static const uint64_t h[3] = {1, 2, 3};
    struct diff_refresh r = {key, strlen(key), live, us, h, seen, seen_exists, seen_live, seen_us};
    diff_refresh(df, 0, &r);
}

static void expect(const char *key, bool exists, bool live, int64_t us)
{
    int64_t t = 0;
    bool l = false;
    assert_int_equal(diff_peek(df, 0, key, strlen(key), &t, &l), exists);
    if (exists) {
        assert_int_equal(l, live);
        assert_int_equal(t, us);
    }
}

static void test_an_index_entry_the_stream_left_alone_takes_what_mysql_holds(void **state)
{
    struct fsdoc doc;
    fserr e = {0};
    (void)state;

    upsert("e1", 5);
    /* a row soft-deleted by hand was loaded as a tombstone; the resync revived it */
    assert_int_equal(diff_remove(df, 0, DB "/documents/employees/e1", strlen(DB) + 22,
                                 (struct fs_time){1767225600 + 9, 0}, SINK_SRC_STREAM, &e),
                     0);
    refresh("e1", true, T0 + 5000000, true, true, false, T0 + 9000000);
    expect("e1", true, true, T0 + 5000000);
    /* the same version from the stream is now skipped without a write */
    nev = 0;
    doc_at(&doc, "e1", "{\"name\":{\"stringValue\":\"Ana\"}}", 5);
    assert_int_equal(diff_upsert(df, 0, &doc, SINK_SRC_STREAM, &e), 0);
    assert_int_equal(nev, 0);
    /* a key the index never had */
    refresh("e9", true, T0 + 1000000, true, false, false, 0);
    expect("e9", true, true, T0 + 1000000);
}

static void test_a_newer_stream_change_since_the_push_is_kept(void **state)
{
    fserr e = {0};
    (void)state;

    upsert("e1", 5);
    upsert("e1", 8); /* after the page was pushed */
    refresh("e1", true, T0 + 5000000, true, true, true, T0 + 5000000);
    expect("e1", true, true, T0 + 8000000);
    /* a stream delete older than the page's version lost in MySQL: the page's version stands */
    upsert("e2", 3);
    assert_int_equal(diff_remove(df, 0, DB "/documents/employees/e2", strlen(DB) + 22,
                                 (struct fs_time){1767225600 + 4, 0}, SINK_SRC_STREAM, &e),
                     0);
    refresh("e2", true, T0 + 6000000, true, true, true, T0 + 3000000);
    expect("e2", true, true, T0 + 6000000);
}

static void test_a_resync_soft_delete_does_not_undo_a_newer_version(void **state)
{
    (void)state;
    upsert("e1", 9);
    refresh("e1", false, T0 + 7000000, false, false, false, 0); /* deleted at read time 7 */
    expect("e1", true, true, T0 + 9000000);
    refresh("gone", false, T0 + 7000000, false, false, false, 0);
    expect("gone", true, false, T0 + 7000000);
    upsert("e2", 3);
    refresh("e2", false, T0 + 7000000, false, false, false, 0);
    expect("e2", true, false, T0 + 7000000);
}

static void test_a_refresh_leaves_reset_membership_to_the_stream(void **state)
{
    fserr e = {0};
    (void)state;

    upsert("e1", 5);
    diff_reset(df, 0);
    refresh("e1", true, T0 + 5000000, true, true, true, T0 + 5000000);
    nev = 0;
    /* the stream's snapshot after the reset did not have it: it is gone */
    assert_int_equal(diff_sweep(df, 0, (struct fs_time){1767225600 + 20, 0}, SINK_SRC_STREAM, &e),
                     0);
    assert_int_equal(nev, 1);
    expect("e1", true, false, T0 + 20000000);
}

#define TD(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimals_compare_by_value_whatever_the_column_scale),
        cmocka_unit_test(test_doubles_compare_numerically),
        cmocka_unit_test(test_times_and_dates_compare_by_value),
        cmocka_unit_test(test_json_compares_as_mysql_8_normalises_it),
        cmocka_unit_test(test_text_null_and_integers_compare_exactly),
        cmocka_unit_test(test_the_summary_names_every_count),
        TD(test_a_page_converts_documents_as_the_diff_does),
        TD(test_an_index_entry_the_stream_left_alone_takes_what_mysql_holds),
        TD(test_a_newer_stream_change_since_the_push_is_kept),
        TD(test_a_resync_soft_delete_does_not_undo_a_newer_version),
        TD(test_a_refresh_leaves_reset_membership_to_the_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
