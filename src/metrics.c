/* metrics.c — accuracy, ECE, MCE, RMSCE, NLL, Brier and reliability tables,
 * streamed over rows in exact arithmetic.
 *
 * Every row lands in one cell (its bin; torchmetrics' [1,1] bin; or "no
 * bin" for gpleiss/hollance p = 0) of its population (the whole set, and
 * its group).  A cell keeps exact sums: integer counts for rows of weight
 * 1, superaccumulators (xsum.c) for weighted rows.  Because every sum is
 * exact until the one rounding at the end, per-thread and per-shard cells
 * merge into bit-identical results whatever the split.
 *
 * The hot path (float32 top-label confidences without weights, the shape
 * of a token-level or verbalized-confidence eval) avoids superaccumulator
 * work per row: a float32 value >= 2^-18 is an integer multiple of 2^-41,
 * so sum p is kept as a 128-bit integer in units of 2^-41 and sum p^2 in
 * units of 2^-82; the top-label Brier score is then exact as
 *   sum (p - c)^2 = sum p^2 - 2 sum_{c=1} p + sum c.
 * Smaller values (rare) take the superaccumulator.
 *
 * Metric formulas (calib.h): ECE = sum_b (W_b/W) |acc_b - conf_b| (Guo et
 * al. 2017), MCE = max over non-empty bins, RMSCE = sqrt(sum_b (W_b/W)
 * (acc_b - conf_b)^2), where W_b is the bin's weight (its count without
 * weights) and W the weight of the ECE's rows (all rows; hollance leaves
 * out p = 0).  Equal-mass binning (Kumar et al. 2019) needs every
 * confidence before any bin is known, so calib_evaluate projects the rows
 * to top-label arrays first; each group gets edges from its own rows.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;

#define FX_MIN 0x1p-18  /* float32 values from here on are k * 2^-41 */
#define FX_ONE 0x1p41
#define NLL_CLIP 1e-15  /* scikit-learn's log_loss eps */
#define MAX_WORKERS 256

/* ------------------------------------------------------------------ */
/* Per-row kernels                                                     */
/* ------------------------------------------------------------------ */

/* PROBS at beta = 1: the probabilities as given, clamped into [0,1]. */
static void eval_probs(const calib_dataset *ds, size_t b, size_t len, int y,
                       double *conf, int *correct, double *nll,
                       double *brier, int *clipped)
{
    double best = -1.0, br = 0.0;
    size_t arg = 0;
    for (size_t j = 0; j < len; j++) {
        double q = calib__score(ds, b + j);
        q = q < 0.0 ? 0.0 : q > 1.0 ? 1.0 : q;
        if (q > best) {
            best = q;
            arg = j;
        }
        const double d = q - ((int)j == y);
        br += d * d;
    }
    double qy = calib__score(ds, b + (size_t)y);
    qy = qy < 0.0 ? 0.0 : qy > 1.0 ? 1.0 : qy;
    if (conf)
        *conf = best;
    if (correct)
        *correct = (int)arg == y;
    if (nll)
        *nll = -log(qy < NLL_CLIP ? NLL_CLIP : qy);
    if (clipped)
        *clipped = qy < NLL_CLIP;
    if (brier)
        *brier = br;
}

/* Logit j of the row, times beta; PROBS rows give log p (p = 0: -inf,
 * which softmax maps back to probability 0). */
static double logit(const calib_dataset *ds, size_t j, double beta)
{
    const double v = calib__score(ds, j);
    if (ds->kind == CALIB_PROBS)
        return v <= 0.0 ? -INFINITY : beta * log(v);
    return beta * v;
}

/* Softmax through log-sum-exp with the largest logit z_max as the shift:
 * e_k = exp(z_k - z_max), s = sum e_k, q_k = e_k / s, so conf = 1/s and
 * -log q_y = log s - (z_y - z_max).  The Brier score is summed as
 * ((s - e_y)/s)^2 + sum_{k != y} e_k^2 / s^2, with s - e_y accumulated
 * from the other classes so it does not cancel when q_y is near 1. */
static void eval_logits(const calib_dataset *ds, size_t b, size_t len, int y,
                        double beta, double *conf, int *correct, double *nll,
                        double *brier)
{
    double zmax = -INFINITY;
    size_t arg = 0;
    for (size_t j = 0; j < len; j++) {
        const double z = logit(ds, b + j, beta);
        if (z > zmax) {
            zmax = z;
            arg = j;
        }
    }
    double s = 0.0, other = 0.0, other2 = 0.0;
    for (size_t j = 0; j < len; j++) {
        const double e = exp(logit(ds, b + j, beta) - zmax);
        s += e;
        if ((int)j != y) {
            other += e;
            other2 += e * e;
        }
    }
    const double zy = logit(ds, b + (size_t)y, beta);
    if (conf)
        *conf = 1.0 / s;
    if (correct)
        *correct = (int)arg == y;
    if (nll)
        *nll = log(s) - (zy - zmax);
    if (brier)
        *brier = (other / s) * (other / s) + other2 / (s * s);
}

void calib__row_eval(const calib_dataset *ds, size_t i, double beta,
                     double *conf, int *correct, double *nll, double *brier,
                     int *clipped)
{
    const size_t b = calib__row_begin(ds, i), len = calib__row_len(ds, i);
    const int y = ds->labels[i];
    if (ds->kind == CALIB_PROBS && beta == 1.0) {
        eval_probs(ds, b, len, y, conf, correct, nll, brier, clipped);
        return;
    }
    if (clipped)
        *clipped = 0;
    eval_logits(ds, b, len, y, beta, conf, correct, nll, brier);
}

/* ------------------------------------------------------------------ */
/* Cells and populations                                               */
/* ------------------------------------------------------------------ */

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
} pop;

static pop *pop_new(size_t nb)
{
    pop *p = calloc(1, sizeof *p);
    if (p && !(p->cells = calloc(nb + 2, sizeof *p->cells))) {
        free(p);
        return NULL;
    }
    if (p)
        p->n_cells = nb + 2;
    return p;
}

static void pop_free(pop *p)
{
    if (p)
        free(p->cells);
    free(p);
}

static void cell_merge(cell *d, const cell *s)
{
    d->count += s->count;
    d->plain += s->plain;
    d->plain_hits += s->plain_hits;
    d->conf_fx += s->conf_fx;
    calib__xsum_merge(&d->weight, &s->weight);
    calib__xsum_merge(&d->hit, &s->hit);
    calib__xsum_merge(&d->conf, &s->conf);
}

static void pop_merge(pop *d, const pop *s)
{
    for (size_t b = 0; b < s->n_cells; b++)
        if (s->cells[b].count)
            cell_merge(&d->cells[b], &s->cells[b]);
    d->p2_fx += s->p2_fx;
    d->pc_fx += s->pc_fx;
    d->fast_hits += s->fast_hits;
    calib__xsum_merge(&d->brier, &s->brier);
    calib__xsum_merge(&d->nll, &s->nll);
    d->clipped += s->clipped;
}

/* Adds v * 2^e exactly: three pieces of 43 bits are each a double. */
static void xsum_add_fx(calib__xsum *s, u128 v, int e)
{
    const u128 mask = ((u128)1 << 43) - 1;
    calib__xsum_add(s, ldexp((double)(uint64_t)(v & mask), e));
    calib__xsum_add(s, ldexp((double)(uint64_t)((v >> 43) & mask), e + 43));
    calib__xsum_add(s, ldexp((double)(uint64_t)(v >> 86), e + 86));
}

static void xsum_add_fx_neg(calib__xsum *s, u128 v, int e)
{
    const u128 mask = ((u128)1 << 43) - 1;
    calib__xsum_add(s, -ldexp((double)(uint64_t)(v & mask), e));
    calib__xsum_add(s, -ldexp((double)(uint64_t)((v >> 43) & mask), e + 43));
    calib__xsum_add(s, -ldexp((double)(uint64_t)(v >> 86), e + 86));
}

/* ------------------------------------------------------------------ */
/* Binning a row                                                       */
/* ------------------------------------------------------------------ */

typedef struct binspec {
    calib_binning binning;
    calib_bin_rule rule;
    int m;                /* width: M */
    const double *edges;  /* width: e_0 .. e_M; mass: the upper edges */
    size_t nb;            /* bins: M, or the number of mass edges */
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

static void add_row(pop *P, const binspec *bs, const rowval *r)
{
    cell *c = &P->cells[slot_of(r->p, bs)];
    c->count++;
    if (r->weighted) {
        calib__xsum_add(&c->weight, r->w);
        if (r->correct)
            calib__xsum_add(&c->hit, r->w);
        calib__xsum_add(&c->conf, r->w * r->p);
        calib__xsum_add(&P->brier, r->w * r->brier);
        calib__xsum_add(&P->nll, r->w * r->nll);
    } else {
        c->plain++;
        c->plain_hits += (uint64_t)r->correct;
        calib__xsum_add(&c->conf, r->p);
        calib__xsum_add(&P->brier, r->brier);
        calib__xsum_add(&P->nll, r->nll);
    }
    P->clipped += (uint64_t)r->clipped;
}

/* The fast path for one float32 top-label row of weight 1. */
static inline void fast_row(pop *P, float pf, unsigned c, const binspec *bs)
{
    const double p = pf < 0.0f ? 0.0 : pf > 1.0f ? 1.0 : (double)pf;
    cell *x = &P->cells[width_slot(p, bs)];
    x->count++;
    x->plain_hits += c;
    if (p >= FX_MIN) {
        const uint64_t q = (uint64_t)(p * FX_ONE);
        x->conf_fx += q;
        P->p2_fx += (u128)q * q;
        P->pc_fx += q & (0 - (uint64_t)c);
        P->fast_hits += c;
    } else {
        calib__xsum_add(&x->conf, p);
        calib__xsum_add(&P->brier, (p - c) * (p - c));
    }
}

/* ------------------------------------------------------------------ */
/* The pass over a chunk: workers fill their own populations           */
/* ------------------------------------------------------------------ */

typedef struct pass {
    const calib_dataset *ds;
    const binspec *bs;
    size_t n_pops;        /* chunk groups, or 1 */
    pop **locals;         /* [worker * n_pops + g], made on first use */
    int nomem[MAX_WORKERS];
} pass;

static pop *local_pop(pass *ps, int worker, size_t g, size_t row)
{
    pop **slot = &ps->locals[(size_t)worker * ps->n_pops + g];
    if (!*slot && (*slot = pop_new(ps->bs->nb)) != NULL)
        (*slot)->first = row;
    if (!*slot)
        ps->nomem[worker] = 1;
    return *slot;
}

static int fast_eligible(const calib_dataset *ds, const binspec *bs)
{
    return ds->kind == CALIB_TOPLABEL && ds->dtype == CALIB_F32 &&
           !ds->weights && bs->binning == CALIB_BINNING_WIDTH;
}

/* The running sums of one population without groups live in registers
 * and in a private table, not behind pointers into the population (which
 * the compiler would have to reload and store on every row).  A count and
 * its hits share one word (hits << 32), and a block of at most 2^22 rows
 * keeps every 64-bit sum from overflowing (2^22 * 2^41 = 2^63).  (Several
 * interleaved copies of the counters, against store-to-load chains when
 * rows hit the same bin, measured slower.) */
#define LOCAL_CELLS 258
#define BLOCK ((size_t)1 << 22)

typedef struct fast_sums {
    uint64_t ch[LOCAL_CELLS];           /* rows | correct rows << 32 */
    uint64_t cfx[LOCAL_CELLS];          /* sum p, units 2^-41 */
    double t[LOCAL_CELLS];              /* edges, padded for the rule */
} fast_sums;

/* width_slot without branches: the candidate c = floor(p M) is corrected
 * by one comparison on each side, with the outer edges of t[] set to
 * +-infinity so that no correction leaves [0, M).  Right-closed rules
 * (t[0] = -inf): b = c - [p <= t_c] + [p > t_{c+1}]; left-closed rules
 * (t[M] = +inf): b = c - [p < t_c] + [p >= t_{c+1}]. */
static inline __attribute__((always_inline)) size_t
fast_slot(double p, double mf, long m, const double *t, calib_bin_rule rule)
{
    long c = (long)(p * mf);
    c = c > m - 1 ? m - 1 : c;
    const int left =
        rule == CALIB_RULE_NETCAL || rule == CALIB_RULE_TORCHMETRICS;
    const long b = left ? c - (p < t[c]) + (p >= t[c + 1])
                        : c - (p <= t[c]) + (p > t[c + 1]);
    if (rule == CALIB_RULE_TORCHMETRICS)
        return p >= 1.0 ? (size_t)m : (size_t)b;
    if (rule == CALIB_RULE_GPLEISS || rule == CALIB_RULE_HOLLANCE)
        return p > 0.0 ? (size_t)b : (size_t)m + 1;
    return (size_t)b;
}

static inline __attribute__((always_inline)) void
fast_block(pop *P, fast_sums *f, const float *restrict conf,
           const uint8_t *restrict cor, size_t begin, size_t end, long m,
           calib_bin_rule rule)
{
    const double mf = (double)m;
    u128 p2 = 0;
    uint64_t pc = 0, fh = 0;
    for (size_t i = begin; i < end; i++) {
        double p = conf[i];
        p = p < 0.0 ? 0.0 : p;
        p = p > 1.0 ? 1.0 : p;
        const uint64_t c = cor[i];
        const size_t s = fast_slot(p, mf, m, f->t, rule);
        f->ch[s] += 1 + (c << 32);
        if (p >= FX_MIN) {
            const uint64_t q = (uint64_t)(p * FX_ONE);
            f->cfx[s] += q;
            p2 += (u128)q * q;
            pc += q & (0 - c);
            fh += c;
        } else {
            calib__xsum_add(&P->cells[s].conf, p);
            calib__xsum_add(&P->brier, (p - (double)c) * (p - (double)c));
        }
    }
    P->p2_fx += p2;
    P->pc_fx += pc;
    P->fast_hits += fh;
}

/* One loop per rule, so that the rule's tests fold away. */
static void fast_block_any(pop *P, fast_sums *f, const float *conf,
                           const uint8_t *cor, size_t begin, size_t end,
                           long m, calib_bin_rule rule)
{
    switch (rule) {
    case CALIB_RULE_NETCAL:
        fast_block(P, f, conf, cor, begin, end, m, CALIB_RULE_NETCAL);
        break;
    case CALIB_RULE_TORCHMETRICS:
        fast_block(P, f, conf, cor, begin, end, m, CALIB_RULE_TORCHMETRICS);
        break;
    case CALIB_RULE_GPLEISS:
    case CALIB_RULE_HOLLANCE:
        fast_block(P, f, conf, cor, begin, end, m, CALIB_RULE_GPLEISS);
        break;
    default:
        fast_block(P, f, conf, cor, begin, end, m, CALIB_RULE_SKLEARN);
    }
}

static void fast_plain(pop *P, const float *conf, const uint8_t *cor,
                       size_t begin, size_t end, const binspec *bs)
{
    fast_sums *f = malloc(sizeof *f);
    const int left = bs->rule == CALIB_RULE_NETCAL ||
                     bs->rule == CALIB_RULE_TORCHMETRICS;
    if (!f) { /* fall back on the pointer path rather than fail */
        for (size_t i = begin; i < end; i++)
            fast_row(P, conf[i], cor[i], bs);
        return;
    }
    for (size_t b0 = begin; b0 < end; b0 += BLOCK) {
        memset(f, 0, sizeof *f);
        memcpy(f->t, bs->edges, ((size_t)bs->m + 1) * sizeof *f->t);
        f->t[left ? bs->m : 0] = left ? INFINITY : -INFINITY;
        fast_block_any(P, f, conf, cor, b0,
                       end - b0 > BLOCK ? b0 + BLOCK : end, bs->m, bs->rule);
        for (size_t b = 0; b < P->n_cells; b++) {
            P->cells[b].count += f->ch[b] & 0xffffffffu;
            P->cells[b].plain_hits += f->ch[b] >> 32;
            P->cells[b].conf_fx += f->cfx[b];
        }
    }
    free(f);
}

static void fast_range(pass *ps, size_t begin, size_t end, int worker)
{
    const float *conf = ps->ds->conf;
    const uint8_t *cor = ps->ds->correct;
    const uint32_t *g = ps->ds->groups;
    if (!g) {
        pop *P = local_pop(ps, worker, 0, begin);
        if (P && P->n_cells <= LOCAL_CELLS)
            fast_plain(P, conf, cor, begin, end, ps->bs);
        for (size_t i = begin; P && P->n_cells > LOCAL_CELLS && i < end; i++)
            fast_row(P, conf[i], cor[i], ps->bs);
        return;
    }
    for (size_t i = begin; i < end; i++) {
        pop *P = ps->locals[(size_t)worker * ps->n_pops + g[i]];
        if (!P && !(P = local_pop(ps, worker, g[i], i)))
            continue;
        fast_row(P, conf[i], cor[i], ps->bs);
    }
}

/* Row i of the dataset as the general path sees it. */
static void load_row(const calib_dataset *ds, size_t i, rowval *r)
{
    r->weighted = ds->weights != NULL;
    r->w = ds->weights ? ds->weights[i] : 1.0;
    r->clipped = 0;
    if (ds->kind == CALIB_TOPLABEL) {
        r->p = calib__conf(ds, i);
        r->correct = ds->correct[i] != 0;
        r->brier = (r->p - r->correct) * (r->p - r->correct);
        r->nll = 0.0;
        return;
    }
    calib__row_eval(ds, i, 1.0, &r->p, &r->correct, &r->nll, &r->brier,
                    &r->clipped);
}

static void general_range(pass *ps, size_t begin, size_t end, int worker)
{
    const uint32_t *g = ps->ds->groups;
    for (size_t i = begin; i < end; i++) {
        const size_t gi = g ? g[i] : 0;
        pop *P = ps->locals[(size_t)worker * ps->n_pops + gi];
        if (!P && !(P = local_pop(ps, worker, gi, i)))
            continue;
        rowval r;
        load_row(ps->ds, i, &r);
        add_row(P, ps->bs, &r);
    }
}

/* The fast path counts rows of weight 1 as `count`; make `plain` agree. */
static void settle_fast(pop *P)
{
    for (size_t b = 0; b < P->n_cells; b++)
        P->cells[b].plain = P->cells[b].count;
}

static void pass_range(void *vctx, size_t begin, size_t end, int worker)
{
    pass *ps = vctx;
    if (!fast_eligible(ps->ds, ps->bs)) {
        general_range(ps, begin, end, worker);
        return;
    }
    fast_range(ps, begin, end, worker);
    for (size_t g = 0; g < ps->n_pops; g++) {
        pop *P = ps->locals[(size_t)worker * ps->n_pops + g];
        if (P)
            settle_fast(P);
    }
}

static void pass_free(pass *ps, int workers)
{
    for (size_t j = 0; ps->locals && j < (size_t)workers * ps->n_pops; j++)
        pop_free(ps->locals[j]);
    free(ps->locals);
}

/* Runs the pass over every row of ds; on success ps->locals holds the
 * workers' populations and *workers their number. */
static int pass_run(pass *ps, const calib_dataset *ds, const binspec *bs,
                    int threads, int *workers)
{
    memset(ps, 0, sizeof *ps);
    ps->ds = ds;
    ps->bs = bs;
    ps->n_pops = ds->groups ? ds->n_groups : 1;
    const int tmax = calib__threads(threads);
    ps->locals = calloc((size_t)tmax * ps->n_pops, sizeof *ps->locals);
    if (!ps->locals)
        return CALIB_ENOMEM;
    const size_t grain = ds->kind == CALIB_TOPLABEL ? 65536 : 4096;
    *workers = calib__parallel_for(ds->n, threads, grain, pass_range, ps);
    for (int w = 0; w < *workers; w++)
        if (ps->nomem[w]) {
            pass_free(ps, tmax);
            return CALIB_ENOMEM;
        }
    return CALIB_OK;
}

/* ------------------------------------------------------------------ */
/* From exact sums to metrics                                          */
/* ------------------------------------------------------------------ */

/* Where the rows came from, for the fields that are not sums. */
typedef struct family {
    int top;              /* top-label rows (no NLL, top-label Brier) */
    size_t classes;
    int from_probs;
} family;

typedef struct totals {
    calib__xsum w, hit, conf, w_ece;
    uint64_t plain, plain_hits, n, n_ece;
    u128 conf_fx;
} totals;

static void totals_add(totals *t, const cell *c, int in_ece)
{
    calib__xsum_merge(&t->w, &c->weight);
    calib__xsum_merge(&t->hit, &c->hit);
    calib__xsum_merge(&t->conf, &c->conf);
    t->plain += c->plain;
    t->plain_hits += c->plain_hits;
    t->conf_fx += c->conf_fx;
    t->n += c->count;
    if (in_ece) {
        calib__xsum_merge(&t->w_ece, &c->weight);
        calib__xsum_add(&t->w_ece, (double)c->plain);
        t->n_ece += c->count;
    }
}

/* Rounds a cell's weight, sum of w p and sum of w [correct]. */
static void cell_round(const cell *c, double *w, double *conf, double *hit)
{
    calib__xsum s = c->weight;
    calib__xsum_add(&s, (double)c->plain);
    *w = calib__xsum_round(&s);
    s = c->conf;
    xsum_add_fx(&s, c->conf_fx, -41);
    *conf = calib__xsum_round(&s);
    s = c->hit;
    calib__xsum_add(&s, (double)c->plain_hits);
    *hit = calib__xsum_round(&s);
}

/* Bin b's edges for the table. */
static void bin_bounds(const binspec *bs, size_t b, double *lo, double *hi)
{
    if (bs->binning == CALIB_BINNING_MASS) {
        *lo = b ? bs->edges[b - 1] : 0.0;
        *hi = bs->edges[b];
    } else if (b == (size_t)bs->m) {
        *lo = *hi = 1.0; /* torchmetrics' bin of p = 1 */
    } else {
        *lo = bs->edges[b];
        *hi = bs->edges[b + 1];
    }
}

/* The bins table and ECE/MCE/RMSCE over it; w_ece is the ECE's W. */
static void fill_bins(calib_metrics *m, const pop *P, const binspec *bs,
                      double w_ece)
{
    double ece = 0.0, mce = 0.0, ms = 0.0;
    for (size_t b = 0; b < m->n_bins; b++) {
        calib_bin *bin = &m->bins[b];
        double w, conf, hit;
        cell_round(&P->cells[b], &w, &conf, &hit);
        bin_bounds(bs, b, &bin->lower, &bin->upper);
        bin->count = (size_t)P->cells[b].count;
        bin->weight = w;
        bin->mean_confidence = w > 0.0 ? conf / w : NAN;
        bin->accuracy = w > 0.0 ? hit / w : NAN;
        if (!(w > 0.0))
            continue;
        /* ECE = sum_b (W_b/W) |acc_b - conf_b|  (Guo et al. 2017) */
        const double gap = fabs(bin->accuracy - bin->mean_confidence);
        ece += w / w_ece * gap;
        ms += w / w_ece * gap * gap;
        mce = gap > mce ? gap : mce;
    }
    m->ece = ece;
    m->mce = mce;
    m->rmsce = sqrt(ms);
}

/* sum w Brier: the general part plus the fast path's
 * sum p^2 - 2 sum_{c=1} p + sum c, all exact. */
static double brier_sum(const pop *P)
{
    calib__xsum s = P->brier;
    xsum_add_fx(&s, P->p2_fx, -82);
    xsum_add_fx_neg(&s, P->pc_fx, -40);
    calib__xsum_add(&s, (double)P->fast_hits);
    return calib__xsum_round(&s);
}

static calib_metrics *metrics_from(const pop *P, const binspec *bs,
                                   const family *f)
{
    calib_metrics *m = calloc(1, sizeof *m);
    const int torch = bs->binning == CALIB_BINNING_WIDTH &&
                      bs->rule == CALIB_RULE_TORCHMETRICS;
    const int hollance = bs->binning == CALIB_BINNING_WIDTH &&
                         bs->rule == CALIB_RULE_HOLLANCE;
    if (!m || !(m->bins = calloc(bs->nb + 1, sizeof *m->bins))) {
        free(m);
        return NULL;
    }
    totals t;
    memset(&t, 0, sizeof t);
    for (size_t b = 0; b < P->n_cells; b++)
        totals_add(&t, &P->cells[b], !(hollance && b == bs->nb + 1));
    calib__xsum_add(&t.w, (double)t.plain);
    calib__xsum_add(&t.hit, (double)t.plain_hits);
    xsum_add_fx(&t.conf, t.conf_fx, -41);
    m->n = (size_t)t.n;
    m->weight = calib__xsum_round(&t.w);
    m->classes = f->top ? 0 : f->classes;
    m->accuracy = calib__xsum_round(&t.hit) / m->weight;
    m->mean_confidence = calib__xsum_round(&t.conf) / m->weight;
    m->nll = f->top ? NAN : calib__xsum_round(&P->nll) / m->weight;
    m->nll_clipped_rows = (size_t)P->clipped;
    m->nll_from_probs = f->from_probs;
    m->brier = brier_sum(P) / m->weight;
    m->brier_kind = f->top ? CALIB_BRIER_TOPLABEL : CALIB_BRIER_MULTICLASS;
    m->binning = bs->binning;
    m->rule = bs->rule;
    m->ece_n = (size_t)t.n_ece;
    m->n_bins = bs->nb + (size_t)torch;
    fill_bins(m, P, bs, calib__xsum_round(&t.w_ece));
    return m;
}

void calib_metrics_free(calib_metrics *m)
{
    if (!m)
        return;
    for (size_t g = 0; g < m->n_groups; g++) {
        if (m->group_names)
            free(m->group_names[g]);
        if (m->groups)
            calib_metrics_free(m->groups[g]);
    }
    free(m->group_names);
    free(m->groups);
    free(m->bins);
    free(m);
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

void calib_eval_options_init(calib_eval_options *opt)
{
    opt->bins = 15;
    opt->binning = CALIB_BINNING_WIDTH;
    opt->rule = CALIB_RULE_SKLEARN;
    opt->threads = 0;
}

static int check_options(const calib_eval_options *o, calib_error *err)
{
    if (o->bins < 1 || o->bins > 1000000)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "bins must be 1 .. 1000000, not %d", o->bins);
    if (o->binning != CALIB_BINNING_WIDTH && o->binning != CALIB_BINNING_MASS)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown binning %d", (int)o->binning);
    if ((unsigned)o->rule > CALIB_RULE_HOLLANCE)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown bin rule %d", (int)o->rule);
    return CALIB_OK;
}

/* ------------------------------------------------------------------ */
/* The streaming accumulator (equal-width)                             */
/* ------------------------------------------------------------------ */

struct calib_accum {
    calib_eval_options opt;
    binspec bs;
    double *edges;
    int kind_seen;        /* 0: nothing yet, 1: top-label, 2: distribution */
    size_t classes;       /* SIZE_MAX until a distribution chunk */
    int from_probs;
    pop *all;
    size_t n_groups, cap_groups;
    char **names;
    pop **groups;
};

void calib_accum_free(calib_accum *a)
{
    if (!a)
        return;
    for (size_t g = 0; g < a->n_groups; g++) {
        free(a->names[g]);
        pop_free(a->groups[g]);
    }
    free(a->names);
    free(a->groups);
    pop_free(a->all);
    free(a->edges);
    free(a);
}

int calib_accum_new(const calib_eval_options *opt, calib_accum **out,
                    calib_error *err)
{
    calib_eval_options o;
    if (out)
        *out = NULL;
    if (!out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0, "NULL output");
    if (opt)
        o = *opt;
    else
        calib_eval_options_init(&o);
    int rc = check_options(&o, err);
    if (rc == CALIB_OK && o.binning == CALIB_BINNING_MASS)
        rc = calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                         "equal-mass binning needs every confidence; "
                         "it cannot be streamed");
    if (rc != CALIB_OK)
        return rc;
    calib_accum *a = calloc(1, sizeof *a);
    if (a) {
        a->edges = malloc(((size_t)o.bins + 1) * sizeof *a->edges);
        a->all = pop_new((size_t)o.bins);
    }
    if (!a || !a->edges || !a->all) {
        calib_accum_free(a);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    for (int k = 0; k <= o.bins; k++)
        a->edges[k] = (double)k / o.bins; /* e_k, one correct rounding */
    a->opt = o;
    a->bs = (binspec){CALIB_BINNING_WIDTH, o.rule, o.bins, a->edges,
                      (size_t)o.bins};
    a->classes = SIZE_MAX;
    *out = a;
    return calib__ok(err);
}

/* Index of the group named `name`, appended (empty) when new; SIZE_MAX
 * when out of memory. */
static size_t group_index(calib_accum *a, const char *name)
{
    for (size_t g = 0; g < a->n_groups; g++)
        if (strcmp(a->names[g], name) == 0)
            return g;
    if (a->n_groups == a->cap_groups) {
        const size_t cap = a->cap_groups ? 2 * a->cap_groups : 8;
        char **nn = realloc(a->names, cap * sizeof *nn);
        if (nn)
            a->names = nn;
        pop **ng = nn ? realloc(a->groups, cap * sizeof *ng) : NULL;
        if (!ng)
            return SIZE_MAX;
        a->groups = ng;
        a->cap_groups = cap;
    }
    char *copy = strdup(name);
    pop *p = copy ? pop_new(a->bs.nb) : NULL;
    if (!p) {
        free(copy);
        return SIZE_MAX;
    }
    a->names[a->n_groups] = copy;
    a->groups[a->n_groups] = p;
    return a->n_groups++;
}

/* Records what kind of rows come in; top-label and distribution rows do
 * not mix (their NLL and Brier mean different things). */
static int note_kind(calib_accum *a, int top, size_t classes, int probs,
                     calib_error *err)
{
    if (a->kind_seen && a->kind_seen != (top ? 1 : 2))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "cannot mix top-label and distribution rows");
    a->kind_seen = top ? 1 : 2;
    if (!top) {
        a->classes = a->classes == SIZE_MAX || a->classes == classes
                         ? classes
                         : 0;
        a->from_probs |= probs;
    }
    return CALIB_OK;
}

/* The chunk's groups that have rows, in the order of their first row. */
static size_t chunk_order(const pass *ps, int workers, size_t *order,
                          size_t *first)
{
    size_t k = 0;
    for (size_t g = 0; g < ps->n_pops; g++) {
        first[g] = SIZE_MAX;
        for (int w = 0; w < workers && first[g] == SIZE_MAX; w++) {
            const pop *P = ps->locals[(size_t)w * ps->n_pops + g];
            if (P)
                first[g] = P->first;
        }
        if (first[g] != SIZE_MAX)
            order[k++] = g;
    }
    for (size_t i = 1; i < k; i++) /* insertion sort: k is small */
        for (size_t j = i; j > 0 && first[order[j]] < first[order[j - 1]]; j--) {
            const size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return k;
}

/* Merges the workers' populations of a grouped chunk into a. */
static int merge_groups(calib_accum *a, const pass *ps, int workers)
{
    size_t *order = malloc(2 * ps->n_pops * sizeof *order);
    if (!order)
        return CALIB_ENOMEM;
    const size_t k = chunk_order(ps, workers, order, order + ps->n_pops);
    int rc = CALIB_OK;
    for (size_t j = 0; j < k && rc == CALIB_OK; j++) {
        const size_t g = order[j];
        const size_t ag = group_index(a, ps->ds->group_names[g]);
        if (ag == SIZE_MAX) {
            rc = CALIB_ENOMEM;
            break;
        }
        for (int w = 0; w < workers; w++) {
            const pop *P = ps->locals[(size_t)w * ps->n_pops + g];
            if (P) {
                pop_merge(a->groups[ag], P);
                pop_merge(a->all, P);
            }
        }
    }
    free(order);
    return rc;
}

int calib_accum_add(calib_accum *a, const calib_dataset *chunk,
                    calib_error *err)
{
    if (!a || !chunk)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL accumulator or chunk");
    int rc = note_kind(a, chunk->kind == CALIB_TOPLABEL, chunk->k,
                       chunk->kind == CALIB_PROBS, err);
    if (rc != CALIB_OK || chunk->n == 0)
        return rc == CALIB_OK ? calib__ok(err) : rc;
    pass ps = {0};
    int workers = 1;
    rc = pass_run(&ps, chunk, &a->bs, a->opt.threads, &workers);
    if (rc == CALIB_OK && chunk->groups)
        rc = merge_groups(a, &ps, workers);
    else if (rc == CALIB_OK)
        for (int w = 0; w < workers; w++)
            if (ps.locals[w])
                pop_merge(a->all, ps.locals[w]);
    if (ps.locals)
        pass_free(&ps, calib__threads(a->opt.threads));
    if (rc != CALIB_OK)
        return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    return calib__ok(err);
}

int calib_accum_merge(calib_accum *dst, const calib_accum *src,
                      calib_error *err)
{
    if (!dst || !src)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL accumulator");
    if (dst->opt.bins != src->opt.bins || dst->opt.rule != src->opt.rule)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "accumulators with different bins or bin rules");
    if (src->kind_seen) {
        const int rc = note_kind(dst, src->kind_seen == 1, src->classes,
                                 src->from_probs, err);
        if (rc != CALIB_OK)
            return rc;
    }
    for (size_t g = 0; g < src->n_groups; g++) {
        const size_t dg = group_index(dst, src->names[g]);
        if (dg == SIZE_MAX)
            return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                               "out of memory");
        pop_merge(dst->groups[dg], src->groups[g]);
    }
    pop_merge(dst->all, src->all);
    return calib__ok(err);
}

static family accum_family(const calib_accum *a)
{
    family f = {a->kind_seen != 2, a->classes == SIZE_MAX ? 0 : a->classes,
                a->from_probs};
    return f;
}

static uint64_t pop_rows(const pop *P)
{
    uint64_t n = 0;
    for (size_t b = 0; b < P->n_cells; b++)
        n += P->cells[b].count;
    return n;
}

/* Gives m room for n_groups groups' metrics, with copies of their names. */
static int attach_groups(calib_metrics *m, size_t n_groups,
                         char *const *names)
{
    m->n_groups = n_groups;
    m->group_names = calloc(n_groups ? n_groups : 1, sizeof *m->group_names);
    m->groups = calloc(n_groups ? n_groups : 1, sizeof *m->groups);
    if (!m->group_names || !m->groups)
        return CALIB_ENOMEM;
    for (size_t g = 0; g < n_groups; g++)
        if (!(m->group_names[g] = strdup(names[g])))
            return CALIB_ENOMEM;
    return CALIB_OK;
}

int calib_accum_result(const calib_accum *a, calib_metrics **out,
                       calib_error *err)
{
    if (out)
        *out = NULL;
    if (!a || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL accumulator or output");
    if (pop_rows(a->all) == 0)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0, "no rows");
    const family f = accum_family(a);
    calib_metrics *m = metrics_from(a->all, &a->bs, &f);
    int rc = m ? CALIB_OK : CALIB_ENOMEM;
    if (rc == CALIB_OK && a->n_groups)
        rc = attach_groups(m, a->n_groups, a->names);
    for (size_t g = 0; rc == CALIB_OK && g < a->n_groups; g++)
        if (!(m->groups[g] = metrics_from(a->groups[g], &a->bs, &f)))
            rc = CALIB_ENOMEM;
    if (rc != CALIB_OK) {
        calib_metrics_free(m);
        return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    }
    *out = m;
    return calib__ok(err);
}

/* ------------------------------------------------------------------ */
/* Equal-mass evaluation over a top-label projection                   */
/* ------------------------------------------------------------------ */

/* Every row as (conf, correct, weight, Brier, NLL, clipped).  Arrays may
 * be NULL: weights (all 1), brier (top-label: (p - c)^2), nll and clipped
 * (top-label rows). */
typedef struct proj {
    size_t n;
    const double *conf;
    const uint8_t *correct;
    const double *weights;
    const double *brier, *nll;
    const uint8_t *clipped;
} proj;

typedef struct proj_pass {
    const proj *pj;
    const binspec *bs;
    pop *locals[MAX_WORKERS];
} proj_pass;

static void proj_range(void *vctx, size_t begin, size_t end, int worker)
{
    proj_pass *pp = vctx;
    const proj *pj = pp->pj;
    pop *P = pp->locals[worker] = pop_new(pp->bs->nb);
    for (size_t i = begin; P && i < end; i++) {
        rowval r = {pj->conf[i], pj->weights ? pj->weights[i] : 1.0, 0.0,
                    pj->nll ? pj->nll[i] : 0.0, pj->correct[i],
                    pj->clipped ? pj->clipped[i] : 0, pj->weights != NULL};
        r.brier = pj->brier ? pj->brier[i]
                            : (r.p - r.correct) * (r.p - r.correct);
        add_row(P, pp->bs, &r);
    }
}

/* The metrics of a projection under its own equal-mass edges. */
static calib_metrics *mass_metrics(const proj *pj, const calib_eval_options *o,
                                   const family *f)
{
    double *edges = NULL;
    size_t ne = 0;
    if (calib__mass_edges(pj->conf, pj->n, o->bins, o->threads, &edges,
                          &ne) != CALIB_OK)
        return NULL;
    const binspec bs = {CALIB_BINNING_MASS, o->rule, o->bins, edges, ne};
    proj_pass pp;
    memset(&pp, 0, sizeof pp);
    pp.pj = pj;
    pp.bs = &bs;
    const int used =
        calib__parallel_for(pj->n, o->threads, 16384, proj_range, &pp);
    pop *all = pop_new(ne);
    int ok = all != NULL;
    for (int w = 0; w < used; w++) {
        ok = ok && pp.locals[w];
        if (ok)
            pop_merge(all, pp.locals[w]);
        pop_free(pp.locals[w]);
    }
    calib_metrics *m = ok ? metrics_from(all, &bs, f) : NULL;
    pop_free(all);
    free(edges);
    return m;
}

/* Owned arrays of a projection. */
typedef struct proj_buf {
    proj pj;
    double *conf, *weights, *brier, *nll;
    uint8_t *correct, *clipped;
} proj_buf;

static void proj_buf_free(proj_buf *b)
{
    free(b->conf);
    free(b->weights);
    free(b->brier);
    free(b->nll);
    free(b->correct);
    free(b->clipped);
}

/* Allocates a projection of n rows, with weights and with the
 * distribution rows' Brier/NLL/clipped arrays when asked. */
static int proj_buf_alloc(proj_buf *b, size_t n, int weighted, int dist)
{
    const size_t m = n ? n : 1;
    memset(b, 0, sizeof *b);
    b->conf = malloc(m * sizeof *b->conf);
    b->correct = malloc(m);
    if (weighted)
        b->weights = malloc(m * sizeof *b->weights);
    if (dist) {
        b->brier = malloc(m * sizeof *b->brier);
        b->nll = malloc(m * sizeof *b->nll);
        b->clipped = malloc(m);
    }
    b->pj = (proj){n, b->conf, b->correct, b->weights, b->brier, b->nll,
                   b->clipped};
    if (!b->conf || !b->correct || (weighted && !b->weights) ||
        (dist && (!b->brier || !b->nll || !b->clipped))) {
        proj_buf_free(b);
        memset(b, 0, sizeof *b);
        return CALIB_ENOMEM;
    }
    return CALIB_OK;
}

typedef struct project_ctx {
    const calib_dataset *ds;
    proj_buf *b;
} project_ctx;

static void project_range(void *vctx, size_t begin, size_t end, int worker)
{
    const project_ctx *c = vctx;
    proj_buf *b = c->b;
    for (size_t i = begin; i < end; i++) {
        rowval r;
        load_row(c->ds, i, &r);
        b->conf[i] = r.p;
        b->correct[i] = (uint8_t)r.correct;
        if (b->brier) {
            b->brier[i] = r.brier;
            b->nll[i] = r.nll;
            b->clipped[i] = (uint8_t)r.clipped;
        }
    }
}

/* Projects every row of ds; weights are borrowed from ds. */
static int project(const calib_dataset *ds, int threads, proj_buf *b)
{
    const int top = ds->kind == CALIB_TOPLABEL;
    if (proj_buf_alloc(b, ds->n, 0, !top) != CALIB_OK)
        return CALIB_ENOMEM;
    b->pj.weights = ds->weights;
    project_ctx c = {ds, b};
    calib__parallel_for(ds->n, threads, top ? 65536 : 4096, project_range, &c);
    return CALIB_OK;
}

/* The rows of group g, copied out of the projection in row order. */
static int gather_group(const proj *all, const uint32_t *groups, uint32_t g,
                        size_t count, proj_buf *b)
{
    if (proj_buf_alloc(b, count, all->weights != NULL,
                       all->brier != NULL) != CALIB_OK)
        return CALIB_ENOMEM;
    for (size_t i = 0, j = 0; i < all->n; i++) {
        if (groups[i] != g)
            continue;
        b->conf[j] = all->conf[i];
        b->correct[j] = all->correct[i];
        if (b->weights)
            b->weights[j] = all->weights[i];
        if (b->brier) {
            b->brier[j] = all->brier[i];
            b->nll[j] = all->nll[i];
            b->clipped[j] = all->clipped[i];
        }
        j++;
    }
    return CALIB_OK;
}

/* Group indices in first-appearance order with their row counts. */
static size_t group_order(const calib_dataset *ds, uint32_t *order,
                          size_t *count)
{
    size_t k = 0;
    memset(count, 0, ds->n_groups * sizeof *count);
    for (size_t i = 0; i < ds->n; i++)
        if (count[ds->groups[i]]++ == 0)
            order[k++] = ds->groups[i];
    return k;
}

/* Each group's metrics under its own equal-mass edges: the edges are a
 * property of the rows they are computed from, so a group evaluated here
 * equals that group evaluated alone. */
static int mass_groups(const calib_dataset *ds, const proj *all,
                       const calib_eval_options *o, const family *f,
                       calib_metrics *m)
{
    uint32_t *order = malloc(ds->n_groups * sizeof *order + 1);
    size_t *count = malloc(ds->n_groups * sizeof *count + 1);
    char **names = malloc(ds->n_groups * sizeof *names + 1);
    int rc = order && count && names ? CALIB_OK : CALIB_ENOMEM;
    const size_t k = rc == CALIB_OK ? group_order(ds, order, count) : 0;
    for (size_t j = 0; j < k; j++)
        names[j] = ds->group_names[order[j]];
    if (rc == CALIB_OK)
        rc = attach_groups(m, k, names);
    for (size_t j = 0; rc == CALIB_OK && j < k; j++) {
        proj_buf b;
        rc = gather_group(all, ds->groups, order[j], count[order[j]], &b);
        if (rc != CALIB_OK)
            break;
        if (!(m->groups[j] = mass_metrics(&b.pj, o, f)))
            rc = CALIB_ENOMEM;
        proj_buf_free(&b);
    }
    free(order);
    free(count);
    free(names);
    return rc;
}

static int evaluate_mass(const calib_dataset *ds, const calib_eval_options *o,
                         calib_metrics **out)
{
    const family f = {ds->kind == CALIB_TOPLABEL, ds->k,
                      ds->kind == CALIB_PROBS};
    proj_buf b;
    if (project(ds, o->threads, &b) != CALIB_OK)
        return CALIB_ENOMEM;
    calib_metrics *m = mass_metrics(&b.pj, o, &f);
    int rc = m ? CALIB_OK : CALIB_ENOMEM;
    if (rc == CALIB_OK && ds->groups && ds->n_groups)
        rc = mass_groups(ds, &b.pj, o, &f, m);
    proj_buf_free(&b);
    if (rc != CALIB_OK)
        calib_metrics_free(m);
    else
        *out = m;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Whole-dataset evaluation                                            */
/* ------------------------------------------------------------------ */

static int evaluate_width(const calib_dataset *ds, const calib_eval_options *o,
                          calib_metrics **out, calib_error *err)
{
    calib_accum *a = NULL;
    int rc = calib_accum_new(o, &a, err);
    if (rc == CALIB_OK)
        rc = calib_accum_add(a, ds, err);
    if (rc == CALIB_OK)
        rc = calib_accum_result(a, out, err);
    calib_accum_free(a);
    return rc;
}

int calib_evaluate(const calib_dataset *ds, const calib_eval_options *opt,
                   calib_metrics **out, calib_error *err)
{
    calib_eval_options o;
    if (out)
        *out = NULL;
    if (!ds || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL dataset or output");
    if (opt)
        o = *opt;
    else
        calib_eval_options_init(&o);
    int rc = check_options(&o, err);
    if (rc != CALIB_OK)
        return rc;
    if (ds->n == 0)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0, "no rows");
    if (o.binning == CALIB_BINNING_WIDTH)
        return evaluate_width(ds, &o, out, err);
    if (evaluate_mass(ds, &o, out) != CALIB_OK)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    return calib__ok(err);
}

int calib__evaluate_toplabel(size_t n, const double *conf,
                             const uint8_t *correct, const double *weights,
                             const calib_eval_options *opt,
                             calib_metrics **out, calib_error *err)
{
    calib_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.kind = CALIB_TOPLABEL;
    ds.dtype = CALIB_F64;
    ds.n = n;
    ds.conf = conf;
    ds.correct = correct;
    ds.weights = weights;
    return calib_evaluate(&ds, opt, out, err);
}
