/* recal_histogram.c — histogram binning (Zadrozny and Elkan 2001): each
 * bin of confidence predicts the accuracy its fitting rows had.
 *
 * Bins are calib's own: equal-width edges (double)k/M or Kumar's
 * equal-mass edges (binning.c), with (e_b, e_{b+1}] bins and p = 0 in
 * bin 0, the rule every calib metric uses, for fitting and predicting
 * alike.  A row's bin is found by bisection on the upper edges
 * (calib__bin_mass), which for the width edges k/M is exactly
 * calib__bin_width's sklearn rule, since both compare p with the same
 * doubles.  Per-bin sums of w and w*y go through the exact accumulator, so
 * a value is the correctly rounded quotient of exact sums.  An empty bin
 * predicts its midpoint, as netcal's HistogramBinning does.
 */
#include "recal1d.h"

#include <stdlib.h>
#include <string.h>

void calib__histogram_free(calib__histogram *m)
{
    if (!m)
        return;
    free(m->edges);
    free(m->value);
    memset(m, 0, sizeof *m);
}

/* Equal-mass upper edges of the rows with positive weight. */
static int mass_upper(const double *p, const double *w, size_t n, int bins,
                      double **upper, size_t *nb)
{
    double *kept = NULL;
    size_t m = n;
    if (w) {
        if (!(kept = malloc(n * sizeof *kept)))
            return CALIB_ENOMEM;
        m = 0;
        for (size_t i = 0; i < n; i++)
            if (w[i] > 0)
                kept[m++] = p[i];
    }
    const int rc = calib__mass_edges(kept ? kept : p, m, bins, 1, upper, nb);
    free(kept);
    return rc;
}

/* Allocates out's arrays for nb bins and sets its edges: k/bins, or
 * 0 followed by the mass upper edges. */
static int make_edges(const double *p, const double *w, size_t n, int bins,
                      calib_binning binning, calib__histogram *out)
{
    double *upper = NULL;
    size_t nb = (size_t)bins;
    if (binning == CALIB_BINNING_MASS) {
        const int rc = mass_upper(p, w, n, bins, &upper, &nb);
        if (rc)
            return rc;
    }
    out->edges = malloc((nb + 1) * sizeof *out->edges);
    out->value = malloc(nb * sizeof *out->value);
    if (!out->edges || !out->value) {
        free(upper);
        return CALIB_ENOMEM;
    }
    out->n_bins = nb;
    out->edges[0] = 0.0;
    for (size_t k = 1; k <= nb; k++)
        out->edges[k] = upper ? upper[k - 1] : (double)k / bins;
    free(upper);
    return CALIB_OK;
}

/* value[b] = sum w*y / sum w over bin b; the midpoint when it is empty. */
static int bin_values(const double *p, const uint8_t *y, const double *w,
                      size_t n, calib__histogram *m)
{
    const size_t nb = m->n_bins;
    calib__xsum *s = malloc(2 * nb * sizeof *s); /* s[2b]: w, s[2b+1]: wy */
    if (!s)
        return CALIB_ENOMEM;
    for (size_t k = 0; k < 2 * nb; k++)
        calib__xsum_init(&s[k]);
    for (size_t i = 0; i < n; i++) {
        const double wi = w ? w[i] : 1.0;
        if (!(wi > 0))
            continue;
        const size_t b = calib__bin_mass(p[i], m->edges + 1, nb);
        calib__xsum_add(&s[2 * b], wi);
        if (y[i])
            calib__xsum_add(&s[2 * b + 1], wi);
    }
    for (size_t b = 0; b < nb; b++) {
        const double sw = calib__xsum_round(&s[2 * b]);
        m->value[b] = sw > 0 ? calib__xsum_round(&s[2 * b + 1]) / sw
                             : (m->edges[b] + m->edges[b + 1]) / 2.0;
    }
    free(s);
    return CALIB_OK;
}

int calib__histogram_fit(const double *p, const uint8_t *y, const double *w,
                         size_t n, int bins, calib_binning binning,
                         calib__histogram *out, calib_error *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!p || !y || !out || n == 0 || bins < 1 ||
        (binning != CALIB_BINNING_WIDTH && binning != CALIB_BINNING_MASS))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "histogram fit: %s",
                           !p || !y || !out ? "NULL argument"
                           : n == 0         ? "no rows"
                           : bins < 1       ? "bins must be at least 1"
                                            : "unknown binning");
    const char *why = NULL;
    const size_t i = calib__recal1d_bad_row(p, y, w, n, 1, &why);
    if (i)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, i, 0,
                           "histogram fit: row %zu: bad %s", i, why);
    size_t positive = 0;
    for (size_t k = 0; k < n && !positive; k++)
        positive = !w || w[k] > 0;
    if (!positive)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "histogram fit: no row has a positive weight");
    int rc = make_edges(p, w, n, bins, binning, out);
    if (!rc)
        rc = bin_values(p, y, w, n, out);
    if (rc) {
        calib__histogram_free(out);
        return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    }
    return calib__ok(err);
}

double calib__histogram_predict(const calib__histogram *m, double p)
{
    if (isnan(p))
        return p;
    return m->value[calib__bin_mass(p, m->edges + 1, m->n_bins)];
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

void calib__histogram_to_json(const calib__histogram *m, calib__buf *b)
{
    calib__buf_json_array(b, "edges", m->edges, m->n_bins + 1);
    calib__buf_puts(b, ",");
    calib__buf_json_array(b, "values", m->value, m->n_bins);
}

/* edges[0] = 0, edges[last] = 1, edges[1] >= 0 and strictly increasing
 * after it. */
static int check_edges(const double *e, size_t ne, calib_error *err)
{
    if (e[0] != 0.0 || e[ne - 1] != 1.0)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                           "calibrator JSON: \"edges\" must run from 0 to 1, "
                           "not from %.17g to %.17g", e[0], e[ne - 1]);
    return calib__json_check("edges", e, ne, 1, 2, 0.0, 1.0, err);
}

int calib__histogram_from_json(const json_t *obj, calib__histogram *out,
                               calib_error *err)
{
    memset(out, 0, sizeof *out);
    size_t ne = 0, nv = 0;
    int rc = calib__json_doubles(obj, "edges", &out->edges, &ne, err);
    if (!rc)
        rc = calib__json_doubles(obj, "values", &out->value, &nv, err);
    if (!rc && ne != nv + 1)
        rc = calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                         "calibrator JSON: \"edges\" has %zu values, "
                         "\"values\" %zu; expected one edge more", ne, nv);
    if (!rc)
        rc = check_edges(out->edges, ne, err);
    if (!rc)
        rc = calib__json_check("values", out->value, nv, 0, 0, 0.0, 1.0,
                               err);
    if (rc) {
        calib__histogram_free(out);
        return rc;
    }
    out->n_bins = nv;
    return calib__ok(err);
}
