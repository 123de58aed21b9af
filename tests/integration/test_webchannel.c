/*
 * test_webchannel.c - the WebChannel client against Google's real Firestore emulator.
 *
 * Proves, on the wire the emulator really speaks: the handshake with an addTarget on a
 * collection query delivers ADD, the documents, CURRENT and the global NO_CHANGE; a REST write
 * afterwards arrives within a second as RESET + documents + CURRENT; strings with é, 日本, 😀 and
 * Gson's HTML-escaped <>&=' and a 900 KB document arrive intact; a second target added by a
 * forward POST and its removeTarget work; a session killed behind the client's back (TYPE=terminate
 * sent by the test) makes the client open a new one and call on_connect again; pausing after
 * every message loses and repeats nothing; a silent back channel is restarted by the watchdog
 * without losing the session; failing credentials are reported and retried; and wc_close()
 * terminates the session on the server and leaves the loop with no live handle.
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
#include "tests/harness/svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_EVENTS 4096
#define EV_LEN 96

static struct svc_env env;
static char database[128];
static char base_url[64];

struct ctx;
typedef bool (*pred_fn)(struct ctx *c);

struct ctx {
    uv_loop_t loop;
    uv_timer_t deadline;
    uv_timer_t resume;
    uv_timer_t tick; /* re-checks the awaited condition for changes no callback reports */
    http_client *http;
    wc_session *wc;
    pred_fn pred;
    const char *targets[4]; /* sent in every on_connect */
    int ntargets;
    char events[MAX_EVENTS][EV_LEN];
    int nev;
    int connects, opens, downs, last_down_code;
    bool running;           /* inside run_until's uv_run */
    bool pause_each;        /* on_message returns WC_PAUSE */
    bool auto_resume;       /* ... and a 1 ms timer resumes */
    bool paused;            /* a pause is in force */
    int delivered_in_pause; /* must stay 0 */
    int auth_failures;      /* the auth callback fails this many times first */
    int auth_calls;
    int unicode_ok, big_ok; /* documents whose content was checked in on_message */
    int closed_wc, closed_http;
    uint64_t base_failures;
    const char *want_ev;
    int want_n;
};

static int setup(void **state)
{
    fserr e = {0};
    (void)state;
    if (svc_env_load(&env, &e) != 0 || svc_emulator_clear(&env, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    snprintf(database, sizeof(database), "projects/%s/databases/(default)", env.project);
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", env.emulator_port);
    return 0;
}

/* ---- REST helpers (blocking: the test's side, never the agent's) ---------------------------- */

static void put_doc(const char *coll, const char *id, const char *fields)
{
    char path[256];
    buf body;
    long status = 0;
    fserr e = {0};

    snprintf(path, sizeof(path), "/v1/%s/documents/%s/%s", database, coll, id);
    buf_init(&body, 0);
    buf_printf(&body, "{\"fields\":%s}", fields);
    assert_int_equal(svc_http(&env, "PATCH", path, buf_str(&body), NULL, &status, &e), 0);
    buf_release(&body);
    if (status != 200)
        fail_msg("PATCH %s: HTTP %ld", path, status);
}

static void put_name(const char *coll, const char *id, const char *name)
{
    char fields[256];
    snprintf(fields, sizeof(fields), "{\"name\":{\"stringValue\":\"%s\"}}", name);
    put_doc(coll, id, fields);
}

static char *add_target_json(const char *coll, int target)
{
    static char out[4][512];
    static int k;
    char *s = out[k++ % 4];
    snprintf(s, 512,
             "{\"database\":\"%s\",\"addTarget\":{\"query\":{\"parent\":\"%s/documents\","
             "\"structuredQuery\":{\"from\":[{\"collectionId\":\"%s\"}]}},\"targetId\":%d}}",
             database, database, coll, target);
    return s;
}

/* ---- recording what arrives ------------------------------------------------------------------ */

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

static int count_ev(const struct ctx *c, const char *ev, int from)
{
    int n = 0;
    for (int i = from; i < c->nev; i++)
        n += strcmp(c->events[i], ev) == 0;
    return n;
}

static int find_ev(const struct ctx *c, const char *ev, int from)
{
    for (int i = from; i < c->nev; i++)
        if (strcmp(c->events[i], ev) == 0)
            return i;
    return -1;
}

/* The decoded stringValue of field `name` of document object doc, in out. */
static bool field_string(const json_doc *d, int doc, const char *name, buf *out)
{
    int f = json_obj_get(d, json_obj_get(d, doc, "fields"), name);
    int sv = json_obj_get(d, f, "stringValue");
    buf_reset(out);
    return sv >= 0 && json_str_unescape(d, sv, out, NULL) == 0;
}

static void check_content(struct ctx *c, const json_doc *d, int doc, const char *id)
{
    buf v;
    buf_init(&v, 0);
    if (strcmp(id, "u1") == 0 && field_string(d, doc, "s", &v) &&
        strcmp(buf_str(&v), "é日本😀") == 0 && field_string(d, doc, "h", &v) &&
        strcmp(buf_str(&v), "<>&='\"\\/") == 0 && field_string(d, doc, "é日😀key", &v) &&
        strcmp(buf_str(&v), "José 日本 😀") == 0)
        c->unicode_ok++;
    if (strcmp(id, "big") == 0 && field_string(d, doc, "s", &v) && v.len == 900000) {
        bool ok = true;
        for (size_t i = 0; ok && i < 600000; i += 2)
            ok = (unsigned char)v.p[i] == 0xC3 && (unsigned char)v.p[i + 1] == 0xA9;
        for (size_t i = 600000; ok && i < 900000; i++)
            ok = v.p[i] == 'x';
        c->big_ok += ok;
    }
    buf_release(&v);
}

static void record_target_change(struct ctx *c, const json_doc *d, int tc)
{
    int type = json_obj_get(d, tc, "targetChangeType");
    int ids = json_obj_get(d, tc, "targetIds");
    char list[48] = "";
    buf t;

    for (int k = json_child(d, ids); k >= 0; k = json_sibling(d, ids, k)) {
        size_t n;
        const char *raw = json_raw(d, k, &n);
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%.*s", list[0] ? "," : "",
                 (int)n, raw);
    }
    buf_init(&t, 64);
    if (type >= 0)
        json_str_unescape(d, type, &t, NULL);
    if (type < 0 && !list[0])
        record(c, "NOCHANGE");
    else
        record(c, "%s %s", type >= 0 ? buf_str(&t) : "NO_CHANGE", list);
    buf_release(&t);
}

/* Stops the loop when the awaited condition holds (only while run_until runs it: a stop requested
 * outside uv_run would make the next uv_run return at once). */
static void maybe_stop(struct ctx *c)
{
    if (c->running && c->pred && c->pred(c))
        uv_stop(&c->loop);
}

static void on_resume_timer(uv_timer_t *t);

static int on_message(void *ud, const json_doc *d, int tok)
{
    struct ctx *c = ud;
    int tc = json_obj_get(d, tok, "targetChange");
    int dc = json_obj_get(d, tok, "documentChange");

    if (c->paused)
        c->delivered_in_pause++;
    if (tc >= 0) {
        record_target_change(c, d, tc);
    } else if (dc >= 0) {
        int doc = json_obj_get(d, dc, "document");
        buf name;
        const char *id;
        buf_init(&name, 1024);
        json_str_unescape(d, json_obj_get(d, doc, "name"), &name, NULL);
        id = strrchr(buf_str(&name), '/');
        id = id ? id + 1 : "?";
        check_content(c, d, doc, id);
        record(c, "DOC %s", id);
        buf_release(&name);
    } else {
        record(c, "OTHER");
    }
    if (c->pause_each) {
        c->paused = true;
        if (c->auto_resume)
            uv_timer_start(&c->resume, on_resume_timer, 1, 0);
    }
    maybe_stop(c);
    return c->pause_each ? WC_PAUSE : 0;
}

static void on_resume_timer(uv_timer_t *t)
{
    struct ctx *c = t->data;
    c->paused = false;
    wc_resume(c->wc);
}

static void on_connect(void *ud)
{
    struct ctx *c = ud;
    fserr e = {0};
    c->connects++;
    for (int i = 0; i < c->ntargets; i++)
        assert_int_equal(wc_send(c->wc, c->targets[i], &e), 0);
    maybe_stop(c);
}

static void on_open(void *ud)
{
    struct ctx *c = ud;
    c->opens++;
}

static void on_down(void *ud, int code, const char *why)
{
    struct ctx *c = ud;
    (void)why;
    c->downs++;
    c->last_down_code = code;
    maybe_stop(c);
}

static int auth(void *ud, buf *out)
{
    struct ctx *c = ud;
    if (c->auth_calls++ < c->auth_failures)
        return FS_EAUTH;
    return buf_adds(out, "Bearer owner");
}

/* ---- driving the loop ------------------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t)
{
    struct ctx *c = t->data;
    uv_stop(&c->loop);
}

static void on_tick(uv_timer_t *t)
{
    maybe_stop(t->data);
}

/* Runs the loop until pred holds or ms pass; returns pred's verdict. */
static bool run_until(struct ctx *c, pred_fn pred, long ms)
{
    if (pred(c))
        return true;
    c->pred = pred;
    uv_update_time(&c->loop);
    uv_timer_start(&c->deadline, on_deadline, (uint64_t)ms, 0);
    uv_timer_start(&c->tick, on_tick, 20, 20);
    c->running = true;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    c->running = false;
    uv_timer_stop(&c->deadline);
    uv_timer_stop(&c->tick);
    c->pred = NULL;
    return pred(c);
}

static bool have_wanted(struct ctx *c)
{
    return count_ev(c, c->want_ev, 0) >= c->want_n;
}

static bool wait_ev(struct ctx *c, const char *ev, int n, long ms)
{
    c->want_ev = ev;
    c->want_n = n;
    return run_until(c, have_wanted, ms);
}

static void start(struct ctx *c, long watchdog_ms)
{
    fserr e = {0};
    struct wc_config cfg = {
        .base_url = base_url,
        .database = database,
        .request_timeout_ms = 10000,
        .watchdog_ms = watchdog_ms,
        .get_retry_ms = 100,
        .backoff_min_ms = 50,
        .backoff_max_ms = 200,
        .auth_header = auth,
        .auth_ud = c,
    };
    struct wc_callbacks cb = {
        .on_connect = on_connect,
        .on_open = on_open,
        .on_message = on_message,
        .on_down = on_down,
    };

    assert_int_equal(uv_loop_init(&c->loop), 0);
    uv_timer_init(&c->loop, &c->deadline);
    uv_timer_init(&c->loop, &c->resume);
    uv_timer_init(&c->loop, &c->tick);
    c->deadline.data = c;
    c->resume.data = c;
    c->tick.data = c;
    c->http = http_client_new(&c->loop, &e);
    assert_non_null(c->http);
    c->wc = wc_new(&c->loop, c->http, &cfg, &cb, c, &e);
    if (!c->wc)
        fail_msg("wc_new: %s", e.msg);
    assert_int_equal(wc_start(c->wc, &e), 0);
}

static void http_closed(void *ud)
{
    struct ctx *c = ud;
    c->closed_http = 1;
    http_client_free(c->http);
    c->http = NULL;
}

static void wc_closed(void *ud)
{
    struct ctx *c = ud;
    c->closed_wc = 1;
    c->wc = NULL;
    http_client_close(c->http, http_closed, c);
}

/* wc_close(), then the HTTP client, then the test's timers: the loop must end empty. */
static void finish(struct ctx *c)
{
    wc_close(c->wc, wc_closed, c);
    uv_close((uv_handle_t *)&c->deadline, NULL);
    uv_close((uv_handle_t *)&c->resume, NULL);
    uv_close((uv_handle_t *)&c->tick, NULL);
    assert_int_equal(uv_run(&c->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(c->closed_wc, 1);
    assert_int_equal(c->closed_http, 1);
    assert_int_equal(uv_loop_close(&c->loop), 0);
}

static struct ctx *new_ctx(void)
{
    struct ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    return c;
}

static void dump(const struct ctx *c)
{
    for (int i = 0; i < c->nev; i++)
        fprintf(stderr, "  event %d: %s\n", i, c->events[i]);
}

/* Asserts events[from..] is `head`, then exactly the documents named, then CURRENT and NO_CHANGE;
 * returns the index after them. */
static int expect_cycle(const struct ctx *c, int from, const char *head, const char *const *docs,
                        int ndocs, const char *current)
{
    int i = from;
    if (c->nev < from + ndocs + 3 || strcmp(c->events[i], head) != 0) {
        dump(c);
        fail_msg("expected %s at event %d", head, from);
    }
    i++;
    for (int k = 0; k < ndocs; k++, i++) {
        char want[EV_LEN];
        snprintf(want, sizeof(want), "DOC %s", docs[k]);
        if (count_ev(c, want, from) < 1 || strncmp(c->events[i], "DOC ", 4) != 0) {
            dump(c);
            fail_msg("expected %s among the documents after %s", want, head);
        }
    }
    if (strcmp(c->events[i], current) != 0 || strcmp(c->events[i + 1], "NOCHANGE") != 0) {
        dump(c);
        fail_msg("expected %s then NOCHANGE at event %d", current, i);
    }
    return i + 2;
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_add_target_delivers_add_documents_current_and_no_change(void **state)
{
    static const char *const first[] = {"e1", "e2", "e3"};
    static const char *const second[] = {"e1", "e2", "e3", "e4"};
    struct ctx *c = new_ctx();
    struct wc_stats st;
    int next;
    (void)state;

    put_name("employees", "e1", "Ana");
    put_name("employees", "e2", "Bea");
    put_name("employees", "e3", "Cy");
    c->targets[c->ntargets++] = add_target_json("employees", 2);
    start(c, 0);
    assert_true(wait_ev(c, "NOCHANGE", 1, 15000));
    next = expect_cycle(c, 0, "ADD 2", first, 3, "CURRENT 2");
    assert_int_equal(c->connects, 1);
    assert_int_equal(c->opens, 1);
    assert_int_equal(c->downs, 0);
    wc_stats_get(c->wc, &st);
    assert_true(st.has_session);
    assert_int_equal(st.state, WC_OPEN);
    assert_true(st.arrays_received >= 6);
    assert_int_equal(st.messages, 6);
    assert_true(st.last_data_unix_ms > 0);

    /* a REST write afterwards: the whole cycle within a second */
    put_name("employees", "e4", "Dee");
    assert_true(wait_ev(c, "NOCHANGE", 2, 1000));
    expect_cycle(c, next, "RESET 2", second, 4, "CURRENT 2");
    finish(c);
    free(c);
}

static void test_unicode_html_characters_and_a_900k_document_arrive_intact(void **state)
{
    struct ctx *c = new_ctx();
    buf big;
    (void)state;

    put_doc("texts", "u1",
            "{\"s\":{\"stringValue\":\"é日本😀\"},\"h\":{\"stringValue\":\"<>&='\\\"\\\\/\"},"
            "\"é日😀key\":{\"stringValue\":\"José 日本 😀\"}}");
    buf_init(&big, 0);
    buf_adds(&big, "{\"s\":{\"stringValue\":\"");
    for (int i = 0; i < 300000; i++)
        buf_adds(&big, "é");
    for (int i = 0; i < 300000; i++)
        buf_addc(&big, 'x');
    buf_adds(&big, "\"}}");
    put_doc("texts", "big", buf_str(&big));
    buf_release(&big);

    c->targets[c->ntargets++] = add_target_json("texts", 3);
    start(c, 0);
    assert_true(wait_ev(c, "NOCHANGE", 1, 20000));
    assert_int_equal(count_ev(c, "DOC u1", 0), 1);
    assert_int_equal(count_ev(c, "DOC big", 0), 1);
    assert_int_equal(c->unicode_ok, 1);
    assert_int_equal(c->big_ok, 1);
    finish(c);
    free(c);
}

static bool current4_and_settled(struct ctx *c)
{
    int i = find_ev(c, "CURRENT 4", 0);
    return i >= 0 && find_ev(c, "NOCHANGE", i) > i;
}

static bool nothing_queued(struct ctx *c)
{
    struct wc_stats st;
    wc_stats_get(c->wc, &st);
    return st.queued == 0;
}

static void test_second_target_by_forward_post_then_remove_target(void **state)
{
    static const char *const depts[] = {"d1", "d2"};
    struct ctx *c = new_ctx();
    struct wc_stats st;
    char remove[256];
    fserr e = {0};
    int i;
    (void)state;

    put_name("employees", "e1", "Ana");
    put_name("depts", "d1", "Sales");
    put_name("depts", "d2", "Ops");
    c->targets[c->ntargets++] = add_target_json("employees", 2);
    start(c, 0);
    assert_true(wait_ev(c, "NOCHANGE", 1, 15000));

    assert_int_equal(wc_send(c->wc, add_target_json("depts", 4), &e), 0);
    assert_true(run_until(c, current4_and_settled, 5000));
    i = find_ev(c, "ADD 4", 0);
    assert_true(i > 0);
    expect_cycle(c, i, "ADD 4", depts, 2, "CURRENT 4");

    snprintf(remove, sizeof(remove), "{\"database\":\"%s\",\"removeTarget\":4}", database);
    assert_int_equal(wc_send(c->wc, remove, &e), 0);
    assert_true(wait_ev(c, "REMOVE 4", 1, 5000));
    /* the REMOVE may overtake the POST's own reply; the reply acknowledges the map */
    assert_true(run_until(c, nothing_queued, 5000));
    wc_stats_get(c->wc, &st);
    assert_int_equal(st.posts, 2); /* one forward POST each, none retried */
    assert_int_equal(c->connects, 1);
    assert_int_equal(c->downs, 0);
    finish(c);
    free(c);
}

static bool reconnected_and_settled(struct ctx *c)
{
    return c->connects >= 2 && count_ev(c, "NOCHANGE", 0) >= 2;
}

/* The channel path with query "database=...&VER=8&SID=<sid>&<tail>", for requests the test
 * sends itself. */
static void channel_path(char *out, size_t n, const char *sid, const char *tail)
{
    buf q;
    buf_init(&q, 0);
    buf_printf(&q, "%s?database=", WC_LISTEN_PATH);
    wc_urlenc(&q, database, strlen(database));
    buf_adds(&q, "&VER=8&SID=");
    wc_urlenc(&q, sid, strlen(sid));
    buf_printf(&q, "&%s", tail);
    snprintf(out, n, "%s", buf_str(&q));
    buf_release(&q);
}

static void test_session_terminated_behind_the_back_opens_a_new_one(void **state)
{
    static const char *const docs[] = {"e1"};
    struct ctx *c = new_ctx();
    struct wc_stats st;
    char old_sid[WC_SID_MAX], path[512];
    long status = 0;
    fserr e = {0};
    int i;
    (void)state;

    put_name("employees", "e1", "Ana");
    c->targets[c->ntargets++] = add_target_json("employees", 2);
    start(c, 0);
    assert_true(wait_ev(c, "NOCHANGE", 1, 15000));
    snprintf(old_sid, sizeof(old_sid), "%s", wc_session_id(c->wc));
    assert_true(old_sid[0] != '\0');

    channel_path(path, sizeof(path), old_sid, "RID=99999&TYPE=terminate&zx=t&t=1");
    assert_int_equal(svc_http(&env, "GET", path, NULL, NULL, &status, &e), 0);
    assert_int_equal(status, 200);

    assert_true(run_until(c, reconnected_and_settled, 15000));
    assert_int_equal(c->downs, 1);
    assert_int_equal(c->last_down_code, FS_ESESSION);
    assert_int_equal(c->connects, 2);
    assert_int_equal(c->opens, 2);
    assert_string_not_equal(wc_session_id(c->wc), old_sid);
    i = find_ev(c, "ADD 2", 1);
    assert_true(i > 0);
    expect_cycle(c, i, "ADD 2", docs, 1, "CURRENT 2");
    wc_stats_get(c->wc, &st);
    assert_int_equal(st.reconnects, 1);
    assert_int_equal(st.sessions, 2);
    finish(c);
    free(c);
}

static void test_pausing_after_every_message_loses_and_repeats_nothing(void **state)
{
    struct ctx *c = new_ctx();
    char id[16], want[32];
    struct wc_stats st;
    (void)state;

    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof(id), "p%02d", i);
        put_name("paused", id, id);
    }
    c->targets[c->ntargets++] = add_target_json("paused", 5);
    c->pause_each = true;
    c->auto_resume = true; /* every pause is lifted 1 ms later by a timer, from the loop */
    start(c, 0);
    assert_true(wait_ev(c, "NOCHANGE", 1, 15000));
    wc_stats_get(c->wc, &st);
    assert_true(st.paused); /* the last message paused too */
    assert_int_equal(c->delivered_in_pause, 0);
    /* the arrays held during the pauses came from memory, not from GETs re-fetching them */
    assert_true(st.gets <= 3);
    assert_string_equal(c->events[0], "ADD 5");
    for (int i = 0; i < 30; i++) {
        snprintf(want, sizeof(want), "DOC p%02d", i);
        assert_int_equal(count_ev(c, want, 0), 1);
    }
    assert_string_equal(c->events[31], "CURRENT 5");
    assert_string_equal(c->events[32], "NOCHANGE");
    assert_int_equal(c->nev, 33);
    finish(c);
    free(c);
}

static bool pause_stop(struct ctx *c)
{
    return c->paused || have_wanted(c);
}

/* Same with the pause lifted only when the test says so, and a RESET of 31 documents. */
static void test_held_messages_survive_a_long_pause_and_a_reset(void **state)
{
    struct ctx *c = new_ctx();
    char id[16], want[32];
    int from;
    (void)state;

    for (int i = 0; i < 30; i++) {
        snprintf(id, sizeof(id), "h%02d", i);
        put_name("held", id, id);
    }
    c->targets[c->ntargets++] = add_target_json("held", 6);
    c->pause_each = true;
    start(c, 0);
    c->want_ev = "NOCHANGE";
    c->want_n = 1;
    for (int rounds = 0; run_until(c, pause_stop, 15000) && !have_wanted(c); rounds++) {
        assert_true(rounds < 100);
        c->paused = false;
        wc_resume(c->wc);
    }
    assert_true(have_wanted(c));
    from = c->nev;
    c->paused = false;
    wc_resume(c->wc);
    put_name("held", "h30", "h30");
    c->want_n = 2;
    for (int rounds = 0; run_until(c, pause_stop, 15000) && !have_wanted(c); rounds++) {
        assert_true(rounds < 100);
        c->paused = false;
        wc_resume(c->wc);
    }
    if (!have_wanted(c) || c->nev - from != 1 + 31 + 2 || strcmp(c->events[from], "RESET 6"))
        dump(c);
    assert_true(have_wanted(c));
    assert_int_equal(c->delivered_in_pause, 0);
    assert_string_equal(c->events[from], "RESET 6");
    for (int i = 0; i <= 30; i++) {
        snprintf(want, sizeof(want), "DOC h%02d", i);
        assert_int_equal(count_ev(c, want, from), 1);
    }
    assert_int_equal(c->nev - from, 1 + 31 + 2);
    finish(c);
    free(c);
}

static bool two_more_get_failures(struct ctx *c)
{
    struct wc_stats st;
    wc_stats_get(c->wc, &st);
    return st.get_failures >= c->base_failures + 2;
}

static void test_watchdog_restarts_a_silent_back_channel_and_keeps_the_session(void **state)
{
    static const char *const docs[] = {"e1", "e2"};
    struct ctx *c = new_ctx();
    struct wc_stats before, after;
    char sid[WC_SID_MAX];
    int next;
    (void)state;

    put_name("employees", "e1", "Ana");
    c->targets[c->ntargets++] = add_target_json("employees", 2);
    start(c, 300); /* the emulator never sends keep-alives to an idle GET */
    assert_true(wait_ev(c, "NOCHANGE", 1, 15000));
    next = c->nev;
    snprintf(sid, sizeof(sid), "%s", wc_session_id(c->wc));
    wc_stats_get(c->wc, &before);
    c->base_failures = before.get_failures;
    assert_true(run_until(c, two_more_get_failures, 10000));
    wc_stats_get(c->wc, &after);
    /* the silent GETs were abandoned and re-sent (the emulator usually answers a new GET with
     * fresh noops, which reset the retry count); the session itself is not lost */
    assert_true(after.gets > before.gets);
    assert_int_equal(c->downs, 0);
    assert_string_equal(wc_session_id(c->wc), sid);
    put_name("employees", "e2", "Bea");
    assert_true(wait_ev(c, "NOCHANGE", 2, 5000));
    expect_cycle(c, next, "RESET 2", docs, 2, "CURRENT 2");
    finish(c);
    free(c);
}

static void test_failing_credentials_are_reported_and_retried(void **state)
{
    struct ctx *c = new_ctx();
    (void)state;

    put_name("employees", "e1", "Ana");
    c->targets[c->ntargets++] = add_target_json("employees", 2);
    c->auth_failures = 2;
    start(c, 0);
    assert_true(wait_ev(c, "NOCHANGE", 1, 15000));
    assert_int_equal(c->downs, 2);
    assert_int_equal(c->last_down_code, FS_EAUTH);
    assert_int_equal(c->connects, 3);
    assert_int_equal(c->opens, 1);
    assert_int_equal(count_ev(c, "ADD 2", 0), 1);
    finish(c);
    free(c);
}

static void test_close_terminates_the_session_and_leaves_no_live_handles(void **state)
{
    struct ctx *c = new_ctx();
    char sid[WC_SID_MAX], path[512];
    long status = 0;
    fserr e = {0};
    (void)state;

    c->targets[c->ntargets++] = add_target_json("employees", 2);
    start(c, 0);
    assert_true(wait_ev(c, "NOCHANGE", 1, 15000)); /* the GET now hangs on the server */
    snprintf(sid, sizeof(sid), "%s", wc_session_id(c->wc));
    finish(c); /* uv_run returned 0 and uv_loop_close succeeded */

    /* the server no longer knows the session: a forward POST naming it gets 400 */
    channel_path(path, sizeof(path), sid, "RID=99999&AID=0&zx=t&t=1");
    assert_int_equal(svc_http(&env, "POST", path, "count=0&ofs=1", NULL, &status, &e), 0);
    assert_int_equal(status, 400);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_add_target_delivers_add_documents_current_and_no_change, setup),
        cmocka_unit_test_setup(test_unicode_html_characters_and_a_900k_document_arrive_intact,
                               setup),
        cmocka_unit_test_setup(test_second_target_by_forward_post_then_remove_target, setup),
        cmocka_unit_test_setup(test_session_terminated_behind_the_back_opens_a_new_one, setup),
        cmocka_unit_test_setup(test_pausing_after_every_message_loses_and_repeats_nothing, setup),
        cmocka_unit_test_setup(test_held_messages_survive_a_long_pause_and_a_reset, setup),
        cmocka_unit_test_setup(test_watchdog_restarts_a_silent_back_channel_and_keeps_the_session,
                               setup),
        cmocka_unit_test_setup(test_failing_credentials_are_reported_and_retried, setup),
        cmocka_unit_test_setup(test_close_terminates_the_session_and_leaves_no_live_handles, setup),
    };
    return cmocka_run_group_tests_name("webchannel_emulator", tests, NULL, NULL);
}
