/*
 * status.h - the agent's health, as a file others can read (prefix status_).
 *
 * The running agent fills a `struct status` and calls status_write() on every state change and
 * at least every agent.status_interval: JSON written atomically (temporary file, fsync, rename),
 * so a reader never sees half a file, plus an optional Prometheus text file with the same
 * counters for node_exporter's textfile collector. `firesync status` reads the file back,
 * prints it for people (or verbatim with --json) and exits with the monitoring-plugin codes:
 * 0 healthy, 1 warning, 2 unhealthy, 3 unknown (no file, unreadable, or stale: its agent is gone
 * or it stopped being refreshed).
 *
 * Health rules (design.md): healthy when the stream is consistent and an event or heartbeat
 * came within the silence window; warning when the stream is up but silent past the window, a
 * resync is overdue, dead letters grew recently, MySQL is retrying, or the agent is still
 * starting; unhealthy when the stream has been down past the grace time or MySQL is unreachable
 * (the sink failed). status_evaluate() is that rule, pure, so it is tested alone.
 *
 * Latency: per collection, the time from an event's receipt to the COMMIT of its row, for the
 * last batch (lag_ms) and as quantiles over the last minute (lag_p50_ms, lag_p95_ms, lag_p99_ms,
 * lag_max_ms, lag_events in the JSON; a Prometheus summary in the metrics file).
 *
 * Ownership: struct status is plain data owned by its filler; strings are fixed arrays.
 */
#ifndef FIRESYNC_STATUS_H
#define FIRESYNC_STATUS_H

#include "common/buf.h"
#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum status_health { STATUS_HEALTHY = 0, STATUS_WARNING = 1, STATUS_UNHEALTHY = 2, STATUS_UNKNOWN = 3 };

struct status_counters {
    uint64_t created, updated, deleted, unchanged, dead_letters, simulated;
};

struct status_resync {
    char state[16];      /* "idle", "running", "failed" */
    char phase[32];      /* while running: "reading", "sweeping" */
    int64_t started_us, finished_us;
    char result[256];    /* "ok", or what went wrong */
    uint64_t docs_read, differences, fixed, soft_deleted, reads_billed;
    int64_t duration_ms;
};

struct status_collection {
    char path[256];
    char table[72];
    bool current;              /* the target reached a consistent point in this session */
    int64_t last_event_us;     /* last document event received */
    int64_t last_consistent_us; /* wall clock of the last consistent point */
    int64_t read_time_us;      /* its read time */
    int64_t lag_ms;            /* event received -> row committed, worst of the last batch */
    /* the same per event over the last minute (agent/lag.h: 50 to 60 s), quantiles within
     * 6.25 % and never under the true value; all 0 when no event committed in the window */
    uint64_t lag_events;
    int64_t lag_p50_us, lag_p95_us, lag_p99_us, lag_max_us;
    uint64_t lag_total_events; /* since start, for the metrics summary's _count and _sum */
    double lag_total_s;
    uint64_t tracked, live;
    struct status_counters counters;
    struct status_resync resync;
};

struct status {
    /* inputs to the health rule */
    int64_t now_us;
    int64_t started_us;
    bool stream_up;          /* a WebChannel session is open */
    int64_t stream_since_us; /* when the stream last went up or down */
    int64_t last_heartbeat_us; /* any array from the server (noops included) */
    bool all_current;        /* every target reached a consistent point */
    bool mysql_ok;
    bool mysql_retrying;
    bool mysql_failed;
    char mysql_reason[256];
    bool resync_overdue;
    bool dead_letters_growing;
    /* configuration of the rule */
    int64_t silence_window_ms, stream_grace_ms;
    /* outputs of status_evaluate() */
    enum status_health health;
    char reason[256];
    int64_t health_since_us; /* kept by the caller across evaluations */
    /* description */
    int pid;
    char version[32];
    size_t ncollections;
    struct status_collection *collections; /* borrowed */
    struct status_counters totals;
    uint64_t queue_depth;
    uint64_t index_bytes;
    uint64_t reconnects;
};

/* Applies the health rule to st's inputs, setting health and reason. */
void status_evaluate(struct status *st);

/* Writes st as JSON to path atomically (mode 0644). */
int status_write(const char *path, const struct status *st, fserr *e);
/* Writes the counters in the Prometheus text format to path atomically. */
int status_write_metrics(const char *path, const struct status *st, fserr *e);
/* The JSON text of st (for the control socket's live status). */
int status_to_json(const struct status *st, buf *out);

/* Reads a status file. On success *json is the file's text (owned by the caller) and *health
 * the state a reader should report: the file's own, or STATUS_UNKNOWN with why when the
 * file's agent is gone or the file was not refreshed for stale_ms. */
int status_read(const char *path, int64_t now_us, int64_t stale_ms, char **json,
                enum status_health *health, char *why, size_t whylen, fserr *e);
/* Prints a status JSON for people. */
int status_print(FILE *out, const char *json, int64_t now_us, enum status_health health,
                 const char *why);

const char *status_health_name(enum status_health h);

#endif
