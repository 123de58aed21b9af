/*
 * json.h - a strict, allocation-light JSON tokenizer for the hot path (RFC 8259).
 *
 * A RESET re-sends every document of a target, and the agent must skip an unchanged one in well
 * under 2 us, so this is not a DOM: json_parse() validates a byte range completely and records it
 * as a flat array of tokens in a reusable `json_doc`, in document order (a container first, then
 * its children). Nothing is copied and nothing is allocated per value; the token array grows with
 * xrealloc and is kept across parses.
 *
 * Layout: token 0 is the root. An object token is followed by its members, each a key (a string
 * token) and then the value's subtree; an array token by its elements' subtrees. Every token
 * records the index just past its subtree (`end`), so skipping a value is O(1).
 *
 * Strictness: the whole input must be one JSON value with optional whitespace around it. Numbers
 * follow the RFC grammar, strings must be valid UTF-8 (no overlongs, no surrogates, nothing past
 * U+10FFFF) without raw control characters, escapes must be the RFC's, and \uXXXX surrogates
 * must come in high+low pairs. Hostile input is refused with FS_ETOOBIG when it needs more tokens
 * or deeper nesting than the doc's limits, which the owner sets. Errors carry the byte offset and
 * what was expected there.
 *
 * Ownership: the doc owns its token array; the source bytes stay the caller's and must outlive
 * every use of the tokens. Token indices are ints; "none" is any negative value (JSON_NONE).
 */
#ifndef FIRESYNC_JSON_H
#define FIRESYNC_JSON_H

#include "common/buf.h"
#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default limits. The depth is 128 rather than 64 because a Firestore value costs three JSON
 * levels per map/array level ({"mapValue":{"fields":{...}}}) and Firestore allows 20 of those
 * inside a document that the WebChannel wraps in six more levels. */
#define JSON_DEFAULT_MAX_TOKENS 1000000u
#define JSON_DEFAULT_MAX_DEPTH 128u

/* "No such token", returned by the lookups below. */
#define JSON_NONE (-1)

enum json_type {
    JSON_OBJECT = 1,
    JSON_ARRAY,
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL,
};

/* Token flags. */
#define JSON_F_ESCAPED 0x01 /* string: holds at least one backslash escape */
#define JSON_F_INT 0x02     /* number: no fraction and no exponent */

typedef struct json_tok {
    uint32_t off;   /* byte offset in the source: a string's first content byte (after the quote),
                       otherwise the token's first character */
    uint32_t len;   /* bytes: a string's raw content without quotes (escapes not decoded); a
                       container's whole text from bracket to bracket; a scalar's text */
    uint32_t end;   /* index just past this token's subtree (index + 1 for scalars and keys) */
    uint32_t count; /* object: members; array: elements; otherwise 0 */
    uint8_t type;   /* enum json_type */
    uint8_t flags;  /* JSON_F_* */
} json_tok;

typedef struct json_doc {
    const char *src;    /* borrowed: the bytes of the last successful parse */
    size_t srclen;      /* their length */
    json_tok *toks;     /* owned; valid up to ntoks after a successful parse */
    uint32_t ntoks;     /* tokens of the last parse (0 after a failed one) */
    uint32_t cap;       /* tokens allocated */
    uint32_t max_toks;  /* refuse input needing more tokens (FS_ETOOBIG) */
    uint32_t max_depth; /* refuse input nesting containers deeper (FS_ETOOBIG) */
    uint32_t *stack;    /* owned: open containers during a parse */
    uint32_t stack_cap; /* entries allocated */
} json_doc;

/* Sets up an empty doc with the default limits. Allocates nothing. */
void json_doc_init(json_doc *d);
/* Frees the token array; the doc can be reused after json_doc_init(). */
void json_doc_release(json_doc *d);
/* Changes the limits (0 keeps the current one). */
void json_doc_set_limits(json_doc *d, uint32_t max_tokens, uint32_t max_depth);

/* Tokenizes the n bytes at s (no NUL needed; sources over 4 GiB are FS_ETOOBIG). Returns 0, or
 * FS_EPARSE (syntax, bad escape or control character), FS_EUTF8 (bad UTF-8 or lone surrogate
 * escape) or FS_ETOOBIG (limits), with e saying "json: byte N: expected ..., found ...". After
 * a failure the doc holds no tokens. */
int json_parse(json_doc *d, const char *s, size_t n, fserr *e);

/* Offset of the first byte of s[0..n) that does not start a valid UTF-8 character (the same
 * rules as for strings: no overlongs, surrogates or code points past U+10FFFF), n when all
 * bytes are valid. */
size_t json_utf8_check(const char *s, size_t n);

/* The token at index i (0 <= i < d->ntoks). */
static inline const json_tok *json_tok_at(const json_doc *d, int i)
{
    return &d->toks[i];
}

/* The type of token i, or 0 when i is JSON_NONE or out of range. */
int json_type_of(const json_doc *d, int i);
/* The raw bytes of token i in the source (for strings without quotes, escapes not decoded). */
const char *json_raw(const json_doc *d, int i, size_t *len);
/* "object", "array", "string", "number", "true", "false", "null"; "none" for anything else. */
const char *json_type_name(int type);

/* Index of the first element of array c or the first key of object c; JSON_NONE when empty or
 * when c is not a container. */
int json_child(const json_doc *d, int c);
/* Index of the element or key after child i of container c; JSON_NONE after the last one. For
 * objects, i and the result are keys and the member's value is at key + 1:
 *     for (int k = json_child(d, obj); k >= 0; k = json_sibling(d, obj, k)) use(k, k + 1); */
int json_sibling(const json_doc *d, int c, int i);
/* Index of element n of array a, JSON_NONE when out of range (O(n)). */
int json_arr_at(const json_doc *d, int a, uint32_t n);

/* The value of the first member of object obj whose decoded key equals key (a C string, or n
 * bytes for the _n form); JSON_NONE when absent or when obj is not an object. */
int json_obj_get(const json_doc *d, int obj, const char *key);
int json_obj_getn(const json_doc *d, int obj, const char *key, size_t n);
/* True when object obj has two members with the same decoded key (so "a" and "\u0061" clash).
 * O(n^2) for small objects, hashed for large ones. False for non-objects. */
bool json_obj_has_duplicates(const json_doc *d, int obj);

/* True when string token tok decodes to exactly the C string lit (or the n bytes at s). No
 * allocation. False for non-strings. */
bool json_str_eq(const json_doc *d, int tok, const char *lit);
bool json_str_eqn(const json_doc *d, int tok, const char *s, size_t n);
/* Appends the decoded bytes of string token tok to out (\u0000 becomes a real NUL byte, counted
 * in out->len; surrogate pairs become one 4-byte character). Returns 0, FS_ETYPE when tok is not
 * a string, or FS_ETOOBIG at out's cap. */
int json_str_unescape(const json_doc *d, int tok, buf *out, fserr *e);

/* Reads token tok as an int64: a number or a string holding a JSON number ("-42", "7", "1e3",
 * "7.0") whose value is integral. Returns 0, FS_ETYPE (not a number, or not integral) or FS_ERANGE
 * (outside int64). */
int json_int64(const json_doc *d, int tok, int64_t *out, fserr *e);
/* Reads token tok as a double: a number, or a string holding a JSON number. Returns 0, FS_ETYPE
 * or FS_ERANGE (overflows a double; underflow rounds towards zero). Parsing uses strtod, so the
 * process must keep the "C" LC_NUMERIC locale (firesync never calls setlocale). */
int json_double(const json_doc *d, int tok, double *out, fserr *e);

#endif
