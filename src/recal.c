/* recal.c — the method table, the top-label view, and fitting and applying
 * the recalibrators other than temperature scaling (temperature.c fits it,
 * calibrator.c applies it), with the parameter accessor.
 *
 * Top-label methods map a confidence: on distribution rows they see the
 * top-label view (the largest probability, and whether the first argmax is
 * the label) and return top-label rows, the correct flags unchanged, so
 * accuracy is the same after as before by construction.  Vector scaling
 * returns rows of the same kind as it reads (logits, or probabilities).
 */
#include "recal.h"

#include <stdlib.h>
#include <string.h>

static const char *const method_names[CALIB_METHOD_COUNT] = {
    "temperature", "platt", "vector", "histogram", "isotonic", "beta"};

int calib_method_parse(const char *name, calib_method *out)
{
    const int i = calib__name_index(method_names, CALIB_METHOD_COUNT, name);
    if (i >= 0 && out)
        *out = (calib_method)i;
    return i >= 0 ? CALIB_OK : CALIB_EINVAL;
}

const char *calib_method_name(calib_method m)
{
    return (unsigned)m < CALIB_METHOD_COUNT ? method_names[m] : NULL;
}

int calib_method_toplabel(calib_method m)
{
    return m == CALIB_METHOD_PLATT || m == CALIB_METHOD_BETA ||
           m == CALIB_METHOD_HISTOGRAM || m == CALIB_METHOD_ISOTONIC;
}

/* ---- the top-label view -------------------------------------------- */

typedef struct view {
    const calib_dataset *ds;
    double *conf;
    uint8_t *correct;
} view;

static void view_range(void *ctx, size_t b, size_t e, int worker)
{
    const view *v = ctx;
    for (size_t i = b; i < e; i++) {
        if (v->ds->kind == CALIB_TOPLABEL) {
            v->conf[i] = calib__conf(v->ds, i);
            v->correct[i] = v->ds->correct[i] != 0;
            continue;
        }
        int ok = 0;
        calib__row_eval(v->ds, i, 1.0, &v->conf[i], &ok, NULL, NULL, NULL);
        v->correct[i] = (uint8_t)(ok != 0);
    }
}

int calib__toplabel_arrays(const calib_dataset *ds, int threads,
                           double **conf, uint8_t **correct)
{
    const size_t n = ds->n ? ds->n : 1;
    view v = {ds, malloc(n * sizeof *v.conf), malloc(n)};
    if (!v.conf || !v.correct) {
        free(v.conf);
        free(v.correct);
        *conf = NULL, *correct = NULL;
        return CALIB_ENOMEM;
    }
    calib__parallel_for(ds->n, threads, 4096, view_range, &v);
    *conf = v.conf, *correct = v.correct;
    return CALIB_OK;
}

/* A TOPLABEL dataset over n rows of `in` (weights, groups) owning conf
 * and correct (taken, freed on failure). */
static int toplabel_of(const calib_dataset *in, double *conf,
                       uint8_t *correct, calib_dataset **out)
{
    calib_dataset *ds = calib__dataset_alloc();
    if (!ds) {
        free(conf);
        free(correct);
        return CALIB_ENOMEM;
    }
    /* calib__dataset_own frees the block when it fails */
    int rc = calib__dataset_own(ds, conf);
    if (rc)
        free(correct);
    else if ((rc = calib__dataset_own(ds, correct)) == CALIB_OK) {
        ds->kind = CALIB_TOPLABEL;
        ds->dtype = CALIB_F64;
        ds->n = in->n;
        ds->stats = in->stats;
        ds->conf = conf;
        ds->correct = correct;
        rc = calib__copy_common(in, ds, 0);
    }
    if (rc) {
        calib_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return CALIB_OK;
}

int calib_dataset_toplabel(const calib_dataset *ds, calib_dataset **out,
                           calib_error *err)
{
    if (out)
        *out = NULL;
    if (!ds || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_dataset_toplabel: NULL argument");
    double *conf;
    uint8_t *correct;
    int rc = calib__toplabel_arrays(ds, 0, &conf, &correct);
    if (!rc)
        rc = toplabel_of(ds, conf, correct, out);
    return rc ? calib__fail(err, rc, NULL, 0, 0, 0, "out of memory")
              : calib__ok(err);
}

/* ---- fitting ------------------------------------------------------- */

static int check_recal(const calib_dataset *val, const calib_fit_options *opt,
                       calib_error *err)
{
    if (opt->objective != CALIB_OBJECTIVE_NLL)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "%s is fitted by NLL only, not by the %s "
                           "objective", calib_method_name(opt->method),
                           calib_objective_name(opt->objective));
    if (opt->method == CALIB_METHOD_HISTOGRAM &&
        !(opt->hist_bins >= 1 && opt->hist_bins <= 1000000))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "histogram binning: %d bins; 1 .. 1000000 "
                           "expected", opt->hist_bins);
    for (size_t i = 0; i < val->n; i++)
        if (calib__weight(val, i) != 0.0)
            return CALIB_OK;
    return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                       "every fitting row has weight 0");
}

int calib__fit_recal(const calib_dataset *val, const calib_fit_options *opt,
                     calib_calibrator **out, calib_error *err)
{
    int rc = check_recal(val, opt, err);
    if (rc)
        return rc;
    calib_calibrator *c = calib__calibrator_new(CALIB_OBJECTIVE_NLL);
    if (!c)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    c->method = opt->method;
    c->binary = val->kind == CALIB_TOPLABEL;
    c->classes = val->k;
    c->fitted_rows = val->n;
    rc = opt->method == CALIB_METHOD_VECTOR
             ? calib__fit_vector(val, opt, c, err)
             : calib__fit_toplabel(val, opt, c, err);
    if (rc == CALIB_ENOMEM)
        calib__fail(err, rc, NULL, 0, 0, 0, "out of memory fitting %s",
                    calib_method_name(opt->method));
    if (rc) {
        calib_calibrator_free(c);
        return rc;
    }
    *out = c;
    return calib__ok(err);
}

/* ---- applying ------------------------------------------------------ */

static int apply_toplabel(const calib_calibrator *c, const calib_dataset *in,
                          calib_dataset **out)
{
    double *conf;
    uint8_t *correct;
    int rc = calib__toplabel_arrays(in, 0, &conf, &correct);
    if (rc)
        return rc;
    for (size_t i = 0; i < in->n; i++)
        conf[i] = calib__recal_conf(c, conf[i]);
    return toplabel_of(in, conf, correct, out);
}

static int apply_vector(const calib_calibrator *c, const calib_dataset *in,
                        calib_dataset **out, calib_error *err)
{
    if (in->kind == CALIB_TOPLABEL || in->offsets || in->k != c->classes)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "a vector-scaling calibrator of %zu classes "
                           "cannot scale %s rows", c->classes,
                           in->kind == CALIB_TOPLABEL ? "top-label"
                           : in->offsets ? "ragged" : "these");
    calib_dataset *ds = calib__dataset_alloc();
    const size_t len = in->n * in->k;
    double *z = malloc((len ? len : 1) * sizeof *z);
    int rc = CALIB_ENOMEM;
    if (!ds || !z)
        free(z);
    else
        rc = calib__dataset_own(ds, z);
    if (!rc) {
        ds->kind = in->kind, ds->dtype = CALIB_F64, ds->n = in->n;
        ds->k = in->k, ds->stats = in->stats, ds->scores = z;
        rc = calib__copy_common(in, ds, 1);
    }
    for (size_t i = 0; !rc && i < in->n; i++) {
        const size_t col = calib__vector_row(c, in, i, z + i * in->k);
        if (col)
            rc = calib__fail(err, CALIB_EDATA, NULL, 0, i + 1, col,
                             "row %zu: logit %zu overflows under vector "
                             "scaling", i + 1, col);
    }
    if (rc) {
        calib_dataset_free(ds);
        return rc;
    }
    *out = ds;
    return CALIB_OK;
}

int calib__apply_recal(const calib_calibrator *c, const calib_dataset *in,
                       calib_dataset **out, calib_error *err)
{
    const int rc = c->method == CALIB_METHOD_VECTOR
                       ? apply_vector(c, in, out, err)
                       : apply_toplabel(c, in, out);
    if (rc == CALIB_ENOMEM)
        return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    return rc ? rc : calib__ok(err);
}

/* ---- parameters ---------------------------------------------------- */

static size_t put2(const double *a, size_t na, const double *b, size_t nb,
                   double *out, size_t n)
{
    for (size_t i = 0; i < na + nb && i < n; i++)
        out[i] = i < na ? a[i] : b[i - na];
    return na + nb;
}

size_t calib_calibrator_params(const calib_calibrator *c, double *out,
                               size_t n)
{
    switch (c->method) {
    case CALIB_METHOD_TEMPERATURE:
        return put2(&c->temperature, 1, NULL, 0, out, n);
    case CALIB_METHOD_PLATT:
        return put2(c->coef, 2, NULL, 0, out, n);
    case CALIB_METHOD_BETA:
        return put2(c->coef, 3, NULL, 0, out, n);
    case CALIB_METHOD_VECTOR:
        return put2(c->vec, c->classes, c->vec + c->classes, c->classes, out,
                    n);
    case CALIB_METHOD_HISTOGRAM:
        return put2(c->hist.edges, c->hist.n_bins + 1, c->hist.value,
                    c->hist.n_bins, out, n);
    case CALIB_METHOD_ISOTONIC:
        return put2(c->iso.x, c->iso.n, c->iso.y, c->iso.n, out, n);
    }
    return 0;
}
