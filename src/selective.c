/* selective.c — selective prediction: AUROC, AURC, HELM's selective
 * metrics, accuracy at a coverage and coverage at a risk, on runs of tied
 * confidences (selective.h).
 *
 * Rows are ranked by confidence, most confident first; rows of one
 * confidence are taken in every order with equal probability, and the
 * metrics are their expectation, computed exactly per run: within a run of
 * weight c holding e wrong weight, after K weight of higher confidence with
 * E wrong, the first j of the run hold E + j e / c wrong weight on average.
 * Weights are frequency weights (a row of integer weight k counts as k
 * rows), so AURC's mean over k = 1..W of the error rate of the top k rows
 * sums, over a run, to
 *     sum_{j=1..c} (E + j e/c) / (K + j) = e + (E - K e/c) (psi(K+c+1) -
 *     psi(K+1)),
 * a finite harmonic sum for integer c; for other weights the digamma
 * function psi extends it.  AUROC is the Mann-Whitney statistic, ties
 * counting 1/2 (scikit-learn's roc_auc_score).
 */
#include "selective.h"

#include <stdlib.h>
#include <string.h>

#define RISK_TOL 1e-12  /* relative slack when a risk is compared with r */

/* psi(x + c) - psi(x), x >= 1, c >= 0: the recurrence psi(z) = psi(z+1) -
 * 1/z lifts x to 16, then psi(z) = ln z - 1/(2z) - 1/(12z^2) + 1/(120z^4)
 * - 1/(252z^6) + 1/(240z^8) - ... (Abramowitz and Stegun 6.3.18), whose
 * next term is below 1e-14 there. */
static double tail(double z)
{
    const double u = 1.0 / (z * z);
    return 0.5 / z +
           u * (1.0 / 12 - u * (1.0 / 120 - u * (1.0 / 252 - u / 240)));
}

static double psi_diff(double x, double c)
{
    double d = 0.0;
    if (c <= 64.0 && c == floor(c)) { /* a short run: the finite sum */
        for (double j = 0.0; j < c; j += 1.0)
            d += 1.0 / (x + j);
        return d;
    }
    for (; x < 16.0; x += 1.0)
        d += 1.0 / x - 1.0 / (x + c);
    return d + log1p(c / x) + tail(x) - tail(x + c);
}

/* Exact totals of weight and hit weight over the runs. */
static void totals(const calib__runs *r, double *w, double *h)
{
    calib__xsum sw, sh;
    calib__xsum_init(&sw);
    calib__xsum_init(&sh);
    for (size_t i = 0; i < r->n; i++) {
        calib__xsum_add(&sw, r->weight[i]);
        calib__xsum_add(&sh, r->hit[i]);
    }
    *w = calib__xsum_round(&sw);
    *h = calib__xsum_round(&sh);
}

/* P(conf of a correct row > conf of a wrong one) + P(tie)/2, weighted. */
static double auroc(const calib__runs *r, double hits, double misses)
{
    if (!(hits > 0.0) || !(misses > 0.0))
        return NAN;
    double below = 0.0, s = 0.0;
    for (size_t i = r->n; i-- > 0;) {
        const double e = r->weight[i] - r->hit[i];
        s += r->hit[i] * (below + 0.5 * e);
        below += e;
    }
    return s / hits / misses;
}

/* sum over k = 1..W of the expected share of `want` (hit or wrong weight)
 * among the k most confident rows. */
static double rate_area(const calib__runs *r, int want_hits)
{
    double k = 0.0, q_above = 0.0, s = 0.0;
    for (size_t i = 0; i < r->n; i++) {
        const double c = r->weight[i];
        const double q = want_hits ? r->hit[i] : c - r->hit[i];
        if (!(c > 0.0))
            continue;
        s += q + (q_above - k * q / c) * psi_diff(k + 1.0, c);
        k += c;
        q_above += q;
    }
    return s;
}

/* Expected hit weight among the top k weight, 0 < k <= W. */
static double top_hits(const calib__runs *r, double k)
{
    double above = 0.0, h_above = 0.0;
    for (size_t i = 0; i < r->n; i++) {
        const double c = r->weight[i];
        if (c > 0.0 && above + c >= k)
            return h_above + (k - above) * (r->hit[i] / c);
        above += c;
        h_above += r->hit[i];
    }
    return h_above;
}

void calib__selective_runs(const calib__runs *r, calib__selective *out)
{
    double w, h;
    totals(r, &w, &h);
    if (!(w > 0.0)) {
        out->auroc = out->aurc = out->cov_acc_area = out->acc_at_10 = NAN;
        return;
    }
    out->auroc = auroc(r, h, w - h);
    out->aurc = rate_area(r, 0) / w;
    out->cov_acc_area = rate_area(r, 1) / w;
    /* HELM: accs[int(0.1 * N)], the accuracy of the top int(0.1 N) + 1 */
    double k = floor(0.1 * w) + 1.0;
    k = k > w ? w : k;
    out->acc_at_10 = top_hits(r, k) / k;
}

void calib__selective_to_metrics(const calib__runs *r, calib_metrics *m)
{
    calib__selective s;
    calib__selective_runs(r, &s);
    m->auroc = s.auroc;
    m->aurc = s.aurc;
    m->selective_cov_acc_area = s.cov_acc_area;
    m->selective_acc_at_10 = s.acc_at_10;
}

/* ceil(x), where x within a relative 1e-12 of an integer is that integer
 * (so 0.7 of 10 rows is 7 rows, though 0.7 * 10 rounds to 7.000000000000001). */
static double ceil_tol(double x)
{
    const double n = nearbyint(x);
    return fabs(x - n) <= 1e-12 * (n > 1.0 ? n : 1.0) ? n : ceil(x);
}

double calib__runs_accuracy_at(const calib__runs *r, double c)
{
    double w, h;
    totals(r, &w, &h);
    if (!(w > 0.0))
        return NAN;
    double k = ceil_tol(c * w);
    k = k > w ? w : k < 1.0 && w >= 1.0 ? 1.0 : k;
    return k > 0.0 ? top_hits(r, k) / k : NAN;
}

static int risk_ok(double wrong, double k, double risk)
{
    return wrong / k <= risk * (1.0 + RISK_TOL);
}

/* The largest j in {1, 2, .., floor(c)} or {c} such that the top K + j
 * rows have risk <= `risk`, within a run (K, E above; c, e its own); 0 if
 * none.  The risk (E + j e/c) / (K + j) is monotone in j. */
static double run_reach(double big_k, double big_e, double c, double e,
                        double risk)
{
    if (risk_ok(big_e + e, big_k + c, risk))
        return c;
    const double a = e / c - risk, b = risk * big_k - big_e;
    if (!(a > 0.0) || b < 0.0)
        return 0.0;
    double j = floor(b / a);
    j = j >= c ? ceil(c) - 1.0 : j;
    if (j + 1.0 < c && risk_ok(big_e + (j + 1.0) * e / c, big_k + j + 1.0,
                               risk))
        j += 1.0;
    while (j >= 1.0 && !risk_ok(big_e + j * e / c, big_k + j, risk))
        j -= 1.0;
    return j >= 1.0 ? j : 0.0;
}

double calib__runs_coverage_at_risk(const calib__runs *r, double risk)
{
    double w, h;
    totals(r, &w, &h);
    if (!(w > 0.0))
        return NAN;
    double k = 0.0, e_above = 0.0, best = 0.0;
    for (size_t i = 0; i < r->n; i++) {
        const double c = r->weight[i], e = c - r->hit[i];
        if (!(c > 0.0))
            continue;
        const double j = run_reach(k, e_above, c, e, risk);
        if (j > 0.0)
            best = k + j;
        k += c;
        e_above += e;
    }
    return best / w;
}

/* ------------------------------------------------------------------ */
/* From rows to runs                                                   */
/* ------------------------------------------------------------------ */

static uint64_t key_of(double p)
{
    p += 0.0; /* -0.0 sorts as +0.0 */
    uint64_t u;
    memcpy(&u, &p, sizeof u);
    return u;
}

static double value_of(uint64_t u)
{
    double p;
    memcpy(&p, &u, sizeof p);
    return p;
}

/* Where the walk down the two sorted halves stands. */
typedef struct walk {
    const uint64_t *key, *pay;
    size_t hi[2], lo[2];  /* half s holds [lo[s], hi[s]), taken from hi */
} walk;

/* Sums the rows of half s whose key is u into *sum (weights) or *n. */
static uint64_t take(walk *wk, int s, uint64_t u, calib__xsum *sum,
                     double *single)
{
    uint64_t n = 0;
    while (wk->hi[s] > wk->lo[s] && wk->key[wk->hi[s] - 1] == u) {
        wk->hi[s]--;
        if (wk->pay) {
            *single = value_of(wk->pay[wk->hi[s]]);
            calib__xsum_add(sum, *single);
        }
        n++;
    }
    return n;
}

/* Appends the run of the largest key left in either half. */
static void next_run(walk *wk, double *value, uint64_t *count, double *weight,
                     double *hit)
{
    uint64_t u = 0;
    for (int s = 0; s < 2; s++)
        if (wk->hi[s] > wk->lo[s] && wk->key[wk->hi[s] - 1] >= u)
            u = wk->key[wk->hi[s] - 1];
    calib__xsum hs, ms;
    if (wk->pay) {
        calib__xsum_init(&hs);
        calib__xsum_init(&ms);
    }
    double one_h = 0.0, one_m = 0.0;
    const uint64_t nh = take(wk, 0, u, &hs, &one_h);
    const uint64_t nm = take(wk, 1, u, &ms, &one_m);
    *value = value_of(u);
    *count = nh + nm;
    if (!wk->pay) {
        *weight = (double)(nh + nm);
        *hit = (double)nh;
    } else if (nh + nm == 1) {
        *weight = nh ? one_h : one_m;
        *hit = nh ? one_h : 0.0;
    } else {
        *hit = calib__xsum_round(&hs);
        calib__xsum_merge(&hs, &ms);
        *weight = calib__xsum_round(&hs);
    }
}

/* Keys (and weights as bits) with the correct rows first, each half sorted. */
static int sorted_halves(const double *conf, const uint8_t *correct,
                         const double *weights, size_t n, uint64_t *key,
                         uint64_t *pay, size_t *n_hit)
{
    size_t nh = 0;
    for (size_t i = 0; i < n; i++)
        nh += correct[i] != 0;
    size_t at[2] = {0, nh};
    for (size_t i = 0; i < n; i++) {
        const size_t j = at[correct[i] == 0]++;
        key[j] = key_of(conf[i]);
        if (pay)
            memcpy(&pay[j], &weights[i], sizeof pay[j]);
    }
    *n_hit = nh;
    int rc = calib__radix_sort(key, pay, nh);
    if (rc == CALIB_OK)
        rc = calib__radix_sort(key + nh, pay ? pay + nh : NULL, n - nh);
    return rc;
}

/* The number of distinct keys in the two sorted halves [0, nh), [nh, n). */
static size_t count_runs(const uint64_t *key, size_t nh, size_t n)
{
    size_t i = 0, j = nh, runs = 0;
    while (i < nh || j < n) {
        uint64_t u = i < nh ? key[i] : key[j];
        if (j < n && key[j] < u)
            u = key[j];
        while (i < nh && key[i] == u)
            i++;
        while (j < n && key[j] == u)
            j++;
        runs++;
    }
    return runs;
}

int calib__runs_from_rows(const double *conf, const uint8_t *correct,
                          const double *weights, size_t n, calib__runs *out)
{
    memset(out, 0, sizeof *out);
    uint64_t *key = malloc((n ? n : 1) * sizeof *key);
    uint64_t *pay = weights ? malloc((n ? n : 1) * sizeof *pay) : NULL;
    char *block = NULL;
    size_t nh = 0, m = 1;
    int rc = key && (!weights || pay) ? CALIB_OK : CALIB_ENOMEM;
    if (rc == CALIB_OK)
        rc = sorted_halves(conf, correct, weights, n, key, pay, &nh);
    if (rc == CALIB_OK) {
        /* as many runs as distinct confidences: allocated to size */
        m = n ? count_runs(key, nh, n) : 1;
        block = malloc(m * (3 * sizeof(double) + sizeof(uint64_t)));
        rc = block ? CALIB_OK : CALIB_ENOMEM;
    }
    if (rc != CALIB_OK) {
        free(key);
        free(pay);
        free(block);
        return CALIB_ENOMEM;
    }
    double *value = (double *)block, *weight = value + m, *hit = weight + m;
    uint64_t *count = (uint64_t *)(hit + m);
    walk wk = {key, pay, {nh, n}, {0, nh}};
    size_t r = 0;
    while (wk.hi[0] > wk.lo[0] || wk.hi[1] > wk.lo[1]) {
        next_run(&wk, &value[r], &count[r], &weight[r], &hit[r]);
        r++;
    }
    free(key);
    free(pay);
    *out = (calib__runs){r, value, count, weight, hit, block};
    return CALIB_OK;
}

void calib__runs_free(calib__runs *r)
{
    if (r)
        free(r->own);
}
