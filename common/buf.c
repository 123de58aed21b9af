/*
 * buf.c - capped growable buffer (see buf.h). The buffer owns `p` until buf_take().
 */
#include "common/buf.h"

#include "common/err.h"
#include "common/xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void buf_release(buf *b)
{
    free(b->p);
    buf_init(b, b->max);
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

static int reserve(buf *b, size_t n)
{
    size_t need, cap;

    if (n > (size_t)-1 / 2 - b->len)
        return FS_ETOOBIG;
    if (b->max && b->len + n > b->max)
        return FS_ETOOBIG;
    need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
    return 0;
}

int buf_add(buf *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int buf_adds(buf *b, const char *s)
{
    return buf_add(b, s, strlen(s));
}

int buf_addc(buf *b, char c)
{
    return buf_add(b, &c, 1);
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return FS_EINVAL;
    rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
    b->p[b->len] = '\0';
}

char *buf_take(buf *b)
{
    char *p = b->p ? b->p : xstrdup("");
    buf_init(b, b->max);
    return p;
}

const char *buf_str(const buf *b)
{
    return b->p ? b->p : "";
}
