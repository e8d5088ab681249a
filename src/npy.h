/* npy.h — what read_npy.c and npy_header.c share, and nobody else sees:
 * one .npy file as its header describes it.
 */
#ifndef CALIB_NPY_H
#define CALIB_NPY_H

#include "read.h"

/* One array file: its bytes and what the header says about them. */
typedef struct npy_array {
    calib__blob blob;
    const char *path;
    const uint8_t *data;   /* first element */
    char kind;             /* 'f', 'i', 'u' or 'b' */
    int size;              /* bytes per element */
    int swap;              /* stored in the other byte order */
    int fortran;
    int ndim;
    size_t shape[2];
} npy_array;

static inline size_t rows_of(const npy_array *a) { return a->shape[0]; }
static inline size_t cols_of(const npy_array *a)
{
    return a->ndim == 2 ? a->shape[1] : 1;
}

/* Loads `path` into a->blob (calib__blob_load: gunzipped under max_ratio) and
 * parses its header strictly (npy_header.c): a->data then points at the
 * first element, and the data are exactly what the shape promises.
 * CALIB_OK, or an error naming the file (CALIB_EDATA for a bad header). */
int calib__npy_load(npy_array *a, const char *path, double max_ratio,
                    calib_error *err);

#endif /* CALIB_NPY_H */
