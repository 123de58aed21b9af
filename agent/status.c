/*
 * status.c - health rule, status file and metrics file writing, and reading them back for
 * `firesync status` (see status.h). Owns nothing between calls; JSON is built with cJSON and
 * freed before returning.
 */
#include "agent/status.h"

#include "agent/lag.h"
#include "common/xalloc.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *names[] = {"healthy", "warning", "unhealthy", "unknown"};

const char *status_health_name(enum status_health h)
{
    return (unsigned)h < 4 ? names[h] : "unknown";
}

static void fmt_ago(int64_t us, char *out, size_t n)
{
    int64_t s = us / 1000000;
    if (s < 120)
        snprintf(out, n, "%llds", (long long)s);
    else if (s < 7200)
        snprintf(out, n, "%lldm", (long long)(s / 60));
    else
        snprintf(out, n, "%lldh%02lldm", (long long)(s / 3600), (long long)(s / 60 % 60));
}

static void set(struct status *st, enum status_health h, const char *fmt, const char *detail)
{
    st->health = h;
    snprintf(st->reason, sizeof(st->reason), fmt, detail);
}

void status_evaluate(struct status *st)
{
    char ago[32];
    int64_t down_for = st->now_us - st->stream_since_us;
    int64_t silent_for = st->now_us - st->last_heartbeat_us;

    if (st->mysql_failed) {
        set(st, STATUS_UNHEALTHY, "MySQL unusable: %s", st->mysql_reason);
        return;
    }
    if (!st->stream_up && down_for > st->stream_grace_ms * 1000) {
        fmt_ago(down_for, ago, sizeof(ago));
        set(st, STATUS_UNHEALTHY, "the Firestore stream has been down for %s", ago);
        return;
    }
    if (!st->mysql_ok && !st->mysql_retrying && st->now_us - st->started_us > st->stream_grace_ms * 1000) {
        set(st, STATUS_UNHEALTHY, "MySQL unreachable: %s",
            st->mysql_reason[0] ? st->mysql_reason : "no connection yet");
        return;
    }
    if (st->mysql_retrying) {
        set(st, STATUS_WARNING, "MySQL is retrying: %s", st->mysql_reason);
        return;
    }
    if (!st->stream_up) {
        fmt_ago(down_for, ago, sizeof(ago));
        set(st, STATUS_WARNING, "the Firestore stream is reconnecting (down for %s)", ago);
        return;
    }
    if (!st->all_current) {
        set(st, STATUS_WARNING, "%s", "starting: waiting for the first consistent snapshot");
        return;
    }
    if (silent_for > st->silence_window_ms * 1000) {
        fmt_ago(silent_for, ago, sizeof(ago));
        set(st, STATUS_WARNING, "the stream has been silent for %s", ago);
        return;
    }
    if (st->resync_overdue) {
        set(st, STATUS_WARNING, "%s", "a resync is overdue");
        return;
    }
    if (st->dead_letters_growing) {
        set(st, STATUS_WARNING, "%s", "dead letters are growing (see the dead-letter table)");
        return;
    }
    set(st, STATUS_HEALTHY, "%s", "stream consistent, MySQL in step");
}

/* ---- writing ----------------------------------------------------------------------------- */

static void add_time(cJSON *o, const char *key, int64_t us)
{
    char text[40];
    time_t s;
    struct tm tm;

    if (us <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    s = (time_t)(us / 1000000);
    gmtime_r(&s, &tm);
    snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
    cJSON_AddStringToObject(o, key, text);
}

static void add_counters(cJSON *o, const struct status_counters *c)
{
    cJSON_AddNumberToObject(o, "created", (double)c->created);
    cJSON_AddNumberToObject(o, "updated", (double)c->updated);
    cJSON_AddNumberToObject(o, "deleted", (double)c->deleted);
    cJSON_AddNumberToObject(o, "unchanged", (double)c->unchanged);
    cJSON_AddNumberToObject(o, "dead_letters", (double)c->dead_letters);
    cJSON_AddNumberToObject(o, "simulated", (double)c->simulated);
}

/* A latency in milliseconds to the microsecond, or null when the window had no event. */
static void add_lag(cJSON *o, const char *key, uint64_t events, int64_t us)
{
    if (!events)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, (double)us / 1000.0);
}

static cJSON *collection_json(const struct status_collection *c)
{
    cJSON *o = cJSON_CreateObject(), *r = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "path", c->path);
    cJSON_AddStringToObject(o, "table", c->table);
    cJSON_AddBoolToObject(o, "current", c->current);
    add_time(o, "last_event", c->last_event_us);
    add_time(o, "last_consistent", c->last_consistent_us);
    add_time(o, "read_time", c->read_time_us);
    cJSON_AddNumberToObject(o, "lag_ms", (double)c->lag_ms);
    add_lag(o, "lag_p50_ms", c->lag_events, c->lag_p50_us);
    add_lag(o, "lag_p95_ms", c->lag_events, c->lag_p95_us);
    add_lag(o, "lag_p99_ms", c->lag_events, c->lag_p99_us);
    add_lag(o, "lag_max_ms", c->lag_events, c->lag_max_us);
    cJSON_AddNumberToObject(o, "lag_events", (double)c->lag_events);
    cJSON_AddNumberToObject(o, "lag_window_s", (double)LAG_WINDOW_S);
    cJSON_AddNumberToObject(o, "tracked", (double)c->tracked);
    cJSON_AddNumberToObject(o, "live", (double)c->live);
    add_counters(cJSON_AddObjectToObject(o, "counters"), &c->counters);
    cJSON_AddStringToObject(r, "state", c->resync.state[0] ? c->resync.state : "idle");
    cJSON_AddStringToObject(r, "phase", c->resync.phase);
    add_time(r, "started_at", c->resync.started_us);
    add_time(r, "finished_at", c->resync.finished_us);
    cJSON_AddStringToObject(r, "result", c->resync.result);
    cJSON_AddNumberToObject(r, "docs_read", (double)c->resync.docs_read);
    cJSON_AddNumberToObject(r, "differences", (double)c->resync.differences);
    cJSON_AddNumberToObject(r, "fixed", (double)c->resync.fixed);
    cJSON_AddNumberToObject(r, "soft_deleted", (double)c->resync.soft_deleted);
    cJSON_AddNumberToObject(r, "reads_billed", (double)c->resync.reads_billed);
    cJSON_AddNumberToObject(r, "duration_ms", (double)c->resync.duration_ms);
    cJSON_AddItemToObject(o, "resync", r);
    return o;
}

static cJSON *status_json(const struct status *st)
{
    cJSON *o = cJSON_CreateObject(), *s, *m, *cs;

    cJSON_AddStringToObject(o, "version", st->version);
    cJSON_AddNumberToObject(o, "pid", st->pid);
    cJSON_AddStringToObject(o, "state", status_health_name(st->health));
    cJSON_AddStringToObject(o, "reason", st->reason);
    add_time(o, "since", st->health_since_us);
    add_time(o, "started_at", st->started_us);
    add_time(o, "written_at", st->now_us);
    s = cJSON_AddObjectToObject(o, "stream");
    cJSON_AddBoolToObject(s, "up", st->stream_up);
    cJSON_AddBoolToObject(s, "consistent", st->all_current);
    add_time(s, "since", st->stream_since_us);
    add_time(s, "last_heartbeat", st->last_heartbeat_us);
    cJSON_AddNumberToObject(s, "reconnects", (double)st->reconnects);
    m = cJSON_AddObjectToObject(o, "mysql");
    cJSON_AddStringToObject(m, "state", st->mysql_failed     ? "failed"
                                        : st->mysql_retrying ? "retrying"
                                        : st->mysql_ok       ? "connected"
                                                             : "connecting");
    cJSON_AddStringToObject(m, "reason", st->mysql_reason);
    cJSON_AddNumberToObject(m, "queue_depth", (double)st->queue_depth);
    cJSON_AddNumberToObject(o, "index_bytes", (double)st->index_bytes);
    add_counters(cJSON_AddObjectToObject(o, "counters"), &st->totals);
    cs = cJSON_AddArrayToObject(o, "collections");
    for (size_t i = 0; i < st->ncollections; i++)
        cJSON_AddItemToArray(cs, collection_json(&st->collections[i]));
    return o;
}

int status_to_json(const struct status *st, buf *out)
{
    cJSON *o = status_json(st);
    char *text = cJSON_Print(o);
    int rc = buf_adds(out, text);
    free(text);
    cJSON_Delete(o);
    return rc;
}

/* Writes n bytes to path through a temporary file in the same directory and a rename, so that
 * readers see the old file or the new one, never a part. No fsync: the file is a snapshot
 * rewritten every status_interval, worth nothing after a power loss, and an fsync here would
 * block the event loop and, on a disk MySQL shares, stall the sink's own commits behind a
 * journal flush (tens of milliseconds on the benchmark machine). */
static int write_atomic(const char *path, const char *data, size_t n, fserr *e)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;
    size_t off = 0;

    if (fd < 0) {
        rc = fserr_set(e, FS_EIO, "status file %s: %s", tmp, strerror(errno));
        goto out;
    }
    fchmod(fd, 0644); /* regardless of the umask: readers may be other users */
    while (off < n) {
        ssize_t w = write(fd, data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = fserr_set(e, FS_EIO, "status file %s: %s", tmp, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 && !rc)
        rc = fserr_set(e, FS_EIO, "status file %s: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = fserr_set(e, FS_EIO, "status file %s: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}

int status_write(const char *path, const struct status *st, fserr *e)
{
    buf b;
    int rc;

    buf_init(&b, 0);
    status_to_json(st, &b);
    buf_addc(&b, '\n');
    rc = write_atomic(path, b.p, b.len, e);
    buf_release(&b);
    return rc;
}

static void metric(buf *b, const char *name, const char *help, const char *type)
{
    buf_printf(b, "# HELP firesync_%s %s\n# TYPE firesync_%s %s\n", name, help, name, type);
}

/* Per event, received to committed: quantiles over the last minute (NaN without events), count
 * and sum since start. */
static void latency_summary(buf *b, const struct status *st)
{
    metric(b, "event_latency_seconds",
           "Event received to row committed; quantiles over the last minute.", "summary");
    for (size_t i = 0; i < st->ncollections; i++) {
        const struct status_collection *c = &st->collections[i];
        const struct {
            const char *q;
            int64_t us;
        } qs[] = {{"0.5", c->lag_p50_us}, {"0.95", c->lag_p95_us}, {"0.99", c->lag_p99_us}};
        for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
            buf_printf(b, "firesync_event_latency_seconds{collection=\"%s\",quantile=\"%s\"} ",
                       c->path, qs[k].q);
            if (c->lag_events)
                buf_printf(b, "%.6f\n", (double)qs[k].us / 1e6);
            else
                buf_adds(b, "NaN\n");
        }
        buf_printf(b, "firesync_event_latency_seconds_sum{collection=\"%s\"} %.6f\n", c->path,
                   c->lag_total_s);
        buf_printf(b, "firesync_event_latency_seconds_count{collection=\"%s\"} %" PRIu64 "\n",
                   c->path, c->lag_total_events);
    }
}

int status_write_metrics(const char *path, const struct status *st, fserr *e)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } ctr[] = {
        {"documents_created_total", "Rows created.", offsetof(struct status_counters, created)},
        {"documents_updated_total", "Rows updated.", offsetof(struct status_counters, updated)},
        {"documents_deleted_total", "Rows soft-deleted.", offsetof(struct status_counters, deleted)},
        {"documents_unchanged_total", "Versions skipped: nothing to write.",
         offsetof(struct status_counters, unchanged)},
        {"dead_letters_total", "Documents sent to the dead-letter table.",
         offsetof(struct status_counters, dead_letters)},
        {"simulated_changes_total", "Simulated changes applied.",
         offsetof(struct status_counters, simulated)},
    };
    buf b;
    int rc;

    buf_init(&b, 0);
    metric(&b, "health", "0 healthy, 1 warning, 2 unhealthy.", "gauge");
    buf_printf(&b, "firesync_health %d\n", (int)st->health);
    metric(&b, "stream_up", "1 when the Firestore stream is open.", "gauge");
    buf_printf(&b, "firesync_stream_up %d\n", st->stream_up ? 1 : 0);
    metric(&b, "queue_depth", "Events waiting for MySQL.", "gauge");
    buf_printf(&b, "firesync_queue_depth %" PRIu64 "\n", st->queue_depth);
    for (size_t k = 0; k < sizeof(ctr) / sizeof(ctr[0]); k++) {
        metric(&b, ctr[k].name, ctr[k].help, "counter");
        for (size_t i = 0; i < st->ncollections; i++) {
            const struct status_collection *c = &st->collections[i];
            uint64_t v = *(const uint64_t *)((const char *)&c->counters + ctr[k].off);
            buf_printf(&b, "firesync_%s{collection=\"%s\",table=\"%s\"} %" PRIu64 "\n",
                       ctr[k].name, c->path, c->table, v);
        }
    }
    metric(&b, "tracked_documents", "Documents in the applied index.", "gauge");
    for (size_t i = 0; i < st->ncollections; i++)
        buf_printf(&b, "firesync_tracked_documents{collection=\"%s\"} %" PRIu64 "\n",
                   st->collections[i].path, st->collections[i].tracked);
    metric(&b, "lag_milliseconds", "Event received to row committed, last batch.", "gauge");
    for (size_t i = 0; i < st->ncollections; i++)
        buf_printf(&b, "firesync_lag_milliseconds{collection=\"%s\"} %lld\n",
                   st->collections[i].path, (long long)st->collections[i].lag_ms);
    latency_summary(&b, st);
    rc = write_atomic(path, b.p, b.len, e);
    buf_release(&b);
    return rc;
}

/* ---- reading ----------------------------------------------------------------------------- */

static int64_t parse_time(const cJSON *v)
{
    struct tm tm = {0};
    int us = 0, n = 0;

    if (!cJSON_IsString(v))
        return 0;
    if (sscanf(v->valuestring, "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us, &n) < 7)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000 + us;
}

int status_read(const char *path, int64_t now_us, int64_t stale_ms, char **json,
                enum status_health *health, char *why, size_t whylen, fserr *e)
{
    FILE *f = fopen(path, "r");
    buf b;
    char chunk[4096];
    size_t n;
    cJSON *o;
    const cJSON *state, *pid;
    int64_t written;

    *json = NULL;
    *health = STATUS_UNKNOWN;
    snprintf(why, whylen, "%s", "");
    if (!f)
        return fserr_set(e, errno == ENOENT ? FS_ENOTFOUND : FS_EIO, "status file %s: %s", path,
                         strerror(errno));
    buf_init(&b, 16u << 20);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_add(&b, chunk, n) != 0)
            break;
    fclose(f);
    o = cJSON_Parse(buf_str(&b));
    if (!o) {
        buf_release(&b);
        return fserr_set(e, FS_EPARSE, "status file %s is not valid JSON", path);
    }
    state = cJSON_GetObjectItemCaseSensitive(o, "state");
    pid = cJSON_GetObjectItemCaseSensitive(o, "pid");
    written = parse_time(cJSON_GetObjectItemCaseSensitive(o, "written_at"));
    for (int h = 0; h < 3; h++)
        if (cJSON_IsString(state) && strcmp(state->valuestring, names[h]) == 0)
            *health = (enum status_health)h;
    if (cJSON_IsNumber(pid) && pid->valueint > 0 && kill(pid->valueint, 0) != 0 &&
        errno == ESRCH) {
        *health = STATUS_UNKNOWN;
        cJSON *last = cJSON_GetObjectItemCaseSensitive(o, "reason");
        /* its last word says why it stopped, when it knew (e.g. "could not start: ...") */
        snprintf(why, whylen, "stale: the agent that wrote it (pid %d) is not running%s%s%s%s",
                 pid->valueint, cJSON_IsString(state) ? "; it last said " : "",
                 cJSON_IsString(state) ? state->valuestring : "",
                 cJSON_IsString(last) && last->valuestring[0] ? ": " : "",
                 cJSON_IsString(last) ? last->valuestring : "");
    } else if (written && now_us - written > stale_ms * 1000) {
        *health = STATUS_UNKNOWN;
        snprintf(why, whylen, "stale: not updated for %llds",
                 (long long)((now_us - written) / 1000000));
    } else if (!written) {
        *health = STATUS_UNKNOWN;
        snprintf(why, whylen, "%s", "the file has no written_at time");
    }
    cJSON_Delete(o);
    *json = buf_take(&b);
    return 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void ago(const cJSON *o, const char *k, int64_t now_us, char *out, size_t n)
{
    int64_t t = parse_time(cJSON_GetObjectItemCaseSensitive(o, k));
    if (!t) {
        snprintf(out, n, "never");
        return;
    }
    fmt_ago(now_us > t ? now_us - t : 0, out, n);
    strncat(out, " ago", n - strlen(out) - 1);
}

/* "3.2 ms", or "-" for null (no event in the window). */
static void fmt_ms(const cJSON *o, const char *k, char *out, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(v))
        snprintf(out, n, "%.1f ms", v->valuedouble);
    else
        snprintf(out, n, "-");
}

/* Each collection's latency quantiles, when the file has them (older agents' files do not). */
static void print_latency(FILE *out, const cJSON *cs)
{
    const cJSON *c;
    bool header = false;

    cJSON_ArrayForEach(c, cs)
    {
        char q[4][32];
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(c, "lag_events")))
            continue;
        if (!header)
            fprintf(out, "\n  %-24s %10s %10s %10s %10s %8s  (event received -> row committed, "
                         "last %.0f s)\n",
                    "LATENCY", "P50", "P95", "P99", "MAX", "EVENTS", num(c, "lag_window_s"));
        header = true;
        fmt_ms(c, "lag_p50_ms", q[0], sizeof(q[0]));
        fmt_ms(c, "lag_p95_ms", q[1], sizeof(q[1]));
        fmt_ms(c, "lag_p99_ms", q[2], sizeof(q[2]));
        fmt_ms(c, "lag_max_ms", q[3], sizeof(q[3]));
        fprintf(out, "  %-24s %10s %10s %10s %10s %8.0f\n", str(c, "path"), q[0], q[1], q[2], q[3],
                num(c, "lag_events"));
    }
}

int status_print(FILE *out, const char *json, int64_t now_us, enum status_health health,
                 const char *why)
{
    cJSON *o = cJSON_Parse(json), *cs, *c;
    char a[48], b[48];

    if (!o)
        return FS_EPARSE;
    ago(o, "since", now_us, a, sizeof(a));
    fprintf(out, "firesync %s: %s\n", status_health_name(health),
            why && *why ? why : str(o, "reason"));
    fprintf(out, "  state since %s (%s), pid %d, version %s\n", str(o, "since"), a,
            (int)num(o, "pid"), str(o, "version"));
    c = cJSON_GetObjectItemCaseSensitive(o, "stream");
    ago(c, "last_heartbeat", now_us, a, sizeof(a));
    fprintf(out, "  stream: %s%s, last activity %s, %d reconnects\n",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "up")) ? "up" : "down",
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "consistent")) ? ", consistent" : "",
            a, (int)num(c, "reconnects"));
    c = cJSON_GetObjectItemCaseSensitive(o, "mysql");
    fprintf(out, "  mysql: %s%s%s, %d events queued\n", str(c, "state"),
            *str(c, "reason") ? ": " : "", str(c, "reason"), (int)num(c, "queue_depth"));
    fprintf(out, "\n  %-24s %-20s %-10s %8s %8s %8s %8s %9s %5s  %s\n", "COLLECTION", "TABLE",
            "LAST EVENT", "TRACKED", "CREATED", "UPDATED", "DELETED", "UNCHANGED", "DEAD",
            "LAST RESYNC");
    cs = cJSON_GetObjectItemCaseSensitive(o, "collections");
    cJSON_ArrayForEach(c, cs)
    {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(c, "counters");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "resync");
        ago(c, "last_event", now_us, a, sizeof(a));
        if (parse_time(cJSON_GetObjectItemCaseSensitive(r, "finished_at")))
            ago(r, "finished_at", now_us, b, sizeof(b));
        else
            snprintf(b, sizeof(b), "never");
        fprintf(out, "  %-24s %-20s %-10s %8.0f %8.0f %8.0f %8.0f %9.0f %5.0f  %s %s%s%s\n",
                str(c, "path"), str(c, "table"), a, num(c, "tracked"), num(k, "created"),
                num(k, "updated"), num(k, "deleted"), num(k, "unchanged"),
                num(k, "dead_letters"), b, str(r, "state"), *str(r, "result") ? ": " : "",
                str(r, "result"));
    }
    print_latency(out, cs);
    cJSON_Delete(o);
    return 0;
}
