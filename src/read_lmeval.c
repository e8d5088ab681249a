/* read_lmeval.c — lm-evaluation-harness `--log_samples` lines as ragged
 * choice rows.
 *
 * A multiple-choice sample logs one [loglik, is_greedy] pair per choice in
 * `filtered_resps` (strings since v0.4.3: ["-75.82", "False"]; native
 * numbers before), the continuations in `arguments` (gen_args_i.arg_1, or
 * [context, continuation] pairs in older logs), the gold in `target` (an
 * int; a string since v0.4.4: an index or the answer's text; or a list),
 * and lm-eval's own verdict in `acc` (and `acc_norm`, `acc_bytes`).  Each
 * sample becomes one LOGITS row whose scores are the choices' logliks, so
 * softmax, NLL and temperature scaling apply unchanged; with a norm they
 * are divided by the continuation's length in characters (acc_norm) or
 * UTF-8 bytes (acc_bytes), the continuation taken without its leading
 * target delimiter (one space, lm-eval's default).  Rules, as calib.h and
 * the README state them:
 *  - a repeated doc_id (one line per filter) keeps the first line;
 *  - a list target: the row's label is the predicted choice when it is
 *    among the targets, else the first, so correct = argmax in targets, as
 *    lm-eval's acc;
 *  - acc_mutual_info samples log 2K entries, the K conditional logliks
 *    then K unconditional ones: the first K are used (what acc scores);
 *  - a generative sample (text in filtered_resps) has no choice
 *    distribution and is refused as bad data, naming the path.
 */
#include "read.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct calib__lmeval {
    calib_lmeval_norm norm;
    uint64_t *seen;            /* doc_id + 1 in open addressing; 0 = empty */
    size_t n_seen, n_slots;
    double *ll;                /* scratch: one row's logliks */
    size_t ll_cap;
};

int calib__lmeval_new(const calib_read_options *opt, calib__lmeval **out,
                      calib_error *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    (*out)->norm = opt->norm;
    if (opt->norm > CALIB_NORM_BYTES) {
        calib__lmeval_free(*out);
        *out = NULL;
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown lm-eval norm %d", (int)opt->norm);
    }
    return CALIB_OK;
}

void calib__lmeval_free(calib__lmeval *p)
{
    if (!p)
        return;
    free(p->seen);
    free(p->ll);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Repeated doc_ids                                                    */
/* ------------------------------------------------------------------ */

static size_t slot_of(uint64_t key, size_t n_slots)
{
    key *= 0x9e3779b97f4a7c15u; /* Fibonacci hashing */
    return (size_t)(key >> 17) & (n_slots - 1);
}

static int grow_seen(calib__lmeval *p)
{
    const size_t n_slots = p->n_slots ? p->n_slots * 2 : 1024;
    uint64_t *seen = calloc(n_slots, sizeof *seen);
    if (!seen)
        return CALIB_ENOMEM;
    for (size_t i = 0; i < p->n_slots; i++) {
        if (!p->seen[i])
            continue;
        size_t s = slot_of(p->seen[i], n_slots);
        while (seen[s])
            s = (s + 1) & (n_slots - 1);
        seen[s] = p->seen[i];
    }
    free(p->seen);
    p->seen = seen;
    p->n_slots = n_slots;
    return CALIB_OK;
}

/* Returns 1 if `id` was seen, else records it and returns 0; -1 on
 * ENOMEM.  With `peek` it only looks. */
static int seen_before(calib__lmeval *p, uint64_t id, int peek)
{
    if (2 * (p->n_seen + 1) > p->n_slots && grow_seen(p))
        return -1;
    const uint64_t key = id + 1;
    size_t s = slot_of(key, p->n_slots);
    for (; p->seen[s]; s = (s + 1) & (p->n_slots - 1))
        if (p->seen[s] == key)
            return 1;
    if (!peek) {
        p->seen[s] = key;
        p->n_seen++;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Choices                                                             */
/* ------------------------------------------------------------------ */

/* The loglik of entry i of `resps`: filtered_resps[i] = [ll, greedy], or
 * resps[i] = [[ll, greedy]]. */
static int loglik(const json_t *resps, const char *key, size_t i,
                  const calib__jsonl_at *at, double *ll, calib_error *err)
{
    char path[64];
    const json_t *pair = json_array_get(resps, i);
    if (strcmp(key, "resps") == 0 && json_is_array(json_array_get(pair, 0)))
        pair = json_array_get(pair, 0);
    snprintf(path, sizeof path, "%s[%zu]", key, i);
    if (json_is_string(pair))
        return calib__jsonl_bad(at, err, path,
                                "generated text, not a [loglik, is_greedy] "
                                "pair: a generative task has no choice "
                                "distribution (its token logprobs can be "
                                "read with --format openai)");
    if (!json_is_array(pair) || json_array_size(pair) < 1)
        return calib__jsonl_bad(at, err, path,
                                "not a [loglik, is_greedy] pair");
    snprintf(path, sizeof path, "%s[%zu][0]", key, i);
    if (calib__json_number(json_array_get(pair, 0), ll))
        return calib__jsonl_bad(at, err, path, "loglik is not a number");
    return CALIB_OK;
}

/* The continuation text of choice i (arg_1 of gen_args_i, or the second
 * element of arguments[i] in older logs), or NULL. */
static const json_t *continuation(const json_t *args, size_t i)
{
    if (json_is_array(args))
        return json_array_get(json_array_get(args, i), 1);
    char key[32];
    snprintf(key, sizeof key, "gen_args_%zu", i);
    return json_object_get(json_object_get(args, key), "arg_1");
}

/* The choice's text without the target delimiter (one leading space). */
static const char *choice_text(const json_t *args, size_t i, size_t *len)
{
    const char *s = json_string_value(continuation(args, i));
    if (!s)
        return NULL;
    *len = json_string_length(continuation(args, i));
    if (*len && s[0] == ' ')
        s++, (*len)--;
    return s;
}

/* Length in code points (Python's len) or in UTF-8 bytes. */
static size_t text_length(const char *s, size_t len, calib_lmeval_norm norm)
{
    if (norm == CALIB_NORM_BYTES)
        return len;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/* Divides each loglik by its choice's length (acc_norm, acc_bytes). */
static int normalise(const calib__lmeval *p, const json_t *args, double *ll,
                     size_t k, const calib__jsonl_at *at, calib_error *err)
{
    for (size_t i = 0; i < k; i++) {
        size_t len;
        char path[64];
        const char *s = choice_text(args, i, &len);
        snprintf(path, sizeof path, "arguments.gen_args_%zu.arg_1", i);
        if (!s)
            return calib__jsonl_bad(at, err, path,
                                    "missing: the choice text is needed to "
                                    "normalise by length");
        const size_t n = text_length(s, len, p->norm);
        if (n == 0)
            return calib__jsonl_bad(at, err, path,
                                    "empty choice, cannot normalise by its "
                                    "length");
        ll[i] /= (double)n;
    }
    return CALIB_OK;
}

/* How many choices: the entries, or half of them for acc_mutual_info
 * samples (K conditional logliks, then K unconditional ones). */
static size_t choice_count(const json_t *v, size_t n_resps,
                           const calib__jsonl_at *at)
{
    if (n_resps % 2 == 0 && calib__jsonl_get(at, v, "acc_mutual_info"))
        return n_resps / 2;
    return n_resps;
}

/* ------------------------------------------------------------------ */
/* Targets                                                             */
/* ------------------------------------------------------------------ */

/* Index of the choice whose text is s[0 .. len), or -1. */
static long match_text(const json_t *args, size_t k, const char *s,
                       size_t len)
{
    for (size_t i = 0; i < k; i++) {
        size_t cl;
        const char *c = choice_text(args, i, &cl);
        if (c && cl == len && memcmp(c, s, len) == 0)
            return (long)i;
    }
    for (size_t i = 0; i < k; i++) { /* a delimiter other than ' ' */
        const char *c = json_string_value(continuation(args, i));
        size_t cl = c ? json_string_length(continuation(args, i)) : 0;
        while (cl && (*c == ' ' || *c == '\n' || *c == '\t'))
            c++, cl--;
        if (c && cl == len && memcmp(c, s, len) == 0)
            return (long)i;
    }
    return -1;
}

static int all_digits(const char *s, size_t len)
{
    if (len == 0 || len > 9)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* One gold choice: an integer, a string of digits (an index, when within
 * the choices), or a choice's text.  Returns the index or -1. */
static long gold_of(const json_t *t, const json_t *v, size_t k,
                    const calib__jsonl_at *at)
{
    if (json_is_integer(t)) {
        const json_int_t x = json_integer_value(t);
        return x >= 0 && (uint64_t)x < k ? (long)x : -1;
    }
    const char *s = json_string_value(t);
    if (!s)
        return -1;
    const size_t len = json_string_length(t);
    if (all_digits(s, len) && strtol(s, NULL, 10) < (long)k)
        return strtol(s, NULL, 10);
    return match_text(calib__jsonl_get(at, v, "arguments"), k, s, len);
}

/* The row's label; for a list, the predicted choice when it is a target,
 * else the first target. */
static int label_of(const json_t *v, size_t k, size_t pred, int64_t *label,
                    const calib__jsonl_at *at, calib_error *err)
{
    const json_t *t = calib__jsonl_get(at, v, "target");
    if (!t)
        return calib__jsonl_bad(at, err, "target", "missing");
    if (!json_is_array(t)) {
        *label = gold_of(t, v, k, at);
        return *label >= 0 ? CALIB_OK
                           : calib__jsonl_bad(at, err, "target",
                                              "neither an index below %zu "
                                              "nor the text of a choice", k);
    }
    if (json_array_size(t) == 0)
        return calib__jsonl_bad(at, err, "target", "empty list");
    long first = -1;
    int hit = 0;
    for (size_t i = 0; i < json_array_size(t); i++) {
        const long g = gold_of(json_array_get(t, i), v, k, at);
        if (g < 0)
            return calib__jsonl_bad(at, err, "target",
                                    "element %zu is neither an index below "
                                    "%zu nor the text of a choice", i, k);
        first = first < 0 ? g : first;
        hit |= (size_t)g == pred;
    }
    *label = hit ? (int64_t)pred : first;
    return CALIB_OK;
}

/* ------------------------------------------------------------------ */
/* The row                                                             */
/* ------------------------------------------------------------------ */

static size_t argmax(const double *x, size_t k)
{
    size_t best = 0;
    for (size_t i = 1; i < k; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

/* Counts a disagreement with the accuracy lm-eval logged for this norm. */
static void cross_check(const calib__lmeval *p, const json_t *v, int correct,
                        const calib__jsonl_at *at, calib_read_stats *st)
{
    static const char *const keys[] = {"acc", "acc_norm", "acc_bytes"};
    int logged;
    if (calib__json_flag(calib__jsonl_get(at, v, keys[p->norm]), &logged) ==
            0 &&
        logged != correct)
        st->rows_disagree++;
}

/* The logliks of the row into p->ll[0 .. *k). */
static int logliks(calib__lmeval *p, const json_t *v, size_t *k,
                   const calib__jsonl_at *at, calib_error *err)
{
    const char *key = "filtered_resps";
    const json_t *resps = calib__jsonl_get(at, v, key);
    if (!resps)
        resps = calib__jsonl_get(at, v, key = "resps");
    if (!json_is_array(resps) || json_array_size(resps) == 0)
        return calib__jsonl_bad(at, err, key,
                                resps ? "not a non-empty list"
                                      : "missing (not an lm-eval sample)");
    *k = choice_count(v, json_array_size(resps), at);
    if (*k > p->ll_cap) {
        double *ll = realloc(p->ll, *k * sizeof *ll);
        if (!ll)
            return calib__fail(err, CALIB_ENOMEM, at->file, at->line, 0, 0,
                               "out of memory");
        p->ll = ll, p->ll_cap = *k;
    }
    int rc = CALIB_OK;
    for (size_t i = 0; i < *k && !rc; i++)
        rc = loglik(resps, key, i, at, &p->ll[i], err);
    if (!rc && p->norm != CALIB_NORM_NONE)
        rc = normalise(p, calib__jsonl_get(at, v, "arguments"), p->ll, *k, at,
                       err);
    return rc;
}

/* Whether this line repeats a doc_id: then it is not a row of its own. */
static int repeated(calib__lmeval *p, const json_t *v, int peek,
                    const calib__jsonl_at *at, calib_error *err)
{
    const json_t *id = calib__jsonl_get(at, v, "doc_id");
    if (!json_is_integer(id) || json_integer_value(id) < 0)
        return 0;
    const int r = seen_before(p, (uint64_t)json_integer_value(id), peek);
    if (r < 0)
        return calib__fail(err, CALIB_ENOMEM, at->file, at->line, 0, 0,
                           "out of memory");
    return r ? CALIB__IGNORED : 0;
}

int calib__lmeval_row(void *ctx, const json_t *v, const calib__jsonl_at *at,
                      calib__rows *rows, calib_read_stats *st,
                      calib_error *err)
{
    calib__lmeval *p = ctx;
    size_t k = 0;
    if (!json_is_object(v))
        return calib__jsonl_bad(at, err, "", "not a JSON object");
    int rc = repeated(p, v, 1, at, err);
    if (rc == CALIB__IGNORED)
        st->rows_duplicate++;
    if (!rc)
        rc = logliks(p, v, &k, at, err);
    const size_t pred = !rc && k ? argmax(p->ll, k) : 0; /* ll may be NULL */
    int64_t label = 0;
    if (!rc)
        rc = label_of(v, k, pred, &label, at, err);
    char why[160];
    calib_read_stats row = {0};
    const size_t bad = rc ? 0 : calib__check_row(CALIB_LOGITS, p->ll, k,
                                                 label, &row, why, sizeof why);
    if (bad)
        return calib__jsonl_bad(at, err, "filtered_resps", "choice %zu: %s",
                                bad - 1, why);
    if (!rc)
        rc = repeated(p, v, 0, at, err);
    if (!rc && calib__rows_reserve_scores(rows, k))
        rc = calib__fail(err, CALIB_ENOMEM, at->file, at->line, 0, 0,
                         "out of memory");
    if (rc)
        return rc;
    memcpy(rows->scores + rows->n_scores, p->ll, k * sizeof *p->ll);
    rows->n_scores += k;
    rows->labels[rows->n] = (int32_t)label;
    rows->offsets[++rows->n] = rows->n_scores;
    cross_check(p, v, (size_t)label == pred, at, st);
    return CALIB_OK;
}
