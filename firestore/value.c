/*
 * value.c - Firestore values (value.h): the proto3-JSON decoder, the document decoder, RFC 3339
 * timestamps, field paths, and what the diff needs from a value (equality, a stable hash, a JSON
 * text for people).
 *
 * It owns every fsval tree it builds, and nothing of the json_doc it reads: tokens are decoded
 * straight into the tree, so a document costs one allocation per string, array and map and none
 * for scalars. The decoder is strict because what it accepts ends up in MySQL: a value that is
 * not exactly one well-formed Firestore kind is refused with its field path, and the caller sends
 * the document to the dead letter instead of writing something approximate. The path of an error
 * is rebuilt only when an error happens, from a small stack of frames, so the good path pays
 * nothing for it.
 */
#include "firestore/value.h"

#include "common/base64.h"
#include "common/xalloc.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in Unix seconds. */
#define TIME_MIN_SECONDS (-62135596800LL)
#define TIME_MAX_SECONDS 253402300799LL

/* ---- lifetime ------------------------------------------------------------------------------- */

void fsval_init(fsval *v)
{
    memset(v, 0, sizeof(*v));
    v->type = FSVAL_NULL;
}

void fsval_release(fsval *v)
{
    switch (v->type) {
    case FSVAL_STRING:
    case FSVAL_BYTES:
    case FSVAL_REFERENCE:
        free(v->u.s.p);
        break;
    case FSVAL_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++)
            fsval_release(&v->u.arr.items[i]);
        free(v->u.arr.items);
        break;
    case FSVAL_MAP:
        for (size_t i = 0; i < v->u.map.n; i++) {
            free(v->u.map.fields[i].name);
            fsval_release(&v->u.map.fields[i].v);
        }
        free(v->u.map.fields);
        break;
    default:
        break;
    }
    fsval_init(v);
}

fsval *fsval_new(void)
{
    fsval *v = xmalloc(sizeof(*v));
    fsval_init(v);
    return v;
}

void fsval_free(fsval *v)
{
    if (!v)
        return;
    fsval_release(v);
    free(v);
}

void fsdoc_init(struct fsdoc *doc)
{
    memset(doc, 0, sizeof(*doc));
    fsval_init(&doc->fields);
    doc->fields.type = FSVAL_MAP;
}

void fsdoc_release(struct fsdoc *doc)
{
    free(doc->name);
    fsval_release(&doc->fields);
    fsdoc_init(doc);
}

struct fsdoc *fsdoc_new(void)
{
    struct fsdoc *doc = xmalloc(sizeof(*doc));
    fsdoc_init(doc);
    return doc;
}

void fsdoc_free(struct fsdoc *doc)
{
    if (!doc)
        return;
    fsdoc_release(doc);
    free(doc);
}

const char *fsval_type_name(enum fsval_type t)
{
    switch (t) {
    case FSVAL_NULL:
        return "null";
    case FSVAL_BOOL:
        return "boolean";
    case FSVAL_INT:
        return "integer";
    case FSVAL_DOUBLE:
        return "double";
    case FSVAL_TIMESTAMP:
        return "timestamp";
    case FSVAL_STRING:
        return "string";
    case FSVAL_BYTES:
        return "bytes";
    case FSVAL_REFERENCE:
        return "reference";
    case FSVAL_GEO:
        return "geoPoint";
    case FSVAL_ARRAY:
        return "array";
    case FSVAL_MAP:
        return "map";
    }
    return "unknown";
}

/* ---- timestamps ----------------------------------------------------------------------------- */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (eras of 400 years, with
 * the year starting in March so that the leap day comes last). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    if (m <= 2)
        y--;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil(). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* The k digits at s[p], or -1 when they are not all there. */
static long digits(const char *s, size_t n, size_t p, size_t k)
{
    long v = 0;
    if (p + k > n)
        return -1;
    for (size_t i = p; i < p + k; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Copies at most 64 bytes of s for a message, control bytes as \xNN. Quotes and backslashes are
 * kept when s is raw JSON string content (already escaped), and written as \xNN otherwise. */
static void shown(const char *s, size_t n, char *out, size_t cap, bool raw_json)
{
    size_t o = 0, lim = n > 64 ? 64 : n;

    while (lim < n && lim > 0 && ((unsigned char)s[lim] & 0xC0) == 0x80)
        lim--; /* do not cut a character */
    for (size_t i = 0; i < lim && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (!raw_json && (c == '"' || c == '\\'))) {
            snprintf(out + o, cap - o, "\\x%02X", c);
            o += 4;
        } else {
            out[o++] = (char)c;
        }
    }
    if (lim < n && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static int time_fail(fserr *e, int code, const char *s, size_t n, const char *why)
{
    char q[300];
    shown(s, n, q, sizeof(q), false);
    return fserr_set(e, code, "bad timestamp \"%s\": %s", q, why);
}

int fsval_time_parse(const char *s, size_t n, struct fs_time *out, fserr *e)
{
    static const char form[] = "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)";
    long y, mo, d, h, mi, sec, oh = 0, om = 0;
    int32_t nanos = 0;
    int64_t secs;
    size_t p = 19;
    int sign = 0;

    y = digits(s, n, 0, 4);
    mo = digits(s, n, 5, 2);
    d = digits(s, n, 8, 2);
    h = digits(s, n, 11, 2);
    mi = digits(s, n, 14, 2);
    sec = digits(s, n, 17, 2);
    if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
        return time_fail(e, FS_EPARSE, s, n, form);
    if (p < n && s[p] == '.') {
        size_t k = 0;
        for (p++; p < n && s[p] >= '0' && s[p] <= '9'; p++, k++)
            if (k < 9)
                nanos = nanos * 10 + (s[p] - '0');
        if (k == 0)
            return time_fail(e, FS_EPARSE, s, n, "expected a digit after '.'");
        if (k > 9)
            return time_fail(e, FS_EPARSE, s, n, "more than 9 fraction digits");
        for (; k < 9; k++)
            nanos *= 10;
    }
    if (p < n && (s[p] == 'Z' || s[p] == 'z')) {
        p++;
    } else if (p < n && (s[p] == '+' || s[p] == '-')) {
        sign = s[p] == '-' ? -1 : 1;
        oh = digits(s, n, p + 1, 2);
        om = digits(s, n, p + 4, 2);
        if (oh < 0 || om < 0 || s[p + 3] != ':')
            return time_fail(e, FS_EPARSE, s, n, "expected an offset +hh:mm or -hh:mm");
        p += 6;
    } else {
        return time_fail(e, FS_EPARSE, s, n, "expected 'Z' or an offset after the time");
    }
    if (p != n)
        return time_fail(e, FS_EPARSE, s, n, "unexpected characters after the time zone");
    if (mo < 1 || mo > 12)
        return time_fail(e, FS_ERANGE, s, n, "month out of range");
    if (d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo))
        return time_fail(e, FS_ERANGE, s, n, "day out of range for the month");
    if (h > 23 || mi > 59)
        return time_fail(e, FS_ERANGE, s, n, "hour or minute out of range");
    if (sec > 59)
        return time_fail(e, FS_ERANGE, s, n, "second out of range (no leap seconds)");
    if (oh > 23 || om > 59)
        return time_fail(e, FS_ERANGE, s, n, "offset out of range");
    secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
    secs -= sign * (oh * 3600 + om * 60);
    if (secs < TIME_MIN_SECONDS || secs > TIME_MAX_SECONDS)
        return time_fail(e, FS_ERANGE, s, n, "outside 0001-01-01..9999-12-31 UTC");
    out->seconds = secs;
    out->nanos = nanos;
    return 0;
}

static char *put_digits(char *o, unsigned long v, int k)
{
    for (int i = k - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + k;
}

int fsval_time_format(struct fs_time t, char out[FSVAL_TIME_BUFSZ])
{
    int64_t days, sod, y;
    unsigned m, d;
    char *o = out;
    int k;

    out[0] = '\0';
    if (t.seconds < TIME_MIN_SECONDS || t.seconds > TIME_MAX_SECONDS || t.nanos < 0 ||
        t.nanos > 999999999)
        return FS_ERANGE;
    days = t.seconds / 86400;
    sod = t.seconds % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    o = put_digits(o, (unsigned long)y, 4);
    *o++ = '-';
    o = put_digits(o, m, 2);
    *o++ = '-';
    o = put_digits(o, d, 2);
    *o++ = 'T';
    o = put_digits(o, (unsigned long)(sod / 3600), 2);
    *o++ = ':';
    o = put_digits(o, (unsigned long)(sod / 60 % 60), 2);
    *o++ = ':';
    o = put_digits(o, (unsigned long)(sod % 60), 2);
    if (t.nanos) {
        k = t.nanos % 1000000 == 0 ? 3 : t.nanos % 1000 == 0 ? 6 : 9;
        *o++ = '.';
        o = put_digits(o, (unsigned long)t.nanos / (k == 3 ? 1000000 : k == 6 ? 1000 : 1), k);
    }
    *o++ = 'Z';
    *o = '\0';
    return (int)(o - out);
}

int fsval_time_cmp(struct fs_time a, struct fs_time b)
{
    if (a.seconds != b.seconds)
        return a.seconds < b.seconds ? -1 : 1;
    if (a.nanos != b.nanos)
        return a.nanos < b.nanos ? -1 : 1;
    return 0;
}

/* ---- field paths ---------------------------------------------------------------------------- */

static bool is_ident(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

/* Appends one segment, in backticks unless it is an identifier; control bytes become '?'. */
static int seg_append(buf *out, const char *s, size_t n)
{
    int rc = 0;

    if (is_ident(s, n))
        return buf_add(out, s, n);
    rc = buf_addc(out, '`');
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '`' || c == '\\')
            rc = buf_addc(out, '\\');
        if (!rc)
            rc = buf_addc(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
    }
    return rc ? rc : buf_addc(out, '`');
}

int fsval_path_format(const struct fsval_path *p, buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < p->n && !rc; i++) {
        if (i)
            rc = buf_addc(out, '.');
        if (!rc)
            rc = seg_append(out, p->segs[i].p, p->segs[i].len);
    }
    return rc;
}

void fsval_path_release(struct fsval_path *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->segs[i].p);
    free(p->segs);
    p->segs = NULL;
    p->n = 0;
}

static void path_push(struct fsval_path *p, size_t *cap, buf *seg)
{
    if (p->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        p->segs = xrealloc(p->segs, *cap * sizeof(*p->segs));
    }
    p->segs[p->n].len = seg->len;
    p->segs[p->n].p = buf_take(seg);
    p->n++;
}

static bool is_path_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Scans one segment at s[*pp] into seg. */
static int path_segment(const char *s, size_t n, size_t *pp, buf *seg, fserr *e)
{
    size_t p = *pp, start = p;

    if (p < n && s[p] == '`') {
        for (p++;; p++) {
            if (p >= n)
                return fserr_set(e, FS_EPARSE, "field path \"%s\": unterminated '`' at byte %zu",
                                 s, start);
            if (s[p] == '`')
                break;
            if (s[p] == '\\' && ++p >= n)
                return fserr_set(e, FS_EPARSE,
                                 "field path \"%s\": '\\' at the end, inside '`' at byte %zu", s,
                                 start);
            if (is_path_control((unsigned char)s[p]))
                return fserr_set(e, FS_EPARSE, "field path: control character at byte %zu", p);
            buf_addc(seg, s[p]);
        }
        p++;
        if (seg->len == 0)
            return fserr_set(e, FS_EPARSE, "field path \"%s\": empty segment at byte %zu", s,
                             start);
    } else {
        for (; p < n && s[p] != '.'; p++) {
            unsigned char c = (unsigned char)s[p];
            if (c == '`' || c == '\\' || c == ' ' || is_path_control(c))
                return fserr_set(e, FS_EPARSE,
                                 "field path: byte %zu (0x%02X) must be inside a `quoted` segment",
                                 p, c);
        }
        if (p == start)
            return fserr_set(e, FS_EPARSE, "field path \"%s\": empty segment at byte %zu", s,
                             start);
        buf_add(seg, s + start, p - start);
    }
    *pp = p;
    return 0;
}

int fsval_path_parse(const char *s, struct fsval_path *out, fserr *e)
{
    struct fsval_path p = {NULL, 0};
    size_t n = strlen(s), pos = 0, cap = 0, bad;
    buf seg;
    int rc = 0;

    bad = json_utf8_check(s, n);
    if (bad != n)
        return fserr_set(e, FS_EUTF8, "field path: invalid UTF-8 at byte %zu", bad);
    if (n == 0)
        return fserr_set(e, FS_EPARSE, "field path is empty");
    buf_init(&seg, 0);
    for (;;) {
        rc = path_segment(s, n, &pos, &seg, e);
        if (rc)
            break;
        path_push(&p, &cap, &seg);
        if (pos == n)
            break;
        if (s[pos] != '.') {
            rc = fserr_set(e, FS_EPARSE, "field path \"%s\": expected '.' at byte %zu", s, pos);
            break;
        }
        if (++pos == n) {
            rc = fserr_set(e, FS_EPARSE, "field path \"%s\": empty segment at the end", s);
            break;
        }
    }
    buf_release(&seg);
    if (rc) {
        fsval_path_release(&p);
        return rc;
    }
    *out = p;
    return 0;
}

static int field_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

const fsval *fsval_map_get(const fsval *m, const char *name, size_t len)
{
    size_t lo = 0, hi;

    if (!m || m->type != FSVAL_MAP)
        return NULL;
    hi = m->u.map.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct fsval_field *f = &m->u.map.fields[mid];
        int c = field_cmp(f->name, f->name_len, name, len);
        if (c == 0)
            return &f->v;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const fsval *fsval_lookup(const fsval *m, const struct fsval_path *path)
{
    const fsval *v = m;
    for (size_t i = 0; i < path->n && v; i++)
        v = fsval_map_get(v, path->segs[i].p, path->segs[i].len);
    return path->n ? v : NULL;
}

/* ---- the decoder ---------------------------------------------------------------------------- */

/* Where the decoder is, for error messages: a map field (key token) or an array index. */
struct frame {
    int key;      /* key token, or JSON_NONE for an array element */
    size_t index; /* array index */
};

struct dec {
    const json_doc *d;
    fserr *e;
    const char *root;  /* "value", "fields", ... */
    int depth;         /* maps and arrays around the value being decoded */
    struct frame frames[FSVAL_MAX_DEPTH + 2];
    int nframes;
    buf tmp;           /* scratch for unescaped strings */
    buf tmp2;
};

enum kind {
    K_NULL,
    K_BOOL,
    K_INT,
    K_DOUBLE,
    K_TIME,
    K_STRING,
    K_BYTES,
    K_REF,
    K_GEO,
    K_ARRAY,
    K_MAP,
    K_COUNT
};

static const char *const kind_names[K_COUNT] = {
    "nullValue",   "booleanValue",   "integerValue",  "doubleValue",
    "timestampValue", "stringValue", "bytesValue",    "referenceValue",
    "geoPointValue", "arrayValue",   "mapValue",
};

static void dec_init(struct dec *x, const json_doc *d, const char *root, fserr *e)
{
    x->d = d;
    x->e = e;
    x->root = root;
    x->depth = 0;
    x->nframes = 0;
    buf_init(&x->tmp, 0);
    buf_init(&x->tmp2, 0);
}

static void dec_release(struct dec *x)
{
    buf_release(&x->tmp);
    buf_release(&x->tmp2);
}

/* The decoded bytes of string token tok, in x->tmp unless it has no escapes. */
static const char *str_of(struct dec *x, int tok, size_t *len)
{
    const json_tok *t = json_tok_at(x->d, tok);

    if (!(t->flags & JSON_F_ESCAPED))
        return json_raw(x->d, tok, len);
    buf_reset(&x->tmp);
    json_str_unescape(x->d, tok, &x->tmp, NULL); /* cannot fail: tmp has no cap */
    *len = x->tmp.len;
    return x->tmp.p;
}

static char *copy_bytes(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Fails with "PATH: message". The path is rebuilt here from the frames. */
static int dec_fail(struct dec *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int dec_fail(struct dec *x, int code, const char *fmt, ...)
{
    char msg[400];
    buf path;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    buf_init(&path, 300);
    buf_adds(&path, x->root);
    for (int i = 0; i < x->nframes; i++) {
        const struct frame *f = &x->frames[i];
        if (f->key >= 0) {
            buf name;
            int rc;
            buf_init(&name, 0);
            json_str_unescape(x->d, f->key, &name, NULL);
            rc = buf_addc(&path, '.');
            if (!rc)
                rc = seg_append(&path, buf_str(&name), name.len);
            buf_release(&name);
            if (rc)
                break;
        } else if (buf_printf(&path, "[%zu]", f->index)) {
            break;
        }
    }
    fserr_set(x->e, code, "%s: %s", buf_str(&path), msg);
    buf_release(&path);
    return code;
}

/* A short rendering of token tok for messages: a string in quotes, anything else as its text. */
static const char *tok_shown(struct dec *x, int tok, char *out, size_t cap)
{
    const json_tok *t = json_tok_at(x->d, tok);
    size_t n;
    const char *s;

    if (t->type == JSON_OBJECT || t->type == JSON_ARRAY) {
        snprintf(out, cap, "%s", json_type_name(t->type));
        return out;
    }
    s = json_raw(x->d, tok, &n);
    if (t->type == JSON_STRING && cap > 2) {
        out[0] = '"';
        shown(s, n, out + 1, cap - 2, true);
        strcat(out, "\"");
    } else {
        shown(s, n, out, cap, true);
    }
    return out;
}

static int decode_value(struct dec *x, int tok, fsval *out);

static void frame_push(struct dec *x, int key, size_t index)
{
    x->frames[x->nframes].key = key;
    x->frames[x->nframes].index = index;
    x->nframes++;
}

static int by_name(const void *a, const void *b)
{
    const struct fsval_field *fa = a, *fb = b;
    return field_cmp(fa->name, fa->name_len, fb->name, fb->name_len);
}

/* Decodes the object at tok ({"name": value, ...}) into out as a map. */
static int decode_fields(struct dec *x, int obj, fsval *out)
{
    const json_tok *t = json_tok_at(x->d, obj);
    size_t i = 0, n;
    int rc = 0;

    if (t->type != JSON_OBJECT) {
        char q[80];
        return dec_fail(x, FS_ETYPE, "expected an object of fields, found %s",
                        tok_shown(x, obj, q, sizeof(q)));
    }
    out->type = FSVAL_MAP;
    out->u.map.n = t->count;
    out->u.map.fields = t->count ? xcalloc(t->count, sizeof(struct fsval_field)) : NULL;
    for (int k = json_child(x->d, obj); k >= 0; k = json_sibling(x->d, obj, k), i++) {
        struct fsval_field *f = &out->u.map.fields[i];
        const char *s = str_of(x, k, &n);
        f->name = copy_bytes(s, n);
        f->name_len = n;
        frame_push(x, k, 0);
        rc = decode_value(x, k + 1, &f->v);
        x->nframes--;
        if (rc)
            return rc;
    }
    if (out->u.map.n > 1) {
        struct fsval_field *f = out->u.map.fields;
        qsort(f, out->u.map.n, sizeof(*f), by_name);
        for (i = 1; i < out->u.map.n; i++) {
            if (field_cmp(f[i - 1].name, f[i - 1].name_len, f[i].name, f[i].name_len) == 0) {
                char q[300];
                shown(f[i].name, f[i].name_len, q, sizeof(q), false);
                return dec_fail(x, FS_EPARSE, "duplicate field name \"%s\"", q);
            }
        }
    }
    return 0;
}

static int decode_array(struct dec *x, int val, fsval *out)
{
    int values = JSON_NONE, rc;
    size_t i = 0;

    for (int k = json_child(x->d, val); k >= 0; k = json_sibling(x->d, val, k)) {
        char q[80];
        if (!json_str_eq(x->d, k, "values"))
            return dec_fail(x, FS_EPARSE, "unknown member %s in arrayValue",
                            tok_shown(x, k, q, sizeof(q)));
        if (values >= 0)
            return dec_fail(x, FS_EPARSE, "duplicate \"values\" in arrayValue");
        values = k + 1;
    }
    out->type = FSVAL_ARRAY;
    if (values < 0)
        return 0;
    if (json_type_of(x->d, values) != JSON_ARRAY) {
        char q[80];
        return dec_fail(x, FS_ETYPE, "arrayValue.values must be an array, found %s",
                        tok_shown(x, values, q, sizeof(q)));
    }
    out->u.arr.n = json_tok_at(x->d, values)->count;
    out->u.arr.items = out->u.arr.n ? xcalloc(out->u.arr.n, sizeof(fsval)) : NULL;
    for (int k = json_child(x->d, values); k >= 0; k = json_sibling(x->d, values, k), i++) {
        frame_push(x, JSON_NONE, i);
        rc = decode_value(x, k, &out->u.arr.items[i]);
        x->nframes--;
        if (rc)
            return rc;
    }
    return 0;
}

static int decode_map(struct dec *x, int val, fsval *out)
{
    int fields = JSON_NONE;

    for (int k = json_child(x->d, val); k >= 0; k = json_sibling(x->d, val, k)) {
        char q[80];
        if (!json_str_eq(x->d, k, "fields"))
            return dec_fail(x, FS_EPARSE, "unknown member %s in mapValue",
                            tok_shown(x, k, q, sizeof(q)));
        if (fields >= 0)
            return dec_fail(x, FS_EPARSE, "duplicate \"fields\" in mapValue");
        fields = k + 1;
    }
    out->type = FSVAL_MAP;
    if (fields < 0)
        return 0;
    return decode_fields(x, fields, out);
}

static int decode_geo(struct dec *x, int val, fsval *out)
{
    bool seen[2] = {false, false};
    double c[2] = {0, 0};
    static const char *const names[2] = {"latitude", "longitude"};
    static const double lim[2] = {90, 180};
    char q[80];
    int rc;

    if (json_type_of(x->d, val) != JSON_OBJECT)
        return dec_fail(x, FS_ETYPE, "geoPointValue must be an object, found %s",
                        tok_shown(x, val, q, sizeof(q)));
    for (int k = json_child(x->d, val); k >= 0; k = json_sibling(x->d, val, k)) {
        int w = json_str_eq(x->d, k, names[0]) ? 0 : json_str_eq(x->d, k, names[1]) ? 1 : -1;
        if (w < 0)
            return dec_fail(x, FS_EPARSE, "unknown member %s in geoPointValue",
                            tok_shown(x, k, q, sizeof(q)));
        if (seen[w])
            return dec_fail(x, FS_EPARSE, "duplicate \"%s\" in geoPointValue", names[w]);
        seen[w] = true;
        rc = json_double(x->d, k + 1, &c[w], NULL);
        if (rc && rc != FS_ERANGE)
            return dec_fail(x, FS_ETYPE, "geoPointValue %s %s is not a number", names[w],
                            tok_shown(x, k + 1, q, sizeof(q)));
        if (rc || !(c[w] >= -lim[w] && c[w] <= lim[w]))
            return dec_fail(x, FS_ERANGE, "geoPointValue %s %s is outside -%g..%g", names[w],
                            tok_shown(x, k + 1, q, sizeof(q)), lim[w], lim[w]);
    }
    out->type = FSVAL_GEO;
    out->u.geo.lat = c[0];
    out->u.geo.lng = c[1];
    return 0;
}

static int decode_double(struct dec *x, int val, fsval *out)
{
    char q[80];
    size_t n;
    const char *s;
    int rc;

    out->type = FSVAL_DOUBLE;
    if (json_type_of(x->d, val) == JSON_STRING) {
        s = str_of(x, val, &n);
        if (n == 3 && memcmp(s, "NaN", 3) == 0) {
            out->u.d = NAN;
            return 0;
        }
        if (n == 8 && memcmp(s, "Infinity", 8) == 0) {
            out->u.d = INFINITY;
            return 0;
        }
        if (n == 9 && memcmp(s, "-Infinity", 9) == 0) {
            out->u.d = -INFINITY;
            return 0;
        }
    }
    rc = json_double(x->d, val, &out->u.d, NULL);
    if (rc == FS_ERANGE)
        return dec_fail(x, rc, "doubleValue %s overflows a double",
                        tok_shown(x, val, q, sizeof(q)));
    if (rc)
        return dec_fail(x, rc, "bad doubleValue %s (expected a number, \"NaN\", \"Infinity\" "
                        "or \"-Infinity\")", tok_shown(x, val, q, sizeof(q)));
    return 0;
}

/* A string-valued kind: string, bytes, reference, timestamp. */
static int decode_stringish(struct dec *x, enum kind k, int val, fsval *out)
{
    char q[80];
    size_t n;
    const char *s;
    int rc;

    if (json_type_of(x->d, val) != JSON_STRING)
        return dec_fail(x, FS_ETYPE, "%s must be a string, found %s", kind_names[k],
                        tok_shown(x, val, q, sizeof(q)));
    s = str_of(x, val, &n);
    switch (k) {
    case K_TIME:
        rc = fsval_time_parse(s, n, &out->u.ts, x->e);
        if (rc) {
            char reason[sizeof(x->e->msg)];
            snprintf(reason, sizeof(reason), "%s", x->e ? x->e->msg : "bad timestamp");
            return dec_fail(x, rc, "%s", reason);
        }
        out->type = FSVAL_TIMESTAMP;
        return 0;
    case K_BYTES:
        buf_reset(&x->tmp2);
        if (base64_decode(BASE64_STD, s, n, &x->tmp2))
            return dec_fail(x, FS_EPARSE, "bad base64 in bytesValue %s",
                            tok_shown(x, val, q, sizeof(q)));
        s = x->tmp2.p ? x->tmp2.p : "";
        n = x->tmp2.len;
        out->type = FSVAL_BYTES;
        break;
    case K_REF:
        out->type = FSVAL_REFERENCE;
        break;
    default:
        out->type = FSVAL_STRING;
        break;
    }
    out->u.s.p = copy_bytes(s, n);
    out->u.s.len = n;
    return 0;
}

/* The kind (>= 0) of the one-member value object at tok, or a negative FS_E* code. */
static int value_kind(struct dec *x, int tok)
{
    const json_tok *t = json_tok_at(x->d, tok);
    char q[80], q2[80];

    if (t->type != JSON_OBJECT)
        return dec_fail(x, FS_ETYPE,
                        "expected a value object such as {\"stringValue\":\"x\"}, found %s",
                        tok_shown(x, tok, q, sizeof(q)));
    if (t->count == 0)
        return dec_fail(x, FS_EPARSE, "empty value object, expected one kind such as "
                                      "\"stringValue\"");
    if (t->count > 1)
        return dec_fail(x, FS_EPARSE, "more than one value kind (%s and %s)",
                        tok_shown(x, tok + 1, q, sizeof(q)),
                        tok_shown(x, json_sibling(x->d, tok, tok + 1), q2, sizeof(q2)));
    for (int k = 0; k < K_COUNT; k++)
        if (json_str_eq(x->d, tok + 1, kind_names[k]))
            return k;
    return dec_fail(x, FS_EPARSE, "unknown value kind %s", tok_shown(x, tok + 1, q, sizeof(q)));
}

static int decode_value(struct dec *x, int tok, fsval *out)
{
    int k = value_kind(x, tok), val = tok + 2, type, rc;
    char q[80];

    if (k < 0)
        return k;
    type = json_type_of(x->d, val);
    switch ((enum kind)k) {
    case K_NULL:
        if (type != JSON_NULL && !json_str_eq(x->d, val, "NULL_VALUE"))
            return dec_fail(x, FS_ETYPE, "nullValue must be null, found %s",
                            tok_shown(x, val, q, sizeof(q)));
        out->type = FSVAL_NULL;
        return 0;
    case K_BOOL:
        if (type != JSON_TRUE && type != JSON_FALSE)
            return dec_fail(x, FS_ETYPE, "booleanValue must be true or false, found %s",
                            tok_shown(x, val, q, sizeof(q)));
        out->type = FSVAL_BOOL;
        out->u.b = type == JSON_TRUE;
        return 0;
    case K_INT:
        rc = json_int64(x->d, val, &out->u.i, NULL);
        if (rc == FS_ERANGE)
            return dec_fail(x, rc, "integerValue %s is out of the int64 range",
                            tok_shown(x, val, q, sizeof(q)));
        if (rc)
            return dec_fail(x, rc, "bad integerValue %s (expected an integer)",
                            tok_shown(x, val, q, sizeof(q)));
        out->type = FSVAL_INT;
        return 0;
    case K_DOUBLE:
        return decode_double(x, val, out);
    case K_GEO:
        return decode_geo(x, val, out);
    case K_ARRAY:
    case K_MAP:
        if (type != JSON_OBJECT)
            return dec_fail(x, FS_ETYPE, "%s must be an object, found %s", kind_names[k],
                            tok_shown(x, val, q, sizeof(q)));
        if (x->depth >= FSVAL_MAX_DEPTH)
            return dec_fail(x, FS_ETOOBIG, "nested deeper than %d maps and arrays",
                            FSVAL_MAX_DEPTH);
        x->depth++;
        rc = k == K_ARRAY ? decode_array(x, val, out) : decode_map(x, val, out);
        x->depth--;
        return rc;
    default:
        return decode_stringish(x, (enum kind)k, val, out);
    }
}

int fsval_decode(const json_doc *d, int tok, fsval *out, fserr *e)
{
    struct dec x;
    int rc;

    fsval_init(out);
    if (json_type_of(d, tok) == 0)
        return fserr_set(e, FS_EINVAL, "value: no token %d", tok);
    dec_init(&x, d, "value", e);
    rc = decode_value(&x, tok, out);
    dec_release(&x);
    if (rc)
        fsval_release(out);
    return rc;
}

int fsval_parse(const char *s, size_t n, fsval *out, fserr *e)
{
    json_doc d;
    int rc;

    fsval_init(out);
    json_doc_init(&d);
    rc = json_parse(&d, s, n, e);
    if (!rc)
        rc = fsval_decode(&d, 0, out, e);
    json_doc_release(&d);
    return rc;
}

/* ---- documents ------------------------------------------------------------------------------ */

static int doc_time(struct dec *x, int obj, const char *member, struct fs_time *out)
{
    int v = json_obj_get(x->d, obj, member);
    char q[80];
    size_t n;
    const char *s;
    int rc;

    x->root = member;
    if (v < 0)
        return fserr_set(x->e, FS_EPARSE, "document: missing \"%s\"", member);
    if (json_type_of(x->d, v) != JSON_STRING)
        return dec_fail(x, FS_ETYPE, "must be a timestamp string, found %s",
                        tok_shown(x, v, q, sizeof(q)));
    s = str_of(x, v, &n);
    rc = fsval_time_parse(s, n, out, x->e);
    if (rc && x->e)
        fserr_prefix(x->e, "%s", member);
    return rc;
}

static int doc_decode(struct dec *x, int tok, struct fsdoc *out)
{
    const json_doc *d = x->d;
    char q[80];
    size_t n;
    const char *s;
    int v, rc;

    if (json_type_of(d, tok) != JSON_OBJECT)
        return fserr_set(x->e, FS_ETYPE, "document: expected an object, found %s",
                         json_type_name(json_type_of(d, tok)));
    if (json_obj_has_duplicates(d, tok))
        return fserr_set(x->e, FS_EPARSE, "document: duplicate member");
    v = json_obj_get(d, tok, "name");
    if (v < 0)
        return fserr_set(x->e, FS_EPARSE, "document: missing \"name\"");
    x->root = "name";
    if (json_type_of(d, v) != JSON_STRING)
        return dec_fail(x, FS_ETYPE, "must be a string, found %s", tok_shown(x, v, q, sizeof(q)));
    s = str_of(x, v, &n);
    if (n == 0 || memchr(s, '\0', n))
        return dec_fail(x, FS_EPARSE, "must be a non-empty string without NUL");
    out->name = copy_bytes(s, n);
    rc = doc_time(x, tok, "createTime", &out->create_time);
    if (!rc)
        rc = doc_time(x, tok, "updateTime", &out->update_time);
    if (rc)
        return rc;
    v = json_obj_get(d, tok, "fields");
    x->root = "fields";
    if (v >= 0)
        return decode_fields(x, v, &out->fields);
    return 0;
}

int fsdoc_decode(const json_doc *d, int tok, struct fsdoc *out, fserr *e)
{
    struct dec x;
    int rc;

    fsdoc_init(out);
    dec_init(&x, d, "document", e);
    rc = doc_decode(&x, tok, out);
    dec_release(&x);
    if (rc)
        fsdoc_release(out);
    return rc;
}

int fsdoc_parse(const char *s, size_t n, struct fsdoc *out, fserr *e)
{
    json_doc d;
    int rc;

    fsdoc_init(out);
    json_doc_init(&d);
    rc = json_parse(&d, s, n, e);
    if (!rc)
        rc = fsdoc_decode(&d, 0, out, e);
    json_doc_release(&d);
    return rc;
}

/* ---- JSON for people ------------------------------------------------------------------------ */

static int emit_string(buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    int rc = buf_addc(out, '"');

    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;

        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f)
            continue;
        rc = buf_add(out, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
        }
        if (!rc)
            rc = buf_add(out, esc, elen);
    }
    if (!rc)
        rc = buf_add(out, s + run, n - run);
    return rc ? rc : buf_addc(out, '"');
}

/* A finite double in the fewest digits that read back exactly, always with '.' or exponent. */
static int emit_number(buf *out, double v)
{
    char t[40];

    if (v == 0)
        return buf_adds(out, signbit(v) ? "-0.0" : "0.0");
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(t, sizeof(t), "%.*g", prec, v);
        if (strtod(t, NULL) == v)
            break;
    }
    if (!strpbrk(t, ".e"))
        strcat(t, ".0");
    return buf_adds(out, t);
}

static int emit_double(buf *out, double v)
{
    if (isnan(v))
        return buf_adds(out, "{\"$double\":\"NaN\"}");
    if (isinf(v))
        return buf_adds(out, v > 0 ? "{\"$double\":\"Infinity\"}" : "{\"$double\":\"-Infinity\"}");
    return emit_number(out, v);
}

int fsval_to_json(const fsval *v, buf *out)
{
    char t[FSVAL_TIME_BUFSZ];
    int rc = 0;

    switch (v->type) {
    case FSVAL_NULL:
        return buf_adds(out, "null");
    case FSVAL_BOOL:
        return buf_adds(out, v->u.b ? "true" : "false");
    case FSVAL_INT:
        return buf_printf(out, "%lld", (long long)v->u.i);
    case FSVAL_DOUBLE:
        return emit_double(out, v->u.d);
    case FSVAL_TIMESTAMP:
        if (fsval_time_format(v->u.ts, t) < 0)
            return buf_printf(out, "{\"$timestamp\":{\"seconds\":%lld,\"nanos\":%ld}}",
                              (long long)v->u.ts.seconds, (long)v->u.ts.nanos);
        return buf_printf(out, "{\"$timestamp\":\"%s\"}", t);
    case FSVAL_STRING:
        return emit_string(out, v->u.s.p, v->u.s.len);
    case FSVAL_BYTES:
        rc = buf_adds(out, "{\"$bytes\":\"");
        if (!rc)
            rc = base64_encode(BASE64_STD, v->u.s.p, v->u.s.len, out);
        return rc ? rc : buf_adds(out, "\"}");
    case FSVAL_REFERENCE:
        rc = buf_adds(out, "{\"$reference\":");
        if (!rc)
            rc = emit_string(out, v->u.s.p, v->u.s.len);
        return rc ? rc : buf_addc(out, '}');
    case FSVAL_GEO:
        rc = buf_adds(out, "{\"$geo\":{\"latitude\":");
        if (!rc)
            rc = emit_double(out, v->u.geo.lat);
        if (!rc)
            rc = buf_adds(out, ",\"longitude\":");
        if (!rc)
            rc = emit_double(out, v->u.geo.lng);
        return rc ? rc : buf_adds(out, "}}");
    case FSVAL_ARRAY:
        rc = buf_addc(out, '[');
        for (size_t i = 0; i < v->u.arr.n && !rc; i++) {
            if (i)
                rc = buf_addc(out, ',');
            if (!rc)
                rc = fsval_to_json(&v->u.arr.items[i], out);
        }
        return rc ? rc : buf_addc(out, ']');
    case FSVAL_MAP:
        rc = buf_addc(out, '{');
        for (size_t i = 0; i < v->u.map.n && !rc; i++) {
            const struct fsval_field *f = &v->u.map.fields[i];
            if (i)
                rc = buf_addc(out, ',');
            if (!rc)
                rc = emit_string(out, f->name, f->name_len);
            if (!rc)
                rc = buf_addc(out, ':');
            if (!rc)
                rc = fsval_to_json(&f->v, out);
        }
        return rc ? rc : buf_addc(out, '}');
    }
    return FS_EINVAL;
}

/* ---- equality and hashing ------------------------------------------------------------------- */

static bool double_same(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

static bool bytes_same(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

bool fsval_equal(const fsval *a, const fsval *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case FSVAL_NULL:
        return true;
    case FSVAL_BOOL:
        return a->u.b == b->u.b;
    case FSVAL_INT:
        return a->u.i == b->u.i;
    case FSVAL_DOUBLE:
        return double_same(a->u.d, b->u.d);
    case FSVAL_TIMESTAMP:
        return fsval_time_cmp(a->u.ts, b->u.ts) == 0;
    case FSVAL_STRING:
    case FSVAL_BYTES:
    case FSVAL_REFERENCE:
        return bytes_same(a->u.s.p, a->u.s.len, b->u.s.p, b->u.s.len);
    case FSVAL_GEO:
        return double_same(a->u.geo.lat, b->u.geo.lat) && double_same(a->u.geo.lng, b->u.geo.lng);
    case FSVAL_ARRAY:
        if (a->u.arr.n != b->u.arr.n)
            return false;
        for (size_t i = 0; i < a->u.arr.n; i++)
            if (!fsval_equal(&a->u.arr.items[i], &b->u.arr.items[i]))
                return false;
        return true;
    case FSVAL_MAP:
        if (a->u.map.n != b->u.map.n)
            return false;
        for (size_t i = 0; i < a->u.map.n; i++) { /* both sorted by name */
            const struct fsval_field *fa = &a->u.map.fields[i], *fb = &b->u.map.fields[i];
            if (!bytes_same(fa->name, fa->name_len, fb->name, fb->name_len) ||
                !fsval_equal(&fa->v, &fb->v))
                return false;
        }
        return true;
    }
    return false;
}

/* FNV-1a over a canonical byte stream (integers little-endian), finished with the splitmix64
 * mixer so that nearby values spread. Changing any of this changes stored hashes. */
static void h_bytes(uint64_t *h, const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t x = *h;
    for (size_t i = 0; i < n; i++)
        x = (x ^ s[i]) * 0x100000001b3ull;
    *h = x;
}

static void h_u64(uint64_t *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    h_bytes(h, b, 8);
}

static void h_double(uint64_t *h, double d)
{
    uint64_t bits;
    if (isnan(d))
        bits = 0x7ff8000000000000ull;
    else
        memcpy(&bits, &d, sizeof(bits));
    h_u64(h, bits);
}

static void h_value(uint64_t *h, const fsval *v)
{
    h_u64(h, (uint64_t)v->type + 1);
    switch (v->type) {
    case FSVAL_NULL:
        break;
    case FSVAL_BOOL:
        h_u64(h, v->u.b);
        break;
    case FSVAL_INT:
        h_u64(h, (uint64_t)v->u.i);
        break;
    case FSVAL_DOUBLE:
        h_double(h, v->u.d);
        break;
    case FSVAL_TIMESTAMP:
        h_u64(h, (uint64_t)v->u.ts.seconds);
        h_u64(h, (uint64_t)v->u.ts.nanos);
        break;
    case FSVAL_STRING:
    case FSVAL_BYTES:
    case FSVAL_REFERENCE:
        h_u64(h, v->u.s.len);
        h_bytes(h, v->u.s.p, v->u.s.len);
        break;
    case FSVAL_GEO:
        h_double(h, v->u.geo.lat);
        h_double(h, v->u.geo.lng);
        break;
    case FSVAL_ARRAY:
        h_u64(h, v->u.arr.n);
        for (size_t i = 0; i < v->u.arr.n; i++)
            h_value(h, &v->u.arr.items[i]);
        break;
    case FSVAL_MAP:
        h_u64(h, v->u.map.n);
        for (size_t i = 0; i < v->u.map.n; i++) {
            h_u64(h, v->u.map.fields[i].name_len);
            h_bytes(h, v->u.map.fields[i].name, v->u.map.fields[i].name_len);
            h_value(h, &v->u.map.fields[i].v);
        }
        break;
    }
}

uint64_t fsval_hash64(const fsval *v)
{
    uint64_t h = 0xcbf29ce484222325ull;

    h_value(&h, v);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}
