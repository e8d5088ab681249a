/* report_fit.c — the report's fit section: the recalibrator fitted on the
 * validation set, with its method's parameters (as calib_calibrator_params
 * gives them), form, objective, solver and diagnostics, the NLL-over-T
 * chart for temperature scaling (report_chart.c), and the validation
 * metrics before and after.
 */
#include "report.h"

#include <stdlib.h>

/* Up to 8 values of x[0..n), then an ellipsis. */
static void num_list(calib__buf *b, const double *x, size_t n)
{
    for (size_t i = 0; i < n && i < 8; i++) {
        if (i)
            calib__buf_puts(b, ", ");
        calib__report_num(b, "%.6g", x[i]);
    }
    if (n > 8)
        calib__buf_printf(b, ", &#8230; (%zu in all)", n);
}

/* The fitted parameters, and the form they take, as <dt>/<dd> pairs
 * (calib_calibrator_params gives them in this order). */
static void fit_params(calib__buf *b, const calib_calibrator *c,
                       const double *x, size_t n)
{
    static const char *const abc[] = {"a", "b", "c"};
    switch (calib_calibrator_method(c)) {
    case CALIB_METHOD_TEMPERATURE:
        calib__buf_puts(b, "<dt>Temperature T</dt><dd>");
        calib__report_num(b, "%.6g", x[0]);
        calib__buf_printf(b, "</dd><dt>Form</dt><dd>%s</dd>",
                          calib_calibrator_binary(c)
                              ? "binary: sigmoid(logit(p) / T)"
                              : "softmax(z / T)");
        return;
    case CALIB_METHOD_PLATT:
    case CALIB_METHOD_BETA:
        for (size_t i = 0; i < n && i < 3; i++) {
            calib__buf_printf(b, "<dt>%s</dt><dd>", abc[i]);
            calib__report_num(b, "%.6g", x[i]);
            calib__buf_puts(b, "</dd>");
        }
        calib__buf_printf(b, "<dt>Form</dt><dd>%s, on each row&#8217;s "
                             "confidence</dd>",
                          calib_calibrator_method(c) == CALIB_METHOD_PLATT
                              ? "sigmoid(a logit(p) + b)"
                              : "sigmoid(a ln p &#8722; b ln(1 &#8722; p) "
                                "+ c)");
        return;
    case CALIB_METHOD_VECTOR:
        calib__buf_puts(b, "<dt>Scales a<sub>k</sub></dt><dd>");
        num_list(b, x, n / 2);
        calib__buf_puts(b, "</dd><dt>Biases b<sub>k</sub></dt><dd>");
        num_list(b, x + n / 2, n / 2);
        calib__buf_puts(b, "</dd><dt>Form</dt><dd>softmax(a<sub>k</sub> "
                           "z<sub>k</sub> + b<sub>k</sub>); it can change "
                           "a row&#8217;s prediction</dd>");
        return;
    case CALIB_METHOD_HISTOGRAM:
        calib__buf_printf(b, "<dt>Bins</dt><dd>%zu</dd><dt>Bin values</dt>"
                             "<dd>", (n - 1) / 2);
        num_list(b, x + (n + 1) / 2, (n - 1) / 2);
        calib__buf_puts(b, "</dd><dt>Form</dt><dd>each confidence replaced "
                           "by its bin&#8217;s validation accuracy (an "
                           "empty bin: its midpoint)</dd>");
        return;
    default:
        calib__buf_printf(b, "<dt>Fitted points</dt><dd>%zu</dd><dt>Form</dt>"
                             "<dd>a non-decreasing map of the confidence, "
                             "linear between the points, constant beyond "
                             "them</dd>", n / 2);
        return;
    }
}

static const char *solver_phrase(const calib_calibrator *c)
{
    switch (calib_calibrator_method(c)) {
    case CALIB_METHOD_TEMPERATURE:
        return calib_calibrator_objective(c) == CALIB_OBJECTIVE_NLL
                   ? "Newton on log(1/T), exact derivatives"
                   : "grid on log T, then golden section";
    case CALIB_METHOD_PLATT:
    case CALIB_METHOD_BETA:
        return "Newton on the log loss, exact Hessian";
    case CALIB_METHOD_VECTOR:
        return "L-BFGS on the NLL";
    case CALIB_METHOD_HISTOGRAM:
        return "bin means";
    default:
        return "pool adjacent violators";
    }
}

static void fit_facts(calib__buf *b, const calib_calibrator *c)
{
    const size_t n = calib_calibrator_params(c, NULL, 0);
    double one = 0.0, *x = n > 1 ? malloc(n * sizeof *x) : &one;
    calib__buf_puts(b, "<dl>");
    if (x) {
        calib_calibrator_params(c, x, n);
        fit_params(b, c, x, n);
    }
    if (x != &one)
        free(x);
    calib__buf_printf(b, "<dt>Objective</dt><dd>%s%s</dd><dt>Solver</dt>"
                         "<dd>%s</dd><dt>Iterations</dt><dd>%d</dd><dt>"
                         "Objective value</dt><dd>",
                      calib_objective_name(calib_calibrator_objective(c)),
                      calib__report_temperature(c) ? ""
                                                   : " (of the fitted map)",
                      solver_phrase(c), calib_calibrator_iterations(c));
    calib__report_num(b, "%.6f", calib_calibrator_objective_value(c));
    calib__buf_puts(b, "</dd><dt>Diagnostics</dt><dd>");
    const size_t nd = calib_calibrator_diagnostic_count(c);
    if (!nd)
        calib__buf_puts(b, "none");
    for (size_t i = 0; i < nd; i++) {
        calib__buf_puts(b, i ? "<br/><span class=\"warn\">"
                             : "<span class=\"warn\">");
        calib__report_esc(b, calib_calibrator_diagnostic(c, i));
        calib__buf_puts(b, "</span>");
    }
    calib__buf_puts(b, "</dd></dl>");
}

void calib__report_fit_section(calib__buf *b, const calib_report_spec *s)
{
    if (!s->calibrator)
        return;
    const char *what = calib__report_method_phrase(s->calibrator);
    const char first = what[0] >= 'a' && what[0] <= 'z'
                           ? (char)(what[0] - 'a' + 'A') : what[0];
    calib__buf_printf(b, "<section id=\"fit\"><h2>%c%s, fitted on "
                         "validation</h2>", first, what + 1);
    fit_facts(b, s->calibrator);
    if (s->n_curve >= 2 && calib__report_temperature(s->calibrator))
        calib__report_nll_chart(b, s,
                                calib_calibrator_temperature(s->calibrator));
    if (s->val_before) {
        calib__buf_puts(b, "<h3>The validation set, before and after</h3>");
        calib__report_metric_table(b, s->val_before, s->val_after);
    }
    calib__buf_puts(b, "</section>");
}
