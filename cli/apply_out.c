/* apply_out.c — what `calib apply` writes.
 *
 * Distribution rows (temperature or vector scaling) are written by
 * calib_write_probs.  Top-label output (a top-label method, or temperature
 * scaling of top-label rows) keeps the user's own columns when it can: the
 * input's records copied byte for byte, each followed by the separator and
 * `calibrated_confidence`, so whatever identified a row (an id, the
 * question, the model) stays with it.  That needs the input again: a named
 * CSV/TSV file (gzip or not), every row used (no --skip-bad-rows
 * rejections), and the same separator in and out.  Otherwise the output
 * has the columns confidence,correct,calibrated_confidence (the top-label
 * view before, its correct flag, and the calibrated confidence).
 * Records are split as RFC 4180 says (a quoted field may hold newlines),
 * and empty lines are skipped, as the reader does.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The separator of a CSV/TSV input, or 0 for other inputs. */
static char input_sep(const char *path, const calib_read_options *ro)
{
    if (ro->format == CALIB_FORMAT_CSV)
        return ',';
    if (ro->format == CALIB_FORMAT_TSV)
        return '\t';
    if (ro->format != CALIB_FORMAT_AUTO || !strcmp(path, "-"))
        return 0;
    if (ends_with(path, ".csv") || ends_with(path, ".csv.gz"))
        return ',';
    if (ends_with(path, ".tsv") || ends_with(path, ".tsv.gz"))
        return '\t';
    return 0;
}

/* A growable record. */
typedef struct rec {
    char *s;
    size_t len, cap;
} rec;

static int rec_put(rec *r, char c)
{
    if (r->len + 1 >= r->cap) {
        const size_t cap = r->cap ? 2 * r->cap : 4096;
        char *s = realloc(r->s, cap);
        if (!s)
            return -1;
        r->s = s, r->cap = cap;
    }
    r->s[r->len++] = c;
    return 0;
}

/* Reads the next non-empty record (line end and a UTF-8 BOM on the first
 * stripped) into r; returns 1, 0 at the end, -1 on error. */
static int next_record(gzFile in, rec *r, int first)
{
    for (;;) {
        int c, quoted = 0, any = 0;
        r->len = 0;
        while ((c = gzgetc(in)) != -1) {
            any = 1;
            if (c == '"')
                quoted = !quoted;
            if (c == '\n' && !quoted)
                break;
            if (rec_put(r, (char)c))
                return -1;
        }
        if (r->len && r->s[r->len - 1] == '\r')
            r->len--;
        if (first && r->len >= 3 && !memcmp(r->s, "\xef\xbb\xbf", 3))
            memmove(r->s, r->s + 3, r->len -= 3);
        if (r->len)
            return 1;
        if (!any || c == -1) {
            int e;
            gzerror(in, &e);
            return e == Z_OK || e == Z_BUF_ERROR ? 0 : -1;
        }
    }
}

/* The input's records plus calibrated_confidence; 0 or an exit code.
 * Returns -1 (nothing written) when the rows do not line up. */
static int copy_records(const char *in_path, char sep, const double *q,
                        size_t n, FILE *out)
{
    gzFile in = gzopen(in_path, "rb");
    if (!in)
        return -1;
    rec r = {0};
    int got = next_record(in, &r, 1);
    size_t i = 0;
    if (got == 1)
        fprintf(out, "%.*s%ccalibrated_confidence\n", (int)r.len, r.s, sep);
    while (got == 1 && (got = next_record(in, &r, 0)) == 1 && i < n)
        fprintf(out, "%.*s%c%.17g\n", (int)r.len, r.s, sep, q[i++]);
    gzclose(in);
    free(r.s);
    return got == 0 && i == n ? 0 : -1;
}

static int write_probs(const calib_dataset *ds, calib_format fmt,
                       const char *path)
{
    cli_out out;
    int ex = cli_out_open(&out, path);
    if (ex)
        return ex;
    calib_error err = {0};
    const int rc = calib_write_probs(ds, fmt, out.f, &err);
    if (rc) {
        cli_out_abort(&out);
        return cli_fail(rc, &err, path);
    }
    return cli_out_commit(&out);
}

/* The input's columns plus calibrated_confidence, when they line up;
 * returns -1 (nothing written) when they do not. */
static int write_passthrough(const char *in_path, char sep,
                             const calib_dataset *after, const char *path)
{
    const size_t n = calib_dataset_rows(after);
    double *q = malloc((n ? n : 1) * sizeof *q);
    if (!q || calib_dataset_export(after, q, n, NULL)) {
        free(q);
        return cli_nomem();
    }
    cli_out out;
    int ex = cli_out_open(&out, path);
    if (!ex && copy_records(in_path, sep, q, n, out.f)) {
        cli_out_abort(&out);
        ex = -1;
    } else if (!ex) {
        ex = cli_out_commit(&out);
    }
    free(q);
    return ex;
}

int cli_write_applied(const char *in_path, const calib_read_options *ro,
                      const calib_dataset *in, const calib_dataset *after,
                      calib_format fmt, const char *path)
{
    calib_read_stats st;
    calib_dataset_stats(in, &st);
    const char sep = input_sep(in_path, ro);
    const char out_sep = fmt == CALIB_FORMAT_TSV ? '\t' : ',';
    if (calib_dataset_kind(after) == CALIB_TOPLABEL &&
        fmt != CALIB_FORMAT_NPY && sep == out_sep && !st.rows_rejected) {
        const int ex = write_passthrough(in_path, sep, after, path);
        if (ex != -1)
            return ex;
        cli_warn("%s: the input's rows could not be matched again; writing "
                 "confidence,correct instead", in_path);
    }
    return write_probs(after, fmt, path);
}
