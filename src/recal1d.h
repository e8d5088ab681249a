/* recal1d.h — the two nonparametric recalibration maps of a confidence:
 * isotonic regression and histogram binning (internal to the library).
 *
 * Both are fitted on n top-label rows (p_i, y_i, w_i): p the confidence in
 * [0,1], y in {0,1} (the row was correct), w >= 0 a weight (w == NULL means
 * every weight is 1).  Both map a confidence p to a calibrated confidence
 * in [0,1].  The calibrator framework (calibrator.c) owns the method names,
 * the rest of the calibrator JSON and the CLI; these modules only fit,
 * predict, and write and read their own JSON members.
 *
 * Ownership: *_fit fills a caller-provided struct whose arrays are
 * malloc'd and belong to it; *_free releases them and zeroes the struct
 * (NULL, and a zeroed struct, are harmless).  On any error the struct is
 * left zeroed and nothing leaks.
 */
#ifndef CALIB_RECAL1D_H
#define CALIB_RECAL1D_H

#include "internal.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Isotonic regression (recal_isotonic.c)                              */
/* ------------------------------------------------------------------ */

/* scikit-learn 1.2's IsotonicRegression(increasing=True,
 * out_of_bounds='clip') fitted with sample_weight, reproduced:
 *  1. rows with w == 0 are dropped (scikit-learn drops w <= 0 the same
 *     way); no row left is an error;
 *  2. rows are sorted by p (then y); a run of p values that lie within
 *     1e-15 of the run's first value is pooled into one point at that
 *     first value, with the weighted mean of y and the summed weight
 *     (scikit-learn's _make_unique, whose tolerance is
 *     np.finfo(float64).resolution = 1e-15);
 *  3. pool adjacent violators (Ayer et al. 1955; Barlow et al. 1972) on
 *     those points, pooling equal neighbours too, gives blocks whose
 *     weighted means increase strictly;
 *  4. the fitted points (x[], y[]) are the first and last pooled point of
 *     each block (scikit-learn's X_thresholds_ / y_thresholds_: a point
 *     equal to both neighbours does not change the interpolation).
 * Prediction is np.interp(clip(p, x[0], x[n-1]), x, y): linear between
 * fitted points, constant outside them; NaN gives NaN.  x is strictly
 * increasing, y non-decreasing in [0,1], so the map is monotone.
 * Fit: O(N log N) (one sort); predict: O(log n).  Sums are plain double
 * sums in sorted order, as scikit-learn's. */
typedef struct calib__isotonic {
    size_t n;       /* fitted points, >= 1 */
    double *x, *y;  /* n each */
} calib__isotonic;

/* Fits *out.  Returns CALIB_OK; CALIB_EINVAL (NULL p/y/out, n == 0, a p
 * that is not finite, a weight that is negative or not finite, y not 0/1,
 * no row with positive weight; err says which row, 1-based); CALIB_ENOMEM.
 * err may be NULL. */
int calib__isotonic_fit(const double *p, const uint8_t *y, const double *w,
                        size_t n, calib__isotonic *out, calib_error *err);
double calib__isotonic_predict(const calib__isotonic *m, double p);
void calib__isotonic_free(calib__isotonic *m);

/* Appends `"x_thresholds":[...],"y_thresholds":[...]` (numbers %.17g, so
 * the round trip is bit-exact) to b: members of a JSON object the caller
 * has opened; the caller writes the separating commas around them. */
void calib__isotonic_to_json(const calib__isotonic *m, calib__buf *b);
/* Reads those members of `obj` into *out, checking them all: both present
 * arrays of the same length >= 1, finite numbers, x strictly increasing,
 * y in [0,1] and non-decreasing.  Returns CALIB_OK, CALIB_EDATA with a
 * message "calibrator JSON: ..." naming the member (and the index), or
 * CALIB_ENOMEM. */
int calib__isotonic_from_json(const json_t *obj, calib__isotonic *out,
                              calib_error *err);

/* ------------------------------------------------------------------ */
/* Histogram binning (recal_histogram.c)                               */
/* ------------------------------------------------------------------ */

/* Histogram binning (Zadrozny and Elkan 2001; Guo et al. 2017; netcal's
 * HistogramBinning): bins over [0,1], each predicting the weighted
 * accuracy of the fitting rows that fall in it.
 *  - Bins: n_bins + 1 edges, edges[0] = 0, edges[n_bins] = 1; bin b holds
 *    edges[b] < p <= edges[b+1], and p = 0 is in bin 0 (calib's rule; p
 *    below 0 goes to bin 0, above 1 to the last bin).
 *  - CALIB_BINNING_WIDTH: edges[k] = (double)k / bins.
 *  - CALIB_BINNING_MASS: Kumar et al.'s equal-mass edges
 *    (calib__mass_edges) on the rows with positive weight, counted
 *    unweighted; there can be fewer than `bins` bins.  When the lowest
 *    group is all zeros, edges[1] = 0 and bin 0 holds exactly p = 0; every
 *    other edge is strictly above the previous one.
 *  - value[b] = sum_{i in b} w_i y_i / sum_{i in b} w_i (exact sums); a
 *    bin with no weight predicts its midpoint (edges[b] + edges[b+1]) / 2,
 *    as netcal does.
 * netcal differs in ways calib does not imitate: it clips p into
 * [1e-15, 1 - 1e-15], builds edges with linspace, and fits with
 * [e_b, e_{b+1}) bins but predicts with (e_b, e_{b+1}]. */
typedef struct calib__histogram {
    size_t n_bins;
    double *edges;  /* n_bins + 1 */
    double *value;  /* n_bins, in [0,1] */
} calib__histogram;

/* Fits *out with `bins` (>= 1) bins.  Returns CALIB_OK; CALIB_EINVAL (NULL
 * p/y/out, n == 0, bins < 1, an unknown binning, a p that is not finite or
 * outside [0,1], a weight that is negative or not finite, y not 0/1, no
 * row with positive weight); CALIB_ENOMEM.  err may be NULL. */
int calib__histogram_fit(const double *p, const uint8_t *y, const double *w,
                         size_t n, int bins, calib_binning binning,
                         calib__histogram *out, calib_error *err);
/* value[] of p's bin; NaN gives NaN. */
double calib__histogram_predict(const calib__histogram *m, double p);
void calib__histogram_free(calib__histogram *m);

/* Appends `"edges":[...],"values":[...]` (%.17g) to b, as
 * calib__isotonic_to_json does. */
void calib__histogram_to_json(const calib__histogram *m, calib__buf *b);
/* Reads and checks them: arrays, finite numbers, len(edges) =
 * len(values) + 1 >= 2, edges[0] = 0, edges[last] = 1, edges[1] >= 0 and
 * each later edge strictly above the previous one, values in [0,1].
 * Returns CALIB_OK, CALIB_EDATA naming the member, or CALIB_ENOMEM. */
int calib__histogram_from_json(const json_t *obj, calib__histogram *out,
                               calib_error *err);

/* ------------------------------------------------------------------ */
/* Helpers the two share (recal_isotonic.c)                            */
/* ------------------------------------------------------------------ */

/* The first bad row of a fit's input, 1-based (0: all good), with *why
 * naming its field: "confidence" (not finite, or with `unit` outside
 * [0,1]), "weight" (negative or not finite), "correct flag" (not 0/1). */
size_t calib__recal1d_bad_row(const double *p, const uint8_t *y,
                              const double *w, size_t n, int unit,
                              const char **why);

/* Appends `"key":[v0,v1,...]` (%.17g; null for a non-finite value). */
void calib__buf_json_array(calib__buf *b, const char *key, const double *v,
                           size_t n);
/* Reads obj[key], a non-empty list of finite numbers, into a malloc'd *v
 * of *n values.  Returns CALIB_OK, CALIB_EDATA ("calibrator JSON: \"key\"
 * is missing or not a list", "... is empty", "\"key\"[i] is not a finite
 * number") or CALIB_ENOMEM; *v is NULL on error. */
int calib__json_doubles(const json_t *obj, const char *key, double **v,
                        size_t *n, calib_error *err);
/* Checks v[from..n) of member `key`: each in [lo, hi], and each after
 * v[from] (order 1) at least or (order 2) strictly above the one before
 * it; order 0: any order.  Returns CALIB_OK or CALIB_EDATA naming key,
 * index and value. */
int calib__json_check(const char *key, const double *v, size_t n,
                      size_t from, int order, double lo, double hi,
                      calib_error *err);

#endif /* CALIB_RECAL1D_H */
