/* values.c — value tables: a population's rows grouped by confidence, with
 * exact sums per value, that merge by union.
 *
 * Equal-mass edges and rank metrics (AUROC, AURC, selective accuracy) need
 * the order of the confidences, which per-bin sums lose.  What they need
 * is less than every row, though: the distinct confidences, each with its
 * row count, its weight and its correct weight.  Those sums are exact
 * (integer counts for rows of weight 1, superaccumulators for weights), so
 * tables of shards merge, in any order, into the table of all the rows.
 *
 * Past `limit` distinct values a table switches to a grid: the key of p
 * becomes floor(p 2^g) 2^-g, g = 24 first, then 23, ... until it fits.
 * Flooring composes (the floor on 2^-(g-1) of a floor on 2^-g is the floor
 * on 2^-(g-1)), so a table coarsened twice equals one coarsened once, and
 * the merged table of any split and order sits on the same grid: the
 * finest one on which the union of all the rows fits.  A cell keeps the
 * exact sums of its rows — confidences included — and, while its rows
 * share one confidence, that confidence; values_mass.c uses this to tell
 * which results are still exact.
 */
#include "values.h"

#include <stdlib.h>
#include <string.h>

vtab *calib__vt_new(size_t limit)
{
    vtab *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->limit = limit < CALIB__VT_MIN_LIMIT ? CALIB__VT_MIN_LIMIT : limit;
    t->level = -1;
    return t;
}

void calib__vt_free(vtab *t)
{
    if (!t)
        return;
    free(t->e);
    free(t->slot);
    free(t->conf);
    free(t->wh);
    free(t);
}

double calib__vt_key(const vtab *t, double p)
{
    return t->level < 0 ? p : ldexp(floor(ldexp(p, t->level)), -t->level);
}

uint64_t calib__vt_rows(const vtab *t)
{
    uint64_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->e[i].count;
    return n;
}

/* ------------------------------------------------------------------ */
/* Storage                                                             */
/* ------------------------------------------------------------------ */

static size_t hash_of(double key, size_t mask)
{
    uint64_t u;
    memcpy(&u, &key, sizeof u);
    u ^= u >> 33; /* MurmurHash3's fmix64 */
    u *= UINT64_C(0xff51afd7ed558ccd);
    u ^= u >> 33;
    u *= UINT64_C(0xc4ceb9fe1a85ec53);
    u ^= u >> 33;
    return (size_t)u & mask;
}

/* The slot of `key`: its entry's, or the empty one where it would go. */
static size_t find_slot(const vtab *t, double key)
{
    const size_t mask = t->n_slot - 1;
    size_t h = hash_of(key, mask);
    while (t->slot[h] && t->e[t->slot[h] - 1].key != key)
        h = (h + 1) & mask;
    return h;
}

static int grow_slots(vtab *t)
{
    const size_t ns = t->n_slot ? 2 * t->n_slot : 64;
    uint32_t *s = calloc(ns, sizeof *s);
    if (!s)
        return CALIB_ENOMEM;
    free(t->slot);
    t->slot = s;
    t->n_slot = ns;
    for (size_t i = 0; i < t->n; i++)
        t->slot[find_slot(t, t->e[i].key)] = (uint32_t)(i + 1);
    return CALIB_OK;
}

/* Room for one more of `size`-byte items in *arr (n used of *cap). */
static int reserve(void **arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return CALIB_OK;
    const size_t c = *cap ? 2 * *cap : 16;
    void *a = realloc(*arr, c * size);
    if (!a)
        return CALIB_ENOMEM;
    *arr = a;
    *cap = c;
    return CALIB_OK;
}

/* The conf sum of e, made (zero) on first use; NULL when out of memory. */
static calib__xsum *conf_of(vtab *t, ventry *e)
{
    if (!e->xc) {
        if (reserve((void **)&t->conf, t->n_conf, &t->cap_conf,
                    sizeof *t->conf) != CALIB_OK)
            return NULL;
        calib__xsum_init(&t->conf[t->n_conf]);
        e->xc = (uint32_t)++t->n_conf;
    }
    return &t->conf[e->xc - 1];
}

/* The weight and hit sums of e, made on first use. */
static calib__xsum *wh_of(vtab *t, ventry *e)
{
    if (!e->xw) {
        if (reserve((void **)&t->wh, t->n_wh, &t->cap_wh,
                    2 * sizeof *t->wh) != CALIB_OK)
            return NULL;
        calib__xsum_init(&t->wh[2 * t->n_wh]);
        calib__xsum_init(&t->wh[2 * t->n_wh + 1]);
        e->xw = (uint32_t)++t->n_wh;
    }
    return &t->wh[2 * (e->xw - 1)];
}

/* The entry of `key`, appended empty (v = key) when new; NULL when out of
 * memory. */
static ventry *entry_of(vtab *t, double key)
{
    if (2 * (t->n + 1) > t->n_slot && grow_slots(t) != CALIB_OK)
        return NULL;
    const size_t h = find_slot(t, key);
    if (t->slot[h])
        return &t->e[t->slot[h] - 1];
    if (reserve((void **)&t->e, t->n, &t->cap, sizeof *t->e) != CALIB_OK)
        return NULL;
    ventry *e = &t->e[t->n];
    memset(e, 0, sizeof *e);
    e->v = e->key = key;
    t->slot[h] = (uint32_t)++t->n;
    return e;
}

/* ------------------------------------------------------------------ */
/* Adding runs                                                         */
/* ------------------------------------------------------------------ */

void calib__vt_conf(const vtab *t, const ventry *e, calib__xsum *dst)
{
    if (e->xc)
        calib__xsum_merge(dst, &t->conf[e->xc - 1]);
    if (!e->mixed)
        calib__xsum_add_times(dst, e->v, e->plain);
}

/* The rows of d (key `key`) stop sharing one confidence: their plain
 * rows' confidences join the conf sum. */
static int make_mixed(vtab *t, ventry *d)
{
    if (d->mixed)
        return CALIB_OK;
    calib__xsum *c = conf_of(t, d);
    if (!c)
        return CALIB_ENOMEM;
    calib__xsum_add_times(c, d->v, d->plain);
    d->mixed = 1;
    d->v = d->key;
    return CALIB_OK;
}

/* Adds run e (conf sum xc, weight/hit pair xw, either may be NULL) into t,
 * without coarsening. */
static int put_run(vtab *t, const ventry *e, const calib__xsum *xc,
                   const calib__xsum *xw)
{
    const double key = calib__vt_key(t, e->v);
    const size_t before = t->n;
    ventry *d = entry_of(t, key);
    if (!d)
        return CALIB_ENOMEM;
    const int fresh = t->n != before;
    if (fresh)
        d->v = e->mixed ? key : e->v;
    const int mix = e->mixed || (!fresh && (d->mixed || d->v != e->v));
    if (mix && make_mixed(t, d) != CALIB_OK)
        return CALIB_ENOMEM;
    calib__xsum *c = (xc || mix) ? conf_of(t, d) : NULL;
    calib__xsum *w = xw ? wh_of(t, d) : NULL;
    if (((xc || mix) && !c) || (xw && !w))
        return CALIB_ENOMEM;
    if (xc)
        calib__xsum_merge(c, xc);
    if (mix && !e->mixed)
        calib__xsum_add_times(c, e->v, e->plain);
    if (xw) {
        calib__xsum_merge(&w[0], &xw[0]);
        calib__xsum_merge(&w[1], &xw[1]);
    }
    d->count += e->count;
    d->plain += e->plain;
    d->plain_hits += e->plain_hits;
    return CALIB_OK;
}

static const calib__xsum *xc_of(const vtab *s, const ventry *e)
{
    return e->xc ? &s->conf[e->xc - 1] : NULL;
}

static const calib__xsum *xw_of(const vtab *s, const ventry *e)
{
    return e->xw ? &s->wh[2 * (e->xw - 1)] : NULL;
}

/* Rebuilds t on the grid of `level` (coarser than t's). */
static int rebuild(vtab *t, int level)
{
    vtab *u = calib__vt_new(SIZE_MAX);
    if (!u)
        return CALIB_ENOMEM;
    u->level = level;
    int rc = CALIB_OK;
    for (size_t i = 0; i < t->n && rc == CALIB_OK; i++)
        rc = put_run(u, &t->e[i], xc_of(t, &t->e[i]), xw_of(t, &t->e[i]));
    if (rc == CALIB_OK) {
        const vtab keep = *t;
        *t = *u;
        t->limit = keep.limit;
        *u = keep;
    }
    calib__vt_free(u);
    return rc;
}

/* Coarsens t until it fits its limit. */
static void fit(vtab *t)
{
    while (!t->nomem && t->n > t->limit && t->level != 0)
        if (rebuild(t, t->level < 0 ? CALIB__VT_FINEST : t->level - 1) !=
            CALIB_OK)
            t->nomem = 1;
}

void calib__vt_put(vtab *t, const vtab *s, const ventry *e)
{
    if (t->nomem)
        return;
    if (put_run(t, e, xc_of(s, e), xw_of(s, e)) != CALIB_OK)
        t->nomem = 1;
    fit(t);
}

void calib__vt_add(vtab *t, double p, double w, int weighted, int correct)
{
    if (t->nomem)
        return;
    p = p == 0.0 ? 0.0 : p; /* -0 and +0 are one confidence */
    if (!weighted) {
        const ventry *d = t->n ? &t->e[0] : NULL;
        if (d) {
            const size_t h = find_slot(t, calib__vt_key(t, p));
            d = t->slot[h] ? &t->e[t->slot[h] - 1] : NULL;
        }
        /* the common cases: a known confidence, or a mixed cell */
        if (d && (d->mixed || d->v == p)) {
            ventry *e = (ventry *)d;
            e->count++;
            e->plain++;
            e->plain_hits += (uint64_t)(correct != 0);
            if (e->mixed)
                calib__xsum_add(&t->conf[e->xc - 1], p);
            return;
        }
    }
    ventry r;
    memset(&r, 0, sizeof r);
    r.v = p;
    r.count = 1;
    r.plain = !weighted;
    r.plain_hits = !weighted && correct;
    calib__xsum c, x[2];
    calib__xsum_init(&c);
    calib__xsum_init(&x[0]);
    calib__xsum_init(&x[1]);
    calib__xsum_add_product(&c, w, p);
    calib__xsum_add(&x[0], w);
    if (correct)
        calib__xsum_add(&x[1], w);
    if (put_run(t, &r, weighted ? &c : NULL, weighted ? x : NULL) !=
        CALIB_OK)
        t->nomem = 1;
    fit(t);
}

void calib__vt_merge(vtab *d, const vtab *s)
{
    if (d->nomem || s->nomem) {
        d->nomem = 1;
        return;
    }
    d->limit = s->limit < d->limit ? s->limit : d->limit;
    /* a coarser grid on either side: d moves to it first */
    if (s->level >= 0 && (d->level < 0 || s->level < d->level) &&
        rebuild(d, s->level) != CALIB_OK) {
        d->nomem = 1;
        return;
    }
    for (size_t i = 0; i < s->n && !d->nomem; i++)
        calib__vt_put(d, s, &s->e[i]);
}

/* ------------------------------------------------------------------ */
/* Order                                                               */
/* ------------------------------------------------------------------ */

typedef struct keyed {
    double key;
    uint32_t i;
} keyed;

static int by_key(const void *a, const void *b)
{
    const double x = ((const keyed *)a)->key, y = ((const keyed *)b)->key;
    return (x > y) - (x < y);
}

uint32_t *calib__vt_order(const vtab *t)
{
    keyed *k = malloc((t->n ? t->n : 1) * sizeof *k);
    uint32_t *o = malloc((t->n ? t->n : 1) * sizeof *o);
    if (!k || !o || t->n == 0) {
        free(k);
        free(o);
        return NULL;
    }
    for (size_t i = 0; i < t->n; i++)
        k[i] = (keyed){t->e[i].key, (uint32_t)i};
    qsort(k, t->n, sizeof *k, by_key);
    for (size_t i = 0; i < t->n; i++)
        o[i] = k[i].i;
    free(k);
    return o;
}
