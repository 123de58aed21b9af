/*
 * auth.h - the access-token provider of the Firestore transport and REST reads (prefix fsauth_).
 *
 * Every request to Firestore carries "Authorization: Bearer <token>". Where the token comes from
 * depends on the configuration (struct cfg_firestore), in this order:
 *
 *   emulator          emulator_host is set: the emulator's admin token "owner", which never
 *                     expires. The emulator speaks plain HTTP, so its host must be loopback
 *                     (127.0.0.0/8, ::1, localhost); any other host is refused at fsauth_new().
 *                     credentials_file is then ignored.
 *   service-account   credentials_file is set (the config applies GOOGLE_APPLICATION_CREDENTIALS
 *                     to it): an RS256 JWT signed with the key (jwt.h, scope
 *                     FSAUTH_SCOPE_DATASTORE) is POSTed to the key's token_uri (RFC 7523).
 *   metadata          neither: GET <base>/computeMetadata/v1/instance/service-accounts/default/
 *                     token with "Metadata-Flavor: Google" from the GCE metadata server. <base> is
 *                     http://169.254.169.254, or what GCE_METADATA_HOST says (host[:port], as
 *                     Google's libraries read it, or a full http(s):// base URL). A reply that
 *                     lacks the "Metadata-Flavor: Google" response header is not from a metadata
 *                     server and is refused.
 *
 * Refresh. A token of lifetime L seconds is refreshed after fsauth_refresh_delay_ms(L): at 80% of
 * L or 5 minutes before expiry, whichever is earlier, but never before half of L has passed. A
 * failed fetch is retried after fsauth_backoff_ms() (exponential, with jitter) on the same
 * uv_timer; the old token stays in use while it is valid. Everything runs on the loop: the
 * HTTP exchange goes through http.h, whose TLS verification cannot be turned off.
 *
 * Callbacks (from the loop, never from inside an fsauth_* call): on_token(ud) whenever a new
 * token is in place, the first one included (in emulator mode once, right after fsauth_start);
 * since Firestore binds identity at the WebChannel handshake, the owner opens a new session
 * then. on_error(ud, code, why) when a fetch failed; a retry is already scheduled. `why` is a
 * full sentence without secrets, valid during the call; the owner logs it (without an on_error,
 * the provider logs it as a warning). Either callback may call fsauth_close() or fsauth_free().
 *
 * Secrets. Tokens are registered with log_secret_add() as they arrive and wiped (explicit_bzero)
 * when replaced or freed; the JWT assertion and the token reply are wiped as soon as they have
 * been used. No log line, error text or status value carries a token or key material. The
 * emulator's "owner" is a well-known word, not a secret, and is not registered (that would
 * redact the word everywhere).
 *
 * Ownership and order. fsauth_new() reads the key file (once, at setup, before the loop runs).
 * fsauth_close() cancels the fetch in flight and closes the timer; it must run before the
 * http_client is closed (the fetch belongs to that client). fsauth_free() (NULL is fine) closes
 * first if needed; the memory is released from the timer's close callback, so run the loop
 * afterwards, as for any uv handle. Not thread-safe: the loop's thread only.
 */
#ifndef FIRESYNC_AUTH_H
#define FIRESYNC_AUTH_H

#include "agent/config.h"
#include "common/buf.h"
#include "common/err.h"
#include "firestore/http.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* The emulator's admin token. */
#define FSAUTH_EMULATOR_TOKEN "owner"

/* The GCE metadata server, and the path of its access-token resource. */
#define FSAUTH_METADATA_DEFAULT_BASE "http://169.254.169.254"
#define FSAUTH_METADATA_TOKEN_PATH "/computeMetadata/v1/instance/service-accounts/default/token"
#define FSAUTH_METADATA_ENV "GCE_METADATA_HOST"

/* Retry defaults: the first retry after 0.5-1 s, doubling up to 30-60 s. */
#define FSAUTH_BACKOFF_BASE_MS 1000
#define FSAUTH_BACKOFF_MAX_MS 60000

/* Request timeout when cfg->request_timeout_ms is 0. */
#define FSAUTH_DEFAULT_TIMEOUT_MS 30000

/* Largest token reply accepted (real ones are about 1-2 KB). */
#define FSAUTH_REPLY_MAX ((size_t)64 << 10)

enum fsauth_mode {
    FSAUTH_EMULATOR,        /* "owner" on a loopback emulator */
    FSAUTH_SERVICE_ACCOUNT, /* JWT-bearer grant with a service-account key file */
    FSAUTH_METADATA,        /* the GCE metadata server */
};

struct fsauth_callbacks {
    void (*on_token)(void *ud); /* a new token is in place; may be NULL */
    void (*on_error)(void *ud, int code, const char *why); /* a fetch failed, retry scheduled;
                                                              may be NULL */
};

struct fsauth;

/* ---- pure helpers (no loop, no network) ---------------------------------------------------- */

/* The mode the configuration selects (see above); cfg must not be NULL. */
enum fsauth_mode fsauth_mode_select(const struct cfg_firestore *cfg);

/* "emulator", "service-account" or "metadata" ("unknown" otherwise). */
const char *fsauth_mode_name(enum fsauth_mode m);

/* True when hostport ("host", "host:port", "[v6]:port" or a bare IPv6 literal) names a
 * loopback host: 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) or "localhost". A malformed port
 * makes it false. */
bool fsauth_host_is_loopback(const char *hostport);

/* Checks an emulator_host: 0 for a loopback host:port, else FS_ECONFIG with a message naming the
 * host and the rule (the emulator speaks plain HTTP, which may only go to loopback). */
int fsauth_emulator_check(const char *hostport, fserr *e);

/* Milliseconds after receipt at which a token valid for expires_in_s seconds is refreshed:
 * min(80% of it, 5 minutes before expiry), but at least half of it. expires_in_s <= 0 gives 0. */
int64_t fsauth_refresh_delay_ms(int64_t expires_in_s);

/* Delay before the retry that follows the n-th consecutive failure (n >= 1): with
 * cap = min(max_ms, base_ms * 2^(n-1)), a value in [cap/2, cap] picked by rnd ("equal jitter":
 * it grows, never collapses to 0, and spreads agents that failed together). */
int64_t fsauth_backoff_ms(unsigned n, int64_t base_ms, int64_t max_ms, uint64_t rnd);

/* Appends the metadata server's token URL for a GCE_METADATA_HOST value: NULL or "" means the
 * default base; "host[:port]" becomes "http://host[:port]"; a value with "://" is a base URL
 * (a trailing '/' is dropped). Returns 0, FS_EINVAL (a value with spaces, '/' after the host,
 * '?' or '#'), or FS_ETOOBIG. */
int fsauth_metadata_url(const char *env_value, buf *out);

/* ---- the provider -------------------------------------------------------------------------- */

/* Sets up the provider for cfg (copied where needed; cfg may be freed afterwards). http may be
 * NULL in emulator mode only. Refuses a non-loopback emulator host (FS_ECONFIG), a key file
 * jwt.h will not load (its code), and a token URL http.h would refuse (FS_ECONFIG). On success
 * *out owns a provider with an idle timer; on failure *out is NULL and nothing is left behind. */
int fsauth_new(uv_loop_t *loop, http_client *http, const struct cfg_firestore *cfg,
               const struct fsauth_callbacks *cb, void *ud, struct fsauth **out, fserr *e);

/* Starts the first fetch (emulator mode: the token is ready when this returns, and on_token runs
 * once from the loop). Returns 0, FS_EINVAL when already started, FS_ECANCELED after close, or
 * the code of a fetch that could not even start (no callback then). */
int fsauth_start(struct fsauth *a, fserr *e);

/* Sets the retry backoff (base_ms > 0, max_ms >= base_ms); for tests and tuning. */
void fsauth_set_backoff(struct fsauth *a, int64_t base_ms, int64_t max_ms);

/* True when a token is in place and not expired. */
bool fsauth_ready(const struct fsauth *a);

/* Appends "Bearer <token>" (the Authorization value; never log it). Returns 0, FS_EAGAIN when no
 * valid token is in place, or FS_ETOOBIG (out's cap; out is then unchanged). */
int fsauth_header(const struct fsauth *a, buf *out);

enum fsauth_mode fsauth_mode(const struct fsauth *a);

/* Unix time in milliseconds at which the current token expires; 0 when there is none yet or it
 * never expires (emulator). */
int64_t fsauth_expires_at(const struct fsauth *a);

/* Consecutive failed fetches since the last success (0 when healthy). */
unsigned fsauth_failures(const struct fsauth *a);

/* Milliseconds until the next scheduled fetch (a refresh or a retry), or -1 when none is
 * scheduled (a fetch is running, the mode is emulator, or the provider is closed). */
int64_t fsauth_next_fetch_in(const struct fsauth *a);

/* Cancels the fetch in flight and any scheduled one, and closes the timer; no callback runs
 * afterwards. Idempotent. Call it before closing the http_client. */
void fsauth_close(struct fsauth *a);

/* Closes if needed and frees the provider, wiping its token; the memory goes once the loop has
 * run the timer's close callback. Accepts NULL. */
void fsauth_free(struct fsauth *a);

#endif
