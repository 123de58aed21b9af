/*
 * base64.c - strict RFC 4648 base64 (see base64.h). Owns nothing; writes into the caller's buf.
 */
#include "common/base64.h"

#include "common/err.h"

#include <stdint.h>

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int base64_encode(enum base64_variant v, const void *p, size_t n, buf *out)
{
    const char *a = v == BASE64_URL ? url_alpha : std_alpha;
    const uint8_t *s = p;
    char q[4];
    int rc;

    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)s[i] << 16;
        size_t left = n - i;
        if (left > 1)
            x |= (uint32_t)s[i + 1] << 8;
        if (left > 2)
            x |= s[i + 2];
        q[0] = a[(x >> 18) & 63];
        q[1] = a[(x >> 12) & 63];
        q[2] = left > 1 ? a[(x >> 6) & 63] : '=';
        q[3] = left > 2 ? a[x & 63] : '=';
        size_t k = 4;
        if (v == BASE64_URL)
            k = left > 2 ? 4 : left + 1;
        rc = buf_add(out, q, k);
        if (rc)
            return rc;
    }
    return 0;
}

static int val(enum base64_variant v, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (v == BASE64_STD && c == '+')
        return 62;
    if (v == BASE64_STD && c == '/')
        return 63;
    if (v == BASE64_URL && c == '-')
        return 62;
    if (v == BASE64_URL && c == '_')
        return 63;
    return -1;
}

int base64_decode(enum base64_variant v, const char *s, size_t n, buf *out)
{
    size_t pad = 0;
    int rc;

    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    if (v == BASE64_STD && n % 4 != 0)
        return FS_EPARSE;
    if (pad && n % 4 != 0)
        return FS_EPARSE;
    n -= pad;
    if (n % 4 == 1)
        return FS_EPARSE;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t x = 0;
        size_t k = n - i < 4 ? n - i : 4;
        for (size_t j = 0; j < 4; j++) {
            int d = 0;
            if (j < k) {
                d = val(v, (unsigned char)s[i + j]);
                if (d < 0)
                    return FS_EPARSE;
            }
            x = (x << 6) | (uint32_t)d;
        }
        uint8_t b[3] = {(uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
        size_t nb = k == 4 ? 3 : k - 1;
        /* the unused low bits of a short group must be zero (canonical encoding) */
        if ((k == 2 && (x & 0xffff)) || (k == 3 && (x & 0xff)))
            return FS_EPARSE;
        rc = buf_add(out, b, nb);
        if (rc)
            return rc;
    }
    return 0;
}
