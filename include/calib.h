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
 *    With weights, counts are replaced by sums of weights.  A mean over
 *    rows that weigh nothing in all is NaN (JSON null): every metric when
 *    every weight is 0, and ECE, MCE and RMSCE under the hollance rule
 *    when the rows in its n (those with p > 0) do.
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
    /* Gzip bombs: once a gzip input has inflated past 64 MiB, more than
     * this many bytes out per compressed byte in is CALIB_EDATA.  Real
     * data inflate 2-50 times; deflate's ceiling is 1032.  0 = 200;
     * INFINITY = no limit.  Limits and policy: docs/bad-input.md. */
    double max_gzip_ratio;
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
     * `seed` (default 0): bit-identical for a seed at any thread count.
     * Smooth ECE gets no interval (smece_ci is NaN): its bandwidth search
     * costs 1-9 ms per resample of 10^4 rows (more when the data are well
     * calibrated), seconds for 1000 resamples. */
    int bootstrap;
    double ci_level;
    uint64_t seed;
    /* The proper scores, NLL and Brier: 1 (the default) computes them, 0
     * leaves them NaN (null in JSON, no intervals) for the binned metrics
     * alone, as other tools compute ECE.  calib_evaluate and
     * calib_evaluate_arrays then skip the sums of p^2 of float32 top-label
     * rows under equal-width bins, about 13 % of that pass.  An accumulator
     * (calib_accum_new) made with 0 reports them NaN too but keeps every
     * sum, so that its states merge with any other. */
    int scores;
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

/* Computes every metric of `ds` (and of each of its groups) into *out:
 * the binned core, and the metrics beyond the bins that opt->extra asks
 * for (defined below calib_metric_name).  opt NULL means the defaults.  Under CALIB_RULE_TORCHMETRICS there are
 * M + 1 bins, the last being [1, 1].  Errors: CALIB_EINVAL (bad options),
 * CALIB_EDATA (N = 0: "no rows"), CALIB_ENOMEM. */
int calib_evaluate(const calib_dataset *ds, const calib_eval_options *opt,
                   calib_metrics **out, calib_error *err);

/* calib_dataset_wrap(a) and calib_evaluate() in one call, with the same
 * results and errors, except that bad options are reported before bad
 * rows: CALIB_EINVAL for the options, then calib_dataset_wrap's errors
 * (the first bad row in err->row and err->column), then calib_evaluate's.
 * Float32 top-label rows of weight 1 without groups under equal-width
 * bins are read once: each block of rows is checked as it is binned
 * (where calib_dataset_wrap then calib_evaluate read them twice), and a
 * bad row stops the pass.  Other arrays take the two calls.  stats (may
 * be NULL) receives what calib_dataset_stats would report of the wrapped
 * rows. */
int calib_evaluate_arrays(const calib_arrays *a, const calib_eval_options *opt,
                          calib_metrics **out, calib_read_stats *stats,
                          calib_error *err);

void calib_metrics_free(calib_metrics *m);

/* Metric `id` of m (NaN when it is NaN in m, or id is out of range), and
 * its JSON key ("ece_debiased_l2"; NULL when id is out of range). */
double calib_metric_value(const calib_metrics *m, calib_metric_id id);
const char *calib_metric_name(calib_metric_id id);

/* ---- Metrics beyond the bins: definitions and calls ----------------
 *
 * calib_evaluate() fills these fields for the whole set and every group.
 * W is the total weight (N without weights).  Weights are frequency
 * weights everywhere: a row of integer weight k gives exactly (bit for
 * bit) what k copies of it give, which is how the bootstrap evaluates its
 * replicates.
 *
 * From the bins (always computed; the streaming accumulator and merged
 * partial states have them too).  conf_b, acc_b, W_b are bin b's mean
 * confidence, accuracy and weight, W_e the ECE's weight:
 *  - ece_over  = sum over bins with conf_b > acc_b of (W_b/W_e)(conf_b - acc_b)
 *    ece_under = sum over bins with conf_b < acc_b of (W_b/W_e)(acc_b - conf_b)
 *    so that ece = ece_over + ece_under (up to rounding).
 *  - ece_debiased_l2 (Kumar, Liang and Ma 2019, their get_calibration_error
 *    with p = 2 and debias=True, on the bins in use):
 *      S = sum_b (W_b/W_e) [(conf_b - acc_b)^2 - acc_b (1 - acc_b)/(W_b - 1)],
 *    where a bin of W_b < 2 (fewer than 2 rows) adds 0, as theirs does,
 *    and ece_debiased_l2 = sqrt(max(S, 0)): a negative S (no detectable
 *    miscalibration) reports 0.  With weights W_b is the bin's weight, not
 *    Kish's effective count, so that integer weights equal repeated rows.
 *  - Brier decomposition (Murphy 1973) of the top-label outcome (correct)
 *    over the bins (gpleiss/hollance rows of p = 0, in no bin, counted as
 *    one more bin): brier_reliability = sum_b (W_b/W)(conf_b - acc_b)^2,
 *    brier_resolution = sum_b (W_b/W)(acc_b - acc)^2, brier_uncertainty =
 *    acc (1 - acc).  REL - RES + UNC equals the top-label Brier score only
 *    up to the within-bin terms (Stephenson et al. 2008): the score is
 *    REL - RES + UNC + (1/W) sum_b sum_{i in b} w_i [(p_i - conf_b)^2 -
 *    2 (p_i - conf_b)(c_i - acc_b)].  (For distribution rows `brier` is the
 *    multiclass score; the decomposition is still of the top-label one.)
 *
 * Selective prediction (CALIB_EXTRA_SELECTIVE), on the top-label
 * confidence and correct flag.  Rows are ranked by confidence, most
 * confident first; rows of equal confidence are taken in every order with
 * equal probability, and each metric is its expectation, computed exactly
 * per run of ties (so it never depends on the order of rows in the file):
 *  - auroc: P(conf of a correct row > conf of a wrong row) + 1/2 P(tie),
 *    weighted (= sklearn.metrics.roc_auc_score(correct, conf)); NaN when
 *    every row is correct or every row wrong.
 *  - aurc: the mean over k = 1..W of the error rate of the k most confident
 *    rows (area under the risk-coverage curve).  For non-integer weights
 *    the sum over a run of ties extends through the digamma function.
 *  - selective_cov_acc_area: HELM's (Kumar's get_selective_stats): the
 *    mean over k of the accuracy of the k most confident rows (= 1 - aurc).
 *  - selective_acc_at_10: HELM's accs[int(0.1 N)], the accuracy of the
 *    int(0.1 W) + 1 most confident rows.  HELM sorts with np.argsort(-p),
 *    which orders tied rows arbitrarily: calib equals HELM whenever the
 *    confidences are distinct (or tied rows agree on correct).
 *
 * Smooth ECE (CALIB_EXTRA_SMOOTH; Blasiok and Nakkiran 2023), on the
 * top-label confidence p and correct c.  With the reflected Gaussian
 * kernel K_s(t, y) = sum_{k in Z} phi_s(t - y + 2k) + phi_s(t + y + 2k)
 * (the density of y + N(0, s^2) folded into [0,1]),
 *    smECE_s = int_0^1 | (1/W) sum_i w_i K_s(t, p_i) (p_i - c_i) | dt,
 * smece = smECE_s* at smece_bandwidth s* = smECE(s*), found on
 * [2^-12, 1] to a relative 1e-9 by regula falsi (Illinois, safeguarded by
 * bisection) (s* = 1 when smECE_1 >= 1; s* = 2^-12 when the fixed point
 * lies below it).  Rows are spread onto a grid of
 * spacing h <= s/32 by linear interpolation, as the relplot package does;
 * the relative error that costs is of order (h/s)^2 / 8 <= 1.3e-4, and the
 * tests hold it within 1e-4 of the direct sums over rows.  Unlike relplot
 * (which loses the mirrored half of the kernel of a row at exactly 0 or 1
 * and stops its bisection after 10 steps), calib follows the definition.
 *
 * Classwise ECE (CALIB_EXTRA_CLASSWISE; distribution rows with a fixed K,
 * NaN for top-label or ragged rows): (1/K) sum_k ECE_k, ECE_k the ECE of
 * the probability q_k against [label == k] over the same M equal-width
 * bins and rule (sklearn's rule under equal-mass binning): the plain mean
 * over classes, as Kull et al. 2019's classwise-ECE and Kumar et al.'s
 * marginal calibration error with p = 1.  NaN when K (M + 2) > 262144. */

/* The expected accuracy of the ceil(c W) most confident rows, for each
 * coverage c = coverage[i] in (0, 1], into accuracy[i]; ties as above
 * (within a run of equal confidence, its rows in random order); c W within
 * a relative 1e-12 of an integer counts as that integer (0.7 of 10 rows is
 * 7 rows).  Errors: CALIB_EINVAL (NULL, c outside (0, 1]), CALIB_EDATA (no
 * rows), CALIB_ENOMEM. */
int calib_accuracy_at_coverage(const calib_dataset *ds, const double *coverage,
                               size_t n, double *accuracy, int threads,
                               calib_error *err);

/* For each risk r = risk[i] in [0, 1], the largest coverage k/W (k over
 * 1, 2, .. and the end of each run of ties) whose expected selective risk
 * (error rate of the k most confident rows) is <= r (within a relative
 * 1e-12), into coverage[i]; 0 when even the most confident row is too
 * risky.  Errors as calib_accuracy_at_coverage. */
int calib_coverage_at_risk(const calib_dataset *ds, const double *risk,
                           size_t n, double *coverage, int threads,
                           calib_error *err);

/* The smoothed reliability curve at x[i] = i/(n-1), n >= 2: y[i] the
 * kernel-smoothed accuracy sum_i w_i K_s(x, p_i) c_i / sum_i w_i K_s(x, p_i)
 * (NaN where no row reaches within 7 s), density[i] = (1/W) sum_i w_i
 * K_s(x, p_i) (it integrates to 1 over [0,1]), with the kernel of smooth
 * ECE at `bandwidth` s (<= 0: its fixed point smece_bandwidth).  Arrays
 * are the caller's.  Errors: CALIB_EINVAL (NULL, n < 2, bandwidth > 1 or
 * NaN), CALIB_EDATA (no rows), CALIB_ENOMEM. */
int calib_smooth_curve(const calib_dataset *ds, double bandwidth, size_t n,
                       double *x, double *y, double *density, int threads,
                       calib_error *err);
/* ---- end of metrics beyond the bins ------------------------------- */

/* Returns the metrics as a JSON object (DESIGN.md's keys) in *json,
 * malloc'd, NUL-terminated; the caller frees it with free().  Numbers are
 * written with %.17g in the C locale; metrics that do not apply are null.
 * `read` (NULL to omit) adds rows_read/rows_used/rows_rejected. */
int calib_metrics_to_json(const calib_metrics *m, const calib_read_stats *read,
                          char **json, calib_error *err);

/* ---- Bootstrap intervals and the paired bootstrap (issue 6) ------- */

/* calib_evaluate() with opt->bootstrap = R > 0 also fills ci[][] (and
 * has_ci, ci_level, ci_resamples, ci_seed) of the whole set and of every
 * group, for every metric whose value is finite:
 *
 *  - Resampling.  Replicate r (0 <= r < R) draws N row indices uniformly
 *    with replacement; row i is drawn c_i times (sum c_i = N).  The
 *    replicate is the dataset of the drawn rows (row i repeated c_i times,
 *    with its weight and group), and its metric is what calib_evaluate
 *    gives on that dataset: equal-mass edges, smooth ECE, AUROC, ... are
 *    recomputed from the drawn rows.  A group's replicate is the same draw
 *    restricted to the group's rows (its size varies); a replicate that
 *    draws no row of a group has no value for it.
 *  - Seeding.  The draws of replicate r depend on (seed, r) only, so the
 *    intervals are bit-identical for a seed at any thread count.  With
 *    mix(z) splitmix64's output function (z ^= z >> 30,
 *    z *= 0xbf58476d1ce4e5b9, z ^= z >> 27, z *= 0x94d049bb133111eb,
 *    z ^= z >> 31; arithmetic mod 2^64): state = mix(seed ^ mix(r)); each
 *    of the N draws adds 0x9e3779b97f4a7c15 to state, takes
 *    x = mix(state), and forms the 128-bit product x * N (Lemire 2019):
 *    while its low 64 bits are below (2^64 - N) mod N the draw is repeated,
 *    else the row index is its high 64 bits.
 *  - Quantiles.  The replicate values that are not NaN (NaN: a group not
 *    drawn, a total weight of 0) are sorted, x_0 <= ... <= x_{k-1}, and
 *    the interval is [Q((1 - level)/2), Q((1 + level)/2)] by numpy's
 *    default 'linear' rule: h = (k - 1) q, j = floor(h),
 *    Q = x_j + (h - j)(x_{j+1} - x_j) (x_{k-1} when h >= k - 1); so
 *    np.percentile(values, 100 q) gives it.  ci_level 0.95 is a 95 %
 *    interval, not 99.95 %.  NaN, NaN where the metric is NaN or every
 *    replicate value is.  These are plain percentile intervals, not
 *    bias-corrected: binned ECE is biased upwards on small N, and its
 *    interval shows the estimator's spread, which need not contain the
 *    true calibration error.
 *  - Cost.  One pass computes each row's confidence, correct flag, NLL and
 *    Brier; then each replicate evaluates the drawn rows' top-label view
 *    (about 0.4 ms for N = 10^4 on one core) and sums their NLL and Brier
 *    exactly; replicates run in parallel over opt->threads.  Memory:
 *    R x (1 + groups) x CALIB_M_COUNT doubles and O(N) per thread.  A
 *    metric that needs whole distribution rows (classwise ECE, with
 *    CALIB_EXTRA_CLASSWISE on rows of fixed K) evaluates the drawn rows
 *    themselves: about R full evaluations; leave the bit out of
 *    opt->extra when that interval is not wanted. */

/* One metric of a paired bootstrap: B - A. */
typedef struct calib_paired_metric {
    double a, b;          /* the metric of A and of B (all rows)          */
    double diff;          /* b - a; NaN unless both are finite            */
    double ci[2];         /* percentile interval of the replicates' b - a */
    /* The fraction of replicates with b - a <= 0.  For a metric where
     * lower is better (ECE, NLL, Brier) 1 - p_le_0 is the one-sided
     * bootstrap p-value of "B is better than A"; for accuracy, p_le_0 is
     * that of "B is more accurate".  It is a resampling estimate, not an
     * exact test: near 0 or 1 it needs many resamples to mean much. */
    double p_le_0;
    size_t replicates;    /* replicates where both values were defined    */
} calib_paired_metric;

typedef struct calib_paired {
    size_t n;             /* rows of each set                              */
    double ci_level;
    int resamples;
    uint64_t seed;
    calib_paired_metric m[CALIB_M_COUNT];  /* by calib_metric_id          */
} calib_paired;

/* The paired bootstrap of two prediction sets of the same rows in the
 * same order (two models on one benchmark): replicate r draws one index
 * multiset, as calib_evaluate's bootstrap does with opt->seed, and
 * evaluates A and B on it; each metric finite on both gets the
 * difference B - A, its percentile interval at opt->ci_level and p_le_0
 * (calib_paired_metric).  Groups are not resampled separately (the sets'
 * groups are ignored).  The rows must correspond: the same N, and where
 * both sets have labels (distribution rows) the same label in every row;
 * calib cannot check more (top-label rows carry no label).  *out is the
 * caller's, freed with calib_paired_free().  Errors: CALIB_EINVAL (NULL
 * arguments, bad options, opt->bootstrap < 1), CALIB_EDATA (different N,
 * a label that differs: err->row says where; N = 0), CALIB_ENOMEM. */
int calib_paired_bootstrap(const calib_dataset *a, const calib_dataset *b,
                           const calib_eval_options *opt, calib_paired **out,
                           calib_error *err);
void calib_paired_free(calib_paired *p);

/* ---- end of the bootstrap block ------------------------------------ */

/* A streaming accumulator for the equal-width metrics, NLL and Brier: its
 * memory is O(bins + groups) whatever the number of rows.  Two accumulators
 * with the same options merge exactly, so shards can be summed where they
 * live; the result does not depend on the order or split.  Equal-mass
 * binning needs the order of the confidences: calib_accum_new refuses it
 * (CALIB_EINVAL), and an accumulator that keeps value tables
 * (calib_accum_keep_values) gives it with calib_accum_result_mass. */
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
 * "version": 1 (2 when the accumulator keeps value tables: then also
 * "value_limit" and each population's "values", see src/values_json.c),
 * the library's version, the options (bins, binning "width",
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
 * summed in plain floating point in merge order.  With value tables,
 * equal-mass binning (calib_accum_result_mass) and the rank metrics
 * (AUROC, AURC, the selective metrics, in calib_accum_result too) are
 * exact as well while the tables hold every confidence, and
 * calib_accum_exactness says what a table on a grid leaves approximate.
 * Not available from states: smooth ECE and classwise ECE (they need
 * every row's scores; NaN).  States of different bins, bin rules, kinds of
 * rows or value limits refuse to merge (calib_accum_merge: CALIB_EINVAL,
 * saying which differ); versions 1 and 2 are read, another version is
 * CALIB_EDATA.  Errors: CALIB_EINVAL (NULL arguments), CALIB_EDATA,
 * CALIB_ENOMEM. */
int calib_accum_to_json(const calib_accum *a, const calib_read_stats *read,
                        char **json, calib_error *err);
int calib_accum_from_json(const char *json, size_t len, calib_accum **out,
                          calib_read_stats *read, calib_error *err);

/* ---- Value tables: equal-mass bins and rank metrics of merged states ---- */

/* Value tables make equal-mass binning (and rank-based metrics) available
 * from accumulators and partial states.  A table holds, per population
 * (overall and each group), the distinct confidences with each one's row
 * count, weight and correct weight as exact sums: tables merge by union,
 * bit for bit in any order and split, and the equal-mass edges (calib's
 * rule: numpy.array_split positions over the sorted rows, counts decide,
 * midpoint edges, duplicates removed) and metrics computed from the
 * merged table equal those of calib_evaluate(--binning mass) over all the
 * rows, bit for bit.
 *
 * Size: a table keeps at most `limit` entries.  Past it, the table moves
 * to a grid: a confidence p is kept in the cell [k 2^-g, (k+1) 2^-g) that
 * holds it, g = 24 first (float32 confidences >= 0.5 are multiples of
 * 2^-24: each keeps a cell of its own), then 23, 22, ... until the table
 * fits.  A cell keeps the exact sums of its rows, their confidences
 * included, and while its rows share one confidence it keeps that
 * confidence.  The grid of a merged table is the finest on which all the
 * rows fit: it does not depend on the order or split either.  What stays
 * exact on a grid is said by calib_accum_exactness(). */
#define CALIB_VALUES_LIMIT_DEFAULT ((size_t)1 << 20)

/* Makes an accumulator keep value tables of at most `limit` entries each
 * (0: CALIB_VALUES_LIMIT_DEFAULT; otherwise 16 .. 2^31).  Call it before
 * any row is added.  Memory: about 48 bytes per distinct confidence (and
 * 160 more for one that has weighted rows, 80 for a cell of several
 * confidences); a row of a known confidence costs one hash look-up.
 * calib_accum_merge refuses tables of different limits (CALIB_EINVAL); a
 * merge with an accumulator that keeps no table drops the tables.
 * Errors: CALIB_EINVAL (NULL, rows already added, limit out of range),
 * CALIB_ENOMEM. */
int calib_accum_keep_values(calib_accum *a, size_t limit, calib_error *err);

/* Returns 1 when a keeps value tables, else 0 (a NULL: 0). */
int calib_accum_has_values(const calib_accum *a);

/* The equal-mass metrics of everything added to a, with `bins` bins (0:
 * the accumulator's bins), each group binned on its own rows as
 * calib_evaluate does; NLL and Brier come from the accumulator's sums.
 * Errors: CALIB_EINVAL (NULL arguments, bins out of range, no value table:
 * "equal-mass bins need the value table ..."), CALIB_EDATA (no rows),
 * CALIB_ENOMEM. */
int calib_accum_result_mass(const calib_accum *a, int bins,
                            calib_metrics **out, calib_error *err);

/* What a value table leaves exact. */
typedef struct calib_exactness {
    double grid;        /* 0: every confidence is held exactly; else the
                           cells' width 2^-g                              */
    int ties_made;      /* a cell holds rows of different confidences, so
                           rank metrics see them as tied: AUROC, AURC and
                           the selective metrics are approximate          */
    int bins_moved;     /* equal-mass: a group boundary (array_split
                           position) falls inside such a cell, so bin
                           membership may differ from the exact one: ECE,
                           MCE, RMSCE and the bins' counts, accuracy and
                           mean confidence are approximate                */
    int edges_moved;    /* equal-mass: an edge is a midpoint involving a
                           cell's lower end instead of a confidence: the
                           bins' lower/upper are approximate, each below
                           the exact edge by less than `grid`             */
    double ece_bound;   /* bins_moved: |ECE - exact ECE| <= ece_bound =
                           2 sum W_c / W over the cells c holding a
                           boundary (moving rows of weight W_c between
                           bins changes sum_b |hits_b - conf_b| by at most
                           2 W_c), at most 1; 0 otherwise                 */
} calib_exactness;

/* Fills *out for population `group` of a (SIZE_MAX: overall; i: group i,
 * in the order of calib_accum_result's groups) under equal-mass binning
 * with `bins` bins (0: the accumulator's).  Everything not flagged is
 * exact: accuracy, mean confidence, NLL, Brier and the counts always are.
 * When no boundary falls inside a mixed cell, every row is in the bin it
 * would be in exactly and the bins' sums are exact sums, so ECE, MCE and
 * RMSCE are bit for bit the exact ones even on a grid.  Errors:
 * CALIB_EINVAL (NULL, no value table, group out of range), CALIB_EDATA
 * (no rows in the population), CALIB_ENOMEM. */
int calib_accum_exactness(const calib_accum *a, int bins, size_t group,
                          calib_exactness *out, calib_error *err);

/* ---- end of value tables ---- */

/* Exact sum of `n` doubles, correctly rounded to the nearest double (ties
 * to even); what the library uses for every sum over rows.  Non-finite
 * inputs give the IEEE result (inf, -inf, NaN). */
double calib_sum_exact(const double *x, size_t n);

/* ------------------------------------------------------------------ */
/* Recalibration                                                       */
/* ------------------------------------------------------------------ */

/* Recalibration methods.  Distribution methods (temperature, vector) map
 * the K scores of a row and return distribution rows; top-label methods
 * (platt, histogram, isotonic, beta) map a row's confidence only: on
 * distribution rows they work on the top-label view (confidence = the
 * largest probability, correct = first argmax == label), and calib_apply
 * returns top-label rows (calibrated confidence, correct flag), whose NLL
 * is not defined (NaN; null in JSON).  Temperature scaling fitted on
 * top-label rows is the binary form.  The numbers are stable. */
typedef enum calib_method {
    CALIB_METHOD_TEMPERATURE = 0, /* softmax(z / T)                       */
    CALIB_METHOD_PLATT = 1,       /* sigmoid(a logit(p) + b)              */
    CALIB_METHOD_VECTOR = 2,      /* softmax(a_k z_k + b_k), per class k  */
    CALIB_METHOD_HISTOGRAM = 3,   /* histogram binning of p               */
    CALIB_METHOD_ISOTONIC = 4,    /* isotonic regression of correct on p  */
    CALIB_METHOD_BETA = 5         /* sigmoid(a ln p - b ln(1-p) + c)      */
} calib_method;
#define CALIB_METHOD_COUNT 6

/* Returns the method named `name` ("temperature", "platt", "vector",
 * "histogram", "isotonic", "beta") in *out; CALIB_EINVAL for any other.
 * calib_method_name() is its inverse (NULL when out of range). */
int calib_method_parse(const char *name, calib_method *out);
const char *calib_method_name(calib_method m);
/* Returns 1 for the top-label methods (platt, histogram, isotonic, beta),
 * 0 for temperature and vector. */
int calib_method_toplabel(calib_method m);

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
    /* Histogram binning: hist_bins bins (default 15), equal-width
     * (default, as Guo et al. 2017) or equal-mass (hist_binning). */
    int hist_bins;
    calib_binning hist_binning;
} calib_fit_options;

void calib_fit_options_init(calib_fit_options *opt);

/* A fitted recalibration map.  Opaque. */
typedef struct calib_calibrator calib_calibrator;

/* Fits a calibrator of method opt->method on `val`.
 *
 * Temperature scaling: q = softmax(z / T) for distribution rows
 * (probabilities are taken as logits log p), and p' = sigmoid(logit(p) / T)
 * for top-label rows (the binary form).  A case with no finite optimum
 * (every row correct with a positive margin, a constant predictor, one
 * class, ...) is not an error: T is clamped at the end of the search range
 * it ran into and a diagnostic says why (calib_calibrator_diagnostic).
 *
 * The other methods minimise the (weighted) NLL; `objective` must be nll.
 *  - platt: p' = sigmoid(a x + b), x = logit(p) (Platt 1999, as logistic
 *    calibration: the plain maximum-likelihood fit on the 0/1 correct
 *    flags, no penalty, no smoothed targets), by Newton's method on (a, b)
 *    with exact derivatives and a backtracking line search; converged when
 *    the Newton decrement is below 1e-20 and every step below 1e-9
 *    relative.  p is clipped into [eps, 1 - eps], eps = 2^-52 (DBL_EPSILON,
 *    as betacal), so |x| <= 36.04.  No finite optimum is a diagnostic:
 *    every row correct (or every row wrong): a = 0, b = +-36.04; every p
 *    equal: a = 0, b = logit(accuracy); the correct and wrong rows
 *    separated by a threshold on p: a = +-1e4 (a step at the midpoint of
 *    the two classes' nearest logits).
 *  - beta (Kull, Silva Filho and Flach 2017): p' = sigmoid(a ln p -
 *    b ln(1 - p) + c), p clipped as for platt, fitted as betacal's default
 *    "abm": the logistic regression on (ln p, -ln(1 - p)); if a < 0 it is
 *    refitted on -ln(1 - p) alone (a = 0), else if b < 0 on ln p alone
 *    (b = 0); the refitted coefficient is not checked again (betacal does
 *    not), a diagnostic says when it is negative.  The same diagnostics as
 *    platt for data with no finite optimum.
 *  - vector (Guo et al. 2017): q = softmax(a_k z_k + b_k), per class k,
 *    for rows of a fixed K (not ragged, not top-label: CALIB_EINVAL);
 *    probability rows are taken as logits log(max(p, 1e-15)).  Minimised
 *    by L-BFGS (memory 10, exact gradients, a backtracking line search
 *    with the Armijo condition) from a = 1, b = 0 (the identity), until the
 *    largest gradient component is below 1e-9 (mean NLL) or the NLL stops
 *    decreasing (relative 1e-15); the sums over rows are fixed blocks of
 *    16 rows added exactly, so the fit is bit-identical for any thread
 *    count.  Vector scaling can change a row's argmax (and so accuracy).
 *    A class that never is a label has no finite optimum (its bias runs
 *    to -infinity): a diagnostic names it.
 *  - histogram, isotonic: see calib_calibrator_params; fitted on the
 *    top-label view.
 *
 * Errors: CALIB_EINVAL (bad options, a method that does not fit the rows),
 * CALIB_EDATA (every row has weight 0), CALIB_ENOMEM, CALIB_ECONVERGE (the solver failed; never a quiet nonsense
 * value). */
int calib_fit(const calib_dataset *val, const calib_fit_options *opt,
              calib_calibrator **out, calib_error *err);
void calib_calibrator_free(calib_calibrator *c);

calib_method calib_calibrator_method(const calib_calibrator *c);
calib_objective calib_calibrator_objective(const calib_calibrator *c);
/* T of temperature scaling; 1 for the other methods (see
 * calib_calibrator_params). */
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
 * `in`.  Temperature: LOGITS rows become logits z/T (their NLL stays
 * exact), PROBS rows probabilities softmax(log(p)/T) (their NLL is clipped
 * at 1e-15 after as before, so the two compare like with like), TOPLABEL
 * rows p' = sigmoid(logit(p)/T); the prediction of every row is unchanged.
 * Vector: LOGITS rows become logits a_k z_k + b_k, PROBS rows the
 * probabilities softmax(a_k log(max(p_k, 1e-15)) + b_k); the argmax may
 * change.  Top-label methods (platt, beta, histogram, isotonic) take
 * top-label or distribution rows (through their top-label view) and return
 * TOPLABEL rows: the calibrated confidence and each row's correct flag,
 * unchanged.  Groups and weights are kept.  The result owns its memory.
 * Errors: CALIB_EINVAL (a temperature calibrator fitted on top-label rows
 * applied to distribution rows or the reverse; vector scaling on rows of
 * another K, ragged or top-label rows), CALIB_EDATA (a scaled logit
 * overflows), CALIB_ENOMEM. */
int calib_apply(const calib_calibrator *c, const calib_dataset *in,
                calib_dataset **out, calib_error *err);

/* Serialises a calibrator as a JSON object in *json, malloc'd; the caller
 * frees it.  Members: "method", "objective", "form" ("softmax", "binary"
 * for temperature fitted on top-label rows, "top-label" for the top-label
 * methods), "iterations", "objective_value", "solver", "diagnostics",
 * "fitted_rows", "classes", and the parameters: "temperature": T, or an
 * object named after the method: "platt": {"a", "b"}, "beta": {"a", "b",
 * "c"}, "vector": {"scale": [K], "bias": [K]}, "histogram" and "isotonic":
 * the fitted map (calib_calibrator_params).  Top-label methods add
 * "fitted_on": "top-label" or "distribution" (the rows they were fitted
 * on). */
int calib_calibrator_to_json(const calib_calibrator *c, char **json,
                             calib_error *err);
/* Parses what calib_calibrator_to_json wrote (extra keys are ignored, so a
 * `calib fit` file with before/after metrics reads back).  Errors:
 * CALIB_EDATA (malformed JSON, a repeated key, unknown method, T <= 0, T or 1/T not finite, a
 * parameter missing, of the wrong type, not finite, or vector scale and
 * bias of different lengths; the message names the member, as
 * "platt.a"), or a count such as "fitted_rows" that is negative or too
 * large). */
int calib_calibrator_from_json(const char *json, size_t len,
                               calib_calibrator **out, calib_error *err);

/* ---- Recalibrators: parameters, top-label view, cross-fitting ------- */

/* Returns the number of fitted parameters of c, and writes the first
 * min(n, count) of them into out[] (out may be NULL when n = 0):
 *   temperature  [T]
 *   platt        [a, b]
 *   beta         [a, b, c]
 *   vector       [a_0 .. a_{K-1}, b_0 .. b_{K-1}]   (scale, then bias)
 *   histogram    [e_0 .. e_M, v_0 .. v_{M-1}]   (M bin edges + 1, then
 *                each bin's calibrated value)
 *   isotonic     [x_0 .. x_{m-1}, y_0 .. y_{m-1}]   (the fitted points) */
size_t calib_calibrator_params(const calib_calibrator *c, double *out,
                               size_t n);

/* Returns in *out the top-label view of `ds`: a TOPLABEL dataset whose
 * row i has confidence = the largest probability of row i and correct =
 * (first argmax == label); top-label rows are copied as they are.  Groups
 * and weights are kept; the result owns its memory.  Errors: CALIB_EINVAL,
 * CALIB_ENOMEM. */
int calib_dataset_toplabel(const calib_dataset *ds, calib_dataset **out,
                           calib_error *err);

/* Cross-fitting: returns in *oof the out-of-fold predictions of a method
 * fitted with `opt` on `ds`.  The rows are split into k folds (2 <= k <=
 * N): a Fisher-Yates shuffle of the row indices driven by splitmix64
 * seeded with `seed` (the same permutation on every machine), then fold f
 * takes shuffled positions [f N / k, (f + 1) N / k).  For each fold the
 * method is fitted on the other k - 1 folds and applied to the fold; *oof
 * holds every row once, in the order of `ds`, as calib_apply returns them
 * (top-label rows for top-label methods).  Diagnostics of the k fits are
 * not kept.  Errors: those of calib_fit and calib_apply, CALIB_EINVAL (k
 * out of range). */
int calib_cross_fit(const calib_dataset *ds, const calib_fit_options *opt,
                    int k, uint64_t seed, calib_dataset **oof,
                    calib_error *err);

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
    const calib_calibrator *calibrator; /* fitted here: a fit section;
                                           may be NULL                   */
    const double *curve_t, *curve_nll;  /* NLL over T, n_curve points    */
    size_t n_curve;
    const char *val_path, *test_path;   /* the inputs, as given          */
    const char *command;                /* the command line, to rerun it */
    const calib_calibrator *applied;    /* without `calibrator`: the one
                                           test_after comes from, named
                                           on the page; may be NULL      */
} calib_report_spec;

/* Renders a self-contained HTML report (inline SVG and CSS, no scripts,
 * no network) into a malloc'd NUL-terminated *html of *len bytes.  Per
 * group tables and small diagrams appear when the metrics have groups.
 * With a calibrator, the page has a fit section for its method (its
 * parameters, objective, solver, diagnostics); the NLL-over-T chart is
 * drawn for temperature scaling only.
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
