/* temperature.h — what the temperature-scaling files share: the calibrator
 * object (calibrator.c: accessors, apply, JSON), the per-row kernels
 * (tscale_kernel.c, tscale_kernel32.c), the passes over the rows
 * (tscale_pass.c), the NLL solver (temperature.c) and the ECE/Brier search
 * (tscale_search.c).
 * Private to those files.
 */
#ifndef CALIB_TEMPERATURE_H
#define CALIB_TEMPERATURE_H

#include "internal.h"
#include "recal1d.h"

struct calib_calibrator {
    calib_method method;
    calib_objective objective;
    double temperature;
    int binary;               /* fitted on top-label rows: sigmoid form   */
    int iterations;           /* data passes (NLL) or objective evaluations */
    double objective_value;   /* objective at `temperature`               */
    const char *solver;       /* "newton-log-beta" or "grid+golden"       */
    char **diag;              /* malloc'd sentences                       */
    size_t n_diag;
    size_t fitted_rows;
    size_t classes;
    /* The other methods (recal.h) */
    double coef[3];           /* platt a, b; beta a, b, c                 */
    double *vec;              /* vector: scale[classes], bias[classes]    */
    calib__isotonic iso;
    calib__histogram hist;
};

/* Returns a zeroed calibrator for `method`/`objective` with T = 1, or NULL
 * when out of memory. */
calib_calibrator *calib__calibrator_new(calib_objective objective);

/* Appends a diagnostic sentence; CALIB_OK or CALIB_ENOMEM. */
int calib__calibrator_note(calib_calibrator *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------ */
/* Per-row kernels (tscale_kernel.c; float32: tscale_kernel32.c)      */
/* ------------------------------------------------------------------ */

/* The kernels work on 4 doubles or 8 floats at a time: scratch rows hold
 * the row length rounded up to a multiple of CALIB__TS_LANES. */
#define CALIB__TS_LANES 8
/* A score more than this far below its row's maximum has probability
 * exactly 0 for every beta >= 1e-70 (exp underflows), so it is dropped;
 * this also keeps (w - m)^4 finite. */
#define CALIB__TS_W_DROP 1e75
/* The range of T calib_fit accepts, so that beta * W_DROP underflows. */
#define CALIB__TS_T_LIMIT 1e30

typedef enum calib__row_state {
    CALIB__ROW_FIT,       /* depends on T                                 */
    CALIB__ROW_CONST,     /* NLL = log(len) whatever T (all scores equal)  */
    CALIB__ROW_INFINITE   /* NLL = +inf whatever T (label probability 0)  */
} calib__row_state;

/* Row i as w_k = z_k - max z (<= 0, one of them 0), entries with
 * probability 0 for every T dropped, the label at w[*y] (*y = SIZE_MAX
 * when it was dropped: the row is then ROW_INFINITE), w[*len ..] up to the
 * next multiple of CALIB__TS_LANES set to 0.  PROBS rows are logits log p;
 * top-label rows the logits (logit p, 0) with class 0 = correct.  w has
 * room for the longest row, rounded up. */
calib__row_state calib__ts_load_row(const calib_dataset *ds, size_t i,
                                    double *w, size_t *len, size_t *y);

/* e_k = exp(beta w_k) for a row from calib__ts_load_row (e padded with 0
 * like w); returns their sum (>= 1: the maximum gives 1). */
double calib__ts_row_exp(const double *w, size_t len, double beta, double *e);

/* A row's moments: sum e, f', and the cumulants kappa_2 .. kappa_8 */
#define CALIB__TS_MOM 9

/* For a ROW_FIT row: out[0] = sum_k exp(beta w_k) (the NLL is its log
 * minus beta w_y), out[1] = f' = E_q[w - w_y], out[2..3] = the central
 * moments c2, c3 of w under q, out[4] = kappa_4 = c4 - 3 c2^2.  With sum
 * (else NULL: a `high` pass), also out[5..8] = kappa_5 .. kappa_8 (else
 * left as they are), and *sum and *at_max of calib__ts_row_sum, the same
 * bits.  e is scratch of the padded length. */
void calib__ts_row_moments(const double *w, size_t len, size_t y, double beta,
                           double *e, double out[CALIB__TS_MOM], double *sum,
                           size_t *at_max);

/* A row of float32 scores read in place: z[0..len), its maximum and
 * minimum, and its last partial group of 8 (z[len & ~7 ..]) copied into
 * tail[] and padded with the maximum, so that the kernels read whole
 * groups without reading past the row. */
typedef struct calib__zrow {
    const float *z;
    size_t len;
    float zmax, zmin;
    float tail[8];
} calib__zrow;

/* r for z[0..len), len >= 1; the kernels may read z up to z[avail). */
void calib__ts_zrow_init(calib__zrow *r, const float *z, size_t len,
                         size_t avail);

/* The same for a row whose maximum and minimum are already known (from an
 * earlier calib__ts_zrow_init of it): only the tail is read. */
void calib__ts_zrow_known(calib__zrow *r, const float *z, size_t len,
                          size_t avail, float zmax, float zmin);

/* Float32 logits row i as a calib__zrow.  Such rows are finite, so nothing
 * is dropped: ROW_CONST when all scores are equal, else ROW_FIT. */
calib__row_state calib__ts_load_z32(const calib_dataset *ds, size_t i,
                                    calib__zrow *r);

/* calib__ts_row_moments of the row w = z - zmax, computed in double (the
 * very w of calib__ts_load_row) and never stored. */
void calib__ts_zrow_moments(const calib__zrow *r, size_t y, double beta,
                            double *e, double out[CALIB__TS_MOM]);

/* The same moments in float32, from w = z - zmax rounded to float, with
 * exp good to 2.1e-7: what the solver's approximate passes use.  Fit for
 * rows whose range zmax - zmin is at most CALIB__TS_RANGE32 (so that no
 * float overflows); e holds floats.  With sum (else NULL), also *sum and
 * *at_max of calib__ts_zrow_sum, the same bits, from the same loop. */
void calib__ts_zrow_moments32(const calib__zrow *r, size_t y, double beta,
                              float *e, double out[CALIB__TS_MOM],
                              double *sum, size_t *at_max);
#define CALIB__TS_RANGE32 1e6

/* A high pass's results for one row of float32 logits. */
typedef struct calib__zhigh {
    calib__row_state st;      /* ROW_FIT or ROW_CONST                    */
    size_t len;
    float zmax, zmin;
    double m[CALIB__TS_MOM];  /* ROW_FIT: the moments, to kappa_8        */
    double wy;                /* ROW_FIT: the label's z_y - zmax         */
    double sum;               /* ROW_FIT: calib__ts_zrow_sum's sums      */
    size_t at_max;
} calib__zhigh;

/* The high moments of rows [r0, r1) of float32 logits at beta (what
 * calib__ts_row_moments with sum gives for the same rows loaded as
 * doubles, the same bits), into out[i - r0]: one call for a block of rows,
 * so that what a call sets up (the exp's constants, the dispatch) is paid
 * once a block, not once a row.  e: scratch for two of the longest rows,
 * at e and e + stride. */
void calib__ts_zrows_high(const calib_dataset *ds, size_t r0, size_t r1,
                          double beta, double *e, size_t stride,
                          calib__zhigh *out);

/* sum_k w_k over a loaded row, and the count of its maxima (w_k = 0). */
double calib__ts_row_sum(const double *w, size_t len, size_t *at_max);
double calib__ts_zrow_sum(const calib__zrow *r, size_t *at_max);

/* ------------------------------------------------------------------ */
/* Passes over the rows (tscale_pass.c)                                */
/* ------------------------------------------------------------------ */

/* A pass's sums: NLL, then f' .. f^(8) in beta (the derivatives past the
 * fourth only in a `high` pass, else 0), then the weight */
#define CALIB__TS_SUMS 10
#define CALIB__TS_WEIGHT 9

/* What every pass shares: the data, per-worker scratch rows and exact
 * accumulators, merged in worker order (exact, so order is immaterial). */
typedef struct calib__tpass {
    const calib_dataset *ds;
    int threads, workers;
    size_t longest;           /* the longest row's length                */
    size_t max_len;           /* longest, rounded up to the lanes        */
    size_t grain;             /* rows a thread takes at least            */
    double *scratch;          /* workers x 3 x max_len                   */
    calib__xsum *acc;         /* workers x CALIB__TS_SUMS                */
    double beta;
    size_t *sample;           /* sorted rows of the warm-start subsample */
    size_t n_sample;
    int use_sample;           /* moment passes visit the sample only     */
    int f32;                  /* moment passes in float32 (approximate)  */
    int high;                 /* double moment passes sum to kappa_8     */
    int z32;                  /* float32 logits: read without conversion */
    float *ext;               /* z32: row i's maximum and minimum at
                                 ext[2i], ext[2i + 1], from the shape pass
                                 (NULL: no room; each pass finds them)  */
    int ext_ready;            /* ext filled for every row of weight > 0  */
    struct calib__tshape *shape; /* non-NULL: the next moment pass over
                                    all rows also scans the shape into it */
    struct calib__tshape *part;  /* workers: the shape pass's counts      */
    calib__xsum *shape_acc;      /* workers x 2: its sums                 */
} calib__tpass;

/* Sets up passes over ds with `threads` (0 = all cores).  Returns CALIB_OK
 * or CALIB_ENOMEM; calib__tpass_free is needed either way. */
int calib__tpass_init(calib__tpass *p, const calib_dataset *ds, int threads);
void calib__tpass_free(calib__tpass *p);

/* Chooses the warm-start subsample: m pseudo-random rows.  CALIB_OK or
 * CALIB_ENOMEM. */
int calib__tpass_sample(calib__tpass *p, size_t m);

/* Scratch rows (w, then e, then a float copy) of a worker. */
static inline double *calib__tpass_scratch(const calib__tpass *p, int worker)
{
    return p->scratch + (size_t)worker * 3 * p->max_len;
}

/* Runs fn(ctx, ...) over the rows (one range a worker) and returns the
 * first n_sums accumulators, merged over the workers, in out[]. */
void calib__tpass_run(calib__tpass *p, calib__range_fn fn, void *ctx,
                      double *out, int n_sums);

/* The weighted sums of NLL, f' .. f'''' (.. f^(8) with p->high) in beta
 * and weight over the rows (or the sample) at p->beta, into
 * out[CALIB__TS_SUMS]. */
void calib__tpass_moments(calib__tpass *p, double out[CALIB__TS_SUMS]);

/* The structure of the data, from one pass without exp. */
struct calib__tshape {
    size_t infinite, fit, constant;  /* rows by state (weight > 0)       */
    size_t label_max, strict;        /* fit rows: label has the max score
                                        (strict: alone)                  */
    double slope0;                   /* sum_i wt (mean_k w_k - w_y) = the
                                        weighted f'(beta -> 0+)          */
    double slope0_abs;               /* sum_i wt |mean_k w_k - w_y|      */
};
typedef struct calib__tshape calib__tshape;

/* The shape in a pass of its own.  A moment pass over all rows finds it
 * too, at little cost, when p->shape points where to put it. */
void calib__tpass_shape(calib__tpass *p, calib__tshape *out);

/* Fits T by the ECE or Brier objective (tscale_search.c).  `fixed` (T
 * does not matter: one class, or no row depends on T) evaluates T = 1
 * only. */
int calib__fit_grid(calib__tpass *p, const calib_fit_options *opt, int fixed,
                    calib_calibrator *c, calib_error *err);

#endif /* CALIB_TEMPERATURE_H */
