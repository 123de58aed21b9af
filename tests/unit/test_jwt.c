/*
 * test_jwt.c - service-account auth without a Google account: a throwaway RSA key made at test
 * time signs the JWT, OpenSSL verifies it with the public key alone, and every header and claim
 * is decoded and checked. Key files that others can read, that lack fields or hold a bad PEM are
 * refused without leaking key material, and token endpoint replies (tokens and OAuth2 errors)
 * are parsed without ever echoing a token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/testkey.h"

#include "common/base64.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/xalloc.h"
#include "firestore/jwt.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KID "0123456789abcdef0123456789abcdef01234567"
#define EMAIL "firesync@demo-project.iam.gserviceaccount.com"
#define TOKEN_URI "https://oauth2.googleapis.com/token"
#define NOW ((int64_t)1700000000)

/* Made once for the group. */
static struct {
    struct test_key k; /* the throwaway key pair and its directory */
    int nfiles;     /* files written so far (for unique names) */
} g;


static int group_setup(void **state)
{
    (void)state;

    return test_key_make(&g.k, "test_jwt");
}

static int group_teardown(void **state)
{
    (void)state;
    test_key_free(&g.k);
    return 0;
}

/* A key file's JSON like the one the Cloud console downloads. `omit` names a field to leave out
 * (NULL for none); `pem` replaces the private key when non-NULL. Caller frees. */
static char *key_json(const char *omit, const char *pem)
{
    static const char *fields[][2] = {
        {"type", "service_account"},
        {"project_id", "demo-project"},
        {"private_key_id", KID},
        {"private_key", NULL},
        {"client_email", EMAIL},
        {"client_id", "100000000000000000001"},
        {"auth_uri", "https://accounts.google.com/o/oauth2/auth"},
        {"token_uri", TOKEN_URI},
    };
    cJSON *o = cJSON_CreateObject();
    char *out;

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const char *v = fields[i][1] ? fields[i][1] : (pem ? pem : g.k.pem);
        if (omit && strcmp(omit, fields[i][0]) == 0)
            continue;
        cJSON_AddStringToObject(o, fields[i][0], v);
    }
    out = cJSON_Print(o);
    cJSON_Delete(o);
    return out;
}

/* Writes text to a new file in the test directory with the given mode; returns its path. */
static char *write_file(const char *text, mode_t mode)
{
    char *path = xasprintf("%s/key%d.json", g.k.dir, g.nfiles++);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    size_t n = strlen(text);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static char *write_key(const char *omit, const char *pem, mode_t mode)
{
    char *json = key_json(omit, pem);
    char *path = write_file(json, mode);
    cJSON_free(json);
    return path;
}

/* No line of the PEM (and not its armour) may appear in an error message. */
static void assert_no_key_material(const char *msg)
{
    char *copy = xstrdup(g.k.pem);

    assert_null(strstr(msg, "PRIVATE KEY"));
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n"))
        if (strlen(line) >= 16 && strstr(msg, line))
            fail_msg("error message leaks a PEM line: %s", msg);
    free(copy);
}

static struct fsauth_key *load_good_key(void)
{
    struct fsauth_key *k = NULL;
    fserr e = {0};
    char *path = write_key(NULL, NULL, 0600);

    if (fsauth_key_load(path, &k, &e) != 0)
        fail_msg("load failed: %s", e.msg);
    free(path);
    return k;
}

/* Splits a JWT into its three parts (pointers into jwt, which is modified). */
static void split_jwt(char *jwt, char **parts)
{
    char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

    assert_non_null(d1);
    assert_non_null(d2);
    assert_null(strchr(d2 + 1, '.'));
    *d1 = *d2 = '\0';
    parts[0] = jwt;
    parts[1] = d1 + 1;
    parts[2] = d2 + 1;
}

static char *decode_part(const char *part)
{
    buf b;
    buf_init(&b, 0);
    assert_int_equal(base64_decode(BASE64_URL, part, strlen(part), &b), 0);
    return buf_take(&b);
}

/* Verifies the RS256 signature over "header.claims" with only the public key. */
static int verify(const char *signed_part, size_t n, const char *sig_b64)
{
    BIO *bio = BIO_new_mem_buf(g.k.pub_pem, -1);
    EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    buf sig;
    int ok;

    assert_non_null(pub);
    buf_init(&sig, 0);
    assert_int_equal(base64_decode(BASE64_URL, sig_b64, strlen(sig_b64), &sig), 0);
    assert_int_equal(sig.len, 256); /* RSA-2048 */
    ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
         EVP_DigestVerify(ctx, (unsigned char *)sig.p, sig.len, (const unsigned char *)signed_part,
                          n) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pub);
    BIO_free(bio);
    buf_release(&sig);
    return ok;
}

static void test_signed_jwt_verifies_with_the_public_key_and_carries_every_claim(void **state)
{
    struct fsauth_key *k = load_good_key();
    buf out;
    fserr e = {0};
    char *jwt, *parts[3], *header, *claims;
    size_t signed_len;
    (void)state;

    assert_string_equal(fsauth_key_project_id(k), "demo-project");
    assert_string_equal(fsauth_key_client_email(k), EMAIL);
    assert_string_equal(fsauth_key_token_uri(k), TOKEN_URI);
    buf_init(&out, 0);
    assert_int_equal(fsauth_jwt_sign(k, FSAUTH_SCOPE_DATASTORE, NOW, &out, &e), 0);
    jwt = buf_take(&out);
    assert_null(strchr(jwt, '='));
    assert_null(strchr(jwt, '+'));
    assert_null(strchr(jwt, '/'));
    signed_len = (size_t)(strrchr(jwt, '.') - jwt);
    assert_true(verify(jwt, signed_len, strrchr(jwt, '.') + 1));

    split_jwt(jwt, parts);
    header = decode_part(parts[0]);
    claims = decode_part(parts[1]);
    assert_string_equal(header, "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"" KID "\"}");
    assert_string_equal(claims, "{\"iss\":\"" EMAIL "\",\"scope\":\"" FSAUTH_SCOPE_DATASTORE
                                "\",\"aud\":\"" TOKEN_URI "\",\"iat\":1700000000,"
                                "\"exp\":1700003600}");

    /* and as parsed JSON, field by field */
    cJSON *c = cJSON_Parse(claims);
    assert_non_null(c);
    assert_string_equal(cJSON_GetObjectItem(c, "iss")->valuestring, EMAIL);
    assert_string_equal(cJSON_GetObjectItem(c, "scope")->valuestring, FSAUTH_SCOPE_DATASTORE);
    assert_string_equal(cJSON_GetObjectItem(c, "aud")->valuestring, TOKEN_URI);
    assert_true(cJSON_GetObjectItem(c, "iat")->valuedouble == 1700000000.0);
    assert_true(cJSON_GetObjectItem(c, "exp")->valuedouble == 1700003600.0);
    assert_int_equal(cJSON_GetArraySize(c), 5);
    cJSON_Delete(c);

    free(header);
    free(claims);
    free(jwt);
    fsauth_key_free(k);
}

static void test_tampered_jwt_fails_verification(void **state)
{
    struct fsauth_key *k = load_good_key();
    buf out;
    fserr e = {0};
    char *dot;
    (void)state;

    buf_init(&out, 0);
    assert_int_equal(fsauth_jwt_sign(k, "scope-a", NOW, &out, &e), 0);
    dot = strrchr(out.p, '.');
    assert_true(verify(out.p, (size_t)(dot - out.p), dot + 1));
    out.p[40] = out.p[40] == 'A' ? 'B' : 'A'; /* inside the claims */
    assert_false(verify(out.p, (size_t)(dot - out.p), dot + 1));
    buf_release(&out);
    fsauth_key_free(k);
}

static void test_signing_refuses_a_missing_scope_and_respects_the_cap(void **state)
{
    struct fsauth_key *k = load_good_key();
    buf out;
    fserr e = {0};
    (void)state;

    buf_init(&out, 0);
    assert_int_equal(fsauth_jwt_sign(k, "", NOW, &out, &e), FS_EINVAL);
    assert_int_equal(fsauth_jwt_sign(k, NULL, NOW, &out, &e), FS_EINVAL);
    buf_release(&out);
    buf_init(&out, 100);
    assert_int_equal(fsauth_jwt_sign(k, "s", NOW, &out, &e), FS_ETOOBIG);
    assert_int_equal(e.code, FS_ETOOBIG);
    buf_release(&out);
    fsauth_key_free(k);
}

static void test_key_file_open_to_group_or_others_is_refused_with_the_chmod_to_run(void **state)
{
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0606, 0610, 0601};
    struct fsauth_key *k = (struct fsauth_key *)&k;
    fserr e = {0};
    char want[256];
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *path = write_key(NULL, NULL, bad[i]);
        assert_int_equal(fsauth_key_load(path, &k, &e), FS_EPERM);
        assert_null(k);
        assert_non_null(strstr(e.msg, path));
        snprintf(want, sizeof(want), "chmod 600 %s", path);
        assert_non_null(strstr(e.msg, want));
        snprintf(want, sizeof(want), "mode %04o", (unsigned)bad[i]);
        assert_non_null(strstr(e.msg, want));
        assert_no_key_material(e.msg);
        free(path);
    }
    /* owner-only modes are fine */
    char *path = write_key(NULL, NULL, 0400);
    assert_int_equal(fsauth_key_load(path, &k, &e), 0);
    fsauth_key_free(k);
    free(path);
}

static void test_missing_fields_are_refused_and_named(void **state)
{
    static const char *req[] = {"type",        "project_id",   "private_key_id",
                                "private_key", "client_email", "token_uri"};
    struct fsauth_key *k = NULL;
    fserr e = {0};
    char *path;
    (void)state;

    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        path = write_key(req[i], NULL, 0600);
        assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
        assert_null(k);
        assert_non_null(strstr(e.msg, path));
        if (!strstr(e.msg, req[i]))
            fail_msg("message does not name %s: %s", req[i], e.msg);
        assert_no_key_material(e.msg);
        free(path);
    }

    /* empty, non-string and several at once: all named in one message */
    path = write_file("{\"type\":\"service_account\",\"project_id\":\"\",\"private_key_id\":7,"
                      "\"private_key\":\"x\",\"client_email\":null}",
                      0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    assert_non_null(strstr(e.msg, "project_id, private_key_id, client_email, token_uri"));
    free(path);
}

static void test_wrong_type_and_non_json_files_are_refused_without_echoing_them(void **state)
{
    struct fsauth_key *k = NULL;
    fserr e = {0};
    char *json, *path, *p;
    (void)state;

    json = key_json(NULL, NULL);
    p = strstr(json, "service_account");
    memcpy(p, "authorized_user", 15);
    path = write_file(json, 0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    assert_non_null(strstr(e.msg, "service_account"));
    assert_no_key_material(e.msg);
    cJSON_free(json);
    free(path);

    /* the bare PEM instead of the JSON key */
    path = write_file(g.k.pem, 0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    assert_non_null(strstr(e.msg, "not a JSON object"));
    assert_no_key_material(e.msg);
    free(path);

    path = write_file("[1,2,3]", 0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    free(path);

    path = xasprintf("%s/does-not-exist.json", g.k.dir);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ENOTFOUND);
    assert_non_null(strstr(e.msg, path));
    free(path);

    assert_int_equal(fsauth_key_load(g.k.dir, &k, &e), FS_ECONFIG); /* a directory */
    assert_null(k);
}

static void test_bad_pem_is_refused_without_leaking_it(void **state)
{
    struct fsauth_key *k = NULL;
    fserr e = {0};
    char *half, *path, *enc;
    BIO *bio;
    EVP_PKEY *ec;
    (void)state;

    /* garbage between the armour lines */
    path = write_key(NULL, "-----BEGIN PRIVATE KEY-----\nnot!base64\n-----END PRIVATE KEY-----\n",
                     0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    assert_null(k);
    assert_non_null(strstr(e.msg, "private_key"));
    assert_non_null(strstr(e.msg, path));
    assert_no_key_material(e.msg);
    free(path);

    /* the real key cut in half */
    half = xstrndup(g.k.pem, strlen(g.k.pem) / 2);
    path = write_key(NULL, half, 0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    assert_no_key_material(e.msg);
    free(half);
    free(path);

    /* not PEM at all */
    path = write_key(NULL, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    assert_null(strstr(e.msg, "MIIEvQ"));
    free(path);

    /* an encrypted key is refused, never prompted for */
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(bio, g.k.pkey, EVP_aes_256_cbc(), "secret", 6, NULL, NULL);
    enc = test_key_bio_text(bio);
    BIO_free(bio);
    path = write_key(NULL, enc, 0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    assert_null(k);
    free(enc);
    free(path);

    /* a valid key of the wrong kind */
    ec = EVP_EC_gen("P-256");
    assert_non_null(ec);
    bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, ec, NULL, NULL, 0, NULL, NULL);
    enc = test_key_bio_text(bio);
    BIO_free(bio);
    EVP_PKEY_free(ec);
    path = write_key(NULL, enc, 0600);
    assert_int_equal(fsauth_key_load(path, &k, &e), FS_ECONFIG);
    assert_non_null(strstr(e.msg, "not an RSA key"));
    free(enc);
    free(path);
}

static void test_key_free_accepts_null(void **state)
{
    (void)state;
    fsauth_key_free(NULL);
}

static void test_token_request_body_is_the_form_encoded_jwt_bearer_grant(void **state)
{
    buf b;
    (void)state;

    buf_init(&b, 0);
    assert_int_equal(fsauth_token_request_body("aGVhZA.Y2xhaW1z.c2ln-_", &b), 0);
    assert_string_equal(buf_str(&b), "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-"
                                     "bearer&assertion=aGVhZA.Y2xhaW1z.c2ln-_");
    buf_reset(&b);
    assert_int_equal(fsauth_token_request_body("a.b.c&x=1", &b), FS_EINVAL);
    assert_int_equal(fsauth_token_request_body("a.b.c+", &b), FS_EINVAL);
    assert_int_equal(fsauth_token_request_body("", &b), FS_EINVAL);
    assert_int_equal(b.len, 0);
    buf_release(&b);
    buf_init(&b, 20);
    assert_int_equal(fsauth_token_request_body("a.b.c", &b), FS_ETOOBIG);
    buf_release(&b);
}

#define PARSE(lit, tok, exp, e) fsauth_token_response_parse(lit, sizeof(lit) - 1, tok, exp, e)

static void test_token_reply_yields_the_access_token_and_lifetime(void **state)
{
    static const char ok[] = "{\"access_token\":\"ya29.c.Kp8B-_~+/=\",\"expires_in\":3599,"
                             "\"token_type\":\"Bearer\"}";
    char *tok = NULL;
    int64_t exp = 0;
    fserr e = {0};
    (void)state;

    assert_int_equal(PARSE(ok, &tok, &exp, &e), 0);
    assert_string_equal(tok, "ya29.c.Kp8B-_~+/=");
    assert_int_equal(exp, 3599);
    free(tok);

    /* token_type is optional; the body need not be NUL-terminated */
    assert_int_equal(fsauth_token_response_parse("{\"access_token\":\"t\",\"expires_in\":60} \nxyz",
                                                 38, &tok, &exp, &e),
                     0);
    assert_string_equal(tok, "t");
    assert_int_equal(exp, 60);
    free(tok);
}

static void test_oauth_error_reply_reports_its_text_but_never_a_token(void **state)
{
    static const char grant[] =
        "{\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}";
    static const char both[] = "{\"error\":\"invalid_grant\",\"error_description\":\"bad\","
                               "\"access_token\":\"ya29.SECRET\",\"expires_in\":3599}";
    static const char google[] = "{\"error\":{\"code\":400,\"message\":\"Request had invalid "
                                 "authentication credentials.\",\"status\":\"UNAUTHENTICATED\"}}";
    static const char ctl[] =
        "{\"error\":\"invalid_scope\",\"error_description\":\"a\\nb\\u0007\"}";
    char *tok = (char *)"stale";
    int64_t exp = 0;
    fserr e = {0};
    (void)state;

    assert_int_equal(PARSE(grant, &tok, &exp, &e), FS_EAUTH);
    assert_null(tok);
    assert_int_equal(e.code, FS_EAUTH);
    assert_non_null(strstr(e.msg, "invalid_grant: Invalid JWT Signature."));

    assert_int_equal(PARSE(both, &tok, &exp, &e), FS_EAUTH);
    assert_null(tok);
    assert_null(strstr(e.msg, "SECRET"));
    assert_null(strstr(e.msg, "ya29"));

    assert_int_equal(PARSE(google, &tok, &exp, &e), FS_EAUTH);
    assert_non_null(strstr(e.msg, "UNAUTHENTICATED: Request had invalid authentication"));

    assert_int_equal(PARSE(ctl, &tok, &exp, &e), FS_EAUTH);
    assert_non_null(strstr(e.msg, "invalid_scope: a?b?"));
    assert_null(strchr(e.msg, '\n'));
}

static void test_malformed_token_replies_are_protocol_errors(void **state)
{
    static const char *bad[] = {
        "",
        "<html>502 Bad Gateway</html>",
        "[]",
        "{}",
        "{\"expires_in\":3599}",
        "{\"access_token\":\"t\"}",
        "{\"access_token\":\"\",\"expires_in\":3599}",
        "{\"access_token\":7,\"expires_in\":3599}",
        "{\"access_token\":\"t\",\"expires_in\":\"3599\"}",
        "{\"access_token\":\"t\",\"expires_in\":0}",
        "{\"access_token\":\"t\",\"expires_in\":-5}",
        "{\"access_token\":\"t\",\"expires_in\":1.5}",
        "{\"access_token\":\"t\",\"expires_in\":1e999}",
        "{\"access_token\":\"has space\",\"expires_in\":3599}",
        "{\"access_token\":\"crlf\\r\\nX-Injected: 1\",\"expires_in\":3599}",
        "{\"access_token\":\"t\",\"expires_in\":3599,\"token_type\":\"MAC\"}",
        "{\"access_token\":\"t\",\"expires_in\":3599",
        "{\"access_token\":\"t\",\"expires_in\":3599}{}",
        "{\"access_token\":\"t\",\"expires_in\":3599} x",
    };
    char *tok;
    int64_t exp;
    fserr e = {0};
    (void)state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tok = (char *)"stale";
        int rc = fsauth_token_response_parse(bad[i], strlen(bad[i]), &tok, &exp, &e);
        if (rc != FS_EPROTO)
            fail_msg("reply %zu (%s): got %s", i, bad[i], fserr_name(rc));
        assert_null(tok);
        assert_null(strstr(e.msg, "has space"));
        assert_null(strstr(e.msg, "Injected"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signed_jwt_verifies_with_the_public_key_and_carries_every_claim),
        cmocka_unit_test(test_tampered_jwt_fails_verification),
        cmocka_unit_test(test_signing_refuses_a_missing_scope_and_respects_the_cap),
        cmocka_unit_test(test_key_file_open_to_group_or_others_is_refused_with_the_chmod_to_run),
        cmocka_unit_test(test_missing_fields_are_refused_and_named),
        cmocka_unit_test(test_wrong_type_and_non_json_files_are_refused_without_echoing_them),
        cmocka_unit_test(test_bad_pem_is_refused_without_leaking_it),
        cmocka_unit_test(test_key_free_accepts_null),
        cmocka_unit_test(test_token_request_body_is_the_form_encoded_jwt_bearer_grant),
        cmocka_unit_test(test_token_reply_yields_the_access_token_and_lifetime),
        cmocka_unit_test(test_oauth_error_reply_reports_its_text_but_never_a_token),
        cmocka_unit_test(test_malformed_token_replies_are_protocol_errors),
    };
    return cmocka_run_group_tests_name("jwt", tests, group_setup, group_teardown);
}
