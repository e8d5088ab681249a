/* values_json.c — a population's value table in a partial state, written
 * and read back (format version 2; accum_json.c writes the rest).
 *
 *   "values": {"grid": null | g, "runs": [RUN, ...]}
 *   RUN = [v, count, plain_hits]                   rows of weight 1 only,
 *                                                  all of confidence v
 *       | [v, count, plain, plain_hits, {"mixed": true, "conf": XSUM,
 *          "weight": XSUM, "hit": XSUM}]           members as needed
 *
 * grid null: every v is a confidence and the runs hold every row of it;
 * grid g: the rows of the cell [k 2^-g, (k+1) 2^-g) that holds v, which
 * are all of confidence v unless "mixed" (then v is the cell's lower end
 * and "conf" the exact sum of their w p).  "conf" otherwise holds the sum
 * of w p of weighted rows, "weight" and "hit" their sums of w and of
 * w [correct].  Runs are written in increasing order of v, one per cell,
 * so a table has one text whatever the thread count or the order of
 * merging.  Reading checks every type, range and count, the order, and
 * that a run fits the grid.
 */
#include "state_json.h"
#include "values.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

static void put_run(calib__buf *b, const vtab *t, const ventry *e)
{
    calib__buf_puts(b, "[");
    calib__buf_json_number(b, e->v);
    if (!e->mixed && !e->xc && !e->xw && e->plain == e->count) {
        calib__buf_printf(b, ",%llu,%llu]", (unsigned long long)e->count,
                          (unsigned long long)e->plain_hits);
        return;
    }
    calib__buf_printf(b, ",%llu,%llu,%llu,{", (unsigned long long)e->count,
                      (unsigned long long)e->plain,
                      (unsigned long long)e->plain_hits);
    const char *sep = "";
    if (e->mixed) {
        calib__buf_puts(b, "\"mixed\":true");
        sep = ",";
    }
    if (e->xc) {
        calib__buf_printf(b, "%s\"conf\":", sep);
        calib__pj_put_xsum(b, &t->conf[e->xc - 1]);
        sep = ",";
    }
    if (e->xw) {
        calib__buf_printf(b, "%s\"weight\":", sep);
        calib__pj_put_xsum(b, &t->wh[2 * (e->xw - 1)]);
        calib__buf_puts(b, ",\"hit\":");
        calib__pj_put_xsum(b, &t->wh[2 * (e->xw - 1) + 1]);
    }
    calib__buf_puts(b, "}]");
}

void calib__vt_put_json(calib__buf *b, const vtab *t)
{
    uint32_t *order = calib__vt_order(t);
    if (t->nomem || (t->n && !order)) {
        b->failed = 1;
        free(order);
        return;
    }
    calib__buf_puts(b, "\"values\":{\"grid\":");
    if (t->level < 0)
        calib__buf_puts(b, "null");
    else
        calib__buf_printf(b, "%d", t->level);
    calib__buf_puts(b, ",\"runs\":[");
    for (size_t j = 0; j < t->n; j++) {
        calib__buf_puts(b, j ? "," : "");
        put_run(b, t, &t->e[order[j]]);
    }
    calib__buf_puts(b, "]}");
    free(order);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* A run read from JSON, as a one-entry table that calib__vt_put takes. */
typedef struct one_run {
    ventry e;
    calib__xsum conf, wh[2];
    vtab src;
} one_run;

/* The optional sums of a five-member run. */
static int get_sums(const json_t *j, const char *path, one_run *r,
                    calib_error *err)
{
    static const char *const keys[] = {"mixed", "conf", "weight", "hit"};
    char m[PATH_LEN];
    if (!json_is_object(j))
        return calib__pj_bad(err, path, "expected an object");
    size_t known = 0;
    for (size_t i = 0; i < 4; i++)
        known += json_object_get(j, keys[i]) != NULL;
    if (known != json_object_size(j))
        return calib__pj_bad(err, path, "members are mixed, conf, weight "
                                        "and hit");
    const json_t *mixed = json_object_get(j, "mixed");
    if (mixed && !json_is_true(mixed))
        return calib__pj_bad(err, path, "\"mixed\" is written true or not "
                                        "at all");
    r->e.mixed = mixed != NULL;
    const int has_w = json_object_get(j, "weight") != NULL;
    if (has_w != (json_object_get(j, "hit") != NULL))
        return calib__pj_bad(err, path, "\"weight\" and \"hit\" go "
                                        "together");
    int rc = CALIB_OK;
    if (json_object_get(j, "conf")) {
        r->e.xc = 1;
        rc = calib__pj_xsum(json_object_get(j, "conf"),
                            calib__pj_member(m, sizeof m, path, "conf"),
                            &r->conf, err);
    }
    if (!rc && has_w) {
        r->e.xw = 1;
        rc = calib__pj_xsum(json_object_get(j, "weight"),
                            calib__pj_member(m, sizeof m, path, "weight"),
                            &r->wh[0], err);
    }
    if (!rc && has_w)
        rc = calib__pj_xsum(json_object_get(j, "hit"),
                            calib__pj_member(m, sizeof m, path, "hit"),
                            &r->wh[1], err);
    return rc;
}

/* Checks that run r is one calib could have written into table t. */
static int check_run(const one_run *r, const char *path, const vtab *t,
                     calib_error *err)
{
    const ventry *e = &r->e;
    if (e->count == 0)
        return calib__pj_bad(err, path, "a run of no rows");
    if (e->plain > e->count || e->plain_hits > e->plain)
        return calib__pj_bad(err, path, "counts out of order (plain_hits "
                                        "<= plain <= count fails)");
    if (e->plain < e->count && !e->xw)
        return calib__pj_bad(err, path, "weighted rows without \"weight\"");
    if (e->mixed && (t->level < 0 || calib__vt_key(t, e->v) != e->v ||
                     !e->xc))
        return calib__pj_bad(err, path, "a mixed run must be on the grid, "
                                        "at its cell's lower end, with "
                                        "\"conf\"");
    return CALIB_OK;
}

static int get_run(const json_t *j, const char *path, const vtab *t,
                   one_run *r, calib_error *err)
{
    const size_t n = json_array_size(j);
    memset(r, 0, sizeof *r);
    if (!json_is_array(j) || (n != 3 && n != 5))
        return calib__pj_bad(err, path, "expected [v, count, plain_hits] or "
                                        "[v, count, plain, plain_hits, "
                                        "{...}]");
    const json_t *v = json_array_get(j, 0);
    r->e.v = json_number_value(v);
    if (!json_is_number(v) || !(r->e.v >= 0.0 && r->e.v <= 1.0))
        return calib__pj_bad(err, path, "the confidence must be a number in "
                                        "[0, 1]");
    r->e.v = r->e.v == 0.0 ? 0.0 : r->e.v;
    uint64_t *const f[3] = {&r->e.count, &r->e.plain, &r->e.plain_hits};
    char m[PATH_LEN];
    int rc = CALIB_OK;
    for (size_t i = 1; i < n && i <= 3 && !rc; i++)
        rc = calib__pj_count(json_array_get(j, i),
                             calib__pj_at(m, sizeof m, "%s[%zu]", path, i),
                             n == 3 && i == 2 ? &r->e.plain_hits : f[i - 1],
                             err);
    if (n == 3)
        r->e.plain = r->e.count;
    if (!rc && n == 5)
        rc = get_sums(json_array_get(j, 4),
                      calib__pj_at(m, sizeof m, "%s[4]", path), r, err);
    return rc ? rc : check_run(r, path, t, err);
}

static int get_grid(const json_t *g, const char *path, vtab *t,
                    calib_error *err)
{
    if (json_is_null(g))
        return CALIB_OK;
    if (!json_is_integer(g) || json_integer_value(g) < 0 ||
        json_integer_value(g) > CALIB__VT_FINEST)
        return calib__pj_bad(err, path, "expected null or an integer in "
                                        "0 .. %d", CALIB__VT_FINEST);
    t->level = (int)json_integer_value(g);
    return CALIB_OK;
}

int calib__vt_get_json(const json_t *j, const char *path, vtab *t,
                       calib_error *err)
{
    static const char *const keys[] = {"grid", "runs"};
    char m[PATH_LEN];
    int rc = calib__pj_members(j, path, keys, 2, err);
    if (!rc)
        rc = get_grid(json_object_get(j, "grid"),
                      calib__pj_member(m, sizeof m, path, "grid"), t, err);
    const json_t *runs = json_object_get(j, "runs");
    if (!rc && (!json_is_array(runs) || json_array_size(runs) > t->limit))
        rc = calib__pj_bad(err, calib__pj_member(m, sizeof m, path, "runs"),
                           "expected an array of at most value_limit (%zu) "
                           "runs", t->limit);
    double prev = -1.0;
    for (size_t i = 0; !rc && i < json_array_size(runs); i++) {
        one_run r;
        calib__pj_at(m, sizeof m, "%s.runs[%zu]", path, i);
        rc = get_run(json_array_get(runs, i), m, t, &r, err);
        const double key = rc ? 0.0 : calib__vt_key(t, r.e.v);
        if (!rc && key <= prev)
            rc = calib__pj_bad(err, m, "runs must be in increasing order, "
                                       "one per %s", t->level < 0
                                                         ? "confidence"
                                                         : "grid cell");
        prev = key;
        if (rc)
            break;
        r.src.conf = &r.conf;
        r.src.wh = r.wh;
        calib__vt_put(t, &r.src, &r.e);
        if (t->nomem)
            rc = calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                             "out of memory");
    }
    return rc;
}
