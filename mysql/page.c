/*
 * page.c - one resync page against MySQL, on the sink thread (see page.h).
 *
 * Owns, for one attempt, the page's documents sorted by key (to find a row's document), the
 * statements being filled (guarded upserts, soft deletes, change rows) and the outputs it writes
 * back into the page (outcomes, deleted and deferred keys, counts). Rows are read in chunks of
 * CHUNK and decided while their result set is held; each decision becomes a statement row, so
 * memory stays bounded by the page and the chunk. Every value is escaped by the server's rules
 * (mysql_real_escape_string) or written as a hex literal; numbers are checked before they are
 * written unquoted.
 *
 * Also here: the type-aware equality of a cell with MySQL's text for it, the run's summary text,
 * and reading a target's resync state back from the checkpoint table.
 */
#include "mysql/page.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "firestore/json.h"
#include "firestore/rest.h"
#include "mysql/conn.h"
#include "mysql/internal.h"

#include <cjson/cJSON.h>
#include <mysqld_error.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 1000        /* rows per SELECT of the fresh range */
#define NONE_US INT64_MIN /* a NULL time */

/* ---- the page itself ----------------------------------------------------------------------- */

struct sink_page *sink_page_new(void)
{
    return xcalloc(1, sizeof(struct sink_page));
}

void sink_page_key_set(struct sink_page_key *k, const char *p, size_t n)
{
    free(k->p);
    k->p = p ? xstrndup(p, n) : NULL;
    k->n = p ? n : 0;
}

static void keys_free(struct sink_page_key *k, size_t n)
{
    for (size_t i = 0; k && i < n; i++)
        free(k[i].p);
    free(k);
}

static void outputs_reset(struct sink_page *pg)
{
    keys_free(pg->deleted, pg->ndeleted);
    keys_free(pg->deferred, pg->ndeferred);
    pg->deleted = pg->deferred = NULL;
    pg->ndeleted = pg->ndeferred = 0;
    memset(&pg->got, 0, sizeof(pg->got));
    pg->finished_us = 0;
    for (size_t i = 0; i < pg->ndocs; i++)
        pg->docs[i].outcome = SINK_PAGE_KEEP;
}

void sink_page_free(struct sink_page *pg)
{
    if (!pg)
        return;
    outputs_reset(pg);
    for (size_t i = 0; i < pg->ndocs; i++) {
        struct sink_page_doc *d = &pg->docs[i];
        free(d->key.p);
        for (size_t k = 0; d->cells && k < d->ncells; k++)
            free(d->cells[k].p);
        free(d->cells);
        free(d->hashes);
    }
    free(pg->docs);
    keys_free(pg->recheck, pg->nrecheck);
    free(pg->lo.p);
    free(pg->hi.p);
    free(pg->f_last.p);
    free(pg->settled.p);
    free(pg->cursor.p);
    free(pg);
}

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

/* ---- equality of a cell with MySQL's text -------------------------------------------------- */

/* A decimal text without sign noise, leading or trailing zeros: "-001.500" -> "-1.5". */
static void decimal_norm(const char *p, size_t n, buf *out)
{
    size_t i = 0, int_start, dot, end = n;
    bool neg = false;

    if (i < n && (p[i] == '-' || p[i] == '+'))
        neg = p[i++] == '-';
    while (i < n && p[i] == '0')
        i++;
    int_start = i;
    for (dot = i; dot < n && p[dot] != '.'; dot++)
        ;
    if (dot < n)
        while (end > dot + 1 && p[end - 1] == '0')
            end--;
    if (end == dot + 1)
        end = dot; /* "5." */
    if (int_start == dot && end <= dot) {
        buf_addc(out, '0');
        return;
    }
    if (neg)
        buf_addc(out, '-');
    if (int_start == dot)
        buf_addc(out, '0');
    buf_add(out, p + int_start, end - int_start);
}

static bool decimal_equal(const char *a, size_t an, const char *b, size_t bn)
{
    buf x, y;
    bool eq;

    buf_init(&x, 0);
    buf_init(&y, 0);
    decimal_norm(a, an, &x);
    decimal_norm(b, bn, &y);
    eq = x.len == y.len && memcmp(buf_str(&x), buf_str(&y), x.len) == 0;
    buf_release(&x);
    buf_release(&y);
    return eq;
}

static bool double_equal(const char *a, size_t an, const char *b, size_t bn)
{
    char x[80], y[80];
    char *ex, *ey;
    double dx, dy;

    if (an >= sizeof(x) || bn >= sizeof(y))
        return false;
    memcpy(x, a, an);
    x[an] = '\0';
    memcpy(y, b, bn);
    y[bn] = '\0';
    dx = strtod(x, &ex);
    dy = strtod(y, &ey);
    return *ex == '\0' && *ey == '\0' && an && bn && dx == dy;
}

static bool time_equal(const char *a, size_t an, const char *b, size_t bn)
{
    int64_t x, y;
    return sink_time_parse(a, an, &x) == 0 && sink_time_parse(b, bn, &y) == 0 && x == y;
}

/* A DATE cell ("YYYY-MM-DD") against a DATE or a wider DATETIME column's text. */
static bool date_equal(const char *my, size_t n, const char *cell, size_t cn)
{
    if (n < 10 || cn != 10 || memcmp(my, cell, 10) != 0)
        return false;
    for (size_t i = 10; i < n; i++)
        if (!(my[i] == '0' || my[i] == ' ' || my[i] == ':' || my[i] == '.'))
            return false;
    return true;
}

static bool jeq(const json_doc *a, int i, const json_doc *b, int j);

static bool jstr_equal(const json_doc *a, int i, const json_doc *b, int j)
{
    size_t an, bn;
    const char *ap = json_raw(a, i, &an), *bp = json_raw(b, j, &bn);
    buf x;
    bool eq;

    if (!(json_tok_at(a, i)->flags & JSON_F_ESCAPED) &&
        !(json_tok_at(b, j)->flags & JSON_F_ESCAPED))
        return an == bn && memcmp(ap, bp, an) == 0;
    buf_init(&x, 0);
    eq = json_str_unescape(a, i, &x, NULL) == 0 && json_str_eqn(b, j, buf_str(&x), x.len);
    buf_release(&x);
    return eq;
}

static bool jnum_equal(const json_doc *a, int i, const json_doc *b, int j)
{
    int64_t x, y;
    double dx, dy;

    bool ia = json_tok_at(a, i)->flags & JSON_F_INT, ib = json_tok_at(b, j)->flags & JSON_F_INT;

    if (ia != ib)
        return false; /* an integer and a double are different Firestore values (1 and 1.0) */
    if (ia && json_int64(a, i, &x, NULL) == 0 && json_int64(b, j, &y, NULL) == 0)
        return x == y;
    return json_double(a, i, &dx, NULL) == 0 && json_double(b, j, &dy, NULL) == 0 && dx == dy;
}

static bool jobj_equal(const json_doc *a, int i, const json_doc *b, int j)
{
    buf k;
    bool eq = true;

    if (json_tok_at(a, i)->count != json_tok_at(b, j)->count)
        return false;
    buf_init(&k, 0);
    for (int m = json_child(a, i); m >= 0 && eq; m = json_sibling(a, i, m)) {
        int v;
        buf_reset(&k);
        if (json_str_unescape(a, m, &k, NULL) != 0)
            eq = false;
        else if ((v = json_obj_getn(b, j, buf_str(&k), k.len)) == JSON_NONE)
            eq = false;
        else
            eq = jeq(a, m + 1, b, v);
    }
    buf_release(&k);
    return eq;
}

/* Semantic JSON equality: objects as sets of members, numbers by value. */
static bool jeq(const json_doc *a, int i, const json_doc *b, int j)
{
    int t = json_type_of(a, i);

    if (t != json_type_of(b, j))
        return false;
    switch (t) {
    case JSON_OBJECT:
        return jobj_equal(a, i, b, j);
    case JSON_ARRAY: {
        int x = json_child(a, i), y = json_child(b, j);
        if (json_tok_at(a, i)->count != json_tok_at(b, j)->count)
            return false;
        for (; x >= 0 && y >= 0; x = json_sibling(a, i, x), y = json_sibling(b, j, y))
            if (!jeq(a, x, b, y))
                return false;
        return x < 0 && y < 0;
    }
    case JSON_STRING:
        return jstr_equal(a, i, b, j);
    case JSON_NUMBER:
        return jnum_equal(a, i, b, j);
    default:
        return true;
    }
}

static bool json_equal(const char *a, size_t an, const char *b, size_t bn)
{
    json_doc x, y;
    bool eq;

    if (an == bn && memcmp(a, b, an) == 0)
        return true; /* MariaDB keeps the text as written */
    json_doc_init(&x);
    json_doc_init(&y);
    eq = json_parse(&x, a, an, NULL) == 0 && json_parse(&y, b, bn, NULL) == 0 && jeq(&x, 0, &y, 0);
    json_doc_release(&x);
    json_doc_release(&y);
    return eq;
}

bool sink_page_cell_equal(int type, const char *mysql, size_t n, bool null,
                          const struct sink_cell *c)
{
    if (null || !mysql || c->kind == SINK_CELL_NULL)
        return (null || !mysql) && c->kind == SINK_CELL_NULL;
    switch (type) {
    case CFG_COL_DOUBLE:
        return double_equal(mysql, n, c->p, c->len);
    case CFG_COL_DECIMAL:
        return decimal_equal(mysql, n, c->p, c->len);
    case CFG_COL_DATETIME:
        return time_equal(mysql, n, c->p, c->len);
    case CFG_COL_DATE:
        return date_equal(mysql, n, c->p, c->len);
    case CFG_COL_JSON:
        return json_equal(mysql, n, c->p, c->len);
    default: /* text and binary byte for byte; integers and booleans in MySQL's plain form */
        return n == c->len && memcmp(mysql, c->p, n) == 0;
    }
}

/* ---- statements ---------------------------------------------------------------------------- */

enum skind { ST_UPSERT, ST_DELETE, ST_HISTORY, ST_OTHER };

struct stmt {
    enum skind kind;
    buf sql;
    size_t head_len, tail_len; /* tail: kept apart, appended on flush */
    buf tail;
    size_t nrows, expect_ins;
    long only; /* the document of a one-row upsert, -1 */
};

/* One attempt at one page. */
struct pass {
    struct sink_page_ctx *c;
    struct sink_page *pg;
    const struct cfg_collection *cl;
    size_t nc;
    size_t *order; /* document indices sorted by key */
    bool *found;
    char rt[SINK_TIME_LEN];
    struct stmt up, del, hist;
    struct sink_esc esc; /* escaping scratch */
};


static int add_time(buf *b, int64_t us)
{
    char t[SINK_TIME_LEN];

    if (!us || sink_time_format(us, t) != 0)
        return buf_adds(b, "NULL");
    return buf_printf(b, "'%s'", t);
}



static void stmt_init(struct stmt *st, enum skind kind)
{
    memset(st, 0, sizeof(*st));
    st->kind = kind;
    st->only = -1;
    buf_init(&st->sql, 0);
    buf_init(&st->tail, 0);
}

static void stmt_release(struct stmt *st)
{
    buf_release(&st->sql);
    buf_release(&st->tail);
}

static int query(struct pass *ps, const char *sql, size_t n, const char *what, fserr *e)
{
    int rc;

    if (mysql_real_query(ps->c->m, sql, (unsigned long)n) == 0)
        return 0;
    ps->c->errnum = mysql_errno(ps->c->m);
    rc = sink_conn_error(ps->c->m, what, e);
    return rc ? rc : fserr_set(e, FS_EMYSQL, "%s failed", what);
}

/* Adds the server's report of an upsert or soft-delete statement to the page's counts. */
static void account(struct pass *ps, struct stmt *st)
{
    unsigned long long rec = 0, dups = 0, aff = mysql_affected_rows(ps->c->m);
    const char *info = mysql_info(ps->c->m);
    struct sink_page_totals *g = &ps->pg->got;
    uint64_t ins = 0, upd = 0;

    if (aff == (unsigned long long)-1)
        return;
    if (st->kind == ST_DELETE) {
        g->soft_deleted += aff;
        g->fixed += aff;
        return;
    }
    if (info && sscanf(info, "Records: %llu Duplicates: %llu", &rec, &dups) == 2) {
        ins = rec >= dups ? rec - dups : 0;
        upd = aff > rec ? aff - rec : 0;
    } else if (st->expect_ins) { /* one row: 1 inserted */
        ins = aff >= 1;
    } else { /* one row: 2 changed, 1 found as it was (CLIENT_FOUND_ROWS) */
        upd = aff == 2;
    }
    g->inserted += ins;
    g->updated += upd;
    g->fixed += ins + upd;
}

static int stmt_flush(struct pass *ps, struct stmt *st, fserr *e)
{
    static const char *const what[] = {"resync: writing rows", "resync: soft-deleting rows",
                                       "resync: writing the history", "resync"};
    int rc;

    if (!st->nrows)
        return 0;
    rc = buf_add(&st->sql, st->tail.p, st->tail.len);
    if (!rc)
        rc = query(ps, st->sql.p, st->sql.len, what[st->kind], e);
    if (rc && ps->c->single && ps->c->data_error(ps->c->ud, ps->c->errnum)) {
        log_warn("%s: MySQL refused a row: %s", what[st->kind], e ? e->msg : "");
        ps->pg->got.refused++;
        if (st->only >= 0)
            ps->pg->docs[st->only].outcome = SINK_PAGE_REFUSED;
        fserr_clear(e);
        rc = 0;
    } else if (!rc && st->kind <= ST_DELETE) {
        account(ps, st);
    }
    st->sql.len = st->head_len;
    st->sql.p[st->sql.len] = '\0';
    st->nrows = st->expect_ins = 0;
    st->only = -1;
    return rc;
}

/* Appends row text `row` to st, flushing first when the statement is full (or in single mode). */
static int stmt_add(struct pass *ps, struct stmt *st, const buf *row, long doc, bool ins, fserr *e)
{
    int rc = 0;

    if (st->nrows && (ps->c->single || st->sql.len + row->len + st->tail.len + 2 > ps->c->stmt_max))
        rc = stmt_flush(ps, st, e);
    if (!rc && st->nrows)
        rc = buf_addc(&st->sql, ',');
    if (!rc)
        rc = buf_add(&st->sql, row->p, row->len);
    if (rc)
        return e && e->code ? rc : fserr_set(e, rc, "resync: statement too large");
    st->nrows++;
    st->expect_ins += ins;
    st->only = st->nrows == 1 ? doc : -1;
    return 0;
}

/* ---- statement texts ------------------------------------------------------------------------ */

static const char *cell_name(const struct cfg_collection *cl, size_t i)
{
    return i < cl->ncolumns ? cl->columns[i].name : cl->extra_column;
}

static int cell_type(const struct cfg_collection *cl, size_t i)
{
    return i < cl->ncolumns ? (int)cl->columns[i].type : CFG_COL_JSON;
}

/* The resync guard: the document is not older than the row, and the row's tombstone (if any) is
 * not newer than the snapshot. */
static int guard(buf *b, const char *rt)
{
    return buf_printf(b,
                      "VALUES(`fs_update_time`) >= IFNULL(`fs_update_time`, '0001-01-01') AND "
                      "(`fs_delete_time` IS NULL OR `fs_delete_time` <= '%s')",
                      rt);
}

static int assign(buf *b, const char *col, const char *value, const char *rt)
{
    int rc = buf_printf(b, "`%s` = IF(", col);
    if (!rc)
        rc = guard(b, rt);
    return rc ? rc : buf_printf(b, ", %s, `%s`)", value, col);
}

static int upsert_text(struct pass *ps, struct stmt *st)
{
    const struct cfg_collection *cl = ps->cl;
    char v[96];
    int rc = buf_printf(&st->sql, "INSERT INTO `%s` (`%s`", cl->table, sink_key_column(cl));

    for (size_t i = 0; i < ps->nc && !rc; i++)
        rc = buf_printf(&st->sql, ", `%s`", cell_name(cl, i));
    if (!rc)
        rc = buf_adds(&st->sql,
                      ", `fs_create_time`, `fs_update_time`, `synced_at`, `fs_hashes`) VALUES ");
    st->head_len = st->sql.len;
    /* assignments run left to right and see earlier ones: the guard's columns go last */
    if (!rc)
        rc = buf_adds(&st->tail, " ON DUPLICATE KEY UPDATE ");
    for (size_t i = 0; i < ps->nc + 3 && !rc; i++) {
        static const char *const book[] = {"fs_hashes", "fs_create_time", "synced_at"};
        const char *col = i < ps->nc ? cell_name(cl, i) : book[i - ps->nc];
        snprintf(v, sizeof(v), "VALUES(`%s`)", col);
        rc = assign(&st->tail, col, v, ps->rt);
        if (!rc)
            rc = buf_adds(&st->tail, ", ");
    }
    if (!rc)
        rc = assign(&st->tail, "deleted_at", "NULL", ps->rt);
    if (!rc)
        rc = buf_adds(&st->tail, ", ");
    if (!rc)
        rc = assign(&st->tail, "fs_delete_time", "NULL", ps->rt);
    if (!rc)
        rc = buf_adds(&st->tail, ", ");
    if (!rc)
        rc = assign(&st->tail, "fs_update_time", "VALUES(`fs_update_time`)", ps->rt);
    return rc;
}

static int delete_text(struct pass *ps, struct stmt *st)
{
    int rc = buf_printf(&st->sql,
                        "UPDATE `%s` SET `deleted_at` = '%s', `fs_delete_time` = '%s', "
                        "`synced_at` = '%s' WHERE `deleted_at` IS NULL AND (`fs_update_time` IS "
                        "NULL OR `fs_update_time` < '%s') AND `%s` IN (",
                        ps->cl->table, ps->rt, ps->rt, ps->c->now, ps->rt, sink_key_column(ps->cl));
    st->head_len = st->sql.len;
    return rc ? rc : buf_addc(&st->tail, ')');
}

static int history_text(struct pass *ps, struct stmt *st)
{
    int rc = buf_printf(&st->sql,
                        "INSERT INTO `%s` (`event_id`, `collection`, `doc_key`, `op`, `changed`, "
                        "`update_time`, `source`, `applied_at`) VALUES ",
                        ps->c->cfg->mysql.changes_table);
    st->head_len = st->sql.len;
    return rc;
}

/* ---- decisions ------------------------------------------------------------------------------ */

/* A row read back: its key, cells, times and hashes (pointing into the result set). */
struct row {
    const char *key;
    size_t keylen;
    const char *const *cell; /* nc values, NULL for SQL NULL */
    const unsigned long *cell_len;
    int64_t create_us, update_us, delete_us; /* NONE_US for NULL */
    bool deleted;
    const char *hashes;
    size_t hashes_len;
};

static int64_t time_or_none(const char *s, unsigned long n)
{
    int64_t us;
    return s && sink_time_parse(s, n, &us) == 0 ? us : NONE_US;
}

static void row_from(struct pass *ps, MYSQL_ROW r, const unsigned long *len, struct row *out)
{
    size_t nc = ps->nc;

    out->key = r[0] ? r[0] : "";
    out->keylen = len[0];
    out->cell = (const char *const *)r + 1;
    out->cell_len = len + 1;
    out->create_us = time_or_none(r[nc + 1], len[nc + 1]);
    out->update_us = time_or_none(r[nc + 2], len[nc + 2]);
    out->delete_us = time_or_none(r[nc + 3], len[nc + 3]);
    out->deleted = r[nc + 4] && r[nc + 4][0] == '1';
    out->hashes = r[nc + 5];
    out->hashes_len = r[nc + 5] ? len[nc + 5] : 0;
}

static bool hashes_equal(const struct row *r, const uint64_t *h, size_t n)
{
    if (!r->hashes || r->hashes_len != n * 8)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (int k = 7; k >= 0; k--)
            v = (v << 8) | (unsigned char)r->hashes[i * 8 + (size_t)k];
        if (v != h[i])
            return false;
    }
    return true;
}

static bool cell_same(const struct pass *ps, const struct row *r, const struct sink_page_doc *d,
                      size_t i)
{
    return sink_page_cell_equal(cell_type(ps->cl, i), r->cell[i], r->cell_len[i], !r->cell[i],
                                &d->cells[i]);
}

static bool row_equal(const struct pass *ps, const struct row *r, const struct sink_page_doc *d)
{
    if (r->deleted || r->create_us != (d->create_us ? d->create_us : NONE_US) ||
        !hashes_equal(r, d->hashes, ps->nc))
        return false;
    for (size_t i = 0; i < ps->nc; i++)
        if (!cell_same(ps, r, d, i))
            return false;
    return true;
}

static void uuid4(char out[37])
{
    unsigned char r[16];

    if (RAND_bytes(r, sizeof(r)) != 1)
        for (size_t i = 0; i < sizeof(r); i++)
            r[i] = (unsigned char)rand();
    r[6] = (unsigned char)((r[6] & 0x0F) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3F) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

/* A change row: op "CREATE", "UPDATE" or "DELETE"; r is the row before (NULL: none), d the
 * document (NULL for a delete). */
static int history_row(struct pass *ps, const char *op, const struct row *r,
                       const struct sink_page_doc *d, fserr *e)
{
    cJSON *changed = cJSON_CreateObject();
    bool upd = strcmp(op, "UPDATE") == 0;
    char id[37], *js;
    buf row;
    int rc;

    for (size_t i = 0; i < ps->nc; i++) {
        int ty = cell_type(ps->cl, i);
        bool had = r && !r->deleted && r->cell[i], has = d && d->cells[i].kind != SINK_CELL_NULL;
        cJSON *p;
        if ((upd && cell_same(ps, r, d, i)) || (!upd && !(d ? has : had)))
            continue;
        p = cJSON_AddObjectToObject(changed, cell_name(ps->cl, i));
        cJSON_AddItemToObject(p, "old",
                              had && strcmp(op, "CREATE") != 0
                                  ? sink_value_json(ty, r->cell[i], r->cell_len[i], false)
                                  : cJSON_CreateNull());
        cJSON_AddItemToObject(p, "new",
                              has ? sink_value_json(ty, d->cells[i].p, d->cells[i].len, false)
                                  : cJSON_CreateNull());
    }
    js = cJSON_PrintUnformatted(changed);
    cJSON_Delete(changed);
    uuid4(id);
    buf_init(&row, 0);
    rc = buf_printf(&row, "('%s',", id);
    if (!rc)
        rc = sink_add_str(ps->c->m, &ps->esc, &row, ps->cl->path, strlen(ps->cl->path));
    if (!rc)
        rc = buf_addc(&row, ',');
    if (!rc)
        rc = d ? sink_add_hex(&row, d->key.p, d->key.n) : sink_add_hex(&row, r->key, r->keylen);
    if (!rc)
        rc = buf_printf(&row, ",'%s',", op);
    if (!rc)
        rc = js ? sink_add_str(ps->c->m, &ps->esc, &row, js, strlen(js)) : buf_adds(&row, "NULL");
    if (!rc)
        rc = buf_addc(&row, ',');
    if (!rc)
        rc = add_time(&row, d ? d->update_us : ps->pg->read_us);
    if (!rc)
        rc = buf_printf(&row, ",'resync','%s')", ps->c->now);
    free(js);
    if (!rc)
        rc = stmt_add(ps, &ps->hist, &row, -1, false, e);
    buf_release(&row);
    return rc;
}

/* Writes document i whole with the resync guard; r is its row (NULL: none). */
static int write_doc(struct pass *ps, size_t i, const struct row *r, fserr *e)
{
    struct sink_page_doc *d = &ps->pg->docs[i];
    buf row;
    int rc;

    ps->pg->got.differences++;
    buf_init(&row, 0);
    rc = buf_addc(&row, '(');
    if (!rc)
        rc = sink_add_hex(&row, d->key.p, d->key.n);
    for (size_t k = 0; k < ps->nc && !rc; k++) {
        rc = buf_addc(&row, ',');
        if (!rc)
            rc = sink_add_cell(ps->c->m, &ps->esc, &row, &d->cells[k]);
    }
    if (!rc)
        rc = buf_addc(&row, ',');
    if (!rc)
        rc = add_time(&row, d->create_us);
    if (!rc)
        rc = buf_addc(&row, ',');
    if (!rc)
        rc = add_time(&row, d->update_us);
    if (!rc)
        rc = buf_printf(&row, ",'%s',", ps->c->now);
    if (!rc)
        rc = sink_add_hashes(&row, d->hashes, ps->nc);
    if (!rc)
        rc = buf_addc(&row, ')');
    d->outcome = SINK_PAGE_WRITTEN;
    if (!rc)
        rc = stmt_add(ps, &ps->up, &row, (long)i, r == NULL, e);
    buf_release(&row);
    if (!rc && ps->cl->history)
        rc = history_row(ps, r && !r->deleted ? "UPDATE" : "CREATE", r, d, e);
    return rc;
}

static void key_push(struct sink_page_key **arr, size_t *n, const char *p, size_t len)
{
    *arr = xrealloc(*arr, (*n + 1) * sizeof(**arr));
    (*arr)[*n].p = xstrndup(p, len);
    (*arr)[*n].n = len;
    (*n)++;
}

/* A row of the document at index i of the page. */
static int doc_row(struct pass *ps, size_t i, const struct row *r, fserr *e)
{
    struct sink_page_doc *d = &ps->pg->docs[i];
    int64_t rt = ps->pg->read_us;

    ps->found[i] = true;
    if (!d->cells)
        return 0;
    if ((r->update_us != NONE_US && r->update_us > d->update_us) ||
        (r->delete_us != NONE_US && r->delete_us > rt))
        return 0; /* changed after the snapshot: the newer change stays */
    if (row_equal(ps, r, d)) {
        d->outcome = SINK_PAGE_EQUAL;
        return 0;
    }
    return write_doc(ps, i, r, e);
}

/* A row that is in no document of the page. */
static int stray_row(struct pass *ps, const struct row *r, fserr *e)
{
    struct sink_page *pg = ps->pg;
    buf key;
    int rc;

    if (pg->settled.p && rest_path_cmp(r->key, r->keylen, pg->settled.p, pg->settled.n) <= 0)
        return 0; /* decided before the restart */
    if (pg->f_last.p && rest_path_cmp(r->key, r->keylen, pg->f_last.p, pg->f_last.n) > 0) {
        if (pg->ndeferred < pg->max_deferred)
            key_push(&pg->deferred, &pg->ndeferred, r->key, r->keylen);
        else
            pg->got.undecided++;
        return 0; /* a later page may hold it */
    }
    if (r->deleted || (r->update_us != NONE_US && r->update_us >= pg->read_us))
        return 0;
    pg->got.differences++;
    key_push(&pg->deleted, &pg->ndeleted, r->key, r->keylen);
    buf_init(&key, 0);
    rc = sink_add_hex(&key, r->key, r->keylen);
    if (!rc)
        rc = stmt_add(ps, &ps->del, &key, -1, false, e);
    buf_release(&key);
    if (!rc && ps->cl->history)
        rc = history_row(ps, "DELETE", r, NULL, e);
    return rc;
}

static int find_doc(const struct pass *ps, const char *key, size_t n)
{
    size_t lo = 0, hi = ps->pg->ndocs;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct sink_page_key *k = &ps->pg->docs[ps->order[mid]].key;
        int c = key_cmp(k->p, k->n, key, n);
        if (c == 0)
            return (int)ps->order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int decide(struct pass *ps, MYSQL_ROW r, const unsigned long *len, fserr *e)
{
    struct row row;
    int i;

    row_from(ps, r, len, &row);
    i = find_doc(ps, row.key, row.keylen);
    return i >= 0 ? doc_row(ps, (size_t)i, &row, e) : stray_row(ps, &row, e);
}

/* ---- reading the rows ----------------------------------------------------------------------- */

static int select_head(struct pass *ps, buf *sql)
{
    const struct cfg_collection *cl = ps->cl;
    int rc = buf_printf(sql, "SELECT `%s`", sink_key_column(cl));

    for (size_t i = 0; i < ps->nc && !rc; i++)
        rc = buf_printf(sql, ", `%s`", cell_name(cl, i));
    if (!rc)
        rc = buf_printf(sql,
                        ", `fs_create_time`, `fs_update_time`, `fs_delete_time`, `deleted_at` IS "
                        "NOT NULL, `fs_hashes` FROM `%s` WHERE ",
                        cl->table);
    return rc;
}

/* Runs a SELECT and decides each of its rows; *count gets the number of rows and *last (when
 * not NULL) the last key. */
static int select_rows(struct pass *ps, const buf *sql, size_t *count, buf *last, fserr *e)
{
    MYSQL_RES *res;
    MYSQL_ROW r;
    int rc = query(ps, sql->p, sql->len, "resync: reading rows", e);

    *count = 0;
    if (rc)
        return rc;
    if (!(res = mysql_store_result(ps->c->m))) {
        ps->c->errnum = mysql_errno(ps->c->m);
        rc = sink_conn_error(ps->c->m, "resync: reading rows", e);
        return rc ? rc : fserr_set(e, FS_EMYSQL, "resync: reading rows failed");
    }
    if (mysql_num_fields(res) != ps->nc + 6) {
        mysql_free_result(res);
        return fserr_set(e, FS_EINTERNAL, "resync: unexpected columns from `%s`", ps->cl->table);
    }
    while (!rc && (r = mysql_fetch_row(res))) {
        const unsigned long *len = mysql_fetch_lengths(res);
        rc = decide(ps, r, len, e);
        if (last) {
            buf_reset(last);
            buf_add(last, r[0] ? r[0] : "", len[0]);
        }
        (*count)++;
    }
    mysql_free_result(res);
    return rc;
}

/* The rows of the fresh range (lo, hi], in key order, CHUNK at a time. */
static int read_range(struct pass *ps, fserr *e)
{
    const char *k = sink_key_column(ps->cl);
    const struct sink_page *pg = ps->pg;
    buf sql, last;
    size_t head, count = CHUNK;
    bool first = true;
    int rc = 0;

    buf_init(&sql, 0);
    buf_init(&last, 0);
    rc = select_head(ps, &sql);
    head = sql.len;
    while (!rc && count == CHUNK) {
        sql.len = head;
        sql.p[head] = '\0';
        rc = buf_printf(&sql, "1");
        if (!rc && (!first || pg->lo.p)) {
            rc = buf_printf(&sql, " AND `%s` > ", k);
            if (!rc)
                rc = first ? sink_add_hex(&sql, pg->lo.p, pg->lo.n)
                           : sink_add_hex(&sql, last.p, last.len);
        }
        if (!rc && pg->hi.p) {
            rc = buf_printf(&sql, " AND `%s` <= ", k);
            if (!rc)
                rc = sink_add_hex(&sql, pg->hi.p, pg->hi.n);
        }
        if (!rc)
            rc = buf_printf(&sql, " ORDER BY `%s` LIMIT %d FOR UPDATE", k, CHUNK);
        if (!rc)
            rc = select_rows(ps, &sql, &count, &last, e);
        first = false;
    }
    buf_release(&sql);
    buf_release(&last);
    return rc;
}

static int keyp_cmp(const void *a, const void *b)
{
    const struct sink_page_key *x = a, *y = b;
    return key_cmp(x->p, x->n, y->p, y->n);
}

/* The rows of the page's keys outside the fresh range, and of the keys to check again. */
static int read_extra(struct pass *ps, fserr *e)
{
    const struct sink_page *pg = ps->pg;
    struct sink_page_key *keys = xcalloc(pg->ndocs + pg->nrecheck + 1, sizeof(*keys));
    size_t n = 0, count, head;
    buf sql;
    int rc;

    for (size_t i = 0; i < pg->ndocs; i++)
        if (pg->lo.p && key_cmp(pg->docs[i].key.p, pg->docs[i].key.n, pg->lo.p, pg->lo.n) <= 0)
            keys[n++] = pg->docs[i].key;
    for (size_t i = 0; i < pg->nrecheck; i++)
        keys[n++] = pg->recheck[i];
    qsort(keys, n, sizeof(*keys), keyp_cmp);
    buf_init(&sql, 0);
    rc = select_head(ps, &sql);
    if (!rc)
        rc = buf_printf(&sql, "`%s` IN (", sink_key_column(ps->cl));
    head = sql.len;
    for (size_t i = 0, in = 0; i <= n && !rc; i++) {
        bool dup = i < n && i && keyp_cmp(&keys[i], &keys[i - 1]) == 0;
        if (i < n && !dup) {
            if (in++)
                rc = buf_addc(&sql, ',');
            if (!rc)
                rc = sink_add_hex(&sql, keys[i].p, keys[i].n);
        }
        if (!rc && in && (i == n || sql.len > ps->c->stmt_max / 2)) {
            rc = buf_adds(&sql, ") FOR UPDATE");
            if (!rc)
                rc = select_rows(ps, &sql, &count, NULL, e);
            sql.len = head;
            sql.p[head] = '\0';
            in = 0;
        }
    }
    buf_release(&sql);
    free(keys);
    return rc;
}

/* ---- the resync state ----------------------------------------------------------------------- */

void sink_page_summary(const struct sink_page_totals *t, int64_t duration_ms, char *out, size_t n)
{
    char undecided[96] = "";

    if (t->undecided)
        snprintf(undecided, sizeof(undecided), ", %llu rows not checked for deletion",
                 (unsigned long long)t->undecided);
    snprintf(out, n,
             "ok: %llu read (%llu billed), %llu differences, %llu fixed, %llu soft-deleted%s%s in "
             "%.1f s",
             (unsigned long long)t->docs_read, (unsigned long long)t->billed,
             (unsigned long long)t->differences, (unsigned long long)t->fixed,
             (unsigned long long)t->soft_deleted, t->refused ? ", some refused" : "", undecided,
             (double)duration_ms / 1000.0);
}

static int64_t parse_now(const char *now)
{
    int64_t us = 0;
    sink_time_parse(now, strlen(now), &us);
    return us;
}

/* The checkpoint row's resync columns, in this transaction. */
static int write_state(struct pass *ps, fserr *e)
{
    const struct sink_page *pg = ps->pg;
    const char *target = ps->cl->path;
    bool final = !pg->cursor.p;
    char result[300] = "running";
    buf sql;
    int rc;

    if (final) {
        struct sink_page_totals t = pg->before;
        t.differences += pg->got.differences;
        t.fixed += pg->got.fixed;
        t.soft_deleted += pg->got.soft_deleted;
        t.refused += pg->got.refused;
        t.undecided += pg->got.undecided;
        ps->pg->finished_us = parse_now(ps->c->now);
        sink_page_summary(&t, (ps->pg->finished_us - pg->started_us) / 1000, result,
                          sizeof(result));
    }
    buf_init(&sql, 0);
    rc = buf_printf(&sql,
                    "INSERT INTO `%s` (`target`, `updated_at`, `resync_generation`, "
                    "`resync_started_at`, `resync_read_time`, `resync_cursor`, `resync_result`, "
                    "`resync_finished_at`) VALUES (",
                    ps->c->cfg->mysql.checkpoint_table);
    if (!rc)
        rc = sink_add_str(ps->c->m, &ps->esc, &sql, target, strlen(target));
    if (!rc)
        rc = buf_printf(&sql, ",'%s',%lld,", ps->c->now, (long long)pg->generation);
    if (!rc)
        rc = add_time(&sql, pg->started_us);
    if (!rc)
        rc = buf_addc(&sql, ',');
    if (!rc)
        rc = add_time(&sql, pg->read_us);
    if (!rc)
        rc = buf_addc(&sql, ',');
    if (!rc)
        rc = pg->cursor.p && pg->cursor.n <= SINK_KEY_PATH_LEN
                 ? sink_add_hex(&sql, pg->cursor.p, pg->cursor.n)
                 : buf_adds(&sql, "NULL");
    if (!rc)
        rc = buf_addc(&sql, ',');
    if (!rc)
        rc = sink_add_str(ps->c->m, &ps->esc, &sql, result, strlen(result));
    if (!rc)
        rc = buf_printf(&sql, ",%s%s%s)", final ? "'" : "", final ? ps->c->now : "NULL",
                        final ? "'" : "");
    if (!rc)
        rc =
            buf_adds(&sql, " ON DUPLICATE KEY UPDATE `resync_generation` = "
                           "VALUES(`resync_generation`), `resync_started_at` = "
                           "VALUES(`resync_started_at`), `resync_read_time` = "
                           "VALUES(`resync_read_time`), `resync_cursor` = VALUES(`resync_cursor`)");
    if (!rc && final)
        rc = buf_adds(&sql, ", `resync_result` = VALUES(`resync_result`), `resync_finished_at` = "
                            "VALUES(`resync_finished_at`)");
    if (!rc)
        rc = query(ps, sql.p, sql.len, "resync: saving the cursor", e);
    buf_release(&sql);
    return rc;
}

/* ---- applying a page ------------------------------------------------------------------------ */

static int order_cmp(const void *a, const void *b, void *ud)
{
    const struct sink_page *pg = ud;
    const struct sink_page_key *x = &pg->docs[*(const size_t *)a].key;
    const struct sink_page_key *y = &pg->docs[*(const size_t *)b].key;
    return key_cmp(x->p ? x->p : "", x->n, y->p ? y->p : "", y->n);
}

/* Documents that cannot be written as they are (wrong cell count, a number that is not one)
 * are kept out of the comparison, like dead letters. */
static void check_docs(struct pass *ps)
{
    for (size_t i = 0; i < ps->pg->ndocs; i++) {
        struct sink_page_doc *d = &ps->pg->docs[i];
        bool ok = d->cells && d->hashes && d->ncells == ps->nc && d->key.p && d->key.n &&
                  d->key.n <= (size_t)sink_key_len(ps->cl);
        for (size_t k = 0; ok && k < ps->nc; k++)
            ok = d->cells[k].kind == SINK_CELL_NULL ||
                 (d->cells[k].p && (d->cells[k].kind != SINK_CELL_NUM ||
                                    sink_num_ok(d->cells[k].p, d->cells[k].len)));
        if (!ok && d->cells) {
            log_warn("resync: collection %s: document key %.*s cannot be compared; left as it is",
                     ps->cl->path, (int)(d->key.n > 200 ? 200 : d->key.n),
                     d->key.p ? d->key.p : "");
            ps->pg->got.refused++;
            for (size_t k = 0; k < d->ncells; k++)
                free(d->cells[k].p);
            free(d->cells);
            d->cells = NULL;
        }
    }
}

static int apply_pass(struct pass *ps, fserr *e)
{
    struct sink_page *pg = ps->pg;
    int rc = upsert_text(ps, &ps->up);

    if (!rc)
        rc = delete_text(ps, &ps->del);
    if (!rc)
        rc = history_text(ps, &ps->hist);
    if (!rc)
        rc = read_range(ps, e);
    if (!rc)
        rc = read_extra(ps, e);
    for (size_t i = 0; i < pg->ndocs && !rc; i++)
        if (!ps->found[i] && pg->docs[i].cells)
            rc = write_doc(ps, i, NULL, e);
    if (!rc)
        rc = stmt_flush(ps, &ps->up, e);
    if (!rc)
        rc = stmt_flush(ps, &ps->del, e);
    if (!rc)
        rc = stmt_flush(ps, &ps->hist, e);
    if (!rc)
        rc = write_state(ps, e);
    return rc;
}

int sink_page_apply(struct sink_page_ctx *ctx, struct sink_page *pg, fserr *e)
{
    struct pass ps = {0};
    int rc;

    outputs_reset(pg);
    ctx->errnum = 0;
    if (pg->coll < 0 || (size_t)pg->coll >= ctx->cfg->ncollections)
        return fserr_set(e, FS_EINVAL, "resync page of unknown collection #%d", pg->coll);
    ps.c = ctx;
    ps.pg = pg;
    ps.cl = &ctx->cfg->collections[pg->coll];
    ps.nc = sink_ncells(ps.cl);
    if (sink_time_format(pg->read_us, ps.rt) != 0)
        return fserr_set(e, FS_ERANGE, "resync page: read time out of range");
    check_docs(&ps);
    ps.order = xcalloc(pg->ndocs + 1, sizeof(*ps.order));
    ps.found = xcalloc(pg->ndocs + 1, sizeof(*ps.found));
    for (size_t i = 0; i < pg->ndocs; i++)
        ps.order[i] = i;
    qsort_r(ps.order, pg->ndocs, sizeof(*ps.order), order_cmp, pg);
    stmt_init(&ps.up, ST_UPSERT);
    stmt_init(&ps.del, ST_DELETE);
    stmt_init(&ps.hist, ST_HISTORY);
    rc = apply_pass(&ps, e);
    stmt_release(&ps.up);
    stmt_release(&ps.del);
    stmt_release(&ps.hist);
    free(ps.order);
    free(ps.found);
    free(ps.esc.p);
    if (rc && e && !e->code)
        fserr_set(e, rc, "resync: assembling the page's statements failed: %s", fserr_str(rc));
    return rc;
}

/* ---- reading the state back ------------------------------------------------------------------ */

void sink_page_state_release(struct sink_resync_state *st)
{
    free(st->cursor);
    free(st->result);
    memset(st, 0, sizeof(*st));
}

static int64_t time_or_zero(const char *s, unsigned long n)
{
    int64_t us = 0;
    return s && sink_time_parse(s, n, &us) == 0 ? us : 0;
}

static void state_from(MYSQL_ROW r, const unsigned long *len, struct sink_resync_state *out)
{
    out->generation = r[0] ? strtoll(r[0], NULL, 10) : 0;
    out->started_us = time_or_zero(r[1], len[1]);
    out->finished_us = time_or_zero(r[2], len[2]);
    out->read_us = time_or_zero(r[3], len[3]);
    if (r[4] && len[4]) {
        out->cursor = xstrndup(r[4], len[4]);
        out->cursor_len = len[4];
    }
    free(out->result);
    out->result = xstrdup(r[5] ? r[5] : "");
}

int sink_page_load_state(const struct cfg *cfg, const char *target, struct sink_resync_state *out,
                         fserr *e)
{
    MYSQL *m = NULL;
    MYSQL_RES *res;
    MYSQL_ROW r;
    buf sql;
    char esc[2 * SINK_TARGET_LEN + 1];
    int rc;

    memset(out, 0, sizeof(*out));
    out->result = xstrdup("");
    if (!target || strlen(target) > SINK_TARGET_LEN)
        return fserr_set(e, FS_EINVAL, "resync state: target longer than %d bytes",
                         SINK_TARGET_LEN);
    rc = sink_conn_open_retry(&cfg->mysql, cfg->mysql.connect_timeout_ms, NULL, &m, e);
    if (rc)
        return rc;
    mysql_real_escape_string(m, esc, target, (unsigned long)strlen(target));
    buf_init(&sql, 0);
    buf_printf(&sql,
               "SELECT `resync_generation`, `resync_started_at`, `resync_finished_at`, "
               "`resync_read_time`, `resync_cursor`, `resync_result` FROM `%s` WHERE `target` = "
               "'%s'",
               cfg->mysql.checkpoint_table, esc);
    if (mysql_real_query(m, sql.p, sql.len) != 0 || !(res = mysql_store_result(m))) {
        if (mysql_errno(m) != ER_NO_SUCH_TABLE) {
            rc = sink_conn_error(m, "reading the resync state", e);
            if (!rc)
                rc = fserr_set(e, FS_EMYSQL, "reading the resync state failed");
        }
    } else {
        if ((r = mysql_fetch_row(res)))
            state_from(r, mysql_fetch_lengths(res), out);
        mysql_free_result(res);
    }
    buf_release(&sql);
    mysql_close(m);
    return rc;
}
