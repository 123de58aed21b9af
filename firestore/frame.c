/*
 * frame.c - the WebChannel chunk framer (see frame.h).
 *
 * Owns the reassembly of `<UTF-16 length>\n<UTF-8 payload>` chunks from arbitrary HTTP pieces.
 * It lives apart from the HTTP transport because it is pure byte-stream logic that is easy to get
 * subtly wrong (a length in UTF-16 units over a UTF-8 body, pieces that cut characters in half)
 * and easy to test and fuzz on its own.
 *
 * How: a state machine with two states that carry over between pieces, the prefix (digits so
 * far, read a byte at a time) and the payload (units still due plus an incremental UTF-8
 * validator). The payload is validated while it is counted, because counting is decoding: the
 * validator's per-lead-byte ranges for the first continuation byte reject overlongs, surrogates
 * and code points past U+10FFFF in one place. Payload bytes are the hot path (every document of a
 * RESET passes through here), so scan() keeps its counters in locals and skips runs of ASCII
 * eight bytes at a time. A payload that completes inside the piece it started in is handed over
 * in place; only a payload that spans pieces is copied into the framer's capped buf, whose
 * allocation is kept for the next one up to KEEP_BUFFER_BYTES.
 */
#include "firestore/frame.h"

#include <stdio.h>
#include <string.h>

enum { ST_PREFIX, ST_PAYLOAD, ST_FAILED };

/* 10 digits cover the 32-bit lengths a Java server can print; anything longer is garbage. */
#define MAX_DIGITS 10

/* After delivering a buffered payload (and on reset), a buffer grown past this is freed rather
 * than kept, so one huge chunk near the cap does not pin its memory for the life of the session.
 * Up to it the allocation is reused: catch-up chunks (the emulator sends up to ~1400 documents,
 * under 1 MB, per chunk; a slow reader may get a whole RESET cycle of a few MB in one) arrive one
 * after another, and regrowing the buffer (realloc copies, fresh pages) for each one would cost
 * about as much as framing it. The buffer doubles from 64 bytes, so this keeps any payload of up
 * to 4 MiB - 1 bytes; the session's two framers hold at most 8 MiB between them. */
#define KEEP_BUFFER_BYTES ((size_t)4 << 20)

void wc_frame_init(wc_framer *f, size_t max_chunk_bytes)
{
    memset(f, 0, sizeof(*f));
    f->max = max_chunk_bytes ? max_chunk_bytes : WC_FRAME_DEFAULT_MAX;
    buf_init(&f->chunk, f->max);
    f->state = ST_PREFIX;
}

void wc_frame_release(wc_framer *f)
{
    buf_release(&f->chunk);
}

/* Readies the framer for the next prefix (after a delivered payload, or for a new response). */
static void expect_prefix(wc_framer *f)
{
    f->state = ST_PREFIX;
    f->ndigits = 0;
    f->value = 0;
    f->units_left = 0;
    f->got = 0;
    f->u8need = 0;
}

static void trim_buffer(wc_framer *f)
{
    if (f->chunk.cap > KEEP_BUFFER_BYTES)
        buf_release(&f->chunk);
    else
        buf_reset(&f->chunk);
}

void wc_frame_reset(wc_framer *f)
{
    expect_prefix(f);
    trim_buffer(f);
    f->off = 0;
    f->nchunks = 0;
    f->err = 0;
}

bool wc_frame_pending(const wc_framer *f)
{
    return f->state != ST_PREFIX || f->ndigits > 0;
}

size_t wc_utf16_units(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t units = 0;

    for (size_t i = 0; i < n; i++) {
        units += (s[i] & 0xC0) != 0x80;
        units += s[i] >= 0xF0;
    }
    return units;
}

/* Records the failure so that the framer stays poisoned, and returns it. */
static int fail(wc_framer *f, int code)
{
    f->state = ST_FAILED;
    f->err = code;
    return code;
}

/* Fills e with "webchannel frame: response byte N (chunk K): <what>" and poisons the framer. */
static int failf(wc_framer *f, fserr *e, int code, const char *what)
{
    fserr_set(e, code, "webchannel frame: response byte %llu (chunk %llu): %s",
              (unsigned long long)f->off, (unsigned long long)f->nchunks + 1, what);
    return fail(f, code);
}

/* One byte of a length prefix. On '\n' the framer moves to the payload state. */
static int prefix_byte(wc_framer *f, unsigned char c, fserr *e)
{
    char what[160];

    if (c >= '0' && c <= '9') {
        if (f->ndigits == 1 && f->value == 0)
            return failf(f, e, FS_EPARSE, "length prefix has a leading zero");
        if (f->ndigits == MAX_DIGITS)
            return failf(f, e, FS_EPARSE, "length prefix is longer than 10 digits");
        f->value = f->value * 10 + (uint64_t)(c - '0');
        f->ndigits++;
        return 0;
    }
    if (c == '\n' && f->ndigits > 0) {
        if (f->value > f->max) {
            snprintf(what, sizeof(what),
                     "length prefix declares %llu UTF-16 units, more than the %zu-byte chunk cap",
                     (unsigned long long)f->value, f->max);
            return failf(f, e, FS_ETOOBIG, what);
        }
        f->state = ST_PAYLOAD;
        f->units_left = f->value;
        f->got = 0;
        f->u8need = 0;
        return 0;
    }
    if (c == '\n')
        return failf(f, e, FS_EPARSE, "empty length prefix");
    snprintf(what, sizeof(what), "length prefix: expected %s, found byte 0x%02x",
             f->ndigits ? "a digit or '\\n'" : "a digit", c);
    return failf(f, e, FS_EPARSE, what);
}

static bool payload_done(const wc_framer *f)
{
    return f->units_left == 0 && f->u8need == 0;
}

/* True when the 8 bytes at s are all ASCII (no high bit set): each counts one byte and one
 * UTF-16 unit and needs no validation. memcpy is how C reads 8 unaligned bytes as one word. */
static inline bool ascii8(const unsigned char *s)
{
    uint64_t x;

    memcpy(&x, s, 8);
    return (x & 0x8080808080808080ull) == 0;
}

/* Counts and validates payload bytes from s until the payload is complete or the piece ends;
 * *used gets the number of bytes consumed.
 *
 * The counters live in locals for the whole loop and go back into the framer on the way out:
 * s is an unsigned char pointer, which may alias *f as far as the compiler knows, so fields
 * updated in the loop would be reloaded and stored on every byte. Runs of ASCII are taken 8 bytes
 * at a time when the count, the cap and the piece all have room for 8 more; everything else goes
 * through the byte-at-a-time checks, in this order per byte: the cap, then the UTF-8 rules. */
static int scan(wc_framer *f, const unsigned char *s, size_t n, size_t *used, fserr *e)
{
    char what[200];
    uint64_t units = f->units_left;
    size_t got = f->got, max = f->max, i = 0;
    unsigned need = f->u8need, lo = f->u8lo, hi = f->u8hi;
    int rc = 0;

    for (;;) {
        if (need == 0) {
            if (units == 0)
                break; /* payload complete */
            while (n - i >= 8 && units >= 8 && max - got >= 8 && ascii8(s + i)) {
                i += 8;
                got += 8;
                units -= 8;
            }
            if (units == 0 || i == n)
                break;
        } else if (i == n) {
            break; /* the rest of the character comes in the next piece */
        }
        if (got >= max) {
            rc = FS_ETOOBIG;
            snprintf(what, sizeof(what),
                     "payload of %llu UTF-16 units passes the %zu-byte chunk cap",
                     (unsigned long long)f->value, max);
            break;
        }
        unsigned c = s[i];
        if (need > 0) { /* a continuation byte */
            if (c < lo || c > hi) {
                rc = FS_EUTF8;
                snprintf(what, sizeof(what),
                         "invalid UTF-8 in payload: byte 0x%02x where a continuation byte in "
                         "0x%02x..0x%02x was due (truncated, overlong, surrogate or past "
                         "U+10FFFF)",
                         c, lo, hi);
                break;
            }
            lo = 0x80;
            hi = 0xBF;
            need--;
        } else if (c < 0x80) {
            units--;
        } else {
            /* A lead byte: the range of its first continuation byte is what rules out overlongs
             * (E0, F0), surrogates (ED) and code points past U+10FFFF (F4). */
            lo = 0x80;
            hi = 0xBF;
            if (c >= 0xC2 && c <= 0xDF) {
                need = 1;
            } else if (c >= 0xE0 && c <= 0xEF) {
                need = 2;
                lo = c == 0xE0 ? 0xA0 : 0x80;
                hi = c == 0xED ? 0x9F : 0xBF;
            } else if (c >= 0xF0 && c <= 0xF4) {
                need = 3;
                lo = c == 0xF0 ? 0x90 : 0x80;
                hi = c == 0xF4 ? 0x8F : 0xBF;
            } else {
                rc = FS_EUTF8;
                snprintf(what, sizeof(what), "invalid UTF-8 in payload: %s byte 0x%02x",
                         c <= 0xBF ? "unexpected continuation" : "impossible", c);
                break;
            }
            /* a 4-byte character is a surrogate pair: two units, which must both fit */
            if (need == 3 && units < 2) {
                rc = FS_EPROTO;
                snprintf(what, sizeof(what),
                         "length prefix ends between the two UTF-16 halves of a 4-byte character");
                break;
            }
            units -= need == 3 ? 2 : 1;
        }
        i++;
        got++;
    }
    f->units_left = units;
    f->got = got;
    f->off += i;
    f->u8need = (uint8_t)need;
    f->u8lo = (uint8_t)lo;
    f->u8hi = (uint8_t)hi;
    *used = i;
    return rc ? failf(f, e, rc, what) : 0;
}

/* Hands a complete payload to the callback and readies the next prefix. */
static int deliver(wc_framer *f, const char *p, size_t len, wc_chunk_fn on_chunk, void *ud,
                   fserr *e)
{
    int rc;

    expect_prefix(f);
    f->nchunks++;
    rc = on_chunk(ud, len ? p : "", len);
    if (rc >= 0)
        return 0;
    if (!e || e->code != rc)
        fserr_set(e, rc,
                  "webchannel frame: chunk %llu (ending at response byte %llu): "
                  "handler failed: %s",
                  (unsigned long long)f->nchunks, (unsigned long long)f->off, fserr_str(rc));
    return fail(f, rc);
}

/* Consumes payload bytes from the n bytes at p; *used gets how many. Delivers the payload if it
 * completes here, in place when it started in this piece, otherwise from the buffer. */
static int payload(wc_framer *f, const char *p, size_t n, size_t *used, wc_chunk_fn on_chunk,
                   void *ud, fserr *e)
{
    int rc;
    size_t i;

    rc = scan(f, (const unsigned char *)p, n, &i, e);
    *used = i;
    if (rc)
        return rc;
    if (f->chunk.len == 0 && payload_done(f))
        return deliver(f, p, i, on_chunk, ud, e);
    /* cannot pass the cap: scan() counted every byte against it */
    rc = buf_add(&f->chunk, p, i);
    if (rc)
        return failf(f, e, rc, "cannot buffer the payload");
    if (!payload_done(f))
        return 0;
    rc = deliver(f, f->chunk.p, f->chunk.len, on_chunk, ud, e);
    trim_buffer(f);
    return rc;
}

int wc_frame_feed(wc_framer *f, const char *p, size_t n, wc_chunk_fn on_chunk, void *ud, fserr *e)
{
    size_t i = 0, used;
    int rc;

    if (f->state == ST_FAILED)
        return fserr_set(e, f->err,
                         "webchannel frame: the framer failed earlier in this response (%s); "
                         "reset it before feeding a new response",
                         fserr_name(f->err));
    while (i < n) {
        if (f->state == ST_PREFIX) {
            rc = prefix_byte(f, (unsigned char)p[i], e);
            if (rc)
                return rc;
            i++;
            f->off++;
            /* an empty payload is complete as soon as its prefix is */
            if (f->state == ST_PAYLOAD && f->units_left == 0) {
                rc = deliver(f, p + i, 0, on_chunk, ud, e);
                if (rc)
                    return rc;
            }
            continue;
        }
        rc = payload(f, p + i, n - i, &used, on_chunk, ud, e);
        if (rc)
            return rc;
        i += used;
    }
    return 0;
}
