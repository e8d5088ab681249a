/* test_extra.c — the metrics beyond the bins against golden numbers
 * (tests/golden/gen_extra.py: numpy, scikit-learn, direct sums over rows),
 * their invariance to threads and to weights-as-repeated-rows, smooth ECE
 * properties, the public selective calls and the smooth curve.
 */
#include "golden.h"

#include <stdint.h>

/* ------------------------------------------------------------------ */
/* A golden case as a dataset                                          */
/* ------------------------------------------------------------------ */

typedef struct xcase {
    const json_t *j;
    calib_arrays a;
    calib_eval_options opt;
    double *values, *weights;
    uint8_t *correct;
    int32_t *labels;
    uint32_t *groups;
    const char **names;
    calib_dataset *ds;
} xcase;

static void load_groups(xcase *c)
{
    size_t n, k;
    int64_t *g = golden_ints(c->j, "groups", &n);
    const json_t *names = json_object_get(c->j, "group_names");
    k = json_array_size(names);
    c->groups = malloc(n * sizeof *c->groups);
    c->names = malloc(k * sizeof *c->names);
    for (size_t i = 0; i < n; i++)
        c->groups[i] = (uint32_t)g[i];
    for (size_t i = 0; i < k; i++)
        c->names[i] = json_string_value(json_array_get(names, i));
    c->a.groups = c->groups;
    c->a.n_groups = k;
    c->a.group_names = c->names;
    free(g);
}

static void xcase_load(xcase *c, const json_t *j)
{
    memset(c, 0, sizeof *c);
    c->j = j;
    const char *kind = json_string_value(json_object_get(j, "kind"));
    size_t n;
    if (strcmp(kind, "top") == 0) {
        c->values = golden_doubles(j, "conf", &n);
        int64_t *cor = golden_ints(j, "correct", &n);
        c->correct = malloc(n);
        for (size_t i = 0; i < n; i++)
            c->correct[i] = (uint8_t)cor[i];
        free(cor);
        c->a = (calib_arrays){.kind = CALIB_TOPLABEL, .n = n,
                              .conf = c->values, .correct = c->correct};
    } else {
        size_t len;
        c->values = golden_doubles(j, "scores", &len);
        int64_t *y = golden_ints(j, "labels", &n);
        c->labels = malloc(n * sizeof *c->labels);
        for (size_t i = 0; i < n; i++)
            c->labels[i] = (int32_t)y[i];
        free(y);
        c->a = (calib_arrays){.kind = strcmp(kind, "logits") == 0
                                          ? CALIB_LOGITS
                                          : CALIB_PROBS,
                              .n = n, .k = len / n, .scores = c->values,
                              .labels = c->labels};
    }
    if (json_object_get(j, "weights"))
        c->a.weights = c->weights = golden_doubles(j, "weights", NULL);
    if (json_object_get(j, "groups"))
        load_groups(c);
    calib_eval_options_init(&c->opt);
    c->opt.bins = (int)json_integer_value(json_object_get(j, "bins"));
    if (strcmp(json_string_value(json_object_get(j, "binning")), "mass") == 0)
        c->opt.binning = CALIB_BINNING_MASS;
    calib_error err = {0};
    if (calib_dataset_wrap(&c->a, &c->ds, &err) != CALIB_OK)
        fail_msg("%s: %s", json_string_value(json_object_get(j, "name")),
                 err.message);
}

static void xcase_free(xcase *c)
{
    calib_dataset_free(c->ds);
    free(c->values);
    free(c->weights);
    free(c->correct);
    free(c->labels);
    free(c->groups);
    free(c->names);
}

static calib_metrics *eval_threads(const xcase *c, int threads)
{
    calib_eval_options o = c->opt;
    o.threads = threads;
    calib_metrics *m = NULL;
    calib_error err = {0};
    if (calib_evaluate(c->ds, &o, &m, &err) != CALIB_OK)
        fail_msg("calib_evaluate: %s", err.message);
    return m;
}

/* ------------------------------------------------------------------ */
/* Comparisons                                                         */
/* ------------------------------------------------------------------ */

static double value_of(const calib_metrics *m, const char *key)
{
    if (strcmp(key, "smece_bandwidth") == 0)
        return m->smece_bandwidth;
    for (int id = 0; id < CALIB_M_COUNT; id++)
        if (strcmp(key, calib_metric_name((calib_metric_id)id)) == 0)
            return calib_metric_value(m, (calib_metric_id)id);
    fail_msg("unknown metric %s", key);
    return NAN;
}

/* smECE: the grid's interpolation error (calib.h: below ~1.3e-4
 * relative) plus the reference's own trapezoid; everything else is a sum
 * of a few terms, equal to rounding. */
static double tolerance(const char *key, double want)
{
    if (strncmp(key, "smece", 5) == 0)
        return 1e-3 * fabs(want) + 1e-7;
    return 1e-11 * fabs(want) + 1e-12;
}

static void compare(const char *name, const calib_metrics *m,
                    const json_t *expect)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)expect, key, v)
    {
        const double got = value_of(m, key);
        if (json_is_null(v)) {
            if (!isnan(got))
                fail_msg("%s: %s = %.17g, expected NaN", name, key, got);
            continue;
        }
        const double want = json_number_value(v);
        if (!(fabs(got - want) <= tolerance(key, want)))
            fail_msg("%s: %s = %.17g, expected %.17g", name, key, got, want);
    }
}

/* Every metric of a and b (and their groups) has the same bits. */
static void assert_same_bits(const calib_metrics *a, const calib_metrics *b)
{
    for (int id = 0; id < CALIB_M_COUNT; id++) {
        const double x = calib_metric_value(a, (calib_metric_id)id);
        const double y = calib_metric_value(b, (calib_metric_id)id);
        if (memcmp(&x, &y, sizeof x) != 0)
            fail_msg("%s: %.17g != %.17g",
                     calib_metric_name((calib_metric_id)id), x, y);
    }
    assert_memory_equal(&a->smece_bandwidth, &b->smece_bandwidth,
                        sizeof(double));
    assert_int_equal(a->n_groups, b->n_groups);
    for (size_t g = 0; g < a->n_groups; g++)
        assert_same_bits(a->groups[g], b->groups[g]);
}

static void compare_levels(const xcase *c)
{
    size_t n, n2;
    double *cov = golden_doubles(c->j, "coverage", &n);
    double *want = golden_doubles(c->j, "acc_at_cov", NULL);
    double *risk = golden_doubles(c->j, "risk", &n2);
    double *want2 = golden_doubles(c->j, "cov_at_risk", NULL);
    double got[64], got2[64];
    assert_int_equal(calib_accuracy_at_coverage(c->ds, cov, n, got, 1, NULL),
                     CALIB_OK);
    assert_int_equal(calib_coverage_at_risk(c->ds, risk, n2, got2, 2, NULL),
                     CALIB_OK);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(got[i] - want[i]) <= 1e-12);
    for (size_t i = 0; i < n2; i++)
        if (!(fabs(got2[i] - want2[i]) <= 1e-12))
            fail_msg("coverage at risk %g: %.17g, expected %.17g", risk[i],
                     got2[i], want2[i]);
    free(cov);
    free(want);
    free(risk);
    free(want2);
}

static void check_case(const json_t *j)
{
    xcase c;
    xcase_load(&c, j);
    const char *name = json_string_value(json_object_get(j, "name"));
    calib_metrics *m = eval_threads(&c, 1);
    compare(name, m, json_object_get(j, "expect"));
    const json_t *gap = json_object_get(j, "brier_gap");
    if (json_is_number(gap)) {
        const double mine = m->brier - (m->brier_reliability -
                                        m->brier_resolution +
                                        m->brier_uncertainty);
        assert_true(fabs(mine - json_number_value(gap)) <= 1e-12);
    }
    const json_t *ge = json_object_get(j, "group_expect");
    for (size_t g = 0; g < json_array_size(ge); g++)
        compare(name, m->groups[g], json_array_get(ge, g));
    for (int t = 2; t <= 8; t *= 4) {
        calib_metrics *mt = eval_threads(&c, t);
        assert_same_bits(m, mt);
        calib_metrics_free(mt);
    }
    compare_levels(&c);
    calib_metrics_free(m);
    xcase_free(&c);
}

static void test_golden_cases(void **state)
{
    json_t *cases = golden_load("extra_cases.json");
    size_t i;
    json_t *j;
    json_array_foreach(cases, i, j) check_case(j);
    json_decref(cases);
}

/* ------------------------------------------------------------------ */
/* Weights are repeated rows, bit for bit                              */
/* ------------------------------------------------------------------ */

static void test_weights_are_rows(void **state)
{
    json_t *cases = golden_load("extra_cases.json");
    size_t i;
    json_t *j;
    json_array_foreach(cases, i, j)
    {
        if (!json_object_get(j, "weights") || json_object_get(j, "groups"))
            continue;
        xcase c;
        xcase_load(&c, j);
        size_t total = 0;
        for (size_t r = 0; r < c.a.n; r++)
            total += (size_t)c.weights[r];
        double *conf = malloc(total * sizeof *conf);
        uint8_t *cor = malloc(total);
        for (size_t r = 0, k = 0; r < c.a.n; r++)
            for (size_t w = 0; w < (size_t)c.weights[r]; w++, k++) {
                conf[k] = c.values[r];
                cor[k] = c.correct[r];
            }
        calib_arrays a = {.kind = CALIB_TOPLABEL, .n = total, .conf = conf,
                          .correct = cor};
        calib_dataset *ds = NULL;
        assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
        calib_metrics *mw = eval_threads(&c, 2), *mr = NULL;
        assert_int_equal(calib_evaluate(ds, &c.opt, &mr, NULL), CALIB_OK);
        assert_same_bits(mw, mr);
        calib_metrics_free(mw);
        calib_metrics_free(mr);
        calib_dataset_free(ds);
        free(conf);
        free(cor);
        xcase_free(&c);
    }
    json_decref(cases);
}

/* ------------------------------------------------------------------ */
/* Smooth ECE properties                                               */
/* ------------------------------------------------------------------ */

static double uniform(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return (double)(*s >> 11) * 0x1p-53;
}

/* smECE of n rows p ~ U(lo, hi), correct ~ Bernoulli(p - offset). */
static double smece_of(size_t n, double lo, double hi, double offset,
                       double *bandwidth)
{
    double *p = malloc(n * sizeof *p);
    uint8_t *c = malloc(n);
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        p[i] = lo + (hi - lo) * uniform(&s);
        c[i] = uniform(&s) < p[i] - offset;
    }
    calib_arrays a = {.kind = CALIB_TOPLABEL, .n = n, .conf = p,
                      .correct = c};
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.extra = CALIB_EXTRA_SMOOTH;
    calib_metrics *m = NULL;
    assert_int_equal(calib_evaluate(ds, &o, &m, NULL), CALIB_OK);
    const double out = m->smece;
    if (bandwidth)
        *bandwidth = m->smece_bandwidth;
    calib_metrics_free(m);
    calib_dataset_free(ds);
    free(p);
    free(c);
    return out;
}

static void test_smece_calibrated_shrinks(void **state)
{
    /* drawn calibrated: only sampling noise, which shrinks with n */
    const double a = smece_of(1000, 0.0, 1.0, 0.0, NULL);
    const double b = smece_of(20000, 0.0, 1.0, 0.0, NULL);
    const double c = smece_of(400000, 0.0, 1.0, 0.0, NULL);
    assert_true(a > b && b > c);
    assert_true(c < 0.01);
}

static void test_smece_offset(void **state)
{
    /* accuracy = p - 0.1 everywhere: the residual is 0.1 at every t, so
     * smECE_s -> 0.1 for every s, and the fixed point is 0.1 */
    double bw;
    const double s = smece_of(400000, 0.3, 0.9, 0.1, &bw);
    assert_true(fabs(s - 0.1) < 0.005);
    assert_true(fabs(bw - 0.1) < 0.005);
}

static void test_smece_all_wrong_at_one(void **state)
{
    /* every row says 1 and is wrong: |residual| = 1 everywhere */
    double p[3] = {1.0, 1.0, 1.0};
    uint8_t c[3] = {0, 0, 0};
    calib_arrays a = {.kind = CALIB_TOPLABEL, .n = 3, .conf = p,
                      .correct = c};
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    calib_metrics *m = NULL;
    assert_int_equal(calib_evaluate(ds, NULL, &m, NULL), CALIB_OK);
    assert_true(fabs(m->smece - 1.0) < 1e-9);
    assert_true(m->smece_bandwidth == 1.0);
    assert_true(isnan(m->auroc));
    assert_true(m->aurc == 1.0 && m->selective_cov_acc_area == 0.0);
    assert_true(isnan(m->classwise_ece));
    calib_metrics_free(m);
    calib_dataset_free(ds);
}

/* ------------------------------------------------------------------ */
/* The curve and the public calls' errors                              */
/* ------------------------------------------------------------------ */

static void test_smooth_curve(void **state)
{
    enum { N = 5000, P = 2001 };
    double *p = malloc(N * sizeof *p), x[P], y[P], d[P];
    uint8_t *c = malloc(N);
    uint64_t s = 99;
    for (size_t i = 0; i < N; i++) {
        p[i] = uniform(&s);
        c[i] = uniform(&s) < p[i] * p[i];
    }
    calib_arrays a = {.kind = CALIB_TOPLABEL, .n = N, .conf = p,
                      .correct = c};
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    assert_int_equal(calib_smooth_curve(ds, 0.05, P, x, y, d, 2, NULL),
                     CALIB_OK);
    double area = 0.0;
    for (size_t i = 1; i < P; i++)
        area += 0.5 * (d[i] + d[i - 1]) * (x[i] - x[i - 1]);
    assert_true(fabs(area - 1.0) < 1e-3);   /* a density on [0,1] */
    assert_true(x[0] == 0.0 && x[P - 1] == 1.0);
    /* accuracy ~ p^2: the smoothed curve follows it in the middle */
    assert_true(fabs(y[P / 2] - 0.25) < 0.05);
    assert_true(y[P / 2] < y[3 * P / 4] && y[P / 4] < y[P / 2]);
    assert_int_equal(calib_smooth_curve(ds, 0.0, P, x, y, d, 1, NULL),
                     CALIB_OK);
    assert_int_equal(calib_smooth_curve(ds, 2.0, P, x, y, d, 1, NULL),
                     CALIB_EINVAL);
    assert_int_equal(calib_smooth_curve(ds, 0.1, 1, x, y, d, 1, NULL),
                     CALIB_EINVAL);
    const double bad[2] = {0.0, 1.5};
    double out[2];
    assert_int_equal(calib_accuracy_at_coverage(ds, bad, 1, out, 1, NULL),
                     CALIB_EINVAL);
    assert_int_equal(calib_coverage_at_risk(ds, bad + 1, 1, out, 1, NULL),
                     CALIB_EINVAL);
    assert_int_equal(calib_coverage_at_risk(ds, bad, 1, out, 1, NULL),
                     CALIB_OK);
    calib_dataset_free(ds);
    free(p);
    free(c);
}

/* Streaming accumulators have the metrics read off the bins. */
static void test_accum_has_bin_metrics(void **state)
{
    json_t *cases = golden_load("extra_cases.json");
    xcase c;
    xcase_load(&c, json_array_get(cases, 1)); /* ties, width bins */
    calib_accum *a = NULL;
    calib_metrics *ms = NULL, *m = eval_threads(&c, 1);
    assert_int_equal(calib_accum_new(&c.opt, &a, NULL), CALIB_OK);
    assert_int_equal(calib_accum_add(a, c.ds, NULL), CALIB_OK);
    assert_int_equal(calib_accum_result(a, &ms, NULL), CALIB_OK);
    const calib_metric_id ids[] = {
        CALIB_M_ECE_DEBIASED_L2, CALIB_M_ECE_OVER, CALIB_M_ECE_UNDER,
        CALIB_M_BRIER_RELIABILITY, CALIB_M_BRIER_RESOLUTION,
        CALIB_M_BRIER_UNCERTAINTY};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        const double x = calib_metric_value(m, ids[i]);
        const double y = calib_metric_value(ms, ids[i]);
        assert_memory_equal(&x, &y, sizeof x);
    }
    assert_true(isnan(ms->auroc) && isnan(ms->smece));
    calib_metrics_free(m);
    calib_metrics_free(ms);
    calib_accum_free(a);
    xcase_free(&c);
    json_decref(cases);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_weights_are_rows),
        cmocka_unit_test(test_smece_calibrated_shrinks),
        cmocka_unit_test(test_smece_offset),
        cmocka_unit_test(test_smece_all_wrong_at_one),
        cmocka_unit_test(test_smooth_curve),
        cmocka_unit_test(test_accum_has_bin_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
