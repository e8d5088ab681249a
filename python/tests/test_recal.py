"""test_recal.py — calib.fit(method=...) for every recalibrator: the
parameters against the golden cases of tests/golden/gen_recal.py
(scikit-learn and scipy), apply(), params, to_json/from_json."""
import json
import unittest

import numpy as np

import calib
from helpers import load_golden

METHODS = ["temperature", "platt", "vector", "histogram", "isotonic", "beta"]


def expit(x):
    return 1 / (1 + np.exp(-x))


class Recal(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(8)
        self.z = rng.normal(0, 2.5, (1200, 5))
        self.y = rng.integers(0, 5, 1200)
        self.y[::2] = np.argmax(self.z[::2], axis=1)

    def test_golden_platt_beta_vector(self):
        g = load_golden("recal.json")
        if g is None:
            self.skipTest("golden cases not built (make golden)")
        for key, names in (("platt", "ab"), ("beta", "abc")):
            for cs in g[key]:
                cal = calib.fit(conf=np.array(cs["conf"]),
                                correct=np.array(cs["correct"]), method=key)
                want = [cs[n] for n in names]
                np.testing.assert_allclose(cal.params, want, rtol=1e-6, atol=1e-9)
                self.assertTrue(cal.toplabel)
                self.assertLessEqual(cal.objective_value, cs["nll"] * (1 + 1e-10))
        for cs in g["vector"]:
            z = np.array(cs["logits"]).reshape(-1, cs["k"])
            cal = calib.fit(logits=z, labels=np.array(cs["labels"]), method="vector")
            np.testing.assert_allclose(cal.params, cs["scale"] + cs["bias"],
                                       rtol=1e-5, atol=1e-5)
            self.assertFalse(cal.toplabel)

    def test_apply_every_method(self):
        conf = np.exp(self.z).max(axis=1) / np.exp(self.z).sum(axis=1)
        for m in METHODS:
            cal = calib.fit(logits=self.z, labels=self.y, method=m)
            self.assertEqual(cal.method, m)
            q = cal.apply(logits=self.z, labels=self.y)
            if m in ("temperature", "vector"):
                self.assertEqual(q.shape, self.z.shape)
                np.testing.assert_allclose(q.sum(axis=1), 1, atol=1e-12)
            else:
                self.assertEqual(q.shape, (1200,))
            if m == "platt":
                a, b = cal.params
                lg = np.log(conf) - np.log1p(-conf)
                np.testing.assert_allclose(q, expit(a * lg + b), rtol=1e-12)
            if m == "isotonic":
                order = np.argsort(conf)
                self.assertTrue(np.all(np.diff(q[order]) >= 0))
            back = calib.Calibrator.from_json(cal.to_json())
            self.assertEqual(back.method, m)
            np.testing.assert_array_equal(back.params, cal.params)
            self.assertIn(m, json.loads(cal.to_json())["method"])

    def test_temperature_only_attribute(self):
        cal = calib.fit(logits=self.z, labels=self.y, method="platt")
        self.assertTrue(np.isnan(cal.temperature))
        cal = calib.fit(logits=self.z, labels=self.y)
        self.assertEqual(cal.params[0], cal.temperature)

    def test_errors(self):
        with self.assertRaises(calib.CalibError) as e:
            calib.fit(logits=self.z, labels=self.y, method="magic")
        self.assertEqual(e.exception.code, calib.EINVAL)
        with self.assertRaises(calib.CalibError) as e:
            calib.fit(conf=np.full(4, 0.7), correct=[1, 0, 1, 1], method="vector")
        self.assertEqual(e.exception.code, calib.EINVAL)
        with self.assertRaises(calib.CalibError) as e:
            calib.Calibrator.from_json('{"method": "platt", "platt": {"a": 1}}')
        self.assertEqual(e.exception.code, calib.EDATA)
        self.assertIn("platt.b", str(e.exception))

    def test_histogram_options(self):
        cal = calib.fit(logits=self.z, labels=self.y, method="histogram",
                        hist_bins=5, hist_binning="mass")
        self.assertLessEqual(len(cal.params), 11)


if __name__ == "__main__":
    unittest.main()
