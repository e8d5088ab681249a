/* npy_header.c — the .npy header (numpy's NEP 1, numpy/lib/format.py):
 * "\x93NUMPY", a version byte pair, a little-endian header length (uint16
 * in 1.0, uint32 in 2.0 and 3.0), then a Python dict literal with exactly
 * 'descr', 'fortran_order' and 'shape'.  Parsed literally and strictly:
 * Python is never evaluated, object arrays (pickles) are refused, and the
 * data must be exactly as long as the shape says.
 */
#include "npy.h"

#include <string.h>

/* A cursor over the header text. */
typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_blank(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_blank(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int bad_header(const npy_array *a, calib_error *err, const char *what)
{
    return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                       "malformed .npy header: %s", what);
}

/* A Python string literal without escapes, into out[size]. */
static int parse_str(cursor *c, char *out, size_t size)
{
    skip_blank(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return -1;
    const char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= size)
            return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[n] = 0;
    return 0;
}

static int parse_bool(cursor *c, int *v)
{
    skip_blank(c);
    const size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *v = 1;
        return 0;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *v = 0;
        return 0;
    }
    return -1;
}

/* A non-negative Python int (old numpy wrote a trailing L). */
static int parse_dim(cursor *c, size_t *v)
{
    skip_blank(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    size_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (__builtin_mul_overflow(x, (size_t)10, &x) ||
            __builtin_add_overflow(x, (size_t)(*c->p - '0'), &x))
            return -2;
        c->p++;
    }
    if (c->p < c->end && *c->p == 'L')
        c->p++;
    *v = x;
    return 0;
}

/* "()", "(N,)", "(N, K)" or "(N, K,)". */
static int parse_shape(cursor *c, npy_array *a, calib_error *err)
{
    if (!eat(c, '('))
        return bad_header(a, err, "'shape' is not a tuple");
    int comma = 1;   /* another dimension may follow */
    a->ndim = 0;
    while (!eat(c, ')')) {
        size_t d;
        const int r = comma ? parse_dim(c, &d) : -1;
        if (r == -2)
            return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                               "shape dimension overflows");
        if (r)
            return bad_header(a, err, "bad 'shape' tuple");
        if (a->ndim == 2)
            return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                               "arrays of more than 2 dimensions are not "
                               "supported");
        a->shape[a->ndim++] = d;
        comma = eat(c, ',');
    }
    if (a->ndim == 1 && !comma)
        return bad_header(a, err, "bad 'shape' tuple");
    if (a->ndim == 0)
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "a 0-d array holds no rows");
    return CALIB_OK;
}

/* '<f8', '|u1', '>i2', '=f4', ... */
static int parse_descr(const char *d, npy_array *a, calib_error *err)
{
    const char order = d[0];
    if (strchr(d, 'O'))
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "object arrays are refused (calib never unpickles)");
    if (!order || !strchr("<>|=", order) || !d[1] || !strchr("fiub", d[1]) ||
        !d[2] || d[3])
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "unsupported dtype '%s'", d);
    a->kind = d[1];
    a->size = d[2] - '0';
    const int ok = a->kind == 'f'   ? a->size == 2 || a->size == 4 || a->size == 8
                   : a->kind == 'b' ? a->size == 1
                                    : a->size == 1 || a->size == 2 ||
                                          a->size == 4 || a->size == 8;
    if (!ok || (order == '|' && a->size != 1))
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "unsupported dtype '%s'", d);
    a->swap = a->size > 1 && ((order == '<' && !calib__host_little()) ||
                              (order == '>' && calib__host_little()));
    return CALIB_OK;
}

static int parse_value(cursor *c, const char *key, npy_array *a,
                       calib_error *err)
{
    if (strcmp(key, "descr") == 0) {
        char d[64];
        skip_blank(c);
        if (c->p < c->end && *c->p == '[')
            return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                               "structured dtypes are not supported");
        if (parse_str(c, d, sizeof d))
            return bad_header(a, err, "'descr' is not a dtype string");
        return parse_descr(d, a, err);
    }
    if (strcmp(key, "fortran_order") == 0)
        return parse_bool(c, &a->fortran)
                   ? bad_header(a, err, "'fortran_order' is not True/False")
                   : CALIB_OK;
    if (strcmp(key, "shape") == 0)
        return parse_shape(c, a, err);
    return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                       "malformed .npy header: unexpected key '%s'", key);
}

/* {'descr': ..., 'fortran_order': ..., 'shape': ..., } + spaces + '\n' */
static int parse_dict(cursor *c, npy_array *a, calib_error *err)
{
    int seen[3] = {0, 0, 0};
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    if (!eat(c, '{'))
        return bad_header(a, err, "not a dict");
    while (!eat(c, '}')) {
        char key[32];
        if (parse_str(c, key, sizeof key) || !eat(c, ':'))
            return bad_header(a, err, "expected 'key':");
        for (int i = 0; i < 3; i++)
            if (strcmp(key, keys[i]) == 0 && seen[i]++)
                return bad_header(a, err, "repeated key");
        int rc = parse_value(c, key, a, err);
        if (rc)
            return rc;
        if (!eat(c, ',') && !(skip_blank(c), c->p < c->end && *c->p == '}'))
            return bad_header(a, err, "expected ',' or '}'");
    }
    if (!seen[0] || !seen[1] || !seen[2])
        return bad_header(a, err, "'descr', 'fortran_order' or 'shape' missing");
    skip_blank(c);
    if (c->p + 1 != c->end || *c->p != '\n')
        return bad_header(a, err, "trailing text after the dict");
    return CALIB_OK;
}

/* Checks that the data are what the shape promises, no less and no more:
 * numpy writes nothing after them, so extra bytes mean a header that lies
 * (rows read from it would be misaligned or short). */
static int check_size(npy_array *a, size_t off, calib_error *err)
{
    size_t count, bytes;
    if (__builtin_mul_overflow(rows_of(a), cols_of(a), &count) ||
        __builtin_mul_overflow(count, (size_t)a->size, &bytes))
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "shape (%zu, %zu) overflows", rows_of(a),
                           cols_of(a));
    if (bytes != a->blob.len - off)
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "shape (%zu, %zu) of %d-byte values needs %zu bytes "
                           "of data, the file holds %zu (%s)",
                           rows_of(a), cols_of(a), a->size, bytes,
                           a->blob.len - off,
                           bytes > a->blob.len - off
                               ? "truncated?"
                               : "the header does not describe the data");
    a->data = a->blob.data + off;
    return CALIB_OK;
}

static int parse_file(npy_array *a, calib_error *err)
{
    const uint8_t *d = a->blob.data;
    const size_t len = a->blob.len;
    if (len < 10 || memcmp(d, "\x93NUMPY", 6) != 0)
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "not a .npy file (bad magic)");
    size_t hlen, start;
    if (d[7] != 0) {
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "unsupported .npy version %d.%d", d[6], d[7]);
    } else if (d[6] == 1) {
        hlen = (size_t)d[8] | (size_t)d[9] << 8;
        start = 10;
    } else if ((d[6] == 2 || d[6] == 3) && len >= 12) {
        hlen = (size_t)d[8] | (size_t)d[9] << 8 | (size_t)d[10] << 16 |
               (size_t)d[11] << 24;
        start = 12;
    } else {
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "unsupported .npy version %d.%d", d[6], d[7]);
    }
    if (hlen > len - start)
        return calib__fail(err, CALIB_EDATA, a->path, 0, 0, 0,
                           "the .npy header is longer than the file");
    cursor c = {(const char *)d + start, (const char *)d + start + hlen};
    int rc = parse_dict(&c, a, err);
    return rc ? rc : check_size(a, start + hlen, err);
}

int calib__npy_load(npy_array *a, const char *path, double max_ratio,
                    calib_error *err)
{
    a->path = path;
    int rc = calib__blob_load(path, max_ratio, &a->blob, err);
    return rc ? rc : parse_file(a, err);
}
