/* tables.c — the metric tables the commands print (`eval`, `fit`, `demo`,
 * `compare`, `merge`): what was read, the metrics with their intervals,
 * before/after pairs, the per-bin table and the per-group lines.
 */
#include "cli.h"

#include <math.h>
#include <string.h>

static void warn_line(const char *text, void *ctx)
{
    fprintf((FILE *)ctx, "  %-22s %s\n", "warning", text);
}

static const char *kind_name(const calib_metrics *m)
{
    if (m->brier_kind == CALIB_BRIER_TOPLABEL)
        return "top-label";
    return m->nll_from_probs ? "probabilities" : "logits";
}

void cli_print_read_stats(FILE *f, const char *path,
                          const calib_read_stats *st, const calib_metrics *m)
{
    fprintf(f, "  %-22s %s\n", "file", path);
    fprintf(f, "  %-22s %zu read, %zu used, %zu rejected\n", "rows",
            st->rows_read, st->rows_used, st->rows_rejected);
    if (m->classes)
        fprintf(f, "  %-22s %zu (%s)\n", "classes", m->classes,
                kind_name(m));
    else
        fprintf(f, "  %-22s %s\n", "rows hold", kind_name(m));
    cli_each_warning(st, m, warn_line, f);
    if (m->nll_from_probs && !m->nll_clipped_rows)
        fprintf(f, "  %-22s %s\n", "note",
                "NLL from probabilities, q_label clipped at 1e-15 (no row "
                "was)");
}

static void print_num(FILE *f, double x)
{
    if (isnan(x))
        fprintf(f, " %11s", "n/a");
    else
        fprintf(f, " %11.6f", x);
}

static const char *brier_label(const calib_metrics *m)
{
    return m->brier_kind == CALIB_BRIER_TOPLABEL ? "Brier (top-label)"
                                                 : "Brier (multiclass)";
}

static void print_binning(FILE *f, const calib_metrics *m)
{
    if (m->binning == CALIB_BINNING_MASS)
        fprintf(f, "  (%zu equal-mass bins)\n", m->n_bins);
    else
        fprintf(f, "  (%zu equal-width bins, %s rule)\n", m->n_bins,
                calib_bin_rule_name(m->rule));
}

void cli_print_ci(FILE *f, const calib_metrics *m, calib_metric_id id)
{
    if (!m->has_ci)
        return;
    if (isnan(m->ci[id][0]))
        fprintf(f, "  %-23s", "");
    else
        fprintf(f, "  [%9.6f, %9.6f]", m->ci[id][0], m->ci[id][1]);
}

static void print_ci_note(FILE *f, const calib_metrics *m)
{
    if (m->has_ci)
        fprintf(f, "  ([lower, upper]: %g %% bootstrap percentile intervals, "
                   "%d resamples, seed %llu)\n", 100.0 * m->ci_level,
                m->ci_resamples, (unsigned long long)m->ci_seed);
}

/* One metric per line (rows 0..6 are metric ids 0..6), a column for each
 * of ms[0..n); one column is followed by its intervals when it has them. */
static void print_rows(FILE *f, const calib_metrics *const *ms, int n)
{
    const char *names[] = {"accuracy", "mean confidence", "ECE", "MCE",
                           "RMSCE", "NLL", brier_label(ms[0])};
    for (int i = 0; i < 7; i++) {
        fprintf(f, "  %-22s", names[i]);
        for (int j = 0; j < n; j++) {
            const calib_metrics *m = ms[j];
            const double v[] = {m->accuracy, m->mean_confidence, m->ece,
                                m->mce, m->rmsce, m->nll, m->brier};
            print_num(f, v[i]);
        }
        if (n == 1)
            cli_print_ci(f, ms[0], (calib_metric_id)i);
        fputc('\n', f);
    }
}

void cli_print_metrics(FILE *f, const calib_metrics *m)
{
    print_rows(f, &m, 1);
    print_binning(f, m);
    print_ci_note(f, m);
}

void cli_print_columns(FILE *f, const char *const *heads,
                       const calib_metrics *const *ms, int n)
{
    fprintf(f, "  %-22s", "");
    for (int j = 0; j < n; j++)
        fprintf(f, " %11s", heads[j]);
    fputc('\n', f);
    print_rows(f, ms, n);
    print_binning(f, ms[0]);
}

void cli_print_pair(FILE *f, const calib_metrics *before,
                    const calib_metrics *after)
{
    const char *const heads[2] = {"before", "after"};
    const calib_metrics *const ms[2] = {before, after};
    cli_print_columns(f, heads, ms, 2);
}

void cli_print_bins(FILE *f, const calib_metrics *m)
{
    fprintf(f, "  %4s %9s %9s %9s %11s %9s %10s\n", "bin", "lower", "upper",
            "count", "mean conf", "accuracy", "gap");
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *x = &m->bins[b];
        fprintf(f, "  %4zu %9.6f %9.6f %9zu", b + 1, x->lower, x->upper,
                x->count);
        if (x->count)
            fprintf(f, " %11.6f %9.6f %+10.6f", x->mean_confidence,
                    x->accuracy, x->accuracy - x->mean_confidence);
        fputc('\n', f);
    }
    fprintf(f, "  (gap = accuracy - mean conf; negative: over-confident)\n");
}

static int name_width(const calib_metrics *m)
{
    size_t w = 7;
    for (size_t g = 0; g < m->n_groups; g++)
        if (strlen(m->group_names[g]) > w)
            w = strlen(m->group_names[g]);
    return (int)(w > 32 ? 32 : w);
}

static void print_group_line(FILE *f, int w, const char *name,
                             const calib_metrics *m)
{
    fprintf(f, "  %-*.*s %8zu", w, w, name, m->n);
    const double v[] = {m->accuracy, m->mean_confidence, m->ece,
                        m->mce, m->nll, m->brier};
    for (int i = 0; i < 6; i++)
        print_num(f, v[i]);
    cli_print_ci(f, m, CALIB_M_ECE);
    fputc('\n', f);
}

void cli_print_groups(FILE *f, const calib_metrics *m)
{
    const int w = name_width(m);
    fprintf(f, "  %-*s %8s %11s %11s %11s %11s %11s %11s%s\n", w, "group",
            "n", "accuracy", "conf", "ECE", "MCE", "NLL", "Brier",
            m->has_ci ? "  ECE interval" : "");
    for (size_t g = 0; g < m->n_groups; g++)
        print_group_line(f, w, m->group_names[g], m->groups[g]);
    print_group_line(f, w, "overall", m);
}

void cli_print_group_pair(FILE *f, const calib_metrics *before,
                          const calib_metrics *after)
{
    const int w = name_width(before);
    fprintf(f, "  %-*s %8s %11s %11s %11s %11s %11s\n", w, "group", "n",
            "accuracy", "ECE before", "ECE after", "NLL before",
            "NLL after");
    for (size_t g = 0; g <= before->n_groups && g <= after->n_groups; g++) {
        const int all = g == before->n_groups;
        const calib_metrics *b = all ? before : before->groups[g];
        const calib_metrics *a = all ? after : after->groups[g];
        fprintf(f, "  %-*.*s %8zu", w, w,
                all ? "overall" : before->group_names[g], b->n);
        const double v[] = {b->accuracy, b->ece, a->ece, b->nll, a->nll};
        for (int i = 0; i < 5; i++)
            print_num(f, v[i]);
        fputc('\n', f);
    }
}
