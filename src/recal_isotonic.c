/* recal_isotonic.c — isotonic regression of correctness on confidence, the
 * recalibration map that scikit-learn's IsotonicRegression(out_of_bounds=
 * 'clip') fits (Zadrozny and Elkan 2002 proposed it for calibration).
 *
 * The fit sorts the rows once, pools ties, and runs pool adjacent
 * violators with a stack of blocks (each block: its first pooled point,
 * summed weight W and summed w*y, WY; mean WY/W): a new point starts a
 * block, which is merged into the block below while that block's mean is
 * >= its own.  Every point is pushed once and merged at most once, so PAVA
 * is O(N) after the O(N log N) sort.  The result is stored as scikit-
 * learn's thresholds, the two ends of each block, and predicted as
 * np.interp does (same formula, so the same rounding).  The JSON helpers
 * at the end are shared with recal_histogram.c.
 */
#include "recal1d.h"

#include <stdlib.h>
#include <string.h>

/* scikit-learn's _make_unique: np.finfo(np.float64).resolution */
#define TIE_EPS 1e-15

typedef struct row {
    double x, w;
    size_t i;       /* input index: a deterministic last key */
    uint8_t y;
} row;

static int row_cmp(const void *va, const void *vb)
{
    const row *a = va, *b = vb;
    if (a->x != b->x)
        return a->x < b->x ? -1 : 1;
    if (a->y != b->y)
        return a->y < b->y ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* A pooled run of points: points [first, next block's first). */
typedef struct block {
    size_t first;
    double w, wy;
} block;

void calib__isotonic_free(calib__isotonic *m)
{
    if (!m)
        return;
    free(m->x);
    free(m->y);
    memset(m, 0, sizeof *m);
}

size_t calib__recal1d_bad_row(const double *p, const uint8_t *y,
                              const double *w, size_t n, int unit,
                              const char **why)
{
    for (size_t i = 0; i < n; i++) {
        const double wi = w ? w[i] : 1.0;
        *why = !(unit ? p[i] >= 0.0 && p[i] <= 1.0 : isfinite(p[i]))
                   ? "confidence"
               : !(isfinite(wi) && wi >= 0) ? "weight"
               : y[i] > 1                   ? "correct flag"
                                            : NULL;
        if (*why)
            return i + 1;
    }
    return 0;
}

/* Copies the rows with positive weight into r[]; returns how many. */
static size_t gather(const double *p, const uint8_t *y, const double *w,
                     size_t n, row *r)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!w || w[i] > 0)
            r[m++] = (row){p[i], w ? w[i] : 1.0, i, y[i]};
    return m;
}

/* Pools sorted rows whose x lie within TIE_EPS of their run's first x
 * (in place: r[k] becomes point k, its x the run's first x, its w the
 * run's summed weight; wy[k] = the run's sum of w*y).  Returns the number
 * of points. */
static size_t make_unique(row *r, size_t m, double *wy)
{
    size_t u = 0;
    for (size_t i = 0; i < m;) {
        const double x0 = r[i].x;
        double sw = 0, swy = 0;
        for (; i < m && r[i].x - x0 < TIE_EPS; i++) {
            sw += r[i].w;
            swy += r[i].y ? r[i].w : 0.0;
        }
        r[u].x = x0;
        r[u].w = sw;
        wy[u++] = swy;
    }
    return u;
}

/* Pool adjacent violators over u points with weights r[].w and sums of
 * w*y wy[]; returns the number of blocks left in b[]. */
static size_t pava(const row *r, const double *wy, size_t u, block *b)
{
    size_t nb = 0;
    for (size_t k = 0; k < u; k++) {
        block cur = {k, r[k].w, wy[k]};
        while (nb > 0 && b[nb - 1].wy / b[nb - 1].w >= cur.wy / cur.w) {
            nb--;
            cur = (block){b[nb].first, b[nb].w + cur.w, b[nb].wy + cur.wy};
        }
        b[nb++] = cur;
    }
    return nb;
}

/* The thresholds: each block's first and (if different) last point. */
static int thresholds(const row *r, size_t u, const block *b, size_t nb,
                      calib__isotonic *out)
{
    out->x = malloc(2 * nb * sizeof *out->x);
    out->y = malloc(2 * nb * sizeof *out->y);
    if (!out->x || !out->y)
        return CALIB_ENOMEM;
    size_t t = 0;
    for (size_t k = 0; k < nb; k++) {
        const size_t last = (k + 1 < nb ? b[k + 1].first : u) - 1;
        /* wy sums a subset of w's terms in the same order, so wy <= w */
        const double v = b[k].wy / b[k].w;
        out->x[t] = r[b[k].first].x;
        out->y[t++] = v;
        if (last != b[k].first) {
            out->x[t] = r[last].x;
            out->y[t++] = v;
        }
    }
    out->n = t;
    return CALIB_OK;
}

int calib__isotonic_fit(const double *p, const uint8_t *y, const double *w,
                        size_t n, calib__isotonic *out, calib_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!p || !y || !out || n == 0)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "isotonic fit: %s", n ? "NULL argument" : "no rows");
    row *r = malloc(n * sizeof *r);
    double *wy = malloc(n * sizeof *wy);
    block *b = malloc(n * sizeof *b);
    int rc = CALIB_ENOMEM;
    if (!r || !wy || !b)
        goto cleanup;
    const char *why = NULL;
    const size_t bad = calib__recal1d_bad_row(p, y, w, n, 0, &why);
    const size_t m = bad ? 0 : gather(p, y, w, n, r);
    rc = CALIB_EINVAL;
    if (bad) {
        calib__fail(err, rc, NULL, 0, bad, 0, "isotonic fit: row %zu: bad %s",
                    bad, why);
        goto cleanup;
    }
    if (m == 0) {
        calib__fail(err, rc, NULL, 0, 0, 0,
                    "isotonic fit: no row has a positive weight");
        goto cleanup;
    }
    qsort(r, m, sizeof *r, row_cmp);
    const size_t u = make_unique(r, m, wy);
    rc = thresholds(r, u, b, pava(r, wy, u, b), out);
cleanup:
    free(r);
    free(wy);
    free(b);
    if (rc == CALIB_ENOMEM) {
        calib__isotonic_free(out);
        calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    }
    return rc == CALIB_OK ? calib__ok(err) : rc;
}

/* np.interp(clip(p, x[0], x[n-1]), x, y): with j the last index where
 * x[j] <= p, slope * (p - x[j]) + y[j], and y[n-1] at the right end. */
double calib__isotonic_predict(const calib__isotonic *m, double p)
{
    if (isnan(p))
        return p;
    const size_t n = m->n;
    if (p <= m->x[0])
        return m->y[0];
    if (p >= m->x[n - 1])
        return m->y[n - 1];
    size_t lo = 0, hi = n - 1; /* x[lo] <= p < x[hi] */
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (m->x[mid] <= p)
            lo = mid;
        else
            hi = mid;
    }
    const double slope = (m->y[hi] - m->y[lo]) / (m->x[hi] - m->x[lo]);
    return slope * (p - m->x[lo]) + m->y[lo];
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

void calib__buf_json_array(calib__buf *b, const char *key, const double *v,
                           size_t n)
{
    calib__buf_json_string(b, key);
    calib__buf_puts(b, ":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            calib__buf_puts(b, ",");
        calib__buf_json_number(b, v[i]);
    }
    calib__buf_puts(b, "]");
}

int calib__json_doubles(const json_t *obj, const char *key, double **v,
                        size_t *n, calib_error *err)
{
    *v = NULL;
    *n = 0;
    const json_t *a = json_object_get(obj, key);
    if (!json_is_array(a))
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                           "calibrator JSON: \"%s\" is missing or not a list",
                           key);
    const size_t len = json_array_size(a);
    if (len == 0)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                           "calibrator JSON: \"%s\" is empty", key);
    double *d = malloc(len * sizeof *d);
    if (!d)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    for (size_t i = 0; i < len; i++) {
        const json_t *x = json_array_get(a, i);
        d[i] = json_is_number(x) ? json_number_value(x) : NAN;
        if (!isfinite(d[i])) {
            free(d);
            return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                               "calibrator JSON: \"%s\"[%zu] is not a finite "
                               "number", key, i);
        }
    }
    *v = d;
    *n = len;
    return CALIB_OK;
}

int calib__json_check(const char *key, const double *v, size_t n,
                      size_t from, int order, double lo, double hi,
                      calib_error *err)
{
    for (size_t i = from; i < n; i++) {
        if (v[i] < lo || v[i] > hi)
            return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                               "calibrator JSON: \"%s\"[%zu] = %.17g is "
                               "outside [%g, %g]", key, i, v[i], lo, hi);
        if (i > from && (order == 2 ? !(v[i] > v[i - 1])
                             : order == 1 && v[i] < v[i - 1]))
            return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                               "calibrator JSON: \"%s\"[%zu] = %.17g is %s "
                               "the previous value", key, i, v[i],
                               order == 2 ? "not above" : "below");
    }
    return CALIB_OK;
}

void calib__isotonic_to_json(const calib__isotonic *m, calib__buf *b)
{
    calib__buf_json_array(b, "x_thresholds", m->x, m->n);
    calib__buf_puts(b, ",");
    calib__buf_json_array(b, "y_thresholds", m->y, m->n);
}

int calib__isotonic_from_json(const json_t *obj, calib__isotonic *out,
                              calib_error *err)
{
    memset(out, 0, sizeof *out);
    size_t nx = 0, ny = 0;
    int rc = calib__json_doubles(obj, "x_thresholds", &out->x, &nx, err);
    if (!rc)
        rc = calib__json_doubles(obj, "y_thresholds", &out->y, &ny, err);
    if (!rc && nx != ny)
        rc = calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                         "calibrator JSON: \"x_thresholds\" has %zu values, "
                         "\"y_thresholds\" %zu", nx, ny);
    if (!rc)
        rc = calib__json_check("x_thresholds", out->x, nx, 0, 2, -INFINITY,
                               INFINITY, err);
    if (!rc)
        rc = calib__json_check("y_thresholds", out->y, ny, 0, 1, 0.0, 1.0,
                               err);
    if (rc) {
        calib__isotonic_free(out);
        return rc;
    }
    out->n = nx;
    return calib__ok(err);
}
