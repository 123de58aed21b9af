/*
 * lag.h - how long the agent itself takes per change: from the moment an event is received
 * (decoded from the stream, or a simulated change accepted) to the COMMIT that makes its row
 * durable in MySQL (prefix lag_).
 *
 * Three layers, each usable alone:
 *
 *   struct lag_hist    a tiny log-linear histogram of microseconds (HdrHistogram's idea in 1.8
 *                      KiB): exact below 16 µs, then 16 buckets per power of two up to 2^32 µs
 *                      (71 minutes; larger values land in the last bucket). A quantile is
 *                      reported as the top of its bucket, capped by the largest value recorded:
 *                      never under the true value, and at most 1/16 (6.25 %) over it.
 *   struct lag_window  the last minute: six histograms of 10 s each, keyed by the wall clock; a
 *                      summary merges the current slot and the five before it, so it covers
 *                      between 50 and 60 s of events. Idle collections cost nothing.
 *   struct lag_tracker the bookkeeping between the loop and the sink thread. The sink's queue is
 *                      in order and counts what it has pushed and committed (sink_stats), so an
 *                      event is durable once `committed` reaches its push number. The loop notes
 *                      each pushed event (lag_track_pushed); the sink thread notes each commit
 *                      with its time (lag_track_committed, the only call safe off the loop);
 *                      lag_track_drain, on the loop, matches the two and records
 *                      commit time - receive time into the event's collection window.
 *
 * Ownership: a tracker owns its windows, its queue of pending events and its commit log;
 * lag_tracker_free accepts NULL. Histograms and windows are plain values.
 */
#ifndef FIRESYNC_LAG_H
#define FIRESYNC_LAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAG_SUB_BITS 4
#define LAG_MAX_EXP 32 /* values from 2^32 µs on share the last bucket */
#define LAG_BUCKETS ((1 << LAG_SUB_BITS) * (LAG_MAX_EXP - LAG_SUB_BITS + 1))
#define LAG_SLOTS 6
#define LAG_SLOT_US (10 * INT64_C(1000000))
#define LAG_WINDOW_S (LAG_SLOTS * LAG_SLOT_US / 1000000)

struct lag_hist {
    uint64_t count;
    int64_t max_us;
    uint32_t bucket[LAG_BUCKETS];
};

/* Quantiles of one collection over its window; 0 everywhere when it had no events. */
struct lag_summary {
    uint64_t events;
    int64_t p50_us, p95_us, p99_us, max_us;
};

struct lag_window {
    int64_t slot_epoch[LAG_SLOTS]; /* which 10 s period each slot holds (wall clock / 10 s) */
    struct lag_hist slot[LAG_SLOTS];
};

void lag_hist_clear(struct lag_hist *h);
/* Records one latency (negative values, from a clock step, count as 0). */
void lag_hist_add(struct lag_hist *h, int64_t us);
/* Adds src's counts into dst. */
void lag_hist_merge(struct lag_hist *dst, const struct lag_hist *src);
/* The q-quantile (0 < q <= 1) in µs: the top of the bucket holding the ceil(q * count)-th
 * smallest value, capped by the largest value; 0 when empty. */
int64_t lag_hist_quantile(const struct lag_hist *h, double q);

void lag_window_init(struct lag_window *w);
/* Records a latency observed at wall-clock time now_us. */
void lag_window_add(struct lag_window *w, int64_t now_us, int64_t us);
/* The summary of the events recorded in the last 50-60 s before now_us. */
void lag_window_summary(const struct lag_window *w, int64_t now_us, struct lag_summary *out);

struct lag_tracker;

/* A tracker for ncoll collections. */
struct lag_tracker *lag_tracker_new(size_t ncoll);
void lag_tracker_free(struct lag_tracker *t);
/* Loop: the event of collection coll, received at recv_us, was pushed to the sink as its
 * seq-th event (sink_stats' `pushed` right after the push). Calls come in seq order. */
void lag_track_pushed(struct lag_tracker *t, int coll, uint64_t seq, int64_t recv_us);
/* Any thread (the sink's, after a commit): the first `committed` events pushed were durable at
 * now_us. Cheap: one mutex and a fixed log; when the loop falls 256 commits behind, the newest
 * entry is overwritten, which can only make the latencies it covers look longer. */
void lag_track_committed(struct lag_tracker *t, uint64_t committed, int64_t now_us);
/* Loop: records the latency of every pending event that a noted commit covers. */
void lag_track_drain(struct lag_tracker *t);
/* Loop: collection coll's summary at now_us, its latency in the last drained commit that held
 * one of its events (0 if none yet), and its totals since start (events, sum of latencies). */
void lag_track_get(const struct lag_tracker *t, int coll, int64_t now_us, struct lag_summary *out,
                   int64_t *last_us, uint64_t *total_events, double *total_s);

#endif
