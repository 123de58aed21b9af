/*
 * test_log.c - log lines: journald priority prefixes under systemd, plain timestamped lines
 * otherwise, the level filter, one line per event, and secrets scrubbed from every line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs fn with stderr redirected to a temporary file; returns what it wrote. */
static char captured[8192];

static const char *capture(void (*fn)(void))
{
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    assert_non_null(tmp);
    dup2(fileno(tmp), STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    n = fread(captured, 1, sizeof(captured) - 1, tmp);
    captured[n] = '\0';
    fclose(tmp);
    return captured;
}

static void emit_levels(void)
{
    log_error("broken %d", 1);
    log_warn("careful");
    log_info("fyi");
    log_debug("noise");
}

static void test_journal_style_uses_syslog_priorities(void **state)
{
    (void)state;
    log_init(LOG_STYLE_JOURNAL, LOG_LVL_DEBUG);
    assert_string_equal(capture(emit_levels), "<3>broken 1\n<4>careful\n<6>fyi\n<7>noise\n");
}

static void test_level_filter_drops_less_important_lines(void **state)
{
    (void)state;
    log_init(LOG_STYLE_JOURNAL, LOG_LVL_WARN);
    assert_string_equal(capture(emit_levels), "<3>broken 1\n<4>careful\n");
}

static void test_plain_style_has_timestamp_and_level(void **state)
{
    const char *out;
    (void)state;
    log_init(LOG_STYLE_PLAIN, LOG_LVL_INFO);
    out = capture(emit_levels);
    assert_non_null(strstr(out, "Z error: broken 1\n"));
    assert_non_null(strstr(out, "Z warn: careful\n"));
    assert_null(strstr(out, "noise"));
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
}

static void test_auto_style_follows_journal_stream(void **state)
{
    (void)state;
    setenv("JOURNAL_STREAM", "8:12345", 1);
    log_init(LOG_STYLE_AUTO, LOG_LVL_ERROR);
    assert_string_equal(capture(emit_levels), "<3>broken 1\n");
    unsetenv("JOURNAL_STREAM");
    log_init(LOG_STYLE_AUTO, LOG_LVL_ERROR);
    assert_int_not_equal(capture(emit_levels)[0], '<');
}

static void emit_multiline(void)
{
    log_error("first\nsecond\rthird");
}

static void test_one_event_is_one_line(void **state)
{
    (void)state;
    log_init(LOG_STYLE_JOURNAL, LOG_LVL_INFO);
    assert_string_equal(capture(emit_multiline), "<3>first second third\n");
}

static void emit_secrets(void)
{
    log_error("token: Authorization: Bearer ya29.a0Af-secret_token, next");
    log_error("pw=hunter2-long in text hunter2-long");
}

static void test_bearer_tokens_and_registered_secrets_are_redacted(void **state)
{
    const char *out;
    (void)state;
    log_init(LOG_STYLE_JOURNAL, LOG_LVL_INFO);
    log_secret_add("hunter2-long");
    log_secret_add("abc"); /* too short to register */
    out = capture(emit_secrets);
    assert_string_equal(out, "<3>token: Authorization: Bearer [redacted], next\n"
                             "<3>pw=[redacted] in text [redacted]\n");
    log_secret_clear();
    out = capture(emit_secrets);
    assert_non_null(strstr(out, "hunter2-long"));
}

static void emit_pinned(void)
{
    log_error("db pw pinned-pass-1 and tok-00 tok-19");
}

static void test_pinned_secrets_survive_many_rotating_ones(void **state)
{
    char tok[16];
    const char *out;
    (void)state;
    log_init(LOG_STYLE_JOURNAL, LOG_LVL_INFO);
    log_secret_pin("pinned-pass-1");
    for (int i = 0; i < 20; i++) {
        snprintf(tok, sizeof(tok), "tok-%02d", i);
        log_secret_add(tok);
    }
    out = capture(emit_pinned);
    /* the pinned password and the newest token are hidden; the oldest token was forgotten */
    assert_string_equal(out, "<3>db pw [redacted] and tok-00 [redacted]\n");
    log_secret_clear();
}

static void test_scrub_is_bounded_by_the_output_size(void **state)
{
    char out[8];
    (void)state;
    log_scrub("Bearer abcdefghijkl", out, sizeof(out));
    assert_string_equal(out, "Bearer ");
    log_scrub("plain", out, 0); /* nothing written, no crash */
}

static void test_level_names_parse_both_ways(void **state)
{
    enum log_level l;
    (void)state;
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOG_LVL_DEBUG);
    assert_string_equal(log_level_name(LOG_LVL_WARN), "warn");
    assert_int_equal(log_level_parse("verbose", &l), FS_EINVAL);
    assert_string_equal(log_level_name((enum log_level)99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_style_uses_syslog_priorities),
        cmocka_unit_test(test_level_filter_drops_less_important_lines),
        cmocka_unit_test(test_plain_style_has_timestamp_and_level),
        cmocka_unit_test(test_auto_style_follows_journal_stream),
        cmocka_unit_test(test_one_event_is_one_line),
        cmocka_unit_test(test_bearer_tokens_and_registered_secrets_are_redacted),
        cmocka_unit_test(test_pinned_secrets_survive_many_rotating_ones),
        cmocka_unit_test(test_scrub_is_bounded_by_the_output_size),
        cmocka_unit_test(test_level_names_parse_both_ways),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
