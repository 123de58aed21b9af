/*
 * test_webchannel_fake.c - the WebChannel client against the scriptable fake server
 * (tests/fake/fake_fs.h), for what Google's emulator never does: noops that must be acknowledged,
 * the X-HTTP-Session-Id / gsessionid pair, ["stop"], ["close"], {"error":...} payloads, 401 on
 * the handshake, 503 on the back channel, a hanging handshake, a stalled GET caught by the
 * watchdog, four GET failures in a row, a truncated GET, a chunk cut inside a UTF-8 sequence, a
 * chunk over the cap, a forward POST retried with the same map ids, where the token travels, and
 * wc_restart(). Also the HTTP client underneath: curl errors mapped onto err.h codes (TLS,
 * refused connection, body cap), a refused URL that never calls back, and both ways of pausing
 * a body (HTTP_PAUSE hands the piece back, http_pause() from on_data keeps it) losing nothing.
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
#include "tests/fake/fake_fs.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define DB "projects/p/databases/(default)"
#define MAX_EVENTS 256
#define EV_LEN 128

struct ctx;
typedef bool (*pred_fn)(struct ctx *c);

struct ctx {
    fake_fs *fs;
    uv_loop_t loop;
    uv_timer_t deadline, tick;
    http_client *http;
    wc_session *wc;
    pred_fn pred;
    bool running;
    char events[MAX_EVENTS][EV_LEN];
    int nev;
    int connects, opens, downs, last_down_code;
    uint64_t get_failures_at_down;
    const char *token; /* "Bearer ..." handed out by the auth callback, or NULL */
    bool add_target;   /* on_connect sends an addTarget */
    long want_stat;    /* for wait_stat */
    enum fake_fs_stat stat;
    int closed;
};

/* ---- callbacks ------------------------------------------------------------------------------- */

static void record(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    if (c->nev >= MAX_EVENTS)
        return;
    va_start(ap, fmt);
    vsnprintf(c->events[c->nev++], EV_LEN, fmt, ap);
    va_end(ap);
}

static int count_ev(const struct ctx *c, const char *ev)
{
    int n = 0;
    for (int i = 0; i < c->nev; i++)
        n += strcmp(c->events[i], ev) == 0;
    return n;
}

static void maybe_stop(struct ctx *c)
{
    if (c->running && c->pred && c->pred(c))
        uv_stop(&c->loop);
}

/* Records "ADD 2" for a targetChange, "S <value>" for a document's field s. */
static int on_message(void *ud, const json_doc *d, int tok)
{
    struct ctx *c = ud;
    int tc = json_obj_get(d, tok, "targetChange");
    int dc = json_obj_get(d, tok, "documentChange");
    buf v;

    buf_init(&v, 4096);
    if (tc >= 0) {
        int ids = json_obj_get(d, tc, "targetIds");
        int first = json_child(d, ids);
        int64_t id = -1;
        json_int64(d, first, &id, NULL);
        json_str_unescape(d, json_obj_get(d, tc, "targetChangeType"), &v, NULL);
        record(c, "%s %lld", buf_str(&v), (long long)id);
    } else if (dc >= 0) {
        int doc = json_obj_get(d, dc, "document");
        int s =
            json_obj_get(d, json_obj_get(d, json_obj_get(d, doc, "fields"), "s"), "stringValue");
        json_str_unescape(d, s, &v, NULL);
        record(c, "S %s", buf_str(&v));
    } else {
        record(c, "OTHER");
    }
    buf_release(&v);
    maybe_stop(c);
    return 0;
}

static void on_connect(void *ud)
{
    struct ctx *c = ud;
    fserr e = {0};
    c->connects++;
    if (c->add_target)
        assert_int_equal(wc_send(c->wc,
                                 "{\"database\":\"" DB "\",\"addTarget\":{\"documents\":"
                                 "{\"documents\":[\"" DB "/documents/a/b\"]},"
                                 "\"targetId\":2}}",
                                 &e),
                         0);
    maybe_stop(c);
}

static void on_open(void *ud)
{
    struct ctx *c = ud;
    c->opens++;
    maybe_stop(c);
}

static void on_down(void *ud, int code, const char *why)
{
    struct ctx *c = ud;
    struct wc_stats st;
    (void)why;
    wc_stats_get(c->wc, &st);
    c->downs++;
    c->last_down_code = code;
    c->get_failures_at_down = st.get_failures;
    maybe_stop(c);
}

static int auth(void *ud, buf *out)
{
    struct ctx *c = ud;
    return c->token ? buf_adds(out, c->token) : 0;
}

/* ---- driving --------------------------------------------------------------------------------- */

static void on_deadline(uv_timer_t *t)
{
    struct ctx *c = t->data;
    uv_stop(&c->loop);
}

static void on_tick(uv_timer_t *t)
{
    maybe_stop(t->data); /* the fake's counters change on its own thread */
}

static bool run_until(struct ctx *c, pred_fn pred, long ms)
{
    if (pred(c))
        return true;
    c->pred = pred;
    uv_update_time(&c->loop);
    uv_timer_start(&c->deadline, on_deadline, (uint64_t)ms, 0);
    uv_timer_start(&c->tick, on_tick, 10, 10);
    c->running = true;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    c->running = false;
    uv_timer_stop(&c->deadline);
    uv_timer_stop(&c->tick);
    c->pred = NULL;
    return pred(c);
}

static bool stat_reached(struct ctx *c)
{
    return fake_fs_stat(c->fs, c->stat) >= c->want_stat;
}

static bool wait_stat(struct ctx *c, enum fake_fs_stat st, long n)
{
    c->stat = st;
    c->want_stat = n;
    return run_until(c, stat_reached, 10000);
}

static bool open_with_get(struct ctx *c)
{
    return c->opens >= 1 && fake_fs_stat(c->fs, FAKE_FS_GET_OPEN) >= 1;
}

static bool one_down(struct ctx *c)
{
    return c->downs >= 1;
}

static bool two_opens(struct ctx *c)
{
    return c->opens >= 2;
}

static bool has_events(struct ctx *c)
{
    return c->nev >= 1;
}

static bool two_events(struct ctx *c)
{
    return c->nev >= 2;
}

static struct ctx *start_cfg(struct wc_config *cfg)
{
    struct ctx *c = calloc(1, sizeof(*c));
    fserr e = {0};
    struct wc_callbacks cb = {
        .on_connect = on_connect,
        .on_open = on_open,
        .on_message = on_message,
        .on_down = on_down,
    };

    assert_non_null(c);
    c->fs = fake_fs_start();
    assert_non_null(c->fs);
    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->deadline);
    uv_timer_init(&c->loop, &c->tick);
    c->deadline.data = c;
    c->tick.data = c;
    c->http = http_client_new(&c->loop, &e);
    assert_non_null(c->http);
    cfg->base_url = fake_fs_url(c->fs);
    cfg->database = DB;
    if (!cfg->request_timeout_ms)
        cfg->request_timeout_ms = 5000;
    cfg->get_retry_ms = cfg->get_retry_ms ? cfg->get_retry_ms : 20;
    cfg->backoff_min_ms = 20;
    cfg->backoff_max_ms = 100;
    cfg->auth_header = auth;
    cfg->auth_ud = c;
    c->wc = wc_new(&c->loop, c->http, cfg, &cb, c, &e);
    if (!c->wc)
        fail_msg("wc_new: %s", e.msg);
    return c;
}

static void go(struct ctx *c)
{
    assert_int_equal(wc_start(c->wc, NULL), 0);
}

static struct ctx *start_default(void)
{
    struct wc_config cfg = {0};
    struct ctx *c = start_cfg(&cfg);
    go(c);
    return c;
}

static void http_closed(void *ud)
{
    struct ctx *c = ud;
    http_client_free(c->http);
    c->closed++;
}

static void wc_closed(void *ud)
{
    struct ctx *c = ud;
    c->closed++;
    http_client_close(c->http, http_closed, c);
}

/* Closes everything; the loop must end with no live handle. */
static void finish(struct ctx *c)
{
    wc_close(c->wc, wc_closed, c);
    uv_close((uv_handle_t *)&c->deadline, NULL);
    uv_close((uv_handle_t *)&c->tick, NULL);
    assert_int_equal(uv_run(&c->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c->closed, 2);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    fake_fs_free(c->fs);
    free(c);
}

static long push_tc(struct ctx *c, const char *type, int target)
{
    return fake_fs_pushf(c->fs,
                         "[{\"targetChange\":{\"targetChangeType\":\"%s\",\"targetIds\":"
                         "[%d]}}]",
                         type, target);
}

static void expect_str(char *got, const char *want)
{
    if (!got || strcmp(got, want) != 0)
        fail_msg("got \"%s\", want \"%s\"", got ? got : "(null)", want);
    free(got);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static bool three_arrays(struct ctx *c)
{
    struct wc_stats st;
    wc_stats_get(c->wc, &st);
    return st.arrays_received >= 3;
}

static void test_noops_are_acknowledged_but_not_delivered(void **state)
{
    struct ctx *c = start_default();
    struct wc_stats st;
    fserr e = {0};
    long id;
    (void)state;

    assert_true(run_until(c, open_with_get, 10000)); /* its GET got noop 1 */
    assert_int_equal(fake_fs_push(c->fs, "[\"noop\"]"), 2);
    assert_int_equal(fake_fs_push(c->fs, "[\"noop\"]"), 3);
    assert_true(run_until(c, three_arrays, 10000));
    /* noops do not end a CI=1 GET; the forward POST carries the acknowledgement */
    assert_int_equal(wc_send(c->wc, "{\"database\":\"" DB "\",\"removeTarget\":9}", &e), 0);
    assert_true(wait_stat(c, FAKE_FS_MAPS, 1));
    expect_str(fake_fs_last_query(c->fs, FAKE_FS_REQ_POST, "AID"), "3");
    assert_int_equal(c->nev, 0);
    id = push_tc(c, "ADD", 2);
    assert_true(run_until(c, has_events, 10000));
    assert_true(wait_stat(c, FAKE_FS_LAST_AID, id)); /* the next GET acknowledges it */
    assert_int_equal(c->nev, 1);
    assert_string_equal(c->events[0], "ADD 2");
    wc_stats_get(c->wc, &st);
    assert_int_equal(st.messages, 1);
    assert_true(st.last_array_id >= id); /* the next GET gets a fresh noop too */
    finish(c);
}

static void test_gsessionid_from_the_handshake_header_goes_on_every_later_request(void **state)
{
    struct wc_config cfg = {0};
    struct ctx *c = start_cfg(&cfg);
    fserr e = {0};
    (void)state;

    fake_fs_set_session_header(c->fs, "gs-77");
    fake_fs_require_gsessionid(c->fs, true);
    go(c);
    assert_true(run_until(c, open_with_get, 10000));
    assert_int_equal(wc_send(c->wc, "{\"database\":\"" DB "\",\"removeTarget\":9}", &e), 0);
    assert_true(wait_stat(c, FAKE_FS_MAPS, 1));
    push_tc(c, "ADD", 2);
    assert_true(run_until(c, has_events, 10000));
    assert_true(fake_fs_stat(c->fs, FAKE_FS_GSID_PRESENT) >= 2);
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_GSID_MISSING), 0);
    expect_str(fake_fs_last_query(c->fs, FAKE_FS_REQ_HANDSHAKE, "X-HTTP-Session-Id"), "gsessionid");
    expect_str(fake_fs_last_query(c->fs, FAKE_FS_REQ_GET, "gsessionid"), "gs-77");
    expect_str(fake_fs_last_query(c->fs, FAKE_FS_REQ_POST, "gsessionid"), "gs-77");
    assert_int_equal(c->downs, 0);
    finish(c);
}

static void test_stop_ends_the_session_and_a_new_one_follows(void **state)
{
    struct ctx *c = start_default();
    (void)state;

    c->add_target = true;
    assert_true(run_until(c, open_with_get, 10000));
    fake_fs_push(c->fs, "[\"stop\"]");
    assert_true(run_until(c, two_opens, 10000));
    assert_int_equal(c->downs, 1);
    assert_int_equal(c->last_down_code, FS_ESESSION);
    assert_int_equal(c->connects, 2);
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_SESSIONS), 2);
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_TERMINATES), 0); /* the server ended it */
    assert_true(wait_stat(c, FAKE_FS_MAPS, 2));                   /* target re-added */
    finish(c);
}

static void test_a_gap_in_array_ids_opens_a_new_session_without_delivering(void **state)
{
    struct ctx *c = start_default();
    static const char gap[] = "[[90,[{\"targetChange\":{\"targetChangeType\":\"CURRENT\","
                              "\"targetIds\":[2]}}]]]";
    char framed[256];
    (void)state;

    c->add_target = true;
    assert_true(run_until(c, open_with_get, 10000));
    /* arrays up to some id were sent; this one claims id 90: everything between is lost */
    snprintf(framed, sizeof(framed), "%zu\n%s", strlen(gap), gap);
    fake_fs_push_raw(c->fs, framed, strlen(framed), 0);
    assert_true(run_until(c, two_opens, 10000));
    assert_int_equal(c->downs, 1);
    assert_int_equal(c->last_down_code, FS_EPROTO);
    assert_int_equal(count_ev(c, "CURRENT 2"), 0); /* nothing after a gap is believed */
    assert_true(wait_stat(c, FAKE_FS_MAPS, 2));    /* the target is re-added */
    finish(c);
}

static void test_close_array_is_answered_with_terminate_and_a_new_session(void **state)
{
    struct ctx *c = start_default();
    (void)state;

    assert_true(run_until(c, open_with_get, 10000));
    fake_fs_push(c->fs, "[\"close\"]");
    assert_true(run_until(c, two_opens, 10000));
    assert_int_equal(c->downs, 1);
    assert_int_equal(c->last_down_code, FS_ESESSION);
    assert_true(wait_stat(c, FAKE_FS_TERMINATES, 1));
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_SESSIONS), 2);
    finish(c);
}

static void test_error_payloads_end_the_session_with_their_code(void **state)
{
    struct ctx *c = start_default();
    (void)state;

    assert_true(run_until(c, open_with_get, 10000));
    fake_fs_push(c->fs, "[{\"error\":{\"status\":\"UNAUTHENTICATED\",\"message\":\"expired\"}}]");
    assert_true(run_until(c, two_opens, 10000));
    assert_int_equal(c->downs, 1);
    assert_int_equal(c->last_down_code, FS_EAUTH);
    assert_true(wait_stat(c, FAKE_FS_GET_OPEN, 1));
    fake_fs_push(c->fs, "[[{\"error\":{\"code\":14,\"status\":\"UNAVAILABLE\"}}]]");
    c->downs = 0;
    assert_true(run_until(c, one_down, 10000));
    assert_int_equal(c->last_down_code, FS_ESESSION);
    assert_int_equal(c->nev, 0); /* errors are never delivered as messages */
    finish(c);
}

static void test_handshake_401_is_an_auth_failure_and_is_retried(void **state)
{
    struct wc_config cfg = {0};
    struct ctx *c = start_cfg(&cfg);
    (void)state;

    fake_fs_fail_next(c->fs, FAKE_FS_REQ_HANDSHAKE, 401, "{\"error\":\"no\"}");
    go(c);
    assert_true(run_until(c, open_with_get, 10000));
    assert_int_equal(c->downs, 1);
    assert_int_equal(c->last_down_code, FS_EAUTH);
    assert_int_equal(c->connects, 2);
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_HANDSHAKES), 2);
    finish(c);
}

static void test_handshake_that_never_answers_times_out_and_is_retried(void **state)
{
    struct wc_config cfg = {.request_timeout_ms = 300};
    struct ctx *c = start_cfg(&cfg);
    (void)state;

    fake_fs_fail_next(c->fs, FAKE_FS_REQ_HANDSHAKE, FAKE_FS_HANG, NULL);
    go(c);
    assert_true(run_until(c, open_with_get, 10000));
    assert_int_equal(c->downs, 1);
    assert_int_equal(c->last_down_code, FS_ETIMEOUT);
    finish(c);
}

static void test_503_on_the_back_channel_kills_the_session(void **state)
{
    struct wc_config cfg = {0};
    struct ctx *c = start_cfg(&cfg);
    (void)state;

    fake_fs_fail_next(c->fs, FAKE_FS_REQ_GET, 503, "<html>busy</html>");
    go(c);
    assert_true(run_until(c, two_opens, 10000));
    assert_int_equal(c->downs, 1);
    assert_int_equal(c->last_down_code, FS_ESESSION);
    assert_int_equal(c->connects, 2);
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_SESSIONS), 2);
    finish(c);
}

static void test_stalled_get_is_abandoned_by_the_watchdog_and_data_still_arrives(void **state)
{
    struct wc_config cfg = {.watchdog_ms = 300};
    struct ctx *c = start_cfg(&cfg);
    struct wc_stats st;
    (void)state;

    fake_fs_fail_next(c->fs, FAKE_FS_REQ_GET, FAKE_FS_STALL, NULL);
    go(c);
    assert_true(wait_stat(c, FAKE_FS_GETS, 1)); /* the stalled one */
    push_tc(c, "ADD", 2);                       /* waits for a real back channel */
    assert_true(run_until(c, has_events, 10000));
    assert_string_equal(c->events[0], "ADD 2");
    wc_stats_get(c->wc, &st);
    assert_true(st.get_failures >= 1);
    assert_int_equal(c->downs, 0);
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_SESSIONS), 1);
    finish(c);
}

/* Stalled GETs (curl would transparently retry a GET whose reused connection is closed before
 * any answer, so a stall caught by the watchdog is the failure a test can count). */
static void test_four_get_failures_in_a_row_end_the_session(void **state)
{
    struct wc_config cfg = {.watchdog_ms = 200};
    struct ctx *c = start_cfg(&cfg);
    (void)state;

    fake_fs_set_noop_on_empty_get(c->fs, false); /* no data may reset the retry count */
    for (int i = 0; i < 4; i++)
        fake_fs_fail_next(c->fs, FAKE_FS_REQ_GET, FAKE_FS_STALL, NULL);
    go(c);
    assert_true(run_until(c, one_down, 10000));
    assert_int_equal(c->last_down_code, FS_ETIMEOUT);
    assert_int_equal(c->get_failures_at_down, 4);
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_GETS), 4);
    assert_true(run_until(c, two_opens, 10000));
    push_tc(c, "ADD", 2);
    assert_true(run_until(c, has_events, 10000));
    finish(c);
}

static void test_three_failures_then_data_keeps_the_session(void **state)
{
    struct wc_config cfg = {.watchdog_ms = 200};
    struct ctx *c = start_cfg(&cfg);
    struct wc_stats st;
    (void)state;

    fake_fs_set_noop_on_empty_get(c->fs, false);
    for (int i = 0; i < 3; i++)
        fake_fs_fail_next(c->fs, FAKE_FS_REQ_GET, FAKE_FS_STALL, NULL);
    go(c);
    assert_true(wait_stat(c, FAKE_FS_GET_OPEN, 1)); /* the 4th GET is the real back channel */
    push_tc(c, "ADD", 2);
    assert_true(run_until(c, has_events, 10000));
    wc_stats_get(c->wc, &st);
    assert_int_equal(st.get_failures, 3);
    assert_int_equal(c->downs, 0);
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_SESSIONS), 1);
    finish(c);
}

static void test_truncated_get_is_retried_and_nothing_repeats(void **state)
{
    static const char part[] = "120\n[[7,[{\"targetChange\":";
    struct ctx *c = start_default();
    struct wc_stats st;
    (void)state;

    assert_true(run_until(c, open_with_get, 10000));
    push_tc(c, "ADD", 2); /* ends this CI=1 GET; the client sends the next */
    assert_true(run_until(c, has_events, 10000));
    assert_true(wait_stat(c, FAKE_FS_GETS, 2));
    assert_true(wait_stat(c, FAKE_FS_GET_OPEN, 1));
    fake_fs_push_raw(c->fs, part, strlen(part), 0);
    fake_fs_drop_get(c->fs);
    assert_true(wait_stat(c, FAKE_FS_GETS, 3)); /* the retry */
    push_tc(c, "CURRENT", 2);
    assert_true(run_until(c, two_events, 10000));
    assert_string_equal(c->events[1], "CURRENT 2");
    wc_stats_get(c->wc, &st);
    assert_true(st.get_failures >= 1);
    assert_int_equal(count_ev(c, "ADD 2"), 1);
    assert_int_equal(c->downs, 0);
    finish(c);
}

static void test_chunk_cut_inside_a_utf8_sequence_arrives_intact(void **state)
{
    static const char doc[] = "[{\"documentChange\":{\"document\":{\"name\":\"" DB
                              "/documents/a/b\",\"fields\":{\"s\":{\"stringValue\":"
                              "\"é日本😀\"}}},\"targetIds\":[2]}}]";
    struct ctx *c = start_default();
    const char *emoji = strstr(doc, "😀");
    const char *ja = strstr(doc, "日");
    (void)state;

    assert_true(run_until(c, open_with_get, 10000));
    fake_fs_set_split_gap(c->fs, 20);
    fake_fs_push_split(c->fs, doc, (size_t)(emoji - doc) + 2); /* inside the 4-byte emoji */
    fake_fs_push_split(c->fs, doc, (size_t)(ja - doc) + 1);    /* inside a 3-byte character */
    assert_true(run_until(c, two_events, 10000));
    assert_string_equal(c->events[0], "S é日本😀");
    assert_string_equal(c->events[1], "S é日本😀");
    finish(c);
}

static void test_chunk_over_the_cap_is_refused(void **state)
{
    struct wc_config cfg = {.max_chunk_bytes = 1024};
    struct ctx *c = start_cfg(&cfg);
    buf big;
    (void)state;

    go(c);
    assert_true(run_until(c, open_with_get, 10000));
    buf_init(&big, 0);
    buf_adds(&big, "[{\"targetChange\":{\"targetIds\":[2],\"resumeToken\":\"");
    for (int i = 0; i < 3000; i++)
        buf_addc(&big, 'x');
    buf_adds(&big, "\"}}]");
    fake_fs_push(c->fs, buf_str(&big));
    buf_release(&big);
    assert_true(run_until(c, one_down, 10000));
    assert_int_equal(c->last_down_code, FS_ETOOBIG);
    assert_int_equal(c->nev, 0);
    finish(c);
}

static void test_forward_post_retry_reuses_its_map_ids(void **state)
{
    struct ctx *c = start_default();
    char *rid1, *map;
    fserr e = {0};
    (void)state;

    c->add_target = true; /* map 0 rides in the handshake */
    assert_true(run_until(c, open_with_get, 10000));
    assert_true(wait_stat(c, FAKE_FS_MAPS, 1));
    fake_fs_fail_next(c->fs, FAKE_FS_REQ_POST, FAKE_FS_CLOSE, NULL);
    assert_int_equal(wc_send(c->wc, "{\"database\":\"" DB "\",\"removeTarget\":2}", &e), 0);
    assert_true(wait_stat(c, FAKE_FS_POSTS, 1));
    rid1 = fake_fs_last_query(c->fs, FAKE_FS_REQ_POST, "RID");
    assert_non_null(rid1);
    expect_str(fake_fs_last_query(c->fs, FAKE_FS_REQ_POST, "t"), "1");
    assert_true(wait_stat(c, FAKE_FS_MAPS, 2));
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_POSTS), 2);
    expect_str(fake_fs_last_query(c->fs, FAKE_FS_REQ_POST, "RID"), rid1);
    {
        /* t=2 when the transport retried; t=1 when curl itself re-sent the request because
         * the server closed a kept-alive connection: either way the same request again */
        char *t = fake_fs_last_query(c->fs, FAKE_FS_REQ_POST, "t");
        assert_true(t && (strcmp(t, "1") == 0 || strcmp(t, "2") == 0));
        free(t);
    }
    expect_str(fake_fs_last_body(c->fs, FAKE_FS_REQ_POST),
               "count=1&ofs=1&req0___data__=%7B%22database%22%3A%22projects%2Fp%2Fdatabases%2F"
               "(default)%22%2C%22removeTarget%22%3A2%7D");
    assert_int_equal(fake_fs_stat(c->fs, FAKE_FS_DUP_MAPS), 0);
    map = fake_fs_map(c->fs, 1);
    assert_non_null(strstr(map, "\"removeTarget\":2"));
    free(map);
    free(rid1);
    assert_int_equal(c->downs, 0);
    finish(c);
}

static void test_token_travels_only_in_the_handshake(void **state)
{
    struct wc_config cfg = {0};
    struct ctx *c = start_cfg(&cfg);
    fserr e = {0};
    char *h;
    (void)state;

    c->token = "Bearer tok-123.abc";
    c->add_target = true;
    go(c);
    assert_true(run_until(c, open_with_get, 10000));
    assert_int_equal(wc_send(c->wc, "{\"database\":\"" DB "\",\"removeTarget\":2}", &e), 0);
    assert_true(wait_stat(c, FAKE_FS_MAPS, 2));
    expect_str(fake_fs_handshake_headers(c->fs), "Authorization:Bearer tok-123.abc\r\n");
    expect_str(fake_fs_last_header(c->fs, FAKE_FS_REQ_HANDSHAKE, "Authorization"),
               "Bearer tok-123.abc");
    h = fake_fs_last_header(c->fs, FAKE_FS_REQ_GET, "Authorization");
    assert_null(h);
    h = fake_fs_last_header(c->fs, FAKE_FS_REQ_POST, "Authorization");
    assert_null(h);
    h = fake_fs_last_body(c->fs, FAKE_FS_REQ_POST);
    assert_non_null(h);
    assert_null(strstr(h, "tok-123"));
    free(h);
    finish(c);
}

static void test_restart_terminates_the_old_session_and_opens_a_new_one(void **state)
{
    struct ctx *c = start_default();
    char old[WC_SID_MAX];
    (void)state;

    c->add_target = true;
    assert_true(run_until(c, open_with_get, 10000));
    snprintf(old, sizeof(old), "%s", wc_session_id(c->wc));
    assert_int_equal(wc_restart(c->wc, NULL), 0);
    assert_true(run_until(c, two_opens, 10000));
    assert_true(wait_stat(c, FAKE_FS_TERMINATES, 1));
    assert_int_equal(c->downs, 0);
    assert_int_equal(c->connects, 2);
    assert_string_not_equal(wc_session_id(c->wc), old);
    assert_true(wait_stat(c, FAKE_FS_MAPS, 2)); /* on_connect re-added the target */
    finish(c);
}

/* ---- the HTTP client underneath ---------------------------------------------------------------
 */

struct hctx {
    uv_loop_t loop;
    uv_timer_t resume;
    http_client *h;
    http_request *r;
    int done, rc, calls_while_paused, pauses;
    long status;
    buf body;       /* streamed bytes taken */
    char first[32]; /* the first piece handed back with HTTP_PAUSE */
    size_t first_n;
    bool handed_back; /* the next piece must start like `first` */
    bool resent_ok;
    int mode;     /* 0 buffered, 1 HTTP_PAUSE once, 2 http_pause() inside on_data once */
    bool garbage; /* url is ignored: https to a local server that answers in plain text */
    uv_tcp_t server;
    uv_tcp_t peer;
    uv_write_t wr;
};

static void g_closed(uv_handle_t *h)
{
    (void)h;
}

static void g_written(uv_write_t *w, int status)
{
    struct hctx *x = w->data;
    (void)status;
    uv_close((uv_handle_t *)&x->peer, g_closed);
}

/* Accepts one connection and answers whatever comes with a plain-text HTTP error. */
static void g_accept(uv_stream_t *srv, int status)
{
    static char reply[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    struct hctx *x = srv->data;
    uv_buf_t b = uv_buf_init(reply, sizeof(reply) - 1);

    assert_int_equal(status, 0);
    uv_tcp_init(&x->loop, &x->peer);
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&x->peer), 0);
    x->wr.data = x;
    uv_write(&x->wr, (uv_stream_t *)&x->peer, &b, 1, g_written);
}

static void g_listen(struct hctx *x, char *url, size_t n)
{
    struct sockaddr_in a;
    int len = sizeof(a);

    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&x->loop, &x->server);
    x->server.data = x;
    assert_int_equal(uv_tcp_bind(&x->server, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&x->server, 1, g_accept), 0);
    uv_tcp_getsockname(&x->server, (struct sockaddr *)&a, &len);
    snprintf(url, n, "https://127.0.0.1:%d/", ntohs(a.sin_port));
}

static void h_done(void *ud, const struct http_result *res)
{
    struct hctx *x = ud;
    x->done++;
    x->rc = res->rc;
    x->status = res->status;
    if (x->mode == 0)
        buf_add(&x->body, res->body, res->body_len);
    x->r = NULL;
}

static void h_resume(uv_timer_t *t)
{
    struct hctx *x = t->data;
    http_resume(x->r);
}

static int h_data(void *ud, long status, const char *p, size_t n)
{
    struct hctx *x = ud;
    (void)status;
    if (http_paused(x->r))
        x->calls_while_paused++;
    if (x->handed_back) {
        x->handed_back = false;
        x->resent_ok = n >= x->first_n && memcmp(p, x->first, x->first_n) == 0;
    }
    if (x->pauses == 0 && x->mode == 1) {
        x->pauses++;
        x->first_n = n < sizeof(x->first) ? n : sizeof(x->first);
        memcpy(x->first, p, x->first_n);
        x->handed_back = true;
        uv_timer_start(&x->resume, h_resume, 20, 0);
        return HTTP_PAUSE; /* nothing taken */
    }
    buf_add(&x->body, p, n);
    if (x->pauses == 0 && x->mode == 2) {
        x->pauses++;
        http_pause(x->r); /* these bytes are taken; the next ones wait */
        uv_timer_start(&x->resume, h_resume, 20, 0);
    }
    return 0;
}

/* Runs one request to completion on a fresh loop and client. */
static void h_run(struct hctx *x, const char *url, const char *body, size_t cap)
{
    fserr e = {0};
    char gurl[64];
    struct http_req_opts o = {
        .url = url,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = 5000,
        .body_cap = cap,
        .on_data = x->mode ? h_data : NULL,
        .on_done = h_done,
        .ud = x,
    };

    buf_init(&x->body, 0);
    assert_int_equal(uv_loop_init(&x->loop), 0);
    uv_timer_init(&x->loop, &x->resume);
    x->resume.data = x;
    if (x->garbage) {
        g_listen(x, gurl, sizeof(gurl));
        o.url = gurl;
    }
    x->h = http_client_new(&x->loop, &e);
    assert_non_null(x->h);
    x->r = http_request_new(x->h, &o, &e);
    if (!x->r)
        fail_msg("http_request_new: %s", e.msg);
    while (!x->done)
        uv_run(&x->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&x->resume, NULL);
    if (x->garbage)
        uv_close((uv_handle_t *)&x->server, NULL);
    http_client_free(x->h); /* still open: closes, then frees itself */
    assert_int_equal(uv_run(&x->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&x->loop), 0);
}

static void test_http_errors_map_onto_err_codes(void **state)
{
    fake_fs *fs = fake_fs_start();
    char url[128];
    struct hctx x;
    fserr e = {0};
    uv_loop_t loop;
    http_client *h;
    struct http_req_opts o = {.url = "http://example.com/", .on_done = h_done};
    buf big;
    (void)state;

    assert_non_null(fs);
    memset(&x, 0, sizeof(x));
    x.garbage = true; /* TLS handshake answered in plain text */
    h_run(&x, NULL, NULL, 0);
    assert_int_equal(x.rc, FS_ETLS);
    buf_release(&x.body);

    memset(&x, 0, sizeof(x));
    h_run(&x, "http://127.0.0.1:1/", NULL, 0); /* nothing listens */
    assert_int_equal(x.rc, FS_EHTTP);
    buf_release(&x.body);

    snprintf(url, sizeof(url), "%s/v1/projects/p/databases/d/documents:runQuery", fake_fs_url(fs));
    memset(&x, 0, sizeof(x));
    h_run(&x, url, "{}", 0);
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.status, 200);
    assert_string_equal(buf_str(&x.body),
                        "[{\"readTime\":\"2026-01-01T00:00:00.000000Z\",\"done\":true}]");
    buf_release(&x.body);

    buf_init(&big, 0);
    buf_adds(&big, "[\"");
    for (int i = 0; i < 5000; i++)
        buf_addc(&big, 'x');
    buf_adds(&big, "\"]");
    fake_fs_push_runquery(fs, buf_str(&big));
    buf_release(&big);
    memset(&x, 0, sizeof(x));
    h_run(&x, url, "{}", 1000);
    assert_int_equal(x.rc, FS_ETOOBIG);
    buf_release(&x.body);

    /* refused before anything starts: no callback, ever */
    assert_int_equal(uv_loop_init(&loop), 0);
    h = http_client_new(&loop, &e);
    o.ud = &x;
    memset(&x, 0, sizeof(x));
    assert_null(http_request_new(h, &o, &e));
    assert_int_equal(e.code, FS_EINVAL);
    http_client_free(h);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(x.done, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    fake_fs_free(fs);
}

static void test_http_pause_holds_bytes_and_resume_delivers_them_once(void **state)
{
    fake_fs *fs = fake_fs_start();
    char url[128];
    struct hctx x;
    buf big;
    (void)state;

    assert_non_null(fs);
    buf_init(&big, 0);
    buf_adds(&big, "[\"");
    for (int i = 0; i < 200000; i++)
        buf_addc(&big, (char)('a' + i % 26));
    buf_adds(&big, "\"]");
    fake_fs_push_runquery(fs, buf_str(&big));
    snprintf(url, sizeof(url), "%s/v1/projects/p/databases/d/documents:runQuery", fake_fs_url(fs));
    for (int mode = 1; mode <= 2; mode++) {
        memset(&x, 0, sizeof(x));
        x.mode = mode;
        h_run(&x, url, "{}", 0);
        assert_int_equal(x.rc, 0);
        assert_int_equal(x.pauses, 1);
        assert_int_equal(x.calls_while_paused, 0);
        if (mode == 1)
            assert_true(x.resent_ok); /* the handed-back piece came again, from its start */
        assert_int_equal(x.body.len, big.len);
        assert_memory_equal(x.body.p, big.p, big.len);
        buf_release(&x.body);
    }
    buf_release(&big);
    fake_fs_free(fs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noops_are_acknowledged_but_not_delivered),
        cmocka_unit_test(test_gsessionid_from_the_handshake_header_goes_on_every_later_request),
        cmocka_unit_test(test_stop_ends_the_session_and_a_new_one_follows),
        cmocka_unit_test(test_close_array_is_answered_with_terminate_and_a_new_session),
        cmocka_unit_test(test_error_payloads_end_the_session_with_their_code),
        cmocka_unit_test(test_handshake_401_is_an_auth_failure_and_is_retried),
        cmocka_unit_test(test_handshake_that_never_answers_times_out_and_is_retried),
        cmocka_unit_test(test_503_on_the_back_channel_kills_the_session),
        cmocka_unit_test(test_stalled_get_is_abandoned_by_the_watchdog_and_data_still_arrives),
        cmocka_unit_test(test_four_get_failures_in_a_row_end_the_session),
        cmocka_unit_test(test_three_failures_then_data_keeps_the_session),
        cmocka_unit_test(test_truncated_get_is_retried_and_nothing_repeats),
        cmocka_unit_test(test_chunk_cut_inside_a_utf8_sequence_arrives_intact),
        cmocka_unit_test(test_chunk_over_the_cap_is_refused),
        cmocka_unit_test(test_forward_post_retry_reuses_its_map_ids),
        cmocka_unit_test(test_a_gap_in_array_ids_opens_a_new_session_without_delivering),
        cmocka_unit_test(test_token_travels_only_in_the_handshake),
        cmocka_unit_test(test_restart_terminates_the_old_session_and_opens_a_new_one),
        cmocka_unit_test(test_http_errors_map_onto_err_codes),
        cmocka_unit_test(test_http_pause_holds_bytes_and_resume_delivers_them_once),
    };
    return cmocka_run_group_tests_name("webchannel_fake", tests, NULL, NULL);
}
