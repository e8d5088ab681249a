/* fuzz_partial.c — calib_accum_from_json, the reader of partial states
 * (`calib eval --partial`), then merge and result.
 *
 * Input: the JSON text (not NUL-terminated).  A state it accepts must
 * write back to the same text after one round trip, merge with a copy of
 * itself, and give metrics that hold their invariants (its groups holding
 * no more rows than the whole): the state of all its rows twice gives the
 * same means as the state once.
 */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

/* to_json of a state read from `json`; NULL if it does not read. */
static char *round_trip(const char *json, size_t len, calib_accum **out)
{
    calib_read_stats read;
    calib_error err;
    char *text = NULL;
    if (calib_accum_from_json(json, len, out, &read, &err) != CALIB_OK) {
        FUZZ_ASSERT(*out == NULL && err.code == CALIB_EDATA &&
                    err.message[0]);
        return NULL;
    }
    FUZZ_ASSERT(read.rows_read == read.rows_used + read.rows_rejected);
    FUZZ_ASSERT(calib_accum_to_json(*out, &read, &text, NULL) == CALIB_OK);
    return text;
}

static void same_means(const calib_metrics *a, const calib_metrics *b)
{
    FUZZ_ASSERT(a->n * 2 == b->n && a->n_bins == b->n_bins);
    const calib_metric_id ids[] = {CALIB_M_ACCURACY, CALIB_M_MEAN_CONFIDENCE,
                                   CALIB_M_ECE, CALIB_M_MCE, CALIB_M_RMSCE,
                                   CALIB_M_NLL, CALIB_M_BRIER};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const double x = calib_metric_value(a, ids[i]);
        const double y = calib_metric_value(b, ids[i]);
        FUZZ_ASSERT(memcmp(&x, &y, sizeof x) == 0);
    }
}

/* The metrics of a, and of a merged with a copy of itself. */
static void check_result(calib_accum *a, const char *json)
{
    calib_accum *twin = NULL;
    calib_metrics *once = NULL, *twice = NULL;
    const int rc = calib_accum_result(a, &once, NULL);
    FUZZ_ASSERT(rc == CALIB_OK || (rc == CALIB_EDATA && !once));
    FUZZ_ASSERT(calib_accum_from_json(json, strlen(json), &twin, NULL,
                                      NULL) == CALIB_OK);
    FUZZ_ASSERT(calib_accum_merge(a, twin, NULL) == CALIB_OK);
    if (rc == CALIB_OK) {
        size_t grouped = 0;
        for (size_t g = 0; g < once->n_groups; g++)
            grouped += once->groups[g]->n;
        FUZZ_ASSERT(grouped <= once->n); /* a group's rows are rows */
        fuzz_check_metrics(once, once->n);
        FUZZ_ASSERT(calib_accum_result(a, &twice, NULL) == CALIB_OK);
        fuzz_check_metrics(twice, twice->n);
        same_means(once, twice);
    }
    calib_metrics_free(once);
    calib_metrics_free(twice);
    calib_accum_free(twin);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    calib_accum *a = NULL, *b = NULL;
    char *first = round_trip((const char *)data, size, &a);
    if (first) {
        char *second = round_trip(first, strlen(first), &b);
        FUZZ_ASSERT(second && strcmp(first, second) == 0);
        check_result(a, first);
        free(second);
    }
    free(first);
    calib_accum_free(a);
    calib_accum_free(b);
    return 0;
}
