/*
 * toml.h - firesync's own strict TOML reader (Debian ships no C TOML library).
 *
 * It reads the subset of TOML 1.0 that firesync's configuration needs, and refuses the rest
 * with a clear message instead of guessing:
 *   - comments, bare / quoted / dotted keys, [tables], [[arrays of tables]], inline tables;
 *   - basic strings with every TOML escape (\b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX), literal
 *     strings, and the multi-line forms of both;
 *   - integers (decimal with _ separators, 0x / 0o / 0b, +/-), floats (fraction, exponent, inf,
 *     nan), booleans, arrays (mixed types allowed, trailing comma allowed, newlines inside);
 *   - dates and times are refused ("dates are not supported here").
 * Duplicate keys, redefined tables, appending to an inline table, invalid UTF-8, control
 * characters, out-of-range integers: all errors.
 *
 * Errors are collected, not thrown: the parser records each one with its line and column in a
 * `toml_diag` and resynchronises at the next line, so one run reports every mistake. Lines and
 * columns are 1-based; columns count Unicode code points.
 *
 * Ownership: toml_parse() returns a tree owned by the caller, freed with toml_free(); every
 * string in it is owned by the tree. A `toml_diag` is embedded by its owner (toml_diag_init /
 * toml_diag_release).
 */
#ifndef FIRESYNC_TOML_H
#define FIRESYNC_TOML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum toml_kind {
    TOML_TABLE,
    TOML_ARRAY,
    TOML_STRING,
    TOML_INT,
    TOML_FLOAT,
    TOML_BOOL,
};

struct toml_kv;

typedef struct toml_value {
    enum toml_kind kind;
    int line, col; /* where the value starts (for a table: its header or first key) */
    bool used;     /* set by the consumer (cfg_) to find unknown keys; the parser leaves it false */
    union {
        struct {
            char *p; /* NUL-terminated; may hold NULs from \u0000, so use len */
            size_t len;
        } s;
        int64_t i;
        double f;
        bool b;
        struct {
            struct toml_kv *items; /* in document order */
            size_t n;
            bool is_inline;     /* written as { ... }: closed for later additions */
            bool is_array_elem; /* an element of an [[array of tables]] */
        } table;
        struct {
            struct toml_value **items;
            size_t n;
            bool of_tables; /* created by [[name]] */
        } array;
    } u;
} toml_value;

struct toml_kv {
    char *key;     /* one key segment, unquoted and unescaped */
    int line, col; /* where the key was written */
    toml_value *val;
};

struct toml_diag_item {
    int line, col;
    char msg[200];
};

typedef struct toml_diag {
    struct toml_diag_item *items;
    size_t n, cap;
} toml_diag;

void toml_diag_init(toml_diag *d);
void toml_diag_release(toml_diag *d);
/* Records one error at line:col. Used by the parser and by consumers (unknown key, wrong type). */
void toml_diag_add(toml_diag *d, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sorts the items by line, then column (stable). */
void toml_diag_sort(toml_diag *d);

/* Parses `len` bytes of `src` (need not be NUL-terminated). Always returns a tree (possibly
 * partial, never NULL) in *out; returns 0 when no error was recorded in `d` by this call, or
 * FS_ECONFIG when at least one was. Input larger than 4 MiB is refused with one error at 1:1. */
int toml_parse(const char *src, size_t len, toml_value **out, toml_diag *d);

void toml_free(toml_value *v);

/* The value of `key` (one segment) in table `t`, or NULL (also when t is NULL or not a table). */
toml_value *toml_get(const toml_value *t, const char *key);

/* "table", "array", "string", "integer", "float", "boolean". */
const char *toml_kind_name(enum toml_kind k);

#endif
