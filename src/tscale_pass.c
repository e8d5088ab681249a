/* tscale_pass.c — passes over the rows for temperature scaling: the
 * moments of the NLL at one beta, the structure of the data, and the
 * warm-start subsample.
 *
 * Rows are taken in blocks of ROW_BLOCK consecutive rows (of the data, or
 * of the sample), fixed by position alone; a block's per-row values are
 * added in row order, and each block's sums then go into the exact
 * accumulators (xsum.c).  A block is never split between threads, so the
 * sums, and T, are the same bits for any thread count, while the
 * superaccumulator is touched once per block instead of nine times a row
 * (it costs more than the exp of a short row).  Within a block the NLL's
 * log-sum-exp terms are multiplied and one log taken: every factor lies in
 * [1, row length], and a product past 2^896 is logged and restarted, so it
 * cannot overflow.
 *
 * Moment passes run in double, or in float32 (p->f32: the solver's
 * approximate passes) on every row whose range allows it; a row of float32
 * logits is read in place by the kernels, other rows are loaded as doubles
 * first.  A `high` pass (p->high, in double) also sums the cumulants to
 * the eighth order, for the solver's series step.
 *
 * The data's shape (calib__tshape) comes from a pass of its own, or from
 * the first moment pass over all rows when p->shape asks for it (a row's
 * sums then come from the moment kernel's own loops in a float32 or high
 * pass, the same bits as calib__ts_zrow_sum's); either also keeps each float32
 * row's maximum and minimum (p->ext, 8 bytes a row), so that later passes
 * do not scan rows for them again.
 */
#include "temperature.h"

#include <stdlib.h>
#include <string.h>

#define ROW_BLOCK 64

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
    /* optional: without it every pass scans each row for its extremes */
    p->ext = p->z32 && ds->n <= SIZE_MAX / 8 ? malloc(ds->n * 2 * sizeof(float))
                                             : NULL;
    p->acc = malloc((size_t)p->workers * CALIB__TS_SUMS * sizeof *p->acc);
    p->part = malloc((size_t)p->workers * sizeof *p->part);
    p->shape_acc = malloc((size_t)p->workers * 2 * sizeof *p->shape_acc);
    return p->scratch && p->acc && p->part && p->shape_acc ? CALIB_OK
                                                           : CALIB_ENOMEM;
}

void calib__tpass_free(calib__tpass *p)
{
    free(p->scratch);
    free(p->acc);
    free(p->ext);
    free(p->part);
    free(p->shape_acc);
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

/* Sorts x[0..m), values below n, by LSD radix sort a byte at a time: no
 * comparison callbacks or mispredicted branches (qsort took about 3M
 * instructions for the 8192 sample rows, serially, before any pass).
 * CALIB_OK or CALIB_ENOMEM. */
static int sort_rows(size_t *x, size_t m, size_t n)
{
    size_t *tmp = malloc(m * sizeof *tmp), *src = x, *dst = tmp;
    if (!tmp)
        return CALIB_ENOMEM;
    for (unsigned sh = 0; sh < 64 && (n - 1) >> sh; sh += 8) {
        size_t at[256] = {0}, sum = 0;
        for (size_t i = 0; i < m; i++)
            at[(src[i] >> sh) & 255]++;
        for (int d = 0; d < 256; d++) {
            const size_t c = at[d];
            at[d] = sum, sum += c;
        }
        for (size_t i = 0; i < m; i++)
            dst[at[(src[i] >> sh) & 255]++] = src[i];
        size_t *t = src;
        src = dst, dst = t;
    }
    if (src != x)
        memcpy(x, src, m * sizeof *x);
    free(tmp);
    return CALIB_OK;
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
    if (sort_rows(p->sample, m, p->ds->n))
        return CALIB_ENOMEM;
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
    merge(p, calib__parallel_chunks(blocks, p->threads,
                                    1 + p->grain / ROW_BLOCK,
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

/* Float32 logits row i (calib__ts_load_z32), its extremes taken from
 * p->ext once the shape pass has found them. */
static calib__row_state load_z(const calib__tpass *p, size_t i,
                               calib__zrow *r)
{
    if (!p->ext_ready)
        return calib__ts_load_z32(p->ds, i, r);
    const calib_dataset *ds = p->ds;
    const size_t b = calib__row_begin(ds, i);
    const size_t total = ds->offsets ? ds->offsets[ds->n] : ds->n * ds->k;
    calib__ts_zrow_known(r, (const float *)ds->scores + b,
                         calib__row_len(ds, i), total - b, p->ext[2 * i],
                         p->ext[2 * i + 1]);
    return r->zmin == r->zmax ? CALIB__ROW_CONST : CALIB__ROW_FIT;
}

/* Counts a row that depends on T into *sh: its length, sum_k w_k, the
 * count of its maxima and the label's w_y; adds wt (mean_k w_k - w_y) and
 * its absolute value to s[0..1]. */
static void shape_add(calib__tshape *sh, double *s, double wt, size_t len,
                      double sum, size_t at_max, double wy)
{
    sh->fit++;
    sh->label_max += wy == 0.0;
    sh->strict += wy == 0.0 && at_max == 1;
    const double d = sum / (double)len - wy;
    s[0] += wt * d;
    s[1] += wt * fabs(d);
}

/* Counts a loaded row of state st (z32: zr, else w[0..len) with the label
 * at w[y]) into *sh, and adds wt (mean_k w_k - w_y) and its absolute value
 * to s[0..1]. */
static void shape_count(calib__row_state st, const calib__zrow *zr,
                        const double *w, size_t len, size_t y, double wt,
                        calib__tshape *sh, double *s)
{
    size_t at_max;
    if (st != CALIB__ROW_FIT) {
        sh->infinite += st == CALIB__ROW_INFINITE;
        sh->constant += st == CALIB__ROW_CONST;
    } else if (zr) {
        const double sum = calib__ts_zrow_sum(zr, &at_max);
        shape_add(sh, s, wt, zr->len, sum, at_max,
                  (double)zr->z[y] - zr->zmax);
    } else {
        const double sum = calib__ts_row_sum(w, len, &at_max);
        shape_add(sh, s, wt, len, sum, at_max, w[y]);
    }
}

/* row_moments for a row of float32 logits: in float32 when p->f32 asks
 * for it and the row's range allows, with the shape's sums (sh) from the
 * same loop.  (A high pass takes float32 rows a block at a time:
 * high_block.) */
static calib__row_state z32_moments(const calib__tpass *p, size_t i,
                                    double *e, double m[CALIB__TS_MOM],
                                    double *wy, double wt, calib__tshape *sh,
                                    double *ss)
{
    calib__zrow r;
    const size_t y = (size_t)p->ds->labels[i];
    const calib__row_state st = load_z(p, i, &r);
    const int f32 = p->f32 && (double)r.zmax - r.zmin <= CALIB__TS_RANGE32;
    m[0] = (double)r.len;
    if (sh && p->ext)
        p->ext[2 * i] = r.zmax, p->ext[2 * i + 1] = r.zmin;
    if (sh && (st != CALIB__ROW_FIT || !f32))
        shape_count(st, &r, NULL, 0, y, wt, sh, ss);
    if (st != CALIB__ROW_FIT)
        return st;
    *wy = (double)r.z[y] - r.zmax;
    if (!f32) {
        calib__ts_zrow_moments(&r, y, p->beta, e, m);
    } else if (sh) {
        double sum;
        size_t at_max;
        calib__ts_zrow_moments32(&r, y, p->beta, (float *)e, m, &sum, &at_max);
        shape_add(sh, ss, wt, r.len, sum, at_max, *wy);
    } else {
        calib__ts_zrow_moments32(&r, y, p->beta, (float *)e, m, NULL, NULL);
    }
    return st;
}

/* Row i's state and moments (calib__ts_row_moments) at p->beta, in
 * float32 when p->f32 asks for it and the row's range allows; m[0] = len
 * for a ROW_CONST row; *wy = the label's shifted score w_y.  With sh, the
 * row is also counted into the shape (shape_count, weight wt, sums ss),
 * and a z32 row's extremes kept in p->ext. */
static calib__row_state row_moments(const calib__tpass *p, size_t i,
                                    double *w, double *e,
                                    double m[CALIB__TS_MOM],
                                    double *wy, double wt, calib__tshape *sh,
                                    double *ss)
{
    calib__zrow r;
    size_t len, y;
    if (p->z32)
        return z32_moments(p, i, e, m, wy, wt, sh, ss);
    const calib__row_state st = calib__ts_load_row(p->ds, i, w, &len, &y);
    m[0] = (double)len;
    if (sh && (st != CALIB__ROW_FIT || !p->high))
        shape_count(st, NULL, w, len, y, wt, sh, ss);
    if (st != CALIB__ROW_FIT)
        return st;
    *wy = w[y];
    if (p->high) {
        double sum;
        size_t at_max;
        calib__ts_row_moments(w, len, y, p->beta, e, m, &sum, &at_max);
        if (sh)
            shape_add(sh, ss, wt, len, sum, at_max, *wy);
        return st;
    }
    double lo = 0.0;
    for (size_t k = 0; p->f32 && k < len; k++)
        lo = w[k] < lo ? w[k] : lo;
    if (p->f32 && lo >= -CALIB__TS_RANGE32) {
        float *z = (float *)(e + p->max_len);
        for (size_t k = 0; k < len + (-len % CALIB__TS_LANES); k++)
            z[k] = (float)w[k]; /* w is padded with 0 */
        calib__ts_zrow_init(&r, z, len, p->max_len);
        calib__ts_zrow_moments32(&r, y, p->beta, (float *)e, m, NULL, NULL);
    } else {
        calib__ts_row_moments(w, len, y, p->beta, e, m, NULL, NULL);
    }
    return st;
}

/* Adds a row's weighted terms (state st, moments m[], label score wy) to
 * the block's sums s[] and its sum of exponentials to *prod (unweighted
 * data; weighted rows add wt log). */
static void add_terms(const calib__tpass *p, calib__row_state st,
                      const double *m, double wy, double wt, double *s,
                      double *prod)
{
    if (st == CALIB__ROW_INFINITE)
        return;
    if (st == CALIB__ROW_FIT)
        s[0] -= wt * (p->beta * wy);
    if (p->ds->weights) {
        s[0] += wt * log(m[0]);
    } else {
        *prod *= m[0];
        if (*prod > 0x1p896) { /* before the next factor (<= 2^64) */
            s[0] += log(*prod);
            *prod = 1.0;
        }
    }
    for (int k = 1; k < (p->high ? CALIB__TS_MOM : 5); k++)
        s[k] += wt * m[k];
    s[CALIB__TS_WEIGHT] += wt;
}

/* Row i's terms into s[] and *prod (add_terms). */
static void row_terms(const calib__tpass *p, size_t i, double *w, double *e,
                      double *s, double *prod, calib__tshape *sh, double *ss)
{
    const double wt = calib__weight(p->ds, i);
    if (wt == 0.0)
        return;
    double m[CALIB__TS_MOM] = {0}, wy = 0.0;
    const calib__row_state st = row_moments(p, i, w, e, m, &wy, wt, sh, ss);
    add_terms(p, st, m, wy, wt, s, prod);
}

/* Rows [r0, r1) of float32 logits in a high pass: the kernel takes the
 * block in one call (calib__ts_zrows_high), the same values row_terms
 * would add. */
static void high_block(const calib__tpass *p, size_t r0, size_t r1,
                       double *e, double *s, double *prod, calib__tshape *sh,
                       double *ss)
{
    calib__zhigh out[ROW_BLOCK];
    calib__ts_zrows_high(p->ds, r0, r1, p->beta, e, p->max_len, out);
    for (size_t i = r0; i < r1; i++) {
        calib__zhigh *o = &out[i - r0];
        const double wt = calib__weight(p->ds, i);
        if (wt == 0.0)
            continue;
        if (sh && p->ext)
            p->ext[2 * i] = o->zmax, p->ext[2 * i + 1] = o->zmin;
        if (sh && o->st != CALIB__ROW_FIT)
            sh->constant++;
        else if (sh)
            shape_add(sh, ss, wt, o->len, o->sum, o->at_max, o->wy);
        if (o->st != CALIB__ROW_FIT)
            o->m[0] = (double)o->len;
        add_terms(p, o->st, o->m, o->wy, wt, s, prod);
    }
}

/* Asks for row i's scores ahead of use: the subsample's rows are spread
 * over the data, where the hardware prefetcher cannot guess them. */
static void prefetch_row(const calib_dataset *ds, size_t i)
{
    if (ds->kind == CALIB_TOPLABEL)
        return;
    const size_t size = ds->dtype == CALIB_F32 ? 4 : 8;
    const char *a = (const char *)ds->scores + calib__row_begin(ds, i) * size;
    const size_t bytes = calib__row_len(ds, i) * size;
    for (size_t off = 0; off < bytes; off += 64)
        __builtin_prefetch(a + off);
}

static void moments_range(void *vp, size_t begin, size_t end, int worker)
{
    const calib__tpass *p = vp;
    double *w = calib__tpass_scratch(p, worker), *e = w + p->max_len;
    calib__xsum *acc = p->acc + (size_t)worker * CALIB__TS_SUMS;
    calib__tshape *sh = p->shape && !p->use_sample ? &p->part[worker] : NULL;
    for (size_t b = begin; b < end; b++) {
        double s[CALIB__TS_SUMS] = {0}, prod = 1.0, ss[2] = {0, 0};
        size_t r0, r1;
        block_rows(p, b, &r0, &r1);
        if (p->high && p->z32 && !p->use_sample) {
            high_block(p, r0, r1, e, s, &prod, sh, ss);
        } else {
            for (size_t r = r0; r < r1; r++) {
                if (p->use_sample && r + 1 < p->n_sample)
                    prefetch_row(p->ds, p->sample[r + 1]);
                row_terms(p, p->use_sample ? p->sample[r] : r, w, e, s,
                          &prod, sh, ss);
            }
        }
        s[0] += log(prod);
        for (int k = 0; k < CALIB__TS_SUMS; k++)
            if (k < 5 || k == CALIB__TS_WEIGHT || p->high)
                calib__xsum_add(&acc[k], s[k]);
        if (sh) {
            calib__xsum_add(&p->shape_acc[2 * worker], ss[0]);
            calib__xsum_add(&p->shape_acc[2 * worker + 1], ss[1]);
        }
    }
}

static void shape_begin(calib__tpass *p)
{
    memset(p->part, 0, (size_t)p->workers * sizeof *p->part);
    for (int w = 0; w < 2 * p->workers; w++)
        calib__xsum_init(&p->shape_acc[w]);
    p->ext_ready = 0;
}

/* Merges the workers' shapes into *out (exact: the order is immaterial);
 * p->ext is filled from now on. */
static void shape_end(calib__tpass *p, calib__tshape *out)
{
    memset(out, 0, sizeof *out);
    for (int w = 0; w < p->workers; w++) {
        const calib__tshape *s = &p->part[w];
        out->infinite += s->infinite, out->fit += s->fit;
        out->constant += s->constant, out->label_max += s->label_max;
        out->strict += s->strict;
        if (w > 0) {
            calib__xsum_merge(&p->shape_acc[0], &p->shape_acc[2 * w]);
            calib__xsum_merge(&p->shape_acc[1], &p->shape_acc[2 * w + 1]);
        }
    }
    out->slope0 = calib__xsum_round(&p->shape_acc[0]);
    out->slope0_abs = calib__xsum_round(&p->shape_acc[1]);
    p->ext_ready = p->ext != NULL;
}

void calib__tpass_moments(calib__tpass *p, double out[CALIB__TS_SUMS])
{
    calib__tshape *const want = p->use_sample ? NULL : p->shape;
    if (want)
        shape_begin(p);
    run_blocks(p, moments_range, p, out, CALIB__TS_SUMS);
    if (want) {
        shape_end(p, want);
        p->shape = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* The shape of the data                                               */
/* ------------------------------------------------------------------ */

/* Counts row i into the worker's shape and adds wt (mean_k w_k - w_y)
 * and its absolute value to s[0..1]. */
static void shape_row(const calib__tpass *p, size_t i, double *w,
                      calib__tshape *sh, double *s)
{
    const double wt = calib__weight(p->ds, i);
    calib__zrow r;
    size_t len, y;
    if (wt == 0.0)
        return;
    if (p->z32) {
        y = (size_t)p->ds->labels[i];
        const calib__row_state st = calib__ts_load_z32(p->ds, i, &r);
        if (p->ext)
            p->ext[2 * i] = r.zmax, p->ext[2 * i + 1] = r.zmin;
        shape_count(st, &r, NULL, 0, y, wt, sh, s);
    } else {
        const calib__row_state st = calib__ts_load_row(p->ds, i, w, &len, &y);
        shape_count(st, NULL, w, len, y, wt, sh, s);
    }
}

static void shape_range(void *vp, size_t begin, size_t end, int worker)
{
    const calib__tpass *p = vp;
    double *w = calib__tpass_scratch(p, worker);
    for (size_t b = begin; b < end; b++) {
        double s[2] = {0, 0};
        size_t r0, r1;
        block_rows(p, b, &r0, &r1);
        for (size_t r = r0; r < r1; r++)
            shape_row(p, r, w, &p->part[worker], s);
        calib__xsum_add(&p->shape_acc[2 * worker], s[0]);
        calib__xsum_add(&p->shape_acc[2 * worker + 1], s[1]);
    }
}

void calib__tpass_shape(calib__tpass *p, calib__tshape *out)
{
    double none[1];
    p->use_sample = 0;
    shape_begin(p);
    run_blocks(p, shape_range, p, none, 0);
    shape_end(p, out);
}
