/*
 * test_convert.c - every value -> column conversion and every refusal, driven by the golden
 * table tests/fixtures/convert.golden; plus the extra column, cell hashing and time units.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "diff/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A column of type `ty` (like "DECIMAL(12,2)"), through the real config parser. */
static struct cfg *column_cfg(const char *ty)
{
    char src[512];
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};

    snprintf(src, sizeof(src),
             "[firestore]\nproject_id=\"p\"\n[mysql]\ndatabase=\"d\"\n[[collections]]\n"
             "path=\"c\"\ntable=\"t\"\n[collections.columns]\nv = { field = \"v\", type = \"%s\" }\n",
             ty);
    buf_init(&errs, 0);
    if (cfg_load_mem("golden", src, strlen(src), &c, &errs, &e) != 0)
        fail_msg("type %s: %s", ty, buf_str(&errs));
    buf_release(&errs);
    return c;
}

static void hex(const char *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", (unsigned char)p[i]);
    out[2 * n] = '\0';
}

static void check_case(int line, const char *ty, const char *value, const char *want)
{
    struct cfg *c = column_cfg(ty);
    fsval v;
    struct sink_cell cell;
    fserr e = {0};
    char got[4096];
    int rc;

    if (fsval_parse(value, strlen(value), &v, &e) != 0)
        fail_msg("golden line %d: bad value %s: %s", line, value, e.msg);
    rc = diff_convert(&c->collections[0].columns[0], "v", &v, &cell, &e);
    if (rc) {
        snprintf(got, sizeof(got), "ERR:%s", e.msg);
        assert_true(fserr_transient(rc) == false);
    } else if (cell.kind == SINK_CELL_NULL) {
        snprintf(got, sizeof(got), "NULL");
    } else if (cell.kind == SINK_CELL_NUM) {
        snprintf(got, sizeof(got), "NUM:%.*s", (int)cell.len, cell.p);
    } else if (cell.kind == SINK_CELL_STR) {
        snprintf(got, sizeof(got), "STR:%.*s", (int)cell.len, cell.p);
    } else {
        strcpy(got, "BIN:");
        hex(cell.p, cell.len, got + 4);
    }
    if (strncmp(want, "ERR:", 4) == 0 ? !(rc && strstr(got, want + 4))
                                      : strcmp(got, want) != 0)
        fail_msg("golden line %d: %s <- %s\n  want %s\n  got  %s", line, ty, value, want, got);
    if (rc)
        assert_non_null(strstr(e.msg, "fields.v: ")); /* the reason names the field */
    diff_cell_release(&cell);
    fsval_release(&v);
    cfg_free(c);
}

static void test_golden_conversions_and_refusals(void **state)
{
    FILE *f = fopen("tests/fixtures/convert.golden", "r");
    char line[2048];
    int n = 0, lineno = 0;
    (void)state;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        char *a, *b;
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        a = strstr(line, " | ");
        assert_non_null(a);
        *a = '\0';
        b = strstr(a + 3, " | ");
        assert_non_null(b);
        *b = '\0';
        check_case(lineno, line, a + 3, b + 3);
        n++;
    }
    fclose(f);
    assert_true(n >= 70);
}

static void test_missing_field_is_null_for_every_type(void **state)
{
    static const char *types[] = {"VARCHAR(5)", "TEXT", "BIGINT", "INT", "DOUBLE", "DECIMAL(5,2)",
                                  "BOOLEAN", "DATETIME(6)", "DATE", "JSON", "VARBINARY(4)"};
    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct cfg *c = column_cfg(types[i]);
        struct sink_cell cell;
        assert_int_equal(diff_convert(&c->collections[0].columns[0], "v", NULL, &cell, NULL), 0);
        assert_int_equal(cell.kind, SINK_CELL_NULL);
        cfg_free(c);
    }
}

static void extra_of(const char *doc, const char **paths, size_t np, char *out, size_t n)
{
    fsval v;
    struct fsval_path p[8];
    struct sink_cell cell;
    fserr e = {0};

    assert_int_equal(fsval_parse(doc, strlen(doc), &v, &e), 0);
    for (size_t i = 0; i < np; i++)
        assert_int_equal(fsval_path_parse(paths[i], &p[i], &e), 0);
    assert_int_equal(diff_extra(&v, p, np, &cell, &e), 0);
    snprintf(out, n, "%s", cell.kind == SINK_CELL_NULL ? "NULL" : cell.p);
    diff_cell_release(&cell);
    for (size_t i = 0; i < np; i++)
        fsval_path_release(&p[i]);
    fsval_release(&v);
}

static void test_extra_column_holds_what_no_column_maps(void **state)
{
    char out[512];
    const char *paths[] = {"name", "address.city", "`a.b`"};
    (void)state;
    extra_of("{\"mapValue\":{\"fields\":{\"name\":{\"stringValue\":\"Ana\"},"
             "\"age\":{\"integerValue\":\"41\"},"
             "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":\"Lisboa\"},"
             "\"zip\":{\"stringValue\":\"1000\"}}}},"
             "\"a.b\":{\"booleanValue\":true}}}}",
             paths, 3, out, sizeof(out));
    assert_string_equal(out, "{\"address\":{\"zip\":\"1000\"},\"age\":41}");
}

static void test_extra_column_is_null_when_everything_is_mapped(void **state)
{
    char out[512];
    const char *paths[] = {"name", "address.city"};
    (void)state;
    extra_of("{\"mapValue\":{\"fields\":{\"name\":{\"stringValue\":\"Ana\"},"
             "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":\"L\"}}}}}}}",
             paths, 2, out, sizeof(out));
    assert_string_equal(out, "NULL");
    extra_of("{\"mapValue\":{}}", paths, 0, out, sizeof(out));
    assert_string_equal(out, "NULL");
}

static void test_extra_keeps_a_mapped_parent_that_is_not_a_map(void **state)
{
    char out[512];
    const char *paths[] = {"address.city"};
    (void)state;
    extra_of("{\"mapValue\":{\"fields\":{\"address\":{\"stringValue\":\"flat\"}}}}", paths, 1, out,
             sizeof(out));
    assert_string_equal(out, "{\"address\":\"flat\"}");
}

static void test_cell_hash_tells_kinds_and_bytes_apart(void **state)
{
    struct sink_cell a = {SINK_CELL_STR, "1", 1}, b = {SINK_CELL_NUM, "1", 1},
                     c = {SINK_CELL_STR, "1", 1}, d = {SINK_CELL_STR, "1\0", 2},
                     n = {SINK_CELL_NULL, NULL, 0}, s = {SINK_CELL_STR, "", 0};
    (void)state;
    assert_true(diff_cell_hash(&a) == diff_cell_hash(&c));
    assert_true(diff_cell_hash(&a) != diff_cell_hash(&b));
    assert_true(diff_cell_hash(&a) != diff_cell_hash(&d));
    assert_true(diff_cell_hash(&n) != diff_cell_hash(&s)); /* NULL is not the empty string */
}

static void test_time_in_microseconds(void **state)
{
    struct fs_time t = {1767225600, 791064000};
    (void)state;
    assert_int_equal(diff_time_us(t), 1767225600791064LL);
    t.seconds = -1;
    t.nanos = 500000000;
    assert_int_equal(diff_time_us(t), -500000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_conversions_and_refusals),
        cmocka_unit_test(test_missing_field_is_null_for_every_type),
        cmocka_unit_test(test_extra_column_holds_what_no_column_maps),
        cmocka_unit_test(test_extra_column_is_null_when_everything_is_mapped),
        cmocka_unit_test(test_extra_keeps_a_mapped_parent_that_is_not_a_map),
        cmocka_unit_test(test_cell_hash_tells_kinds_and_bytes_apart),
        cmocka_unit_test(test_time_in_microseconds),
    };
    return cmocka_run_group_tests_name("convert", tests, NULL, NULL);
}
