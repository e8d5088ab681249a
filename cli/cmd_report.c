/* cmd_report.c — `calib report`: the fit-then-judge loop as one HTML page.
 *
 * It runs the loop `fit --val --test` runs (cli_loop_run: fit on VAL, apply
 * to VAL and TEST, evaluate both), adds, for temperature scaling, the
 * validation NLL over a range of T around the fitted one
 * (calib_temperature_curve), and hands it all to calib_render_report.
 * With --calibrator CAL.json instead of --val, the loop applies that
 * calibrator to TEST and the page has no fit to show.  The page carries
 * the command line that made it, quoted for a POSIX shell, so whoever
 * reads it can make it again.  The page is written through cli_out: it
 * appears whole or not at all.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: calib report --val VAL --test TEST [input options] [--group C]\n"
    "                    [--bins M] [--binning width|mass] [--bin-rule R]\n"
    "                    [--method M] [--objective nll|ece|brier]\n"
    "                    [--hist-bins B] [--threads N]\n"
    "                    [--title TEXT] -o REPORT.html\n"
    "       calib report --calibrator CAL.json --test TEST [options]\n"
    "                    -o REPORT.html\n"
    "\n"
    "Fits a recalibrator on VAL (--method temperature, the default, platt,\n"
    "vector, histogram, isotonic or beta), judges TEST before and after, and\n"
    "writes one self-contained HTML page (inline SVG and CSS, no scripts, no\n"
    "network): reliability diagrams before and after, the metric table, the\n"
    "fit (the method's parameters, objective, iterations, diagnostics; for\n"
    "temperature scaling the validation NLL over T),\n"
    "per-group tables and diagrams with --group, and the command line that\n"
    "reproduces it.  REPORT.html appears only when everything was written.\n"
    "With --calibrator (from calib fit -o) instead of --val, TEST is judged\n"
    "before and after that calibrator: no fit section and no NLL curve; the\n"
    "default title names the calibrator (and T for temperature scaling).\n"
    "--method all is refused: compare methods with calib fit --method all.\n"
    "Input options are those of calib eval (see calib eval --help); .npy\n"
    "sets take --val-labels and --test-labels.\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 65 bad data, 66 cannot open input,\n"
    "70 internal error or no convergence, 71 out of memory,\n"
    "73 cannot create output, 74 I/O error.\n";

/* Points of the NLL curve: odd, so that the middle one is the fitted T. */
#define CURVE_POINTS 61

/* Takes --title out of argv (cli_parse does not know it) into *title;
 * args gets the rest.  Returns 0 or CLI_EX_USAGE. */
static int take_title(int argc, char **argv, char **args, int *n_args,
                      const char **title)
{
    *n_args = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < argc)
                args[(*n_args)++] = argv[i++];
            break;
        }
        if (strncmp(argv[i], "--title=", 8) == 0) {
            *title = argv[i] + 8;
        } else if (strcmp(argv[i], "--title") == 0) {
            if (i + 1 >= argc) {
                cli_error("report: option '--title' needs a value");
                return CLI_EX_USAGE;
            }
            *title = argv[++i];
        } else {
            args[(*n_args)++] = argv[i];
        }
    }
    args[*n_args] = NULL;
    return 0;
}

/* Characters a POSIX shell takes literally in a word. */
static int shell_plain(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_-+=/.,:@%", *s))
            return 0;
    return 1;
}

/* "calib report ARGS..." with each argument quoted where a shell needs it
 * ('it'\''s'); malloc'd, NULL when out of memory. */
static char *command_line(int argc, char **argv)
{
    size_t len = sizeof "calib";
    for (int i = 0; i < argc; i++)
        len += 4 * strlen(argv[i]) + 3;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    p += sprintf(p, "calib");
    for (int i = 0; i < argc; i++) {
        *p++ = ' ';
        if (shell_plain(argv[i])) {
            p += sprintf(p, "%s", argv[i]);
            continue;
        }
        *p++ = '\'';
        for (const char *a = argv[i]; *a; a++)
            p += *a == '\'' ? sprintf(p, "'\\''") : sprintf(p, "%c", *a);
        *p++ = '\'';
    }
    *p = '\0';
    return s;
}

static int check_args(const cli_opts *o)
{
    if (o->n_pos) {
        cli_error("report: unexpected argument '%s' (give the sets with "
                  "--val and --test)", o->pos[0]);
        return CLI_EX_USAGE;
    }
    if (o->val && o->calibrator) {
        cli_error("report: give --val VAL or --calibrator CAL.json, not both");
        return CLI_EX_USAGE;
    }
    if ((!o->val && !o->calibrator) || !o->test) {
        cli_error("report: --val VAL (or --calibrator CAL.json) and --test "
                  "TEST are required");
        return CLI_EX_USAGE;
    }
    if (!o->out) {
        cli_error("report: -o REPORT.html is required");
        return CLI_EX_USAGE;
    }
    return 0;
}

/* T/4 .. 4T, log-spaced, widened (up to T/16 .. 16T) to show T = 1, the
 * scores as given, when it is near. */
static void curve_range(double t, double *ts)
{
    const double lo = fmax(t / 16, fmin(t / 4, 0.8));
    const double hi = fmin(t * 16, fmax(t * 4, 1.25));
    const int mid = CURVE_POINTS / 2;
    for (int i = 0; i < CURVE_POINTS; i++)
        ts[i] = i < mid ? t * pow(lo / t, (double)(mid - i) / mid)
                : i > mid ? t * pow(hi / t, (double)(i - mid) / mid)
                          : t;
}

/* The page of a loop: with a fit on l->val, the fit section and the NLL
 * curve; with a calibrator read from a file, neither (the library draws
 * the fit section whenever it is given the calibrator). */
static int render(const cli_loop *l, const cli_opts *o, const char *title,
                  const char *command, char **html, size_t *len)
{
    double ts[CURVE_POINTS], nll[CURVE_POINTS];
    calib_error err = {0};
    int rc = 0;
    const int curve = l->val && calib_calibrator_method(l->cal) ==
                                    CALIB_METHOD_TEMPERATURE;
    if (curve) {
        curve_range(calib_calibrator_temperature(l->cal), ts);
        rc = calib_temperature_curve(l->val, ts, CURVE_POINTS, nll,
                                     o->eval.threads, &err);
        if (rc)
            return cli_fail(rc, &err, l->val_path);
    }
    const calib_report_spec spec = {
        .title = title, .test_before = l->before, .test_after = l->after,
        .val_before = l->val_before, .val_after = l->val_after,
        .calibrator = l->val ? l->cal : NULL,
        .curve_t = curve ? ts : NULL, .curve_nll = curve ? nll : NULL,
        .n_curve = curve ? CURVE_POINTS : 0, .val_path = l->val_path,
        .test_path = l->test_path, .command = command,
        .applied = l->val ? NULL : l->cal};
    rc = calib_render_report(&spec, html, len, &err);
    return rc ? cli_fail(rc, &err, NULL) : 0;
}

int cli_report_write(const cli_loop *l, const cli_opts *o, const char *title,
                     const char *command, const char *path)
{
    char *html = NULL;
    size_t len = 0;
    const int rc = render(l, o, title, command, &html, &len);
    if (rc)
        return rc;
    cli_out out;
    int ex = cli_out_open(&out, path);
    if (!ex)
        ex = cli_out_write(&out, html, len);
    free(html);
    return ex;
}

/* Without --title and without a fit to show, the title says which
 * calibrator was applied (and its T). */
static void calibrator_title(const cli_opts *o, const cli_loop *l,
                             char *buf, size_t size)
{
    const calib_method m = calib_calibrator_method(l->cal);
    if (m == CALIB_METHOD_TEMPERATURE)
        snprintf(buf, size, "Calibration report: T = %.4g from %s",
                 calib_calibrator_temperature(l->cal), o->calibrator);
    else
        snprintf(buf, size, "Calibration report: %s from %s",
                 calib_method_name(m), o->calibrator);
}

static int run(const cli_opts *o, const char *title, const char *command)
{
    cli_loop l = {.val_path = o->val, .test_path = o->test};
    calib_read_options vro = {0}, tro;
    char own_title[600];
    if (o->val)
        cli_read_options_for(o, o->val, o->val_labels, o->val_correct, &vro);
    cli_read_options_for(o, o->test, o->test_labels, o->test_correct, &tro);
    int ex = o->calibrator ? cli_load_calibrator(o->calibrator, &l.cal) : 0;
    /* The page shows one calibrator. */
    if (!ex && o->method_all) {
        cli_error("report: the HTML report shows one method, not all; "
                  "compare methods with calib fit --method all, then report "
                  "the one chosen with --method");
        ex = CLI_EX_USAGE;
    }
    if (!ex)
        ex = cli_loop_run(&l, o, &vro, &tro);
    if (!ex && !title && o->calibrator) {
        calibrator_title(o, &l, own_title, sizeof own_title);
        title = own_title;
    }
    if (!ex)
        ex = cli_report_write(&l, o, title, command, o->out);
    cli_loop_free(&l);
    return ex;
}

int cmd_report(int argc, char **argv)
{
    char **args = malloc(((size_t)argc + 1) * sizeof *args);
    char *command = command_line(argc, argv);
    const char *title = NULL;
    int n = 0, ex = args && command ? 0 : cli_nomem();
    if (!ex)
        ex = take_title(argc, argv, args, &n, &title);
    cli_opts o;
    if (!ex)
        ex = cli_parse(n, args, "report",
                       CLI_OPT_INPUT | CLI_OPT_EVAL | CLI_OPT_FIT |
                           CLI_OPT_OUT | CLI_OPT_SETS | CLI_OPT_CAL,
                       &o);
    if (!ex && o.help)
        fputs(usage, stdout);
    else if (!ex && !(ex = check_args(&o)))
        ex = run(&o, title, command);
    free(args);
    free(command);
    return ex;
}
