/* smooth.c — smooth ECE and the smoothed reliability curve (Blasiok and
 * Nakkiran 2023, "Smooth ECE: Principled Reliability Diagrams via Kernel
 * Smoothing"; their reference implementation is the relplot package).
 *
 * With the reflected Gaussian kernel on [0,1] (the density of y + eta,
 * eta ~ N(0, s^2), folded back into [0,1] at 0 and 1)
 *     K_s(t, y) = sum_{k in Z} phi_s(t - y + 2k) + phi_s(t + y + 2k),
 * smECE_s = int_0^1 |(1/W) sum_i w_i K_s(t, p_i) (p_i - c_i)| dt, and the
 * reported smECE is smECE_s* at the fixed point s* = smECE(s*), found on
 * [2^-12, 1] by safeguarded regula falsi (smECE_s decreases as s grows).
 *
 * As relplot does, rows are first spread onto a grid t_j = j h, h = 2^-L,
 * by linear interpolation (a row at p gives (1 - f) of its value to the
 * node below and f to the node above), so the kernel sums run over nodes,
 * not rows; here the grid is fine enough for the bandwidth (h <= s/32,
 * L = 6 .. 17; rows are spread once at L = 17 and restricted down,
 * which is exact for linear spreading), the node sums are exact (so any thread count gives the
 * same bits, and integer weights the same as repeated rows), boundary
 * nodes count twice in the folded sum (a row at exactly 0 or 1 sees its
 * whole reflected kernel; relplot drops the mirrored half there), the
 * kernel is cut at 7 s (a tail below 3e-12), and the integral over t is
 * the trapezoid rule on the nodes.  The interpolation moves each row's
 * mass by at most h^2/4 in variance, a relative error of order
 * h^2 / (8 s^2) <= 1.3e-4 (tests/golden/gen_extra.py measures it against
 * the direct sums over rows).
 */
#include "extra.h"

#include <stdlib.h>
#include <string.h>

#define LEVEL_MIN 6
#define LEVEL_MAX 17
#define SIGMA_MIN 0x1p-12
#define PER_SIGMA 32.0     /* nodes per bandwidth, at least */
#define CUT 7.0            /* kernel support, in bandwidths */
#define ROOT_REL 1e-9      /* the search stops at this relative width */

enum { Q_RESIDUAL = 0, Q_WEIGHT = 1, Q_HIT = 2, Q_COUNT = 3 };

/* The level L(s): the coarsest grid with h <= s / 32. */
static int level_for(double s)
{
    int l = LEVEL_MIN;
    while (l < LEVEL_MAX && ldexp(1.0, -l) > s / PER_SIGMA)
        l++;
    return l;
}

/* ---- spreading rows onto the grid ----------------------------------- */

/* Each share is first rounded to a multiple of 2^-52 (|share| <= 1, so an
 * integer of at most 53 bits: an absolute 1e-16 per row, far below the
 * grid's own error).  Rows of weight 1 then add integers, exactly, in
 * 128 bits; weighted rows add w * share exactly into a superaccumulator.
 * Either way a node's sum is exact, so it depends neither on the thread
 * count nor on whether k equal rows come as k rows or as one of weight k. */
__extension__ typedef __int128 i128;
#define FX 52

typedef struct spread {
    const calib__top *t;
    int want;              /* want: bits 1 << Q_* */
    size_t g;              /* nodes: 2^level + 1 */
    i128 *fx[256];         /* per worker, Q_COUNT * g: rows of weight 1 */
    calib__xsum *acc[256]; /* per worker, Q_COUNT * g: weighted rows */
    int nomem;
} spread;

static int64_t share(double v)
{
    return (int64_t)lrint(v * 0x1p52); /* exact scaling, then nearest-even */
}

static void spread_range(void *vctx, size_t begin, size_t end, int worker)
{
    spread *sp = vctx;
    const calib__top *t = sp->t;
    const size_t cells = (size_t)__builtin_popcount((unsigned)sp->want) * sp->g;
    i128 *fx = NULL;
    calib__xsum *a = NULL;
    if (t->weights)
        a = sp->acc[worker] = calloc(cells, sizeof *a);
    else
        fx = sp->fx[worker] = calloc(cells, sizeof *fx);
    if (!a && !fx) {
        sp->nomem = 1;
        return;
    }
    const size_t top = sp->g - 2;
    const double scale = (double)(sp->g - 1);
    for (size_t i = begin; i < end; i++) {
        const double u = t->conf[i] * scale;
        size_t j = (size_t)u;
        j = j > top ? top : j;
        const double f = u - (double)j, c = t->correct[i];
        const double v[Q_COUNT] = {t->conf[i] - c, 1.0, c};
        for (int q = 0, slot = 0; q < Q_COUNT; q++) {
            if (!(sp->want & (1 << q)))
                continue;
            const int64_t lo = share((1.0 - f) * v[q]), hi = share(f * v[q]);
            const size_t at = (size_t)slot++ * sp->g + j;
            if (fx) {
                fx[at] += lo;
                fx[at + 1] += hi;
            } else {
                const double w = t->weights[i];
                calib__xsum_add_product(&a[at], w, (double)lo * 0x1p-52);
                calib__xsum_add_product(&a[at + 1], w, (double)hi * 0x1p-52);
            }
        }
    }
}

/* Adds x * 2^-FX to s exactly (pieces of 43 bits are doubles). */
static void xsum_add_fx(calib__xsum *s, i128 x)
{
    const int neg = x < 0;
    unsigned __int128 u = neg ? -(unsigned __int128)x : (unsigned __int128)x;
    for (int k = 0; k < 3; k++, u >>= 43) {
        const double piece = ldexp((double)(uint64_t)(u & ((1ull << 43) - 1)),
                                   43 * k - FX);
        calib__xsum_add(s, neg ? -piece : piece);
    }
}

/* The node sums of the quantity in `slot`, merged over the workers.
 * Rows of weight 1 give an integer multiple of 2^-FX, which the
 * conversion of the 128-bit integer rounds correctly (as the
 * superaccumulator would); weighted rows need the superaccumulator, but
 * a node no row reached is 0 without one. */
static void merge_nodes(const spread *sp, int used, int slot, double *out)
{
    int weighted = 0;
    for (int w = 0; w < used; w++)
        weighted |= sp->acc[w] != NULL;
    for (size_t j = 0; j < sp->g; j++) {
        const size_t at = (size_t)slot * sp->g + j;
        i128 total = 0;
        for (int w = 0; w < used; w++)
            if (sp->fx[w])
                total += sp->fx[w][at];
        if (!weighted) {
            out[j] = ldexp((double)total, -FX);
            continue;
        }
        calib__xsum s;
        calib__xsum_init(&s);
        int touched = total != 0;
        for (int w = 0; w < used; w++)
            if (sp->acc[w] && !calib__xsum_is_zero(&sp->acc[w][at])) {
                calib__xsum_merge(&s, &sp->acc[w][at]);
                touched = 1;
            }
        if (!touched) {
            out[j] = 0.0;
            continue;
        }
        xsum_add_fx(&s, total);
        out[j] = calib__xsum_round(&s);
    }
}

/* Node sums of the wanted quantities at `level` into out[q] (g doubles
 * each, malloc'd; NULL for the others). */
static int spread_rows(const calib__top *t, int level, int want, int threads,
                       double *out[Q_COUNT])
{
    spread sp;
    memset(&sp, 0, sizeof sp);
    sp.t = t;
    sp.want = want;
    sp.g = ((size_t)1 << level) + 1;
    const int cap = calib__threads(threads);
    const int used = calib__parallel_for(t->n, cap > 256 ? 256 : cap, 65536,
                                         spread_range, &sp);
    int rc = sp.nomem ? CALIB_ENOMEM : CALIB_OK;
    for (int q = 0, slot = 0; q < Q_COUNT; q++) {
        out[q] = NULL;
        if (rc != CALIB_OK || !(want & (1 << q)))
            continue;
        if (!(out[q] = malloc(sp.g * sizeof *out[q])))
            rc = CALIB_ENOMEM;
        else
            merge_nodes(&sp, used, slot++, out[q]);
    }
    for (int w = 0; w < used; w++) {
        free(sp.fx[w]);
        free(sp.acc[w]);
    }
    return rc;
}

/* Grid values one level coarser, in place: a coarse node takes its fine
 * node and half of each neighbour, which is exactly the linear spreading
 * of the same rows onto the coarse grid. */
static void restrict_grid(double *v, size_t g)
{
    const size_t gc = (g - 1) / 2 + 1;
    for (size_t i = 0; i < gc; i++) {
        double s = v[2 * i];
        if (i > 0)
            s += 0.5 * v[2 * i - 1];
        if (i + 1 < gc)
            s += 0.5 * v[2 * i + 1];
        v[i] = s;
    }
}

/* ---- the folded convolution ------------------------------------------ */

/* The grid values extended by reflection over [-r, g - 1 + r] into ext,
 * boundary nodes doubled (each is its own mirror image). */
static void fold(const double *v, size_t g, size_t r, double *ext)
{
    const long top = (long)g - 1, period = 2 * top;
    for (long m = -(long)r; m <= top + (long)r; m++) {
        long k = ((m % period) + period) % period;
        k = k > top ? period - k : k;
        ext[m + (long)r] = (k == 0 || k == top ? 2.0 : 1.0) * v[k];
    }
}

/* |sum_d ker[|d|] ext[j + r + d]| over |d| <= r, for every node j, with
 * the terms added in the order d = 0, 1, .., r, each d as
 * ker[d] (ext[j + r - d] + ext[j + r + d]).  Two ways give the same bits:
 * the dense one runs the sums of TILE neighbouring nodes side by side
 * (independent chains, which vectorise); the sparse one, for grids whose
 * nonzero nodes are few (small data: at most two nodes a row), visits
 * only the nonzero nodes of each window, nearest first, since a term whose
 * two values are 0 leaves the sum as it was (up to the sign of a zero sum,
 * which fabs drops) and x + 0 is x. */
#define TILE 256

typedef struct conv {
    const double *ext, *ker;
    size_t r;
    const size_t *nz;      /* the nonzero positions of ext, ascending */
    size_t nnz;            /* or SIZE_MAX: dense */
    double *out;           /* |sum| per node */
} conv;

static void conv_dense(const conv *c, size_t begin, size_t end)
{
    double acc[TILE];
    for (size_t j0 = begin; j0 < end; j0 += TILE) {
        const size_t len = end - j0 < TILE ? end - j0 : TILE;
        const double *e = c->ext + j0 + c->r; /* e[i] is node j0 + i */
        for (size_t i = 0; i < len; i++)
            acc[i] = c->ker[0] * e[i];
        for (size_t d = 1; d <= c->r; d++) {
            const double k = c->ker[d];
            const double *lo = e - d, *hi = e + d;
            for (size_t i = 0; i < len; i++)
                acc[i] += k * (lo[i] + hi[i]);
        }
        for (size_t i = 0; i < len; i++)
            c->out[j0 + i] = fabs(acc[i]);
    }
}

static void conv_sparse(const conv *c, size_t begin, size_t end)
{
    const size_t *nz = c->nz, n = c->nnz, r = c->r;
    size_t p = 0, hi = n; /* p: the first nonzero at or after the centre */
    while (p < hi) {
        const size_t mid = p + (hi - p) / 2;
        if (nz[mid] < begin + r)
            p = mid + 1;
        else
            hi = mid;
    }
    for (size_t j = begin; j < end; j++) {
        const size_t centre = j + r;
        while (p < n && nz[p] < centre)
            p++;
        double s = c->ker[0] * c->ext[centre];
        size_t left = p, right = p < n && nz[p] == centre ? p + 1 : p;
        for (;;) {
            const size_t dl = left > 0 ? centre - nz[left - 1] : SIZE_MAX;
            const size_t dr = right < n ? nz[right] - centre : SIZE_MAX;
            const size_t d = dl < dr ? dl : dr;
            if (d > r)
                break;
            const double a = dl == d ? c->ext[nz[--left]] : 0.0;
            const double b = dr == d ? c->ext[nz[right++]] : 0.0;
            s += c->ker[d] * (a + b);
        }
        c->out[j] = fabs(s);
    }
}

static void conv_range(void *vctx, size_t begin, size_t end, int worker)
{
    const conv *c = vctx;
    if (c->nnz == SIZE_MAX)
        conv_dense(c, begin, end);
    else
        conv_sparse(c, begin, end);
}

/* Kernel weights phi_s(d h), d = 0..r. */
static void kernel(double s, double h, size_t r, double *ker)
{
    const double norm = 1.0 / (sqrt(2.0 * M_PI) * s);
    for (size_t d = 0; d <= r; d++) {
        const double x = (double)d * h / s;
        ker[d] = norm * exp(-0.5 * x * x);
    }
}

/* smECE_s from the residual node sums v at `level`; total weight w. */
static int smece_grid(const double *v, int level, double s, double w,
                      int threads, double *out)
{
    const size_t g = ((size_t)1 << level) + 1;
    const double h = ldexp(1.0, -level);
    const size_t r = (size_t)ceil(CUT * s / h), len = g + 2 * r;
    double *ext = malloc(len * sizeof *ext);
    double *ker = malloc((r + 1) * sizeof *ker);
    double *abs_g = malloc(g * sizeof *abs_g);
    size_t *nz = malloc(len * sizeof *nz);
    int rc = ext && ker && abs_g && nz ? CALIB_OK : CALIB_ENOMEM;
    if (rc == CALIB_OK) {
        fold(v, g, r, ext);
        kernel(s, h, r, ker);
        size_t nnz = 0;
        for (size_t m = 0; m < len; m++)
            if (ext[m] != 0.0)
                nz[nnz++] = m;
        /* the sparse walk costs ~ nnz (2r + 1) branchy steps, the dense
         * sums g (r + 1) vectorised ones */
        conv c = {ext, ker, r, nz, nnz * 32 < g ? nnz : SIZE_MAX, abs_g};
        calib__parallel_for(g, threads, 2048, conv_range, &c);
        double sum = 0.5 * (abs_g[0] + abs_g[g - 1]);
        for (size_t j = 1; j + 1 < g; j++)
            sum += abs_g[j];
        *out = sum * h / w;
    }
    free(ext);
    free(ker);
    free(abs_g);
    free(nz);
    return rc;
}

/* ---- the fixed point --------------------------------------------------- */

/* The residual node sums at every level from LEVEL_MAX down, spread once
 * at LEVEL_MAX and restricted level by level; an evaluation at s reads
 * level L(s). */
typedef struct fine {
    const calib__top *t;
    int threads;
    double *level[LEVEL_MAX + 1];
    double w;
} fine;

static int smece_at(fine *f, double s, double *out)
{
    const int l = level_for(s);
    return smece_grid(f->level[l], l, s, f->w, f->threads, out);
}

/* Fills f->level[LEVEL_MIN .. LEVEL_MAX - 1] from f->level[LEVEL_MAX]. */
static int pyramid(fine *f)
{
    for (int l = LEVEL_MAX - 1; l >= LEVEL_MIN; l--) {
        const size_t g = ((size_t)1 << (l + 1)) + 1;
        if (!(f->level[l] = malloc(g * sizeof *f->level[l])))
            return CALIB_ENOMEM;
        memcpy(f->level[l], f->level[l + 1], g * sizeof *f->level[l]);
        restrict_grid(f->level[l], g);
    }
    return CALIB_OK;
}

static double total_weight(const calib__top *t)
{
    if (!t->weights)
        return (double)t->n;
    calib__xsum s;
    calib__xsum_init(&s);
    for (size_t i = 0; i < t->n; i++)
        calib__xsum_add(&s, t->weights[i]);
    return calib__xsum_round(&s);
}

/* The root of g(s) = smECE(s) - s on [SIGMA_MIN, 1] (g decreases).  From
 * s = 1 the bracket is found by quartering s until g(s) > 0, then closed
 * by regula falsi with the Illinois modification (the retained end's g is
 * halved when the same end is kept twice), falling back to bisection when
 * four steps have not halved the bracket; it stops at a relative width of
 * ROOT_REL.  hi keeps g(hi) <= 0, and the result is smECE(hi).  About ten
 * evaluations (each a convolution over the grid) where plain bisection
 * takes 30 to 40. */
static int fixed_point(fine *f, double *smece, double *bandwidth)
{
    double hi = 1.0, at_hi = 0.0, lo = hi, at_lo = 0.0;
    const int rc = smece_at(f, hi, &at_hi);
    if (rc != CALIB_OK)
        return rc;
    if (at_hi >= hi) {
        *smece = at_hi;
        *bandwidth = hi;
        return CALIB_OK;
    }
    while (lo > SIGMA_MIN) {
        lo = fmax(0.25 * lo, SIGMA_MIN);
        if (smece_at(f, lo, &at_lo) != CALIB_OK)
            return CALIB_ENOMEM;
        if (at_lo > lo)
            break;
        hi = lo, at_hi = at_lo;
    }
    if (!(at_lo > lo)) { /* the fixed point is at or below SIGMA_MIN */
        *smece = at_lo;
        *bandwidth = lo;
        return CALIB_OK;
    }
    double g_lo = at_lo - lo, g_hi = at_hi - hi, width = hi - lo;
    int kept = 0, slow = 0;     /* kept: +1 lo, -1 hi, the end kept last */
    while (hi - lo > ROOT_REL * hi) {
        double s = (lo * g_hi - hi * g_lo) / (g_hi - g_lo);
        if (slow >= 4 || !(s > lo && s < hi))
            s = 0.5 * (lo + hi), slow = 0;
        /* a step at least a quarter of the tolerance from either end, so
         * that a root approached from one side closes the bracket (Brent) */
        const double tol = 0.25 * ROOT_REL * hi;
        s = fmin(fmax(s, lo + tol), hi - tol);
        double at;
        if (smece_at(f, s, &at) != CALIB_OK)
            return CALIB_ENOMEM;
        if (at > s) {
            lo = s, g_lo = at - s;
            g_hi *= kept == -1 ? 0.5 : 1.0;
            kept = -1;
        } else {
            hi = s, at_hi = at, g_hi = at - s;
            g_lo *= kept == 1 ? 0.5 : 1.0;
            kept = 1;
        }
        slow = hi - lo > 0.5 * width ? slow + 1 : 0;
        width = hi - lo;
    }
    *smece = at_hi;
    *bandwidth = hi;
    return CALIB_OK;
}

int calib__smooth_ece(const calib__top *t, int threads, double *smece,
                      double *bandwidth)
{
    *smece = *bandwidth = NAN;
    fine f = {t, threads, {NULL}, total_weight(t)};
    if (!(f.w > 0.0))
        return CALIB_OK;
    double *q[Q_COUNT];
    int rc = spread_rows(t, LEVEL_MAX, 1 << Q_RESIDUAL, threads, q);
    f.level[LEVEL_MAX] = q[Q_RESIDUAL];
    if (rc == CALIB_OK)
        rc = pyramid(&f);
    if (rc == CALIB_OK)
        rc = fixed_point(&f, smece, bandwidth);
    if (rc != CALIB_OK)
        *smece = *bandwidth = NAN;
    for (int l = LEVEL_MIN; l <= LEVEL_MAX; l++)
        free(f.level[l]);
    return rc;
}

/* ---- the curve ------------------------------------------------------------ */

/* sum_m ext[m] phi_s(x - m h) over the nodes within the cut of x. */
static double conv_at(const double *ext, size_t g, size_t r, double h,
                      double s, double x)
{
    const double norm = 1.0 / (sqrt(2.0 * M_PI) * s);
    const long j = lround(x / h);
    double sum = 0.0;
    for (long m = j - (long)r; m <= j + (long)r; m++) {
        if (m < -(long)r || m > (long)g - 1 + (long)r)
            continue;
        const double z = (x - (double)m * h) / s;
        sum += ext[m + (long)r] * norm * exp(-0.5 * z * z);
    }
    return sum;
}

/* The curve of bandwidth s: y = smoothed accuracy, density = smoothed
 * weight / W, at x[i] = i / (n - 1). */
static int curve_at(const calib__top *t, double s, size_t n, double *x,
                    double *y, double *density, int threads)
{
    const int l = level_for(s);
    const size_t g = ((size_t)1 << l) + 1;
    const double h = ldexp(1.0, -l), w = total_weight(t);
    const size_t r = (size_t)ceil(CUT * s / h);
    double *q[Q_COUNT];
    int rc = spread_rows(t, LEVEL_MAX, (1 << Q_WEIGHT) | (1 << Q_HIT),
                         threads, q);
    for (size_t k = LEVEL_MAX, gk = ((size_t)1 << LEVEL_MAX) + 1;
         rc == CALIB_OK && k > (size_t)l; k--, gk = (gk - 1) / 2 + 1) {
        restrict_grid(q[Q_WEIGHT], gk);
        restrict_grid(q[Q_HIT], gk);
    }
    double *ew = malloc((g + 2 * r) * sizeof *ew);
    double *eh = malloc((g + 2 * r) * sizeof *eh);
    if (rc == CALIB_OK && (!ew || !eh))
        rc = CALIB_ENOMEM;
    if (rc == CALIB_OK) {
        fold(q[Q_WEIGHT], g, r, ew);
        fold(q[Q_HIT], g, r, eh);
        for (size_t i = 0; i < n; i++) {
            x[i] = n > 1 ? (double)i / (double)(n - 1) : 0.0;
            const double dw = conv_at(ew, g, r, h, s, x[i]);
            const double dh = conv_at(eh, g, r, h, s, x[i]);
            y[i] = dw > 0.0 ? dh / dw : NAN;
            density[i] = dw / w;
        }
    }
    for (int k = 0; k < Q_COUNT; k++)
        free(q[k]);
    free(ew);
    free(eh);
    return rc;
}

int calib__smooth_curve_top(const calib__top *t, double bandwidth, size_t n,
                            double *x, double *y, double *density,
                            int threads)
{
    double s = bandwidth, smece;
    if (!(s > 0.0)) {
        const int rc = calib__smooth_ece(t, threads, &smece, &s);
        if (rc != CALIB_OK)
            return rc;
    }
    if (!(s > 0.0) || !(total_weight(t) > 0.0)) {
        for (size_t i = 0; i < n; i++) {
            x[i] = n > 1 ? (double)i / (double)(n - 1) : 0.0;
            y[i] = density[i] = NAN;
        }
        return CALIB_OK;
    }
    return curve_at(t, s, n, x, y, density, threads);
}
