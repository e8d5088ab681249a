/* temperature.c — fitting temperature scaling (Guo et al. 2017, "On
 * Calibration of Modern Neural Networks", section 4.2).
 *
 * Distribution rows: q = softmax(beta z), beta = 1/T.  The mean NLL
 *   f(beta) = mean_i [ lse(beta z_i) - beta z_{i,y} ]
 * is convex in beta: its derivatives are the cumulants of z under q,
 *   f'  = mean_i sum_k q_k (z_k - z_y),   f'' = mean_i Var_q(z),
 *   f''' = mean_i kappa_3,  f'''' = mean_i kappa_4,
 * so one pass over the scores yields all of them.  We solve f' = 0 for
 * u = log beta (T is a scale, so log is its natural coordinate) by Newton's
 * method with Halley's third-order correction, inside a bracket [lo, hi]
 * where the derivative changes sign, falling back to bisection when a step
 * leaves the bracket or does not shrink fast enough (rtsafe, Numerical
 * Recipes 9.4).  The fourth cumulant bounds the error left by the last step
 * (Halley's error constant), so the final step is taken without another
 * pass once that bound is below 1e-13 in u, i.e. a relative 1e-13 in T.
 * Large inputs first solve on a fixed pseudo-random subsample: its optimum is
 * within sampling error of the full one, so the full data then need about
 * two passes.
 *
 * Top-label rows use the binary form p' = sigmoid(logit(p) / T), which is
 * the softmax of the two logits (logit p, 0) with class 0 = "correct"; the
 * same code fits both.
 *
 * Cases without a finite optimum are recognised from the data's structure
 * before any solving (the label has the largest score in every row: f
 * decreases as T -> 0; the mean score is at least the label's: f increases
 * with beta from 0, so T -> infinity; no row depends on T), reported as
 * diagnostics with T at the end of the range or 1.
 *
 * The ECE and Brier objectives are evaluated on a grid of log T and refined
 * by golden section (the end of this file).
 */
#include "temperature.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* exp for arguments <= 0                                              */
/* ------------------------------------------------------------------ */

/* 2^(j/64), correctly rounded. */
static const double exp2_tab[64] = {
    0x1.0000000000000p+0, 0x1.02c9a3e778061p+0, 0x1.059b0d3158574p+0,
    0x1.0874518759bc8p+0, 0x1.0b5586cf9890fp+0, 0x1.0e3ec32d3d1a2p+0,
    0x1.11301d0125b51p+0, 0x1.1429aaea92de0p+0, 0x1.172b83c7d517bp+0,
    0x1.1a35beb6fcb75p+0, 0x1.1d4873168b9aap+0, 0x1.2063b88628cd6p+0,
    0x1.2387a6e756238p+0, 0x1.26b4565e27cddp+0, 0x1.29e9df51fdee1p+0,
    0x1.2d285a6e4030bp+0, 0x1.306fe0a31b715p+0, 0x1.33c08b26416ffp+0,
    0x1.371a7373aa9cbp+0, 0x1.3a7db34e59ff7p+0, 0x1.3dea64c123422p+0,
    0x1.4160a21f72e2ap+0, 0x1.44e086061892dp+0, 0x1.486a2b5c13cd0p+0,
    0x1.4bfdad5362a27p+0, 0x1.4f9b2769d2ca7p+0, 0x1.5342b569d4f82p+0,
    0x1.56f4736b527dap+0, 0x1.5ab07dd485429p+0, 0x1.5e76f15ad2148p+0,
    0x1.6247eb03a5585p+0, 0x1.6623882552225p+0, 0x1.6a09e667f3bcdp+0,
    0x1.6dfb23c651a2fp+0, 0x1.71f75e8ec5f74p+0, 0x1.75feb564267c9p+0,
    0x1.7a11473eb0187p+0, 0x1.7e2f336cf4e62p+0, 0x1.82589994cce13p+0,
    0x1.868d99b4492edp+0, 0x1.8ace5422aa0dbp+0, 0x1.8f1ae99157736p+0,
    0x1.93737b0cdc5e5p+0, 0x1.97d829fde4e50p+0, 0x1.9c49182a3f090p+0,
    0x1.a0c667b5de565p+0, 0x1.a5503b23e255dp+0, 0x1.a9e6b5579fdbfp+0,
    0x1.ae89f995ad3adp+0, 0x1.b33a2b84f15fbp+0, 0x1.b7f76f2fb5e47p+0,
    0x1.bcc1e904bc1d2p+0, 0x1.c199bdd85529cp+0, 0x1.c67f12e57d14bp+0,
    0x1.cb720dcef9069p+0, 0x1.d072d4a07897cp+0, 0x1.d5818dcfba487p+0,
    0x1.da9e603db3285p+0, 0x1.dfc97337b9b5fp+0, 0x1.e502ee78b3ff6p+0,
    0x1.ea4afa2a490dap+0, 0x1.efa1bee615a27p+0, 0x1.f50765b6e4540p+0,
    0x1.fa7c1819e90d8p+0,
};

/* exp(x) for x <= 0, to a few ulp, 0 below -708; written without branches
 * or calls so that the compiler vectorises the loops that use it (libm's
 * exp is a call per element, and the fit's time is almost all exp).
 * x = (64 a + j) ln2/64 + r with |r| <= ln2/128: exp(x) = 2^a 2^(j/64)
 * e^r, e^r by its Taylor polynomial of degree 5 (error r^6/720 < 4e-17).
 * ln2/64 is split so that n * hi is exact for |n| < 2^17.  The table
 * needs gathers to vectorise (AVX2); see VECTOR_CLONES. */
static inline double exp_nonpos(double x)
{
    const double shift = 0x1.8p52;
    const double keep = x >= -708.0;
    /* x = max(x, -708) on the bits (for x <= 0, a larger pattern is a more
     * negative number): an integer select vectorises, a double one not. */
    uint64_t xb;
    memcpy(&xb, &x, sizeof xb);
    xb = xb > UINT64_C(0xc086200000000000) ? UINT64_C(0xc086200000000000) : xb;
    memcpy(&x, &xb, sizeof x);
    const double t = x * 0x1.71547652b82fep+6 + shift;
    const double n = t - shift;
    const double r = (x - n * 0x1.62e42fefa0000p-7) - n * 0x1.cf79abc9e3b3ap-46;
    uint64_t ub;
    memcpy(&ub, &t, sizeof ub);
    const uint64_t j = ub & 63;
    const uint64_t sbits = ((ub >> 6) + (1023 - (UINT64_C(0x4338000000000000) >> 6)))
                           << 52;
    double scale;
    memcpy(&scale, &sbits, sizeof scale);
    const double r2 = r * r;
    const double p = 1.0 + r + r2 * (0.5 + r * (1.0 / 6) +
                                     r2 * (1.0 / 24 + r * (1.0 / 120)));
    return p * (scale * exp2_tab[j]) * keep;
}

/* ------------------------------------------------------------------ */
/* Rows as logits                                                      */
/* ------------------------------------------------------------------ */

/* A score more than this far below its row's maximum has probability
 * exactly 0 for every beta >= 1e-70 (exp underflows), so it is dropped;
 * this also keeps (w - m)^4 finite below. */
#define W_DROP 1e75
/* The range of T calib_fit accepts, so that beta * W_DROP underflows. */
#define T_LIMIT 1e30

enum row_state {
    ROW_FIT,       /* depends on T                                    */
    ROW_CONST,     /* NLL = log(len) whatever T (all scores equal, ...) */
    ROW_INFINITE   /* NLL = +inf whatever T (label has probability 0) */
};

/* Drops the entries of w[0..n) (raw scores, maximum zmax) more than
 * W_DROP below zmax and shifts the rest by -zmax; *y = SIZE_MAX when the
 * label lab was dropped. */
static enum row_state compact(double *w, size_t n, size_t lab, double zmax,
                              size_t *len, size_t *y)
{
    size_t m = 0;
    int flat = 1;
    *y = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        const double d = w[k] - zmax;
        if (d >= -W_DROP) {
            if (k == lab)
                *y = m;
            w[m++] = d;
            flat &= d == 0.0;
        }
    }
    *len = m;
    return *y == SIZE_MAX ? ROW_INFINITE : flat ? ROW_CONST : ROW_FIT;
}

/* Top-label row i as the logits (logit p, 0) with class 0 = correct; p in
 * {0, 1} is exact: the row (w = {0}) is constant when it agrees with its
 * correct flag, infinite otherwise. */
static enum row_state load_top(const calib_dataset *ds, size_t i, double *w,
                               size_t *len, size_t *y)
{
    const double p = calib__conf(ds, i);
    const int c = ds->correct[i] != 0;
    if (p == 0.0 || p == 1.0) {
        *len = 1, *y = 0, w[0] = 0.0;
        return (p == 1.0) == c ? ROW_CONST : ROW_INFINITE;
    }
    w[0] = log(p) - log1p(-p);
    w[1] = 0.0;
    return compact(w, 2, c ? 0 : 1, fmax(w[0], 0.0), len, y);
}

/* Row i as w_k = z_k - max z (<= 0, one of them 0), entries with
 * probability 0 for every T dropped, the label at w[*y] (*y = SIZE_MAX
 * when it was dropped: the row is then ROW_INFINITE).  PROBS rows are
 * logits log p.  w has room for the longest row. */
static enum row_state load_row(const calib_dataset *ds, size_t i, double *w,
                               size_t *len, size_t *y)
{
    if (ds->kind == CALIB_TOPLABEL)
        return load_top(ds, i, w, len, y);
    const size_t b = calib__row_begin(ds, i), n = calib__row_len(ds, i);
    const size_t lab = (size_t)ds->labels[i];
    if (ds->kind == CALIB_LOGITS && ds->dtype == CALIB_F32) {
        const float *s = (const float *)ds->scores + b;
        for (size_t k = 0; k < n; k++)
            w[k] = s[k];
    } else if (ds->kind == CALIB_LOGITS) {
        memcpy(w, (const double *)ds->scores + b, n * sizeof *w);
    } else {
        for (size_t k = 0; k < n; k++) {
            const double s = calib__score(ds, b + k);
            w[k] = s > 0.0 ? log(s > 1.0 ? 1.0 : s) : -INFINITY;
        }
    }
    double zmax = -INFINITY, zmin = INFINITY;
    for (size_t k = 0; k < n; k++) {
        zmax = w[k] > zmax ? w[k] : zmax;
        zmin = w[k] < zmin ? w[k] : zmin;
    }
    if (!(zmin - zmax >= -W_DROP))
        return compact(w, n, lab, zmax, len, y);
    for (size_t k = 0; k < n; k++)
        w[k] -= zmax;
    *len = n, *y = lab;
    return zmin == zmax ? ROW_CONST : ROW_FIT;
}

/* On x86-64 Linux with GCC the exp loop is also compiled for AVX2 and the
 * variant is picked at load time (an ifunc).  ISO C mode keeps
 * -ffp-contract=off, so both variants round every operation alike and
 * give the same bits. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && \
    !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* e_k = exp(beta w_k); returns their sum (>= 1: the maximum gives 1).
 * Four partial sums in a fixed order: faster, and the same for any
 * thread count since a row is never split. */
VECTOR_CLONES
static double row_exp(const double *w, size_t len, double beta, double *e)
{
    for (size_t k = 0; k < len; k++)
        e[k] = exp_nonpos(beta * w[k]);
    double s[4] = {0, 0, 0, 0};
    size_t k = 0;
    for (; k + 4 <= len; k += 4)
        for (int l = 0; l < 4; l++)
            s[l] += e[k + l];
    for (; k < len; k++)
        s[0] += e[k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* NLL of the row and the beta-derivatives: f' = sum_k q_k (w_k - w_y)
 * (never E_q[w] - w_y, which cancels to 0 when q is sure of the label),
 * then the central moments of w under q about m = E_q[w], two-pass so no
 * cancellation: f'' = c2, f''' = c3, f'''' = kappa_4 = c4 - 3 c2^2. */
static void row_moments(const double *w, size_t len, size_t y, double beta,
                        double *e, double out[5])
{
    const double t0 = row_exp(w, len, beta, e), inv = 1.0 / t0, wy = w[y];
    double a[2] = {0, 0}, b[2] = {0, 0};
    size_t k = 0;
    for (; k + 2 <= len; k += 2)
        for (int l = 0; l < 2; l++) {
            a[l] += e[k + l] * (w[k + l] - wy);
            b[l] += e[k + l] * w[k + l];
        }
    for (; k < len; k++)
        a[0] += e[k] * (w[k] - wy), b[0] += e[k] * w[k];
    const double m = (b[0] + b[1]) * inv;
    double c2[2] = {0, 0}, c3[2] = {0, 0}, c4[2] = {0, 0};
    for (k = 0; k + 2 <= len; k += 2)
        for (int l = 0; l < 2; l++) {
            const double d = w[k + l] - m, t = e[k + l] * d * d;
            c2[l] += t, c3[l] += t * d, c4[l] += t * d * d;
        }
    for (; k < len; k++) {
        const double d = w[k] - m, t = e[k] * d * d;
        c2[0] += t, c3[0] += t * d, c4[0] += t * d * d;
    }
    const double v2 = (c2[0] + c2[1]) * inv;
    out[0] = log(t0) - beta * wy;
    out[1] = (a[0] + a[1]) * inv;
    out[2] = v2;
    out[3] = (c3[0] + c3[1]) * inv;
    out[4] = (c4[0] + c4[1]) * inv - 3.0 * v2 * v2;
}

/* ------------------------------------------------------------------ */
/* Passes over the rows                                                */
/* ------------------------------------------------------------------ */

#define N_SUMS 6  /* NLL, f', f'', f''', f'''', weight */

/* What every pass shares: the data, per-worker scratch rows and exact
 * accumulators, merged in worker order (exact, so order is immaterial). */
typedef struct pass {
    const calib_dataset *ds;
    int threads, workers;
    size_t max_len, grain;
    double *scratch;          /* workers x 2 x max_len */
    calib__xsum *acc;         /* workers x N_SUMS */
    double beta;
    size_t sample;            /* 1: every row; m > 1: the rows i with
                                 mix(i) = 0 mod m, a fixed pseudo-random
                                 sample that no ordering of the rows
                                 (sorted by class, periodic) can bias */
} pass;

/* splitmix64's finaliser (Steele et al. 2014): a bijection of the row
 * index whose low bits look random. */
static uint64_t mix(uint64_t x)
{
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static double *scratch_of(const pass *p, int worker)
{
    return p->scratch + (size_t)worker * 2 * p->max_len;
}

static void moments_range(void *vp, size_t begin, size_t end, int worker)
{
    pass *p = vp;
    double *w = scratch_of(p, worker), *e = w + p->max_len;
    calib__xsum *acc = p->acc + (size_t)worker * N_SUMS;
    for (size_t i = begin; i < end; i++) {
        if (p->sample > 1 && mix(i) % p->sample)
            continue;
        const double wt = calib__weight(p->ds, i);
        size_t len, y;
        if (wt == 0.0)
            continue;
        const enum row_state st = load_row(p->ds, i, w, &len, &y);
        if (st == ROW_INFINITE)
            continue;
        double m[N_SUMS] = {log((double)len), 0, 0, 0, 0, 1.0};
        if (st == ROW_FIT)
            row_moments(w, len, y, p->beta, e, m);
        for (int s = 0; s < N_SUMS; s++)
            calib__xsum_add(&acc[s], wt * m[s]);
    }
}

/* Runs fn(ctx, ...) over the rows and returns the first n_sums
 * accumulators, merged over the workers, in out[]. */
static void run_pass(pass *p, calib__range_fn fn, void *ctx, double *out,
                     int n_sums)
{
    for (int i = 0; i < p->workers * N_SUMS; i++)
        calib__xsum_init(&p->acc[i]);
    const int used = calib__parallel_for(p->ds->n, p->threads, p->grain, fn, ctx);
    for (int s = 0; s < n_sums; s++) {
        for (int w = 1; w < used; w++)
            calib__xsum_merge(&p->acc[s], &p->acc[(size_t)w * N_SUMS + s]);
        out[s] = calib__xsum_round(&p->acc[s]);
    }
}

/* The structure of the data, from one pass without exp. */
typedef struct shape {
    size_t infinite, fit, constant;  /* rows by state (weight > 0)       */
    size_t label_max, strict;        /* fit rows: label has the max score
                                        (strict: alone)                  */
    size_t max_len;                  /* longest fit row                  */
    double weight;                   /* of the finite rows               */
    double slope0;                   /* sum_i wt (mean_k w_k - w_y) = the
                                        weighted f'(beta -> 0+)          */
    double slope0_abs;               /* sum_i wt |mean_k w_k - w_y|      */
} shape;

/* parallel.c never uses more than 256 workers. */
typedef struct shape_ctx {
    pass *p;
    shape part[256];
} shape_ctx;

static void shape_range(void *vc, size_t begin, size_t end, int worker)
{
    shape_ctx *c = vc;
    shape *s = &c->part[worker];
    double *w = scratch_of(c->p, worker);
    calib__xsum *acc = c->p->acc + (size_t)worker * N_SUMS;
    for (size_t i = begin; i < end; i++) {
        const double wt = calib__weight(c->p->ds, i);
        size_t len, y;
        if (wt == 0.0)
            continue;
        const enum row_state st = load_row(c->p->ds, i, w, &len, &y);
        if (st == ROW_INFINITE) {
            s->infinite++;
            continue;
        }
        calib__xsum_add(&acc[0], wt);
        if (st == ROW_CONST) {
            s->constant++;
            continue;
        }
        double mean = 0.0;
        size_t at_max = 0;
        for (size_t k = 0; k < len; k++)
            mean += w[k], at_max += w[k] == 0.0;
        s->fit++;
        s->label_max += w[y] == 0.0;
        s->strict += w[y] == 0.0 && at_max == 1;
        s->max_len = len > s->max_len ? len : s->max_len;
        const double d = mean / (double)len - w[y];
        calib__xsum_add(&acc[1], wt * d);
        calib__xsum_add(&acc[2], wt * fabs(d));
    }
}

static void scan_shape(pass *p, shape *out)
{
    shape_ctx c;
    double sums[3];
    memset(&c, 0, sizeof c);
    c.p = p;
    p->sample = 1;
    run_pass(p, shape_range, &c, sums, 3);
    memset(out, 0, sizeof *out);
    for (int w = 0; w < p->workers; w++) {
        const shape *s = &c.part[w];
        out->infinite += s->infinite, out->fit += s->fit;
        out->constant += s->constant, out->label_max += s->label_max;
        out->strict += s->strict;
        out->max_len = s->max_len > out->max_len ? s->max_len : out->max_len;
    }
    out->weight = sums[0];
    out->slope0 = sums[1];
    out->slope0_abs = sums[2];
}

/* ------------------------------------------------------------------ */
/* The NLL solver                                                      */
/* ------------------------------------------------------------------ */

/* f and its derivatives at u = log beta.  With beta = e^u, Faa di Bruno
 * (Stirling numbers of the second kind) gives
 *   f_u' = b F1,  f_u'' = b F1 + b^2 F2,  f_u''' = b F1 + 3b^2 F2 + b^3 F3,
 *   f_u'''' = b F1 + 7b^2 F2 + 6b^3 F3 + b^4 F4. */
typedef struct point {
    double f, d1, d2, d3, d4; /* in u */
    double beta, f1, f2;      /* in beta, for the fallback step */
} point;

static void eval_at(pass *p, double u, point *pt)
{
    double s[N_SUMS];
    p->beta = exp(u);
    run_pass(p, moments_range, p, s, N_SUMS);
    const double b = p->beta, w = s[5];
    const double f1 = s[1] / w, f2 = s[2] / w, f3 = s[3] / w, f4 = s[4] / w;
    pt->beta = b, pt->f1 = f1, pt->f2 = f2;
    pt->f = s[0] / w;
    pt->d1 = b * f1;
    pt->d2 = b * f1 + b * b * f2;
    pt->d3 = b * f1 + 3 * b * b * f2 + b * b * b * f3;
    pt->d4 = b * f1 + 7 * b * b * f2 + 6 * b * b * b * f3 + b * b * b * b * f4;
}

/* The step towards f_u' = 0 and a bound on the error it leaves.  Halley
 * (s = -g / (h - g h'/(2h))), whose error after the step is
 * |h'^2/(4h^2) - h''/(6h)| e^3, when its correction is moderate; else
 * Newton (error |h'/(2h)| e^2).  f is convex in beta but not in u, so
 * where f_u'' <= 0 we step by Newton in beta instead (bound: infinite). */
static int next_step(const point *pt, double *step, double *bound)
{
    const double g = pt->d1, h = pt->d2;
    if (!(h > 0.0)) {
        const double b = pt->beta - pt->f1 / pt->f2;
        if (!(pt->f2 > 0.0) || !(b > 0.0))
            return 0;
        *step = log(b / pt->beta);
        *bound = INFINITY;
        return isfinite(*step);
    }
    const double newton = -g / h, corr = 1.0 - g * pt->d3 / (2.0 * h * h);
    if (corr > 0.5 && corr < 2.0) {
        const double c = pt->d3 * pt->d3 / (4 * h * h) - pt->d4 / (6 * h);
        *step = newton / corr;
        *bound = fabs(c) * fabs(*step) * (*step) * (*step);
    } else {
        *step = newton;
        *bound = fabs(pt->d3 / (2 * h)) * (*step) * (*step);
    }
    return isfinite(*step);
}

typedef struct solve {
    double lo, hi;   /* search range of u = log beta                      */
    double tol;      /* accepted error in u (relative error of T)         */
    double u, f;     /* the result                                        */
    int iters;       /* passes                                            */
    int end;         /* +1: still decreasing at hi (T clamped at t_min);
                        -1: at lo (T clamped at t_max); 0: interior      */
} solve;

#define MAX_ITER 100

/* Solves f_u' = 0 on [s->lo, s->hi] from u0, safeguarded as rtsafe does:
 * the derivative's sign keeps a bracket; a step that leaves it, or that is
 * not half the one before last, becomes bisection.  An unexplored end of
 * the range is tried once when a step points past it: that is how the
 * boundary cases end.  CALIB_ECONVERGE when the iterations run out or a
 * value is not finite. */
static int newton(pass *p, solve *s, double u0, calib_error *err)
{
    double lo = s->lo, hi = s->hi, u = fmin(fmax(u0, lo), hi);
    int lo_seen = 0, hi_seen = 0;
    double dx = hi - lo, dx_old = dx;
    for (int it = 0; it < MAX_ITER; it++) {
        point pt;
        eval_at(p, u, &pt);
        s->iters++;
        if (!isfinite(pt.f) || !isfinite(pt.d1) || !isfinite(pt.d2))
            return calib__fail(err, CALIB_ECONVERGE, NULL, 0, 0, 0,
                               "temperature scaling: the NLL or its derivative "
                               "is not finite at T = %g", exp(-u));
        s->u = u, s->f = pt.f, s->end = 0;
        if (pt.d1 == 0.0)
            return CALIB_OK;
        if (pt.d1 < 0.0)
            lo = u, lo_seen |= u == s->lo;
        else
            hi = u, hi_seen |= u == s->hi;
        if (pt.d1 < 0.0 && u == s->hi) {
            s->end = 1;
            return CALIB_OK;
        }
        if (pt.d1 > 0.0 && u == s->lo) {
            s->end = -1;
            return CALIB_OK;
        }
        double step = 0.0, bound = INFINITY, cand;
        const int ok = next_step(&pt, &step, &bound);
        const int inside = ok && u + step > lo && u + step < hi;
        if (inside && fabs(step) <= 0.5 * fabs(dx_old)) {
            if (fabs(step) <= 1e-2 && (bound <= s->tol || fabs(step) <= s->tol)) {
                s->u = u + step;
                s->f = pt.f + step * (pt.d1 + step * (pt.d2 / 2 + step * pt.d3 / 6));
                return CALIB_OK;
            }
            cand = u + step;
        } else if (ok && step > 0.0 && hi == s->hi && !hi_seen) {
            cand = hi;
        } else if (ok && step < 0.0 && lo == s->lo && !lo_seen) {
            cand = lo;
        } else {
            cand = 0.5 * (lo + hi);
        }
        dx_old = dx, dx = cand - u;
        if (cand == u)
            return CALIB_OK;
        u = cand;
    }
    return calib__fail(err, CALIB_ECONVERGE, NULL, 0, 0, 0,
                       "temperature scaling: no convergence in %d iterations "
                       "(T near %g)", MAX_ITER, exp(-u));
}

/* Rows in the subsample that warm-starts large fits. */
#define SUB_ROWS 8192

/* Fits T on the full range: a subsample first when the data are large. */
static int solve_nll(pass *p, const calib_fit_options *opt, solve *s,
                     calib_error *err)
{
    s->lo = -log(opt->t_max), s->hi = -log(opt->t_min);
    double u0 = 0.0;
    if (p->ds->n >= 4 * SUB_ROWS) {
        solve sub = *s;
        sub.tol = 1e-4;
        p->sample = p->ds->n / SUB_ROWS;
        const int rc = newton(p, &sub, u0, err);
        if (rc)
            return rc;
        u0 = sub.u;
        s->iters += sub.iters;
    }
    p->sample = 1;
    s->tol = 1e-13;
    return newton(p, s, u0, err);
}

/* Sets T and the NLL at T (one pass). */
static void settle(pass *p, calib_calibrator *c, double t)
{
    point pt;
    p->sample = 1;
    eval_at(p, -log(t), &pt);
    c->temperature = t;
    c->objective_value = pt.f;
    c->iterations++;
}

/* ------------------------------------------------------------------ */
/* Fitting the NLL, and its boundary cases                             */
/* ------------------------------------------------------------------ */

/* The cases that need no solving, decided from the data's shape.
 * Returns 1 when it settled T (or failed: *rc), 0 to go on and solve. */
static int nll_boundary(pass *p, const shape *sh, const calib_fit_options *opt,
                        calib_calibrator *c, int *rc)
{
    const int bin = c->binary;
    if (sh->fit == 0) {
        settle(p, c, 1.0);
        *rc = calib__calibrator_note(
            c, bin ? "every validation confidence is 0.5, or 0 or 1 in "
                     "agreement with its correct flag, so NLL does not depend "
                     "on T; T set to 1"
                   : "every validation row gives all its classes the same "
                     "score, so NLL does not depend on T; T set to 1");
        return 1;
    }
    if (sh->label_max == sh->fit) {
        settle(p, c, opt->t_min);
        const char *why =
            bin ? "every validation row is on the right side of 0.5 (above "
                  "when correct, below when wrong)"
            : sh->strict == sh->fit
                ? "every validation row is predicted correctly with a "
                  "positive margin"
                : "every validation row gives its label the largest score "
                  "(some tied with another class)";
        *rc = calib__calibrator_note(
            c, "%s; NLL decreases as T -> 0; T clamped at %g", why, opt->t_min);
        return 1;
    }
    /* f'(0+) >= 0 up to the rounding of the row means (a constant
     * predictor with balanced labels sums to 0 exactly, its rounded terms
     * to about 1e-16 of their size): f is convex, so it only increases. */
    if (sh->slope0 >= -1e-12 * sh->slope0_abs) {
        settle(p, c, opt->t_max);
        const char *why =
            sh->label_max == 0
                ? "every validation row is predicted wrongly"
                : "on average the label's score is no higher than the mean "
                  "score of its row (an uninformative or constant predictor)";
        *rc = calib__calibrator_note(
            c, "%s; NLL decreases as T -> infinity; T clamped at %g", why,
            opt->t_max);
        return 1;
    }
    return 0;
}

static int note_rows(calib_calibrator *c, const shape *sh)
{
    int rc = CALIB_OK;
    const size_t finite = sh->fit + sh->constant;
    if (sh->infinite)
        rc = calib__calibrator_note(
            c, "%zu validation row%s %s (NLL infinite for every T) left out; "
               "T minimises the NLL of the other %zu row%s",
            sh->infinite, sh->infinite == 1 ? "" : "s",
            c->binary ? "with confidence 1 but wrong, or 0 but correct"
                      : "where the label has probability 0",
            finite, finite == 1 ? "" : "s");
    if (!rc && finite == 1)
        rc = calib__calibrator_note(c, "T was fitted on a single validation "
                                       "row, so it is not a reliable estimate");
    return rc;
}

static int fit_nll(pass *p, const shape *sh, const calib_fit_options *opt,
                   calib_calibrator *c, calib_error *err)
{
    c->solver = "newton-log-beta";
    if (sh->fit + sh->constant == 0) {
        c->temperature = 1.0;
        c->objective_value = INFINITY;
        return calib__calibrator_note(
            c, c->binary ? "every validation row has confidence 1 but is "
                           "wrong, or 0 but correct, so NLL is infinite for "
                           "every T; T set to 1"
                         : "every validation row gives its label probability "
                           "0, so NLL is infinite for every T; T set to 1");
    }
    int rc = note_rows(c, sh);
    if (rc || nll_boundary(p, sh, opt, c, &rc))
        return rc;
    solve s = {0};
    if ((rc = solve_nll(p, opt, &s, err)))
        return rc;
    c->temperature = s.end > 0 ? opt->t_min : s.end < 0 ? opt->t_max : exp(-s.u);
    c->objective_value = s.f;
    c->iterations += s.iters;
    if (s.end)
        rc = calib__calibrator_note(
            c, s.end > 0 ? "NLL still decreases at T = %g, the lower end of "
                           "the search range; T clamped there"
                         : "NLL still decreases at T = %g, the upper end of "
                           "the search range (the scores carry little "
                           "information about the labels); T clamped there",
            c->temperature);
    return rc;
}

/* ------------------------------------------------------------------ */
/* ECE and Brier: grid on log T, then golden section                   */
/* ------------------------------------------------------------------ */

/* ECE is piecewise smooth with jumps where a row crosses a bin edge, and
 * not convex; Brier is smooth but not convex in log T either.  Both are
 * evaluated on GRID points of v = log T over the range, then refined by
 * golden section between the neighbours of the best grid points (the best
 * REFINE_ECE local minima for ECE, whose landscape is ragged; the best one
 * for Brier).  The best value ever evaluated wins, so the result is never
 * worse than the grid's. */
#define GRID 200
#define REFINE_ECE 3
#define GOLDEN 0.6180339887498949 /* (sqrt 5 - 1) / 2 */

typedef struct grid {
    pass *p;
    const calib_fit_options *opt;
    double *conf;       /* scaled confidences, ECE only */
    uint8_t *correct;   /* from the unscaled scores: scaling keeps argmax */
    int evals;
    double best_v, best_f;
} grid;

static void correct_range(void *vg, size_t begin, size_t end, int worker)
{
    grid *g = vg;
    (void)worker;
    const calib_dataset *ds = g->p->ds;
    for (size_t i = begin; i < end; i++) {
        if (ds->kind == CALIB_TOPLABEL) {
            g->correct[i] = ds->correct[i] != 0;
            continue;
        }
        const size_t b = calib__row_begin(ds, i), len = calib__row_len(ds, i);
        size_t arg = 0;
        double top = -INFINITY;
        for (size_t k = 0; k < len; k++) {
            double s = calib__score(ds, b + k);
            if (ds->kind == CALIB_PROBS)
                s = s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
            if (s > top)
                top = s, arg = k;
        }
        g->correct[i] = arg == (size_t)ds->labels[i];
    }
}

/* Scaled confidence of every row into g->conf (ECE), or the Brier score
 * sum_k (q_k - [k = y])^2 = sum_k q_k^2 - 2 q_y + 1 (distribution rows),
 * (p' - correct)^2 (top-label), into the accumulators. */
static void scaled_range(void *vg, size_t begin, size_t end, int worker)
{
    grid *g = vg;
    const pass *p = g->p;
    double *w = scratch_of(p, worker), *e = w + p->max_len;
    calib__xsum *acc = p->acc + (size_t)worker * N_SUMS;
    const int bin = p->ds->kind == CALIB_TOPLABEL;
    for (size_t i = begin; i < end; i++) {
        size_t len, y;
        load_row(p->ds, i, w, &len, &y);
        const double t0 = row_exp(w, len, p->beta, e);
        const double conf = !bin ? 1.0 / t0
                            : len == 1 ? calib__conf(p->ds, i) : e[0] / t0;
        if (g->conf) {
            g->conf[i] = conf;
            continue;
        }
        double b;
        if (bin) {
            b = (conf - g->correct[i]) * (conf - g->correct[i]);
        } else {
            double sq = 0.0;
            for (size_t k = 0; k < len; k++)
                sq += e[k] * e[k];
            const double qy = y == SIZE_MAX ? 0.0 : e[y] / t0;
            b = sq / (t0 * t0) - 2.0 * qy + 1.0;
        }
        const double wt = calib__weight(p->ds, i);
        calib__xsum_add(&acc[0], wt * b);
        calib__xsum_add(&acc[1], wt);
    }
}

/* The objective at v = log T; remembers the best point seen. */
static int objective_at(grid *g, double v, double *val, calib_error *err)
{
    pass *p = g->p;
    p->beta = exp(-v);
    p->sample = 1;
    g->evals++;
    if (g->conf) {
        calib_metrics *m = NULL;
        run_pass(p, scaled_range, g, NULL, 0);
        const int rc = calib__evaluate_toplabel(p->ds->n, g->conf, g->correct,
                                                p->ds->weights, &g->opt->eval,
                                                &m, err);
        if (rc)
            return rc;
        *val = m->ece;
        calib_metrics_free(m);
    } else {
        double s[2];
        run_pass(p, scaled_range, g, s, 2);
        *val = s[0] / s[1];
    }
    if (*val < g->best_f)
        g->best_f = *val, g->best_v = v;
    return CALIB_OK;
}

/* Golden-section search for a minimum on [a, b] down to width tol. */
static int golden(grid *g, double a, double b, double tol, calib_error *err)
{
    double x1 = b - GOLDEN * (b - a), x2 = a + GOLDEN * (b - a), f1, f2;
    int rc = objective_at(g, x1, &f1, err);
    if (!rc)
        rc = objective_at(g, x2, &f2, err);
    while (!rc && b - a > tol) {
        if (f1 <= f2) {
            b = x2, x2 = x1, f2 = f1;
            x1 = b - GOLDEN * (b - a);
            rc = objective_at(g, x1, &f1, err);
        } else {
            a = x1, x1 = x2, f1 = f2;
            x2 = a + GOLDEN * (b - a);
            rc = objective_at(g, x2, &f2, err);
        }
    }
    return rc;
}

/* Indices of the best `want` local minima of vals[0..GRID) into idx[];
 * returns how many there are. */
static int best_minima(const double *vals, int want, int *idx)
{
    int n = 0;
    for (int j = 0; j < GRID; j++) {
        if ((j > 0 && vals[j - 1] < vals[j]) ||
            (j + 1 < GRID && vals[j + 1] < vals[j]))
            continue;
        int at = n < want ? n++ : want;
        while (at > 0 && vals[idx[at - 1]] > vals[j]) {
            if (at < want)
                idx[at] = idx[at - 1];
            at--;
        }
        if (at < want)
            idx[at] = j;
    }
    return n;
}

static int grid_search(grid *g, calib_calibrator *c, calib_error *err)
{
    const double a = log(g->opt->t_min), b = log(g->opt->t_max);
    const double step = (b - a) / (GRID - 1);
    double vals[GRID], lo = INFINITY, hi = -INFINITY;
    int rc = CALIB_OK, idx[REFINE_ECE];
    for (int j = 0; j < GRID && !rc; j++) {
        rc = objective_at(g, a + j * step, &vals[j], err);
        lo = fmin(lo, vals[j]), hi = fmax(hi, vals[j]);
    }
    if (rc)
        return rc;
    if (lo == hi) {
        g->best_f = INFINITY;
        rc = objective_at(g, 0.0, &vals[0], err);
        return rc ? rc
                  : calib__calibrator_note(
                        c, "the %s does not depend on T over the search "
                           "range; T set to 1",
                        calib_objective_name(c->objective));
    }
    const int n = best_minima(vals, c->objective == CALIB_OBJECTIVE_ECE
                                        ? REFINE_ECE : 1, idx);
    const double tol = c->objective == CALIB_OBJECTIVE_ECE ? 1e-7 : 1e-10;
    for (int m = 0; m < n && !rc; m++) {
        const int j = idx[m];
        rc = golden(g, a + (j > 0 ? j - 1 : 0) * step,
                    a + (j + 1 < GRID ? j + 1 : GRID - 1) * step, tol, err);
    }
    return rc;
}

/* Fits T by the ECE or Brier objective.  `fixed` (T does not matter:
 * one class, or no row depends on T) evaluates T = 1 only. */
static int fit_grid(pass *p, const calib_fit_options *opt, int fixed,
                    calib_calibrator *c, calib_error *err)
{
    const size_t n = p->ds->n;
    grid g = {p, opt, NULL, malloc(n), 0, 0.0, INFINITY};
    int rc = CALIB_ENOMEM;
    double v;
    c->solver = "grid+golden";
    if (opt->objective == CALIB_OBJECTIVE_ECE && !(g.conf = malloc(n * sizeof *g.conf)))
        goto cleanup;
    if (!g.correct)
        goto cleanup;
    calib__parallel_for(n, p->threads, p->grain, correct_range, &g);
    rc = fixed ? objective_at(&g, 0.0, &v, err) : grid_search(&g, c, err);
    if (rc)
        goto cleanup;
    c->temperature = exp(g.best_v);
    if (g.best_v <= log(opt->t_min) || g.best_v >= log(opt->t_max)) {
        const int at_min = g.best_v <= log(opt->t_min);
        c->temperature = at_min ? opt->t_min : opt->t_max;
        rc = calib__calibrator_note(
            c, "the %s is smallest at T = %g, the %s end of the search "
               "range; T clamped there",
            calib_objective_name(opt->objective), c->temperature,
            at_min ? "lower" : "upper");
    }
    c->objective_value = g.best_f;
    c->iterations = g.evals;
cleanup:
    free(g.conf);
    free(g.correct);
    return rc;
}

/* ------------------------------------------------------------------ */
/* calib_fit                                                           */
/* ------------------------------------------------------------------ */

static int check_options(const calib_fit_options *opt, calib_error *err)
{
    if (opt->method != CALIB_METHOD_TEMPERATURE)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown recalibration method %d", (int)opt->method);
    if (!calib_objective_name(opt->objective))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown objective %d", (int)opt->objective);
    if (!(opt->t_min >= 1.0 / T_LIMIT && opt->t_min < opt->t_max &&
          opt->t_max <= T_LIMIT))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "the search range of T [%g, %g] must satisfy "
                           "%g <= t_min < t_max <= %g",
                           opt->t_min, opt->t_max, 1.0 / T_LIMIT, T_LIMIT);
    return CALIB_OK;
}

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

/* Fits on the shape already scanned: the structural cases every objective
 * shares (one class, T does not matter), then the objective's solver. */
static int fit_shaped(pass *p, const shape *sh, const calib_fit_options *opt,
                      calib_calibrator *c, calib_error *err)
{
    const int nll = opt->objective == CALIB_OBJECTIVE_NLL;
    if (!c->binary && p->max_len <= 1) {
        int rc = nll ? (settle(p, c, 1.0), CALIB_OK)
                     : fit_grid(p, opt, 1, c, err);
        c->solver = nll ? "newton-log-beta" : "grid+golden";
        return rc ? rc
                  : calib__calibrator_note(
                        c, "a single class: softmax gives probability 1 "
                           "whatever T, so there is nothing to scale; T set "
                           "to 1");
    }
    if (nll)
        return fit_nll(p, sh, opt, c, err);
    const int fixed = sh->fit == 0;
    const int rc = fit_grid(p, opt, fixed, c, err);
    return rc || !fixed ? rc
                        : calib__calibrator_note(
                              c, "no validation row depends on T (every row "
                                 "gives all its classes the same score); T "
                                 "set to 1");
}

int calib_fit(const calib_dataset *val, const calib_fit_options *opt,
              calib_calibrator **out, calib_error *err)
{
    calib_fit_options def;
    if (out)
        *out = NULL;
    if (!val || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_fit: NULL argument");
    if (!opt)
        calib_fit_options_init(&def), opt = &def;
    int rc = check_options(opt, err);
    if (rc)
        return rc;
    if (val->n == 0)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "no rows to fit on");
    pass p = {.ds = val, .threads = opt->eval.threads, .sample = 1};
    p.workers = calib__threads(p.threads);
    p.max_len = max_row_len(val);
    p.max_len += p.max_len == 0;
    p.grain = 1 + 32768 / p.max_len;
    p.scratch = malloc((size_t)p.workers * 2 * p.max_len * sizeof(double));
    p.acc = malloc((size_t)p.workers * N_SUMS * sizeof *p.acc);
    calib_calibrator *c = calib__calibrator_new(opt->objective);
    rc = CALIB_ENOMEM;
    if (c && p.scratch && p.acc) {
        shape sh;
        c->binary = val->kind == CALIB_TOPLABEL;
        c->classes = val->k;
        c->fitted_rows = val->n;
        scan_shape(&p, &sh);
        rc = sh.fit + sh.constant + sh.infinite == 0
                 ? calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "every validation row has weight 0")
                 : fit_shaped(&p, &sh, opt, c, err);
    }
    free(p.scratch);
    free(p.acc);
    if (rc == CALIB_ENOMEM)
        calib__fail(err, rc, NULL, 0, 0, 0, "out of memory fitting T");
    if (rc) {
        calib_calibrator_free(c);
        return rc;
    }
    *out = c;
    return calib__ok(err);
}
