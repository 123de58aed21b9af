/*
 * bench_reset.c - the CPU cost of a RESET per unchanged document (aim: under 2 us each).
 *
 * The emulator answers every commit to a listened collection with a RESET and then the whole
 * collection again (webchannel.md section 5). Design invariant 3 says such a cycle writes
 * nothing and costs a lookup per document. This program measures what it really costs.
 *
 * Target state, built through the agent's own path: a config (cfg_load_mem) mapping six columns
 * of `employees` (VARCHAR, BIGINT, DECIMAL, BOOLEAN, DATETIME(6), the nested address.city) plus
 * the extra JSON column; a struct diff whose emit callback counts and frees the events; a
 * listen_state with one target wired to it as agent/daemon.c does (seen, upsert, remove, reset,
 * consistent -> diff_sweep after a reset, live_count; send ignored). An initial load (ADD, the
 * documents, CURRENT, NO_CHANGE) fed through the path below applies NDOCS documents.
 *
 * The bytes: what the emulator sends on a long-poll back channel (shape captured from the
 * emulator on this machine): one response holding the RESET alone, then one response per chunk
 * `<utf16 len>\n[[id,["noop"]],[id,[{"documentChange":{...}}]],...]`, the last chunk ending with
 * CURRENT and the global NO_CHANGE. A document object is about 530 bytes (590 with its
 * [id,[{"documentChange":...,"targetIds":[2]}]] wrapper): eight fields, one nested, strings
 * Gson-escaped the way WebChannel does it (<>&=' as \u003c..., \n) and raw UTF-8 for the rest.
 * Each response body is cut into 4096-byte pieces, as the emulator's HTTP chunks are.
 *
 * Measured, best of RUNS cycles, getrusage user+sys CPU and CLOCK_MONOTONIC wall time:
 *   - the whole path: wc_frame_feed -> wc_payload_parse (json_parse, shape check) ->
 *     wc_array_next / wc_classify -> listen_handle -> diff_seen, and the sweep at the end;
 *   - the same from payloads already framed (framer excluded), and the framer and the parse
 *     alone, to show where the time goes;
 *   - the whole cycle in a single chunk (what a slow or paused reader catches up with);
 *   - a cycle in which 1% of the documents changed (decode, convert, hash, one event each).
 * Checked, exiting non-zero otherwise: an unchanged cycle emits no sink event at all, the 1%
 * cycle exactly one UPSERT per changed document, and every document stays live.
 *
 * Output: progress lines, then one "FIGURE|name|value|unit|aim|meaning" line per figure for
 * scripts/bench.sh. Figures, not verdicts.
 */
#include "agent/config.h"
#include "common/buf.h"
#include "common/err.h"
#include "diff/diff.h"
#include "firestore/frame.h"
#include "firestore/json.h"
#include "firestore/listen.h"
#include "firestore/webchannel.h"
#include "mysql/sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define DB "projects/demo/databases/(default)"
#define NDOCS 5000
#define DOCS_PER_CHUNK 250 /* the emulator's catch-up chunks measured 45 to 1418 documents */
#define PIECE 4096         /* HTTP chunk size seen from the emulator */
#define RUNS 30
#define T0_US INT64_C(1795420800000000) /* 2026-11-23T08:00:00Z */
#define TOKEN "CgkI1/flvJCemAM="

static const char CONFIG[] =
    "[firestore]\nproject_id = \"demo\"\n"
    "[mysql]\ndatabase = \"bench\"\n"
    "[[collections]]\npath = \"employees\"\ntable = \"employees\"\nkey = \"id\"\n"
    "extra_column = \"extra\"\n"
    "[collections.columns]\n"
    "name = { field = \"name\", type = \"VARCHAR(200)\" }\n"
    "employee_no = { field = \"employeeNo\", type = \"BIGINT\" }\n"
    "salary = { field = \"salary\", type = \"DECIMAL(12,2)\" }\n"
    "active = { field = \"active\", type = \"BOOLEAN\" }\n"
    "hired_at = { field = \"hiredAt\", type = \"DATETIME(6)\" }\n"
    "city = { field = \"address.city\", type = \"VARCHAR(100)\" }\n";

static const char *const FIRST[] = {"Ana", "Bea", "Zoë", "João", "Mia", "Noah", "Léa", "Sven"};
static const char *const LAST[] = {"O'Neil", "Sousa", "Müller", "Smith & Co", "Øster", "Kim"};
static const char *const CITY[] = {"Lisbon", "München", "São Paulo", "Zürich", "Kraków", "東京"};
static const char *const NOTE[] = {"team = 'core'\nremote", "on-call & lead", "desk <B2>"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* One HTTP response of a cycle: its body within cycle.body, and the one chunk's payload. */
struct resp {
    size_t off, len;
    size_t pay_off, pay_len;
};

struct cycle {
    buf body; /* every response body, back to back */
    struct resp *resp;
    size_t nresp;
    int64_t first_id; /* array id of the first array */
    size_t per_chunk; /* documents per chunk */
    size_t every;     /* in rounds > 0, documents i with i % every == 0 change; 0: none do */
    size_t doc_bytes; /* bytes of the documentChange arrays */
};

struct bench {
    struct cfg *cfg;
    struct diff *diff;
    listen_state *ls;
    json_doc doc;
    wc_framer fr;
    int64_t last_aid;
    uint64_t events, upserts;
    size_t payload_bytes; /* framer-only mode */
};

struct sample {
    double cpu_us, wall_us;
};

static void die(const char *what, const fserr *e)
{
    fprintf(stderr, "bench_reset: %s%s%s\n", what, e ? ": " : "", e ? e->msg : "");
    exit(1);
}

/* ---- the bytes -------------------------------------------------------------------------- */

/* A JSON string as Gson prints it for WebChannel: HTML-safe, raw UTF-8 otherwise. */
static void gson_str(buf *b, const char *s)
{
    buf_addc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            buf_adds(b, "\\n");
        else if (c == '<' || c == '>' || c == '&' || c == '=' || c == '\'' || c < 0x20)
            buf_printf(b, "\\u%04x", c);
        else if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else
            buf_addc(b, (char)c);
    }
    buf_addc(b, '"');
}

/* RFC 3339 with six fraction digits (callers keep us % 1000 != 0, as the emulator would print
 * fewer digits otherwise). */
static void add_time(buf *b, int64_t us)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;
    char t[32];

    gmtime_r(&s, &tm);
    strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%S", &tm);
    buf_printf(b, "\"%s.%06dZ\"", t, (int)(us % 1000000));
}

static bool changed(const struct cycle *cy, size_t i, int round)
{
    return round > 0 && cy->every && i % cy->every == 0;
}

static size_t nchanged(const struct cycle *cy)
{
    return cy->every ? (NDOCS + cy->every - 1) / cy->every : 0;
}

static int64_t create_us(size_t i)
{
    return T0_US + (int64_t)i * 1000 + 457;
}

static int64_t update_us(size_t i, int round, bool ch)
{
    return ch ? T0_US + INT64_C(3600000000) + round * INT64_C(1000000) +
                    (int64_t)(i % 1000) * 1000 + 7
              : create_us(i);
}

static int64_t read_us(int round)
{
    return T0_US + INT64_C(86400000000) + round * INT64_C(1000000) + 321;
}

/* Document i as of `round`; `ch`: it changed in this round (salary and update time). */
static void add_doc(buf *b, int64_t id, size_t i, int round, bool ch)
{
    char s[96];

    buf_printf(b,
               "[%" PRId64 ",[{\"documentChange\":{\"document\":{\"name\":\"" DB
               "/documents/employees/emp-%06zu\",\"fields\":{\"name\":{\"stringValue\":",
               id, i);
    snprintf(s, sizeof(s), "%s %s", FIRST[i % COUNT(FIRST)], LAST[i % COUNT(LAST)]);
    gson_str(b, s);
    buf_printf(b, "},\"email\":{\"stringValue\":\"e%06zu@ex.com\"}", i);
    buf_printf(b, ",\"employeeNo\":{\"integerValue\":\"%zu\"}", 100000 + i);
    buf_printf(b, ",\"salary\":{\"doubleValue\":%d.5}",
               30000 + (int)(i * 7919 % 60000) + (ch ? round : 0));
    buf_printf(b, ",\"active\":{\"booleanValue\":%s}", i % 7 ? "true" : "false");
    buf_adds(b, ",\"hiredAt\":{\"timestampValue\":");
    add_time(b, T0_US - INT64_C(86400000000) * (int64_t)(i % 3000) - 123457);
    buf_adds(b, "},\"address\":{\"mapValue\":{\"fields\":{\"city\":{\"stringValue\":");
    gson_str(b, CITY[i % COUNT(CITY)]);
    buf_adds(b, "}}}},\"notes\":{\"stringValue\":");
    gson_str(b, NOTE[i % COUNT(NOTE)]);
    buf_adds(b, "}},\"createTime\":");
    add_time(b, create_us(i));
    buf_adds(b, ",\"updateTime\":");
    add_time(b, update_us(i, round, ch));
    buf_adds(b, "},\"targetIds\":[2]}}]]");
}

/* The target change that CURRENT / NO_CHANGE / RESET carry: token and read time. */
static void add_target_change(buf *b, int64_t id, const char *type, int round)
{
    buf_printf(b, "[%" PRId64 ",[{\"targetChange\":{", id);
    if (type)
        buf_printf(b, "\"targetChangeType\":\"%s\",\"targetIds\":[2]", type);
    if (!type || strcmp(type, "ADD") != 0) {
        buf_printf(b, "%s\"resumeToken\":\"" TOKEN "\",\"readTime\":", type ? "," : "");
        add_time(b, read_us(round) + (type ? 0 : 2000));
    }
    buf_adds(b, "}}]]");
}

static void add_response(struct cycle *cy, const buf *pay)
{
    struct resp r;

    r.off = cy->body.len;
    buf_printf(&cy->body, "%zu\n", wc_utf16_units(pay->p, pay->len));
    r.pay_off = cy->body.len;
    r.pay_len = pay->len;
    buf_add(&cy->body, pay->p, pay->len);
    r.len = cy->body.len - r.off;
    cy->resp = realloc(cy->resp, (cy->nresp + 1) * sizeof(*cy->resp));
    if (!cy->resp)
        die("out of memory", NULL);
    cy->resp[cy->nresp++] = r;
}

/* A whole cycle: `first` (ADD or RESET) alone, then the documents per_chunk at a time, then
 * CURRENT and the global NO_CHANGE. In a `round` > 0 the documents cy->every picks change. */
static void gen_cycle(struct cycle *cy, const char *first, int round)
{
    int64_t id = cy->first_id;
    buf pay;

    buf_reset(&cy->body);
    cy->nresp = 0;
    cy->doc_bytes = 0;
    buf_init(&pay, 0);
    buf_addc(&pay, '[');
    add_target_change(&pay, id++, first, round);
    buf_addc(&pay, ']');
    add_response(cy, &pay);
    for (size_t i = 0; i < NDOCS;) {
        buf_reset(&pay);
        buf_printf(&pay, "[[%" PRId64 ",[\"noop\"]]", id++);
        for (size_t k = 0; k < cy->per_chunk && i < NDOCS; k++, i++) {
            size_t before = pay.len;
            buf_addc(&pay, ',');
            add_doc(&pay, id++, i, round, changed(cy, i, round));
            cy->doc_bytes += pay.len - before;
        }
        if (i == NDOCS) {
            buf_addc(&pay, ',');
            add_target_change(&pay, id++, "CURRENT", round);
            buf_addc(&pay, ',');
            add_target_change(&pay, id++, NULL, round);
        }
        buf_addc(&pay, ']');
        add_response(cy, &pay);
    }
    buf_release(&pay);
}

/* ---- the target state ------------------------------------------------------------------- */

static int on_event(void *ud, struct sink_event *ev)
{
    struct bench *b = ud;
    b->events++;
    b->upserts += ev->op == SINK_OP_UPSERT;
    sink_event_free(ev);
    return 0;
}

static bool cb_seen(void *ud, int t, const char *name, size_t len, struct fs_time ut)
{
    return diff_seen(((struct bench *)ud)->diff, t, name, len, ut);
}

static int cb_upsert(void *ud, int t, struct fsdoc *doc)
{
    fserr e = {0};
    if (diff_upsert(((struct bench *)ud)->diff, t, doc, SINK_SRC_STREAM, &e) != 0)
        die("diff_upsert", &e);
    return 0;
}

static int cb_remove(void *ud, int t, const char *name, size_t len, struct fs_time rt)
{
    fserr e = {0};
    if (diff_remove(((struct bench *)ud)->diff, t, name, len, rt, SINK_SRC_STREAM, &e) != 0)
        die("diff_remove", &e);
    return 0;
}

static void cb_reset(void *ud, int t)
{
    diff_reset(((struct bench *)ud)->diff, t);
}

static int cb_consistent(void *ud, int t, const char *token, struct fs_time rt, bool after_reset)
{
    fserr e = {0};
    (void)token;
    if (after_reset && diff_sweep(((struct bench *)ud)->diff, t, rt, SINK_SRC_STREAM, &e) != 0)
        die("diff_sweep", &e);
    return 0;
}

static size_t cb_live_count(void *ud, int t)
{
    return diff_live(((struct bench *)ud)->diff, t);
}

static void cb_target_error(void *ud, int t, int code, const char *msg)
{
    (void)ud;
    fprintf(stderr, "bench_reset: target %d error %d: %s\n", t, code, msg);
    exit(1);
}

static int cb_send(void *ud, const char *json)
{
    (void)ud;
    (void)json;
    return 0;
}

static void setup(struct bench *b)
{
    static const struct listen_callbacks cb = {cb_seen,         cb_upsert,     cb_remove,
                                               cb_reset,        cb_consistent, cb_live_count,
                                               cb_target_error, cb_send,       NULL};
    fserr e = {0};
    buf errs;

    buf_init(&errs, 0);
    if (cfg_load_mem("bench", CONFIG, strlen(CONFIG), &b->cfg, &errs, &e) != 0) {
        fprintf(stderr, "%s", buf_str(&errs));
        die("cfg_load_mem", &e);
    }
    buf_release(&errs);
    if (diff_new(b->cfg, DB, on_event, b, &b->diff, &e) != 0)
        die("diff_new", &e);
    b->ls = listen_new(DB, &cb, b);
    if (listen_add_target(b->ls, "employees", NULL, &e) != 0 || listen_connect(b->ls, &e) != 0)
        die("listen target", &e);
    json_doc_init(&b->doc);
    wc_frame_init(&b->fr, 0);
}

static void teardown(struct bench *b)
{
    wc_frame_release(&b->fr);
    json_doc_release(&b->doc);
    listen_free(b->ls);
    diff_free(b->diff);
    cfg_free(b->cfg);
}

/* ---- the measured path ------------------------------------------------------------------ */

/* One payload, as the back channel's process() handles it. */
static int on_payload(void *ud, const char *p, size_t n)
{
    struct bench *b = ud;
    fserr e = {0};
    int64_t id;
    int it = 0, data, msg;

    if (wc_payload_parse(&b->doc, p, n, &e) != 0)
        die("wc_payload_parse", &e);
    while (wc_array_next(&b->doc, &it, b->last_aid, &id, &data)) {
        b->last_aid = id;
        if (wc_classify(&b->doc, data, &msg) == WC_K_DATA &&
            listen_handle(b->ls, &b->doc, msg, &e) != 0)
            die("listen_handle", &e);
    }
    return 0;
}

static int count_payload(void *ud, const char *p, size_t n)
{
    (void)p;
    ((struct bench *)ud)->payload_bytes += n;
    return 0;
}

static void feed(struct bench *b, const struct cycle *cy, wc_chunk_fn fn)
{
    fserr e = {0};

    b->last_aid = cy->first_id - 1;
    for (size_t r = 0; r < cy->nresp; r++) {
        const char *p = cy->body.p + cy->resp[r].off;
        size_t n = cy->resp[r].len;
        wc_frame_reset(&b->fr);
        for (size_t o = 0; o < n; o += PIECE)
            if (wc_frame_feed(&b->fr, p + o, n - o < PIECE ? n - o : PIECE, fn, b, &e) != 0)
                die("wc_frame_feed", &e);
    }
}

static void run_full(struct bench *b, const struct cycle *cy)
{
    feed(b, cy, on_payload);
}

static void run_framer(struct bench *b, const struct cycle *cy)
{
    feed(b, cy, count_payload);
}

static void run_unframed(struct bench *b, const struct cycle *cy)
{
    b->last_aid = cy->first_id - 1;
    for (size_t r = 0; r < cy->nresp; r++)
        on_payload(b, cy->body.p + cy->resp[r].pay_off, cy->resp[r].pay_len);
}

static void run_parse(struct bench *b, const struct cycle *cy)
{
    fserr e = {0};
    for (size_t r = 0; r < cy->nresp; r++) {
        const struct resp *rp = &cy->resp[r];
        if (wc_payload_parse(&b->doc, cy->body.p + rp->pay_off, rp->pay_len, &e) != 0)
            die("wc_payload_parse", &e);
    }
}

static double now_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double now_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Best of RUNS runs of fn over cy. With `round`, each run first regenerates cy (untimed) with
 * the next round of changed documents and expects one UPSERT per changed document; without, it
 * expects no event at all. */
static struct sample measure(struct bench *b, void (*fn)(struct bench *, const struct cycle *),
                             struct cycle *cy, int *round)
{
    struct sample best = {1e300, 1e300};

    for (int r = 0; r < RUNS; r++) {
        uint64_t ev0 = b->events, up0 = b->upserts;
        double c0, w0, c1, w1;
        if (round)
            gen_cycle(cy, "RESET", ++*round);
        c0 = now_cpu_us();
        w0 = now_wall_us();
        fn(b, cy);
        w1 = now_wall_us();
        c1 = now_cpu_us();
        if (c1 - c0 < best.cpu_us)
            best.cpu_us = c1 - c0;
        if (w1 - w0 < best.wall_us)
            best.wall_us = w1 - w0;
        if (b->upserts - up0 != (round ? nchanged(cy) : 0) || b->events - ev0 != b->upserts - up0 ||
            diff_live(b->diff, 0) != NDOCS) {
            fprintf(stderr,
                    "bench_reset: a cycle emitted %" PRIu64 " events (%" PRIu64
                    " upserts), %zu live\n",
                    b->events - ev0, b->upserts - up0, diff_live(b->diff, 0));
            exit(1);
        }
    }
    return best;
}

static void figure(const char *name, double v, const char *unit, const char *aim, const char *what)
{
    printf("FIGURE|%s|%.0f|%s|%s|%s\n", name, v, unit, aim, what);
}

static void cycle_init(struct cycle *cy, int64_t first_id, size_t per_chunk, size_t every)
{
    memset(cy, 0, sizeof(*cy));
    buf_init(&cy->body, 0);
    cy->first_id = first_id;
    cy->per_chunk = per_chunk;
    cy->every = every;
}

static void cycle_release(struct cycle *cy)
{
    buf_release(&cy->body);
    free(cy->resp);
}

int main(void)
{
    struct bench b = {0};
    struct cycle cy, one, pct, all;
    struct sample full, unframed, framer, parse, single, churn, churn_all;
    int round = 0;

    setup(&b);
    cycle_init(&cy, 1, DOCS_PER_CHUNK, 0);        /* the initial load, then unchanged RESETs */
    cycle_init(&one, 10000, NDOCS, 0);            /* unchanged, the whole cycle in one chunk */
    cycle_init(&pct, 10000, DOCS_PER_CHUNK, 100); /* 1% of the documents changed */
    cycle_init(&all, 10000, DOCS_PER_CHUNK, 1);   /* every document changed */

    gen_cycle(&cy, "ADD", 0);
    run_full(&b, &cy);
    if (b.upserts != NDOCS || diff_live(b.diff, 0) != NDOCS)
        die("the initial load did not apply every document", NULL);
    b.events = b.upserts = 0;

    cy.first_id = 10000;
    gen_cycle(&cy, "RESET", 0);
    gen_cycle(&one, "RESET", 0);
    printf("RESET cycle: %d documents, %zu responses, %zu bytes, %zu bytes per document "
           "array, %d-byte pieces\n",
           NDOCS, cy.nresp, cy.body.len, cy.doc_bytes / NDOCS, PIECE);

    full = measure(&b, run_full, &cy, NULL);
    unframed = measure(&b, run_unframed, &cy, NULL);
    framer = measure(&b, run_framer, &cy, NULL);
    parse = measure(&b, run_parse, &cy, NULL);
    single = measure(&b, run_full, &one, NULL);
    churn = measure(&b, run_full, &pct, &round);
    churn_all = measure(&b, run_full, &all, &round);
    printf("unchanged cycles emitted no sink event; changed cycles one UPSERT per change\n");

    figure("reset_cpu_per_doc", full.cpu_us * 1e3 / NDOCS, "ns", "2000",
           "CPU per unchanged document in a RESET cycle: framer, parse, listen, diff_seen, sweep");
    figure("reset_wall_per_doc", full.wall_us * 1e3 / NDOCS, "ns", "-", "the same, wall clock");
    figure("reset_cpu_per_doc_unframed", unframed.cpu_us * 1e3 / NDOCS, "ns", "2000",
           "CPU per unchanged document from framed payloads (framer excluded)");
    figure("reset_framer_per_doc", framer.cpu_us * 1e3 / NDOCS, "ns", "-",
           "of which wc_frame_feed alone (UTF-8 check, UTF-16 count, gathering 4 KiB pieces)");
    figure("reset_parse_per_doc", parse.cpu_us * 1e3 / NDOCS, "ns", "-",
           "of which wc_payload_parse alone (json_parse and the [[id,data]] shape check)");
    figure("reset_cpu_per_doc_one_chunk", single.cpu_us * 1e3 / NDOCS, "ns", "2000",
           "as reset_cpu_per_doc, the whole cycle in one ~3 MB chunk (a slow reader catching up)");
    figure("reset_1pct_cpu_per_doc", churn.cpu_us * 1e3 / NDOCS, "ns", "-",
           "CPU per document of a RESET cycle in which 1% of the documents changed");
    figure("reset_cpu_per_changed_doc", (churn_all.cpu_us - full.cpu_us) * 1e3 / NDOCS, "ns", "-",
           "extra CPU per changed document (all changed vs none): decode, convert, hash, event");

    cycle_release(&cy);
    cycle_release(&one);
    cycle_release(&pct);
    cycle_release(&all);
    teardown(&b);
    return 0;
}
