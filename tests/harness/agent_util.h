/*
 * agent_util.h - helpers for end-to-end tests that run the real `firesync` binary against the
 * emulator and MariaDB: a per-test project and database, a config file, starting and killing
 * the agent, REST writes, and polling MySQL until a condition holds.
 */
#ifndef FIRESYNC_TEST_AGENT_UTIL_H
#define FIRESYNC_TEST_AGENT_UTIL_H

#include "tests/harness/svc.h"

#include <stdbool.h>
#include <sys/types.h>

struct agent_env {
    struct svc_env svc;
    char dir[512];      /* this test's scratch directory */
    char project[64];   /* Firestore project (isolates tests in one emulator) */
    char db[64];        /* MySQL database */
    char config[600];   /* config file path */
    char status[600];   /* status file path */
    pid_t pid;          /* running agent, 0 when none */
    int runs;           /* agent starts, for log names */
};

/* Sets up a fresh (emptied) emulator project and database named after `name`, and writes a
 * config with the given [[collections]] TOML (and extra [agent] lines), mode 0600 password
 * file included. */
int agent_env_init(struct agent_env *ae, const char *name, const char *collections_toml,
                   const char *agent_extra);
void agent_env_cleanup(struct agent_env *ae);

/* Replaces the first `from` in the config file with `to`; -1 when the file cannot be read or
 * written or holds no `from`. */
int agent_config_replace(struct agent_env *ae, const char *from, const char *to);

/* Starts `firesync run` (FIRESYNC_BIN) in the background; its stderr goes to dir/agent-N.log. */
int agent_start(struct agent_env *ae, const char *extra_arg1, const char *extra_arg2);
/* Sends sig and waits for the agent to exit (up to timeout_ms); returns its exit status, or -1
 * when it did not exit (it is then killed). */
int agent_stop(struct agent_env *ae, int sig, int timeout_ms);
/* Waits until the status file says `state` ("healthy", ...). */
bool agent_wait_state(struct agent_env *ae, const char *state, int timeout_ms);

/* REST: PATCH a document (fields JSON), DELETE it, or POST a :commit body. */
int fs_put(struct agent_env *ae, const char *coll, const char *id, const char *fields_json);
int fs_delete(struct agent_env *ae, const char *coll, const char *id);
int fs_commit(struct agent_env *ae, const char *writes_json);

/* SQL in the test database; scalar returns the first column of the first row ("" for NULL,
 * "<none>" when there is no row). */
int sql_exec(struct agent_env *ae, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sql_scalar(struct agent_env *ae, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Polls sql_scalar(fmt...) until it equals want (up to timeout_ms); returns true if it did. */
bool sql_wait(struct agent_env *ae, const char *want, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Rows changed in the test database's tables so far (MariaDB's TABLE_STATISTICS). */
long rows_changed(struct agent_env *ae, const char *table);

/* Runs the firesync binary with args (NULL-terminated), output into out (may be NULL);
 * returns its exit status. */
int run_firesync(struct agent_env *ae, char *out, size_t n, const char *arg, ...);

#endif
