/* read.h — what the readers (source.c, read_npy.c, read_csv.c, read_jsonl.c,
 * read_lmeval.c, read_openai.c, reader.c, write.c) share, and nobody else
 * sees.
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

/* The default of calib_read_options.max_gzip_ratio. */
#define CALIB__GZIP_RATIO 200.0

/* Sets the gzip bomb limit of s (max_ratio <= 0: the default): past
 * 64 MiB of output, inflating more than max_ratio times the compressed
 * bytes consumed is CALIB_EDATA.  Call it before the first record. */
void calib__src_limit(calib__src *s, double max_ratio);

/* A whole input in memory: a read-only mapping of a plain regular file, or
 * a malloc'd copy (gzip, standard input, a pipe).  data[0 .. len). */
typedef struct calib__blob {
    const uint8_t *data;
    size_t len;
    void *map_addr;     /* munmap'd by calib__blob_free, unless taken */
    size_t map_len;
    uint8_t *owned;     /* free'd by calib__blob_free, unless taken   */
} calib__blob;

/* Loads `path` into *b, gunzipped under the limit max_ratio (as
 * calib__src_limit).  Errors: as calib__src_open and _record. */
int calib__blob_load(const char *path, double max_ratio, calib__blob *b,
                     calib_error *err);
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
 * and groups are NULL unless the input has those columns.  Ragged rows
 * (k = 0, `ragged` set: lm-eval's choices) keep n_scores scores, row i at
 * scores[offsets[i] .. offsets[i+1]); offsets has n + 1 entries. */
typedef struct calib__rows {
    calib_kind kind;
    size_t k;
    size_t n, cap;
    int has_weights, has_groups;
    int ragged;
    size_t *offsets;
    size_t n_scores, scores_cap;
    double *scores;
    int32_t *labels;
    double *conf;
    uint8_t *correct;
    double *weights;
    uint32_t *groups;
} calib__rows;

/* Makes room for `need` rows.  Returns CALIB_OK or CALIB_ENOMEM. */
int calib__rows_reserve(calib__rows *r, size_t need);
/* Ragged rows: makes room for `extra` more scores after n_scores. */
int calib__rows_reserve_scores(calib__rows *r, size_t extra);
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
/* As calib__parse_number, and a number followed by '%' (blanks allowed
 * before and after it: "85%", "85.5 %") gives that number / 100, rounded
 * once from the decimal (its exponent lowered by 2), not divided after
 * rounding.  For confidence columns only. */
int calib__parse_percent(const char *s, size_t len, double *x, locale_t *loc);
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

/* ------------------------------------------------------------------ */
/* JSON lines (read_jsonl.c), with jansson                             */
/* ------------------------------------------------------------------ */

/* Forward declaration of jansson's value, so that only the JSON files
 * include <jansson.h>. */
struct json_t;

/* A JSONL input: one JSON value per line, read line by line so memory
 * stays proportional to one line.  An input whose first non-blank byte is
 * '[' is one JSON array instead (lm-eval v0.4.0-0.4.2 wrote its samples
 * so): it is loaded whole and its elements handed out in order. */
typedef struct calib__jsonl calib__jsonl;

/* Where the value being parsed came from: what errors name. */
typedef struct calib__jsonl_at {
    const char *file;
    size_t line;      /* 1-based; 0 for an element of a whole-file array */
    size_t row;       /* 1-based index of the value in the input */
    calib__jsonl *j;  /* for calib__jsonl_get */
} calib__jsonl_at;

/* Parses one value into rows (appending one row) and returns CALIB_OK,
 * CALIB__IGNORED for a value that is not a row of its own (a repeated
 * lm-eval doc_id), or an error; CALIB_EDATA is skipped under
 * skip_bad_rows. */
#define CALIB__IGNORED (-1)
typedef int (*calib__jsonl_row_fn)(void *ctx, const struct json_t *v,
                                   const calib__jsonl_at *at,
                                   calib__rows *rows, calib_read_stats *st,
                                   calib_error *err);

/* Opens `path` (plain, gzip or "-") and reads its first value, which
 * calib__jsonl_format then inspects.  `group` (NULL: none) is a dotted
 * path whose string value names each row's group.  Errors: as
 * calib__src_open, CALIB_EDATA (malformed JSON, with line and column). */
int calib__jsonl_open(const char *path, const calib_read_options *opt,
                      calib__jsonl **out, calib_error *err);

/* The format the first value looks like: CALIB_FORMAT_LMEVAL (it has
 * filtered_resps or resps), CALIB_FORMAT_OPENAI (choices, directly or in
 * response / response.body), or CALIB_FORMAT_AUTO when neither.  An
 * input without any value reads as lm-eval (it has no rows either way). */
calib_format calib__jsonl_format(const calib__jsonl *j);

/* Appends up to max_rows rows parsed by fn(ctx, ...) to `rows`, counting
 * into *st and interning groups in g; sets *eof at the end.  Errors: as
 * fn's, and CALIB_EDATA for malformed JSON (file, line, column). */
int calib__jsonl_read(calib__jsonl *j, calib__jsonl_row_fn fn, void *ctx,
                      size_t max_rows, calib__rows *rows, calib__groups *g,
                      calib_read_stats *st, int *eof, calib_error *err);

void calib__jsonl_close(calib__jsonl *j);

/* Skimming: lines are not parsed whole but scanned for their top-level
 * members, each parsed by jansson only when a row parser asks for it with
 * calib__jsonl_get (an lm-eval line is mostly prompt text calib never
 * reads).  A skipped member's strings and brackets are checked, not its
 * full grammar.  Off by default. */
void calib__jsonl_skim(calib__jsonl *j, int on);

/* The top-level member `key` of the value v being parsed (parsed now when
 * the line was skimmed), or NULL when v has none.  A member that is not
 * valid JSON fails the row as malformed JSON. */
const struct json_t *calib__jsonl_get(const calib__jsonl_at *at,
                                      const struct json_t *v,
                                      const char *key);

/* Fails with CALIB_EDATA at `at`, the message prefixed by the JSON path
 * at fault ("filtered_resps[2][0]: ..."). */
int calib__jsonl_bad(const calib__jsonl_at *at, calib_error *err,
                     const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A number given natively or as a string ("-75.82", lm-eval >= 0.4.3).
 * Returns 0, or -1 when v is neither. */
int calib__json_number(const struct json_t *v, double *x);
/* A truth value: true/false, 0/1, or a string of those ("False").
 * Returns 0, or -1. */
int calib__json_flag(const struct json_t *v, int *b);
/* The value at a dotted path ("grade.correct", "choices.0.text": a number
 * indexes an array), or NULL when any step is missing. */
const struct json_t *calib__json_dotted(const struct json_t *root,
                                        const char *path);

/* lm-eval's samples (read_lmeval.c): ragged LOGITS rows, one per doc. */
typedef struct calib__lmeval calib__lmeval;
int calib__lmeval_new(const calib_read_options *opt, calib__lmeval **out,
                      calib_error *err);
/* The row parser for calib__jsonl_read; ctx is the calib__lmeval. */
int calib__lmeval_row(void *ctx, const struct json_t *v,
                      const calib__jsonl_at *at, calib__rows *rows,
                      calib_read_stats *st, calib_error *err);
void calib__lmeval_free(calib__lmeval *p);

/* OpenAI / vLLM responses (read_openai.c): top-label rows. */
typedef struct calib__openai calib__openai;
/* Errors: CALIB_EINVAL (no `correct` path, no `choices` for the answer
 * mode), CALIB_ENOMEM. */
int calib__openai_new(const calib_read_options *opt, calib__openai **out,
                      calib_error *err);
int calib__openai_row(void *ctx, const struct json_t *v,
                      const calib__jsonl_at *at, calib__rows *rows,
                      calib_read_stats *st, calib_error *err);
void calib__openai_free(calib__openai *p);

#endif /* CALIB_READ_H */
