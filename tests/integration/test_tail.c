/*
 * test_tail.c - `firesync tail` on the real emulator: creates, updates and deletes written
 * through REST show up as JSON lines, with non-ASCII text, Gson-escaped characters and a
 * 900 KB document intact; unchanged documents re-sent by the emulator's RESETs print nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/harness/agent_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct agent_env ae;
static pid_t tail_pid;
static int tail_fd = -1;
static buf pending; /* bytes read from tail not yet consumed as lines */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start_tail(void)
{
    int p[2];
    const char *bin = getenv("FIRESYNC_BIN");
    char log[700];

    assert_int_equal(pipe(p), 0);
    snprintf(log, sizeof(log), "%s/tail.log", ae.dir);
    tail_pid = fork();
    if (tail_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(p[1], 1);
        if (fd >= 0)
            dup2(fd, 2);
        close(p[0]);
        close(p[1]);
        execl(bin ? bin : "./firesync", "firesync", "tail", "--config", ae.config,
              "--collection", "employees", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    tail_fd = p[0];
    buf_init(&pending, 64u << 20);
}

/* The next line containing `needle` (others are skipped), or fails after timeout_ms. */
static char *next_line(const char *needle, int timeout_ms)
{
    long t0 = now_ms();
    char chunk[65536];

    for (;;) {
        char *nl;
        while (pending.len && (nl = memchr(pending.p, '\n', pending.len))) {
            size_t n = (size_t)(nl - pending.p);
            char *line = strndup(pending.p, n);
            buf_consume(&pending, n + 1);
            if (strstr(line, needle)) {
                print_message("tail after %ld ms: %.150s%s\n", now_ms() - t0, line,
                              strlen(line) > 150 ? "..." : "");
                return line;
            }
            free(line);
        }
        long left = timeout_ms - (now_ms() - t0);
        struct pollfd pf = {tail_fd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            fail_msg("no tail line with %s within %d ms; see %s/tail.log", needle, timeout_ms,
                     ae.dir);
        ssize_t r = read(tail_fd, chunk, sizeof(chunk));
        if (r <= 0)
            fail_msg("tail exited; see %s/tail.log", ae.dir);
        assert_int_equal(buf_add(&pending, chunk, (size_t)r), 0);
    }
}

static int setup(void **state)
{
    (void)state;
    if (agent_env_init(&ae, "tail", "[[collections]]\npath = \"employees\"\ntable = \"employees\"\n",
                       NULL) != 0)
        return -1;
    start_tail();
    return 0;
}

static int teardown(void **state)
{
    int st;
    (void)state;
    if (tail_pid > 0) {
        kill(tail_pid, SIGTERM);
        waitpid(tail_pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* SIGTERM ends tail cleanly */
    }
    close(tail_fd);
    buf_release(&pending);
    return 0;
}

static void test_tail_shows_create_update_and_delete(void **state)
{
    char *l;
    (void)state;
    l = next_line("\"op\":\"consistent\"", 20000); /* the initial (empty) snapshot */
    free(l);
    assert_int_equal(fs_put(&ae, "employees", "e1",
                            "{\"name\":{\"stringValue\":\"Zoë 日本 😀\"},"
                            "\"html\":{\"stringValue\":\"<a href='x'>&=</a>\"},"
                            "\"n\":{\"integerValue\":\"9007199254740993\"},"
                            "\"t\":{\"timestampValue\":\"2026-01-05T09:00:00.123456Z\"}}"),
                     0);
    l = next_line("\"op\":\"create\"", 10000);
    assert_non_null(strstr(l, "documents/employees/e1\""));
    assert_non_null(strstr(l, "\"name\":\"Zoë 日本 😀\""));
    assert_non_null(strstr(l, "<a href='x'>&=</a>"));
    assert_non_null(strstr(l, "\"n\":9007199254740993"));
    assert_non_null(strstr(l, "\"t\":{\"$timestamp\":\"2026-01-05T09:00:00.123456Z\"}"));
    free(l);
    assert_int_equal(fs_put(&ae, "employees", "e1", "{\"name\":{\"stringValue\":\"Zoë\"}}"), 0);
    l = next_line("\"op\":\"update\"", 10000);
    assert_non_null(strstr(l, "\"fields\":{\"name\":\"Zoë\"}"));
    free(l);
    assert_int_equal(fs_delete(&ae, "employees", "e1"), 0);
    l = next_line("\"op\":\"delete\"", 10000);
    assert_non_null(strstr(l, "documents/employees/e1\""));
    free(l);
}

static void test_unchanged_documents_re_sent_by_a_reset_print_nothing(void **state)
{
    char *l;
    (void)state;
    free(next_line("\"op\":\"consistent\"", 20000));
    assert_int_equal(fs_put(&ae, "employees", "a", "{\"x\":{\"integerValue\":\"1\"}}"), 0);
    free(next_line("documents/employees/a\"", 10000));
    free(next_line("\"op\":\"consistent\"", 10000));
    /* the emulator re-sends `a` with `b`; only `b` is news */
    assert_int_equal(fs_put(&ae, "employees", "b", "{\"x\":{\"integerValue\":\"2\"}}"), 0);
    l = next_line("\"op\":", 10000);
    assert_non_null(strstr(l, "documents/employees/b\""));
    free(l);
    l = next_line("\"op\":", 10000);
    assert_non_null(strstr(l, "\"op\":\"consistent\""));
    assert_non_null(strstr(l, "\"live\":"));
    free(l);
}

static void test_a_900_kb_document_arrives_whole(void **state)
{
    size_t n = 300000;
    char *fields = malloc(n * 3 + 128), *l;
    size_t o = 0;
    (void)state;
    free(next_line("\"op\":\"consistent\"", 20000));
    o += (size_t)sprintf(fields, "{\"big\":{\"stringValue\":\"");
    for (size_t i = 0; i < n; i++) {
        memcpy(fields + o, "é", 2); /* 2 bytes, 1 UTF-16 unit */
        o += 2;
    }
    for (size_t i = 0; i < n; i++)
        fields[o++] = 'x';
    strcpy(fields + o, "\"}}");
    assert_int_equal(fs_put(&ae, "employees", "big", fields), 0);
    l = next_line("documents/employees/big\"", 20000);
    assert_true(strlen(l) > 900000);
    assert_non_null(strstr(l, "éxxx"));
    free(l);
    free(fields);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_tail_shows_create_update_and_delete),
        T(test_unchanged_documents_re_sent_by_a_reset_print_nothing),
        T(test_a_900_kb_document_arrives_whole),
    };
    return cmocka_run_group_tests_name("tail", tests, NULL, NULL);
}
