/* fuzz_metrics.c — the metrics and temperature scaling, driven with fuzzed
 * numbers, against their invariants.
 *
 * Input: a 6-byte header, then values.  Header: [0] kind (mod 3: top-label,
 * logits, probabilities) | 4 float32 | 8 weights | 16 groups | 32 ragged
 * rows | 64 probability rows normalised to sum 1 | 128 labels taken raw
 * (may be out of range); [1] bins (1..200, a few larger); [2] rule (mod 5)
 * | 8 equal-mass | (objective mod 3) << 4 | 64 extra metrics | 128 tile
 * distribution rows past the thread grain when [5] is odd too; [3] rows
 * - 1 (mod 128); [4] classes - 1 (mod 8); [5] seed of the group
 * assignment.  Each value is one byte (a
 * regular grid of probabilities or logits) or, after a byte >= 0xf0, the
 * next 8 bytes as a raw double (NaN, inf, subnormals, huge); missing
 * bytes read as 0.
 *
 * What must hold: a dataset wrap refuses is EDATA/EINVAL; for one it
 * accepts, the metrics hold fuzz_check_metrics's invariants and, for
 * equal-width bins, are the same as two shards merged; a fitted
 * temperature is in its range and applying it keeps the accuracy.  Tiled
 * rows (several thousand) also give the same metrics and T at 1 and 2
 * threads; they are fitted by the NLL objective only, since the grid
 * objectives take seconds per input there under the sanitizers (the small
 * sets, which one thread takes whole anyway, exercise those).
 */
#include "fuzz.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 128
#define MAX_K 8

typedef struct input {
    const uint8_t *p;
    size_t left;
} input;

static uint8_t byte(input *in)
{
    if (in->left == 0)
        return 0;
    in->left--;
    return *in->p++;
}

/* A value on a grid (scale: 1/239 for probabilities, 1/8 for logits) or
 * a raw double. */
static double value(input *in, int prob)
{
    const uint8_t b = byte(in);
    if (b >= 0xf0) {
        uint8_t raw[8];
        double x;
        for (int i = 0; i < 8; i++)
            raw[i] = byte(in);
        memcpy(&x, raw, sizeof x);
        return x;
    }
    return prob ? b / 239.0 : (b - 120) / 8.0;
}

typedef struct data {
    calib_arrays a;
    size_t offsets[MAX_ROWS + 1];
    double scores[MAX_ROWS * MAX_K], conf[MAX_ROWS], weights[MAX_ROWS];
    float scores32[MAX_ROWS * MAX_K], conf32[MAX_ROWS];
    int32_t labels[MAX_ROWS];
    uint8_t correct[MAX_ROWS];
    uint32_t groups[MAX_ROWS];
} data;

static const char *const group_names[3] = {"a", "b", "c"};

static void normalise(double *v, size_t len)
{
    double sum = 0;
    for (size_t j = 0; j < len; j++)
        sum += v[j];
    for (size_t j = 0; sum > 0 && isfinite(sum) && j < len; j++)
        v[j] /= sum;
}

/* Row i's scores and label. */
static void distribution_row(data *d, input *in, size_t i, uint8_t f,
                             size_t *used)
{
    const int probs = d->a.kind == CALIB_PROBS;
    size_t len = d->a.k;
    if (f & 32)
        len = 1 + byte(in) % MAX_K;
    d->offsets[i] = *used;
    for (size_t j = 0; j < len; j++)
        d->scores[*used + j] = value(in, probs);
    if (probs && (f & 64))
        normalise(d->scores + *used, len);
    const uint8_t l = byte(in);
    d->labels[i] = f & 128 ? (int32_t)(int8_t)l : (int32_t)(l % len);
    *used += len;
    d->offsets[i + 1] = *used;
}

static void decode(data *d, input *in, const uint8_t *h)
{
    const uint8_t f = h[0];
    calib_arrays *a = &d->a;
    memset(a, 0, sizeof *a);
    a->kind = f % 3 == 0 ? CALIB_TOPLABEL : f % 3 == 1 ? CALIB_LOGITS
                                                       : CALIB_PROBS;
    a->n = 1 + h[3] % MAX_ROWS;
    a->k = 1 + h[4] % MAX_K;
    size_t used = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->kind == CALIB_TOPLABEL) {
            d->conf[i] = value(in, 1);
            d->correct[i] = byte(in) & 1;
        } else {
            distribution_row(d, in, i, f, &used);
        }
        d->weights[i] = f & 8 ? value(in, 1) * 4 : 1.0;
        d->groups[i] = (uint32_t)((h[5] >> (i % 4 * 2)) % 3);
    }
    for (size_t j = 0; j < used; j++)
        d->scores32[j] = (float)d->scores[j];
    for (size_t i = 0; i < a->n; i++)
        d->conf32[i] = (float)d->conf[i];
    const int f32 = (f & 4) != 0;
    a->dtype = f32 ? CALIB_F32 : CALIB_F64;
    a->offsets = a->kind != CALIB_TOPLABEL && (f & 32) ? d->offsets : NULL;
    a->scores = f32 ? (const void *)d->scores32 : d->scores;
    a->labels = d->labels;
    a->conf = f32 ? (const void *)d->conf32 : d->conf;
    a->correct = d->correct;
    a->weights = f & 8 ? d->weights : NULL;
    if (f & 16) {
        a->groups = d->groups;
        a->n_groups = 3;
        a->group_names = group_names;
    }
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

/* Whether some sum over rows may have a term of magnitude 2^80 or more
 * (a weight, or an NLL from logits ~1e24 apart): calib.h documents that
 * such terms are summed in plain floating point, so the order of threads
 * and shards shows in the last bits. */
static int huge(const calib_metrics *m)
{
    return !(m->weight < 0x1p79) ||
           (!isnan(m->nll) && !(fabs(m->nll) * m->weight < 0x1p79));
}

static int bins_of(uint8_t b)
{
    static const int more[] = {256, 1000, 4096, 0, -1, 1000001};
    return b < 200 ? b + 1 : more[(b - 200) % 6];
}

static calib_metrics *evaluate(const calib_dataset *ds,
                               const calib_eval_options *o, int threads)
{
    calib_eval_options t = *o;
    calib_metrics *m = NULL;
    t.threads = threads;
    FUZZ_ASSERT(calib_evaluate(ds, &t, &m, NULL) == CALIB_OK);
    fuzz_check_metrics(m, calib_dataset_rows(ds));
    return m;
}

/* Rows [begin, end) of a, as a dataset (ragged offsets rebased in off). */
static calib_dataset *shard(const calib_arrays *a, size_t begin, size_t end,
                            size_t *off)
{
    calib_arrays s = *a;
    calib_dataset *ds = NULL;
    const size_t esize = a->dtype == CALIB_F32 ? 4 : 8;
    size_t first = begin * a->k;
    s.n = end - begin;
    if (a->offsets) {
        first = a->offsets[begin];
        for (size_t i = begin; i <= end; i++)
            off[i - begin] = a->offsets[i] - first;
        s.offsets = off;
    }
    if (a->kind == CALIB_TOPLABEL) {
        s.conf = (const char *)a->conf + begin * esize;
        s.correct = a->correct + begin;
    } else {
        s.scores = (const char *)a->scores + first * esize;
        s.labels = a->labels + begin;
    }
    s.weights = a->weights ? a->weights + begin : NULL;
    s.groups = a->groups ? a->groups + begin : NULL;
    FUZZ_ASSERT(calib_dataset_wrap(&s, &ds, NULL) == CALIB_OK);
    return ds;
}

/* Two shards merged give what one pass gives (equal-width bins). */
static void check_shards(const calib_arrays *a, const calib_dataset *ds,
                         const calib_eval_options *o)
{
    static size_t off_lo[MAX_ROWS + 1], off_hi[MAX_ROWS + 1];
    calib_eval_options core = *o;
    calib_accum *x = NULL, *y = NULL;
    calib_metrics *whole, *merged = NULL;
    core.extra = 0;
    core.threads = 1;
    whole = evaluate(ds, &core, 1);
    const size_t h = a->n / 2;
    calib_dataset *lo = shard(a, 0, h, off_lo);
    calib_dataset *hi = shard(a, h, a->n, off_hi);
    FUZZ_ASSERT(calib_accum_new(&core, &x, NULL) == CALIB_OK);
    FUZZ_ASSERT(calib_accum_new(&core, &y, NULL) == CALIB_OK);
    FUZZ_ASSERT(calib_accum_add(x, hi, NULL) == CALIB_OK);
    FUZZ_ASSERT(calib_accum_add(y, lo, NULL) == CALIB_OK);
    FUZZ_ASSERT(calib_accum_merge(y, x, NULL) == CALIB_OK);
    FUZZ_ASSERT(calib_accum_result(y, &merged, NULL) == CALIB_OK);
    FUZZ_ASSERT(huge(whole) || fuzz_metrics_same(whole, merged));
    calib_metrics_free(whole);
    calib_metrics_free(merged);
    calib_accum_free(x);
    calib_accum_free(y);
    calib_dataset_free(lo);
    calib_dataset_free(hi);
}

static double fit_t(const calib_dataset *ds, const calib_fit_options *fo,
                    int threads, calib_calibrator **out)
{
    calib_fit_options t = *fo;
    calib_error err;
    t.eval.threads = threads;
    const int rc = calib_fit(ds, &t, out, &err);
    if (rc != CALIB_OK) {
        FUZZ_ASSERT(*out == NULL && err.message[0]);
        /* EDATA: every row has weight 0 (calib.h, calib_fit) */
        FUZZ_ASSERT(rc == CALIB_ECONVERGE || rc == CALIB_EINVAL ||
                    rc == CALIB_EDATA);
        return NAN;
    }
    const double temp = calib_calibrator_temperature(*out);
    FUZZ_ASSERT(temp >= fo->t_min && temp <= fo->t_max);
    return temp;
}

/* Temperature scaling: T in range (the same at 1 and 2 threads when the
 * rows are tiled), and the accuracy unchanged by applying it. */
static void check_temperature(const calib_dataset *ds,
                              const calib_eval_options *o, uint8_t h2,
                              int tiled, const calib_metrics *before)
{
    calib_fit_options fo;
    calib_calibrator *c1 = NULL, *c2 = NULL;
    calib_dataset *out = NULL;
    calib_fit_options_init(&fo);
    fo.objective = tiled ? CALIB_OBJECTIVE_NLL
                         : (calib_objective)((h2 >> 4) % 3);
    fo.eval = *o;
    fo.eval.extra = 0;
    /* a grid fit evaluates ~100 times, each a pass over every bin: fitted
     * on at most 32 equal-width bins, for speed.  (Equal-mass bins cost a
     * 65536-bucket histogram per evaluation, ~40 ms a fit natively
     * whatever N, and over libFuzzer's 10 s timeout instrumented; the
     * evaluations themselves are fuzzed through calib_evaluate.) */
    fo.eval.binning = CALIB_BINNING_WIDTH;
    if (fo.eval.bins > 32)
        fo.eval.bins = 32;
    const double t1 = fit_t(ds, &fo, 1, &c1);
    if (tiled) {
        const double t2 = fit_t(ds, &fo, 2, &c2);
        FUZZ_ASSERT(memcmp(&t1, &t2, sizeof t1) == 0);
    }
    if (c1 && calib_apply(c1, ds, &out, NULL) == CALIB_OK) {
        calib_metrics *after = evaluate(out, o, 1);
        FUZZ_ASSERT(memcmp(&after->accuracy, &before->accuracy,
                           sizeof after->accuracy) == 0);
        calib_metrics_free(after);
    }
    calib_dataset_free(out);
    calib_calibrator_free(c1);
    calib_calibrator_free(c2);
}

/* The NLL curve and the exported probabilities: no NaN from finite
 * input. */
static void check_curve_export(const calib_dataset *ds, double weight)
{
    static const double t[3] = {0.25, 1.0, 4.0};
    double nll[3];
    const int rc = calib_temperature_curve(ds, t, 3, nll, 1, NULL);
    FUZZ_ASSERT(rc == CALIB_OK || (rc == CALIB_EINVAL && !(weight > 0)));
    for (int i = 0; rc == CALIB_OK && i < 3; i++)
        FUZZ_ASSERT(!isnan(nll[i]) && nll[i] >= 0.0);
    const size_t len = calib_dataset_export_len(ds);
    double *p = malloc((len ? len : 1) * sizeof *p);
    FUZZ_ASSERT(p && calib_dataset_export(ds, p, len, NULL) == CALIB_OK);
    for (size_t i = 0; i < len; i++)
        FUZZ_ASSERT(p[i] >= 0.0 && p[i] <= 1.0);
    free(p);
}

/* The rows of a repeated past the distribution kernels' grain of 4096
 * rows, so that two threads really split them. */
static calib_dataset *tile(const calib_arrays *a, void **blocks)
{
    const size_t reps = 8200 / a->n + 1, n = a->n * reps;
    const size_t esize = a->dtype == CALIB_F32 ? 4 : 8;
    const size_t per = a->offsets ? a->offsets[a->n] : a->n * a->k;
    calib_arrays t = *a;
    calib_dataset *ds = NULL;
    char *scores = blocks[0] = malloc(per * reps * esize);
    int32_t *labels = blocks[1] = malloc(n * sizeof *labels);
    size_t *off = blocks[2] = malloc((n + 1) * sizeof *off);
    double *w = blocks[3] = malloc(n * sizeof *w);
    uint32_t *g = blocks[4] = malloc(n * sizeof *g);
    FUZZ_ASSERT(scores && labels && off && w && g);
    for (size_t r = 0; r < reps; r++) {
        memcpy(scores + r * per * esize, a->scores, per * esize);
        for (size_t i = 0; i < a->n; i++) {
            const size_t j = r * a->n + i;
            labels[j] = a->labels[i];
            off[j] = r * per + (a->offsets ? a->offsets[i] : i * a->k);
            w[j] = a->weights ? a->weights[i] : 1.0;
            g[j] = a->groups ? a->groups[i] : 0;
        }
    }
    off[n] = per * reps;
    t.n = n;
    t.scores = scores;
    t.labels = labels;
    t.offsets = a->offsets ? off : NULL;
    t.weights = a->weights ? w : NULL;
    t.groups = a->groups ? g : NULL;
    FUZZ_ASSERT(calib_dataset_wrap(&t, &ds, NULL) == CALIB_OK);
    return ds;
}

static void run_checks(const calib_arrays *a, const uint8_t *h)
{
    calib_dataset *ds = NULL;
    calib_error err;
    void *blocks[5] = {0};
    int rc = calib_dataset_wrap(a, &ds, &err);
    if (rc != CALIB_OK) {
        FUZZ_ASSERT((rc == CALIB_EDATA || rc == CALIB_EINVAL) && !ds);
        return;
    }
    calib_read_stats st;
    calib_dataset_stats(ds, &st);
    FUZZ_ASSERT(st.rows_read == st.rows_used + st.rows_rejected);
    calib_eval_options o;
    calib_metrics *m = NULL;
    calib_eval_options_init(&o);
    o.bins = bins_of(h[1]);
    o.rule = (calib_bin_rule)(h[2] % 5);
    o.binning = h[2] & 8 ? CALIB_BINNING_MASS : CALIB_BINNING_WIDTH;
    o.extra = h[2] & 64 ? CALIB_EXTRA_ALL : 0;
    o.threads = 1;
    const int valid = o.bins >= 1 && o.bins <= 1000000;
    if (valid && o.binning == CALIB_BINNING_WIDTH)
        check_shards(a, ds, &o);
    const int tiled = (h[2] & 128) && (h[5] & 1) && a->kind != CALIB_TOPLABEL;
    if (tiled) {
        calib_dataset_free(ds);
        ds = tile(a, blocks);
    }
    rc = calib_evaluate(ds, &o, &m, NULL);
    if (!valid) {
        FUZZ_ASSERT(rc == CALIB_EINVAL && !m);
    } else {
        FUZZ_ASSERT(rc == CALIB_OK);
        fuzz_check_metrics(m, calib_dataset_rows(ds));
        if (tiled) {
            calib_metrics *m2 = evaluate(ds, &o, 2);
            FUZZ_ASSERT(huge(m) || fuzz_metrics_same(m, m2));
            calib_metrics_free(m2);
        }
        check_temperature(ds, &o, h[2], tiled, m);
        check_curve_export(ds, m->weight);
    }
    calib_metrics_free(m);
    calib_dataset_free(ds);
    for (int i = 0; i < 5; i++)
        free(blocks[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t size)
{
    if (size < 6)
        return 0;
    static data d;
    input in = {buf + 6, size - 6};
    decode(&d, &in, buf);
    run_checks(&d.a, buf);
    return 0;
}
