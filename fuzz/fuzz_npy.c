/* fuzz_npy.c — the .npy reader: a main file and its companion (labels or
 * correct flags), each plain or gzipped.
 *
 * Input: one flag byte, then the main file's bytes up to the second
 * "\x93NUMPY" magic, which starts the companion's bytes (none: an empty
 * companion).  Flags: bit 0 the companion is labels (else correct flags),
 * 1 the scores are probabilities, 2 gzip the main file, 3 gzip the
 * companion, 4 skip bad rows, 5 no companion at all, 6-7 the streaming
 * reader's chunk size (1, 3, 64 rows or the default).
 */
#include "fuzz.h"

#include <string.h>

static const size_t chunk_sizes[4] = {1, 3, 64, 0};

/* Where the companion starts: the second magic, or the end. */
static size_t split_at(const uint8_t *d, size_t n)
{
    static const char magic[] = "\x93NUMPY";
    const size_t m = sizeof magic - 1;
    for (size_t i = 1; i + m <= n; i++)
        if (memcmp(d + i, magic, m) == 0)
            return i;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t flags = data[0];
    const uint8_t *body = data + 1;
    const size_t n = size - 1, cut = split_at(body, n);
    fuzz_file main_file, side_file;
    fuzz_file_open(&main_file, body, cut, flags & 4);
    fuzz_file_open(&side_file, body + cut, n - cut, flags & 8);

    calib_read_options opt;
    calib_read_options_init(&opt);
    opt.format = CALIB_FORMAT_NPY;
    opt.npy_probs = (flags & 2) != 0;
    opt.skip_bad_rows = (flags & 16) != 0;
    opt.chunk_rows = chunk_sizes[flags >> 6];
    if (!(flags & 32)) {
        if (flags & 1)
            opt.labels_path = side_file.path;
        else
            opt.correct_path = side_file.path;
    }
    fuzz_read_both(main_file.path, &opt);
    fuzz_file_close(&main_file);
    fuzz_file_close(&side_file);
    return 0;
}
