/* crossfit.c — cross-fitted recalibration: every row is predicted by a
 * calibrator that did not see it.
 *
 * HELM fits its recalibration and measures it on the same rows (on
 * purpose); the in-sample result is optimistic, and more so the more
 * flexible the method (histogram binning, isotonic regression).  K-fold
 * cross-fitting gives the out-of-sample figure beside it: the rows are
 * shuffled by a seeded Fisher-Yates (splitmix64, Steele, Lea and Flood
 * 2014, so the same seed gives the same folds on every machine), cut into
 * k nearly equal folds, and each fold is predicted by the method fitted on
 * the other k - 1.  The held-out predictions are put back in the order of
 * the input.
 */
#include "recal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* fold[i] for every row: shuffled position j goes to fold j k / n. */
static void assign_folds(size_t n, int k, uint64_t seed, size_t *perm,
                         int *fold)
{
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = n; i-- > 1;) {
        const size_t j = (size_t)(splitmix64(&seed) % (i + 1));
        const size_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    for (size_t j = 0; j < n; j++)
        fold[perm[j]] = (int)(j * (size_t)k / n);
}

static void *own(calib_dataset *ds, size_t bytes, int *rc)
{
    void *p = *rc ? NULL : malloc(bytes ? bytes : 1);
    if (!*rc)
        *rc = p ? calib__dataset_own(ds, p) : CALIB_ENOMEM;
    return *rc ? NULL : p;
}

/* The scores (as doubles), labels and offsets of rows idx[0..m). */
static int take_scores(const calib_dataset *ds, const size_t *idx, size_t m,
                       calib_dataset *out)
{
    int rc = CALIB_OK;
    size_t total = 0;
    for (size_t j = 0; j < m; j++)
        total += calib__row_len(ds, idx[j]);
    double *z = own(out, total * sizeof *z, &rc);
    int32_t *y = own(out, m * sizeof *y, &rc);
    size_t *off = ds->offsets ? own(out, (m + 1) * sizeof *off, &rc) : NULL;
    if (rc)
        return rc;
    size_t at = 0;
    for (size_t j = 0; j < m; j++) {
        const size_t b = calib__row_begin(ds, idx[j]);
        const size_t len = calib__row_len(ds, idx[j]);
        if (off)
            off[j] = at;
        for (size_t t = 0; t < len; t++)
            z[at++] = calib__score(ds, b + t);
        y[j] = ds->labels[idx[j]];
    }
    if (off)
        off[m] = at;
    out->scores = z, out->labels = y, out->offsets = off;
    return CALIB_OK;
}

static int take_rows(const calib_dataset *ds, const size_t *idx, size_t m,
                     calib_dataset *out)
{
    int rc = CALIB_OK;
    if (ds->kind == CALIB_TOPLABEL) {
        double *p = own(out, m * sizeof *p, &rc);
        uint8_t *c = own(out, m, &rc);
        for (size_t j = 0; !rc && j < m; j++)
            p[j] = calib__conf(ds, idx[j]), c[j] = ds->correct[idx[j]];
        out->conf = p, out->correct = c;
    } else {
        rc = take_scores(ds, idx, m, out);
    }
    double *w = ds->weights ? own(out, m * sizeof *w, &rc) : NULL;
    uint32_t *g = ds->groups ? own(out, m * sizeof *g, &rc) : NULL;
    for (size_t j = 0; !rc && j < m; j++) {
        if (w)
            w[j] = ds->weights[idx[j]];
        if (g)
            g[j] = ds->groups[idx[j]];
    }
    out->weights = w, out->groups = g;
    return rc ? rc : calib__copy_group_names(ds, out);
}

/* A new dataset of the rows idx[0..m) of ds, in that order (copied). */
static int take(const calib_dataset *ds, const size_t *idx, size_t m,
                calib_dataset **out)
{
    calib_dataset *t = calib__dataset_alloc();
    if (!t)
        return CALIB_ENOMEM;
    t->kind = ds->kind, t->dtype = CALIB_F64, t->n = m, t->k = ds->k;
    t->stats.rows_read = t->stats.rows_used = m;
    const int rc = take_rows(ds, idx, m, t);
    if (rc) {
        calib_dataset_free(t);
        return rc;
    }
    *out = t;
    return CALIB_OK;
}

/* Fits on the rows outside fold f and predicts the rows in it. */
static int one_fold(const calib_dataset *ds, const calib_fit_options *opt,
                    const int *fold, int f, size_t *idx,
                    calib_dataset **part, calib_error *err)
{
    size_t m = 0, h = ds->n;
    for (size_t i = 0; i < ds->n; i++)
        if (fold[i] != f)
            idx[m++] = i;
    for (size_t i = ds->n; i-- > 0;)
        if (fold[i] == f)
            idx[--h] = i;
    calib_dataset *train = NULL, *held = NULL;
    calib_calibrator *c = NULL;
    int rc = take(ds, idx, m, &train);
    if (!rc)
        rc = take(ds, idx + m, ds->n - m, &held);
    if (rc)
        rc = calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    if (!rc)
        rc = calib_fit(train, opt, &c, err);
    if (!rc)
        rc = calib_apply(c, held, part, err);
    calib_calibrator_free(c);
    calib_dataset_free(train);
    calib_dataset_free(held);
    return rc;
}

/* The folds' predictions joined, then put back in the input's order. */
static int join(const calib_dataset *ds, calib_dataset **parts, int k,
                const int *fold, size_t *idx, calib_dataset **oof,
                calib_error *err)
{
    calib_dataset *all = NULL;
    int rc = calib_dataset_concat((const calib_dataset *const *)parts,
                                  (size_t)k, &all, err);
    if (rc)
        return rc;
    /* row i sits in fold fold[i], after the rows of lower folds and the
     * rows of its own fold that come before it */
    size_t *start = calloc((size_t)k + 1, sizeof *start);
    if (!start) {
        calib_dataset_free(all);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    for (size_t i = 0; i < ds->n; i++)
        start[fold[i] + 1]++;
    for (int f = 0; f < k; f++)
        start[f + 1] += start[f];
    for (size_t i = 0; i < ds->n; i++)
        idx[i] = start[fold[i]]++;
    free(start);
    rc = take(all, idx, ds->n, oof);
    calib_dataset_free(all);
    if (!rc)
        (*oof)->stats = ds->stats;
    return rc ? calib__fail(err, rc, NULL, 0, 0, 0, "out of memory") : rc;
}

int calib_cross_fit(const calib_dataset *ds, const calib_fit_options *opt,
                    int k, uint64_t seed, calib_dataset **oof,
                    calib_error *err)
{
    if (oof)
        *oof = NULL;
    if (!ds || !oof)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_cross_fit: NULL argument");
    if (k < 2 || (size_t)k > ds->n)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "cross-fitting: %d folds of %zu rows; 2 <= k <= "
                           "the number of rows", k, ds->n);
    size_t *idx = malloc(ds->n * sizeof *idx);
    int *fold = malloc(ds->n * sizeof *fold);
    calib_dataset **parts = calloc((size_t)k, sizeof *parts);
    int rc = idx && fold && parts ? CALIB_OK : CALIB_ENOMEM;
    if (rc)
        calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    else
        assign_folds(ds->n, k, seed, idx, fold);
    for (int f = 0; !rc && f < k; f++)
        rc = one_fold(ds, opt, fold, f, idx, &parts[f], err);
    if (!rc)
        rc = join(ds, parts, k, fold, idx, oof, err);
    for (int f = 0; parts && f < k; f++)
        calib_dataset_free(parts[f]);
    free(parts);
    free(fold);
    free(idx);
    return rc ? rc : calib__ok(err);
}
