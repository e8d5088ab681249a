/* tscale_curve.c — the NLL of a temperature-scaled set over a list of T:
 * the curve a report draws next to the fitted T.
 *
 * One pass over the rows evaluates every T for each row while the row is
 * in cache; each worker keeps one exact accumulator per T (xsum.c) and one
 * for the weight, merged in worker order, so the curve is bit-identical for
 * any thread count.  Distribution rows go through calib__row_eval with
 * beta = 1/T, the kernel calib_evaluate uses, so the point at T = 1 is the
 * NLL calib_evaluate reports (probability rows: clipped at 1e-15 there, as
 * calib_apply's output is).  Top-label rows use the binary form of
 * calib_fit: logits (logit p, 0), class 0 = correct, so
 *   NLL = softplus(-beta l) if correct, softplus(beta l) if not,
 * with l = logit p; p in {0, 1} gives 0 or +inf whatever T, as the solver
 * treats it.  The curve is the weighted mean, sum w_i NLL_i / sum w_i.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Rows a thread takes at least: each row costs n_t exp()s, so this is
 * plenty to pay for starting a thread. */
#define CURVE_GRAIN 2048

typedef struct curve_pass {
    const calib_dataset *ds;
    const double *beta;       /* 1/t[i] */
    size_t n_t;
    calib__xsum *acc;         /* workers x (n_t + 1): NLL sums, weight */
} curve_pass;

/* log(1 + e^x) without overflow; +inf stays +inf, -inf gives 0. */
static double softplus(double x)
{
    return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* -log q_correct of top-label row i at beta (the binary form). */
static double top_nll(const calib_dataset *ds, size_t i, double beta)
{
    const double p = calib__conf(ds, i);
    const int c = ds->correct[i] != 0;
    if (p == 0.0 || p == 1.0)
        return (p == 1.0) == c ? 0.0 : INFINITY;
    const double l = log(p) - log1p(-p);
    return softplus(c ? -beta * l : beta * l);
}

static void curve_range(void *ctx, size_t begin, size_t end, int worker)
{
    const curve_pass *cp = ctx;
    const calib_dataset *ds = cp->ds;
    calib__xsum *acc = cp->acc + (size_t)worker * (cp->n_t + 1);
    for (size_t i = begin; i < end; i++) {
        const double w = calib__weight(ds, i);
        /* weight 0 drops the row, even one whose NLL is infinite */
        if (w == 0.0)
            continue;
        for (size_t j = 0; j < cp->n_t; j++) {
            double nll;
            if (ds->kind == CALIB_TOPLABEL)
                nll = top_nll(ds, i, cp->beta[j]);
            else
                calib__row_eval(ds, i, cp->beta[j], NULL, NULL, &nll, NULL,
                                NULL);
            calib__xsum_add(&acc[j], w * nll);
        }
        calib__xsum_add(&acc[cp->n_t], w);
    }
}

static int check_args(const calib_dataset *val, const double *t, size_t n,
                      const double *nll, calib_error *err)
{
    if (!val || (n && (!t || !nll)))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_temperature_curve: NULL argument");
    if (val->n == 0)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "no rows to evaluate the NLL curve on");
    for (size_t i = 0; i < n; i++)
        if (!(t[i] > 0.0 && isfinite(t[i])))
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "temperature %zu is %g: T must be finite and "
                               "> 0", i + 1, t[i]);
    return CALIB_OK;
}

/* Merges the workers' sums and writes the means into nll[]. */
static int curve_finish(const curve_pass *cp, int workers, double *nll,
                        calib_error *err)
{
    const size_t stride = cp->n_t + 1;
    for (int w = 1; w < workers; w++)
        for (size_t j = 0; j < stride; j++)
            calib__xsum_merge(&cp->acc[j], &cp->acc[(size_t)w * stride + j]);
    const double total = calib__xsum_round(&cp->acc[cp->n_t]);
    if (!(total > 0.0))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "every row has weight 0");
    for (size_t j = 0; j < cp->n_t; j++)
        nll[j] = calib__xsum_round(&cp->acc[j]) / total;
    return CALIB_OK;
}

int calib_temperature_curve(const calib_dataset *val, const double *t,
                            size_t n, double *nll, int threads,
                            calib_error *err)
{
    int rc = check_args(val, t, n, nll, err);
    if (rc || n == 0)
        return rc ? rc : calib__ok(err);
    const int most = calib__threads(threads);
    curve_pass cp = {.ds = val, .n_t = n};
    double *beta = malloc(n * sizeof *beta);
    cp.acc = malloc((size_t)most * (n + 1) * sizeof *cp.acc);
    if (!beta || !cp.acc) {
        free(beta);
        free(cp.acc);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                           "out of memory for the NLL curve");
    }
    for (size_t j = 0; j < n; j++)
        beta[j] = 1.0 / t[j];
    for (size_t j = 0; j < (size_t)most * (n + 1); j++)
        calib__xsum_init(&cp.acc[j]);
    cp.beta = beta;
    const int used =
        calib__parallel_for(val->n, most, CURVE_GRAIN, curve_range, &cp);
    rc = curve_finish(&cp, used, nll, err);
    free(beta);
    free(cp.acc);
    return rc ? rc : calib__ok(err);
}
