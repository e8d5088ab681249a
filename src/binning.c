/* binning.c — which bin a confidence falls in: equal-width bins under each
 * project's rule, and Kumar's equal-mass bins.
 *
 * Equal-width edges are e_k = (double)k / M and p is compared with them
 * exactly.  p*M alone is not enough: it rounds (0.2 * 15 =
 * 3.0000000000000004), so it only gives a candidate that is at most one bin
 * off, and one comparison with the neighbouring edge corrects it.
 *
 * Equal-mass edges follow Kumar et al. 2019 (verified_calibration,
 * `get_equal_bins`, used by HELM's ece_10_bin): sort, np.array_split into M
 * groups (the first N mod M one larger), edge i = (last of group i + first
 * of group i+1) / 2, last edge 1.0, duplicates removed, M > N -> M = N.
 * Only the 2(M-1) order statistics at the group boundaries are needed, so
 * nothing is sorted: a 65536-bucket histogram of floor(p * 2^16) (exact, so
 * monotone in p) locates each needed rank's bucket, the values of those few
 * buckets are gathered, and a multi-rank quickselect with three-way
 * partitioning (linear on data full of ties) finds the ranks.  Float32
 * confidences need no select: two histograms of their bits give the ranks
 * exactly (calib__mass_edges_f32).
 */
#include "metrics.h"

#include <stdlib.h>
#include <string.h>

static const char *const rule_names[] = {"sklearn", "netcal", "torchmetrics",
                                         "gpleiss", "hollance"};
#define N_RULES (sizeof rule_names / sizeof *rule_names)

int calib_bin_rule_parse(const char *name, calib_bin_rule *out)
{
    for (size_t r = 0; name && r < N_RULES; r++)
        if (strcmp(name, rule_names[r]) == 0) {
            if (out)
                *out = (calib_bin_rule)r;
            return CALIB_OK;
        }
    return CALIB_EINVAL;
}

const char *calib_bin_rule_name(calib_bin_rule rule)
{
    return (unsigned)rule < N_RULES ? rule_names[rule] : "unknown";
}

static double edge(long k, int m) { return (double)k / m; }

/* b with e_b < p <= e_{b+1}; p <= 0 gives 0. */
static long closed_right(double p, int m)
{
    long b = (long)(p * m);
    if (b > m - 1)
        b = m - 1;
    if (b > 0 && p <= edge(b, m))
        b--;
    else if (p > edge(b + 1, m))
        b++;
    return b;
}

/* b with e_b <= p < e_{b+1}, clamped to the last bin. */
static long closed_left(double p, int m)
{
    long b = (long)(p * m);
    if (b > m - 1)
        b = m - 1;
    if (b > 0 && p < edge(b, m))
        b--;
    else if (b < m - 1 && p >= edge(b + 1, m))
        b++;
    return b;
}

long calib__bin_width(double p, int m, calib_bin_rule rule)
{
    switch (rule) {
    case CALIB_RULE_NETCAL:
        return closed_left(p, m);
    case CALIB_RULE_TORCHMETRICS:
        /* torch.bucketize(p, linspace(0,1,M+1), right=True) - 1 gives M at
         * p = 1, and torchmetrics sizes its arrays M+1 to keep that bin */
        return p >= 1.0 ? m : closed_left(p, m);
    case CALIB_RULE_GPLEISS:
    case CALIB_RULE_HOLLANCE:
        return p <= 0.0 ? -1 : closed_right(p, m);
    case CALIB_RULE_SKLEARN:
    default:
        return closed_right(p, m);
    }
}

size_t calib__bin_mass(double p, const double *edges, size_t n_edges)
{
    size_t lo = 0, hi = n_edges; /* bisect_left: first edge >= p */
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (edges[mid] < p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n_edges ? lo : n_edges - 1;
}

/* ------------------------------------------------------------------ */
/* Equal-mass edges                                                    */
/* ------------------------------------------------------------------ */

#define NB 65536

static unsigned bucket(double p)
{
    const double s = p * NB; /* exact: a power of two */
    return s >= NB - 1 ? NB - 1 : s <= 0.0 ? 0 : (unsigned)s;
}

typedef struct mass_ctx {
    const double *conf;
    uint64_t *hist;          /* per worker, NB each */
    const int32_t *slot;     /* bucket -> gathered slot, -1 if not needed */
    uint64_t *base;          /* per worker per slot: where its values go */
    size_t stride;           /* of base, per worker */
    double *gathered;
} mass_ctx;

static void hist_range(void *vctx, size_t begin, size_t end, int worker)
{
    const mass_ctx *c = vctx;
    uint64_t *h = c->hist + (size_t)worker * NB;
    for (size_t i = begin; i < end; i++)
        h[bucket(c->conf[i])]++;
}

static void gather_range(void *vctx, size_t begin, size_t end, int worker)
{
    const mass_ctx *c = vctx;
    uint64_t *pos = c->base + (size_t)worker * c->stride;
    for (size_t i = begin; i < end; i++) {
        const int32_t s = c->slot[bucket(c->conf[i])];
        if (s >= 0)
            c->gathered[pos[s]++] = c->conf[i];
    }
}

/* A deterministic pseudo-random pivot index in [0, n): a fixed LCG keeps
 * results reproducible while avoiding the sorted-input worst case. */
static size_t pivot_index(uint64_t *state, size_t n)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return (size_t)((*state >> 33) % n);
}

/* Puts into out[j] the value of rank ranks[j] (0-based, sorted ascending,
 * relative to x) for j < nr, by three-way partitioning around a pivot and
 * recursing only into the parts that hold wanted ranks. */
static void multiselect(double *x, size_t n, size_t *ranks, size_t nr,
                        double *out, uint64_t *state)
{
    while (nr > 0) {
        const double piv = x[pivot_index(state, n)];
        size_t lt = 0, i = 0, gt = n; /* [0,lt) < piv, [gt,n) > piv */
        while (i < gt) {
            const double v = x[i];
            if (v < piv) {
                x[i++] = x[lt];
                x[lt++] = v;
            } else if (v > piv) {
                x[i] = x[--gt];
                x[gt] = v;
            } else {
                i++;
            }
        }
        size_t a = 0;
        while (a < nr && ranks[a] < lt)
            a++;
        size_t b = a;
        for (; b < nr && ranks[b] < gt; b++)
            out[b] = piv;
        multiselect(x, lt, ranks, a, out, state);
        /* the upper part by iteration: ranks shift down by gt */
        x += gt;
        n -= gt;
        ranks += b;
        for (size_t j = 0; j < nr - b; j++)
            ranks[j] -= gt;
        out += b;
        nr -= b;
    }
}

/* The start row of group i of np.array_split(n, m). */
static size_t split_start(size_t i, size_t n, size_t m)
{
    const size_t q = n / m, r = n % m;
    return i * q + (i < r ? i : r);
}

/* The ranks whose values make the edges, ascending: s_i - 1 and s_i for
 * each group start s_i, i = 1 .. m-1 (consecutive, hence already sorted). */
static size_t needed_ranks(size_t n, size_t m, size_t *ranks)
{
    size_t nr = 0;
    for (size_t i = 1; i < m; i++) {
        const size_t s = split_start(i, n, m);
        if (nr == 0 || ranks[nr - 1] != s - 1)
            ranks[nr++] = s - 1;
        ranks[nr++] = s;
    }
    return nr;
}

typedef struct selection {
    size_t nr;
    size_t *ranks;       /* needed global ranks, ascending */
    double *values;      /* their values */
} selection;

/* Marks the buckets holding the needed ranks; fills slot[], the slot
 * starts in the gathered array (slot_start[n_slots] = total) and each
 * worker's write positions. */
static size_t plan_slots(const uint64_t *hist, int workers,
                         const selection *sel, size_t stride, int32_t *slot,
                         uint64_t *slot_start, uint64_t *base,
                         uint64_t *bucket_lo)
{
    uint64_t below = 0;
    size_t n_slots = 0, r = 0;
    uint64_t total = 0;
    for (size_t b = 0; b < NB && r < sel->nr; b++) {
        uint64_t cnt = 0;
        for (int w = 0; w < workers; w++)
            cnt += hist[(size_t)w * NB + b];
        if (r < sel->nr && sel->ranks[r] < below + cnt) {
            slot[b] = (int32_t)n_slots;
            bucket_lo[n_slots] = below;
            slot_start[n_slots] = total;
            for (int w = 0; w < workers; w++) {
                base[(size_t)w * stride + n_slots] = total;
                total += hist[(size_t)w * NB + b];
            }
            n_slots++;
            while (r < sel->nr && sel->ranks[r] < below + cnt)
                r++;
        }
        below += cnt;
    }
    slot_start[n_slots] = total;
    return n_slots;
}

/* Finds the values of sel->ranks among conf[0..n). */
static int select_ranks(const double *conf, size_t n, int threads,
                        selection *sel)
{
    const int tmax = calib__threads(threads);
    const size_t ns_max = sel->nr; /* each slot holds a needed rank */
    mass_ctx c = {conf, calloc((size_t)tmax * NB, sizeof(uint64_t)), NULL,
                  NULL, ns_max, NULL};
    int32_t *slot = malloc(NB * sizeof *slot);
    uint64_t *base = calloc((size_t)tmax * ns_max + 1, sizeof *base);
    uint64_t *start = malloc((ns_max + 1) * sizeof *start);
    uint64_t *lo = malloc((ns_max + 1) * sizeof *lo);
    int rc = CALIB_ENOMEM;
    if (!c.hist || !slot || !base || !start || !lo)
        goto cleanup;
    memset(slot, 0xff, NB * sizeof *slot);
    const int used = calib__parallel_for(n, threads, 1 << 18, hist_range, &c);
    const size_t n_slots =
        plan_slots(c.hist, used, sel, ns_max, slot, start, base, lo);
    c.slot = slot;
    c.base = base;
    if (!(c.gathered = malloc((start[n_slots] + 1) * sizeof(double))))
        goto cleanup;
    /* the same split as the histogram pass: parallel_for is deterministic */
    calib__parallel_for(n, threads, 1 << 18, gather_range, &c);
    uint64_t state = 0x9e3779b97f4a7c15u;
    for (size_t s = 0, r = 0; s < n_slots; s++) {
        const size_t len = start[s + 1] - start[s];
        size_t r1 = r;
        while (r1 < sel->nr && sel->ranks[r1] < lo[s] + len)
            r1++;
        for (size_t j = r; j < r1; j++)
            sel->ranks[j] -= lo[s];
        multiselect(c.gathered + start[s], len, sel->ranks + r, r1 - r,
                    sel->values + r, &state);
        r = r1;
    }
    rc = CALIB_OK;
cleanup:
    free(c.hist);
    free(slot);
    free(base);
    free(start);
    free(lo);
    free(c.gathered);
    return rc;
}

/* Edges from the selected values, Kumar's midpoints, then 1.0, without
 * repeats (the midpoints never decrease, so repeats are adjacent). */
static size_t make_edges(size_t n, size_t m, const size_t *rank_of,
                         const double *values, double *edges)
{
    size_t ne = 0, r = 0;
    for (size_t i = 1; i < m; i++) {
        const size_t s = split_start(i, n, m);
        while (rank_of[r] != s - 1)
            r++;
        const double e = (values[r] + values[r + 1]) / 2.0;
        if (ne == 0 || edges[ne - 1] != e)
            edges[ne++] = e;
    }
    if (ne == 0 || edges[ne - 1] != 1.0)
        edges[ne++] = 1.0;
    return ne;
}

/* For values_mass.c, which finds the ranks' values in a value table. */
size_t calib__mass_groups(size_t n, int m)
{
    return m < 1 ? 1 : (size_t)m > n ? (n ? n : 1) : (size_t)m;
}

size_t calib__mass_split(size_t i, size_t n, size_t m)
{
    return split_start(i, n, m);
}

size_t calib__mass_ranks(size_t n, size_t m, size_t *ranks)
{
    return needed_ranks(n, m, ranks);
}

size_t calib__mass_make_edges(size_t n, size_t m, const size_t *ranks,
                              const double *values, double *edges)
{
    return make_edges(n, m, ranks, values, edges);
}

/* ------------------------------------------------------------------ */
/* Equal-mass edges of float32 confidences                             */
/* ------------------------------------------------------------------ */

/* For float32 input the ranks are found exactly on the bits, with no
 * select: a clamped confidence in [+0, 1] has bits u <= 0x3f800000 that
 * order as the values do, so a histogram of the high bits u >> 14 locates
 * each needed rank's bucket, and a second histogram of the low 14 bits of
 * that bucket's values gives the rank's exact bits.  Two passes over the
 * data whatever the distribution (all rows within one bucket included). */
#define F32_ONE_BITS 0x3f800000
#define LOW_BITS 14
#define NB2 (1 << LOW_BITS)
#define MAX_SLOTS 64         /* second-level histograms per worker */
#define F32_NEG_ZERO 0x80000000u

typedef struct f32_ctx {
    const uint32_t *bits;
    uint32_t *h1;            /* per worker, NB each */
    uint32_t *h2;            /* per worker, n_slots * NB2 each */
    size_t n_slots;
    const uint8_t *slot;     /* high bits -> second-level slot, NO_SLOT if
                                none */
    uint64_t neg_zero[MAX_WORKERS];
    uint64_t zeros[MAX_WORKERS];
} f32_ctx;

#define NO_SLOT 0xff

/* The clamped bits of a float32 confidence (negatives, -0.0 included,
 * give +0; calib__conf keeps -0.0, which the caller sees in neg_zero). */
static inline uint32_t clamped_bits(uint32_t x)
{
    int32_t s = (int32_t)x;
    s = s < 0 ? 0 : s;
    return (uint32_t)(s > F32_ONE_BITS ? F32_ONE_BITS : s);
}

/* The first level, counting the rows at exactly +0 apart: a bucket that
 * holds only one value (1.0 is alone in its bucket, 0 may be) needs no
 * second level. */
static void hist1_range(void *vctx, size_t begin, size_t end, int worker)
{
    f32_ctx *c = vctx;
    uint32_t *h = c->h1 + (size_t)worker * NB;
    uint64_t nz = 0, n0 = 0;
    for (size_t i = begin; i < end; i++) {
        const uint32_t u = clamped_bits(c->bits[i]);
        nz += c->bits[i] == F32_NEG_ZERO;
        n0 += u == 0;
        h[u >> LOW_BITS]++;
    }
    c->neg_zero[worker] = nz;
    c->zeros[worker] = n0;
}

/* The second level: most rows are in buckets without a needed rank, so
 * the branch is well predicted. */
static void hist2_range(void *vctx, size_t begin, size_t end, int worker)
{
    const f32_ctx *c = vctx;
    uint32_t *h = c->h2 + (size_t)worker * c->n_slots * NB2;
    for (size_t i = begin; i < end; i++) {
        const uint32_t u = clamped_bits(c->bits[i]);
        const size_t s = c->slot[u >> LOW_BITS];
        if (s != NO_SLOT)
            h[s * NB2 + (u & (NB2 - 1))]++;
    }
}

/* Finds the first-level buckets of the needed ranks: bucket_of[j] for
 * rank j, each rank's rank within its bucket in within[j], and gives a
 * second-level slot to each bucket that holds more than one value (the
 * values of the others are set here).  Returns the number of slots. */
static size_t plan_f32(const uint32_t *h1, int workers, uint64_t zeros,
                       selection *sel, uint8_t *slot, uint32_t *bucket_of,
                       uint64_t *within)
{
    uint64_t below = 0;
    size_t n_slots = 0, r = 0;
    for (size_t b = 0; b < NB && r < sel->nr; b++) {
        uint64_t cnt = 0;
        for (int w = 0; w < workers; w++)
            cnt += h1[(size_t)w * NB + b];
        const int single = b == F32_ONE_BITS >> LOW_BITS ||
                           (b == 0 && cnt == zeros);
        if (sel->ranks[r] < below + cnt && !single) {
            if (n_slots < MAX_SLOTS)
                slot[b] = (uint8_t)n_slots;
            n_slots++;
        }
        for (; r < sel->nr && sel->ranks[r] < below + cnt; r++) {
            bucket_of[r] = (uint32_t)b;
            within[r] = sel->ranks[r] - below;
            sel->values[r] = b == 0 ? 0.0 : 1.0; /* if single */
        }
        below += cnt;
    }
    return n_slots;
}

/* The values of the ranks in slotted buckets, from the second level. */
static void finish_f32(const f32_ctx *c, int workers, selection *sel,
                       const uint32_t *bucket_of, const uint64_t *within,
                       uint64_t *sum)
{
    for (size_t j = 0; j < sel->nr;) {
        const uint32_t b = bucket_of[j];
        const size_t s = c->slot[b];
        if (s == NO_SLOT) {
            j++;
            continue;
        }
        for (size_t l = 0; l < NB2; l++) {
            sum[l] = 0;
            for (int w = 0; w < workers; w++)
                sum[l] += c->h2[((size_t)w * c->n_slots + s) * NB2 + l];
        }
        uint64_t below = 0;
        for (size_t l = 0; l < NB2 && j < sel->nr && bucket_of[j] == b; l++) {
            for (; j < sel->nr && bucket_of[j] == b &&
                   within[j] < below + sum[l]; j++) {
                const uint32_t u = b << LOW_BITS | (uint32_t)l;
                float v;
                memcpy(&v, &u, sizeof v);
                sel->values[j] = v;
            }
            below += sum[l];
        }
    }
}

/* The clamped confidences as doubles (as calib__conf gives them when no
 * confidence is -0.0), and select_ranks on them. */
static int select_ranks_wide(const float *conf, size_t n, int threads,
                             selection *sel)
{
    double *p = malloc((n ? n : 1) * sizeof *p);
    if (!p)
        return CALIB_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const uint32_t u = clamped_bits(((const uint32_t *)conf)[i]);
        float v;
        memcpy(&v, &u, sizeof v);
        p[i] = v;
    }
    const int rc = select_ranks(p, n, threads, sel);
    free(p);
    return rc;
}

/* As select_ranks, for float32 confidences.  Returns CALIB_EINVAL when
 * a confidence is -0.0 (the float64 path keeps its sign, which an edge
 * may inherit: the caller takes that path), CALIB_ENOMEM, or CALIB_OK.
 * Ranks spread over more than MAX_SLOTS buckets (many bins) are selected
 * among the values as doubles instead. */
static int select_ranks_f32(const float *conf, size_t n, int threads,
                            selection *sel)
{
    const int tmax = calib__threads(threads);
    f32_ctx *c = calloc(1, sizeof *c);
    uint8_t *slot = malloc(NB);
    uint32_t *bucket_of = malloc(sel->nr * sizeof *bucket_of + 1);
    uint64_t *within = malloc(sel->nr * sizeof *within + 1);
    uint64_t *sum = malloc(NB2 * sizeof *sum);
    int rc = CALIB_ENOMEM;
    if (!c || !slot || !bucket_of || !within || !sum ||
        !(c->h1 = calloc((size_t)tmax * NB, sizeof *c->h1)))
        goto cleanup;
    c->bits = (const uint32_t *)conf;
    memset(slot, NO_SLOT, NB);
    c->slot = slot;
    const int used = calib__parallel_for(n, threads, 1 << 18, hist1_range, c);
    uint64_t nz = 0, zeros = 0;
    for (int w = 0; w < used; w++) {
        nz += c->neg_zero[w];
        zeros += c->zeros[w];
    }
    rc = CALIB_EINVAL;
    if (nz)
        goto cleanup;
    c->n_slots = plan_f32(c->h1, used, zeros, sel, slot, bucket_of, within);
    if (c->n_slots > MAX_SLOTS) {
        rc = select_ranks_wide(conf, n, threads, sel);
        goto cleanup;
    }
    rc = CALIB_ENOMEM;
    if (c->n_slots &&
        !(c->h2 = calloc((size_t)used * c->n_slots * NB2, sizeof *c->h2)))
        goto cleanup;
    /* the same split as the first pass: parallel_for is deterministic */
    if (c->n_slots)
        calib__parallel_for(n, threads, 1 << 18, hist2_range, c);
    finish_f32(c, used, sel, bucket_of, within, sum);
    rc = CALIB_OK;
cleanup:
    if (c) {
        free(c->h1);
        free(c->h2);
    }
    free(c);
    free(slot);
    free(bucket_of);
    free(within);
    free(sum);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Edges                                                               */
/* ------------------------------------------------------------------ */

/* The needed ranks of n values for m bins, their values by `select`, and
 * the edges from them. */
static int mass_edges(const void *conf, size_t n, int m, int threads,
                      int f32, double **edges, size_t *n_edges)
{
    *edges = NULL;
    *n_edges = 0;
    const size_t mm = calib__mass_groups(n, m);
    size_t cap = mm > 1 ? 2 * (mm - 1) : 1;
    selection sel = {0, malloc(cap * sizeof(size_t)),
                     malloc(cap * sizeof(double))};
    size_t *orig = malloc(cap * sizeof(size_t));
    double *e = malloc(mm * sizeof *e);
    int rc = CALIB_ENOMEM;
    if (!sel.ranks || !sel.values || !orig || !e)
        goto cleanup;
    sel.nr = n ? needed_ranks(n, mm, sel.ranks) : 0;
    memcpy(orig, sel.ranks, sel.nr * sizeof *orig);
    if (sel.nr && (rc = f32 ? select_ranks_f32(conf, n, threads, &sel)
                            : select_ranks(conf, n, threads, &sel)) !=
                      CALIB_OK)
        goto cleanup;
    *n_edges = make_edges(n, mm, orig, sel.values, e);
    *edges = e;
    e = NULL;
    rc = CALIB_OK;
cleanup:
    free(sel.ranks);
    free(sel.values);
    free(orig);
    free(e);
    return rc;
}

int calib__mass_edges(const double *conf, size_t n, int m, int threads,
                      double **edges, size_t *n_edges)
{
    return mass_edges(conf, n, m, threads, 0, edges, n_edges);
}

int calib__mass_edges_f32(const float *conf, size_t n, int m, int threads,
                          double **edges, size_t *n_edges)
{
    if (n >= ((size_t)1 << 32) / 2) /* keeps the uint32 histograms exact */
        return CALIB_EINVAL;
    return mass_edges(conf, n, m, threads, 1, edges, n_edges);
}
