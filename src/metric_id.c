/* metric_id.c — every scalar metric by number: its JSON key and its value,
 * so that the bootstrap, the JSON writer and bindings treat them alike. */
#include "internal.h"

#include <math.h>

static const char *const names[CALIB_M_COUNT] = {
    [CALIB_M_ACCURACY] = "accuracy",
    [CALIB_M_MEAN_CONFIDENCE] = "mean_confidence",
    [CALIB_M_ECE] = "ece",
    [CALIB_M_MCE] = "mce",
    [CALIB_M_RMSCE] = "rmsce",
    [CALIB_M_NLL] = "nll",
    [CALIB_M_BRIER] = "brier",
    [CALIB_M_ECE_DEBIASED_L2] = "ece_debiased_l2",
    [CALIB_M_ECE_OVER] = "ece_over",
    [CALIB_M_ECE_UNDER] = "ece_under",
    [CALIB_M_SMECE] = "smece",
    [CALIB_M_CLASSWISE_ECE] = "classwise_ece",
    [CALIB_M_BRIER_RELIABILITY] = "brier_reliability",
    [CALIB_M_BRIER_RESOLUTION] = "brier_resolution",
    [CALIB_M_BRIER_UNCERTAINTY] = "brier_uncertainty",
    [CALIB_M_AUROC] = "auroc",
    [CALIB_M_AURC] = "aurc",
    [CALIB_M_SELECTIVE_COV_ACC_AREA] = "selective_cov_acc_area",
    [CALIB_M_SELECTIVE_ACC_AT_10] = "selective_acc_at_10",
};

const char *calib_metric_name(calib_metric_id id)
{
    return (unsigned)id < CALIB_M_COUNT ? names[id] : NULL;
}

double calib_metric_value(const calib_metrics *m, calib_metric_id id)
{
    if (!m)
        return NAN;
    switch (id) {
    case CALIB_M_ACCURACY: return m->accuracy;
    case CALIB_M_MEAN_CONFIDENCE: return m->mean_confidence;
    case CALIB_M_ECE: return m->ece;
    case CALIB_M_MCE: return m->mce;
    case CALIB_M_RMSCE: return m->rmsce;
    case CALIB_M_NLL: return m->nll;
    case CALIB_M_BRIER: return m->brier;
    case CALIB_M_ECE_DEBIASED_L2: return m->ece_debiased_l2;
    case CALIB_M_ECE_OVER: return m->ece_over;
    case CALIB_M_ECE_UNDER: return m->ece_under;
    case CALIB_M_SMECE: return m->smece;
    case CALIB_M_CLASSWISE_ECE: return m->classwise_ece;
    case CALIB_M_BRIER_RELIABILITY: return m->brier_reliability;
    case CALIB_M_BRIER_RESOLUTION: return m->brier_resolution;
    case CALIB_M_BRIER_UNCERTAINTY: return m->brier_uncertainty;
    case CALIB_M_AUROC: return m->auroc;
    case CALIB_M_AURC: return m->aurc;
    case CALIB_M_SELECTIVE_COV_ACC_AREA: return m->selective_cov_acc_area;
    case CALIB_M_SELECTIVE_ACC_AT_10: return m->selective_acc_at_10;
    case CALIB_M_COUNT: break;
    }
    return NAN;
}

void calib__metrics_clear_extra(calib_metrics *m)
{
    m->ece_debiased_l2 = m->ece_over = m->ece_under = NAN;
    m->smece = m->smece_bandwidth = m->classwise_ece = NAN;
    m->brier_reliability = m->brier_resolution = m->brier_uncertainty = NAN;
    m->auroc = m->aurc = NAN;
    m->selective_cov_acc_area = m->selective_acc_at_10 = NAN;
    m->has_ci = 0;
    m->ci_level = NAN;
    m->ci_resamples = 0;
    m->ci_seed = 0;
    for (int i = 0; i < CALIB_M_COUNT; i++)
        m->ci[i][0] = m->ci[i][1] = NAN;
}
