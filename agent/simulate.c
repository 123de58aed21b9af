/*
 * simulate.c - made-up changes pushed through the real pipeline, for testing: `firesync
 * simulate-change` (over the control socket) and `firesync run --simulate-change FILE`.
 *
 * A simulated change becomes a document version exactly like one from the stream (name,
 * create and update time = now, fields from plain JSON) and goes through the same diff and sink,
 * tagged "simulated" in the counters and the change history. It never touches Firestore. Its
 * update time is the wall clock, so a later real change of the same document wins by update
 * time, and an older one loses.
 *
 * Plain JSON maps onto Firestore values the way `firesync tail` prints them: strings, booleans,
 * null, numbers (integers when written without fraction or exponent and within int64, else
 * doubles), arrays, objects as maps, and {"$timestamp":"RFC 3339"}, {"$bytes":"base64"},
 * {"$reference":"name"}, {"$geo":{"latitude":..,"longitude":..}}, {"$double":"NaN"} for the
 * types JSON lacks. Owns nothing beyond each call.
 */
#include "agent/internal.h"

#include "common/base64.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "diff/convert.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int from_json(const cJSON *j, fsval *out, const char *path, int depth, fserr *e);

static int cmp_field(const void *a, const void *b)
{
    const struct fsval_field *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

static int special(const cJSON *j, fsval *out, const char *path, fserr *e)
{
    const cJSON *k = j->child;
    buf b;

    if (strcmp(k->string, "$timestamp") == 0 && cJSON_IsString(k)) {
        out->type = FSVAL_TIMESTAMP;
        return fsval_time_parse(k->valuestring, strlen(k->valuestring), &out->u.ts, e);
    }
    if ((strcmp(k->string, "$bytes") == 0 || strcmp(k->string, "$reference") == 0) &&
        cJSON_IsString(k)) {
        buf_init(&b, 0);
        if (k->string[1] == 'b') {
            if (base64_decode(BASE64_STD, k->valuestring, strlen(k->valuestring), &b) != 0) {
                buf_release(&b);
                return fserr_set(e, FS_EPARSE, "%s: $bytes is not base64", path);
            }
            out->type = FSVAL_BYTES;
        } else {
            buf_adds(&b, k->valuestring);
            out->type = FSVAL_REFERENCE;
        }
        out->u.s.len = b.len;
        out->u.s.p = buf_take(&b);
        return 0;
    }
    if (strcmp(k->string, "$double") == 0 && cJSON_IsString(k)) {
        out->type = FSVAL_DOUBLE;
        if (strcmp(k->valuestring, "NaN") == 0)
            out->u.d = NAN;
        else if (strcmp(k->valuestring, "Infinity") == 0)
            out->u.d = INFINITY;
        else if (strcmp(k->valuestring, "-Infinity") == 0)
            out->u.d = -INFINITY;
        else
            return fserr_set(e, FS_EPARSE, "%s: $double must be NaN, Infinity or -Infinity", path);
        return 0;
    }
    if (strcmp(k->string, "$geo") == 0 && cJSON_IsObject(k)) {
        const cJSON *la = cJSON_GetObjectItemCaseSensitive(k, "latitude");
        const cJSON *lo = cJSON_GetObjectItemCaseSensitive(k, "longitude");
        out->type = FSVAL_GEO;
        out->u.geo.lat = cJSON_IsNumber(la) ? la->valuedouble : 0;
        out->u.geo.lng = cJSON_IsNumber(lo) ? lo->valuedouble : 0;
        return 0;
    }
    return 1; /* an ordinary map that happens to have one member */
}

static int map_from_json(const cJSON *j, fsval *out, const char *path, int depth, fserr *e)
{
    size_t n = (size_t)cJSON_GetArraySize(j), i = 0;
    const cJSON *c;
    int rc;

    out->type = FSVAL_MAP;
    out->u.map.fields = xcalloc(n ? n : 1, sizeof(*out->u.map.fields));
    out->u.map.n = 0;
    cJSON_ArrayForEach(c, j)
    {
        struct fsval_field *f = &out->u.map.fields[i++];
        char sub[512];
        f->name = xstrdup(c->string);
        f->name_len = strlen(c->string);
        out->u.map.n = i;
        snprintf(sub, sizeof(sub), "%s.%s", path, c->string);
        rc = from_json(c, &f->v, sub, depth + 1, e);
        if (rc)
            return rc;
    }
    qsort(out->u.map.fields, out->u.map.n, sizeof(*out->u.map.fields), cmp_field);
    for (i = 1; i < out->u.map.n; i++)
        if (cmp_field(&out->u.map.fields[i - 1], &out->u.map.fields[i]) == 0)
            return fserr_set(e, FS_EPARSE, "%s: field \"%s\" appears twice", path,
                             out->u.map.fields[i].name);
    return 0;
}

static int from_json(const cJSON *j, fsval *out, const char *path, int depth, fserr *e)
{
    fsval_init(out);
    if (depth > FSVAL_MAX_DEPTH)
        return fserr_set(e, FS_ETOOBIG, "%s: nested too deeply", path);
    if (cJSON_IsNull(j))
        return 0;
    if (cJSON_IsBool(j)) {
        out->type = FSVAL_BOOL;
        out->u.b = cJSON_IsTrue(j);
        return 0;
    }
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0) {
            out->type = FSVAL_INT;
            out->u.i = (int64_t)d;
        } else {
            out->type = FSVAL_DOUBLE;
            out->u.d = d;
        }
        return 0;
    }
    if (cJSON_IsString(j)) {
        out->type = FSVAL_STRING;
        out->u.s.len = strlen(j->valuestring);
        out->u.s.p = xstrdup(j->valuestring);
        return 0;
    }
    if (cJSON_IsArray(j)) {
        size_t n = (size_t)cJSON_GetArraySize(j), i = 0;
        const cJSON *c;
        out->type = FSVAL_ARRAY;
        out->u.arr.items = xcalloc(n ? n : 1, sizeof(*out->u.arr.items));
        cJSON_ArrayForEach(c, j)
        {
            int rc = from_json(c, &out->u.arr.items[i], path, depth + 1, e);
            out->u.arr.n = ++i;
            if (rc)
                return rc;
        }
        return 0;
    }
    if (cJSON_GetArraySize(j) == 1 && j->child->string[0] == '$') {
        int rc = special(j, out, path, e);
        if (rc <= 0)
            return rc;
    }
    return map_from_json(j, out, path, depth, e);
}

static int find_collection(struct agent *a, const char *path)
{
    for (size_t i = 0; i < a->cfg->ncollections; i++)
        if (strcmp(a->cfg->collections[i].path, path) == 0)
            return (int)i;
    return -1;
}

int agent_simulate(struct agent *a, const char *collection, const char *doc, const char *type,
                   const char *data, fserr *e)
{
    int coll = find_collection(a, collection), rc = 0;
    const struct cfg_collection *cc;
    int64_t now = agent_now_us();
    struct fs_time t = {now / 1000000, (int32_t)(now % 1000000) * 1000};
    char *name;
    cJSON *j = NULL;
    struct fsdoc d;

    if (coll < 0)
        return fserr_set(e, FS_ENOTFOUND, "collection \"%s\" is not configured", collection);
    cc = &a->cfg->collections[coll];
    if (!doc || !*doc || (!cc->is_group && strchr(doc, '/')))
        return fserr_set(e, FS_EINVAL, "--doc must be a document id%s",
                         cc->is_group ? " or, for a pattern, the document's path" : "");
    name = cc->is_group ? xasprintf("projects/%s/databases/%s/documents/%s",
                                    a->cfg->firestore.project_id, a->cfg->firestore.database, doc)
                        : xasprintf("projects/%s/databases/%s/documents/%s/%s",
                                    a->cfg->firestore.project_id, a->cfg->firestore.database,
                                    cc->path, doc);
    if (strcmp(type, "DELETE") == 0) {
        a->colls[coll].last_event_us = now;
        rc = diff_remove(a->diff, coll, name, strlen(name), t, SINK_SRC_SIMULATED, e);
        goto out;
    }
    if (strcmp(type, "CREATE") != 0 && strcmp(type, "UPDATE") != 0) {
        rc = fserr_set(e, FS_EINVAL, "--type must be CREATE, UPDATE or DELETE, not \"%s\"", type);
        goto out;
    }
    j = cJSON_Parse(data && *data ? data : "{}");
    if (!j || !cJSON_IsObject(j)) {
        rc = fserr_set(e, FS_EPARSE, "--data must be a JSON object");
        goto out;
    }
    fsdoc_init(&d);
    rc = from_json(j, &d.fields, "data", 0, e);
    if (!rc && d.fields.type != FSVAL_MAP) /* a one-member {"$...": } object */
        rc = fserr_set(e, FS_EPARSE, "--data must be a JSON object of fields");
    if (rc) {
        fsdoc_release(&d);
        goto out;
    }
    d.name = xstrdup(name);
    d.create_time = d.update_time = t;
    a->colls[coll].last_event_us = now;
    rc = diff_upsert(a->diff, coll, &d, SINK_SRC_SIMULATED, e);
out:
    if (!rc)
        log_info("simulated %s of %s", type, name);
    cJSON_Delete(j);
    free(name);
    return rc;
}

int agent_simulate_file(struct agent *a, const char *path, fserr *e)
{
    FILE *f = fopen(path, "r");
    char line[65536];
    int lineno = 0, rc = 0;

    if (!f)
        return fserr_set(e, FS_ENOTFOUND, "--simulate-change %s: %s", path, strerror(errno));
    while (!rc && fgets(line, sizeof(line), f)) {
        cJSON *j;
        char *data;
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0' || line[0] == '#')
            continue;
        j = cJSON_Parse(line);
        const char *coll = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "collection"));
        const char *doc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "doc"));
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
        if (!j || !coll || !doc || !type) {
            rc = fserr_set(e, FS_EPARSE,
                           "%s:%d: expected {\"collection\":..., \"doc\":..., \"type\":..., "
                           "\"data\":{...}}",
                           path, lineno);
            cJSON_Delete(j);
            break;
        }
        data = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "data"));
        rc = agent_simulate(a, coll, doc, type, data, e);
        if (rc)
            fserr_prefix(e, "%s:%d", path, lineno);
        free(data);
        cJSON_Delete(j);
    }
    fclose(f);
    return rc;
}
