/*
 * convert.h - how a Firestore value lands in a MySQL column (prefix diff_).
 *
 * One function per direction of the README's conversion table: a value either fits its
 * column exactly or is refused with a reason that names the field path, the value's type and
 * the column type. Nothing is truncated, rounded or guessed: a 101-character string does not go
 * into VARCHAR(100), 0.125 does not go into DECIMAL(10,2), a timestamp with nanoseconds does not
 * go into DATETIME(6), NaN goes nowhere but JSON. A missing field and Firestore null are SQL NULL.
 *
 * The result is a sink_cell (mysql/sink.h) in a canonical text form, so that equal values give
 * equal cells and diff_cell_hash() can tell changed columns without keeping the values.
 *
 * Ownership: cells are filled with memory the caller owns and frees with diff_cell_release().
 */
#ifndef FIRESYNC_DIFF_CONVERT_H
#define FIRESYNC_DIFF_CONVERT_H

#include "agent/config.h"
#include "common/err.h"
#include "firestore/value.h"
#include "mysql/sink.h"

#include <stdint.h>

/* Converts v (NULL when the field is missing) for column col. `path` names the field in error
 * messages ("address.city"). Returns 0, or FS_ETYPE (wrong kind of value), FS_ERANGE (too long,
 * too large, would lose precision) with the reason in e. */
int diff_convert(const struct cfg_column *col, const char *path, const fsval *v,
                 struct sink_cell *out, fserr *e);

/* The extra column: every field of `fields` except the mapped paths, as a JSON object
 * (fsval_to_json form), or SQL NULL when nothing is left. Maps emptied by removing mapped
 * fields are dropped. */
int diff_extra(const fsval *fields, const struct fsval_path *mapped, size_t nmapped,
               struct sink_cell *out, fserr *e);

/* A stable 64-bit hash of a cell (kind and bytes); equal cells hash equal. */
uint64_t diff_cell_hash(const struct sink_cell *c);

void diff_cell_release(struct sink_cell *c);

/* Microseconds since the epoch for t (t must be whole microseconds to be exact). */
int64_t diff_time_us(struct fs_time t);

#endif
