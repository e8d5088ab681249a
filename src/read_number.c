/* read_number.c — decimal text to double, correctly rounded, locale-free.
 *
 * Numbers are correctly rounded whatever the process locale.  A decimal
 * w * 10^e with at most 19 significant digits (w < 2^64, read eight digits
 * at a time as in Lemire's fast_float) takes one of three exact routes:
 * Clinger's fast path (W. D. Clinger, "How to read floating point numbers
 * accurately", PLDI 1990) when w <= 2^53 and |e| <= 22, since w and 10^e
 * are then exact doubles and one multiply or divide rounds once; for
 * larger w, w * 10^e (e <= 19) as a 128-bit integer converted once; or
 * w / 10^-e (e >= -22) by 128-bit integer division with round and sticky
 * bits.  Everything else (more digits, larger exponents) falls back to
 * strtod_l in a "C" locale.  nan and inf are read only to be rejected.
 *
 * A percentage ("85.5%") is read as the same digits with the exponent
 * lowered by 2, so it too is rounded once: the result is the double
 * nearest to the decimal / 100.  Dividing the parsed double by 100 would
 * round twice, giving the double nearest to (the double nearest the
 * decimal) / 100, which can differ from it in the last bit.
 */
#define _GNU_SOURCE /* strtod_l */
#include "read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const char *scan_exponent(const char *p, const char *end, long *e)
{
    const int neg = p < end && *p == '-';
    p += p < end && (*p == '-' || *p == '+');
    if (p == end || *p < '0' || *p > '9')
        return NULL;
    long x = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        if (x < 100000000)
            x = x * 10 + (*p - '0');
    *e = neg ? -x : x;
    return p;
}

/* nan, inf, infinity (any case, signed): parsed only to be rejected as
 * bad data by the row checks. */
static int special(const char *p, const char *end, int neg, double *x)
{
    const size_t n = (size_t)(end - p);
    if (n == 3 && strncasecmp(p, "nan", 3) == 0)
        *x = NAN;
    else if ((n == 3 && strncasecmp(p, "inf", 3) == 0) ||
             (n == 8 && strncasecmp(p, "infinity", 8) == 0))
        *x = neg ? -INFINITY : INFINITY;
    else
        return -1;
    return 0;
}

#if defined(__SIZEOF_INT128__) && FLT_EVAL_METHOD == 0
__extension__ typedef unsigned __int128 u128;

static const uint64_t pow10_u64[20] = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u,
    1000000000u, 10000000000u, 100000000000u, 1000000000000u,
    10000000000000u, 100000000000000u, 1000000000000000u,
    10000000000000000u, 100000000000000000u, 1000000000000000000u,
    10000000000000000000u};

static int clz128(u128 q)
{
    const uint64_t hi = (uint64_t)(q >> 64);
    return hi ? __builtin_clzll(hi) : 64 + __builtin_clzll((uint64_t)q);
}

/* w / 10^k (w > 0, k <= 22) correctly rounded, in integers: with w
 * shifted up to bit 127 the quotient has at least 54 bits (10^22 < 2^74),
 * enough for the mantissa, a round bit and a sticky bit (the remainder). */
static double div_pow10(uint64_t w, int k)
{
    const u128 d = (u128)pow10_u64[k > 19 ? 19 : k] *
                   pow10_u64[k > 19 ? k - 19 : 0];
    const int s = 64 + __builtin_clzll(w);
    const u128 num = (u128)w << s;
    const u128 q = num / d;
    const int drop = 128 - clz128(q) - 53;
    uint64_t m = (uint64_t)(q >> drop);
    const int half = (int)(q >> (drop - 1)) & 1;
    const int sticky = num % d != 0 ||
                       (q & (((u128)1 << (drop - 1)) - 1)) != 0;
    m += half && (sticky || (m & 1));
    return ldexp((double)m, drop - s);
}

/* w * 10^e for 19-digit w and |e| <= 22, or for w <= 2^53 Clinger's one
 * operation; returns 0 when it applies. */
static int fast_path(uint64_t w, long e, int neg, double *x)
{
    double v;
    if (w == 0)
        v = 0.0;
    else if (w <= ((uint64_t)1 << 53) && e >= 0 && e <= 22)
        v = (double)w * pow10_exact[e];
    else if (w <= ((uint64_t)1 << 53) && e < 0 && e >= -22)
        v = (double)w / pow10_exact[-e];
    else if (e >= 0 && e <= 19)
        v = (double)((u128)w * pow10_u64[e]);  /* rounded once, exactly */
    else if (e < 0 && e >= -22)
        v = div_pow10(w, (int)-e);
    else
        return -1;
    *x = neg ? -v : v;
    return 0;
}
#else
/* Clinger's fast path alone (no 128-bit integers, or excess precision). */
static int fast_path(uint64_t w, long e, int neg, double *x)
{
    if (FLT_EVAL_METHOD != 0 || w > ((uint64_t)1 << 53))
        return -1;
    double v = (double)w;
    if (w == 0)
        v = 0.0;
    else if (e >= 0 && e <= 22)
        v *= pow10_exact[e];
    else if (e < 0 && e >= -22)
        v /= pow10_exact[-e];
    else
        return -1;
    *x = neg ? -v : v;
    return 0;
}
#endif

/* strtod_l of s[0 .. n) followed by `suffix` (an exponent, or ""). */
static int slow_path(const char *s, size_t n, const char *suffix, double *x,
                     locale_t *loc)
{
    char local[128];
    const size_t total = n + strlen(suffix);
    char *buf = total < sizeof local ? local : malloc(total + 1);
    if (!buf)
        return -1;
    if (!*loc)
        *loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    int rc = -1;
    if (*loc) {
        memcpy(buf, s, n);
        memcpy(buf + n, suffix, total - n + 1);
        char *stop;
        *x = strtod_l(buf, &stop, *loc);
        rc = stop == buf + total ? 0 : -1;
    }
    if (buf != local)
        free(buf);
    return rc;
}

static int is_digit(char c) { return (unsigned char)(c - '0') < 10; }

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Eight ASCII digits at once (SWAR, as in Lemire's fast_float): are all
 * eight bytes in '0'..'9', and their value. */
static int eight_digits(uint64_t v)
{
    return ((v & 0xf0f0f0f0f0f0f0f0u) |
            (((v + 0x0606060606060606u) & 0xf0f0f0f0f0f0f0f0u) >> 4)) ==
           0x3333333333333333u;
}

static uint64_t eight_value(uint64_t v)
{
    const uint64_t mask = 0x000000ff000000ffu;
    v -= 0x3030303030303030u;
    v = v * 10 + (v >> 8);
    return ((v & mask) * 0x000f424000000064u +
            ((v >> 16) & mask) * 0x0000271000000001u) >> 32;
}

static const char *eights(const char *p, const char *end, uint64_t *w)
{
    uint64_t v;
    while (end - p >= 8 && (memcpy(&v, p, 8), eight_digits(v))) {
        *w = *w * 100000000u + eight_value(v);
        p += 8;
    }
    return p;
}
#else
static const char *eights(const char *p, const char *end, uint64_t *w)
{
    (void)end;
    (void)w;
    return p;
}
#endif

/* Digits at p into *w (wrapping past 19 digits: the caller then does not
 * use w); returns the end of the digits.  Inlined: on narrow CSV rows the
 * call itself costs as much as the short runs of digits it reads. */
static inline __attribute__((always_inline)) const char *
digits(const char *p, const char *end, uint64_t *w)
{
    for (p = eights(p, end, w); p < end && is_digit(*p); p++)
        *w = *w * 10 + (uint64_t)(*p - '0');
    return p;
}

/* The number of digits from the first nonzero one (leading zeros do not
 * reach w). */
static size_t significant(const char *p, const char *end, size_t n)
{
    if (n <= 19)
        return n;
    for (; p < end && (*p == '0' || *p == '.'); p++)
        n -= *p == '0';
    return n;
}

/* [sign] digits [. digits] [e [sign] digits], or digits only after the
 * point, times 10^shift.  At most 19 significant digits make w exact
 * (10^19 - 1 < 2^64); more take the slow path, which is given the digits
 * with the shifted exponent written out when shift is not 0. */
static int parse_scaled(const char *s, size_t len, long shift, double *x,
                        locale_t *loc)
{
    const char *p = s, *end = s + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    const char *const start = p;
    const int neg = p < end && *p == '-';
    p += p < end && (*p == '-' || *p == '+');
    uint64_t w = 0;
    const char *const d0 = p;
    p = digits(p, end, &w);
    size_t n_int = (size_t)(p - d0), n_frac = 0;
    if (p < end && *p == '.') {
        const char *const f0 = ++p;
        p = digits(p, end, &w);
        n_frac = (size_t)(p - f0);
    }
    if (n_int + n_frac == 0)
        return special(d0, end, neg, x);
    const char *const mantissa_end = p;
    long e = 0;
    if (p < end && (*p == 'e' || *p == 'E') &&
        !(p = scan_exponent(p + 1, end, &e)))
        return -1;
    if (p != end)
        return -1;
    if (significant(d0, end, n_int + n_frac) <= 19 &&
        fast_path(w, e - (long)n_frac + shift, neg, x) == 0)
        return 0;
    if (shift == 0)
        return slow_path(start, (size_t)(end - start), "", x, loc);
    char exp10[32];
    snprintf(exp10, sizeof exp10, "e%ld", e + shift);
    return slow_path(start, (size_t)(mantissa_end - start), exp10, x, loc);
}

int calib__parse_number(const char *s, size_t len, double *x, locale_t *loc)
{
    return parse_scaled(s, len, 0, x, loc);
}

/* The '%' is taken off first, so "50 %" and " 50% " read as 0.5; a '%'
 * anywhere else, or a second one, is not part of a number. */
int calib__parse_percent(const char *s, size_t len, double *x, locale_t *loc)
{
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len > 0 && s[len - 1] == '%')
        return parse_scaled(s, len - 1, -2, x, loc);
    return parse_scaled(s, len, 0, x, loc);
}

void calib__number_done(locale_t *loc)
{
    if (*loc)
        freelocale(*loc);
    *loc = (locale_t)0;
}
