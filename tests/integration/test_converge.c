/*
 * test_converge.c - convergence under faults: a seeded random workload on the Firestore
 * emulator, across two collections, while faults hit the agent, MariaDB and the network; at the
 * end every document equals its row, column by column.
 *
 * The workload (through the emulator's REST :commit, never through the agent's path): creates,
 * re-creates of deleted ids, updates of one or several fields (nested ones included), field and
 * whole-map removals, deletes, and commits that write 2-6 documents of both collections at once.
 * Every write carries a precondition (exists / does not exist), so a model that drifted from
 * Firestore fails at once instead of at the end. The test keeps the model: for each document its
 * fields and the update time the commit returned.
 *
 * The faults (one at a time, each spanning some operations of the workload): SIGKILL of the
 * agent and a restart later; MariaDB stopped and started again; the agent's HTTP connections to
 * the emulator cut (tests/harness/proxy.c sits between them); the stream stalled; every request
 * answered with 503; MariaDB made read-only (SET GLOBAL read_only; the agent's user has no
 * READ ONLY ADMIN). The first six faults are one of each kind, in a seeded order.
 *
 * At the end: the agent must still be running (it never exits on its own through any of this),
 * must report healthy, and then, within a bounded wait, every live document's row must hold
 * every mapped column and the unmapped field in the extra JSON, and an fs_update_time no newer
 * than the update time Firestore gave the last write; no row may exist for an id never created; every
 * deleted document's row is soft-deleted (or absent, when the agent never saw it alive); the
 * dead-letter table is empty (the workload is valid); the change history holds no change twice.
 * The model is also checked against the emulator's own listing, so the test cannot pass on a
 * wrong model.
 *
 * Replay and soak: FIRESYNC_SOAK_SEED=N replays a run (the seed, operation counts and faults
 * are printed at the start and the end). Defaults: about 2,000 operations and 10 faults (the
 * version `make check` runs). FIRESYNC_SOAK_SECONDS=S runs the workload for S seconds instead,
 * with a fault in every period of 180 operations; `make soak` (scripts/soak.sh) does that for 30 minutes.
 * FIRESYNC_SOAK_RATE sets the writes per second (default 60).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/harness/agent_util.h"
#include "tests/harness/proxy.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the collections and their mapping ---------------------------------------------------- */

enum kind { K_STR, K_INT, K_DBL, K_BOOL, K_DEC, K_TS };

struct field {
    const char *path;   /* Firestore field path ("a.b" is nested) */
    const char *column; /* mapped column, or NULL: lands in the extra JSON column */
    enum kind kind;
};

#define NFIELDS 6
#define NIDS 90

struct coll {
    const char *path;
    const char *prefix; /* id prefix */
    struct field f[NFIELDS];
};

static const struct coll COLLS[2] = {
    {"users",
     "u",
     {{"name", "name", K_STR},
      {"age", "age", K_INT},
      {"score", "score", K_DBL},
      {"active", "active", K_BOOL},
      {"address.city", "city", K_STR},
      {"note", NULL, K_STR}}},
    {"orders",
     "o",
     {{"total", "total", K_DEC},
      {"status", "status", K_STR},
      {"qty", "qty", K_INT},
      {"placedAt", "placed_at", K_TS},
      {"customer.name", "customer", K_STR},
      {"customer.zip", "zip", K_STR}}},
};

#define MAPPING                                                                                    \
    "[[collections]]\npath = \"users\"\ntable = \"users\"\nhistory = true\n"                      \
    "[collections.columns]\n"                                                                      \
    "name = { field = \"name\", type = \"VARCHAR(100)\" }\n"                                       \
    "age = { field = \"age\", type = \"BIGINT\" }\n"                                               \
    "score = { field = \"score\", type = \"DOUBLE\" }\n"                                           \
    "active = { field = \"active\", type = \"BOOLEAN\" }\n"                                        \
    "city = { field = \"address.city\", type = \"VARCHAR(100)\" }\n\n"                             \
    "[[collections]]\npath = \"orders\"\ntable = \"orders\"\nhistory = true\n"                    \
    "[collections.columns]\n"                                                                      \
    "total = { field = \"total\", type = \"DECIMAL(12,2)\" }\n"                                    \
    "status = { field = \"status\", type = \"VARCHAR(20)\" }\n"                                    \
    "qty = { field = \"qty\", type = \"BIGINT\" }\n"                                               \
    "placed_at = { field = \"placedAt\", type = \"DATETIME(6)\" }\n"                               \
    "customer = { field = \"customer.name\", type = \"VARCHAR(100)\" }\n"                          \
    "zip = { field = \"customer.zip\", type = \"VARCHAR(20)\" }\n"

/* ---- the model ---------------------------------------------------------------------------- */

struct value {
    bool set;
    char json[256]; /* the Firestore Value JSON */
    char sql[160];  /* what SELECT returns for the column (or JSON_EXTRACT for unmapped) */
};

struct doc {
    bool exists, ever;
    struct value v[NFIELDS];
    char update_time[40]; /* as DATETIME(6) text */
};

static struct doc model[2][NIDS];
static struct agent_env ae;
static struct proxy *px;
static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64: small, seedable, good enough for a workload */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int pick(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Ids: mostly plain, a few that need care in URLs, SQL and JSON. */
static void doc_id(int c, int i, char *out, size_t n)
{
    static const char *odd[] = {"it's-%s0", "\xc3\xbc\xc3\xb1-%s1", "100%%-%s2", "a b-%s3"};
    if (i < 4)
        snprintf(out, n, odd[i], COLLS[c].prefix);
    else
        snprintf(out, n, "%s%03d", COLLS[c].prefix, i);
}

static void json_escape(const char *s, char *out, size_t n)
{
    size_t o = 0;
    for (; *s && o + 7 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[o++] = '\\';
            out[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(out + o, n - o, "\\u%04x", ch);
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
}

static void random_string(char *out, size_t n)
{
    static const char *pieces[] = {"a",  "b",  "Z", "7", " ", "'",  "\"", "\\", "`",
                                   ";",  "--", "%", "_", "\t", "\xc3\xa9", "\xe6\x97\xa5",
                                   "\xf0\x9f\x99\x82", "x", "y", "Ana", "Porto"};
    int len = pick(14);
    size_t o = 0;
    out[0] = '\0';
    for (int k = 0; k < len; k++) {
        const char *p = pieces[pick((int)(sizeof(pieces) / sizeof(*pieces)))];
        size_t l = strlen(p);
        if (o + l + 1 >= n)
            break;
        memcpy(out + o, p, l + 1);
        o += l;
    }
}

/* A fresh random value of the field's kind, different from the current one. */
static void random_value(const struct field *f, const struct value *cur, struct value *v)
{
    char raw[128], esc[256];
    do {
        memset(v, 0, sizeof(*v));
        v->set = true;
        switch (f->kind) {
        case K_STR:
            /* VARCHAR(20) columns get at most 20 bytes, VARCHAR(100) at most 70 characters */
            random_string(raw, f->column && (!strcmp(f->column, "zip") || !strcmp(f->column, "status"))
                                   ? 21
                                   : sizeof(raw));
            json_escape(raw, esc, sizeof(esc));
            snprintf(v->json, sizeof(v->json), "{\"stringValue\":\"%s\"}", esc);
            snprintf(v->sql, sizeof(v->sql), "%s", raw);
            break;
        case K_INT: {
            int64_t x;
            int r = pick(20);
            x = r == 0 ? INT64_MAX : r == 1 ? INT64_MIN : (int64_t)pick(2000001) - 1000000;
            snprintf(v->json, sizeof(v->json), "{\"integerValue\":\"%" PRId64 "\"}", x);
            snprintf(v->sql, sizeof(v->sql), "%" PRId64, x);
            break;
        }
        case K_DBL: {
            /* quarters: exact in binary, so the text MySQL prints is known */
            double d = (double)(pick(8001) - 4000) / 4.0;
            snprintf(v->json, sizeof(v->json), "{\"doubleValue\":%.17g}", d);
            snprintf(v->sql, sizeof(v->sql), "%.10g", d);
            break;
        }
        case K_BOOL: {
            bool b = cur && cur->set ? strstr(cur->json, "false") != NULL : pick(2);
            snprintf(v->json, sizeof(v->json), "{\"booleanValue\":%s}", b ? "true" : "false");
            snprintf(v->sql, sizeof(v->sql), "%d", b);
            break;
        }
        case K_DEC: {
            long long cents = (long long)pick(200000001) - 100000000;
            long long a = cents < 0 ? -cents : cents;
            snprintf(v->json, sizeof(v->json), "{\"doubleValue\":%.17g}", (double)cents / 100.0);
            snprintf(v->sql, sizeof(v->sql), "%s%lld.%02lld", cents < 0 ? "-" : "", a / 100,
                     a % 100);
            break;
        }
        case K_TS: {
            /* 2000-01-01 .. 2030-12-31, microseconds */
            time_t t = 946684800 + (time_t)(rnd() % 978307200ULL);
            int us = pick(1000000);
            struct tm tm;
            char d[32];
            gmtime_r(&t, &tm);
            strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(v->json, sizeof(v->json), "{\"timestampValue\":\"%s.%06dZ\"}", d, us);
            d[10] = ' ';
            snprintf(v->sql, sizeof(v->sql), "%s.%06d", d, us);
            break;
        }
        }
    } while (cur && cur->set && strcmp(cur->json, v->json) == 0);
}

/* ---- building writes ---------------------------------------------------------------------- */

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
}

/* The Firestore "fields" object holding the fields of d selected by `mask` (bit per field),
 * nested paths grouped under their map. */
static void add_fields(struct sbuf *b, int c, const struct doc *d, unsigned mask)
{
    const struct coll *co = &COLLS[c];
    bool first = true;
    bool done[NFIELDS] = {false};

    sb_add(b, "{");
    for (int k = 0; k < NFIELDS; k++) {
        if (done[k] || !(mask & (1u << k)) || !d->v[k].set)
            continue;
        const char *dot = strchr(co->f[k].path, '.');
        if (!dot) {
            sb_add(b, "%s\"%s\":%s", first ? "" : ",", co->f[k].path, d->v[k].json);
            first = false;
            continue;
        }
        int plen = (int)(dot - co->f[k].path);
        sb_add(b, "%s\"%.*s\":{\"mapValue\":{\"fields\":{", first ? "" : ",", plen,
               co->f[k].path);
        first = false;
        bool inner_first = true;
        for (int j = k; j < NFIELDS; j++) {
            if (!(mask & (1u << j)) || !d->v[j].set ||
                strncmp(co->f[j].path, co->f[k].path, (size_t)plen + 1) != 0)
                continue;
            sb_add(b, "%s\"%s\":%s", inner_first ? "" : ",", co->f[j].path + plen + 1,
                   d->v[j].json);
            inner_first = false;
            done[j] = true;
        }
        sb_add(b, "}}}");
    }
    sb_add(b, "}");
}

static void doc_name(int c, int i, char *out, size_t n)
{
    char id[64], esc[128];
    doc_id(c, i, id, sizeof(id));
    json_escape(id, esc, sizeof(esc));
    snprintf(out, n, "projects/%s/databases/(default)/documents/%s/%s", ae.project,
             COLLS[c].path, esc);
}

/* One write of a commit; `next` receives the document's state after it. Returns whether the
 * write is a delete (no update time comes back for it). */
enum wkind { W_CREATE, W_UPDATE, W_REMOVE, W_REMOVE_MAP, W_DELETE };

struct write {
    int c, i;
    enum wkind kind;
    struct doc next;
};

static void plan_write(struct write *w, int c, int i)
{
    const struct doc *d = &model[c][i];
    w->c = c;
    w->i = i;
    w->next = *d;
    if (!d->exists) {
        w->kind = W_CREATE;
        memset(w->next.v, 0, sizeof(w->next.v));
        for (int k = 0; k < NFIELDS; k++)
            if (pick(5) != 0)
                random_value(&COLLS[c].f[k], NULL, &w->next.v[k]);
        w->next.exists = w->next.ever = true;
        return;
    }
    int r = pick(100);
    if (r < 12) {
        w->kind = W_DELETE;
        w->next.exists = false;
        return;
    }
    if (r < 24) {
        /* remove one field that is there, or the whole map of a nested one */
        int k = pick(NFIELDS);
        for (int t = 0; t < NFIELDS && !d->v[k].set; t++)
            k = (k + 1) % NFIELDS;
        if (!d->v[k].set) {
            w->kind = W_DELETE;
            w->next.exists = false;
            return;
        }
        w->kind = strchr(COLLS[c].f[k].path, '.') && pick(3) == 0 ? W_REMOVE_MAP : W_REMOVE;
        if (w->kind == W_REMOVE_MAP) {
            const char *p = COLLS[c].f[k].path;
            size_t plen = (size_t)(strchr(p, '.') - p);
            for (int j = 0; j < NFIELDS; j++)
                if (strncmp(COLLS[c].f[j].path, p, plen + 1) == 0)
                    w->next.v[j].set = false;
        } else {
            w->next.v[k].set = false;
        }
        return;
    }
    w->kind = W_UPDATE;
    int nf = r < 85 ? 1 : 2 + pick(2);
    for (int t = 0; t < nf; t++) {
        int k = pick(NFIELDS);
        random_value(&COLLS[c].f[k], &d->v[k], &w->next.v[k]);
    }
}

/* Fields whose state differs between the model and `next`: the update mask. */
static unsigned changed_mask(const struct doc *a, const struct doc *b)
{
    unsigned m = 0;
    for (int k = 0; k < NFIELDS; k++)
        if (a->v[k].set != b->v[k].set || (a->v[k].set && strcmp(a->v[k].json, b->v[k].json)))
            m |= 1u << k;
    return m;
}

static void add_write_json(struct sbuf *b, const struct write *w)
{
    char name[300];
    const struct doc *d = &model[w->c][w->i];
    doc_name(w->c, w->i, name, sizeof(name));

    switch (w->kind) {
    case W_CREATE:
        sb_add(b, "{\"update\":{\"name\":\"%s\",\"fields\":", name);
        add_fields(b, w->c, &w->next, ~0u);
        sb_add(b, "},\"currentDocument\":{\"exists\":false}}");
        return;
    case W_DELETE:
        sb_add(b, "{\"delete\":\"%s\",\"currentDocument\":{\"exists\":true}}", name);
        return;
    default:
        break;
    }
    unsigned mask = changed_mask(d, &w->next);
    sb_add(b, "{\"update\":{\"name\":\"%s\",\"fields\":", name);
    add_fields(b, w->c, &w->next, mask);
    sb_add(b, "},\"updateMask\":{\"fieldPaths\":[");
    bool first = true;
    if (w->kind == W_REMOVE_MAP) {
        /* the whole map goes: its prefix is the mask */
        for (int k = 0; k < NFIELDS; k++)
            if (mask & (1u << k)) {
                const char *p = COLLS[w->c].f[k].path;
                sb_add(b, "\"%.*s\"", (int)(strchr(p, '.') - p), p);
                break;
            }
    } else {
        for (int k = 0; k < NFIELDS; k++)
            if (mask & (1u << k)) {
                sb_add(b, "%s\"%s\"", first ? "" : ",", COLLS[w->c].f[k].path);
                first = false;
            }
    }
    sb_add(b, "]},\"currentDocument\":{\"exists\":true}}");
}

/* "2026-11-23T14:40:01.12345Z" -> "2026-11-23 14:40:01.123450" */
static void rfc3339_to_sql(const char *in, char *out, size_t n)
{
    char frac[7] = "000000";
    const char *dot = strchr(in, '.');
    if (dot)
        for (int k = 0; k < 6 && dot[1 + k] >= '0' && dot[1 + k] <= '9'; k++)
            frac[k] = dot[1 + k];
    snprintf(out, n, "%.10s %.8s.%s", in, in + 11, frac);
}

static long ops_done, writes_done, commits_done;

/* Sends one commit with the planned writes and, when it succeeds, moves the model on. */
static void commit_writes(struct write *ws, int n)
{
    struct sbuf b = {0};
    buf out = {0};
    long status = 0;
    fserr e = {0};
    struct svc_env env = ae.svc;
    char path[300];

    sb_add(&b, "{\"writes\":[");
    for (int k = 0; k < n; k++) {
        if (k)
            sb_add(&b, ",");
        add_write_json(&b, &ws[k]);
    }
    sb_add(&b, "]}");
    snprintf(env.project, sizeof(env.project), "%s", ae.project);
    snprintf(path, sizeof(path), "/v1/projects/%s/databases/(default)/documents:commit",
             ae.project);
    for (int attempt = 0;; attempt++) {
        status = 0;
        buf_reset(&out);
        if (svc_http(&env, "POST", path, b.p, &out, &status, &e) == 0 && status == 200)
            break;
        if (attempt == 5 || (status >= 400 && status < 500))
            fail_msg("commit failed (HTTP %ld: %s %s); body %s", status, e.msg,
                     out.len ? out.p : "", b.p);
        sleep_ms(200);
    }
    cJSON *root = cJSON_ParseWithLength(out.p, out.len);
    cJSON *results = cJSON_GetObjectItemCaseSensitive(root, "writeResults");
    assert_true(cJSON_GetArraySize(results) == n);
    for (int k = 0; k < n; k++) {
        struct doc *d = &model[ws[k].c][ws[k].i];
        *d = ws[k].next;
        if (ws[k].kind != W_DELETE) {
            cJSON *ut = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(results, k),
                                                         "updateTime");
            assert_true(cJSON_IsString(ut));
            rfc3339_to_sql(ut->valuestring, d->update_time, sizeof(d->update_time));
        }
    }
    cJSON_Delete(root);
    buf_release(&out);
    free(b.p);
    writes_done += n;
    commits_done++;
}

static void one_operation(void)
{
    struct write ws[6];
    int c = pick(2);
    if (pick(100) < 15) {
        /* a commit of several documents of both collections, distinct ones */
        int n = 2 + pick(5);
        for (int k = 0; k < n; k++) {
            int cc, ii, dup;
            do {
                cc = pick(2);
                ii = pick(NIDS);
                dup = 0;
                for (int j = 0; j < k; j++)
                    dup |= ws[j].c == cc && ws[j].i == ii;
            } while (dup);
            plan_write(&ws[k], cc, ii);
        }
        commit_writes(ws, n);
    } else {
        plan_write(&ws[0], c, pick(NIDS));
        commit_writes(ws, 1);
    }
    ops_done++;
}

/* ---- faults ------------------------------------------------------------------------------- */

enum fault { F_KILL, F_MARIADB, F_CUT, F_STALL, F_ERRORS, F_READONLY, F_KINDS };
static const char *FAULT_NAMES[F_KINDS] = {"kill-agent", "mariadb-restart", "http-cut",
                                           "http-stall", "http-errors", "mysql-read-only"};
static long fault_count[F_KINDS];
static enum fault active = F_KINDS; /* the fault in force, F_KINDS for none */

static void agent_must_run(void)
{
    int st;
    if (ae.pid > 0 && waitpid(ae.pid, &st, WNOHANG) == ae.pid) {
        ae.pid = 0;
        fail_msg("the agent exited on its own (status %d) during the run; see %s/agent-%d.log",
                 st, ae.dir, ae.runs);
    }
}

static void fault_begin(enum fault f)
{
    fserr e = {0};
    fault_count[f]++;
    switch (f) {
    case F_KILL:
        agent_must_run();
        agent_stop(&ae, SIGKILL, 5000);
        break;
    case F_MARIADB:
        if (svc_mariadb_stop(&ae.svc, &e) != 0)
            fail_msg("%s", e.msg);
        break;
    case F_CUT:
        proxy_cut(px);
        break;
    case F_STALL:
        proxy_set_mode(px, PROXY_STALL);
        break;
    case F_ERRORS:
        proxy_set_mode(px, PROXY_ERROR);
        break;
    case F_READONLY:
        if (svc_mysql_exec(&ae.svc, "SET GLOBAL read_only = ON", &e) != 0)
            fail_msg("%s", e.msg);
        break;
    default:
        break;
    }
}

static void fault_end(enum fault f)
{
    fserr e = {0};
    switch (f) {
    case F_KILL:
        assert_int_equal(agent_start(&ae, NULL, NULL), 0);
        break;
    case F_MARIADB:
        if (svc_mariadb_start(&ae.svc, &e) != 0)
            fail_msg("%s", e.msg);
        break;
    case F_STALL:
    case F_ERRORS:
        proxy_set_mode(px, PROXY_PASS);
        break;
    case F_READONLY:
        if (svc_mysql_exec(&ae.svc, "SET GLOBAL read_only = OFF", &e) != 0)
            fail_msg("%s", e.msg);
        break;
    default:
        break;
    }
}

/* ---- the comparison ----------------------------------------------------------------------- */

#define MAX_REPORT 12

/* Compares MySQL with the model; returns the number of differences, describing the first few
 * in `report`. */
static int compare(char *report, size_t n)
{
    fserr e = {0};
    MYSQL *m = svc_mysql_connect(&ae.svc, ae.db, &e);
    int diffs = 0;
    size_t o = 0;

    report[0] = '\0';
    if (!m) {
        snprintf(report, n, "%s", e.msg);
        return 1;
    }
#define DIFF(...)                                                                                  \
    do {                                                                                           \
        if (diffs++ < MAX_REPORT && o < n)                                                         \
            o += (size_t)snprintf(report + o, n - o, __VA_ARGS__);                                 \
    } while (0)
    for (int c = 0; c < 2; c++) {
        const struct coll *co = &COLLS[c];
        char sql[1024];
        size_t q = (size_t)snprintf(sql, sizeof(sql), "SELECT id, fs_update_time, deleted_at");
        for (int k = 0; k < NFIELDS; k++) {
            if (co->f[k].column)
                q += (size_t)snprintf(sql + q, sizeof(sql) - q, ", `%s`", co->f[k].column);
            else
                q += (size_t)snprintf(sql + q, sizeof(sql) - q,
                                      ", JSON_UNQUOTE(JSON_EXTRACT(extra, '$.%s'))",
                                      co->f[k].path);
        }
        snprintf(sql + q, sizeof(sql) - q, " FROM `%s`", co->path);
        bool seen[NIDS] = {false};
        MYSQL_RES *r = NULL;
        if (mysql_query(m, sql) != 0 || !(r = mysql_store_result(m))) {
            DIFF("%s: %s\n", co->path, mysql_error(m));
            continue;
        }
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(r))) {
            unsigned long *len = mysql_fetch_lengths(r);
            int i = -1;
            for (int k = 0; k < NIDS && i < 0; k++) {
                char id[64];
                doc_id(c, k, id, sizeof(id));
                if (strlen(id) == len[0] && memcmp(id, row[0], len[0]) == 0)
                    i = k;
            }
            if (i < 0) {
                DIFF("%s/%.*s: a row for an id never written\n", co->path, (int)len[0], row[0]);
                continue;
            }
            seen[i] = true;
            const struct doc *d = &model[c][i];
            char id[64];
            doc_id(c, i, id, sizeof(id));
            if (!d->ever) {
                DIFF("%s/%s: a row for a document never created\n", co->path, id);
                continue;
            }
            if (!d->exists) {
                if (!row[2])
                    DIFF("%s/%s: deleted in Firestore, row not soft-deleted\n", co->path, id);
                continue;
            }
            if (row[2]) {
                DIFF("%s/%s: exists in Firestore, row soft-deleted at %s\n", co->path, id,
                     row[2]);
                continue;
            }
            /* Older is right when the agent saw only the net result of several writes that
             * left every field as it was (after a reconnect, a RESET re-sends the current
             * version only): nothing changed, so nothing was written. Newer never is. */
            if (!row[1] || strcmp(row[1], d->update_time) > 0)
                DIFF("%s/%s: fs_update_time %s, Firestore says %s\n", co->path, id,
                     row[1] ? row[1] : "NULL", d->update_time);
            for (int k = 0; k < NFIELDS; k++) {
                const char *got = row[3 + k];
                const struct value *v = &d->v[k];
                if (!v->set && !got)
                    continue;
                if (!v->set || !got || strcmp(got, v->sql) != 0)
                    DIFF("%s/%s: %s is '%s', want '%s'\n", co->path, id,
                         co->f[k].column ? co->f[k].column : co->f[k].path,
                         got ? got : "NULL", v->set ? v->sql : "NULL");
            }
        }
        mysql_free_result(r);
        for (int i = 0; i < NIDS; i++)
            if (model[c][i].exists && !seen[i]) {
                char id[64];
                doc_id(c, i, id, sizeof(id));
                DIFF("%s/%s: no row\n", co->path, id);
            }
    }
    mysql_close(m);
    return diffs;
}

/* The model against the emulator's own listing: same live ids, same update times. */
static void model_matches_emulator(void)
{
    struct svc_env env = ae.svc;
    fserr e = {0};
    snprintf(env.project, sizeof(env.project), "%s", ae.project);
    for (int c = 0; c < 2; c++) {
        char path[300];
        buf out = {0};
        long status = 0;
        int live = 0, listed = 0;
        snprintf(path, sizeof(path),
                 "/v1/projects/%s/databases/(default)/documents/%s?pageSize=1000", ae.project,
                 COLLS[c].path);
        assert_int_equal(svc_http(&env, "GET", path, NULL, &out, &status, &e), 0);
        assert_int_equal(status, 200);
        cJSON *root = cJSON_ParseWithLength(out.p, out.len);
        cJSON *docs = cJSON_GetObjectItemCaseSensitive(root, "documents"), *d;
        cJSON_ArrayForEach(d, docs)
        {
            const char *name = cJSON_GetObjectItemCaseSensitive(d, "name")->valuestring;
            const char *ut = cJSON_GetObjectItemCaseSensitive(d, "updateTime")->valuestring;
            const char *id = strrchr(name, '/') + 1;
            char want[64], sqlt[40];
            int i;
            for (i = 0; i < NIDS; i++) {
                doc_id(c, i, want, sizeof(want));
                if (strcmp(want, id) == 0)
                    break;
            }
            assert_true(i < NIDS && model[c][i].exists);
            rfc3339_to_sql(ut, sqlt, sizeof(sqlt));
            assert_string_equal(sqlt, model[c][i].update_time);
            listed++;
        }
        for (int i = 0; i < NIDS; i++)
            live += model[c][i].exists;
        assert_int_equal(listed, live);
        cJSON_Delete(root);
        buf_release(&out);
    }
}

/* ---- the run ------------------------------------------------------------------------------ */

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

/* Points the agent at the proxy instead of the emulator. */
static void rewrite_emulator_host(int port)
{
    char from[64], to[64];
    snprintf(from, sizeof(from), "127.0.0.1:%d", ae.svc.emulator_port);
    snprintf(to, sizeof(to), "127.0.0.1:%d", port);
    assert_int_equal(agent_config_replace(&ae, from, to), 0);
}

static void print_summary(const char *when, uint64_t seed, long ms)
{
    fprintf(stderr, "# converge %s: seed %" PRIu64 ", %ld operations (%ld writes in %ld commits), "
                    "%.1f s",
            when, seed, ops_done, writes_done, commits_done, (double)ms / 1000.0);
    for (int f = 0; f < F_KINDS; f++)
        fprintf(stderr, ", %s %ld", FAULT_NAMES[f], fault_count[f]);
    fprintf(stderr, "\n");
}

static void test_random_workload_under_faults_converges_column_by_column(void **state)
{
    (void)state;
    fserr e = {0};
    uint64_t seed = (uint64_t)env_long("FIRESYNC_SOAK_SEED", 0);
    long seconds = env_long("FIRESYNC_SOAK_SECONDS", 0);
    long max_ops = env_long("FIRESYNC_SOAK_OPS", 2000);
    long nfaults = env_long("FIRESYNC_SOAK_FAULTS", 10);
    long rate = env_long("FIRESYNC_SOAK_RATE", 60);
    /* fault k starts somewhere in the first half of the k-th period of `gap` operations and
     * ends within it; with a count of operations, the last period ends with the workload */
    long gap = seconds ? 180 : (nfaults > 0 ? max_ops / nfaults : max_ops + 1);
    enum fault order[F_KINDS];

    if (!seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
    }
    rng_state = seed;
    fprintf(stderr, "# converge: seed %" PRIu64 " (replay with FIRESYNC_SOAK_SEED=%" PRIu64 ")\n",
            seed, seed);

    assert_int_equal(agent_env_init(&ae, "converge", MAPPING, ""), 0);
    px = proxy_start(ae.svc.emulator_port, &e);
    if (!px)
        fail_msg("%s", e.msg);
    rewrite_emulator_host(proxy_port(px));
    assert_int_equal(agent_start(&ae, NULL, NULL), 0);
    if (!agent_wait_state(&ae, "healthy", 30000))
        fail_msg("the agent did not become healthy; see %s/agent-%d.log", ae.dir, ae.runs);

    for (int k = 0; k < F_KINDS; k++)
        order[k] = (enum fault)k;
    for (int k = F_KINDS - 1; k > 0; k--) {
        int j = pick(k + 1);
        enum fault t = order[k];
        order[k] = order[j];
        order[j] = t;
    }

    long t0 = now_ms(), faults = 0, next_fault = 10 + pick((int)gap / 2), fault_until = -1;
    for (;;) {
        bool more = seconds ? now_ms() - t0 < seconds * 1000 : ops_done < max_ops;
        if (!more)
            break;
        if (active == F_KINDS && ops_done >= next_fault &&
            (seconds || faults < nfaults)) {
            active = faults < F_KINDS ? order[faults] : (enum fault)pick(F_KINDS);
            faults++;
            fprintf(stderr, "# op %ld: %s\n", ops_done, FAULT_NAMES[active]);
            fault_begin(active);
            fault_until = ops_done + (active == F_CUT ? 0 : 10 + pick((int)gap / 2 - 10));
        }
        if (active != F_KINDS && ops_done >= fault_until) {
            fault_end(active);
            active = F_KINDS;
            next_fault = faults * gap + 10 + pick((int)gap / 2);
        }
        if (active != F_KILL)
            agent_must_run();
        one_operation();
        /* pace: the op count at this instant should be rate * elapsed */
        long ahead = ops_done * 1000 / rate - (now_ms() - t0);
        if (ahead > 0)
            sleep_ms(ahead);
    }
    if (active != F_KINDS)
        fault_end(active);
    active = F_KINDS;
    long t_end = now_ms();
    print_summary("workload done", seed, t_end - t0);

    model_matches_emulator();
    agent_must_run();
    if (!agent_wait_state(&ae, "healthy", 120000))
        fail_msg("the agent is not healthy 120 s after the faults ended; see %s/agent-%d.log",
                 ae.dir, ae.runs);
    char report[4096];
    int diffs;
    while ((diffs = compare(report, sizeof(report))) != 0 && now_ms() - t_end < 120000)
        sleep_ms(500);
    if (diffs)
        fail_msg("seed %" PRIu64 ": %d differences 120 s after the last write; first ones:\n%s"
                 "agent log: %s/agent-%d.log",
                 seed, diffs, report, ae.dir, ae.runs);
    fprintf(stderr, "# converge: equal %.1f s after the last write\n",
            (double)(now_ms() - t_end) / 1000.0);

    const char *dead = sql_scalar(&ae, "SELECT COUNT(*) FROM firesync_dead_letter");
    if (strcmp(dead, "0") != 0)
        fail_msg("seed %" PRIu64 ": %s dead letters from a valid workload: %s", seed, dead,
                 sql_scalar(&ae, "SELECT reason FROM firesync_dead_letter LIMIT 1"));
    const char *dups = sql_scalar(&ae, "SELECT COUNT(*) FROM (SELECT 1 FROM firesync_changes "
                                       "GROUP BY collection, doc_key, op, update_time "
                                       "HAVING COUNT(*) > 1) d");
    if (strcmp(dups, "0") != 0)
        fail_msg("seed %" PRIu64 ": %s changes recorded more than once in the history; e.g. %s",
                 seed, dups,
                 sql_scalar(&ae, "SELECT CONCAT(collection,'/',doc_key,' ',op,' ',update_time) "
                                 "FROM firesync_changes GROUP BY collection, doc_key, op, "
                                 "update_time HAVING COUNT(*) > 1 LIMIT 1"));
    fprintf(stderr, "# converge: %s history rows, %ld proxy connections, %ld answered 503\n",
            sql_scalar(&ae, "SELECT COUNT(*) FROM firesync_changes"), proxy_accepted(px),
            proxy_errors_sent(px));
    print_summary("passed", seed, now_ms() - t0);
}

static int teardown(void **state)
{
    (void)state;
    fserr e = {0};
    agent_env_cleanup(&ae);
    /* a failure in the middle of a fault: leave the shared servers as the next tests need them */
    if (active == F_MARIADB)
        svc_mariadb_start(&ae.svc, &e);
    svc_mysql_exec(&ae.svc, "SET GLOBAL read_only = OFF", &e);
    proxy_free(px);
    px = NULL;
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_random_workload_under_faults_converges_column_by_column,
                                  teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
