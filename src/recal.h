/* recal.h — what the recalibrators beyond temperature scaling share:
 * Platt and beta calibration (recal_binary.c, on the logistic solver of
 * logreg.c), vector scaling (recal_vector.c, on lbfgs.c), the histogram
 * and isotonic maps (recal1d.h), fitting and applying them (recal.c), their JSON
 * members (recal_json.c) and cross-fitting (crossfit.c).  Private to the
 * library.
 */
#ifndef CALIB_RECAL_H
#define CALIB_RECAL_H

#include "temperature.h"

#include <string.h>

/* The index of `name` among names[0..n), or -1 (also for NULL): how
 * methods and objectives are parsed. */
static inline int calib__name_index(const char *const *names, int n,
                                    const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

/* p is clipped into [CALIB__P_EPS, 1 - CALIB__P_EPS] before logit, ln p
 * and ln(1 - p) (DBL_EPSILON, as betacal), so |logit p| <= 36.04. */
#define CALIB__P_EPS 0x1p-52
/* The slope a separable fit is clamped at (a step function). */
#define CALIB__SLOPE_CAP 1e4

/* ---- the logistic solver (logreg.c) -------------------------------- */

/* Maximum-likelihood logistic regression of y on d <= 2 features plus an
 * intercept: P(y = 1) = sigmoid(theta_0 x_0 + .. + theta_{d-1} x_{d-1} +
 * theta_d).  x is row-major n x d.  Newton's method with exact gradient
 * and Hessian (Cholesky), a backtracking (Armijo) line search, from
 * theta = 0 (or the caller's start); converged when the Newton decrement
 * lambda^2/2 <= 1e-20 and every step is below 1e-9 (1 + |theta_j|).  Sums
 * over rows are exact (fixed blocks, superaccumulator). */
typedef struct calib__logreg {
    size_t n;
    int d;
    const double *x;
    const uint8_t *y;
    const double *w;          /* NULL: all 1 */
    double theta[3];
    double loss;              /* mean NLL at theta */
    int iters;
} calib__logreg;

/* Returns CALIB_OK when converged, CALIB_ECONVERGE when 100 Newton
 * iterations did not (theta then holds the last iterate: on separable
 * data it grows without bound), CALIB_ENOMEM. */
int calib__logreg_fit(calib__logreg *lr);

/* ---- L-BFGS (lbfgs.c) ---------------------------------------------- */

/* f(x) and its gradient g (length n) at x; returns 0, or non-zero when the
 * value is not finite there (the line search then steps back). */
typedef int (*calib__objective_fn)(void *ctx, const double *x, double *f,
                                   double *g);

typedef struct calib__lbfgs_result {
    double f;
    int iters, evals;
    int converged;            /* 1: gradient test; 2: no more decrease    */
} calib__lbfgs_result;

/* Minimises fn from x[0..n) (overwritten by the minimiser): memory m = 10,
 * backtracking Armijo line search (c1 = 1e-4) from the unit step, which
 * the two-loop recursion scales.  Stops when max |g_j| <= gtol, or when a
 * step decreases f by less than 1e-15 |f| twice in a row, or after
 * max_iter iterations (converged = 0).  CALIB_OK, or CALIB_ENOMEM. */
int calib__lbfgs(calib__objective_fn fn, void *ctx, double *x, size_t n,
                 double gtol, int max_iter, calib__lbfgs_result *res);

/* ---- fitting and applying ------------------------------------------ */

/* The top-label view of every row of ds: conf[i] = the largest
 * probability, correct[i] = first argmax == label (threads over rows).
 * Malloc'd arrays, NULL on ENOMEM (CALIB_ENOMEM). */
int calib__toplabel_arrays(const calib_dataset *ds, int threads,
                           double **conf, uint8_t **correct);

/* Fit c (method, binary, rows set) on the top-label view of val: platt,
 * beta, histogram, isotonic. */
int calib__fit_toplabel(const calib_dataset *val, const calib_fit_options *opt,
                        calib_calibrator *c, calib_error *err);
/* Fit vector scaling. */
int calib__fit_vector(const calib_dataset *val, const calib_fit_options *opt,
                      calib_calibrator *c, calib_error *err);

/* The calibrated confidence of p under a top-label method's map. */
double calib__recal_conf(const calib_calibrator *c, double p);

/* Row i of a vector-scaled dataset in into out[0..k): logits, or for
 * probability rows probabilities.  Returns 0, or the 1-based column of a
 * value that overflows. */
size_t calib__vector_row(const calib_calibrator *c, const calib_dataset *in,
                         size_t i, double *out);

/* calib_fit for every method but temperature (val has rows; opt valid
 * but for what this checks). */
int calib__fit_recal(const calib_dataset *val, const calib_fit_options *opt,
                     calib_calibrator **out, calib_error *err);

/* calib_apply for every method but temperature. */
int calib__apply_recal(const calib_calibrator *c, const calib_dataset *in,
                       calib_dataset **out, calib_error *err);

/* Labels, weights, groups and group names of `in` copied into `out`
 * (calibrator.c); with `dist`, also the labels and ragged offsets. */
int calib__copy_common(const calib_dataset *in, calib_dataset *out, int dist);
/* The group names of `in` copied into `out` (which then owns them). */
int calib__copy_group_names(const calib_dataset *in, calib_dataset *out);

/* ---- JSON (recal_json.c) ------------------------------------------- */

/* Appends `,"<method>":{...}` (and "fitted_on") for a method other than
 * temperature. */
void calib__recal_to_json(const calib_calibrator *c, calib__buf *b);
/* Reads those members into c (c->method set). */
int calib__recal_from_json(const json_t *o, calib_calibrator *c,
                           calib_error *err);

#endif /* CALIB_RECAL_H */
