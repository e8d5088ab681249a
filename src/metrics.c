/* metrics.c — accuracy, ECE, MCE, RMSCE, NLL, Brier and reliability tables
 * from exact per-bin sums; the per-row kernels; calib_evaluate.
 *
 * Every row lands in one cell (its bin; torchmetrics' [1,1] bin; or "no
 * bin" for gpleiss/hollance p = 0) of its population (the whole set, and
 * its group).  A cell keeps exact sums: integer counts for rows of weight
 * 1, superaccumulators (xsum.c) for weighted rows.  Because every sum is
 * exact until the one rounding at the end, per-thread and per-shard cells
 * merge into bit-identical results whatever the split.  accum.c fills the
 * cells (width_f32.c on its hot path), mass.c does equal-mass binning;
 * this file turns the sums into metrics.
 *
 * Metric formulas (calib.h): ECE = sum_b (W_b/W) |acc_b - conf_b| (Guo et
 * al. 2017), MCE = max over non-empty bins, RMSCE = sqrt(sum_b (W_b/W)
 * (acc_b - conf_b)^2), where W_b is the bin's weight (its count without
 * weights) and W the weight of the ECE's rows (all rows; hollance leaves
 * out p = 0).
 */
#include "metrics.h"
#include "extra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NLL_CLIP 1e-15  /* scikit-learn's log_loss eps */

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

/* The largest unscaled logit of the row, and its first index in *arg. */
static double row_max(const calib_dataset *ds, size_t b, size_t len,
                      size_t *arg)
{
    double top = -INFINITY;
    for (size_t j = 0; j < len; j++) {
        const double z = logit(ds, b + j, 1.0);
        if (z > top) {
            top = z;
            *arg = j;
        }
    }
    return top;
}

/* z_j - z_max at beta: the scaled logits' difference, or after an
 * overflow, beta times the unscaled one. */
static double shifted(const calib_dataset *ds, size_t j, double beta,
                      int over, double zmax, double rmax)
{
    return over ? beta * (logit(ds, j, 1.0) - rmax)
                : logit(ds, j, beta) - zmax;
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
    /* beta z can overflow where z does not (T small, |z| near 1e308): then
     * the shift is taken before the scaling, beta (z_k - z_max), which
     * cannot give inf - inf (NaN); the prediction is the unscaled one. */
    const int over = isinf(zmax);
    const double rmax = over ? row_max(ds, b, len, &arg) : 0.0;
    double s = 0.0, other = 0.0, other2 = 0.0;
    for (size_t j = 0; j < len; j++) {
        const double e = exp(shifted(ds, b + j, beta, over, zmax, rmax));
        s += e;
        if ((int)j != y) {
            other += e;
            other2 += e * e;
        }
    }
    const double dy = shifted(ds, b + (size_t)y, beta, over, zmax, rmax);
    if (conf)
        *conf = 1.0 / s;
    if (correct)
        *correct = (int)arg == y;
    if (nll)
        *nll = log(s) - dy;
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
/* From exact sums to metrics                                          */
/* ------------------------------------------------------------------ */

/* Row i of the dataset as the general path sees it. */
void calib__load_row(const calib_dataset *ds, size_t i, rowval *r)
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
    /* No weight in the ECE's n (every weight 0, or hollance with every
     * p = 0): 0/0, not a perfect score. */
    m->ece = w_ece > 0.0 ? ece : NAN;
    m->mce = w_ece > 0.0 ? mce : NAN;
    m->rmsce = w_ece > 0.0 ? sqrt(ms) : NAN;
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

/* Slack for sums of rounded products w p compared with their bounds:
 * relative for the rounding of each product, and 2^-159 a row for the
 * parts below 2^-160 that the superaccumulator drops (tiny weights). */
#define SUM_SLACK 1e-13
#define ROW_SLACK 0x1p-159

/* Cell b's sums against what rows can give: weights >= 0, hits in
 * [0, weight], confidences within the cell's edges times its weight. */
static int cell_check(const cell *c, const binspec *bs, size_t b, double *w,
                      char *why, size_t size)
{
    double conf, hit, lo = 0.0, hi = 0.0; /* "no bin" holds p = 0 only */
    cell_round(c, w, &conf, &hit);
    if (b <= (size_t)bs->m)
        bin_bounds(bs, b, &lo, &hi);
    const double slack = SUM_SLACK * *w + ROW_SLACK * (double)c->count;
    if (!(calib__xsum_round(&c->weight) >= 0.0) || !(*w >= 0.0))
        snprintf(why, size, "cells[%zu]: weight %g is negative", b, *w);
    else if (!(hit >= 0.0 && hit <= *w))
        snprintf(why, size, "cells[%zu]: hits %g outside [0, weight %g]", b,
                 hit, *w);
    else if (isfinite(*w) &&
             !(conf >= lo * *w - slack && conf <= hi * *w + slack))
        snprintf(why, size, "cells[%zu]: confidences sum to %.17g, "
                            "outside [%g, %g] times the weight %.17g", b,
                 conf, lo, hi, *w);
    else
        return 0;
    return 1;
}

int calib__pop_check(const pop *P, const binspec *bs, int top, char *why,
                     size_t size)
{
    double total = 0.0, rows = 0.0, w;
    for (size_t b = 0; b < P->n_cells; b++) {
        if (P->cells[b].count && cell_check(&P->cells[b], bs, b, &w, why,
                                            size))
            return 1;
        total += P->cells[b].count ? w : 0.0;
        rows += (double)P->cells[b].count;
    }
    const double brier = brier_sum(P), nll = calib__xsum_round(&P->nll);
    const double most = (top ? 1.0 : 2.0) * total;
    const double slack = SUM_SLACK * most + ROW_SLACK * rows;
    if (!(brier >= -slack && brier <= most + slack))
        snprintf(why, size, "the Brier sum %g is outside [0, %g]", brier,
                 most);
    else if (top ? nll != 0.0 : !(nll >= 0.0))
        snprintf(why, size, "the NLL sum %g is %s", nll,
                 top ? "not 0 for top-label rows" : "negative or NaN");
    else
        return 0;
    return 1;
}

calib_metrics *calib__metrics_from(const pop *P, const binspec *bs,
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
    calib__metrics_clear_extra(m);
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
    const double w_ece = calib__xsum_round(&t.w_ece);
    fill_bins(m, P, bs, w_ece);
    double w_out, conf_out, hit_out;
    cell_round(&P->cells[bs->nb + 1], &w_out, &conf_out, &hit_out);
    calib__bin_extras(m, w_ece, w_out, hit_out);
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
    opt->extra = CALIB_EXTRA_ALL;
    opt->bootstrap = 0;
    opt->ci_level = 0.95;
    opt->seed = 0;
    opt->scores = 1;
}

int calib__check_eval_options(const calib_eval_options *o, calib_error *err)
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
    if (o->extra & ~(unsigned)CALIB_EXTRA_ALL)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown extra-metric bits 0x%x", o->extra);
    if (o->scores != 0 && o->scores != 1)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "scores must be 0 or 1, not %d", o->scores);
    if (o->bootstrap < 0 || o->bootstrap > 1000000)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "bootstrap resamples must be 0 .. 1000000, not %d",
                           o->bootstrap);
    if (o->bootstrap > 0 && !(o->ci_level > 0.0 && o->ci_level < 1.0))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "the interval level must be a fraction in (0, 1), "
                           "not %g (0.95 means 95 %%)", o->ci_level);
    return CALIB_OK;
}

void calib__drop_scores(calib_metrics *m)
{
    m->nll = m->brier = NAN;
    m->nll_clipped_rows = 0;
    for (int e = 0; e < 2; e++)
        m->ci[CALIB_M_NLL][e] = m->ci[CALIB_M_BRIER][e] = NAN;
    for (size_t g = 0; g < m->n_groups; g++)
        if (m->groups[g])
            calib__drop_scores(m->groups[g]);
}

/* Gives m room for n_groups groups' metrics, with copies of their names. */
int calib__attach_groups(calib_metrics *m, size_t n_groups,
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

/* ------------------------------------------------------------------ */
/* Whole-dataset evaluation                                            */
/* ------------------------------------------------------------------ */

/* With check: ds is a calib__dataset_view whose rows are checked in the
 * pass (clamps counted into *check). */
static int evaluate_width(const calib_dataset *ds, const calib_eval_options *o,
                          calib_read_stats *check, calib_metrics **out,
                          calib_error *err)
{
    calib_accum *a = NULL;
    int rc = calib_accum_new(o, &a, err);
    if (rc == CALIB_OK)
        a->skip_p2 = !o->scores; /* a's sums are never seen: see scores */
    if (rc == CALIB_OK)
        rc = check ? calib__accum_add_checked(a, ds, check, err)
                   : calib_accum_add(a, ds, err);
    if (rc == CALIB_OK)
        rc = calib_accum_result(a, out, err);
    calib_accum_free(a);
    return rc;
}

/* *o = *opt, or the defaults for NULL, checked. */
static int take_options(const calib_eval_options *opt, calib_eval_options *o,
                        calib_error *err)
{
    if (opt)
        *o = *opt;
    else
        calib_eval_options_init(o);
    return calib__check_eval_options(o, err);
}

/* calib_evaluate with options taken; with check as in evaluate_width. */
static int evaluate(const calib_dataset *ds, const calib_eval_options *o,
                    calib_read_stats *check, calib_metrics **out,
                    calib_error *err)
{
    int rc;
    if (ds->n == 0)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0, "no rows");
    if (o->binning == CALIB_BINNING_WIDTH) {
        if ((rc = evaluate_width(ds, o, check, out, err)) != CALIB_OK)
            return rc;
    } else {
        rc = calib__evaluate_mass(ds, o, out);
    }
    if (rc == CALIB_OK && (rc = calib__evaluate_extra(ds, o, *out)) != CALIB_OK) {
        calib_metrics_free(*out);
        *out = NULL;
    }
    if (rc != CALIB_OK)
        return calib__fail(err, rc, NULL, 0, 0, 0, "%s",
                           rc == CALIB_ENOMEM ? "out of memory"
                                              : "internal error");
    /* last: the replicates call calib_evaluate for every other metric */
    if (rc == CALIB_OK && o->bootstrap > 0 &&
        (rc = calib__bootstrap(ds, o, *out, err)) != CALIB_OK) {
        calib_metrics_free(*out);
        *out = NULL;
    }
    if (rc == CALIB_OK && !o->scores)
        calib__drop_scores(*out);
    return rc == CALIB_OK ? calib__ok(err) : rc;
}

int calib_evaluate(const calib_dataset *ds, const calib_eval_options *opt,
                   calib_metrics **out, calib_error *err)
{
    if (out)
        *out = NULL;
    if (!ds || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL dataset or output");
    calib_eval_options o;
    const int rc = take_options(opt, &o, err);
    return rc == CALIB_OK ? evaluate(ds, &o, NULL, out, err) : rc;
}

int calib_evaluate_arrays(const calib_arrays *a, const calib_eval_options *opt,
                          calib_metrics **out, calib_read_stats *stats,
                          calib_error *err)
{
    if (out)
        *out = NULL;
    if (stats)
        *stats = (calib_read_stats){0};
    if (!a || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL arrays or output");
    calib_eval_options o;
    int rc = take_options(opt, &o, err); /* before any row */
    if (rc != CALIB_OK)
        return rc;
    /* the one-pass form: the rows width_f32.c's blocks take */
    const int one_pass = a->kind == CALIB_TOPLABEL && a->dtype == CALIB_F32 &&
                         !a->weights && !a->groups &&
                         o.binning == CALIB_BINNING_WIDTH;
    calib_dataset *ds = NULL;
    rc = one_pass ? calib__dataset_view(a, &ds, err)
                  : calib_dataset_wrap(a, &ds, err);
    if (rc != CALIB_OK)
        return rc;
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    rc = evaluate(ds, &o, one_pass ? &st : NULL, out, err);
    if (rc == CALIB_OK && stats)
        *stats = st;
    calib_dataset_free(ds);
    return rc;
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
    /* internal callers (the ECE objective's search) want the core only */
    calib_eval_options o;
    if (opt)
        o = *opt;
    else
        calib_eval_options_init(&o);
    o.extra = 0;
    o.bootstrap = 0;
    return calib_evaluate(&ds, &o, out, err);
}
