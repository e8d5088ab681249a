/* test_values.c — value tables: equal-mass metrics from partial states.
 *
 * Exactness: rows with ties, weights and groups (float64, float32 on the
 * integer fast path, logits) split into shards, each shard's state
 * written, read back and merged in another order, give under
 * calib_accum_result_mass bit for bit what calib_evaluate --binning mass
 * gives over every row.  On a grid: the merged state is the same text
 * whatever the split and order, |ECE - exact| stays within the reported
 * bound, and where no group boundary falls inside a mixed cell the ECE is
 * still exact (float32 confidences >= 0.5 keep cells of their own at
 * 2^-24).  Corrupted tables are refused naming the JSON path; misuse is
 * CALIB_EINVAL.  The reference is calib_evaluate itself (test_metrics.c
 * holds its golden numbers): what is tested is that nothing changes
 * through a state.
 */
#include "golden.h"
#include "internal.h"

static uint64_t rng_state = 1;

static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005u + 1442695040888963407u;
    return (double)(rng_state >> 11) * 0x1p-53;
}

/* Rows with ties (every third confidence a multiple of 1/20, and 0 and 1),
 * integer and fractional weights (some 0), three groups. */
typedef struct rows {
    size_t n;
    double *conf;
    float *conf32;
    uint8_t *correct;
    double *w;
    uint32_t *g;
} rows;

static void make_rows(rows *r, size_t n)
{
    r->n = n;
    r->conf = malloc(n * sizeof *r->conf);
    r->conf32 = malloc(n * sizeof *r->conf32);
    r->correct = malloc(n);
    r->w = malloc(n * sizeof *r->w);
    r->g = malloc(n * sizeof *r->g);
    for (size_t i = 0; i < n; i++) {
        double p = sqrt(uniform());
        if (i % 3 == 0)
            p = floor(p * 20.0) / 20.0;
        if (i % 97 == 0)
            p = (double)(i % 2);
        r->conf[i] = p;
        r->conf32[i] = (float)p;
        r->correct[i] = uniform() < p;
        r->w[i] = (double)(i % 5) / 2.0;
        r->g[i] = (uint32_t)(uniform() * 3.0);
    }
}

static void free_rows(rows *r)
{
    free(r->conf);
    free(r->conf32);
    free(r->correct);
    free(r->w);
    free(r->g);
}

static const char *const names[] = {"a", "b", "c"};

/* Rows [b, e) as a dataset: float32 or float64, with or without weights
 * and groups. */
static calib_dataset *view(const rows *r, size_t b, size_t e, int f32,
                           int weighted, int grouped)
{
    calib_arrays a;
    memset(&a, 0, sizeof a);
    a.kind = CALIB_TOPLABEL;
    a.n = e - b;
    a.dtype = f32 ? CALIB_F32 : CALIB_F64;
    a.conf = f32 ? (const void *)(r->conf32 + b) : (const void *)(r->conf + b);
    a.correct = r->correct + b;
    a.weights = weighted ? r->w + b : NULL;
    a.groups = grouped ? r->g + b : NULL;
    a.n_groups = grouped ? 3 : 0;
    a.group_names = grouped ? names : NULL;
    calib_dataset *ds = NULL;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), CALIB_OK);
    return ds;
}

/* The state of ds with value tables, written and read back. */
static calib_accum *shard_state(const calib_dataset *ds, int bins,
                                size_t limit, int threads)
{
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bins = bins;
    o.threads = threads;
    calib_accum *a = NULL, *b = NULL;
    assert_int_equal(calib_accum_new(&o, &a, NULL), CALIB_OK);
    assert_int_equal(calib_accum_keep_values(a, limit, NULL), CALIB_OK);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    char *json = NULL;
    assert_int_equal(calib_accum_to_json(a, NULL, &json, NULL), CALIB_OK);
    calib_error err = {0};
    if (calib_accum_from_json(json, strlen(json), &b, NULL, &err))
        fail_msg("read back: %s", err.message);
    assert_true(calib_accum_has_values(b));
    free(json);
    calib_accum_free(a);
    return b;
}

/* Merges the states of rows cut at cuts[0..k) (ascending, inside [0, n])
 * in reverse order. */
static calib_accum *merged(const rows *r, const size_t *cuts, size_t k,
                           int f32, int weighted, int grouped, int bins,
                           size_t limit)
{
    calib_accum *all = NULL;
    for (size_t s = k + 1; s-- > 0;) {
        const size_t b = s ? cuts[s - 1] : 0, e = s < k ? cuts[s] : r->n;
        calib_dataset *ds = view(r, b, e, f32, weighted, grouped);
        calib_accum *a = shard_state(ds, bins, limit, 1 + (int)(s % 2));
        calib_dataset_free(ds);
        if (!all) {
            all = a;
            continue;
        }
        assert_int_equal(calib_accum_merge(all, a, NULL), CALIB_OK);
        calib_accum_free(a);
    }
    return all;
}

static calib_metrics *evaluate_mass(const calib_dataset *ds, int bins)
{
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bins = bins;
    o.binning = CALIB_BINNING_MASS;
    /* smooth and classwise ECE need every row: states do not have them */
    o.extra = CALIB_EXTRA_SELECTIVE;
    calib_metrics *m = NULL;
    assert_int_equal(calib_evaluate(ds, &o, &m, NULL), CALIB_OK);
    return m;
}

static void assert_exact(const calib_accum *a, size_t group)
{
    calib_exactness x;
    assert_int_equal(calib_accum_exactness(a, 0, group, &x, NULL), CALIB_OK);
    assert_true(x.grid == 0.0 && !x.ties_made && !x.bins_moved &&
                !x.edges_moved && x.ece_bound == 0.0);
}

/* ------------------------------------------------------------------ */
/* Exact tables                                                        */
/* ------------------------------------------------------------------ */

static void test_shards_equal_evaluate(void **state)
{
    rows r;
    rng_state = 11;
    make_rows(&r, 6000);
    static const size_t cuts[][4] = {{0}, {2000, 2000, 2001}, {1, 1500,
                                                              4000, 5999}};
    static const size_t nc[] = {0, 3, 4};
    for (int cfg = 0; cfg < 8; cfg++) {
        const int f32 = cfg & 1, weighted = (cfg >> 1) & 1,
                  grouped = (cfg >> 2) & 1;
        calib_dataset *ds = view(&r, 0, r.n, f32, weighted, grouped);
        calib_metrics *want = evaluate_mass(ds, 15);
        for (size_t c = 0; c < 3; c++) {
            calib_accum *a = merged(&r, cuts[c], nc[c], f32, weighted,
                                    grouped, 15, 0);
            calib_metrics *got = NULL;
            assert_int_equal(calib_accum_result_mass(a, 0, &got, NULL),
                             CALIB_OK);
            assert_same_metrics(want, got); /* AUROC, AURC ... included */
            assert_false(isnan(got->auroc) || isnan(got->aurc));
            assert_exact(a, SIZE_MAX);
            for (size_t g = 0; g < got->n_groups; g++)
                assert_exact(a, g);
            calib_metrics_free(got);
            if (c == 1) { /* another number of bins from the same tables */
                calib_metrics *w7 = evaluate_mass(ds, 7);
                assert_int_equal(calib_accum_result_mass(a, 7, &got, NULL),
                                 CALIB_OK);
                assert_same_metrics(w7, got);
                calib_metrics_free(got);
                calib_metrics_free(w7);
            }
            calib_accum_free(a);
        }
        calib_metrics_free(want);
        calib_dataset_free(ds);
    }
    free_rows(&r);
}

static void test_logits(void **state)
{
    const size_t n = 3000, k = 4;
    double *z = malloc(n * k * sizeof *z);
    int32_t *y = malloc(n * sizeof *y);
    rng_state = 5;
    for (size_t i = 0; i < n * k; i++)
        z[i] = 6.0 * uniform() - 3.0;
    for (size_t i = 0; i < n; i++)
        y[i] = (int32_t)(uniform() * (double)k);
    calib_arrays a;
    memset(&a, 0, sizeof a);
    a.kind = CALIB_LOGITS;
    a.n = n;
    a.k = k;
    a.dtype = CALIB_F64;
    a.scores = z;
    a.labels = y;
    calib_dataset *whole = NULL, *part[2] = {NULL, NULL};
    assert_int_equal(calib_dataset_wrap(&a, &whole, NULL), CALIB_OK);
    a.n = 1000;
    assert_int_equal(calib_dataset_wrap(&a, &part[0], NULL), CALIB_OK);
    a.n = n - 1000;
    a.scores = z + 1000 * k;
    a.labels = y + 1000;
    assert_int_equal(calib_dataset_wrap(&a, &part[1], NULL), CALIB_OK);
    calib_accum *s0 = shard_state(part[0], 10, 0, 2);
    calib_accum *s1 = shard_state(part[1], 10, 0, 1);
    assert_int_equal(calib_accum_merge(s1, s0, NULL), CALIB_OK);
    calib_metrics *want = evaluate_mass(whole, 10), *got = NULL;
    assert_int_equal(calib_accum_result_mass(s1, 0, &got, NULL), CALIB_OK);
    assert_same_metrics(want, got);
    assert_true(isfinite(got->nll));
    calib_metrics_free(want);
    calib_metrics_free(got);
    calib_accum_free(s0);
    calib_accum_free(s1);
    calib_dataset_free(whole);
    calib_dataset_free(part[0]);
    calib_dataset_free(part[1]);
    free(z);
    free(y);
}

/* ------------------------------------------------------------------ */
/* Tables on a grid                                                    */
/* ------------------------------------------------------------------ */

static char *text_of(const calib_accum *a)
{
    char *json = NULL;
    assert_int_equal(calib_accum_to_json(a, NULL, &json, NULL), CALIB_OK);
    return json;
}

/* The population of `name` (NULL: overall) in a state's JSON. */
static const json_t *population(const json_t *root, const char *name)
{
    const json_t *groups = json_object_get(root, "groups");
    if (!name)
        return json_object_get(root, "overall");
    for (size_t g = 0; g < json_array_size(groups); g++) {
        const json_t *p = json_array_get(groups, g);
        if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
            return p;
    }
    fail_msg("no group %s", name);
    return NULL;
}

/* Two states hold the same populations (groups may be in another order:
 * each state lists them in the order its first rows came in). */
static void same_state(const char *x, const char *y)
{
    json_t *a = json_loads(x, 0, NULL), *b = json_loads(y, 0, NULL);
    assert_true(json_equal(population(a, NULL), population(b, NULL)));
    for (size_t g = 0; g < 3; g++)
        assert_true(json_equal(population(a, names[g]),
                               population(b, names[g])));
    json_decref(a);
    json_decref(b);
}

static void test_grid_order_free(void **state)
{
    rows r;
    rng_state = 12;
    make_rows(&r, 8000);
    static const size_t c1[] = {3000}, c2[] = {100, 2500, 6000};
    calib_dataset *ds = view(&r, 0, r.n, 0, 1, 1);
    calib_accum *one = shard_state(ds, 15, 64, 2);
    calib_accum *a = merged(&r, c1, 1, 0, 1, 1, 15, 64);
    calib_accum *b = merged(&r, c2, 3, 0, 1, 1, 15, 64);
    char *t1 = text_of(one), *ta = text_of(a), *tb = text_of(b);
    same_state(t1, ta);
    same_state(t1, tb);
    calib_exactness x;
    assert_int_equal(calib_accum_exactness(a, 0, SIZE_MAX, &x, NULL),
                     CALIB_OK);
    /* 2^-6 has 65 cells (0 .. 64/64): one too many for 64 */
    assert_true(x.grid == 1.0 / 32 && x.ties_made);
    calib_metrics *exact = evaluate_mass(ds, 15), *got = NULL;
    assert_int_equal(calib_accum_result_mass(a, 0, &got, NULL), CALIB_OK);
    assert_true(x.bins_moved ? fabs(got->ece - exact->ece) <= x.ece_bound
                             : got->ece == exact->ece);
    /* what never depends on the bins stays exact */
    same_double(got->accuracy, exact->accuracy, "accuracy");
    same_double(got->mean_confidence, exact->mean_confidence, "mean conf");
    same_double(got->brier, exact->brier, "brier");
    calib_metrics_free(exact);
    calib_metrics_free(got);
    free(t1);
    free(ta);
    free(tb);
    calib_accum_free(one);
    calib_accum_free(a);
    calib_accum_free(b);
    calib_dataset_free(ds);
    free_rows(&r);
}

/* Ten groups of 100 rows, group i inside [i/16, (i+1)/16) with distinct
 * confidences: a limit of 16 puts the table on the 2^-4 grid, one mixed
 * cell per group, and every boundary of 10 bins between two cells. */
static void test_grid_boundaries_between_cells(void **state)
{
    rows r;
    rng_state = 13;
    make_rows(&r, 1000);
    for (size_t i = 0; i < r.n; i++)
        r.conf[i] = (double)(i / 100) / 16.0 + 0.001 + 0.05 * uniform();
    calib_dataset *ds = view(&r, 0, r.n, 0, 0, 0);
    calib_accum *a = shard_state(ds, 10, 16, 1);
    calib_exactness x;
    assert_int_equal(calib_accum_exactness(a, 0, SIZE_MAX, &x, NULL),
                     CALIB_OK);
    assert_true(x.grid == 1.0 / 16 && x.ties_made && !x.bins_moved &&
                x.edges_moved && x.ece_bound == 0.0);
    calib_metrics *exact = evaluate_mass(ds, 10), *got = NULL;
    assert_int_equal(calib_accum_result_mass(a, 0, &got, NULL), CALIB_OK);
    same_double(got->ece, exact->ece, "ece");
    same_double(got->mce, exact->mce, "mce");
    same_double(got->rmsce, exact->rmsce, "rmsce");
    assert_int_equal(got->n_bins, exact->n_bins);
    for (size_t b = 0; b < got->n_bins; b++) {
        assert_int_equal(got->bins[b].count, exact->bins[b].count);
        assert_true(got->bins[b].upper <= exact->bins[b].upper &&
                    got->bins[b].upper > exact->bins[b].upper - x.grid);
    }
    calib_metrics_free(exact);
    calib_metrics_free(got);
    calib_accum_free(a);
    calib_dataset_free(ds);
    free_rows(&r);
}

/* 100 distinct float64 confidences in one 2^-24 cell near 0.1 and 900
 * distinct float32 ones >= 0.5: at 2^-24 the latter keep cells of their
 * own, and every metric stays exact. */
static void test_float32_high_half(void **state)
{
    rows r;
    rng_state = 14;
    make_rows(&r, 1000);
    for (size_t i = 0; i < 100; i++)
        r.conf[i] = 0.1 + (double)i * 0x1p-40;
    for (size_t i = 100; i < r.n; i++)
        r.conf[i] = (double)(float)(0.5 + 0.5 * (double)i / (double)r.n);
    calib_dataset *ds = view(&r, 0, r.n, 0, 0, 0);
    calib_accum *a = shard_state(ds, 10, 950, 1);
    calib_exactness x;
    assert_int_equal(calib_accum_exactness(a, 0, SIZE_MAX, &x, NULL),
                     CALIB_OK);
    assert_true(x.grid == 0x1p-24 && !x.bins_moved);
    calib_metrics *exact = evaluate_mass(ds, 10), *got = NULL;
    assert_int_equal(calib_accum_result_mass(a, 0, &got, NULL), CALIB_OK);
    same_double(got->ece, exact->ece, "ece");
    for (size_t b = 1; b < got->n_bins; b++)
        same_double(got->bins[b].upper, exact->bins[b].upper, "upper");
    calib_metrics_free(exact);
    calib_metrics_free(got);
    calib_accum_free(a);
    calib_dataset_free(ds);
    free_rows(&r);
}

/* ------------------------------------------------------------------ */
/* Corrupted tables, misuse, and the exact repeated add                */
/* ------------------------------------------------------------------ */

static void refused(json_t *root, const char *want)
{
    char *bad = json_dumps(root, JSON_COMPACT);
    calib_accum *b = NULL;
    calib_error err = {0};
    assert_int_equal(calib_accum_from_json(bad, strlen(bad), &b, NULL, &err),
                     CALIB_EDATA);
    assert_null(b);
    if (!strstr(err.message, want))
        fail_msg("message '%s' lacks '%s'", err.message, want);
    free(bad);
    json_decref(root);
}

static json_t *runs_of(json_t *root)
{
    return json_object_get(
        json_object_get(json_object_get(root, "overall"), "values"), "runs");
}

static void test_corrupted_tables(void **state)
{
    rows r;
    rng_state = 15;
    make_rows(&r, 500);
    calib_dataset *ds = view(&r, 0, r.n, 0, 1, 0);
    calib_accum *a = shard_state(ds, 15, 0, 1);
    char *json = text_of(a);
    json_t *root = json_loads(json, 0, NULL);
    json_array_insert(runs_of(root), 0, json_array_get(runs_of(root), 3));
    refused(root, "overall.values.runs[1]: runs must be in increasing");
    root = json_loads(json, 0, NULL);
    json_array_remove(runs_of(root), 2);
    refused(root, "overall.values: ");
    root = json_loads(json, 0, NULL);
    json_array_set_new(json_array_get(runs_of(root), 0), 0, json_real(1.5));
    refused(root, "overall.values.runs[0]: the confidence must be");
    root = json_loads(json, 0, NULL);
    json_object_set_new(json_array_get(json_array_get(runs_of(root), 1), 4),
                        "mixed", json_true());
    refused(root, "overall.values.runs[1]: a mixed run must be on the grid");
    root = json_loads(json, 0, NULL);
    json_object_del(root, "value_limit");
    refused(root, "missing member \"value_limit\"");
    root = json_loads(json, 0, NULL);
    json_object_set_new(root, "version", json_integer(1));
    refused(root, "unknown member");
    free(json);
    calib_accum_free(a);
    calib_dataset_free(ds);
    free_rows(&r);
}

static void test_misuse(void **state)
{
    rows r;
    rng_state = 16;
    make_rows(&r, 200);
    calib_dataset *ds = view(&r, 0, r.n, 0, 0, 0);
    calib_accum *a = NULL, *b = NULL;
    calib_error err = {0};
    assert_int_equal(calib_accum_new(NULL, &a, NULL), CALIB_OK);
    assert_int_equal(calib_accum_keep_values(a, 8, NULL), CALIB_EINVAL);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    assert_int_equal(calib_accum_keep_values(a, 0, NULL), CALIB_EINVAL);
    calib_metrics *m = (calib_metrics *)&m;
    assert_int_equal(calib_accum_result_mass(a, 0, &m, &err), CALIB_EINVAL);
    assert_null(m);
    assert_non_null(strstr(err.message, "value table"));
    b = shard_state(ds, 15, 100, 1);
    calib_accum *c = shard_state(ds, 15, 200, 1);
    assert_int_equal(calib_accum_merge(b, c, NULL), CALIB_EINVAL);
    calib_exactness x;
    assert_int_equal(calib_accum_exactness(b, 0, 0, &x, NULL), CALIB_EINVAL);
    assert_int_equal(calib_accum_merge(b, a, NULL), CALIB_OK);
    assert_false(calib_accum_has_values(b)); /* a had none */
    calib_accum_free(a);
    calib_accum_free(b);
    calib_accum_free(c);
    calib_dataset_free(ds);
    free_rows(&r);
}

static void test_add_times(void **state)
{
    rng_state = 17;
    for (int t = 0; t < 200; t++) {
        const double x = t % 7 ? uniform() : ldexp(uniform(), -150 - t % 60);
        const uint64_t k = 1 + (uint64_t)(uniform() * 3000.0);
        calib__xsum a, b, na, nb;
        calib__xsum_init(&a);
        calib__xsum_init(&b);
        calib__xsum_add(&a, 0.25);
        calib__xsum_add(&b, 0.25);
        for (uint64_t i = 0; i < k; i++)
            calib__xsum_add(&a, x);
        calib__xsum_add_times(&b, x, k);
        calib__xsum_init(&na);
        calib__xsum_init(&nb);
        calib__xsum_merge(&na, &a); /* the normalised digits */
        calib__xsum_merge(&nb, &b);
        assert_memory_equal(na.d, nb.d, sizeof na.d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_equal_evaluate),
        cmocka_unit_test(test_logits),
        cmocka_unit_test(test_grid_order_free),
        cmocka_unit_test(test_grid_boundaries_between_cells),
        cmocka_unit_test(test_float32_high_half),
        cmocka_unit_test(test_corrupted_tables),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_add_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
