/* tscale_kernel.c — the per-row kernels of temperature scaling: a row's
 * logits loaded and shifted, exp of them, and the moments of the scores
 * under softmax(beta z).
 *
 * A fit spends almost all its time here, in exp, so the loops over a row
 * run on four doubles at a time (GCC vector extensions, which GCC and
 * Clang lower to AVX2 or SSE2), and exp is computed without a table or a
 * branch: x = n ln2 + r with |r| <= ln2/2 (Cody and Waite 1980: ln2 split
 * so that n ln2_hi is exact), e^r by a degree-11 near-minimax polynomial
 * (mpmath's chebyfit, error 3e-18) evaluated by Estrin's scheme, and 2^n
 * made exactly from its exponent bits; against long double the result is
 * within 4.1e-16 relative (2 ulp) over 1.3e7 test values.  Every vector operation is one
 * IEEE operation per lane, the lanes are summed in a fixed order, and ISO
 * C mode keeps -ffp-contract=off (no FMA), so every build of a kernel, the
 * AVX2 clone and the portable one alike, gives the same bits, and a row's
 * values never depend on which thread computes them.
 */
#include "temperature.h"

#include <string.h>

/* The helpers below take and return 32-byte vectors; they are always
 * inlined, so no call passes one (and no code for them is emitted without
 * AVX, which GCC would warn about). */
#define INLINE static inline __attribute__((always_inline))
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));

/* On x86-64 Linux with GCC the kernels are also compiled for AVX2 and the
 * variant is picked at load time (an ifunc). */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && \
    !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
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

/* exp(x) for x <= 0, within 2 ulp; 0 below -708, where the result would
 * be subnormal. */
INLINE v4d exp_nonpos(v4d x)
{
    const v4d shift = splat(0x1.8p52);
    const v4i keep = (v4i)(x >= splat(-708.0));
    x = select4(keep, x, splat(-708.0));
    /* t's low mantissa bits hold n = round(x / ln2) */
    const v4d t = x * splat(0x1.71547652b82fep0) + shift;
    const v4d n = t - shift;
    const v4d r = (x - n * splat(0x1.62e42feep-1)) -
                  n * splat(0x1.a39ef35793c76p-33);
    const int64_t bias = INT64_C(0x4338000000000000) - 1023;
    const v4i sbits = ((v4i)t - (v4i){bias, bias, bias, bias}) << 52;
    /* Estrin's scheme: a shorter dependency chain than Horner's, so more
     * rows' worth of exps overlap in the pipeline. */
    const v4d r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    const v4d p01 = splat(1.0) + r;
    const v4d p23 = splat(0x1.0000000000011p-1) + r * splat(0x1.555555555555ap-3);
    const v4d p45 = splat(0x1.555555554f0bap-5) + r * splat(0x1.111111110f21ep-7);
    const v4d p67 = splat(0x1.6c16c1880029fp-10) + r * splat(0x1.a01a01b1461c5p-13);
    const v4d p89 = splat(0x1.a01991a10d9aep-16) + r * splat(0x1.71ddf56d8deb5p-19);
    const v4d pab = splat(0x1.28b4101c77212p-22) + r * splat(0x1.af632a0f7e2cep-26);
    const v4d p03 = p01 + r2 * p23, p47 = p45 + r2 * p67, p8b = p89 + r2 * pab;
    const v4d p = (p03 + r4 * p47) + r8 * p8b;
    return (v4d)((v4i)(p * (v4d)sbits) & keep);
}

/* ------------------------------------------------------------------ */
/* Loading a row                                                       */
/* ------------------------------------------------------------------ */

static void pad(double *w, size_t len)
{
    for (size_t k = len; k % CALIB__TS_LANES; k++)
        w[k] = 0.0;
}

/* Drops the entries of w[0..n) (raw scores, maximum zmax) more than
 * W_DROP below zmax and shifts the rest by -zmax; *y = SIZE_MAX when the
 * label lab was dropped. */
static calib__row_state compact(double *w, size_t n, size_t lab, double zmax,
                                size_t *len, size_t *y)
{
    size_t m = 0;
    int flat = 1;
    *y = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        const double d = w[k] - zmax;
        if (d >= -CALIB__TS_W_DROP) {
            if (k == lab)
                *y = m;
            w[m++] = d;
            flat &= d == 0.0;
        }
    }
    *len = m;
    pad(w, m);
    return *y == SIZE_MAX ? CALIB__ROW_INFINITE
           : flat         ? CALIB__ROW_CONST
                          : CALIB__ROW_FIT;
}

/* Top-label row i as the logits (logit p, 0) with class 0 = correct; p in
 * {0, 1} is exact: the row (w = {0}) is constant when it agrees with its
 * correct flag, infinite otherwise. */
static calib__row_state load_top(const calib_dataset *ds, size_t i, double *w,
                                 size_t *len, size_t *y)
{
    const double p = calib__conf(ds, i);
    const int c = ds->correct[i] != 0;
    if (p == 0.0 || p == 1.0) {
        *len = 1, *y = 0, w[0] = 0.0;
        pad(w, 1);
        return (p == 1.0) == c ? CALIB__ROW_CONST : CALIB__ROW_INFINITE;
    }
    w[0] = log(p) - log1p(-p);
    w[1] = 0.0;
    return compact(w, 2, c ? 0 : 1, fmax(w[0], 0.0), len, y);
}

/* The scores of distribution row i as doubles into w[0..n). */
static void load_scores(const calib_dataset *ds, size_t b, size_t n,
                        double *w)
{
    if (ds->kind == CALIB_LOGITS && ds->dtype == CALIB_F32) {
        const float *s = (const float *)ds->scores + b;
        for (size_t k = 0; k < n; k++)
            w[k] = s[k];
    } else if (ds->kind == CALIB_LOGITS) {
        memcpy(w, (const double *)ds->scores + b, n * sizeof *w);
    } else {
        for (size_t k = 0; k < n; k++) {
            const double s = calib__score(ds, b + k);
            w[k] = s > 0.0 ? log(s > 1.0 ? 1.0 : s) : -INFINITY;
        }
    }
}

/* Largest and smallest of w[0..n), n >= 1 (exact in any order). */
VECTOR_CLONES
static void min_max(const double *w, size_t n, double *lo, double *hi)
{
    v4d mx = splat(w[0]), mn = mx;
    size_t k = 0;
    for (; k + 4 <= n; k += 4) {
        const v4d v = load4(w + k);
        mx = select4((v4i)(v > mx), v, mx);
        mn = select4((v4i)(v < mn), v, mn);
    }
    double h = w[0], l = w[0];
    for (int j = 0; j < 4; j++)
        h = mx[j] > h ? mx[j] : h, l = mn[j] < l ? mn[j] : l;
    for (; k < n; k++)
        h = w[k] > h ? w[k] : h, l = w[k] < l ? w[k] : l;
    *lo = l, *hi = h;
}

calib__row_state calib__ts_load_row(const calib_dataset *ds, size_t i,
                                    double *w, size_t *len, size_t *y)
{
    if (ds->kind == CALIB_TOPLABEL)
        return load_top(ds, i, w, len, y);
    const size_t n = calib__row_len(ds, i);
    const size_t lab = (size_t)ds->labels[i];
    double zmin, zmax;
    load_scores(ds, calib__row_begin(ds, i), n, w);
    min_max(w, n, &zmin, &zmax);
    if (!(zmin - zmax >= -CALIB__TS_W_DROP))
        return compact(w, n, lab, zmax, len, y);
    for (size_t k = 0; k < n; k++)
        w[k] -= zmax;
    pad(w, n);
    *len = n, *y = lab;
    return zmin == zmax ? CALIB__ROW_CONST : CALIB__ROW_FIT;
}

/* ------------------------------------------------------------------ */
/* exp and moments                                                     */
/* ------------------------------------------------------------------ */

VECTOR_CLONES
double calib__ts_row_exp(const double *w, size_t len, double beta, double *e)
{
    v4d s = splat(0.0);
    for (size_t k = 0; k < len; k += 4) {
        v4d ek = exp_nonpos(load4(w + k) * splat(beta));
        if (k + 4 > len)
            ek = first_lanes(ek, len - k);
        store4(e + k, ek);
        s += ek;
    }
    return hsum(s);
}

/* f' = sum_k q_k (w_k - w_y) (never E_q[w] - w_y, which cancels to 0 when
 * q is sure of the label), then the central moments of w under q about
 * m = E_q[w], from e kept in cache, so no cancellation: f'' = c2,
 * f''' = c3, f'''' = kappa_4 = c4 - 3 c2^2. */
VECTOR_CLONES
void calib__ts_row_moments(const double *w, size_t len, size_t y, double beta,
                           double *e, double out[5])
{
    const v4d wy = splat(w[y]);
    v4d s = splat(0.0), a = s, b = s, c2 = s, c3 = s, c4 = s;
    for (size_t k = 0; k < len; k += 4) {
        const v4d v = load4(w + k);
        v4d ek = exp_nonpos(v * splat(beta));
        if (k + 4 > len)
            ek = first_lanes(ek, len - k);
        store4(e + k, ek);
        s += ek;
        a += ek * (v - wy);
        b += ek * v;
    }
    const double t0 = hsum(s), inv = 1.0 / t0;
    const v4d m = splat(hsum(b) * inv);
    for (size_t k = 0; k < len; k += 4) {
        const v4d d = load4(w + k) - m, t = load4(e + k) * d * d;
        c2 += t;
        c3 += t * d;
        c4 += t * d * d;
    }
    const double v2 = hsum(c2) * inv;
    out[0] = t0;
    out[1] = hsum(a) * inv;
    out[2] = v2;
    out[3] = hsum(c3) * inv;
    out[4] = hsum(c4) * inv - 3.0 * v2 * v2;
}
