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
 * partitioning (linear on data full of ties) finds the ranks.
 */
#include "internal.h"

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

int calib__mass_edges(const double *conf, size_t n, int m, int threads,
                      double **edges, size_t *n_edges)
{
    *edges = NULL;
    *n_edges = 0;
    const size_t mm = m < 1 ? 1 : (size_t)m > n ? (n ? n : 1) : (size_t)m;
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
    if (sel.nr && select_ranks(conf, n, threads, &sel) != CALIB_OK)
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
