/*
 * config.c - from a TOML tree (toml.c) to a checked `struct cfg` (see config.h).
 *
 * Each section is described by a table of keys (name, kind, where it lands in the struct,
 * bounds), so that reading, defaults, unknown-key detection and printing all follow one
 * description and cannot disagree. Every problem becomes a diagnostic with the position of the
 * offending key or value; the caller gets all of them at once. Owns the `struct cfg` it builds
 * until it hands it to the caller.
 */
#include "agent/config.h"

#include "agent/toml.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "firestore/auth.h"
#include "firestore/http.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_CONFIG_BYTES (4u << 20)

enum kind { K_STR, K_SECRET, K_INT, K_BOOL, K_DUR, K_LOGLEVEL, K_TLSMODE, K_DOUBLE };

struct keydef {
    const char *name;
    enum kind kind;
    size_t off;
    int64_t min, max; /* K_INT, K_DUR (ms) */
    const char *help; /* not printed; documents intent here */
};

#define FS(f) offsetof(struct cfg, firestore.f)
#define MY(f) offsetof(struct cfg, mysql.f)
#define AG(f) offsetof(struct cfg, agent.f)
#define RS(f) offsetof(struct cfg, resync.f)
#define DAY (24LL * 3600 * 1000)

static const struct keydef firestore_keys[] = {
    {"project_id", K_STR, FS(project_id), 0, 0, "GCP project id"},
    {"database", K_STR, FS(database), 0, 0, "database id"},
    {"emulator_host", K_STR, FS(emulator_host), 0, 0, "host:port of the emulator"},
    {"credentials_file", K_STR, FS(credentials_file), 0, 0, "service-account key file"},
    {"endpoint", K_STR, FS(endpoint), 0, 0, "base URL"},
    {"request_timeout", K_DUR, FS(request_timeout_ms), 1000, 600000, "per request"},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct keydef mysql_keys[] = {
    {"host", K_STR, MY(host), 0, 0, NULL},
    {"port", K_INT, MY(port), 1, 65535, NULL},
    {"socket", K_STR, MY(socket), 0, 0, NULL},
    {"user", K_STR, MY(user), 0, 0, NULL},
    {"password", K_SECRET, MY(password), 0, 0, NULL},
    {"password_file", K_STR, MY(password_file), 0, 0, NULL},
    {"defaults_file", K_STR, MY(defaults_file), 0, 0, NULL},
    {"database", K_STR, MY(database), 0, 0, NULL},
    {"connect_timeout", K_DUR, MY(connect_timeout_ms), 100, 600000, NULL},
    {"reconnect_min", K_DUR, MY(reconnect_min_ms), 10, 600000, NULL},
    {"reconnect_max", K_DUR, MY(reconnect_max_ms), 100, 3600000, NULL},
    {"create_tables", K_BOOL, MY(create_tables), 0, 0, NULL},
    {"checkpoint_table", K_STR, MY(checkpoint_table), 0, 0, NULL},
    {"changes_table", K_STR, MY(changes_table), 0, 0, NULL},
    {"dead_letter_table", K_STR, MY(dead_letter_table), 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct keydef tls_keys[] = {
    {"mode", K_TLSMODE, MY(tls_mode), 0, 0, NULL},
    {"ca", K_STR, MY(tls_ca), 0, 0, NULL},
    {"cert", K_STR, MY(tls_cert), 0, 0, NULL},
    {"key", K_STR, MY(tls_key), 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct keydef agent_keys[] = {
    {"status_file", K_STR, AG(status_file), 0, 0, NULL},
    {"metrics_file", K_STR, AG(metrics_file), 0, 0, NULL},
    {"control_socket", K_STR, AG(control_socket), 0, 0, NULL},
    {"log_level", K_LOGLEVEL, AG(log_level), 0, 0, NULL},
    {"batch_max_rows", K_INT, AG(batch_max_rows), 1, 100000, NULL},
    {"batch_max_delay_ms", K_INT, AG(batch_max_delay_ms), 0, 60000, NULL},
    {"queue_max_events", K_INT, AG(queue_max_events), 16, 10000000, NULL},
    {"silence_window", K_DUR, AG(silence_window_ms), 1000, 7 * DAY, NULL},
    {"stream_grace", K_DUR, AG(stream_grace_ms), 1000, 7 * DAY, NULL},
    {"status_interval", K_DUR, AG(status_interval_ms), 100, 600000, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

static const struct keydef resync_keys[] = {
    {"enabled", K_BOOL, RS(enabled), 0, 0, NULL},
    {"interval", K_DUR, RS(interval_ms), 60000, 365 * DAY, NULL},
    {"fallback_after", K_DUR, RS(fallback_after_ms), 1000, 365 * DAY, NULL},
    {"page_size", K_INT, RS(page_size), 1, 10000, NULL},
    {"pages_per_second", K_DOUBLE, RS(pages_per_second), 0, 0, NULL},
    {NULL, 0, 0, 0, 0, NULL},
};

struct ctx {
    const char *name;
    toml_diag *d;
    struct cfg *c;
};

static void defaults(struct cfg *c)
{
    c->firestore.database = xstrdup("(default)");
    c->firestore.endpoint = xstrdup("https://firestore.googleapis.com");
    c->firestore.request_timeout_ms = 30000;
    c->mysql.host = xstrdup("localhost");
    c->mysql.port = 3306;
    c->mysql.user = xstrdup("firesync");
    c->mysql.tls_mode = CFG_TLS_PREFERRED;
    c->mysql.connect_timeout_ms = 10000;
    c->mysql.reconnect_min_ms = 250;
    c->mysql.reconnect_max_ms = 30000;
    c->mysql.create_tables = true;
    c->mysql.checkpoint_table = xstrdup("firesync_checkpoint");
    c->mysql.changes_table = xstrdup("firesync_changes");
    c->mysql.dead_letter_table = xstrdup("firesync_dead_letter");
    c->agent.status_file = xstrdup("/run/firesync/status.json");
    c->agent.control_socket = xstrdup("/run/firesync/control.sock");
    c->agent.log_level = xstrdup("info");
    c->agent.batch_max_rows = 500;
    c->agent.batch_max_delay_ms = 0; /* commit at once; batches form during commits */
    c->agent.queue_max_events = 20000;
    c->agent.silence_window_ms = 5 * 60 * 1000;
    c->agent.stream_grace_ms = 2 * 60 * 1000;
    c->agent.status_interval_ms = 5000;
    c->resync.enabled = true;
    c->resync.interval_ms = 6 * 3600 * 1000;
    c->resync.fallback_after_ms = 10 * 60 * 1000;
    c->resync.page_size = 500;
    c->resync.pages_per_second = 20;
}

int cfg_duration_parse(const char *s, int64_t *ms)
{
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    int64_t total = 0;
    const char *p = s;

    if (!*p)
        return FS_EINVAL;
    while (*p) {
        int64_t n = 0;
        size_t i, best = 0, bestlen = 0;
        if (!isdigit((unsigned char)*p))
            return FS_EINVAL;
        while (isdigit((unsigned char)*p)) {
            if (n > (INT64_MAX - 9) / 10)
                return FS_ERANGE;
            n = n * 10 + (*p++ - '0');
        }
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t l = strlen(units[i].u);
            if (strncmp(p, units[i].u, l) == 0 && l > bestlen && !isalpha((unsigned char)p[l])) {
                best = i;
                bestlen = l;
            }
        }
        if (!bestlen)
            return FS_EINVAL;
        if (n > (INT64_MAX - total) / units[best].ms)
            return FS_ERANGE;
        total += n * units[best].ms;
        p += bestlen;
    }
    *ms = total;
    return 0;
}

void cfg_duration_format(int64_t ms, char *out, size_t n)
{
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t o = 0;

    if (ms <= 0) {
        snprintf(out, n, "0s");
        return;
    }
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && ms > 0; i++) {
        int64_t q = ms / units[i].ms;
        if (q) {
            int w = snprintf(out + o, o < n ? n - o : 0, "%lld%s", (long long)q, units[i].u);
            if (w > 0)
                o += (size_t)w;
            ms -= q * units[i].ms;
        }
    }
}

static const char *tls_names[] = {"disabled", "preferred", "required", "verify_ca",
                                  "verify_identity"};

const char *cfg_tls_mode_name(enum cfg_tls_mode m)
{
    return (unsigned)m < sizeof(tls_names) / sizeof(tls_names[0]) ? tls_names[m] : "?";
}

bool cfg_identifier_ok(const char *s)
{
    size_t n = 0;

    if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (; s[n]; n++)
        if (!(isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '$'))
            return false;
    return n <= 64;
}

/* ---- reading one section ----------------------------------------------------------------- */

static bool want(struct ctx *x, const toml_value *v, enum toml_kind k, const char *what)
{
    if (v->kind == k)
        return true;
    toml_diag_add(x->d, v->line, v->col, "%s must be %s %s, not %s %s", what,
                  k == TOML_INT ? "an" : "a", toml_kind_name(k),
                  v->kind == TOML_INT || v->kind == TOML_ARRAY ? "an" : "a",
                  toml_kind_name(v->kind));
    return false;
}

static bool plain_string(struct ctx *x, const toml_value *v, const char *what)
{
    if (!want(x, v, TOML_STRING, what))
        return false;
    if (strlen(v->u.s.p) != v->u.s.len) {
        toml_diag_add(x->d, v->line, v->col, "%s must not contain NUL characters", what);
        return false;
    }
    return true;
}

static void set_str(char **slot, const char *s)
{
    free(*slot);
    *slot = xstrdup(s);
}

static void read_key(struct ctx *x, const struct keydef *k, const char *sect, toml_value *v)
{
    char *base = (char *)x->c;
    char what[128];
    int64_t ms;
    enum log_level lvl;

    snprintf(what, sizeof(what), "%s.%s", sect, k->name);
    v->used = true;
    switch (k->kind) {
    case K_STR:
    case K_SECRET:
        if (plain_string(x, v, what))
            set_str((char **)(base + k->off), v->u.s.p);
        break;
    case K_LOGLEVEL:
        if (!plain_string(x, v, what))
            break;
        if (log_level_parse(v->u.s.p, &lvl) != 0)
            toml_diag_add(x->d, v->line, v->col,
                          "%s: unknown level \"%s\" (use error, warn, info or debug)", what,
                          v->u.s.p);
        else
            set_str((char **)(base + k->off), v->u.s.p);
        break;
    case K_TLSMODE: {
        size_t i, n = sizeof(tls_names) / sizeof(tls_names[0]);
        if (!plain_string(x, v, what))
            break;
        for (i = 0; i < n && strcmp(tls_names[i], v->u.s.p) != 0; i++)
            ;
        if (i == n)
            toml_diag_add(x->d, v->line, v->col,
                          "%s: unknown mode \"%s\" (use disabled, preferred, required, "
                          "verify_ca or verify_identity)",
                          what, v->u.s.p);
        else
            *(enum cfg_tls_mode *)(base + k->off) = (enum cfg_tls_mode)i;
        break;
    }
    case K_INT:
        if (!want(x, v, TOML_INT, what))
            break;
        if (v->u.i < k->min || v->u.i > k->max) {
            toml_diag_add(x->d, v->line, v->col, "%s must be between %lld and %lld", what,
                          (long long)k->min, (long long)k->max);
            break;
        }
        if (k->off == MY(port))
            *(int *)(base + k->off) = (int)v->u.i;
        else
            *(int64_t *)(base + k->off) = v->u.i;
        break;
    case K_DOUBLE: {
        double d;
        if (v->kind == TOML_INT)
            d = (double)v->u.i;
        else if (want(x, v, TOML_FLOAT, what))
            d = v->u.f;
        else
            break;
        if (!(d > 0) || isinf(d)) {
            toml_diag_add(x->d, v->line, v->col, "%s must be a positive number", what);
            break;
        }
        *(double *)(base + k->off) = d;
        break;
    }
    case K_BOOL:
        if (want(x, v, TOML_BOOL, what))
            *(bool *)(base + k->off) = v->u.b;
        break;
    case K_DUR: {
        char lo[32], hi[32];
        if (!plain_string(x, v, what))
            break;
        if (cfg_duration_parse(v->u.s.p, &ms) != 0) {
            toml_diag_add(x->d, v->line, v->col,
                          "%s: \"%s\" is not a duration (write it like \"250ms\", \"45s\", "
                          "\"10m\", \"6h\")",
                          what, v->u.s.p);
            break;
        }
        if (ms < k->min || ms > k->max) {
            cfg_duration_format(k->min, lo, sizeof(lo));
            cfg_duration_format(k->max, hi, sizeof(hi));
            toml_diag_add(x->d, v->line, v->col, "%s must be between %s and %s", what, lo, hi);
            break;
        }
        *(int64_t *)(base + k->off) = ms;
        break;
    }
    }
}

/* Reads every key of `t` listed in `keys`; `sub`, when given, names a sub-table key that the
 * caller reads itself. Anything else is an unknown key. */
static void read_section(struct ctx *x, toml_value *t, const char *sect,
                         const struct keydef *keys, const char *sub)
{
    if (!want(x, t, TOML_TABLE, sect))
        return;
    t->used = true;
    for (size_t i = 0; i < t->u.table.n; i++) {
        struct toml_kv *kv = &t->u.table.items[i];
        const struct keydef *k;
        for (k = keys; k->name && strcmp(k->name, kv->key) != 0; k++)
            ;
        if (k->name)
            read_key(x, k, sect, kv->val);
        else if (!(sub && strcmp(sub, kv->key) == 0))
            toml_diag_add(x->d, kv->line, kv->col, "unknown key '%s' in [%s]", kv->key, sect);
    }
}

/* ---- collections ------------------------------------------------------------------------- */

static int parse_coltype(const char *s, struct cfg_column *col)
{
    static const struct {
        const char *name;
        enum cfg_coltype t;
        int nparams; /* 0 none, 1 (n), 2 (p,s), -1 the literal (6) */
    } types[] = {
        {"VARCHAR", CFG_COL_VARCHAR, 1},   {"TEXT", CFG_COL_TEXT, 0},
        {"BIGINT", CFG_COL_BIGINT, 0},     {"INT", CFG_COL_INT, 0},
        {"DOUBLE", CFG_COL_DOUBLE, 0},     {"DECIMAL", CFG_COL_DECIMAL, 2},
        {"BOOLEAN", CFG_COL_BOOLEAN, 0},   {"DATETIME", CFG_COL_DATETIME, -1},
        {"DATE", CFG_COL_DATE, 0},         {"JSON", CFG_COL_JSON, 0},
        {"VARBINARY", CFG_COL_VARBINARY, 1},
    };
    char name[16];
    size_t n = 0;
    int a = 0, b = 0, got = 0;
    const char *p = s;

    while (isalpha((unsigned char)*p) && n < sizeof(name) - 1)
        name[n++] = (char)toupper((unsigned char)*p++);
    name[n] = '\0';
    if (*p == '(') {
        char close = 0;
        int used = 0;
        if (sscanf(p, "(%d,%d%c%n", &a, &b, &close, &used) == 3 && close == ')')
            got = 2;
        else if (sscanf(p, "(%d%c%n", &a, &close, &used) == 2 && close == ')')
            got = 1;
        else
            return -1;
        p += used;
    }
    if (*p)
        return -1;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(types[i].name, name) != 0)
            continue;
        col->type = types[i].t;
        if (types[i].nparams == -1)
            return (got == 1 && a == 6) ? 0 : -1;
        if (types[i].nparams != got)
            return -1;
        if (got == 1 && (a < 1 || a > 65535))
            return -1;
        if (got == 2 && (a < 1 || a > 65 || b < 0 || b > 30 || b > a))
            return -1;
        col->len = a;
        col->scale = b;
        return 0;
    }
    return -1;
}

static const char *reserved_columns[] = {"fs_create_time", "fs_update_time", "deleted_at",
                                         "synced_at", "fs_delete_time", NULL};

static void read_column(struct ctx *x, struct cfg_collection *cl, struct toml_kv *kv, int idx)
{
    struct cfg_column *col = &cl->columns[cl->ncolumns];
    toml_value *t = kv->val, *f, *ty;
    char what[160];

    snprintf(what, sizeof(what), "collections[%d].columns.%s", idx, kv->key);
    memset(col, 0, sizeof(*col));
    col->line = kv->line;
    col->col = kv->col;
    if (!cfg_identifier_ok(kv->key)) {
        toml_diag_add(x->d, kv->line, kv->col,
                      "column name '%s' is not a plain SQL identifier (letters, digits, _; at "
                      "most 64)",
                      kv->key);
        return;
    }
    for (const char **r = reserved_columns; *r; r++)
        if (strcasecmp(*r, kv->key) == 0) {
            toml_diag_add(x->d, kv->line, kv->col,
                          "column name '%s' is reserved for firesync's bookkeeping", kv->key);
            return;
        }
    if (!want(x, t, TOML_TABLE, what))
        return;
    t->used = true;
    for (size_t i = 0; i < t->u.table.n; i++) {
        struct toml_kv *m = &t->u.table.items[i];
        if (strcmp(m->key, "field") != 0 && strcmp(m->key, "type") != 0)
            toml_diag_add(x->d, m->line, m->col, "unknown key '%s' in %s (use field and type)",
                          m->key, what);
    }
    f = toml_get(t, "field");
    ty = toml_get(t, "type");
    if (!f || !ty) {
        toml_diag_add(x->d, t->line, t->col, "%s needs both field and type", what);
        return;
    }
    f->used = ty->used = true;
    if (!plain_string(x, f, what) || !plain_string(x, ty, what))
        return;
    if (!f->u.s.len) {
        toml_diag_add(x->d, f->line, f->col, "%s: field must not be empty", what);
        return;
    }
    if (parse_coltype(ty->u.s.p, col) != 0) {
        toml_diag_add(x->d, ty->line, ty->col,
                      "%s: unknown or malformed type \"%s\" (use VARCHAR(n), TEXT, BIGINT, INT, "
                      "DOUBLE, DECIMAL(p,s), BOOLEAN, DATETIME(6), DATE, JSON or VARBINARY(n))",
                      what, ty->u.s.p);
        return;
    }
    for (size_t i = 0; i < cl->ncolumns; i++)
        if (strcasecmp(cl->columns[i].name, kv->key) == 0) {
            toml_diag_add(x->d, kv->line, kv->col, "column '%s' mapped twice", kv->key);
            return;
        }
    col->name = xstrdup(kv->key);
    col->field = xstrdup(f->u.s.p);
    cl->ncolumns++;
}

/* "employees", "users/x/orders" (a fixed subcollection) or "users/ * /orders" (a pattern). */
static bool path_ok(const char *p, bool *group)
{
    size_t seg = 0;
    const char *s = p;

    *group = false;
    if (!*p || *p == '/')
        return false;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || n > 1500)
            return false;
        if (n == 1 && *s == '*') {
            if (seg % 2 == 0) /* collection ids must be named */
                return false;
            *group = true;
        } else if (memchr(s, '*', n) || (n == 1 && *s == '.') || (n == 2 && !strncmp(s, "..", 2))) {
            return false;
        }
        seg++;
        s += n;
        if (*s == '/') {
            s++;
            if (!*s)
                return false;
        }
    }
    return seg % 2 == 1; /* a collection path has an odd number of segments */
}

static void read_collection(struct ctx *x, toml_value *t, int idx)
{
    struct cfg_collection *cl = &x->c->collections[x->c->ncollections];
    char what[64];
    toml_value *v;

    snprintf(what, sizeof(what), "collections[%d]", idx);
    memset(cl, 0, sizeof(*cl));
    cl->line = t->line;
    cl->col = t->col;
    cl->extra_column = xstrdup("extra");
    x->c->ncollections++;
    if (!want(x, t, TOML_TABLE, what))
        return;
    t->used = true;
    for (size_t i = 0; i < t->u.table.n; i++) {
        struct toml_kv *kv = &t->u.table.items[i];
        toml_value *val = kv->val;
        val->used = true;
        if (strcmp(kv->key, "path") == 0) {
            if (plain_string(x, val, "collections.path")) {
                if (!path_ok(val->u.s.p, &cl->is_group))
                    toml_diag_add(x->d, val->line, val->col,
                                  "collections.path \"%s\" is not a collection path (like "
                                  "\"employees\", \"shops/s1/items\" or \"users/*/orders\")",
                                  val->u.s.p);
                else
                    set_str(&cl->path, val->u.s.p);
            }
        } else if (strcmp(kv->key, "table") == 0) {
            if (plain_string(x, val, "collections.table")) {
                if (!cfg_identifier_ok(val->u.s.p))
                    toml_diag_add(x->d, val->line, val->col,
                                  "collections.table \"%s\" is not a plain SQL identifier "
                                  "(letters, digits, _; at most 64)",
                                  val->u.s.p);
                else
                    set_str(&cl->table, val->u.s.p);
            }
        } else if (strcmp(kv->key, "key") == 0) {
            if (!plain_string(x, val, "collections.key"))
                continue;
            if (strcmp(val->u.s.p, "id") == 0)
                cl->key = CFG_KEY_ID;
            else if (strcmp(val->u.s.p, "path") == 0)
                cl->key = CFG_KEY_PATH;
            else
                toml_diag_add(x->d, val->line, val->col,
                              "collections.key must be \"id\" or \"path\", not \"%s\"",
                              val->u.s.p);
        } else if (strcmp(kv->key, "extra_column") == 0) {
            if (!plain_string(x, val, "collections.extra_column"))
                continue;
            free(cl->extra_column);
            cl->extra_column = NULL;
            if (val->u.s.len && !cfg_identifier_ok(val->u.s.p))
                toml_diag_add(x->d, val->line, val->col,
                              "collections.extra_column \"%s\" is not a plain SQL identifier",
                              val->u.s.p);
            else if (val->u.s.len)
                cl->extra_column = xstrdup(val->u.s.p);
        } else if (strcmp(kv->key, "history") == 0) {
            if (want(x, val, TOML_BOOL, "collections.history"))
                cl->history = val->u.b;
        } else if (strcmp(kv->key, "columns") == 0) {
            if (!want(x, val, TOML_TABLE, "collections.columns"))
                continue;
            cl->columns = xcalloc(val->u.table.n ? val->u.table.n : 1, sizeof(*cl->columns));
            for (size_t j = 0; j < val->u.table.n; j++)
                read_column(x, cl, &val->u.table.items[j], idx);
        } else {
            toml_diag_add(x->d, kv->line, kv->col,
                          "unknown key '%s' in [[collections]] (use path, table, key, "
                          "extra_column, history, columns)",
                          kv->key);
        }
    }
    if (!toml_get(t, "path"))
        toml_diag_add(x->d, t->line, t->col, "%s: missing required key 'path'", what);
    if (!toml_get(t, "table"))
        toml_diag_add(x->d, t->line, t->col, "%s: missing required key 'table'", what);
    v = toml_get(t, "key");
    if (!v && cl->is_group)
        cl->key = CFG_KEY_PATH;
    if (v && cl->is_group && cl->key == CFG_KEY_ID)
        toml_diag_add(x->d, v->line, v->col,
                      "collections.key = \"id\" is ambiguous for the pattern \"%s\": documents "
                      "of different parents can share an id; use \"path\"",
                      cl->path ? cl->path : "");
    if (cl->extra_column)
        for (size_t j = 0; j < cl->ncolumns; j++)
            if (strcasecmp(cl->columns[j].name, cl->extra_column) == 0)
                toml_diag_add(x->d, cl->columns[j].line, cl->columns[j].col,
                              "column '%s' is also the extra_column", cl->extra_column);
}

static void read_collections(struct ctx *x, toml_value *arr)
{
    if (!want(x, arr, TOML_ARRAY, "collections"))
        return;
    arr->used = true;
    x->c->collections = xcalloc(arr->u.array.n ? arr->u.array.n : 1, sizeof(*x->c->collections));
    for (size_t i = 0; i < arr->u.array.n; i++)
        read_collection(x, arr->u.array.items[i], (int)i);
    for (size_t i = 0; i < x->c->ncollections; i++)
        for (size_t j = 0; j < i; j++) {
            struct cfg_collection *a = &x->c->collections[i], *b = &x->c->collections[j];
            if (a->table && b->table && strcasecmp(a->table, b->table) == 0)
                toml_diag_add(x->d, a->line, a->col, "table '%s' is used by two collections",
                              a->table);
            if (a->path && b->path && strcmp(a->path, b->path) == 0)
                toml_diag_add(x->d, a->line, a->col, "collection \"%s\" is mapped twice",
                              a->path);
        }
}

/* ---- whole file -------------------------------------------------------------------------- */

static void check_required(struct ctx *x, toml_value *root)
{
    struct cfg *c = x->c;
    toml_value *fs = toml_get(root, "firestore"), *my = toml_get(root, "mysql");
    const char *names[] = {c->mysql.checkpoint_table, c->mysql.changes_table,
                           c->mysql.dead_letter_table};

    if (!toml_get(fs, "project_id"))
        toml_diag_add(x->d, fs ? fs->line : 1, fs ? fs->col : 1,
                      "missing required key 'project_id' in [firestore]");
    if (!toml_get(my, "database"))
        toml_diag_add(x->d, my ? my->line : 1, my ? my->col : 1,
                      "missing required key 'database' in [mysql]");
    if (c->mysql.password && c->mysql.password_file)
        toml_diag_add(x->d, my ? my->line : 1, my ? my->col : 1,
                      "[mysql] sets both password and password_file; keep one");
    if (c->mysql.reconnect_min_ms > c->mysql.reconnect_max_ms)
        toml_diag_add(x->d, my ? my->line : 1, my ? my->col : 1,
                      "mysql.reconnect_min is larger than mysql.reconnect_max");
    if ((c->mysql.tls_mode == CFG_TLS_VERIFY_CA || c->mysql.tls_mode == CFG_TLS_VERIFY_IDENTITY) &&
        !c->mysql.tls_ca)
        toml_diag_add(x->d, my ? my->line : 1, my ? my->col : 1,
                      "mysql.tls.mode = \"%s\" needs mysql.tls.ca", cfg_tls_mode_name(c->mysql.tls_mode));
    for (size_t i = 0; i < 3; i++)
        if (!cfg_identifier_ok(names[i]))
            toml_diag_add(x->d, my ? my->line : 1, my ? my->col : 1,
                          "[mysql] table name \"%s\" is not a plain SQL identifier", names[i]);
    if (c->firestore.emulator_host && !strchr(c->firestore.emulator_host, ':'))
        toml_diag_add(x->d, fs ? fs->line : 1, fs ? fs->col : 1,
                      "firestore.emulator_host \"%s\" must be host:port", c->firestore.emulator_host);
    else if (c->firestore.emulator_host && !fsauth_host_is_loopback(c->firestore.emulator_host)) {
        /* the emulator speaks plain HTTP: refused here rather than at startup */
        toml_value *v = toml_get(fs, "emulator_host");
        toml_diag_add(x->d, v ? v->line : 1, v ? v->col : 1,
                      "firestore.emulator_host \"%s\" is not a loopback host (the emulator "
                      "speaks plain HTTP)",
                      c->firestore.emulator_host);
    }
    if (strncmp(c->firestore.endpoint, "https://", 8) != 0 &&
        strncmp(c->firestore.endpoint, "http://", 7) != 0) {
        toml_diag_add(x->d, fs ? fs->line : 1, fs ? fs->col : 1,
                      "firestore.endpoint \"%s\" must be an http(s) URL", c->firestore.endpoint);
    } else {
        fserr ue = {0};
        toml_value *v = toml_get(fs, "endpoint");
        if (http_check_url(c->firestore.endpoint, &ue) != 0)
            toml_diag_add(x->d, v ? v->line : 1, v ? v->col : 1, "firestore.endpoint: %s",
                          ue.msg);
    }
}

static void apply_env(struct cfg *c)
{
    const char *h = getenv("FIRESTORE_EMULATOR_HOST");
    const char *k = getenv("GOOGLE_APPLICATION_CREDENTIALS");

    if (c->firestore.emulator_host || c->firestore.credentials_file)
        return; /* the file said how to reach Firestore */
    if (h && *h)
        c->firestore.emulator_host = xstrdup(h);
    else if (k && *k)
        c->firestore.credentials_file = xstrdup(k);
}

static void format_diag(const char *name, toml_diag *d, buf *errors)
{
    toml_diag_sort(d);
    for (size_t i = 0; errors && i < d->n; i++)
        buf_printf(errors, "%s:%d:%d: %s\n", name, d->items[i].line, d->items[i].col,
                   d->items[i].msg);
}

int cfg_load_mem(const char *name, const char *src, size_t len, struct cfg **out, buf *errors,
                 fserr *e)
{
    toml_diag d;
    toml_value *root = NULL;
    struct cfg *c = xcalloc(1, sizeof(*c));
    struct ctx x = {name, &d, c};
    static const char *top[] = {"firestore", "mysql", "agent", "resync", "collections", NULL};
    toml_value *v;
    int rc = 0;

    *out = NULL;
    toml_diag_init(&d);
    c->source = xstrdup(name);
    defaults(c);
    toml_parse(src, len, &root, &d);
    if ((v = toml_get(root, "firestore")))
        read_section(&x, v, "firestore", firestore_keys, NULL);
    if ((v = toml_get(root, "mysql"))) {
        read_section(&x, v, "mysql", mysql_keys, "tls");
        if (v->kind == TOML_TABLE && (v = toml_get(v, "tls")))
            read_section(&x, v, "mysql.tls", tls_keys, NULL);
    }
    if ((v = toml_get(root, "agent")))
        read_section(&x, v, "agent", agent_keys, NULL);
    if ((v = toml_get(root, "resync")))
        read_section(&x, v, "resync", resync_keys, NULL);
    if ((v = toml_get(root, "collections")))
        read_collections(&x, v);
    for (size_t i = 0; root && i < root->u.table.n; i++) {
        struct toml_kv *kv = &root->u.table.items[i];
        const char **t;
        for (t = top; *t && strcmp(*t, kv->key) != 0; t++)
            ;
        if (!*t)
            toml_diag_add(&d, kv->line, kv->col,
                          "unknown %s '%s' (sections are [firestore], [mysql], [agent], "
                          "[resync] and [[collections]])",
                          kv->val->kind == TOML_TABLE ? "section" : "key", kv->key);
    }
    check_required(&x, root);
    apply_env(c);
    if (d.n) {
        format_diag(name, &d, errors);
        rc = fserr_set(e, FS_ECONFIG, "%s: %zu error%s in the configuration", name, d.n,
                       d.n == 1 ? "" : "s");
        cfg_free(c);
    } else {
        *out = c;
    }
    toml_free(root);
    toml_diag_release(&d);
    return rc;
}

int cfg_load_file(const char *path, struct cfg **out, buf *errors, fserr *e)
{
    FILE *f = fopen(path, "rb");
    buf b;
    char chunk[8192];
    size_t n;
    int rc = 0;

    *out = NULL;
    if (!f)
        return fserr_set(e, errno == ENOENT ? FS_ENOTFOUND : FS_EIO, "%s: %s", path,
                         strerror(errno));
    buf_init(&b, MAX_CONFIG_BYTES);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (buf_add(&b, chunk, n) != 0) {
            rc = fserr_set(e, FS_ETOOBIG, "%s: larger than %u bytes", path, MAX_CONFIG_BYTES);
            break;
        }
    }
    if (!rc && ferror(f))
        rc = fserr_set(e, FS_EIO, "%s: read error", path);
    fclose(f);
    if (!rc)
        rc = cfg_load_mem(path, buf_str(&b), b.len, out, errors, e);
    buf_release(&b);
    return rc;
}

void cfg_free(struct cfg *c)
{
    if (!c)
        return;
    char **strs[] = {
        &c->source,           &c->firestore.project_id,    &c->firestore.database,
        &c->firestore.emulator_host, &c->firestore.credentials_file, &c->firestore.endpoint,
        &c->mysql.host,       &c->mysql.socket,            &c->mysql.user,
        &c->mysql.password,   &c->mysql.password_file,     &c->mysql.defaults_file,
        &c->mysql.database,   &c->mysql.tls_ca,            &c->mysql.tls_cert,
        &c->mysql.tls_key,    &c->mysql.checkpoint_table,  &c->mysql.changes_table,
        &c->mysql.dead_letter_table, &c->agent.status_file, &c->agent.metrics_file,
        &c->agent.control_socket, &c->agent.log_level,
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        free(*strs[i]);
    for (size_t i = 0; i < c->ncollections; i++) {
        struct cfg_collection *cl = &c->collections[i];
        for (size_t j = 0; j < cl->ncolumns; j++) {
            free(cl->columns[j].name);
            free(cl->columns[j].field);
        }
        free(cl->columns);
        free(cl->path);
        free(cl->table);
        free(cl->extra_column);
    }
    free(c->collections);
    free(c);
}

/* ---- printing ---------------------------------------------------------------------------- */

static void print_string(buf *out, const char *s)
{
    buf_addc(out, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            buf_printf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            buf_printf(out, "\\u%04x", ch);
        else
            buf_addc(out, (char)ch);
    }
    buf_addc(out, '"');
}

static void print_section(buf *out, const struct cfg *c, const char *sect,
                          const struct keydef *keys)
{
    const char *base = (const char *)c;
    char d[32];

    buf_printf(out, "\n[%s]\n", sect);
    for (const struct keydef *k = keys; k->name; k++) {
        const void *p = base + k->off;
        switch (k->kind) {
        case K_STR:
        case K_LOGLEVEL:
            if (!*(char *const *)p) {
                buf_printf(out, "# %s is not set\n", k->name);
                continue;
            }
            buf_printf(out, "%s = ", k->name);
            print_string(out, *(char *const *)p);
            break;
        case K_SECRET:
            if (!*(char *const *)p) {
                buf_printf(out, "# %s is not set\n", k->name);
                continue;
            }
            buf_printf(out, "%s = \"[redacted]\"", k->name);
            break;
        case K_TLSMODE:
            buf_printf(out, "%s = \"%s\"", k->name, cfg_tls_mode_name(*(const enum cfg_tls_mode *)p));
            break;
        case K_INT:
            if (k->off == MY(port))
                buf_printf(out, "%s = %d", k->name, *(const int *)p);
            else
                buf_printf(out, "%s = %lld", k->name, (long long)*(const int64_t *)p);
            break;
        case K_DOUBLE:
            buf_printf(out, "%s = %g", k->name, *(const double *)p);
            if (*(const double *)p == floor(*(const double *)p))
                buf_adds(out, ".0");
            break;
        case K_BOOL:
            buf_printf(out, "%s = %s", k->name, *(const bool *)p ? "true" : "false");
            break;
        case K_DUR:
            cfg_duration_format(*(const int64_t *)p, d, sizeof(d));
            buf_printf(out, "%s = \"%s\"", k->name, d);
            break;
        }
        buf_addc(out, '\n');
    }
}

void cfg_coltype_format(const struct cfg_column *col, char *out, size_t n)
{
    static const char *names[] = {"VARCHAR", "TEXT", "BIGINT",   "INT",  "DOUBLE",   "DECIMAL",
                                  "BOOLEAN", "DATETIME", "DATE", "JSON", "VARBINARY"};
    const char *nm = names[col->type];

    switch (col->type) {
    case CFG_COL_VARCHAR:
    case CFG_COL_VARBINARY:
        snprintf(out, n, "%s(%d)", nm, col->len);
        break;
    case CFG_COL_DECIMAL:
        snprintf(out, n, "%s(%d,%d)", nm, col->len, col->scale);
        break;
    case CFG_COL_DATETIME:
        snprintf(out, n, "%s(6)", nm);
        break;
    default:
        snprintf(out, n, "%s", nm);
    }
}

int cfg_print(const struct cfg *c, buf *out)
{
    char ty[32];

    buf_printf(out, "# effective configuration from %s (defaults filled in, secrets redacted)\n",
               c->source);
    print_section(out, c, "firestore", firestore_keys);
    print_section(out, c, "mysql", mysql_keys);
    print_section(out, c, "mysql.tls", tls_keys);
    print_section(out, c, "agent", agent_keys);
    print_section(out, c, "resync", resync_keys);
    for (size_t i = 0; i < c->ncollections; i++) {
        const struct cfg_collection *cl = &c->collections[i];
        buf_adds(out, "\n[[collections]]\npath = ");
        print_string(out, cl->path);
        buf_adds(out, "\ntable = ");
        print_string(out, cl->table);
        buf_printf(out, "\nkey = \"%s\"\nextra_column = ", cl->key == CFG_KEY_ID ? "id" : "path");
        print_string(out, cl->extra_column ? cl->extra_column : "");
        buf_printf(out, "\nhistory = %s\n", cl->history ? "true" : "false");
        if (cl->ncolumns)
            buf_adds(out, "[collections.columns]\n");
        for (size_t j = 0; j < cl->ncolumns; j++) {
            cfg_coltype_format(&cl->columns[j], ty, sizeof(ty));
            buf_printf(out, "%s = { field = ", cl->columns[j].name);
            print_string(out, cl->columns[j].field);
            buf_printf(out, ", type = \"%s\" }\n", ty);
        }
    }
    return 0;
}
