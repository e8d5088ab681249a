/* cmd_merge.c — `calib merge`: partial states (from `calib eval --partial`)
 * merged into the metrics of all their rows, printed as `calib eval`
 * prints them.
 *
 * The library reads and checks each state (calib_accum_from_json) and
 * merges them exactly, so the result is bit for bit that of one `eval`
 * over every shard's rows.  Before merging, this file compares each
 * state's settings (bins, bin rule, kind of rows, and for JSONL inputs
 * --seq-conf and --norm from the state's "meta") with the first state's,
 * so that a mismatch names both files: "b.json: 20 bins, a.json: 15 bins".
 * States of different settings are bad data (exit 65), as a malformed one
 * is.
 */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: calib merge PART... [--binning width|mass] [--json] [-o OUT]\n"
    "                   [--ascii] [--no-diagram]\n"
    "\n"
    "Merges partial states written by calib eval --partial (one per shard of\n"
    "the data) and prints the metrics of all their rows, as calib eval does:\n"
    "the table, or JSON with --json; rows_read, rows_used and rows_rejected\n"
    "are summed.  Accuracy, ECE, MCE, RMSCE, the bins, NLL and Brier equal,\n"
    "bit for bit, those of one calib eval over every row.  The states must\n"
    "have the same --bins and --bin-rule and the same kind of rows.\n"
    "\n"
    "  --binning mass         equal-mass bins from the states' value tables\n"
    "                         (calib eval --partial writes them unless\n"
    "                         --no-values): bit for bit calib eval --binning\n"
    "                         mass while the tables hold every confidence; a\n"
    "                         table past its --value-limit is on a grid, and\n"
    "                         the metrics that became approximate are listed\n"
    "                         (JSON: \"approximate\", \"value_grid\",\n"
    "                         \"ece_error_bound\"; table: a warning)\n"
    "  --json                 write JSON instead of the table\n"
    "  --ascii                draw the reliability diagram in ASCII only\n"
    "  --no-diagram           no reliability diagram after the metric table\n"
    "  -o OUT                 write to OUT (atomically) instead of stdout\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data (a malformed state, states of\n"
    "different settings, no rows at all), 66 cannot open a state, 71 out of\n"
    "memory, 73 cannot create output, 74 I/O error.\n";

/* What must agree between states, as the first state that says has it. */
typedef struct settings {
    const char *path;         /* the state it came from */
    long long bins;
    const char *rule;
    const char *kind;         /* NULL: no rows yet */
    const char *seq_conf, *norm; /* NULL: not JSONL */
    const char *kind_path, *meta_path; /* where kind and meta came from */
    int values;               /* the state has value tables */
} settings;

/* Reads all of `path` into a malloc'd *text of *len bytes. */
static int read_all(const char *path, char **text, size_t *len)
{
    int ex;
    FILE *f = cli_open_input(path, &ex);
    if (!f)
        return ex;
    size_t cap = 1 << 16, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        char *bigger = n == cap ? realloc(buf, cap *= 2) : buf;
        if (!bigger)
            free(buf);
        buf = bigger;
    }
    const int failed = buf && ferror(f);
    fclose(f);
    if (!buf)
        return cli_nomem();
    if (failed) {
        free(buf);
        cli_error("%s: read failed: %s", path, strerror(errno));
        return CLI_EX_IOERR;
    }
    *text = buf;
    *len = n;
    return 0;
}

static const char *meta_string(const json_t *root, const char *key)
{
    return json_string_value(json_object_get(json_object_get(root, "meta"),
                                             key));
}

static settings settings_of(const json_t *root, const char *path)
{
    settings s = {path,
                  json_integer_value(json_object_get(root, "bins")),
                  json_string_value(json_object_get(root, "bin_rule")),
                  json_string_value(json_object_get(root, "kind")),
                  meta_string(root, "seq_conf"),
                  meta_string(root, "norm"),
                  path,
                  path,
                  json_object_get(root, "value_limit") != NULL};
    return s;
}

static int differs(const char *a, const char *b)
{
    return a && b && strcmp(a, b) != 0;
}

/* Compares state s with what the earlier states fixed in *first, and
 * fills in what *first did not know yet. */
static int check_settings(settings *first, const settings *s)
{
    const char *p = s->path, *q = first->path;
    if (s->bins != first->bins) {
        cli_error("%s: %lld bins, %s: %lld bins", p, s->bins, q, first->bins);
        return CLI_EX_DATAERR;
    }
    if (differs(s->rule, first->rule)) {
        cli_error("%s: bin rule %s, %s: bin rule %s", p, s->rule, q,
                  first->rule);
        return CLI_EX_DATAERR;
    }
    if (differs(s->kind, first->kind)) {
        cli_error("%s: %s rows, %s: %s rows", p, s->kind, first->kind_path,
                  first->kind);
        return CLI_EX_DATAERR;
    }
    if (differs(s->seq_conf, first->seq_conf) ||
        differs(s->norm, first->norm)) {
        cli_error("%s: --seq-conf %s --norm %s, %s: --seq-conf %s --norm %s",
                  p, s->seq_conf, s->norm, first->meta_path, first->seq_conf,
                  first->norm);
        return CLI_EX_DATAERR;
    }
    if (!first->kind) {
        first->kind = s->kind;
        first->kind_path = p;
    }
    if (!first->seq_conf) {
        first->seq_conf = s->seq_conf;
        first->norm = s->norm;
        first->meta_path = p;
    }
    return 0;
}

/* Everything the states of the command line add up to. */
typedef struct merged {
    calib_accum *all;
    calib_read_stats st;
    settings first;
    const char *no_values;      /* the first state without value tables */
    json_t *roots[CLI_MAX_POS];  /* kept: settings point into them */
} merged;

/* Reads state i and merges it into mg. */
static int merge_one(merged *mg, const char *path, int i)
{
    char *text = NULL;
    size_t len = 0;
    calib_accum *a = NULL;
    calib_read_stats st = {0};
    calib_error err = {0};
    int rc, ex = read_all(path, &text, &len);
    if (!ex && (rc = calib_accum_from_json(text, len, &a, &st, &err)) != 0)
        ex = cli_fail(rc, &err, path);
    if (!ex && !(mg->roots[i] = json_loadb(text, len, 0, NULL)))
        ex = cli_nomem(); /* it parsed once already */
    free(text);
    if (!ex) {
        const settings s = settings_of(mg->roots[i], path);
        if (i == 0)
            mg->first = s;
        else
            ex = check_settings(&mg->first, &s);
        if (!s.values && !mg->no_values)
            mg->no_values = path;
    }
    if (!ex && !mg->all) {
        mg->all = a;
        a = NULL;
    } else if (!ex && (rc = calib_accum_merge(mg->all, a, &err)) != 0) {
        ex = cli_fail(rc == CALIB_EINVAL ? CALIB_EDATA : rc, &err, path);
    }
    if (!ex)
        calib_read_stats_add(&mg->st, &st);
    calib_accum_free(a);
    return ex;
}

/* ---- equal-mass: what a value table on a grid leaves approximate ---- */

static const char *const bin_keys[] = {
    "ece",       "mce",       "rmsce",             "ece_debiased_l2",
    "ece_over",  "ece_under", "brier_reliability", "brier_resolution"};
static const char *const rank_keys[] = {"auroc", "aurc",
                                        "selective_cov_acc_area",
                                        "selective_acc_at_10"};

static void append_present(json_t *list, const json_t *d,
                           const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_object_get(d, keys[i]);
        if (v && !json_is_null(v))
            json_array_append_new(list, json_string(keys[i]));
    }
}

/* Adds "approximate" (the keys), "value_grid" and "ece_error_bound" to d,
 * the metrics object of population `group` (SIZE_MAX: overall), when its
 * value table leaves something approximate; names it in a warning for
 * the table output.  Returns 0 or an exit code. */
static int mark(const cli_opts *o, const calib_accum *a, size_t group,
                const char *name, json_t *d)
{
    calib_exactness x;
    calib_error err = {0};
    const int rc = calib_accum_exactness(a, 0, group, &x, &err);
    json_t *list = rc ? NULL : json_array();
    if (rc)
        return cli_fail(rc, &err, NULL);
    if (o->eval.binning != CALIB_BINNING_MASS) /* equal-width bins: exact */
        x.bins_moved = x.edges_moved = 0;
    if (x.bins_moved)
        append_present(list, d, bin_keys, sizeof bin_keys / sizeof *bin_keys);
    if (x.bins_moved || x.edges_moved)
        json_array_append_new(list, json_string("bins"));
    if (x.ties_made)
        append_present(list, d, rank_keys,
                       sizeof rank_keys / sizeof *rank_keys);
    if (json_array_size(list) == 0) {
        json_decref(list);
        return 0;
    }
    if (!o->json) {
        char keys[256] = "";
        for (size_t i = 0; i < json_array_size(list); i++)
            snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s",
                     i ? ", " : "", json_string_value(json_array_get(list, i)));
        cli_warn("%s%s%s approximate: value tables on a grid of %g "
                 "(--value-limit); |ECE - exact| <= %.3g", name ? name : "",
                 name ? ": " : "", keys, x.grid, x.ece_bound);
    }
    json_object_set_new(d, "approximate", list);
    json_object_set_new(d, "value_grid", json_real(x.grid));
    if (x.bins_moved)
        json_object_set_new(d, "ece_error_bound", json_real(x.ece_bound));
    return 0;
}

static void warn_one(const char *text, void *ctx)
{
    cli_warn("%s", text);
}

/* The metrics of states with value tables, as eval writes them, with what
 * a table on a grid left approximate said. */
static int merge_write_values(const cli_opts *o, const calib_accum *a,
                            const char *const mode[2], const char *shown,
                            const calib_read_stats *st,
                            const calib_metrics *m)
{
    char *text = NULL;
    int ex = cli_metrics_json(m, st, mode[0], mode[1], &text);
    json_t *root = ex ? NULL : json_loads(text, 0, NULL);
    free(text);
    if (!ex && !root)
        ex = cli_nomem(); /* it parsed once already */
    if (!ex)
        ex = mark(o, a, SIZE_MAX, NULL, root);
    const json_t *groups = root ? json_object_get(root, "groups") : NULL;
    for (size_t g = 0; !ex && g < m->n_groups; g++)
        ex = mark(o, a, g, m->group_names[g],
                  json_object_get(groups, m->group_names[g]));
    text = ex ? NULL : json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!ex && !text)
        ex = cli_nomem();
    if (!ex && o->json) {
        cli_each_warning(st, m, warn_one, NULL);
        ex = cli_write_text(o->out, text);
    } else if (!ex) {
        ex = cli_write_eval(o, mode, o->n_pos == 1 ? o->pos[0] : shown, st,
                            m);
    }
    free(text);
    return ex;
}

static int merge_write(const cli_opts *o, merged *mg)
{
    calib_metrics *m = NULL;
    calib_error err = {0};
    const int mass = o->eval.binning == CALIB_BINNING_MASS;
    if (mass && mg->no_values) {
        cli_error("%s: no value tables (written with --no-values, or by a "
                  "calib before format version 2): --binning mass needs "
                  "them in every state", mg->no_values);
        return CLI_EX_DATAERR;
    }
    const int rc = mass ? calib_accum_result_mass(mg->all, 0, &m, &err)
                        : calib_accum_result(mg->all, &m, &err);
    if (rc == CALIB_EDATA && o->n_pos == 1)
        return cli_no_rows(o->pos[0]);
    if (rc == CALIB_EDATA) {
        cli_error("merge: no data rows in any partial state");
        return CLI_EX_DATAERR;
    }
    if (rc)
        return cli_fail(rc, &err, NULL);
    const int top = m->brier_kind == CALIB_BRIER_TOPLABEL;
    const char *mode[2] = {NULL, NULL};
    if (mg->first.seq_conf) {
        mode[0] = top ? "seq_conf" : "norm";
        mode[1] = top ? mg->first.seq_conf : mg->first.norm;
    }
    char shown[64];
    snprintf(shown, sizeof shown, "%d partial states", o->n_pos);
    const int ex = calib_accum_has_values(mg->all)
                       ? merge_write_values(o, mg->all, mode, shown, &mg->st, m)
                        : cli_write_eval(o, mode,
                                         o->n_pos == 1 ? o->pos[0] : shown,
                                         &mg->st, m);
    calib_metrics_free(m);
    return ex;
}

int cmd_merge(int argc, char **argv)
{
    cli_opts o;
    int ex = cli_parse(argc, argv, "merge",
                       CLI_OPT_OUT | CLI_OPT_JSON | CLI_OPT_TEXTPLOT |
                           CLI_OPT_BINNING,
                       &o);
    if (ex)
        return ex;
    if (o.help) {
        fputs(usage, stdout);
        return cli_stdout_commit();
    }
    if (o.n_pos == 0) {
        cli_error("merge: missing PART (see calib merge --help)");
        return CLI_EX_USAGE;
    }
    merged *mg = calloc(1, sizeof *mg);
    if (!mg)
        return cli_nomem();
    for (int i = 0; !ex && i < o.n_pos; i++)
        ex = merge_one(mg, o.pos[i], i);
    if (!ex)
        ex = merge_write(&o, mg);
    for (int i = 0; i < o.n_pos; i++)
        json_decref(mg->roots[i]);
    calib_accum_free(mg->all);
    free(mg);
    return ex;
}
