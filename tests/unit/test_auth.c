/*
 * test_auth.c - the pure decisions of the token provider, without a loop or a network: which
 * credential source a configuration selects, which emulator hosts count as loopback (and the
 * message that refuses the others), when a token is refreshed for any lifetime, how the retry
 * backoff grows and jitters within its band, and how GCE_METADATA_HOST becomes the metadata URL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "firestore/auth.h"

#include <stdio.h>
#include <string.h>

static struct cfg_firestore cfg_with(const char *emulator, const char *key)
{
    struct cfg_firestore c = {0};

    c.emulator_host = (char *)emulator;
    c.credentials_file = (char *)key;
    c.endpoint = (char *)"https://firestore.googleapis.com";
    return c;
}

/* ---- mode selection ------------------------------------------------------------------------ */

static void test_mode_prefers_emulator_then_key_file_then_metadata(void **state)
{
    struct cfg_firestore c;
    (void)state;

    c = cfg_with("127.0.0.1:8080", "/etc/firesync/key.json");
    assert_int_equal(fsauth_mode_select(&c), FSAUTH_EMULATOR);
    c = cfg_with(NULL, "/etc/firesync/key.json");
    assert_int_equal(fsauth_mode_select(&c), FSAUTH_SERVICE_ACCOUNT);
    c = cfg_with(NULL, NULL);
    assert_int_equal(fsauth_mode_select(&c), FSAUTH_METADATA);
}

static void test_mode_treats_empty_strings_as_unset(void **state)
{
    struct cfg_firestore c;
    (void)state;

    c = cfg_with("", "/k.json");
    assert_int_equal(fsauth_mode_select(&c), FSAUTH_SERVICE_ACCOUNT);
    c = cfg_with("", "");
    assert_int_equal(fsauth_mode_select(&c), FSAUTH_METADATA);
}

static void test_mode_names_are_stable_words(void **state)
{
    (void)state;
    assert_string_equal(fsauth_mode_name(FSAUTH_EMULATOR), "emulator");
    assert_string_equal(fsauth_mode_name(FSAUTH_SERVICE_ACCOUNT), "service-account");
    assert_string_equal(fsauth_mode_name(FSAUTH_METADATA), "metadata");
    assert_string_equal(fsauth_mode_name((enum fsauth_mode)42), "unknown");
}

/* ---- loopback ------------------------------------------------------------------------------ */

static void test_loopback_hosts_are_recognised(void **state)
{
    static const char *const yes[] = {
        "127.0.0.1:8080",          "127.0.0.1",  "127.255.3.4:1", "localhost:8080",
        "LocalHost:65535",         "[::1]:8080", "[::1]",         "::1",
        "[::ffff:127.0.0.1]:9000",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!fsauth_host_is_loopback(yes[i]))
            fail_msg("%s should count as loopback", yes[i]);
}

static void test_other_hosts_and_malformed_ones_are_not_loopback(void **state)
{
    static const char *const no[] = {
        "10.0.0.1:8080",
        "128.0.0.1:8080",
        "0.0.0.0:8080",
        "169.254.169.254:80",
        "firestore.example.com:8080",
        "localhost.example.com:8080",
        "127.0.0.1.nip.io:80",
        "[::2]:8080",
        "[2001:db8::1]:8080",
        "[::ffff:10.0.0.1]:80",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:",
        "127.0.0.1:80x",
        "[::1",
        "[::1]x",
        "[127.0.0.1]:80",
        ":8080",
        "",
        "127.1:80",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (fsauth_host_is_loopback(no[i]))
            fail_msg("%s must not count as loopback", no[i]);
    assert_false(fsauth_host_is_loopback(NULL));
}

static void test_emulator_check_refuses_a_remote_host_naming_it_and_the_rule(void **state)
{
    fserr e = {0};
    (void)state;

    assert_int_equal(fsauth_emulator_check("firestore.example.com:8080", &e), FS_ECONFIG);
    assert_int_equal(e.code, FS_ECONFIG);
    assert_non_null(strstr(e.msg, "firestore.example.com:8080"));
    assert_non_null(strstr(e.msg, "loopback"));
    assert_non_null(strstr(e.msg, "plain HTTP"));
    assert_int_equal(fsauth_emulator_check("localhost:8080", &e), 0);
    assert_int_equal(fsauth_emulator_check("[::1]:8080", NULL), 0);
}

static void test_emulator_check_needs_a_port(void **state)
{
    fserr e = {0};
    (void)state;

    assert_int_equal(fsauth_emulator_check("127.0.0.1", &e), FS_ECONFIG);
    assert_non_null(strstr(e.msg, "host:port"));
    assert_int_equal(fsauth_emulator_check("::1", &e), FS_ECONFIG);
    assert_non_null(strstr(e.msg, "[::1]:8080"));
    assert_int_equal(fsauth_emulator_check(NULL, &e), FS_ECONFIG);
}

/* ---- refresh schedule ---------------------------------------------------------------------- */

static void test_refresh_comes_at_80_percent_for_an_hour_token(void **state)
{
    (void)state;
    /* 80% is 48 min, earlier than 55 min (5 min before) */
    assert_int_equal(fsauth_refresh_delay_ms(3600), 2880000);
}

static void test_refresh_comes_5_minutes_early_when_that_is_earlier(void **state)
{
    (void)state;
    /* 10 min: 80% is 8 min, 5 min before expiry is 5 min */
    assert_int_equal(fsauth_refresh_delay_ms(600), 300000);
    /* 20 min: 16 min vs 15 min */
    assert_int_equal(fsauth_refresh_delay_ms(1200), 900000);
}

static void test_refresh_of_short_tokens_waits_at_least_half_their_life(void **state)
{
    (void)state;
    /* 400 s: 5 min before would be at 100 s, below half (200 s) */
    assert_int_equal(fsauth_refresh_delay_ms(400), 200000);
    assert_int_equal(fsauth_refresh_delay_ms(2), 1000);
    assert_int_equal(fsauth_refresh_delay_ms(1), 500);
    assert_int_equal(fsauth_refresh_delay_ms(0), 0);
    assert_int_equal(fsauth_refresh_delay_ms(-7), 0);
}

static void test_refresh_always_lands_inside_the_second_half_of_the_life(void **state)
{
    int64_t prev = 0;
    (void)state;

    for (int64_t s = 1; s <= 100000; s += (s < 2000 ? 1 : 97)) {
        int64_t d = fsauth_refresh_delay_ms(s);
        if (d < s * 500 || d >= s * 1000 || d > s * 800 || d < prev)
            fail_msg("lifetime %lld s: refresh at %lld ms", (long long)s, (long long)d);
        prev = d;
    }
    /* a huge lifetime does not overflow */
    assert_true(fsauth_refresh_delay_ms(INT64_MAX) > 0);
}

/* ---- backoff ------------------------------------------------------------------------------- */

static void test_backoff_doubles_within_its_jitter_band(void **state)
{
    (void)state;
    /* rnd 0 gives the bottom of [cap/2, cap], a huge rnd lands anywhere inside it */
    for (unsigned n = 1; n <= 6; n++) {
        int64_t cap = (int64_t)1000 << (n - 1);
        assert_int_equal(fsauth_backoff_ms(n, 1000, 60000, 0), cap / 2);
        assert_int_equal(fsauth_backoff_ms(n, 1000, 60000, (uint64_t)cap / 2), cap);
        for (uint64_t r = 1; r < 1000000; r = r * 7 + 3) {
            int64_t d = fsauth_backoff_ms(n, 1000, 60000, r);
            assert_true(d >= cap / 2 && d <= cap);
        }
    }
}

static void test_backoff_stops_growing_at_its_cap(void **state)
{
    (void)state;
    assert_int_equal(fsauth_backoff_ms(7, 1000, 60000, 0), 30000);
    assert_int_equal(fsauth_backoff_ms(50, 1000, 60000, 0), 30000);
    assert_int_equal(fsauth_backoff_ms(4000000000u, 1000, 60000, 30000), 60000);
    /* a max below the base is raised to it; n == 0 counts as the first failure */
    assert_int_equal(fsauth_backoff_ms(3, 500, 10, 0), 250);
    assert_int_equal(fsauth_backoff_ms(0, 100, 1000, 0), 50);
}

static void test_backoff_jitter_spreads_agents_that_failed_together(void **state)
{
    int64_t seen[16];
    size_t distinct = 0;
    (void)state;

    for (uint64_t r = 0; r < 16; r++) {
        int64_t d = fsauth_backoff_ms(5, 1000, 60000, r * 2654435761u);
        bool dup = false;
        for (size_t i = 0; i < distinct; i++)
            dup = dup || seen[i] == d;
        if (!dup)
            seen[distinct++] = d;
    }
    assert_true(distinct >= 12);
}

/* ---- metadata URL -------------------------------------------------------------------------- */

static void assert_url(const char *env, const char *want)
{
    buf b;

    buf_init(&b, 4096);
    if (fsauth_metadata_url(env, &b) != 0)
        fail_msg("GCE_METADATA_HOST=%s refused", env ? env : "(unset)");
    assert_string_equal(buf_str(&b), want);
    buf_release(&b);
}

static void test_metadata_url_defaults_to_the_link_local_server(void **state)
{
    (void)state;
    assert_url(NULL, "http://169.254.169.254" FSAUTH_METADATA_TOKEN_PATH);
    assert_url("", "http://169.254.169.254" FSAUTH_METADATA_TOKEN_PATH);
}

static void test_metadata_url_follows_gce_metadata_host(void **state)
{
    (void)state;
    assert_url("127.0.0.1:8975", "http://127.0.0.1:8975" FSAUTH_METADATA_TOKEN_PATH);
    assert_url("metadata.google.internal",
               "http://metadata.google.internal" FSAUTH_METADATA_TOKEN_PATH);
    assert_url("http://127.0.0.1:1234", "http://127.0.0.1:1234" FSAUTH_METADATA_TOKEN_PATH);
    assert_url("http://[::1]:1234/", "http://[::1]:1234" FSAUTH_METADATA_TOKEN_PATH);
    assert_url("https://md.example.com", "https://md.example.com" FSAUTH_METADATA_TOKEN_PATH);
}

static void test_metadata_url_refuses_values_that_are_not_a_host(void **state)
{
    static const char *const bad[] = {
        "ftp://127.0.0.1", "http://", "127.0.0.1/x",    "http://127.0.0.1/prefix", "a b",
        "127.0.0.1?x=1",   "h#f",     "user@127.0.0.1", "http://u:p@127.0.0.1",
    };
    buf b;
    (void)state;

    buf_init(&b, 4096);
    buf_adds(&b, "keep");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fsauth_metadata_url(bad[i], &b) != FS_EINVAL)
            fail_msg("GCE_METADATA_HOST=%s accepted", bad[i]);
        assert_string_equal(buf_str(&b), "keep");
    }
    buf_release(&b);
}

static void test_metadata_url_respects_the_buffer_cap(void **state)
{
    buf b;
    (void)state;

    buf_init(&b, 20);
    assert_int_equal(fsauth_metadata_url(NULL, &b), FS_ETOOBIG);
    assert_int_equal(b.len, 0);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_prefers_emulator_then_key_file_then_metadata),
        cmocka_unit_test(test_mode_treats_empty_strings_as_unset),
        cmocka_unit_test(test_mode_names_are_stable_words),
        cmocka_unit_test(test_loopback_hosts_are_recognised),
        cmocka_unit_test(test_other_hosts_and_malformed_ones_are_not_loopback),
        cmocka_unit_test(test_emulator_check_refuses_a_remote_host_naming_it_and_the_rule),
        cmocka_unit_test(test_emulator_check_needs_a_port),
        cmocka_unit_test(test_refresh_comes_at_80_percent_for_an_hour_token),
        cmocka_unit_test(test_refresh_comes_5_minutes_early_when_that_is_earlier),
        cmocka_unit_test(test_refresh_of_short_tokens_waits_at_least_half_their_life),
        cmocka_unit_test(test_refresh_always_lands_inside_the_second_half_of_the_life),
        cmocka_unit_test(test_backoff_doubles_within_its_jitter_band),
        cmocka_unit_test(test_backoff_stops_growing_at_its_cap),
        cmocka_unit_test(test_backoff_jitter_spreads_agents_that_failed_together),
        cmocka_unit_test(test_metadata_url_defaults_to_the_link_local_server),
        cmocka_unit_test(test_metadata_url_follows_gce_metadata_host),
        cmocka_unit_test(test_metadata_url_refuses_values_that_are_not_a_host),
        cmocka_unit_test(test_metadata_url_respects_the_buffer_cap),
    };
    return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
