/*
 * index.h - the applied index: what firesync last wrote for each document of one collection
 * (prefix diff_index_).
 *
 * Design invariant 3: no SELECT per change. For every document the index keeps its row key,
 * the Firestore update time last applied (or the delete time of its tombstone), one 64-bit hash
 * per column cell, and the membership epoch in which the stream last showed it. That answers,
 * in memory and in O(1): is this version already applied (skip it), which columns changed,
 * which documents a RESET did not re-send (their epoch is old), and how many are live (for
 * existence filters).
 *
 * Size: an entry is 16 bytes + 8 per cell + the key, rounded up to 8, carved from 1 MiB slabs
 * (no per-entry malloc header), plus a 6-byte hash-table slot at a load factor of at most 3/4.
 * Entries are never freed one by one: a deleted document keeps its entry as a tombstone, as its
 * row keeps one in MySQL. diff_index_bytes() reports the total. An index holds at most just
 * under 32 GiB of entries (some 350 million documents of 7 columns).
 *
 * Ownership: the index owns its slabs and table; entry pointers stay valid until
 * diff_index_free(). Used only on the event loop's thread.
 */
#ifndef FIRESYNC_DIFF_INDEX_H
#define FIRESYNC_DIFF_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct diff_entry {
    int64_t time_us;  /* live: the applied update time; tombstone: the delete time */
    uint32_t epoch;   /* membership epoch of the last sighting */
    uint16_t keylen;
    uint8_t flags;    /* DIFF_E_* */
    uint8_t ncells;
    uint64_t hashes[]; /* ncells hashes, then the key bytes (not NUL-terminated) */
};

#define DIFF_E_LIVE 0x01

typedef struct diff_index diff_index;

diff_index *diff_index_new(unsigned ncells);
void diff_index_free(diff_index *ix);

/* The entry for key, or NULL. */
struct diff_entry *diff_index_get(const diff_index *ix, const char *key, size_t len);
/* The entry for key, created (not live, time 0, hashes 0) when absent. Keys longer than
 * 65535 bytes are refused (NULL), as are new keys once the index is full (see Size). */
struct diff_entry *diff_index_put(diff_index *ix, const char *key, size_t len);
/* The key bytes of an entry. */
const char *diff_entry_key(const struct diff_entry *en);

/* Marks en live or not, keeping the live count right. */
void diff_index_set_live(diff_index *ix, struct diff_entry *en, bool live);
size_t diff_index_live(const diff_index *ix);
size_t diff_index_count(const diff_index *ix);
/* Bytes held by the index (slabs and table). */
size_t diff_index_bytes(const diff_index *ix);

/* Calls fn for every entry (in no particular order); stops early on a non-zero return. fn must
 * not add entries. */
int diff_index_each(diff_index *ix, int (*fn)(void *ud, struct diff_entry *en), void *ud);

#endif
