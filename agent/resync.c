/*
 * resync.c - the full resync's schedule and its runs, on the agent's loop (see resync.h).
 *
 * Owns one `struct run` per collection (its schedule, and while it runs: the REST call, the page
 * read ahead, the page in the sink, the byte and Firestore-order bounds, the keys left
 * undecided), one repeating timer that drives the schedule, one timer per run for pacing and
 * retries, and the uv_async through which the sink thread hands committed pages back. A page
 * lives from its REST reply until the sink hands it back; the next one may be read meanwhile,
 * never more.
 *
 * Page bounds (see mysql/page.h). MySQL orders keys by bytes, Firestore by path segments with
 * numeric ids first. `bmax` is the largest key (bytes) of every page read so far: page i covers
 * the fresh range (bmax before it, bmax after it]; the last page covers everything after. Rows of
 * a range that Firestore puts after the page (f_last) come back as deferred keys and are sent
 * again once a page has passed them.
 */
#include "agent/resync.h"

#include "common/log.h"
#include "common/xalloc.h"
#include "diff/convert.h"
#include "firestore/rest.h"
#include "mysql/page.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 1000
#define MAX_ATTEMPTS 8 /* failed reads of one page before the run fails */
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
/* a failed run is tried again after this (or resync.interval when shorter) */
#define FAILED_AGAIN_MS (10 * 60000)
#define QUEUE_WAIT_MS 100    /* the sink is busy: look again after this */
#define DEFERRED_PER_PAGE 10 /* undecided keys kept: this many pages' worth, ... */
#define DEFERRED_MIN 10000   /* ... and at least this many (about 1 MiB) */

/* What the index held for a document when its page was pushed. */
struct seen {
    bool exists, live;
    int64_t us;
};

struct run {
    struct resync *r;
    int coll;
    struct status_resync *st;
    /* schedule */
    int64_t last_ok_us;  /* end of the last completed run (wall clock), 0: never */
    int64_t due_us;      /* next automatic run */
    int64_t generation;  /* of the last run that started */
    bool resume;         /* an interrupted run waits in the checkpoint table */
    char *resume_cursor; /* its cursor (path under .../documents) */
    size_t resume_len;
    int64_t resume_started_us;
    uint64_t ended;
    /* the run in progress */
    bool active;
    uv_timer_t timer;
    rest_call *call;
    struct rest_page ahead; /* read, not yet in the sink */
    bool have_ahead, last_read, in_sink;
    struct fs_time read_time;
    bool have_read_time;
    char *after; /* full name of the last document read (startAt) */
    struct sink_page_key bmax, settled;
    struct sink_page_key *deferred;
    size_t ndeferred;
    struct sink_page_totals t;
    int64_t started_us, mono_start_ms, fetch_after_ms;
    char last[sizeof(((struct status_resync *)0)->result)]; /* the last run's result */
    int attempts;
    uint64_t pages;
    struct seen *seen; /* per document of the page in the sink */
    /* the query */
    char *parent, *collection_id;
    bool group;
};

/* A committed page on its way from the sink thread to the loop. */
struct done_node {
    struct sink_page *pg;
    struct done_node *next;
};

struct resync {
    struct resync_env env;
    struct run *runs;
    size_t n;
    struct status_resync *status; /* one per collection */
    char *docroot;                /* "projects/P/databases/D/documents/" */
    size_t rootlen;
    uv_timer_t tick;
    uv_async_t async;
    pthread_mutex_t mu;
    struct done_node *done_head; /* committed pages, handed over by the sink thread */
    int64_t next_slot_ms;        /* pacing over all runs (loop time) */
    int64_t started_us;
    int64_t down_since_us; /* stream down since, 0 when up */
    bool fallback_fired, stopping, closed;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void changed(struct resync *r)
{
    if (r->env.hooks.changed)
        r->env.hooks.changed(r->env.ud);
}

static void key_clear(struct sink_page_key *k)
{
    free(k->p);
    k->p = NULL;
    k->n = 0;
}

static int path_cmp(const struct sink_page_key *a, const char *p, size_t n)
{
    return rest_path_cmp(a->p, a->n, p, n);
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* ---- status ---------------------------------------------------------------------------------- */

/* The run's counts so far; the result shows them, and the last run's result stays in it until
 * this one ends. */
static void show_progress(struct run *u)
{
    struct status_resync *st = u->st;

    st->docs_read = u->t.docs_read;
    st->differences = u->t.differences;
    st->fixed = u->t.fixed;
    st->soft_deleted = u->t.soft_deleted;
    st->reads_billed = u->t.billed;
    st->duration_ms = (int64_t)uv_now(u->r->env.loop) - u->mono_start_ms;
    if (!u->active)
        return;
    snprintf(st->result, sizeof(st->result),
             "%s: %llu read, %llu differences, %llu fixed, %llu soft-deleted so far%s%.150s",
             st->phase, (unsigned long long)u->t.docs_read, (unsigned long long)u->t.differences,
             (unsigned long long)u->t.fixed, (unsigned long long)u->t.soft_deleted,
             u->last[0] ? "; last: " : "", u->last);
}

/* Lets go of what a run holds while it runs. */
static void run_release(struct run *u)
{
    u->active = false;
    uv_timer_stop(&u->timer);
    if (u->call)
        rest_call_cancel(u->call);
    u->call = NULL;
    rest_page_release(&u->ahead);
    u->have_ahead = false;
    free(u->after);
    u->after = NULL;
    key_clear(&u->bmax);
    key_clear(&u->settled);
    for (size_t i = 0; i < u->ndeferred; i++)
        free(u->deferred[i].p);
    free(u->deferred);
    u->deferred = NULL;
    u->ndeferred = 0;
}

/* Ends the run: ok when why is NULL. */
static void finish(struct run *u, const char *why)
{
    struct resync *r = u->r;
    struct status_resync *st = u->st;
    int64_t now = now_us();

    show_progress(u);
    run_release(u);
    st->finished_us = now;
    st->phase[0] = '\0';
    u->ended++;
    if (why) {
        snprintf(st->state, sizeof(st->state), "failed");
        snprintf(st->result, sizeof(st->result), "failed: %s", why);
        int64_t again = r->env.cfg->resync.interval_ms;
        if (again > FAILED_AGAIN_MS)
            again = FAILED_AGAIN_MS;
        u->due_us = now + again * 1000;
        log_error("resync of %s failed after %llu documents: %s",
                  r->env.cfg->collections[u->coll].path, (unsigned long long)u->t.docs_read, why);
    } else {
        snprintf(st->state, sizeof(st->state), "idle");
        sink_page_summary(&u->t, st->duration_ms, st->result, sizeof(st->result));
        u->last_ok_us = now;
        u->due_us = now + r->env.cfg->resync.interval_ms * 1000;
        log_info("resync of %s: %s", r->env.cfg->collections[u->coll].path, st->result);
    }
    changed(r);
}

/* ---- reading pages ------------------------------------------------------------------------- */

static void advance(struct run *u);

static void on_timer(uv_timer_t *t)
{
    advance(t->data);
}

/* A failed page read: retried with backoff while the error is transient. */
static void page_failed(struct run *u, int rc, const fserr *e, long status)
{
    int64_t now = (int64_t)uv_now(u->r->env.loop), delay;
    const char *msg = e ? e->msg : fserr_str(rc);

    u->attempts++;
    if (u->have_read_time && (status == 400 || status == 412) &&
        (strstr(msg, "FAILED_PRECONDITION") || strstr(msg, "read time") ||
         strstr(msg, "readTime"))) {
        /* the snapshot is too old to read at: go on from the cursor at a new read time */
        log_warn("resync of %s: %s; continuing at a new read time",
                 u->r->env.cfg->collections[u->coll].path, msg);
        u->have_read_time = false;
        u->fetch_after_ms = now;
        return;
    }
    if (fserr_transient(rc) && u->attempts < MAX_ATTEMPTS) {
        delay = (int64_t)RETRY_MIN_MS << (u->attempts - 1);
        if (delay > RETRY_MAX_MS)
            delay = RETRY_MAX_MS;
        log_warn("resync of %s: %s; retrying in %lld ms", u->r->env.cfg->collections[u->coll].path,
                 msg, (long long)delay);
        u->fetch_after_ms = now + delay;
        return;
    }
    finish(u, msg);
}

static void on_page(void *ud, int rc, const fserr *e, long status, struct rest_page *page)
{
    struct run *u = ud;

    u->call = NULL;
    if (rc) {
        page_failed(u, rc, e, status);
        advance(u);
        return;
    }
    u->attempts = 0;
    if (!u->have_read_time) {
        u->read_time = page->read_time;
        u->have_read_time = true;
    }
    u->ahead = *page;
    memset(page, 0, sizeof(*page));
    u->have_ahead = true;
    u->last_read = !u->ahead.more;
    if (u->ahead.ndocs) {
        free(u->after);
        u->after = xstrdup(u->ahead.docs[u->ahead.ndocs - 1].name);
    }
    u->t.docs_read += u->ahead.ndocs;
    u->t.billed += u->ahead.billed;
    show_progress(u);
    advance(u);
}

/* Starts the next page's read when none is under way or waiting; returns how long to wait
 * before trying again (0: nothing to wait for). */
static int64_t fetch(struct run *u)
{
    struct resync *r = u->r;
    const struct cfg_resync *rc_cfg = &r->env.cfg->resync;
    int64_t now = (int64_t)uv_now(r->env.loop), at;
    struct rest_query q = {0};
    fserr e = {0};
    buf auth;
    int rc = 0;

    if (u->call || u->have_ahead || u->last_read)
        return 0;
    at = u->fetch_after_ms > r->next_slot_ms ? u->fetch_after_ms : r->next_slot_ms;
    if (now < at)
        return at - now;
    buf_init(&auth, 64 * 1024);
    if (r->env.hooks.auth_header && (rc = r->env.hooks.auth_header(r->env.ud, &auth)) != 0) {
        buf_release(&auth);
        if (rc == FS_EAGAIN) {
            u->fetch_after_ms = now + RETRY_MIN_MS;
            return RETRY_MIN_MS;
        }
        finish(u, "no access token for the REST reads");
        return 0;
    }
    q.base_url = r->env.base_url;
    q.parent = u->parent;
    q.collection_id = u->collection_id;
    q.all_descendants = u->group;
    q.limit = (unsigned)rc_cfg->page_size;
    q.start_after = u->after;
    if (u->have_read_time)
        q.read_time = u->read_time;
    q.auth = auth.len ? buf_str(&auth) : NULL;
    q.timeout_ms = (long)r->env.cfg->firestore.request_timeout_ms;
    r->next_slot_ms = (now > r->next_slot_ms ? now : r->next_slot_ms) +
                      (int64_t)(1000.0 / rc_cfg->pages_per_second);
    rc = rest_query_start(r->env.http, &q, on_page, u, &u->call, &e);
    if (auth.p)
        memset(auth.p, 0, auth.len);
    buf_release(&auth);
    if (rc) {
        page_failed(u, rc, &e, 0);
        return u->active ? RETRY_MIN_MS : 0;
    }
    return 0;
}

/* ---- pages to the sink ---------------------------------------------------------------------- */

static void page_done(void *ud, struct sink_page *pg);

/* Takes the keys left undecided that this page decides (Firestore puts them at or before the
 * page's last name; on the last page, all of them). */
static void take_recheck(struct run *u, struct sink_page *pg)
{
    size_t keep = 0;

    pg->recheck = xcalloc(u->ndeferred + 1, sizeof(*pg->recheck));
    for (size_t i = 0; i < u->ndeferred; i++) {
        struct sink_page_key *k = &u->deferred[i];
        if (!pg->f_last.p || path_cmp(&pg->f_last, k->p, k->n) >= 0)
            pg->recheck[pg->nrecheck++] = *k;
        else
            u->deferred[keep++] = *k;
    }
    u->ndeferred = keep;
}

/* One document of the page: its key, cells (NULL when it does not map) and the index's view. */
static void add_doc(struct run *u, struct sink_page *pg, struct fsdoc *doc, const char *key,
                    size_t kl)
{
    struct resync *r = u->r;
    struct sink_page_doc *d = &pg->docs[pg->ndocs];
    size_t i = pg->ndocs++;
    fserr e = {0};

    sink_page_key_set(&d->key, key, kl);
    d->create_us = diff_time_us(doc->create_time);
    d->update_us = diff_time_us(doc->update_time);
    if (diff_cells(r->env.diff, u->coll, doc, &d->cells, &d->hashes, &d->ncells, &e) != 0) {
        log_debug("resync: %s does not map (%s); its row is left as it is", doc->name, e.msg);
        u->t.refused++;
        d->cells = NULL;
        d->hashes = NULL;
        d->ncells = 0;
    }
    u->seen[i].exists = diff_peek(r->env.diff, u->coll, key, kl, &u->seen[i].us, &u->seen[i].live);
}

static struct sink_page *build(struct run *u, struct rest_page *page)
{
    struct resync *r = u->r;
    struct sink_page *pg = sink_page_new();
    const char *key = NULL, *last_key = NULL, *last_name = NULL;
    size_t kl = 0, last_kl = 0;

    pg->coll = u->coll;
    pg->read_us = diff_time_us(page->read_time);
    pg->docs = xcalloc(page->ndocs + 1, sizeof(*pg->docs));
    u->seen = xrealloc(u->seen, (page->ndocs + 1) * sizeof(*u->seen));
    sink_page_key_set(&pg->lo, u->bmax.p, u->bmax.n);
    for (size_t i = 0; i < page->ndocs; i++) {
        struct fsdoc *doc = &page->docs[i];
        size_t nl = strlen(doc->name);
        if (diff_key(r->env.diff, u->coll, doc->name, nl, &key, &kl) != 0)
            continue;
        if (!u->bmax.p || bytes_cmp(key, kl, u->bmax.p, u->bmax.n) > 0)
            sink_page_key_set(&u->bmax, key, kl);
        last_key = key;
        last_kl = kl;
        last_name = doc->name;
        if (!r->env.hooks.matches || r->env.hooks.matches(r->env.ud, u->coll, doc->name, nl))
            add_doc(u, pg, doc, key, kl);
    }
    if (page->more && last_key) {
        sink_page_key_set(&pg->hi, u->bmax.p, u->bmax.n);
        sink_page_key_set(&pg->f_last, last_key, last_kl);
        sink_page_key_set(&pg->cursor, last_name + r->rootlen, strlen(last_name) - r->rootlen);
    } else if (page->more) { /* a full page of documents that are not ours: go on */
        sink_page_key_set(&pg->hi, u->bmax.p, u->bmax.n);
        sink_page_key_set(&pg->f_last, u->bmax.p, u->bmax.n);
        sink_page_key_set(&pg->cursor, u->after + r->rootlen, strlen(u->after) - r->rootlen);
    }
    pg->settled = u->settled;
    memset(&u->settled, 0, sizeof(u->settled));
    take_recheck(u, pg);
    pg->max_deferred = (size_t)r->env.cfg->resync.page_size * DEFERRED_PER_PAGE;
    if (pg->max_deferred < DEFERRED_MIN)
        pg->max_deferred = DEFERRED_MIN;
    pg->max_deferred = pg->max_deferred > u->ndeferred ? pg->max_deferred - u->ndeferred : 0;
    pg->generation = u->generation;
    pg->started_us = u->started_us;
    pg->before = u->t;
    pg->done = page_done;
    pg->ud = u;
    return pg;
}

/* Moves the page read ahead into the sink when none is there; returns how long to wait before
 * trying again (0: nothing to wait for). */
static int64_t push(struct run *u)
{
    struct resync *r = u->r;
    struct sink_event *ev;
    struct sink_page *pg;

    if (u->in_sink || !u->have_ahead)
        return 0;
    if (atomic_load(&sink_stats(r->env.sink)->queued) >=
        (uint64_t)r->env.cfg->agent.queue_max_events / 2)
        return QUEUE_WAIT_MS; /* the stream comes first */
    pg = build(u, &u->ahead);
    rest_page_release(&u->ahead);
    u->have_ahead = false;
    ev = sink_event_new(SINK_OP_RESYNC_PAGE, u->coll);
    ev->source = SINK_SRC_RESYNC;
    ev->page = pg;
    u->in_sink = true;
    u->pages++;
    snprintf(u->st->phase, sizeof(u->st->phase), "%s", pg->cursor.p ? "reading" : "sweeping");
    sink_push(r->env.sink, ev);
    return 0;
}

static void advance(struct run *u)
{
    int64_t w1, w2, wait;

    if (!u->active || u->r->stopping)
        return;
    w1 = push(u);
    w2 = u->active ? fetch(u) : 0;
    if (!u->active)
        return;
    wait = !w1 ? w2 : !w2 ? w1 : w1 < w2 ? w1 : w2;
    if (wait > 0)
        uv_timer_start(&u->timer, on_timer, (uint64_t)wait, 0);
}

/* ---- pages back from the sink --------------------------------------------------------------- */

/* On the sink thread, after the commit. */
static void page_done(void *ud, struct sink_page *pg)
{
    struct run *u = ud;
    struct resync *r = u->r;
    struct done_node *n = xcalloc(1, sizeof(*n)), **p;

    n->pg = pg;
    pthread_mutex_lock(&r->mu);
    for (p = &r->done_head; *p; p = &(*p)->next)
        ;
    *p = n;
    pthread_mutex_unlock(&r->mu);
    uv_async_send(&r->async);
}

/* The applied index learns what MySQL holds now for the page's keys. */
static void refresh(struct run *u, const struct sink_page *pg)
{
    struct diff *d = u->r->env.diff;

    for (size_t i = 0; i < pg->ndocs; i++) {
        const struct sink_page_doc *doc = &pg->docs[i];
        struct diff_refresh f = {doc->key.p,        doc->key.n,      true,
                                 doc->update_us,    doc->hashes,     true,
                                 u->seen[i].exists, u->seen[i].live, u->seen[i].us};
        if (doc->outcome == SINK_PAGE_EQUAL || doc->outcome == SINK_PAGE_WRITTEN)
            diff_refresh(d, u->coll, &f);
    }
    for (size_t i = 0; i < pg->ndeleted; i++) {
        struct diff_refresh f = {
            pg->deleted[i].p, pg->deleted[i].n, false, pg->read_us, NULL, false, false, false, 0};
        diff_refresh(d, u->coll, &f);
    }
}

static void add_totals(struct sink_page_totals *t, const struct sink_page_totals *g)
{
    t->differences += g->differences;
    t->fixed += g->fixed;
    t->inserted += g->inserted;
    t->updated += g->updated;
    t->soft_deleted += g->soft_deleted;
    t->refused += g->refused;
    t->undecided += g->undecided;
}

static void handle_done(struct run *u, struct sink_page *pg)
{
    bool last = !pg->cursor.p;

    refresh(u, pg);
    u->in_sink = false;
    if (u->active) {
        add_totals(&u->t, &pg->got);
        u->deferred =
            xrealloc(u->deferred, (u->ndeferred + pg->ndeferred + 1) * sizeof(*u->deferred));
        for (size_t i = 0; i < pg->ndeferred; i++)
            u->deferred[u->ndeferred++] = pg->deferred[i];
        free(pg->deferred);
        pg->deferred = NULL;
        pg->ndeferred = 0;
        if (last) {
            finish(u, NULL);
        } else {
            show_progress(u);
            advance(u);
        }
    }
    sink_page_free(pg);
}

static void on_async(uv_async_t *h)
{
    struct resync *r = h->data;
    struct done_node *n;

    pthread_mutex_lock(&r->mu);
    n = r->done_head;
    r->done_head = NULL;
    pthread_mutex_unlock(&r->mu);
    while (n) {
        struct done_node *next = n->next;
        struct run *u = n->pg->ud;
        if (r->stopping)
            sink_page_free(n->pg);
        else
            handle_done(u, n->pg);
        free(n);
        n = next;
    }
}

/* ---- runs ---------------------------------------------------------------------------------- */

static int start(struct run *u, const char *why, fserr *e)
{
    struct resync *r = u->r;
    const char *path = r->env.cfg->collections[u->coll].path, *key;
    size_t kl;

    if (r->stopping)
        return fserr_set(e, FS_ECANCELED, "the agent is stopping");
    if (u->active || u->in_sink)
        return fserr_set(e, FS_EEXISTS, "a resync of %s is already running", path);
    memset(&u->t, 0, sizeof(u->t));
    u->pages = 0;
    u->attempts = 0;
    u->fetch_after_ms = 0;
    u->have_read_time = u->last_read = false;
    u->started_us = now_us();
    if (u->resume) {
        u->after = xasprintf("%s%.*s", r->docroot, (int)u->resume_len, u->resume_cursor);
        if (diff_key(r->env.diff, u->coll, u->after, strlen(u->after), &key, &kl) == 0) {
            sink_page_key_set(&u->bmax, key, kl);
            sink_page_key_set(&u->settled, key, kl);
        }
        if (u->resume_started_us)
            u->started_us = u->resume_started_us;
        u->resume = false;
        log_info("resync of %s: continuing the interrupted run after %s (%s)", path,
                 u->after + r->rootlen, why);
    } else {
        u->generation++;
        log_info("resync of %s started (%s)", path, why);
    }
    snprintf(u->last, sizeof(u->last), "%s", u->st->result);
    u->active = true;
    u->mono_start_ms = (int64_t)uv_now(r->env.loop);
    snprintf(u->st->state, sizeof(u->st->state), "running");
    snprintf(u->st->phase, sizeof(u->st->phase), "reading");
    u->st->started_us = u->started_us;
    show_progress(u);
    changed(r);
    advance(u);
    return 0;
}

int resync_request(struct resync *r, int coll, const char *why, fserr *e)
{
    if (coll < 0 || (size_t)coll >= r->n)
        return fserr_set(e, FS_EINVAL, "no collection #%d", coll);
    return start(&r->runs[coll], why, e);
}

void resync_doubt(struct resync *r, int coll, const char *why)
{
    fserr e = {0};

    if (coll < 0 || (size_t)coll >= r->n || r->stopping)
        return;
    if (!r->env.cfg->resync.enabled) {
        log_warn("%s: %s; resync.enabled is false, so no resync runs",
                 r->env.cfg->collections[coll].path, why);
        return;
    }
    if (start(&r->runs[coll], why, &e) != 0)
        log_info("%s: %s; %s", r->env.cfg->collections[coll].path, why, e.msg);
}

void resync_stream_state(struct resync *r, bool up)
{
    if (up) {
        r->down_since_us = 0;
        r->fallback_fired = false;
    } else if (!r->down_since_us) {
        r->down_since_us = now_us();
    }
}

static void on_tick(uv_timer_t *t)
{
    struct resync *r = t->data;
    int64_t now = now_us();
    char why[96];

    if (r->stopping)
        return;
    for (size_t i = 0; i < r->n && r->env.cfg->resync.enabled; i++) {
        struct run *u = &r->runs[i];
        if (u->active || u->in_sink)
            continue;
        if (u->resume)
            start(u, "interrupted before", NULL);
        else if (now >= u->due_us)
            start(u, u->last_ok_us ? "resync.interval since the last one" : "resync.interval",
                  NULL);
    }
    if (r->down_since_us && !r->fallback_fired &&
        now - r->down_since_us >= r->env.cfg->resync.fallback_after_ms * 1000) {
        r->fallback_fired = true;
        snprintf(why, sizeof(why), "the stream has been down for over %lld s",
                 (long long)(r->env.cfg->resync.fallback_after_ms / 1000));
        for (size_t i = 0; i < r->n; i++)
            resync_doubt(r, (int)i, why);
    }
}

/* ---- the resync ---------------------------------------------------------------------------- */

/* The runQuery parent and collection id of a configured path ("employees", "shops/s1/items",
 * or a pattern "users/ * /orders", which is the collection group "orders"). */
static void query_of(struct resync *r, struct run *u, const struct cfg_collection *cl)
{
    const char *last = strrchr(cl->path, '/');

    u->group = cl->is_group;
    u->collection_id = xstrdup(last ? last + 1 : cl->path);
    if (cl->is_group || !last)
        u->parent = xstrndup(r->docroot, r->rootlen - 1);
    else
        u->parent = xasprintf("%s%.*s", r->docroot, (int)(last - cl->path), cl->path);
}

/* The run's schedule from what the checkpoint table says. */
static int load_run(struct resync *r, struct run *u, fserr *e)
{
    const struct cfg_collection *cl = &r->env.cfg->collections[u->coll];
    struct sink_resync_state st;
    int rc = sink_page_load_state(r->env.cfg, cl->path, &st, e);

    if (rc)
        return rc;
    u->generation = st.generation;
    u->last_ok_us = st.finished_us;
    u->due_us =
        (st.finished_us ? st.finished_us : r->started_us) + r->env.cfg->resync.interval_ms * 1000;
    if (st.cursor) {
        u->resume = true;
        u->resume_cursor = st.cursor;
        u->resume_len = st.cursor_len;
        u->resume_started_us = st.started_us;
        st.cursor = NULL;
    }
    snprintf(u->st->state, sizeof(u->st->state), "idle");
    snprintf(u->st->result, sizeof(u->st->result), "%s", st.result ? st.result : "");
    u->st->finished_us = st.finished_us;
    u->st->started_us = st.started_us;
    sink_page_state_release(&st);
    return 0;
}

int resync_new(const struct resync_env *env, struct resync **out, fserr *e)
{
    struct resync *r = xcalloc(1, sizeof(*r));
    int rc = 0;

    r->env = *env;
    r->n = env->cfg->ncollections;
    r->runs = xcalloc(r->n + 1, sizeof(*r->runs));
    r->status = xcalloc(r->n + 1, sizeof(*r->status));
    r->docroot = xasprintf("%s/documents/", env->database);
    r->rootlen = strlen(r->docroot);
    r->started_us = now_us();
    r->down_since_us = r->started_us; /* the stream is not up yet */
    pthread_mutex_init(&r->mu, NULL);
    uv_timer_init(env->loop, &r->tick);
    r->tick.data = r;
    uv_async_init(env->loop, &r->async, on_async);
    r->async.data = r;
    for (size_t i = 0; i < r->n; i++) {
        struct run *u = &r->runs[i];
        u->r = r;
        u->coll = (int)i;
        u->st = &r->status[i];
        uv_timer_init(env->loop, &u->timer);
        u->timer.data = u;
        query_of(r, u, &env->cfg->collections[i]);
        if (!rc)
            rc = load_run(r, u, e);
    }
    if (!rc)
        uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
    *out = r; /* even on failure: its handles are open, resync_close() and resync_free() it */
    return rc;
}

bool resync_running(const struct resync *r, int coll)
{
    return coll >= 0 && (size_t)coll < r->n && (r->runs[coll].active || r->runs[coll].in_sink);
}

uint64_t resync_runs_ended(const struct resync *r, int coll)
{
    return coll >= 0 && (size_t)coll < r->n ? r->runs[coll].ended : 0;
}

const struct status_resync *resync_status(const struct resync *r, int coll)
{
    return coll >= 0 && (size_t)coll < r->n ? r->runs[coll].st : NULL;
}

bool resync_overdue(const struct resync *r, int64_t now_us_)
{
    int64_t limit = 2 * r->env.cfg->resync.interval_ms * 1000;

    if (!r->env.cfg->resync.enabled)
        return false;
    for (size_t i = 0; i < r->n; i++) {
        const struct run *u = &r->runs[i];
        if (now_us_ - (u->last_ok_us ? u->last_ok_us : r->started_us) > limit)
            return true;
    }
    return false;
}

void resync_stop(struct resync *r)
{
    if (!r || r->stopping)
        return;
    r->stopping = true;
    uv_timer_stop(&r->tick);
    for (size_t i = 0; i < r->n; i++) {
        struct run *u = &r->runs[i];
        uv_timer_stop(&u->timer);
        if (u->call)
            rest_call_cancel(u->call);
        u->call = NULL;
        if (u->active) {
            u->active = false;
            snprintf(u->st->state, sizeof(u->st->state), "idle");
            snprintf(u->st->result, sizeof(u->st->result),
                     "interrupted after %llu documents; continues at the next start",
                     (unsigned long long)u->t.docs_read);
            log_info("resync of %s interrupted; it continues after its last saved page at the "
                     "next start",
                     r->env.cfg->collections[i].path);
        }
    }
}

void resync_close(struct resync *r)
{
    if (!r || r->closed)
        return;
    resync_stop(r);
    r->closed = true;
    uv_close((uv_handle_t *)&r->tick, NULL);
    uv_close((uv_handle_t *)&r->async, NULL);
    for (size_t i = 0; i < r->n; i++)
        uv_close((uv_handle_t *)&r->runs[i].timer, NULL);
}

void resync_free(struct resync *r)
{
    struct done_node *n;

    if (!r)
        return;
    for (n = r->done_head; n;) {
        struct done_node *next = n->next;
        sink_page_free(n->pg);
        free(n);
        n = next;
    }
    for (size_t i = 0; i < r->n; i++) {
        run_release(&r->runs[i]);
        free(r->runs[i].resume_cursor);
        free(r->runs[i].seen);
        free(r->runs[i].parent);
        free(r->runs[i].collection_id);
    }
    free(r->runs);
    free(r->status);
    free(r->docroot);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
