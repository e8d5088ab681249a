/* fuzz.h — what the fuzz targets share.
 *
 * Every target is a libFuzzer entry point, LLVMFuzzerTestOneInput, in its
 * own fuzz_<target>.c.  Built with clang -fsanitize=fuzzer it is fuzzed
 * (`make fuzz`); built with the normal compiler and replay.c it runs over
 * the committed corpus fuzz/corpus/<target>/ on every `make test`.
 *
 * Readers take paths, so the bytes are written to an anonymous in-memory
 * file (memfd) and read back through /proc/self/fd/N: nothing touches the
 * disk and the readers run unchanged (mapping included).
 */
#ifndef CALIB_FUZZ_H
#define CALIB_FUZZ_H

#include "calib.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the process with a message when `cond` does not hold: libFuzzer
 * saves the input as a crash, the replay fails. */
#define FUZZ_ASSERT(cond)                                                   \
    ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))
void fuzz_fail(const char *file, int line, const char *what);

/* An in-memory file holding data[0 .. size), gzip-compressed first when
 * `gzip` is set.  path is "/proc/self/fd/N"; close with fuzz_file_close. */
typedef struct fuzz_file {
    int fd;
    char path[128];
} fuzz_file;
void fuzz_file_open(fuzz_file *f, const uint8_t *data, size_t size, int gzip);
void fuzz_file_close(fuzz_file *f);
/* Renames f->path to one that ends in `ext` (".jsonl"): a symlink to the
 * memfd, for readers that decide by the name. */
void fuzz_file_name(fuzz_file *f, const char *ext);

/* Reads `path` twice, with calib_read and with the streaming reader in
 * chunks of opt->chunk_rows, and checks that both agree (status, rows,
 * every count), that rows_read = rows_used + rows_rejected, and that the
 * metrics of what was read hold their invariants. */
void fuzz_read_both(const char *path, const calib_read_options *opt);

/* fuzz_read_both on an in-memory file of data[0 .. size), gzipped when
 * `gzip` is set, whose name ends in `ext` unless that is NULL. */
void fuzz_read_bytes(const uint8_t *data, size_t size, int gzip,
                     const char *ext, const calib_read_options *opt);

/* The invariants every calib_metrics must hold for finite input: ECE,
 * MCE, RMSCE, accuracy and mean confidence in [0, 1], ECE <= RMSCE <=
 * MCE, Brier in its range, NLL >= 0, no NaN where a metric applies, bin
 * counts summing to the rows binned. */
void fuzz_check_metrics(const calib_metrics *m, size_t n);

/* 1 when a and b are bit for bit the same metrics (scalars and bins). */
int fuzz_metrics_same(const calib_metrics *a, const calib_metrics *b);

#endif /* CALIB_FUZZ_H */
