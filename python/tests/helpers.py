"""helpers.py — what the binding's tests share: where the golden cases and
the shared real data are, and the comparison of a metrics dict with a
golden case's expected numbers."""
import json
import math
import os

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir))


def golden_path(name):
    """$CALIB_GOLDEN/name, else build/golden/name; None when absent (the
    cases are written by `make golden`)."""
    d = os.environ.get("CALIB_GOLDEN") or os.path.join(ROOT, "build", "golden")
    p = os.path.join(d, name)
    return p if os.path.exists(p) else None


def load_golden(name):
    p = golden_path(name)
    if p is None:
        return None
    with open(p) as f:
        return json.load(f)


def shared_dir():
    """$CALIB_SHARED, else ../shared/data next to the repository, when it
    holds the DenseNet logits; else None."""
    cands = [os.environ.get("CALIB_SHARED"),
             os.path.join(ROOT, os.pardir, "shared", "data")]
    for c in cands:
        if c and os.path.exists(os.path.join(
                c, "densenet40-cifar10-logits", "README.txt")):
            return c
    return None


def close(a, b, tol):
    """a and b agree to tol (absolute, or relative above 1); None and NaN
    stand for a metric that does not apply."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return abs(a - b) <= tol * max(1.0, abs(b))


def compare_metrics(test, got, exp, tol, where=""):
    """Asserts that a calib.evaluate dict matches a gen_metrics.py
    expectation (top level or one group)."""
    for key in ("n", "ece_n", "n_bins", "nll_clipped_rows"):
        test.assertEqual(got[key], exp[key], "%s%s" % (where, key))
    for key in ("weight", "accuracy", "mean_confidence", "ece", "mce",
                "rmsce", "nll", "brier"):
        test.assertTrue(close(got[key], exp[key], tol),
                        "%s%s: %r != %r" % (where, key, got[key], exp[key]))
    bins = exp["bins"]
    test.assertEqual(len(got["bins"]), len(bins["count"]), where + "bins")
    for i, b in enumerate(got["bins"]):
        test.assertEqual(b["count"], bins["count"][i], "%sbin %d" % (where, i))
        for key in ("lower", "upper", "weight", "mean_confidence", "accuracy"):
            test.assertTrue(close(b[key], bins[key][i], tol),
                            "%sbin %d %s: %r != %r"
                            % (where, i, key, b[key], bins[key][i]))
