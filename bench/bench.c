/* bench.c — times libcalib on the benchmark's inputs, inside one process.
 *
 *   calib-bench width  DIR          equal-width metrics on 10^7 top-label rows,
 *                                   and the streaming bound for as many bytes
 *   calib-bench mass   DIR          equal-mass metrics on the same rows
 *   calib-bench nll    DIR          NLL + Brier (all metrics) on 10^6 x 10 logits
 *   calib-bench csv    FILE         calib_read of a CSV (one thread)
 *   calib-bench fit    LOGITS LABELS  temperature fit, objective NLL
 *
 * Each prints one JSON object on stdout: {"mode": ..., "rows": [{"impl",
 * "best", "median", "reps", "values": {...}}, ...]}, which bench/run.sh
 * turns into the table.  Inputs are read into memory before any clock
 * starts, so process start-up and disk are never timed.  Every timing is
 * the best of several repetitions after one warm-up run; how many depends
 * on how long one run takes (at least MIN_REPS, at most MAX_REPS, about
 * BUDGET seconds in all).
 *
 * Only the public API (calib.h) is used: the arrays are described with
 * calib_arrays and wrapped, as a user holding numpy buffers would do.
 */
#include <calib.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MIN_REPS 3
#define MAX_REPS 40
#define BUDGET 3.0

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("calib-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void die_calib(const char *what, int st, const calib_error *err)
{
    char buf[1200];
    calib_error_format(err, buf, sizeof buf);
    die("%s: %s (%s)", what, calib_strerror(st), buf);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* .npy loading: the whole array into an aligned buffer                */
/* ------------------------------------------------------------------ */

typedef struct npy {
    void *data;
    size_t bytes;
    size_t n, k;          /* shape (n,) has k = 0 */
    char descr[16];       /* "<f4", "|u1", "<i8", ... */
} npy;

static void npy_parse_header(const char *h, npy *a, const char *path)
{
    const char *d = strstr(h, "'descr'");
    const char *f = strstr(h, "'fortran_order'");
    const char *s = strstr(h, "'shape'");
    if (!d || !f || !s)
        die("%s: not a .npy header I understand", path);
    d = strchr(d + 7, '\'');
    if (!d || sscanf(d + 1, "%15[^']", a->descr) != 1)
        die("%s: bad descr", path);
    if (strstr(f, "True") && strstr(f, "True") < s)
        die("%s: fortran order is not supported", path);
    s = strchr(s, '(');
    if (!s)
        die("%s: bad shape", path);
    unsigned long long n = 0, k = 0;
    int got = sscanf(s, "(%llu, %llu", &n, &k);
    if (got < 1)
        die("%s: bad shape", path);
    a->n = (size_t)n;
    a->k = got == 2 ? (size_t)k : 0;
}

static void npy_load(const char *path, npy *a)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        die("%s: %s", path, strerror(errno));
    unsigned char pre[12];
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        die("%s: not a .npy file", path);
    size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, fp) != 2)
            die("%s: short header", path);
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    char *h = malloc(hlen + 1);
    if (!h || fread(h, 1, hlen, fp) != hlen)
        die("%s: short header", path);
    h[hlen] = '\0';
    memset(a, 0, sizeof *a);
    npy_parse_header(h, a, path);
    free(h);
    const size_t item = (size_t)atoi(a->descr + 2);
    a->bytes = a->n * (a->k ? a->k : 1) * item;
    a->data = aligned_alloc(64, (a->bytes + 63) / 64 * 64);
    if (!a->data)
        die("%s: out of memory", path);
    if (fread(a->data, 1, a->bytes, fp) != a->bytes)
        die("%s: short data", path);
    fclose(fp);
}

static void npy_expect(const npy *a, const char *descr, const char *path)
{
    if (strcmp(a->descr, descr) != 0)
        die("%s: dtype %s, expected %s", path, a->descr, descr);
}

/* ------------------------------------------------------------------ */
/* Timing                                                              */
/* ------------------------------------------------------------------ */

typedef void (*work_fn)(void *ctx);

typedef struct timing {
    double best, median;
    int reps;
} timing;

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* One warm-up run, then reps sized to the budget; best and median. */
static timing time_work(work_fn f, void *ctx, double budget)
{
    double t0 = now();
    f(ctx);
    const double first = now() - t0;
    int reps = first > 0 ? (int)(budget / first) : MAX_REPS;
    reps = reps < MIN_REPS ? MIN_REPS : reps > MAX_REPS ? MAX_REPS : reps;
    double ts[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        t0 = now();
        f(ctx);
        ts[r] = now() - t0;
    }
    qsort(ts, (size_t)reps, sizeof ts[0], cmp_double);
    timing t = {ts[0], ts[reps / 2], reps};
    return t;
}

/* ------------------------------------------------------------------ */
/* JSON output                                                         */
/* ------------------------------------------------------------------ */

static int n_rows_out;

static void json_begin(const char *mode)
{
    printf("{\"mode\": \"%s\", \"version\": \"%s\", \"rows\": [", mode,
           calib_version());
}

/* Starts a row; values follow as json_value() calls, then json_row_end(). */
static void json_row(const char *impl, timing t)
{
    printf("%s\n {\"impl\": \"%s\", \"best\": %.9g, \"median\": %.9g, "
           "\"reps\": %d, \"values\": {",
           n_rows_out++ ? "," : "", impl, t.best, t.median, t.reps);
}

static int n_values_out;

static void json_value(const char *key, double v)
{
    if (v != v)
        printf("%s\"%s\": null", n_values_out++ ? ", " : "", key);
    else
        printf("%s\"%s\": %.17g", n_values_out++ ? ", " : "", key, v);
}

static void json_row_end(void)
{
    printf("}}");
    n_values_out = 0;
}

static void json_end(void)
{
    printf("\n]}\n");
}

/* ------------------------------------------------------------------ */
/* Wrap + evaluate                                                     */
/* ------------------------------------------------------------------ */

typedef struct eval_ctx {
    const calib_arrays *arrays;
    calib_eval_options opt;
    calib_dataset *ds;        /* for evaluate-only runs */
    calib_metrics *last;
} eval_ctx;

static void keep_metrics(eval_ctx *c, calib_metrics *m)
{
    calib_metrics_free(c->last);
    c->last = m;
}

static void run_wrap_eval(void *p)
{
    eval_ctx *c = p;
    calib_error err = {0};
    calib_dataset *ds = NULL;
    calib_metrics *m = NULL;
    int st = calib_dataset_wrap(c->arrays, &ds, &err);
    if (st)
        die_calib("calib_dataset_wrap", st, &err);
    st = calib_evaluate(ds, &c->opt, &m, &err);
    if (st)
        die_calib("calib_evaluate", st, &err);
    calib_dataset_free(ds);
    keep_metrics(c, m);
}

static void run_eval_arrays(void *p)
{
    eval_ctx *c = p;
    calib_error err = {0};
    calib_metrics *m = NULL;
    const int st = calib_evaluate_arrays(c->arrays, &c->opt, &m, NULL, &err);
    if (st)
        die_calib("calib_evaluate_arrays", st, &err);
    keep_metrics(c, m);
}

static void run_eval(void *p)
{
    eval_ctx *c = p;
    calib_error err = {0};
    calib_metrics *m = NULL;
    const int st = calib_evaluate(c->ds, &c->opt, &m, &err);
    if (st)
        die_calib("calib_evaluate", st, &err);
    keep_metrics(c, m);
}

static void metric_values(const calib_metrics *m)
{
    json_value("n", (double)m->n);
    json_value("accuracy", m->accuracy);
    json_value("mean_confidence", m->mean_confidence);
    json_value("ece", m->ece);
    json_value("mce", m->mce);
    json_value("rmsce", m->rmsce);
    json_value("n_bins", (double)m->n_bins);
    json_value("nll", m->nll);
    json_value("brier", m->brier);
}

/* Times the one call that checks and evaluates caller arrays
 * (calib_evaluate_arrays: one pass over the rows under equal-width bins;
 * also without NLL and Brier, the metrics the references compute),
 * wrap+evaluate, and evaluate alone, for each thread count. */
static void bench_eval(const calib_arrays *a, calib_binning binning,
                       const char *label)
{
    static const int threads[2] = {2, 1};
    for (int i = 0; i < 2; i++) {
        eval_ctx c = {.arrays = a};
        calib_eval_options_init(&c.opt);
        c.opt.bins = 15;
        c.opt.binning = binning;
        c.opt.threads = threads[i];
        c.opt.extra = 0; /* the binned core, and NLL/Brier */
        char name[160];

        timing t;
        if (binning == CALIB_BINNING_WIDTH && a->kind == CALIB_TOPLABEL) {
            /* the binned metrics alone: what the references compute */
            c.opt.scores = 0;
            t = time_work(run_eval_arrays, &c, BUDGET);
            snprintf(name, sizeof name,
                     "calib %s, binned metrics only (no scores; check+evaluate "
                     "in one call, threads=%d)", label, threads[i]);
            json_row(name, t);
            metric_values(c.last);
            json_row_end();
            c.opt.scores = 1;
        }
        if (binning == CALIB_BINNING_WIDTH) {
            t = time_work(run_eval_arrays, &c, BUDGET);
            snprintf(name, sizeof name,
                     "calib %s (check+evaluate in one call, threads=%d)",
                     label, threads[i]);
            json_row(name, t);
            metric_values(c.last);
            json_row_end();
        }

        t = time_work(run_wrap_eval, &c, BUDGET);
        snprintf(name, sizeof name, "calib %s (wrap+evaluate, threads=%d)",
                 label, threads[i]);
        json_row(name, t);
        metric_values(c.last);
        json_row_end();

        calib_error err = {0};
        const int st = calib_dataset_wrap(a, &c.ds, &err);
        if (st)
            die_calib("calib_dataset_wrap", st, &err);
        t = time_work(run_eval, &c, BUDGET);
        snprintf(name, sizeof name, "calib %s (evaluate only, threads=%d)",
                 label, threads[i]);
        json_row(name, t);
        metric_values(c.last);
        json_row_end();
        calib_dataset_free(c.ds);
        calib_metrics_free(c.last);
    }
}

/* ------------------------------------------------------------------ */
/* The streaming bound: read every byte once, as uint64 words          */
/* ------------------------------------------------------------------ */

typedef struct span {
    const unsigned char *p;
    size_t len;
} span;

typedef struct stream_job {
    span parts[2];
    uint64_t sum;
} stream_job;

static volatile uint64_t stream_sink;

static uint64_t sum_words(const unsigned char *p, size_t len)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, w;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        memcpy(&w, p + i, 8);
        s0 += w;
        memcpy(&w, p + i + 8, 8);
        s1 += w;
        memcpy(&w, p + i + 16, 8);
        s2 += w;
        memcpy(&w, p + i + 24, 8);
        s3 += w;
    }
    for (; i < len; i++)
        s0 += p[i];
    return s0 + s1 + s2 + s3;
}

static void *stream_thread(void *p)
{
    stream_job *j = p;
    j->sum = sum_words(j->parts[0].p, j->parts[0].len) +
             sum_words(j->parts[1].p, j->parts[1].len);
    return NULL;
}

typedef struct stream_ctx {
    span in[2];
    int threads;
} stream_ctx;

/* Thread t reads the t-th slice of each input (64-byte aligned slices). */
static void run_stream(void *p)
{
    const stream_ctx *c = p;
    stream_job jobs[8];
    pthread_t tid[8];
    for (int t = 0; t < c->threads; t++) {
        for (int b = 0; b < 2; b++) {
            const size_t len = c->in[b].len;
            size_t lo = len * (size_t)t / (size_t)c->threads / 64 * 64;
            size_t hi = t + 1 == c->threads
                            ? len
                            : len * (size_t)(t + 1) / (size_t)c->threads / 64 * 64;
            jobs[t].parts[b].p = c->in[b].p + lo;
            jobs[t].parts[b].len = hi - lo;
        }
    }
    for (int t = 1; t < c->threads; t++)
        if (pthread_create(&tid[t], NULL, stream_thread, &jobs[t]) != 0)
            die("pthread_create failed");
    stream_thread(&jobs[0]);
    uint64_t s = jobs[0].sum;
    for (int t = 1; t < c->threads; t++) {
        pthread_join(tid[t], NULL);
        s += jobs[t].sum;
    }
    stream_sink = s;
}

/* The memory buffer is this many times the inputs: no cache holds it. */
#define STREAM_SCALE 8

/* Two bounds for reading the inputs' bytes: re-reading the inputs
 * themselves, again and again as the other rows do (which caches partly
 * serve: on the project's machine 78-87 GB/s with two threads, where a
 * buffer no cache holds streams at 46-51 GB/s), and the bound from
 * memory, the issue's: a buffer STREAM_SCALE times their size read the
 * same way, its time scaled to their bytes. */
static void bench_stream(const npy *a, const npy *b)
{
    const size_t bytes = a->bytes + b->bytes, big = STREAM_SCALE * bytes;
    unsigned char *buf = malloc(big);
    if (!buf)
        die("out of memory (%zu bytes for the streaming bound)", big);
    memset(buf, 1, big);
    for (int threads = 2; threads >= 1; threads--) {
        stream_ctx c = {{{buf, big / 2}, {buf + big / 2, big - big / 2}}, threads};
        timing t = time_work(run_stream, &c, BUDGET);
        t.best /= STREAM_SCALE;
        t.median /= STREAM_SCALE;
        char name[128];
        snprintf(name, sizeof name, "streaming bound from memory (%zu bytes' "
                 "time, read from %zu, threads=%d)", bytes, big, threads);
        json_row(name, t);
        json_value("bytes", (double)bytes);
        json_value("gb_per_s", (double)bytes / t.best / 1e9);
        json_row_end();
    }
    free(buf);
    for (int threads = 2; threads >= 1; threads--) {
        stream_ctx c = {{{a->data, a->bytes}, {b->data, b->bytes}}, threads};
        const timing t = time_work(run_stream, &c, BUDGET);
        char name[128];
        snprintf(name, sizeof name, "streaming, re-reading the inputs (%zu "
                 "bytes, partly cached, threads=%d)", bytes, threads);
        json_row(name, t);
        json_value("bytes", (double)bytes);
        json_value("gb_per_s", (double)bytes / t.best / 1e9);
        json_row_end();
    }
}

/* ------------------------------------------------------------------ */
/* Modes                                                               */
/* ------------------------------------------------------------------ */

static char *path_in(const char *dir, const char *name)
{
    const size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (!p)
        die("out of memory");
    snprintf(p, len, "%s/%s", dir, name);
    return p;
}

static void load_top(const char *dir, npy *conf, npy *correct)
{
    char *pc = path_in(dir, "top_conf.npy"), *pk = path_in(dir, "top_correct.npy");
    npy_load(pc, conf);
    npy_expect(conf, "<f4", pc);
    npy_load(pk, correct);
    if (strcmp(correct->descr, "|u1") != 0 && strcmp(correct->descr, "|b1") != 0)
        die("%s: dtype %s, expected |u1 or |b1", pk, correct->descr);
    if (correct->n != conf->n)
        die("%s and %s differ in length", pc, pk);
    free(pc);
    free(pk);
}

static calib_arrays top_arrays(const npy *conf, const npy *correct)
{
    calib_arrays a;
    memset(&a, 0, sizeof a);
    a.kind = CALIB_TOPLABEL;
    a.n = conf->n;
    a.dtype = CALIB_F32;
    a.conf = conf->data;
    a.correct = correct->data;
    return a;
}

static int mode_width(const char *dir)
{
    npy conf, correct;
    load_top(dir, &conf, &correct);
    const calib_arrays a = top_arrays(&conf, &correct);
    json_begin("width");
    bench_eval(&a, CALIB_BINNING_WIDTH, "equal-width");
    bench_stream(&conf, &correct);
    json_end();
    free(conf.data);
    free(correct.data);
    return 0;
}

static int mode_mass(const char *dir)
{
    npy conf, correct;
    load_top(dir, &conf, &correct);
    const calib_arrays a = top_arrays(&conf, &correct);
    json_begin("mass");
    bench_eval(&a, CALIB_BINNING_MASS, "equal-mass");
    json_end();
    free(conf.data);
    free(correct.data);
    return 0;
}

/* Logits (N,K) float32 and labels (N,) int64 or int32; labels end int32
 * (calib_arrays takes int32), converted once before any clock starts. */
static calib_arrays load_logits(const char *zpath, const char *ypath, npy *z,
                                npy *y, int32_t **labels)
{
    npy_load(zpath, z);
    npy_expect(z, "<f4", zpath);
    if (z->k == 0)
        die("%s: expected a 2-D array", zpath);
    npy_load(ypath, y);
    if (y->n != z->n)
        die("%s: %zu labels for %zu rows", ypath, y->n, z->n);
    *labels = malloc(y->n * sizeof **labels);
    if (!*labels)
        die("out of memory");
    if (strcmp(y->descr, "<i8") == 0) {
        const int64_t *src = y->data;
        for (size_t i = 0; i < y->n; i++)
            (*labels)[i] = (int32_t)src[i];
    } else if (strcmp(y->descr, "<i4") == 0) {
        memcpy(*labels, y->data, y->n * sizeof **labels);
    } else {
        die("%s: dtype %s, expected <i8 or <i4", ypath, y->descr);
    }
    calib_arrays a;
    memset(&a, 0, sizeof a);
    a.kind = CALIB_LOGITS;
    a.n = z->n;
    a.k = z->k;
    a.dtype = CALIB_F32;
    a.scores = z->data;
    a.labels = *labels;
    return a;
}

static int mode_nll(const char *dir)
{
    char *zp = path_in(dir, "logits_1000000x10.npy");
    char *yp = path_in(dir, "labels_1000000x10.npy");
    npy z, y;
    int32_t *labels;
    const calib_arrays a = load_logits(zp, yp, &z, &y, &labels);
    json_begin("nll");
    bench_eval(&a, CALIB_BINNING_WIDTH, "all metrics");
    json_end();
    free(zp);
    free(yp);
    free(z.data);
    free(y.data);
    free(labels);
    return 0;
}

typedef struct read_ctx {
    const char *path;
    calib_read_options opt;
    calib_read_stats stats;
    size_t k;
} read_ctx;

static void run_read(void *p)
{
    read_ctx *c = p;
    calib_error err = {0};
    calib_dataset *ds = NULL;
    const int st = calib_read(c->path, &c->opt, &ds, &err);
    if (st)
        die_calib("calib_read", st, &err);
    calib_dataset_stats(ds, &c->stats);
    c->k = calib_dataset_classes(ds);
    calib_dataset_free(ds);
}

static int mode_csv(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        die("%s: %s", path, strerror(errno));
    read_ctx c = {.path = path};
    calib_read_options_init(&c.opt);
    json_begin("csv");
    const timing t = time_work(run_read, &c, 2 * BUDGET);
    const char *base = strrchr(path, '/');
    char name[300];
    snprintf(name, sizeof name, "calib calib_read %s", base ? base + 1 : path);
    json_row(name, t);
    json_value("bytes", (double)sb.st_size);
    json_value("rows", (double)c.stats.rows_used);
    json_value("classes", (double)c.k);
    json_value("mb_per_s", (double)sb.st_size / 1e6 / t.best);
    json_row_end();
    json_end();
    return 0;
}

typedef struct fit_ctx {
    const calib_arrays *arrays;
    calib_dataset *ds;           /* for fit-only runs */
    calib_fit_options opt;
    calib_calibrator *last;
} fit_ctx;

static void fit_once(fit_ctx *c, const calib_dataset *ds)
{
    calib_error err = {0};
    calib_calibrator *cal = NULL;
    const int st = calib_fit(ds, &c->opt, &cal, &err);
    if (st)
        die_calib("calib_fit", st, &err);
    calib_calibrator_free(c->last);
    c->last = cal;
}

static void run_wrap_fit(void *p)
{
    fit_ctx *c = p;
    calib_error err = {0};
    calib_dataset *ds = NULL;
    const int st = calib_dataset_wrap(c->arrays, &ds, &err);
    if (st)
        die_calib("calib_dataset_wrap", st, &err);
    fit_once(c, ds);
    calib_dataset_free(ds);
}

static void run_fit(void *p)
{
    fit_ctx *c = p;
    fit_once(c, c->ds);
}

static void fit_values(const calib_calibrator *cal)
{
    json_value("T", calib_calibrator_temperature(cal));
    json_value("iterations", (double)calib_calibrator_iterations(cal));
    json_value("objective", calib_calibrator_objective_value(cal));
    json_value("diagnostics", (double)calib_calibrator_diagnostic_count(cal));
}

static int mode_fit(const char *zpath, const char *ypath)
{
    npy z, y;
    int32_t *labels;
    const calib_arrays a = load_logits(zpath, ypath, &z, &y, &labels);
    json_begin("fit");
    static const int threads[2] = {2, 1};
    for (int i = 0; i < 2; i++) {
        fit_ctx c = {.arrays = &a};
        calib_fit_options_init(&c.opt);
        c.opt.method = CALIB_METHOD_TEMPERATURE;
        c.opt.objective = CALIB_OBJECTIVE_NLL;
        c.opt.eval.threads = threads[i];
        char name[96];

        timing t = time_work(run_wrap_fit, &c, BUDGET);
        snprintf(name, sizeof name, "calib_fit (wrap+fit, threads=%d)", threads[i]);
        json_row(name, t);
        fit_values(c.last);
        json_row_end();

        calib_error err = {0};
        const int st = calib_dataset_wrap(&a, &c.ds, &err);
        if (st)
            die_calib("calib_dataset_wrap", st, &err);
        t = time_work(run_fit, &c, BUDGET);
        snprintf(name, sizeof name, "calib_fit (fit only, threads=%d)", threads[i]);
        json_row(name, t);
        fit_values(c.last);
        json_row_end();
        calib_dataset_free(c.ds);
        calib_calibrator_free(c.last);
    }
    json_end();
    free(z.data);
    free(y.data);
    free(labels);
    return 0;
}

static int usage(void)
{
    fputs("usage: calib-bench width|mass|nll DIR | csv FILE | fit LOGITS.npy LABELS.npy\n",
          stderr);
    return 64;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "width") == 0)
        return mode_width(argv[2]);
    if (argc == 3 && strcmp(argv[1], "mass") == 0)
        return mode_mass(argv[2]);
    if (argc == 3 && strcmp(argv[1], "nll") == 0)
        return mode_nll(argv[2]);
    if (argc == 3 && strcmp(argv[1], "csv") == 0)
        return mode_csv(argv[2]);
    if (argc == 4 && strcmp(argv[1], "fit") == 0)
        return mode_fit(argv[2], argv[3]);
    return usage();
}
