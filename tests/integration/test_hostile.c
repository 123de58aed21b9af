/*
 * test_hostile.c - the hostile input catalogue (README "Hostile input"): documents and streams
 * that try to hurt, each with one defined outcome, and nothing around them lost.
 *
 * Where the Firestore emulator accepts the input, it is written through REST and the real agent
 * carries it to MariaDB end to end: SQL-looking field names, backticks, quotes, NUL bytes and
 * 1,500-byte names; ids with '%', unicode and 1,500 bytes; pattern collections keyed by path;
 * 20-level nesting; 40,000-element arrays; int64 extremes; NaN into DOUBLE, DECIMAL and JSON; a
 * 1 MiB document. What only a misbehaving server can send (nesting past Firestore's limit,
 * duplicate keys, lone surrogate escapes, invalid UTF-8, truncated and oversized WebChannel
 * chunks, ids longer than a key column) comes from the scriptable fake server, with the agent
 * pointed at it. Every case is followed by an ordinary document that must still apply.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/fake/fake_fs.h"
#include "tests/harness/agent_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WAIT_MS 30000

/* A field name that is SQL, with a backtick, quotes, spaces and a comment. Firestore spelling
 * (JSON) and the mapped column's field path (backticks quote, backslash escapes). */
#define ODD_JSON "we`ird \\\"q\\\" '; DROP TABLE h; --"
#define ODD_PATH "`we\\\\`ird \\\"q\\\" '; DROP TABLE h; --`"

#define COLLS                                                                                     \
    "[[collections]]\npath = \"h\"\ntable = \"h\"\n"                                              \
    "[collections.columns]\n"                                                                     \
    "name = { field = \"name\", type = \"VARCHAR(100)\" }\n"                                      \
    "big = { field = \"big\", type = \"BIGINT\" }\n"                                              \
    "small = { field = \"small\", type = \"INT\" }\n"                                             \
    "dbl = { field = \"dbl\", type = \"DOUBLE\" }\n"                                              \
    "dec = { field = \"dec\", type = \"DECIMAL(12,2)\" }\n"                                       \
    "doc = { field = \"doc\", type = \"JSON\" }\n"                                                \
    "odd = { field = \"" ODD_PATH "\", type = \"VARCHAR(100)\" }\n"

#define PATTERN_COLLS                                                                             \
    "[[collections]]\npath = \"users/*/orders\"\ntable = \"orders\"\n"                            \
    "[collections.columns]\nname = { field = \"name\", type = \"VARCHAR(100)\" }\n"

static struct agent_env ae;
static fake_fs *fs;

static int teardown(void **state)
{
    (void)state;
    agent_env_cleanup(&ae);
    fake_fs_free(fs);
    fs = NULL;
    return 0;
}

static void start_healthy(const char *name, const char *colls)
{
    assert_int_equal(agent_env_init(&ae, name, colls, NULL), 0);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    if (!agent_wait_state(&ae, "healthy", WAIT_MS))
        fail_msg("the agent did not become healthy; see %s/agent-%d.log", ae.dir, ae.runs);
}

/* An ordinary document written after a hostile one must still arrive. */
static void sentinel_applies(const char *id)
{
    assert_int_equal(fs_put(&ae, "h", id, "{\"name\":{\"stringValue\":\"after\"}}"), 0);
    if (!sql_wait(&ae, "after", WAIT_MS, "SELECT name FROM h WHERE id='%s'", id))
        fail_msg("the document after the hostile one did not apply; see %s/agent-%d.log", ae.dir,
                 ae.runs);
}

static void expect_dead_letter(const char *id, const char *reason_part1, const char *reason_part2)
{
    if (!sql_wait(&ae, "1", WAIT_MS,
                  "SELECT COUNT(*) FROM firesync_dead_letter WHERE doc_name LIKE '%%/h/%s' AND "
                  "reason LIKE '%%%s%%' AND reason LIKE '%%%s%%'",
                  id, reason_part1, reason_part2))
        fail_msg("no dead letter for %s naming \"%s\" and \"%s\" (got \"%s\")", id, reason_part1,
                 reason_part2,
                 sql_scalar(&ae, "SELECT IFNULL(GROUP_CONCAT(reason),'none') FROM "
                                 "firesync_dead_letter WHERE doc_name LIKE '%%/h/%s'",
                            id));
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* Writes document h/<id> through :commit (any id length; fs_put's URL has a limit). */
static int commit_named(const char *id, const char *fields)
{
    size_t n = strlen(id) + strlen(fields) + 256;
    char *w = malloc(n);
    int rc;
    snprintf(w, n,
             "{\"writes\":[{\"update\":{\"name\":\"projects/%s/databases/(default)/documents/h/%s\","
             "\"fields\":%s}}]}",
             ae.project, id, fields);
    rc = fs_commit(&ae, w);
    free(w);
    return rc;
}

/* ---- what the emulator accepts, end to end ------------------------------------------------ */

static void test_sql_backtick_quote_nul_and_1500_byte_field_names_apply_exactly(void **state)
{
    char *longname = repeat('f', 1500), fields[4096];
    (void)state;
    start_healthy("hnames", COLLS);
    snprintf(fields, sizeof(fields),
             "{\"" ODD_JSON "\":{\"stringValue\":\"odd-value\"},"
             "\"x`); DROP TABLE h; --\":{\"stringValue\":\"sql\"},"
             "\"a\\u0000b\":{\"stringValue\":\"nul\\u0000inside\"},"
             "\"%s\":{\"stringValue\":\"long\"}}",
             longname);
    assert_int_equal(fs_put(&ae, "h", "f1", fields), 0);
    /* the mapped odd name lands in its column; the others in extra, names intact */
    assert_true(sql_wait(&ae, "odd-value", WAIT_MS, "SELECT odd FROM h WHERE id='f1'"));
    assert_string_equal(sql_scalar(&ae, "SELECT JSON_LENGTH(extra) FROM h WHERE id='f1'"), "3");
    assert_string_equal(sql_scalar(&ae, "SELECT JSON_VALUE(extra, '$.\"x`); DROP TABLE h; --\"')"
                                        " FROM h WHERE id='f1'"),
                        "sql");
    assert_string_equal(sql_scalar(&ae, "SELECT JSON_VALUE(extra, '$.%s') FROM h WHERE id='f1'",
                                   longname),
                        "long");
    /* NUL stays a NUL, escaped in the JSON text, in the name and in the value */
    assert_string_equal(sql_scalar(&ae, "SELECT INSTR(extra, CONCAT('\"a', CHAR(92), 'u0000b\"'))"
                                        " > 0 AND INSTR(extra, CONCAT('nul', CHAR(92), "
                                        "'u0000inside')) > 0 FROM h WHERE id='f1'"),
                        "1");
    sentinel_applies("f1-after");
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM firesync_dead_letter"), "0");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(longname);
}

static void test_ids_with_percent_unicode_and_1500_bytes_apply_exactly(void **state)
{
    char *longid = repeat('i', 1500);
    (void)state;
    start_healthy("hids", COLLS);
    assert_int_equal(fs_put(&ae, "h", "100%25%20off", "{\"name\":{\"stringValue\":\"pct\"}}"), 0);
    assert_int_equal(
        fs_put(&ae, "h", "%C3%A9%E6%BC%A2%F0%9F%98%80", "{\"name\":{\"stringValue\":\"uni\"}}"), 0);
    assert_int_equal(commit_named(longid, "{\"name\":{\"stringValue\":\"long\"}}"), 0);
    assert_true(sql_wait(&ae, "pct", WAIT_MS, "SELECT name FROM h WHERE id='100%% off'"));
    assert_true(sql_wait(&ae, "uni", WAIT_MS, "SELECT name FROM h WHERE id=X'C3A9E6BCA2F09F9880'"));
    assert_true(sql_wait(&ae, "long", WAIT_MS, "SELECT name FROM h WHERE id=REPEAT('i',1500)"));
    /* LIKE wildcards in an id match nothing else */
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM h"), "3");
    /* 1,501 bytes: the emulator refuses it (the fake case below covers a server that does not) */
    {
        char *toolong = repeat('i', 1501);
        assert_int_not_equal(commit_named(toolong, "{}"), 0);
        free(toolong);
    }
    sentinel_applies("ids-after");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(longid);
}

static void test_pattern_collection_keys_are_exact_paths_and_nothing_outside_matches(void **state)
{
    (void)state;
    start_healthy("hpattern", PATTERN_COLLS);
    assert_int_equal(fs_put(&ae, "users/a%25b/orders", "%C3%A9",
                            "{\"name\":{\"stringValue\":\"odd\"}}"),
                     0);
    /* nested deeper, and a sibling collection: both outside the pattern */
    assert_int_equal(fs_put(&ae, "users/u1/orders/o1/users/u2/orders", "o2",
                            "{\"name\":{\"stringValue\":\"nested\"}}"),
                     0);
    assert_int_equal(fs_put(&ae, "users/u1/other", "x", "{\"name\":{\"stringValue\":\"no\"}}"), 0);
    assert_int_equal(fs_put(&ae, "users/u1/orders", "o1", "{\"name\":{\"stringValue\":\"plain\"}}"),
                     0);
    assert_true(sql_wait(&ae, "plain", WAIT_MS,
                         "SELECT name FROM orders WHERE path='users/u1/orders/o1'"));
    assert_true(sql_wait(&ae, "odd", WAIT_MS,
                         "SELECT name FROM orders WHERE path=CONCAT('users/a%%b/orders/', "
                         "X'C3A9')"));
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM orders"), "2");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

/* {"mapValue":{"fields":{"a": ... {"stringValue":"deep"} ...}}}, depth maps deep. */
static char *nested(int depth)
{
    size_t cap = (size_t)depth * 40 + 64, o = 0;
    char *s = malloc(cap);
    for (int i = 0; i < depth; i++)
        o += (size_t)snprintf(s + o, cap - o, "{\"mapValue\":{\"fields\":{\"a\":");
    o += (size_t)snprintf(s + o, cap - o, "{\"stringValue\":\"deep\"}");
    for (int i = 0; i < depth; i++)
        o += (size_t)snprintf(s + o, cap - o, "}}}");
    return s;
}

static void test_twenty_levels_of_nesting_apply_and_twenty_one_are_refused_upstream(void **state)
{
    char *v20 = nested(20), *v21 = nested(21), fields[4096], path[256] = "$";
    (void)state;
    start_healthy("hnest", COLLS);
    snprintf(fields, sizeof(fields), "{\"doc\":%s}", v20);
    assert_int_equal(fs_put(&ae, "h", "n20", fields), 0);
    for (int i = 0; i < 19; i++)
        strcat(path, ".a");
    assert_true(sql_wait(&ae, "{\"a\": \"deep\"}", WAIT_MS,
                         "SELECT JSON_EXTRACT(doc, '%s') FROM h WHERE id='n20'", path));
    snprintf(fields, sizeof(fields), "{\"doc\":%s}", v21);
    assert_int_not_equal(fs_put(&ae, "h", "n21", fields), 0);
    sentinel_applies("nest-after");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(v20);
    free(v21);
}

static void test_forty_thousand_element_array_applies_exactly(void **state)
{
    size_t cap = 40000 * 32 + 64, o = 0;
    char *f = malloc(cap);
    (void)state;
    start_healthy("harray", COLLS);
    o += (size_t)snprintf(f + o, cap - o, "{\"doc\":{\"arrayValue\":{\"values\":[");
    for (int i = 0; i < 40000; i++)
        o += (size_t)snprintf(f + o, cap - o, "%s{\"integerValue\":\"%d\"}", i ? "," : "", i);
    snprintf(f + o, cap - o, "]}}}");
    assert_int_equal(fs_put(&ae, "h", "arr", f), 0);
    assert_true(sql_wait(&ae, "40000", WAIT_MS, "SELECT JSON_LENGTH(doc) FROM h WHERE id='arr'"));
    assert_string_equal(sql_scalar(&ae, "SELECT JSON_EXTRACT(doc, '$[39999]') + "
                                        "JSON_EXTRACT(doc, '$[0]') FROM h WHERE id='arr'"),
                        "39999");
    sentinel_applies("arr-after");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(f);
}

static void test_int64_extremes_fit_bigint_exactly_and_dead_letter_from_int(void **state)
{
    (void)state;
    start_healthy("hint", COLLS);
    assert_int_equal(fs_put(&ae, "h", "imin", "{\"big\":{\"integerValue\":\"-9223372036854775808\"},"
                                              "\"doc\":{\"integerValue\":\"-9223372036854775808\"}}"),
                     0);
    assert_int_equal(fs_put(&ae, "h", "imax", "{\"big\":{\"integerValue\":\"9223372036854775807\"}}"),
                     0);
    assert_int_equal(fs_put(&ae, "h", "ismall",
                            "{\"small\":{\"integerValue\":\"9223372036854775807\"}}"),
                     0);
    assert_true(sql_wait(&ae, "-9223372036854775808", WAIT_MS,
                         "SELECT big FROM h WHERE id='imin'"));
    assert_string_equal(sql_scalar(&ae, "SELECT doc FROM h WHERE id='imin'"),
                        "-9223372036854775808");
    assert_true(sql_wait(&ae, "9223372036854775807", WAIT_MS, "SELECT big FROM h WHERE id='imax'"));
    expect_dead_letter("ismall", "small", "out of range");
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM h WHERE id='ismall'"), "0");
    sentinel_applies("int-after");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_nan_and_infinity_dead_letter_from_double_and_decimal_but_fit_json(void **state)
{
    (void)state;
    start_healthy("hnan", COLLS);
    assert_int_equal(fs_put(&ae, "h", "nan-dbl", "{\"dbl\":{\"doubleValue\":\"NaN\"}}"), 0);
    assert_int_equal(fs_put(&ae, "h", "nan-dec", "{\"dec\":{\"doubleValue\":\"NaN\"}}"), 0);
    assert_int_equal(fs_put(&ae, "h", "inf-dbl", "{\"dbl\":{\"doubleValue\":\"-Infinity\"}}"), 0);
    assert_int_equal(fs_put(&ae, "h", "nan-json", "{\"doc\":{\"doubleValue\":\"NaN\"}}"), 0);
    expect_dead_letter("nan-dbl", "dbl", "NaN");
    expect_dead_letter("nan-dec", "dec", "NaN");
    expect_dead_letter("inf-dbl", "dbl", "infinity");
    assert_true(sql_wait(&ae, "NaN", WAIT_MS,
                         "SELECT JSON_VALUE(doc, '$.\"$double\"') FROM h WHERE id='nan-json'"));
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM h WHERE id LIKE 'n%%-d%%' OR "
                                        "id='inf-dbl'"),
                        "0");
    sentinel_applies("nan-after");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_one_mebibyte_document_applies_exactly_or_dead_letters_by_column(void **state)
{
    size_t n = 1048000;
    char *s = repeat('m', n), *fields = malloc(n + 128);
    (void)state;
    start_healthy("hbig", COLLS);
    /* unmapped: into the extra JSON column, every byte */
    snprintf(fields, n + 128, "{\"s\":{\"stringValue\":\"%s\"}}", s);
    assert_int_equal(fs_put(&ae, "h", "big1", fields), 0);
    assert_true(sql_wait(&ae, "1048000", WAIT_MS,
                         "SELECT LENGTH(JSON_VALUE(extra, '$.s')) FROM h WHERE id='big1'"));
    /* mapped to VARCHAR(100): refused, naming the column's field */
    snprintf(fields, n + 128, "{\"name\":{\"stringValue\":\"%s\"}}", s);
    assert_int_equal(fs_put(&ae, "h", "big2", fields), 0);
    expect_dead_letter("big2", "name", "VARCHAR(100)");
    sentinel_applies("big-after");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(s);
    free(fields);
}

/* ---- what only a misbehaving server sends: the agent against the fake --------------------- */

static char root[256];

/* The agent of `name`, pointed at a fresh fake, after its initial load (one document "seed")
 * reached a consistent point with resume token "VDI=". */
static void start_on_fake(const char *name)
{
    char from[64], to[64], cfg[16384], *p;
    FILE *f;
    size_t n;

    fs = fake_fs_start();
    assert_non_null(fs);
    fake_fs_set_noop_on_empty_get(fs, false);
    assert_int_equal(agent_env_init(&ae, name, COLLS, NULL), 0);
    snprintf(root, sizeof(root), "projects/%s/databases/(default)/documents", ae.project);
    f = fopen(ae.config, "r");
    assert_non_null(f);
    n = fread(cfg, 1, sizeof(cfg) - 1, f);
    cfg[n] = '\0';
    fclose(f);
    snprintf(from, sizeof(from), "127.0.0.1:%d", ae.svc.emulator_port);
    snprintf(to, sizeof(to), "127.0.0.1:%d", fake_fs_port(fs));
    p = strstr(cfg, from);
    assert_non_null(p);
    f = fopen(ae.config, "w");
    fprintf(f, "%.*s%s%s", (int)(p - cfg), cfg, to, p + strlen(from));
    fclose(f);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(fake_fs_wait(fs, FAKE_FS_SESSIONS, 1, WAIT_MS));
    assert_true(fake_fs_wait_map(fs, "\"targetId\":2", WAIT_MS));
    fake_fs_push(fs, "[{\"targetChange\":{\"targetChangeType\":\"ADD\",\"targetIds\":[2]}}]");
    fake_fs_pushf(fs,
                  "[{\"documentChange\":{\"document\":{\"name\":\"%s/h/seed\",\"fields\":{\"name\":"
                  "{\"stringValue\":\"seed\"}},\"createTime\":\"2026-01-01T00:00:00Z\","
                  "\"updateTime\":\"2026-01-01T00:00:01Z\"},\"targetIds\":[2]}}]",
                  root);
    fake_fs_push(fs, "[{\"targetChange\":{\"targetChangeType\":\"CURRENT\",\"targetIds\":[2],"
                     "\"resumeToken\":\"VDE=\"}}]");
    fake_fs_push(fs, "[{\"targetChange\":{\"resumeToken\":\"VDI=\","
                     "\"readTime\":\"2026-01-01T00:00:02Z\"}}]");
    assert_true(sql_wait(&ae, "seed", WAIT_MS, "SELECT name FROM h WHERE id='seed'"));
    assert_true(sql_wait(&ae, "VDI=", WAIT_MS,
                         "SELECT resume_token FROM firesync_checkpoint WHERE target='h'"));
}

/* A document of the fake with a raw `fields` JSON text, at update second `sec`. */
static void push_doc_fields(const char *id, const char *fields, int sec)
{
    fake_fs_pushf(fs,
                  "[{\"documentChange\":{\"document\":{\"name\":\"%s/h/%s\",\"fields\":%s,"
                  "\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":\"2026-01-01T00:01:%02dZ\"},"
                  "\"targetIds\":[2]}}]",
                  root, id, fields, sec);
}

static void push_global(const char *token, int sec)
{
    fake_fs_pushf(fs, "[{\"targetChange\":{\"resumeToken\":\"%s\","
                      "\"readTime\":\"2026-01-01T00:02:%02dZ\"}}]",
                  token, sec);
}

/* The fake's version of sentinel_applies: the next document of the same session. */
static void fake_sentinel_applies(const char *id, int sec)
{
    push_doc_fields(id, "{\"name\":{\"stringValue\":\"after\"}}", sec);
    push_global("VDM=", sec);
    if (!sql_wait(&ae, "after", WAIT_MS, "SELECT name FROM h WHERE id='%s'", id))
        fail_msg("the document after the hostile one did not apply; see %s/agent-%d.log", ae.dir,
                 ae.runs);
}

/* After a payload the agent cannot read, it must open a new session that resumes from the last
 * checkpointed token; the test then plays the server resending from there. */
static void expect_new_session_resuming(long sessions_before)
{
    assert_true(fake_fs_wait(fs, FAKE_FS_SESSIONS, sessions_before + 1, 3 * WAIT_MS));
    assert_true(fake_fs_wait_map(fs, "\"resumeToken\":\"VDI=\"", WAIT_MS));
    fake_fs_push(fs, "[{\"targetChange\":{\"targetChangeType\":\"ADD\",\"targetIds\":[2]}}]");
    fake_fs_push(fs, "[{\"targetChange\":{\"targetChangeType\":\"CURRENT\",\"targetIds\":[2],"
                     "\"resumeToken\":\"VDU=\"}}]");
}

static void test_nesting_past_firestores_limit_applies_to_depth_32_then_dead_letters(void **state)
{
    char *v25 = nested(25), *v33 = nested(33), *f25 = malloc(4096), *f33 = malloc(4096);
    (void)state;
    start_on_fake("hfnest");
    snprintf(f25, 4096, "{\"doc\":%s}", v25);
    snprintf(f33, 4096, "{\"doc\":%s}", v33);
    push_doc_fields("n25", f25, 1);
    push_doc_fields("n33", f33, 2);
    fake_sentinel_applies("nest-after", 3);
    assert_string_equal(sql_scalar(&ae, "SELECT JSON_DEPTH(doc) FROM h WHERE id='n25'"), "26");
    expect_dead_letter("n33", "fields.doc.a.a", "deep");
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_SESSIONS), 1); /* the stream went on */
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(v25);
    free(v33);
    free(f25);
    free(f33);
}

static void test_json_nesting_past_the_tokenizer_limit_resets_and_resumes(void **state)
{
    char *v60 = nested(60), *f60 = malloc(8192);
    (void)state;
    start_on_fake("hfnest60");
    snprintf(f60, 8192, "{\"doc\":%s}", v60);
    push_doc_fields("n60", f60, 1);
    expect_new_session_resuming(1);
    fake_sentinel_applies("nest60-after", 2);
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM h WHERE id='n60'"), "0");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(v60);
    free(f60);
}

static void test_duplicate_keys_dead_letter_naming_the_field(void **state)
{
    (void)state;
    start_on_fake("hfdup");
    /* the same field twice */
    push_doc_fields("dup1", "{\"name\":{\"stringValue\":\"a\"},\"name\":{\"stringValue\":\"b\"}}", 1);
    /* a value with two kinds */
    push_doc_fields("dup2", "{\"big\":{\"integerValue\":\"1\",\"integerValue\":\"2\"}}", 2);
    fake_sentinel_applies("dup-after", 3);
    expect_dead_letter("dup1", "name", "duplicate");
    expect_dead_letter("dup2", "big", "");
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM h WHERE id LIKE 'dup_'"), "0");
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_SESSIONS), 1);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_lone_surrogate_escape_resets_the_stream_and_resumes_from_the_checkpoint(
    void **state)
{
    (void)state;
    start_on_fake("hfsurr");
    push_doc_fields("surr", "{\"name\":{\"stringValue\":\"x\\ud800y\"}}", 1);
    expect_new_session_resuming(1);
    fake_sentinel_applies("surr-after", 2);
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM h WHERE id='surr'"), "0");
    assert_string_equal(sql_scalar(&ae, "SELECT name FROM h WHERE id='seed'"), "seed");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_invalid_utf8_bytes_in_a_chunk_are_dropped_and_the_back_channel_retried(void **state)
{
    char chunk[256];
    int n;
    (void)state;
    start_on_fake("hfutf8");
    n = snprintf(chunk, sizeof(chunk), "%d\n[[%ld,[\"\xff\xfe\"]]]", 13,
                 fake_fs_stat(fs, FAKE_FS_LAST_ARRAY) + 1);
    fake_fs_push_raw(fs, chunk, (size_t)n, 0);
    fake_fs_end_get(fs);
    fake_sentinel_applies("utf8-after", 2);
    /* the bad response was dropped and the back channel asked again, in the same session */
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_SESSIONS), 1);
    assert_true(fake_fs_stat(fs, FAKE_FS_GETS) >= 2);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_truncated_chunk_is_dropped_and_the_stream_resumes(void **state)
{
    static const char part[] = "500\n[[99,[{\"documentChange\":{\"document\":{\"name\":\"";
    (void)state;
    start_on_fake("hftrunc");
    fake_fs_push_raw(fs, part, sizeof(part) - 1, 0);
    fake_fs_drop_get(fs); /* the connection dies mid-chunk */
    fake_sentinel_applies("trunc-after", 1);
    assert_string_equal(sql_scalar(&ae, "SELECT name FROM h WHERE id='seed'"), "seed");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_oversized_chunk_prefix_is_refused_unbuffered_and_the_back_channel_retried(void **state)
{
    static const char huge[] = "999999999\n[[";
    (void)state;
    start_on_fake("hfhuge");
    fake_fs_push_raw(fs, huge, sizeof(huge) - 1, 0);
    fake_fs_end_get(fs);
    fake_sentinel_applies("huge-after", 1);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_SESSIONS), 1);
    assert_true(fake_fs_stat(fs, FAKE_FS_GETS) >= 2);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_id_longer_than_the_key_column_dead_letters_and_the_rest_applies(void **state)
{
    char *longid = repeat('k', 1501), *fields = malloc(1700);
    (void)state;
    start_on_fake("hflongid");
    snprintf(fields, 1700, "{\"name\":{\"stringValue\":\"too long\"}}");
    push_doc_fields(longid, fields, 1);
    push_doc_fields("__reserved__", "{\"name\":{\"stringValue\":\"reserved\"}}", 2);
    fake_sentinel_applies("longid-after", 3);
    assert_true(sql_wait(&ae, "1", WAIT_MS,
                         "SELECT COUNT(*) FROM firesync_dead_letter WHERE reason LIKE '%%1501%%'"));
    assert_string_equal(sql_scalar(&ae, "SELECT name FROM h WHERE id='__reserved__'"), "reserved");
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM h WHERE LENGTH(id) > 1500"), "0");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    free(longid);
    free(fields);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_sql_backtick_quote_nul_and_1500_byte_field_names_apply_exactly),
        T(test_ids_with_percent_unicode_and_1500_bytes_apply_exactly),
        T(test_pattern_collection_keys_are_exact_paths_and_nothing_outside_matches),
        T(test_twenty_levels_of_nesting_apply_and_twenty_one_are_refused_upstream),
        T(test_forty_thousand_element_array_applies_exactly),
        T(test_int64_extremes_fit_bigint_exactly_and_dead_letter_from_int),
        T(test_nan_and_infinity_dead_letter_from_double_and_decimal_but_fit_json),
        T(test_one_mebibyte_document_applies_exactly_or_dead_letters_by_column),
        T(test_nesting_past_firestores_limit_applies_to_depth_32_then_dead_letters),
        T(test_json_nesting_past_the_tokenizer_limit_resets_and_resumes),
        T(test_duplicate_keys_dead_letter_naming_the_field),
        T(test_lone_surrogate_escape_resets_the_stream_and_resumes_from_the_checkpoint),
        T(test_invalid_utf8_bytes_in_a_chunk_are_dropped_and_the_back_channel_retried),
        T(test_truncated_chunk_is_dropped_and_the_stream_resumes),
        T(test_oversized_chunk_prefix_is_refused_unbuffered_and_the_back_channel_retried),
        T(test_id_longer_than_the_key_column_dead_letters_and_the_rest_applies),
    };
    return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
