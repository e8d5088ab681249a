/* recal_binary.c — the top-label recalibrators: Platt (logistic) scaling,
 * beta calibration, and the wiring of histogram binning and isotonic
 * regression (recal1d.h), all fitted on a confidence p and a correct flag.
 *
 * Platt scaling (Platt 1999; "logistic calibration" in Kull et al. 2017)
 * is p' = sigmoid(a logit(p) + b) and beta calibration (Kull, Silva Filho
 * and Flach, AISTATS 2017) p' = sigmoid(a ln p - b ln(1 - p) + c); both are
 * plain maximum-likelihood logistic regressions (logreg.c), with no penalty
 * and the 0/1 correct flags as targets.  Beta follows betacal's default
 * "abm" fit: the full fit first; if a < 0 the fit is redone on -ln(1 - p)
 * alone (a = 0), else if b < 0 on ln p alone (b = 0), so the map is
 * monotone; like betacal, the refitted coefficient is not checked again.
 *
 * Without a penalty some data have no finite optimum, and these are told
 * apart before solving, from where the correct and wrong rows lie: all
 * rows one way, every p equal, or a threshold on p that separates them.
 * Each gets a defined map and a diagnostic sentence.  Beta's full fit can
 * also be separated by a non-monotone map (correct rows at both ends); its
 * Newton iterates then grow with a or b negative, and the abm rule drops
 * that feature as it would for a finite fit.
 */
#include "recal.h"

#include <stdlib.h>

static double clip_p(double p)
{
    return p < CALIB__P_EPS ? CALIB__P_EPS
           : p > 1.0 - CALIB__P_EPS ? 1.0 - CALIB__P_EPS : p;
}

static double logit(double p)
{
    p = clip_p(p);
    return log(p) - log1p(-p);
}

static double sigmoid(double t)
{
    return t >= 0.0 ? 1.0 / (1.0 + exp(-t)) : exp(t) / (1.0 + exp(t));
}

double calib__recal_conf(const calib_calibrator *c, double p)
{
    switch (c->method) {
    case CALIB_METHOD_PLATT:
        return sigmoid(c->coef[0] * logit(p) + c->coef[1]);
    case CALIB_METHOD_BETA: {
        const double q = clip_p(p);
        return sigmoid(c->coef[0] * log(q) - c->coef[1] * log1p(-q) +
                       c->coef[2]);
    }
    case CALIB_METHOD_HISTOGRAM:
        return calib__histogram_predict(&c->hist, p);
    case CALIB_METHOD_ISOTONIC:
        return calib__isotonic_predict(&c->iso, p);
    default:
        return NAN;
    }
}

/* ---- where the correct and wrong rows lie -------------------------- */

typedef struct span {
    double lo[2], hi[2];  /* range of logit(p) over wrong [0], correct [1] */
    double w[2];          /* their weights                                 */
} span;

static void find_span(const double *x, const uint8_t *y, const double *w,
                      size_t n, span *s)
{
    *s = (span){{INFINITY, INFINITY}, {-INFINITY, -INFINITY}, {0, 0}};
    calib__xsum ws[2];
    calib__xsum_init(&ws[0]);
    calib__xsum_init(&ws[1]);
    for (size_t i = 0; i < n; i++) {
        const double wi = w ? w[i] : 1.0;
        if (wi == 0.0)
            continue;
        const int c = y[i] != 0;
        s->lo[c] = fmin(s->lo[c], x[i]);
        s->hi[c] = fmax(s->hi[c], x[i]);
        calib__xsum_add(&ws[c], wi);
    }
    s->w[0] = calib__xsum_round(&ws[0]);
    s->w[1] = calib__xsum_round(&ws[1]);
}

/* Sets c->coef to the map x -> sigmoid(slope x + icpt) in the method's
 * parameters (beta: in ln p when slope > 0, else in -ln(1 - p): both
 * increase with p, so a step keeps its side). */
static void set_linear(calib_calibrator *c, double slope, double icpt)
{
    c->coef[0] = slope, c->coef[1] = icpt, c->coef[2] = 0.0;
    if (c->method == CALIB_METHOD_BETA)
        c->coef[0] = slope, c->coef[1] = 0.0, c->coef[2] = icpt;
}

/* The cases with no finite optimum, from the span of x (logit p for
 * platt, the same order for beta).  Returns 1 when it settled c (or
 * failed: *rc). */
static int no_optimum(const span *s, calib_calibrator *c, int *rc)
{
    const double big = -log(CALIB__P_EPS);  /* logit(1 - eps) = 36.04 */
    const int beta = c->method == CALIB_METHOD_BETA;
    const char *what = beta ? "beta calibration" : "Platt scaling";
    if (!(s->w[0] > 0.0) || !(s->w[1] > 0.0)) {
        const int up = s->w[1] > 0.0;
        set_linear(c, 0.0, up ? big : -big);
        *rc = calib__calibrator_note(
            c, "every fitting row is %s, so %s has no finite optimum "
               "(the map runs to the constant %d); set to the constant %s",
            up ? "correct" : "wrong", what, up, up ? "1 - 2^-52" : "2^-52");
        return 1;
    }
    const double lo = fmin(s->lo[0], s->lo[1]), hi = fmax(s->hi[0], s->hi[1]);
    if (lo == hi) {
        const double acc = s->w[1] / (s->w[0] + s->w[1]);
        set_linear(c, 0.0, log(acc) - log1p(-acc));
        *rc = calib__calibrator_note(
            c, "every fitting row has the same confidence, so the slope of "
               "%s is not identified; the map is the constant accuracy %g",
            what, acc);
        return 1;
    }
    const int up = s->hi[0] <= s->lo[1], down = s->hi[1] <= s->lo[0];
    if (!up && !down)
        return 0;
    const double mid = up ? (s->hi[0] + s->lo[1]) / 2 : (s->hi[1] + s->lo[0]) / 2;
    const double a = up ? CALIB__SLOPE_CAP : -CALIB__SLOPE_CAP;
    /* beta's step is in ln p: at ln(sigmoid(mid)) */
    const double at = beta ? -log1p(exp(-mid)) : mid;
    set_linear(c, a, -a * at);
    *rc = calib__calibrator_note(
        c, "every %s row is more confident than every %s row, so %s has no "
           "finite optimum (a step function); slope clamped at %g, the step "
           "at p = %.6g",
        up ? "correct" : "wrong", up ? "wrong" : "correct", what, a,
        sigmoid(mid));
    return 1;
}

/* ---- Platt and beta ------------------------------------------------ */

static int fit_platt(const double *x, const uint8_t *y, const double *w,
                     size_t n, calib_calibrator *c, calib_error *err)
{
    calib__logreg lr = {n, 1, x, y, w, {0, 0, 0}, 0, 0};
    const int rc = calib__logreg_fit(&lr);
    c->iterations = lr.iters;
    if (rc)
        return calib__fail(err, rc, NULL, 0, 0, 0,
                           "Platt scaling: Newton's method did not converge "
                           "in %d iterations", lr.iters);
    c->coef[0] = lr.theta[0], c->coef[1] = lr.theta[1];
    return CALIB_OK;
}

/* betacal's refit on one feature (col 0: ln p, col 1: -ln(1 - p)). */
static int beta_refit(const double *f, const uint8_t *y, const double *w,
                      size_t n, int col, calib_calibrator *c,
                      calib_error *err)
{
    double *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        return CALIB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        x[i] = f[2 * i + (size_t)col];
    calib__logreg lr = {n, 1, x, y, w, {0, 0, 0}, 0, 0};
    int rc = calib__logreg_fit(&lr);
    free(x);
    c->iterations += lr.iters;
    if (rc)
        return calib__fail(err, rc, NULL, 0, 0, 0,
                           "beta calibration: the refit on %s did not "
                           "converge", col ? "-ln(1 - p)" : "ln p");
    c->coef[col] = lr.theta[0], c->coef[1 - col] = 0.0, c->coef[2] = lr.theta[1];
    rc = calib__calibrator_note(
        c, "beta calibration: %s < 0 in the full fit, so it was refitted "
           "without %s (%s = 0), as betacal's abm does",
        col ? "a" : "b", col ? "ln p" : "-ln(1 - p)", col ? "a" : "b");
    if (!rc && lr.theta[0] < 0.0)
        rc = calib__calibrator_note(
            c, "beta calibration: the refitted %s = %g is negative too "
               "(betacal keeps it): the map decreases in p",
            col ? "b" : "a", lr.theta[0]);
    return rc;
}

static int fit_beta(const double *p, const uint8_t *y, const double *w,
                    size_t n, calib_calibrator *c, calib_error *err)
{
    double *f = malloc((n ? 2 * n : 1) * sizeof *f);
    if (!f)
        return CALIB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const double q = clip_p(p[i]);
        f[2 * i] = log(q), f[2 * i + 1] = -log1p(-q);
    }
    calib__logreg lr = {n, 2, f, y, w, {0, 0, 0}, 0, 0};
    int rc = calib__logreg_fit(&lr);
    c->iterations = lr.iters;
    if (rc == CALIB_ENOMEM || (rc && lr.theta[0] >= 0 && lr.theta[1] >= 0)) {
        free(f);
        return rc == CALIB_ENOMEM ? rc
                                  : calib__fail(err, rc, NULL, 0, 0, 0,
                                                "beta calibration: Newton's "
                                                "method did not converge");
    }
    if (lr.theta[0] < 0.0)
        rc = beta_refit(f, y, w, n, 1, c, err);
    else if (lr.theta[1] < 0.0)
        rc = beta_refit(f, y, w, n, 0, c, err);
    else
        for (int j = 0; j < 3; j++)
            c->coef[j] = lr.theta[j];
    free(f);
    return rc;
}

/* ---- the four methods ---------------------------------------------- */

/* The mean binary NLL of the fitted map on the fitting rows, q clipped
 * at 1e-15 (scikit-learn's log_loss). */
static double map_nll(const calib_calibrator *c, const double *p,
                      const uint8_t *y, const double *w, size_t n)
{
    calib__xsum s, ws;
    calib__xsum_init(&s);
    calib__xsum_init(&ws);
    for (size_t i = 0; i < n; i++) {
        const double wi = w ? w[i] : 1.0, q = calib__recal_conf(c, p[i]);
        if (wi == 0.0)
            continue;
        calib__xsum_add(&s, -wi * log(fmax(y[i] ? q : 1.0 - q, 1e-15)));
        calib__xsum_add(&ws, wi);
    }
    return calib__xsum_round(&s) / calib__xsum_round(&ws);
}

static int fit_logistic(const double *p, const uint8_t *y, const double *w,
                        size_t n, calib_calibrator *c, calib_error *err)
{
    double *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        return CALIB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        x[i] = logit(p[i]);
    span s;
    find_span(x, y, w, n, &s);
    int rc = CALIB_OK;
    c->solver = "newton";
    if (!no_optimum(&s, c, &rc))
        rc = c->method == CALIB_METHOD_PLATT ? fit_platt(x, y, w, n, c, err)
                                             : fit_beta(p, y, w, n, c, err);
    free(x);
    return rc;
}

int calib__fit_toplabel(const calib_dataset *val, const calib_fit_options *opt,
                        calib_calibrator *c, calib_error *err)
{
    double *p = NULL;
    uint8_t *y = NULL;
    int rc = calib__toplabel_arrays(val, opt->eval.threads, &p, &y);
    const double *w = val->weights;
    const size_t n = val->n;
    if (!rc && c->method == CALIB_METHOD_HISTOGRAM) {
        c->solver = "bin means";
        rc = calib__histogram_fit(p, y, w, n, opt->hist_bins,
                                  opt->hist_binning, &c->hist, err);
    } else if (!rc && c->method == CALIB_METHOD_ISOTONIC) {
        c->solver = "pool adjacent violators";
        rc = calib__isotonic_fit(p, y, w, n, &c->iso, err);
    } else if (!rc) {
        rc = fit_logistic(p, y, w, n, c, err);
    }
    if (!rc)
        c->objective_value = map_nll(c, p, y, w, n);
    free(p);
    free(y);
    return rc;
}
