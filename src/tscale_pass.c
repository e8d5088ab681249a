/* tscale_pass.c — passes over the rows for temperature scaling: the
 * moments of the NLL at one beta, the structure of the data, and the
 * warm-start subsample.
 *
 * Rows are taken in blocks of ROW_BLOCK consecutive rows (of the data, or
 * of the sample), fixed by position alone; a block's per-row values are
 * added in row order, and each block's sums then go into the exact
 * accumulators (xsum.c).  A block is never split between threads, so the
 * sums, and T, are the same bits for any thread count, while the
 * superaccumulator is touched once per block instead of six times a row
 * (it costs more than the exp of a short row).  Within a block the NLL's
 * log-sum-exp terms are multiplied and one log taken: every factor lies in
 * [1, row length], so the product cannot overflow.
 *
 * Moment passes run in double, or in float32 (p->f32: the solver's
 * approximate passes) on every row whose range allows it; a row of float32
 * logits is read in place by the kernels, other rows are loaded as doubles
 * first.
 */
#include "temperature.h"

#include <stdlib.h>
#include <string.h>

#define ROW_BLOCK 16

static size_t max_row_len(const calib_dataset *ds)
{
    if (ds->kind == CALIB_TOPLABEL)
        return 2;
    if (!ds->offsets)
        return ds->k;
    size_t m = 0;
    for (size_t i = 0; i < ds->n; i++)
        m = calib__row_len(ds, i) > m ? calib__row_len(ds, i) : m;
    return m;
}

int calib__tpass_init(calib__tpass *p, const calib_dataset *ds, int threads)
{
    memset(p, 0, sizeof *p);
    p->ds = ds;
    p->threads = threads;
    p->workers = calib__threads(threads);
    p->longest = max_row_len(ds);
    const size_t m = p->longest + (p->longest == 0);
    p->max_len = (m + CALIB__TS_LANES - 1) / CALIB__TS_LANES * CALIB__TS_LANES;
    p->grain = 1 + 32768 / p->max_len;
    p->z32 = ds->kind == CALIB_LOGITS && ds->dtype == CALIB_F32;
    p->scratch = malloc((size_t)p->workers * 3 * p->max_len * sizeof(double));
    p->acc = malloc((size_t)p->workers * CALIB__TS_SUMS * sizeof *p->acc);
    return p->scratch && p->acc ? CALIB_OK : CALIB_ENOMEM;
}

void calib__tpass_free(calib__tpass *p)
{
    free(p->scratch);
    free(p->acc);
    free(p->sample);
}

/* splitmix64's finaliser (Steele et al. 2014): consecutive inputs give
 * outputs whose bits look independent. */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static int by_index(const void *a, const void *b)
{
    const size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Rows mix(j) mod n, j < m: pseudo-random (with repeats), so no ordering
 * of the rows (sorted by class, periodic) can bias the sample; sorted so
 * that a pass reads memory forwards. */
int calib__tpass_sample(calib__tpass *p, size_t m)
{
    free(p->sample);
    p->n_sample = 0;
    if (!(p->sample = malloc(m * sizeof *p->sample)))
        return CALIB_ENOMEM;
    for (size_t j = 0; j < m; j++)
        p->sample[j] = (size_t)(mix(j) % p->ds->n);
    qsort(p->sample, m, sizeof *p->sample, by_index);
    p->n_sample = m;
    return CALIB_OK;
}

/* Merges the first n_sums accumulators of workers 0..used-1 into out[]. */
static void merge(calib__tpass *p, int used, double *out, int n_sums)
{
    for (int s = 0; s < n_sums; s++) {
        for (int w = 1; w < used; w++)
            calib__xsum_merge(&p->acc[s],
                              &p->acc[(size_t)w * CALIB__TS_SUMS + s]);
        out[s] = calib__xsum_round(&p->acc[s]);
    }
}

static void clear(calib__tpass *p)
{
    for (int i = 0; i < p->workers * CALIB__TS_SUMS; i++)
        calib__xsum_init(&p->acc[i]);
}

void calib__tpass_run(calib__tpass *p, calib__range_fn fn, void *ctx,
                      double *out, int n_sums)
{
    clear(p);
    merge(p, calib__parallel_for(p->ds->n, p->threads, p->grain, fn, ctx),
          out, n_sums);
}

/* Runs fn over the blocks of the rows visited (the sample, or all). */
static void run_blocks(calib__tpass *p, calib__range_fn fn, void *ctx,
                       double *out, int n_sums)
{
    const size_t rows = p->use_sample ? p->n_sample : p->ds->n;
    const size_t blocks = (rows + ROW_BLOCK - 1) / ROW_BLOCK;
    clear(p);
    merge(p, calib__parallel_for(blocks, p->threads,
                                 1 + p->grain / ROW_BLOCK, fn, ctx),
          out, n_sums);
}

/* Block b's rows: [*r0, *r1) of the rows visited. */
static void block_rows(const calib__tpass *p, size_t b, size_t *r0,
                       size_t *r1)
{
    const size_t rows = p->use_sample ? p->n_sample : p->ds->n;
    *r0 = b * ROW_BLOCK;
    *r1 = *r0 + ROW_BLOCK < rows ? *r0 + ROW_BLOCK : rows;
}

/* ------------------------------------------------------------------ */
/* Moments                                                             */
/* ------------------------------------------------------------------ */

/* Row i's state and moments (calib__ts_row_moments) at p->beta, in
 * float32 when p->f32 asks for it and the row's range allows; m[0] = len
 * for a ROW_CONST row; *wy = the label's shifted score w_y. */
static calib__row_state row_moments(const calib__tpass *p, size_t i,
                                    double *w, double *e, double m[5],
                                    double *wy)
{
    calib__zrow r;
    size_t len, y;
    calib__row_state st;
    if (p->z32) {
        y = (size_t)p->ds->labels[i];
        st = calib__ts_load_z32(p->ds, i, &r);
        m[0] = (double)r.len;
        if (st != CALIB__ROW_FIT)
            return st;
        *wy = (double)r.z[y] - r.zmax;
        if (p->f32 && (double)r.zmax - r.zmin <= CALIB__TS_RANGE32)
            calib__ts_zrow_moments32(&r, y, p->beta, (float *)e, m);
        else
            calib__ts_zrow_moments(&r, y, p->beta, e, m);
        return st;
    }
    st = calib__ts_load_row(p->ds, i, w, &len, &y);
    m[0] = (double)len;
    if (st != CALIB__ROW_FIT)
        return st;
    *wy = w[y];
    double lo = 0.0;
    for (size_t k = 0; p->f32 && k < len; k++)
        lo = w[k] < lo ? w[k] : lo;
    if (p->f32 && lo >= -CALIB__TS_RANGE32) {
        float *z = (float *)(e + p->max_len);
        for (size_t k = 0; k < len + (-len % CALIB__TS_LANES); k++)
            z[k] = (float)w[k]; /* w is padded with 0 */
        calib__ts_zrow_init(&r, z, len, p->max_len);
        calib__ts_zrow_moments32(&r, y, p->beta, (float *)e, m);
    } else {
        calib__ts_row_moments(w, len, y, p->beta, e, m);
    }
    return st;
}

/* Adds row i's weighted terms to the block's sums s[] and its sum of
 * exponentials to *prod (unweighted data; weighted rows add wt log). */
static void row_terms(const calib__tpass *p, size_t i, double *w, double *e,
                      double *s, double *prod)
{
    const double wt = calib__weight(p->ds, i);
    if (wt == 0.0)
        return;
    double m[5] = {0, 0, 0, 0, 0}, wy = 0.0;
    const calib__row_state st = row_moments(p, i, w, e, m, &wy);
    if (st == CALIB__ROW_INFINITE)
        return;
    if (st == CALIB__ROW_FIT)
        s[0] -= wt * (p->beta * wy);
    if (p->ds->weights)
        s[0] += wt * log(m[0]);
    else
        *prod *= m[0];
    for (int k = 1; k < 5; k++)
        s[k] += wt * m[k];
    s[5] += wt;
}

static void moments_range(void *vp, size_t begin, size_t end, int worker)
{
    const calib__tpass *p = vp;
    double *w = calib__tpass_scratch(p, worker), *e = w + p->max_len;
    calib__xsum *acc = p->acc + (size_t)worker * CALIB__TS_SUMS;
    for (size_t b = begin; b < end; b++) {
        double s[CALIB__TS_SUMS] = {0}, prod = 1.0;
        size_t r0, r1;
        block_rows(p, b, &r0, &r1);
        for (size_t r = r0; r < r1; r++)
            row_terms(p, p->use_sample ? p->sample[r] : r, w, e, s, &prod);
        s[0] += log(prod);
        for (int k = 0; k < CALIB__TS_SUMS; k++)
            calib__xsum_add(&acc[k], s[k]);
    }
}

void calib__tpass_moments(calib__tpass *p, double out[CALIB__TS_SUMS])
{
    run_blocks(p, moments_range, p, out, CALIB__TS_SUMS);
}

/* ------------------------------------------------------------------ */
/* The shape of the data                                               */
/* ------------------------------------------------------------------ */

/* parallel.c never uses more than 256 workers. */
typedef struct shape_ctx {
    calib__tpass *p;
    calib__tshape part[256];
} shape_ctx;

/* Counts row i into *sh and adds wt (mean_k w_k - w_y) and its absolute
 * value to s[0..1]. */
static void shape_row(const calib__tpass *p, size_t i, double *w,
                      calib__tshape *sh, double *s)
{
    const double wt = calib__weight(p->ds, i);
    calib__zrow r;
    size_t len, y, at_max;
    double sum, wy;
    calib__row_state st;
    if (wt == 0.0)
        return;
    if (p->z32) {
        y = (size_t)p->ds->labels[i];
        st = calib__ts_load_z32(p->ds, i, &r);
    } else {
        st = calib__ts_load_row(p->ds, i, w, &len, &y);
    }
    if (st != CALIB__ROW_FIT) {
        sh->infinite += st == CALIB__ROW_INFINITE;
        sh->constant += st == CALIB__ROW_CONST;
        return;
    }
    if (p->z32) {
        sum = calib__ts_zrow_sum(&r, &at_max);
        wy = (double)r.z[y] - r.zmax;
        len = r.len;
    } else {
        sum = calib__ts_row_sum(w, len, &at_max);
        wy = w[y];
    }
    sh->fit++;
    sh->label_max += wy == 0.0;
    sh->strict += wy == 0.0 && at_max == 1;
    const double d = sum / (double)len - wy;
    s[0] += wt * d;
    s[1] += wt * fabs(d);
}

static void shape_range(void *vc, size_t begin, size_t end, int worker)
{
    shape_ctx *c = vc;
    const calib__tpass *p = c->p;
    double *w = calib__tpass_scratch(p, worker);
    calib__xsum *acc = p->acc + (size_t)worker * CALIB__TS_SUMS;
    for (size_t b = begin; b < end; b++) {
        double s[2] = {0, 0};
        size_t r0, r1;
        block_rows(p, b, &r0, &r1);
        for (size_t r = r0; r < r1; r++)
            shape_row(p, r, w, &c->part[worker], s);
        calib__xsum_add(&acc[0], s[0]);
        calib__xsum_add(&acc[1], s[1]);
    }
}

void calib__tpass_shape(calib__tpass *p, calib__tshape *out)
{
    shape_ctx c;
    double sums[2];
    memset(&c, 0, sizeof c);
    c.p = p;
    p->use_sample = 0;
    run_blocks(p, shape_range, &c, sums, 2);
    memset(out, 0, sizeof *out);
    for (int w = 0; w < p->workers; w++) {
        const calib__tshape *s = &c.part[w];
        out->infinite += s->infinite, out->fit += s->fit;
        out->constant += s->constant, out->label_max += s->label_max;
        out->strict += s->strict;
    }
    out->slope0 = sums[0];
    out->slope0_abs = sums[1];
}
