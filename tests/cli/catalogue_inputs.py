"""Inputs for the bad-input catalogue (tests/cli/test_catalogue.py).

Every input is built here, at test time, as bytes: CSV text, .npy files
written byte by byte (so that a header can lie), gzip streams, lm-eval
and OpenAI JSON lines.  Large inputs (a 10 MB line, gzip bombs) are
functions, called only by the case that needs them.  Nothing here runs
calib.
"""
import gzip
import io
import json
import struct

import numpy as np

DEEP = b"[" * 100000 + b"]" * 100000   # JSON nested 100,000 deep


def csv(*lines, nl="\n"):
    return (nl.join(lines) + nl).encode()


def gz(data, level=6):
    return gzip.compress(data, level)


def arr(a, **kw):
    """np.save of `a` as bytes."""
    f = io.BytesIO()
    np.save(f, a, **kw)
    return f.getvalue()


def npy(shape, data, descr="<f8", fortran=False, ver=1, header=None):
    """A .npy file whose header says what we want, true or not."""
    h = header or "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (
        descr, fortran, shape)
    pre = 10 if ver == 1 else 12
    h = h.encode()
    h += b" " * ((64 - (pre + len(h) + 1) % 64) % 64) + b"\n"
    size = struct.pack("<H" if ver == 1 else "<I", len(h))
    return b"\x93NUMPY" + bytes([ver, 0]) + size + h + data


Z = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 1.5], [3.0, -1.0]])
Y = arr(np.array([0, 1, 1, 0]))
CONF = arr(np.array([0.9, 0.6, 0.7, 0.2]))
OK01 = arr(np.array([1, 0, 1, 0], dtype=np.uint8))


def first_max(ll):
    return max(range(len(ll)), key=lambda j: (float(ll[j]), -j))


def lm(i, ll=(-1.0, -2.0, -3.0), gold=0, **kw):
    """An lm-eval v0.4.3+ multiple-choice sample (logliks as strings)."""
    d = {"doc_id": i, "doc": {"q": "question %d" % i}, "target": gold,
         "arguments": {"gen_args_%d" % j: {"arg_0": "Q", "arg_1": " %d" % j}
                       for j in range(len(ll))},
         "resps": [[[str(x), "False"]] for x in ll],
         "filtered_resps": [[str(x), "False"] for x in ll],
         "filter": "none", "acc": 1.0 if ll and gold == first_max(ll) else 0.0}
    d.update(kw)
    return d


def oa(lps=(-0.1, -0.2), correct=True, text="ab"):
    """An OpenAI chat completion with token logprobs and a grade."""
    toks = [{"token": t, "logprob": lp} for t, lp in zip(text, lps)]
    return {"choices": [{"index": 0,
                         "message": {"role": "assistant", "content": text},
                         "logprobs": {"content": toks}}],
            "grade": {"correct": correct}}


def line(obj):
    return obj if isinstance(obj, bytes) else json.dumps(obj).encode()


def jsonl(*objs, nl=b"\n"):
    return b"".join(line(o) + nl for o in objs)


def edit(obj, old, new):
    """obj's JSON text with `old` replaced by `new` (bytes), once."""
    text = line(obj)
    assert old in text, old
    return text.replace(old, new, 1)


def cal(temperature=b"2", extra=b""):
    return (b'{"method": "temperature", "objective": "nll", "temperature": '
            + temperature + extra + b"}")


# -- large inputs, built on demand ----------------------------------------

def wide_logits():
    """A 10 MB line: one row of 1,000,000 logits (an LLM vocabulary)."""
    k = 1000000
    z = np.random.default_rng(0).normal(0, 1, k)
    head = ",".join("l%d" % j for j in range(k)) + ",label\n"
    row = ",".join("%.7f" % x for x in z) + ",7\n"
    assert len(row) > 10e6
    return (head + row).encode()


def long_group():
    """Line 2 holds a quoted group name of 2 MiB."""
    return b"confidence,correct,g\n0.5,1,\"" + b"x" * (2 << 20) + b"\"\n"


ROWS_70M = 12000000        # "0.5,1\n" * 12e6 = 72 MB, past the 64 MiB grace


def bomb_csv():
    """Valid rows that inflate ~700:1: a bomb, or absurdly regular data."""
    return gz(b"confidence,correct\n" + b"0.5,1\n" * ROWS_70M)


def bomb_npy():
    """A .npy.gz of zeros that claims 10^8 x 10 float64 (8 GB)."""
    head = npy("(100000000, 10)", b"")
    return gz(head + bytes(80 << 20), 1)


def bomb_jsonl():
    """One JSON line of 80 MiB of spaces: a bomb the line limit also sees."""
    return gz(b"{" + b" " * (80 << 20) + b"}\n", 9)


DENSE_BLOCK, DENSE_BLOCKS = 60000, 70


def dense_csv():
    """~70 MB of random top-label rows, gzipped about 2.5:1: real data past
    the 64 MiB grace, which must stream.  A block repeats only after more
    than deflate's 32 KiB window, so it cannot be matched."""
    rng = np.random.default_rng(1)
    conf = rng.uniform(size=DENSE_BLOCK)
    hit = rng.uniform(size=DENSE_BLOCK) < conf
    block = "".join("%.17g,%d\n" % (c, h) for c, h in zip(conf, hit)).encode()
    return gz(b"confidence,correct\n" + block * DENSE_BLOCKS, 1)
