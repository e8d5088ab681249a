/* fuzz_common.c — in-memory files, the twice-read check and the metric
 * invariants that every fuzz target shares (see fuzz.h). */
#define _GNU_SOURCE
#include "fuzz.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
    abort();
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        const ssize_t w = write(fd, p, n);
        FUZZ_ASSERT(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

/* Writes data through gzip (one member, zlib's default level). */
static void write_gzip(int fd, const uint8_t *data, size_t size)
{
    z_stream z;
    uint8_t out[16384];
    memset(&z, 0, sizeof z);
    FUZZ_ASSERT(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8,
                             Z_DEFAULT_STRATEGY) == Z_OK);
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    int zr;
    do {
        z.next_out = out;
        z.avail_out = sizeof out;
        zr = deflate(&z, Z_FINISH);
        FUZZ_ASSERT(zr == Z_OK || zr == Z_STREAM_END || zr == Z_BUF_ERROR);
        write_all(fd, out, sizeof out - z.avail_out);
    } while (zr != Z_STREAM_END);
    deflateEnd(&z);
}

void fuzz_file_open(fuzz_file *f, const uint8_t *data, size_t size, int gzip)
{
    f->fd = memfd_create("calib-fuzz", MFD_CLOEXEC);
    FUZZ_ASSERT(f->fd >= 0);
    if (gzip)
        write_gzip(f->fd, data, size);
    else
        write_all(f->fd, data, size);
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
}

/* A directory of symlinks "in<fd><ext>" -> /proc/self/fd/<fd>, made once
 * per descriptor number and removed at exit, so that a reader can see an
 * extension on an in-memory file. */
static char link_dir[64];
static char links[64][96];
static size_t n_links;

static void remove_links(void)
{
    for (size_t i = 0; i < n_links; i++)
        unlink(links[i]);
    rmdir(link_dir);
}

void fuzz_file_name(fuzz_file *f, const char *ext)
{
    char path[96], target[64];
    if (!link_dir[0]) {
        strcpy(link_dir, "/tmp/calib-fuzz-XXXXXX");
        FUZZ_ASSERT(mkdtemp(link_dir) != NULL);
        atexit(remove_links);
    }
    snprintf(path, sizeof path, "%s/in%d%s", link_dir, f->fd, ext);
    snprintf(target, sizeof target, "/proc/self/fd/%d", f->fd);
    if (symlink(target, path) == 0 && n_links < 64)
        strcpy(links[n_links++], path);
    snprintf(f->path, sizeof f->path, "%s", path);
}

void fuzz_file_close(fuzz_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Metric invariants                                                   */
/* ------------------------------------------------------------------ */

/* Slack for a sum of rounded terms compared with one of its bounds. */
#define TOL 1e-12

static int in01(double x) { return x >= 0.0 && x <= 1.0; }

static void check_bins(const calib_metrics *m, size_t n)
{
    size_t total = 0;
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *bin = &m->bins[b];
        FUZZ_ASSERT(bin->lower <= bin->upper);
        total += bin->count;
        FUZZ_ASSERT(bin->count > 0 || bin->weight == 0.0);
        if (!(bin->weight > 0.0))
            continue; /* empty, or rows of weight 0 only: no mean */
        /* the superaccumulator drops parts below 2^-160 of each w p and
         * w: with weights that small a mean may stray that much further */
        const double tol = TOL + (double)bin->count * 0x1p-159 / bin->weight;
        FUZZ_ASSERT(in01(bin->accuracy));
        FUZZ_ASSERT(bin->mean_confidence >= bin->lower - tol &&
                    bin->mean_confidence <= bin->upper + tol);
    }
    FUZZ_ASSERT(total <= n);
    FUZZ_ASSERT(m->ece_n <= m->n);
}

void fuzz_check_metrics(const calib_metrics *m, size_t n)
{
    FUZZ_ASSERT(m->n == n);
    FUZZ_ASSERT(m->n_bins >= 1);
    check_bins(m, n);
    if (!(m->weight > 0.0))
        return; /* every weight 0: no mean is defined */
    FUZZ_ASSERT(in01(m->accuracy));
    FUZZ_ASSERT(in01(m->mean_confidence));
    /* the ECE divides by the weight of its n: every row, but under
     * hollance only the binned ones (p = 0 is in no bin and not in n);
     * when that is 0, the ECE is 0/0 */
    double ece_w = m->weight;
    if (m->rule == CALIB_RULE_HOLLANCE && m->binning == CALIB_BINNING_WIDTH) {
        ece_w = 0.0;
        for (size_t b = 0; b < m->n_bins; b++)
            ece_w += m->bins[b].weight;
    }
    if (m->ece_n > 0 && !(ece_w > 0.0))
        FUZZ_ASSERT(isnan(m->ece) && isnan(m->mce) && isnan(m->rmsce));
    else if (m->ece_n > 0) {
        FUZZ_ASSERT(in01(m->ece) && in01(m->mce) && in01(m->rmsce));
        FUZZ_ASSERT(m->ece <= m->rmsce * (1 + TOL) + TOL);
        FUZZ_ASSERT(m->rmsce <= m->mce * (1 + TOL) + TOL);
    }
    const double brier_max = m->brier_kind == CALIB_BRIER_TOPLABEL ? 1 : 2;
    FUZZ_ASSERT(m->brier >= 0.0 && m->brier <= brier_max + TOL);
    if (m->brier_kind == CALIB_BRIER_MULTICLASS)
        FUZZ_ASSERT(!isnan(m->nll) && m->nll >= 0.0);
    else
        FUZZ_ASSERT(isnan(m->nll));
    for (size_t g = 0; g < m->n_groups; g++)
        fuzz_check_metrics(m->groups[g], m->groups[g]->n);
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

int fuzz_metrics_same(const calib_metrics *a, const calib_metrics *b)
{
    const double sa[] = {a->accuracy, a->mean_confidence, a->ece, a->mce,
                         a->rmsce, a->nll, a->brier, a->weight};
    const double sb[] = {b->accuracy, b->mean_confidence, b->ece, b->mce,
                         b->rmsce, b->nll, b->brier, b->weight};
    for (size_t i = 0; i < sizeof sa / sizeof sa[0]; i++)
        if (!same_double(sa[i], sb[i]))
            return 0;
    for (int id = 0; id < CALIB_M_COUNT; id++)
        if (!same_double(calib_metric_value(a, (calib_metric_id)id),
                         calib_metric_value(b, (calib_metric_id)id)))
            return 0;
    if (a->n != b->n || a->n_bins != b->n_bins || a->ece_n != b->ece_n)
        return 0;
    for (size_t i = 0; i < a->n_bins; i++) {
        const calib_bin *x = &a->bins[i], *y = &b->bins[i];
        if (x->count != y->count || !same_double(x->weight, y->weight) ||
            !same_double(x->mean_confidence, y->mean_confidence) ||
            !same_double(x->accuracy, y->accuracy) ||
            !same_double(x->lower, y->lower) ||
            !same_double(x->upper, y->upper))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Reading twice                                                       */
/* ------------------------------------------------------------------ */

static int same_stats(const calib_read_stats *a, const calib_read_stats *b)
{
    return a->rows_read == b->rows_read && a->rows_used == b->rows_used &&
           a->rows_rejected == b->rows_rejected &&
           a->values_clamped == b->values_clamped &&
           a->rows_sum_off == b->rows_sum_off &&
           a->rows_disagree == b->rows_disagree &&
           a->rows_duplicate == b->rows_duplicate &&
           a->values_unknown == b->values_unknown;
}

static void check_stats(const calib_read_stats *st)
{
    FUZZ_ASSERT(st->rows_read == st->rows_used + st->rows_rejected);
}

/* The streaming reader's rows, status and totals. */
static int read_stream(const char *path, const calib_read_options *opt,
                       size_t *rows, calib_read_stats *st)
{
    calib_reader *r = NULL;
    calib_error err;
    const calib_dataset *chunk;
    *rows = 0;
    memset(st, 0, sizeof *st);
    int rc = calib_reader_open(path, opt, &r, &err);
    while (rc == CALIB_OK) {
        rc = calib_reader_next(r, &chunk, &err);
        if (rc != CALIB_OK || !chunk)
            break;
        FUZZ_ASSERT(calib_dataset_rows(chunk) > 0);
        FUZZ_ASSERT(!opt->chunk_rows ||
                    calib_dataset_rows(chunk) <= opt->chunk_rows);
        *rows += calib_dataset_rows(chunk);
    }
    if (rc == CALIB_OK)
        calib_reader_stats(r, st);
    else
        FUZZ_ASSERT(err.code == rc && err.message[0] != '\0');
    calib_reader_close(r);
    return rc;
}

/* Metrics of what was read (every extra metric too): invariants.  (The
 * thread and shard checks are fuzz_metrics.c's: read inputs are far too
 * small to be split.) */
static void evaluate_read(const calib_dataset *ds)
{
    calib_eval_options o;
    calib_metrics *m = NULL;
    calib_eval_options_init(&o);
    o.bins = 10;
    o.threads = 1;
    o.extra = CALIB_EXTRA_ALL;
    FUZZ_ASSERT(calib_evaluate(ds, &o, &m, NULL) == CALIB_OK);
    fuzz_check_metrics(m, calib_dataset_rows(ds));
    calib_metrics_free(m);
}

void fuzz_read_both(const char *path, const calib_read_options *opt)
{
    calib_dataset *ds = NULL;
    calib_error err;
    calib_read_stats whole, streamed;
    size_t rows;
    memset(&err, 0, sizeof err);
    const int rc = calib_read(path, opt, &ds, &err);
    const int src = read_stream(path, opt, &rows, &streamed);
    FUZZ_ASSERT(rc == src);
    if (rc != CALIB_OK) {
        FUZZ_ASSERT(ds == NULL);
        FUZZ_ASSERT(err.code == rc && err.message[0] != '\0');
        /* bad data is refused naming the file it is in */
        FUZZ_ASSERT(rc != CALIB_EDATA || err.file[0] != '\0');
        return;
    }
    calib_dataset_stats(ds, &whole);
    check_stats(&whole);
    FUZZ_ASSERT(same_stats(&whole, &streamed));
    FUZZ_ASSERT(rows == calib_dataset_rows(ds));
    FUZZ_ASSERT(whole.rows_used == rows);
    if (rows > 0)
        evaluate_read(ds);
    calib_dataset_free(ds);
}

void fuzz_read_bytes(const uint8_t *data, size_t size, int gzip,
                     const char *ext, const calib_read_options *opt)
{
    fuzz_file f;
    fuzz_file_open(&f, data, size, gzip);
    if (ext)
        fuzz_file_name(&f, ext);
    fuzz_read_both(f.path, opt);
    fuzz_file_close(&f);
}
