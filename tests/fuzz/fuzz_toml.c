/*
 * fuzz_toml.c - libFuzzer target for the TOML reader alone: parse, walk every value of the tree
 * (reading each string byte by its length), sort the diagnostics, free. Must never crash, leak,
 * read out of bounds or recurse without bound, whatever the bytes.
 */
#include "agent/toml.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touches everything the tree holds, so ASan sees any bad pointer or length. */
static size_t walk(const toml_value *v)
{
    size_t sum = (size_t)v->line + (size_t)v->col + strlen(toml_kind_name(v->kind));

    switch (v->kind) {
    case TOML_TABLE:
        for (size_t i = 0; i < v->u.table.n; i++) {
            const struct toml_kv *kv = &v->u.table.items[i];
            sum += strlen(kv->key) + (size_t)kv->line + walk(kv->val);
            if (toml_get(v, kv->key) == NULL)
                __builtin_trap(); /* every key must be found again */
        }
        break;
    case TOML_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++)
            sum += walk(v->u.array.items[i]);
        break;
    case TOML_STRING:
        for (size_t i = 0; i <= v->u.s.len; i++)
            sum += (unsigned char)v->u.s.p[i]; /* including the terminating NUL */
        break;
    case TOML_INT:
        sum += (size_t)v->u.i;
        break;
    case TOML_FLOAT:
        sum += v->u.f > 0;
        break;
    case TOML_BOOL:
        sum += v->u.b;
        break;
    }
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    toml_value *root = NULL;
    toml_diag d;
    volatile size_t sink;
    int rc;

    toml_diag_init(&d);
    rc = toml_parse((const char *)data, size, &root, &d);
    if (!root || (rc == 0) != (d.n == 0))
        __builtin_trap(); /* a tree always, and an error code exactly when errors were recorded */
    sink = walk(root);
    (void)sink;
    toml_diag_sort(&d);
    for (size_t i = 1; i < d.n; i++)
        if (d.items[i].line < d.items[i - 1].line || d.items[i].line < 1 || d.items[i].col < 1)
            __builtin_trap();
    toml_free(root);
    toml_diag_release(&d);
    return 0;
}
