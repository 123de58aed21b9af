/*
 * internal.h - what the agent's files (daemon.c, control.c, simulate.c) share: the running
 * agent's state. Not for other modules.
 */
#ifndef FIRESYNC_AGENT_INTERNAL_H
#define FIRESYNC_AGENT_INTERNAL_H

#include "agent/config.h"
#include "agent/lag.h"
#include "agent/status.h"
#include "agent/version.h"
#include "diff/diff.h"
#include "mysql/sink.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct agent;
struct control;

struct agent_target {
    struct agent *a;
    int index;        /* = the collection's index = the Listen target's index */
    uv_timer_t readd; /* listen again after the server removed the target */
    int64_t retry_ms;
    char *token;      /* checkpoint read at start (owned) */
    int64_t read_us;
    uint64_t cycle_docs; /* documents received since the last consistent point (debug log) */
};

struct agent {
    struct cfg *cfg; /* owned; the sink borrows it */
    char *config_path;
    uv_loop_t loop;
    uv_timer_t tick;
    uv_async_t sink_async;
    uv_signal_t sigterm, sigint, sighup;
    struct stream *stream;
    struct diff *diff;
    struct sink *sink;
    struct control *control;
    struct resync *resync;           /* the full resync (agent/resync.c) */
    struct lag_tracker *lag;         /* received -> committed per event (agent/lag.h) */
    struct status_collection *colls; /* one per collection */
    struct agent_target *targets;    /* one per collection */
    bool paused;   /* the stream is paused until the sink catches up */
    bool stopping;
    bool emitted;  /* set by emit(): did the last diff call produce an event */
    bool status_error_logged;
    int64_t started_us, health_since_us, last_dead_letter_us;
    enum status_health health;
    int exit_code;
    char fatal[256]; /* why the agent could not start ("" while all is well) */
};

int64_t agent_now_us(void);
void agent_fill_status(struct agent *a, struct status *st);
void agent_write_status(struct agent *a);
void agent_shutdown(struct agent *a);
void agent_reload(struct agent *a);

/* A made-up change through the real diff and sink (source "simulated"). type is "CREATE",
 * "UPDATE" or "DELETE"; data (plain JSON object, or NULL) is the whole new document. */
int agent_simulate(struct agent *a, const char *collection, const char *doc, const char *type,
                   const char *data, fserr *e);
/* Each line of path is {"collection":..., "doc":..., "type":..., "data":{...}}. */
int agent_simulate_file(struct agent *a, const char *path, fserr *e);

#endif
