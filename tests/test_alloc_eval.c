/* test_alloc_eval.c — the allocation-failure sweep over everything after
 * reading: metrics (equal width and equal mass, groups, weights, every
 * extra metric, threads), their JSON, the streaming accumulator with its
 * partial state (to_json, from_json, merge), temperature fitting under
 * each objective, apply, the NLL curve, diagrams (SVG, PNG, text), the
 * HTML report, calib_write_probs, the calibrator's JSON, calib_dataset_wrap,
 * calib_evaluate_arrays,
 * calib_dataset_concat and calib_dataset_export.
 *
 * The inputs are read once, outside the sweep; each path then runs with its
 * Nth counted allocation failing (tests/fault_alloc.h) and must return
 * CALIB_ENOMEM with nothing leaked and out-pointers NULL, or succeed with the
 * fault-free result (digested byte for byte).
 */
#include "golden.h"
#include "internal.h"

#include "fault_alloc.h"
#include "fixtures.h"

static calib_dataset *top, *logits, *ragged, *probs, *many;

/* Enough logit rows for two threads (calib__parallel_for's grain is 4096
 * distribution rows), so that a failed pthread_create is exercised: the
 * range then runs on the calling thread, with the same result. */
#define MANY_N 10000
static double many_z[MANY_N * FX_K];
static int32_t many_y[MANY_N];

static calib_dataset *make_many(void)
{
    for (size_t i = 0; i < MANY_N * FX_K; i++)
        many_z[i] = fx_logits[i % FX_N][i % FX_K] * (double)(1 + i % 7) / 4;
    for (size_t i = 0; i < MANY_N; i++)
        many_y[i] = fx_labels[i % FX_N];
    const calib_arrays a = {.kind = CALIB_LOGITS, .n = MANY_N, .k = FX_K,
                            .dtype = CALIB_F64, .scores = many_z,
                            .labels = many_y};
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    return ds;
}

static uint64_t digest_json_metrics(const calib_metrics *m, int *rc,
                                    calib_error *err)
{
    char *json = NULL;
    *rc = calib_metrics_to_json(m, NULL, &json, err);
    FA_OUT_NULL(*rc, json);
    const uint64_t h = json ? fa_hash_bytes(FA_SEED, json, strlen(json)) : 0;
    free(json);
    return h;
}

/* ---- metrics -------------------------------------------------------- */

typedef struct eval_case {
    calib_dataset **ds;
    calib_binning binning;
    int threads;
    unsigned no_extra; /* CALIB_EXTRA_* bits left out (smooth ECE costs
                          a few ms a call: one path sweeps it) */
} eval_case;

static int path_evaluate(const void *ctx, uint64_t *digest, calib_error *err)
{
    const eval_case *c = ctx;
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.binning = c->binning;
    o.threads = c->threads;
    o.extra &= ~c->no_extra;
    calib_metrics *m = (calib_metrics *)1;
    int rc = calib_evaluate(*c->ds, &o, &m, err);
    FA_OUT_NULL(rc, m);
    if (!rc)
        *digest = digest_json_metrics(m, &rc, err);
    calib_metrics_free(m);
    return rc;
}

/* calib_evaluate_arrays over float32 top-label rows, two threads' worth,
 * with a clamped value (a block checked row by row). */
#define F32_N (2 * 65536 + 1001)
static float f32_conf[F32_N];
static uint8_t f32_correct[F32_N];

static int path_evaluate_arrays(const void *ctx, uint64_t *digest,
                                calib_error *err)
{
    (void)ctx;
    const calib_arrays a = {.kind = CALIB_TOPLABEL, .n = F32_N,
                            .dtype = CALIB_F32, .conf = f32_conf,
                            .correct = f32_correct};
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.threads = 2;
    o.extra = 0;
    calib_metrics *m = (calib_metrics *)1;
    calib_read_stats st;
    int rc = calib_evaluate_arrays(&a, &o, &m, &st, err);
    FA_OUT_NULL(rc, m);
    if (!rc) {
        *digest = fa_hash_bytes(digest_json_metrics(m, &rc, err), &st,
                                sizeof st);
    }
    calib_metrics_free(m);
    return rc;
}

/* accum: two halves added to two accumulators, one sent through its
 * partial state, merged, and the result's JSON. */
static int path_accum(const void *ctx, uint64_t *digest, calib_error *err)
{
    const calib_dataset *ds = *(calib_dataset *const *)ctx;
    calib_accum *a = (calib_accum *)1, *b = NULL, *c = NULL;
    calib_metrics *m = NULL;
    char *state = NULL;
    calib_read_stats rs;
    calib_dataset_stats(ds, &rs);
    int rc = calib_accum_new(NULL, &a, err);
    FA_OUT_NULL(rc, a);
    if (!rc)
        rc = calib_accum_new(NULL, &b, err);
    if (!rc)
        rc = calib_accum_add(a, ds, err);
    if (!rc)
        rc = calib_accum_add(b, ds, err);
    if (!rc)
        rc = calib_accum_to_json(b, &rs, &state, err);
    FA_OUT_NULL(rc, state);
    if (!rc) {
        c = (calib_accum *)1;
        rc = calib_accum_from_json(state, strlen(state), &c, &rs, err);
        FA_OUT_NULL(rc, c);
    }
    if (!rc)
        rc = calib_accum_merge(a, c, err);
    if (!rc)
        rc = calib_accum_result(a, &m, err);
    FA_OUT_NULL(rc, m);
    if (!rc)
        *digest = digest_json_metrics(m, &rc, err);
    calib_metrics_free(m);
    free(state);
    calib_accum_free(a);
    calib_accum_free(b);
    calib_accum_free(c);
    return rc;
}

/* ---- temperature scaling -------------------------------------------- */

typedef struct fit_case {
    calib_dataset **ds;
    calib_objective objective;
} fit_case;

/* fit, the calibrator's JSON read back, apply, and metrics after. */
static int path_fit_apply(const void *ctx, uint64_t *digest,
                          calib_error *err)
{
    const fit_case *fc = ctx;
    calib_fit_options o;
    calib_fit_options_init(&o);
    o.objective = fc->objective;
    o.eval.threads = 1;
    calib_calibrator *cal = (calib_calibrator *)1, *back = NULL;
    calib_dataset *after = NULL;
    calib_metrics *m = NULL;
    char *json = NULL;
    int rc = calib_fit(*fc->ds, &o, &cal, err);
    FA_OUT_NULL(rc, cal);
    if (!rc)
        rc = calib_calibrator_to_json(cal, &json, err);
    FA_OUT_NULL(rc, json);
    if (!rc) {
        back = (calib_calibrator *)1;
        rc = calib_calibrator_from_json(json, strlen(json), &back, err);
        FA_OUT_NULL(rc, back);
    }
    if (!rc) {
        after = (calib_dataset *)1;
        rc = calib_apply(back, *fc->ds, &after, err);
        FA_OUT_NULL(rc, after);
    }
    if (!rc) { /* the core: test_metrics sweeps the further metrics */
        calib_eval_options eo;
        calib_eval_options_init(&eo);
        eo.extra = 0;
        rc = calib_evaluate(after, &eo, &m, err);
    }
    FA_OUT_NULL(rc, m);
    if (!rc) {
        uint64_t h = fa_hash_bytes(FA_SEED, json, strlen(json));
        *digest = h ^ digest_json_metrics(m, &rc, err);
    }
    calib_metrics_free(m);
    calib_dataset_free(after);
    free(json);
    calib_calibrator_free(back);
    calib_calibrator_free(cal);
    return rc;
}

static int path_curve(const void *ctx, uint64_t *digest, calib_error *err)
{
    const double t[5] = {0.25, 0.5, 1, 2, 4};
    double nll[5];
    const int rc = calib_temperature_curve(*(calib_dataset *const *)ctx, t, 5,
                                           nll, 1, err);
    if (!rc)
        *digest = fa_hash_bytes(FA_SEED, nll, sizeof nll);
    return rc;
}

/* ---- diagrams and the report ---------------------------------------- */

typedef struct render_ctx {
    const calib_metrics *series[2];
    calib_plot_format fmt;
    const calib_report_spec *spec;
} render_ctx;

static int path_diagram(const void *ctx, uint64_t *digest, calib_error *err)
{
    const render_ctx *r = ctx;
    const char *labels[2] = {"before", NULL};
    unsigned char *out = (unsigned char *)1;
    size_t len = 0;
    const int rc = calib_render_diagram(r->series, labels, 2, r->fmt, NULL,
                                        &out, &len, err);
    FA_OUT_NULL(rc, out);
    if (!rc)
        *digest = fa_hash_bytes(FA_SEED, out, len);
    free(out);
    return rc;
}

static int path_report(const void *ctx, uint64_t *digest, calib_error *err)
{
    const render_ctx *r = ctx;
    char *html = (char *)1;
    size_t len = 0;
    const int rc = calib_render_report(r->spec, &html, &len, err);
    FA_OUT_NULL(rc, html);
    if (!rc)
        *digest = fa_hash_bytes(FA_SEED, html, len);
    free(html);
    return rc;
}

/* ---- datasets and writing ------------------------------------------- */

static int path_write(const void *ctx, uint64_t *digest, calib_error *err)
{
    const calib_format fmt = *(const calib_format *)ctx;
    static char buf[1 << 16];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    if (!f)
        fail_msg("fmemopen: %s", strerror(errno));
    int rc = calib_write_probs(logits, fmt, f, err);
    const long len = ftell(f);
    fclose(f);
    if (!rc)
        *digest = fa_hash_bytes(FA_SEED, buf, (size_t)len);
    return rc;
}

/* wrap (with groups), concat with the logits read from CSV, and export
 * of the result. */
static int path_datasets(const void *ctx, uint64_t *digest, calib_error *err)
{
    (void)ctx;
    static const uint32_t groups[FX_N] = {0, 1, 0, 2, 1, 0, 2, 0};
    static const char *const names[3] = {"a", "b", "c"};
    int32_t labels[FX_N];
    for (size_t i = 0; i < FX_N; i++)
        labels[i] = fx_labels[i];
    const calib_arrays a = {.kind = CALIB_LOGITS, .n = FX_N, .k = FX_K,
                            .dtype = CALIB_F64, .scores = fx_logits,
                            .labels = labels, .weights = fx_weight,
                            .groups = groups, .n_groups = 3,
                            .group_names = names};
    calib_dataset *w = (calib_dataset *)1, *cat = NULL;
    int rc = calib_dataset_wrap(&a, &w, err);
    FA_OUT_NULL(rc, w);
    if (!rc) {
        const calib_dataset *parts[2] = {w, logits};
        cat = (calib_dataset *)1;
        rc = calib_dataset_concat(parts, 2, &cat, err);
        FA_OUT_NULL(rc, cat);
    }
    double out[2 * FX_N * FX_K];
    if (!rc)
        rc = calib_dataset_export(cat, out, calib_dataset_export_len(cat), err);
    if (!rc) {
        uint64_t h = fa_hash_bytes(FA_SEED, out, sizeof out);
        for (size_t g = 0; g < calib_dataset_group_count(cat); g++) {
            const char *s = calib_dataset_group_name(cat, g);
            h = fa_hash_bytes(h, s, strlen(s) + 1);
        }
        *digest = h;
    }
    calib_dataset_free(cat);
    calib_dataset_free(w);
    return rc;
}

/* ---- the tests ------------------------------------------------------ */

static void report(const char *what, fa_stats st)
{
    print_message("%-28s %5lu events, %5lu faults, %3lu recovered\n", what,
                  st.events, st.steps, st.recovered);
}

static void test_metrics(void **state)
{
    const struct {
        const char *name;
        eval_case c;
    } cases[] = {
        {"evaluate top-label width", {&top, CALIB_BINNING_WIDTH, 1, CALIB_EXTRA_SMOOTH}},
        {"evaluate top-label mass", {&top, CALIB_BINNING_MASS, 1, CALIB_EXTRA_SMOOTH}},
        {"evaluate logits width", {&logits, CALIB_BINNING_WIDTH, 1, CALIB_EXTRA_SMOOTH}},
        {"evaluate logits mass", {&logits, CALIB_BINNING_MASS, 1, CALIB_EXTRA_SMOOTH}},
        {"evaluate ragged width", {&ragged, CALIB_BINNING_WIDTH, 1, 0}},
        {"evaluate probs width", {&probs, CALIB_BINNING_WIDTH, 1, CALIB_EXTRA_SMOOTH}},
        {"evaluate 10000 rows 2 threads", {&many, CALIB_BINNING_WIDTH, 2, CALIB_EXTRA_SMOOTH}},
        {"evaluate 10000 rows mass 2 thr", {&many, CALIB_BINNING_MASS, 2, CALIB_EXTRA_SMOOTH}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        report(cases[i].name,
               fa_sweep(cases[i].name, path_evaluate, &cases[i].c));
}

static void test_accum(void **state)
{
    report("accum top-label", fa_sweep("accum top", path_accum, &top));
    report("accum logits", fa_sweep("accum logits", path_accum, &logits));
}

static void test_fit(void **state)
{
    const struct {
        const char *name;
        fit_case c;
    } cases[] = {
        {"fit+apply logits nll", {&logits, CALIB_OBJECTIVE_NLL}},
        {"fit+apply logits ece", {&logits, CALIB_OBJECTIVE_ECE}},
        {"fit+apply logits brier", {&logits, CALIB_OBJECTIVE_BRIER}},
        {"fit+apply ragged nll", {&ragged, CALIB_OBJECTIVE_NLL}},
        {"fit+apply top-label nll", {&top, CALIB_OBJECTIVE_NLL}},
        {"fit+apply top-label ece", {&top, CALIB_OBJECTIVE_ECE}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        report(cases[i].name,
               fa_sweep(cases[i].name, path_fit_apply, &cases[i].c));
    for (size_t i = 0; i < F32_N; i++) {
        f32_conf[i] = (float)((i * 2654435761u) % 1000) / 999.0f;
        f32_correct[i] = (uint8_t)(i % 3 != 0);
    }
    f32_conf[70000] = -5e-4f;
    report("evaluate_arrays f32 2 thr",
           fa_sweep("evaluate_arrays", path_evaluate_arrays, NULL));
    report("curve logits", fa_sweep("curve", path_curve, &logits));
    report("curve top-label", fa_sweep("curve", path_curve, &top));
}

static void test_render(void **state)
{
    calib_metrics *m1 = NULL, *m2 = NULL, *v1 = NULL;
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.threads = 1;
    assert_int_equal(calib_evaluate(top, &o, &m1, NULL), CALIB_OK);
    o.binning = CALIB_BINNING_MASS;
    assert_int_equal(calib_evaluate(logits, &o, &m2, NULL), CALIB_OK);
    assert_int_equal(calib_evaluate(logits, NULL, &v1, NULL), CALIB_OK);
    const double t[3] = {0.5, 1, 2}, nll[3] = {0.9, 0.7, 0.8};
    const calib_report_spec spec = {
        .title = "fault sweep", .test_before = m1, .test_after = m1,
        .val_before = v1, .val_after = m2, .curve_t = t, .curve_nll = nll,
        .n_curve = 3, .val_path = "val.csv", .test_path = "test.csv",
        .command = "calib report --val val.csv --test test.csv"};
    static const char *const names[] = {"svg", "png", "text"};
    for (int f = 0; f < 3; f++) {
        const calib_plot_format fmt = f == 0 ? CALIB_PLOT_SVG
                                      : f == 1 ? CALIB_PLOT_PNG
                                               : CALIB_PLOT_TEXT;
        const render_ctx r = {{m1, m2}, fmt, &spec};
        char what[64];
        snprintf(what, sizeof what, "diagram %s", names[f]);
        report(what, fa_sweep(what, path_diagram, &r));
    }
    const render_ctx r = {{m1, m2}, CALIB_PLOT_SVG, &spec};
    report("report", fa_sweep("report", path_report, &r));
    calib_metrics_free(m1);
    calib_metrics_free(m2);
    calib_metrics_free(v1);
}

static void test_datasets(void **state)
{
    static const calib_format npy = CALIB_FORMAT_NPY, csv = CALIB_FORMAT_CSV;
    report("write_probs npy", fa_sweep("write npy", path_write, &npy));
    report("write_probs csv", fa_sweep("write csv", path_write, &csv));
    report("wrap+concat+export", fa_sweep("datasets", path_datasets, NULL));
}

static calib_dataset *read_fixture(const char *name, int npy_probs)
{
    calib_read_options o = fx_options(name);
    o.npy_probs = npy_probs;
    return read_ok(fx_path(name), &o);
}

static int setup(void **state)
{
    fa_init();
    fx_write_all();
    /* Probabilities: softmax of the fixture logits, as a .npy. */
    double p[FX_N][FX_K];
    for (size_t i = 0; i < FX_N; i++) {
        double s = 0;
        for (size_t j = 0; j < FX_K; j++)
            s += p[i][j] = exp(fx_logits[i][j]);
        for (size_t j = 0; j < FX_K; j++)
            p[i][j] /= s;
    }
    fx_put("probs.npy", fx_npy("<f8", "(8, 3)", p, 8, FX_N * FX_K), 0);
    top = read_fixture("top.csv", 0);
    logits = read_fixture("logits.csv", 0);
    ragged = read_fixture("samples_fx_2024-01-01.jsonl", 0);
    probs = read_fixture("probs.npy", 1);
    many = make_many();
    return 0;
}

static int teardown(void **state)
{
    calib_dataset_free(top);
    calib_dataset_free(logits);
    calib_dataset_free(ragged);
    calib_dataset_free(probs);
    calib_dataset_free(many);
    fx_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics),  cmocka_unit_test(test_accum),
        cmocka_unit_test(test_fit),      cmocka_unit_test(test_render),
        cmocka_unit_test(test_datasets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
