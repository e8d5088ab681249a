/* values_mass.c — equal-mass metrics of an accumulator from its value
 * tables, and what a table on a grid leaves exact.
 *
 * The sorted table is the sorted rows in runs: rank r of the rows lies in
 * the run whose cumulative count passes r, so the order statistics that
 * make the equal-mass edges (binning.c's ranks s_i - 1 and s_i) are read
 * off the runs, and binning.c makes the edges from them exactly as it
 * does from the rows.  Each run then goes into its bin with its exact
 * sums; the population's NLL and Brier sums come from the accumulator.
 * Every sum being the same integer as over the rows, the metrics are bit
 * for bit calib_evaluate's.
 *
 * On a grid, a cell holding rows of one confidence is a run like any
 * other.  A mixed cell is treated as one tie: if a boundary rank falls
 * inside it, the exact computation could split it where this one cannot
 * (bins_moved, with the bound of calib.h); if a boundary falls next to it,
 * membership is exact but the edge is computed from the cell's lower end
 * (edges_moved).
 */
#include "metrics.h"
#include "values.h"

#include <stdlib.h>
#include <string.h>

/* A table in increasing order of confidence. */
typedef struct sorted {
    const vtab *t;
    uint32_t *order;
    uint64_t *cum;        /* cum[j]: rows of runs order[0 .. j) */
    uint64_t rows;
} sorted;

static void sorted_free(sorted *s)
{
    free(s->order);
    free(s->cum);
}

static int sorted_make(const vtab *t, sorted *s)
{
    memset(s, 0, sizeof *s);
    s->t = t;
    if (t->nomem)
        return CALIB_ENOMEM;
    if (t->n == 0)
        return CALIB_OK;
    s->order = calib__vt_order(t);
    s->cum = malloc((t->n + 1) * sizeof *s->cum);
    if (!s->order || !s->cum) {
        sorted_free(s);
        return CALIB_ENOMEM;
    }
    s->cum[0] = 0;
    for (size_t j = 0; j < t->n; j++)
        s->cum[j + 1] = s->cum[j] + t->e[s->order[j]].count;
    s->rows = s->cum[t->n];
    return CALIB_OK;
}

/* The position (in order) of the run holding rank r. */
static size_t run_of(const sorted *s, uint64_t r)
{
    size_t lo = 0, hi = s->t->n; /* the last j with cum[j] <= r */
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (s->cum[mid] <= r)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static const ventry *run(const sorted *s, size_t j)
{
    return &s->t->e[s->order[j]];
}

/* The total weight of a run, rounded. */
static double run_weight(const vtab *t, const ventry *e)
{
    calib__xsum w;
    calib__xsum_init(&w);
    if (e->xw)
        calib__xsum_merge(&w, &t->wh[2 * (e->xw - 1)]);
    calib__xsum_add(&w, (double)e->plain);
    return calib__xsum_round(&w);
}

/* What the boundaries of mm groups say about exactness (x->ece_bound is
 * left as the sum of the weights of the cells holding a boundary). */
static void boundaries(const sorted *s, size_t mm, calib_exactness *x)
{
    size_t last = SIZE_MAX; /* a cell holding two boundaries counts once */
    for (size_t i = 1; i < mm; i++) {
        const size_t st = calib__mass_split(i, (size_t)s->rows, mm);
        const size_t a = run_of(s, st - 1), b = run_of(s, st);
        const ventry *ea = run(s, a), *eb = run(s, b);
        if (a == b && ea->mixed) {
            x->bins_moved = 1;
            if (a != last)
                x->ece_bound += run_weight(s->t, ea);
            last = a;
        } else if (a != b && (ea->mixed || eb->mixed)) {
            x->edges_moved = 1;
        }
    }
}

/* The equal-mass edges of the sorted table (malloc'd, *ne of them). */
static int edges_of(const sorted *s, int m, double **edges, size_t *ne,
                    calib_exactness *x)
{
    const size_t n = (size_t)s->rows, mm = calib__mass_groups(n, m);
    const size_t nr_max = mm > 1 ? 2 * (mm - 1) : 1;
    size_t *ranks = malloc(nr_max * sizeof *ranks);
    double *values = malloc(nr_max * sizeof *values);
    *edges = malloc(mm * sizeof **edges);
    int rc = ranks && values && *edges ? CALIB_OK : CALIB_ENOMEM;
    if (rc == CALIB_OK) {
        const size_t nr = calib__mass_ranks(n, mm, ranks);
        for (size_t r = 0; r < nr; r++)
            values[r] = run(s, run_of(s, ranks[r]))->v;
        *ne = calib__mass_make_edges(n, mm, ranks, values, *edges);
        if (x)
            boundaries(s, mm, x);
    }
    free(ranks);
    free(values);
    if (rc != CALIB_OK) {
        free(*edges);
        *edges = NULL;
    }
    return rc;
}

/* The population of runs binned by `bs`, with P's NLL and Brier sums. */
static pop *binned(const sorted *s, const binspec *bs, const pop *P)
{
    pop *Q = calib__pop_new(bs->nb);
    for (size_t j = 0; Q && j < s->t->n; j++) {
        const ventry *e = run(s, j);
        cell *c = &Q->cells[calib__bin_mass(e->v, bs->edges, bs->nb)];
        c->count += e->count;
        c->plain += e->plain;
        c->plain_hits += e->plain_hits;
        calib__vt_conf(s->t, e, &c->conf);
        if (e->xw) {
            calib__xsum_merge(&c->weight, &s->t->wh[2 * (e->xw - 1)]);
            calib__xsum_merge(&c->hit, &s->t->wh[2 * (e->xw - 1) + 1]);
        }
    }
    if (Q) {
        Q->p2_fx = P->p2_fx;
        Q->pc_fx = P->pc_fx;
        Q->fast_hits = P->fast_hits;
        Q->brier = P->brier;
        Q->nll = P->nll;
        Q->clipped = P->clipped;
    }
    return Q;
}

/* Equal-mass metrics of population P (into *out when not NULL) and what
 * its table leaves exact (into *x when not NULL). */
static int mass_of(const calib_accum *a, const pop *P, int m,
                   calib_metrics **out, calib_exactness *x)
{
    sorted s;
    int rc = sorted_make(P->vt, &s);
    if (rc != CALIB_OK)
        return rc;
    if (s.rows == 0) {
        sorted_free(&s);
        return CALIB_EDATA;
    }
    if (x) {
        memset(x, 0, sizeof *x);
        x->grid = P->vt->level < 0 ? 0.0 : ldexp(1.0, -P->vt->level);
        for (size_t j = 0; j < P->vt->n; j++)
            x->ties_made |= P->vt->e[j].mixed;
    }
    double *edges = NULL;
    size_t ne = 0;
    rc = edges_of(&s, m, &edges, &ne, x);
    if (rc == CALIB_OK && out) {
        const binspec bs = {CALIB_BINNING_MASS, a->opt.rule, m, edges, ne,
                            NULL};
        const family f = calib__accum_family(a);
        pop *Q = binned(&s, &bs, P);
        *out = Q ? calib__metrics_from(Q, &bs, &f) : NULL;
        rc = *out ? CALIB_OK : CALIB_ENOMEM;
        calib__pop_free(Q);
    }
    if (rc == CALIB_OK && x && x->bins_moved) {
        calib__xsum w; /* the weight W of the population */
        calib__xsum_init(&w);
        for (size_t j = 0; j < P->vt->n; j++)
            calib__xsum_add(&w, run_weight(P->vt, &P->vt->e[j]));
        x->ece_bound = 2.0 * x->ece_bound / calib__xsum_round(&w);
        x->ece_bound = x->ece_bound < 1.0 ? x->ece_bound : 1.0;
    }
    free(edges);
    sorted_free(&s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The accumulator's side                                              */
/* ------------------------------------------------------------------ */

static uint64_t rows_of(const pop *P)
{
    uint64_t n = 0;
    for (size_t b = 0; b < P->n_cells; b++)
        n += P->cells[b].count;
    return n;
}

int calib_accum_keep_values(calib_accum *a, size_t limit, calib_error *err)
{
    if (!a)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL accumulator");
    if (limit == 0)
        limit = CALIB_VALUES_LIMIT_DEFAULT;
    if (limit < CALIB__VT_MIN_LIMIT || limit > ((size_t)1 << 31))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "value table limit must be %d .. 2^31, not %zu",
                           CALIB__VT_MIN_LIMIT, limit);
    if (a->kind_seen || a->n_groups || rows_of(a->all))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "value tables must be asked for before any row "
                           "is added");
    calib__vt_free(a->all->vt);
    if (!(a->all->vt = calib__vt_new(limit)))
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    a->vlimit = limit;
    return calib__ok(err);
}

int calib_accum_has_values(const calib_accum *a)
{
    return a && a->vlimit ? 1 : 0;
}

void calib__accum_drop_values(calib_accum *a)
{
    calib__vt_free(a->all->vt);
    a->all->vt = NULL;
    for (size_t g = 0; g < a->n_groups; g++) {
        calib__vt_free(a->groups[g]->vt);
        a->groups[g]->vt = NULL;
    }
    a->vlimit = 0;
}

int calib__accum_values_nomem(const calib_accum *a)
{
    int bad = a->all->vt && a->all->vt->nomem;
    for (size_t g = 0; g < a->n_groups; g++)
        bad |= a->groups[g]->vt && a->groups[g]->vt->nomem;
    return bad;
}

/* Common checks; *m becomes the number of bins. */
static int check_mass(const calib_accum *a, int *m, calib_error *err)
{
    if (!a)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL accumulator");
    if (*m == 0)
        *m = a->opt.bins;
    if (*m < 1 || *m > 1000000)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "bins must be 1 .. 1000000, not %d", *m);
    if (!a->vlimit)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "equal-mass bins need the value table of every "
                           "partial state, and this one has none (written "
                           "without values, or merged with such a state)");
    if (calib__accum_values_nomem(a))
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    return CALIB_OK;
}

static int mass_fail(calib_error *err, int rc)
{
    return calib__fail(err, rc, NULL, 0, 0, 0, "%s",
                       rc == CALIB_EDATA ? "no rows" : "out of memory");
}

int calib_accum_result_mass(const calib_accum *a, int bins,
                            calib_metrics **out, calib_error *err)
{
    if (out)
        *out = NULL;
    int rc = out ? check_mass(a, &bins, err)
                 : calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "NULL output");
    if (rc != CALIB_OK)
        return rc;
    calib_metrics *m = NULL;
    rc = mass_of(a, a->all, bins, &m, NULL);
    if (rc == CALIB_OK && a->n_groups)
        rc = calib__attach_groups(m, a->n_groups, a->names);
    for (size_t g = 0; rc == CALIB_OK && g < a->n_groups; g++)
        rc = mass_of(a, a->groups[g], bins, &m->groups[g], NULL);
    if (rc == CALIB_OK)
        rc = calib__accum_selective(a, m);
    if (rc != CALIB_OK) {
        calib_metrics_free(m);
        return mass_fail(err, rc);
    }
    if (!a->opt.scores)
        calib__drop_scores(m);
    *out = m;
    return calib__ok(err);
}

int calib_accum_exactness(const calib_accum *a, int bins, size_t group,
                          calib_exactness *out, calib_error *err)
{
    int rc = out ? check_mass(a, &bins, err)
                 : calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "NULL output");
    if (rc != CALIB_OK)
        return rc;
    if (group != SIZE_MAX && group >= a->n_groups)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "group %zu of %zu", group, a->n_groups);
    rc = mass_of(a, group == SIZE_MAX ? a->all : a->groups[group], bins,
                 NULL, out);
    return rc == CALIB_OK ? calib__ok(err) : mass_fail(err, rc);
}
