/* plot_legend.c — the reliability diagram's legend and headline box.
 *
 * One box of rows, each an optional swatch, a left-aligned label and
 * right-aligned number columns: for one series its headline (ECE, MCE,
 * accuracy, N) and a key to the bars, gaps and empty bins; for several a
 * table with one row per series.  Widths are estimated from code points
 * (CALIB__PLOT_EM), not measured, so that SVG and cairo get the same box.
 * The box goes to whichever corner of the accuracy panel hides the least
 * data, scored from the items already in the scene.
 */
#include "plot.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No colour: a row without a swatch, a shape without a stroke. */
static const calib__rgba clear = {0, 0, 0, 0.0};

#define MAX_ROWS 12
#define MAX_COLS 5

/* SW_UNDER is the under-confidence gap as the plot shows it: over a bar. */
typedef enum swatch {
    SW_NONE, SW_FILL, SW_UNDER, SW_HATCH, SW_DASH, SW_MARK
} swatch;

/* Cell 0 is left-aligned text (a label), cells 1.. right-aligned numbers. */
typedef struct key_row {
    swatch sw;
    calib__rgba colour;
    const char *cls;
    int series;
    char cell[MAX_COLS][256];
} key_row;

typedef struct key_box {
    key_row row[MAX_ROWS];
    size_t n;
    double fs, col_w[MAX_COLS];
    calib__rect r;
    int failed;               /* a label could not be copied */
} key_box;

static key_row *add_row(key_box *k, swatch sw, calib__rgba colour,
                        const char *cls, int series, const char *cell0)
{
    assert(k->n < MAX_ROWS);
    key_row *r = &k->row[k->n++];
    memset(r, 0, sizeof *r);
    r->sw = sw, r->colour = colour, r->cls = cls, r->series = series;
    snprintf(r->cell[0], sizeof r->cell[0], "%s", cell0);
    return r;
}

static size_t code_points(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void single_rows(key_box *k, const calib_metrics *m, const char *label,
                        const calib_plot_options *opt)
{
    if (label)
        add_row(k, SW_NONE, clear, "legend-label", 0, label);
    if (opt->headline) {
        char a[32], b[32], line1[96];
        snprintf(line1, sizeof line1, "ECE %s   MCE %s",
                 calib__plot_fixed(a, sizeof a, m->ece, 4, 0),
                 calib__plot_fixed(b, sizeof b, m->mce, 4, 0));
        add_row(k, SW_NONE, clear, "headline", 0, line1);
        snprintf(line1, sizeof line1, "accuracy %s   N %zu",
                 calib__plot_fixed(a, sizeof a, m->accuracy, 4, 0), m->n);
        add_row(k, SW_NONE, clear, "headline", 0, line1);
    }
    int over = 0, under = 0, empty = 0;
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *bin = &m->bins[b];
        empty |= calib__plot_bin_empty(bin);
        if (!calib__plot_bin_empty(bin)) {
            over |= bin->accuracy < bin->mean_confidence;
            under |= bin->accuracy > bin->mean_confidence;
        }
    }
    add_row(k, SW_FILL, calib__palette(0, 0.82), "legend-key", -1,
            "accuracy per bin");
    if (over)
        add_row(k, SW_FILL, calib__rgb(CALIB__PLOT_OVER, 0.38), "legend-key",
                -1, "gap: over-confident");
    if (under)
        add_row(k, SW_UNDER, calib__rgb(CALIB__PLOT_UNDER, 0.38), "legend-key",
                -1, "gap: under-confident");
    if (empty)
        add_row(k, SW_HATCH, calib__rgb(0x888888, 0.06), "legend-key", -1,
                "empty bin");
}

/* Labels are cut to what leaves the box inside the panel. */
static void multi_rows(key_box *k, const calib_metrics *const *m,
                       const char *const *labels, size_t n,
                       const calib_plot_options *opt, double max_w)
{
    if (opt->headline) {
        key_row *h = add_row(k, SW_NONE, clear, "legend-head", -1, "");
        static const char *const heads[] = {"ECE", "MCE", "acc", "N"};
        for (int j = 1; j < MAX_COLS; j++)
            snprintf(h->cell[j], sizeof h->cell[j], "%s", heads[j - 1]);
    }
    const double cw = CALIB__PLOT_EM * k->fs;
    const double numbers = opt->headline ? 4 * (7 + 1.6) * cw : 0;
    const double room = max_w - numbers - 4.5 * k->fs;
    const size_t max_chars = room / cw > 6 ? (size_t)(room / cw) : 6;
    for (size_t i = 0; i < n; i++) {
        char fallback[32];
        snprintf(fallback, sizeof fallback, "series %zu", i + 1);
        const char *l = labels && labels[i] ? labels[i] : fallback;
        char *clean = calib__plot_clean_text(l, max_chars);
        k->failed |= !clean; /* out of memory: never a wrong label */
        key_row *r = add_row(k, SW_MARK, calib__palette(i, 1.0),
                             "legend-label", (int)i, clean ? clean : "?");
        free(clean);
        if (!opt->headline)
            continue;
        calib__plot_fixed(r->cell[1], sizeof r->cell[1], m[i]->ece, 4, 0);
        calib__plot_fixed(r->cell[2], sizeof r->cell[2], m[i]->mce, 4, 0);
        calib__plot_fixed(r->cell[3], sizeof r->cell[3], m[i]->accuracy, 4, 0);
        snprintf(r->cell[4], sizeof r->cell[4], "%zu", m[i]->n);
    }
}

static void box_size(key_box *k)
{
    const double fs = k->fs, cw = CALIB__PLOT_EM * fs;
    int sw = 0;
    for (size_t r = 0; r < k->n; r++) {
        sw |= k->row[r].sw != SW_NONE;
        for (int j = 0; j < MAX_COLS; j++)
            k->col_w[j] = fmax(k->col_w[j], code_points(k->row[r].cell[j]) * cw);
    }
    double w = sw ? 2.3 * fs : 0;
    for (int j = 0; j < MAX_COLS; j++)
        w += k->col_w[j] + (j > 0 && k->col_w[j] > 0 ? 1.2 * fs : 0);
    k->r.w = w + 1.4 * fs;
    k->r.h = k->n * 1.5 * fs + 0.9 * fs;
}

static double overlap_area(calib__rect a, calib__rect b)
{
    const double w = fmin(a.x + a.w, b.x + b.w) - fmax(a.x, b.x);
    const double h = fmin(a.y + a.h, b.y + b.h) - fmax(a.y, b.y);
    return w > 0 && h > 0 ? w * h : 0;
}

/* How much of the data a box at `r` would hide: bar area, and for curves
 * samples along each segment. */
static double covered(const calib__scene *s, calib__rect r)
{
    double score = 0;
    const double fs = s->font_size;
    for (size_t i = 0; i < s->n; i++) {
        const calib__item *it = &s->items[i];
        const int data = strcmp(it->cls, "bar") == 0 ||
                         strncmp(it->cls, "gap", 3) == 0;
        if (it->kind == CALIB__RECT && data)
            score += overlap_area(r, (calib__rect){it->x, it->y, it->w, it->h});
        if (it->kind == CALIB__DOT && it->x >= r.x && it->x <= r.x + r.w &&
            it->y >= r.y && it->y <= r.y + r.h)
            score += 16 * fs * fs;
        for (size_t p = 0; it->kind == CALIB__POLY && p + 1 < it->n_pts; p++)
            for (int t = 0; t < 16; t++) {
                const double u = t / 16.0, *q = it->pts + 2 * p;
                const double x = q[0] + u * (q[2] - q[0]), y = q[1] + u * (q[3] - q[1]);
                if (x >= r.x && x <= r.x + r.w && y >= r.y && y <= r.y + r.h)
                    score += fs * fs;
            }
    }
    return score;
}

/* Corners in order of preference: top-left is empty for over-confident
 * models, bottom-right for under-confident ones. */
static void place_box(const calib__scene *s, key_box *k)
{
    const calib__rect *p = &s->main;
    const double inset = 0.6 * s->font_size, w = k->r.w, h = k->r.h;
    const double left = p->x + inset, right = p->x + p->w - inset - w;
    const double top = p->y + inset, bottom = p->y + p->h - inset - h;
    const calib__rect corner[4] = {{left, top, w, h}, {right, bottom, w, h},
                                   {right, top, w, h}, {left, bottom, w, h}};
    double best = INFINITY;
    for (int i = 0; i < 4; i++) {
        const double c = covered(s, corner[i]);
        if (c < best)
            best = c, k->r = corner[i];
    }
}

static void draw_swatch(calib__scene *s, const key_row *row, double x,
                        double cy, double fs)
{
    const calib__rect r = {x, cy - 0.42 * fs, 1.8 * fs, 0.84 * fs};
    calib__item *it;
    switch (row->sw) {
    case SW_UNDER:
    case SW_FILL:
        if (row->sw == SW_UNDER) /* the gap is drawn over a bar */
            calib__scene_rect(s, "legend-swatch", r, calib__palette(0, 0.82),
                              clear, 0);
        calib__scene_rect(s, "legend-swatch", r, row->colour, clear, 0);
        break;
    case SW_HATCH:
        calib__scene_rect(s, "legend-swatch", r, row->colour,
                          calib__rgb(0x888888, 0.5), 0.6);
        calib__scene_hatch(s, r, 0.55 * s->font_size);
        break;
    case SW_DASH:
        calib__scene_line(s, "legend-swatch", r.x, cy, r.x + r.w, cy,
                          calib__rgb(0x555555, 0.9), 0.11 * s->font_size, 1);
        break;
    case SW_MARK:
        calib__scene_line(s, "legend-swatch", r.x, cy, r.x + r.w, cy,
                          row->colour, 0.15 * s->font_size, 0);
        if ((it = calib__scene_push(s, CALIB__DOT, "legend-swatch")) != NULL) {
            it->x = r.x + r.w / 2, it->y = cy, it->w = 0.32 * s->font_size;
            it->fill = row->colour, it->stroke = calib__rgb(0xFFFFFF, 1);
            it->stroke_width = 0.8;
        }
        break;
    case SW_NONE:
        break;
    }
}

static void draw_box(calib__scene *s, const key_box *k)
{
    const double fs = k->fs, x = k->r.x + 0.7 * fs;
    int sw = 0;
    for (size_t r = 0; r < k->n; r++)
        sw |= k->row[r].sw != SW_NONE;
    calib__scene_rect(s, "legend", k->r, calib__rgb(0xFFFFFF, 0.9),
                      calib__rgb(0xAAAAAA, 1), 0.8);
    for (size_t r = 0; r < k->n; r++) {
        const key_row *row = &k->row[r];
        const double cy = k->r.y + 0.45 * fs + (r + 0.5) * 1.5 * fs;
        const double base = cy + 0.36 * fs;
        /* a row without a swatch (a title) starts at the edge; the number
         * columns stay put */
        double cx = x + (sw ? 2.3 * fs : 0);
        draw_swatch(s, row, x, cy, fs);
        calib__item *t = calib__scene_text(s, row->cls, row->sw ? cx : x,
                                           base, row->cell[0], fs,
                                           CALIB__START);
        if (t)
            t->data.series = row->series, t->bold = row->cls[0] == 'h';
        cx += k->col_w[0];
        for (int j = 1; j < MAX_COLS && k->col_w[j] > 0; j++) {
            cx += 1.2 * fs + k->col_w[j];
            const char *cls = row->series >= 0 ? "headline" : row->cls;
            t = calib__scene_text(s, cls, cx, base, row->cell[j], fs,
                                  CALIB__END);
            if (t)
                t->data.series = row->series, t->bold = row->series < 0;
        }
    }
}

void calib__plot_legend(calib__scene *s, const calib_metrics *const *m,
                        const char *const *labels, size_t n,
                        const calib_plot_options *opt)
{
    key_box k;
    memset(&k, 0, sizeof k);
    k.fs = (n == 1 ? 0.92 : 0.85) * s->font_size;
    if (n == 1) {
        single_rows(&k, m[0], labels ? labels[0] : NULL, opt);
    } else {
        multi_rows(&k, m, labels, n, opt, 0.92 * s->main.w);
    }
    add_row(&k, SW_DASH, clear, "legend-key", -1, "perfect calibration");
    if (k.failed)
        s->failed = 1;
    box_size(&k);
    place_box(s, &k);
    draw_box(s, &k);
}
