/* report.h — what the report's files (report_html.c, report_chart.c) share,
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

/* Appends the NLL-over-T chart of s->curve_t and s->curve_nll (n_curve >=
 * 2 points, T positive and increasing, as calib_render_report checked) as
 * an inline SVG <figure>, marking T = 1 and the fitted temperature t where
 * the curve spans them.  Appends nothing when no NLL is finite. */
void calib__report_nll_chart(calib__buf *b, const calib_report_spec *s,
                             double t);

#endif /* CALIB_REPORT_H */
