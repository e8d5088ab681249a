/* cli.h — what the `calib` program's files share.
 *
 * The CLI is a thin layer over <calib.h>: it parses argv into the library's
 * option structs (opts.c), runs one subcommand per file (cmd_*.c), and owns
 * presentation: tables, JSON composition, exit codes, and output files that
 * appear atomically (out.c).  What eval and compare read (one file, several,
 * a directory) is inputs.c's.  Nothing here is part of the library.
 */
#ifndef CALIB_CLI_H
#define CALIB_CLI_H

#include <calib.h>

#include <stdio.h>

/* Exit codes, as sysexits(3); spelled out so the CLI builds without it. */
enum {
    CLI_EX_OK = 0,
    CLI_EX_USAGE = 64,
    CLI_EX_DATAERR = 65,
    CLI_EX_NOINPUT = 66,
    CLI_EX_SOFTWARE = 70,
    CLI_EX_OSERR = 71,
    CLI_EX_CANTCREAT = 73,
    CLI_EX_IOERR = 74
};

/* Which options a subcommand accepts (bits of cli_parse's `accept`). */
enum {
    CLI_OPT_INPUT = 1 << 0,   /* --format --conf ... --skip-bad-rows      */
    CLI_OPT_EVAL = 1 << 1,    /* --bins --binning --bin-rule --threads    */
    CLI_OPT_FIT = 1 << 2,     /* --method --objective                     */
    CLI_OPT_OUT = 1 << 3,     /* -o                                       */
    CLI_OPT_JSON = 1 << 4,    /* --json                                   */
    CLI_OPT_CAL = 1 << 5,     /* --calibrator                             */
    CLI_OPT_SETS = 1 << 6,    /* --val --test --val-labels ...            */
    CLI_OPT_NAMES = 1 << 7,   /* --label NAME (repeatable): series names;
                                 then --label-col names the CSV label     */
    CLI_OPT_DIAGRAM = 1 << 8, /* --diagram OUT.svg|png|pdf                */
    CLI_OPT_TEXTPLOT = 1 << 9,/* --ascii --no-diagram: the terminal chart */
    CLI_OPT_PARTIAL = 1 << 10,/* --partial --no-values --value-limit      */
    CLI_OPT_CI = 1 << 11,     /* --ci --bootstrap --seed: intervals       */
    CLI_OPT_PAIRED = 1 << 12, /* --paired: the paired bootstrap           */
    CLI_OPT_CV = 1 << 13,     /* --cv K --seed S: cross-fitting           */
    CLI_OPT_SELECT = 1 << 14, /* --coverage --risk --no-extra (eval)      */
    CLI_OPT_BINNING = 1 << 20 /* --binning alone (merge)                  */
};

/* Positional arguments: several files at once (`calib eval
 * samples_*.jsonl` over MMLU's 57 subjects) must fit. */
#define CLI_MAX_POS 1024
/* --coverage and --risk take at most this many levels each. */
#define CLI_MAX_LEVELS 32

/* Everything a command line can say, after parsing. */
typedef struct cli_opts {
    calib_read_options read;  /* shared input options                    */
    calib_eval_options eval;
    calib_fit_options fit;    /* fit.eval mirrors eval after parsing      */
    const char *out;          /* -o, NULL if absent                       */
    int json;
    int help;
    const char *calibrator;   /* --calibrator CAL.json                    */
    const char *val, *test;   /* --val, --test                            */
    const char *val_labels, *test_labels;
    const char *val_correct, *test_correct;
    const char *names[CLI_MAX_POS];  /* --label NAME, in order           */
    int n_names;
    const char *diagram;      /* --diagram OUT                            */
    int ascii;                /* --ascii: the terminal chart in ASCII     */
    int no_diagram;           /* --no-diagram: no terminal chart          */
    int partial;              /* --partial: the accumulator's state       */
    int paired;               /* --paired: B - A on one resampling        */
    int method_all;           /* --method all: compare every method       */
    int cv;                   /* --cv K (0: none)                         */
    int no_values;            /* --no-values: a state without value tables */
    int value_limit;          /* --value-limit N (0: the library's)       */
    double coverage[CLI_MAX_LEVELS];  /* --coverage C,C,...           */
    int n_coverage;
    double risk[CLI_MAX_LEVELS];      /* --risk R,R,...               */
    int n_risk;
    const char *pos[CLI_MAX_POS];
    int n_pos;
} cli_opts;

/* opts.c */
/* Parses argv[1..argc) (argv[0] is the subcommand) into *o, accepting the
 * option groups in `accept`.  Returns 0, or CLI_EX_USAGE after printing the
 * one-line error. */
int cli_parse(int argc, char **argv, const char *cmd, unsigned accept,
              cli_opts *o);
/* Returns 1 if `path` will be read as .npy under `opt`. */
int cli_is_npy(const char *path, const calib_read_options *opt);
/* Fills *r with the read options for `path`: `labels` and `correct` are the
 * .npy side files for this set (NULL: none); for a .npy input the value of
 * --correct is taken as a path, as DESIGN.md says. */
void cli_read_options_for(const cli_opts *o, const char *path,
                          const char *labels, const char *correct,
                          calib_read_options *r);

/* out.c */
/* An output that appears whole or not at all: a temporary file in the
 * destination's directory, renamed over it on commit, removed on abort. */
typedef struct cli_out {
    FILE *f;
    char *path;               /* NULL: standard output */
    char *tmp;                /* NULL: written in place (a device, FIFO) */
} cli_out;

/* Opens `path` for writing (NULL or "-": standard output); returns 0 or an
 * exit code after printing the error. */
int cli_out_open(cli_out *o, const char *path);
/* Flushes, closes and renames into place; returns 0 or an exit code. */
int cli_out_commit(cli_out *o);
/* Discards what was written; an existing file at the path is untouched. */
void cli_out_abort(cli_out *o);
/* Writes data[0..len) and commits; on a failed write the output is
 * discarded.  Returns 0 or an exit code after printing the error. */
int cli_out_write(cli_out *o, const void *data, size_t len);
/* Flushes standard output; returns 0 or CLI_EX_IOERR after the error. */
int cli_stdout_commit(void);
/* Writes `text` (plus a newline) to `path` whole; returns 0 or exit code. */
int cli_write_text(const char *path, const char *text);

int cli_exit_code(int status);
/* Prints "calib: <formatted err>" and returns the exit code of `status`.
 * `path` names the input when the library left err->file empty. */
int cli_fail(int status, const calib_error *err, const char *path);
/* Prints "calib: <message>" on stderr. */
void cli_error(const char *fmt, ...);
/* Prints "calib: warning: <message>" on stderr. */
void cli_warn(const char *fmt, ...);
/* Prints "calib: out of memory" and returns CLI_EX_OSERR. */
int cli_nomem(void);

/* inputs.c */
/* The files several arguments stand for: a directory holds its
 * samples_*.jsonl[.gz] files if it has any, else its .jsonl, .csv and
 * .tsv files (optionally .gz), sorted by name.  When more than one file
 * results, or a directory was given, each file's task name is its group
 * (groups[i] non-NULL): lm-eval's samples_<task>_<date>.jsonl gives
 * <task>, any other file its base name without extensions. */
typedef struct cli_inputs {
    char **paths;
    char **groups;
    size_t n;
} cli_inputs;
/* Returns 0 or an exit code after printing the error. */
int cli_inputs_expand(const char *const *args, size_t n, cli_inputs *in);
void cli_inputs_free(cli_inputs *in);
/* The task name of `path` (malloc'd), as cli_inputs_expand says. */
char *cli_task_name(const char *path);
/* Reads every input (with its group) and joins them into one dataset.
 * Returns 0 or an exit code after printing the error. */
int cli_read_inputs(const cli_inputs *in, const cli_opts *o,
                    calib_dataset **out);
/* Metrics of every input, streamed through one accumulator when the
 * binning allows it and no interval is asked for, else read whole and
 * joined.  *st sums the reads. */
int cli_eval_inputs(const cli_inputs *in, const cli_opts *o,
                    calib_metrics **m, calib_read_stats *st);
/* The partial state of every input streamed through one accumulator
 * (equal-width bins only), as calib_accum_to_json writes it with the
 * summed read counts in *st; zero rows is fine.  Returns 0 or an exit
 * code after printing the error. */
int cli_partial_inputs(const cli_inputs *in, const cli_opts *o, char **json,
                       calib_read_stats *st);
/* Returns 1 when the inputs are JSONL (lm-eval or OpenAI rows), whose
 * confidences depend on --seq-conf or --norm. */
int cli_jsonl_inputs(const cli_opts *o, const cli_inputs *in);
/* For JSONL inputs, how their confidences were made: key "seq_conf"
 * (OpenAI rows) or "norm" (lm-eval rows) and its value; NULL, NULL for
 * other inputs. */
void cli_jsonl_mode(const cli_opts *o, const cli_inputs *in,
                    const calib_metrics *m, const char **key,
                    const char **value);
/* calib_read with the CLI's error reporting; zero data rows is an error
 * ("FILE: no data rows", exit 65).  Returns 0 or an exit code. */
int cli_read(const char *path, const calib_read_options *ro,
             calib_dataset **out);
/* calib_evaluate with the CLI's error reporting. */
int cli_evaluate(const calib_dataset *ds, const calib_eval_options *eo,
                 calib_metrics **out);
/* Prints "calib: FILE: no data rows" and returns CLI_EX_DATAERR. */
int cli_no_rows(const char *path);
/* fopen(path, "rb") of a file that is not a directory; NULL with *ex
 * CLI_EX_NOINPUT after the error ("cannot open: is a directory"). */
FILE *cli_open_input(const char *path, int *ex);

/* cmd_eval.c */
int cmd_eval(int argc, char **argv);
/* Writes the metrics as `calib eval` does: the table (with its chart) or,
 * with --json, the JSON; to -o atomically or to stdout.  `path` is what
 * the table's "file" line shows; mode[0] (NULL: none) and mode[1] are the
 * JSONL key and value of cli_jsonl_mode.  Returns 0 or an exit code. */
int cli_write_eval(const cli_opts *o, const char *const mode[2],
                   const char *path, const calib_read_stats *st,
                   const calib_metrics *m);
/* Renders the terminal reliability diagram of n series (labels NULL for
 * one) at the default size into *text (malloc'd, NUL-terminated), ASCII
 * only with `ascii`.  Returns 0 or an exit code after printing the error. */
int cli_text_diagram(const calib_metrics *const *m, const char *const *labels,
                     size_t n, int ascii, char **text);
/* Prints a text chart indented by two spaces, as the tables are. */
void cli_print_chart(FILE *f, const char *text);
/* Calls `warn(text, ctx)` for each warning the read and the metrics carry
 * (clamped values, probability rows with a sum off 1, clipped NLL). */
void cli_each_warning(const calib_read_stats *st, const calib_metrics *m,
                      void (*warn)(const char *text, void *ctx), void *ctx);

/* tables.c */
/* Prints " [lo, hi]" of metric id when m has intervals (else nothing). */
void cli_print_ci(FILE *f, const calib_metrics *m, calib_metric_id id);
/* Table printers that eval, fit, demo, compare and merge share. */
void cli_print_metrics(FILE *f, const calib_metrics *m);
void cli_print_pair(FILE *f, const calib_metrics *before,
                    const calib_metrics *after);
/* The metric table with a column for each of ms[0..n), headed heads[]. */
void cli_print_columns(FILE *f, const char *const *heads,
                       const calib_metrics *const *ms, int n);
void cli_print_bins(FILE *f, const calib_metrics *m);
/* The per-group lines of m (its groups, one line each). */
void cli_print_groups(FILE *f, const calib_metrics *m);
void cli_print_group_pair(FILE *f, const calib_metrics *before,
                          const calib_metrics *after);
void cli_print_read_stats(FILE *f, const char *path,
                          const calib_read_stats *st,
                          const calib_metrics *m);

/* cmd_fit.c */
int cmd_fit(int argc, char **argv);
int cmd_apply(int argc, char **argv);
/* Reads a calibrator file (what `calib fit -o` writes) into *out.
 * Returns 0 or an exit code after printing the error. */
int cli_load_calibrator(const char *path, calib_calibrator **out);

/* The whole loop: a calibrator fitted on a validation set (or read from a
 * file), and a test set judged before and after.  Built by cli_loop_run. */
typedef struct cli_loop {
    const char *val_path, *test_path;
    calib_dataset *val, *test, *test_after;
    calib_calibrator *cal;
    calib_metrics *val_before, *val_after;
    calib_metrics *before, *after;
    calib_metrics *val_cv;    /* --cv: the fitting set, cross-fitted       */
    int cv;
    uint64_t seed;
    char *cal_json;           /* the calibrator file's JSON (fit)          */
} cli_loop;

/* Reads `val_path` (NULL with a calibrator `cal` already set) and
 * `test_path`, fits, applies and evaluates.  Returns 0 or an exit code
 * after printing the error. */
int cli_loop_run(cli_loop *l, const cli_opts *o,
                 const calib_read_options *val_ro,
                 const calib_read_options *test_ro);
void cli_loop_free(cli_loop *l);
/* Prints the loop report (fit summary when fitted, then before/after);
 * `diagram` (NULL: none) is a text chart printed after the metric table. */
void cli_loop_print(FILE *f, const cli_loop *l, const char *diagram);
/* Sets *json to the metrics as compact JSON text (malloc'd):
 * calib_metrics_to_json's object, then the read counts it does not write
 * (rows_disagree, rows_duplicate, values_unknown), then "key": "value"
 * when key is not NULL.  Composed with jansson.  Returns 0 or an exit code
 * after printing the error. */
int cli_metrics_json(const calib_metrics *m, const calib_read_stats *st,
                     const char *key, const char *value, char **json);
/* Returns the loop report as JSON text (malloc'd), or NULL on ENOMEM. */
char *cli_loop_json(const cli_loop *l);
/* cmd_fit_all.c */
/* `calib fit --method all`: every method on one split (--val/--test) or
 * cross-fitted on one set (--cv), as a table or JSON.  Returns 0 or an
 * exit code. */
int cli_fit_all(const cli_opts *o);

/* fit_report.c */
/* Prints the fit summary (method, parameters, objective, iterations,
 * diagnostics). */
void cli_print_fit(FILE *f, const calib_calibrator *c);
/* The metrics of ds before recalibration by method m: of its top-label
 * view for a top-label method on distribution rows (so that before and
 * after are the same kind of rows), else of ds. */
int cli_eval_before(calib_method m, const calib_dataset *ds,
                    const calib_eval_options *eo, calib_metrics **out);
/* The metrics of the k-fold cross-fitted predictions of ds. */
int cli_cross_fit(const calib_dataset *ds, const calib_fit_options *fo,
                  int k, uint64_t seed, calib_metrics **out);
/* Prints each diagnostic of `c` as "calib: warning: ...". */
void cli_warn_diagnostics(const calib_calibrator *c);

/* apply_out.c */
/* Writes what `calib apply` writes for `after` (calib_apply of `in`, read
 * from in_path with ro) to `path` in format fmt (npy, csv, tsv): top-label
 * rows into CSV/TSV as the input's columns plus calibrated_confidence
 * when the input is a CSV/TSV file whose rows all were used, else as
 * calib_write_probs does.  Returns 0 or an exit code after the error. */
int cli_write_applied(const char *in_path, const calib_read_options *ro,
                      const calib_dataset *in, const calib_dataset *after,
                      calib_format fmt, const char *path);
/* eval_select.c: accuracy at coverage and coverage at risk for eval. */
typedef struct cli_levels {
    int n_coverage, n_risk;
    double coverage[CLI_MAX_LEVELS], accuracy[CLI_MAX_LEVELS];
    double risk[CLI_MAX_LEVELS], reach[CLI_MAX_LEVELS];
} cli_levels;
/* Reads every input whole, evaluates it into *m and computes the
 * --coverage/--risk levels of o into *lv.  Returns 0 or an exit code
 * after printing the error. */
int cli_eval_levels(const cli_inputs *in, const cli_opts *o,
                    calib_metrics **m, calib_read_stats *st, cli_levels *lv);
/* Adds "accuracy_at_coverage" and "coverage_at_risk" objects (keys: the
 * levels as the shortest decimal that reads back) to the JSON object text
 * *json, replacing it.  Returns 0 or an exit code. */
int cli_levels_json(const cli_levels *lv, char **json);
/* The table lines of the levels, and the compact block of the metrics
 * beyond the bins. */
void cli_print_levels(FILE *f, const cli_levels *lv);
void cli_print_extra(FILE *f, const calib_metrics *m);

/* cmd_merge.c */
int cmd_merge(int argc, char **argv);

/* cmd_demo.c */
int cmd_demo(int argc, char **argv);

/* cmd_diagram.c */
int cmd_diagram(int argc, char **argv);

/* cmd_compare.c */
int cmd_compare(int argc, char **argv);

/* paired.c: compare --paired */
/* Reads set i (o->pos[i]) whole into *ds and evaluates it into *m, *st
 * its read counts.  Returns 0 or an exit code after the error. */
int cli_paired_read(const cli_opts *o, int i, calib_dataset **ds,
                    calib_metrics **m, calib_read_stats *st);
/* calib_paired_bootstrap of a and b with o's --bootstrap (default 1000),
 * --ci and --seed.  Returns 0 or an exit code after the error. */
int cli_paired_run(const cli_opts *o, const calib_dataset *a,
                   const calib_dataset *b, calib_paired **p);
/* The paired table (b minus a, labelled la and lb), and the JSON members
 * ", \"paired\": {...}, \"paired_options\": {...}". */
void cli_paired_print(FILE *f, const calib_paired *p, const char *la,
                      const char *lb);
void cli_paired_json(FILE *f, const calib_paired *p);

/* cmd_report.c */
int cmd_report(int argc, char **argv);
/* Writes the HTML report of a finished loop to `path` (atomically): when
 * it was fitted on l->val, with the fit and the curve of validation NLL
 * over T; with a calibrator from a file, TEST before and after only.  title may be NULL; command is the command line
 * that reproduces it.  Returns 0 or an exit code after the error. */
int cli_report_write(const cli_loop *l, const cli_opts *o, const char *title,
                     const char *command, const char *path);

#endif /* CALIB_CLI_H */
