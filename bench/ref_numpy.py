#!/usr/bin/env python3
"""ref_numpy.py — the numpy references of the benchmark, timed in-process.

    ref_numpy.py width DIR       equal-width ECE/MCE/accuracy, 15 bins, 10^7 rows
    ref_numpy.py mass DIR        equal-mass (Kumar et al.'s get_equal_bins)
    ref_numpy.py nll DIR         NLL + Brier of 10^6 x 10 logits
    ref_numpy.py csv FILE        np.loadtxt and the csv module
    ref_numpy.py nll-at LOGITS LABELS T...   NLL(T) in float64, exactly summed
                                 (the runner's common yardstick for every fit)

Each prints one JSON object {"mode", "rows": [{"impl", "best", "median",
"reps", "values"}]}, the same shape as calib-bench's.  Data are loaded
before any clock starts; each timing is the best of several repetitions
after a warm-up (see best_of).  The other ref_*.py import the helpers here.

Bins follow calib's default rule (scikit-learn's): edges k/M as doubles, bin
b = (e_b, e_{b+1}], p = 0 in bin 0, float32 confidences compared as the
doubles they are, so the numbers should agree with calib's to the last bits
of the sums.
"""
import csv
import json
import math
import os
import statistics
import sys
import time

import numpy as np

M = 15


def best_of(fn, budget=3.0, min_reps=3, max_reps=20, warmup=True):
    """Runs fn once to warm up (unless warmup is False), then as many times
    as fit in `budget` seconds (within [min_reps, max_reps]); returns
    (timing dict, last result)."""
    reps = min_reps
    if warmup:
        t0 = time.perf_counter()
        out = fn()
        first = time.perf_counter() - t0
        reps = max(min_reps, min(max_reps, int(budget / max(first, 1e-9))))
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return {"best": min(ts), "median": statistics.median(ts), "reps": reps}, out


def row(impl, timing, values=None, note=None):
    r = {"impl": impl, **timing, "values": values or {}}
    if note:
        r["note"] = note
    return r


def emit(mode, rows, **extra):
    json.dump({"mode": mode, "rows": rows, **extra}, sys.stdout)
    sys.stdout.write("\n")


def load_top(d):
    conf = np.load(os.path.join(d, "top_conf.npy"))
    correct = np.load(os.path.join(d, "top_correct.npy"))
    return conf, correct


def load_logits(zpath, ypath):
    return np.load(zpath), np.load(ypath)


def bin_metrics(cnt, acc_sum, conf_sum, n):
    """ECE, MCE, RMSCE, accuracy, mean confidence from per-bin sums."""
    nz = cnt > 0
    c = cnt[nz]
    gap = np.abs(acc_sum[nz] / c - conf_sum[nz] / c)
    return {"n": float(n), "accuracy": float(acc_sum.sum() / n),
            "mean_confidence": float(conf_sum.sum() / n),
            "ece": float(np.sum(c / n * gap)), "mce": float(gap.max()),
            "rmsce": float(math.sqrt(np.sum(c / n * gap * gap))),
            "n_bins": float(len(cnt))}


# --- equal width ----------------------------------------------------------

EDGES = np.arange(M + 1, dtype=np.float64) / M     # (double)k / M, as calib


def width_searchsorted(conf, correct):
    # b such that e_b < p <= e_{b+1}: searchsorted over the interior edges
    # ('left': a[i-1] < v <= a[i]); p = 0 lands in 0, p = 1 in M-1.
    b = np.searchsorted(EDGES[1:-1], conf, side="left")
    return width_sums(b, conf, correct)


def width_ceil(conf, correct):
    # candidate ceil(p*M) - 1 in float64, then corrected against the edges
    p = conf.astype(np.float64)
    b = np.ceil(p * M).astype(np.intp)
    b -= 1
    np.clip(b, 0, M - 1, out=b)
    b -= p <= EDGES[b]
    b += p > EDGES[b + 1]
    np.clip(b, 0, M - 1, out=b)
    return width_sums(b, conf, correct)


def _f32_edges():
    """F[k] = the largest float32 <= e_k.  For a float32 p, p <= e_k (as
    doubles) exactly when p <= F[k], so float32 data never need widening."""
    f = EDGES.astype(np.float32)
    return np.where(f.astype(np.float64) > EDGES,
                    np.nextafter(f, np.float32(-1)), f)


F32 = _f32_edges()
LO32 = F32.copy()
LO32[0] = -1.0                        # p = 0 stays in bin 0
HI32 = np.append(F32[1:], np.float32(2.0))


def width_f32(conf, correct):
    # float32 candidate floor(p*M) as int8, one step down when p sits on or
    # below its lower edge, one step up when above its upper edge; small
    # integer types keep every pass short.  Checked against searchsorted
    # on every float32 within 4 ulps of an edge.
    c = (conf * np.float32(M)).astype(np.int8)
    b = c - (conf <= LO32[c])
    b += conf > HI32[b]
    c2 = np.bincount(2 * b + correct.view(np.int8), minlength=2 * M)
    hits = c2[1::2]
    cnt = c2[0::2] + hits
    conf_sum = np.bincount(b, weights=conf, minlength=M)
    return bin_metrics(cnt, hits.astype(np.float64), conf_sum, len(conf))


def width_sums(b, conf, correct):
    # one bincount over 2*b + correct gives count and hits per bin at once
    c2 = np.bincount(2 * b + correct, minlength=2 * M)
    hits = c2[1::2]
    cnt = c2[0::2] + hits
    conf_sum = np.bincount(b, weights=conf, minlength=M)
    return bin_metrics(cnt, hits.astype(np.float64), conf_sum, len(conf))


def mode_width(d):
    conf, correct = load_top(d)
    rows = []
    if conf.dtype != np.float32:
        sys.exit("ref_numpy: top_conf.npy must be float32")
    for name, fn in (("numpy searchsorted + bincount", width_searchsorted),
                     ("numpy f64 ceil-then-correct + bincount", width_ceil),
                     ("numpy f32 floor-then-correct (int8) + bincount",
                      width_f32)):
        t, v = best_of(lambda: fn(conf, correct))
        rows.append(row(name, t, v))
    emit("width", rows)


# --- equal mass -----------------------------------------------------------

def kumar_equal_bins(p, num_bins):
    """Kumar et al. 2019 get_equal_bins, with np.sort for Python's sorted():
    array_split of the sorted values, midpoints between adjacent groups,
    1.0 appended, duplicates dropped."""
    s = np.sort(p)
    num_bins = min(num_bins, len(s))
    groups = np.array_split(s, num_bins)
    mids = [(float(groups[i][-1]) + float(groups[i + 1][0])) / 2.0
            for i in range(num_bins - 1)]
    mids.append(1.0)
    return np.array(sorted(set(mids)))


def partition_equal_bins(p, num_bins):
    """The same edges as kumar_equal_bins without a full sort: only the
    values at the group boundaries of array_split are needed, and
    np.partition puts exactly those in place."""
    n = len(p)
    num_bins = min(num_bins, n)
    q, r = divmod(n, num_bins)
    starts = [i * (q + 1) if i <= r else r * (q + 1) + (i - r) * q
              for i in range(1, num_bins)]
    kth = sorted(set([s - 1 for s in starts] + starts))
    part = np.partition(p, kth)
    mids = [(float(part[s - 1]) + float(part[s])) / 2.0 for s in starts]
    mids.append(1.0)
    return np.array(sorted(set(mids)))


def mass_metrics(conf, correct, equal_bins):
    bins = equal_bins(conf, M)
    nb = len(bins)
    # get_bin = bisect_left(bins, p): (a, b] bins; float32 p compared as
    # the double it is
    b = np.searchsorted(bins, conf, side="left")
    c2 = np.bincount(2 * b + correct, minlength=2 * nb)
    hits = c2[1::2]
    cnt = c2[0::2] + hits
    conf_sum = np.bincount(b, weights=conf, minlength=nb)
    v = bin_metrics(cnt, hits.astype(np.float64), conf_sum, len(conf))
    v["n_bins"] = float(nb)
    return v


def mode_mass(d):
    conf, correct = load_top(d)
    rows = []
    for name, fn in (("numpy Kumar get_equal_bins (np.sort) + searchsorted",
                      kumar_equal_bins),
                     ("numpy same edges via np.partition + searchsorted",
                      partition_equal_bins)):
        t, v = best_of(lambda: mass_metrics(conf, correct, fn))
        rows.append(row(name, t, v))
    emit("mass", rows)


# --- NLL + Brier ----------------------------------------------------------

def nll_brier_scipy(z32, y):
    from scipy.special import logsumexp
    z = z32.astype(np.float64)
    n = len(y)
    ar = np.arange(n)
    lse = logsumexp(z, axis=1)
    zy = z[ar, y]
    q = np.exp(z - lse[:, None])
    brier = np.sum(q * q, axis=1) - 2.0 * q[ar, y] + 1.0
    return {"nll": float(np.mean(lse - zy)), "brier": float(np.mean(brier))}


def nll_brier_fused(z32, y):
    # one exp: q = e / s with e = exp(z - max), lse = max + log s
    z = z32.astype(np.float64)
    ar = np.arange(len(y))
    m = z.max(axis=1)
    e = np.exp(z - m[:, None])
    s = e.sum(axis=1)
    zy = z[ar, y]
    nll = np.mean(m + np.log(s) - zy)
    brier = np.sum(e * e, axis=1) / (s * s) - 2.0 * e[ar, y] / s + 1.0
    return {"nll": float(nll), "brier": float(np.mean(brier))}


def mode_nll(d):
    z, y = load_logits(os.path.join(d, "logits_1000000x10.npy"),
                       os.path.join(d, "labels_1000000x10.npy"))
    rows = []
    for name, fn in (("numpy float64 scipy.special.logsumexp", nll_brier_scipy),
                     ("numpy float64 fused max/exp", nll_brier_fused)):
        t, v = best_of(lambda: fn(z, y))
        rows.append(row(name, t, v))
    emit("nll", rows)


# --- CSV ingest -----------------------------------------------------------

def csv_module(path):
    with open(path, newline="") as f:
        r = csv.reader(f)
        head = next(r)
        if head[-1] == "label":
            zs, ys = [], []
            for rec in r:
                zs.append([float(x) for x in rec[:-1]])
                ys.append(int(rec[-1]))
            return np.array(zs), np.array(ys)
        conf, correct = [], []
        for rec in r:
            conf.append(float(rec[0]))
            correct.append(int(rec[1]))
        return np.array(conf), np.array(correct, dtype=np.uint8)


def mode_csv(path):
    size = os.path.getsize(path)
    with open(path, "rb") as f:          # page cache warm, like calib's warm-up
        while f.read(1 << 24):
            pass
    rows = []
    for name, fn in (("np.loadtxt", lambda: np.loadtxt(path, delimiter=",",
                                                       skiprows=1)),
                     ("csv module", lambda: csv_module(path))):
        # no warm-up beyond the page cache: a run takes seconds
        t, out = best_of(fn, min_reps=2 if name == "np.loadtxt" else 1,
                         warmup=False)
        n = len(out) if not isinstance(out, tuple) else len(out[0])
        rows.append(row("%s %s" % (name, os.path.basename(path)), t,
                        {"bytes": float(size), "rows": float(n),
                         "mb_per_s": size / 1e6 / t["best"]}))
    emit("csv", rows)


# --- NLL at given temperatures (the runner's yardstick) -------------------

def nll_at(z32, y, t):
    """Mean NLL of softmax(z / t), float64, rows summed exactly (fsum)."""
    from scipy.special import logsumexp
    z = z32.astype(np.float64) / t
    per_row = logsumexp(z, axis=1) - z[np.arange(len(y)), y]
    return math.fsum(per_row.tolist()) / len(y)


def mode_nll_at(zpath, ypath, temps):
    z, y = load_logits(zpath, ypath)
    out = {}
    for s in temps:
        t = float(s)
        out[s] = nll_at(z, y, t) if t > 0 and math.isfinite(t) else None
    json.dump({"mode": "nll-at", "nll": out}, sys.stdout)
    sys.stdout.write("\n")


def main(argv):
    if len(argv) == 3 and argv[1] in ("width", "mass", "nll", "csv"):
        {"width": mode_width, "mass": mode_mass, "nll": mode_nll,
         "csv": mode_csv}[argv[1]](argv[2])
    elif len(argv) >= 5 and argv[1] == "nll-at":
        mode_nll_at(argv[2], argv[3], argv[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
