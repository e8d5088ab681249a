/* boot.h — what bootstrap.c, boot_view.c and paired.c share.
 *
 * A bootstrap replicate is the dataset of the rows one draw picked (row i
 * repeated c_i times, sum c_i = N).  It is evaluated in three ways, each
 * chosen per metric once, by which one reproduces the metric of the whole
 * set bit for bit when every c_i is 1 (the probe, boot_prepare):
 *   VIEW  calib_evaluate of a top-label dataset of the drawn rows'
 *         (confidence, correct, weight, group): every binned, selective
 *         and smooth metric, whatever computes them;
 *   ROWS  NLL and Brier of distribution rows: the per-row losses computed
 *         once, summed exactly over the drawn rows;
 *   FULL  calib_evaluate of the drawn rows themselves (their K scores):
 *         what needs whole distribution rows (classwise ECE), only when
 *         such a metric is finite.
 * Names here are file-local to the bootstrap code.
 */
#ifndef CALIB_BOOT_H
#define CALIB_BOOT_H

#include "internal.h"

enum { SRC_NONE = 0, SRC_VIEW, SRC_ROWS, SRC_FULL };

/* A population's name and its index (0: the whole set, g + 1: group g of
 * the whole set's metrics), sorted by name for lookups. */
typedef struct boot_name {
    const char *name;
    size_t pop;
} boot_name;

/* One dataset, ready for replicates. */
typedef struct boot {
    const calib_dataset *ds;
    const calib_metrics *full;  /* its metrics, groups included          */
    calib_eval_options o;       /* replicates: no bootstrap, one thread  */
    size_t n, n_pops;           /* rows; 1 + groups of `full`            */
    int use_groups;
    double *conf;               /* distribution rows: the top-label view */
    uint8_t *correct;
    double *nll, *brier;        /* w_i * loss_i, as calib_evaluate adds   */
    size_t *pop_of_group;       /* dataset group index -> population     */
    boot_name *names;           /* n_pops - 1 group names, sorted         */
    size_t max_len;             /* longest distribution row              */
    int src[CALIB_M_COUNT];
    unsigned full_extra;        /* extra bits the FULL metrics need       */
} boot;

/* One worker's buffers for the drawn rows (boot_view.c). */
typedef struct boot_scratch {
    size_t n;
    size_t *idx;                /* the drawn rows, in row order (n + 4)  */
    void *conf;                 /* dtype of the view                     */
    uint8_t *correct;
    double *weights;
    uint32_t *groups;
    void *scores;               /* FULL: the drawn distribution rows      */
    size_t *offsets;
    int32_t *labels;
    calib__xsum *nll, *brier;   /* ROWS: per population                   */
    double *weight;             /* each population's replicate weight    */
} boot_scratch;

/* boot_view.c */
int calib__boot_scratch_new(const boot *b, boot_scratch *s);
void calib__boot_scratch_free(boot_scratch *s);
/* The values of every metric of the replicate with counts c[0..n) into
 * vals[pop * CALIB_M_COUNT + id] (NaN where the replicate has no value:
 * a metric not bootstrapped, a group no drawn row belongs to). */
int calib__boot_eval(const boot *b, boot_scratch *s, const uint32_t *c,
                     double *vals);

/* bootstrap.c */
/* Prepares b for ds and its metrics `full` (borrowed, kept alive by the
 * caller); opt has been checked.  Groups count only with use_groups. */
int calib__boot_prepare(boot *b, const calib_dataset *ds,
                        const calib_metrics *full,
                        const calib_eval_options *opt, int use_groups);
void calib__boot_free(boot *b);
/* Runs replicates 0 .. resamples-1 of the nb (1 or 2) prepared datasets
 * of equal N, each replicate drawing one index multiset for all of them,
 * on `threads` threads; vals[k] receives dataset k's values of replicate
 * r at vals[k] + r * n_pops * CALIB_M_COUNT (calib__boot_eval's layout). */
int calib__boot_run(const boot *const *bs, size_t nb, int resamples,
                    uint64_t seed, int threads, double *const *vals);
/* The population of metrics `m`'s group named `name` in b, or SIZE_MAX. */
size_t calib__boot_pop(const boot *b, const char *name);
/* The `level` percentile interval of x[0..n) (NaN values dropped; x is
 * reordered) into ci[2]; NaN, NaN when no value is left.  Returns the
 * number of values used. */
size_t calib__percentile_ci(double *x, size_t n, double level, double ci[2]);

#endif /* CALIB_BOOT_H */
