/* recal_json.c — the JSON members of the recalibrators other than
 * temperature scaling: an object named after the method holding its
 * parameters ("platt": {"a", "b"}, "beta": {"a", "b", "c"}, "vector":
 * {"scale": [K], "bias": [K]}, "histogram" and "isotonic": recal1d.h's
 * members), and "fitted_on" for the top-label methods.  Reading checks
 * every member and names the one at fault.
 */
#include "recal.h"

#include <stdlib.h>
#include <string.h>

static const char *const coef_names[] = {"a", "b", "c"};

static void number_list(calib__buf *b, const char *key, const double *x,
                        size_t n)
{
    calib__buf_printf(b, "\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        calib__buf_puts(b, i ? "," : "");
        calib__buf_json_number(b, x[i]);
    }
    calib__buf_puts(b, "]");
}

void calib__recal_to_json(const calib_calibrator *c, calib__buf *b)
{
    const char *name = calib_method_name(c->method);
    calib__buf_printf(b, ",\"%s\":{", name);
    switch (c->method) {
    case CALIB_METHOD_PLATT:
    case CALIB_METHOD_BETA:
        for (int j = 0; j < (c->method == CALIB_METHOD_BETA ? 3 : 2); j++) {
            calib__buf_printf(b, "%s\"%s\":", j ? "," : "", coef_names[j]);
            calib__buf_json_number(b, c->coef[j]);
        }
        break;
    case CALIB_METHOD_VECTOR:
        number_list(b, "scale", c->vec, c->classes);
        calib__buf_puts(b, ",");
        number_list(b, "bias", c->vec + c->classes, c->classes);
        break;
    case CALIB_METHOD_HISTOGRAM:
        calib__histogram_to_json(&c->hist, b);
        break;
    case CALIB_METHOD_ISOTONIC:
        calib__isotonic_to_json(&c->iso, b);
        break;
    default:
        break;
    }
    calib__buf_puts(b, "}");
    if (calib_method_toplabel(c->method))
        calib__buf_printf(b, ",\"fitted_on\":\"%s\"",
                          c->binary ? "top-label" : "distribution");
}

static int bad_member(calib_error *err, const char *method, const char *key,
                      const char *what)
{
    return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                       "calibrator JSON: \"%s%s%s\" %s", method,
                       key ? "." : "", key ? key : "", what);
}

static int read_coefs(const json_t *p, calib_calibrator *c, int n,
                      calib_error *err)
{
    const char *m = calib_method_name(c->method);
    for (int j = 0; j < n; j++) {
        const json_t *v = json_object_get(p, coef_names[j]);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return bad_member(err, m, coef_names[j],
                              "is missing or not a finite number");
        c->coef[j] = json_number_value(v);
    }
    return CALIB_OK;
}

/* One of vector's lists into x[0..n); n is taken from "scale" (*n = 0). */
static int read_list(const json_t *p, const char *key, double *x, size_t n,
                     calib_error *err)
{
    const json_t *a = json_object_get(p, key);
    if (!json_is_array(a) || json_array_size(a) != n)
        return bad_member(err, "vector", key,
                          "is missing, not a list, or of another length "
                          "than vector.scale");
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                               "calibrator JSON: \"vector.%s[%zu]\" is not "
                               "a finite number", key, i);
        x[i] = json_number_value(v);
    }
    return CALIB_OK;
}

static int read_vector(const json_t *p, calib_calibrator *c, calib_error *err)
{
    const json_t *s = json_object_get(p, "scale");
    const size_t k = json_is_array(s) ? json_array_size(s) : 0;
    if (!k)
        return bad_member(err, "vector", "scale",
                          "is missing or not a non-empty list");
    c->classes = k;
    c->vec = malloc(2 * k * sizeof *c->vec);
    if (!c->vec)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    int rc = read_list(p, "scale", c->vec, k, err);
    return rc ? rc : read_list(p, "bias", c->vec + k, k, err);
}

static int read_fitted_on(const json_t *o, calib_calibrator *c,
                          calib_error *err)
{
    const json_t *f = json_object_get(o, "fitted_on");
    if (!f)
        return CALIB_OK;
    const char *v = json_is_string(f) ? json_string_value(f) : "";
    if (strcmp(v, "top-label") && strcmp(v, "distribution"))
        return bad_member(err, "fitted_on", NULL,
                          "must be \"top-label\" or \"distribution\"");
    c->binary = !strcmp(v, "top-label");
    return CALIB_OK;
}

int calib__recal_from_json(const json_t *o, calib_calibrator *c,
                           calib_error *err)
{
    const char *m = calib_method_name(c->method);
    const json_t *p = json_object_get(o, m);
    if (!json_is_object(p))
        return bad_member(err, m, NULL, "is missing or not an object");
    static const char *const solvers[] = {
        [CALIB_METHOD_PLATT] = "newton", [CALIB_METHOD_BETA] = "newton",
        [CALIB_METHOD_VECTOR] = "l-bfgs",
        [CALIB_METHOD_HISTOGRAM] = "bin means",
        [CALIB_METHOD_ISOTONIC] = "pool adjacent violators"};
    c->solver = solvers[c->method];
    int rc = read_fitted_on(o, c, err);
    if (rc)
        return rc;
    switch (c->method) {
    case CALIB_METHOD_PLATT:
        return read_coefs(p, c, 2, err);
    case CALIB_METHOD_BETA:
        return read_coefs(p, c, 3, err);
    case CALIB_METHOD_VECTOR:
        return read_vector(p, c, err);
    case CALIB_METHOD_HISTOGRAM:
        return calib__histogram_from_json(p, &c->hist, err);
    case CALIB_METHOD_ISOTONIC:
        return calib__isotonic_from_json(p, &c->iso, err);
    default:
        return bad_member(err, m, NULL, "is not a recalibration method");
    }
}
