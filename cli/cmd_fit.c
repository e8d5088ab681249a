/* cmd_fit.c — `calib fit` and `calib apply`, and the fit-then-judge loop
 * that `eval --calibrator`, `eval/fit --val --test` and `demo` share.
 *
 * A calibrator file is calib_calibrator_to_json's object plus "input" (what
 * it was fitted on) and "before"/"after" (the fitting set's metrics), so one
 * file says both how to recalibrate and how well it worked; the library
 * reads it back ignoring the extra keys.  JSON is composed with jansson from
 * the library's own JSON texts; jansson prints reals with %.17g, so every
 * number goes through unchanged.  cli_metrics_json, which `eval --json`
 * and `compare --json` print, is composed the same way.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char fit_usage[] =
    "usage: calib fit VAL [input options] [--method M] [--objective nll|ece|brier]\n"
    "                [--hist-bins M] [--hist-binning width|mass] [--bins M]\n"
    "                [--threads N] [--cv K [--seed S]] [-o CAL.json] [--json]\n"
    "       calib fit --val VAL --test TEST [options] [-o CAL.json] [--json]\n"
    "       calib fit --method all (--val VAL --test TEST | VAL --cv K) [options]\n"
    "\n"
    "Fits a recalibration method on VAL: temperature (default), platt, beta,\n"
    "vector, histogram or isotonic (see calib(1)); platt, beta, histogram and\n"
    "isotonic map each row's confidence and output top-label rows.  --cv K\n"
    "also reports the fitting set cross-fitted over K seeded folds beside the\n"
    "in-sample result.  --method all compares every method on TEST (or\n"
    "cross-fitted with --cv) in one table; -o then writes that table or JSON.\n"
    "-o writes the calibrator file (JSON: method, its parameters, objective,\n"
    "diagnostics, input, before, after);\n"
    "without -o the fit is printed as a table, or as that JSON with --json.\n"
    "With --val/--test it also judges TEST before and after (printed on\n"
    "stdout, as a table or with --json as JSON).  Diagnostics (T at the end\n"
    "of its range, ...) are warnings on stderr; the exit status stays 0.\n"
    "Input options are those of calib eval (see calib eval --help).\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data, 66 cannot open input,\n"
    "70 internal error or no convergence, 71 out of memory,\n"
    "73 cannot create output, 74 I/O error.\n";

static const char apply_usage[] =
    "usage: calib apply CAL.json FILE [input options] -o OUT.npy|OUT.csv\n"
    "\n"
    "Applies the calibrator of CAL.json (from calib fit -o) to FILE and\n"
    "writes the recalibrated probabilities: an (N,K) float64 .npy, or a CSV\n"
    "with columns prob_0..prob_{K-1},label (temperature and vector scaling\n"
    "of distribution rows).  Top-label output (platt, beta, histogram,\n"
    "isotonic, which work on each row's confidence, or temperature scaling\n"
    "of top-label rows): a CSV/TSV input's own columns plus\n"
    "calibrated_confidence; from other inputs (or with rows skipped by\n"
    "--skip-bad-rows) the columns confidence,correct (calibrated), or an\n"
    "(N,) .npy of calibrated confidences.  The format follows OUT's\n"
    "extension.  OUT appears only when everything was written.  Input\n"
    "options are those of calib eval.\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data, 66 cannot open input,\n"
    "70 internal error, 71 out of memory, 73 cannot create output,\n"
    "74 I/O error.\n";

/* ---- JSON composition ---------------------------------------------- */

/* Sets obj[key] = val, taking val; returns 0 on failure (val NULL too). */
static int put(json_t *obj, const char *key, json_t *val)
{
    return obj && val && json_object_set_new(obj, key, val) == 0;
}

static json_t *load_text(char *text)
{
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return j;
}

static json_t *metrics_json(const calib_metrics *m, const calib_read_stats *st)
{
    char *text = NULL;
    return calib_metrics_to_json(m, st, &text, NULL) ? NULL : load_text(text);
}

static json_t *count(size_t n)
{
    return json_integer((json_int_t)n);
}

/* calib_metrics_to_json's object, then the counts it leaves out. */
int cli_metrics_json(const calib_metrics *m, const calib_read_stats *st,
                     const char *key, const char *value, char **json)
{
    char *text = NULL;
    calib_error err = {0};
    const int rc = calib_metrics_to_json(m, st, &text, &err);
    if (rc)
        return cli_fail(rc, &err, NULL);
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    free(text);
    if (!obj) {
        /* The library passes group names through as they were read. */
        cli_error("metrics JSON: %s (are the group names UTF-8?)", jerr.text);
        return CLI_EX_DATAERR;
    }
    int ok = put(obj, "rows_disagree", count(st->rows_disagree)) &&
             put(obj, "rows_duplicate", count(st->rows_duplicate)) &&
             put(obj, "values_unknown", count(st->values_unknown));
    if (ok && key)
        ok = put(obj, key, json_string(value));
    /* Compact, as calib_metrics_to_json writes it. */
    *json = ok ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(17))
               : NULL;
    json_decref(obj);
    return *json ? 0 : cli_nomem();
}

static json_t *calibrator_json(const calib_calibrator *c)
{
    char *text = NULL;
    return calib_calibrator_to_json(c, &text, NULL) ? NULL : load_text(text);
}

static json_t *input_json(const char *path, const calib_dataset *ds)
{
    return json_pack("{s:s, s:I, s:I}", "file", path, "rows",
                     (json_int_t)calib_dataset_rows(ds), "classes",
                     (json_int_t)calib_dataset_classes(ds));
}

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(17))
                : NULL;
    json_decref(j);
    return s;
}

/* The calibrator file: the calibrator's keys, then input/before/after,
 * and with --cv the cross-fitted metrics. */
static char *fit_file_json(const cli_loop *l)
{
    calib_read_stats st;
    calib_dataset_stats(l->val, &st);
    json_t *obj = calibrator_json(l->cal);
    int ok = put(obj, "input", input_json(l->val_path, l->val)) &&
             put(obj, "before", metrics_json(l->val_before, &st)) &&
             put(obj, "after", metrics_json(l->val_after, &st));
    if (ok && l->val_cv)
        ok = put(obj, "cross_fitted",
                 json_pack("{s:i, s:I, s:o}", "folds", l->cv, "seed",
                           (json_int_t)l->seed,
                           "after", metrics_json(l->val_cv, &st)));
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return dump(obj);
}

char *cli_loop_json(const cli_loop *l)
{
    calib_read_stats st;
    calib_dataset_stats(l->test, &st);
    json_t *obj = json_object();
    json_t *cal = l->cal_json ? json_loads(l->cal_json, 0, NULL)
                              : calibrator_json(l->cal);
    const int ok =
        put(obj, "calibrator", cal) &&
        put(obj, "input", input_json(l->test_path, l->test)) &&
        put(obj, "before", metrics_json(l->before, &st)) &&
        put(obj, "after", metrics_json(l->after, &st)) &&
        put(obj, "accuracy_unchanged",
            json_boolean(l->before->accuracy == l->after->accuracy));
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return dump(obj);
}

/* ---- fitting and judging ------------------------------------------- */

void cli_warn_diagnostics(const calib_calibrator *c)
{
    for (size_t i = 0; i < calib_calibrator_diagnostic_count(c); i++)
        cli_warn("%s", calib_calibrator_diagnostic(c, i));
}

static int fit_set(const calib_dataset *ds, const calib_fit_options *fo,
                   calib_calibrator **out)
{
    calib_error err = {0};
    const int rc = calib_fit(ds, fo, out, &err);
    if (rc)
        return cli_fail(rc, &err, NULL);
    cli_warn_diagnostics(*out);
    return 0;
}

static int apply_set(const calib_calibrator *c, const calib_dataset *ds,
                     const char *path, calib_dataset **out)
{
    calib_error err = {0};
    const int rc = calib_apply(c, ds, out, &err);
    return rc ? cli_fail(rc, &err, path) : 0;
}

/* Fits on l->val and measures the fitting set before and after. */
static int loop_fit(cli_loop *l, const cli_opts *o,
                    const calib_read_options *ro)
{
    calib_dataset *after = NULL;
    int ex = cli_read(l->val_path, ro, &l->val);
    if (!ex)
        ex = fit_set(l->val, &o->fit, &l->cal);
    if (!ex)
        ex = cli_eval_before(o->fit.method, l->val, &o->eval, &l->val_before);
    if (!ex)
        ex = apply_set(l->cal, l->val, l->val_path, &after);
    if (!ex)
        ex = cli_evaluate(after, &o->eval, &l->val_after);
    calib_dataset_free(after);
    l->cv = o->cv, l->seed = o->eval.seed;
    if (!ex && o->cv)
        ex = cli_cross_fit(l->val, &o->fit, o->cv, o->eval.seed, &l->val_cv);
    if (!ex && !(l->cal_json = fit_file_json(l)))
        ex = cli_nomem();
    return ex;
}

/* Temperature scaling never changes a prediction, and the top-label
 * methods keep every correct flag: if accuracy moved, calib has a bug, and
 * no report should hide it.  Vector scaling may change predictions. */
static int check_accuracy(const cli_loop *l)
{
    if (l->before->accuracy == l->after->accuracy ||
        calib_calibrator_method(l->cal) == CALIB_METHOD_VECTOR)
        return 0;
    cli_error("%s: internal error: accuracy changed from %.17g to %.17g "
              "under recalibration", l->test_path, l->before->accuracy,
              l->after->accuracy);
    return CLI_EX_SOFTWARE;
}

int cli_loop_run(cli_loop *l, const cli_opts *o,
                 const calib_read_options *val_ro,
                 const calib_read_options *test_ro)
{
    int ex = l->val_path ? loop_fit(l, o, val_ro) : 0;
    if (!ex)
        ex = cli_read(l->test_path, test_ro, &l->test);
    if (!ex)
        ex = cli_eval_before(calib_calibrator_method(l->cal), l->test,
                             &o->eval, &l->before);
    if (!ex)
        ex = apply_set(l->cal, l->test, l->test_path, &l->test_after);
    if (!ex)
        ex = cli_evaluate(l->test_after, &o->eval, &l->after);
    return ex ? ex : check_accuracy(l);
}

void cli_loop_free(cli_loop *l)
{
    calib_dataset_free(l->val);
    calib_dataset_free(l->test);
    calib_dataset_free(l->test_after);
    calib_calibrator_free(l->cal);
    calib_metrics_free(l->val_before);
    calib_metrics_free(l->val_after);
    calib_metrics_free(l->before);
    calib_metrics_free(l->after);
    calib_metrics_free(l->val_cv);
    free(l->cal_json);
    memset(l, 0, sizeof *l);
}

/* ---- tables -------------------------------------------------------- */

static void print_set(FILE *f, const char *title, const char *path,
                      const calib_dataset *ds, const calib_metrics *before,
                      const calib_metrics *after, const char *diagram)
{
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    fprintf(f, "%s\n", title);
    cli_print_read_stats(f, path, &st, before);
    fputc('\n', f);
    cli_print_pair(f, before, after);
    if (diagram) {
        fputc('\n', f);
        cli_print_chart(f, diagram);
    }
    if (before->n_groups) {
        fputc('\n', f);
        cli_print_group_pair(f, before, after);
    }
}

void cli_loop_print(FILE *f, const cli_loop *l, const char *diagram)
{
    if (l->val) {
        fprintf(f, "Fit on validation\n");
        cli_print_fit(f, l->cal);
        fputc('\n', f);
    } else {
        fprintf(f, "Calibrator\n");
        cli_print_fit(f, l->cal);
        fputc('\n', f);
    }
    print_set(f, "Test, before and after recalibration", l->test_path,
              l->test, l->before, l->after, diagram);
    fprintf(f, "\n  accuracy unchanged: %s%s\n",
            l->before->accuracy == l->after->accuracy ? "yes" : "no",
            calib_calibrator_method(l->cal) == CALIB_METHOD_VECTOR
                ? " (vector scaling may change predictions)" : "");
}

static void fit_print(FILE *f, const cli_loop *l)
{
    fprintf(f, "Fit\n");
    cli_print_fit(f, l->cal);
    fputc('\n', f);
    if (!l->val_cv) {
        print_set(f, "Fitting set, before and after", l->val_path, l->val,
                  l->val_before, l->val_after, NULL);
        return;
    }
    calib_read_stats st;
    calib_dataset_stats(l->val, &st);
    fprintf(f, "Fitting set: before, after (in-sample: fitted and judged on "
               "the same rows),\nand after cross-fitting (%d folds, seed "
               "%llu: each row judged by a fit without it)\n",
            l->cv, (unsigned long long)l->seed);
    cli_print_read_stats(f, l->val_path, &st, l->val_before);
    fputc('\n', f);
    const char *const heads[3] = {"before", "in-sample", "cross-fit"};
    const calib_metrics *const ms[3] = {l->val_before, l->val_after,
                                        l->val_cv};
    cli_print_columns(f, heads, ms, 3);
}

/* ---- calib fit ----------------------------------------------------- */

static int fit_check_args(const cli_opts *o)
{
    const int sets = o->val || o->test;
    if (sets && (!o->val || !o->test)) {
        cli_error("fit: --val and --test go together");
        return CLI_EX_USAGE;
    }
    if (o->cv && o->test) {
        cli_error("fit: --cv cross-fits one set; it takes VAL, not "
                  "--val/--test");
        return CLI_EX_USAGE;
    }
    if ((sets && o->n_pos) || (!sets && o->n_pos != 1)) {
        cli_error("fit: %s (see calib fit --help)",
                  sets ? "--val/--test take no FILE"
                  : o->n_pos ? "one VAL file expected" : "missing VAL");
        return CLI_EX_USAGE;
    }
    return 0;
}

/* Without --test: -o gets the file; else stdout the table or JSON. */
static int fit_output(const cli_opts *o, const cli_loop *l)
{
    if (o->out)
        return cli_write_text(o->out, l->cal_json);
    if (o->json)
        printf("%s\n", l->cal_json);
    else
        fit_print(stdout, l);
    return cli_stdout_commit();
}

/* With --test: -o gets the calibrator file; stdout the test report. */
static int loop_output(const cli_opts *o, const cli_loop *l)
{
    int ex = o->out ? cli_write_text(o->out, l->cal_json) : 0;
    if (ex)
        return ex;
    char *json = NULL;
    if (o->json && !(json = cli_loop_json(l)))
        return cli_nomem();
    if (json)
        printf("%s\n", json);
    else
        cli_loop_print(stdout, l, NULL);
    free(json);
    return cli_stdout_commit();
}

int cmd_fit(int argc, char **argv)
{
    cli_opts o;
    int ex = cli_parse(argc, argv, "fit",
                       CLI_OPT_INPUT | CLI_OPT_EVAL | CLI_OPT_FIT |
                           CLI_OPT_OUT | CLI_OPT_JSON | CLI_OPT_SETS |
                           CLI_OPT_CV,
                       &o);
    if (ex)
        return ex;
    if (o.help) {
        fputs(fit_usage, stdout);
        return 0;
    }
    if ((ex = fit_check_args(&o)) != 0)
        return ex;
    if (o.method_all)
        return cli_fit_all(&o);
    cli_loop l = {0};
    calib_read_options vro = {0}, tro = {0};
    l.val_path = o.val ? o.val : o.pos[0];
    l.test_path = o.test;
    cli_read_options_for(&o, l.val_path, o.val_labels, o.val_correct, &vro);
    if (o.test) {
        cli_read_options_for(&o, o.test, o.test_labels, o.test_correct,
                             &tro);
        ex = cli_loop_run(&l, &o, &vro, &tro);
        ex = ex ? ex : loop_output(&o, &l);
    } else {
        ex = loop_fit(&l, &o, &vro);
        ex = ex ? ex : fit_output(&o, &l);
    }
    cli_loop_free(&l);
    return ex;
}

/* ---- calib apply --------------------------------------------------- */

static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *bigger = realloc(buf, cap *= 2);
        if (!bigger)
            free(buf);
        buf = bigger;
    }
    *len = n;
    return buf;
}

int cli_load_calibrator(const char *path, calib_calibrator **out)
{
    int ex;
    FILE *f = cli_open_input(path, &ex);
    if (!f)
        return ex;
    size_t len = 0;
    char *text = slurp(f, &len);
    const int bad = ferror(f);
    fclose(f);
    if (!text || bad) {
        free(text);
        return bad ? cli_fail(CALIB_EIO, NULL, path) : cli_nomem();
    }
    calib_error err = {0};
    const int rc = calib_calibrator_from_json(text, len, out, &err);
    free(text);
    return rc ? cli_fail(rc, &err, path) : 0;
}

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int out_format(const char *path, calib_format *fmt)
{
    if (ends_with(path, ".npy"))
        *fmt = CALIB_FORMAT_NPY;
    else if (ends_with(path, ".csv"))
        *fmt = CALIB_FORMAT_CSV;
    else if (ends_with(path, ".tsv"))
        *fmt = CALIB_FORMAT_TSV;
    else {
        cli_error("apply: %s: the output must end in .npy, .csv or .tsv",
                  path);
        return CLI_EX_USAGE;
    }
    return 0;
}

static int apply_check_args(const cli_opts *o, calib_format *fmt)
{
    if (o->n_pos != 2) {
        cli_error("apply: %s (see calib apply --help)",
                  o->n_pos < 2 ? "CAL.json and FILE expected"
                               : "too many arguments");
        return CLI_EX_USAGE;
    }
    if (!o->out) {
        cli_error("apply: -o OUT.npy|OUT.csv is required");
        return CLI_EX_USAGE;
    }
    return out_format(o->out, fmt);
}

int cmd_apply(int argc, char **argv)
{
    cli_opts o;
    calib_format fmt = CALIB_FORMAT_AUTO;
    int ex = cli_parse(argc, argv, "apply", CLI_OPT_INPUT | CLI_OPT_OUT, &o);
    if (ex)
        return ex;
    if (o.help) {
        fputs(apply_usage, stdout);
        return 0;
    }
    if ((ex = apply_check_args(&o, &fmt)) != 0)
        return ex;
    calib_calibrator *cal = NULL;
    calib_dataset *ds = NULL, *after = NULL;
    calib_read_options ro;
    cli_read_options_for(&o, o.pos[1], NULL, NULL, &ro);
    ex = cli_load_calibrator(o.pos[0], &cal);
    ex = ex ? ex : cli_read(o.pos[1], &ro, &ds);
    ex = ex ? ex : apply_set(cal, ds, o.pos[1], &after);
    ex = ex ? ex : cli_write_applied(o.pos[1], &ro, ds, after, fmt, o.out);
    calib_dataset_free(after);
    calib_dataset_free(ds);
    calib_calibrator_free(cal);
    return ex;
}
