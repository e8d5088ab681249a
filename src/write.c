/* write.c — calib_write_probs: probabilities out as .npy or CSV/TSV.
 *
 * .npy output follows numpy's format 1.0 (NEP 1): magic, version, a uint16
 * header length, and the dict literal padded with spaces so that the data
 * start on a 64-byte boundary, ending in '\n'; data are '<f8' in C order.
 * Logit rows become probabilities by softmax through log-sum-exp
 * (q_k = exp(z_k - m - log sum_j exp(z_j - m)), m = max z), so no exp
 * overflows.  Text uses %.17g, which round-trips every double, in the C
 * locale for this thread only (uselocale), so a host program's locale never
 * turns the decimal point into a comma.
 */
#include "read.h"

#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Row i's probabilities into q[0 .. len). */
static void row_probs(const calib_dataset *ds, size_t i, double *q)
{
    const size_t b = calib__row_begin(ds, i), len = calib__row_len(ds, i);
    if (ds->kind == CALIB_PROBS) {
        for (size_t j = 0; j < len; j++) {
            const double p = calib__score(ds, b + j);
            q[j] = p < 0.0 ? 0.0 : p > 1.0 ? 1.0 : p;
        }
        return;
    }
    double m = -INFINITY, s = 0.0;
    for (size_t j = 0; j < len; j++)
        m = fmax(m, calib__score(ds, b + j));
    for (size_t j = 0; j < len; j++)
        s += exp(calib__score(ds, b + j) - m);
    const double lse = m + log(s);
    for (size_t j = 0; j < len; j++)
        q[j] = exp(calib__score(ds, b + j) - lse);
}

/* The widest row: K, or the longest ragged row. */
static size_t width(const calib_dataset *ds)
{
    if (ds->kind == CALIB_TOPLABEL)
        return 1;
    size_t k = ds->k;
    for (size_t i = 0; ds->offsets && i < ds->n; i++)
        if (calib__row_len(ds, i) > k)
            k = calib__row_len(ds, i);
    return k;
}

/* Doubles as little-endian bytes. */
static int put_f8(FILE *f, const double *v, size_t n)
{
    if (calib__host_little())
        return fwrite(v, sizeof *v, n, f) == n ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        uint8_t b[8], r[8];
        memcpy(b, &v[i], 8);
        for (int j = 0; j < 8; j++)
            r[j] = b[7 - j];
        if (fwrite(r, 1, 8, f) != 8)
            return -1;
    }
    return 0;
}

static int npy_header(FILE *f, size_t n, size_t k, int two_d)
{
    char dict[128];
    int len = two_d ? snprintf(dict, sizeof dict,
                               "{'descr': '<f8', 'fortran_order': False, "
                               "'shape': (%zu, %zu), }", n, k)
                    : snprintf(dict, sizeof dict,
                               "{'descr': '<f8', 'fortran_order': False, "
                               "'shape': (%zu,), }", n);
    const size_t total = (10 + (size_t)len + 1 + 63) / 64 * 64;
    const size_t hlen = total - 10;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    char pad[128];
    memset(pad, ' ', sizeof pad);
    pad[hlen - (size_t)len - 1] = '\n';
    return fwrite(pre, 1, 10, f) == 10 &&
                   fwrite(dict, 1, (size_t)len, f) == (size_t)len &&
                   fwrite(pad, 1, hlen - (size_t)len, f) == hlen - (size_t)len
               ? 0 : -1;
}

static int write_npy(const calib_dataset *ds, FILE *f, double *q)
{
    const int top = ds->kind == CALIB_TOPLABEL;
    if (npy_header(f, ds->n, ds->k, !top))
        return -1;
    for (size_t i = 0; i < ds->n; i++) {
        if (top)
            q[0] = calib__conf(ds, i);
        else
            row_probs(ds, i, q);
        if (put_f8(f, q, top ? 1 : ds->k))
            return -1;
    }
    return 0;
}

/* CSV/TSV; ragged rows are padded with probability 0 (a choice that is
 * not there has none). */
static int write_text(const calib_dataset *ds, FILE *f, char sep, double *q,
                      size_t k)
{
    if (ds->kind == CALIB_TOPLABEL) {
        fprintf(f, "confidence%ccorrect\n", sep);
        for (size_t i = 0; i < ds->n; i++)
            fprintf(f, "%.17g%c%d\n", calib__conf(ds, i), sep,
                    ds->correct[i]);
        return ferror(f) ? -1 : 0;
    }
    for (size_t j = 0; j < k; j++)
        fprintf(f, "prob_%zu%c", j, sep);
    fprintf(f, "label\n");
    for (size_t i = 0; i < ds->n && !ferror(f); i++) {
        const size_t len = calib__row_len(ds, i);
        row_probs(ds, i, q);
        for (size_t j = 0; j < k; j++)
            fprintf(f, "%.17g%c", j < len ? q[j] : 0.0, sep);
        fprintf(f, "%d\n", (int)ds->labels[i]);
    }
    return ferror(f) ? -1 : 0;
}

int calib_write_probs(const calib_dataset *ds, calib_format fmt, FILE *f,
                      calib_error *err)
{
    if (!ds || !f || fmt == CALIB_FORMAT_AUTO || fmt > CALIB_FORMAT_TSV)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "need a dataset, a stream and a format "
                           "(npy, csv or tsv)");
    if (fmt == CALIB_FORMAT_NPY && ds->offsets)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "ragged rows do not fit an (N,K) .npy; write CSV");
    const size_t k = width(ds);
    double *q = malloc((k ? k : 1) * sizeof *q);
    locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!q || !c) {
        free(q);
        if (c)
            freelocale(c);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    const locale_t old = uselocale(c);
    const int bad = fmt == CALIB_FORMAT_NPY
                        ? write_npy(ds, f, q)
                        : write_text(ds, f, fmt == CALIB_FORMAT_TSV ? '\t' : ',',
                                     q, k);
    uselocale(old);
    freelocale(c);
    free(q);
    if (bad || fflush(f) != 0)
        return calib__fail(err, CALIB_EIO, NULL, 0, 0, 0,
                           "write failed: %s", strerror(errno));
    return calib__ok(err);
}
