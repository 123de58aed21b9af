/*
 * diff.c - document versions against the applied index, producing sink events (see diff.h).
 *
 * Owns, per collection, the parsed field paths of its columns and its applied index. Holds no
 * document beyond the call that handles it: a version is converted to cells, hashed, compared,
 * and either handed to the sink in an event or dropped.
 */
#include "diff/diff.h"

#include "common/log.h"
#include "common/xalloc.h"
#include "diff/convert.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct coll {
    const struct cfg_collection *cfg;
    struct fsval_path *paths; /* one per column */
    unsigned ncells;          /* columns + extra */
    diff_index *ix;
    uint32_t epoch;
};

struct diff {
    const struct cfg *cfg;
    char *docroot; /* "projects/P/databases/D/documents/" */
    size_t rootlen;
    struct coll *c;
    size_t n;
    diff_emit_fn emit;
    void *ud;
    struct diff_stats stats;
};

int diff_new(const struct cfg *cfg, const char *database, diff_emit_fn emit, void *ud,
             struct diff **out, fserr *e)
{
    struct diff *d = xcalloc(1, sizeof(*d));

    d->cfg = cfg;
    d->docroot = xasprintf("%s/documents/", database);
    d->rootlen = strlen(d->docroot);
    d->emit = emit;
    d->ud = ud;
    d->n = cfg->ncollections;
    d->c = xcalloc(d->n ? d->n : 1, sizeof(*d->c));
    for (size_t i = 0; i < d->n; i++) {
        struct coll *c = &d->c[i];
        c->cfg = &cfg->collections[i];
        c->ncells = (unsigned)c->cfg->ncolumns + (c->cfg->extra_column ? 1 : 0);
        c->paths = xcalloc(c->cfg->ncolumns ? c->cfg->ncolumns : 1, sizeof(*c->paths));
        c->ix = diff_index_new(c->ncells);
        for (size_t k = 0; k < c->cfg->ncolumns; k++) {
            if (fsval_path_parse(c->cfg->columns[k].field, &c->paths[k], e) != 0) {
                fserr_prefix(e, "collection %s, column %s", c->cfg->path,
                             c->cfg->columns[k].name);
                diff_free(d);
                return FS_ECONFIG;
            }
        }
    }
    *out = d;
    return 0;
}

void diff_free(struct diff *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n; i++) {
        struct coll *c = &d->c[i];
        for (size_t k = 0; c->paths && k < c->cfg->ncolumns; k++)
            fsval_path_release(&c->paths[k]);
        free(c->paths);
        diff_index_free(c->ix);
    }
    free(d->c);
    free(d->docroot);
    free(d);
}

int diff_key(const struct diff *d, int coll, const char *name, size_t len, const char **key,
             size_t *keylen)
{
    const char *rel, *slash;
    size_t rl;

    if (len <= d->rootlen || memcmp(name, d->docroot, d->rootlen) != 0)
        return FS_EINVAL;
    rel = name + d->rootlen;
    rl = len - d->rootlen;
    if (d->c[coll].cfg->key == CFG_KEY_PATH) {
        *key = rel;
        *keylen = rl;
        return 0;
    }
    slash = memrchr(rel, '/', rl);
    *key = slash ? slash + 1 : rel;
    *keylen = (size_t)(rel + rl - *key);
    return 0;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool diff_seen(struct diff *d, int coll, const char *name, size_t len, struct fs_time ut)
{
    struct coll *c = &d->c[coll];
    const char *key;
    size_t kl;
    struct diff_entry *en;

    if (diff_key(d, coll, name, len, &key, &kl) != 0)
        return false;
    en = diff_index_get(c->ix, key, kl);
    if (!en || !(en->flags & DIFF_E_LIVE) || en->time_us != diff_time_us(ut))
        return false;
    en->epoch = c->epoch;
    d->stats.unchanged++;
    return true;
}

static struct sink_event *keyed_event(enum sink_op op, int coll, enum sink_source src,
                                      const char *key, size_t kl)
{
    struct sink_event *ev = sink_event_new(op, coll);
    ev->source = src;
    ev->key = xstrndup(key, kl);
    ev->keylen = kl;
    return ev;
}

static int dead_letter(struct diff *d, int coll, struct fsdoc *doc, enum sink_source src,
                       const char *reason)
{
    struct sink_event *ev = sink_event_new(SINK_OP_DEADLETTER, coll);
    buf raw;

    buf_init(&raw, 16u << 20);
    ev->source = src;
    ev->doc_name = xstrdup(doc->name);
    ev->reason = xstrdup(reason);
    ev->update_us = diff_time_us(doc->update_time);
    if (fsval_to_json(&doc->fields, &raw) == 0)
        ev->raw = buf_take(&raw);
    buf_release(&raw);
    d->stats.dead_letters++;
    log_warn("dead letter: %s: %s", doc->name, reason);
    return d->emit(d->ud, ev);
}

/* Converts every cell of doc for coll into ev; on a value that does not fit, returns its
 * error with the reason in e. */
static int convert_all(struct coll *c, const struct fsdoc *doc, struct sink_event *ev, fserr *e)
{
    ev->cells = xcalloc(c->ncells ? c->ncells : 1, sizeof(*ev->cells));
    ev->hashes = xcalloc(c->ncells ? c->ncells : 1, sizeof(*ev->hashes));
    ev->ncells = c->ncells;
    for (size_t k = 0; k < c->cfg->ncolumns; k++) {
        const fsval *v = fsval_lookup(&doc->fields, &c->paths[k]);
        int rc = diff_convert(&c->cfg->columns[k], c->cfg->columns[k].field, v, &ev->cells[k], e);
        if (rc)
            return rc;
        ev->hashes[k] = diff_cell_hash(&ev->cells[k]);
    }
    if (c->cfg->extra_column) {
        size_t k = c->cfg->ncolumns;
        int rc = diff_extra(&doc->fields, c->paths, c->cfg->ncolumns, &ev->cells[k], e);
        if (rc)
            return rc;
        ev->hashes[k] = diff_cell_hash(&ev->cells[k]);
    }
    return 0;
}

int diff_upsert(struct diff *d, int coll, struct fsdoc *doc, enum sink_source src, fserr *e)
{
    struct coll *c = &d->c[coll];
    const char *key;
    size_t kl;
    struct diff_entry *en;
    struct sink_event *ev;
    int64_t ut = diff_time_us(doc->update_time);
    bool live;
    int rc = 0;
    fserr conv = {0};

    if (diff_key(d, coll, doc->name, strlen(doc->name), &key, &kl) != 0 ||
        !(en = diff_index_put(c->ix, key, kl))) {
        rc = fserr_set(e, FS_EINVAL, "%s is not a document of %s", doc->name, c->cfg->path);
        goto out;
    }
    live = en->flags & DIFF_E_LIVE;
    en->epoch = c->epoch;
    if ((live && ut <= en->time_us) || (!live && en->time_us && ut <= en->time_us)) {
        if (ut == en->time_us && live)
            d->stats.unchanged++;
        else
            d->stats.stale++;
        goto out;
    }
    ev = keyed_event(SINK_OP_UPSERT, coll, src, key, kl);
    ev->create_us = diff_time_us(doc->create_time);
    ev->update_us = ut;
    ev->create = !live;
    if (convert_all(c, doc, ev, &conv) != 0) {
        sink_event_free(ev);
        en->time_us = ut; /* retried when the document changes, or by a resync */
        diff_index_set_live(c->ix, en, true);
        rc = dead_letter(d, coll, doc, src, conv.msg);
        goto out;
    }
    for (unsigned k = 0; k < c->ncells; k++)
        if (!live || en->hashes[k] != ev->hashes[k])
            ev->changed |= UINT64_C(1) << k;
    memcpy(en->hashes, ev->hashes, c->ncells * sizeof(uint64_t));
    en->time_us = ut;
    diff_index_set_live(c->ix, en, true);
    if (!ev->changed) { /* only unmapped fields changed */
        d->stats.unchanged++;
        sink_event_free(ev);
        goto out;
    }
    rc = d->emit(d->ud, ev);
out:
    fsdoc_release(doc);
    return rc;
}

int diff_undecodable(struct diff *d, int coll, const char *name, size_t len,
                     struct fs_time update_time, const char *raw, size_t rawlen,
                     const char *why, enum sink_source src, fserr *e)
{
    struct coll *c = &d->c[coll];
    const char *key;
    size_t kl;
    struct diff_entry *en;
    struct sink_event *ev;
    int64_t ut = diff_time_us(update_time);
    bool live;

    if (diff_key(d, coll, name, len, &key, &kl) != 0 || !(en = diff_index_put(c->ix, key, kl)))
        return fserr_set(e, FS_EINVAL, "%.*s is not a document of %s", (int)len, name,
                         c->cfg->path);
    live = en->flags & DIFF_E_LIVE;
    en->epoch = c->epoch;
    if ((live && ut <= en->time_us) || (!live && en->time_us && ut <= en->time_us)) {
        d->stats.stale++;
        return 0;
    }
    en->time_us = ut; /* retried when the document changes, or by a resync */
    diff_index_set_live(c->ix, en, true);
    ev = sink_event_new(SINK_OP_DEADLETTER, coll);
    ev->source = src;
    ev->doc_name = xstrndup(name, len);
    ev->reason = xstrdup(why);
    ev->update_us = ut;
    ev->raw = xstrndup(raw, rawlen);
    d->stats.dead_letters++;
    log_warn("dead letter: %s: %s", ev->doc_name, why);
    return d->emit(d->ud, ev);
}

static int emit_delete(struct diff *d, int coll, struct diff_entry *en, int64_t del_us,
                       enum sink_source src)
{
    struct sink_event *ev = keyed_event(SINK_OP_DELETE, coll, src, diff_entry_key(en), en->keylen);
    ev->delete_us = del_us;
    diff_index_set_live(d->c[coll].ix, en, false);
    en->time_us = del_us;
    return d->emit(d->ud, ev);
}

int diff_remove(struct diff *d, int coll, const char *name, size_t len, struct fs_time read_time,
                enum sink_source src, fserr *e)
{
    struct coll *c = &d->c[coll];
    const char *key;
    size_t kl;
    struct diff_entry *en;
    int64_t rt = read_time.seconds ? diff_time_us(read_time) : now_us();

    if (diff_key(d, coll, name, len, &key, &kl) != 0 || !(en = diff_index_put(c->ix, key, kl)))
        return fserr_set(e, FS_EINVAL, "%.*s is not a document of %s", (int)len, name,
                         c->cfg->path);
    if (rt <= en->time_us || (!(en->flags & DIFF_E_LIVE) && en->time_us)) {
        /* a newer version, or already a tombstone */
        d->stats.stale++;
        return 0;
    }
    return emit_delete(d, coll, en, rt, src);
}

void diff_reset(struct diff *d, int coll)
{
    d->c[coll].epoch++;
}

struct sweep {
    struct diff *d;
    int coll;
    int64_t rt;
    enum sink_source src;
};

static int sweep_one(void *ud, struct diff_entry *en)
{
    struct sweep *s = ud;
    struct coll *c = &s->d->c[s->coll];

    if (!(en->flags & DIFF_E_LIVE) || en->epoch == c->epoch)
        return 0;
    if (s->rt <= en->time_us) /* changed after the snapshot: not ours to delete */
        return 0;
    return emit_delete(s->d, s->coll, en, s->rt, s->src);
}

int diff_sweep(struct diff *d, int coll, struct fs_time read_time, enum sink_source src,
               fserr *e)
{
    struct sweep s = {d, coll, diff_time_us(read_time), src};
    int rc = diff_index_each(d->c[coll].ix, sweep_one, &s);
    if (rc)
        return fserr_set(e, rc, "sweeping %s failed", d->c[coll].cfg->path);
    return 0;
}

int diff_load_row(struct diff *d, int coll, const struct sink_index_row *row)
{
    struct coll *c = &d->c[coll];
    struct diff_entry *en = diff_index_put(c->ix, row->key, row->keylen);

    if (!en)
        return FS_ERANGE;
    if (row->delete_us && row->delete_us >= row->update_us) {
        en->time_us = row->delete_us;
        diff_index_set_live(c->ix, en, false);
    } else {
        en->time_us = row->update_us;
        diff_index_set_live(c->ix, en, true);
    }
    /* hashes written by another mapping (a column added since) simply differ: rewritten */
    for (unsigned k = 0; k < c->ncells; k++)
        en->hashes[k] = k < row->nhashes ? row->hashes[k] : 0;
    en->epoch = c->epoch;
    return 0;
}

size_t diff_live(const struct diff *d, int coll)
{
    return diff_index_live(d->c[coll].ix);
}

size_t diff_tracked(const struct diff *d, int coll)
{
    return diff_index_count(d->c[coll].ix);
}

size_t diff_index_memory(const struct diff *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += diff_index_bytes(d->c[i].ix);
    return n;
}

const struct diff_stats *diff_stats(const struct diff *d)
{
    return &d->stats;
}

unsigned diff_ncells(const struct diff *d, int coll)
{
    return d->c[coll].ncells;
}

/* ---- for the full resync --------------------------------------------------------------------- */

int diff_cells(struct diff *d, int coll, const struct fsdoc *doc, struct sink_cell **cells,
               uint64_t **hashes, size_t *ncells, fserr *e)
{
    struct sink_event tmp = {0};
    int rc = convert_all(&d->c[coll], doc, &tmp, e);

    if (rc) {
        for (size_t i = 0; i < tmp.ncells; i++)
            diff_cell_release(&tmp.cells[i]);
        free(tmp.cells);
        free(tmp.hashes);
        return rc;
    }
    *cells = tmp.cells;
    *hashes = tmp.hashes;
    *ncells = tmp.ncells;
    return 0;
}

bool diff_peek(const struct diff *d, int coll, const char *key, size_t len, int64_t *time_us,
               bool *live)
{
    const struct diff_entry *en = diff_index_get(d->c[coll].ix, key, len);

    if (!en)
        return false;
    *time_us = en->time_us;
    *live = en->flags & DIFF_E_LIVE;
    return true;
}

void diff_refresh(struct diff *d, int coll, const struct diff_refresh *r)
{
    struct coll *c = &d->c[coll];
    struct diff_entry *en = diff_index_get(c->ix, r->key, r->keylen);
    bool live = en && (en->flags & DIFF_E_LIVE);
    bool unmoved = r->seen && (en ? r->seen_exists && r->seen_us == en->time_us &&
                                        r->seen_live == live
                                  : !r->seen_exists);
    bool newer =
        en && (r->time_us > en->time_us || (r->time_us == en->time_us && r->live == live));

    if (en && !unmoved && !newer)
        return; /* the stream moved it past what the page found */
    if (!en && !(en = diff_index_put(c->ix, r->key, r->keylen)))
        return;
    en->time_us = r->time_us;
    diff_index_set_live(c->ix, en, r->live);
    if (r->live && r->hashes)
        memcpy(en->hashes, r->hashes, c->ncells * sizeof(uint64_t));
}
