/* extra.h — what the metrics beyond the bins share: the top-label view of
 * a population's rows (extra.c), smooth ECE (smooth.c) and classwise ECE
 * (classwise.c).  Nothing here is seen outside the library.
 */
#ifndef CALIB_EXTRA_H
#define CALIB_EXTRA_H

#include "internal.h"

/* A population as top-label rows: conf in [0,1] (+0.0, never -0.0),
 * correct 0/1, weights (NULL: all 1).  `rows` (NULL: row i is i) names
 * each one's row in the dataset, for the classwise pass. */
typedef struct calib__top {
    size_t n;
    const double *conf;
    const uint8_t *correct;
    const double *weights;
    const size_t *rows;
} calib__top;

/* extra.c: conf and correct of every row of ds, malloc'd; computed in
 * parallel.  CALIB_OK or CALIB_ENOMEM. */
int calib__project_top(const calib_dataset *ds, int threads, double **conf,
                       uint8_t **correct);

/* extra.c: the smooth, selective and classwise metrics that opt->extra
 * asks for, of ds and of each group of m (in m's order), into m.
 * CALIB_OK, CALIB_ENOMEM or CALIB_EINTERNAL (groups do not match). */
int calib__evaluate_extra(const calib_dataset *ds, const calib_eval_options *o,
                          calib_metrics *m);

/* smooth.c: smooth ECE at its fixed-point bandwidth (calib.h).  Both NaN
 * when the total weight is 0.  CALIB_OK or CALIB_ENOMEM. */
int calib__smooth_ece(const calib__top *t, int threads, double *smece,
                      double *bandwidth);

/* smooth.c: the smoothed reliability curve at x[i] = i / (n - 1), at
 * `bandwidth` (<= 0: the fixed point); see calib_smooth_curve. */
int calib__smooth_curve_top(const calib__top *t, double bandwidth, size_t n,
                            double *x, double *y, double *density,
                            int threads);

/* classwise.c: classwise ECE of the rows t->rows (all rows when NULL, in
 * order) of ds, which has K fixed classes, under `opt`'s bins and rule
 * (equal-width always).  CALIB_OK or CALIB_ENOMEM. */
int calib__classwise_ece(const calib_dataset *ds, const calib__top *t,
                         const calib_eval_options *opt, double *out);

#endif /* CALIB_EXTRA_H */
