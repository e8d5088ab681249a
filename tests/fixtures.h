/* fixtures.h — small valid input files of every format, written by the
 * test itself into a temporary directory, with the values they hold, for
 * the fault tests (test_alloc_*.c, test_truncate.c).  Header-only.
 *
 * One set of FX_N rows: K = 3 logits and a label, a top-label confidence
 * and correct flag, a group and a weight.  The files are written from these
 * arrays (numbers as short decimals, exact in binary where they must be), so
 * what a reader returns can be compared with the arrays, not with calib.
 */
#ifndef CALIB_TEST_FIXTURES_H
#define CALIB_TEST_FIXTURES_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define FX_N 8
#define FX_K 3

static const double fx_logits[FX_N][FX_K] = {
    {2.5, -0.5, 0.25},  {0.5, 1.75, -1},  {-2, 0.5, 3},   {1, 1.5, 0.75},
    {0.125, -3, -1.5},  {4, 2, 0.5},      {-0.25, 0.5, 1}, {1.5, 1.25, -2}};
static const int fx_labels[FX_N] = {0, 1, 2, 0, 0, 1, 2, 1};
static const double fx_conf[FX_N] = {0.9,  0.75, 0.625, 0.55,
                                     0.98, 0.3,  0.875, 0.5};
static const int fx_correct[FX_N] = {1, 0, 1, 1, 1, 0, 1, 0};
static const char *const fx_group[FX_N] = {"a", "b", "a", "c",
                                           "b", "a", "c", "a"};
static const double fx_weight[FX_N] = {1, 2, 0.5, 1.5, 1, 3, 0.25, 1};

/* The ragged lm-eval rows: row i holds its first fx_choices(i) logits. */
static size_t fx_choices(size_t i) { return i % 3 == 1 ? 2 : 3; }
static int fx_lm_label(size_t i)
{
    return fx_labels[i] < (int)fx_choices(i) ? fx_labels[i] : 0;
}

/* Where temporary directories go: /dev/shm when it is there (thousands of
 * small files are written and read back, and an overlay /tmp makes each
 * one slow), else $TMPDIR or /tmp. */
static const char *fx_tmp(void)
{
    if (access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    const char *t = getenv("TMPDIR");
    return t && *t && strlen(t) < 32 ? t : "/tmp";
}

/* A temporary directory, made once; removed by fx_cleanup(). */
static char fx_dirbuf[64];
static const char *fx_dir(void)
{
    if (!fx_dirbuf[0]) {
        snprintf(fx_dirbuf, sizeof fx_dirbuf, "%s/calib-fx-XXXXXX", fx_tmp());
        if (!mkdtemp(fx_dirbuf))
            abort();
    }
    return fx_dirbuf;
}

/* fx_dir()/name, in a rotating static buffer. */
static const char *fx_path(const char *name)
{
    static char buf[8][256];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", fx_dir(), name);
    return buf[i];
}

static void fx_write(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(fx_path(name), "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
        abort();
}

/* A growable byte string for building fixtures. */
typedef struct fx_text {
    char *s;
    size_t len, cap;
} fx_text;

static void fx_add(fx_text *t, const void *p, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        if (!t->s)
            abort();
    }
    memcpy(t->s + t->len, p, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void fx_addf(fx_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fx_addf(fx_text *t, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fx_add(t, line, (size_t)n);
}

/* A .npy v1.0 file of `count` values of `size` bytes, dtype `descr`. */
static fx_text fx_npy(const char *descr, const char *shape, const void *data,
                      size_t size, size_t count)
{
    char dict[256];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
    while ((10 + n + 1) % 64)
        dict[n++] = ' ';
    dict[n++] = '\n';
    fx_text t = {0};
    const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
    const unsigned char hlen[2] = {(unsigned char)(n & 0xff),
                                   (unsigned char)(n >> 8)};
    fx_add(&t, magic, 8);
    fx_add(&t, hlen, 2);
    fx_add(&t, dict, (size_t)n);
    fx_add(&t, data, size * count);
    return t;
}

/* A gzip stream (one member) of t. */
static fx_text fx_gzip(const fx_text *t)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY))
        abort();
    fx_text g = {0};
    unsigned char out[1 << 14];
    z.next_in = (unsigned char *)t->s;
    z.avail_in = (uInt)t->len;
    int rc;
    do {
        z.next_out = out;
        z.avail_out = sizeof out;
        rc = deflate(&z, Z_FINISH);
        fx_add(&g, out, sizeof out - z.avail_out);
    } while (rc == Z_OK);
    deflateEnd(&z);
    if (rc != Z_STREAM_END)
        abort();
    return g;
}

/* The fixtures' contents, built from the arrays above. */
static fx_text fx_csv_toplabel(char sep)
{
    fx_text t = {0};
    fx_addf(&t, "group%cweight%cconfidence%ccorrect\n", sep, sep, sep);
    for (size_t i = 0; i < FX_N; i++)
        fx_addf(&t, "%s%c%.17g%c%.17g%c%d\n", fx_group[i], sep, fx_weight[i],
                sep, fx_conf[i], sep, fx_correct[i]);
    return t;
}

static fx_text fx_csv_logits(void)
{
    fx_text t = {0};
    fx_addf(&t, "logit_0,logit_1,logit_2,group,label\n");
    for (size_t i = 0; i < FX_N; i++)
        fx_addf(&t, "%.17g,%.17g,%.17g,%s,%d\n", fx_logits[i][0],
                fx_logits[i][1], fx_logits[i][2], fx_group[i], fx_labels[i]);
    return t;
}

static fx_text fx_lmeval(void)
{
    fx_text t = {0};
    for (size_t i = 0; i < FX_N; i++) {
        const size_t c = fx_choices(i);
        size_t best = 0;
        fx_addf(&t, "{\"doc_id\": %zu, \"target\": %d, \"arguments\": {", i,
                fx_lm_label(i));
        for (size_t j = 0; j < c; j++)
            fx_addf(&t, "%s\"gen_args_%zu\": {\"arg_0\": \"Q\", \"arg_1\": "
                        "\" choice %zu\"}", j ? ", " : "", j, j);
        fx_addf(&t, "}, \"filtered_resps\": [");
        for (size_t j = 0; j < c; j++) {
            fx_addf(&t, "%s[\"%.17g\", \"False\"]", j ? ", " : "",
                    fx_logits[i][j]);
            if (fx_logits[i][j] > fx_logits[i][best])
                best = j;
        }
        fx_addf(&t, "], \"acc\": %d.0}\n", (int)best == fx_lm_label(i));
    }
    return t;
}

static fx_text fx_openai(void)
{
    fx_text t = {0};
    for (size_t i = 0; i < FX_N; i++) {
        fx_addf(&t, "{\"choices\": [{\"logprobs\": {\"content\": [");
        for (size_t j = 0; j < 2; j++)
            fx_addf(&t, "%s{\"token\": \"t%zu\", \"logprob\": %.17g}",
                    j ? ", " : "", j, -0.125 * (double)(i + j + 1));
        fx_addf(&t, "]}}], \"grade\": {\"correct\": %s, \"group\": \"%s\"}}\n",
                fx_correct[i] ? "true" : "false", fx_group[i]);
    }
    return t;
}

/* The .npy set: logits f8 (mapped), logits f4 big-endian (copied), labels
 * i8, confidences f8, correct b1. */
static fx_text fx_npy_logits_f8(void)
{
    return fx_npy("<f8", "(8, 3)", fx_logits, 8, FX_N * FX_K);
}

static fx_text fx_npy_logits_f4be(void)
{
    unsigned char be[FX_N * FX_K * 4];
    for (size_t j = 0; j < FX_N * FX_K; j++) {
        const float v = (float)fx_logits[j / FX_K][j % FX_K];
        uint32_t u;
        memcpy(&u, &v, 4);
        for (int b = 0; b < 4; b++)
            be[j * 4 + (size_t)b] = (unsigned char)(u >> (24 - 8 * b));
    }
    return fx_npy(">f4", "(8, 3)", be, 4, FX_N * FX_K);
}

static fx_text fx_npy_labels(void)
{
    int64_t y[FX_N];
    for (size_t i = 0; i < FX_N; i++)
        y[i] = fx_labels[i];
    return fx_npy("<i8", "(8,)", y, 8, FX_N);
}

static fx_text fx_npy_conf(void)
{
    return fx_npy("<f8", "(8,)", fx_conf, 8, FX_N);
}

static fx_text fx_npy_correct(void)
{
    unsigned char c[FX_N];
    for (size_t i = 0; i < FX_N; i++)
        c[i] = (unsigned char)fx_correct[i];
    return fx_npy("|b1", "(8,)", c, 1, FX_N);
}

/* Writes t to name (and its gzip to name.gz with gz) and frees it. */
static void fx_put(const char *name, fx_text t, int gz)
{
    fx_write(name, t.s, t.len);
    if (gz) {
        char gzname[128];
        snprintf(gzname, sizeof gzname, "%s.gz", name);
        fx_text g = fx_gzip(&t);
        fx_write(gzname, g.s, g.len);
        free(g.s);
    }
    free(t.s);
}

/* Writes every fixture into fx_dir(). */
static void fx_write_all(void)
{
    fx_put("top.csv", fx_csv_toplabel(','), 1);
    fx_put("top.tsv", fx_csv_toplabel('\t'), 1);
    fx_put("logits.csv", fx_csv_logits(), 1);
    fx_put("samples_fx_2024-01-01.jsonl", fx_lmeval(), 1);
    fx_put("openai.jsonl", fx_openai(), 1);
    fx_put("logits_f8.npy", fx_npy_logits_f8(), 1);
    fx_put("logits_f4be.npy", fx_npy_logits_f4be(), 0);
    fx_put("labels.npy", fx_npy_labels(), 0);
    fx_put("conf.npy", fx_npy_conf(), 0);
    fx_put("correct.npy", fx_npy_correct(), 0);
}

/* Removes every file of fx_dir() and the directory. */
static void fx_cleanup(void)
{
    if (!fx_dirbuf[0])
        return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx_dirbuf);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", fx_dirbuf);
    fx_dirbuf[0] = '\0';
}

/* cmocka group setup and teardown: every fixture written, then removed. */
static inline int fx_setup(void **state)
{
    (void)state;
    fx_write_all();
    return 0;
}

static inline int fx_teardown(void **state)
{
    (void)state;
    fx_cleanup();
    return 0;
}

/* Read options for fixture `name`: columns and side files as it needs. */
static calib_read_options fx_options(const char *name)
{
    static char labels[256], correct[256];
    calib_read_options o;
    calib_read_options_init(&o);
    snprintf(labels, sizeof labels, "%s", fx_path("labels.npy"));
    snprintf(correct, sizeof correct, "%s", fx_path("correct.npy"));
    if (strstr(name, "top.")) {
        o.group = "group";
        o.weight = "weight";
    } else if (strstr(name, "logits.csv")) {
        o.group = "group";
    } else if (strstr(name, "openai")) {
        o.correct = "grade.correct";
        o.group = "grade.group";
    } else if (strstr(name, "conf.npy")) {
        o.correct_path = correct;
    } else if (strstr(name, ".npy")) {
        o.labels_path = labels;
    }
    return o;
}

#endif /* CALIB_TEST_FIXTURES_H */
