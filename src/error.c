/* error.c — status strings, error records, and the JSON text buffer.
 *
 * Errors are values (zstd's and yyjson's manner): a status number that
 * never changes meaning, plus a calib_error the caller may pass to learn
 * where.  Nothing here prints.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *calib_version(void) { return CALIB_VERSION_STRING; }

const char *calib_strerror(int status)
{
    switch (status) {
    case CALIB_OK: return "success";
    case CALIB_EINVAL: return "invalid argument";
    case CALIB_EDATA: return "bad input data";
    case CALIB_EOPEN: return "cannot open input";
    case CALIB_ECREATE: return "cannot create output";
    case CALIB_EIO: return "input/output error";
    case CALIB_ENOMEM: return "out of memory";
    case CALIB_ECONVERGE: return "optimiser did not converge";
    case CALIB_EINTERNAL: return "internal error";
    }
    return "unknown status";
}

int calib__ok(calib_error *err)
{
    if (err)
        memset(err, 0, sizeof *err);
    return CALIB_OK;
}

int calib__json_status(const json_error_t *e)
{
    return json_error_code(e) == json_error_out_of_memory || !e->text[0]
               ? CALIB_ENOMEM
               : CALIB_EDATA;
}

int calib__fail(calib_error *err, int code, const char *file, size_t line,
                size_t row, size_t column, const char *fmt, ...)
{
    if (!err)
        return code;
    memset(err, 0, sizeof *err);
    err->code = code;
    if (file)
        snprintf(err->file, sizeof err->file, "%s", file);
    err->line = line;
    err->row = row;
    err->column = column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

/* "file:line:col: message" for text, "file: row R, column C: message" for
 * binary inputs; the parts that are unknown are left out. */
char *calib_error_format(const calib_error *err, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    if (!err) {
        snprintf(buf, size, "unknown error");
        return buf;
    }
    calib__buf b = {0};
    if (err->file[0])
        calib__buf_puts(&b, err->file);
    if (err->line) {
        calib__buf_printf(&b, ":%zu", err->line);
        if (err->column)
            calib__buf_printf(&b, ":%zu", err->column);
    } else if (err->row) {
        calib__buf_printf(&b, "%srow %zu", err->file[0] ? ": " : "", err->row);
        if (err->column)
            calib__buf_printf(&b, ", column %zu", err->column);
    }
    if (b.len)
        calib__buf_puts(&b, ": ");
    calib__buf_puts(&b, err->message[0] ? err->message
                                        : calib_strerror(err->code));
    snprintf(buf, size, "%s", b.s && !b.failed ? b.s : err->message);
    free(b.s);
    return buf;
}

static void buf_reserve(calib__buf *b, size_t extra)
{
    if (b->failed || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return;
    }
    b->s = s;
    b->cap = cap;
}

void calib__buf_printf(calib__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        b->failed = 1;
        return;
    }
    buf_reserve(b, (size_t)need);
    if (b->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

void calib__buf_puts(calib__buf *b, const char *s)
{
    size_t n = strlen(s);
    buf_reserve(b, n);
    if (b->failed)
        return;
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

void calib__buf_json_string(calib__buf *b, const char *s)
{
    calib__buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': calib__buf_puts(b, "\\\""); break;
        case '\\': calib__buf_puts(b, "\\\\"); break;
        case '\n': calib__buf_puts(b, "\\n"); break;
        case '\r': calib__buf_puts(b, "\\r"); break;
        case '\t': calib__buf_puts(b, "\\t"); break;
        default:
            if (*p < 0x20)
                calib__buf_printf(b, "\\u%04x", *p);
            else {
                char c[2] = {(char)*p, 0};
                calib__buf_puts(b, c);
            }
        }
    }
    calib__buf_puts(b, "\"");
}

/* %.17g round-trips every double.  A host program may have set a locale
 * whose decimal point is a comma; JSON wants '.', so it is put back. */
void calib__buf_json_number(calib__buf *b, double x)
{
    if (!isfinite(x)) {
        calib__buf_puts(b, "null");
        return;
    }
    char t[40];
    snprintf(t, sizeof t, "%.17g", x);
    for (char *p = t; *p; p++)
        if (*p == ',')
            *p = '.';
    calib__buf_puts(b, t);
}
