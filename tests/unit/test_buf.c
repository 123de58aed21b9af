/*
 * test_buf.c - the capped buffer: appends, the hard cap that leaves the buffer unchanged,
 * NUL termination with embedded NULs, consume, take and reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

static void test_appends_grow_and_stay_nul_terminated(void **state)
{
    buf b;
    (void)state;
    buf_init(&b, 0);
    assert_string_equal(buf_str(&b), "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_addc(&b, 'a'), 0);
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.p[1000], '\0');
    assert_int_equal(buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.p + 1000, "42-x");
    buf_release(&b);
}

static void test_cap_refuses_and_leaves_content_unchanged(void **state)
{
    buf b;
    (void)state;
    buf_init(&b, 8);
    assert_int_equal(buf_adds(&b, "12345"), 0);
    assert_int_equal(buf_adds(&b, "6789"), FS_ETOOBIG);
    assert_string_equal(buf_str(&b), "12345");
    assert_int_equal(buf_printf(&b, "%s", "abcd"), FS_ETOOBIG);
    assert_int_equal(buf_adds(&b, "678"), 0);
    assert_int_equal(b.len, 8);
    assert_int_equal(buf_addc(&b, 'x'), FS_ETOOBIG);
    buf_release(&b);
}

static void test_embedded_nuls_are_kept_by_length(void **state)
{
    buf b;
    (void)state;
    buf_init(&b, 0);
    assert_int_equal(buf_add(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.p, "a\0b", 3);
    buf_release(&b);
}

static void test_consume_drops_a_prefix(void **state)
{
    buf b;
    (void)state;
    buf_init(&b, 0);
    buf_adds(&b, "hello world");
    buf_consume(&b, 6);
    assert_string_equal(buf_str(&b), "world");
    buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(buf_str(&b), "");
    buf_release(&b);
}

static void test_take_hands_over_and_leaves_an_empty_buffer(void **state)
{
    buf b;
    char *s;
    (void)state;
    buf_init(&b, 100);
    s = buf_take(&b);
    assert_string_equal(s, "");
    free(s);
    buf_adds(&b, "abc");
    s = buf_take(&b);
    assert_string_equal(s, "abc");
    assert_null(b.p);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 100);
    free(s);
    buf_adds(&b, "again");
    buf_reset(&b);
    assert_string_equal(buf_str(&b), "");
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends_grow_and_stay_nul_terminated),
        cmocka_unit_test(test_cap_refuses_and_leaves_content_unchanged),
        cmocka_unit_test(test_embedded_nuls_are_kept_by_length),
        cmocka_unit_test(test_consume_drops_a_prefix),
        cmocka_unit_test(test_take_hands_over_and_leaves_an_empty_buffer),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
