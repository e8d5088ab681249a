#!/usr/bin/python3
"""gen_extra.py OUTDIR — golden cases for the metrics beyond the bins.

Writes OUTDIR/extra_cases.json: a list of cases (rows, options, expected
values), every expected value computed here, independently of calib:
  - ece_over/ece_under, the Brier decomposition and its within-bin gap:
    numpy over explicit bins;
  - ece_debiased_l2: a transcription of Kumar et al.'s unbiased_square_ce /
    unbiased_l2_ce (calibration/utils.py), one bin at a time;
  - auroc: sklearn.metrics.roc_auc_score (with sample_weight);
  - aurc, HELM's selective_cov_acc_area and selective_acc_at_10, accuracy at
    coverage and coverage at risk: the rows expanded (integer weights
    repeated), then for every k = 1..N the expected error count of the top
    k rows with ties in random order, by direct enumeration of k; for a
    tiny case HELM's get_selective_stats literally, averaged over every
    order of the tied rows;
  - smece: the paper's definition as direct sums over rows (reflected
    Gaussian kernel with its images, trapezoid over 4001 points in t) and
    scipy.optimize.brentq for the fixed point;
  - classwise_ece: per-class ECE over explicit bins, averaged.
Real data from ../shared/data (when present) are embedded as rows.
"""
import itertools
import json
import math
import os
import sys

import numpy as np
from scipy.optimize import brentq
from sklearn.metrics import roc_auc_score

# ---------------------------------------------------------------- bins


def width_bins(p, m):
    """sklearn rule: (e_b, e_b+1], p = 0 in bin 0."""
    edges = np.arange(m + 1, dtype=np.float64) / m
    return np.searchsorted(edges[1:-1], p, side="left"), m


def mass_bins(p, m):
    """calib's equal-mass edges: sorted, np.array_split, midpoints, 1.0."""
    s = sorted(p.tolist())
    parts = np.array_split(s, min(m, len(s)))
    e = [(parts[i][-1] + parts[i + 1][0]) / 2.0 for i in range(len(parts) - 1)]
    edges = np.array(sorted(set(e + [1.0])))
    b = np.minimum(np.searchsorted(edges, p, side="left"), len(edges) - 1)
    return b, len(edges)


def bin_stats(p, c, w, b, nb):
    W = np.array([w[b == i].sum() for i in range(nb)])
    conf = np.array([(w * p)[b == i].sum() for i in range(nb)])
    hit = np.array([(w * c)[b == i].sum() for i in range(nb)])
    ok = W > 0
    return W, np.where(ok, conf / np.where(ok, W, 1), 0), \
        np.where(ok, hit / np.where(ok, W, 1), 0), ok


def kumar_unbiased_l2(p, c, b, nb):
    """unbiased_square_ce then unbiased_l2_ce, on unweighted rows."""
    binned = [[(p[i], c[i]) for i in range(len(p)) if b[i] == j]
              for j in range(nb)]
    n = sum(len(x) for x in binned)
    total = 0.0
    for data in binned:
        if len(data) < 2:
            err = 0.0
        else:
            d = np.array(data)
            biased = abs(np.mean(d[:, 0]) - np.mean(d[:, 1])) ** 2
            ml = np.mean(d[:, 1])
            err = biased - ml * (1.0 - ml) / (len(data) - 1.0)
        total += len(data) / n * err
    return max(total, 0.0) ** 0.5


def bin_metrics(p, c, w, b, nb):
    W, conf, acc, ok = bin_stats(p, c, w, b, nb)
    tot = w.sum()
    gap = conf - acc
    over = np.sum(np.where(ok & (gap > 0), W / tot * gap, 0))
    under = np.sum(np.where(ok & (gap < 0), -W / tot * gap, 0))
    a = (w * c).sum() / tot
    rel = np.sum(np.where(ok, W / tot * gap ** 2, 0))
    res = np.sum(np.where(ok, W / tot * (acc - a) ** 2, 0))
    unc = a * (1 - a)
    # Stephenson et al. 2008: the terms the decomposition leaves out
    within = np.sum(w * ((p - conf[b]) ** 2 - 2 * (p - conf[b]) * (c - acc[b])))
    brier = np.sum(w * (p - c) ** 2) / tot
    assert abs(brier - (rel - res + unc + within / tot)) < 1e-12
    return {"ece_over": over, "ece_under": under, "brier_reliability": rel,
            "brier_resolution": res, "brier_uncertainty": unc}, \
        brier - (rel - res + unc)

# ---------------------------------------------------------------- selective


def expand(p, c, w):
    """Rows repeated by their integer weights."""
    r = np.repeat(np.arange(len(p)), w.astype(np.int64))
    return p[r], c[r]


def expected_errors_topk(p, c):
    """err[k-1] = expected wrong rows among the k most confident, ties in
    random order (a run of c_r rows with e_r wrong contributes j e_r/c_r
    after its first j rows)."""
    n = len(p)
    vals = np.unique(p)[::-1]
    err = np.zeros(n)
    k, above = 0, 0.0
    for v in vals:
        sel = p == v
        cr, er = sel.sum(), (1 - c[sel]).sum()
        for j in range(1, cr + 1):
            err[k] = above + j * er / cr
            k += 1
        above += er
    return err


def selective(p, c, w, coverage, risk):
    pe, ce = expand(p, c, w)
    n = len(pe)
    err = expected_errors_topk(pe, ce)
    k = np.arange(1, n + 1)
    riskk = err / k
    out = {"aurc": float(np.mean(riskk)),
           "selective_cov_acc_area": float(np.mean(1 - riskk))}
    i10 = int(0.1 * n)
    out["selective_acc_at_10"] = float(1 - riskk[i10])
    acc_cov = []
    for cv in coverage:
        kk = min(n, max(1, int(round(cv * n)) if abs(cv * n - round(cv * n))
                        < 1e-9 else math.ceil(cv * n)))
        acc_cov.append(float(1 - riskk[kk - 1]))
    cov_risk = []
    for r in risk:
        good = np.nonzero(riskk <= r * (1 + 1e-12))[0]
        cov_risk.append(float((good[-1] + 1) / n) if len(good) else 0.0)
    if 0 < c.sum() and c.sum() < len(c):
        out["auroc"] = float(roc_auc_score(c, p, sample_weight=w))
    else:
        out["auroc"] = None
    return out, acc_cov, cov_risk


def helm_selective_stats(probs, correct):
    """HELM / Kumar get_selective_stats, literally."""
    idx = np.argsort(-probs, kind="stable")
    sc = correct[idx]
    accs = np.cumsum(sc) / np.arange(1, len(sc) + 1)
    return float(np.mean(accs)), float(accs[int(0.1 * len(sc))])


def helm_tie_average(p, c):
    """HELM's two numbers averaged over every order of the tied rows."""
    groups = [np.nonzero(p == v)[0] for v in np.unique(p)[::-1]]
    orders = [list(itertools.permutations(g)) for g in groups]
    area, a10, count = 0.0, 0.0, 0
    for combo in itertools.product(*orders):
        order = np.concatenate([np.array(x) for x in combo])
        sc = c[order]
        accs = np.cumsum(sc) / np.arange(1, len(sc) + 1)
        area += np.mean(accs)
        a10 += accs[int(0.1 * len(sc))]
        count += 1
    return area / count, a10 / count

# ---------------------------------------------------------------- smooth ECE


def smece_sigma(p, c, w, s, t):
    r = w * (p - c) / w.sum()
    g = np.zeros_like(t)
    reach = int(math.ceil((1.0 + 9.0 * s) / 2.0))  # images within 9 s
    for k in range(-reach, reach + 1):
        for sign in (1.0, -1.0):
            z = (t[:, None] - sign * p[None, :] + 2 * k) / s
            g += (np.exp(-0.5 * z * z) / (math.sqrt(2 * math.pi) * s)) @ r
    return np.trapz(np.abs(g), t)


def smece(p, c, w):
    t = np.linspace(0.0, 1.0, 4001)
    f = lambda s: smece_sigma(p, c, w, s, t) - s
    lo, hi = 2.0 ** -12, 1.0
    if f(hi) >= 0:
        return smece_sigma(p, c, w, hi, t), hi
    if f(lo) <= 0:
        return smece_sigma(p, c, w, lo, t), lo
    s = brentq(f, lo, hi, xtol=1e-10, rtol=1e-10)
    return smece_sigma(p, c, w, s, t), s

# ---------------------------------------------------------------- classwise


def classwise(q, y, w, m):
    eces = []
    for k in range(q.shape[1]):
        b, nb = width_bins(q[:, k], m)
        W, conf, acc, ok = bin_stats(q[:, k], (y == k).astype(float), w, b, nb)
        eces.append(np.sum(np.where(ok, W / w.sum() * np.abs(acc - conf), 0)))
    return float(np.mean(eces))

# ---------------------------------------------------------------- cases


def top_case(name, p, c, w=None, bins=15, binning="width", smooth=True,
             coverage=(0.1, 0.5, 0.7, 0.9, 1.0), risk=(0.0, 0.05, 0.2, 0.5),
             groups=None):
    p = np.asarray(p, dtype=np.float64)
    c = np.asarray(c, dtype=np.int64)
    wa = np.ones(len(p)) if w is None else np.asarray(w, dtype=np.float64)
    case = {"name": name, "kind": "top", "conf": p.tolist(),
            "correct": c.tolist(), "bins": bins, "binning": binning,
            "coverage": list(coverage), "risk": list(risk)}
    if w is not None:
        case["weights"] = wa.tolist()
    case["expect"], case["acc_at_cov"], case["cov_at_risk"], \
        case["brier_gap"] = expect_top(p, c, wa, bins, binning, smooth,
                                       coverage, risk, w is None)
    if groups is not None:
        g = np.asarray(groups)
        case["groups"] = g.tolist()
        case["group_names"] = ["g%d" % i for i in range(g.max() + 1)]
        order = list(dict.fromkeys(g.tolist()))
        case["group_expect"] = [expect_top(p[g == i], c[g == i], wa[g == i],
                                           bins, binning, smooth, coverage,
                                           risk, w is None)[0] for i in order]
    return case


def expect_top(p, c, w, bins, binning, smooth, coverage, risk, unweighted):
    b, nb = (width_bins if binning == "width" else mass_bins)(p, bins)
    e, gap = bin_metrics(p, c.astype(float), w, b, nb)
    pe, ce = expand(p, c.astype(float), w)
    be, _ = (width_bins if binning == "width" else mass_bins)(pe, bins)
    if binning == "mass":
        be = np.minimum(np.searchsorted(
            mass_edges(p, bins), pe, side="left"), nb - 1)
    e["ece_debiased_l2"] = kumar_unbiased_l2(pe, ce, be, nb)
    s, acc_cov, cov_risk = selective(p, c, w, coverage, risk)
    e.update(s)
    if smooth:
        e["smece"], e["smece_bandwidth"] = smece(p, c.astype(float), w)
    return e, acc_cov, cov_risk, gap


def mass_edges(p, m):
    s = sorted(p.tolist())
    parts = np.array_split(s, min(m, len(s)))
    e = [(parts[i][-1] + parts[i + 1][0]) / 2.0 for i in range(len(parts) - 1)]
    return np.array(sorted(set(e + [1.0])))


def dist_case(name, z, y, kind="logits", bins=15, smooth=False):
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if kind == "logits":
        # the confidence is 1/s, s = sum_k exp(z_k - z_max) added class by
        # class (calib.h's log-sum-exp); the bits matter, for they decide
        # which rows tie (many DenseNet rows round to exactly 1)
        e = np.exp(z - z.max(axis=1)[:, None])
        s = np.zeros(len(z))
        for j in range(z.shape[1]):
            s = s + e[:, j]
        q = e / s[:, None]
        p = 1.0 / s
    else:
        q = z
        p = q.max(axis=1)
    c = (np.argmax(q, axis=1) == y).astype(np.int64)
    w = np.ones(len(y))
    case = {"name": name, "kind": kind, "k": z.shape[1],
            "scores": z.ravel().tolist(), "labels": y.tolist(), "bins": bins,
            "binning": "width", "coverage": [0.5, 0.9], "risk": [0.05, 0.2]}
    case["expect"], case["acc_at_cov"], case["cov_at_risk"], \
        case["brier_gap"] = expect_top(p, c, w, bins, "width", smooth,
                                       case["coverage"], case["risk"], True)
    case["brier_gap"] = None  # brier is the multiclass score here
    case["expect"]["classwise_ece"] = classwise(q, y, w, bins)
    return case


def synthetic(rng):
    cases = []
    n = 400
    p = rng.uniform(0.2, 1.0, n)
    c = (rng.uniform(size=n) < p ** 1.5).astype(int)
    cases.append(top_case("distinct", p, c))
    pt = np.round(p, 2)  # many ties
    cases.append(top_case("ties", pt, c, groups=rng.integers(0, 3, n)))
    cases.append(top_case("ties_mass", pt, c, binning="mass", smooth=False))
    w = rng.integers(0, 4, n)  # zero weights too
    cases.append(top_case("int_weights", pt, c, w=w))
    cases.append(top_case("all_correct", pt[:50], np.ones(50, int)))
    cases.append(top_case("all_wrong", pt[:50], np.zeros(50, int)))
    cases.append(top_case("one_row", [0.7], [1]))
    cases.append(top_case("one_row_per_bin", [0.05, 0.5, 0.95, 0.96],
                          [0, 1, 0, 1], bins=10))
    cases.append(top_case("offset", np.clip(p, 0.3, 0.9),
                          (rng.uniform(size=n) < np.clip(p, 0.3, 0.9) - 0.1)
                          .astype(int)))
    cases.append(top_case("ends", [0.0, 0.0, 1.0, 1.0, 1.0, 0.5],
                          [0, 1, 1, 1, 0, 1]))
    z = rng.normal(0, 2, (300, 5))
    y = np.where(rng.uniform(size=300) < 0.6, np.argmax(z, axis=1),
                 rng.integers(0, 5, 300))
    cases.append(dist_case("logits5", z, y, smooth=True))
    return cases


def tiny_helm(rng):
    """Ties in a tiny set: HELM's stats averaged over every tie order."""
    p = np.array([0.9, 0.9, 0.9, 0.7, 0.7, 0.5, 0.5, 0.5, 0.5, 0.2, 0.2])
    c = np.array([1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1])
    case = top_case("tiny_helm", p, c, smooth=False)
    case["expect"]["selective_cov_acc_area"], \
        case["expect"]["selective_acc_at_10"] = helm_tie_average(p, c)
    d = np.array([0.95, 0.9, 0.8, 0.75, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    dist = top_case("distinct_helm", d, c, smooth=False)
    dist["expect"]["selective_cov_acc_area"], \
        dist["expect"]["selective_acc_at_10"] = helm_selective_stats(d, c)
    return [case, dist]


def shared_dir():
    env = os.environ.get("CALIB_SHARED")
    for d in ([env] if env else []) + ["../shared/data", "../../shared/data"]:
        if os.path.exists(os.path.join(d, "densenet40-cifar10-logits")):
            return d
    return None


def real_cases():
    d = shared_dir()
    if not d:
        return []
    out = []
    dn = os.path.join(d, "densenet40-cifar10-logits")
    z = np.load(os.path.join(dn, "logits_test.npy")).astype(np.float64)
    y = np.load(os.path.join(dn, "labels_test.npy")).astype(np.int64)
    out.append(dist_case("densenet40_test", z, y, smooth=False))
    out.append(dist_case("densenet40_first500", z[:500], y[:500],
                         smooth=True))
    mm = os.path.join(d, "mmlu-pro-llm-confidence", "gpt-4.1-nano.csv")
    a = np.genfromtxt(mm, delimiter=",", skip_header=1, usecols=(2, 3, 6),
                      dtype=None, encoding="utf-8")
    ok = np.array([str(r[2]) == "True" for r in a])
    conf = np.array([float(r[0]) for r in a])[ok]
    cor = np.array([float(r[1]) for r in a])[ok].astype(int)
    out.append(top_case("mmlu_pro_nano_verbal", conf, cor, smooth=False))
    return out


def main():
    outdir = sys.argv[1]
    rng = np.random.default_rng(20260601)
    cases = synthetic(rng) + tiny_helm(rng) + real_cases()
    with open(os.path.join(outdir, "extra_cases.json"), "w") as f:
        json.dump(cases, f, allow_nan=False, default=float)


if __name__ == "__main__":
    main()
