/* extra.c — the metrics beyond the bins, for the whole set and each
 * group: selective prediction (selective.c), smooth ECE (smooth.c),
 * classwise ECE (classwise.c); and the public calls on one dataset that
 * use them (accuracy at coverage, coverage at risk, the smooth curve).
 *
 * Every row is first projected to its top-label view (confidence,
 * correct) in parallel; a group's rows are then gathered in row order, so
 * a group evaluated here gives what its rows alone give.
 */
#include "extra.h"
#include "selective.h"

#include <stdlib.h>
#include <string.h>

typedef struct proj_ctx {
    const calib_dataset *ds;
    double *conf;
    uint8_t *correct;
} proj_ctx;

static void proj_range(void *vctx, size_t begin, size_t end, int worker)
{
    const proj_ctx *c = vctx;
    for (size_t i = begin; i < end; i++) {
        if (c->ds->kind == CALIB_TOPLABEL) {
            c->conf[i] = calib__conf(c->ds, i) + 0.0;
            c->correct[i] = c->ds->correct[i] != 0;
        } else {
            int ok;
            calib__row_eval(c->ds, i, 1.0, &c->conf[i], &ok, NULL, NULL,
                            NULL);
            c->conf[i] += 0.0;
            c->correct[i] = (uint8_t)ok;
        }
    }
}

int calib__project_top(const calib_dataset *ds, int threads, double **conf,
                       uint8_t **correct)
{
    const size_t m = ds->n ? ds->n : 1;
    *conf = malloc(m * sizeof **conf);
    *correct = malloc(m);
    if (!*conf || !*correct) {
        free(*conf);
        free(*correct);
        *conf = NULL;
        *correct = NULL;
        return CALIB_ENOMEM;
    }
    proj_ctx c = {ds, *conf, *correct};
    calib__parallel_for(ds->n, threads,
                        ds->kind == CALIB_TOPLABEL ? 65536 : 4096, proj_range,
                        &c);
    return CALIB_OK;
}

/* ------------------------------------------------------------------ */
/* calib_evaluate's extra metrics                                      */
/* ------------------------------------------------------------------ */

static int population(const calib_dataset *ds, const calib__top *t,
                      const calib_eval_options *o, calib_metrics *m)
{
    int rc = CALIB_OK;
    if (o->extra & CALIB_EXTRA_SELECTIVE) {
        calib__runs r;
        if ((rc = calib__runs_from_rows(t->conf, t->correct, t->weights,
                                        t->n, &r)) != CALIB_OK)
            return rc;
        calib__selective_to_metrics(&r, m);
        calib__runs_free(&r);
    }
    if (o->extra & CALIB_EXTRA_SMOOTH)
        rc = calib__smooth_ece(t, o->threads, &m->smece, &m->smece_bandwidth);
    if (rc == CALIB_OK && (o->extra & CALIB_EXTRA_CLASSWISE))
        rc = calib__classwise_ece(ds, t, o, &m->classwise_ece);
    return rc;
}

/* Rows of every group of m, grouped, in row order: rows[start[j] ..
 * start[j+1]) are those of m's group j.  A row's group is found by name
 * (the streaming path merges groups of one name), trying first the group
 * that first-appearance order predicts. */
typedef struct buckets {
    size_t *rows, *start;
} buckets;

/* of[g] = m's group named as ds's group g, or SIZE_MAX when none. */
static int map_groups(const calib_dataset *ds, const calib_metrics *m,
                      size_t *of)
{
    size_t next = 0;
    for (size_t g = 0; g < ds->n_groups; g++)
        of[g] = SIZE_MAX;
    for (size_t i = 0; i < ds->n; i++) {
        const uint32_t g = ds->groups[i];
        if (of[g] != SIZE_MAX)
            continue;
        size_t j = next < m->n_groups &&
                           strcmp(ds->group_names[g], m->group_names[next]) == 0
                       ? next
                       : SIZE_MAX;
        for (size_t k = 0; j == SIZE_MAX && k < m->n_groups; k++)
            if (strcmp(ds->group_names[g], m->group_names[k]) == 0)
                j = k;
        if (j == SIZE_MAX)
            return CALIB_EINTERNAL;
        of[g] = j;
        next = j + 1;
    }
    return CALIB_OK;
}

static int bucket(const calib_dataset *ds, const calib_metrics *m,
                  buckets *b)
{
    const size_t k = m->n_groups;
    size_t *of = malloc((ds->n_groups ? ds->n_groups : 1) * sizeof *of);
    size_t *at = malloc((k ? k : 1) * sizeof *at);
    b->rows = malloc((ds->n ? ds->n : 1) * sizeof *b->rows);
    b->start = calloc(k + 1, sizeof *b->start);
    int rc = of && at && b->rows && b->start ? CALIB_OK : CALIB_ENOMEM;
    if (rc == CALIB_OK)
        rc = map_groups(ds, m, of);
    for (size_t i = 0; rc == CALIB_OK && i < ds->n; i++)
        b->start[of[ds->groups[i]] + 1]++;
    for (size_t j = 0; rc == CALIB_OK && j < k; j++)
        b->start[j + 1] += b->start[j];
    if (rc == CALIB_OK)
        memcpy(at, b->start, k * sizeof *at);
    for (size_t i = 0; rc == CALIB_OK && i < ds->n; i++)
        b->rows[at[of[ds->groups[i]]]++] = i;
    free(of);
    free(at);
    return rc;
}

static void buckets_free(buckets *b)
{
    free(b->rows);
    free(b->start);
}

/* The extra metrics of group g (rows[0..n)) into gm. */
static int one_group(const calib_dataset *ds, const calib__top *all,
                     const size_t *rows, size_t n,
                     const calib_eval_options *o, calib_metrics *gm)
{
    double *conf = malloc((n ? n : 1) * sizeof *conf);
    uint8_t *cor = malloc(n ? n : 1);
    double *w = ds->weights ? malloc((n ? n : 1) * sizeof *w) : NULL;
    int rc = CALIB_ENOMEM;
    if (conf && cor && (!ds->weights || w)) {
        for (size_t j = 0; j < n; j++) {
            conf[j] = all->conf[rows[j]];
            cor[j] = all->correct[rows[j]];
            if (w)
                w[j] = ds->weights[rows[j]];
        }
        const calib__top t = {n, conf, cor, w, rows};
        rc = population(ds, &t, o, gm);
    }
    free(conf);
    free(cor);
    free(w);
    return rc;
}

static int groups(const calib_dataset *ds, const calib__top *all,
                  const calib_eval_options *o, calib_metrics *m)
{
    buckets b = {0};
    int rc = bucket(ds, m, &b);
    for (size_t j = 0; rc == CALIB_OK && j < m->n_groups; j++)
        rc = one_group(ds, all, b.rows + b.start[j],
                       b.start[j + 1] - b.start[j], o, m->groups[j]);
    buckets_free(&b);
    return rc;
}

int calib__evaluate_extra(const calib_dataset *ds, const calib_eval_options *o,
                          calib_metrics *m)
{
    if (!(o->extra & CALIB_EXTRA_ALL) || ds->n == 0)
        return CALIB_OK;
    double *conf;
    uint8_t *correct;
    int rc = calib__project_top(ds, o->threads, &conf, &correct);
    if (rc != CALIB_OK)
        return rc;
    const calib__top all = {ds->n, conf, correct, ds->weights, NULL};
    rc = population(ds, &all, o, m);
    if (rc == CALIB_OK && ds->groups && m->n_groups)
        rc = groups(ds, &all, o, m);
    free(conf);
    free(correct);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Public calls on one dataset                                         */
/* ------------------------------------------------------------------ */

/* The runs of every row of ds. */
static int dataset_runs(const calib_dataset *ds, int threads, calib__runs *r,
                        calib_error *err)
{
    double *conf;
    uint8_t *correct;
    int rc = calib__project_top(ds, threads, &conf, &correct);
    if (rc == CALIB_OK)
        rc = calib__runs_from_rows(conf, correct, ds->weights, ds->n, r);
    if (rc == CALIB_OK) {
        free(conf);
        free(correct);
        return CALIB_OK;
    }
    free(conf);
    free(correct);
    return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
}

static int check_args(const calib_dataset *ds, const double *in, size_t n,
                      const double *out, double lo_open, double hi,
                      const char *what, calib_error *err)
{
    if (!ds || (n && (!in || !out)))
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL dataset or array");
    for (size_t i = 0; i < n; i++)
        if (!(in[i] > lo_open && in[i] <= hi) &&
            !(lo_open < 0.0 && in[i] == 0.0))
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "%s %g outside %s", what, in[i],
                               lo_open < 0.0 ? "[0, 1]" : "(0, 1]");
    if (ds->n == 0)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0, "no rows");
    return CALIB_OK;
}

/* f(runs, level[i]) for every level, after the checks. */
static int per_level(const calib_dataset *ds, const double *level, size_t n,
                     double *out, int threads, int risk, calib_error *err)
{
    int rc = check_args(ds, level, n, out, risk ? -1.0 : 0.0, 1.0,
                        risk ? "risk" : "coverage", err);
    calib__runs r;
    if (rc == CALIB_OK)
        rc = dataset_runs(ds, threads, &r, err);
    if (rc != CALIB_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        out[i] = risk ? calib__runs_coverage_at_risk(&r, level[i])
                      : calib__runs_accuracy_at(&r, level[i]);
    calib__runs_free(&r);
    return calib__ok(err);
}

int calib_accuracy_at_coverage(const calib_dataset *ds, const double *coverage,
                               size_t n, double *accuracy, int threads,
                               calib_error *err)
{
    return per_level(ds, coverage, n, accuracy, threads, 0, err);
}

int calib_coverage_at_risk(const calib_dataset *ds, const double *risk,
                           size_t n, double *coverage, int threads,
                           calib_error *err)
{
    return per_level(ds, risk, n, coverage, threads, 1, err);
}

int calib_smooth_curve(const calib_dataset *ds, double bandwidth, size_t n,
                       double *x, double *y, double *density, int threads,
                       calib_error *err)
{
    if (!ds || !x || !y || !density || n < 2)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "NULL argument, or fewer than 2 points");
    if (isnan(bandwidth) || bandwidth > 1.0)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "bandwidth %g: expected <= 1 (<= 0: the fixed "
                           "point)", bandwidth);
    if (ds->n == 0)
        return calib__fail(err, CALIB_EDATA, NULL, 0, 0, 0, "no rows");
    double *conf;
    uint8_t *correct;
    int rc = calib__project_top(ds, threads, &conf, &correct);
    if (rc == CALIB_OK) {
        const calib__top t = {ds->n, conf, correct, ds->weights, NULL};
        rc = calib__smooth_curve_top(&t, bandwidth, n, x, y, density,
                                     threads);
    }
    free(conf);
    free(correct);
    if (rc != CALIB_OK)
        return calib__fail(err, rc, NULL, 0, 0, 0, "out of memory");
    return calib__ok(err);
}
