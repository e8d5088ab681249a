#!/usr/bin/env python3
"""ref_sklearn.py — the scikit-learn references, timed in-process.

    ref_sklearn.py width DIR   sklearn.calibration.calibration_curve
                               (strategy='uniform', 15 bins) + the usual
                               manual ECE/MCE over its bins
    ref_sklearn.py nll DIR     sklearn.metrics.log_loss on
                               scipy.special.softmax of 10^6 x 10 logits,
                               + a numpy Brier on the same probabilities
                               (scikit-learn 1.2 has no multiclass Brier)

calibration_curve returns the per-bin accuracy and mean confidence of the
non-empty bins but not their counts, so the ECE weights come from the same
binning it uses (searchsorted over linspace's interior edges + bincount),
as hand-written ECEs on top of it do.  Timing protocol: ref_numpy.best_of.
"""
import os
import sys

import numpy as np
from scipy.special import softmax
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_numpy import M, best_of, emit, load_logits, load_top, row  # noqa: E402


def sklearn_width(conf, correct):
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=M,
                                             strategy="uniform")
    edges = np.linspace(0.0, 1.0, M + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], conf), minlength=M)
    counts = counts[counts > 0]
    n = len(conf)
    gap = np.abs(prob_true - prob_pred)
    return {"n": float(n), "accuracy": float(correct.mean()),
            "ece": float(np.sum(counts / n * gap)), "mce": float(gap.max()),
            "rmsce": float(np.sqrt(np.sum(counts / n * gap * gap))),
            "n_bins": float(len(counts))}


def mode_width(d):
    conf, correct = load_top(d)
    t, v = best_of(lambda: sklearn_width(conf, correct))
    emit("width", [row("sklearn calibration_curve + manual ECE", t, v)])


def sklearn_nll(z32, y):
    q = softmax(z32.astype(np.float64), axis=1)
    k = q.shape[1]
    nll = log_loss(y, q, labels=np.arange(k))
    q[np.arange(len(y)), y] -= 1.0
    brier = np.mean(np.sum(q * q, axis=1))
    return {"nll": float(nll), "brier": float(brier)}


def mode_nll(d):
    z, y = load_logits(os.path.join(d, "logits_1000000x10.npy"),
                       os.path.join(d, "labels_1000000x10.npy"))
    t, v = best_of(lambda: sklearn_nll(z, y))
    emit("nll", [row("sklearn softmax + log_loss (+ numpy Brier)", t, v)])


def main(argv):
    if len(argv) == 3 and argv[1] in ("width", "nll"):
        {"width": mode_width, "nll": mode_nll}[argv[1]](argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
