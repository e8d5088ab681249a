/* report_chart.c — the report's NLL-over-T chart, as inline SVG.
 *
 * The mean validation NLL of temperature scaling at each T of the curve
 * (calib_temperature_curve), on a log-T axis so that T = 0.5 and T = 2 sit
 * equally far from T = 1; the fitted T and T = 1 (the scores as given) are
 * marked where the curve covers them.  Written directly as SVG text rather
 * than through the diagram's scene (plot.h): it is one path and a few
 * rules, and a fixed 640 x 300 viewBox scaled by the page's CSS.  Numbers
 * go through calib__report_num, in the C locale calib_render_report set.
 */
#include "report.h"

#include <stdio.h>

enum { CW = 640, CH = 300, CL = 64, CR = 24, CT = 16, CB = 50 };

typedef struct chart {
    double lx0, lx1;          /* log10 T range  */
    double y0, y1;            /* NLL range      */
} chart;

static double cx(const chart *c, double t)
{
    return CL + (log10(t) - c->lx0) / (c->lx1 - c->lx0) * (CW - CL - CR);
}

static double cy(const chart *c, double v)
{
    return CT + (c->y1 - v) / (c->y1 - c->y0) * (CH - CT - CB);
}

/* 1, 2 or 5 times a power of ten, at least x. */
static double nice_step(double x)
{
    const double p = pow(10.0, floor(log10(x)));
    return x <= p ? p : x <= 2 * p ? 2 * p : x <= 5 * p ? 5 * p : 10 * p;
}

/* The NLL at t, linear in log T between the curve's points; NaN outside. */
static double curve_at(const calib_report_spec *s, double t)
{
    for (size_t i = 0; i + 1 < s->n_curve; i++) {
        const double a = s->curve_t[i], z = s->curve_t[i + 1];
        if (t >= a && t <= z) {
            const double f = a == z ? 0 : log(t / a) / log(z / a);
            return s->curve_nll[i] + f * (s->curve_nll[i + 1] -
                                          s->curve_nll[i]);
        }
    }
    return NAN;
}

static void chart_axes(calib__buf *b, const chart *c)
{
    const double step = nice_step((c->y1 - c->y0) / 5);
    const int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%%.%df", dec);
    calib__buf_puts(b, "<g font-size=\"12\" fill=\"#59636e\">");
    for (long i = (long)ceil(c->y0 / step); i * step <= c->y1; i++) {
        const double v = (double)i * step;
        calib__buf_printf(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f"
                             "\" stroke=\"#e5e9ee\"/><text x=\"%d\" y=\"%.1f\""
                             " text-anchor=\"end\">", CL, CW - CR, cy(c, v),
                          cy(c, v), CL - 6, cy(c, v) + 4);
        calib__report_num(b, fmt, v);
        calib__buf_puts(b, "</text>");
    }
    for (int d = (int)floor(c->lx0); d <= (int)ceil(c->lx1); d++)
        for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
            const double t = m * pow(10.0, d), lt = log10(t);
            if (lt < c->lx0 - 1e-9 || lt > c->lx1 + 1e-9)
                continue;
            calib__buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" "
                                 "y2=\"%d\" stroke=\"#e5e9ee\"/><text x=\"%.1f"
                                 "\" y=\"%d\" text-anchor=\"middle\">",
                              cx(c, t), cx(c, t), CT, CH - CB, cx(c, t),
                              CH - CB + 16);
            calib__report_num(b, "%g", t);
            calib__buf_puts(b, "</text>");
        }
    calib__buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">"
                         "temperature T (log scale)</text><text x=\"14\" "
                         "y=\"%d\" text-anchor=\"middle\" transform=\"rotate"
                         "(-90 14 %d)\">validation NLL</text></g>",
                      (CL + CW - CR) / 2, CH - 10, (CT + CH - CB) / 2,
                      (CT + CH - CB) / 2);
}

/* The curve as one path, broken where a value is not finite. */
static void chart_line(calib__buf *b, const chart *c,
                       const calib_report_spec *s)
{
    calib__buf_puts(b, "<path fill=\"none\" stroke=\"#0969da\" "
                       "stroke-width=\"2.2\" d=\"");
    int pen = 0;
    for (size_t i = 0; i < s->n_curve; i++) {
        const double v = s->curve_nll[i];
        if (!isfinite(v)) {
            pen = 0;
            continue;
        }
        calib__buf_printf(b, "%c%.2f %.2f ", pen ? 'L' : 'M',
                          cx(c, s->curve_t[i]), cy(c, v));
        pen = 1;
    }
    calib__buf_puts(b, "\"/>");
}

/* A marked temperature: a vertical rule, a dot on the curve, and a label
 * on line `row` at the top, haloed so grid lines do not cross it. */
static void chart_mark(calib__buf *b, const chart *c,
                       const calib_report_spec *s, double t,
                       const char *colour, const char *label, int row)
{
    const double v = curve_at(s, t);
    if (!isfinite(v))
        return;
    const double x = cx(c, t), y = cy(c, v);
    const int right = x > (CL + CW - CR) / 2.0;
    calib__buf_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
                         "stroke=\"%s\" stroke-dasharray=\"5 4\"/><circle "
                         "cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"%s\"/>"
                         "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" "
                         "fill=\"%s\" text-anchor=\"%s\" stroke=\"#fff\" "
                         "stroke-width=\"4\" paint-order=\"stroke\">%s = ",
                      x, x, CT, CH - CB, colour, x, y, colour,
                      x + (right ? -7 : 7), CT + 14 + 17 * row, colour,
                      right ? "end" : "start", label);
    calib__report_num(b, "%.4g", t);
    calib__buf_puts(b, ", NLL ");
    calib__report_num(b, "%.4f", v);
    calib__buf_puts(b, "</text>");
}

void calib__report_nll_chart(calib__buf *b, const calib_report_spec *s,
                             double t)
{
    chart c = {log10(s->curve_t[0]), log10(s->curve_t[s->n_curve - 1]),
               INFINITY, -INFINITY};
    for (size_t i = 0; i < s->n_curve; i++)
        if (isfinite(s->curve_nll[i])) {
            c.y0 = fmin(c.y0, s->curve_nll[i]);
            c.y1 = fmax(c.y1, s->curve_nll[i]);
        }
    if (!(c.y0 <= c.y1) || !(c.lx0 < c.lx1))
        return;
    const double pad = c.y1 > c.y0 ? 0.06 * (c.y1 - c.y0) : 0.5;
    c.y0 -= pad, c.y1 += pad;
    calib__buf_printf(b, "<figure class=\"chart\"><svg xmlns=\"http://www."
                         "w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                         "width=\"%d\" height=\"%d\" "
                         "role=\"img\" font-family=\"system-ui,sans-serif\">"
                         "<title>Validation NLL over T</title>",
                      CW, CH, CW, CH);
    chart_axes(b, &c);
    chart_line(b, &c, s);
    chart_mark(b, &c, s, 1.0, "#59636e", "T", 1);
    chart_mark(b, &c, s, t, "#bc4c00", "fitted T", 0);
    calib__buf_puts(b, "</svg><figcaption>Mean NLL of the validation set "
                       "scaled by each T; the fitted T is marked, and T = 1 "
                       "(the scores as given) when it is in range."
                       "</figcaption></figure>");
}
