/* test_metrics.c — metrics against golden numbers (numpy/scikit-learn),
 * exactness (threads, shards, groups), input checks of calib_dataset_wrap,
 * the JSON output, and the published DenseNet-40 numbers.
 */
#include "golden.h"
#include "internal.h"

#include <float.h>
#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Golden cases -> calib_arrays                                        */
/* ------------------------------------------------------------------ */

typedef struct tcase {
    const json_t *j;
    calib_arrays a;
    calib_eval_options opt;
    void *values;            /* conf or scores, in the case's dtype */
    uint8_t *correct;
    int32_t *labels;
    double *weights;
    uint32_t *groups;
    const char **names;
} tcase;

static void *typed(const json_t *j, const char *key, calib_dtype t, size_t *n)
{
    double *d = golden_doubles(j, key, n);
    if (t == CALIB_F64)
        return d;
    float *f = malloc((*n ? *n : 1) * sizeof *f);
    for (size_t i = 0; i < *n; i++)
        f[i] = (float)d[i]; /* the generator wrote float32 values exactly */
    free(d);
    return f;
}

static void load_options(const json_t *o, calib_eval_options *opt)
{
    calib_eval_options_init(opt);
    opt->bins = (int)json_integer_value(json_object_get(o, "bins"));
    const char *b = json_string_value(json_object_get(o, "binning"));
    opt->binning = strcmp(b, "mass") == 0 ? CALIB_BINNING_MASS
                                          : CALIB_BINNING_WIDTH;
    assert_int_equal(calib_bin_rule_parse(
                         json_string_value(json_object_get(o, "rule")),
                         &opt->rule),
                     CALIB_OK);
}

static void load_groups(tcase *c)
{
    size_t n;
    int64_t *g = golden_ints(c->j, "groups", &n);
    c->groups = malloc(n * sizeof *c->groups);
    for (size_t i = 0; i < n; i++)
        c->groups[i] = (uint32_t)g[i];
    free(g);
    const json_t *names = json_object_get(c->j, "group_names");
    c->a.n_groups = json_array_size(names);
    c->names = malloc(c->a.n_groups * sizeof *c->names);
    for (size_t i = 0; i < c->a.n_groups; i++)
        c->names[i] = json_string_value(json_array_get(names, i));
    c->a.groups = c->groups;
    c->a.group_names = c->names;
}

static void load_rows(tcase *c)
{
    const char *kind = json_string_value(json_object_get(c->j, "kind"));
    size_t n = 0;
    if (strcmp(kind, "toplabel") == 0) {
        c->a.kind = CALIB_TOPLABEL;
        c->values = typed(c->j, "conf", c->a.dtype, &n);
        int64_t *v = golden_ints(c->j, "correct", &n);
        c->correct = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++)
            c->correct[i] = (uint8_t)v[i];
        free(v);
        c->a.conf = c->values;
        c->a.correct = c->correct;
    } else {
        c->a.kind = strcmp(kind, "logits") == 0 ? CALIB_LOGITS : CALIB_PROBS;
        size_t ns;
        c->values = typed(c->j, "scores", c->a.dtype, &ns);
        int64_t *v = golden_ints(c->j, "labels", &n);
        c->labels = malloc(n * sizeof *c->labels);
        for (size_t i = 0; i < n; i++)
            c->labels[i] = (int32_t)v[i];
        free(v);
        c->a.scores = c->values;
        c->a.labels = c->labels;
    }
    c->a.n = n;
}

static void tcase_load(tcase *c, const json_t *j)
{
    memset(c, 0, sizeof *c);
    c->j = j;
    c->a.dtype = strcmp(json_string_value(json_object_get(j, "dtype")),
                        "f32") == 0
                     ? CALIB_F32
                     : CALIB_F64;
    c->a.k = (size_t)json_integer_value(json_object_get(j, "k"));
    load_rows(c);
    if (json_object_get(j, "weights"))
        c->a.weights = c->weights = golden_doubles(j, "weights", NULL);
    if (json_object_get(j, "groups"))
        load_groups(c);
    load_options(json_object_get(j, "options"), &c->opt);
}

static void tcase_free(tcase *c)
{
    free(c->values);
    free(c->correct);
    free(c->labels);
    free(c->weights);
    free(c->groups);
    free(c->names);
}

static calib_dataset *wrap(const calib_arrays *a)
{
    calib_dataset *ds = NULL;
    calib_error err;
    const int rc = calib_dataset_wrap(a, &ds, &err);
    if (rc != CALIB_OK)
        fail_msg("wrap: %s (row %zu col %zu)", err.message, err.row,
                 err.column);
    return ds;
}

static calib_metrics *eval(const calib_dataset *ds,
                           const calib_eval_options *o)
{
    calib_metrics *m = NULL;
    calib_error err;
    if (calib_evaluate(ds, o, &m, &err) != CALIB_OK)
        fail_msg("evaluate: %s", err.message);
    return m;
}

/* ------------------------------------------------------------------ */
/* Comparisons                                                         */
/* ------------------------------------------------------------------ */

#define TOL 1e-12

static void compare_bins(const calib_metrics *m, const json_t *b)
{
    size_t nb;
    double *lo = golden_doubles(b, "lower", &nb);
    double *hi = golden_doubles(b, "upper", NULL);
    double *w = golden_doubles(b, "weight", NULL);
    double *conf = golden_doubles(b, "mean_confidence", NULL);
    double *acc = golden_doubles(b, "accuracy", NULL);
    int64_t *cnt = golden_ints(b, "count", NULL);
    assert_int_equal(m->n_bins, nb);
    for (size_t i = 0; i < nb; i++) {
        /* width edges are k/M exactly; mass edges are midpoints of
         * confidences, which numpy's softmax may round differently */
        if (m->binning == CALIB_BINNING_WIDTH) {
            assert_true(m->bins[i].lower == lo[i]);
            assert_true(m->bins[i].upper == hi[i]);
        }
        assert_close(m->bins[i].lower, lo[i], TOL);
        assert_close(m->bins[i].upper, hi[i], TOL);
        assert_int_equal(m->bins[i].count, cnt[i]);
        assert_close(m->bins[i].weight, w[i], TOL);
        assert_close(m->bins[i].mean_confidence, conf[i], TOL);
        assert_close(m->bins[i].accuracy, acc[i], TOL);
    }
    free(lo), free(hi), free(w), free(conf), free(acc), free(cnt);
}

static void compare(const calib_metrics *m, const json_t *e)
{
    assert_int_equal(m->n, json_integer_value(json_object_get(e, "n")));
    assert_int_equal(m->ece_n, json_integer_value(json_object_get(e, "ece_n")));
    assert_int_equal(m->nll_clipped_rows,
                     json_integer_value(json_object_get(e, "nll_clipped_rows")));
    assert_close(m->weight, golden_number(e, "weight"), TOL);
    assert_close(m->accuracy, golden_number(e, "accuracy"), TOL);
    assert_close(m->mean_confidence, golden_number(e, "mean_confidence"), TOL);
    assert_close(m->ece, golden_number(e, "ece"), TOL);
    assert_close(m->mce, golden_number(e, "mce"), TOL);
    assert_close(m->rmsce, golden_number(e, "rmsce"), TOL);
    assert_close(m->nll, golden_number(e, "nll"), TOL);
    assert_close(m->brier, golden_number(e, "brier"), TOL);
    compare_bins(m, json_object_get(e, "bins"));
    const json_t *order = json_object_get(e, "group_order");
    assert_int_equal(m->n_groups, json_array_size(order));
    for (size_t g = 0; g < m->n_groups; g++) {
        const char *name = json_string_value(json_array_get(order, g));
        assert_string_equal(m->group_names[g], name);
        compare(m->groups[g],
                json_object_get(json_object_get(e, "groups"), name));
    }
}

static int same(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* Bit-identical metrics (what exact sums promise). */
static void assert_identical(const calib_metrics *a, const calib_metrics *b)
{
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->n_bins, b->n_bins);
    assert_int_equal(a->ece_n, b->ece_n);
    assert_int_equal(a->nll_clipped_rows, b->nll_clipped_rows);
    const double x[] = {a->weight, a->accuracy, a->mean_confidence, a->ece,
                        a->mce, a->rmsce, a->nll, a->brier};
    const double y[] = {b->weight, b->accuracy, b->mean_confidence, b->ece,
                        b->mce, b->rmsce, b->nll, b->brier};
    for (size_t i = 0; i < sizeof x / sizeof *x; i++)
        if (!same(x[i], y[i]))
            fail_msg("field %zu: %.17g != %.17g", i, x[i], y[i]);
    for (size_t i = 0; i < a->n_bins; i++) {
        assert_int_equal(a->bins[i].count, b->bins[i].count);
        assert_true(same(a->bins[i].weight, b->bins[i].weight));
        assert_true(same(a->bins[i].mean_confidence,
                         b->bins[i].mean_confidence));
        assert_true(same(a->bins[i].accuracy, b->bins[i].accuracy));
    }
    assert_int_equal(a->n_groups, b->n_groups);
    for (size_t g = 0; g < a->n_groups; g++) {
        assert_string_equal(a->group_names[g], b->group_names[g]);
        assert_identical(a->groups[g], b->groups[g]);
    }
}

/* ------------------------------------------------------------------ */
/* Golden tests                                                        */
/* ------------------------------------------------------------------ */

static void test_golden_cases(void **state)
{
    json_t *all = golden_load("metrics_cases.json");
    assert_true(json_array_size(all) > 20);
    for (size_t i = 0; i < json_array_size(all); i++) {
        tcase c;
        tcase_load(&c, json_array_get(all, i));
        print_message("case %s\n",
                      json_string_value(json_object_get(c.j, "name")));
        calib_dataset *ds = wrap(&c.a);
        calib_read_stats st;
        calib_dataset_stats(ds, &st);
        assert_int_equal(st.values_clamped,
                         json_integer_value(json_object_get(c.j, "values_clamped")));
        assert_int_equal(st.rows_sum_off,
                         json_integer_value(json_object_get(c.j, "rows_sum_off")));
        calib_metrics *m = eval(ds, &c.opt);
        compare(m, json_object_get(c.j, "expected"));
        calib_metrics_free(m);
        calib_dataset_free(ds);
        tcase_free(&c);
    }
    json_decref(all);
}

/* threads = 1, 2, 8 give bit-identical metrics. */
static void test_thread_invariance(void **state)
{
    json_t *all = golden_load("metrics_cases.json");
    for (size_t i = 0; i < json_array_size(all); i++) {
        tcase c;
        tcase_load(&c, json_array_get(all, i));
        calib_dataset *ds = wrap(&c.a);
        c.opt.threads = 1;
        calib_metrics *m1 = eval(ds, &c.opt);
        const int t[] = {2, 8};
        for (int j = 0; j < 2; j++) {
            c.opt.threads = t[j];
            calib_metrics *mt = eval(ds, &c.opt);
            assert_identical(m1, mt);
            calib_metrics_free(mt);
        }
        calib_metrics_free(m1);
        calib_dataset_free(ds);
        tcase_free(&c);
    }
    json_decref(all);
}

/* Rows [b, e) of c as their own arrays (pointers into c's). */
static calib_arrays slice(const tcase *c, size_t b, size_t e)
{
    calib_arrays s = c->a;
    const size_t esz = c->a.dtype == CALIB_F32 ? 4 : 8;
    s.n = e - b;
    if (c->a.kind == CALIB_TOPLABEL) {
        s.conf = (const char *)c->a.conf + b * esz;
        s.correct = c->a.correct + b;
    } else {
        s.scores = (const char *)c->a.scores + b * c->a.k * esz;
        s.labels = c->a.labels + b;
    }
    if (s.weights)
        s.weights += b;
    if (s.groups)
        s.groups += b;
    return s;
}

static void accum_slice(calib_accum *a, const tcase *c, size_t b, size_t e)
{
    const calib_arrays s = slice(c, b, e);
    calib_dataset *ds = wrap(&s);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    calib_dataset_free(ds);
}

/* Accumulating a random split in two accumulators and merging them equals
 * evaluating the whole, bit for bit. */
static void test_shard_invariance(void **state)
{
    json_t *all = golden_load("metrics_cases.json");
    srand(7);
    for (size_t i = 0; i < json_array_size(all); i++) {
        tcase c;
        tcase_load(&c, json_array_get(all, i));
        if (c.opt.binning == CALIB_BINNING_MASS || c.a.n < 3) {
            tcase_free(&c);
            continue;
        }
        calib_dataset *ds = wrap(&c.a);
        calib_metrics *whole = eval(ds, &c.opt);
        const size_t s1 = (size_t)rand() % c.a.n;
        const size_t s2 = s1 + (size_t)rand() % (c.a.n - s1);
        calib_accum *a = NULL, *b = NULL;
        c.opt.threads = 2;
        assert_int_equal(calib_accum_new(&c.opt, &a, NULL), CALIB_OK);
        c.opt.threads = 1;
        assert_int_equal(calib_accum_new(&c.opt, &b, NULL), CALIB_OK);
        accum_slice(b, &c, s2, c.a.n); /* later rows first: order-free */
        accum_slice(a, &c, 0, s1);
        accum_slice(b, &c, s1, s2);
        assert_int_equal(calib_accum_merge(a, b, NULL), CALIB_OK);
        calib_metrics *merged = NULL;
        assert_int_equal(calib_accum_result(a, &merged, NULL), CALIB_OK);
        /* groups may appear in another order; compare by name */
        calib_metrics *m = merged;
        assert_int_equal(m->n_groups, whole->n_groups);
        for (size_t g = 0; g < whole->n_groups; g++) {
            size_t h = 0;
            while (strcmp(m->group_names[h], whole->group_names[g]))
                h++;
            assert_identical(whole->groups[g], m->groups[h]);
        }
        const size_t ng = m->n_groups;
        m->n_groups = whole->n_groups = 0;
        assert_identical(whole, m);
        m->n_groups = whole->n_groups = ng;
        calib_metrics_free(merged);
        calib_metrics_free(whole);
        calib_accum_free(a);
        calib_accum_free(b);
        calib_dataset_free(ds);
        tcase_free(&c);
    }
    json_decref(all);
}

/* A group's metrics equal the metrics of its rows evaluated alone. */
static void test_groups_alone(void **state)
{
    json_t *all = golden_load("metrics_cases.json");
    for (size_t i = 0; i < json_array_size(all); i++) {
        tcase c;
        tcase_load(&c, json_array_get(all, i));
        if (!c.groups) {
            tcase_free(&c);
            continue;
        }
        calib_dataset *ds = wrap(&c.a);
        calib_metrics *m = eval(ds, &c.opt);
        for (size_t g = 0; g < m->n_groups; g++) {
            uint32_t gi = 0;
            while (strcmp(c.names[gi], m->group_names[g]))
                gi++;
            /* rows of group gi, copied into a dataset without groups */
            tcase sub = c;
            const size_t esz = c.a.dtype == CALIB_F32 ? 4 : 8;
            const size_t k = c.a.kind == CALIB_TOPLABEL ? 1 : c.a.k;
            char *vals = malloc(c.a.n * k * esz);
            uint8_t *cor = malloc(c.a.n);
            int32_t *lab = malloc(c.a.n * sizeof *lab);
            double *w = malloc(c.a.n * sizeof *w);
            size_t n = 0;
            for (size_t r = 0; r < c.a.n; r++) {
                if (c.groups[r] != gi)
                    continue;
                memcpy(vals + n * k * esz, (char *)c.values + r * k * esz,
                       k * esz);
                if (c.correct)
                    cor[n] = c.correct[r];
                if (c.labels)
                    lab[n] = c.labels[r];
                if (c.weights)
                    w[n] = c.weights[r];
                n++;
            }
            sub.a.n = n;
            sub.a.groups = NULL;
            sub.a.n_groups = 0;
            sub.a.weights = c.weights ? w : NULL;
            if (c.a.kind == CALIB_TOPLABEL)
                sub.a.conf = vals, sub.a.correct = cor;
            else
                sub.a.scores = vals, sub.a.labels = lab;
            calib_dataset *dg = wrap(&sub.a);
            calib_metrics *mg = eval(dg, &c.opt);
            assert_identical(m->groups[g], mg);
            calib_metrics_free(mg);
            calib_dataset_free(dg);
            free(vals), free(cor), free(lab), free(w);
        }
        calib_metrics_free(m);
        calib_dataset_free(ds);
        tcase_free(&c);
    }
    json_decref(all);
}

/* Ragged offsets with equal lengths give the same numbers as k columns. */
static void test_ragged_equals_dense(void **state)
{
    json_t *all = golden_load("metrics_cases.json");
    for (size_t i = 0; i < json_array_size(all); i++) {
        tcase c;
        tcase_load(&c, json_array_get(all, i));
        if (c.a.kind == CALIB_TOPLABEL) {
            tcase_free(&c);
            continue;
        }
        size_t *off = malloc((c.a.n + 1) * sizeof *off);
        for (size_t r = 0; r <= c.a.n; r++)
            off[r] = r * c.a.k;
        calib_dataset *d1 = wrap(&c.a);
        calib_arrays ra = c.a;
        ra.offsets = off;
        calib_dataset *d2 = wrap(&ra);
        assert_int_equal(calib_dataset_classes(d2), 0);
        calib_metrics *m1 = eval(d1, &c.opt), *m2 = eval(d2, &c.opt);
        assert_int_equal(m1->classes, c.a.k);
        assert_int_equal(m2->classes, 0);
        assert_identical(m1, m2);
        calib_metrics_free(m1), calib_metrics_free(m2);
        calib_dataset_free(d1), calib_dataset_free(d2);
        free(off);
        tcase_free(&c);
    }
    json_decref(all);
}

/* ------------------------------------------------------------------ */
/* Edge cases                                                          */
/* ------------------------------------------------------------------ */

static calib_metrics *eval_top(const double *conf, const uint8_t *cor,
                               size_t n, int bins, calib_bin_rule rule)
{
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL;
    a.dtype = CALIB_F64;
    a.n = n;
    a.conf = conf;
    a.correct = cor;
    calib_dataset *ds = wrap(&a);
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bins = bins;
    o.rule = rule;
    calib_metrics *m = eval(ds, &o);
    calib_dataset_free(ds);
    return m;
}

static void test_edges(void **state)
{
    const double conf[] = {0.2, nextafter(0.2, 1.0), 0.8, 0.0, 1.0};
    const uint8_t cor[] = {1, 0, 1, 0, 1};
    calib_metrics *m = eval_top(conf, cor, 5, 15, CALIB_RULE_SKLEARN);
    assert_int_equal(m->bins[2].count, 1); /* 0.2 in (2/15, 3/15] */
    assert_int_equal(m->bins[3].count, 1); /* just above the edge */
    assert_int_equal(m->bins[11].count, 1); /* 0.8 in (11/15, 12/15] */
    assert_int_equal(m->bins[0].count, 1);
    assert_int_equal(m->bins[14].count, 1);
    assert_true(m->bins[2].upper == 0.2);
    assert_true(isnan(m->bins[5].accuracy) && m->bins[5].count == 0);
    calib_metrics_free(m);
    m = eval_top(conf, cor, 5, 10, CALIB_RULE_SKLEARN);
    assert_int_equal(m->bins[1].count, 1); /* 0.2 in (0.1, 0.2] */
    assert_int_equal(m->bins[7].count, 1); /* 0.8 in (0.7, 0.8] */
    calib_metrics_free(m);
    m = eval_top(conf, cor, 5, 10, CALIB_RULE_TORCHMETRICS);
    assert_int_equal(m->n_bins, 11);
    assert_int_equal(m->bins[10].count, 1);
    assert_true(m->bins[10].lower == 1.0 && m->bins[10].upper == 1.0);
    assert_int_equal(m->bins[2].count, 2); /* [0.2, 0.3) */
    calib_metrics_free(m);
    m = eval_top(conf, cor, 5, 10, CALIB_RULE_HOLLANCE);
    assert_int_equal(m->ece_n, 4);
    assert_int_equal(m->n, 5);
    assert_close(m->accuracy, 0.6, 1e-15); /* every row */
    calib_metrics_free(m);
}

static void test_no_rows(void **state)
{
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL;
    a.dtype = CALIB_F64;
    calib_dataset *ds = wrap(&a);
    calib_metrics *m = (calib_metrics *)&a;
    calib_error err;
    assert_int_equal(calib_evaluate(ds, NULL, &m, &err), CALIB_EDATA);
    assert_null(m);
    assert_int_equal(err.code, CALIB_EDATA);
    calib_accum *acc = NULL;
    assert_int_equal(calib_accum_new(NULL, &acc, NULL), CALIB_OK);
    assert_int_equal(calib_accum_add(acc, ds, NULL), CALIB_OK);
    assert_int_equal(calib_accum_result(acc, &m, NULL), CALIB_EDATA);
    assert_null(m);
    calib_accum_free(acc);
    calib_dataset_free(ds);
}

static void test_bad_options(void **state)
{
    const double conf[] = {0.5};
    const uint8_t cor[] = {1};
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL;
    a.n = 1;
    a.conf = conf;
    a.correct = cor;
    calib_dataset *ds = wrap(&a);
    calib_eval_options o;
    calib_eval_options_init(&o);
    assert_int_equal(o.bins, 15);
    assert_int_equal(o.rule, CALIB_RULE_SKLEARN);
    calib_metrics *m = NULL;
    o.bins = 0;
    assert_int_equal(calib_evaluate(ds, &o, &m, NULL), CALIB_EINVAL);
    o.bins = 15;
    o.scores = 2;
    assert_int_equal(calib_evaluate(ds, &o, &m, NULL), CALIB_EINVAL);
    o.scores = 1;
    o.bins = 10;
    o.binning = CALIB_BINNING_MASS;
    calib_accum *acc = (calib_accum *)&a;
    assert_int_equal(calib_accum_new(&o, &acc, NULL), CALIB_EINVAL);
    assert_null(acc);
    calib_accum *x = NULL, *y = NULL;
    o.binning = CALIB_BINNING_WIDTH;
    calib_accum_new(&o, &x, NULL);
    o.bins = 11;
    calib_accum_new(&o, &y, NULL);
    assert_int_equal(calib_accum_merge(x, y, NULL), CALIB_EINVAL);
    calib_accum_free(x);
    calib_accum_free(y);
    calib_dataset_free(ds);
}

/* Top-label and distribution rows do not mix in one accumulator. */
static void test_accum_kinds(void **state)
{
    const double conf[] = {0.5}, scores[] = {1.0, 2.0};
    const uint8_t cor[] = {1};
    const int32_t lab[] = {1};
    calib_arrays t = {0}, d = {0};
    t.kind = CALIB_TOPLABEL, t.n = 1, t.conf = conf, t.correct = cor;
    d.kind = CALIB_LOGITS, d.n = 1, d.k = 2, d.scores = scores, d.labels = lab;
    calib_dataset *dt = wrap(&t), *dd = wrap(&d);
    calib_accum *acc = NULL;
    calib_accum_new(NULL, &acc, NULL);
    assert_int_equal(calib_accum_add(acc, dt, NULL), CALIB_OK);
    assert_int_equal(calib_accum_add(acc, dd, NULL), CALIB_EINVAL);
    calib_accum_free(acc);
    calib_dataset_free(dt);
    calib_dataset_free(dd);
}

/* ------------------------------------------------------------------ */
/* Input checks of calib_dataset_wrap                                  */
/* ------------------------------------------------------------------ */

static void expect_bad(const calib_arrays *a, size_t row, size_t col,
                       const char *needle)
{
    calib_dataset *ds = (calib_dataset *)a;
    calib_error err;
    assert_int_equal(calib_dataset_wrap(a, &ds, &err), CALIB_EDATA);
    assert_null(ds);
    assert_int_equal(err.row, row);
    assert_int_equal(err.column, col);
    if (!strstr(err.message, needle))
        fail_msg("'%s' lacks '%s'", err.message, needle);
}

/* Float32 logits: the largest finite values pass the clean-block scan;
 * +inf, -inf and NaN anywhere in a long array are found at their row and
 * column. */
static void test_wrap_f32_nonfinite(void **state)
{
    enum { N = 300, K = 10 };
    static float z[N * K];
    static int32_t lab[N];
    for (size_t i = 0; i < N * K; i++)
        z[i] = (float)(i % 7) - 3.0f;
    for (size_t i = 0; i < N; i++)
        lab[i] = (int32_t)(i % K);
    z[5] = FLT_MAX;
    z[6] = -FLT_MAX;
    z[7] = FLT_TRUE_MIN;
    const calib_arrays a = {.kind = CALIB_LOGITS, .n = N, .k = K,
                            .dtype = CALIB_F32, .scores = z, .labels = lab};
    calib_dataset_free(wrap(&a));
    const float bad[3] = {INFINITY, -INFINITY, NAN};
    const char *what[3] = {"infinity", "infinity", "NaN"};
    for (int b = 0; b < 3; b++) {
        const size_t at = 157 * K + 3 + (size_t)b;
        const float keep = z[at];
        z[at] = bad[b];
        expect_bad(&a, 158, 4 + (size_t)b, what[b]);
        z[at] = keep;
    }
}

/* Float32 top-label rows: 0, -0.0 and 1 pass the clean-block scan (-0.0,
 * and the next float above 1, which is clamped, through the row check);
 * 1.01, NaN and a correct flag of 2 anywhere in a long array are found at
 * their row and column. */
static void test_wrap_f32_top_scan(void **state)
{
    enum { N = 3000 };
    static float p[N];
    static uint8_t c[N];
    for (size_t i = 0; i < N; i++) {
        p[i] = (float)(i % 101) / 100.0f;
        c[i] = (uint8_t)(i % 3 == 0);
    }
    p[10] = 0.0f;
    p[11] = -0.0f;
    p[12] = 1.0f;
    p[13] = 0x1.000002p0f;
    const calib_arrays a = {.kind = CALIB_TOPLABEL, .n = N,
                            .dtype = CALIB_F32, .conf = p, .correct = c};
    calib_dataset_free(wrap(&a));
    const float bad[2] = {1.01f, NAN};
    const char *what[2] = {"outside [0,1]", "NaN"};
    for (int b = 0; b < 2; b++) {
        p[2345] = bad[b];
        expect_bad(&a, 2346, 1, what[b]);
    }
    p[2345] = 0.5f;
    c[1777] = 2;
    expect_bad(&a, 1778, 2, "correct flag 2");
}

static void test_wrap_bad_rows(void **state)
{
    double p[12] = {0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25,
                    0.5, 0.5, 0.0, 0.0};
    int32_t lab[3] = {0, 1, 2};
    calib_arrays a = {0};
    a.kind = CALIB_PROBS;
    a.n = 3;
    a.k = 4;
    a.scores = p;
    a.labels = lab;
    calib_dataset *ok = wrap(&a);
    calib_dataset_free(ok);
    p[9] = NAN;
    expect_bad(&a, 3, 2, "NaN");
    p[9] = 0.5;
    p[5] = 1.5;
    expect_bad(&a, 2, 2, "outside [0,1]");
    p[5] = 0.35;
    expect_bad(&a, 2, 1, "sums to");
    p[5] = 0.25;
    lab[1] = 4;
    expect_bad(&a, 2, 5, "label 4");
    lab[1] = 1;
    const double w[3] = {1.0, -1.0, 2.0};
    a.weights = w;
    expect_bad(&a, 2, 0, "weight");
    a.weights = NULL;
    const uint32_t g[3] = {0, 1, 2};
    const char *names[2] = {"a", "b"};
    a.groups = g;
    a.n_groups = 2;
    a.group_names = names;
    expect_bad(&a, 3, 0, "group 2");
    a.groups = NULL;
    a.kind = CALIB_LOGITS;
    p[3] = INFINITY;
    expect_bad(&a, 1, 4, "infinity");
    p[3] = 0.4;
    const double conf[2] = {0.5, 0.7};
    const uint8_t cor[2] = {1, 2};
    calib_arrays t = {0};
    t.kind = CALIB_TOPLABEL;
    t.n = 2;
    t.conf = conf;
    t.correct = cor;
    expect_bad(&t, 2, 2, "correct flag 2");
    calib_dataset *ds = (calib_dataset *)&t;
    t.kind = (calib_kind)9;
    assert_int_equal(calib_dataset_wrap(&t, &ds, NULL), CALIB_EINVAL);
    assert_null(ds);
}

/* The first bad row is reported however many threads check. */
static void test_wrap_first_bad_row(void **state)
{
    const size_t n = 600000;
    float *conf = malloc(n * sizeof *conf);
    uint8_t *cor = calloc(n, 1);
    for (size_t i = 0; i < n; i++)
        conf[i] = (float)(i % 1000) / 1000.0f;
    conf[450000] = 1.5f;
    conf[500001] = NAN;
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL;
    a.dtype = CALIB_F32;
    a.n = n;
    a.conf = conf;
    a.correct = cor;
    expect_bad(&a, 450001, 1, "confidence 1.5");
    free(conf);
    free(cor);
}

static void test_wrap_accessors(void **state)
{
    const double conf[3] = {0.5, 0.7, 1.0005};
    const uint8_t cor[3] = {1, 0, 1};
    const uint32_t g[3] = {1, 0, 1};
    char n0[] = "zero", n1[] = "one";
    const char *names[2] = {n0, n1};
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL;
    a.n = 3;
    a.conf = conf;
    a.correct = cor;
    a.groups = g;
    a.n_groups = 2;
    a.group_names = names;
    calib_dataset *ds = wrap(&a);
    n0[0] = 'X'; /* names are copied */
    assert_int_equal(calib_dataset_kind(ds), CALIB_TOPLABEL);
    assert_int_equal(calib_dataset_rows(ds), 3);
    assert_int_equal(calib_dataset_classes(ds), 0);
    assert_int_equal(calib_dataset_group_count(ds), 2);
    assert_string_equal(calib_dataset_group_name(ds, 0), "zero");
    assert_null(calib_dataset_group_name(ds, 2));
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(st.rows_read, 3);
    assert_int_equal(st.rows_used, 3);
    assert_int_equal(st.values_clamped, 1);
    calib_metrics *m = eval(ds, NULL);
    assert_int_equal(m->n_groups, 2);
    assert_string_equal(m->group_names[0], "one"); /* first appearance */
    assert_close(m->groups[0]->mean_confidence, 0.75, 1e-15);
    calib_metrics_free(m);
    calib_dataset_free(ds);
    calib_dataset_free(NULL);
    calib_metrics_free(NULL);
    calib_accum_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Row kernel                                                          */
/* ------------------------------------------------------------------ */

static void test_row_eval_probs_zero(void **state)
{
    /* PROBS at beta != 1 read as logits log p: p = 0 stays probability 0 */
    const double p[4] = {0.7, 0.3, 0.0, 0.0};
    const int32_t lab[1] = {2};
    calib_arrays a = {0};
    a.kind = CALIB_PROBS;
    a.n = 1;
    a.k = 4;
    a.scores = p;
    a.labels = lab;
    calib_dataset *ds = wrap(&a);
    double conf, nll, brier;
    int correct, clipped;
    calib__row_eval(ds, 0, 1.0, &conf, &correct, &nll, &brier, &clipped);
    assert_true(conf == 0.7 && !correct && clipped);
    assert_close(nll, -log(1e-15), 1e-15);
    assert_close(brier, 0.49 + 0.09 + 1.0, 1e-15);
    calib__row_eval(ds, 0, 2.0, &conf, &correct, &nll, &brier, &clipped);
    assert_close(conf, 0.49 / 0.58, 1e-15);
    assert_false(isnan(brier));
    assert_true(isinf(nll) && !clipped);
    calib_dataset_free(ds);
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

static void check_keys(const json_t *o, int top, int with_read)
{
    static const char *keys[] = {
        "n", "classes", "accuracy", "mean_confidence", "ece", "mce",
        "rmsce", "nll", "nll_clipped_rows", "nll_from_probs", "brier",
        "brier_kind", "bins", "binning", "bin_rule", "n_bins", "weight",
        "ece_n"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!json_object_get(o, keys[i]))
            fail_msg("missing key %s", keys[i]);
    static const char *rk[] = {"rows_read", "rows_used", "rows_rejected",
                               "values_clamped", "rows_sum_off"};
    for (size_t i = 0; i < 5; i++)
        assert_true((json_object_get(o, rk[i]) != NULL) == with_read);
    assert_true(json_is_null(json_object_get(o, "nll")) == top);
    const json_t *b0 = json_array_get(json_object_get(o, "bins"), 0);
    const char *bk[] = {"lower", "upper", "count", "weight",
                        "mean_confidence", "accuracy"};
    for (size_t i = 0; i < 6; i++)
        assert_non_null(json_object_get(b0, bk[i]));
}

static void test_json(void **state)
{
    json_t *all = golden_load("metrics_cases.json");
    for (size_t i = 0; i < json_array_size(all); i++) {
        tcase c;
        tcase_load(&c, json_array_get(all, i));
        calib_dataset *ds = wrap(&c.a);
        calib_metrics *m = eval(ds, &c.opt);
        calib_read_stats st;
        calib_dataset_stats(ds, &st);
        char *s = NULL;
        assert_int_equal(calib_metrics_to_json(m, &st, &s, NULL), CALIB_OK);
        json_error_t e;
        json_t *o = json_loads(s, 0, &e);
        if (!o)
            fail_msg("bad JSON: %s", e.text);
        const int top = c.a.kind == CALIB_TOPLABEL;
        check_keys(o, top, 1);
        assert_true(json_real_value(json_object_get(o, "ece")) == m->ece);
        assert_string_equal(
            json_string_value(json_object_get(o, "brier_kind")),
            top ? "top-label" : "multiclass");
        const json_t *cl = json_object_get(o, "classes");
        assert_true(top ? json_is_null(cl)
                        : json_integer_value(cl) == (json_int_t)c.a.k);
        const json_t *groups = json_object_get(o, "groups");
        assert_true((groups != NULL) == (c.groups != NULL));
        const char *name;
        json_t *g;
        json_object_foreach((json_t *)groups, name, g) check_keys(g, top, 0);
        json_decref(o);
        free(s);
        calib_metrics_free(m);
        calib_dataset_free(ds);
        tcase_free(&c);
    }
    json_decref(all);
}

/* ------------------------------------------------------------------ */
/* Published numbers: DenseNet-40 on CIFAR-10 (markus93/NN_calibration) */
/* ------------------------------------------------------------------ */

/* Reads a v1.0 .npy with a 128-byte header whose descr is `descr`. */
static void *load_npy(const char *dir, const char *file, const char *descr,
                      size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/densenet40-cifar10-logits/%s", dir, file);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    char head[128];
    assert_int_equal(fread(head, 1, 128, f), 128);
    head[127] = 0;
    assert_non_null(strstr(head + 10, descr)); /* after magic and length */
    void *data = malloc(bytes);
    assert_int_equal(fread(data, 1, bytes, f), bytes);
    fclose(f);
    return data;
}

static void test_densenet_published(void **state)
{
    const char *dir = golden_shared_dir();
    if (!dir)
        skip();
    const size_t n = 10000, k = 10;
    float *z = load_npy(dir, "logits_test.npy", "'<f4'", n * k * 4);
    int64_t *y64 = load_npy(dir, "labels_test.npy", "'<i8'", n * 8);
    int32_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++)
        y[i] = (int32_t)y64[i];
    calib_arrays a = {0};
    a.kind = CALIB_LOGITS;
    a.dtype = CALIB_F32;
    a.n = n;
    a.k = k;
    a.scores = z;
    a.labels = y;
    calib_dataset *ds = wrap(&a);
    calib_metrics *m = eval(ds, NULL);
    /* Their numbers come from float32 softmax (confidences differ from
     * ours, computed in double, by up to ~2e-7), so agreement is expected
     * to about 1e-7, not to every printed digit: tolerance 1e-7 (measured
     * differences are ~1e-8), and 5e-7 for the NLL printed to 6 digits. */
    assert_true(fabs(m->accuracy - 0.9242) < 1e-12);
    assert_true(fabs(m->ece - 0.055002704373) < 1e-7);
    assert_true(fabs(m->mce - 0.333955179269) < 1e-7);
    assert_true(fabs(m->nll - 0.430059) < 5e-7); /* exact, from logits */
    assert_int_equal(m->nll_clipped_rows, 0);
    print_message("densenet: acc %.17g ece %.17g mce %.17g nll %.17g\n",
                  m->accuracy, m->ece, m->mce, m->nll);
    calib_metrics_free(m);
    calib_dataset_free(ds);
    /* Their NLL is log_loss of the softmax, clipped at 1e-15. */
    double *q = malloc(n * k * sizeof *q);
    for (size_t i = 0; i < n; i++) {
        double mx = -INFINITY, s = 0.0;
        for (size_t j = 0; j < k; j++)
            mx = fmax(mx, z[i * k + j]);
        for (size_t j = 0; j < k; j++)
            s += q[i * k + j] = exp(z[i * k + j] - mx);
        for (size_t j = 0; j < k; j++)
            q[i * k + j] /= s;
    }
    a.kind = CALIB_PROBS;
    a.dtype = CALIB_F64;
    a.scores = q;
    ds = wrap(&a);
    m = eval(ds, NULL);
    assert_true(fabs(m->nll - 0.42820705658) < 1e-7);
    assert_int_equal(m->nll_clipped_rows, 1);
    assert_true(m->nll_from_probs);
    print_message("densenet probs: nll %.17g\n", m->nll);
    calib_metrics_free(m);
    calib_dataset_free(ds);
    free(q);
    free(z);
    free(y64);
    free(y);
}

/* ------------------------------------------------------------------ */
/* The float32 kernel against the float64 path                        */
/* ------------------------------------------------------------------ */

/* Rows for the float32 kernel: a long run at exactly 1.0 (every row in
 * one bin, the largest packed sums), then edges k/15 and their float
 * neighbours, values around 2^-18 (where rows leave the integer path),
 * zeros, -0.0, values clamped from just outside [0,1], and random ones.
 * With `clean`, no -0.0 and nothing outside [0,1]: the kernel's AVX2
 * blocks take such values row by row, so only clean blocks reach them. */
static float *kernel_rows(size_t n, uint8_t *cor, int clean)
{
    float *p = malloc(n * sizeof *p);
    const float all[] = {0.0f, -0.0f, -5e-4f, 1.0005f, 1.0f, 0x1p-18f,
                         nextafterf(0x1p-18f, 0.0f), 1e-7f, 0x1p-149f,
                         0.5f, nextafterf(1.0f, 0.0f)};
    const float in01[] = {0.0f, 1.0f, 0x1p-18f, nextafterf(0x1p-18f, 0.0f),
                          nextafterf(0x1p-18f, 1.0f), 1e-7f, 0x1p-149f,
                          0.5f, nextafterf(1.0f, 0.0f)};
    const float *special = clean ? in01 : all;
    const size_t ns = clean ? sizeof in01 / sizeof *in01 : sizeof all / sizeof *all;
    srand(5);
    for (size_t i = 0; i < n; i++) {
        const size_t r = i % 64;
        const float e = (float)((double)(i % 16) / 15);
        if (i < 5000)
            p[i] = 1.0f;
        else if (r < 8)
            p[i] = special[(i / 64) % ns];
        else if (r < 16)
            p[i] = r % 3 == 0 ? e : nextafterf(e, r % 3 == 1 ? 0.0f : 1.0f);
        else
            p[i] = (float)rand() / (float)RAND_MAX;
        cor[i] = (uint8_t)(i < 5000 ? i % 4096 < 4000 : rand() & 1);
    }
    return p;
}

/* Float32 rows (and groups, when given) evaluated with `o` at 1, 2 and 3
 * threads give bit-identical metrics to the same values as float64. */
static void f32_vs_f64(const float *p32, const double *p64, const uint8_t *cor,
                       const uint32_t *groups, size_t n,
                       calib_eval_options o)
{
    static const char *const names[] = {"x", "y", "z"};
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL;
    a.n = n;
    a.correct = cor;
    a.groups = groups;
    a.n_groups = groups ? 3 : 0;
    a.group_names = groups ? names : NULL;
    a.dtype = CALIB_F32;
    a.conf = p32;
    calib_dataset *d32 = wrap(&a);
    a.dtype = CALIB_F64;
    a.conf = p64;
    calib_dataset *d64 = wrap(&a);
    o.threads = 1;
    calib_metrics *want = eval(d64, &o);
    a.dtype = CALIB_F32;
    a.conf = p32;
    calib_read_stats wrapped, seen;
    calib_dataset_stats(d32, &wrapped);
    for (int t = 1; t <= 3; t++) {
        o.threads = t;
        calib_metrics *got = eval(d32, &o);
        assert_identical(got, want);
        calib_metrics_free(got);
        /* and checked in the same pass, when it is one (no groups) */
        calib_error err;
        got = NULL;
        assert_int_equal(calib_evaluate_arrays(&a, &o, &got, &seen, &err),
                         CALIB_OK);
        assert_identical(got, want);
        assert_memory_equal(&seen, &wrapped, sizeof seen);
        calib_metrics_free(got);
    }
    calib_metrics_free(want);
    calib_dataset_free(d32);
    calib_dataset_free(d64);
}

/* width_f32.c: nonzero makes the kernel take its portable phase 1 where
 * it would take the AVX2 one (src/metrics.h). */
extern int calib__width_portable;

/* Both of the kernel's phase 1s (where the machine has AVX2) against the
 * float64 path. */
static void kernel_case(const float *p32, const double *p64,
                        const uint8_t *cor, size_t n, int m, int rule)
{
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bins = m;
    o.rule = rule;
    for (int portable = 0; portable <= 1; portable++) {
        calib__width_portable = portable;
        f32_vs_f64(p32, p64, cor, NULL, n, o);
    }
    calib__width_portable = 0;
}

/* Float32 rows give bit-identical metrics to the same values as float64
 * (whose path shares no code with the float32 kernel), for every rule, a
 * few M (257: more bins than the kernel's table), any thread count, and
 * past the kernel's flush and push boundaries. */
static void test_f32_kernel_exact(void **state)
{
    const size_t big = ((size_t)1 << 21) + 3001, n = 70001;
    for (int clean = 0; clean <= 1; clean++) {
        uint8_t *cor = malloc(big);
        float *p32 = kernel_rows(big, cor, clean);
        double *p64 = malloc(big * sizeof *p64);
        for (size_t i = 0; i < big; i++)
            p64[i] = p32[i];
        kernel_case(p32, p64, cor, big, 15, CALIB_RULE_SKLEARN);
        const int ms[] = {1, 2, 15, 37, 100, 256, 257};
        for (size_t j = 0; j < sizeof ms / sizeof *ms; j++)
            for (int r = 0; r <= CALIB_RULE_HOLLANCE; r++)
                kernel_case(p32, p64, cor, n, ms[j], r);
        free(p32);
        free(p64);
        free(cor);
    }
}

/* kernel_case for every rule, against the same values as float64. */
static void every_rule(const float *p32, const uint8_t *cor, size_t n, int m)
{
    double *p64 = malloc(n * sizeof *p64);
    for (size_t i = 0; i < n; i++)
        p64[i] = p32[i];
    for (int r = 0; r <= CALIB_RULE_HOLLANCE; r++)
        kernel_case(p32, p64, cor, n, m, r);
    free(p64);
}

/* A small Brier score whose sum p^2 needs every bit: wrong rows at small
 * p (below 1/8, where p^2 has bits under 2^-52, the kernel's sum l), right
 * rows at 1.  The score is about 1e-3, so a lost 2^-53 a row would show
 * in its last bits. */
static void test_f32_kernel_brier_bits(void **state)
{
    const size_t n = 70001;
    uint8_t *cor = malloc(n);
    float *p32 = malloc(n * sizeof *p32);
    srand(11);
    for (size_t i = 0; i < n; i++) {
        cor[i] = (uint8_t)(i % 2 == 0);
        p32[i] = cor[i] ? 1.0f
                        : 0x1p-18f + (float)rand() / (float)RAND_MAX * 0.1f;
    }
    every_rule(p32, cor, n, 15);
    free(p32);
    free(cor);
}

/* Zeros take the kernel's integer path (q = 0) while 0 < p < 2^-18 takes
 * the superaccumulator: blocks full of zeros, -0.0 and clamped negatives,
 * some with a tiny value among them, give the float64 path's bits. */
static void test_f32_kernel_zeros(void **state)
{
    const size_t n = 9000;
    uint8_t *cor = malloc(n);
    float *p32 = malloc(n * sizeof *p32);
    const float zero[] = {0.0f, -0.0f, -3e-4f, 0.0f};
    const float tiny[] = {0x1p-149f, 1e-7f, nextafterf(0x1p-18f, 0.0f)};
    for (size_t i = 0; i < n; i++) {
        if (i >= 2048 && i < 4096) /* two whole blocks of zeros */
            p32[i] = zero[i % 4];
        else if (i % 5 != 0)
            p32[i] = zero[i % 4];
        else if (i % 1500 == 5)
            p32[i] = tiny[(i / 1500) % 3];
        else
            p32[i] = (float)(i % 97) / 96.0f;
        cor[i] = (uint8_t)(i % 3 == 0);
    }
    every_rule(p32, cor, n, 15);
    every_rule(p32, cor, n, 257);
    free(p32);
    free(cor);
}

/* Probability rows whose sums sit near the 1e-6 note and 1e-3 limit:
 * wrap's block scan leaves such rows to the row-by-row checks, so the
 * count of rows_sum_off is the row-by-row rule's, in float32 and float64,
 * and the first row over 1e-3 is the error. */
/* calib_evaluate_arrays on float32 rows with one bad row (or two) fails
 * as calib_dataset_wrap does: same status, row, column and message,
 * wherever the row is (first block, a block's middle, the rows after the
 * last whole group of eight, the second thread's half), whichever phase 1
 * runs; a flag byte of any value is caught, not used as an index. */
static void test_evaluate_arrays_bad_rows(void **state)
{
    const size_t n = 2 * 65536 + 3 * 4096 + 5; /* two threads' worth */
    float *p = malloc(n * sizeof *p);
    uint8_t *cor = malloc(n);
    const float bad_p[] = {NAN, INFINITY, -INFINITY, 1.5f, -0.5f, 1.002f,
                           -0.002f, 3e38f};
    const uint8_t bad_c[] = {2, 7, 128, 255};
    const size_t rows[] = {0, 5, 1030, 6000, 80000, n - 3, n - 1};
    for (int portable = 0; portable <= 1; portable++) {
        calib__width_portable = portable;
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
            for (size_t k = 0; k < 12; k++) {
                for (size_t i = 0; i < n; i++) {
                    p[i] = (float)((i * 2654435761u) % 1000) / 999.0f;
                    cor[i] = (uint8_t)(i % 3 == 0);
                }
                if (k < 8)
                    p[rows[r]] = bad_p[k];
                else
                    cor[rows[r]] = bad_c[k - 8];
                if (k % 3 == 1 && rows[r] < n - 2) /* and a later one */
                    p[n - 2] = NAN;
                calib_arrays a = {0};
                a.kind = CALIB_TOPLABEL;
                a.dtype = CALIB_F32;
                a.n = n;
                a.conf = p;
                a.correct = cor;
                calib_dataset *ds = NULL;
                calib_error want, got;
                const int rc = calib_dataset_wrap(&a, &ds, &want);
                assert_int_equal(rc, CALIB_EDATA);
                assert_int_equal(want.row, rows[r] + 1);
                for (int t = 1; t <= 2; t++) {
                    calib_eval_options o;
                    calib_eval_options_init(&o);
                    o.threads = t;
                    calib_metrics *m = (calib_metrics *)&a; /* must be reset */
                    calib_read_stats st;
                    assert_int_equal(calib_evaluate_arrays(&a, &o, &m, &st, &got),
                                     rc);
                    assert_null(m);
                    assert_int_equal(got.row, want.row);
                    assert_int_equal(got.column, want.column);
                    assert_string_equal(got.message, want.message);
                }
            }
    }
    calib__width_portable = 0;
    free(p);
    free(cor);
}

/* calib_evaluate_arrays where it takes the two calls (float64, weights,
 * groups, equal-mass bins) gives what they give; bad options come first. */
static void test_evaluate_arrays_other(void **state)
{
    const size_t n = 20001;
    double *p = malloc(n * sizeof *p);
    float *p32 = malloc(n * sizeof *p32);
    uint8_t *cor = malloc(n);
    double *w = malloc(n * sizeof *w);
    uint32_t *g = malloc(n * sizeof *g);
    static const char *const names[] = {"a", "b"};
    for (size_t i = 0; i < n; i++) {
        p[i] = (double)((i * 40503u) % 977) / 976.0;
        p32[i] = (float)p[i];
        cor[i] = (uint8_t)((i * 7) % 5 < 3);
        w[i] = (double)(i % 4);
        g[i] = (uint32_t)(i % 2);
    }
    for (int v = 0; v < 5; v++) {
        calib_arrays a = {0};
        a.kind = CALIB_TOPLABEL;
        a.dtype = v == 0 ? CALIB_F64 : CALIB_F32;
        a.conf = v == 0 ? (const void *)p : (const void *)p32;
        a.n = n;
        a.correct = cor;
        a.weights = v == 1 ? w : NULL;
        a.groups = v == 2 ? g : NULL;
        a.n_groups = v == 2 ? 2 : 0;
        a.group_names = v == 2 ? names : NULL;
        calib_eval_options o;
        calib_eval_options_init(&o);
        o.binning = v == 3 ? CALIB_BINNING_MASS : CALIB_BINNING_WIDTH;
        o.threads = 2;
        calib_dataset *ds = wrap(&a);
        calib_metrics *want = eval(ds, &o), *got = NULL;
        calib_error err;
        calib_read_stats st, wst;
        calib_dataset_stats(ds, &wst);
        assert_int_equal(calib_evaluate_arrays(&a, &o, &got, &st, &err), CALIB_OK);
        assert_identical(got, want);
        assert_memory_equal(&st, &wst, sizeof st);
        calib_metrics_free(got);
        calib_metrics_free(want);
        calib_dataset_free(ds);
        if (v == 4) { /* bad options, before the bad row */
            p32[3] = NAN;
            o.bins = 0;
            got = NULL;
            assert_int_equal(calib_evaluate_arrays(&a, &o, &got, NULL, &err),
                             CALIB_EINVAL);
            assert_int_equal(err.row, 0);
            assert_null(got);
        }
    }
    free(p);
    free(p32);
    free(cor);
    free(w);
    free(g);
}

/* want with NLL and Brier dropped, as scores = 0 promises: the same
 * metrics otherwise, bit for bit (groups too). */
static void assert_scoreless(const calib_metrics *got, calib_metrics *want)
{
    const double nll = want->nll, brier = want->brier;
    const size_t clipped = want->nll_clipped_rows;
    assert_true(isnan(got->nll) && isnan(got->brier));
    assert_int_equal(got->nll_clipped_rows, 0);
    for (int e = 0; e < 2; e++)
        assert_true(isnan(got->ci[CALIB_M_NLL][e]) &&
                    isnan(got->ci[CALIB_M_BRIER][e]));
    want->nll = want->brier = NAN;
    want->nll_clipped_rows = 0;
    assert_int_equal(got->n_groups, want->n_groups);
    for (size_t g = 0; g < got->n_groups; g++)
        assert_true(isnan(got->groups[g]->brier));
    for (int id = 0; id < CALIB_M_COUNT; id++) {
        if (!same(calib_metric_value(got, (calib_metric_id)id),
                  calib_metric_value(want, (calib_metric_id)id)))
            fail_msg("metric %s", calib_metric_name((calib_metric_id)id));
        if (id != CALIB_M_NLL && id != CALIB_M_BRIER)
            for (int e = 0; e < 2; e++)
                assert_true(same(got->ci[id][e], want->ci[id][e]));
    }
    if (!want->n_groups)
        assert_identical(got, want);
    want->nll = nll;
    want->brier = brier;
    want->nll_clipped_rows = clipped;
}

/* scores = 0: NLL and Brier NaN, every other metric as with scores = 1,
 * for the float32 kernel (which then skips sum p^2: both forms, every
 * rule, clean and unclean blocks, rows in (0, 2^-18), 1-2 threads, both
 * entry points), float64 rows, groups, equal-mass bins and intervals; an
 * accumulator made with scores = 0 still keeps every sum (its rows merged
 * into one with scores = 1 give the Brier score of all of them). */
static void test_no_scores(void **state)
{
    const size_t n = 150001;
    uint8_t *cor = malloc(n);
    double *p64 = malloc(n * sizeof *p64);
    uint32_t *g = malloc(n * sizeof *g);
    static const char *const names[] = {"a", "b"};
    for (int clean = 0; clean <= 1; clean++) {
        float *p32 = kernel_rows(n, cor, clean);
        for (size_t i = 0; i < n; i++) {
            p64[i] = p32[i];
            g[i] = (uint32_t)(i % 7 == 0);
        }
        for (int v = 0; v < 12; v++) {
            const int rule = v % 5, portable = v >= 5 && v < 10;
            calib_arrays a = {0};
            a.kind = CALIB_TOPLABEL;
            a.dtype = v == 10 ? CALIB_F64 : CALIB_F32;
            a.conf = v == 10 ? (const void *)p64 : (const void *)p32;
            a.n = n;
            a.correct = cor;
            a.groups = v == 11 ? g : NULL;
            a.n_groups = v == 11 ? 2 : 0;
            a.group_names = v == 11 ? names : NULL;
            calib_eval_options o;
            calib_eval_options_init(&o);
            assert_int_equal(o.scores, 1);
            o.rule = (calib_bin_rule)rule;
            o.threads = 1 + v % 2;
            if (v == 9)
                o.binning = CALIB_BINNING_MASS;
            calib__width_portable = portable;
            calib_dataset *ds = wrap(&a);
            calib_metrics *want = eval(ds, &o), *got;
            assert_false(isnan(want->brier));
            o.scores = 0;
            got = eval(ds, &o);
            assert_scoreless(got, want);
            calib_metrics_free(got);
            if (clean && !a.groups) { /* the one-pass entry point */
                calib_error err;
                got = NULL;
                assert_int_equal(calib_evaluate_arrays(&a, &o, &got, NULL, &err),
                                 CALIB_OK);
                assert_scoreless(got, want);
                calib_metrics_free(got);
            }
            calib_metrics_free(want);
            calib_dataset_free(ds);
        }
        calib__width_portable = 0;
        free(p32);
    }

    /* intervals, on fewer rows */
    float *p32 = kernel_rows(20000, cor, 1);
    calib_arrays a = {0};
    a.kind = CALIB_TOPLABEL;
    a.dtype = CALIB_F32;
    a.conf = p32;
    a.n = 20000;
    a.correct = cor;
    calib_dataset *ds = wrap(&a);
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bootstrap = 30;
    o.extra = 0;
    calib_metrics *want = eval(ds, &o), *got;
    assert_false(isnan(want->ci[CALIB_M_BRIER][0]));
    o.scores = 0;
    got = eval(ds, &o);
    assert_scoreless(got, want);
    calib_metrics_free(got);
    calib_metrics_free(want);

    /* accumulators keep the sums */
    o.bootstrap = 0;
    o.threads = 2;
    calib_accum *x = NULL, *y = NULL;
    assert_int_equal(calib_accum_new(&o, &x, NULL), CALIB_OK);
    assert_int_equal(calib_accum_add(x, ds, NULL), CALIB_OK);
    assert_int_equal(calib_accum_result(x, &got, NULL), CALIB_OK);
    assert_true(isnan(got->brier));
    calib_metrics_free(got);
    o.scores = 1;
    assert_int_equal(calib_accum_new(&o, &y, NULL), CALIB_OK);
    assert_int_equal(calib_accum_merge(y, x, NULL), CALIB_OK);
    assert_int_equal(calib_accum_result(y, &got, NULL), CALIB_OK);
    want = eval(ds, &o);
    assert_identical(got, want);
    calib_metrics_free(got);
    calib_metrics_free(want);
    calib_accum_free(x);
    calib_accum_free(y);
    calib_dataset_free(ds);
    free(p32);
    free(cor);
    free(p64);
    free(g);
}

static void test_wrap_probs_sums(void **state)
{
    const size_t n = 5003, k = 10;
    double *d = malloc(n * k * sizeof *d);
    float *f = malloc(n * k * sizeof *f);
    int32_t *y = malloc(n * sizeof *y);
    const double offs[] = {0.0, 9.9e-7, 1.01e-6, -1.01e-6, 3e-7, 5e-4};
    for (int f32 = 0; f32 <= 1; f32++) {
        size_t want = 0;
        for (size_t i = 0; i < n; i++) {
            double s = 0.0;
            for (size_t j = 0; j < k; j++)
                d[i * k + j] = 0.1;
            if (i % 97 == 0)
                d[i * k + i % k] += offs[(i / 97) % 6];
            for (size_t j = 0; j < k; j++) {
                f[i * k + j] = (float)d[i * k + j];
                s += f32 ? (double)f[i * k + j] : d[i * k + j];
            }
            want += fabs(s - 1.0) > 1e-6;
            y[i] = (int32_t)(i % k);
        }
        calib_arrays a = {0};
        a.kind = CALIB_PROBS;
        a.n = n;
        a.k = k;
        a.dtype = f32 ? CALIB_F32 : CALIB_F64;
        a.scores = f32 ? (const void *)f : (const void *)d;
        a.labels = y;
        calib_dataset *ds = wrap(&a);
        calib_read_stats st;
        calib_dataset_stats(ds, &st);
        assert_int_equal(st.rows_sum_off, want);
        assert_true(want > 0);
        calib_dataset_free(ds);
        /* row 3001 sums to 1.0011: the error, whatever is clean around it */
        if (f32)
            f[3000 * k] += 0.0011f;
        else
            d[3000 * k] += 0.0011;
        calib_error err = {0};
        assert_int_equal(calib_dataset_wrap(&a, &ds, &err), CALIB_EDATA);
        assert_int_equal(err.row, 3001);
        assert_int_equal(err.column, 1);
    }
    free(d);
    free(f);
    free(y);
}

/* Equal-mass bins: float32 rows (width_f32.c's kernel after edges found
 * on the bits) give bit-identical metrics to the same values as float64
 * (projection, select and superaccumulators), with and without groups,
 * for any thread count and M; with a -0.0 among them (whose sign an edge
 * may keep) the float32 rows take the float64 path. */
static void mass_case(const float *p32, const double *p64, const uint8_t *cor,
                      const uint32_t *groups, size_t n, int m)
{
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bins = m;
    o.binning = CALIB_BINNING_MASS;
    for (int portable = 0; portable <= 1; portable++) {
        calib__width_portable = portable;
        f32_vs_f64(p32, p64, cor, groups, n, o);
    }
    calib__width_portable = 0;
}

static void test_f32_mass_exact(void **state)
{
    const size_t big = ((size_t)1 << 21) + 3001, n = 70001;
    uint8_t *cor = malloc(big);
    float *p32 = kernel_rows(big, cor, 0);
    double *p64 = malloc(big * sizeof *p64);
    uint32_t *g = malloc(big * sizeof *g);
    for (int neg_zero = 1; neg_zero >= 0; neg_zero--) {
        for (size_t i = 0; i < big; i++) {
            if (!neg_zero && p32[i] == 0.0f)
                p32[i] = 0.0f; /* -0.0 becomes +0.0 */
            p64[i] = p32[i];
            g[i] = (uint32_t)((i * 7) % 3);
        }
        mass_case(p32, p64, cor, NULL, big, 15);
        mass_case(p32, p64, cor, g, big, 15);
        const int ms[] = {1, 2, 15, 40, 256, 257};
        for (size_t j = 0; j < sizeof ms / sizeof *ms; j++)
            mass_case(p32, p64, cor, j % 2 ? g : NULL, n, ms[j]);
    }
    /* edges and their neighbours in blocks the AVX2 phase 1 takes */
    free(p32);
    p32 = kernel_rows(n, cor, 1);
    for (size_t i = 0; i < n; i++)
        p64[i] = p32[i];
    const int ms2[] = {2, 15, 40};
    for (size_t j = 0; j < sizeof ms2 / sizeof *ms2; j++)
        mass_case(p32, p64, cor, NULL, n, ms2[j]);
    /* every row within one 2^-10 bucket, most at a few values */
    for (size_t i = 0; i < n; i++) {
        p32[i] = 0.99991f + (float)(i * 2654435761u % 300) * 6e-8f;
        p64[i] = p32[i];
    }
    mass_case(p32, p64, cor, NULL, n, 15);
    mass_case(p32, p64, cor, g, n, 15);
    free(p32);
    free(p64);
    free(cor);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_thread_invariance),
        cmocka_unit_test(test_shard_invariance),
        cmocka_unit_test(test_groups_alone),
        cmocka_unit_test(test_ragged_equals_dense),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_no_rows),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_accum_kinds),
        cmocka_unit_test(test_wrap_bad_rows),
        cmocka_unit_test(test_wrap_f32_nonfinite),
        cmocka_unit_test(test_wrap_f32_top_scan),
        cmocka_unit_test(test_wrap_first_bad_row),
        cmocka_unit_test(test_wrap_accessors),
        cmocka_unit_test(test_row_eval_probs_zero),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_densenet_published),
        cmocka_unit_test(test_f32_kernel_exact),
        cmocka_unit_test(test_f32_kernel_zeros),
        cmocka_unit_test(test_f32_kernel_brier_bits),
        cmocka_unit_test(test_f32_mass_exact),
        cmocka_unit_test(test_wrap_probs_sums),
        cmocka_unit_test(test_evaluate_arrays_bad_rows),
        cmocka_unit_test(test_evaluate_arrays_other),
        cmocka_unit_test(test_no_scores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
