/* calib.c — the `calib` program: dispatch to a subcommand, as git does.
 *
 * Every subcommand lives in its own cmd_*.c and returns a sysexits(3) exit
 * status; this file only picks one, and prints the top-level help.
 */
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Every command, with the line `calib --help` shows for it: the list
 * is made from the table that dispatches, so no command goes unlisted. */
typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static int help(int argc, char **argv);

static const command commands[] = {
    {"eval", cmd_eval,
     "accuracy, ECE, MCE, RMSCE, NLL, Brier and a reliability diagram"},
    {"fit", cmd_fit, "fit temperature scaling on a validation set"},
    {"apply", cmd_apply, "write recalibrated probabilities with a calibrator"},
    {"diagram", cmd_diagram,
     "draw reliability diagrams (SVG, PNG, PDF or text)"},
    {"report", cmd_report, "fit, judge and draw it all in one HTML page"},
    {"compare", cmd_compare,
     "several sets side by side, per group by calibration gap"},
    {"merge", cmd_merge,
     "merge partial states (eval --partial) of shards, exactly"},
    {"demo", cmd_demo, "generate an over-confident example and repair it"},
    {"help", help, "this list, or a command's help (calib help eval)"},
};

enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static void usage(FILE *f)
{
    fputs("usage: calib <command> [options]\n"
          "       calib help <command>\n"
          "\n"
          "Measures and repairs the calibration of a model's confidences.\n"
          "\n"
          "commands:\n", f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "   %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "   --version  print the version\n"
          "\n"
          "Input formats: .npy (with --labels), CSV, TSV, lm-eval and\n"
          "OpenAI/vLLM JSONL, any of them gzipped; '-' reads standard input.\n"
          "See calib eval --help for input options.\n"
          "\n"
          "Exit status: 0 ok, 64 usage error, 65 bad input data, 66 cannot\n"
          "open input, 70 internal error or no convergence, 71 out of memory,\n"
          "73 cannot create output, 74 I/O error.\n", f);
}

static const command *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int is_help_flag(const char *a)
{
    return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

/* `calib help eval` is `calib eval --help`; `calib help help` this list. */
static int help(int argc, char **argv)
{
    if (argc < 2 || is_help_flag(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return cli_stdout_commit();
    }
    const command *c = find(argv[1]);
    if (!c) {
        cli_error("help: unknown command '%s' (see calib --help)", argv[1]);
        return CLI_EX_USAGE;
    }
    static char flag[] = "--help";
    char *args[] = {argv[1], flag, NULL};
    return c->run(2, args);
}

int main(int argc, char **argv)
{
    /* Past a file-size limit (ulimit -f) a write fails with EFBIG instead
     * of killing the process, so the output is discarded whole (exit 74). */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return CLI_EX_USAGE;
    }
    const char *name = argv[1];
    if (is_help_flag(name))
        return help(argc - 1, argv + 1);
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("calib %s (libcalib %s)\n", CALIB_VERSION_STRING,
               calib_version());
        return cli_stdout_commit();
    }
    const command *c = find(name);
    if (!c) {
        cli_error("unknown command '%s' (see calib --help)", name);
        return CLI_EX_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
