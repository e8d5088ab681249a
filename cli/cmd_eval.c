/* cmd_eval.c — `calib eval`: the metrics of one prediction set, as a table
 * or JSON; with --calibrator or --val/--test, before and after.
 *
 * What it reads (one file, several, a directory; streamed where the
 * binning allows) is inputs.c's.  The text output ends the metric table
 * with a small reliability diagram (calib_render_diagram, CALIB_PLOT_TEXT):
 * Unicode blocks, or ASCII with --ascii, none with --no-diagram (the
 * table printers, shared with `fit`, `demo`, `compare` and `merge`, are
 * in tables.c).  With --partial it writes the accumulator's state instead.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: calib eval FILE [input options] [--bins M] [--binning width|mass]\n"
    "                 [--bin-rule R] [--threads N] [--json] [-o OUT]\n"
    "                 [--ascii] [--no-diagram] [--ci L] [--bootstrap R]\n"
    "                 [--seed S]\n"
    "       calib eval TEST --calibrator CAL.json [options]\n"
    "       calib eval --val VAL --test TEST [options]\n"
    "       calib eval FILE... [input options] [--bins M] [--bin-rule R]\n"
    "                 --partial [--no-values | --value-limit N] [-o PART.json]\n"
    "\n"
    "Prints accuracy, mean confidence, ECE, MCE, RMSCE, NLL, Brier, a small\n"
    "reliability diagram and the reliability table of FILE ('-' reads\n"
    "standard input).  With --calibrator or --val/--test, TEST before and\n"
    "after recalibration, both drawn in one diagram.\n"
    "\n"
    "FILE may be several files or a directory: each file's task name is its\n"
    "group (lm-eval's samples_<task>_<date>.jsonl gives <task>).\n"
    "\n"
    "Input options:\n"
    "  --format F             npy, csv, tsv, lm-eval or openai (default: from\n"
    "                         the extension, .jsonl by content; a trailing\n"
    "                         .gz is decompressed)\n"
    "  --norm none|chars|bytes  lm-eval: loglik as logged, or divided by the\n"
    "                         choice's length (chars: lm-eval's acc_norm)\n"
    "  --seq-conf MODE        OpenAI/vLLM logprobs: geomean (default, the\n"
    "                         1/perplexity), product, mean, min, or answer\n"
    "  --choices A,B,C,D      the answer options of --seq-conf answer\n"
    "  --correct PATH         JSONL: the correctness field, a dotted path\n"
    "  --conf C --correct C   top-label CSV columns (for a 1-D .npy of\n"
    "                         confidences, --correct is the 0/1 .npy)\n"
    "  --pred C --label C     correct = pred == label\n"
    "  --logits COLS          logit columns: comma list or glob ('logit_*')\n"
    "  --probs [COLS]         probability columns (CSV); alone: the .npy holds\n"
    "                         probabilities, not logits\n"
    "  --labels FILE.npy      labels of an (N,K) .npy\n"
    "  --group C --weight C   group and weight columns (JSONL: --group is a\n"
    "                         dotted path)\n"
    "  --label-col C          the label column (as --label)\n"
    "  --skip-bad-rows        skip and count bad rows instead of failing\n"
    "  --max-line BYTES       longest line accepted (default 64M)\n"
    "  --max-gzip-ratio R     refuse gzip inflating over R:1 past 64 MiB\n"
    "                         (default 200; 0: no limit)\n"
    "  --val-labels, --test-labels, --val-correct, --test-correct\n"
    "                         the .npy side files of each set with --val/--test\n"
    "\n"
    "Metric options:\n"
    "  --bins M               number of bins (default 15)\n"
    "  --binning width|mass   equal-width (default) or equal-mass bins\n"
    "  --bin-rule R           sklearn (default), netcal, torchmetrics,\n"
    "                         gpleiss or hollance\n"
    "  --threads N            threads (default 0: every core)\n"
    "  --method M             with --val/--test: the method to fit (temperature,\n"
    "                         platt, beta, vector, histogram, isotonic)\n"
    "  --objective nll|ece|brier  with --val/--test: what the fit minimises\n"
    "  --ci L                 bootstrap percentile intervals at level L: a\n"
    "                         fraction (0.95) or a percent (95); 1000\n"
    "                         resamples unless --bootstrap says\n"
    "  --bootstrap R          R resamples (alone: --ci 0.95)\n"
    "  --seed S               the resampling seed (default 0): the same S\n"
    "                         gives the same intervals on any thread count\n"
    "  --json                 write JSON instead of the table\n"
    "  --ascii                draw the reliability diagram in ASCII only\n"
    "  --no-diagram           no reliability diagram after the metric table\n"
    "  --coverage C,...       accuracy of the ceil(C N) most confident rows\n"
    "  --risk R,...           largest coverage whose error rate is <= R\n"
    "  --no-extra             only the binned metrics (no smooth ECE,\n"
    "                         selective or classwise metrics): equal-width\n"
    "                         bins then stream in bounded memory\n"
    "  --no-scores            no NLL and Brier (null): the binned metrics\n"
    "                         alone, a little faster\n"
    "  -o OUT                 write to OUT (atomically) instead of stdout\n"
    "  --partial              write the partial state of FILE (exact sums, as\n"
    "                         JSON) for calib merge, instead of the metrics;\n"
    "                         a shard of zero rows is fine.  It holds the\n"
    "                         value table of every population (distinct\n"
    "                         confidences with exact sums), so that merge\n"
    "                         gives equal-mass bins too\n"
    "  --no-values            a smaller state without value tables (version\n"
    "                         1): equal-width metrics, NLL and Brier only\n"
    "  --value-limit N        at most N table entries per population (default\n"
    "                         1048576); past it confidences share cells of a\n"
    "                         grid (2^-24, then coarser) and calib merge says\n"
    "                         which equal-mass metrics became approximate\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data, 66 cannot open input,\n"
    "70 internal error, 71 out of memory, 73 cannot create output, 74 I/O error.\n";

/* ---- warnings ------------------------------------------------------ */

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

void cli_each_warning(const calib_read_stats *st, const calib_metrics *m,
                      void (*warn)(const char *text, void *ctx), void *ctx)
{
    char t[256];
    if (st && st->rows_rejected) {
        snprintf(t, sizeof t, "%zu bad row%s skipped (--skip-bad-rows)",
                 st->rows_rejected, plural(st->rows_rejected));
        warn(t, ctx);
    }
    if (st && st->values_clamped) {
        snprintf(t, sizeof t,
                 "%zu value%s within 1e-3 outside [0,1] clamped into [0,1]",
                 st->values_clamped, plural(st->values_clamped));
        warn(t, ctx);
    }
    if (st && st->rows_sum_off) {
        snprintf(t, sizeof t,
                 "%zu probability row%s sum%s to 1 only within 1e-3; used as "
                 "given, not renormalised", st->rows_sum_off,
                 plural(st->rows_sum_off), st->rows_sum_off == 1 ? "s" : "");
        warn(t, ctx);
    }
    if (st && st->rows_disagree) {
        snprintf(t, sizeof t,
                 "%zu row%s where argmax == gold differs from the acc lm-eval "
                 "logged (check --norm, or the target)", st->rows_disagree,
                 plural(st->rows_disagree));
        warn(t, ctx);
    }
    if (st && st->rows_duplicate) {
        snprintf(t, sizeof t,
                 "%zu repeated doc_id line%s (one per filter) ignored, the "
                 "first kept", st->rows_duplicate, plural(st->rows_duplicate));
        warn(t, ctx);
    }
    if (st && st->values_unknown) {
        snprintf(t, sizeof t,
                 "%zu token logprob%s unknown (null or -9999): left out of "
                 "the confidence", st->values_unknown,
                 plural(st->values_unknown));
        warn(t, ctx);
    }
    if (m && m->nll_from_probs && m->nll_clipped_rows) {
        snprintf(t, sizeof t,
                 "NLL from probabilities: q_label of %zu row%s clipped at "
                 "1e-15, as scikit-learn's log_loss", m->nll_clipped_rows,
                 plural(m->nll_clipped_rows));
        warn(t, ctx);
    }
}

static void warn_stderr(const char *text, void *ctx)
{
    cli_warn("%s", text);
}

/* ---- the terminal diagram ------------------------------------------ */

int cli_text_diagram(const calib_metrics *const *m, const char *const *labels,
                     size_t n, int ascii, char **text)
{
    calib_plot_options po;
    calib_plot_options_init(&po);
    po.ascii = ascii;
    unsigned char *buf = NULL;
    size_t len = 0;
    calib_error err = {0};
    const int rc = calib_render_diagram(m, labels, n, CALIB_PLOT_TEXT, &po,
                                        &buf, &len, &err);
    *text = (char *)buf;
    return rc ? cli_fail(rc, &err, NULL) : 0;
}

void cli_print_chart(FILE *f, const char *text)
{
    while (*text) {
        const size_t len = strcspn(text, "\n");
        size_t end = len;
        while (end && text[end - 1] == ' ')
            end--;
        fprintf(f, "  %.*s\n", (int)end, text);
        text += len + (text[len] == '\n');
    }
}

/* The chart the text output of `o` shows, or NULL (--json, --no-diagram). */
static int eval_diagram(const cli_opts *o, const calib_metrics *const *m,
                        const char *const *labels, size_t n, char **text)
{
    *text = NULL;
    if (o->json || o->no_diagram)
        return 0;
    return cli_text_diagram(m, labels, n, o->ascii, text);
}

/* ---- the subcommand ------------------------------------------------ */

static void print_eval(FILE *f, const char *path, const calib_read_stats *st,
                       const calib_metrics *m, const char *const mode[2],
                       const char *diagram, const cli_levels *lv)
{
    cli_print_read_stats(f, path, st, m);
    if (mode[0])
        fprintf(f, "  %-22s %s\n", strcmp(mode[0], "norm")
                                       ? "sequence confidence"
                                       : "loglik norm", mode[1]);
    fputc('\n', f);
    cli_print_metrics(f, m);
    cli_print_extra(f, m);
    if (lv)
        cli_print_levels(f, lv);
    if (diagram) {
        fputc('\n', f);
        cli_print_chart(f, diagram);
    }
    fputc('\n', f);
    cli_print_bins(f, m);
    if (m->n_groups) {
        fputc('\n', f);
        cli_print_groups(f, m);
    }
}

/* The JSON text, or the chart for the table; warnings for either. */
static int eval_text(const cli_opts *o, const calib_read_stats *st,
                     const calib_metrics *m, const char *const mode[2],
                     char **json, char **diagram)
{
    *json = NULL;
    if (!o->json) {
        if (st->rows_disagree)
            cli_warn("%zu row%s disagree with the acc lm-eval logged",
                     st->rows_disagree, plural(st->rows_disagree));
        return eval_diagram(o, &m, NULL, 1, diagram);
    }
    *diagram = NULL;
    const int ex = cli_metrics_json(m, st, mode[0], mode[1], json);
    if (!ex)
        cli_each_warning(st, m, warn_stderr, NULL);
    return ex;
}

static int write_eval(const cli_opts *o, const char *const mode[2],
                      const char *path, const calib_read_stats *st,
                      const calib_metrics *m, const cli_levels *lv)
{
    char *json = NULL, *diagram = NULL;
    int ex = eval_text(o, st, m, mode, &json, &diagram);
    if (!ex && json && lv)
        ex = cli_levels_json(lv, &json);
    cli_out out;
    if (!ex)
        ex = cli_out_open(&out, o->out);
    if (!ex) {
        if (json)
            fprintf(out.f, "%s\n", json);
        else
            print_eval(out.f, path, st, m, mode, diagram, lv);
        ex = cli_out_commit(&out);
    }
    free(json);
    free(diagram);
    return ex;
}

int cli_write_eval(const cli_opts *o, const char *const mode[2],
                   const char *path, const calib_read_stats *st,
                   const calib_metrics *m)
{
    return write_eval(o, mode, path, st, m, NULL);
}

static int eval_files(const cli_opts *o)
{
    cli_inputs in;
    calib_metrics *m = NULL;
    calib_read_stats st = {0};
    cli_levels lv;
    const int levels = o->n_coverage || o->n_risk;
    int ex = cli_inputs_expand(o->pos, (size_t)o->n_pos, &in);
    if (!ex)
        ex = levels ? cli_eval_levels(&in, o, &m, &st, &lv)
                    : cli_eval_inputs(&in, o, &m, &st);
    char shown[64];
    if (in.n > 1)
        snprintf(shown, sizeof shown, "%zu files", in.n);
    const char *mode[2] = {NULL, NULL};
    if (!ex)
        cli_jsonl_mode(o, &in, m, &mode[0], &mode[1]);
    if (!ex)
        ex = write_eval(o, mode, in.n > 1 ? shown : in.paths[0], &st, m,
                        levels ? &lv : NULL);
    calib_metrics_free(m);
    cli_inputs_free(&in);
    return ex;
}

/* --partial: the accumulator's state, for `calib merge`. */
static int eval_partial(const cli_opts *o)
{
    cli_inputs in;
    char *json = NULL;
    calib_read_stats st = {0};
    int ex = cli_inputs_expand(o->pos, (size_t)o->n_pos, &in);
    if (!ex)
        ex = cli_partial_inputs(&in, o, &json, &st);
    if (!ex)
        cli_each_warning(&st, NULL, warn_stderr, NULL);
    if (!ex)
        ex = cli_write_text(o->out, json);
    free(json);
    cli_inputs_free(&in);
    return ex;
}

static int write_loop(const cli_opts *o, const cli_loop *l)
{
    char *json = NULL, *diagram = NULL;
    const calib_metrics *const m[2] = {l->before, l->after};
    const char *const labels[2] = {"before", "after"};
    if (o->json && !(json = cli_loop_json(l)))
        return cli_nomem();
    int ex = eval_diagram(o, m, labels, 2, &diagram);
    cli_out out;
    if (!ex)
        ex = cli_out_open(&out, o->out);
    if (!ex) {
        if (json)
            fprintf(out.f, "%s\n", json);
        else
            cli_loop_print(out.f, l, diagram);
        ex = cli_out_commit(&out);
    }
    free(json);
    free(diagram);
    return ex;
}

/* --calibrator CAL.json TEST, or --val VAL --test TEST. */
static int eval_loop(const cli_opts *o)
{
    cli_loop l = {0};
    calib_read_options vro = {0}, tro = {0};
    l.val_path = o->val;
    l.test_path = o->test ? o->test : o->pos[0];
    if (l.val_path)
        cli_read_options_for(o, l.val_path, o->val_labels, o->val_correct,
                             &vro);
    cli_read_options_for(o, l.test_path, o->test_labels, o->test_correct,
                         &tro);
    int ex = o->calibrator ? cli_load_calibrator(o->calibrator, &l.cal) : 0;
    if (!ex)
        ex = cli_loop_run(&l, o, &vro, &tro);
    if (!ex)
        ex = write_loop(o, &l);
    cli_loop_free(&l);
    return ex;
}

static int check_partial(const cli_opts *o)
{
    if (o->calibrator || o->val || o->test) {
        cli_error("eval: --partial takes FILE..., not --calibrator or "
                  "--val/--test");
        return CLI_EX_USAGE;
    }
    if (o->eval.bootstrap) {
        cli_error("eval: --partial writes exact sums; bootstrap intervals "
                  "(--ci, --bootstrap) need every row: evaluate without "
                  "--partial");
        return CLI_EX_USAGE;
    }
    if (o->eval.binning == CALIB_BINNING_MASS) {
        cli_error("eval: a partial state serves both binnings: give "
                  "--binning mass to calib merge, not to --partial");
        return CLI_EX_USAGE;
    }
    return 0;
}

static int check_args(const cli_opts *o)
{
    if (o->partial && check_partial(o))
        return CLI_EX_USAGE;
    if (!o->partial && (o->no_values || o->value_limit)) {
        cli_error("eval: --no-values and --value-limit go with --partial");
        return CLI_EX_USAGE;
    }
    if (o->no_values && o->value_limit) {
        cli_error("eval: --no-values and --value-limit exclude each other");
        return CLI_EX_USAGE;
    }
    const int sets = o->val || o->test;
    if (sets && (!o->val || !o->test)) {
        cli_error("eval: --val and --test go together");
        return CLI_EX_USAGE;
    }
    if (o->method_all) {
        cli_error("eval: --method all is calib fit's (calib fit --method "
                  "all --val VAL --test TEST)");
        return CLI_EX_USAGE;
    }
    if (sets && (o->n_pos || o->calibrator)) {
        cli_error("eval: --val/--test take no FILE and no --calibrator");
        return CLI_EX_USAGE;
    }
    if (!sets && (o->n_pos == 0 || (o->calibrator && o->n_pos != 1))) {
        cli_error("eval: %s (see calib eval --help)",
                  o->n_pos ? "one FILE expected with --calibrator"
                           : "missing FILE");
        return CLI_EX_USAGE;
    }
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    cli_opts o;
    int ex = cli_parse(argc, argv, "eval",
                       CLI_OPT_INPUT | CLI_OPT_EVAL | CLI_OPT_FIT |
                           CLI_OPT_OUT | CLI_OPT_JSON | CLI_OPT_CAL |
                           CLI_OPT_SETS | CLI_OPT_TEXTPLOT |
                           CLI_OPT_PARTIAL | CLI_OPT_CI |
                           CLI_OPT_SELECT,
                       &o);
    if (ex)
        return ex;
    if (o.help) {
        fputs(usage, stdout);
        return 0;
    }
    if ((ex = check_args(&o)) != 0)
        return ex;
    if (o.partial)
        return eval_partial(&o);
    if (o.calibrator || o.val)
        return eval_loop(&o);
    return eval_files(&o);
}
