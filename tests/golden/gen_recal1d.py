#!/usr/bin/python3
"""gen_recal1d.py OUTDIR — golden cases for isotonic regression and
histogram binning as recalibration maps, computed here, never by calib.

Isotonic: scikit-learn's IsotonicRegression(out_of_bounds='clip') fitted
with sample_weight; each case keeps its X_thresholds_, y_thresholds_ and
predictions at many points (inside, between, on and outside the fitted
points).  Histogram binning: a numpy transcription of the definition in
src/recal1d.h (edges k/M, or Kumar's equal-mass edges from gen_metrics.py;
(e_b, e_{b+1}] bins by np.searchsorted; per-bin weighted accuracy with
math.fsum; empty bins predict their midpoint), cross-checked against
scipy.stats.binned_statistic, which netcal's HistogramBinning uses, where
no confidence sits on an edge.

Writes OUTDIR/recal1d.json (the C unit tests) and, for CLI-level tests of
`calib fit --method isotonic|histogram` + `calib apply`, OUTDIR/recal1d_cli/
{val.csv,test.csv,expected.json} (see cli_cases()).
"""
import csv
import json
import math
import os
import sys

import numpy as np
from scipy.special import logsumexp
from scipy.stats import binned_statistic
from sklearn.isotonic import IsotonicRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_metrics import edges_width, kumar_equal_bins, bin_mass  # noqa: E402


def shared_dir():
    """../shared/data as the C tests find it (golden.h), or None."""
    cands = [os.environ.get("CALIB_SHARED"), "../shared/data",
             "../../shared/data"]
    return next((d for d in cands if d and os.path.isdir(
        os.path.join(d, "densenet40-cifar10-logits"))), None)


# ---------------------------------------------------------------- isotonic

def predict_points(rng, p, x):
    """Fitted points, midpoints between them, the fitting confidences, a
    grid that runs outside [0,1], and random points."""
    mids = (x[1:] + x[:-1]) / 2 if len(x) > 1 else np.array([])
    grid = np.linspace(-0.1, 1.1, 241)
    pts = np.concatenate([x, mids, p[:300], grid, rng.random(200),
                          [0.0, 1.0, x[0], x[-1]]])
    return pts


def iso_case(rng, name, p, y, w=None):
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    ir = IsotonicRegression(out_of_bounds="clip")
    ir.fit(p, y.astype(np.float64),
           sample_weight=None if w is None else np.asarray(w, np.float64))
    x = ir.X_thresholds_
    pts = predict_points(rng, p, x)
    pred = ir.predict(pts)
    yt = ir.y_thresholds_
    assert np.all(np.diff(x) > 0) and np.all(np.diff(yt) >= 0)
    assert np.all(np.diff(ir.predict(np.sort(pts))) >= 0)
    return {"name": name, "p": p.tolist(), "y": y.tolist(),
            "w": None if w is None else np.asarray(w, np.float64).tolist(),
            "x_thresholds": x.tolist(), "y_thresholds": yt.tolist(),
            "points": pts.tolist(), "predictions": pred.tolist()}


def iso_cases(rng):
    out = []
    p = rng.random(200)
    out.append(iso_case(rng, "random_200", p, rng.random(200) < p ** 2))
    p = np.round(rng.random(500), 2)
    out.append(iso_case(rng, "ties_500", p, rng.random(500) < p))
    p = np.round(rng.random(400), 1)
    w = rng.uniform(0, 3, 400)
    w[rng.random(400) < 0.1] = 0.0
    out.append(iso_case(rng, "weighted_ties_400", p, rng.random(400) < p, w))
    w = rng.integers(0, 4, 300).astype(np.float64)
    p = rng.beta(5, 2, 300)
    out.append(iso_case(rng, "integer_weights_300", p, rng.random(300) < 0.7,
                        w))
    p = rng.random(50)
    out.append(iso_case(rng, "all_zero", p, np.zeros(50, int)))
    out.append(iso_case(rng, "all_one", p, np.ones(50, int)))
    out.append(iso_case(rng, "n1", [0.3], [1]))
    out.append(iso_case(rng, "n2_increasing", [0.2, 0.8], [0, 1]))
    out.append(iso_case(rng, "n2_decreasing", [0.2, 0.8], [1, 0]))
    out.append(iso_case(rng, "n2_same_p", [0.6, 0.6], [1, 0]))
    # p within 1e-15 of a run's first value is pooled with it (sklearn's
    # _make_unique tolerance); 0.5 + 16 ulp is not
    h = 2.0 ** -53
    out.append(iso_case(rng, "near_ties", [0.5, 0.5 + 6 * h, 0.5 + 8 * h,
                                           0.5 + 16 * h, 0.5 + 24 * h, 0.7],
                        [1, 0, 1, 0, 0, 1]))
    p = rng.random(100)
    w = np.ones(100)
    w[np.argmin(p)] = 0.0
    w[np.argmax(p)] = 0.0
    out.append(iso_case(rng, "zero_weight_ends", p, rng.random(100) < p, w))
    p = rng.random(3000) ** 0.3
    out.append(iso_case(rng, "overconfident_3000", p, rng.random(3000) < p ** 3))
    return out + iso_shared(rng)


def densenet_val(d):
    z = np.load(os.path.join(d, "densenet40-cifar10-logits", "logits_val.npy"))
    lab = np.load(os.path.join(d, "densenet40-cifar10-logits", "labels_val.npy"))
    z = z.astype(np.float64)
    q = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    return q.max(axis=1), (np.argmax(z, axis=1) == lab).astype(int)


def mmlu_verbal(d, model):
    p, y = [], []
    with open(os.path.join(d, "mmlu-pro-llm-confidence", model + ".csv")) as f:
        for row in csv.DictReader(f):
            if row["Numerical Success"] == "True":
                p.append(float(row["Verbal Numerical Confidence"]))
                y.append(int(float(row["Accuracy"])))
    return np.array(p), np.array(y)


def iso_shared(rng):
    d = shared_dir()
    if not d:
        return []
    p, y = densenet_val(d)
    out = [iso_case(rng, "densenet40_val", p, y)]
    p, y = mmlu_verbal(d, "gpt-4.1-mini")
    out.append(iso_case(rng, "mmlu_pro_gpt41mini_verbal", p, y))
    return out


# ---------------------------------------------------------------- histogram

def hist_fit(p, y, w, bins, binning):
    """The definition of src/recal1d.h, written with numpy."""
    pos = w > 0
    if binning == "width":
        upper = edges_width(bins)[1:]
    else:
        upper = kumar_equal_bins(p[pos], bins)
    edges = np.concatenate([[0.0], upper])
    b = bin_mass(p, upper)
    vals = []
    for k in range(len(upper)):
        sel = (b == k) & pos
        sw = math.fsum(w[sel].tolist())
        vals.append(math.fsum(w[sel & (y == 1)].tolist()) / sw if sw > 0
                    else (edges[k] + edges[k + 1]) / 2)
    return edges, np.array(vals)


def netcal_like(p, y, bins):
    """netcal's fit: binned_statistic mean over linspace edges, empty bins
    at their midpoint ([lo, hi) bins: agrees with ours off the edges)."""
    e = np.linspace(0.0, 1.0, bins + 1)
    acc = binned_statistic(p, y.astype(np.float64), "mean", bins=e)[0]
    empty = np.isnan(acc)
    acc[empty] = (e[:-1][empty] + e[1:][empty]) / 2
    return acc


def hist_case(rng, name, p, y, w, bins, binning):
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    wv = np.ones(len(p)) if w is None else np.asarray(w, np.float64)
    edges, vals = hist_fit(p, y, wv, bins, binning)
    on_edge = np.isin(p, edges_width(bins))
    if w is None and binning == "width" and not on_edge.any():
        assert np.allclose(netcal_like(p, y, bins), vals, rtol=0, atol=1e-12)
    pts = np.concatenate([edges, (edges[1:] + edges[:-1]) / 2, p[:200],
                          np.linspace(0, 1, 101), rng.random(100)])
    pred = vals[bin_mass(pts, edges[1:])]
    return {"name": name, "p": p.tolist(), "y": y.tolist(),
            "w": None if w is None else wv.tolist(), "bins": bins,
            "binning": binning, "edges": edges.tolist(),
            "values": vals.tolist(), "points": pts.tolist(),
            "predictions": pred.tolist()}


def hist_cases(rng):
    out = []
    p = rng.random(1000)
    y = rng.random(1000) < p ** 2
    out.append(hist_case(rng, "width15", p, y, None, 15, "width"))
    out.append(hist_case(rng, "mass10", p, y, None, 10, "mass"))
    p = rng.beta(8, 1, 300)     # most bins below 0.5 empty
    y = rng.random(300) < 0.8
    out.append(hist_case(rng, "width15_empty_bins", p, y, None, 15, "width"))
    p = np.round(rng.random(400), 1)   # ties and values on the edges k/10
    y = rng.random(400) < p
    w = rng.uniform(0, 2, 400)
    w[rng.random(400) < 0.1] = 0.0
    out.append(hist_case(rng, "width10_edges_weighted", p, y, w, 10, "width"))
    out.append(hist_case(rng, "mass15_ties_weighted", p, y, w, 15, "mass"))
    p = np.concatenate([np.zeros(30), rng.random(70)])
    y = rng.random(100) < 0.5
    out.append(hist_case(rng, "mass10_zeros", p, y, None, 10, "mass"))
    out.append(hist_case(rng, "mass20_n5", [0.9, 0.2, 0.2, 1.0, 0.4],
                         [1, 0, 1, 1, 0], None, 20, "mass"))
    out.append(hist_case(rng, "width1", p, y, None, 1, "width"))
    d = shared_dir()
    if d:
        p, y = densenet_val(d)
        out.append(hist_case(rng, "densenet40_val_width15", p, y, None, 15,
                             "width"))
        out.append(hist_case(rng, "densenet40_val_mass15", p, y, None, 15,
                             "mass"))
    return out


# ---------------------------------------------------------------- CLI cases

def cli_cases(rng, outdir):
    """A small val/test pair as CSV (columns confidence,correct) and what
    `calib fit val.csv --method M` then `calib apply CAL.json test.csv`
    must give: isotonic (sklearn) and histogram (15 width, 10 mass) fitted
    on val, the calibrated confidence of every test row."""
    d = os.path.join(outdir, "recal1d_cli")
    os.makedirs(d, exist_ok=True)
    sets = {}
    for split, n in (("val", 300), ("test", 200)):
        p = np.round(rng.beta(4, 1.5, n), 3)
        y = (rng.random(n) < p ** 2).astype(int)
        sets[split] = (p, y)
        with open(os.path.join(d, split + ".csv"), "w") as f:
            f.write("confidence,correct\n")
            for a, b in zip(p, y):
                f.write("%s,%d\n" % (repr(float(a)), b))
    (pv, yv), (pt, _) = sets["val"], sets["test"]
    ir = IsotonicRegression(out_of_bounds="clip").fit(pv, yv.astype(float))
    exp = {"isotonic": {"x_thresholds": ir.X_thresholds_.tolist(),
                        "y_thresholds": ir.y_thresholds_.tolist(),
                        "test_calibrated": ir.predict(pt).tolist()}}
    for bins, binning in ((15, "width"), (10, "mass")):
        edges, vals = hist_fit(pv, yv, np.ones(len(pv)), bins, binning)
        exp["histogram_%s_%d" % (binning, bins)] = {
            "bins": bins, "binning": binning, "edges": edges.tolist(),
            "values": vals.tolist(),
            "test_calibrated": vals[bin_mass(pt, edges[1:])].tolist()}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "build/golden"
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20250611)
    cases = {"isotonic": iso_cases(rng), "histogram": hist_cases(rng)}
    with open(os.path.join(outdir, "recal1d.json"), "w") as f:
        json.dump(cases, f)
    cli_cases(rng, outdir)


if __name__ == "__main__":
    main()
