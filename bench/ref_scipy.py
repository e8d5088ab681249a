#!/usr/bin/env python3
"""ref_scipy.py — the SciPy temperature fit, timed in-process.

    ref_scipy.py fit LOGITS LABELS

scipy.optimize.minimize_scalar(method='bounded') (Brent's method on an
interval, default xatol = 1e-5) over T in [0.05, 20], on the NLL of
softmax(z / T) written in numpy: mean(logsumexp(z / T) - z_y / T) in
float64 (scipy.special.logsumexp).  The float32 -> float64 conversion of
the logits is inside the timed region.  Timing protocol: ref_numpy.best_of.
"""
import os
import sys

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_numpy import best_of, emit, load_logits, row  # noqa: E402

BOUNDS = (0.05, 20.0)


def scipy_fit(z32, y):
    z = z32.astype(np.float64)
    zy = z[np.arange(len(y)), y]

    def nll(t):
        return np.mean(logsumexp(z / t, axis=1) - zy / t)

    r = minimize_scalar(nll, bounds=BOUNDS, method="bounded")
    return {"T": float(r.x), "iterations": float(r.nfev),
            "objective": float(r.fun)}


def main(argv):
    if len(argv) != 4 or argv[1] != "fit":
        sys.exit(__doc__)
    z, y = load_logits(argv[2], argv[3])
    t, v = best_of(lambda: scipy_fit(z, y), budget=6.0, min_reps=1,
                   max_reps=10)
    emit("fit", [row("scipy minimize_scalar bounded [%g, %g]" % BOUNDS, t, v,
                     "iterations = NLL evaluations")])


if __name__ == "__main__":
    main(sys.argv)
