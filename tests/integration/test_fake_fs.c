/*
 * test_fake_fs.c - the fake Firestore server (tests/fake/fake_fs.h) behaves as the protocol note
 * (docs/webchannel.md) says, so that transport tests built on it prove something: handshake form
 * and UTF-16 length prefixes, acknowledgement and re-sending on the back channel, long-poll and
 * streaming GET lifecycles, contiguous forward maps, terminate and dead sessions, gsessionid,
 * scripted failures (statuses, hangs, stalls, closed connections, split and raw chunks), the
 * OAuth2 and GCE metadata token endpoints and the runQuery replay. Driven with libcurl's easy API
 * from the test thread; needs no emulator and no MariaDB.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/xalloc.h"
#include "tests/fake/fake_fs.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DB "projects%2Fp%2Fdatabases%2F(default)"
#define MAP0                                                                                       \
    "{\"database\":\"projects/p/databases/(default)\",\"addTarget\":{\"documents\":"               \
    "{\"documents\":[\"projects/p/databases/(default)/documents/emp/Zoë 日本 😀\"]},"         \
    "\"targetId\":2}}"
#define MAP1 "{\"database\":\"projects/p/databases/(default)\",\"removeTarget\":2}"
#define FORM_CT "Content-Type: application/x-www-form-urlencoded"

static fake_fs *fs;

struct resp {
    long status;
    buf body;
    buf hdrs;
    int writes;                   /* calls of the body callback */
    size_t first_len;             /* bytes in the first one */
    void (*hook)(struct resp *r); /* called after each body write */
    int hook_calls;
    double elapsed;
};

static void resp_init(struct resp *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, 0);
    buf_init(&r->hdrs, 0);
}

static void resp_release(struct resp *r)
{
    buf_release(&r->body);
    buf_release(&r->hdrs);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;

    if (r->writes++ == 0)
        r->first_len = sz * n;
    buf_add(&r->body, p, sz * n);
    if (r->hook)
        r->hook(r);
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;

    buf_add(&r->hdrs, p, sz * n);
    return sz * n;
}

static void setup_handle(CURL *h, const char *method, const char *path, const char *body,
                         struct curl_slist *hdrs, long timeout_ms, struct resp *r)
{
    char *url = xasprintf("%s%s", fake_fs_url(fs), path);

    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url); /* curl copies the URL */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(method, body ? "POST" : "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
}

/* One request on a fresh handle; `path` starts with '/'. */
static CURLcode http(const char *method, const char *path, const char *body,
                     struct curl_slist *hdrs, long timeout_ms, struct resp *r)
{
    CURL *h = curl_easy_init();
    CURLcode rc;

    assert_non_null(h);
    setup_handle(h, method, path, body, hdrs, timeout_ms, r);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &r->elapsed);
    curl_easy_cleanup(h);
    return rc;
}

static char *esc(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0), *out = xstrdup(e);
    curl_free(e);
    return out;
}

/* The c array's SID out of a handshake reply body, or NULL. */
static char *sid_of(const char *body)
{
    const char *p = strstr(body, "[\"c\",\""), *q;

    if (!p)
        return NULL;
    p += 6;
    q = strchr(p, '"');
    return q ? xstrndup(p, (size_t)(q - p)) : NULL;
}

/* A successful handshake carrying MAP0; returns the SID (caller frees). */
static char *handshake(void)
{
    struct curl_slist *h = curl_slist_append(NULL, FORM_CT);
    char *m = esc(MAP0), *body = xasprintf("count=1&ofs=0&req0___data__=%s", m), *sid;
    struct resp r;

    resp_init(&r);
    assert_int_equal(http("POST",
                          FAKE_FS_CHANNEL_PATH "?database=" DB
                                               "&VER=8&RID=1000&CVER=22&X-HTTP-Session-Id="
                                               "gsessionid&zx=a&t=1",
                          body, h, 5000, &r),
                     CURLE_OK);
    assert_int_equal(r.status, 200);
    sid = sid_of(buf_str(&r.body));
    assert_non_null(sid);
    resp_release(&r);
    free(body);
    free(m);
    curl_slist_free_all(h);
    return sid;
}

/* Path of a request naming `sid`: "&SID=<escaped>" followed by `rest`. */
static char *chan(const char *sid, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *chan(const char *sid, const char *fmt, ...)
{
    char rest[512], *e = esc(sid), *p;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);
    p = xasprintf("%s?database=%s&VER=8&SID=%s%s", FAKE_FS_CHANNEL_PATH, DB, e, rest);
    free(e);
    return p;
}

static CURLcode get_bc(const char *sid, long aid, int ci, long timeout_ms, struct resp *r)
{
    char *path = chan(sid, "&RID=rpc&AID=%ld&CI=%d&TYPE=xmlhttp&zx=b&t=1", aid, ci);
    CURLcode rc = http("GET", path, NULL, NULL, timeout_ms, r);
    free(path);
    return rc;
}

static CURLcode post_maps(const char *sid, long aid, const char *form, struct resp *r)
{
    struct curl_slist *h = curl_slist_append(NULL, FORM_CT);
    char *path = chan(sid, "&RID=1001&AID=%ld&zx=c&t=1", aid);
    CURLcode rc = http("POST", path, form, h, 5000, r);
    free(path);
    curl_slist_free_all(h);
    return rc;
}

static bool units_end(unsigned char c)
{
    return (c & 0xC0) != 0x80;
}

/* Checks a back-channel body chunk by chunk (each prefix must equal the UTF-16 units of its
 * payload) and collects the array ids in order. Returns the number of ids, -1 if malformed. */
static int chunk_ids(const char *p, size_t n, long *ids, int max)
{
    size_t i = 0;
    int k = 0;

    while (i < n) {
        char *end;
        long units = strtol(p + i, &end, 10), u = 0;
        int depth = 0;
        bool str = false;

        if (end == p + i || *end != '\n')
            return -1;
        i = (size_t)(end - p) + 1;
        for (; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (units_end(c)) {
                if (u == units)
                    break;
                u += c >= 0xF0 ? 2 : 1;
            }
            if (str) {
                if (c == '\\')
                    i++, u++;
                else if (c == '"')
                    str = false;
            } else if (c == '"') {
                str = true;
            } else if (c == '[' && ++depth == 2 && k < max) {
                ids[k++] = strtol(p + i + 1, NULL, 10);
            } else if (c == ']') {
                depth--;
            }
        }
        if (u != units || depth != 0)
            return -1;
    }
    return k;
}

static int body_ids(struct resp *r, long *ids, int max)
{
    return chunk_ids(r->body.p ? r->body.p : "", r->body.len, ids, max);
}

static int setup(void **state)
{
    (void)state;
    fs = fake_fs_start();
    return fs ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    fake_fs_free(fs);
    fs = NULL;
    return 0;
}

/* ---- handshake ----------------------------------------------------------------------------- */

static void test_handshake_answers_c_array_and_records_maps_and_auth(void **state)
{
    struct curl_slist *h = curl_slist_append(NULL, FORM_CT);
    char *hdr = esc("Authorization:Bearer body-tök\r\nX-Goog-Api-Client:gl-c/1\r\n");
    char *m0 = esc(MAP0), *m1 = esc(MAP1), *want, *got, *sid;
    char *body =
        xasprintf("headers=%s&count=2&ofs=0&req0___data__=%s&req1___data__=%s", hdr, m0, m1);
    struct resp r;
    (void)state;

    h = curl_slist_append(h, "Authorization: Bearer real-tok");
    resp_init(&r);
    assert_int_equal(http("POST",
                          FAKE_FS_CHANNEL_PATH "?database=" DB "&VER=8&RID=77&CVER=22&zx=a&t=1",
                          body, h, 5000, &r),
                     CURLE_OK);
    assert_int_equal(r.status, 200);
    sid = fake_fs_sid(fs);
    assert_non_null(sid);
    assert_non_null(strpbrk(sid, "+/=")); /* the client must URL-encode it */
    got = xasprintf("[[0,[\"c\",\"%s\",\"\",8,12,30000]]]", sid);
    want = xasprintf("%zu\n%s", strlen(got), got);
    assert_string_equal(buf_str(&r.body), want);
    free(got);
    free(want);

    assert_int_equal(fake_fs_stat(fs, FAKE_FS_MAPS), 2);
    got = fake_fs_map(fs, 0);
    assert_string_equal(got, MAP0);
    free(got);
    got = fake_fs_map(fs, 1);
    assert_string_equal(got, MAP1);
    free(got);
    assert_null(fake_fs_map(fs, 2));
    got = fake_fs_handshake_headers(fs);
    assert_string_equal(got, "Authorization:Bearer body-tök\r\nX-Goog-Api-Client:gl-c/1\r\n");
    free(got);
    got = fake_fs_last_header(fs, FAKE_FS_REQ_HANDSHAKE, "authorization");
    assert_string_equal(got, "Bearer real-tok");
    free(got);
    got = fake_fs_last_query(fs, FAKE_FS_REQ_HANDSHAKE, "database");
    assert_string_equal(got, "projects/p/databases/(default)");
    free(got);

    /* without CVER the keep-alive element is missing; without VER the body is empty */
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(
        http("POST", FAKE_FS_CHANNEL_PATH "?database=" DB "&VER=8&RID=78", "count=0", h, 5000, &r),
        CURLE_OK);
    assert_non_null(strstr(buf_str(&r.body), "\",\"\",8,12]]]"));
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(
        http("POST", FAKE_FS_CHANNEL_PATH "?database=" DB "&RID=79", "count=0", h, 5000, &r),
        CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_SESSIONS), 2);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_HANDSHAKES), 3);

    resp_release(&r);
    free(sid);
    free(body);
    free(hdr);
    free(m0);
    free(m1);
    curl_slist_free_all(h);
}

static void test_length_prefix_counts_utf16_units_not_bytes(void **state)
{
    char *sid = handshake();
    struct resp r;
    (void)state;

    /* 16 ASCII + é(2 bytes, 1 unit) 日 本 (3 bytes, 1 unit each) 😀 (4 bytes, 2 units) */
    assert_int_equal(fake_fs_push(fs, "[{\"s\":\"é日本😀\"}]"), 1);
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(buf_str(&r.body), "21\n[[1,[{\"s\":\"é日本😀\"}]]]");
    assert_int_equal(r.body.len, 3 + 28);
    resp_release(&r);
    free(sid);
}

/* ---- back channel -------------------------------------------------------------------------- */

static void test_get_resends_unacknowledged_arrays_and_skips_acknowledged(void **state)
{
    char *sid = handshake();
    long ids[16];
    struct resp r;
    int i;
    (void)state;

    for (i = 1; i <= 3; i++)
        assert_int_equal(fake_fs_pushf(fs, "[{\"targetChange\":{\"n\":%d}}]", i), i);
    for (i = 0; i < 2; i++) { /* the same AID twice: everything again, in one chunk */
        resp_init(&r);
        assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
        assert_int_equal(body_ids(&r, ids, 16), 3);
        assert_int_equal(ids[0], 1);
        assert_int_equal(ids[2], 3);
        assert_int_equal(strchr(buf_str(&r.body), '\n') - buf_str(&r.body),
                         strrchr(buf_str(&r.body), '\n') - buf_str(&r.body));
        resp_release(&r);
    }
    resp_init(&r);
    assert_int_equal(get_bc(sid, 2, 1, 5000, &r), CURLE_OK);
    assert_int_equal(body_ids(&r, ids, 16), 1);
    assert_int_equal(ids[0], 3);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_LAST_AID), 2);
    resp_release(&r);

    /* arrays 1-2 are gone for good: a client going back to AID=1 gets 3 and the new 4 */
    assert_int_equal(fake_fs_push(fs, "[{\"targetChange\":{\"n\":4}}]"), 4);
    resp_init(&r);
    assert_int_equal(get_bc(sid, 1, 1, 5000, &r), CURLE_OK);
    assert_int_equal(body_ids(&r, ids, 16), 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(ids[1], 4);
    resp_release(&r);

    /* a forward POST's AID acknowledges too */
    resp_init(&r);
    assert_int_equal(post_maps(sid, 4, "count=0", &r), CURLE_OK);
    resp_release(&r);
    assert_int_equal(fake_fs_push(fs, "[{\"targetChange\":{\"n\":5}}]"), 5);
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_int_equal(body_ids(&r, ids, 16), 1);
    assert_int_equal(ids[0], 5);
    resp_release(&r);
    free(sid);
}

/* On the first write (the fresh noop of an empty GET), push one data array. */
static void push_data_once(struct resp *r)
{
    if (r->hook_calls++ == 0) {
        assert_non_null(strstr(buf_str(&r->body), "[\"noop\"]"));
        fake_fs_push(fs, "[{\"targetChange\":{\"targetChangeType\":\"CURRENT\"}}]");
    }
}

static void test_long_poll_get_survives_noops_and_ends_on_first_data(void **state)
{
    char *sid = handshake();
    long ids[8];
    struct resp r;
    (void)state;

    resp_init(&r);
    r.hook = push_data_once;
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(body_ids(&r, ids, 8), 2);
    assert_int_equal(ids[0], 1); /* the noop: the GET stayed open after it */
    assert_int_equal(ids[1], 2); /* the data: the GET ended right after it */
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_GETS_ENDED), 1);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_GET_OPEN), 0);
    resp_release(&r);
    free(sid);
}

static void test_periodic_noops_do_not_end_a_long_poll_get(void **state)
{
    char *sid = handshake();
    long ids[64];
    struct resp r;
    int n, i;
    (void)state;

    fake_fs_set_noop_on_empty_get(fs, false);
    fake_fs_noops(fs, 40);
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 500, &r), CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.status, 200);
    n = body_ids(&r, ids, 64);
    assert_true(n >= 3);
    for (i = 0; i < n; i++)
        assert_int_equal(ids[i], i + 1);
    assert_non_null(strstr(buf_str(&r.body), "[1,[\"noop\"]]"));
    fake_fs_noops(fs, 0);
    resp_release(&r);
    free(sid);
}

struct bg_get {
    pthread_t t;
    char *sid;
    long aid;
    int ci;
    long timeout_ms;
    struct resp r;
    CURLcode rc;
};

static void *bg_get_main(void *arg)
{
    struct bg_get *g = arg;

    g->rc = get_bc(g->sid, g->aid, g->ci, g->timeout_ms, &g->r);
    return NULL;
}

static void bg_get_start(struct bg_get *g, const char *sid, long aid, int ci)
{
    memset(g, 0, sizeof(*g));
    g->sid = xstrdup(sid);
    g->aid = aid;
    g->ci = ci;
    g->timeout_ms = 10000;
    resp_init(&g->r);
    assert_int_equal(pthread_create(&g->t, NULL, bg_get_main, g), 0);
}

static void bg_get_join(struct bg_get *g)
{
    pthread_join(g->t, NULL);
    free(g->sid);
}

static void test_new_get_supersedes_streaming_get_which_ends_cleanly(void **state)
{
    char *sid = handshake();
    struct bg_get g;
    long ids[8];
    struct resp r;
    (void)state;

    bg_get_start(&g, sid, 0, 0);
    assert_true(fake_fs_wait(fs, FAKE_FS_GET_OPEN, 1, 5000));
    assert_int_equal(fake_fs_push(fs, "[{\"targetChange\":{}}]"), 2); /* after the noop */
    assert_true(fake_fs_wait(fs, FAKE_FS_ARRAYS_SENT, 2, 5000));
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_GET_OPEN), 1); /* CI=0: data did not end it */

    resp_init(&r);
    r.hook = push_data_once;
    assert_int_equal(get_bc(sid, 2, 1, 5000, &r), CURLE_OK);
    bg_get_join(&g);
    assert_int_equal(g.rc, CURLE_OK); /* ended with the last chunk, not cut */
    assert_int_equal(g.r.status, 200);
    assert_int_equal(body_ids(&g.r, ids, 8), 2);
    assert_int_equal(ids[1], 2);
    assert_int_equal(body_ids(&r, ids, 8), 2);
    assert_int_equal(ids[0], 3);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_GETS_ENDED), 2);
    resp_release(&g.r);
    resp_release(&r);
    free(sid);
}

static void test_stream_hold_ends_streaming_get_at_next_write(void **state)
{
    char *sid = handshake();
    long ids[8];
    struct resp r;
    (void)state;

    fake_fs_set_stream_hold(fs, 0); /* every write comes after start + hold */
    fake_fs_push(fs, "[\"noop\"]");
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 0, 5000, &r), CURLE_OK);
    assert_int_equal(body_ids(&r, ids, 8), 1);
    resp_release(&r);
    free(sid);
}

static void cut_on_first_write(struct resp *r)
{
    if (r->hook_calls++ == 0)
        fake_fs_drop_get(fs);
}

static void test_dropped_get_is_truncated_without_last_chunk(void **state)
{
    char *sid = handshake();
    struct resp r;
    CURLcode rc;
    (void)state;

    resp_init(&r);
    r.hook = cut_on_first_write;
    rc = get_bc(sid, 0, 0, 5000, &r);
    assert_true(rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR);
    assert_true(fake_fs_wait(fs, FAKE_FS_GETS_CLOSED, 1, 5000));
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_GETS_ENDED), 0);
    resp_release(&r);
    free(sid);
}

static void test_pushes_without_a_session_wait_for_the_next_handshake(void **state)
{
    char *sid;
    long ids[8];
    struct resp r;
    (void)state;

    assert_int_equal(fake_fs_push(fs, "[{\"targetChange\":{\"a\":1}}]"), 0);
    sid = handshake();
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_LAST_ARRAY), 1);
    fake_fs_kill_session(fs);
    assert_null(fake_fs_sid(fs));
    assert_int_equal(fake_fs_push(fs, "[{\"targetChange\":{\"b\":2}}]"), 0);
    free(sid);
    sid = handshake();
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_int_equal(body_ids(&r, ids, 8), 1);
    assert_int_equal(ids[0], 1);
    assert_non_null(strstr(buf_str(&r.body), "\"b\":2"));
    resp_release(&r);
    free(sid);
}

/* ---- scripted chunk shapes ----------------------------------------------------------------- */

static void test_split_push_cuts_a_utf8_sequence_between_two_http_writes(void **state)
{
    const char *data = "[{\"s\":\"é\"}]";
    char *sid = handshake();
    long ids[4];
    struct resp r;
    (void)state;

    fake_fs_set_split_gap(fs, 100);
    /* cut after the lead byte 0xC3 of é */
    assert_int_equal(fake_fs_push_split(fs, data, (size_t)(strstr(data, "é") - data) + 1), 1);
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_true(r.writes >= 2);
    assert_int_equal((unsigned char)r.body.p[r.first_len - 1], 0xC3);
    assert_string_equal(buf_str(&r.body), "17\n[[1,[{\"s\":\"é\"}]]]");
    assert_int_equal(body_ids(&r, ids, 4), 1);
    resp_release(&r);
    free(sid);
}

static void test_raw_bytes_go_out_unframed_and_before_later_arrays(void **state)
{
    static const char raw[] = "999999999\n[[1,";
    char *sid = handshake();
    struct resp r;
    (void)state;

    fake_fs_set_split_gap(fs, 60);
    fake_fs_push_raw(fs, raw, sizeof(raw) - 1, 4);
    fake_fs_push(fs, "[{\"targetChange\":{}}]"); /* data: ends the CI=1 GET */
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_true(r.writes >= 2);
    assert_int_equal(r.first_len, 4);
    assert_int_equal(memcmp(r.body.p, raw, sizeof(raw) - 1), 0);
    assert_string_equal(r.body.p + sizeof(raw) - 1, "27\n[[1,[{\"targetChange\":{}}]]]");
    resp_release(&r);

    /* raw bytes are not re-sent: the next GET only has the unacknowledged array */
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_string_equal(buf_str(&r.body), "27\n[[1,[{\"targetChange\":{}}]]]");
    resp_release(&r);
    free(sid);
}

static void test_big_chunk_spans_many_http_chunks_with_exact_prefix(void **state)
{
    size_t n = 300000, i;
    buf data;
    char *sid = handshake(), want[32];
    struct resp r;
    (void)state;

    buf_init(&data, 0);
    buf_adds(&data, "[{\"s\":\"");
    for (i = 0; i < n; i++)
        buf_adds(&data, "é");
    buf_adds(&data, "\"}]");
    fake_fs_set_http_chunk_max(fs, 4096);
    fake_fs_push(fs, buf_str(&data));
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 10000, &r), CURLE_OK);
    snprintf(want, sizeof(want), "%zu\n", n + 16);
    assert_int_equal(strncmp(buf_str(&r.body), want, strlen(want)), 0);
    assert_int_equal(r.body.len, strlen(want) + 2 * n + 16);
    resp_release(&r);
    buf_release(&data);
    free(sid);
}

/* ---- forward channel ----------------------------------------------------------------------- */

static void test_forward_maps_are_delivered_in_order_and_repeats_dropped(void **state)
{
    char *sid = handshake(), *m1 = esc(MAP1), *f1, *f2, *got;
    struct resp r;
    (void)state;

    f1 = xasprintf("count=1&ofs=1&req0___data__=%s", m1);
    f2 = xasprintf("count=1&ofs=2&req0___data__=%s", "%7B%22n%22%3A2%7D");
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, f2, &r), CURLE_OK); /* gap: held */
    assert_string_equal(buf_str(&r.body), "7\n[0,0,7]");
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_MAPS), 1);
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, f1, &r), CURLE_OK); /* fills the gap: 1 then 2 */
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_MAPS), 3);
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, f1, &r), CURLE_OK); /* a retry: dropped, still 200 */
    assert_int_equal(r.status, 200);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_MAPS), 3);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_DUP_MAPS), 1);
    resp_release(&r);
    got = fake_fs_map(fs, 0);
    assert_string_equal(got, MAP0);
    free(got);
    got = fake_fs_map(fs, 1);
    assert_string_equal(got, MAP1);
    free(got);
    got = fake_fs_map(fs, 2);
    assert_string_equal(got, "{\"n\":2}");
    free(got);
    assert_true(fake_fs_wait_map(fs, "removeTarget", 100));
    assert_false(fake_fs_wait_map(fs, "never sent", 50));

    fake_fs_push(fs, "[\"noop\"]");
    fake_fs_push(fs, "[\"noop\"]");
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, "count=0", &r), CURLE_OK);
    assert_string_equal(buf_str(&r.body), "7\n[0,2,7]"); /* no GET open, last array 2 */
    resp_release(&r);
    free(f1);
    free(f2);
    free(m1);
    free(sid);
}

static void test_large_post_with_expect_continue_is_received_whole(void **state)
{
    struct curl_slist *h = curl_slist_append(NULL, FORM_CT);
    char *sid = handshake(), *path = chan(sid, "&RID=1001&AID=0"), *got;
    size_t n = 2u << 20;
    struct resp r;
    buf form;
    (void)state;

    buf_init(&form, 0);
    buf_adds(&form, "count=1&ofs=1&req0___data__=%7B%22s%22%3A%22");
    while (form.len < n)
        buf_adds(&form, "xxxxxxxxxxxxxxxx");
    buf_adds(&form, "%22%7D");
    h = curl_slist_append(h, "Expect: 100-continue");
    resp_init(&r);
    assert_int_equal(http("POST", path, buf_str(&form), h, 10000, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_true(r.elapsed < 0.9); /* curl waits 1 s for a 100 that never comes */
    assert_non_null(strstr(buf_str(&r.hdrs), "HTTP/1.1 100 Continue"));
    got = fake_fs_map(fs, 1);
    assert_non_null(got);
    assert_int_equal(strlen(got), form.len - 42); /* 50 bytes of form decode to {"s":"..."} */
    free(got);
    resp_release(&r);
    buf_release(&form);
    free(path);
    free(sid);
    curl_slist_free_all(h);
}

/* ---- dead sessions ------------------------------------------------------------------------- */

static void test_terminate_ends_open_get_and_later_requests_get_unknown_sid(void **state)
{
    char *sid = handshake(), *path;
    struct bg_get g;
    struct resp r;
    (void)state;

    bg_get_start(&g, sid, 0, 0);
    assert_true(fake_fs_wait(fs, FAKE_FS_GET_OPEN, 1, 5000));
    path = chan(sid, "&RID=1002&TYPE=terminate&zx=d&t=1");
    resp_init(&r);
    assert_int_equal(http("GET", path, NULL, NULL, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    resp_release(&r);
    free(path);
    bg_get_join(&g);
    assert_int_equal(g.rc, CURLE_OK);
    assert_int_equal(g.r.status, 200);
    resp_release(&g.r);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_TERMINATES), 1);

    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(buf_str(&r.body), "Unknown SID"));
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, "count=0", &r), CURLE_OK);
    assert_int_equal(r.status, 400);
    resp_release(&r);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_UNKNOWN_SID), 2);
    assert_null(fake_fs_sid(fs));
    free(sid);
}

static void test_killed_session_ends_its_get_then_answers_400(void **state)
{
    char *sid = handshake();
    struct bg_get g;
    struct resp r;
    (void)state;

    bg_get_start(&g, sid, 0, 0);
    assert_true(fake_fs_wait(fs, FAKE_FS_GET_OPEN, 1, 5000));
    fake_fs_kill_session(fs);
    bg_get_join(&g);
    assert_int_equal(g.rc, CURLE_OK);
    resp_release(&g.r);
    resp_init(&r);
    assert_int_equal(get_bc(sid, 1, 1, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(buf_str(&r.body), "Unknown SID"));
    resp_release(&r);
    free(sid);
}

/* ---- gsessionid ---------------------------------------------------------------------------- */

static void test_session_header_is_sent_and_gsessionid_checked(void **state)
{
    char *sid, *path, *e;
    struct resp r;
    (void)state;

    fake_fs_set_session_header(fs, "gs-42");
    sid = handshake();
    /* handshake() does not keep headers; check the recorded request and a fresh reply */
    resp_init(&r);
    assert_int_equal(http("POST",
                          FAKE_FS_CHANNEL_PATH "?database=" DB
                                               "&VER=8&RID=5&CVER=22&X-HTTP-Session-Id=gsessionid",
                          "count=0", NULL, 5000, &r),
                     CURLE_OK);
    assert_non_null(strstr(buf_str(&r.hdrs), "X-HTTP-Session-Id: gs-42\r\n"));
    resp_release(&r);
    free(sid);
    sid = fake_fs_sid(fs);

    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, "count=0", &r), CURLE_OK); /* no gsessionid */
    assert_int_equal(r.status, 200);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_GSID_MISSING), 1);
    resp_release(&r);
    e = esc(sid);
    path = xasprintf("%s?database=%s&gsessionid=gs-42&VER=8&SID=%s&RID=9&AID=0",
                     FAKE_FS_CHANNEL_PATH, DB, e);
    resp_init(&r);
    assert_int_equal(http("POST", path, "count=0", NULL, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_GSID_PRESENT), 1);
    resp_release(&r);

    fake_fs_require_gsessionid(fs, true);
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, "count=0", &r), CURLE_OK);
    assert_int_equal(r.status, 400);
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(http("POST", path, "count=0", NULL, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    resp_release(&r);
    free(path);
    free(e);
    free(sid);
}

/* ---- failures ------------------------------------------------------------------------------ */

static void test_hang_really_hangs_until_the_client_times_out(void **state)
{
    struct resp r;
    (void)state;

    fake_fs_fail_next(fs, FAKE_FS_REQ_HANDSHAKE, FAKE_FS_HANG, NULL);
    resp_init(&r);
    assert_int_equal(http("POST", FAKE_FS_CHANNEL_PATH "?database=" DB "&VER=8&RID=1&CVER=22",
                          "count=0", NULL, 300, &r),
                     CURLE_OPERATION_TIMEDOUT);
    assert_true(r.elapsed >= 0.29);
    assert_int_equal(r.status, 0);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_HANDSHAKES), 1);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_SESSIONS), 0);
    resp_release(&r);

    /* like the emulator: a handshake without `database` is never answered */
    resp_init(&r);
    assert_int_equal(
        http("POST", FAKE_FS_CHANNEL_PATH "?VER=8&RID=1&CVER=22", "count=0", NULL, 200, &r),
        CURLE_OPERATION_TIMEDOUT);
    resp_release(&r);
}

static void test_stalled_get_sends_headers_then_nothing(void **state)
{
    char *sid = handshake();
    long ids[4];
    struct resp r;
    (void)state;

    fake_fs_push(fs, "[{\"targetChange\":{}}]");
    fake_fs_fail_next(fs, FAKE_FS_REQ_GET, FAKE_FS_STALL, NULL);
    resp_init(&r);
    assert_int_equal(get_bc(sid, 0, 1, 300, &r), CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 0);
    resp_release(&r);
    resp_init(&r); /* the next GET gets what the stalled one never did */
    assert_int_equal(get_bc(sid, 0, 1, 5000, &r), CURLE_OK);
    assert_int_equal(body_ids(&r, ids, 4), 1);
    resp_release(&r);
    free(sid);
}

static void test_scripted_statuses_answer_once_each_then_service_resumes(void **state)
{
    char *sid = handshake();
    struct resp r;
    (void)state;

    fake_fs_fail_next(fs, FAKE_FS_REQ_POST, 401, "{\"error\":{\"code\":401}}");
    fake_fs_fail_next(fs, FAKE_FS_REQ_POST, 429, "slow down");
    fake_fs_fail_next(fs, FAKE_FS_REQ_POST, FAKE_FS_CLOSE, NULL);
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, "count=0", &r), CURLE_OK);
    assert_int_equal(r.status, 401);
    assert_string_equal(buf_str(&r.body), "{\"error\":{\"code\":401}}");
    assert_non_null(strstr(buf_str(&r.hdrs), "application/json"));
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, "count=0", &r), CURLE_OK);
    assert_int_equal(r.status, 429);
    assert_string_equal(buf_str(&r.body), "slow down");
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, "count=0", &r), CURLE_GOT_NOTHING);
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(post_maps(sid, 0, "count=0", &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    resp_release(&r);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_POSTS), 4);
    free(sid);
}

/* ---- token endpoints ----------------------------------------------------------------------- */

static CURLcode token_post(const char *form, struct resp *r)
{
    struct curl_slist *h = curl_slist_append(NULL, FORM_CT);
    CURLcode rc = http("POST", "/token", form, h, 5000, r);
    curl_slist_free_all(h);
    return rc;
}

static void test_token_endpoint_records_assertion_and_rejects_bad_grants(void **state)
{
    const char *grant = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
    char *form = xasprintf("%s&assertion=eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln", grant);
    char *got;
    struct resp r;
    (void)state;

    resp_init(&r);
    assert_int_equal(token_post(form, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(buf_str(&r.body), "{\"access_token\":\"fake-token-1\",\"expires_in\":3600,"
                                          "\"token_type\":\"Bearer\"}");
    resp_release(&r);
    got = fake_fs_token_assertion(fs);
    assert_string_equal(got, "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln");
    free(got);

    fake_fs_set_token(fs, "ya29.fixed", 1800);
    resp_init(&r);
    assert_int_equal(token_post(form, &r), CURLE_OK);
    assert_non_null(strstr(buf_str(&r.body), "\"ya29.fixed\",\"expires_in\":1800"));
    resp_release(&r);

    resp_init(&r);
    assert_int_equal(token_post("grant_type=password&assertion=a.b.c", &r), CURLE_OK);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(buf_str(&r.body), "unsupported_grant_type"));
    resp_release(&r);
    free(form);
    form = xasprintf("%s&assertion=not-a-jwt", grant);
    resp_init(&r);
    assert_int_equal(token_post(form, &r), CURLE_OK);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(buf_str(&r.body), "invalid_grant"));
    resp_release(&r);
    got = fake_fs_token_assertion(fs);
    assert_string_equal(got, "not-a-jwt");
    free(got);

    fake_fs_fail_next(fs, FAKE_FS_REQ_TOKEN, 503, "{\"error\":\"unavailable\"}");
    resp_init(&r);
    assert_int_equal(token_post(form, &r), CURLE_OK);
    assert_int_equal(r.status, 503);
    resp_release(&r);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_TOKENS), 5);
    free(form);
}

static void test_metadata_endpoint_requires_metadata_flavor_header(void **state)
{
    struct curl_slist *h = curl_slist_append(NULL, "Metadata-Flavor: Google");
    struct resp r;
    (void)state;

    resp_init(&r);
    assert_int_equal(http("GET", FAKE_FS_METADATA_PATH, NULL, NULL, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 403);
    resp_release(&r);
    resp_init(&r);
    assert_int_equal(http("GET", FAKE_FS_METADATA_PATH, NULL, h, 5000, &r), CURLE_OK);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(buf_str(&r.body), "\"access_token\":\"fake-token-1\""));
    assert_non_null(strstr(buf_str(&r.body), "\"token_type\":\"Bearer\""));
    assert_non_null(strstr(buf_str(&r.hdrs), "Metadata-Flavor: Google"));
    resp_release(&r);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_METADATAS), 2);
    curl_slist_free_all(h);
}

/* ---- runQuery, keep-alive, stop ------------------------------------------------------------ */

static void test_runquery_replays_canned_bodies_and_records_the_query(void **state)
{
    const char *path = "/v1/projects/p/databases/(default)/documents:runQuery";
    const char *q = "{\"structuredQuery\":{\"from\":[{\"collectionId\":\"emp\"}]}}";
    char *got;
    struct resp r;
    (void)state;

    resp_init(&r);
    assert_int_equal(http("POST", path, q, NULL, 5000, &r), CURLE_OK);
    assert_non_null(strstr(buf_str(&r.body), "\"done\":true"));
    resp_release(&r);
    fake_fs_push_runquery(fs, "[{\"document\":{\"name\":\"a\"}}]");
    fake_fs_push_runquery(fs, "[{\"readTime\":\"t\",\"done\":true}]");
    resp_init(&r);
    assert_int_equal(http("POST", path, q, NULL, 5000, &r), CURLE_OK);
    assert_string_equal(buf_str(&r.body), "[{\"document\":{\"name\":\"a\"}}]");
    resp_release(&r);
    for (int i = 0; i < 2; i++) { /* the last body repeats */
        resp_init(&r);
        assert_int_equal(http("POST", path, q, NULL, 5000, &r), CURLE_OK);
        assert_string_equal(buf_str(&r.body), "[{\"readTime\":\"t\",\"done\":true}]");
        resp_release(&r);
    }
    got = fake_fs_last_body(fs, FAKE_FS_REQ_RUNQUERY);
    assert_string_equal(got, q);
    free(got);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_RUNQUERIES), 4);
}

static void test_keepalive_serves_several_requests_on_one_connection(void **state)
{
    CURL *h = curl_easy_init();
    struct resp r;
    int i;
    (void)state;

    for (i = 0; i < 3; i++) {
        resp_init(&r);
        setup_handle(h, "POST", "/v1/projects/p/databases/d/documents:runQuery", "{}", NULL, 5000,
                     &r);
        assert_int_equal(curl_easy_perform(h), CURLE_OK);
        resp_release(&r);
    }
    resp_init(&r);
    setup_handle(h, "GET", "/nowhere", NULL, NULL, 5000, &r);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    assert_int_equal(r.status, 404);
    resp_release(&r);
    curl_easy_cleanup(h);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_CONNECTIONS), 1);
    assert_int_equal(fake_fs_stat(fs, FAKE_FS_OTHERS), 1);
}

static void test_stop_closes_connections_still_open(void **state)
{
    struct sockaddr_in a;
    const char *partial = "POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    char *sid = handshake();
    struct bg_get g;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    (void)state;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)fake_fs_port(fs));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(write(s, partial, strlen(partial)), (ssize_t)strlen(partial));
    bg_get_start(&g, sid, 0, 0); /* a streaming GET left open */
    assert_true(fake_fs_wait(fs, FAKE_FS_GET_OPEN, 1, 5000));
    assert_true(fake_fs_wait(fs, FAKE_FS_CONNECTIONS, 3, 5000));
    fake_fs_stop(fs); /* returns: every handle closed, thread joined */
    fake_fs_stop(fs); /* and again is harmless */
    bg_get_join(&g);
    assert_int_not_equal(g.rc, CURLE_OK); /* cut, no last chunk */
    resp_release(&g.r);
    close(s);
    free(sid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handshake_answers_c_array_and_records_maps_and_auth,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_prefix_counts_utf16_units_not_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_get_resends_unacknowledged_arrays_and_skips_acknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_get_survives_noops_and_ends_on_first_data,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_noops_do_not_end_a_long_poll_get, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_new_get_supersedes_streaming_get_which_ends_cleanly,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_hold_ends_streaming_get_at_next_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dropped_get_is_truncated_without_last_chunk, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pushes_without_a_session_wait_for_the_next_handshake,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_split_push_cuts_a_utf8_sequence_between_two_http_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raw_bytes_go_out_unframed_and_before_later_arrays,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_chunk_spans_many_http_chunks_with_exact_prefix,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_forward_maps_are_delivered_in_order_and_repeats_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_post_with_expect_continue_is_received_whole,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_terminate_ends_open_get_and_later_requests_get_unknown_sid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_session_ends_its_get_then_answers_400, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_header_is_sent_and_gsessionid_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hang_really_hangs_until_the_client_times_out, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stalled_get_sends_headers_then_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_scripted_statuses_answer_once_each_then_service_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_token_endpoint_records_assertion_and_rejects_bad_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metadata_endpoint_requires_metadata_flavor_header,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_runquery_replays_canned_bodies_and_records_the_query,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_keepalive_serves_several_requests_on_one_connection,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_closes_connections_still_open, setup, teardown),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
