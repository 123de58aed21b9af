/*
 * test_base64.c - RFC 4648 vectors in both alphabets, and strict refusal of malformed input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/base64.h"
#include "common/err.h"

#include <string.h>

static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *std_enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
static const char *url_enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};

static void test_rfc4648_vectors_encode_and_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        buf b;
        buf_init(&b, 0);
        assert_int_equal(base64_encode(BASE64_STD, plain[i], strlen(plain[i]), &b), 0);
        assert_string_equal(buf_str(&b), std_enc[i]);
        buf_reset(&b);
        assert_int_equal(base64_encode(BASE64_URL, plain[i], strlen(plain[i]), &b), 0);
        assert_string_equal(buf_str(&b), url_enc[i]);
        buf_reset(&b);
        assert_int_equal(base64_decode(BASE64_STD, std_enc[i], strlen(std_enc[i]), &b), 0);
        assert_string_equal(buf_str(&b), plain[i]);
        buf_reset(&b);
        assert_int_equal(base64_decode(BASE64_URL, url_enc[i], strlen(url_enc[i]), &b), 0);
        assert_string_equal(buf_str(&b), plain[i]);
        buf_release(&b);
    }
}

static void test_alphabets_differ_in_two_characters(void **state)
{
    const unsigned char bytes[] = {0x00, 0x01, 0x02, 0xff, 0xef};
    buf b;
    (void)state;
    buf_init(&b, 0);
    base64_encode(BASE64_STD, bytes, sizeof(bytes), &b);
    assert_string_equal(buf_str(&b), "AAEC/+8="); /* the emulator's bytesValue example */
    buf_reset(&b);
    base64_encode(BASE64_URL, bytes, sizeof(bytes), &b);
    assert_string_equal(buf_str(&b), "AAEC_-8");
    buf_reset(&b);
    assert_int_equal(base64_decode(BASE64_STD, "AAEC/+8=", 8, &b), 0);
    assert_memory_equal(b.p, bytes, sizeof(bytes));
    buf_release(&b);
}

static void test_malformed_input_is_refused(void **state)
{
    static const char *bad_std[] = {"Zg=", "Zg", "Z===", "Zm9v!", "Zh==", "Zm9=", "AAEC_-8=", "="};
    buf b;
    (void)state;
    buf_init(&b, 0);
    for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++)
        assert_int_equal(base64_decode(BASE64_STD, bad_std[i], strlen(bad_std[i]), &b),
                         FS_EPARSE);
    assert_int_equal(base64_decode(BASE64_URL, "Z", 1, &b), FS_EPARSE);
    assert_int_equal(base64_decode(BASE64_URL, "AA+C", 4, &b), FS_EPARSE);
    buf_release(&b);
}

static void test_output_respects_the_buffer_cap(void **state)
{
    buf b;
    (void)state;
    buf_init(&b, 4);
    assert_int_equal(base64_encode(BASE64_STD, "foobar", 6, &b), FS_ETOOBIG);
    buf_release(&b);
    buf_init(&b, 2);
    assert_int_equal(base64_decode(BASE64_STD, "Zm9vYmFy", 8, &b), FS_ETOOBIG);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors_encode_and_decode),
        cmocka_unit_test(test_alphabets_differ_in_two_characters),
        cmocka_unit_test(test_malformed_input_is_refused),
        cmocka_unit_test(test_output_respects_the_buffer_cap),
    };
    return cmocka_run_group_tests_name("base64", tests, NULL, NULL);
}
