/*
 * fuzz_rest.c - libFuzzer target for what the REST side reads from the network: a runQuery reply
 * (a resync page: an array of {document, readTime} or {error} elements) and the error text
 * extracted from any non-200 body. Must never crash, leak or read out of bounds; a parsed page
 * must be self-consistent (every document named, `more` as the limit says), and the error text
 * must stay within its documented 300 bytes of printable text plus its separator.
 */
#include "common/buf.h"
#include "firestore/rest.h"
#include "firestore/value.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rest_page page = {0};
    fserr e = {0};
    buf text;
    /* the first byte picks the page limit, as resync pages differ in size */
    unsigned limit = size ? (unsigned)data[0] % 8 : 0;
    const char *body = (const char *)data + (size ? 1 : 0);
    size_t n = size ? size - 1 : 0;

    if (rest_parse_page(body, n, limit, &page, &e) == 0) {
        check(page.billed >= 1);
        check(page.more == (limit && page.ndocs >= limit));
        for (size_t i = 0; i < page.ndocs; i++)
            check(page.docs[i].name != NULL);
    } else {
        check(e.msg[0] != '\0');
        check(page.ndocs == 0 && page.docs == NULL);
    }
    rest_page_release(&page);

    buf_init(&text, 0);
    rest_error_text(body, n, &text);
    check(text.len <= 300 + 2); /* "STATUS: message" within 300 bytes, plus ": " */
    for (size_t i = 0; i < text.len; i++)
        check((unsigned char)text.p[i] >= 0x20 && text.p[i] != 0x7f);
    buf_release(&text);
    return 0;
}
