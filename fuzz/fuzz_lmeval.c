/* fuzz_lmeval.c — lm-evaluation-harness --log_samples JSONL (and the
 * one-array form of v0.4.0-0.4.2), plain or gzipped.
 *
 * Input: two flag bytes, then the file.  Byte 0: bit 0 gzip the file,
 * bit 1 skip bad rows, bits 2-3 the loglik normalisation (none, chars,
 * bytes), bit 4 a group path ("doc.subject"), bit 5 a fixed group name,
 * bit 6 the format detected from the content (else forced), bit 7 a
 * 256-byte line limit.  Byte 1: the streaming reader's chunk size.
 */
#include "fuzz.h"

/* The options flag byte 0 and chunk byte 1 ask for. */
static void set_options(calib_read_options *opt, uint8_t flags,
                        uint8_t chunk)
{
    calib_read_options_init(opt);
    opt->format = flags & 64 ? CALIB_FORMAT_AUTO : CALIB_FORMAT_LMEVAL;
    opt->skip_bad_rows = (flags & 2) != 0;
    opt->norm = (calib_lmeval_norm)((flags >> 2) & 3) % 3;
    if (flags & 16)
        opt->group = "doc.subject";
    if (flags & 32)
        opt->group_name = "task";
    if (flags & 128)
        opt->max_line = 256;
    opt->chunk_rows = chunk;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    calib_read_options opt;
    if (size < 2)
        return 0;
    set_options(&opt, data[0], data[1]);
    fuzz_read_bytes(data + 2, size - 2, data[0] & 1,
                    data[0] & 64 ? ".jsonl" : NULL, &opt);
    return 0;
}
