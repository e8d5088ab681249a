/* eval_select.c — what `calib eval` shows beyond the binned core: the
 * compact block of the further metrics (debiased L2 ECE, over/under
 * confidence, Brier decomposition, smooth ECE, classwise ECE, AUROC,
 * AURC, HELM's selective metrics), and --coverage / --risk, which need
 * the whole prediction set in memory.
 */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int cli_eval_levels(const cli_inputs *in, const cli_opts *o,
                    calib_metrics **m, calib_read_stats *st, cli_levels *lv)
{
    calib_dataset *ds = NULL;
    memset(lv, 0, sizeof *lv);
    memset(st, 0, sizeof *st);
    int ex = cli_read_inputs(in, o, &ds);
    if (!ex) {
        calib_dataset_stats(ds, st);
        ex = cli_evaluate(ds, &o->eval, m);
    }
    calib_error err = {0};
    int rc = 0;
    if (!ex) {
        lv->n_coverage = o->n_coverage;
        lv->n_risk = o->n_risk;
        memcpy(lv->coverage, o->coverage, sizeof lv->coverage);
        memcpy(lv->risk, o->risk, sizeof lv->risk);
        rc = calib_accuracy_at_coverage(ds, lv->coverage,
                                        (size_t)lv->n_coverage, lv->accuracy,
                                        o->eval.threads, &err);
    }
    if (!ex && !rc)
        rc = calib_coverage_at_risk(ds, lv->risk, (size_t)lv->n_risk,
                                    lv->reach, o->eval.threads, &err);
    if (!ex && rc)
        ex = cli_fail(rc, &err, NULL);
    calib_dataset_free(ds);
    return ex;
}

/* The shortest %.Ng of x that reads back as x. */
static void level_key(double x, char *buf, size_t size)
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, size, "%.*g", p, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

static json_t *level_object(const double *level, const double *value, int n)
{
    json_t *obj = json_object();
    for (int i = 0; obj && i < n; i++) {
        char key[32];
        level_key(level[i], key, sizeof key);
        json_t *v = isfinite(value[i]) ? json_real(value[i]) : json_null();
        if (json_object_set_new(obj, key, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

int cli_levels_json(const cli_levels *lv, char **json)
{
    json_error_t jerr;
    json_t *obj = json_loads(*json, 0, &jerr);
    json_t *acc = level_object(lv->coverage, lv->accuracy, lv->n_coverage);
    json_t *cov = level_object(lv->risk, lv->reach, lv->n_risk);
    char *text = NULL;
    if (obj && acc && cov &&
        json_object_set_new(obj, "accuracy_at_coverage", acc) == 0 &&
        json_object_set_new(obj, "coverage_at_risk", cov) == 0) {
        acc = cov = NULL;
        text = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17));
    }
    json_decref(obj);
    json_decref(acc);
    json_decref(cov);
    if (!text)
        return cli_nomem();
    free(*json);
    *json = text;
    return 0;
}

static void line(FILE *f, const char *name, double x)
{
    if (isnan(x))
        fprintf(f, "  %-22s %11s\n", name, "n/a");
    else
        fprintf(f, "  %-22s %11.6f\n", name, x);
}

void cli_print_levels(FILE *f, const cli_levels *lv)
{
    char name[64], key[32];
    for (int i = 0; i < lv->n_coverage; i++) {
        level_key(lv->coverage[i], key, sizeof key);
        snprintf(name, sizeof name, "accuracy @ cov %s", key);
        line(f, name, lv->accuracy[i]);
    }
    for (int i = 0; i < lv->n_risk; i++) {
        level_key(lv->risk[i], key, sizeof key);
        snprintf(name, sizeof name, "coverage @ risk %s", key);
        line(f, name, lv->reach[i]);
    }
}

void cli_print_extra(FILE *f, const calib_metrics *m)
{
    fprintf(f, "  %-22s %11.6f %11.6f  (conf > acc | conf < acc)\n",
            "ECE over | under", m->ece_over, m->ece_under);
    line(f, "ECE debiased L2", m->ece_debiased_l2);
    fprintf(f, "  %-22s %11.6f %11.6f %11.6f  (REL RES UNC)\n",
            "Brier decomposition", m->brier_reliability, m->brier_resolution,
            m->brier_uncertainty);
    if (!isnan(m->smece))
        fprintf(f, "  %-22s %11.6f  (bandwidth %.6f)\n", "smooth ECE",
                m->smece, m->smece_bandwidth);
    if (!isnan(m->classwise_ece))
        line(f, "classwise ECE", m->classwise_ece);
    if (!isnan(m->aurc)) {
        line(f, "AUROC (correct)", m->auroc);
        line(f, "AURC", m->aurc);
        line(f, "HELM cov-acc area", m->selective_cov_acc_area);
        line(f, "HELM acc @ 10%", m->selective_acc_at_10);
    }
}
