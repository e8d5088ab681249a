#!/usr/bin/env python3
"""gen.py — makes the benchmark's inputs once, into bench/data/ (gitignored).

    python3 bench/gen.py [DIR]        (default: bench/data next to this file)

Files already present (and made by this version of the generator, see
VERSION below) are kept, so a second `make bench` starts at once.

Top-label rows (10^7): a confidence in float32 and a 0/1 `correct` in uint8,
drawn as an over-confident model's would be: a quarter of the rows sit at
exactly 1.0 (saturated softmax, verbalised "100%"), some at exactly 0, about
one row in twelve sits on a bin edge of 15 bins (float32(k/15)) or on a round
decimal (0.5 .. 0.99: 0.2, 0.4, 0.6, 0.8 are edges of 15 bins too), and the
rest follow a Beta skewed towards 1.  P(correct | p) < p: over-confident.
The same rows are written as a CSV `confidence,correct` (%.9g, which reads
back to the same float32).

Logits for temperature scaling (float32 .npy, int64 labels .npy): for each
row, "true" logits u (Gaussian, one class lifted), a label drawn from
softmax(u) by the Gumbel-max trick, so u is calibrated, and the stored logits
are T0 * u: the NLL-optimal temperature is then close to T0 (1.5 .. 2).
The 10^6 x 10 set also serves the NLL + Brier timing and a %.9g CSV.
"""
import os
import sys

import numpy as np

VERSION = "calib-bench-data 2"
N_TOP = 10_000_000
# (rows, classes, T0, lift of the "signal" class)
LOGIT_SETS = [
    (100_000, 10, 1.6, 3.5),
    (100_000, 100, 1.7, 5.5),
    (10_000, 1000, 1.8, 7.0),
    (1_000_000, 10, 1.75, 3.5),
]
CSV_LOGITS = (1_000_000, 10)


def atomic_save(path, writer):
    tmp = path + ".tmp"
    writer(tmp)
    os.replace(tmp, path)


def save_npy(path, arr):
    def w(tmp):
        with open(tmp, "wb") as f:
            np.save(f, arr)
    atomic_save(path, w)


def top_label_rows(rng, n):
    comp = rng.choice(4, size=n, p=[0.25, 0.001, 0.08, 0.669])
    conf = np.empty(n, dtype=np.float64)
    conf[comp == 0] = 1.0
    conf[comp == 1] = 0.0
    edges = np.concatenate([np.arange(1, 15) / 15.0,
                            [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]])
    m = comp == 2
    conf[m] = rng.choice(edges, size=int(m.sum()))
    m = comp == 3
    conf[m] = 0.1 + 0.9 * rng.beta(4.0, 0.8, size=int(m.sum()))
    conf32 = conf.astype(np.float32)
    p_correct = 0.02 + 0.95 * conf32.astype(np.float64) ** 1.5
    correct = (rng.random(n) < p_correct).astype(np.uint8)
    return conf32, correct


def write_top_csv(path, conf, correct):
    def w(tmp):
        with open(tmp, "w", newline="\n") as f:
            f.write("confidence,correct\n")
            step = 500_000
            for s in range(0, len(conf), step):
                c = conf[s:s + step].astype(np.float64).tolist()
                k = correct[s:s + step].tolist()
                f.write("".join(["%.9g,%d\n" % t for t in zip(c, k)]))
    atomic_save(path, w)


def logit_rows(rng, n, k, t0, lift):
    u = rng.standard_normal((n, k), dtype=np.float32)
    u[np.arange(n), rng.integers(0, k, size=n)] += np.float32(lift)
    g = -np.log(-np.log(rng.random((n, k), dtype=np.float32)
                        .clip(1e-30, 1 - 1e-7)))
    labels = np.argmax(u + g, axis=1).astype(np.int64)
    return (u * np.float32(t0)).astype(np.float32), labels


def write_logits_csv(path, z, y):
    k = z.shape[1]
    fmt = ",".join(["%.9g"] * k) + ",%d\n"

    def w(tmp):
        with open(tmp, "w", newline="\n") as f:
            f.write(",".join("logit_%d" % j for j in range(k)) + ",label\n")
            step = 100_000
            for s in range(0, len(z), step):
                rows = z[s:s + step].astype(np.float64).tolist()
                lab = y[s:s + step].tolist()
                f.write("".join([fmt % (*r, l) for r, l in zip(rows, lab)]))
    atomic_save(path, w)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "data")
    os.makedirs(out, exist_ok=True)
    stamp = os.path.join(out, "VERSION")
    if not (os.path.exists(stamp) and open(stamp).read().strip() == VERSION):
        for name in os.listdir(out):
            os.remove(os.path.join(out, name))
        with open(stamp, "w") as f:
            f.write(VERSION + "\n")
    p = lambda name: os.path.join(out, name)

    if not all(os.path.exists(p(f)) for f in
               ("top_conf.npy", "top_correct.npy", "top.csv")):
        print("gen: %d top-label rows" % N_TOP, flush=True)
        conf, correct = top_label_rows(np.random.default_rng(1), N_TOP)
        save_npy(p("top_conf.npy"), conf)
        save_npy(p("top_correct.npy"), correct)
        print("gen: top.csv", flush=True)
        write_top_csv(p("top.csv"), conf, correct)

    for i, (n, k, t0, lift) in enumerate(LOGIT_SETS):
        zname, yname = "logits_%dx%d.npy" % (n, k), "labels_%dx%d.npy" % (n, k)
        cname = "logits_%dx%d.csv" % (n, k)
        want_csv = (n, k) == CSV_LOGITS
        if all(os.path.exists(p(f)) for f in
               [zname, yname] + ([cname] if want_csv else [])):
            continue
        print("gen: logits %d x %d (T0 = %g)" % (n, k, t0), flush=True)
        z, y = logit_rows(np.random.default_rng(100 + i), n, k, t0, lift)
        save_npy(p(zname), z)
        save_npy(p(yname), y)
        if want_csv:
            print("gen: %s" % cname, flush=True)
            write_logits_csv(p(cname), z, y)


if __name__ == "__main__":
    main()
