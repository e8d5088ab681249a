/* csv_columns.c — which field of a CSV header is which: the columns a user
 * named (names, or globs such as 'logit_*'), or the obvious names
 * (confidence/correct, pred/label, or logit_*, prob_* or p_* columns with
 * a label), and from them the kind of rows.  An ambiguous or missing
 * column is an error that lists the header.
 */
#define _GNU_SOURCE /* FNM_CASEFOLD */
#include "csv.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* The header: which field is which                                    */
/* ------------------------------------------------------------------ */

/* The header as "a, b, c" for error messages. */
static const char *header_list(const calib__csv *c, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t f = 0; f < c->n_fields && used + 1 < size; f++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s",
                                 f ? ", " : "", c->names[f]);
    return buf;
}

static int no_column(const calib__csv *c, calib_error *err, const char *what,
                     const char *name)
{
    char h[400];
    return calib__fail(err, CALIB_EINVAL, calib__src_name(c->src), 1, 0, 0,
                       "no %s column '%s' in the header (%s)", what, name,
                       header_list(c, h, sizeof h));
}

/* The field called `name`: exact match first, then ignoring case. */
static size_t find(const calib__csv *c, const char *name)
{
    for (size_t f = 0; f < c->n_fields; f++)
        if (strcmp(c->names[f], name) == 0)
            return f;
    for (size_t f = 0; f < c->n_fields; f++)
        if (strcasecmp(c->names[f], name) == 0)
            return f;
    return NONE;
}

/* A column calib reads must be named once: with two, which one holds the
 * values cannot be known. */
static int once(const calib__csv *c, size_t f, calib_error *err)
{
    for (size_t g = 0; f != NONE && g < c->n_fields; g++)
        if (g != f && strcmp(c->names[g], c->names[f]) == 0)
            return calib__fail(err, CALIB_EDATA, calib__src_name(c->src), 1,
                               0, g + 1, "column '%s' appears twice in the "
                               "header (fields %zu and %zu)", c->names[f],
                               (f < g ? f : g) + 1, (f < g ? g : f) + 1);
    return CALIB_OK;
}

/* A named column (which must exist) or the first obvious one. */
static int pick(const calib__csv *c, const char *name,
                const char *const *obvious, size_t *f, calib_error *err)
{
    *f = NONE;
    if (name) {
        *f = find(c, name);
        return *f == NONE ? no_column(c, err, "such", name) : once(c, *f, err);
    }
    for (; obvious && *obvious && *f == NONE; obvious++)
        *f = find(c, *obvious);
    return once(c, *f, err);
}

static int assign(calib__csv *c, size_t f, enum role r, calib_error *err)
{
    if (f == NONE)
        return CALIB_OK;
    if (c->role[f] != R_NONE)
        return calib__fail(err, CALIB_EINVAL, calib__src_name(c->src), 1, 0,
                           f + 1, "column '%s' is given two roles",
                           c->names[f]);
    c->role[f] = (uint8_t)r;
    return CALIB_OK;
}

static int is_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* Score fields from a glob or a comma list; adds them in order. */
static int score_columns(calib__csv *c, const char *spec, calib_error *err)
{
    c->k = 0;
    for (size_t f = 0; f < c->n_fields && is_glob(spec); f++)
        if (fnmatch(spec, c->names[f], FNM_CASEFOLD) == 0)
            c->score_field[c->k++] = f;
    for (const char *p = spec; !is_glob(spec) && *p;) {
        const size_t n = strcspn(p, ",");
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)n, p);
        const size_t f = find(c, name);
        if (f == NONE)
            return no_column(c, err, "score", name);
        if (once(c, f, err))
            return CALIB_EDATA;
        c->score_field[c->k++] = f;
        p += n + (p[n] == ',');
    }
    if (c->k == 0)
        return no_column(c, err, "score", spec);
    for (size_t j = 0; j < c->k; j++) {
        int rc = assign(c, c->score_field[j], R_SCORE, err);
        if (rc)
            return rc;
        c->slot[c->score_field[j]] = j;
    }
    return CALIB_OK;
}

static const char *const CONF[] = {"confidence", "conf", "p", "prob", NULL};
static const char *const CORRECT[] = {"correct", "is_correct", "accuracy",
                                      NULL};
static const char *const PRED[] = {"pred", "pred_label", "prediction", NULL};
static const char *const LABEL[] = {"label", "true_label", "target", "y",
                                    NULL};

/* Does any header field match the glob? */
static int any_match(const calib__csv *c, const char *glob)
{
    for (size_t f = 0; f < c->n_fields; f++)
        if (fnmatch(glob, c->names[f], FNM_CASEFOLD) == 0)
            return 1;
    return 0;
}

static int unresolved(const calib__csv *c, calib_error *err)
{
    char h[300];
    return calib__fail(err, CALIB_EINVAL, calib__src_name(c->src), 1, 0, 0,
                       "cannot tell which columns hold the predictions; name "
                       "them (conf+correct, pred+label, logits or probs with "
                       "label); header: %s", header_list(c, h, sizeof h));
}

/* Top-label columns: conf with correct, or conf with pred and label. */
static int toplabel_columns(calib__csv *c, const calib_read_options *opt,
                            calib_error *err)
{
    int rc = pick(c, opt->conf, CONF, &c->conf, err);
    if (!rc && !opt->pred)
        rc = pick(c, opt->correct, CORRECT, &c->correct, err);
    if (!rc && c->correct == NONE) {
        rc = pick(c, opt->pred, PRED, &c->pred, err);
        if (!rc)
            rc = pick(c, opt->label, LABEL, &c->label, err);
    }
    if (rc)
        return rc;
    if (c->conf == NONE || (c->correct == NONE &&
                            (c->pred == NONE || c->label == NONE)))
        return unresolved(c, err);
    c->kind = CALIB_TOPLABEL;
    return CALIB_OK;
}

/* Distribution columns: scores by spec (or the obvious glob) and a label. */
static int distribution_columns(calib__csv *c, const calib_read_options *opt,
                                calib_error *err)
{
    const char *spec = opt->logits ? opt->logits : opt->probs;
    c->kind = opt->probs && !opt->logits ? CALIB_PROBS : CALIB_LOGITS;
    if (!spec) {
        spec = any_match(c, "logit_*")  ? "logit_*"
               : any_match(c, "prob_*") ? "prob_*"
               : any_match(c, "p_*")    ? "p_*" : NULL;
        if (!spec)
            return unresolved(c, err);
        c->kind = spec[0] == 'l' ? CALIB_LOGITS : CALIB_PROBS;
    }
    int rc = pick(c, opt->label, LABEL, &c->label, err);
    if (!rc && c->label == NONE)
        return unresolved(c, err);
    return rc ? rc : score_columns(c, spec, err);
}

int calib__csv_resolve(calib__csv *c, const calib_read_options *opt,
                       calib_error *err)
{
    size_t conf = NONE, correct = NONE, pred = NONE;
    int rc;
    if (opt->logits && opt->probs)
        return calib__fail(err, CALIB_EINVAL, calib__src_name(c->src), 0, 0,
                           0, "give logits or probs columns, not both");
    if ((opt->logits || opt->probs) && (opt->conf || opt->correct || opt->pred))
        return calib__fail(err, CALIB_EINVAL, calib__src_name(c->src), 0, 0,
                           0, "give top-label columns (conf, correct, pred) "
                           "or score columns (logits, probs), not both");
    if (opt->logits || opt->probs)
        rc = distribution_columns(c, opt, err);
    else if (opt->conf || opt->correct || opt->pred)
        rc = toplabel_columns(c, opt, err);
    else {
        pick(c, NULL, CONF, &conf, err);
        pick(c, NULL, CORRECT, &correct, err);
        pick(c, NULL, PRED, &pred, err);
        rc = conf != NONE && (correct != NONE || pred != NONE)
                 ? toplabel_columns(c, opt, err)
                 : distribution_columns(c, opt, err);
    }
    if (!rc)
        rc = pick(c, opt->group, NULL, &c->group, err);
    if (!rc)
        rc = pick(c, opt->weight, NULL, &c->weight, err);
    if (!rc)
        rc = assign(c, c->conf, R_CONF, err);
    if (!rc)
        rc = assign(c, c->correct, R_CORRECT, err);
    if (!rc)
        rc = assign(c, c->pred, R_PRED, err);
    if (!rc)
        rc = assign(c, c->label, R_LABEL, err);
    if (!rc)
        rc = assign(c, c->group, R_GROUP, err);
    return rc ? rc : assign(c, c->weight, R_WEIGHT, err);
}
