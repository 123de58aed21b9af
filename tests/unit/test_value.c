/*
 * test_value.c - Firestore proto3-JSON values and documents: every kind as the emulator prints it
 * (docs/webchannel.md section 6), the limits (int64, doubles, timestamps, coordinates, nesting),
 * every refusal with its field path, field paths, equality, the stable hash and the JSON for
 * people. Golden fixtures live in tests/fixtures/values/ (run from the repository root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "firestore/json.h"
#include "firestore/value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/values/"

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    buf b;
    char chunk[4096];
    size_t n;

    if (!f)
        fail_msg("cannot open %s (run the tests from the repository root)", path);
    buf_init(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    fclose(f);
    *len = b.len;
    return buf_take(&b);
}

/* Strips one trailing newline, as editors add it to fixture files. */
static void chomp(char *s, size_t *len)
{
    while (*len && (s[*len - 1] == '\n' || s[*len - 1] == '\r'))
        s[--*len] = '\0';
}

static void decode_ok(const char *json, fsval *v)
{
    fserr e = {0};
    int rc = fsval_parse(json, strlen(json), v, &e);
    if (rc)
        fail_msg("%s: %s", json, e.msg);
}

/* Decodes json expecting failure with code and exactly the message want. */
static void expect_error(const char *json, int code, const char *want)
{
    fserr e = {0};
    fsval v;
    int rc = fsval_parse(json, strlen(json), &v, &e);

    if (rc != code || strcmp(e.msg, want) != 0)
        fail_msg("%s:\n  got  %s \"%s\"\n  want %s \"%s\"", json, fserr_name(rc), e.msg,
                 fserr_name(code), want);
    assert_int_equal(v.type, FSVAL_NULL);
}

static void expect_doc_error(const char *json, int code, const char *want)
{
    fserr e = {0};
    struct fsdoc doc;
    int rc = fsdoc_parse(json, strlen(json), &doc, &e);

    if (rc != code || strcmp(e.msg, want) != 0)
        fail_msg("%s:\n  got  %s \"%s\"\n  want %s \"%s\"", json, fserr_name(rc), e.msg,
                 fserr_name(code), want);
    assert_null(doc.name);
    assert_int_equal(doc.fields.type, FSVAL_MAP);
    assert_int_equal(doc.fields.u.map.n, 0);
}

static void expect_json(const fsval *v, const char *want)
{
    buf b;
    buf_init(&b, 0);
    assert_int_equal(fsval_to_json(v, &b), 0);
    if (strcmp(buf_str(&b), want) != 0)
        fail_msg("to_json:\n  got  %s\n  want %s", buf_str(&b), want);
    buf_release(&b);
}

/* Decodes json and checks its to_json text. */
static void prints_as(const char *json, const char *want)
{
    fsval v;
    decode_ok(json, &v);
    expect_json(&v, want);
    fsval_release(&v);
}

static void test_null_and_boolean_values_decode(void **state)
{
    fsval v;
    (void)state;

    decode_ok("{\"nullValue\":null}", &v);
    assert_int_equal(v.type, FSVAL_NULL);
    decode_ok("{\"nullValue\":\"NULL_VALUE\"}", &v);
    assert_int_equal(v.type, FSVAL_NULL);
    decode_ok("{\"booleanValue\":true}", &v);
    assert_int_equal(v.type, FSVAL_BOOL);
    assert_true(v.u.b);
    decode_ok("{\"booleanValue\":false}", &v);
    assert_false(v.u.b);
    expect_error("{\"booleanValue\":\"true\"}", FS_ETYPE,
                 "value: booleanValue must be true or false, found \"true\"");
    expect_error("{\"booleanValue\":1}", FS_ETYPE,
                 "value: booleanValue must be true or false, found 1");
    expect_error("{\"nullValue\":0}", FS_ETYPE, "value: nullValue must be null, found 0");
    expect_error("{\"nullValue\":{}}", FS_ETYPE, "value: nullValue must be null, found object");
}

static void test_integer_value_keeps_full_int64_range(void **state)
{
    fsval v;
    (void)state;

    decode_ok("{\"integerValue\":\"9223372036854775807\"}", &v);
    assert_int_equal(v.type, FSVAL_INT);
    assert_true(v.u.i == INT64_MAX);
    expect_json(&v, "9223372036854775807");
    decode_ok("{\"integerValue\":\"-9223372036854775808\"}", &v);
    assert_true(v.u.i == INT64_MIN);
    expect_json(&v, "-9223372036854775808");
    decode_ok("{\"integerValue\":\"9007199254740993\"}", &v); /* not a double */
    assert_true(v.u.i == 9007199254740993LL);
    decode_ok("{\"integerValue\":\"-42\"}", &v);
    assert_true(v.u.i == -42);
    decode_ok("{\"integerValue\":7}", &v); /* a JSON number, as a client may send */
    assert_true(v.u.i == 7);
    decode_ok("{\"integerValue\":7.0}", &v);
    assert_true(v.u.i == 7);
}

static void test_integer_value_overflow_and_garbage_are_refused(void **state)
{
    (void)state;
    expect_error("{\"integerValue\":\"9223372036854775808\"}", FS_ERANGE,
                 "value: integerValue \"9223372036854775808\" is out of the int64 range");
    expect_error("{\"integerValue\":\"-9223372036854775809\"}", FS_ERANGE,
                 "value: integerValue \"-9223372036854775809\" is out of the int64 range");
    expect_error("{\"integerValue\":1e19}", FS_ERANGE,
                 "value: integerValue 1e19 is out of the int64 range");
    expect_error("{\"integerValue\":\"1.5\"}", FS_ETYPE,
                 "value: bad integerValue \"1.5\" (expected an integer)");
    expect_error("{\"integerValue\":\"forty\"}", FS_ETYPE,
                 "value: bad integerValue \"forty\" (expected an integer)");
    expect_error("{\"integerValue\":\"\"}", FS_ETYPE,
                 "value: bad integerValue \"\" (expected an integer)");
    expect_error("{\"integerValue\":null}", FS_ETYPE,
                 "value: bad integerValue null (expected an integer)");
}

static void test_double_value_keeps_nan_infinities_and_negative_zero(void **state)
{
    fsval v;
    (void)state;

    decode_ok("{\"doubleValue\":\"NaN\"}", &v);
    assert_int_equal(v.type, FSVAL_DOUBLE);
    assert_true(isnan(v.u.d));
    expect_json(&v, "{\"$double\":\"NaN\"}");
    decode_ok("{\"doubleValue\":\"Infinity\"}", &v);
    assert_true(isinf(v.u.d) && v.u.d > 0);
    expect_json(&v, "{\"$double\":\"Infinity\"}");
    decode_ok("{\"doubleValue\":\"-Infinity\"}", &v);
    assert_true(isinf(v.u.d) && v.u.d < 0);
    expect_json(&v, "{\"$double\":\"-Infinity\"}");
    decode_ok("{\"doubleValue\":-0.0}", &v);
    assert_true(v.u.d == 0 && signbit(v.u.d));
    expect_json(&v, "-0.0");
    decode_ok("{\"doubleValue\":0.0}", &v);
    assert_false(signbit(v.u.d));
    expect_json(&v, "0.0");
    decode_ok("{\"doubleValue\":\"1.5\"}", &v); /* proto3 JSON accepts numeric strings */
    assert_true(v.u.d == 1.5);
}

static void test_double_value_prints_java_style_inputs_exactly(void **state)
{
    (void)state;
    prints_as("{\"doubleValue\":1.5}", "1.5");
    prints_as("{\"doubleValue\":3.0}", "3.0");
    prints_as("{\"doubleValue\":3}", "3.0");
    prints_as("{\"doubleValue\":0.1}", "0.1");
    prints_as("{\"doubleValue\":1.0E300}", "1e+300");
    prints_as("{\"doubleValue\":-2.5E-7}", "-2.5e-07");
    prints_as("{\"doubleValue\":123456789012.0}", "123456789012.0");
    prints_as("{\"doubleValue\":0.30000000000000004}", "0.30000000000000004");
    prints_as("{\"doubleValue\":4.9E-324}", "4.94065645841247e-324");
    prints_as("{\"doubleValue\":1.7976931348623157E308}", "1.7976931348623157e+308");
    prints_as("{\"doubleValue\":1e16}", "1e+16");
}

static void test_double_value_errors_are_refused(void **state)
{
    (void)state;
    expect_error("{\"doubleValue\":\"nan\"}", FS_ETYPE,
                 "value: bad doubleValue \"nan\" (expected a number, \"NaN\", \"Infinity\" or "
                 "\"-Infinity\")");
    expect_error("{\"doubleValue\":true}", FS_ETYPE,
                 "value: bad doubleValue true (expected a number, \"NaN\", \"Infinity\" or "
                 "\"-Infinity\")");
    expect_error("{\"doubleValue\":1e400}", FS_ERANGE,
                 "value: doubleValue 1e400 overflows a double");
}

static void test_timestamp_value_normalises_offsets_to_utc(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"2026-11-23T03:04:05.5+02:00", "2026-11-23T01:04:05.500Z"},
        {"2026-11-23T03:04:05.123456789Z", "2026-11-23T03:04:05.123456789Z"},
        {"2026-11-23T03:04:05Z", "2026-11-23T03:04:05Z"},
        {"2026-11-23T03:04:05.000Z", "2026-11-23T03:04:05Z"},
        {"2026-11-23T03:04:05.120Z", "2026-11-23T03:04:05.120Z"},
        {"2026-11-23T03:04:05.000001Z", "2026-11-23T03:04:05.000001Z"},
        {"2026-11-23T03:04:05.1234567Z", "2026-11-23T03:04:05.123456700Z"},
        {"2026-11-23T20:00:00-05:30", "2026-11-24T01:30:00Z"},
        {"2026-01-01T00:30:00+01:00", "2025-12-31T23:30:00Z"},
        {"2024-02-29t12:00:00z", "2024-02-29T12:00:00Z"},
        {"2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"},
        {"1969-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.999999999Z"},
        {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"},
        {"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
        {"9999-12-31T23:59:59.999999999Z", "9999-12-31T23:59:59.999999999Z"},
        {"0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z"},
        {"9999-12-31T22:59:59-01:00", "9999-12-31T23:59:59Z"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fs_time t;
        char out[FSVAL_TIME_BUFSZ];
        fserr e = {0};
        if (fsval_time_parse(cases[i].in, strlen(cases[i].in), &t, &e))
            fail_msg("%s: %s", cases[i].in, e.msg);
        assert_int_equal(fsval_time_format(t, out), strlen(cases[i].out));
        assert_string_equal(out, cases[i].out);
    }
}

static void test_timestamp_value_decodes_to_seconds_and_nanos(void **state)
{
    fsval v;
    (void)state;

    decode_ok("{\"timestampValue\":\"2026-11-23T08:19:19.791064Z\"}", &v);
    assert_int_equal(v.type, FSVAL_TIMESTAMP);
    assert_true(v.u.ts.seconds == 1795421959);
    assert_int_equal(v.u.ts.nanos, 791064000);
    expect_json(&v, "{\"$timestamp\":\"2026-11-23T08:19:19.791064Z\"}");
    decode_ok("{\"timestampValue\":\"1970-01-01T00:00:00Z\"}", &v);
    assert_true(v.u.ts.seconds == 0 && v.u.ts.nanos == 0);
    decode_ok("{\"timestampValue\":\"1900-03-01T00:00:00Z\"}", &v);
    assert_true(v.u.ts.seconds == -2203891200LL);
    decode_ok("{\"timestampValue\":\"2000-02-29T23:59:59.5-00:30\"}", &v);
    assert_true(v.u.ts.seconds == 951870599LL && v.u.ts.nanos == 500000000);
    decode_ok("{\"timestampValue\":\"0001-01-01T00:00:00Z\"}", &v);
    assert_true(v.u.ts.seconds == -62135596800LL);
    decode_ok("{\"timestampValue\":\"9999-12-31T23:59:59.999999999Z\"}", &v);
    assert_true(v.u.ts.seconds == 253402300799LL && v.u.ts.nanos == 999999999);
}

static void test_bad_timestamps_are_refused_with_the_field_path(void **state)
{
    static const struct {
        const char *ts;
        int code;
        const char *why;
    } cases[] = {
        {"2026-13-01T00:00:00Z", FS_ERANGE, "month out of range"},
        {"2026-00-01T00:00:00Z", FS_ERANGE, "month out of range"},
        {"2026-02-29T00:00:00Z", FS_ERANGE, "day out of range for the month"},
        {"1900-02-29T00:00:00Z", FS_ERANGE, "day out of range for the month"},
        {"2026-04-31T00:00:00Z", FS_ERANGE, "day out of range for the month"},
        {"2026-01-00T00:00:00Z", FS_ERANGE, "day out of range for the month"},
        {"2026-01-01T24:00:00Z", FS_ERANGE, "hour or minute out of range"},
        {"2026-01-01T00:60:00Z", FS_ERANGE, "hour or minute out of range"},
        {"2016-12-31T23:59:60Z", FS_ERANGE, "second out of range (no leap seconds)"},
        {"2026-01-01T00:00:00+24:00", FS_ERANGE, "offset out of range"},
        {"2026-01-01T00:00:00+00:60", FS_ERANGE, "offset out of range"},
        {"0000-12-31T00:00:00Z", FS_ERANGE, "outside 0001-01-01..9999-12-31 UTC"},
        {"0001-01-01T00:00:00+00:01", FS_ERANGE, "outside 0001-01-01..9999-12-31 UTC"},
        {"9999-12-31T23:59:59-00:01", FS_ERANGE, "outside 0001-01-01..9999-12-31 UTC"},
        {"2026-01-01T00:00:00.1234567891Z", FS_EPARSE, "more than 9 fraction digits"},
        {"2026-01-01T00:00:00.Z", FS_EPARSE, "expected a digit after '.'"},
        {"2026-01-01T00:00:00", FS_EPARSE, "expected 'Z' or an offset after the time"},
        {"2026-01-01T00:00:00+0100", FS_EPARSE, "expected an offset +hh:mm or -hh:mm"},
        {"2026-01-01T00:00:00+01", FS_EPARSE, "expected an offset +hh:mm or -hh:mm"},
        {"2026-01-01T00:00:00ZZ", FS_EPARSE, "unexpected characters after the time zone"},
        {"2026-01-01 00:00:00Z", FS_EPARSE,
         "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)"},
        {"2026-1-01T00:00:00Z", FS_EPARSE,
         "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)"},
        {"20260101T000000Z", FS_EPARSE,
         "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)"},
        {"", FS_EPARSE, "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)"},
        {"+2026-01-01T00:00:00Z", FS_EPARSE,
         "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)"},
    };
    char json[256], want[512];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(json, sizeof(json),
                 "{\"mapValue\":{\"fields\":{\"address\":{\"mapValue\":{\"fields\":{\"city\":"
                 "{\"timestampValue\":\"%s\"}}}}}}}",
                 cases[i].ts);
        snprintf(want, sizeof(want), "value.address.city: bad timestamp \"%s\": %s", cases[i].ts,
                 cases[i].why);
        expect_error(json, cases[i].code, want);
    }
    expect_error("{\"timestampValue\":1795421959}", FS_ETYPE,
                 "value: timestampValue must be a string, found 1795421959");
}

static void test_document_error_path_matches_the_documented_form(void **state)
{
    (void)state;
    expect_doc_error(
        "{\"name\":\"projects/p/databases/(default)/documents/c/d\",\"createTime\":"
        "\"2026-11-23T08:19:19Z\",\"updateTime\":\"2026-11-23T08:19:19Z\",\"fields\":"
        "{\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"timestampValue\":"
        "\"2026-13-01T00:00:00Z\"}}}}}}",
        FS_ERANGE,
        "fields.address.city: bad timestamp \"2026-13-01T00:00:00Z\": month out of range");
}

static void test_time_format_prints_the_fewest_exact_digit_groups(void **state)
{
    static const struct {
        int32_t nanos;
        const char *out;
    } cases[] = {
        {0, "1970-01-01T00:00:00Z"},          {500000000, "1970-01-01T00:00:00.500Z"},
        {1000000, "1970-01-01T00:00:00.001Z"}, {1000, "1970-01-01T00:00:00.000001Z"},
        {120000, "1970-01-01T00:00:00.000120Z"}, {1, "1970-01-01T00:00:00.000000001Z"},
        {999999999, "1970-01-01T00:00:00.999999999Z"},
    };
    char out[FSVAL_TIME_BUFSZ];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fs_time t = {0, cases[i].nanos};
        assert_int_equal(fsval_time_format(t, out), strlen(cases[i].out));
        assert_string_equal(out, cases[i].out);
    }
    assert_int_equal(fsval_time_format((struct fs_time){-62135596801LL, 0}, out), FS_ERANGE);
    assert_string_equal(out, "");
    assert_int_equal(fsval_time_format((struct fs_time){253402300800LL, 0}, out), FS_ERANGE);
    assert_int_equal(fsval_time_format((struct fs_time){0, -1}, out), FS_ERANGE);
    assert_int_equal(fsval_time_format((struct fs_time){0, 1000000000}, out), FS_ERANGE);
}

static void test_time_round_trips_across_the_whole_range(void **state)
{
    const int64_t lo = -62135596800LL, hi = 253402300799LL;
    char out[FSVAL_TIME_BUFSZ];
    struct fs_time t, back;
    int n = 0;
    (void)state;

    /* a stride that is prime to days and leap cycles visits varied dates, incl. leap days */
    for (int64_t s = lo; s <= hi; s += 7777777 + (s & 1023), n++) {
        t.seconds = s;
        t.nanos = (int32_t)((uint64_t)s * 2654435761u % 1000000000u);
        assert_true(fsval_time_format(t, out) > 0);
        assert_int_equal(fsval_time_parse(out, strlen(out), &back, NULL), 0);
        assert_true(back.seconds == t.seconds && back.nanos == t.nanos);
    }
    assert_true(n > 30000);
    assert_true(fsval_time_cmp((struct fs_time){1, 0}, (struct fs_time){1, 1}) < 0);
    assert_true(fsval_time_cmp((struct fs_time){2, 0}, (struct fs_time){1, 999}) > 0);
    assert_int_equal(fsval_time_cmp((struct fs_time){-5, 3}, (struct fs_time){-5, 3}), 0);
}

static void test_string_values_match_the_webchannel_table(void **state)
{
    static const struct {
        const char *name;
        const char *want;
        size_t len;
    } cases[] = {
        {"e", "\xC3\xA9", 2},
        {"jp", "\xE6\x97\xA5\xE6\x9C\xAC", 6},
        {"smile", "\xF0\x9F\x98\x80", 4},
        {"pair", "\xF0\x9F\x98\x80", 4},
        {"gson", "<>&='", 5},
        {"ls", "a\xE2\x80\xA8" "b", 5},
        {"ctl", "\x01\"\\\n\t/", 6},
        {"nul", "x\0y", 3},
        {"mixed", "Jos\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80", 17},
        {"\xC3\xA9\xE6\x97\xA5\xF0\x9F\x98\x80key", "key with non-ASCII", 18},
    };
    size_t len;
    char *text = read_file(FIXTURES "webchannel_strings.in.json", &len);
    fserr e = {0};
    fsval v;
    (void)state;

    if (fsval_parse(text, len, &v, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(v.type, FSVAL_MAP);
    assert_int_equal(v.u.map.n, sizeof(cases) / sizeof(cases[0]));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const fsval *s = fsval_map_get(&v, cases[i].name, strlen(cases[i].name));
        assert_non_null(s);
        assert_int_equal(s->type, FSVAL_STRING);
        assert_int_equal(s->u.s.len, cases[i].len);
        assert_memory_equal(s->u.s.p, cases[i].want, cases[i].len + 1);
    }
    fsval_release(&v);
    free(text);
}

static void test_string_value_keeps_nul_bytes_and_prints_them_escaped(void **state)
{
    fsval v;
    (void)state;

    decode_ok("{\"stringValue\":\"a\\u0000b\\u0000\"}", &v);
    assert_int_equal(v.u.s.len, 4);
    assert_memory_equal(v.u.s.p, "a\0b\0", 5);
    expect_json(&v, "\"a\\u0000b\\u0000\"");
    fsval_release(&v);
    prints_as("{\"stringValue\":\"\"}", "\"\"");
    prints_as("{\"stringValue\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\\u007f\"}",
          "\"q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\\u007f\"");
    prints_as("{\"stringValue\":\"\\u003cJos\xC3\xA9\\u003e \\u2028\"}",
          "\"<Jos\xC3\xA9> \xE2\x80\xA8\"");
    expect_error("{\"stringValue\":5}", FS_ETYPE, "value: stringValue must be a string, found 5");
}

static void test_bytes_value_decodes_standard_base64(void **state)
{
    fsval v;
    (void)state;

    decode_ok("{\"bytesValue\":\"AAEC/+8=\"}", &v);
    assert_int_equal(v.type, FSVAL_BYTES);
    assert_int_equal(v.u.s.len, 5);
    assert_memory_equal(v.u.s.p, "\x00\x01\x02\xff\xef", 5);
    expect_json(&v, "{\"$bytes\":\"AAEC/+8=\"}");
    fsval_release(&v);
    decode_ok("{\"bytesValue\":\"AAEC/+8\\u003d\"}", &v); /* Gson escapes '=' */
    assert_int_equal(v.u.s.len, 5);
    fsval_release(&v);
    decode_ok("{\"bytesValue\":\"\"}", &v);
    assert_int_equal(v.u.s.len, 0);
    assert_non_null(v.u.s.p);
    expect_json(&v, "{\"$bytes\":\"\"}");
    fsval_release(&v);
}

static void test_bytes_value_refuses_bad_base64(void **state)
{
    (void)state;
    expect_error("{\"bytesValue\":\"AAEC_-8=\"}", FS_EPARSE,
                 "value: bad base64 in bytesValue \"AAEC_-8=\"");
    expect_error("{\"bytesValue\":\"AAEC/+8\"}", FS_EPARSE,
                 "value: bad base64 in bytesValue \"AAEC/+8\"");
    expect_error("{\"bytesValue\":\"Zm9v!\"}", FS_EPARSE,
                 "value: bad base64 in bytesValue \"Zm9v!\"");
    expect_error("{\"bytesValue\":\"Zg= =\"}", FS_EPARSE,
                 "value: bad base64 in bytesValue \"Zg= =\"");
    expect_error("{\"bytesValue\":[1]}", FS_ETYPE,
                 "value: bytesValue must be a string, found array");
}

static void test_reference_value_keeps_the_full_name(void **state)
{
    fsval v;
    (void)state;

    decode_ok("{\"referenceValue\":\"projects/demo/databases/(default)/documents/employees/e1\"}",
              &v);
    assert_int_equal(v.type, FSVAL_REFERENCE);
    assert_string_equal(v.u.s.p, "projects/demo/databases/(default)/documents/employees/e1");
    expect_json(&v,
                "{\"$reference\":\"projects/demo/databases/(default)/documents/employees/e1\"}");
    fsval_release(&v);
    expect_error("{\"referenceValue\":null}", FS_ETYPE,
                 "value: referenceValue must be a string, found null");
}

static void test_geo_point_missing_members_mean_zero(void **state)
{
    fsval v;
    (void)state;

    decode_ok("{\"geoPointValue\":{}}", &v);
    assert_int_equal(v.type, FSVAL_GEO);
    assert_true(v.u.geo.lat == 0 && v.u.geo.lng == 0);
    expect_json(&v, "{\"$geo\":{\"latitude\":0.0,\"longitude\":0.0}}");
    decode_ok("{\"geoPointValue\":{\"longitude\":-122.5}}", &v);
    assert_true(v.u.geo.lat == 0 && v.u.geo.lng == -122.5);
    decode_ok("{\"geoPointValue\":{\"latitude\":48.8566}}", &v);
    assert_true(v.u.geo.lat == 48.8566 && v.u.geo.lng == 0);
    decode_ok("{\"geoPointValue\":{\"latitude\":48.8566,\"longitude\":-122.5}}", &v);
    expect_json(&v, "{\"$geo\":{\"latitude\":48.8566,\"longitude\":-122.5}}");
    decode_ok("{\"geoPointValue\":{\"latitude\":-90,\"longitude\":180}}", &v);
    assert_true(v.u.geo.lat == -90 && v.u.geo.lng == 180);
    decode_ok("{\"geoPointValue\":{\"latitude\":90.0,\"longitude\":-180.0}}", &v);
}

static void test_geo_point_out_of_range_or_malformed_is_refused(void **state)
{
    (void)state;
    expect_error("{\"geoPointValue\":{\"latitude\":90.0001}}", FS_ERANGE,
                 "value: geoPointValue latitude 90.0001 is outside -90..90");
    expect_error("{\"geoPointValue\":{\"longitude\":-180.5}}", FS_ERANGE,
                 "value: geoPointValue longitude -180.5 is outside -180..180");
    expect_error("{\"geoPointValue\":{\"latitude\":\"NaN\"}}", FS_ETYPE,
                 "value: geoPointValue latitude \"NaN\" is not a number");
    expect_error("{\"geoPointValue\":{\"latitude\":true}}", FS_ETYPE,
                 "value: geoPointValue latitude true is not a number");
    expect_error("{\"geoPointValue\":{\"lat\":1}}", FS_EPARSE,
                 "value: unknown member \"lat\" in geoPointValue");
    expect_error("{\"geoPointValue\":{\"latitude\":1,\"latitude\":2}}", FS_EPARSE,
                 "value: duplicate \"latitude\" in geoPointValue");
    expect_error("{\"geoPointValue\":[1,2]}", FS_ETYPE,
                 "value: geoPointValue must be an object, found array");
}

static void test_empty_map_and_array_decode(void **state)
{
    static const char *const maps[] = {"{\"mapValue\":{}}", "{\"mapValue\":{\"fields\":{}}}"};
    static const char *const arrays[] = {"{\"arrayValue\":{}}",
                                         "{\"arrayValue\":{\"values\":[]}}"};
    fsval v;
    (void)state;

    for (int i = 0; i < 2; i++) {
        decode_ok(maps[i], &v);
        assert_int_equal(v.type, FSVAL_MAP);
        assert_int_equal(v.u.map.n, 0);
        expect_json(&v, "{}");
        fsval_release(&v);
        decode_ok(arrays[i], &v);
        assert_int_equal(v.type, FSVAL_ARRAY);
        assert_int_equal(v.u.arr.n, 0);
        expect_json(&v, "[]");
        fsval_release(&v);
    }
    /* an empty map inside an array, as the emulator prints it */
    prints_as("{\"arrayValue\":{\"values\":[{\"mapValue\":{}},{\"arrayValue\":{}},"
              "{\"nullValue\":null}]}}",
          "[{},[],null]");
}

static void test_value_object_must_have_exactly_one_kind(void **state)
{
    (void)state;
    expect_error("{}", FS_EPARSE,
                 "value: empty value object, expected one kind such as \"stringValue\"");
    expect_error("{\"stringValue\":\"a\",\"integerValue\":\"1\"}", FS_EPARSE,
                 "value: more than one value kind (\"stringValue\" and \"integerValue\")");
    expect_error("{\"stringValue\":\"a\",\"stringValue\":\"b\"}", FS_EPARSE,
                 "value: more than one value kind (\"stringValue\" and \"stringValue\")");
    expect_error("{\"fooValue\":1}", FS_EPARSE, "value: unknown value kind \"fooValue\"");
    expect_error("{\"StringValue\":\"x\"}", FS_EPARSE,
                 "value: unknown value kind \"StringValue\"");
    expect_error("\"just a string\"", FS_ETYPE,
                 "value: expected a value object such as {\"stringValue\":\"x\"}, found \"just a "
                 "string\"");
    expect_error("[]", FS_ETYPE,
                 "value: expected a value object such as {\"stringValue\":\"x\"}, found array");
    /* a kind spelled with escapes is still that kind */
    prints_as("{\"\\u0073tringValue\":\"ok\"}", "\"ok\"");
}

static void test_map_and_array_members_are_checked(void **state)
{
    (void)state;
    expect_error("{\"mapValue\":{\"field\":{}}}", FS_EPARSE,
                 "value: unknown member \"field\" in mapValue");
    expect_error("{\"mapValue\":{\"fields\":{},\"fields\":{}}}", FS_EPARSE,
                 "value: duplicate \"fields\" in mapValue");
    expect_error("{\"mapValue\":{\"fields\":[]}}", FS_ETYPE,
                 "value: expected an object of fields, found array");
    expect_error("{\"mapValue\":[]}", FS_ETYPE, "value: mapValue must be an object, found array");
    expect_error("{\"arrayValue\":{\"value\":[]}}", FS_EPARSE,
                 "value: unknown member \"value\" in arrayValue");
    expect_error("{\"arrayValue\":{\"values\":[],\"values\":[]}}", FS_EPARSE,
                 "value: duplicate \"values\" in arrayValue");
    expect_error("{\"arrayValue\":{\"values\":{}}}", FS_ETYPE,
                 "value: arrayValue.values must be an array, found object");
    expect_error("{\"arrayValue\":null}", FS_ETYPE,
                 "value: arrayValue must be an object, found null");
    expect_error("{\"arrayValue\":{\"values\":[1]}}", FS_ETYPE,
                 "value[0]: expected a value object such as {\"stringValue\":\"x\"}, found 1");
}

/* {"mapValue":{"fields":{"m":  ... {"integerValue":"1"} ... }}} with `levels` maps. */
static char *nested_maps(int levels, bool arrays)
{
    buf b;
    buf_init(&b, 0);
    for (int i = 0; i < levels; i++)
        buf_adds(&b, arrays && i % 2 ? "{\"arrayValue\":{\"values\":["
                                     : "{\"mapValue\":{\"fields\":{\"m\":");
    buf_adds(&b, "{\"integerValue\":\"1\"}");
    for (int i = levels - 1; i >= 0; i--)
        buf_adds(&b, arrays && i % 2 ? "]}}" : "}}}");
    return buf_take(&b);
}

static void test_nesting_at_the_cap_decodes_and_past_it_fails(void **state)
{
    fserr e = {0};
    fsval v;
    char *s;
    int rc;
    (void)state;

    for (int arrays = 0; arrays < 2; arrays++) {
        s = nested_maps(FSVAL_MAX_DEPTH, arrays);
        rc = fsval_parse(s, strlen(s), &v, &e);
        if (rc)
            fail_msg("%s", e.msg);
        fsval_release(&v);
        free(s);
        s = nested_maps(FSVAL_MAX_DEPTH + 1, arrays);
        assert_int_equal(fsval_parse(s, strlen(s), &v, &e), FS_ETOOBIG);
        assert_non_null(strstr(e.msg, ": nested deeper than 32 maps and arrays"));
        free(s);
    }
    s = nested_maps(FSVAL_MAX_DEPTH + 1, false);
    assert_int_equal(fsval_parse(s, strlen(s), &v, &e), FS_ETOOBIG);
    assert_string_equal(e.msg, "value.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m.m."
                               "m."
                               "m: nested deeper than 32 maps and arrays");
    free(s);
    /* a hostile depth stops in the tokenizer */
    s = nested_maps(1000, false);
    assert_int_equal(fsval_parse(s, strlen(s), &v, &e), FS_ETOOBIG);
    assert_non_null(strstr(e.msg, "json: byte"));
    free(s);
}

static void test_duplicate_field_names_are_refused(void **state)
{
    (void)state;
    expect_error("{\"mapValue\":{\"fields\":{\"a\":{\"nullValue\":null},\"b\":{\"nullValue\":null},"
                 "\"a\":{\"nullValue\":null}}}}",
                 FS_EPARSE, "value: duplicate field name \"a\"");
    expect_error("{\"mapValue\":{\"fields\":{\"x\":{\"mapValue\":{\"fields\":{\"\\u00e9\":{"
                 "\"nullValue\":null},\"\xC3\xA9\":{\"nullValue\":null}}}}}}}",
                 FS_EPARSE, "value.x: duplicate field name \"\xC3\xA9\"");
    expect_doc_error("{\"name\":\"n\",\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":"
                     "\"2026-01-01T00:00:00Z\",\"fields\":{\"k\":{\"nullValue\":null},\"k\":{"
                     "\"nullValue\":null}}}",
                     FS_EPARSE, "fields: duplicate field name \"k\"");
}

static void test_error_paths_name_nested_fields_and_indexes(void **state)
{
    (void)state;
    expect_error("{\"mapValue\":{\"fields\":{\"a\":{\"mapValue\":{\"fields\":{\"tags\":{"
                 "\"arrayValue\":{\"values\":[{\"nullValue\":null},{\"nullValue\":null},{"
                 "\"mapValue\":{\"fields\":{\"x.y\":{\"integerValue\":\"z\"}}}}]}}}}}}}}",
                 FS_ETYPE, "value.a.tags[2].`x.y`: bad integerValue \"z\" (expected an integer)");
    expect_error("{\"mapValue\":{\"fields\":{\"we`ird\\\\\":{\"integerValue\":\"z\"}}}}", FS_ETYPE,
                 "value.`we\\`ird\\\\`: bad integerValue \"z\" (expected an integer)");
    expect_error("{\"mapValue\":{\"fields\":{\"\\u65e5\\u672c\":{\"integerValue\":\"z\"}}}}",
                 FS_ETYPE, "value.`\xE6\x97\xA5\xE6\x9C\xAC`: bad integerValue \"z\" (expected an "
                           "integer)");
    expect_error("{\"mapValue\":{\"fields\":{\"nl\\n\":{\"integerValue\":\"z\"}}}}", FS_ETYPE,
                 "value.`nl?`: bad integerValue \"z\" (expected an integer)");
}

static void test_long_values_are_shortened_in_messages(void **state)
{
    char json[512], want[512];
    fserr e = {0};
    fsval v;
    (void)state;

    /* 200 digits, of which the message shows the first 64 */
    snprintf(json, sizeof(json), "{\"integerValue\":\"%0200d\"}", 7);
    snprintf(want, sizeof(want), "value: bad integerValue \"%064d...\" (expected an integer)", 0);
    assert_int_equal(fsval_parse(json, strlen(json), &v, &e), FS_ETYPE);
    assert_string_equal(e.msg, want);
}

static void test_document_decodes_name_times_and_fields(void **state)
{
    size_t len;
    char *text = read_file(FIXTURES "all_types.in.json", &len);
    struct fsdoc doc;
    fserr e = {0};
    char t[FSVAL_TIME_BUFSZ];
    const fsval *v;
    (void)state;

    if (fsdoc_parse(text, len, &doc, &e))
        fail_msg("%s", e.msg);
    assert_string_equal(doc.name, "projects/demo/databases/(default)/documents/employees/e1");
    fsval_time_format(doc.create_time, t);
    assert_string_equal(t, "2026-11-23T08:19:19.791064Z");
    fsval_time_format(doc.update_time, t);
    assert_string_equal(t, "2026-11-23T08:19:20.500Z");
    assert_int_equal(doc.fields.type, FSVAL_MAP);
    assert_int_equal(doc.fields.u.map.n, 32);
    v = fsval_map_get(&doc.fields, "big", 3);
    assert_true(v && v->type == FSVAL_INT && v->u.i == 9007199254740993LL);
    v = fsval_map_get(&doc.fields, "a.b", 3);
    assert_true(v && v->type == FSVAL_STRING);
    assert_null(fsval_map_get(&doc.fields, "a", 1));
    /* names come out sorted */
    for (size_t i = 1; i < doc.fields.u.map.n; i++)
        assert_true(strcmp(doc.fields.u.map.fields[i - 1].name, doc.fields.u.map.fields[i].name) <
                    0);
    fsdoc_release(&doc);
    assert_null(doc.name);
    free(text);
}

static void test_golden_fixtures_print_as_recorded(void **state)
{
    static const char *const names[] = {"all_types", "webchannel_strings"};
    (void)state;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[256];
        size_t in_len, out_len;
        char *in, *want;
        struct fsdoc doc;
        fsval v;
        fserr e = {0};
        buf b;
        int rc;

        snprintf(path, sizeof(path), FIXTURES "%s.in.json", names[i]);
        in = read_file(path, &in_len);
        snprintf(path, sizeof(path), FIXTURES "%s.out.json", names[i]);
        want = read_file(path, &out_len);
        chomp(want, &out_len);
        buf_init(&b, 0);
        if (strncmp(names[i], "all_", 4) == 0) {
            rc = fsdoc_parse(in, in_len, &doc, &e);
            if (!rc)
                fsval_to_json(&doc.fields, &b);
            fsdoc_release(&doc);
        } else {
            rc = fsval_parse(in, in_len, &v, &e);
            if (!rc)
                fsval_to_json(&v, &b);
            fsval_release(&v);
        }
        if (rc)
            fail_msg("%s: %s", names[i], e.msg);
        if (strcmp(buf_str(&b), want) != 0)
            fail_msg("%s:\n  got  %s\n  want %s", names[i], buf_str(&b), want);
        buf_release(&b);
        free(in);
        free(want);
    }
}

static void test_golden_error_fixtures_give_their_messages(void **state)
{
    size_t len;
    char *text = read_file(FIXTURES "errors.json", &len);
    json_doc d;
    fserr e = {0};
    int n = 0;
    (void)state;

    json_doc_init(&d);
    if (json_parse(&d, text, len, &e))
        fail_msg("errors.json: %s", e.msg);
    for (int c = json_child(&d, 0); c >= 0; c = json_sibling(&d, 0, c), n++) {
        int in = json_obj_get(&d, c, "value"), doc = json_obj_get(&d, c, "document");
        int code = json_obj_get(&d, c, "code"), msg = json_obj_get(&d, c, "error");
        int tok = in >= 0 ? in : doc;
        size_t rlen;
        const char *raw;
        struct fsdoc fd;
        fsval v;
        buf want;
        int rc;

        assert_true(tok >= 0 && code >= 0 && msg >= 0);
        raw = json_raw(&d, tok, &rlen);
        fserr_clear(&e);
        rc = in >= 0 ? fsval_parse(raw, rlen, &v, &e) : fsdoc_parse(raw, rlen, &fd, &e);
        buf_init(&want, 0);
        json_str_unescape(&d, msg, &want, NULL);
        if (!json_str_eq(&d, code, fserr_name(rc)) || strcmp(e.msg, buf_str(&want)) != 0)
            fail_msg("errors.json case %d (%.*s):\n  got  %s \"%s\"\n  want \"%s\"", n,
                     (int)rlen, raw, fserr_name(rc), e.msg, buf_str(&want));
        buf_release(&want);
    }
    assert_true(n >= 10);
    json_doc_release(&d);
    free(text);
}

static void test_document_without_fields_has_an_empty_map(void **state)
{
    const char *s = "{\"name\":\"projects/p/databases/(default)/documents/c/d\",\"createTime\":"
                    "\"2026-01-01T00:00:00Z\",\"updateTime\":\"2026-01-02T00:00:00.000001Z\","
                    "\"someFutureMember\":[1,2]}";
    struct fsdoc doc;
    fserr e = {0};
    (void)state;

    if (fsdoc_parse(s, strlen(s), &doc, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(doc.fields.type, FSVAL_MAP);
    assert_int_equal(doc.fields.u.map.n, 0);
    assert_true(doc.update_time.nanos == 1000);
    expect_json(&doc.fields, "{}");
    fsdoc_release(&doc);
}

static void test_document_errors_name_the_member(void **state)
{
    (void)state;
    expect_doc_error("[]", FS_ETYPE, "document: expected an object, found array");
    expect_doc_error("{\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":"
                     "\"2026-01-01T00:00:00Z\"}",
                     FS_EPARSE, "document: missing \"name\"");
    expect_doc_error("{\"name\":5}", FS_ETYPE, "name: must be a string, found 5");
    expect_doc_error("{\"name\":\"\"}", FS_EPARSE, "name: must be a non-empty string without NUL");
    expect_doc_error("{\"name\":\"a\\u0000b\"}", FS_EPARSE,
                     "name: must be a non-empty string without NUL");
    expect_doc_error("{\"name\":\"n\",\"updateTime\":\"2026-01-01T00:00:00Z\"}", FS_EPARSE,
                     "document: missing \"createTime\"");
    expect_doc_error("{\"name\":\"n\",\"createTime\":\"2026-01-01T00:00:00Z\"}", FS_EPARSE,
                     "document: missing \"updateTime\"");
    expect_doc_error("{\"name\":\"n\",\"createTime\":\"2026-01-01\",\"updateTime\":"
                     "\"2026-01-01T00:00:00Z\"}",
                     FS_EPARSE, "createTime: bad timestamp \"2026-01-01\": expected "
                                "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)");
    expect_doc_error("{\"name\":\"n\",\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":"
                     "\"2026-02-30T00:00:00Z\"}",
                     FS_ERANGE, "updateTime: bad timestamp \"2026-02-30T00:00:00Z\": day out of "
                                "range for the month");
    expect_doc_error("{\"name\":\"n\",\"createTime\":1,\"updateTime\":\"2026-01-01T00:00:00Z\"}",
                     FS_ETYPE, "createTime: must be a timestamp string, found 1");
    expect_doc_error("{\"name\":\"n\",\"name\":\"m\"}", FS_EPARSE, "document: duplicate member");
    expect_doc_error("{\"name\":\"n\",\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":"
                     "\"2026-01-01T00:00:00Z\",\"fields\":[]}",
                     FS_ETYPE, "fields: expected an object of fields, found array");
    expect_doc_error("{\"name\":\"n\",\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":"
                     "\"2026-01-01T00:00:00Z\",\"fields\":{\"a\":{\"stringValue\":\"ok\"},\"b\":"
                     "{\"bytesValue\":\"!\"}}}",
                     FS_EPARSE, "fields.b: bad base64 in bytesValue \"!\"");
    expect_doc_error("{\"name\":\"n\"", FS_EPARSE,
                     "json: byte 11: expected ',' or '}' after an object member, found end of "
                     "input");
}

static void test_decode_from_a_shared_doc_and_token(void **state)
{
    const char *s = "[{\"integerValue\":\"1\"},{\"stringValue\":\"two\"},5]";
    json_doc d;
    fserr e = {0};
    fsval v;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(json_parse(&d, s, strlen(s), NULL), 0);
    assert_int_equal(fsval_decode(&d, json_arr_at(&d, 0, 1), &v, &e), 0);
    assert_string_equal(v.u.s.p, "two");
    fsval_release(&v);
    assert_int_equal(fsval_decode(&d, 99, &v, &e), FS_EINVAL);
    assert_int_equal(fsval_decode(&d, json_arr_at(&d, 0, 2), &v, NULL), FS_ETYPE);
    json_doc_release(&d);
}

static void test_failed_decodes_free_what_they_built(void **state)
{
    (void)state;
    /* ASan's leak check proves these release the strings and maps decoded before the error */
    expect_error("{\"arrayValue\":{\"values\":[{\"stringValue\":\"a\"},{\"mapValue\":{\"fields\":{"
                 "\"k\":{\"stringValue\":\"b\"}}}},{\"bytesValue\":\"AA==\"},{\"integerValue\":"
                 "\"x\"}]}}",
                 FS_ETYPE, "value[3]: bad integerValue \"x\" (expected an integer)");
    expect_error("{\"mapValue\":{\"fields\":{\"a\":{\"stringValue\":\"s\"},\"a\":{\"stringValue\":"
                 "\"t\"}}}}",
                 FS_EPARSE, "value: duplicate field name \"a\"");
}

static void test_to_json_keeps_what_plain_json_would_lose(void **state)
{
    (void)state;
    prints_as("{\"arrayValue\":{\"values\":[{\"integerValue\":\"1\"},{\"doubleValue\":1.0}]}}",
          "[1,1.0]");
    prints_as("{\"timestampValue\":\"2026-11-23T03:04:05.5+02:00\"}",
          "{\"$timestamp\":\"2026-11-23T01:04:05.500Z\"}");
    prints_as("{\"mapValue\":{\"fields\":{\"b\":{\"booleanValue\":true},\"a\":{\"nullValue\":null},"
          "\"\\\"q\\\"\":{\"referenceValue\":\"r\"}}}}",
          "{\"\\\"q\\\"\":{\"$reference\":\"r\"},\"a\":null,\"b\":true}");
}

static void test_to_json_respects_the_buffer_cap(void **state)
{
    fsval v;
    buf b;
    (void)state;

    decode_ok("{\"arrayValue\":{\"values\":[{\"stringValue\":\"0123456789\"},{\"bytesValue\":"
              "\"AAAA\"}]}}",
              &v);
    for (size_t cap = 1; cap < 32; cap++) {
        buf_init(&b, cap);
        assert_int_equal(fsval_to_json(&v, &b), FS_ETOOBIG);
        buf_release(&b);
    }
    buf_init(&b, 32);
    assert_int_equal(fsval_to_json(&v, &b), 0);
    assert_string_equal(buf_str(&b), "[\"0123456789\",{\"$bytes\":\"AAAA\"}]");
    buf_release(&b);
    fsval_release(&v);
}

static void test_equal_treats_nan_as_equal_and_signed_zeros_as_different(void **state)
{
    fsval a, b;
    (void)state;

    decode_ok("{\"doubleValue\":\"NaN\"}", &a);
    decode_ok("{\"doubleValue\":\"NaN\"}", &b);
    assert_true(fsval_equal(&a, &b));
    assert_true(fsval_hash64(&a) == fsval_hash64(&b));
    b.u.d = -NAN; /* any NaN */
    assert_true(fsval_equal(&a, &b));
    assert_true(fsval_hash64(&a) == fsval_hash64(&b));
    decode_ok("{\"doubleValue\":-0.0}", &a);
    decode_ok("{\"doubleValue\":0.0}", &b);
    assert_false(fsval_equal(&a, &b));
    assert_false(fsval_hash64(&a) == fsval_hash64(&b));
    decode_ok("{\"doubleValue\":1.5}", &a);
    decode_ok("{\"doubleValue\":\"NaN\"}", &b);
    assert_false(fsval_equal(&a, &b));
    assert_false(fsval_equal(&b, &a));
    decode_ok("{\"geoPointValue\":{\"latitude\":-0.0}}", &a);
    decode_ok("{\"geoPointValue\":{}}", &b);
    assert_false(fsval_equal(&a, &b));
}

static void test_equal_is_deep_and_strict_about_types(void **state)
{
    static const char *const distinct[] = {
        "{\"nullValue\":null}",
        "{\"booleanValue\":false}",
        "{\"booleanValue\":true}",
        "{\"integerValue\":\"0\"}",
        "{\"integerValue\":\"1\"}",
        "{\"doubleValue\":1.0}",
        "{\"doubleValue\":0.0}",
        "{\"timestampValue\":\"1970-01-01T00:00:00Z\"}",
        "{\"timestampValue\":\"1970-01-01T00:00:00.000000001Z\"}",
        "{\"stringValue\":\"a\"}",
        "{\"stringValue\":\"a\\u0000\"}",
        "{\"stringValue\":\"\"}",
        "{\"bytesValue\":\"YQ==\"}",
        "{\"referenceValue\":\"a\"}",
        "{\"geoPointValue\":{\"latitude\":1}}",
        "{\"geoPointValue\":{\"longitude\":1}}",
        "{\"arrayValue\":{}}",
        "{\"arrayValue\":{\"values\":[{\"integerValue\":\"1\"}]}}",
        "{\"arrayValue\":{\"values\":[{\"integerValue\":\"1\"},{\"integerValue\":\"1\"}]}}",
        "{\"arrayValue\":{\"values\":[{\"doubleValue\":1}]}}",
        "{\"mapValue\":{}}",
        "{\"mapValue\":{\"fields\":{\"a\":{\"integerValue\":\"1\"}}}}",
        "{\"mapValue\":{\"fields\":{\"b\":{\"integerValue\":\"1\"}}}}",
        "{\"mapValue\":{\"fields\":{\"a\":{\"integerValue\":\"2\"}}}}",
        "{\"mapValue\":{\"fields\":{\"a\":{\"integerValue\":\"1\"},\"b\":{\"nullValue\":null}}}}",
    };
    enum { N = sizeof(distinct) / sizeof(distinct[0]) };
    fsval v[N], w;
    (void)state;

    for (int i = 0; i < N; i++)
        decode_ok(distinct[i], &v[i]);
    for (int i = 0; i < N; i++) {
        decode_ok(distinct[i], &w);
        for (int j = 0; j < N; j++) {
            assert_int_equal(fsval_equal(&v[i], &v[j]), i == j);
            assert_int_equal(fsval_hash64(&v[i]) == fsval_hash64(&v[j]), i == j);
        }
        assert_true(fsval_equal(&v[i], &w));
        assert_true(fsval_hash64(&v[i]) == fsval_hash64(&w));
        fsval_release(&w);
    }
    for (int i = 0; i < N; i++)
        fsval_release(&v[i]);
}

static void test_maps_compare_and_hash_regardless_of_member_order(void **state)
{
    fsval a, b;
    (void)state;

    decode_ok("{\"mapValue\":{\"fields\":{\"z\":{\"integerValue\":\"1\"},\"a\":{\"mapValue\":{"
              "\"fields\":{\"y\":{\"nullValue\":null},\"x\":{\"stringValue\":\"s\"}}}}}}}",
              &a);
    decode_ok("{\"mapValue\":{\"fields\":{\"a\":{\"mapValue\":{\"fields\":{\"x\":{\"stringValue\":"
              "\"s\"},\"y\":{\"nullValue\":null}}}},\"z\":{\"integerValue\":\"1\"}}}}",
              &b);
    assert_true(fsval_equal(&a, &b));
    assert_true(fsval_hash64(&a) == fsval_hash64(&b));
    fsval_release(&a);
    fsval_release(&b);
}

static void test_hash_is_stable_across_builds(void **state)
{
    fsval v;
    (void)state;

    /* These constants are stored in MySQL's applied index: a change here is a data migration. */
    decode_ok("{\"nullValue\":null}", &v);
    assert_true(fsval_hash64(&v) == 0x5ca6bbcbb1e85355ull);
    decode_ok("{\"integerValue\":\"42\"}", &v);
    assert_true(fsval_hash64(&v) == 0x45d23191db6dae75ull);
    decode_ok("{\"mapValue\":{\"fields\":{\"a\":{\"stringValue\":\"x\"}}}}", &v);
    assert_true(fsval_hash64(&v) == 0x5098e684782bd6fbull);
    fsval_release(&v);
}

static void test_field_paths_parse_plain_quoted_and_unicode_segments(void **state)
{
    static const struct {
        const char *path;
        size_t n;
        const char *segs[3];
    } cases[] = {
        {"address.city", 2, {"address", "city"}},
        {"`a.b`.c", 2, {"a.b", "c"}},
        {"`with space`.x", 2, {"with space", "x"}},
        {"\xE6\x97\xA5\xE6\x9C\xAC.\xF0\x9F\x98\x80",
         2,
         {"\xE6\x97\xA5\xE6\x9C\xAC", "\xF0\x9F\x98\x80"}},
        {"`a\\`b`", 1, {"a`b"}},
        {"`a\\\\b`", 1, {"a\\b"}},
        {"`\\x`", 1, {"x"}},
        {"1num", 1, {"1num"}},
        {"a.b.c", 3, {"a", "b", "c"}},
        {"`.`.`..`", 2, {".", ".."}},
        {"a-b:c$", 1, {"a-b:c$"}},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fsval_path p;
        fserr e = {0};
        if (fsval_path_parse(cases[i].path, &p, &e))
            fail_msg("%s: %s", cases[i].path, e.msg);
        assert_int_equal(p.n, cases[i].n);
        for (size_t j = 0; j < p.n; j++) {
            assert_string_equal(p.segs[j].p, cases[i].segs[j]);
            assert_int_equal(p.segs[j].len, strlen(cases[i].segs[j]));
        }
        fsval_path_release(&p);
        assert_int_equal(p.n, 0);
    }
}

static void test_field_path_errors_say_where(void **state)
{
    static const struct {
        const char *path;
        int code;
        const char *want;
    } cases[] = {
        {"", FS_EPARSE, "field path is empty"},
        {"a..b", FS_EPARSE, "field path \"a..b\": empty segment at byte 2"},
        {".a", FS_EPARSE, "field path \".a\": empty segment at byte 0"},
        {"a.", FS_EPARSE, "field path \"a.\": empty segment at the end"},
        {"``", FS_EPARSE, "field path \"``\": empty segment at byte 0"},
        {"`abc", FS_EPARSE, "field path \"`abc\": unterminated '`' at byte 0"},
        {"x.`ab\\", FS_EPARSE, "field path \"x.`ab\\\": '\\' at the end, inside '`' at byte 2"},
        {"`a`b", FS_EPARSE, "field path \"`a`b\": expected '.' at byte 3"},
        {"a b", FS_EPARSE, "field path: byte 1 (0x20) must be inside a `quoted` segment"},
        {"a`b", FS_EPARSE, "field path: byte 1 (0x60) must be inside a `quoted` segment"},
        {"a\\b", FS_EPARSE, "field path: byte 1 (0x5C) must be inside a `quoted` segment"},
        {"a\tb", FS_EPARSE, "field path: byte 1 (0x09) must be inside a `quoted` segment"},
        {"`a\tb`", FS_EPARSE, "field path: control character at byte 2"},
        {"a.\xC3", FS_EUTF8, "field path: invalid UTF-8 at byte 2"},
        {"\xED\xA0\x80", FS_EUTF8, "field path: invalid UTF-8 at byte 0"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fsval_path p = {NULL, 0};
        fserr e = {0};
        int rc = fsval_path_parse(cases[i].path, &p, &e);
        if (rc != cases[i].code || strcmp(e.msg, cases[i].want) != 0)
            fail_msg("%s: got %s \"%s\"", cases[i].path, fserr_name(rc), e.msg);
        assert_null(p.segs);
    }
}

static void test_field_path_format_round_trips(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"address.city", "address.city"},
        {"`a.b`.c", "`a.b`.c"},
        {"`with space`.x", "`with space`.x"},
        {"1num._ok9", "`1num`._ok9"},
        {"\xE6\x97\xA5.x", "`\xE6\x97\xA5`.x"},
        {"`a\\`b\\\\c`", "`a\\`b\\\\c`"},
        {"`plain`", "plain"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fsval_path p, q;
        buf b;
        buf_init(&b, 0);
        assert_int_equal(fsval_path_parse(cases[i].in, &p, NULL), 0);
        assert_int_equal(fsval_path_format(&p, &b), 0);
        assert_string_equal(buf_str(&b), cases[i].out);
        assert_int_equal(fsval_path_parse(buf_str(&b), &q, NULL), 0);
        assert_int_equal(q.n, p.n);
        for (size_t j = 0; j < p.n; j++)
            assert_string_equal(q.segs[j].p, p.segs[j].p);
        fsval_path_release(&p);
        fsval_path_release(&q);
        buf_release(&b);
    }
}

static void test_lookup_follows_paths_through_maps(void **state)
{
    size_t len;
    char *text = read_file(FIXTURES "all_types.in.json", &len);
    struct fsdoc doc;
    struct fsval_path p;
    const fsval *v;
    static const char *const missing[] = {"address.country", "nope", "s.x", "tags.a",
                                          "address.city.x"};
    (void)state;

    assert_int_equal(fsdoc_parse(text, len, &doc, NULL), 0);
    assert_int_equal(fsval_path_parse("address.city", &p, NULL), 0);
    v = fsval_lookup(&doc.fields, &p);
    assert_non_null(v);
    assert_string_equal(v->u.s.p, "Paris");
    fsval_path_release(&p);
    assert_int_equal(fsval_path_parse("`a.b`", &p, NULL), 0);
    v = fsval_lookup(&doc.fields, &p);
    assert_true(v && strcmp(v->u.s.p, "dotted") == 0);
    fsval_path_release(&p);
    assert_int_equal(fsval_path_parse("\xF0\x9F\x98\x80", &p, NULL), 0);
    v = fsval_lookup(&doc.fields, &p);
    assert_true(v && strcmp(v->u.s.p, "emoji key") == 0);
    fsval_path_release(&p);
    assert_int_equal(fsval_path_parse("address", &p, NULL), 0);
    v = fsval_lookup(&doc.fields, &p);
    assert_true(v && v->type == FSVAL_MAP);
    fsval_path_release(&p);
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        assert_int_equal(fsval_path_parse(missing[i], &p, NULL), 0);
        assert_null(fsval_lookup(&doc.fields, &p));
        fsval_path_release(&p);
    }
    p.n = 0;
    p.segs = NULL;
    assert_null(fsval_lookup(&doc.fields, &p));
    assert_null(fsval_map_get(NULL, "a", 1));
    fsdoc_release(&doc);
    free(text);
}

static void test_heap_objects_and_type_names(void **state)
{
    static const char *const names[] = {"null",   "boolean",   "integer",  "double",
                                        "timestamp", "string", "bytes",    "reference",
                                        "geoPoint", "array",   "map"};
    fsval *v = fsval_new();
    struct fsdoc *doc = fsdoc_new();
    (void)state;

    assert_int_equal(v->type, FSVAL_NULL);
    assert_int_equal(fsval_parse("{\"stringValue\":\"x\"}", 19, v, NULL), 0);
    fsval_free(v);
    fsval_free(NULL);
    assert_int_equal(doc->fields.type, FSVAL_MAP);
    fsdoc_free(doc);
    fsdoc_free(NULL);
    for (int t = FSVAL_NULL; t <= FSVAL_MAP; t++)
        assert_string_equal(fsval_type_name((enum fsval_type)t), names[t]);
    assert_string_equal(fsval_type_name((enum fsval_type)99), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_and_boolean_values_decode),
        cmocka_unit_test(test_integer_value_keeps_full_int64_range),
        cmocka_unit_test(test_integer_value_overflow_and_garbage_are_refused),
        cmocka_unit_test(test_double_value_keeps_nan_infinities_and_negative_zero),
        cmocka_unit_test(test_double_value_prints_java_style_inputs_exactly),
        cmocka_unit_test(test_double_value_errors_are_refused),
        cmocka_unit_test(test_timestamp_value_normalises_offsets_to_utc),
        cmocka_unit_test(test_timestamp_value_decodes_to_seconds_and_nanos),
        cmocka_unit_test(test_bad_timestamps_are_refused_with_the_field_path),
        cmocka_unit_test(test_document_error_path_matches_the_documented_form),
        cmocka_unit_test(test_time_format_prints_the_fewest_exact_digit_groups),
        cmocka_unit_test(test_time_round_trips_across_the_whole_range),
        cmocka_unit_test(test_string_values_match_the_webchannel_table),
        cmocka_unit_test(test_string_value_keeps_nul_bytes_and_prints_them_escaped),
        cmocka_unit_test(test_bytes_value_decodes_standard_base64),
        cmocka_unit_test(test_bytes_value_refuses_bad_base64),
        cmocka_unit_test(test_reference_value_keeps_the_full_name),
        cmocka_unit_test(test_geo_point_missing_members_mean_zero),
        cmocka_unit_test(test_geo_point_out_of_range_or_malformed_is_refused),
        cmocka_unit_test(test_empty_map_and_array_decode),
        cmocka_unit_test(test_value_object_must_have_exactly_one_kind),
        cmocka_unit_test(test_map_and_array_members_are_checked),
        cmocka_unit_test(test_nesting_at_the_cap_decodes_and_past_it_fails),
        cmocka_unit_test(test_duplicate_field_names_are_refused),
        cmocka_unit_test(test_error_paths_name_nested_fields_and_indexes),
        cmocka_unit_test(test_long_values_are_shortened_in_messages),
        cmocka_unit_test(test_document_decodes_name_times_and_fields),
        cmocka_unit_test(test_golden_fixtures_print_as_recorded),
        cmocka_unit_test(test_golden_error_fixtures_give_their_messages),
        cmocka_unit_test(test_document_without_fields_has_an_empty_map),
        cmocka_unit_test(test_document_errors_name_the_member),
        cmocka_unit_test(test_decode_from_a_shared_doc_and_token),
        cmocka_unit_test(test_failed_decodes_free_what_they_built),
        cmocka_unit_test(test_to_json_keeps_what_plain_json_would_lose),
        cmocka_unit_test(test_to_json_respects_the_buffer_cap),
        cmocka_unit_test(test_equal_treats_nan_as_equal_and_signed_zeros_as_different),
        cmocka_unit_test(test_equal_is_deep_and_strict_about_types),
        cmocka_unit_test(test_maps_compare_and_hash_regardless_of_member_order),
        cmocka_unit_test(test_hash_is_stable_across_builds),
        cmocka_unit_test(test_field_paths_parse_plain_quoted_and_unicode_segments),
        cmocka_unit_test(test_field_path_errors_say_where),
        cmocka_unit_test(test_field_path_format_round_trips),
        cmocka_unit_test(test_lookup_follows_paths_through_maps),
        cmocka_unit_test(test_heap_objects_and_type_names),
    };
    return cmocka_run_group_tests_name("value", tests, NULL, NULL);
}
