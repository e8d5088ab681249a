/* bootstrap.c — percentile bootstrap intervals for every metric.
 *
 * Replicate r of a dataset of N rows draws N row indices with replacement
 * from its own generator, seeded by (seed, r) alone (calib.h documents it
 * bit for bit), so replicates can run on any number of threads in any
 * order and the intervals stay bit-identical.  Each replicate is the
 * dataset of the drawn rows; boot.h says how it is evaluated cheaply.
 * The interval of a metric is the pair of (1 - level)/2 and (1 + level)/2
 * quantiles of its replicate values, with numpy's default ('linear')
 * rule, NaN values dropped (Efron and Tibshirani 1993, ch. 13).
 */
#include "boot.h"

#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 boot_u128;

#define GAMMA UINT64_C(0x9e3779b97f4a7c15)
#define MAX_WORKERS 256

/* ------------------------------------------------------------------ */
/* The generator                                                       */
/* ------------------------------------------------------------------ */

/* splitmix64's output function (Steele, Lea and Flood 2014), a bijection. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t next64(uint64_t *state)
{
    *state += GAMMA;
    return mix64(*state);
}

/* A uniform integer in [0, n): Lemire's multiply-and-reject (2019). */
static uint64_t bounded(uint64_t *state, uint64_t n)
{
    boot_u128 m = (boot_u128)next64(state) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        const uint64_t t = (0 - n) % n;
        while (low < t) {
            m = (boot_u128)next64(state) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void calib__bootstrap_counts(uint64_t seed, uint64_t r, size_t n,
                             uint32_t *counts)
{
    memset(counts, 0, n * sizeof *counts);
    uint64_t state = mix64(seed ^ mix64(r));
    for (size_t j = 0; j < n; j++)
        counts[bounded(&state, n)]++;
}

/* ------------------------------------------------------------------ */
/* Percentile intervals                                                */
/* ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* numpy.quantile's 'linear' rule on sorted x[0..n): h = (n - 1) q, then
 * numpy's _lerp between x[floor h] and the next value. */
static double quantile(const double *x, size_t n, double q)
{
    const double h = (double)(n - 1) * q;
    if (h >= (double)(n - 1))
        return x[n - 1];
    const double lo = floor(h), t = h - lo;
    const size_t i = (size_t)lo;
    const double d = x[i + 1] - x[i];
    return t >= 0.5 ? x[i + 1] - d * (1.0 - t) : x[i] + d * t;
}

size_t calib__percentile_ci(double *x, size_t n, double level, double ci[2])
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]))
            x[k++] = x[i];
    ci[0] = ci[1] = NAN;
    if (k == 0)
        return 0;
    qsort(x, k, sizeof *x, cmp_double);
    ci[0] = quantile(x, k, (1.0 - level) / 2.0);
    ci[1] = quantile(x, k, (1.0 + level) / 2.0);
    return k;
}

/* ------------------------------------------------------------------ */
/* Preparing a dataset                                                 */
/* ------------------------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
    return strcmp(((const boot_name *)a)->name, ((const boot_name *)b)->name);
}

size_t calib__boot_pop(const boot *b, const char *name)
{
    const boot_name key = {name, 0};
    const boot_name *hit = bsearch(&key, b->names, b->n_pops - 1,
                                   sizeof key, by_name);
    return hit ? hit->pop : SIZE_MAX;
}

static void rows_range(void *vctx, size_t begin, size_t end, int worker)
{
    boot *b = vctx;
    const calib_dataset *ds = b->ds;
    for (size_t i = begin; i < end; i++) {
        int correct = 0, clipped = 0;
        calib__row_eval(ds, i, 1.0, &b->conf[i], &correct, &b->nll[i],
                        &b->brier[i], &clipped);
        b->correct[i] = (uint8_t)correct;
    }
}

/* The per-row top-label view and losses of distribution rows. */
static int prepare_rows(boot *b, int threads)
{
    const size_t n = b->n;
    b->conf = malloc(n * sizeof *b->conf);
    b->nll = malloc(n * sizeof *b->nll);
    b->brier = malloc(n * sizeof *b->brier);
    b->correct = malloc(n);
    if (!b->conf || !b->nll || !b->brier || !b->correct)
        return CALIB_ENOMEM;
    calib__parallel_for(n, threads, 4096, rows_range, b);
    for (size_t i = 0; i < n; i++) {
        const size_t len = calib__row_len(b->ds, i);
        b->max_len = len > b->max_len ? len : b->max_len;
    }
    return CALIB_OK;
}

static int prepare_groups(boot *b)
{
    const calib_metrics *m = b->full;
    const calib_dataset *ds = b->ds;
    b->n_pops = 1 + (b->use_groups ? m->n_groups : 0);
    if (!b->use_groups)
        return CALIB_OK;
    b->names = malloc(m->n_groups * sizeof *b->names);
    b->pop_of_group = malloc(ds->n_groups * sizeof *b->pop_of_group);
    if (!b->names || !b->pop_of_group)
        return CALIB_ENOMEM;
    for (size_t g = 0; g < m->n_groups; g++)
        b->names[g] = (boot_name){m->group_names[g], g + 1};
    qsort(b->names, m->n_groups, sizeof *b->names, by_name);
    for (size_t g = 0; g < ds->n_groups; g++)
        b->pop_of_group[g] = calib__boot_pop(b, ds->group_names[g]);
    return CALIB_OK;
}

static double full_value(const boot *b, size_t pop, int id)
{
    const calib_metrics *m = pop ? b->full->groups[pop - 1] : b->full;
    return calib_metric_value(m, (calib_metric_id)id);
}

/* The calib_eval_options.extra bit a metric needs, 0 when always on. */
static unsigned extra_bit(int id)
{
    switch (id) {
    case CALIB_M_SMECE: return CALIB_EXTRA_SMOOTH;
    case CALIB_M_CLASSWISE_ECE: return CALIB_EXTRA_CLASSWISE;
    case CALIB_M_AUROC: case CALIB_M_AURC:
    case CALIB_M_SELECTIVE_COV_ACC_AREA: case CALIB_M_SELECTIVE_ACC_AT_10:
        return CALIB_EXTRA_SELECTIVE;
    default: return 0;
    }
}

/* Keeps src[id] when the probe's values equal the whole set's wherever
 * the latter is finite; otherwise the metric needs the FULL rows (the
 * view of top-label rows is the rows themselves: it stays). */
static void judge(boot *b, const double *probe)
{
    for (int id = 0; id < CALIB_M_COUNT; id++) {
        int finite = 0, same = 1;
        if (extra_bit(id) & ~b->o.extra) { /* not resampled (smooth ECE) */
            b->src[id] = SRC_NONE;
            continue;
        }
        for (size_t p = 0; p < b->n_pops; p++) {
            const double v = full_value(b, p, id);
            if (!isfinite(v))
                continue;
            finite = 1;
            same = same && probe[p * CALIB_M_COUNT + id] == v;
        }
        if (!finite)
            b->src[id] = SRC_NONE;
        else if (!same && b->ds->kind != CALIB_TOPLABEL)
            b->src[id] = SRC_FULL;
        if (b->src[id] == SRC_FULL)
            b->full_extra |= extra_bit(id);
    }
    b->full_extra &= b->o.extra;
}

/* Evaluates the replicate that draws every row once and picks each
 * metric's way (boot.h).  Top-label rows need no probe: their view is the
 * rows themselves. */
static int probe(boot *b)
{
    const int top = b->ds->kind == CALIB_TOPLABEL;
    for (int id = 0; id < CALIB_M_COUNT; id++)
        b->src[id] = SRC_VIEW;
    if (!top)
        b->src[CALIB_M_NLL] = b->src[CALIB_M_BRIER] = SRC_ROWS;
    boot_scratch s;
    uint32_t *ones = malloc(b->n * sizeof *ones);
    double *vals = malloc(b->n_pops * CALIB_M_COUNT * sizeof *vals);
    int rc = ones && vals ? calib__boot_scratch_new(b, &s) : CALIB_ENOMEM;
    if (rc == CALIB_OK) {
        for (size_t i = 0; i < b->n; i++)
            ones[i] = 1;
        rc = calib__boot_eval(b, &s, ones, vals);
        calib__boot_scratch_free(&s);
    }
    if (rc == CALIB_OK)
        judge(b, vals);
    free(ones);
    free(vals);
    return rc;
}

int calib__boot_prepare(boot *b, const calib_dataset *ds,
                        const calib_metrics *full,
                        const calib_eval_options *opt, int use_groups)
{
    memset(b, 0, sizeof *b);
    b->ds = ds;
    b->full = full;
    b->o = *opt;
    b->o.bootstrap = 0;
    b->o.threads = 1;
    /* smooth ECE gets no interval: its bandwidth search costs 1-9 ms per
     * resample of 10^4 rows (seconds for 1000 resamples) */
    b->o.extra &= ~(unsigned)CALIB_EXTRA_SMOOTH;
    b->n = ds->n;
    b->use_groups = use_groups && ds->groups && full->n_groups;
    int rc = prepare_groups(b);
    if (rc == CALIB_OK && ds->kind != CALIB_TOPLABEL)
        rc = prepare_rows(b, opt->threads);
    if (rc == CALIB_OK)
        rc = probe(b);
    if (rc != CALIB_OK)
        calib__boot_free(b);
    return rc;
}

void calib__boot_free(boot *b)
{
    free(b->conf);
    free(b->correct);
    free(b->nll);
    free(b->brier);
    free(b->pop_of_group);
    free(b->names);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ */
/* Running replicates                                                  */
/* ------------------------------------------------------------------ */

typedef struct run_ctx {
    const boot *const *bs;
    size_t nb;
    uint64_t seed;
    double *const *vals;
    int rc[MAX_WORKERS];
} run_ctx;

/* Replicates [begin, end): each worker owns its buffers. */
static void run_range(void *vctx, size_t begin, size_t end, int worker)
{
    run_ctx *c = vctx;
    const size_t n = c->bs[0]->n;
    boot_scratch s[2];
    size_t made = 0;
    uint32_t *counts = malloc(n * sizeof *counts);
    int rc = counts ? CALIB_OK : CALIB_ENOMEM;
    for (; rc == CALIB_OK && made < c->nb; made++)
        if ((rc = calib__boot_scratch_new(c->bs[made], &s[made])) != CALIB_OK)
            break;
    for (size_t r = begin; rc == CALIB_OK && r < end; r++) {
        calib__bootstrap_counts(c->seed, r, n, counts);
        for (size_t k = 0; rc == CALIB_OK && k < c->nb; k++)
            rc = calib__boot_eval(c->bs[k], &s[k], counts,
                                  c->vals[k] + r * c->bs[k]->n_pops *
                                                   CALIB_M_COUNT);
    }
    for (size_t k = 0; k < made; k++)
        calib__boot_scratch_free(&s[k]);
    free(counts);
    c->rc[worker] = rc;
}

int calib__boot_run(const boot *const *bs, size_t nb, int resamples,
                    uint64_t seed, int threads, double *const *vals)
{
    run_ctx c;
    memset(&c, 0, sizeof c);
    c.bs = bs;
    c.nb = nb;
    c.seed = seed;
    c.vals = vals;
    const int used = calib__parallel_for((size_t)resamples, threads, 1,
                                         run_range, &c);
    for (int w = 0; w < used; w++)
        if (c.rc[w] != CALIB_OK)
            return c.rc[w];
    return CALIB_OK;
}

/* ------------------------------------------------------------------ */
/* Intervals of one dataset's metrics                                  */
/* ------------------------------------------------------------------ */

/* The intervals of population `pop` into m; x has room for R values. */
static void fill_ci(calib_metrics *m, const boot *b, const double *vals,
                    size_t pop, const calib_eval_options *o, double *x)
{
    const size_t R = (size_t)o->bootstrap, stride = b->n_pops * CALIB_M_COUNT;
    m->has_ci = 1;
    m->ci_level = o->ci_level;
    m->ci_resamples = o->bootstrap;
    m->ci_seed = o->seed;
    for (int id = 0; id < CALIB_M_COUNT; id++) {
        m->ci[id][0] = m->ci[id][1] = NAN;
        if (b->src[id] == SRC_NONE ||
            !isfinite(calib_metric_value(m, (calib_metric_id)id)))
            continue;
        for (size_t r = 0; r < R; r++)
            x[r] = vals[r * stride + pop * CALIB_M_COUNT + (size_t)id];
        calib__percentile_ci(x, R, o->ci_level, m->ci[id]);
    }
}

/* R replicates of n_pops populations, or NULL (overflow, no memory). */
static double *alloc_vals(size_t R, size_t n_pops)
{
    const size_t per = n_pops * CALIB_M_COUNT;
    if (per && R > SIZE_MAX / sizeof(double) / per)
        return NULL;
    return malloc(R * per * sizeof(double));
}

int calib__bootstrap(const calib_dataset *ds, const calib_eval_options *o,
                     calib_metrics *m, calib_error *err)
{
    boot b;
    const size_t R = (size_t)o->bootstrap;
    int rc = calib__boot_prepare(&b, ds, m, o, 1);
    if (rc != CALIB_OK)
        return calib__fail(err, rc, NULL, 0, 0, 0, "bootstrap: %s",
                           calib_strerror(rc));
    double *vals = alloc_vals(R, b.n_pops);
    double *x = malloc(R * sizeof *x);
    const boot *bp = &b;
    rc = vals && x ? calib__boot_run(&bp, 1, o->bootstrap, o->seed,
                                     o->threads, &vals)
                   : CALIB_ENOMEM;
    if (rc == CALIB_OK) {
        fill_ci(m, &b, vals, 0, o, x);
        for (size_t g = 0; g + 1 < b.n_pops; g++)
            fill_ci(m->groups[g], &b, vals, g + 1, o, x);
    }
    free(vals);
    free(x);
    calib__boot_free(&b);
    if (rc != CALIB_OK)
        return calib__fail(err, rc, NULL, 0, 0, 0, "bootstrap: %s",
                           calib_strerror(rc));
    return CALIB_OK;
}
