/* calib.c — the `calib` program: dispatch to a subcommand, as git does.
 *
 * Every subcommand lives in its own cmd_*.c and returns a sysexits(3) exit
 * status; this file only picks one, and prints the top-level help.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: calib <command> [options]\n"
    "\n"
    "Measures and repairs the calibration of a model's confidences.\n"
    "\n"
    "commands:\n"
    "  eval FILE [input options] [--bins M] [--binning width|mass]\n"
    "            [--bin-rule R] [--threads N] [--json] [-o OUT]\n"
    "                       accuracy, ECE, MCE, RMSCE, NLL, Brier, bins\n"
    "  eval TEST --calibrator CAL.json    TEST before and after\n"
    "  eval --val VAL --test TEST         fit on VAL, judge TEST\n"
    "  fit VAL [input options] [--objective nll|ece|brier] [-o CAL.json]\n"
    "                       fit temperature scaling\n"
    "  apply CAL.json FILE [input options] -o OUT.npy|OUT.csv\n"
    "                       write recalibrated probabilities\n"
    "  report --val VAL --test TEST [options] -o REPORT.html\n"
    "                       fit, judge and draw it all in one HTML page\n"
    "  demo [-o DIR]        generate an over-confident example and fix it\n"
    "  help [COMMAND]       this text, or a command's\n"
    "\n"
    "  --version            print the version\n"
    "\n"
    "Input formats: .npy (with --labels), CSV, TSV, any of them gzipped;\n"
    "'-' reads standard input.  See calib eval --help for input options.\n"
    "\n"
    "Exit status: 0 ok, 64 usage error, 65 bad input data, 66 cannot open\n"
    "input, 70 internal error or no convergence, 71 out of memory,\n"
    "73 cannot create output, 74 I/O error.\n";

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
} command;

static const command commands[] = {
    {"eval", cmd_eval},   {"fit", cmd_fit},   {"apply", cmd_apply},
    {"demo", cmd_demo},
    {"diagram", cmd_diagram},
    {"report", cmd_report},
    {"compare", cmd_compare},
};

static const command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* `calib help eval` is `calib eval --help`. */
static int help(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stdout);
        return cli_stdout_commit();
    }
    const command *c = find(argv[1]);
    if (!c) {
        cli_error("help: unknown command '%s'", argv[1]);
        return CLI_EX_USAGE;
    }
    static char flag[] = "--help";
    char *args[] = {argv[1], flag, NULL};
    return c->run(2, args);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return CLI_EX_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        strcmp(name, "help") == 0)
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
