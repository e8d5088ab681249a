/* tscale_kernel.c — the per-row kernels of temperature scaling in
 * double: a row's logits loaded and shifted, exp of them, and the moments
 * of the scores under softmax(beta z).
 *
 * A fit spends almost all its time in these kernels and their float32
 * twins (tscale_kernel32.c), in exp, so the loops over a row run on four
 * doubles at a time (GCC vector extensions, which GCC and Clang lower to
 * AVX2 or SSE2) with the branch-free exp of tscale_simd.h.  Every build
 * of a kernel, the x86-64-v3 clone and the portable one alike, gives the
 * same bits, and a row's values never depend on which thread computes
 * them.
 * Float32 logits are read in place (calib__zrow), and the double kernel
 * converts and shifts them as it goes, to the very doubles
 * calib__ts_load_row makes.
 */
#include "tscale_simd.h"

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
        v4d ek = exp_nonpos(load4(w + k) * splat(beta), 1);
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

/* The sums of moments() over one group: e, e (w - w_y) and, unless
 * `high` (a constant: its central loop takes the rest), e w^j for
 * j = 1..4, from the shifted scores v and their exps ek. */
INLINE void accumulate(v4d v, v4d ek, v4d wy, v4d acc[6], int high)
{
    acc[0] += ek;
    acc[1] = fma4(ek, v - wy, acc[1]);
    if (!high) {
        const v4d e1 = ek * v, e2 = e1 * v, e3 = e2 * v;
        acc[2] += e1;
        acc[3] += e2;
        acc[4] += e3;
        acc[5] += e3 * v;
    }
}

/* The shape's sums over one group of a row (row_sum's sum_step). */
INLINE void shape_step(v4d v, v4d *ws, v4i *count)
{
    *ws += v;
    *count -= (v4i)(v == splat(0.0));
}

/* With `high`, a row's second loop: sum e (w - m)^j for j = 2..8 into
 * acc[0..6] (lane by lane, not yet added across lanes), m the mean of w
 * under q, from f' = sum e (w - w_y) / sum e (first_loop's sums), and the
 * exps that the first loop kept in e[] (padding lanes 0).  A loop of its
 * own: its seven sums and the first loop's would not fit the sixteen
 * vector registers, and a sum spilled carries its chain through memory.
 * About the mean, so without the cancellation of raw moments.  The powers
 * come from a tree of products (no chain longer than four) and half the
 * sums are fused multiply-adds, which balances the loop's work between
 * the multiplying and the adding pipes. */
INLINE void central_acc(const double *w, const calib__zrow *r, int from_z,
                        size_t len, double wy, const double sums[6],
                        const double *e, v4d acc[7])
{
    const size_t full = len & ~(size_t)7;
    const float *z = from_z ? r->z : NULL, *tail = from_z ? r->tail : NULL;
    const v4d zmax = splat(from_z ? r->zmax : 0.0);
    const v4d mean = splat(wy + sums[1] / sums[0]);
    for (int j = 0; j < 7; j++)
        acc[j] = splat(0.0);
    for (size_t k = 0; k < len; k += 4) {
        const v4d d = load_w(ROW_AT(k), from_z, zmax) - mean;
        const v4d d2 = d * d, d4 = d2 * d2, t2 = load4(e + k) * d2;
        const v4d t4 = t2 * d2, t6 = t2 * d4;
        acc[0] += t2;
        acc[1] = fma4(t2, d, acc[1]);
        acc[2] += t4;
        acc[3] = fma4(t4, d, acc[3]);
        acc[4] += t6;
        acc[5] = fma4(t6, d, acc[5]);
        acc[6] = fma4(t4, d4, acc[6]);
    }
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
 * not go through these sums and are as exact as before.
 *
 * With `high` (a constant), the first loop keeps the exps in e[], sums
 * only e and e (w - w_y), which give the mean m = w_y + f', and finds the
 * row's shape sums; a second loop (central_acc) sums e (w - m)^j for
 * j = 2..8, and out[2..8] get kappa_2 .. kappa_8 from them
 * (from_central), as the solver's series step needs them: without the
 * cancellation above.  first_loop and central_acc are the two loops,
 * apart so that calib__ts_zrows_high can run one row's first loop before
 * the previous row's second. */

/* `count` groups of a row from k (a block): their scores loaded, their
 * exps side by side (exp_nonpos_groups), then their sums in order, as one
 * group at a time would add them.  `whole` (a constant): every group lies
 * in z[0..full), else a group may reach the tail copy or past len (its
 * lanes there get e = 0). */
INLINE void first_block(const double *w, const calib__zrow *r, int from_z,
                        size_t len, size_t k, int count, int whole, v4d zmax,
                        v4d bt, v4d wy, int clamp, double *e, v4d acc[6],
                        int high, v4d *ws, v4i *at_max)
{
    const size_t full = len & ~(size_t)7;
    const float *z = from_z ? r->z : NULL, *tail = from_z ? r->tail : NULL;
    v4d v[4], ek[4];
    FOR_GROUPS(g, count) {
        const size_t at = k + 4 * (size_t)g;
        v[g] = load_w(whole ? (from_z ? (const void *)(z + at)
                                      : (const void *)(w + at))
                            : ROW_AT(at),
                      from_z, zmax);
        ek[g] = v[g] * bt;
    }
    exp_nonpos_groups(ek, count, clamp);
    FOR_GROUPS(g, count) {
        const size_t at = k + 4 * (size_t)g;
        if (!whole && at + 4 > len)
            ek[g] = first_lanes(ek[g], len - at);
        if (high) {
            store4(e + at, ek[g]);
            shape_step(v[g], ws, at_max);
        }
        accumulate(v[g], ek[g], wy, acc, high);
    }
}

INLINE void first_loop(const double *w, const calib__zrow *r, int from_z,
                       size_t len, size_t y, double beta, int clamp,
                       double *e, double sums[6], int high, double *sum,
                       size_t *at_max)
{
    const size_t full = len & ~(size_t)7;
    const double top = from_z ? r->zmax : 0.0;
    const v4d zmax = splat(top), bt = splat(beta);
    const v4d wy = splat(from_z ? (double)r->z[y] - top : w[y]);
    v4d acc[6], ws = splat(0.0);
    v4i count = {0, 0, 0, 0};
    for (int j = 0; j < 6; j++)
        acc[j] = splat(0.0);
    size_t k = 0;
    for (; k + 16 <= full; k += 16)
        first_block(w, r, from_z, len, k, 4, 1, zmax, bt, wy, clamp, e, acc,
                    high, &ws, &count);
    /* the last groups, 1 to 4 of them, as one block of that many */
#define LAST_BLOCK(n)                                                       \
    case n:                                                                 \
        first_block(w, r, from_z, len, k, n, 0, zmax, bt, wy, clamp, e, acc, \
                    high, &ws, &count);                                     \
        break
    switch ((len - k + 3) / 4) {
        LAST_BLOCK(4);
        LAST_BLOCK(3);
        LAST_BLOCK(2);
        LAST_BLOCK(1);
    default:
        break;
    }
#undef LAST_BLOCK
    for (int j = 0; j < (high ? 2 : 6); j++)
        sums[j] = hsum(acc[j]);
    if (high) {
        /* row_sum's, the same bits: the lanes added in the same order */
        const size_t padded = (len + 3) & ~(size_t)3;
        *sum = hsum(ws);
        *at_max = (size_t)(count[0] + count[1] + count[2] + count[3]) -
                  (padded - len);
    }
}

/* central_acc and the kappas from it into out[] (from_central). */
INLINE void central_finish(const double *w, const calib__zrow *r, int from_z,
                           size_t len, double wy, const double sums[6],
                           const double *e, double out[CALIB__TS_MOM])
{
    v4d acc[7];
    double c[7];
    central_acc(w, r, from_z, len, wy, sums, e, acc);
    for (int j = 0; j < 7; j++)
        c[j] = hsum(acc[j]);
    from_central(sums, c, out);
}

INLINE void moments(const double *w, const calib__zrow *r, int from_z,
                    size_t len, size_t y, double beta, int clamp,
                    double *e, double out[CALIB__TS_MOM], int high,
                    double *sum, size_t *at_max)
{
    double sums[6];
    first_loop(w, r, from_z, len, y, beta, clamp, e, sums, high, sum, at_max);
    if (high)
        central_finish(w, r, from_z, len,
                       from_z ? (double)r->z[y] - r->zmax : w[y], sums, e, out);
    else
        from_raw(sums, out);
}

VECTOR_CLONES
void calib__ts_row_moments(const double *w, size_t len, size_t y, double beta,
                           double *e, double out[CALIB__TS_MOM], double *sum,
                           size_t *at_max)
{
    if (sum)
        moments(w, NULL, 0, len, y, beta, 1, e, out, 1, sum, at_max);
    else
        moments(w, NULL, 0, len, y, beta, 1, e, out, 0, NULL, NULL);
}

VECTOR_CLONES
void calib__ts_zrow_moments(const calib__zrow *r, size_t y, double beta,
                            double *e, double out[CALIB__TS_MOM])
{
    /* every beta w >= -708 when the smallest one is (the same rounded
     * operations, which are monotonic; stored, so that no wider
     * evaluation can differ from the loop's): no clamp then */
    const double wmin = (double)r->zmin - r->zmax, xmin = wmin * beta;
    if (xmin >= -708.0)
        moments(NULL, r, 1, r->len, y, beta, 0, e, out, 0, NULL, NULL);
    else
        moments(NULL, r, 1, r->len, y, beta, 1, e, out, 0, NULL, NULL);
}

/* Four rows' kappas at once (central_finish's, the same bits): each
 * row's central sums still across lanes in acc[r][], its first loop's sums
 * in s[r][]; rows past n repeat row 0 and are not stored. */
INLINE void finish4(v4d acc[4][7], double s[4][2], calib__zhigh **row,
                    int n)
{
    const int a = 0, b = n > 1, c = n > 2 ? 2 : 0, d = n > 3 ? 3 : 0;
    v4d cm[7], out[CALIB__TS_MOM];
    for (int j = 0; j < 7; j++)
        cm[j] = hsum4(acc[a][j], acc[b][j], acc[c][j], acc[d][j]);
    const v4d s0 = {s[a][0], s[b][0], s[c][0], s[d][0]};
    const v4d s1 = {s[a][1], s[b][1], s[c][1], s[d][1]};
    from_central4(s0, s1, cm, out);
    for (int r = 0; r < n; r++)
        for (int j = 0; j < CALIB__TS_MOM; j++)
            row[r]->m[j] = out[j][r];
}

/* Rows [r0, r1) as calib__ts_zrow_moments with `high` would give them:
 * each row's first loop runs before the previous row's second, whose
 * start waits on nothing then (its mean came a row ago), so that the
 * end of one loop and the start of the next overlap in the pipeline; the
 * rows' kappas come four at a time (finish4).  e holds two rows' exps, e
 * and e + stride. */
VECTOR_CLONES
void calib__ts_zrows_high(const calib_dataset *ds, size_t r0, size_t r1,
                          double beta, double *e, size_t stride,
                          calib__zhigh *out)
{
    const size_t total = ds->offsets ? ds->offsets[ds->n] : ds->n * ds->k;
    calib__zrow row[2];
    double sums[2][6];
    calib__zhigh *wait = NULL; /* the row whose second loop is due */
    int cur = 0;
    v4d acc[4][7];
    double s[4][2];
    calib__zhigh *done[4];
    int n_done = 0;
    for (size_t i = r0; i <= r1; i++) {
        calib__zhigh *o = i < r1 ? &out[i - r0] : NULL;
        if (o) {
            const size_t b = calib__row_begin(ds, i), y = (size_t)ds->labels[i];
            calib__zrow *r = &row[cur];
            zrow_scan(r, (const float *)ds->scores + b, calib__row_len(ds, i),
                      total - b);
            o->len = r->len, o->zmax = r->zmax, o->zmin = r->zmin;
            o->st = r->zmin == r->zmax ? CALIB__ROW_CONST : CALIB__ROW_FIT;
            if (o->st != CALIB__ROW_FIT)
                continue;
            o->wy = (double)r->z[y] - r->zmax;
            double *ec = e + (size_t)cur * stride;
            const double xmin = ((double)r->zmin - r->zmax) * beta;
            if (xmin >= -708.0) /* as calib__ts_zrow_moments decides */
                first_loop(NULL, r, 1, r->len, y, beta, 0, ec, sums[cur], 1,
                           &o->sum, &o->at_max);
            else
                first_loop(NULL, r, 1, r->len, y, beta, 1, ec, sums[cur], 1,
                           &o->sum, &o->at_max);
        }
        if (wait) {
            central_acc(NULL, &row[!cur], 1, wait->len, wait->wy, sums[!cur],
                        e + (size_t)!cur * stride, acc[n_done]);
            s[n_done][0] = sums[!cur][0], s[n_done][1] = sums[!cur][1];
            done[n_done++] = wait;
        }
        if (n_done == 4 || (!o && n_done)) {
            finish4(acc, s, done, n_done);
            n_done = 0;
        }
        wait = o, cur = !cur;
    }
}

/* sum_k w_k and the count of w_k = 0 (the row's maximum), over a row as
 * moments() reads it; the padding adds 0 to the sum and is not counted. */
INLINE void sum_step(const void *src, int from_z, v4d zmax, v4d *s, v4i *c)
{
    shape_step(load_w(src, from_z, zmax), s, c);
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
