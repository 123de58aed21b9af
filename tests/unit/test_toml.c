/*
 * test_toml.c - the TOML reader: every value kind and escape decodes as TOML 1.0 says, the
 * table rules (dotted keys, headers, inline tables, arrays of tables) hold, and every refusal is
 * reported with its exact line:col and message, several per run, without leaking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/toml.h"
#include "common/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses src (len bytes), expecting no error. */
static toml_value *parse_ok_n(const char *src, size_t len)
{
    toml_value *root = NULL;
    toml_diag d;
    int rc;

    toml_diag_init(&d);
    rc = toml_parse(src, len, &root, &d);
    if (rc || d.n)
        fail_msg("unexpected error %d:%d: %s", d.items[0].line, d.items[0].col, d.items[0].msg);
    toml_diag_release(&d);
    assert_non_null(root);
    assert_int_equal(root->kind, TOML_TABLE);
    return root;
}

static toml_value *parse_ok(const char *src)
{
    return parse_ok_n(src, strlen(src));
}

/* Parses src (len bytes), expecting errors; returns them sorted, one "line:col: msg" per line
 * (static storage). */
static const char *parse_errs_n(const char *src, size_t len)
{
    static char out[16384];
    toml_value *root = NULL;
    toml_diag d;
    size_t o = 0;

    toml_diag_init(&d);
    assert_int_equal(toml_parse(src, len, &root, &d), FS_ECONFIG);
    assert_non_null(root);
    assert_true(d.n > 0);
    toml_diag_sort(&d);
    out[0] = '\0';
    for (size_t i = 0; i < d.n && o < sizeof(out); i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%d:%d: %s\n", d.items[i].line,
                              d.items[i].col, d.items[i].msg);
    toml_diag_release(&d);
    toml_free(root);
    return out;
}

static const char *parse_errs(const char *src)
{
    return parse_errs_n(src, strlen(src));
}

/* The value at a dotted path of plain names ("a.b.c"), or NULL. */
static toml_value *at(const toml_value *t, const char *path)
{
    char buf[256], *save = NULL;
    toml_value *v = (toml_value *)t;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *s = strtok_r(buf, ".", &save); s && v; s = strtok_r(NULL, ".", &save))
        v = toml_get(v, s);
    return v;
}

static int64_t int_at(const toml_value *t, const char *path)
{
    toml_value *v = at(t, path);
    if (!v || v->kind != TOML_INT)
        fail_msg("%s is not an integer", path);
    return v->u.i;
}

static double float_at(const toml_value *t, const char *path)
{
    toml_value *v = at(t, path);
    if (!v || v->kind != TOML_FLOAT)
        fail_msg("%s is not a float", path);
    return v->u.f;
}

static const char *str_at(const toml_value *t, const char *path)
{
    toml_value *v = at(t, path);
    if (!v || v->kind != TOML_STRING)
        fail_msg("%s is not a string", path);
    return v->u.s.p;
}

/* ---- values ------------------------------------------------------------------------------ */

static void test_empty_input_gives_an_empty_root_table(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("");
    assert_int_equal(root->u.table.n, 0);
    assert_int_equal(root->line, 1);
    assert_int_equal(root->col, 1);
    toml_free(root);
    root = parse_ok_n(NULL, 0);
    toml_free(root);
}

static void test_comments_blank_lines_and_crlf_are_ignored(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("# top\r\n\r\n  \t\n[t] # header comment\r\na = 1 # after a value\r\n"
                    "# last line without newline");
    assert_int_equal(int_at(root, "t.a"), 1);
    assert_int_equal(root->u.table.n, 1);
    toml_free(root);
}

static void test_bare_quoted_and_literal_keys_are_one_segment_each(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("bare_key-1 = 1\n1234 = 2\n\"quoted key\" = 3\n'lit.key' = 4\n\"\" = 5\n"
                    "\"esc\\u00e9\" = 6\n");
    assert_int_equal(int_at(root, "bare_key-1"), 1);
    assert_int_equal(int_at(root, "1234"), 2);
    assert_int_equal(toml_get(root, "quoted key")->u.i, 3);
    assert_int_equal(toml_get(root, "lit.key")->u.i, 4);
    assert_int_equal(toml_get(root, "")->u.i, 5);
    assert_int_equal(toml_get(root, "esc\xc3\xa9")->u.i, 6);
    assert_null(toml_get(root, "lit"));
    toml_free(root);
}

static void test_dotted_keys_create_nested_tables(void **state)
{
    toml_value *root, *a;
    (void)state;
    root = parse_ok("a.b.c = 1\na . b . d = 2\na.\"x y\".z = 3\n3.14 = 4\n");
    a = toml_get(root, "a");
    assert_int_equal(a->kind, TOML_TABLE);
    assert_false(a->u.table.is_inline);
    assert_int_equal(int_at(root, "a.b.c"), 1);
    assert_int_equal(int_at(root, "a.b.d"), 2);
    assert_int_equal(toml_get(toml_get(a, "x y"), "z")->u.i, 3);
    assert_int_equal(int_at(root, "3.14"), 4); /* two segments: "3" then "14" */
    assert_int_equal(root->u.table.n, 2);
    toml_free(root);
}

static void test_every_basic_string_escape_decodes(void **state)
{
    toml_value *root, *v;
    (void)state;
    root =
        parse_ok("s = \"b\\b t\\t n\\n f\\f r\\r q\\\" bs\\\\ u\\u00e9 U\\U0001F600 z\\u0000!\"\n"
                 "max = \"\\U0010FFFF\\uFFFF\\u007F\"\n");
    v = toml_get(root, "s");
    assert_int_equal(v->kind, TOML_STRING);
    assert_int_equal(v->u.s.len, 35);
    assert_memory_equal(v->u.s.p, "b\b t\t n\n f\f r\r q\" bs\\ u\xc3\xa9 U\xf0\x9f\x98\x80 z\0!",
                        36);
    assert_string_equal(str_at(root, "max"), "\xf4\x8f\xbf\xbf\xef\xbf\xbf\x7f");
    toml_free(root);
}

static void test_literal_strings_keep_backslashes(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("path = 'C:\\Users\\n\\u0041'\nempty = ''\nq = 'say \"hi\"'\n");
    assert_string_equal(str_at(root, "path"), "C:\\Users\\n\\u0041");
    assert_string_equal(str_at(root, "empty"), "");
    assert_string_equal(str_at(root, "q"), "say \"hi\"");
    toml_free(root);
}

static void test_multiline_basic_string_trims_first_newline_and_line_ending_backslash(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("a = \"\"\"\nRoses\n\tare red\"\"\"\n"
                    "b = \"\"\"one \\\n\n     two \\   \r\n  three\"\"\"\n"
                    "c = \"\"\"esc\\t\\u0041 \"quoted\" \"\"not closed\"\"\"\n"
                    "d = \"\"\"crlf\r\nline\"\"\"\n");
    assert_string_equal(str_at(root, "a"), "Roses\n\tare red");
    assert_string_equal(str_at(root, "b"), "one two three");
    assert_string_equal(str_at(root, "c"), "esc\tA \"quoted\" \"\"not closed");
    assert_string_equal(str_at(root, "d"), "crlf\nline");
    toml_free(root);
}

static void test_multiline_literal_string_is_raw(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("re = '''\r\nI [dw]on't need \\d{2} apples\n'' quotes'''\n");
    assert_string_equal(str_at(root, "re"), "I [dw]on't need \\d{2} apples\n'' quotes");
    toml_free(root);
}

static void test_multiline_strings_may_end_with_one_or_two_extra_quotes(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("a = \"\"\"x\"\"\"\"\nb = \"\"\"x\"\"\"\"\"\nc = '''y''''\nd = '''y'''''\n"
                    "e = \"\"\"\"\"\"\n");
    assert_string_equal(str_at(root, "a"), "x\"");
    assert_string_equal(str_at(root, "b"), "x\"\"");
    assert_string_equal(str_at(root, "c"), "y'");
    assert_string_equal(str_at(root, "d"), "y''");
    assert_string_equal(str_at(root, "e"), "");
    toml_free(root);
}

static void test_utf8_text_is_kept_and_columns_count_code_points(void **state)
{
    toml_value *root;
    struct toml_kv *kv;
    (void)state;
    root = parse_ok("\"\xc3\xa9t\xc3\xa9\" = \"\xe2\x82\xac \xf0\x9f\x98\x80\" # \xc3\xbc\n"
                    "x = 1\n");
    kv = &root->u.table.items[0];
    assert_string_equal(kv->key, "\xc3\xa9t\xc3\xa9");
    assert_string_equal(kv->val->u.s.p, "\xe2\x82\xac \xf0\x9f\x98\x80");
    assert_int_equal(kv->line, 1);
    assert_int_equal(kv->col, 1);
    assert_int_equal(kv->val->col, 9); /* "été" is 5 columns, then " = " */
    assert_int_equal(root->u.table.items[1].line, 2);
    toml_free(root);
}

static void test_decimal_integers_take_signs_and_underscores(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("a = 42\nb = +17\nc = -5\nd = 0\ne = +0\nf = -0\ng = 1_000_000\n"
                    "h = 5_349_221\ni = 1_2_3\n");
    assert_int_equal(int_at(root, "a"), 42);
    assert_int_equal(int_at(root, "b"), 17);
    assert_int_equal(int_at(root, "c"), -5);
    assert_int_equal(int_at(root, "d"), 0);
    assert_int_equal(int_at(root, "e"), 0);
    assert_int_equal(int_at(root, "f"), 0);
    assert_int_equal(int_at(root, "g"), 1000000);
    assert_int_equal(int_at(root, "h"), 5349221);
    assert_int_equal(int_at(root, "i"), 123);
    toml_free(root);
}

static void test_hex_octal_and_binary_integers(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("h = 0xDEADbeef\nh2 = 0xdead_beef\nh3 = 0x00ff\no = 0o755\no2 = 0o0_7\n"
                    "b = 0b1101_0110\nhmax = 0x7FFFFFFFFFFFFFFF\n");
    assert_int_equal(int_at(root, "h"), 0xDEADBEEF);
    assert_int_equal(int_at(root, "h2"), 0xDEADBEEF);
    assert_int_equal(int_at(root, "h3"), 255);
    assert_int_equal(int_at(root, "o"), 0755);
    assert_int_equal(int_at(root, "o2"), 7);
    assert_int_equal(int_at(root, "b"), 0xD6);
    assert_true(int_at(root, "hmax") == INT64_MAX);
    toml_free(root);
}

static void test_int64_limits_are_accepted(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("max = 9223372036854775807\nmin = -9223372036854775808\n"
                    "umax = 9_223_372_036_854_775_807\n");
    assert_true(int_at(root, "max") == INT64_MAX);
    assert_true(int_at(root, "min") == INT64_MIN);
    assert_true(int_at(root, "umax") == INT64_MAX);
    toml_free(root);
}

static void test_floats_take_fraction_exponent_signs_and_underscores(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("a = 1.0\nb = 3.1415\nc = -0.01\nd = 5e+22\ne = 1e06\nf = -2E-2\n"
                    "g = 6.626e-34\nh = 224_617.445_991_228\ni = 1e1_0\nj = +1.5\nk = -0.0\n"
                    "l = 0e0\nm = 1e-400\n");
    assert_true(float_at(root, "a") == 1.0);
    assert_true(float_at(root, "b") == 3.1415);
    assert_true(float_at(root, "c") == -0.01);
    assert_true(float_at(root, "d") == 5e22);
    assert_true(float_at(root, "e") == 1e6);
    assert_true(float_at(root, "f") == -2e-2);
    assert_true(float_at(root, "g") == 6.626e-34);
    assert_true(float_at(root, "h") == 224617.445991228);
    assert_true(float_at(root, "i") == 1e10);
    assert_true(float_at(root, "j") == 1.5);
    assert_true(float_at(root, "k") == 0.0 && signbit(float_at(root, "k")));
    assert_true(float_at(root, "l") == 0.0);
    assert_true(float_at(root, "m") == 0.0); /* underflow rounds to zero: not an error */
    toml_free(root);
}

static void test_inf_and_nan_take_signs(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("a = inf\nb = +inf\nc = -inf\nd = nan\ne = +nan\nf = -nan\n");
    assert_true(isinf(float_at(root, "a")) && float_at(root, "a") > 0);
    assert_true(isinf(float_at(root, "b")) && float_at(root, "b") > 0);
    assert_true(isinf(float_at(root, "c")) && float_at(root, "c") < 0);
    assert_true(isnan(float_at(root, "d")));
    assert_true(isnan(float_at(root, "e")));
    assert_true(isnan(float_at(root, "f")));
    toml_free(root);
}

static void test_booleans(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("t = true\nf = false\n");
    assert_int_equal(at(root, "t")->kind, TOML_BOOL);
    assert_true(at(root, "t")->u.b);
    assert_false(at(root, "f")->u.b);
    toml_free(root);
}

static void test_arrays_mix_types_span_lines_and_allow_a_trailing_comma(void **state)
{
    toml_value *root, *a, *inner;
    (void)state;
    root = parse_ok("a = [\n  1, # one\n  \"two\", [3.5, {x = 1}],\r\n\n  true, # last\n]\n"
                    "empty = []\nblank = [ \n ]\nnested = [[], [[]]]\n");
    a = at(root, "a");
    assert_int_equal(a->kind, TOML_ARRAY);
    assert_false(a->u.array.of_tables);
    assert_int_equal(a->u.array.n, 4);
    assert_int_equal(a->u.array.items[0]->u.i, 1);
    assert_string_equal(a->u.array.items[1]->u.s.p, "two");
    inner = a->u.array.items[2];
    assert_int_equal(inner->kind, TOML_ARRAY);
    assert_true(inner->u.array.items[0]->u.f == 3.5);
    assert_int_equal(toml_get(inner->u.array.items[1], "x")->u.i, 1);
    assert_true(a->u.array.items[3]->u.b);
    assert_int_equal(a->u.array.items[1]->line, 3);
    assert_int_equal(a->u.array.items[1]->col, 3);
    assert_int_equal(at(root, "empty")->u.array.n, 0);
    assert_int_equal(at(root, "blank")->u.array.n, 0);
    assert_int_equal(at(root, "nested")->u.array.items[1]->u.array.items[0]->kind, TOML_ARRAY);
    toml_free(root);
}

static void test_inline_tables_nest_and_accept_dotted_keys(void **state)
{
    toml_value *root, *p;
    (void)state;
    root = parse_ok("p = { name = \"x\", pt = { x = 1, y = 2 }, a.b = 3, a.c = 4 }\ne = {}\n");
    p = at(root, "p");
    assert_true(p->u.table.is_inline);
    assert_int_equal(p->line, 1);
    assert_int_equal(p->col, 5);
    assert_string_equal(str_at(root, "p.name"), "x");
    assert_int_equal(int_at(root, "p.pt.y"), 2);
    assert_int_equal(int_at(root, "p.a.b"), 3);
    assert_int_equal(int_at(root, "p.a.c"), 4);
    assert_int_equal(at(root, "e")->u.table.n, 0);
    assert_true(at(root, "e")->u.table.is_inline);
    toml_free(root);
}

/* ---- tables ------------------------------------------------------------------------------ */

static void test_tables_record_their_header_and_keys_in_document_order(void **state)
{
    toml_value *root, *m;
    (void)state;
    root = parse_ok("top = 0\n[mysql]\nhost = \"h\"\nport = 3306\n[agent]\n");
    assert_int_equal(root->u.table.n, 3);
    assert_string_equal(root->u.table.items[0].key, "top");
    assert_string_equal(root->u.table.items[1].key, "mysql");
    assert_int_equal(root->u.table.items[1].line, 2);
    assert_int_equal(root->u.table.items[1].col, 2);
    m = at(root, "mysql");
    assert_int_equal(m->line, 2);
    assert_int_equal(m->col, 1);
    assert_false(m->used);
    assert_string_equal(m->u.table.items[0].key, "host");
    assert_string_equal(m->u.table.items[1].key, "port");
    assert_int_equal(m->u.table.items[1].line, 4);
    assert_int_equal(m->u.table.items[1].val->col, 8);
    assert_int_equal(at(root, "agent")->u.table.n, 0);
    toml_free(root);
}

static void test_a_parent_table_may_be_defined_once_after_its_child(void **state)
{
    toml_value *root, *x;
    (void)state;
    root = parse_ok("[x.y.z]\nk = 1\n[x]\nm = 2\n[x.y]\nn = 3\n[ x . \"w\" ]\n");
    x = at(root, "x");
    assert_int_equal(x->line, 3); /* now the [x] header, no longer the implicit one */
    assert_int_equal(x->col, 1);
    assert_int_equal(int_at(root, "x.y.z.k"), 1);
    assert_int_equal(int_at(root, "x.m"), 2);
    assert_int_equal(int_at(root, "x.y.n"), 3);
    assert_non_null(at(root, "x.w"));
    toml_free(root);
    assert_string_equal(parse_errs("[x.y]\n[x]\n[x]\n"),
                        "3:1: table [x] defined twice (first defined at 2:1)\n");
}

static void test_array_of_tables_appends_a_table_per_header(void **state)
{
    toml_value *root, *arr, *e1;
    (void)state;
    root = parse_ok("[[products]]\nname = \"Hammer\"\n[products.dims]\nw = 1\n"
                    "[[products]]\n\n[[products]]\nname = \"Nail\"\n[[products.tags]]\nt = 1\n"
                    "[[products.tags]]\nt = 2\n");
    arr = at(root, "products");
    assert_int_equal(arr->kind, TOML_ARRAY);
    assert_true(arr->u.array.of_tables);
    assert_int_equal(arr->u.array.n, 3);
    assert_int_equal(arr->line, 1);
    e1 = arr->u.array.items[0];
    assert_true(e1->u.table.is_array_elem);
    assert_string_equal(toml_get(e1, "name")->u.s.p, "Hammer");
    assert_int_equal(toml_get(toml_get(e1, "dims"), "w")->u.i, 1);
    assert_int_equal(arr->u.array.items[1]->u.table.n, 0);
    assert_int_equal(arr->u.array.items[1]->line, 5);
    assert_int_equal(toml_get(arr->u.array.items[2], "tags")->u.array.n, 2);
    assert_int_equal(toml_get(arr->u.array.items[2], "tags")->u.array.items[1]->u.table.n, 1);
    toml_free(root);
}

static void test_headers_may_add_subtables_to_tables_made_by_dotted_keys(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n"
                    "[fruit.apple.texture]\nsmooth = true\n");
    assert_string_equal(str_at(root, "fruit.apple.color"), "red");
    assert_true(at(root, "fruit.apple.taste.sweet")->u.b);
    assert_true(at(root, "fruit.apple.texture.smooth")->u.b);
    toml_free(root);
}

/* ---- errors: keys and tables ------------------------------------------------------------- */

static void test_duplicate_key_names_the_first_definition(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("[mysql]\nhost = \"a\"\nport = 1\nport = 2\n"),
                        "4:1: duplicate key 'port' (first defined at 3:1)\n");
    assert_string_equal(parse_errs("a.b = 1\n\"a\".'b' = 2\n"),
                        "2:5: duplicate key 'a.b' (first defined at 1:3)\n");
    assert_string_equal(parse_errs("a.b = 1\na = 2\n"),
                        "2:1: duplicate key 'a' (first defined at 1:1)\n");
    assert_string_equal(parse_errs("t = { x = 1, x = 2 }\n"),
                        "1:14: duplicate key 'x' (first defined at 1:7)\n");
    assert_string_equal(parse_errs("\"x y\" = 1\n'x y' = 2\n"),
                        "2:1: duplicate key '\"x y\"' (first defined at 1:1)\n");
    assert_string_equal(parse_errs("\"a\\nb\" = 1\n\"a\\nb\" = 2\n"),
                        "2:1: duplicate key '\"a?b\"' (first defined at 1:1)\n");
}

static void test_missing_equals_names_the_key(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("host \"x\"\n"),
                        "1:6: expected '=' after key 'host', found '\"'\n");
    assert_string_equal(parse_errs("a.b\n"),
                        "1:4: expected '=' after key 'a.b', found end of line\n");
    assert_string_equal(parse_errs("a ="), "1:4: expected a value, found end of file\n");
    assert_string_equal(parse_errs("= 1\n"), "1:1: expected a key, found '='\n");
    assert_string_equal(parse_errs("a. = 1\n"), "1:4: expected a key, found '='\n");
}

static void test_table_defined_twice_is_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("[mysql]\nport = 1\n\n[mysql]\n"),
                        "4:1: table [mysql] defined twice (first defined at 1:1)\n");
    assert_string_equal(parse_errs("[a.b]\n[a . b]\n"),
                        "2:1: table [a.b] defined twice (first defined at 1:1)\n");
    assert_string_equal(parse_errs("[fruit]\napple.color = 1\n[fruit.apple]\n"),
                        "3:1: table [fruit.apple] defined twice (first defined at 2:1)\n");
    assert_string_equal(parse_errs("a = {}\n[a]\n"),
                        "2:1: table [a] defined twice (first defined at 1:5)\n");
}

static void test_table_conflicting_with_another_value_is_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = 1\n[a]\n"),
                        "2:1: table [a] conflicts with key 'a', already an integer (defined at "
                        "1:1)\n");
    assert_string_equal(parse_errs("[[a]]\n[a]\n"),
                        "2:1: table [a] conflicts with the array of tables [[a]] at 1:1\n");
    assert_string_equal(parse_errs("a = []\n[[a]]\n"),
                        "2:1: array of tables [[a]] conflicts with key 'a', already an array "
                        "(defined at 1:1)\n");
    assert_string_equal(parse_errs("[a]\n[[a]]\n"),
                        "2:1: array of tables [[a]] conflicts with key 'a', already a table "
                        "(defined at 1:2)\n");
    assert_string_equal(parse_errs("a = \"s\"\n[a.b]\n"),
                        "2:2: key 'a' is already a string (defined at 1:1), not a table\n");
    assert_string_equal(parse_errs("a = [{}]\n[a.b]\n"),
                        "2:2: key 'a' is already an array (defined at 1:1), not a table\n");
}

static void test_adding_to_an_inline_table_is_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = { b = 1 }\n[a.c]\n"),
                        "2:2: cannot add to inline table 'a' (defined at 1:5; inline tables "
                        "are closed)\n");
    assert_string_equal(parse_errs("a = { b = 1 }\na.c = 1\n"),
                        "2:1: cannot add to inline table 'a' (defined at 1:5; inline tables "
                        "are closed)\n");
    assert_string_equal(parse_errs("a = { b = { c = 1 }, b.d = 2 }\n"),
                        "1:22: cannot add to inline table 'b' (defined at 1:11; inline tables "
                        "are closed)\n");
    assert_string_equal(parse_errs("a = { b.c = 1 }\n[a.b]\n"),
                        "2:2: cannot add to inline table 'a' (defined at 1:5; inline tables "
                        "are closed)\n");
}

static void test_dotted_keys_cannot_pass_through_other_values(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = 1\na.b = 2\n"),
                        "2:1: key 'a' is already an integer (defined at 1:1), not a table\n");
    assert_string_equal(parse_errs("a.b = true\na.b.c = 2\n"),
                        "2:3: key 'a.b' is already a boolean (defined at 1:3), not a table\n");
    assert_string_equal(parse_errs("[a.b.c]\nz = 9\n[a]\nb.c.t = 1\n"),
                        "4:1: cannot add to table 'b' with dotted keys (it was made by a header "
                        "at 1:4)\n");
}

static void test_header_syntax_errors_are_reported(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("[]\n"), "1:2: expected a key, found ']'\n");
    assert_string_equal(parse_errs("[a\n"),
                        "1:3: expected ']' to close the table header, found end of line\n");
    assert_string_equal(parse_errs("[[a] ]\n"),
                        "1:5: expected ']]' to close the table header, found a space\n");
    assert_string_equal(parse_errs("[a] x = 1\n"),
                        "1:5: expected end of line after the table header, found 'x'\n");
    assert_string_equal(parse_errs("[ [a] ]\n"), "1:3: expected a key, found '['\n");
}

static void test_keys_with_multiline_strings_or_nul_are_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("\"\"\"a\"\"\" = 1\n"),
                        "1:1: a multi-line string cannot be a key\n");
    assert_string_equal(parse_errs("x.\"a\\u0000\" = 1\n"), "1:3: a key cannot contain U+0000\n");
}

/* ---- errors: values ---------------------------------------------------------------------- */

static void test_unterminated_strings_are_reported_at_the_opening_quote(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = \"abc\nb = 1\n"), "1:5: unterminated string\n");
    assert_string_equal(parse_errs("a = 'abc\r\n"), "1:5: unterminated string\n");
    assert_string_equal(parse_errs("x = 1\na = \"\"\"abc\n\ndef"), "2:5: unterminated string\n");
    assert_string_equal(parse_errs("a = '''abc''"), "1:5: unterminated string\n");
    assert_string_equal(parse_errs("a = \"abc\\\""), "1:5: unterminated string\n");
}

static void test_invalid_escapes_are_reported_at_the_backslash(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = \"x\\qy\"\n"), "1:7: invalid escape '\\q'\n");
    assert_string_equal(parse_errs("a = \"\\e\\x41\"\n"),
                        "1:6: invalid escape '\\e'\n1:8: invalid escape '\\x'\n");
    assert_string_equal(parse_errs("a = \"x\\ \"\n"),
                        "1:7: invalid escape: '\\' followed by a space\n");
    assert_string_equal(parse_errs("a = \"\"\"x\\ y\"\"\"\n"),
                        "1:9: invalid escape: '\\' followed by a space\n");
    assert_string_equal(parse_errs("a = \"\\\x01\"\n"),
                        "1:6: invalid escape: '\\' followed by control character U+0001\n");
    assert_string_equal(parse_errs("a = \"\\u12\"\n"),
                        "1:6: invalid escape '\\u12' (\\u needs 4 hex digits)\n");
    assert_string_equal(parse_errs("a = \"\\U0001F60\"\n"),
                        "1:6: invalid escape '\\U0001F60' (\\U needs 8 hex digits)\n");
    assert_string_equal(parse_errs("a = \"\\uD800\"\nb = \"\\udfff\"\n"),
                        "1:6: invalid escape '\\uD800' (a surrogate is not a character)\n"
                        "2:6: invalid escape '\\udfff' (a surrogate is not a character)\n");
    assert_string_equal(parse_errs("a = \"\\U00110000\"\n"),
                        "1:6: invalid escape '\\U00110000' (beyond U+10FFFF)\n");
}

static void test_one_string_with_two_mistakes_reports_both_and_the_next_line_is_read(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("x = \"\"\"\na\\q\x01\nb\"\"\"\ny = z\n"),
                        "2:2: invalid escape '\\q'\n2:4: control character U+0001 in string\n"
                        "4:5: invalid value 'z' (strings must be quoted)\n");
}

static void test_integers_outside_int64_are_refused(void **state)
{
    (void)state;
    assert_string_equal(
        parse_errs("a = 9223372036854775808\n"
                   "b = -9223372036854775809\n"
                   "c = 0x8000000000000000\n"
                   "d = 99999999999999999999999\n"
                   "e = 0b1_0000000000000000000000000000000000000000000000000000000000000000\n"),
        "1:5: integer out of range: 9223372036854775808\n"
        "2:5: integer out of range: -9223372036854775809\n"
        "3:5: integer out of range: 0x8000000000000000\n"
        "4:5: integer out of range: 99999999999999999999999\n"
        "5:5: integer out of range: 0b1_000000000000000000000000000000000000\n");
}

static void test_malformed_numbers_are_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = 0123\nb = 1__2\nc = _1\nd = 1_\ne = +0x1\nf = 0x\n"
                                   "g = 1.\nh = .5\ni = 1e\nj = 0X1\nk = 0b2\nl = 0o8\n"
                                   "m = 1.2.3\nn = 1e_5\no = 00.5\np = -01\nq = 1._5\nr = 0xg\n"),
                        "1:5: invalid number '0123' (leading zeros are not allowed)\n"
                        "2:5: invalid number '1__2'\n"
                        "3:5: invalid number '_1'\n"
                        "4:5: invalid number '1_'\n"
                        "5:5: invalid number '+0x1' (0x, 0o and 0b take no sign)\n"
                        "6:5: invalid number '0x'\n"
                        "7:5: invalid number '1.'\n"
                        "8:5: invalid number '.5'\n"
                        "9:5: invalid number '1e'\n"
                        "10:5: invalid number '0X1'\n"
                        "11:5: invalid number '0b2'\n"
                        "12:5: invalid number '0o8'\n"
                        "13:5: invalid number '1.2.3'\n"
                        "14:5: invalid number '1e_5'\n"
                        "15:5: invalid number '00.5' (leading zeros are not allowed)\n"
                        "16:5: invalid number '-01' (leading zeros are not allowed)\n"
                        "17:5: invalid number '1._5'\n"
                        "18:5: invalid number '0xg'\n");
}

static void test_float_overflow_is_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("big = 1e400\nneg = -1.8e308\n"),
                        "1:7: float out of range: 1e400\n2:7: float out of range: -1.8e308\n");
}

static void test_dates_and_times_are_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = 1979-05-27\nb = 1979-05-27T07:32:00Z\n"
                                   "c = 1979-05-27 07:32:00\nd = 07:32:00\ne = [2024-01-01]\n"),
                        "1:5: dates are not supported here\n2:5: dates are not supported here\n"
                        "3:5: dates are not supported here\n4:5: dates are not supported here\n"
                        "5:6: dates are not supported here\n");
}

static void test_unquoted_words_are_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = hello\nb = True\nc = infinity\n"),
                        "1:5: invalid value 'hello' (strings must be quoted)\n"
                        "2:5: invalid value 'True' (strings must be quoted)\n"
                        "3:5: invalid value 'infinity' (strings must be quoted)\n");
}

static void test_array_syntax_errors_are_reported(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = [1 2]\n"),
                        "1:8: expected ',' or ']' after an array element, found '2'\n");
    assert_string_equal(parse_errs("a = [1,,2]\n"), "1:8: expected a value, found ','\n");
    assert_string_equal(parse_errs("a = [,]\n"), "1:6: expected a value, found ','\n");
    assert_string_equal(parse_errs("a = [1,\n  2\n"), "1:5: unterminated array\n");
    assert_string_equal(parse_errs("a = [ # c \x01\n]\n"),
                        "1:11: control character U+0001 in comment\n"
                        "2:1: expected a key, found ']'\n");
}

static void test_inline_table_must_stay_on_one_line_without_trailing_comma(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = { b = 1, }\n"), "1:12: trailing comma in inline table\n");
    assert_string_equal(parse_errs("a = { b = 1\n}\n"),
                        "1:12: expected ',' or '}' in inline table, found end of line\n"
                        "2:1: expected a key, found '}'\n");
    assert_string_equal(parse_errs("a = { b = 1 c = 2 }\n"),
                        "1:13: expected ',' or '}' in inline table, found 'c'\n");
    assert_string_equal(parse_errs("a = {\n"), "1:6: expected a key, found end of line\n");
}

static void test_only_one_value_per_line(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = 1 b = 2\n"),
                        "1:7: expected end of line after the value, found 'b'\n");
    assert_string_equal(parse_errs("a = \"x\" \"y\"\n"),
                        "1:9: expected end of line after the value, found '\"'\n");
    assert_string_equal(parse_errs("a = \"\"\"x\"\"\"\"\"\"\n"),
                        "1:14: expected end of line after the value, found '\"'\n");
}

/* ---- errors: bytes ----------------------------------------------------------------------- */

static void test_control_characters_in_strings_and_comments_are_refused(void **state)
{
    static const char src[] = "a = \"x\x01\"\nb = 'y\x7f'\n# z\x1f\nc = 1 # \0\n"
                              "d = '''\x08'''\n";
    (void)state;
    assert_string_equal(parse_errs_n(src, sizeof(src) - 1),
                        "1:7: control character U+0001 in string\n"
                        "2:7: control character U+007F in string\n"
                        "3:4: control character U+001F in comment\n"
                        "4:9: control character U+0000 in comment\n"
                        "5:8: control character U+0008 in string\n");
}

static void test_tabs_are_allowed_in_strings_and_comments(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("a\t=\t\"x\ty\" #\tcomment\t\nb = 'p\tq'\n");
    assert_string_equal(str_at(root, "a"), "x\ty");
    assert_string_equal(str_at(root, "b"), "p\tq");
    toml_free(root);
}

static void test_bare_carriage_return_is_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = 1\rb = 2\n"),
                        "1:6: bare carriage return (CR without LF)\n");
    assert_string_equal(parse_errs("a = \"\"\"x\ry\"\"\"\n"),
                        "1:9: bare carriage return (CR without LF) in string\n");
    assert_string_equal(parse_errs("# x\ry\n"),
                        "1:4: bare carriage return (CR without LF) in comment\n");
    assert_string_equal(parse_errs("a = [\r]\n"), "1:6: bare carriage return (CR without LF)\n");
    assert_string_equal(parse_errs("\r"), "1:1: bare carriage return (CR without LF)\n");
}

static void test_invalid_utf8_is_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("a = \"\xff\"\n"), "1:6: invalid UTF-8 in string\n");
    assert_string_equal(parse_errs("a = \"\xc0\x80\"\n"), "1:6: invalid UTF-8 in string\n");
    assert_string_equal(parse_errs("a = '\xed\xa0\x80'\n"), "1:6: invalid UTF-8 in string\n");
    assert_string_equal(parse_errs("a = \"\xf4\x90\x80\x80\"\n"), "1:6: invalid UTF-8 in string\n");
    assert_string_equal(parse_errs("# \xe2\x82\n"), "1:3: invalid UTF-8 in comment\n");
    assert_string_equal(parse_errs("a = \"\xe2\x82"),
                        "1:5: unterminated string\n1:6: invalid UTF-8 in string\n");
    assert_string_equal(parse_errs("a = \xc3\xa9\n"),
                        "1:5: expected a value, found character U+00E9\n");
    assert_string_equal(parse_errs("\x80 = 1\n"), "1:1: expected a key, found invalid UTF-8\n");
}

static void test_input_over_4_mib_is_refused_at_1_1(void **state)
{
    size_t n = (4u << 20) + 1;
    char *src = malloc(n);
    toml_value *root = NULL;
    toml_diag d;
    (void)state;

    memset(src, '\n', n);
    toml_diag_init(&d);
    assert_int_equal(toml_parse(src, n, &root, &d), FS_ECONFIG);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.items[0].line, 1);
    assert_int_equal(d.items[0].col, 1);
    assert_string_equal(d.items[0].msg, "input larger than 4 MiB (4194305 bytes)");
    assert_non_null(root);
    assert_int_equal(root->u.table.n, 0);
    toml_free(root);
    toml_free(parse_ok_n(src, n - 1)); /* exactly 4 MiB is fine */
    toml_diag_release(&d);
    free(src);
}

/* Writes n copies of c at p; returns p + n. */
static char *repeat(char *p, char c, int n)
{
    memset(p, c, (size_t)n);
    return p + n;
}

static void test_nesting_deeper_than_64_is_refused(void **state)
{
    char src[1024], path[256], *p;
    toml_value *root, *v;
    (void)state;

    /* a = [[...]]: 64 nested arrays are fine, a 65th is one level too many */
    p = src + sprintf(src, "a = ");
    p = repeat(repeat(p, '[', 64), ']', 64);
    strcpy(p, "\n");
    root = parse_ok(src);
    v = at(root, "a");
    for (int i = 0; i < 63; i++)
        v = v->u.array.items[0];
    assert_int_equal(v->kind, TOML_ARRAY);
    assert_int_equal(v->u.array.n, 0);
    toml_free(root);
    p = src + sprintf(src, "a = ");
    p = repeat(repeat(p, '[', 65), ']', 65);
    strcpy(p, "\n");
    assert_string_equal(parse_errs(src), "1:69: nesting deeper than 64 levels\n");

    /* a 64-segment header is fine, but a key under it would be level 65 */
    p = path;
    for (int i = 0; i < 64; i++)
        p += sprintf(p, "%sk", i ? "." : "");
    snprintf(src, sizeof(src), "[%s]\n", path);
    toml_free(parse_ok(src));
    snprintf(src, sizeof(src), "[%s]\nx = 1\n", path);
    assert_string_equal(parse_errs(src), "2:5: nesting deeper than 64 levels\n");
    snprintf(src, sizeof(src), "%s.k = 1\n", path);
    assert_string_equal(parse_errs(src), "1:129: nesting deeper than 64 levels\n");
    snprintf(src, sizeof(src), "a = %s\n", "{x={x={x=1}}}");
    toml_free(parse_ok(src));
    p = src + sprintf(src, "a = ");
    for (int i = 0; i < 64; i++)
        p += sprintf(p, "{x=");
    strcpy(p, "1}\n");
    assert_string_equal(parse_errs(src), "1:197: nesting deeper than 64 levels\n");
}

/* ---- recovery ---------------------------------------------------------------------------- */

static void test_two_errors_on_different_lines_are_both_reported(void **state)
{
    (void)state;
    assert_string_equal(parse_errs("[mysql]\nport = = 3\nhost = \"x\ny = 1\n"),
                        "2:8: expected a value, found '='\n3:8: unterminated string\n");
}

static void test_after_an_error_the_next_line_is_read_and_kept(void **state)
{
    const char *src = "a = 1\nb = ?\nc = 3\n[t]\nd = 0x\ne = 5\n";
    toml_value *root = NULL;
    toml_diag d;
    (void)state;

    toml_diag_init(&d);
    assert_int_equal(toml_parse(src, strlen(src), &root, &d), FS_ECONFIG);
    assert_int_equal(d.n, 2);
    assert_int_equal(int_at(root, "a"), 1);
    assert_null(at(root, "b"));
    assert_int_equal(int_at(root, "c"), 3);
    assert_null(at(root, "t.d"));
    assert_int_equal(int_at(root, "t.e"), 5);
    toml_free(root);
    toml_diag_release(&d);
}

static void test_keys_under_a_bad_header_are_checked_but_dropped(void **state)
{
    toml_value *root = NULL;
    toml_diag d;
    const char *src = "[a]\nx = 1\n[a]\nx = 2\ny = \"bad\nz = 3\n";
    (void)state;

    toml_diag_init(&d);
    assert_int_equal(toml_parse(src, strlen(src), &root, &d), FS_ECONFIG);
    toml_diag_sort(&d);
    assert_int_equal(d.n, 2); /* no duplicate-key noise for x */
    assert_string_equal(d.items[0].msg, "table [a] defined twice (first defined at 1:1)");
    assert_string_equal(d.items[1].msg, "unterminated string");
    assert_int_equal(at(root, "a")->u.table.n, 1);
    assert_int_equal(int_at(root, "a.x"), 1);
    toml_free(root);
    toml_diag_release(&d);
}

static void test_too_many_errors_stop_the_parse(void **state)
{
    char src[4096];
    size_t o = 0;
    toml_value *root = NULL;
    toml_diag d;
    (void)state;

    for (int i = 0; i < 150; i++)
        o += (size_t)snprintf(src + o, sizeof(src) - o, "=\n");
    toml_diag_init(&d);
    assert_int_equal(toml_parse(src, o, &root, &d), FS_ECONFIG);
    assert_int_equal(d.n, 101);
    assert_int_equal(d.items[99].line, 100);
    assert_int_equal(d.items[100].line, 101);
    assert_string_equal(d.items[100].msg, "too many errors (100), giving up on the rest");
    toml_free(root);
    toml_diag_release(&d);
}

static void test_parse_reports_only_its_own_errors_in_the_return_code(void **state)
{
    toml_value *root = NULL;
    toml_diag d;
    (void)state;

    toml_diag_init(&d);
    toml_diag_add(&d, 9, 9, "earlier problem");
    assert_int_equal(toml_parse("a = 1\n", 6, &root, &d), 0);
    assert_int_equal(d.n, 1);
    toml_free(root);
    assert_int_equal(toml_parse("a = \n", 5, &root, &d), FS_ECONFIG);
    assert_int_equal(d.n, 2);
    toml_free(root);
    toml_diag_release(&d);
}

/* ---- API --------------------------------------------------------------------------------- */

static void test_toml_get_finds_one_segment_and_tolerates_null_and_non_tables(void **state)
{
    toml_value *root;
    (void)state;
    root = parse_ok("a.b = 1\nn = 2\n");
    assert_non_null(toml_get(root, "a"));
    assert_null(toml_get(root, "a.b"));
    assert_null(toml_get(root, "missing"));
    assert_null(toml_get(NULL, "a"));
    assert_null(toml_get(toml_get(root, "n"), "x"));
    toml_free(root);
    toml_free(NULL);
}

static void test_kind_names_read_well_in_messages(void **state)
{
    (void)state;
    assert_string_equal(toml_kind_name(TOML_TABLE), "table");
    assert_string_equal(toml_kind_name(TOML_ARRAY), "array");
    assert_string_equal(toml_kind_name(TOML_STRING), "string");
    assert_string_equal(toml_kind_name(TOML_INT), "integer");
    assert_string_equal(toml_kind_name(TOML_FLOAT), "float");
    assert_string_equal(toml_kind_name(TOML_BOOL), "boolean");
}

static void test_diag_sort_orders_by_line_then_column_and_is_stable(void **state)
{
    toml_diag d;
    (void)state;

    toml_diag_init(&d);
    toml_diag_add(&d, 3, 1, "c");
    toml_diag_add(&d, 1, 5, "b");
    toml_diag_add(&d, 1, 2, "a");
    toml_diag_add(&d, 3, 1, "d");
    for (int i = 0; i < 20; i++)
        toml_diag_add(&d, 2, 1, "same %d", i); /* also grows the list past its first size */
    toml_diag_sort(&d);
    assert_int_equal(d.n, 24);
    assert_string_equal(d.items[0].msg, "a");
    assert_string_equal(d.items[1].msg, "b");
    for (int i = 0; i < 20; i++) {
        char want[24];
        snprintf(want, sizeof(want), "same %d", i);
        assert_string_equal(d.items[2 + i].msg, want);
    }
    assert_string_equal(d.items[22].msg, "c");
    assert_string_equal(d.items[23].msg, "d");
    toml_diag_release(&d);
    assert_null(d.items);
    assert_int_equal(d.n, 0);
    toml_diag_sort(&d);
}

static void test_diag_messages_are_truncated_not_overflowed(void **state)
{
    char long_key[400];
    toml_diag d;
    (void)state;

    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    toml_diag_init(&d);
    toml_diag_add(&d, 1, 1, "unknown key '%s'", long_key);
    assert_int_equal(strlen(d.items[0].msg), sizeof(d.items[0].msg) - 1);
    toml_diag_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_input_gives_an_empty_root_table),
        cmocka_unit_test(test_comments_blank_lines_and_crlf_are_ignored),
        cmocka_unit_test(test_bare_quoted_and_literal_keys_are_one_segment_each),
        cmocka_unit_test(test_dotted_keys_create_nested_tables),
        cmocka_unit_test(test_every_basic_string_escape_decodes),
        cmocka_unit_test(test_literal_strings_keep_backslashes),
        cmocka_unit_test(test_multiline_basic_string_trims_first_newline_and_line_ending_backslash),
        cmocka_unit_test(test_multiline_literal_string_is_raw),
        cmocka_unit_test(test_multiline_strings_may_end_with_one_or_two_extra_quotes),
        cmocka_unit_test(test_utf8_text_is_kept_and_columns_count_code_points),
        cmocka_unit_test(test_decimal_integers_take_signs_and_underscores),
        cmocka_unit_test(test_hex_octal_and_binary_integers),
        cmocka_unit_test(test_int64_limits_are_accepted),
        cmocka_unit_test(test_floats_take_fraction_exponent_signs_and_underscores),
        cmocka_unit_test(test_inf_and_nan_take_signs),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_arrays_mix_types_span_lines_and_allow_a_trailing_comma),
        cmocka_unit_test(test_inline_tables_nest_and_accept_dotted_keys),
        cmocka_unit_test(test_tables_record_their_header_and_keys_in_document_order),
        cmocka_unit_test(test_a_parent_table_may_be_defined_once_after_its_child),
        cmocka_unit_test(test_array_of_tables_appends_a_table_per_header),
        cmocka_unit_test(test_headers_may_add_subtables_to_tables_made_by_dotted_keys),
        cmocka_unit_test(test_duplicate_key_names_the_first_definition),
        cmocka_unit_test(test_missing_equals_names_the_key),
        cmocka_unit_test(test_table_defined_twice_is_refused),
        cmocka_unit_test(test_table_conflicting_with_another_value_is_refused),
        cmocka_unit_test(test_adding_to_an_inline_table_is_refused),
        cmocka_unit_test(test_dotted_keys_cannot_pass_through_other_values),
        cmocka_unit_test(test_header_syntax_errors_are_reported),
        cmocka_unit_test(test_keys_with_multiline_strings_or_nul_are_refused),
        cmocka_unit_test(test_unterminated_strings_are_reported_at_the_opening_quote),
        cmocka_unit_test(test_invalid_escapes_are_reported_at_the_backslash),
        cmocka_unit_test(test_one_string_with_two_mistakes_reports_both_and_the_next_line_is_read),
        cmocka_unit_test(test_integers_outside_int64_are_refused),
        cmocka_unit_test(test_malformed_numbers_are_refused),
        cmocka_unit_test(test_float_overflow_is_refused),
        cmocka_unit_test(test_dates_and_times_are_refused),
        cmocka_unit_test(test_unquoted_words_are_refused),
        cmocka_unit_test(test_array_syntax_errors_are_reported),
        cmocka_unit_test(test_inline_table_must_stay_on_one_line_without_trailing_comma),
        cmocka_unit_test(test_only_one_value_per_line),
        cmocka_unit_test(test_control_characters_in_strings_and_comments_are_refused),
        cmocka_unit_test(test_tabs_are_allowed_in_strings_and_comments),
        cmocka_unit_test(test_bare_carriage_return_is_refused),
        cmocka_unit_test(test_invalid_utf8_is_refused),
        cmocka_unit_test(test_input_over_4_mib_is_refused_at_1_1),
        cmocka_unit_test(test_nesting_deeper_than_64_is_refused),
        cmocka_unit_test(test_two_errors_on_different_lines_are_both_reported),
        cmocka_unit_test(test_after_an_error_the_next_line_is_read_and_kept),
        cmocka_unit_test(test_keys_under_a_bad_header_are_checked_but_dropped),
        cmocka_unit_test(test_too_many_errors_stop_the_parse),
        cmocka_unit_test(test_parse_reports_only_its_own_errors_in_the_return_code),
        cmocka_unit_test(test_toml_get_finds_one_segment_and_tolerates_null_and_non_tables),
        cmocka_unit_test(test_kind_names_read_well_in_messages),
        cmocka_unit_test(test_diag_sort_orders_by_line_then_column_and_is_stable),
        cmocka_unit_test(test_diag_messages_are_truncated_not_overflowed),
    };
    return cmocka_run_group_tests_name("toml", tests, NULL, NULL);
}
