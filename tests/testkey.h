/*
 * testkey.h - a throwaway RSA key pair and a scratch directory for the tests that sign or
 * verify service-account JWTs (tests/unit/test_jwt.c, tests/integration/test_auth.c). Header
 * only, so unit and integration tests can both use it. Owns the key, its PEM texts and the
 * directory until test_key_free(), which also removes the files written into it.
 */
#ifndef FIRESYNC_TEST_KEY_H
#define FIRESYNC_TEST_KEY_H

#include "common/xalloc.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct test_key {
    EVP_PKEY *pkey; /* the key pair */
    char *pem;      /* its private half as PKCS#8 PEM, as Google ships it */
    char *pub_pem;  /* its public half */
    char dir[64];   /* a mkdtemp directory for key files */
};

static inline char *test_key_bio_text(BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    return xstrndup(data, (size_t)n);
}

/* Makes a 2048-bit key and the directory /tmp/NAME.XXXXXX; 0 or -1. */
static inline int test_key_make(struct test_key *k, const char *name)
{
    BIO *bio;

    k->pkey = EVP_RSA_gen(2048);
    if (!k->pkey)
        return -1;
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL);
    k->pem = test_key_bio_text(bio);
    BIO_free(bio);
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, k->pkey);
    k->pub_pem = test_key_bio_text(bio);
    BIO_free(bio);
    snprintf(k->dir, sizeof(k->dir), "/tmp/%s.XXXXXX", name);
    return mkdtemp(k->dir) ? 0 : -1;
}

/* Removes the directory and its files, frees the key and the texts. */
static inline void test_key_free(struct test_key *k)
{
    DIR *d = opendir(k->dir);
    struct dirent *de;

    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", k->dir, de->d_name);
        unlink(p);
        free(p);
    }
    if (d)
        closedir(d);
    rmdir(k->dir);
    EVP_PKEY_free(k->pkey);
    free(k->pem);
    free(k->pub_pem);
}

#endif
