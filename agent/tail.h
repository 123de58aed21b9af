/*
 * tail.h - `firesync tail`: prints the stream's document events as JSON lines (see tail.c).
 */
#ifndef FIRESYNC_TAIL_H
#define FIRESYNC_TAIL_H

#include "agent/config.h"
#include "common/err.h"

/* Listens to every configured collection (or only `only`, which need not be configured) until
 * SIGINT or SIGTERM, printing one JSON line per event on stdout. */
int tail_run(const struct cfg *cfg, const char *only, fserr *e);

#endif
