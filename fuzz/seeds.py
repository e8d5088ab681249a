#!/usr/bin/python3
"""Writes the seed inputs of every fuzz target into fuzz/corpus/<target>/.

Run from the repository root: /usr/bin/python3 fuzz/seeds.py.  Seeds are
small valid files of each format (and a few edge cases); the fuzzers start
from them.  The files are committed, so that the replay in `make test`
needs no Python; rerunning this script rewrites the same bytes.  The
reproducers of crashes found by fuzzing live next to the seeds, named
crash-*, and are not written here.
"""
import gzip
import io
import json
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def npy(a, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, a, allow_pickle=False)
    else:
        np.lib.format.write_array(b, a, version=version, allow_pickle=False)
    return b.getvalue()


# Flags of fuzz_npy.c: 1 labels, 2 probs, 4 gzip main, 8 gzip companion,
# 16 skip bad rows, 32 no companion, 64/128 chunk size.
def npy_seeds():
    z = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0], [1.0, 1.0, 0.0],
                  [-2.0, 4.0, 0.5]])
    y = np.array([0, 2, 1, 1], dtype=np.int64)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    conf = np.array([0.9, 0.2, 0.55, 1.0, 0.0])
    corr = np.array([True, False, True, True, False])
    put("npy", "logits-f8", bytes([1]) + npy(z) + npy(y))
    put("npy", "logits-f4-chunk1", bytes([1 | 64]) + npy(z.astype("<f4"))
        + npy(y.astype("<i4")))
    put("npy", "logits-f2-be", bytes([1 | 128]) + npy(z.astype(">f2"))
        + npy(y.astype(">i2")))
    put("npy", "probs-f8", bytes([1 | 2]) + npy(p) + npy(y.astype("u1")))
    put("npy", "probs-fortran", bytes([1 | 2]) + npy(np.asfortranarray(p))
        + npy(y))
    put("npy", "probs-gzip", bytes([1 | 2 | 4 | 8]) + npy(p) + npy(y))
    put("npy", "conf-bool", bytes([0]) + npy(conf) + npy(corr))
    put("npy", "conf-f4-u1", bytes([64]) + npy(conf.astype("<f4"))
        + npy(corr.astype("u1")))
    put("npy", "conf-v2", bytes([0]) + npy(conf, (2, 0))
        + npy(corr.astype("<i8"), (3, 0)))
    bad = z.copy()
    bad[1, 1] = np.nan
    put("npy", "logits-nan-skip", bytes([1 | 16 | 64]) + npy(bad) + npy(y))
    put("npy", "labels-out-of-range", bytes([1]) + npy(z)
        + npy(np.array([0, 3, 1, -1])))
    put("npy", "no-companion", bytes([32]) + npy(z))
    put("npy", "empty-rows", bytes([1]) + npy(np.zeros((0, 3)))
        + npy(np.zeros(0, dtype=np.int64)))




# Flags of fuzz_csv.c (byte 0): 1 TSV, 2 gzip, 4 skip bad rows, 8 64-byte
# lines, (columns << 4); byte 1: chunk rows.
def csv_seeds():
    def put_csv(name, flags, chunk, text):
        put("csv", name, bytes([flags, chunk]) + text.encode())
    put_csv("toplabel", 0, 0, "confidence,correct\n0.9,1\n0.2,0\n0.55,true\n"
            "1,1\n0,0\n")
    put_csv("toplabel-named", 1 << 4, 2, "id,confidence,correct\n"
            "a,85%,1\nb,0.3,False\n")
    put_csv("pred-label", 2 << 4, 1, "pred,label\n1,1\n2,0\n0,0\n")
    put_csv("conf-pred-label", 3 << 4, 0, "conf,pred,label\n0.7,1,1\n"
            "0.4,2,0\n")
    put_csv("logits", 4 << 4, 0, "logit_0,logit_1,logit_2,label\n"
            "2.0,0.5,-1,0\n0.1,0.2,3,2\n1e-320,-1e300,4,1\n")
    put_csv("probs-list", 5 << 4, 0, "p0,p1,p2,y\n0.7,0.2,0.1,0\n"
            "0.1,0.1,0.8,2\n0.3333333,0.3333333,0.3333334,1\n")
    put_csv("probs-glob-weights", 6 << 4, 1, "prob_0,prob_1,w,g,label\n"
            "0.9,0.1,2.5,math,0\n0.4,0.6,0,law,1\n0.5,0.5,1,math,1\n")
    put_csv("weights-groups", 7 << 4, 0, "conf,correct,weight,group\n"
            "0.9,1,1,a\n0.6,0,3,b\n")
    put_csv("fixed-group", 8 << 4, 0, "confidence,correct\n0.5,1\n")
    put_csv("quoted", 0, 0, 'confidence,"correct"\r\n"0.5",1\r\n'
            '"0.25","0"\r\n')
    put_csv("quoted-newline", 7 << 4, 0, 'conf,correct,weight,group\n'
            '0.9,1,1,"a,\nb ""c"""\n')
    put_csv("tsv", 1, 0, "confidence\tcorrect\n0.9\t1\n0.1\t0\n")
    put_csv("tsv-gzip", 1 | 2, 0, "logit_a\tlogit_b\tlabel\n1\t2\t1\n")
    put_csv("bom-crlf", 0, 0, "\ufeffconfidence,correct\r\n0.9,1\r\n")
    put_csv("bad-skip", 4, 1, "confidence,correct\n0.9,1\nnan,1\n1.5,0\n"
            "0.5\n0.4,1,2\n0.5,2\n")
    put_csv("bad-fail", 0, 0, "confidence,correct\n0.9,1\n0.9,x\n")
    put_csv("long-line", 8, 0, "confidence,correct\n" + "0" * 80 + ",1\n")
    put_csv("header-only", 0, 0, "confidence,correct\n")
    put_csv("empty", 0, 0, "")
    put_csv("clamped", 0, 0, "confidence,correct\n1.0004,1\n-0.0002,0\n")
    put("csv", "raw-gzip", bytes([0, 0]) + gzip.compress(
        b"confidence,correct\n0.9,1\n", mtime=0))




def fixture_lines(name, count):
    """The first `count` lines of a tests/golden/gen_jsonl.py fixture."""
    import subprocess
    import tempfile
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, os.path.join(
            here, "..", "tests", "golden", "gen_jsonl.py"), d], check=True,
            stdout=subprocess.DEVNULL)
        path = os.path.join(d, "jsonl", name)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read()
    if count is None:
        return data
    return b"".join(data.splitlines(keepends=True)[:count])


# Flags of fuzz_lmeval.c (byte 0): 1 gzip, 2 skip, norm << 2, 16 group
# path, 32 fixed group, 64 detect by content, 128 256-byte lines.
def lmeval_seeds():
    arc = "samples_arc_easy_2024-06-01T10-20-30.123456.jsonl"
    put("lmeval", "arc", bytes([0, 0]) + fixture_lines(arc, 3))
    put("lmeval", "arc-chars-auto", bytes([1 << 2 | 64, 1])
        + fixture_lines(arc, 2))
    put("lmeval", "copa-bytes-gzip", bytes([2 << 2 | 1, 0])
        + fixture_lines("samples_copa_2024-06-02T00-00-00.jsonl", 2))
    put("lmeval", "mutual", bytes([0, 2])
        + fixture_lines("samples_mutual_2024-06-03T00-00-00.jsonl", 2))
    put("lmeval", "gsm8k-generative", bytes([2, 0])
        + fixture_lines("samples_gsm8k_2024-06-03T00-00-00.jsonl", 2))
    put("lmeval", "bad-skip", bytes([2, 1])
        + fixture_lines("samples_bad_2024-06-03T00-00-00.jsonl", 4))
    put("lmeval", "badjson", bytes([0, 0])
        + fixture_lines("samples_badjson_2024-06-03T00-00-00.jsonl", 3))
    put("lmeval", "array-v040", bytes([16 | 32, 0]) + json.dumps([
        {"doc_id": 0, "doc": {"subject": "law"}, "target": 2,
         "arguments": [["Q0", " answer A"], ["Q0", " answer B"],
                       ["Q0", " answer C"]],
         "resps": [[[-0.9, False]], [[-1.8, False]], [[-5.6, False]]],
         "filtered_resps": [[-0.9, False], [-1.8, False], [-5.6, False]],
         "acc": 0.0},
        {"doc_id": 1, "doc": {"subject": "math"}, "target": " answer B",
         "arguments": [["Q1", " answer A"], ["Q1", " answer B"]],
         "resps": [[[-2.5, False]], [[-0.1, True]]],
         "filtered_resps": [[-2.5, False], [-0.1, True]], "acc": 1.0}],
        indent=1).encode())
    put("lmeval", "target-list-dup", bytes([0, 0]) + b"".join(
        json.dumps(x).encode() + b"\n" for x in [
            {"doc_id": 0, "target": [0, 2], "filtered_resps":
             [["-1.5", "False"], ["-0.5", "False"], ["-3", "False"]],
             "acc": 0.0},
            {"doc_id": 0, "target": 1, "filtered_resps":
             [["-1", "False"], ["-2", "False"]], "filter": "other"}]))
    put("lmeval", "empty", bytes([0, 0]))


# Flags of fuzz_openai.c (byte 0): 1 gzip, 2 skip, mode << 2, 32 detect by
# content, correct path << 6; byte 1: chunk | 64 group path | 128 fixed.
def openai_seeds():
    put("openai", "chat", bytes([1 << 6, 0]) + fixture_lines("chat.jsonl", 2))
    put("openai", "chat-answer", bytes([4 << 2 | 1 << 6 | 32, 1])
        + fixture_lines("chat.jsonl", 2))
    put("openai", "legacy-min", bytes([3 << 2 | 2 << 6, 0])
        + fixture_lines("legacy.jsonl", 3))
    put("openai", "batch-product", bytes([1 << 2 | 1 << 6 | 1, 0])
        + fixture_lines("batch_output.jsonl", 2))
    put("openai", "unknown-mean", bytes([2 << 2 | 1 << 6 | 2, 0])
        + fixture_lines("openai_unknown.jsonl", 2))
    put("openai", "vllm", bytes([0, 64 | 3])
        + fixture_lines("vllm.jsonl.gz", 2))
    put("openai", "broken", bytes([1 << 6 | 2, 0])
        + fixture_lines("broken.jsonl", 4))
    put("openai", "small", bytes([4 << 2 | 3 << 6, 128]) + json.dumps(
        {"choices": [{"logprobs": {"content": [
            {"token": "B", "logprob": -0.3, "top_logprobs": [
                {"token": "B", "logprob": -0.3},
                {"token": " A", "logprob": -1.5},
                {"token": "C", "logprob": None}]}]}}],
         "meta": [{"ok": "true"}]}).encode() + b"\n")




def run_calib(args, cwd):
    import subprocess
    calib = os.environ.get("CALIB", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build", "calib"))
    subprocess.run([os.path.abspath(calib)] + args, cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


LOGITS_CSV = ("logit_0,logit_1,logit_2,label,g\n2,0.5,-1,0,a\n0.1,0.2,3,2,b\n"
              "1,1,0,1,a\n-2,4,0.5,1,b\n3,0,0,0,a\n")
TOP_CSV = ("confidence,correct,weight,g\n0.9,1,1,x\n0,0,2,y\n1,1,0.5,x\n"
           "0.45,0,1e30,x\n0.2,1,0,y\n")


def with_files(fn):
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for name, text in (("l.csv", LOGITS_CSV), ("t.csv", TOP_CSV),
                           ("h.csv", "confidence,correct\n")):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.5, 0.0]],
                     dtype="<f4")
        np.save(os.path.join(d, "p.npy"), p)
        np.save(os.path.join(d, "y.npy"), np.array([0, 1, 2]))
        fn(d)


def partial_seeds():
    def make(d):
        runs = {
            "logits-groups": ["l.csv", "--group", "g"],
            "top-torchmetrics": ["t.csv", "--weight", "weight", "--bins",
                                 "5", "--bin-rule", "torchmetrics"],
            "top-hollance": ["t.csv", "--group", "g", "--bin-rule",
                             "hollance", "--bins", "3"],
            "probs-f32-gpleiss": ["p.npy", "--probs", "--labels", "y.npy",
                                  "--bin-rule", "gpleiss", "--bins", "4"],
            "empty": ["h.csv"],
        }
        for name, args in runs.items():
            run_calib(["eval"] + args + ["--partial", "-o", "out.json"], d)
            with open(os.path.join(d, "out.json"), "rb") as f:
                put("partial", name, f.read())
    with_files(make)


def calibrator_seeds():
    def make(d):
        runs = {
            "nll": ["l.csv"],
            "ece-binary": ["t.csv", "--objective", "ece"],
            "brier": ["l.csv", "--objective", "brier"],
        }
        for name, args in runs.items():
            run_calib(["fit"] + args + ["-o", "out.json"], d)
            with open(os.path.join(d, "out.json"), "rb") as f:
                put("calibrator", name, f.read())
    with_files(make)
    put("calibrator", "minimal", '{"method": "temperature", '
        '"temperature": 1.5}')
    put("calibrator", "binary-tiny-t", '{"method": "temperature", '
        '"temperature": 1e-300, "form": "binary", "objective": "ece", '
        '"iterations": -3, "diagnostics": ["a", "b\\u00e9"]}')




# Header of fuzz_metrics.c: [kind | 4 f32 | 8 weights | 16 groups |
# 32 ragged | 64 normalise | 128 raw labels, bins - 1, rule | 8 mass |
# objective << 4 | 64 extra | 128 tile, rows - 1, classes - 1, groups
# (odd: tile)].
def metrics_seeds():
    rng = np.random.default_rng(7)

    def vals(n):
        return bytes(int(x) for x in rng.integers(0, 0xf0, n))

    def raw(x):
        return b"\xf0" + np.float64(x).tobytes()

    put("metrics", "toplabel", bytes([0, 14, 64, 31, 0, 0]) + vals(64))
    put("metrics", "toplabel-f32-weights-groups", bytes(
        [4 | 8 | 16, 9, 3, 19, 0, 0x6c]) + vals(60))
    put("metrics", "logits", bytes([1, 14, 64, 15, 2, 0]) + vals(64))
    put("metrics", "logits-tiled", bytes([1, 14, 1 << 4 | 128, 9, 3, 1])
        + vals(60))
    put("metrics", "probs-normalised-brier", bytes([2 | 64, 9, 2 << 4, 11,
                                                    3, 0]) + vals(60))
    put("metrics", "ragged-mass", bytes([1 | 32, 9, 8 | 64, 7, 0, 0x1b])
        + vals(60))
    put("metrics", "probs-raw-labels", bytes([2 | 64 | 128, 4, 4, 5, 2, 0])
        + vals(30))
    put("metrics", "raw-doubles", bytes([1, 14, 0, 3, 2, 0]) + raw(1e-320)
        + raw(-1e300) + raw(5e-324) + b"\x01" + raw(0.0) + raw(1e308)
        + raw(-1e308) + b"\x00" + raw(float("nan")) + raw(1.0) + raw(2.0)
        + b"\x02" + raw(float("inf")) + raw(0.5) + raw(0.25) + b"\x00")
    put("metrics", "bins-large", bytes([0, 203, 2, 40, 0, 0]) + vals(80))


def main():
    for fn in (npy_seeds, csv_seeds, lmeval_seeds, openai_seeds,
               partial_seeds, calibrator_seeds, metrics_seeds):
        fn()


if __name__ == "__main__":
    sys.exit(main())
