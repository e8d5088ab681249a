/* internal.h — what the library's files share and nobody else sees.
 *
 * The dataset layout, the exact accumulator every sum over rows goes
 * through, the thread helper, error reporting, and the per-row kernels that
 * metrics.c and temperature.c both need.  Names are calib__*.
 */
#ifndef CALIB_INTERNAL_H
#define CALIB_INTERNAL_H

#include "calib.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* The dataset                                                         */
/* ------------------------------------------------------------------ */

#define CALIB__MAX_OWNED 8

/* A prediction set.  Array pointers may point into caller memory (wrap),
 * into a file mapping, or into blocks the dataset owns (own[]).
 * Distribution rows: scores (dtype) of row i are
 *   offsets ? scores[offsets[i] .. offsets[i+1]) : scores[i*k .. i*k+k).
 * Values are stored as given; kernels clamp confidences and probabilities
 * into [0,1] when they read them (the input checks already rejected
 * anything further than 1e-3 outside). */
struct calib_dataset {
    calib_kind kind;
    calib_dtype dtype;
    size_t n;
    size_t k;                 /* classes; 0 when ragged or top-label */
    const size_t *offsets;    /* NULL unless ragged */
    const void *scores;       /* LOGITS/PROBS */
    const int32_t *labels;    /* LOGITS/PROBS */
    const void *conf;         /* TOPLABEL, dtype */
    const uint8_t *correct;   /* TOPLABEL, 0/1 */
    const double *weights;    /* NULL = all 1 */
    const uint32_t *groups;   /* NULL = no groups */
    size_t n_groups;
    char **group_names;       /* owned iff owns_group_names */
    int owns_group_names;
    calib_read_stats stats;
    void *own[CALIB__MAX_OWNED]; /* freed with free() */
    size_t n_own;
    void *map_addr[2];        /* munmap'd */
    size_t map_len[2];
};

/* Allocates a zeroed dataset; NULL when out of memory. */
calib_dataset *calib__dataset_alloc(void);
/* Hands `block` (malloc'd) to `ds`, to be freed with it.  Returns 0, or
 * CALIB_ENOMEM when ds already owns CALIB__MAX_OWNED blocks (block is then
 * freed). */
int calib__dataset_own(calib_dataset *ds, void *block);

/* Scores of distribution row i, and its length. */
static inline size_t calib__row_begin(const calib_dataset *ds, size_t i)
{
    return ds->offsets ? ds->offsets[i] : i * ds->k;
}
static inline size_t calib__row_len(const calib_dataset *ds, size_t i)
{
    return ds->offsets ? ds->offsets[i + 1] - ds->offsets[i] : ds->k;
}
static inline double calib__score(const calib_dataset *ds, size_t j)
{
    return ds->dtype == CALIB_F32 ? (double)((const float *)ds->scores)[j]
                                  : ((const double *)ds->scores)[j];
}
/* The prediction of distribution row i: the first index of its largest
 * score (probabilities clamped into [0,1] as every kernel reads them). */
static inline size_t calib__row_argmax(const calib_dataset *ds, size_t i)
{
    const size_t b = calib__row_begin(ds, i), len = calib__row_len(ds, i);
    size_t arg = 0;
    double top = -INFINITY;
    for (size_t k = 0; k < len; k++) {
        double s = calib__score(ds, b + k);
        if (ds->kind == CALIB_PROBS)
            s = s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
        if (s > top) {
            top = s;
            arg = k;
        }
    }
    return arg;
}
static inline double calib__conf(const calib_dataset *ds, size_t i)
{
    double p = ds->dtype == CALIB_F32 ? (double)((const float *)ds->conf)[i]
                                      : ((const double *)ds->conf)[i];
    return p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
}
static inline double calib__weight(const calib_dataset *ds, size_t i)
{
    return ds->weights ? ds->weights[i] : 1.0;
}

/* Whether the host stores integers little-endian (.npy byte order). */
static inline int calib__host_little(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1; /* bytes may alias anything */
}

/* The input checks of calib.h, for one row given as doubles (readers call
 * it as they parse; calib_dataset_wrap calls it for every row).
 * kind: the row's kind; v: K scores (distribution) or &conf (top-label, k
 * = 1); label: the row's label (distribution) or its correct flag.
 * Returns 0 when the row is good, after clamping v[] in place where it is
 * within 1e-3 outside [0,1] (counting into stats->values_clamped) and
 * counting a small sum deviation into stats->rows_sum_off.  Otherwise
 * returns the 1-based index of the offending value (k + 1: the label) and
 * writes a short reason ("NaN", "probability 1.5 outside [0,1]", "row sums
 * to 0.98, not 1", "label 12 outside [0,10)") into why[why_size]. */
size_t calib__check_row(calib_kind kind, double *v, size_t k, int64_t label,
                        calib_read_stats *stats, char *why, size_t why_size);

/* Whether n float32 top-label rows certainly pass calib__check_row
 * unchanged: every value in [+0, 1] and every flag 0 or 1. */
int calib__top_f32_clean(const float *conf, const uint8_t *correct, size_t n);

/* calib_dataset_wrap without the row checks: for callers that check every
 * row themselves as they read it (calib_evaluate_arrays). */
int calib__dataset_view(const calib_arrays *a, calib_dataset **out,
                        calib_error *err);

/* ------------------------------------------------------------------ */
/* Exact summation                                                     */
/* ------------------------------------------------------------------ */

/* A fixed-point superaccumulator: 32-bit digits, the lowest worth 2^-160.
 * Adding a double is exact for |x| >= 2^-160 (smaller parts are truncated
 * toward zero, deterministically, per element) while the running sum stays
 * below 2^90; integer addition is associative, so the rounded result
 * depends only on the multiset of values added, never on order, threads or
 * shards.  Non-finite values and magnitudes >= 2^80 go to a side double
 * (`big`) in the plain IEEE way (inf/NaN propagate).  Rounding to double is
 * correct (nearest, ties to even) for the fixed-point part. */
#define CALIB__XSUM_DIGITS 8
#define CALIB__XSUM_LOW (-160)
typedef struct calib__xsum {
    int64_t d[CALIB__XSUM_DIGITS];
    int64_t adds;             /* since the last carry normalisation */
    double big;               /* non-finite or huge values, added plainly */
} calib__xsum;

void calib__xsum_init(calib__xsum *s);
void calib__xsum_add(calib__xsum *s, double x);
/* Adds x (in [0, 1]) k times: exactly what k calls of calib__xsum_add
 * add, in one step. */
void calib__xsum_add_times(calib__xsum *s, double x, uint64_t k);
void calib__xsum_merge(calib__xsum *dst, const calib__xsum *src);
/* Whether s holds nothing: every digit and the plain part 0 (a sum that
 * cancelled to 0 may still say no). */
int calib__xsum_is_zero(const calib__xsum *s);
double calib__xsum_round(const calib__xsum *s);
/* Adds a * b exactly (the rounded product and its fma residual). */
void calib__xsum_add_product(calib__xsum *s, double a, double b);

/* ------------------------------------------------------------------ */
/* Threads                                                             */
/* ------------------------------------------------------------------ */

/* Returns the thread count to use: `requested` if > 0, else the number of
 * online processors (at least 1). */
int calib__threads(int requested);

/* Calls fn(ctx, begin, end, worker) on contiguous ranges covering [0, n),
 * worker = 0 .. used-1, at most `threads` at once, each range at least
 * `grain` rows (so small inputs stay on one thread).  Returns the number of
 * workers used (>= 1; 1 when n == 0).  It cannot fail: a range whose
 * thread cannot be started runs on the calling thread. */
typedef void (*calib__range_fn)(void *ctx, size_t begin, size_t end,
                                int worker);
int calib__parallel_for(size_t n, int threads, size_t grain,
                        calib__range_fn fn, void *ctx);

/* The same, but each worker takes the next `chunk` items as it becomes
 * free, so fn may be called many times per worker: for fn whose per-worker
 * results are exact sums, where a thread slowed down by other work on the
 * machine should not hold the others up. */
int calib__parallel_chunks(size_t n, int threads, size_t grain, size_t chunk,
                           calib__range_fn fn, void *ctx);

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* Fills *err (if not NULL) and returns `code`.  file may be NULL. */
int calib__fail(calib_error *err, int code, const char *file, size_t line,
                size_t row, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Clears *err (if not NULL) to CALIB_OK; returns CALIB_OK. */
int calib__ok(calib_error *err);

/* The status of a json_loadb() that returned NULL having filled *e:
 * CALIB_ENOMEM when jansson ran out of memory, which it says with
 * json_error_out_of_memory or, where an allocation inside its parser
 * fails, with no message at all (every syntax error has one); otherwise
 * CALIB_EDATA. */
struct json_error_t;
int calib__json_status(const struct json_error_t *e);

/* Sets every metric beyond the binned core of m to NaN and clears its
 * intervals (metric_id.c): a new calib_metrics starts so. */
void calib__metrics_clear_extra(calib_metrics *m);

/* metrics_bins.c: ece_over, ece_under, ece_debiased_l2 and the Brier
 * decomposition of m from its bins; w_ece is the ECE's weight, w_out and
 * hit_out the weight and correct weight of rows in no bin (gpleiss and
 * hollance p = 0). */
void calib__bin_extras(calib_metrics *m, double w_ece, double w_out,
                       double hit_out);

/* ------------------------------------------------------------------ */
/* Per-row kernels (metrics.c, temperature.c)                          */
/* ------------------------------------------------------------------ */

/* Top-label view of distribution row i with its scores multiplied by
 * `beta` (1/T; beta = 1 for the data as given; PROBS rows are read as
 * logits log p when beta != 1):
 *   *conf    = the largest probability,
 *   *correct = (first argmax == label),
 *   *nll     = -log q_label (PROBS at beta 1: clipped at 1e-15, *clipped
 *              set to 1 when that happened),
 *   *brier   = sum_k (q_k - [k = label])^2.
 * Any out-pointer may be NULL. */
void calib__row_eval(const calib_dataset *ds, size_t i, double beta,
                     double *conf, int *correct, double *nll, double *brier,
                     int *clipped);

/* The probabilities of distribution row i into q[0 .. len) (export.c):
 * softmax of logits as exp(z_k - max) / sum_j exp(z_j - max), or the
 * probabilities clamped into [0,1]. */
void calib__row_probs(const calib_dataset *ds, size_t i, double *q);

/* Bin index of confidence p among m equal-width bins under `rule`, or -1
 * when the rule puts p in no bin (gpleiss/hollance p = 0).  Torchmetrics'
 * p = 1 returns m (its extra bin). */
long calib__bin_width(double p, int m, calib_bin_rule rule);

/* Equal-mass upper edges (Kumar's get_equal_bins, last edge 1.0) of the n
 * confidences conf[], duplicates removed, into a malloc'd *edges of
 * *n_edges entries.  Returns CALIB_OK or CALIB_ENOMEM. */
int calib__mass_edges(const double *conf, size_t n, int m, int threads,
                      double **edges, size_t *n_edges);

/* Bin index of p among mass edges: the first b with p <= edges[b]
 * (bisect_left), clamped to the last bin. */
size_t calib__bin_mass(double p, const double *edges, size_t n_edges);

/* Metrics of top-label arrays conf/correct/weights (weights NULL = 1),
 * binned as `opt` says, without NLL (set to NaN) and with top-label Brier;
 * what the ECE objective of temperature scaling evaluates. */
int calib__evaluate_toplabel(size_t n, const double *conf,
                             const uint8_t *correct, const double *weights,
                             const calib_eval_options *opt,
                             calib_metrics **out, calib_error *err);

/* ------------------------------------------------------------------ */
/* Bootstrap (bootstrap.c)                                             */
/* ------------------------------------------------------------------ */

/* The multiplicities counts[0..n) of replicate r's N draws with
 * replacement from n rows, seeded by (seed, r) as calib.h documents. */
void calib__bootstrap_counts(uint64_t seed, uint64_t r, size_t n,
                             uint32_t *counts);

/* Fills the intervals of m (ds's metrics, groups included) from
 * o->bootstrap replicates; calib_evaluate's last step. */
int calib__bootstrap(const calib_dataset *ds, const calib_eval_options *o,
                     calib_metrics *m, calib_error *err);

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

/* A growable string for JSON writers.  On allocation failure `failed` is
 * set and further appends are ignored. */
typedef struct calib__buf {
    char *s;
    size_t len, cap;
    int failed;
} calib__buf;

void calib__buf_printf(calib__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void calib__buf_puts(calib__buf *b, const char *s);
/* Appends a JSON string literal (quoted, escaped). */
void calib__buf_json_string(calib__buf *b, const char *s);
/* Appends a JSON number (%.17g), or null when x is not finite. */
void calib__buf_json_number(calib__buf *b, double x);

#endif /* CALIB_INTERNAL_H */
