/*
 * json.c - the strict JSON tokenizer of json.h and its read helpers.
 *
 * It owns the token array and the container stack of each json_doc (grown with xrealloc, kept
 * across parses) and nothing else: tokens point into the caller's bytes. This exists instead of
 * cJSON because the agent reads every document of a RESET only to find that most are unchanged,
 * and a malloc per node would cost more than the whole skip is allowed to. The parser is a state
 * machine over an explicit stack, not recursion, so the depth limit is the only bound on nesting;
 * it keeps its state in locals and scans strings 8 bytes at a time (see "the parser").
 *
 * Strings are validated once, here (UTF-8, escapes, surrogate pairs), so the helpers that decode
 * them later (json_str_eq, json_str_unescape) can trust the bytes and never fail on content. Key
 * lookups compare the token's length (or, for C strings, the bytes) before anything else.
 */
#include "firestore/json.h"

#include "common/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- doc ------------------------------------------------------------------------------------ */

void json_doc_init(json_doc *d)
{
    memset(d, 0, sizeof(*d));
    d->max_toks = JSON_DEFAULT_MAX_TOKENS;
    d->max_depth = JSON_DEFAULT_MAX_DEPTH;
}

void json_doc_release(json_doc *d)
{
    uint32_t mt = d->max_toks, md = d->max_depth;

    free(d->toks);
    free(d->stack);
    json_doc_init(d);
    d->max_toks = mt;
    d->max_depth = md;
}

void json_doc_set_limits(json_doc *d, uint32_t max_tokens, uint32_t max_depth)
{
    if (max_tokens)
        d->max_toks = max_tokens > (uint32_t)INT_MAX ? (uint32_t)INT_MAX : max_tokens;
    if (max_depth)
        d->max_depth = max_depth;
}

int json_type_of(const json_doc *d, int i)
{
    if (i < 0 || (uint32_t)i >= d->ntoks)
        return 0;
    return d->toks[i].type;
}

const char *json_raw(const json_doc *d, int i, size_t *len)
{
    *len = d->toks[i].len;
    return d->src + d->toks[i].off;
}

const char *json_type_name(int type)
{
    switch (type) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_NUMBER:
        return "number";
    case JSON_TRUE:
        return "true";
    case JSON_FALSE:
        return "false";
    case JSON_NULL:
        return "null";
    default:
        return "none";
    }
}

/* ---- lexical pieces shared by the parser and the helpers ------------------------------------ */

/* 1 for the bytes a string may hold as they are: printable ASCII except '"' and '\\'. */
static const unsigned char plain_byte[256] = {
    ['\x20'] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1,
    [')'] = 1, ['*'] = 1, ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, [':'] = 1, [';'] = 1, ['<'] = 1, ['='] = 1, ['>'] = 1, ['?'] = 1, ['@'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1, ['['] = 1, [']'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['a'] = 1,
    ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1,
    ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1,
    ['z'] = 1, ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1, ['\x7f'] = 1,
};

static bool is_digit(unsigned c)
{
    return c - '0' < 10;
}

static int hexval(unsigned c)
{
    if (c - '0' < 10)
        return (int)(c - '0');
    c |= 0x20;
    if (c - 'a' < 6)
        return (int)(c - 'a' + 10);
    return -1;
}

/* Reads 4 hex digits at s (n bytes available); -1 when they are not there. */
static long hex4(const unsigned char *s, size_t n)
{
    long v = 0;
    if (n < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence starting at s (avail bytes), 0 when invalid: overlongs,
 * surrogates (U+D800..DFFF) and code points past U+10FFFF are refused (RFC 3629 table). */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    size_t k;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (avail < k || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return k;
}

size_t json_utf8_check(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t p = 0, k;

    while (p < n) {
        if (u[p] < 0x80) {
            p++;
            continue;
        }
        k = utf8_seq(u + p, n - p);
        if (!k)
            return p;
        p += k;
    }
    return n;
}

static unsigned utf8_put(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Scans a JSON number at s (n bytes). Returns its length, or 0 with *err_at and *what saying
 * where and why it is malformed. *is_int tells whether it has neither fraction nor exponent. */
static size_t scan_number(const unsigned char *s, size_t n, bool *is_int, size_t *err_at,
                          const char **what)
{
    size_t p = 0;

    *is_int = true;
    if (p < n && s[p] == '-')
        p++;
    if (p >= n || !is_digit(s[p])) {
        *err_at = p;
        *what = "expected a digit";
        return 0;
    }
    if (s[p] == '0') {
        p++;
        if (p < n && is_digit(s[p])) {
            *err_at = p;
            *what = "expected no digit after a leading zero";
            return 0;
        }
    } else {
        while (p < n && is_digit(s[p]))
            p++;
    }
    if (p < n && s[p] == '.') {
        *is_int = false;
        p++;
        if (p >= n || !is_digit(s[p])) {
            *err_at = p;
            *what = "expected a digit after '.'";
            return 0;
        }
        while (p < n && is_digit(s[p]))
            p++;
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        *is_int = false;
        p++;
        if (p < n && (s[p] == '+' || s[p] == '-'))
            p++;
        if (p >= n || !is_digit(s[p])) {
            *err_at = p;
            *what = "expected a digit in the exponent";
            return 0;
        }
        while (p < n && is_digit(s[p]))
            p++;
    }
    return p;
}

/* Decodes the (validated) escape at s[*pp] == '\\' into UTF-8 at out; returns its length and
 * moves *pp past the escape (past both halves of a surrogate pair). */
static unsigned decode_escape(const unsigned char *s, size_t *pp, unsigned char out[4])
{
    size_t p = *pp;
    uint32_t cp;

    *pp = p + 2;
    switch (s[p + 1]) {
    case 'b':
        out[0] = '\b';
        return 1;
    case 'f':
        out[0] = '\f';
        return 1;
    case 'n':
        out[0] = '\n';
        return 1;
    case 'r':
        out[0] = '\r';
        return 1;
    case 't':
        out[0] = '\t';
        return 1;
    case 'u':
        break;
    default: /* '"', '\\', '/' */
        out[0] = s[p + 1];
        return 1;
    }
    cp = (uint32_t)hex4(s + p + 2, 4);
    p += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo = (uint32_t)hex4(s + p + 2, 4);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
    }
    *pp = p;
    return utf8_put(cp, out);
}

/* A byte-by-byte reader of a string token's decoded content. */
struct sit {
    const unsigned char *s;
    size_t p, end;
    unsigned char pend[4];
    unsigned np, ip;
};

static void sit_init(struct sit *it, const json_doc *d, const json_tok *t)
{
    it->s = (const unsigned char *)d->src;
    it->p = t->off;
    it->end = (size_t)t->off + t->len;
    it->np = it->ip = 0;
}

/* The next decoded byte, or -1 at the end. */
static int sit_next(struct sit *it)
{
    unsigned c;

    if (it->ip < it->np)
        return it->pend[it->ip++];
    if (it->p >= it->end)
        return -1;
    c = it->s[it->p];
    if (c != '\\') {
        it->p++;
        return (int)c;
    }
    it->np = decode_escape(it->s, &it->p, it->pend);
    it->ip = 1;
    return it->pend[0];
}

/* ---- the parser ----------------------------------------------------------------------------- */
/*
 * json_parse() keeps everything it updates per token (the position, the token count, the innermost
 * open container) in locals rather than in a struct reached through a pointer. Tokens have
 * uint8_t fields, and a store through a character type may alias anything, so state kept in
 * memory would be reloaded after every token written. The lexing helpers below therefore take the
 * source, its length and a position, and return the new position through a pointer only.
 */

/* Fills e with "json: byte N: <what>, found <what is there>" and returns code. */
static int fail(const unsigned char *s, size_t n, fserr *e, int code, size_t at, const char *what)
{
    char found[32];

    if (at >= n)
        snprintf(found, sizeof(found), "end of input");
    else if (s[at] >= 0x20 && s[at] < 0x7f)
        snprintf(found, sizeof(found), "'%c'", s[at]);
    else
        snprintf(found, sizeof(found), "byte 0x%02X", s[at]);
    return fserr_set(e, code, "json: byte %zu: %s, found %s", at, what, found);
}

/* The first position at or after p that is not JSON whitespace. */
static inline size_t skip_ws(const unsigned char *s, size_t p, size_t n)
{
    while (p < n && s[p] <= ' ' && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t'))
        p++;
    return p;
}

/* Makes room for token number ntoks, or refuses past the limit (off: where that token starts,
 * for the message). Out of line: it runs a few times per doc's lifetime, not per token. */
static __attribute__((noinline)) int grow_toks(json_doc *d, uint32_t ntoks, size_t off, fserr *e)
{
    size_t cap;

    if (ntoks >= d->max_toks)
        return fserr_set(e, FS_ETOOBIG, "json: byte %zu: more than %u tokens", off,
                         (unsigned)d->max_toks);
    if (ntoks == d->cap) {
        cap = d->cap ? (size_t)d->cap * 2 : 64;
        if (cap > d->max_toks)
            cap = d->max_toks;
        d->toks = xrealloc(d->toks, cap * sizeof(*d->toks));
        d->cap = (uint32_t)cap;
    }
    return 0;
}

/* Tokens that fit in d's array without growing it or passing the limit. */
static uint32_t tok_room(const json_doc *d)
{
    return d->cap < d->max_toks ? d->cap : d->max_toks;
}

/* Validates the escape at *pp (a backslash) and moves *pp past it. */
static int scan_escape(const unsigned char *s, size_t n, size_t *pp, fserr *e)
{
    size_t p = *pp;
    long cp, lo;

    if (p + 1 >= n)
        return fail(s, n, e, FS_EPARSE, p + 1, "expected an escape character after '\\'");
    switch (s[p + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        *pp = p + 2;
        return 0;
    case 'u':
        break;
    default:
        return fail(s, n, e, FS_EPARSE, p + 1,
                    "expected an escape character (one of \"\\/bfnrtu) after '\\'");
    }
    cp = hex4(s + p + 2, n - p - 2);
    if (cp < 0)
        return fail(s, n, e, FS_EPARSE, p + 2, "expected 4 hex digits after '\\u'");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fserr_set(e, FS_EUTF8,
                         "json: byte %zu: lone low surrogate \\u%04lX (expected a high surrogate "
                         "before it)",
                         p, (unsigned long)cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        size_t q = p + 6;
        lo = -1;
        if (q + 1 < n && s[q] == '\\' && s[q + 1] == 'u')
            lo = hex4(s + q + 2, n - q - 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fserr_set(e, FS_EUTF8,
                             "json: byte %zu: lone high surrogate \\u%04lX (expected a low "
                             "surrogate \\uDC00-\\uDFFF after it)",
                             p, (unsigned long)cp);
        *pp = q + 6;
        return 0;
    }
    *pp = p + 6;
    return 0;
}

/*
 * Strings are scanned 8 bytes at a time as one 64-bit word x, read with memcpy (SWAR, "SIMD
 * within a register"). Each test below leaves bit 7 of a byte set when that byte is of interest:
 *   - eq8(x, c): v = x ^ (c in every byte) is 0 exactly in the bytes equal to c; subtracting 1
 *     from every byte borrows (sets bit 7) there, and & ~v drops bytes whose bit 7 was already set.
 *   - below 0x20: subtracting 0x20 from every byte wraps around, setting bit 7, exactly in the
 *     bytes below 0x20 (bytes of 0xA0 and up get bit 7 too, but they are non-ASCII anyway).
 *   - non-ASCII: bit 7 of x itself.
 * A borrow can pass into the next more significant byte, but only out of a byte that is flagged
 * itself, so the least significant flag is always exact (more significant ones may be false
 * alarms) and a word with no flag has no byte of interest.
 */
#define ONES8 0x0101010101010101ull
#define HIGHS8 0x8080808080808080ull

/* Memory order is significance order on little-endian machines: there the first flagged byte in
 * memory is the exact one and its index is the count of trailing zero bits / 8. Elsewhere the
 * scanner only uses "no flag at all" and finds the byte one at a time. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR_LE 1
#else
#define SWAR_LE 0
#endif

static inline uint64_t eq8(uint64_t x, unsigned char c)
{
    uint64_t v = x ^ (ONES8 * c);
    return (v - ONES8) & ~v & HIGHS8;
}

/* Flags the bytes that are not plain (as in plain_byte): '"', '\\', control, non-ASCII. */
static inline uint64_t special8(uint64_t x)
{
    return eq8(x, '"') | eq8(x, '\\') | (((x - ONES8 * 0x20) | x) & HIGHS8);
}

/* Validates the string whose opening quote is at *pp; on success *pp is at its closing quote and
 * *flags has JSON_F_ESCAPED when it holds an escape. Inlined at both call sites (keys and string
 * values): a call per string measured about a tenth of a parse. */
static inline __attribute__((always_inline)) int lex_string(const unsigned char *s, size_t n,
                                                            size_t *pp, uint8_t *flags, fserr *e)
{
    size_t p = *pp + 1, k;
    uint64_t x, m;
    int rc;

    for (;;) {
        /* plain bytes, 8 at a time while 8 are left, then one at a time */
        while (n - p >= 8) {
            memcpy(&x, s + p, 8);
            m = special8(x);
            if (!m) {
                p += 8;
                continue;
            }
            if (SWAR_LE) {
                p += (size_t)__builtin_ctzll(m) / 8;
                /* the usual case, decided without reading the byte again: m's lowest flag
                 * (m & -m) is the closing quote */
                if (m & (0 - m) & eq8(x, '"')) {
                    *pp = p;
                    return 0;
                }
            }
            break;
        }
        while (p < n && plain_byte[s[p]])
            p++;
        if (p >= n)
            return fail(s, n, e, FS_EPARSE, p, "expected '\"' to end the string");
        if (s[p] == '"')
            break;
        if (s[p] == '\\') {
            rc = scan_escape(s, n, &p, e);
            if (rc)
                return rc;
            *flags |= JSON_F_ESCAPED;
        } else if (s[p] < 0x20) {
            return fail(s, n, e, FS_EPARSE, p, "expected no raw control character in a string");
        } else {
            k = utf8_seq(s + p, n - p);
            if (!k)
                return fail(s, n, e, FS_EUTF8, p, "expected valid UTF-8 in the string");
            p += k;
        }
    }
    *pp = p;
    return 0;
}

/* Validates the number or literal (true, false, null) at *pp, which is not a string or a
 * container; on success *pp is just past it and *type, *flags say what it is. */
static int lex_scalar(const unsigned char *s, size_t n, size_t *pp, uint8_t *type, uint8_t *flags,
                      fserr *e)
{
    static const struct {
        const char *text;
        size_t len;
        uint8_t type;
    } lits[] = {{"true", 4, JSON_TRUE}, {"false", 5, JSON_FALSE}, {"null", 4, JSON_NULL}};
    size_t p = *pp, len, err_at = 0;
    const char *what = NULL;
    bool is_int;

    if (s[p] == '-' || is_digit(s[p])) {
        len = scan_number(s + p, n - p, &is_int, &err_at, &what);
        if (!len)
            return fail(s, n, e, FS_EPARSE, p + err_at, what);
        *type = JSON_NUMBER;
        *flags = is_int ? JSON_F_INT : 0;
        *pp = p + len;
        return 0;
    }
    for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
        if (s[p] != (unsigned char)lits[i].text[0])
            continue;
        if (n - p < lits[i].len || memcmp(s + p, lits[i].text, lits[i].len) != 0)
            break;
        *type = lits[i].type;
        *flags = 0;
        *pp = p + lits[i].len;
        return 0;
    }
    return fail(s, n, e, FS_EPARSE, p, "expected a value");
}

/* Records the container open at depth (0-based), growing the stack up to the depth limit,
 * which the caller has checked. An entry is the container's token index times 2, plus 1 for an
 * object (indices stay below 2^31: json_doc_set_limits caps max_toks at INT_MAX), so that closing
 * a container learns its parent's kind without reading the parent's token. */
static void push(json_doc *d, uint32_t depth, uint32_t idx, bool obj)
{
    if (depth == d->stack_cap) {
        size_t cap = d->stack_cap ? (size_t)d->stack_cap * 2 : 16;
        if (cap > d->max_depth)
            cap = d->max_depth;
        d->stack = xrealloc(d->stack, cap * sizeof(*d->stack));
        d->stack_cap = (uint32_t)cap;
    }
    d->stack[depth] = idx * 2 + obj;
}

/* The token array while json_parse() fills it; lives in json_parse()'s locals (see above). */
struct toks_out {
    json_tok *toks; /* d->toks, reloaded when grow_toks() moves it */
    uint32_t n;     /* tokens so far */
    uint32_t room;  /* tokens that fit before it must grow */
};

/* Appends a token (end: just past itself; count 0). Returns 0, or FS_ETOOBIG past the limit. */
static inline int add_tok(json_doc *d, struct toks_out *o, uint8_t type, uint8_t flags, size_t off,
                          size_t len, fserr *e)
{
    json_tok *t;
    int rc;

    if (o->n >= o->room) {
        rc = grow_toks(d, o->n, off, e);
        if (rc)
            return rc;
        o->toks = d->toks;
        o->room = tok_room(d);
    }
    t = &o->toks[o->n];
    t->off = (uint32_t)off;
    t->len = (uint32_t)len;
    t->end = o->n + 1;
    t->count = 0;
    t->type = type;
    t->flags = flags;
    o->n++;
    return 0;
}

/*
 * The grammar as three places in the code, each a label: `value` (a value starts here), `key`
 * (an object member starts here) and `after` (a value just ended: expect ',', the end of the
 * container, or the end of the input at depth 0). Where the parser is in the grammar is where it
 * is in the code, so each branch below is about one kind of place and predicts well.
 */
int json_parse(json_doc *d, const char *src, size_t n, fserr *e)
{
    const unsigned char *s = (const unsigned char *)src;
    struct toks_out o = {d->toks, 0, tok_room(d)};
    uint32_t depth = 0;  /* open containers */
    uint32_t top = 0;    /* the innermost open container, when depth > 0 */
    bool in_obj = false; /* ... and whether it is an object */
    size_t p = 0, q;
    uint8_t type = 0, flags = 0;
    int rc = 0;

    d->ntoks = 0;
    d->src = NULL;
    d->srclen = 0;
    if (n >= UINT32_MAX)
        return fserr_set(e, FS_ETOOBIG, "json: input of %zu bytes is larger than 4 GiB", n);

value:
    p = skip_ws(s, p, n);
    if (p >= n) {
        rc = fail(s, n, e, FS_EPARSE, p, "expected a value");
        goto out;
    }
    if (s[p] == '"') {
        q = p;
        flags = 0;
        rc = lex_string(s, n, &q, &flags, e);
        if (!rc) /* a string token lies between its quotes */
            rc = add_tok(d, &o, JSON_STRING, flags, p + 1, q - p - 1, e);
        if (rc)
            goto out;
        p = q + 1;
        goto after;
    }
    if (s[p] == '{' || s[p] == '[') {
        bool obj = s[p] == '{';
        if (depth >= d->max_depth) {
            rc = fserr_set(e, FS_ETOOBIG, "json: byte %zu: nesting deeper than %u levels", p,
                           (unsigned)d->max_depth);
            goto out;
        }
        rc = add_tok(d, &o, obj ? JSON_OBJECT : JSON_ARRAY, 0, p, 0, e);
        if (rc)
            goto out;
        q = p; /* where it starts */
        p = skip_ws(s, p + 1, n);
        if (p < n && s[p] == (obj ? '}' : ']')) { /* empty: finished at once */
            p++;
            o.toks[o.n - 1].len = (uint32_t)(p - q);
            goto after;
        }
        push(d, depth++, o.n - 1, obj);
        top = o.n - 1;
        in_obj = obj;
        if (obj)
            goto key;
        goto value;
    }
    q = p;
    rc = lex_scalar(s, n, &q, &type, &flags, e);
    if (!rc)
        rc = add_tok(d, &o, type, flags, p, q - p, e);
    if (rc)
        goto out;
    p = q;
    goto after;

key:
    p = skip_ws(s, p, n);
    if (p >= n || s[p] != '"') {
        rc = fail(s, n, e, FS_EPARSE, p, "expected a string key");
        goto out;
    }
    q = p;
    flags = 0;
    rc = lex_string(s, n, &q, &flags, e);
    if (!rc)
        rc = add_tok(d, &o, JSON_STRING, flags, p + 1, q - p - 1, e);
    if (rc)
        goto out;
    p = skip_ws(s, q + 1, n);
    if (p >= n || s[p] != ':') {
        rc = fail(s, n, e, FS_EPARSE, p, "expected ':' after an object key");
        goto out;
    }
    p++;
    goto value;

after:
    p = skip_ws(s, p, n);
    if (depth == 0) {
        if (p != n)
            rc = fail(s, n, e, FS_EPARSE, p, "expected the end of the input");
        goto out;
    }
    o.toks[top].count++;
    if (p < n && s[p] == ',') {
        p++;
        if (in_obj)
            goto key;
        goto value;
    }
    if (p < n && s[p] == (in_obj ? '}' : ']')) {
        p++;
        o.toks[top].len = (uint32_t)(p - o.toks[top].off);
        o.toks[top].end = o.n;
        if (--depth > 0) {
            top = d->stack[depth - 1] / 2;
            in_obj = d->stack[depth - 1] & 1;
        }
        goto after;
    }
    rc = fail(s, n, e, FS_EPARSE, p,
              in_obj ? "expected ',' or '}' after an object member"
                     : "expected ',' or ']' after an array element");

out:
    if (rc)
        return rc;
    d->ntoks = o.n;
    d->src = src;
    d->srclen = n;
    return 0;
}

/* ---- navigation ----------------------------------------------------------------------------- */

static bool valid(const json_doc *d, int i)
{
    return i >= 0 && (uint32_t)i < d->ntoks;
}

int json_child(const json_doc *d, int c)
{
    if (!valid(d, c))
        return JSON_NONE;
    const json_tok *t = &d->toks[c];
    if ((t->type != JSON_OBJECT && t->type != JSON_ARRAY) || t->count == 0)
        return JSON_NONE;
    return c + 1;
}

int json_sibling(const json_doc *d, int c, int i)
{
    uint32_t next;

    if (!valid(d, c) || !valid(d, i) || i <= c)
        return JSON_NONE;
    if (d->toks[c].type == JSON_OBJECT) {
        if ((uint32_t)i + 1 >= d->ntoks)
            return JSON_NONE;
        next = d->toks[i + 1].end;
    } else if (d->toks[c].type == JSON_ARRAY) {
        next = d->toks[i].end;
    } else {
        return JSON_NONE;
    }
    return next < d->toks[c].end ? (int)next : JSON_NONE;
}

int json_arr_at(const json_doc *d, int a, uint32_t n)
{
    if (json_type_of(d, a) != JSON_ARRAY || n >= d->toks[a].count)
        return JSON_NONE;
    int i = json_child(d, a);
    while (n-- && i >= 0)
        i = json_sibling(d, a, i);
    return i;
}

/* True when escaped string token t decodes to exactly the n bytes at s. */
static bool decoded_eqn(const json_doc *d, const json_tok *t, const char *s, size_t n)
{
    struct sit it;

    if (n > t->len) /* decoding never lengthens a string */
        return false;
    sit_init(&it, d, t);
    for (size_t i = 0; i < n; i++)
        if (sit_next(&it) != (unsigned char)s[i])
            return false;
    return sit_next(&it) < 0;
}

/* True when string token t decodes to exactly the n bytes at s. A token without escapes is its
 * own decoding, so the length recorded in the token settles most mismatches without a look at
 * the bytes. */
static inline bool tok_eqn(const json_doc *d, const json_tok *t, const char *s, size_t n)
{
    if (t->flags & JSON_F_ESCAPED)
        return decoded_eqn(d, t, s, n);
    return t->len == n && memcmp(d->src + t->off, s, n) == 0;
}

/* tok_eqn() for the C string lit, without measuring lit first: the bytes of a token without
 * escapes are compared with lit up to the token's length, and lit must end there. Such a token
 * holds no NUL byte (raw control characters are refused), so a shorter lit fails the comparison
 * at its terminating NUL and nothing past it is read. Lookups are mostly decided by the first
 * byte. */
static inline bool tok_eq_cstr(const json_doc *d, const json_tok *t, const char *lit)
{
    const char *raw = d->src + t->off;

    if (t->flags & JSON_F_ESCAPED)
        return decoded_eqn(d, t, lit, strlen(lit));
    for (uint32_t i = 0; i < t->len; i++)
        if (raw[i] != lit[i])
            return false;
    return lit[t->len] == '\0';
}

bool json_str_eqn(const json_doc *d, int tok, const char *s, size_t n)
{
    return json_type_of(d, tok) == JSON_STRING && tok_eqn(d, &d->toks[tok], s, n);
}

bool json_str_eq(const json_doc *d, int tok, const char *lit)
{
    return json_type_of(d, tok) == JSON_STRING && tok_eq_cstr(d, &d->toks[tok], lit);
}

/* Member keys of an object: its first key follows it, and each value's `end` is the next key. */
int json_obj_getn(const json_doc *d, int obj, const char *key, size_t n)
{
    const json_tok *toks = d->toks;

    if (json_type_of(d, obj) != JSON_OBJECT)
        return JSON_NONE;
    for (uint32_t k = (uint32_t)obj + 1, end = toks[obj].end; k < end; k = toks[k + 1].end)
        if (tok_eqn(d, &toks[k], key, n))
            return (int)k + 1;
    return JSON_NONE;
}

int json_obj_get(const json_doc *d, int obj, const char *key)
{
    const json_tok *toks = d->toks;

    if (json_type_of(d, obj) != JSON_OBJECT)
        return JSON_NONE;
    for (uint32_t k = (uint32_t)obj + 1, end = toks[obj].end; k < end; k = toks[k + 1].end)
        if (tok_eq_cstr(d, &toks[k], key))
            return (int)k + 1;
    return JSON_NONE;
}

static bool keys_equal(const json_doc *d, uint32_t a, uint32_t b)
{
    const json_tok *ta = &d->toks[a], *tb = &d->toks[b];
    struct sit ia, ib;
    int ca, cb;

    if (!((ta->flags | tb->flags) & JSON_F_ESCAPED))
        return ta->len == tb->len && memcmp(d->src + ta->off, d->src + tb->off, ta->len) == 0;
    sit_init(&ia, d, ta);
    sit_init(&ib, d, tb);
    do {
        ca = sit_next(&ia);
        cb = sit_next(&ib);
        if (ca != cb)
            return false;
    } while (ca >= 0);
    return true;
}

static uint64_t key_hash(const json_doc *d, uint32_t k)
{
    uint64_t h = 0xcbf29ce484222325ull;
    struct sit it;
    int c;

    sit_init(&it, d, &d->toks[k]);
    while ((c = sit_next(&it)) >= 0)
        h = (h ^ (unsigned)c) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

bool json_obj_has_duplicates(const json_doc *d, int obj)
{
    uint32_t local[512], *tab, n, m, end, k;
    bool dup = false;

    if (json_type_of(d, obj) != JSON_OBJECT || d->toks[obj].count < 2)
        return false;
    n = d->toks[obj].count;
    end = d->toks[obj].end;
    if (n <= 16) {
        for (k = (uint32_t)obj + 1; k < end; k = d->toks[k + 1].end)
            for (uint32_t j = d->toks[k + 1].end; j < end; j = d->toks[j + 1].end)
                if (keys_equal(d, k, j))
                    return true;
        return false;
    }
    for (m = 64; m < 2 * (size_t)n; m *= 2)
        ;
    tab = m <= sizeof(local) / sizeof(local[0]) ? local : xmalloc(m * sizeof(*tab));
    memset(tab, 0, m * sizeof(*tab)); /* 0 = empty: no key is token 0 */
    for (k = (uint32_t)obj + 1; k < end && !dup; k = d->toks[k + 1].end) {
        uint32_t h = (uint32_t)key_hash(d, k) & (m - 1);
        while (tab[h]) {
            if (keys_equal(d, tab[h], k)) {
                dup = true;
                break;
            }
            h = (h + 1) & (m - 1);
        }
        tab[h] = k;
    }
    if (tab != local)
        free(tab);
    return dup;
}

int json_str_unescape(const json_doc *d, int tok, buf *out, fserr *e)
{
    const unsigned char *s;
    const json_tok *t;
    unsigned char u[4];
    size_t p, end, run;
    int rc;

    if (json_type_of(d, tok) != JSON_STRING)
        return fserr_set(e, FS_ETYPE, "json: token %d is %s, not a string", tok,
                         json_type_name(json_type_of(d, tok)));
    t = &d->toks[tok];
    s = (const unsigned char *)d->src;
    p = t->off;
    end = (size_t)t->off + t->len;
    if (!(t->flags & JSON_F_ESCAPED)) {
        rc = buf_add(out, s + p, t->len);
        goto out;
    }
    rc = 0;
    while (p < end && !rc) {
        for (run = p; run < end && s[run] != '\\'; run++)
            ;
        if (run > p) {
            rc = buf_add(out, s + p, run - p);
            p = run;
            continue;
        }
        unsigned k = decode_escape(s, &p, u);
        rc = buf_add(out, u, k);
    }
out:
    if (rc)
        return fserr_set(e, rc, "json: byte %u: string does not fit in %zu bytes", t->off,
                         out->max);
    return 0;
}

/* ---- numbers -------------------------------------------------------------------------------- */

/* The text of a number token, or of a string token holding a valid JSON number. Decoded escapes
 * go to tmp (cap bytes). Returns 0 or FS_ETYPE / FS_ERANGE with e set. */
static int number_text(const json_doc *d, int tok, char *tmp, size_t cap, const char **text,
                       size_t *len, fserr *e)
{
    int type = json_type_of(d, tok);
    const json_tok *t;
    size_t err_at, n = 0;
    const char *what;
    bool is_int;

    if (type != JSON_NUMBER && type != JSON_STRING)
        return fserr_set(e, FS_ETYPE, "json: expected a number, found %s", json_type_name(type));
    t = &d->toks[tok];
    *text = d->src + t->off;
    *len = t->len;
    if (type == JSON_NUMBER)
        return 0;
    if (t->flags & JSON_F_ESCAPED) {
        struct sit it;
        int c;
        sit_init(&it, d, t);
        while ((c = sit_next(&it)) >= 0) {
            if (n + 1 >= cap)
                return fserr_set(e, FS_ERANGE, "json: byte %u: number string too long", t->off);
            tmp[n++] = (char)c;
        }
        *text = tmp;
        *len = n;
    }
    if (*len == 0 ||
        scan_number((const unsigned char *)*text, *len, &is_int, &err_at, &what) != *len)
        return fserr_set(e, FS_ETYPE, "json: byte %u: string is not a number", t->off);
    return 0;
}

/* Value of the validated JSON number s[0..n) as an int64. */
static int number_to_int64(const char *s, size_t n, int64_t *out, const char **why)
{
    size_t p = 0, ni = 0, nf = 0, total, first, last;
    const char *ip, *fp = "";
    uint64_t mag = 0, limit;
    int64_t exp = 0, e10;
    bool neg = false, eneg = false;

    if (s[p] == '-') {
        neg = true;
        p++;
    }
    ip = s + p;
    while (p < n && is_digit((unsigned char)s[p])) {
        p++;
        ni++;
    }
    if (p < n && s[p] == '.') {
        fp = s + ++p;
        while (p < n && is_digit((unsigned char)s[p])) {
            p++;
            nf++;
        }
    }
    if (p < n && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        if (s[p] == '+' || s[p] == '-')
            eneg = s[p++] == '-';
        for (; p < n; p++)
            if (exp < 1000000000000000LL)
                exp = exp * 10 + (s[p] - '0');
        if (eneg)
            exp = -exp;
    }
    /* The digits D = int part + fraction; the value is D * 10^(exp - nf). */
    total = ni + nf;
#define DIGIT(i) ((i) < ni ? ip[(i)] : fp[(i) - ni])
    for (first = 0; first < total && DIGIT(first) == '0'; first++)
        ;
    if (first == total) {
        *out = 0;
        return 0;
    }
    for (last = total - 1; DIGIT(last) == '0'; last--)
        ;
    e10 = exp - (int64_t)nf + (int64_t)(total - 1 - last);
    if (e10 < 0) {
        *why = "is not an integer";
        return FS_ETYPE;
    }
    if ((int64_t)(last - first + 1) + e10 > 19) {
        *why = "is out of the int64 range";
        return FS_ERANGE;
    }
    for (size_t i = first; i <= last; i++)
        mag = mag * 10 + (uint64_t)(DIGIT(i) - '0');
#undef DIGIT
    for (int64_t i = 0; i < e10; i++)
        mag *= 10; /* at most 19 digits in all: fits in 64 bits */
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    if (mag > limit) {
        *why = "is out of the int64 range";
        return FS_ERANGE;
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

int json_int64(const json_doc *d, int tok, int64_t *out, fserr *e)
{
    char tmp[128];
    const char *text, *why = "";
    size_t len;
    int rc;

    /* The usual case (array ids, target ids): a number token without fraction or exponent, so
     * -?[0-9]+ by the grammar, of at most 18 characters, which cannot overflow. */
    if (json_type_of(d, tok) == JSON_NUMBER && (d->toks[tok].flags & JSON_F_INT) &&
        d->toks[tok].len <= 18) {
        const char *p = d->src + d->toks[tok].off;
        size_t n = d->toks[tok].len, i = p[0] == '-';
        uint64_t v = 0;
        for (; i < n; i++)
            v = v * 10 + (uint64_t)(p[i] - '0');
        *out = p[0] == '-' ? -(int64_t)v : (int64_t)v;
        return 0;
    }
    rc = number_text(d, tok, tmp, sizeof(tmp), &text, &len, e);
    if (rc)
        return rc;
    rc = number_to_int64(text, len, out, &why);
    if (rc)
        return fserr_set(e, rc, "json: byte %u: %.*s %s", d->toks[tok].off,
                         len > 40 ? 40 : (int)len, text, why);
    return 0;
}

int json_double(const json_doc *d, int tok, double *out, fserr *e)
{
    char tmp[128], *copy;
    const char *text;
    size_t len;
    double v;
    int rc;

    rc = number_text(d, tok, tmp, sizeof(tmp), &text, &len, e);
    if (rc)
        return rc;
    copy = len < sizeof(tmp) ? tmp : xmalloc(len + 1);
    memmove(copy, text, len);
    copy[len] = '\0';
    errno = 0;
    v = strtod(copy, NULL);
    rc = errno == ERANGE && isinf(v) ? FS_ERANGE : 0;
    if (copy != tmp)
        free(copy);
    if (rc)
        return fserr_set(e, rc, "json: byte %u: number overflows a double", d->toks[tok].off);
    *out = v;
    return 0;
}
