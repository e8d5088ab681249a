/* calibrator.c — the fitted calibrator: options, accessors, applying it to
 * a dataset, and its JSON form.
 *
 * Applying temperature scaling must not change a single prediction (Guo et
 * al. 2017: "temperature scaling does not affect the model's accuracy").
 * Dividing by T > 0 is monotone, but in floating point z_a < z_b can round
 * to z_a/T == z_b/T and move the first argmax to a lower index; when that
 * happens the winning score is raised by one ulp, so the predicted class is
 * the one the unscaled row predicts, by construction.
 */
#include "recal.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const objective_names[] = {"nll", "ece", "brier"};
#define N_OBJECTIVES ((int)(sizeof objective_names / sizeof *objective_names))

int calib_objective_parse(const char *name, calib_objective *out)
{
    const int i = calib__name_index(objective_names, N_OBJECTIVES, name);
    if (i >= 0 && out)
        *out = (calib_objective)i;
    return i >= 0 ? CALIB_OK : CALIB_EINVAL;
}

const char *calib_objective_name(calib_objective obj)
{
    return (unsigned)obj < (unsigned)N_OBJECTIVES ? objective_names[obj] : NULL;
}

void calib_fit_options_init(calib_fit_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->method = CALIB_METHOD_TEMPERATURE;
    opt->objective = CALIB_OBJECTIVE_NLL;
    calib_eval_options_init(&opt->eval);
    opt->t_min = 1e-3;
    opt->t_max = 1e3;
    opt->hist_bins = 15;
    opt->hist_binning = CALIB_BINNING_WIDTH;
}

/* ------------------------------------------------------------------ */
/* The object                                                          */
/* ------------------------------------------------------------------ */

calib_calibrator *calib__calibrator_new(calib_objective objective)
{
    calib_calibrator *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->method = CALIB_METHOD_TEMPERATURE;
    c->objective = objective;
    c->temperature = 1.0;
    c->solver = objective == CALIB_OBJECTIVE_NLL ? "newton-log-beta"
                                                 : "grid+golden";
    return c;
}

int calib__calibrator_note(calib_calibrator *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = len < 0 ? NULL : malloc((size_t)len + 1);
    char **d = s ? realloc(c->diag, (c->n_diag + 1) * sizeof *d) : NULL;
    if (!d) {
        free(s);
        return CALIB_ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    c->diag = d;
    c->diag[c->n_diag++] = s;
    return CALIB_OK;
}

void calib_calibrator_free(calib_calibrator *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_diag; i++)
        free(c->diag[i]);
    free(c->diag);
    free(c->vec);
    calib__isotonic_free(&c->iso);
    calib__histogram_free(&c->hist);
    free(c);
}

calib_method calib_calibrator_method(const calib_calibrator *c)
{
    return c->method;
}
calib_objective calib_calibrator_objective(const calib_calibrator *c)
{
    return c->objective;
}
double calib_calibrator_temperature(const calib_calibrator *c)
{
    return c->temperature;
}
int calib_calibrator_iterations(const calib_calibrator *c)
{
    return c->iterations;
}
double calib_calibrator_objective_value(const calib_calibrator *c)
{
    return c->objective_value;
}
int calib_calibrator_binary(const calib_calibrator *c) { return c->binary; }
size_t calib_calibrator_diagnostic_count(const calib_calibrator *c)
{
    return c->n_diag;
}
const char *calib_calibrator_diagnostic(const calib_calibrator *c, size_t i)
{
    return i < c->n_diag ? c->diag[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Applying                                                            */
/* ------------------------------------------------------------------ */

/* p' = sigmoid(logit(p) / T), exact at p = 0 and 1; the sigmoid is taken
 * on the side where exp cannot overflow. */
static double scale_conf(double p, double t)
{
    if (p == 0.0 || p == 1.0)
        return p;
    const double x = (log(p) - log1p(-p)) / t;
    return x >= 0.0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* Replaces the logits v[0..len) by their softmax (log-sum-exp shifted;
 * -inf logits become probability 0). */
static void softmax(double *v, size_t len)
{
    double top = -INFINITY, sum = 0.0;
    for (size_t k = 0; k < len; k++)
        top = v[k] > top ? v[k] : top;
    for (size_t k = 0; k < len; k++)
        sum += (v[k] = exp(v[k] - top));
    for (size_t k = 0; k < len; k++)
        v[k] /= sum;
}

/* Row i of `in` scaled by 1/T into out[]: logits z/T, or for probability
 * rows softmax(log(p)/T), so that their NLL is clipped at 1e-15 after as
 * it was before and the two compare like with like.  A rounding tie that
 * would move the first argmax is undone by one ulp, so the prediction
 * never changes.  Returns 0, or the 1-based column of a logit whose
 * quotient overflows. */
static size_t scale_row(const calib_dataset *in, size_t i, double t,
                        double *out)
{
    const size_t b = calib__row_begin(in, i), len = calib__row_len(in, i);
    for (size_t k = 0; k < len; k++) {
        double s = calib__score(in, b + k);
        if (in->kind == CALIB_PROBS)
            s = s > 0.0 ? log(s > 1.0 ? 1.0 : s) : -INFINITY;
        out[k] = s / t;
        if (isinf(out[k]) && !isinf(s))
            return k + 1;
    }
    if (in->kind == CALIB_PROBS)
        softmax(out, len);
    const size_t want = calib__row_argmax(in, i);
    size_t got = 0;
    for (size_t k = 1; k < len; k++)
        got = out[k] > out[got] ? k : got;
    if (got != want)
        out[want] = nextafter(out[want], INFINITY);
    return 0;
}

/* Copies `len` bytes of `src` into a block owned by `ds` (*dst); NULL src
 * copies nothing. */
static int own_copy(calib_dataset *ds, const void **dst, const void *src,
                    size_t len)
{
    if (!src)
        return CALIB_OK;
    void *p = malloc(len ? len : 1);
    if (!p)
        return CALIB_ENOMEM;
    memcpy(p, src, len);
    *dst = p;
    return calib__dataset_own(ds, p);
}

/* Labels, weights, groups, offsets and group names: copied, so the result
 * outlives `in`. */
int calib__copy_common(const calib_dataset *in, calib_dataset *out, int dist)
{
    const size_t n = in->n;
    int rc = own_copy(out, (const void **)&out->weights, in->weights,
                      n * sizeof *in->weights);
    if (!rc)
        rc = own_copy(out, (const void **)&out->groups, in->groups,
                      n * sizeof *in->groups);
    if (!rc && dist && in->kind != CALIB_TOPLABEL)
        rc = own_copy(out, (const void **)&out->labels, in->labels,
                      n * sizeof *in->labels);
    if (!rc && dist && in->offsets)
        rc = own_copy(out, (const void **)&out->offsets, in->offsets,
                      (n + 1) * sizeof *in->offsets);
    return rc ? rc : calib__copy_group_names(in, out);
}

int calib__copy_group_names(const calib_dataset *in, calib_dataset *out)
{
    if (!in->group_names || !in->n_groups)
        return CALIB_OK;
    out->group_names = calloc(in->n_groups, sizeof *out->group_names);
    if (!out->group_names)
        return CALIB_ENOMEM;
    out->owns_group_names = 1;
    out->n_groups = in->n_groups;
    for (size_t g = 0; g < in->n_groups; g++)
        if (!(out->group_names[g] = strdup(in->group_names[g])))
            return CALIB_ENOMEM;
    return CALIB_OK;
}

static int apply_rows(const calib_calibrator *c, const calib_dataset *in,
                      calib_dataset *out, calib_error *err)
{
    const double t = c->temperature;
    if (in->kind == CALIB_TOPLABEL) {
        double *conf = malloc((in->n ? in->n : 1) * sizeof *conf);
        if (!conf || calib__dataset_own(out, conf))
            return CALIB_ENOMEM;
        for (size_t i = 0; i < in->n; i++)
            conf[i] = scale_conf(calib__conf(in, i), t);
        out->conf = conf;
        return own_copy(out, (const void **)&out->correct, in->correct,
                        in->n * sizeof *in->correct);
    }
    const size_t total = in->n ? calib__row_begin(in, in->n - 1) +
                                     calib__row_len(in, in->n - 1) : 0;
    double *z = malloc((total ? total : 1) * sizeof *z);
    if (!z || calib__dataset_own(out, z))
        return CALIB_ENOMEM;
    out->scores = z;
    for (size_t i = 0; i < in->n; i++) {
        const size_t col = scale_row(in, i, t, z + calib__row_begin(in, i));
        if (col)
            return calib__fail(err, CALIB_EDATA, NULL, 0, i + 1, col,
                               "logit divided by T = %g overflows", t);
    }
    return CALIB_OK;
}

int calib_apply(const calib_calibrator *c, const calib_dataset *in,
                calib_dataset **out, calib_error *err)
{
    if (out)
        *out = NULL;
    if (!c || !in || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_apply: NULL argument");
    if (c->method != CALIB_METHOD_TEMPERATURE)
        return calib__apply_recal(c, in, out, err);
    if (c->binary != (in->kind == CALIB_TOPLABEL))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           c->binary ? "a calibrator fitted on top-label "
                                       "rows cannot scale distribution rows"
                                     : "a calibrator fitted on distribution "
                                       "rows cannot scale top-label rows");
    calib_dataset *ds = calib__dataset_alloc();
    if (!ds)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    ds->kind = in->kind;
    ds->dtype = CALIB_F64;
    ds->n = in->n;
    ds->k = in->k;
    ds->stats = in->stats;
    int rc = calib__copy_common(in, ds, 1);
    if (!rc)
        rc = apply_rows(c, in, ds, err);
    if (rc) {
        calib_dataset_free(ds);
        return rc == CALIB_ENOMEM ? calib__fail(err, rc, NULL, 0, 0, 0,
                                                "out of memory")
                                  : rc;
    }
    *out = ds;
    return calib__ok(err);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

int calib_calibrator_to_json(const calib_calibrator *c, char **json,
                             calib_error *err)
{
    if (json)
        *json = NULL;
    if (!c || !json)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_calibrator_to_json: NULL argument");
    calib__buf b = {0};
    calib__buf_puts(&b, "{\"method\":");
    calib__buf_json_string(&b, calib_method_name(c->method));
    calib__buf_puts(&b, ",\"objective\":");
    calib__buf_json_string(&b, calib_objective_name(c->objective));
    if (c->method == CALIB_METHOD_TEMPERATURE) {
        calib__buf_puts(&b, ",\"temperature\":");
        calib__buf_json_number(&b, c->temperature);
    } else {
        calib__recal_to_json(c, &b);
    }
    calib__buf_printf(&b, ",\"form\":\"%s\",\"iterations\":%d",
                      calib_method_toplabel(c->method) ? "top-label"
                      : c->binary ? "binary" : "softmax", c->iterations);
    calib__buf_puts(&b, ",\"objective_value\":");
    calib__buf_json_number(&b, c->objective_value);
    calib__buf_puts(&b, ",\"solver\":");
    calib__buf_json_string(&b, c->solver);
    calib__buf_puts(&b, ",\"diagnostics\":[");
    for (size_t i = 0; i < c->n_diag; i++) {
        calib__buf_puts(&b, i ? "," : "");
        calib__buf_json_string(&b, c->diag[i]);
    }
    calib__buf_printf(&b, "],\"fitted_rows\":%zu,\"classes\":%zu}",
                      c->fitted_rows, c->classes);
    if (b.failed) {
        free(b.s);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    *json = b.s;
    return calib__ok(err);
}

static int bad(calib_error *err, const char *what)
{
    return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0, "calibrator JSON: %s",
                       what);
}

/* The keys that define the map: method, temperature, form, objective. */
static int read_core(const json_t *o, calib_calibrator *c, calib_error *err)
{
    const json_t *m = json_object_get(o, "method");
    const json_t *t = json_object_get(o, "temperature");
    const json_t *f = json_object_get(o, "form");
    const json_t *obj = json_object_get(o, "objective");
    if (!json_is_string(m))
        return bad(err, "\"method\" is missing or not a string");
    if (calib_method_parse(json_string_value(m), &c->method))
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                           "calibrator JSON: unknown method \"%s\"",
                           json_string_value(m));
    if (obj && (!json_is_string(obj) ||
                calib_objective_parse(json_string_value(obj), &c->objective)))
        return bad(err, "\"objective\" must be \"nll\", \"ece\" or \"brier\"");
    if (c->method != CALIB_METHOD_TEMPERATURE)
        return calib__recal_from_json(o, c, err);
    if (!json_is_number(t))
        return bad(err, "\"temperature\" is missing or not a number");
    c->temperature = json_number_value(t);
    if (!(isfinite(c->temperature) && c->temperature > 0.0 &&
          isfinite(1.0 / c->temperature)))
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                           "calibrator JSON: temperature %g is not a positive "
                           "finite number with a finite 1/T", c->temperature);
    if (f && !(json_is_string(f) &&
               (!strcmp(json_string_value(f), "softmax") ||
                !strcmp(json_string_value(f), "binary"))))
        return bad(err, "\"form\" must be \"softmax\" or \"binary\"");
    c->binary = f && !strcmp(json_string_value(f), "binary");
    c->solver = c->objective == CALIB_OBJECTIVE_NLL ? "newton-log-beta"
                                                    : "grid+golden";
    return CALIB_OK;
}

/* What the fit reported: optional, checked for type when present. */
static int read_report(const json_t *o, calib_calibrator *c, calib_error *err)
{
    const json_t *it = json_object_get(o, "iterations");
    const json_t *v = json_object_get(o, "objective_value");
    const json_t *d = json_object_get(o, "diagnostics");
    const json_t *rows = json_object_get(o, "fitted_rows");
    const json_t *k = json_object_get(o, "classes");
    const json_t *s = json_object_get(o, "solver");
    json_int_t n[3] = {0, 0, 0};
    const json_t *const counts[3] = {it, rows, k};
    static const char *const names[3] = {"iterations", "fitted_rows",
                                         "classes"};
    for (int i = 0; i < 3; i++) {
        /* what to_json writes must read back: counts are integers that
         * fit their fields, so a -1 is not written as 2^64 - 1 */
        if (counts[i] && !json_is_integer(counts[i]))
            return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                               "calibrator JSON: \"%s\" is not an integer",
                               names[i]);
        n[i] = counts[i] ? json_integer_value(counts[i]) : 0;
        if (n[i] < 0 || (i == 0 && n[i] > INT_MAX))
            return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                               "calibrator JSON: \"%s\" %lld is out of "
                               "range", names[i], (long long)n[i]);
    }
    if (v && !json_is_number(v) && !json_is_null(v))
        return bad(err, "\"objective_value\" is not a number or null");
    c->iterations = (int)n[0];
    c->objective_value = json_is_number(v) ? json_number_value(v) : NAN;
    c->fitted_rows = (size_t)n[1];
    if (c->method != CALIB_METHOD_VECTOR)
        c->classes = (size_t)n[2];
    else if (k && (size_t)n[2] != c->classes)
        return bad(err, "\"classes\" differs from the length of "
                        "vector.scale");
    if (json_is_string(s) && !strcmp(json_string_value(s), "grid+golden"))
        c->solver = "grid+golden";
    if (d && !json_is_array(d))
        return bad(err, "\"diagnostics\" is not a list");
    for (size_t i = 0; d && i < json_array_size(d); i++) {
        const json_t *x = json_array_get(d, i);
        if (!json_is_string(x))
            return bad(err, "a diagnostic is not a string");
        if (calib__calibrator_note(c, "%s", json_string_value(x)))
            return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                               "out of memory");
    }
    return CALIB_OK;
}

int calib_calibrator_from_json(const char *json, size_t len,
                               calib_calibrator **out, calib_error *err)
{
    if (out)
        *out = NULL;
    if (!json || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_calibrator_from_json: NULL argument");
    json_error_t e;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
    if (!o && calib__json_status(&e) == CALIB_ENOMEM)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    if (!o)
        return calib__fail(err, CALIB_EDATA, NULL, (size_t)(e.line > 0 ? e.line : 0),
                           0, (size_t)(e.column > 0 ? e.column : 0),
                           "calibrator JSON: %s", e.text);
    calib_calibrator *c = calib__calibrator_new(CALIB_OBJECTIVE_NLL);
    int rc = !c ? calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory")
             : !json_is_object(o) ? bad(err, "not a JSON object")
                                  : read_core(o, c, err);
    if (!rc)
        rc = read_report(o, c, err);
    json_decref(o);
    if (rc) {
        calib_calibrator_free(c);
        return rc;
    }
    *out = c;
    return calib__ok(err);
}
