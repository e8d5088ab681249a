/* plot.h — the reliability diagram as a display list, shared by renderers.
 *
 * plot_layout.c (with plot_legend.c for the legend box) turns n series of
 * bins into a scene: a flat list of rectangles, lines, polylines, dots and
 * text in output coordinates (y down, origin top-left).  Every number a
 * picture depends on (panel rectangles, bar rectangles, ticks, legend
 * positions, headline text) is computed there once, so the SVG writer (plot_svg.c), the cairo painter
 * (plot_cairo.c) and the tests agree to the last bit.  The terminal chart
 * (plot_text.c) draws on a character grid instead and shares only the
 * headline and number formatting.
 */
#ifndef CALIB_PLOT_H
#define CALIB_PLOT_H

#include "internal.h"

#define CALIB__PLOT_MAX_SERIES 8

typedef struct calib__rgba {
    unsigned char r, g, b;
    double a;                 /* opacity in [0,1]; 0 = none */
} calib__rgba;

typedef enum calib__item_kind {
    CALIB__RECT = 0,          /* x, y, w, h                               */
    CALIB__LINE = 1,          /* (x, y) to (x + w, y + h)                 */
    CALIB__POLY = 2,          /* open polyline through pts[0 .. 2 n_pts)  */
    CALIB__SEGS = 3,          /* n_pts / 2 separate segments (hatching)   */
    CALIB__DOT = 4,           /* circle at (x, y) of radius w             */
    CALIB__TEXT = 5           /* baseline at (x, y)                       */
} calib__item_kind;

typedef enum calib__anchor {
    CALIB__START = 0,
    CALIB__MIDDLE = 1,
    CALIB__END = 2
} calib__anchor;

/* What an item stands for; it becomes the SVG class and data-* attributes
 * (so a reader or a test can find bar i of series s) and is ignored by
 * cairo. */
typedef struct calib__item_data {
    int series;               /* -1: none */
    long bin;                 /* -1: none */
    double lower, upper;      /* bin edges */
    size_t count;
    double accuracy, confidence;
} calib__item_data;

typedef struct calib__item {
    calib__item_kind kind;
    const char *cls;          /* static string: "bar", "gap over", ... */
    double x, y, w, h;
    double *pts;              /* POLY/SEGS: owned, x0 y0 x1 y1 ...     */
    size_t n_pts;
    calib__rgba fill, stroke;
    double stroke_width;
    int dash;                 /* 0 solid, 1 dashed, 2 dotted           */
    char *text;               /* TEXT: owned, valid UTF-8, no controls */
    double font_size;
    calib__anchor anchor;
    int bold;
    int rotate;               /* TEXT: 1 = turned 90 degrees left      */
    calib__item_data data;
} calib__item;

typedef struct calib__rect {
    double x, y, w, h;
} calib__rect;

typedef struct calib__scene {
    double width, height;
    calib__rect main;         /* the accuracy panel                    */
    calib__rect counts;       /* the counts panel; h = 0 when absent   */
    double font_size;         /* base size of tick labels              */
    calib__item *items;
    size_t n, cap;
    int failed;               /* an allocation failed while building   */
} calib__scene;

/* Default sizes, and the accepted range of each side. */
#define CALIB__PLOT_W 640
#define CALIB__PLOT_H 720
#define CALIB__TEXT_W 60
#define CALIB__TEXT_H 16
#define CALIB__PLOT_MIN 120
#define CALIB__PLOT_MAX 8192

/* The fixed colour-blind-safe palette (Okabe and Ito 2008): series i gets
 * calib__palette(i); the first is blue, the second vermillion (red). */
calib__rgba calib__palette(size_t i, double alpha);

/* Builds the scene of n series (1..8) at the size in `opt` (width and
 * height already resolved, > 0).  labels[i] names series i; NULL entries
 * get "series i+1".  Returns CALIB_OK or CALIB_ENOMEM; on error the scene
 * is freed. */
int calib__plot_scene(const calib_metrics *const *series,
                      const char *const *labels, size_t n,
                      const calib_plot_options *opt, calib__scene *out);
void calib__plot_scene_free(calib__scene *s);

/* Building a scene (plot_layout.c), for plot_layout.c and plot_legend.c.
 * Each appends one item and returns it, or NULL with s->failed set when
 * out of memory (then every later call is a no-op).  The pointer is valid
 * only until the next append, which may move the items. */
calib__item *calib__scene_push(calib__scene *s, calib__item_kind kind,
                               const char *cls);
calib__item *calib__scene_rect(calib__scene *s, const char *cls,
                               calib__rect r, calib__rgba fill,
                               calib__rgba stroke, double sw);
calib__item *calib__scene_line(calib__scene *s, const char *cls, double x0,
                               double y0, double x1, double y1,
                               calib__rgba stroke, double sw, int dash);
/* Text is cleaned (valid UTF-8, no controls) here, so that no renderer
 * ever sees bytes an XML parser or cairo would refuse. */
calib__item *calib__scene_text(calib__scene *s, const char *cls, double x,
                               double y, const char *str, double size,
                               calib__anchor anchor);
/* Hatches r with lines x + y = c, `step` apart, rising to the right, at a
 * phase shared by all rectangles so that neighbouring empty bins hatch as
 * one. */
void calib__scene_hatch(calib__scene *s, calib__rect r, double step);

/* The colour 0xRRGGBB at opacity alpha. */
calib__rgba calib__rgb(unsigned hex, double alpha);
#define CALIB__PLOT_OVER 0xD55E00  /* gap of an over-confident bin */
#define CALIB__PLOT_UNDER 0x009E73 /* gap of an under-confident bin */
/* Mean advance of DejaVu Sans, in em: how wide text is estimated to be. */
#define CALIB__PLOT_EM 0.62

/* Adds the legend and headline box (plot_legend.c) to a scene whose data
 * are already drawn: one series gets its headline and a key to the bars,
 * several a table of one row per series.  The box goes to the corner of
 * the main panel that hides the least data. */
void calib__plot_legend(calib__scene *s, const calib_metrics *const *m,
                        const char *const *labels, size_t n,
                        const calib_plot_options *opt);

/* Where bin b of m is drawn in the main panel: its bar rectangle (x from
 * the bin's lower to upper edge, a bin of no width ([1, 1]) as a thin bar
 * centred on its edge; from the bottom of the panel up to accuracy).  The
 * geometry the SVG's class="bar" rectangles carry; tests check it. */
calib__rect calib__plot_bar(const calib__rect *panel, const calib_bin *b);
/* The panel's x of confidence p and y of accuracy a (both in [0,1]). */
double calib__plot_x(const calib__rect *panel, double p);
double calib__plot_y(const calib__rect *panel, double a);
/* 1 when a bin holds no rows (or no weight): drawn as an empty slot. */
int calib__plot_bin_empty(const calib_bin *b);

/* Writes x with `dec` decimals (0..9; trailing zeros dropped when `trim`)
 * into buf, in the C locale whatever the process locale: only integer
 * arithmetic and %llu are used.  Non-finite x gives "nan".  Returns buf. */
char *calib__plot_fixed(char *buf, size_t size, double x, int dec, int trim);

/* The one-line headline of a series: "ECE 0.0514  MCE 0.1180  acc 0.8120
 * N 50000", into buf.  Returns buf. */
char *calib__plot_headline(const calib_metrics *m, char *buf, size_t size);

/* Copies s into a malloc'd string that is valid UTF-8 without control
 * characters (each bad byte becomes '?'), cut to at most max_chars code
 * points with a trailing ellipsis.  NULL when out of memory. */
char *calib__plot_clean_text(const char *s, size_t max_chars);

/* Renderers: into a malloc'd buffer *out of *len bytes. */
int calib__render_svg(const calib__scene *s, unsigned char **out,
                      size_t *len, calib_error *err);
int calib__render_cairo(const calib__scene *s, calib_plot_format fmt,
                        unsigned char **out, size_t *len, calib_error *err);
int calib__render_text(const calib_metrics *const *series,
                       const char *const *labels, size_t n,
                       const calib_plot_options *opt, unsigned char **out,
                       size_t *len, calib_error *err);

#endif /* CALIB_PLOT_H */
