/* read_openai.c — OpenAI / vLLM responses with token logprobs as
 * top-label rows.
 *
 * One response per line: a Chat Completion (choices[0].logprobs.content[]
 * of {token, logprob, top_logprobs: [{token, logprob}]}, which vLLM's
 * OpenAI server writes too), or a legacy Completion (choices[0].logprobs
 * with tokens[], token_logprobs[] and top_logprobs[] of {token: logprob}
 * objects); the response may sit at the line's top, or under `response`
 * or `response.body` (the Batch API's output).  Only choices[0] is read.
 * Correctness is not in a response: the user names it with a dotted path
 * from the line's top (opt->correct, "grade.correct").
 *
 * The confidence of the generated sequence is computed in log space from
 * the tokens' logprobs l_1..l_n (calib_seq_conf): product exp(sum l),
 * geomean exp(mean l) = 1/perplexity, mean of exp(l), min exp(min l), or
 * `answer`: the first generated token that, without surrounding spaces,
 * is one of opt->choices; its probability renormalised over the choices
 * found in its top_logprobs (variants with spaces summed), so p = q_answer
 * / sum_c q_c.  A logprob of null or of the API's -9999 sentinel is
 * unknown, not a value: it is counted (values_unknown) and left out of
 * the sum, mean and minimum; a row without one known token is bad data.
 * A logprob above 0 (at most 1e-3, float noise) is taken as 0 and
 * counted as clamped; further above is bad data.
 */
#include "read.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL (-9999.0)
#define MAX_CHOICES 64

struct calib__openai {
    calib_seq_conf mode;
    const char *correct;       /* dotted path */
    size_t n_choices;
    char *choice[MAX_CHOICES]; /* CALIB_SEQ_ANSWER */
};

static const char *const seq_names[] = {"geomean", "product", "mean", "min",
                                        "answer"};

int calib_seq_conf_parse(const char *name, calib_seq_conf *out)
{
    for (int i = 0; name && i < 5; i++)
        if (strcmp(name, seq_names[i]) == 0) {
            *out = (calib_seq_conf)i;
            return CALIB_OK;
        }
    return CALIB_EINVAL;
}

const char *calib_seq_conf_name(calib_seq_conf mode)
{
    return (unsigned)mode < 5 ? seq_names[mode] : "unknown";
}

/* Splits "A,B,C,D" into p->choice[], trimmed of spaces. */
static int split_choices(calib__openai *p, const char *list, calib_error *err)
{
    while (list && *list) {
        const size_t len = strcspn(list, ",");
        size_t a = 0, b = len;
        while (a < b && list[a] == ' ')
            a++;
        while (b > a && list[b - 1] == ' ')
            b--;
        if (a == b || p->n_choices == MAX_CHOICES)
            return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                               "choices: an empty name or more than %d",
                               MAX_CHOICES);
        if (!(p->choice[p->n_choices] = strndup(list + a, b - a)))
            return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0,
                               "out of memory");
        p->n_choices++;
        list += len + (list[len] == ',');
    }
    return CALIB_OK;
}

int calib__openai_new(const calib_read_options *opt, calib__openai **out,
                      calib_error *err)
{
    *out = NULL;
    if (!opt->correct || !*opt->correct)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "OpenAI responses hold no correctness: name its "
                           "field with --correct (a dotted path such as "
                           "grade.correct)");
    if ((unsigned)opt->seq_conf > CALIB_SEQ_ANSWER)
        return calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                           "unknown sequence confidence %d",
                           (int)opt->seq_conf);
    calib__openai *p = calloc(1, sizeof *p);
    if (!p)
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    p->mode = opt->seq_conf;
    p->correct = opt->correct;
    int rc = split_choices(p, opt->choices, err);
    if (!rc && p->mode == CALIB_SEQ_ANSWER && p->n_choices < 2)
        rc = calib__fail(err, CALIB_EINVAL, NULL, 0, 0, 0,
                         "the answer confidence needs the answer options "
                         "(--choices A,B,C,D)");
    if (rc) {
        calib__openai_free(p);
        return rc;
    }
    *out = p;
    return CALIB_OK;
}

void calib__openai_free(calib__openai *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_choices; i++)
        free(p->choice[i]);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Tokens                                                              */
/* ------------------------------------------------------------------ */

/* The tokens of one response, either shape. */
typedef struct tokens {
    const json_t *content;     /* chat: [{token, logprob, top_logprobs}] */
    const json_t *text, *lp, *top; /* legacy: parallel arrays */
    size_t n;
    const char *where;         /* the JSON path, for errors */
} tokens;

static const json_t *response_of(const json_t *v, const char **where)
{
    *where = "choices";
    if (json_object_get(v, "choices"))
        return v;
    const json_t *r = json_object_get(v, "response");
    const json_t *body = json_object_get(r, "body");
    if (json_object_get(body, "choices")) {
        *where = "response.body.choices";
        return body;
    }
    *where = "response.choices";
    return r;
}

static int find_tokens(const json_t *v, tokens *t, const calib__jsonl_at *at,
                       calib_error *err)
{
    memset(t, 0, sizeof *t);
    const char *where;
    const json_t *resp = response_of(v, &where);
    const json_t *choices = json_object_get(resp, "choices");
    if (!json_is_array(choices) || json_array_size(choices) == 0)
        return calib__jsonl_bad(at, err, where, "missing or empty");
    const json_t *lp = json_object_get(json_array_get(choices, 0), "logprobs");
    if (!json_is_object(lp))
        return calib__jsonl_bad(at, err, "choices[0].logprobs",
                                "missing or null (request logprobs)");
    if ((t->content = json_object_get(lp, "content")) != NULL) {
        t->where = "choices[0].logprobs.content";
        t->n = json_array_size(t->content);
        return json_is_array(t->content)
                   ? CALIB_OK
                   : calib__jsonl_bad(at, err, t->where, "not a list");
    }
    t->where = "choices[0].logprobs.token_logprobs";
    t->lp = json_object_get(lp, "token_logprobs");
    t->text = json_object_get(lp, "tokens");
    t->top = json_object_get(lp, "top_logprobs");
    t->n = json_array_size(t->lp);
    return json_is_array(t->lp)
               ? CALIB_OK
               : calib__jsonl_bad(at, err, "choices[0].logprobs",
                                  "neither content (chat) nor "
                                  "token_logprobs (completions)");
}

static const json_t *token_logprob(const tokens *t, size_t i)
{
    return t->content ? json_object_get(json_array_get(t->content, i),
                                        "logprob")
                      : json_array_get(t->lp, i);
}

static const char *token_text(const tokens *t, size_t i)
{
    return json_string_value(
        t->content ? json_object_get(json_array_get(t->content, i), "token")
                   : json_array_get(t->text, i));
}

/* Reads logprob x: 1 known, 0 unknown (null, the sentinel), -1 bad. */
static int known(const json_t *x, double *l, calib_read_stats *st)
{
    if (json_is_null(x) || (json_is_number(x) && json_number_value(x) ==
                                                     SENTINEL)) {
        st->values_unknown++;
        return 0;
    }
    if (!json_is_number(x))
        return -1;
    *l = json_number_value(x);
    if (*l > 1e-3)
        return -1;
    if (*l > 0.0) {
        *l = 0.0;
        st->values_clamped++;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Sequence confidences                                                */
/* ------------------------------------------------------------------ */

static double log_add(double a, double b)
{
    if (a == -INFINITY)
        return b;
    const double hi = a > b ? a : b, lo = a > b ? b : a;
    return hi + log1p(exp(lo - hi));
}

/* The sequence modes over the known logprobs. */
static int sequence_conf(const calib__openai *p, const tokens *t,
                         double *conf, calib_read_stats *st,
                         const calib__jsonl_at *at, calib_error *err)
{
    double sum = 0.0, lse = -INFINITY, lo = 0.0;
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        double l;
        const int k = known(token_logprob(t, i), &l, st);
        if (k < 0)
            return calib__jsonl_bad(at, err, t->where,
                                    "token %zu: logprob is not a number "
                                    "<= 0", i);
        if (!k)
            continue;
        sum += l;
        lse = log_add(lse, l);
        lo = n == 0 || l < lo ? l : lo;
        n++;
    }
    if (n == 0)
        return calib__jsonl_bad(at, err, t->where,
                                "no token with a known logprob");
    switch (p->mode) {
    case CALIB_SEQ_PRODUCT: *conf = exp(sum); break;
    case CALIB_SEQ_MEAN: *conf = exp(lse - log((double)n)); break;
    case CALIB_SEQ_MIN: *conf = exp(lo); break;
    default: *conf = exp(sum / (double)n); break;
    }
    return CALIB_OK;
}

/* Index of the choice that `s` is without surrounding blanks, or -1. */
static long choice_of(const calib__openai *p, const char *s)
{
    if (!s)
        return -1;
    while (*s == ' ' || *s == '\n' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\n'))
        len--;
    for (size_t c = 0; c < p->n_choices; c++)
        if (strlen(p->choice[c]) == len && strncmp(p->choice[c], s, len) == 0)
            return (long)c;
    return -1;
}

/* Adds one top_logprobs alternative into the per-choice sums. */
static void add_alternative(const calib__openai *p, const char *tok,
                            const json_t *x, double *lq,
                            calib_read_stats *st)
{
    double l;
    const long c = choice_of(p, tok);
    if (c >= 0 && known(x, &l, st) == 1)
        lq[c] = log_add(lq[c], l);
}

/* The alternatives of token i, both shapes, into lq[]. */
static void alternatives(const calib__openai *p, const tokens *t, size_t i,
                         double *lq, calib_read_stats *st)
{
    if (t->content) {
        const json_t *top = json_object_get(json_array_get(t->content, i),
                                            "top_logprobs");
        for (size_t a = 0; a < json_array_size(top); a++) {
            const json_t *e = json_array_get(top, a);
            add_alternative(p, json_string_value(json_object_get(e, "token")),
                            json_object_get(e, "logprob"), lq, st);
        }
        return;
    }
    const char *tok;
    json_t *x;
    json_object_foreach((json_t *)json_array_get(t->top, i), tok, x)
        add_alternative(p, tok, x, lq, st);
}

/* The answer token's probability renormalised over the choices. */
static int answer_conf(const calib__openai *p, const tokens *t, double *conf,
                       calib_read_stats *st, const calib__jsonl_at *at,
                       calib_error *err)
{
    for (size_t i = 0; i < t->n; i++) {
        const long c = choice_of(p, token_text(t, i));
        if (c < 0)
            continue;
        double lq[MAX_CHOICES], l;
        for (size_t j = 0; j < p->n_choices; j++)
            lq[j] = -INFINITY;
        alternatives(p, t, i, lq, st);
        if (lq[c] == -INFINITY && known(token_logprob(t, i), &l, st) == 1)
            lq[c] = l; /* the chosen token missing from its alternatives */
        if (lq[c] == -INFINITY)
            return calib__jsonl_bad(at, err, t->where,
                                    "token %zu: the answer's logprob is "
                                    "unknown", i);
        double total = -INFINITY;
        for (size_t j = 0; j < p->n_choices; j++)
            total = log_add(total, lq[j]);
        *conf = exp(lq[c] - total);
        return CALIB_OK;
    }
    return calib__jsonl_bad(at, err, t->where,
                            "no generated token is one of the choices");
}

/* ------------------------------------------------------------------ */
/* The row                                                             */
/* ------------------------------------------------------------------ */

int calib__openai_row(void *ctx, const json_t *v, const calib__jsonl_at *at,
                      calib__rows *rows, calib_read_stats *st,
                      calib_error *err)
{
    const calib__openai *p = ctx;
    tokens t;
    double conf = 0.0;
    int correct = 0;
    if (!json_is_object(v))
        return calib__jsonl_bad(at, err, "", "not a JSON object");
    calib_read_stats row = {0};
    int rc = find_tokens(v, &t, at, err);
    if (!rc)
        rc = p->mode == CALIB_SEQ_ANSWER
                 ? answer_conf(p, &t, &conf, &row, at, err)
                 : sequence_conf(p, &t, &conf, &row, at, err);
    const json_t *c = calib__json_dotted(v, p->correct);
    if (!rc && calib__json_flag(c, &correct))
        rc = calib__jsonl_bad(at, err, p->correct,
                              c ? "not true/false or 0/1" : "missing");
    if (rc)
        return rc;
    st->values_unknown += row.values_unknown;
    st->values_clamped += row.values_clamped;
    rows->conf[rows->n] = conf;
    rows->correct[rows->n] = (uint8_t)correct;
    rows->n++;
    return CALIB_OK;
}
