/* plot_svg.c — the diagram as hand-written SVG, and calib_render_diagram.
 *
 * SVG is the one format calib writes itself: every element of the scene
 * (plot_layout.c) becomes one element, text stays text (with a list of
 * fonts, so it is editable and searchable), and what an element stands for
 * is kept as class and data-* attributes (class="bar" data-bin="3"
 * data-accuracy="0.8125"), so a reader, a stylesheet or a test can find
 * bin 3 again.  There is no XML declaration and no <defs> with ids, so the
 * output can be inlined into HTML several times over.  Numbers are written
 * by calib__plot_fixed, never by printf's %f, which follows the locale.
 *
 * calib_render_diagram lives here too: it checks the arguments, resolves
 * the defaults and hands the scene to the renderer of the format asked.
 */
#include "plot.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FONTS "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"

static void attr_num(calib__buf *b, const char *name, double v, int dec)
{
    char t[48];
    calib__buf_printf(b, " %s=\"%s\"", name,
                      calib__plot_fixed(t, sizeof t, v, dec, 1));
}

/* "none" for a transparent colour; an opacity attribute only when < 1. */
static void attr_colour(calib__buf *b, const char *name, calib__rgba c)
{
    if (c.a <= 0) {
        calib__buf_printf(b, " %s=\"none\"", name);
        return;
    }
    calib__buf_printf(b, " %s=\"#%02x%02x%02x\"", name, c.r, c.g, c.b);
    if (c.a < 1) {
        char t[32];
        calib__buf_printf(b, " %s-opacity=\"%s\"", name,
                          calib__plot_fixed(t, sizeof t, c.a, 3, 1));
    }
}

static void attr_stroke(calib__buf *b, const calib__item *it)
{
    attr_colour(b, "stroke", it->stroke);
    if (it->stroke.a <= 0)
        return;
    attr_num(b, "stroke-width", it->stroke_width, 3);
    const double w = it->stroke_width;
    char on[32], off[32];
    if (it->dash == 1)
        calib__buf_printf(b, " stroke-dasharray=\"%s %s\"",
                          calib__plot_fixed(on, sizeof on, 4 * w, 3, 1),
                          calib__plot_fixed(off, sizeof off, 3 * w, 3, 1));
    else if (it->dash == 2)
        calib__buf_printf(b, " stroke-dasharray=\"%s %s\"",
                          calib__plot_fixed(on, sizeof on, w, 3, 1),
                          calib__plot_fixed(off, sizeof off, 2 * w, 3, 1));
}

/* Text is already valid UTF-8 without controls (plot_layout.c). */
static void escape(calib__buf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': calib__buf_puts(b, "&lt;"); break;
        case '>': calib__buf_puts(b, "&gt;"); break;
        case '&': calib__buf_puts(b, "&amp;"); break;
        case '"': calib__buf_puts(b, "&quot;"); break;
        default: {
            const char c[2] = {*s, 0};
            calib__buf_puts(b, c);
        }
        }
    }
}

static void attr_data(calib__buf *b, const calib__item_data *d)
{
    if (d->series >= 0)
        calib__buf_printf(b, " data-series=\"%d\"", d->series);
    if (d->bin < 0)
        return;
    calib__buf_printf(b, " data-bin=\"%ld\" data-count=\"%zu\"", d->bin,
                      d->count);
    attr_num(b, "data-lower", d->lower, 9);
    attr_num(b, "data-upper", d->upper, 9);
    if (isfinite(d->accuracy))
        attr_num(b, "data-accuracy", d->accuracy, 9);
    if (isfinite(d->confidence))
        attr_num(b, "data-confidence", d->confidence, 9);
}

/* A polyline's "x,y x,y", or hatching as a path of "M x y L x y" pairs. */
static void points_attr(calib__buf *b, const calib__item *it)
{
    const int path = it->kind == CALIB__SEGS;
    char x[48], y[48];
    for (size_t i = 0; i < it->n_pts; i++) {
        const char *sep = path ? (i % 2 ? " L" : i ? " M" : "M")
                               : (i ? " " : "");
        calib__plot_fixed(x, sizeof x, it->pts[2 * i], 3, 1);
        calib__plot_fixed(y, sizeof y, it->pts[2 * i + 1], 3, 1);
        calib__buf_printf(b, "%s%s%s%s", sep, x, path ? " " : ",", y);
    }
}

static void text_item(calib__buf *b, const calib__item *it)
{
    static const char *const anchors[] = {"start", "middle", "end"};
    calib__buf_printf(b, "<text class=\"%s\"", it->cls);
    attr_num(b, "x", it->x, 3);
    attr_num(b, "y", it->y, 3);
    attr_num(b, "font-size", it->font_size, 2);
    if (it->anchor != CALIB__START)
        calib__buf_printf(b, " text-anchor=\"%s\"", anchors[it->anchor]);
    if (it->bold)
        calib__buf_puts(b, " font-weight=\"bold\"");
    if (it->rotate) {
        char x[48], y[48];
        calib__buf_printf(b, " transform=\"rotate(-90 %s %s)\"",
                          calib__plot_fixed(x, sizeof x, it->x, 3, 1),
                          calib__plot_fixed(y, sizeof y, it->y, 3, 1));
    }
    attr_colour(b, "fill", it->fill);
    attr_data(b, &it->data);
    calib__buf_puts(b, ">");
    escape(b, it->text);
    calib__buf_puts(b, "</text>\n");
}

static void shape_item(calib__buf *b, const calib__item *it)
{
    static const char *const tags[] = {"rect", "line", "polyline", "path",
                                       "circle"};
    calib__buf_printf(b, "<%s class=\"%s\"", tags[it->kind], it->cls);
    switch (it->kind) {
    case CALIB__RECT:
        attr_num(b, "x", it->x, 4), attr_num(b, "y", it->y, 4);
        attr_num(b, "width", it->w, 4), attr_num(b, "height", it->h, 4);
        break;
    case CALIB__LINE:
        attr_num(b, "x1", it->x, 3), attr_num(b, "y1", it->y, 3);
        attr_num(b, "x2", it->x + it->w, 3);
        attr_num(b, "y2", it->y + it->h, 3);
        break;
    case CALIB__POLY:
    case CALIB__SEGS:
        calib__buf_puts(b, it->kind == CALIB__POLY ? " points=\"" : " d=\"");
        points_attr(b, it);
        calib__buf_puts(b, "\"");
        break;
    default:
        attr_num(b, "cx", it->x, 3), attr_num(b, "cy", it->y, 3);
        attr_num(b, "r", it->w, 3);
    }
    attr_colour(b, "fill", it->fill);
    attr_stroke(b, it);
    if (it->kind == CALIB__POLY)
        calib__buf_puts(b, " stroke-linejoin=\"round\"");
    attr_data(b, &it->data);
    calib__buf_puts(b, "/>\n");
}

int calib__render_svg(const calib__scene *s, unsigned char **out,
                      size_t *len, calib_error *err)
{
    calib__buf b = {0};
    char w[32], h[32];
    calib__plot_fixed(w, sizeof w, s->width, 3, 1);
    calib__plot_fixed(h, sizeof h, s->height, 3, 1);
    calib__buf_printf(&b,
                      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\""
                      " class=\"calib-diagram\" width=\"%s\" height=\"%s\""
                      " viewBox=\"0 0 %s %s\" font-family=\"%s\">\n",
                      w, h, w, h, FONTS);
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].kind == CALIB__TEXT)
            text_item(&b, &s->items[i]);
        else
            shape_item(&b, &s->items[i]);
    }
    calib__buf_puts(&b, "</svg>\n");
    if (b.failed) {
        free(b.s);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                           "out of memory writing the SVG");
    }
    *out = (unsigned char *)b.s;
    *len = b.len;
    return calib__ok(err);
}

/* ------------------------------------------------------------------ */
/* The public entry points                                             */
/* ------------------------------------------------------------------ */

void calib_plot_options_init(calib_plot_options *opt)
{
    memset(opt, 0, sizeof *opt);
    /* 0 x 0: the format's own default (640 x 720, or 60 x 16 for text) */
    opt->counts = 1;
    opt->headline = 1;
}

int calib_plot_format_from_path(const char *path, calib_plot_format *out)
{
    static const char *const ext[] = {".svg", ".png", ".pdf", ".txt"};
    const char *dot = path ? strrchr(path, '.') : NULL;
    const char *slash = path ? strrchr(path, '/') : NULL;
    for (int i = 0; dot && dot > (slash ? slash : path) && i < 4; i++)
        if (strcasecmp(dot, ext[i]) == 0) {
            *out = (calib_plot_format)i;
            return CALIB_OK;
        }
    return CALIB_EINVAL;
}

/* Copies the options with the format's defaults filled in, and checks
 * them: a size out of range would mean an unreadable or huge picture. */
static int resolve(const calib_plot_options *in, calib_plot_format fmt,
                   calib_plot_options *o, calib_error *err)
{
    if (in)
        *o = *in;
    else
        calib_plot_options_init(o);
    const int text = fmt == CALIB_PLOT_TEXT;
    if (o->width == 0)
        o->width = text ? CALIB__TEXT_W : CALIB__PLOT_W;
    if (o->height == 0)
        o->height = text ? CALIB__TEXT_H : CALIB__PLOT_H;
    const int lo_w = text ? 24 : CALIB__PLOT_MIN, lo_h = text ? 8 : CALIB__PLOT_MIN;
    const int hi = text ? 1000 : CALIB__PLOT_MAX;
    if (o->width < lo_w || o->width > hi || o->height < lo_h || o->height > hi)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "diagram size %d x %d outside %d..%d x %d..%d",
                           o->width, o->height, lo_w, hi, lo_h, hi);
    return CALIB_OK;
}

static int check_series(const calib_metrics *const *series, size_t n,
                        calib_plot_format fmt, calib_error *err)
{
    if (!series || n == 0 || n > CALIB__PLOT_MAX_SERIES)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "a diagram draws 1 to %d series, not %zu",
                           CALIB__PLOT_MAX_SERIES, series ? n : 0);
    for (size_t i = 0; i < n; i++)
        if (!series[i] || (series[i]->n_bins && !series[i]->bins))
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "series %zu has no metrics", i + 1);
    if ((unsigned)fmt > CALIB_PLOT_TEXT)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown diagram format %d", (int)fmt);
    return CALIB_OK;
}

int calib_render_diagram(const calib_metrics *const *series,
                         const char *const *labels, size_t n,
                         calib_plot_format fmt, const calib_plot_options *opt,
                         unsigned char **out, size_t *len, calib_error *err)
{
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!out || !len)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "no output buffer");
    calib_plot_options o;
    int rc = check_series(series, n, fmt, err);
    if (!rc)
        rc = resolve(opt, fmt, &o, err);
    if (rc)
        return rc;
    if (fmt == CALIB_PLOT_TEXT)
        return calib__render_text(series, labels, n, &o, out, len, err);
    calib__scene s;
    if (calib__plot_scene(series, labels, n, &o, &s) != CALIB_OK)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                           "out of memory laying out the diagram");
    rc = fmt == CALIB_PLOT_SVG ? calib__render_svg(&s, out, len, err)
                               : calib__render_cairo(&s, fmt, out, len, err);
    calib__plot_scene_free(&s);
    return rc;
}
