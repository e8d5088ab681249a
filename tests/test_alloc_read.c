/* test_alloc_read.c — the allocation-failure sweep over every reader.
 *
 * For each fixture format (tests/fixtures.h: CSV, TSV, logits CSV, lm-eval
 * and OpenAI JSONL, .npy mapped and copied, top-label .npy, gzip of each
 * text format and of a .npy) and for the streaming reader, the Nth counted
 * allocation fails for N = 1, 2, ... (tests/fault_alloc.h): every such run
 * must return CALIB_ENOMEM, leave *out NULL and leak nothing, or succeed
 * with exactly the rows of the fault-free run.  Linked with --wrap (see
 * the Makefile's test_alloc_% rule).
 */
#include "golden.h"
#include "internal.h"

#include "fault_alloc.h"
#include "fixtures.h"

/* A digest of everything a dataset holds: rows, values, groups, stats. */
static uint64_t digest_dataset(uint64_t h, const calib_dataset *ds)
{
    h = fa_hash_bytes(h, &ds->kind, sizeof ds->kind);
    h = fa_hash_bytes(h, &ds->n, sizeof ds->n);
    h = fa_hash_bytes(h, &ds->k, sizeof ds->k);
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->kind == CALIB_TOPLABEL) {
            const double c = calib__conf(ds, i);
            h = fa_hash_bytes(h, &c, sizeof c);
            h = fa_hash_bytes(h, &ds->correct[i], 1);
        } else {
            const size_t b = calib__row_begin(ds, i), len = calib__row_len(ds, i);
            for (size_t j = 0; j < len; j++) {
                const double s = calib__score(ds, b + j);
                h = fa_hash_bytes(h, &s, sizeof s);
            }
            h = fa_hash_bytes(h, &ds->labels[i], sizeof ds->labels[i]);
        }
        const double w = calib__weight(ds, i);
        h = fa_hash_bytes(h, &w, sizeof w);
        if (ds->groups) {
            const char *g = ds->group_names[ds->groups[i]];
            h = fa_hash_bytes(h, g, strlen(g) + 1);
        }
    }
    return fa_hash_bytes(h, &ds->stats, sizeof ds->stats);
}

static int path_read(const void *ctx, uint64_t *digest, calib_error *err)
{
    const char *name = ctx;
    const calib_read_options o = fx_options(name);
    calib_dataset *ds = (calib_dataset *)1;
    const int rc = calib_read(fx_path(name), &o, &ds, err);
    FA_OUT_NULL(rc, ds);
    if (!rc)
        *digest = digest_dataset(FA_SEED, ds);
    calib_dataset_free(ds);
    return rc;
}

/* The streaming reader, two rows a chunk, with its group table. */
static int path_stream(const void *ctx, uint64_t *digest, calib_error *err)
{
    const char *name = ctx;
    calib_read_options o = fx_options(name);
    o.chunk_rows = 2;
    calib_reader *r = (calib_reader *)1;
    int rc = calib_reader_open(fx_path(name), &o, &r, err);
    FA_OUT_NULL(rc, r);
    uint64_t h = FA_SEED;
    const calib_dataset *chunk = NULL;
    while (!rc && !(rc = calib_reader_next(r, &chunk, err)) && chunk)
        h = digest_dataset(h, chunk);
    if (!rc) {
        for (size_t i = 0; i < calib_reader_group_count(r); i++) {
            const char *g = calib_reader_group_name(r, i);
            h = fa_hash_bytes(h, g, strlen(g) + 1);
        }
        calib_read_stats st;
        calib_reader_stats(r, &st);
        *digest = fa_hash_bytes(h, &st, sizeof st);
    }
    calib_reader_close(r);
    return rc;
}

/* Reading with skip_bad_rows: a file with a bad row in the middle. */
static int path_skip(const void *ctx, uint64_t *digest, calib_error *err)
{
    (void)ctx;
    calib_read_options o;
    calib_read_options_init(&o);
    o.skip_bad_rows = 1;
    calib_dataset *ds = (calib_dataset *)1;
    const int rc = calib_read(fx_path("bad.csv"), &o, &ds, err);
    FA_OUT_NULL(rc, ds);
    if (!rc)
        *digest = digest_dataset(FA_SEED, ds);
    calib_dataset_free(ds);
    return rc;
}

static const char *const READ_FILES[] = {
    "top.csv", "top.csv.gz", "top.tsv", "top.tsv.gz", "logits.csv",
    "logits.csv.gz", "samples_fx_2024-01-01.jsonl",
    "samples_fx_2024-01-01.jsonl.gz", "openai.jsonl", "openai.jsonl.gz",
    "logits_f8.npy", "logits_f8.npy.gz", "logits_f4be.npy", "conf.npy"};
#define N_READ (sizeof READ_FILES / sizeof READ_FILES[0])

static void report(const char *what, const char *name, fa_stats st)
{
    print_message("%-8s %-34s %4lu events, %4lu faults, %3lu recovered\n",
                  what, name, st.events, st.steps, st.recovered);
}

static void test_read_every_format(void **state)
{
    for (size_t f = 0; f < N_READ; f++)
        report("read", READ_FILES[f],
               fa_sweep(READ_FILES[f], path_read, READ_FILES[f]));
}

static void test_stream_every_format(void **state)
{
    for (size_t f = 0; f < N_READ; f++)
        report("stream", READ_FILES[f],
               fa_sweep(READ_FILES[f], path_stream, READ_FILES[f]));
}

static void test_skip_bad_rows(void **state)
{
    static const char bad[] = "confidence,correct\n0.5,1\n0.25,x\n0.75,0\n"
                              "1.5,1\n0.125,1\n";
    fx_write("bad.csv", bad, sizeof bad - 1);
    report("read", "bad.csv (skip)", fa_sweep("bad.csv", path_skip, NULL));
}

int main(void)
{
    fa_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_every_format),
        cmocka_unit_test(test_stream_every_format),
        cmocka_unit_test(test_skip_bad_rows),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
