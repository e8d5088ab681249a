/* test_tscale_exp.c — helpers of the temperature-scaling kernels
 * (tscale_simd.h): the branch-free exps, double and float32, against long
 * double expl, and the same bits from the code the x86-64-v3 clone runs
 * (fused multiply-adds in hardware) and from the portable code (libm's
 * fma), which is the promise that a fit gives the same T on every
 * machine; the cumulants the series step uses; and the block kernel of
 * a fit's high pass against the row-by-row one. */
#include "golden.h"

#include "tscale_simd.h"

#include <math.h>

#define N_TEST 2000000

/* x[i] in [-708, 0]: every other one in [-3, 0], where most exps of a fit
 * fall, the rest spread over the whole range (an LCG, fixed seed). */
static double *test_points(void)
{
    double *x = malloc(N_TEST * sizeof *x);
    uint64_t s = 20261128;
    for (size_t i = 0; i < N_TEST; i++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        const double u = (double)(s >> 11) / 9007199254740992.0;
        x[i] = i % 2 ? -708.0 * u : -3.0 * u;
    }
    x[0] = 0.0, x[1] = -708.0, x[2] = -0.5 * 0x1.62e42fefa39efp-1;
    return x;
}

#define EXP_ALL(x, e)                                                     \
    for (size_t i = 0; i < N_TEST; i += 4) {                              \
        v4d v;                                                            \
        memcpy(&v, x + i, sizeof v);                                      \
        v = exp_range(v);                                                 \
        memcpy(e + i, &v, sizeof v);                                      \
    }

/* The float32 twin on the same points, rounded to float and kept to
 * [-87, 0], its range. */
#define EXP32_ALL(x, e)                                                   \
    for (size_t i = 0; i < N_TEST; i += 8) {                              \
        v8f v;                                                            \
        for (int j = 0; j < 8; j++)                                       \
            v[j] = (float)(x[i + j] * (87.0 / 708.0));                    \
        v = exp32_range(v);                                               \
        memcpy(e + i, &v, sizeof v);                                      \
    }

static void exp_portable(const double *x, double *e) { EXP_ALL(x, e) }
static void exp32_portable(const double *x, float *e) { EXP32_ALL(x, e) }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_V3 1
__attribute__((target("arch=x86-64-v3"))) static void
exp_v3(const double *x, double *e) { EXP_ALL(x, e) }
__attribute__((target("arch=x86-64-v3"))) static void
exp32_v3(const double *x, float *e) { EXP32_ALL(x, e) }
#endif

/* The portable code's exp is within 2.2e-16 relative of expl (1 ulp; the
 * figure tscale_simd.h gives); 0 and -708 are exact enough to check too. */
static void test_accuracy(void **state)
{
    double *x = test_points(), *e = malloc(N_TEST * sizeof *e), worst = 0.0;
    exp_portable(x, e);
    for (size_t i = 0; i < N_TEST; i++) {
        const long double r = expl((long double)x[i]);
        const double rel = (double)fabsl(((long double)e[i] - r) / r);
        worst = rel > worst ? rel : worst;
    }
    print_message("  exp: worst relative error %.3g over %d points\n", worst,
                  N_TEST);
    assert_true(worst <= 2.2e-16);
    assert_true(e[0] == 1.0);
    /* the float32 twin: within 2.1e-7 of expl of its (float) argument */
    float *e32 = malloc(N_TEST * sizeof *e32);
    exp32_portable(x, e32);
    worst = 0.0;
    for (size_t i = 0; i < N_TEST; i++) {
        const long double r = expl((long double)(float)(x[i] * (87.0 / 708.0)));
        const double rel = (double)fabsl(((long double)e32[i] - r) / r);
        worst = rel > worst ? rel : worst;
    }
    print_message("  exp32: worst relative error %.3g\n", worst);
    assert_true(worst <= 2.1e-7);
    free(e32);
    free(x);
    free(e);
}

/* The x86-64-v3 code (when this CPU has it) gives the portable code's
 * bits at every point. */
static void test_same_bits(void **state)
{
#ifdef HAVE_V3
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        skip();
    double *x = test_points(), *a = malloc(N_TEST * sizeof *a),
           *b = malloc(N_TEST * sizeof *b);
    exp_portable(x, a);
    exp_v3(x, b);
    assert_memory_equal(a, b, N_TEST * sizeof *a);
    float *a32 = malloc(N_TEST * sizeof *a32), *b32 = malloc(N_TEST * sizeof *b32);
    exp32_portable(x, a32);
    exp32_v3(x, b32);
    assert_memory_equal(a32, b32, N_TEST * sizeof *a32);
    free(a32);
    free(b32);
    free(x);
    free(a);
    free(b);
#else
    skip();
#endif
}

/* from_central's cumulants from central moment sums, on distributions
 * whose cumulants are known in closed form: Poisson(3), every cumulant 3;
 * Bernoulli(0.3), kappa_5 = pq (q - p)(1 - 12 pq) and kappa_6 = pq (1 -
 * 30 pq + 120 p^2 q^2) (Kendall and Stuart, 5.5), and kappa_7 = 0.359184,
 * kappa_8 = 0.4100376 (the 7th and 8th derivatives of log(q + p e^t) at
 * 0, by mpmath). */
static void central_of(const double *pmf, const double *x, size_t n,
                       double out[CALIB__TS_MOM])
{
    double mean = 0.0, s[6] = {0}, c[7] = {0};
    for (size_t i = 0; i < n; i++)
        mean += pmf[i] * x[i], s[0] += pmf[i];
    for (size_t i = 0; i < n; i++) {
        double t = pmf[i] * (x[i] - mean) * (x[i] - mean);
        for (int j = 0; j < 7; j++, t *= x[i] - mean)
            c[j] += t;
    }
    from_central(s, c, out);
}

static void test_cumulants(void **state)
{
    double pmf[60], x[60], out[CALIB__TS_MOM];
    for (int k = 0; k < 60; k++)
        x[k] = k, pmf[k] = exp(k * log(3.0) - 3.0 - lgamma(k + 1.0));
    central_of(pmf, x, 60, out);
    for (int j = 2; j <= 8; j++)
        assert_true(fabs(out[j] - 3.0) <= 1e-9);
    const double p = 0.3, q = 0.7, bp[2] = {q, p}, bx[2] = {0, 1};
    central_of(bp, bx, 2, out);
    assert_true(fabs(out[5] - p * q * (q - p) * (1 - 12 * p * q)) <= 1e-15);
    assert_true(fabs(out[6] - p * q * (1 - 30 * p * q + 120 * p * p * q * q)) <=
                1e-15);
    assert_true(fabs(out[7] - 0.359184) <= 1e-14);
    assert_true(fabs(out[8] - 0.4100376) <= 1e-14);
}

/* calib__ts_zrows_high (a block of float32 rows: first loops in blocks of
 * four groups, one row's second loop after the next row's first, the
 * kappas four rows at a time) gives, row by row, the bits of
 * calib__ts_row_moments on the same row loaded as doubles: rows of every
 * length 1 .. 45 (every shape of a row's last groups) and 100, constant
 * rows between them, one whose range needs exp's clamp, and blocks that
 * end part-way through a group of four rows. */
static void test_high_rows(void **state)
{
    enum { ROWS = 60 };
    size_t off[ROWS + 1] = {0};
    int32_t lab[ROWS];
    for (int i = 0; i < ROWS; i++) {
        const size_t len = i < 45   ? (size_t)i + 1
                           : i < 50 ? 100
                                    : (size_t)(i % 7) + 2;
        off[i + 1] = off[i] + len;
        lab[i] = (int32_t)((i * 7) % (int)len);
    }
    float *z = malloc(off[ROWS] * sizeof *z);
    uint64_t s = 7;
    for (int i = 0; i < ROWS; i++)
        for (size_t k = off[i]; k < off[i + 1]; k++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            z[k] = (float)((double)(s >> 11) / 9007199254740992.0 * 12.0 - 6.0);
            if (i % 9 == 4) /* constant rows */
                z[k] = 1.5f;
        }
    z[off[47]] = -3000.0f; /* beta times its range is past -708 */
    calib_arrays a = {.kind = CALIB_LOGITS, .n = ROWS, .offsets = off,
                      .dtype = CALIB_F32, .scores = z, .labels = lab};
    calib_dataset *ds;
    calib_error err;
    assert_int_equal(calib_dataset_wrap(&a, &ds, &err), CALIB_OK);
    const size_t stride = 104;
    double *e = malloc(2 * stride * sizeof *e), w[104], e1[104];
    const double beta = 0.61;
    for (size_t r0 = 0; r0 < ROWS; r0 += 13) {
        const size_t r1 = r0 + 13 < ROWS ? r0 + 13 : ROWS;
        calib__zhigh out[13];
        calib__ts_zrows_high(ds, r0, r1, beta, e, stride, out);
        for (size_t i = r0; i < r1; i++) {
            size_t len, y, at_max;
            double m[CALIB__TS_MOM], sum;
            const calib__row_state st = calib__ts_load_row(ds, i, w, &len, &y);
            assert_int_equal(out[i - r0].st, st);
            assert_int_equal(out[i - r0].len, len);
            if (st != CALIB__ROW_FIT)
                continue;
            calib__ts_row_moments(w, len, y, beta, e1, m, &sum, &at_max);
            assert_memory_equal(out[i - r0].m, m, sizeof m);
            assert_memory_equal(&out[i - r0].sum, &sum, sizeof sum);
            assert_memory_equal(&out[i - r0].wy, &w[y], sizeof w[y]);
            assert_int_equal(out[i - r0].at_max, at_max);
        }
    }
    calib_dataset_free(ds);
    free(e);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_same_bits),
        cmocka_unit_test(test_cumulants),
        cmocka_unit_test(test_high_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
