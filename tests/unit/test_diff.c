/*
 * test_diff.c - the field-level diff and its applied index: creates, changed-column masks,
 * skips of applied and stale versions, dead letters, deletes and tombstones, RESET sweeps, and
 * the index rebuilt from rows read back from MySQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "diff/diff.h"
#include "diff/index.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB "projects/p/databases/(default)"
#define NAME(id) DB "/documents/employees/" id

static struct cfg *cfg;
static struct diff *df;
static struct sink_event *evs[64];
static int nev;

static int collect(void *ud, struct sink_event *ev)
{
    (void)ud;
    assert_true(nev < 64);
    evs[nev++] = ev;
    return 0;
}

static void clear_events(void)
{
    for (int i = 0; i < nev; i++)
        sink_event_free(evs[i]);
    nev = 0;
}

static int setup_with(const char *extra)
{
    char src[1024];
    buf errs;
    fserr e = {0};

    snprintf(src, sizeof(src),
             "[firestore]\nproject_id=\"p\"\n[mysql]\ndatabase=\"d\"\n"
             "[[collections]]\npath=\"employees\"\ntable=\"employees\"\n%s\n"
             "[collections.columns]\n"
             "name = { field = \"name\", type = \"VARCHAR(20)\" }\n"
             "city = { field = \"address.city\", type = \"VARCHAR(20)\" }\n"
             "age = { field = \"age\", type = \"INT\" }\n"
             "[[collections]]\npath=\"users/*/orders\"\ntable=\"orders\"\n",
             extra);
    buf_init(&errs, 0);
    if (cfg_load_mem("t", src, strlen(src), &cfg, &errs, &e) != 0)
        fail_msg("%s", buf_str(&errs));
    buf_release(&errs);
    assert_int_equal(diff_new(cfg, DB, collect, NULL, &df, &e), 0);
    nev = 0;
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_with("extra_column = \"\"");
}

static int setup_extra(void **state)
{
    (void)state;
    return setup_with("");
}

static int teardown(void **state)
{
    (void)state;
    clear_events();
    diff_free(df);
    cfg_free(cfg);
    return 0;
}

/* Upserts a document built from a fields JSON at update time secs. */
static int upsert(const char *name, const char *fields, int secs)
{
    char json[1024];
    struct fsdoc doc;
    fserr e = {0};

    snprintf(json, sizeof(json),
             "{\"name\":\"%s\",\"fields\":%s,\"createTime\":\"2026-01-01T00:00:00Z\","
             "\"updateTime\":\"2026-01-01T00:00:%02dZ\"}",
             name, fields, secs);
    assert_int_equal(fsdoc_parse(json, strlen(json), &doc, &e), 0);
    return diff_upsert(df, 0, &doc, SINK_SRC_STREAM, &e);
}

static struct fs_time at(int secs)
{
    struct fs_time t = {1767225600 + secs, 0};
    return t;
}

#define ANA "{\"name\":{\"stringValue\":\"Ana\"},\"age\":{\"integerValue\":\"41\"}," \
            "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":\"Lisboa\"}}}}}"
#define ANA_PORTO "{\"name\":{\"stringValue\":\"Ana\"},\"age\":{\"integerValue\":\"41\"}," \
                  "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":\"Porto\"}}}}}"

static void test_first_version_is_a_create_of_every_column(void **state)
{
    (void)state;
    assert_int_equal(upsert(NAME("e1"), ANA, 1), 0);
    assert_int_equal(nev, 1);
    assert_int_equal(evs[0]->op, SINK_OP_UPSERT);
    assert_true(evs[0]->create);
    assert_int_equal(evs[0]->changed, 0x7);
    assert_string_equal(evs[0]->key, "e1");
    assert_string_equal(evs[0]->cells[0].p, "Ana");
    assert_string_equal(evs[0]->cells[1].p, "Lisboa");
    assert_string_equal(evs[0]->cells[2].p, "41");
    assert_int_equal(evs[0]->update_us, 1767225601000000LL);
    assert_int_equal(diff_live(df, 0), 1);
}

static void test_nested_field_change_marks_only_its_column(void **state)
{
    (void)state;
    upsert(NAME("e1"), ANA, 1);
    clear_events();
    assert_int_equal(upsert(NAME("e1"), ANA_PORTO, 2), 0);
    assert_int_equal(nev, 1);
    assert_false(evs[0]->create);
    assert_int_equal(evs[0]->changed, 0x2);
    assert_string_equal(evs[0]->cells[1].p, "Porto");
}

static void test_applied_version_is_seen_and_skipped(void **state)
{
    (void)state;
    upsert(NAME("e1"), ANA, 1);
    clear_events();
    assert_true(diff_seen(df, 0, NAME("e1"), strlen(NAME("e1")), at(1)));
    assert_false(diff_seen(df, 0, NAME("e1"), strlen(NAME("e1")), at(2)));
    assert_false(diff_seen(df, 0, NAME("e9"), strlen(NAME("e9")), at(1)));
    assert_int_equal(upsert(NAME("e1"), ANA, 1), 0); /* same version again */
    assert_int_equal(nev, 0);
}

static void test_older_version_never_overwrites_a_newer_one(void **state)
{
    (void)state;
    upsert(NAME("e1"), ANA_PORTO, 5);
    clear_events();
    assert_int_equal(upsert(NAME("e1"), ANA, 3), 0);
    assert_int_equal(nev, 0);
    assert_int_equal(diff_stats(df)->stale, 1);
}

static void test_removed_field_becomes_null(void **state)
{
    (void)state;
    upsert(NAME("e1"), ANA, 1);
    clear_events();
    upsert(NAME("e1"), "{\"name\":{\"stringValue\":\"Ana\"},\"age\":{\"integerValue\":\"41\"}}", 2);
    assert_int_equal(nev, 1);
    assert_int_equal(evs[0]->changed, 0x2);
    assert_int_equal(evs[0]->cells[1].kind, SINK_CELL_NULL);
}

static void test_unmapped_change_without_extra_column_writes_nothing(void **state)
{
    (void)state;
    upsert(NAME("e1"), ANA, 1);
    clear_events();
    upsert(NAME("e1"),
           "{\"name\":{\"stringValue\":\"Ana\"},\"age\":{\"integerValue\":\"41\"},\"x\":{\"nullValue\":null},"
           "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":\"Lisboa\"}}}}}",
           2);
    assert_int_equal(nev, 0);
    assert_true(diff_seen(df, 0, NAME("e1"), strlen(NAME("e1")), at(2)));
}

static void test_unmapped_change_with_extra_column_marks_the_extra_cell(void **state)
{
    (void)state;
    upsert(NAME("e1"), ANA, 1);
    assert_int_equal(evs[0]->ncells, 4);
    assert_int_equal(evs[0]->cells[3].kind, SINK_CELL_NULL);
    clear_events();
    upsert(NAME("e1"),
           "{\"name\":{\"stringValue\":\"Ana\"},\"age\":{\"integerValue\":\"41\"},\"x\":{\"integerValue\":\"7\"},"
           "\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":\"Lisboa\"}}}}}",
           2);
    assert_int_equal(nev, 1);
    assert_int_equal(evs[0]->changed, 0x8);
    assert_string_equal(evs[0]->cells[3].p, "{\"x\":7}");
}

static void test_value_that_does_not_fit_is_dead_lettered_and_the_stream_goes_on(void **state)
{
    (void)state;
    assert_int_equal(upsert(NAME("bad"), "{\"age\":{\"stringValue\":\"forty\"}}", 1), 0);
    assert_int_equal(nev, 1);
    assert_int_equal(evs[0]->op, SINK_OP_DEADLETTER);
    assert_string_equal(evs[0]->doc_name, NAME("bad"));
    assert_non_null(strstr(evs[0]->reason, "fields.age: string does not fit INT"));
    assert_non_null(strstr(evs[0]->raw, "forty"));
    /* not retried on every RESET: the version counts as seen */
    assert_true(diff_seen(df, 0, NAME("bad"), strlen(NAME("bad")), at(1)));
    upsert(NAME("ok"), ANA, 1);
    assert_int_equal(nev, 2);
    assert_int_equal(evs[1]->op, SINK_OP_UPSERT);
}

static void test_delete_leaves_a_tombstone_that_older_versions_cannot_undo(void **state)
{
    fserr e = {0};
    (void)state;
    upsert(NAME("e1"), ANA, 1);
    clear_events();
    assert_int_equal(diff_remove(df, 0, NAME("e1"), strlen(NAME("e1")), at(5), SINK_SRC_STREAM, &e), 0);
    assert_int_equal(nev, 1);
    assert_int_equal(evs[0]->op, SINK_OP_DELETE);
    assert_int_equal(evs[0]->delete_us, 1767225605000000LL);
    assert_int_equal(diff_live(df, 0), 0);
    clear_events();
    upsert(NAME("e1"), ANA_PORTO, 4); /* stale update after the delete */
    diff_remove(df, 0, NAME("e1"), strlen(NAME("e1")), at(6), SINK_SRC_STREAM, &e);
    assert_int_equal(nev, 0);
    upsert(NAME("e1"), ANA_PORTO, 7); /* a re-create */
    assert_int_equal(nev, 1);
    assert_true(evs[0]->create);
    assert_int_equal(evs[0]->changed, 0x7);
    assert_int_equal(diff_live(df, 0), 1);
}

static void test_delete_of_an_unknown_document_is_a_tombstone(void **state)
{
    fserr e = {0};
    (void)state;
    assert_int_equal(diff_remove(df, 0, NAME("ghost"), strlen(NAME("ghost")), at(5), SINK_SRC_STREAM, &e), 0);
    assert_int_equal(nev, 1);
    assert_int_equal(evs[0]->op, SINK_OP_DELETE);
    clear_events();
    upsert(NAME("ghost"), ANA, 3); /* older create arriving late */
    assert_int_equal(nev, 0);
}

static void test_reset_sweep_deletes_only_documents_not_re_sent(void **state)
{
    fserr e = {0};
    (void)state;
    upsert(NAME("e1"), ANA, 1);
    upsert(NAME("e2"), ANA, 1);
    upsert(NAME("e3"), ANA, 1);
    clear_events();
    diff_reset(df, 0);
    assert_true(diff_seen(df, 0, NAME("e1"), strlen(NAME("e1")), at(1)));
    upsert(NAME("e3"), ANA_PORTO, 2);
    clear_events();
    assert_int_equal(diff_sweep(df, 0, at(3), SINK_SRC_STREAM, &e), 0);
    assert_int_equal(nev, 1);
    assert_int_equal(evs[0]->op, SINK_OP_DELETE);
    assert_string_equal(evs[0]->key, "e2");
    assert_int_equal(diff_live(df, 0), 2);
}

static void test_sweep_spares_documents_changed_after_the_snapshot(void **state)
{
    fserr e = {0};
    (void)state;
    upsert(NAME("e1"), ANA, 9);
    clear_events();
    diff_reset(df, 0);
    assert_int_equal(diff_sweep(df, 0, at(5), SINK_SRC_RESYNC, &e), 0);
    assert_int_equal(nev, 0);
}

static void test_index_rebuilt_from_mysql_rows_skips_applied_versions(void **state)
{
    uint64_t hashes[3];
    struct sink_index_row row = {"e1", 2, 1767225601000000LL, 0, hashes, 3};
    struct sink_index_row dead = {"e2", 2, 1767225601000000LL, 1767225602000000LL, hashes, 3};
    (void)state;
    upsert(NAME("tmp"), ANA, 1); /* learn the hashes of ANA */
    memcpy(hashes, evs[0]->hashes, sizeof(hashes));
    clear_events();
    assert_int_equal(diff_load_row(df, 0, &row), 0);
    assert_int_equal(diff_load_row(df, 0, &dead), 0);
    assert_true(diff_seen(df, 0, NAME("e1"), strlen(NAME("e1")), at(1)));
    upsert(NAME("e1"), ANA_PORTO, 2);
    assert_int_equal(evs[0]->changed, 0x2); /* only city differs from the stored hashes */
    upsert(NAME("e2"), ANA, 1);             /* older than its tombstone */
    assert_int_equal(nev, 1);
    assert_int_equal(diff_tracked(df, 0), 3);
}

static void test_pattern_collections_are_keyed_by_path(void **state)
{
    const char *key;
    size_t kl;
    const char *n = DB "/documents/users/u1/orders/o1";
    (void)state;
    assert_int_equal(diff_key(df, 1, n, strlen(n), &key, &kl), 0);
    assert_int_equal(kl, strlen("users/u1/orders/o1"));
    assert_memory_equal(key, "users/u1/orders/o1", kl);
    assert_int_equal(diff_key(df, 0, NAME("e1"), strlen(NAME("e1")), &key, &kl), 0);
    assert_memory_equal(key, "e1", 2);
    assert_int_equal(diff_key(df, 0, "projects/x/databases/y/documents/a/b", 36, &key, &kl),
                     FS_EINVAL);
}

static void test_index_grows_past_its_first_table(void **state)
{
    char name[128];
    (void)state;
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), NAME("d%d"), i);
        upsert(name, ANA, 1);
        clear_events();
    }
    assert_int_equal(diff_live(df, 0), 5000);
    for (int i = 0; i < 5000; i += 499) {
        snprintf(name, sizeof(name), NAME("d%d"), i);
        assert_true(diff_seen(df, 0, name, strlen(name), at(1)));
    }
    assert_true(diff_index_memory(df) > 5000 * 40);
}

/* Key i of test_index_holds_keys_of_every_length: 0 to 40 bytes (the hash takes 8 at a time and
 * zero-fills the rest), and some ending in NUL bytes so that zero-filling alone would merge them
 * with shorter keys. */
static size_t index_key(int i, char *k)
{
    size_t len = (size_t)(i % 41);
    for (size_t j = 0; j < len; j++)
        k[j] = (char)('a' + (i / 41 + j * 7) % 26);
    if (len >= 2 && i % 3 == 0)
        k[len - 1] = '\0';
    if (len > 0 && i % 5 == 0)
        k[0] = (char)(i / 41 % 251);
    return len;
}

static int count_entry(void *ud, struct diff_entry *en)
{
    (*(int *)ud)++;
    assert_int_equal(en->ncells, 2);
    return 0;
}

static int stop_at_third(void *ud, struct diff_entry *en)
{
    (void)en;
    return ++*(int *)ud == 3 ? 42 : 0;
}

static void test_index_holds_keys_of_every_length(void **state)
{
    enum { N = 40000 };
    diff_index *ix = diff_index_new(2);
    struct diff_entry **ens = calloc(N, sizeof(*ens));
    char k[64];
    size_t len, distinct = 0;
    int seen = 0;
    (void)state;

    assert_non_null(ens);
    assert_null(diff_index_get(ix, "", 0));
    for (int i = 0; i < N; i++) {
        len = index_key(i, k);
        struct diff_entry *old = diff_index_get(ix, k, len);
        ens[i] = diff_index_put(ix, k, len);
        assert_non_null(ens[i]);
        if (old) {
            assert_ptr_equal(old, ens[i]); /* an earlier i made the same key */
            continue;
        }
        distinct++;
        assert_int_equal(ens[i]->keylen, len);
        assert_memory_equal(diff_entry_key(ens[i]), k, len);
        assert_true(ens[i]->time_us == 0 && ens[i]->hashes[0] == 0 && ens[i]->hashes[1] == 0);
        ens[i]->time_us = i;
        ens[i]->hashes[1] = (uint64_t)i * 3;
    }
    assert_int_equal(diff_index_count(ix), distinct);
    /* after several table doublings every key still finds its entry, with what was written */
    for (int i = 0; i < N; i++) {
        len = index_key(i, k);
        assert_ptr_equal(diff_index_get(ix, k, len), ens[i]);
        assert_ptr_equal(diff_index_put(ix, k, len), ens[i]);
    }
    assert_int_equal(diff_index_count(ix), distinct);
    k[0] = 'z';
    assert_null(diff_index_get(ix, k, 41)); /* longer than any key put */
    assert_int_equal(diff_index_each(ix, count_entry, &seen), 0);
    assert_int_equal(seen, (int)distinct);
    seen = 0;
    assert_int_equal(diff_index_each(ix, stop_at_third, &seen), 42);
    assert_int_equal(seen, 3);
    /* entries (16 + 16 + key bytes, rounded to 8) and 6-byte slots at a load of 3/8 or more */
    assert_true(diff_index_bytes(ix) < distinct * (32 + 48 + 16) + (2u << 20));
    assert_null(diff_index_put(ix, k, 65536));
    diff_index_free(ix);
    free(ens);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TX(f) cmocka_unit_test_setup_teardown(f, setup_extra, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_first_version_is_a_create_of_every_column),
        T(test_nested_field_change_marks_only_its_column),
        T(test_applied_version_is_seen_and_skipped),
        T(test_older_version_never_overwrites_a_newer_one),
        T(test_removed_field_becomes_null),
        T(test_unmapped_change_without_extra_column_writes_nothing),
        TX(test_unmapped_change_with_extra_column_marks_the_extra_cell),
        T(test_value_that_does_not_fit_is_dead_lettered_and_the_stream_goes_on),
        T(test_delete_leaves_a_tombstone_that_older_versions_cannot_undo),
        T(test_delete_of_an_unknown_document_is_a_tombstone),
        T(test_reset_sweep_deletes_only_documents_not_re_sent),
        T(test_sweep_spares_documents_changed_after_the_snapshot),
        T(test_index_rebuilt_from_mysql_rows_skips_applied_versions),
        T(test_pattern_collections_are_keyed_by_path),
        T(test_index_grows_past_its_first_table),
        cmocka_unit_test(test_index_holds_keys_of_every_length),
    };
    return cmocka_run_group_tests_name("diff", tests, NULL, NULL);
}
