/*
 * fuzz_value.c - libFuzzer target for the Firestore value decoder: tokenize, decode as a document
 * (and as a bare value), print with fsval_to_json, hash, compare, free. Must never crash, leak or
 * read out of bounds, and what to_json prints must itself be strict, valid JSON. The input is
 * also tried as a timestamp (which must round-trip through format and parse) and a field path.
 */
#include "common/buf.h"
#include "common/xalloc.h"
#include "firestore/json.h"
#include "firestore/value.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

/* to_json must print strict JSON. */
static void printed_is_json(const fsval *v)
{
    json_doc d;
    buf out;

    buf_init(&out, 0);
    check(fsval_to_json(v, &out) == 0);
    json_doc_init(&d);
    check(json_parse(&d, buf_str(&out), out.len, NULL) == 0);
    json_doc_release(&d);
    buf_release(&out);
    check(fsval_equal(v, v));
    (void)fsval_hash64(v);
}

static void try_time_and_path(const uint8_t *data, size_t size)
{
    struct fs_time t, back;
    char out[FSVAL_TIME_BUFSZ];
    struct fsval_path p;
    char *s;

    if (fsval_time_parse((const char *)data, size, &t, NULL) == 0) {
        int n = fsval_time_format(t, out);
        check(n > 0);
        check(fsval_time_parse(out, (size_t)n, &back, NULL) == 0);
        check(fsval_time_cmp(t, back) == 0);
    }
    s = xstrndup((const char *)data, size);
    if (fsval_path_parse(s, &p, NULL) == 0) {
        struct fsval_path q;
        buf b;
        buf_init(&b, 0);
        check(p.n > 0);
        check(fsval_path_format(&p, &b) == 0);
        check(fsval_path_parse(buf_str(&b), &q, NULL) == 0);
        check(q.n == p.n);
        for (size_t i = 0; i < p.n; i++)
            check(q.segs[i].len == p.segs[i].len &&
                  memcmp(q.segs[i].p, p.segs[i].p, p.segs[i].len) == 0);
        fsval_path_release(&q);
        fsval_path_release(&p);
        buf_release(&b);
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_doc d;
    struct fsdoc doc;
    fsval v;
    fserr e;

    json_doc_init(&d);
    if (json_parse(&d, (const char *)data, size, &e) == 0) {
        if (fsdoc_decode(&d, 0, &doc, &e) == 0) {
            check(doc.name != NULL && doc.fields.type == FSVAL_MAP);
            printed_is_json(&doc.fields);
            struct fsval_path p;
            if (doc.fields.u.map.n &&
                fsval_path_parse(doc.fields.u.map.fields[0].name, &p, NULL) == 0) {
                (void)fsval_lookup(&doc.fields, &p);
                fsval_path_release(&p);
            }
        } else {
            check(doc.name == NULL && e.code < 0);
        }
        fsdoc_release(&doc);
        if (fsval_decode(&d, 0, &v, &e) == 0)
            printed_is_json(&v);
        else
            check(v.type == FSVAL_NULL);
        fsval_release(&v);
    }
    json_doc_release(&d);
    try_time_and_path(data, size);
    return 0;
}
