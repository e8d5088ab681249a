/* test_read_npy.c — the .npy reader and calib_write_probs, against files and
 * values that numpy wrote (tests/golden/gen_read.py). */
#include "golden.h"
#include "internal.h"

static json_t *gold;
static const int LABELS4[4] = {0, 1, 2, 0};

/* $CALIB_GOLDEN/read/name, in a rotating static buffer. */
static const char *fx(const char *name)
{
    static char buf[8][1024];
    static int i;
    const char *dir = getenv("CALIB_GOLDEN");
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/read/%s", dir ? dir : "build/golden",
             name);
    return buf[i];
}

/* Options with the labels file `labels` (kept in its own buffer, since
 * fx's ring is reused). */
static calib_read_options opts(const char *labels)
{
    static char path[1024];
    calib_read_options o;
    calib_read_options_init(&o);
    if (labels)
        snprintf(path, sizeof path, "%s", fx(labels));
    o.labels_path = labels ? path : NULL;
    return o;
}

static void assert_scores(const calib_dataset *ds, const json_t *values)
{
    assert_int_equal(json_array_size(values), ds->n * ds->k);
    for (size_t j = 0; j < ds->n * ds->k; j++) {
        const double want = json_number_value(json_array_get(values, j));
        if (calib__score(ds, j) != want)
            fail_msg("score %zu = %.17g, expected %.17g", j,
                     calib__score(ds, j), want);
    }
}

static int in_mapping(const calib_dataset *ds, const void *p)
{
    const char *a = ds->map_addr[0];
    return a && (const char *)p >= a && (const char *)p < a + ds->map_len[0];
}

static void test_every_dtype(void **state)
{
    const json_t *cases = json_object_get(gold, "dtypes");
    const calib_read_options o = opts("labels4.npy");
    assert_int_equal(json_array_size(cases), 11 * 2 * 3);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        const json_t *cs = json_array_get(cases, c);
        const char *file = json_string_value(json_object_get(cs, "file"));
        calib_dataset *ds = read_ok(fx(file), &o);
        assert_int_equal(ds->kind, CALIB_LOGITS);
        assert_int_equal(ds->n, 4);
        assert_int_equal(ds->k, 3);
        assert_int_equal(ds->dtype, json_is_true(json_object_get(cs, "f32"))
                                        ? CALIB_F32 : CALIB_F64);
        assert_scores(ds, json_object_get(cs, "values"));
        for (size_t i = 0; i < 4; i++)
            assert_int_equal(ds->labels[i], LABELS4[i]);
        calib_dataset_free(ds);
    }
}

static void test_label_dtypes(void **state)
{
    const json_t *files = json_object_get(gold, "label_files");
    for (size_t f = 0; f < json_array_size(files); f++) {
        const calib_read_options o =
            opts(json_string_value(json_array_get(files, f)));
        calib_dataset *ds = read_ok(fx("m_f8_le_v1.npy"), &o);
        for (size_t i = 0; i < 4; i++)
            assert_int_equal(ds->labels[i], LABELS4[i]);
        calib_dataset_free(ds);
    }
}

static void test_bad_labels(void **state)
{
    calib_read_options o = opts("l_half.npy");
    calib_error e = read_fails(fx("m_f8_le_v1.npy"), &o, CALIB_EDATA);
    assert_contains(e.file, "l_half.npy");
    assert_int_equal(e.row, 1);
    assert_contains(e.message, "not an integer");
    o = opts("l_big.npy");
    e = read_fails(fx("m_f8_le_v1.npy"), &o, CALIB_EDATA);
    assert_int_equal(e.row, 2);
    assert_contains(e.message, "outside [0,3)");
    o = opts("l_3rows.npy");
    e = read_fails(fx("m_f8_le_v1.npy"), &o, CALIB_EDATA);
    assert_contains(e.message, "3 rows");
    assert_contains(e.message, "m_f8_le_v1.npy");
    assert_contains(e.file, "l_3rows.npy");
    o = opts(NULL);
    e = read_fails(fx("m_f8_le_v1.npy"), &o, CALIB_EINVAL);
    assert_contains(e.message, "labels");
}

static void test_fortran_order(void **state)
{
    const calib_read_options o = opts("labels5.npy");
    const char *names[] = {"f8", "f4"};
    for (int i = 0; i < 2; i++) {
        char file[64], key[64];
        snprintf(file, sizeof file, "fortran_%s.npy", names[i]);
        snprintf(key, sizeof key, "fortran_%s", names[i]);
        calib_dataset *ds = read_ok(fx(file), &o);
        assert_int_equal(ds->n, 5);
        assert_scores(ds, json_object_get(gold, key));
        assert_false(in_mapping(ds, ds->scores));
        calib_dataset_free(ds);
    }
}

static void test_mapped_not_copied(void **state)
{
    const calib_read_options o = opts("labels6.npy");
    calib_dataset *ds = read_ok(fx("map_f4.npy"), &o);
    assert_int_equal(ds->dtype, CALIB_F32);
    assert_true(in_mapping(ds, ds->scores));
    assert_scores(ds, json_object_get(gold, "map_f4"));
    assert_int_equal(ds->labels[3], 3);
    calib_dataset_free(ds);
    ds = read_ok(fx("map_f8.npy"), &o);
    assert_true(in_mapping(ds, ds->scores));
    assert_scores(ds, json_object_get(gold, "map_f4"));
    calib_dataset_free(ds);
    ds = read_ok(fx("map_f8_be.npy"), &o);
    assert_false(in_mapping(ds, ds->scores));
    assert_scores(ds, json_object_get(gold, "map_f4"));
    calib_dataset_free(ds);
    ds = read_ok(fx("gz_f4.npy.gz"), &o);
    assert_scores(ds, json_object_get(gold, "map_f4"));
    calib_dataset_free(ds);
}

static void test_toplabel(void **state)
{
    const char *files[] = {"corr_b1.npy", "corr_u1.npy", "corr_i8.npy",
                           "corr_f8.npy"};
    size_t n;
    double *conf = golden_doubles(gold, "conf5", &n);
    int64_t *corr = golden_ints(gold, "corr5", NULL);
    for (int f = 0; f < 4; f++) {
        calib_read_options o = opts(NULL);
        o.correct_path = fx(files[f]);
        calib_dataset *ds = read_ok(fx("conf5.npy"), &o);
        assert_int_equal(ds->kind, CALIB_TOPLABEL);
        assert_int_equal(ds->n, n);
        for (size_t i = 0; i < n; i++) {
            assert_true(calib__conf(ds, i) == conf[i]);
            assert_int_equal(ds->correct[i], corr[i]);
        }
        assert_true(in_mapping(ds, ds->conf));
        calib_dataset_free(ds);
    }
    calib_read_options o = opts(NULL);
    o.correct_path = fx("corr_bad.npy");
    calib_error e = read_fails(fx("conf5.npy"), &o, CALIB_EDATA);
    assert_int_equal(e.row, 3);
    assert_contains(e.file, "corr_bad.npy");
    o = opts(NULL);
    e = read_fails(fx("conf5.npy"), &o, CALIB_EINVAL);
    free(conf);
    free(corr);
}

static void test_broken_files(void **state)
{
    const calib_read_options o = opts("labels4.npy");
    calib_error e = read_fails(fx("trunc.npy"), &o, CALIB_EDATA);
    assert_contains(e.message, "truncated");
    e = read_fails(fx("lying.npy"), &o, CALIB_EDATA);
    assert_contains(e.message, "(1000000, 10)");
    e = read_fails(fx("overflow.npy"), &o, CALIB_EDATA);
    assert_contains(e.message, "overflows");
    e = read_fails(fx("three_d.npy"), &o, CALIB_EDATA);
    assert_contains(e.message, "dimensions");
    e = read_fails(fx("extra_key.npy"), &o, CALIB_EDATA);
    assert_contains(e.message, "'x'");
    e = read_fails(fx("object.npy"), &o, CALIB_EDATA);
    assert_contains(e.message, "object");
    e = read_fails(fx("badmagic.npy"), &o, CALIB_EDATA);
    assert_contains(e.message, "magic");
    e = read_fails(fx("no_such_file.npy"), &o, CALIB_EOPEN);
    assert_contains(e.message, "No such file");
    assert_contains(e.file, "no_such_file.npy");
    e = read_fails(fx("basic.txt"), &o, CALIB_EINVAL);
    const calib_read_options o2 = opts("labels2.npy");
    calib_dataset *ds = read_ok(fx("v2_hand.npy"), &o2);
    for (size_t j = 0; j < 4; j++)
        assert_true(calib__score(ds, j) == (double)(j + 1));
    calib_dataset_free(ds);
}

static void test_nan_row_column(void **state)
{
    calib_read_options o = opts("labels5.npy");
    calib_error e = read_fails(fx("nan.npy"), &o, CALIB_EDATA);
    assert_int_equal(e.row, (size_t)golden_number(gold, "nan_row"));
    assert_int_equal(e.column, (size_t)golden_number(gold, "nan_col"));
    assert_contains(e.file, "nan.npy");
    assert_contains(e.message, "NaN");
    o.skip_bad_rows = 1;
    calib_dataset *ds = read_ok(fx("nan.npy"), &o);
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(ds->n, 3);
    assert_int_equal(st.rows_read, 5);
    assert_int_equal(st.rows_used, 3);
    assert_int_equal(st.rows_rejected, 2);
    const double want[] = {0, 1, 2, 3, 4, 5, 9, 10, 11};
    for (size_t j = 0; j < 9; j++)
        assert_true(calib__score(ds, j) == want[j]);
    assert_int_equal(ds->labels[2], 1);
    calib_dataset_free(ds);
}

static void test_probs_tolerance(void **state)
{
    calib_read_options o = opts("labels_p4.npy");
    o.npy_probs = 1;
    calib_dataset *ds = read_ok(fx("probs_off.npy"), &o);
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(ds->kind, CALIB_PROBS);
    const json_t *want = json_object_get(gold, "probs_off");
    assert_int_equal(st.values_clamped,
                     (size_t)golden_number(want, "values_clamped"));
    assert_int_equal(st.rows_sum_off,
                     (size_t)golden_number(want, "rows_sum_off"));
    calib_dataset_free(ds);
}

static void test_real_cleanlab(void **state)
{
    const char *dir = golden_shared_dir();
    const json_t *real = json_object_get(gold, "real");
    if (!dir || !real)
        skip();
    const char *sets[] = {"imdb", "cifar10", "mnist", "20news"};
    for (int s = 0; s < 4; s++) {
        char main[1024], labels[1024];
        snprintf(main, sizeof main, "%s/cleanlab-crossval-probs/%s_test_set_pyx.npy",
                 dir, sets[s]);
        snprintf(labels, sizeof labels,
                 "%s/cleanlab-crossval-probs/%s_test_set_original_labels.npy",
                 dir, sets[s]);
        calib_read_options o = opts(NULL);
        o.labels_path = labels;
        o.npy_probs = 1;
        calib_dataset *ds = read_ok(main, &o);
        const json_t *w = json_object_get(real, sets[s]);
        calib_read_stats st;
        calib_dataset_stats(ds, &st);
        assert_int_equal(ds->n, (size_t)golden_number(w, "n"));
        assert_int_equal(ds->k, (size_t)golden_number(w, "k"));
        assert_int_equal(st.rows_sum_off, (size_t)golden_number(w, "rows_sum_off"));
        assert_int_equal(st.values_clamped,
                         (size_t)golden_number(w, "values_clamped"));
        assert_true(in_mapping(ds, ds->scores));
        int64_t sum = 0;
        for (size_t i = 0; i < ds->n; i++)
            sum += ds->labels[i];
        assert_int_equal(sum, (int64_t)golden_number(w, "label_sum"));
        calib_dataset_free(ds);
    }
}

static void test_real_densenet(void **state)
{
    const char *dir = golden_shared_dir();
    const json_t *real = json_object_get(gold, "real");
    if (!dir || !real)
        skip();
    char main[1024], labels[1024];
    snprintf(main, sizeof main, "%s/densenet40-cifar10-logits/logits_val.npy", dir);
    snprintf(labels, sizeof labels, "%s/densenet40-cifar10-logits/labels_val.npy",
             dir);
    calib_read_options o = opts(NULL);
    o.labels_path = labels;
    calib_dataset *ds = read_ok(main, &o);
    const json_t *w = json_object_get(real, "densenet_val");
    assert_int_equal(ds->n, 5000);
    assert_int_equal(ds->dtype, CALIB_F32);
    size_t k;
    double *row0 = golden_doubles(w, "row0", &k);
    for (size_t j = 0; j < k; j++)
        assert_true(calib__score(ds, j) == row0[j]);
    free(row0);
    calib_dataset_free(ds);
}

static void test_npy_chunks(void **state)
{
    calib_read_options o = opts("labels6.npy");
    o.chunk_rows = 4;
    calib_reader *r;
    assert_int_equal(calib_reader_open(fx("map_f4.npy"), &o, &r, NULL), 0);
    const calib_dataset *c;
    const json_t *want = json_object_get(gold, "map_f4");
    size_t row = 0, chunks = 0;
    while (calib_reader_next(r, &c, NULL) == 0 && c) {
        assert_true(c->n <= 4);
        for (size_t j = 0; j < c->n * c->k; j++)
            assert_true(calib__score(c, j) ==
                        json_number_value(json_array_get(want, row * 4 + j)));
        row += c->n;
        chunks++;
    }
    assert_null(c);
    assert_int_equal(row, 6);
    assert_int_equal(chunks, 2);
    calib_read_stats st;
    calib_reader_stats(r, &st);
    assert_int_equal(st.rows_read, 6);
    assert_int_equal(st.rows_used, 6);
    calib_reader_close(r);
}

/* calib_write_probs: the .npy numpy would write, softmax as numpy's. */
static void test_write_npy(void **state)
{
    const calib_read_options o = opts("labels6.npy");
    calib_dataset *ds = read_ok(fx("map_f4.npy"), &o);
    char path[1100];
    snprintf(path, sizeof path, "%s", fx("written_probs.npy"));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(calib_write_probs(ds, CALIB_FORMAT_NPY, f, NULL), 0);
    fclose(f);
    f = fopen(path, "rb");
    unsigned char head[128];
    assert_int_equal(fread(head, 1, 128, f), 128);
    fclose(f);
    const size_t hlen = head[8] | (size_t)head[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(head[10 + hlen - 1], '\n');
    calib_read_options p = o;
    p.npy_probs = 1;
    calib_dataset *back = read_ok(path, &p);
    assert_int_equal(back->kind, CALIB_PROBS);
    assert_int_equal(back->dtype, CALIB_F64);
    const json_t *want = json_object_get(gold, "softmax_map_f4");
    for (size_t j = 0; j < 24; j++)
        assert_close(calib__score(back, j),
                     json_number_value(json_array_get(want, j)), 1e-15);
    calib_dataset_free(back);
    assert_int_equal(calib_write_probs(ds, CALIB_FORMAT_AUTO, stdout, NULL),
                     CALIB_EINVAL);
    calib_dataset_free(ds);
}

static void test_write_csv(void **state)
{
    calib_read_options o = opts(NULL);
    o.correct_path = fx("corr_b1.npy");
    calib_dataset *ds = read_ok(fx("conf5.npy"), &o);
    char path[1100];
    snprintf(path, sizeof path, "%s", fx("written_top.csv"));
    FILE *f = fopen(path, "w");
    assert_int_equal(calib_write_probs(ds, CALIB_FORMAT_CSV, f, NULL), 0);
    fclose(f);
    calib_read_options c;
    calib_read_options_init(&c);
    calib_dataset *back = read_ok(path, &c);
    assert_int_equal(back->kind, CALIB_TOPLABEL);
    assert_int_equal(back->n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_true(calib__conf(back, i) == calib__conf(ds, i));
        assert_int_equal(back->correct[i], ds->correct[i]);
    }
    calib_dataset_free(back);
    calib_dataset_free(ds);
}

/* Ragged rows: refused for .npy, zero-padded in CSV. */
static void test_write_ragged(void **state)
{
    const double z[] = {0.0, 0.0, 1.0, 2.0, 3.0};
    const size_t off[] = {0, 2, 5};
    const int32_t y[] = {1, 2};
    calib_arrays a = {.kind = CALIB_LOGITS, .n = 2, .offsets = off,
                      .dtype = CALIB_F64, .scores = z, .labels = y};
    calib_dataset *ds;
    assert_int_equal(calib_dataset_wrap(&a, &ds, NULL), 0);
    FILE *f = tmpfile();
    calib_error e;
    assert_int_equal(calib_write_probs(ds, CALIB_FORMAT_NPY, f, &e),
                     CALIB_EINVAL);
    assert_int_equal(calib_write_probs(ds, CALIB_FORMAT_CSV, f, NULL), 0);
    rewind(f);
    char text[512];
    const size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose(f);
    const char *head = "prob_0,prob_1,prob_2,label\n0.5,0.5,0,1\n";
    assert_int_equal(strncmp(text, head, strlen(head)), 0);
    /* softmax(1, 2, 3) as numpy computes it */
    const double want[3] = {0.090030573170380462, 0.24472847105479764,
                            0.66524095577482178};
    char *p = text + strlen(head);
    for (int j = 0; j < 3; j++) {
        assert_close(strtod(p, &p), want[j], 1e-15);
        assert_int_equal(*p++, ',');
    }
    assert_string_equal(p, "2\n");
    calib_dataset_free(ds);
}

int main(void)
{
    gold = golden_load("read.json");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_dtype),
        cmocka_unit_test(test_label_dtypes),
        cmocka_unit_test(test_bad_labels),
        cmocka_unit_test(test_fortran_order),
        cmocka_unit_test(test_mapped_not_copied),
        cmocka_unit_test(test_toplabel),
        cmocka_unit_test(test_broken_files),
        cmocka_unit_test(test_nan_row_column),
        cmocka_unit_test(test_probs_tolerance),
        cmocka_unit_test(test_real_cleanlab),
        cmocka_unit_test(test_real_densenet),
        cmocka_unit_test(test_npy_chunks),
        cmocka_unit_test(test_write_npy),
        cmocka_unit_test(test_write_csv),
        cmocka_unit_test(test_write_ragged),
    };
    const int failed = cmocka_run_group_tests(tests, NULL, NULL);
    json_decref(gold);
    return failed;
}
