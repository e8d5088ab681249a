/* golden.h — what the C unit tests share: cmocka, and the golden cases.
 *
 * Golden cases are JSON files that tests/golden/gen_*.py write at test time
 * into $CALIB_GOLDEN with numbers computed by numpy, scikit-learn and scipy
 * (never by calib).  A test loads one with golden_load("name.json") and
 * reads arrays with golden_doubles()/golden_ints().  Header-only: each test
 * is one translation unit.
 */
#ifndef CALIB_TEST_GOLDEN_H
#define CALIB_TEST_GOLDEN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib.h"

/* Returns the parsed case file $CALIB_GOLDEN/name; fails the test if it
 * is missing or not JSON.  Free with json_decref(). */
static inline json_t *golden_load(const char *name)
{
    const char *dir = getenv("CALIB_GOLDEN");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "build/golden", name);
    json_error_t e;
    json_t *j = json_load_file(path, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("%s: %s (line %d)", path, e.text, e.line);
    return j;
}

/* Returns a malloc'd copy of the JSON number array obj[key], its length in
 * *n (n may be NULL).  JSON null becomes NaN. */
static inline double *golden_doubles(const json_t *obj, const char *key,
                                     size_t *n)
{
    const json_t *a = json_object_get(obj, key);
    if (!json_is_array(a))
        fail_msg("golden key '%s' is not an array", key);
    size_t len = json_array_size(a);
    double *v = malloc((len ? len : 1) * sizeof *v);
    for (size_t i = 0; i < len; i++) {
        const json_t *x = json_array_get(a, i);
        v[i] = json_is_null(x) ? NAN : json_number_value(x);
    }
    if (n)
        *n = len;
    return v;
}

static inline int64_t *golden_ints(const json_t *obj, const char *key,
                                   size_t *n)
{
    const json_t *a = json_object_get(obj, key);
    if (!json_is_array(a))
        fail_msg("golden key '%s' is not an array", key);
    size_t len = json_array_size(a);
    int64_t *v = malloc((len ? len : 1) * sizeof *v);
    for (size_t i = 0; i < len; i++)
        v[i] = json_integer_value(json_array_get(a, i));
    if (n)
        *n = len;
    return v;
}

static inline double golden_number(const json_t *obj, const char *key)
{
    const json_t *x = json_object_get(obj, key);
    if (!json_is_number(x) && !json_is_null(x))
        fail_msg("golden key '%s' is not a number", key);
    return json_is_null(x) ? NAN : json_number_value(x);
}

/* Asserts |got - want| <= tol * max(1, |want|); NaN equals NaN. */
#define assert_close(got, want, tol)                                         \
    do {                                                                     \
        const double g_ = (got), w_ = (want);                                \
        if (!(isnan(g_) && isnan(w_)) &&                                     \
            !(fabs(g_ - w_) <= (tol) * fmax(1.0, fabs(w_))))                 \
            fail_msg("%s = %.17g, expected %.17g (tol %g)", #got, g_, w_,    \
                     (double)(tol));                                         \
    } while (0)

/* Reads `path` and returns the dataset; fails the test with the library's
 * formatted error if it cannot.  Free with calib_dataset_free(). */
static inline calib_dataset *read_ok(const char *path,
                                     const calib_read_options *o)
{
    calib_dataset *ds = (calib_dataset *)1;
    calib_error e;
    if (calib_read(path, o, &ds, &e) != CALIB_OK) {
        char m[1200];
        fail_msg("%s", calib_error_format(&e, m, sizeof m));
    }
    assert_non_null(ds);
    return ds;
}

/* Reads `path`, asserts that it fails with `code` (status and err->code)
 * and leaves no dataset, and returns the error. */
static inline calib_error read_fails(const char *path,
                                     const calib_read_options *o, int code)
{
    calib_dataset *ds = (calib_dataset *)1;
    calib_error e;
    const int rc = calib_read(path, o, &ds, &e);
    if (rc != code)
        fail_msg("%s: status %d, expected %d (%s)", path, rc, code,
                 e.message);
    assert_null(ds);
    assert_int_equal(e.code, code);
    return e;
}

/* Wraps caller arrays (calib_dataset_wrap), failing the test with the
 * library's message if it cannot.  Free with calib_dataset_free(). */
static inline calib_dataset *wrap_ok(const calib_arrays *a)
{
    calib_dataset *ds = NULL;
    calib_error err;
    if (calib_dataset_wrap(a, &ds, &err) != CALIB_OK)
        fail_msg("wrap: %s (row %zu col %zu)", err.message, err.row,
                 err.column);
    return ds;
}

/* calib_evaluate, failing the test with the library's message if it
 * cannot.  Free with calib_metrics_free(). */
static inline calib_metrics *evaluate_ok(const calib_dataset *ds,
                                         const calib_eval_options *o)
{
    calib_metrics *m = NULL;
    calib_error err;
    if (calib_evaluate(ds, o, &m, &err) != CALIB_OK)
        fail_msg("evaluate: %s", err.message);
    return m;
}

static inline void assert_contains(const char *s, const char *part)
{
    if (!strstr(s, part))
        fail_msg("'%s' does not contain '%s'", s, part);
}

/* The directory of ../shared/data, or NULL when it is not there (a user's
 * clone): tests that need it call skip() then.  $CALIB_SHARED overrides. */
static inline const char *golden_shared_dir(void)
{
    static const char *cands[] = {"../shared/data", "../../shared/data"};
    const char *env = getenv("CALIB_SHARED");
    if (env)
        return env;
    for (size_t i = 0; i < sizeof cands / sizeof *cands; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/densenet40-cifar10-logits/README.txt",
                 cands[i]);
        FILE *f = fopen(p, "r");
        if (f) {
            fclose(f);
            return cands[i];
        }
    }
    return NULL;
}

/* Asserts that the calibrator JSON `js` is refused with CALIB_EDATA (the
 * out-pointer NULL, a message; at `line` when it is not 0) and returns the
 * error. */
static inline calib_error calibrator_json_fails(const char *js, size_t line)
{
    calib_calibrator *c = (calib_calibrator *)1;
    calib_error e = {0};
    assert_int_equal(calib_calibrator_from_json(js, strlen(js), &c, &e),
                     CALIB_EDATA);
    assert_null(c);
    assert_int_equal(e.code, CALIB_EDATA);
    assert_true(e.message[0] != 0);
    if (line)
        assert_int_equal(e.line, line);
    return e;
}

/* Fails unless x and y have the same bits. */
static inline void same_double(double x, double y, const char *what)
{
    if (memcmp(&x, &y, sizeof x) != 0)
        fail_msg("%s: %.17g != %.17g", what, x, y);
}

/* Fails unless a and b agree bit for bit: every metric, the bins, the
 * groups (matched by name). */
static inline void assert_same_metrics(const calib_metrics *a,
                                       const calib_metrics *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->classes, b->classes);
    same_double(a->weight, b->weight, "weight");
    same_double(a->accuracy, b->accuracy, "accuracy");
    same_double(a->mean_confidence, b->mean_confidence, "mean_confidence");
    same_double(a->ece, b->ece, "ece");
    same_double(a->mce, b->mce, "mce");
    same_double(a->rmsce, b->rmsce, "rmsce");
    same_double(a->nll, b->nll, "nll");
    same_double(a->brier, b->brier, "brier");
    assert_int_equal(a->nll_clipped_rows, b->nll_clipped_rows);
    assert_int_equal(a->nll_from_probs, b->nll_from_probs);
    assert_int_equal(a->brier_kind, b->brier_kind);
    assert_int_equal(a->binning, b->binning);
    assert_int_equal(a->rule, b->rule);
    assert_int_equal(a->ece_n, b->ece_n);
    for (int id = 0; id < CALIB_M_COUNT; id++)
        same_double(calib_metric_value(a, (calib_metric_id)id),
                    calib_metric_value(b, (calib_metric_id)id),
                    calib_metric_name((calib_metric_id)id));
    assert_int_equal(a->n_bins, b->n_bins);
    for (size_t i = 0; i < a->n_bins; i++) {
        const calib_bin *x = &a->bins[i], *y = &b->bins[i];
        assert_int_equal(x->count, y->count);
        same_double(x->lower, y->lower, "bin lower");
        same_double(x->upper, y->upper, "bin upper");
        same_double(x->weight, y->weight, "bin weight");
        same_double(x->mean_confidence, y->mean_confidence, "bin conf");
        same_double(x->accuracy, y->accuracy, "bin accuracy");
    }
    assert_int_equal(a->n_groups, b->n_groups);
    for (size_t g = 0; g < a->n_groups; g++) {
        size_t h = 0; /* groups may come in another order: match names */
        while (h < b->n_groups && strcmp(a->group_names[g], b->group_names[h]))
            h++;
        assert_true(h < b->n_groups);
        assert_same_metrics(a->groups[g], b->groups[h]);
    }
}

#endif
