/* dataset.c — the prediction set: allocation, ownership, accessors, and the
 * input checks every row passes once when it enters the library.
 *
 * A dataset only describes arrays; they may belong to the caller (wrap), to
 * a file mapping, or to the dataset (own[]).  calib__check_row is the one
 * place where the input rules of calib.h live (NaN/inf, the 1e-3 tolerance
 * around [0,1], probability row sums, labels); readers call it while they
 * parse, calib_dataset_wrap calls it for every row, nothing downstream
 * checks again.  Wrap checks rows on several threads: each worker stops at
 * its first bad row, and the lowest such row is reported, so the error is
 * the same as a sequential scan would give.  Blocks of rows are first
 * scanned on their raw bits (branch-free, vectorised); only a block that
 * may hold something to report is checked row by row.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Tolerances of calib.h: values within TOL outside [0,1] are clamped, row
 * sums within TOL of 1 are accepted, deviations above SUM_NOTE counted. */
#define TOL 1e-3
#define SUM_NOTE 1e-6
/* Rows per block of the vectorised test for clean top-label rows. */
#define CLEAN_BLOCK 1024

calib_dataset *calib__dataset_alloc(void)
{
    return calloc(1, sizeof(calib_dataset));
}

int calib__dataset_own(calib_dataset *ds, void *block)
{
    if (ds->n_own >= CALIB__MAX_OWNED) {
        free(block);
        return CALIB_ENOMEM;
    }
    ds->own[ds->n_own++] = block;
    return CALIB_OK;
}

static void free_names(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

void calib_dataset_free(calib_dataset *ds)
{
    if (!ds)
        return;
    for (size_t i = 0; i < ds->n_own; i++)
        free(ds->own[i]);
    for (int i = 0; i < 2; i++)
        if (ds->map_addr[i])
            munmap(ds->map_addr[i], ds->map_len[i]);
    if (ds->owns_group_names)
        free_names(ds->group_names, ds->n_groups);
    free(ds);
}

calib_kind calib_dataset_kind(const calib_dataset *ds) { return ds->kind; }
size_t calib_dataset_rows(const calib_dataset *ds) { return ds->n; }
size_t calib_dataset_classes(const calib_dataset *ds) { return ds->k; }
size_t calib_dataset_group_count(const calib_dataset *ds)
{
    return ds->n_groups;
}

const char *calib_dataset_group_name(const calib_dataset *ds, size_t i)
{
    return ds->group_names && i < ds->n_groups ? ds->group_names[i] : NULL;
}

void calib_dataset_stats(const calib_dataset *ds, calib_read_stats *out)
{
    *out = ds->stats;
}

/* ------------------------------------------------------------------ */
/* The input checks                                                    */
/* ------------------------------------------------------------------ */

/* Checks that v[j] is finite and, for probabilities, within TOL of [0,1];
 * clamps it.  Returns 0 or 1 (bad), counting a clamp into *clamped. */
static int check_value(calib_kind kind, double *v, size_t *clamped,
                       char *why, size_t why_size)
{
    const char *what = kind == CALIB_TOPLABEL ? "confidence" : "probability";
    if (isnan(*v)) {
        snprintf(why, why_size, "NaN");
        return 1;
    }
    if (isinf(*v)) {
        snprintf(why, why_size, "%s infinity", *v < 0 ? "negative" : "an");
        return 1;
    }
    if (kind == CALIB_LOGITS || (*v >= 0.0 && *v <= 1.0))
        return 0;
    if (*v < -TOL || *v > 1.0 + TOL) {
        snprintf(why, why_size, "%s %.17g outside [0,1]", what, *v);
        return 1;
    }
    *v = *v < 0.0 ? 0.0 : 1.0;
    (*clamped)++;
    return 0;
}

size_t calib__check_row(calib_kind kind, double *v, size_t k, int64_t label,
                        calib_read_stats *stats, char *why, size_t why_size)
{
    size_t clamped = 0;
    double sum = 0.0;
    for (size_t j = 0; j < k; j++) {
        sum += v[j]; /* the row as written, before clamping */
        if (check_value(kind, &v[j], &clamped, why, why_size))
            return j + 1;
    }
    if (kind == CALIB_TOPLABEL && label != 0 && label != 1) {
        snprintf(why, why_size, "correct flag %lld is not 0 or 1",
                 (long long)label);
        return k + 1;
    }
    if (kind != CALIB_TOPLABEL && (label < 0 || (uint64_t)label >= k)) {
        snprintf(why, why_size, "label %lld outside [0,%zu)",
                 (long long)label, k);
        return k + 1;
    }
    const double off = fabs(sum - 1.0);
    if (kind == CALIB_PROBS && off > TOL) {
        snprintf(why, why_size, "row sums to %.17g, not 1", sum);
        return 1;
    }
    if (stats) {
        stats->values_clamped += clamped;
        stats->rows_sum_off += kind == CALIB_PROBS && off > SUM_NOTE;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Wrapping caller arrays                                              */
/* ------------------------------------------------------------------ */

/* What one worker of the parallel check found. */
typedef struct wrap_part {
    calib_read_stats stats;
    size_t bad_row;          /* 0-based; SIZE_MAX when all good */
    size_t bad_col;          /* 1-based; 0 for whole-row problems */
    char why[160];
    int nomem;
} wrap_part;

typedef struct wrap_ctx {
    const calib_arrays *a;
    size_t max_len;
    wrap_part *parts;
} wrap_ctx;

static double load(calib_dtype t, const void *p, size_t j)
{
    return t == CALIB_F32 ? (double)((const float *)p)[j]
                          : ((const double *)p)[j];
}

/* Checks row i's weight and group; returns 0 or 1 after writing why. */
static int check_extras(const calib_arrays *a, size_t i, char *why,
                        size_t why_size)
{
    if (a->weights && !(isfinite(a->weights[i]) && a->weights[i] >= 0.0)) {
        snprintf(why, why_size, "weight %.17g is not finite and >= 0",
                 a->weights[i]);
        return 1;
    }
    if (a->groups && a->groups[i] >= a->n_groups) {
        snprintf(why, why_size, "group %lu outside [0,%zu)",
                 (unsigned long)a->groups[i], a->n_groups);
        return 1;
    }
    return 0;
}

/* Checks row i on the double copy tmp; returns the bad column (1-based),
 * 0 when good, SIZE_MAX for a whole-row problem. */
static size_t check_one(const calib_arrays *a, size_t i, double *tmp,
                        calib_read_stats *st, char *why, size_t why_size)
{
    size_t col;
    if (a->kind == CALIB_TOPLABEL) {
        tmp[0] = load(a->dtype, a->conf, i);
        col = calib__check_row(a->kind, tmp, 1, a->correct[i], st, why,
                               why_size);
    } else {
        const size_t b = a->offsets ? a->offsets[i] : i * a->k;
        const size_t len = a->offsets ? a->offsets[i + 1] - b : a->k;
        for (size_t j = 0; j < len; j++)
            tmp[j] = load(a->dtype, a->scores, b + j);
        col = calib__check_row(a->kind, tmp, len, a->labels[i], st, why,
                               why_size);
    }
    if (col)
        return col;
    return check_extras(a, i, why, why_size) ? SIZE_MAX : 0;
}

/* Branch-free scans for blocks that certainly pass the checks unchanged.
 * Each only ORs flags over the raw bits, so it vectorises; a block with
 * anything to report (a bad value, a clamp, a counted row sum), or that
 * merely comes near a threshold, is re-checked row by row, which finds
 * the same rows good, or clamps and counts, or stops at the same error.
 *
 * On the bits: a float in [+0, 1] has bits at most those of 1.0 (NaN,
 * negatives and -0.0 have more), and a finite one has fewer than +inf
 * once the sign is cleared. */
#define F32_ONE 0x3f800000u
#define F64_ONE 0x3ff0000000000000u
#define F32_INF 0x7f800000u
#define F64_INF 0x7ff0000000000000u

/* Weights finite and >= +0, groups in range, for rows [i0, i1). */
static uint64_t extras_bad(const calib_arrays *a, size_t i0, size_t i1)
{
    uint64_t bad = 0;
    for (size_t i = i0; a->weights && i < i1; i++)
        bad |= ((const uint64_t *)a->weights)[i] >= F64_INF;
    for (size_t i = i0; a->groups && i < i1; i++)
        bad |= a->groups[i] >= a->n_groups;
    return bad;
}

/* The scans below are also compiled for AVX2 (twice the lanes), picked
 * at load time where GCC and the loader can (as in width_f32.c). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) &&      \
    !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define SCAN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SCAN_CLONES
#endif

/* Top-label confidences in [+0, 1] and flags 0/1.  In 32-bit lanes
 * without compares: a float32 is out of range when its bits are above
 * F32_ONE, i.e. when the sign bit is set (negatives, -0.0, NaN with the
 * sign) or adding 2^31 - 1 - F32_ONE sets it (the rest up to 2^31 - 1);
 * a flag is not 0/1 when a bit above the lowest is set in any of them. */
SCAN_CLONES
int calib__top_f32_clean(const float *conf, const uint8_t *correct, size_t n)
{
    const uint32_t *u = (const uint32_t *)(const void *)conf;
    uint32_t top = 0;
    for (size_t i = 0; i < n; i++)
        top |= u[i] | (u[i] + (0x7fffffffu - F32_ONE));
    uint8_t flags = 0;
    for (size_t i = 0; i < n; i++)
        flags |= correct[i];
    return !(top >> 31) && flags <= 1;
}

SCAN_CLONES
static uint64_t top_bad(const calib_arrays *a, size_t i0, size_t i1)
{
    if (a->dtype == CALIB_F32)
        return !calib__top_f32_clean((const float *)a->conf + i0,
                                     a->correct + i0, i1 - i0);
    const uint64_t *u = a->conf;
    uint64_t bad = 0;
    for (size_t i = i0; i < i1; i++)
        bad |= u[i] > F64_ONE;
    uint8_t flags = 0;
    for (size_t i = i0; i < i1; i++)
        flags |= a->correct[i];
    return bad | (flags > 1);
}

/* Every score in [j0, j1) finite.  A float32 is not when its bits without
 * the sign are at least F32_INF, i.e. when adding 2^32 - F32_INF sets the
 * top bit (it cannot carry out): one add in place of a compare, which
 * vectorises without the unsigned-compare fix-ups. */
SCAN_CLONES
static uint64_t scores_bad(const calib_arrays *a, size_t j0, size_t j1)
{
    if (a->dtype == CALIB_F32) {
        const uint32_t *u = a->scores;
        uint32_t bad = 0;
        for (size_t j = j0; j < j1; j++)
            bad |= (u[j] & 0x7fffffffu) + (0x80000000u - F32_INF);
        return bad >> 31;
    }
    const uint64_t *u = a->scores;
    uint64_t bad = 0;
    for (size_t j = j0; j < j1; j++)
        bad |= (u[j] & 0x7fffffffffffffffu) >= F64_INF;
    return bad;
}

/* Labels in [0, row length). */
static uint64_t labels_bad(const calib_arrays *a, size_t i0, size_t i1)
{
    uint32_t bad = 0;
    if (!a->offsets) {
        /* int32 labels: a negative one is >= 2^31 as uint32 */
        const uint32_t k = a->k > 0x80000000u ? 0x80000000u : (uint32_t)a->k;
        for (size_t i = i0; i < i1; i++)
            bad |= (uint32_t)a->labels[i] >= k;
        return bad;
    }
    for (size_t i = i0; i < i1; i++)
        bad |= (uint64_t)(int64_t)a->labels[i] >=
               a->offsets[i + 1] - a->offsets[i];
    return bad;
}

/* Probability rows whose sum is certainly within SUM_NOTE of 1.
 * calib__check_row sums the row as doubles, in order; here each value
 * (clamped into [0,1] on the bits, out-of-range values being flagged
 * anyway) is truncated to q = floor(v 2^30), so the exact sum S lies in
 * [Q, Q + len) 2^-30, and the sequential double sum is within
 * len 2^-52 S < (1 + len 2^-22) 2^-30 of S.  Rows are accepted only when
 * that whole interval is within SUM_NOTE of 1, with one more unit for the
 * rounding of the limits themselves. */
static int64_t sum_lo(size_t len)
{
    return (int64_t)ceil((1.0 - SUM_NOTE) * 0x1p30) + 2 + (int64_t)(len >> 22);
}
static int64_t sum_hi(size_t len)
{
    return (int64_t)floor((1.0 + SUM_NOTE) * 0x1p30) - 2 -
           (int64_t)(len + (len >> 22));
}

static uint64_t probs_bad_f32(const uint32_t *u, size_t len, int64_t lo,
                              int64_t hi)
{
    uint32_t bad = 0;
    int64_t q = 0;
    for (size_t j = 0; j < len; j++) {
        const uint32_t x = u[j];
        bad |= x > F32_ONE;
        const uint32_t c = x > F32_ONE ? F32_ONE : x;
        float p;
        memcpy(&p, &c, sizeof p);
        q += (int32_t)(p * 0x1p30f);
    }
    return bad | (q < lo) | (q > hi);
}

static uint64_t probs_bad_f64(const uint64_t *u, size_t len, int64_t lo,
                              int64_t hi)
{
    uint64_t bad = 0;
    int64_t q = 0;
    for (size_t j = 0; j < len; j++) {
        const uint64_t x = u[j];
        bad |= x > F64_ONE;
        const uint64_t c = x > F64_ONE ? F64_ONE : x;
        double p;
        memcpy(&p, &c, sizeof p);
        q += (int32_t)(p * 0x1p30);
    }
    return bad | (q < lo) | (q > hi);
}

static uint64_t probs_bad(const calib_arrays *a, size_t i0, size_t i1)
{
    uint64_t bad = 0;
    const int f32 = a->dtype == CALIB_F32;
    int64_t lo = sum_lo(a->k), hi = sum_hi(a->k);
    for (size_t i = i0; i < i1 && !bad; i++) {
        const size_t b = a->offsets ? a->offsets[i] : i * a->k;
        const size_t len = a->offsets ? a->offsets[i + 1] - b : a->k;
        if (a->offsets) {
            lo = sum_lo(len);
            hi = sum_hi(len);
        }
        bad |= f32 ? probs_bad_f32((const uint32_t *)a->scores + b, len, lo,
                                   hi)
                   : probs_bad_f64((const uint64_t *)a->scores + b, len, lo,
                                   hi);
    }
    return bad;
}

/* 1 when rows [i0, i1) certainly pass the checks unchanged. */
static int rows_clean(const calib_arrays *a, size_t i0, size_t i1)
{
    if (extras_bad(a, i0, i1))
        return 0;
    if (a->kind == CALIB_TOPLABEL)
        return !top_bad(a, i0, i1);
    if (labels_bad(a, i0, i1))
        return 0;
    if (a->kind == CALIB_LOGITS) {
        const size_t j0 = a->offsets ? a->offsets[i0] : i0 * a->k;
        const size_t j1 = a->offsets ? a->offsets[i1] : i1 * a->k;
        return !scores_bad(a, j0, j1);
    }
    return !probs_bad(a, i0, i1);
}

/* Checks rows in blocks of CLEAN_BLOCK: a clean block is passed whole,
 * any other row by row up to the first bad row. */
static void wrap_range(void *vctx, size_t begin, size_t end, int worker)
{
    const wrap_ctx *c = vctx;
    wrap_part *p = &c->parts[worker];
    double stack[64];
    double *tmp = c->max_len <= 64 ? stack : malloc(c->max_len * sizeof *tmp);
    if (!tmp) {
        p->nomem = 1;
        return;
    }
    for (size_t i0 = begin; i0 < end && p->bad_row == SIZE_MAX;) {
        const size_t i1 = end - i0 > CLEAN_BLOCK ? i0 + CLEAN_BLOCK : end;
        const int clean = rows_clean(c->a, i0, i1);
        for (size_t i = i0; i < i1 && !clean; i++) {
            const size_t col = check_one(c->a, i, tmp, &p->stats, p->why,
                                         sizeof p->why);
            if (col) {
                p->bad_row = i;
                p->bad_col = col == SIZE_MAX ? 0 : col;
                break;
            }
        }
        i0 = i1;
    }
    if (tmp != stack)
        free(tmp);
}

/* The description's shape: everything that is not about values. */
static int check_shape(const calib_arrays *a, size_t *max_len,
                       calib_error *err)
{
    const int top = a->kind == CALIB_TOPLABEL;
    if (a->kind != CALIB_TOPLABEL && a->kind != CALIB_LOGITS &&
        a->kind != CALIB_PROBS)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0, "unknown kind");
    if (a->dtype != CALIB_F32 && a->dtype != CALIB_F64)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0, "unknown dtype");
    if (a->n && top && (!a->conf || !a->correct))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "top-label rows need conf and correct");
    if (a->n && !top && (!a->scores || !a->labels))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "distribution rows need scores and labels");
    if (!top && !a->offsets && a->k == 0)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "distribution rows need k >= 1 or offsets");
    if (a->groups && a->n_groups && !a->group_names)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "groups need group_names");
    for (size_t g = 0; a->groups && g < a->n_groups; g++)
        if (!a->group_names[g])
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "group name %zu is NULL", g);
    *max_len = top ? 1 : a->k;
    for (size_t i = 0; !top && a->offsets && i < a->n; i++) {
        if (a->offsets[i + 1] < a->offsets[i])
            return calib__fail(err, CALIB_EINVAL, NULL, 0, i + 1, 0,
                               "offsets decrease at row %zu", i + 1);
        const size_t len = a->offsets[i + 1] - a->offsets[i];
        *max_len = len > *max_len ? len : *max_len;
    }
    return CALIB_OK;
}

/* Runs the row checks; returns CALIB_OK with the summed stats in *st. */
static int check_rows(const calib_arrays *a, size_t max_len,
                      calib_read_stats *st, calib_error *err)
{
    wrap_part *parts = calloc(256, sizeof *parts);
    if (!parts)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    for (int w = 0; w < 256; w++)
        parts[w].bad_row = SIZE_MAX;
    wrap_ctx c = {a, max_len, parts};
    /* about 64K values per thread at least */
    const size_t grain = max_len > 64 ? 1024 : 65536 / (max_len ? max_len : 1);
    const int used = calib__parallel_for(a->n, 0, grain, wrap_range, &c);
    int rc = CALIB_OK;
    for (int w = 0; w < used && rc == CALIB_OK; w++) {
        if (parts[w].nomem)
            rc = calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                             "out of memory");
        else if (parts[w].bad_row != SIZE_MAX)
            rc = calib__fail(err, CALIB_EDATA, NULL, 0, parts[w].bad_row + 1,
                             parts[w].bad_col, "row %zu: %s",
                             parts[w].bad_row + 1, parts[w].why);
        st->values_clamped += parts[w].stats.values_clamped;
        st->rows_sum_off += parts[w].stats.rows_sum_off;
    }
    free(parts);
    return rc;
}

static int copy_names(calib_dataset *ds, const calib_arrays *a)
{
    if (!a->groups || a->n_groups == 0)
        return CALIB_OK;
    ds->group_names = calloc(a->n_groups, sizeof *ds->group_names);
    if (!ds->group_names)
        return CALIB_ENOMEM;
    ds->owns_group_names = 1;
    ds->n_groups = a->n_groups;
    for (size_t g = 0; g < a->n_groups; g++)
        if (!(ds->group_names[g] = strdup(a->group_names[g])))
            return CALIB_ENOMEM;
    return CALIB_OK;
}

/* calib_dataset_wrap, with the row checks when `rows` is set. */
static int wrap(const calib_arrays *a, int rows, calib_dataset **out,
                calib_error *err)
{
    if (out)
        *out = NULL;
    if (!a || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL arrays or output");
    size_t max_len = 0;
    calib_read_stats st = {0};
    int rc = check_shape(a, &max_len, err);
    if (rc == CALIB_OK && rows)
        rc = check_rows(a, max_len, &st, err);
    if (rc != CALIB_OK)
        return rc;
    calib_dataset *ds = calib__dataset_alloc();
    if (!ds || copy_names(ds, a) != CALIB_OK) {
        calib_dataset_free(ds);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    const int top = a->kind == CALIB_TOPLABEL;
    ds->kind = a->kind;
    ds->dtype = a->dtype;
    ds->n = a->n;
    ds->k = top || a->offsets ? 0 : a->k;
    ds->offsets = top ? NULL : a->offsets;
    ds->scores = top ? NULL : a->scores;
    ds->labels = top ? NULL : a->labels;
    ds->conf = top ? a->conf : NULL;
    ds->correct = top ? a->correct : NULL;
    ds->weights = a->weights;
    ds->groups = a->n_groups ? a->groups : NULL;
    st.rows_read = st.rows_used = a->n;
    ds->stats = st;
    *out = ds;
    return calib__ok(err);
}

int calib_dataset_wrap(const calib_arrays *a, calib_dataset **out,
                       calib_error *err)
{
    return wrap(a, 1, out, err);
}

int calib__dataset_view(const calib_arrays *a, calib_dataset **out,
                        calib_error *err)
{
    return wrap(a, 0, out, err);
}
