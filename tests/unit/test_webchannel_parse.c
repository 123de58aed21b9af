/*
 * test_webchannel_parse.c - the pure parts of the WebChannel client: encodeURIComponent-style
 * encoding (emulator SIDs end in "=="), the URLs of the four request kinds with their parameters
 * in the JS client's order, the handshake and forward form bodies, the "c" array, skipping
 * arrays already processed, control payloads (noop, stop, close, error in its three shapes), the
 * forward-POST reply, the backoff curve, and the URL policy of the HTTP client (TLS, or plain
 * HTTP to loopback only), including that wc_new() refuses a config that breaks it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "firestore/http.h"
#include "firestore/json.h"
#include "firestore/webchannel.h"

#include <string.h>
#include <uv.h>

#define DB "projects/demo/databases/(default)"
#define BASE "http://127.0.0.1:8080"
#define CH BASE WC_LISTEN_PATH "?database=projects%2Fdemo%2Fdatabases%2F(default)&VER=8"

static char *enc(const char *s)
{
    static char out[512];
    buf b;
    buf_init(&b, 0);
    assert_int_equal(wc_urlenc(&b, s, strlen(s)), 0);
    assert_true(b.len < sizeof(out));
    memcpy(out, buf_str(&b), b.len + 1);
    buf_release(&b);
    return out;
}

static void test_urlenc_is_encodeURIComponent(void **state)
{
    (void)state;
    assert_string_equal(enc("aIJ8LnpNFh5Yj54f7XAaFg=="), "aIJ8LnpNFh5Yj54f7XAaFg%3D%3D");
    assert_string_equal(enc(DB), "projects%2Fdemo%2Fdatabases%2F(default)");
    assert_string_equal(enc("-_.!~*'()AZaz09"), "-_.!~*'()AZaz09");
    assert_string_equal(enc(" +&=?#%/:\r\n"), "%20%2B%26%3D%3F%23%25%2F%3A%0D%0A");
    assert_string_equal(enc("é日😀"), "%C3%A9%E6%97%A5%F0%9F%98%80");
}

static void test_urlenc_respects_the_buffer_cap(void **state)
{
    buf b;
    (void)state;
    buf_init(&b, 5);
    assert_int_equal(wc_urlenc(&b, "==", 2), FS_ETOOBIG);
    buf_release(&b);
}

static char *url(struct wc_url_params *p)
{
    static char out[2048];
    buf b;
    p->base_url = BASE;
    p->path = WC_LISTEN_PATH;
    p->database = DB;
    p->zx = "abc";
    buf_init(&b, 0);
    assert_int_equal(wc_build_url(&b, p), 0);
    assert_true(b.len < sizeof(out));
    memcpy(out, buf_str(&b), b.len + 1);
    buf_release(&b);
    return out;
}

static void test_handshake_url_has_rid_cver_and_session_param_name(void **state)
{
    struct wc_url_params p = {.kind = WC_REQ_HANDSHAKE,
                              .rid = 1234,
                              .attempt = 1,
                              .sid = "ignored",
                              .gsessionid = "ignored"};
    (void)state;
    assert_string_equal(url(&p), CH "&RID=1234&CVER=22&X-HTTP-Session-Id=gsessionid&zx=abc&t=1");
}

static void test_back_channel_url_encodes_sid_and_acknowledges_aid(void **state)
{
    struct wc_url_params p = {
        .kind = WC_REQ_BACK, .sid = "aIJ8LnpNFh5Yj54f7XAaFg==", .aid = 4, .attempt = 2};
    (void)state;
    assert_string_equal(url(&p), CH "&RID=rpc&SID=aIJ8LnpNFh5Yj54f7XAaFg%3D%3D&AID=4&CI=1"
                                    "&TYPE=xmlhttp&zx=abc&t=2");
}

static void test_gsessionid_follows_the_server_header_when_present(void **state)
{
    struct wc_url_params p = {.kind = WC_REQ_BACK, .sid = "S", .aid = 0, .gsessionid = "g+1"};
    (void)state;
    assert_non_null(strstr(url(&p), "&TYPE=xmlhttp&gsessionid=g%2B1&zx=abc&t=1"));
    p.gsessionid = "";
    assert_null(strstr(url(&p), "gsessionid"));
    p.gsessionid = NULL;
    assert_null(strstr(url(&p), "gsessionid"));
}

static void test_forward_and_terminate_urls(void **state)
{
    struct wc_url_params f = {
        .kind = WC_REQ_FORWARD, .sid = "a==", .rid = 1235, .aid = 10, .attempt = 1};
    struct wc_url_params t = {.kind = WC_REQ_TERMINATE, .sid = "a==", .rid = 1236, .attempt = 1};
    (void)state;
    assert_string_equal(url(&f), CH "&SID=a%3D%3D&RID=1235&AID=10&zx=abc&t=1");
    assert_string_equal(url(&t), CH "&SID=a%3D%3D&RID=1236&TYPE=terminate&zx=abc&t=1");
}

static void test_handshake_body_puts_the_encoded_auth_header_first(void **state)
{
    const char *msgs[] = {"{\"a\":\"=&\"}", "{}"};
    buf b;
    (void)state;
    buf_init(&b, 0);
    assert_int_equal(wc_build_body(&b, "Bearer x.y", 0, msgs, 2), 0);
    assert_string_equal(buf_str(&b), "headers=Authorization%3ABearer%20x.y%0D%0A&count=2&ofs=0"
                                     "&req0___data__=%7B%22a%22%3A%22%3D%26%22%7D"
                                     "&req1___data__=%7B%7D");
    buf_release(&b);
}

static void test_forward_body_numbers_maps_from_ofs_without_auth(void **state)
{
    const char *msgs[] = {"{\"removeTarget\":2}"};
    buf b;
    (void)state;
    buf_init(&b, 0);
    assert_int_equal(wc_build_body(&b, NULL, 7, msgs, 1), 0);
    assert_string_equal(buf_str(&b), "count=1&ofs=7&req0___data__=%7B%22removeTarget%22%3A2%7D");
    buf_reset(&b);
    assert_int_equal(wc_build_body(&b, "", 3, NULL, 0), 0);
    assert_string_equal(buf_str(&b), "count=0&ofs=3");
    buf_release(&b);
}

/* Parses p as a payload and returns the data token of its first array. */
static int first_data(json_doc *d, const char *p)
{
    int it = 0, data;
    int64_t id;
    assert_int_equal(wc_payload_parse(d, p, strlen(p), NULL), 0);
    assert_true(wc_array_next(d, &it, -1, &id, &data));
    return data;
}

static void test_hello_gives_sid_version_and_keepalive(void **state)
{
    json_doc d;
    struct wc_hello h;
    fserr e = {0};
    (void)state;
    json_doc_init(&d);
    assert_int_equal(
        wc_parse_hello(&d,
                       first_data(&d, "[[0,[\"c\",\"aIJ8LnpNFh5Yj54f7XAaFg==\",\"\",8,12,"
                                      "30000]]]"),
                       &h, &e),
        0);
    assert_string_equal(h.sid, "aIJ8LnpNFh5Yj54f7XAaFg==");
    assert_int_equal(h.version, 8);
    assert_int_equal(h.keepalive_ms, 30000);
    /* without CVER the keep-alive is absent; escapes in the SID are decoded */
    assert_int_equal(
        wc_parse_hello(&d, first_data(&d, "[[0,[\"c\",\"ab\\u003d\",\"\",8,12]]]"), &h, &e), 0);
    assert_string_equal(h.sid, "ab=");
    assert_int_equal(h.keepalive_ms, 30000);
    assert_int_equal(
        wc_parse_hello(&d, first_data(&d, "[[0,[\"c\",\"s\",\"\",8,12,45000]]]"), &h, &e), 0);
    assert_int_equal(h.keepalive_ms, 45000);
    json_doc_release(&d);
}

static void test_hello_refuses_bad_sessions(void **state)
{
    json_doc d;
    struct wc_hello h;
    char big[400];
    (void)state;
    json_doc_init(&d);
    assert_int_equal(wc_parse_hello(&d, first_data(&d, "[[0,[\"c\",\"s\",\"\",7,12]]]"), &h, NULL),
                     FS_EPROTO);
    assert_int_equal(wc_parse_hello(&d, first_data(&d, "[[0,[\"c\",\"\",\"\",8]]]"), &h, NULL),
                     FS_EPROTO);
    assert_int_equal(wc_parse_hello(&d, first_data(&d, "[[0,[\"c\",\"a\\nb\",\"\",8]]]"), &h, NULL),
                     FS_EPROTO);
    assert_int_equal(wc_parse_hello(&d, first_data(&d, "[[0,[\"c\",5,\"\",8]]]"), &h, NULL),
                     FS_EPROTO);
    snprintf(big, sizeof(big), "[[0,[\"c\",\"%0300d\",\"\",8]]]", 1);
    assert_int_equal(wc_parse_hello(&d, first_data(&d, big), &h, NULL), FS_EPROTO);
    json_doc_release(&d);
}

static void test_arrays_at_or_below_the_last_id_are_skipped(void **state)
{
    const char *p = "[[3,[\"noop\"]],[4,[{\"a\":1}]],[5,[{\"b\":2}]],[6,[\"noop\"]]]";
    json_doc d;
    int64_t id, seen[8];
    int it = 0, data, n = 0;
    (void)state;
    json_doc_init(&d);
    assert_int_equal(wc_payload_parse(&d, p, strlen(p), NULL), 0);
    while (wc_array_next(&d, &it, 4, &id, &data))
        seen[n++] = id;
    assert_int_equal(n, 2);
    assert_int_equal(seen[0], 5);
    assert_int_equal(seen[1], 6);
    assert_false(wc_array_next(&d, &it, 4, &id, &data)); /* stays at the end */
    it = 0;
    assert_false(wc_array_next(&d, &it, 6, &id, &data));
    json_doc_release(&d);
}

static void test_payload_shape_is_enforced(void **state)
{
    static const char *bad[] = {
        "{\"a\":1}",
        "[1,2]",
        "[[1]]",
        "[[-1,[\"noop\"]]]",
        "[[1.5,[\"noop\"]]]",
        "[[\"1\",[\"noop\"]]]",
        "[[1,[\"noop\"]],5]",
        "[[1,[\"noop\"]]",
    };
    json_doc d;
    (void)state;
    json_doc_init(&d);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_true(wc_payload_parse(&d, bad[i], strlen(bad[i]), NULL) < 0);
    assert_int_equal(wc_payload_parse(&d, "[]", 2, NULL), 0);
    json_doc_release(&d);
}

static enum wc_kind kind_of(json_doc *d, const char *p, int *msg)
{
    return wc_classify(d, first_data(d, p), msg);
}

static void test_control_payloads_are_classified(void **state)
{
    json_doc d;
    int msg;
    (void)state;
    json_doc_init(&d);
    assert_int_equal(kind_of(&d, "[[5,[\"noop\"]]]", &msg), WC_K_NOOP);
    assert_int_equal(kind_of(&d, "[[5,[\"stop\"]]]", &msg), WC_K_STOP);
    assert_int_equal(kind_of(&d, "[[5,[\"close\"]]]", &msg), WC_K_CLOSE);
    assert_int_equal(kind_of(&d, "[[0,[\"c\",\"s\",\"\",8]]]", &msg), WC_K_HELLO);
    assert_int_equal(kind_of(&d, "[[5,[\"what\"]]]", &msg), WC_K_OTHER);
    assert_int_equal(kind_of(&d, "[[5,[]]]", &msg), WC_K_OTHER);
    assert_int_equal(kind_of(&d, "[[5,[{\"targetChange\":{}}]]]", &msg), WC_K_DATA);
    assert_int_equal(json_type_of(&d, msg), JSON_OBJECT);
    assert_true(json_obj_get(&d, msg, "targetChange") >= 0);
    assert_int_equal(kind_of(&d, "[[5,[{\"error\":{\"status\":\"X\"}}]]]", &msg), WC_K_ERROR);
    assert_true(json_obj_get(&d, msg, "error") >= 0);
    assert_int_equal(kind_of(&d, "[[5,[[{\"error\":{}}]]]]", &msg), WC_K_ERROR);
    assert_true(json_obj_get(&d, msg, "error") >= 0);
    assert_int_equal(kind_of(&d, "[[5,{\"error\":{}}]]", &msg), WC_K_ERROR);
    json_doc_release(&d);
}

static void test_error_payload_maps_status_to_a_code(void **state)
{
    json_doc d;
    int msg;
    char why[256];
    (void)state;
    json_doc_init(&d);
    kind_of(&d,
            "[[5,[{\"error\":{\"status\":\"UNAUTHENTICATED\",\"message\":\"Bearer abc.def "
            "expired\"}}]]]",
            &msg);
    assert_int_equal(wc_error_info(&d, msg, why, sizeof(why)), FS_EAUTH);
    assert_non_null(strstr(why, "UNAUTHENTICATED"));
    assert_null(strstr(why, "abc.def")); /* a token echoed by the server is scrubbed */
    kind_of(&d, "[[5,[{\"error\":{\"code\":14,\"status\":\"UNAVAILABLE\",\"message\":\"x\"}}]]]",
            &msg);
    assert_int_equal(wc_error_info(&d, msg, why, sizeof(why)), FS_ESESSION);
    assert_non_null(strstr(why, "UNAVAILABLE (code 14): x"));
    json_doc_release(&d);
}

static void test_forward_reply_is_read(void **state)
{
    int64_t r[3];
    (void)state;
    assert_int_equal(wc_parse_post_reply("7\n[1,6,7]", 9, r, NULL), 0);
    assert_int_equal(r[0], 1);
    assert_int_equal(r[1], 6);
    assert_int_equal(r[2], 7);
    assert_int_equal(wc_parse_post_reply("7\n[0,0,7]", 9, r, NULL), 0);
    assert_int_equal(r[0], 0);
    assert_int_equal(wc_parse_post_reply("", 0, r, NULL), FS_EPROTO);
    assert_int_equal(wc_parse_post_reply("7\n[1,6,", 7, r, NULL), FS_EPROTO);
    assert_int_equal(wc_parse_post_reply("5\n[1,6]", 7, r, NULL), FS_EPROTO);
    assert_int_equal(wc_parse_post_reply("<html>", 6, r, NULL), FS_EPROTO);
}

static void test_backoff_grows_caps_and_jitters(void **state)
{
    (void)state;
    assert_int_equal(wc_backoff_ms(1000, 60000, 0, 0.0), 500);
    assert_int_equal(wc_backoff_ms(1000, 60000, 0, 0.9999), 999);
    assert_int_equal(wc_backoff_ms(1000, 60000, 3, 0.0), 4000);
    assert_true(wc_backoff_ms(1000, 60000, 3, 0.5) > 4000);
    assert_true(wc_backoff_ms(1000, 60000, 3, 0.9999) <= 8000);
    assert_int_equal(wc_backoff_ms(1000, 60000, 40, 0.0), 30000);
    assert_true(wc_backoff_ms(1000, 60000, 40, 0.9999) <= 60000);
    assert_true(wc_backoff_ms(1000, 60000, 40, 0.9999) > 59000);
}

static void test_plain_http_is_refused_off_loopback(void **state)
{
    (void)state;
    assert_int_equal(http_check_url("https://firestore.googleapis.com/x", NULL), 0);
    assert_int_equal(http_check_url("http://127.0.0.1:8080/x", NULL), 0);
    assert_int_equal(http_check_url("http://127.9.8.7/x", NULL), 0);
    assert_int_equal(http_check_url("http://localhost:1/x", NULL), 0);
    assert_int_equal(http_check_url("http://[::1]:8080/x", NULL), 0);
    assert_int_equal(http_check_url("http://firestore.googleapis.com/x", NULL), FS_EINVAL);
    assert_int_equal(http_check_url("http://128.0.0.1/x", NULL), FS_EINVAL);
    assert_int_equal(http_check_url("http://127.0.0.1@evil.example/x", NULL), FS_EINVAL);
    assert_int_equal(http_check_url("http://localhost.evil.example/x", NULL), FS_EINVAL);
    assert_int_equal(http_check_url("ftp://127.0.0.1/x", NULL), FS_EINVAL);
    /* the metadata server's link-local address, and nothing else link-local */
    assert_int_equal(http_check_url("http://169.254.169.254/computeMetadata/v1/x", NULL), 0);
    assert_int_equal(http_check_url("http://169.254.169.253/x", NULL), FS_EINVAL);
    assert_int_equal(http_check_url("http://metadata.google.internal/x", NULL), FS_EINVAL);
    assert_int_equal(http_check_url("not a url", NULL), FS_EINVAL);
}

static int ignore_message(void *ud, const json_doc *d, int tok)
{
    (void)ud;
    (void)d;
    (void)tok;
    return 0;
}

static void closed(void *ud)
{
    *(int *)ud = 1;
}

static void test_wc_new_refuses_bad_configs_and_leaves_no_handles(void **state)
{
    uv_loop_t loop;
    http_client *h;
    wc_session *s;
    fserr e = {0};
    int done = 0;
    struct wc_callbacks cb = {.on_message = ignore_message};
    struct wc_config cfg = {.base_url = "http://example.com", .database = DB};
    (void)state;

    assert_int_equal(uv_loop_init(&loop), 0);
    h = http_client_new(&loop, &e);
    assert_non_null(h);
    assert_null(wc_new(&loop, h, &cfg, &cb, NULL, &e));
    assert_int_equal(e.code, FS_EINVAL);
    cfg.base_url = BASE;
    cfg.database = "demo";
    assert_null(wc_new(&loop, h, &cfg, &cb, NULL, &e));
    cfg.database = DB;
    cb.on_message = NULL;
    assert_null(wc_new(&loop, h, &cfg, &cb, NULL, &e));
    cb.on_message = ignore_message;
    s = wc_new(&loop, h, &cfg, &cb, NULL, &e);
    assert_non_null(s);
    assert_int_equal(wc_send(s, "not json", &e), FS_EINVAL);
    assert_int_equal(wc_send(s, "[1]", &e), FS_EINVAL);
    wc_free(s); /* never started: no terminate, just the timers */
    http_client_close(h, closed, &done);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(done, 1);
    http_client_free(h);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urlenc_is_encodeURIComponent),
        cmocka_unit_test(test_urlenc_respects_the_buffer_cap),
        cmocka_unit_test(test_handshake_url_has_rid_cver_and_session_param_name),
        cmocka_unit_test(test_back_channel_url_encodes_sid_and_acknowledges_aid),
        cmocka_unit_test(test_gsessionid_follows_the_server_header_when_present),
        cmocka_unit_test(test_forward_and_terminate_urls),
        cmocka_unit_test(test_handshake_body_puts_the_encoded_auth_header_first),
        cmocka_unit_test(test_forward_body_numbers_maps_from_ofs_without_auth),
        cmocka_unit_test(test_hello_gives_sid_version_and_keepalive),
        cmocka_unit_test(test_hello_refuses_bad_sessions),
        cmocka_unit_test(test_arrays_at_or_below_the_last_id_are_skipped),
        cmocka_unit_test(test_payload_shape_is_enforced),
        cmocka_unit_test(test_control_payloads_are_classified),
        cmocka_unit_test(test_error_payload_maps_status_to_a_code),
        cmocka_unit_test(test_forward_reply_is_read),
        cmocka_unit_test(test_backoff_grows_caps_and_jitters),
        cmocka_unit_test(test_plain_http_is_refused_off_loopback),
        cmocka_unit_test(test_wc_new_refuses_bad_configs_and_leaves_no_handles),
    };
    return cmocka_run_group_tests_name("webchannel_parse", tests, NULL, NULL);
}
