/* concat.c — calib_dataset_concat: several prediction sets as one.
 *
 * What `calib eval` of several files needs for the metrics that see every
 * row at once (equal-mass bins, fitting): the rows of each part, in order,
 * copied into arrays the result owns, with group names merged by name in
 * first-appearance order (part 0's groups first).  Scores are stored as
 * float64 whatever the parts' dtype, since the parts may differ; ragged
 * parts keep their offsets, shifted.  Parts either all have groups or
 * none has: a row without a group has no place in a per-group table.
 */
#include "read.h"

#include <stdlib.h>
#include <string.h>

static const char *kind_name(calib_kind k)
{
    return k == CALIB_TOPLABEL ? "top-label"
           : k == CALIB_PROBS  ? "probabilities"
                               : "logits";
}

/* The result's shape: kind, K (0 when ragged), totals. */
typedef struct shape {
    calib_kind kind;
    size_t k, n, n_scores;
    int ragged, weights, groups;
} shape;

static int check_parts(const calib_dataset *const *parts, size_t n,
                       shape *s, calib_error *err)
{
    memset(s, 0, sizeof *s);
    if (!parts || n == 0)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0, "no parts");
    s->kind = parts[0]->kind;
    s->k = parts[0]->k;
    s->ragged = parts[0]->offsets != NULL;
    s->groups = parts[0]->groups != NULL;
    for (size_t p = 0; p < n; p++) {
        const calib_dataset *d = parts[p];
        if (d->kind != s->kind)
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "part %zu holds other rows than part 0 "
                               "(%s): cannot mix top-label and distribution "
                               "rows", p, kind_name(s->kind));
        if (s->kind != CALIB_TOPLABEL &&
            ((d->offsets != NULL) != s->ragged || (!s->ragged && d->k != s->k)))
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "part %zu has other classes than part 0 "
                               "(parts are joined only with the same K, or "
                               "when every part is ragged)", p);
        if ((d->groups != NULL) != s->groups)
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "part %zu %s groups, part 0 %s", p,
                               s->groups ? "has no" : "has",
                               s->groups ? "has" : "has none");
        s->weights |= d->weights != NULL;
        s->n += d->n;
        if (s->kind != CALIB_TOPLABEL)
            s->n_scores += d->n ? calib__row_begin(d, d->n - 1) +
                                      calib__row_len(d, d->n - 1) -
                                      calib__row_begin(d, 0)
                                : 0;
    }
    return CALIB_OK;
}

/* Allocates the arrays of `s` into a calib__rows-like table. */
static int alloc_rows(const shape *s, calib__rows *r)
{
    memset(r, 0, sizeof *r);
    const size_t n = s->n ? s->n : 1;
    const int top = s->kind == CALIB_TOPLABEL;
    int bad = 0;
    if (top) {
        bad |= !(r->conf = malloc(n * sizeof *r->conf));
        bad |= !(r->correct = malloc(n * sizeof *r->correct));
    } else {
        bad |= !(r->scores = malloc((s->n_scores ? s->n_scores : 1) *
                                    sizeof *r->scores));
        bad |= !(r->labels = malloc(n * sizeof *r->labels));
    }
    if (s->ragged)
        bad |= !(r->offsets = malloc((n + 1) * sizeof *r->offsets));
    if (s->weights)
        bad |= !(r->weights = malloc(n * sizeof *r->weights));
    if (s->groups)
        bad |= !(r->groups = malloc(n * sizeof *r->groups));
    return bad ? CALIB_ENOMEM : CALIB_OK;
}

/* Appends the rows of d, its group indices mapped through `map`. */
static void append(calib__rows *r, const calib_dataset *d,
                   const uint32_t *map)
{
    for (size_t i = 0; i < d->n; i++, r->n++) {
        if (d->kind == CALIB_TOPLABEL) {
            r->conf[r->n] = calib__conf(d, i);
            r->correct[r->n] = d->correct[i];
        } else {
            const size_t b = calib__row_begin(d, i), len = calib__row_len(d, i);
            for (size_t j = 0; j < len; j++)
                r->scores[r->n_scores + j] = calib__score(d, b + j);
            r->n_scores += len;
            r->labels[r->n] = d->labels[i];
            if (r->offsets)
                r->offsets[r->n + 1] = r->n_scores;
        }
        if (r->weights)
            r->weights[r->n] = calib__weight(d, i);
        if (r->groups)
            r->groups[r->n] = map[d->groups[i]];
    }
}

void calib_read_stats_add(calib_read_stats *a, const calib_read_stats *b)
{
    a->rows_read += b->rows_read;
    a->rows_used += b->rows_used;
    a->rows_rejected += b->rows_rejected;
    a->values_clamped += b->values_clamped;
    a->rows_sum_off += b->rows_sum_off;
    a->rows_disagree += b->rows_disagree;
    a->rows_duplicate += b->rows_duplicate;
    a->values_unknown += b->values_unknown;
}

/* Copies every part's rows, merging group names into g. */
static int copy_parts(const calib_dataset *const *parts, size_t n,
                      calib__rows *r, calib__groups *g, calib_read_stats *st)
{
    if (r->offsets)
        r->offsets[0] = 0;
    for (size_t p = 0; p < n; p++) {
        const calib_dataset *d = parts[p];
        uint32_t *map = calloc(d->n_groups ? d->n_groups : 1, sizeof *map);
        if (!map)
            return CALIB_ENOMEM;
        for (size_t i = 0; r->groups && i < d->n_groups; i++) {
            const char *name = d->group_names[i];
            if (calib__groups_intern(g, name, strlen(name), &map[i])) {
                free(map);
                return CALIB_ENOMEM;
            }
        }
        append(r, d, map);
        free(map);
        calib_read_stats_add(st, &d->stats);
    }
    return CALIB_OK;
}

/* Hands the arrays of r and the names of g to ds. */
static int hand_over(calib_dataset *ds, calib__rows *r, calib__groups *g)
{
    void *blocks[7] = {r->scores, r->labels, r->conf, r->correct, r->weights,
                       r->groups, r->offsets};
    int rc = CALIB_OK;
    for (int b = 0; b < 7; b++)
        if (blocks[b] && calib__dataset_own(ds, blocks[b]))
            rc = CALIB_ENOMEM;
    memset(r, 0, sizeof *r);
    ds->group_names = g->names;
    ds->n_groups = g->n;
    ds->owns_group_names = 1;
    free(g->slots);
    memset(g, 0, sizeof *g);
    return rc;
}

int calib_dataset_concat(const calib_dataset *const *parts, size_t n,
                         calib_dataset **out, calib_error *err)
{
    shape s;
    calib__rows r = {0};
    calib__groups g = {0};
    if (out)
        *out = NULL;
    if (!out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0, "NULL output");
    int rc = check_parts(parts, n, &s, err);
    if (rc)
        return rc;
    calib_dataset *ds = calib__dataset_alloc();
    rc = ds ? alloc_rows(&s, &r) : CALIB_ENOMEM;
    if (!rc)
        rc = copy_parts(parts, n, &r, &g, &ds->stats);
    if (ds) {
        ds->kind = s.kind;
        ds->dtype = CALIB_F64;
        ds->n = s.n;
        ds->k = s.ragged || s.kind == CALIB_TOPLABEL ? 0 : s.k;
        ds->scores = r.scores, ds->labels = r.labels, ds->offsets = r.offsets;
        ds->conf = r.conf, ds->correct = r.correct;
        ds->weights = r.weights, ds->groups = r.groups;
        rc = hand_over(ds, &r, &g) ? CALIB_ENOMEM : rc;
    }
    calib__rows_free(&r);
    calib__groups_free(&g);
    if (rc) {
        calib_dataset_free(ds);
        return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    }
    *out = ds;
    return calib__ok(err);
}
