/* opts.c — the command line's options, parsed into the library's structs.
 *
 * One table names every option, the group it belongs to (so a subcommand
 * accepts only its own), whether it takes a value, and a setter.  Both
 * "--opt value" and "--opt=value" are accepted.  --probs is the odd one:
 * for .npy input it is a flag, for CSV it takes a column list, and it is
 * parsed before the input's format is known; so it takes the next argument
 * only when that does not start with '-' and is not an existing file.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NO_ARG, ARG, MAYBE_ARG };

typedef struct opt_spec {
    const char *name;
    unsigned group;
    int arg;
    int (*set)(cli_opts *o, const char *name, const char *v);
} opt_spec;

static int bad_value(const char *name, const char *v, const char *want)
{
    cli_error("%s: expected %s, got '%s'", name, want, v);
    return CLI_EX_USAGE;
}

/* strtol over the whole string, in [lo, hi]. */
static int parse_int(const char *name, const char *v, long lo, long hi,
                     int *out)
{
    char *end;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        char want[64];
        snprintf(want, sizeof want, "an integer in %ld..%ld", lo, hi);
        return bad_value(name, v, want);
    }
    *out = (int)x;
    return 0;
}

static int set_format(cli_opts *o, const char *n, const char *v)
{
    static const char *const names[] = {"auto", "npy",     "csv",
                                        "tsv",  "lm-eval", "openai"};
    for (int i = 0; i < 6; i++)
        if (strcmp(v, names[i]) == 0) {
            o->read.format = (calib_format)i;
            return 0;
        }
    return bad_value(n, v, "npy, csv, tsv, lm-eval or openai");
}

static int set_seq_conf(cli_opts *o, const char *n, const char *v)
{
    if (calib_seq_conf_parse(v, &o->read.seq_conf) != CALIB_OK)
        return bad_value(n, v, "product, geomean, mean, min or answer");
    return 0;
}

static int set_norm(cli_opts *o, const char *n, const char *v)
{
    static const char *const names[] = {"none", "chars", "bytes"};
    for (int i = 0; i < 3; i++)
        if (strcmp(v, names[i]) == 0) {
            o->read.norm = (calib_lmeval_norm)i;
            return 0;
        }
    return bad_value(n, v, "none, chars or bytes");
}

static int set_name(cli_opts *o, const char *n, const char *v)
{
    if (o->n_names == CLI_MAX_POS) {
        cli_error("%s: too many names", n);
        return CLI_EX_USAGE;
    }
    o->names[o->n_names++] = v;
    return 0;
}

#define SETTER(fn, field)                                                 \
    static int fn(cli_opts *o, const char *n, const char *v)              \
    {                                                                     \
        o->field = v;                                                     \
        return 0;                                                         \
    }
SETTER(set_conf, read.conf)
SETTER(set_correct, read.correct)
SETTER(set_pred, read.pred)
SETTER(set_label, read.label)
SETTER(set_choices, read.choices)
SETTER(set_diagram, diagram)
SETTER(set_logits, read.logits)
SETTER(set_group, read.group)
SETTER(set_weight, read.weight)
SETTER(set_labels, read.labels_path)
SETTER(set_out, out)
SETTER(set_calibrator, calibrator)
SETTER(set_val, val)
SETTER(set_test, test)
SETTER(set_val_labels, val_labels)
SETTER(set_test_labels, test_labels)
SETTER(set_val_correct, val_correct)
SETTER(set_test_correct, test_correct)
#undef SETTER

/* Without a value --probs marks .npy scores as probabilities. */
static int set_probs(cli_opts *o, const char *n, const char *v)
{
    if (v)
        o->read.probs = v;
    else
        o->read.npy_probs = 1;
    return 0;
}

static int set_skip(cli_opts *o, const char *n, const char *v)
{
    o->read.skip_bad_rows = 1;
    return 0;
}

/* --max-line BYTES: 1 .. 2^40 (a suffix K, M or G multiplies by 2^10,
 * 2^20, 2^30). */
static int set_max_line(cli_opts *o, const char *n, const char *v)
{
    char *end;
    errno = 0;
    const unsigned long long x = strtoull(v, &end, 10);
    const int shift = !*end ? 0 : !strcmp(end, "K") ? 10
                      : !strcmp(end, "M") ? 20 : !strcmp(end, "G") ? 30 : -1;
    if (errno || end == v || v[0] == '-' || shift < 0 || x == 0 ||
        x > (1ull << 40) >> shift)
        return bad_value(n, v, "a size in bytes, 1 .. 2^40 (K, M, G allowed)");
    o->read.max_line = (size_t)(x << shift);
    return 0;
}

/* --max-gzip-ratio R: R >= 1, or 0 / inf for no limit. */
static int set_max_ratio(cli_opts *o, const char *n, const char *v)
{
    char *end;
    const double x = strtod(v, &end);
    if (end == v || *end || !(x == 0.0 || x >= 1.0))
        return bad_value(n, v, "a ratio >= 1, or 0 for no limit");
    o->read.max_gzip_ratio = x == 0.0 ? INFINITY : x;
    return 0;
}

static int set_json(cli_opts *o, const char *n, const char *v)
{
    o->json = 1;
    return 0;
}

static int set_ascii(cli_opts *o, const char *n, const char *v)
{
    o->ascii = 1;
    return 0;
}

static int set_no_diagram(cli_opts *o, const char *n, const char *v)
{
    o->no_diagram = 1;
    return 0;
}

static int set_partial(cli_opts *o, const char *n, const char *v)
{
    o->partial = 1;
    return 0;
}

/* --ci takes a fraction (0.95) or a percent (95, or "95%"); 1 is
 * neither, so it is refused rather than guessed. */
static int set_ci(cli_opts *o, const char *n, const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    const int percent = *end == '%' || x > 1.0;
    if (*end == '%')
        end++;
    if (errno || end == v || *end || !(x > 0.0) || x == 1.0 ||
        (percent && !(x < 100.0)))
        return bad_value(n, v, "a level in (0, 1) such as 0.95, or a "
                               "percent in (1, 100) such as 95");
    o->eval.ci_level = percent ? x / 100.0 : x;
    if (!o->eval.bootstrap)
        o->eval.bootstrap = 1000;
    return 0;
}

static int set_bootstrap(cli_opts *o, const char *n, const char *v)
{
    return parse_int(n, v, 1, 1000000, &o->eval.bootstrap);
}

static int set_seed(cli_opts *o, const char *n, const char *v)
{
    char *end;
    errno = 0;
    const unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || v[0] == '+')
        return bad_value(n, v, "an integer in 0..18446744073709551615");
    o->eval.seed = (uint64_t)x;
    return 0;
}

static int set_paired(cli_opts *o, const char *n, const char *v)
{
    o->paired = 1;
    return 0;
}

static int set_no_values(cli_opts *o, const char *n, const char *v)
{
    o->no_values = 1;
    return 0;
}

static int set_value_limit(cli_opts *o, const char *n, const char *v)
{
    return parse_int(n, v, 16, 2147483647, &o->value_limit);
}

static int set_help(cli_opts *o, const char *n, const char *v)
{
    o->help = 1;
    return 0;
}

static int set_bins(cli_opts *o, const char *n, const char *v)
{
    return parse_int(n, v, 1, 1000000, &o->eval.bins);
}

static int set_threads(cli_opts *o, const char *n, const char *v)
{
    return parse_int(n, v, 0, 4096, &o->eval.threads);
}

/* A comma list of at most CLI_MAX_LEVELS numbers in [lo, 1] (lo itself
 * allowed only when lo_ok), into x[] and *count. */
static int parse_levels(const char *name, const char *v, double lo, int lo_ok,
                        double *x, int *count)
{
    const char *p = v;
    *count = 0;
    while (*p) {
        char *end;
        errno = 0;
        const double d = strtod(p, &end);
        if (errno || end == p || (*end && *end != ',') || !(d >= lo) ||
            d > 1.0 || (d == lo && !lo_ok) || *count == CLI_MAX_LEVELS)
            return bad_value(name, v, lo_ok ? "a comma list of numbers in "
                                              "[0, 1] (at most 32)"
                                            : "a comma list of numbers in "
                                              "(0, 1] (at most 32)");
        x[(*count)++] = d;
        p = *end ? end + 1 : end;
    }
    return *count ? 0 : bad_value(name, v, "a comma list of numbers");
}

static int set_coverage(cli_opts *o, const char *n, const char *v)
{
    return parse_levels(n, v, 0.0, 0, o->coverage, &o->n_coverage);
}

static int set_risk(cli_opts *o, const char *n, const char *v)
{
    return parse_levels(n, v, 0.0, 1, o->risk, &o->n_risk);
}

static int set_no_extra(cli_opts *o, const char *n, const char *v)
{
    o->eval.extra = 0;
    return 0;
}

static int set_no_scores(cli_opts *o, const char *n, const char *v)
{
    o->eval.scores = 0;
    return 0;
}

static int set_binning(cli_opts *o, const char *n, const char *v)
{
    if (strcmp(v, "width") == 0)
        o->eval.binning = CALIB_BINNING_WIDTH;
    else if (strcmp(v, "mass") == 0)
        o->eval.binning = CALIB_BINNING_MASS;
    else
        return bad_value(n, v, "width or mass");
    return 0;
}

static int set_rule(cli_opts *o, const char *n, const char *v)
{
    if (calib_bin_rule_parse(v, &o->eval.rule) != CALIB_OK)
        return bad_value(n, v,
                         "sklearn, netcal, torchmetrics, gpleiss or hollance");
    return 0;
}

static int set_method(cli_opts *o, const char *n, const char *v)
{
    o->method_all = strcmp(v, "all") == 0;
    if (!o->method_all && calib_method_parse(v, &o->fit.method) != CALIB_OK)
        return bad_value(n, v, "temperature, platt, vector, histogram, "
                               "isotonic, beta or all");
    return 0;
}

static int set_hist_bins(cli_opts *o, const char *n, const char *v)
{
    return parse_int(n, v, 1, 1000000, &o->fit.hist_bins);
}

static int set_hist_binning(cli_opts *o, const char *n, const char *v)
{
    if (strcmp(v, "width") && strcmp(v, "mass"))
        return bad_value(n, v, "width or mass");
    o->fit.hist_binning = strcmp(v, "width") ? CALIB_BINNING_MASS
                                             : CALIB_BINNING_WIDTH;
    return 0;
}

static int set_cv(cli_opts *o, const char *n, const char *v)
{
    return parse_int(n, v, 2, 1000000, &o->cv);
}

static int set_objective(cli_opts *o, const char *n, const char *v)
{
    if (calib_objective_parse(v, &o->fit.objective) != CALIB_OK)
        return bad_value(n, v, "nll, ece or brier");
    return 0;
}

static const opt_spec specs[] = {
    {"--label", CLI_OPT_NAMES, ARG, set_name},
    {"--label-col", CLI_OPT_INPUT, ARG, set_label},
    {"--format", CLI_OPT_INPUT, ARG, set_format},
    {"--seq-conf", CLI_OPT_INPUT, ARG, set_seq_conf},
    {"--choices", CLI_OPT_INPUT, ARG, set_choices},
    {"--norm", CLI_OPT_INPUT, ARG, set_norm},
    {"--diagram", CLI_OPT_DIAGRAM, ARG, set_diagram},
    {"--conf", CLI_OPT_INPUT, ARG, set_conf},
    {"--correct", CLI_OPT_INPUT, ARG, set_correct},
    {"--pred", CLI_OPT_INPUT, ARG, set_pred},
    {"--label", CLI_OPT_INPUT, ARG, set_label},
    {"--logits", CLI_OPT_INPUT, ARG, set_logits},
    {"--probs", CLI_OPT_INPUT, MAYBE_ARG, set_probs},
    {"--labels", CLI_OPT_INPUT, ARG, set_labels},
    {"--group", CLI_OPT_INPUT, ARG, set_group},
    {"--weight", CLI_OPT_INPUT, ARG, set_weight},
    {"--skip-bad-rows", CLI_OPT_INPUT, NO_ARG, set_skip},
    {"--max-line", CLI_OPT_INPUT, ARG, set_max_line},
    {"--max-gzip-ratio", CLI_OPT_INPUT, ARG, set_max_ratio},
    {"--bins", CLI_OPT_EVAL, ARG, set_bins},
    {"--binning", CLI_OPT_EVAL | CLI_OPT_BINNING, ARG, set_binning},
    {"--bin-rule", CLI_OPT_EVAL, ARG, set_rule},
    {"--threads", CLI_OPT_EVAL, ARG, set_threads},
    {"--method", CLI_OPT_FIT, ARG, set_method},
    {"--objective", CLI_OPT_FIT, ARG, set_objective},
    {"--hist-bins", CLI_OPT_FIT, ARG, set_hist_bins},
    {"--hist-binning", CLI_OPT_FIT, ARG, set_hist_binning},
    {"--cv", CLI_OPT_CV, ARG, set_cv},
    {"-o", CLI_OPT_OUT, ARG, set_out},
    {"--output", CLI_OPT_OUT, ARG, set_out},
    {"--json", CLI_OPT_JSON, NO_ARG, set_json},
    {"--ascii", CLI_OPT_TEXTPLOT, NO_ARG, set_ascii},
    {"--no-diagram", CLI_OPT_TEXTPLOT, NO_ARG, set_no_diagram},
    {"--partial", CLI_OPT_PARTIAL, NO_ARG, set_partial},
    {"--ci", CLI_OPT_CI, ARG, set_ci},
    {"--bootstrap", CLI_OPT_CI, ARG, set_bootstrap},
    {"--seed", CLI_OPT_CI | CLI_OPT_CV, ARG, set_seed},
    {"--paired", CLI_OPT_PAIRED, NO_ARG, set_paired},
    {"--no-values", CLI_OPT_PARTIAL, NO_ARG, set_no_values},
    {"--value-limit", CLI_OPT_PARTIAL, ARG, set_value_limit},
    {"--coverage", CLI_OPT_SELECT, ARG, set_coverage},
    {"--risk", CLI_OPT_SELECT, ARG, set_risk},
    {"--no-extra", CLI_OPT_SELECT, NO_ARG, set_no_extra},
    {"--no-scores", CLI_OPT_SELECT, NO_ARG, set_no_scores},
    {"--calibrator", CLI_OPT_CAL, ARG, set_calibrator},
    {"--val", CLI_OPT_SETS, ARG, set_val},
    {"--test", CLI_OPT_SETS, ARG, set_test},
    {"--val-labels", CLI_OPT_SETS, ARG, set_val_labels},
    {"--test-labels", CLI_OPT_SETS, ARG, set_test_labels},
    {"--val-correct", CLI_OPT_SETS, ARG, set_val_correct},
    {"--test-correct", CLI_OPT_SETS, ARG, set_test_correct},
    {"--help", ~0u, NO_ARG, set_help},
    {"-h", ~0u, NO_ARG, set_help},
};

/* Finds `arg` (up to '=' if any) among the options `accept` allows; a
 * name may appear twice (--label: a series name where a command draws or
 * compares several, else the CSV label column), the first accepted wins. */
static const opt_spec *lookup(const char *arg, unsigned accept)
{
    const size_t len = strcspn(arg, "=");
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (strlen(specs[i].name) == len &&
            strncmp(specs[i].name, arg, len) == 0 && (specs[i].group & accept))
            return &specs[i];
    return NULL;
}

static int takes_maybe(const char *next)
{
    return next && next[0] != '-' && access(next, F_OK) != 0;
}

/* Handles argv[*i], an option; advances *i past its value. */
static int parse_option(int argc, char **argv, int *i, const char *cmd,
                        unsigned accept, cli_opts *o)
{
    const char *arg = argv[*i];
    const opt_spec *s = lookup(arg, accept);
    if (!s) {
        cli_error("%s: unknown option '%s' (see calib %s --help)", cmd, arg,
                  cmd);
        return CLI_EX_USAGE;
    }
    const char *eq = strchr(arg, '=');
    const char *next = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (eq && s->arg == NO_ARG) {
        cli_error("%s: option '%s' takes no value", cmd, s->name);
        return CLI_EX_USAGE;
    }
    if (eq)
        return s->set(o, s->name, eq + 1);
    if (s->arg == NO_ARG || (s->arg == MAYBE_ARG && !takes_maybe(next)))
        return s->set(o, s->name, NULL);
    if (!next) {
        cli_error("%s: option '%s' needs a value", cmd, s->name);
        return CLI_EX_USAGE;
    }
    (*i)++;
    return s->set(o, s->name, next);
}

static void opts_init(cli_opts *o)
{
    memset(o, 0, sizeof *o);
    calib_read_options_init(&o->read);
    calib_eval_options_init(&o->eval);
    calib_fit_options_init(&o->fit);
}

int cli_parse(int argc, char **argv, const char *cmd, unsigned accept,
              cli_opts *o)
{
    opts_init(o);
    int only_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
        } else if (!only_pos && a[0] == '-' && a[1] != '\0') {
            const int rc = parse_option(argc, argv, &i, cmd, accept, o);
            if (rc)
                return rc;
        } else if (o->n_pos < CLI_MAX_POS) {
            o->pos[o->n_pos++] = a;
        } else {
            cli_error("%s: too many arguments", cmd);
            return CLI_EX_USAGE;
        }
    }
    /* fit.eval mirrors eval, the histogram's bins kept */
    o->fit.eval = o->eval;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int cli_is_npy(const char *path, const calib_read_options *opt)
{
    if (opt->format != CALIB_FORMAT_AUTO)
        return opt->format == CALIB_FORMAT_NPY;
    return ends_with(path, ".npy") || ends_with(path, ".npy.gz");
}

void cli_read_options_for(const cli_opts *o, const char *path,
                          const char *labels, const char *correct,
                          calib_read_options *r)
{
    *r = o->read;
    if (labels)
        r->labels_path = labels;
    if (!cli_is_npy(path, r))
        return;
    /* For a 1-D .npy of confidences, --correct names the 0/1 .npy. */
    if (correct)
        r->correct_path = correct;
    else if (r->correct)
        r->correct_path = r->correct;
    r->correct = NULL;
}
