/*
 * buf.h - a growable byte buffer with a hard size cap (the idea of curl's dynbuf).
 *
 * Every buffer filled from outside input (an HTTP body, a WebChannel chunk, a config file) is a
 * `buf` with a cap, so a hostile or broken peer cannot grow the agent without bound: an append
 * past the cap fails with FS_ETOOBIG and leaves the buffer as it was. The bytes are always
 * NUL-terminated (the NUL is not counted in `len`), so text can be handed to C string functions,
 * but the content may itself hold NULs: use `len`.
 *
 * Ownership: a `buf` is embedded by its owner, set up with buf_init() and released with
 * buf_release(); buf_take() hands the bytes to the caller, who frees them with free().
 */
#ifndef FIRESYNC_BUF_H
#define FIRESYNC_BUF_H

#include <stddef.h>

typedef struct buf {
    char *p;    /* NULL until the first append; NUL-terminated after */
    size_t len; /* bytes in use, not counting the terminating NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len; 0 means no limit (only for trusted, local data) */
} buf;

void buf_init(buf *b, size_t max);
void buf_release(buf *b);
/* Forgets the content, keeps the allocation. */
void buf_reset(buf *b);
/* Appends n bytes; FS_ETOOBIG (buffer unchanged) when len + n would pass max. */
int buf_add(buf *b, const void *p, size_t n);
int buf_adds(buf *b, const char *s);
int buf_addc(buf *b, char c);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes the first n bytes (n <= len). */
void buf_consume(buf *b, size_t n);
/* Returns the bytes (never NULL; "" for an empty buffer) and leaves b empty and re-usable. */
char *buf_take(buf *b);
/* The content as a C string ("" when empty). */
const char *buf_str(const buf *b);

#endif
