/* lbfgs.c — limited-memory BFGS (Nocedal 1980; Liu and Nocedal 1989), the
 * minimiser under vector scaling.
 *
 * The two-loop recursion (Nocedal and Wright 2006, Algorithm 7.4) turns the
 * last m = 10 steps s and gradient changes y into a search direction, with
 * the initial Hessian scaled by s.y / y.y; the line search backtracks from
 * the unit step until the Armijo condition holds (c1 = 1e-4).  A pair with
 * s.y <= 0 (possible with a backtracking search) is not stored, which keeps
 * the implicit Hessian positive definite.  Everything here is sequential
 * and deterministic: given a deterministic objective the iterates are the
 * same bits on every run.
 */
#include "recal.h"

#include <stdlib.h>
#include <string.h>

#define MEM 10

typedef struct hist {
    double *s, *y;        /* MEM vectors each */
    double rho[MEM];
    int len, head;        /* stored pairs; next slot */
} hist;

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double max_abs(const double *g, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(g[i]));
    return m;
}

/* d = -H g by the two-loop recursion. */
static void direction(const hist *h, const double *g, double *d, size_t n)
{
    double alpha[MEM];
    for (size_t i = 0; i < n; i++)
        d[i] = -g[i];
    for (int k = 0; k < h->len; k++) {
        const int j = (h->head - 1 - k + MEM) % MEM;
        alpha[j] = h->rho[j] * dot(h->s + (size_t)j * n, d, n);
        for (size_t i = 0; i < n; i++)
            d[i] -= alpha[j] * h->y[(size_t)j * n + i];
    }
    if (h->len) {
        const int j = (h->head - 1 + MEM) % MEM;
        const double *yj = h->y + (size_t)j * n;
        const double gamma = 1.0 / (h->rho[j] * dot(yj, yj, n));
        for (size_t i = 0; i < n; i++)
            d[i] *= gamma;
    }
    for (int k = h->len - 1; k >= 0; k--) {
        const int j = (h->head - 1 - k + MEM) % MEM;
        const double beta = h->rho[j] * dot(h->y + (size_t)j * n, d, n);
        for (size_t i = 0; i < n; i++)
            d[i] += (alpha[j] - beta) * h->s[(size_t)j * n + i];
    }
}

static void remember(hist *h, const double *x0, const double *x1,
                     const double *g0, const double *g1, size_t n)
{
    double *s = h->s + (size_t)h->head * n, *y = h->y + (size_t)h->head * n;
    for (size_t i = 0; i < n; i++)
        s[i] = x1[i] - x0[i], y[i] = g1[i] - g0[i];
    const double sy = dot(s, y, n);
    if (!(sy > 0.0) || !isfinite(sy))
        return;
    h->rho[h->head] = 1.0 / sy;
    h->head = (h->head + 1) % MEM;
    h->len += h->len < MEM;
}

/* Backtracks from the unit step along d; returns 1 when a step with
 * sufficient decrease was found (x1, f1, g1 set). */
static int line_search(calib__objective_fn fn, void *ctx, const double *x,
                       double f, const double *g, const double *d,
                       double *x1, double *f1, double *g1, size_t n,
                       int *evals)
{
    const double slope = dot(g, d, n);
    if (!(slope < 0.0))
        return 0;
    double t = 1.0;
    for (int k = 0; k < 60; k++, t /= 2) {
        for (size_t i = 0; i < n; i++)
            x1[i] = x[i] + t * d[i];
        ++*evals;
        if (!fn(ctx, x1, f1, g1) && isfinite(*f1) &&
            *f1 <= f + 1e-4 * t * slope)
            return 1;
    }
    return 0;
}

int calib__lbfgs(calib__objective_fn fn, void *ctx, double *x, size_t n,
                 double gtol, int max_iter, calib__lbfgs_result *res)
{
    hist h = {0};
    double *buf = malloc((2 * MEM + 4) * n * sizeof *buf);
    if (!buf)
        return CALIB_ENOMEM;
    h.s = buf, h.y = buf + MEM * n;
    double *g = h.y + MEM * n, *d = g + n, *x1 = d + n, *g1 = x1 + n;
    double f = NAN, f1 = NAN;
    memset(res, 0, sizeof *res);
    res->evals = 1;
    if (fn(ctx, x, &f, g) || !isfinite(f)) {
        free(buf);
        res->f = f;
        return CALIB_OK;
    }
    int flat = 0;
    while (res->iters < max_iter) {
        if (max_abs(g, n) <= gtol) {
            res->converged = 1;
            break;
        }
        direction(&h, g, d, n);
        if (!line_search(fn, ctx, x, f, g, d, x1, &f1, g1, n, &res->evals)) {
            /* no decrease along the direction: restart from the gradient
             * once, then stop */
            if (!h.len) {
                res->converged = 2;
                break;
            }
            h.len = 0;
            continue;
        }
        res->iters++;
        remember(&h, x, x1, g, g1, n);
        flat = f - f1 <= 1e-15 * fabs(f) ? flat + 1 : 0;
        memcpy(x, x1, n * sizeof *x);
        memcpy(g, g1, n * sizeof *g);
        f = f1;
        if (flat >= 2) {
            res->converged = 2;
            break;
        }
    }
    res->f = f;
    free(buf);
    return CALIB_OK;
}
