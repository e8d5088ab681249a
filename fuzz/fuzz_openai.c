/* fuzz_openai.c — OpenAI / vLLM responses with logprobs (chat, legacy
 * completions, Batch API output), JSONL, plain or gzipped.
 *
 * Input: two flag bytes, then the file.  Byte 0: bit 0 gzip the file,
 * bit 1 skip bad rows, bits 2-4 how the confidence is made (geomean,
 * product, mean, min, answer over the choices A-D; 5-7: the answer mode
 * without choices, which must be refused), bit 5 the format detected from
 * the content (else forced), bits 6-7 where the correct flag is ("correct",
 * "grade.correct", "is_correct", "meta.0.ok").  Byte 1: bits 0-5 the
 * streaming reader's chunk size, bit 6 a group path ("grade.domain"),
 * bit 7 a fixed group name.
 */
#include "fuzz.h"

static const char *const correct_paths[4] = {"correct", "grade.correct",
                                             "is_correct", "meta.0.ok"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t flags = data[0], more = data[1];
    const unsigned mode = (flags >> 2) & 7;
    calib_read_options opt;
    calib_read_options_init(&opt);
    opt.format = flags & 32 ? CALIB_FORMAT_AUTO : CALIB_FORMAT_OPENAI;
    opt.skip_bad_rows = (flags & 2) != 0;
    opt.seq_conf = mode <= CALIB_SEQ_ANSWER ? (calib_seq_conf)mode
                                            : CALIB_SEQ_ANSWER;
    if (mode == CALIB_SEQ_ANSWER)
        opt.choices = "A, B,C,D";
    opt.correct = correct_paths[flags >> 6];
    opt.chunk_rows = more & 63;
    if (more & 64)
        opt.group = "grade.domain";
    if (more & 128)
        opt.group_name = "task";
    fuzz_read_bytes(data + 2, size - 2, flags & 1,
                    flags & 32 ? ".jsonl" : NULL, &opt);
    return 0;
}
