/*
 * test_listen.c - Listen state on scripted ListenResponses: the emulator's initial and RESET
 * cycles, production deltas after a resume, deletes, REMOVE with a cause, existence filters,
 * collection-group patterns, and what goes out on the forward channel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "firestore/listen.h"

#include <stdio.h>
#include <string.h>

#define DB "projects/p/databases/(default)"
#define ROOT DB "/documents"

/* The owner: remembers applied update times, logs every call as one line. */
struct owner {
    buf log;
    buf sent;
    struct {
        char name[200];
        struct fs_time ut;
    } applied[32];
    int napplied;
    size_t live;
};

static struct owner o;
static listen_state *ls;

static int find_applied(const char *name, size_t len)
{
    for (int i = 0; i < o.napplied; i++)
        if (strlen(o.applied[i].name) == len && memcmp(o.applied[i].name, name, len) == 0)
            return i;
    return -1;
}

static bool cb_seen(void *ud, int target, const char *name, size_t len, struct fs_time ut)
{
    int i = find_applied(name, len);
    (void)ud;
    if (i >= 0 && fsval_time_cmp(o.applied[i].ut, ut) == 0) {
        buf_printf(&o.log, "seen %d %.*s\n", target, (int)(len - strlen(ROOT) - 1), name + strlen(ROOT) + 1);
        return true;
    }
    return false;
}

static int cb_upsert(void *ud, int target, struct fsdoc *doc)
{
    int i = find_applied(doc->name, strlen(doc->name));
    (void)ud;
    if (i < 0) {
        i = o.napplied++;
        snprintf(o.applied[i].name, sizeof(o.applied[i].name), "%s", doc->name);
    }
    o.applied[i].ut = doc->update_time;
    buf_printf(&o.log, "upsert %d %s\n", target, doc->name + strlen(ROOT) + 1);
    fsdoc_release(doc);
    return 0;
}

static int cb_remove(void *ud, int target, const char *name, size_t len, struct fs_time rt)
{
    (void)ud;
    buf_printf(&o.log, "remove %d %.*s @%lld\n", target, (int)(len - strlen(ROOT) - 1), name + strlen(ROOT) + 1,
               (long long)rt.seconds);
    return 0;
}

static void cb_reset(void *ud, int target)
{
    (void)ud;
    buf_printf(&o.log, "reset %d\n", target);
}

static int cb_consistent(void *ud, int target, const char *token, struct fs_time rt,
                         bool after_reset)
{
    (void)ud;
    buf_printf(&o.log, "consistent %d %s @%lld%s\n", target, token, (long long)rt.seconds,
               after_reset ? " after_reset" : "");
    return 0;
}

static size_t cb_live(void *ud, int target)
{
    (void)ud;
    (void)target;
    return o.live;
}

static void cb_error(void *ud, int target, int code, const char *msg)
{
    (void)ud;
    buf_printf(&o.log, "error %d %d %s\n", target, code, msg);
}

static int cb_send(void *ud, const char *json)
{
    (void)ud;
    buf_printf(&o.sent, "%s\n", json);
    return 0;
}

static const struct listen_callbacks cbs = {cb_seen,  cb_upsert, cb_remove, cb_reset,
                                            cb_consistent, cb_live, cb_error, cb_send,
                                            NULL};

static int setup(void **state)
{
    (void)state;
    memset(&o, 0, sizeof(o));
    buf_init(&o.log, 0);
    buf_init(&o.sent, 0);
    ls = listen_new(DB, &cbs, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    listen_free(ls);
    buf_release(&o.log);
    buf_release(&o.sent);
    return 0;
}

static int feed(const char *msg)
{
    json_doc d;
    fserr e = {0};
    int rc;

    json_doc_init(&d);
    assert_int_equal(json_parse(&d, msg, strlen(msg), &e), 0);
    rc = listen_handle(ls, &d, 0, &e);
    json_doc_release(&d);
    return rc;
}

static void feed_ok(const char *msg)
{
    assert_int_equal(feed(msg), 0);
}

#define DOC(id, secs)                                                                              \
    "{\"documentChange\":{\"document\":{\"name\":\"" ROOT "/employees/" id                        \
    "\",\"fields\":{\"n\":{\"stringValue\":\"" id "\"}},\"createTime\":\"2026-01-01T00:00:00Z\","  \
    "\"updateTime\":\"2026-01-01T00:00:" secs "Z\"},\"targetIds\":[2]}}"
#define TC(type, extra) "{\"targetChange\":{\"targetChangeType\":\"" type "\",\"targetIds\":[2]" extra "}}"
#define GLOBAL(tok, secs)                                                                          \
    "{\"targetChange\":{\"resumeToken\":\"" tok "\",\"readTime\":\"2026-01-01T00:01:" secs "Z\"}}"

static void connect_employees(const char *token)
{
    fserr e = {0};
    assert_int_equal(listen_add_target(ls, "employees", token, &e), 0);
    assert_int_equal(listen_connect(ls, &e), 0);
}

static void test_add_target_request_names_the_collection_and_resume_token(void **state)
{
    fserr e = {0};
    (void)state;
    assert_int_equal(listen_add_target(ls, "employees", "CgkI2MOKgdSdmAM=", &e), 0);
    assert_int_equal(listen_add_target(ls, "shops/s1/items", NULL, &e), 1);
    assert_int_equal(listen_add_target(ls, "users/*/orders", "", &e), 2);
    assert_int_equal(listen_connect(ls, &e), 0);
    assert_string_equal(
        buf_str(&o.sent),
        "{\"database\":\"" DB "\",\"addTarget\":{\"query\":{\"parent\":\"" ROOT "\","
        "\"structuredQuery\":{\"from\":[{\"collectionId\":\"employees\"}]}},\"targetId\":2,"
        "\"resumeToken\":\"CgkI2MOKgdSdmAM=\"}}\n"
        "{\"database\":\"" DB "\",\"addTarget\":{\"query\":{\"parent\":\"" ROOT "/shops/s1\","
        "\"structuredQuery\":{\"from\":[{\"collectionId\":\"items\"}]}},\"targetId\":4}}\n"
        "{\"database\":\"" DB "\",\"addTarget\":{\"query\":{\"parent\":\"" ROOT "\","
        "\"structuredQuery\":{\"from\":[{\"collectionId\":\"orders\",\"allDescendants\":true}]}},"
        "\"targetId\":6}}\n");
    assert_int_equal(listen_target_id(ls, 1), 4);
    assert_string_equal(listen_target_path(ls, 2), "users/*/orders");
}

static void test_invalid_paths_are_refused(void **state)
{
    fserr e = {0};
    (void)state;
    assert_int_equal(listen_add_target(ls, "a/b", NULL, &e), FS_EINVAL);
    assert_int_equal(listen_add_target(ls, "*/b/c", NULL, &e), FS_EINVAL);
    assert_int_equal(listen_add_target(ls, "a//c", NULL, &e), FS_EINVAL);
    assert_int_equal(listen_add_target(ls, "", NULL, &e), FS_EINVAL);
    assert_int_equal(listen_target_count(ls), 0);
}

static void test_initial_load_without_token_is_a_reset_completed_at_the_global_no_change(
    void **state)
{
    (void)state;
    connect_employees(NULL);
    feed_ok(TC("ADD", ""));
    feed_ok(DOC("e1", "01"));
    feed_ok(DOC("e2", "02"));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T1\",\"readTime\":\"2026-01-01T00:01:00Z\""));
    assert_false(strstr(buf_str(&o.log), "consistent")); /* not before the global NO_CHANGE */
    feed_ok(GLOBAL("T2", "05"));
    assert_string_equal(buf_str(&o.log), "reset 0\nupsert 0 employees/e1\nupsert 0 employees/e2\n"
                                         "consistent 0 T2 @1767225665 after_reset\n");
    assert_string_equal(listen_resume_token(ls, 0), "T2");
    assert_true(listen_target_current(ls, 0));
}

static void test_emulator_reset_cycle_skips_unchanged_documents_and_flags_deletes(void **state)
{
    (void)state;
    connect_employees(NULL);
    feed_ok(TC("ADD", ""));
    feed_ok(DOC("e1", "01"));
    feed_ok(DOC("e2", "02"));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T1\",\"readTime\":\"2026-01-01T00:01:00Z\""));
    feed_ok(GLOBAL("T2", "05"));
    buf_reset(&o.log);
    /* e2 deleted, e1 unchanged, e3 created: the emulator re-sends the whole set */
    feed_ok(TC("RESET", ",\"resumeToken\":\"T3\",\"readTime\":\"2026-01-01T00:01:06Z\""));
    feed_ok(DOC("e1", "01"));
    feed_ok(DOC("e3", "07"));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T4\",\"readTime\":\"2026-01-01T00:01:08Z\""));
    feed_ok(GLOBAL("T5", "09"));
    assert_string_equal(buf_str(&o.log), "reset 0\nseen 0 employees/e1\nupsert 0 employees/e3\n"
                                         "consistent 0 T5 @1767225669 after_reset\n");
}

static void test_resumed_target_gets_deltas_and_deletes_without_a_reset(void **state)
{
    (void)state;
    connect_employees("OLD");
    feed_ok(TC("ADD", ""));
    feed_ok(DOC("e9", "09"));
    feed_ok("{\"documentDelete\":{\"document\":\"" ROOT "/employees/e2\",\"removedTargetIds\":[2],"
            "\"readTime\":\"2026-01-01T00:00:30Z\"}}");
    feed_ok("{\"documentRemove\":{\"document\":\"" ROOT "/employees/e3\",\"removedTargetIds\":[2],"
            "\"readTime\":\"2026-01-01T00:00:31Z\"}}");
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T1\",\"readTime\":\"2026-01-01T00:01:00Z\""));
    feed_ok(GLOBAL("T2", "05"));
    assert_string_equal(buf_str(&o.log),
                        "upsert 0 employees/e9\nremove 0 employees/e2 @1767225630\n"
                        "remove 0 employees/e3 @1767225631\nconsistent 0 T2 @1767225665\n");
}

static void test_no_change_for_a_target_updates_its_token(void **state)
{
    (void)state;
    connect_employees("OLD");
    feed_ok(TC("ADD", ""));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T1\""));
    feed_ok(TC("NO_CHANGE", ",\"resumeToken\":\"T9\""));
    assert_string_equal(listen_resume_token(ls, 0), "T9");
    feed_ok("{\"targetChange\":{\"readTime\":\"2026-01-01T00:01:05Z\"}}");
    assert_string_equal(buf_str(&o.log), "consistent 0 T9 @1767225665\n");
}

static void test_remove_with_cause_reports_and_forgets_the_token(void **state)
{
    (void)state;
    connect_employees("BAD");
    feed_ok(TC("ADD", ""));
    feed_ok(TC("REMOVE", ",\"cause\":{\"code\":7,\"message\":\"\\nfalse for 'list' @ L5\"}"));
    assert_string_equal(buf_str(&o.log), "error 0 7 \nfalse for 'list' @ L5\n");
    assert_string_equal(listen_resume_token(ls, 0), "");
    assert_false(listen_target_current(ls, 0));
}

static void test_existence_filter_mismatch_relistens_without_token(void **state)
{
    (void)state;
    connect_employees("T0");
    feed_ok(TC("ADD", ""));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T1\""));
    o.live = 5;
    buf_reset(&o.sent);
    feed_ok("{\"filter\":{\"targetId\":2,\"count\":5}}"); /* agrees: nothing happens */
    assert_string_equal(buf_str(&o.sent), "");
    feed_ok("{\"filter\":{\"targetId\":2,\"count\":3}}");
    assert_string_equal(buf_str(&o.sent),
                        "{\"database\":\"" DB "\",\"removeTarget\":2}\n"
                        "{\"database\":\"" DB "\",\"labels\":{\"goog-listen-tags\":"
                        "\"existence-filter-mismatch\"},\"addTarget\":{\"query\":{\"parent\":\"" ROOT
                        "\",\"structuredQuery\":{\"from\":[{\"collectionId\":\"employees\"}]}},"
                        "\"targetId\":2}}\n");
    /* answers to the old listen are ignored while the requests are pending */
    feed_ok(DOC("stale", "01"));
    feed_ok(TC("REMOVE", ""));
    assert_false(strstr(buf_str(&o.log), "stale"));
    assert_false(strstr(buf_str(&o.log), "error"));
    feed_ok(TC("ADD", ""));
    feed_ok(DOC("e1", "01"));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T2\""));
    feed_ok(GLOBAL("T3", "05"));
    assert_string_equal(buf_str(&o.log),
                        "reset 0\nupsert 0 employees/e1\nconsistent 0 T3 @1767225665 after_reset\n");
}

static void test_mismatch_that_a_relisten_did_not_settle_is_an_error(void **state)
{
    (void)state;
    connect_employees("T0");
    feed_ok(TC("ADD", ""));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T1\""));
    o.live = 1;
    feed_ok("{\"filter\":{\"targetId\":2,\"count\":3}}");
    feed_ok(TC("REMOVE", ""));
    feed_ok(TC("ADD", ""));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T2\""));
    feed_ok("{\"filter\":{\"targetId\":2,\"count\":3}}");
    assert_non_null(strstr(buf_str(&o.log), "error 0 0 existence filter mismatch persists"));
}

static void test_group_pattern_keeps_only_matching_documents(void **state)
{
    fserr e = {0};
    const char *a = ROOT "/users/u1/orders/o1", *b = ROOT "/shops/s1/orders/o3",
               *c = ROOT "/users/u1/orders/o1/sub/x", *d = ROOT "/users/u1/orders";
    (void)state;
    assert_int_equal(listen_add_target(ls, "users/*/orders", NULL, &e), 0);
    assert_int_equal(listen_add_target(ls, "employees", NULL, &e), 1);
    assert_true(listen_target_matches(ls, 0, a, strlen(a)));
    assert_false(listen_target_matches(ls, 0, b, strlen(b)));
    assert_false(listen_target_matches(ls, 0, c, strlen(c)));
    assert_false(listen_target_matches(ls, 0, d, strlen(d)));
    assert_false(listen_target_matches(ls, 1, a, strlen(a)));
    assert_true(listen_target_matches(ls, 1, ROOT "/employees/x", strlen(ROOT "/employees/x")));
    assert_false(listen_target_matches(ls, 1, ROOT "/employees/x/y/z",
                                       strlen(ROOT "/employees/x/y/z")));
}

static void test_gson_escaped_names_are_decoded(void **state)
{
    (void)state;
    connect_employees("T");
    feed_ok(TC("ADD", ""));
    feed_ok("{\"documentChange\":{\"document\":{\"name\":\"" ROOT "/employees/a\\u003db\\u0026c\","
            "\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":\"2026-01-01T00:00:01Z\"},"
            "\"targetIds\":[2]}}");
    assert_string_equal(buf_str(&o.log), "upsert 0 employees/a=b&c\n");
}

static void test_documents_of_other_targets_and_unknown_messages_are_ignored(void **state)
{
    (void)state;
    connect_employees("T");
    feed_ok(TC("ADD", ""));
    feed_ok("{\"documentChange\":{\"document\":{\"name\":\"" ROOT "/employees/x\","
            "\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":\"2026-01-01T00:00:01Z\"},"
            "\"targetIds\":[99]}}");
    feed_ok("{\"somethingNew\":{}}");
    assert_string_equal(buf_str(&o.log), "");
}

static void test_malformed_messages_are_protocol_errors(void **state)
{
    (void)state;
    connect_employees("T");
    assert_int_equal(feed("[]"), FS_EPROTO);
    assert_int_equal(feed("{\"targetChange\":{\"targetChangeType\":\"WHAT\"}}"), FS_EPROTO);
    assert_int_equal(feed("{\"targetChange\":{\"targetIds\":\"2\"}}"), FS_EPROTO);
    assert_int_equal(feed("{\"documentChange\":{\"targetIds\":[2]}}"), FS_EPROTO);
    assert_int_equal(feed("{\"documentChange\":{\"document\":{\"name\":\"" ROOT "/employees/x\","
                          "\"updateTime\":\"yesterday\"},\"targetIds\":[2]}}"),
                     FS_EPARSE);
    assert_int_equal(feed("{\"documentDelete\":{\"removedTargetIds\":[2]}}"), FS_EPROTO);
    assert_int_equal(feed("{\"filter\":{\"count\":1}}"), FS_EPROTO);
}

static void test_reconnect_resends_every_target_with_latest_token(void **state)
{
    fserr e = {0};
    (void)state;
    connect_employees(NULL);
    feed_ok(TC("ADD", ""));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T1\""));
    feed_ok(GLOBAL("T2", "05"));
    buf_reset(&o.sent);
    buf_reset(&o.log);
    assert_int_equal(listen_connect(ls, &e), 0);
    assert_non_null(strstr(buf_str(&o.sent), "\"resumeToken\":\"T2\""));
    assert_false(listen_target_current(ls, 0));
    feed_ok(TC("ADD", ""));
    assert_string_equal(buf_str(&o.log), ""); /* a resumed add is not a reset */
}

static void test_a_reset_cut_short_by_a_new_session_deletes_nothing(void **state)
{
    fserr e = {0};
    (void)state;
    connect_employees("T0");
    feed_ok(TC("ADD", ""));
    feed_ok(TC("RESET", ""));
    feed_ok(DOC("e1", "01")); /* the old session dies before the rest of the set */
    buf_reset(&o.log);
    assert_int_equal(listen_connect(ls, &e), 0);
    feed_ok(TC("ADD", ""));
    feed_ok(TC("CURRENT", ",\"resumeToken\":\"T1\""));
    feed_ok(GLOBAL("T2", "05"));
    /* resumed from the token: a plain consistent point, no sweep of documents not re-sent */
    assert_string_equal(buf_str(&o.log), "consistent 0 T2 @1767225665\n");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_add_target_request_names_the_collection_and_resume_token),
        T(test_invalid_paths_are_refused),
        T(test_initial_load_without_token_is_a_reset_completed_at_the_global_no_change),
        T(test_emulator_reset_cycle_skips_unchanged_documents_and_flags_deletes),
        T(test_resumed_target_gets_deltas_and_deletes_without_a_reset),
        T(test_no_change_for_a_target_updates_its_token),
        T(test_remove_with_cause_reports_and_forgets_the_token),
        T(test_existence_filter_mismatch_relistens_without_token),
        T(test_mismatch_that_a_relisten_did_not_settle_is_an_error),
        T(test_group_pattern_keeps_only_matching_documents),
        T(test_gson_escaped_names_are_decoded),
        T(test_documents_of_other_targets_and_unknown_messages_are_ignored),
        T(test_malformed_messages_are_protocol_errors),
        T(test_reconnect_resends_every_target_with_latest_token),
        T(test_a_reset_cut_short_by_a_new_session_deletes_nothing),
    };
    return cmocka_run_group_tests_name("listen", tests, NULL, NULL);
}
