/*
 * test_rest.c - the pure parts of the REST snapshot reads: the runQuery request body (first
 * page, later pages at the first page's read time after a cursor, escaping), the reply parser
 * (documents, read time, the last page, billing, errors, malformed replies) and Firestore's
 * order of document paths against MySQL's byte order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "firestore/rest.h"

#include <string.h>

#define DB "projects/p/databases/(default)/documents"
#define DOC(id, ut)                                                                                \
    "{\"document\":{\"name\":\"" DB "/c/" id "\",\"fields\":{\"n\":{\"integerValue\":\"1\"}},"     \
    "\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":\"" ut "\"},"                          \
    "\"readTime\":\"2026-02-01T10:00:00.123456Z\""

static void body_of(const struct rest_query *q, char *out, size_t n)
{
    buf b;
    fserr e = {0};

    buf_init(&b, 0);
    assert_int_equal(rest_query_body(q, &b, &e), 0);
    snprintf(out, n, "%s", buf_str(&b));
    buf_release(&b);
}

static void test_first_page_orders_by_name_without_read_time_or_cursor(void **state)
{
    struct rest_query q = {.collection_id = "employees", .limit = 500};
    char body[1024];
    (void)state;

    body_of(&q, body, sizeof(body));
    assert_string_equal(body, "{\"structuredQuery\":{\"from\":[{\"collectionId\":\"employees\","
                              "\"allDescendants\":false}],\"orderBy\":[{\"field\":{\"fieldPath\":"
                              "\"__name__\"},\"direction\":\"ASCENDING\"}],\"limit\":500}}");
}

static void test_later_pages_start_after_the_cursor_at_the_first_read_time(void **state)
{
    struct rest_query q = {.collection_id = "orders",
                           .all_descendants = true,
                           .limit = 2,
                           .start_after = DB "/u/\"q\"/orders/é",
                           .read_time = {1769940000, 123456000}};
    char body[1024];
    (void)state;

    body_of(&q, body, sizeof(body));
    assert_non_null(strstr(body, "\"allDescendants\":true"));
    assert_non_null(strstr(body, "\"startAt\":{\"values\":[{\"referenceValue\":\"" DB
                                 "/u/\\\"q\\\"/orders/é\"}],\"before\":false}"));
    assert_non_null(strstr(body, "\"limit\":2}"));
    assert_non_null(strstr(body, ",\"readTime\":\"2026-02-01T10:00:00.123456Z\"}"));
}

static void test_a_query_without_collection_or_page_size_is_refused(void **state)
{
    struct rest_query q = {.collection_id = "c", .limit = 0};
    buf b;
    fserr e = {0};
    (void)state;

    buf_init(&b, 0);
    assert_int_equal(rest_query_body(&q, &b, &e), FS_EINVAL);
    q.limit = 1;
    q.collection_id = "";
    assert_int_equal(rest_query_body(&q, &b, &e), FS_EINVAL);
    buf_release(&b);
}

static void test_a_full_page_says_more_may_follow_and_bills_each_document(void **state)
{
    const char *reply = "[" DOC("a", "2026-01-02T00:00:00Z") "}," DOC(
        "b", "2026-01-03T00:00:00.5Z") ",\"done\":true}]";
    struct rest_page p = {0};
    fserr e = {0};
    (void)state;

    assert_int_equal(rest_parse_page(reply, strlen(reply), 2, &p, &e), 0);
    assert_int_equal(p.ndocs, 2);
    assert_string_equal(p.docs[0].name, DB "/c/a");
    assert_string_equal(p.docs[1].name, DB "/c/b");
    assert_int_equal(p.docs[1].update_time.nanos, 500000000);
    assert_int_equal(p.read_time.seconds, 1769940000);
    assert_int_equal(p.read_time.nanos, 123456000);
    assert_true(p.more);
    assert_int_equal(p.billed, 2);
    rest_page_release(&p);
    assert_int_equal(rest_parse_page(reply, strlen(reply), 3, &p, &e), 0);
    assert_false(p.more);
    rest_page_release(&p);
}

static void test_an_empty_result_has_a_read_time_and_bills_one_read(void **state)
{
    const char *reply = "[{\"readTime\":\"2026-02-01T10:00:00Z\",\"done\":true}]";
    struct rest_page p = {0};
    fserr e = {0};
    (void)state;

    assert_int_equal(rest_parse_page(reply, strlen(reply), 500, &p, &e), 0);
    assert_int_equal(p.ndocs, 0);
    assert_false(p.more);
    assert_int_equal(p.billed, 1);
    assert_int_equal(p.read_time.seconds, 1769940000);
}

static void test_error_elements_and_malformed_replies_fail_the_page(void **state)
{
    static const char *const bad[] = {
        "{}",
        "[1]",
        "[{\"done\":true}]",
        "[" DOC("a", "not a time") "}]",
        "[{\"readTime\":\"2026-02-01T10:00:00Z\",\"document\":{\"name\":\"x\"}}]",
        "[{\"error\":{\"code\":400,\"status\":\"FAILED_PRECONDITION\",\"message\":\"too old\"}}]",
        "[{\"readTime\":\"2026-02-01T10:00:00Z\"",
    };
    struct rest_page p = {0};
    fserr e = {0};
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = rest_parse_page(bad[i], strlen(bad[i]), 10, &p, &e);
        if (rc == 0)
            fail_msg("reply %zu was accepted", i);
        assert_int_equal(p.ndocs, 0);
        assert_null(p.docs);
    }
    assert_int_equal(rest_parse_page(bad[5], strlen(bad[5]), 10, &p, &e), FS_EHTTPSTATUS);
    assert_non_null(strstr(e.msg, "FAILED_PRECONDITION: too old"));
}

static void test_error_bodies_give_status_and_message_without_control_characters(void **state)
{
    const char *body = "{\"error\":{\"code\":403,\"message\":\"no\\nway\",\"status\":"
                       "\"PERMISSION_DENIED\"}}";
    buf out;
    (void)state;

    buf_init(&out, 0);
    rest_error_text(body, strlen(body), &out);
    assert_string_equal(buf_str(&out), "PERMISSION_DENIED: noway");
    buf_reset(&out);
    rest_error_text("Not Found", 9, &out);
    assert_string_equal(buf_str(&out), "");
    buf_release(&out);
}

static int cmp(const char *a, const char *b)
{
    int c = rest_path_cmp(a, strlen(a), b, strlen(b));
    return c < 0 ? -1 : c > 0;
}

static void test_paths_compare_by_segment_not_by_bytes(void **state)
{
    (void)state;
    /* bytes put "a-b/x" (0x2D) before "a/x" (0x2F); Firestore does not */
    assert_int_equal(cmp("g/a/items/x", "g/a-b/items/x"), -1);
    assert_int_equal(cmp("g/a b/items/x", "g/a/items/x"), 1);
    assert_int_equal(cmp("c/a", "c/a"), 0);
    assert_int_equal(cmp("c/a", "c/a/s/b"), -1);
    assert_int_equal(cmp("x", "x-1"), -1);
}

static void test_numeric_ids_come_first_in_numeric_order(void **state)
{
    (void)state;
    assert_int_equal(cmp("__id10__", "__id7__"), 1);
    assert_int_equal(cmp("__id-5__", "__id7__"), -1);
    assert_int_equal(cmp("__id99__", "A"), -1);
    assert_int_equal(cmp("__id__", "A"), 1); /* not numeric: bytes */
    assert_int_equal(cmp("__idx1__", "__id1__"), 1);
}

static void test_ids_compare_by_utf8_bytes(void **state)
{
    (void)state;
    /* U+FF01 before U+1F600, as the emulator orders them (UTF-16 would not) */
    assert_int_equal(cmp("\xEF\xBC\x81x", "\xF0\x9F\x98\x80x"), -1);
    assert_int_equal(cmp("B", "a"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_page_orders_by_name_without_read_time_or_cursor),
        cmocka_unit_test(test_later_pages_start_after_the_cursor_at_the_first_read_time),
        cmocka_unit_test(test_a_query_without_collection_or_page_size_is_refused),
        cmocka_unit_test(test_a_full_page_says_more_may_follow_and_bills_each_document),
        cmocka_unit_test(test_an_empty_result_has_a_read_time_and_bills_one_read),
        cmocka_unit_test(test_error_elements_and_malformed_replies_fail_the_page),
        cmocka_unit_test(test_error_bodies_give_status_and_message_without_control_characters),
        cmocka_unit_test(test_paths_compare_by_segment_not_by_bytes),
        cmocka_unit_test(test_numeric_ids_come_first_in_numeric_order),
        cmocka_unit_test(test_ids_compare_by_utf8_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
