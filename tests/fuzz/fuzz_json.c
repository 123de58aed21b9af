/*
 * fuzz_json.c - libFuzzer target for the JSON tokenizer and its read helpers. Whatever the input,
 * parsing must not crash, leak or read out of bounds; and when it succeeds the token tree must be
 * consistent (subtree ends, member counts, iteration) and every string must decode to valid UTF-8
 * that compares equal to itself.
 */
#include "common/buf.h"
#include "firestore/json.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

static void walk(const json_doc *d, buf *tmp)
{
    for (int i = 0; i < (int)d->ntoks; i++) {
        const json_tok *t = json_tok_at(d, i);
        int64_t iv;
        double dv;

        check(t->end > (uint32_t)i && t->end <= d->ntoks);
        check((size_t)t->off + t->len <= d->srclen);
        switch (t->type) {
        case JSON_OBJECT:
        case JSON_ARRAY: {
            uint32_t n = 0;
            int last = i;
            for (int c = json_child(d, i); c >= 0; c = json_sibling(d, i, c), n++) {
                check(c > last && (uint32_t)c < t->end);
                last = c;
                if (t->type == JSON_OBJECT) {
                    check(json_type_of(d, c) == JSON_STRING);
                    buf_reset(tmp);
                    check(json_str_unescape(d, c, tmp, NULL) == 0);
                    /* the first member with this key is found, and it is at or before c */
                    int v = json_obj_getn(d, i, tmp->p ? tmp->p : "", tmp->len);
                    check(v >= 0 && v <= c + 1);
                }
            }
            check(n == t->count);
            if (t->type == JSON_OBJECT)
                (void)json_obj_has_duplicates(d, i);
            break;
        }
        case JSON_STRING:
            buf_reset(tmp);
            check(json_str_unescape(d, i, tmp, NULL) == 0);
            check(tmp->len <= t->len);
            check(json_utf8_check(tmp->p ? tmp->p : "", tmp->len) == tmp->len);
            check(json_str_eqn(d, i, tmp->p ? tmp->p : "", tmp->len));
            (void)json_int64(d, i, &iv, NULL);
            (void)json_double(d, i, &dv, NULL);
            break;
        case JSON_NUMBER:
            (void)json_int64(d, i, &iv, NULL);
            (void)json_double(d, i, &dv, NULL);
            break;
        default:
            check(t->end == (uint32_t)i + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_doc d;
    fserr e;
    buf tmp;

    json_doc_init(&d);
    buf_init(&tmp, 0);
    if (json_parse(&d, (const char *)data, size, &e) == 0) {
        check(d.ntoks > 0 && json_tok_at(&d, 0)->end == d.ntoks);
        walk(&d, &tmp);
    } else {
        check(d.ntoks == 0 && e.code < 0);
    }
    /* tight limits exercise the refusal paths */
    json_doc_set_limits(&d, 8, 3);
    if (json_parse(&d, (const char *)data, size, &e) == 0)
        check(d.ntoks <= 8);
    buf_release(&tmp);
    json_doc_release(&d);
    return 0;
}
