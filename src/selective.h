/* selective.h — selective prediction on runs of tied confidences.
 *
 * Rows with the same confidence form one run; the metrics depend on the
 * runs only (each run's total weight and correct weight), never on the
 * order of rows inside a run.  So anything that can list its distinct
 * confidences with exact per-run sums (rows, or an equal-value table from
 * a partial state) gets the same numbers.  Definitions: calib.h, at
 * calib_evaluate().
 */
#ifndef CALIB_SELECTIVE_H
#define CALIB_SELECTIVE_H

#include "internal.h"

/* Runs, most confident first: value[] strictly decreasing, count[] rows,
 * weight[] their total weight and hit[] the weight of the correct ones
 * (each rounded once from an exact sum; rows of weight 1 give integers). */
typedef struct calib__runs {
    size_t n;
    const double *value;
    const uint64_t *count;
    const double *weight;
    const double *hit;
    void *own;            /* what calib__runs_free releases */
} calib__runs;

typedef struct calib__selective {
    double auroc, aurc, cov_acc_area, acc_at_10;
} calib__selective;

/* AUROC, AURC, HELM's coverage-accuracy area and accuracy at 10 % of the
 * runs; NaN where undefined (AUROC with no correct or no wrong weight;
 * everything with zero total weight). */
void calib__selective_runs(const calib__runs *r, calib__selective *out);
/* calib__selective_runs of r, stored in m's auroc, aurc,
 * selective_cov_acc_area and selective_acc_at_10. */
void calib__selective_to_metrics(const calib__runs *r, calib_metrics *m);

/* Expected accuracy of the ceil(c W) most confident rows (ties in random
 * order), c in (0, 1]. */
double calib__runs_accuracy_at(const calib__runs *r, double c);

/* The largest coverage k/W whose expected selective risk is <= risk
 * (0 when there is none). */
double calib__runs_coverage_at_risk(const calib__runs *r, double risk);

/* The runs of n rows (conf in [0,1], correct 0/1, weights NULL = 1).
 * Returns CALIB_OK or CALIB_ENOMEM (then *out is empty). */
int calib__runs_from_rows(const double *conf, const uint8_t *correct,
                          const double *weights, size_t n, calib__runs *out);
void calib__runs_free(calib__runs *r);

/* radix.c: sorts key[0..n) ascending (stable), moving pay[] (NULL: none)
 * with it.  CALIB_OK or CALIB_ENOMEM (then nothing moved). */
int calib__radix_sort(uint64_t *key, uint64_t *pay, size_t n);

#endif /* CALIB_SELECTIVE_H */
