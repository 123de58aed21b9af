/*
 * json.c - the strict JSON tokenizer of json.h and its read helpers.
 *
 * It owns the token array and the container stack of each json_doc (grown with xrealloc, kept
 * across parses) and nothing else: tokens point into the caller's bytes. This exists instead of
 * cJSON because the agent reads every document of a RESET only to find that most are unchanged,
 * and a malloc per node would cost more than the whole skip is allowed to. The parser is a loop
 * over an explicit stack, not recursion, so the depth limit is the only bound on nesting.
 *
 * Strings are validated once, here (UTF-8, escapes, surrogate pairs), so the helpers that decode
 * them later (json_str_eq, json_str_unescape) can trust the bytes and never fail on content.
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

struct parser {
    json_doc *d;
    const unsigned char *s;
    size_t n;
    size_t p;
    fserr *e;
};

static int fail(struct parser *ps, int code, size_t at, const char *what)
{
    char found[32];

    if (at >= ps->n)
        snprintf(found, sizeof(found), "end of input");
    else if (ps->s[at] >= 0x20 && ps->s[at] < 0x7f)
        snprintf(found, sizeof(found), "'%c'", ps->s[at]);
    else
        snprintf(found, sizeof(found), "byte 0x%02X", ps->s[at]);
    return fserr_set(ps->e, code, "json: byte %zu: %s, found %s", at, what, found);
}

static void skip_ws(struct parser *ps)
{
    const unsigned char *s = ps->s;
    size_t p = ps->p, n = ps->n;

    while (p < n && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t'))
        p++;
    ps->p = p;
}

static int new_tok(struct parser *ps, int type, size_t off, uint32_t *idx)
{
    json_doc *d = ps->d;
    json_tok *t;

    if (d->ntoks >= d->max_toks)
        return fserr_set(ps->e, FS_ETOOBIG, "json: byte %zu: more than %u tokens", off,
                         (unsigned)d->max_toks);
    if (d->ntoks == d->cap) {
        size_t cap = d->cap ? (size_t)d->cap * 2 : 64;
        if (cap > d->max_toks)
            cap = d->max_toks;
        d->toks = xrealloc(d->toks, cap * sizeof(*d->toks));
        d->cap = (uint32_t)cap;
    }
    t = &d->toks[d->ntoks];
    t->off = (uint32_t)off;
    t->len = 0;
    t->end = d->ntoks + 1;
    t->count = 0;
    t->type = (uint8_t)type;
    t->flags = 0;
    *idx = d->ntoks++;
    return 0;
}

/* Validates the escape at ps->p (a backslash) and moves past it. */
static int scan_escape(struct parser *ps)
{
    const unsigned char *s = ps->s;
    size_t p = ps->p, n = ps->n;
    long cp, lo;

    if (p + 1 >= n)
        return fail(ps, FS_EPARSE, p + 1, "expected an escape character after '\\'");
    switch (s[p + 1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        ps->p = p + 2;
        return 0;
    case 'u':
        break;
    default:
        return fail(ps, FS_EPARSE, p + 1,
                    "expected an escape character (one of \"\\/bfnrtu) after '\\'");
    }
    cp = hex4(s + p + 2, n - p - 2);
    if (cp < 0)
        return fail(ps, FS_EPARSE, p + 2, "expected 4 hex digits after '\\u'");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fserr_set(ps->e, FS_EUTF8,
                         "json: byte %zu: lone low surrogate \\u%04lX (expected a high surrogate "
                         "before it)",
                         p, (unsigned long)cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        size_t q = p + 6;
        lo = -1;
        if (q + 1 < n && s[q] == '\\' && s[q + 1] == 'u')
            lo = hex4(s + q + 2, n - q - 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fserr_set(ps->e, FS_EUTF8,
                             "json: byte %zu: lone high surrogate \\u%04lX (expected a low "
                             "surrogate \\uDC00-\\uDFFF after it)",
                             p, (unsigned long)cp);
        ps->p = q + 6;
        return 0;
    }
    ps->p = p + 6;
    return 0;
}

/* Scans the string whose opening quote is at ps->p into a new token. */
static int scan_string(struct parser *ps)
{
    const unsigned char *s = ps->s;
    size_t n = ps->n, start = ps->p + 1, p = start;
    uint8_t flags = 0;
    uint32_t idx;
    int rc;

    for (;;) {
        while (p < n && plain_byte[s[p]])
            p++;
        if (p >= n)
            return fail(ps, FS_EPARSE, p, "expected '\"' to end the string");
        if (s[p] == '"')
            break;
        if (s[p] == '\\') {
            ps->p = p;
            rc = scan_escape(ps);
            if (rc)
                return rc;
            p = ps->p;
            flags |= JSON_F_ESCAPED;
        } else if (s[p] < 0x20) {
            return fail(ps, FS_EPARSE, p, "expected no raw control character in a string");
        } else {
            size_t k = utf8_seq(s + p, n - p);
            if (!k)
                return fail(ps, FS_EUTF8, p, "expected valid UTF-8 in the string");
            p += k;
        }
    }
    rc = new_tok(ps, JSON_STRING, start, &idx);
    if (rc)
        return rc;
    ps->d->toks[idx].len = (uint32_t)(p - start);
    ps->d->toks[idx].flags = flags;
    ps->p = p + 1;
    return 0;
}

static int scan_scalar(struct parser *ps)
{
    static const struct {
        const char *text;
        size_t len;
        int type;
    } lits[] = {{"true", 4, JSON_TRUE}, {"false", 5, JSON_FALSE}, {"null", 4, JSON_NULL}};
    const unsigned char *s = ps->s;
    size_t p = ps->p, n = ps->n, len, err_at = 0;
    const char *what = NULL;
    bool is_int;
    uint32_t idx;
    int rc;

    if (s[p] == '"')
        return scan_string(ps);
    if (s[p] == '-' || is_digit(s[p])) {
        len = scan_number(s + p, n - p, &is_int, &err_at, &what);
        if (!len)
            return fail(ps, FS_EPARSE, p + err_at, what);
        rc = new_tok(ps, JSON_NUMBER, p, &idx);
        if (rc)
            return rc;
        ps->d->toks[idx].len = (uint32_t)len;
        ps->d->toks[idx].flags = is_int ? JSON_F_INT : 0;
        ps->p = p + len;
        return 0;
    }
    for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
        if (s[p] != (unsigned char)lits[i].text[0])
            continue;
        if (n - p < lits[i].len || memcmp(s + p, lits[i].text, lits[i].len) != 0)
            break;
        rc = new_tok(ps, lits[i].type, p, &idx);
        if (rc)
            return rc;
        ps->d->toks[idx].len = (uint32_t)lits[i].len;
        ps->p = p + lits[i].len;
        return 0;
    }
    return fail(ps, FS_EPARSE, p, "expected a value");
}

static int push(struct parser *ps, uint32_t depth, uint32_t idx)
{
    json_doc *d = ps->d;

    if (depth == d->stack_cap) {
        size_t cap = d->stack_cap ? (size_t)d->stack_cap * 2 : 16;
        if (cap > d->max_depth)
            cap = d->max_depth;
        d->stack = xrealloc(d->stack, cap * sizeof(*d->stack));
        d->stack_cap = (uint32_t)cap;
    }
    d->stack[depth] = idx;
    return 0;
}

enum { ST_VALUE, ST_KEY, ST_AFTER };

/* Opens the container at ps->p. An empty one is finished at once (*state = ST_AFTER). */
static int open_container(struct parser *ps, uint32_t *depth, int *state)
{
    json_doc *d = ps->d;
    unsigned char c = ps->s[ps->p];
    int type = c == '{' ? JSON_OBJECT : JSON_ARRAY;
    uint32_t idx;
    int rc;

    if (*depth >= d->max_depth)
        return fserr_set(ps->e, FS_ETOOBIG, "json: byte %zu: nesting deeper than %u levels",
                         ps->p, (unsigned)d->max_depth);
    rc = new_tok(ps, type, ps->p, &idx);
    if (rc)
        return rc;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->n && ps->s[ps->p] == (c == '{' ? '}' : ']')) {
        ps->p++;
        d->toks[idx].len = (uint32_t)(ps->p - d->toks[idx].off);
        *state = ST_AFTER;
        return 0;
    }
    push(ps, *depth, idx);
    (*depth)++;
    *state = type == JSON_OBJECT ? ST_KEY : ST_VALUE;
    return 0;
}

/* A value just ended inside the container on top of the stack: expect ',' or its end. */
static int after_value(struct parser *ps, uint32_t *depth, int *state)
{
    json_doc *d = ps->d;
    json_tok *t = &d->toks[d->stack[*depth - 1]];
    bool obj = t->type == JSON_OBJECT;

    t->count++;
    if (ps->p < ps->n && ps->s[ps->p] == ',') {
        ps->p++;
        *state = obj ? ST_KEY : ST_VALUE;
        return 0;
    }
    if (ps->p < ps->n && ps->s[ps->p] == (obj ? '}' : ']')) {
        ps->p++;
        t->len = (uint32_t)(ps->p - t->off);
        t->end = d->ntoks;
        (*depth)--;
        *state = ST_AFTER;
        return 0;
    }
    return fail(ps, FS_EPARSE, ps->p,
                obj ? "expected ',' or '}' after an object member"
                    : "expected ',' or ']' after an array element");
}

int json_parse(json_doc *d, const char *src, size_t n, fserr *e)
{
    struct parser ps = {d, (const unsigned char *)src, n, 0, e};
    uint32_t depth = 0;
    int state = ST_VALUE, rc = 0;

    d->ntoks = 0;
    d->src = NULL;
    d->srclen = 0;
    if (n >= UINT32_MAX)
        return fserr_set(e, FS_ETOOBIG, "json: input of %zu bytes is larger than 4 GiB", n);
    for (;;) {
        skip_ws(&ps);
        if (state == ST_KEY) {
            if (ps.p >= n || ps.s[ps.p] != '"') {
                rc = fail(&ps, FS_EPARSE, ps.p, "expected a string key");
                break;
            }
            rc = scan_string(&ps);
            if (rc)
                break;
            skip_ws(&ps);
            if (ps.p >= n || ps.s[ps.p] != ':') {
                rc = fail(&ps, FS_EPARSE, ps.p, "expected ':' after an object key");
                break;
            }
            ps.p++;
            state = ST_VALUE;
        } else if (state == ST_VALUE) {
            if (ps.p >= n) {
                rc = fail(&ps, FS_EPARSE, ps.p, "expected a value");
                break;
            }
            if (ps.s[ps.p] == '{' || ps.s[ps.p] == '[') {
                rc = open_container(&ps, &depth, &state);
            } else {
                rc = scan_scalar(&ps);
                state = ST_AFTER;
            }
            if (rc)
                break;
        } else if (depth == 0) {
            if (ps.p != n)
                rc = fail(&ps, FS_EPARSE, ps.p, "expected the end of the input");
            break;
        } else {
            rc = after_value(&ps, &depth, &state);
            if (rc)
                break;
        }
    }
    if (rc) {
        d->ntoks = 0;
        return rc;
    }
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

bool json_str_eqn(const json_doc *d, int tok, const char *s, size_t n)
{
    const json_tok *t;
    struct sit it;

    if (json_type_of(d, tok) != JSON_STRING)
        return false;
    t = &d->toks[tok];
    if (!(t->flags & JSON_F_ESCAPED))
        return t->len == n && memcmp(d->src + t->off, s, n) == 0;
    if (n > t->len) /* decoding never lengthens a string */
        return false;
    sit_init(&it, d, t);
    for (size_t i = 0; i < n; i++)
        if (sit_next(&it) != (unsigned char)s[i])
            return false;
    return sit_next(&it) < 0;
}

bool json_str_eq(const json_doc *d, int tok, const char *lit)
{
    return json_str_eqn(d, tok, lit, strlen(lit));
}

int json_obj_getn(const json_doc *d, int obj, const char *key, size_t n)
{
    if (json_type_of(d, obj) != JSON_OBJECT)
        return JSON_NONE;
    uint32_t end = d->toks[obj].end;
    for (uint32_t k = (uint32_t)obj + 1; k < end; k = d->toks[k + 1].end)
        if (json_str_eqn(d, (int)k, key, n))
            return (int)k + 1;
    return JSON_NONE;
}

int json_obj_get(const json_doc *d, int obj, const char *key)
{
    return json_obj_getn(d, obj, key, strlen(key));
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
