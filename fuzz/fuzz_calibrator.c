/* fuzz_calibrator.c — calib_calibrator_from_json, the reader of `calib
 * fit` output files.
 *
 * Input: the JSON text (not NUL-terminated).  What it accepts must write
 * back (calib_calibrator_to_json) to JSON that reads again as the same
 * calibrator, and must apply to data without changing any prediction.
 */
#include "fuzz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Four rows of three logits, and the same rows' top-label view. */
static const double logits[12] = {2.0, 0.5, -1.0, 0.1, 0.2, 3.0,
                                  1.0, 1.0, 0.0,  -40, 40,  0.5};
static const int32_t labels[4] = {0, 2, 1, 0};
static const double conf[4] = {0.9, 0.0, 1.0, 0.37};
static const uint8_t correct[4] = {1, 0, 1, 0};

static calib_dataset *sample(int binary)
{
    calib_arrays a;
    calib_dataset *ds = NULL;
    memset(&a, 0, sizeof a);
    a.n = 4;
    if (binary) {
        a.kind = CALIB_TOPLABEL;
        a.conf = conf;
        a.correct = correct;
    } else {
        a.kind = CALIB_LOGITS;
        a.k = 3;
        a.scores = logits;
        a.labels = labels;
    }
    FUZZ_ASSERT(calib_dataset_wrap(&a, &ds, NULL) == CALIB_OK);
    return ds;
}

/* Applying c must keep every prediction: the accuracy is the same. */
static void check_apply(const calib_calibrator *c)
{
    const int binary = calib_calibrator_binary(c);
    calib_dataset *ds = sample(binary), *out = NULL;
    calib_metrics *before = NULL, *after = NULL;
    calib_eval_options o;
    calib_eval_options_init(&o);
    o.threads = 1;
    o.extra = 0;
    FUZZ_ASSERT(calib_evaluate(ds, &o, &before, NULL) == CALIB_OK);
    calib_dataset *wrong = sample(!binary);
    FUZZ_ASSERT(calib_apply(c, wrong, &out, NULL) == CALIB_EINVAL && !out);
    calib_dataset_free(wrong);
    const int rc = calib_apply(c, ds, &out, NULL);
    FUZZ_ASSERT(rc == CALIB_OK || rc == CALIB_EDATA);
    if (rc == CALIB_OK) {
        FUZZ_ASSERT(calib_evaluate(out, &o, &after, NULL) == CALIB_OK);
        fuzz_check_metrics(after, 4);
        FUZZ_ASSERT(after->accuracy == before->accuracy);
    }
    calib_metrics_free(before);
    calib_metrics_free(after);
    calib_dataset_free(out);
    calib_dataset_free(ds);
}

static void check_same(const calib_calibrator *a, const calib_calibrator *b)
{
    const double ta = calib_calibrator_temperature(a);
    const double tb = calib_calibrator_temperature(b);
    FUZZ_ASSERT(memcmp(&ta, &tb, sizeof ta) == 0);
    FUZZ_ASSERT(calib_calibrator_binary(a) == calib_calibrator_binary(b));
    FUZZ_ASSERT(calib_calibrator_objective(a) ==
                calib_calibrator_objective(b));
    FUZZ_ASSERT(calib_calibrator_iterations(a) ==
                calib_calibrator_iterations(b));
    const size_t n = calib_calibrator_diagnostic_count(a);
    FUZZ_ASSERT(n == calib_calibrator_diagnostic_count(b));
    for (size_t i = 0; i < n; i++)
        FUZZ_ASSERT(strcmp(calib_calibrator_diagnostic(a, i),
                           calib_calibrator_diagnostic(b, i)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    calib_calibrator *c = NULL, *again = NULL;
    calib_error err;
    char *json = NULL;
    const int rc = calib_calibrator_from_json((const char *)data, size, &c,
                                              &err);
    if (rc != CALIB_OK) {
        FUZZ_ASSERT(rc == CALIB_EDATA && !c && err.message[0]);
        return 0;
    }
    const double t = calib_calibrator_temperature(c);
    FUZZ_ASSERT(isfinite(t) && t > 0.0);
    FUZZ_ASSERT(calib_calibrator_to_json(c, &json, NULL) == CALIB_OK);
    if (calib_calibrator_from_json(json, strlen(json), &again, &err))
        fuzz_fail(__FILE__, __LINE__, err.message);
    check_same(c, again);
    check_apply(c);
    free(json);
    calib_calibrator_free(again);
    calib_calibrator_free(c);
    return 0;
}
