/* cmd_compare.c — `calib compare A B [...]`: several prediction sets side
 * by side, and how each differs from the first.
 *
 * Each argument is one set (a file, or a directory whose files become its
 * groups, as in `eval`); each is evaluated with the same bins.  The table
 * puts the sets' metrics in columns, then the differences from the first
 * set (base vs fine-tuned, in-domain vs shifted).  When the sets have
 * groups (--group, or directories), a second table lists every group
 * sorted by the last set's calibration gap, mean confidence - accuracy,
 * most over-confident first: the topics where a fine-tuned model claims
 * more than it knows come out on top.  --diagram draws the sets' overlaid
 * reliability diagram (calib_render_diagram).
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS 8

static const char usage[] =
    "usage: calib compare A B [C...] [--label NAME]... [input options]\n"
    "                     [--group C] [--bins M] [--binning width|mass]\n"
    "                     [--bin-rule R] [--diagram OUT.svg|png|pdf] [--json]\n"
    "                     [-o OUT] [--ci L] [--bootstrap R] [--seed S]\n"
    "                     [--paired]\n"
    "\n"
    "Evaluates each set (a file, or a directory: its files are the groups)\n"
    "with the same bins and prints their metrics side by side with the\n"
    "differences from the first set.  With groups, a per-group table sorted\n"
    "by the last set's gap (mean confidence - accuracy), most over-confident\n"
    "first.  At most 8 sets.\n"
    "\n"
    "  --label NAME         the next set's name (once per set; default: the\n"
    "                       file names)\n"
    "  --label-col C        the CSV label column (what eval calls --label)\n"
    "  --diagram OUT        also draw the overlaid reliability diagram\n"
    "  --json               write JSON: sets, differences, groups\n"
    "  --ci L, --bootstrap R, --seed S\n"
    "                       each set's bootstrap intervals, as in eval\n"
    "  --paired             A and B hold the same rows in the same order\n"
    "                       (two models on one benchmark): resample both\n"
    "                       together and give B - A of every metric with its\n"
    "                       interval and P(d <= 0); 1000 resamples unless\n"
    "                       --bootstrap says (sets' own intervals only with\n"
    "                       --ci or --bootstrap)\n"
    "  input and metric options as for calib eval (see calib eval --help)\n";

typedef struct set {
    const char *label;
    char *own_label;
    calib_metrics *m;
    calib_read_stats st;
    calib_dataset *ds;        /* --paired: the rows, read whole */
} set;

/* ---- metrics by name ----------------------------------------------- */

enum { N_ROWS = 8 };
static const char *const row_names[N_ROWS] = {
    "accuracy", "mean confidence", "gap (conf - acc)", "ECE", "MCE", "RMSCE",
    "NLL", "Brier"};
static const char *const json_names[N_ROWS] = {
    "accuracy", "mean_confidence", "gap", "ece", "mce", "rmsce", "nll",
    "brier"};

static double metric(const calib_metrics *m, int r)
{
    const double v[N_ROWS] = {m->accuracy, m->mean_confidence,
                              m->mean_confidence - m->accuracy,
                              m->ece, m->mce, m->rmsce, m->nll, m->brier};
    return v[r];
}

static void cell(FILE *f, double x, int sign)
{
    if (isnan(x))
        fprintf(f, " %12s", "n/a");
    else
        fprintf(f, sign ? " %+12.6f" : " %12.6f", x);
}

/* ---- the overall table --------------------------------------------- */

/* Each set's intervals of the metrics with ids 0..6. */
static void print_intervals(FILE *f, const set *s, int n)
{
    static const char *const names[7] = {"accuracy", "mean confidence",
                                         "ECE", "MCE", "RMSCE", "NLL",
                                         "Brier"};
    fprintf(f, "  %g %% bootstrap percentile intervals (%d resamples, seed "
               "%llu)\n", 100.0 * s[0].m->ci_level, s[0].m->ci_resamples,
            (unsigned long long)s[0].m->ci_seed);
    for (int id = 0; id < 7; id++) {
        fprintf(f, "  %-18s", names[id]);
        for (int i = 0; i < n; i++)
            cli_print_ci(f, s[i].m, (calib_metric_id)id);
        fputc('\n', f);
    }
}

static void print_sets(FILE *f, const set *s, int n)
{
    fprintf(f, "  %-18s", "");
    for (int i = 0; i < n; i++)
        fprintf(f, " %12.12s", s[i].label);
    for (int i = 1; i < n; i++) {
        char d[64];
        snprintf(d, sizeof d, "d:%.10s", s[i].label);
        fprintf(f, " %12.12s", d);
    }
    fprintf(f, "\n  %-18s", "n");
    for (int i = 0; i < n; i++)
        fprintf(f, " %12zu", s[i].m->n);
    fputc('\n', f);
    for (int r = 0; r < N_ROWS; r++) {
        fprintf(f, "  %-18s", row_names[r]);
        for (int i = 0; i < n; i++)
            cell(f, metric(s[i].m, r), r == 2);
        for (int i = 1; i < n; i++)
            cell(f, metric(s[i].m, r) - metric(s[0].m, r), 1);
        fputc('\n', f);
    }
    if (n > 1)
        fprintf(f, "  (d:X = X minus %s)\n", s[0].label);
    if (s[0].m->has_ci)
        print_intervals(f, s, n);
    fprintf(f, "  (gap > 0: over-confident; %zu bins, %s)\n", s[0].m->n_bins,
            s[0].m->binning == CALIB_BINNING_MASS
                ? "equal-mass"
                : calib_bin_rule_name(s[0].m->rule));
}

/* ---- groups -------------------------------------------------------- */

/* The union of group names over the sets, in first-appearance order. */
typedef struct group_row {
    const char *name;
    const calib_metrics *g[MAX_SETS];  /* NULL where a set lacks it */
    double key;
} group_row;

static int by_gap(const void *a, const void *b)
{
    const double x = ((const group_row *)a)->key;
    const double y = ((const group_row *)b)->key;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Builds the sorted group rows into *out (*n_out rows); NULL when none. */
static int group_rows(const set *s, int n, group_row **out, size_t *n_out)
{
    size_t cap = 0;
    *out = NULL;
    *n_out = 0;
    for (int i = 0; i < n; i++)
        cap += s[i].m->n_groups;
    if (cap == 0)
        return 0;
    group_row *rows = calloc(cap, sizeof *rows);
    if (!rows)
        return cli_nomem();
    for (int i = 0; i < n; i++)
        for (size_t g = 0; g < s[i].m->n_groups; g++) {
            const char *name = s[i].m->group_names[g];
            size_t r = 0;
            while (r < *n_out && strcmp(rows[r].name, name) != 0)
                r++;
            if (r == *n_out)
                rows[(*n_out)++].name = name;
            rows[r].g[i] = s[i].m->groups[g];
        }
    for (size_t r = 0; r < *n_out; r++) {
        rows[r].key = -INFINITY;
        for (int i = n - 1; i >= 0 && rows[r].key == -INFINITY; i--)
            if (rows[r].g[i])
                rows[r].key = metric(rows[r].g[i], 2);
    }
    qsort(rows, *n_out, sizeof *rows, by_gap);
    *out = rows;
    return 0;
}

static void print_groups(FILE *f, const set *s, int n, const group_row *rows,
                         size_t n_rows)
{
    fprintf(f, "\n  per group, sorted by %s's gap (mean confidence - "
               "accuracy), most over-confident first\n", s[n - 1].label);
    fprintf(f, "  %-24s", "group");
    for (int i = 0; i < n; i++)
        fprintf(f, " %8.8s %9s %9s %9s", s[i].label, "acc", "gap", "ECE");
    fputc('\n', f);
    for (size_t r = 0; r < n_rows; r++) {
        fprintf(f, "  %-24.24s", rows[r].name);
        for (int i = 0; i < n; i++) {
            const calib_metrics *g = rows[r].g[i];
            if (!g) {
                fprintf(f, " %8s %9s %9s %9s", "-", "", "", "");
                continue;
            }
            fprintf(f, " %8zu %9.4f %+9.4f %9.4f", g->n, g->accuracy,
                    metric(g, 2), g->ece);
        }
        fputc('\n', f);
    }
}

/* ---- JSON ---------------------------------------------------------- */

static void json_num(FILE *f, const char *key, double x)
{
    if (isfinite(x))
        fprintf(f, "\"%s\": %.17g", key, x);
    else
        fprintf(f, "\"%s\": null", key);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", (unsigned char)*s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_metrics(FILE *f, const calib_metrics *m)
{
    fprintf(f, "{\"n\": %zu", m->n);
    for (int r = 0; r < N_ROWS; r++) {
        fputs(", ", f);
        json_num(f, json_names[r], metric(m, r));
    }
    fputc('}', f);
}

static int json_sets(FILE *f, const cli_opts *o, const set *s, int n)
{
    fputs("{\"sets\": [", f);
    for (int i = 0; i < n; i++) {
        char *js = NULL;
        const int ex = cli_metrics_json(s[i].m, &s[i].st, NULL, NULL, &js);
        if (ex)
            return ex;
        fprintf(f, "%s{\"label\": ", i ? ", " : "");
        json_str(f, s[i].label);
        fputs(", \"path\": ", f);
        json_str(f, o->pos[i]);
        fprintf(f, ", \"metrics\": %s}", js);
        free(js);
    }
    fputs("], \"differences\": [", f);
    for (int i = 1; i < n; i++) {
        fprintf(f, "%s{\"label\": ", i > 1 ? ", " : "");
        json_str(f, s[i].label);
        fputs(", \"reference\": ", f);
        json_str(f, s[0].label);
        for (int r = 0; r < N_ROWS; r++) {
            fputs(", ", f);
            json_num(f, json_names[r], metric(s[i].m, r) - metric(s[0].m, r));
        }
        fputc('}', f);
    }
    fputc(']', f);
    return 0;
}

static void json_groups(FILE *f, int n, const group_row *rows, size_t n_rows)
{
    fputs(", \"groups\": [", f);
    for (size_t r = 0; r < n_rows; r++) {
        fprintf(f, "%s{\"group\": ", r ? ", " : "");
        json_str(f, rows[r].name);
        fputs(", \"sets\": [", f);
        for (int i = 0; i < n; i++) {
            fputs(i ? ", " : "", f);
            if (rows[r].g[i])
                json_metrics(f, rows[r].g[i]);
            else
                fputs("null", f);
        }
        fputs("]}", f);
    }
    fputc(']', f);
}

/* ---- the subcommand ------------------------------------------------ */

static int write_compare(const cli_opts *o, const set *s, int n,
                         const calib_paired *p)
{
    group_row *rows = NULL;
    size_t n_rows = 0;
    int ex = group_rows(s, n, &rows, &n_rows);
    cli_out out;
    if (!ex)
        ex = cli_out_open(&out, o->out);
    if (ex) {
        free(rows);
        return ex;
    }
    if (o->json) {
        ex = json_sets(out.f, o, s, n);
        json_groups(out.f, n, rows, n_rows);
        if (p)
            cli_paired_json(out.f, p);
        fputs("}\n", out.f);
    } else {
        print_sets(out.f, s, n);
        if (p)
            cli_paired_print(out.f, p, s[0].label, s[1].label);
        if (n_rows)
            print_groups(out.f, s, n, rows, n_rows);
    }
    free(rows);
    if (ex) {
        cli_out_abort(&out);
        return ex;
    }
    return cli_out_commit(&out);
}

static int write_diagram(const cli_opts *o, const set *s, int n)
{
    calib_plot_format fmt;
    calib_plot_options po;
    calib_error err = {0};
    const calib_metrics *series[MAX_SETS];
    const char *labels[MAX_SETS];
    if (calib_plot_format_from_path(o->diagram, &fmt) != CALIB_OK) {
        cli_error("compare: --diagram %s: use .svg, .png, .pdf or .txt",
                  o->diagram);
        return CLI_EX_USAGE;
    }
    for (int i = 0; i < n; i++)
        series[i] = s[i].m, labels[i] = s[i].label;
    calib_plot_options_init(&po);
    unsigned char *buf = NULL;
    size_t len = 0;
    const int rc = calib_render_diagram(series, labels, (size_t)n, fmt, &po,
                                        &buf, &len, &err);
    if (rc)
        return cli_fail(rc, &err, NULL);
    cli_out out;
    int ex = cli_out_open(&out, o->diagram);
    if (!ex)
        ex = cli_out_write(&out, buf, len);
    free(buf);
    return ex;
}

static void warn_set(const char *text, void *ctx)
{
    cli_warn("%s: %s", (const char *)ctx, text);
}

/* Evaluates set i: its file, or its directory's files as groups. */
static int eval_set(const cli_opts *o, int i, set *s)
{
    int ex;
    if (o->paired) {
        ex = cli_paired_read(o, i, &s->ds, &s->m, &s->st);
    } else {
        cli_inputs in;
        ex = cli_inputs_expand(&o->pos[i], 1, &in);
        if (!ex)
            ex = cli_eval_inputs(&in, o, &s->m, &s->st);
        cli_inputs_free(&in);
    }
    if (ex)
        return ex;
    s->label = i < o->n_names ? o->names[i] : NULL;
    if (!s->label) {
        if (!(s->own_label = cli_task_name(o->pos[i])))
            return cli_nomem();
        s->label = s->own_label;
    }
    cli_each_warning(&s->st, s->m, warn_set, (void *)s->label);
    return 0;
}

static int check_args(const cli_opts *o)
{
    if (o->n_pos < 2 || o->n_pos > MAX_SETS) {
        cli_error("compare: 2 to %d sets expected, got %d (see calib compare "
                  "--help)", MAX_SETS, o->n_pos);
        return CLI_EX_USAGE;
    }
    if (o->paired && o->n_pos != 2) {
        cli_error("compare: --paired compares two sets, A and B, not %d",
                  o->n_pos);
        return CLI_EX_USAGE;
    }
    if (o->n_names && o->n_names != o->n_pos) {
        cli_error("compare: %d labels for %d sets", o->n_names, o->n_pos);
        return CLI_EX_USAGE;
    }
    return 0;
}

int cmd_compare(int argc, char **argv)
{
    cli_opts o;
    int ex = cli_parse(argc, argv, "compare",
                       CLI_OPT_INPUT | CLI_OPT_EVAL | CLI_OPT_OUT |
                           CLI_OPT_JSON | CLI_OPT_NAMES | CLI_OPT_DIAGRAM |
                           CLI_OPT_CI | CLI_OPT_PAIRED,
                       &o);
    if (ex)
        return ex;
    if (o.help) {
        fputs(usage, stdout);
        return cli_stdout_commit();
    }
    if ((ex = check_args(&o)) != 0)
        return ex;
    set s[MAX_SETS];
    memset(s, 0, sizeof s);
    int n = 0;
    for (; n < o.n_pos && !ex; n++)
        ex = eval_set(&o, n, &s[n]);
    calib_paired *p = NULL;
    if (!ex && o.paired)
        ex = cli_paired_run(&o, s[0].ds, s[1].ds, &p);
    if (!ex && o.diagram)
        ex = write_diagram(&o, s, n);
    if (!ex)
        ex = write_compare(&o, s, n, p);
    calib_paired_free(p);
    for (int i = 0; i < n; i++) {
        calib_metrics_free(s[i].m);
        calib_dataset_free(s[i].ds);
        free(s[i].own_label);
    }
    return ex;
}
