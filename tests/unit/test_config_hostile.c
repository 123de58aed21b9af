/*
 * test_config_hostile.c - the bad-configuration catalogue: wrong types in every section, huge
 * and negative values, NUL bytes (raw and escaped), invalid UTF-8, nesting thousands deep,
 * duplicate tables and keys, identifiers with backticks, quotes and spaces, a file over 4 MiB,
 * an empty file. Each is refused (never loaded, never a crash) with errors that all have the
 * form "file:line:col: message" and point at the offending line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MINIMAL "[firestore]\nproject_id = \"p\"\n[mysql]\ndatabase = \"d\"\n"
#define COLL "[[collections]]\npath = \"c\"\ntable = \"c\"\n"

/* True when every line of errs reads "t.toml:<line>:<col>: <message>" with line >= 1. */
static bool all_positioned(const char *errs)
{
    const char *p = errs;

    if (!*p)
        return false;
    while (*p) {
        const char *nl = strchr(p, '\n');
        long line, col;
        char *end;
        if (strncmp(p, "t.toml:", 7) != 0)
            return false;
        line = strtol(p + 7, &end, 10);
        if (line < 1 || *end != ':')
            return false;
        col = strtol(end + 1, &end, 10);
        if (col < 1 || strncmp(end, ": ", 2) != 0 || end[2] == '\n' || end[2] == '\0')
            return false;
        if (!nl)
            break;
        p = nl + 1;
    }
    return true;
}

/* Loads n bytes expecting refusal; returns the error text (caller frees). */
static char *refused_n(const char *src, size_t n)
{
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};
    int rc;
    char *out;

    buf_init(&errs, 0);
    rc = cfg_load_mem("t.toml", src, n, &c, &errs, &e);
    if (rc == 0)
        fail_msg("loaded a hostile configuration:\n%.*s", (int)(n > 400 ? 400 : n), src);
    assert_null(c);
    out = strdup(buf_str(&errs));
    buf_release(&errs);
    if (!all_positioned(out))
        fail_msg("errors without file:line:col:\n%s", out);
    return out;
}

/* Refused, and some error line is at `where` ("L:C", "L:" for the line only, "" anywhere) and
 * contains `what`. */
static void expect_error(const char *src, const char *where, const char *what)
{
    char *errs = refused_n(src, strlen(src)), prefix[64];
    bool found = false;
    size_t wl = strlen(where);

    if (wl && where[wl - 1] != ':')
        snprintf(prefix, sizeof(prefix), "t.toml:%s: ", where);
    else
        snprintf(prefix, sizeof(prefix), "t.toml:%s", where);
    for (const char *l = errs; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        char *line = strndup(l, len);
        if (strncmp(line, prefix, strlen(prefix)) == 0 && strstr(line, what))
            found = true;
        free(line);
        l = nl ? nl + 1 : NULL;
    }
    if (!found) {
        char copy[8192];
        snprintf(copy, sizeof(copy), "%s", errs);
        free(errs);
        fail_msg("wanted \"%s...%s\" in:\n%s", prefix, what, copy);
    }
    free(errs);
}

static void test_wrong_types_in_every_section_are_each_reported(void **state)
{
    static const char src[] = "[firestore]\n"
                              "project_id = 1\n"                  /* 2 */
                              "request_timeout = 30\n"            /* 3 */
                              "[mysql]\n"
                              "database = [\"d\"]\n"              /* 5 */
                              "port = \"3306\"\n"                 /* 6 */
                              "create_tables = \"yes\"\n"         /* 7 */
                              "[mysql.tls]\nmode = true\n"        /* 9 */
                              "[agent]\n"
                              "batch_max_rows = \"500\"\n"        /* 11 */
                              "log_level = 3\n"                   /* 12 */
                              "[resync]\nenabled = 1\n"           /* 14 */
                              "pages_per_second = \"fast\"\n"     /* 15 */
                              "[[collections]]\npath = 7\ntable = \"c\"\nhistory = \"no\"\n"
                              "[collections.columns]\nx = \"VARCHAR(10)\"\n"; /* 21 */
    char *errs;
    int lines = 0;
    (void)state;
    errs = refused_n(src, sizeof(src) - 1);
    for (const char *p = errs; *p; p++)
        lines += *p == '\n';
    /* one run reports them all */
    assert_true(lines >= 12);
    free(errs);
    expect_error(src, "2:14", "project_id");
    expect_error(src, "6:8", "port");
    expect_error(src, "11:18", "batch_max_rows");
    expect_error(src, "14:11", "enabled");
    expect_error(src, "17:8", "path");
}

static void test_huge_and_negative_values_are_refused(void **state)
{
    (void)state;
    expect_error(MINIMAL "port = 99999999999999999999\n" COLL, "5:8", "");
    expect_error(MINIMAL "port = 70000\n" COLL, "5:8", "port");
    expect_error(MINIMAL "port = -1\n" COLL, "5:8", "port");
    expect_error(MINIMAL "[agent]\nbatch_max_rows = 9223372036854775807\n" COLL, "6:18",
                 "batch_max_rows");
    expect_error(MINIMAL "[agent]\nqueue_max_events = -5\n" COLL, "6:20", "queue_max_events");
    expect_error(MINIMAL "[agent]\nsilence_window = \"99999999999999999999h\"\n" COLL, "6:18",
                 "silence_window");
    expect_error(MINIMAL "[resync]\npages_per_second = nan\n" COLL, "6:20", "pages_per_second");
    expect_error(MINIMAL "[resync]\npages_per_second = inf\n" COLL, "6:20", "pages_per_second");
    expect_error(MINIMAL "[resync]\npage_size = 0\n" COLL, "6:13", "page_size");
    expect_error(MINIMAL COLL "[collections.columns]\n"
                              "x = { field = \"x\", type = \"VARCHAR(99999999999)\" }\n",
                 "9:", "VARCHAR");
    expect_error(MINIMAL COLL "[collections.columns]\n"
                              "x = { field = \"x\", type = \"DECIMAL(99,98765)\" }\n",
                 "9:", "DECIMAL");
}

static void test_nul_bytes_raw_and_escaped_are_refused(void **state)
{
    static const char raw[] = "[firestore]\nproject_id = \"p\0q\"\n[mysql]\ndatabase = \"d\"\n" COLL;
    char *errs;
    (void)state;
    errs = refused_n(raw, sizeof(raw) - 1);
    assert_non_null(strstr(errs, "t.toml:2:"));
    free(errs);
    /* a NUL escape would cut the C string short: "p" is not what the file says */
    expect_error("[firestore]\nproject_id = \"p\\u0000q\"\n[mysql]\ndatabase = \"d\"\n" COLL,
                 "2:", "");
    expect_error(MINIMAL COLL "[collections.columns]\n"
                              "x = { field = \"a\\u0000b\", type = \"TEXT\" }\n",
                 "9:", "");
}

static void test_invalid_utf8_anywhere_is_refused(void **state)
{
    (void)state;
    expect_error("[firestore]\nproject_id = \"p\xff\"\n[mysql]\ndatabase = \"d\"\n" COLL, "2:",
                 "UTF-8");
    expect_error("# comment \xc3\x28\n" MINIMAL COLL, "1:", "UTF-8");
    expect_error(MINIMAL "\"k\xed\xa0\x80\" = 1\n" COLL, "5:", ""); /* a UTF-8 surrogate */
    expect_error("[firestore]\nproject_id = 'p\xc0\xaf'\n[mysql]\ndatabase = \"d\"\n" COLL, "2:",
                 "UTF-8");
}

static void test_nesting_thousands_deep_is_refused_without_a_crash(void **state)
{
    size_t depth = 100000, n = 0;
    char *src = malloc(depth * 8 + 256);
    char *errs;
    (void)state;

    n += (size_t)sprintf(src, MINIMAL "x = ");
    for (size_t i = 0; i < depth; i++)
        src[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        src[n++] = ']';
    src[n++] = '\n';
    errs = refused_n(src, n);
    assert_non_null(strstr(errs, "t.toml:5:"));
    free(errs);

    n = (size_t)sprintf(src, MINIMAL "x = ");
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(src + n, "{a=");
    n += (size_t)sprintf(src + n, "1");
    for (size_t i = 0; i < depth; i++)
        src[n++] = '}';
    src[n++] = '\n';
    errs = refused_n(src, n);
    assert_non_null(strstr(errs, "t.toml:5:"));
    free(errs);

    /* dotted keys and table headers thousands of segments long */
    n = (size_t)sprintf(src, MINIMAL "[agent.");
    for (size_t i = 0; i < 20000; i++)
        n += (size_t)sprintf(src + n, "a.");
    n += (size_t)sprintf(src + n, "b]\n");
    errs = refused_n(src, n);
    assert_non_null(strstr(errs, "t.toml:5:"));
    free(errs);
    free(src);
}

static void test_duplicate_tables_keys_and_collections_are_refused(void **state)
{
    (void)state;
    expect_error(MINIMAL "[mysql]\nport = 1\n" COLL, "5:", "mysql");
    expect_error("[firestore]\nproject_id = \"p\"\nproject_id = \"q\"\n[mysql]\ndatabase = \"d\"\n"
                 COLL,
                 "3:", "project_id");
    expect_error(MINIMAL COLL COLL, "8:", "");
    expect_error(MINIMAL COLL "[collections.columns]\nx = { field = \"a\", type = \"TEXT\" }\n"
                              "x = { field = \"b\", type = \"TEXT\" }\n",
                 "10:", "x");
    expect_error(MINIMAL COLL "[collections.columns]\nX = { field = \"a\", type = \"TEXT\" }\n"
                              "x = { field = \"b\", type = \"TEXT\" }\n",
                 "", "x");
}

static void test_identifiers_with_backticks_quotes_and_spaces_are_refused(void **state)
{
    static const char *tables[] = {"a`b", "a'b", "a\\\"b", "a b", "a;DROP TABLE x", "", "a.b",
                                   "`a`", "a\\\\b"};
    char src[1024];
    (void)state;
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        snprintf(src, sizeof(src), MINIMAL "[[collections]]\npath = \"c\"\ntable = \"%s\"\n",
                 tables[i]);
        expect_error(src, "", "");
        snprintf(src, sizeof(src),
                 MINIMAL COLL "[collections.columns]\n\"%s\" = { field = \"a\", type = \"TEXT\" }\n",
                 tables[i]);
        expect_error(src, "", "");
        snprintf(src, sizeof(src),
                 "[firestore]\nproject_id = \"p\"\n[mysql]\ndatabase = \"d\"\n"
                 "dead_letter_table = \"%s\"\n" COLL,
                 tables[i]);
        expect_error(src, "", "");
        snprintf(src, sizeof(src), MINIMAL COLL "extra_column = \"%s\"\n", tables[i]);
        if (tables[i][0]) /* "" is allowed: it drops the extra column */
            expect_error(src, "", "");
    }
    /* collection paths that are not collection paths */
    expect_error(MINIMAL "[[collections]]\npath = \"a/b\"\ntable = \"t\"\n", "", "");
    expect_error(MINIMAL "[[collections]]\npath = \"../c\"\ntable = \"t\"\n", "", "");
    expect_error(MINIMAL "[[collections]]\npath = \"a//b/c\"\ntable = \"t\"\n", "", "");
}

static void test_file_over_four_mebibytes_is_refused_by_name(void **state)
{
    char path[] = "/tmp/fs-cfgbig.XXXXXX";
    int fd = mkstemp(path);
    struct cfg *c = NULL;
    buf errs;
    fserr e = {0};
    char line[128];
    (void)state;

    assert_true(fd >= 0);
    snprintf(line, sizeof(line), "%s", "# padding padding padding padding padding padding\n");
    for (size_t done = 0; done < (4u << 20) + 4096; done += strlen(line))
        assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    assert_int_equal(write(fd, MINIMAL COLL, strlen(MINIMAL COLL)), (ssize_t)strlen(MINIMAL COLL));
    close(fd);
    buf_init(&errs, 0);
    assert_int_not_equal(cfg_load_file(path, &c, &errs, &e), 0);
    assert_null(c);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "larger than"));
    buf_release(&errs);
    unlink(path);
}

static void test_empty_and_blank_files_name_what_is_missing(void **state)
{
    (void)state;
    expect_error("", "1:1", "project_id");
    expect_error("", "1:1", "database");
    expect_error("\n\n   \n# only a comment\n", "1:1", "project_id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrong_types_in_every_section_are_each_reported),
        cmocka_unit_test(test_huge_and_negative_values_are_refused),
        cmocka_unit_test(test_nul_bytes_raw_and_escaped_are_refused),
        cmocka_unit_test(test_invalid_utf8_anywhere_is_refused),
        cmocka_unit_test(test_nesting_thousands_deep_is_refused_without_a_crash),
        cmocka_unit_test(test_duplicate_tables_keys_and_collections_are_refused),
        cmocka_unit_test(test_identifiers_with_backticks_quotes_and_spaces_are_refused),
        cmocka_unit_test(test_file_over_four_mebibytes_is_refused_by_name),
        cmocka_unit_test(test_empty_and_blank_files_name_what_is_missing),
    };
    unsetenv("FIRESTORE_EMULATOR_HOST");
    unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
    return cmocka_run_group_tests_name("config_hostile", tests, NULL, NULL);
}
