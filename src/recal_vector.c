/* recal_vector.c — vector scaling (Guo et al. 2017, "On Calibration of
 * Modern Neural Networks", section 4.2): q = softmax(a o z + b), a per-class
 * scale a_k and bias b_k on the logits, fitted by minimising the NLL.
 *
 * The mean NLL  f(a, b) = sum_i w_i [lse(a o z_i + b) - a_y z_iy - b_y] / W
 * has the gradient  df/da_k = sum_i w_i (q_ik - [k = y_i]) z_ik / W  and
 * df/db_k = sum_i w_i (q_ik - [k = y_i]) / W, computed exactly in one pass
 * over the rows and handed to L-BFGS (lbfgs.c) from a = 1, b = 0, the
 * identity map.  Each pass splits the rows into fixed blocks of 16, sums a
 * block in row order, and adds its sums to exact accumulators
 * (xsum.c), so f and its gradient are the same bits for any thread count,
 * and so is every iterate.  Probability rows are read as logits
 * log(max(p, 1e-15)), which keeps a_k log p finite for any sign of a_k.
 */
#include "recal.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK 16
#define GTOL 1e-9
#define MAX_ITER 2000

typedef struct vpass {
    const calib_dataset *ds;
    size_t k, ns;             /* classes; sums: 1 + 2K + 1               */
    const double *x;          /* a then b                                 */
    double *scratch;          /* per worker: K row + ns block sums        */
    calib__xsum *acc;         /* per worker: ns                           */
    int threads;
} vpass;

/* Row i's scores as logits into z[0..k). */
static void load(const calib_dataset *ds, size_t i, double *z)
{
    const size_t b = calib__row_begin(ds, i);
    for (size_t j = 0; j < ds->k; j++) {
        double s = calib__score(ds, b + j);
        if (ds->kind == CALIB_PROBS)
            s = log(fmax(fmin(s, 1.0), 1e-15));
        z[j] = s;
    }
}

/* Adds row i's NLL and gradient terms into s[ns]; z, e: K scratch. */
static void row_terms(const vpass *v, size_t i, double *z, double *e,
                      double *s)
{
    const double w = calib__weight(v->ds, i);
    if (w == 0.0)
        return;
    const size_t k = v->k, y = (size_t)v->ds->labels[i];
    const double *a = v->x, *b = v->x + k;
    load(v->ds, i, z);
    double top = -INFINITY, sum = 0.0;
    for (size_t j = 0; j < k; j++) {
        e[j] = a[j] * z[j] + b[j];
        top = fmax(top, e[j]);
    }
    for (size_t j = 0; j < k; j++)
        sum += (e[j] = exp(e[j] - top));
    s[0] += w * (top + log(sum) - (a[y] * z[y] + b[y]));
    for (size_t j = 0; j < k; j++) {
        const double r = w * (e[j] / sum - (j == y));
        s[1 + j] += r * z[j];
        s[1 + k + j] += r;
    }
    s[v->ns - 1] += w;
}

static void range(void *ctx, size_t b0, size_t b1, int worker)
{
    vpass *v = ctx;
    const size_t k = v->k, ns = v->ns, n = v->ds->n;
    double *z = v->scratch + (size_t)worker * (2 * k + ns), *e = z + k,
           *s = e + k;
    calib__xsum *acc = v->acc + (size_t)worker * ns;
    for (size_t b = b0; b < b1; b++) {
        memset(s, 0, ns * sizeof *s);
        const size_t end = (b + 1) * BLOCK < n ? (b + 1) * BLOCK : n;
        for (size_t i = b * BLOCK; i < end; i++)
            row_terms(v, i, z, e, s);
        for (size_t j = 0; j < ns; j++)
            calib__xsum_add(&acc[j], s[j]);
    }
}

/* f and g at x: one pass over the rows. */
static int objective(void *ctx, const double *x, double *f, double *g)
{
    vpass *v = ctx;
    const size_t ns = v->ns, blocks = (v->ds->n + BLOCK - 1) / BLOCK;
    const int workers = calib__threads(v->threads);
    v->x = x;
    for (size_t j = 0; j < (size_t)workers * ns; j++)
        calib__xsum_init(&v->acc[j]);
    const int used = calib__parallel_for(blocks, v->threads,
                                         1 + 4096 / (BLOCK * v->k), range, v);
    for (int w = 1; w < used; w++)
        for (size_t j = 0; j < ns; j++)
            calib__xsum_merge(&v->acc[j], &v->acc[(size_t)w * ns + j]);
    const double wsum = calib__xsum_round(&v->acc[ns - 1]);
    *f = calib__xsum_round(&v->acc[0]) / wsum;
    for (size_t j = 0; j + 2 < ns; j++)
        g[j] = calib__xsum_round(&v->acc[1 + j]) / wsum;
    return !isfinite(*f);
}

/* Diagnostics for the fits with no finite optimum that L-BFGS stops in by
 * its gradient test: classes no row has as its label (weight > 0). */
static int note_missing(const calib_dataset *ds, calib_calibrator *c)
{
    const size_t k = ds->k;
    unsigned char *seen = calloc(k, 1);
    if (!seen)
        return CALIB_ENOMEM;
    for (size_t i = 0; i < ds->n; i++)
        if (calib__weight(ds, i) != 0.0)
            seen[ds->labels[i]] = 1;
    size_t missing = 0, first = 0;
    for (size_t j = k; j-- > 0;)
        if (!seen[j])
            missing++, first = j;
    free(seen);
    if (!missing)
        return CALIB_OK;
    return calib__calibrator_note(
        c, "%zu class%s (the first: %zu) never %s a fitting row's label: "
           "the NLL keeps falling as %s bias goes to -infinity, so there is "
           "no finite optimum; the fit stopped where the gradient is below "
           "%g", missing, missing == 1 ? "" : "es", first,
        missing == 1 ? "is" : "are", missing == 1 ? "its" : "their", GTOL);
}

static int check_rows(const calib_dataset *val, calib_error *err)
{
    if (val->kind == CALIB_TOPLABEL || val->offsets || val->k < 1)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "vector scaling needs distribution rows with a "
                           "fixed number of classes (K logits or "
                           "probabilities), not %s rows",
                           val->kind == CALIB_TOPLABEL ? "top-label"
                                                       : "ragged");
    return CALIB_OK;
}

int calib__fit_vector(const calib_dataset *val, const calib_fit_options *opt,
                      calib_calibrator *c, calib_error *err)
{
    int rc = check_rows(val, err);
    if (rc)
        return rc;
    const size_t k = val->k, ns = 2 * k + 2;
    const int workers = calib__threads(opt->eval.threads);
    vpass v = {val, k, ns, NULL, NULL, NULL, opt->eval.threads};
    v.scratch = malloc((size_t)workers * (2 * k + ns) * sizeof *v.scratch);
    v.acc = malloc((size_t)workers * ns * sizeof *v.acc);
    c->vec = malloc(2 * k * sizeof *c->vec);
    if (!v.scratch || !v.acc || !c->vec) {
        rc = CALIB_ENOMEM;
        goto cleanup;
    }
    for (size_t j = 0; j < k; j++)
        c->vec[j] = 1.0, c->vec[k + j] = 0.0;
    calib__lbfgs_result res;
    c->solver = "l-bfgs";
    rc = calib__lbfgs(objective, &v, c->vec, 2 * k, GTOL, MAX_ITER, &res);
    c->iterations = res.iters;
    c->objective_value = res.f;
    if (!rc && !isfinite(res.f))
        rc = calib__fail(err, CALIB_ECONVERGE, NULL, 0, 0, 0,
                         "vector scaling: the NLL is not finite at the "
                         "identity map");
    else if (!rc && !res.converged)
        rc = calib__fail(err, CALIB_ECONVERGE, NULL, 0, 0, 0,
                         "vector scaling: L-BFGS did not converge in %d "
                         "iterations", MAX_ITER);
    if (!rc)
        rc = note_missing(val, c);
cleanup:
    free(v.scratch);
    free(v.acc);
    return rc;
}

size_t calib__vector_row(const calib_calibrator *c, const calib_dataset *in,
                         size_t i, double *out)
{
    const size_t k = in->k;
    load(in, i, out);
    for (size_t j = 0; j < k; j++) {
        const double s = c->vec[j] * out[j] + c->vec[k + j];
        if (isinf(s) && isfinite(out[j]))
            return j + 1;
        out[j] = s;
    }
    if (in->kind != CALIB_PROBS)
        return 0;
    double top = -INFINITY, sum = 0.0;
    for (size_t j = 0; j < k; j++)
        top = fmax(top, out[j]);
    for (size_t j = 0; j < k; j++)
        sum += (out[j] = exp(out[j] - top));
    for (size_t j = 0; j < k; j++)
        out[j] /= sum;
    return 0;
}
