/*
 * frame.h - the WebChannel length-prefixed chunk framer (webchannel.md section 3).
 *
 * A WebChannel response body (the handshake and forward POSTs, the back-channel GET) is a
 * concatenation of chunks `<decimal length>\n<payload>` with nothing between them. The length
 * counts UTF-16 code units of the payload (what JavaScript's string.length returns), while the
 * payload travels as raw UTF-8, so the end of a payload can only be found by decoding it. HTTP
 * hands the body over in arbitrary pieces that may end anywhere: inside a prefix, inside a UTF-8
 * sequence, or after several chunks. A `wc_framer` turns that stream of pieces back into whole
 * payloads.
 *
 * Strictness (every violation poisons the framer, see below):
 *   - The prefix is 1 to 10 ASCII digits then '\n'. No sign, no spaces, no '\r'. A leading zero
 *     is refused unless the prefix is exactly "0" (an empty payload): the server prints lengths
 *     with Java's integer formatting, which never pads, so "007" means we lost our place in the
 *     stream (for instance by miscounting the previous payload) and must not guess on. FS_EPARSE.
 *   - The payload must be valid UTF-8: no overlong forms, no surrogates (U+D800..U+DFFF), nothing
 *     past U+10FFFF, no stray continuation byte, no truncated sequence. FS_EUTF8.
 *   - The declared unit count must end on a character boundary. Since a character outside the
 *     BMP counts two units, a count that would end between the two halves of its surrogate pair
 *     is FS_EPROTO (JavaScript would have cut the pair in half).
 *   - A payload may hold at most `max_chunk_bytes` bytes. A prefix that declares more units than
 *     that (each unit needs at least one byte) is refused as soon as its '\n' arrives, and a
 *     payload whose bytes pass the cap is refused at the first byte too many, so the framer never
 *     buffers more than the cap. FS_ETOOBIG.
 *
 * Delivery: wc_frame_feed() calls `on_chunk` once per complete payload, in order. When a whole
 * payload lies inside the piece being fed it is passed in place (no copy); a payload split across
 * pieces is gathered in the framer's buffer. Either way the bytes are valid UTF-8, are not
 * NUL-terminated, and are only valid during the call.
 *
 * Errors: after any failure (including a negative return from on_chunk) the framer is poisoned:
 * every later feed returns the same code until wc_frame_reset(). The rest of the failing piece is
 * not examined. Error messages name the byte offset in the response and the chunk number, never
 * payload content.
 *
 * Ownership: the caller embeds a `wc_framer`, sets it up with wc_frame_init() and frees its
 * buffer with wc_frame_release(). One framer serves one response at a time; call
 * wc_frame_reset() before feeding the next HTTP response. Not thread-safe; on_chunk must not feed
 * or reset the framer that called it.
 */
#ifndef FIRESYNC_FRAME_H
#define FIRESYNC_FRAME_H

#include "common/buf.h"
#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Cap used when wc_frame_init() is given 0. The server library's own chunk limit is 10 MB
 * (webchannel.md section 4); at up to three UTF-8 bytes per UTF-16 unit, 32 MiB covers it. */
#define WC_FRAME_DEFAULT_MAX ((size_t)32 << 20)

/* Called once per complete payload: `payload` holds `len` bytes of valid UTF-8 (len may be 0),
 * valid only during the call. Return 0 to go on, or a negative FS_E* code to stop the feed, which
 * then returns that code. The callback should report its own details through `ud`; if the fserr
 * given to wc_frame_feed() does not already hold that code, the framer fills it with a generic
 * message naming the chunk. */
typedef int (*wc_chunk_fn)(void *ud, const char *payload, size_t len);

typedef struct wc_framer {
    buf chunk;           /* bytes of a payload that spans pieces; capped at `max` */
    size_t max;          /* cap on one payload's bytes */
    uint64_t off;        /* bytes of the current response consumed so far (for messages) */
    uint64_t nchunks;    /* payloads delivered in the current response */
    uint64_t value;      /* prefix: the number read so far; payload: the units declared */
    uint64_t units_left; /* payload: UTF-16 units still to come */
    size_t got;          /* payload: bytes seen so far */
    int err;             /* the code that poisoned the framer, 0 when healthy */
    uint8_t state;       /* internal: reading a prefix, a payload, or failed */
    uint8_t ndigits;     /* prefix: digits read so far */
    uint8_t u8need;      /* payload: continuation bytes still due for the current character */
    uint8_t u8lo, u8hi;  /* payload: allowed range of the next continuation byte */
} wc_framer;

/* Sets up an idle framer whose payloads may hold at most max_chunk_bytes bytes (0 means
 * WC_FRAME_DEFAULT_MAX). Allocates nothing. */
void wc_frame_init(wc_framer *f, size_t max_chunk_bytes);

/* Frees the framer's buffer. The framer may be set up again with wc_frame_init(). */
void wc_frame_release(wc_framer *f);

/* Forgets any partial chunk and any earlier error, ready for a new HTTP response. Keeps the cap
 * (and a modest buffer allocation). */
void wc_frame_reset(wc_framer *f);

/* Consumes the n bytes at p (the next piece of the response body), calling on_chunk for every
 * payload completed. Returns 0, or FS_EPARSE (bad prefix), FS_ETOOBIG (cap), FS_EUTF8 (bad
 * UTF-8), FS_EPROTO (count ends inside a surrogate pair), the negative code on_chunk returned, or
 * the earlier code when the framer is poisoned; e (may be NULL) says what and where. */
int wc_frame_feed(wc_framer *f, const char *p, size_t n, wc_chunk_fn on_chunk, void *ud, fserr *e);

/* True when the bytes fed since the last reset do not end on a chunk boundary: a prefix or a
 * payload was started but not finished (a truncated response), or the framer is poisoned. */
bool wc_frame_pending(const wc_framer *f);

/* The number of UTF-16 code units of the n bytes of UTF-8 at p: every byte that is not a
 * continuation byte (0x80..0xBF) counts one, and every byte >= 0xF0 one more (the second half of
 * a surrogate pair). Does not validate; for valid UTF-8 it equals JavaScript's string.length. */
size_t wc_utf16_units(const char *p, size_t n);

#endif
