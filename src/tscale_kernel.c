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
 *
 * The solver's approximate passes use a float32 twin on eight lanes: the
 * same reduction, e^r by a degree-5 polynomial (2.1e-7 relative), moments
 * summed in float within a row.  Float32 logits are read in place (no
 * converted or shifted copy; only a row's last partial group of 8 is
 * copied, padded with the maximum), and the double kernel converts and
 * shifts them as it goes, to the very doubles calib__ts_load_row makes.
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
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#endif

typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4i __attribute__((vector_size(32)));
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

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

/* The lanes summed in double in one fixed order: l and l + 4 first. */
INLINE double hsum8(v8f v)
{
    const double a = (double)v[0] + v[4], b = (double)v[1] + v[5];
    const double c = (double)v[2] + v[6], d = (double)v[3] + v[7];
    return (a + b) + (c + d);
}

/* exp(x) for x <= 0 in float32, within 2.1e-7 relative; 0 below -87,
 * where the result would be subnormal.  The reduction of exp_nonpos;
 * e^r = 1 + r + r^2 q(r), q of degree 3 fitted for the least maximum
 * relative error (1.05e-7 on |r| <= ln2/2, before rounding). */
INLINE v8f exp32_nonpos(v8f x)
{
    const v8f shift = splat8(0x1.8p23f);
    const v8i keep = (v8i)(x >= splat8(-87.0f));
    x = select8(keep, x, splat8(-87.0f));
    const v8f t = x * splat8(0x1.715476p0f) + shift;
    const v8f n = t - shift;
    const v8f r = (x - n * splat8(0x1.62e4p-1f)) - n * splat8(0x1.7f7d1cp-20f);
    const int32_t bias = 0x4B400000 - 127;
    const v8i sbits = ((v8i)t - (v8i){bias, bias, bias, bias, bias, bias, bias, bias}) << 23;
    const v8f r2 = r * r;
    const v8f q = (splat8(0x1.fffdfcp-2f) + r * splat8(0x1.5557aep-3f)) +
                  r2 * (splat8(0x1.5729f0p-5f) + r * splat8(0x1.106284p-7f));
    const v8f p = (splat8(1.0f) + r) + r2 * q;
    return (v8f)((v8i)(p * (v8f)sbits) & keep);
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

/* Four lanes of a shifted row at src: w as loaded (from_z = 0), or
 * float32 scores shifted here by -zmax, which gives the very doubles of
 * calib__ts_load_row. */
INLINE v4d load_w(const void *src, int from_z, v4d zmax)
{
    if (!from_z)
        return load4(src);
    const float *f = src;
    return (v4d){f[0], f[1], f[2], f[3]} - zmax;
}

/* Where group k of a row starts: in w, or in z with its last partial group
 * of 8 from the copy in r->tail (full = len rounded down to 8). */
#define ROW_AT(k) (from_z ? ((k) < full ? (const void *)(z + (k)) \
                                       : (const void *)(tail + (k) - full)) \
                          : (const void *)(w + (k)))

/* One group of moments(): e = exp(beta w) (lanes past len zeroed), and
 * the sums of e, e (w - w_y) and e w^j, j = 1..4. */
INLINE void moments_step(const void *src, int from_z, v4d zmax, v4d bt,
                         v4d wy, size_t k, size_t len, v4d acc[6])
{
    const v4d v = load_w(src, from_z, zmax);
    v4d ek = exp_nonpos(v * bt);
    if (k + 4 > len)
        ek = first_lanes(ek, len - k);
    const v4d e1 = ek * v, e2 = e1 * v, e3 = e2 * v;
    acc[0] += ek;
    acc[1] += ek * (v - wy);
    acc[2] += e1;
    acc[3] += e2;
    acc[4] += e3;
    acc[5] += e3 * v;
}

/* out[] from the sums of e, e (w - w_y), e w, e w^2, e w^3, e w^4 (the
 * formulas and their error below). */
static inline void from_raw(const double s[6], double out[5])
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

/* f' = sum_k q_k (w_k - w_y) (never E_q[w] - w_y, which cancels when the
 * label is not the maximum but carries the mean), then the central moments
 * of w under q from the raw ones about the row's maximum (w <= 0), in the
 * same loop: c2 = M2 - m^2, c3 = M3 - 3 m M2 + 2 m^3,
 * c4 = M4 - 4 m M3 + 6 m^2 M2 - 3 m^4, kappa_4 = c4 - 3 c2^2.
 *
 * The cancellation is bounded because the reference is the maximum: its
 * probability q_0 is the largest, so q_0 >= 1/len, and
 * c2 = E_q[(w - m)^2] >= q_0 m^2, i.e. m^2 <= len c2.  Hence
 * M2 = c2 + m^2 <= (len + 1) c2: the subtraction magnifies the rounding
 * error of the sums (relative, at most about len eps / 4 for lanes of
 * len / 4 terms) by len + 1 at most, so c2 is within len^2 eps / 4 of
 * itself relative: 3e-5 for len = 10^6 in the very worst case, 3e-13 for
 * len = 100, where the Newton step needs f'' to a few digits only.  c3 and c4 are each within
 * eps 2^j (1 + sqrt(len))^j of E_q|w - m|^j (|m| <= sqrt(len c2) and
 * Lyapunov's inequality); they only enter Halley's correction, multiplied
 * by f' (about 0 where the double passes run), and the step's error bound,
 * where a relative 1e-3 (j = 4, len = 10^6) is immaterial.  f and f' do
 * not go through these sums and are as exact as before. */
INLINE void moments(const double *w, const calib__zrow *r, int from_z,
                    size_t len, size_t y, double beta, double out[5])
{
    const size_t full = len & ~(size_t)7;
    const float *z = from_z ? r->z : NULL, *tail = from_z ? r->tail : NULL;
    const double top = from_z ? r->zmax : 0.0;
    const v4d zmax = splat(top), bt = splat(beta);
    const v4d wy = splat(from_z ? (double)z[y] - top : w[y]);
    v4d acc[6];
    for (int j = 0; j < 6; j++)
        acc[j] = splat(0.0);
    size_t k = 0;
    for (; k < full; k += 4)
        moments_step(from_z ? (const void *)(z + k) : (const void *)(w + k),
                     from_z, zmax, bt, wy, k, full, acc);
    for (; k < len; k += 4)
        moments_step(ROW_AT(k), from_z, zmax, bt, wy, k, len, acc);
    double sums[6];
    for (int j = 0; j < 6; j++)
        sums[j] = hsum(acc[j]);
    from_raw(sums, out);
}

VECTOR_CLONES
void calib__ts_row_moments(const double *w, size_t len, size_t y, double beta,
                           double *e, double out[5])
{
    (void)e;
    moments(w, NULL, 0, len, y, beta, out);
}

VECTOR_CLONES
void calib__ts_zrow_moments(const calib__zrow *r, size_t y, double beta,
                            double *e, double out[5])
{
    (void)e;
    moments(NULL, r, 1, r->len, y, beta, out);
}

/* The float32 moments: the same steps on 8 lanes, w = z - zmax rounded. */
INLINE void moments32_step(const float *src, v8f top, v8f bt, v8f wy,
                           size_t k, size_t len, float *e, v8f acc[3])
{
    const v8f v = load8(src) - top;
    v8f ek = exp32_nonpos(v * bt);
    if (k + 8 > len)
        ek = first_lanes8(ek, len - k);
    store8(e + k, ek);
    acc[0] += ek;
    acc[1] += ek * (v - wy);
    acc[2] += ek * v;
}

INLINE void central32_step(const float *src, v8f top, v8f m, size_t k,
                           const float *e, v8f acc[3])
{
    const v8f d = (load8(src) - top) - m, t = load8(e + k) * d * d;
    acc[0] += t;
    acc[1] += t * d;
    acc[2] += t * d * d;
}

/* One group of raw32(): moments_step on 8 floats. */
INLINE void raw32_step(const float *src, v8f top, v8f bt, v8f wy, size_t k,
                       size_t len, v8f acc[6])
{
    const v8f v = load8(src) - top;
    v8f ek = exp32_nonpos(v * bt);
    if (k + 8 > len)
        ek = first_lanes8(ek, len - k);
    const v8f e1 = ek * v, e2 = e1 * v, e3 = e2 * v;
    acc[0] += ek;
    acc[1] += ek * (v - wy);
    acc[2] += e1;
    acc[3] += e2;
    acc[4] += e3;
    acc[5] += e3 * v;
}

/* The float32 moments of a row of at most RAW32_MAX scores in one loop,
 * from the raw moments about the maximum as moments() takes them.  By
 * moments()'s bound in float (lanes of len / 8 terms), c2 is then within
 * len^2 2^-24 / 8 relative, 5e-4 for len = 256, in the very worst case
 * (an outlying maximum over otherwise equal scores; typically the factor
 * M2 / c2 is a few units, not len).  The solver's last float32 step is at
 * most 1e-2 in u, so such an f'' moves where it ends by 5e-6 at most,
 * within F32_TOL (temperature.c); the float32 passes only steer the
 * double ones.  Longer rows take two loops, about the mean. */
#define RAW32_MAX 256
INLINE void raw32(const calib__zrow *r, size_t y, double beta,
                         double out[5])
{
    const size_t len = r->len, full = len & ~(size_t)7;
    const float *z = r->z;
    const v8f top = splat8(r->zmax), bt = splat8((float)beta);
    const v8f wy = splat8(z[y] - r->zmax);
    v8f acc[6];
    double sums[6];
    for (int j = 0; j < 6; j++)
        acc[j] = splat8(0.0f);
    for (size_t k = 0; k < full; k += 8)
        raw32_step(z + k, top, bt, wy, k, full, acc);
    if (full < len)
        raw32_step(r->tail, top, bt, wy, full, len, acc);
    for (int j = 0; j < 6; j++)
        sums[j] = hsum8(acc[j]);
    from_raw(sums, out);
}

/* The same moments in float32 (lanes summed in double). */
VECTOR_CLONES
void calib__ts_zrow_moments32(const calib__zrow *r, size_t y, double beta,
                              float *e, double out[5])
{
    if (r->len <= RAW32_MAX) {
        raw32(r, y, beta, out);
        return;
    }
    const size_t len = r->len, full = len & ~(size_t)7;
    const float *z = r->z, *tail = r->tail;
    const v8f top = splat8(r->zmax), bt = splat8((float)beta);
    const v8f wy = splat8(z[y] - r->zmax);
    v8f acc[3] = {splat8(0.0f), splat8(0.0f), splat8(0.0f)};
    v8f cm[3] = {splat8(0.0f), splat8(0.0f), splat8(0.0f)};
    for (size_t k = 0; k < full; k += 8)
        moments32_step(z + k, top, bt, wy, k, full, e, acc);
    if (full < len)
        moments32_step(tail, top, bt, wy, full, len, e, acc);
    const double t0 = hsum8(acc[0]), inv = 1.0 / t0;
    const v8f m = splat8((float)(hsum8(acc[2]) * inv));
    for (size_t k = 0; k < full; k += 8)
        central32_step(z + k, top, m, k, e, cm);
    if (full < len)
        central32_step(tail, top, m, full, e, cm);
    const double v2 = hsum8(cm[0]) * inv;
    out[0] = t0;
    out[1] = hsum8(acc[1]) * inv;
    out[2] = v2;
    out[3] = hsum8(cm[1]) * inv;
    out[4] = hsum8(cm[2]) * inv - 3.0 * v2 * v2;
}

/* ------------------------------------------------------------------ */
/* Rows of floats, read in place                                       */
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

/* The maximum and minimum of z[0..len), and the last partial group of 8
 * padded with the maximum; z[len ..] up to z[avail) may be read (and
 * ignored), so that most rows need no scalar copy. */
VECTOR_CLONES
void calib__ts_zrow_init(calib__zrow *r, const float *z, size_t len,
                         size_t avail)
{
    const size_t full = len & ~(size_t)7;
    v8f mx = splat8(z[0]), mn = mx, t = mx;
    for (size_t k = 0; k < full; k += 8) {
        const v8f v = load8(z + k);
        mx = max8(mx, v), mn = min8(mn, v);
    }
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

/* calib__ts_zrow_init for a row whose maximum and minimum are known: only
 * the last partial group is read. */
VECTOR_CLONES
void calib__ts_zrow_known(calib__zrow *r, const float *z, size_t len,
                          size_t avail, float zmax, float zmin)
{
    const size_t full = len & ~(size_t)7;
    const int32_t rem = (int32_t)(len - full);
    const v8i lane = {0, 1, 2, 3, 4, 5, 6, 7};
    const v8i in_row = lane < (v8i){rem, rem, rem, rem, rem, rem, rem, rem};
    const v8f mx = splat8(zmax);
    v8f t = mx;
    if (full + 8 <= avail) {
        t = load8(z + full);
    } else {
        store8(r->tail, t);
        memcpy(r->tail, z + full, (size_t)rem * sizeof *z);
        t = load8(r->tail);
    }
    store8(r->tail, select8(in_row, t, mx));
    r->z = z, r->len = len, r->zmax = zmax, r->zmin = zmin;
}

calib__row_state calib__ts_load_z32(const calib_dataset *ds, size_t i,
                                    calib__zrow *r)
{
    const size_t b = calib__row_begin(ds, i);
    const size_t total = ds->offsets ? ds->offsets[ds->n] : ds->n * ds->k;
    calib__ts_zrow_init(r, (const float *)ds->scores + b, calib__row_len(ds, i),
                        total - b);
    return r->zmin == r->zmax ? CALIB__ROW_CONST : CALIB__ROW_FIT;
}

/* sum_k w_k and the count of w_k = 0 (the row's maximum), over a row as
 * moments() reads it; the padding adds 0 to the sum and is not counted. */
INLINE void sum_step(const void *src, int from_z, v4d zmax, v4d *s, v4i *c)
{
    const v4d v = load_w(src, from_z, zmax);
    *s += v;
    *c -= (v4i)(v == splat(0.0));
}

INLINE double row_sum(const double *w, const calib__zrow *r, int from_z,
                      size_t len, size_t *at_max)
{
    const size_t full = len & ~(size_t)7;
    const float *z = from_z ? r->z : NULL, *tail = from_z ? r->tail : NULL;
    const v4d zmax = splat(from_z ? r->zmax : 0.0);
    v4d s = splat(0.0);
    v4i c = {0, 0, 0, 0};
    size_t k = 0;
    for (; k < full; k += 4)
        sum_step(from_z ? (const void *)(z + k) : (const void *)(w + k),
                 from_z, zmax, &s, &c);
    for (; k < len; k += 4)
        sum_step(ROW_AT(k), from_z, zmax, &s, &c);
    *at_max = (size_t)(c[0] + c[1] + c[2] + c[3]) - (k - len);
    return hsum(s);
}

VECTOR_CLONES
double calib__ts_row_sum(const double *w, size_t len, size_t *at_max)
{
    return row_sum(w, NULL, 0, len, at_max);
}

VECTOR_CLONES
double calib__ts_zrow_sum(const calib__zrow *r, size_t *at_max)
{
    return row_sum(NULL, r, 1, r->len, at_max);
}
