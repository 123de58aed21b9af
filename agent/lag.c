/*
 * lag.c - the agent's own latency per change: a tiny log-linear histogram, a one-minute window
 * of them per collection, and the matching of pushed events with the sink's commits (see
 * lag.h). Owns, per tracker, the windows, the queue of events pushed and not yet known to be
 * committed (a growing ring, as long as the sink's own queue) and a fixed log of commits
 * written by the sink thread under a mutex. Everything else runs on the loop.
 */
#include "agent/lag.h"

#include "common/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SUB (1 << LAG_SUB_BITS)
#define COMMIT_LOG 256

/* ---- histogram ----------------------------------------------------------------------------- */

static int floor_log2(uint64_t v)
{
    return 63 - __builtin_clzll(v);
}

static size_t bucket_of(int64_t us)
{
    uint64_t v = us > 0 ? (uint64_t)us : 0;
    int e;

    if (v < SUB)
        return (size_t)v;
    e = floor_log2(v);
    if (e >= LAG_MAX_EXP)
        return LAG_BUCKETS - 1;
    return (size_t)(e - LAG_SUB_BITS + 1) * SUB + (size_t)((v >> (e - LAG_SUB_BITS)) - SUB);
}

/* The largest value that falls into bucket i. */
static int64_t bucket_top(size_t i)
{
    size_t group = i / SUB;
    int shift;

    if (i < SUB)
        return (int64_t)i;
    shift = (int)group - 1;
    return (int64_t)(((uint64_t)(SUB + i % SUB) << shift) + ((uint64_t)1 << shift) - 1);
}

void lag_hist_clear(struct lag_hist *h)
{
    memset(h, 0, sizeof(*h));
}

void lag_hist_add(struct lag_hist *h, int64_t us)
{
    if (us < 0)
        us = 0;
    h->bucket[bucket_of(us)]++;
    h->count++;
    if (us > h->max_us)
        h->max_us = us;
}

void lag_hist_merge(struct lag_hist *dst, const struct lag_hist *src)
{
    if (!src->count)
        return;
    for (size_t i = 0; i < LAG_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

int64_t lag_hist_quantile(const struct lag_hist *h, double q)
{
    uint64_t rank, seen = 0;
    double r;

    if (!h->count)
        return 0;
    r = q * (double)h->count;
    rank = (uint64_t)r;
    if ((double)rank < r)
        rank++; /* ceil */
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    for (size_t i = 0; i < LAG_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            int64_t top = i == LAG_BUCKETS - 1 ? h->max_us : bucket_top(i); /* no top: overflow */
            return top < h->max_us ? top : h->max_us;
        }
    }
    return h->max_us;
}

/* ---- the one-minute window ----------------------------------------------------------------- */

void lag_window_init(struct lag_window *w)
{
    memset(w, 0, sizeof(*w));
    for (size_t i = 0; i < LAG_SLOTS; i++)
        w->slot_epoch[i] = -1;
}

void lag_window_add(struct lag_window *w, int64_t now_us, int64_t us)
{
    int64_t epoch = now_us / LAG_SLOT_US;
    size_t i = (size_t)(epoch % LAG_SLOTS);

    if (w->slot_epoch[i] != epoch) {
        lag_hist_clear(&w->slot[i]);
        w->slot_epoch[i] = epoch;
    }
    lag_hist_add(&w->slot[i], us);
}

void lag_window_summary(const struct lag_window *w, int64_t now_us, struct lag_summary *out)
{
    int64_t epoch = now_us / LAG_SLOT_US;
    struct lag_hist all;

    lag_hist_clear(&all);
    for (size_t i = 0; i < LAG_SLOTS; i++)
        if (w->slot_epoch[i] >= 0 && w->slot_epoch[i] <= epoch &&
            epoch - w->slot_epoch[i] < LAG_SLOTS)
            lag_hist_merge(&all, &w->slot[i]);
    out->events = all.count;
    out->p50_us = lag_hist_quantile(&all, 0.50);
    out->p95_us = lag_hist_quantile(&all, 0.95);
    out->p99_us = lag_hist_quantile(&all, 0.99);
    out->max_us = all.max_us;
}

/* ---- pushed events and commits ------------------------------------------------------------- */

struct pending {
    uint64_t seq;
    int64_t recv_us;
    int coll;
};

struct commit {
    uint64_t committed;
    int64_t at_us;
};

struct coll_lag {
    struct lag_window w;
    int64_t last_us;      /* worst latency of the last commit that held one of its events */
    uint64_t last_commit; /* which drained commit set last_us */
    uint64_t total;
    double total_s;
};

struct lag_tracker {
    size_t ncoll;
    struct coll_lag *coll;
    /* pending events, oldest first: a ring of cap entries (a power of two) */
    struct pending *q;
    size_t cap, head, n;
    uint64_t commits; /* commits drained so far */
    /* written by the sink thread */
    pthread_mutex_t mu;
    struct commit log[COMMIT_LOG];
    size_t nlog;
    uint64_t logged; /* the newest count noted */
};

struct lag_tracker *lag_tracker_new(size_t ncoll)
{
    struct lag_tracker *t = xcalloc(1, sizeof(*t));

    t->ncoll = ncoll;
    t->coll = xcalloc(ncoll ? ncoll : 1, sizeof(*t->coll));
    for (size_t i = 0; i < ncoll; i++)
        lag_window_init(&t->coll[i].w);
    pthread_mutex_init(&t->mu, NULL);
    return t;
}

void lag_tracker_free(struct lag_tracker *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->mu);
    free(t->q);
    free(t->coll);
    free(t);
}

void lag_track_pushed(struct lag_tracker *t, int coll, uint64_t seq, int64_t recv_us)
{
    if (coll < 0 || (size_t)coll >= t->ncoll)
        return;
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        struct pending *q = xmalloc(cap * sizeof(*q));
        for (size_t i = 0; i < t->n; i++)
            q[i] = t->q[(t->head + i) & (t->cap - 1)];
        free(t->q);
        t->q = q;
        t->cap = cap;
        t->head = 0;
    }
    t->q[(t->head + t->n) & (t->cap - 1)] = (struct pending){seq, recv_us, coll};
    t->n++;
}

void lag_track_committed(struct lag_tracker *t, uint64_t committed, int64_t now_us)
{
    pthread_mutex_lock(&t->mu);
    if (committed > t->logged) { /* else nothing new: a health change, the thread ending */
        t->logged = committed;
        if (t->nlog < COMMIT_LOG)
            t->log[t->nlog++] = (struct commit){committed, now_us};
        else
            t->log[COMMIT_LOG - 1] = (struct commit){committed, now_us};
    }
    pthread_mutex_unlock(&t->mu);
}

static void record(struct lag_tracker *t, const struct pending *p, int64_t at_us)
{
    struct coll_lag *c = &t->coll[p->coll];
    int64_t us = at_us - p->recv_us;

    if (us < 0)
        us = 0;
    lag_window_add(&c->w, at_us, us);
    if (c->last_commit != t->commits || us > c->last_us)
        c->last_us = us;
    c->last_commit = t->commits;
    c->total++;
    c->total_s += (double)us / 1e6;
}

void lag_track_drain(struct lag_tracker *t)
{
    struct commit log[COMMIT_LOG];
    size_t n;

    pthread_mutex_lock(&t->mu);
    n = t->nlog;
    memcpy(log, t->log, n * sizeof(log[0]));
    t->nlog = 0;
    pthread_mutex_unlock(&t->mu);
    for (size_t k = 0; k < n; k++) {
        t->commits++;
        while (t->n && t->q[t->head].seq <= log[k].committed) {
            record(t, &t->q[t->head], log[k].at_us);
            t->head = (t->head + 1) & (t->cap - 1);
            t->n--;
        }
    }
}

void lag_track_get(const struct lag_tracker *t, int coll, int64_t now_us, struct lag_summary *out,
                   int64_t *last_us, uint64_t *total_events, double *total_s)
{
    const struct coll_lag *c;

    memset(out, 0, sizeof(*out));
    *last_us = 0;
    *total_events = 0;
    *total_s = 0;
    if (coll < 0 || (size_t)coll >= t->ncoll)
        return;
    c = &t->coll[coll];
    lag_window_summary(&c->w, now_us, out);
    *last_us = c->last_us;
    *total_events = c->total;
    *total_s = c->total_s;
}
