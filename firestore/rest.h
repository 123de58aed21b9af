/*
 * rest.h - Firestore's REST snapshot reads: one runQuery page at a time (prefix rest_).
 *
 * A full resync reads a collection as one consistent snapshot (docs/webchannel.md section 7):
 * runQuery ordered by __name__, `limit` documents per request, every page after the first at the
 * read time of the first (`readTime`) and starting after the last name of the previous one
 * (`startAt {before:false}`). The reply is one JSON array, each element
 * {"document":{...},"readTime":"..."}, the last one also "done":true; an empty result is
 * [{"readTime":"...","done":true}]. Firestore bills one read per document returned, and one for
 * a query that returns none.
 *
 * rest_query_start() posts one page request on the agent's HTTP client (http.h: on the loop,
 * never blocking) and hands the decoded page to a callback. Only the documents of that page are
 * held: memory is bounded by the page size (and the body by a hard cap). The pure pieces, the
 * request body and the reply parser, are exposed for tests.
 *
 * Order: rest_path_cmp() is Firestore's order of document paths, which is not always the byte
 * order MySQL uses for a VARBINARY key: paths compare segment by segment (so "a/x" comes before
 * "a-b/x", whose bytes sort first), and reserved numeric ids (__id7__) sort before every other id,
 * by value. Ids compare by their UTF-8 bytes (measured on the emulator: "！x" before "😀x").
 *
 * Errors never carry the Authorization header: messages name the method, host and path, the
 * HTTP status and the server's own status and message.
 *
 * Ownership: a rest_page owns its documents until rest_page_release(). A rest_call belongs to
 * the HTTP client; it is gone after its callback ran or after rest_call_cancel().
 */
#ifndef FIRESYNC_REST_H
#define FIRESYNC_REST_H

#include "common/buf.h"
#include "common/err.h"
#include "firestore/http.h"
#include "firestore/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One page request. Strings are borrowed for the duration of rest_query_start(). */
struct rest_query {
    const char *base_url;      /* "https://firestore.googleapis.com" or "http://127.0.0.1:8080" */
    const char *parent;        /* "projects/P/databases/D/documents" or a document under it */
    const char *collection_id; /* "employees" */
    bool all_descendants;      /* a collection group */
    unsigned limit;            /* documents per page, 1 or more */
    const char *start_after;   /* full name of the last document already read, or NULL */
    struct fs_time read_time;  /* {0, 0}: now (the reply tells when that was) */
    const char *auth;          /* Authorization header value ("Bearer ..."), or NULL */
    long timeout_ms;           /* whole request; 0: none */
};

/* One decoded page. */
struct rest_page {
    struct fsdoc *docs; /* ndocs documents in Firestore's order (owned) */
    size_t ndocs;
    struct fs_time read_time; /* of the snapshot the page was read at */
    bool more;                /* ndocs == limit: the next page may hold more */
    uint64_t billed;          /* reads Firestore bills for the page: ndocs, at least 1 */
};

typedef struct rest_call rest_call;

/* The page's outcome: rc 0 and `page` (the callee takes it: rest_page_release), or rc < 0 with
 * e saying why and http_status the reply's status (0 when none came). */
typedef void (*rest_page_fn)(void *ud, int rc, const fserr *e, long http_status,
                             struct rest_page *page);

/* Posts the runQuery request for q on client c. Returns 0 and the call in *out (may be NULL),
 * or a negative code (bad query, refused URL, closing client) without ever calling cb. */
int rest_query_start(http_client *c, const struct rest_query *q, rest_page_fn cb, void *ud,
                     rest_call **out, fserr *e);
/* Stops the call; its callback will not run. */
void rest_call_cancel(rest_call *call);

void rest_page_release(struct rest_page *p);

/* The JSON request body of q (structuredQuery, and readTime when q has one). */
int rest_query_body(const struct rest_query *q, buf *out, fserr *e);
/* Parses a runQuery reply of n bytes into out (released first). `limit` decides out->more. A
 * document that cannot be decoded fails the page (FS_EPARSE naming it): a resync that skipped it
 * could not tell it from a deleted one. An {"error":...} element is FS_EHTTPSTATUS with the
 * server's status and message. */
int rest_parse_page(const char *body, size_t n, unsigned limit, struct rest_page *out, fserr *e);
/* Appends the server's {"error":{"status","message"}} of an error body as "STATUS: message"
 * (control characters dropped, at most 300 bytes); nothing when the body has none. */
void rest_error_text(const char *body, size_t n, buf *out);

/* Firestore's order of two document paths relative to .../documents ("c/d/c2/d2") or of two
 * ids: <0, 0, >0. See the header comment. */
int rest_path_cmp(const char *a, size_t alen, const char *b, size_t blen);

#endif
