/*
 * test_json.c - the strict tokenizer: token layout and O(1) skipping, RFC 8259 validation
 * (syntax, numbers, UTF-8, escapes, surrogates, control characters) with byte offsets in the
 * messages, limits against hostile input, and the read helpers (lookup, iteration, decoding,
 * integers, doubles, duplicate keys).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "firestore/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(json_doc *d, const char *s, fserr *e)
{
    return json_parse(d, s, strlen(s), e);
}

/* Parses s, expecting failure with code and a message containing want. */
static void expect_error(const char *s, size_t n, int code, const char *want)
{
    json_doc d;
    fserr e = {0};
    int rc;

    json_doc_init(&d);
    rc = json_parse(&d, s, n, &e);
    if (rc != code || !strstr(e.msg, want))
        print_error("input \"%.*s\": rc %s, message \"%s\", wanted %s with \"%s\"\n", (int)n, s,
                    fserr_name(rc), e.msg, fserr_name(code), want);
    assert_int_equal(rc, code);
    assert_non_null(strstr(e.msg, want));
    assert_int_equal(d.ntoks, 0);
    json_doc_release(&d);
}

static void expect_ok(const char *s, size_t n)
{
    json_doc d;
    fserr e = {0};
    int rc;

    json_doc_init(&d);
    rc = json_parse(&d, s, n, &e);
    if (rc)
        print_error("input \"%.*s\": %s\n", (int)n, s, e.msg);
    assert_int_equal(rc, 0);
    json_doc_release(&d);
}

/* Decodes string token tok into a fresh buffer (the caller releases it). */
static buf unescaped(const json_doc *d, int tok)
{
    buf b;
    buf_init(&b, 0);
    assert_int_equal(json_str_unescape(d, tok, &b, NULL), 0);
    return b;
}

static void test_scalars_parse_into_one_token(void **state)
{
    static const struct {
        const char *text;
        int type;
        unsigned off, len;
    } cases[] = {
        {"true", JSON_TRUE, 0, 4},    {" false ", JSON_FALSE, 1, 5}, {"null", JSON_NULL, 0, 4},
        {"-12.5e3", JSON_NUMBER, 0, 7}, {"\"abc\"", JSON_STRING, 1, 3}, {"\"\"", JSON_STRING, 1, 0},
        {"\r\n\t 0", JSON_NUMBER, 4, 1},
    };
    json_doc d;
    (void)state;

    json_doc_init(&d);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(&d, cases[i].text, NULL), 0);
        assert_int_equal(d.ntoks, 1);
        assert_int_equal(json_tok_at(&d, 0)->type, cases[i].type);
        assert_int_equal(json_tok_at(&d, 0)->off, cases[i].off);
        assert_int_equal(json_tok_at(&d, 0)->len, cases[i].len);
        assert_int_equal(json_tok_at(&d, 0)->end, 1);
        assert_int_equal(json_tok_at(&d, 0)->count, 0);
    }
    json_doc_release(&d);
}

static void test_tokens_record_offsets_counts_and_subtree_end(void **state)
{
    const char *s = "{\"a\":[1,{\"b\":null},[]],\"c\":\"x\"}";
    json_doc d;
    const json_tok *t;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, s, NULL), 0);
    /* 0 {  1 "a"  2 [  3 1  4 {  5 "b"  6 null  7 []  8 "c"  9 "x" */
    assert_int_equal(d.ntoks, 10);
    t = json_tok_at(&d, 0);
    assert_int_equal(t->type, JSON_OBJECT);
    assert_int_equal(t->count, 2);
    assert_int_equal(t->end, 10);
    assert_int_equal(t->off, 0);
    assert_int_equal(t->len, strlen(s));
    t = json_tok_at(&d, 2);
    assert_int_equal(t->type, JSON_ARRAY);
    assert_int_equal(t->count, 3);
    assert_int_equal(t->end, 8);
    assert_int_equal(t->off, 5);
    assert_int_equal(t->len, 17);
    t = json_tok_at(&d, 4);
    assert_int_equal(t->type, JSON_OBJECT);
    assert_int_equal(t->count, 1);
    assert_int_equal(t->end, 7);
    t = json_tok_at(&d, 7);
    assert_int_equal(t->type, JSON_ARRAY);
    assert_int_equal(t->count, 0);
    assert_int_equal(t->end, 8);
    assert_int_equal(t->len, 2);
    t = json_tok_at(&d, 9);
    assert_int_equal(t->type, JSON_STRING);
    assert_memory_equal(s + t->off, "x", 1);
    json_doc_release(&d);
}

static void test_skipping_a_value_takes_one_step(void **state)
{
    const char *s = "[[1,[2,[3,[4]]]],{\"k\":{\"k\":{}}},5]";
    json_doc d;
    int i, n = 0;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, s, NULL), 0);
    for (i = json_child(&d, 0); i >= 0; i = json_sibling(&d, 0, i))
        n++;
    assert_int_equal(n, 3);
    i = json_arr_at(&d, 0, 2);
    assert_int_equal(json_tok_at(&d, i)->type, JSON_NUMBER);
    assert_int_equal((int)json_tok_at(&d, json_arr_at(&d, 0, 1))->end, i);
    assert_int_equal(json_arr_at(&d, 0, 3), JSON_NONE);
    json_doc_release(&d);
}

static void test_iteration_visits_members_and_elements_in_order(void **state)
{
    const char *s = "{\"x\":[10,20,30],\"y\":{},\"z\":true}";
    static const char *keys[] = {"x", "y", "z"};
    json_doc d;
    int k, i, n = 0;
    int64_t v, want = 10;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, s, NULL), 0);
    for (k = json_child(&d, 0); k >= 0; k = json_sibling(&d, 0, k))
        assert_true(json_str_eq(&d, k, keys[n++]));
    assert_int_equal(n, 3);
    i = json_obj_get(&d, 0, "x");
    for (k = json_child(&d, i); k >= 0; k = json_sibling(&d, i, k), want += 10) {
        assert_int_equal(json_int64(&d, k, &v, NULL), 0);
        assert_int_equal(v, want);
    }
    assert_int_equal(want, 40);
    /* empty containers and scalars have no children */
    assert_int_equal(json_child(&d, json_obj_get(&d, 0, "y")), JSON_NONE);
    assert_int_equal(json_child(&d, json_obj_get(&d, 0, "z")), JSON_NONE);
    assert_int_equal(json_child(&d, 99), JSON_NONE);
    assert_int_equal(json_sibling(&d, 0, 99), JSON_NONE);
    assert_int_equal(json_type_of(&d, JSON_NONE), 0);
    json_doc_release(&d);
}

static void test_whitespace_only_between_tokens(void **state)
{
    (void)state;
    expect_ok(" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n", 36);
    expect_error("\xEF\xBB\xBF{}", 5, FS_EPARSE, "byte 0: expected a value, found byte 0xEF");
    expect_error("[1\x0b]", 4, FS_EPARSE, "byte 2");
    expect_error("\f1", 2, FS_EPARSE, "byte 0");
}

static void test_syntax_errors_name_the_byte_and_the_expectation(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"", "byte 0: expected a value, found end of input"},
        {"   ", "byte 3: expected a value, found end of input"},
        {"[1,]", "byte 3: expected a value, found ']'"},
        {"[1 2]", "byte 3: expected ',' or ']' after an array element, found '2'"},
        {"{\"a\" 1}", "byte 5: expected ':' after an object key, found '1'"},
        {"{\"a\":1,}", "byte 7: expected a string key, found '}'"},
        {"{1:2}", "byte 1: expected a string key, found '1'"},
        {"{'a':1}", "byte 1: expected a string key"},
        {"{\"a\":1 \"b\":2}", "byte 7: expected ',' or '}' after an object member"},
        {"[1]]", "byte 3: expected the end of the input, found ']'"},
        {"{} {}", "byte 3: expected the end of the input"},
        {"[", "byte 1: expected a value, found end of input"},
        {"{\"a\":1", "byte 6: expected ',' or '}'"},
        {"[\"abc", "byte 5: expected '\"' to end the string, found end of input"},
        {"tru", "byte 0: expected a value"},
        {"nul", "byte 0: expected a value"},
        {"True", "byte 0: expected a value, found 'T'"},
        {"truex", "byte 4: expected the end of the input, found 'x'"},
        {"[undefined]", "byte 1: expected a value"},
        {"[,1]", "byte 1: expected a value, found ','"},
        {"{\"a\"}", "byte 4: expected ':'"},
        {"{\"a\":}", "byte 5: expected a value, found '}'"},
        {"]", "byte 0: expected a value"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].text, strlen(cases[i].text), FS_EPARSE, cases[i].want);
}

static void test_numbers_follow_the_rfc_grammar(void **state)
{
    static const char *good[] = {"0",     "-0",      "1",   "-1",        "10",     "1.5",
                                 "-0.5",  "1e5",     "1E5", "1e+5",      "1e-5",   "0.0e0",
                                 "1.0E300", "123456789012345678901234567890", "0e0", "-0.0"};
    static const struct {
        const char *text;
        const char *want;
    } bad[] = {
        {"01", "byte 1: expected no digit after a leading zero"},
        {"-01", "byte 2: expected no digit after a leading zero"},
        {"-", "byte 1: expected a digit"},
        {"1.", "byte 2: expected a digit after '.'"},
        {"1.e5", "byte 2: expected a digit after '.'"},
        {".5", "byte 0: expected a value"},
        {"+1", "byte 0: expected a value"},
        {"1e", "byte 2: expected a digit in the exponent"},
        {"1e+", "byte 3: expected a digit in the exponent"},
        {"0x10", "byte 1: expected the end of the input, found 'x'"},
        {"NaN", "byte 0: expected a value"},
        {"Infinity", "byte 0: expected a value"},
        {"-Infinity", "byte 1: expected a digit"},
        {"[1.5.5]", "byte 4: expected ',' or ']'"},
        {"- 1", "byte 1: expected a digit"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        expect_ok(good[i], strlen(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_error(bad[i].text, strlen(bad[i].text), FS_EPARSE, bad[i].want);
}

static void test_int_flag_marks_numbers_without_fraction_or_exponent(void **state)
{
    json_doc d;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "[7,-7,7.0,7e0,0]", NULL), 0);
    assert_true(json_tok_at(&d, 1)->flags & JSON_F_INT);
    assert_true(json_tok_at(&d, 2)->flags & JSON_F_INT);
    assert_false(json_tok_at(&d, 3)->flags & JSON_F_INT);
    assert_false(json_tok_at(&d, 4)->flags & JSON_F_INT);
    assert_true(json_tok_at(&d, 5)->flags & JSON_F_INT);
    json_doc_release(&d);
}

static void test_valid_utf8_is_kept_raw(void **state)
{
    /* é, 日本, 😀, U+FFFF, U+10FFFF, U+0080, U+07FF, U+E000 */
    const char *s = "\"\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF "
                    "\xF4\x8F\xBF\xBF \xC2\x80 \xDF\xBF \xEE\x80\x80\"";
    json_doc d;
    buf b;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, s, NULL), 0);
    assert_false(json_tok_at(&d, 0)->flags & JSON_F_ESCAPED);
    b = unescaped(&d, 0);
    assert_int_equal(b.len, strlen(s) - 2);
    assert_memory_equal(b.p, s + 1, b.len);
    buf_release(&b);
    json_doc_release(&d);
}

static void test_invalid_utf8_is_refused_with_its_offset(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        /* overlong NUL */
        {"\"\xC0\x80\"", "byte 1: expected valid UTF-8 in the string, found byte 0xC0"},
        {"\"\xC1\xBF\"", "byte 1"},                     /* overlong 2-byte */
        {"\"\xE0\x80\x80\"", "byte 1"},                 /* overlong 3-byte */
        {"\"\xE0\x9F\xBF\"", "byte 1"},                 /* overlong U+07FF */
        {"\"\xF0\x80\x80\x80\"", "byte 1"},             /* overlong 4-byte */
        {"\"\xF0\x8F\xBF\xBF\"", "byte 1"},             /* overlong U+FFFF */
        {"\"\xED\xA0\x80\"", "byte 1"},                 /* U+D800 surrogate */
        {"\"\xED\xBF\xBF\"", "byte 1"},                 /* U+DFFF surrogate */
        {"\"\xF4\x90\x80\x80\"", "byte 1"},             /* U+110000 */
        {"\"\xF5\x80\x80\x80\"", "byte 1"},
        {"\"\xFF\"", "found byte 0xFF"},
        {"\"ab\x80\"", "byte 3: expected valid UTF-8"}, /* lone continuation */
        {"\"\xC3\"", "byte 1"},                         /* truncated before the quote */
        {"\"\xE6\x97\"", "byte 1"},
        {"\"\xF0\x9F\x98\"", "byte 1"},
        {"\"\xC3", "byte 1"},                           /* truncated at the end */
        {"\"\xC3\xA9\xC3\x28\"", "byte 3"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].text, strlen(cases[i].text), FS_EUTF8, cases[i].want);
    /* outside strings, non-ASCII bytes are a syntax error */
    expect_error("[\xC3\xA9]", 4, FS_EPARSE, "byte 1: expected a value, found byte 0xC3");
}

static void test_escapes_decode_including_gson_html_safe_ones(void **state)
{
    static const struct {
        const char *json;
        const char *want;
        size_t wlen;
    } cases[] = {
        {"\"\\u003cb\\u003e\"", "<b>", 3},
        {"\"\\u0026\\u003d\\u0027\"", "&='", 3},
        {"\"a\\u2028b\"", "a\xE2\x80\xA8" "b", 5},
        {"\"\\u0001\"", "\x01", 1},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8},
        {"\"\\u00e9\\u00C9\"", "\xC3\xA9\xC3\x89", 4},
        {"\"\\u65e5\\u672c\"", "\xE6\x97\xA5\xE6\x9C\xAC", 6},
        {"\"x\\u0000y\"", "x\0y", 3},
        {"\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"", "\x7f\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF",
         11},
        {"\"pre\\npost\"", "pre\npost", 8},
    };
    json_doc d;
    (void)state;

    json_doc_init(&d);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf b;
        assert_int_equal(parse(&d, cases[i].json, NULL), 0);
        assert_true(json_tok_at(&d, 0)->flags & JSON_F_ESCAPED);
        b = unescaped(&d, 0);
        assert_int_equal(b.len, cases[i].wlen);
        assert_memory_equal(b.p, cases[i].want, cases[i].wlen);
        assert_true(json_str_eqn(&d, 0, cases[i].want, cases[i].wlen));
        buf_release(&b);
    }
    json_doc_release(&d);
}

static void test_surrogate_pairs_decode_to_one_four_byte_character(void **state)
{
    json_doc d;
    buf b;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "\"\\ud83d\\ude00|\\uD83D\\uDE00|\\udbff\\udfff\"", NULL), 0);
    b = unescaped(&d, 0);
    assert_int_equal(b.len, 14);
    assert_memory_equal(b.p, "\xF0\x9F\x98\x80|\xF0\x9F\x98\x80|\xF4\x8F\xBF\xBF", 14);
    assert_true(json_str_eq(&d, 0, "\xF0\x9F\x98\x80|\xF0\x9F\x98\x80|\xF4\x8F\xBF\xBF"));
    buf_release(&b);
    json_doc_release(&d);
}

static void test_lone_surrogates_are_refused(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"\"\\ud83d\"", "byte 1: lone high surrogate \\uD83D"},
        {"\"ab\\ude00\"", "byte 3: lone low surrogate \\uDE00"},
        {"\"\\ud83dx\"", "lone high surrogate"},
        {"\"\\ud83d\\u0041\"", "lone high surrogate"},
        {"\"\\ud83d\\ud83d\"", "lone high surrogate"},
        {"\"\\ud83d\\n\"", "lone high surrogate"},
        {"\"\\ud83d\\", "lone high surrogate"},
        {"\"\\ude00\\ud83d\"", "lone low surrogate"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].text, strlen(cases[i].text), FS_EUTF8, cases[i].want);
}

static void test_bad_escapes_are_refused(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"\"\\x41\"", "byte 2: expected an escape character"},
        {"\"\\'\"", "byte 2: expected an escape character"},
        {"\"\\u12\"", "byte 3: expected 4 hex digits after '\\u'"},
        {"\"\\u12G4\"", "byte 3: expected 4 hex digits"},
        {"\"\\U0041\"", "byte 2: expected an escape character"},
        {"\"\\", "byte 2: expected an escape character after '\\', found end of input"},
        {"\"\\u004", "byte 3: expected 4 hex digits"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i].text, strlen(cases[i].text), FS_EPARSE, cases[i].want);
}

static void test_raw_control_characters_in_strings_are_refused(void **state)
{
    (void)state;
    expect_error("\"a\nb\"", 5, FS_EPARSE,
                 "byte 2: expected no raw control character in a string, found byte 0x0A");
    expect_error("\"\t\"", 3, FS_EPARSE, "byte 1");
    expect_error("\"\x01\"", 3, FS_EPARSE, "found byte 0x01");
    expect_error("\"\x1f\"", 3, FS_EPARSE, "found byte 0x1F");
    expect_error("\"a\0b\"", 5, FS_EPARSE, "byte 2: expected no raw control character");
    expect_ok("\"\x7f\"", 3); /* DEL is not a control character for JSON */
}

static void test_string_scanning_finds_special_bytes_at_any_position(void **state)
{
    /* the scanner skips 8 plain bytes at a time: put each kind of special byte at every offset */
    static const struct {
        const char *bytes;
        size_t n;
        int code;  /* 0: valid */
        size_t tok_len; /* of the whole string when valid */
    } kinds[] = {
        {"\x01", 1, FS_EPARSE, 0}, {"\x1f", 1, FS_EPARSE, 0},   {"\n", 1, FS_EPARSE, 0},
        {"\x80", 1, FS_EUTF8, 0},  {"\xC3\xA9", 2, 0, 2},        {"\\n", 2, 0, 2},
        {"\x7f", 1, 0, 1},         {"\xF0\x9F\x98\x80", 4, 0, 4}, {"\" ", 2, FS_EPARSE, 0},
    };
    json_doc d;
    char s[64];
    (void)state;

    json_doc_init(&d);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (size_t at = 0; at < 24; at++) {
            size_t n = 0;
            int rc;
            s[n++] = '"';
            memset(s + n, 'a', at);
            n += at;
            memcpy(s + n, kinds[k].bytes, kinds[k].n);
            n += kinds[k].n;
            memset(s + n, 'b', 17);
            n += 17;
            s[n++] = '"';
            rc = json_parse(&d, s, n, NULL);
            if (rc != kinds[k].code)
                fail_msg("kind %zu at %zu: %s", k, at, fserr_name(rc));
            if (!rc)
                assert_int_equal(json_tok_at(&d, 0)->len, at + kinds[k].tok_len + 17);
        }
    }
    json_doc_release(&d);
}

static void test_nul_escape_becomes_a_real_byte_counted_in_length(void **state)
{
    json_doc d;
    buf b;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "{\"k\\u0000\":\"\\u0000\\u0000\"}", NULL), 0);
    b = unescaped(&d, 2);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.p, "\0\0", 3); /* and the terminating NUL */
    assert_int_equal(json_obj_getn(&d, 0, "k\0", 2), 2);
    assert_int_equal(json_obj_get(&d, 0, "k"), JSON_NONE);
    assert_false(json_str_eq(&d, 2, ""));
    buf_release(&b);
    json_doc_release(&d);
}

static void test_escaped_flag_is_set_only_on_strings_with_escapes(void **state)
{
    json_doc d;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "[\"plain \xC3\xA9\",\"a\\/b\",\"\"]", NULL), 0);
    assert_false(json_tok_at(&d, 1)->flags & JSON_F_ESCAPED);
    assert_true(json_tok_at(&d, 2)->flags & JSON_F_ESCAPED);
    assert_false(json_tok_at(&d, 3)->flags & JSON_F_ESCAPED);
    assert_int_equal(json_tok_at(&d, 2)->len, 4); /* raw a\/b */
    json_doc_release(&d);
}

static char *nested(const char *open, const char *close, int levels, const char *inner)
{
    buf b;
    buf_init(&b, 0);
    for (int i = 0; i < levels; i++)
        buf_adds(&b, open);
    buf_adds(&b, inner);
    for (int i = 0; i < levels; i++)
        buf_adds(&b, close);
    return buf_take(&b);
}

static void test_depth_limit_refuses_deeper_nesting(void **state)
{
    json_doc d;
    fserr e = {0};
    char *s;
    (void)state;

    json_doc_init(&d);
    json_doc_set_limits(&d, 0, 4);
    assert_int_equal(parse(&d, "[[[[1]]]]", &e), 0);
    assert_int_equal(parse(&d, "[[[{}]]]", &e), 0);
    assert_int_equal(parse(&d, "[[[[[1]]]]]", &e), FS_ETOOBIG);
    assert_string_equal(e.msg, "json: byte 4: nesting deeper than 4 levels");
    assert_int_equal(parse(&d, "[[[[{}]]]]", &e), FS_ETOOBIG);
    assert_int_equal(parse(&d, "{\"a\":{\"b\":{\"c\":{\"d\":[]}}}}", &e), FS_ETOOBIG);
    json_doc_release(&d);

    /* the default allows 128 levels, not 129 */
    json_doc_init(&d);
    s = nested("[", "]", JSON_DEFAULT_MAX_DEPTH, "0");
    assert_int_equal(parse(&d, s, &e), 0);
    free(s);
    s = nested("[", "]", JSON_DEFAULT_MAX_DEPTH + 1, "0");
    assert_int_equal(parse(&d, s, &e), FS_ETOOBIG);
    free(s);
    /* a hostile 100 000 levels is refused, not a stack overflow */
    s = nested("{\"a\":", "}", 100000, "0");
    assert_int_equal(parse(&d, s, &e), FS_ETOOBIG);
    free(s);
    json_doc_release(&d);
}

static void test_token_limit_refuses_larger_input(void **state)
{
    json_doc d;
    fserr e = {0};
    (void)state;

    json_doc_init(&d);
    json_doc_set_limits(&d, 3, 0);
    assert_int_equal(parse(&d, "[1,2]", &e), 0);
    assert_int_equal(parse(&d, "[1,2,3]", &e), FS_ETOOBIG);
    assert_string_equal(e.msg, "json: byte 5: more than 3 tokens");
    assert_int_equal(parse(&d, "{\"a\":1}", &e), 0);
    assert_int_equal(parse(&d, "{\"a\":1,\"b\":2}", &e), FS_ETOOBIG);
    assert_int_equal(d.ntoks, 0);
    json_doc_release(&d);
    assert_int_equal(d.max_toks, 3); /* release keeps the limits */
}

static void test_token_array_is_reused_across_parses(void **state)
{
    json_doc d;
    json_tok *first;
    buf b;
    (void)state;

    buf_init(&b, 0);
    buf_addc(&b, '[');
    for (int i = 0; i < 1000; i++)
        buf_printf(&b, "%s%d", i ? "," : "", i);
    buf_addc(&b, ']');
    json_doc_init(&d);
    assert_int_equal(json_parse(&d, b.p, b.len, NULL), 0);
    assert_int_equal(d.ntoks, 1001);
    assert_true(d.cap >= 1001);
    first = d.toks;
    for (int i = 0; i < 100; i++) {
        assert_int_equal(parse(&d, "{\"name\":\"x\",\"v\":[1,2,3]}", NULL), 0);
        assert_ptr_equal(d.toks, first);
        assert_int_equal(d.ntoks, 8);
        assert_int_equal(json_tok_at(&d, 0)->end, 8);
    }
    json_doc_release(&d);
    buf_release(&b);
}

static void test_failed_parse_leaves_no_tokens(void **state)
{
    json_doc d;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "[1,2,3]", NULL), 0);
    assert_int_equal(parse(&d, "[1,2,", NULL), FS_EPARSE);
    assert_int_equal(d.ntoks, 0);
    assert_null(d.src);
    assert_int_equal(json_obj_get(&d, 0, "a"), JSON_NONE);
    assert_int_equal(json_type_of(&d, 0), 0);
    json_doc_release(&d);
}

static void test_obj_get_finds_members_by_decoded_key(void **state)
{
    const char *s = "{\"name\":\"n\",\"\\u0061\":1,\"\\u00e9\":2,\"ab\":3,\"a\":4}";
    json_doc d;
    int64_t v;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, s, NULL), 0);
    assert_true(json_str_eq(&d, json_obj_get(&d, 0, "name"), "n"));
    assert_int_equal(json_int64(&d, json_obj_get(&d, 0, "a"), &v, NULL), 0);
    assert_int_equal(v, 1); /* the first of duplicate keys */
    assert_int_equal(json_int64(&d, json_obj_get(&d, 0, "\xC3\xA9"), &v, NULL), 0);
    assert_int_equal(v, 2);
    assert_int_equal(json_int64(&d, json_obj_get(&d, 0, "ab"), &v, NULL), 0);
    assert_int_equal(v, 3);
    assert_int_equal(json_obj_get(&d, 0, "missing"), JSON_NONE);
    assert_int_equal(json_obj_get(&d, 0, "nam"), JSON_NONE);
    assert_int_equal(json_obj_get(&d, 2, "a"), JSON_NONE);  /* a string is not an object */
    assert_int_equal(json_obj_get(&d, -1, "a"), JSON_NONE);
    assert_int_equal(parse(&d, "{}", NULL), 0);
    assert_int_equal(json_obj_get(&d, 0, "a"), JSON_NONE);
    json_doc_release(&d);
}

static void test_str_eq_compares_decoded_text_without_allocating(void **state)
{
    json_doc d;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "[\"abc\",\"a\\u0062c\",\"\",5]", NULL), 0);
    assert_true(json_str_eq(&d, 1, "abc"));
    assert_false(json_str_eq(&d, 1, "ab"));
    assert_false(json_str_eq(&d, 1, "abcd"));
    assert_true(json_str_eq(&d, 2, "abc"));
    assert_false(json_str_eq(&d, 2, "ab"));
    assert_false(json_str_eq(&d, 2, "abd"));
    assert_false(json_str_eq(&d, 2, "abcabc"));
    assert_true(json_str_eq(&d, 3, ""));
    assert_false(json_str_eq(&d, 4, "5")); /* a number is not a string */
    json_doc_release(&d);
}

static void test_lookups_compare_whole_keys(void **state)
{
    /* keys that are prefixes and extensions of each other, raw and escaped, and the empty key */
    const char *s = "{\"ab\":1,\"abc\":2,\"a\\u0062cd\":3,\"\":4,\"b\\\\\":5,\"x\\u0000\":6}";
    static const struct {
        const char *key;
        int64_t want; /* 0: absent */
    } cases[] = {
        {"ab", 1},    {"abc", 2}, {"abcd", 3}, {"", 4},  {"b\\", 5}, {"a", 0},
        {"abcde", 0}, {"abd", 0}, {"b", 0},    {"x", 0}, {"ba", 0},
    };
    json_doc d;
    int64_t v;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, s, NULL), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *key = cases[i].key;
        int a = json_obj_get(&d, 0, key), b = json_obj_getn(&d, 0, key, strlen(key));
        if (a != b || (a < 0) != (cases[i].want == 0))
            fail_msg("key \"%s\": get %d, getn %d", key, a, b);
        if (a >= 0) {
            assert_int_equal(json_int64(&d, a, &v, NULL), 0);
            assert_int_equal(v, cases[i].want);
        }
        /* the key tokens themselves, through json_str_eq */
        for (int k = json_child(&d, 0); k >= 0; k = json_sibling(&d, 0, k))
            assert_int_equal(json_str_eq(&d, k, key), k + 1 == a);
    }
    /* a key holding a NUL byte matches only by length (no C string can spell it) */
    assert_int_equal(json_obj_getn(&d, 0, "x\0", 2), 12);
    json_doc_release(&d);
}

static void test_int64_of_plain_integers_of_every_length(void **state)
{
    /* 1 to 19 digits, both signs: the short ones take a shortcut, the long ones the full path */
    char text[32];
    json_doc d;
    int64_t v, want;
    (void)state;

    json_doc_init(&d);
    for (int digits = 1; digits <= 19; digits++) {
        for (int neg = 0; neg < 2; neg++) {
            want = 0;
            for (int i = 0; i < digits; i++)
                want = want * 10 + (i % 9) + 1;
            snprintf(text, sizeof(text), "%s%lld", neg ? "-" : "", (long long)want);
            assert_int_equal(parse(&d, text, NULL), 0);
            assert_int_equal(json_int64(&d, 0, &v, NULL), 0);
            assert_true(v == (neg ? -want : want));
        }
    }
    assert_int_equal(parse(&d, "-0", NULL), 0);
    assert_int_equal(json_int64(&d, 0, &v, NULL), 0);
    assert_true(v == 0);
    assert_int_equal(parse(&d, "999999999999999999", NULL), 0);
    assert_int_equal(json_int64(&d, 0, &v, NULL), 0);
    assert_true(v == 999999999999999999LL);
    assert_int_equal(parse(&d, "-999999999999999999", NULL), 0);
    assert_int_equal(json_int64(&d, 0, &v, NULL), 0);
    assert_true(v == -999999999999999999LL);
    json_doc_release(&d);
}

static void test_containers_close_back_into_their_parent(void **state)
{
    /* after a nested container closes, what may follow depends on the kind of its parent */
    json_doc d;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "{\"a\":[1,{\"b\":[2,[]]}],\"c\":{\"d\":{}},\"e\":3}", NULL), 0);
    assert_int_equal(json_tok_at(&d, 0)->count, 3);
    assert_int_equal(json_int64(&d, json_obj_get(&d, 0, "e"), &(int64_t){0}, NULL), 0);
    assert_int_equal(parse(&d, "[{\"a\":1},2,[3,{\"b\":{}}],[[]]]", NULL), 0);
    assert_int_equal(json_tok_at(&d, 0)->count, 4);
    assert_int_equal(json_tok_at(&d, 0)->end, d.ntoks);
    expect_error("{\"a\":[1],2}", 11, FS_EPARSE, "byte 9: expected a string key");
    expect_error("[{\"a\":1}:2]", 11, FS_EPARSE,
                 "byte 8: expected ',' or ']' after an array element");
    expect_error("{\"a\":{\"b\":[]]}", 14, FS_EPARSE,
                 "byte 12: expected ',' or '}' after an object member");
    expect_error("[[1],{}}", 8, FS_EPARSE, "byte 7: expected ',' or ']' after an array element");
    json_doc_release(&d);
}

static void test_duplicate_keys_are_found_in_small_and_large_objects(void **state)
{
    json_doc d;
    buf b;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "{\"a\":1,\"b\":2,\"c\":3}", NULL), 0);
    assert_false(json_obj_has_duplicates(&d, 0));
    assert_int_equal(parse(&d, "{\"a\":1,\"b\":2,\"a\":3}", NULL), 0);
    assert_true(json_obj_has_duplicates(&d, 0));
    assert_int_equal(parse(&d, "{\"a\":1,\"\\u0061\":2}", NULL), 0);
    assert_true(json_obj_has_duplicates(&d, 0));
    assert_int_equal(parse(&d, "{\"a\":{\"x\":1,\"x\":2}}", NULL), 0);
    assert_false(json_obj_has_duplicates(&d, 0)); /* only this object's own keys */
    assert_true(json_obj_has_duplicates(&d, 2));
    assert_int_equal(parse(&d, "[1,1]", NULL), 0);
    assert_false(json_obj_has_duplicates(&d, 0));

    for (int n = 17; n <= 2000; n = n * 3) {
        for (int dup = 0; dup < 2; dup++) {
            buf_init(&b, 0);
            buf_addc(&b, '{');
            for (int i = 0; i < n; i++)
                buf_printf(&b, "%s\"key%d\":%d", i ? "," : "", i, i);
            if (dup)
                buf_printf(&b, ",\"key\\u0030\":0"); /* "key0" again, escaped */
            buf_addc(&b, '}');
            assert_int_equal(json_parse(&d, b.p, b.len, NULL), 0);
            assert_int_equal(json_obj_has_duplicates(&d, 0), dup);
            buf_release(&b);
        }
    }
    json_doc_release(&d);
}

static void test_int64_reads_the_full_range_from_strings_and_numbers(void **state)
{
    static const struct {
        const char *json;
        int64_t want;
    } cases[] = {
        {"\"9223372036854775807\"", INT64_MAX},
        {"\"-9223372036854775808\"", INT64_MIN},
        {"9223372036854775807", INT64_MAX},
        {"-9223372036854775808", INT64_MIN},
        {"\"9007199254740993\"", 9007199254740993LL},
        {"\"-42\"", -42},
        {"7", 7},
        {"\"0\"", 0},
        {"\"-0\"", 0},
        {"7.0", 7},
        {"1e3", 1000},
        {"\"1.5e1\"", 15},
        {"100e-2", 1},
        {"0e99999999999999999999", 0},
        {"0.000", 0},
        {"9.223372036854775807e18", INT64_MAX},
        {"\"\\u0034\\u0032\"", 42},
    };
    json_doc d;
    int64_t v;
    (void)state;

    json_doc_init(&d);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(&d, cases[i].json, NULL), 0);
        v = 12345;
        assert_int_equal(json_int64(&d, 0, &v, NULL), 0);
        assert_true(v == cases[i].want);
    }
    json_doc_release(&d);
}

static void test_int64_refuses_overflow_and_non_integers(void **state)
{
    static const struct {
        const char *json;
        int code;
        const char *want;
    } cases[] = {
        {"\"9223372036854775808\"", FS_ERANGE, "9223372036854775808 is out of the int64 range"},
        {"\"-9223372036854775809\"", FS_ERANGE, "out of the int64 range"},
        {"9223372036854775808", FS_ERANGE, "out of the int64 range"},
        {"\"12345678901234567890\"", FS_ERANGE, "out of the int64 range"},
        {"1e19", FS_ERANGE, "out of the int64 range"},
        {"1e99999999999999999999", FS_ERANGE, "out of the int64 range"},
        {"1.5", FS_ETYPE, "1.5 is not an integer"},
        {"1e-400", FS_ETYPE, "not an integer"},
        {"\"abc\"", FS_ETYPE, "string is not a number"},
        {"\"\"", FS_ETYPE, "string is not a number"},
        {"\" 1\"", FS_ETYPE, "string is not a number"},
        {"\"+1\"", FS_ETYPE, "string is not a number"},
        {"\"1 \"", FS_ETYPE, "string is not a number"},
        {"\"0x10\"", FS_ETYPE, "string is not a number"},
        {"\"01\"", FS_ETYPE, "string is not a number"},
        {"true", FS_ETYPE, "expected a number, found true"},
        {"[1]", FS_ETYPE, "expected a number, found array"},
    };
    json_doc d;
    int64_t v;
    fserr e;
    (void)state;

    json_doc_init(&d);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(&d, cases[i].json, NULL), 0);
        fserr_clear(&e);
        assert_int_equal(json_int64(&d, 0, &v, &e), cases[i].code);
        if (!strstr(e.msg, cases[i].want))
            print_error("%s: %s\n", cases[i].json, e.msg);
        assert_non_null(strstr(e.msg, cases[i].want));
    }
    json_doc_release(&d);
}

static void test_double_reads_numbers_and_numeric_strings(void **state)
{
    json_doc d;
    fserr e;
    double v;
    buf b;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "[1.5,\"0.1\",1.0E300,-0.0,1e-400,3,\"-2.5e-3\"]", NULL), 0);
    assert_int_equal(json_double(&d, 1, &v, NULL), 0);
    assert_true(v == 1.5);
    assert_int_equal(json_double(&d, 2, &v, NULL), 0);
    assert_true(v == 0.1);
    assert_int_equal(json_double(&d, 3, &v, NULL), 0);
    assert_true(v == 1e300);
    assert_int_equal(json_double(&d, 4, &v, NULL), 0);
    assert_true(v == 0 && signbit(v));
    assert_int_equal(json_double(&d, 5, &v, NULL), 0); /* underflow rounds to zero */
    assert_true(v == 0);
    assert_int_equal(json_double(&d, 6, &v, NULL), 0);
    assert_true(v == 3);
    assert_int_equal(json_double(&d, 7, &v, NULL), 0);
    assert_true(v == -2.5e-3);

    assert_int_equal(parse(&d, "[1e400,-1e400,\"NaN\",\"1.5x\",null]", NULL), 0);
    assert_int_equal(json_double(&d, 1, &v, &e), FS_ERANGE);
    assert_string_equal(e.msg, "json: byte 1: number overflows a double");
    assert_int_equal(json_double(&d, 2, &v, &e), FS_ERANGE);
    assert_int_equal(json_double(&d, 3, &v, &e), FS_ETYPE); /* specials are the caller's */
    assert_int_equal(json_double(&d, 4, &v, &e), FS_ETYPE);
    assert_int_equal(json_double(&d, 5, &v, &e), FS_ETYPE);

    /* a number longer than the stack copy */
    buf_init(&b, 0);
    buf_adds(&b, "0.");
    for (int i = 0; i < 200; i++)
        buf_addc(&b, '0');
    buf_adds(&b, "25");
    assert_int_equal(json_parse(&d, b.p, b.len, NULL), 0);
    assert_int_equal(json_double(&d, 0, &v, NULL), 0);
    assert_true(v == 2.5e-201);
    buf_release(&b);
    json_doc_release(&d);
}

static void test_unescape_respects_the_buffer_cap(void **state)
{
    json_doc d;
    fserr e;
    buf b;
    (void)state;

    json_doc_init(&d);
    buf_init(&b, 3);
    assert_int_equal(parse(&d, "[\"abcd\",\"a\\u0062cd\",7]", NULL), 0);
    assert_int_equal(json_str_unescape(&d, 1, &b, &e), FS_ETOOBIG);
    assert_non_null(strstr(e.msg, "does not fit in 3 bytes"));
    assert_int_equal(json_str_unescape(&d, 2, &b, &e), FS_ETOOBIG);
    assert_int_equal(json_str_unescape(&d, 3, &b, &e), FS_ETYPE);
    assert_string_equal(e.msg, "json: token 3 is number, not a string");
    buf_release(&b);
    json_doc_release(&d);
}

static void test_raw_text_type_names_and_utf8_check(void **state)
{
    json_doc d;
    size_t n;
    const char *p;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, "{\"k\" : [ 1 , 2 ] }", NULL), 0);
    p = json_raw(&d, 2, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(p, "[ 1 , 2 ]", 9);
    p = json_raw(&d, 1, &n);
    assert_memory_equal(p, "k", n);
    json_doc_release(&d);

    assert_string_equal(json_type_name(JSON_OBJECT), "object");
    assert_string_equal(json_type_name(JSON_ARRAY), "array");
    assert_string_equal(json_type_name(JSON_STRING), "string");
    assert_string_equal(json_type_name(JSON_NUMBER), "number");
    assert_string_equal(json_type_name(JSON_TRUE), "true");
    assert_string_equal(json_type_name(JSON_FALSE), "false");
    assert_string_equal(json_type_name(JSON_NULL), "null");
    assert_string_equal(json_type_name(0), "none");

    assert_int_equal(json_utf8_check("ab\xC3\xA9", 4), 4);
    assert_int_equal(json_utf8_check("ab\xC3", 3), 2);
    assert_int_equal(json_utf8_check("\xED\xA0\x80", 3), 0);
    assert_int_equal(json_utf8_check("", 0), 0);
}

static void test_webchannel_payload_tokenizes_and_reads(void **state)
{
    const char *s =
        "[[1,[{\"targetChange\":{\"targetChangeType\":\"ADD\",\"targetIds\":[2]}}]],[2,[{"
        "\"documentChange\":{\"document\":{\"name\":\"projects/demo/databases/(default)/"
        "documents/employees/e1\",\"fields\":{\"name\":{\"stringValue\":\"Ana\"}},"
        "\"createTime\":\"2026-11-23T08:19:19.791064Z\",\"updateTime\":\"2026-11-23T08:19:19."
        "791064Z\"},\"targetIds\":[2]}}]],[3,[\"noop\"]]]";
    json_doc d;
    int arr, doc, n = 0;
    int64_t id;
    (void)state;

    json_doc_init(&d);
    assert_int_equal(parse(&d, s, NULL), 0);
    for (arr = json_child(&d, 0); arr >= 0; arr = json_sibling(&d, 0, arr)) {
        assert_int_equal(json_int64(&d, json_arr_at(&d, arr, 0), &id, NULL), 0);
        assert_int_equal(id, ++n);
    }
    assert_int_equal(n, 3);
    arr = json_arr_at(&d, json_arr_at(&d, json_arr_at(&d, 0, 1), 1), 0);
    doc = json_obj_get(&d, json_obj_get(&d, arr, "documentChange"), "document");
    assert_true(json_str_eq(&d, json_obj_get(&d, doc, "name"),
                            "projects/demo/databases/(default)/documents/employees/e1"));
    assert_true(
        json_str_eq(&d, json_obj_get(&d, doc, "updateTime"), "2026-11-23T08:19:19.791064Z"));
    assert_true(json_str_eq(&d, json_arr_at(&d, json_arr_at(&d, json_arr_at(&d, 0, 2), 1), 0),
                            "noop"));
    json_doc_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_parse_into_one_token),
        cmocka_unit_test(test_tokens_record_offsets_counts_and_subtree_end),
        cmocka_unit_test(test_skipping_a_value_takes_one_step),
        cmocka_unit_test(test_iteration_visits_members_and_elements_in_order),
        cmocka_unit_test(test_whitespace_only_between_tokens),
        cmocka_unit_test(test_syntax_errors_name_the_byte_and_the_expectation),
        cmocka_unit_test(test_numbers_follow_the_rfc_grammar),
        cmocka_unit_test(test_int_flag_marks_numbers_without_fraction_or_exponent),
        cmocka_unit_test(test_valid_utf8_is_kept_raw),
        cmocka_unit_test(test_invalid_utf8_is_refused_with_its_offset),
        cmocka_unit_test(test_escapes_decode_including_gson_html_safe_ones),
        cmocka_unit_test(test_surrogate_pairs_decode_to_one_four_byte_character),
        cmocka_unit_test(test_lone_surrogates_are_refused),
        cmocka_unit_test(test_bad_escapes_are_refused),
        cmocka_unit_test(test_raw_control_characters_in_strings_are_refused),
        cmocka_unit_test(test_string_scanning_finds_special_bytes_at_any_position),
        cmocka_unit_test(test_nul_escape_becomes_a_real_byte_counted_in_length),
        cmocka_unit_test(test_escaped_flag_is_set_only_on_strings_with_escapes),
        cmocka_unit_test(test_depth_limit_refuses_deeper_nesting),
        cmocka_unit_test(test_token_limit_refuses_larger_input),
        cmocka_unit_test(test_token_array_is_reused_across_parses),
        cmocka_unit_test(test_failed_parse_leaves_no_tokens),
        cmocka_unit_test(test_obj_get_finds_members_by_decoded_key),
        cmocka_unit_test(test_str_eq_compares_decoded_text_without_allocating),
        cmocka_unit_test(test_lookups_compare_whole_keys),
        cmocka_unit_test(test_int64_of_plain_integers_of_every_length),
        cmocka_unit_test(test_containers_close_back_into_their_parent),
        cmocka_unit_test(test_duplicate_keys_are_found_in_small_and_large_objects),
        cmocka_unit_test(test_int64_reads_the_full_range_from_strings_and_numbers),
        cmocka_unit_test(test_int64_refuses_overflow_and_non_integers),
        cmocka_unit_test(test_double_reads_numbers_and_numeric_strings),
        cmocka_unit_test(test_unescape_respects_the_buffer_cap),
        cmocka_unit_test(test_raw_text_type_names_and_utf8_check),
        cmocka_unit_test(test_webchannel_payload_tokenizes_and_reads),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
