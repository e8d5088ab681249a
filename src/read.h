/* read.h — what the readers (source.c, read_npy.c, read_csv.c, reader.c,
 * write.c) share, and nobody else sees.
 *
 * A reader is a byte source (plain, gzip, or standard input), a format
 * parser that turns bytes into rows, and reader.c, which cuts rows into
 * chunks (calib_reader_*) or gathers them all (calib_read).  Text formats
 * parse into a calib__rows table of plain arrays; .npy files, whose data
 * are arrays already, hand out datasets directly (mapped when they can).
 */
#ifndef CALIB_READ_H
#define CALIB_READ_H

#include "internal.h"

#include <locale.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Byte sources (source.c)                                             */
/* ------------------------------------------------------------------ */

/* A file or standard input ("-"), gunzipped when it starts with the gzip
 * magic bytes 1f 8b, whatever its name. */
typedef struct calib__src calib__src;

/* Opens `path` into *out.  Errors: CALIB_EOPEN (with strerror's text),
 * CALIB_ENOMEM. */
int calib__src_open(const char *path, calib__src **out, calib_error *err);

/* The name errors should use: the path, or "<stdin>". */
const char *calib__src_name(const calib__src *s);

/* Sets *rec and *len to the next record without its line end (LF or
 * CRLF) and *line to the 1-based number of its first line; *rec is NULL at
 * the end.  A record is one line or, when `quote` is nonzero, as many
 * lines as it takes to close every '"' it opens (RFC 4180); *quoted (if
 * not NULL) then says whether it holds a '"' at all.  The record stays
 * valid until the next call.  Empty lines are records of length 0.  Errors:
 * CALIB_EDATA (a record longer than max_line bytes, a quote still open at
 * the end, corrupt gzip data), CALIB_EIO, CALIB_ENOMEM. */
int calib__src_record(calib__src *s, int quote, size_t max_line,
                      const char **rec, size_t *len, size_t *line,
                      int *quoted, calib_error *err);

void calib__src_close(calib__src *s);

/* A whole input in memory: a read-only mapping of a plain regular file, or
 * a malloc'd copy (gzip, standard input, a pipe).  data[0 .. len). */
typedef struct calib__blob {
    const uint8_t *data;
    size_t len;
    void *map_addr;     /* munmap'd by calib__blob_free, unless taken */
    size_t map_len;
    uint8_t *owned;     /* free'd by calib__blob_free, unless taken   */
} calib__blob;

/* Loads `path` into *b.  Errors: as calib__src_open and _record. */
int calib__blob_load(const char *path, calib__blob *b, calib_error *err);
void calib__blob_free(calib__blob *b);

/* ------------------------------------------------------------------ */
/* Group names (reader.c)                                              */
/* ------------------------------------------------------------------ */

/* A table of distinct names in first-appearance order with a hash index;
 * it only grows.  Zero-initialise it. */
typedef struct calib__groups {
    char **names;
    size_t n, cap;
    uint32_t *slots;    /* open addressing: index + 1, 0 = empty */
    size_t n_slots;
} calib__groups;

/* Sets *idx to the index of name[0 .. len), adding it when new.  Returns
 * CALIB_OK or CALIB_ENOMEM (also past UINT32_MAX names). */
int calib__groups_intern(calib__groups *g, const char *name, size_t len,
                         uint32_t *idx);
void calib__groups_free(calib__groups *g);

/* ------------------------------------------------------------------ */
/* Rows parsed from text (read_csv.c fills, reader.c hands out)        */
/* ------------------------------------------------------------------ */

/* Plain growable arrays of n rows, double precision.  Distribution rows
 * use scores (n*k) and labels; top-label rows conf and correct; weights
 * and groups are NULL unless the input has those columns. */
typedef struct calib__rows {
    calib_kind kind;
    size_t k;
    size_t n, cap;
    int has_weights, has_groups;
    double *scores;
    int32_t *labels;
    double *conf;
    uint8_t *correct;
    double *weights;
    uint32_t *groups;
} calib__rows;

/* Makes room for `need` rows.  Returns CALIB_OK or CALIB_ENOMEM. */
int calib__rows_reserve(calib__rows *r, size_t need);
void calib__rows_free(calib__rows *r);

/* ------------------------------------------------------------------ */
/* CSV and TSV (read_csv.c)                                            */
/* ------------------------------------------------------------------ */

typedef struct calib__csv calib__csv;

/* Reads the header of `src` (taking it over, also on error) and finds the
 * columns `opt` names, or the obvious ones.  Errors: CALIB_EINVAL (a named
 * column is missing, no usable columns), CALIB_EDATA, CALIB_EIO,
 * CALIB_ENOMEM. */
int calib__csv_open(calib__src *src, char sep, const calib_read_options *opt,
                    calib__csv **out, calib_error *err);

/* Sets up `rows` (empty) for the columns found: kind, k, has_*. */
void calib__csv_shape(const calib__csv *c, calib__rows *rows);

/* Appends up to `max_rows` good rows to `rows`, interning group names in
 * `g` and counting into *st; sets *eof when the input is exhausted.
 * Errors: CALIB_EDATA with err->line (physical line), err->row (data row)
 * and err->column (field), CALIB_EIO, CALIB_ENOMEM. */
int calib__csv_read(calib__csv *c, size_t max_rows, calib__rows *rows,
                    calib__groups *g, calib_read_stats *st, int *eof,
                    calib_error *err);

void calib__csv_close(calib__csv *c);

/* Parses the decimal number s[0 .. len) (surrounding blanks allowed;
 * "nan" and "inf"/"infinity" give NaN and inf, for the caller to reject)
 * into *x, correctly rounded whatever the process locale.  *loc caches a
 * "C" locale for the slow path: initialise it to (locale_t)0 and release
 * it with calib__number_done.  Returns 0, or -1 when s is not a number. */
int calib__parse_number(const char *s, size_t len, double *x, locale_t *loc);
void calib__number_done(locale_t *loc);

/* ------------------------------------------------------------------ */
/* .npy (read_npy.c)                                                   */
/* ------------------------------------------------------------------ */

typedef struct calib__npy calib__npy;

/* Opens the .npy `path` with its companion (opt->labels_path or
 * opt->correct_path) and checks their headers.  Errors: CALIB_EOPEN,
 * CALIB_EDATA (bad header, too short, row counts differ), CALIB_EINVAL
 * (no companion, or one that does not fit the shape), CALIB_ENOMEM. */
int calib__npy_open(const char *path, const calib_read_options *opt,
                    calib__npy **out, calib_error *err);

size_t calib__npy_rows(const calib__npy *p);

/* Sets *out to a dataset of rows [begin, end), checked row by row and
 * counted into *st.  It points into the file's data when they are native
 * float32/float64 in C order and no row was dropped, and copies
 * otherwise.  With `take` the dataset takes over the file's mapping (for
 * a dataset that outlives `p`); without it the dataset is a view that `p`
 * must outlive.  Errors: CALIB_EDATA (err->file, row, column),
 * CALIB_ENOMEM. */
int calib__npy_chunk(calib__npy *p, size_t begin, size_t end, int take,
                     calib_dataset **out, calib_read_stats *st,
                     calib_error *err);

void calib__npy_close(calib__npy *p);

#endif /* CALIB_READ_H */
