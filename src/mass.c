/* mass.c — equal-mass metrics: project the rows to top-label arrays, find
 * the edges, bin by value.
 *
 * Equal-mass binning (Kumar et al. 2019, `get_equal_bins`) needs every
 * confidence before any bin is known, so the rows are first projected to
 * (conf, correct, weight, Brier, NLL, clipped) arrays in parallel; binning.c
 * finds the edges; the projection is then added to per-worker populations
 * like any other rows.  Each group gets edges from its own rows, so a
 * group evaluated here equals that group evaluated alone.
 *
 * Float32 top-label rows of weight 1 (an LLM eval's confidences) skip the
 * projection: binning.c finds the edges on the float32 bits, and
 * width_f32.c's exact integer kernel bins the rows against the edges'
 * float32 thresholds.  Its sums are exact, as the general path's are, so
 * the metrics are bit-identical to it.
 */
#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    pop *P = pp->locals[worker] = calib__pop_new(pp->bs->nb);
    for (size_t i = begin; P && i < end; i++) {
        rowval r = {pj->conf[i], pj->weights ? pj->weights[i] : 1.0, 0.0,
                    pj->nll ? pj->nll[i] : 0.0, pj->correct[i],
                    pj->clipped ? pj->clipped[i] : 0, pj->weights != NULL};
        r.brier = pj->brier ? pj->brier[i]
                            : (r.p - r.correct) * (r.p - r.correct);
        calib__add_row(P, pp->bs, &r);
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
    const binspec bs = {CALIB_BINNING_MASS, o->rule, o->bins, edges, ne, NULL};
    proj_pass pp;
    memset(&pp, 0, sizeof pp);
    pp.pj = pj;
    pp.bs = &bs;
    const int used =
        calib__parallel_for(pj->n, o->threads, 16384, proj_range, &pp);
    pop *all = calib__pop_new(ne);
    int ok = all != NULL;
    for (int w = 0; w < used; w++) {
        ok = ok && pp.locals[w];
        if (ok)
            calib__pop_merge(all, pp.locals[w]);
        calib__pop_free(pp.locals[w]);
    }
    calib_metrics *m = ok ? calib__metrics_from(all, &bs, f) : NULL;
    calib__pop_free(all);
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
        calib__load_row(c->ds, i, &r);
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
        rc = calib__attach_groups(m, k, names);
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

/* ------------------------------------------------------------------ */
/* Float32 top-label rows of weight 1                                  */
/* ------------------------------------------------------------------ */

/* The threshold of edge e for float32 bits: those of the largest float32
 * <= e (e >= 0), so that for a float32 p >= +0, p <= e iff bits(p) <= it. */
static int32_t f32_threshold(double e)
{
    float f = (float)e;
    if ((double)f > e)
        f = nextafterf(f, 0.0f);
    int32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* The metrics of float32 rows conf/correct of weight 1 under their own
 * equal-mass edges, through width_f32.c's exact integer kernel: the same
 * exact sums as the general path, hence the same metrics.  CALIB_EINVAL
 * when the float64 path must be taken (see calib__mass_edges_f32). */
static int fast_mass(const float *conf, const uint8_t *correct, size_t n,
                     const calib_eval_options *o, const family *f,
                     calib_metrics **out)
{
    double *edges = NULL;
    size_t ne = 0;
    int rc = calib__mass_edges_f32(conf, n, o->bins, o->threads, &edges, &ne);
    if (rc != CALIB_OK)
        return rc;
    int32_t *thr = malloc(ne * sizeof *thr);
    pop *all = calib__pop_new(ne);
    calib_dataset view;
    memset(&view, 0, sizeof view);
    view.kind = CALIB_TOPLABEL;
    view.dtype = CALIB_F32;
    view.n = n;
    view.conf = conf;
    view.correct = correct;
    const binspec bs = {CALIB_BINNING_MASS, o->rule, o->bins, edges, ne, thr};
    pass ps = {0};
    int workers = 0;
    rc = thr && all ? CALIB_OK : CALIB_ENOMEM;
    for (size_t e = 0; rc == CALIB_OK && e < ne; e++)
        thr[e] = f32_threshold(edges[e]);
    if (rc == CALIB_OK)
        rc = calib__pass_run(&ps, &view, &bs, o->threads, &workers);
    if (rc == CALIB_OK) {
        for (int w = 0; w < workers; w++)
            if (ps.locals[w])
                calib__pop_merge(all, ps.locals[w]);
        calib__pass_free(&ps, o->threads);
        if (!(*out = calib__metrics_from(all, &bs, f)))
            rc = CALIB_ENOMEM;
    }
    calib__pop_free(all);
    free(thr);
    free(edges);
    return rc;
}

/* Group g's rows, copied out in row order. */
static int fast_group(const calib_dataset *ds, uint32_t g, size_t count,
                      const calib_eval_options *o, const family *f,
                      calib_metrics **out)
{
    float *conf = malloc((count ? count : 1) * sizeof *conf);
    uint8_t *correct = malloc(count ? count : 1);
    int rc = CALIB_ENOMEM;
    if (conf && correct) {
        const float *src = ds->conf;
        for (size_t i = 0, j = 0; i < ds->n; i++)
            if (ds->groups[i] == g) {
                conf[j] = src[i];
                correct[j++] = ds->correct[i];
            }
        rc = fast_mass(conf, correct, count, o, f, out);
    }
    free(conf);
    free(correct);
    return rc;
}

static int fast_groups(const calib_dataset *ds, const calib_eval_options *o,
                       const family *f, calib_metrics *m)
{
    uint32_t *order = malloc(ds->n_groups * sizeof *order + 1);
    size_t *count = malloc(ds->n_groups * sizeof *count + 1);
    char **names = malloc(ds->n_groups * sizeof *names + 1);
    int rc = order && count && names ? CALIB_OK : CALIB_ENOMEM;
    const size_t k = rc == CALIB_OK ? group_order(ds, order, count) : 0;
    for (size_t j = 0; j < k; j++)
        names[j] = ds->group_names[order[j]];
    if (rc == CALIB_OK)
        rc = calib__attach_groups(m, k, names);
    for (size_t j = 0; rc == CALIB_OK && j < k; j++)
        rc = fast_group(ds, order[j], count[order[j]], o, f, &m->groups[j]);
    /* no group can need the float64 path when the whole set did not */
    rc = rc == CALIB_EINVAL ? CALIB_EINTERNAL : rc;
    free(order);
    free(count);
    free(names);
    return rc;
}

/* CALIB_EINVAL when ds must take the general path. */
static int evaluate_fast(const calib_dataset *ds, const calib_eval_options *o,
                         const family *f, calib_metrics **out)
{
    if (ds->kind != CALIB_TOPLABEL || ds->dtype != CALIB_F32 || ds->weights ||
        o->bins > 256)
        return CALIB_EINVAL;
    calib_metrics *m = NULL;
    int rc = fast_mass(ds->conf, ds->correct, ds->n, o, f, &m);
    if (rc == CALIB_OK && ds->groups && ds->n_groups)
        rc = fast_groups(ds, o, f, m);
    if (rc != CALIB_OK)
        calib_metrics_free(m);
    else
        *out = m;
    return rc;
}

int calib__evaluate_mass(const calib_dataset *ds, const calib_eval_options *o,
                         calib_metrics **out)
{
    const family f = {ds->kind == CALIB_TOPLABEL, ds->k,
                      ds->kind == CALIB_PROBS};
    const int fast = evaluate_fast(ds, o, &f, out);
    if (fast != CALIB_EINVAL)
        return fast;
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
