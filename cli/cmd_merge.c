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
    "usage: calib merge PART... [--json] [-o OUT] [--ascii] [--no-diagram]\n"
    "\n"
    "Merges partial states written by calib eval --partial (one per shard of\n"
    "the data) and prints the metrics of all their rows, as calib eval does:\n"
    "the table, or JSON with --json; rows_read, rows_used and rows_rejected\n"
    "are summed.  Accuracy, ECE, MCE, RMSCE, the bins, NLL and Brier equal,\n"
    "bit for bit, those of one calib eval over every row.  The states must\n"
    "have the same --bins and --bin-rule and the same kind of rows.\n"
    "\n"
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
                  path};
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

static int merge_write(const cli_opts *o, merged *mg)
{
    calib_metrics *m = NULL;
    calib_error err = {0};
    const int rc = calib_accum_result(mg->all, &m, &err);
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
    const int ex = cli_write_eval(o, mode, o->n_pos == 1 ? o->pos[0] : shown,
                                  &mg->st, m);
    calib_metrics_free(m);
    return ex;
}

int cmd_merge(int argc, char **argv)
{
    cli_opts o;
    int ex = cli_parse(argc, argv, "merge",
                       CLI_OPT_OUT | CLI_OPT_JSON | CLI_OPT_TEXTPLOT, &o);
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
