/* cmd_eval.c — `calib eval`: the metrics of one prediction set, as a table
 * or JSON; with --calibrator or --val/--test, before and after.
 *
 * Equal-width binning without a calibrator streams (calib_reader + a
 * calib_accum), so a file of any length is evaluated in constant memory;
 * equal-mass binning needs every confidence and reads the whole set.
 * Several files, or a directory, are one set whose groups are the files'
 * task names (an lm-eval run over MMLU: per subject and overall); they
 * stream through one accumulator, or are read and joined for equal-mass
 * bins.  The table printers here are shared with `fit`, `demo` and
 * `compare`.
 */
#include "cli.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: calib eval FILE [input options] [--bins M] [--binning width|mass]\n"
    "                 [--bin-rule R] [--threads N] [--json] [-o OUT]\n"
    "       calib eval TEST --calibrator CAL.json [options]\n"
    "       calib eval --val VAL --test TEST [options]\n"
    "\n"
    "Prints accuracy, mean confidence, ECE, MCE, RMSCE, NLL, Brier and the\n"
    "reliability table of FILE ('-' reads standard input).  With --calibrator\n"
    "or --val/--test, TEST before and after temperature scaling.\n"
    "\n"
    "FILE may be several files or a directory: each file's task name is its\n"
    "group (lm-eval's samples_<task>_<date>.jsonl gives <task>).\n"
    "\n"
    "Input options:\n"
    "  --format F             npy, csv, tsv, lm-eval or openai (default: from\n"
    "                         the extension, .jsonl by content; a trailing\n"
    "                         .gz is decompressed)\n"
    "  --norm none|chars|bytes  lm-eval: loglik as logged, or divided by the\n"
    "                         choice's length (chars: lm-eval's acc_norm)\n"
    "  --seq-conf MODE        OpenAI/vLLM logprobs: geomean (default, the\n"
    "                         1/perplexity), product, mean, min, or answer\n"
    "  --choices A,B,C,D      the answer options of --seq-conf answer\n"
    "  --correct PATH         JSONL: the correctness field, a dotted path\n"
    "  --conf C --correct C   top-label CSV columns (for a 1-D .npy of\n"
    "                         confidences, --correct is the 0/1 .npy)\n"
    "  --pred C --label C     correct = pred == label\n"
    "  --logits COLS          logit columns: comma list or glob ('logit_*')\n"
    "  --probs [COLS]         probability columns (CSV); alone: the .npy holds\n"
    "                         probabilities, not logits\n"
    "  --labels FILE.npy      labels of an (N,K) .npy\n"
    "  --group C --weight C   group and weight columns (JSONL: --group is a\n"
    "                         dotted path)\n"
    "  --label-col C          the label column (as --label)\n"
    "  --skip-bad-rows        skip and count bad rows instead of failing\n"
    "  --val-labels, --test-labels, --val-correct, --test-correct\n"
    "                         the .npy side files of each set with --val/--test\n"
    "\n"
    "Metric options:\n"
    "  --bins M               number of bins (default 15)\n"
    "  --binning width|mass   equal-width (default) or equal-mass bins\n"
    "  --bin-rule R           sklearn (default), netcal, torchmetrics,\n"
    "                         gpleiss or hollance\n"
    "  --threads N            threads (default 0: every core)\n"
    "  --method temperature   with --val/--test: the method to fit\n"
    "  --objective nll|ece|brier  with --val/--test: what the fit minimises\n"
    "  --json                 write JSON instead of the table\n"
    "  -o OUT                 write to OUT (atomically) instead of stdout\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data, 66 cannot open input,\n"
    "70 internal error, 71 out of memory, 73 cannot create output, 74 I/O error.\n";

int cli_no_rows(const char *path)
{
    cli_error("%s: no data rows", path);
    return CLI_EX_DATAERR;
}

int cli_read(const char *path, const calib_read_options *ro,
             calib_dataset **out)
{
    calib_error err = {0};
    const int rc = calib_read(path, ro, out, &err);
    if (rc)
        return cli_fail(rc, &err, path);
    if (calib_dataset_rows(*out) == 0) {
        calib_dataset_free(*out);
        *out = NULL;
        return cli_no_rows(path);
    }
    return 0;
}

int cli_evaluate(const calib_dataset *ds, const calib_eval_options *eo,
                 calib_metrics **out)
{
    calib_error err = {0};
    const int rc = calib_evaluate(ds, eo, out, &err);
    return rc ? cli_fail(rc, &err, NULL) : 0;
}

/* ---- several inputs ------------------------------------------------ */

static int has_suffix(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The name without directories, ".gz" and one more extension. */
static char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *b = strdup(slash ? slash + 1 : path);
    if (!b)
        return NULL;
    if (has_suffix(b, ".gz"))
        b[strlen(b) - 3] = 0;
    char *dot = strrchr(b, '.');
    if (dot && dot != b)
        *dot = 0;
    return b;
}

/* lm-eval names its logs samples_<task>_<YYYY-MM-DDTHH-MM-SS...>. */
static int is_date(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return s[4] == '-';
}

char *cli_task_name(const char *path)
{
    char *b = base_name(path);
    if (!b || strncmp(b, "samples_", 8) != 0)
        return b;
    char *u = strrchr(b, '_');
    if (u && u > b + 7 && is_date(u + 1))
        *u = 0;
    memmove(b, b + 8, strlen(b + 8) + 1);
    return b;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int wanted(const char *name, int samples_only)
{
    if (samples_only)
        return strncmp(name, "samples_", 8) == 0 &&
               (has_suffix(name, ".jsonl") || has_suffix(name, ".jsonl.gz"));
    static const char *const ext[] = {".jsonl", ".csv", ".tsv"};
    for (int i = 0; i < 3; i++) {
        char gz[16];
        snprintf(gz, sizeof gz, "%s.gz", ext[i]);
        if (has_suffix(name, ext[i]) || has_suffix(name, gz))
            return 1;
    }
    return 0;
}

static int push(cli_inputs *in, size_t *cap, const char *dir,
                const char *name)
{
    if (in->n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        char **p = realloc(in->paths, *cap * sizeof *p);
        if (!p)
            return cli_nomem();
        in->paths = p;
    }
    const size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    if (!(in->paths[in->n] = malloc(len)))
        return cli_nomem();
    snprintf(in->paths[in->n++], len, "%s%s%s", dir ? dir : "",
             dir ? "/" : "", name);
    return 0;
}

/* Appends the wanted files of directory `dir`, sorted. */
static int push_dir(cli_inputs *in, size_t *cap, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        cli_error("%s: cannot open directory", dir);
        return CLI_EX_NOINPUT;
    }
    int samples = 0, ex = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        samples |= wanted(e->d_name, 1);
    rewinddir(d);
    const size_t first = in->n;
    while (!ex && (e = readdir(d)) != NULL)
        if (wanted(e->d_name, samples))
            ex = push(in, cap, dir, e->d_name);
    closedir(d);
    qsort(in->paths + first, in->n - first, sizeof *in->paths, cmp_str);
    if (!ex && in->n == first) {
        cli_error("%s: no .jsonl, .csv or .tsv files in the directory", dir);
        ex = CLI_EX_NOINPUT;
    }
    return ex;
}

int cli_inputs_expand(const char *const *args, size_t n, cli_inputs *in)
{
    size_t cap = 0;
    int ex = 0, dirs = 0;
    struct stat sb;
    memset(in, 0, sizeof *in);
    for (size_t i = 0; i < n && !ex; i++) {
        const int dir = stat(args[i], &sb) == 0 && S_ISDIR(sb.st_mode);
        dirs |= dir;
        ex = dir ? push_dir(in, &cap, args[i]) : push(in, &cap, NULL, args[i]);
    }
    if (!ex && !(in->groups = calloc(in->n ? in->n : 1, sizeof *in->groups)))
        ex = cli_nomem();
    for (size_t i = 0; !ex && (dirs || in->n > 1) && i < in->n; i++)
        if (!(in->groups[i] = cli_task_name(in->paths[i])))
            ex = cli_nomem();
    return ex;
}

void cli_inputs_free(cli_inputs *in)
{
    for (size_t i = 0; i < in->n; i++) {
        free(in->paths[i]);
        if (in->groups)
            free(in->groups[i]);
    }
    free(in->paths);
    free(in->groups);
    memset(in, 0, sizeof *in);
}

static void add_stats(calib_read_stats *a, const calib_read_stats *b)
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

static void options_for(const cli_opts *o, const cli_inputs *in, size_t i,
                        calib_read_options *ro)
{
    cli_read_options_for(o, in->paths[i], NULL, NULL, ro);
    ro->group_name = in->groups[i];
}

int cli_read_inputs(const cli_inputs *in, const cli_opts *o,
                    calib_dataset **out)
{
    calib_dataset **parts = calloc(in->n, sizeof *parts);
    calib_read_options ro;
    calib_error err = {0};
    int ex = parts ? 0 : cli_nomem();
    *out = NULL;
    for (size_t i = 0; !ex && i < in->n; i++) {
        options_for(o, in, i, &ro);
        const int rc = calib_read(in->paths[i], &ro, &parts[i], &err);
        ex = rc ? cli_fail(rc, &err, in->paths[i]) : 0;
    }
    if (!ex && in->n == 1) {
        *out = parts[0];
        parts[0] = NULL;
    } else if (!ex) {
        const int rc = calib_dataset_concat((const calib_dataset *const *)parts,
                                            in->n, out, &err);
        ex = rc ? cli_fail(rc, &err, NULL) : 0;
    }
    for (size_t i = 0; parts && i < in->n; i++)
        calib_dataset_free(parts[i]);
    free(parts);
    if (!ex && calib_dataset_rows(*out) == 0) {
        calib_dataset_free(*out);
        *out = NULL;
        ex = cli_no_rows(in->paths[0]);
    }
    return ex;
}

/* Streams the chunks of input i into `a`; adds its counts to *st. */
static int stream_one(const cli_inputs *in, size_t i, const cli_opts *o,
                      calib_accum *a, calib_read_stats *st)
{
    calib_error err = {0};
    calib_reader *r = NULL;
    calib_read_options ro;
    const calib_dataset *chunk = NULL;
    options_for(o, in, i, &ro);
    int rc = calib_reader_open(in->paths[i], &ro, &r, &err);
    while (!rc && !(rc = calib_reader_next(r, &chunk, &err)) && chunk)
        rc = calib_accum_add(a, chunk, &err);
    const int ex = rc ? cli_fail(rc, &err, in->paths[i]) : 0;
    calib_read_stats one = {0};
    calib_reader_stats(r, &one);
    add_stats(st, &one);
    calib_reader_close(r);
    return ex;
}

/* The constant-memory path: chunks from readers into one accumulator. */
static int stream_eval(const cli_inputs *in, const cli_opts *o,
                       calib_metrics **m, calib_read_stats *st)
{
    calib_error err = {0};
    calib_accum *a = NULL;
    int rc = calib_accum_new(&o->eval, &a, &err);
    int ex = rc ? cli_fail(rc, &err, NULL) : 0;
    for (size_t i = 0; !ex && i < in->n; i++)
        ex = stream_one(in, i, o, a, st);
    if (!ex && st->rows_used == 0)
        ex = cli_no_rows(in->paths[0]);
    if (!ex && (rc = calib_accum_result(a, m, &err)) != 0)
        ex = cli_fail(rc, &err, NULL);
    calib_accum_free(a);
    return ex;
}

int cli_eval_inputs(const cli_inputs *in, const cli_opts *o,
                    calib_metrics **m, calib_read_stats *st)
{
    memset(st, 0, sizeof *st);
    if (o->eval.binning == CALIB_BINNING_WIDTH)
        return stream_eval(in, o, m, st);
    calib_dataset *ds = NULL;
    int ex = cli_read_inputs(in, o, &ds);
    if (!ex) {
        calib_dataset_stats(ds, st);
        ex = cli_evaluate(ds, &o->eval, m);
    }
    calib_dataset_free(ds);
    return ex;
}

int cli_json_add_read_stats(char **json, const calib_read_stats *st,
                            const char *key, const char *value)
{
    char extra[256], kv[96] = "";
    if (key && value)
        snprintf(kv, sizeof kv, ", \"%s\": \"%s\"", key, value);
    const int n = snprintf(extra, sizeof extra,
                           ", \"rows_disagree\": %zu, \"rows_duplicate\": "
                           "%zu, \"values_unknown\": %zu%s}",
                           st->rows_disagree, st->rows_duplicate,
                           st->values_unknown, kv);
    char *end = strrchr(*json, '}');
    if (!end)
        return 0;
    const size_t at = (size_t)(end - *json);
    char *j = realloc(*json, at + (size_t)n + 1);
    if (!j)
        return cli_nomem();
    memcpy(j + at, extra, (size_t)n + 1);
    *json = j;
    return 0;
}

/* ---- warnings ------------------------------------------------------ */

static const char *plural(size_t n)
{
    return n == 1 ? "" : "s";
}

void cli_each_warning(const calib_read_stats *st, const calib_metrics *m,
                      void (*warn)(const char *text, void *ctx), void *ctx)
{
    char t[256];
    if (st && st->rows_rejected) {
        snprintf(t, sizeof t, "%zu bad row%s skipped (--skip-bad-rows)",
                 st->rows_rejected, plural(st->rows_rejected));
        warn(t, ctx);
    }
    if (st && st->values_clamped) {
        snprintf(t, sizeof t,
                 "%zu value%s within 1e-3 outside [0,1] clamped into [0,1]",
                 st->values_clamped, plural(st->values_clamped));
        warn(t, ctx);
    }
    if (st && st->rows_sum_off) {
        snprintf(t, sizeof t,
                 "%zu probability row%s sum%s to 1 only within 1e-3; used as "
                 "given, not renormalised", st->rows_sum_off,
                 plural(st->rows_sum_off), st->rows_sum_off == 1 ? "s" : "");
        warn(t, ctx);
    }
    if (st && st->rows_disagree) {
        snprintf(t, sizeof t,
                 "%zu row%s where argmax == gold differs from the acc lm-eval "
                 "logged (check --norm, or the target)", st->rows_disagree,
                 plural(st->rows_disagree));
        warn(t, ctx);
    }
    if (st && st->rows_duplicate) {
        snprintf(t, sizeof t,
                 "%zu repeated doc_id line%s (one per filter) ignored, the "
                 "first kept", st->rows_duplicate, plural(st->rows_duplicate));
        warn(t, ctx);
    }
    if (st && st->values_unknown) {
        snprintf(t, sizeof t,
                 "%zu token logprob%s unknown (null or -9999): left out of "
                 "the confidence", st->values_unknown,
                 plural(st->values_unknown));
        warn(t, ctx);
    }
    if (m && m->nll_from_probs && m->nll_clipped_rows) {
        snprintf(t, sizeof t,
                 "NLL from probabilities: q_label of %zu row%s clipped at "
                 "1e-15, as scikit-learn's log_loss", m->nll_clipped_rows,
                 plural(m->nll_clipped_rows));
        warn(t, ctx);
    }
}

static void warn_line(const char *text, void *ctx)
{
    fprintf((FILE *)ctx, "  %-22s %s\n", "warning", text);
}

static void warn_stderr(const char *text, void *ctx)
{
    cli_warn("%s", text);
}

/* ---- tables -------------------------------------------------------- */

static const char *kind_name(const calib_metrics *m)
{
    if (m->brier_kind == CALIB_BRIER_TOPLABEL)
        return "top-label";
    return m->nll_from_probs ? "probabilities" : "logits";
}

void cli_print_read_stats(FILE *f, const char *path,
                          const calib_read_stats *st, const calib_metrics *m)
{
    fprintf(f, "  %-22s %s\n", "file", path);
    fprintf(f, "  %-22s %zu read, %zu used, %zu rejected\n", "rows",
            st->rows_read, st->rows_used, st->rows_rejected);
    if (m->classes)
        fprintf(f, "  %-22s %zu (%s)\n", "classes", m->classes,
                kind_name(m));
    else
        fprintf(f, "  %-22s %s\n", "rows hold", kind_name(m));
    cli_each_warning(st, m, warn_line, f);
    if (m->nll_from_probs && !m->nll_clipped_rows)
        fprintf(f, "  %-22s %s\n", "note",
                "NLL from probabilities, q_label clipped at 1e-15 (no row "
                "was)");
}

static void print_num(FILE *f, double x)
{
    if (isnan(x))
        fprintf(f, " %11s", "n/a");
    else
        fprintf(f, " %11.6f", x);
}

static const char *brier_label(const calib_metrics *m)
{
    return m->brier_kind == CALIB_BRIER_TOPLABEL ? "Brier (top-label)"
                                                 : "Brier (multiclass)";
}

static void print_binning(FILE *f, const calib_metrics *m)
{
    if (m->binning == CALIB_BINNING_MASS)
        fprintf(f, "  (%zu equal-mass bins)\n", m->n_bins);
    else
        fprintf(f, "  (%zu equal-width bins, %s rule)\n", m->n_bins,
                calib_bin_rule_name(m->rule));
}

/* One metric per line; `after` NULL prints one column. */
static void print_rows(FILE *f, const calib_metrics *b,
                       const calib_metrics *a)
{
    const char *names[] = {"accuracy", "mean confidence", "ECE", "MCE",
                           "RMSCE", "NLL", brier_label(b)};
    for (int i = 0; i < 7; i++) {
        const calib_metrics *ms[2] = {b, a};
        fprintf(f, "  %-22s", names[i]);
        for (int j = 0; j < 2 && ms[j]; j++) {
            const calib_metrics *m = ms[j];
            const double v[] = {m->accuracy, m->mean_confidence, m->ece,
                                m->mce, m->rmsce, m->nll, m->brier};
            print_num(f, v[i]);
        }
        fputc('\n', f);
    }
}

void cli_print_metrics(FILE *f, const calib_metrics *m)
{
    print_rows(f, m, NULL);
    print_binning(f, m);
}

void cli_print_pair(FILE *f, const calib_metrics *before,
                    const calib_metrics *after)
{
    fprintf(f, "  %-22s %11s %11s\n", "", "before", "after");
    print_rows(f, before, after);
    print_binning(f, before);
}

void cli_print_bins(FILE *f, const calib_metrics *m)
{
    fprintf(f, "  %4s %9s %9s %9s %11s %9s %10s\n", "bin", "lower", "upper",
            "count", "mean conf", "accuracy", "gap");
    for (size_t b = 0; b < m->n_bins; b++) {
        const calib_bin *x = &m->bins[b];
        fprintf(f, "  %4zu %9.6f %9.6f %9zu", b + 1, x->lower, x->upper,
                x->count);
        if (x->count)
            fprintf(f, " %11.6f %9.6f %+10.6f", x->mean_confidence,
                    x->accuracy, x->accuracy - x->mean_confidence);
        fputc('\n', f);
    }
    fprintf(f, "  (gap = accuracy - mean conf; negative: over-confident)\n");
}

static int name_width(const calib_metrics *m)
{
    size_t w = 7;
    for (size_t g = 0; g < m->n_groups; g++)
        if (strlen(m->group_names[g]) > w)
            w = strlen(m->group_names[g]);
    return (int)(w > 32 ? 32 : w);
}

static void print_group_line(FILE *f, int w, const char *name,
                             const calib_metrics *m)
{
    fprintf(f, "  %-*.*s %8zu", w, w, name, m->n);
    const double v[] = {m->accuracy, m->mean_confidence, m->ece,
                        m->mce, m->nll, m->brier};
    for (int i = 0; i < 6; i++)
        print_num(f, v[i]);
    fputc('\n', f);
}

static void print_groups(FILE *f, const calib_metrics *m)
{
    const int w = name_width(m);
    fprintf(f, "  %-*s %8s %11s %11s %11s %11s %11s %11s\n", w, "group", "n",
            "accuracy", "conf", "ECE", "MCE", "NLL", "Brier");
    for (size_t g = 0; g < m->n_groups; g++)
        print_group_line(f, w, m->group_names[g], m->groups[g]);
    print_group_line(f, w, "overall", m);
}

void cli_print_group_pair(FILE *f, const calib_metrics *before,
                          const calib_metrics *after)
{
    const int w = name_width(before);
    fprintf(f, "  %-*s %8s %11s %11s %11s %11s %11s\n", w, "group", "n",
            "accuracy", "ECE before", "ECE after", "NLL before",
            "NLL after");
    for (size_t g = 0; g <= before->n_groups && g <= after->n_groups; g++) {
        const int all = g == before->n_groups;
        const calib_metrics *b = all ? before : before->groups[g];
        const calib_metrics *a = all ? after : after->groups[g];
        fprintf(f, "  %-*.*s %8zu", w, w,
                all ? "overall" : before->group_names[g], b->n);
        const double v[] = {b->accuracy, b->ece, a->ece, b->nll, a->nll};
        for (int i = 0; i < 5; i++)
            print_num(f, v[i]);
        fputc('\n', f);
    }
}

static void print_eval(FILE *f, const char *path, const calib_read_stats *st,
                       const calib_metrics *m, const char *key,
                       const char *value)
{
    cli_print_read_stats(f, path, st, m);
    if (key)
        fprintf(f, "  %-22s %s\n", strcmp(key, "norm") ? "sequence confidence"
                                                      : "loglik norm", value);
    fputc('\n', f);
    cli_print_metrics(f, m);
    fputc('\n', f);
    cli_print_bins(f, m);
    if (m->n_groups) {
        fputc('\n', f);
        print_groups(f, m);
    }
}

/* ---- the subcommand ------------------------------------------------ */

static int jsonl_path(const char *p)
{
    return has_suffix(p, ".jsonl") || has_suffix(p, ".jsonl.gz") ||
           has_suffix(p, ".json") || has_suffix(p, ".json.gz");
}

/* How JSONL confidences were made, named in the output: the --seq-conf of
 * OpenAI rows (top-label), the --norm of lm-eval rows.  *key NULL: none. */
void cli_jsonl_mode(const cli_opts *o, const cli_inputs *in,
                    const calib_metrics *m, const char **key,
                    const char **value)
{
    static const char *const norms[] = {"none", "chars", "bytes"};
    int jsonl = o->read.format == CALIB_FORMAT_LMEVAL ||
                o->read.format == CALIB_FORMAT_OPENAI;
    for (size_t i = 0; o->read.format == CALIB_FORMAT_AUTO && i < in->n; i++)
        jsonl |= jsonl_path(in->paths[i]);
    *key = *value = NULL;
    if (!jsonl)
        return;
    const int top = m->brier_kind == CALIB_BRIER_TOPLABEL;
    *key = top ? "seq_conf" : "norm";
    *value = top ? calib_seq_conf_name(o->read.seq_conf)
                 : norms[o->read.norm];
}

static int write_eval(const cli_opts *o, const cli_inputs *in,
                      const char *path, const calib_read_stats *st,
                      const calib_metrics *m)
{
    char *json = NULL;
    calib_error err = {0};
    const char *key, *value;
    cli_jsonl_mode(o, in, m, &key, &value);
    if (o->json) {
        const int rc = calib_metrics_to_json(m, st, &json, &err);
        if (rc)
            return cli_fail(rc, &err, NULL);
        const int ex = cli_json_add_read_stats(&json, st, key, value);
        if (ex) {
            free(json);
            return ex;
        }
        cli_each_warning(st, m, warn_stderr, NULL);
    } else if (st->rows_disagree) {
        cli_warn("%zu row%s disagree with the acc lm-eval logged",
                 st->rows_disagree, plural(st->rows_disagree));
    }
    cli_out out;
    int ex = cli_out_open(&out, o->out);
    if (!ex) {
        if (json)
            fprintf(out.f, "%s\n", json);
        else
            print_eval(out.f, path, st, m, key, value);
        ex = cli_out_commit(&out);
    }
    free(json);
    return ex;
}

static int eval_files(const cli_opts *o)
{
    cli_inputs in;
    calib_metrics *m = NULL;
    calib_read_stats st = {0};
    int ex = cli_inputs_expand(o->pos, (size_t)o->n_pos, &in);
    if (!ex)
        ex = cli_eval_inputs(&in, o, &m, &st);
    char shown[64];
    if (in.n > 1)
        snprintf(shown, sizeof shown, "%zu files", in.n);
    if (!ex)
        ex = write_eval(o, &in, in.n > 1 ? shown : in.paths[0], &st, m);
    calib_metrics_free(m);
    cli_inputs_free(&in);
    return ex;
}

static int write_loop(const cli_opts *o, const cli_loop *l)
{
    char *json = NULL;
    if (o->json && !(json = cli_loop_json(l)))
        return cli_nomem();
    cli_out out;
    int ex = cli_out_open(&out, o->out);
    if (!ex) {
        if (json)
            fprintf(out.f, "%s\n", json);
        else
            cli_loop_print(out.f, l);
        ex = cli_out_commit(&out);
    }
    free(json);
    return ex;
}

/* --calibrator CAL.json TEST, or --val VAL --test TEST. */
static int eval_loop(const cli_opts *o)
{
    cli_loop l = {0};
    calib_read_options vro = {0}, tro = {0};
    l.val_path = o->val;
    l.test_path = o->test ? o->test : o->pos[0];
    if (l.val_path)
        cli_read_options_for(o, l.val_path, o->val_labels, o->val_correct,
                             &vro);
    cli_read_options_for(o, l.test_path, o->test_labels, o->test_correct,
                         &tro);
    int ex = o->calibrator ? cli_load_calibrator(o->calibrator, &l.cal) : 0;
    if (!ex)
        ex = cli_loop_run(&l, o, &vro, &tro);
    if (!ex)
        ex = write_loop(o, &l);
    cli_loop_free(&l);
    return ex;
}

static int check_args(const cli_opts *o)
{
    const int sets = o->val || o->test;
    if (sets && (!o->val || !o->test)) {
        cli_error("eval: --val and --test go together");
        return CLI_EX_USAGE;
    }
    if (sets && (o->n_pos || o->calibrator)) {
        cli_error("eval: --val/--test take no FILE and no --calibrator");
        return CLI_EX_USAGE;
    }
    if (!sets && (o->n_pos == 0 || (o->calibrator && o->n_pos != 1))) {
        cli_error("eval: %s (see calib eval --help)",
                  o->n_pos ? "one FILE expected with --calibrator"
                           : "missing FILE");
        return CLI_EX_USAGE;
    }
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    cli_opts o;
    int ex = cli_parse(argc, argv, "eval",
                       CLI_OPT_INPUT | CLI_OPT_EVAL | CLI_OPT_FIT |
                           CLI_OPT_OUT | CLI_OPT_JSON | CLI_OPT_CAL |
                           CLI_OPT_SETS,
                       &o);
    if (ex)
        return ex;
    if (o.help) {
        fputs(usage, stdout);
        return 0;
    }
    if ((ex = check_args(&o)) != 0)
        return ex;
    if (o.calibrator || o.val)
        return eval_loop(&o);
    return eval_files(&o);
}
