/* test_truncate.c — every prefix of a small valid file of each format.
 *
 * For each fixture of tests/fixtures.h (CSV, TSV, logits CSV, lm-eval and
 * OpenAI JSONL, .npy f8 mapped, .npy f4 big-endian copied, top-label .npy,
 * a labels .npy, gzip of each text format and of a .npy) and for the two
 * JSON documents calib reads back (a calibrator, a partial state), every
 * prefix [0, len) is read.  Each must be either
 *  - an error with the right status, naming the file and where (the line
 *    for text, the JSON line for documents), or
 *  - only where the prefix is itself a complete valid file (a text file cut
 *    at a line end, or just before its last newline), exactly the rows the
 *    prefix holds, equal to the first rows of the whole file;
 * never a partial result passed off as whole: a .npy cut anywhere and a
 * gzip stream cut anywhere (its trailer holds the length and CRC) fail.
 * A prefix with no data row may also read as an empty dataset: the CLI
 * refuses that ("no data rows", exit 65), and docs/robustness.md says so.
 */
#include "golden.h"
#include "internal.h"

#include "fixtures.h"

/* Whether two datasets hold the same first n rows (values, labels,
 * weights, group names). */
static int same_rows(const calib_dataset *a, const calib_dataset *b, size_t n)
{
    if (n > 0 && (a->kind != b->kind || a->k != b->k))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (a->kind == CALIB_TOPLABEL) {
            if (calib__conf(a, i) != calib__conf(b, i) ||
                a->correct[i] != b->correct[i])
                return 0;
        } else {
            const size_t len = calib__row_len(a, i);
            if (len != calib__row_len(b, i) || a->labels[i] != b->labels[i])
                return 0;
            for (size_t j = 0; j < len; j++)
                if (calib__score(a, calib__row_begin(a, i) + j) !=
                    calib__score(b, calib__row_begin(b, i) + j))
                    return 0;
        }
        if (calib__weight(a, i) != calib__weight(b, i))
            return 0;
        if (!a->groups != !b->groups ||
            (a->groups && strcmp(a->group_names[a->groups[i]],
                                 b->group_names[b->groups[i]]) != 0))
            return 0;
    }
    return 1;
}

/* For a text fixture: the number of data rows a prefix of length len holds
 * when it is a complete file (cut at a line end, or just before the final
 * newline of a line), else -1.  `header` is 1 for CSV/TSV. */
static long complete_rows(const fx_text *t, size_t len, int header)
{
    long lines = 0;
    for (size_t i = 0; i < t->len; i++) {
        if (t->s[i] != '\n')
            continue;
        lines++;
        if (len == i + 1 || len == i)
            return lines - header >= 0 ? lines - header : -1;
    }
    return len == 0 ? 0 : -1;
}

/* 1-based line of byte offset `len - 1` (the line a cut falls in). */
static size_t line_of_cut(const fx_text *t, size_t len)
{
    size_t line = 1;
    for (size_t i = 0; i + 1 < len && i < t->len; i++)
        line += t->s[i] == '\n';
    return line;
}

typedef struct trunc_case {
    const char *name;     /* fixture file name                          */
    fx_text text;         /* its whole content                          */
    int kind;             /* 0: text with header, 1: JSONL, 2: binary    */
    const char *side;     /* a .npy side file truncated instead, or NULL */
} trunc_case;

static void check_prefix(const trunc_case *c, const calib_dataset *whole,
                         size_t len, const char *path)
{
    calib_read_options o = fx_options(c->name);
    calib_error e = {0};
    calib_dataset *ds = NULL;
    const int rc = calib_read(c->side ? fx_path(c->name) : path, &o, &ds, &e);
    const long rows = c->kind == 2 ? (len == 0 ? 0 : -1)
                                   : complete_rows(&c->text, len, c->kind == 0);
    if (rc == CALIB_OK) {
        const size_t n = calib_dataset_rows(ds);
        const int ok = rows >= 0 && n == (size_t)rows && same_rows(ds, whole, n);
        calib_dataset_free(ds);
        if (!ok)
            fail_msg("%s cut at %zu of %zu: read %zu rows, a complete prefix "
                     "holds %ld", c->name, len, c->text.len, n, rows);
        return;
    }
    if (rows > 0)
        fail_msg("%s cut at %zu (%ld whole rows): %s", c->name, len, rows,
                 e.message);
    if (e.code != rc || !e.message[0] || !strstr(e.file, c->side ? c->side
                                                                 : c->name))
        fail_msg("%s cut at %zu: status %d, err {%d, '%s', '%s'}", c->name,
                 len, rc, e.code, e.file, e.message);
    /* A cut header may read as a header naming other columns (64); any
     * other cut is bad data, and a cut text row names its line. */
    const int header_cut = c->kind == 0 && line_of_cut(&c->text, len) == 1;
    if (rc != CALIB_EDATA && !(header_cut && rc == CALIB_EINVAL) &&
        !(len < 2 && strstr(c->name, ".gz")))
        fail_msg("%s cut at %zu: status %d (%s)", c->name, len, rc, e.message);
    if (c->kind != 2 && !strstr(c->name, ".gz") && rc == CALIB_EDATA &&
        len > 0 && e.line != line_of_cut(&c->text, len))
        fail_msg("%s cut at %zu: error on line %zu, the cut is on line %zu "
                 "(%s)", c->name, len, e.line, line_of_cut(&c->text, len),
                 e.message);
}

static void sweep_file(const trunc_case *c)
{
    calib_read_options o = fx_options(c->name);
    fx_write(c->side ? c->side : c->name, c->text.s, c->text.len);
    calib_dataset *whole = read_ok(fx_path(c->name), &o);
    char cut_name[128];
    snprintf(cut_name, sizeof cut_name, "cut-%s", c->side ? c->side : c->name);
    char path[256];
    snprintf(path, sizeof path, "%s", fx_path(cut_name));
    for (size_t len = 0; len < c->text.len; len++) {
        fx_write(c->side ? c->side : cut_name, c->text.s, len);
        check_prefix(c, whole, len, path);
    }
    fx_write(c->side ? c->side : c->name, c->text.s, c->text.len);
    calib_dataset_free(whole);
}

static fx_text gz(fx_text t)
{
    fx_text g = fx_gzip(&t);
    free(t.s);
    return g;
}

static void test_every_format(void **state)
{
    trunc_case cases[] = {
        {"top.csv", fx_csv_toplabel(','), 0, NULL},
        {"top.tsv", fx_csv_toplabel('\t'), 0, NULL},
        {"logits.csv", fx_csv_logits(), 0, NULL},
        {"samples_fx_2024-01-01.jsonl", fx_lmeval(), 1, NULL},
        {"openai.jsonl", fx_openai(), 1, NULL},
        {"logits_f8.npy", fx_npy_logits_f8(), 2, NULL},
        {"logits_f4be.npy", fx_npy_logits_f4be(), 2, NULL},
        {"conf.npy", fx_npy_conf(), 2, NULL},
        {"logits_f8.npy", fx_npy_labels(), 2, "labels.npy"},
        {"conf.npy", fx_npy_correct(), 2, "correct.npy"},
        {"top.csv.gz", gz(fx_csv_toplabel(',')), 2, NULL},
        {"logits.csv.gz", gz(fx_csv_logits()), 2, NULL},
        {"samples_fx_2024-01-01.jsonl.gz", gz(fx_lmeval()), 2, NULL},
        {"openai.jsonl.gz", gz(fx_openai()), 2, NULL},
        {"logits_f8.npy.gz", gz(fx_npy_logits_f8()), 2, NULL},
    };
    size_t prefixes = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sweep_file(&cases[i]);
        prefixes += cases[i].text.len;
        free(cases[i].text.s);
    }
    print_message("%zu prefixes of %zu files\n", prefixes,
                  sizeof cases / sizeof cases[0]);
}

/* A JSON document read from memory: every proper prefix but the one that
 * only drops trailing whitespace is CALIB_EDATA with a line. */
typedef int (*from_json_fn)(const char *json, size_t len, void *out_value);

static int calibrator_t(const char *json, size_t len, void *out)
{
    calib_calibrator *c = NULL;
    calib_error e = {0};
    const int rc = calib_calibrator_from_json(json, len, &c, &e);
    if (!rc)
        *(double *)out = calib_calibrator_temperature(c);
    else if (rc != CALIB_EDATA || e.code != rc || e.line == 0)
        fail_msg("calibrator JSON cut at %zu: status %d, line %zu: %s", len,
                 rc, e.line, e.message);
    calib_calibrator_free(c);
    return rc;
}

static int partial_n(const char *json, size_t len, void *out)
{
    calib_accum *a = NULL;
    calib_error e = {0};
    calib_read_stats st;
    const int rc = calib_accum_from_json(json, len, &a, &st, &e);
    if (!rc)
        *(double *)out = (double)st.rows_read;
    else if (rc != CALIB_EDATA || e.code != rc || e.line == 0)
        fail_msg("partial state cut at %zu: status %d, line %zu: %s", len, rc,
                 e.line, e.message);
    calib_accum_free(a);
    return rc;
}

static void sweep_json(const char *what, const char *json, from_json_fn fn)
{
    const size_t len = strlen(json);
    double whole = 0, got = 0;
    assert_int_equal(fn(json, len, &whole), CALIB_OK);
    size_t end = len;
    while (end > 0 && strchr(" \t\r\n", json[end - 1]))
        end--;
    for (size_t cut = 0; cut < len; cut++) {
        const int rc = fn(json, cut, &got);
        if (cut < end && rc == CALIB_OK)
            fail_msg("%s cut at %zu of %zu read as whole", what, cut, len);
        if (cut >= end && (rc != CALIB_OK || got != whole))
            fail_msg("%s without its trailing space fails", what);
    }
    print_message("%s: %zu prefixes\n", what, len);
}

static void test_json_documents(void **state)
{
    calib_read_options o = fx_options("logits.csv");
    calib_dataset *ds = read_ok(fx_path("logits.csv"), &o);
    calib_calibrator *cal = NULL;
    assert_int_equal(calib_fit(ds, NULL, &cal, NULL), CALIB_OK);
    char *json = NULL;
    assert_int_equal(calib_calibrator_to_json(cal, &json, NULL), CALIB_OK);
    sweep_json("calibrator JSON", json, calibrator_t);
    free(json);
    calib_accum *a = NULL;
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    assert_int_equal(calib_accum_new(NULL, &a, NULL), CALIB_OK);
    assert_int_equal(calib_accum_add(a, ds, NULL), CALIB_OK);
    assert_int_equal(calib_accum_to_json(a, &st, &json, NULL), CALIB_OK);
    sweep_json("partial state", json, partial_n);
    free(json);
    calib_accum_free(a);
    calib_calibrator_free(cal);
    calib_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_format),
        cmocka_unit_test(test_json_documents),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
