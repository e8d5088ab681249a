/* test_paired.c — the paired bootstrap, and the replicate's full rows.
 *
 * calib_paired_bootstrap against numpy (gen_bootstrap.py's paired case),
 * A against itself, the checks that the rows correspond, and DenseNet-40
 * on CIFAR-10 before and after temperature scaling (../shared/data).
 * Then the internal claim the bootstrap rests on: a replicate evaluated
 * through its top-label view and exact loss sums equals, bit for bit, the
 * drawn distribution rows evaluated whole.
 */
#include "golden.h"

#include "boot.h"

static const char *const names7[] = {"accuracy", "mean_confidence", "ece",
                                     "mce", "rmsce", "nll", "brier"};

static calib_dataset *wrap_logits(const double *z, const int32_t *y,
                                  size_t n, size_t k)
{
    calib_arrays a = {0};
    a.kind = CALIB_LOGITS;
    a.n = n;
    a.k = k;
    a.scores = z;
    a.labels = y;
    return wrap_ok(&a);
}

static calib_paired *paired_ok(const calib_dataset *a, const calib_dataset *b,
                               const calib_eval_options *o)
{
    calib_paired *p = NULL;
    calib_error err;
    if (calib_paired_bootstrap(a, b, o, &p, &err) != CALIB_OK)
        fail_msg("paired: %s", err.message);
    return p;
}

static void test_paired_golden(void **state)
{
    json_t *g = golden_load("bootstrap_cases.json");
    const json_t *c = json_object_get(g, "paired");
    size_t n = (size_t)json_integer_value(json_object_get(c, "n"));
    size_t k = (size_t)json_integer_value(json_object_get(c, "k"));
    double *za = golden_doubles(c, "a", NULL);
    double *zb = golden_doubles(c, "b", NULL);
    int64_t *y64 = golden_ints(c, "labels", NULL);
    int32_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = (int32_t)y64[i];
    calib_dataset *a = wrap_logits(za, y, n, k), *b = wrap_logits(zb, y, n, k);
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bins = 10;
    o.bootstrap = (int)json_integer_value(json_object_get(c, "resamples"));
    o.seed = strtoull(json_string_value(json_object_get(c, "seed")), NULL, 10);
    o.ci_level = golden_number(c, "level");
    calib_paired *p = paired_ok(a, b, &o);
    const json_t *exp = json_object_get(c, "expected");
    for (int id = 0; id < 7; id++) {
        const json_t *e = json_object_get(exp, names7[id]);
        const calib_paired_metric *pm = &p->m[id];
        if (id == CALIB_M_NLL || id == CALIB_M_BRIER || id == CALIB_M_ECE)
            assert_int_equal(pm->replicates, (size_t)o.bootstrap);
        assert_close(pm->diff, golden_number(e, "diff"), 1e-12);
        double *ci = golden_doubles(e, "ci", NULL);
        assert_close(pm->ci[0], ci[0], 1e-12);
        assert_close(pm->ci[1], ci[1], 1e-12);
        assert_close(pm->p_le_0, golden_number(e, "p_le_0"), 0);
        free(ci);
    }
    calib_paired_free(p);
    calib_dataset_free(a), calib_dataset_free(b);
    free(za), free(zb), free(y64), free(y);
    json_decref(g);
}

/* n rows of k logits, deterministic. */
static void make_logits(double *z, int32_t *y, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)((i * 7) % k);
        for (size_t j = 0; j < k; j++)
            z[i * k + j] = sin((double)(i * k + j)) * 3.0 + (j == 0);
    }
}

static void test_paired_self(void **state)
{
    enum { N = 300, K = 4 };
    double z[N * K];
    int32_t y[N];
    make_logits(z, y, N, K);
    calib_dataset *a = wrap_logits(z, y, N, K);
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bootstrap = 50;
    calib_paired *p = paired_ok(a, a, &o);
    assert_int_equal(p->n, N);
    for (int id = 0; id < 7; id++) {
        assert_true(p->m[id].diff == 0.0);
        assert_true(p->m[id].ci[0] == 0.0 && p->m[id].ci[1] == 0.0);
        assert_true(p->m[id].p_le_0 == 1.0);
    }
    for (int id = 7; id < CALIB_M_COUNT; id++)
        if (id == CALIB_M_SMECE) /* not resampled: no interval */
            assert_true(isnan(p->m[id].ci[0]) && isnan(p->m[id].ci[1]));
        else if (isfinite(p->m[id].a))
            assert_true(p->m[id].ci[0] == 0.0 && p->m[id].ci[1] == 0.0);
    calib_paired_free(p);
    calib_dataset_free(a);
}

static void test_paired_mismatch(void **state)
{
    enum { N = 40, K = 3 };
    double z[N * K];
    int32_t y[N], y2[N];
    make_logits(z, y, N, K);
    memcpy(y2, y, sizeof y);
    y2[12] = (y2[12] + 1) % K;
    calib_dataset *a = wrap_logits(z, y, N, K);
    calib_dataset *shorter = wrap_logits(z, y, N - 1, K);
    calib_dataset *relabelled = wrap_logits(z, y2, N, K);
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bootstrap = 10;
    calib_paired *p = (calib_paired *)1;
    calib_error err;
    assert_int_equal(calib_paired_bootstrap(a, shorter, &o, &p, &err),
                     CALIB_EDATA);
    assert_null(p);
    assert_contains(err.message, "same rows in the same order");
    assert_int_equal(calib_paired_bootstrap(a, relabelled, &o, &p, &err),
                     CALIB_EDATA);
    assert_int_equal(err.row, 13);
    o.bootstrap = 0;
    assert_int_equal(calib_paired_bootstrap(a, a, &o, &p, &err),
                     CALIB_EINVAL);
    o.bootstrap = 10;
    o.ci_level = 90;
    assert_int_equal(calib_paired_bootstrap(a, a, &o, &p, &err),
                     CALIB_EINVAL);
    calib_dataset_free(a);
    calib_dataset_free(shorter);
    calib_dataset_free(relabelled);
}

/* DenseNet-40 on CIFAR-10: temperature scaling fitted on validation
 * lowers the test ECE from about 0.055 to about 0.01 (Guo et al. 2017);
 * the paired interval of the difference lies below 0, and accuracy does
 * not move in any replicate (temperature keeps every prediction). */
static void test_paired_densenet(void **state)
{
    const char *dir = golden_shared_dir();
    if (!dir)
        skip();
    char val[600], vlab[600], test[600], tlab[600];
    snprintf(val, sizeof val, "%s/densenet40-cifar10-logits/logits_val.npy",
             dir);
    snprintf(vlab, sizeof vlab, "%s/densenet40-cifar10-logits/labels_val.npy",
             dir);
    snprintf(test, sizeof test,
             "%s/densenet40-cifar10-logits/logits_test.npy", dir);
    snprintf(tlab, sizeof tlab,
             "%s/densenet40-cifar10-logits/labels_test.npy", dir);
    calib_read_options ro;
    calib_read_options_init(&ro);
    ro.labels_path = vlab;
    calib_dataset *v = read_ok(val, &ro);
    ro.labels_path = tlab;
    calib_dataset *t = read_ok(test, &ro);
    calib_fit_options fo;
    calib_fit_options_init(&fo);
    calib_calibrator *cal = NULL;
    calib_dataset *after = NULL;
    assert_int_equal(calib_fit(v, &fo, &cal, NULL), CALIB_OK);
    assert_int_equal(calib_apply(cal, t, &after, NULL), CALIB_OK);
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bootstrap = 200;
    o.seed = 2017;
    calib_paired *p = paired_ok(t, after, &o);
    const calib_paired_metric *ece = &p->m[CALIB_M_ECE];
    assert_true(ece->a > 0.05 && ece->b < 0.02);
    assert_true(ece->ci[0] < ece->diff && ece->diff < ece->ci[1]);
    assert_true(ece->ci[1] < 0.0);
    assert_true(ece->p_le_0 == 1.0);
    assert_true(p->m[CALIB_M_NLL].ci[1] < 0.0);
    assert_true(p->m[CALIB_M_ACCURACY].ci[0] == 0.0);
    assert_true(p->m[CALIB_M_ACCURACY].ci[1] == 0.0);
    calib_paired_free(p);
    calib_dataset_free(after);
    calib_calibrator_free(cal);
    calib_dataset_free(v);
    calib_dataset_free(t);
}

/* ------------------------------------------------------------------ */
/* The view equals the full rows                                       */
/* ------------------------------------------------------------------ */

/* Replicate r's values through b as prepared, and with every bootstrapped
 * metric forced through the drawn rows themselves: equal bit for bit. */
static void view_equals_full(const calib_dataset *ds,
                             const calib_eval_options *o)
{
    calib_metrics *m = evaluate_ok(ds, o);
    boot b;
    assert_int_equal(calib__boot_prepare(&b, ds, m, o, 1), CALIB_OK);
    assert_int_equal(b.src[CALIB_M_ECE], SRC_VIEW);
    assert_int_equal(b.src[CALIB_M_NLL], SRC_ROWS);
    boot f = b;
    for (int id = 0; id < CALIB_M_COUNT; id++)
        if (f.src[id] != SRC_NONE)
            f.src[id] = SRC_FULL;
    f.full_extra = o->extra;
    boot_scratch sb, sf;
    assert_int_equal(calib__boot_scratch_new(&b, &sb), CALIB_OK);
    assert_int_equal(calib__boot_scratch_new(&f, &sf), CALIB_OK);
    const size_t nv = b.n_pops * CALIB_M_COUNT;
    double *vb = malloc(nv * sizeof *vb), *vf = malloc(nv * sizeof *vf);
    uint32_t *c = malloc(ds->n * sizeof *c);
    for (uint64_t r = 0; r < 3; r++) {
        calib__bootstrap_counts(77, r, ds->n, c);
        assert_int_equal(calib__boot_eval(&b, &sb, c, vb), CALIB_OK);
        assert_int_equal(calib__boot_eval(&f, &sf, c, vf), CALIB_OK);
        for (size_t i = 0; i < nv; i++)
            if (!(vb[i] == vf[i] || (isnan(vb[i]) && isnan(vf[i]))))
                fail_msg("pop %zu metric %zu: view %.17g, full rows %.17g",
                         i / CALIB_M_COUNT, i % CALIB_M_COUNT, vb[i], vf[i]);
    }
    free(vb), free(vf), free(c);
    calib__boot_scratch_free(&sb);
    calib__boot_scratch_free(&sf);
    calib__boot_free(&b);
    calib_metrics_free(m);
}

static void test_view_equals_full_rows(void **state)
{
    enum { N = 400, K = 5 };
    static double z[N * K];
    static float zf[N * K];
    static int32_t y[N], yr[N];
    static double w[N];
    static uint32_t g[N];
    static size_t off[N + 1];
    const char *names[3] = {"a", "b", "c"};
    make_logits(z, y, N, K);
    for (size_t i = 0; i < N; i++) {
        w[i] = 0.25 + (double)(i % 7) / 4.0;
        g[i] = (uint32_t)(i % 3);
        off[i + 1] = off[i] + (i % 2 ? 3 : 4); /* ragged: 4, 3, 4, ... */
        yr[i] = y[i] % 3;
    }
    for (size_t i = 0; i < N * K; i++)
        zf[i] = (float)z[i];
    calib_arrays a = {0};
    a.kind = CALIB_LOGITS;
    a.n = N;
    a.k = K;
    a.weights = w;
    a.groups = g;
    a.n_groups = 3;
    a.group_names = names;
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bootstrap = 1;
    for (int variant = 0; variant < 4; variant++) {
        a.dtype = variant == 1 ? CALIB_F32 : CALIB_F64;
        a.scores = variant == 1 ? (const void *)zf : (const void *)z;
        a.offsets = variant == 3 ? off : NULL;
        a.labels = variant == 3 ? yr : y;
        o.binning = variant == 2 ? CALIB_BINNING_MASS : CALIB_BINNING_WIDTH;
        calib_dataset *ds = wrap_ok(&a);
        view_equals_full(ds, &o);
        calib_dataset_free(ds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paired_golden),
        cmocka_unit_test(test_paired_self),
        cmocka_unit_test(test_paired_mismatch),
        cmocka_unit_test(test_paired_densenet),
        cmocka_unit_test(test_view_equals_full_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
