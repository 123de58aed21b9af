/*
 * convert.c - Firestore value -> MySQL column cell, exact or refused (see convert.h).
 *
 * Each SQL type has one function that knows which Firestore types it accepts and how to write
 * them canonically (DECIMAL with exactly `scale` fraction digits, DATETIME as
 * 'YYYY-MM-DD HH:MM:SS.ffffff' UTC, DOUBLE as the shortest text that reads back to the same
 * double). Owns nothing beyond the cells it fills for the caller.
 */
#include "diff/convert.h"

#include "common/xalloc.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TEXT_MAX_BYTES 65535

static int set_cell(struct sink_cell *out, enum sink_cell_kind k, const char *p, size_t n)
{
    out->kind = k;
    out->len = n;
    out->p = k == SINK_CELL_NULL ? NULL : xstrndup(p ? p : "", n);
    return 0;
}

void diff_cell_release(struct sink_cell *c)
{
    free(c->p);
    c->p = NULL;
    c->len = 0;
    c->kind = SINK_CELL_NULL;
}

uint64_t diff_cell_hash(const struct sink_cell *c)
{
    /* FNV-1a over the kind and the bytes, then a final avalanche (splitmix64's). */
    uint64_t h = 0xcbf29ce484222325ULL;
    h = (h ^ (uint64_t)c->kind) * 0x100000001b3ULL;
    for (size_t i = 0; i < c->len; i++)
        h = (h ^ (unsigned char)c->p[i]) * 0x100000001b3ULL;
    h = (h ^ (uint64_t)c->len) * 0x100000001b3ULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

int64_t diff_time_us(struct fs_time t)
{
    return t.seconds * 1000000 + t.nanos / 1000;
}

static int refuse(fserr *e, int code, const char *path, const fsval *v,
                  const struct cfg_column *col, const char *why)
{
    char ty[32];
    cfg_coltype_format(col, ty, sizeof(ty));
    return fserr_set(e, code, "fields.%s: %s does not fit %s column '%s'%s%s", path,
                     fsval_type_name(v->type), ty, col->name, why ? ": " : "", why ? why : "");
}

static size_t utf8_chars(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)p[i] & 0xC0) != 0x80)
            c++;
    return c;
}

static int conv_text(const struct cfg_column *col, const char *path, const fsval *v,
                     struct sink_cell *out, fserr *e)
{
    char why[96];

    if (v->type != FSVAL_STRING && v->type != FSVAL_REFERENCE)
        return refuse(e, FS_ETYPE, path, v, col, NULL);
    if (col->type == CFG_COL_VARCHAR && utf8_chars(v->u.s.p, v->u.s.len) > (size_t)col->len) {
        snprintf(why, sizeof(why), "%zu characters is longer than %d",
                 utf8_chars(v->u.s.p, v->u.s.len), col->len);
        return refuse(e, FS_ERANGE, path, v, col, why);
    }
    if (col->type == CFG_COL_TEXT && v->u.s.len > TEXT_MAX_BYTES) {
        snprintf(why, sizeof(why), "%zu bytes is longer than %d", v->u.s.len, TEXT_MAX_BYTES);
        return refuse(e, FS_ERANGE, path, v, col, why);
    }
    return set_cell(out, SINK_CELL_STR, v->u.s.p, v->u.s.len);
}

static int conv_int(const struct cfg_column *col, const char *path, const fsval *v,
                    struct sink_cell *out, fserr *e)
{
    char num[64]; /* "-9223372036854775808 is out of range" needs 37 */

    if (v->type != FSVAL_INT)
        return refuse(e, FS_ETYPE, path, v, col, NULL);
    if (col->type == CFG_COL_INT && (v->u.i < INT32_MIN || v->u.i > INT32_MAX)) {
        snprintf(num, sizeof(num), "%" PRId64 " is out of range", v->u.i);
        return refuse(e, FS_ERANGE, path, v, col, num);
    }
    snprintf(num, sizeof(num), "%" PRId64, v->u.i);
    return set_cell(out, SINK_CELL_NUM, num, strlen(num));
}

/* Significant digits of a "%g" text: its mantissa's digits without leading and trailing zeros
 * (trailing zeros of the integer part included). */
static int sig_digits(const char *p)
{
    int first = -1, last = -1, k = 0;

    for (; *p && *p != 'e' && *p != 'E'; p++) {
        if (*p < '0' || *p > '9')
            continue;
        if (*p != '0') {
            if (first < 0)
                first = k;
            last = k;
        }
        k++;
    }
    return first < 0 ? 1 : last - first + 1;
}

/* The shortest "%.Ng" text that reads back as exactly d. Any decimal of at most DBL_DIG (15)
 * significant digits reads back as itself from the nearest double, so for a normal double that
 * "%.15g" reads back as, the shortest N is the count of "%.15g"'s significant digits: one
 * round instead of up to 17. Subnormals (fewer bits, more texts per double) and the rest take
 * the rounds from N = 1 (or from 16). Same text as the rounds from 1 in every case. */
static void shortest(double d, char *out, size_t n)
{
    int prec = 1;

    if (d == 0 || fabs(d) >= DBL_MIN) {
        snprintf(out, n, "%.15g", d);
        if (strtod(out, NULL) == d) {
            int k = sig_digits(out);
            if (k == 15)
                return;
            snprintf(out, n, "%.*g", k, d);
            if (strtod(out, NULL) == d)
                return;
        } else {
            prec = 16;
        }
    }
    for (; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            return;
    }
}

/* A text of d for DECIMAL, where only the value counts (decimal_split() canonicalises it):
 * "%.15g" when it reads back as d for a normal double (then it has the value of shortest()'s
 * text, see there), else shortest()'s. */
static void decimal_text(double d, char *out, size_t n)
{
    if (d == 0 || fabs(d) >= DBL_MIN) {
        snprintf(out, n, "%.15g", d);
        if (strtod(out, NULL) == d)
            return;
    }
    shortest(d, out, n);
}

static int conv_double(const struct cfg_column *col, const char *path, const fsval *v,
                       struct sink_cell *out, fserr *e)
{
    char num[40];

    if (v->type == FSVAL_INT) {
        if (v->u.i > (INT64_C(1) << 53) || v->u.i < -(INT64_C(1) << 53))
            return refuse(e, FS_ERANGE, path, v, col, "a DOUBLE would round it");
        snprintf(num, sizeof(num), "%" PRId64, v->u.i);
        return set_cell(out, SINK_CELL_NUM, num, strlen(num));
    }
    if (v->type != FSVAL_DOUBLE)
        return refuse(e, FS_ETYPE, path, v, col, NULL);
    if (!isfinite(v->u.d))
        return refuse(e, FS_ERANGE, path, v, col,
                      isnan(v->u.d) ? "MySQL cannot store NaN" : "MySQL cannot store infinity");
    shortest(v->u.d, num, sizeof(num));
    return set_cell(out, SINK_CELL_NUM, num, strlen(num));
}

/* Splits a decimal text ([-]digits[.digits][e[+-]digits]) into sign, integer digits and fraction
 * digits without leading/trailing zeros. Returns -1 when s is not such a text. */
static int decimal_split(const char *s, int *neg, char *ip, size_t ipn, char *fp, size_t fpn)
{
    char digits[1200];
    size_t nd = 0;
    long point = -1, ex = 0;
    const char *p = s;

    *neg = 0;
    if (*p == '-' || *p == '+')
        *neg = *p++ == '-';
    if (!(*p >= '0' && *p <= '9'))
        return -1;
    for (; (*p >= '0' && *p <= '9') || *p == '.'; p++) {
        if (*p == '.') {
            if (point >= 0)
                return -1;
            point = (long)nd;
            if (!(p[1] >= '0' && p[1] <= '9'))
                return -1;
            continue;
        }
        if (nd + 1 >= sizeof(digits))
            return -1;
        digits[nd++] = *p;
    }
    if (point < 0)
        point = (long)nd;
    if (*p == 'e' || *p == 'E') {
        char *end;
        ex = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || ex > 400 || ex < -400)
            return -1;
        p = end;
    }
    if (*p)
        return -1;
    point += ex;
    /* integer part: digits[0..point), padded with zeros past nd; fraction: the rest */
    size_t o = 0, f = 0;
    for (long i = 0; i < point; i++) {
        char c = i < (long)nd ? digits[i] : '0';
        if (o == 0 && c == '0')
            continue;
        if (o + 1 >= ipn)
            return -1;
        ip[o++] = c;
    }
    for (long i = point; i < (long)nd; i++) {
        char c = i < 0 ? '0' : digits[i];
        if (f + 1 >= fpn)
            return -1;
        fp[f++] = c;
    }
    while (f > 0 && fp[f - 1] == '0')
        f--;
    ip[o] = '\0';
    fp[f] = '\0';
    if (o == 0 && f == 0)
        *neg = 0; /* -0 is 0 in DECIMAL */
    return 0;
}

static int conv_decimal(const struct cfg_column *col, const char *path, const fsval *v,
                        struct sink_cell *out, fserr *e)
{
    char text[64], ip[1200], fp[1200], why[128];
    const char *src = text;
    int neg;
    buf b;

    if (v->type == FSVAL_INT)
        snprintf(text, sizeof(text), "%" PRId64, v->u.i);
    else if (v->type == FSVAL_DOUBLE && isfinite(v->u.d))
        decimal_text(v->u.d, text, sizeof(text));
    else if (v->type == FSVAL_DOUBLE)
        return refuse(e, FS_ERANGE, path, v, col, "DECIMAL cannot hold NaN or infinity");
    else if (v->type == FSVAL_STRING && v->u.s.len < 1100 && strlen(v->u.s.p) == v->u.s.len)
        src = v->u.s.p;
    else
        return refuse(e, FS_ETYPE, path, v, col, NULL);
    if (decimal_split(src, &neg, ip, sizeof(ip), fp, sizeof(fp)) != 0 ||
        (v->type == FSVAL_STRING && strpbrk(src, "eE+")))
        return refuse(e, FS_ETYPE, path, v, col, "not a decimal number");
    if (v->type == FSVAL_DOUBLE && (strlen(fp) > (size_t)col->scale ||
                                    strlen(ip) > (size_t)(col->len - col->scale)))
        shortest(v->u.d, text, sizeof(text)); /* the refusal quotes the DOUBLE's own text */
    if (strlen(fp) > (size_t)col->scale) {
        snprintf(why, sizeof(why), "%s would be rounded to %d decimal places", src, col->scale);
        return refuse(e, FS_ERANGE, path, v, col, why);
    }
    if (strlen(ip) > (size_t)(col->len - col->scale)) {
        snprintf(why, sizeof(why), "%s has more than %d integer digits", src,
                 col->len - col->scale);
        return refuse(e, FS_ERANGE, path, v, col, why);
    }
    buf_init(&b, 0);
    buf_printf(&b, "%s%s", neg ? "-" : "", *ip ? ip : "0");
    if (col->scale > 0) {
        buf_printf(&b, ".%s", fp);
        for (size_t i = strlen(fp); i < (size_t)col->scale; i++)
            buf_addc(&b, '0');
    }
    out->kind = SINK_CELL_NUM;
    out->len = b.len;
    out->p = buf_take(&b);
    return 0;
}

static int conv_bool(const struct cfg_column *col, const char *path, const fsval *v,
                     struct sink_cell *out, fserr *e)
{
    if (v->type != FSVAL_BOOL)
        return refuse(e, FS_ETYPE, path, v, col, NULL);
    return set_cell(out, SINK_CELL_NUM, v->u.b ? "1" : "0", 1);
}

/* Civil date of a day count since 1970-01-01 (proleptic Gregorian, any year). */
static void civil(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int conv_datetime(const struct cfg_column *col, const char *path, const fsval *v,
                         struct sink_cell *out, fserr *e)
{
    int64_t secs, days, y;
    int m, d, sod;
    char text[40];

    if (col->type == CFG_COL_DATE && v->type == FSVAL_STRING) {
        int yy, mm, dd, n = 0;
        if (v->u.s.len == 10 && sscanf(v->u.s.p, "%4d-%2d-%2d%n", &yy, &mm, &dd, &n) == 3 &&
            n == 10 && yy >= 1000 && mm >= 1 && mm <= 12 && dd >= 1 &&
            dd <= (mm == 2 ? ((yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0 ? 29 : 28)
                           : (mm == 4 || mm == 6 || mm == 9 || mm == 11) ? 30 : 31))
            return set_cell(out, SINK_CELL_STR, v->u.s.p, 10);
        return refuse(e, FS_ETYPE, path, v, col, "not a date written YYYY-MM-DD");
    }
    if (v->type != FSVAL_TIMESTAMP)
        return refuse(e, FS_ETYPE, path, v, col, NULL);
    secs = v->u.ts.seconds;
    days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    sod = (int)(secs - days * 86400);
    civil(days, &y, &m, &d);
    if (y < 1000)
        return refuse(e, FS_ERANGE, path, v, col, "MySQL dates start at year 1000");
    if (col->type == CFG_COL_DATE) {
        if (sod != 0 || v->u.ts.nanos != 0)
            return refuse(e, FS_ERANGE, path, v, col,
                          "the timestamp is not at midnight UTC, a DATE would drop its time");
        snprintf(text, sizeof(text), "%04d-%02d-%02d", (int)y, m, d);
    } else {
        if (v->u.ts.nanos % 1000 != 0)
            return refuse(e, FS_ERANGE, path, v, col, "DATETIME(6) would drop its nanoseconds");
        if (y > 9999 || v->u.ts.nanos < 0 || v->u.ts.nanos >= 1000000000) {
            snprintf(text, sizeof(text), "%04d-%02d-%02d %02d:%02d:%02d.%06d", (int)y, m, d,
                     sod / 3600, sod / 60 % 60, sod % 60, v->u.ts.nanos / 1000);
        } else { /* the same text without snprintf */
            const int f[7] = {(int)y, m, d, sod / 3600, sod / 60 % 60, sod % 60,
                              v->u.ts.nanos / 1000};
            static const int width[7] = {4, 2, 2, 2, 2, 2, 6};
            static const char sep[7] = "-- ::.";
            char *t = text;
            for (int i = 0; i < 7; i++) {
                for (int k = width[i] - 1, x = f[i]; k >= 0; k--, x /= 10)
                    t[k] = (char)('0' + x % 10);
                t += width[i];
                if (i < 6)
                    *t++ = sep[i];
            }
            *t = '\0';
        }
    }
    return set_cell(out, SINK_CELL_STR, text, strlen(text));
}

static int conv_json(const struct cfg_column *col, const char *path, const fsval *v,
                     struct sink_cell *out, fserr *e)
{
    buf b;

    buf_init(&b, 0);
    if (fsval_to_json(v, &b) != 0) {
        buf_release(&b);
        return refuse(e, FS_ERANGE, path, v, col, "too large");
    }
    out->kind = SINK_CELL_STR;
    out->len = b.len;
    out->p = buf_take(&b);
    return 0;
}

static int conv_binary(const struct cfg_column *col, const char *path, const fsval *v,
                       struct sink_cell *out, fserr *e)
{
    char why[64];

    if (v->type != FSVAL_BYTES)
        return refuse(e, FS_ETYPE, path, v, col, NULL);
    if (v->u.s.len > (size_t)col->len) {
        snprintf(why, sizeof(why), "%zu bytes is longer than %d", v->u.s.len, col->len);
        return refuse(e, FS_ERANGE, path, v, col, why);
    }
    return set_cell(out, SINK_CELL_BIN, v->u.s.p, v->u.s.len);
}

int diff_convert(const struct cfg_column *col, const char *path, const fsval *v,
                 struct sink_cell *out, fserr *e)
{
    out->kind = SINK_CELL_NULL;
    out->p = NULL;
    out->len = 0;
    if (!v || v->type == FSVAL_NULL)
        return 0;
    switch (col->type) {
    case CFG_COL_VARCHAR:
    case CFG_COL_TEXT:
        return conv_text(col, path, v, out, e);
    case CFG_COL_BIGINT:
    case CFG_COL_INT:
        return conv_int(col, path, v, out, e);
    case CFG_COL_DOUBLE:
        return conv_double(col, path, v, out, e);
    case CFG_COL_DECIMAL:
        return conv_decimal(col, path, v, out, e);
    case CFG_COL_BOOLEAN:
        return conv_bool(col, path, v, out, e);
    case CFG_COL_DATETIME:
    case CFG_COL_DATE:
        return conv_datetime(col, path, v, out, e);
    case CFG_COL_JSON:
        return conv_json(col, path, v, out, e);
    case CFG_COL_VARBINARY:
        return conv_binary(col, path, v, out, e);
    }
    return fserr_set(e, FS_EINTERNAL, "column '%s': unknown type", col->name);
}

/* ---- the extra column -------------------------------------------------------------------- */

static void json_name(buf *b, const char *name, size_t len)
{
    fsval s = {.type = FSVAL_STRING};
    s.u.s.p = (char *)name;
    s.u.s.len = len;
    fsval_to_json(&s, b);
}

/* Which mapped paths name field f at segment depth `depth`: true when one names it whole;
 * the paths that go deeper into it are put in sub (*ns of them). */
static bool match_paths(const struct fsval_field *f, const struct fsval_path *const *paths,
                        size_t np, size_t depth, const struct fsval_path **sub, size_t *ns)
{
    bool whole = false;

    for (size_t k = 0; k < np; k++) {
        const struct fsval_pathseg *s = &paths[k]->segs[depth];
        if (s->len == f->name_len && memcmp(s->p, f->name, s->len) == 0) {
            if (paths[k]->n == depth + 1)
                whole = true;
            else
                sub[(*ns)++] = paths[k];
        }
    }
    return whole;
}

/* Writes map m without the fields named by the paths in `paths` at segment depth `depth`.
 * Returns the number of fields written. */
static size_t write_without(buf *b, const fsval *m, const struct fsval_path *const *paths,
                            size_t np, size_t depth)
{
    size_t written = 0;
    const struct fsval_path **sub = xcalloc(np ? np : 1, sizeof(*sub));

    buf_addc(b, '{');
    for (size_t i = 0; i < m->u.map.n; i++) {
        const struct fsval_field *f = &m->u.map.fields[i];
        size_t ns = 0;
        bool whole = match_paths(f, paths, np, depth, sub, &ns);
        if (whole)
            continue;
        size_t mark = b->len;
        if (written)
            buf_addc(b, ',');
        json_name(b, f->name, f->name_len);
        buf_addc(b, ':');
        if (ns && f->v.type == FSVAL_MAP) {
            if (write_without(b, &f->v, sub, ns, depth + 1) == 0) {
                b->len = mark; /* emptied by the mapping: drop it */
                b->p[b->len] = '\0';
                continue;
            }
        } else {
            fsval_to_json(&f->v, b);
        }
        written++;
    }
    buf_addc(b, '}');
    free(sub);
    return written;
}

/* True when write_without() would write no field of m: each is named whole by a path, or is a
 * map whose fields all are, at any depth. Allocates nothing for up to 16 paths. */
static bool all_mapped(const fsval *m, const struct fsval_path *const *paths, size_t np,
                       size_t depth)
{
    const struct fsval_path *stack[16] = {0};
    const struct fsval_path **sub = np <= 16 ? stack : xcalloc(np, sizeof(*sub));
    bool all = true;

    for (size_t i = 0; i < m->u.map.n && all; i++) {
        const struct fsval_field *f = &m->u.map.fields[i];
        size_t ns = 0;
        bool whole = match_paths(f, paths, np, depth, sub, &ns);
        if (!whole)
            all = ns && f->v.type == FSVAL_MAP && all_mapped(&f->v, sub, ns, depth + 1);
    }
    if (sub != stack)
        free(sub);
    return all;
}

int diff_extra(const fsval *fields, const struct fsval_path *mapped, size_t nmapped,
               struct sink_cell *out, fserr *e)
{
    const struct fsval_path *stack[16] = {0};
    const struct fsval_path **paths;
    buf b;
    size_t n;

    (void)e;
    if (nmapped <= 16) {
        for (size_t i = 0; i < nmapped; i++)
            stack[i] = &mapped[i];
        if (all_mapped(fields, stack, nmapped, 0))
            return set_cell(out, SINK_CELL_NULL, NULL, 0);
    }
    paths = xcalloc(nmapped ? nmapped : 1, sizeof(*paths));
    for (size_t i = 0; i < nmapped; i++)
        paths[i] = &mapped[i];
    buf_init(&b, 0);
    n = write_without(&b, fields, paths, nmapped, 0);
    free(paths);
    if (n == 0) {
        buf_release(&b);
        return set_cell(out, SINK_CELL_NULL, NULL, 0);
    }
    out->kind = SINK_CELL_STR;
    out->len = b.len;
    out->p = buf_take(&b);
    return 0;
}
