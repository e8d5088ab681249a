/* test_binning.c — equal-width bin rules against a direct reading of their
 * definitions (exact comparisons with the edges k/M), agreement between the
 * metrics kernel and calib__bin_width, and equal-mass edges against a
 * sort-based implementation of Kumar's get_equal_bins.
 */
#include "golden.h"
#include "metrics.h"

#include <stdint.h>

/* The rules as written in calib.h, by a linear scan over the edges. */
static long reference_bin(double p, int m, calib_bin_rule rule)
{
    const int left = rule == CALIB_RULE_NETCAL ||
                     rule == CALIB_RULE_TORCHMETRICS;
    if (rule == CALIB_RULE_TORCHMETRICS && p == 1.0)
        return m;
    if (p == 0.0 && (rule == CALIB_RULE_GPLEISS || rule == CALIB_RULE_HOLLANCE))
        return -1;
    for (long b = 0; b < m; b++) {
        const double lo = (double)b / m, hi = (double)(b + 1) / m;
        const int in = left ? (p >= lo && (p < hi || (b == m - 1 && p == 1.0)))
                            : ((p > lo || (b == 0 && p == 0.0)) && p <= hi);
        if (in)
            return b;
    }
    fail_msg("p = %.17g in no bin", p);
    return -2;
}

static void test_rule_names(void **state)
{
    for (int r = 0; r <= CALIB_RULE_HOLLANCE; r++) {
        calib_bin_rule got;
        assert_int_equal(calib_bin_rule_parse(calib_bin_rule_name(r), &got),
                         CALIB_OK);
        assert_int_equal(got, r);
    }
    calib_bin_rule x;
    assert_int_equal(calib_bin_rule_parse("scikit", &x), CALIB_EINVAL);
    assert_int_equal(calib_bin_rule_parse(NULL, &x), CALIB_EINVAL);
    assert_string_equal(calib_bin_rule_name(CALIB_RULE_TORCHMETRICS),
                        "torchmetrics");
}

/* The trap: 0.2 * 15 = 3.0000000000000004, yet 0.2 is the edge 3/15. */
static void test_known_edges(void **state)
{
    assert_int_equal(calib__bin_width(0.2, 15, CALIB_RULE_SKLEARN), 2);
    assert_int_equal(calib__bin_width(nextafter(0.2, 1), 15,
                                      CALIB_RULE_SKLEARN), 3);
    assert_int_equal(calib__bin_width(0.2, 15, CALIB_RULE_NETCAL), 3);
    assert_int_equal(calib__bin_width(nextafter(0.2, 0), 15,
                                      CALIB_RULE_NETCAL), 2);
    assert_int_equal(calib__bin_width(0.8, 10, CALIB_RULE_SKLEARN), 7);
    assert_int_equal(calib__bin_width(0.3, 10, CALIB_RULE_SKLEARN), 2);
    assert_int_equal(calib__bin_width(0.7, 10, CALIB_RULE_SKLEARN), 6);
    assert_int_equal(calib__bin_width(0.0, 15, CALIB_RULE_SKLEARN), 0);
    assert_int_equal(calib__bin_width(1.0, 15, CALIB_RULE_SKLEARN), 14);
    assert_int_equal(calib__bin_width(1.0, 15, CALIB_RULE_NETCAL), 14);
    assert_int_equal(calib__bin_width(1.0, 15, CALIB_RULE_TORCHMETRICS), 15);
    assert_int_equal(calib__bin_width(0.0, 15, CALIB_RULE_TORCHMETRICS), 0);
    assert_int_equal(calib__bin_width(0.0, 15, CALIB_RULE_GPLEISS), -1);
    assert_int_equal(calib__bin_width(0.0, 15, CALIB_RULE_HOLLANCE), -1);
    assert_int_equal(calib__bin_width(1e-300, 15, CALIB_RULE_HOLLANCE), 0);
    assert_int_equal(calib__bin_width(0.5, 1, CALIB_RULE_SKLEARN), 0);
}

/* Every edge k/M, its neighbours, and random values, for many M. */
static void test_all_edges(void **state)
{
    const int ms[] = {1, 2, 3, 7, 10, 13, 15, 20, 49, 100, 999, 1000, 65537};
    srand(3);
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
        const int m = ms[i];
        const int step = m > 2000 ? 4099 : 1;
        for (int r = 0; r <= CALIB_RULE_HOLLANCE; r++) {
            for (int k = 0; k <= m; k += step) {
                const double e = (double)k / m;
                const double ps[] = {e, nextafter(e, 0.0), nextafter(e, 1.0),
                                     (double)(float)e};
                for (int j = 0; j < 4; j++) {
                    const double p = ps[j] < 0 ? 0 : ps[j] > 1 ? 1 : ps[j];
                    assert_int_equal(calib__bin_width(p, m, r),
                                     reference_bin(p, m, r));
                }
            }
            for (int t = 0; t < 2000 && m <= 2000; t++) {
                const double p = (double)rand() / RAND_MAX;
                assert_int_equal(calib__bin_width(p, m, r),
                                 reference_bin(p, m, r));
            }
        }
    }
}

/* The metrics kernels (float32 fast path, float64 general path) put rows
 * where calib__bin_width says; m = 300 takes the float32 path for many
 * bins. */
static void kernel_agrees(int m)
{
    const size_t n = 3 * (m + 1) + 5000;
    double *p64 = malloc(n * sizeof *p64);
    float *p32 = malloc(n * sizeof *p32);
    uint8_t *cor = calloc(n, 1);
    size_t i = 0;
    for (int k = 0; k <= m; k++) {
        const double e = (double)k / m;
        p64[i++] = e;
        p64[i++] = k ? nextafter(e, 0) : e;
        p64[i++] = k < m ? nextafter(e, 1) : e;
    }
    srand(11);
    while (i < n)
        p64[i++] = (double)rand() / RAND_MAX;
    for (i = 0; i < n; i++)
        p32[i] = (float)p64[i];
    for (int dt = 0; dt < 2; dt++) {
        for (int r = 0; r <= CALIB_RULE_HOLLANCE; r++) {
            calib_arrays a = {0};
            a.kind = CALIB_TOPLABEL;
            a.dtype = dt ? CALIB_F32 : CALIB_F64;
            a.n = n;
            a.conf = dt ? (const void *)p32 : (const void *)p64;
            a.correct = cor;
            calib_dataset *ds = NULL;
            assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
            calib_eval_options o;
            calib_eval_options_init(&o);
            o.rule = r;
            o.bins = m;
            calib_metrics *met = NULL;
            assert_int_equal(calib_evaluate(ds, &o, &met, NULL), CALIB_OK);
            size_t *want = calloc((size_t)m + 2, sizeof *want);
            for (i = 0; i < n; i++) {
                const double p = dt ? (double)p32[i] : p64[i];
                const long b = calib__bin_width(p, m, r);
                if (b >= 0)
                    want[b]++;
            }
            for (size_t b = 0; b < met->n_bins; b++)
                assert_int_equal(met->bins[b].count, want[b]);
            free(want);
            calib_metrics_free(met);
            calib_dataset_free(ds);
        }
    }
    free(p64);
    free(p32);
    free(cor);
}

static void test_kernel_agrees(void **state)
{
    kernel_agrees(15);
    kernel_agrees(10);
    kernel_agrees(300);
}

/* ------------------------------------------------------------------ */
/* Equal-mass edges                                                    */
/* ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* get_equal_bins by sorting, as Kumar et al. wrote it. */
static size_t reference_edges(const double *p, size_t n, size_t m,
                              double *edges)
{
    double *s = malloc(n * sizeof *s);
    memcpy(s, p, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    if (m > n)
        m = n;
    size_t ne = 0;
    const size_t q = n / m, r = n % m;
    for (size_t i = 1; i < m; i++) {
        const size_t st = i * q + (i < r ? i : r);
        const double e = (s[st - 1] + s[st]) / 2.0;
        if (!ne || edges[ne - 1] != e)
            edges[ne++] = e;
    }
    if (!ne || edges[ne - 1] != 1.0)
        edges[ne++] = 1.0;
    free(s);
    return ne;
}

static void check_mass(const double *p, size_t n, int m, int threads)
{
    double *want = malloc(((size_t)m + 1) * sizeof *want);
    const size_t nw = reference_edges(p, n, (size_t)m, want);
    double *got = NULL;
    size_t ng = 0;
    assert_int_equal(calib__mass_edges(p, n, m, threads, &got, &ng), CALIB_OK);
    assert_int_equal(ng, nw);
    for (size_t i = 0; i < ng; i++)
        if (got[i] != want[i])
            fail_msg("n %zu m %d edge %zu: %.17g != %.17g", n, m, i, got[i],
                     want[i]);
    free(got);
    free(want);
}

static void test_mass_edges(void **state)
{
    srand(5);
    const size_t ns[] = {1, 2, 3, 7, 10, 15, 16, 100, 1001, 300000};
    const int ms[] = {1, 2, 10, 15, 20, 1000};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
        double *p = malloc(ns[a] * sizeof *p);
        for (int kind = 0; kind < 3; kind++) {
            for (size_t i = 0; i < ns[a]; i++) {
                const double u = (double)rand() / RAND_MAX;
                /* uniform; few distinct values; clustered in one bucket */
                p[i] = kind == 0   ? u
                       : kind == 1 ? (double)(rand() % 5) / 4.0
                                   : 0.99999 + u * 1e-6;
            }
            for (size_t b = 0; b < sizeof ms / sizeof *ms; b++)
                for (int t = 1; t <= 3; t += 2)
                    check_mass(p, ns[a], ms[b], t);
        }
        free(p);
    }
}

/* Float32 confidences: the edges found on their bits equal Kumar's on
 * the same values as doubles (clamped into [0,1], as the metrics read
 * them), for data spread out, with few distinct values, within one
 * 2^-10 bucket, at exactly 0 and 1, with denormals and clamped values,
 * and many bins (the float64 fallback); -0.0 sends the caller to the
 * float64 path. */
static void check_mass_f32(const float *p, size_t n, int m, int threads)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = p[i] < 0.0f ? 0.0 : p[i] > 1.0f ? 1.0 : p[i];
    double *want = malloc(((size_t)m + 1) * sizeof *want);
    const size_t nw = reference_edges(d, n, (size_t)m, want);
    double *got = NULL;
    size_t ng = 0;
    assert_int_equal(calib__mass_edges_f32(p, n, m, threads, &got, &ng),
                     CALIB_OK);
    assert_int_equal(ng, nw);
    for (size_t i = 0; i < ng; i++)
        if (memcmp(&got[i], &want[i], sizeof got[i]) != 0)
            fail_msg("f32 n %zu m %d edge %zu: %.17g != %.17g", n, m, i,
                     got[i], want[i]);
    free(got);
    free(want);
    free(d);
}

static void test_mass_edges_f32(void **state)
{
    srand(7);
    const size_t ns[] = {1, 2, 3, 15, 16, 1001, 300001};
    const int ms[] = {1, 2, 15, 33, 100};
    const float special[] = {0.0f, 1.0f, 0x1p-149f, 1e-30f, -5e-4f, 1.0005f,
                             0.5f, nextafterf(1.0f, 0.0f)};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++) {
        float *p = malloc(ns[a] * sizeof *p);
        for (int kind = 0; kind < 5; kind++) {
            for (size_t i = 0; i < ns[a]; i++) {
                const float u = (float)rand() / (float)RAND_MAX;
                p[i] = kind == 0   ? u
                       : kind == 1 ? (float)(rand() % 5) / 4.0f
                       : kind == 2 ? 0.99991f + u * 1e-5f
                       : kind == 3 ? special[rand() % 8]
                                   : (rand() % 3 ? special[rand() % 4] : u);
            }
            for (size_t b = 0; b < sizeof ms / sizeof *ms; b++)
                for (int t = 1; t <= 3; t += 2)
                    check_mass_f32(p, ns[a], ms[b], t);
        }
        p[ns[a] / 2] = -0.0f;
        double *e = NULL;
        size_t ne = 0;
        /* one row: no rank is needed, no value read */
        assert_int_equal(calib__mass_edges_f32(p, ns[a], 15, 2, &e, &ne),
                         ns[a] > 1 ? CALIB_EINVAL : CALIB_OK);
        assert_true(ns[a] == 1 || e == NULL);
        free(e);
        free(p);
    }
}

/* A million confidences of exactly 1.0 (and a few others) stay linear and
 * give Kumar's edges. */
static void test_mass_duplicates(void **state)
{
    const size_t n = 1000000;
    double *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++)
        p[i] = i % 10 == 0 ? 0.5 : 1.0;
    check_mass(p, n, 15, 2);
    double *e = NULL;
    size_t ne = 0;
    assert_int_equal(calib__mass_edges(p, n, 15, 2, &e, &ne), CALIB_OK);
    /* groups of 66667: the first boundary lies among the 100000 halves,
     * every later one among the ones */
    assert_int_equal(ne, 2);
    assert_true(e[0] == 0.5 && e[1] == 1.0);
    free(e);
    free(p);
}

static void test_bin_mass(void **state)
{
    const double e[] = {0.25, 0.5, 0.75, 1.0};
    assert_int_equal(calib__bin_mass(0.0, e, 4), 0);
    assert_int_equal(calib__bin_mass(0.25, e, 4), 0); /* (a, b] */
    assert_int_equal(calib__bin_mass(nextafter(0.25, 1), e, 4), 1);
    assert_int_equal(calib__bin_mass(1.0, e, 4), 3);
    assert_int_equal(calib__bin_mass(0.6, e, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_names),
        cmocka_unit_test(test_known_edges),
        cmocka_unit_test(test_all_edges),
        cmocka_unit_test(test_kernel_agrees),
        cmocka_unit_test(test_mass_edges),
        cmocka_unit_test(test_mass_duplicates),
        cmocka_unit_test(test_mass_edges_f32),
        cmocka_unit_test(test_bin_mass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
