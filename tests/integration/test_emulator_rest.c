/*
 * test_emulator_rest.c - the harness really reaches Google's Firestore emulator: a document
 * written through the REST API reads back with its fields and timestamps, a batched commit
 * applies atomically, and clearing the emulator empties it. Later layers build on these calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/harness/svc.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

static struct svc_env env;

static int setup(void **state)
{
    fserr e = {0};
    (void)state;
    if (svc_env_load(&env, &e) != 0 || svc_emulator_clear(&env, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    return 0;
}

static cJSON *request(const char *method, const char *path, const char *body, long want)
{
    buf out;
    long status = 0;
    fserr e = {0};
    cJSON *j;

    buf_init(&out, 1 << 20);
    assert_int_equal(svc_http(&env, method, path, body, &out, &status, &e), 0);
    if (status != want)
        fail_msg("%s %s: HTTP %ld, want %ld: %s", method, path, status, want, buf_str(&out));
    j = cJSON_Parse(buf_str(&out));
    buf_release(&out);
    assert_non_null(j);
    return j;
}

static void test_document_written_by_rest_reads_back(void **state)
{
    char path[256];
    cJSON *w, *r, *f;
    (void)state;

    snprintf(path, sizeof(path), "/v1/projects/%s/databases/(default)/documents/employees/e1",
             env.project);
    w = request("PATCH", path,
                "{\"fields\":{\"name\":{\"stringValue\":\"Zoë 日本 😀\"},"
                "\"age\":{\"integerValue\":\"9007199254740993\"}}}",
                200);
    r = request("GET", path, NULL, 200);
    f = cJSON_GetObjectItem(r, "fields");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(f, "name"), "stringValue")->valuestring,
        "Zoë 日本 😀");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(f, "age"), "integerValue")->valuestring,
        "9007199254740993");
    assert_string_equal(cJSON_GetObjectItem(r, "updateTime")->valuestring,
                        cJSON_GetObjectItem(w, "updateTime")->valuestring);
    assert_non_null(strstr(cJSON_GetObjectItem(r, "name")->valuestring, "/documents/employees/e1"));
    cJSON_Delete(w);
    cJSON_Delete(r);
}

static void test_batched_commit_writes_every_document(void **state)
{
    char path[256], body[1024];
    cJSON *c, *l;
    (void)state;

    snprintf(path, sizeof(path), "/v1/projects/%s/databases/(default)/documents:commit",
             env.project);
    snprintf(body, sizeof(body),
             "{\"writes\":["
             "{\"update\":{\"name\":\"projects/%s/databases/(default)/documents/batch/b1\","
             "\"fields\":{\"n\":{\"integerValue\":\"1\"}}}},"
             "{\"update\":{\"name\":\"projects/%s/databases/(default)/documents/batch/b2\","
             "\"fields\":{\"n\":{\"integerValue\":\"2\"}}}}]}",
             env.project, env.project);
    c = request("POST", path, body, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "writeResults")), 2);
    snprintf(path, sizeof(path), "/v1/projects/%s/databases/(default)/documents/batch",
             env.project);
    l = request("GET", path, NULL, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(l, "documents")), 2);
    cJSON_Delete(c);
    cJSON_Delete(l);
}

static void test_clearing_the_emulator_removes_documents(void **state)
{
    char path[256];
    fserr e = {0};
    cJSON *r;
    (void)state;

    snprintf(path, sizeof(path), "/v1/projects/%s/databases/(default)/documents/gone/g1",
             env.project);
    cJSON_Delete(request("PATCH", path, "{\"fields\":{}}", 200));
    assert_int_equal(svc_emulator_clear(&env, &e), 0);
    r = request("GET", path, NULL, 404);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document_written_by_rest_reads_back),
        cmocka_unit_test(test_batched_commit_writes_every_document),
        cmocka_unit_test(test_clearing_the_emulator_removes_documents),
    };
    return cmocka_run_group_tests_name("emulator_rest", tests, setup, NULL);
}
