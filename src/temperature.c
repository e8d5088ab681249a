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
 * The passes that only need to get close run in float32 (eight lanes, a
 * cheap exp; tscale_kernel32.c): large inputs first solve on a fixed
 * pseudo-random subsample, whose optimum is within sampling error of the
 * full one.  From there one double pass over all rows that also sums the
 * cumulants to the eighth order usually ends the fit: the root of the
 * Taylor polynomial of f_u' at that point (series_step), with an estimate
 * of the terms left out.  Otherwise (small inputs, or a subsample that
 * landed too far) float32 passes on all rows get down to about F32_TOL in
 * u; one double pass there gives the exact value and cumulants, and its
 * Halley step, whose cubic error bound is then far below 1e-13, ends the
 * fit (more double passes follow only if that bound says so).  The
 * float32 passes only choose where the double ones look: T comes from a
 * double pass, summed in the same fixed blocks, so it is the same bits for
 * any thread count.
 *
 * Top-label rows use the binary form p' = sigmoid(logit(p) / T), which is
 * the softmax of the two logits (logit p, 0) with class 0 = "correct"; the
 * same code fits both.
 *
 * Cases without a finite optimum are recognised from the data's structure
 * (the label has the largest score in every row: f decreases as T -> 0;
 * the mean score is at least the label's: f increases with beta from 0, so
 * T -> infinity; no row depends on T), reported as diagnostics with T at
 * the end of the range or 1.  The structure is scanned by the first
 * float32 pass over all rows, which reads each row anyway, and checked
 * before the solver goes on: the subsample's passes before it are only a
 * warm start, whatever the data.
 *
 * The per-row kernels are in tscale_kernel.c and tscale_kernel32.c, the
 * passes over the rows in tscale_pass.c; the ECE and Brier objectives,
 * evaluated on a grid of log T and refined by golden section, in
 * tscale_search.c.
 */
#include "recal.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* The NLL solver                                                      */
/* ------------------------------------------------------------------ */

/* f and its derivatives at u = log beta.  With beta = e^u, Faa di Bruno
 * (Stirling numbers of the second kind) gives
 *   f_u' = b F1,  f_u'' = b F1 + b^2 F2,  f_u''' = b F1 + 3b^2 F2 + b^3 F3,
 *   f_u'''' = b F1 + 7b^2 F2 + 6b^3 F3 + b^4 F4. */
typedef struct point {
    double f, d1, d2, d3, d4; /* in u */
    double d[9];              /* d[n] = f_u^(n), n <= 8: a high pass only,
                                 else all 0 */
    double beta, f1, f2;      /* in beta, for the fallback step */
} point;

/* S(n, k), the Stirling numbers of the second kind, n <= 8 */
static const double stirling2[9][9] = {
    {1},
    {0, 1},
    {0, 1, 1},
    {0, 1, 3, 1},
    {0, 1, 7, 6, 1},
    {0, 1, 15, 25, 10, 1},
    {0, 1, 31, 90, 65, 15, 1},
    {0, 1, 63, 301, 350, 140, 21, 1},
    {0, 1, 127, 966, 1701, 1050, 266, 28, 1}};

static void eval_at(calib__tpass *p, double u, point *pt)
{
    double s[CALIB__TS_SUMS];
    p->beta = exp(u);
    calib__tpass_moments(p, s);
    const double b = p->beta, w = s[CALIB__TS_WEIGHT];
    const double f1 = s[1] / w, f2 = s[2] / w, f3 = s[3] / w, f4 = s[4] / w;
    pt->beta = b, pt->f1 = f1, pt->f2 = f2;
    pt->f = s[0] / w;
    pt->d1 = b * f1;
    pt->d2 = b * f1 + b * b * f2;
    pt->d3 = b * f1 + 3 * b * b * f2 + b * b * b * f3;
    pt->d4 = b * f1 + 7 * b * b * f2 + 6 * b * b * b * f3 + b * b * b * b * f4;
    for (int n = 0; n < 9; n++)
        pt->d[n] = 0.0;
    for (int n = 1; p->high && !p->f32 && n < 9; n++) {
        double bk = 1.0;
        for (int k = 1; k <= n; k++) {
            bk *= b;
            pt->d[n] += stirling2[n][k] * bk * (s[k] / w);
        }
    }
}

/* The series step: from a high pass's f_u' .. f_u^(8) at u, the root s of
 * the Taylor polynomial of f_u' there,
 *   g(s) = sum_{n=1..8} f_u^(n) s^(n-1) / (n-1)!,
 * by Newton's method from -f_u'/f_u''.  Its terms t_n (the n-th summand at
 * the root) fall geometrically when u is close; the first one left out is
 * then about t_8 rho with rho = sqrt(t_8 / t_6) (over two terms: the odd
 * cumulants of nearly symmetric rows are small, so neighbours can differ
 * by more than the trend), and moves the root by about
 * t_8 rho / (1 - rho) / g'(s).  Taken when that is at most tol, rho is at
 * most 1/16, and |s| <= 2^-5; then *step = s, *df = the change of f,
 * sum_n f_u^(n) s^n / n!.  Returns 0 when not taken.
 *
 * The inputs' rounding moves the root by less than tol: f_u' and f_u''
 * are as exact as in any double pass, and the cumulants past them come
 * from central sums (tscale_kernel.c: relative error about len eps, no
 * cancellation) and enter multiplied by s^(n-1) / (n-1)!, at most 5e-4
 * for n = 3 and 1e-6 for n = 4.  Measured: on the bench's logits, the
 * ImageNet top-1 confidences of ../shared/data and the tests' data, the
 * step is at most 0.026, rho at most 0.011 and the estimate at most
 * 1e-15. */
#define SERIES_MAX_STEP 0x1p-5
#define SERIES_MAX_RHO 0.0625
static int series_step(const point *pt, double tol, double *step, double *df)
{
    const double *d = pt->d;
    if (!(d[2] > 0.0)) /* not a high pass (d[] all 0), or not convex */
        return 0;
    double s = -d[1] / d[2], gp = d[2];
    for (int it = 0; it < 50; it++) {
        double g = 0.0, c = 1.0; /* c = s^(n-1) / (n-1)! */
        gp = 0.0;
        for (int n = 1; n < 9; n++) {
            g += d[n] * c;
            if (n < 8)
                gp += d[n + 1] * c;
            c *= s / n;
        }
        const double ds = g / gp;
        if (!(gp > 0.0) || !isfinite(ds))
            return 0;
        s -= ds;
        if (!(fabs(s) <= SERIES_MAX_STEP))
            return 0;
        if (fabs(ds) <= 1e-17)
            break;
    }
    double t[9], c = 1.0, change = 0.0, cn = s; /* cn = s^n / n! */
    for (int n = 1; n < 9; n++) {
        t[n] = fabs(d[n] * c);
        c *= s / n;
        change += d[n] * cn;
        cn *= s / (n + 1);
    }
    if (t[8] > 0.0 && !(t[6] > 0.0))
        return 0;
    const double rho = t[8] > 0.0 ? sqrt(t[8] / t[6]) : 0.0;
    if (!(rho <= SERIES_MAX_RHO) || !(t[8] * rho / (1.0 - rho) / gp <= tol))
        return 0;
    *step = s;
    *df = change;
    return 1;
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
 * not half the one before last, becomes bisection.  `first` (or NULL) is
 * the point at u0, already evaluated.  An unexplored end of
 * the range is tried once when a step points past it: that is how the
 * boundary cases end.  CALIB_ECONVERGE when the iterations run out or a
 * value is not finite. */
static int newton(calib__tpass *p, solve *s, double u0, const point *first,
                  calib_error *err)
{
    double lo = s->lo, hi = s->hi, u = fmin(fmax(u0, lo), hi);
    int lo_seen = 0, hi_seen = 0;
    double dx = hi - lo, dx_old = dx;
    for (int it = 0; it < MAX_ITER; it++) {
        point pt;
        if (it == 0 && first) {
            pt = *first;
        } else {
            eval_at(p, u, &pt);
            s->iters++;
        }
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

/* Rows in the subsample that warm-starts large fits, and how closely its
 * float32 passes solve it: its optimum is only within sampling error of
 * the full one (1e-3 .. 3e-2 in u on the data series_step names), which
 * is all the series step needs. */
#define SUB_ROWS 4096
#define SUB_TOL 1e-3
/* Where the float32 passes hand over: within about this of the optimum in
 * u, one double pass's Halley step is within 1e-13 (its error is cubic). */
#define F32_TOL 1e-5

/* Solves in float32 from *u (first: the point there, or NULL), which it
 * moves closer to the optimum: a warm start only, so a failure (say, a
 * value that is not finite) keeps the *u it had.  Returns CALIB_OK, or
 * CALIB_ENOMEM. */
static int warm(calib__tpass *p, solve *s, double tol, int sample, double *u,
                const point *first)
{
    solve w = *s;
    int rc = CALIB_OK;
    w.tol = tol, w.iters = 0;
    if (sample)
        rc = calib__tpass_sample(p, SUB_ROWS);
    p->use_sample = sample, p->f32 = 1;
    if (!rc && newton(p, &w, *u, first, NULL) == CALIB_OK)
        *u = w.u;
    p->use_sample = 0, p->f32 = 0;
    s->iters += w.iters;
    return rc;
}

/* The first pass over all rows, at *u (moved first by float32 passes on
 * a subsample when the data are large): float32 moments into *pt, and the
 * data's shape into *sh, which saves a pass of its own.  After the
 * subsample, *u is within sampling error of the optimum (6e-3 in u on
 * 10^5 x 100 logits), close enough for the series step: the pass is then
 * a high one in double instead, and may be the only one.  s gets the
 * search range.  CALIB_OK or CALIB_ENOMEM. */
static int first_pass(calib__tpass *p, const calib_fit_options *opt,
                      solve *s, calib__tshape *sh, double *u, point *pt)
{
    s->lo = -log(opt->t_max), s->hi = -log(opt->t_min);
    const int large = p->ds->n >= 4 * SUB_ROWS;
    *u = 0.0;
    if (large) {
        const int rc = warm(p, s, SUB_TOL, 1, u, NULL);
        if (rc)
            return rc;
    }
    *u = fmin(fmax(*u, s->lo), s->hi);
    p->f32 = !large, p->high = large, p->shape = sh;
    eval_at(p, *u, pt);
    p->f32 = 0, p->high = 0;
    s->iters++;
    return CALIB_OK;
}

/* Fits T from the first pass at u0: float32 passes on all rows get close,
 * then double passes finish. */
static int solve_nll(calib__tpass *p, solve *s, double u0, const point *first,
                     calib_error *err)
{
    const int rc = warm(p, s, F32_TOL, 0, &u0, first);
    if (rc)
        return rc;
    s->tol = 1e-13;
    return newton(p, s, u0, NULL, err);
}

/* Sets T and the NLL at T (one pass). */
static void settle(calib__tpass *p, calib_calibrator *c, double t)
{
    point pt;
    p->use_sample = 0;
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
static int nll_boundary(calib__tpass *p, const calib__tshape *sh, const calib_fit_options *opt,
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

static int note_rows(calib_calibrator *c, const calib__tshape *sh)
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

static int fit_nll(calib__tpass *p, const calib_fit_options *opt,
                   calib_calibrator *c, calib_error *err)
{
    c->solver = "newton-log-beta";
    solve s = {0};
    calib__tshape shape, *sh = &shape;
    point first;
    double u0;
    int rc = first_pass(p, opt, &s, sh, &u0, &first);
    if (rc)
        return rc;
    c->iterations += s.iters;
    s.iters = 0;
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
    rc = note_rows(c, sh);
    if (rc || nll_boundary(p, sh, opt, c, &rc))
        return rc;
    double step, df;
    if (series_step(&first, 1e-13, &step, &df) && u0 + step > s.lo &&
        u0 + step < s.hi) {
        s.u = u0 + step, s.f = first.f + df, s.end = 0;
    } else if ((rc = solve_nll(p, &s, u0, &first, err))) {
        return rc;
    }
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
/* calib_fit                                                           */
/* ------------------------------------------------------------------ */

static int any_weight(const calib_dataset *ds)
{
    for (size_t i = 0; i < ds->n; i++)
        if (calib__weight(ds, i) != 0.0)
            return 1;
    return 0;
}

static int check_options(const calib_fit_options *opt, calib_error *err)
{
    if (!calib_method_name(opt->method))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown recalibration method %d", (int)opt->method);
    if (!calib_objective_name(opt->objective))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown objective %d", (int)opt->objective);
    if (!(opt->t_min >= 1.0 / CALIB__TS_T_LIMIT && opt->t_min < opt->t_max &&
          opt->t_max <= CALIB__TS_T_LIMIT))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "the search range of T [%g, %g] must satisfy "
                           "%g <= t_min < t_max <= %g",
                           opt->t_min, opt->t_max, 1.0 / CALIB__TS_T_LIMIT, CALIB__TS_T_LIMIT);
    return CALIB_OK;
}

/* Fits: the structural cases every objective shares (one class, T does
 * not matter, from the data's shape: a pass of its own for ECE and Brier,
 * part of the first pass for NLL), then the objective's solver. */
static int fit_shaped(calib__tpass *p, const calib_fit_options *opt,
                      calib_calibrator *c, calib_error *err)
{
    const int nll = opt->objective == CALIB_OBJECTIVE_NLL;
    if (!c->binary && p->longest <= 1) {
        int rc = nll ? (settle(p, c, 1.0), CALIB_OK)
                     : calib__fit_grid(p, opt, 1, c, err);
        c->solver = nll ? "newton-log-beta" : "grid+golden";
        return rc ? rc
                  : calib__calibrator_note(
                        c, "a single class: softmax gives probability 1 "
                           "whatever T, so there is nothing to scale; T set "
                           "to 1");
    }
    if (nll)
        return fit_nll(p, opt, c, err);
    calib__tshape sh;
    calib__tpass_shape(p, &sh);
    const int fixed = sh.fit == 0;
    const int rc = calib__fit_grid(p, opt, fixed, c, err);
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
    if (opt->method != CALIB_METHOD_TEMPERATURE)
        return calib__fit_recal(val, opt, out, err);
    calib__tpass p;
    rc = calib__tpass_init(&p, val, opt->eval.threads);
    calib_calibrator *c = calib__calibrator_new(opt->objective);
    if (!rc && !c)
        rc = CALIB_ENOMEM;
    if (!rc) {
        c->binary = val->kind == CALIB_TOPLABEL;
        c->classes = val->k;
        c->fitted_rows = val->n;
        rc = !any_weight(val) ? calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                                            "every validation row has weight 0")
                              : fit_shaped(&p, opt, c, err);
    }
    calib__tpass_free(&p);
    if (rc == CALIB_ENOMEM)
        calib__fail(err, rc, NULL, 0, 0, 0, "out of memory fitting T");
    if (rc) {
        calib_calibrator_free(c);
        return rc;
    }
    *out = c;
    return calib__ok(err);
}
