/* read_jsonl.c — JSON lines, one value a line, parsed with jansson.
 *
 * The byte source (source.c) cuts the input into lines, plain, gzip or
 * standard input alike, so memory is proportional to the longest line
 * whatever the file's length; each line is parsed by jansson (Debian's
 * libjansson) and handed to a format's row parser (read_lmeval.c,
 * read_openai.c).  lm-eval v0.4.0-0.4.2 wrote a task's samples as one
 * indented JSON array in a file still named .jsonl: when the first
 * non-blank byte is '[', the input is loaded whole and its elements are
 * handed out one by one, their position given as the element's index.
 * With skimming on (lm-eval), a line is scanned for its top-level members
 * and only the members a row parser asks for are handed to jansson: an
 * lm-eval line is mostly prompt text (doc, arguments' contexts) that calib
 * never reads, and parsing it whole would cost most of the time.  The
 * helpers at the end read the loosely typed values these logs hold
 * (numbers written as strings, truth values as "False").
 */
#include "read.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_SPANS 64
/* Duplicate keys are refused, as in partial states: which of two values
 * a producer meant cannot be known, and parsers disagree on it. */
#define FLAGS (JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)

struct calib__jsonl {
    calib__src *src;
    size_t max_line;
    int skip_bad_rows;
    const char *group;        /* dotted path, or NULL */
    json_t *pending;          /* the first value, read by open */
    size_t pending_line;
    json_t *array;            /* whole-file array mode */
    size_t next_elem;
    size_t values;            /* values handed out so far */
    int eof;
    int skim;
    const char *rec;          /* the skimmed line */
    size_t n_span;            /* members of the skimmed line */
    struct span {
        const char *key, *val;
        size_t key_len, val_len;
    } span[MAX_SPANS];
    json_error_t lazy_error;  /* a member that failed to parse */
    int lazy_failed;
    int bad_line;             /* next_value failed on malformed JSON */
};

/* ------------------------------------------------------------------ */
/* Lines and values                                                    */
/* ------------------------------------------------------------------ */

static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

static int parse_fail(const calib__jsonl *j, size_t line,
                      const json_error_t *e, calib_error *err)
{
    if (calib__json_status(e) == CALIB_ENOMEM)
        return calib__fail(err, CALIB_ENOMEM, calib__src_name(j->src), line,
                           0, 0, "out of memory");
    return calib__fail(err, CALIB_EDATA, calib__src_name(j->src),
                       line + (e->line > 1 ? (size_t)e->line - 1 : 0), 0,
                       e->column > 0 ? (size_t)e->column : 0,
                       "malformed JSON: %s", e->text);
}

/* Gathers every remaining line after `first` and parses them as one
 * array (the pre-0.4.3 lm-eval layout). */
static int load_array(calib__jsonl *j, const char *first, size_t len,
                      size_t line, calib_error *err)
{
    calib__buf b = {0};
    const char *rec = first;
    int rc = CALIB_OK;
    while (rec && !rc) {
        calib__buf_printf(&b, "%.*s\n", (int)len, rec);
        size_t l;
        rc = calib__src_record(j->src, 0, j->max_line, &rec, &len, &l, NULL,
                               err);
    }
    if (!rc && b.failed)
        rc = calib__fail(err, CALIB_ENOMEM, calib__src_name(j->src), 0, 0, 0,
                         "out of memory");
    json_error_t e;
    if (!rc && !(j->array = json_loadb(b.s, b.len, FLAGS, &e)))
        rc = parse_fail(j, line, &e, err);
    if (!rc && !json_is_array(j->array))
        rc = calib__fail(err, CALIB_EDATA, calib__src_name(j->src), line, 0,
                         1, "a JSON array was expected");
    free(b.s);
    j->eof = 1;
    return rc;
}

/* ------------------------------------------------------------------ */
/* Skimming                                                            */
/* ------------------------------------------------------------------ */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* Past the string that opens at p ('"'), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        size_t bs = 0;
        while (q - bs > p && q[-1 - (ptrdiff_t)bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return q + 1;
        p = q + 1;
    }
    return NULL;
}

/* Past the value that starts at p, or NULL when its strings or brackets
 * do not close. */
static const char *skip_value(const char *p, const char *end)
{
    if (p < end && *p == '"')
        return skip_string(p, end);
    if (p < end && (*p == '{' || *p == '[')) {
        size_t depth = 0;
        while (p < end) {
            if (*p == '"') {
                if (!(p = skip_string(p, end)))
                    return NULL;
                continue;
            }
            depth += *p == '{' || *p == '[';
            if ((*p == '}' || *p == ']') && --depth == 0)
                return p + 1;
            p++;
        }
        return NULL;
    }
    const char *start = p;
    while (p < end && !strchr(",}] \t\r\n", *p))
        p++;
    return p > start ? p : NULL;
}

/* Is span sp's key one of the keys recorded before it? */
static int repeated(const calib__jsonl *j, const struct span *sp)
{
    for (const struct span *o = j->span; o < sp; o++)
        if (o->key_len == sp->key_len &&
            memcmp(o->key, sp->key, sp->key_len) == 0)
            return 1;
    return 0;
}

/* Records the top-level members of the object rec[0 .. len); returns 0,
 * or -1 when it is not a plain object (the caller parses it whole). */
static int scan(calib__jsonl *j, const char *rec, size_t len)
{
    const char *p = skip_ws(rec, rec + len), *end = rec + len;
    j->n_span = 0;
    j->rec = rec;
    if (p == end || *p++ != '{')
        return -1;
    for (p = skip_ws(p, end); p < end && *p != '}';) {
        struct span *sp = &j->span[j->n_span];
        const char *k = p;
        if (j->n_span == MAX_SPANS || *k != '"' || !(p = skip_string(k, end)))
            return -1;
        sp->key = k + 1, sp->key_len = (size_t)(p - k - 2);
        if (memchr(sp->key, '\\', sp->key_len) || repeated(j, sp))
            return -1; /* escaped or repeated: jansson decodes or refuses */
        p = skip_ws(p, end);
        if (p == end || *p++ != ':')
            return -1;
        sp->val = skip_ws(p, end);
        if (!(p = skip_value(sp->val, end)))
            return -1;
        sp->val_len = (size_t)(p - sp->val);
        j->n_span++;
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
        else if (p == end || *p != '}')
            return -1;
    }
    return p < end && skip_ws(p + 1, end) == end ? 0 : -1;
}

void calib__jsonl_skim(calib__jsonl *j, int on) { j->skim = on; }

const json_t *calib__jsonl_get(const calib__jsonl_at *at, const json_t *v,
                               const char *key)
{
    const json_t *x = json_object_get(v, key);
    calib__jsonl *j = at->j;
    if (x || !j)
        return x;
    const size_t len = strlen(key);
    for (size_t i = 0; i < j->n_span; i++) {
        const struct span *sp = &j->span[i];
        if (sp->key_len != len || memcmp(sp->key, key, len) != 0)
            continue;
        json_error_t e; /* jansson clears it on success too */
        json_t *m = json_loadb(sp->val, sp->val_len, JSON_DECODE_ANY | FLAGS,
                               &e);
        if (!m && !j->lazy_failed) {
            j->lazy_failed = 1;
            j->lazy_error = e;
            j->lazy_error.column += (int)(sp->val - j->rec);
        }
        if (!m)
            return NULL;
        /* set_new releases m when it fails (out of memory): m is only
         * returned once v holds it. */
        if (json_object_set_new((json_t *)v, key, m)) {
            j->lazy_failed = 1;
            memset(&j->lazy_error, 0, sizeof j->lazy_error);
            return NULL;
        }
        return m;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

/* Sets *v to the next value (a new reference) and *line to where it
 * starts, or *v = NULL at the end. */
static int next_value(calib__jsonl *j, json_t **v, size_t *line,
                      calib_error *err)
{
    *v = NULL;
    j->n_span = 0;
    j->lazy_failed = 0;
    j->bad_line = 0;
    if (j->pending) {
        *v = j->pending, *line = j->pending_line;
        j->pending = NULL;
        return CALIB_OK;
    }
    if (j->array) {
        *line = 0;
        if (j->next_elem < json_array_size(j->array))
            *v = json_incref(json_array_get(j->array, j->next_elem++));
        return CALIB_OK;
    }
    const char *rec = NULL;
    size_t len = 0;
    while (!j->eof) {
        const int rc = calib__src_record(j->src, 0, j->max_line, &rec, &len,
                                         line, NULL, err);
        if (rc)
            return rc;
        j->eof = rec == NULL;
        if (rec && !blank(rec, len))
            break;
    }
    if (j->eof)
        return CALIB_OK;
    if (j->skim && scan(j, rec, len) == 0)
        return (*v = json_object()) ? CALIB_OK
                                    : calib__fail(err, CALIB_ENOMEM,
                                                  calib__src_name(j->src),
                                                  *line, 0, 0,
                                                  "out of memory");
    j->n_span = 0;
    json_error_t e;
    if (!(*v = json_loadb(rec, len, FLAGS, &e))) {
        j->bad_line = 1;
        return parse_fail(j, *line, &e, err);
    }
    return CALIB_OK;
}

/* Reads the first value, switching to array mode when it opens one. */
static int first_value(calib__jsonl *j, calib_error *err)
{
    const char *rec = NULL;
    size_t len = 0, line = 0;
    do {
        const int rc = calib__src_record(j->src, 0, j->max_line, &rec, &len,
                                         &line, NULL, err);
        if (rc)
            return rc;
    } while (rec && blank(rec, len));
    if (!rec) {
        j->eof = 1;
        return CALIB_OK;
    }
    if (len >= 3 && memcmp(rec, "\xef\xbb\xbf", 3) == 0)
        rec += 3, len -= 3; /* a UTF-8 byte order mark, as CSV allows */
    size_t i = 0;
    while (i < len && (rec[i] == ' ' || rec[i] == '\t'))
        i++;
    if (rec[i] == '[') {
        const int rc = load_array(j, rec, len, line, err);
        if (rc)
            return rc;
    }
    if (j->array)
        return next_value(j, &j->pending, &j->pending_line, err);
    json_error_t e;
    if (!(j->pending = json_loadb(rec, len, FLAGS, &e)))
        return parse_fail(j, line, &e, err);
    j->pending_line = line;
    return CALIB_OK;
}

int calib__jsonl_open(const char *path, const calib_read_options *opt,
                      calib__jsonl **out, calib_error *err)
{
    *out = NULL;
    calib__jsonl *j = calloc(1, sizeof *j);
    if (!j)
        return calib__fail(err, CALIB_ENOMEM, path, 0, 0, 0, "out of memory");
    j->max_line = opt->max_line ? opt->max_line : (size_t)64 << 20;
    j->skip_bad_rows = opt->skip_bad_rows;
    j->group = opt->group_name ? NULL : opt->group;
    int rc = calib__src_open(path, &j->src, err);
    if (!rc) {
        calib__src_limit(j->src, opt->max_gzip_ratio);
        rc = first_value(j, err);
    }
    if (rc) {
        calib__jsonl_close(j);
        return rc;
    }
    *out = j;
    return CALIB_OK;
}

void calib__jsonl_close(calib__jsonl *j)
{
    if (!j)
        return;
    json_decref(j->pending);
    json_decref(j->array);
    if (j->src)
        calib__src_close(j->src);
    free(j);
}

static const json_t *response_of(const json_t *v)
{
    if (json_object_get(v, "choices"))
        return v;
    const json_t *r = json_object_get(v, "response");
    const json_t *body = json_object_get(r, "body");
    return json_object_get(body, "choices") ? body : r;
}

calib_format calib__jsonl_format(const calib__jsonl *j)
{
    const json_t *v = j->pending;
    if (!v && j->eof)
        return CALIB_FORMAT_LMEVAL; /* empty: no rows either way */
    if (!json_is_object(v))
        return CALIB_FORMAT_AUTO;
    if (json_object_get(v, "filtered_resps") || json_object_get(v, "resps"))
        return CALIB_FORMAT_LMEVAL;
    if (json_object_get(response_of(v), "choices"))
        return CALIB_FORMAT_OPENAI;
    return CALIB_FORMAT_AUTO;
}

/* ------------------------------------------------------------------ */
/* Rows                                                                */
/* ------------------------------------------------------------------ */

/* Interns the group of the row just added (the --group dotted path). */
static int add_group(const calib__jsonl *j, const json_t *v,
                     const calib__jsonl_at *at, calib__rows *rows,
                     calib__groups *g, calib_error *err)
{
    char first[128];
    snprintf(first, sizeof first, "%.*s", (int)strcspn(j->group, "."),
             j->group);
    calib__jsonl_get(at, v, first); /* a skimmed member, parsed now */
    const json_t *x = calib__json_dotted(v, j->group);
    char num[64];
    const char *name = json_string_value(x);
    size_t len = name ? json_string_length(x) : 0;
    if (!name && json_is_integer(x)) {
        len = (size_t)snprintf(num, sizeof num, "%lld",
                               (long long)json_integer_value(x));
        name = num;
    }
    if (!name)
        return calib__jsonl_bad(at, err, j->group,
                                "missing, or not a string (the group)");
    if (memchr(name, 0, len))
        return calib__jsonl_bad(at, err, j->group, "holds a NUL byte");
    if (calib__groups_intern(g, name, len, &rows->groups[rows->n - 1]))
        return calib__fail(err, CALIB_ENOMEM, at->file, at->line, 0, 0,
                           "out of memory");
    return CALIB_OK;
}

/* Parses value v as one row; returns what fn does. */
static int one_value(calib__jsonl *j, calib__jsonl_row_fn fn, void *ctx,
                     const json_t *v, const calib__jsonl_at *at,
                     calib__rows *rows, calib__groups *g,
                     calib_read_stats *st, calib_error *err)
{
    if (calib__rows_reserve(rows, rows->n + 1))
        return calib__fail(err, CALIB_ENOMEM, at->file, at->line, 0, 0,
                           "out of memory");
    const size_t n = rows->n, n_scores = rows->n_scores;
    int rc = fn(ctx, v, at, rows, st, err);
    if (!rc && j->group)
        rc = add_group(j, v, at, rows, g, err);
    if (j->lazy_failed) /* a member is not JSON: say so, not "missing" */
        rc = parse_fail(j, at->line, &j->lazy_error, err);
    if (rc > 0) {
        rows->n = n; /* a group error after the row was appended */
        rows->n_scores = n_scores;
    }
    return rc;
}

int calib__jsonl_read(calib__jsonl *j, calib__jsonl_row_fn fn, void *ctx,
                      size_t max_rows, calib__rows *rows, calib__groups *g,
                      calib_read_stats *st, int *eof, calib_error *err)
{
    rows->has_groups |= j->group != NULL;
    *eof = 0;
    for (size_t added = 0; added < max_rows;) {
        json_t *v;
        size_t line = 0;
        int rc = next_value(j, &v, &line, err);
        if (rc == CALIB_EDATA && j->bad_line && j->skip_bad_rows) {
            j->values++; /* a malformed line is a bad row like any other */
            st->rows_read++;
            st->rows_rejected++;
            continue;
        }
        if (rc)
            return rc;
        if (!v) {
            *eof = 1;
            break;
        }
        const calib__jsonl_at at = {calib__src_name(j->src), line,
                                    ++j->values, j};
        rc = one_value(j, fn, ctx, v, &at, rows, g, st, err);
        json_decref(v);
        if (rc == CALIB__IGNORED)
            continue;
        st->rows_read++;
        if (rc == CALIB_EDATA && j->skip_bad_rows) {
            st->rows_rejected++;
            continue;
        }
        if (rc)
            return rc;
        st->rows_used++;
        added++;
    }
    return CALIB_OK;
}

int calib__jsonl_bad(const calib__jsonl_at *at, calib_error *err,
                     const char *path, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at->line)
        return calib__fail(err, CALIB_EDATA, at->file, at->line, at->row, 0,
                           "%s: %s", path && *path ? path : "(line)", msg);
    return calib__fail(err, CALIB_EDATA, at->file, 0, at->row, 0,
                       "[%zu].%s: %s", at->row - 1,
                       path && *path ? path : "", msg);
}

/* ------------------------------------------------------------------ */
/* Loosely typed values                                                */
/* ------------------------------------------------------------------ */

int calib__json_number(const json_t *v, double *x)
{
    if (json_is_number(v)) {
        *x = json_number_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    /* A per-call locale cache: values are few per row and the common
     * case (a plain decimal) never reaches the slow path. */
    locale_t loc = (locale_t)0;
    const int rc = calib__parse_number(json_string_value(v),
                                       json_string_length(v), x, &loc);
    calib__number_done(&loc);
    return rc;
}

static int word_is(const char *s, size_t len, const char *w)
{
    return strlen(w) == len && strncasecmp(s, w, len) == 0;
}

int calib__json_flag(const json_t *v, int *b)
{
    if (json_is_boolean(v)) {
        *b = json_is_true(v);
        return 0;
    }
    const char *s = json_string_value(v);
    const size_t len = s ? json_string_length(v) : 0;
    if (s && (word_is(s, len, "true") || word_is(s, len, "false"))) {
        *b = word_is(s, len, "true");
        return 0;
    }
    double x;
    if (calib__json_number(v, &x) || (x != 0.0 && x != 1.0))
        return -1;
    *b = x == 1.0;
    return 0;
}

/* One step of a dotted path: a key, or an index into an array. */
static const json_t *step(const json_t *v, const char *key, size_t len)
{
    char buf[256];
    if (len >= sizeof buf)
        return NULL;
    memcpy(buf, key, len);
    buf[len] = 0;
    if (json_is_array(v)) {
        char *end;
        const unsigned long i = strtoul(buf, &end, 10);
        return *buf && !*end ? json_array_get(v, i) : NULL;
    }
    return json_object_get(v, buf);
}

const json_t *calib__json_dotted(const json_t *root, const char *path)
{
    const json_t *v = root;
    if (!path)
        return NULL;
    while (v) {
        const size_t len = strcspn(path, ".");
        v = step(v, path, len);
        if (!path[len])
            return v;
        path += len + 1;
    }
    return NULL;
}
