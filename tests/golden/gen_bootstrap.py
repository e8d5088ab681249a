#!/usr/bin/python3
"""gen_bootstrap.py OUTDIR — golden cases for calib's bootstrap intervals.

Writes OUTDIR/bootstrap_cases.json.  The replicate generator is written
here again from its definition in include/calib.h (splitmix64's output
function, state = mix(seed ^ mix(r)), Lemire's multiply-and-reject draw),
in plain Python integers; each replicate's rows are the drawn rows
(np.repeat by the counts), evaluated by gen_metrics.metrics (numpy, the
same independent transcription the metric cases use), and the interval is
np.percentile of the replicate values with numpy's default method.  So
nothing here comes from calib: if the C generator, the replicate
evaluation or the quantile rule drifted from the header, the cases fail.
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_metrics as gm  # noqa: E402

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
METRICS = ["accuracy", "mean_confidence", "ece", "mce", "rmsce", "nll",
           "brier"]


def mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def counts(seed, r, n):
    """Multiplicities of replicate r's n draws from n rows (calib.h)."""
    state = mix(seed ^ mix(r))
    reject_below = ((1 << 64) - n) % n
    c = np.zeros(n, dtype=np.int64)
    for _ in range(n):
        while True:
            state = (state + GAMMA) & M64
            m = mix(state) * n
            if (m & M64) >= reject_below:
                break
        c[m >> 64] += 1
    return c


def percentile_ci(values, level):
    v = np.asarray([x for x in values if x is not None and not np.isnan(x)])
    if len(v) == 0:
        return [None, None]
    lo, hi = np.percentile(v, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return [float(lo), float(hi)]


def replicate_rows(rows, c):
    out = {}
    for k, v in rows.items():
        out[k] = np.repeat(v, c, axis=0) if isinstance(v, np.ndarray) else v
    return out


def values(rows, opt):
    if len(rows["conf"]) == 0:
        return {k: np.nan for k in METRICS}
    e = gm.metrics(rows, opt)
    return {k: np.nan if e[k] is None else e[k] for k in METRICS}


def rows_of(kind, conf=None, correct=None, scores=None, labels=None,
            weights=None):
    if kind == "toplabel":
        rows = {"conf": np.clip(conf, 0, 1), "correct": correct, "nll": None}
        n = len(conf)
    else:
        p, cor, nll, brier, clipped, _ = gm.project(kind, scores, labels)
        rows = {"conf": p, "correct": cor, "nll": nll, "brier": brier,
                "clipped": clipped}
        n = len(labels)
    rows["w"] = np.ones(n) if weights is None else np.asarray(weights, float)
    return rows


def interval_case(name, kind, opt, level, R, seed, groups=None, names=None,
                  dtype="f64", **data):
    rows = rows_of(kind, **data)
    n = len(rows["conf"])
    pops = {"": None}
    if groups is not None:
        rows["g"] = np.asarray(groups)
        for gi, gname in enumerate(names):
            pops[gname] = gi
    reps = {p: {k: [] for k in METRICS} for p in pops}
    for r in range(R):
        rr = replicate_rows(rows, counts(seed, r, n))
        for p, gi in pops.items():
            sub = rr if gi is None else gm.subset(rr, rr["g"] == gi)
            v = values(sub, opt)
            for k in METRICS:
                reps[p][k].append(v[k])
    expected = {p: {k: percentile_ci(reps[p][k], level) for k in METRICS}
                for p in pops}
    case = {"name": name, "kind": kind, "dtype": dtype, "options": opt,
            "level": level,
            "resamples": R, "seed": str(seed), "n": n,
            "expected": expected[""],
            "groups_expected": {p: expected[p] for p in pops if p}}
    for k, v in data.items():
        if v is not None:
            case[k] = gm.tolist(v) if k in ("conf", "scores", "weights") \
                else np.asarray(v).ravel().tolist()
    if kind != "toplabel":
        case["k"] = int(np.asarray(data["scores"]).shape[1])
    if groups is not None:
        case["groups"] = np.asarray(groups).tolist()
        case["group_names"] = names
    return case


def paired_case(rng):
    """Logits A and the same logits at T = 1.7 as B: B - A per metric."""
    n, k, R, seed, level = 240, 5, 120, 99, 0.9
    za = rng.normal(0, 2.5, (n, k))
    y = rng.integers(0, k, n)
    za[np.arange(n), y] += 1.5
    zb = za / 1.7
    ra, rb = rows_of("logits", scores=za, labels=y), \
        rows_of("logits", scores=zb, labels=y)
    opt = gm.opt(10)
    diffs = {m: [] for m in METRICS}
    for r in range(R):
        c = counts(seed, r, n)
        va = values(replicate_rows(ra, c), opt)
        vb = values(replicate_rows(rb, c), opt)
        for m in METRICS:
            diffs[m].append(vb[m] - va[m])
    fa, fb = values(ra, opt), values(rb, opt)
    exp = {}
    for m in METRICS:
        d = np.asarray(diffs[m])
        exp[m] = {"diff": fb[m] - fa[m], "ci": percentile_ci(d, level),
                  "p_le_0": float(np.mean(d <= 0))}
    return {"name": "paired_temperature", "n": n, "k": k, "resamples": R,
            "seed": str(seed), "level": level, "options": opt,
            "a": gm.tolist(za), "b": gm.tolist(zb), "labels": y.tolist(),
            "expected": exp}


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "build/golden"
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(6)
    out = {"counts": [], "intervals": []}
    for seed, r, n in [(0, 0, 10), (M64, 5, 7), (12345, 999, 1),
                       ((1 << 63) + 5, 3, 1000), (42, 1 << 40, 33)]:
        out["counts"].append({"seed": str(seed), "r": str(r), "n": n,
                              "counts": counts(seed, r, n).tolist()})
    n = 300
    conf = rng.uniform(0.3, 1.0, n)
    cor = (rng.uniform(size=n) < conf - 0.05).astype(np.uint8)
    g = rng.integers(0, 3, n)
    out["intervals"].append(interval_case(
        "toplabel_groups", "toplabel", gm.opt(15), 0.9, 200, 7, groups=g,
        names=["alpha", "beta", "gamma"], conf=conf, correct=cor))
    z = rng.normal(0, 2, (250, 4))
    y = rng.integers(0, 4, 250)
    w = rng.uniform(0.5, 2.0, 250)
    out["intervals"].append(interval_case(
        "logits_weighted", "logits", gm.opt(10), 0.95, 150, (1 << 63) + 11,
        scores=z, labels=y, weights=w))
    # float32 confidences (an LLM eval's), read exactly as doubles here
    out["intervals"].append(interval_case(
        "toplabel_mass_f32", "toplabel", gm.opt(10, "mass"), 0.5, 120, 3,
        groups=g[:200], names=["alpha", "beta", "gamma"], dtype="f32",
        conf=conf[:200].astype(np.float32).astype(np.float64),
        correct=cor[:200]))
    out["paired"] = paired_case(rng)
    with open(os.path.join(outdir, "bootstrap_cases.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
