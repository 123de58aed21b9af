/*
 * log.h - firesync's logging: one line per event on stderr.
 *
 * Under systemd (JOURNAL_STREAM is set, or log_init() is told so) each line starts with the
 * syslog priority in angle brackets ("<3>" for errors), which journald turns into the entry's
 * priority; elsewhere lines carry a UTC timestamp and the level name. Lines never carry secrets:
 * besides callers' care, every line is scrubbed of "Bearer <token>" and of each string registered
 * with log_secret_add() (the MySQL password, access tokens), which become "[redacted]".
 *
 * Logging is process-global and thread-safe (one write(2) per line).
 */
#ifndef FIRESYNC_LOG_H
#define FIRESYNC_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERROR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

enum log_style {
    LOG_STYLE_AUTO,    /* journald prefixes when JOURNAL_STREAM is set, plain lines otherwise */
    LOG_STYLE_PLAIN,   /* "2026-11-23T12:00:00.123Z warn: message" */
    LOG_STYLE_JOURNAL, /* "<4>message" */
};

void log_init(enum log_style style, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; returns 0 or FS_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Registers a secret (copied) that must never appear in a log line; strings shorter than 4 bytes
 * are ignored (they would redact ordinary words). log_secret_clear() forgets them all. */
void log_secret_add(const char *secret);
/* Like log_secret_add(), for long-lived secrets (the MySQL password): never forgotten to make
 * room for newer ones, as rotating access tokens are. */
void log_secret_pin(const char *secret);
void log_secret_clear(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes the scrubbed form of `in` to `out` (size n, always NUL-terminated). Exposed for the
 * status file and error texts, which obey the same rule. */
void log_scrub(const char *in, char *out, unsigned long n);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
