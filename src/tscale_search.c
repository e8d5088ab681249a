/* tscale_search.c — temperature scaling by the ECE or Brier objective:
 * a grid on log T, then golden-section refinement.
 *
 * ECE is piecewise smooth with jumps where a row crosses a bin edge, and
 * not convex; Brier is smooth but not convex in log T either.  Both are
 * evaluated on GRID points of v = log T over the range, then refined by
 * golden section between the neighbours of the best grid points (the best
 * REFINE_ECE local minima for ECE, whose landscape is ragged; the best one
 * for Brier).  The best value ever evaluated wins, so the result is never
 * worse than the grid's.  Each evaluation is one pass over the rows with
 * the kernels of tscale_kernel.c.
 */
#include "temperature.h"

#include <stdlib.h>

#define GRID 200
#define REFINE_ECE 3
#define GOLDEN 0.6180339887498949 /* (sqrt 5 - 1) / 2 */

typedef struct grid {
    calib__tpass *p;
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
        g->correct[i] = calib__row_argmax(ds, i) == (size_t)ds->labels[i];
    }
}

/* Scaled confidence of every row into g->conf (ECE), or the Brier score
 * sum_k (q_k - [k = y])^2 = sum_k q_k^2 - 2 q_y + 1 (distribution rows),
 * (p' - correct)^2 (top-label), into the accumulators. */
static void scaled_range(void *vg, size_t begin, size_t end, int worker)
{
    grid *g = vg;
    const calib__tpass *p = g->p;
    double *w = calib__tpass_scratch(p, worker), *e = w + p->max_len;
    calib__xsum *acc = p->acc + (size_t)worker * CALIB__TS_SUMS;
    const int bin = p->ds->kind == CALIB_TOPLABEL;
    for (size_t i = begin; i < end; i++) {
        size_t len, y;
        calib__ts_load_row(p->ds, i, w, &len, &y);
        const double t0 = calib__ts_row_exp(w, len, p->beta, e);
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
    calib__tpass *p = g->p;
    p->beta = exp(-v);
    g->evals++;
    if (g->conf) {
        calib_metrics *m = NULL;
        calib__tpass_run(p, scaled_range, g, NULL, 0);
        const int rc = calib__evaluate_toplabel(p->ds->n, g->conf, g->correct,
                                                p->ds->weights, &g->opt->eval,
                                                &m, err);
        if (rc)
            return rc;
        *val = m->ece;
        calib_metrics_free(m);
    } else {
        double s[2];
        calib__tpass_run(p, scaled_range, g, s, 2);
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

int calib__fit_grid(calib__tpass *p, const calib_fit_options *opt, int fixed,
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
