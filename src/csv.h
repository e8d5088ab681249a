/* csv.h — what read_csv.c and csv_columns.c share, and nobody else sees:
 * the open CSV's state.
 */
#ifndef CALIB_CSV_H
#define CALIB_CSV_H

#include "read.h"

#define NONE SIZE_MAX

enum role { R_NONE, R_SCORE, R_LABEL, R_CONF, R_CORRECT, R_PRED, R_GROUP,
            R_WEIGHT };

typedef struct field {
    const char *p;
    size_t len;
} field;

struct calib__csv {
    calib__src *src;
    char sep;
    size_t max_line;
    int skip_bad_rows;
    int empty;                /* no header: no rows either */
    calib_kind kind;
    size_t k;
    size_t n_fields;
    char **names;             /* the header */
    uint8_t *role;            /* per field */
    size_t *score_field;      /* field of score j */
    size_t *slot;             /* score index of field f (list order) */
    size_t conf, correct, pred, label, group, weight;  /* fields or NONE */
    field *fields;            /* fields_cap = n_fields + 1 */
    size_t fields_cap;
    char *scratch;            /* unquoted fields */
    size_t scratch_cap;
    size_t data_row;
    int two_top;              /* just conf and correct: fast_row applies */
    locale_t loc;
};

/* Finds which header field holds what (opt's column names and globs, or
 * the obvious names), and the kind of rows: csv_columns.c.  CALIB_OK, or
 * CALIB_EINVAL with a message naming the header. */
int calib__csv_resolve(calib__csv *c, const calib_read_options *opt,
                       calib_error *err);

#endif /* CALIB_CSV_H */
