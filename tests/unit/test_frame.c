/*
 * test_frame.c - the WebChannel chunk framer: the measured examples of webchannel.md section 3,
 * every way HTTP can cut a body into pieces, the cap, each error path, poisoning and reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "firestore/frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEEN 64

/* Collects what the framer delivers. */
struct sink {
    int n;                     /* payloads delivered */
    char *chunk[MAX_SEEN];     /* copies of them */
    size_t len[MAX_SEEN];      /* their lengths */
    const char *ptr[MAX_SEEN]; /* where the framer pointed (to tell in-place from buffered) */
    int fail_at;               /* return fail_code on this payload (1-based); 0 means never */
    int fail_code;
};

static int collect(void *ud, const char *p, size_t len)
{
    struct sink *s = ud;

    assert_non_null(p);
    assert_true(s->n < MAX_SEEN);
    s->chunk[s->n] = xstrndup(p, len);
    s->len[s->n] = len;
    s->ptr[s->n] = p;
    s->n++;
    if (s->fail_at == s->n)
        return s->fail_code;
    return 0;
}

static void sink_clear(struct sink *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->chunk[i]);
    memset(s, 0, sizeof(*s));
}

/* Appends `<units>\n<payload>` to body. */
static void frame(buf *body, const char *payload)
{
    size_t n = strlen(payload);
    assert_int_equal(buf_printf(body, "%zu\n", wc_utf16_units(payload, n)), 0);
    assert_int_equal(buf_add(body, payload, n), 0);
}

static size_t code_points(const char *p, size_t n)
{
    size_t cps = 0;
    for (size_t i = 0; i < n; i++)
        cps += ((unsigned char)p[i] & 0xC0) != 0x80;
    return cps;
}

/* head + `pad` ASCII letters + tail, exactly `total` bytes. */
static char *padded(const char *head, const char *tail, size_t total)
{
    size_t h = strlen(head), t = strlen(tail);
    char *s;

    assert_true(h + t <= total);
    s = xmalloc(total + 1);
    memcpy(s, head, h);
    memset(s + h, 'a', total - h - t);
    memcpy(s + total - t, tail, t);
    s[total] = '\0';
    return s;
}

/* Feeds body in pieces of `step` bytes; returns the first error (0 when none). */
static int feed_in_steps(wc_framer *f, const char *body, size_t n, size_t step, struct sink *s,
                         fserr *e)
{
    for (size_t i = 0; i < n; i += step) {
        size_t k = n - i < step ? n - i : step;
        int rc = wc_frame_feed(f, body + i, k, collect, s, e);
        if (rc)
            return rc;
    }
    return 0;
}

static void check_measured(const char *payload, const char *prefix, size_t units, size_t cps,
                           size_t bytes)
{
    size_t n = strlen(payload);
    static const size_t steps[] = {(size_t)-1, 4096, 4093, 1};
    buf body;
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};

    assert_int_equal(n, bytes);
    assert_int_equal(wc_utf16_units(payload, n), units);
    assert_int_equal(code_points(payload, n), cps);
    buf_init(&body, 0);
    buf_adds(&body, prefix);
    buf_add(&body, payload, n);
    wc_frame_init(&f, 0);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (steps[i] == 1 && n > 10000)
            continue;
        wc_frame_reset(&f);
        assert_int_equal(feed_in_steps(&f, body.p, body.len, steps[i], &s, &e), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.len[0], n);
        assert_memory_equal(s.chunk[0], payload, n);
        assert_false(wc_frame_pending(&f));
        sink_clear(&s);
    }
    wc_frame_release(&f);
    buf_release(&body);
}

static void test_measured_examples_from_the_protocol_note_frame_exactly(void **state)
{
    static const char doc_head[] =
        "[[2,[{\"documentChange\":{\"document\":{\"name\":\"projects/demo/databases/(default)/"
        "documents/t/";
    char *p, *big;
    size_t len;
    (void)state;

    /* doc {"s":"é日本😀"}: 549 units, 548 code points, 556 bytes */
    p = padded(doc_head,
               "\",\"fields\":{\"s\":{\"stringValue\":\"é日本😀\"}}},\"targetIds\":[2]}}]]]", 556);
    check_measured(p, "549\n", 549, 548, 556);
    free(p);

    /* value "José 日本 😀" under key "é日😀key": 589 units, 587 code points, 601 bytes */
    p = padded(
        doc_head,
        "\",\"fields\":{\"é日😀key\":{\"stringValue\":\"José 日本 😀\"}}},\"targetIds\":[2]}}]]]",
        601);
    check_measured(p, "589\n", 589, 587, 601);
    free(p);

    /* 300 000 x é + 300 000 x x: 600549 units, 900549 bytes */
    len = 900549;
    big = xmalloc(len + 1);
    memcpy(big, "[[1,[{\"s\":\"", 11);
    for (size_t i = 0; i < 300000; i++)
        memcpy(big + 11 + 2 * i, "é", 2);
    memset(big + 11 + 600000, 'x', 300000);
    memset(big + 11 + 900000, 'a', len - 11 - 900000 - 5);
    memcpy(big + len - 5, "\"}]]]", 5);
    big[len] = '\0';
    check_measured(big, "600549\n", 600549, 600549, 900549);
    free(big);
}

/* The body used by the split tests, with the offsets where chunks end. */
static const char *split_payloads[] = {
    "[[1,[\"noop\"]]]",
    "",
    "[[2,\"é日本😀\"]]",
    "😀",
    "[[3,[{\"targetChange\":{\"resumeToken\":\"CgkI6MWKgdSdmAM=\"}}]]]",
    "0",
    "é",
};
#define NSPLIT (sizeof(split_payloads) / sizeof(split_payloads[0]))

static void build_split_body(buf *body, size_t *ends)
{
    buf_init(body, 0);
    for (size_t i = 0; i < NSPLIT; i++) {
        frame(body, split_payloads[i]);
        ends[i] = body->len;
    }
}

static void expect_split_payloads(const struct sink *s)
{
    assert_int_equal(s->n, (int)NSPLIT);
    for (size_t i = 0; i < NSPLIT; i++) {
        assert_int_equal(s->len[i], strlen(split_payloads[i]));
        assert_memory_equal(s->chunk[i], split_payloads[i], s->len[i]);
    }
}

static bool is_boundary(const size_t *ends, size_t pos)
{
    if (pos == 0)
        return true;
    for (size_t i = 0; i < NSPLIT; i++)
        if (ends[i] == pos)
            return true;
    return false;
}

static void test_byte_by_byte_feeding_delivers_every_chunk_and_tracks_pending(void **state)
{
    size_t ends[NSPLIT];
    buf body;
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    build_split_body(&body, ends);
    wc_frame_init(&f, 1024);
    for (size_t i = 0; i < body.len; i++) {
        assert_int_equal(wc_frame_feed(&f, body.p + i, 1, collect, &s, &e), 0);
        assert_int_equal(wc_frame_pending(&f), !is_boundary(ends, i + 1));
    }
    expect_split_payloads(&s);
    sink_clear(&s);
    wc_frame_release(&f);
    buf_release(&body);
}

static void test_every_cut_into_two_or_three_pieces_gives_the_same_chunks(void **state)
{
    size_t ends[NSPLIT];
    buf body;
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    build_split_body(&body, ends);
    wc_frame_init(&f, 1024);
    for (size_t a = 0; a <= body.len; a++) {
        for (size_t b = a; b <= body.len; b++) {
            wc_frame_reset(&f);
            assert_int_equal(wc_frame_feed(&f, body.p, a, collect, &s, &e), 0);
            assert_int_equal(wc_frame_pending(&f), !is_boundary(ends, a));
            assert_int_equal(wc_frame_feed(&f, body.p + a, b - a, collect, &s, &e), 0);
            assert_int_equal(wc_frame_feed(&f, body.p + b, body.len - b, collect, &s, &e), 0);
            assert_false(wc_frame_pending(&f));
            expect_split_payloads(&s);
            sink_clear(&s);
        }
    }
    wc_frame_release(&f);
    buf_release(&body);
}

static void test_four_byte_character_cut_between_pieces_is_reassembled(void **state)
{
    static const char body[] = "5\n\xF0\x9F\x98\x80x\xF0\x9F\x98\x81"; /* "😀x😁" */
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    wc_frame_init(&f, 64);
    for (size_t cut = 3; cut <= 6; cut++) { /* inside the first emoji */
        for (size_t cut2 = cut; cut2 <= sizeof(body) - 1; cut2++) {
            wc_frame_reset(&f);
            assert_int_equal(wc_frame_feed(&f, body, cut, collect, &s, &e), 0);
            assert_int_equal(s.n, 0);
            assert_true(wc_frame_pending(&f));
            assert_int_equal(wc_frame_feed(&f, body + cut, cut2 - cut, collect, &s, &e), 0);
            assert_int_equal(
                wc_frame_feed(&f, body + cut2, sizeof(body) - 1 - cut2, collect, &s, &e), 0);
            assert_int_equal(s.n, 1);
            assert_int_equal(s.len[0], 9);
            assert_memory_equal(s.chunk[0], body + 2, 9);
            sink_clear(&s);
        }
    }
    wc_frame_release(&f);
}

static void test_several_chunks_in_one_piece_are_delivered_in_place(void **state)
{
    /* from the transcript in webchannel.md section 8 */
    static const char body[] = "14\n[[5,[\"noop\"]]]14\n[[6,[\"noop\"]]]7\n[1,6,7]";
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    wc_frame_init(&f, 0);
    assert_int_equal(wc_frame_feed(&f, body, sizeof(body) - 1, collect, &s, &e), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.chunk[0], "[[5,[\"noop\"]]]");
    assert_string_equal(s.chunk[1], "[[6,[\"noop\"]]]");
    assert_string_equal(s.chunk[2], "[1,6,7]");
    /* no copy: each payload points into the piece */
    assert_ptr_equal(s.ptr[0], body + 3);
    assert_ptr_equal(s.ptr[1], body + 20);
    assert_ptr_equal(s.ptr[2], body + 36);
    assert_false(wc_frame_pending(&f));
    assert_int_equal(f.chunk.len, 0);
    sink_clear(&s);

    /* a payload whose prefix ended the previous piece is still in place */
    wc_frame_reset(&f);
    assert_int_equal(wc_frame_feed(&f, body, 3, collect, &s, &e), 0);
    assert_int_equal(wc_frame_feed(&f, body + 3, 14, collect, &s, &e), 0);
    assert_ptr_equal(s.ptr[0], body + 3);
    sink_clear(&s);

    /* a payload split across pieces comes from the framer's buffer */
    wc_frame_reset(&f);
    assert_int_equal(wc_frame_feed(&f, body, 8, collect, &s, &e), 0);
    assert_int_equal(wc_frame_feed(&f, body + 8, sizeof(body) - 9, collect, &s, &e), 0);
    assert_int_equal(s.n, 3);
    assert_true(s.ptr[0] < body || s.ptr[0] >= body + sizeof(body));
    assert_string_equal(s.chunk[0], "[[5,[\"noop\"]]]");
    assert_ptr_equal(s.ptr[1], body + 20);
    sink_clear(&s);
    wc_frame_release(&f);
}

static void test_ascii_runs_are_counted_exactly_at_every_length_and_cut(void **state)
{
    /* the framer takes ASCII 8 bytes at a time: payloads of 0 to 40 bytes back to back, some with
     * a 2- or 4-byte character inside, cut into pieces of every size from 1 to 17 bytes */
    char *want[41];
    buf body;
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    buf_init(&body, 0);
    for (size_t len = 0; len <= 40; len++) {
        want[len] = padded("", "", len);
        for (size_t i = 0; i < len; i++)
            want[len][i] = (char)('a' + i % 26);
        if (len >= 6 && len % 4 == 1)
            memcpy(want[len] + len / 2, "\xC3\xA9", 2);
        if (len >= 6 && len % 4 == 3)
            memcpy(want[len] + len / 3, "\xF0\x9F\x98\x80", 4);
        frame(&body, want[len]);
    }
    wc_frame_init(&f, 0);
    for (size_t step = 1; step <= 18; step++) {
        wc_frame_reset(&f);
        assert_int_equal(feed_in_steps(&f, body.p, body.len, step == 18 ? body.len : step, &s, &e),
                         0);
        assert_int_equal(s.n, 41);
        for (size_t len = 0; len <= 40; len++) {
            assert_int_equal(s.len[len], len);
            assert_memory_equal(s.chunk[len], want[len], len);
        }
        assert_false(wc_frame_pending(&f));
        sink_clear(&s);
    }
    for (size_t len = 0; len <= 40; len++)
        free(want[len]);
    wc_frame_release(&f);
    buf_release(&body);
}

static void test_cap_is_enforced_inside_an_ascii_run(void **state)
{
    /* 16 declared units, 3 of them 3-byte characters, under a 20-byte cap: the ASCII run that
     * follows them passes the cap at payload byte 21 (response byte 23), however it is cut, and
     * never more than the cap is buffered */
    static const char body[] = "16\n日日日abcdefghijklm";
    static const size_t steps[] = {1, 3, 7, 8, 9, 16, 64};
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    int rc = 0;
    (void)state;

    wc_frame_init(&f, 20);
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        wc_frame_reset(&f);
        rc = 0;
        for (size_t i = 0; i < sizeof(body) - 1 && !rc; i += steps[k]) {
            size_t n = sizeof(body) - 1 - i < steps[k] ? sizeof(body) - 1 - i : steps[k];
            rc = wc_frame_feed(&f, body + i, n, collect, &s, &e);
            assert_true(f.chunk.len <= 20);
        }
        assert_int_equal(rc, FS_ETOOBIG);
        if (!strstr(e.msg, "response byte 23 (chunk 1)"))
            fail_msg("step %zu: %s", steps[k], e.msg);
        assert_int_equal(s.n, 0);
    }
    wc_frame_release(&f);
}

static int count_bytes(void *ud, const char *p, size_t len)
{
    (void)p;
    *(size_t *)ud += len;
    return 0;
}

/* Feeds one `<n>\n` + n ASCII bytes payload in 4 KiB pieces, as the back channel gets them. */
static void feed_big(wc_framer *f, size_t n)
{
    char head[24];
    char *piece = xmalloc(4096);
    size_t got = 0, left = n;
    fserr e = {0};

    snprintf(head, sizeof(head), "%zu\n", n);
    memset(piece, 'x', 4096);
    assert_int_equal(wc_frame_feed(f, head, strlen(head), count_bytes, &got, &e), 0);
    while (left) {
        size_t k = left < 4096 ? left : 4096;
        assert_int_equal(wc_frame_feed(f, piece, k, count_bytes, &got, &e), 0);
        left -= k;
    }
    assert_int_equal(got, n);
    free(piece);
}

static void test_gathering_buffer_is_kept_for_the_next_payload_up_to_a_bound(void **state)
{
    wc_framer f;
    const char *p;
    (void)state;

    wc_frame_init(&f, 0);
    /* a 1 MiB payload (a catch-up chunk) grows the buffer, which then serves the next ones, also
     * across responses, without growing again */
    feed_big(&f, (size_t)1 << 20);
    p = f.chunk.p;
    assert_non_null(p);
    assert_true(f.chunk.cap > (size_t)1 << 20);
    assert_int_equal(f.chunk.len, 0);
    feed_big(&f, (size_t)1 << 20);
    wc_frame_reset(&f);
    feed_big(&f, 1000000);
    assert_ptr_equal(f.chunk.p, p);
    /* one far bigger payload does not pin its buffer */
    feed_big(&f, (size_t)6 << 20);
    assert_int_equal(f.chunk.cap, 0);
    wc_frame_release(&f);
}

static void test_zero_length_payloads_are_delivered_empty(void **state)
{
    static const char body[] = "0\n0\n5\nhello0\n";
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    wc_frame_init(&f, 16);
    assert_int_equal(wc_frame_feed(&f, body, sizeof(body) - 1, collect, &s, &e), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.len[0], 0);
    assert_int_equal(s.len[1], 0);
    assert_string_equal(s.chunk[2], "hello");
    assert_int_equal(s.len[3], 0);
    assert_false(wc_frame_pending(&f));
    sink_clear(&s);

    /* "0\n" at the very end of a piece is delivered at once, not with the next piece */
    wc_frame_reset(&f);
    assert_int_equal(wc_frame_feed(&f, "0\n", 2, collect, &s, &e), 0);
    assert_int_equal(s.n, 1);
    assert_false(wc_frame_pending(&f));
    sink_clear(&s);
    wc_frame_release(&f);
}

static void test_declared_units_over_the_cap_are_refused_at_the_prefix(void **state)
{
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    char body[64];
    (void)state;

    wc_frame_init(&f, 16);
    memcpy(body, "16\n", 3);
    memset(body + 3, 'x', 16);
    assert_int_equal(wc_frame_feed(&f, body, 19, collect, &s, &e), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.len[0], 16);
    sink_clear(&s);

    assert_int_equal(wc_frame_feed(&f, "17\n", 3, collect, &s, &e), FS_ETOOBIG);
    assert_int_equal(e.code, FS_ETOOBIG);
    assert_non_null(strstr(e.msg, "17 UTF-16 units"));
    assert_non_null(strstr(e.msg, "16-byte"));

    /* ten digits are syntactically fine, but far over the cap */
    wc_frame_reset(&f);
    assert_int_equal(wc_frame_feed(&f, "9999999999\n", 11, collect, &s, &e), FS_ETOOBIG);
    assert_int_equal(s.n, 0);
    wc_frame_release(&f);
}

static void test_payload_bytes_over_the_cap_are_refused_before_being_buffered(void **state)
{
    /* 6 units of 日 are 18 bytes, past a 16-byte cap although 6 <= 16 */
    buf body;
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    size_t i;
    int rc = 0;
    (void)state;

    buf_init(&body, 0);
    buf_adds(&body, "6\n日日日日日日");
    wc_frame_init(&f, 16);
    for (i = 0; i < body.len; i++) {
        rc = wc_frame_feed(&f, body.p + i, 1, collect, &s, &e);
        assert_true(f.chunk.len <= 16);
        if (rc)
            break;
    }
    assert_int_equal(rc, FS_ETOOBIG);
    assert_int_equal(i, 2 + 16); /* the 17th payload byte */
    assert_int_equal(s.n, 0);
    assert_non_null(strstr(e.msg, "cap"));

    /* the same in one piece */
    wc_frame_reset(&f);
    assert_int_equal(wc_frame_feed(&f, body.p, body.len, collect, &s, &e), FS_ETOOBIG);
    assert_int_equal(s.n, 0);
    wc_frame_release(&f);
    buf_release(&body);
}

/* Feeds body whole and then byte by byte: both must fail with code after delivering nchunks. */
static void expect_error_after(const char *body, size_t n, int nchunks, int code,
                               const char *msg_part)
{
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    int rc = 0;

    /* in one piece */
    wc_frame_init(&f, 64);
    assert_int_equal(wc_frame_feed(&f, body, n, collect, &s, &e), code);
    assert_int_equal(e.code, code);
    if (msg_part && !strstr(e.msg, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", e.msg, msg_part);
    assert_non_null(strstr(e.msg, "webchannel frame: response byte "));
    assert_int_equal(s.n, nchunks);
    sink_clear(&s);

    /* byte by byte: the same code */
    wc_frame_reset(&f);
    for (size_t i = 0; i < n && !rc; i++)
        rc = wc_frame_feed(&f, body + i, 1, collect, &s, &e);
    assert_int_equal(rc, code);
    assert_int_equal(s.n, nchunks);
    sink_clear(&s);
    wc_frame_release(&f);
}

#define EXPECT_ERROR(lit, code, part) expect_error_after(lit, sizeof(lit) - 1, 0, code, part)
#define EXPECT_ERROR_AFTER(lit, nchunks, code, part)                                               \
    expect_error_after(lit, sizeof(lit) - 1, nchunks, code, part)

static void test_malformed_prefixes_are_parse_errors(void **state)
{
    (void)state;
    EXPECT_ERROR("\n", FS_EPARSE, "empty length prefix");
    EXPECT_ERROR("a\n", FS_EPARSE, "expected a digit, found byte 0x61");
    EXPECT_ERROR("12a\n", FS_EPARSE, "expected a digit or '\\n', found byte 0x61");
    EXPECT_ERROR("1\r\nx", FS_EPARSE, "found byte 0x0d");
    EXPECT_ERROR("-1\n", FS_EPARSE, NULL);
    EXPECT_ERROR("+1\n", FS_EPARSE, NULL);
    EXPECT_ERROR(" 1\n", FS_EPARSE, NULL);
    EXPECT_ERROR("00\n", FS_EPARSE, "leading zero");
    EXPECT_ERROR("07\nabcdefg", FS_EPARSE, "leading zero");
    EXPECT_ERROR("12345678901", FS_EPARSE, "longer than 10 digits");
    /* desynchronised: the stream continues with payload text where a prefix is due */
    EXPECT_ERROR_AFTER("2\nab[[1]]", 1, FS_EPARSE, "response byte 4 (chunk 2)");
}

static void test_invalid_utf8_in_a_payload_is_refused(void **state)
{
    (void)state;
    EXPECT_ERROR("2\n\x80x", FS_EUTF8, "unexpected continuation byte 0x80");
    EXPECT_ERROR("1\n\xC0\x80", FS_EUTF8, "impossible byte 0xc0"); /* overlong NUL */
    EXPECT_ERROR("1\n\xC1\xBF", FS_EUTF8, "0xc1");
    EXPECT_ERROR("1\n\xE0\x80\x80", FS_EUTF8, "0x80 where"); /* overlong 3-byte */
    EXPECT_ERROR("1\n\xE0\x9F\xBF", FS_EUTF8, "0xa0..0xbf");
    EXPECT_ERROR("2\n\xF0\x80\x80\x80", FS_EUTF8, "0x90..0xbf"); /* overlong 4-byte */
    EXPECT_ERROR("2\n\xF0\x8F\xBF\xBF", FS_EUTF8, NULL);
    EXPECT_ERROR("1\n\xED\xA0\x80", FS_EUTF8, "0x80..0x9f");     /* U+D800 */
    EXPECT_ERROR("1\n\xED\xBF\xBF", FS_EUTF8, NULL);             /* U+DFFF */
    EXPECT_ERROR("2\n\xF4\x90\x80\x80", FS_EUTF8, "0x80..0x8f"); /* U+110000 */
    EXPECT_ERROR("2\n\xF5\x80\x80\x80", FS_EUTF8, "impossible byte 0xf5");
    EXPECT_ERROR("1\n\xFF", FS_EUTF8, NULL);
    EXPECT_ERROR("2\n\xE6\x97x", FS_EUTF8, "0x78 where"); /* truncated 日 */
    EXPECT_ERROR("2\n\xC3x", FS_EUTF8, NULL);             /* truncated é */
    EXPECT_ERROR("3\n\xF0\x9F\x98y", FS_EUTF8, NULL);     /* truncated 😀 */
}

static void test_count_ending_inside_a_surrogate_pair_is_a_protocol_error(void **state)
{
    (void)state;
    EXPECT_ERROR("1\n\xF0\x9F\x98\x80", FS_EPROTO, "two UTF-16 halves");
    EXPECT_ERROR("3\nab\xF0\x9F\x98\x80", FS_EPROTO, "response byte 4 (chunk 1)");
    EXPECT_ERROR_AFTER("2\nok1\n\xF0\x9F\x98\x80", 1, FS_EPROTO, "(chunk 2)");
}

static void test_an_error_poisons_the_framer_until_reset(void **state)
{
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    wc_frame_init(&f, 64);
    assert_int_equal(wc_frame_feed(&f, "x", 1, collect, &s, &e), FS_EPARSE);
    assert_true(wc_frame_pending(&f));
    fserr_clear(&e);
    assert_int_equal(wc_frame_feed(&f, "2\nok", 4, collect, &s, &e), FS_EPARSE);
    assert_int_equal(e.code, FS_EPARSE);
    assert_non_null(strstr(e.msg, "reset"));
    assert_int_equal(wc_frame_feed(&f, NULL, 0, collect, &s, &e), FS_EPARSE);
    assert_int_equal(s.n, 0);

    wc_frame_reset(&f);
    assert_false(wc_frame_pending(&f));
    assert_int_equal(wc_frame_feed(&f, "2\nok", 4, collect, &s, &e), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.chunk[0], "ok");
    sink_clear(&s);
    wc_frame_release(&f);
}

static void test_a_failing_callback_stops_the_feed_and_poisons(void **state)
{
    static const char body[] = "1\na1\nb1\nc";
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    wc_frame_init(&f, 64);
    s.fail_at = 2;
    s.fail_code = FS_ECANCELED;
    assert_int_equal(wc_frame_feed(&f, body, sizeof(body) - 1, collect, &s, &e), FS_ECANCELED);
    assert_int_equal(s.n, 2);
    assert_int_equal(e.code, FS_ECANCELED);
    assert_non_null(strstr(e.msg, "chunk 2"));
    assert_int_equal(wc_frame_feed(&f, "1\nd", 3, collect, &s, &e), FS_ECANCELED);
    assert_int_equal(s.n, 2);
    sink_clear(&s);

    /* a message the handler left in the same fserr is kept */
    wc_frame_reset(&f);
    s.fail_at = 1;
    s.fail_code = FS_EPROTO;
    fserr_set(&e, FS_EPROTO, "listen: array id went backwards");
    assert_int_equal(wc_frame_feed(&f, body, sizeof(body) - 1, collect, &s, &e), FS_EPROTO);
    assert_string_equal(e.msg, "listen: array id went backwards");
    sink_clear(&s);
    wc_frame_release(&f);
}

static void test_pending_reports_a_response_truncated_inside_a_chunk(void **state)
{
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    wc_frame_init(&f, 64);
    assert_false(wc_frame_pending(&f));
    assert_int_equal(wc_frame_feed(&f, "1", 1, collect, &s, &e), 0);
    assert_true(wc_frame_pending(&f)); /* inside a prefix */
    assert_int_equal(wc_frame_feed(&f, "0\n", 2, collect, &s, &e), 0);
    assert_true(wc_frame_pending(&f)); /* prefix done, payload not started */
    assert_int_equal(wc_frame_feed(&f, "abcdefghi", 9, collect, &s, &e), 0);
    assert_true(wc_frame_pending(&f)); /* one unit short */
    assert_int_equal(s.n, 0);
    assert_int_equal(wc_frame_feed(&f, "j", 1, collect, &s, &e), 0);
    assert_false(wc_frame_pending(&f));
    assert_string_equal(s.chunk[0], "abcdefghij");
    /* a 2-byte character with only its lead byte: units are counted, the sequence is not done */
    assert_int_equal(wc_frame_feed(&f, "1\n\xC3", 3, collect, &s, &e), 0);
    assert_true(wc_frame_pending(&f));
    assert_int_equal(wc_frame_feed(&f, "\xA9", 1, collect, &s, &e), 0);
    assert_false(wc_frame_pending(&f));
    assert_string_equal(s.chunk[1], "é");
    sink_clear(&s);
    wc_frame_release(&f);
}

static void test_reset_mid_chunk_starts_a_clean_response(void **state)
{
    wc_framer f;
    struct sink s = {0};
    fserr e = {0};
    (void)state;

    wc_frame_init(&f, 64);
    assert_int_equal(wc_frame_feed(&f, "5\nab\xE6", 5, collect, &s, &e), 0);
    assert_true(wc_frame_pending(&f));
    wc_frame_reset(&f);
    assert_false(wc_frame_pending(&f));
    assert_int_equal(f.chunk.len, 0);
    assert_int_equal(wc_frame_feed(&f, "3\nxyz", 5, collect, &s, &e), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.chunk[0], "xyz");
    /* offsets in messages count from the new response */
    assert_int_equal(wc_frame_feed(&f, "?", 1, collect, &s, &e), FS_EPARSE);
    assert_non_null(strstr(e.msg, "response byte 5 (chunk 2)"));
    sink_clear(&s);
    wc_frame_release(&f);
}

static void test_utf16_units_count_like_javascript_length(void **state)
{
    (void)state;
    assert_int_equal(wc_utf16_units("", 0), 0);
    assert_int_equal(wc_utf16_units("abc", 3), 3);
    assert_int_equal(wc_utf16_units("é", 2), 1);
    assert_int_equal(wc_utf16_units("日本", 6), 2);
    assert_int_equal(wc_utf16_units("😀", 4), 2);
    assert_int_equal(wc_utf16_units("José 日本 😀", strlen("José 日本 😀")), 10);
    assert_int_equal(wc_utf16_units("[1,6,7]", 7), 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measured_examples_from_the_protocol_note_frame_exactly),
        cmocka_unit_test(test_byte_by_byte_feeding_delivers_every_chunk_and_tracks_pending),
        cmocka_unit_test(test_every_cut_into_two_or_three_pieces_gives_the_same_chunks),
        cmocka_unit_test(test_four_byte_character_cut_between_pieces_is_reassembled),
        cmocka_unit_test(test_several_chunks_in_one_piece_are_delivered_in_place),
        cmocka_unit_test(test_ascii_runs_are_counted_exactly_at_every_length_and_cut),
        cmocka_unit_test(test_cap_is_enforced_inside_an_ascii_run),
        cmocka_unit_test(test_gathering_buffer_is_kept_for_the_next_payload_up_to_a_bound),
        cmocka_unit_test(test_zero_length_payloads_are_delivered_empty),
        cmocka_unit_test(test_declared_units_over_the_cap_are_refused_at_the_prefix),
        cmocka_unit_test(test_payload_bytes_over_the_cap_are_refused_before_being_buffered),
        cmocka_unit_test(test_malformed_prefixes_are_parse_errors),
        cmocka_unit_test(test_invalid_utf8_in_a_payload_is_refused),
        cmocka_unit_test(test_count_ending_inside_a_surrogate_pair_is_a_protocol_error),
        cmocka_unit_test(test_an_error_poisons_the_framer_until_reset),
        cmocka_unit_test(test_a_failing_callback_stops_the_feed_and_poisons),
        cmocka_unit_test(test_pending_reports_a_response_truncated_inside_a_chunk),
        cmocka_unit_test(test_reset_mid_chunk_starts_a_clean_response),
        cmocka_unit_test(test_utf16_units_count_like_javascript_length),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
