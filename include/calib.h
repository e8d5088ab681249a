/* calib.h — the public interface of libcalib, and its reference manual.
 *
 * libcalib measures how far a model's confidence is from its competence
 * (accuracy, ECE, MCE, RMSCE, NLL, Brier, per-bin reliability tables),
 * and repairs it with post-hoc recalibration (temperature scaling first).
 *
 * Conventions that hold everywhere (each is tested in tests/):
 *
 *  - Status.  Every fallible function returns a calib_status (0 = CALIB_OK)
 *    and takes an optional `calib_error *err` last; when it is not NULL it
 *    receives the code, the file, the 1-based line/row and column, and a
 *    message.  On error every out-pointer is set to NULL and nothing leaks.
 *  - Ownership.  What a `_new`, `_read`, `_fit`, `_apply` or `_evaluate` call
 *    returns belongs to the caller and is released with the matching `_free`;
 *    every `_free` accepts NULL.  Arrays passed in are borrowed: they are read
 *    during the call only, except by calib_dataset_wrap(), documented there.
 *  - Threads.  The library holds no global state; every call is reentrant.
 *    Work over rows is split across `threads` threads (0 = the machine's
 *    cores).  Every metric's sum over rows is exact (a superaccumulator,
 *    rounded once at the end), so results are bit-identical for any thread
 *    count and any split of the rows into shards; the one exception is a
 *    term of magnitude 2^80 or more (a weight above ~1e24, an NLL from
 *    logits ~1e24 apart), which is summed in plain floating point, so its
 *    last bits depend on the split.  The temperature solver's
 *    inner objective sums fixed blocks of 16 rows in a fixed order before
 *    adding them exactly: its T is bit-identical for any thread count.
 *  - No locale.  Numbers are read and written in the C locale whatever the
 *    process locale is; the library never calls setlocale().
 *
 * Numeric conventions:
 *
 *  - Confidence of a distribution row is its largest probability; the
 *    prediction is the first index that attains it (ties go to the lowest
 *    index); correct means prediction == label.  For logits the probability
 *    is softmax(z), computed through log-sum-exp.
 *  - Equal-width bins: M bins, edges e_k = (double)k / M (one correctly
 *    rounded division).  Under the default rule (CALIB_RULE_SKLEARN) bin b
 *    covers (e_b, e_{b+1}] and p = 0 belongs to bin 0; p is compared with
 *    the edges exactly, so a confidence written 0.8 belongs to (0.7, 0.8].
 *    The other rules reproduce the projects they name (see calib_bin_rule).
 *  - Equal-mass bins: the sorted confidences are split into M groups of
 *    nearly equal count (numpy.array_split: the first N mod M groups hold
 *    one more), the edges are the midpoints between adjacent groups, and
 *    duplicate edges are removed, so ties are never split (Kumar et al. 2019,
 *    `get_equal_bins`, as HELM's ece_10_bin).  Rows are then assigned by
 *    value to (a, b] bins; there may be fewer than M bins.
 *  - ECE   = sum_b (n_b/n) |acc_b - conf_b|          (Guo et al. 2017)
 *    MCE   = max_b |acc_b - conf_b| over non-empty bins
 *    RMSCE = sqrt(sum_b (n_b/n) (acc_b - conf_b)^2)
 *    With weights, counts are replaced by sums of weights.
 *  - NLL   = mean of -log q_label.  From logits: log-softmax, no clipping.
 *    From probabilities: q_label is clipped below at 1e-15 (as
 *    scikit-learn's log_loss); rows are not renormalised.  The number of
 *    clipped rows is reported (calib_metrics.nll_clipped_rows).
 *  - Brier of a distribution row: sum_k (q_k - [k = label])^2, in [0, 2]
 *    (scikit-learn's multiclass form); of a top-label row: (p - correct)^2.
 *  - Input checks, applied once when data enter the library (readers and
 *    calib_dataset_wrap): NaN and infinities are bad data; a probability or
 *    confidence more than 1e-3 outside [0, 1] is bad data, within 1e-3 it is
 *    clamped into [0, 1] and counted; a probability row whose sum is off 1 by
 *    more than 1e-3 is bad data, by less it is used as given and counted;
 *    a label outside [0, K) is bad data.
 */
#ifndef CALIB_H
#define CALIB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CALIB_VERSION_MAJOR 0
#define CALIB_VERSION_MINOR 1
#define CALIB_VERSION_PATCH 0
#define CALIB_VERSION_STRING "0.1.0"

/* Returns CALIB_VERSION_STRING of the library actually linked. */
const char *calib_version(void);

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

/* Stable status numbers: bindings map them by value. */
typedef enum calib_status {
    CALIB_OK = 0,
    CALIB_EINVAL = 1,      /* invalid argument or option (CLI: exit 64)   */
    CALIB_EDATA = 2,       /* bad input data (CLI: exit 65)               */
    CALIB_EOPEN = 3,       /* cannot open an input (CLI: exit 66)         */
    CALIB_ECREATE = 4,     /* cannot create an output (CLI: exit 73)      */
    CALIB_EIO = 5,         /* read or write failed midway (CLI: exit 74)  */
    CALIB_ENOMEM = 6,      /* out of memory (CLI: exit 71)                */
    CALIB_ECONVERGE = 7,   /* an optimiser did not converge (CLI: 70)     */
    CALIB_EINTERNAL = 8    /* a bug in calib (CLI: exit 70)               */
} calib_status;

/* Where and why a call failed.  Zero-initialise it, or pass NULL. */
typedef struct calib_error {
    int code;            /* a calib_status                                 */
    char file[512];      /* the input it concerns, "" if none              */
    size_t line;         /* 1-based text line, 0 if not applicable         */
    size_t row;          /* 1-based data row (npy: row index + 1), or 0     */
    size_t column;       /* 1-based field/column, 0 if not applicable      */
    char message[512];   /* one sentence, no trailing newline              */
} calib_error;

/* Returns a static string describing `status` ("bad input data", ...). */
const char *calib_strerror(int status);

/* Writes "file:line:col: message" (the parts that are known) to `buf`
 * (always NUL-terminated, truncated to `size`) and returns `buf`. */
char *calib_error_format(const calib_error *err, char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* Datasets                                                            */
/* ------------------------------------------------------------------ */

/* What a row holds. */
typedef enum calib_kind {
    CALIB_TOPLABEL = 1,  /* a confidence p in [0,1] and a correct flag      */
    CALIB_LOGITS = 2,    /* K logits (or ragged choice log-likelihoods)      */
    CALIB_PROBS = 3      /* K probabilities and a label                      */
} calib_kind;

/* Element type of score and confidence arrays. */
typedef enum calib_dtype { CALIB_F64 = 0, CALIB_F32 = 1 } calib_dtype;

/* A prediction set of N rows.  Opaque; read it through the accessors. */
typedef struct calib_dataset calib_dataset;

/* A description of caller-owned arrays, for calib_dataset_wrap().
 * Distribution rows (LOGITS, PROBS): `scores` holds the rows one after the
 * other; with `offsets` NULL every row has `k` entries, otherwise row i is
 * scores[offsets[i] .. offsets[i+1]) (ragged choices) and `k` is ignored.
 * `labels` gives each row's class.  Top-label rows: `conf` and `correct`.
 * `weights` (NULL: every row weighs 1) must be finite and >= 0.
 * `groups` (NULL: no groups) gives each row a group index < n_groups whose
 * name is group_names[i]. */
typedef struct calib_arrays {
    calib_kind kind;
    size_t n;
    size_t k;
    const size_t *offsets;
    calib_dtype dtype;          /* of scores and conf */
    const void *scores;
    const int32_t *labels;
    const void *conf;
    const uint8_t *correct;
    const double *weights;
    const uint32_t *groups;
    size_t n_groups;
    const char *const *group_names;
} calib_arrays;

/* Checks the arrays (the input checks of the header comment) and returns a
 * dataset in *out that refers to them without copying: the caller keeps
 * them alive and unchanged until calib_dataset_free().  Group names are
 * copied.  Errors: CALIB_EINVAL (inconsistent description), CALIB_EDATA
 * (err->row and err->column say where), CALIB_ENOMEM. */
int calib_dataset_wrap(const calib_arrays *a, calib_dataset **out,
                       calib_error *err);

/* Releases a dataset and everything it owns (file mappings too). */
void calib_dataset_free(calib_dataset *ds);

calib_kind calib_dataset_kind(const calib_dataset *ds);
size_t calib_dataset_rows(const calib_dataset *ds);
/* Returns the number of classes K, or 0 for ragged or top-label rows. */
size_t calib_dataset_classes(const calib_dataset *ds);
/* Returns the number of groups (0 without groups) and group i's name. */
size_t calib_dataset_group_count(const calib_dataset *ds);
const char *calib_dataset_group_name(const calib_dataset *ds, size_t i);

/* What reading saw.  rows_read = rows_used + rows_rejected always. */
typedef struct calib_read_stats {
    size_t rows_read;
    size_t rows_used;
    size_t rows_rejected;     /* skipped bad rows (with skip_bad_rows)   */
    size_t values_clamped;    /* within 1e-3 outside [0,1], clamped      */
    size_t rows_sum_off;      /* probability rows with |sum-1| in (1e-6, 1e-3] */
    size_t rows_disagree;     /* lm-eval: argmax == gold differs from the
                                 logged acc                              */
    size_t rows_duplicate;    /* lm-eval: repeated doc_id (one per filter),
                                 the first kept                          */
    size_t values_unknown;    /* logprobs: null or the -9999 sentinel    */
} calib_read_stats;
void calib_dataset_stats(const calib_dataset *ds, calib_read_stats *out);
/* Adds every count of *b into *a (inputs read one after the other). */
void calib_read_stats_add(calib_read_stats *a, const calib_read_stats *b);

/* The number of values calib_dataset_export writes: N * K for rows of K
 * classes, the total of the row lengths for ragged rows, N for top-label
 * rows. */
size_t calib_dataset_export_len(const calib_dataset *ds);

/* Writes the probabilities of every row into out[0..len), len being
 * calib_dataset_export_len(ds): softmax of logits (log-sum-exp), the
 * probabilities as stored (clamped into [0,1]), or the confidences of
 * top-label rows, row after row.  Errors: CALIB_EINVAL (len differs). */
int calib_dataset_export(const calib_dataset *ds, double *out, size_t len,
                         calib_error *err);

/* Returns in *out one dataset holding the rows of parts[0..n) in order
 * (copied; the result owns them).  The parts must share a kind; their
 * groups are merged by name, and stats are summed.  Errors: CALIB_EINVAL
 * (n = 0, mixed kinds, groups on some parts only, or different K between
 * non-ragged parts), CALIB_ENOMEM. */
int calib_dataset_concat(const calib_dataset *const *parts, size_t n,
                         calib_dataset **out, calib_error *err);

/* ------------------------------------------------------------------ */
/* Reading files                                                       */
/* ------------------------------------------------------------------ */

typedef enum calib_format {
    CALIB_FORMAT_AUTO = 0,  /* from the extension, after a ".gz"; .jsonl
                               files are told apart by their content      */
    CALIB_FORMAT_NPY = 1,
    CALIB_FORMAT_CSV = 2,
    CALIB_FORMAT_TSV = 3,
    CALIB_FORMAT_LMEVAL = 4, /* lm-evaluation-harness --log_samples JSONL */
    CALIB_FORMAT_OPENAI = 5  /* OpenAI/vLLM responses with logprobs, JSONL */
} calib_format;

/* How a generated answer's token log-probabilities become one confidence
 * (CALIB_FORMAT_OPENAI).  Computed in log space. */
typedef enum calib_seq_conf {
    CALIB_SEQ_GEOMEAN = 0,  /* exp(mean logprob) = 1/perplexity (default) */
    CALIB_SEQ_PRODUCT = 1,  /* exp(sum logprob): the sequence probability  */
    CALIB_SEQ_MEAN = 2,     /* arithmetic mean of token probabilities      */
    CALIB_SEQ_MIN = 3,      /* the least likely token's probability        */
    CALIB_SEQ_ANSWER = 4    /* the answer token's probability, renormalised
                               over `choices` through its top_logprobs     */
} calib_seq_conf;

/* lm-eval multiple-choice scores: summed loglik as logged, or divided by
 * the choice's length (lm-eval's acc_norm uses characters). */
typedef enum calib_lmeval_norm {
    CALIB_NORM_NONE = 0,
    CALIB_NORM_CHARS = 1,
    CALIB_NORM_BYTES = 2
} calib_lmeval_norm;

int calib_seq_conf_parse(const char *name, calib_seq_conf *out);
const char *calib_seq_conf_name(calib_seq_conf mode);

/* How to read an input.  Initialise with calib_read_options_init().
 * Column options name CSV/TSV header fields; `logits` and `probs` take a
 * comma list of names or one glob ("logit_*"; *, ? and [...] as fnmatch),
 * matched columns in header order.  A confidence column (`conf`) also
 * accepts a percentage: a number followed by '%' ("85%", "85.5 %") reads
 * as that number / 100, rounded once from the decimal; no other column
 * accepts '%'.  Without column options the obvious
 * headers are found: confidence/conf + correct, pred/pred_label +
 * label/true_label/target, logit_* or prob_* + label.
 * For .npy: the main file holds (N,K) logits, or probabilities when
 * `npy_probs` is set, with `labels_path` naming an (N,) integer .npy; or
 * (N,) confidences with `correct_path` naming an (N,) 0/1 or bool .npy.
 * A path of "-" reads standard input (give `format` then, or gzip is
 * detected from its magic bytes and CSV assumed).  .jsonl and .json files
 * are told apart by their content (lm-eval or OpenAI).
 *
 * lm-eval --log_samples (CALIB_FORMAT_LMEVAL; jansson parses each line,
 * members calib does not use are only checked for balanced quoting): a
 * multiple-choice sample becomes one ragged LOGITS row whose scores are
 * the choices' logliks (`filtered_resps`, else `resps`; strings as v0.4.3+
 * writes them or native numbers as v0.4.0-0.4.2, whose files are one JSON
 * array), divided by the choice text's length in code points or UTF-8
 * bytes with `norm`.  `target`: an integer, a digit string in range, or
 * text matched against the choices (arg_1 less one leading space); a list
 * is correct when the argmax is in it (label = that choice, else the
 * first), as lm-eval's acc.  A repeated doc_id (one line per filter)
 * keeps the first line (rows_duplicate); acc_mutual_info's 2K entries use
 * the first K (conditional) logliks, as `acc` does; generative samples
 * (text responses) are bad data.  argmax == gold is checked against the
 * logged acc (acc_norm, acc_bytes with `norm`): rows_disagree.
 *
 * OpenAI/vLLM responses (CALIB_FORMAT_OPENAI), one per line, at the top
 * level, under "response" or "response.body" (Batch API); choices[0] only,
 * chat (`logprobs.content[]`) or legacy (`logprobs.token_logprobs`): one
 * TOPLABEL row whose confidence comes from the token logprobs by
 * `seq_conf` and whose correct flag is at the dotted path `correct` (a
 * bool, 0/1 or "true"/"false"; required).  null and the -9999.0 sentinel
 * are unknown: counted in values_unknown and left out of sums, means and
 * minima; a row with no known token is bad data.  `group` is a dotted
 * path too. */
typedef struct calib_read_options {
    calib_format format;
    const char *conf;       /* column names (CSV/TSV) */
    const char *correct;
    const char *pred;
    const char *label;
    const char *logits;
    const char *probs;
    const char *group;
    const char *weight;
    int npy_probs;          /* .npy scores are probabilities, not logits */
    const char *labels_path;
    const char *correct_path;
    int skip_bad_rows;      /* skip and count bad rows instead of failing */
    size_t max_line;        /* longest accepted line; 0 = 64 MiB         */
    size_t chunk_rows;      /* rows per chunk from calib_reader_next; 0 = 65536 */
    /* Every row of this input gets this group, whatever its group column
     * (several files read at once: each file's task name). NULL: none. */
    const char *group_name;
    /* JSONL inputs.  `correct` names the correctness field of an OpenAI
     * response line as a dotted path ("grade.correct"). */
    calib_seq_conf seq_conf;
    const char *choices;    /* CALIB_SEQ_ANSWER: "A,B,C,D"              */
    calib_lmeval_norm norm;
} calib_read_options;

void calib_read_options_init(calib_read_options *opt);

/* Reads a whole input into *out.  .npy files of native-endian float32 or
 * float64 in C order are mapped, not copied.  Errors: CALIB_EOPEN (cannot
 * open), CALIB_EDATA (bad content; err has file, line/row, column),
 * CALIB_EINVAL (options that do not fit the file: unknown column, ...),
 * CALIB_EIO, CALIB_ENOMEM. */
int calib_read(const char *path, const calib_read_options *opt,
               calib_dataset **out, calib_error *err);

/* A streaming reader: the same input as calib_read(), in chunks of at most
 * opt->chunk_rows rows, so that an input of any length is processed in
 * bounded memory.  Group indices in chunks refer to the reader's group
 * table, which only grows: calib_reader_group_name(r, i) stays valid until
 * calib_reader_close().  A chunk is valid until the next call or close. */
typedef struct calib_reader calib_reader;
int calib_reader_open(const char *path, const calib_read_options *opt,
                      calib_reader **out, calib_error *err);
/* Sets *chunk to the next chunk, or to NULL at the end of the input. */
int calib_reader_next(calib_reader *r, const calib_dataset **chunk,
                      calib_error *err);
/* Totals over the chunks read so far. */
void calib_reader_stats(const calib_reader *r, calib_read_stats *out);
size_t calib_reader_group_count(const calib_reader *r);
const char *calib_reader_group_name(const calib_reader *r, size_t i);
/* Closes the input and frees the reader; NULL is a harmless no-op. */
void calib_reader_close(calib_reader *r);

/* ------------------------------------------------------------------ */
/* Metrics                                                             */
/* ------------------------------------------------------------------ */

typedef enum calib_binning {
    CALIB_BINNING_WIDTH = 0,   /* equal-width bins (default)   */
    CALIB_BINNING_MASS = 1     /* equal-mass bins              */
} calib_binning;

/* Which project's rule for equal-width bins to reproduce.  Edges are always
 * (double)k / M; where a project builds its edges in float32 or with
 * linspace an edge can differ in its last bit, and calib does not imitate
 * that noise. */
typedef enum calib_bin_rule {
    CALIB_RULE_SKLEARN = 0,     /* (e_b, e_b+1], p = 0 in bin 0 (default)   */
    CALIB_RULE_NETCAL = 1,      /* [e_b, e_b+1), p = 1 in the last bin      */
    CALIB_RULE_TORCHMETRICS = 2,/* [e_b, e_b+1), p = 1 in an extra bin [1,1] */
    CALIB_RULE_GPLEISS = 3,     /* (e_b, e_b+1], p = 0 in no bin, counted in n */
    CALIB_RULE_HOLLANCE = 4     /* (e_b, e_b+1], p = 0 in no bin nor in the ECE's n */
} calib_bin_rule;

/* Returns the rule named `name` ("sklearn", ...) in *out; CALIB_EINVAL if
 * there is none.  calib_bin_rule_name() is its inverse. */
int calib_bin_rule_parse(const char *name, calib_bin_rule *out);
const char *calib_bin_rule_name(calib_bin_rule rule);

/* Metrics beyond the binned core that calib_evaluate() computes: bits of
 * calib_eval_options.extra.  The metrics read off the bins (debiased L2
 * ECE, ece_over/ece_under, the Brier decomposition) are always computed;
 * these need a sort of the confidences or K more passes.  A metric not
 * asked for is NaN (null in JSON). */
enum {
    CALIB_EXTRA_SMOOTH = 1u,     /* smooth ECE and its bandwidth           */
    CALIB_EXTRA_SELECTIVE = 2u,  /* AUROC, AURC, HELM's selective metrics  */
    CALIB_EXTRA_CLASSWISE = 4u,  /* classwise ECE (distribution rows)      */
    CALIB_EXTRA_ALL = 7u
};

typedef struct calib_eval_options {
    int bins;                 /* M, default 15; 1 .. 1000000            */
    calib_binning binning;
    calib_bin_rule rule;      /* equal-width only                        */
    int threads;              /* 0 = the machine's cores                 */
    unsigned extra;           /* CALIB_EXTRA_* bits; default ALL         */
    /* Bootstrap confidence intervals: `bootstrap` resamples (0, the
     * default: none; at most 1000000), percentile intervals at level
     * `ci_level` (a fraction in (0, 1), default 0.95), resampling seeded by
     * `seed` (default 0): bit-identical for a seed at any thread count. */
    int bootstrap;
    double ci_level;
    uint64_t seed;
} calib_eval_options;

void calib_eval_options_init(calib_eval_options *opt);

/* One bin of a reliability table.  For an empty bin count = weight = 0 and
 * mean_confidence = accuracy = NaN. */
typedef struct calib_bin {
    double lower, upper;      /* edges; which side is closed: see the rule */
    size_t count;             /* rows in the bin                          */
    double weight;            /* their total weight (= count unweighted)  */
    double mean_confidence;
    double accuracy;
} calib_bin;

/* Brier score flavour, by the rows it came from. */
typedef enum calib_brier_kind {
    CALIB_BRIER_MULTICLASS = 0, /* sum_k (q_k - [k = y])^2 */
    CALIB_BRIER_TOPLABEL = 1    /* (p - correct)^2          */
} calib_brier_kind;

/* Every scalar metric, by number: calib_metric_value() reads one, and
 * calib_metric_name() gives its JSON key.  The order is stable. */
typedef enum calib_metric_id {
    CALIB_M_ACCURACY = 0,
    CALIB_M_MEAN_CONFIDENCE,
    CALIB_M_ECE,
    CALIB_M_MCE,
    CALIB_M_RMSCE,
    CALIB_M_NLL,
    CALIB_M_BRIER,
    CALIB_M_ECE_DEBIASED_L2,
    CALIB_M_ECE_OVER,
    CALIB_M_ECE_UNDER,
    CALIB_M_SMECE,
    CALIB_M_CLASSWISE_ECE,
    CALIB_M_BRIER_RELIABILITY,
    CALIB_M_BRIER_RESOLUTION,
    CALIB_M_BRIER_UNCERTAINTY,
    CALIB_M_AUROC,
    CALIB_M_AURC,
    CALIB_M_SELECTIVE_COV_ACC_AREA,
    CALIB_M_SELECTIVE_ACC_AT_10,
    CALIB_M_COUNT
} calib_metric_id;

typedef struct calib_metrics calib_metrics;
struct calib_metrics {
    size_t n;                 /* rows evaluated                           */
    double weight;            /* total weight (= n unweighted)            */
    size_t classes;           /* K, 0 for top-label or ragged rows        */
    double accuracy;
    double mean_confidence;
    double ece, mce, rmsce;
    double nll;               /* NaN for top-label rows (not defined)     */
    size_t nll_clipped_rows;  /* probability rows with q_label < 1e-15    */
    int nll_from_probs;       /* 1: NLL was computed from probabilities   */
    double brier;
    calib_brier_kind brier_kind;
    calib_binning binning;
    calib_bin_rule rule;
    size_t ece_n;             /* rows in the ECE's n (hollance drops p=0) */
    size_t n_bins;            /* bins in use (mass binning may have < M)  */
    calib_bin *bins;
    /* Further metrics (NaN when not applicable or not asked for; each is
     * defined where calib_evaluate() documents it). */
    double ece_debiased_l2;
    double ece_over, ece_under;
    double smece, smece_bandwidth;
    double classwise_ece;
    double brier_reliability, brier_resolution, brier_uncertainty;
    double auroc, aurc;
    double selective_cov_acc_area, selective_acc_at_10;
    /* Bootstrap intervals (calib_eval_options.bootstrap > 0): ci[id] is
     * [lower, upper] of metric id at level ci_level, NaN where the metric
     * is NaN. */
    int has_ci;
    double ci_level;
    int ci_resamples;
    uint64_t ci_seed;
    double ci[CALIB_M_COUNT][2];
    /* Per group, when the data have groups: the same metrics for the rows
     * of group i, named group_names[i], in first-appearance order. */
    size_t n_groups;
    char **group_names;
    calib_metrics **groups;
};

/* Computes every metric of `ds` (and of each of its groups) into *out.
 * opt NULL means the defaults.  Under CALIB_RULE_TORCHMETRICS there are
 * M + 1 bins, the last being [1, 1].  Errors: CALIB_EINVAL (bad options),
 * CALIB_EDATA (N = 0: "no rows"), CALIB_ENOMEM. */
int calib_evaluate(const calib_dataset *ds, const calib_eval_options *opt,
                   calib_metrics **out, calib_error *err);

void calib_metrics_free(calib_metrics *m);

/* Metric `id` of m (NaN when it is NaN in m, or id is out of range), and
 * its JSON key ("ece_debiased_l2"; NULL when id is out of range). */
double calib_metric_value(const calib_metrics *m, calib_metric_id id);
const char *calib_metric_name(calib_metric_id id);

/* Returns the metrics as a JSON object (DESIGN.md's keys) in *json,
 * malloc'd, NUL-terminated; the caller frees it with free().  Numbers are
 * written with %.17g in the C locale; metrics that do not apply are null.
 * `read` (NULL to omit) adds rows_read/rows_used/rows_rejected. */
int calib_metrics_to_json(const calib_metrics *m, const calib_read_stats *read,
                          char **json, calib_error *err);

/* A streaming accumulator for the equal-width metrics, NLL and Brier: its
 * memory is O(bins + groups) whatever the number of rows.  Two accumulators
 * with the same options merge exactly, so shards can be summed where they
 * live; the result does not depend on the order or split.  Equal-mass
 * binning needs every confidence and is refused here (CALIB_EINVAL). */
typedef struct calib_accum calib_accum;
int calib_accum_new(const calib_eval_options *opt, calib_accum **out,
                    calib_error *err);
/* Adds every row of `chunk`.  Groups are matched by name, so chunks from
 * different readers merge correctly.  One accumulator takes either
 * top-label or distribution rows, not both (CALIB_EINVAL). */
int calib_accum_add(calib_accum *a, const calib_dataset *chunk,
                    calib_error *err);
/* Adds `src` into `dst`; CALIB_EINVAL if their bins, rule or kind of rows
 * differ (the thread count does not matter). */
int calib_accum_merge(calib_accum *dst, const calib_accum *src,
                      calib_error *err);
/* Computes the metrics of everything added so far; CALIB_EDATA when no
 * row was added. */
int calib_accum_result(const calib_accum *a, calib_metrics **out,
                       calib_error *err);
void calib_accum_free(calib_accum *a);

/* Partial states, for shards computed where the data live.
 * calib_accum_to_json writes everything an accumulator holds as one JSON
 * object in *json (malloc'd; free() it): "format": "calib-partial",
 * "version": 1, the library's version, the options (bins, binning "width",
 * bin_rule), the kind of rows (null before any, "top-label" or
 * "distribution"), classes, whether NLL came from probabilities, when
 * `read` is not NULL the read counts, and per population (overall, then
 * each group by name in first-appearance order) every cell's sums: counts
 * as integers, superaccumulator digits as integer arrays, fixed-point sums
 * as decimal strings, the NLL and Brier sums and the clipped-row count.
 * calib_accum_from_json reads such an object back into a new accumulator
 * (and the counts into *read when not NULL; zeros when the state has
 * none) and checks every type, range and length: anything malformed or
 * inconsistent is CALIB_EDATA whose message names the JSON path
 * ("partial state: overall.cells[3].count: -1 is negative"), and a parse
 * error has err->line and err->column.  Members it does not know are
 * refused, except an optional "meta" object, which it ignores.
 *
 * Exact: accuracy, mean confidence, ECE, MCE, RMSCE, the bins, NLL, Brier
 * and every count.  Merging states (calib_accum_merge, in any order and
 * split) and taking the result gives bit for bit what one accumulator over
 * all the rows gives; the one exception is a term of magnitude 2^80 or
 * more, or not finite (a weight above ~1e24, an infinite NLL), which is
 * summed in plain floating point in merge order.  Not available: equal-mass binning (and
 * any rank-based metric) needs every confidence, so it has no partial
 * state.  States of different bins, bin rules or kinds of rows refuse to
 * merge (calib_accum_merge: CALIB_EINVAL, saying which differ); another
 * format version is CALIB_EDATA.  Errors: CALIB_EINVAL (NULL arguments),
 * CALIB_EDATA, CALIB_ENOMEM. */
int calib_accum_to_json(const calib_accum *a, const calib_read_stats *read,
                        char **json, calib_error *err);
int calib_accum_from_json(const char *json, size_t len, calib_accum **out,
                          calib_read_stats *read, calib_error *err);

/* Exact sum of `n` doubles, correctly rounded to the nearest double (ties
 * to even); what the library uses for every sum over rows.  Non-finite
 * inputs give the IEEE result (inf, -inf, NaN). */
double calib_sum_exact(const double *x, size_t n);

/* ------------------------------------------------------------------ */
/* Recalibration                                                       */
/* ------------------------------------------------------------------ */

typedef enum calib_method { CALIB_METHOD_TEMPERATURE = 0 } calib_method;

typedef enum calib_objective {
    CALIB_OBJECTIVE_NLL = 0,    /* Newton on log(1/T), exact derivatives  */
    CALIB_OBJECTIVE_ECE = 1,    /* grid on log T, then golden section     */
    CALIB_OBJECTIVE_BRIER = 2   /* grid on log T, then golden section     */
} calib_objective;

int calib_objective_parse(const char *name, calib_objective *out);
const char *calib_objective_name(calib_objective obj);

typedef struct calib_fit_options {
    calib_method method;
    calib_objective objective;
    calib_eval_options eval;    /* bins for the ECE objective, threads    */
    double t_min, t_max;        /* search range of T; default 1e-3 .. 1e3 */
} calib_fit_options;

void calib_fit_options_init(calib_fit_options *opt);

/* A fitted recalibration map.  Opaque. */
typedef struct calib_calibrator calib_calibrator;

/* Fits a calibrator on `val`.  Temperature scaling: q = softmax(z / T) for
 * distribution rows (probabilities are taken as logits log p), and
 * p' = sigmoid(logit(p) / T) for top-label rows (the binary form).
 * A case with no finite optimum (every row correct with a positive margin,
 * a constant predictor, one class, ...) is not an error: T is clamped at
 * the end of the search range it ran into and a diagnostic says why
 * (calib_calibrator_diagnostic).  Errors: CALIB_EINVAL, CALIB_ENOMEM,
 * CALIB_ECONVERGE (the solver failed; never a quiet nonsense value). */
int calib_fit(const calib_dataset *val, const calib_fit_options *opt,
              calib_calibrator **out, calib_error *err);
void calib_calibrator_free(calib_calibrator *c);

calib_method calib_calibrator_method(const calib_calibrator *c);
calib_objective calib_calibrator_objective(const calib_calibrator *c);
double calib_calibrator_temperature(const calib_calibrator *c);
/* Iterations the solver took, and the objective value at the result. */
int calib_calibrator_iterations(const calib_calibrator *c);
double calib_calibrator_objective_value(const calib_calibrator *c);
/* 1 when it was fitted on top-label rows (binary form). */
int calib_calibrator_binary(const calib_calibrator *c);
/* Diagnostics (boundary cases, warnings), as sentences. */
size_t calib_calibrator_diagnostic_count(const calib_calibrator *c);
const char *calib_calibrator_diagnostic(const calib_calibrator *c, size_t i);

/* Returns a dataset in *out with the calibrator applied to every row of
 * `in`: LOGITS rows become logits z/T (their NLL stays exact), PROBS rows
 * probabilities softmax(log(p)/T) (their NLL is clipped at 1e-15 after as
 * before, so the two compare like with like), TOPLABEL rows
 * p' = sigmoid(logit(p)/T).  The prediction of every row is unchanged.
 * Groups and weights are kept.  The result owns its memory.  Errors:
 * CALIB_EINVAL (a top-label calibrator on distribution rows or the
 * reverse), CALIB_EDATA (a logit / T overflows), CALIB_ENOMEM. */
int calib_apply(const calib_calibrator *c, const calib_dataset *in,
                calib_dataset **out, calib_error *err);

/* Serialises a calibrator as a JSON object ("method", "objective",
 * "temperature", "form", "iterations", "objective_value", "diagnostics")
 * in *json, malloc'd; the caller frees it. */
int calib_calibrator_to_json(const calib_calibrator *c, char **json,
                             calib_error *err);
/* Parses what calib_calibrator_to_json wrote (extra keys are ignored, so a
 * `calib fit` file with before/after metrics reads back).  Errors:
 * CALIB_EDATA (malformed JSON, unknown method, T <= 0 or not finite, a
 * known key of the wrong type, or a count such as "fitted_rows" that is
 * negative or too large). */
int calib_calibrator_from_json(const char *json, size_t len,
                               calib_calibrator **out, calib_error *err);

/* The (weighted) mean NLL of `val` after temperature scaling at each of
 * the n temperatures t[i], into nll[i]: the curve a report draws.
 * Distribution rows use softmax(z/T) (probability rows as logits log p;
 * at T = 1 exactly they are clipped at 1e-15 as calib_evaluate does),
 * top-label rows the binary form.  Sums are exact.  Errors: CALIB_EINVAL
 * (NULL arguments, no rows, zero total weight, a T <= 0 or not finite). */
int calib_temperature_curve(const calib_dataset *val, const double *t,
                            size_t n, double *nll, int threads,
                            calib_error *err);

/* ------------------------------------------------------------------ */
/* Diagrams and reports                                                */
/* ------------------------------------------------------------------ */

typedef enum calib_plot_format {
    CALIB_PLOT_SVG = 0,     /* written by calib: small, crisp, editable   */
    CALIB_PLOT_PNG = 1,     /* drawn with cairo                          */
    CALIB_PLOT_PDF = 2,     /* drawn with cairo                          */
    CALIB_PLOT_TEXT = 3     /* terminal: Unicode blocks, or ASCII        */
} calib_plot_format;

/* Returns the format named by a file name's extension (.svg .png .pdf
 * .txt) in *out; CALIB_EINVAL for any other. */
int calib_plot_format_from_path(const char *path, calib_plot_format *out);

typedef struct calib_plot_options {
    int width, height;      /* SVG user units / PNG pixels / PDF points,
                               120..8192, default (0) 640 x 720; text:
                               columns x lines, 24..1000 x 8..1000,
                               default (0) 60 x 16                       */
    const char *title;      /* NULL: no title                           */
    int counts;             /* 1 (default): per-bin counts panel below,
                               bar height log10(1 + count)              */
    int headline;           /* 1 (default): ECE, MCE, accuracy, N corner */
    int ascii;              /* text: ASCII only, no Unicode blocks       */
} calib_plot_options;

void calib_plot_options_init(calib_plot_options *opt);

/* Renders a reliability diagram of n series (the bins of each metrics,
 * from calib_evaluate; series i is named labels[i], labels may be NULL
 * for one series) into a malloc'd buffer *out of *len bytes (text and
 * SVG are NUL-terminated beyond *len).  The caller frees it with free().
 * Empty bins are drawn empty; equal-mass bins at their true widths (a bin
 * narrower than a hairline, such as torchmetrics' [1,1], as a 2-unit bar
 * centred on it).  A NULL label names series i "series i".
 * Errors: CALIB_EINVAL (n = 0, n > 8), CALIB_ENOMEM, CALIB_EIO (cairo). */
int calib_render_diagram(const calib_metrics *const *series,
                         const char *const *labels, size_t n,
                         calib_plot_format fmt, const calib_plot_options *opt,
                         unsigned char **out, size_t *len, calib_error *err);

/* What a one-file HTML report shows.  Pointers may be NULL where said. */
typedef struct calib_report_spec {
    const char *title;
    const calib_metrics *test_before;   /* required                     */
    const calib_metrics *test_after;    /* NULL: no recalibration        */
    const calib_metrics *val_before, *val_after;  /* may be NULL         */
    const calib_calibrator *calibrator; /* may be NULL                   */
    const double *curve_t, *curve_nll;  /* NLL over T, n_curve points    */
    size_t n_curve;
    const char *val_path, *test_path;   /* the inputs, as given          */
    const char *command;                /* the command line, to rerun it */
} calib_report_spec;

/* Renders a self-contained HTML report (inline SVG and CSS, no scripts,
 * no network) into a malloc'd NUL-terminated *html of *len bytes.  Per
 * group tables and small diagrams appear when the metrics have groups.
 * Errors: CALIB_EINVAL, CALIB_ENOMEM. */
int calib_render_report(const calib_report_spec *spec, char **html,
                        size_t *len, calib_error *err);

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

/* Writes the probabilities of `ds` to `f`: for distribution rows an (N,K)
 * float64 .npy (ragged rows are refused: CALIB_EINVAL) or a CSV with
 * columns prob_0..prob_{K-1},label; for top-label rows a CSV with columns
 * confidence,correct or a (N,) float64 .npy of confidences.  Errors:
 * CALIB_EIO on a failed write. */
int calib_write_probs(const calib_dataset *ds, calib_format fmt, FILE *f,
                      calib_error *err);

#ifdef __cplusplus
}
#endif
#endif /* CALIB_H */
