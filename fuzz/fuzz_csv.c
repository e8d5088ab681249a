/* fuzz_csv.c — the CSV and TSV reader, plain or gzipped, with each way of
 * naming columns.
 *
 * Input: two flag bytes, then the file.  Byte 0: bit 0 TSV (else CSV),
 * bit 1 gzip the file, bit 2 skip bad rows, bit 3 a 64-byte line limit,
 * bits 4-7 which column options (none: the obvious headers; conf and
 * correct; pred and label; a logits glob; a probs list; weights and
 * groups; a fixed group name; ...).  Byte 1: the streaming reader's chunk
 * size (0: the default).  Raw bytes that start with 1f 8b reach the gzip
 * decoder as they are, so corrupt gzip streams are fuzzed too.
 */
#include "fuzz.h"

#include <string.h>

static void set_columns(calib_read_options *o, unsigned which)
{
    switch (which) {
    case 1: o->conf = "confidence"; o->correct = "correct"; break;
    case 2: o->pred = "pred"; o->label = "label"; break;
    case 3: o->conf = "conf"; o->pred = "pred"; o->label = "label"; break;
    case 4: o->logits = "logit_*"; o->label = "label"; break;
    case 5: o->probs = "p0,p1,p2"; o->label = "y"; break;
    case 6: o->probs = "prob_[0-9]*"; o->label = "label";
            o->weight = "w"; o->group = "g"; break;
    case 7: o->conf = "conf"; o->correct = "correct"; o->weight = "weight";
            o->group = "group"; break;
    case 8: o->group_name = "task"; break;
    case 9: o->logits = "a,b"; o->label = "label"; o->group = "g";
            o->group_name = "fixed"; break;
    case 10: o->conf = "c"; o->correct = "c"; break;
    case 11: o->probs = "*"; o->label = "label"; break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const uint8_t flags = data[0];
    calib_read_options opt;
    calib_read_options_init(&opt);
    opt.format = flags & 1 ? CALIB_FORMAT_TSV : CALIB_FORMAT_CSV;
    opt.skip_bad_rows = (flags & 4) != 0;
    if (flags & 8)
        opt.max_line = 64;
    set_columns(&opt, flags >> 4);
    opt.chunk_rows = data[1];
    fuzz_read_bytes(data + 2, size - 2, flags & 2, NULL, &opt);
    return 0;
}
