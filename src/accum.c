/* accum.c — populations of exact per-bin sums, the pass that fills them
 * over a chunk of rows, and the streaming accumulator (calib_accum_*).
 *
 * A pass gives each worker thread its own populations (one per group of
 * the chunk, made when the worker first sees the group), so workers never
 * share a cell; the populations are then merged, which is exact because
 * every sum in a cell is.  Float32 top-label rows of weight 1 under
 * equal-width bins (or mass.c's float32 thresholds) take width_f32.c's
 * kernel; every other row is loaded as a rowval (metrics.c) and added
 * here.  Groups of streamed chunks are matched by name, in the order of
 * their first row.
 */
#include "metrics.h"
#include "values.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Cells and populations                                               */
/* ------------------------------------------------------------------ */

pop *calib__pop_new(size_t nb)
{
    pop *p = calloc(1, sizeof *p);
    if (p && !(p->cells = calloc(nb + 2, sizeof *p->cells))) {
        free(p);
        return NULL;
    }
    if (p)
        p->n_cells = nb + 2;
    return p;
}

void calib__pop_free(pop *p)
{
    if (p) {
        free(p->cells);
        calib__vt_free(p->vt);
    }
    free(p);
}

static void cell_merge(cell *d, const cell *s)
{
    d->count += s->count;
    d->plain += s->plain;
    d->plain_hits += s->plain_hits;
    d->conf_fx += s->conf_fx;
    calib__xsum_merge(&d->weight, &s->weight);
    calib__xsum_merge(&d->hit, &s->hit);
    calib__xsum_merge(&d->conf, &s->conf);
}

void calib__pop_merge(pop *d, const pop *s)
{
    for (size_t b = 0; b < s->n_cells; b++)
        if (s->cells[b].count)
            cell_merge(&d->cells[b], &s->cells[b]);
    d->p2_fx += s->p2_fx;
    d->pc_fx += s->pc_fx;
    d->fast_hits += s->fast_hits;
    calib__xsum_merge(&d->brier, &s->brier);
    calib__xsum_merge(&d->nll, &s->nll);
    d->clipped += s->clipped;
    if (d->vt && s->vt)
        calib__vt_merge(d->vt, s->vt);
}

void calib__add_row(pop *P, const binspec *bs, const rowval *r)
{
    cell *c = &P->cells[slot_of(r->p, bs)];
    c->count++;
    if (r->weighted) {
        calib__xsum_add(&c->weight, r->w);
        if (r->correct)
            calib__xsum_add(&c->hit, r->w);
        calib__xsum_add_product(&c->conf, r->w, r->p);
        calib__xsum_add_product(&P->brier, r->w, r->brier);
        calib__xsum_add_product(&P->nll, r->w, r->nll);
    } else {
        c->plain++;
        c->plain_hits += (uint64_t)r->correct;
        calib__xsum_add(&c->conf, r->p);
        calib__xsum_add(&P->brier, r->brier);
        calib__xsum_add(&P->nll, r->nll);
    }
    P->clipped += (uint64_t)r->clipped;
}

/* ------------------------------------------------------------------ */
/* The pass over a chunk: workers fill their own populations           */
/* ------------------------------------------------------------------ */

pop *calib__local_pop(pass *ps, int worker, size_t g, size_t row)
{
    pop **slot = &ps->locals[(size_t)worker * ps->n_pops + g];
    if (!*slot && (*slot = calib__pop_new(ps->bs->nb)) != NULL) {
        (*slot)->first = row;
        if (ps->vlimit && !((*slot)->vt = calib__vt_new(ps->vlimit))) {
            calib__pop_free(*slot);
            *slot = NULL;
        }
    }
    if (!*slot)
        ps->nomem[worker] = 1;
    return *slot;
}

static int fast_eligible(const calib_dataset *ds, const binspec *bs)
{
    return ds->kind == CALIB_TOPLABEL && ds->dtype == CALIB_F32 &&
           !ds->weights && (bs->binning == CALIB_BINNING_WIDTH || bs->thr);
}

static void general_range(pass *ps, size_t begin, size_t end, int worker)
{
    const uint32_t *g = ps->ds->groups;
    for (size_t i = begin; i < end; i++) {
        const size_t gi = g ? g[i] : 0;
        pop *P = ps->locals[(size_t)worker * ps->n_pops + gi];
        if (!P && !(P = calib__local_pop(ps, worker, gi, i)))
            continue;
        rowval r;
        calib__load_row(ps->ds, i, &r);
        calib__add_row(P, ps->bs, &r);
        if (P->vt)
            calib__vt_add(P->vt, r.p, r.w, r.weighted, r.correct);
    }
}

/* The value tables of the fast path's rows (float32, weight 1). */
static void fast_values(pass *ps, size_t begin, size_t end, int worker)
{
    const calib_dataset *ds = ps->ds;
    pop *const *loc = &ps->locals[(size_t)worker * ps->n_pops];
    for (size_t i = begin; i < end; i++) {
        pop *P = loc[ds->groups ? ds->groups[i] : 0];
        if (P && P->vt)
            calib__vt_add(P->vt, calib__conf(ds, i), 1.0, 0,
                          ds->correct[i] != 0);
    }
}

/* The fast path counts rows of weight 1 as `count`; make `plain` agree. */
static void settle_fast(pop *P)
{
    for (size_t b = 0; b < P->n_cells; b++)
        P->cells[b].plain = P->cells[b].count;
}

static void pass_range(void *vctx, size_t begin, size_t end, int worker)
{
    pass *ps = vctx;
    if (!fast_eligible(ps->ds, ps->bs)) {
        general_range(ps, begin, end, worker);
        return;
    }
    calib__fast_range(ps, begin, end, worker);
    if (ps->vlimit)
        fast_values(ps, begin, end, worker);
    for (size_t g = 0; g < ps->n_pops; g++) {
        pop *P = ps->locals[(size_t)worker * ps->n_pops + g];
        if (P)
            settle_fast(P);
    }
}

void calib__pass_free(pass *ps, int threads)
{
    const size_t tmax = (size_t)calib__threads(threads);
    for (size_t j = 0; ps->locals && j < tmax * ps->n_pops; j++)
        calib__pop_free(ps->locals[j]);
    free(ps->locals);
    ps->locals = NULL; /* pass_run frees on failure; callers free again */
}

int calib__pass_run(pass *ps, const calib_dataset *ds, const binspec *bs,
                    int threads, int *workers)
{
    const size_t vlimit = ps->vlimit;
    row_check *check = ps->check;
    const int skip_p2 = ps->skip_p2;
    memset(ps, 0, sizeof *ps);
    ps->vlimit = vlimit;
    ps->check = check;
    ps->skip_p2 = skip_p2;
    ps->ds = ds;
    ps->bs = bs;
    ps->n_pops = ds->groups ? ds->n_groups : 1;
    const int tmax = calib__threads(threads);
    ps->locals = calloc((size_t)tmax * ps->n_pops, sizeof *ps->locals);
    if (!ps->locals)
        return CALIB_ENOMEM;
    const size_t grain = ds->kind == CALIB_TOPLABEL ? 65536 : 4096;
    *workers = calib__parallel_for(ds->n, threads, grain, pass_range, ps);
    for (int w = 0; w < *workers; w++)
        if (ps->nomem[w]) {
            calib__pass_free(ps, threads);
            return CALIB_ENOMEM;
        }
    return CALIB_OK;
}

/* ------------------------------------------------------------------ */
/* The streaming accumulator (equal-width)                             */
/* ------------------------------------------------------------------ */

void calib_accum_free(calib_accum *a)
{
    if (!a)
        return;
    for (size_t g = 0; g < a->n_groups; g++) {
        free(a->names[g]);
        calib__pop_free(a->groups[g]);
    }
    free(a->names);
    free(a->groups);
    calib__pop_free(a->all);
    free(a->edges);
    free(a);
}

int calib_accum_new(const calib_eval_options *opt, calib_accum **out,
                    calib_error *err)
{
    calib_eval_options o;
    if (out)
        *out = NULL;
    if (!out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0, "NULL output");
    if (opt)
        o = *opt;
    else
        calib_eval_options_init(&o);
    int rc = calib__check_eval_options(&o, err);
    if (rc == CALIB_OK && o.binning == CALIB_BINNING_MASS)
        rc = calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                         "equal-mass binning needs every confidence; "
                         "it cannot be streamed (keep value tables and "
                         "ask calib_accum_result_mass)");
    if (rc != CALIB_OK)
        return rc;
    calib_accum *a = calloc(1, sizeof *a);
    if (a) {
        a->edges = malloc(((size_t)o.bins + 1) * sizeof *a->edges);
        a->all = calib__pop_new((size_t)o.bins);
    }
    if (!a || !a->edges || !a->all) {
        calib_accum_free(a);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    for (int k = 0; k <= o.bins; k++)
        a->edges[k] = (double)k / o.bins; /* e_k, one correct rounding */
    a->opt = o;
    a->bs = (binspec){CALIB_BINNING_WIDTH, o.rule, o.bins, a->edges,
                      (size_t)o.bins, NULL};
    a->classes = SIZE_MAX;
    *out = a;
    return calib__ok(err);
}

size_t calib__accum_group(calib_accum *a, const char *name)
{
    for (size_t g = 0; g < a->n_groups; g++)
        if (strcmp(a->names[g], name) == 0)
            return g;
    if (a->n_groups == a->cap_groups) {
        const size_t cap = a->cap_groups ? 2 * a->cap_groups : 8;
        char **nn = realloc(a->names, cap * sizeof *nn);
        if (nn)
            a->names = nn;
        pop **ng = nn ? realloc(a->groups, cap * sizeof *ng) : NULL;
        if (!ng)
            return SIZE_MAX;
        a->groups = ng;
        a->cap_groups = cap;
    }
    char *copy = strdup(name);
    pop *p = copy ? calib__pop_new(a->bs.nb) : NULL;
    if (p && a->vlimit && !(p->vt = calib__vt_new(a->vlimit))) {
        calib__pop_free(p);
        p = NULL;
    }
    if (!p) {
        free(copy);
        return SIZE_MAX;
    }
    a->names[a->n_groups] = copy;
    a->groups[a->n_groups] = p;
    return a->n_groups++;
}

/* Records what kind of rows come in; top-label and distribution rows do
 * not mix (their NLL and Brier mean different things). */
static int note_kind(calib_accum *a, int top, size_t classes, int probs,
                     calib_error *err)
{
    if (a->kind_seen && a->kind_seen != (top ? 1 : 2))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "cannot mix top-label and distribution rows");
    a->kind_seen = top ? 1 : 2;
    if (!top) {
        a->classes = a->classes == SIZE_MAX || a->classes == classes
                         ? classes
                         : 0;
        a->from_probs |= probs;
    }
    return CALIB_OK;
}

/* The chunk's groups that have rows, in the order of their first row. */
static size_t chunk_order(const pass *ps, int workers, size_t *order,
                          size_t *first)
{
    size_t k = 0;
    for (size_t g = 0; g < ps->n_pops; g++) {
        first[g] = SIZE_MAX;
        for (int w = 0; w < workers && first[g] == SIZE_MAX; w++) {
            const pop *P = ps->locals[(size_t)w * ps->n_pops + g];
            if (P)
                first[g] = P->first;
        }
        if (first[g] != SIZE_MAX)
            order[k++] = g;
    }
    for (size_t i = 1; i < k; i++) /* insertion sort: k is small */
        for (size_t j = i; j > 0 && first[order[j]] < first[order[j - 1]]; j--) {
            const size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return k;
}

/* Merges the workers' populations of a grouped chunk into a. */
static int merge_groups(calib_accum *a, const pass *ps, int workers)
{
    size_t *order = malloc(2 * ps->n_pops * sizeof *order);
    if (!order)
        return CALIB_ENOMEM;
    const size_t k = chunk_order(ps, workers, order, order + ps->n_pops);
    int rc = CALIB_OK;
    for (size_t j = 0; j < k && rc == CALIB_OK; j++) {
        const size_t g = order[j];
        const size_t ag = calib__accum_group(a, ps->ds->group_names[g]);
        if (ag == SIZE_MAX) {
            rc = CALIB_ENOMEM;
            break;
        }
        for (int w = 0; w < workers; w++) {
            const pop *P = ps->locals[(size_t)w * ps->n_pops + g];
            if (P) {
                calib__pop_merge(a->groups[ag], P);
                calib__pop_merge(a->all, P);
            }
        }
    }
    free(order);
    return rc;
}

/* The first bad row the workers of a checked pass found (the workers' row
 * ranges are in order, and each stopped at its first), as
 * calib_dataset_wrap reports it; else the clamps they counted, into *st. */
static int checked(const row_check *c, int workers, calib_read_stats *st,
                   calib_error *err)
{
    for (int w = 0; w < workers; w++)
        if (c->bad_row[w] != SIZE_MAX)
            return calib__fail(err, CALIB_EDATA, NULL, 0, c->bad_row[w] + 1,
                               c->bad_col[w], "row %zu: %s",
                               c->bad_row[w] + 1, c->why[w]);
    for (int w = 0; w < workers; w++)
        calib_read_stats_add(st, &c->stats[w]);
    return CALIB_OK;
}

/* calib_accum_add, with st != NULL: the chunk's rows are unchecked (a
 * calib__dataset_view of float32 top-label rows of weight 1 without
 * groups) and are checked in the same pass; on a bad row nothing is
 * added and err names it as calib_dataset_wrap would. */
static int accum_add(calib_accum *a, const calib_dataset *chunk,
                     calib_read_stats *st, calib_error *err)
{
    if (!a || !chunk)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL accumulator or chunk");
    int rc = note_kind(a, chunk->kind == CALIB_TOPLABEL, chunk->k,
                       chunk->kind == CALIB_PROBS, err);
    if (rc != CALIB_OK || chunk->n == 0)
        return rc == CALIB_OK ? calib__ok(err) : rc;
    pass ps = {0};
    int workers = 1;
    ps.vlimit = a->vlimit;
    ps.skip_p2 = a->skip_p2;
    if (st) {
        if (!(ps.check = malloc(sizeof *ps.check)))
            return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                               "out of memory");
        for (int w = 0; w < MAX_WORKERS; w++) {
            ps.check->bad_row[w] = SIZE_MAX;
            ps.check->stats[w] = (calib_read_stats){0};
        }
    }
    rc = calib__pass_run(&ps, chunk, &a->bs, a->opt.threads, &workers);
    if (rc == CALIB_OK && st && (rc = checked(ps.check, workers, st, err))) {
        calib__pass_free(&ps, a->opt.threads);
        free(ps.check);
        return rc;
    }
    free(ps.check);
    if (rc == CALIB_OK && chunk->groups)
        rc = merge_groups(a, &ps, workers);
    else if (rc == CALIB_OK)
        for (int w = 0; w < workers; w++)
            if (ps.locals[w])
                calib__pop_merge(a->all, ps.locals[w]);
    if (ps.locals)
        calib__pass_free(&ps, a->opt.threads);
    if (rc == CALIB_OK && calib__accum_values_nomem(a))
        rc = CALIB_ENOMEM;
    if (rc != CALIB_OK)
        return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    return calib__ok(err);
}

int calib_accum_add(calib_accum *a, const calib_dataset *chunk,
                    calib_error *err)
{
    return accum_add(a, chunk, NULL, err);
}

int calib__accum_add_checked(calib_accum *a, const calib_dataset *chunk,
                             calib_read_stats *st, calib_error *err)
{
    return accum_add(a, chunk, st, err);
}

int calib_accum_merge(calib_accum *dst, const calib_accum *src,
                      calib_error *err)
{
    if (!dst || !src)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL accumulator");
    if (dst->opt.bins != src->opt.bins)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "cannot merge %d bins into %d bins",
                           src->opt.bins, dst->opt.bins);
    if (dst->opt.rule != src->opt.rule)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "cannot merge bin rule %s into bin rule %s",
                           calib_bin_rule_name(src->opt.rule),
                           calib_bin_rule_name(dst->opt.rule));
    if (src->kind_seen) {
        const int rc = note_kind(dst, src->kind_seen == 1, src->classes,
                                 src->from_probs, err);
        if (rc != CALIB_OK)
            return rc;
    }
    if (dst->vlimit && src->vlimit && dst->vlimit != src->vlimit)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "cannot merge value tables of at most %zu "
                           "values into tables of at most %zu",
                           src->vlimit, dst->vlimit);
    if (dst->vlimit && !src->vlimit)
        calib__accum_drop_values(dst);
    for (size_t g = 0; g < src->n_groups; g++) {
        const size_t dg = calib__accum_group(dst, src->names[g]);
        if (dg == SIZE_MAX)
            return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                               "out of memory");
        calib__pop_merge(dst->groups[dg], src->groups[g]);
    }
    calib__pop_merge(dst->all, src->all);
    if (calib__accum_values_nomem(dst))
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    return calib__ok(err);
}

family calib__accum_family(const calib_accum *a)
{
    family f = {a->kind_seen != 2, a->classes == SIZE_MAX ? 0 : a->classes,
                a->from_probs};
    return f;
}

static uint64_t pop_rows(const pop *P)
{
    uint64_t n = 0;
    for (size_t b = 0; b < P->n_cells; b++)
        n += P->cells[b].count;
    return n;
}

int calib_accum_result(const calib_accum *a, calib_metrics **out,
                       calib_error *err)
{
    if (out)
        *out = NULL;
    if (!a || !out)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL accumulator or output");
    if (pop_rows(a->all) == 0)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0, "no rows");
    const family f = calib__accum_family(a);
    calib_metrics *m = calib__metrics_from(a->all, &a->bs, &f);
    int rc = m ? CALIB_OK : CALIB_ENOMEM;
    if (rc == CALIB_OK && a->n_groups)
        rc = calib__attach_groups(m, a->n_groups, a->names);
    for (size_t g = 0; rc == CALIB_OK && g < a->n_groups; g++)
        if (!(m->groups[g] = calib__metrics_from(a->groups[g], &a->bs, &f)))
            rc = CALIB_ENOMEM;
    if (rc == CALIB_OK && calib__accum_values_nomem(a))
        rc = CALIB_ENOMEM;
    if (rc == CALIB_OK)
        rc = calib__accum_selective(a, m);
    if (rc != CALIB_OK) {
        calib_metrics_free(m);
        return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    }
    if (!a->opt.scores)
        calib__drop_scores(m);
    *out = m;
    return calib__ok(err);
}
