/* json_out.c — calib_metrics as the JSON object of `calib eval --json`.
 *
 * The keys are DESIGN.md's, written in a fixed order so that outputs diff
 * cleanly.  Numbers go through calib__buf_json_number (%.17g, C locale,
 * non-finite -> null), so a metric that does not apply (NLL of top-label
 * rows, the statistics of an empty bin) is null, never absent.  Groups have
 * the shape of the top level without the read statistics.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static void key(calib__buf *b, const char *name)
{
    calib__buf_puts(b, ",\"");
    calib__buf_puts(b, name);
    calib__buf_puts(b, "\":");
}

static void num(calib__buf *b, const char *name, double x)
{
    key(b, name);
    calib__buf_json_number(b, x);
}

static void count(calib__buf *b, const char *name, size_t x)
{
    key(b, name);
    calib__buf_printf(b, "%zu", x);
}

static void str(calib__buf *b, const char *name, const char *s)
{
    key(b, name);
    calib__buf_json_string(b, s);
}

static void bins(calib__buf *b, const calib_metrics *m)
{
    key(b, "bins");
    calib__buf_puts(b, "[");
    for (size_t i = 0; i < m->n_bins; i++) {
        const calib_bin *x = &m->bins[i];
        calib__buf_puts(b, i ? ",{\"lower\":" : "{\"lower\":");
        calib__buf_json_number(b, x->lower);
        num(b, "upper", x->upper);
        count(b, "count", x->count);
        num(b, "weight", x->weight);
        num(b, "mean_confidence", x->mean_confidence);
        num(b, "accuracy", x->accuracy);
        calib__buf_puts(b, "}");
    }
    calib__buf_puts(b, "]");
}

static void read_stats(calib__buf *b, const calib_read_stats *r)
{
    count(b, "rows_read", r->rows_read);
    count(b, "rows_used", r->rows_used);
    count(b, "rows_rejected", r->rows_rejected);
    count(b, "values_clamped", r->values_clamped);
    count(b, "rows_sum_off", r->rows_sum_off);
}

static void object(calib__buf *b, const calib_metrics *m,
                   const calib_read_stats *r)
{
    calib__buf_printf(b, "{\"n\":%zu", m->n);
    key(b, "classes");
    if (m->classes)
        calib__buf_printf(b, "%zu", m->classes);
    else
        calib__buf_puts(b, "null");
    num(b, "accuracy", m->accuracy);
    num(b, "mean_confidence", m->mean_confidence);
    num(b, "ece", m->ece);
    num(b, "mce", m->mce);
    num(b, "rmsce", m->rmsce);
    num(b, "nll", m->nll);
    count(b, "nll_clipped_rows", m->nll_clipped_rows);
    key(b, "nll_from_probs");
    calib__buf_puts(b, m->nll_from_probs ? "true" : "false");
    num(b, "brier", m->brier);
    str(b, "brier_kind",
        m->brier_kind == CALIB_BRIER_TOPLABEL ? "top-label" : "multiclass");
    bins(b, m);
    str(b, "binning", m->binning == CALIB_BINNING_MASS ? "mass" : "width");
    str(b, "bin_rule", calib_bin_rule_name(m->rule));
    count(b, "n_bins", m->n_bins);
    num(b, "weight", m->weight);
    count(b, "ece_n", m->ece_n);
    for (int id = CALIB_M_ECE_DEBIASED_L2; id < CALIB_M_COUNT; id++) {
        num(b, calib_metric_name((calib_metric_id)id),
            calib_metric_value(m, (calib_metric_id)id));
        if (id == CALIB_M_SMECE)
            num(b, "smece_bandwidth", m->smece_bandwidth);
    }
    if (m->has_ci) {
        num(b, "ci_level", m->ci_level);
        key(b, "ci_resamples");
        calib__buf_printf(b, "%d", m->ci_resamples);
        key(b, "ci_seed");
        calib__buf_printf(b, "%llu", (unsigned long long)m->ci_seed);
        for (int id = 0; id < CALIB_M_COUNT; id++) {
            char name[64];
            snprintf(name, sizeof name, "%s_ci",
                     calib_metric_name((calib_metric_id)id));
            key(b, name);
            calib__buf_puts(b, "[");
            calib__buf_json_number(b, m->ci[id][0]);
            calib__buf_puts(b, ",");
            calib__buf_json_number(b, m->ci[id][1]);
            calib__buf_puts(b, "]");
        }
    }
    if (r)
        read_stats(b, r);
    if (m->n_groups) {
        key(b, "groups");
        calib__buf_puts(b, "{");
        for (size_t g = 0; g < m->n_groups; g++) {
            if (g)
                calib__buf_puts(b, ",");
            calib__buf_json_string(b, m->group_names[g]);
            calib__buf_puts(b, ":");
            object(b, m->groups[g], NULL);
        }
        calib__buf_puts(b, "}");
    }
    calib__buf_puts(b, "}");
}

int calib_metrics_to_json(const calib_metrics *m, const calib_read_stats *read,
                          char **json, calib_error *err)
{
    if (json)
        *json = NULL;
    if (!m || !json)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL metrics or output");
    calib__buf b = {0};
    object(&b, m, read);
    if (b.failed || !b.s) {
        free(b.s);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    *json = b.s;
    return calib__ok(err);
}
