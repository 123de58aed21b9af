/*
 * log.c - stderr logging with journald priorities and secret scrubbing (see log.h).
 *
 * Owns the table of registered secrets (copies, freed by log_secret_clear()). A mutex guards
 * the table; the level and style are set once at start and read without locking.
 */
#include "common/log.h"

#include "common/err.h"
#include "common/xalloc.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_SECRETS 16
#define LINE_MAX_BYTES 4096

static enum log_style style = LOG_STYLE_PLAIN;
static enum log_level level = LOG_LVL_INFO;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];
static bool pinned[MAX_SECRETS];
static int nsecrets;

void log_init(enum log_style s, enum log_level l)
{
    if (s == LOG_STYLE_AUTO) {
        const char *js = getenv("JOURNAL_STREAM");
        s = (js && *js) ? LOG_STYLE_JOURNAL : LOG_STYLE_PLAIN;
    }
    style = s;
    level = l;
}

void log_set_level(enum log_level l)
{
    level = l;
}

enum log_level log_get_level(void)
{
    return level;
}

static const struct {
    const char *name;
    enum log_level level;
} names[] = {
    {"error", LOG_LVL_ERROR},
    {"warn", LOG_LVL_WARN},
    {"info", LOG_LVL_INFO},
    {"debug", LOG_LVL_DEBUG},
};

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return FS_EINVAL;
}

const char *log_level_name(enum log_level l)
{
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].level == l)
            return names[i].name;
    return "?";
}

static void add_secret(const char *secret, bool pin)
{
    int victim = -1;

    if (!secret || strlen(secret) < 4)
        return;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nsecrets; i++) {
        if (strcmp(secrets[i], secret) == 0) {
            pinned[i] = pinned[i] || pin;
            pthread_mutex_unlock(&lock);
            return;
        }
    }
    if (nsecrets == MAX_SECRETS) { /* forget the oldest rotating one: tokens rotate */
        for (int i = 0; i < nsecrets && victim < 0; i++)
            if (!pinned[i])
                victim = i;
        if (victim < 0) { /* all pinned: nothing sensible to drop */
            pthread_mutex_unlock(&lock);
            return;
        }
        free(secrets[victim]);
        memmove(secrets + victim, secrets + victim + 1,
                sizeof(secrets[0]) * (size_t)(MAX_SECRETS - 1 - victim));
        memmove(pinned + victim, pinned + victim + 1,
                sizeof(pinned[0]) * (size_t)(MAX_SECRETS - 1 - victim));
        nsecrets--;
    }
    secrets[nsecrets] = xstrdup(secret);
    pinned[nsecrets++] = pin;
    pthread_mutex_unlock(&lock);
}

void log_secret_add(const char *secret)
{
    add_secret(secret, false);
}

void log_secret_pin(const char *secret)
{
    add_secret(secret, true);
}

void log_secret_clear(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < nsecrets; i++)
        free(secrets[i]);
    nsecrets = 0;
    pthread_mutex_unlock(&lock);
}

/* Length of the secret that starts at s, or 0. "Bearer X" hides X up to the next space or quote. */
static size_t secret_at(const char *s, size_t *keep)
{
    *keep = 0;
    if (strncasecmp(s, "bearer ", 7) == 0 && s[7] && s[7] != ' ') {
        size_t n = 7;
        while (s[n] && s[n] != ' ' && s[n] != '"' && s[n] != '\'' && s[n] != '\r' &&
               s[n] != '\n' && s[n] != ',')
            n++;
        *keep = 7;
        return n;
    }
    for (int i = 0; i < nsecrets; i++) {
        size_t len = strlen(secrets[i]);
        if (strncmp(s, secrets[i], len) == 0)
            return len;
    }
    return 0;
}

void log_scrub(const char *in, char *out, unsigned long n)
{
    static const char red[] = "[redacted]";
    size_t o = 0;

    if (n == 0)
        return;
    pthread_mutex_lock(&lock);
    while (*in && o + 1 < n) {
        size_t keep, len = secret_at(in, &keep);
        if (len) {
            for (size_t k = 0; k < keep && o + 1 < n; k++)
                out[o++] = in[k];
            for (size_t k = 0; red[k] && o + 1 < n; k++)
                out[o++] = red[k];
            in += len;
            continue;
        }
        out[o++] = *in++;
    }
    out[o] = '\0';
    pthread_mutex_unlock(&lock);
}

void log_msg(enum log_level l, const char *fmt, ...)
{
    char raw[LINE_MAX_BYTES], clean[LINE_MAX_BYTES], line[LINE_MAX_BYTES + 64];
    va_list ap;
    int n;

    if (l > level)
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    log_scrub(raw, clean, sizeof(clean));
    /* one event, one line: fold embedded newlines */
    for (char *c = clean; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
    if (style == LOG_STYLE_JOURNAL) {
        n = snprintf(line, sizeof(line), "<%d>%s\n", (int)l, clean);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log_level_name(l), clean);
    }
    if (n > (int)sizeof(line) - 1)
        n = (int)sizeof(line) - 1;
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n);
        (void)w;
    }
}
