/*
 * toml.c - firesync's strict TOML reader (see toml.h for the subset it accepts and refuses).
 *
 * One pass of recursive descent over the bytes, with no separate lexer: the position (line, and
 * column in code points) is kept up to date as the parser advances, and the tree is built as it
 * goes. A mistake is recorded in the caller's toml_diag and the parser resumes at the next line,
 * so one run reports every mistake; whatever the failed line was building is freed on the spot,
 * so the tree handed back is always consistent and wholly owned by its root.
 *
 * TOML's rules about which table may be defined or extended by what (headers, dotted keys,
 * inline tables, arrays of tables) are enforced with a private `origin` kept next to each table
 * (struct table below), so the public toml_value needs no parser-only field.
 *
 * Owns: the tree it builds, until toml_parse() hands it to the caller.
 */
#include "agent/toml.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT (4u << 20) /* bytes; a configuration file is far smaller */
#define MAX_DEPTH 64         /* levels of keys, tables and arrays; bounds the recursion */
#define MAX_ERRORS 100       /* syntax errors reported before giving up on the rest */
#define SHOWN 40             /* at most this many bytes of a bad token are quoted in a message */

/* How a table came to exist; it decides what may later define or extend it. */
enum origin {
    IMPLICIT, /* an intermediate of a [a.b] header: [a] may still define it, once */
    HEADER,   /* defined by [a] or [[a]], or the root: closed to headers and dotted keys */
    DOTTED,   /* created by a dotted key (a.b = 1): open to more dotted keys, not to [a] */
    INLINE,   /* written as { ... }: closed to everything */
};

/* Every table the parser creates. The public value comes first, so that toml_free()'s free(v)
 * releases the whole object. */
struct table {
    toml_value v;
    enum origin origin;
};

struct seg {
    char *name; /* unquoted, unescaped; owned */
    int line, col;
};

/* A key as written: a."b c".d has three segments. Release with key_release(). */
struct key {
    struct seg seg[MAX_DEPTH];
    int n;
};

struct parser {
    const char *p, *end;
    int line, col; /* of p */
    toml_diag *d;
    int nerr;           /* errors this parse recorded */
    toml_value *cur;    /* the table that key = value lines go to */
    int cur_depth;      /* its nesting level, the root being 0 */
    toml_value *orphan; /* cur after a bad header: its keys are checked, then dropped */
    char what[40];      /* scratch for found() */
};

/* ---- diagnostics ------------------------------------------------------------------------- */

static void vadd(toml_diag *d, int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void vadd(toml_diag *d, int line, int col, const char *fmt, va_list ap)
{
    struct toml_diag_item *it;

    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 8;
        d->items = xrealloc(d->items, d->cap * sizeof(*d->items));
    }
    it = &d->items[d->n++];
    it->line = line;
    it->col = col;
    vsnprintf(it->msg, sizeof(it->msg), fmt, ap);
}

void toml_diag_init(toml_diag *d)
{
    d->items = NULL;
    d->n = d->cap = 0;
}

void toml_diag_release(toml_diag *d)
{
    free(d->items);
    toml_diag_init(d);
}

void toml_diag_add(toml_diag *d, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vadd(d, line, col, fmt, ap);
    va_end(ap);
}

/* Insertion sort: stable, and the lists are short (the parser stops at MAX_ERRORS). */
void toml_diag_sort(toml_diag *d)
{
    for (size_t i = 1; i < d->n; i++) {
        struct toml_diag_item it = d->items[i];
        size_t j = i;
        while (j > 0 && (it.line < d->items[j - 1].line ||
                         (it.line == d->items[j - 1].line && it.col < d->items[j - 1].col))) {
            d->items[j] = d->items[j - 1];
            j--;
        }
        d->items[j] = it;
    }
}

static int vfail(struct parser *P, int line, int col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int fail_at(struct parser *P, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct parser *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records an error and returns -1. After MAX_ERRORS, says so once and jumps to the end. */
static int vfail(struct parser *P, int line, int col, const char *fmt, va_list ap)
{
    if (P->nerr >= MAX_ERRORS) {
        if (P->nerr++ == MAX_ERRORS)
            toml_diag_add(P->d, line, col, "too many errors (%d), giving up on the rest",
                          MAX_ERRORS);
        P->p = P->end;
        return -1;
    }
    P->nerr++;
    vadd(P->d, line, col, fmt, ap);
    return -1;
}

static int fail_at(struct parser *P, int line, int col, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(P, line, col, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail(struct parser *P, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(P, P->line, P->col, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- the tree ---------------------------------------------------------------------------- */

static const char *const kind_names[] = {"table", "array", "string", "integer", "float", "boolean"};

const char *toml_kind_name(enum toml_kind k)
{
    if ((unsigned)k >= sizeof(kind_names) / sizeof(kind_names[0]))
        return "?";
    return kind_names[k];
}

/* "an integer", "a string", ... */
static const char *article(enum toml_kind k)
{
    return strchr("aeiou", toml_kind_name(k)[0]) ? "an" : "a";
}

static toml_value *new_value(enum toml_kind kind, int line, int col)
{
    toml_value *v = xcalloc(1, sizeof(*v));

    v->kind = kind;
    v->line = line;
    v->col = col;
    return v;
}

static toml_value *new_table(enum origin origin, int line, int col)
{
    struct table *t = xcalloc(1, sizeof(*t));

    t->v.kind = TOML_TABLE;
    t->v.line = line;
    t->v.col = col;
    t->v.u.table.is_inline = origin == INLINE;
    t->origin = origin;
    return &t->v;
}

static enum origin *origin_of(toml_value *t)
{
    return &((struct table *)(void *)t)->origin;
}

/* Room for one more item in an array of n items grown by doubling (capacity is implied by n). */
static void *grow(void *items, size_t n, size_t size)
{
    if (n & (n - 1))
        return items; /* n is not a power of two: the last doubling left room */
    return xrealloc(items, (n ? 2 * n : 1) * size);
}

/* Linear: configuration tables hold a few dozen keys. */
static struct toml_kv *find(const toml_value *t, const char *key)
{
    for (size_t i = 0; i < t->u.table.n; i++)
        if (strcmp(t->u.table.items[i].key, key) == 0)
            return &t->u.table.items[i];
    return NULL;
}

static void add_kv(toml_value *t, const struct seg *s, toml_value *v)
{
    struct toml_kv *kv;

    t->u.table.items = grow(t->u.table.items, t->u.table.n, sizeof(*kv));
    kv = &t->u.table.items[t->u.table.n++];
    kv->key = xstrdup(s->name);
    kv->line = s->line;
    kv->col = s->col;
    kv->val = v;
}

static void push(toml_value *a, toml_value *v)
{
    a->u.array.items = grow(a->u.array.items, a->u.array.n, sizeof(v));
    a->u.array.items[a->u.array.n++] = v;
}

void toml_free(toml_value *v)
{
    if (!v)
        return;
    switch (v->kind) {
    case TOML_STRING:
        free(v->u.s.p);
        break;
    case TOML_TABLE:
        for (size_t i = 0; i < v->u.table.n; i++) {
            free(v->u.table.items[i].key);
            toml_free(v->u.table.items[i].val);
        }
        free(v->u.table.items);
        break;
    case TOML_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++)
            toml_free(v->u.array.items[i]);
        free(v->u.array.items);
        break;
    default:
        break;
    }
    free(v);
}

toml_value *toml_get(const toml_value *t, const char *key)
{
    struct toml_kv *kv;

    if (!t || t->kind != TOML_TABLE || !key)
        return NULL;
    kv = find(t, key);
    return kv ? kv->val : NULL;
}

/* ---- characters -------------------------------------------------------------------------- */

static bool eof(const struct parser *P)
{
    return P->p >= P->end;
}

static int peek_at(const struct parser *P, size_t i)
{
    return (size_t)(P->end - P->p) > i ? (unsigned char)P->p[i] : -1;
}

static int peek(const struct parser *P)
{
    return peek_at(P, 0);
}

/* Consumes one byte; a column is a code point, so continuation bytes do not count. */
static void adv(struct parser *P)
{
    unsigned char c;

    if (eof(P))
        return;
    c = (unsigned char)*P->p++;
    if (c == '\n') {
        P->line++;
        P->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        P->col++;
    }
}

static void adv_n(struct parser *P, size_t n)
{
    while (n--)
        adv(P);
}

static bool at_newline(const struct parser *P)
{
    return peek(P) == '\n' || (peek(P) == '\r' && peek_at(P, 1) == '\n');
}

static void skip_ws(struct parser *P)
{
    while (peek(P) == ' ' || peek(P) == '\t')
        adv(P);
}

/* Past the next newline (or to the end): where the parser resumes after an error. */
static void skip_line(struct parser *P)
{
    while (!eof(P) && *P->p != '\n')
        adv(P);
    adv(P);
}

static bool is_bare(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Length (1-4) of the well-formed UTF-8 character at s, storing its code point; 0 when the
 * bytes are truncated, overlong, a surrogate or beyond U+10FFFF. */
static size_t utf8_char(const unsigned char *s, size_t avail, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t n;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, c &= 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

static void put_utf8(buf *b, uint32_t cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18), n = 4;
    }
    for (size_t i = 1; i < n; i++)
        u[i] = (char)(0x80 | ((cp >> (6 * (n - 1 - i))) & 0x3F));
    buf_add(b, u, n);
}

/* Names what is at p + off, for "expected X, found Y" messages. */
static const char *found(struct parser *P, size_t off)
{
    int c = peek_at(P, off);
    uint32_t cp;

    if (c < 0)
        return "end of file";
    if (c == '\n' || (c == '\r' && peek_at(P, off + 1) == '\n'))
        return "end of line";
    if (c == ' ' || c == '\t')
        return c == ' ' ? "a space" : "a tab";
    if (c > 0x20 && c < 0x7F)
        snprintf(P->what, sizeof(P->what), "'%c'", c);
    else if (c < 0x80)
        snprintf(P->what, sizeof(P->what), "control character U+%04X", (unsigned)c);
    else if (utf8_char((const unsigned char *)P->p + off, (size_t)(P->end - P->p) - off, &cp))
        snprintf(P->what, sizeof(P->what), "character U+%04X", (unsigned)cp);
    else
        return "invalid UTF-8";
    return P->what;
}

/* Consumes one character of a string or comment, appending it to b when b is not NULL. Newlines
 * are taken only when `newlines` (multi-line strings; CRLF becomes LF). A control character or
 * invalid UTF-8 is reported, and consumed too so that the caller can carry on. */
static int text_char(struct parser *P, buf *b, bool newlines, const char *what)
{
    const unsigned char *s = (const unsigned char *)P->p;
    uint32_t cp;
    size_t n;
    int rc;

    if (newlines && at_newline(P)) {
        adv_n(P, s[0] == '\r' ? 2 : 1);
        buf_addc(b, '\n');
        return 0;
    }
    if (s[0] == '\r' || (s[0] < 0x20 && s[0] != '\t') || s[0] == 0x7F) {
        if (s[0] == '\r')
            rc = fail(P, "bare carriage return (CR without LF) in %s", what);
        else
            rc = fail(P, "control character U+%04X in %s", (unsigned)s[0], what);
        adv(P);
        return rc;
    }
    n = utf8_char(s, (size_t)(P->end - P->p), &cp);
    if (!n) {
        rc = fail(P, "invalid UTF-8 in %s", what);
        do
            adv(P);
        while (!eof(P) && ((unsigned char)*P->p & 0xC0) == 0x80);
        return rc;
    }
    if (b)
        buf_add(b, P->p, n);
    adv_n(P, n);
    return 0;
}

/* A comment, up to (not including) its newline. */
static int comment(struct parser *P)
{
    int rc;

    adv(P);
    while (!eof(P) && !at_newline(P)) {
        rc = text_char(P, NULL, false, "comment");
        if (rc)
            return rc;
    }
    return 0;
}

/* Whitespace, newlines and comments, as allowed between array elements. */
static int skip_blank(struct parser *P)
{
    int rc;

    for (;;) {
        int c = peek(P);
        if (c == ' ' || c == '\t' || c == '\n') {
            adv(P);
        } else if (c == '\r' && peek_at(P, 1) == '\n') {
            adv_n(P, 2);
        } else if (c == '\r') {
            return fail(P, "bare carriage return (CR without LF)");
        } else if (c == '#') {
            rc = comment(P);
            if (rc)
                return rc;
        } else {
            return 0;
        }
    }
}

/* The end of a statement: whitespace, maybe a comment, then a newline or the end of input. */
static int end_of_line(struct parser *P, const char *after)
{
    int rc;

    skip_ws(P);
    if (peek(P) == '#') {
        rc = comment(P);
        if (rc)
            return rc;
    }
    if (eof(P))
        return 0;
    if (at_newline(P)) {
        adv_n(P, *P->p == '\r' ? 2 : 1);
        return 0;
    }
    if (*P->p == '\r')
        return fail(P, "bare carriage return (CR without LF)");
    return fail(P, "expected end of line after %s, found %s", after, found(P, 0));
}

/* ---- strings ----------------------------------------------------------------------------- */

/* \uXXXX or \UXXXXXXXX (ndig hex digits) at p. */
static int unicode_escape(struct parser *P, buf *b, int ndig)
{
    uint32_t cp = 0;
    int rc;

    for (int i = 0; i < ndig; i++) {
        int h = hexval(peek_at(P, 2 + (size_t)i));
        if (h < 0) {
            rc = fail(P, "invalid escape '%.*s' (\\%c needs %d hex digits)", i + 2, P->p, P->p[1],
                      ndig);
            adv(P);
            return rc;
        }
        cp = cp << 4 | (uint32_t)h;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) {
        rc = fail(P, "invalid escape '%.*s' (a surrogate is not a character)", ndig + 2, P->p);
    } else if (cp > 0x10FFFF) {
        rc = fail(P, "invalid escape '%.*s' (beyond U+10FFFF)", ndig + 2, P->p);
    } else {
        put_utf8(b, cp);
        adv_n(P, 2 + (size_t)ndig);
        return 0;
    }
    adv(P);
    return rc;
}

/* A backslash in a basic string. In a multi-line one, a backslash that ends its line swallows
 * the whitespace and newlines that follow. */
static int escape(struct parser *P, buf *b, bool multi)
{
    static const char from[] = "btnfr\"\\", to[] = "\b\t\n\f\r\"\\";
    int c = peek_at(P, 1), rc;
    const char *hit = c > 0 ? strchr(from, c) : NULL;
    size_t i = 1;

    if (hit) {
        buf_addc(b, to[hit - from]);
        adv_n(P, 2);
        return 0;
    }
    if (c == 'u' || c == 'U')
        return unicode_escape(P, b, c == 'u' ? 4 : 8);
    while (multi && (peek_at(P, i) == ' ' || peek_at(P, i) == '\t'))
        i++;
    if (multi && (peek_at(P, i) == '\n' || (peek_at(P, i) == '\r' && peek_at(P, i + 1) == '\n'))) {
        adv_n(P, i);
        for (c = peek(P); c == ' ' || c == '\t' || c == '\n' || (c == '\r' && at_newline(P));
             c = peek(P))
            adv(P);
        return 0;
    }
    if (c > 0x20 && c < 0x7F)
        rc = fail(P, "invalid escape '\\%c'", c);
    else
        rc = fail(P, "invalid escape: '\\' followed by %s", found(P, 1));
    adv(P);
    if (c >= 0 && c < 0x80 && c != '\n' && c != '\r')
        adv(P); /* the escaped character, so it is not reported twice */
    return rc;
}

/* At a run of quotes in a multi-line string: three to five close it (one or two more belong to
 * the content), fewer are content. True when the string is closed. */
static bool close_multi(struct parser *P, buf *b, char q)
{
    size_t n = 0;

    while (peek_at(P, n) == q)
        n++;
    if (n < 3) {
        buf_add(b, P->p, n);
        adv_n(P, n);
        return false;
    }
    if (n > 5)
        n = 5;
    buf_add(b, P->p, n - 3);
    adv_n(P, n);
    return true;
}

/* Any of the four kinds of string, at its opening quote, into b. A mistake inside (bad escape,
 * control character, invalid UTF-8) is reported and the scan goes on to the closing quote, so
 * that each one is reported and the next line starts clean. */
static int string_body(struct parser *P, buf *b)
{
    int line = P->line, col = P->col, bad = 0;
    char q = *P->p;
    bool multi = peek_at(P, 1) == q && peek_at(P, 2) == q;

    adv_n(P, multi ? 3 : 1);
    if (multi && at_newline(P))
        adv_n(P, *P->p == '\r' ? 2 : 1); /* a newline right after the opening quotes is trimmed */
    for (;;) {
        int c = peek(P);
        if (c < 0 || (!multi && at_newline(P)))
            return fail_at(P, line, col, "unterminated string");
        if (c == q) {
            if (!multi) {
                adv(P);
                return bad;
            }
            if (close_multi(P, b, q))
                return bad;
        } else if (c == '\\' && q == '"') {
            if (escape(P, b, multi))
                bad = -1;
        } else if (text_char(P, b, multi, "string")) {
            bad = -1;
        }
    }
}

static int string_value(struct parser *P, toml_value **out)
{
    int line = P->line, col = P->col, rc;
    buf b;

    buf_init(&b, 0);
    rc = string_body(P, &b);
    if (rc) {
        buf_release(&b);
        return rc;
    }
    *out = new_value(TOML_STRING, line, col);
    (*out)->u.s.len = b.len;
    (*out)->u.s.p = buf_take(&b);
    return 0;
}

/* ---- keys -------------------------------------------------------------------------------- */

static void key_release(struct key *k)
{
    for (int i = 0; i < k->n; i++)
        free(k->seg[i].name);
    k->n = 0;
}

/* The first n segments of k, dotted, for messages ("a.\"b c\""). */
static const char *key_name(const struct key *k, int n, char *out, size_t size)
{
    size_t o = 0;

    out[0] = '\0';
    for (int i = 0; i < n && o < size; i++) {
        const char *s = k->seg[i].name;
        bool bare = *s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                    "0123456789_-") == strlen(s);
        int w = snprintf(out + o, size - o, bare ? "%s%s" : "%s\"%s\"", i ? "." : "", s);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = '?'; /* an escaped control character would garble the message */
    return out;
}

static int key_segment(struct parser *P, struct seg *s)
{
    const char *start = P->p;
    int c = peek(P), rc;
    buf b;

    s->line = P->line;
    s->col = P->col;
    if (is_bare(c)) {
        while (is_bare(peek(P)))
            adv(P);
        s->name = xstrndup(start, (size_t)(P->p - start));
        return 0;
    }
    if (c != '"' && c != '\'')
        return fail(P, "expected a key, found %s", found(P, 0));
    if (peek_at(P, 1) == c && peek_at(P, 2) == c)
        return fail(P, "a multi-line string cannot be a key");
    buf_init(&b, 0);
    rc = string_body(P, &b);
    if (!rc && memchr(buf_str(&b), '\0', b.len))
        rc = fail_at(P, s->line, s->col, "a key cannot contain U+0000");
    if (rc) {
        buf_release(&b);
        return rc;
    }
    s->name = buf_take(&b);
    return 0;
}

/* A bare, quoted or dotted key, and the whitespace after it. k->n must be 0 on entry; on error
 * the segments read so far stay in k for key_release(). */
static int parse_key(struct parser *P, struct key *k)
{
    int rc;

    for (;;) {
        if (k->n == MAX_DEPTH)
            return fail(P, "nesting deeper than %d levels", MAX_DEPTH);
        rc = key_segment(P, &k->seg[k->n]);
        if (rc)
            return rc;
        k->n++;
        skip_ws(P);
        if (peek(P) != '.')
            return 0;
        adv(P);
        skip_ws(P);
    }
}

/* ---- numbers, booleans and other bare values ---------------------------------------------- */

static bool is_token(int c)
{
    return is_bare(c) || c == '+' || c == '.' || c == ':';
}

static bool word(const char *s, size_t n, const char *w)
{
    return n == strlen(w) && memcmp(s, w, n) == 0;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* 1979-05-27, 07:32:00 and everything starting like them. */
static bool looks_like_date(const char *s, size_t n)
{
    if (n >= 5 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) && is_digit(s[3]) &&
        s[4] == '-')
        return true;
    return n >= 3 && is_digit(s[0]) && is_digit(s[1]) && s[2] == ':';
}

static bool in_base(int c, int base)
{
    int v = hexval(c);
    return v >= 0 && v < base;
}

/* Copies the digits at *pp to dst + *dn, leaving out underscores, which must each sit between
 * two digits, and moves *pp past them. False when there is no digit or an underscore is out of
 * place. */
static bool digits(const char **pp, const char *e, int base, char *dst, size_t *dn)
{
    const char *p = *pp;

    if (p == e || !in_base(*p, base))
        return false;
    for (; p < e && (in_base(*p, base) || *p == '_'); p++) {
        if (*p == '_' && (p + 1 == e || !in_base(p[1], base)))
            return false;
        if (*p != '_')
            dst[(*dn)++] = *p;
    }
    *pp = p;
    return true;
}

/* Converts the validated digits s[0..n) (no sign, no underscores) to an int64 of sign `neg`. */
static int to_int(const char *s, size_t n, int base, bool neg, int64_t *out)
{
    uint64_t u = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

    for (size_t i = 0; i < n; i++) {
        uint64_t dv = (uint64_t)hexval(s[i]);
        if (u > (lim - dv) / (uint64_t)base)
            return -1;
        u = u * (uint64_t)base + dv;
    }
    *out = neg ? (u ? -(int64_t)(u - 1) - 1 : 0) : (int64_t)u;
    return 0;
}

/* An integer or float token s[0..n) that started at line:col. */
static int number(struct parser *P, const char *s, size_t n, int line, int col, toml_value **out)
{
    const char *p = s, *e = s + n;
    char *clean = xmalloc(n + 1);
    size_t cn = 0, first;
    int base = 10, shown = (int)(n < SHOWN ? n : SHOWN), rc = 0;
    bool neg = *p == '-', is_float = false;
    int64_t i;

    if (*p == '+' || *p == '-')
        clean[cn++] = *p++;
    first = cn;
    if (e - p > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'o' || p[1] == 'b')) {
        base = p[1] == 'x' ? 16 : p[1] == 'o' ? 8 : 2;
        p += 2;
        if (first) {
            rc = fail_at(P, line, col, "invalid number '%.*s' (0x, 0o and 0b take no sign)", shown,
                         s);
            goto out;
        }
    }
    if (!digits(&p, e, base, clean, &cn))
        goto bad;
    if (base == 10 && clean[first] == '0' && cn - first > 1) {
        rc = fail_at(P, line, col, "invalid number '%.*s' (leading zeros are not allowed)", shown,
                     s);
        goto out;
    }
    if (base == 10 && p < e && *p == '.') {
        is_float = true;
        clean[cn++] = *p++;
        if (!digits(&p, e, 10, clean, &cn))
            goto bad;
    }
    if (base == 10 && p < e && (*p == 'e' || *p == 'E')) {
        is_float = true;
        clean[cn++] = *p++;
        if (p < e && (*p == '+' || *p == '-'))
            clean[cn++] = *p++;
        if (!digits(&p, e, 10, clean, &cn))
            goto bad;
    }
    if (p != e)
        goto bad;
    clean[cn] = '\0';
    if (is_float) {
        /* strtod reads '.' as the decimal point: firesync never calls setlocale(). */
        double f = strtod(clean, NULL);
        if (isinf(f)) {
            rc = fail_at(P, line, col, "float out of range: %.*s", shown, s);
            goto out;
        }
        *out = new_value(TOML_FLOAT, line, col);
        (*out)->u.f = f;
    } else {
        if (to_int(clean + first, cn - first, base, neg, &i)) {
            rc = fail_at(P, line, col, "integer out of range: %.*s", shown, s);
            goto out;
        }
        *out = new_value(TOML_INT, line, col);
        (*out)->u.i = i;
    }
    goto out;
bad:
    rc = fail_at(P, line, col, "invalid number '%.*s'", shown, s);
out:
    free(clean);
    return rc;
}

/* Everything that is not a string, array or inline table: read as one token, then classified. */
static int scalar(struct parser *P, toml_value **out)
{
    int line = P->line, col = P->col, shown;
    const char *s = P->p, *w;
    size_t n;

    while (is_token(peek(P)))
        adv(P);
    n = (size_t)(P->p - s);
    shown = (int)(n < SHOWN ? n : SHOWN);
    if (n == 0)
        return fail(P, "expected a value, found %s", found(P, 0));
    if (looks_like_date(s, n))
        return fail_at(P, line, col, "dates are not supported here");
    if (word(s, n, "true") || word(s, n, "false")) {
        *out = new_value(TOML_BOOL, line, col);
        (*out)->u.b = *s == 't';
        return 0;
    }
    w = (*s == '+' || *s == '-') ? s + 1 : s;
    if (word(w, n - (size_t)(w - s), "inf") || word(w, n - (size_t)(w - s), "nan")) {
        *out = new_value(TOML_FLOAT, line, col);
        (*out)->u.f = *w == 'i' ? (double)INFINITY : (double)NAN;
        if (*s == '-')
            (*out)->u.f = -(*out)->u.f;
        return 0;
    }
    if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))
        return fail_at(P, line, col, "invalid value '%.*s' (strings must be quoted)", shown, s);
    return number(P, s, n, line, col, out);
}

/* ---- values and tables ------------------------------------------------------------------- */

static int value(struct parser *P, int depth, toml_value **out);
static int keyval(struct parser *P, toml_value *t, int depth);

static int array(struct parser *P, int depth, toml_value **out)
{
    int line = P->line, col = P->col, rc;
    toml_value *a = new_value(TOML_ARRAY, line, col), *v;
    bool after_value = false; /* a ',' or the ']' must come next */

    adv(P);
    for (;;) {
        rc = skip_blank(P);
        if (!rc && eof(P))
            rc = fail_at(P, line, col, "unterminated array");
        if (rc)
            goto err;
        if (peek(P) == ']')
            break;
        if (after_value && peek(P) != ',') {
            rc = fail(P, "expected ',' or ']' after an array element, found %s", found(P, 0));
            goto err;
        }
        if (after_value) {
            adv(P);
            after_value = false;
            continue;
        }
        rc = value(P, depth + 1, &v);
        if (rc)
            goto err;
        push(a, v);
        after_value = true;
    }
    adv(P);
    *out = a;
    return 0;
err:
    toml_free(a);
    return rc;
}

/* { k = v, ... } on one line, no trailing comma (TOML 1.0). */
static int inline_table(struct parser *P, int depth, toml_value **out)
{
    toml_value *t = new_table(INLINE, P->line, P->col);
    int rc, line, col;

    adv(P);
    skip_ws(P);
    while (peek(P) != '}') {
        rc = keyval(P, t, depth);
        if (rc)
            goto err;
        skip_ws(P);
        if (peek(P) == '}')
            break;
        if (peek(P) != ',') {
            rc = fail(P, "expected ',' or '}' in inline table, found %s", found(P, 0));
            goto err;
        }
        line = P->line, col = P->col;
        adv(P);
        skip_ws(P);
        if (peek(P) == '}') {
            rc = fail_at(P, line, col, "trailing comma in inline table");
            goto err;
        }
    }
    adv(P);
    *out = t;
    return 0;
err:
    toml_free(t);
    return rc;
}

/* A value at nesting level `depth`. */
static int value(struct parser *P, int depth, toml_value **out)
{
    int c = peek(P);

    *out = NULL;
    if (depth > MAX_DEPTH)
        return fail(P, "nesting deeper than %d levels", MAX_DEPTH);
    if (c == '"' || c == '\'')
        return string_value(P, out);
    if (c == '[')
        return array(P, depth, out);
    if (c == '{')
        return inline_table(P, depth, out);
    return scalar(P, out);
}

/* Steps from table t into the table named by segment i of k, creating it (as `origin`) when
 * missing. A header (origin IMPLICIT) may pass through any table but an inline one, and through
 * the last element of an array of tables; a dotted key only through tables made by dotted keys. */
static int descend(struct parser *P, toml_value *t, const struct key *k, int i, enum origin origin,
                   toml_value **out)
{
    const struct seg *s = &k->seg[i];
    struct toml_kv *kv = find(t, s->name);
    toml_value *v = kv ? kv->val : NULL;
    char name[80];

    if (!v) {
        *out = new_table(origin, s->line, s->col);
        add_kv(t, s, *out);
        return 0;
    }
    if (origin == IMPLICIT && v->kind == TOML_ARRAY && v->u.array.of_tables) {
        *out = v->u.array.items[v->u.array.n - 1];
        return 0;
    }
    if (v->kind == TOML_TABLE && !v->u.table.is_inline &&
        (origin == IMPLICIT || *origin_of(v) == DOTTED)) {
        *out = v;
        return 0;
    }
    key_name(k, i + 1, name, sizeof(name));
    if (v->kind == TOML_TABLE && v->u.table.is_inline)
        return fail_at(P, s->line, s->col,
                       "cannot add to inline table '%s' (defined at %d:%d; inline tables are "
                       "closed)",
                       name, v->line, v->col);
    if (v->kind == TOML_TABLE)
        return fail_at(P, s->line, s->col,
                       "cannot add to table '%s' with dotted keys (it was made by a header at "
                       "%d:%d)",
                       name, v->line, v->col);
    return fail_at(P, s->line, s->col, "key '%s' is already %s %s (defined at %d:%d), not a table",
                   name, article(v->kind), toml_kind_name(v->kind), kv->line, kv->col);
}

/* Stores v under the (maybe dotted) key k in table t; v stays the caller's on error. */
static int set_key(struct parser *P, toml_value *t, const struct key *k, toml_value *v)
{
    const struct seg *last = &k->seg[k->n - 1];
    struct toml_kv *kv;
    char name[80];
    int rc;

    for (int i = 0; i + 1 < k->n; i++) {
        rc = descend(P, t, k, i, DOTTED, &t);
        if (rc)
            return rc;
    }
    kv = find(t, last->name);
    if (kv)
        return fail_at(P, last->line, last->col, "duplicate key '%s' (first defined at %d:%d)",
                       key_name(k, k->n, name, sizeof(name)), kv->line, kv->col);
    add_kv(t, last, v);
    return 0;
}

/* key = value into table t, whose own nesting level is `depth`. */
static int keyval(struct parser *P, toml_value *t, int depth)
{
    toml_value *v = NULL;
    struct key k;
    char name[80];
    int rc;

    k.n = 0;
    rc = parse_key(P, &k);
    if (rc)
        goto out;
    if (peek(P) != '=') {
        rc = fail(P, "expected '=' after key '%s', found %s", key_name(&k, k.n, name, sizeof(name)),
                  found(P, 0));
        goto out;
    }
    adv(P);
    skip_ws(P);
    rc = value(P, depth + k.n, &v);
    if (rc)
        goto out;
    rc = set_key(P, t, &k, v);
    if (rc)
        toml_free(v);
out:
    key_release(&k);
    return rc;
}

/* The table that the last segment of header k ([k], or [[k]] when `arr`) opens under `parent`. */
static int open_last(struct parser *P, toml_value *parent, const struct key *k, bool arr, int line,
                     int col, toml_value **out)
{
    const struct seg *s = &k->seg[k->n - 1];
    struct toml_kv *kv = find(parent, s->name);
    toml_value *v = kv ? kv->val : NULL, *a = v;
    char name[80];

    key_name(k, k->n, name, sizeof(name));
    if (!arr && !v) {
        *out = new_table(HEADER, line, col);
        add_kv(parent, s, *out);
        return 0;
    }
    if (!arr && v->kind == TOML_TABLE && *origin_of(v) == IMPLICIT) {
        *origin_of(v) = HEADER;
        v->line = line;
        v->col = col;
        *out = v;
        return 0;
    }
    if (!arr && v->kind == TOML_TABLE)
        return fail_at(P, line, col, "table [%s] defined twice (first defined at %d:%d)", name,
                       v->line, v->col);
    if (!arr && v->kind == TOML_ARRAY && v->u.array.of_tables)
        return fail_at(P, line, col,
                       "table [%s] conflicts with the array of tables [[%s]] at %d:%d", name, name,
                       v->line, v->col);
    if (!arr)
        return fail_at(P, line, col,
                       "table [%s] conflicts with key '%s', already %s %s (defined "
                       "at %d:%d)",
                       name, name, article(v->kind), toml_kind_name(v->kind), kv->line, kv->col);
    if (!v) {
        a = new_value(TOML_ARRAY, line, col);
        a->u.array.of_tables = true;
        add_kv(parent, s, a);
    } else if (v->kind != TOML_ARRAY || !v->u.array.of_tables) {
        return fail_at(P, line, col,
                       "array of tables [[%s]] conflicts with key '%s', already %s %s (defined "
                       "at %d:%d)",
                       name, name, article(v->kind), toml_kind_name(v->kind), kv->line, kv->col);
    }
    *out = new_table(HEADER, line, col);
    (*out)->u.table.is_array_elem = true;
    push(a, *out);
    return 0;
}

/* [a.b] or [[a.b]]: makes the named table the current one. After a bad header the current table
 * is a throwaway, so that its keys are still checked but land nowhere. */
static int header(struct parser *P, toml_value *root)
{
    int line = P->line, col = P->col, rc, off;
    bool arr = peek_at(P, 1) == '[';
    toml_value *t = root;
    struct key k;

    k.n = 0;
    adv_n(P, arr ? 2 : 1);
    skip_ws(P);
    rc = parse_key(P, &k);
    if (rc)
        goto err;
    if (peek(P) != ']' || (arr && peek_at(P, 1) != ']')) {
        off = arr && peek(P) == ']';
        rc = fail_at(P, P->line, P->col + off, "expected '%s' to close the table header, found %s",
                     arr ? "]]" : "]", found(P, (size_t)off));
        goto err;
    }
    adv_n(P, arr ? 2 : 1);
    for (int i = 0; i + 1 < k.n; i++) {
        rc = descend(P, t, &k, i, IMPLICIT, &t);
        if (rc)
            goto err;
    }
    rc = open_last(P, t, &k, arr, line, col, &t);
    if (rc)
        goto err;
    P->cur = t;
    P->cur_depth = k.n;
    rc = end_of_line(P, "the table header");
    key_release(&k);
    return rc;
err:
    toml_free(P->orphan);
    P->orphan = new_table(HEADER, line, col);
    P->cur = P->orphan;
    P->cur_depth = k.n;
    key_release(&k);
    return rc;
}

int toml_parse(const char *src, size_t len, toml_value **out, toml_diag *d)
{
    struct parser P;
    size_t before = d->n;
    toml_value *root = new_table(HEADER, 1, 1);
    int rc;

    *out = root;
    if (len > MAX_INPUT) {
        toml_diag_add(d, 1, 1, "input larger than 4 MiB (%zu bytes)", len);
        return FS_ECONFIG;
    }
    memset(&P, 0, sizeof(P));
    P.p = len ? src : "";
    P.end = P.p + len;
    P.line = P.col = 1;
    P.d = d;
    P.cur = root;
    while (!eof(&P)) {
        int c;
        skip_ws(&P);
        c = peek(&P);
        if (c == '[') {
            rc = header(&P, root);
        } else if (c == '#' || c == '\n' || c == '\r' || c < 0) {
            rc = end_of_line(&P, "whitespace");
        } else {
            rc = keyval(&P, P.cur, P.cur_depth);
            if (!rc)
                rc = end_of_line(&P, "the value");
        }
        if (rc)
            skip_line(&P);
    }
    toml_free(P.orphan);
    return d->n > before ? FS_ECONFIG : 0;
}
