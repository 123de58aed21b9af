/*
 * fuzz_token.c - libFuzzer target for the OAuth2 token endpoint's reply (service-account and
 * metadata-server tokens). Must never crash, leak or read out of bounds; a token it accepts must
 * be fit for an HTTP header (printable ASCII, no spaces) with a positive lifetime, and a refusal
 * must say why without the token in the message.
 */
#include "common/err.h"
#include "firestore/jwt.h"

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
    char *token = NULL;
    int64_t expires = 0;
    fserr e = {0};

    if (fsauth_token_response_parse((const char *)data, size, &token, &expires, &e) == 0) {
        check(token != NULL && token[0] != '\0');
        check(expires > 0);
        for (const char *p = token; *p; p++)
            check(*p > 0x20 && *p < 0x7f);
        free(token);
    } else {
        check(token == NULL);
        check(e.msg[0] != '\0');
    }
    return 0;
}
