/* values.h — the value table of a population: its rows as runs of one
 * confidence, for equal-mass bins and rank metrics of merged states.
 *
 * values.c keeps the table (exact, or on a grid past its size limit),
 * values_mass.c turns it into equal-mass metrics, values_json.c writes and
 * reads it.  Names are calib__vt_*; nothing here is seen outside src/.
 */
#ifndef CALIB_VALUES_H
#define CALIB_VALUES_H

#include "internal.h"

/* The finest grid a table switches to when it outgrows its limit: keys
 * floor(p 2^24) 2^-24, so float32 confidences >= 0.5 keep their cells to
 * themselves.  Each coarsening halves the resolution (level 24, 23, ... 0). */
#define CALIB__VT_FINEST 24
/* The smallest limit: level 0 has at most two cells (0 and 1). */
#define CALIB__VT_MIN_LIMIT 16

/* One run: every row whose confidence is v (exact tables), or every row
 * whose confidence falls in the grid cell [key, key + 2^-level).  A cell
 * that holds rows of one confidence only keeps it in v (not mixed); a
 * mixed cell has v = key and its sums of confidences in conf. */
typedef struct ventry {
    double v, key;
    uint64_t count;         /* rows */
    uint64_t plain;         /* rows of weight 1 (no weights) */
    uint64_t plain_hits;    /* of which correct */
    uint32_t xc;            /* 1 + index in conf[]: sum of w p of weighted
                               rows, and of p of every plain row when
                               mixed; 0: none */
    uint32_t xw;            /* 1 + index of the pair in wh[]: sum w, sum
                               w [correct] of weighted rows; 0: none */
    int mixed;
} ventry;

typedef struct vtab {
    ventry *e;
    size_t n, cap;
    uint32_t *slot;         /* open addressing: 1 + entry index, 0 empty */
    size_t n_slot;          /* a power of two >= 2 n */
    calib__xsum *conf;
    size_t n_conf, cap_conf;
    calib__xsum *wh;        /* pairs: weight, hit */
    size_t n_wh, cap_wh;
    size_t limit;           /* at most this many entries */
    int level;              /* -1: exact; g: cells of 2^-g */
    int nomem;              /* an allocation failed: the table is unusable */
} vtab;

/* A new empty exact table of at most `limit` (>= CALIB__VT_MIN_LIMIT)
 * entries; NULL when out of memory. */
vtab *calib__vt_new(size_t limit);
void calib__vt_free(vtab *t);

/* Adds one row (confidence p in [0, 1], weight w when `weighted`). */
void calib__vt_add(vtab *t, double p, double w, int weighted, int correct);
/* Adds entry e of table s (its sums from s) into t, then coarsens t while
 * it is over its limit. */
void calib__vt_put(vtab *t, const vtab *s, const ventry *e);
/* Merges s into d: d takes the smaller limit and the coarser grid. */
void calib__vt_merge(vtab *d, const vtab *s);

/* The key of confidence p at t's level. */
double calib__vt_key(const vtab *t, double p);
/* Adds the sum of w p over e's rows into *dst. */
void calib__vt_conf(const vtab *t, const ventry *e, calib__xsum *dst);
/* Entry indices in increasing order of confidence (malloc'd, n entries;
 * NULL when out of memory or n = 0). */
uint32_t *calib__vt_order(const vtab *t);
/* Rows in the table. */
uint64_t calib__vt_rows(const vtab *t);

#endif /* CALIB_VALUES_H */
