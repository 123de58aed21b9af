/*
 * bench_index.c - memory of the applied index per tracked document (aim: under 100 bytes
 * besides its id), and the CPU time of one seen() lookup.
 *
 * Design invariant 3 keeps one in-memory entry per document ever applied (live or tombstone),
 * so the index is what grows with a collection. For 100,000 and then 1,000,000 documents, each
 * size in a fresh child process (so that memory freed by one size cannot hide the next one's),
 * this program builds a struct diff for the employees mapping of bench_reset (six columns plus
 * the extra JSON column: 7 cell hashes per entry) and fills it through diff_load_row, the path
 * that rebuilds the index from MySQL at start, with ids "emp-000123" (10 bytes), an update time
 * and 7 hashes each.
 *
 * Memory is read two ways and reported per document minus the 10-byte id:
 *   - diff_index_memory(): what the index says it holds (slabs and hash table);
 *   - the resident set from /proc/self/statm before and after the load: what the process really
 *     pays, malloc overhead and page rounding included.
 * Lookup: diff_seen() on NLOOK existing documents in random order (full resource names built
 * before the clock starts; every call must find its document applied), best of RUNS passes,
 * getrusage user+sys CPU per call.
 *
 * Output: progress lines, then one "FIGURE|name|value|unit|aim|meaning" line per figure for
 * scripts/bench.sh. Figures, not verdicts.
 */
#include "agent/config.h"
#include "common/buf.h"
#include "common/err.h"
#include "diff/diff.h"
#include "mysql/sink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define DB "projects/demo/databases/(default)"
#define PREFIX DB "/documents/employees/"
#define ID_LEN 10   /* "emp-000123" */
#define NAME_LEN 64 /* PREFIX + id */
#define NLOOK 200000
#define RUNS 7
#define T0_US INT64_C(1795420800000000) /* 2026-11-23T08:00:00Z */

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

static void die(const char *what, const fserr *e)
{
    fprintf(stderr, "bench_index: %s%s%s\n", what, e ? ": " : "", e ? e->msg : "");
    exit(1);
}

static int ignore_event(void *ud, struct sink_event *ev)
{
    (void)ud;
    sink_event_free(ev);
    return 0;
}

static size_t rss_bytes(void)
{
    unsigned long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f || fscanf(f, "%lu %lu", &size, &resident) != 2)
        die("cannot read /proc/self/statm", NULL);
    fclose(f);
    return resident * (size_t)sysconf(_SC_PAGESIZE);
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static uint64_t next_rand(uint64_t *s) /* xorshift64 */
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int64_t update_us(size_t i)
{
    return T0_US + (int64_t)i * 1000 + 457;
}

static void load(struct diff *d, size_t n)
{
    uint64_t hashes[7], seed = 42;
    char key[16];
    struct sink_index_row row = {.key = key, .keylen = ID_LEN, .hashes = hashes, .nhashes = 7};

    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "emp-%06zu", i);
        for (int k = 0; k < 7; k++)
            hashes[k] = next_rand(&seed);
        row.update_us = update_us(i);
        if (diff_load_row(d, 0, &row) != 0)
            die("diff_load_row failed", NULL);
    }
}

/* Best CPU time of one diff_seen() over NLOOK random existing documents. */
static double seen_ns(struct diff *d, size_t n)
{
    char *names = malloc((size_t)NLOOK * NAME_LEN);
    struct fs_time *times = malloc(NLOOK * sizeof(*times));
    uint64_t seed = 7;
    double best = 1e300;

    if (!names || !times)
        die("out of memory", NULL);
    for (size_t k = 0; k < NLOOK; k++) {
        size_t i = (size_t)(next_rand(&seed) % n);
        char name[NAME_LEN + 1];
        snprintf(name, sizeof(name), PREFIX "emp-%06zu", i);
        memcpy(names + k * NAME_LEN, name, NAME_LEN);
        times[k].seconds = update_us(i) / 1000000;
        times[k].nanos = (int32_t)(update_us(i) % 1000000 * 1000);
    }
    for (int r = 0; r < RUNS; r++) {
        size_t found = 0;
        double c0 = cpu_us(), c1;
        for (size_t k = 0; k < NLOOK; k++)
            found += diff_seen(d, 0, names + k * NAME_LEN, NAME_LEN, times[k]);
        c1 = cpu_us();
        if (found != NLOOK)
            die("seen() missed applied documents", NULL);
        if (c1 - c0 < best)
            best = c1 - c0;
    }
    free(names);
    free(times);
    return best * 1e3 / NLOOK;
}

static void figure(const char *name, double v, const char *unit, const char *aim, const char *what)
{
    printf("FIGURE|%s|%.1f|%s|%s|%s\n", name, v, unit, aim, what);
}

static void run(size_t n, const char *tag)
{
    struct cfg *cfg;
    struct diff *d;
    fserr e = {0};
    buf errs;
    size_t rss0, rss1, mem;
    char name[64], what[160];

    buf_init(&errs, 0);
    if (cfg_load_mem("bench", CONFIG, strlen(CONFIG), &cfg, &errs, &e) != 0) {
        fprintf(stderr, "%s", buf_str(&errs));
        die("cfg_load_mem", &e);
    }
    buf_release(&errs);
    if (diff_new(cfg, DB, ignore_event, NULL, &d, &e) != 0)
        die("diff_new", &e);

    rss0 = rss_bytes();
    load(d, n);
    rss1 = rss_bytes();
    mem = diff_index_memory(d);
    if (diff_tracked(d, 0) != n || diff_live(d, 0) != n)
        die("the index does not hold every document", NULL);
    printf("%zu documents, %u cells each: diff_index_memory %zu bytes, RSS %zu -> %zu bytes\n", n,
           diff_ncells(d, 0), mem, rss0, rss1);

    snprintf(name, sizeof(name), "index_bytes_per_doc_%s", tag);
    snprintf(what, sizeof(what), "diff_index_memory() per document minus its 10-byte id, %s docs",
             tag);
    figure(name, (double)mem / (double)n - ID_LEN, "B", "100", what);
    snprintf(name, sizeof(name), "index_rss_per_doc_%s", tag);
    snprintf(what, sizeof(what),
             "resident memory the load added, per document minus its id, %s docs", tag);
    figure(name, (double)(rss1 - rss0) / (double)n - ID_LEN, "B", "100", what);
    snprintf(name, sizeof(name), "seen_ns_%s", tag);
    snprintf(what, sizeof(what),
             "CPU per diff_seen() of an applied document, random order, %s docs", tag);
    figure(name, seen_ns(d, n), "ns", "-", what);

    diff_free(d);
    cfg_free(cfg);
}

int main(void)
{
    static const struct {
        size_t n;
        const char *tag;
    } sizes[] = {{100000, "100k"}, {1000000, "1M"}};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        pid_t pid;
        int status;

        fflush(stdout);
        pid = fork();
        if (pid < 0)
            die("fork failed", NULL);
        if (pid == 0) {
            run(sizes[i].n, sizes[i].tag);
            exit(0);
        }
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 1;
    }
    return 0;
}
