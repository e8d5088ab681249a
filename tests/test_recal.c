/* test_recal.c — the recalibrators beyond temperature scaling: Platt and
 * beta calibration against scikit-learn, vector scaling against scipy
 * (tests/golden/gen_recal.py), and their properties: a calibrated input
 * stays nearly unchanged, top-label methods keep every correct flag,
 * isotonic output is monotone, JSON round trips and refuses malformed
 * files, cross-fitting is deterministic, and on ../shared/data every
 * method fitted on validation lowers the test ECE.
 */
#include "golden.h"

#include <math.h>

/* A dataset over caller arrays: top-label (v = conf, lab = NULL, c =
 * correct) or logits (v = scores, lab = labels, k classes). */
static calib_dataset *wrap(const double *v, const int32_t *lab,
                           const uint8_t *c, size_t n, size_t k)
{
    calib_arrays a = {.kind = lab ? CALIB_LOGITS : CALIB_TOPLABEL, .n = n,
                      .k = k, .dtype = CALIB_F64};
    if (lab)
        a.scores = v, a.labels = lab;
    else
        a.conf = v, a.correct = c;
    calib_dataset *ds = NULL;
    calib_error e = {0};
    if (calib_dataset_wrap(&a, &ds, &e))
        fail_msg("wrap: %s", e.message);
    return ds;
}

static calib_calibrator *fit_m(const calib_dataset *ds, calib_method m,
                               int threads)
{
    calib_fit_options o;
    calib_fit_options_init(&o);
    o.method = m;
    o.eval.threads = threads;
    calib_calibrator *c = NULL;
    calib_error e = {0};
    if (calib_fit(ds, &o, &c, &e))
        fail_msg("fit %s: %s", calib_method_name(m), e.message);
    return c;
}

static double *param_vec(const calib_calibrator *c, size_t *n)
{
    *n = calib_calibrator_params(c, NULL, 0);
    double *x = malloc((*n ? *n : 1) * sizeof *x);
    assert_int_equal(calib_calibrator_params(c, x, *n), *n);
    return x;
}

/* The calibrated probabilities (or confidences) of ds under c. */
static double *applied(const calib_calibrator *c, const calib_dataset *ds,
                       size_t *n)
{
    calib_dataset *out = NULL;
    calib_error e = {0};
    if (calib_apply(c, ds, &out, &e))
        fail_msg("apply: %s", e.message);
    *n = calib_dataset_export_len(out);
    double *q = malloc((*n ? *n : 1) * sizeof *q);
    assert_int_equal(calib_dataset_export(out, q, *n, NULL), CALIB_OK);
    calib_dataset_free(out);
    return q;
}

static uint8_t *flags(const json_t *cs, size_t *n)
{
    int64_t *v = golden_ints(cs, "correct", n);
    uint8_t *c = malloc(*n);
    for (size_t i = 0; i < *n; i++)
        c[i] = (uint8_t)v[i];
    free(v);
    return c;
}

/* ---- golden fits --------------------------------------------------- */

/* Parameters within 1e-6 of scikit-learn's, and calib's NLL no higher
 * than the reference's (1e-10 relative). */
static void golden_binary(const char *key, calib_method m, int np)
{
    json_t *doc = golden_load("recal.json");
    const json_t *cases = json_object_get(doc, key);
    static const char *const names[] = {"a", "b", "c"};
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        const json_t *cs = json_array_get(cases, ci);
        size_t n;
        double *p = golden_doubles(cs, "conf", &n);
        uint8_t *c = flags(cs, &n);
        calib_dataset *ds = wrap(p, NULL, c, n, 0);
        calib_calibrator *cal = fit_m(ds, m, 1);
        size_t nx;
        double *x = param_vec(cal, &nx);
        assert_int_equal(nx, (size_t)np);
        for (int j = 0; j < np; j++) {
            const double want = golden_number(cs, names[j]);
            print_message("  %s[%zu] %s %.12g sklearn %.12g\n", key, ci,
                          names[j], x[j], want);
            if (want == 0.0)
                assert_true(x[j] == 0.0);
            assert_close(x[j], want, 1e-6);
        }
        const double ref = golden_number(cs, "nll");
        assert_true(calib_calibrator_objective_value(cal) <= ref * (1 + 1e-10));
        free(x);
        calib_calibrator_free(cal);
        calib_dataset_free(ds);
        free(p);
        free(c);
    }
    json_decref(doc);
}

static void test_golden_platt(void **state)
{
    golden_binary("platt", CALIB_METHOD_PLATT, 2);
}

static void test_golden_beta(void **state)
{
    golden_binary("beta", CALIB_METHOD_BETA, 3);
}

/* Vector scaling: scipy's L-BFGS-B optimum; the same bits for 1 and 3
 * threads. */
static void test_golden_vector(void **state)
{
    json_t *doc = golden_load("recal.json");
    const json_t *cases = json_object_get(doc, "vector");
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        const json_t *cs = json_array_get(cases, ci);
        size_t n, nz, k = (size_t)json_integer_value(json_object_get(cs, "k"));
        double *z = golden_doubles(cs, "logits", &nz);
        int64_t *y64 = golden_ints(cs, "labels", &n);
        int32_t *y = malloc(n * sizeof *y);
        for (size_t i = 0; i < n; i++)
            y[i] = (int32_t)y64[i];
        calib_dataset *ds = wrap(z, y, NULL, n, k);
        calib_calibrator *c1 = fit_m(ds, CALIB_METHOD_VECTOR, 1);
        calib_calibrator *c3 = fit_m(ds, CALIB_METHOD_VECTOR, 3);
        size_t nx, nx3;
        double *x = param_vec(c1, &nx), *x3 = param_vec(c3, &nx3);
        assert_int_equal(nx, 2 * k);
        assert_memory_equal(x, x3, nx * sizeof *x);
        double *sc = golden_doubles(cs, "scale", NULL);
        double *bi = golden_doubles(cs, "bias", NULL);
        for (size_t j = 0; j < k; j++) {
            assert_close(x[j], sc[j], 1e-5);
            assert_close(x[k + j], bi[j], 1e-5);
        }
        const double ref = golden_number(cs, "nll");
        print_message("  vector k=%zu: NLL %.17g scipy %.17g, %d iterations\n",
                      k, calib_calibrator_objective_value(c1), ref,
                      calib_calibrator_iterations(c1));
        assert_true(calib_calibrator_objective_value(c1) <= ref * (1 + 1e-10));
        free(x), free(x3), free(sc), free(bi), free(z), free(y), free(y64);
        calib_calibrator_free(c1);
        calib_calibrator_free(c3);
        calib_dataset_free(ds);
    }
    json_decref(doc);
}

/* ---- properties ---------------------------------------------------- */

/* splitmix64 as a uniform in [0, 1): the tests' own seeded source. */
static double uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

/* N rows with p ~ U(0.02, 0.98) and correct ~ Bernoulli(p): calibrated.
 * Every top-label map stays within `tol` of the identity on [0.1, 0.9]. */
static void test_calibrated_toplabel_unchanged(void **state)
{
    const size_t n = 200000;
    double *p = malloc(n * sizeof *p);
    uint8_t *c = malloc(n);
    uint64_t s = 7;
    for (size_t i = 0; i < n; i++) {
        p[i] = 0.02 + 0.96 * uniform(&s);
        c[i] = uniform(&s) < p[i];
    }
    calib_dataset *ds = wrap(p, NULL, c, n, 0);
    const calib_method ms[] = {CALIB_METHOD_PLATT, CALIB_METHOD_BETA,
                               CALIB_METHOD_HISTOGRAM, CALIB_METHOD_ISOTONIC,
                               CALIB_METHOD_TEMPERATURE};
    /* histogram: a step function, within half a bin (1/30) of p, plus
     * sampling noise */
    const double tol[] = {0.01, 0.01, 1.0 / 30 + 0.01, 0.04, 0.01};
    double grid[81];
    uint8_t gc[81] = {0};
    for (int i = 0; i < 81; i++)
        grid[i] = 0.1 + 0.01 * i;
    calib_dataset *g = wrap(grid, NULL, gc, 81, 0);
    for (int m = 0; m < 5; m++) {
        calib_calibrator *cal = fit_m(ds, ms[m], 0);
        size_t nq;
        double *q = applied(cal, g, &nq);
        double worst = 0.0;
        for (int i = 0; i < 81; i++)
            worst = fmax(worst, fabs(q[i] - grid[i]));
        print_message("  %s: max |map(p) - p| = %.4f\n",
                      calib_method_name(ms[m]), worst);
        assert_true(worst < tol[m]);
        free(q);
        calib_calibrator_free(cal);
    }
    calib_dataset_free(g);
    calib_dataset_free(ds);
    free(p);
    free(c);
}

/* Logits whose softmax is the truth: vector scaling stays near a = 1,
 * b = 0 (b up to a common shift, which the fit keeps at sum 0). */
static void test_calibrated_vector_unchanged(void **state)
{
    const size_t n = 100000, k = 4;
    double *z = malloc(n * k * sizeof *z);
    int32_t *y = malloc(n * sizeof *y);
    uint64_t s = 11;
    for (size_t i = 0; i < n; i++) {
        double e[4], sum = 0.0, u = uniform(&s);
        for (size_t j = 0; j < k; j++)
            sum += e[j] = exp(z[i * k + j] = 3.0 * uniform(&s) - 1.5);
        y[i] = (int32_t)(k - 1);
        for (size_t j = 0, acc = 0; j < k && !acc; j++)
            if ((u -= e[j] / sum) < 0)
                y[i] = (int32_t)j, acc = 1;
    }
    calib_dataset *ds = wrap(z, y, NULL, n, k);
    calib_calibrator *c = fit_m(ds, CALIB_METHOD_VECTOR, 0);
    size_t nx;
    double *x = param_vec(c, &nx);
    for (size_t j = 0; j < k; j++) {
        assert_true(fabs(x[j] - 1.0) < 0.04);
        assert_true(fabs(x[k + j]) < 0.04);
    }
    free(x);
    calib_calibrator_free(c);
    calib_dataset_free(ds);
    free(z);
    free(y);
}

/* Seeded logits (n x 3) with labels drawn from a sharpened softmax. */
static calib_dataset *logit_set(size_t n, uint64_t seed, double **z,
                                int32_t **y)
{
    *z = malloc(n * 3 * sizeof **z);
    *y = malloc(n * sizeof **y);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < 3; j++)
            (*z)[i * 3 + j] = 4.0 * uniform(&seed);
        (*y)[i] = (int32_t)(uniform(&seed) * 3);
        if (uniform(&seed) < 0.6)
            (*y)[i] = (*z)[i * 3] > (*z)[i * 3 + 1] ? 0 : 1;
    }
    return wrap(*z, *y, NULL, n, 3);
}

static double accuracy_of(const calib_dataset *ds)
{
    calib_metrics *m = NULL;
    assert_int_equal(calib_evaluate(ds, NULL, &m, NULL), CALIB_OK);
    const double a = m->accuracy;
    calib_metrics_free(m);
    return a;
}

/* Top-label methods on distribution rows return top-label rows whose
 * correct flag is each row's own (checked one row at a time), and
 * isotonic output is monotone in the confidence. */
static void test_toplabel_keeps_correct(void **state)
{
    double *z;
    int32_t *y;
    calib_dataset *ds = logit_set(300, 5, &z, &y);
    const calib_method ms[] = {CALIB_METHOD_PLATT, CALIB_METHOD_BETA,
                               CALIB_METHOD_HISTOGRAM, CALIB_METHOD_ISOTONIC};
    for (int m = 0; m < 4; m++) {
        calib_calibrator *c = fit_m(ds, ms[m], 0);
        for (size_t i = 0; i < 300; i++) {
            calib_dataset *one = wrap(z + 3 * i, y + i, NULL, 1, 3), *out;
            assert_int_equal(calib_apply(c, one, &out, NULL), CALIB_OK);
            assert_int_equal(calib_dataset_kind(out), CALIB_TOPLABEL);
            assert_true(accuracy_of(out) == accuracy_of(one));
            calib_dataset_free(out);
            calib_dataset_free(one);
        }
        calib_calibrator_free(c);
    }
    calib_calibrator *iso = fit_m(ds, CALIB_METHOD_ISOTONIC, 0);
    double grid[1001];
    uint8_t gc[1001] = {0};
    for (int i = 0; i <= 1000; i++)
        grid[i] = i / 1000.0;
    calib_dataset *g = wrap(grid, NULL, gc, 1001, 0);
    size_t nq;
    double *q = applied(iso, g, &nq);
    for (size_t i = 1; i < nq; i++)
        assert_true(q[i] >= q[i - 1]);
    free(q);
    calib_dataset_free(g);
    calib_calibrator_free(iso);
    calib_dataset_free(ds);
    free(z);
    free(y);
}

/* Every method: to_json, from_json, the same parameters and outputs. */
static void test_json_round_trip(void **state)
{
    double *z;
    int32_t *y;
    calib_dataset *ds = logit_set(500, 9, &z, &y);
    for (int m = 0; m < CALIB_METHOD_COUNT; m++) {
        calib_calibrator *c = fit_m(ds, (calib_method)m, 0), *back = NULL;
        char *json = NULL;
        assert_int_equal(calib_calibrator_to_json(c, &json, NULL), CALIB_OK);
        calib_error e = {0};
        if (calib_calibrator_from_json(json, strlen(json), &back, &e))
            fail_msg("%s: %s\n%s", calib_method_name(m), e.message, json);
        assert_int_equal(calib_calibrator_method(back), m);
        size_t n1, n2, q1n, q2n;
        double *p1 = param_vec(c, &n1), *p2 = param_vec(back, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(p1, p2, n1 * sizeof *p1);
        double *q1 = applied(c, ds, &q1n), *q2 = applied(back, ds, &q2n);
        assert_int_equal(q1n, q2n);
        assert_memory_equal(q1, q2, q1n * sizeof *q1);
        free(p1), free(p2), free(q1), free(q2), free(json);
        calib_calibrator_free(c);
        calib_calibrator_free(back);
    }
    calib_dataset_free(ds);
    free(z);
    free(y);
}

static void json_fails(const char *json, const char *part)
{
    assert_contains(calibrator_json_fails(json, 0).message, part);
}

static void test_json_errors(void **state)
{
    json_fails("{\"method\":\"platt\"}", "\"platt\"");
    json_fails("{\"method\":\"platt\",\"platt\":{\"b\":1}}", "platt.a");
    json_fails("{\"method\":\"beta\",\"beta\":{\"a\":1,\"b\":1,\"c\":\"x\"}}",
               "beta.c");
    json_fails("{\"method\":\"vector\",\"vector\":{\"scale\":[1,2],"
               "\"bias\":[0]}}", "vector.bias");
    json_fails("{\"method\":\"vector\",\"vector\":{\"scale\":[1,null],"
               "\"bias\":[0,0]}}", "vector.scale[1]");
    json_fails("{\"method\":\"vector\",\"vector\":{\"scale\":[1],\"bias\":[0]},"
               "\"classes\":3}", "classes");
    json_fails("{\"method\":\"platt\",\"platt\":{\"a\":1,\"b\":0},"
               "\"fitted_on\":7}", "fitted_on");
    json_fails("{\"method\":\"histogram\"}", "histogram");
    json_fails("{\"method\":\"isotonic\",\"isotonic\":{}}", "thresholds");
    json_fails("{\"method\":\"magic\"}", "unknown method");
}

/* Separable data: a defined map and a diagnostic, never an error. */
static void test_separable(void **state)
{
    double p[6] = {0.1, 0.2, 0.3, 0.7, 0.8, 0.9};
    uint8_t c[6] = {0, 0, 0, 1, 1, 1}, all[6] = {1, 1, 1, 1, 1, 1};
    const calib_method ms[2] = {CALIB_METHOD_PLATT, CALIB_METHOD_BETA};
    for (int m = 0; m < 2; m++) {
        calib_dataset *ds = wrap(p, NULL, c, 6, 0);
        calib_calibrator *cal = fit_m(ds, ms[m], 1);
        assert_int_equal(calib_calibrator_diagnostic_count(cal), 1);
        assert_contains(calib_calibrator_diagnostic(cal, 0), "no finite");
        size_t nq;
        double *q = applied(cal, ds, &nq);
        assert_true(q[2] < 1e-6 && q[3] > 1 - 1e-6);
        free(q);
        calib_calibrator_free(cal);
        calib_dataset_free(ds);
        ds = wrap(p, NULL, all, 6, 0);
        cal = fit_m(ds, ms[m], 1);
        assert_contains(calib_calibrator_diagnostic(cal, 0), "every fitting "
                                                             "row is correct");
        q = applied(cal, ds, &nq);
        assert_true(q[0] > 1 - 1e-12);
        free(q);
        calib_calibrator_free(cal);
        calib_dataset_free(ds);
    }
}

/* The same folds and predictions for a seed at any thread count; another
 * seed gives others; k outside [2, N] is refused. */
static void test_cross_fit(void **state)
{
    double *z;
    int32_t *y;
    calib_dataset *ds = logit_set(1000, 3, &z, &y);
    calib_fit_options o;
    calib_fit_options_init(&o);
    double *q[3];
    for (int r = 0; r < 3; r++) {
        o.method = CALIB_METHOD_PLATT;
        o.eval.threads = r + 1;
        calib_dataset *oof = NULL;
        assert_int_equal(calib_cross_fit(ds, &o, 5, r == 2 ? 43 : 42, &oof,
                                         NULL), CALIB_OK);
        assert_int_equal(calib_dataset_rows(oof), 1000);
        assert_int_equal(calib_dataset_kind(oof), CALIB_TOPLABEL);
        assert_true(accuracy_of(oof) == accuracy_of(ds));
        q[r] = malloc(1000 * sizeof **q);
        assert_int_equal(calib_dataset_export(oof, q[r], 1000, NULL), 0);
        calib_dataset_free(oof);
    }
    assert_memory_equal(q[0], q[1], 1000 * sizeof **q);
    assert_true(memcmp(q[0], q[2], 1000 * sizeof **q) != 0);
    calib_dataset *bad = (calib_dataset *)1;
    assert_int_equal(calib_cross_fit(ds, &o, 1, 0, &bad, NULL), CALIB_EINVAL);
    assert_null(bad);
    assert_int_equal(calib_cross_fit(ds, &o, 1001, 0, &bad, NULL),
                     CALIB_EINVAL);
    for (int r = 0; r < 3; r++)
        free(q[r]);
    calib_dataset_free(ds);
    free(z);
    free(y);
}

static void test_names_and_options(void **state)
{
    for (int m = 0; m < CALIB_METHOD_COUNT; m++) {
        calib_method back;
        assert_int_equal(calib_method_parse(calib_method_name(m), &back), 0);
        assert_int_equal(back, m);
    }
    assert_int_equal(calib_method_parse("all", NULL), CALIB_EINVAL);
    assert_null(calib_method_name(CALIB_METHOD_COUNT));
    assert_true(calib_method_toplabel(CALIB_METHOD_ISOTONIC));
    assert_false(calib_method_toplabel(CALIB_METHOD_VECTOR));
    double p[2] = {0.3, 0.8};
    uint8_t c[2] = {0, 1};
    calib_dataset *ds = wrap(p, NULL, c, 2, 0);
    calib_fit_options o;
    calib_fit_options_init(&o);
    assert_int_equal(o.hist_bins, 15);
    calib_calibrator *cal = NULL;
    calib_error e = {0};
    o.method = CALIB_METHOD_VECTOR;
    assert_int_equal(calib_fit(ds, &o, &cal, &e), CALIB_EINVAL);
    assert_contains(e.message, "top-label");
    o.method = CALIB_METHOD_PLATT, o.objective = CALIB_OBJECTIVE_ECE;
    assert_int_equal(calib_fit(ds, &o, &cal, &e), CALIB_EINVAL);
    o.method = CALIB_METHOD_HISTOGRAM, o.objective = CALIB_OBJECTIVE_NLL;
    o.hist_bins = 0;
    assert_int_equal(calib_fit(ds, &o, &cal, &e), CALIB_EINVAL);
    assert_null(cal);
    calib_dataset_free(ds);
}

/* ../shared/data: every method fitted on validation lowers test ECE. */
static void test_densenet(void **state)
{
    const char *dir = golden_shared_dir();
    if (!dir)
        skip();
    char v[1024], t[1024];
    snprintf(v, sizeof v, "%s/densenet40-cifar10-logits/val.csv", dir);
    snprintf(t, sizeof t, "%s/densenet40-cifar10-logits/test.csv", dir);
    calib_dataset *val = read_ok(v, NULL), *test = read_ok(t, NULL);
    calib_metrics *before = NULL;
    assert_int_equal(calib_evaluate(test, NULL, &before, NULL), 0);
    for (int m = 0; m < CALIB_METHOD_COUNT; m++) {
        calib_calibrator *c = fit_m(val, (calib_method)m, 0);
        calib_dataset *out = NULL;
        calib_metrics *after = NULL;
        assert_int_equal(calib_apply(c, test, &out, NULL), 0);
        assert_int_equal(calib_evaluate(out, NULL, &after, NULL), 0);
        print_message("  %s: test ECE %.6f -> %.6f\n",
                      calib_method_name(m), before->ece, after->ece);
        assert_true(after->ece < before->ece / 3);
        calib_metrics_free(after);
        calib_dataset_free(out);
        calib_calibrator_free(c);
    }
    calib_metrics_free(before);
    calib_dataset_free(val);
    calib_dataset_free(test);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_platt),
        cmocka_unit_test(test_golden_beta),
        cmocka_unit_test(test_golden_vector),
        cmocka_unit_test(test_calibrated_toplabel_unchanged),
        cmocka_unit_test(test_calibrated_vector_unchanged),
        cmocka_unit_test(test_toplabel_keeps_correct),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_separable),
        cmocka_unit_test(test_cross_fit),
        cmocka_unit_test(test_names_and_options),
        cmocka_unit_test(test_densenet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
