/* xsum.c — exact sums over rows, rounded once.
 *
 * Every sum over rows in calib goes through this fixed-point
 * superaccumulator (the idea of Kulisch's long accumulator; Neal 2015,
 * "Fast exact summation using small and large superaccumulators").  A
 * double m * 2^E (m < 2^53) is cut into three 32-bit pieces added into
 * 64-bit digits, so a digit can take 2^30 additions before its carry has
 * to move up.  Integer addition is associative: the result depends on the
 * multiset of values, not on their order, the thread count or the shards.
 * The digits cover 2^-160 .. 2^96; a value's bits below 2^-160 are dropped
 * (toward zero, the same way every time), and values of magnitude 2^80 or
 * more, infinities and NaN take a plain IEEE side path.
 */
#include "internal.h"

#include <assert.h>
#include <string.h>

#define M32 0xffffffffu
#define NORMALISE_EVERY (1 << 30)
#define BIG 0x1p80

void calib__xsum_init(calib__xsum *s) { memset(s, 0, sizeof *s); }

/* Moves carries up so that digits 0..6 lie in [0, 2^32); the top digit
 * keeps the sign. */
static void normalise(calib__xsum *s)
{
    for (int i = 0; i < CALIB__XSUM_DIGITS - 1; i++) {
        const int64_t low = s->d[i] & (int64_t)M32;
        s->d[i + 1] += (s->d[i] - low) / ((int64_t)1 << 32);
        s->d[i] = low;
    }
    s->adds = 0;
}

/* The digits a double adds: three 32-bit pieces p[0..2] at digits i, i+1,
 * i+2, bits below 2^-160 dropped toward zero.  Returns 0 when x adds
 * nothing (zero, or all of it below 2^-160). */
static int pieces(double x, int *i, int64_t p[3], int *neg)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    *neg = (int)(bits >> 63);
    const int e = (int)((bits >> 52) & 0x7ff);
    uint64_t m = bits & ((UINT64_C(1) << 52) - 1);
    int pos; /* bit position of m's lowest bit above 2^-160 */
    if (e) {
        m |= UINT64_C(1) << 52;
        pos = e - 1075 - CALIB__XSUM_LOW;
    } else {
        pos = -1074 - CALIB__XSUM_LOW;
    }
    if (pos < 0) {
        if (pos <= -53)
            return 0;
        m >>= -pos;
        pos = 0;
    }
    const int sh = pos & 31;
    *i = pos >> 5;
    p[0] = (int64_t)((m << sh) & M32);
    p[1] = (int64_t)(sh ? (m >> (32 - sh)) & M32 : (m >> 32));
    p[2] = (int64_t)(sh ? m >> (64 - sh) : 0);
    return m != 0;
}

void calib__xsum_add(calib__xsum *s, double x)
{
    if (!(fabs(x) < BIG)) {
        s->big += x;
        return;
    }
    int i, neg;
    int64_t p[3];
    if (x == 0.0 || !pieces(x, &i, p, &neg))
        return;
    for (int j = 0; j < 3; j++)
        s->d[i + j] += neg ? -p[j] : p[j];
    if (++s->adds >= NORMALISE_EVERY)
        normalise(s);
}

void calib__xsum_add_times(calib__xsum *s, double x, uint64_t k)
{
    int i, neg;
    int64_t p[3];
    assert(x >= 0.0 && x <= 1.0);
    if (x == 0.0 || k == 0 || !pieces(x, &i, p, &neg))
        return;
    if (s->adds > NORMALISE_EVERY - 4)
        normalise(s);
    /* p[j] * k < 2^96: three 32-bit chunks; x <= 1 keeps i + 4 a digit */
    for (int j = 0; j < 3; j++) {
        __extension__ const unsigned __int128 prod =
            (unsigned __int128)(uint64_t)p[j] * k;
        for (int c = 0; c < 3; c++)
            s->d[i + j + c] += (int64_t)((uint64_t)(prod >> (32 * c)) & M32);
    }
    s->adds += 3;
}

void calib__xsum_merge(calib__xsum *dst, const calib__xsum *src)
{
    calib__xsum t = *src;
    normalise(&t);
    normalise(dst);
    for (int i = 0; i < CALIB__XSUM_DIGITS; i++)
        dst->d[i] += t.d[i];
    dst->adds = 2;
    dst->big += t.big;
}

int calib__xsum_is_zero(const calib__xsum *s)
{
    for (int i = 0; i < CALIB__XSUM_DIGITS; i++)
        if (s->d[i] != 0)
            return 0;
    return s->big == 0.0;
}

/* Rounds the non-negative number held in 32-bit words w[0..nw) (w[i] worth
 * 2^(32 i + LOW)) to the nearest double, ties to even. */
static double round_words(const uint64_t *w, int nw)
{
    int t = nw - 1;
    while (t >= 0 && w[t] == 0)
        t--;
    if (t < 0)
        return 0.0;
    const int lz = __builtin_clzll(w[t]) - 32;
    /* 96 bits from the top three words, moved so the leading 1 is bit 95 */
    __extension__ unsigned __int128 top =
        ((unsigned __int128)w[t] << 64) |
        ((unsigned __int128)(t >= 1 ? w[t - 1] : 0) << 32) |
        (t >= 2 ? w[t - 2] : 0);
    top <<= lz;
    uint64_t mant = (uint64_t)(top >> 32);
    int sticky = ((uint64_t)top & M32) != 0;
    for (int i = 0; i < t - 2 && !sticky; i++)
        sticky = w[i] != 0;
    uint64_t keep = mant >> 11;
    const uint64_t rem = mant & 0x7ff;
    if (rem > 0x400 || (rem == 0x400 && (sticky || (keep & 1))))
        keep++;
    const int msb = 32 * t + 31 - lz; /* of the leading 1 */
    return ldexp((double)keep, msb - 52 + CALIB__XSUM_LOW);
}

double calib__xsum_round(const calib__xsum *s)
{
    calib__xsum t = *s;
    normalise(&t);
    const int neg = t.d[CALIB__XSUM_DIGITS - 1] < 0;
    if (neg) {
        for (int i = 0; i < CALIB__XSUM_DIGITS; i++)
            t.d[i] = -t.d[i];
        normalise(&t);
    }
    /* the top digit can exceed 32 bits: split it into two words */
    uint64_t w[CALIB__XSUM_DIGITS + 1];
    for (int i = 0; i < CALIB__XSUM_DIGITS - 1; i++)
        w[i] = (uint64_t)t.d[i];
    w[CALIB__XSUM_DIGITS - 1] = (uint64_t)t.d[CALIB__XSUM_DIGITS - 1] & M32;
    w[CALIB__XSUM_DIGITS] = (uint64_t)t.d[CALIB__XSUM_DIGITS - 1] >> 32;
    const double v = round_words(w, CALIB__XSUM_DIGITS + 1);
    const double r = neg ? -v : v;
    return t.big != 0.0 || isnan(t.big) ? r + t.big : r;
}

double calib_sum_exact(const double *x, size_t n)
{
    calib__xsum s;
    calib__xsum_init(&s);
    for (size_t i = 0; i < n; i++)
        calib__xsum_add(&s, x[i]);
    return calib__xsum_round(&s);
}

/* a * b is exactly p + e (fma gives e), so a weighted term w * x enters
 * the sum exactly and a row of integer weight k adds what k copies of it
 * add. */
void calib__xsum_add_product(calib__xsum *s, double a, double b)
{
    const double p = a * b;
    calib__xsum_add(s, p);
    if (isfinite(p))
        calib__xsum_add(s, fma(a, b, -p));
}
