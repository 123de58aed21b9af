/*
 * xalloc.h - allocation that cannot fail.
 *
 * Out of memory is not an error firesync recovers from: the allocator aborts with a message and
 * systemd restarts the agent, which resumes from its MySQL checkpoint (Redis's zmalloc and git's
 * wrapper.c make the same choice). Everything returned is owned by the caller and freed with
 * free(). Memory filled from the network is capped elsewhere (see buf.h), never here.
 */
#ifndef FIRESYNC_XALLOC_H
#define FIRESYNC_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Allocating sprintf; the result is owned by the caller. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
