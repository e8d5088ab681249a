/* paired.c — the paired bootstrap: two models on the same questions.
 *
 * Two prediction sets of the same rows in the same order (before and
 * after fine-tuning, two models on one benchmark) are resampled together:
 * replicate r draws one index multiset (bootstrap.c's generator) and
 * evaluates both sets on it, so the difference B - A of each metric keeps
 * the pairing, and its spread is not inflated by the questions' own
 * difficulty, which both sets share.  The interval is the percentile
 * interval of the replicate differences; p_le_0 the fraction of them at
 * or below zero.
 */
#include "boot.h"
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

static int check_pair(const calib_dataset *a, const calib_dataset *b,
                      calib_error *err)
{
    if (a->n != b->n)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                           "A has %zu rows and B %zu: a paired comparison "
                           "needs the same rows in the same order",
                           a->n, b->n);
    if (a->kind == CALIB_TOPLABEL || b->kind == CALIB_TOPLABEL)
        return CALIB_OK;
    for (size_t i = 0; i < a->n; i++)
        if (a->labels[i] != b->labels[i])
            return calib__fail(err, CALIB_EDATA, NULL, 0, i + 1, 0,
                               "label %d in A but %d in B: a paired "
                               "comparison needs the same rows in the same "
                               "order", (int)a->labels[i],
                               (int)b->labels[i]);
    return CALIB_OK;
}

/* The differences of metric id over the replicates, summarised. */
static void summarise(calib_paired_metric *pm, const boot *ba,
                      const boot *bb, const double *va, const double *vb,
                      int id, const calib_eval_options *o, double *x)
{
    const size_t R = (size_t)o->bootstrap;
    pm->a = calib_metric_value(ba->full, (calib_metric_id)id);
    pm->b = calib_metric_value(bb->full, (calib_metric_id)id);
    pm->diff = pm->b - pm->a;
    pm->ci[0] = pm->ci[1] = pm->p_le_0 = NAN;
    pm->replicates = 0;
    if (!isfinite(pm->a) || !isfinite(pm->b) || ba->src[id] == SRC_NONE ||
        bb->src[id] == SRC_NONE) {
        pm->diff = NAN;
        return;
    }
    for (size_t r = 0; r < R; r++)
        x[r] = vb[r * CALIB_M_COUNT + (size_t)id] -
               va[r * CALIB_M_COUNT + (size_t)id];
    const size_t k = calib__percentile_ci(x, R, o->ci_level, pm->ci);
    size_t le = 0;
    for (size_t r = 0; r < k; r++)
        le += x[r] <= 0.0;
    pm->replicates = k;
    pm->p_le_0 = k ? (double)le / (double)k : NAN;
}

/* Both sets' metrics and replicates, then the differences into p. */
static int run_pair(const calib_dataset *a, const calib_dataset *b,
                    const calib_eval_options *o, calib_paired *p,
                    calib_error *err)
{
    calib_eval_options eo = *o;
    eo.bootstrap = 0;
    calib_metrics *ma = NULL, *mb = NULL;
    boot ba, bb;
    memset(&ba, 0, sizeof ba);
    memset(&bb, 0, sizeof bb);
    const size_t R = (size_t)o->bootstrap;
    double *va = malloc(R * CALIB_M_COUNT * sizeof *va);
    double *vb = malloc(R * CALIB_M_COUNT * sizeof *vb);
    double *x = malloc(R * sizeof *x);
    int rc = va && vb && x ? CALIB_OK : CALIB_ENOMEM;
    if (rc == CALIB_OK && (rc = calib_evaluate(a, &eo, &ma, err)) == CALIB_OK)
        rc = calib_evaluate(b, &eo, &mb, err);
    if (rc == CALIB_OK && (rc = calib__boot_prepare(&ba, a, ma, o, 0)) ==
                              CALIB_OK)
        rc = calib__boot_prepare(&bb, b, mb, o, 0);
    if (rc == CALIB_OK) {
        const boot *bs[2] = {&ba, &bb};
        double *const vals[2] = {va, vb};
        rc = calib__boot_run(bs, 2, o->bootstrap, o->seed, o->threads, vals);
    }
    for (int id = 0; rc == CALIB_OK && id < CALIB_M_COUNT; id++)
        summarise(&p->m[id], &ba, &bb, va, vb, id, o, x);
    calib__boot_free(&ba);
    calib__boot_free(&bb);
    calib_metrics_free(ma);
    calib_metrics_free(mb);
    free(va);
    free(vb);
    free(x);
    if (rc != CALIB_OK && (!err || err->code == CALIB_OK))
        return calib__fail(err, rc, NULL, 0, 0, 0, "paired bootstrap: %s",
                           calib_strerror(rc));
    return rc;
}

int calib_paired_bootstrap(const calib_dataset *a, const calib_dataset *b,
                           const calib_eval_options *opt, calib_paired **out,
                           calib_error *err)
{
    if (out)
        *out = NULL;
    if (!a || !b || !out || !opt)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL dataset, options or output");
    if (opt->bootstrap < 1)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "a paired bootstrap needs bootstrap >= 1 "
                           "resamples, not %d", opt->bootstrap);
    int rc = calib__check_eval_options(opt, err);
    if (rc != CALIB_OK)
        return rc;
    if (err)
        err->code = CALIB_OK;
    rc = check_pair(a, b, err);
    if (rc != CALIB_OK)
        return rc;
    calib_paired *p = calloc(1, sizeof *p);
    if (!p)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    p->n = a->n;
    p->ci_level = opt->ci_level;
    p->resamples = opt->bootstrap;
    p->seed = opt->seed;
    if ((rc = run_pair(a, b, opt, p, err)) != CALIB_OK) {
        free(p);
        return rc;
    }
    *out = p;
    return calib__ok(err);
}

void calib_paired_free(calib_paired *p)
{
    free(p);
}
