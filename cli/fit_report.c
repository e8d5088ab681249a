/* fit_report.c — what `calib fit` says about a calibrator: its method and
 * parameters as a table, the "before" metrics that compare like with like
 * (top-label methods are judged against the top-label view of the data),
 * and cross-fitted metrics for --cv.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>

static const char *method_title(calib_method m)
{
    static const char *const t[] = {
        "temperature scaling", "Platt scaling: sigmoid(a logit(p) + b)",
        "vector scaling: softmax(a_k z_k + b_k)",
        "histogram binning", "isotonic regression",
        "beta calibration: sigmoid(a ln p - b ln(1-p) + c)"};
    return (unsigned)m < CALIB_METHOD_COUNT ? t[m] : "?";
}

/* Up to 8 parameters from `from`, then "..." */
static void print_list(FILE *f, const char *name, const double *x, size_t n)
{
    fprintf(f, "  %-22s", name);
    for (size_t i = 0; i < n && i < 8; i++)
        fprintf(f, " %.6g", x[i]);
    fprintf(f, "%s\n", n > 8 ? " ..." : "");
}

static void print_params(FILE *f, const calib_calibrator *c)
{
    const calib_method m = calib_calibrator_method(c);
    const size_t n = calib_calibrator_params(c, NULL, 0);
    double *x = malloc((n ? n : 1) * sizeof *x);
    if (!x)
        return;
    calib_calibrator_params(c, x, n);
    static const char *const abc[] = {"a", "b", "c"};
    if (m == CALIB_METHOD_TEMPERATURE)
        fprintf(f, "  %-22s %.6g\n", "T", x[0]);
    else if (m == CALIB_METHOD_PLATT || m == CALIB_METHOD_BETA)
        for (size_t i = 0; i < n; i++)
            fprintf(f, "  %-22s %.6g\n", abc[i], x[i]);
    else if (m == CALIB_METHOD_VECTOR) {
        print_list(f, "scale a_k", x, n / 2);
        print_list(f, "bias b_k", x + n / 2, n / 2);
    } else if (m == CALIB_METHOD_HISTOGRAM) {
        fprintf(f, "  %-22s %zu\n", "bins", (n - 1) / 2);
        print_list(f, "bin values", x + (n + 1) / 2, (n - 1) / 2);
    } else {
        fprintf(f, "  %-22s %zu\n", "fitted points", n / 2);
    }
    free(x);
}

void cli_print_fit(FILE *f, const calib_calibrator *c)
{
    const calib_method m = calib_calibrator_method(c);
    const char *obj = calib_objective_name(calib_calibrator_objective(c));
    fprintf(f, "  %-22s %s%s\n", "method", method_title(m),
            calib_method_toplabel(m) ? " (on each row's confidence)"
            : calib_calibrator_binary(c) ? " (binary, top-label)" : "");
    print_params(f, c);
    fprintf(f, "  %-22s %s\n", "objective", obj);
    fprintf(f, "  %-22s %d\n", "solver iterations",
            calib_calibrator_iterations(c));
    fprintf(f, "  %-22s %.6f (%s%s)\n", "objective value",
            calib_calibrator_objective_value(c), obj,
            m == CALIB_METHOD_TEMPERATURE ? " at T" : " of the fitted map");
    if (calib_method_toplabel(m))
        fprintf(f, "  %-22s %s\n", "note",
                "top-label output (a confidence and a correct flag): NLL "
                "n/a, Brier = (p - correct)^2");
    if (m == CALIB_METHOD_VECTOR)
        fprintf(f, "  %-22s %s\n", "note",
                "vector scaling can change a row's prediction (accuracy)");
    const size_t nd = calib_calibrator_diagnostic_count(c);
    if (!nd)
        fprintf(f, "  %-22s none\n", "diagnostics");
    for (size_t i = 0; i < nd; i++)
        fprintf(f, "  %-22s %s\n", "diagnostic",
                calib_calibrator_diagnostic(c, i));
}

int cli_eval_before(calib_method m, const calib_dataset *ds,
                    const calib_eval_options *eo, calib_metrics **out)
{
    if (!calib_method_toplabel(m) ||
        calib_dataset_kind(ds) == CALIB_TOPLABEL)
        return cli_evaluate(ds, eo, out);
    calib_dataset *v = NULL;
    calib_error err = {0};
    const int rc = calib_dataset_toplabel(ds, &v, &err);
    if (rc)
        return cli_fail(rc, &err, NULL);
    const int ex = cli_evaluate(v, eo, out);
    calib_dataset_free(v);
    return ex;
}

int cli_cross_fit(const calib_dataset *ds, const calib_fit_options *fo,
                  int k, uint64_t seed, calib_metrics **out)
{
    calib_dataset *oof = NULL;
    calib_error err = {0};
    const int rc = calib_cross_fit(ds, fo, k, seed, &oof, &err);
    if (rc)
        return cli_fail(rc, &err, NULL);
    const int ex = cli_evaluate(oof, &fo->eval, out);
    calib_dataset_free(oof);
    return ex;
}
