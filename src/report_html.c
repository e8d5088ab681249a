/* report_html.c — calib_render_report: one self-contained HTML page that
 * says how calibrated a model is, what a recalibrator (temperature scaling
 * or any other method calib fits) did to it, and how to get the same page
 * again.
 *
 * The page is a single string: inline CSS, inline SVG (the reliability
 * diagrams from calib_render_diagram, the NLL-over-T chart from
 * report_chart.c), no script, no external reference, so it opens from a
 * file, an e-mail or a CI artifact with no network.  It is also well-formed
 * XML (every element closed, attributes quoted, only numeric character
 * references), which lets a plain XML parser check it.  Every string that
 * came from the user (title, file names, group names, the command line) is
 * escaped, and bytes that are not valid UTF-8 become U+FFFD, so no input
 * can break the markup.  Numbers are formatted in the C locale whatever the
 * process locale is.
 */
#include "report.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#define DASH "&#8212;"          /* a value that does not apply */
#define MAX_GROUP_DIAGRAMS 48   /* small multiples beyond this say nothing */

static const char css[] =
    ":root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;"
    "--good:#1a7f37;--bad:#cf222e;--accent:#0969da}"
    "*{box-sizing:border-box}"
    "body{margin:0;color:var(--fg);background:#fff;font:15px/1.5 system-ui,"
    "-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}"
    "main{max-width:1120px;margin:0 auto;padding:28px 24px 48px}"
    "h1{font-size:28px;margin:0 0 4px}"
    "h2{font-size:20px;margin:36px 0 10px;padding-bottom:6px;"
    "border-bottom:1px solid var(--line)}"
    "h3{font-size:16px;margin:20px 0 8px}"
    ".sub,.note,figcaption{color:var(--muted)}"
    ".note{font-size:13px;margin:6px 0}"
    ".cards{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0 0}"
    ".card{flex:1 1 180px;border:1px solid var(--line);border-radius:8px;"
    "padding:10px 14px;background:var(--soft)}"
    ".card .k{font-size:12px;color:var(--muted);text-transform:uppercase;"
    "letter-spacing:.04em}"
    ".card .v{font-size:20px;white-space:nowrap;"
    "font-variant-numeric:tabular-nums}"
    ".pair{display:grid;grid-template-columns:repeat(auto-fit,"
    "minmax(420px,1fr));gap:16px}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,"
    "minmax(320px,1fr));gap:12px}"
    "figure{margin:0;border:1px solid var(--line);border-radius:8px;"
    "padding:8px}"
    "figure svg{display:block;width:100%;height:auto}"
    "figure.chart{max-width:720px}"
    "figcaption{font-size:14px;text-align:center;margin-top:4px}"
    "table{border-collapse:collapse;margin:8px 0;"
    "font-variant-numeric:tabular-nums}"
    "th,td{padding:5px 12px;border-bottom:1px solid var(--line)}"
    "th{text-align:left;background:var(--soft);font-weight:600}"
    "td.n,th.n{text-align:right}th.c{text-align:center}"
    "td.good{color:var(--good);font-weight:600}"
    "td.bad{color:var(--bad);font-weight:600}"
    ".scroll{overflow-x:auto}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 18px;"
    "margin:8px 0}"
    "dt{color:var(--muted)}dd{margin:0}"
    "pre{background:var(--soft);border:1px solid var(--line);"
    "border-radius:6px;padding:10px 12px;white-space:pre-wrap;"
    "word-break:break-all}"
    "code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}"
    ".warn{color:var(--bad)}"
    "footer{margin-top:40px;font-size:12px;color:var(--muted)}";

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if there is none
 * (overlong forms, surrogates and values past U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    const size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2
                                                                          : 0;
    if (n == 0 || s[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

/* Appends s as HTML text (also safe inside a quoted attribute). */
void calib__report_esc(calib__buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        const size_t n = utf8_len(p);
        const char *rep = *p == '&' ? "&amp;" : *p == '<' ? "&lt;"
                          : *p == '>' ? "&gt;" : *p == '"' ? "&quot;"
                          : *p == '\'' ? "&#39;" : NULL;
        /* control characters are not allowed in HTML or XML text */
        if (!rep && (n == 0 || (*p < 0x20 && *p != '\n' && *p != '\t')))
            rep = "&#65533;";
        if (rep) {
            calib__buf_puts(b, rep);
            p += n ? n : 1;
            continue;
        }
        char c[5] = {0};
        memcpy(c, p, n);
        calib__buf_puts(b, c);
        p += n;
    }
}

void calib__report_num(calib__buf *b, const char *fmt, double x)
{
    if (!isfinite(x)) {
        calib__buf_puts(b, DASH);
        return;
    }
    char t[64];
    snprintf(t, sizeof t, fmt, x);
    /* a true minus sign reads better than a hyphen in a table */
    calib__buf_puts(b, t[0] == '-' ? "&#8722;" : "");
    calib__buf_puts(b, t[0] == '-' ? t + 1 : t);
}

/* ------------------------------------------------------------------ */
/* Metric tables                                                       */
/* ------------------------------------------------------------------ */

typedef enum metric {
    M_ACC, M_CONF, M_ECE, M_MCE, M_RMSCE, M_NLL, M_BRIER, M_COUNT
} metric;

static const char *const metric_name[M_COUNT] = {
    "Accuracy", "Mean confidence", "ECE", "MCE", "RMSCE", "NLL", "Brier"};

static double value(const calib_metrics *m, metric k)
{
    switch (k) {
    case M_ACC: return m->accuracy;
    case M_CONF: return m->mean_confidence;
    case M_ECE: return m->ece;
    case M_MCE: return m->mce;
    case M_RMSCE: return m->rmsce;
    case M_NLL: return m->nll;
    default: return m->brier;
    }
}

/* How bad a value is, lower being better: accuracy is not judged (scaling
 * cannot change it), mean confidence by its distance from accuracy. */
static double badness(const calib_metrics *m, metric k)
{
    if (k == M_ACC)
        return NAN;
    return k == M_CONF ? fabs(m->mean_confidence - m->accuracy) : value(m, k);
}

/* A "before  after  change" triple of cells, the change coloured. */
static void change_cells(calib__buf *b, const calib_metrics *before,
                         const calib_metrics *after, metric k)
{
    const double x = value(before, k), y = value(after, k);
    const double gain = badness(before, k) - badness(after, k);
    const char *cls = !(fabs(gain) > 1e-12) ? "n" : gain > 0 ? "n good"
                                                             : "n bad";
    calib__buf_puts(b, "<td class=\"n\">");
    calib__report_num(b, "%.4f", x);
    calib__buf_puts(b, "</td><td class=\"n\">");
    calib__report_num(b, "%.4f", y);
    calib__buf_printf(b, "</td><td class=\"%s\">", cls);
    calib__report_num(b, "%+.4f", y - x);
    calib__buf_puts(b, "</td>");
}

/* The whole-set table: one row a metric, before/after/change columns. */
void calib__report_metric_table(calib__buf *b, const calib_metrics *before,
                                const calib_metrics *after)
{
    calib__buf_puts(b, "<table><thead><tr><th>Metric</th>");
    calib__buf_puts(b, after ? "<th class=\"n\">Before</th><th class=\"n\">"
                               "After</th><th class=\"n\">Change</th>"
                             : "<th class=\"n\">Value</th>");
    calib__buf_puts(b, "</tr></thead><tbody>");
    for (int k = 0; k < M_COUNT; k++) {
        calib__buf_printf(b, "<tr><td>%s</td>", metric_name[k]);
        if (after) {
            change_cells(b, before, after, (metric)k);
        } else {
            calib__buf_puts(b, "<td class=\"n\">");
            calib__report_num(b, "%.4f", value(before, (metric)k));
            calib__buf_puts(b, "</td>");
        }
        calib__buf_puts(b, "</tr>");
    }
    calib__buf_printf(b, "<tr><td>Rows</td><td class=\"n\">%zu</td>",
                      before->n);
    calib__buf_puts(b, after ? "<td></td><td></td></tr>" : "</tr>");
    calib__buf_puts(b, "</tbody></table>");
}

static const calib_metrics *group_named(const calib_metrics *m,
                                        const char *name)
{
    for (size_t g = 0; m && g < m->n_groups; g++)
        if (strcmp(m->group_names[g], name) == 0)
            return m->groups[g];
    return NULL;
}

static const metric group_cols[] = {M_ACC, M_ECE, M_NLL, M_BRIER};
#define N_GROUP_COLS (sizeof group_cols / sizeof *group_cols)

/* Two header rows: each metric over its before/after/change columns
 * (accuracy, which scaling cannot change, has one). */
static void group_head(calib__buf *b, int paired)
{
    calib__buf_puts(b, "<thead><tr><th rowspan=\"2\">Group</th><th "
                       "class=\"n\" rowspan=\"2\">N</th>");
    for (size_t c = 0; c < N_GROUP_COLS; c++)
        calib__buf_printf(b, paired && group_cols[c] != M_ACC
                                 ? "<th class=\"c\" colspan=\"3\">%s</th>"
                                 : "<th class=\"n\" rowspan=\"2\">%s</th>",
                          metric_name[group_cols[c]]);
    calib__buf_puts(b, "</tr><tr>");
    for (size_t c = 1; paired && c < N_GROUP_COLS; c++)
        calib__buf_puts(b, "<th class=\"n\">before</th><th class=\"n\">"
                           "after</th><th class=\"n\">change</th>");
    calib__buf_puts(b, "</tr></thead>");
}

/* One line a group: its size, then each metric before/after/change. */
static void group_table(calib__buf *b, const calib_metrics *before,
                        const calib_metrics *after)
{
    calib__buf_puts(b, "<div class=\"scroll\"><table>");
    group_head(b, after != NULL);
    calib__buf_puts(b, "<tbody>");
    for (size_t g = 0; g < before->n_groups; g++) {
        const calib_metrics *x = before->groups[g];
        const calib_metrics *y = group_named(after, before->group_names[g]);
        calib__buf_puts(b, "<tr><td>");
        calib__report_esc(b, before->group_names[g]);
        calib__buf_printf(b, "</td><td class=\"n\">%zu</td>", x->n);
        for (size_t c = 0; c < N_GROUP_COLS; c++) {
            if (after && group_cols[c] != M_ACC) {
                if (y)
                    change_cells(b, x, y, group_cols[c]);
                else
                    calib__buf_puts(b, "<td></td><td></td><td></td>");
                continue;
            }
            calib__buf_puts(b, "<td class=\"n\">");
            calib__report_num(b, "%.4f", value(x, group_cols[c]));
            calib__buf_puts(b, "</td>");
        }
        calib__buf_puts(b, "</tr>");
    }
    calib__buf_puts(b, "</tbody></table></div>");
}

/* ------------------------------------------------------------------ */
/* Inline SVG                                                          */
/* ------------------------------------------------------------------ */

/* A reliability diagram of `n` series as inline SVG in a <figure>: the
 * SVG document without what only a standalone file has (the XML
 * declaration, a DOCTYPE, comments before the root). */
static int diagram(calib__buf *b, const calib_metrics *const *series,
                   const char *const *labels, size_t n, int w, int h,
                   int small, calib_error *err)
{
    calib_plot_options opt;
    calib_plot_options_init(&opt);
    opt.width = w;
    opt.height = h;
    opt.headline = !small;
    unsigned char *svg = NULL;
    size_t len = 0;
    const int rc = calib_render_diagram(series, labels, n, CALIB_PLOT_SVG,
                                        &opt, &svg, &len, err);
    if (rc)
        return rc;
    const char *root = strstr((const char *)svg, "<svg");
    calib__buf_puts(b, "<figure>");
    calib__buf_puts(b, root ? root : "");
    free(svg);
    return CALIB_OK;
}

/* ------------------------------------------------------------------ */
/* Sections                                                            */
/* ------------------------------------------------------------------ */

const char *calib__report_method_phrase(const calib_calibrator *c)
{
    static const char *const t[] = {
        "temperature scaling", "Platt scaling", "vector scaling",
        "histogram binning", "isotonic regression", "beta calibration"};
    const calib_method m = c ? calib_calibrator_method(c) : CALIB_METHOD_COUNT;
    return (unsigned)m < CALIB_METHOD_COUNT ? t[m] : "recalibration";
}

/* The calibrator test_after comes from: fitted here, or applied. */
static const calib_calibrator *used(const calib_report_spec *s)
{
    return s->calibrator ? s->calibrator : s->applied;
}

static void card(calib__buf *b, const char *key, const char *fmt, double x,
                 const double *after)
{
    calib__buf_printf(b, "<div class=\"card\"><div class=\"k\">%s</div>"
                         "<div class=\"v\">", key);
    calib__report_num(b, fmt, x);
    if (after) {
        calib__buf_puts(b, " &#8594; ");
        calib__report_num(b, fmt, *after);
    }
    calib__buf_puts(b, "</div></div>");
}

static void head(calib__buf *b, const calib_report_spec *s)
{
    const calib_metrics *x = s->test_before, *y = s->test_after;
    calib__buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head>"
                       "<meta charset=\"utf-8\"/><meta name=\"viewport\" "
                       "content=\"width=device-width, initial-scale=1\"/>"
                       "<title>");
    calib__report_esc(b, s->title);
    calib__buf_printf(b, "</title><style>%s</style></head><body><main>"
                         "<header><h1>", css);
    calib__report_esc(b, s->title);
    calib__buf_puts(b, "</h1><p class=\"sub\">Calibration of ");
    calib__report_esc(b, s->test_path ? s->test_path : "the test set");
    if (s->calibrator) {
        calib__buf_printf(b, ", before and after %s fitted on ",
                          calib__report_method_phrase(s->calibrator));
        calib__report_esc(b, s->val_path ? s->val_path : "a validation set");
    }
    calib__buf_puts(b, ".</p><div class=\"cards\">");
    card(b, "ECE (test)", "%.4f", x->ece, y ? &y->ece : NULL);
    if (isfinite(x->nll))
        card(b, "NLL (test)", "%.4f", x->nll, y ? &y->nll : NULL);
    card(b, "Accuracy", "%.4f", x->accuracy, NULL);
    if (s->calibrator && calib__report_temperature(s->calibrator))
        card(b, "Temperature T", "%.4g",
             calib_calibrator_temperature(s->calibrator), NULL);
    else if (s->calibrator)
        calib__buf_printf(b, "<div class=\"card\"><div class=\"k\">Method"
                             "</div><div class=\"v\">%s</div></div>",
                          calib_method_name(
                              calib_calibrator_method(s->calibrator)));
    calib__buf_printf(b, "<div class=\"card\"><div class=\"k\">Test rows</div>"
                         "<div class=\"v\">%zu</div></div></div></header>",
                      x->n);
}

static int test_diagrams(calib__buf *b, const calib_report_spec *s,
                         calib_error *err)
{
    calib__buf_puts(b, "<section id=\"diagrams\"><h2>Reliability on the test "
                       "set</h2><p class=\"note\">Accuracy against confidence "
                       "per bin; the diagonal is perfect calibration. Bins "
                       "below it are over-confident, above it "
                       "under-confident.</p><div class=\"pair\">");
    const calib_metrics *const before[1] = {s->test_before};
    int rc = diagram(b, before, NULL, 1, 520, 580, 0, err);
    if (rc)
        return rc;
    calib__buf_puts(b, "<figcaption>Before recalibration</figcaption>"
                       "</figure>");
    if (s->test_after) {
        const calib_metrics *const after[1] = {s->test_after};
        if ((rc = diagram(b, after, NULL, 1, 520, 580, 0, err)))
            return rc;
        calib__buf_printf(b, "<figcaption>After %s",
                          calib__report_method_phrase(used(s)));
        if (used(s) && calib__report_temperature(used(s))) {
            calib__buf_puts(b, " (T = ");
            calib__report_num(b, "%.4g",
                              calib_calibrator_temperature(used(s)));
            calib__buf_puts(b, ")");
        }
        calib__buf_puts(b, "</figcaption></figure>");
    }
    calib__buf_puts(b, "</div></section>");
    return CALIB_OK;
}

static void metrics_section(calib__buf *b, const calib_report_spec *s)
{
    const calib_metrics *m = s->test_before;
    calib__buf_puts(b, "<section id=\"metrics\"><h2>Metrics on the test set"
                       "</h2>");
    calib__report_metric_table(b, m, s->test_after);
    calib__buf_puts(b, "<p class=\"note\">Lower is better for every metric "
                       "but accuracy; green marks an improvement, red a "
                       "loss. Brier is ");
    calib__buf_puts(b, m->brier_kind == CALIB_BRIER_TOPLABEL
                           ? "the top-label form (p &#8722; correct)&#178;."
                           : "the multiclass form, in [0, 2].");
    if (m->nll_from_probs)
        calib__buf_puts(b, " NLL from probabilities, clipped at 1e-15.");
    if (!isfinite(m->nll))
        calib__buf_puts(b, " NLL does not apply to top-label rows.");
    calib__buf_puts(b, "</p></section>");
}

static int group_section(calib__buf *b, const calib_report_spec *s,
                         calib_error *err)
{
    const calib_metrics *m = s->test_before;
    if (!m->n_groups)
        return CALIB_OK;
    calib__buf_printf(b, "<section id=\"groups\"><h2>Per group (%zu)</h2>",
                      m->n_groups);
    group_table(b, m, s->test_after);
    calib__buf_puts(b, "<div class=\"grid\">");
    const size_t shown = m->n_groups < MAX_GROUP_DIAGRAMS ? m->n_groups
                                                          : MAX_GROUP_DIAGRAMS;
    for (size_t g = 0; g < shown; g++) {
        const calib_metrics *after = group_named(s->test_after,
                                                 m->group_names[g]);
        const calib_metrics *const series[2] = {m->groups[g], after};
        static const char *const labels[2] = {"before", "after"};
        const int rc = diagram(b, series, labels, after ? 2 : 1, 340, 360, 1,
                               err);
        if (rc)
            return rc;
        calib__buf_puts(b, "<figcaption>");
        calib__report_esc(b, m->group_names[g]);
        calib__buf_puts(b, ": ECE ");
        calib__report_num(b, "%.3f", m->groups[g]->ece);
        if (after) {
            calib__buf_puts(b, " &#8594; ");
            calib__report_num(b, "%.3f", after->ece);
        }
        calib__buf_printf(b, ", N = %zu</figcaption></figure>",
                          m->groups[g]->n);
    }
    calib__buf_puts(b, "</div>");
    if (shown < m->n_groups)
        calib__buf_printf(b, "<p class=\"note\">Diagrams of the first %zu "
                             "groups; the table has all of them.</p>", shown);
    calib__buf_puts(b, "</section>");
    return CALIB_OK;
}

static void binning_text(calib__buf *b, const calib_metrics *m)
{
    if (m->binning == CALIB_BINNING_MASS) {
        calib__buf_printf(b, "equal-mass, %zu bins in use", m->n_bins);
        return;
    }
    const size_t extra = m->rule == CALIB_RULE_TORCHMETRICS;
    calib__buf_printf(b, "equal-width, %zu bins, rule %s", m->n_bins - extra,
                      calib_bin_rule_name(m->rule));
}

static void inputs_section(calib__buf *b, const calib_report_spec *s)
{
    calib__buf_puts(b, "<section id=\"inputs\"><h2>Inputs and options</h2>"
                       "<dl>");
    if (s->val_path) {
        calib__buf_puts(b, "<dt>Validation (fit)</dt><dd><code>");
        calib__report_esc(b, s->val_path);
        calib__buf_puts(b, "</code>");
        if (s->val_before)
            calib__buf_printf(b, ", %zu rows", s->val_before->n);
        calib__buf_puts(b, "</dd>");
    }
    calib__buf_puts(b, "<dt>Test (judged)</dt><dd><code>");
    calib__report_esc(b, s->test_path ? s->test_path : "(not given)");
    calib__buf_printf(b, "</code>, %zu rows", s->test_before->n);
    if (s->test_before->classes)
        calib__buf_printf(b, ", %zu classes", s->test_before->classes);
    calib__buf_puts(b, "</dd><dt>Binning</dt><dd>");
    binning_text(b, s->test_before);
    calib__buf_puts(b, "</dd></dl>");
    if (s->command) {
        calib__buf_puts(b, "<h3>Reproduce this report</h3><pre><code>");
        calib__report_esc(b, s->command);
        calib__buf_puts(b, "</code></pre>");
    }
    calib__buf_printf(b, "</section><footer>Made by calib %s.</footer>"
                         "</main></body></html>\n", calib_version());
}

/* ------------------------------------------------------------------ */
/* calib_render_report                                                 */
/* ------------------------------------------------------------------ */

static int check_spec(const calib_report_spec *s, char **html, size_t *len,
                      calib_error *err)
{
    if (!s || !html || !len)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_render_report: NULL argument");
    if (!s->test_before)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_render_report: test_before is required");
    if (s->n_curve && (!s->curve_t || !s->curve_nll))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_render_report: n_curve > 0 without the "
                           "curve");
    for (size_t i = 0; i + 1 < s->n_curve; i++)
        if (!(s->curve_t[i] > 0.0 && s->curve_t[i] < s->curve_t[i + 1]))
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "calib_render_report: curve_t must be "
                               "positive and increasing");
    return CALIB_OK;
}

static int render(const calib_report_spec *spec, calib__buf *b,
                  calib_error *err)
{
    calib_report_spec s = *spec;
    if (!s.title)
        s.title = "Calibration report";
    head(b, &s);
    int rc = test_diagrams(b, &s, err);
    if (rc)
        return rc;
    metrics_section(b, &s);
    calib__report_fit_section(b, &s);
    if ((rc = group_section(b, &s, err)))
        return rc;
    inputs_section(b, &s);
    return CALIB_OK;
}

int calib_render_report(const calib_report_spec *spec, char **html,
                        size_t *len, calib_error *err)
{
    if (html)
        *html = NULL;
    if (len)
        *len = 0;
    int rc = check_spec(spec, html, len, err);
    if (rc)
        return rc;
    /* snprintf follows LC_NUMERIC; this thread alone switches to "C" for
     * the call, so a host's locale cannot turn 0.5 into 0,5, and nothing
     * global changes. */
    const locale_t c = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (c == (locale_t)0)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    const locale_t old = uselocale(c);
    calib__buf b = {0};
    rc = render(spec, &b, err);
    uselocale(old);
    freelocale(c);
    if (!rc && (b.failed || !b.s))
        rc = calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                         "out of memory rendering the report");
    if (rc) {
        free(b.s);
        return rc;
    }
    *html = b.s;
    *len = b.len;
    return calib__ok(err);
}
