"""test_golden.py — the C tests' golden cases through the binding, and the
binding against scikit-learn and scipy on the same arrays.

The golden cases (build/golden/*.json) are written by tests/golden/gen_*.py
with numpy, scikit-learn and scipy, never by calib: the same case set runs
through the C API (tests/test_*.c), the CLI (tests/cli) and here.
"""
import math
import os
import unittest

import numpy as np

import calib
from helpers import compare_metrics, load_golden, shared_dir

try:
    import scipy.optimize
    import scipy.special
    import sklearn.calibration
    import sklearn.metrics
    HAVE_SK = True
except ImportError:  # pragma: no cover
    HAVE_SK = False

TOL = 1e-12


def case_source(c):
    """The data() keywords of a gen_metrics.py case, in its dtype."""
    dt = np.float32 if c["dtype"] == "f32" else np.float64
    kw = {}
    if c["kind"] == "toplabel":
        kw["conf"] = np.array(c["conf"], dtype=dt)
        kw["correct"] = np.array(c["correct"], dtype=np.uint8)
    else:
        kw[c["kind"]] = np.array(c["scores"], dtype=dt).reshape(c["n"], c["k"])
        kw["labels"] = np.array(c["labels"], dtype=np.int64)
    if "weights" in c:
        kw["weights"] = np.array(c["weights"])
    if "groups" in c:
        kw["groups"] = np.array(c["groups"], dtype=np.int64)
        kw["group_names"] = c["group_names"]
    return kw


class GoldenMetrics(unittest.TestCase):
    """Every case of metrics_cases.json, to 1e-12."""

    @classmethod
    def setUpClass(cls):
        cls.cases = load_golden("metrics_cases.json")

    def setUp(self):
        if self.cases is None:
            self.skipTest("build/golden/metrics_cases.json is missing: "
                          "run `make golden`")

    def test_cases(self):
        for c in self.cases:
            with self.subTest(case=c["name"]):
                o = c["options"]
                got = calib.evaluate(bins=o["bins"], binning=o["binning"],
                                     bin_rule=o["rule"], **case_source(c))
                exp = c["expected"]
                compare_metrics(self, got, exp, TOL)
                self.assertEqual(got["values_clamped"], c["values_clamped"])
                self.assertEqual(got["rows_sum_off"], c["rows_sum_off"])
                self.assertEqual(got["rows_read"], c["n"])
                if "groups" in exp:
                    self.assertEqual(list(got["groups"]), exp["group_order"])
                    for name, g in exp["groups"].items():
                        compare_metrics(self, got["groups"][name], g, TOL,
                                        "%s: " % name)

    def test_threads_bit_identical(self):
        for c in self.cases[:: max(1, len(self.cases) // 8)]:
            o = c["options"]
            runs = [calib.evaluate(bins=o["bins"], binning=o["binning"],
                                   bin_rule=o["rule"], threads=t,
                                   **case_source(c)) for t in (1, 2, 7)]
            self.assertEqual(runs[0], runs[1], c["name"])
            self.assertEqual(runs[0], runs[2], c["name"])


@unittest.skipUnless(HAVE_SK, "scipy/scikit-learn not installed "
                     "(Debian: python3-scipy python3-sklearn)")
class GoldenTemperature(unittest.TestCase):
    """temperature.json: T within 1e-6 of scipy's, as the C tests."""

    @classmethod
    def setUpClass(cls):
        cls.doc = load_golden("temperature.json")

    def setUp(self):
        if self.doc is None:
            self.skipTest("build/golden/temperature.json is missing: "
                          "run `make golden`")

    def test_softmax(self):
        for c in self.doc["softmax"]:
            with self.subTest(case=c["name"]):
                z = np.array(c["logits"]).reshape(c["n"], c["k"])
                y = np.array(c["labels"])
                cal = calib.fit(logits=z, labels=y)
                self.assertLess(abs(cal.temperature / c["t_scipy"] - 1), 1e-6)
                self.assertLessEqual(cal.objective_value,
                                     c["nll_scipy"] * (1 + 1e-12))
                self.assertEqual(cal.objective, "nll")
                self.assertFalse(cal.binary)

    def test_binary(self):
        c = self.doc["binary"]
        cal = calib.fit(conf=np.array(c["conf"]),
                        correct=np.array(c["correct"]))
        self.assertTrue(cal.binary)
        self.assertLess(abs(cal.temperature / c["t_scipy"] - 1), 1e-6)

    def test_ece_objective(self):
        c = self.doc["ece"]
        z = np.array(c["logits"]).reshape(c["n"], c["k"])
        y = np.array(c["labels"])
        cal = calib.fit(logits=z, labels=y, objective="ece")
        self.assertEqual(cal.objective, "ece")
        after = calib.evaluate(cal.apply_data(logits=z, labels=y))
        self.assertLessEqual(after["ece"], c["ece_grid_best"] + 1e-9)


@unittest.skipUnless(HAVE_SK, "scipy/scikit-learn not installed "
                     "(Debian: python3-scipy python3-sklearn)")
class AgainstScikitLearn(unittest.TestCase):
    """The same arrays through calib and scikit-learn/scipy."""

    def setUp(self):
        self.rng = np.random.default_rng(7)

    def test_calibration_curve(self):
        n = 5000
        p = self.rng.uniform(0, 1, n) ** 0.5
        # keep clear of the edges k/15, where sklearn's linspace edges can
        # differ from k/M in their last bit (calib.h says why)
        e = np.arange(16) / 15
        p = p[np.min(np.abs(p[:, None] - e[None, :]), axis=1) > 1e-9]
        c = self.rng.uniform(0, 1, len(p)) < p * 0.85
        got = calib.evaluate(conf=p, correct=c)
        pt, pp = sklearn.calibration.calibration_curve(c, p, n_bins=15)
        bins = [b for b in got["bins"] if b["count"]]
        np.testing.assert_allclose([b["accuracy"] for b in bins], pt,
                                   rtol=0, atol=TOL)
        np.testing.assert_allclose([b["mean_confidence"] for b in bins], pp,
                                   rtol=0, atol=TOL)
        self.assertLess(abs(got["brier"] -
                            sklearn.metrics.brier_score_loss(c, p)), TOL)
        self.assertIsNone(got["nll"])

    def test_log_loss_and_brier(self):
        n, k = 3000, 5
        z = self.rng.normal(0, 2, (n, k))
        y = self.rng.integers(0, k, n)
        q = scipy.special.softmax(z, axis=1)
        got = calib.evaluate(probs=q, labels=y)
        ll = sklearn.metrics.log_loss(y, q, labels=list(range(k)))
        self.assertLess(abs(got["nll"] - ll), TOL * max(1, ll))
        brier = np.mean(np.sum((q - np.eye(k)[y]) ** 2, axis=1))
        self.assertLess(abs(got["brier"] - brier), TOL)
        self.assertEqual(got["brier_kind"], "multiclass")
        # from logits: the same NLL through log-sum-exp, no clipping
        gz = calib.evaluate(logits=z, labels=y)
        self.assertLess(abs(gz["nll"] - ll), 1e-10)
        self.assertEqual(gz["accuracy"], np.mean(np.argmax(z, 1) == y))

    def test_binary_brier(self):
        q1 = self.rng.uniform(0, 1, 2000)
        q = np.stack([1 - q1, q1], axis=1)
        y = (self.rng.uniform(0, 1, 2000) < q1).astype(int)
        got = calib.evaluate(probs=q, labels=y)
        bs = sklearn.metrics.brier_score_loss(y, q1)
        self.assertLess(abs(got["brier"] - 2 * bs), TOL)

    def test_temperature_vs_scipy(self):
        n, k = 4000, 10
        base = self.rng.normal(0, 2, (n, k))
        p = scipy.special.softmax(base, axis=1)
        y = np.array([self.rng.choice(k, p=r) for r in p])
        z = (base * 2.2).astype(np.float32)   # over-confident, float32

        def nll(u):
            s = z.astype(np.float64) / np.exp(u)
            return float(np.mean(scipy.special.logsumexp(s, axis=1)
                                 - s[np.arange(n), y]))
        r = scipy.optimize.minimize_scalar(
            nll, bounds=(math.log(1e-3), math.log(1e3)), method="bounded",
            options={"xatol": 1e-12, "maxiter": 5000})
        cal = calib.fit(logits=z, labels=y)
        self.assertLess(abs(cal.temperature / math.exp(r.x) - 1), 1e-6)
        self.assertLessEqual(cal.objective_value, r.fun * (1 + 1e-12))
        self.assertEqual(cal.diagnostics, [])


class Published(unittest.TestCase):
    """DenseNet-40 on CIFAR-10 (../shared/data), read by calib.read."""

    def setUp(self):
        self.dir = shared_dir()
        if self.dir is None:
            self.skipTest("../shared/data is absent (set CALIB_SHARED)")

    def test_densenet(self):
        d = os.path.join(self.dir, "densenet40-cifar10-logits")
        test = calib.read(os.path.join(d, "logits_test.npy"),
                          labels=os.path.join(d, "labels_test.npy"))
        m = calib.evaluate(test)
        self.assertLess(abs(m["accuracy"] - 0.9242), 1e-12)
        self.assertLess(abs(m["ece"] - 0.055002704373), 1e-7)
        self.assertLess(abs(m["nll"] - 0.430059), 5e-7)
        val = calib.read(os.path.join(d, "logits_val.npy"),
                         labels=os.path.join(d, "labels_val.npy"))
        cal = calib.fit(val)
        # their README: validation after temperature scaling, error 6.18 %,
        # ECE 0.005947, NLL 0.186612 (printed digits: 5e-7)
        after = calib.evaluate(cal.apply_data(val))
        self.assertLess(abs(after["accuracy"] - (1 - 0.0618)), 1e-12)
        self.assertLess(abs(after["ece"] - 0.005947), 5e-7)
        self.assertLess(abs(after["nll"] - 0.186612), 5e-7)
        self.assertEqual(calib.evaluate(cal.apply_data(test))["accuracy"],
                         m["accuracy"])


if __name__ == "__main__":
    unittest.main()
