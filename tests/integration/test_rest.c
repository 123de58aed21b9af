/*
 * test_rest.c - runQuery pages on the loop's HTTP client against the scriptable fake Firestore:
 * the request (method, path, body, Authorization header) and the decoded page; throttling and
 * server failures reported as transient, a refused query as permanent with the server's words;
 * a cancelled call never calls back; and the loop ends with nothing of the client left.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "firestore/http.h"
#include "firestore/rest.h"
#include "tests/fake/fake_fs.h"

#include <stdlib.h>
#include <string.h>

struct got {
    int calls, rc;
    long status;
    fserr e;
    struct rest_page page;
};

static void on_page(void *ud, int rc, const fserr *e, long status, struct rest_page *page)
{
    struct got *g = ud;
    g->calls++;
    g->rc = rc;
    g->status = status;
    if (e)
        g->e = *e;
    if (page) {
        g->page = *page;
        memset(page, 0, sizeof(*page));
    }
}

static void closed(void *ud)
{
    *(int *)ud = 1;
}

/* One page request against fs, the loop run to the end. */
static void run_one(fake_fs *fs, const struct rest_query *tmpl, struct got *g, bool cancel)
{
    uv_loop_t loop;
    http_client *c;
    struct rest_query q = *tmpl;
    rest_call *call = NULL;
    fserr e = {0};
    int done = 0;

    memset(g, 0, sizeof(*g));
    assert_int_equal(uv_loop_init(&loop), 0);
    c = http_client_new(&loop, &e);
    assert_non_null(c);
    q.base_url = fake_fs_url(fs);
    assert_int_equal(rest_query_start(c, &q, on_page, g, &call, &e), 0);
    if (cancel)
        rest_call_cancel(call);
    while (!g->calls && !cancel && uv_run(&loop, UV_RUN_ONCE))
        ;
    http_client_close(c, closed, &done);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(done);
    http_client_free(c);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static const struct rest_query Q = {
    .parent = "projects/p/databases/(default)/documents",
    .collection_id = "employees",
    .limit = 2,
    .auth = "Bearer sekrit-token",
    .timeout_ms = 10000,
};

static void test_a_page_is_posted_with_its_query_and_token_and_decoded(void **state)
{
    fake_fs *fs = fake_fs_start();
    struct rest_query q = Q;
    struct got g;
    char *body, *auth;
    (void)state;

    assert_non_null(fs);
    fake_fs_push_runquery(
        fs, "[{\"document\":{\"name\":\"projects/p/databases/(default)/documents/employees/a\","
            "\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":\"2026-01-01T00:00:01Z\"},"
            "\"readTime\":\"2026-01-02T00:00:00Z\",\"done\":true}]");
    q.start_after = "projects/p/databases/(default)/documents/employees/0";
    q.read_time.seconds = 1767312000;
    run_one(fs, &q, &g, false);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.rc, 0);
    assert_int_equal(g.status, 200);
    assert_int_equal(g.page.ndocs, 1);
    assert_false(g.page.more);
    assert_int_equal(g.page.read_time.seconds, 1767312000);
    rest_page_release(&g.page);
    body = fake_fs_last_body(fs, FAKE_FS_REQ_RUNQUERY);
    assert_non_null(strstr(body, "\"referenceValue\":\"projects/p/databases/(default)/documents/"
                                 "employees/0\""));
    assert_non_null(strstr(body, "\"readTime\":\"2026-01-02T00:00:00Z\""));
    auth = fake_fs_last_header(fs, FAKE_FS_REQ_RUNQUERY, "Authorization");
    assert_string_equal(auth, "Bearer sekrit-token");
    free(body);
    free(auth);
    fake_fs_free(fs);
}

static void test_throttling_is_transient_and_a_refused_query_permanent(void **state)
{
    fake_fs *fs = fake_fs_start();
    struct got g;
    (void)state;

    assert_non_null(fs);
    fake_fs_fail_next(fs, FAKE_FS_REQ_RUNQUERY, 429, NULL);
    run_one(fs, &Q, &g, false);
    assert_int_equal(g.rc, FS_EHTTP);
    assert_int_equal(g.status, 429);
    fake_fs_fail_next(fs, FAKE_FS_REQ_RUNQUERY, 503, NULL);
    run_one(fs, &Q, &g, false);
    assert_int_equal(g.rc, FS_EHTTP);
    fake_fs_fail_next(fs, FAKE_FS_REQ_RUNQUERY, 400,
                      "{\"error\":{\"code\":400,\"message\":\"The requested snapshot version is "
                      "too old.\",\"status\":\"FAILED_PRECONDITION\"}}");
    run_one(fs, &Q, &g, false);
    assert_int_equal(g.rc, FS_EHTTPSTATUS);
    assert_int_equal(g.status, 400);
    assert_non_null(strstr(g.e.msg, "FAILED_PRECONDITION: The requested snapshot version"));
    assert_null(strstr(g.e.msg, "sekrit"));
    fake_fs_free(fs);
}

static void test_a_cancelled_call_never_calls_back(void **state)
{
    fake_fs *fs = fake_fs_start();
    struct got g;
    (void)state;

    assert_non_null(fs);
    fake_fs_fail_next(fs, FAKE_FS_REQ_RUNQUERY, FAKE_FS_HANG, NULL);
    run_one(fs, &Q, &g, true);
    assert_int_equal(g.calls, 0);
    fake_fs_free(fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_page_is_posted_with_its_query_and_token_and_decoded),
        cmocka_unit_test(test_throttling_is_transient_and_a_refused_query_permanent),
        cmocka_unit_test(test_a_cancelled_call_never_calls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
