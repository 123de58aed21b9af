/*
 * daemon.c - `firesync run`: the Firestore stream, the diff and the MySQL sink joined on one
 * libuv loop, with the status file, signals, systemd notifications and the control socket.
 *
 *   stream (agent/stream.c) --listen callbacks--> diff (diff/) --events--> sink queue --> MySQL
 *
 * Owns the loop and everything on it: the stream, the diff and its indexes, the sink, the
 * status timer, the signal handles and the control server. The sink thread wakes the loop with
 * a uv_async after each commit, so that a paused stream resumes and the status refreshes. At a
 * consistent point the target's checkpoint is queued behind the rows it covers; the sink
 * commits them in one transaction.
 *
 * Startup: connect to MySQL (creating or checking tables), rebuild the applied index and read
 * each target's checkpoint from MySQL, then listen. READY=1 goes to systemd once MySQL is up;
 * WATCHDOG=1 from the status timer. SIGTERM/SIGINT: stop listening, let the sink commit what it
 * has, write the final status, exit 0. SIGHUP: re-read the configuration; settings that can
 * change live (log level, health windows, status interval) are swapped in, anything else is
 * refused with a log line and the running configuration stays.
 */
#include "agent/daemon.h"

#include "agent/config.h"
#include "agent/control.h"
#include "agent/internal.h"
#include "agent/resync.h"
#include "agent/status.h"
#include "agent/stream.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "diff/convert.h"

#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

int64_t agent_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- events from the diff to the sink ---------------------------------------------------- */

static int emit(void *ud, struct sink_event *ev)
{
    struct agent *a = ud;
    struct status_collection *sc = ev->coll >= 0 ? &a->colls[ev->coll] : NULL;
    int coll = ev->coll;
    /* timed: the changes of the stream and simulated ones, from now (their receipt) */
    bool timed = sc && ev->source != SINK_SRC_RESYNC &&
                 (ev->op == SINK_OP_UPSERT || ev->op == SINK_OP_DELETE ||
                  ev->op == SINK_OP_DEADLETTER);
    int64_t recv_us = timed ? agent_now_us() : 0;

    a->emitted = true;
    if (sc) {
        struct status_counters *k = &sc->counters;
        switch (ev->op) {
        case SINK_OP_UPSERT:
            if (ev->create)
                k->created++;
            else
                k->updated++;
            break;
        case SINK_OP_DELETE:
            k->deleted++;
            break;
        case SINK_OP_DEADLETTER:
            k->dead_letters++;
            a->last_dead_letter_us = agent_now_us();
            break;
        case SINK_OP_CHECKPOINT:
        case SINK_OP_RESYNC_PAGE:
            break;
        }
        if (ev->source == SINK_SRC_SIMULATED && ev->op != SINK_OP_CHECKPOINT)
            k->simulated++;
    }
    sink_push(a->sink, ev); /* ev is the sink's now */
    if (timed) /* only the loop pushes: `pushed` is this event's number */
        lag_track_pushed(a->lag, coll, atomic_load(&sink_stats(a->sink)->pushed), recv_us);
    return 0;
}

/* ---- listen callbacks -------------------------------------------------------------------- */

static bool on_seen(void *ud, int target, const char *name, size_t len, struct fs_time ut)
{
    struct agent *a = ud;
    a->targets[target].cycle_docs++; /* every document passes here first, once */
    if (diff_seen(a->diff, target, name, len, ut)) {
        a->colls[target].counters.unchanged++;
        return true;
    }
    return false;
}

static int on_upsert(void *ud, int target, struct fsdoc *doc)
{
    struct agent *a = ud;
    fserr e = {0};
    int rc;

    a->colls[target].last_event_us = agent_now_us();
    a->emitted = false;
    rc = diff_upsert(a->diff, target, doc, SINK_SRC_STREAM, &e);
    if (rc)
        log_error("%s", e.msg);
    else if (!a->emitted)
        a->colls[target].counters.unchanged++;
    return 0; /* one bad document never stops the stream */
}

static int on_undecodable(void *ud, int target, const char *name, size_t len, struct fs_time ut,
                          const char *raw, size_t rawlen, const char *why)
{
    struct agent *a = ud;
    fserr e = {0};

    a->colls[target].last_event_us = agent_now_us();
    if (diff_undecodable(a->diff, target, name, len, ut, raw, rawlen, why, SINK_SRC_STREAM, &e))
        log_error("%s", e.msg);
    return 0; /* one bad document never stops the stream */
}

static int on_remove(void *ud, int target, const char *name, size_t len, struct fs_time rt)
{
    struct agent *a = ud;
    fserr e = {0};

    a->colls[target].last_event_us = agent_now_us();
    if (diff_remove(a->diff, target, name, len, rt, SINK_SRC_STREAM, &e) != 0)
        log_error("%s", e.msg);
    return 0;
}

static void on_reset(void *ud, int target)
{
    struct agent *a = ud;
    log_debug("%s: RESET: the server re-sends the whole set", a->colls[target].path);
    diff_reset(a->diff, target);
}

static int on_consistent(void *ud, int target, const char *token, struct fs_time rt,
                         bool after_reset)
{
    struct agent *a = ud;
    struct status_collection *sc = &a->colls[target];
    struct sink_event *ev;
    fserr e = {0};

    log_debug("%s: consistent at %lld%s: %llu documents received, %zu live", sc->path,
              (long long)diff_time_us(rt), after_reset ? " after a reset" : "",
              (unsigned long long)a->targets[target].cycle_docs, diff_live(a->diff, target));
    a->targets[target].cycle_docs = 0;
    if (after_reset && diff_sweep(a->diff, target, rt, SINK_SRC_STREAM, &e) != 0)
        log_error("%s", e.msg);
    ev = sink_event_new(SINK_OP_CHECKPOINT, target);
    ev->token = xstrdup(token);
    ev->read_us = diff_time_us(rt);
    emit(a, ev);
    if (!sc->current)
        log_info("%s: consistent at read time %lld (%zu live documents)", sc->path,
                 (long long)ev->read_us, diff_live(a->diff, target));
    sc->current = true;
    sc->last_consistent_us = agent_now_us();
    sc->read_time_us = diff_time_us(rt);
    return 0;
}

static size_t on_live_count(void *ud, int target)
{
    struct agent *a = ud;
    return diff_live(a->diff, target);
}

static void readd_later(uv_timer_t *t)
{
    struct agent_target *tg = t->data;
    fserr e = {0};

    if (tg->a->stopping)
        return;
    log_info("%s: listening again without a resume token", tg->a->colls[tg->index].path);
    if (listen_readd(stream_listen(tg->a->stream), tg->index, &e) != 0)
        log_error("%s", e.msg);
}

static void on_target_error(void *ud, int target, int code, const char *msg)
{
    struct agent *a = ud;
    struct agent_target *tg = &a->targets[target];

    a->colls[target].current = false;
    log_error("%s: the stream cannot prove the collection complete (code %d: %s); a full "
              "reload follows",
              a->colls[target].path, code, msg);
    /* REMOVE with a cause ends the target: listen again, without the refused token, after a
     * growing pause so that a permission error does not spin */
    tg->retry_ms = tg->retry_ms ? (tg->retry_ms * 2 > 300000 ? 300000 : tg->retry_ms * 2) : 1000;
    uv_timer_start(&tg->readd, readd_later, (uint64_t)tg->retry_ms, 0);
    if (a->resync) /* and the safety net at once */
        resync_doubt(a->resync, target, "the stream cannot prove the collection complete");
}

static const struct listen_callbacks listen_cb = {
    on_seen,     on_upsert,       on_remove, on_reset, on_consistent,
    on_live_count, on_target_error, NULL,      on_undecodable,
};

/* ---- back-pressure and sink notifications ----------------------------------------------- */

static bool should_pause(void *ud)
{
    struct agent *a = ud;
    uint64_t q = atomic_load(&sink_stats(a->sink)->queued);

    if (q >= (uint64_t)a->cfg->agent.queue_max_events) {
        if (!a->paused)
            log_info("MySQL is behind (%llu events queued): pausing the stream",
                     (unsigned long long)q);
        a->paused = true;
    }
    return a->paused;
}

static void on_sink_async(uv_async_t *h)
{
    struct agent *a = h->data;
    uint64_t q = atomic_load(&sink_stats(a->sink)->queued);

    lag_track_drain(a->lag);
    if (a->paused && q <= (uint64_t)a->cfg->agent.queue_max_events / 2) {
        a->paused = false;
        if (a->stream)
            stream_resume(a->stream);
    }
}

/* On the sink thread, after each commit (or state change). */
static void sink_notify(void *ud)
{
    struct agent *a = ud;
    lag_track_committed(a->lag, atomic_load(&sink_stats(a->sink)->committed), agent_now_us());
    uv_async_send(&a->sink_async);
}

static void on_stream_state(void *ud, bool up, const char *why)
{
    struct agent *a = ud;
    (void)why;
    if (a->resync)
        resync_stream_state(a->resync, up);
    if (!up)
        for (size_t i = 0; i < a->cfg->ncollections; i++)
            a->colls[i].current = false;
    agent_write_status(a);
}

/* ---- status ------------------------------------------------------------------------------ */

static void fill_lag(struct agent *a, int i, int64_t now_us)
{
    struct status_collection *sc = &a->colls[i];
    struct lag_summary ls;
    int64_t last_us;

    lag_track_get(a->lag, i, now_us, &ls, &last_us, &sc->lag_total_events, &sc->lag_total_s);
    sc->lag_ms = last_us / 1000;
    sc->lag_events = ls.events;
    sc->lag_p50_us = ls.p50_us;
    sc->lag_p95_us = ls.p95_us;
    sc->lag_p99_us = ls.p99_us;
    sc->lag_max_us = ls.max_us;
}

void agent_fill_status(struct agent *a, struct status *st)
{
    const struct sink_stats *ss = sink_stats(a->sink);
    char why[256] = "";
    enum sink_health sh = sink_health(a->sink, why, sizeof(why));

    memset(st, 0, sizeof(*st));
    st->now_us = agent_now_us();
    st->started_us = a->started_us;
    st->stream_up = a->stream && stream_up(a->stream);
    st->stream_since_us = a->stream ? stream_since_us(a->stream) : a->started_us;
    st->last_heartbeat_us = a->stream ? stream_last_data_us(a->stream) : 0;
    st->all_current = a->cfg->ncollections > 0;
    lag_track_drain(a->lag);
    for (size_t i = 0; i < a->cfg->ncollections; i++) {
        struct status_collection *sc = &a->colls[i];
        fill_lag(a, (int)i, st->now_us);
        if (a->resync)
            sc->resync = *resync_status(a->resync, (int)i);
        st->all_current = st->all_current && sc->current;
        sc->tracked = a->diff ? diff_tracked(a->diff, (int)i) : 0;
        sc->live = a->diff ? diff_live(a->diff, (int)i) : 0;
        if (sc->last_event_us > st->last_heartbeat_us)
            st->last_heartbeat_us = sc->last_event_us;
        st->totals.created += sc->counters.created;
        st->totals.updated += sc->counters.updated;
        st->totals.deleted += sc->counters.deleted;
        st->totals.unchanged += sc->counters.unchanged;
        st->totals.dead_letters += sc->counters.dead_letters;
        st->totals.simulated += sc->counters.simulated;
    }
    st->mysql_ok = sh == SINK_OK;
    st->mysql_retrying = sh == SINK_RETRYING;
    st->mysql_failed = sh == SINK_FAILED;
    snprintf(st->mysql_reason, sizeof(st->mysql_reason), "%s", why);
    st->dead_letters_growing =
        a->last_dead_letter_us && st->now_us - a->last_dead_letter_us < a->cfg->agent.silence_window_ms * 1000;
    st->silence_window_ms = a->cfg->agent.silence_window_ms;
    st->stream_grace_ms = a->cfg->agent.stream_grace_ms;
    st->pid = (int)getpid();
    snprintf(st->version, sizeof(st->version), "%s", FIRESYNC_VERSION);
    st->ncollections = a->cfg->ncollections;
    st->collections = a->colls;
    st->queue_depth = atomic_load(&ss->queued);
    st->index_bytes = a->diff ? diff_index_memory(a->diff) : 0;
    st->reconnects = a->stream ? stream_reconnects(a->stream) : 0;
    st->resync_overdue = a->resync && resync_overdue(a->resync, st->now_us);
    status_evaluate(st);
    if (a->fatal[0]) {
        /* the agent could not start and is stopping: that is the state to report */
        st->health = STATUS_UNHEALTHY;
        snprintf(st->reason, sizeof(st->reason), "could not start: %s", a->fatal);
    }
    if (st->health != a->health) {
        a->health = st->health;
        a->health_since_us = st->now_us;
        log_info("health: %s: %s", status_health_name(st->health), st->reason);
    }
    st->health_since_us = a->health_since_us;
}

void agent_write_status(struct agent *a)
{
    struct status st;
    fserr e = {0};

    agent_fill_status(a, &st);
    if (status_write(a->cfg->agent.status_file, &st, &e) != 0 && !a->status_error_logged) {
        log_error("%s", e.msg);
        a->status_error_logged = true;
    }
    if (a->cfg->agent.metrics_file && status_write_metrics(a->cfg->agent.metrics_file, &st, &e) != 0)
        log_warn("%s", e.msg);
    sd_notifyf(0, "WATCHDOG=1\nSTATUS=%s: %s", status_health_name(st.health), st.reason);
}

static void on_tick(uv_timer_t *t)
{
    agent_write_status(t->data);
}

/* ---- signals and shutdown --------------------------------------------------------------- */

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void stream_closed(void *ud)
{
    struct agent *a = ud;

    a->stream = NULL;
    log_info("stream closed; committing what is queued");
    sink_stop(a->sink); /* finishes the open batch and commits */
    resync_close(a->resync); /* after the sink: a page committing now still comes back */
    agent_write_status(a);
    sd_notify(0, "STOPPING=1");
    agent_control_close(a);
    close_handle((uv_handle_t *)&a->tick);
    close_handle((uv_handle_t *)&a->sink_async);
    close_handle((uv_handle_t *)&a->sigterm);
    close_handle((uv_handle_t *)&a->sigint);
    close_handle((uv_handle_t *)&a->sighup);
    for (size_t i = 0; a->targets && i < a->cfg->ncollections; i++)
        close_handle((uv_handle_t *)&a->targets[i].readd);
}

void agent_shutdown(struct agent *a)
{
    if (a->stopping)
        return;
    a->stopping = true;
    log_info("stopping");
    sd_notify(0, "STOPPING=1");
    resync_stop(a->resync); /* its REST reads go with the stream's HTTP client */
    if (a->stream)
        stream_close(a->stream, stream_closed, a);
    else
        stream_closed(a);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    log_info("received %s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    agent_shutdown(a);
}

static void on_hup(uv_signal_t *h, int signum)
{
    struct agent *a = h->data;
    (void)signum;
    agent_reload(a);
}

/* ---- reload ------------------------------------------------------------------------------ */

/* Keys of [agent] that may change while running: the loop alone reads them. */
static const char *live_keys[] = {"log_level", "silence_window", "stream_grace",
                                  "status_interval", "status_file", "metrics_file", NULL};

/* The printed configuration without the live keys and the header line. */
static void fixed_part(const struct cfg *c, buf *out)
{
    buf all;
    const char *p;

    buf_init(&all, 0);
    cfg_print(c, &all);
    for (p = buf_str(&all); *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        bool skip = *p == '#';
        for (const char **k = live_keys; *k && !skip; k++)
            skip = strncmp(p, *k, strlen(*k)) == 0 && p[strlen(*k)] == ' ';
        if (!skip)
            buf_add(out, p, n);
        p += n;
    }
    buf_release(&all);
}

void agent_reload(struct agent *a)
{
    struct cfg *n = NULL;
    buf errors, x, y;
    fserr e = {0};
    enum log_level lvl;

    buf_init(&errors, 0);
    if (cfg_load_file(a->config_path, &n, &errors, &e) != 0) {
        log_error("SIGHUP: %s; keeping the running configuration:", e.msg);
        for (char *l = strtok(errors.p ? errors.p : (char *)"", "\n"); l; l = strtok(NULL, "\n"))
            log_error("  %s", l);
        buf_release(&errors);
        return;
    }
    buf_release(&errors);
    buf_init(&x, 0);
    buf_init(&y, 0);
    fixed_part(a->cfg, &x);
    fixed_part(n, &y);
    if (strcmp(buf_str(&x), buf_str(&y)) != 0) {
        log_error("SIGHUP: the new configuration changes settings that need a restart (the "
                  "mapping, MySQL, Firestore, resync or batching); keeping the running one. "
                  "Restart firesync to apply it.");
    } else {
        struct cfg_agent *o = &a->cfg->agent, *m = &n->agent;
        char *t;
        t = o->log_level, o->log_level = m->log_level, m->log_level = t;
        t = o->status_file, o->status_file = m->status_file, m->status_file = t;
        t = o->metrics_file, o->metrics_file = m->metrics_file, m->metrics_file = t;
        o->silence_window_ms = m->silence_window_ms;
        o->stream_grace_ms = m->stream_grace_ms;
        o->status_interval_ms = m->status_interval_ms;
        if (log_level_parse(o->log_level, &lvl) == 0)
            log_set_level(lvl);
        uv_timer_start(&a->tick, on_tick, 0, (uint64_t)o->status_interval_ms);
        log_info("SIGHUP: configuration reloaded");
    }
    buf_release(&x);
    buf_release(&y);
    cfg_free(n);
}

/* ---- startup ----------------------------------------------------------------------------- */

static int load_row(void *ud, const struct sink_index_row *row)
{
    struct agent_target *tg = ud;
    return diff_load_row(tg->a->diff, tg->index, row);
}

static int prepare(struct agent *a, fserr *e)
{
    char *database = xasprintf("projects/%s/databases/%s", a->cfg->firestore.project_id,
                               a->cfg->firestore.database);
    int rc;

    /* the collections' status exists before anything can fail: a refusal at start still
     * writes a status file naming them */
    a->colls = xcalloc(a->cfg->ncollections + 1, sizeof(*a->colls));
    for (size_t i = 0; i < a->cfg->ncollections; i++) {
        struct status_collection *sc = &a->colls[i];
        snprintf(sc->path, sizeof(sc->path), "%s", a->cfg->collections[i].path);
        snprintf(sc->table, sizeof(sc->table), "%s", a->cfg->collections[i].table);
        snprintf(sc->resync.state, sizeof(sc->resync.state), "idle");
    }
    a->lag = lag_tracker_new(a->cfg->ncollections);
    a->sink = sink_new(a->cfg);
    sink_set_notify(a->sink, sink_notify, a);
    log_info("connecting to MySQL");
    rc = sink_start(a->sink, 0, e);
    if (!rc)
        rc = diff_new(a->cfg, database, emit, a, &a->diff, e);
    free(database);
    if (rc)
        return rc;
    sd_notify(0, "READY=1\nSTATUS=MySQL connected; starting the stream");
    a->targets = xcalloc(a->cfg->ncollections + 1, sizeof(*a->targets));
    for (size_t i = 0; i < a->cfg->ncollections; i++) {
        struct agent_target *tg = &a->targets[i];
        tg->a = a;
        tg->index = (int)i;
        uv_timer_init(&a->loop, &tg->readd); /* all of them: shutdown closes all */
        tg->readd.data = tg;
    }
    for (size_t i = 0; i < a->cfg->ncollections; i++) {
        struct status_collection *sc = &a->colls[i];
        struct agent_target *tg = &a->targets[i];
        rc = sink_load_index(a->cfg, (int)i, load_row, tg, e);
        if (!rc)
            rc = sink_load_checkpoint(a->cfg, sc->path, &tg->token, &tg->read_us, e);
        if (rc)
            return rc;
        log_info("%s: %zu documents tracked, %s", sc->path, diff_tracked(a->diff, (int)i),
                 tg->token && *tg->token ? "resuming from the checkpoint" : "no checkpoint: full load");
    }
    /* Loading the index went through MySQL result buffers as large as a table: give that
     * memory back to the system now rather than keep it for the life of the process. */
    malloc_trim(0);
    return 0;
}

static int start_stream(struct agent *a, fserr *e)
{
    static const struct stream_hooks hooks = {should_pause, on_stream_state};
    int rc = stream_new(&a->loop, a->cfg, &listen_cb, &hooks, a, &a->stream, e);

    for (size_t i = 0; !rc && i < a->cfg->ncollections; i++) {
        int t = stream_add_target(a->stream, a->cfg->collections[i].path, a->targets[i].token, e);
        if (t < 0)
            rc = t;
    }
    if (!rc)
        rc = stream_start(a->stream, e);
    return rc;
}

/* ---- the full resync (agent/resync.c) ------------------------------------------------------ */

static int resync_auth(void *ud, buf *out)
{
    struct agent *a = ud;
    return a->stream ? stream_auth_header(a->stream, out) : FS_EAGAIN;
}

static bool resync_matches(void *ud, int coll, const char *name, size_t len)
{
    struct agent *a = ud;
    return a->stream && listen_target_matches(stream_listen(a->stream), coll, name, len);
}

static void resync_changed(void *ud)
{
    agent_write_status(ud);
}

static int start_resync(struct agent *a, fserr *e)
{
    struct resync_env env = {&a->loop, a->cfg, stream_http(a->stream), stream_base_url(a->stream),
                             stream_database(a->stream), a->diff, a->sink,
                             {resync_auth, resync_matches, resync_changed}, a};

    return resync_new(&env, &a->resync, e);
}

static void init_handles(struct agent *a)
{
    uv_timer_init(&a->loop, &a->tick);
    a->tick.data = a;
    uv_async_init(&a->loop, &a->sink_async, on_sink_async);
    a->sink_async.data = a;
    uv_signal_init(&a->loop, &a->sigterm);
    uv_signal_init(&a->loop, &a->sigint);
    uv_signal_init(&a->loop, &a->sighup);
    a->sigterm.data = a->sigint.data = a->sighup.data = a;
    uv_signal_start(&a->sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&a->sigint, on_stop_signal, SIGINT);
    uv_signal_start(&a->sighup, on_hup, SIGHUP);
}

static void agent_release(struct agent *a)
{
    for (size_t i = 0; a->targets && i < a->cfg->ncollections; i++)
        free(a->targets[i].token);
    free(a->targets);
    resync_free(a->resync);
    free(a->colls);
    diff_free(a->diff);
    sink_free(a->sink);
    lag_tracker_free(a->lag); /* after the sink: its thread notes commits here */
    cfg_free(a->cfg);
    free(a->config_path);
}

int agent_run(const struct agent_options *opt, fserr *e)
{
    struct agent a = {0};
    buf errors;
    enum log_level lvl = LOG_LVL_INFO;
    int rc;

    buf_init(&errors, 0);
    rc = cfg_load_file(opt->config_path, &a.cfg, &errors, e);
    if (rc) {
        if (errors.len)
            fprintf(stderr, "%s", buf_str(&errors));
        buf_release(&errors);
        return 1;
    }
    buf_release(&errors);
    log_level_parse(a.cfg->agent.log_level, &lvl);
    log_set_level(lvl);
    if (a.cfg->mysql.password)
        log_secret_pin(a.cfg->mysql.password);
    a.config_path = xstrdup(opt->config_path);
    a.started_us = agent_now_us();
    a.health = STATUS_UNKNOWN;
    uv_loop_init(&a.loop);
    init_handles(&a);
    signal(SIGPIPE, SIG_IGN);
    rc = prepare(&a, e);
    if (!rc)
        rc = agent_control_start(&a, e);
    if (!rc && opt->simulate_file)
        rc = agent_simulate_file(&a, opt->simulate_file, e);
    if (!rc)
        rc = start_stream(&a, e);
    if (!rc)
        rc = start_resync(&a, e);
    if (rc) {
        log_error("%s", e->msg);
        snprintf(a.fatal, sizeof(a.fatal), "%s", e->msg);
        a.exit_code = 1;
        agent_shutdown(&a);
    } else {
        log_info("running: %zu collections, status in %s", a.cfg->ncollections,
                 a.cfg->agent.status_file);
        uv_timer_start(&a.tick, on_tick, 0, (uint64_t)a.cfg->agent.status_interval_ms);
    }
    uv_run(&a.loop, UV_RUN_DEFAULT);
    uv_loop_close(&a.loop);
    agent_release(&a);
    return a.exit_code;
}
