/* test_read_jsonl.c — lm-eval samples and OpenAI/vLLM logprobs, the
 * group_name option of every format, and calib_dataset_concat, against
 * the fixtures and numpy values of tests/golden/gen_jsonl.py. */
#include "golden.h"
#include "internal.h"

static json_t *gold;

/* $CALIB_GOLDEN/<sub>/name, in a rotating static buffer. */
static const char *fx_in(const char *sub, const char *name)
{
    static char buf[8][1024];
    static int i;
    const char *dir = getenv("CALIB_GOLDEN");
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s/%s", dir ? dir : "build/golden",
             sub, name);
    return buf[i];
}

static const char *fx(const char *name) { return fx_in("jsonl", name); }

#define ARC "samples_arc_easy_2024-06-01T10-20-30.123456.jsonl"

static calib_read_options opts(void)
{
    calib_read_options o;
    calib_read_options_init(&o);
    return o;
}

/* Checks every ragged row of ds against gold[key].scores / labels. */
static void assert_rows(const calib_dataset *ds, const char *key)
{
    const json_t *g = json_object_get(gold, key);
    const json_t *scores = json_object_get(g, "scores");
    size_t n;
    int64_t *labels = golden_ints(g, "labels", &n);
    assert_int_equal(calib_dataset_kind(ds), CALIB_LOGITS);
    assert_int_equal(calib_dataset_rows(ds), n);
    assert_int_equal(calib_dataset_classes(ds), 0);
    assert_non_null(ds->offsets);
    for (size_t i = 0; i < n; i++) {
        const json_t *row = json_array_get(scores, i);
        assert_int_equal(calib__row_len(ds, i), json_array_size(row));
        for (size_t j = 0; j < json_array_size(row); j++) {
            const double want = json_number_value(json_array_get(row, j));
            const double got = calib__score(ds, calib__row_begin(ds, i) + j);
            if (fabs(got - want) > 1e-12 * fabs(want))
                fail_msg("%s row %zu choice %zu: %.17g, expected %.17g", key,
                         i, j, got, want);
        }
        assert_int_equal(ds->labels[i], labels[i]);
    }
    free(labels);
}

/* ---- lm-eval ------------------------------------------------------- */

static void test_lmeval_v043(void **state)
{
    calib_read_options o = opts();
    const char *names[] = {ARC, ARC ".gz"};
    for (int f = 0; f < 2; f++) {
        calib_dataset *ds = read_ok(fx(names[f]), &o);
        assert_rows(ds, "v043");
        calib_read_stats st;
        calib_dataset_stats(ds, &st);
        assert_int_equal(st.rows_read, 40);
        assert_int_equal(st.rows_used, 40);
        assert_int_equal(st.rows_duplicate, 4);
        assert_int_equal(st.rows_disagree, 0);
        calib_dataset_free(ds);
    }
    o.format = CALIB_FORMAT_LMEVAL; /* forced: the same */
    calib_dataset *ds = read_ok(fx(ARC), &o);
    assert_rows(ds, "v043");
    calib_dataset_free(ds);
}

static void test_lmeval_norms(void **state)
{
    calib_read_options o = opts();
    o.norm = CALIB_NORM_CHARS;
    calib_dataset *ds = read_ok(fx(ARC), &o);
    assert_rows(ds, "v043_chars");
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(st.rows_disagree, 0); /* against acc_norm */
    calib_dataset_free(ds);
    o.norm = CALIB_NORM_BYTES;
    ds = read_ok(fx(ARC), &o);
    assert_rows(ds, "v043_bytes");
    calib_dataset_free(ds);
}

static void test_lmeval_old_array(void **state)
{
    calib_read_options o = opts();
    calib_dataset *ds = read_ok(fx("pretrained__gpt2_hellaswag.jsonl"), &o);
    assert_rows(ds, "v040");
    calib_dataset_free(ds);
}

static void test_lmeval_text_and_list_targets(void **state)
{
    calib_read_options o = opts();
    calib_dataset *ds = read_ok(fx("samples_copa_2024-06-02T00-00-00.jsonl"),
                                &o);
    assert_rows(ds, "copa");
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(st.rows_disagree, 0);
    calib_dataset_free(ds);
}

static void test_lmeval_mutual_info(void **state)
{
    calib_read_options o = opts();
    calib_dataset *ds = read_ok(fx("samples_mutual_2024-06-03T00-00-00.jsonl"),
                                &o);
    assert_rows(ds, "mutual");
    calib_dataset_free(ds);
}

static void test_lmeval_disagree(void **state)
{
    calib_read_options o = opts();
    calib_dataset *ds =
        read_ok(fx("samples_flipped_2024-06-01T10-20-30.jsonl"), &o);
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(st.rows_disagree, 3);
    calib_dataset_free(ds);
}

static void test_lmeval_refusals(void **state)
{
    calib_read_options o = opts();
    calib_error e =
        read_fails(fx("samples_gsm8k_2024-06-03T00-00-00.jsonl"), &o,
                   CALIB_EDATA);
    assert_int_equal(e.line, 1);
    assert_non_null(strstr(e.message, "filtered_resps[0]"));
    assert_non_null(strstr(e.message, "generative"));
    e = read_fails(fx("samples_bad_2024-06-03T00-00-00.jsonl"), &o,
                   CALIB_EDATA);
    assert_int_equal(e.line, 3);
    assert_non_null(strstr(e.message, "filtered_resps[1][0]"));
    assert_non_null(strstr(e.file, "samples_bad"));
    e = read_fails(fx("samples_badjson_2024-06-03T00-00-00.jsonl"), &o,
                   CALIB_EDATA);
    assert_int_equal(e.line, 1);
    assert_non_null(strstr(e.message, "malformed JSON"));
    assert_true(e.column > 100);
    o.skip_bad_rows = 1;
    calib_dataset *ds = read_ok(fx("samples_bad_2024-06-03T00-00-00.jsonl"),
                                &o);
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(calib_dataset_rows(ds), 3);
    assert_int_equal(st.rows_read, 4);
    assert_int_equal(st.rows_rejected, 1);
    calib_dataset_free(ds);
}

static void test_lmeval_streaming(void **state)
{
    calib_read_options o = opts();
    o.chunk_rows = 7;
    calib_reader *r = NULL;
    calib_error e;
    assert_int_equal(calib_reader_open(fx(ARC), &o, &r, &e), CALIB_OK);
    const calib_dataset *c;
    size_t rows = 0, chunks = 0;
    while (calib_reader_next(r, &c, &e) == CALIB_OK && c) {
        assert_true(c->n <= 7);
        assert_non_null(c->offsets);
        assert_int_equal(c->offsets[0], 0);
        rows += c->n;
        chunks++;
    }
    assert_null(c);
    calib_read_stats st;
    calib_reader_stats(r, &st);
    assert_int_equal(rows, 40);
    assert_int_equal(chunks, 6);
    assert_int_equal(st.rows_duplicate, 4);
    calib_reader_close(r);
}

/* ---- OpenAI / vLLM ------------------------------------------------- */

/* Reads `file` in every mode and compares with gold[key][mode]. */
static void check_openai(const char *file, const char *key,
                         const char *correct)
{
    const json_t *g = json_object_get(gold, key);
    size_t n;
    int64_t *want_correct = golden_ints(g, "correct", &n);
    for (int mode = 0; mode <= CALIB_SEQ_ANSWER; mode++) {
        calib_read_options o = opts();
        o.correct = correct;
        o.seq_conf = (calib_seq_conf)mode;
        o.choices = "A, B,C,D";
        calib_dataset *ds = read_ok(fx(file), &o);
        double *want = golden_doubles(g, calib_seq_conf_name(o.seq_conf),
                                      NULL);
        assert_int_equal(calib_dataset_kind(ds), CALIB_TOPLABEL);
        assert_int_equal(calib_dataset_rows(ds), n);
        for (size_t i = 0; i < n; i++) {
            if (fabs(calib__conf(ds, i) - want[i]) > 1e-13)
                fail_msg("%s %s row %zu: %.17g, expected %.17g", file,
                         calib_seq_conf_name(o.seq_conf), i,
                         calib__conf(ds, i), want[i]);
            assert_int_equal(ds->correct[i], want_correct[i]);
        }
        calib_read_stats st;
        calib_dataset_stats(ds, &st);
        const json_t *unknown = json_object_get(g, "unknown");
        if (mode != CALIB_SEQ_ANSWER)
            assert_int_equal(st.values_unknown,
                             unknown ? json_integer_value(unknown) : 0);
        free(want);
        calib_dataset_free(ds);
    }
    free(want_correct);
}

static void test_openai_shapes(void **state)
{
    check_openai("chat.jsonl", "openai_chat", "grade.correct");
    check_openai("batch_output.jsonl", "openai_chat", "grade.correct");
    check_openai("legacy.jsonl", "openai_legacy", "is_correct");
    check_openai("vllm.jsonl.gz", "openai_vllm", "correct");
}

static void test_openai_options(void **state)
{
    calib_read_options o = opts();
    calib_error e = read_fails(fx("chat.jsonl"), &o, CALIB_EINVAL);
    assert_non_null(strstr(e.message, "--correct"));
    o.correct = "grade.correct";
    o.seq_conf = CALIB_SEQ_ANSWER;
    read_fails(fx("chat.jsonl"), &o, CALIB_EINVAL); /* no choices */
    o.seq_conf = CALIB_SEQ_GEOMEAN;
    o.correct = "grade.missing";
    e = read_fails(fx("chat.jsonl"), &o, CALIB_EDATA);
    assert_int_equal(e.line, 1);
    assert_non_null(strstr(e.message, "grade.missing"));
    calib_seq_conf m;
    assert_int_equal(calib_seq_conf_parse("min", &m), CALIB_OK);
    assert_int_equal(m, CALIB_SEQ_MIN);
    assert_int_equal(calib_seq_conf_parse("median", &m), CALIB_EINVAL);
    assert_string_equal(calib_seq_conf_name(CALIB_SEQ_GEOMEAN), "geomean");
}

static void test_openai_unknown_row(void **state)
{
    calib_read_options o = opts();
    o.correct = "grade.correct";
    calib_error e = read_fails(fx("openai_unknown.jsonl"), &o, CALIB_EDATA);
    assert_int_equal(e.line, 2);
    assert_non_null(strstr(e.message, "no token with a known logprob"));
    o.skip_bad_rows = 1;
    calib_dataset *ds = read_ok(fx("openai_unknown.jsonl"), &o);
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(calib_dataset_rows(ds), 1);
    assert_int_equal(st.rows_rejected, 1);
    calib_dataset_free(ds);
}

static void test_malformed_json(void **state)
{
    calib_read_options o = opts();
    o.correct = "grade.correct";
    calib_error e = read_fails(fx("broken.jsonl"), &o, CALIB_EDATA);
    assert_int_equal(e.line, 2);
    assert_true(e.column > 0);
    assert_non_null(strstr(e.message, "malformed JSON"));
}

/* ---- group_name and concat ----------------------------------------- */

static void assert_one_group(const calib_dataset *ds, const char *name)
{
    assert_int_equal(calib_dataset_group_count(ds), 1);
    assert_string_equal(calib_dataset_group_name(ds, 0), name);
    for (size_t i = 0; i < calib_dataset_rows(ds); i++)
        assert_int_equal(ds->groups[i], 0);
}

static void test_group_name_every_format(void **state)
{
    calib_read_options o = opts();
    o.group_name = "task";
    o.group = "domain"; /* the name wins over the column */
    calib_dataset *ds = read_ok(fx_in("read", "groupweight.csv"), &o);
    assert_one_group(ds, "task");
    calib_dataset_free(ds);
    o = opts();
    o.group_name = "npy";
    o.correct_path = fx_in("read", "corr_f8.npy");
    ds = read_ok(fx_in("read", "conf5.npy"), &o);
    assert_one_group(ds, "npy");
    calib_dataset_free(ds);
    o = opts();
    o.group_name = "arc";
    o.chunk_rows = 16;
    ds = read_ok(fx(ARC), &o);
    assert_one_group(ds, "arc");
    calib_dataset_free(ds);
    calib_reader *r;
    calib_error e;
    const calib_dataset *c;
    assert_int_equal(calib_reader_open(fx("chat.jsonl"), &(calib_read_options){
        .group_name = "chat", .correct = "grade.correct", .chunk_rows = 8},
        &r, &e), CALIB_OK);
    while (calib_reader_next(r, &c, &e) == CALIB_OK && c)
        assert_one_group(c, "chat");
    calib_reader_close(r);
}

static void test_concat(void **state)
{
    calib_read_options o = opts();
    calib_dataset *parts[3];
    o.group_name = "arc";
    parts[0] = read_ok(fx(ARC), &o);
    o.group_name = "copa";
    parts[1] = read_ok(fx("samples_copa_2024-06-02T00-00-00.jsonl"), &o);
    o.group_name = "arc";
    parts[2] = read_ok(fx("pretrained__gpt2_hellaswag.jsonl"), &o);
    calib_dataset *all = NULL;
    calib_error e;
    assert_int_equal(calib_dataset_concat((const calib_dataset *const *)parts,
                                          3, &all, &e), CALIB_OK);
    assert_int_equal(calib_dataset_rows(all), 62);
    assert_int_equal(calib_dataset_group_count(all), 2);
    assert_string_equal(calib_dataset_group_name(all, 1), "copa");
    assert_int_equal(all->groups[45], 1);
    assert_int_equal(all->groups[55], 0);
    for (size_t i = 0; i < 62; i++) {
        const calib_dataset *p = i < 40 ? parts[0] : i < 50 ? parts[1]
                                                            : parts[2];
        const size_t pi = i < 40 ? i : i < 50 ? i - 40 : i - 50;
        assert_int_equal(calib__row_len(all, i), calib__row_len(p, pi));
        assert_true(calib__score(all, calib__row_begin(all, i)) ==
                    calib__score(p, calib__row_begin(p, pi)));
        assert_int_equal(all->labels[i], p->labels[pi]);
    }
    calib_read_stats st;
    calib_dataset_stats(all, &st);
    assert_int_equal(st.rows_used, 62);
    assert_int_equal(st.rows_duplicate, 4);
    calib_dataset_free(all);
    /* mixed kinds are refused */
    o = opts();
    o.correct = "grade.correct";
    calib_dataset *top = read_ok(fx("chat.jsonl"), &o);
    const calib_dataset *mixed[2] = {parts[0], top};
    all = (calib_dataset *)1;
    assert_int_equal(calib_dataset_concat(mixed, 2, &all, &e), CALIB_EINVAL);
    assert_null(all);
    assert_int_equal(calib_dataset_concat(mixed, 0, &all, &e), CALIB_EINVAL);
    calib_dataset_free(top);
    for (int i = 0; i < 3; i++)
        calib_dataset_free(parts[i]);
}

static void test_concat_fixed_k(void **state)
{
    const double a[] = {1, 2, 3, 4}, b[] = {0.5, 0.5};
    const int32_t la[] = {1, 0}, lb[] = {0};
    calib_arrays x = {.kind = CALIB_LOGITS, .n = 2, .k = 2, .scores = a,
                      .labels = la};
    calib_arrays y = x;
    y.n = 1, y.scores = b, y.labels = lb;
    calib_dataset *p[2], *all = NULL;
    calib_error e;
    assert_int_equal(calib_dataset_wrap(&x, &p[0], &e), CALIB_OK);
    assert_int_equal(calib_dataset_wrap(&y, &p[1], &e), CALIB_OK);
    assert_int_equal(calib_dataset_concat((const calib_dataset *const *)p, 2,
                                          &all, &e), CALIB_OK);
    assert_int_equal(calib_dataset_classes(all), 2);
    assert_int_equal(calib_dataset_rows(all), 3);
    assert_true(calib__score(all, 5) == 0.5);
    assert_int_equal(all->labels[2], 0);
    calib_dataset_free(all);
    calib_dataset_free(p[1]);
    y.k = 1, y.scores = b, y.labels = lb;
    assert_int_equal(calib_dataset_wrap(&y, &p[1], &e), CALIB_OK);
    assert_int_equal(calib_dataset_concat((const calib_dataset *const *)p, 2,
                                          &all, &e), CALIB_EINVAL);
    calib_dataset_free(p[0]);
    calib_dataset_free(p[1]);
}

/* Temperature scaling and metrics run on the ragged rows unchanged. */
static void test_ragged_downstream(void **state)
{
    calib_read_options o = opts();
    calib_dataset *ds = read_ok(fx(ARC), &o);
    calib_metrics *m = NULL;
    calib_error e;
    assert_int_equal(calib_evaluate(ds, NULL, &m, &e), CALIB_OK);
    assert_true(m->nll > 0 && isfinite(m->nll));
    calib_calibrator *c = NULL;
    assert_int_equal(calib_fit(ds, NULL, &c, &e), CALIB_OK);
    assert_true(calib_calibrator_temperature(c) > 0);
    calib_dataset *after = NULL;
    assert_int_equal(calib_apply(c, ds, &after, &e), CALIB_OK);
    calib_metrics *m2 = NULL;
    assert_int_equal(calib_evaluate(after, NULL, &m2, &e), CALIB_OK);
    assert_true(m2->accuracy == m->accuracy);
    assert_true(m2->nll <= m->nll + 1e-12);
    calib_metrics_free(m);
    calib_metrics_free(m2);
    calib_dataset_free(after);
    calib_calibrator_free(c);
    calib_dataset_free(ds);
}

static int setup(void **state)
{
    gold = golden_load("jsonl.json");
    return 0;
}

static int teardown(void **state)
{
    json_decref(gold);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lmeval_v043),
        cmocka_unit_test(test_lmeval_norms),
        cmocka_unit_test(test_lmeval_old_array),
        cmocka_unit_test(test_lmeval_text_and_list_targets),
        cmocka_unit_test(test_lmeval_mutual_info),
        cmocka_unit_test(test_lmeval_disagree),
        cmocka_unit_test(test_lmeval_refusals),
        cmocka_unit_test(test_lmeval_streaming),
        cmocka_unit_test(test_openai_shapes),
        cmocka_unit_test(test_openai_options),
        cmocka_unit_test(test_openai_unknown_row),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_group_name_every_format),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_concat_fixed_k),
        cmocka_unit_test(test_ragged_downstream),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
