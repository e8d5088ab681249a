/* out.c — output files, exit codes and messages on stderr.
 *
 * An output file is written to a temporary file in the destination's own
 * directory and renamed over the destination only once everything was
 * written and flushed: rename() within one file system is atomic, so a
 * failed run leaves no output behind and never damages a previous one.
 * A path that exists and is not a regular file (a device, a FIFO) is
 * written in place, since it cannot be replaced.
 * Exit codes follow sysexits(3); every error is one line on stderr.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_exit_code(int status)
{
    switch (status) {
    case CALIB_OK: return CLI_EX_OK;
    case CALIB_EINVAL: return CLI_EX_USAGE;
    case CALIB_EDATA: return CLI_EX_DATAERR;
    case CALIB_EOPEN: return CLI_EX_NOINPUT;
    case CALIB_ECREATE: return CLI_EX_CANTCREAT;
    case CALIB_EIO: return CLI_EX_IOERR;
    case CALIB_ENOMEM: return CLI_EX_OSERR;
    default: return CLI_EX_SOFTWARE;
    }
}

static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "calib: %s", prefix);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning: ", fmt, ap);
    va_end(ap);
}

int cli_nomem(void)
{
    cli_error("out of memory");
    return CLI_EX_OSERR;
}

int cli_fail(int status, const calib_error *err, const char *path)
{
    calib_error e;
    if (err)
        e = *err;
    else
        memset(&e, 0, sizeof e);
    if (!e.code)
        e.code = status;
    /* A message without its file is useless when several files are read. */
    if (!e.file[0] && path)
        snprintf(e.file, sizeof e.file, "%s", path);
    char buf[1200];
    cli_error("%s", calib_error_format(&e, buf, sizeof buf));
    return cli_exit_code(status);
}

/* A regular file gets the mode open(2) would have given it: mkstemp makes
 * 0600, which would surprise whoever reads the output next. */
static void set_default_mode(int fd)
{
    const mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
}

static char *temp_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    const size_t len = strlen(path) + 16;
    char *t = malloc(len);
    if (t)
        snprintf(t, len, "%.*s.%s.XXXXXX", (int)dir, path, path + dir);
    return t;
}

/* An existing target that is not a regular file or a directory (/dev/null,
 * /dev/stdout, a FIFO) is written in place: a temporary file renamed over
 * it would replace the device (as root) or could not be made in /dev. */
static int open_special(cli_out *o, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -1;
    if (!(o->path = strdup(path)))
        return cli_nomem();
    if (!(o->f = fopen(path, "w"))) {
        cli_error("%s: cannot create: %s", path, strerror(errno));
        cli_out_abort(o);
        return CLI_EX_CANTCREAT;
    }
    return 0;
}

int cli_out_open(cli_out *o, const char *path)
{
    memset(o, 0, sizeof *o);
    if (!path || strcmp(path, "-") == 0) {
        o->f = stdout;
        return 0;
    }
    const int special = open_special(o, path);
    if (special >= 0)
        return special;
    o->path = strdup(path);
    o->tmp = temp_name(path);
    if (!o->path || !o->tmp) {
        cli_out_abort(o);
        return cli_nomem();
    }
    const int fd = mkstemp(o->tmp);
    if (fd < 0) {
        cli_error("%s: cannot create: %s", path, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        cli_out_abort(o);
        return CLI_EX_CANTCREAT;
    }
    set_default_mode(fd);
    o->f = fdopen(fd, "w");
    if (!o->f) {
        close(fd);
        cli_out_abort(o);
        return cli_nomem();
    }
    return 0;
}

static void out_release(cli_out *o)
{
    free(o->path);
    free(o->tmp);
    o->path = o->tmp = NULL;
    o->f = NULL;
}

int cli_out_commit(cli_out *o)
{
    if (!o->path) {
        const int bad = fflush(stdout) != 0 || ferror(stdout);
        o->f = NULL;
        if (bad) {
            cli_error("standard output: write failed: %s", strerror(errno));
            return CLI_EX_IOERR;
        }
        return 0;
    }
    int bad = fflush(o->f) != 0 || ferror(o->f);
    bad |= fclose(o->f) != 0;
    o->f = NULL;
    if (bad) {
        cli_error("%s: write failed: %s", o->path, strerror(errno));
        cli_out_abort(o);
        return CLI_EX_IOERR;
    }
    if (o->tmp && rename(o->tmp, o->path) != 0) {
        cli_error("%s: cannot create: %s", o->path, strerror(errno));
        cli_out_abort(o);
        return CLI_EX_CANTCREAT;
    }
    out_release(o);
    return 0;
}

void cli_out_abort(cli_out *o)
{
    if (o->f && o->f != stdout)
        fclose(o->f);
    if (o->tmp && o->path)
        unlink(o->tmp);
    out_release(o);
}

int cli_out_write(cli_out *o, const void *data, size_t len)
{
    if (fwrite(data, 1, len, o->f) == len)
        return cli_out_commit(o);
    cli_error("%s: write failed: %s", o->path ? o->path : "standard output",
              strerror(errno));
    cli_out_abort(o);
    return CLI_EX_IOERR;
}

int cli_stdout_commit(void)
{
    cli_out out = {0};
    return cli_out_commit(&out);
}

int cli_write_text(const char *path, const char *text)
{
    cli_out out;
    const int rc = cli_out_open(&out, path);
    if (rc)
        return rc;
    fputs(text, out.f);
    fputc('\n', out.f);
    return cli_out_commit(&out);
}
