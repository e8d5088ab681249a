/* metrics.h — what metrics.c, accum.c, width_f32.c and mass.c share.
 *
 * The exact per-bin sums (cells), the populations that hold them, how a
 * row is binned, and the pass over a chunk.  Names shared across these
 * files are calib__*; nothing here is seen outside the metrics code.
 */
#ifndef CALIB_METRICS_H
#define CALIB_METRICS_H

#include "internal.h"

__extension__ typedef unsigned __int128 u128;

#define FX_MIN 0x1p-18  /* float32 values from here on are k * 2^-41 */
#define FX_ONE 0x1p41
#define MAX_WORKERS 256

typedef struct cell {
    uint64_t count;       /* rows */
    uint64_t plain;       /* rows without weights (weight 1) */
    uint64_t plain_hits;  /* of which correct */
    u128 conf_fx;         /* fast path: sum p, units 2^-41 */
    calib__xsum weight;   /* weighted rows: sum w */
    calib__xsum hit;      /* weighted rows: sum w [correct] */
    calib__xsum conf;     /* every other contribution to sum w p */
} cell;

/* One population: nb bins, then torchmetrics' [1,1] bin, then "no bin". */
typedef struct pop {
    size_t n_cells;
    cell *cells;
    u128 p2_fx;           /* fast path: sum p^2, units 2^-82 */
    u128 pc_fx;           /* fast path: sum p over correct rows, 2^-41 */
    uint64_t fast_hits;   /* fast path: correct rows */
    calib__xsum brier, nll;
    uint64_t clipped;
    size_t first;         /* first row of the current chunk seen here */
    struct vtab *vt;      /* the value table (values.h), or NULL */
} pop;

typedef struct binspec {
    calib_binning binning;
    calib_bin_rule rule;
    int m;                /* width: M */
    const double *edges;  /* width: e_0 .. e_M; mass: the upper edges */
    size_t nb;            /* bins: M, or the number of mass edges */
    /* mass, float32 rows (width_f32.c): thr[b] = the bits of the largest
     * float32 <= edges[b], b < nb - 1, so that a float32 p in [+0, 1] with
     * bits u is in bin #{b : thr[b] < u}; NULL otherwise */
    const int32_t *thr;
} binspec;

/* binning.c's calib__bin_width with the edges read from a table (the hot
 * loop must not divide); test_binning checks that the two agree. */
static inline size_t width_slot(double p, const binspec *s)
{
    const int m = s->m;
    const double *e = s->edges;
    long b = (long)(p * m);
    b = b > m - 1 ? m - 1 : b;
    if (s->rule == CALIB_RULE_NETCAL || s->rule == CALIB_RULE_TORCHMETRICS) {
        if (p >= 1.0 && s->rule == CALIB_RULE_TORCHMETRICS)
            return (size_t)m;
        if (b > 0 && p < e[b])
            b--;
        else if (b < m - 1 && p >= e[b + 1])
            b++;
        return (size_t)b;
    }
    if (p <= 0.0 && s->rule != CALIB_RULE_SKLEARN)
        return (size_t)m + 1; /* gpleiss, hollance: in no bin */
    if (b > 0 && p <= e[b])
        b--;
    else if (p > e[b + 1])
        b++;
    return (size_t)b;
}

static inline size_t slot_of(double p, const binspec *s)
{
    if (s->binning == CALIB_BINNING_MASS)
        return calib__bin_mass(p, s->edges, s->nb);
    return width_slot(p, s);
}

/* What one row contributes, in the general (not fast) path. */
typedef struct rowval {
    double p, w, brier, nll;
    int correct, clipped, weighted;
} rowval;

/* What the workers of a pass over unchecked rows found (see
 * calib__accum_add_checked): each checks its rows as calib_dataset_wrap
 * would, counts clamps, and stops at its first bad row. */
typedef struct row_check {
    calib_read_stats stats[MAX_WORKERS];
    size_t bad_row[MAX_WORKERS];       /* 0-based; SIZE_MAX: none */
    size_t bad_col[MAX_WORKERS];       /* 1-based */
    char why[MAX_WORKERS][160];
} row_check;

typedef struct pass {
    const calib_dataset *ds;
    const binspec *bs;
    size_t n_pops;        /* chunk groups, or 1 */
    pop **locals;         /* [worker * n_pops + g], made on first use */
    size_t vlimit;        /* > 0: populations keep value tables */
    row_check *check;     /* non-NULL: the rows are not checked yet (only
                             float32 top-label rows of weight 1 without
                             groups, under equal-width bins) */
    int skip_p2;          /* calib_accum.skip_p2 */
    int nomem[MAX_WORKERS];
} pass;

/* Where the rows came from, for the fields that are not sums. */
typedef struct family {
    int top;              /* top-label rows (no NLL, top-label Brier) */
    size_t classes;
    int from_probs;
} family;

/* accum.c: populations of nb bins, a general row, the pass's populations. */
pop *calib__pop_new(size_t nb);
void calib__pop_free(pop *p);
void calib__pop_merge(pop *d, const pop *s);
void calib__add_row(pop *P, const binspec *bs, const rowval *r);
/* The population of group g for `worker`, made on first use (its first
 * row is `row`); NULL (and the pass marked out of memory) on failure. */
pop *calib__local_pop(pass *ps, int worker, size_t g, size_t row);

/* Runs the pass over every row of ds; on success ps->locals holds the
 * workers' populations and *workers their number.  pass_free takes the
 * same `threads`. */
int calib__pass_run(pass *ps, const calib_dataset *ds, const binspec *bs,
                    int threads, int *workers);
void calib__pass_free(pass *ps, int threads);
/* calib_accum_add for a calib__dataset_view of float32 top-label rows of
 * weight 1 without groups: checks each row in the same pass (counting
 * clamps into *st); on a bad row adds nothing and fails as
 * calib_dataset_wrap would. */
int calib__accum_add_checked(calib_accum *a, const calib_dataset *chunk,
                             calib_read_stats *st, calib_error *err);

/* The streaming accumulator (accum.c; accum_json.c writes and reads it). */
struct calib_accum {
    calib_eval_options opt;
    binspec bs;
    double *edges;
    int kind_seen;        /* 0: nothing yet, 1: top-label, 2: distribution */
    size_t classes;       /* SIZE_MAX until a distribution chunk; 0 when
                             ragged or chunks of different K were added */
    int from_probs;
    pop *all;
    size_t n_groups, cap_groups;
    char **names;
    pop **groups;
    size_t vlimit;        /* > 0: every population keeps a value table of
                             at most vlimit entries (calib_accum_keep_values) */
    int skip_p2;          /* the float32 blocks skip sum p^2 (only for
                             calib_evaluate's own accumulator, scores = 0) */
};

/* What the accumulator's rows were, for calib__metrics_from. */
family calib__accum_family(const calib_accum *a);
/* values_mass.c: drops every value table of a (merged with a state that
 * has none); whether a table ran out of memory. */
void calib__accum_drop_values(calib_accum *a);
int calib__accum_values_nomem(const calib_accum *a);
/* values_rank.c: AUROC, AURC and the selective metrics of m (and of its
 * groups, in a's order) from a's value tables, when a keeps them and its
 * options ask for them.  CALIB_OK or CALIB_ENOMEM. */
int calib__accum_selective(const calib_accum *a, calib_metrics *m);

/* Index of the group named `name` in a, appended (empty) when new;
 * SIZE_MAX when out of memory. */
size_t calib__accum_group(calib_accum *a, const char *name);

/* width_f32.c: the float32 top-label rows [begin, end) of weight 1 under
 * equal-width bins, or equal-mass bins with bs->thr, into the worker's
 * populations; with ps->check, each row checked on the way, stopping at
 * the first bad one. */
void calib__fast_range(pass *ps, size_t begin, size_t end, int worker);
/* Nonzero: width_f32.c's blocks take the portable phase 1 even where
 * the AVX2 one could run (tests compare the two). */
extern int calib__width_portable;

/* metrics.c */
int calib__check_eval_options(const calib_eval_options *o, calib_error *err);
void calib__load_row(const calib_dataset *ds, size_t i, rowval *r);
calib_metrics *calib__metrics_from(const pop *P, const binspec *bs,
                                   const family *f);
int calib__attach_groups(calib_metrics *m, size_t n_groups,
                         char *const *names);
/* NLL and Brier (and their intervals) NaN in m and its groups: scores = 0 */
void calib__drop_scores(calib_metrics *m);
/* Whether P's sums could come from rows of the kind `top` says (a partial
 * state read from a file is checked so): returns 0, or 1 with the reason
 * ("cells[3]: hits 7 outside [0, weight 1]") in why[size]. */
int calib__pop_check(const pop *P, const binspec *bs, int top, char *why,
                     size_t size);

/* binning.c: calib__mass_edges of float32 confidences, found on their
 * bits.  CALIB_EINVAL when a confidence is -0.0 or n >= 2^31 (use the
 * float64 path), else as calib__mass_edges. */
int calib__mass_edges_f32(const float *conf, size_t n, int m, int threads,
                          double **edges, size_t *n_edges);

/* binning.c, for equal-mass edges from a value table: the number of
 * groups of n rows into m bins (m > n: n), the first rank of group i, the
 * ranks whose values make the edges (s_i - 1 and s_i for i = 1 .. mm-1,
 * ascending, 2 (mm - 1) at most), and the edges from those values (mm
 * entries at most), as calib__mass_edges finds them. */
size_t calib__mass_groups(size_t n, int m);
size_t calib__mass_split(size_t i, size_t n, size_t m);
size_t calib__mass_ranks(size_t n, size_t m, size_t *ranks);
size_t calib__mass_make_edges(size_t n, size_t m, const size_t *ranks,
                              const double *values, double *edges);

/* mass.c: equal-mass metrics of ds (and its groups) into *out; CALIB_OK,
 * CALIB_ENOMEM, or CALIB_EINTERNAL (a broken invariant). */
int calib__evaluate_mass(const calib_dataset *ds, const calib_eval_options *o,
                         calib_metrics **out);

#endif /* CALIB_METRICS_H */
