/*
 * index.c - the applied index (see index.h): entries carved from slabs, found through an
 * open-addressing hash table of 6-byte slots. Owns the slabs, the slab table and the hash table;
 * nothing else.
 *
 * Entries: an entry (header, ncells hashes, key bytes, rounded up to 8 bytes) is carved from
 * 1 MiB slabs in order of creation and never moves or goes away, so pointers to entries stay
 * valid. The table names an entry by a 32-bit reference instead of a pointer: 1 + the entry's
 * position counted in 8-byte units across the slabs (slab number * 2^17 + offset / 8), 0 meaning
 * "no entry". That leaves room for MAX_SLABS slabs, just under 32 GiB of entries (some 350
 * million documents of 7 columns with 20-byte ids); a put past that is refused.
 *
 * Table: linear probing over a power-of-two array of slots, grown (doubled) before the load
 * passes 3/4. A slot holds a reference and a 16-bit tag, the top bits of the key's 64-bit hash
 * (the probe starts at the low bits). A probe compares tags and reads an entry only when the tag
 * matches, so stepping over other keys' slots touches no other entry: at a million documents the
 * entries are far out of cache and each one read costs a miss. A non-matching key has the same
 * tag 1 time in 65536. Growing frees the old table first and refills a new one by walking the
 * slabs in order and rehashing the keys, which reads memory sequentially.
 *
 * diff_index_each() walks the slabs too: entries in order of creation, sequentially in memory.
 */
#include "diff/index.h"

#include "common/xalloc.h"

#include <stdlib.h>
#include <string.h>

#define UNIT 8u                                      /* entry alignment; references count these */
#define SLAB_UNITS_LOG2 17u                          /* units per slab: 2^17 ... */
#define SLAB_BYTES ((size_t)UNIT << SLAB_UNITS_LOG2) /* ... that is 1 MiB */
/* 1 + (MAX_SLABS * 2^17 - 1) < 2^32: every reference fits in 32 bits and none is 0. */
#define MAX_SLABS (((size_t)1 << (32 - SLAB_UNITS_LOG2)) - 1)

/* One hash-table slot; ref (ref_lo | ref_hi << 16) is 0 in an empty slot. Three 16-bit fields
 * keep it at 6 bytes: a uint32_t member would align it, and pad it, to 8. */
struct slot {
    uint16_t tag;
    uint16_t ref_lo, ref_hi;
};

struct slab {
    char *mem;   /* SLAB_BYTES */
    size_t used; /* bytes carved, from the start */
};

struct diff_index {
    unsigned ncells;
    struct slot *slots;
    size_t cap;   /* slots, a power of two */
    size_t count; /* entries */
    size_t live;
    struct slab *slabs; /* in order of creation; the last one is being carved */
    size_t nslabs;
    size_t slabs_cap; /* allocated */
};

/* The key's 64-bit hash. The bytes are taken 8 at a time as one word (the last 1 to 7 bytes
 * zero-filled, and the length mixed in first, so that "a" and "a\0" still differ; words are in
 * the machine's byte order, which only has to agree with itself within one process);
 * each word is folded in with a multiply, and a xor-shift brings the high bits that the multiply
 * stirred back down. A final mix (the splitmix64 finalizer) makes every bit of the result, the low
 * ones of the probe start as well as the top ones of the tag, depend on every bit of the key. */
static uint64_t hash_key(const char *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n, w;

    for (; n >= 8; p += 8, n -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    if (n) { /* byte by byte: a memcpy of variable length here measured 2x slower lookups */
        w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)(unsigned char)p[i] << (8 * i);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static uint16_t tag_of(uint64_t h)
{
    return (uint16_t)(h >> 48);
}

static uint32_t slot_ref(const struct slot *s)
{
    return (uint32_t)s->ref_lo | (uint32_t)s->ref_hi << 16;
}

static void slot_set(struct slot *s, uint16_t tag, uint32_t ref)
{
    s->tag = tag;
    s->ref_lo = (uint16_t)ref;
    s->ref_hi = (uint16_t)(ref >> 16);
}

/* The reference of the entry at byte off of slab number slab, and the entry of a reference. */
static uint32_t ref_of(size_t slab, size_t off)
{
    return (uint32_t)(1 + (slab << SLAB_UNITS_LOG2) + off / UNIT);
}

static struct diff_entry *entry_of(const diff_index *ix, uint32_t ref)
{
    uint32_t pos = ref - 1;
    size_t off = (size_t)(pos & ((1u << SLAB_UNITS_LOG2) - 1)) * UNIT;

    return (struct diff_entry *)(ix->slabs[pos >> SLAB_UNITS_LOG2].mem + off);
}

/* Bytes an entry of the index (ncells: the index's) takes in its slab. Walks over a slab step by
 * this, with the index's ncells, as carving did. */
static size_t entry_bytes(unsigned ncells, size_t keylen)
{
    size_t n = sizeof(struct diff_entry) + ncells * sizeof(uint64_t) + keylen;
    return (n + UNIT - 1) & ~(size_t)(UNIT - 1);
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
    for (size_t i = 0; i < ix->nslabs; i++)
        free(ix->slabs[i].mem);
    free(ix->slabs);
    free(ix->slots);
    free(ix);
}

const char *diff_entry_key(const struct diff_entry *en)
{
    return (const char *)(en->hashes + en->ncells);
}

/* The slot holding key (hash h), or the empty slot where it would go. */
static struct slot *find_slot(const diff_index *ix, const char *key, size_t len, uint64_t h)
{
    size_t mask = ix->cap - 1, i = (size_t)h & mask;
    uint16_t tag = tag_of(h);

    for (;; i = (i + 1) & mask) {
        struct slot *s = &ix->slots[i];
        uint32_t ref = slot_ref(s);
        if (!ref)
            return s;
        if (s->tag == tag) {
            const struct diff_entry *en = entry_of(ix, ref);
            if (en->keylen == len && memcmp(diff_entry_key(en), key, len) == 0)
                return s;
        }
    }
}

struct diff_entry *diff_index_get(const diff_index *ix, const char *key, size_t len)
{
    uint32_t ref;

    if (len > UINT16_MAX)
        return NULL;
    ref = slot_ref(find_slot(ix, key, len, hash_key(key, len)));
    return ref ? entry_of(ix, ref) : NULL;
}

/* A table twice the size, filled from the slabs (every key is already known to be unique, so
 * each goes to the first empty slot of its probe sequence). */
static void grow(diff_index *ix)
{
    size_t mask;

    free(ix->slots);
    ix->cap *= 2;
    ix->slots = xcalloc(ix->cap, sizeof(*ix->slots));
    mask = ix->cap - 1;
    for (size_t s = 0; s < ix->nslabs; s++) {
        const struct slab *sl = &ix->slabs[s];
        for (size_t off = 0; off < sl->used;) {
            const struct diff_entry *en = (const struct diff_entry *)(sl->mem + off);
            uint64_t h = hash_key(diff_entry_key(en), en->keylen);
            size_t i = (size_t)h & mask;
            while (slot_ref(&ix->slots[i]))
                i = (i + 1) & mask;
            slot_set(&ix->slots[i], tag_of(h), ref_of(s, off));
            off += entry_bytes(ix->ncells, en->keylen);
        }
    }
}

/* n bytes (from entry_bytes) for a new entry at the end of the newest slab, or of a new one;
 * *ref gets its reference. NULL when the index has all the slabs references can name (or, for
 * absurd column counts, when an entry would not fit in a slab). */
static struct diff_entry *carve(diff_index *ix, size_t n, uint32_t *ref)
{
    struct slab *s = ix->nslabs ? &ix->slabs[ix->nslabs - 1] : NULL;
    struct diff_entry *en;

    if (n > SLAB_BYTES)
        return NULL;
    if (!s || s->used + n > SLAB_BYTES) {
        if (ix->nslabs == MAX_SLABS)
            return NULL;
        if (ix->nslabs == ix->slabs_cap) {
            ix->slabs_cap = ix->slabs_cap ? ix->slabs_cap * 2 : 8;
            ix->slabs = xrealloc(ix->slabs, ix->slabs_cap * sizeof(*ix->slabs));
        }
        s = &ix->slabs[ix->nslabs++];
        s->mem = xmalloc(SLAB_BYTES);
        s->used = 0;
    }
    *ref = ref_of(ix->nslabs - 1, s->used);
    en = (struct diff_entry *)(s->mem + s->used);
    s->used += n;
    return en;
}

struct diff_entry *diff_index_put(diff_index *ix, const char *key, size_t len)
{
    uint64_t h;
    struct slot *slot;
    struct diff_entry *en;
    uint32_t ref;
    size_t n;

    if (len > UINT16_MAX)
        return NULL;
    h = hash_key(key, len);
    slot = find_slot(ix, key, len, h);
    if ((ref = slot_ref(slot)) != 0)
        return entry_of(ix, ref);
    if ((ix->count + 1) * 4 > ix->cap * 3) {
        grow(ix); /* before carving: grow() rehashes every entry in the slabs */
        slot = find_slot(ix, key, len, h);
    }
    n = entry_bytes(ix->ncells, len);
    en = carve(ix, n, &ref);
    if (!en)
        return NULL;
    memset(en, 0, n);
    en->keylen = (uint16_t)len;
    en->ncells = (uint8_t)ix->ncells;
    memcpy((char *)(en->hashes + en->ncells), key, len);
    slot_set(slot, tag_of(h), ref);
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
    size_t n = ix->cap * sizeof(*ix->slots) + ix->slabs_cap * sizeof(*ix->slabs);
    if (ix->nslabs) /* full slabs, and what the newest uses */
        n += (ix->nslabs - 1) * SLAB_BYTES + ix->slabs[ix->nslabs - 1].used;
    return n;
}

int diff_index_each(diff_index *ix, int (*fn)(void *ud, struct diff_entry *en), void *ud)
{
    for (size_t s = 0; s < ix->nslabs; s++) {
        for (size_t off = 0; off < ix->slabs[s].used;) {
            struct diff_entry *en = (struct diff_entry *)(ix->slabs[s].mem + off);
            int rc;
            off += entry_bytes(ix->ncells, en->keylen);
            rc = fn(ud, en);
            if (rc)
                return rc;
        }
    }
    return 0;
}
