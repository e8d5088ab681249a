/* read_npy.c — numpy .npy files: (N,K) scores + (N,) labels, or (N,)
 * confidences + (N,) correct flags.
 *
 * Each file's header is parsed by npy_header.c (strictly: Python is never
 * evaluated, pickles are refused).  Native float32/float64 data in C
 * order are used in place from the file's mapping; anything else (float16,
 * integers, the other byte order, Fortran order) is converted to owned
 * float32 (from float16/32) or float64 arrays.  Every row goes through
 * calib__check_row on a double copy, since mapped data cannot be clamped
 * in place and the kernels clamp on read anyway.
 */
#include "npy.h"

#include <stdlib.h>
#include <string.h>

struct calib__npy {
    npy_array main, side;  /* side: labels or correct flags */
    calib_kind kind;
    size_t n, k;           /* k = 1 for top-label rows */
    int skip_bad_rows;
    double *tmp;           /* one row as doubles, for the checks */
    char *path, *side_path;
};

/* IEEE binary16 to float (exact): subnormals, infinities and NaN too. */
static float half_to_float(uint16_t h)
{
    const int e = (h >> 10) & 0x1f;
    const int m = h & 0x3ff;
    float x = e == 0    ? ldexpf((float)m, -24)
              : e == 31 ? (m ? NAN : INFINITY)
                        : ldexpf((float)(m + 1024), e - 25);
    return (h & 0x8000) ? -x : x;
}

/* Element (i, j) as a double, whatever its type, order and layout. */
static double elem(const npy_array *a, size_t i, size_t j)
{
    const size_t idx = a->fortran ? j * rows_of(a) + i : i * cols_of(a) + j;
    uint8_t t[8] = {0};
    memcpy(t, a->data + idx * (size_t)a->size, (size_t)a->size);
    for (int l = 0, r = a->size - 1; a->swap && l < r; l++, r--) {
        const uint8_t x = t[l];
        t[l] = t[r];
        t[r] = x;
    }
    union { uint8_t b[8]; uint16_t u16; uint32_t u32; uint64_t u64; int8_t i8;
            int16_t i16; int32_t i32; int64_t i64; float f; double d; } v;
    memcpy(v.b, t, 8);
    switch (a->kind * 16 + a->size) {
    case 'f' * 16 + 2: return half_to_float(v.u16);
    case 'f' * 16 + 4: return v.f;
    case 'f' * 16 + 8: return v.d;
    case 'i' * 16 + 1: return v.i8;
    case 'i' * 16 + 2: return v.i16;
    case 'i' * 16 + 4: return v.i32;
    case 'i' * 16 + 8: return (double)v.i64;
    case 'u' * 16 + 2: return v.u16;
    case 'u' * 16 + 4: return v.u32;
    case 'u' * 16 + 8: return (double)v.u64;
    default: return v.b[0];  /* u1, b1 */
    }
}

/* The companion must be (N,) or (N,1) with as many rows as the main file. */
static int check_side(const calib__npy *p, calib_error *err)
{
    const npy_array *s = &p->side;
    if (cols_of(s) != 1)
        return calib__fail(err, CALIB_EDATA, s->path, 0, 0, 0,
                           "expected shape (N,), found (%zu, %zu)", rows_of(s),
                           cols_of(s));
    if (rows_of(s) != p->n)
        return calib__fail(err, CALIB_EDATA, s->path, 0, 0, 0,
                           "%zu rows, but '%s' has %zu", rows_of(s),
                           p->main.path, p->n);
    return CALIB_OK;
}

/* Which rows the main file holds decides which companion it needs. */
static int choose_kind(calib__npy *p, const calib_read_options *opt,
                       const char **side, calib_error *err)
{
    const npy_array *m = &p->main;
    if (opt->correct_path && cols_of(m) == 1 &&
        (m->ndim == 1 || !opt->labels_path)) {
        p->kind = CALIB_TOPLABEL;
        *side = opt->correct_path;
    } else if (opt->labels_path && m->ndim == 2) {
        p->kind = opt->npy_probs ? CALIB_PROBS : CALIB_LOGITS;
        *side = opt->labels_path;
    } else {
        return calib__fail(err, CALIB_EINVAL, m->path, 0, 0, 0,
                           m->ndim == 1 ? "an (N,) .npy of confidences needs "
                                          "a correct file (--correct)"
                                        : "an (N,K) .npy of scores needs a "
                                          "labels file (--labels)");
    }
    if (m->ndim == 2 && m->shape[1] == 0)
        return calib__fail(err, CALIB_EDATA, m->path, 0, 0, 0,
                           "shape (%zu, 0) has no classes", m->shape[0]);
    p->n = rows_of(m);
    p->k = cols_of(m);
    return CALIB_OK;
}

int calib__npy_open(const char *path, const calib_read_options *opt,
                    calib__npy **out, calib_error *err)
{
    *out = NULL;
    calib__npy *p = calloc(1, sizeof *p);
    if (!p || !(p->path = strdup(path))) {
        free(p);
        return calib__fail(err, CALIB_ENOMEM, path, 0, 0, 0, "out of memory");
    }
    const char *side = NULL;
    p->skip_bad_rows = opt->skip_bad_rows;
    int rc = calib__npy_load(&p->main, p->path, opt->max_gzip_ratio, err);
    if (!rc)
        rc = choose_kind(p, opt, &side, err);
    if (!rc && !(p->side_path = strdup(side)))
        rc = calib__fail(err, CALIB_ENOMEM, side, 0, 0, 0, "out of memory");
    if (!rc)
        rc = calib__npy_load(&p->side, p->side_path, opt->max_gzip_ratio,
                        err);
    if (!rc)
        rc = check_side(p, err);
    if (!rc && !(p->tmp = malloc(p->k * sizeof *p->tmp)))
        rc = calib__fail(err, CALIB_ENOMEM, path, 0, 0, 0, "out of memory");
    if (rc) {
        calib__npy_close(p);
        return rc;
    }
    *out = p;
    return CALIB_OK;
}

size_t calib__npy_rows(const calib__npy *p) { return p->n; }

void calib__npy_close(calib__npy *p)
{
    if (!p)
        return;
    calib__blob_free(&p->main.blob);
    calib__blob_free(&p->side.blob);
    free(p->tmp);
    free(p->path);
    free(p->side_path);
    free(p);
}

/* The companion value of row i: a label, integral and in [0,K), or a
 * correct flag, 0 or 1.  Returns 0, or -1 with the error in *err. */
static int side_value(const calib__npy *p, size_t i, int64_t *v,
                      calib_error *err)
{
    const double x = elem(&p->side, i, 0);
    const char *const file = p->side.path;
    if (p->kind == CALIB_TOPLABEL) {
        if (x != 0.0 && x != 1.0)
            return calib__fail(err, CALIB_EDATA, file, 0, i + 1, 1,
                               "correct value %.17g is not 0 or 1", x), -1;
    } else if (x != floor(x)) {
        return calib__fail(err, CALIB_EDATA, file, 0, i + 1, 1,
                           "label %.17g is not an integer", x), -1;
    } else if (!(x >= 0.0 && x < (double)p->k)) {
        return calib__fail(err, CALIB_EDATA, file, 0, i + 1, 1,
                           "label %.17g outside [0,%zu)", x, p->k), -1;
    }
    *v = (int64_t)x;
    return 0;
}

/* Checks row i; returns 0 when good (counting into *st), else -1 with the
 * reason in *err. */
static int check_one(calib__npy *p, size_t i, int64_t *side,
                     calib_read_stats *st, calib_error *err)
{
    if (side_value(p, i, side, err))
        return -1;
    for (size_t j = 0; j < p->k; j++)
        p->tmp[j] = elem(&p->main, i, j);
    calib_read_stats row = {0};
    char why[160];
    const size_t bad = calib__check_row(p->kind, p->tmp, p->k, *side, &row,
                                        why, sizeof why);
    if (bad) {
        const int is_side = bad > p->k;
        calib__fail(err, CALIB_EDATA, is_side ? p->side.path : p->main.path,
                    0, i + 1, is_side ? 1 : bad, "%s", why);
        return -1;
    }
    st->values_clamped += row.values_clamped;
    st->rows_sum_off += row.rows_sum_off;
    return 0;
}

/* Can the dataset point at the file's bytes as they are? */
static int in_place(const npy_array *a)
{
    return a->kind == 'f' && (a->size == 4 || a->size == 8) && !a->swap &&
           (!a->fortran || cols_of(a) == 1) &&
           (uintptr_t)a->data % (uintptr_t)a->size == 0;
}

/* Converted copies of the kept rows of [begin, end). */
static void *copy_rows(const calib__npy *p, size_t begin, size_t end,
                       const uint8_t *keep, size_t used, calib_dtype dt)
{
    const size_t k = p->k;
    void *v = malloc((used ? used : 1) * k *
                     (dt == CALIB_F32 ? sizeof(float) : sizeof(double)));
    if (!v)
        return NULL;
    size_t o = 0;
    for (size_t i = begin; i < end; i++) {
        if (!keep[i - begin])
            continue;
        for (size_t j = 0; j < k; j++, o++) {
            const double x = elem(&p->main, i, j);
            if (dt == CALIB_F32)
                ((float *)v)[o] = (float)x;
            else
                ((double *)v)[o] = x;
        }
    }
    return v;
}

/* Hands the file's bytes to ds, which then outlives p. */
static int take_blob(calib__npy *p, calib_dataset *ds)
{
    calib__blob *b = &p->main.blob;
    if (b->map_addr) {
        ds->map_addr[0] = b->map_addr;
        ds->map_len[0] = b->map_len;
        b->map_addr = NULL;
        return CALIB_OK;
    }
    const int rc = b->owned ? calib__dataset_own(ds, b->owned) : CALIB_OK;
    b->owned = NULL;
    return rc;
}

/* Fills ds with the scores or confidences of the kept rows. */
static int attach_values(calib__npy *p, calib_dataset *ds, size_t begin,
                         size_t end, const uint8_t *keep, int take)
{
    const npy_array *m = &p->main;
    ds->dtype = m->kind == 'f' && m->size <= 4 ? CALIB_F32 : CALIB_F64;
    const void *values;
    int rc = CALIB_OK;
    if (in_place(m) && ds->n == end - begin) {
        values = m->data + begin * p->k * (size_t)m->size;
        if (take)
            rc = take_blob(p, ds);
    } else {
        void *v = copy_rows(p, begin, end, keep, ds->n, ds->dtype);
        rc = v ? calib__dataset_own(ds, v) : CALIB_ENOMEM;
        values = v;
    }
    if (p->kind == CALIB_TOPLABEL)
        ds->conf = values;
    else
        ds->scores = values;
    return rc;
}

/* Checks rows [begin, end), storing the companion values of good rows
 * into ds and marking them in keep[]. */
static int check_rows(calib__npy *p, calib_dataset *ds, size_t begin,
                      size_t end, uint8_t *keep, calib_read_stats *st,
                      calib_error *err)
{
    int32_t *labels = (int32_t *)ds->labels;
    uint8_t *correct = (uint8_t *)ds->correct;
    for (size_t i = begin; i < end; i++) {
        int64_t side;
        calib_error row_err;
        keep[i - begin] = check_one(p, i, &side, st, &row_err) == 0;
        if (!keep[i - begin] && !p->skip_bad_rows) {
            if (err)
                *err = row_err;
            return CALIB_EDATA;
        }
        if (!keep[i - begin])
            continue;
        if (labels)
            labels[ds->n] = (int32_t)side;
        else
            correct[ds->n] = (uint8_t)side;
        ds->n++;
    }
    return CALIB_OK;
}

static calib_dataset *new_chunk(const calib__npy *p, size_t rows)
{
    calib_dataset *ds = calib__dataset_alloc();
    if (!ds)
        return NULL;
    ds->kind = p->kind;
    ds->k = p->kind == CALIB_TOPLABEL ? 0 : p->k;
    void *side = malloc(rows ? rows * (p->kind == CALIB_TOPLABEL ? 1 : 4) : 1);
    if (!side || calib__dataset_own(ds, side)) {
        calib_dataset_free(ds);
        return NULL;
    }
    if (p->kind == CALIB_TOPLABEL)
        ds->correct = side;
    else
        ds->labels = side;
    return ds;
}

int calib__npy_chunk(calib__npy *p, size_t begin, size_t end, int take,
                     calib_dataset **out, calib_read_stats *st,
                     calib_error *err)
{
    *out = NULL;
    calib_read_stats cs = {0};
    calib_dataset *ds = new_chunk(p, end - begin);
    uint8_t *keep = malloc(end > begin ? end - begin : 1);
    int rc = ds && keep ? CALIB_OK
                        : calib__fail(err, CALIB_ENOMEM, p->path, 0, 0, 0,
                                      "out of memory");
    if (!rc)
        rc = check_rows(p, ds, begin, end, keep, &cs, err);
    if (!rc && attach_values(p, ds, begin, end, keep, take))
        rc = calib__fail(err, CALIB_ENOMEM, p->path, 0, 0, 0, "out of memory");
    free(keep);
    if (rc) {
        calib_dataset_free(ds);
        return rc;
    }
    cs.rows_read = end - begin;
    cs.rows_used = ds->n;
    cs.rows_rejected = cs.rows_read - cs.rows_used;
    ds->stats = cs;
    st->rows_read += cs.rows_read;
    st->rows_used += cs.rows_used;
    st->rows_rejected += cs.rows_rejected;
    st->values_clamped += cs.values_clamped;
    st->rows_sum_off += cs.rows_sum_off;
    *out = ds;
    return CALIB_OK;
}
