/* source.c — bytes from a file, a gzip file or standard input, as records.
 *
 * Input is read in 1 MiB blocks into one buffer that holds at least the
 * record being cut; it only grows for a record longer than the buffer, and
 * never past max_line, so memory stays bounded whatever the input length.
 * Gzip is recognised by its magic bytes (1f 8b), not by the name, and
 * inflated with zlib as a stream (concatenated members included, as
 * gzip(1) does).  Records follow RFC 4180: a '"' opens a quoted section
 * that may span lines; a doubled "" inside it toggles twice, so counting
 * quotes is enough to know whether a newline ends the record.  Whole-file
 * loads (for .npy) map plain regular files instead of copying them.
 *
 * A gzip bomb (a few megabytes that inflate to terabytes) is refused once
 * the output passes GRACE bytes and exceeds max_ratio times the compressed
 * bytes consumed, the limit Apache POI puts on zip entries.  Real data
 * inflate 2-10 times (CSV, logits), an lm-eval log a few tens; only long
 * runs of one byte approach deflate's ceiling of 1032.  Streaming readers
 * need no limit for memory (it is bounded by max_line), but a bomb would
 * still be hours of work on nothing, and whole-file loads would hold it.
 */
#include "read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BLOCK ((size_t)1 << 20)
#define ZBLOCK ((size_t)256 << 10)
#define GRACE ((uint64_t)64 << 20)

struct calib__src {
    int fd;
    char *name;
    int gzip;
    z_stream z;
    uint8_t *zin;          /* compressed input, gzip only */
    int raw_eof;           /* read() returned 0 */
    double max_ratio;      /* inflated / compressed, past GRACE          */
    uint64_t zin_total;    /* compressed bytes read into zin             */
    uint64_t zout_total;   /* bytes inflated                             */
    int eof;               /* no bytes beyond buf[end] */
    char *buf;
    size_t cap, pos, end;  /* the unconsumed bytes are buf[pos .. end) */
    size_t scan;           /* bytes of the pending record already scanned */
    size_t scan_lines;     /* newlines inside them (quoted sections) */
    int in_quote;          /* quote parity at buf[pos + scan] */
    int quoted;            /* the pending record has a quote */
    size_t line;           /* first line of the pending record */
};

const char *calib__src_name(const calib__src *s) { return s->name; }

/* read(2) until n bytes or the end; *got says how many came. */
static int raw_read(calib__src *s, void *dst, size_t n, size_t *got,
                    calib_error *err)
{
    *got = 0;
    while (*got < n) {
        const ssize_t r = read(s->fd, (char *)dst + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return calib__fail(err, CALIB_EIO, s->name, 0, 0, 0,
                               "read failed: %s", strerror(errno));
        if (r == 0) {
            s->raw_eof = 1;
            break;
        }
        *got += (size_t)r;
    }
    return CALIB_OK;
}

static int open_fd(const char *path, const char *name, int *fd,
                   calib_error *err)
{
    struct stat st;
    *fd = strcmp(path, "-") == 0 ? STDIN_FILENO
                                 : open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return calib__fail(err, CALIB_EOPEN, name, 0, 0, 0,
                           "cannot open: %s", strerror(errno));
    if (fstat(*fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (*fd != STDIN_FILENO)
            close(*fd);
        *fd = -1;
        return calib__fail(err, CALIB_EOPEN, name, 0, 0, 0,
                           "cannot open: is a directory");
    }
    return CALIB_OK;
}

/* The first bytes decide: gzip's magic moves them to the inflater's
 * input, anything else stays as plain data. */
static int detect_gzip(calib__src *s, calib_error *err)
{
    size_t got = 0, more;
    while (got < 2 && !s->raw_eof) {
        int rc = raw_read(s, s->buf + got, BLOCK - got, &more, err);
        if (rc)
            return rc;
        got += more;
    }
    s->end = got;
    if (got < 2 || (uint8_t)s->buf[0] != 0x1f || (uint8_t)s->buf[1] != 0x8b) {
        s->eof = s->raw_eof && got == 0;
        return CALIB_OK;
    }
    s->zin = malloc(got > ZBLOCK ? got : ZBLOCK);
    if (!s->zin)
        return calib__fail(err, CALIB_ENOMEM, s->name, 0, 0, 0,
                           "out of memory");
    memcpy(s->zin, s->buf, got);
    s->zin_total = got;
    s->end = 0;
    s->gzip = 1;
    s->z.next_in = s->zin;
    s->z.avail_in = (uInt)got;
    if (inflateInit2(&s->z, 15 + 16) != Z_OK) {
        s->gzip = 0;
        return calib__fail(err, CALIB_ENOMEM, s->name, 0, 0, 0,
                           "cannot start zlib");
    }
    return CALIB_OK;
}

int calib__src_open(const char *path, calib__src **out, calib_error *err)
{
    *out = NULL;
    calib__src *s = calloc(1, sizeof *s);
    const char *name = strcmp(path, "-") == 0 ? "<stdin>" : path;
    if (s) {
        s->name = strdup(name);
        s->buf = malloc(BLOCK);
        s->cap = BLOCK;
        s->line = 1;
        s->fd = -1;
        s->max_ratio = CALIB__GZIP_RATIO;
    }
    if (!s || !s->name || !s->buf) {
        calib__src_close(s);
        return calib__fail(err, CALIB_ENOMEM, name, 0, 0, 0, "out of memory");
    }
    int rc = open_fd(path, name, &s->fd, err);
    if (!rc)
        rc = detect_gzip(s, err);
    if (rc) {
        calib__src_close(s);
        return rc;
    }
    *out = s;
    return CALIB_OK;
}

void calib__src_close(calib__src *s)
{
    if (!s)
        return;
    if (s->gzip)
        inflateEnd(&s->z);
    if (s->fd > STDIN_FILENO)
        close(s->fd);
    free(s->zin);
    free(s->buf);
    free(s->name);
    free(s);
}

/* After a member's end: more input is another member, none is the end. */
static int next_member(calib__src *s, calib_error *err)
{
    if (s->z.avail_in == 0 && !s->raw_eof) {
        size_t got;
        int rc = raw_read(s, s->zin, ZBLOCK, &got, err);
        if (rc)
            return rc;
        s->z.next_in = s->zin;
        s->z.avail_in = (uInt)got;
        s->zin_total += got;
    }
    if (s->z.avail_in == 0)
        s->eof = 1;
    else
        inflateReset(&s->z);
    return CALIB_OK;
}

/* Past GRACE bytes, has the output outgrown max_ratio times the
 * compressed bytes consumed? */
static int bomb(const calib__src *s)
{
    const uint64_t in = s->zin_total - s->z.avail_in;
    return s->zout_total > GRACE &&
           (double)s->zout_total > s->max_ratio * (double)(in ? in : 1);
}

void calib__src_limit(calib__src *s, double max_ratio)
{
    s->max_ratio = max_ratio > 0.0 ? max_ratio : CALIB__GZIP_RATIO;
}

/* One gzip step into buf[end .. cap).  A member that ends with more input
 * behind it is followed by the next member (gzip -c a b > c). */
static int inflate_some(calib__src *s, calib_error *err)
{
    if (s->z.avail_in == 0 && !s->raw_eof) {
        size_t got;
        int rc = raw_read(s, s->zin, ZBLOCK, &got, err);
        if (rc)
            return rc;
        s->z.next_in = s->zin;
        s->z.avail_in = (uInt)got;
        s->zin_total += got;
    }
    s->z.next_out = (Bytef *)s->buf + s->end;
    s->z.avail_out = (uInt)(s->cap - s->end);
    const int zr = inflate(&s->z, Z_NO_FLUSH);
    const size_t end = (size_t)((char *)s->z.next_out - s->buf);
    s->zout_total += end - s->end;
    s->end = end;
    if (bomb(s))
        return calib__fail(err, CALIB_EDATA, s->name, 0, 0, 0,
                           "gzip data inflate more than %g times (%llu bytes "
                           "from %llu): a decompression bomb? (raise the "
                           "limit with --max-gzip-ratio)", s->max_ratio,
                           (unsigned long long)s->zout_total,
                           (unsigned long long)(s->zin_total -
                                                s->z.avail_in));
    if (zr == Z_STREAM_END)
        return next_member(s, err);
    if (zr == Z_OK)
        return CALIB_OK;
    if (zr == Z_BUF_ERROR && s->z.avail_in == 0 && s->raw_eof)
        return calib__fail(err, CALIB_EDATA, s->name, 0, 0, 0,
                           "truncated gzip data");
    if (zr == Z_BUF_ERROR)
        return CALIB_OK;
    if (zr == Z_MEM_ERROR)
        return calib__fail(err, CALIB_ENOMEM, s->name, 0, 0, 0,
                           "out of memory");
    return calib__fail(err, CALIB_EDATA, s->name, 0, 0, 0,
                       "corrupt gzip data: %s", s->z.msg ? s->z.msg : "?");
}

/* Appends at least one byte to buf[end ..] (which must have room), or
 * sets eof. */
static int fill(calib__src *s, calib_error *err)
{
    const size_t before = s->end;
    while (s->end == before && !s->eof) {
        if (s->gzip) {
            int rc = inflate_some(s, err);
            if (rc)
                return rc;
            continue;
        }
        size_t got;
        int rc = raw_read(s, s->buf + s->end, s->cap - s->end, &got, err);
        if (rc)
            return rc;
        s->end += got;
        s->eof = got == 0;
    }
    return CALIB_OK;
}

/* Moves the pending bytes to the front and makes room for a block. */
static int make_room(calib__src *s, calib_error *err)
{
    if (s->pos > 0) {
        memmove(s->buf, s->buf + s->pos, s->end - s->pos);
        s->end -= s->pos;
        s->pos = 0;
    }
    if (s->cap - s->end >= BLOCK / 4)
        return CALIB_OK;
    char *b = realloc(s->buf, s->cap * 2);
    if (!b)
        return calib__fail(err, CALIB_ENOMEM, s->name, s->line, 0, 0,
                           "out of memory");
    s->buf = b;
    s->cap *= 2;
    return CALIB_OK;
}

/* Counts the quotes of buf[a .. b) into the parity. */
static void count_quotes(calib__src *s, const char *a, const char *b)
{
    while ((a = memchr(a, '"', (size_t)(b - a))) != NULL) {
        s->in_quote ^= 1;
        s->quoted = 1;
        a++;
    }
}

/* Finds the end of the pending record (a newline outside quotes) in the
 * bytes not scanned yet; returns it, or NULL with the scan state saved. */
static const char *find_end(calib__src *s, int quote)
{
    const char *cur = s->buf + s->pos + s->scan;
    const char *const end = s->buf + s->end;
    for (;;) {
        const char *nl = memchr(cur, '\n', (size_t)(end - cur));
        if (quote)
            count_quotes(s, cur, nl ? nl : end);
        if (!nl) {
            s->scan = s->end - s->pos;
            return NULL;
        }
        if (!s->in_quote)
            return nl;
        s->scan_lines++;
        cur = nl + 1;
    }
}

static void emit(calib__src *s, const char *stop, size_t next, const char **rec,
                 size_t *len, size_t *line, int *quoted)
{
    const char *const start = s->buf + s->pos;
    size_t n = (size_t)(stop - start);
    if (n > 0 && start[n - 1] == '\r')
        n--;
    *rec = start;
    *len = n;
    *line = s->line;
    if (quoted)
        *quoted = s->quoted;
    s->quoted = 0;
    s->line += s->scan_lines + 1;
    s->pos = next;
    s->scan = 0;
    s->scan_lines = 0;
}

static int too_long(calib__src *s, size_t max_line, calib_error *err)
{
    return calib__fail(err, CALIB_EDATA, s->name, s->line, 0, 0,
                       "line longer than %zu bytes", max_line);
}

int calib__src_record(calib__src *s, int quote, size_t max_line,
                      const char **rec, size_t *len, size_t *line,
                      int *quoted, calib_error *err)
{
    *rec = NULL;
    *len = 0;
    for (;;) {
        const char *nl = find_end(s, quote);
        const size_t pending = (size_t)((nl ? nl : s->buf + s->end) -
                                        (s->buf + s->pos));
        if (pending > max_line)
            return too_long(s, max_line, err);
        if (nl) {
            emit(s, nl, (size_t)(nl - s->buf) + 1, rec, len, line, quoted);
            return CALIB_OK;
        }
        if (s->eof && s->pos == s->end)
            return CALIB_OK;
        if (s->eof && s->in_quote)
            return calib__fail(err, CALIB_EDATA, s->name, s->line, 0, 0,
                               "quoted field not closed at the end of input");
        if (s->eof) {
            emit(s, s->buf + s->end, s->end, rec, len, line, quoted);
            return CALIB_OK;
        }
        int rc = make_room(s, err);
        if (!rc)
            rc = fill(s, err);
        if (rc)
            return rc;
    }
}

/* Reads everything left into the buffer, which the blob then takes. */
static int slurp(calib__src *s, calib__blob *b, calib_error *err)
{
    while (!s->eof) {
        int rc = make_room(s, err);
        if (!rc)
            rc = fill(s, err);
        if (rc)
            return rc;
    }
    b->owned = (uint8_t *)s->buf;
    b->data = b->owned + s->pos;
    b->len = s->end - s->pos;
    s->buf = NULL;
    return CALIB_OK;
}

/* Maps a plain regular file; returns 1 when it did (fd is then closed). */
static int try_map(int fd, calib__blob *b)
{
    struct stat st;
    uint8_t magic[2];
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 2 ||
        (uintmax_t)st.st_size > SIZE_MAX)
        return 0;
    if (pread(fd, magic, 2, 0) != 2 || (magic[0] == 0x1f && magic[1] == 0x8b))
        return 0;
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED)
        return 0;
    close(fd);
    b->map_addr = m;
    b->map_len = (size_t)st.st_size;
    b->data = m;
    b->len = b->map_len;
    return 1;
}

int calib__blob_load(const char *path, double max_ratio, calib__blob *b,
                     calib_error *err)
{
    memset(b, 0, sizeof *b);
    if (strcmp(path, "-") != 0) {
        int fd;
        int rc = open_fd(path, path, &fd, err);
        if (rc)
            return rc;
        if (try_map(fd, b))
            return CALIB_OK;
        close(fd);
    }
    calib__src *s;
    int rc = calib__src_open(path, &s, err);
    if (!rc) {
        calib__src_limit(s, max_ratio);
        rc = slurp(s, b, err);
    }
    calib__src_close(s);
    return rc;
}

void calib__blob_free(calib__blob *b)
{
    if (b->map_addr)
        munmap(b->map_addr, b->map_len);
    free(b->owned);
    memset(b, 0, sizeof *b);
}
