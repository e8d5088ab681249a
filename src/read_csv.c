/* read_csv.c — CSV and TSV with a header row: columns found by name.
 *
 * Records come from source.c (RFC 4180: quoted fields may hold the
 * separator, doubled quotes and newlines); a record without any quote is
 * split with memchr, one with quotes by a small state machine that
 * unescapes into a scratch buffer.  A bad row is reported as
 * file:line:field with the column's name, or skipped and counted.
 *
 * Numbers go through read_number.c (correctly rounded, locale-free).  A
 * confidence may also be written as a percentage ("85%", "85.5 %"), as
 * models asked for a verbalized confidence often answer; scores, labels
 * and weights may not, since there a '%' is more likely a mistake.
 */
#include "csv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An integer label: integral digits, or a number with no fractional part
 * ("3.0"), within +-2^53. */
static int parse_int(const char *s, size_t len, int64_t *v, locale_t *loc)
{
    double x;
    if (calib__parse_number(s, len, &x, loc) || !(fabs(x) <= 0x1p53) ||
        x != floor(x))
        return -1;
    *v = (int64_t)x;
    return 0;
}

/* 0/1, 0.0/1.0, true/false in any case. */
static int parse_flag(const char *s, size_t len, int64_t *v, locale_t *loc)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    double x;
    if (len == 4 && strncasecmp(s, "true", 4) == 0)
        x = 1.0;
    else if (len == 5 && strncasecmp(s, "false", 5) == 0)
        x = 0.0;
    else if (calib__parse_number(s, len, &x, loc))
        return -1;
    if (x != 0.0 && x != 1.0)
        return -1;
    *v = x == 1.0;
    return 0;
}

/* UTF-8 as RFC 3629: no overlong forms, surrogates or code points past
 * U+10FFFF. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        const size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (!len || c > 0xf4 || i + len > n)
            return 0;
        const unsigned c1 = s[i + 1];
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) ||
            (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 > 0x8f))
            return 0;
        for (size_t j = 1; j < len; j++)
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Splitting records into fields                                       */
/* ------------------------------------------------------------------ */

/* Where a bad row is; what errors name. */
typedef struct place {
    size_t line, row;
} place;

static int row_fail(const calib__csv *c, calib_error *err, const place *at,
                    size_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int row_fail(const calib__csv *c, calib_error *err, const place *at,
                    size_t col, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return calib__fail(err, CALIB_EDATA, calib__src_name(c->src), at->line,
                       at->row, col, "%s", msg);
}

static void put_field(calib__csv *c, size_t *nf, const char *p, size_t len)
{
    if (*nf < c->fields_cap)
        c->fields[*nf] = (field){p, len};
    (*nf)++;
}

/* A record with no quote: fields between separators. */
static size_t split_plain(calib__csv *c, const char *p, const char *end)
{
    size_t nf = 0;
    for (;;) {
        const char *q = memchr(p, c->sep, (size_t)(end - p));
        put_field(c, &nf, p, (size_t)((q ? q : end) - p));
        if (!q)
            return nf;
        p = q + 1;
    }
}

/* One quoted field from p (at its opening quote) into *out; returns the
 * position after the closing quote, or NULL when text follows it. */
static const char *unquote(const calib__csv *c, const char *p,
                           const char *end, char **out)
{
    for (p++;;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q)
            return NULL;
        memcpy(*out, p, (size_t)(q - p));
        *out += q - p;
        p = q + 1;
        if (p < end && *p == '"') {
            *(*out)++ = '"';
            p++;
            continue;
        }
        return p == end || *p == c->sep ? p : NULL;
    }
}

/* A record with quotes, unescaped into the scratch buffer. */
static int split_quoted(calib__csv *c, const char *p, const char *end,
                        size_t *nf, const place *at, calib_error *err)
{
    char *out = c->scratch;
    *nf = 0;
    for (;;) {
        char *const start = out;
        if (p < end && *p == '"') {
            if (!(p = unquote(c, p, end, &out)))
                return row_fail(c, err, at, *nf + 1,
                                "text after a closing quote");
        } else {
            const char *q = memchr(p, c->sep, (size_t)(end - p));
            q = q ? q : end;
            if (memchr(p, '"', (size_t)(q - p)))
                return row_fail(c, err, at, *nf + 1,
                                "quote inside an unquoted field");
            memcpy(out, p, (size_t)(q - p));
            out += q - p;
            p = q;
        }
        put_field(c, nf, start, (size_t)(out - start));
        if (p == end)
            return CALIB_OK;
        p++;
    }
}

static int split(calib__csv *c, const char *rec, size_t len, int quoted,
                 size_t *nf, const place *at, calib_error *err)
{
    if (!quoted) {
        *nf = split_plain(c, rec, rec + len);
        return CALIB_OK;
    }
    if (len > c->scratch_cap) {
        char *s = realloc(c->scratch, len);
        if (!s)
            return calib__fail(err, CALIB_ENOMEM, calib__src_name(c->src),
                               at->line, 0, 0, "out of memory");
        c->scratch = s;
        c->scratch_cap = len;
    }
    return split_quoted(c, rec, rec + len, nf, at, err);
}

/* ------------------------------------------------------------------ */
/* Opening                                                             */
/* ------------------------------------------------------------------ */

static char *trimmed_copy(const char *p, size_t len)
{
    while (len && (*p == ' ' || *p == '\t'))
        p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, p, len);
        s[len] = 0;
    }
    return s;
}

/* Arrays sized by the header width. */
static int alloc_header(calib__csv *c, size_t n)
{
    c->n_fields = n;
    c->names = calloc(n, sizeof *c->names);
    c->role = calloc(n, 1);
    c->score_field = calloc(n, sizeof *c->score_field);
    c->slot = calloc(n, sizeof *c->slot);
    c->fields = calloc(n + 1, sizeof *c->fields);
    c->fields_cap = c->fields ? n + 1 : 0;
    return c->names && c->role && c->score_field && c->slot && c->fields
               ? CALIB_OK : CALIB_ENOMEM;
}

/* The first non-empty record, without a UTF-8 byte order mark. */
static int read_header(calib__csv *c, calib_error *err)
{
    const char *rec;
    size_t len, line, nf;
    int rc, quoted;
    do
        rc = calib__src_record(c->src, 1, c->max_line, &rec, &len, &line,
                               &quoted, err);
    while (!rc && rec && len == 0);
    if (rc || !rec) {
        c->empty = !rc;
        return rc;
    }
    if (len >= 3 && memcmp(rec, "\xef\xbb\xbf", 3) == 0)
        rec += 3, len -= 3;
    if (len && (rec[0] == '{' || rec[0] == '[' || rec[0] == '\x93'))
        return calib__fail(err, CALIB_EINVAL, calib__src_name(c->src), line,
                           0, 0, "this is not CSV but %s; give --format %s",
                           rec[0] == '\x93' ? ".npy" : "JSON",
                           rec[0] == '\x93' ? "npy" : "lm-eval or openai");
    const place at = {line, 0};
    /* Count the fields first (fields_cap = 0 stores none), then split. */
    rc = split(c, rec, len, quoted, &nf, &at, err);
    if (!rc)
        rc = alloc_header(c, nf);
    if (!rc)
        rc = split(c, rec, len, quoted, &nf, &at, err);
    for (size_t f = 0; !rc && f < nf; f++)
        if (!(c->names[f] = trimmed_copy(c->fields[f].p, c->fields[f].len)))
            rc = CALIB_ENOMEM;
    return rc == CALIB_ENOMEM ? calib__fail(err, rc, calib__src_name(c->src),
                                            line, 0, 0, "out of memory")
                              : rc;
}

/* Without a header the kind can only come from the options. */
static void empty_shape(calib__csv *c, const calib_read_options *opt)
{
    c->kind = opt->logits ? CALIB_LOGITS
              : opt->probs ? CALIB_PROBS : CALIB_TOPLABEL;
    c->k = 0;
}

int calib__csv_open(calib__src *src, char sep, const calib_read_options *opt,
                    calib__csv **out, calib_error *err)
{
    *out = NULL;
    calib__csv *c = calloc(1, sizeof *c);
    if (!c) {
        calib__src_close(src);
        return calib__fail(err, CALIB_ENOMEM, NULL, 0, 0, 0, "out of memory");
    }
    c->src = src;
    c->sep = sep;
    c->max_line = opt->max_line ? opt->max_line : (size_t)64 << 20;
    c->skip_bad_rows = opt->skip_bad_rows;
    c->conf = c->correct = c->pred = c->label = c->group = c->weight = NONE;
    int rc = read_header(c, err);
    if (!rc && c->empty)
        empty_shape(c, opt);
    else if (!rc)
        rc = calib__csv_resolve(c, opt, err);
    if (rc) {
        calib__csv_close(c);
        return rc;
    }
    c->two_top = !c->empty && c->kind == CALIB_TOPLABEL &&
                 c->n_fields == 2 && c->conf != NONE &&
                 c->correct != NONE;
    *out = c;
    return CALIB_OK;
}

void calib__csv_close(calib__csv *c)
{
    if (!c)
        return;
    calib__src_close(c->src);
    for (size_t f = 0; c->names && f < c->n_fields; f++)
        free(c->names[f]);
    free(c->names);
    free(c->role);
    free(c->score_field);
    free(c->slot);
    free(c->fields);
    free(c->scratch);
    calib__number_done(&c->loc);
    free(c);
}

void calib__csv_shape(const calib__csv *c, calib__rows *rows)
{
    memset(rows, 0, sizeof *rows);
    rows->kind = c->kind;
    rows->k = c->kind == CALIB_TOPLABEL ? 0 : c->k;
    rows->has_weights = c->weight != NONE;
    rows->has_groups = c->group != NONE;
}

/* ------------------------------------------------------------------ */
/* Rows                                                                */
/* ------------------------------------------------------------------ */

/* What one row holds before it is stored. */
typedef struct row_values {
    double conf, weight;
    int64_t label, pred, correct;
    const field *group;
} row_values;

/* The first 40 bytes of a field as a message can show them: control
 * bytes (a NUL would end the text early: '1\0' printed as '1') and, in
 * a field that is not UTF-8, bytes >= 0x80 as \xNN. */
static const char *shown(const field *x, char *buf, size_t size)
{
    const size_t len = x->len > 40 ? 40 : x->len;
    const int utf8 = valid_utf8((const unsigned char *)x->p, len);
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < size; i++) {
        const unsigned char b = (unsigned char)x->p[i];
        if (b < 0x20 || b == 0x7f || (b >= 0x80 && !utf8))
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", b);
        else
            buf[o++] = (char)b;
    }
    buf[o] = 0;
    return buf;
}

static int bad_value(const calib__csv *c, const place *at, size_t f,
                     const char *what, calib_error *err)
{
    char text[200];
    return row_fail(c, err, at, f + 1, "field '%s': '%s' %s", c->names[f],
                    shown(&c->fields[f], text, sizeof text), what);
}

/* Parses field f by its role into *v (scores straight into `scores`). */
static int parse_field(calib__csv *c, size_t f, double *scores,
                       row_values *v, const place *at, calib_error *err)
{
    const field *x = &c->fields[f];
    switch ((enum role)c->role[f]) {
    case R_SCORE:
        return calib__parse_number(x->p, x->len, &scores[c->slot[f]], &c->loc)
                   ? bad_value(c, at, f, "is not a number", err) : CALIB_OK;
    case R_CONF: /* verbalized confidences are often percentages */
        return calib__parse_percent(x->p, x->len, &v->conf, &c->loc)
                   ? bad_value(c, at, f, "is not a number", err) : CALIB_OK;
    case R_LABEL:
    case R_PRED:
        return parse_int(x->p, x->len, c->role[f] == R_LABEL ? &v->label
                                                            : &v->pred,
                         &c->loc)
                   ? bad_value(c, at, f, "is not an integer label", err)
                   : CALIB_OK;
    case R_CORRECT:
        return parse_flag(x->p, x->len, &v->correct, &c->loc)
                   ? bad_value(c, at, f, "is not 0/1 or true/false", err)
                   : CALIB_OK;
    case R_WEIGHT:
        return calib__parse_number(x->p, x->len, &v->weight, &c->loc) ||
                       !(v->weight >= 0.0 && v->weight < INFINITY)
                   ? bad_value(c, at, f, "is not a finite weight >= 0", err)
                   : CALIB_OK;
    case R_GROUP: /* a name is a C string: no NUL inside */
        v->group = x;
        if (memchr(x->p, '\0', x->len))
            return row_fail(c, err, at, f + 1, "field '%s': a NUL byte in "
                                               "a group name", c->names[f]);
        return valid_utf8((const unsigned char *)x->p, x->len)
                   ? CALIB_OK
                   : row_fail(c, err, at, f + 1, "field '%s': invalid UTF-8",
                              c->names[f]);
    case R_NONE:
        break;
    }
    return CALIB_OK;
}

/* The field the checks' 1-based index points at. */
static size_t checked_field(const calib__csv *c, size_t bad)
{
    if (c->kind != CALIB_TOPLABEL)
        return bad <= c->k ? c->score_field[bad - 1] : c->label;
    return bad == 1 ? c->conf : c->correct != NONE ? c->correct : c->label;
}

/* The row checks of calib.h (clamping the stored values in place). */
static int check(calib__csv *c, double *v, row_values *rv,
                 calib_read_stats *st, const place *at, calib_error *err)
{
    char why[160];
    calib_read_stats row = {0};
    const int top = c->kind == CALIB_TOPLABEL;
    if (top && c->correct == NONE)
        rv->correct = rv->pred == rv->label;
    const size_t bad = calib__check_row(c->kind, v, top ? 1 : c->k,
                                        top ? rv->correct : rv->label, &row,
                                        why, sizeof why);
    if (bad) {
        const size_t f = checked_field(c, bad);
        return row_fail(c, err, at, f + 1, "field '%s': %s", c->names[f],
                        why);
    }
    st->values_clamped += row.values_clamped;
    st->rows_sum_off += row.rows_sum_off;
    return CALIB_OK;
}

/* A row of the common narrow file, a confidence and a 0/1 flag and nothing
 * else: one scan for the separator, no field table, and the row check of
 * calib__check_row inlined for a confidence in [0,1] (nothing to clamp or
 * count).  Anything else (quotes, a third field, "true", a value to clamp
 * or reject) returns 1 before storing, and the general way then gives the
 * same row or the same error. */
static int fast_row(calib__csv *c, const char *rec, size_t len,
                    calib__rows *rows)
{
    const char *const end = rec + len;
    const char *const q = memchr(rec, c->sep, len);
    if (!q)
        return 1;
    const char *flag = q + 1, *num = rec, *num_end = q;
    if (c->conf == 1) {
        flag = rec, num = q + 1, num_end = end;
        if (q != rec + 1 || memchr(num, c->sep, (size_t)(end - num)))
            return 1;
    } else if (end - flag != 1) {
        return 1;
    }
    double conf;
    if ((*flag != '0' && *flag != '1') ||
        calib__parse_percent(num, (size_t)(num_end - num), &conf, &c->loc) ||
        !(conf >= 0.0 && conf <= 1.0))
        return 1;
    const size_t i = rows->n;
    rows->conf[i] = conf;
    rows->correct[i] = (uint8_t)(*flag == '1');
    if (rows->weights)
        rows->weights[i] = 1.0;
    if (rows->groups)
        rows->groups[i] = 0;
    rows->n++;
    return 0;
}

/* Parses, checks and stores the record as row rows->n. */
static int one_row(calib__csv *c, const char *rec, size_t len, int quoted,
                   calib__rows *rows, calib__groups *g, calib_read_stats *st,
                   const place *at, calib_error *err)
{
    if (c->two_top && !quoted && fast_row(c, rec, len, rows) == 0)
        return CALIB_OK;
    size_t nf;
    int rc = split(c, rec, len, quoted, &nf, at, err);
    if (rc)
        return rc;
    if (nf != c->n_fields)
        return row_fail(c, err, at, (nf < c->n_fields ? nf : c->n_fields) + 1,
                        "%zu field%s, expected %zu", nf, nf == 1 ? "" : "s",
                        c->n_fields);
    const size_t i = rows->n;
    double *const scores = rows->scores ? rows->scores + i * c->k : NULL;
    row_values v = {0.0, 1.0, 0, 0, 0, NULL};
    for (size_t f = 0; f < nf && !rc; f++)
        rc = parse_field(c, f, scores, &v, at, err);
    if (!rc)
        rc = check(c, scores ? scores : &v.conf, &v, st, at, err);
    if (rc)
        return rc;
    uint32_t gi = 0;
    if (v.group && calib__groups_intern(g, v.group->p, v.group->len, &gi))
        return calib__fail(err, CALIB_ENOMEM, calib__src_name(c->src),
                           at->line, 0, 0, "out of memory");
    if (scores)
        rows->labels[i] = (int32_t)v.label;
    else
        rows->conf[i] = v.conf, rows->correct[i] = (uint8_t)v.correct;
    if (rows->weights)
        rows->weights[i] = v.weight;
    if (rows->groups)
        rows->groups[i] = gi;
    rows->n++;
    return CALIB_OK;
}

int calib__csv_read(calib__csv *c, size_t max_rows, calib__rows *rows,
                    calib__groups *g, calib_read_stats *st, int *eof,
                    calib_error *err)
{
    *eof = c->empty;
    for (size_t added = 0; added < max_rows && !*eof;) {
        const char *rec;
        size_t len, line;
        int quoted;
        int rc = calib__src_record(c->src, 1, c->max_line, &rec, &len, &line,
                                   &quoted, err);
        if (rc)
            return rc;
        *eof = rec == NULL;
        if (!rec || len == 0)
            continue;
        if (rows->n >= rows->cap && calib__rows_reserve(rows, rows->n + 1))
            return calib__fail(err, CALIB_ENOMEM, calib__src_name(c->src),
                               line, 0, 0, "out of memory");
        const place at = {line, ++c->data_row};
        st->rows_read++;
        rc = one_row(c, rec, len, quoted, rows, g, st, &at, err);
        if (rc == CALIB_EDATA && c->skip_bad_rows) {
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
