/* test_accum_json.c — partial states: calib_accum_to_json/from_json.
 *
 * Exactness: a dataset split at random into 1..7 shards, each accumulated,
 * written, read back and merged in a random order, gives bit for bit what
 * one accumulator over every row gives (every field of calib_metrics, the
 * bins and the groups).  Round trips of each kind of state (top-label
 * float32 and float64, logits, probabilities, weights, groups, every bin
 * rule) write the same text again.  Corrupted states are refused with
 * CALIB_EDATA naming the JSON path; states of different settings refuse to
 * merge.  The data are generated here: what is tested is that nothing
 * changes through a state, not the metrics themselves (test_metrics.c
 * holds the golden numbers).
 */
#include "golden.h"

#include <stdint.h>

/* ------------------------------------------------------------------ */
/* Generated data                                                      */
/* ------------------------------------------------------------------ */

typedef struct spec {
    calib_kind kind;
    calib_dtype dtype;
    int weighted, grouped;
    size_t n, k;
    calib_bin_rule rule;
    int bins;
} spec;

/* A dataset's arrays, owned here. */
typedef struct data {
    calib_arrays a;
    void *values;
    uint8_t *correct;
    int32_t *labels;
    double *weights;
    uint32_t *groups;
} data;

static const char *const group_names[] = {"algebra", "biology", "chem\"istry",
                                          "drama", "économie"};
enum { N_GROUPS = 5 };

static uint64_t rng_state = 88172645463325252u;

static uint64_t next_u64(void)
{
    rng_state ^= rng_state << 13; /* xorshift64 (Marsaglia 2003) */
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double uniform(void)
{
    return (double)(next_u64() >> 11) * 0x1p-53;
}

static size_t below(size_t n)
{
    return (size_t)(next_u64() % n);
}

static void put_value(data *d, size_t j, double v)
{
    if (d->a.dtype == CALIB_F32)
        ((float *)d->values)[j] = (float)v;
    else
        ((double *)d->values)[j] = v;
}

/* Confidences with edges, 0 and 1 among them. */
static double confidence(int bins)
{
    const double u = uniform();
    if (u < 0.05)
        return 0.0;
    if (u < 0.10)
        return 1.0;
    if (u < 0.20)
        return (double)below((size_t)bins + 1) / bins;
    return uniform();
}

static void fill_row(data *d, const spec *s, size_t i)
{
    if (s->kind == CALIB_TOPLABEL) {
        const double p = confidence(s->bins);
        put_value(d, i, p);
        d->correct[i] = uniform() < p * p;
        return;
    }
    d->labels[i] = (int32_t)below(s->k);
    double sum = 0.0, q[16];
    for (size_t c = 0; c < s->k; c++)
        q[c] = s->kind == CALIB_LOGITS ? 3.0 * (uniform() - 0.5)
                                       : uniform() * uniform();
    if (s->kind == CALIB_PROBS && uniform() < 0.05)
        q[d->labels[i]] = 0.0; /* NLL clipped at 1e-15 */
    for (size_t c = 0; c < s->k; c++)
        sum += q[c];
    for (size_t c = 0; c < s->k; c++)
        put_value(d, i * s->k + c, s->kind == CALIB_PROBS ? q[c] / sum : q[c]);
}

static void data_alloc(data *d, const spec *s, size_t n)
{
    memset(d, 0, sizeof *d);
    const size_t esz = s->dtype == CALIB_F32 ? 4 : 8;
    const size_t nv = s->kind == CALIB_TOPLABEL ? n : n * s->k;
    d->a.kind = s->kind;
    d->a.dtype = s->dtype;
    d->a.n = n;
    d->a.k = s->kind == CALIB_TOPLABEL ? 0 : s->k;
    d->values = calloc(nv + 1, esz);
    if (s->kind == CALIB_TOPLABEL) {
        d->correct = calloc(n + 1, 1);
        d->a.conf = d->values;
        d->a.correct = d->correct;
    } else {
        d->labels = calloc(n + 1, sizeof *d->labels);
        d->a.scores = d->values;
        d->a.labels = d->labels;
    }
    if (s->weighted)
        d->a.weights = d->weights = calloc(n + 1, sizeof *d->weights);
    if (s->grouped) {
        d->a.groups = d->groups = calloc(n + 1, sizeof *d->groups);
        d->a.n_groups = N_GROUPS;
        d->a.group_names = group_names;
    }
}

static void make_data(data *d, const spec *s)
{
    data_alloc(d, s, s->n);
    for (size_t i = 0; i < s->n; i++) {
        fill_row(d, s, i);
        if (d->weights)
            d->weights[i] = uniform() < 0.1 ? 0.0 : 5.0 * uniform();
        if (d->groups)
            d->groups[i] = (uint32_t)below(N_GROUPS);
    }
}

/* The rows of d whose shard[i] == which, in order. */
static void gather(data *out, const data *d, const spec *s,
                   const size_t *shard, size_t which)
{
    size_t n = 0;
    for (size_t i = 0; i < d->a.n; i++)
        n += shard[i] == which;
    data_alloc(out, s, n);
    const size_t esz = s->dtype == CALIB_F32 ? 4 : 8;
    const size_t w = s->kind == CALIB_TOPLABEL ? 1 : s->k;
    size_t j = 0;
    for (size_t i = 0; i < d->a.n; i++) {
        if (shard[i] != which)
            continue;
        memcpy((char *)out->values + j * w * esz,
               (const char *)d->values + i * w * esz, w * esz);
        if (d->correct)
            out->correct[j] = d->correct[i];
        if (d->labels)
            out->labels[j] = d->labels[i];
        if (d->weights)
            out->weights[j] = d->weights[i];
        if (d->groups)
            out->groups[j] = d->groups[i];
        j++;
    }
}

static void data_free(data *d)
{
    free(d->values);
    free(d->correct);
    free(d->labels);
    free(d->weights);
    free(d->groups);
}

static calib_dataset *wrap(const data *d)
{
    calib_dataset *ds = NULL;
    calib_error err = {0};
    if (calib_dataset_wrap(&d->a, &ds, &err) != CALIB_OK)
        fail_msg("wrap: %s", err.message);
    return ds;
}

/* ------------------------------------------------------------------ */
/* Comparing metrics bit for bit                                       */
/* ------------------------------------------------------------------ */

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static calib_accum *new_accum(const spec *s, int threads)
{
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.bins = s->bins;
    o.rule = s->rule;
    o.threads = threads;
    calib_accum *a = NULL;
    assert_int_equal(calib_accum_new(&o, &a, NULL), CALIB_OK);
    return a;
}

static char *to_json(const calib_accum *a, const calib_read_stats *st)
{
    char *json = NULL;
    calib_error err = {0};
    if (calib_accum_to_json(a, st, &json, &err) != CALIB_OK)
        fail_msg("to_json: %s", err.message);
    return json;
}

static calib_accum *from_json(const char *json, calib_read_stats *st)
{
    calib_accum *a = NULL;
    calib_error err = {0};
    if (calib_accum_from_json(json, strlen(json), &a, st, &err) != CALIB_OK)
        fail_msg("from_json: %s", err.message);
    return a;
}

static calib_metrics *result(const calib_accum *a)
{
    calib_metrics *m = NULL;
    calib_error err = {0};
    if (calib_accum_result(a, &m, &err) != CALIB_OK)
        fail_msg("result: %s", err.message);
    return m;
}

static spec random_spec(int i)
{
    static const calib_kind kinds[] = {CALIB_TOPLABEL, CALIB_LOGITS,
                                       CALIB_PROBS};
    spec s = {kinds[i % 3], below(2) ? CALIB_F32 : CALIB_F64,
              (int)below(2), (int)below(2), 1 + below(3000), 2 + below(9),
              (calib_bin_rule)below(5), 1 + (int)below(30)};
    return s;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

/* Shards -> states -> text -> states -> merged in a random order equals
 * one accumulator over every row, bit for bit. */
static void test_shards_exact(void **state)
{
    for (int it = 0; it < 60; it++) {
        const spec s = random_spec(it);
        data d;
        make_data(&d, &s);
        calib_accum *whole = new_accum(&s, 1 + (int)below(4));
        calib_dataset *ds = wrap(&d);
        assert_int_equal(calib_accum_add(whole, ds, NULL), CALIB_OK);
        calib_dataset_free(ds);

        const size_t n_shards = 1 + below(7);
        size_t *shard = malloc(d.a.n * sizeof *shard), order[7];
        for (size_t i = 0; i < d.a.n; i++)
            shard[i] = below(n_shards);
        for (size_t j = 0; j < n_shards; j++)
            order[j] = j;
        for (size_t j = n_shards; j > 1; j--) { /* Fisher-Yates */
            const size_t r = below(j), t = order[j - 1];
            order[j - 1] = order[r];
            order[r] = t;
        }
        calib_accum *merged = new_accum(&s, 1);
        for (size_t j = 0; j < n_shards; j++) {
            data part;
            gather(&part, &d, &s, shard, order[j]);
            calib_accum *a = new_accum(&s, 1 + (int)below(4));
            ds = wrap(&part);
            assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
            char *json = to_json(a, NULL);
            calib_accum *back = from_json(json, NULL);
            assert_int_equal(calib_accum_merge(merged, back, NULL), CALIB_OK);
            calib_accum_free(back);
            calib_accum_free(a);
            free(json);
            calib_dataset_free(ds);
            data_free(&part);
        }
        calib_metrics *m1 = result(whole), *m2 = result(merged);
        assert_same_metrics(m1, m2);
        /* and the merged state writes the text of the whole one, up to the
         * order of its groups */
        if (!s.grouped) {
            char *j1 = to_json(whole, NULL), *j2 = to_json(merged, NULL);
            assert_string_equal(j1, j2);
            free(j1);
            free(j2);
        }
        calib_metrics_free(m1);
        calib_metrics_free(m2);
        calib_accum_free(whole);
        calib_accum_free(merged);
        free(shard);
        data_free(&d);
    }
}

/* Written, read, written again: the same text, and the same metrics. */
static void round_trip(const spec *s)
{
    data d;
    make_data(&d, s);
    calib_accum *a = new_accum(s, 0);
    calib_dataset *ds = wrap(&d);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    const calib_read_stats st = {s->n + 3, s->n, 3, 4, 5, 6, 7, 8};
    char *json = to_json(a, &st);
    calib_read_stats back_st;
    memset(&back_st, 0xff, sizeof back_st);
    calib_accum *b = from_json(json, &back_st);
    assert_memory_equal(&st, &back_st, sizeof st);
    char *again = to_json(b, &st);
    assert_string_equal(json, again);
    calib_metrics *m1 = result(a), *m2 = result(b);
    assert_same_metrics(m1, m2);
    calib_metrics_free(m1);
    calib_metrics_free(m2);
    free(json);
    free(again);
    calib_accum_free(a);
    calib_accum_free(b);
    calib_dataset_free(ds);
    data_free(&d);
}

static void test_round_trips(void **state)
{
    for (int rule = 0; rule < 5; rule++) {
        const spec s[] = {
            {CALIB_TOPLABEL, CALIB_F32, 0, 0, 500, 0, rule, 15},
            {CALIB_TOPLABEL, CALIB_F64, 1, 1, 500, 0, rule, 10},
            {CALIB_LOGITS, CALIB_F64, 0, 1, 400, 4, rule, 15},
            {CALIB_LOGITS, CALIB_F32, 1, 0, 400, 3, rule, 7},
            {CALIB_PROBS, CALIB_F64, 1, 1, 400, 5, rule, 20},
        };
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
            round_trip(&s[i]);
    }
}

/* An accumulator with no rows is a valid state; it reads back empty,
 * merges as nothing, and has no result. */
static void test_empty_state(void **state)
{
    const spec s = {CALIB_TOPLABEL, CALIB_F64, 0, 0, 0, 0, 0, 15};
    calib_accum *a = new_accum(&s, 0);
    char *json = to_json(a, NULL);
    assert_non_null(strstr(json, "\"kind\":null"));
    calib_read_stats st;
    memset(&st, 0xff, sizeof st);
    calib_accum *b = from_json(json, &st);
    assert_int_equal(st.rows_read, 0);
    calib_metrics *m = NULL;
    assert_int_equal(calib_accum_result(b, &m, NULL), CALIB_EDATA);
    assert_null(m);
    /* a dataset of zero rows records its kind */
    data d;
    data_alloc(&d, &s, 0);
    calib_dataset *ds = wrap(&d);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    char *json2 = to_json(a, NULL);
    assert_non_null(strstr(json2, "\"kind\":\"top-label\""));
    calib_accum_free(b);
    b = from_json(json2, NULL);
    assert_int_equal(calib_accum_merge(a, b, NULL), CALIB_OK);
    calib_dataset_free(ds);
    data_free(&d);
    calib_accum_free(a);
    calib_accum_free(b);
    free(json);
    free(json2);
}

/* The superaccumulator's side sum (values >= 2^80) reads back too. */
static void test_big_values(void **state)
{
    spec s = {CALIB_TOPLABEL, CALIB_F64, 1, 0, 50, 0, 0, 15};
    data d;
    make_data(&d, &s);
    d.weights[3] = 1e30;
    calib_accum *a = new_accum(&s, 1);
    calib_dataset *ds = wrap(&d);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    char *json = to_json(a, NULL);
    calib_accum *b = from_json(json, NULL);
    char *again = to_json(b, NULL);
    assert_string_equal(json, again);
    calib_metrics *m1 = result(a), *m2 = result(b);
    assert_same_metrics(m1, m2);
    calib_metrics_free(m1);
    calib_metrics_free(m2);
    free(json);
    free(again);
    calib_accum_free(a);
    calib_accum_free(b);
    calib_dataset_free(ds);
    data_free(&d);
}

/* ---- corrupted states ---------------------------------------------- */

typedef void (*mutation)(json_t *root);

static json_t *cell0(json_t *root, const char *pop)
{
    json_t *cells = json_object_get(json_object_get(root, pop), "cells");
    for (size_t i = 0; i < json_array_size(cells); i++)
        if (json_is_object(json_array_get(cells, i)))
            return json_array_get(cells, i);
    return NULL;
}

static void m_version(json_t *r)
{
    json_object_set_new(r, "version", json_integer(3));
}
static void m_format(json_t *r)
{
    json_object_set_new(r, "format", json_string("calib-calibrator"));
}
static void m_truncated_digits(json_t *r)
{
    json_array_remove(json_object_get(cell0(r, "overall"), "conf"), 7);
}
static void m_negative_count(json_t *r)
{
    json_object_set_new(cell0(r, "overall"), "count", json_integer(-1));
}
static void m_cells_length(json_t *r)
{
    json_t *cells = json_object_get(json_object_get(r, "overall"), "cells");
    json_array_remove(cells, json_array_size(cells) - 1);
}
static void m_bins(json_t *r)
{
    json_object_set_new(r, "bins", json_integer(20));
}
static void m_digit_range(json_t *r)
{
    json_array_set_new(json_object_get(cell0(r, "overall"), "conf"), 2,
                       json_integer((json_int_t)1 << 32));
}
static void m_unknown_member(json_t *r)
{
    json_object_set_new(json_object_get(r, "overall"), "extra",
                        json_integer(1));
}
static void m_u128(json_t *r)
{
    json_object_set_new(json_object_get(r, "overall"), "p2_fx",
                        json_string("12x"));
}
static void m_torch_cell(json_t *r)
{
    json_t *cells = json_object_get(json_object_get(r, "overall"), "cells");
    json_array_set(cells, 15, cell0(r, "overall"));
}
static void m_duplicate_group(json_t *r)
{
    json_t *g = json_object_get(r, "groups");
    json_array_append_new(g, json_deep_copy(json_array_get(g, 0)));
}
static void m_mass(json_t *r)
{
    json_object_set_new(r, "binning", json_string("mass"));
}
static void m_plain(json_t *r)
{
    json_t *c = cell0(r, "overall");
    const json_int_t plain = json_integer_value(json_object_get(c, "plain"));
    json_object_set_new(c, "plain_hits", json_integer(plain + 1));
}
static void m_read(json_t *r)
{
    json_object_set_new(json_object_get(r, "read"), "rows_read",
                        json_integer(1));
}
static void m_classes(json_t *r)
{
    json_object_set_new(r, "classes", json_integer(3));
}
static void m_group_count(json_t *r)
{
    json_t *g = json_array_get(json_object_get(r, "groups"), 1);
    json_t *cells = json_object_get(g, "cells");
    json_t *c = NULL;
    for (size_t i = 0; !c && i < json_array_size(cells); i++)
        if (json_is_object(json_array_get(cells, i)))
            c = json_array_get(cells, i);
    json_object_set_new(c, "count", json_string("7"));
}
/* Sums that no rows can give (found by fuzz/fuzz_partial.c): more hits
 * than weight, confidences beyond the cell's upper edge, an NLL sum for
 * top-label rows. */
static void m_hits(json_t *r)
{
    json_array_set_new(json_object_get(cell0(r, "overall"), "hit"), 5,
                       json_integer(100000));
}
static void m_conf_sum(json_t *r)
{
    json_array_set_new(json_object_get(cell0(r, "overall"), "conf"), 6,
                       json_integer(1));
}
static void m_top_nll(json_t *r)
{
    json_array_set_new(json_object_get(json_object_get(r, "overall"), "nll"),
                       5, json_integer(1));
}

static void test_corrupted(void **state)
{
    static const struct {
        mutation f;
        const char *path;
    } cases[] = {
        {m_version, "version: version 3"},
        {m_format, "format:"},
        {m_truncated_digits, ".conf: expected an array of 8"},
        {m_negative_count, ".count: -1 is negative"},
        {m_cells_length, "overall.cells: expected an array of 17 cells"},
        {m_bins, "overall.cells: expected an array of 22 cells"},
        {m_digit_range, ".conf: digit 2"},
        {m_unknown_member, "overall: unknown member \"extra\""},
        {m_u128, "overall.p2_fx:"},
        {m_torch_cell, "overall.cells[15]: rows in a cell"},
        {m_duplicate_group, "groups[5]: group \""},
        {m_mass, "binning: equal-mass"},
        {m_plain, "counts out of order"},
        {m_read, "read: rows_read 1"},
        {m_classes, "classes:"},
        {m_group_count, "groups[1].cells["},
        {m_hits, "overall: cells["},
        {m_conf_sum, "confidences sum to"},
        {m_top_nll, "overall: the NLL sum 1 is not 0"},
    };
    spec s = {CALIB_TOPLABEL, CALIB_F64, 0, 1, 300, 0, 0, 15};
    rng_state = 7;
    data d;
    make_data(&d, &s);
    calib_accum *a = new_accum(&s, 1);
    calib_dataset *ds = wrap(&d);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    const calib_read_stats st = {300, 300, 0, 0, 0, 0, 0, 0};
    char *json = to_json(a, &st);
    assert_int_equal(calib_accum_to_json(NULL, NULL, NULL, NULL), CALIB_EINVAL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *root = json_loads(json, 0, NULL);
        assert_non_null(root);
        cases[i].f(root);
        char *bad = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        calib_accum *b = (calib_accum *)&b;
        calib_error err = {0};
        assert_int_equal(
            calib_accum_from_json(bad, strlen(bad), &b, NULL, &err),
            CALIB_EDATA);
        assert_null(b);
        assert_int_equal(err.code, CALIB_EDATA);
        if (!strstr(err.message, cases[i].path))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.message,
                     cases[i].path);
        free(bad);
    }
    /* cut short, and not JSON at all: the parser's position */
    for (size_t cut = 1; cut < strlen(json); cut += strlen(json) / 7) {
        calib_accum *b = NULL;
        calib_error err = {0};
        assert_int_equal(calib_accum_from_json(json, cut, &b, NULL, &err),
                         CALIB_EDATA);
        assert_null(b);
        assert_true(err.column > 0 || err.line > 0);
    }
    free(json);
    calib_accum_free(a);
    calib_dataset_free(ds);
    data_free(&d);
}

/* States of different settings refuse to merge, saying which differ. */
static void test_merge_refusals(void **state)
{
    spec s15 = {CALIB_TOPLABEL, CALIB_F64, 0, 0, 100, 0, 0, 15};
    spec s20 = s15, netcal = s15, dist = s15;
    s20.bins = 20;
    netcal.rule = CALIB_RULE_NETCAL;
    dist.kind = CALIB_LOGITS;
    dist.k = 3;
    const spec *other[] = {&s20, &netcal, &dist};
    const char *why[] = {"cannot merge 20 bins into 15 bins",
                         "cannot merge bin rule netcal into bin rule sklearn",
                         "cannot mix top-label and distribution rows"};
    data d;
    make_data(&d, &s15);
    calib_dataset *ds = wrap(&d);
    calib_accum *a = new_accum(&s15, 0);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    for (int i = 0; i < 3; i++) {
        data e;
        make_data(&e, other[i]);
        calib_dataset *es = wrap(&e);
        calib_accum *b = new_accum(other[i], 0);
        assert_int_equal(calib_accum_add(b, es, NULL), CALIB_OK);
        char *json = to_json(b, NULL);
        calib_accum *back = from_json(json, NULL);
        calib_error err = {0};
        assert_int_equal(calib_accum_merge(a, back, &err), CALIB_EINVAL);
        assert_string_equal(err.message, why[i]);
        free(json);
        calib_accum_free(back);
        calib_accum_free(b);
        calib_dataset_free(es);
        data_free(&e);
    }
    calib_accum_free(a);
    calib_dataset_free(ds);
    data_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shards_exact),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_empty_state),
        cmocka_unit_test(test_big_values),
        cmocka_unit_test(test_corrupted),
        cmocka_unit_test(test_merge_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
