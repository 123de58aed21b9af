/*
 * test_err.c - the error table: every code has a unique name and a message, the transient flag
 * is what the retry logic expects, and fserr_set / fserr_prefix fill the caller's struct.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"

#include <string.h>

static void test_every_code_has_a_unique_name_and_a_message(void **state)
{
    (void)state;
    assert_true(fserr_count() > 20);
    for (size_t i = 0; i < fserr_count(); i++) {
        int c = fserr_at(i);
        assert_true(c < 0);
        assert_true(strncmp(fserr_name(c), "FS_E", 4) == 0);
        assert_true(strlen(fserr_str(c)) > 3);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(c, fserr_at(j));
            assert_string_not_equal(fserr_name(c), fserr_name(fserr_at(j)));
        }
    }
}

static void test_names_match_the_enum(void **state)
{
    (void)state;
    assert_string_equal(fserr_name(FS_ECONFIG), "FS_ECONFIG");
    assert_string_equal(fserr_name(FS_EMYSQL_LOST), "FS_EMYSQL_LOST");
    assert_string_equal(fserr_name(FS_OK), "FS_OK");
    assert_string_equal(fserr_str(FS_OK), "success");
}

static void test_unknown_codes_are_named_safely(void **state)
{
    (void)state;
    assert_string_equal(fserr_name(-1), "FS_E?");
    assert_string_equal(fserr_name(12345), "FS_E?");
    assert_string_equal(fserr_str(-99999), "unknown error code");
    assert_false(fserr_transient(-99999));
    assert_int_equal(fserr_at(fserr_count()), FS_OK);
}

static void test_transient_flag_separates_retry_from_refuse(void **state)
{
    (void)state;
    assert_true(fserr_transient(FS_EMYSQL_LOST));
    assert_true(fserr_transient(FS_EMYSQL_REFUSED));
    assert_true(fserr_transient(FS_EMYSQL_DEADLOCK));
    assert_true(fserr_transient(FS_EMYSQL_READONLY));
    assert_true(fserr_transient(FS_ETIMEOUT));
    assert_true(fserr_transient(FS_ESESSION));
    assert_false(fserr_transient(FS_EMYSQL_AUTH));
    assert_false(fserr_transient(FS_EMYSQL_SCHEMA));
    assert_false(fserr_transient(FS_ECONFIG));
    assert_false(fserr_transient(FS_ETYPE));
    assert_false(fserr_transient(FS_OK));
}

static void test_set_fills_the_struct_and_returns_the_code(void **state)
{
    fserr e = {0};
    (void)state;
    assert_int_equal(fserr_set(&e, FS_ERANGE, "value %d too big", 7), FS_ERANGE);
    assert_int_equal(e.code, FS_ERANGE);
    assert_string_equal(e.msg, "value 7 too big");
    assert_int_equal(fserr_set(NULL, FS_EIO, "ignored"), FS_EIO);
    fserr_set(&e, FS_EIO, NULL);
    assert_string_equal(e.msg, fserr_str(FS_EIO));
    fserr_clear(&e);
    assert_int_equal(e.code, 0);
    assert_string_equal(e.msg, "");
}

static void test_prefix_adds_context_and_keeps_the_code(void **state)
{
    fserr e = {0};
    char big[600];
    (void)state;
    fserr_set(&e, FS_EMYSQL_LOST, "server gone");
    assert_int_equal(fserr_prefix(&e, "sink %s", "employees"), FS_EMYSQL_LOST);
    assert_string_equal(e.msg, "sink employees: server gone");
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fserr_prefix(&e, "%s", big); /* never overflows */
    assert_true(strlen(e.msg) < sizeof(e.msg));
    assert_int_equal(fserr_prefix(NULL, "x"), FS_EINTERNAL);
}

static void test_long_messages_are_truncated_not_overflowed(void **state)
{
    fserr e;
    char big[2000];
    (void)state;
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fserr_set(&e, FS_EIO, "%s", big);
    assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_unique_name_and_a_message),
        cmocka_unit_test(test_names_match_the_enum),
        cmocka_unit_test(test_unknown_codes_are_named_safely),
        cmocka_unit_test(test_transient_flag_separates_retry_from_refuse),
        cmocka_unit_test(test_set_fills_the_struct_and_returns_the_code),
        cmocka_unit_test(test_prefix_adds_context_and_keeps_the_code),
        cmocka_unit_test(test_long_messages_are_truncated_not_overflowed),
    };
    return cmocka_run_group_tests_name("err", tests, NULL, NULL);
}
