#!/usr/bin/python3
"""CLI tests for the recalibrators: `calib fit --method M`, `calib apply`,
`calib eval --calibrator`, `--method all` and `--cv`.

Expected numbers come from scikit-learn and numpy, computed here (never
from calib).  Loaded by tests/cli/run.py, or alone:
    CALIB=build/calib /usr/bin/python3 tests/cli/test_recal.py
"""
import csv
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import warnings

import numpy as np
from scipy.special import expit, softmax
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
DENSENET = os.path.join(ROOT, "..", "shared", "data", "densenet40-cifar10-logits")
METHODS = ["temperature", "platt", "vector", "histogram", "isotonic", "beta"]
EPS = 2.0 ** -52


def run(*args):
    p = subprocess.run([CALIB] + [str(a) for a in args], capture_output=True,
                       timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def run_json(*args):
    rc, out, err = run(*args, "--json")
    if rc:
        raise AssertionError("calib %s: exit %d: %s" % (" ".join(map(str, args)), rc, err))
    return json.loads(out)


def sk_logistic(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-14,
                                max_iter=100000).fit(x, y)
    return lr.coef_[0], lr.intercept_[0]


def logit(p):
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


class Recal(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="calib-recal-")
        rng = np.random.default_rng(31)
        n = 1500
        x = rng.normal(size=n) * 2
        self.conf = expit(1.8 * x)
        self.correct = (rng.random(n) < expit(x)).astype(int)
        self.top = self.path("top.csv")
        with open(self.top, "w") as f:
            f.write("id,confidence,correct,note\n")
            for i in range(n):
                f.write('%d,%.17g,%d,"row ""%d"", ok"\n' % (i, self.conf[i], self.correct[i], i))
        z = rng.normal(size=(n, 4)) * 2.5
        self.y = np.array([rng.choice(4, p=q) for q in softmax(z / 2, axis=1)])
        self.z = z
        np.save(self.path("z.npy"), z)
        np.save(self.path("y.npy"), self.y)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def fit(self, method, *args):
        cal = self.path(method + ".json")
        rc, out, err = run("fit", *args, "--method", method, "-o", cal)
        self.assertEqual(rc, 0, err)
        with open(cal) as f:
            return cal, json.load(f)

    def test_platt_and_beta_against_sklearn(self):
        _, js = self.fit("platt", self.top)
        a, b = sk_logistic(logit(self.conf).reshape(-1, 1), self.correct)
        self.assertAlmostEqual(js["platt"]["a"], a[0], delta=1e-6 * abs(a[0]))
        self.assertAlmostEqual(js["platt"]["b"], b, delta=1e-6)
        self.assertEqual(js["form"], "top-label")
        self.assertEqual(js["fitted_on"], "top-label")
        self.assertIsNone(js["after"]["nll"])
        _, js = self.fit("beta", self.top)
        p = np.clip(self.conf, EPS, 1 - EPS)
        (a, b), c = sk_logistic(np.c_[np.log(p), -np.log1p(-p)], self.correct)
        self.assertTrue(a > 0 and b > 0)   # the abm rule keeps both
        for k, v in zip("abc", (a, b, c)):
            self.assertAlmostEqual(js["beta"][k], v, delta=1e-6 * max(1, abs(v)))

    def test_apply_keeps_csv_columns(self):
        cal, js = self.fit("platt", self.top)
        out = self.path("out.csv")
        rc, _, err = run("apply", cal, self.top, "-o", out)
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "id,confidence,correct,note,calibrated_confidence")
        self.assertEqual(len(lines), 1 + len(self.conf))
        self.assertTrue(lines[1].startswith('0,'))
        self.assertIn('"row ""0"", ok",', lines[1])
        q = np.array([float(l.rsplit(",", 1)[1]) for l in lines[1:]])
        want = expit(js["platt"]["a"] * logit(self.conf) + js["platt"]["b"])
        np.testing.assert_allclose(q, want, rtol=1e-13, atol=0)
        # logits in: top-label out, as an (N,) .npy or confidence,correct
        cal, js = self.fit("platt", self.path("z.npy"), "--labels", self.path("y.npy"))
        self.assertEqual(js["fitted_on"], "distribution")
        rc, _, err = run("apply", cal, self.path("z.npy"), "--labels", self.path("y.npy"),
                         "-o", self.path("q.npy"))
        self.assertEqual(rc, 0, err)
        conf = softmax(self.z, axis=1).max(axis=1)
        want = expit(js["platt"]["a"] * logit(conf) + js["platt"]["b"])
        np.testing.assert_allclose(np.load(self.path("q.npy")), want, rtol=1e-12)

    def test_vector_apply_and_eval(self):
        cal, js = self.fit("vector", self.path("z.npy"), "--labels", self.path("y.npy"))
        a, b = np.array(js["vector"]["scale"]), np.array(js["vector"]["bias"])
        self.assertEqual(len(a), 4)
        rc, _, err = run("apply", cal, self.path("z.npy"), "--labels", self.path("y.npy"),
                         "-o", self.path("v.npy"))
        self.assertEqual(rc, 0, err)
        np.testing.assert_allclose(np.load(self.path("v.npy")),
                                   softmax(self.z * a + b, axis=1), rtol=0, atol=1e-12)
        js = run_json("eval", self.path("z.npy"), "--labels", self.path("y.npy"),
                      "--calibrator", cal)
        self.assertIsNotNone(js["after"]["nll"])
        self.assertLess(js["after"]["nll"], js["before"]["nll"])
        # vector scaling needs distribution rows
        rc, _, err = run("fit", self.top, "--method", "vector")
        self.assertEqual(rc, 64, err)
        self.assertIn("top-label", err)

    def test_isotonic_against_sklearn(self):
        cal, _ = self.fit("isotonic", self.top)
        rc, _, err = run("apply", cal, self.top, "-o", self.path("iso.csv"))
        self.assertEqual(rc, 0, err)
        with open(self.path("iso.csv"), newline="") as f:
            q = np.array([float(r["calibrated_confidence"]) for r in csv.DictReader(f)])
        ref = IsotonicRegression(out_of_bounds="clip").fit(self.conf, self.correct)
        np.testing.assert_allclose(q, ref.predict(self.conf), rtol=0, atol=1e-12)

    def test_every_method_round_trips_through_eval(self):
        for m in METHODS:
            cal, js = self.fit(m, self.path("z.npy"), "--labels", self.path("y.npy"))
            self.assertEqual(js["method"], m)
            ev = run_json("eval", self.path("z.npy"), "--labels", self.path("y.npy"),
                          "--calibrator", cal)
            self.assertEqual(ev["calibrator"]["method"], m)
            # the same rows fitted and judged: in-sample after = eval's after
            self.assertAlmostEqual(ev["after"]["ece"], js["after"]["ece"], delta=1e-15)
            self.assertEqual(ev["accuracy_unchanged"] or m == "vector", True)
            rc, out, err = run("fit", self.path("z.npy"), "--labels", self.path("y.npy"),
                               "--method", m)
            self.assertEqual(rc, 0, err)
            self.assertIn("method", out)

    def test_bad_calibrator_files(self):
        cases = [('{"method":"platt","platt":{"a":1}}', "platt.b"),
                 ('{"method":"beta","beta":{"a":1,"b":"x","c":0}}', "beta.b"),
                 ('{"method":"vector","vector":{"scale":[1,1,1,1],"bias":[0]}}', "vector.bias"),
                 ('{"method":"isotonic"}', "isotonic"),
                 ('{"method":"nope"}', "nope")]
        for text, member in cases:
            with open(self.path("bad.json"), "w") as f:
                f.write(text)
            for args in (["eval", self.top, "--calibrator", self.path("bad.json")],
                         ["apply", self.path("bad.json"), self.top, "-o", self.path("x.csv")]):
                rc, _, err = run(*args)
                self.assertEqual(rc, 65, err)
                self.assertIn(member, err)
                self.assertFalse(os.path.exists(self.path("x.csv")))

    def test_method_all_and_cv(self):
        args = ["--method", "all", "--val", self.top, "--test", self.top]
        js = run_json("fit", *args)
        names = [e["method"] for e in js["methods"]]
        self.assertEqual(names, ["uncalibrated"] + METHODS)
        vec = js["methods"][3]
        self.assertEqual((vec["status"], "metrics" in vec), ("n/a", False))
        self.assertIn("top-label", vec["reason"])
        rc, out, err = run("fit", *args)
        self.assertEqual(rc, 0, err)
        self.assertIn("n/a", out)
        cv = ["fit", self.path("z.npy"), "--labels", self.path("y.npy"), "--cv", 4]
        one = run_json(*cv, "--method", "all", "--seed", 5)
        self.assertEqual(one, run_json(*cv, "--method", "all", "--seed", 5, "--threads", 1))
        self.assertNotEqual(one, run_json(*cv, "--method", "all", "--seed", 6))
        self.assertEqual(one["methods"][1]["method"], "uncalibrated (top-label)")
        js = run_json(*cv, "--method", "histogram", "--seed", 5)
        self.assertEqual(js["cross_fitted"]["folds"], 4)
        self.assertGreater(js["cross_fitted"]["after"]["ece"], js["after"]["ece"])
        rc, _, err = run("fit", "--val", self.top, "--test", self.top, "--cv", 3)
        self.assertEqual(rc, 64, err)
        rc, _, err = run("fit", self.top, "--method", "all")
        self.assertEqual(rc, 64, err)


@unittest.skipUnless(os.path.isdir(DENSENET), "../shared/data not present")
class RecalDensenet(unittest.TestCase):
    def d(self, name):
        return os.path.join(DENSENET, name)

    def test_method_all_lowers_test_ece(self):
        js = run_json("fit", "--method", "all", "--val", self.d("logits_val.npy"),
                      "--val-labels", self.d("labels_val.npy"), "--test",
                      self.d("logits_test.npy"), "--test-labels", self.d("labels_test.npy"))
        base = js["methods"][0]["metrics"]["ece"]
        self.assertAlmostEqual(base, 0.055002704373, delta=1e-6)  # README
        for e in js["methods"][2:]:
            self.assertEqual(e["status"], "ok", e)
            self.assertLess(e["metrics"]["ece"], base / 3, e["method"])

    def test_cv_deterministic(self):
        args = ["fit", self.d("val.csv"), "--method", "platt", "--cv", 5, "--seed", 9]
        self.assertEqual(run_json(*args), run_json(*args))


if __name__ == "__main__":
    unittest.main()
