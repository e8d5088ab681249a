/* test_temperature.c — temperature scaling: golden fits from scipy, the
 * DenseNet-40 numbers of the temperature-scaling literature, every boundary
 * case, thread invariance, accuracy before = after, JSON, speed. */
#include "golden.h"

#include <float.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* The next uniform in [0, 1) from an LCG (Knuth's MMIX constants). */
static double unif(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static calib_dataset *wrap_logits(const double *z, const int32_t *y, size_t n,
                                  size_t k, calib_kind kind)
{
    calib_arrays a = {.kind = kind, .n = n, .k = k, .dtype = CALIB_F64,
                      .scores = z, .labels = y};
    calib_dataset *ds = NULL;
    calib_error e = {0};
    if (calib_dataset_wrap(&a, &ds, &e))
        fail_msg("wrap: %s", e.message);
    return ds;
}

static calib_dataset *wrap_top(const double *p, const uint8_t *c, size_t n)
{
    calib_arrays a = {.kind = CALIB_TOPLABEL, .n = n, .dtype = CALIB_F64,
                      .conf = p, .correct = c};
    calib_dataset *ds = NULL;
    calib_error e = {0};
    if (calib_dataset_wrap(&a, &ds, &e))
        fail_msg("wrap: %s", e.message);
    return ds;
}

static calib_calibrator *fit_range(const calib_dataset *ds,
                                   calib_objective obj, int threads,
                                   double t_min, double t_max)
{
    calib_fit_options o;
    calib_fit_options_init(&o);
    o.objective = obj;
    o.eval.threads = threads;
    o.t_min = t_min;
    o.t_max = t_max;
    calib_calibrator *c = NULL;
    calib_error e = {0};
    const int rc = calib_fit(ds, &o, &c, &e);
    if (rc)
        fail_msg("calib_fit: %d %s", rc, e.message);
    assert_non_null(c);
    const double v = calib_calibrator_objective_value(c);
    assert_false(isnan(v));
    assert_false(isnan(calib_calibrator_temperature(c)));
    return c;
}

static calib_calibrator *fit_with(const calib_dataset *ds, calib_objective obj,
                                  int threads)
{
    return fit_range(ds, obj, threads, 1e-3, 1e3);
}

/* Mean NLL of softmax(z / t), in long double: the test's own reference. */
static double nll_at(const double *z, const int32_t *y, size_t n, size_t k,
                     double t)
{
    long double sum = 0;
    for (size_t i = 0; i < n; i++) {
        long double m = -INFINITY, s = 0;
        for (size_t j = 0; j < k; j++)
            m = fmaxl(m, (long double)z[i * k + j] / t);
        for (size_t j = 0; j < k; j++)
            s += expl((long double)z[i * k + j] / t - m);
        sum += logl(s) + m - (long double)z[i * k + (size_t)y[i]] / t;
    }
    return (double)(sum / n);
}

static double binary_nll_at(const double *p, const uint8_t *c, size_t n,
                            double t)
{
    long double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const long double x = (logl(p[i]) - log1pl(-p[i])) / t;
        const long double s = c[i] ? x : -x; /* -log sigmoid(s) */
        sum += s > 0 ? log1pl(expl(-s)) : -s + log1pl(expl(s));
    }
    return (double)(sum / n);
}

static calib_metrics *eval_of(const calib_dataset *ds)
{
    calib_metrics *m = NULL;
    calib_error e = {0};
    if (calib_evaluate(ds, NULL, &m, &e))
        fail_msg("evaluate: %s", e.message);
    return m;
}

/* Applies c to ds and checks the accuracy (and each row's correctness
 * through it) is exactly unchanged; returns the metrics after. */
static calib_metrics *apply_keeps_accuracy(const calib_calibrator *c,
                                           const calib_dataset *ds)
{
    calib_dataset *out = NULL;
    calib_error e = {0};
    if (calib_apply(c, ds, &out, &e))
        fail_msg("apply: %s", e.message);
    calib_metrics *before = eval_of(ds), *after = eval_of(out);
    assert_true(before->accuracy == after->accuracy);
    assert_int_equal(calib_dataset_rows(out), calib_dataset_rows(ds));
    calib_metrics_free(before);
    calib_dataset_free(out);
    return after;
}

static int has_diag(const calib_calibrator *c, const char *needle)
{
    for (size_t i = 0; i < calib_calibrator_diagnostic_count(c); i++)
        if (strstr(calib_calibrator_diagnostic(c, i), needle))
            return 1;
    return 0;
}

static void expect_diag(const calib_calibrator *c, const char *needle)
{
    if (!has_diag(c, needle)) {
        for (size_t i = 0; i < calib_calibrator_diagnostic_count(c); i++)
            print_message("  diagnostic: %s\n", calib_calibrator_diagnostic(c, i));
        fail_msg("no diagnostic contains \"%s\"", needle);
    }
}

static double *golden_f64(const json_t *o, const char *key, size_t *n)
{
    return golden_doubles(o, key, n);
}

static int32_t *golden_i32(const json_t *o, const char *key, size_t *n)
{
    int64_t *v = golden_ints(o, key, n);
    int32_t *r = malloc(*n * sizeof *r);
    for (size_t i = 0; i < *n; i++)
        r[i] = (int32_t)v[i];
    free(v);
    return r;
}

/* ------------------------------------------------------------------ */
/* Golden fits                                                         */
/* ------------------------------------------------------------------ */

/* T within 1e-6 of scipy's (scipy's own T is good to ~1e-8: the NLL is
 * flat to double precision that close to its minimum), and calib's NLL no
 * higher than scipy's, both computed here in long double. */
static void test_golden_softmax(void **state)
{
    json_t *doc = golden_load("temperature.json");
    const json_t *cases = json_object_get(doc, "softmax");
    for (size_t ci = 0; ci < json_array_size(cases); ci++) {
        const json_t *cs = json_array_get(cases, ci);
        size_t n, k = (size_t)json_integer_value(json_object_get(cs, "k")), nz;
        double *z = golden_f64(cs, "logits", &nz);
        int32_t *y = golden_i32(cs, "labels", &n);
        const double t_ref = golden_number(cs, "t_scipy");
        calib_dataset *ds = wrap_logits(z, y, n, k, CALIB_LOGITS);
        calib_calibrator *c1 = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
        calib_calibrator *c2 = fit_with(ds, CALIB_OBJECTIVE_NLL, 2);
        const double t = calib_calibrator_temperature(c1);
        print_message("  %s: T %.17g scipy %.17g, %d passes\n",
                      json_string_value(json_object_get(cs, "name")), t, t_ref,
                      calib_calibrator_iterations(c1));
        assert_true(t == calib_calibrator_temperature(c2));
        assert_close(t, t_ref, 1e-6);
        const double mine = nll_at(z, y, n, k, t), ref = nll_at(z, y, n, k, t_ref);
        assert_true(mine <= ref * (1 + 1e-12));
        assert_close(calib_calibrator_objective_value(c1), mine, 1e-12);
        assert_int_equal(calib_calibrator_diagnostic_count(c1), 0);
        calib_metrics *after = apply_keeps_accuracy(c1, ds);
        assert_close(after->nll, mine, 1e-12);
        calib_metrics_free(after);
        calib_calibrator_free(c1);
        calib_calibrator_free(c2);
        calib_dataset_free(ds);
        free(z);
        free(y);
    }
    json_decref(doc);
}

static void test_golden_binary(void **state)
{
    json_t *doc = golden_load("temperature.json");
    const json_t *cs = json_object_get(doc, "binary");
    size_t n, nc;
    double *p = golden_f64(cs, "conf", &n);
    int64_t *c64 = golden_ints(cs, "correct", &nc);
    uint8_t *c = malloc(n);
    for (size_t i = 0; i < n; i++)
        c[i] = (uint8_t)c64[i];
    const double t_ref = golden_number(cs, "t_scipy");
    calib_dataset *ds = wrap_top(p, c, n);
    calib_calibrator *c1 = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    calib_calibrator *c2 = fit_with(ds, CALIB_OBJECTIVE_NLL, 2);
    const double t = calib_calibrator_temperature(c1);
    assert_true(calib_calibrator_binary(c1));
    assert_true(t == calib_calibrator_temperature(c2));
    assert_close(t, t_ref, 1e-6);
    assert_true(binary_nll_at(p, c, n, t) <=
                binary_nll_at(p, c, n, t_ref) * (1 + 1e-12));
    assert_close(calib_calibrator_objective_value(c1), binary_nll_at(p, c, n, t),
                 1e-12);
    calib_metrics_free(apply_keeps_accuracy(c1, ds));
    /* A binary calibrator does not fit distribution rows, nor the reverse. */
    double z[2] = {1, 2};
    int32_t y[1] = {0};
    calib_dataset *dist = wrap_logits(z, y, 1, 2, CALIB_LOGITS), *out = (void *)1;
    calib_error e = {0};
    assert_int_equal(calib_apply(c1, dist, &out, &e), CALIB_EINVAL);
    assert_null(out);
    calib_calibrator *cs2 = fit_with(dist, CALIB_OBJECTIVE_NLL, 1);
    assert_int_equal(calib_apply(cs2, ds, &out, &e), CALIB_EINVAL);
    calib_calibrator_free(cs2);
    calib_dataset_free(dist);
    calib_calibrator_free(c1);
    calib_calibrator_free(c2);
    calib_dataset_free(ds);
    free(p);
    free(c);
    free(c64);
    json_decref(doc);
}

/* ECE is ragged in T: calib's grid + golden section must do at least as
 * well as numpy's dense grid of 4001 points (up to 1e-9), and report the
 * ECE that calib_evaluate then measures. */
static void test_golden_ece(void **state)
{
    json_t *doc = golden_load("temperature.json");
    const json_t *cs = json_object_get(doc, "ece");
    size_t n, nz, k = (size_t)json_integer_value(json_object_get(cs, "k"));
    double *z = golden_f64(cs, "logits", &nz);
    int32_t *y = golden_i32(cs, "labels", &n);
    calib_dataset *ds = wrap_logits(z, y, n, k, CALIB_LOGITS);
    calib_calibrator *c1 = fit_with(ds, CALIB_OBJECTIVE_ECE, 1);
    calib_calibrator *c2 = fit_with(ds, CALIB_OBJECTIVE_ECE, 2);
    const double ece = calib_calibrator_objective_value(c1);
    print_message("  ece: %.17g at T %.17g (numpy grid %.17g), %d evaluations\n",
                  ece, calib_calibrator_temperature(c1),
                  golden_number(cs, "ece_grid_best"),
                  calib_calibrator_iterations(c1));
    assert_true(calib_calibrator_temperature(c1) ==
                calib_calibrator_temperature(c2));
    assert_true(ece <= golden_number(cs, "ece_grid_best") + 1e-9);
    calib_metrics *after = apply_keeps_accuracy(c1, ds);
    assert_close(after->ece, ece, 1e-9);
    calib_metrics_free(after);
    /* Brier: smooth, and never worse than at T = 1. */
    calib_calibrator *cb = fit_with(ds, CALIB_OBJECTIVE_BRIER, 2);
    calib_metrics *m1 = eval_of(ds);
    after = apply_keeps_accuracy(cb, ds);
    assert_true(after->brier <= m1->brier);
    assert_close(after->brier, calib_calibrator_objective_value(cb), 1e-12);
    calib_metrics_free(after);
    calib_metrics_free(m1);
    calib_calibrator_free(cb);
    calib_calibrator_free(c1);
    calib_calibrator_free(c2);
    calib_dataset_free(ds);
    free(z);
    free(y);
    json_decref(doc);
}

/* ------------------------------------------------------------------ */
/* DenseNet-40 on CIFAR-10                                             */
/* ------------------------------------------------------------------ */

/* A minimal .npy loader for the two files this test reads: v1.0 header of
 * 128 bytes, then '<f4' or '<i8' data. */
static void *load_npy(const char *dir, const char *name, size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/densenet40-cifar10-logits/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char head[128];
    void *data = malloc(bytes);
    if (fread(head, 1, 128, f) != 128 || memcmp(head, "\x93NUMPY\x01", 7) ||
        fread(data, 1, bytes, f) != bytes)
        fail_msg("%s: not the expected .npy", path);
    fclose(f);
    return data;
}

/* markus93/NN_calibration (README.txt of the data): "validation after
 * temperature scaling: Error 6.18, ece 0.005947, mce 0.107191, loss
 * 0.186612" with 15 bins.  They fitted in float32 with another optimiser,
 * so T differs from the exact optimum in its 4th-5th digit; the error rate
 * is exact, ECE and NLL agree to the printed digits (5e-7), MCE to 2e-6
 * (the exact optimum gives 0.1071903, theirs printed 0.107191). */
static void test_densenet(void **state)
{
    const char *dir = golden_shared_dir();
    if (!dir)
        skip();
    float *z = load_npy(dir, "logits_val.npy", 5000 * 10 * sizeof(float));
    int64_t *y64 = load_npy(dir, "labels_val.npy", 5000 * sizeof(int64_t));
    int32_t y[5000];
    for (int i = 0; i < 5000; i++)
        y[i] = (int32_t)y64[i];
    calib_arrays a = {.kind = CALIB_LOGITS, .n = 5000, .k = 10,
                      .dtype = CALIB_F32, .scores = z, .labels = y};
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, 0);
    print_message("  densenet: T = %.9g, %d passes\n",
                  calib_calibrator_temperature(c), calib_calibrator_iterations(c));
    calib_metrics *m = apply_keeps_accuracy(c, ds);
    assert_close(1 - m->accuracy, 0.0618, 1e-12);
    assert_true(fabs(m->ece - 0.005947) <= 5e-7);
    assert_true(fabs(m->mce - 0.107191) <= 2e-6);
    assert_true(fabs(m->nll - 0.186612) <= 5e-7);
    calib_metrics_free(m);
    calib_calibrator_free(c);
    calib_dataset_free(ds);
    free(z);
    free(y64);
}

/* ------------------------------------------------------------------ */
/* Boundary cases                                                      */
/* ------------------------------------------------------------------ */

static void test_all_correct(void **state)
{
    /* rows (5,1,0), (2,0,3), (1,-1,0), (0,0.5,9), each label its max */
    double z[4 * 3] = {5, 1, 0, 2, 0, 3, 1, -1, 0, 0, 0.5, 9};
    int32_t y[4] = {0, 2, 0, 2};
    calib_dataset *ds = wrap_logits(z, y, 4, 3, CALIB_LOGITS);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    assert_true(calib_calibrator_temperature(c) == 1e-3);
    expect_diag(c, "every validation row is predicted correctly with a "
                   "positive margin; NLL decreases as T -> 0; T clamped at "
                   "0.001");
    assert_true(calib_calibrator_objective_value(c) >= 0.0);
    calib_metrics_free(apply_keeps_accuracy(c, ds));
    calib_calibrator_free(c);
    calib_dataset_free(ds);
}

static void test_all_wrong(void **state)
{
    /* every row confidently wrong, the label the lowest score: no T helps
     * but T -> infinity (uniform) does best */
    double z[4 * 3] = {4, 1, 0, 0, 5, 1, 3, 0, -1, 0, 2, -2};
    int32_t y[4] = {2, 0, 2, 2};
    calib_dataset *ds = wrap_logits(z, y, 4, 3, CALIB_LOGITS);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    assert_true(calib_calibrator_temperature(c) == 1e3);
    expect_diag(c, "every validation row is predicted wrongly");
    expect_diag(c, "T clamped at 1000");
    calib_metrics_free(apply_keeps_accuracy(c, ds));
    calib_calibrator_free(c);
    calib_dataset_free(ds);
}

static void test_constant_predictor(void **state)
{
    /* the same scores for every row, labels spread evenly */
    double z[6 * 3];
    int32_t y[6];
    for (int i = 0; i < 6; i++) {
        z[3 * i] = 3, z[3 * i + 1] = 1, z[3 * i + 2] = 0;
        y[i] = i % 3;
    }
    calib_dataset *ds = wrap_logits(z, y, 6, 3, CALIB_LOGITS);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    assert_true(calib_calibrator_temperature(c) == 1e3);
    expect_diag(c, "uninformative or constant predictor");
    calib_metrics_free(apply_keeps_accuracy(c, ds));
    calib_calibrator_free(c);
    calib_dataset_free(ds);
}

static void test_single_class(void **state)
{
    double z[3] = {0.5, -2, 7};
    int32_t y[3] = {0, 0, 0};
    calib_dataset *ds = wrap_logits(z, y, 3, 1, CALIB_LOGITS);
    for (int obj = 0; obj < 3; obj++) {
        calib_calibrator *c = fit_with(ds, (calib_objective)obj, 1);
        assert_true(calib_calibrator_temperature(c) == 1.0);
        expect_diag(c, "a single class");
        assert_true(calib_calibrator_objective_value(c) == 0.0);
        calib_metrics_free(apply_keeps_accuracy(c, ds));
        calib_calibrator_free(c);
    }
    calib_dataset_free(ds);
}

static void test_equal_logits(void **state)
{
    double z[3 * 4] = {1, 1, 1, 1, 0, 0, 0, 0, -7, -7, -7, -7};
    int32_t y[3] = {2, 0, 1};
    calib_dataset *ds = wrap_logits(z, y, 3, 4, CALIB_LOGITS);
    for (int obj = 0; obj < 3; obj++) {
        calib_calibrator *c = fit_with(ds, (calib_objective)obj, 1);
        assert_true(calib_calibrator_temperature(c) == 1.0);
        expect_diag(c, "same score");
        if (obj == CALIB_OBJECTIVE_NLL)
            assert_close(calib_calibrator_objective_value(c), log(4.0), 1e-15);
        calib_metrics_free(apply_keeps_accuracy(c, ds));
        calib_calibrator_free(c);
    }
    calib_dataset_free(ds);
}

static void test_single_row(void **state)
{
    /* one wrong row: f(beta) = lse(beta z) - beta z_y has a finite optimum
     * when the label is not the minimum: z = (2, 1, -3), y = 1 */
    double z[3] = {2, 1, -3};
    int32_t y[1] = {1};
    calib_dataset *ds = wrap_logits(z, y, 1, 3, CALIB_LOGITS);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    const double t = calib_calibrator_temperature(c);
    expect_diag(c, "single validation row");
    assert_true(t > 1e-3 && t < 1e3);
    /* the optimum: the derivative sum_k q_k (z_k - z_y) vanishes */
    const double b = 1 / t, e0 = exp(b * 2), e1 = exp(b * 1), e2 = exp(b * -3);
    assert_true(fabs((e0 * 1 + e2 * -4) / (e0 + e1 + e2)) < 1e-12);
    calib_calibrator_free(c);
    calib_dataset_free(ds);
    /* one correct row: T clamped at t_min */
    y[0] = 0;
    ds = wrap_logits(z, y, 1, 3, CALIB_LOGITS);
    c = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    assert_true(calib_calibrator_temperature(c) == 1e-3);
    expect_diag(c, "positive margin");
    calib_calibrator_free(c);
    calib_dataset_free(ds);
}

/* Logits of magnitude 1e4: exp underflows for almost every class at T=1,
 * and the fit must still be exact (compared with the long-double NLL at
 * T * (1 +- 1e-7), which must not be lower).  The optimum is near T = 3e3,
 * beyond the default range: there T is clamped at 1000, and said. */
static void test_huge_logits(void **state)
{
    enum { N = 400, K = 5 };
    double *z = malloc(N * K * sizeof *z);
    int32_t y[N];
    uint64_t s = 42;
    for (int i = 0; i < N * K; i++) {
        z[i] = (unif(&s) - 0.5) * 2e4;
    }
    for (int i = 0; i < N; i++) {
        int arg = 0;
        for (int k = 1; k < K; k++)
            arg = z[i * K + k] > z[i * K + arg] ? k : arg;
        y[i] = i % 4 ? arg : (arg + 1) % K; /* 75 % right */
    }
    calib_dataset *ds = wrap_logits(z, y, N, K, CALIB_LOGITS);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, 2);
    assert_true(calib_calibrator_temperature(c) == 1e3);
    expect_diag(c, "NLL still decreases at T = 1000, the upper end");
    calib_calibrator_free(c);
    c = fit_range(ds, CALIB_OBJECTIVE_NLL, 2, 1e-3, 1e6);
    const double t = calib_calibrator_temperature(c);
    print_message("  huge logits: T = %.17g\n", t);
    assert_int_equal(calib_calibrator_diagnostic_count(c), 0);
    assert_true(t > 1e3 && t < 1e6);
    const double f = nll_at(z, y, N, K, t);
    assert_true(f <= nll_at(z, y, N, K, t * (1 + 1e-7)));
    assert_true(f <= nll_at(z, y, N, K, t * (1 - 1e-7)));
    assert_close(calib_calibrator_objective_value(c), f, 1e-11);
    calib_metrics_free(apply_keeps_accuracy(c, ds));
    calib_calibrator_free(c);
    calib_dataset_free(ds);
    free(z);
}

/* float16-origin logits: coarse values with many exact ties. */
static void test_float16_logits(void **state)
{
    enum { N = 600, K = 10 };
    float *z = malloc(N * K * sizeof *z);
    int32_t y[N];
    uint64_t s = 7;
    for (int i = 0; i < N * K; i++) {
        const double v = (unif(&s) - 0.5) * 12;
        z[i] = (float)(ldexp(nearbyint(ldexp(v, 7)), -7)); /* 3 fraction bits at |v| ~ 8 */
    }
    for (int i = 0; i < N; i++)
        y[i] = (int32_t)((i * 7) % K);
    for (int i = 0; i < N; i += 2)
        z[i * K + y[i]] = 6.0f; /* half the rows lean towards their label */
    calib_arrays a = {.kind = CALIB_LOGITS, .n = N, .k = K, .dtype = CALIB_F32,
                      .scores = z, .labels = y};
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    calib_calibrator *c1 = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    calib_calibrator *c2 = fit_with(ds, CALIB_OBJECTIVE_NLL, 2);
    assert_true(calib_calibrator_temperature(c1) ==
                calib_calibrator_temperature(c2));
    double *zd = malloc(N * K * sizeof *zd);
    for (int i = 0; i < N * K; i++)
        zd[i] = z[i];
    const double t = calib_calibrator_temperature(c1), f = nll_at(zd, y, N, K, t);
    assert_true(f <= nll_at(zd, y, N, K, t * (1 + 1e-7)));
    assert_true(f <= nll_at(zd, y, N, K, t * (1 - 1e-7)));
    calib_metrics_free(apply_keeps_accuracy(c1, ds));
    calib_calibrator_free(c1);
    calib_calibrator_free(c2);
    calib_dataset_free(ds);
    free(z);
    free(zd);
}

/* Probabilities are logits log p; p = 0 stays 0 for every T, and a label
 * of probability 0 makes that row's NLL infinite: it is left out, said. */
static void test_probs_with_zeros(void **state)
{
    double p[4 * 3] = {0.7, 0.3, 0.0, 0.2, 0.8, 0.0, 0.5, 0.25, 0.25,
                       0.0, 0.9, 0.1};
    int32_t y[4] = {1, 1, 2, 0};
    double lz[3 * 3];
    int32_t ly[3] = {1, 1, 2};
    for (int i = 0; i < 9; i++)
        lz[i] = p[i] > 0 ? log(p[i]) : -1e300;
    calib_dataset *ds = wrap_logits(p, y, 4, 3, CALIB_PROBS);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    expect_diag(c, "1 validation row where the label has probability 0");
    const double t = calib_calibrator_temperature(c);
    assert_true(t > 1e-3 && t < 1e3);
    /* the same T as the three finite rows as logits */
    calib_dataset *ds3 = wrap_logits(lz, ly, 3, 3, CALIB_LOGITS);
    calib_calibrator *c3 = fit_with(ds3, CALIB_OBJECTIVE_NLL, 1);
    assert_close(t, calib_calibrator_temperature(c3), 1e-12);
    calib_dataset *out = NULL;
    assert_int_equal(calib_apply(c, ds, &out, NULL), CALIB_OK);
    /* probabilities stay probabilities, so the 4th row's q_label = 0 is
     * clipped at 1e-15 after as before, not an infinite NLL */
    assert_int_equal(calib_dataset_kind(out), CALIB_PROBS);
    calib_metrics *before = eval_of(ds), *after = eval_of(out);
    assert_true(before->accuracy == after->accuracy);
    assert_int_equal(before->nll_clipped_rows, 1);
    assert_int_equal(after->nll_clipped_rows, 1);
    assert_true(isfinite(after->nll));
    calib_metrics_free(before);
    calib_metrics_free(after);
    calib_dataset_free(out);
    calib_calibrator_free(c3);
    calib_dataset_free(ds3);
    calib_calibrator_free(c);
    calib_dataset_free(ds);
}

static void test_binary_boundaries(void **state)
{
    /* p in {0, 1}: exact, constant when they agree with correct */
    double p[5] = {1.0, 0.0, 0.8, 0.3, 0.6};
    uint8_t c[5] = {1, 0, 1, 0, 1};
    calib_dataset *ds = wrap_top(p, c, 5);
    calib_calibrator *cal = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    assert_true(calib_calibrator_temperature(cal) == 1e-3);
    expect_diag(cal, "right side of 0.5");
    calib_dataset *out = NULL;
    assert_int_equal(calib_apply(cal, ds, &out, NULL), CALIB_OK);
    calib_metrics *m = eval_of(out);
    assert_true(m->accuracy == 0.6);
    calib_metrics_free(m);
    calib_dataset_free(out);
    calib_calibrator_free(cal);
    calib_dataset_free(ds);
    /* p = 1 but wrong: infinite NLL for every T, left out and said */
    double p2[4] = {1.0, 0.8, 0.3, 0.6};
    uint8_t c2[4] = {0, 1, 1, 0};
    ds = wrap_top(p2, c2, 4);
    cal = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    expect_diag(cal, "confidence 1 but wrong");
    assert_true(isfinite(calib_calibrator_objective_value(cal)));
    assert_true(calib_calibrator_temperature(cal) > 1e-3);
    assert_int_equal(calib_apply(cal, ds, &out, NULL), CALIB_OK);
    calib_dataset_free(out);
    calib_calibrator_free(cal);
    calib_dataset_free(ds);
    /* every confidence 0.5: nothing depends on T */
    double p3[2] = {0.5, 0.5};
    uint8_t c3[2] = {1, 0};
    ds = wrap_top(p3, c3, 2);
    cal = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    assert_true(calib_calibrator_temperature(cal) == 1.0);
    expect_diag(cal, "does not depend on T");
    calib_calibrator_free(cal);
    calib_dataset_free(ds);
}

/* Scores one ulp apart can round to equal quotients; apply must keep the
 * first argmax (the higher, later class) anyway. */
static void test_argmax_kept_by_construction(void **state)
{
    const double a = nextafter(2.0, 0.0), b = nextafter(a, 0.0);
    double z[2 * 2] = {b, a, a, b};
    int32_t y[2] = {1, 0};
    double t = 1.1;
    while (a / t != b / t) /* a T where the quotients collide */
        t = nextafter(t + 1e-3, 2.0);
    calib_dataset *ds = wrap_logits(z, y, 2, 2, CALIB_LOGITS);
    char json[128];
    snprintf(json, sizeof json,
             "{\"method\":\"temperature\",\"temperature\":%.17g}", t);
    calib_calibrator *c = NULL;
    assert_int_equal(calib_calibrator_from_json(json, strlen(json), &c, NULL),
                     CALIB_OK);
    assert_true(calib_calibrator_temperature(c) == t);
    calib_metrics_free(apply_keeps_accuracy(c, ds));
    calib_calibrator_free(c);
    calib_dataset_free(ds);
}

/* ------------------------------------------------------------------ */
/* Options, JSON, errors                                               */
/* ------------------------------------------------------------------ */

static void test_objective_names(void **state)
{
    calib_objective o;
    assert_int_equal(calib_objective_parse("ece", &o), CALIB_OK);
    assert_int_equal(o, CALIB_OBJECTIVE_ECE);
    assert_string_equal(calib_objective_name(CALIB_OBJECTIVE_BRIER), "brier");
    assert_int_equal(calib_objective_parse("mse", &o), CALIB_EINVAL);
    assert_null(calib_objective_name((calib_objective)9));
    calib_fit_options f;
    calib_fit_options_init(&f);
    assert_true(f.t_min == 1e-3 && f.t_max == 1e3);
    assert_int_equal(f.eval.bins, 15);
}

static void test_bad_options(void **state)
{
    double z[2] = {1, 0};
    int32_t y[1] = {0};
    calib_dataset *ds = wrap_logits(z, y, 1, 2, CALIB_LOGITS);
    calib_fit_options o;
    calib_fit_options_init(&o);
    o.t_min = 0;
    calib_calibrator *c = (void *)1;
    assert_int_equal(calib_fit(ds, &o, &c, NULL), CALIB_EINVAL);
    assert_null(c);
    calib_fit_options_init(&o);
    o.t_min = 5, o.t_max = 2;
    assert_int_equal(calib_fit(ds, &o, &c, NULL), CALIB_EINVAL);
    assert_int_equal(calib_fit(NULL, &o, &c, NULL), CALIB_EINVAL);
    calib_dataset_free(ds);
}

static void test_json_round_trip(void **state)
{
    double z[2 * 3] = {2, 1, 0, 0, 3, 1};
    int32_t y[2] = {1, 1};
    calib_dataset *ds = wrap_logits(z, y, 2, 3, CALIB_LOGITS);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, 1), *back = NULL;
    char *js = NULL;
    assert_int_equal(calib_calibrator_to_json(c, &js, NULL), CALIB_OK);
    json_t *o = json_loads(js, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "solver")),
                        "newton-log-beta");
    assert_string_equal(json_string_value(json_object_get(o, "form")), "softmax");
    /* extra keys, as `calib fit` writes them, are ignored */
    json_object_set_new(o, "before", json_pack("{s:f}", "ece", 0.1));
    char *js2 = json_dumps(o, 0);
    assert_int_equal(calib_calibrator_from_json(js2, strlen(js2), &back, NULL),
                     CALIB_OK);
    assert_true(calib_calibrator_temperature(back) ==
                calib_calibrator_temperature(c));
    assert_int_equal(calib_calibrator_objective(back), CALIB_OBJECTIVE_NLL);
    assert_int_equal(calib_calibrator_iterations(back),
                     calib_calibrator_iterations(c));
    assert_true(calib_calibrator_objective_value(back) ==
                calib_calibrator_objective_value(c));
    assert_int_equal(calib_calibrator_diagnostic_count(back),
                     calib_calibrator_diagnostic_count(c));
    assert_int_equal(calib_calibrator_binary(back), 0);
    char *js3 = NULL;
    assert_int_equal(calib_calibrator_to_json(back, &js3, NULL), CALIB_OK);
    assert_string_equal(js, js3);
    free(js);
    free(js2);
    free(js3);
    json_decref(o);
    calib_calibrator_free(back);
    calib_calibrator_free(c);
    calib_dataset_free(ds);
}

static void test_json_errors(void **state)
{
    calibrator_json_fails("{\"method\":\"temperature\",\"temperature\":0}", 0);
    calibrator_json_fails("{\"method\":\"temperature\",\"temperature\":-2}", 0);
    calibrator_json_fails("{\"method\":\"temperature\",\"temperature\":NaN}", 1);
    calibrator_json_fails("{\"method\":\"temperature\",\"temperature\":null}", 0);
    calibrator_json_fails("{\"method\":\"temperature\"}", 0);
    calibrator_json_fails("{\"method\":\"platt\",\"temperature\":2}", 0);
    calibrator_json_fails("{\"temperature\":2}", 0);
    calibrator_json_fails("{\"method\":\"temperature\",\n\"temperature\":2,,}", 2);
    calibrator_json_fails("[1, 2]", 0);
    calibrator_json_fails("{\"method\":\"temperature\",\"temperature\":2,"
                      "\"form\":\"sideways\"}", 0);
    calibrator_json_fails("{\"method\":\"temperature\",\"temperature\":1e999}", 0);
}

/* ------------------------------------------------------------------ */
/* Speed                                                               */
/* ------------------------------------------------------------------ */

/* 10^5 x 100 float32: the same T bit for bit on 1 and 2 threads. */
static void test_large_threads(void **state)
{
    enum { N = 100000, K = 100 };
    float *z = malloc((size_t)N * K * sizeof *z);
    int32_t *y = malloc(N * sizeof *y);
    uint64_t s = 1;
    for (size_t i = 0; i < (size_t)N * K; i++) {
        z[i] = (float)((unif(&s) - 0.5) * 8);
    }
    for (int i = 0; i < N; i++) {
        int arg = 0;
        for (int k = 1; k < K; k++)
            arg = z[(size_t)i * K + k] > z[(size_t)i * K + arg] ? k : arg;
        y[i] = i % 3 ? arg : (arg + i) % K;
    }
    calib_arrays a = {.kind = CALIB_LOGITS, .n = N, .k = K, .dtype = CALIB_F32,
                      .scores = z, .labels = y};
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    /* speed is measured by make bench, never asserted here */
    calib_calibrator *c2 = fit_with(ds, CALIB_OBJECTIVE_NLL, 2);
    calib_calibrator *c1 = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    assert_true(calib_calibrator_temperature(c1) ==
                calib_calibrator_temperature(c2));
    calib_calibrator_free(c1);
    calib_calibrator_free(c2);
    calib_dataset_free(ds);
    free(z);
    free(y);
}

/* Mean NLL of float32 logits at T, in long double (softmax shifted by the
 * row maximum, as calib does). */
static long double nll_ld(const float *z, const int32_t *y, size_t n, size_t k,
                          long double t)
{
    long double sum = 0;
    for (size_t i = 0; i < n; i++) {
        const float *r = z + i * k;
        float m = r[0];
        for (size_t j = 1; j < k; j++)
            m = r[j] > m ? r[j] : m;
        long double se = 0;
        for (size_t j = 0; j < k; j++)
            se += expl(((long double)r[j] - m) / t);
        sum += logl(se) - ((long double)r[y[i]] - m) / t;
    }
    return sum / (long double)n;
}

/* Fits float32 logits z (n x k, labels y) by NLL on 1 and 2 threads: the
 * same T bits, and the NLL it reports the long-double NLL at its T (to
 * 1e-13).  Returns the 1-thread calibrator. */
static calib_calibrator *fit_f32_checked(const float *z, const int32_t *y,
                                         size_t n, size_t k)
{
    calib_arrays a = {.kind = CALIB_LOGITS, .n = n, .k = k, .dtype = CALIB_F32,
                      .scores = z, .labels = y};
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    calib_calibrator *c1 = fit_with(ds, CALIB_OBJECTIVE_NLL, 1);
    calib_calibrator *c2 = fit_with(ds, CALIB_OBJECTIVE_NLL, 2);
    const double t = calib_calibrator_temperature(c1);
    assert_true(t == calib_calibrator_temperature(c2));
    assert_close(calib_calibrator_objective_value(c1),
                 (double)nll_ld(z, y, n, k, t), 1e-13);
    calib_calibrator_free(c2);
    calib_dataset_free(ds);
    return c1;
}

/* The u-derivatives f_u' and f_u'' of the mean NLL at T, u = -log T, in
 * long double: b F1 and b F1 + b^2 F2 with F1 = mean_i E_q[z - z_y] and
 * F2 = mean_i Var_q(z), q = softmax(z / T). */
static void grad_ld(const float *z, const int32_t *y, size_t n, size_t k,
                    long double t, long double *g, long double *h)
{
    long double f1 = 0, f2 = 0;
    const long double b = 1 / t;
    for (size_t i = 0; i < n; i++) {
        const float *r = z + i * k;
        float m = r[0];
        for (size_t j = 1; j < k; j++)
            m = r[j] > m ? r[j] : m;
        long double se = 0, s1 = 0, s2 = 0;
        for (size_t j = 0; j < k; j++) {
            const long double d = (long double)r[j] - r[y[i]];
            const long double e = expl(b * ((long double)r[j] - m));
            se += e, s1 += e * d, s2 += e * d * d;
        }
        const long double mean = s1 / se;
        f1 += mean;
        f2 += s2 / se - mean * mean;
    }
    f1 /= (long double)n, f2 /= (long double)n;
    *g = b * f1;
    *h = b * f1 + b * b * f2;
}

/* Large data: after the subsample's float32 passes, one double pass over
 * all rows and the series step from it (temperature.c) end the fit.  Its
 * T must be the optimum to the solver's 1e-13 in u (|f_u' / f_u''| from
 * long double), its NLL the long-double NLL there, and the bits the same
 * on 1 and 2 threads.  Over-confident logits: the
 * labels come from softmax(u) (Gumbel-max), the stored logits are 2.2 u,
 * so T is near 2.2. */
static void test_series_step(void **state)
{
    enum { N = 60000, K = 10 };
    float *z = malloc((size_t)N * K * sizeof *z);
    int32_t *y = malloc(N * sizeof *y);
    uint64_t s = 3;
    for (size_t i = 0; i < N; i++) {
        double best = -INFINITY;
        for (size_t j = 0; j < K; j++) {
            double u[2];
            for (int h = 0; h < 2; h++)
                u[h] = unif(&s) + 0x1p-54; /* in (0, 1) */
            const double logit = 3.0 * (u[0] - 0.5) + (j == i % K ? 1.5 : 0.0);
            const double gumbel = logit - log(-log(u[1]));
            z[i * K + j] = (float)(2.2 * logit);
            if (gumbel > best)
                best = gumbel, y[i] = (int32_t)j;
        }
    }
    calib_calibrator *c = fit_f32_checked(z, y, N, K);
    const double t = calib_calibrator_temperature(c);
    long double g, h;
    grad_ld(z, y, N, K, t, &g, &h);
    print_message("  series: T %.17g, %d passes, f_u'/f_u'' = %.3Lg\n", t,
                  calib_calibrator_iterations(c), g / h);
    /* the subsample's passes (3 here) and one more: a float32 pass and a
     * double one would make 5 */
    assert_true(calib_calibrator_iterations(c) <= 4);
    assert_true(fabsl(g / h) <= 1e-13L);
    assert_int_equal(calib_calibrator_diagnostic_count(c), 0);
    calib_calibrator_free(c);
    free(z);
    free(y);
}

/* Long rows where the moments about the row maximum cancel most: one
 * outlying maximum over 4095 nearly equal scores, the label on it in 1%
 * of the rows, so that q puts about 1/100 on the maximum (the one-loop
 * moments' worst shape).  T must still be the minimum, its NLL exact, the
 * bits the same on 1 and 2 threads. */
static void test_outlying_max(void **state)
{
    enum { N = 600, K = 4096 };
    float *z = malloc((size_t)N * K * sizeof *z);
    int32_t *y = malloc(N * sizeof *y);
    uint64_t s = 7;
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < K; j++) {
            z[i * K + j] = (float)(unif(&s) * 0.01);
        }
        z[i * K + i % K] = 30.0f;
        y[i] = i % 100 == 0 ? (int32_t)(i % K) : (int32_t)((i + 1 + i % 7) % K);
    }
    calib_calibrator *c = fit_f32_checked(z, y, N, K);
    const double t = calib_calibrator_temperature(c);
    const long double f = nll_ld(z, y, N, K, t);
    /* a minimum: f(T (1 +- 1e-5)) - f(T) ~ f''/2 1e-10 > 0 */
    assert_true(nll_ld(z, y, N, K, t * (1 + 1e-5)) > f);
    assert_true(nll_ld(z, y, N, K, t * (1 - 1e-5)) > f);
    print_message("  outlying max: T %.17g, %d passes\n", t,
                  calib_calibrator_iterations(c));
    calib_calibrator_free(c);
    free(z);
    free(y);
}

/* The float32 paths: float32 logits read in place (rows of every length
 * mod 8, ragged, the last row's tail copied, a few rows whose range is too
 * wide for float32 moments) must fit the same T as the same values given
 * as doubles, which go through the double-row loader, to the solver's
 * 1e-13; and the same bits on 1 and 2 threads.  40000 rows: the subsample
 * warm start runs too. */
static calib_calibrator *fit_arrays(const calib_arrays *a, int threads)
{
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(a, &ds, NULL), CALIB_OK);
    calib_calibrator *c = fit_with(ds, CALIB_OBJECTIVE_NLL, threads);
    calib_dataset_free(ds);
    return c;
}

static void test_float32_paths(void **state)
{
    enum { N = 40000, KMAX = 17 };
    size_t *off = malloc((N + 1) * sizeof *off);
    int32_t *y = malloc(N * sizeof *y);
    off[0] = 0;
    for (size_t i = 0; i < N; i++)
        off[i + 1] = off[i] + 9 + i % 9;
    float *z = malloc(off[N] * sizeof *z);
    double *zd = malloc(off[N] * sizeof *zd);
    uint64_t s = 11;
    for (size_t j = 0; j < off[N]; j++) {
        z[j] = (float)((unif(&s) - 0.5) * 9);
    }
    for (size_t i = 0; i < N; i++) {
        const size_t b = off[i], len = off[i + 1] - b;
        size_t arg = 0;
        for (size_t k = 1; k < len; k++)
            arg = z[b + k] > z[b + arg] ? k : arg;
        y[i] = (int32_t)(i % 3 ? arg : (arg + i) % len);
        if (i % 5000 == 7) /* too wide for float32 moments: in double */
            z[b + arg] = 3e7f, y[i] = (int32_t)arg;
    }
    for (size_t j = 0; j < off[N]; j++)
        zd[j] = z[j];
    for (int ragged = 1; ragged >= 0; ragged--) { /* ragged first: y is reused */
        const size_t n = ragged ? N : off[N] / KMAX;
        calib_arrays a = {.kind = CALIB_LOGITS, .n = n, .k = ragged ? 0 : KMAX,
                          .offsets = ragged ? off : NULL, .dtype = CALIB_F32,
                          .scores = z, .labels = y};
        for (size_t i = 0; !ragged && i < n; i++) {
            size_t arg = 0;
            for (size_t k = 1; k < KMAX; k++)
                arg = z[i * KMAX + k] > z[i * KMAX + arg] ? k : arg;
            y[i] = (int32_t)(i % 3 && z[i * KMAX + arg] < 1e7f ? arg : (arg + i) % KMAX);
            if (z[i * KMAX + arg] > 1e7f)
                y[i] = (int32_t)arg;
        }
        calib_calibrator *c1 = fit_arrays(&a, 1), *c2 = fit_arrays(&a, 2);
        a.dtype = CALIB_F64, a.scores = zd;
        calib_calibrator *cd = fit_arrays(&a, 2);
        const double t = calib_calibrator_temperature(c1);
        print_message("  float32 %s: T %.17g (as doubles %.17g), %d passes\n",
                      ragged ? "ragged" : "k=17", t,
                      calib_calibrator_temperature(cd),
                      calib_calibrator_iterations(c1));
        assert_true(t == calib_calibrator_temperature(c2));
        assert_close(t, calib_calibrator_temperature(cd), 1e-12);
        assert_close(calib_calibrator_objective_value(c1),
                     calib_calibrator_objective_value(cd), 1e-13);
        assert_int_equal(calib_calibrator_diagnostic_count(c1), 0);
        calib_calibrator_free(c1);
        calib_calibrator_free(c2);
        calib_calibrator_free(cd);
    }
    free(off);
    free(y);
    free(z);
    free(zd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_softmax),
        cmocka_unit_test(test_golden_binary),
        cmocka_unit_test(test_golden_ece),
        cmocka_unit_test(test_densenet),
        cmocka_unit_test(test_all_correct),
        cmocka_unit_test(test_all_wrong),
        cmocka_unit_test(test_constant_predictor),
        cmocka_unit_test(test_single_class),
        cmocka_unit_test(test_equal_logits),
        cmocka_unit_test(test_single_row),
        cmocka_unit_test(test_huge_logits),
        cmocka_unit_test(test_float16_logits),
        cmocka_unit_test(test_probs_with_zeros),
        cmocka_unit_test(test_binary_boundaries),
        cmocka_unit_test(test_argmax_kept_by_construction),
        cmocka_unit_test(test_objective_names),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_large_threads),
        cmocka_unit_test(test_float32_paths),
        cmocka_unit_test(test_outlying_max),
        cmocka_unit_test(test_series_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
