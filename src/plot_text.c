/* plot_text.c — the diagram in a terminal, and the text every diagram shares.
 *
 * The terminal chart is what `calib eval` prints for a first look: one
 * headline per series, then accuracy against confidence on a character
 * grid with the diagonal y = x.  One series is drawn as bars of Unicode
 * eighth blocks (U+2581..U+2588), so a bar's top is resolved to 1/8 of a
 * row; several as one marker per bin.  With `ascii` only bytes below 0x80
 * are written (bars round to whole rows).  Each column shows the bin that
 * holds the column's centre, so bins keep their true widths; an empty bin
 * is marked on the floor of the chart.
 *
 * The shared text: numbers in the C locale whatever setlocale() said (a
 * host program may run under a comma-decimal locale, and SVG and JSON
 * want a point), the one-line headline, and the cleaning of labels into
 * valid UTF-8 without control characters.
 */
#include "plot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Shared text                                                         */
/* ------------------------------------------------------------------ */

char *calib__plot_fixed(char *buf, size_t size, double x, int dec, int trim)
{
    static const double scale[] = {1e0, 1e1, 1e2, 1e3, 1e4,
                                   1e5, 1e6, 1e7, 1e8, 1e9};
    if (!isfinite(x)) {
        snprintf(buf, size, "nan");
        return buf;
    }
    dec = dec < 0 ? 0 : dec > 9 ? 9 : dec;
    const double r = floor(fabs(x) * scale[dec] + 0.5);
    if (r >= 1e18) { /* %.0f prints no decimal point: locale-proof */
        snprintf(buf, size, "%.0f", x);
        return buf;
    }
    const unsigned long long p = (unsigned long long)scale[dec];
    const unsigned long long v = (unsigned long long)r;
    char frac[32] = "";
    if (dec > 0) {
        snprintf(frac, sizeof frac, ".%0*llu", dec, v % p);
        size_t n = strlen(frac);
        while (trim && n > 0 && (frac[n - 1] == '0' || frac[n - 1] == '.'))
            frac[--n] = '\0';
    }
    snprintf(buf, size, "%s%llu%s", x < 0 && v ? "-" : "", v / p, frac);
    return buf;
}

char *calib__plot_headline(const calib_metrics *m, char *buf, size_t size)
{
    char e[32], c[32], a[32];
    snprintf(buf, size, "ECE %s  MCE %s  acc %s  N %zu",
             calib__plot_fixed(e, sizeof e, m->ece, 4, 0),
             calib__plot_fixed(c, sizeof c, m->mce, 4, 0),
             calib__plot_fixed(a, sizeof a, m->accuracy, 4, 0), m->n);
    return buf;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, no
 * surrogates, nothing past U+10FFFF), or 0 for a bad byte or a control. */
static size_t utf8_len(const unsigned char *p)
{
    const unsigned c = p[0];
    if (c < 0x80)
        return c >= 0x20 && c != 0x7F;
    size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0) ||
        (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90))
        return 0;
    return n;
}

char *calib__plot_clean_text(const char *s, size_t max_chars)
{
    const size_t n = strlen(s);
    char *out = malloc(n + 4);
    if (!out)
        return NULL;
    size_t o = 0, chars = 0, cut = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; chars++) {
        const size_t k = utf8_len(p);
        if (chars + 1 == max_chars)
            cut = o; /* where the ellipsis goes if the text is too long */
        if (k)
            memcpy(out + o, p, k), o += k, p += k;
        else
            out[o++] = '?', p++;
    }
    if (max_chars > 0 && chars > max_chars)
        memcpy(out + cut, "\xE2\x80\xA6", 3), o = cut + 3;
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* The terminal chart                                                  */
/* ------------------------------------------------------------------ */

typedef struct glyphs {
    const char *block[9];     /* 0/8 .. 8/8 of a cell, from the bottom */
    const char *diag, *empty, *axis, *tick, *corner, *rule;
    const char *mark[CALIB__PLOT_MAX_SERIES];
} glyphs;

static const glyphs unicode_glyphs = {
    {" ", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586",
     "\u2587", "\u2588"},
    "\u2571", "\u2591", "\u2502", "\u2524", "\u2514", "\u2500",
    {"\u25CF", "\u25A0", "\u25B2", "\u25C6", "\u25CB", "\u25A1", "\u25B3",
     "\u25C7"}};

static const glyphs ascii_glyphs = {
    {" ", " ", " ", " ", "#", "#", "#", "#", "#"},
    "/", ":", "|", "+", "+", "-",
    {"o", "x", "+", "*", "#", "@", "%", "&"}};

typedef struct chart {
    const glyphs *g;
    int ascii;
    int rows, cols;           /* the plot area, in cells */
    const char **cell;        /* rows * cols glyphs, row 0 at the top */
    calib__buf out;
} chart;

static const calib_bin *bin_at(const calib_metrics *m, double x)
{
    for (size_t b = 0; b < m->n_bins; b++)
        if (m->bins[b].lower <= x && x <= m->bins[b].upper)
            return &m->bins[b];
    return NULL;
}

static void draw_bars(chart *c, const calib_metrics *m)
{
    for (int col = 0; col < c->cols; col++) {
        const calib_bin *b = bin_at(m, (col + 0.5) / c->cols);
        if (!b)
            continue;
        if (calib__plot_bin_empty(b)) {
            c->cell[(size_t)(c->rows - 1) * c->cols + col] = c->g->empty;
            continue;
        }
        const double h = b->accuracy * c->rows;
        for (int rb = 0; rb < c->rows; rb++) {
            const double f = fmin(fmax(h - rb, 0.0), 1.0);
            c->cell[(size_t)(c->rows - 1 - rb) * c->cols + col] =
                c->g->block[(int)floor(f * 8 + 0.5)];
        }
    }
}

static int clampi(double v, int hi)
{
    return v < 0 ? 0 : v > hi ? hi : (int)v;
}

static void draw_marks(chart *c, const calib_metrics *m, size_t si)
{
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *bin = &m->bins[b];
        if (calib__plot_bin_empty(bin))
            continue;
        const int col = clampi(bin->mean_confidence * c->cols, c->cols - 1);
        const int row = c->rows - 1 - clampi(bin->accuracy * c->rows, c->rows - 1);
        c->cell[(size_t)row * c->cols + col] = c->g->mark[si];
    }
}

/* Under the data: the diagonal shows only in cells left blank. */
static void draw_diagonal(chart *c)
{
    for (int col = 0; col < c->cols; col++) {
        const double x = (col + 0.5) / c->cols;
        const int row = c->rows - 1 - clampi(x * c->rows, c->rows - 1);
        const char **cell = &c->cell[(size_t)row * c->cols + col];
        if (strcmp(*cell, " ") == 0)
            *cell = c->g->diag;
    }
}

/* Appends s cleaned and cut to `max` characters; under `ascii` every
 * other character becomes '?' (and the ellipsis "..."). */
static void put_text(chart *c, const char *s, size_t max)
{
    char *t = calib__plot_clean_text(s, max);
    if (!t) {
        c->out.failed = 1;
        return;
    }
    for (const unsigned char *p = (const unsigned char *)t; c->ascii && *p; p++) {
        if (*p < 0x80)
            continue;
        const int dots = memcmp(p, "\xE2\x80\xA6", 3) == 0;
        size_t k = 1;
        while ((p[k] & 0xC0) == 0x80)
            k++;
        memmove((char *)p + 1, p + k, strlen((const char *)p + k) + 1);
        *(unsigned char *)p = dots ? '.' : '?';
    }
    calib__buf_puts(&c->out, t);
    free(t);
}

static void headlines(chart *c, const calib_metrics *const *m,
                      const char *const *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char h[160];
        calib__plot_headline(m[i], h, sizeof h);
        if (n > 1) {
            calib__buf_printf(&c->out, "%s ", c->g->mark[i]);
        }
        if (labels && labels[i]) {
            put_text(c, labels[i], 32);
            calib__buf_puts(&c->out, ": ");
        } else if (n > 1) {
            calib__buf_printf(&c->out, "series %zu: ", i + 1);
        }
        calib__buf_printf(&c->out, "%s\n", h);
    }
}

static void plot_rows(chart *c)
{
    const int mid = (c->rows - 1) / 2;
    for (int r = 0; r < c->rows; r++) {
        const char *lab = r == 0 ? "1.0" : r == c->rows - 1 ? "0.0"
                          : r == mid ? "0.5" : NULL;
        calib__buf_printf(&c->out, "%s %s", lab ? lab : "   ",
                          lab ? c->g->tick : c->g->axis);
        for (int col = 0; col < c->cols; col++)
            calib__buf_puts(&c->out, c->cell[(size_t)r * c->cols + col]);
        calib__buf_puts(&c->out, "\n");
    }
    calib__buf_printf(&c->out, "    %s", c->g->corner);
    for (int col = 0; col < c->cols; col++)
        calib__buf_puts(&c->out, c->g->rule);
    /* "0.0" under the corner, "0.5" centred, "1.0" flush right */
    const int width = 5 + c->cols, half = 5 + c->cols / 2 - 1;
    calib__buf_printf(&c->out, "\n    0.0%*s0.5%*s1.0\n", half - 7, "",
                      width - half - 6, "");
}

static void legend_line(chart *c, const calib_metrics *m)
{
    int empty = 0;
    for (size_t b = 0; b < m->n_bins; b++)
        empty |= calib__plot_bin_empty(&m->bins[b]);
    calib__buf_printf(&c->out, "    %s accuracy per bin  %s perfect calibration",
                      c->ascii ? "#" : c->g->block[8], c->g->diag);
    if (empty)
        calib__buf_printf(&c->out, "  %s empty bin", c->g->empty);
    calib__buf_puts(&c->out, "\n");
}

int calib__render_text(const calib_metrics *const *series,
                       const char *const *labels, size_t n,
                       const calib_plot_options *opt, unsigned char **out,
                       size_t *len, calib_error *err)
{
    chart c = {opt->ascii ? &ascii_glyphs : &unicode_glyphs, opt->ascii, 0,
               opt->width - 5, NULL, {0}};
    const int title = opt->title && opt->title[0];
    const int overhead = title + (int)n + 2 + (n == 1);
    c.rows = opt->height - overhead < 3 ? 3 : opt->height - overhead;
    c.cell = malloc((size_t)c.rows * c.cols * sizeof *c.cell);
    if (!c.cell)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    for (size_t i = 0; i < (size_t)c.rows * c.cols; i++)
        c.cell[i] = " ";
    if (n == 1)
        draw_bars(&c, series[0]);
    for (size_t i = 0; n > 1 && i < n; i++)
        draw_marks(&c, series[i], i);
    draw_diagonal(&c);
    if (title) {
        put_text(&c, opt->title, (size_t)opt->width);
        calib__buf_puts(&c.out, "\n");
    }
    headlines(&c, series, labels, n);
    plot_rows(&c);
    if (n == 1)
        legend_line(&c, series[0]);
    free(c.cell);
    if (c.out.failed) {
        free(c.out.s);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    *out = (unsigned char *)c.out.s;
    *len = c.out.len;
    return calib__ok(err);
}
