/* test_tscale_exp.c — the branch-free exp of the temperature-scaling
 * kernels (tscale_simd.h): its error against long double expl, and the
 * same bits from the code the x86-64-v3 clone runs (fused multiply-adds in
 * hardware) and from the portable code (libm's fma), which is the promise
 * that a fit gives the same T on every machine. */
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

static void exp_portable(const double *x, double *e) { EXP_ALL(x, e) }

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_V3 1
__attribute__((target("arch=x86-64-v3"))) static void
exp_v3(const double *x, double *e) { EXP_ALL(x, e) }
#endif

/* The portable code's exp is within 4.1e-16 relative of expl (2 ulp; the
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
    assert_true(worst <= 4.1e-16);
    assert_true(e[0] == 1.0);
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
    free(x);
    free(a);
    free(b);
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
