/*
 * tail.c - `firesync tail`: the operator's view of the stream. Prints each document event the
 * agent would act on as one JSON line, and each consistent point, without touching MySQL.
 *
 * It listens exactly as the agent does (agent/stream.c) and keeps the same kind of applied
 * index (diff/index.c, names and update times only), so a RESET that re-sends unchanged
 * documents prints nothing, and documents missing from a RESET print as deletes at the next
 * consistent point. Owns that index and the loop's signal handles.
 */
#include "agent/tail.h"

#include "agent/stream.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "diff/convert.h"
#include "diff/index.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tail {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct stream *s;
    diff_index **ix; /* one per target, keyed by full document name */
    uint32_t *epoch;
    char **paths;
    int n;
    int exit_code;
    bool closing;
};

static void line_begin(buf *b, const char *op, const char *path)
{
    buf_reset(b);
    buf_printf(b, "{\"op\":\"%s\",\"collection\":", op);
    fsval v = {.type = FSVAL_STRING};
    v.u.s.p = (char *)path;
    v.u.s.len = strlen(path);
    fsval_to_json(&v, b);
}

static void add_string(buf *b, const char *key, const char *s, size_t n)
{
    fsval v = {.type = FSVAL_STRING};
    v.u.s.p = (char *)s;
    v.u.s.len = n;
    buf_printf(b, ",\"%s\":", key);
    fsval_to_json(&v, b);
}

static void add_time(buf *b, const char *key, struct fs_time t)
{
    char ts[FSVAL_TIME_BUFSZ];
    if (fsval_time_format(t, ts) < 0)
        snprintf(ts, sizeof(ts), "?");
    buf_printf(b, ",\"%s\":\"%s\"", key, ts);
}

static void line_end(buf *b)
{
    buf_adds(b, "}\n");
    fwrite(b->p, 1, b->len, stdout);
    fflush(stdout);
}

static bool t_seen(void *ud, int target, const char *name, size_t len, struct fs_time ut)
{
    struct tail *t = ud;
    struct diff_entry *en = diff_index_get(t->ix[target], name, len);

    if (!en || !(en->flags & DIFF_E_LIVE) || en->time_us != diff_time_us(ut))
        return false;
    en->epoch = t->epoch[target];
    return true;
}

static int t_upsert(void *ud, int target, struct fsdoc *doc)
{
    struct tail *t = ud;
    struct diff_entry *en = diff_index_put(t->ix[target], doc->name, strlen(doc->name));
    int64_t ut = diff_time_us(doc->update_time);
    buf b;

    buf_init(&b, 0);
    if (en && (en->time_us < ut || !(en->flags & DIFF_E_LIVE))) {
        line_begin(&b, en->flags & DIFF_E_LIVE ? "update" : "create", t->paths[target]);
        add_string(&b, "name", doc->name, strlen(doc->name));
        add_time(&b, "create_time", doc->create_time);
        add_time(&b, "update_time", doc->update_time);
        buf_adds(&b, ",\"fields\":");
        fsval_to_json(&doc->fields, &b);
        line_end(&b);
        en->time_us = ut;
        diff_index_set_live(t->ix[target], en, true);
    }
    if (en)
        en->epoch = t->epoch[target];
    buf_release(&b);
    fsdoc_release(doc);
    return 0;
}

/* A document the decoder refused: printed as "dead_letter" with the reason, as the agent would
 * dead-letter it; the stream goes on. */
static int t_undecodable(void *ud, int target, const char *name, size_t len, struct fs_time ut,
                         const char *raw, size_t rawlen, const char *why)
{
    struct tail *t = ud;
    struct diff_entry *en = diff_index_put(t->ix[target], name, len);
    int64_t us = diff_time_us(ut);
    buf b;

    (void)raw;
    (void)rawlen;
    if (en && en->time_us >= us)
        return 0;
    buf_init(&b, 0);
    line_begin(&b, "dead_letter", t->paths[target]);
    add_string(&b, "name", name, len);
    add_time(&b, "update_time", ut);
    add_string(&b, "reason", why, strlen(why));
    line_end(&b);
    buf_release(&b);
    if (en) {
        en->time_us = us;
        diff_index_set_live(t->ix[target], en, true);
        en->epoch = t->epoch[target];
    }
    return 0;
}

static void print_delete(struct tail *t, int target, const char *name, size_t len, struct fs_time rt)
{
    buf b;
    buf_init(&b, 0);
    line_begin(&b, "delete", t->paths[target]);
    add_string(&b, "name", name, len);
    add_time(&b, "read_time", rt);
    line_end(&b);
    buf_release(&b);
}

static int t_remove(void *ud, int target, const char *name, size_t len, struct fs_time rt)
{
    struct tail *t = ud;
    struct diff_entry *en = diff_index_put(t->ix[target], name, len);

    if (en && (en->flags & DIFF_E_LIVE)) {
        diff_index_set_live(t->ix[target], en, false);
        en->time_us = diff_time_us(rt);
    }
    print_delete(t, target, name, len, rt);
    return 0;
}

static void t_reset(void *ud, int target)
{
    struct tail *t = ud;
    t->epoch[target]++;
}

struct sweep {
    struct tail *t;
    int target;
    struct fs_time rt;
};

static int sweep_one(void *ud, struct diff_entry *en)
{
    struct sweep *s = ud;
    if ((en->flags & DIFF_E_LIVE) && en->epoch != s->t->epoch[s->target]) {
        diff_index_set_live(s->t->ix[s->target], en, false);
        print_delete(s->t, s->target, diff_entry_key(en), en->keylen, s->rt);
    }
    return 0;
}

static int t_consistent(void *ud, int target, const char *token, struct fs_time rt,
                        bool after_reset)
{
    struct tail *t = ud;
    struct sweep sw = {t, target, rt};
    buf b;

    if (after_reset)
        diff_index_each(t->ix[target], sweep_one, &sw);
    buf_init(&b, 0);
    line_begin(&b, "consistent", t->paths[target]);
    add_time(&b, "read_time", rt);
    add_string(&b, "resume_token", token, strlen(token));
    buf_printf(&b, ",\"live\":%zu", diff_index_live(t->ix[target]));
    line_end(&b);
    buf_release(&b);
    return 0;
}

static size_t t_live(void *ud, int target)
{
    struct tail *t = ud;
    return diff_index_live(t->ix[target]);
}

static void t_error(void *ud, int target, int code, const char *msg)
{
    struct tail *t = ud;
    buf b;
    buf_init(&b, 0);
    line_begin(&b, "error", t->paths[target]);
    buf_printf(&b, ",\"code\":%d", code);
    add_string(&b, "message", msg, strlen(msg));
    line_end(&b);
    buf_release(&b);
    log_error("tail: %s: the server removed the target (code %d): %s", t->paths[target], code, msg);
}

static void stream_done(void *ud)
{
    struct tail *t = ud;
    uv_close((uv_handle_t *)&t->sigint, NULL);
    uv_close((uv_handle_t *)&t->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct tail *t = h->data;
    (void)signum;
    if (t->closing)
        return;
    t->closing = true;
    stream_close(t->s, stream_done, t);
}

int tail_run(const struct cfg *cfg, const char *only, fserr *e)
{
    static const struct listen_callbacks cb = {t_seen,  t_upsert, t_remove, t_reset,
                                               t_consistent, t_live, t_error, NULL,
                                               t_undecodable};
    struct tail t = {0};
    int rc;

    uv_loop_init(&t.loop);
    rc = stream_new(&t.loop, cfg, &cb, NULL, &t, &t.s, e);
    if (rc)
        goto out;
    for (size_t i = 0; i < cfg->ncollections + (only ? 1 : 0); i++) {
        const char *path = i < cfg->ncollections ? cfg->collections[i].path : only;
        if (only && i < cfg->ncollections && strcmp(path, only) != 0)
            continue;
        if (only && i == cfg->ncollections && t.n > 0)
            break; /* --collection named a configured collection */
        rc = stream_add_target(t.s, path, NULL, e);
        if (rc < 0)
            goto close;
        t.ix = xrealloc(t.ix, (size_t)(t.n + 1) * sizeof(*t.ix));
        t.epoch = xrealloc(t.epoch, (size_t)(t.n + 1) * sizeof(*t.epoch));
        t.paths = xrealloc(t.paths, (size_t)(t.n + 1) * sizeof(*t.paths));
        t.ix[t.n] = diff_index_new(0);
        t.epoch[t.n] = 0;
        t.paths[t.n] = xstrdup(path);
        t.n++;
    }
    rc = 0;
    if (t.n == 0) {
        rc = fserr_set(e, FS_ECONFIG, "nothing to tail: the configuration maps no collection; "
                                      "name one with --collection");
        goto close;
    }
    uv_signal_init(&t.loop, &t.sigint);
    uv_signal_init(&t.loop, &t.sigterm);
    t.sigint.data = t.sigterm.data = &t;
    uv_signal_start(&t.sigint, on_signal, SIGINT);
    uv_signal_start(&t.sigterm, on_signal, SIGTERM);
    rc = stream_start(t.s, e);
    if (rc) {
        on_signal(&t.sigint, SIGINT);
    }
    uv_run(&t.loop, UV_RUN_DEFAULT);
    goto out;
close:
    t.closing = true;
    stream_close(t.s, NULL, NULL);
    uv_run(&t.loop, UV_RUN_DEFAULT);
out:
    uv_loop_close(&t.loop);
    for (int i = 0; i < t.n; i++) {
        diff_index_free(t.ix[i]);
        free(t.paths[i]);
    }
    free(t.ix);
    free(t.epoch);
    free(t.paths);
    return rc;
}
