/* radix.c — an LSD radix sort of 64-bit keys, with an optional 64-bit
 * payload that moves with its key.
 *
 * The selective metrics sort confidences: doubles in [+0, 1], whose bit
 * patterns order as their values do.  Eight passes of 8 bits; a pass whose
 * digit is the same for every key (the sign and high exponent bits, the
 * 29 zero bits of a float32 widened to double) is skipped, so float32 data
 * cost four passes.  Stable, O(n) per pass, single-threaded: the order it
 * produces does not depend on anything but the keys.
 */
#include "selective.h"

#include <stdlib.h>
#include <string.h>

/* Counts every digit of every key in one read of the keys. */
static void histogram(const uint64_t *key, size_t n, size_t (*h)[256])
{
    memset(h, 0, 8 * sizeof *h);
    for (size_t i = 0; i < n; i++) {
        const uint64_t k = key[i];
        for (int d = 0; d < 8; d++)
            h[d][(k >> (8 * d)) & 0xff]++;
    }
}

static void scatter(const uint64_t *key, const uint64_t *pay, size_t n,
                    int shift, size_t *pos, uint64_t *okey, uint64_t *opay)
{
    for (size_t i = 0; i < n; i++) {
        const size_t j = pos[(key[i] >> shift) & 0xff]++;
        okey[j] = key[i];
        if (pay)
            opay[j] = pay[i];
    }
}

int calib__radix_sort(uint64_t *key, uint64_t *pay, size_t n)
{
    if (n < 2)
        return CALIB_OK;
    size_t(*h)[256] = malloc(8 * sizeof *h);
    uint64_t *tk = malloc(n * sizeof *tk);
    uint64_t *tp = pay ? malloc(n * sizeof *tp) : NULL;
    if (!h || !tk || (pay && !tp)) {
        free(h);
        free(tk);
        free(tp);
        return CALIB_ENOMEM;
    }
    histogram(key, n, h);
    uint64_t *k = key, *p = pay, *ok = tk, *op = tp;
    for (int d = 0; d < 8; d++) {
        if (h[d][(k[0] >> (8 * d)) & 0xff] == n)
            continue; /* one digit value: the pass would not move a key */
        size_t pos[256], sum = 0;
        for (int v = 0; v < 256; v++) {
            pos[v] = sum;
            sum += h[d][v];
        }
        scatter(k, p, n, 8 * d, pos, ok, op);
        uint64_t *t = k;
        k = ok;
        ok = t;
        t = p;
        p = op;
        op = t;
    }
    if (k != key) {
        memcpy(key, k, n * sizeof *key);
        if (pay)
            memcpy(pay, p, n * sizeof *pay);
    }
    free(h);
    free(tk);
    free(tp);
    return CALIB_OK;
}
