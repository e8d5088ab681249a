/* tscale_simd.h — the vector helpers the temperature-scaling kernels
 * share (tscale_kernel.c: double; tscale_kernel32.c: float32): GCC vector
 * types, lane helpers, the branch-free exp on four doubles and on eight
 * floats, and the cumulants from raw or central moment sums.  Private to
 * those two files.
 *
 * exp is computed without a table or a branch: x = n ln2 + r with
 * |r| <= ln2/2 (Cody and Waite 1980: ln2 split so that n ln2_hi is exact),
 * e^r by a degree-11 near-minimax polynomial (mpmath's chebyfit, error
 * 3e-18) evaluated by Horner's scheme (its high terms split in two
 * chains), several groups of four side by side, and 2^n added to its
 * exponent bits; against long double the result is within 2.2e-16
 * relative (1 ulp; tests/test_tscale_exp.c measures 1.42e-16).  The
 * float32 twin uses the same reduction and a degree-5 polynomial (2.1e-7
 * relative).  Every vector operation is one IEEE operation per lane, the
 * lanes are summed in a fixed order, ISO C mode keeps -ffp-contract=off,
 * and the fused multiply-adds of both exps are written out (fma4, fma8),
 * which the x86-64-v3 clone does in hardware and the portable build with
 * libm's fma, rounding the same: so every build of a kernel gives the
 * same bits (the test checks the exps').
 */
#ifndef CALIB_TSCALE_SIMD_H
#define CALIB_TSCALE_SIMD_H

#include "temperature.h"

#include <string.h>

/* The helpers below take and return 32-byte vectors; they are always
 * inlined, so no call passes one (and no code for them is emitted without
 * AVX, which GCC would warn about). */
#define INLINE static inline __attribute__((always_inline))
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#endif

typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v8i __attribute__((vector_size(32)));

/* On x86-64 Linux with GCC the kernels are also compiled for x86-64-v3
 * (AVX2 and FMA) and the variant is picked at load time (an ifunc). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && \
    !defined(__clang__)
#define VECTOR_CLONES                                                     \
    __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VECTOR_CLONES
#endif

INLINE v4d splat(double x) { return (v4d){x, x, x, x}; }

INLINE v4d load4(const double *p)
{
    v4d v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE void store4(double *p, v4d v) { memcpy(p, &v, sizeof v); }

/* Lanes of v where mask is all ones, else b (bitwise, so it vectorises). */
INLINE v4d select4(v4i mask, v4d v, v4d b)
{
    return (v4d)(((v4i)v & mask) | ((v4i)b & ~mask));
}

/* Lanes l < r of v, the others 0. */
INLINE v4d first_lanes(v4d v, size_t r)
{
    const int64_t n = (int64_t)r;
    const v4i lane = {0, 1, 2, 3}, lim = {n, n, n, n};
    return (v4d)((v4i)v & (lane < lim));
}

/* (l0 + l1) + (l2 + l3): the one order every build uses. */
INLINE double hsum(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/* Lanes of a and b picked by four indices (b's lanes are 4 .. 7). */
#if defined(__clang__)
#define shuffle4x2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define shuffle4x2(a, b, ...) __builtin_shuffle(a, b, (v4i){__VA_ARGS__})
#endif

/* hsum of a, b, c and d in lanes 0 .. 3, added in hsum's order (the same
 * bits): four sums for about the work of one. */
INLINE v4d hsum4(v4d a, v4d b, v4d c, v4d d)
{
    const v4d ab = shuffle4x2(a, b, 0, 4, 2, 6) + shuffle4x2(a, b, 1, 5, 3, 7);
    const v4d cd = shuffle4x2(c, d, 0, 4, 2, 6) + shuffle4x2(c, d, 1, 5, 3, 7);
    return shuffle4x2(ab, cd, 0, 1, 4, 5) + shuffle4x2(ab, cd, 2, 3, 6, 7);
}

/* a b + c rounded once, lane by lane: one instruction in the x86-64-v3
 * clone (GCC joins the four calls), libm's fma in the portable one; both
 * round exactly, so both give the same bits. */
INLINE v4d fma4(v4d a, v4d b, v4d c)
{
    return (v4d){__builtin_fma(a[0], b[0], c[0]), __builtin_fma(a[1], b[1], c[1]),
                 __builtin_fma(a[2], b[2], c[2]), __builtin_fma(a[3], b[3], c[3])};
}

/* Unrolled over the groups of a block (a constant count). */
#define FOR_GROUPS(g, count)                                              \
    _Pragma("GCC unroll 8") for (int g = 0; g < (count); g++)

/* e^r's polynomial from the degree-11 term down to the constant. */
static const double exp_poly[12] = {
    0x1.af632a0f7e2cep-26, 0x1.28b4101c77212p-22, 0x1.71ddf56d8deb5p-19,
    0x1.a01991a10d9aep-16, 0x1.a01a01b1461c5p-13, 0x1.6c16c1880029fp-10,
    0x1.111111110f21ep-7,  0x1.555555554f0bap-5,  0x1.555555555555ap-3,
    0x1.0000000000011p-1,  1.0,                   1.0};

/* exp(x[g]) for -708 <= x[g] <= 0, within 1 ulp, into x[g], for `count`
 * groups at once: the groups' chains are independent, so the
 * out-of-order core overlaps them.  The kernels are bound by the two FMA
 * pipes and by how long a chain is: Horner's scheme with its high terms
 * in two chains (below) has one operation more than plain Horner and a
 * chain a third shorter, and the high pass's first loop runs 9% faster
 * with it; Estrin's, shorter still, has two more and is slower (measured
 * on Zen 4).  2^n is added to the exponent bits of p in [2^-1/2, 2^1/2],
 * which stays normal for n >= -1021: the same product p 2^n, exactly,
 * without a multiplication. */
INLINE void exp_groups(v4d *x, int count)
{
    const v4d shift = splat(0x1.8p52);
    v4d t[8], r[8], r2[8], p[8], q[8];
    /* t's low mantissa bits hold n = round(x / ln2) */
    FOR_GROUPS(g, count) t[g] = fma4(x[g], splat(0x1.71547652b82fep0), shift);
    FOR_GROUPS(g, count)
        r[g] = fma4(shift - t[g], splat(0x1.62e42feep-1), x[g]);
    FOR_GROUPS(g, count)
        r[g] = fma4(shift - t[g], splat(0x1.a39ef35793c76p-33), r[g]);
    /* c3 + c4 r + ... + c11 r^8 from its odd and even terms, by Horner's
     * scheme in r^2 side by side (half the chain), then the last three
     * steps of Horner's scheme in r, for their accuracy:
     * p = 1 + r (1 + r (c2 + r ((c4 + c6 r^2 + ...) r
     *                          + (c3 + c5 r^2 + ...)))) */
    FOR_GROUPS(g, count) r2[g] = r[g] * r[g];
    FOR_GROUPS(g, count)
        q[g] = fma4(r2[g], splat(exp_poly[1]), splat(exp_poly[3]));
    FOR_GROUPS(g, count)
        p[g] = fma4(r2[g], splat(exp_poly[0]), splat(exp_poly[2]));
    _Pragma("GCC unroll 16") for (int j = 4; j < 8; j += 2) {
        FOR_GROUPS(g, count) q[g] = fma4(q[g], r2[g], splat(exp_poly[j + 1]));
        FOR_GROUPS(g, count) p[g] = fma4(p[g], r2[g], splat(exp_poly[j]));
    }
    FOR_GROUPS(g, count) p[g] = fma4(p[g], r2[g], splat(exp_poly[8]));
    FOR_GROUPS(g, count) p[g] = fma4(q[g], r[g], p[g]);
    _Pragma("GCC unroll 16") for (int j = 9; j < 12; j++)
        FOR_GROUPS(g, count) p[g] = fma4(p[g], r[g], splat(exp_poly[j]));
    FOR_GROUPS(g, count) x[g] = (v4d)((v4i)p[g] + ((v4i)t[g] << 52));
}

/* exp(x) for -708 <= x <= 0, within 1 ulp: exp_groups of one group. */
INLINE v4d exp_range(v4d x)
{
    exp_groups(&x, 1);
    return x;
}

/* exp(x[g]) for x[g] <= 0, within 1 ulp; 0 below -708, where the result
 * would be subnormal.  With clamp = 0 (a constant), every x[g] must be
 * >= -708: a row whose smallest beta w is checks that once, and its loop
 * then skips the clamp, with the same bits. */
INLINE void exp_nonpos_groups(v4d *x, int count, int clamp)
{
    if (!clamp) {
        exp_groups(x, count);
        return;
    }
    v4i keep[8];
    FOR_GROUPS(g, count) keep[g] = (v4i)(x[g] >= splat(-708.0));
    FOR_GROUPS(g, count) x[g] = select4(keep[g], x[g], splat(-708.0));
    exp_groups(x, count);
    FOR_GROUPS(g, count) x[g] = (v4d)((v4i)x[g] & keep[g]);
}

INLINE v4d exp_nonpos(v4d x, int clamp)
{
    exp_nonpos_groups(&x, 1, clamp);
    return x;
}

/* ------------------------------------------------------------------ */
/* Float32, eight lanes: the approximate passes                        */
/* ------------------------------------------------------------------ */

INLINE v8f splat8(float x) { return (v8f){x, x, x, x, x, x, x, x}; }

INLINE v8f load8(const float *p)
{
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

INLINE void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

INLINE v8f select8(v8i mask, v8f v, v8f b)
{
    return (v8f)(((v8i)v & mask) | ((v8i)b & ~mask));
}

INLINE v8f first_lanes8(v8f v, size_t r)
{
    const int32_t n = (int32_t)r;
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7}, lim = {n, n, n, n, n, n, n, n};
    return (v8f)((v8i)v & (lane < lim));
}

/* The lanes summed in double in one fixed order: l and l + 4 first (as
 * one vector addition), then as hsum does. */
INLINE double hsum8(v8f v)
{
    v4f lo, hi;
    memcpy(&lo, &v, sizeof lo);
    memcpy(&hi, (const float *)&v + 4, sizeof hi);
    const v4d a = {lo[0], lo[1], lo[2], lo[3]}, b = {hi[0], hi[1], hi[2], hi[3]};
    return hsum(a + b);
}

/* exp(x) for -87 <= x <= 0 in float32, within 2.1e-7 relative.  The
 * reduction of exp_range; e^r = 1 + r + r^2 q(r), q of degree 3 fitted for the least maximum
 * relative error (1.05e-7 on |r| <= ln2/2, before rounding). */
/* fma4's float32 twin on eight lanes. */
INLINE v8f fma8(v8f a, v8f b, v8f c)
{
    v8f r;
    for (int j = 0; j < 8; j++)
        r[j] = __builtin_fmaf(a[j], b[j], c[j]);
    return r;
}

INLINE v8f exp32_range(v8f x)
{
    const v8f shift = splat8(0x1.8p23f);
    const v8f t = fma8(x, splat8(0x1.715476p0f), shift);
    const v8f n = t - shift;
    const v8f r = fma8(-n, splat8(0x1.7f7d1cp-20f),
                       fma8(-n, splat8(0x1.62e4p-1f), x));
    const int32_t bias = 0x4B400000 - 127;
    const v8i sbits = ((v8i)t - (v8i){bias, bias, bias, bias, bias, bias, bias, bias}) << 23;
    const v8f r2 = r * r;
    const v8f q = fma8(r2, fma8(r, splat8(0x1.106284p-7f), splat8(0x1.5729f0p-5f)),
                       fma8(r, splat8(0x1.5557aep-3f), splat8(0x1.fffdfcp-2f)));
    const v8f p = fma8(r2, q, splat8(1.0f) + r);
    return p * (v8f)sbits;
}

/* exp32_range for every x <= 0 (0 below -87) when clamp is 1; as
 * exp_nonpos. */
INLINE v8f exp32_nonpos(v8f x, int clamp)
{
    if (!clamp)
        return exp32_range(x);
    const v8i keep = (v8i)(x >= splat8(-87.0f));
    return (v8f)((v8i)exp32_range(select8(keep, x, splat8(-87.0f))) & keep);
}

/* ------------------------------------------------------------------ */
/* A row of float32 scores: its extremes and tail                      */
/* ------------------------------------------------------------------ */

/* v's lanes permuted by the 8 indices (clang, which builds the fuzz
 * targets, has no __builtin_shuffle). */
#if defined(__clang__)
#define shuffle8(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define shuffle8(v, ...) __builtin_shuffle(v, (v8i){__VA_ARGS__})
#endif

INLINE v8f max8(v8f a, v8f b) { return select8((v8i)(a > b), a, b); }
INLINE v8f min8(v8f a, v8f b) { return select8((v8i)(a < b), a, b); }

/* The maximum (or minimum) of the lanes, in every lane. */
INLINE v8f all_max8(v8f v)
{
    v = max8(v, shuffle8(v, 4, 5, 6, 7, 0, 1, 2, 3));
    v = max8(v, shuffle8(v, 2, 3, 0, 1, 6, 7, 4, 5));
    return max8(v, shuffle8(v, 1, 0, 3, 2, 5, 4, 7, 6));
}

INLINE v8f all_min8(v8f v)
{
    v = min8(v, shuffle8(v, 4, 5, 6, 7, 0, 1, 2, 3));
    v = min8(v, shuffle8(v, 2, 3, 0, 1, 6, 7, 4, 5));
    return min8(v, shuffle8(v, 1, 0, 3, 2, 5, 4, 7, 6));
}

/* The maximum and minimum of z[0..len) into r, and the last partial
 * group of 8 copied into r->tail, padded with the maximum; z[len ..] up
 * to z[avail) may be read (and ignored), so that most rows need no scalar
 * copy. */
INLINE void zrow_scan(calib__zrow *r, const float *z, size_t len,
                      size_t avail)
{
    const size_t full = len & ~(size_t)7;
    v8f mx = splat8(z[0]), mn = mx, t = mx, mx2 = mx, mn2 = mx;
    size_t k = 0;
    /* two chains: half the latency */
    for (; k + 16 <= full; k += 16) {
        const v8f v = load8(z + k), u = load8(z + k + 8);
        mx = max8(mx, v), mn = min8(mn, v);
        mx2 = max8(mx2, u), mn2 = min8(mn2, u);
    }
    if (k < full) {
        const v8f v = load8(z + k);
        mx = max8(mx, v), mn = min8(mn, v);
    }
    mx = max8(mx, mx2), mn = min8(mn, mn2);
    const int32_t rem = (int32_t)(len - full);
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    const v8i in_row = lane < (v8i){rem, rem, rem, rem, rem, rem, rem, rem};
    if (full + 8 <= avail) {
        t = select8(in_row, load8(z + full), t);
    } else {
        store8(r->tail, t);
        memcpy(r->tail, z + full, (size_t)rem * sizeof *z);
        t = load8(r->tail);
    }
    mx = all_max8(max8(mx, t)), mn = all_min8(min8(mn, t));
    store8(r->tail, select8(in_row, t, mx));
    r->z = z, r->len = len, r->zmax = mx[0], r->zmin = mn[0];
}

/* out[] from the sums of e, e (w - w_y), e w, e w^2, e w^3, e w^4
 * (tscale_kernel.c, before moments(), says how exact they are). */
static inline void from_raw(const double s[6], double out[CALIB__TS_MOM])
{
    const double inv = 1.0 / s[0];
    const double m = s[2] * inv, m2 = s[3] * inv, m3 = s[4] * inv;
    const double m4 = s[5] * inv;
    const double c2 = m2 - m * m;
    const double c3 = m3 - 3.0 * m * m2 + 2.0 * m * m * m;
    const double c4 = m4 - 4.0 * m * m3 + 6.0 * m * m * m2 - 3.0 * m * m * m * m;
    out[0] = s[0];
    out[1] = s[1] * inv;
    out[2] = c2;
    out[3] = c3;
    out[4] = c4 - 3.0 * c2 * c2;
}

/* The moments of a `high` pass, for four rows at once, row r in lane r:
 * s0 = sum e and s1 = sum e (w - w_y) as from_raw takes them, c[j-2] =
 * sum e (w - m)^j for j = 2..8 about the mean m; out[0..8] = sum e, f',
 * kappa_2 .. kappa_8 (with mu_j = c[j-2] / sum e: kappa_j = mu_j for
 * j <= 3, the others as in Kendall and Stuart, 3.38; tests/
 * test_tscale_exp.c checks them on Poisson and Bernoulli distributions).
 * One division for the four rows. */
INLINE void from_central4(v4d s0, v4d s1, const v4d c[7],
                          v4d out[CALIB__TS_MOM])
{
    const v4d inv = splat(1.0) / s0;
    const v4d m2 = c[0] * inv, m3 = c[1] * inv, m4 = c[2] * inv;
    const v4d m5 = c[3] * inv, m6 = c[4] * inv, m7 = c[5] * inv;
    const v4d m8 = c[6] * inv;
    out[0] = s0;
    out[1] = s1 * inv;
    out[2] = m2;
    out[3] = m3;
    out[4] = m4 - splat(3.0) * m2 * m2;
    out[5] = m5 - splat(10.0) * m3 * m2;
    out[6] = m6 - splat(15.0) * m4 * m2 - splat(10.0) * m3 * m3 +
             splat(30.0) * m2 * m2 * m2;
    out[7] = m7 - splat(21.0) * m5 * m2 - splat(35.0) * m4 * m3 +
             splat(210.0) * m3 * m2 * m2;
    out[8] = m8 - splat(28.0) * m6 * m2 - splat(56.0) * m5 * m3 -
             splat(35.0) * m4 * m4 + splat(420.0) * m4 * m2 * m2 +
             splat(560.0) * m3 * m3 * m2 - splat(630.0) * m2 * m2 * m2 * m2;
}

/* from_central4 for one row (s[0..1], c[], out[]): the very operations,
 * so a row gets the same bits either way. */
static inline void from_central(const double s[6], const double c[7],
                                double out[CALIB__TS_MOM])
{
    v4d cv[7], o[CALIB__TS_MOM];
    for (int j = 0; j < 7; j++)
        cv[j] = splat(c[j]);
    from_central4(splat(s[0]), splat(s[1]), cv, o);
    for (int j = 0; j < CALIB__TS_MOM; j++)
        out[j] = o[j][0];
}

#endif /* CALIB_TSCALE_SIMD_H */
