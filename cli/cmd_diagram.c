/* cmd_diagram.c — `calib diagram`: reliability diagrams to SVG, PNG, PDF
 * or the terminal.
 *
 * One file is one series; several are overlaid in one figure with a
 * legend.  The output's extension picks the format; without -o the
 * terminal chart goes to standard output.  The options only this command
 * has (--label NAME, --title, --width, --height, ...) are taken out of argv
 * first and the rest goes through the shared parser.  Here --label names a
 * series, as DESIGN.md writes it, so the CSV label column that other
 * commands call --label is --label-col.  The file appears whole or not at
 * all (cli_out).
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: calib diagram FILE [FILE...] [--label NAME]... [input options]\n"
    "                     [--bins M] [--binning width|mass] [--bin-rule R]\n"
    "                     [--title T] [--width W] [--height H] [--ascii]\n"
    "                     [--no-counts] [--no-headline] [-o OUT]\n"
    "\n"
    "Draws the reliability diagram of each FILE (accuracy against confidence\n"
    "per bin, the diagonal y = x, rows per bin below, ECE/MCE/accuracy/N in a\n"
    "corner).  One file: bars with the gap to the diagonal shaded; several\n"
    "(up to 8): one coloured curve each, with a legend.\n"
    "\n"
    "  -o OUT               OUT.svg, OUT.png, OUT.pdf or OUT.txt (the format\n"
    "                       follows the extension); without -o, a text chart\n"
    "                       on standard output\n"
    "  --label NAME         name of the next FILE's series (repeat it once per\n"
    "                       FILE; default: the file names)\n"
    "  --label-col C        the CSV label column (what `eval` calls --label)\n"
    "  --title T            a title above the diagram\n"
    "  --width W --height H size in pixels (PNG), points (PDF), user units\n"
    "                       (SVG; default 640 x 720) or columns x rows (text;\n"
    "                       default 60 x 16)\n"
    "  --ascii              text chart in ASCII only\n"
    "  --no-counts          no per-bin counts panel\n"
    "  --no-headline        no ECE/MCE/accuracy/N figures\n"
    "\n"
    "Input and bin options are those of calib eval (see calib eval --help).\n"
    "The counts panel is on a log scale: bar height is log10(1 + count).\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data, 66 cannot open input,\n"
    "71 out of memory, 73 cannot create output, 74 I/O error.\n";

typedef struct diagram_args {
    const char *labels[CLI_MAX_POS];
    int n_labels;
    const char *label_col;
    calib_plot_options plot;
} diagram_args;

static int parse_size(const char *name, const char *v, int *out)
{
    char *end;
    errno = 0;
    const long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 1 || x > 100000) {
        cli_error("diagram: %s: expected a positive integer, got '%s'", name, v);
        return CLI_EX_USAGE;
    }
    *out = (int)x;
    return 0;
}

/* Applies option `name` with value `v` (NULL for flags); returns 0, an
 * exit code, or -1 when the option is not one of diagram's own. */
static int own_option(diagram_args *d, const char *name, const char *v)
{
    if (strcmp(name, "--label") == 0) {
        if (d->n_labels == CLI_MAX_POS) {
            cli_error("diagram: at most %d labels", CLI_MAX_POS);
            return CLI_EX_USAGE;
        }
        d->labels[d->n_labels++] = v;
    } else if (strcmp(name, "--label-col") == 0) {
        d->label_col = v;
    } else if (strcmp(name, "--title") == 0) {
        d->plot.title = v;
    } else if (strcmp(name, "--width") == 0) {
        return parse_size(name, v, &d->plot.width);
    } else if (strcmp(name, "--height") == 0) {
        return parse_size(name, v, &d->plot.height);
    } else {
        return -1;
    }
    return 0;
}

static int own_flag(diagram_args *d, const char *a)
{
    if (strcmp(a, "--ascii") == 0)
        d->plot.ascii = 1;
    else if (strcmp(a, "--no-counts") == 0)
        d->plot.counts = 0;
    else if (strcmp(a, "--no-headline") == 0)
        d->plot.headline = 0;
    else
        return 0;
    return 1;
}

static int takes_value(const char *a, size_t len)
{
    static const char *const names[] = {"--label", "--label-col", "--title",
                                        "--width", "--height"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && strncmp(names[i], a, len) == 0)
            return 1;
    return 0;
}

/* Moves diagram's own options from argv into *d; the others (and every
 * positional argument) are copied to rest[], which has room for argc. */
static int take_own(int argc, char **argv, char **rest, int *n_rest,
                    diagram_args *d)
{
    int n = 0, only_pos = 0;
    rest[n++] = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const size_t len = strcspn(a, "=");
        only_pos |= strcmp(a, "--") == 0;
        if (only_pos || a[0] != '-' || (!takes_value(a, len) && !own_flag(d, a))) {
            rest[n++] = argv[i];
            continue;
        }
        if (!takes_value(a, len))
            continue; /* a flag, already applied */
        const char *v = a[len] == '=' ? a + len + 1 : i + 1 < argc ? argv[++i] : NULL;
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)len, a);
        if (!v) {
            cli_error("diagram: option '%s' needs a value", name);
            return CLI_EX_USAGE;
        }
        const int rc = own_option(d, name, v);
        if (rc)
            return rc;
    }
    *n_rest = n;
    return 0;
}

/* A series' default name: the file name without directory or extension
 * ("runs/base.csv.gz" -> "base"), short enough for the legend. */
static void default_label(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    snprintf(buf, size, "%s", slash && slash[1] ? slash + 1 : path);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf && strcmp(dot, ".gz") == 0) {
        *dot = '\0';
        dot = strrchr(buf, '.');
    }
    if (dot && dot != buf)
        *dot = '\0';
}

/* Reads and evaluates every file; m[i] are the caller's to free. */
static int evaluate_all(const cli_opts *o, const diagram_args *d,
                        calib_metrics **m)
{
    for (int i = 0; i < o->n_pos; i++) {
        calib_read_options ro;
        cli_read_options_for(o, o->pos[i], NULL, NULL, &ro);
        if (d->label_col)
            ro.label = d->label_col;
        calib_dataset *ds = NULL;
        int ex = cli_read(o->pos[i], &ro, &ds);
        if (!ex)
            ex = cli_evaluate(ds, &o->eval, &m[i]);
        calib_dataset_free(ds);
        if (ex)
            return ex;
    }
    return 0;
}

static int write_out(const char *path, const unsigned char *data, size_t len)
{
    cli_out out;
    const int ex = cli_out_open(&out, path);
    return ex ? ex : cli_out_write(&out, data, len);
}

static int check_args(const cli_opts *o, const diagram_args *d,
                      calib_plot_format *fmt)
{
    if (o->n_pos == 0) {
        cli_error("diagram: no input file (see calib diagram --help)");
        return CLI_EX_USAGE;
    }
    if (d->n_labels && d->n_labels != o->n_pos) {
        cli_error("diagram: %d labels for %d files", d->n_labels, o->n_pos);
        return CLI_EX_USAGE;
    }
    *fmt = CALIB_PLOT_TEXT;
    if (o->out && strcmp(o->out, "-") != 0 &&
        calib_plot_format_from_path(o->out, fmt) != CALIB_OK) {
        cli_error("diagram: %s: unknown extension (want .svg, .png, .pdf or .txt)",
                  o->out);
        return CLI_EX_USAGE;
    }
    return 0;
}

static int render(const cli_opts *o, const diagram_args *d,
                  calib_plot_format fmt, calib_metrics **m)
{
    const char *labels[CLI_MAX_POS];
    char names[CLI_MAX_POS][256];
    for (int i = 0; i < o->n_pos; i++) {
        default_label(o->pos[i], names[i], sizeof names[i]);
        labels[i] = d->n_labels ? d->labels[i] : names[i];
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    calib_error err = {0};
    const int rc = calib_render_diagram((const calib_metrics *const *)m,
                                        labels, (size_t)o->n_pos, fmt,
                                        &d->plot, &buf, &len, &err);
    if (rc)
        return cli_fail(rc, &err, NULL);
    const int ex = write_out(o->out, buf, len);
    free(buf);
    return ex;
}

int cmd_diagram(int argc, char **argv)
{
    diagram_args d;
    memset(&d, 0, sizeof d);
    calib_plot_options_init(&d.plot);
    char **rest = malloc(((size_t)argc + 1) * sizeof *rest);
    if (!rest)
        return cli_nomem();
    int n_rest = 0;
    cli_opts o;
    int ex = take_own(argc, argv, rest, &n_rest, &d);
    if (!ex)
        ex = cli_parse(n_rest, rest, "diagram",
                       CLI_OPT_INPUT | CLI_OPT_EVAL | CLI_OPT_OUT, &o);
    free(rest);
    if (ex)
        return ex;
    if (o.help) {
        fputs(usage, stdout);
        return cli_stdout_commit();
    }
    calib_plot_format fmt;
    if ((ex = check_args(&o, &d, &fmt)) != 0)
        return ex;
    calib_metrics *m[CLI_MAX_POS] = {0};
    ex = evaluate_all(&o, &d, m);
    if (!ex)
        ex = render(&o, &d, fmt, m);
    for (int i = 0; i < o.n_pos; i++)
        calib_metrics_free(m[i]);
    return ex;
}
