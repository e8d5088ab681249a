/* inputs.c — what `eval` and `compare` read: one file, several files, or a
 * directory, with the CLI's error reporting.
 *
 * Several files, or a directory, are one set whose groups are the files'
 * task names (an lm-eval run over MMLU: per subject and overall).  With
 * equal-width bins they stream through one calib_accum, chunk by chunk
 * from a calib_reader each, so inputs of any length are evaluated in
 * constant memory; equal-mass bins need every confidence, so the files are
 * read whole and joined (calib_dataset_concat).  `eval --partial` writes
 * that accumulator's state (calib_accum_to_json) instead of its metrics,
 * for `merge` to combine.
 */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int cli_no_rows(const char *path)
{
    cli_error("%s: no data rows", strcmp(path, "-") ? path : "<stdin>");
    return CLI_EX_DATAERR;
}

FILE *cli_open_input(const char *path, int *ex)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    const int dir = f && fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode);
    *ex = f && !dir ? 0 : CLI_EX_NOINPUT;
    if (!*ex)
        return f;
    cli_error("%s: cannot open: %s", path,
              dir ? "is a directory" : strerror(errno));
    if (f)
        fclose(f);
    return NULL;
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
    if (in->n > first) /* paths is NULL while empty: qsort(NULL) is UB */
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
    calib_read_stats_add(st, &one);
    calib_reader_close(r);
    return ex;
}

/* Every input, chunk by chunk from its reader, into a new accumulator *a
 * (freed and NULL on error). */
static int stream_all(const cli_inputs *in, const cli_opts *o,
                      calib_accum **a, calib_read_stats *st)
{
    calib_error err = {0};
    int rc = calib_accum_new(&o->eval, a, &err);
    if (!rc && o->partial && !o->no_values)
        rc = calib_accum_keep_values(*a, (size_t)o->value_limit, &err);
    int ex = rc ? cli_fail(rc, &err, NULL) : 0;
    for (size_t i = 0; !ex && i < in->n; i++)
        ex = stream_one(in, i, o, *a, st);
    if (ex) {
        calib_accum_free(*a);
        *a = NULL;
    }
    return ex;
}

/* The constant-memory path: chunks from readers into one accumulator. */
static int stream_eval(const cli_inputs *in, const cli_opts *o,
                       calib_metrics **m, calib_read_stats *st)
{
    calib_error err = {0};
    calib_accum *a = NULL;
    int rc, ex = stream_all(in, o, &a, st);
    if (!ex && st->rows_used == 0)
        ex = cli_no_rows(in->paths[0]);
    if (!ex && (rc = calib_accum_result(a, m, &err)) != 0)
        ex = cli_fail(rc, &err, NULL);
    calib_accum_free(a);
    return ex;
}

static const char *const norm_names[] = {"none", "chars", "bytes"};

/* JSONL confidences depend on --seq-conf and --norm: the state records
 * both in its "meta" member (which the library ignores), so that `merge`
 * can refuse states made differently and name the mode in its output. */
static int add_meta(const cli_opts *o, char **json)
{
    const size_t len = strlen(*json);
    const size_t size = len + 96;
    char *t = malloc(size);
    if (!t)
        return cli_nomem();
    snprintf(t, size, "%.*s,\"meta\":{\"seq_conf\":\"%s\",\"norm\":\"%s\"}}",
             (int)(len - 1), *json, calib_seq_conf_name(o->read.seq_conf),
             norm_names[o->read.norm]);
    free(*json);
    *json = t;
    return 0;
}

int cli_partial_inputs(const cli_inputs *in, const cli_opts *o, char **json,
                       calib_read_stats *st)
{
    calib_error err = {0};
    calib_accum *a = NULL;
    memset(st, 0, sizeof *st);
    *json = NULL;
    int rc, ex = stream_all(in, o, &a, st);
    if (!ex && (rc = calib_accum_to_json(a, st, json, &err)) != 0)
        ex = cli_fail(rc, &err, NULL);
    if (!ex && cli_jsonl_inputs(o, in))
        ex = add_meta(o, json);
    calib_accum_free(a);
    return ex;
}

int cli_eval_inputs(const cli_inputs *in, const cli_opts *o,
                    calib_metrics **m, calib_read_stats *st)
{
    memset(st, 0, sizeof *st);
    /* intervals resample rows, and the metrics beyond the bins need
     * every row at once */
    if (o->eval.binning == CALIB_BINNING_WIDTH && o->eval.bootstrap == 0 &&
        !o->eval.extra)
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

/* ---- JSONL modes ----------------------------------------------------- */

static int jsonl_path(const char *p)
{
    return has_suffix(p, ".jsonl") || has_suffix(p, ".jsonl.gz") ||
           has_suffix(p, ".json") || has_suffix(p, ".json.gz");
}

/* How JSONL confidences were made, named in the output: the --seq-conf of
 * OpenAI rows (top-label), the --norm of lm-eval rows.  *key NULL: none. */
int cli_jsonl_inputs(const cli_opts *o, const cli_inputs *in)
{
    int jsonl = o->read.format == CALIB_FORMAT_LMEVAL ||
                o->read.format == CALIB_FORMAT_OPENAI;
    for (size_t i = 0; o->read.format == CALIB_FORMAT_AUTO && i < in->n; i++)
        jsonl |= jsonl_path(in->paths[i]);
    return jsonl;
}

void cli_jsonl_mode(const cli_opts *o, const cli_inputs *in,
                    const calib_metrics *m, const char **key,
                    const char **value)
{
    *key = *value = NULL;
    if (!cli_jsonl_inputs(o, in))
        return;
    const int top = m->brier_kind == CALIB_BRIER_TOPLABEL;
    *key = top ? "seq_conf" : "norm";
    *value = top ? calib_seq_conf_name(o->read.seq_conf)
                 : norm_names[o->read.norm];
}
