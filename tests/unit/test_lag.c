/*
 * test_lag.c - the agent's own latency figures (agent/lag.c): the histogram's quantiles against
 * exact ones computed from sorted values (never under, at most 1/16 over), the one-minute
 * window forgetting old events, and the tracker matching pushed events with the sink's commits,
 * including a commit log that overflows and a sink thread noting commits while the loop pushes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/lag.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define S 1000000LL
#define T0 (1767225600LL * S) /* a wall-clock time on a 10 s boundary */

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The exact q-quantile: the ceil(q * n)-th smallest value. */
static int64_t exact(const int64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)(q * (double)n);
    if ((double)rank < q * (double)n)
        rank++;
    return sorted[(rank ? rank : 1) - 1];
}

static void test_values_below_sixteen_microseconds_are_exact(void **state)
{
    struct lag_hist h;
    (void)state;
    for (int64_t v = 0; v < 16; v++) {
        lag_hist_clear(&h);
        lag_hist_add(&h, v);
        lag_hist_add(&h, 1000000);
        assert_int_equal(lag_hist_quantile(&h, 0.5), v);
    }
}

static void test_empty_histogram_reports_zero(void **state)
{
    struct lag_hist h;
    (void)state;
    lag_hist_clear(&h);
    assert_int_equal(lag_hist_quantile(&h, 0.99), 0);
    assert_int_equal(h.count, 0);
}

static void test_single_value_is_reported_exactly_through_the_maximum(void **state)
{
    struct lag_hist h;
    (void)state;
    lag_hist_clear(&h);
    lag_hist_add(&h, 12345);
    assert_int_equal(lag_hist_quantile(&h, 0.5), 12345);
    assert_int_equal(lag_hist_quantile(&h, 0.99), 12345);
    assert_int_equal(lag_hist_quantile(&h, 1.0), 12345);
}

static void test_quantiles_are_never_under_the_true_value_and_at_most_a_sixteenth_over(void **state)
{
    static int64_t v[20000];
    const double qs[] = {0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0};
    struct lag_hist h;
    (void)state;

    srand(7);
    for (int round = 0; round < 5; round++) {
        size_t n = (size_t)(1 + rand() % 20000);
        lag_hist_clear(&h);
        for (size_t i = 0; i < n; i++) {
            /* spread over six decades: microseconds to seconds */
            int64_t scale = (int64_t)1 << (rand() % 31);
            v[i] = (int64_t)rand() % (scale + 1);
            lag_hist_add(&h, v[i]);
        }
        qsort(v, n, sizeof(v[0]), cmp64);
        assert_int_equal(h.count, n);
        assert_int_equal(h.max_us, v[n - 1]);
        for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
            int64_t want = exact(v, n, qs[k]), got = lag_hist_quantile(&h, qs[k]);
            if (got < want || (double)got > (double)want * (1.0 + 1.0 / 16) + 1e-9)
                fail_msg("round %d, n %zu, q %g: got %lld, exact %lld", round, n, qs[k],
                         (long long)got, (long long)want);
        }
    }
}

static void test_negative_values_count_as_zero_and_huge_ones_land_in_the_last_bucket(void **state)
{
    struct lag_hist h;
    (void)state;
    lag_hist_clear(&h);
    lag_hist_add(&h, -500);
    assert_int_equal(lag_hist_quantile(&h, 1.0), 0);
    lag_hist_add(&h, (int64_t)1 << 40); /* 12.7 days */
    lag_hist_add(&h, ((int64_t)1 << 40) + 1);
    assert_int_equal(h.bucket[LAG_BUCKETS - 1], 2);
    assert_int_equal(lag_hist_quantile(&h, 1.0), ((int64_t)1 << 40) + 1);
}

static void test_merge_adds_counts_and_keeps_the_larger_maximum(void **state)
{
    struct lag_hist a, b;
    (void)state;
    lag_hist_clear(&a);
    lag_hist_clear(&b);
    for (int i = 0; i < 99; i++)
        lag_hist_add(&a, 1000);
    lag_hist_add(&b, 50000);
    lag_hist_merge(&a, &b);
    assert_int_equal(a.count, 100);
    assert_int_equal(a.max_us, 50000);
    assert_int_equal(lag_hist_quantile(&a, 0.99), 1023); /* the top of 1000's bucket */
    assert_int_equal(lag_hist_quantile(&a, 1.0), 50000);
}

static void test_window_covers_the_last_minute_and_forgets_what_is_older(void **state)
{
    struct lag_window w;
    struct lag_summary s;
    (void)state;

    lag_window_init(&w);
    lag_window_summary(&w, T0, &s);
    assert_int_equal(s.events, 0);
    lag_window_add(&w, T0 + 1 * S, 2000);
    lag_window_add(&w, T0 + 25 * S, 4000);
    lag_window_summary(&w, T0 + 30 * S, &s);
    assert_int_equal(s.events, 2);
    assert_int_equal(s.max_us, 4000);
    /* 59 s after the first event, it is still in the window (its slot began 59 s ago) */
    lag_window_summary(&w, T0 + 59 * S, &s);
    assert_int_equal(s.events, 2);
    /* at 60 s its slot has left the window; the second event stays */
    lag_window_summary(&w, T0 + 60 * S, &s);
    assert_int_equal(s.events, 1);
    assert_int_equal(s.p50_us, 4000);
    /* a slot reused a minute later starts empty */
    lag_window_add(&w, T0 + 61 * S, 7000);
    lag_window_summary(&w, T0 + 62 * S, &s);
    assert_int_equal(s.events, 2);
    assert_int_equal(s.max_us, 7000);
    lag_window_summary(&w, T0 + 200 * S, &s);
    assert_int_equal(s.events, 0);
    assert_int_equal(s.p99_us, 0);
}

/* Collection coll's summary at now; its last batch's latency into *last when not NULL. */
static struct lag_summary summary(struct lag_tracker *t, int coll, int64_t now, int64_t *last)
{
    struct lag_summary s;
    int64_t l;
    uint64_t total;
    double sum;
    lag_track_get(t, coll, now, &s, &l, &total, &sum);
    if (last)
        *last = l;
    return s;
}

static void test_tracker_times_each_event_from_receipt_to_the_commit_that_covers_it(void **state)
{
    struct lag_tracker *t = lag_tracker_new(2);
    struct lag_summary s;
    int64_t last;
    uint64_t total;
    double sum;
    (void)state;

    /* sink events 1 and 3 are not timed (a checkpoint, a resync page): numbers skip them */
    lag_track_pushed(t, 0, 2, T0 + 1000);
    lag_track_pushed(t, 1, 4, T0 + 2000);
    lag_track_pushed(t, 0, 5, T0 + 3000);
    lag_track_committed(t, 3, T0 + 11000); /* covers event 2 only */
    lag_track_drain(t);
    s = summary(t, 0, T0 + 20000, &last);
    assert_int_equal(s.events, 1);
    assert_int_equal(s.p99_us, 10000);
    assert_int_equal(last, 10000);
    s = summary(t, 1, T0 + 20000, &last);
    assert_int_equal(s.events, 0);
    assert_int_equal(last, 0);
    lag_track_committed(t, 5, T0 + 33000);
    lag_track_drain(t);
    s = summary(t, 1, T0 + 40000, &last);
    assert_int_equal(s.events, 1);
    assert_int_equal(s.max_us, 31000);
    lag_track_get(t, 0, T0 + 40000, &s, &last, &total, &sum);
    assert_int_equal(s.events, 2);
    assert_int_equal(s.max_us, 30000);
    assert_int_equal(last, 30000); /* the last commit that held one of its events */
    assert_int_equal(total, 2);
    assert_true(sum > 0.039999 && sum < 0.040001);
    lag_tracker_free(t);
}

static void test_a_commit_noted_again_or_without_progress_changes_nothing(void **state)
{
    struct lag_tracker *t = lag_tracker_new(1);
    struct lag_summary s;
    (void)state;

    lag_track_pushed(t, 0, 1, T0);
    lag_track_committed(t, 1, T0 + 5000);
    lag_track_committed(t, 1, T0 + 9000); /* a health change after it: same count */
    lag_track_committed(t, 0, T0 + 9500);
    lag_track_drain(t);
    lag_track_drain(t);
    s = summary(t, 0, T0 + 10000, NULL);
    assert_int_equal(s.events, 1);
    assert_int_equal(s.max_us, 5000);
    lag_tracker_free(t);
}

static void test_a_full_commit_log_only_makes_latencies_longer(void **state)
{
    struct lag_tracker *t = lag_tracker_new(1);
    struct lag_summary s;
    (void)state;

    /* 1000 events, each committed alone 1 ms after its receipt, the loop draining only once */
    for (uint64_t i = 1; i <= 1000; i++) {
        lag_track_pushed(t, 0, i, T0 + (int64_t)i * 10000);
        lag_track_committed(t, i, T0 + (int64_t)i * 10000 + 1000);
    }
    lag_track_drain(t);
    s = summary(t, 0, T0 + 20 * S, NULL);
    assert_int_equal(s.events, 1000);
    assert_true(s.p50_us >= 1000); /* nothing looks shorter than it was */
    /* the log kept the first 255 commits; the rest share the newest one's time: event 256,
     * received at 2.56 s, counts as committed with event 1000 at 10.001 s */
    assert_int_equal(s.max_us, (1000 - 256) * 10000 + 1000);
    lag_tracker_free(t);
}

static void test_events_go_to_their_own_collection_and_unknown_ones_are_ignored(void **state)
{
    struct lag_tracker *t = lag_tracker_new(3);
    struct lag_summary s;
    (void)state;

    lag_track_pushed(t, -1, 1, T0);
    lag_track_pushed(t, 3, 2, T0);
    for (uint64_t i = 3; i < 3 + 3000; i++) /* past the ring's first sizes */
        lag_track_pushed(t, (int)(i % 3), i, T0 + (int64_t)(i % 3) * 1000);
    lag_track_committed(t, 3002, T0 + 10000);
    lag_track_drain(t);
    for (int c = 0; c < 3; c++) {
        s = summary(t, c, T0 + S, NULL);
        assert_int_equal(s.events, 1000);
        assert_int_equal(s.max_us, 10000 - c * 1000);
    }
    s = summary(t, 3, T0 + S, NULL);
    assert_int_equal(s.events, 0);
    lag_tracker_free(t);
}

struct committer {
    struct lag_tracker *t;
    uint64_t upto;
};

static void *commit_thread(void *arg)
{
    struct committer *c = arg;
    for (uint64_t i = 1; i <= c->upto; i++)
        lag_track_committed(c->t, i, T0 + 5 * S);
    return NULL;
}

static void test_commits_noted_by_another_thread_while_the_loop_pushes_all_arrive(void **state)
{
    struct lag_tracker *t = lag_tracker_new(1);
    struct committer c = {t, 20000};
    struct lag_summary s;
    pthread_t th;
    (void)state;

    /* the loop pushes every event before the sink can commit it (as sink_push orders them) */
    for (uint64_t i = 1; i <= c.upto; i++)
        lag_track_pushed(t, 0, i, T0);
    assert_int_equal(pthread_create(&th, NULL, commit_thread, &c), 0);
    for (int k = 0; k < 1000; k++)
        lag_track_drain(t);
    pthread_join(th, NULL);
    lag_track_drain(t);
    s = summary(t, 0, T0 + 6 * S, NULL);
    assert_int_equal(s.events, c.upto);
    assert_int_equal(s.max_us, 5 * S);
    lag_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_below_sixteen_microseconds_are_exact),
        cmocka_unit_test(test_empty_histogram_reports_zero),
        cmocka_unit_test(test_single_value_is_reported_exactly_through_the_maximum),
        cmocka_unit_test(test_quantiles_are_never_under_the_true_value_and_at_most_a_sixteenth_over),
        cmocka_unit_test(test_negative_values_count_as_zero_and_huge_ones_land_in_the_last_bucket),
        cmocka_unit_test(test_merge_adds_counts_and_keeps_the_larger_maximum),
        cmocka_unit_test(test_window_covers_the_last_minute_and_forgets_what_is_older),
        cmocka_unit_test(test_tracker_times_each_event_from_receipt_to_the_commit_that_covers_it),
        cmocka_unit_test(test_a_commit_noted_again_or_without_progress_changes_nothing),
        cmocka_unit_test(test_a_full_commit_log_only_makes_latencies_longer),
        cmocka_unit_test(test_events_go_to_their_own_collection_and_unknown_ones_are_ignored),
        cmocka_unit_test(test_commits_noted_by_another_thread_while_the_loop_pushes_all_arrive),
    };
    return cmocka_run_group_tests_name("lag", tests, NULL, NULL);
}
