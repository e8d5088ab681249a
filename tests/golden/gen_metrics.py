#!/usr/bin/python3
"""gen_metrics.py OUTDIR — golden cases for calib's metrics and binning.

Writes OUTDIR/metrics_cases.json: a list of cases, each with its input rows
(top-label confidences, logits or probabilities; weights; groups), the
evaluation options, and the expected metrics computed here with numpy,
independently of calib.  Every bin rule is implemented twice here (with
np.searchsorted and with explicit comparisons against the edges k/M) and
the two must agree; equal-mass edges follow Kumar et al.'s get_equal_bins
(sorted + np.array_split).  Where scikit-learn computes the same quantity
(calibration_curve, log_loss on normalised rows, brier_score_loss for two
classes), it is asserted to agree.
"""
import json
import math
import os
import sys

import numpy as np
from scipy.special import logsumexp
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

RULES = ["sklearn", "netcal", "torchmetrics", "gpleiss", "hollance"]
CLIP = 1e-15


def fsum(x):
    return math.fsum(np.asarray(x, dtype=np.float64).ravel().tolist())


# ---------------------------------------------------------------- rows

def project(kind, scores, labels):
    """Top-label view of distribution rows: conf, correct, nll, brier,
    clipped (NLL of probabilities is clipped at 1e-15, rows not
    renormalised)."""
    x = np.asarray(scores, dtype=np.float64)
    n, k = x.shape
    onehot = np.zeros_like(x)
    onehot[np.arange(n), labels] = 1.0
    if kind == "logits":
        lse = logsumexp(x, axis=1)
        q = np.exp(x - lse[:, None])
        nll = lse - x[np.arange(n), labels]
        clipped = np.zeros(n, dtype=bool)
        # softmax's argmax is the logits' argmax; ties go to the first
        pred = np.argmax(x, axis=1)
        conf = np.exp(np.max(x, axis=1) - lse)
    else:
        q = np.clip(x, 0.0, 1.0)
        qy = q[np.arange(n), labels]
        clipped = qy < CLIP
        nll = -np.log(np.maximum(qy, CLIP))
        pred = np.argmax(q, axis=1)
        conf = np.max(q, axis=1)
    brier = np.sum((q - onehot) ** 2, axis=1)
    return conf, (pred == labels).astype(np.uint8), nll, brier, clipped, q


# ---------------------------------------------------------------- bins

def edges_width(m):
    return np.arange(m + 1, dtype=np.float64) / m


def bin_width_searchsorted(p, m, rule):
    """Bin index per row; -1 = in no bin; m = torchmetrics' [1,1] bin."""
    e = edges_width(m)
    if rule in ("sklearn", "gpleiss", "hollance"):
        b = np.searchsorted(e[1:-1], p, side="left")  # (e_b, e_b+1]
        if rule != "sklearn":
            b = np.where(p == 0.0, -1, b)
    elif rule == "netcal":
        b = np.searchsorted(e[1:-1], p, side="right")  # [e_b, e_b+1), 1 -> last
    else:
        b = np.searchsorted(e[1:], p, side="right")  # [e_b, e_b+1), 1 -> m
    return b.astype(np.int64)


def bin_width_explicit(p, m, rule):
    e = edges_width(m)
    b = np.full(len(p), -2, dtype=np.int64)
    for k in range(m):
        lo, hi = e[k], e[k + 1]
        if rule in ("netcal", "torchmetrics"):
            inb = (p >= lo) & (p < hi)
            if rule == "netcal" and k == m - 1:
                inb |= p == 1.0
        else:
            inb = (p > lo) & (p <= hi)
            if rule == "sklearn" and k == 0:
                inb |= p == 0.0
        assert not np.any(b[inb] != -2), "overlapping bins"
        b[inb] = k
    if rule == "torchmetrics":
        b[p == 1.0] = m
    if rule in ("gpleiss", "hollance"):
        b[p == 0.0] = -1
    assert np.all(b != -2), "a row in no bin"
    return b


def kumar_equal_bins(p, m):
    """get_equal_bins of Kumar et al. (verified_calibration/calibration/
    utils.py): sorted, np.array_split, midpoints, 1.0, set()."""
    s = sorted(p.tolist())
    if m > len(s):
        m = len(s)
    parts = np.array_split(s, m)
    bins = [(parts[i][-1] + parts[i + 1][0]) / 2.0 for i in range(len(parts) - 1)]
    bins.append(1.0)
    return np.array(sorted(set(bins)), dtype=np.float64)


def bin_mass(p, edges):
    b = np.searchsorted(edges, p, side="left")  # bisect_left
    return np.minimum(b, len(edges) - 1)


# ---------------------------------------------------------------- metrics

def metrics(rows, opt):
    """Expected calib_metrics of rows (a dict of numpy arrays)."""
    p, c, w = rows["conf"], rows["correct"].astype(np.float64), rows["w"]
    m, rule, binning = opt["bins"], opt["rule"], opt["binning"]
    n = len(p)
    if binning == "width":
        b = bin_width_searchsorted(p, m, rule)
        assert np.array_equal(b, bin_width_explicit(p, m, rule))
        e = edges_width(m)
        nb = m + (rule == "torchmetrics")
        lower = [e[k] if k < m else 1.0 for k in range(nb)]
        upper = [e[k + 1] if k < m else 1.0 for k in range(nb)]
    else:
        edges = kumar_equal_bins(p, m)
        b = bin_mass(p, edges)
        nb = len(edges)
        lower = [edges[k - 1] if k else 0.0 for k in range(nb)]
        upper = edges.tolist()
    W = fsum(w)
    in_ece = np.ones(n, dtype=bool)
    if binning == "width" and rule == "hollance":
        in_ece = b >= 0
    W_ece = fsum(w[in_ece])
    out_bins = {"lower": lower, "upper": upper, "count": [], "weight": [],
                "mean_confidence": [], "accuracy": []}
    ece = mce = ms = 0.0
    for k in range(nb):
        sel = b == k
        wb = fsum(w[sel])
        out_bins["count"].append(int(sel.sum()))
        out_bins["weight"].append(wb)
        if wb > 0:
            conf_b = fsum(w[sel] * p[sel]) / wb
            acc_b = fsum(w[sel] * c[sel]) / wb
            gap = abs(acc_b - conf_b)
            ece += wb / W_ece * gap
            ms += wb / W_ece * gap * gap
            mce = max(mce, gap)
        else:
            conf_b = acc_b = None
        out_bins["mean_confidence"].append(conf_b)
        out_bins["accuracy"].append(acc_b)
    top = rows["nll"] is None
    brier = (p - c) ** 2 if top else rows["brier"]
    return {
        "n": n, "weight": W, "ece_n": int(in_ece.sum()), "n_bins": nb,
        "accuracy": fsum(w * c) / W, "mean_confidence": fsum(w * p) / W,
        "ece": ece, "mce": mce, "rmsce": math.sqrt(ms),
        "nll": None if top else fsum(w * rows["nll"]) / W,
        "nll_clipped_rows": 0 if top else int(rows["clipped"].sum()),
        "brier": fsum(w * brier) / W,
        "bins": out_bins,
    }


def subset(rows, sel):
    return {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in rows.items()}


def expected(rows, opt, groups, names):
    e = metrics(rows, opt)
    if groups is not None:
        e["groups"] = {}
        order = []
        for g in groups.tolist():
            if g not in order:
                order.append(g)
        e["group_order"] = [names[g] for g in order]
        for g in order:
            e["groups"][names[g]] = metrics(subset(rows, groups == g), opt)
    return e


# ---------------------------------------------------------------- checks

def near_edge(p, m):
    e = edges_width(m)
    return np.any(np.abs(p[:, None] - e[None, :]) < 1e-9)


def cross_check_sklearn(rows, opt, exp):
    """calibration_curve's (lo, hi] uniform bins = the sklearn rule."""
    p, c = rows["conf"], rows["correct"]
    if opt["binning"] != "width" or opt["rule"] != "sklearn":
        return
    if rows["weighted"] or near_edge(p, opt["bins"]):
        return  # sklearn's linspace edges can differ from k/M in a last bit
    if len(np.unique(c)) < 2:
        return
    pt, pp = calibration_curve(c, p, n_bins=opt["bins"], strategy="uniform")
    b = exp["bins"]
    acc = [a for a, k in zip(b["accuracy"], b["count"]) if k]
    conf = [a for a, k in zip(b["mean_confidence"], b["count"]) if k]
    assert np.allclose(pt, acc, rtol=0, atol=1e-12), "calibration_curve acc"
    assert np.allclose(pp, conf, rtol=0, atol=1e-12), "calibration_curve conf"


def cross_check_losses(rows, kind, q, labels, exp):
    if rows["weighted"] or kind == "toplabel":
        if kind == "toplabel" and not rows["weighted"]:
            c = rows["correct"]
            bs = brier_score_loss(c, rows["conf"]) if len(np.unique(c)) > 1 else None
            if bs is not None:
                assert abs(bs - exp["brier"]) < 1e-12, "brier_score_loss"
        return
    k = q.shape[1]
    normalised = np.allclose(q.sum(axis=1), 1.0, rtol=0, atol=1e-13)
    if normalised and q[np.arange(len(labels)), labels].min() > 1e-15:
        ll = log_loss(labels, q, labels=list(range(k)))
        assert abs(ll - exp["nll"]) < 1e-12 * max(1, exp["nll"]), "log_loss"
    if k == 2 and normalised:
        bs = brier_score_loss(labels, q[:, 1])
        assert abs(2 * bs - exp["brier"]) < 1e-12, "binary brier x 2"


# ---------------------------------------------------------------- cases

def tolist(a):
    return [float(x) for x in np.asarray(a, dtype=np.float64).ravel()]


def make_case(name, kind, dtype, opt, conf=None, correct=None, scores=None,
              labels=None, weights=None, groups=None, names=None,
              clamped=0, sum_off=0):
    case = {"name": name, "kind": kind, "dtype": dtype, "options": opt,
            "values_clamped": clamped, "rows_sum_off": sum_off}
    cast = np.float32 if dtype == "f32" else np.float64
    if kind == "toplabel":
        conf = np.asarray(conf, dtype=cast).astype(np.float64)
        correct = np.asarray(correct, dtype=np.uint8)
        case.update(n=len(conf), k=0, conf=tolist(conf),
                    correct=correct.tolist())
        p = np.clip(conf, 0.0, 1.0)
        rows = {"conf": p, "correct": correct, "nll": None}
        q = None
    else:
        scores = np.asarray(scores, dtype=cast).astype(np.float64)
        labels = np.asarray(labels, dtype=np.int64)
        case.update(n=len(labels), k=scores.shape[1], scores=tolist(scores),
                    labels=labels.tolist())
        p, cor, nll, brier, clipped, q = project(kind, scores, labels)
        rows = {"conf": p, "correct": cor, "nll": nll, "brier": brier,
                "clipped": clipped}
    n = case["n"]
    rows["weighted"] = weights is not None
    rows["w"] = np.ones(n) if weights is None else np.asarray(weights, float)
    if weights is not None:
        case["weights"] = tolist(weights)
    if groups is not None:
        groups = np.asarray(groups, dtype=np.int64)
        case["groups"] = groups.tolist()
        case["group_names"] = names
    exp = expected(rows, opt, groups, names)
    cross_check_sklearn(rows, opt, exp)
    cross_check_losses(rows, kind, q, labels, exp)
    case["expected"] = exp
    return case


def opt(bins=15, binning="width", rule="sklearn"):
    return {"bins": bins, "binning": binning, "rule": rule}


def edge_confidences():
    """Confidences exactly on and next to edges, 0 and 1."""
    vals = [0.0, 1.0, 0.2, 0.3, 0.7, 0.8, 0.1, 0.5]
    for m in (10, 15):
        for k in range(m + 1):
            e = k / m
            vals += [e, np.nextafter(e, 0.0), np.nextafter(e, 1.0)]
    vals = np.clip(np.array(vals), 0.0, 1.0)
    return np.concatenate([vals, vals[::3]])


def cases_toplabel(rng):
    out = []
    n = 1000
    conf = rng.uniform(0, 1, n) ** 0.5
    cor = (rng.uniform(0, 1, n) < conf * 0.9).astype(np.uint8)
    out.append(make_case("top_f64_random", "toplabel", "f64", opt(),
                         conf=conf, correct=cor))
    out.append(make_case("top_f64_random_m10", "toplabel", "f64", opt(10),
                         conf=conf, correct=cor))
    ec = edge_confidences()
    # mostly right below 0.5 and mostly wrong above: gaps of both signs, so
    # the ECE depends on which bin an edge value goes to
    ecor = ((ec < 0.5) ^ (rng.uniform(0, 1, len(ec)) < 0.2)).astype(np.uint8)
    for rule in RULES:
        for m in (15, 10):
            out.append(make_case(f"top_edges_{rule}_m{m}", "toplabel", "f64",
                                 opt(m, rule=rule), conf=ec, correct=ecor))
    # float32: the fast path, with tiny values (< 2^-18) and exact 0 and 1
    c32 = np.concatenate([rng.uniform(0, 1, 3000) ** 0.3,
                          [0.0, 1.0, 1e-7, 1e-30, 3e-6, 2.0 ** -18, 0.2, 0.8],
                          np.arange(16) / 15.0]).astype(np.float32)
    cor32 = (rng.uniform(0, 1, len(c32)) < 0.8).astype(np.uint8)
    for rule in RULES:
        out.append(make_case(f"top_f32_{rule}", "toplabel", "f32",
                             opt(rule=rule), conf=c32, correct=cor32))
    # values within 1e-3 outside [0,1] are clamped and counted
    cc = np.concatenate([conf[:200], [1.0005, -0.0002, 1.0 + 1e-9]])
    ccor = np.concatenate([cor[:200], [1, 0, 1]])
    out.append(make_case("top_clamped", "toplabel", "f64", opt(),
                         conf=cc, correct=ccor, clamped=3))
    w = rng.uniform(0, 3, n)
    w[::17] = 0.0
    out.append(make_case("top_weighted", "toplabel", "f64", opt(),
                         conf=conf, correct=cor, weights=w))
    out.append(make_case("top_weighted_hollance", "toplabel", "f64",
                         opt(rule="hollance"), conf=np.concatenate([conf, [0, 0]]),
                         correct=np.concatenate([cor, [1, 0]]),
                         weights=np.concatenate([w, [2.0, 0.5]])))
    g = rng.integers(0, 3, n)
    g[0] = 2  # first appearance order: gamma before alpha/beta
    out.append(make_case("top_groups", "toplabel", "f64", opt(),
                         conf=conf, correct=cor, groups=g,
                         names=["alpha", "beta", "gamma"]))
    out.append(make_case("top_groups_f32_weighted", "toplabel", "f32",
                         opt(rule="torchmetrics"), conf=conf, correct=cor,
                         groups=g, names=["alpha", "beta", "gamma"], weights=w))
    return out


def logits_with_ties(rng, n, k, scale):
    z = rng.normal(0, scale, (n, k))
    z[::7, 1] = z[::7, 0] = np.max(z[::7], axis=1) + 0.5  # tie at the top
    return z


def cases_distribution(rng):
    out = []
    for k, dt in ((4, "f64"), (10, "f32")):
        n = 800
        z = logits_with_ties(rng, n, k, 3.0)
        y = rng.integers(0, k, n)
        y[::5] = np.argmax(z[::5], axis=1)
        out.append(make_case(f"logits_k{k}_{dt}", "logits", dt, opt(),
                             scores=z, labels=y))
        out.append(make_case(f"logits_k{k}_{dt}_netcal", "logits", dt,
                             opt(rule="netcal"), scores=z, labels=y))
    # extreme logits: q_label ~ 1e-40 (no clipping from logits)
    z = rng.normal(0, 1, (50, 3))
    z[0] = [100.0, 0.0, -5.0]
    y = rng.integers(0, 3, 50)
    y[0] = 1
    out.append(make_case("logits_extreme", "logits", "f64", opt(),
                         scores=z, labels=y))
    # probabilities with exact 0 and 1, ties, clipped NLL, sums off by < 1e-3
    n, k = 400, 4
    p = rng.dirichlet(np.ones(k) * 0.5, n)
    p[0] = [1, 0, 0, 0]
    p[1] = [0, 1, 0, 0]
    p[2] = [0.5, 0.5, 0, 0]
    p[3] = [0.25, 0.25, 0.25, 0.25]
    p[4] = [0.6, 0.2, 0.2, 0.0]
    p[5] = [0.2, 0.2, 0.6 + 5e-4, 0.0]  # sums to 1.0005: used as given
    y = rng.integers(0, k, n)
    y[1] = 0  # p_label = 0 -> clipped at 1e-15
    y[4] = 3
    out.append(make_case("probs_k4", "probs", "f64", opt(), scores=p,
                         labels=y, sum_off=1))
    out.append(make_case("probs_k4_torch", "probs", "f64",
                         opt(rule="torchmetrics"), scores=p, labels=y,
                         sum_off=1))
    p2 = rng.dirichlet([1, 1], 300)
    y2 = rng.integers(0, 2, 300)
    out.append(make_case("probs_k2", "probs", "f64", opt(10), scores=p2,
                         labels=y2))
    g = rng.integers(0, 4, 400)
    g[0] = 3
    out.append(make_case("probs_k4_groups", "probs", "f32", opt(),
                         scores=p, labels=y, groups=g,
                         names=["d", "c", "b", "a"], sum_off=1))
    return out


def cases_mass(rng):
    out = []
    n = 1000
    conf = rng.uniform(0, 1, n) ** 0.4
    cor = (rng.uniform(0, 1, n) < conf).astype(np.uint8)
    out.append(make_case("mass_random_m10", "toplabel", "f64",
                         opt(10, "mass"), conf=conf, correct=cor))
    ties = rng.choice([0.5, 0.6, 0.9, 1.0, 1.0, 1.0], 500)
    tcor = (rng.uniform(0, 1, 500) < ties).astype(np.uint8)
    out.append(make_case("mass_ties_m15", "toplabel", "f64",
                         opt(15, "mass"), conf=ties, correct=tcor))
    out.append(make_case("mass_m_gt_n", "toplabel", "f64", opt(15, "mass"),
                         conf=[0.9, 0.3, 0.3, 1.0, 0.55, 0.7, 0.0],
                         correct=[1, 0, 1, 1, 0, 1, 0]))
    out.append(make_case("mass_one_row", "toplabel", "f64", opt(15, "mass"),
                         conf=[0.75], correct=[1]))
    g = rng.integers(0, 3, n)
    g[0] = 1
    w = rng.uniform(0, 2, n)
    out.append(make_case("mass_groups_weighted", "toplabel", "f32",
                         opt(10, "mass"), conf=conf, correct=cor, weights=w,
                         groups=g, names=["x", "y", "z"]))
    z = logits_with_ties(rng, 600, 4, 2.0)
    y = rng.integers(0, 4, 600)
    out.append(make_case("mass_logits_k4", "logits", "f64", opt(15, "mass"),
                         scores=z, labels=y))
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "build/golden"
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20240917)
    cases = cases_toplabel(rng) + cases_distribution(rng) + cases_mass(rng)
    with open(os.path.join(outdir, "metrics_cases.json"), "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main()
