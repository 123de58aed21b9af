/*
 * jwt.c - service-account keys, RS256 JWT assertions and token replies (see jwt.h).
 *
 * Owns everything about production credentials that can be done without a network: reading the
 * key file (and refusing one that others can read, since it is a long-lived secret), turning its
 * PEM into an OpenSSL key once, signing the JWT-bearer assertion, and reading what the token
 * endpoint answers. Keeping it pure keeps it testable with a throwaway key and no Google account,
 * and keeps the code that touches secrets in one small file.
 *
 * Secret hygiene: the key file is read into one exact-size allocation that is wiped before it is
 * freed, as is cJSON's copy of the PEM and of a received access token; error messages are built
 * only from file names, field names, OpenSSL's static reason strings and (for refusals from the
 * token endpoint) the endpoint's own sanitised error text.
 */
#include "firestore/jwt.h"

#include "common/base64.h"
#include "common/xalloc.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct fsauth_key {
    char *project_id;
    char *private_key_id; /* the JWT header's "kid" */
    char *client_email;   /* the JWT's "iss" */
    char *token_uri;      /* the JWT's "aud", and where to POST it */
    EVP_PKEY *pkey;       /* the RSA private key */
};

/* The string fields a key file must have, in the order they are reported when missing. */
static const char *const required[] = {
    "type", "project_id", "private_key_id", "private_key", "client_email", "token_uri",
};

#define GRANT_PREFIX "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="

/* OpenSSL's reason for its most recent error (a static string), and an empty error queue. */
static const char *ssl_reason(void)
{
    unsigned long err = ERR_peek_last_error();
    const char *r = err ? ERR_reason_error_string(err) : NULL;

    ERR_clear_error();
    return r ? r : "no reason given";
}

/* Opens path and checks it is a regular file only its owner can access; *fd_out gets the fd and
 * *size its size. The mode is checked on the open file, so it is the file that gets read. */
static int open_private(const char *path, int *fd_out, size_t *size, fserr *e)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            return fserr_set(e, FS_ENOTFOUND, "service-account key file %s does not exist", path);
        return fserr_set(e, err == EACCES ? FS_EPERM : FS_EIO,
                         "cannot open service-account key file %s: %s", path, strerror(err));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fserr_set(e, FS_ECONFIG, "service-account key file %s is not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return fserr_set(e, FS_EPERM,
                         "service-account key file %s is accessible to group or others (mode "
                         "%04o); it holds a private key, so run: chmod 600 %s",
                         path, (unsigned)(st.st_mode & 07777), path);
    }
    if ((uintmax_t)st.st_size > FSAUTH_KEY_FILE_MAX) {
        close(fd);
        return fserr_set(e, FS_ECONFIG,
                         "service-account key file %s is larger than %zu bytes; is it a key file?",
                         path, FSAUTH_KEY_FILE_MAX);
    }
    *fd_out = fd;
    *size = (size_t)st.st_size;
    return 0;
}

/* Reads the whole key file into one allocation of exactly its size (plus a NUL), so the secret
 * is never copied by a growing buffer; the caller wipes and frees *out. */
static int read_key_file(const char *path, char **out, size_t *len, fserr *e)
{
    size_t size = 0, got = 0;
    char *p;
    int fd = -1, rc;

    *out = NULL;
    rc = open_private(path, &fd, &size, e);
    if (rc)
        return rc;
    p = xmalloc(size + 1);
    while (got < size) {
        ssize_t r = read(fd, p + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno;
            close(fd);
            OPENSSL_cleanse(p, got);
            free(p);
            return fserr_set(e, FS_EIO, "cannot read service-account key file %s: %s", path,
                             strerror(err));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    p[got] = '\0';
    *out = p;
    *len = got;
    return 0;
}

/* Parses n bytes as exactly one JSON value with nothing but whitespace after it; NULL if not.
 * The caller deletes the tree. */
static cJSON *parse_whole(const char *text, size_t n)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, false);

    if (!root)
        return NULL;
    while (end && end < text + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != text + n) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static const char *str_field(const cJSON *root, const char *name)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);

    if (!cJSON_IsString(it) || !it->valuestring || !it->valuestring[0])
        return NULL;
    return it->valuestring;
}

/* Checks that every required field is a non-empty string, naming all those that are not, and
 * that the file is a service-account key. */
static int check_fields(const cJSON *root, const char *path, fserr *e)
{
    char missing[160] = "";
    size_t used = 0;
    const char *type;

    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (str_field(root, required[i]))
            continue;
        int w =
            snprintf(missing + used, sizeof(missing) - used, "%s%s", used ? ", " : "", required[i]);
        if (w > 0 && (size_t)w < sizeof(missing) - used)
            used += (size_t)w;
    }
    if (used)
        return fserr_set(e, FS_ECONFIG,
                         "service-account key file %s lacks (or has empty or non-string) "
                         "field(s): %s; download a new JSON key for the service account",
                         path, missing);
    type = str_field(root, "type");
    if (strcmp(type, "service_account") != 0)
        return fserr_set(e, FS_ECONFIG,
                         "service-account key file %s has \"type\" other than "
                         "\"service_account\"; user or external-account credentials are not "
                         "supported",
                         path);
    return 0;
}

static int no_passphrase(char *pw, int size, int rwflag, void *u)
{
    (void)pw;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1; /* never prompt on a terminal for an encrypted key */
}

/* Parses the PEM text of private_key into an RSA EVP_PKEY. */
static int load_pem(const char *pem, const char *path, EVP_PKEY **out, fserr *e)
{
    BIO *bio;
    EVP_PKEY *pkey;

    *out = NULL;
    ERR_clear_error();
    bio = BIO_new_mem_buf(pem, -1);
    if (!bio)
        return fserr_set(e, FS_ENOMEM, "service-account key file %s: cannot read private_key",
                         path);
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (!pkey)
        return fserr_set(e, FS_ECONFIG,
                         "service-account key file %s: private_key is not an unencrypted PEM "
                         "private key (%s)",
                         path, ssl_reason());
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
        EVP_PKEY_free(pkey);
        return fserr_set(e, FS_ECONFIG,
                         "service-account key file %s: private_key is not an RSA key (RS256 "
                         "needs one)",
                         path);
    }
    *out = pkey;
    return 0;
}

/* Wipes cJSON's copy of a secret string member before the tree is deleted. */
static void wipe_member(cJSON *root, const char *name)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(root, name);

    if (cJSON_IsString(it) && it->valuestring)
        OPENSSL_cleanse(it->valuestring, strlen(it->valuestring));
}

int fsauth_key_load(const char *path, struct fsauth_key **out, fserr *e)
{
    struct fsauth_key *k = NULL;
    cJSON *root = NULL;
    EVP_PKEY *pkey = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = read_key_file(path, &text, &len, e);
    if (rc)
        return rc;
    root = parse_whole(text, len);
    OPENSSL_cleanse(text, len);
    free(text);
    if (!cJSON_IsObject(root)) {
        rc = fserr_set(e, FS_ECONFIG,
                       "service-account key file %s is not a JSON object (is it the JSON key "
                       "downloaded for the service account?)",
                       path);
        goto out;
    }
    rc = check_fields(root, path, e);
    if (rc)
        goto out;
    rc = load_pem(str_field(root, "private_key"), path, &pkey, e);
    if (rc)
        goto out;
    k = xcalloc(1, sizeof(*k));
    k->project_id = xstrdup(str_field(root, "project_id"));
    k->private_key_id = xstrdup(str_field(root, "private_key_id"));
    k->client_email = xstrdup(str_field(root, "client_email"));
    k->token_uri = xstrdup(str_field(root, "token_uri"));
    k->pkey = pkey;
    *out = k;
out:
    if (root)
        wipe_member(root, "private_key");
    cJSON_Delete(root);
    return rc;
}

void fsauth_key_free(struct fsauth_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey); /* OpenSSL clears the key's bignums as it frees them */
    free(k->project_id);
    free(k->private_key_id);
    free(k->client_email);
    free(k->token_uri);
    free(k);
}

const char *fsauth_key_project_id(const struct fsauth_key *k)
{
    return k->project_id;
}

const char *fsauth_key_client_email(const struct fsauth_key *k)
{
    return k->client_email;
}

const char *fsauth_key_token_uri(const struct fsauth_key *k)
{
    return k->token_uri;
}

/* Appends the base64url form of a cJSON object printed compactly. */
static int add_json_part(cJSON *obj, buf *out)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    int rc;

    if (!text)
        return FS_ENOMEM;
    rc = base64_encode(BASE64_URL, text, strlen(text), out);
    cJSON_free(text);
    return rc;
}

static cJSON *jwt_header(const struct fsauth_key *k)
{
    cJSON *h = cJSON_CreateObject();

    if (!cJSON_AddStringToObject(h, "alg", "RS256") || !cJSON_AddStringToObject(h, "typ", "JWT") ||
        !cJSON_AddStringToObject(h, "kid", k->private_key_id)) {
        cJSON_Delete(h);
        return NULL;
    }
    return h;
}

static cJSON *jwt_claims(const struct fsauth_key *k, const char *scope, int64_t now)
{
    cJSON *c = cJSON_CreateObject();
    char iat[24], exp[24];

    /* raw integers: cJSON's numbers are doubles, and a time must print exactly */
    snprintf(iat, sizeof(iat), "%lld", (long long)now);
    snprintf(exp, sizeof(exp), "%lld", (long long)now + FSAUTH_JWT_LIFETIME);
    if (!cJSON_AddStringToObject(c, "iss", k->client_email) ||
        !cJSON_AddStringToObject(c, "scope", scope) ||
        !cJSON_AddStringToObject(c, "aud", k->token_uri) || !cJSON_AddRawToObject(c, "iat", iat) ||
        !cJSON_AddRawToObject(c, "exp", exp)) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* RSASSA-PKCS1-v1_5 with SHA-256 over n bytes; *sig is a new allocation of *siglen bytes. */
static int rs256(EVP_PKEY *pkey, const char *data, size_t n, unsigned char **sig, size_t *siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 0;
    int ok;

    *sig = NULL;
    if (!ctx)
        return FS_ETLS;
    ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
         EVP_DigestSign(ctx, NULL, &len, (const unsigned char *)data, n) == 1;
    if (ok) {
        *sig = xmalloc(len);
        ok = EVP_DigestSign(ctx, *sig, &len, (const unsigned char *)data, n) == 1;
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        free(*sig);
        *sig = NULL;
        return FS_ETLS;
    }
    *siglen = len;
    return 0;
}

int fsauth_jwt_sign(const struct fsauth_key *k, const char *scope, int64_t now, buf *out, fserr *e)
{
    cJSON *header = NULL, *claims = NULL;
    unsigned char *sig = NULL;
    size_t start = out->len, siglen = 0;
    int rc;

    if (!k || !scope || !scope[0])
        return fserr_set(e, FS_EINVAL, "jwt: a key and a scope are required");
    header = jwt_header(k);
    claims = jwt_claims(k, scope, now);
    rc = add_json_part(header, out);
    if (!rc)
        rc = buf_addc(out, '.');
    if (!rc)
        rc = add_json_part(claims, out);
    if (rc) {
        fserr_set(e, rc, "jwt: cannot build the assertion for %s: %s", k->client_email,
                  fserr_str(rc));
        goto out;
    }
    ERR_clear_error();
    rc = rs256(k->pkey, out->p + start, out->len - start, &sig, &siglen);
    if (rc) {
        fserr_set(e, rc, "jwt: signing the assertion for %s failed: %s", k->client_email,
                  ssl_reason());
        goto out;
    }
    rc = buf_addc(out, '.');
    if (!rc)
        rc = base64_encode(BASE64_URL, sig, siglen, out);
    if (rc)
        fserr_set(e, rc, "jwt: the assertion for %s does not fit its buffer", k->client_email);
out:
    free(sig);
    cJSON_Delete(header);
    cJSON_Delete(claims);
    return rc;
}

int fsauth_token_request_body(const char *jwt, buf *out)
{
    int rc;

    if (!jwt || !jwt[0])
        return FS_EINVAL;
    for (const char *c = jwt; *c; c++) {
        bool ok = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '_' || *c == '.';
        if (!ok)
            return FS_EINVAL;
    }
    rc = buf_adds(out, GRANT_PREFIX);
    if (!rc)
        rc = buf_adds(out, jwt);
    return rc;
}

/* Copies at most n - 1 bytes of s into out, replacing anything but printable ASCII with '?', so
 * that text from the network is safe in a log line. */
static void sanitise(const char *s, char *out, size_t n)
{
    size_t i = 0;

    for (; s && s[i] && i + 1 < n; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = '\0';
}

/* Reports an OAuth2 error reply: RFC 6749 {"error":"code","error_description":"text"}, or
 * Google's API form {"error":{"status":"...","message":"..."}}. */
static int error_reply(const cJSON *root, fserr *e)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    const char *code = NULL, *text = NULL;
    char c[64], t[256];

    if (cJSON_IsString(err)) {
        code = err->valuestring;
        text = str_field(root, "error_description");
    } else if (cJSON_IsObject(err)) {
        code = str_field(err, "status");
        text = str_field(err, "message");
    }
    sanitise(code ? code : "unknown error", c, sizeof(c));
    sanitise(text ? text : "", t, sizeof(t));
    return fserr_set(e, FS_EAUTH, "token endpoint refused the service-account assertion: %s%s%s", c,
                     t[0] ? ": " : "", t);
}

/* True when every byte of s may appear in an HTTP header value without quoting: visible ASCII. */
static bool header_safe(const char *s)
{
    for (; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f)
            return false;
    return true;
}

static int read_expires_in(const cJSON *root, int64_t *out, fserr *e)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    double v;

    if (!cJSON_IsNumber(it))
        return fserr_set(e, FS_EPROTO, "token endpoint reply lacks a numeric \"expires_in\"");
    v = it->valuedouble;
    if (!(v >= 1 && v <= 1e9) || (double)(int64_t)v != v)
        return fserr_set(e, FS_EPROTO,
                         "token endpoint reply has \"expires_in\" that is not a positive whole "
                         "number of seconds");
    *out = (int64_t)v;
    return 0;
}

static int read_access_token(const cJSON *root, fserr *e)
{
    const char *tok = str_field(root, "access_token");
    const char *type = str_field(root, "token_type");

    if (!tok)
        return fserr_set(e, FS_EPROTO, "token endpoint reply lacks \"access_token\"");
    if (!header_safe(tok))
        return fserr_set(e, FS_EPROTO,
                         "token endpoint reply has an \"access_token\" with characters not "
                         "allowed in an HTTP header");
    if (type && strcasecmp(type, "Bearer") != 0)
        return fserr_set(e, FS_EPROTO,
                         "token endpoint reply has \"token_type\" other than "
                         "\"Bearer\"");
    return 0;
}

int fsauth_token_response_parse(const char *body, size_t n, char **access_token,
                                int64_t *expires_in, fserr *e)
{
    cJSON *root;
    int rc;

    *access_token = NULL;
    root = parse_whole(body, n);
    if (!cJSON_IsObject(root))
        rc = fserr_set(e, FS_EPROTO, "token endpoint reply is not a JSON object");
    else if (cJSON_GetObjectItemCaseSensitive(root, "error"))
        rc = error_reply(root, e);
    else if (!(rc = read_access_token(root, e)) && !(rc = read_expires_in(root, expires_in, e)))
        *access_token = xstrdup(str_field(root, "access_token"));
    if (root)
        wipe_member(root, "access_token");
    cJSON_Delete(root);
    return rc;
}
