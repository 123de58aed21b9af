/*
 * index.c - the applied index (see index.h): an open-addressing hash table of pointers into
 * slab-allocated entries. Owns the slabs and the table; nothing else.
 */
#include "diff/index.h"

#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define SLAB_BYTES (1u << 20)

struct slab {
    struct slab *next;
    size_t used;
    char mem[];
};

struct diff_index {
    unsigned ncells;
    struct diff_entry **slots;
    size_t cap;   /* power of two */
    size_t count; /* entries */
    size_t live;
    struct slab *slabs;
    size_t slab_bytes;
};

static uint64_t hash_key(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

diff_index *diff_index_new(unsigned ncells)
{
    diff_index *ix = xcalloc(1, sizeof(*ix));
    ix->ncells = ncells;
    ix->cap = 1024;
    ix->slots = xcalloc(ix->cap, sizeof(*ix->slots));
    return ix;
}

void diff_index_free(diff_index *ix)
{
    if (!ix)
        return;
    while (ix->slabs) {
        struct slab *n = ix->slabs->next;
        free(ix->slabs);
        ix->slabs = n;
    }
    free(ix->slots);
    free(ix);
}

const char *diff_entry_key(const struct diff_entry *en)
{
    return (const char *)(en->hashes + en->ncells);
}

static size_t find_slot(const diff_index *ix, const char *key, size_t len, uint64_t h)
{
    size_t mask = ix->cap - 1, i = (size_t)h & mask;
    for (;;) {
        struct diff_entry *en = ix->slots[i];
        if (!en || (en->keylen == len && memcmp(diff_entry_key(en), key, len) == 0))
            return i;
        i = (i + 1) & mask;
    }
}

struct diff_entry *diff_index_get(const diff_index *ix, const char *key, size_t len)
{
    if (len > UINT16_MAX)
        return NULL;
    return ix->slots[find_slot(ix, key, len, hash_key(key, len))];
}

static void grow(diff_index *ix)
{
    struct diff_entry **old = ix->slots;
    size_t oldcap = ix->cap;

    ix->cap *= 2;
    ix->slots = xcalloc(ix->cap, sizeof(*ix->slots));
    for (size_t i = 0; i < oldcap; i++) {
        struct diff_entry *en = old[i];
        if (en)
            ix->slots[find_slot(ix, diff_entry_key(en), en->keylen,
                                hash_key(diff_entry_key(en), en->keylen))] = en;
    }
    free(old);
}

static void *carve(diff_index *ix, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!ix->slabs || ix->slabs->used + n > ix->slab_bytes) {
        size_t sz = n > SLAB_BYTES ? n : SLAB_BYTES;
        struct slab *s = xmalloc(sizeof(*s) + sz);
        s->next = ix->slabs;
        s->used = 0;
        ix->slabs = s;
        ix->slab_bytes = sz;
    }
    void *p = ix->slabs->mem + ix->slabs->used;
    ix->slabs->used += n;
    return p;
}

struct diff_entry *diff_index_put(diff_index *ix, const char *key, size_t len)
{
    uint64_t h;
    size_t i;
    struct diff_entry *en;

    if (len > UINT16_MAX)
        return NULL;
    h = hash_key(key, len);
    i = find_slot(ix, key, len, h);
    if (ix->slots[i])
        return ix->slots[i];
    if ((ix->count + 1) * 4 > ix->cap * 3) {
        grow(ix);
        i = find_slot(ix, key, len, h);
    }
    en = carve(ix, sizeof(*en) + ix->ncells * sizeof(uint64_t) + len);
    memset(en, 0, sizeof(*en) + ix->ncells * sizeof(uint64_t));
    en->keylen = (uint16_t)len;
    en->ncells = (uint8_t)ix->ncells;
    memcpy((char *)(en->hashes + en->ncells), key, len);
    ix->slots[i] = en;
    ix->count++;
    return en;
}

void diff_index_set_live(diff_index *ix, struct diff_entry *en, bool live)
{
    bool was = en->flags & DIFF_E_LIVE;
    if (was == live)
        return;
    if (live) {
        en->flags |= DIFF_E_LIVE;
        ix->live++;
    } else {
        en->flags &= (uint8_t)~DIFF_E_LIVE;
        ix->live--;
    }
}

size_t diff_index_live(const diff_index *ix)
{
    return ix->live;
}

size_t diff_index_count(const diff_index *ix)
{
    return ix->count;
}

size_t diff_index_bytes(const diff_index *ix)
{
    size_t n = ix->cap * sizeof(*ix->slots);
    for (const struct slab *s = ix->slabs; s; s = s->next)
        n += s == ix->slabs ? s->used : SLAB_BYTES; /* full slabs, and what the newest uses */
    return n;
}

int diff_index_each(diff_index *ix, int (*fn)(void *ud, struct diff_entry *en), void *ud)
{
    for (size_t i = 0; i < ix->cap; i++) {
        if (ix->slots[i]) {
            int rc = fn(ud, ix->slots[i]);
            if (rc)
                return rc;
        }
    }
    return 0;
}
