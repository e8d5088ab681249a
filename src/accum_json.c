/* accum_json.c — partial states: a calib_accum written as JSON and read back.
 *
 * A shard's accumulator holds only exact quantities (integer counts,
 * fixed-point sums in unsigned 128-bit integers, superaccumulator digits),
 * so writing them as integers and reading them back loses nothing: states
 * merged in any order give, bit for bit, what one accumulator over all the
 * rows gives.  The one exception is the superaccumulator's side double
 * (`big`: values of magnitude >= 2^80 and non-finite values, such as a
 * weight above ~1e24 or an infinite NLL), which is summed in plain floating
 * point, in merge order, exactly as within one process.
 *
 * The object (version 1):
 *   {"format": "calib-partial", "version": 1, "library": "0.1.0",
 *    "bins": M, "binning": "width", "bin_rule": "sklearn",
 *    "kind": null | "top-label" | "distribution",
 *    "classes": null | K (0: ragged rows or different K),
 *    "from_probs": bool, "read": {rows_read, ... 8 counts} (optional),
 *    "overall": POP, "groups": [{"name": NAME, ...POP}, ...],
 *    "meta": {...} (optional: what a program built on calib records about
 *    how the rows were made; this file ignores it)}
 *   POP  = {"cells": [CELL x (M + 2)], "p2_fx": U128, "pc_fx": U128,
 *           "fast_hits": n, "brier": XSUM, "nll": XSUM, "clipped": n}
 *          cells M and M + 1 are torchmetrics' [1,1] bin and "no bin"
 *          (gpleiss/hollance p = 0); empty under the other rules
 *   CELL = null (no rows) | {"count", "plain", "plain_hits": n,
 *           "conf_fx": U128, "weight", "hit", "conf": XSUM}
 *   U128 = a decimal string (fixed-point sums of float32 rows)
 *   XSUM = [d0, ..., d7] or [d0, ..., d7, big]: digit i is worth
 *          2^(32 i - 160), digits 0..6 in [0, 2^32), d7 in [-2^32, 2^32]
 *          (the normalised form, unique for a value); big is a number or
 *          "inf", "-inf", "nan", written only when not 0.
 * Groups keep their first-appearance order.  Reading checks every type,
 * range and length, and names the offending member by its path
 * ("overall.cells[3].count: -1 is negative").
 */
#include "metrics.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "calib-partial"
#define FORMAT_VERSION 1
#define PATH_LEN 96

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

static void put_u128(calib__buf *b, u128 v)
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
static void put_xsum(calib__buf *b, const calib__xsum *s)
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

static void put_cell(calib__buf *b, const cell *c)
{
    if (!c->count) {
        calib__buf_puts(b, "null");
        return;
    }
    calib__buf_printf(b, "{\"count\":%llu,\"plain\":%llu,\"plain_hits\":%llu",
                      (unsigned long long)c->count,
                      (unsigned long long)c->plain,
                      (unsigned long long)c->plain_hits);
    calib__buf_puts(b, ",\"conf_fx\":");
    put_u128(b, c->conf_fx);
    calib__buf_puts(b, ",\"weight\":");
    put_xsum(b, &c->weight);
    calib__buf_puts(b, ",\"hit\":");
    put_xsum(b, &c->hit);
    calib__buf_puts(b, ",\"conf\":");
    put_xsum(b, &c->conf);
    calib__buf_puts(b, "}");
}

/* The members of a population, without the braces. */
static void put_pop(calib__buf *b, const pop *P)
{
    calib__buf_puts(b, "\"cells\":[");
    for (size_t i = 0; i < P->n_cells; i++) {
        calib__buf_puts(b, i ? "," : "");
        put_cell(b, &P->cells[i]);
    }
    calib__buf_puts(b, "],\"p2_fx\":");
    put_u128(b, P->p2_fx);
    calib__buf_puts(b, ",\"pc_fx\":");
    put_u128(b, P->pc_fx);
    calib__buf_printf(b, ",\"fast_hits\":%llu,\"brier\":",
                      (unsigned long long)P->fast_hits);
    put_xsum(b, &P->brier);
    calib__buf_puts(b, ",\"nll\":");
    put_xsum(b, &P->nll);
    calib__buf_printf(b, ",\"clipped\":%llu", (unsigned long long)P->clipped);
}

static const char *const read_keys[] = {
    "rows_read",      "rows_used",     "rows_rejected",  "values_clamped",
    "rows_sum_off",   "rows_disagree", "rows_duplicate", "values_unknown"};
enum { N_READ = sizeof read_keys / sizeof read_keys[0] };

static size_t *read_field(calib_read_stats *r, int i)
{
    size_t *const f[N_READ] = {&r->rows_read,      &r->rows_used,
                               &r->rows_rejected,  &r->values_clamped,
                               &r->rows_sum_off,   &r->rows_disagree,
                               &r->rows_duplicate, &r->values_unknown};
    return f[i];
}

static void put_read(calib__buf *b, const calib_read_stats *read)
{
    calib_read_stats r = *read;
    calib__buf_puts(b, ",\"read\":{");
    for (int i = 0; i < N_READ; i++)
        calib__buf_printf(b, "%s\"%s\":%zu", i ? "," : "", read_keys[i],
                          *read_field(&r, i));
    calib__buf_puts(b, "}");
}

static void put_header(calib__buf *b, const calib_accum *a)
{
    static const char *const kinds[] = {"null", "\"top-label\"",
                                        "\"distribution\""};
    calib__buf_printf(b, "{\"format\":\"%s\",\"version\":%d,\"library\":",
                      FORMAT_NAME, FORMAT_VERSION);
    calib__buf_json_string(b, calib_version());
    calib__buf_printf(b, ",\"bins\":%d,\"binning\":\"width\",\"bin_rule\":",
                      a->opt.bins);
    calib__buf_json_string(b, calib_bin_rule_name(a->opt.rule));
    calib__buf_printf(b, ",\"kind\":%s,\"classes\":", kinds[a->kind_seen]);
    if (a->classes == SIZE_MAX)
        calib__buf_puts(b, "null");
    else
        calib__buf_printf(b, "%zu", a->classes);
    calib__buf_printf(b, ",\"from_probs\":%s",
                      a->from_probs ? "true" : "false");
}

int calib_accum_to_json(const calib_accum *a, const calib_read_stats *read,
                        char **json, calib_error *err)
{
    if (json)
        *json = NULL;
    if (!a || !json)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_accum_to_json: NULL argument");
    calib__buf b = {0};
    put_header(&b, a);
    if (read)
        put_read(&b, read);
    calib__buf_puts(&b, ",\"overall\":{");
    put_pop(&b, a->all);
    calib__buf_puts(&b, "},\"groups\":[");
    for (size_t g = 0; g < a->n_groups; g++) {
        calib__buf_puts(&b, g ? ",{\"name\":" : "{\"name\":");
        calib__buf_json_string(&b, a->names[g]);
        calib__buf_puts(&b, ",");
        put_pop(&b, a->groups[g]);
        calib__buf_puts(&b, "}");
    }
    calib__buf_puts(&b, "]}");
    if (b.failed) {
        free(b.s);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    *json = b.s;
    return calib__ok(err);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* CALIB_EDATA with "partial state: PATH: why". */
__attribute__((format(printf, 3, 4))) static int
bad(calib_error *err, const char *path, const char *fmt, ...)
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
__attribute__((format(printf, 3, 4))) static const char *
at(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

static int get_count(const json_t *j, const char *path, uint64_t *out,
                     calib_error *err)
{
    if (!json_is_integer(j))
        return bad(err, path, "expected a non-negative integer");
    const json_int_t v = json_integer_value(j);
    if (v < 0)
        return bad(err, path, "%lld is negative", (long long)v);
    *out = (uint64_t)v;
    return CALIB_OK;
}

static int get_u128(const json_t *j, const char *path, u128 *out,
                    calib_error *err)
{
    const char *s = json_string_value(j);
    const size_t len = s ? json_string_length(j) : 0;
    if (!s || len == 0 || strspn(s, "0123456789") != len)
        return bad(err, path, "expected a string of decimal digits");
    const u128 max = ~(u128)0;
    u128 v = 0;
    for (size_t i = 0; i < len; i++) {
        const unsigned d = (unsigned)(s[i] - '0');
        if (v > (max - d) / 10)
            return bad(err, path, "does not fit in 128 bits");
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
        return bad(err, path, "expected a number, \"inf\", \"-inf\" or "
                              "\"nan\"");
    return CALIB_OK;
}

static int get_xsum(const json_t *j, const char *path, calib__xsum *out,
                    calib_error *err)
{
    const int64_t lim = (int64_t)1 << 32;
    const size_t n = json_array_size(j);
    calib__xsum_init(out);
    if (!json_is_array(j) || (n != CALIB__XSUM_DIGITS &&
                              n != CALIB__XSUM_DIGITS + 1))
        return bad(err, path, "expected an array of %d integer digits "
                              "(and the side sum)", CALIB__XSUM_DIGITS);
    for (int i = 0; i < CALIB__XSUM_DIGITS; i++) {
        const json_t *d = json_array_get(j, (size_t)i);
        const json_int_t v = json_integer_value(d);
        const int top = i == CALIB__XSUM_DIGITS - 1;
        if (!json_is_integer(d) || v > (top ? lim : lim - 1) ||
            v < (top ? -lim : 0))
            return bad(err, path, "digit %d: expected an integer in %s", i,
                       top ? "[-2^32, 2^32]" : "[0, 2^32)");
        out->d[i] = (int64_t)v;
    }
    if (n == CALIB__XSUM_DIGITS)
        return CALIB_OK;
    char sub[PATH_LEN];
    at(sub, sizeof sub, "%s[%d]", path, CALIB__XSUM_DIGITS);
    return get_big(json_array_get(j, CALIB__XSUM_DIGITS), sub, &out->big,
                   err);
}

static const char *member(char *buf, size_t size, const char *path,
                          const char *key)
{
    return at(buf, size, "%s.%s", path, key);
}

/* Checks that object j has exactly the members keys[0..n). */
static int check_members(const json_t *j, const char *path,
                         const char *const *keys, size_t n, calib_error *err)
{
    if (!json_is_object(j))
        return bad(err, path, "expected an object");
    for (size_t i = 0; i < n; i++)
        if (!json_object_get(j, keys[i]))
            return bad(err, path, "missing member \"%s\"", keys[i]);
    if (json_object_size(j) != n) {
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)j, k, v) {
            size_t i = 0;
            while (i < n && strcmp(keys[i], k) != 0)
                i++;
            if (i == n)
                return bad(err, path, "unknown member \"%s\"", k);
        }
    }
    return CALIB_OK;
}

static int get_cell(const json_t *j, const char *path, cell *c,
                    calib_error *err)
{
    static const char *const keys[] = {"count",   "plain",  "plain_hits",
                                       "conf_fx", "weight", "hit", "conf"};
    char m[PATH_LEN];
    memset(c, 0, sizeof *c);
    if (json_is_null(j))
        return CALIB_OK;
    int rc = check_members(j, path, keys, 7, err);
    if (!rc)
        rc = get_count(json_object_get(j, "count"),
                       member(m, sizeof m, path, "count"), &c->count, err);
    if (!rc)
        rc = get_count(json_object_get(j, "plain"),
                       member(m, sizeof m, path, "plain"), &c->plain, err);
    if (!rc)
        rc = get_count(json_object_get(j, "plain_hits"),
                       member(m, sizeof m, path, "plain_hits"),
                       &c->plain_hits, err);
    if (!rc)
        rc = get_u128(json_object_get(j, "conf_fx"),
                      member(m, sizeof m, path, "conf_fx"), &c->conf_fx, err);
    calib__xsum *const xs[] = {&c->weight, &c->hit, &c->conf};
    for (int i = 0; i < 3 && !rc; i++)
        rc = get_xsum(json_object_get(j, keys[4 + i]),
                      member(m, sizeof m, path, keys[4 + i]), xs[i], err);
    if (rc)
        return rc;
    if (c->count == 0)
        return bad(err, path, "an empty cell is written null, not count 0");
    if (c->plain > c->count || c->plain_hits > c->plain)
        return bad(err, path, "counts out of order (plain_hits %llu <= "
                              "plain %llu <= count %llu fails)",
                   (unsigned long long)c->plain_hits,
                   (unsigned long long)c->plain,
                   (unsigned long long)c->count);
    return CALIB_OK;
}

/* Whether cell i may hold rows under the accumulator's bins and rule. */
static int cell_allowed(size_t i, const calib_accum *a)
{
    const size_t m = (size_t)a->opt.bins;
    if (i == m)
        return a->opt.rule == CALIB_RULE_TORCHMETRICS;
    if (i == m + 1)
        return a->opt.rule == CALIB_RULE_GPLEISS ||
               a->opt.rule == CALIB_RULE_HOLLANCE;
    return 1;
}

static int get_cells(const json_t *j, const char *path, pop *P,
                     const calib_accum *a, calib_error *err)
{
    if (!json_is_array(j) || json_array_size(j) != P->n_cells)
        return bad(err, path, "expected an array of %zu cells (%d bins + 2)",
                   P->n_cells, a->opt.bins);
    char m[PATH_LEN];
    uint64_t rows = 0;
    for (size_t i = 0; i < P->n_cells; i++) {
        at(m, sizeof m, "%s[%zu]", path, i);
        const int rc = get_cell(json_array_get(j, i), m, &P->cells[i], err);
        if (rc)
            return rc;
        if (P->cells[i].count && !cell_allowed(i, a))
            return bad(err, m, "rows in a cell that bin rule %s leaves "
                               "empty", calib_bin_rule_name(a->opt.rule));
        if (rows + P->cells[i].count < rows)
            return bad(err, m, "row count overflows");
        rows += P->cells[i].count;
    }
    return CALIB_OK;
}

static uint64_t pop_rows(const pop *P)
{
    uint64_t n = 0;
    for (size_t i = 0; i < P->n_cells; i++)
        n += P->cells[i].count;
    return n;
}

/* Population members of object j (which has `extra` other members). */
static int get_pop(const json_t *j, const char *path, pop *P,
                   const calib_accum *a, int group, calib_error *err)
{
    static const char *const keys[] = {"name",  "cells", "p2_fx",
                                       "pc_fx", "fast_hits", "brier",
                                       "nll",   "clipped"};
    char m[PATH_LEN];
    int rc = check_members(j, path, keys + !group, 8 - (size_t)!group, err);
    if (!rc)
        rc = get_cells(json_object_get(j, "cells"),
                       member(m, sizeof m, path, "cells"), P, a, err);
    if (!rc)
        rc = get_u128(json_object_get(j, "p2_fx"),
                      member(m, sizeof m, path, "p2_fx"), &P->p2_fx, err);
    if (!rc)
        rc = get_u128(json_object_get(j, "pc_fx"),
                      member(m, sizeof m, path, "pc_fx"), &P->pc_fx, err);
    if (!rc)
        rc = get_count(json_object_get(j, "fast_hits"),
                       member(m, sizeof m, path, "fast_hits"), &P->fast_hits,
                       err);
    if (!rc)
        rc = get_xsum(json_object_get(j, "brier"),
                      member(m, sizeof m, path, "brier"), &P->brier, err);
    if (!rc)
        rc = get_xsum(json_object_get(j, "nll"),
                      member(m, sizeof m, path, "nll"), &P->nll, err);
    if (!rc)
        rc = get_count(json_object_get(j, "clipped"),
                       member(m, sizeof m, path, "clipped"), &P->clipped,
                       err);
    if (rc)
        return rc;
    const uint64_t rows = pop_rows(P);
    if (P->clipped > rows || P->fast_hits > rows)
        return bad(err, path, "clipped %llu or fast_hits %llu exceeds the "
                              "%llu rows", (unsigned long long)P->clipped,
                   (unsigned long long)P->fast_hits,
                   (unsigned long long)rows);
    char why[160];
    if (calib__pop_check(P, &a->bs, a->kind_seen == 1, why, sizeof why))
        return bad(err, path, "%s", why);
    return CALIB_OK;
}

static int get_groups(const json_t *j, calib_accum *a, calib_error *err)
{
    if (!json_is_array(j))
        return bad(err, "groups", "expected an array");
    if (json_array_size(j) && !a->kind_seen)
        return bad(err, "groups", "groups in a state of no rows");
    char path[PATH_LEN];
    for (size_t g = 0; g < json_array_size(j); g++) {
        const json_t *o = json_array_get(j, g);
        const char *name = json_string_value(json_object_get(o, "name"));
        at(path, sizeof path, "groups[%zu]", g);
        if (!name)
            return bad(err, path, "expected an object with a string \"name\"");
        const size_t i = calib__accum_group(a, name);
        if (i == SIZE_MAX)
            return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                               "out of memory");
        if (i != g)
            return bad(err, path, "group \"%s\" appears twice", name);
        const int rc = get_pop(o, path, a->groups[i], a, 1, err);
        if (rc)
            return rc;
    }
    /* every row of a group is a row of the whole (rows without a group
     * are only there), cell by cell */
    for (size_t i = 0; i < a->all->n_cells; i++) {
        uint64_t rows = 0;
        for (size_t g = 0; g < a->n_groups; g++)
            if ((rows += a->groups[g]->cells[i].count) > a->all->cells[i].count)
                return bad(err, "groups", "cells[%zu]: the groups hold more "
                                          "rows than overall's %llu", i,
                           (unsigned long long)a->all->cells[i].count);
    }
    return CALIB_OK;
}

static int get_read(const json_t *j, calib_read_stats *out, calib_error *err)
{
    calib_read_stats r = {0};
    if (j) {
        char m[64];
        int rc = check_members(j, "read", read_keys, N_READ, err);
        for (int i = 0; i < N_READ && !rc; i++) {
            uint64_t v = 0;
            rc = get_count(json_object_get(j, read_keys[i]),
                           member(m, sizeof m, "read", read_keys[i]), &v, err);
            *read_field(&r, i) = (size_t)v;
        }
        if (rc)
            return rc;
        if (r.rows_read != r.rows_used + r.rows_rejected)
            return bad(err, "read", "rows_read %zu is not rows_used %zu + "
                                    "rows_rejected %zu", r.rows_read,
                       r.rows_used, r.rows_rejected);
    }
    if (out)
        *out = r;
    return CALIB_OK;
}

/* format and version first, so another version says so and nothing else. */
static int check_format(const json_t *root, calib_error *err)
{
    if (!json_is_object(root))
        return bad(err, "$", "expected a JSON object");
    const char *f = json_string_value(json_object_get(root, "format"));
    if (!f || strcmp(f, FORMAT_NAME) != 0)
        return bad(err, "format", "not \"%s\": this is not a calib partial "
                                  "state", FORMAT_NAME);
    const json_t *v = json_object_get(root, "version");
    if (!json_is_integer(v))
        return bad(err, "version", "expected an integer");
    if (json_integer_value(v) != FORMAT_VERSION)
        return bad(err, "version", "version %lld; this calib (%s) reads "
                                   "version %d",
                   (long long)json_integer_value(v), calib_version(),
                   FORMAT_VERSION);
    return CALIB_OK;
}

/* bins, binning and bin_rule into *o. */
static int get_options(const json_t *root, calib_eval_options *o,
                       calib_error *err)
{
    const char *keys[13] = {"format",  "version",    "library", "bins",
                            "binning", "bin_rule",   "kind",    "classes",
                            "from_probs", "overall", "groups"};
    size_t n = 11;
    if (json_object_get(root, "read"))
        keys[n++] = "read";
    if (json_object_get(root, "meta"))
        keys[n++] = "meta";
    int rc = check_members(root, "$", keys, n, err);
    if (!rc && keys[n - 1][0] == 'm' &&
        !json_is_object(json_object_get(root, "meta")))
        rc = bad(err, "meta", "expected an object");
    if (rc)
        return rc;
    const json_t *bins = json_object_get(root, "bins");
    const char *binning = json_string_value(json_object_get(root, "binning"));
    const char *rule = json_string_value(json_object_get(root, "bin_rule"));
    calib_eval_options_init(o);
    if (!json_is_string(json_object_get(root, "library")))
        return bad(err, "library", "expected a string");
    if (!json_is_integer(bins) || json_integer_value(bins) < 1 ||
        json_integer_value(bins) > 1000000)
        return bad(err, "bins", "expected an integer in 1 .. 1000000");
    o->bins = (int)json_integer_value(bins);
    if (binning && strcmp(binning, "mass") == 0)
        return bad(err, "binning", "equal-mass binning is not available "
                                   "from partial states");
    if (!binning || strcmp(binning, "width") != 0)
        return bad(err, "binning", "expected \"width\"");
    if (!rule || calib_bin_rule_parse(rule, &o->rule) != CALIB_OK)
        return bad(err, "bin_rule", "expected sklearn, netcal, "
                                    "torchmetrics, gpleiss or hollance");
    return CALIB_OK;
}

/* kind, classes and from_probs into a. */
static int get_kind(const json_t *root, calib_accum *a, calib_error *err)
{
    const json_t *k = json_object_get(root, "kind");
    const json_t *c = json_object_get(root, "classes");
    const json_t *p = json_object_get(root, "from_probs");
    const char *ks = json_string_value(k);
    if (json_is_null(k))
        a->kind_seen = 0;
    else if (ks && strcmp(ks, "top-label") == 0)
        a->kind_seen = 1;
    else if (ks && strcmp(ks, "distribution") == 0)
        a->kind_seen = 2;
    else
        return bad(err, "kind", "expected null, \"top-label\" or "
                                "\"distribution\"");
    if (!json_is_boolean(p))
        return bad(err, "from_probs", "expected true or false");
    a->from_probs = json_is_true(p);
    if (a->kind_seen != 2) {
        if (!json_is_null(c) || a->from_probs)
            return bad(err, "classes", "classes and from_probs are for "
                                       "distribution rows only");
        return CALIB_OK;
    }
    uint64_t v = 0;
    const int rc = get_count(c, "classes", &v, err);
    a->classes = (size_t)v;
    return rc;
}

static int parse_state(const json_t *root, calib_accum **out,
                       calib_read_stats *read, calib_error *err)
{
    calib_eval_options o;
    calib_accum *a = NULL;
    int rc = check_format(root, err);
    if (!rc)
        rc = get_options(root, &o, err);
    if (!rc)
        rc = calib_accum_new(&o, &a, err);
    if (!rc)
        rc = get_kind(root, a, err);
    if (!rc)
        rc = get_pop(json_object_get(root, "overall"), "overall", a->all, a,
                     0, err);
    if (!rc && !a->kind_seen && pop_rows(a->all))
        rc = bad(err, "kind", "null, but the state has rows");
    if (!rc)
        rc = get_groups(json_object_get(root, "groups"), a, err);
    if (!rc)
        rc = get_read(json_object_get(root, "read"), read, err);
    if (rc) {
        calib_accum_free(a);
        return rc;
    }
    *out = a;
    return calib__ok(err);
}

int calib_accum_from_json(const char *json, size_t len, calib_accum **out,
                          calib_read_stats *read, calib_error *err)
{
    if (out)
        *out = NULL;
    if (!json || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "calib_accum_from_json: NULL argument");
    json_error_t e;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &e);
    if (!root)
        return calib__fail(err, CALIB_EDATA, NULL,
                           e.line > 0 ? (size_t)e.line : 0, 0,
                           e.column > 0 ? (size_t)e.column : 0,
                           "partial state: %s", e.text);
    const int rc = parse_state(root, out, read, err);
    json_decref(root);
    return rc;
}
