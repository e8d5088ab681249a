/* metrics_bins.c — the metrics read off a reliability table: the over- and
 * under-confidence parts of ECE, Kumar et al.'s debiased L2 calibration
 * error, and Murphy's decomposition of the top-label Brier score.
 *
 * They need only each bin's weight, mean confidence and accuracy (already
 * rounded from exact sums by metrics.c), so the streaming accumulator and
 * merged partial states have them too.  Weights are frequency weights: a
 * bin's W_b plays the part of its row count, so a row of integer weight k
 * gives what k copies of it give.
 *
 *  - ECE_over  = sum over bins with conf_b > acc_b of (W_b/W) (conf_b - acc_b)
 *    ECE_under = sum over bins with conf_b < acc_b of (W_b/W) (acc_b - conf_b)
 *    (W the ECE's weight), so ECE = ECE_over + ECE_under.
 *  - Debiased L2 (Kumar, Liang and Ma 2019, "Verified Uncertainty
 *    Calibration", calibration/utils.py unbiased_square_ce/unbiased_l2_ce):
 *    S = sum_b (W_b/W) [(conf_b - acc_b)^2 - acc_b (1 - acc_b) / (W_b - 1)],
 *    a bin with W_b < 2 contributing 0 (their len(bin) < 2 rule), and
 *    ece_debiased_l2 = sqrt(max(S, 0)).
 *  - Brier decomposition (Murphy 1973) of the top-label outcome, over every
 *    row (gpleiss/hollance rows of p = 0, in no bin, form one more group):
 *    REL = sum_b (W_b/W) (conf_b - acc_b)^2, RES = sum_b (W_b/W) (acc_b -
 *    acc)^2, UNC = acc (1 - acc).  REL - RES + UNC equals the top-label
 *    Brier score only up to the within-bin terms (Stephenson et al. 2008):
 *    Brier = REL - RES + UNC + (1/W) sum_b sum_{i in b} w_i [(p_i -
 *    conf_b)^2 - 2 (p_i - conf_b)(c_i - acc_b)].
 */
#include "internal.h"

/* ECE_over, ECE_under and the debiased L2 error from the bins. */
static void gap_parts(calib_metrics *m, double w_ece)
{
    double over = 0.0, under = 0.0, s = 0.0;
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *x = &m->bins[b];
        if (!(x->weight > 0.0))
            continue;
        const double share = x->weight / w_ece;
        const double gap = x->mean_confidence - x->accuracy;
        if (gap > 0.0)
            over += share * gap;
        else
            under += share * -gap;
        /* Kumar et al.: a bin of fewer than 2 rows adds 0 */
        if (x->weight >= 2.0) {
            const double a = x->accuracy;
            s += share * (gap * gap - a * (1.0 - a) / (x->weight - 1.0));
        }
    }
    m->ece_over = over;
    m->ece_under = under;
    m->ece_debiased_l2 = sqrt(s > 0.0 ? s : 0.0);
}

/* REL, RES, UNC over the bins and the rows in no bin (w_out, hit_out). */
static void murphy(calib_metrics *m, double w_out, double hit_out)
{
    const double acc = m->accuracy, w = m->weight;
    double rel = 0.0, res = 0.0;
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *x = &m->bins[b];
        if (!(x->weight > 0.0))
            continue;
        const double gap = x->mean_confidence - x->accuracy;
        const double d = x->accuracy - acc;
        rel += x->weight / w * gap * gap;
        res += x->weight / w * d * d;
    }
    if (w_out > 0.0) {
        /* rows of p = 0 that the rule keeps out of every bin */
        const double a = hit_out / w_out;
        rel += w_out / w * a * a;
        res += w_out / w * (a - acc) * (a - acc);
    }
    m->brier_reliability = rel;
    m->brier_resolution = res;
    m->brier_uncertainty = acc * (1.0 - acc);
}

void calib__bin_extras(calib_metrics *m, double w_ece, double w_out,
                       double hit_out)
{
    gap_parts(m, w_ece);
    murphy(m, w_out, hit_out);
}
