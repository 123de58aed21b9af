/*
 * test_tail_fake.c - the Firestore side end to end against the scriptable fake server, for what
 * the emulator never sends: incremental deltas after a resume, documentDelete and
 * documentRemove, an existence filter whose count is wrong (the target is re-listened without
 * its resume token, and documents the server forgot to delete disappear), and a target removed
 * with a cause. `firesync tail` is the probe: it listens exactly as the agent does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "tests/fake/fake_fs.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROOT "projects/p/databases/(default)/documents"

static fake_fs *fs;
static pid_t tail_pid;
static int tail_fd = -1;
static buf pending;
static char dir[64];

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    char path[128], cfg[1024];
    int p[2];
    FILE *f;
    (void)state;

    fs = fake_fs_start();
    if (!fs)
        return -1;
    fake_fs_set_noop_on_empty_get(fs, false);
    snprintf(dir, sizeof(dir), "/tmp/fs-tailfake.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/config.toml", dir);
    snprintf(cfg, sizeof(cfg),
             "[firestore]\nproject_id = \"p\"\nemulator_host = \"127.0.0.1:%d\"\n"
             "[mysql]\ndatabase = \"unused\"\n"
             "[[collections]]\npath = \"employees\"\ntable = \"employees\"\n",
             fake_fs_port(fs));
    f = fopen(path, "w");
    fputs(cfg, f);
    fclose(f);
    if (pipe(p) != 0)
        return -1;
    tail_pid = fork();
    if (tail_pid == 0) {
        char log[128];
        const char *bin = getenv("FIRESYNC_BIN");
        int fd;
        snprintf(log, sizeof(log), "%s/tail.log", dir);
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(p[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        close(p[0]);
        close(p[1]);
        execl(bin ? bin : "./firesync", "firesync", "tail", "--config", path, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    tail_fd = p[0];
    buf_init(&pending, 16u << 20);
    return 0;
}

static int teardown(void **state)
{
    int st;
    char cmd[128];
    (void)state;
    kill(tail_pid, SIGTERM);
    waitpid(tail_pid, &st, 0);
    close(tail_fd);
    buf_release(&pending);
    fake_fs_free(fs);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* The next line from tail (fails after timeout_ms). */
static char *next_line(int timeout_ms)
{
    long t0 = now_ms();
    char chunk[65536];

    for (;;) {
        char *nl = pending.len ? memchr(pending.p, '\n', pending.len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - pending.p);
            char *line = strndup(pending.p, n);
            buf_consume(&pending, n + 1);
            return line;
        }
        long left = timeout_ms - (now_ms() - t0);
        struct pollfd pf = {tail_fd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            fail_msg("no line from tail within %d ms; see %s/tail.log", timeout_ms, dir);
        ssize_t r = read(tail_fd, chunk, sizeof(chunk));
        if (r <= 0)
            fail_msg("tail exited; see %s/tail.log", dir);
        buf_add(&pending, chunk, (size_t)r);
    }
}

static void expect_line(const char *needle1, const char *needle2)
{
    char *l = next_line(10000);
    if (!strstr(l, needle1) || (needle2 && !strstr(l, needle2)))
        fail_msg("tail printed %s\nwanted %s%s%s", l, needle1, needle2 ? " and " : "",
                 needle2 ? needle2 : "");
    free(l);
}

static void push_doc(const char *id, const char *val, int secs)
{
    fake_fs_pushf(fs,
                  "[{\"documentChange\":{\"document\":{\"name\":\"" ROOT "/employees/%s\","
                  "\"fields\":{\"v\":{\"stringValue\":\"%s\"}},"
                  "\"createTime\":\"2026-01-01T00:00:00Z\",\"updateTime\":\"2026-01-01T00:00:%02dZ\"},"
                  "\"targetIds\":[2]}}]",
                  id, val, secs);
}

static void push_tc(const char *type, const char *extra)
{
    fake_fs_pushf(fs, "[{\"targetChange\":{\"targetChangeType\":\"%s\",\"targetIds\":[2]%s}}]", type,
                  extra);
}

static void push_global(const char *token, int secs)
{
    fake_fs_pushf(fs,
                  "[{\"targetChange\":{\"resumeToken\":\"%s\",\"readTime\":\"2026-01-01T00:01:%02dZ\"}}]",
                  token, secs);
}

/* ADD, two documents, CURRENT, global NO_CHANGE: the initial load. */
static void initial_load(void)
{
    assert_true(fake_fs_wait(fs, FAKE_FS_SESSIONS, 1, 10000));
    assert_true(fake_fs_wait_map(fs, "\"collectionId\":\"employees\"", 10000));
    push_tc("ADD", "");
    push_doc("e1", "one", 1);
    push_doc("e2", "two", 2);
    push_tc("CURRENT", ",\"resumeToken\":\"VDE=\"");
    push_global("VDI=", 3);
    expect_line("\"op\":\"create\"", "employees/e1\"");
    expect_line("\"op\":\"create\"", "employees/e2\"");
    expect_line("\"op\":\"consistent\"", "\"resume_token\":\"VDI=\"");
}

static void test_deltas_deletes_and_removes_after_the_initial_load(void **state)
{
    (void)state;
    initial_load();
    push_doc("e1", "uno", 10); /* a delta: only the changed document */
    fake_fs_pushf(fs, "[{\"documentDelete\":{\"document\":\"" ROOT "/employees/e2\","
                      "\"removedTargetIds\":[2],\"readTime\":\"2026-01-01T00:00:11Z\"}}]");
    push_doc("e3", "three", 12);
    fake_fs_pushf(fs, "[{\"documentRemove\":{\"document\":\"" ROOT "/employees/e3\","
                      "\"removedTargetIds\":[2],\"readTime\":\"2026-01-01T00:00:13Z\"}}]");
    push_global("VDM=", 14);
    expect_line("\"op\":\"update\"", "\"v\":\"uno\"");
    expect_line("\"op\":\"delete\"", "employees/e2\"");
    expect_line("\"op\":\"create\"", "employees/e3\"");
    expect_line("\"op\":\"delete\"", "employees/e3\"");
    expect_line("\"op\":\"consistent\"", "\"live\":1");
}

static void test_existence_filter_mismatch_relistens_and_finds_forgotten_deletes(void **state)
{
    (void)state;
    initial_load();
    /* the server says one document; tail holds two: it forgot to tell us of a delete */
    fake_fs_pushf(fs, "[{\"filter\":{\"targetId\":2,\"count\":1}}]");
    assert_true(fake_fs_wait_map(fs, "\"removeTarget\":2", 10000));
    assert_true(fake_fs_wait_map(fs, "existence-filter-mismatch", 10000));
    /* the re-listen carries no resume token */
    {
        char *last = NULL;
        for (size_t i = 0;; i++) {
            char *m = fake_fs_map(fs, i);
            if (!m)
                break;
            free(last);
            last = m;
        }
        assert_non_null(last);
        assert_null(strstr(last, "resumeToken"));
        free(last);
    }
    push_tc("REMOVE", "");
    push_tc("ADD", "");
    push_doc("e1", "one", 1); /* the whole set again: only e1 exists */
    push_tc("CURRENT", ",\"resumeToken\":\"VDU=\"");
    push_global("VDY=", 20);
    expect_line("\"op\":\"delete\"", "employees/e2\"");
    expect_line("\"op\":\"consistent\"", "\"live\":1");
}

static void test_target_removed_with_a_cause_is_reported(void **state)
{
    (void)state;
    initial_load();
    push_tc("REMOVE", ",\"cause\":{\"code\":7,\"message\":\"Missing or insufficient permissions.\"}");
    expect_line("\"op\":\"error\"", "insufficient permissions");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_deltas_deletes_and_removes_after_the_initial_load),
        T(test_existence_filter_mismatch_relistens_and_finds_forgotten_deletes),
        T(test_target_removed_with_a_cause_is_reported),
    };
    return cmocka_run_group_tests_name("tail_fake", tests, NULL, NULL);
}
