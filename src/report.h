/* report.h — what the report's files (report_html.c, report_fit.c,
 * report_chart.c) share,
 * and nobody else sees.
 */
#ifndef CALIB_REPORT_H
#define CALIB_REPORT_H

#include "internal.h"

/* Appends x formatted with the printf format fmt, a leading '-' written as
 * a true minus sign (&#8722;), or an em dash when x is not finite (a
 * metric that does not apply).  Call it in the C locale only:
 * calib_render_report switches its thread to it. */
void calib__report_num(calib__buf *b, const char *fmt, double x);

/* Appends s escaped for HTML text and attributes (invalid UTF-8 becomes
 * U+FFFD). */
void calib__report_esc(calib__buf *b, const char *s);

/* Appends the table of metrics before (and after, when not NULL). */
void calib__report_metric_table(calib__buf *b, const calib_metrics *before,
                                const calib_metrics *after);

/* The method of a calibrator as the page names it ("Platt scaling"), or
 * "recalibration" for NULL. */
const char *calib__report_method_phrase(const calib_calibrator *c);

/* Whether c is temperature scaling (the page's T, the NLL-over-T chart). */
static inline int calib__report_temperature(const calib_calibrator *c)
{
    return calib_calibrator_method(c) == CALIB_METHOD_TEMPERATURE;
}

/* Appends the fit section of s->calibrator (nothing without one):
 * report_fit.c. */
void calib__report_fit_section(calib__buf *b, const calib_report_spec *s);

/* Appends the NLL-over-T chart of s->curve_t and s->curve_nll (n_curve >=
 * 2 points, T positive and increasing, as calib_render_report checked) as
 * an inline SVG <figure>, marking T = 1 and the fitted temperature t where
 * the curve spans them.  Appends nothing when no NLL is finite. */
void calib__report_nll_chart(calib__buf *b, const calib_report_spec *s,
                             double t);

#endif /* CALIB_REPORT_H */
