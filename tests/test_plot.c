/* test_plot.c — reliability diagrams: the geometry the SVG carries against
 * the bins it was drawn from, well-formed XML (xmllint), PNG and PDF files
 * of the size asked (PNG's IHDR, pdfinfo), the terminal chart, numbers in
 * the C locale under a comma-decimal locale, and bad arguments.
 *
 * Metrics come from calib_dataset_wrap + calib_evaluate on small arrays;
 * the SVG is read back with a plain attribute scan (class="bar"
 * data-bin="3" x="..." ...), which is all its flat structure needs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plot.h"

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

typedef struct series {
    double conf[400];
    uint8_t correct[400];
    size_t n;
    calib_metrics *m;
} series;

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 11;
}

static double unit(uint64_t *s)
{
    return (double)lcg(s) / 9007199254740992.0; /* 2^53 */
}

/* n rows with confidence in [lo, hi] and accuracy conf^skew (skew > 1:
 * over-confident), evaluated with `bins`, `binning`, `rule`. */
static void make_series(series *s, size_t n, double lo, double hi, double skew,
                        int bins, calib_binning binning, calib_bin_rule rule,
                        uint64_t seed)
{
    assert_true(n <= 400);
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        s->conf[i] = lo + (hi - lo) * unit(&seed);
        s->correct[i] = unit(&seed) < pow(s->conf[i], skew);
    }
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL;
    a.n = n;
    a.dtype = CALIB_F64;
    a.conf = s->conf;
    a.correct = s->correct;
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    calib_eval_options eo;
    calib_eval_options_init(&eo);
    eo.bins = bins;
    eo.binning = binning;
    eo.rule = rule;
    assert_int_equal(calib_evaluate(ds, &eo, &s->m, NULL), CALIB_OK);
    calib_dataset_free(ds);
}

/* noinline: GCC's -Wdangling-pointer misreads the inlined out-pointer */
__attribute__((noinline)) static char *render(calib_metrics *const *m, const char *const *labels,
                    size_t n, calib_plot_format fmt,
                    const calib_plot_options *opt, size_t *len)
{
    unsigned char *out = NULL;
    size_t l = 0;
    calib_error err = {0};
    const int rc = calib_render_diagram((const calib_metrics *const *)m,
                                        labels, n, fmt, opt, &out, &l, &err);
    if (rc)
        fail_msg("calib_render_diagram: %d: %s", rc, err.message);
    if (len)
        *len = l;
    return (char *)out;
}

static char *scratch(const char *name)
{
    const char *b = getenv("CALIB_BUILD");
    static char path[1024];
    snprintf(path, sizeof path, "%s/plot", b ? b : "build");
    mkdir(b ? b : "build", 0777);
    mkdir(path, 0777);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", name);
    return path;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int have(const char *tool)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* ------------------------------------------------------------------ */
/* Reading the SVG back                                                */
/* ------------------------------------------------------------------ */

/* The value of attribute `name` of the element starting at el, or NAN. */
static double attr(const char *el, const char *name)
{
    const char *end = strchr(el, '>');
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *p = strstr(el, key);
    return p && p < end ? strtod(p + strlen(key), NULL) : NAN;
}

static size_t count(const char *svg, const char *needle)
{
    size_t n = 0;
    for (const char *p = svg; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* The element of `kind` (e.g. "<rect class=\"bar\"") with data-bin = b. */
static const char *find_bin(const char *svg, const char *kind, long b)
{
    for (const char *p = svg; (p = strstr(p, kind)) != NULL; p++)
        if (attr(p, "data-bin") == (double)b)
            return p;
    return NULL;
}

static calib__rect panel_of(const char *svg)
{
    const char *p = strstr(svg, "<rect class=\"panel\"");
    assert_non_null(p);
    return (calib__rect){attr(p, "x"), attr(p, "y"), attr(p, "width"),
                         attr(p, "height")};
}

/* Every non-empty bin is a bar from the bin's lower to upper edge, of
 * height accuracy * panel height, standing on the panel's floor. */
static void check_bars(const char *svg, const calib_metrics *m)
{
    const calib__rect p = panel_of(svg);
    const double tol = 1e-6 * p.w;
    size_t bars = 0;
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *bin = &m->bins[b];
        const char *e = find_bin(svg, "<rect class=\"bar\"", (long)b);
        if (bin->count == 0) {
            assert_null(e);
            continue;
        }
        assert_non_null(e);
        bars++;
        assert_true(fabs(attr(e, "x") - (p.x + bin->lower * p.w)) <= tol);
        assert_true(fabs(attr(e, "width") - (bin->upper - bin->lower) * p.w) <= tol);
        assert_true(fabs(attr(e, "height") - bin->accuracy * p.h) <= tol);
        assert_true(fabs(attr(e, "y") + attr(e, "height") - (p.y + p.h)) <= tol);
        assert_true(fabs(attr(e, "data-accuracy") - bin->accuracy) <= 1e-9);
    }
    assert_int_equal(count(svg, "<rect class=\"bar\""), bars);
}

static void xmllint(const char *svg, const char *name)
{
    if (!have("xmllint")) {
        print_message("xmllint not installed: well-formedness not checked\n");
        return;
    }
    const char *path = scratch(name);
    write_file(path, svg, strlen(svg));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", path);
    assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_width_bars(void **state)
{
    series s;
    make_series(&s, 400, 0.3, 1.0, 2.0, 10, CALIB_BINNING_WIDTH,
                CALIB_RULE_SKLEARN, 1);
    char *svg = render(&s.m, NULL, 1, CALIB_PLOT_SVG, NULL, NULL);
    check_bars(svg, s.m);
    /* over-confident data: gaps above the bars, in the "over" class */
    assert_true(count(svg, "class=\"gap over\"") > 0);
    xmllint(svg, "width.svg");
    free(svg);
    calib_metrics_free(s.m);
}

static void test_mass_bars(void **state)
{
    series s;
    make_series(&s, 300, 0.0, 1.0, 0.5, 7, CALIB_BINNING_MASS,
                CALIB_RULE_SKLEARN, 2);
    calib_plot_options o;
    calib_plot_options_init(&o);
    o.width = 500, o.height = 900, o.title = "mass";
    char *svg = render(&s.m, NULL, 1, CALIB_PLOT_SVG, &o, NULL);
    check_bars(svg, s.m);
    assert_true(count(svg, "class=\"gap under\"") > 0);
    assert_non_null(strstr(svg, "width=\"500\" height=\"900\""));
    free(svg);
    calib_metrics_free(s.m);
}

static void test_empty_bins(void **state)
{
    series s;
    make_series(&s, 200, 0.5, 1.0, 1.0, 10, CALIB_BINNING_WIDTH,
                CALIB_RULE_SKLEARN, 3);
    char *svg = render(&s.m, NULL, 1, CALIB_PLOT_SVG, NULL, NULL);
    const calib__rect p = panel_of(svg);
    for (long b = 0; b < 5; b++) { /* (0, 0.5] holds no row */
        assert_int_equal(s.m->bins[b].count, 0);
        assert_null(find_bin(svg, "<rect class=\"bar\"", b));
        const char *e = find_bin(svg, "<rect class=\"empty\"", b);
        assert_non_null(e);
        /* a full-height slot, not a zero-height bar */
        assert_true(fabs(attr(e, "height") - p.h) < 1e-6 * p.w);
        assert_true(fabs(attr(e, "x") - (p.x + s.m->bins[b].lower * p.w)) < 1e-6 * p.w);
    }
    assert_true(count(svg, "class=\"hatch\"") >= 5);
    check_bars(svg, s.m);
    free(svg);
    calib_metrics_free(s.m);
}

/* Torchmetrics' extra [1, 1] bin is a thin bar centred at confidence 1. */
static void test_torchmetrics_thin_bar(void **state)
{
    series s;
    make_series(&s, 100, 0.6, 1.0, 1.0, 5, CALIB_BINNING_WIDTH,
                CALIB_RULE_TORCHMETRICS, 4);
    for (size_t i = 0; i < 10; i++)
        s.conf[i] = 1.0;
    calib_metrics_free(s.m);
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL, a.n = s.n, a.dtype = CALIB_F64;
    a.conf = s.conf, a.correct = s.correct;
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    calib_eval_options eo;
    calib_eval_options_init(&eo);
    eo.bins = 5, eo.rule = CALIB_RULE_TORCHMETRICS;
    assert_int_equal(calib_evaluate(ds, &eo, &s.m, NULL), CALIB_OK);
    calib_dataset_free(ds);
    assert_int_equal(s.m->n_bins, 6);
    char *svg = render(&s.m, NULL, 1, CALIB_PLOT_SVG, NULL, NULL);
    const calib__rect p = panel_of(svg);
    const char *e = find_bin(svg, "<rect class=\"bar\"", 5);
    assert_non_null(e);
    const double w = attr(e, "width");
    assert_true(w >= 2.0 && w < 0.01 * p.w);
    assert_true(fabs(attr(e, "x") + w / 2 - (p.x + p.w)) < 1e-3);
    free(svg);
    calib_metrics_free(s.m);
}

static void test_multi_series_legend(void **state)
{
    series s[3];
    calib_metrics *m[3];
    for (int i = 0; i < 3; i++) {
        make_series(&s[i], 300, 0.2, 1.0, 1.0 + i, 10, CALIB_BINNING_WIDTH,
                    CALIB_RULE_SKLEARN, 10 + (uint64_t)i);
        m[i] = s[i].m;
    }
    /* markup and a broken UTF-8 byte must not break the XML */
    const char *labels[3] = {"base", "instruct <&> \"v2\"", "bad \xff byte"};
    char *svg = render(m, labels, 3, CALIB_PLOT_SVG, NULL, NULL);
    assert_int_equal(count(svg, "class=\"legend-label\""), 3);
    assert_int_equal(count(svg, "<polyline class=\"curve\""), 3);
    assert_int_equal(count(svg, "<rect class=\"bar\""), 0);
    assert_non_null(strstr(svg, ">base</text>"));
    assert_non_null(strstr(svg, ">instruct &lt;&amp;&gt; &quot;v2&quot;</text>"));
    assert_non_null(strstr(svg, ">bad ? byte</text>"));
    for (int i = 0; i < 3; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "data-series=\"%d\">", i);
        assert_non_null(strstr(svg, needle));
    }
    /* every point sits at (mean confidence, accuracy) of its bin */
    const calib__rect p = panel_of(svg);
    const char *e = find_bin(svg, "<circle class=\"point\"", 9);
    assert_non_null(e);
    assert_true(fabs(attr(e, "cx") - (p.x + m[0]->bins[9].mean_confidence * p.w)) < 1e-3);
    assert_true(fabs(attr(e, "cy") - (p.y + p.h - m[0]->bins[9].accuracy * p.h)) < 1e-3);
    xmllint(svg, "multi.svg");
    free(svg);
    for (int i = 0; i < 3; i++)
        calib_metrics_free(m[i]);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_png(void **state)
{
    series s;
    make_series(&s, 200, 0.0, 1.0, 1.5, 15, CALIB_BINNING_WIDTH,
                CALIB_RULE_SKLEARN, 5);
    calib_plot_options o;
    calib_plot_options_init(&o);
    o.width = 321, o.height = 234;
    size_t len = 0;
    unsigned char *png = (unsigned char *)render(&s.m, NULL, 1, CALIB_PLOT_PNG, &o, &len);
    assert_true(len > 33);
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    assert_memory_equal(png + 12, "IHDR", 4);
    assert_int_equal(be32(png + 16), 321);
    assert_int_equal(be32(png + 20), 234);
    free(png);
    calib_metrics_free(s.m);
}

static void test_pdf(void **state)
{
    series s;
    make_series(&s, 200, 0.0, 1.0, 1.5, 15, CALIB_BINNING_WIDTH,
                CALIB_RULE_SKLEARN, 6);
    calib_plot_options o;
    calib_plot_options_init(&o);
    o.width = 400, o.height = 300;
    size_t len = 0;
    char *pdf = render(&s.m, NULL, 1, CALIB_PLOT_PDF, &o, &len);
    assert_true(len > 100);
    assert_memory_equal(pdf, "%PDF", 4);
    if (!have("pdfinfo")) {
        print_message("pdfinfo not installed: the PDF is not parsed\n");
    } else {
        const char *path = scratch("test.pdf");
        write_file(path, pdf, len);
        char cmd[1200], line[256];
        snprintf(cmd, sizeof cmd, "pdfinfo '%s'", path);
        FILE *f = popen(cmd, "r");
        int seen = 0;
        while (f && fgets(line, sizeof line, f))
            seen |= strncmp(line, "Page size:", 10) == 0 &&
                    strstr(line, " 400 x 300 pts") != NULL;
        assert_int_equal(pclose(f), 0);
        assert_true(seen);
    }
    free(pdf);
    calib_metrics_free(s.m);
}

static void test_text(void **state)
{
    series s;
    make_series(&s, 300, 0.4, 1.0, 2.0, 12, CALIB_BINNING_WIDTH,
                CALIB_RULE_SKLEARN, 7);
    calib_plot_options o;
    calib_plot_options_init(&o);
    o.ascii = 1;
    const char *label = "caf\xc3\xa9";
    size_t len = 0;
    char *t = render(&s.m, &label, 1, CALIB_PLOT_TEXT, &o, &len);
    assert_int_equal(strlen(t), len);
    for (size_t i = 0; i < len; i++)
        assert_true((unsigned char)t[i] < 0x80);
    char h[160];
    calib__plot_headline(s.m, h, sizeof h);
    assert_non_null(strstr(t, h));
    char ece[32];
    snprintf(ece, sizeof ece, "ECE %.4f", s.m->ece);
    assert_non_null(strstr(t, ece));
    assert_non_null(strstr(t, "caf?: "));
    /* default 16 lines, each at most 60 columns */
    size_t lines = 0, col = 0;
    for (size_t i = 0; i < len; i++, col++)
        if (t[i] == '\n') {
            assert_true(col <= 60);
            lines++, col = (size_t)-1;
        }
    assert_int_equal(lines, 16);
    free(t);
    o.ascii = 0;
    t = render(&s.m, NULL, 1, CALIB_PLOT_TEXT, &o, NULL);
    assert_non_null(strstr(t, "\u2588")); /* full block */
    assert_non_null(strstr(t, h));
    free(t);
    calib_metrics_free(s.m);
}

static void test_fixed_locale(void **state)
{
    char b[48];
    assert_string_equal(calib__plot_fixed(b, sizeof b, 0.5, 3, 1), "0.5");
    assert_string_equal(calib__plot_fixed(b, sizeof b, 2.0, 1, 0), "2.0");
    assert_string_equal(calib__plot_fixed(b, sizeof b, 2.0, 3, 1), "2");
    assert_string_equal(calib__plot_fixed(b, sizeof b, -0.00001, 3, 1), "0");
    assert_string_equal(calib__plot_fixed(b, sizeof b, -1.23456, 4, 0), "-1.2346");
    assert_string_equal(calib__plot_fixed(b, sizeof b, 0.0999999, 4, 0), "0.1000");
    if (!setlocale(LC_ALL, "de_DE.UTF-8")) {
        print_message("de_DE.UTF-8 locale missing: comma-decimal case skipped\n");
        return;
    }
    series s;
    make_series(&s, 200, 0.0, 1.0, 1.0, 10, CALIB_BINNING_WIDTH,
                CALIB_RULE_SKLEARN, 8);
    char *svg = render(&s.m, NULL, 1, CALIB_PLOT_SVG, NULL, NULL);
    setlocale(LC_ALL, "C");
    /* no number written with a decimal comma: every "d,d" is a polyline
     * point list "x,y", which only curves have, and there are none */
    assert_null(strstr(svg, "<polyline"));
    for (const char *p = strchr(svg, ','); p; p = strchr(p + 1, ','))
        assert_false(p[-1] >= '0' && p[-1] <= '9' && p[1] >= '0' && p[1] <= '9');
    check_bars(svg, s.m);
    free(svg);
    calib_metrics_free(s.m);
}

static void expect_einval(const calib_metrics *const *m, size_t n,
                          calib_plot_format fmt, const calib_plot_options *o)
{
    unsigned char *out = (unsigned char *)"x";
    size_t len = 7;
    calib_error err = {0};
    assert_int_equal(calib_render_diagram(m, NULL, n, fmt, o, &out, &len, &err),
                     CALIB_EINVAL);
    assert_null(out);
    assert_int_equal(len, 0);
    assert_int_equal(err.code, CALIB_EINVAL);
    assert_true(err.message[0] != '\0');
}

static void test_bad_arguments(void **state)
{
    series s;
    make_series(&s, 50, 0.0, 1.0, 1.0, 5, CALIB_BINNING_WIDTH,
                CALIB_RULE_SKLEARN, 9);
    const calib_metrics *nine[9];
    for (int i = 0; i < 9; i++)
        nine[i] = s.m;
    const calib_metrics *with_null[2] = {s.m, NULL};
    expect_einval(nine, 0, CALIB_PLOT_SVG, NULL);
    expect_einval(nine, 9, CALIB_PLOT_SVG, NULL);
    expect_einval(NULL, 1, CALIB_PLOT_SVG, NULL);
    expect_einval(with_null, 2, CALIB_PLOT_PNG, NULL);
    expect_einval(nine, 1, (calib_plot_format)7, NULL);
    calib_plot_options o;
    calib_plot_options_init(&o);
    o.width = 10;
    expect_einval(nine, 1, CALIB_PLOT_PNG, &o);
    o.width = -5;
    expect_einval(nine, 1, CALIB_PLOT_TEXT, &o);
    o.width = 100000;
    expect_einval(nine, 1, CALIB_PLOT_SVG, &o);
    assert_int_equal(calib_render_diagram(nine, NULL, 1, CALIB_PLOT_SVG, NULL,
                                          NULL, NULL, NULL),
                     CALIB_EINVAL);
    calib_metrics_free(s.m);
}

static void test_format_from_path(void **state)
{
    calib_plot_format f = CALIB_PLOT_TEXT;
    assert_int_equal(calib_plot_format_from_path("a/b.svg", &f), CALIB_OK);
    assert_int_equal(f, CALIB_PLOT_SVG);
    assert_int_equal(calib_plot_format_from_path("B.PNG", &f), CALIB_OK);
    assert_int_equal(f, CALIB_PLOT_PNG);
    assert_int_equal(calib_plot_format_from_path("c.pdf", &f), CALIB_OK);
    assert_int_equal(f, CALIB_PLOT_PDF);
    assert_int_equal(calib_plot_format_from_path("d.txt", &f), CALIB_OK);
    assert_int_equal(f, CALIB_PLOT_TEXT);
    assert_int_equal(calib_plot_format_from_path("e.jpg", &f), CALIB_EINVAL);
    assert_int_equal(calib_plot_format_from_path("svg", &f), CALIB_EINVAL);
    assert_int_equal(calib_plot_format_from_path("dir.svg/x", &f), CALIB_EINVAL);
    assert_int_equal(calib_plot_format_from_path(NULL, &f), CALIB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_width_bars),
        cmocka_unit_test(test_mass_bars),
        cmocka_unit_test(test_empty_bins),
        cmocka_unit_test(test_torchmetrics_thin_bar),
        cmocka_unit_test(test_multi_series_legend),
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_pdf),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_fixed_locale),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_format_from_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
