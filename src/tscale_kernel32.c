/* tscale_kernel32.c — the float32 kernels of temperature scaling: the
 * solver's approximate passes (temperature.c) run on eight float lanes,
 * with exp good to 2.1e-7 and moments summed in float within a row, and
 * rows of float32 logits are read in place: no converted or shifted copy,
 * only a row's last partial group of 8 is copied, padded with the maximum
 * (calib__zrow).  The helpers and exp are in tscale_simd.h.
 */
#include "tscale_simd.h"

/* The float32 moments: the same steps on 8 lanes, w = z - zmax rounded
 * (`valid`: as moments_step's, 8 for a whole group). */
INLINE void moments32_step(const float *src, v8f top, v8f bt, v8f wy,
                           size_t k, size_t valid, float *e, v8f acc[3])
{
    const v8f v = load8(src) - top;
    v8f ek = exp32_nonpos(v * bt, 1);
    if (valid < 8)
        ek = first_lanes8(ek, valid);
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
INLINE void raw32_step(const float *src, v8f top, v8f bt, v8f wy,
                       size_t valid, int clamp, v8f acc[6])
{
    const v8f v = load8(src) - top;
    v8f ek = exp32_nonpos(v * bt, clamp);
    if (valid < 8)
        ek = first_lanes8(ek, valid);
    const v8f e1 = ek * v, e2 = e1 * v, e3 = e2 * v;
    acc[0] += ek;
    acc[1] += ek * (v - wy);
    acc[2] += e1;
    acc[3] += e2;
    acc[4] += e3;
    acc[5] += e3 * v;
}

/* The shape's sums over one group of 8 (calib__ts_zrow_sum's, in the same
 * loop): the lanes of (double)z - zmax added in the order zrow_sum adds
 * them (z[k .. k+3], then z[k+4 .. k+7]; a padding lane adds an exact 0),
 * and per lane the count of z = zmax, padding included. */
INLINE void sum8_step(const float *src, v4d top, v8f top8, v4d *s, v8i *c)
{
    const v8f z = load8(src);
    v4f lo, hi;
    memcpy(&lo, &z, sizeof lo);
    memcpy(&hi, (const float *)&z + 4, sizeof hi);
    *s += (v4d){lo[0], lo[1], lo[2], lo[3]} - top;
    *s += (v4d){hi[0], hi[1], hi[2], hi[3]} - top;
    *c -= (v8i)(z == top8);
}

/* *sum and *at_max from sum8_step's lanes over `groups` groups of 8. */
INLINE void sum8_end(v4d s, v8i c, size_t groups, size_t len, double *sum,
                     size_t *at_max)
{
    int64_t n = 0;
    for (int j = 0; j < 8; j++)
        n += c[j];
    *sum = hsum(s);
    *at_max = (size_t)n - (8 * groups - len);
}

/* The float32 moments of a row of at most RAW32_MAX scores in one loop,
 * from the raw moments about the maximum as moments() (tscale_kernel.c)
 * takes them.  By its bound in float (lanes of len / 8 terms), c2 is within
 * len^2 2^-24 / 8 relative, 5e-4 for len = 256, in the very worst case
 * (an outlying maximum over otherwise equal scores; typically the factor
 * M2 / c2 is a few units, not len).  The solver's last float32 step is at
 * most 1e-2 in u, so such an f'' moves where it ends by 5e-6 at most,
 * within F32_TOL (temperature.c); the float32 passes only steer the
 * double ones.  Longer rows take two loops, about the mean. */
#define RAW32_MAX 256
INLINE void raw32(const calib__zrow *r, size_t y, double beta, int clamp,
                  double out[CALIB__TS_MOM], double *sum, size_t *at_max)
{
    const size_t len = r->len, full = len & ~(size_t)7;
    const float *z = r->z;
    const v8f top = splat8(r->zmax), bt = splat8((float)beta);
    const v8f wy = splat8(z[y] - r->zmax);
    const v4d top4 = splat(r->zmax);
    v8f acc[6];
    v4d s = splat(0.0);
    v8i c = {0, 0, 0, 0, 0, 0, 0, 0};
    double sums[6];
    for (int j = 0; j < 6; j++)
        acc[j] = splat8(0.0f);
    for (size_t k = 0; k < full; k += 8) {
        raw32_step(z + k, top, bt, wy, 8, clamp, acc);
        if (sum)
            sum8_step(z + k, top4, top, &s, &c);
    }
    if (full < len) {
        raw32_step(r->tail, top, bt, wy, len - full, clamp, acc);
        if (sum)
            sum8_step(r->tail, top4, top, &s, &c);
    }
    for (int j = 0; j < 6; j++)
        sums[j] = hsum8(acc[j]);
    from_raw(sums, out);
    if (sum)
        sum8_end(s, c, (len + 7) / 8, len, sum, at_max);
}

/* Rows longer than RAW32_MAX: the moments about the mean, in two loops. */
INLINE void central32(const calib__zrow *r, size_t y, double beta, float *e,
                      double out[CALIB__TS_MOM], double *sum, size_t *at_max)
{
    const size_t len = r->len, full = len & ~(size_t)7;
    const float *z = r->z, *tail = r->tail;
    const v8f top = splat8(r->zmax), bt = splat8((float)beta);
    const v8f wy = splat8(z[y] - r->zmax);
    const v4d top4 = splat(r->zmax);
    v8f acc[3] = {splat8(0.0f), splat8(0.0f), splat8(0.0f)};
    v8f cm[3] = {splat8(0.0f), splat8(0.0f), splat8(0.0f)};
    v4d s = splat(0.0);
    v8i c = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t k = 0; k < full; k += 8) {
        moments32_step(z + k, top, bt, wy, k, 8, e, acc);
        if (sum)
            sum8_step(z + k, top4, top, &s, &c);
    }
    if (full < len) {
        moments32_step(tail, top, bt, wy, full, len - full, e, acc);
        if (sum)
            sum8_step(tail, top4, top, &s, &c);
    }
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
    if (sum)
        sum8_end(s, c, (len + 7) / 8, len, sum, at_max);
}

/* The same moments in float32 (lanes summed in double).  Short rows take
 * raw32 expanded four ways, so that no loop tests what it does not need:
 * with or without the shape's sums (the first pass only), and without
 * exp's clamp when every beta w is above it (as in moments()). */
VECTOR_CLONES
void calib__ts_zrow_moments32(const calib__zrow *r, size_t y, double beta,
                              float *e, double out[CALIB__TS_MOM], double *sum,
                              size_t *at_max)
{
    const float wmin = r->zmin - r->zmax, xmin = wmin * (float)beta;
    const int clamp = !(xmin >= -87.0f);
    if (r->len > RAW32_MAX && sum)
        central32(r, y, beta, e, out, sum, at_max);
    else if (r->len > RAW32_MAX)
        central32(r, y, beta, e, out, NULL, NULL);
    else if (sum && clamp)
        raw32(r, y, beta, 1, out, sum, at_max);
    else if (sum)
        raw32(r, y, beta, 0, out, sum, at_max);
    else if (clamp)
        raw32(r, y, beta, 1, out, NULL, NULL);
    else
        raw32(r, y, beta, 0, out, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Rows of floats, read in place                                       */
/* ------------------------------------------------------------------ */

/* The maximum and minimum of z[0..len), and the last partial group of 8
 * padded with the maximum (zrow_scan, tscale_simd.h). */
VECTOR_CLONES
void calib__ts_zrow_init(calib__zrow *r, const float *z, size_t len,
                         size_t avail)
{
    zrow_scan(r, z, len, avail);
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
