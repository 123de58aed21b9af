/*
 * rest.c - runQuery pages over the loop's HTTP client (see rest.h).
 *
 * Owns, per call, the small rest_call that joins the HTTP request to the caller's callback, and,
 * per page, the decoded documents handed to the caller. The reply body is buffered by http.c
 * under a cap derived from the page size, tokenized once with json.h and decoded with
 * fsdoc_decode(); nothing of it outlives the callback but the documents.
 */
#include "firestore/rest.h"

#include "common/xalloc.h"
#include "firestore/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_CAP_MIN ((size_t)16 << 20)
#define BODY_CAP_MAX ((size_t)1 << 30)
#define BODY_CAP_PER_DOC ((size_t)3 << 19) /* a 1 MiB document takes ~1.5 MiB of JSON */
#define ERROR_TEXT_MAX 300

struct rest_call {
    http_request *req;
    rest_page_fn cb;
    void *ud;
    unsigned limit;
};

void rest_page_release(struct rest_page *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->ndocs; i++)
        fsdoc_release(&p->docs[i]);
    free(p->docs);
    memset(p, 0, sizeof(*p));
}

/* ---- the request ------------------------------------------------------------------------- */

static int json_str(buf *b, const char *s)
{
    fsval v = {.type = FSVAL_STRING};
    v.u.s.p = (char *)s;
    v.u.s.len = strlen(s);
    return fsval_to_json(&v, b);
}

int rest_query_body(const struct rest_query *q, buf *out, fserr *e)
{
    char t[FSVAL_TIME_BUFSZ];
    int rc;

    if (!q->collection_id || !*q->collection_id || q->limit == 0)
        return fserr_set(e, FS_EINVAL, "runQuery needs a collection id and a page size");
    rc = buf_adds(out, "{\"structuredQuery\":{\"from\":[{\"collectionId\":");
    if (!rc)
        rc = json_str(out, q->collection_id);
    if (!rc)
        rc = buf_printf(out,
                        ",\"allDescendants\":%s}],\"orderBy\":[{\"field\":{\"fieldPath\":"
                        "\"__name__\"},\"direction\":\"ASCENDING\"}]",
                        q->all_descendants ? "true" : "false");
    if (!rc && q->start_after) {
        rc = buf_adds(out, ",\"startAt\":{\"values\":[{\"referenceValue\":");
        if (!rc)
            rc = json_str(out, q->start_after);
        if (!rc)
            rc = buf_adds(out, "}],\"before\":false}");
    }
    if (!rc)
        rc = buf_printf(out, ",\"limit\":%u}", q->limit);
    if (!rc && (q->read_time.seconds || q->read_time.nanos)) {
        if (fsval_time_format(q->read_time, t) < 0)
            return fserr_set(e, FS_ERANGE, "runQuery: read time out of range");
        rc = buf_printf(out, ",\"readTime\":\"%s\"", t);
    }
    if (!rc)
        rc = buf_addc(out, '}');
    return rc ? fserr_set(e, rc, "runQuery: request body too large") : 0;
}

/* ---- the reply --------------------------------------------------------------------------- */

static void add_clean(buf *out, const char *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && out->len < max; i++)
        if ((unsigned char)p[i] >= 0x20 && p[i] != 0x7f)
            buf_addc(out, p[i]);
}

/* "STATUS: message" of the error object at tok. */
static void error_object(const json_doc *d, int tok, buf *out)
{
    int st = json_obj_get(d, tok, "status"), msg = json_obj_get(d, tok, "message");
    size_t start = out->len, n;
    const char *p;
    buf tmp;

    buf_init(&tmp, 4096);
    if (json_type_of(d, st) == JSON_STRING && json_str_unescape(d, st, &tmp, NULL) == 0) {
        add_clean(out, tmp.p ? tmp.p : "", tmp.len, start + ERROR_TEXT_MAX);
        buf_adds(out, ": ");
    }
    buf_reset(&tmp);
    if (json_type_of(d, msg) == JSON_STRING && json_str_unescape(d, msg, &tmp, NULL) == 0) {
        p = tmp.p ? tmp.p : "";
        n = tmp.len;
        add_clean(out, p, n, start + ERROR_TEXT_MAX);
    }
    buf_release(&tmp);
}

void rest_error_text(const char *body, size_t n, buf *out)
{
    json_doc d;
    int root, err;

    json_doc_init(&d);
    if (body && json_parse(&d, body, n, NULL) == 0) {
        root = 0;
        if (json_type_of(&d, root) == JSON_ARRAY)
            root = json_child(&d, root);
        err = json_type_of(&d, root) == JSON_OBJECT ? json_obj_get(&d, root, "error") : JSON_NONE;
        if (json_type_of(&d, err) == JSON_OBJECT)
            error_object(&d, err, out);
    }
    json_doc_release(&d);
}

static int time_of(const json_doc *d, int tok, struct fs_time *t, fserr *e)
{
    size_t n;
    const char *p;

    if (json_type_of(d, tok) != JSON_STRING)
        return fserr_set(e, FS_EPARSE, "runQuery reply: readTime is not a string");
    p = json_raw(d, tok, &n);
    return fsval_time_parse(p, n, t, e);
}

/* One element of the reply array. */
static int element(const json_doc *d, int el, struct rest_page *out, size_t *cap, fserr *e)
{
    int doc, rt, err, rc;
    buf msg;

    if (json_type_of(d, el) != JSON_OBJECT)
        return fserr_set(e, FS_EPARSE, "runQuery reply: an element is not an object");
    err = json_obj_get(d, el, "error");
    if (err != JSON_NONE) {
        buf_init(&msg, 1024);
        if (json_type_of(d, err) == JSON_OBJECT)
            error_object(d, err, &msg);
        fserr_set(e, FS_EHTTPSTATUS, "runQuery failed: %s", msg.len ? buf_str(&msg) : "error");
        buf_release(&msg);
        return FS_EHTTPSTATUS;
    }
    rt = json_obj_get(d, el, "readTime");
    if (rt != JSON_NONE && (rc = time_of(d, rt, &out->read_time, e)) != 0) {
        fserr_prefix(e, "runQuery reply: readTime");
        return rc;
    }
    doc = json_obj_get(d, el, "document");
    if (doc == JSON_NONE)
        return 0;
    if (out->ndocs == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        out->docs = xrealloc(out->docs, *cap * sizeof(*out->docs));
    }
    fsdoc_init(&out->docs[out->ndocs]);
    rc = fsdoc_decode(d, doc, &out->docs[out->ndocs], e);
    if (rc) {
        fserr_prefix(e, "runQuery reply: document %zu", out->ndocs + 1);
        return rc;
    }
    out->ndocs++;
    return 0;
}

int rest_parse_page(const char *body, size_t n, unsigned limit, struct rest_page *out, fserr *e)
{
    json_doc d;
    size_t cap = 0;
    int rc;

    rest_page_release(out);
    json_doc_init(&d);
    json_doc_set_limits(&d, n + 16 < UINT32_MAX ? (uint32_t)(n + 16) : UINT32_MAX,
                        3 * FSVAL_MAX_DEPTH + 16);
    rc = json_parse(&d, body, n, e);
    if (rc)
        fserr_prefix(e, "runQuery reply");
    else if (json_type_of(&d, 0) != JSON_ARRAY)
        rc = fserr_set(e, FS_EPARSE, "runQuery reply: not a JSON array");
    for (int el = rc ? JSON_NONE : json_child(&d, 0); el >= 0 && !rc; el = json_sibling(&d, 0, el))
        rc = element(&d, el, out, &cap, e);
    json_doc_release(&d);
    if (!rc && !out->read_time.seconds && !out->read_time.nanos)
        rc = fserr_set(e, FS_EPARSE, "runQuery reply: no readTime");
    if (rc) {
        rest_page_release(out);
        return rc;
    }
    out->more = limit && out->ndocs >= limit;
    out->billed = out->ndocs ? out->ndocs : 1;
    return 0;
}

/* ---- the call ---------------------------------------------------------------------------- */

static void on_done(void *ud, const struct http_result *res)
{
    struct rest_call *call = ud;
    struct rest_page page = {0};
    fserr e = {0};
    int rc = res->rc;

    if (rc) {
        e = *res->err;
    } else if (res->status != 200) {
        buf msg;
        buf_init(&msg, 1024);
        rest_error_text(res->body, res->body_len, &msg);
        /* throttling and the server's own failures pass; anything else is the query's fault */
        rc = res->status == 429 || res->status == 408 || res->status >= 500 ? FS_EHTTP
                                                                            : FS_EHTTPSTATUS;
        fserr_set(&e, rc, "runQuery: HTTP %ld%s%s", res->status, msg.len ? ": " : "",
                  buf_str(&msg));
        buf_release(&msg);
    } else {
        rc = rest_parse_page(res->body, res->body_len, call->limit, &page, &e);
    }
    call->cb(call->ud, rc, rc ? &e : NULL, res->status, rc ? NULL : &page);
    rest_page_release(&page); /* the callee moved what it kept */
    free(call);
}

int rest_query_start(http_client *c, const struct rest_query *q, rest_page_fn cb, void *ud,
                     rest_call **out, fserr *e)
{
    struct http_req_opts o = {0};
    struct rest_call *call;
    const char *headers[3];
    char *url, *auth = NULL;
    size_t cap;
    buf body;
    int rc, nh = 0;

    buf_init(&body, 0);
    rc = rest_query_body(q, &body, e);
    if (rc) {
        buf_release(&body);
        return rc;
    }
    url = xasprintf("%s/v1/%s:runQuery", q->base_url, q->parent);
    headers[nh++] = "Content-Type: application/json";
    if (q->auth) {
        auth = xasprintf("Authorization: %s", q->auth);
        headers[nh++] = auth;
    }
    headers[nh] = NULL;
    cap = (size_t)q->limit * BODY_CAP_PER_DOC;
    call = xcalloc(1, sizeof(*call));
    call->cb = cb;
    call->ud = ud;
    call->limit = q->limit;
    o.method = "POST";
    o.url = url;
    o.headers = headers;
    o.body = body.p;
    o.body_len = body.len;
    o.timeout_ms = q->timeout_ms;
    o.body_cap = cap < BODY_CAP_MIN ? BODY_CAP_MIN : cap > BODY_CAP_MAX ? BODY_CAP_MAX : cap;
    o.on_done = on_done;
    o.ud = call;
    call->req = http_request_new(c, &o, e);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    free(url);
    buf_release(&body);
    if (!call->req) {
        free(call);
        return e && e->code ? e->code : FS_EINTERNAL;
    }
    if (out)
        *out = call;
    return 0;
}

void rest_call_cancel(rest_call *call)
{
    if (!call)
        return;
    http_cancel(call->req);
    free(call);
}

/* ---- Firestore's order of paths ---------------------------------------------------------- */

/* A reserved numeric id "__id<n>__" (n an int64, optionally negative): its value. */
static bool numeric_id(const char *s, size_t n, int64_t *v)
{
    size_t i = 4, digits = 0;
    bool neg = false;
    uint64_t x = 0;

    if (n < 7 || memcmp(s, "__id", 4) != 0 || memcmp(s + n - 2, "__", 2) != 0)
        return false;
    if (s[i] == '-') {
        neg = true;
        i++;
    }
    for (; i < n - 2; i++, digits++) {
        if (s[i] < '0' || s[i] > '9' || digits >= 19)
            return false;
        x = x * 10 + (uint64_t)(s[i] - '0');
    }
    if (!digits || x > (uint64_t)INT64_MAX)
        return false;
    *v = neg ? -(int64_t)x : (int64_t)x;
    return true;
}

static int segment_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int64_t x, y;
    bool na = numeric_id(a, an, &x), nb = numeric_id(b, bn, &y);
    int c;

    if (na && nb)
        return x < y ? -1 : x > y;
    if (na != nb)
        return na ? -1 : 1;
    c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c < 0 ? -1 : 1;
    return an < bn ? -1 : an > bn;
}

int rest_path_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    const char *ae = a + alen, *be = b + blen;

    for (;;) {
        const char *sa, *sb;
        int c;
        if (a == ae || b == be)
            return (a == ae) == (b == be) ? 0 : a == ae ? -1 : 1;
        sa = memchr(a, '/', (size_t)(ae - a));
        sb = memchr(b, '/', (size_t)(be - b));
        if (!sa)
            sa = ae;
        if (!sb)
            sb = be;
        c = segment_cmp(a, (size_t)(sa - a), b, (size_t)(sb - b));
        if (c)
            return c;
        a = sa < ae ? sa + 1 : ae;
        b = sb < be ? sb + 1 : be;
    }
}
