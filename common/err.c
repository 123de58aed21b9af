/*
 * err.c - the error table behind err.h: names, default messages, the transient flag, and the
 * helpers that fill a caller's `fserr`. Owns no memory.
 */
#include "common/err.h"

#include <stdio.h>
#include <string.h>

struct entry {
    int code;
    const char *name;
    const char *msg;
    bool transient;
};

static const struct entry table[] = {
#define FSERR_ROW(name, msg, transient) {FS_E##name, "FS_E" #name, msg, transient},
    FSERR_MAP(FSERR_ROW)
#undef FSERR_ROW
};

#define NENTRIES (sizeof(table) / sizeof(table[0]))

static const struct entry *lookup(int code)
{
    if (code <= FS_EFIRST_ || code >= FS_ELAST_)
        return NULL;
    return &table[code - FS_EFIRST_ - 1];
}

int fserr_vset(fserr *e, int code, const char *fmt, va_list ap)
{
    if (!e)
        return code;
    e->code = code;
    if (fmt)
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    else
        snprintf(e->msg, sizeof(e->msg), "%s", fserr_str(code));
    return code;
}

int fserr_set(fserr *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fserr_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int fserr_prefix(fserr *e, const char *fmt, ...)
{
    char head[256], old[sizeof(e->msg)];
    va_list ap;

    if (!e)
        return FS_EINTERNAL;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof(old));
    size_t h = strlen(head);
    if (h > sizeof(e->msg) - 3)
        h = sizeof(e->msg) - 3;
    memcpy(e->msg, head, h);
    memcpy(e->msg + h, ": ", 2);
    size_t room = sizeof(e->msg) - h - 3, n = strnlen(old, sizeof(old));
    if (n > room)
        n = room;
    memcpy(e->msg + h + 2, old, n);
    e->msg[h + 2 + n] = '\0';
    return e->code;
}

void fserr_clear(fserr *e)
{
    if (e) {
        e->code = 0;
        e->msg[0] = '\0';
    }
}

const char *fserr_name(int code)
{
    const struct entry *en;

    if (code == FS_OK)
        return "FS_OK";
    en = lookup(code);
    return en ? en->name : "FS_E?";
}

const char *fserr_str(int code)
{
    const struct entry *en;

    if (code == FS_OK)
        return "success";
    en = lookup(code);
    return en ? en->msg : "unknown error code";
}

bool fserr_transient(int code)
{
    const struct entry *en = lookup(code);
    return en ? en->transient : false;
}

size_t fserr_count(void)
{
    return NENTRIES;
}

int fserr_at(size_t i)
{
    return i < NENTRIES ? table[i].code : FS_OK;
}
