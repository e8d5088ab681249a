/* classwise.c — classwise (marginal) ECE: the mean over the K classes of
 * the equal-width ECE of q_k against [label == k].
 *
 * ECE_k = sum_b (W_kb / W_k) |acc_kb - conf_kb| over the bins of q_k (the
 * same M edges and rule as the top-label ECE; W_k is every row's weight,
 * less the rows with q_k = 0 under the hollance rule), and classwise ECE =
 * (1/K) sum_k ECE_k: the plain mean over classes, as Kull et al. 2019's
 * classwise-ECE and Kumar et al. 2019's marginal calibration error with
 * p = 1 (`mode='marginal'`).  Each worker keeps exact sums per class and
 * bin (counts for rows of weight 1, superaccumulators otherwise), merged
 * exactly, so the result does not depend on the thread count.
 */
#include "extra.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

#define CELLS_MAX ((size_t)1 << 18)  /* K (M + 2), about 64 MiB a worker */

/* Sums of one class's bin. */
typedef struct ccell {
    uint64_t plain, plain_hits;
    calib__xsum w, hit, conf;
} ccell;

typedef struct cw_pass {
    const calib_dataset *ds;
    const calib__top *t;
    const binspec *bs;
    size_t k, slots;         /* classes; cells per class (M + 2) */
    ccell *cells[MAX_WORKERS];
    double *q[MAX_WORKERS];  /* a row's probabilities */
    int nomem;
} cw_pass;

/* The probabilities of distribution row i into q (clamped, or softmax). */
static void row_probs(const calib_dataset *ds, size_t i, double *q)
{
    const size_t b = calib__row_begin(ds, i), k = ds->k;
    if (ds->kind == CALIB_PROBS) {
        for (size_t j = 0; j < k; j++) {
            const double v = calib__score(ds, b + j);
            q[j] = v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
        }
        return;
    }
    double zmax = -INFINITY, s = 0.0;
    for (size_t j = 0; j < k; j++)
        zmax = fmax(zmax, calib__score(ds, b + j));
    for (size_t j = 0; j < k; j++)
        s += q[j] = exp(calib__score(ds, b + j) - zmax);
    for (size_t j = 0; j < k; j++)
        q[j] /= s;
}

static void add_row(const cw_pass *cp, ccell *cells, const double *q,
                    size_t i, int y)
{
    const double w = cp->t->weights ? cp->t->weights[i] : 1.0;
    for (size_t j = 0; j < cp->k; j++) {
        ccell *c = &cells[j * cp->slots + width_slot(q[j], cp->bs)];
        const int hit = (int)j == y;
        if (cp->t->weights) {
            calib__xsum_add(&c->w, w);
            if (hit)
                calib__xsum_add(&c->hit, w);
            calib__xsum_add_product(&c->conf, w, q[j]);
        } else {
            c->plain++;
            c->plain_hits += (uint64_t)hit;
            calib__xsum_add(&c->conf, q[j]);
        }
    }
}

static void cw_range(void *vctx, size_t begin, size_t end, int worker)
{
    cw_pass *cp = vctx;
    ccell *cells = cp->cells[worker] =
        calloc(cp->k * cp->slots, sizeof *cells);
    double *q = cp->q[worker] = malloc(cp->k * sizeof *q);
    if (!cells || !q) {
        cp->nomem = 1;
        return;
    }
    for (size_t r = begin; r < end; r++) {
        const size_t i = cp->t->rows ? cp->t->rows[r] : r;
        row_probs(cp->ds, i, q);
        add_row(cp, cells, q, r, cp->ds->labels[i]);
    }
}

/* Rounds the merged sums of one cell. */
static void ccell_round(const ccell *c, double *w, double *conf, double *hit)
{
    calib__xsum s = c->w;
    calib__xsum_add(&s, (double)c->plain);
    *w = calib__xsum_round(&s);
    *conf = calib__xsum_round(&c->conf);
    s = c->hit;
    calib__xsum_add(&s, (double)c->plain_hits);
    *hit = calib__xsum_round(&s);
}

static void ccell_merge(ccell *d, const ccell *s)
{
    d->plain += s->plain;
    d->plain_hits += s->plain_hits;
    calib__xsum_merge(&d->w, &s->w);
    calib__xsum_merge(&d->hit, &s->hit);
    calib__xsum_merge(&d->conf, &s->conf);
}

/* ECE of class j from its merged cells; the last cell is "no bin". */
static double class_ece(const ccell *cells, size_t slots, int hollance)
{
    double w, conf, hit, total = 0.0, ece = 0.0;
    for (size_t b = 0; b < slots; b++) {
        ccell_round(&cells[b], &w, &conf, &hit);
        if (!(hollance && b == slots - 1))
            total += w;
    }
    for (size_t b = 0; b + 1 < slots; b++) {
        ccell_round(&cells[b], &w, &conf, &hit);
        if (w > 0.0)
            ece += w * fabs(hit / w - conf / w);
    }
    return total > 0.0 ? ece / total : 0.0;
}

static double merge_and_average(cw_pass *cp, int used)
{
    ccell *all = cp->cells[0];
    for (int w = 1; w < used; w++)
        for (size_t c = 0; c < cp->k * cp->slots; c++)
            ccell_merge(&all[c], &cp->cells[w][c]);
    const int hollance = cp->bs->rule == CALIB_RULE_HOLLANCE;
    double sum = 0.0;
    for (size_t j = 0; j < cp->k; j++)
        sum += class_ece(all + j * cp->slots, cp->slots, hollance);
    return sum / (double)cp->k;
}

int calib__classwise_ece(const calib_dataset *ds, const calib__top *t,
                         const calib_eval_options *opt, double *out)
{
    *out = NAN;
    if (ds->kind == CALIB_TOPLABEL || ds->k == 0 || ds->offsets || t->n == 0)
        return CALIB_OK;
    if (ds->k * ((size_t)opt->bins + 2) > CELLS_MAX)
        return CALIB_OK; /* too many cells to keep per worker: NaN */
    const int m = opt->bins;
    double *edges = malloc(((size_t)m + 1) * sizeof *edges);
    if (!edges)
        return CALIB_ENOMEM;
    for (int e = 0; e <= m; e++)
        edges[e] = (double)e / m;
    const calib_bin_rule rule =
        opt->binning == CALIB_BINNING_WIDTH ? opt->rule : CALIB_RULE_SKLEARN;
    const binspec bs = {CALIB_BINNING_WIDTH, rule, m, edges, (size_t)m, NULL};
    cw_pass cp;
    memset(&cp, 0, sizeof cp);
    cp.ds = ds;
    cp.t = t;
    cp.bs = &bs;
    cp.k = ds->k;
    cp.slots = (size_t)m + 2;
    const int cap = calib__threads(opt->threads);
    const int used = calib__parallel_for(t->n, cap > MAX_WORKERS ? MAX_WORKERS
                                                                 : cap,
                                         1024, cw_range, &cp);
    int rc = cp.nomem ? CALIB_ENOMEM : CALIB_OK;
    if (rc == CALIB_OK)
        *out = merge_and_average(&cp, used);
    for (int w = 0; w < used; w++) {
        free(cp.cells[w]);
        free(cp.q[w]);
    }
    free(edges);
    return rc;
}
