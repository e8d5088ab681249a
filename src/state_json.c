/* state_json.c — the pieces of a partial state's JSON that accum_json.c
 * and values_json.c share: 128-bit integers as decimal strings,
 * superaccumulators as digit arrays, and reading with messages that name
 * the offending member by its path ("overall.cells[3].count: ...").
 */
#include "state_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void calib__pj_put_u128(calib__buf *b, u128 v)
{
    char t[48];
    size_t i = sizeof t;
    t[--i] = '\0';
    do {
        t[--i] = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v);
    calib__buf_printf(b, "\"%s\"", t + i);
}

/* The digits of s in normalised form (merging into zero normalises). */
void calib__pj_put_xsum(calib__buf *b, const calib__xsum *s)
{
    calib__xsum t;
    calib__xsum_init(&t);
    calib__xsum_merge(&t, s);
    calib__buf_puts(b, "[");
    for (int i = 0; i < CALIB__XSUM_DIGITS; i++)
        calib__buf_printf(b, i ? ",%lld" : "%lld", (long long)t.d[i]);
    if (isnan(t.big))
        calib__buf_puts(b, ",\"nan\"");
    else if (isinf(t.big))
        calib__buf_puts(b, t.big > 0 ? ",\"inf\"" : ",\"-inf\"");
    else if (t.big != 0.0) {
        calib__buf_puts(b, ",");
        calib__buf_json_number(b, t.big);
    }
    calib__buf_puts(b, "]");
}

/* CALIB_EDATA with "partial state: PATH: why". */
int calib__pj_bad(calib_error *err, const char *path, const char *fmt, ...)
{
    char why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0,
                       "partial state: %s: %s", path, why);
}

/* A path for messages: the parent's path and a suffix ("%s.count",
 * "%s[3]"), truncated if it ever grew that long. */
const char *calib__pj_at(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

int calib__pj_count(const json_t *j, const char *path, uint64_t *out,
                    calib_error *err)
{
    if (!json_is_integer(j))
        return calib__pj_bad(err, path, "expected a non-negative integer");
    const json_int_t v = json_integer_value(j);
    if (v < 0)
        return calib__pj_bad(err, path, "%lld is negative", (long long)v);
    *out = (uint64_t)v;
    return CALIB_OK;
}

int calib__pj_u128(const json_t *j, const char *path, u128 *out,
                   calib_error *err)
{
    const char *s = json_string_value(j);
    const size_t len = s ? json_string_length(j) : 0;
    if (!s || len == 0 || strspn(s, "0123456789") != len)
        return calib__pj_bad(err, path, "expected a string of decimal digits");
    const u128 max = ~(u128)0;
    u128 v = 0;
    for (size_t i = 0; i < len; i++) {
        const unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return calib__pj_bad(err, path, "does not fit in 128 bits");
        v = v * 10 + d;
    }
    *out = v;
    return CALIB_OK;
}

static int get_big(const json_t *j, const char *path, double *out,
                   calib_error *err)
{
    const char *s = json_string_value(j);
    if (json_is_number(j))
        *out = json_number_value(j);
    else if (s && strcmp(s, "inf") == 0)
        *out = INFINITY;
    else if (s && strcmp(s, "-inf") == 0)
        *out = -INFINITY;
    else if (s && strcmp(s, "nan") == 0)
        *out = NAN;
    else
        return calib__pj_bad(err, path,
                             "expected a number, \"inf\", \"-inf\" or "
                             "\"nan\"");
    return CALIB_OK;
}

int calib__pj_xsum(const json_t *j, const char *path, calib__xsum *out,
                   calib_error *err)
{
    const int64_t lim = (int64_t)1 << 32;
    const size_t n = json_array_size(j);
    calib__xsum_init(out);
    if (!json_is_array(j) || (n != CALIB__XSUM_DIGITS &&
                              n != CALIB__XSUM_DIGITS + 1))
        return calib__pj_bad(err, path,
                             "expected an array of %d integer digits "
                             "(and the side sum)",
                             CALIB__XSUM_DIGITS);
    for (int i = 0; i < CALIB__XSUM_DIGITS; i++) {
        const json_t *d = json_array_get(j, (size_t)i);
        const json_int_t v = json_integer_value(d);
        const int top = i == CALIB__XSUM_DIGITS - 1;
        if (!json_is_integer(d) || v > (top ? lim : lim - 1) ||
            v < (top ? -lim : 0))
            return calib__pj_bad(err, path,
                                 "digit %d: expected an integer in %s", i,
                                 top ? "[-2^32, 2^32]" : "[0, 2^32)");
        out->d[i] = (int64_t)v;
    }
    if (n == CALIB__XSUM_DIGITS)
        return CALIB_OK;
    char sub[PATH_LEN];
    calib__pj_at(sub, sizeof sub, "%s[%d]", path, CALIB__XSUM_DIGITS);
    return get_big(json_array_get(j, CALIB__XSUM_DIGITS), sub, &out->big, err);
}

const char *calib__pj_member(char *buf, size_t size, const char *path,
                             const char *key)
{
    return calib__pj_at(buf, size, "%s.%s", path, key);
}

/* Checks that object j has exactly the members keys[0..n). */
int calib__pj_members(const json_t *j, const char *path,
                      const char *const *keys, size_t n, calib_error *err)
{
    if (!json_is_object(j))
        return calib__pj_bad(err, path, "expected an object");
    for (size_t i = 0; i < n; i++)
        if (!json_object_get(j, keys[i]))
            return calib__pj_bad(err, path, "missing member \"%s\"", keys[i]);
    if (json_object_size(j) != n) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            size_t i = 0;
            while (i < n && strcmp(keys[i], k) != 0)
                i++;
            if (i == n)
                return calib__pj_bad(err, path, "unknown member \"%s\"", k);
        }
    }
    return CALIB_OK;
}
