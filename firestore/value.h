/*
 * value.h - Firestore values, decoded from proto3 JSON into an owned tree (fsval).
 *
 * Firestore prints a value as an object with exactly one "kind" key: {"integerValue":"-42"},
 * {"mapValue":{"fields":{...}}}, ... (see docs/webchannel.md section 6). fsval_decode() turns
 * such an object, already tokenized by json.h, into an fsval; fsdoc_decode() does the same for a
 * whole document {"name","fields","createTime","updateTime"}. Decoding is strict: an unknown or a
 * second kind key, a bad timestamp, bad base64, an out-of-range number or coordinate, a
 * duplicate field name or nesting deeper than FSVAL_MAX_DEPTH maps/arrays is an error whose
 * message starts with the field path ("fields.address.city: bad timestamp \"2026-13-01T...\"").
 *
 * Invariants of a decoded tree, which fsval_equal(), fsval_hash64() and fsval_to_json() rely on:
 *   - strings, bytes and references carry their length, may hold NUL bytes, and are also
 *     NUL-terminated; they are never NULL;
 *   - timestamps are UTC, within 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999999Z;
 *   - map fields are sorted by name (bytewise) and their names are unique.
 *
 * Ownership: an fsval owns its whole subtree. Embed one and free it with fsval_release(), or use
 * fsval_new()/fsval_free(). Likewise struct fsdoc with fsdoc_release() or fsdoc_new()/fsdoc_free().
 * A decode that fails leaves its output released (a null value, an empty document).
 */
#ifndef FIRESYNC_VALUE_H
#define FIRESYNC_VALUE_H

#include "common/buf.h"
#include "common/err.h"
#include "firestore/json.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Maps and arrays a value may sit in. Firestore allows 20; we refuse past 32. A document at this
 * depth needs about 3 * FSVAL_MAX_DEPTH + 10 levels of JSON nesting (json_doc_set_limits). */
#define FSVAL_MAX_DEPTH 32

/* Room for fsval_time_format(): "9999-12-31T23:59:59.999999999Z" and a NUL. */
#define FSVAL_TIME_BUFSZ 32

enum fsval_type {
    FSVAL_NULL = 0,
    FSVAL_BOOL,
    FSVAL_INT,
    FSVAL_DOUBLE,
    FSVAL_TIMESTAMP,
    FSVAL_STRING,
    FSVAL_BYTES,
    FSVAL_REFERENCE,
    FSVAL_GEO,
    FSVAL_ARRAY,
    FSVAL_MAP,
};

/* A point in time: UTC seconds since 1970-01-01T00:00:00Z and nanoseconds, 0 <= nanos < 1e9. */
struct fs_time {
    int64_t seconds;
    int32_t nanos;
};

typedef struct fsval fsval;
struct fsval_field;

struct fsval {
    enum fsval_type type;
    union {
        bool b;            /* FSVAL_BOOL */
        int64_t i;         /* FSVAL_INT */
        double d;          /* FSVAL_DOUBLE: NaN, infinities and -0.0 kept as such */
        struct fs_time ts; /* FSVAL_TIMESTAMP */
        struct {
            char *p;       /* owned, NUL-terminated, never NULL */
            size_t len;    /* bytes, not counting the terminating NUL */
        } s;               /* FSVAL_STRING (UTF-8), FSVAL_BYTES (raw), FSVAL_REFERENCE (a name) */
        struct {
            double lat;    /* -90..90 */
            double lng;    /* -180..180 */
        } geo;             /* FSVAL_GEO */
        struct {
            fsval *items;  /* owned array of n values */
            size_t n;
        } arr;             /* FSVAL_ARRAY */
        struct {
            struct fsval_field *fields; /* owned array of n fields, sorted by name, unique */
            size_t n;
        } map;             /* FSVAL_MAP */
    } u;
};

struct fsval_field {
    char *name;      /* owned, NUL-terminated (may also hold NULs: use name_len) */
    size_t name_len;
    fsval v;
};

/* A decoded document. */
struct fsdoc {
    char *name;                  /* owned: "projects/P/databases/D/documents/c/id" */
    struct fs_time create_time;
    struct fs_time update_time;
    fsval fields;                /* always FSVAL_MAP (empty when the document has no fields) */
};

/* One segment per name in a field path such as "address.city" or "`a.b`.c". */
struct fsval_path {
    struct fsval_pathseg {
        char *p;    /* owned, NUL-terminated, unescaped */
        size_t len;
    } *segs;        /* owned array of n segments */
    size_t n;
};

/* ---- values --------------------------------------------------------------------------------- */

/* Sets v to null. Allocates nothing. */
void fsval_init(fsval *v);
/* Frees what v owns and leaves it null. */
void fsval_release(fsval *v);
/* A heap null value; free with fsval_free() (which accepts NULL). */
fsval *fsval_new(void);
void fsval_free(fsval *v);

/* Decodes the proto3-JSON value object at token tok of d into out (which it overwrites without
 * releasing). Errors (FS_EPARSE, FS_ETYPE, FS_ERANGE, FS_ETOOBIG, FS_EUTF8) name the path,
 * rooted at "value". */
int fsval_decode(const json_doc *d, int tok, fsval *out, fserr *e);
/* Tokenizes the n bytes at s and decodes them as one value. */
int fsval_parse(const char *s, size_t n, fsval *out, fserr *e);

/* "null", "boolean", "integer", "double", "timestamp", "string", "bytes", "reference",
 * "geoPoint", "array", "map"; "unknown" otherwise. */
const char *fsval_type_name(enum fsval_type t);

/* Appends v as plain JSON for people, keeping what JSON would lose: integers as exact numbers,
 * doubles as numbers with a '.' or exponent (3.0, -0.0, 1e+300) and {"$double":"NaN"},
 * {"$double":"Infinity"}, {"$double":"-Infinity"}; {"$timestamp":"...Z"}, {"$bytes":"base64"},
 * {"$reference":"..."}, {"$geo":{"latitude":..,"longitude":..}}; maps as objects in name order.
 * Returns 0 or FS_ETOOBIG (out's cap; out may then hold a partial text). */
int fsval_to_json(const fsval *v, buf *out);

/* Deep equality. Types must match (the integer 1 is not the double 1.0). For doubles NaN equals
 * NaN and -0.0 differs from 0.0: the diff must notice every change a reader could see, and a NaN
 * rewritten as NaN is no change. Maps compare as sets of fields. */
bool fsval_equal(const fsval *a, const fsval *b);
/* A 64-bit hash of the canonical value, stable across runs and builds (it goes into the applied
 * index kept in MySQL): it covers the type, equal values hash equal (consistent with
 * fsval_equal: all NaNs alike, -0.0 apart from 0.0), and maps hash in name order. */
uint64_t fsval_hash64(const fsval *v);

/* The field `name` (len bytes) of map m, or NULL when absent or m is not a map. O(log n). */
const fsval *fsval_map_get(const fsval *m, const char *name, size_t len);
/* Follows path from map m; NULL when the path is empty, a segment is missing or a non-map is
 * in the way. */
const fsval *fsval_lookup(const fsval *m, const struct fsval_path *path);

/* ---- timestamps ----------------------------------------------------------------------------- */

/* Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.F]Z" (0 to 9 fraction digits; "Z" or "+hh:mm"/"-hh:mm";
 * 'T' and 'Z' in either case) into UTC. Returns 0, FS_EPARSE (form) or FS_ERANGE (a field out of
 * range, or a result outside years 0001..9999). */
int fsval_time_parse(const char *s, size_t n, struct fs_time *out, fserr *e);
/* Writes t as RFC 3339 UTC with 0, 3, 6 or 9 fraction digits, the fewest that are exact. Returns
 * the length, or FS_ERANGE (nothing written but "") when t is outside years 0001..9999 or nanos is
 * not in 0..999999999. */
int fsval_time_format(struct fs_time t, char out[FSVAL_TIME_BUFSZ]);
/* <0, 0, >0 as a is before, at or after b. */
int fsval_time_cmp(struct fs_time a, struct fs_time b);

/* ---- documents ------------------------------------------------------------------------------ */

/* Sets doc to empty (no name, zero times, an empty map). Allocates nothing. */
void fsdoc_init(struct fsdoc *doc);
/* Frees what doc owns and leaves it empty. */
void fsdoc_release(struct fsdoc *doc);
struct fsdoc *fsdoc_new(void);
void fsdoc_free(struct fsdoc *doc);

/* Decodes the document object at token tok: "name" (a non-empty string without NUL),
 * "createTime" and "updateTime" (timestamps) are required, "fields" is optional; other members
 * are ignored (forward compatibility), duplicate members are an error. */
int fsdoc_decode(const json_doc *d, int tok, struct fsdoc *out, fserr *e);
/* Tokenizes the n bytes at s and decodes them as one document. */
int fsdoc_parse(const char *s, size_t n, struct fsdoc *out, fserr *e);

/* ---- field paths ---------------------------------------------------------------------------- */

/* Parses a dotted field path: segments separated by '.', each either plain (any UTF-8 except
 * '.', '`', '\\', spaces and control characters) or quoted in backticks, inside which '\\'
 * escapes the next character ("`a.b`.c", "`with space`.x", "`a\\`b`"). Empty segments are an
 * error. Returns 0, FS_EPARSE or FS_EUTF8; out is set only on success. */
int fsval_path_parse(const char *s, struct fsval_path *out, fserr *e);
void fsval_path_release(struct fsval_path *p);
/* Appends p in the syntax above, quoting only segments that are not [A-Za-z_][A-Za-z_0-9]*.
 * Control characters print as '?'. Returns 0 or FS_ETOOBIG. */
int fsval_path_format(const struct fsval_path *p, buf *out);

#endif
