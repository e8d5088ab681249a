/* reader.c — calib_read and the streaming reader: formats, chunks, groups.
 *
 * A reader picks the format from the name (or the options; a .jsonl file
 * from its first line: lm-eval samples or OpenAI responses), then hands
 * out the rows in chunks of at most chunk_rows.  Text chunks are views of one
 * reusable calib__rows table, so memory is bounded by the chunk size
 * whatever the input length; .npy chunks are views of the file's mapping
 * (or converted copies).  calib_read is the same reader run once with no
 * chunk limit, whose table the dataset then takes over.  Group names live
 * in a table that only grows (first-appearance order), so a group keeps
 * its index across chunks.  opt->group_name gives every row one group, for
 * every format: it is interned first (index 0), the CSV group column is
 * then not read, and .npy chunks get a group array of zeros.
 */
#include "read.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct calib_reader {
    calib__npy *npy;
    size_t npy_next;          /* first row of the next .npy chunk */
    calib__csv *csv;
    calib__jsonl *jsonl;
    calib__jsonl_row_fn row_fn;   /* JSONL rows: lm-eval or OpenAI */
    void *row_ctx;
    calib__lmeval *lmeval;
    calib__openai *openai;
    int fixed_group;          /* opt->group_name: every row in group 0 */
    calib__rows rows;
    size_t chunk_rows;
    int eof, failed;
    calib_dataset *chunk;
    calib_read_stats stats;
    calib__groups groups;
};

void calib_read_options_init(calib_read_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->format = CALIB_FORMAT_AUTO;
    opt->max_line = (size_t)64 << 20;
    opt->chunk_rows = 65536;
    opt->max_gzip_ratio = CALIB__GZIP_RATIO;
}

/* ------------------------------------------------------------------ */
/* Group names                                                         */
/* ------------------------------------------------------------------ */

/* FNV-1a, 64 bits. */
static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3u;
    return h;
}

/* Doubles the slots (kept at most half full) and reinserts every name. */
static int rehash(calib__groups *g)
{
    const size_t n_slots = g->n_slots ? g->n_slots * 2 : 64;
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return CALIB_ENOMEM;
    for (size_t i = 0; i < g->n; i++) {
        size_t s = hash(g->names[i], strlen(g->names[i])) & (n_slots - 1);
        while (slots[s])
            s = (s + 1) & (n_slots - 1);
        slots[s] = (uint32_t)(i + 1);
    }
    free(g->slots);
    g->slots = slots;
    g->n_slots = n_slots;
    return CALIB_OK;
}

static int add_name(calib__groups *g, const char *name, size_t len)
{
    if (g->n == g->cap) {
        const size_t cap = g->cap ? g->cap * 2 : 16;
        char **names = realloc(g->names, cap * sizeof *names);
        if (!names)
            return CALIB_ENOMEM;
        g->names = names;
        g->cap = cap;
    }
    char *s = malloc(len + 1);
    if (!s)
        return CALIB_ENOMEM;
    memcpy(s, name, len);
    s[len] = 0;
    g->names[g->n++] = s;
    return CALIB_OK;
}

int calib__groups_intern(calib__groups *g, const char *name, size_t len,
                         uint32_t *idx)
{
    if (2 * (g->n + 1) > g->n_slots && rehash(g))
        return CALIB_ENOMEM;
    size_t s = hash(name, len) & (g->n_slots - 1);
    for (; g->slots[s]; s = (s + 1) & (g->n_slots - 1)) {
        const char *have = g->names[g->slots[s] - 1];
        /* strlen first: a `have` shorter than len must not be read past
         * its end */
        if (strlen(have) == len && memcmp(have, name, len) == 0) {
            *idx = g->slots[s] - 1;
            return CALIB_OK;
        }
    }
    if (g->n >= UINT32_MAX - 1 || add_name(g, name, len))
        return CALIB_ENOMEM;
    g->slots[s] = (uint32_t)g->n;
    *idx = (uint32_t)(g->n - 1);
    return CALIB_OK;
}

void calib__groups_free(calib__groups *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->names[i]);
    free(g->names);
    free(g->slots);
    memset(g, 0, sizeof *g);
}

size_t calib_reader_group_count(const calib_reader *r)
{
    return r ? r->groups.n : 0;
}

const char *calib_reader_group_name(const calib_reader *r, size_t i)
{
    return r && i < r->groups.n ? r->groups.names[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Row tables                                                          */
/* ------------------------------------------------------------------ */

static int grow(void **a, size_t cap, size_t size)
{
    void *p = realloc(*a, cap * size);
    if (!p)
        return CALIB_ENOMEM;
    *a = p;
    return CALIB_OK;
}

int calib__rows_reserve(calib__rows *r, size_t need)
{
    if (need <= r->cap)
        return CALIB_OK;
    size_t cap = r->cap ? r->cap : 1024;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    const int dist = r->kind != CALIB_TOPLABEL;
    size_t k_bytes;
    if (__builtin_mul_overflow(r->k ? r->k : 1, sizeof(double), &k_bytes))
        return CALIB_ENOMEM;
    int rc = CALIB_OK;
    if (dist && !r->ragged && !rc)
        rc = grow((void **)&r->scores, cap, k_bytes);
    if (r->ragged && !rc)
        rc = grow((void **)&r->offsets, cap + 1, sizeof *r->offsets);
    if (r->ragged && !rc && r->cap == 0)
        r->offsets[0] = 0;
    if (dist && !rc)
        rc = grow((void **)&r->labels, cap, sizeof *r->labels);
    if (!dist && !rc)
        rc = grow((void **)&r->conf, cap, sizeof *r->conf);
    if (!dist && !rc)
        rc = grow((void **)&r->correct, cap, sizeof *r->correct);
    if (r->has_weights && !rc)
        rc = grow((void **)&r->weights, cap, sizeof *r->weights);
    if (r->has_groups && !rc)
        rc = grow((void **)&r->groups, cap, sizeof *r->groups);
    if (!rc)
        r->cap = cap;
    return rc;
}

int calib__rows_reserve_scores(calib__rows *r, size_t extra)
{
    if (extra > SIZE_MAX / 2 - r->n_scores)
        return CALIB_ENOMEM;
    const size_t need = r->n_scores + extra;
    if (need <= r->scores_cap)
        return CALIB_OK;
    size_t cap = r->scores_cap ? r->scores_cap : 4096;
    while (cap < need)
        cap *= 2;
    if (grow((void **)&r->scores, cap, sizeof *r->scores))
        return CALIB_ENOMEM;
    r->scores_cap = cap;
    return CALIB_OK;
}

void calib__rows_free(calib__rows *r)
{
    free(r->offsets);
    free(r->scores);
    free(r->labels);
    free(r->conf);
    free(r->correct);
    free(r->weights);
    free(r->groups);
    memset(r, 0, sizeof *r);
}

/* A dataset of the rows in r; with `own` it takes the arrays over (and r
 * is left empty), otherwise it is a view valid while r is unchanged. */
static calib_dataset *rows_dataset(calib__rows *r, const calib__groups *g,
                                   int own)
{
    calib_dataset *ds = calib__dataset_alloc();
    if (!ds)
        return NULL;
    ds->kind = r->kind;
    ds->dtype = CALIB_F64;
    ds->n = r->n;
    ds->k = r->ragged ? 0 : r->k;
    ds->offsets = r->ragged ? r->offsets : NULL;
    ds->scores = r->scores;
    ds->labels = r->labels;
    ds->conf = r->conf;
    ds->correct = r->correct;
    ds->weights = r->weights;
    ds->groups = r->groups;
    ds->n_groups = g->n;
    ds->group_names = g->names;
    void *blocks[7] = {r->scores, r->labels, r->conf, r->correct, r->weights,
                       r->groups, r->offsets};
    if (!own)
        return ds;
    const calib__rows shape = *r;
    memset(r, 0, sizeof *r);
    r->kind = shape.kind;
    r->k = shape.k;
    r->has_weights = shape.has_weights;
    r->has_groups = shape.has_groups;
    r->ragged = shape.ragged;
    int rc = CALIB_OK;
    for (int b = 0; b < 7; b++)
        if (blocks[b] && calib__dataset_own(ds, blocks[b]))
            rc = CALIB_ENOMEM;
    if (rc) {
        calib_dataset_free(ds);
        return NULL;
    }
    return ds;
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

static int ends_with(const char *s, size_t len, const char *suffix)
{
    const size_t n = strlen(suffix);
    return len >= n && strncasecmp(s + len - n, suffix, n) == 0;
}

/* The format from the options, else from the extension (after .gz). */
static int format_of(const char *path, const calib_read_options *opt,
                     calib_format *fmt, calib_error *err)
{
    size_t len = strlen(path);
    *fmt = opt->format;
    if (*fmt != CALIB_FORMAT_AUTO)
        return CALIB_OK;
    if (strcmp(path, "-") == 0) {
        *fmt = CALIB_FORMAT_CSV;
        return CALIB_OK;
    }
    if (ends_with(path, len, ".gz"))
        len -= 3;
    *fmt = ends_with(path, len, ".npy")   ? CALIB_FORMAT_NPY
           : ends_with(path, len, ".csv") ? CALIB_FORMAT_CSV
           : ends_with(path, len, ".tsv") ? CALIB_FORMAT_TSV
                                          : CALIB_FORMAT_AUTO;
    if (*fmt == CALIB_FORMAT_AUTO && !ends_with(path, len, ".jsonl") &&
        !ends_with(path, len, ".json"))
        return calib__fail(err, CALIB_EINVAL, path, 0, 0, 0,
                           "cannot tell the format from the name (.npy, "
                           ".csv, .tsv, .jsonl, optionally .gz); give it");
    return CALIB_OK; /* AUTO here: JSON lines, told apart by content */
}

static int is_jsonl(calib_format fmt)
{
    return fmt == CALIB_FORMAT_AUTO || fmt == CALIB_FORMAT_LMEVAL ||
           fmt == CALIB_FORMAT_OPENAI;
}

/* Sets up the row parser of a JSONL input of format `fmt`. */
static int jsonl_parser(calib_reader *r, calib_format fmt,
                        const calib_read_options *opt, calib_error *err)
{
    memset(&r->rows, 0, sizeof r->rows);
    if (fmt == CALIB_FORMAT_LMEVAL) {
        r->rows.kind = CALIB_LOGITS;
        r->rows.ragged = 1;
        r->row_fn = calib__lmeval_row;
        calib__jsonl_skim(r->jsonl, 1);
        const int rc = calib__lmeval_new(opt, &r->lmeval, err);
        r->row_ctx = r->lmeval;
        return rc;
    }
    r->rows.kind = CALIB_TOPLABEL;
    r->row_fn = calib__openai_row;
    const int rc = calib__openai_new(opt, &r->openai, err);
    r->row_ctx = r->openai;
    return rc;
}

static int open_jsonl(calib_reader *r, const char *path, calib_format fmt,
                      const calib_read_options *opt, calib_error *err)
{
    if (opt->weight)
        return calib__fail(err, CALIB_EINVAL, path, 0, 0, 0,
                           "weights are read from CSV/TSV only");
    int rc = calib__jsonl_open(path, opt, &r->jsonl, err);
    if (rc)
        return rc;
    if (fmt == CALIB_FORMAT_AUTO)
        fmt = calib__jsonl_format(r->jsonl);
    if (fmt == CALIB_FORMAT_AUTO)
        return calib__fail(err, CALIB_EDATA, path, 0, 0, 0,
                           "the first JSON line is neither an lm-eval sample "
                           "(filtered_resps) nor an OpenAI response "
                           "(choices); give --format lm-eval|openai");
    return jsonl_parser(r, fmt, opt, err);
}

static int open_text(calib_reader *r, const char *path, calib_format fmt,
                     const calib_read_options *opt, calib_error *err)
{
    calib__src *src;
    calib_read_options o = *opt;
    if (opt->group_name)
        o.group = NULL; /* the name wins over the column */
    int rc = calib__src_open(path, &src, err);
    if (!rc)
        calib__src_limit(src, opt->max_gzip_ratio);
    if (!rc)
        rc = calib__csv_open(src, fmt == CALIB_FORMAT_TSV ? '\t' : ',', &o,
                             &r->csv, err);
    if (!rc)
        calib__csv_shape(r->csv, &r->rows);
    return rc;
}

static int open_format(calib_reader *r, const char *path, calib_format fmt,
                       const calib_read_options *opt, calib_error *err)
{
    if (fmt == CALIB_FORMAT_NPY)
        return calib__npy_open(path, opt, &r->npy, err);
    if (is_jsonl(fmt))
        return open_jsonl(r, path, fmt, opt, err);
    return open_text(r, path, fmt, opt, err);
}

/* Interns opt->group_name as group 0 (before any row names another). */
static int fix_group(calib_reader *r, const calib_read_options *opt,
                     calib_error *err)
{
    uint32_t idx;
    if (!opt->group_name)
        return CALIB_OK;
    if (calib__groups_intern(&r->groups, opt->group_name,
                             strlen(opt->group_name), &idx))
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    r->fixed_group = 1;
    r->rows.has_groups = 1;
    return CALIB_OK;
}

int calib_reader_open(const char *path, const calib_read_options *opt,
                      calib_reader **out, calib_error *err)
{
    calib_read_options defaults;
    calib_format fmt;
    *out = NULL;
    if (!path)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0, "no input path");
    if (!opt) {
        calib_read_options_init(&defaults);
        opt = &defaults;
    }
    int rc = format_of(path, opt, &fmt, err);
    if (rc)
        return rc;
    calib_reader *r = calloc(1, sizeof *r);
    if (!r)
        return calib__fail(err, CALIB_ENOMEM, path, 0, 0, 0, "out of memory");
    r->chunk_rows = opt->chunk_rows ? opt->chunk_rows : 65536;
    if (fmt > CALIB_FORMAT_OPENAI) {
        free(r);
        return calib__fail(err, CALIB_EINVAL, path, 0, 0, 0,
                           "unknown format %d", (int)fmt);
    }
    rc = open_format(r, path, fmt, opt, err);
    if (!rc)
        rc = fix_group(r, opt, err);
    if (rc) {
        calib_reader_close(r);
        return rc;
    }
    *out = r;
    return calib__ok(err);
}

void calib_reader_close(calib_reader *r)
{
    if (!r)
        return;
    calib_dataset_free(r->chunk);
    calib__npy_close(r->npy);
    calib__csv_close(r->csv);
    calib__jsonl_close(r->jsonl);
    calib__lmeval_free(r->lmeval);
    calib__openai_free(r->openai);
    calib__rows_free(&r->rows);
    calib__groups_free(&r->groups);
    free(r);
}

void calib_reader_stats(const calib_reader *r, calib_read_stats *out)
{
    if (r)
        *out = r->stats;
    else
        memset(out, 0, sizeof *out);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* Gives every row of a .npy dataset group 0, opt->group_name; with
 * `own_names` the dataset gets its own copy of the name. */
static int npy_group(const calib_reader *r, calib_dataset *ds, int own_names)
{
    if (!r->fixed_group)
        return CALIB_OK;
    uint32_t *groups = calloc(ds->n ? ds->n : 1, sizeof *groups);
    if (!groups || calib__dataset_own(ds, groups))
        return CALIB_ENOMEM;
    ds->groups = groups;
    if (!own_names) {
        ds->group_names = r->groups.names;
        ds->n_groups = 1;
        return CALIB_OK;
    }
    if (!(ds->group_names = calloc(1, sizeof *ds->group_names)))
        return CALIB_ENOMEM;
    ds->owns_group_names = 1;
    ds->n_groups = 1;
    return (ds->group_names[0] = strdup(r->groups.names[0])) ? CALIB_OK
                                                             : CALIB_ENOMEM;
}

/* The next non-empty .npy chunk (skipped rows can empty one). */
static int next_npy(calib_reader *r, calib_error *err)
{
    const size_t n = calib__npy_rows(r->npy);
    while (r->npy_next < n && !r->chunk) {
        const size_t end = n - r->npy_next > r->chunk_rows
                               ? r->npy_next + r->chunk_rows : n;
        int rc = calib__npy_chunk(r->npy, r->npy_next, end, 0, &r->chunk,
                                  &r->stats, err);
        if (rc)
            return rc;
        r->npy_next = end;
        if (r->chunk->n == 0) {
            calib_dataset_free(r->chunk);
            r->chunk = NULL;
        } else if (npy_group(r, r->chunk, 0)) {
            return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                               "out of memory");
        }
    }
    return CALIB_OK;
}

static void stats_diff(calib_read_stats *d, const calib_read_stats *a,
                       const calib_read_stats *b)
{
    d->rows_read = a->rows_read - b->rows_read;
    d->rows_used = a->rows_used - b->rows_used;
    d->rows_rejected = a->rows_rejected - b->rows_rejected;
    d->values_clamped = a->values_clamped - b->values_clamped;
    d->rows_sum_off = a->rows_sum_off - b->rows_sum_off;
    d->rows_disagree = a->rows_disagree - b->rows_disagree;
    d->rows_duplicate = a->rows_duplicate - b->rows_duplicate;
    d->values_unknown = a->values_unknown - b->values_unknown;
}

/* Appends up to max_rows text rows (CSV/TSV or JSONL) to r->rows. */
static int read_rows(calib_reader *r, size_t max_rows, calib_error *err)
{
    const size_t n0 = r->rows.n;
    if (r->eof)
        return CALIB_OK;
    const int rc =
        r->jsonl ? calib__jsonl_read(r->jsonl, r->row_fn, r->row_ctx,
                                     max_rows, &r->rows, &r->groups,
                                     &r->stats, &r->eof, err)
                 : calib__csv_read(r->csv, max_rows, &r->rows, &r->groups,
                                   &r->stats, &r->eof, err);
    for (size_t i = n0; r->fixed_group && i < r->rows.n; i++)
        r->rows.groups[i] = 0;
    return rc;
}

static int next_text(calib_reader *r, calib_error *err)
{
    const calib_read_stats before = r->stats;
    r->rows.n = 0;
    r->rows.n_scores = 0;
    int rc = read_rows(r, r->chunk_rows, err);
    if (rc || r->rows.n == 0)
        return rc;
    if (!(r->chunk = rows_dataset(&r->rows, &r->groups, 0)))
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    stats_diff(&r->chunk->stats, &r->stats, &before);
    return CALIB_OK;
}

int calib_reader_next(calib_reader *r, const calib_dataset **chunk,
                      calib_error *err)
{
    *chunk = NULL;
    if (!r)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0, "no reader");
    if (r->failed)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "the reader failed earlier");
    calib_dataset_free(r->chunk);
    r->chunk = NULL;
    const int rc = r->npy ? next_npy(r, err) : next_text(r, err);
    if (rc) {
        r->failed = 1;
        return rc;
    }
    *chunk = r->chunk;
    return calib__ok(err);
}

/* Every text row at once; the dataset takes the rows and group names. */
static int read_all_text(calib_reader *r, calib_dataset **out,
                         calib_error *err)
{
    int rc = read_rows(r, SIZE_MAX, err);
    if (rc)
        return rc;
    calib_dataset *ds = rows_dataset(&r->rows, &r->groups, 1);
    if (!ds)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    ds->stats = r->stats;
    ds->owns_group_names = 1;
    free(r->groups.slots);
    memset(&r->groups, 0, sizeof r->groups);
    *out = ds;
    return CALIB_OK;
}

int calib_read(const char *path, const calib_read_options *opt,
               calib_dataset **out, calib_error *err)
{
    calib_reader *r;
    *out = NULL;
    int rc = calib_reader_open(path, opt, &r, err);
    if (rc)
        return rc;
    rc = r->npy ? calib__npy_chunk(r->npy, 0, calib__npy_rows(r->npy), 1, out,
                                   &r->stats, err)
                : read_all_text(r, out, err);
    if (!rc && r->npy && npy_group(r, *out, 1)) {
        calib_dataset_free(*out);
        *out = NULL;
        rc = calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    calib_reader_close(r);
    return rc ? rc : calib__ok(err);
}
