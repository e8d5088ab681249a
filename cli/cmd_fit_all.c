/* cmd_fit_all.c — `calib fit --method all`: every recalibration method on
 * one split, as Guo et al. 2017 compare them in their Table 1 (ECE, NLL,
 * error), with MCE and Brier beside.
 *
 * With --val VAL --test TEST each method is fitted on VAL and judged on
 * TEST.  With one set and --cv K each method is judged by its cross-fitted
 * predictions (calib_cross_fit), and the in-sample ECE (fitted and judged
 * on the same rows, as HELM does) stands beside it, which shows how
 * optimistic the in-sample figure is.  A method that does not fit the rows
 * (vector scaling on top-label or ragged rows) is shown as n/a with the
 * library's reason; one whose fit fails as failed, with its message.
 * Top-label methods are compared with the top-label view of the
 * uncalibrated rows as well as with the rows themselves.
 */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define N_ROWS (CALIB_METHOD_COUNT + 2)

typedef struct entry {
    const char *name;
    calib_metrics *m;         /* NULL: n/a or failed                      */
    double ece_in;            /* --cv: in-sample ECE                      */
    const char *status;       /* "ok", "n/a", "failed"                    */
    char reason[512];
} entry;

typedef struct table {
    const cli_opts *o;
    const char *val_path, *test_path;
    calib_dataset *val, *test;  /* test == val with --cv                 */
    entry e[N_ROWS];
    size_t n;
} table;

/* Fits method m on val and evaluates it on test (split) or cross-fits it
 * (--cv); records n/a or failure in *e.  Returns an exit code only for
 * what must stop the command (out of memory). */
static int judge(table *t, calib_method m, entry *e)
{
    calib_fit_options fo = t->o->fit;
    fo.method = m;
    if (m != CALIB_METHOD_TEMPERATURE)
        fo.objective = CALIB_OBJECTIVE_NLL;
    calib_calibrator *c = NULL;
    calib_dataset *after = NULL;
    calib_error err = {0};
    int rc = calib_fit(t->val, &fo, &c, &err);
    for (size_t i = 0; !rc && i < calib_calibrator_diagnostic_count(c); i++)
        cli_warn("%s: %s", e->name, calib_calibrator_diagnostic(c, i));
    if (!rc)
        rc = calib_apply(c, t->test, &after, &err);
    int ex = 0;
    if (!rc && t->o->cv) {
        calib_metrics *in = NULL;
        ex = cli_evaluate(after, &fo.eval, &in);
        e->ece_in = in ? in->ece : 0.0;
        calib_metrics_free(in);
        ex = ex ? ex : cli_cross_fit(t->val, &fo, t->o->cv, t->o->eval.seed,
                                     &e->m);
    } else if (!rc) {
        ex = cli_evaluate(after, &fo.eval, &e->m);
    }
    calib_dataset_free(after);
    calib_calibrator_free(c);
    if (rc == CALIB_ENOMEM)
        return cli_fail(rc, &err, NULL);
    e->status = rc == CALIB_EINVAL ? "n/a" : rc ? "failed" : "ok";
    snprintf(e->reason, sizeof e->reason, "%s", rc ? err.message : "");
    return ex;
}

static int baselines(table *t)
{
    entry *e = &t->e[t->n++];
    e->name = "uncalibrated", e->status = "ok";
    int ex = cli_evaluate(t->test, &t->o->eval, &e->m);
    if (ex || calib_dataset_kind(t->test) == CALIB_TOPLABEL)
        return ex;
    e = &t->e[t->n++];
    e->name = "uncalibrated (top-label)", e->status = "ok";
    return cli_eval_before(CALIB_METHOD_PLATT, t->test, &t->o->eval, &e->m);
}

static int run_all(table *t)
{
    int ex = baselines(t);
    for (int m = 0; !ex && m < CALIB_METHOD_COUNT; m++) {
        entry *e = &t->e[t->n++];
        e->name = calib_method_name((calib_method)m);
        ex = judge(t, (calib_method)m, e);
    }
    if (!ex && t->o->cv)
        t->e[0].ece_in = t->e[0].m->ece;
    if (!ex && t->o->cv && t->n > 1 && !strcmp(t->e[1].name,
                                               "uncalibrated (top-label)"))
        t->e[1].ece_in = t->e[1].m->ece;
    return ex;
}

/* ---- output -------------------------------------------------------- */

static void print_num(FILE *f, double x)
{
    if (x != x)
        fprintf(f, " %10s", "n/a");
    else
        fprintf(f, " %10.6f", x);
}

static void print_table(FILE *f, const table *t)
{
    const int cv = t->o->cv;
    if (cv)
        fprintf(f, "Methods cross-fitted on %s (%d folds, seed %llu)\n",
                t->val_path, cv, (unsigned long long)t->o->eval.seed);
    else
        fprintf(f, "Methods fitted on %s, judged on %s\n", t->val_path,
                t->test_path);
    fprintf(f, "  %-25s %10s %10s %10s %10s %10s%s\n", "method", "ECE", "MCE",
            "NLL", "Brier", "accuracy", cv ? "  ECE in-sample" : "");
    for (size_t i = 0; i < t->n; i++) {
        const entry *e = &t->e[i];
        fprintf(f, "  %-25s", e->name);
        if (!e->m) {
            fprintf(f, " %s: %s\n", e->status, e->reason);
            continue;
        }
        const double v[] = {e->m->ece, e->m->mce, e->m->nll, e->m->brier,
                            e->m->accuracy};
        for (int j = 0; j < 5; j++)
            print_num(f, v[j]);
        if (cv)
            fprintf(f, " %14.6f", e->ece_in);
        fputc('\n', f);
    }
    const calib_metrics *m = t->e[0].m;
    fprintf(f, "  (%zu %s bins)  Top-label rows (the top-label baseline, "
               "platt, histogram,\n  isotonic, beta) have no NLL, and their "
               "Brier is (p - correct)^2.\n", m->n_bins,
            m->binning == CALIB_BINNING_MASS ? "equal-mass" : "equal-width");
}

static json_t *entry_json(const table *t, const entry *e)
{
    json_t *o = json_pack("{s:s, s:s}", "method", e->name, "status",
                          e->status);
    if (!e->m) {
        json_object_set_new(o, "reason", json_string(e->reason));
        return o;
    }
    char *text = NULL;
    calib_read_stats st;
    calib_dataset_stats(t->test, &st);
    json_t *m = calib_metrics_to_json(e->m, &st, &text, NULL)
                    ? NULL : json_loads(text, 0, NULL);
    free(text);
    json_object_set_new(o, "metrics", m ? m : json_null());
    if (t->o->cv)
        json_object_set_new(o, "ece_in_sample", json_real(e->ece_in));
    return o;
}

static char *table_json(const table *t)
{
    json_t *list = json_array();
    for (size_t i = 0; i < t->n; i++)
        json_array_append_new(list, entry_json(t, &t->e[i]));
    json_t *o = json_pack("{s:s, s:s, s:s?, s:i, s:I, s:o}", "judged_on",
                          t->o->cv ? "cross-fitted" : "test", "val",
                          t->val_path, "test", t->test_path, "folds",
                          t->o->cv, "seed", (json_int_t)t->o->eval.seed,
                          "methods", list);
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(17))
                : NULL;
    json_decref(o);
    return s;
}

static int write_table(const table *t)
{
    char *json = NULL;
    if (t->o->json && !(json = table_json(t)))
        return cli_nomem();
    cli_out out;
    int ex = cli_out_open(&out, t->o->out);
    if (!ex) {
        if (json)
            fprintf(out.f, "%s\n", json);
        else
            print_table(out.f, t);
        ex = cli_out_commit(&out);
    }
    free(json);
    return ex;
}

int cli_fit_all(const cli_opts *o)
{
    table t = {0};
    t.o = o;
    if (!o->test && !o->cv) {
        cli_error("fit: --method all needs --val VAL --test TEST, or one "
                  "set with --cv K");
        return CLI_EX_USAGE;
    }
    calib_read_options vro, tro;
    t.val_path = o->val ? o->val : o->pos[0];
    t.test_path = o->test;
    cli_read_options_for(o, t.val_path, o->val_labels, o->val_correct, &vro);
    int ex = cli_read(t.val_path, &vro, &t.val);
    if (!ex && o->test) {
        cli_read_options_for(o, o->test, o->test_labels, o->test_correct,
                             &tro);
        ex = cli_read(o->test, &tro, &t.test);
    }
    if (!ex && !o->test)
        t.test = t.val;
    ex = ex ? ex : run_all(&t);
    ex = ex ? ex : write_table(&t);
    for (size_t i = 0; i < t.n; i++)
        calib_metrics_free(t.e[i].m);
    if (t.test != t.val)
        calib_dataset_free(t.test);
    calib_dataset_free(t.val);
    return ex;
}
