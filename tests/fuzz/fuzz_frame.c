/*
 * fuzz_frame.c - libFuzzer target for the WebChannel chunk framer (firestore/frame.c).
 *
 * The first input byte picks where the rest is cut into two pieces (and, through its low bits,
 * the chunk cap). The body is then framed three ways: whole, in the two pieces, and one byte at
 * a time. Besides never crashing or reading out of bounds, every way must deliver the same
 * payloads and end with the same code and the same pending state, each payload must be valid
 * UTF-8 whose UTF-16 length matches, and a buffered payload must never pass the cap.
 */
#include "common/buf.h"
#include "common/err.h"
#include "firestore/frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
    buf log;          /* every payload delivered, each as "<len>:" + bytes */
    size_t max;       /* the framer's cap */
    const char *body; /* the input */
    size_t n;
    int check;        /* check_declared() applies (the body is fed in one piece) */
    const char *next; /* where the next prefix starts, when check is set */
};

/* In the run that feeds the whole body in one piece, every payload is delivered in place, right
 * after its prefix, and the next prefix starts where it ends: parse that prefix independently and
 * check it equals the payload's UTF-16 length. */
static void check_declared(struct run *r, const char *p, size_t len)
{
    uint64_t v = 0;
    const char *q;

    if (!r->check)
        return;
    if (len == 0) { /* "0\n": the only spelling of an empty payload's prefix */
        if (r->n - (size_t)(r->next - r->body) < 2 || memcmp(r->next, "0\n", 2) != 0)
            abort();
        r->next += 2;
        return;
    }
    if (p <= r->next || p > r->body + r->n || p[-1] != '\n')
        abort();
    for (q = r->next; q < p - 1; q++) {
        if (*q < '0' || *q > '9')
            abort();
        v = v * 10 + (uint64_t)(*q - '0');
    }
    if (v != wc_utf16_units(p, len))
        abort();
    r->next = p + len;
}

/* Independent strict UTF-8 check (the framer's own validator is what is under test). */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        uint32_t cp;
        size_t k;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xE0) == 0xC0) {
            k = 1;
            cp = s[i] & 0x1F;
        } else if ((s[i] & 0xF0) == 0xE0) {
            k = 2;
            cp = s[i] & 0x0F;
        } else if ((s[i] & 0xF8) == 0xF0) {
            k = 3;
            cp = s[i] & 0x07;
        } else {
            return 0;
        }
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000))
            return 0;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int on_chunk(void *ud, const char *p, size_t len)
{
    struct run *r = ud;

    if (len > r->max || !valid_utf8((const unsigned char *)p, len))
        abort();
    check_declared(r, p, len);
    buf_printf(&r->log, "%zu:", len);
    buf_add(&r->log, p, len);
    /* a handler failure mid-stream must stop every way of feeding at the same point */
    if (len == 3 && memcmp(p, "!!!", 3) == 0)
        return FS_ECANCELED;
    return 0;
}

static int frame_in_pieces(const char *body, size_t n, size_t piece, struct run *r, int *pending)
{
    wc_framer f;
    fserr e = {0};
    int rc = 0;

    wc_frame_init(&f, r->max);
    for (size_t i = 0; i < n && !rc; i += piece) {
        size_t k = n - i < piece ? n - i : piece;
        rc = wc_frame_feed(&f, body + i, k, on_chunk, r, &e);
        if (f.chunk.len > r->max)
            abort();
    }
    *pending = wc_frame_pending(&f);
    /* poisoned stays poisoned; reset recovers */
    if (rc && wc_frame_feed(&f, "0\n", 2, on_chunk, r, &e) != rc)
        abort();
    wc_frame_reset(&f);
    if (wc_frame_pending(&f))
        abort();
    wc_frame_release(&f);
    return rc;
}

static int frame_split(const char *body, size_t n, size_t cut, struct run *r, int *pending)
{
    wc_framer f;
    fserr e = {0};
    int rc;

    wc_frame_init(&f, r->max);
    rc = wc_frame_feed(&f, body, cut, on_chunk, r, &e);
    if (!rc)
        rc = wc_frame_feed(&f, body + cut, n - cut, on_chunk, r, &e);
    *pending = wc_frame_pending(&f);
    wc_frame_release(&f);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, split, bytes;
    const char *body;
    size_t n, cut;
    int rc1, rc2, rc3, p1, p2, p3;
    static const size_t caps[] = {0, 1, 16, 64, 1024, 65536, 7, 300};

    if (size == 0)
        return 0;
    body = (const char *)data + 1;
    n = size - 1;
    cut = n ? (size_t)data[0] * n / 255 : 0;

    whole.max = caps[data[0] & 7] ? caps[data[0] & 7] : WC_FRAME_DEFAULT_MAX;
    split.max = bytes.max = whole.max;
    whole.body = split.body = bytes.body = body;
    whole.n = split.n = bytes.n = n;
    whole.check = 1;
    split.check = bytes.check = 0;
    whole.next = body;
    buf_init(&whole.log, 0);
    buf_init(&split.log, 0);
    buf_init(&bytes.log, 0);

    rc1 = frame_in_pieces(body, n, n ? n : 1, &whole, &p1);
    rc2 = frame_split(body, n, cut, &split, &p2);
    rc3 = n <= 4096 ? frame_in_pieces(body, n, 1, &bytes, &p3) : rc1;
    if (n > 4096) {
        p3 = p1;
        buf_add(&bytes.log, whole.log.p, whole.log.len);
    }

    if (rc1 != rc2 || rc1 != rc3 || p1 != p2 || p1 != p3)
        abort();
    if (whole.log.len != split.log.len || whole.log.len != bytes.log.len)
        abort();
    if (whole.log.len && (memcmp(whole.log.p, split.log.p, whole.log.len) != 0 ||
                          memcmp(whole.log.p, bytes.log.p, whole.log.len) != 0))
        abort();

    buf_release(&whole.log);
    buf_release(&split.log);
    buf_release(&bytes.log);
    return 0;
}
