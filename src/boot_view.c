/* boot_view.c — one bootstrap replicate: the drawn rows, evaluated.
 *
 * The drawn rows are laid out in row order, row i repeated c_i times, in
 * a worker's own buffers: the top-label view (confidence, correct,
 * weight, group) always, the distribution rows themselves only when a
 * metric needs them.  calib_evaluate (with one thread, no bootstrap) does
 * the rest, so every metric it computes, now or later, has a replicate
 * value without this file knowing how it is computed.  NLL and Brier of
 * distribution rows are sums of per-row losses computed once (boot.h):
 * they are added exactly, once per drawn copy, as calib_evaluate would.
 */
#include "boot.h"

#include <stdlib.h>
#include <string.h>

static size_t score_size(const calib_dataset *ds)
{
    return ds->dtype == CALIB_F32 ? sizeof(float) : sizeof(double);
}

static int needs(const boot *b, int src)
{
    for (int id = 0; id < CALIB_M_COUNT; id++)
        if (b->src[id] == src)
            return 1;
    return 0;
}

void calib__boot_scratch_free(boot_scratch *s)
{
    free(s->idx);
    free(s->conf);
    free(s->correct);
    free(s->weights);
    free(s->groups);
    free(s->scores);
    free(s->offsets);
    free(s->labels);
    free(s->nll);
    free(s->brier);
    free(s->weight);
    memset(s, 0, sizeof *s);
}

/* The distribution rows' buffers, for FULL metrics. */
static int scratch_full(const boot *b, boot_scratch *s)
{
    const calib_dataset *ds = b->ds;
    const size_t n = b->n, len = b->max_len ? b->max_len : 1;
    if (len > SIZE_MAX / score_size(ds) / n)
        return CALIB_ENOMEM;
    s->scores = malloc(n * len * score_size(ds));
    s->labels = malloc(n * sizeof *s->labels);
    if (ds->offsets)
        s->offsets = malloc((n + 1) * sizeof *s->offsets);
    return s->scores && s->labels && (s->offsets || !ds->offsets)
               ? CALIB_OK
               : CALIB_ENOMEM;
}

int calib__boot_scratch_new(const boot *b, boot_scratch *s)
{
    const calib_dataset *ds = b->ds;
    const size_t n = b->n;
    memset(s, 0, sizeof *s);
    s->n = n;
    s->idx = malloc((n + 4) * sizeof *s->idx);
    s->conf = malloc(n * (b->conf ? sizeof(double) : score_size(ds)));
    s->correct = malloc(n);
    s->nll = calloc(b->n_pops, sizeof *s->nll);
    s->brier = calloc(b->n_pops, sizeof *s->brier);
    s->weight = calloc(b->n_pops, sizeof *s->weight);
    int ok = s->idx && s->conf && s->correct && s->nll && s->brier &&
             s->weight;
    if (ok && ds->weights)
        ok = (s->weights = malloc(n * sizeof *s->weights)) != NULL;
    if (ok && b->use_groups)
        ok = (s->groups = malloc(n * sizeof *s->groups)) != NULL;
    if (ok && needs(b, SRC_FULL))
        ok = scratch_full(b, s) == CALIB_OK;
    if (!ok)
        calib__boot_scratch_free(s);
    return ok ? CALIB_OK : CALIB_ENOMEM;
}

/* ------------------------------------------------------------------ */
/* The drawn rows                                                      */
/* ------------------------------------------------------------------ */

/* The drawn rows in row order, row i c[i] times.  Poisson(1) counts
 * make a loop over them branch badly: four copies are written whatever
 * the count (idx has 4 spare slots), a longer run rarely loops. */
static void draw_index(const uint32_t *c, size_t n, size_t *idx)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t k = c[i];
        idx[j] = idx[j + 1] = idx[j + 2] = idx[j + 3] = i;
        for (uint32_t t = 4; t < k; t++)
            idx[j + t] = i;
        j += k;
    }
}

/* Confidence, correct flag, weight and group of every drawn row. */
static void expand_top(const boot *b, boot_scratch *s)
{
    const calib_dataset *ds = b->ds;
    const size_t n = b->n, *idx = s->idx;
    if (b->conf) {
        for (size_t j = 0; j < n; j++)
            ((double *)s->conf)[j] = b->conf[idx[j]];
    } else if (ds->dtype == CALIB_F32) {
        for (size_t j = 0; j < n; j++)
            ((float *)s->conf)[j] = ((const float *)ds->conf)[idx[j]];
    } else {
        for (size_t j = 0; j < n; j++)
            ((double *)s->conf)[j] = ((const double *)ds->conf)[idx[j]];
    }
    const uint8_t *correct = b->correct ? b->correct : ds->correct;
    for (size_t j = 0; j < n; j++)
        s->correct[j] = correct[idx[j]];
    for (size_t j = 0; s->weights && j < n; j++)
        s->weights[j] = ds->weights[idx[j]];
    for (size_t j = 0; s->groups && j < n; j++)
        s->groups[j] = ds->groups[idx[j]];
}

/* A dataset over the scratch's drawn rows: the top-label view, or (full)
 * the distribution rows. */
static calib_dataset drawn(const boot *b, const boot_scratch *s, int full)
{
    const calib_dataset *ds = b->ds;
    calib_dataset v;
    memset(&v, 0, sizeof v);
    v.n = b->n;
    v.weights = s->weights;
    v.groups = s->groups;
    v.n_groups = s->groups ? ds->n_groups : 0;
    v.group_names = s->groups ? ds->group_names : NULL;
    if (!full) {
        v.kind = CALIB_TOPLABEL;
        v.dtype = b->conf ? CALIB_F64 : ds->dtype;
        v.conf = s->conf;
        v.correct = s->correct;
        return v;
    }
    v.kind = ds->kind;
    v.dtype = ds->dtype;
    v.k = ds->k;
    v.offsets = ds->offsets ? s->offsets : NULL;
    v.scores = s->scores;
    v.labels = s->labels;
    return v;
}

/* Scores and labels of every drawn distribution row. */
static void expand_rows(const boot *b, boot_scratch *s)
{
    const calib_dataset *ds = b->ds;
    const size_t el = score_size(ds);
    size_t at = 0;
    for (size_t j = 0; j < b->n; j++) {
        const size_t i = s->idx[j], len = calib__row_len(ds, i);
        if (s->offsets)
            s->offsets[j] = at;
        memcpy((char *)s->scores + at * el,
               (const char *)ds->scores + calib__row_begin(ds, i) * el,
               len * el);
        s->labels[j] = ds->labels[i];
        at += len;
    }
    if (s->offsets)
        s->offsets[b->n] = at;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

/* The metrics of m (population pop) that come from `src`, into vals. */
static void put(const boot *b, const calib_metrics *m, size_t pop, int src,
                double *vals, double *weight)
{
    for (int id = 0; id < CALIB_M_COUNT; id++)
        if (b->src[id] == src)
            vals[pop * CALIB_M_COUNT + (size_t)id] =
                calib_metric_value(m, (calib_metric_id)id);
    if (weight)
        weight[pop] = m->weight;
}

/* Every population of a replicate's metrics, matched by group name: a
 * replicate lists only the groups its drawn rows have. */
static void take(const boot *b, const calib_metrics *m, int src,
                 double *vals, double *weight)
{
    put(b, m, 0, src, vals, weight);
    for (size_t q = 0; b->use_groups && q < m->n_groups; q++) {
        const size_t pop = calib__boot_pop(b, m->group_names[q]);
        if (pop != SIZE_MAX)
            put(b, m->groups[q], pop, src, vals, weight);
    }
}

/* NLL and Brier: sum over drawn copies of w_i loss_i (the product exact,
 * as calib_evaluate adds it), divided by the replicate's weight
 * (s->weight, from the view). */
static void rows_sums(const boot *b, boot_scratch *s, double *vals)
{
    for (size_t p = 0; p < b->n_pops; p++) {
        calib__xsum_init(&s->nll[p]);
        calib__xsum_init(&s->brier[p]);
    }
    for (size_t j = 0; j < b->n; j++) {
        const size_t i = s->idx[j];
        const size_t p = b->use_groups
                             ? b->pop_of_group[b->ds->groups[i]] : 0;
        if (b->ds->weights) { /* w * loss exactly, as calib_evaluate */
            calib__xsum_add_product(&s->nll[p], b->ds->weights[i], b->nll[i]);
            calib__xsum_add_product(&s->brier[p], b->ds->weights[i],
                                    b->brier[i]);
        } else {
            calib__xsum_add(&s->nll[p], b->nll[i]);
            calib__xsum_add(&s->brier[p], b->brier[i]);
        }
    }
    for (size_t p = 1; p < b->n_pops; p++) {
        calib__xsum_merge(&s->nll[0], &s->nll[p]);
        calib__xsum_merge(&s->brier[0], &s->brier[p]);
    }
    for (size_t p = 0; p < b->n_pops; p++) {
        double *v = &vals[p * CALIB_M_COUNT];
        if (b->src[CALIB_M_NLL] == SRC_ROWS)
            v[CALIB_M_NLL] = calib__xsum_round(&s->nll[p]) / s->weight[p];
        if (b->src[CALIB_M_BRIER] == SRC_ROWS)
            v[CALIB_M_BRIER] =
                calib__xsum_round(&s->brier[p]) / s->weight[p];
    }
}

static int eval_full(const boot *b, boot_scratch *s, double *vals)
{
    expand_rows(b, s);
    const calib_dataset f = drawn(b, s, 1);
    calib_eval_options o = b->o;
    o.extra = b->full_extra;
    calib_metrics *m = NULL;
    const int rc = calib_evaluate(&f, &o, &m, NULL);
    if (rc == CALIB_OK)
        take(b, m, SRC_FULL, vals, NULL);
    calib_metrics_free(m);
    return rc;
}

int calib__boot_eval(const boot *b, boot_scratch *s, const uint32_t *c,
                     double *vals)
{
    for (size_t i = 0; i < b->n_pops * CALIB_M_COUNT; i++)
        vals[i] = NAN;
    for (size_t p = 0; p < b->n_pops; p++)
        s->weight[p] = NAN;
    draw_index(c, b->n, s->idx);
    expand_top(b, s);
    const calib_dataset v = drawn(b, s, 0);
    calib_metrics *m = NULL;
    int rc = calib_evaluate(&v, &b->o, &m, NULL);
    if (rc != CALIB_OK)
        return rc;
    take(b, m, SRC_VIEW, vals, s->weight);
    calib_metrics_free(m);
    if (needs(b, SRC_ROWS))
        rows_sums(b, s, vals);
    if (needs(b, SRC_FULL))
        rc = eval_full(b, s, vals);
    return rc;
}
