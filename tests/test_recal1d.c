/* test_recal1d.c — isotonic regression and histogram binning maps: golden
 * fits from scikit-learn and a numpy transcription (gen_recal1d.py, on
 * seeded data and on ../shared/data when present), monotonicity, near-
 * identity on calibrated data, zero weights, bad arguments, and the JSON
 * members: a bit-exact round trip and every malformed member refused. */
#include "golden.h"

#include "recal1d.h"

#define TOL 1e-12

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

typedef struct rows {
    size_t n;
    double *p, *w;       /* w NULL when the case has none */
    uint8_t *y;
} rows;

static rows case_rows(const json_t *c)
{
    rows r = {0};
    int64_t *y = golden_ints(c, "y", &r.n);
    r.p = golden_doubles(c, "p", NULL);
    r.w = json_is_null(json_object_get(c, "w")) ? NULL
                                                : golden_doubles(c, "w", NULL);
    r.y = malloc(r.n ? r.n : 1);
    for (size_t i = 0; i < r.n; i++)
        r.y[i] = (uint8_t)y[i];
    free(y);
    return r;
}

static void rows_free(rows *r)
{
    free(r->p);
    free(r->w);
    free(r->y);
}

/* A small xorshift generator: the tests' own seeded data. */
static double uniform(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static void random_rows(rows *r, size_t n, uint64_t seed, int calibrated)
{
    r->n = n;
    r->p = malloc(n * sizeof *r->p);
    r->w = NULL;
    r->y = malloc(n);
    for (size_t i = 0; i < n; i++) {
        r->p[i] = uniform(&seed);
        const double acc = calibrated ? r->p[i] : r->p[i] * r->p[i];
        r->y[i] = uniform(&seed) < acc;
    }
}

static void check_predictions(const json_t *c, const char *name,
                              double (*predict)(const void *, double),
                              const void *m)
{
    size_t np;
    double *pts = golden_doubles(c, "points", &np);
    double *want = golden_doubles(c, "predictions", NULL);
    for (size_t i = 0; i < np; i++)
        if (!(fabs(predict(m, pts[i]) - want[i]) <= TOL))
            fail_msg("%s: f(%.17g) = %.17g, expected %.17g", name, pts[i],
                     predict(m, pts[i]), want[i]);
    free(pts);
    free(want);
}

static double iso_at(const void *m, double p)
{
    return calib__isotonic_predict(m, p);
}

static double hist_at(const void *m, double p)
{
    return calib__histogram_predict(m, p);
}

static calib__isotonic iso_fit_ok(const rows *r)
{
    calib__isotonic m;
    calib_error e;
    if (calib__isotonic_fit(r->p, r->y, r->w, r->n, &m, &e))
        fail_msg("isotonic fit: %s", e.message);
    return m;
}

static calib__histogram hist_fit_ok(const rows *r, int bins,
                                    calib_binning binning)
{
    calib__histogram m;
    calib_error e;
    if (calib__histogram_fit(r->p, r->y, r->w, r->n, bins, binning, &m, &e))
        fail_msg("histogram fit: %s", e.message);
    return m;
}

/* ------------------------------------------------------------------ */
/* Golden                                                              */
/* ------------------------------------------------------------------ */

static void test_isotonic_sklearn(void **state)
{
    json_t *g = golden_load("recal1d.json");
    const json_t *cases = json_object_get(g, "isotonic");
    size_t i, n_shared = 0;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        rows r = case_rows(c);
        calib__isotonic m = iso_fit_ok(&r);
        size_t nt;
        double *x = golden_doubles(c, "x_thresholds", &nt);
        double *y = golden_doubles(c, "y_thresholds", NULL);
        if (m.n != nt)
            fail_msg("%s: %zu thresholds, sklearn has %zu", name, m.n, nt);
        for (size_t k = 0; k < nt; k++) {
            if (m.x[k] != x[k])
                fail_msg("%s: x[%zu] = %.17g, expected %.17g", name, k,
                         m.x[k], x[k]);
            assert_close(m.y[k], y[k], TOL);
        }
        check_predictions(c, name, iso_at, &m);
        n_shared += !strncmp(name, "densenet", 8) || !strncmp(name, "mmlu", 4);
        calib__isotonic_free(&m);
        free(x);
        free(y);
        rows_free(&r);
    }
    assert_true(json_array_size(cases) >= 13);
    if (!n_shared)
        printf("(isotonic on ../shared/data skipped: not found)\n");
    json_decref(g);
}

static void test_histogram_numpy(void **state)
{
    json_t *g = golden_load("recal1d.json");
    const json_t *cases = json_object_get(g, "histogram");
    size_t i;
    const json_t *c;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *bn = json_string_value(json_object_get(c, "binning"));
        rows r = case_rows(c);
        calib__histogram m = hist_fit_ok(
            &r, (int)json_integer_value(json_object_get(c, "bins")),
            strcmp(bn, "mass") ? CALIB_BINNING_WIDTH : CALIB_BINNING_MASS);
        size_t ne;
        double *edges = golden_doubles(c, "edges", &ne);
        double *vals = golden_doubles(c, "values", NULL);
        if (m.n_bins + 1 != ne)
            fail_msg("%s: %zu bins, expected %zu", name, m.n_bins, ne - 1);
        for (size_t k = 0; k < ne; k++)
            if (m.edges[k] != edges[k])
                fail_msg("%s: edge %zu = %.17g, expected %.17g", name, k,
                         m.edges[k], edges[k]);
        for (size_t k = 0; k + 1 < ne; k++)
            assert_close(m.value[k], vals[k], TOL);
        check_predictions(c, name, hist_at, &m);
        calib__histogram_free(&m);
        free(edges);
        free(vals);
        rows_free(&r);
    }
    assert_true(json_array_size(cases) >= 8);
    json_decref(g);
}

/* ------------------------------------------------------------------ */
/* Properties                                                          */
/* ------------------------------------------------------------------ */

/* Isotonic output never decreases, at the thresholds or between them. */
static void test_isotonic_monotone(void **state)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        rows r;
        random_rows(&r, 50 + 37 * seed, seed * 7919, (int)(seed & 1));
        calib__isotonic m = iso_fit_ok(&r);
        for (size_t k = 1; k < m.n; k++) {
            assert_true(m.x[k] > m.x[k - 1]);
            assert_true(m.y[k] >= m.y[k - 1]);
        }
        double prev = -1.0;
        for (int k = -100; k <= 1100; k++) {
            const double f = calib__isotonic_predict(&m, k / 1000.0);
            assert_true(f >= prev && f >= 0.0 && f <= 1.0);
            prev = f;
        }
        calib__isotonic_free(&m);
        rows_free(&r);
    }
}

/* Confidences drawn calibrated (y ~ Bernoulli(p), p uniform, N = 2e5):
 * the isotonic map stays near the identity.  scikit-learn on such data
 * (5 seeds, measured in numpy) gives mean |f(p) - p| over [0.05, 0.95]
 * 0.006-0.007 and max 0.021-0.026, the N^(-1/3) rate of isotonic
 * regression; the bounds leave a factor of about 2. */
static void test_isotonic_calibrated_identity(void **state)
{
    rows r;
    random_rows(&r, 200000, 12345, 1);
    calib__isotonic m = iso_fit_ok(&r);
    double sum = 0, worst = 0;
    for (int k = 0; k <= 900; k++) {
        const double p = 0.05 + k / 1000.0;
        const double d = fabs(calib__isotonic_predict(&m, p) - p);
        sum += d;
        worst = fmax(worst, d);
    }
    assert_true(sum / 901 < 0.013);
    assert_true(worst < 0.05);
    calib__isotonic_free(&m);
    rows_free(&r);
}

/* A step function: constant on each bin (e_b, e_{b+1}], with the bin's
 * fitted accuracy; an empty bin at its midpoint. */
static void test_histogram_steps(void **state)
{
    rows r;
    random_rows(&r, 400, 99, 0);
    for (size_t i = 0; i < r.n; i++)
        r.p[i] = 0.5 + r.p[i] / 2; /* bins below 0.5 stay empty */
    calib__histogram m = hist_fit_ok(&r, 10, CALIB_BINNING_WIDTH);
    assert_int_equal(m.n_bins, 10);
    for (size_t b = 0; b < 10; b++) {
        const double lo = m.edges[b], hi = m.edges[b + 1];
        assert_true(lo == b / 10.0 && hi == (b + 1) / 10.0);
        if (b < 5)
            assert_true(m.value[b] == (lo + hi) / 2);
        for (int k = 1; k <= 10; k++)
            assert_true(calib__histogram_predict(&m, lo + (hi - lo) * k / 10)
                        == m.value[b]);
    }
    assert_true(calib__histogram_predict(&m, 0.0) == m.value[0]);
    assert_true(calib__histogram_predict(&m, -0.5) == m.value[0]);
    assert_true(calib__histogram_predict(&m, 1.5) == m.value[9]);
    assert_true(isnan(calib__histogram_predict(&m, NAN)));
    calib__histogram_free(&m);
    rows_free(&r);
}

/* A row of weight 0 changes nothing: the fit equals the fit without it. */
static void test_zero_weight_is_dropped(void **state)
{
    rows r, kept = {0};
    random_rows(&r, 300, 4242, 0);
    r.w = malloc(r.n * sizeof *r.w);
    kept.p = malloc(r.n * sizeof *kept.p);
    kept.y = malloc(r.n);
    for (size_t i = 0; i < r.n; i++) {
        r.w[i] = i % 3 == 0 ? 0.0 : 1.0;
        if (r.w[i] > 0) {
            kept.p[kept.n] = r.p[i];
            kept.y[kept.n++] = r.y[i];
        }
    }
    calib__isotonic a = iso_fit_ok(&r), b = iso_fit_ok(&kept);
    assert_int_equal(a.n, b.n);
    assert_memory_equal(a.x, b.x, a.n * sizeof *a.x);
    assert_memory_equal(a.y, b.y, a.n * sizeof *a.y);
    for (int mass = 0; mass < 2; mass++) {
        const calib_binning bn = mass ? CALIB_BINNING_MASS
                                      : CALIB_BINNING_WIDTH;
        calib__histogram h = hist_fit_ok(&r, 12, bn);
        calib__histogram k = hist_fit_ok(&kept, 12, bn);
        assert_int_equal(h.n_bins, k.n_bins);
        assert_memory_equal(h.edges, k.edges, (h.n_bins + 1) * sizeof(double));
        assert_memory_equal(h.value, k.value, h.n_bins * sizeof(double));
        calib__histogram_free(&h);
        calib__histogram_free(&k);
    }
    calib__isotonic_free(&a);
    calib__isotonic_free(&b);
    rows_free(&r);
    rows_free(&kept);
}

/* ------------------------------------------------------------------ */
/* Bad arguments                                                       */
/* ------------------------------------------------------------------ */

static void iso_refused(const double *p, const uint8_t *y, const double *w,
                        size_t n, const char *needle)
{
    calib__isotonic m = {7, (double *)1, (double *)1};
    calib_error e;
    assert_int_equal(calib__isotonic_fit(p, y, w, n, &m, &e), CALIB_EINVAL);
    assert_int_equal(e.code, CALIB_EINVAL);
    assert_true(m.n == 0 && !m.x && !m.y);
    if (!strstr(e.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", e.message, needle);
}

static void hist_refused(const double *p, const uint8_t *y, const double *w,
                         size_t n, int bins, int binning, const char *needle)
{
    calib__histogram m = {7, (double *)1, (double *)1};
    calib_error e;
    assert_int_equal(calib__histogram_fit(p, y, w, n, bins,
                                          (calib_binning)binning, &m, &e),
                     CALIB_EINVAL);
    assert_true(m.n_bins == 0 && !m.edges && !m.value);
    if (!strstr(e.message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", e.message, needle);
}

static void test_bad_arguments(void **state)
{
    const double p[3] = {0.2, 0.5, 0.9}, nanp[3] = {0.2, NAN, 0.9};
    const double out01[3] = {0.2, 1.5, 0.9}, negw[3] = {1, -1, 1};
    const double zerow[3] = {0, 0, 0}, infw[3] = {1, 1, INFINITY};
    const uint8_t y[3] = {0, 1, 1}, y2[3] = {0, 2, 1};
    iso_refused(p, y, NULL, 0, "no rows");
    iso_refused(NULL, y, NULL, 3, "NULL");
    iso_refused(nanp, y, NULL, 3, "row 2: bad confidence");
    iso_refused(p, y, negw, 3, "row 2: bad weight");
    iso_refused(p, y, infw, 3, "row 3: bad weight");
    iso_refused(p, y2, NULL, 3, "row 2: bad correct flag");
    iso_refused(p, y, zerow, 3, "positive weight");
    hist_refused(p, y, NULL, 0, 10, CALIB_BINNING_WIDTH, "no rows");
    hist_refused(p, y, NULL, 3, 0, CALIB_BINNING_WIDTH, "bins");
    hist_refused(p, y, NULL, 3, 10, 7, "binning");
    hist_refused(out01, y, NULL, 3, 10, CALIB_BINNING_MASS,
                 "row 2: bad confidence");
    hist_refused(nanp, y, NULL, 3, 10, CALIB_BINNING_WIDTH, "row 2");
    hist_refused(p, y, negw, 3, 10, CALIB_BINNING_WIDTH, "row 2: bad weight");
    hist_refused(p, y2, NULL, 3, 10, CALIB_BINNING_WIDTH, "correct flag");
    hist_refused(p, y, zerow, 3, 10, CALIB_BINNING_MASS, "positive weight");
    calib__isotonic_free(NULL);
    calib__histogram_free(NULL);
    calib__isotonic z = {0};
    calib__isotonic_free(&z);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

/* "{" + members + "}", parsed. */
static json_t *members_json(calib__buf *b)
{
    assert_false(b->failed);
    char *s = malloc(b->len + 3);
    snprintf(s, b->len + 3, "{%s}", b->s);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    if (!o)
        fail_msg("JSON %s: %s", s, je.text);
    free(s);
    free(b->s);
    return o;
}

static void test_json_round_trip(void **state)
{
    rows r;
    random_rows(&r, 700, 777, 0);
    calib__isotonic m = iso_fit_ok(&r), back;
    calib__buf b = {0};
    calib__isotonic_to_json(&m, &b);
    json_t *o = members_json(&b);
    calib_error e;
    assert_int_equal(calib__isotonic_from_json(o, &back, &e), CALIB_OK);
    assert_int_equal(back.n, m.n);
    assert_memory_equal(back.x, m.x, m.n * sizeof *m.x);
    assert_memory_equal(back.y, m.y, m.n * sizeof *m.y);
    json_decref(o);
    for (int mass = 0; mass < 2; mass++) {
        calib__histogram h = hist_fit_ok(
            &r, 15, mass ? CALIB_BINNING_MASS : CALIB_BINNING_WIDTH), hb;
        calib__buf hbuf = {0};
        calib__histogram_to_json(&h, &hbuf);
        o = members_json(&hbuf);
        assert_int_equal(calib__histogram_from_json(o, &hb, &e), CALIB_OK);
        assert_int_equal(hb.n_bins, h.n_bins);
        assert_memory_equal(hb.edges, h.edges, (h.n_bins + 1) * sizeof(double));
        assert_memory_equal(hb.value, h.value, h.n_bins * sizeof(double));
        json_decref(o);
        calib__histogram_free(&h);
        calib__histogram_free(&hb);
    }
    calib__isotonic_free(&m);
    calib__isotonic_free(&back);
    rows_free(&r);
}

typedef struct bad_json {
    const char *json, *needle;
} bad_json;

static void refuse_all(const bad_json *cases, size_t n, int histogram)
{
    for (size_t i = 0; i < n; i++) {
        json_error_t je;
        json_t *o = json_loads(cases[i].json, 0, &je);
        if (!o)
            fail_msg("test JSON %s: %s", cases[i].json, je.text);
        calib_error e;
        calib__isotonic im = {7, (double *)1, (double *)1};
        calib__histogram hm = {7, (double *)1, (double *)1};
        const int rc = histogram ? calib__histogram_from_json(o, &hm, &e)
                                 : calib__isotonic_from_json(o, &im, &e);
        if (rc != CALIB_EDATA || !strstr(e.message, cases[i].needle))
            fail_msg("%s: status %d, \"%s\" lacks \"%s\"", cases[i].json, rc,
                     e.message, cases[i].needle);
        if (histogram)
            assert_true(hm.n_bins == 0 && !hm.edges && !hm.value);
        else
            assert_true(im.n == 0 && !im.x && !im.y);
        json_decref(o);
    }
}

static void test_json_refused(void **state)
{
    static const bad_json iso[] = {
        {"{}", "\"x_thresholds\" is missing"},
        {"{\"x_thresholds\":1,\"y_thresholds\":[0]}", "\"x_thresholds\" is missing or not a list"},
        {"{\"x_thresholds\":[0.5]}", "\"y_thresholds\" is missing"},
        {"{\"x_thresholds\":[],\"y_thresholds\":[]}", "\"x_thresholds\" is empty"},
        {"{\"x_thresholds\":[0.1,\"a\"],\"y_thresholds\":[0,1]}", "\"x_thresholds\"[1] is not a finite"},
        {"{\"x_thresholds\":[0.1,null],\"y_thresholds\":[0,1]}", "\"x_thresholds\"[1] is not a finite"},
        {"{\"x_thresholds\":[0.1,0.2],\"y_thresholds\":[0,true]}", "\"y_thresholds\"[1] is not a finite"},
        {"{\"x_thresholds\":[0.1,0.2],\"y_thresholds\":[0,1,1]}", "\"x_thresholds\" has 2 values, \"y_thresholds\" 3"},
        {"{\"x_thresholds\":[0.1,0.1],\"y_thresholds\":[0,1]}", "\"x_thresholds\"[1] = 0.10000000000000001 is not above"},
        {"{\"x_thresholds\":[0.3,0.2],\"y_thresholds\":[0,1]}", "\"x_thresholds\"[1]"},
        {"{\"x_thresholds\":[0.1,0.2],\"y_thresholds\":[0.5,0.4]}", "\"y_thresholds\"[1] = 0.40000000000000002 is below"},
        {"{\"x_thresholds\":[0.1,0.2],\"y_thresholds\":[-0.1,0.4]}", "\"y_thresholds\"[0] = -0.10000000000000001 is outside [0, 1]"},
        {"{\"x_thresholds\":[0.1,0.2],\"y_thresholds\":[0.5,1.5]}", "\"y_thresholds\"[1] = 1.5 is outside"},
    };
    static const bad_json hist[] = {
        {"{\"values\":[0.5]}", "\"edges\" is missing"},
        {"{\"edges\":[0,1]}", "\"values\" is missing"},
        {"{\"edges\":[0,1],\"values\":{}}", "\"values\" is missing or not a list"},
        {"{\"edges\":[0,1],\"values\":[]}", "\"values\" is empty"},
        {"{\"edges\":[0,1],\"values\":[0.2,0.3]}", "\"edges\" has 2 values, \"values\" 2"},
        {"{\"edges\":[0,\"x\",1],\"values\":[0.2,0.3]}", "\"edges\"[1] is not a finite"},
        {"{\"edges\":[0.1,0.5,1],\"values\":[0.2,0.3]}", "\"edges\" must run from 0 to 1"},
        {"{\"edges\":[0,0.5,0.9],\"values\":[0.2,0.3]}", "\"edges\" must run from 0 to 1"},
        {"{\"edges\":[0,0.5,0.5,1],\"values\":[0.2,0.3,0.4]}", "\"edges\"[2] = 0.5 is not above"},
        {"{\"edges\":[0,0.6,0.5,1],\"values\":[0.2,0.3,0.4]}", "\"edges\"[2]"},
        {"{\"edges\":[0,-0.5,1],\"values\":[0.2,0.3]}", "\"edges\"[1] = -0.5 is outside"},
        {"{\"edges\":[0,1.5,1],\"values\":[0.2,0.3]}", "\"edges\"[1] = 1.5 is outside"},
        {"{\"edges\":[0,0.5,1],\"values\":[0.2,1.25]}", "\"values\"[1] = 1.25 is outside"},
        {"{\"edges\":[0,0.5,1],\"values\":[-1e-9,0.3]}", "\"values\"[0]"},
    };
    refuse_all(iso, sizeof iso / sizeof *iso, 0);
    refuse_all(hist, sizeof hist / sizeof *hist, 1);
    /* the legal extremes are accepted: edges[1] = 0 (a bin holding p = 0
     * only) and one fitted point */
    json_t *o = json_loads("{\"edges\":[0,0,1],\"values\":[0,1]}", 0, NULL);
    calib__histogram h;
    assert_int_equal(calib__histogram_from_json(o, &h, NULL), CALIB_OK);
    assert_true(calib__histogram_predict(&h, 0.0) == 0.0);
    assert_true(calib__histogram_predict(&h, 1e-300) == 1.0);
    calib__histogram_free(&h);
    json_decref(o);
    o = json_loads("{\"x_thresholds\":[0.4],\"y_thresholds\":[0.7]}", 0, NULL);
    calib__isotonic m;
    assert_int_equal(calib__isotonic_from_json(o, &m, NULL), CALIB_OK);
    assert_true(calib__isotonic_predict(&m, 0.0) == 0.7);
    assert_true(calib__isotonic_predict(&m, 1.0) == 0.7);
    calib__isotonic_free(&m);
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isotonic_sklearn),
        cmocka_unit_test(test_histogram_numpy),
        cmocka_unit_test(test_isotonic_monotone),
        cmocka_unit_test(test_isotonic_calibrated_identity),
        cmocka_unit_test(test_histogram_steps),
        cmocka_unit_test(test_zero_weight_is_dropped),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
