/*
 * test_resync.c - the full resync, end to end: the real `firesync run` against the Firestore
 * emulator and MariaDB, and `firesync resync` asking it for a run. Rows changed, deleted,
 * soft-deleted and added by hand are put right; a second resync right after writes nothing
 * (MariaDB's own row counters say so); documents deleted while the agent was stopped are
 * soft-deleted by the overdue resync at start; documents changed while a resync runs keep their
 * newest values; a run killed halfway continues after its last page at the next start; paths
 * whose bytes sort unlike Firestore's order are neither missed nor wrongly deleted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/fake/fake_fs.h"
#include "tests/harness/agent_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STAFF                                                                                      \
    "[[collections]]\npath = \"staff\"\ntable = \"staff\"\nhistory = true\n"                       \
    "[collections.columns]\n"                                                                      \
    "name = { field = \"name\", type = \"VARCHAR(100)\" }\n"                                       \
    "age = { field = \"age\", type = \"BIGINT\" }\n"                                               \
    "salary = { field = \"salary\", type = \"DECIMAL(12,2)\" }\n"                                  \
    "score = { field = \"score\", type = \"DOUBLE\" }\n"                                           \
    "active = { field = \"active\", type = \"BOOLEAN\" }\n"                                        \
    "hired = { field = \"hired\", type = \"DATETIME(6)\" }\n"                                      \
    "born = { field = \"born\", type = \"DATE\" }\n"                                               \
    "tags = { field = \"tags\", type = \"JSON\" }\n"

/* small, slow pages: a run of 60 documents takes about six seconds */
#define SLOW_PAGES "\n[resync]\npage_size = 5\npages_per_second = 2.0\n"

#define WAIT_MS 30000

static struct agent_env ae;

static int teardown(void **state)
{
    (void)state;
    agent_env_cleanup(&ae);
    return 0;
}

/* A fresh database and an empty emulator project for this test (reruns on the same services). */
static void fresh(const char *name, const char *colls, const char *extra)
{
    assert_int_equal(agent_env_init(&ae, name, colls, extra), 0);
}

static void start_agent(void)
{
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    if (!agent_wait_state(&ae, "healthy", WAIT_MS))
        fail_msg("the agent did not become healthy; see %s/agent-%d.log", ae.dir, ae.runs);
}

/* Documents s000 .. s<n-1> of `coll`, in commits of 100, `tag` in their names. */
static void put_many(const char *coll, int n, const char *tag)
{
    for (int from = 0; from < n; from += 100) {
        size_t cap = 100 * 900 + 64, o = 0;
        char *w = malloc(cap);
        o += (size_t)snprintf(w + o, cap - o, "{\"writes\":[");
        for (int i = from; i < n && i < from + 100; i++)
            o += (size_t)snprintf(
                w + o, cap - o,
                "%s{\"update\":{\"name\":\"projects/%s/databases/(default)/documents/%s/s%03d\","
                "\"fields\":{\"name\":{\"stringValue\":\"%s%d\"},\"age\":{\"integerValue\":\"%d\"},"
                "\"salary\":{\"doubleValue\":%d.5},\"score\":{\"doubleValue\":0.30000000000000004},"
                "\"active\":{\"booleanValue\":%s},\"hired\":{\"timestampValue\":"
                "\"2026-01-05T09:00:00.123456Z\"},\"born\":{\"stringValue\":\"1990-02-%02d\"},"
                "\"tags\":{\"mapValue\":{\"fields\":{\"z\":{\"integerValue\":\"1\"},\"a\":"
                "{\"arrayValue\":{\"values\":[{\"doubleValue\":1.5},{\"stringValue\":\"é\"}]}}}}},"
                "\"note\":{\"stringValue\":\"unmapped\"}}}}",
                i > from ? "," : "", ae.project, coll, i, tag, i, i, 1000 + i,
                i % 2 ? "true" : "false", i % 28 + 1);
        snprintf(w + o, cap - o, "]}");
        assert_int_equal(fs_commit(&ae, w), 0);
        free(w);
    }
}

static const char *cell(const char *table, const char *id, const char *col)
{
    return sql_scalar(&ae, "SELECT IFNULL(%s,'NULL') FROM %s WHERE id='%s'", col, table, id);
}

/* `firesync resync`, waiting for the run; its output must say ok. */
static void resync_ok(char *out, size_t n)
{
    int rc = run_firesync(&ae, out, n, "resync", "--config", ae.config, NULL);
    if (rc != 0 || !strstr(out, ": ok: "))
        fail_msg("firesync resync exited %d: %s", rc, out);
}

static void test_rows_changed_deleted_and_added_by_hand_are_put_right(void **state)
{
    char out[4096];
    long before;
    (void)state;

    fresh("rs_hand", STAFF, NULL);
    put_many("staff", 30, "N");
    start_agent();
    assert_true(sql_wait(&ae, "30", WAIT_MS, "SELECT COUNT(*) FROM staff"));
    assert_int_equal(sql_exec(&ae, "UPDATE staff SET name='by hand' WHERE id='s003'"), 0);
    assert_int_equal(sql_exec(&ae, "UPDATE staff SET salary=1.25, score=2 WHERE id='s005'"), 0);
    assert_int_equal(sql_exec(&ae, "DELETE FROM staff WHERE id='s007'"), 0);
    assert_int_equal(sql_exec(&ae, "INSERT INTO staff (id, name, synced_at) VALUES "
                                   "('s007x', 'nobody', NOW())"),
                     0);
    assert_int_equal(sql_exec(&ae, "UPDATE staff SET deleted_at=NOW() WHERE id='s009'"), 0);
    assert_int_equal(sql_exec(&ae, "UPDATE staff SET tags='{\"a\":[]}', born='2000-01-01', "
                                   "hired='2000-01-01 00:00:00' WHERE id='s011'"),
                     0);
    assert_int_equal(sql_exec(&ae, "UPDATE staff SET active=1-active, age=NULL WHERE id='s013'"),
                     0);
    resync_ok(out, sizeof(out));
    assert_non_null(strstr(out, "30 read"));
    assert_non_null(strstr(out, "7 differences, 7 fixed, 1 soft-deleted"));
    assert_string_equal(cell("staff", "s003", "name"), "N3");
    assert_string_equal(cell("staff", "s005", "salary"), "1005.50");
    assert_string_equal(cell("staff", "s005", "score"), "0.30000000000000004");
    assert_string_equal(cell("staff", "s007", "name"), "N7");
    assert_string_equal(cell("staff", "s007x", "deleted_at IS NOT NULL"), "1");
    assert_string_equal(cell("staff", "s009", "deleted_at IS NULL"), "1");
    assert_string_equal(cell("staff", "s011", "born"), "1990-02-12");
    assert_string_equal(cell("staff", "s011", "hired"), "2026-01-05 09:00:00.123456");
    assert_string_equal(cell("staff", "s011", "JSON_EXTRACT(tags, '$.a[1]')"), "\"é\"");
    assert_string_equal(cell("staff", "s013", "active"), "1");
    assert_string_equal(cell("staff", "s013", "age"), "13");
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM staff WHERE deleted_at IS NULL"),
                        "30");
    /* each fix is a change of source resync, with the value before */
    assert_string_equal(sql_scalar(&ae, "SELECT GROUP_CONCAT(op ORDER BY doc_key) FROM "
                                        "firesync_changes WHERE source='resync'"),
                        "UPDATE,UPDATE,CREATE,DELETE,CREATE,UPDATE,UPDATE");
    assert_string_equal(sql_scalar(&ae,
                                   "SELECT JSON_EXTRACT(changed, '$.name.old') FROM "
                                   "firesync_changes WHERE source='resync' AND doc_key='s003'"),
                        "\"by hand\"");
    /* right after: nothing to do, and MariaDB's own counters saw no row change */
    before = rows_changed(&ae, "staff") + rows_changed(&ae, "firesync_changes");
    resync_ok(out, sizeof(out));
    assert_non_null(strstr(out, "0 differences, 0 fixed, 0 soft-deleted"));
    assert_int_equal(rows_changed(&ae, "staff") + rows_changed(&ae, "firesync_changes"), before);
    /* and the status shows the last result */
    assert_int_equal(
        run_firesync(&ae, out, sizeof(out), "status", "--status-file", ae.status, NULL), 0);
    assert_non_null(strstr(out, "ok: 30 read (30 billed), 0 differences"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void
test_documents_deleted_while_the_agent_was_stopped_are_soft_deleted_after_start(void **state)
{
    char out[4096];
    (void)state;

    fresh("rs_away", STAFF, NULL);
    put_many("staff", 20, "N");
    start_agent();
    assert_true(sql_wait(&ae, "20", WAIT_MS, "SELECT COUNT(*) FROM staff"));
    resync_ok(out, sizeof(out));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    for (int i = 0; i < 20; i += 4) {
        char id[16];
        snprintf(id, sizeof(id), "s%03d", i);
        assert_int_equal(fs_delete(&ae, "staff", id), 0);
    }
    /* the last resync ended seven hours ago: one is due (resync.interval is 6h) */
    assert_int_equal(sql_exec(&ae, "UPDATE firesync_checkpoint SET resync_finished_at = "
                                   "NOW(6) - INTERVAL 7 HOUR"),
                     0);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(
        sql_wait(&ae, "5", WAIT_MS, "SELECT COUNT(*) FROM staff WHERE deleted_at IS NOT NULL"));
    assert_true(sql_wait(&ae, "1", WAIT_MS,
                         "SELECT resync_finished_at > NOW(6) - INTERVAL 1 MINUTE AND "
                         "resync_result LIKE 'ok:%%' FROM firesync_checkpoint"));
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM staff WHERE deleted_at IS NULL"),
                        "15");
    assert_string_equal(sql_scalar(&ae, "SELECT resync_generation FROM firesync_checkpoint"), "2");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_documents_updated_during_a_resync_keep_their_newest_values(void **state)
{
    char out[4096];
    (void)state;

    fresh("rs_during", STAFF, SLOW_PAGES);
    put_many("staff", 60, "N");
    start_agent();
    assert_true(sql_wait(&ae, "60", WAIT_MS, "SELECT COUNT(*) FROM staff"));
    assert_int_equal(
        run_firesync(&ae, out, sizeof(out), "resync", "--no-wait", "--config", ae.config, NULL), 0);
    /* the snapshot is taken: change documents before and after the cursor */
    assert_true(
        sql_wait(&ae, "1", WAIT_MS, "SELECT resync_cursor IS NOT NULL FROM firesync_checkpoint"));
    assert_int_equal(fs_put(&ae, "staff", "s001", "{\"name\":{\"stringValue\":\"newer 1\"}}"), 0);
    assert_int_equal(fs_put(&ae, "staff", "s058", "{\"name\":{\"stringValue\":\"newer 58\"}}"), 0);
    assert_int_equal(fs_delete(&ae, "staff", "s057"), 0);
    assert_int_equal(fs_put(&ae, "staff", "s999", "{\"name\":{\"stringValue\":\"new\"}}"), 0);
    assert_int_equal(fs_put(&ae, "staff", "s030a", "{\"name\":{\"stringValue\":\"new\"}}"), 0);
    /* wait for the run to end (the command waits for the one under way) */
    resync_ok(out, sizeof(out));
    assert_true(sql_wait(&ae, "newer 1", WAIT_MS, "SELECT name FROM staff WHERE id='s001'"));
    assert_string_equal(cell("staff", "s001", "age"), "NULL"); /* the whole newer version */
    assert_string_equal(cell("staff", "s058", "name"), "newer 58");
    assert_string_equal(cell("staff", "s057", "deleted_at IS NOT NULL"), "1");
    assert_string_equal(cell("staff", "s999", "deleted_at IS NULL"), "1");
    assert_string_equal(cell("staff", "s030a", "deleted_at IS NULL"), "1");
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM staff WHERE deleted_at IS NULL"),
                        "61");
    /* a later resync finds nothing left to do */
    resync_ok(out, sizeof(out));
    assert_non_null(strstr(out, "0 differences"));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_a_resync_killed_halfway_continues_at_the_next_start(void **state)
{
    char out[4096];
    long read;
    const char *res;
    (void)state;

    fresh("rs_kill", STAFF, SLOW_PAGES);
    put_many("staff", 60, "N");
    start_agent();
    assert_true(sql_wait(&ae, "60", WAIT_MS, "SELECT COUNT(*) FROM staff"));
    assert_int_equal(sql_exec(&ae, "UPDATE staff SET name='by hand' WHERE id IN "
                                   "('s002','s057')"),
                     0);
    assert_int_equal(
        run_firesync(&ae, out, sizeof(out), "resync", "--no-wait", "--config", ae.config, NULL), 0);
    /* a few pages in: kill it */
    assert_true(sql_wait(&ae, "1", WAIT_MS,
                         "SELECT resync_cursor >= 'staff/s015' FROM firesync_checkpoint"));
    assert_int_equal(agent_stop(&ae, SIGKILL, 5000), 128 + SIGKILL);
    assert_string_equal(sql_scalar(&ae, "SELECT resync_finished_at IS NULL AND resync_cursor < "
                                        "'staff/s050' FROM firesync_checkpoint"),
                        "1");
    assert_string_equal(cell("staff", "s002", "name"), "N2");      /* its page committed */
    assert_string_equal(cell("staff", "s057", "name"), "by hand"); /* not reached yet */
    /* the next start continues the same run after its cursor */
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(sql_wait(&ae, "1", WAIT_MS,
                         "SELECT resync_cursor IS NULL AND resync_finished_at IS NOT NULL FROM "
                         "firesync_checkpoint"));
    assert_string_equal(cell("staff", "s057", "name"), "N57");
    assert_string_equal(sql_scalar(&ae, "SELECT resync_generation FROM firesync_checkpoint"), "1");
    res = sql_scalar(&ae, "SELECT resync_result FROM firesync_checkpoint");
    assert_int_equal(sscanf(res, "ok: %ld read", &read), 1);
    assert_true(read > 0 && read < 60); /* only what was left after the cursor */
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM staff WHERE deleted_at IS NULL"),
                        "60");
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

#define GROUP                                                                                      \
    "[[collections]]\npath = \"g/*/items\"\ntable = \"items\"\n"                                   \
    "[collections.columns]\n"                                                                      \
    "name = { field = \"name\", type = \"VARCHAR(100)\" }\n"

static void test_paths_sorting_unlike_firestore_are_neither_missed_nor_wrongly_deleted(void **state)
{
    /* URL-encoded: "a+b", "a b", "x+1" */
    static const char *const parents[] = {"a", "a%2Bb", "a-b", "a.b", "a%20b", "b"};
    static const char *const ids[] = {"x", "x-1", "x%2B1", "__id7__", "__id10__", "y"};
    char out[4096], coll[64];
    long before;
    (void)state;

    fresh("rs_order", GROUP, "\n[resync]\npage_size = 2\n");
    for (size_t p = 0; p < 6; p++)
        for (size_t i = 0; i < 6; i++) {
            snprintf(coll, sizeof(coll), "g/%s/items", parents[p]);
            assert_int_equal(fs_put(&ae, coll, ids[i], "{\"name\":{\"stringValue\":\"v\"}}"), 0);
        }
    start_agent();
    assert_true(sql_wait(&ae, "36", WAIT_MS, "SELECT COUNT(*) FROM items"));
    /* a row for a document that does not exist, between the others in both orders */
    assert_int_equal(sql_exec(&ae, "INSERT INTO items (path, name, synced_at) VALUES "
                                   "('g/a+b/items/x0', 'stray', NOW())"),
                     0);
    assert_int_equal(sql_exec(&ae, "UPDATE items SET name='by hand' WHERE path IN "
                                   "('g/a/items/y', 'g/a b/items/__id10__')"),
                     0);
    resync_ok(out, sizeof(out));
    assert_non_null(strstr(out, "3 differences, 3 fixed, 1 soft-deleted"));
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM items WHERE deleted_at IS NULL "
                                        "AND name='v'"),
                        "36");
    before = rows_changed(&ae, "items");
    resync_ok(out, sizeof(out));
    assert_non_null(strstr(out, "0 differences, 0 fixed, 0 soft-deleted"));
    assert_int_equal(rows_changed(&ae, "items"), before);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

static void test_resync_of_an_unknown_collection_is_refused(void **state)
{
    char out[4096];
    (void)state;

    fresh("rs_unknown", STAFF, NULL);
    start_agent();
    assert_int_equal(run_firesync(&ae, out, sizeof(out), "resync", "--collection", "nope",
                                  "--config", ae.config, NULL),
                     1);
    assert_non_null(strstr(out, "no collection \"nope\""));
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
}

/* ---- a delete the stream never reported (the fake Firestore) ------------------------------- */

#define FAKE_ROOT "projects/p-rs-missed/databases/(default)/documents"
#define FAKE_DOC(id, secs)                                                                         \
    "{\"name\":\"" FAKE_ROOT "/employees/" id "\",\"fields\":{\"name\":{\"stringValue\":\"" id     \
    "\"}},\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":\"2026-01-01T00:00:" secs "Z\"}"
#define FAKE_RQ(id, secs)                                                                          \
    "{\"document\":" FAKE_DOC(id, secs) ",\"readTime\":\"2026-01-01T00:02:00Z\"}"

/* Points the test's config at the fake instead of the emulator. */
static void use_fake(fake_fs *fs)
{
    char text[8192], *at, *end;
    FILE *f = fopen(ae.config, "r");
    size_t n;

    assert_non_null(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    at = strstr(text, "emulator_host = \"127.0.0.1:");
    assert_non_null(at);
    end = strchr(at + 28, '"');
    f = fopen(ae.config, "w");
    assert_non_null(f);
    fprintf(f, "%.*semulator_host = \"127.0.0.1:%d%s", (int)(at - text), text, fake_fs_port(fs),
            end);
    fclose(f);
}

static void test_a_delete_the_stream_never_reported_is_found_by_the_resync(void **state)
{
    static const char *const ids[] = {"d1", "d2", "d3", "d4", "d5"};
    fake_fs *fs = fake_fs_start();
    char out[4096], *body, *auth;
    (void)state;

    assert_non_null(fs);
    assert_int_equal(agent_env_init(&ae, "rs_missed",
                                    "[[collections]]\npath = \"employees\"\ntable = \"employees\"\n"
                                    "[collections.columns]\n"
                                    "name = { field = \"name\", type = \"VARCHAR(100)\" }\n",
                                    NULL),
                     0);
    use_fake(fs);
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    assert_true(fake_fs_wait(fs, FAKE_FS_MAPS, 1, WAIT_MS)); /* the target was added */
    /* the stream loads five documents and is consistent; it never says d3 went away */
    fake_fs_push(fs, "[{\"targetChange\":{\"targetChangeType\":\"ADD\",\"targetIds\":[2]}}]");
    for (size_t i = 0; i < 5; i++)
        fake_fs_pushf(fs,
                      "[{\"documentChange\":{\"document\":{\"name\":\"" FAKE_ROOT
                      "/employees/%s\",\"fields\":{\"name\":{\"stringValue\":\"%s\"}},"
                      "\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":"
                      "\"2026-01-01T00:00:0%zuZ\"},\"targetIds\":[2]}}]",
                      ids[i], ids[i], i + 1);
    fake_fs_push(fs, "[{\"targetChange\":{\"targetChangeType\":\"CURRENT\",\"targetIds\":[2],"
                     "\"resumeToken\":\"VDE=\",\"readTime\":\"2026-01-01T00:01:00Z\"}}]");
    fake_fs_push(fs, "[{\"targetChange\":{\"resumeToken\":\"VDI=\",\"readTime\":"
                     "\"2026-01-01T00:01:00Z\"}}]");
    assert_true(
        sql_wait(&ae, "5", WAIT_MS, "SELECT COUNT(*) FROM employees WHERE deleted_at IS NULL"));
    /* Firestore's snapshot no longer has d3 */
    fake_fs_push_runquery(fs, "[" FAKE_RQ("d1", "01") "," FAKE_RQ("d2", "02") "," FAKE_RQ(
                                  "d4", "04") "," FAKE_RQ("d5", "05") "]");
    resync_ok(out, sizeof(out));
    assert_non_null(strstr(out, "4 read (4 billed), 1 differences, 1 fixed, 1 soft-deleted"));
    assert_string_equal(cell("employees", "d3", "deleted_at"), "2026-01-01 00:02:00.000000");
    assert_string_equal(sql_scalar(&ae, "SELECT COUNT(*) FROM employees WHERE deleted_at IS NULL"),
                        "4");
    body = fake_fs_last_body(fs, FAKE_FS_REQ_RUNQUERY);
    assert_non_null(strstr(body, "\"orderBy\":[{\"field\":{\"fieldPath\":\"__name__\"}"));
    auth = fake_fs_last_header(fs, FAKE_FS_REQ_RUNQUERY, "Authorization");
    assert_non_null(auth);
    free(body);
    free(auth);
    assert_int_equal(agent_stop(&ae, SIGTERM, 10000), 0);
    fake_fs_free(fs);
}

#define T(f) cmocka_unit_test_teardown(f, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_rows_changed_deleted_and_added_by_hand_are_put_right),
        T(test_documents_deleted_while_the_agent_was_stopped_are_soft_deleted_after_start),
        T(test_documents_updated_during_a_resync_keep_their_newest_values),
        T(test_a_resync_killed_halfway_continues_at_the_next_start),
        T(test_paths_sorting_unlike_firestore_are_neither_missed_nor_wrongly_deleted),
        T(test_resync_of_an_unknown_collection_is_refused),
        T(test_a_delete_the_stream_never_reported_is_found_by_the_resync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
