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
 * The object (version 1; version 2 adds the value tables):
 *   {"format": "calib-partial", "version": 1 | 2, "library": "0.1.0",
 *    "bins": M, "binning": "width", "bin_rule": "sklearn",
 *    "kind": null | "top-label" | "distribution",
 *    "classes": null | K (0: ragged rows or different K),
 *    "from_probs": bool, "read": {rows_read, ... 8 counts} (optional),
 *    "value_limit": n (version 2 only: at most n runs per table),
 *    "overall": POP, "groups": [{"name": NAME, ...POP}, ...],
 *    "meta": {...} (optional: what a program built on calib records about
 *    how the rows were made; this file ignores it)}
 *   POP  = {"cells": [CELL x (M + 2)], "p2_fx": U128, "pc_fx": U128,
 *           "fast_hits": n, "brier": XSUM, "nll": XSUM, "clipped": n,
 *           "values": TABLE (version 2 only; values_json.c)}
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
#include "state_json.h"
#include "values.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORMAT_NAME "calib-partial"
#define FORMAT_VERSION 1        /* without value tables */
#define FORMAT_VERSION_VALUES 2 /* with them (values_json.c) */

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

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
    calib__pj_put_u128(b, c->conf_fx);
    calib__buf_puts(b, ",\"weight\":");
    calib__pj_put_xsum(b, &c->weight);
    calib__buf_puts(b, ",\"hit\":");
    calib__pj_put_xsum(b, &c->hit);
    calib__buf_puts(b, ",\"conf\":");
    calib__pj_put_xsum(b, &c->conf);
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
    calib__pj_put_u128(b, P->p2_fx);
    calib__buf_puts(b, ",\"pc_fx\":");
    calib__pj_put_u128(b, P->pc_fx);
    calib__buf_printf(
        b, ",\"fast_hits\":%llu,\"brier\":", (unsigned long long)P->fast_hits);
    calib__pj_put_xsum(b, &P->brier);
    calib__buf_puts(b, ",\"nll\":");
    calib__pj_put_xsum(b, &P->nll);
    calib__buf_printf(b, ",\"clipped\":%llu", (unsigned long long)P->clipped);
    if (P->vt) {
        calib__buf_puts(b, ",");
        calib__vt_put_json(b, P->vt);
    }
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
                      FORMAT_NAME,
                      a->vlimit ? FORMAT_VERSION_VALUES : FORMAT_VERSION);
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
    if (a->vlimit)
        calib__buf_printf(b, ",\"value_limit\":%zu", a->vlimit);
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

static int get_cell(const json_t *j, const char *path, cell *c,
                    calib_error *err)
{
    static const char *const keys[] = {"count",   "plain",  "plain_hits",
                                       "conf_fx", "weight", "hit", "conf"};
    char m[PATH_LEN];
    memset(c, 0, sizeof *c);
    if (json_is_null(j))
        return CALIB_OK;
    int rc = calib__pj_members(j, path, keys, 7, err);
    if (!rc)
        rc = calib__pj_count(json_object_get(j, "count"),
                             calib__pj_member(m, sizeof m, path, "count"),
                             &c->count, err);
    if (!rc)
        rc = calib__pj_count(json_object_get(j, "plain"),
                             calib__pj_member(m, sizeof m, path, "plain"),
                             &c->plain, err);
    if (!rc)
        rc = calib__pj_count(json_object_get(j, "plain_hits"),
                             calib__pj_member(m, sizeof m, path, "plain_hits"),
                             &c->plain_hits, err);
    if (!rc)
        rc = calib__pj_u128(json_object_get(j, "conf_fx"),
                            calib__pj_member(m, sizeof m, path, "conf_fx"),
                            &c->conf_fx, err);
    calib__xsum *const xs[] = {&c->weight, &c->hit, &c->conf};
    for (int i = 0; i < 3 && !rc; i++)
        rc = calib__pj_xsum(json_object_get(j, keys[4 + i]),
                            calib__pj_member(m, sizeof m, path, keys[4 + i]),
                            xs[i], err);
    if (rc)
        return rc;
    if (c->count == 0)
        return calib__pj_bad(err, path,
                             "an empty cell is written null, not count 0");
    if (c->plain > c->count || c->plain_hits > c->plain)
        return calib__pj_bad(err, path,
                             "counts out of order (plain_hits %llu <= "
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
        return calib__pj_bad(err, path,
                             "expected an array of %zu cells (%d bins + 2)",
                             P->n_cells, a->opt.bins);
    char m[PATH_LEN];
    uint64_t rows = 0;
    for (size_t i = 0; i < P->n_cells; i++) {
        calib__pj_at(m, sizeof m, "%s[%zu]", path, i);
        const int rc = get_cell(json_array_get(j, i), m, &P->cells[i], err);
        if (rc)
            return rc;
        if (P->cells[i].count && !cell_allowed(i, a))
            return calib__pj_bad(err, m,
                                 "rows in a cell that bin rule %s leaves "
                                 "empty",
                                 calib_bin_rule_name(a->opt.rule));
        if (rows + P->cells[i].count < rows)
            return calib__pj_bad(err, m, "row count overflows");
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
                                       "nll",   "clipped", "values"};
    char m[PATH_LEN];
    const size_t nk = 8 + (P->vt != NULL) - (size_t)!group;
    int rc = calib__pj_members(j, path, keys + !group, nk, err);
    if (!rc)
        rc =
            get_cells(json_object_get(j, "cells"),
                      calib__pj_member(m, sizeof m, path, "cells"), P, a, err);
    if (!rc)
        rc = calib__pj_u128(json_object_get(j, "p2_fx"),
                            calib__pj_member(m, sizeof m, path, "p2_fx"),
                            &P->p2_fx, err);
    if (!rc)
        rc = calib__pj_u128(json_object_get(j, "pc_fx"),
                            calib__pj_member(m, sizeof m, path, "pc_fx"),
                            &P->pc_fx, err);
    if (!rc)
        rc = calib__pj_count(json_object_get(j, "fast_hits"),
                             calib__pj_member(m, sizeof m, path, "fast_hits"),
                             &P->fast_hits, err);
    if (!rc)
        rc = calib__pj_xsum(json_object_get(j, "brier"),
                            calib__pj_member(m, sizeof m, path, "brier"),
                            &P->brier, err);
    if (!rc)
        rc = calib__pj_xsum(json_object_get(j, "nll"),
                            calib__pj_member(m, sizeof m, path, "nll"),
                            &P->nll, err);
    if (!rc)
        rc = calib__pj_count(json_object_get(j, "clipped"),
                             calib__pj_member(m, sizeof m, path, "clipped"),
                             &P->clipped, err);
    if (rc)
        return rc;
    const uint64_t rows = pop_rows(P);
    if (P->clipped > rows || P->fast_hits > rows)
        return calib__pj_bad(err, path,
                             "clipped %llu or fast_hits %llu "
                             "exceeds the %llu rows",
                             (unsigned long long)P->clipped,
                             (unsigned long long)P->fast_hits,
                             (unsigned long long)rows);
    char why[160];
    if (calib__pop_check(P, &a->bs, a->kind_seen == 1, why, sizeof why))
        return calib__pj_bad(err, path, "%s", why);
    if (!P->vt)
        return CALIB_OK;
    calib__pj_member(m, sizeof m, path, "values");
    rc = calib__vt_get_json(json_object_get(j, "values"), m, P->vt, err);
    if (!rc && calib__vt_rows(P->vt) != rows)
        rc = calib__pj_bad(err, m, "%llu rows, the cells hold %llu",
                           (unsigned long long)calib__vt_rows(P->vt),
                           (unsigned long long)rows);
    return rc;
}

static int get_groups(const json_t *j, calib_accum *a, calib_error *err)
{
    if (!json_is_array(j))
        return calib__pj_bad(err, "groups", "expected an array");
    if (json_array_size(j) && !a->kind_seen)
        return calib__pj_bad(err, "groups", "groups in a state of no rows");
    char path[PATH_LEN];
    for (size_t g = 0; g < json_array_size(j); g++) {
        const json_t *o = json_array_get(j, g);
        const char *name = json_string_value(json_object_get(o, "name"));
        calib__pj_at(path, sizeof path, "groups[%zu]", g);
        if (!name)
            return calib__pj_bad(err, path,
                                 "expected an object with a string \"name\"");
        const size_t i = calib__accum_group(a, name);
        if (i == SIZE_MAX)
            return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                               "out of memory");
        if (i != g)
            return calib__pj_bad(err, path, "group \"%s\" appears twice",
                                 name);
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
                return calib__pj_bad(err, "groups",
                                     "cells[%zu]: the groups hold more rows "
                                     "than overall's %llu", i,
                                     (unsigned long long)a->all->cells[i].count);
    }
    return CALIB_OK;
}

static int get_read(const json_t *j, calib_read_stats *out, calib_error *err)
{
    calib_read_stats r = {0};
    if (j) {
        char m[64];
        int rc = calib__pj_members(j, "read", read_keys, N_READ, err);
        for (int i = 0; i < N_READ && !rc; i++) {
            uint64_t v = 0;
            rc = calib__pj_count(
                json_object_get(j, read_keys[i]),
                calib__pj_member(m, sizeof m, "read", read_keys[i]), &v, err);
            *read_field(&r, i) = (size_t)v;
        }
        if (rc)
            return rc;
        if (r.rows_read != r.rows_used + r.rows_rejected)
            return calib__pj_bad(err, "read",
                                 "rows_read %zu is not rows_used %zu + "
                                 "rows_rejected %zu",
                                 r.rows_read, r.rows_used, r.rows_rejected);
    }
    if (out)
        *out = r;
    return CALIB_OK;
}

/* format and version first, so another version says so and nothing else. */
static int check_format(const json_t *root, calib_error *err)
{
    if (!json_is_object(root))
        return calib__pj_bad(err, "$", "expected a JSON object");
    const char *f = json_string_value(json_object_get(root, "format"));
    if (!f || strcmp(f, FORMAT_NAME) != 0)
        return calib__pj_bad(err, "format",
                             "not \"%s\": this is not a calib partial "
                             "state",
                             FORMAT_NAME);
    const json_t *v = json_object_get(root, "version");
    if (!json_is_integer(v))
        return calib__pj_bad(err, "version", "expected an integer");
    const json_int_t n = json_integer_value(v);
    if (n != FORMAT_VERSION && n != FORMAT_VERSION_VALUES)
        return calib__pj_bad(err, "version",
                             "version %lld; this calib (%s) "
                             "reads versions %d and %d",
                             (long long)n, calib_version(), FORMAT_VERSION,
                             FORMAT_VERSION_VALUES);
    return CALIB_OK;
}

/* Version 2's value_limit (0 in version 1) into *limit. */
static int get_limit(const json_t *root, size_t *limit, calib_error *err)
{
    *limit = 0;
    if (json_integer_value(json_object_get(root, "version")) == FORMAT_VERSION)
        return CALIB_OK;
    const json_t *l = json_object_get(root, "value_limit");
    if (!json_is_integer(l) || json_integer_value(l) < CALIB__VT_MIN_LIMIT ||
        json_integer_value(l) > ((json_int_t)1 << 31))
        return calib__pj_bad(err, "value_limit",
                             "expected an integer in "
                             "%d .. 2^31",
                             CALIB__VT_MIN_LIMIT);
    *limit = (size_t)json_integer_value(l);
    return CALIB_OK;
}

/* bins, binning and bin_rule into *o. */
static int get_options(const json_t *root, calib_eval_options *o,
                       calib_error *err)
{
    const char *keys[14] = {"format",  "version",    "library", "bins",
                            "binning", "bin_rule",   "kind",    "classes",
                            "from_probs", "overall", "groups"};
    size_t n = 11;
    if (json_integer_value(json_object_get(root, "version")) != FORMAT_VERSION)
        keys[n++] = "value_limit";
    if (json_object_get(root, "read"))
        keys[n++] = "read";
    if (json_object_get(root, "meta"))
        keys[n++] = "meta";
    int rc = calib__pj_members(root, "$", keys, n, err);
    if (!rc && strcmp(keys[n - 1], "meta") == 0 &&
        !json_is_object(json_object_get(root, "meta")))
        rc = calib__pj_bad(err, "meta", "expected an object");
    if (rc)
        return rc;
    const json_t *bins = json_object_get(root, "bins");
    const char *binning = json_string_value(json_object_get(root, "binning"));
    const char *rule = json_string_value(json_object_get(root, "bin_rule"));
    calib_eval_options_init(o);
    if (!json_is_string(json_object_get(root, "library")))
        return calib__pj_bad(err, "library", "expected a string");
    if (!json_is_integer(bins) || json_integer_value(bins) < 1 ||
        json_integer_value(bins) > 1000000)
        return calib__pj_bad(err, "bins",
                             "expected an integer in 1 .. 1000000");
    o->bins = (int)json_integer_value(bins);
    if (binning && strcmp(binning, "mass") == 0)
        return calib__pj_bad(err, "binning",
                             "equal-mass binning is not available "
                             "from partial states");
    if (!binning || strcmp(binning, "width") != 0)
        return calib__pj_bad(err, "binning", "expected \"width\"");
    if (!rule || calib_bin_rule_parse(rule, &o->rule) != CALIB_OK)
        return calib__pj_bad(err, "bin_rule",
                             "expected sklearn, netcal, "
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
        return calib__pj_bad(err, "kind",
                             "expected null, \"top-label\" or "
                             "\"distribution\"");
    if (!json_is_boolean(p))
        return calib__pj_bad(err, "from_probs", "expected true or false");
    a->from_probs = json_is_true(p);
    if (a->kind_seen != 2) {
        if (!json_is_null(c) || a->from_probs)
            return calib__pj_bad(err, "classes",
                                 "classes and from_probs are for "
                                 "distribution rows only");
        return CALIB_OK;
    }
    uint64_t v = 0;
    const int rc = calib__pj_count(c, "classes", &v, err);
    a->classes = (size_t)v;
    return rc;
}

static int parse_state(const json_t *root, calib_accum **out,
                       calib_read_stats *read, calib_error *err)
{
    calib_eval_options o;
    calib_accum *a = NULL;
    size_t limit = 0;
    int rc = check_format(root, err);
    if (!rc)
        rc = get_options(root, &o, err);
    if (!rc)
        rc = get_limit(root, &limit, err);
    if (!rc)
        rc = calib_accum_new(&o, &a, err);
    if (!rc && limit)
        rc = calib_accum_keep_values(a, limit, err);
    if (!rc)
        rc = get_kind(root, a, err);
    if (!rc)
        rc = get_pop(json_object_get(root, "overall"), "overall", a->all, a,
                     0, err);
    if (!rc && !a->kind_seen && pop_rows(a->all))
        rc = calib__pj_bad(err, "kind", "null, but the state has rows");
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
        return calib__json_status(&e) == CALIB_ENOMEM
                   ? calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                                 "out of memory")
                   : calib__fail(err, CALIB_EDATA, NULL,
                                 e.line > 0 ? (size_t)e.line : 0, 0,
                                 e.column > 0 ? (size_t)e.column : 0,
                                 "partial state: %s", e.text);
    const int rc = parse_state(root, out, read, err);
    json_decref(root);
    return rc;
}
