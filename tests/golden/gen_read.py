#!/usr/bin/python3
"""gen_read.py OUTDIR — fixtures for the readers (tests/test_read_*.c).

Writes OUTDIR/read/: .npy files in every supported dtype, byte order and
format version (numpy's own writer, numpy.lib.format.write_array), broken
ones (truncated, lying or overflowing shape, object dtype, bad magic), CSV
and TSV files (BOM, CRLF, quoting, gzip, ...), and OUTDIR/read.json with
what numpy and Python's float() say the files hold.  Nothing here comes
from calib.
"""
import decimal
import gzip
import json
import math
import os
import random
import struct
import sys

import numpy as np
import numpy.lib.format as npf

OUT = os.path.join(sys.argv[1], "read")
os.makedirs(OUT, exist_ok=True)
GOLD = {}


def path(name):
    return os.path.join(OUT, name)


def save(name, arr, version=(1, 0)):
    with open(path(name), "wb") as f:
        npf.write_array(f, np.asanyarray(arr), version=version,
                        allow_pickle=False)


def raw_npy(name, header, data=b"", version=1):
    """A .npy with a hand-written header dict (padded, '\\n'-terminated)."""
    h = header.encode("latin1")
    pre = 10 if version == 1 else 12
    total = (pre + len(h) + 1 + 63) // 64 * 64
    h = h + b" " * (total - pre - len(h) - 1) + b"\n"
    ln = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    with open(path(name), "wb") as f:
        f.write(b"\x93NUMPY" + bytes([version, 0]) + ln + h + data)


def f64_list(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


# ---------------------------------------------------------------- .npy

VALUES = {
    "f2": [[-0.5, 65504.0, 2.0 ** -24], [1.0, 0.0, -2.0], [3.25, 1e-3, 7.0],
           [-65504.0, 0.1, 0.2]],
    "f4": [[1.1, -2.5, 3e-38], [1e30, 0.0, -1.0], [0.1, 0.2, 0.3],
           [7.0, 8.0, 9.0]],
    "f8": [[1.1, -2.5, 1e-310], [1e300, 0.0, -1.0], [0.1, 0.2, 0.3],
           [math.pi, math.e, -1e-300]],
    "i1": [[-128, 127, 0], [1, -1, 5], [2, 3, 4], [100, -100, 50]],
    "i2": [[-32768, 32767, 0], [1, -1, 5], [2, 3, 4], [1000, -1000, 500]],
    "i4": [[-2 ** 31, 2 ** 31 - 1, 0], [1, -1, 5], [2, 3, 4],
           [10 ** 9, -10 ** 9, 12345]],
    "i8": [[-2 ** 63, 2 ** 63 - 1, 0], [1, -1, 5], [2 ** 53 + 1, 3, 4],
           [10 ** 15, -10 ** 15, 12345]],
    "u1": [[0, 255, 1], [2, 3, 4], [5, 6, 7], [128, 64, 32]],
    "u2": [[0, 65535, 1], [2, 3, 4], [5, 6, 7], [40000, 64, 32]],
    "u4": [[0, 2 ** 32 - 1, 1], [2, 3, 4], [5, 6, 7], [3 * 10 ** 9, 64, 32]],
    "u8": [[0, 2 ** 64 - 1, 1], [2, 3, 4], [2 ** 53 + 1, 6, 7],
           [10 ** 19, 64, 32]],
}
LABELS4 = [0, 1, 2, 0]


def gen_dtypes():
    cases = []
    for dt, vals in VALUES.items():
        for order in "<>":
            for ver in (1, 2, 3):
                a = np.array(vals, dtype=np.dtype(order + dt))
                name = "m_%s_%s_v%d.npy" % (dt, "le" if order == "<" else "be",
                                            ver)
                save(name, a, (ver, 0))
                cases.append({"file": name, "dtype": order + dt,
                              "values": f64_list(a),
                              "f32": dt in ("f2", "f4")})
    GOLD["dtypes"] = cases
    save("labels4.npy", np.array(LABELS4, dtype="<i8"))
    labels = []
    for dt in ("i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"):
        for order in "<>":
            name = "l_%s_%s.npy" % (dt, "le" if order == "<" else "be")
            save(name, np.array(LABELS4, dtype=np.dtype(order + dt)))
            labels.append(name)
    GOLD["label_files"] = labels
    GOLD["labels4"] = LABELS4
    save("l_half.npy", np.array([0.5, 1, 2, 0], dtype="<f8"))
    save("l_big.npy", np.array([0, 2 ** 40, 2, 0], dtype="<i8"))
    save("l_3rows.npy", np.array([0, 1, 2], dtype="<i8"))


def gen_layouts():
    rng = np.random.default_rng(7)
    for dt in ("<f8", "<f4", ">f8"):
        a = np.asfortranarray(rng.normal(size=(5, 3)).astype(dt))
        name = "fortran_%s.npy" % dt[1:]
        save(name, a)
        GOLD["fortran_" + dt[1:]] = f64_list(np.ascontiguousarray(a))
    save("labels5.npy", np.array([0, 1, 2, 1, 0], dtype="<i8"))
    m = rng.normal(size=(6, 4)).astype("<f4")
    save("map_f4.npy", m)
    save("map_f8.npy", m.astype("<f8"))
    save("map_f8_be.npy", m.astype(">f8"))
    GOLD["map_f4"] = f64_list(m)
    save("labels6.npy", np.array([0, 1, 2, 3, 0, 1], dtype="<u2"))
    with open(path("map_f4.npy"), "rb") as f:
        raw = f.read()
    with gzip.open(path("gz_f4.npy.gz"), "wb") as f:
        f.write(raw)


def gen_toplabel():
    conf = np.array([0.1, 0.9, 0.5, 1.0, 0.0])
    corr = [1, 0, 1, 1, 0]
    save("conf5.npy", conf)
    save("corr_b1.npy", np.array(corr, dtype="|b1"))
    save("corr_u1.npy", np.array(corr, dtype="|u1"))
    save("corr_i8.npy", np.array(corr, dtype=">i8"))
    save("corr_f8.npy", np.array(corr, dtype="<f8"))
    save("corr_bad.npy", np.array([1, 0, 2, 1, 0], dtype="|i1"))
    GOLD["conf5"] = f64_list(conf)
    GOLD["corr5"] = corr


def gen_broken():
    a = np.arange(30, dtype="<f8").reshape(10, 3)
    save("trunc.npy", a)
    with open(path("trunc.npy"), "rb") as f:
        raw = f.read()
    with open(path("trunc.npy"), "wb") as f:
        f.write(raw[:-7])
    raw_npy("lying.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 10), }",
            a.tobytes())
    raw_npy("overflow.npy",
            "{'descr': '<f8', 'fortran_order': False, "
            "'shape': (4611686018427387904, 4611686018427387904), }", b"")
    raw_npy("three_d.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 2), }",
            np.zeros(8).tobytes())
    raw_npy("extra_key.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), "
            "'x': 1, }", np.zeros(4).tobytes())
    raw_npy("v2_hand.npy",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }",
            np.array([1.0, 2.0, 3.0, 4.0]).tobytes(), version=2)
    save("labels2.npy", np.array([1, 0], dtype="<i4"))
    with open(path("object.npy"), "wb") as f:
        np.save(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with open(path("badmagic.npy"), "wb") as f:
        f.write(b"NOTNUMPY" + b"\0" * 120)
    n = np.array([[0.0, 1, 2], [3, 4, 5], [6, np.nan, 8], [9, 10, 11],
                  [12, 13, np.inf]])
    save("nan.npy", n)
    GOLD["nan_row"], GOLD["nan_col"] = 3, 2
    p = np.array([[0.5, 0.5], [1.0000005, -0.0000005], [0.5, 0.50002],
                  [0.25, 0.75]])
    save("probs_off.npy", p)
    save("labels_p4.npy", np.array([0, 0, 1, 1], dtype="<u2"))
    GOLD["probs_off"] = {"values_clamped": 2, "rows_sum_off": 1}


def gen_written():
    """What calib_write_probs must write for map_f4.npy as logits."""
    z = np.load(path("map_f4.npy")).astype(np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    GOLD["softmax_map_f4"] = f64_list(e / e.sum(axis=1, keepdims=True))


def shared_dir():
    env = os.environ.get("CALIB_SHARED")
    for d in ([env] if env else []) + ["../shared/data", "../../shared/data"]:
        if os.path.exists(os.path.join(d, "densenet40-cifar10-logits")):
            return d
    return None


def gen_real():
    d = shared_dir()
    if not d:
        return
    real = {}
    c = os.path.join(d, "cleanlab-crossval-probs")
    for ds in ("imdb", "cifar10", "mnist", "20news"):
        p = np.load(os.path.join(c, ds + "_test_set_pyx.npy"))
        y = np.load(os.path.join(c, ds + "_test_set_original_labels.npy"))
        s = np.zeros(p.shape[0])
        for j in range(p.shape[1]):      # sequential, as the row check sums
            s = s + p[:, j]
        off = np.abs(s - 1.0)
        clamped = int(((p < 0) & (p >= -1e-3)).sum() +
                      ((p > 1) & (p <= 1 + 1e-3)).sum())
        real[ds] = {"n": int(p.shape[0]), "k": int(p.shape[1]),
                    "rows_sum_off": int(((off > 1e-6) & (off <= 1e-3)).sum()),
                    "values_clamped": clamped,
                    "label_sum": int(y.astype(np.int64).sum()),
                    "label_dtype": y.dtype.str}
    v = np.load(os.path.join(d, "densenet40-cifar10-logits", "logits_val.npy"))
    yv = np.load(os.path.join(d, "densenet40-cifar10-logits", "labels_val.npy"))
    real["densenet_val"] = {"n": int(v.shape[0]), "k": int(v.shape[1]),
                            "row0": f64_list(v[0]), "last": f64_list(v[-1]),
                            "label_sum": int(yv.sum())}
    import csv
    with open(os.path.join(d, "mmlu-pro-llm-confidence", "gpt-4.1-nano.csv"),
              newline="") as f:
        rows = list(csv.DictReader(f))
    real["mmlu_nano"] = {
        "n": len(rows),
        "conf_sum": math.fsum(float(r["Verbal Numerical Confidence"])
                              for r in rows),
        "correct": sum(float(r["Accuracy"]) == 1.0 for r in rows)}
    with open(os.path.join(d, "top1-confidence-imagenet-cifar10",
                           "cifar10_markus93_densenet40.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    real["top1_cifar"] = {
        "n": len(rows),
        "conf_sum": math.fsum(min(1.0, float(r["confidence"])) for r in rows),
        "correct": sum(r["pred_label"] == r["true_label"] for r in rows)}
    GOLD["real"] = real


# ---------------------------------------------------------------- CSV

def write(name, text, mode="w"):
    if mode == "wb":
        with open(path(name), "wb") as f:
            f.write(text)
        return
    with open(path(name), mode, newline="", encoding="utf-8") as f:
        f.write(text)


def gen_csv_basic():
    write("basic.csv", "confidence,correct\n0.9,1\n0.2,0\n0.55,1\n")
    write("bom_crlf.csv", "\ufeffconfidence,correct\r\n0.9,1\r\n0.2,0\r\n"
          "0.55,1\r\n", "w")
    write("truefalse.csv", "conf,is_correct\n0.9,True\n0.2,FALSE\n"
          "0.55,1.0\n0.3,0\n0.7,true\n")
    GOLD["truefalse"] = [1, 0, 1, 0, 1]
    write("badcorrect.csv", "conf,correct\n0.9,1\n0.2,maybe\n")
    write("predlabel.csv", "true_label,pred_label,confidence\n3,3,0.9\n"
          "1,2,0.6\n0,0,1.0\n7,1,0.3\n")
    GOLD["predlabel"] = {"conf": [0.9, 0.6, 1.0, 0.3], "correct": [1, 0, 1, 0]}
    rows = "".join("%r\t%r\t%r\t%d\n" % (a, b, c, y) for a, b, c, y in
                   [(1.5, -2.0, 0.25, 0), (0.0, 3.5, -1e-3, 1),
                    (2e10, 1e-10, 7.0, 2)])
    tsv = "logit_0\tlogit_1\tlogit_2\tlabel\n" + rows
    write("logits.tsv", tsv)
    GOLD["logits_tsv"] = {"scores": [1.5, -2.0, 0.25, 0.0, 3.5, -1e-3,
                                     2e10, 1e-10, 7.0], "labels": [0, 1, 2]}
    with gzip.open(path("logits.tsv.gz"), "wt", newline="") as f:
        f.write(tsv)
    csv_text = tsv.replace("\t", ",")
    with gzip.open(path("logits.csv.gz"), "wt", newline="") as f:
        f.write(csv_text)
    # gzip whatever the name says, and two concatenated gzip members
    with gzip.open(path("secretly_gzip.csv"), "wt", newline="") as f:
        f.write(csv_text)
    half = csv_text.index("\n", len(csv_text) // 2) + 1
    with open(path("members.csv.gz"), "wb") as f:
        f.write(gzip.compress(csv_text[:half].encode()))
        f.write(gzip.compress(csv_text[half:].encode()))
    write("glob.csv", "id,a_0,a_1,a_2,y,a_x_note\n"
          "r1,0.1,0.2,0.7,2,hello\nr2,0.6,0.3,0.1,0,x\n")
    GOLD["glob"] = {"scores": [0.1, 0.2, 0.7, 0.6, 0.3, 0.1], "labels": [2, 0],
                    "list_scores": [0.7, 0.1, 0.2, 0.1, 0.6, 0.3]}


def gen_csv_quoting():
    write("quoted.csv",
          'subject,confidence,correct\n'
          '"a,b",0.9,1\n'
          '"say ""hi""",0.8,0\n'
          '"multi\nline",0.7,1\n'
          'plain,0.6,1\n'
          '"a,b",0.5,0\n'
          '"",0.4,1\n'
          'plain,abc,1\n')
    GOLD["quoted"] = {"groups": ["a,b", 'say "hi"', "multi\nline", "plain", ""],
                      "index": [0, 1, 2, 3, 0, 4], "bad_line": 9,
                      "bad_row": 7}
    write("groupweight.csv", "conf,correct,domain,w\n0.9,1,math,1\n"
          "0.8,0,law,2.5\n0.7,1,math,0\n0.6,1,\u00e9t\u00e9,1\n")
    GOLD["groupweight"] = {"groups": ["math", "law", "\u00e9t\u00e9"],
                           "index": [0, 1, 0, 2], "weights": [1, 2.5, 0, 1]}
    write("badweight.csv", "conf,correct,w\n0.9,1,1\n0.8,0,-1\n")
    write("badutf8.csv", b"conf,correct,g\n0.9,1,ok\n0.8,0,\xc3\x28\n", "wb")
    write("badcount.csv", "confidence,correct,x\n0.9,1,a\n0.8,0,b\n0.7,1\n")
    write("toomany.csv", "confidence,correct\n0.9,1\n0.8,0,5\n")
    write("badnum.csv", "confidence,correct\n0.9,1\nabc,0\n")
    write("nanrows.csv", "confidence,correct\n0.9,1\nnan,0\n0.5,1\n"
          "1.5,0\ninf,1\n0.2,0\n")
    GOLD["nanrows"] = {"used": 3, "rejected": 3, "first_bad_line": 3}
    write("longline.csv", "confidence,correct\n0.9,1\n" + "0." + "1" * 2000
          + ",1\n0.5,0\n")
    write("empty.csv", "")
    write("header_only.csv", "confidence,correct\n")
    write("unclosed.csv", 'g,confidence,correct\n"abc,0.9,1\n')
    rnd = random.Random(11)
    names = ["alpha", "beta", "gamma", "delta", "epsilon"]
    rows, groups = [], []
    for i in range(100):
        g = names[rnd.randrange(5)] if i > 3 else names[4 - i]
        c = rnd.random()
        rows.append("%s,%r,%d\n" % (g, c, rnd.randrange(2)))
        groups.append(g)
    write("stream.csv", "domain,confidence,correct\n" + "".join(rows))
    order = []
    for g in groups:
        if g not in order:
            order.append(g)
    GOLD["stream"] = {"n": 100, "groups": order}


def random_decimal(rnd):
    nd = rnd.randint(1, 20)
    digits = "".join(rnd.choice("0123456789") for _ in range(nd))
    dot = rnd.randint(0, nd)
    s = digits[:dot] + "." + digits[dot:] if rnd.random() < 0.8 else digits
    if s == ".":
        s = "0."
    if rnd.random() < 0.6:
        s += rnd.choice("eE") + rnd.choice(["", "+", "-"]) + \
            str(rnd.randint(0, 330))
    return rnd.choice(["", "-", "+"]) + s


def gen_decimals():
    rnd = random.Random(2024)
    texts = ["0", "-0", "1e-400", "4.9406564584124654e-324",
             "2.2250738585072011e-308", "9007199254740993", "0.1", "1.5e22",
             "123456789012345678901234567890", "1.7976931348623157e308",
             ".5", "5.", "7e22", "1e23", "8.589973e9", "2.5e-324"]
    while len(texts) < 20000:
        t = random_decimal(rnd)
        if math.isfinite(float(t)):
            texts.append(t)
    bits = [struct.unpack("<q", struct.pack("<d", float(t)))[0] for t in texts]
    write("decimals.csv", "logit_0,label\n" + "".join(t + ",0\n" for t in texts))
    GOLD["decimals"] = {"n": len(texts), "bits": bits}


def percent_value(text):
    """Python's float() of the decimal before the '%' with its exponent
    lowered by 2 (digits kept exactly: no decimal context rounds them):
    the double nearest to the decimal / 100."""
    sign, digits, exp = decimal.Decimal(text.strip()[:-1].strip()).as_tuple()
    return float(str(decimal.Decimal((sign, digits, exp - 2))))


def random_percent(rnd):
    nd = rnd.randint(1, 25)
    digits = "".join(rnd.choice("0123456789") for _ in range(nd))
    point = rnd.randint(0, min(nd, 2))  # at most 2 integer digits: <= 100
    s = digits[:point] + "." + digits[point:] if point < nd else digits
    if s.startswith("."):
        s = "0" + s
    if rnd.random() < 0.15:
        s += "e0" if rnd.random() < 0.5 else "E-0"
    return rnd.choice(["", " "]) + s + rnd.choice(["", " ", "\t"]) + "%" + \
        rnd.choice(["", " "])


def gen_percent():
    """Confidences written as percentages: the confidence column only."""
    rnd = random.Random(85)
    texts = ["85%", "85.5 %", "100%", "0%", " 7.25% ", "33.3%", "0.1%",
             "1e1%", "12.345678901234567890123%", "99.99999999999999999999%",
             "50 % ", "5.%", ".5%", "+42%", "100.05%"]
    while len(texts) < 3000:
        t = random_percent(rnd)
        if percent_value(t) <= 1.0:
            texts.append(t)
    values = [percent_value(t) for t in texts]
    # cases where dividing the rounded double by 100 rounds differently:
    # the reason calib shifts the exponent instead
    naive = [float(t.strip()[:-1].strip()) / 100 for t in texts]
    differ = [i for i, (v, w) in enumerate(zip(values, naive)) if v != w]
    assert differ, "no double-rounding case among the percentages"
    rows = "".join("%s,%d\n" % (t, i % 2) for i, t in enumerate(texts))
    write("percent.csv", "confidence,correct\n" + rows + "0.25,1\n")
    GOLD["percent"] = {
        "n": len(texts) + 1,
        "bits": [struct.unpack("<q", struct.pack("<d", min(v, 1.0)))[0]
                 for v in values + [0.25]],
        "double_rounding_rows": differ,
        "clamped": sum(v > 1.0 for v in values)}
    # the same '%' in any other column is not a number
    write("pct_probs.csv", "prob_0,prob_1,label\n0.5,0.5,0\n50%,50%,1\n")
    write("pct_logits.csv", "logit_0,logit_1,label\n1,2,0\n1%,2,1\n")
    write("pct_label.csv", "confidence,pred,label\n90%,1,1\n90%,1%,1\n")
    write("pct_correct.csv", "confidence,correct\n90%,1\n90%,100%\n")
    write("pct_weight.csv", "conf,correct,w\n90%,1,1\n90%,1,50%\n")
    write("pct_over.csv", "confidence,correct\n90%,1\n150%,1\n")


gen_dtypes()
gen_layouts()
gen_toplabel()
gen_broken()
gen_real()
gen_csv_basic()
gen_csv_quoting()
gen_decimals()
gen_percent()
gen_written()
with open(os.path.join(sys.argv[1], "read.json"), "w") as f:
    json.dump(GOLD, f)
