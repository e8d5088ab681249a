/* logreg.c — maximum-likelihood logistic regression on one or two
 * features and an intercept: the solver under Platt scaling and beta
 * calibration (recal_binary.c).
 *
 * The mean NLL  f(theta) = sum_i w_i [softplus(eta_i) - y_i eta_i] / sum w,
 * eta_i = theta . (x_i, 1), is convex with gradient sum w (p - y)(x, 1) and
 * Hessian sum w p (1 - p)(x, 1)(x, 1)^T, so Newton's method with a
 * backtracking line search (Armijo; Nocedal and Wright 2006, 3.1) reaches
 * the optimum quadratically when one exists.  Without penalty there is no
 * finite optimum on separable data; there the steps stay of order one
 * while the decrement vanishes, so convergence asks for both a small
 * decrement and small steps, and separable data ends as CALIB_ECONVERGE
 * for the caller to explain.  Sums over rows go through the exact
 * accumulator in blocks of 16 rows, so the result does not depend on how
 * the sums are grouped.
 */
#include "recal.h"

#include <string.h>

#define MAX_ITER 100
#define BLOCK 16
/* loss, gradient (3), packed Hessian (6), weight */
#define NS 11

static double softplus(double t)
{
    return t > 0.0 ? t + log1p(exp(-t)) : log1p(exp(t));
}

/* Adds row i's terms at theta into s[NS]. */
static void row_terms(const calib__logreg *lr, size_t i, const double *th,
                      double *s)
{
    const int d = lr->d;
    double v[3];
    for (int j = 0; j < d; j++)
        v[j] = lr->x[i * (size_t)d + (size_t)j];
    v[d] = 1.0;
    double eta = th[d];
    for (int j = 0; j < d; j++)
        eta += th[j] * v[j];
    const double w = lr->w ? lr->w[i] : 1.0;
    if (w == 0.0)
        return;
    const int y = lr->y[i] != 0;
    const double e = exp(-fabs(eta));
    const double p = eta >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
    const double pq = e / ((1.0 + e) * (1.0 + e));
    s[0] += w * (y ? softplus(-eta) : softplus(eta));
    for (int j = 0, h = 4; j <= d; j++) {
        s[1 + j] += w * (p - y) * v[j];
        for (int l = 0; l <= j; l++)
            s[h++] += w * pq * v[j] * v[l];
    }
    s[NS - 1] += w;
}

/* The mean loss, gradient and Hessian at theta into out[NS]. */
static void pass(const calib__logreg *lr, const double *th, double *out)
{
    calib__xsum acc[NS];
    for (int j = 0; j < NS; j++)
        calib__xsum_init(&acc[j]);
    for (size_t b = 0; b < lr->n; b += BLOCK) {
        double s[NS] = {0};
        const size_t end = b + BLOCK < lr->n ? b + BLOCK : lr->n;
        for (size_t i = b; i < end; i++)
            row_terms(lr, i, th, s);
        for (int j = 0; j < NS; j++)
            calib__xsum_add(&acc[j], s[j]);
    }
    const double wsum = calib__xsum_round(&acc[NS - 1]);
    for (int j = 0; j < NS - 1; j++)
        out[j] = calib__xsum_round(&acc[j]) / wsum;
    out[NS - 1] = wsum;
}

/* Solves H s = -g for the (d+1) x (d+1) packed Hessian by Cholesky; a
 * Hessian that is not positive definite gets a small ridge.  Returns 0 on
 * success. */
static int newton_step(const double *s, int m, double *step)
{
    for (double ridge = 0.0; ridge < 1.0; ridge = ridge ? ridge * 100 : 1e-12) {
        double l[3][3] = {{0}};
        int ok = 1;
        for (int j = 0; j < m && ok; j++)
            for (int k = 0; k <= j && ok; k++) {
                double v = s[4 + j * (j + 1) / 2 + k];
                if (j == k)
                    v += ridge * (1.0 + fabs(v));
                for (int t = 0; t < k; t++)
                    v -= l[j][t] * l[k][t];
                if (j == k)
                    ok = v > 0.0 && isfinite(v), l[j][j] = ok ? sqrt(v) : 0;
                else
                    l[j][k] = v / l[k][k];
            }
        if (!ok)
            continue;
        double z[3];
        for (int j = 0; j < m; j++) {
            z[j] = -s[1 + j];
            for (int t = 0; t < j; t++)
                z[j] -= l[j][t] * z[t];
            z[j] /= l[j][j];
        }
        for (int j = m - 1; j >= 0; j--) {
            step[j] = z[j];
            for (int t = j + 1; t < m; t++)
                step[j] -= l[t][j] * step[t];
            step[j] /= l[j][j];
        }
        return 0;
    }
    return -1;
}

static int small_steps(const double *th, const double *step, int m)
{
    for (int j = 0; j < m; j++)
        if (!(fabs(step[j]) <= 1e-9 * (1.0 + fabs(th[j]))))
            return 0;
    return 1;
}

int calib__logreg_fit(calib__logreg *lr)
{
    const int m = lr->d + 1;
    double cur[NS], trial[NS], step[3], th[3];
    pass(lr, lr->theta, cur);
    for (lr->iters = 0; lr->iters < MAX_ITER; lr->iters++) {
        if (newton_step(cur, m, step))
            break;
        double slope = 0.0;
        for (int j = 0; j < m; j++)
            slope += cur[1 + j] * step[j];
        if (-slope / 2 <= 1e-20 && small_steps(lr->theta, step, m)) {
            for (int j = 0; j < m; j++)
                lr->theta[j] += step[j];
            lr->loss = cur[0];
            return CALIB_OK;
        }
        double t = 1.0;
        for (int k = 0; k < 60; k++, t /= 2) {
            for (int j = 0; j < m; j++)
                th[j] = lr->theta[j] + t * step[j];
            pass(lr, th, trial);
            if (isfinite(trial[0]) && trial[0] <= cur[0] + 1e-4 * t * slope)
                break;
        }
        if (!(isfinite(trial[0]) && trial[0] <= cur[0])) {
            /* No decrease left to find: at the optimum to rounding. */
            lr->loss = cur[0];
            int tiny = -slope / 2 <= 1e-14;
            for (int j = 0; j < m; j++)
                tiny &= fabs(step[j]) <= 1e-6 * (1.0 + fabs(lr->theta[j]));
            return tiny ? CALIB_OK : CALIB_ECONVERGE;
        }
        memcpy(lr->theta, th, sizeof th);
        memcpy(cur, trial, sizeof cur);
    }
    lr->loss = cur[0];
    return CALIB_ECONVERGE;
}
