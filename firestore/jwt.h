/*
 * jwt.h - service-account credentials for production Firestore: the pure part of OAuth2.
 *
 * Production Firestore wants an OAuth2 access token. A Google service account gets one with the
 * JWT-bearer grant (RFC 7523): the agent signs a short-lived JWT with the account's RSA key and
 * POSTs it to the key file's token_uri, which answers with an access token. This module holds
 * every step that needs no network: loading the key file, building and signing the JWT, the
 * form body of the token request, and parsing the token endpoint's reply. The HTTP exchange and
 * the refresh schedule live with the transport.
 *
 * Secrets: the private key never leaves the `fsauth_key` (it is parsed once into an OpenSSL key,
 * and the file's bytes are wiped after loading), and no error message ever holds key material, a
 * JWT or an access token. Error messages name the key file and the offending field instead.
 *
 * Ownership: fsauth_key_load() returns a key the caller frees with fsauth_key_free() (NULL is
 * fine). Output buffers are the caller's; functions append to them.
 */
#ifndef FIRESYNC_JWT_H
#define FIRESYNC_JWT_H

#include "common/buf.h"
#include "common/err.h"

#include <stddef.h>
#include <stdint.h>

/* The scope that grants Firestore access (what the Google client libraries request). */
#define FSAUTH_SCOPE_DATASTORE "https://www.googleapis.com/auth/datastore"

/* Lifetime of the JWT assertion; Google accepts at most one hour. */
#define FSAUTH_JWT_LIFETIME 3600

/* Largest key file read; real ones are about 2.4 KB. */
#define FSAUTH_KEY_FILE_MAX ((size_t)64 << 10)

/* A loaded service-account key; opaque. */
struct fsauth_key;

/* Loads the service-account key file at path (JSON: type "service_account", project_id,
 * private_key_id, private_key as PEM, client_email, token_uri). Refuses a file that group or
 * others may access (FS_EPERM, naming the chmod to run), a missing or unreadable file
 * (FS_ENOTFOUND, FS_EPERM, FS_EIO), and content that is not such a key (FS_ECONFIG: not JSON,
 * wrong type, missing or empty fields, all named at once; a PEM that is not an unencrypted RSA
 * private key). On success *out owns the key; on failure *out is NULL. */
int fsauth_key_load(const char *path, struct fsauth_key **out, fserr *e);

/* Frees a key and wipes its private material. Accepts NULL. */
void fsauth_key_free(struct fsauth_key *k);

/* The key file's project_id and client_email (owned by the key; not secret). */
const char *fsauth_key_project_id(const struct fsauth_key *k);
const char *fsauth_key_client_email(const struct fsauth_key *k);
/* The key file's token_uri: where fsauth_token_request_body() must be POSTed. */
const char *fsauth_key_token_uri(const struct fsauth_key *k);

/* Appends to out the RS256-signed JWT for the JWT-bearer grant: header {"alg":"RS256",
 * "typ":"JWT","kid":private_key_id}, claims {"iss":client_email,"scope":scope,"aud":token_uri,
 * "iat":now,"exp":now+FSAUTH_JWT_LIFETIME}, each part base64url without padding. now is Unix
 * seconds. Returns 0, FS_EINVAL (no scope), FS_ETOOBIG (out's cap; out may then hold part of the
 * token and should be discarded) or FS_ETLS (OpenSSL failed to sign). */
int fsauth_jwt_sign(const struct fsauth_key *k, const char *scope, int64_t now, buf *out, fserr *e);

/* Appends the application/x-www-form-urlencoded body of the token request:
 * "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=<jwt>".
 * Returns 0, FS_EINVAL when jwt holds characters outside base64url and '.' (it would need
 * escaping, so it is not one of ours), or FS_ETOOBIG (out's cap). */
int fsauth_token_request_body(const char *jwt, buf *out);

/* Parses the token endpoint's JSON reply (n bytes at body). On success *access_token is a new
 * string the caller frees (it is fit for an HTTP header: printable ASCII, no spaces) and
 * *expires_in its lifetime in seconds (> 0). Errors: an OAuth2 error reply ({"error":...,
 * "error_description":...}) is FS_EAUTH with the error text; a reply that is not JSON, lacks
 * access_token or expires_in, or holds them with the wrong type or value is FS_EPROTO. No error
 * message contains the token. On failure *access_token is NULL. */
int fsauth_token_response_parse(const char *body, size_t n, char **access_token,
                                int64_t *expires_in, fserr *e);

#endif
