/*
 * base64.h - RFC 4648 base64, standard ("+/" with padding, what proto3 JSON uses for bytes
 * and resume tokens) and URL-safe ("-_" without padding, what JWTs use).
 *
 * Decoding is strict: characters outside the alphabet, bad padding or a bad length are
 * FS_EPARSE. Output goes to a caller's `buf`, which owns it.
 */
#ifndef FIRESYNC_BASE64_H
#define FIRESYNC_BASE64_H

#include "common/buf.h"

#include <stddef.h>

enum base64_variant { BASE64_STD, BASE64_URL };

/* Appends the encoding of n bytes to out. Returns 0 or FS_ETOOBIG (out's cap). */
int base64_encode(enum base64_variant v, const void *p, size_t n, buf *out);
/* Appends the decoded bytes of the n characters at s to out. BASE64_STD requires padding to a
 * multiple of 4; BASE64_URL accepts it with or without. Returns 0, FS_EPARSE or FS_ETOOBIG. */
int base64_decode(enum base64_variant v, const char *s, size_t n, buf *out);

#endif
