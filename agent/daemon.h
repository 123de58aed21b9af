/*
 * daemon.h - `firesync run`: the agent itself (prefix agent_).
 */
#ifndef FIRESYNC_DAEMON_H
#define FIRESYNC_DAEMON_H

#include "common/err.h"

struct agent_options {
    const char *config_path;
    const char *simulate_file; /* --simulate-change FILE: changes fed through the agent at start */
};

/* Runs the agent until SIGTERM or SIGINT (exit status 0) or a fatal error (non-zero, e says
 * why). Returns the process exit status. */
int agent_run(const struct agent_options *opt, fserr *e);

#endif
