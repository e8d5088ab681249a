/* plot_layout.c — the reliability diagram's geometry, computed once.
 *
 * The figure follows Guo et al. (2017, fig. 1) and Niculescu-Mizil and
 * Caruana (2005): accuracy against confidence per bin, the diagonal y = x
 * as perfect calibration, and the rows per bin underneath.  One series is
 * drawn as bars spanning each bin's true [lower, upper] with the gap to the
 * bin's mean confidence shaded (vermillion where the model is
 * over-confident, green where it is under-confident); several series as
 * points joined by lines, one colour each, since overlapping bars cannot be
 * read.  Empty bins are hatched slots, never zero-height bars.  The counts
 * panel plots log10(1 + count): over-confident models put most rows in the
 * last bin, and a linear axis would hide every other bin.
 *
 * The output is a display list (plot.h), built here with the scene
 * primitives (calib__scene_*) that plot_legend.c also draws the legend and
 * headline box with.
 */
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

calib__rgba calib__rgb(unsigned hex, double alpha)
{
    return (calib__rgba){(unsigned char)(hex >> 16), (unsigned char)(hex >> 8),
                         (unsigned char)hex, alpha};
}

calib__rgba calib__palette(size_t i, double alpha)
{
    static const unsigned okabe_ito[CALIB__PLOT_MAX_SERIES] = {
        0x0072B2, 0xD55E00, 0x009E73, 0xCC79A7,
        0xE69F00, 0x56B4E9, 0x000000, 0xF0E442};
    return calib__rgb(okabe_ito[i % CALIB__PLOT_MAX_SERIES], alpha);
}

#define INK 0x222222
#define GRID 0xE3E3E3

/* No colour: a shape without a fill or without a stroke. */
static const calib__rgba clear = {0, 0, 0, 0.0};

/* ------------------------------------------------------------------ */
/* Geometry                                                            */
/* ------------------------------------------------------------------ */

double calib__plot_x(const calib__rect *p, double v)
{
    return p->x + clampd(v, 0.0, 1.0) * p->w;
}

double calib__plot_y(const calib__rect *p, double a)
{
    return p->y + p->h - clampd(a, 0.0, 1.0) * p->h;
}

int calib__plot_bin_empty(const calib_bin *b)
{
    return b->count == 0 || !(b->weight > 0) || !isfinite(b->accuracy) ||
           !isfinite(b->mean_confidence);
}

/* A bin narrower than a hairline (torchmetrics' [1, 1], or equal-mass
 * ties) would vanish: it gets the hairline width, centred on the bin. */
calib__rect calib__plot_bar(const calib__rect *p, const calib_bin *b)
{
    const double x0 = calib__plot_x(p, b->lower);
    const double x1 = calib__plot_x(p, b->upper);
    const double thin = fmax(2.0, 0.004 * p->w);
    const double acc = calib__plot_bin_empty(b) ? 0.0
                                                : clampd(b->accuracy, 0, 1);
    calib__rect r = {x0, calib__plot_y(p, acc), x1 - x0, acc * p->h};
    if (r.w < thin) {
        r.x = (x0 + x1 - thin) / 2.0;
        r.w = thin;
    }
    return r;
}

/* ------------------------------------------------------------------ */
/* The display list                                                    */
/* ------------------------------------------------------------------ */

calib__item *calib__scene_push(calib__scene *s, calib__item_kind kind,
                               const char *cls)
{
    if (s->failed)
        return NULL;
    if (s->n == s->cap) {
        const size_t cap = s->cap ? 2 * s->cap : 256;
        calib__item *items = realloc(s->items, cap * sizeof *items);
        if (!items) {
            s->failed = 1;
            return NULL;
        }
        s->items = items;
        s->cap = cap;
    }
    calib__item *it = &s->items[s->n++];
    memset(it, 0, sizeof *it);
    it->kind = kind;
    it->cls = cls;
    it->data = (calib__item_data){-1, -1, NAN, NAN, 0, NAN, NAN};
    return it;
}

void calib__plot_scene_free(calib__scene *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].pts);
        free(s->items[i].text);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

calib__item *calib__scene_rect(calib__scene *s, const char *cls,
                               calib__rect r, calib__rgba fill,
                               calib__rgba stroke, double sw)
{
    calib__item *it = calib__scene_push(s, CALIB__RECT, cls);
    if (it) {
        it->x = r.x, it->y = r.y, it->w = r.w, it->h = r.h;
        it->fill = fill, it->stroke = stroke, it->stroke_width = sw;
    }
    return it;
}

calib__item *calib__scene_line(calib__scene *s, const char *cls, double x0,
                               double y0, double x1, double y1,
                               calib__rgba stroke, double sw, int dash)
{
    calib__item *it = calib__scene_push(s, CALIB__LINE, cls);
    if (it) {
        it->x = x0, it->y = y0, it->w = x1 - x0, it->h = y1 - y0;
        it->stroke = stroke, it->stroke_width = sw, it->dash = dash;
    }
    return it;
}

calib__item *calib__scene_text(calib__scene *s, const char *cls, double x,
                               double y, const char *str, double size,
                               calib__anchor anchor)
{
    calib__item *it = calib__scene_push(s, CALIB__TEXT, cls);
    if (!it)
        return NULL;
    it->x = x, it->y = y;
    it->font_size = size;
    it->anchor = anchor;
    it->fill = calib__rgb(INK, 1.0);
    it->text = calib__plot_clean_text(str, 4096);
    if (!it->text) {
        s->failed = 1;
        return NULL;
    }
    return it;
}

static void set_bin(calib__item *it, int series, size_t b, const calib_bin *bin)
{
    if (!it)
        return;
    it->data = (calib__item_data){series, (long)b, bin->lower, bin->upper,
                                  bin->count, bin->accuracy,
                                  bin->mean_confidence};
}

void calib__scene_hatch(calib__scene *s, calib__rect r, double step)
{
    const double c0 = r.x + r.y, c1 = r.x + r.w + r.y + r.h;
    const size_t n = (size_t)((c1 - c0) / step) + 2;
    double *pts = malloc(4 * n * sizeof *pts);
    calib__item *it = pts ? calib__scene_push(s, CALIB__SEGS, "hatch") : NULL;
    if (!it) {
        free(pts);
        s->failed = 1;
        return;
    }
    size_t k = 0;
    for (double i = floor(c0 / step) + 1; i * step < c1 && k + 4 <= 4 * n; i++) {
        const double c = i * step;
        const double xa = fmax(r.x, c - (r.y + r.h)), xb = fmin(r.x + r.w, c - r.y);
        if (xb <= xa)
            continue;
        pts[k++] = xa, pts[k++] = c - xa, pts[k++] = xb, pts[k++] = c - xb;
    }
    it->pts = pts;
    it->n_pts = k / 2;
    it->stroke = calib__rgb(0x888888, 0.55);
    it->stroke_width = 0.7;
}

/* ------------------------------------------------------------------ */
/* Frame, axes, ticks                                                  */
/* ------------------------------------------------------------------ */

/* Margins scale with the font, and the font with the figure, so that a
 * thumbnail and a poster keep the same proportions. */
static void frame(calib__scene *s, const calib_plot_options *opt)
{
    const double k = clampd(fmin(s->width / CALIB__PLOT_W,
                                 s->height / CALIB__PLOT_H), 0.55, 3.0);
    const double fs = 12.0 * k;
    const double left = 5.4 * fs, right = 1.4 * fs, bottom = 3.4 * fs;
    const double top = (opt->title ? 3.2 : 1.2) * fs, gap = 1.0 * fs;
    const double avail_w = s->width - left - right;
    const double avail_h = s->height - top - bottom;
    double counts_h = opt->counts ? fmax(0.2 * avail_h, 3.0 * fs) : 0.0;
    double main_h = avail_h - (opt->counts ? counts_h + gap : 0.0);
    /* A tall figure gives spare height to the counts panel (up to a
     * third) rather than stretch the accuracy panel. */
    if (opt->counts && main_h > avail_w) {
        const double spare = fmin(main_h - avail_w, avail_h / 3.0 - counts_h);
        if (spare > 0)
            counts_h += spare, main_h -= spare;
    }
    /* A wide one keeps the panel near square, so y = x stays near 45°. */
    const double main_w = fmin(avail_w, 1.15 * main_h);
    const double x = left + (avail_w - main_w) / 2.0;
    s->font_size = fs;
    s->main = (calib__rect){x, top, main_w, main_h};
    s->counts = (calib__rect){x, top + main_h + gap, main_w,
                              opt->counts ? counts_h : 0.0};
}

static void axis_title(calib__scene *s, const calib__rect *p, const char *t)
{
    calib__item *it = calib__scene_text(s, "axis-label", 1.45 * s->font_size,
                                        p->y + p->h / 2.0, t,
                                        1.05 * s->font_size, CALIB__MIDDLE);
    if (it)
        it->rotate = 1;
}

static void axes_main(calib__scene *s)
{
    const calib__rect *p = &s->main;
    const double fs = s->font_size;
    calib__scene_rect(s, "panel", *p, calib__rgb(0xFFFFFF, 1.0), clear, 0);
    for (int t = 0; t <= 5; t++) {
        const double v = t / 5.0, x = calib__plot_x(p, v);
        const double y = calib__plot_y(p, v);
        char lab[16];
        if (t > 0 && t < 5) {
            calib__scene_line(s, "grid", x, p->y, x, p->y + p->h,
                              calib__rgb(GRID, 1), 0.8, 0);
            calib__scene_line(s, "grid", p->x, y, p->x + p->w, y,
                              calib__rgb(GRID, 1), 0.8, 0);
        }
        calib__scene_line(s, "tick", p->x - 0.3 * fs, y, p->x, y,
                          calib__rgb(INK, 1), 0.8, 0);
        calib__scene_text(s, "tick-label", p->x - 0.5 * fs, y + 0.36 * fs,
                          calib__plot_fixed(lab, sizeof lab, v, 1, 0), fs,
                          CALIB__END);
    }
    axis_title(s, p, "Accuracy");
}

/* The x ticks and their labels go under the lowest panel only. */
static void axes_x(calib__scene *s)
{
    const calib__rect *p = s->counts.h > 0 ? &s->counts : &s->main;
    const double fs = s->font_size, bottom = p->y + p->h;
    for (int t = 0; t <= 5; t++) {
        const double v = t / 5.0, x = calib__plot_x(p, v);
        char lab[16];
        if (t > 0 && t < 5 && p == &s->counts)
            calib__scene_line(s, "grid", x, p->y, x, bottom,
                              calib__rgb(GRID, 1), 0.8, 0);
        calib__scene_line(s, "tick", x, bottom, x, bottom + 0.3 * fs,
                          calib__rgb(INK, 1), 0.8, 0);
        calib__scene_text(s, "tick-label", x, bottom + 1.35 * fs,
                          calib__plot_fixed(lab, sizeof lab, v, 1, 0), fs,
                          CALIB__MIDDLE);
    }
    calib__scene_text(s, "axis-label", p->x + p->w / 2.0, bottom + 2.85 * fs,
                      "Confidence", 1.05 * s->font_size, CALIB__MIDDLE);
}

static void panel_frames(calib__scene *s)
{
    calib__scene_rect(s, "frame", s->main, clear, calib__rgb(INK, 0.85), 0.9);
    if (s->counts.h > 0)
        calib__scene_rect(s, "frame", s->counts, clear, calib__rgb(INK, 0.85),
                          0.9);
}

/* ------------------------------------------------------------------ */
/* Counts panel: log10(1 + count)                                      */
/* ------------------------------------------------------------------ */

static double count_y(const calib__rect *p, double c, double cmax)
{
    return p->y + p->h - p->h * log10(1.0 + c) / log10(1.0 + cmax);
}

static void compact_count(char *buf, size_t size, double c)
{
    static const char *const sfx[] = {"", "k", "M", "G", "T"};
    int e = 0;
    while (c >= 1000.0 && e < 4)
        c /= 1000.0, e++;
    snprintf(buf, size, "%llu%s", (unsigned long long)(c + 0.5), sfx[e]);
}

static void count_ticks(calib__scene *s, double cmax)
{
    const calib__rect *p = &s->counts;
    const double fs = s->font_size;
    double last = INFINITY;
    for (double c = 0; c <= cmax; c = c == 0 ? 1 : c * 10) {
        const double y = count_y(p, c, cmax);
        char lab[32];
        if (last - y < 1.3 * fs)
            continue; /* labels would collide: keep every other decade */
        last = y;
        if (c > 0)
            calib__scene_line(s, "grid", p->x, y, p->x + p->w, y,
                              calib__rgb(GRID, 1), 0.8, 0);
        calib__scene_line(s, "tick", p->x - 0.3 * fs, y, p->x, y,
                          calib__rgb(INK, 1), 0.8, 0);
        compact_count(lab, sizeof lab, c);
        calib__scene_text(s, "tick-label", p->x - 0.5 * fs, y + 0.36 * fs, lab,
                          fs, CALIB__END);
    }
    axis_title(s, p, "Count (log)");
}

static void counts_panel(calib__scene *s, const calib_metrics *const *m,
                         size_t n)
{
    const calib__rect *p = &s->counts;
    if (p->h <= 0)
        return;
    double cmax = 1;
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < m[i]->n_bins; b++)
            cmax = fmax(cmax, (double)m[i]->bins[b].count);
    calib__scene_rect(s, "counts-panel", *p, calib__rgb(0xFFFFFF, 1.0), clear,
                      0);
    count_ticks(s, cmax);
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < m[i]->n_bins; b++) {
            const calib_bin *bin = &m[i]->bins[b];
            if (calib__plot_bin_empty(bin))
                continue;
            calib__rect r = calib__plot_bar(p, bin);
            r.y = count_y(p, (double)bin->count, cmax);
            r.h = p->y + p->h - r.y;
            calib__item *it =
                n == 1 ? calib__scene_rect(s, "count", r,
                                           calib__palette(0, 0.6),
                                           calib__rgb(0xFFFFFF, 1), 0.6)
                       : calib__scene_rect(s, "count", r,
                                           calib__palette(i, 0.07),
                                           calib__palette(i, 0.9), 1.1);
            set_bin(it, (int)i, b, bin);
        }
}

/* ------------------------------------------------------------------ */
/* The data: bars (one series) or points (several)                    */
/* ------------------------------------------------------------------ */

static void bars(calib__scene *s, const calib_metrics *m)
{
    const calib__rect *p = &s->main;
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *bin = &m->bins[b];
        const calib__rect r = calib__plot_bar(p, bin);
        if (calib__plot_bin_empty(bin)) {
            const calib__rect slot = {r.x, p->y, r.w, p->h};
            set_bin(calib__scene_rect(s, "empty", slot,
                                      calib__rgb(0x888888, 0.06), clear, 0),
                    0, b, bin);
            calib__scene_hatch(s, slot, 0.55 * s->font_size);
            continue;
        }
        set_bin(calib__scene_rect(s, "bar", r, calib__palette(0, 0.82),
                                  calib__rgb(0xFFFFFF, 1.0), 0.6),
                0, b, bin);
        const double ya = calib__plot_y(p, bin->accuracy);
        const double yc = calib__plot_y(p, bin->mean_confidence);
        const int over = bin->accuracy < bin->mean_confidence;
        const unsigned colour = over ? CALIB__PLOT_OVER : CALIB__PLOT_UNDER;
        const calib__rect g = {r.x, fmin(ya, yc), r.w, fabs(ya - yc)};
        set_bin(calib__scene_rect(s, over ? "gap over" : "gap under", g,
                                  calib__rgb(colour, 0.38),
                                  calib__rgb(colour, 0.9), 0.9),
                0, b, bin);
    }
}

static void diagonal(calib__scene *s)
{
    const calib__rect *p = &s->main;
    calib__scene_line(s, "diagonal", p->x, p->y + p->h, p->x + p->w, p->y,
                      calib__rgb(0x555555, 0.9), 0.11 * s->font_size, 1);
}

/* The curve is pushed whole before the dots: calib__scene_push() may move
 * the items, so no item pointer is held across it. */
static void points(calib__scene *s, const calib_metrics *m, int si)
{
    const calib__rect *p = &s->main;
    double *pts = malloc(2 * (m->n_bins + 1) * sizeof *pts);
    size_t k = 0;
    for (size_t b = 0; pts && b < m->n_bins; b++)
        if (!calib__plot_bin_empty(&m->bins[b])) {
            pts[k++] = calib__plot_x(p, m->bins[b].mean_confidence);
            pts[k++] = calib__plot_y(p, m->bins[b].accuracy);
        }
    calib__item *curve =
        pts ? calib__scene_push(s, CALIB__POLY, "curve") : NULL;
    if (!curve) {
        free(pts);
        s->failed = 1;
        return;
    }
    curve->pts = pts, curve->n_pts = k / 2;
    curve->stroke = calib__palette((size_t)si, 0.9);
    curve->stroke_width = 0.15 * s->font_size;
    curve->data.series = si;
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *bin = &m->bins[b];
        calib__item *dot = calib__plot_bin_empty(bin)
                               ? NULL
                               : calib__scene_push(s, CALIB__DOT, "point");
        if (!dot)
            continue;
        dot->x = calib__plot_x(p, bin->mean_confidence);
        dot->y = calib__plot_y(p, bin->accuracy);
        dot->w = 0.32 * s->font_size;
        dot->fill = calib__palette((size_t)si, 1.0);
        dot->stroke = calib__rgb(0xFFFFFF, 1.0), dot->stroke_width = 0.8;
        set_bin(dot, si, b, bin);
    }
}

static void title(calib__scene *s, const char *t)
{
    const double size = 1.3 * s->font_size;
    const size_t fit = (size_t)(s->width / (CALIB__PLOT_EM * size));
    char *clean = calib__plot_clean_text(t, fit > 8 ? fit - 2 : 6);
    calib__item *it = clean ? calib__scene_text(s, "title", s->width / 2.0,
                                                2.1 * s->font_size, clean,
                                                size, CALIB__MIDDLE)
                            : NULL;
    if (it)
        it->bold = 1;
    else
        s->failed = 1;
    free(clean);
}

int calib__plot_scene(const calib_metrics *const *series,
                      const char *const *labels, size_t n,
                      const calib_plot_options *opt, calib__scene *out)
{
    memset(out, 0, sizeof *out);
    out->width = opt->width;
    out->height = opt->height;
    frame(out, opt);
    calib__scene_rect(out, "background",
                      (calib__rect){0, 0, out->width, out->height},
                      calib__rgb(0xFFFFFF, 1), clear, 0);
    axes_main(out);
    counts_panel(out, series, n);
    axes_x(out);
    if (n == 1)
        bars(out, series[0]);
    diagonal(out);
    for (size_t i = 0; n > 1 && i < n; i++)
        points(out, series[i], (int)i);
    panel_frames(out);
    calib__plot_legend(out, series, labels, n, opt);
    if (opt->title && opt->title[0])
        title(out, opt->title);
    if (out->failed) {
        calib__plot_scene_free(out);
        return CALIB_ENOMEM;
    }
    return CALIB_OK;
}
