/* state_json.h — what the writers and readers of partial states share
 * (state_json.c): accum_json.c writes the accumulator, values_json.c its
 * value tables.  Names are calib__pj_*.
 */
#ifndef CALIB_STATE_JSON_H
#define CALIB_STATE_JSON_H

#include "metrics.h"

#include <jansson.h>

/* Longest JSON path in a message ("groups[12].values.runs[3]..."). */
#define PATH_LEN 96

/* A decimal string of v; the digits of s in normalised form (an array of
 * CALIB__XSUM_DIGITS integers, then the side sum when it is not 0). */
void calib__pj_put_u128(calib__buf *b, u128 v);
void calib__pj_put_xsum(calib__buf *b, const calib__xsum *s);

/* Returns CALIB_EDATA with "partial state: PATH: why". */
int calib__pj_bad(calib_error *err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Formats a path for messages into buf and returns it. */
const char *calib__pj_at(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "PATH.KEY" into buf. */
const char *calib__pj_member(char *buf, size_t size, const char *path,
                             const char *key);

/* Readers: each checks the type and range of j and fails naming `path`. */
int calib__pj_count(const json_t *j, const char *path, uint64_t *out,
                    calib_error *err);
int calib__pj_u128(const json_t *j, const char *path, u128 *out,
                   calib_error *err);
int calib__pj_xsum(const json_t *j, const char *path, calib__xsum *out,
                   calib_error *err);
/* Checks that j is an object with exactly the members keys[0..n). */
int calib__pj_members(const json_t *j, const char *path,
                      const char *const *keys, size_t n, calib_error *err);

/* values_json.c: the member "values":{...} of a population's table, and
 * the table read from that member's value j into the empty table t (its
 * limit set).  A failed write sets b->failed. */
struct vtab;
void calib__vt_put_json(calib__buf *b, const struct vtab *t);
int calib__vt_get_json(const json_t *j, const char *path, struct vtab *t,
                       calib_error *err);

#endif /* CALIB_STATE_JSON_H */
