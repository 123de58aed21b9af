/*
 * listen.c - the meaning of ListenResponses per target (see listen.h for the rules).
 *
 * Owns the target table: each configured collection's path, its query, its protocol targetId,
 * its latest resume token, and the few flags that decide completeness (pending add/remove
 * requests, current, reset pending). Documents are never kept here: an unchanged one is only
 * looked at (name and update time, straight from the tokens), a changed one is decoded and moved
 * to the owner. This keeps memory bounded by the number of targets, not by the stream.
 */
#include "firestore/listen.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct target {
    char *path;          /* as configured: "employees", "users/ * /orders" */
    char *parent;        /* resource name of the parent of the collection(s) */
    char *collection_id; /* last segment of path */
    char *prefix;        /* "projects/P/databases/D/documents/" + path + "/" (non-group) */
    char **segs;         /* group pattern segments ("*" matches any id); NULL otherwise */
    size_t nsegs;
    bool group;
    int id;             /* protocol targetId */
    char *token;        /* latest resume token, base64; NULL when none */
    int pending;        /* add/remove requests not yet answered by ADD/REMOVE */
    bool current;       /* CURRENT seen since the last (re)add or RESET */
    bool reset_pending; /* a reset happened; deletes are due at the next consistent point */
    bool reset_on_add;  /* the pending add carries no resume token: a full load, a reset */
    bool filter_retry;  /* re-listened once after an existence-filter mismatch */
};

struct listen_state {
    char *database; /* "projects/P/databases/D" */
    char *docroot;  /* database + "/documents" */
    struct listen_callbacks cb;
    void *ud;
    void *send_ud; /* passed to cb.send */
    struct target *t;
    int n;
    buf scratch; /* unescaped names */
};

listen_state *listen_new(const char *database, const struct listen_callbacks *cb, void *ud)
{
    listen_state *ls = xcalloc(1, sizeof(*ls));

    ls->database = xstrdup(database);
    ls->docroot = xasprintf("%s/documents", database);
    ls->cb = *cb;
    ls->ud = ud;
    ls->send_ud = ud;
    buf_init(&ls->scratch, 64 * 1024);
    return ls;
}

void listen_set_send(listen_state *ls, int (*fn)(void *send_ud, const char *json), void *send_ud)
{
    ls->cb.send = fn;
    ls->send_ud = send_ud;
}

void listen_free(listen_state *ls)
{
    if (!ls)
        return;
    for (int i = 0; i < ls->n; i++) {
        struct target *t = &ls->t[i];
        free(t->path);
        free(t->parent);
        free(t->collection_id);
        free(t->prefix);
        free(t->token);
        for (size_t k = 0; k < t->nsegs; k++)
            free(t->segs[k]);
        free(t->segs);
    }
    free(ls->t);
    free(ls->database);
    free(ls->docroot);
    buf_release(&ls->scratch);
    free(ls);
}

/* Splits path into segments; validates "a", "a/b/c", "a/ * /c" shapes. */
static int split_path(const char *path, char ***out, size_t *n)
{
    char **segs = NULL;
    size_t k = 0;
    const char *s = path;

    if (!*path)
        return FS_EINVAL;
    for (;;) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0) {
            for (size_t i = 0; i < k; i++)
                free(segs[i]);
            free(segs);
            return FS_EINVAL;
        }
        segs = xrealloc(segs, (k + 1) * sizeof(*segs));
        segs[k++] = xstrndup(s, len);
        if (!e)
            break;
        s = e + 1;
    }
    if (k % 2 == 0) { /* a document path, not a collection */
        for (size_t i = 0; i < k; i++)
            free(segs[i]);
        free(segs);
        return FS_EINVAL;
    }
    *out = segs;
    *n = k;
    return 0;
}

int listen_add_target(listen_state *ls, const char *path, const char *resume_token, fserr *e)
{
    struct target t = {0};
    char **segs;
    size_t n;
    buf parent;

    if (split_path(path, &segs, &n) != 0)
        return fserr_set(e, FS_EINVAL, "\"%s\" is not a collection path", path);
    buf_init(&parent, 0);
    buf_adds(&parent, ls->docroot);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(segs[i], "*") == 0) {
            if (i % 2 == 0) {
                for (size_t k = 0; k < n; k++)
                    free(segs[k]);
                free(segs);
                buf_release(&parent);
                return fserr_set(e, FS_EINVAL, "\"%s\": '*' may stand only for document ids",
                                 path);
            }
            t.group = true;
        }
    }
    for (size_t i = 0; !t.group && i + 1 < n; i++)
        buf_printf(&parent, "/%s", segs[i]);
    t.path = xstrdup(path);
    t.collection_id = xstrdup(segs[n - 1]);
    if (t.group) {
        t.segs = segs;
        t.nsegs = n;
        t.parent = xstrdup(ls->docroot);
        buf_release(&parent);
    } else {
        for (size_t k = 0; k < n; k++)
            free(segs[k]);
        free(segs);
        t.parent = buf_take(&parent);
        t.prefix = xasprintf("%s/%s/", ls->docroot, path);
    }
    t.id = 2 * (ls->n + 1); /* even ids for query targets, as the SDKs use */
    t.token = resume_token && *resume_token ? xstrdup(resume_token) : NULL;
    ls->t = xrealloc(ls->t, (size_t)(ls->n + 1) * sizeof(*ls->t));
    ls->t[ls->n] = t;
    return ls->n++;
}

bool listen_target_matches(const listen_state *ls, int target, const char *name, size_t len)
{
    const struct target *t = &ls->t[target];
    size_t rl = strlen(ls->docroot);
    const char *p, *end = name + len;

    if (!t->group) {
        size_t pl = strlen(t->prefix);
        return len > pl && memcmp(name, t->prefix, pl) == 0 &&
               !memchr(name + pl, '/', len - pl);
    }
    if (len <= rl + 1 || memcmp(name, ls->docroot, rl) != 0 || name[rl] != '/')
        return false;
    p = name + rl + 1;
    for (size_t i = 0; i <= t->nsegs; i++) { /* the pattern's segments, then the document id */
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t sl = slash ? (size_t)(slash - p) : (size_t)(end - p);
        if (sl == 0)
            return false;
        if (i < t->nsegs && strcmp(t->segs[i], "*") != 0 &&
            (strlen(t->segs[i]) != sl || memcmp(t->segs[i], p, sl) != 0))
            return false;
        if (i == t->nsegs)
            return slash == NULL;
        if (!slash)
            return false;
        p = slash + 1;
    }
    return false;
}

/* ---- requests ---------------------------------------------------------------------------- */

static void json_string(buf *b, const char *s)
{
    buf_addc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            buf_printf(b, "\\u%04x", c);
        else
            buf_addc(b, (char)c);
    }
    buf_addc(b, '"');
}

static int send_add(listen_state *ls, struct target *t, bool filter_mismatch, fserr *e)
{
    buf b;
    int rc;

    buf_init(&b, 0);
    buf_adds(&b, "{\"database\":");
    json_string(&b, ls->database);
    if (filter_mismatch)
        buf_adds(&b, ",\"labels\":{\"goog-listen-tags\":\"existence-filter-mismatch\"}");
    buf_adds(&b, ",\"addTarget\":{\"query\":{\"parent\":");
    json_string(&b, t->parent);
    buf_adds(&b, ",\"structuredQuery\":{\"from\":[{\"collectionId\":");
    json_string(&b, t->collection_id);
    if (t->group)
        buf_adds(&b, ",\"allDescendants\":true");
    buf_printf(&b, "}]}},\"targetId\":%d", t->id);
    if (t->token) {
        buf_adds(&b, ",\"resumeToken\":");
        json_string(&b, t->token);
    }
    buf_adds(&b, "}}");
    rc = ls->cb.send(ls->send_ud, buf_str(&b));
    buf_release(&b);
    if (rc)
        return fserr_set(e, rc, "listen: sending addTarget for %s failed", t->path);
    t->pending++;
    t->current = false;
    t->reset_on_add = t->token == NULL;
    return 0;
}

static int send_remove(listen_state *ls, struct target *t, fserr *e)
{
    buf b;
    int rc;

    buf_init(&b, 0);
    buf_adds(&b, "{\"database\":");
    json_string(&b, ls->database);
    buf_printf(&b, ",\"removeTarget\":%d}", t->id);
    rc = ls->cb.send(ls->send_ud, buf_str(&b));
    buf_release(&b);
    if (rc)
        return fserr_set(e, rc, "listen: sending removeTarget for %s failed", t->path);
    t->pending++;
    return 0;
}

int listen_connect(listen_state *ls, fserr *e)
{
    for (int i = 0; i < ls->n; i++) {
        struct target *t = &ls->t[i];
        int rc;
        t->pending = 0;
        t->current = false;
        /* a RESET cut short by the old session proves nothing: the new session resumes from
         * the last consistent token and re-sends everything after it */
        t->reset_pending = false;
        rc = send_add(ls, t, false, e);
        if (rc)
            return rc;
    }
    return 0;
}

int listen_relisten(listen_state *ls, int target, fserr *e)
{
    struct target *t = &ls->t[target];
    int rc = send_remove(ls, t, e);

    if (rc)
        return rc;
    free(t->token);
    t->token = NULL;
    return send_add(ls, t, t->filter_retry, e);
}

int listen_readd(listen_state *ls, int target, fserr *e)
{
    struct target *t = &ls->t[target];

    free(t->token);
    t->token = NULL;
    return send_add(ls, t, false, e);
}

/* ---- responses --------------------------------------------------------------------------- */

static struct target *by_id(listen_state *ls, int64_t id, int *index)
{
    for (int i = 0; i < ls->n; i++)
        if (ls->t[i].id == id) {
            *index = i;
            return &ls->t[i];
        }
    return NULL;
}

static int proto(fserr *e, const char *what)
{
    return fserr_set(e, FS_EPROTO, "listen: malformed %s", what);
}

/* A string member as bytes: raw when unescaped, else decoded into ls->scratch. */
static int str_member(listen_state *ls, const json_doc *d, int obj, const char *key,
                      const char **p, size_t *len, fserr *e)
{
    int tok = json_obj_get(d, obj, key);
    const json_tok *t;

    if (json_type_of(d, tok) != JSON_STRING)
        return proto(e, key);
    t = json_tok_at(d, tok);
    if (!(t->flags & JSON_F_ESCAPED)) {
        *p = d->src + t->off;
        *len = t->len;
        return 0;
    }
    buf_reset(&ls->scratch);
    if (json_str_unescape(d, tok, &ls->scratch, e) != 0)
        return proto(e, key);
    *p = ls->scratch.p;
    *len = ls->scratch.len;
    return 0;
}

static int time_member(const json_doc *d, int obj, const char *key, struct fs_time *out,
                       fserr *e)
{
    int tok = json_obj_get(d, obj, key);
    size_t len;
    const char *p;

    if (json_type_of(d, tok) != JSON_STRING)
        return proto(e, key);
    p = json_raw(d, tok, &len);
    if (json_tok_at(d, tok)->flags & JSON_F_ESCAPED)
        return proto(e, key);
    if (fsval_time_parse(p, len, out, e) != 0)
        return fserr_prefix(e, "listen: %s", key);
    return 0;
}

/* Calls fn for every integer of the array member `key` of obj (absent: none). */
static int each_id(const json_doc *d, int obj, const char *key, int64_t *ids, int max, int *n,
                   fserr *e)
{
    int arr = json_obj_get(d, obj, key);

    *n = 0;
    if (arr == JSON_NONE)
        return 0;
    if (json_type_of(d, arr) != JSON_ARRAY)
        return proto(e, key);
    for (int k = json_child(d, arr); k >= 0; k = json_sibling(d, arr, k)) {
        int64_t v;
        if (json_int64(d, k, &v, e) != 0)
            return proto(e, key);
        if (*n < max)
            ids[(*n)++] = v;
    }
    return 0;
}

#define MAX_IDS 64

static int handle_doc_change(listen_state *ls, const json_doc *d, int msg, fserr *e)
{
    int doc = json_obj_get(d, msg, "document");
    int64_t ids[MAX_IDS], removed[MAX_IDS];
    int nids, nremoved, rc, ti;
    const char *name;
    size_t len;
    struct fs_time ut;
    fserr de = {0};

    if (json_type_of(d, doc) != JSON_OBJECT)
        return proto(e, "documentChange.document");
    rc = each_id(d, msg, "targetIds", ids, MAX_IDS, &nids, e);
    if (!rc)
        rc = each_id(d, msg, "removedTargetIds", removed, MAX_IDS, &nremoved, e);
    if (!rc)
        rc = str_member(ls, d, doc, "name", &name, &len, e);
    if (!rc)
        rc = time_member(d, doc, "updateTime", &ut, e);
    if (rc)
        return rc;
    for (int i = 0; i < nids; i++) {
        struct target *t = by_id(ls, ids[i], &ti);
        struct fsdoc fd;
        if (!t || t->pending || !listen_target_matches(ls, ti, name, len))
            continue;
        if (ls->cb.seen(ls->ud, ti, name, len, ut))
            continue;
        rc = fsdoc_decode(d, doc, &fd, &de);
        if (rc && !ls->cb.undecodable) {
            if (e)
                *e = de;
            return rc;
        }
        if (rc) {
            /* one bad document must not stop the stream: the owner dead-letters it */
            size_t rawlen;
            const char *raw = json_raw(d, doc, &rawlen);
            rc = ls->cb.undecodable(ls->ud, ti, name, len, ut, raw, rawlen, de.msg);
            if (rc)
                return rc;
            continue;
        }
        rc = ls->cb.upsert(ls->ud, ti, &fd);
        if (rc)
            return rc;
        /* the callback may have reused scratch: re-read the name for the next target */
        rc = str_member(ls, d, doc, "name", &name, &len, e);
        if (rc)
            return rc;
    }
    for (int i = 0; i < nremoved; i++) {
        struct target *t = by_id(ls, removed[i], &ti);
        if (t && !t->pending && listen_target_matches(ls, ti, name, len)) {
            rc = ls->cb.remove(ls->ud, ti, name, len, ut);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* documentDelete and documentRemove: {document: name, removedTargetIds, readTime}. */
static int handle_doc_gone(listen_state *ls, const json_doc *d, int msg, fserr *e)
{
    int64_t removed[MAX_IDS];
    int nremoved, rc, ti;
    const char *name;
    size_t len;
    struct fs_time rt = {0, 0};

    rc = each_id(d, msg, "removedTargetIds", removed, MAX_IDS, &nremoved, e);
    if (!rc)
        rc = str_member(ls, d, msg, "document", &name, &len, e);
    if (!rc && json_obj_get(d, msg, "readTime") != JSON_NONE)
        rc = time_member(d, msg, "readTime", &rt, e);
    if (rc)
        return rc;
    for (int i = 0; i < nremoved; i++) {
        struct target *t = by_id(ls, removed[i], &ti);
        if (t && !t->pending && listen_target_matches(ls, ti, name, len)) {
            rc = ls->cb.remove(ls->ud, ti, name, len, rt);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static void set_token(struct target *t, const char *tok, size_t len)
{
    if (!tok || !len)
        return;
    free(t->token);
    t->token = xstrndup(tok, len);
}

static int global_consistent(listen_state *ls, const char *tok, size_t toklen, struct fs_time rt)
{
    for (int i = 0; i < ls->n; i++) {
        struct target *t = &ls->t[i];
        bool after_reset;
        int rc;
        if (t->pending || !t->current)
            continue;
        set_token(t, tok, toklen);
        after_reset = t->reset_pending;
        t->reset_pending = false;
        rc = ls->cb.consistent(ls->ud, i, t->token ? t->token : "", rt, after_reset);
        if (rc)
            return rc;
    }
    return 0;
}

static void target_removed(listen_state *ls, const json_doc *d, int msg, struct target *t, int ti)
{
    int cause = json_obj_get(d, msg, "cause");
    int64_t code = 0;
    char text[300] = "removed by the server without a cause";
    int m;

    if (t->pending) { /* the answer to our own removeTarget */
        t->pending--;
        return;
    }
    t->current = false;
    if (json_type_of(d, cause) == JSON_OBJECT) {
        json_int64(d, json_obj_get(d, cause, "code"), &code, NULL);
        m = json_obj_get(d, cause, "message");
        if (json_type_of(d, m) == JSON_STRING) {
            buf b;
            buf_init(&b, sizeof(text) - 1);
            json_str_unescape(d, m, &b, NULL);
            snprintf(text, sizeof(text), "%s", buf_str(&b));
            buf_release(&b);
        }
    }
    free(t->token); /* a refused token must not be offered again */
    t->token = NULL;
    ls->cb.target_error(ls->ud, ti, (int)code, text);
}

static int handle_target_change(listen_state *ls, const json_doc *d, int msg, fserr *e)
{
    int typ = json_obj_get(d, msg, "targetChangeType");
    int64_t ids[MAX_IDS];
    int nids, rc, ti;
    const char *tok = NULL;
    size_t toklen = 0;
    bool has_rt = json_obj_get(d, msg, "readTime") != JSON_NONE;
    struct fs_time rt = {0, 0};
    enum { NO_CHANGE, ADD, REMOVE, CURRENT, RESET } kind = NO_CHANGE;

    if (typ != JSON_NONE) {
        if (json_str_eq(d, typ, "NO_CHANGE"))
            kind = NO_CHANGE;
        else if (json_str_eq(d, typ, "ADD"))
            kind = ADD;
        else if (json_str_eq(d, typ, "REMOVE"))
            kind = REMOVE;
        else if (json_str_eq(d, typ, "CURRENT"))
            kind = CURRENT;
        else if (json_str_eq(d, typ, "RESET"))
            kind = RESET;
        else
            return proto(e, "targetChange.targetChangeType");
    }
    rc = each_id(d, msg, "targetIds", ids, MAX_IDS, &nids, e);
    if (!rc && json_obj_get(d, msg, "resumeToken") != JSON_NONE)
        rc = str_member(ls, d, msg, "resumeToken", &tok, &toklen, e);
    if (!rc && has_rt)
        rc = time_member(d, msg, "readTime", &rt, e);
    if (rc)
        return rc;
    if (log_get_level() >= LOG_LVL_DEBUG) {
        static const char *kn[] = {"NO_CHANGE", "ADD", "REMOVE", "CURRENT", "RESET"};
        log_debug("listen: %s for %d target(s)%s, read time %lld.%06d", kn[kind], nids,
                  nids ? "" : " (global)", (long long)rt.seconds, rt.nanos / 1000);
    }
    if (kind == NO_CHANGE && nids == 0)
        return has_rt ? global_consistent(ls, tok, toklen, rt) : 0;
    for (int i = 0; i < nids; i++) {
        struct target *t = by_id(ls, ids[i], &ti);
        if (!t)
            continue;
        switch (kind) {
        case ADD:
            if (t->pending)
                t->pending--;
            if (!t->pending && t->reset_on_add) {
                t->reset_on_add = false;
                t->reset_pending = true;
                ls->cb.reset(ls->ud, ti);
            }
            break;
        case REMOVE:
            target_removed(ls, d, msg, t, ti);
            break;
        case CURRENT:
            if (!t->pending) {
                t->current = true;
                set_token(t, tok, toklen);
            }
            break;
        case RESET:
            if (!t->pending) {
                t->current = false;
                t->reset_pending = true;
                ls->cb.reset(ls->ud, ti);
            }
            break;
        case NO_CHANGE:
            if (!t->pending && t->current)
                set_token(t, tok, toklen);
            break;
        }
    }
    return 0;
}

static int handle_filter(listen_state *ls, const json_doc *d, int msg, fserr *e)
{
    int64_t id = 0, count = 0;
    int ti;
    struct target *t;
    size_t live;

    if (json_int64(d, json_obj_get(d, msg, "targetId"), &id, NULL) != 0)
        return proto(e, "filter.targetId");
    if (json_obj_get(d, msg, "count") != JSON_NONE &&
        json_int64(d, json_obj_get(d, msg, "count"), &count, NULL) != 0)
        return proto(e, "filter.count");
    t = by_id(ls, id, &ti);
    if (!t || t->pending)
        return 0;
    if (t->group) /* the group query also counts documents outside the pattern */
        return 0;
    live = ls->cb.live_count(ls->ud, ti);
    if ((int64_t)live == count) {
        t->filter_retry = false;
        return 0;
    }
    log_warn("listen: %s: existence filter says %lld documents, %zu are live here; "
             "re-listening without a resume token",
             t->path, (long long)count, live);
    if (t->filter_retry) {
        char why[160];
        snprintf(why, sizeof(why), "existence filter mismatch persists (%lld on the server, %zu here)",
                 (long long)count, live);
        ls->cb.target_error(ls->ud, ti, 0, why);
    }
    t->filter_retry = true;
    return listen_relisten(ls, ti, e);
}

int listen_handle(listen_state *ls, const json_doc *d, int tok, fserr *e)
{
    int m;

    if (json_type_of(d, tok) != JSON_OBJECT)
        return proto(e, "ListenResponse (not an object)");
    if ((m = json_obj_get(d, tok, "targetChange")) != JSON_NONE)
        return json_type_of(d, m) == JSON_OBJECT ? handle_target_change(ls, d, m, e)
                                                 : proto(e, "targetChange");
    if ((m = json_obj_get(d, tok, "documentChange")) != JSON_NONE)
        return json_type_of(d, m) == JSON_OBJECT ? handle_doc_change(ls, d, m, e)
                                                 : proto(e, "documentChange");
    if ((m = json_obj_get(d, tok, "documentDelete")) != JSON_NONE)
        return json_type_of(d, m) == JSON_OBJECT ? handle_doc_gone(ls, d, m, e)
                                                 : proto(e, "documentDelete");
    if ((m = json_obj_get(d, tok, "documentRemove")) != JSON_NONE)
        return json_type_of(d, m) == JSON_OBJECT ? handle_doc_gone(ls, d, m, e)
                                                 : proto(e, "documentRemove");
    if ((m = json_obj_get(d, tok, "filter")) != JSON_NONE)
        return json_type_of(d, m) == JSON_OBJECT ? handle_filter(ls, d, m, e) : proto(e, "filter");
    return 0; /* a message kind this version does not know: ignored */
}

int listen_target_count(const listen_state *ls)
{
    return ls->n;
}

const char *listen_target_path(const listen_state *ls, int target)
{
    return ls->t[target].path;
}

const char *listen_resume_token(const listen_state *ls, int target)
{
    return ls->t[target].token ? ls->t[target].token : "";
}

bool listen_target_current(const listen_state *ls, int target)
{
    return ls->t[target].current;
}

int listen_target_id(const listen_state *ls, int target)
{
    return ls->t[target].id;
}
