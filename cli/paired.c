/* paired.c — `calib compare A B --paired`: the paired bootstrap of two
 * prediction sets of the same rows, as a table and as JSON.
 *
 * The sets are read whole (a replicate draws rows from both), evaluated as
 * compare evaluates any set, and handed to calib_paired_bootstrap with
 * the command line's --bootstrap (default 1000), --ci and --seed.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>

int cli_paired_read(const cli_opts *o, int i, calib_dataset **ds,
                    calib_metrics **m, calib_read_stats *st)
{
    cli_inputs in;
    *ds = NULL;
    *m = NULL;
    int ex = cli_inputs_expand(&o->pos[i], 1, &in);
    if (!ex)
        ex = cli_read_inputs(&in, o, ds);
    if (!ex) {
        calib_dataset_stats(*ds, st);
        ex = cli_evaluate(*ds, &o->eval, m);
    }
    cli_inputs_free(&in);
    return ex;
}

int cli_paired_run(const cli_opts *o, const calib_dataset *a,
                   const calib_dataset *b, calib_paired **p)
{
    calib_eval_options eo = o->eval;
    if (!eo.bootstrap)
        eo.bootstrap = 1000;
    calib_error err = {0};
    const int rc = calib_paired_bootstrap(a, b, &eo, p, &err);
    return rc ? cli_fail(rc, &err, NULL) : 0;
}

/* Every metric the paired bootstrap has a difference for. */
static int shown(const calib_paired_metric *pm)
{
    return !isnan(pm->diff);
}

void cli_paired_print(FILE *f, const calib_paired *p, const char *la,
                      const char *lb)
{
    fprintf(f, "\n  paired bootstrap: %s - %s on the same %zu rows, %d "
               "resamples, seed %llu\n", lb, la, p->n, p->resamples,
            (unsigned long long)p->seed);
    fprintf(f, "  %-24s %12s  %-27s %9s\n", "metric", "difference",
            "interval", "P(d <= 0)");
    for (int id = 0; id < CALIB_M_COUNT; id++) {
        const calib_paired_metric *pm = &p->m[id];
        if (!shown(pm))
            continue;
        fprintf(f, "  %-24s %+12.6f  [%+11.6f, %+11.6f]  %9.4f\n",
                calib_metric_name((calib_metric_id)id), pm->diff, pm->ci[0],
                pm->ci[1], pm->p_le_0);
    }
    fprintf(f, "  (difference = %s - %s; [lower, upper]: %g %% percentile "
               "interval of the\n   resampled differences; P(d <= 0): the "
               "fraction of resamples where %s's\n   value is at most %s's "
               "- for ECE, NLL, Brier, 1 - P is a one-sided\n   bootstrap "
               "p-value of \"%s is better\")\n", lb, la,
            100.0 * p->ci_level, lb, la, lb);
}

static void num(FILE *f, double x)
{
    if (isfinite(x))
        fprintf(f, "%.17g", x);
    else
        fputs("null", f);
}

void cli_paired_json(FILE *f, const calib_paired *p)
{
    fputs(", \"paired\": {", f);
    int first = 1;
    for (int id = 0; id < CALIB_M_COUNT; id++) {
        const calib_paired_metric *pm = &p->m[id];
        if (!shown(pm))
            continue;
        fprintf(f, "%s\"%s\": {\"diff\": ", first ? "" : ", ",
                calib_metric_name((calib_metric_id)id));
        num(f, pm->diff);
        fputs(", \"ci\": [", f);
        num(f, pm->ci[0]);
        fputs(", ", f);
        num(f, pm->ci[1]);
        fputs("], \"p_le_0\": ", f);
        num(f, pm->p_le_0);
        fputs(", \"a\": ", f);
        num(f, pm->a);
        fputs(", \"b\": ", f);
        num(f, pm->b);
        fprintf(f, ", \"replicates\": %zu}", pm->replicates);
        first = 0;
    }
    fprintf(f, "}, \"paired_options\": {\"n\": %zu, \"ci_level\": ", p->n);
    num(f, p->ci_level);
    fprintf(f, ", \"resamples\": %d, \"seed\": %llu}", p->resamples,
            (unsigned long long)p->seed);
}
