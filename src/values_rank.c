/* values_rank.c — rank metrics of an accumulator from its value tables:
 * AUROC, AURC and HELM's selective metrics (selective.c) of merged states.
 *
 * selective.c computes them from runs of tied confidences — each run's row
 * count, weight and correct weight — and a value table is exactly those
 * runs with exact sums, so handing it the table in decreasing order gives
 * what calib_evaluate gives over the rows: ties are runs in both (their
 * rows taken in every order with equal probability), and each run's weight
 * and correct weight are rounded once from the same exact sums.  A table
 * on a grid treats a mixed cell as one run (calib_exactness.ties_made).
 */
#include "metrics.h"
#include "selective.h"
#include "values.h"

#include <stdlib.h>

/* The runs of t, most confident first (r->own holds them). */
static int table_runs(const vtab *t, calib__runs *r)
{
    uint32_t *order = calib__vt_order(t);
    const size_t n = t->n, m = n ? n : 1;
    char *block = malloc(m * (3 * sizeof(double) + sizeof(uint64_t)));
    if ((n && !order) || !block) {
        free(order);
        free(block);
        return CALIB_ENOMEM;
    }
    double *value = (double *)block, *weight = value + m, *hit = weight + m;
    uint64_t *count = (uint64_t *)(hit + m);
    for (size_t j = 0; j < n; j++) {
        const ventry *e = &t->e[order[n - 1 - j]];
        calib__xsum w, h;
        calib__xsum_init(&w);
        calib__xsum_init(&h);
        if (e->xw) {
            calib__xsum_merge(&w, &t->wh[2 * (e->xw - 1)]);
            calib__xsum_merge(&h, &t->wh[2 * (e->xw - 1) + 1]);
        }
        calib__xsum_add(&w, (double)e->plain);
        calib__xsum_add(&h, (double)e->plain_hits);
        value[j] = e->v;
        count[j] = e->count;
        weight[j] = calib__xsum_round(&w);
        hit[j] = calib__xsum_round(&h);
    }
    free(order);
    *r = (calib__runs){n, value, count, weight, hit, block};
    return CALIB_OK;
}

static int population(const vtab *t, calib_metrics *m)
{
    calib__runs r;
    if (table_runs(t, &r) != CALIB_OK)
        return CALIB_ENOMEM;
    calib__selective_to_metrics(&r, m);
    calib__runs_free(&r);
    return CALIB_OK;
}

int calib__accum_selective(const calib_accum *a, calib_metrics *m)
{
    if (!a->vlimit || !(a->opt.extra & CALIB_EXTRA_SELECTIVE))
        return CALIB_OK;
    int rc = population(a->all->vt, m);
    for (size_t g = 0; rc == CALIB_OK && g < a->n_groups; g++)
        rc = population(a->groups[g]->vt, m->groups[g]);
    return rc;
}
