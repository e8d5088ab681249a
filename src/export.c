/* export.c — a dataset's probabilities as one flat array of doubles.
 *
 * What a binding needs to hand calibrated probabilities back to its caller
 * (calib.Calibrator.apply in Python): every row's distribution, one row
 * after the other, in the dataset's own order and row lengths.  Logits go
 * through the log-sum-exp softmax (shifted by the row's largest logit, so
 * that no exponential overflows); probabilities and top-label confidences
 * are copied clamped into [0,1], as every kernel reads them.
 */
#include "internal.h"

#include <math.h>

size_t calib_dataset_export_len(const calib_dataset *ds)
{
    if (!ds)
        return 0;
    if (ds->kind == CALIB_TOPLABEL)
        return ds->n;
    if (ds->offsets)
        return ds->offsets[ds->n] - ds->offsets[0];
    return ds->n * ds->k;
}

/* softmax(z) of row i into q[0 .. len): exp(z_k - max) / sum_j exp(z_j -
 * max), the log-sum-exp shift.  Dividing rather than subtracting log(sum)
 * keeps the relative error at a few ulps for logits of any magnitude:
 * exp(z_k - lse) would carry lse's rounding, ulp(800) = 1e-13, into q. */
static void softmax_row(const calib_dataset *ds, size_t i, double *q)
{
    const size_t b = calib__row_begin(ds, i), len = calib__row_len(ds, i);
    double top = -INFINITY;
    for (size_t k = 0; k < len; k++) {
        const double z = calib__score(ds, b + k);
        if (z > top)
            top = z;
    }
    double s = 0.0;
    for (size_t k = 0; k < len; k++) {
        q[k] = exp(calib__score(ds, b + k) - top);
        s += q[k];
    }
    for (size_t k = 0; k < len; k++)
        q[k] /= s;
}

static void probs_row(const calib_dataset *ds, size_t i, double *q)
{
    const size_t b = calib__row_begin(ds, i), len = calib__row_len(ds, i);
    for (size_t k = 0; k < len; k++) {
        const double p = calib__score(ds, b + k);
        q[k] = p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
    }
}

void calib__row_probs(const calib_dataset *ds, size_t i, double *q)
{
    if (ds->kind == CALIB_LOGITS)
        softmax_row(ds, i, q);
    else
        probs_row(ds, i, q);
}

int calib_dataset_export(const calib_dataset *ds, double *out, size_t len,
                         calib_error *err)
{
    if (!ds || (!out && len > 0))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "export: NULL argument");
    const size_t want = calib_dataset_export_len(ds);
    if (len != want)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "export: %zu values given room for, %zu needed",
                           len, want);
    if (ds->kind == CALIB_TOPLABEL) {
        for (size_t i = 0; i < ds->n; i++)
            out[i] = calib__conf(ds, i);
        return calib__ok(err);
    }
    const size_t base = ds->offsets ? ds->offsets[0] : 0;
    for (size_t i = 0; i < ds->n; i++) {
        calib__row_probs(ds, i, out + (calib__row_begin(ds, i) - base));
    }
    return calib__ok(err);
}
