/* test_export.c — calib_dataset_export: softmax of logits (log-sum-exp,
 * no overflow), probabilities and confidences clamped as stored, ragged
 * rows, float32, the length check, and the probabilities of an applied
 * temperature, against softmax computed here in long double.
 */
#include "golden.h"

/* softmax(z / t) of one row in long double, the reference.  z / t is
 * rounded to double first, as calib_apply stores it. */
static void ref_softmax(const double *z, size_t k, double t, double *q)
{
    long double top = -INFINITY, s = 0.0L;
    for (size_t j = 0; j < k; j++)
        if ((long double)(z[j] / t) > top)
            top = (long double)(z[j] / t);
    for (size_t j = 0; j < k; j++)
        s += expl((long double)(z[j] / t) - top);
    for (size_t j = 0; j < k; j++)
        q[j] = (double)(expl((long double)(z[j] / t) - top) / s);
}

static calib_dataset *wrap(const calib_arrays *a)
{
    calib_dataset *ds = NULL;
    calib_error err = {0};
    assert_int_equal(calib_dataset_wrap(a, &ds, &err), CALIB_OK);
    return ds;
}

static double *export_all(const calib_dataset *ds, size_t *len)
{
    *len = calib_dataset_export_len(ds);
    double *out = malloc((*len ? *len : 1) * sizeof *out);
    calib_error err = {0};
    assert_int_equal(calib_dataset_export(ds, out, *len, &err), CALIB_OK);
    return out;
}

static const double Z[] = {1.0,  2.0,   3.0, /* an ordinary row        */
                           1000, 0.0,   -5,  /* exp(1000) would overflow */
                           -800, -801,  -802,/* exp(-800) would underflow */
                           0.5,  0.5,   0.5};/* uniform                  */
static const int32_t Y[] = {2, 0, 1, 1};

static void test_logits_f64(void **state)
{
    (void)state;
    calib_arrays a = {.kind = CALIB_LOGITS, .n = 4, .k = 3,
                      .dtype = CALIB_F64, .scores = Z, .labels = Y};
    calib_dataset *ds = wrap(&a);
    size_t len;
    double *q = export_all(ds, &len);
    assert_int_equal(len, 12);
    for (size_t i = 0; i < 4; i++) {
        double r[3];
        ref_softmax(Z + 3 * i, 3, 1.0, r);
        for (size_t j = 0; j < 3; j++) {
            assert_true(isfinite(q[3 * i + j]));
            assert_true(fabs(q[3 * i + j] - r[j]) <= 1e-15);
        }
    }
    assert_true(q[3] == 1.0 && q[4] < 1e-300);
    free(q);
    calib_dataset_free(ds);
}

static void test_logits_f32_ragged(void **state)
{
    (void)state;
    const float z[] = {0.25f, -1.5f, 3.0f, 2.0f, 2.0f, -7.0f, 0.0f, 1.0f, 4.0f};
    const size_t off[] = {0, 2, 5, 9};
    const int32_t y[] = {0, 2, 3};
    calib_arrays a = {.kind = CALIB_LOGITS, .n = 3, .offsets = off,
                      .dtype = CALIB_F32, .scores = z, .labels = y};
    calib_dataset *ds = wrap(&a);
    size_t len;
    double *q = export_all(ds, &len);
    assert_int_equal(len, 9);
    for (size_t i = 0; i < 3; i++) {
        double zd[4], r[4];
        const size_t k = off[i + 1] - off[i];
        for (size_t j = 0; j < k; j++)
            zd[j] = z[off[i] + j];
        ref_softmax(zd, k, 1.0, r);
        for (size_t j = 0; j < k; j++)
            assert_true(fabs(q[off[i] + j] - r[j]) <= 1e-15);
    }
    free(q);
    calib_dataset_free(ds);
}

static void test_probs_clamped(void **state)
{
    (void)state;
    const double p[] = {1.0005, -0.0005, 0.0, 0.2, 0.3, 0.5};
    const int32_t y[] = {0, 2};
    calib_arrays a = {.kind = CALIB_PROBS, .n = 2, .k = 3,
                      .dtype = CALIB_F64, .scores = p, .labels = y};
    calib_dataset *ds = wrap(&a);
    size_t len;
    double *q = export_all(ds, &len);
    const double want[] = {1.0, 0.0, 0.0, 0.2, 0.3, 0.5};
    for (size_t j = 0; j < 6; j++)
        assert_true(q[j] == want[j]);
    free(q);
    calib_dataset_free(ds);
}

static void test_toplabel(void **state)
{
    (void)state;
    const float c[] = {0.25f, 1.0004f, 0.0f};
    const uint8_t ok[] = {1, 0, 1};
    calib_arrays a = {.kind = CALIB_TOPLABEL, .n = 3, .dtype = CALIB_F32,
                      .conf = c, .correct = ok};
    calib_dataset *ds = wrap(&a);
    size_t len;
    double *q = export_all(ds, &len);
    assert_int_equal(len, 3);
    assert_true(q[0] == 0.25 && q[1] == 1.0 && q[2] == 0.0);
    free(q);
    calib_dataset_free(ds);
}

static void test_length_checked(void **state)
{
    (void)state;
    calib_arrays a = {.kind = CALIB_LOGITS, .n = 4, .k = 3,
                      .dtype = CALIB_F64, .scores = Z, .labels = Y};
    calib_dataset *ds = wrap(&a);
    double out[13];
    calib_error err = {0};
    assert_int_equal(calib_dataset_export(ds, out, 11, &err), CALIB_EINVAL);
    assert_int_equal(err.code, CALIB_EINVAL);
    assert_int_equal(calib_dataset_export(ds, out, 13, NULL), CALIB_EINVAL);
    assert_int_equal(calib_dataset_export_len(NULL), 0);
    calib_dataset_free(ds);
}

/* What calib.Calibrator.apply returns: softmax(z / T). */
static void test_after_temperature(void **state)
{
    (void)state;
    const char *js = "{\"method\":\"temperature\",\"objective\":\"nll\","
                     "\"temperature\":2.5,\"form\":\"softmax\"}";
    calib_calibrator *c = NULL;
    calib_error err = {0};
    assert_int_equal(calib_calibrator_from_json(js, strlen(js), &c, &err),
                     CALIB_OK);
    calib_arrays a = {.kind = CALIB_LOGITS, .n = 4, .k = 3,
                      .dtype = CALIB_F64, .scores = Z, .labels = Y};
    calib_dataset *ds = wrap(&a), *out = NULL;
    assert_int_equal(calib_apply(c, ds, &out, &err), CALIB_OK);
    size_t len;
    double *q = export_all(out, &len);
    assert_int_equal(len, 12);
    for (size_t i = 0; i < 4; i++) {
        double r[3];
        ref_softmax(Z + 3 * i, 3, 2.5, r);
        for (size_t j = 0; j < 3; j++)
            assert_true(fabs(q[3 * i + j] - r[j]) <= 1e-15);
    }
    free(q);
    calib_dataset_free(out);
    calib_dataset_free(ds);
    calib_calibrator_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logits_f64),
        cmocka_unit_test(test_logits_f32_ragged),
        cmocka_unit_test(test_probs_clamped),
        cmocka_unit_test(test_toplabel),
        cmocka_unit_test(test_length_checked),
        cmocka_unit_test(test_after_temperature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
