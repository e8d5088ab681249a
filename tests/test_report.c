/* test_report.c — the NLL-over-T curve against numpy/scipy, and the HTML
 * report: its sections and numbers, escaping of every user string, no
 * script or external reference, XML well-formedness (xmllint), the C
 * locale for numbers. */
#include "golden.h"

#include <locale.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static calib_dataset *wrap(const calib_arrays *a)
{
    calib_dataset *ds = NULL;
    calib_error e = {0};
    if (calib_dataset_wrap(a, &ds, &e))
        fail_msg("wrap: %s", e.message);
    return ds;
}

/* Logits of n rows, k classes, the label drawn so that the scores are
 * over-confident by `scale`; deterministic (an LCG). */
static void make_logits(double *z, int32_t *y, size_t n, size_t k,
                        double scale)
{
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < k; j++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            z[i * k + j] = ((double)(s >> 11) * 0x1p-53 - 0.5) * 4 * scale;
        }
        s = s * 6364136223846793005u + 1442695040888963407u;
        /* the argmax most of the time, else any class */
        size_t best = 0;
        for (size_t j = 1; j < k; j++)
            best = z[i * k + j] > z[i * k + best] ? j : best;
        y[i] = (s >> 40) % 10 < 6 ? (int32_t)best : (int32_t)((s >> 20) % k);
    }
}

/* ------------------------------------------------------------------ */
/* calib_temperature_curve                                             */
/* ------------------------------------------------------------------ */

static calib_dataset *golden_set(const json_t *c, double **bufs)
{
    const char *kind = json_string_value(json_object_get(c, "kind"));
    calib_arrays a = {.n = (size_t)golden_number(c, "n"), .dtype = CALIB_F64};
    if (strcmp(kind, "binary") == 0) {
        size_t n;
        int64_t *c64 = golden_ints(c, "correct", &n);
        uint8_t *cor = malloc(n);
        for (size_t i = 0; i < n; i++)
            cor[i] = (uint8_t)c64[i];
        free(c64);
        a.kind = CALIB_TOPLABEL;
        a.conf = bufs[0] = golden_doubles(c, "conf", NULL);
        a.correct = cor;
        bufs[1] = (double *)cor;
        return wrap(&a);
    }
    size_t n;
    int64_t *l64 = golden_ints(c, "labels", &n);
    int32_t *lab = malloc(n * sizeof *lab);
    for (size_t i = 0; i < n; i++)
        lab[i] = (int32_t)l64[i];
    free(l64);
    a.kind = strcmp(kind, "probs") == 0 ? CALIB_PROBS : CALIB_LOGITS;
    a.k = (size_t)golden_number(c, "k");
    a.scores = bufs[0] = golden_doubles(c, "scores", NULL);
    a.labels = lab;
    bufs[1] = (double *)lab;
    if (json_object_get(c, "weights"))
        a.weights = bufs[2] = golden_doubles(c, "weights", NULL);
    return wrap(&a);
}

static void test_curve_golden(void **state)
{
    json_t *doc = golden_load("report.json");
    const json_t *cases = json_object_get(doc, "cases");
    assert_true(json_array_size(cases) >= 4);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        const json_t *cs = json_array_get(cases, c);
        double *bufs[3] = {NULL, NULL, NULL};
        calib_dataset *ds = golden_set(cs, bufs);
        size_t n_t;
        double *t = golden_doubles(cs, "t", &n_t);
        double *want = golden_doubles(cs, "nll", NULL);
        double *got = malloc(n_t * sizeof *got);
        calib_error e = {0};
        assert_int_equal(calib_temperature_curve(ds, t, n_t, got, 1, &e), 0);
        for (size_t i = 0; i < n_t; i++)
            assert_close(got[i], want[i], 1e-12);
        free(t), free(want), free(got);
        for (int i = 0; i < 3; i++)
            free(bufs[i]);
        calib_dataset_free(ds);
    }
    json_decref(doc);
}

/* The curve at the fitted T is the NLL the fit reports, and the minimum
 * of the curve is there; threads never change a bit. */
static void test_curve_fit_threads(void **state)
{
    enum { N = 20000, K = 5, NT = 41 };
    double *z = malloc(N * K * sizeof *z);
    int32_t *y = malloc(N * sizeof *y);
    make_logits(z, y, N, K, 2.0);
    const calib_arrays a = {.kind = CALIB_LOGITS, .n = N, .k = K,
                            .dtype = CALIB_F64, .scores = z, .labels = y};
    calib_dataset *ds = wrap(&a);
    calib_calibrator *cal = NULL;
    assert_int_equal(calib_fit(ds, NULL, &cal, NULL), 0);
    const double t_fit = calib_calibrator_temperature(cal);
    double t[NT], one[NT], two[NT], three[NT];
    for (int i = 0; i < NT; i++)
        t[i] = t_fit * pow(4.0, (i - NT / 2) / (double)(NT / 2));
    assert_int_equal(calib_temperature_curve(ds, t, NT, one, 1, NULL), 0);
    assert_int_equal(calib_temperature_curve(ds, t, NT, two, 2, NULL), 0);
    assert_int_equal(calib_temperature_curve(ds, t, NT, three, 3, NULL), 0);
    assert_memory_equal(one, two, sizeof one);
    assert_memory_equal(one, three, sizeof one);
    assert_close(one[NT / 2], calib_calibrator_objective_value(cal), 1e-12);
    for (int i = 0; i < NT; i++)
        assert_true(one[i] >= one[NT / 2]);
    calib_calibrator_free(cal);
    calib_dataset_free(ds);
    free(z), free(y);
}

static void test_curve_errors(void **state)
{
    const double z[4] = {1, 0, 0, 1};
    const int32_t y[2] = {0, 0};
    const calib_arrays a = {.kind = CALIB_LOGITS, .n = 2, .k = 2,
                            .dtype = CALIB_F64, .scores = z, .labels = y};
    calib_dataset *ds = wrap(&a);
    double out[2];
    calib_error e = {0};
    const double bad[3][2] = {{1, 0}, {1, -2}, {1, NAN}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(calib_temperature_curve(ds, bad[i], 2, out, 0, &e),
                         CALIB_EINVAL);
    assert_int_equal(calib_temperature_curve(NULL, bad[0], 1, out, 0, &e),
                     CALIB_EINVAL);
    assert_int_equal(calib_temperature_curve(ds, NULL, 1, out, 0, &e),
                     CALIB_EINVAL);
    assert_int_equal(calib_temperature_curve(ds, NULL, 0, NULL, 0, &e), 0);
    /* -log(e/(e+1)) by hand for both rows at T = 1: row 2 has label 0
     * with score 0 against 1, so -log(1/(1+e)) */
    const double t1 = 1.0;
    assert_int_equal(calib_temperature_curve(ds, &t1, 1, out, 0, &e), 0);
    assert_close(out[0], (log1p(exp(-1.0)) + log1p(exp(1.0))) / 2, 1e-15);
    calib_dataset_free(ds);
}

/* ------------------------------------------------------------------ */
/* The report                                                          */
/* ------------------------------------------------------------------ */

enum { RN = 3000, RK = 4 };

/* Everything a report needs, fitted on one half, judged on the other. */
typedef struct fixture {
    double *z;
    int32_t *y;
    uint32_t *g;
    calib_dataset *val, *test, *val_cal, *test_cal;
    calib_calibrator *cal;
    calib_metrics *vb, *va, *tb, *ta;
    double t[21], nll[21];
} fixture;

static const char *const group_names[3] = {
    "alg<b>&\"x'", "bad\xff\xfe name", "plain"};

static calib_dataset *half(fixture *f, size_t off, int groups)
{
    const calib_arrays a = {.kind = CALIB_LOGITS, .n = RN / 2, .k = RK,
                            .dtype = CALIB_F64, .scores = f->z + off * RK,
                            .labels = f->y + off,
                            .groups = groups ? f->g + off : NULL,
                            .n_groups = groups ? 3 : 0,
                            .group_names = groups ? group_names : NULL};
    return wrap(&a);
}

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->z = malloc(RN * RK * sizeof *f->z);
    f->y = malloc(RN * sizeof *f->y);
    f->g = malloc(RN * sizeof *f->g);
    make_logits(f->z, f->y, RN, RK, 2.5);
    for (size_t i = 0; i < RN; i++)
        f->g[i] = (uint32_t)(i * 7 % 3);
    f->val = half(f, 0, 1);
    f->test = half(f, RN / 2, 1);
    assert_int_equal(calib_fit(f->val, NULL, &f->cal, NULL), 0);
    assert_int_equal(calib_apply(f->cal, f->val, &f->val_cal, NULL), 0);
    assert_int_equal(calib_apply(f->cal, f->test, &f->test_cal, NULL), 0);
    assert_int_equal(calib_evaluate(f->val, NULL, &f->vb, NULL), 0);
    assert_int_equal(calib_evaluate(f->val_cal, NULL, &f->va, NULL), 0);
    assert_int_equal(calib_evaluate(f->test, NULL, &f->tb, NULL), 0);
    assert_int_equal(calib_evaluate(f->test_cal, NULL, &f->ta, NULL), 0);
    const double t = calib_calibrator_temperature(f->cal);
    for (int i = 0; i < 21; i++)
        f->t[i] = t * pow(4.0, (i - 10) / 10.0);
    assert_int_equal(calib_temperature_curve(f->val, f->t, 21, f->nll, 0,
                                             NULL), 0);
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    calib_metrics_free(f->vb), calib_metrics_free(f->va);
    calib_metrics_free(f->tb), calib_metrics_free(f->ta);
    calib_calibrator_free(f->cal);
    calib_dataset_free(f->val), calib_dataset_free(f->test);
    calib_dataset_free(f->val_cal), calib_dataset_free(f->test_cal);
    free(f->z), free(f->y), free(f->g), free(f);
    return 0;
}

static calib_report_spec full_spec(const fixture *f)
{
    return (calib_report_spec){
        .title = "Model <A> & \"B\"", .test_before = f->tb,
        .test_after = f->ta, .val_before = f->vb, .val_after = f->va,
        .calibrator = f->cal, .curve_t = f->t, .curve_nll = f->nll,
        .n_curve = 21, .val_path = "data/val <1>.csv",
        .test_path = "data/test&2.csv",
        .command = "calib report --val 'data/val <1>.csv' -o r.html"};
}

static char *render(const calib_report_spec *s)
{
    char *html = NULL;
    size_t len = 0;
    calib_error e = {0};
    const int rc = calib_render_report(s, &html, &len, &e);
    if (rc)
        fail_msg("calib_render_report: %d %s", rc, e.message);
    assert_non_null(html);
    assert_int_equal(strlen(html), len);
    return html;
}

static void assert_has(const char *html, const char *what)
{
    if (!strstr(html, what))
        fail_msg("the report lacks '%s'", what);
}

/* x in the printf format fmt, as the report writes it (a minus sign as
 * U+2212). */
static void assert_has_formatted(const char *html, const char *fmt, double x)
{
    char f[32], t[64];
    snprintf(f, sizeof f, "%s%s", x < 0 ? "&#8722;" : "", fmt);
    snprintf(t, sizeof t, f, fabs(x));
    assert_has(html, t);
}

static void assert_has_number(const char *html, double x)
{
    assert_has_formatted(html, "%.4f", x);
}

/* No script, no stylesheet link, no URL that a browser would load: the
 * only "http:" allowed is an SVG namespace name, which is never fetched. */
static void assert_self_contained(const char *html)
{
    char *s = strdup(html);
    for (char *p = strstr(s, "xmlns"); p; p = strstr(p, "xmlns")) {
        char *q = strchr(p, '"');
        q = q ? strchr(q + 1, '"') : NULL;
        assert_non_null(q);
        memset(p, ' ', (size_t)(q - p + 1));
    }
    static const char *const banned[] = {
        "<script", "<link", "<iframe", "<img", "<object", "<embed",
        "http:", "https:", "//", "src=", "@import", "url(h", "url(/",
        "url(\"", "url('", "href=\"h", "javascript:", "onload="};
    for (size_t i = 0; i < sizeof banned / sizeof *banned; i++)
        if (strstr(s, banned[i]))
            fail_msg("the report contains '%s'", banned[i]);
    free(s);
}

static void test_report_sections(void **state)
{
    const fixture *f = *state;
    const calib_report_spec s = full_spec(f);
    char *html = render(&s);
    static const char *const parts[] = {
        "<!DOCTYPE html>", "<meta charset=\"utf-8\"/>", "<style>",
        "id=\"diagrams\"", "id=\"metrics\"", "id=\"fit\"", "id=\"groups\"",
        "id=\"inputs\"", "Before recalibration", "After temperature scaling",
        "Validation NLL over T", "fitted T = ", "Reproduce this report",
        "Newton on log(1/T)", ">nll<", "Per group (3)", "</html>"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        assert_has(html, parts[i]);
    assert_has_number(html, f->tb->ece);
    assert_has_number(html, f->ta->ece);
    assert_has_number(html, f->ta->ece - f->tb->ece);
    assert_has_number(html, f->tb->nll);
    assert_has_number(html, f->ta->brier);
    assert_has_number(html, f->va->ece);
    assert_has(html, "<svg");
    free(html);
}

/* Platt scaling on the same sets: the page names the method, shows a and
 * b (calib_calibrator_params) and no temperature or NLL-over-T chart, even
 * when a curve is passed; an applied calibrator names its method with no
 * fit section. */
static void test_report_other_method(void **state)
{
    const fixture *f = *state;
    calib_fit_options fo;
    calib_fit_options_init(&fo);
    fo.method = CALIB_METHOD_PLATT;
    calib_calibrator *cal = NULL;
    calib_dataset *test_cal = NULL;
    calib_metrics *ta = NULL;
    assert_int_equal(calib_fit(f->val, &fo, &cal, NULL), 0);
    assert_int_equal(calib_apply(cal, f->test, &test_cal, NULL), 0);
    assert_int_equal(calib_evaluate(test_cal, NULL, &ta, NULL), 0);
    calib_report_spec s = full_spec(f);
    s.calibrator = cal, s.test_after = ta, s.val_after = NULL;
    char *html = render(&s);
    assert_has(html, "Platt scaling, fitted on validation");
    assert_has(html, "After Platt scaling");
    assert_has(html, "before and after Platt scaling fitted on");
    assert_has(html, "Newton on the log loss");
    double ab[2];
    assert_int_equal(calib_calibrator_params(cal, ab, 2), 2);
    for (int i = 0; i < 2; i++)
        assert_has_formatted(html, "%.6g", ab[i]);
    assert_has_number(html, ta->ece);
    assert_null(strstr(html, "Validation NLL over T"));
    assert_null(strstr(html, "Temperature T"));
    assert_null(strstr(html, "temperature scaling"));
    assert_self_contained(html);
    free(html);
    s = (calib_report_spec){.title = "applied", .test_before = f->tb,
                            .test_after = ta, .applied = cal};
    html = render(&s);
    assert_has(html, "After Platt scaling");
    assert_null(strstr(html, "id=\"fit\""));
    free(html);
    calib_metrics_free(ta);
    calib_dataset_free(test_cal);
    calib_calibrator_free(cal);
}

static void test_report_escapes(void **state)
{
    const fixture *f = *state;
    const calib_report_spec s = full_spec(f);
    char *html = render(&s);
    assert_has(html, "<title>Model &lt;A&gt; &amp; &quot;B&quot;</title>");
    assert_has(html, "<h1>Model &lt;A&gt; &amp; &quot;B&quot;</h1>");
    assert_has(html, "alg&lt;b&gt;&amp;&quot;x&#39;");
    assert_has(html, "bad&#65533;&#65533; name");
    assert_has(html, "data/val &lt;1&gt;.csv");
    assert_has(html, "data/test&amp;2.csv");
    assert_has(html, "--val &#39;data/val &lt;1&gt;.csv&#39;");
    assert_null(strstr(html, "<A>"));
    assert_null(strstr(html, "alg<b>"));
    assert_null(strstr(html, "\xff"));
    assert_self_contained(html);
    free(html);
}

/* Well-formed XML (every element closed, entities known), which a real
 * parser checks; the SVG diagrams are checked with it. */
static void test_report_xmllint(void **state)
{
    if (system("command -v xmllint >/dev/null 2>&1") != 0) {
        print_message("xmllint not found: not checked\n");
        skip();
    }
    const fixture *f = *state;
    const calib_report_spec s = full_spec(f);
    char *html = render(&s);
    char path[] = "/tmp/calib-report-XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, html, strlen(html)), (ssize_t)strlen(html));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "xmllint --noout --nonet %s", path);
    const int rc = system(cmd);
    unlink(path);
    free(html);
    assert_int_equal(rc, 0);
}

/* Only what is required: no recalibration, no groups, no curve. */
static void test_report_minimal(void **state)
{
    const fixture *f = *state;
    calib_metrics *m = NULL;
    calib_dataset *ds = half((fixture *)f, 0, 0);
    assert_int_equal(calib_evaluate(ds, NULL, &m, NULL), 0);
    const calib_report_spec s = {.test_before = m};
    char *html = render(&s);
    assert_has(html, "<title>Calibration report</title>");
    assert_has(html, ">Value<");
    assert_has_number(html, m->ece);
    assert_null(strstr(html, "id=\"fit\""));
    assert_null(strstr(html, "id=\"groups\""));
    assert_null(strstr(html, "After temperature"));
    assert_self_contained(html);
    free(html);
    calib_metrics_free(m);
    calib_dataset_free(ds);
}

static void test_report_errors(void **state)
{
    const fixture *f = *state;
    char *html = (char *)1;
    size_t len = 7;
    calib_error e = {0};
    calib_report_spec s = {0};
    assert_int_equal(calib_render_report(&s, &html, &len, &e), CALIB_EINVAL);
    assert_null(html);
    assert_int_equal(len, 0);
    assert_int_equal(calib_render_report(NULL, &html, &len, &e),
                     CALIB_EINVAL);
    s = full_spec(f);
    assert_int_equal(calib_render_report(&s, NULL, &len, &e), CALIB_EINVAL);
    s.curve_t = NULL;
    assert_int_equal(calib_render_report(&s, &html, &len, &e), CALIB_EINVAL);
    const double down[2] = {2, 1}, nll[2] = {1, 1};
    s = full_spec(f);
    s.curve_t = down, s.curve_nll = nll, s.n_curve = 2;
    assert_int_equal(calib_render_report(&s, &html, &len, &e), CALIB_EINVAL);
    assert_null(html);
}

/* A host program's locale with a decimal comma changes nothing. */
static void test_report_locale(void **state)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",
                                        "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *got = NULL;
    for (size_t i = 0; !got && i < 4; i++)
        got = setlocale(LC_ALL, names[i]);
    if (!got) {
        print_message("no locale with a decimal comma installed\n");
        skip();
    }
    const fixture *f = *state;
    const calib_report_spec s = full_spec(f);
    char *html = render(&s);
    setlocale(LC_ALL, "C");
    assert_has_number(html, f->tb->ece);
    assert_null(strstr(html, "viewBox=\"0,"));
    free(html);
}

int main(void)
{
    const struct CMUnitTest curve[] = {
        cmocka_unit_test(test_curve_golden),
        cmocka_unit_test(test_curve_fit_threads),
        cmocka_unit_test(test_curve_errors),
    };
    const struct CMUnitTest report[] = {
        cmocka_unit_test(test_report_sections),
        cmocka_unit_test(test_report_escapes),
        cmocka_unit_test(test_report_other_method),
        cmocka_unit_test(test_report_xmllint),
        cmocka_unit_test(test_report_minimal),
        cmocka_unit_test(test_report_errors),
        cmocka_unit_test(test_report_locale),
    };
    const int a = cmocka_run_group_tests_name("curve", curve, NULL, NULL);
    const int b = cmocka_run_group_tests_name("report", report, fixture_setup,
                                              fixture_teardown);
    return a || b;
}
