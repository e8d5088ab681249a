/* cmd_demo.c — `calib demo`: makes an over-confident model's eval and
 * repairs it, so a new user sees the whole job on data it made itself.
 *
 * The model is a fine-tuned 4-choice "LLM" answering questions from four
 * subjects.  Each question has true choice logits z ~ sigma_s N(0, I); its
 * gold answer is drawn from softmax(z), so softmax(z) would be perfectly
 * calibrated.  The model reports t_s z plus a per-question shift (choice
 * logits are shift-invariant), with t_s near 3: fine-tuning made it
 * over-confident, and a single temperature fitted on validation undoes
 * most of it; t_s differs a little by subject, so some error remains per
 * subject, as it does with real models.  The generator is splitmix64 with
 * Box-Muller and the logits are printed to 4 decimals, so the files are the
 * same on every machine.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: calib demo [-o DIR]\n"
    "\n"
    "Writes DIR/val.csv and DIR/test.csv (default DIR: ./calib-demo), the\n"
    "choice logits of an over-confident fine-tuned 4-choice model on 3000 +\n"
    "3000 questions from four subjects (columns logit_0..logit_3, label,\n"
    "subject), then fits temperature scaling on val.csv and shows test.csv\n"
    "before and after, overall and per subject.\n"
    "\n"
    "Exit status: 0 ok, 64 usage, 73 cannot create output, 74 I/O error.\n";

enum { CHOICES = 4, SUBJECTS = 4, N_VAL = 3000, N_TEST = 3000 };

static const char *const subject[SUBJECTS] = {"algebra", "biology",
                                              "history", "law"};
/* Spread of the true logits (how easy the subject is) and over-confidence. */
static const double sigma[SUBJECTS] = {1.7, 2.0, 2.3, 1.4};
static const double overconf[SUBJECTS] = {2.8, 3.0, 2.9, 3.4};

typedef struct rng {
    uint64_t s;
    int has_spare;
    double spare;
} rng;

/* splitmix64 (Steele, Lea, Flood 2014), as in Vigna's reference code. */
static uint64_t next64(rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1): 53 random bits, offset by half a step, never 0. */
static double uniform(rng *r)
{
    return ((double)(next64(r) >> 11) + 0.5) * 0x1p-53;
}

/* Box-Muller: two independent N(0,1) from two uniforms. */
static double normal(rng *r)
{
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    const double rad = sqrt(-2.0 * log(uniform(r)));
    const double ang = 6.283185307179586 * uniform(r);
    r->spare = rad * sin(ang);
    r->has_spare = 1;
    return rad * cos(ang);
}

/* Draws an index from softmax(z). */
static int draw(rng *r, const double *z)
{
    double p[CHOICES], zmax = z[0], sum = 0;
    for (int k = 1; k < CHOICES; k++)
        zmax = z[k] > zmax ? z[k] : zmax;
    for (int k = 0; k < CHOICES; k++)
        sum += p[k] = exp(z[k] - zmax);
    double u = uniform(r) * sum;
    for (int k = 0; k < CHOICES - 1; k++)
        if ((u -= p[k]) < 0)
            return k;
    return CHOICES - 1;
}

static void write_question(FILE *f, rng *r)
{
    const int s = (int)(next64(r) % SUBJECTS);
    double z[CHOICES];
    for (int k = 0; k < CHOICES; k++)
        z[k] = sigma[s] * normal(r);
    const int label = draw(r, z);
    const double shift = 8.0 + 2.0 * normal(r);
    for (int k = 0; k < CHOICES; k++)
        fprintf(f, "%.4f,", overconf[s] * z[k] + shift);
    fprintf(f, "%d,%s\n", label, subject[s]);
}

static int write_set(const char *path, rng *r, int n)
{
    cli_out out;
    const int ex = cli_out_open(&out, path);
    if (ex)
        return ex;
    for (int k = 0; k < CHOICES; k++)
        fprintf(out.f, "logit_%d,", k);
    fprintf(out.f, "label,subject\n");
    for (int i = 0; i < n; i++)
        write_question(out.f, r);
    return cli_out_commit(&out);
}

/* mkdir -p: each missing component of `dir` is created. */
static int make_dir(const char *dir)
{
    char *p = strdup(dir);
    if (!p)
        return cli_nomem();
    int ok = 1;
    for (char *s = p + 1; ok && *s; s++)
        if (*s == '/') {
            *s = '\0';
            ok = mkdir(p, 0777) == 0 || errno == EEXIST;
            *s = '/';
        }
    ok = ok && (mkdir(p, 0777) == 0 || errno == EEXIST);
    if (!ok)
        cli_error("%s: cannot create directory: %s", dir, strerror(errno));
    free(p);
    return ok ? 0 : CLI_EX_CANTCREAT;
}

static char *join(const char *dir, const char *name)
{
    const size_t len = strlen(dir) + strlen(name) + 2;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s/%s", dir, name);
    return s;
}

static void print_commands(FILE *f, const char *val, const char *test,
                           const char *dir)
{
    fprintf(f, "Do the same on your own files:\n"
               "  calib eval %s --group subject\n"
               "  calib fit %s -o %s/cal.json\n"
               "  calib eval %s --calibrator %s/cal.json --group subject\n"
               "  calib apply %s/cal.json %s -o %s/test_calibrated.csv\n"
               "  calib eval --val %s --test %s --group subject --json\n"
               "  calib report --val %s --test %s --group subject "
               "-o %s/report.html\n"
               "For a classifier's .npy logits:\n"
               "  calib eval logits.npy --labels labels.npy\n",
            test, val, dir, test, dir, dir, test, dir, val, test, val, test,
            dir);
}

static void print_demo(FILE *f, const cli_loop *l, const char *dir)
{
    calib_read_stats st;
    calib_dataset_stats(l->test, &st);
    fprintf(f, "calib demo: a fine-tuned 4-choice model, %d validation and "
               "%d test questions\n\n", N_VAL, N_TEST);
    fprintf(f, "1. The test set, before recalibration\n");
    cli_print_read_stats(f, l->test_path, &st, l->before);
    fputc('\n', f);
    cli_print_metrics(f, l->before);
    fprintf(f, "\n2. Temperature scaling, fitted on %s\n", l->val_path);
    cli_print_fit(f, l->cal);
    fprintf(f, "\n3. The test set, before and after\n");
    cli_print_pair(f, l->before, l->after);
    fprintf(f, "\n4. Per subject\n");
    cli_print_group_pair(f, l->before, l->after);
    fputc('\n', f);
    print_commands(f, l->val_path, l->test_path, dir);
}

static int run_demo(const char *dir, const char *val, const char *test)
{
    rng r = {.s = 20240611u};
    int ex = make_dir(dir);
    ex = ex ? ex : write_set(val, &r, N_VAL);
    ex = ex ? ex : write_set(test, &r, N_TEST);
    if (ex)
        return ex;
    cli_opts o;
    char *argv[] = {NULL};
    cli_parse(1, argv, "demo", 0, &o);
    o.read.logits = "logit_*";
    o.read.label = "label";
    o.read.group = "subject";
    cli_loop l = {.val_path = val, .test_path = test};
    ex = cli_loop_run(&l, &o, &o.read, &o.read);
    if (!ex) {
        print_demo(stdout, &l, dir);
        ex = cli_stdout_commit();
    }
    cli_loop_free(&l);
    return ex;
}

int cmd_demo(int argc, char **argv)
{
    cli_opts o;
    int ex = cli_parse(argc, argv, "demo", CLI_OPT_OUT, &o);
    if (ex)
        return ex;
    if (o.help) {
        fputs(usage, stdout);
        return 0;
    }
    if (o.n_pos) {
        cli_error("demo: unexpected argument '%s'", o.pos[0]);
        return CLI_EX_USAGE;
    }
    const char *dir = o.out ? o.out : "calib-demo";
    char *val = join(dir, "val.csv"), *test = join(dir, "test.csv");
    ex = val && test ? run_demo(dir, val, test) : cli_nomem();
    free(val);
    free(test);
    return ex;
}
