/* plot_cairo.c — the diagram as PNG or PDF, painted with cairo.
 *
 * The scene (plot_layout.c) is painted item by item, in order, so the PNG
 * and the PDF show what the SVG shows.  PNG: an ARGB image surface the
 * size of the scene in pixels, written to memory with
 * cairo_surface_write_to_png_stream.  PDF: one page the size of the scene
 * in points, from cairo_pdf_surface_create_for_stream.  Both stream into a
 * growable buffer; nothing touches the file system.  Text goes through
 * cairo's "toy" font API with DejaVu Sans (fontconfig falls back to any
 * sans face), anti-aliased; anchors are placed with the measured extents.
 */
#include "plot.h"

#include <cairo.h>
#include <cairo-pdf.h>
#include <stdlib.h>
#include <string.h>

typedef struct sink {
    unsigned char *data;
    size_t len, cap;
    int nomem;                /* a write failed for lack of memory */
} sink;

static cairo_status_t sink_write(void *closure, const unsigned char *data,
                                 unsigned int length)
{
    sink *s = closure;
    if (s->len + length > s->cap) {
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->len + length)
            cap *= 2;
        unsigned char *d = realloc(s->data, cap);
        if (!d) {
            s->nomem = 1; /* cairo only hears "write error" */
            return CAIRO_STATUS_WRITE_ERROR;
        }
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, data, length);
    s->len += length;
    return CAIRO_STATUS_SUCCESS;
}

static void source(cairo_t *cr, calib__rgba c)
{
    cairo_set_source_rgba(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0, c.a);
}

static void stroke_style(cairo_t *cr, const calib__item *it)
{
    const double w = it->stroke_width;
    const double dashed[] = {4 * w, 3 * w}, dotted[] = {w, 2 * w};
    cairo_set_line_width(cr, w);
    if (it->dash == 1)
        cairo_set_dash(cr, dashed, 2, 0);
    else if (it->dash == 2)
        cairo_set_dash(cr, dotted, 2, 0);
    else
        cairo_set_dash(cr, NULL, 0, 0);
}

/* Fills then strokes the current path, as SVG's fill and stroke do. */
static void paint_path(cairo_t *cr, const calib__item *it)
{
    if (it->fill.a > 0) {
        source(cr, it->fill);
        cairo_fill_preserve(cr);
    }
    if (it->stroke.a > 0 && it->stroke_width > 0) {
        source(cr, it->stroke);
        stroke_style(cr, it);
        cairo_stroke_preserve(cr);
    }
    cairo_new_path(cr);
}

static void paint_text(cairo_t *cr, const calib__item *it)
{
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                           it->bold ? CAIRO_FONT_WEIGHT_BOLD
                                    : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, it->font_size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, it->text, &e);
    const double shift = it->anchor == CALIB__MIDDLE ? e.x_advance / 2.0
                         : it->anchor == CALIB__END  ? e.x_advance
                                                     : 0.0;
    cairo_save(cr);
    cairo_translate(cr, it->x, it->y);
    if (it->rotate)
        cairo_rotate(cr, -M_PI / 2.0);
    cairo_move_to(cr, -shift, 0);
    source(cr, it->fill);
    cairo_show_text(cr, it->text);
    cairo_restore(cr);
    cairo_new_path(cr);
}

static void paint_item(cairo_t *cr, const calib__item *it)
{
    switch (it->kind) {
    case CALIB__RECT:
        cairo_rectangle(cr, it->x, it->y, it->w, it->h);
        break;
    case CALIB__LINE:
        cairo_move_to(cr, it->x, it->y);
        cairo_line_to(cr, it->x + it->w, it->y + it->h);
        break;
    case CALIB__POLY:
    case CALIB__SEGS:
        for (size_t i = 0; i < it->n_pts; i++) {
            const double x = it->pts[2 * i], y = it->pts[2 * i + 1];
            if (i == 0 || (it->kind == CALIB__SEGS && i % 2 == 0))
                cairo_move_to(cr, x, y);
            else
                cairo_line_to(cr, x, y);
        }
        break;
    case CALIB__DOT:
        cairo_new_sub_path(cr);
        cairo_arc(cr, it->x, it->y, it->w, 0, 2 * M_PI);
        break;
    case CALIB__TEXT:
        paint_text(cr, it);
        return;
    }
    paint_path(cr, it);
}

static void paint_scene(cairo_t *cr, const calib__scene *s)
{
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (size_t i = 0; i < s->n; i++)
        paint_item(cr, &s->items[i]);
}

/* Paints onto `surface`, finishes it and reports cairo's verdict. */
static int paint_finish(cairo_surface_t *surface, const calib__scene *s,
                        calib_plot_format fmt, sink *out)
{
    cairo_t *cr = cairo_create(surface);
    paint_scene(cr, s);
    if (fmt == CALIB_PLOT_PDF)
        cairo_show_page(cr);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (!st && fmt == CALIB_PLOT_PNG)
        st = cairo_surface_write_to_png_stream(surface, sink_write, out);
    cairo_surface_finish(surface);
    if (!st)
        st = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    return (int)st;
}

int calib__render_cairo(const calib__scene *s, calib_plot_format fmt,
                        unsigned char **out, size_t *len, calib_error *err)
{
    sink buf = {0};
    cairo_surface_t *surface =
        fmt == CALIB_PLOT_PDF
            ? cairo_pdf_surface_create_for_stream(sink_write, &buf, s->width,
                                                  s->height)
            : cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)s->width,
                                         (int)s->height);
    const int st = paint_finish(surface, s, fmt, &buf);
    if (st != CAIRO_STATUS_SUCCESS) {
        free(buf.data);
        const int code = st == CAIRO_STATUS_NO_MEMORY || buf.nomem
                             ? CALIB_ENOMEM
                             : CALIB_EIO;
        return calib__fail(err, code, NULL, 0, 0, 0, "cairo: %s",
                           cairo_status_to_string((cairo_status_t)st));
    }
    *out = buf.data;
    *len = buf.len;
    return calib__ok(err);
}
