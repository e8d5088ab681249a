#!/usr/bin/python3
"""CLI tests for `calib`: exit codes, messages, atomic outputs, and golden
numbers computed here independently with numpy / scikit-learn.

Run by `make cli-test` as
    CALIB=build/calib CALIB_GOLDEN=build/golden /usr/bin/python3 tests/cli/run.py
Prints "N passed, N failed, N skipped" and exits non-zero on any failure.
"""
import gzip
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
DATA = os.path.join(ROOT, "..", "shared", "data")
DENSENET = os.path.join(DATA, "densenet40-cifar10-logits")
TOL = 1e-12


def run(*args, stdin=None, cwd=None):
    """Runs calib; returns (exit code, stdout text, stderr text)."""
    p = subprocess.run([CALIB] + [str(a) for a in args], input=stdin,
                       capture_output=True, cwd=cwd, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def run_json(*args, stdin=None):
    rc, out, err = run(*args, "--json", stdin=stdin)
    if rc != 0:
        raise AssertionError("calib %s: exit %d: %s" % (" ".join(map(str, args)), rc, err))
    return json.loads(out)


# ---------------------------------------------------------------------------
# The reference implementation (numpy), written from DESIGN.md's conventions.

def bin_index(conf, m):
    """sklearn rule: bin b covers (k/M, (k+1)/M], p = 0 in bin 0."""
    edges = np.arange(m + 1) / m
    return np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, m - 1)


def calibration_errors(conf, correct, idx, nb):
    n = len(conf)
    ece, mce, ms = 0.0, 0.0, 0.0
    bins = []
    for b in range(nb):
        sel = idx == b
        cnt = int(sel.sum())
        if cnt == 0:
            bins.append((0, None, None))
            continue
        acc = math.fsum(correct[sel]) / cnt
        cf = math.fsum(conf[sel]) / cnt
        gap = abs(acc - cf)
        ece += cnt / n * gap
        ms += cnt / n * gap * gap
        mce = max(mce, gap)
        bins.append((cnt, cf, acc))
    return ece, mce, math.sqrt(ms), bins


def golden_toplabel(conf, correct, m=15):
    conf = np.asarray(conf, float)
    correct = np.asarray(correct, float)
    ece, mce, rmsce, bins = calibration_errors(conf, correct, bin_index(conf, m), m)
    return dict(n=len(conf), accuracy=math.fsum(correct) / len(conf),
                mean_confidence=math.fsum(conf) / len(conf), ece=ece, mce=mce,
                rmsce=rmsce, nll=None,
                brier=math.fsum((conf - correct) ** 2) / len(conf), bins=bins)


def golden_dist(probs, labels, m=15, logq=None):
    """Distribution rows; logq = log q_label (from logits: exact; else clipped)."""
    n = len(labels)
    conf = probs.max(axis=1)
    pred = probs.argmax(axis=1)          # first index attaining the max
    correct = (pred == labels).astype(float)
    g = golden_toplabel(conf, correct, m)
    if logq is None:
        logq = np.log(np.maximum(probs[np.arange(n), labels], 1e-15))
    onehot = np.eye(probs.shape[1])[labels]
    g["nll"] = -math.fsum(logq) / n
    g["brier"] = math.fsum(((probs - onehot) ** 2).sum(axis=1)) / n
    return g


def golden_logits(z, labels, m=15):
    ls = log_softmax(z, axis=1)
    return golden_dist(np.exp(ls), labels, m, ls[np.arange(len(labels)), labels])


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(repr(x) if isinstance(x, float) else str(x) for x in r) + "\n")


def toplabel_data(rng, n):
    conf = rng.uniform(0.0, 1.0, n)
    # values on bin edges and the ends, written as text: must follow (a, b].
    conf[:8] = [0.0, 1.0, 0.2, 0.8, 0.4, 1 / 3, 0.6, 2 / 15]
    correct = (rng.uniform(size=n) < conf ** 1.5).astype(int)
    return conf, correct


class Case(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def assertClose(self, got, want, tol=TOL, what=""):
        if want is None:
            self.assertIsNone(got, what)
            return
        self.assertIsNotNone(got, what)
        self.assertLessEqual(abs(got - want), tol * max(1.0, abs(want)),
                             "%s: got %r, want %r" % (what, got, want))

    def assertMetrics(self, js, g, tol=TOL):
        for key in ("accuracy", "mean_confidence", "ece", "mce", "rmsce", "nll", "brier"):
            self.assertIn(key, js)
            self.assertClose(js[key], g[key], tol, key)
        self.assertEqual(js["n"], g["n"])
        self.assertEqual(len(js["bins"]), len(g["bins"]))
        for b, (jb, (cnt, cf, acc)) in enumerate(zip(js["bins"], g["bins"])):
            self.assertEqual(jb["count"], cnt, "bin %d count" % b)
            if cnt:
                self.assertClose(jb["mean_confidence"], cf, tol, "bin %d conf" % b)
                self.assertClose(jb["accuracy"], acc, tol, "bin %d acc" % b)

    def assertFails(self, code, args, contains=None, stdin=None):
        rc, out, err = run(*args, stdin=stdin)
        self.assertEqual(rc, code, "calib %s: stderr %r" % (" ".join(map(str, args)), err))
        self.assertTrue(err.startswith("calib: "), err)
        self.assertEqual(err.count("\n"), 1, "one line: %r" % err)
        if contains:
            self.assertIn(contains, err)
        return err


# ---------------------------------------------------------------------------

class TestUsage(Case):
    def test_no_command(self):
        rc, _, err = run()
        self.assertEqual(rc, 64)
        self.assertIn("usage", err)

    def test_unknown_command(self):
        self.assertFails(64, ["frobnicate"], "unknown command")

    def test_unknown_option(self):
        write_csv(self.path("a.csv"), ["confidence", "correct"], [(0.5, 1)])
        self.assertFails(64, ["eval", self.path("a.csv"), "--frobnicate"], "--frobnicate")

    def test_bins_zero_and_abc(self):
        write_csv(self.path("a.csv"), ["confidence", "correct"], [(0.5, 1)])
        self.assertFails(64, ["eval", self.path("a.csv"), "--bins", "0"], "--bins")
        self.assertFails(64, ["eval", self.path("a.csv"), "--bins", "abc"], "--bins")
        self.assertFails(64, ["eval", self.path("a.csv"), "--bins=-3"], "--bins")
        self.assertFails(64, ["eval", self.path("a.csv"), "--bins"], "--bins")

    def test_bad_enum_values(self):
        a = self.path("a.csv")
        write_csv(a, ["confidence", "correct"], [(0.5, 1)])
        self.assertFails(64, ["eval", a, "--binning", "wide"], "--binning")
        self.assertFails(64, ["eval", a, "--bin-rule", "nope"], "--bin-rule")
        self.assertFails(64, ["fit", a, "--objective", "nope"], "--objective")
        self.assertFails(64, ["eval", a, "--format", "xml"], "--format")

    def test_missing_file_argument(self):
        self.assertFails(64, ["eval"], "missing FILE")
        self.assertFails(64, ["fit"], "missing")

    def test_apply_without_output(self):
        self.assertFails(64, ["apply", "cal.json", "x.csv"], "-o")

    def test_option_of_another_command(self):
        write_csv(self.path("a.csv"), ["confidence", "correct"], [(0.5, 1)])
        self.assertFails(64, ["apply", "cal.json", self.path("a.csv"), "--json", "-o", "x.npy"],
                         "unknown option")
        self.assertFails(64, ["demo", "--bins", "3"], "unknown option")

    def test_help_and_version(self):
        for args in (["--help"], ["help"], ["eval", "--help"], ["fit", "--help"],
                     ["apply", "--help"], ["demo", "--help"], ["help", "eval"]):
            rc, out, err = run(*args)
            self.assertEqual(rc, 0, args)
            self.assertIn("usage: calib", out)
            self.assertEqual(err, "")
        rc, out, _ = run("--help")
        for code in ("64", "65", "66", "70", "73", "74"):
            self.assertIn(code, out)
        rc, out, _ = run("--version")
        self.assertEqual(rc, 0)
        self.assertIn("calib 0.", out)


class TestBadInput(Case):
    def test_missing_input(self):
        p = self.path("nope.csv")
        self.assertFails(66, ["eval", p], "nope.csv")
        self.assertFails(66, ["fit", p], "nope.csv")
        self.assertFails(66, ["eval", p, "--binning", "mass"], "nope.csv")

    def test_nan_names_line_and_column(self):
        p = self.path("nan.csv")
        with open(p, "w") as f:
            f.write("correct,confidence\n1,0.5\n0,0.25\n1,nan\n")
        self.assertFails(65, ["eval", p], p + ":4:2")

    def test_probability_out_of_range(self):
        p = self.path("big.csv")
        write_csv(p, ["confidence", "correct"], [(0.5, 1), (1.5, 0)])
        self.assertFails(65, ["eval", p], p + ":3")

    def test_label_out_of_range(self):
        p = self.path("lab.csv")
        write_csv(p, ["logit_0", "logit_1", "logit_2", "label"],
                  [(0.1, 0.2, 0.3, 2), (0.1, 0.2, 0.3, 3)])
        self.assertFails(65, ["eval", p], p + ":3")

    def test_wrong_field_count(self):
        p = self.path("ragged.csv")
        with open(p, "w") as f:
            f.write("confidence,correct\n0.5,1\n0.7\n")
        self.assertFails(65, ["eval", p], p + ":3")

    def test_bad_npy_header(self):
        p = self.path("bad.npy")
        with open(p, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00\x10\x00{'descr': <f8 }\n" + b"\0" * 64)
        np.save(self.path("y.npy"), np.zeros(4, dtype=np.int64))
        self.assertFails(65, ["eval", p, "--labels", self.path("y.npy")], "bad.npy")

    def test_no_data_rows(self):
        p = self.path("empty.csv")
        with open(p, "w") as f:
            f.write("confidence,correct\n")
        self.assertFails(65, ["eval", p], p + ": no data rows")
        self.assertFails(65, ["eval", p, "--binning", "mass"], "no data rows")
        self.assertFails(65, ["fit", p], "no data rows")

    def test_unknown_column_is_usage(self):
        p = self.path("a.csv")
        write_csv(p, ["confidence", "correct"], [(0.5, 1)])
        rc, _, err = run("eval", p, "--conf", "nosuchcolumn", "--correct", "correct")
        self.assertEqual(rc, 64, err)


class TestOutputFiles(Case):
    def good(self):
        p = self.path("good.csv")
        write_csv(p, ["confidence", "correct"], [(0.5, 1), (0.9, 0)])
        return p

    def bad(self):
        p = self.path("bad.csv")
        with open(p, "w") as f:
            f.write("confidence,correct\n0.5,1\nnan,1\n")
        return p

    def test_missing_directory(self):
        out = self.path("no/such/dir/out.json")
        self.assertFails(73, ["eval", self.good(), "--json", "-o", out], "out.json")
        self.assertFalse(os.path.exists(out))

    @unittest.skipUnless(os.path.exists("/dev/full"), "no /dev/full")
    def test_write_error_is_74(self):
        with open("/dev/full", "w") as full:
            p = subprocess.run([CALIB, "eval", self.good(), "--json"], stdout=full,
                               stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 74)
        self.assertIn("write failed", p.stderr.decode())

    def test_failed_run_keeps_previous_output(self):
        out = self.path("out.json")
        with open(out, "w") as f:
            f.write("previous\n")
        self.assertFails(65, ["eval", self.bad(), "--json", "-o", out])
        with open(out) as f:
            self.assertEqual(f.read(), "previous\n")
        self.assertEqual(sorted(os.listdir(self.dir)), ["bad.csv", "out.json"])

    def test_failed_run_leaves_nothing(self):
        out = self.path("new.json")
        self.assertFails(65, ["eval", self.bad(), "--json", "-o", out])
        self.assertEqual(os.listdir(self.dir), ["bad.csv"])

    def test_output_written_and_replaced(self):
        out = self.path("out.json")
        with open(out, "w") as f:
            f.write("previous\n")
        rc, stdout, err = run("eval", self.good(), "--json", "-o", out)
        self.assertEqual((rc, stdout), (0, ""), err)
        with open(out) as f:
            self.assertEqual(json.load(f)["n"], 2)
        self.assertEqual(sorted(os.listdir(self.dir)), ["good.csv", "out.json"])
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o666 & ~current_umask())

    def test_apply_failure_leaves_nothing(self):
        cal = self.path("cal.json")
        write_csv(self.path("v.csv"), ["logit_0", "logit_1", "label"],
                  [(0.0, 1.0, 1), (2.0, 0.0, 1), (0.5, 0.0, 0)])
        rc, _, err = run("fit", self.path("v.csv"), "-o", cal)
        self.assertEqual(rc, 0, err)
        with open(self.path("bad.csv"), "w") as f:
            f.write("logit_0,logit_1,label\n0,1,1\n0,inf,0\n")
        out = self.path("out.npy")
        self.assertFails(65, ["apply", cal, self.path("bad.csv"), "-o", out])
        self.assertFalse(os.path.exists(out))
        self.assertFails(73, ["apply", cal, self.path("v.csv"), "-o", self.path("x/out.npy")])
        self.assertFails(64, ["apply", cal, self.path("v.csv"), "-o", self.path("out.txt")])


def current_umask():
    m = os.umask(0)
    os.umask(m)
    return m


class TestGolden(Case):
    def test_toplabel_csv(self):
        rng = np.random.default_rng(1)
        conf, correct = toplabel_data(rng, 3000)
        p = self.path("top.csv")
        write_csv(p, ["confidence", "correct"], zip(conf.tolist(), correct.tolist()))
        js = run_json("eval", p)
        g = golden_toplabel(conf, correct)
        self.assertMetrics(js, g)
        self.assertIsNone(js["nll"])
        # scikit-learn's calibration_curve agrees bin by bin (non-empty bins)
        prob_true, prob_pred = calibration_curve(correct, conf, n_bins=15)
        full = [b for b in js["bins"] if b["count"]]
        np.testing.assert_allclose([b["accuracy"] for b in full], prob_true, rtol=0, atol=TOL)
        np.testing.assert_allclose([b["mean_confidence"] for b in full], prob_pred, rtol=0, atol=TOL)
        # and with explicit columns and another bin count
        js = run_json("eval", p, "--conf", "confidence", "--correct", "correct", "--bins", "10")
        self.assertMetrics(js, golden_toplabel(conf, correct, 10))

    def test_logits_csv(self):
        rng = np.random.default_rng(2)
        z = rng.normal(0, 2.5, (2000, 5))
        y = rng.integers(0, 5, 2000)
        p = self.path("logits.csv")
        write_csv(p, ["id"] + ["logit_%d" % k for k in range(5)] + ["label"],
                  ([i] + z[i].tolist() + [int(y[i])] for i in range(len(y))))
        g = golden_logits(z, y)
        js = run_json("eval", p, "--logits", "logit_*", "--label", "label")
        self.assertMetrics(js, g)
        self.assertClose(js["nll"], log_loss(y, softmax(z, axis=1), labels=range(5)), 1e-12)
        self.assertEqual(js["classes"], 5)
        js = run_json("eval", p, "--logits", ",".join("logit_%d" % k for k in range(5)))
        self.assertMetrics(js, g)

    def test_probs_csv(self):
        rng = np.random.default_rng(3)
        q = softmax(rng.normal(0, 2, (1500, 3)), axis=1)
        y = rng.integers(0, 3, 1500)
        p = self.path("probs.csv")
        write_csv(p, ["p_a", "p_b", "p_c", "y"],
                  (q[i].tolist() + [int(y[i])] for i in range(len(y))))
        js = run_json("eval", p, "--probs", "p_a,p_b,p_c", "--label", "y")
        self.assertMetrics(js, golden_dist(q, y))
        js = run_json("eval", p, "--probs=p_*", "--label", "y")
        self.assertMetrics(js, golden_dist(q, y))

    def test_pred_label_confidence_csv(self):
        rng = np.random.default_rng(4)
        n = 2500
        label = rng.integers(0, 10, n)
        pred = np.where(rng.uniform(size=n) < 0.7, label, rng.integers(0, 10, n))
        conf = rng.uniform(0.1, 1.0, n)
        p = self.path("top1.csv")
        write_csv(p, ["true_label", "pred_label", "confidence"],
                  zip(label.tolist(), pred.tolist(), conf.tolist()))
        correct = (pred == label).astype(int)
        js = run_json("eval", p, "--pred", "pred_label", "--label", "true_label",
                      "--conf", "confidence")
        self.assertMetrics(js, golden_toplabel(conf, correct))

    def test_npy_logits_probs_and_confidences(self):
        rng = np.random.default_rng(5)
        z = rng.normal(0, 3, (1200, 7))
        y = rng.integers(0, 7, 1200)
        np.save(self.path("z.npy"), z)
        np.save(self.path("z32.npy"), z.astype(np.float32))
        np.save(self.path("y.npy"), y)
        np.save(self.path("y16.npy"), y.astype(np.uint16))
        js = run_json("eval", self.path("z.npy"), "--labels", self.path("y.npy"))
        self.assertMetrics(js, golden_logits(z, y))
        js = run_json("eval", self.path("z32.npy"), "--labels", self.path("y16.npy"))
        self.assertMetrics(js, golden_logits(z.astype(np.float32).astype(float), y))
        q = softmax(z, axis=1)
        np.save(self.path("q.npy"), q)
        js = run_json("eval", self.path("q.npy"), "--probs", "--labels", self.path("y.npy"))
        self.assertMetrics(js, golden_dist(q, y))
        js = run_json("eval", "--probs", self.path("q.npy"), "--labels", self.path("y.npy"))
        self.assertMetrics(js, golden_dist(q, y))
        conf, correct = toplabel_data(rng, 900)
        np.save(self.path("c.npy"), conf)
        np.save(self.path("ok.npy"), correct.astype(bool))
        js = run_json("eval", self.path("c.npy"), "--correct", self.path("ok.npy"))
        self.assertMetrics(js, golden_toplabel(conf, correct))

    def test_equal_mass_bins(self):
        rng = np.random.default_rng(6)
        conf, correct = toplabel_data(rng, 1000)
        p = self.path("top.csv")
        write_csv(p, ["confidence", "correct"], zip(conf.tolist(), correct.tolist()))
        # Kumar et al.'s get_equal_bins, then (a, b] assignment
        groups = np.array_split(np.sort(conf), 10)
        upper = sorted(set([(groups[i][-1] + groups[i + 1][0]) / 2.0 for i in range(9)] + [1.0]))
        idx = np.searchsorted(np.array(upper), conf, side="left")
        ece, mce, rmsce, _ = calibration_errors(conf, correct.astype(float), idx, len(upper))
        js = run_json("eval", p, "--binning", "mass", "--bins", "10")
        self.assertEqual(js["n_bins"], len(upper))
        self.assertClose(js["ece"], ece, what="ece")
        self.assertClose(js["mce"], mce, what="mce")
        self.assertClose(js["rmsce"], rmsce, what="rmsce")

    def test_table_output(self):
        rng = np.random.default_rng(7)
        z = rng.normal(0, 2, (300, 3))
        y = rng.integers(0, 3, 300)
        p = self.path("t.csv")
        write_csv(p, ["logit_0", "logit_1", "logit_2", "label"],
                  (z[i].tolist() + [int(y[i])] for i in range(300)))
        rc, out, err = run("eval", p)
        self.assertEqual(rc, 0, err)
        g = golden_logits(z, y)
        for word in ("accuracy", "ECE", "MCE", "RMSCE", "NLL", "Brier (multiclass)",
                     "300 read, 300 used, 0 rejected", "%.6f" % g["ece"]):
            self.assertIn(word, out)
        rc, out, err = run("eval", p, "--bins", "20")
        self.assertEqual(len([l for l in out.splitlines() if l.strip().startswith("20 ")]), 1)


class TestBinRules(Case):
    """Each compatibility rule, on values that sit on edges and at 0 and 1."""

    def data(self):
        rng = np.random.default_rng(16)
        conf = rng.choice(np.arange(11) / 10, 600)      # 0, 0.1, ..., 1: edges for M=10
        conf[:50] = rng.uniform(size=50)
        correct = (rng.uniform(size=600) < conf).astype(int)
        p = self.path("edges.csv")
        write_csv(p, ["confidence", "correct"], zip(conf.tolist(), correct.tolist()))
        return p, conf, correct.astype(float)

    def check(self, rule, idx, nb, keep_n, keep=None):
        p, conf, correct = self.data()
        m = 10
        idx = idx(conf, np.arange(m + 1) / m)
        keep = np.ones(len(conf), bool) if keep is None else keep(conf)
        ece, mce, rmsce, _ = calibration_errors(conf[keep], correct[keep], idx[keep], nb)
        if not keep_n:          # gpleiss: p = 0 rows in n, in no bin
            ece *= keep.sum() / len(conf)
            rmsce = math.sqrt(rmsce ** 2 * keep.sum() / len(conf))
        js = run_json("eval", p, "--bins", "10", "--bin-rule", rule)
        self.assertEqual(js["bin_rule"], rule)
        self.assertClose(js["ece"], ece, what=rule + " ece")
        self.assertClose(js["mce"], mce, what=rule + " mce")
        self.assertClose(js["rmsce"], rmsce, what=rule + " rmsce")
        self.assertClose(js["accuracy"], correct.mean(), what=rule + " accuracy")

    def test_sklearn(self):
        self.check("sklearn", lambda c, e: np.clip(np.searchsorted(e, c, "left") - 1, 0, 9), 10, True)

    def test_netcal(self):
        self.check("netcal", lambda c, e: np.clip(np.searchsorted(e, c, "right") - 1, 0, 9), 10, True)

    def test_torchmetrics(self):
        self.check("torchmetrics", lambda c, e: np.searchsorted(e, c, "right") - 1, 11, True)

    def test_gpleiss(self):
        self.check("gpleiss", lambda c, e: np.clip(np.searchsorted(e, c, "left") - 1, 0, 9), 10,
                   False, lambda c: c > 0)

    def test_hollance(self):
        self.check("hollance", lambda c, e: np.clip(np.searchsorted(e, c, "left") - 1, 0, 9), 10,
                   True, lambda c: c > 0)


class TestInputs(Case):
    def test_weights(self):
        rng = np.random.default_rng(17)
        conf, correct = toplabel_data(rng, 800)
        w = rng.uniform(0, 3, 800)
        p = self.path("w.csv")
        write_csv(p, ["confidence", "correct", "w"], zip(conf.tolist(), correct.tolist(), w.tolist()))
        idx = bin_index(conf, 15)
        ece, mce, ms = 0.0, 0.0, 0.0
        for b in range(15):
            sel = idx == b
            if sel.any():
                wb = math.fsum(w[sel])
                gap = abs(math.fsum(w[sel] * correct[sel]) / wb - math.fsum(w[sel] * conf[sel]) / wb)
                ece += wb / math.fsum(w) * gap
                mce = max(mce, gap)
        js = run_json("eval", p, "--weight", "w")
        self.assertClose(js["ece"], ece, 1e-12, "weighted ece")
        self.assertClose(js["mce"], mce, 1e-12, "weighted mce")
        self.assertClose(js["accuracy"], math.fsum(w * correct) / math.fsum(w), 1e-12, "accuracy")

    def test_threads_do_not_change_results(self):
        rng = np.random.default_rng(18)
        z = rng.normal(0, 2, (20000, 3))
        y = rng.integers(0, 3, 20000)
        np.save(self.path("z.npy"), z)
        np.save(self.path("y.npy"), y)
        outs = set()
        for t in ("1", "2", "3", "0"):
            for b in ("width", "mass"):
                rc, out, err = run("eval", self.path("z.npy"), "--labels", self.path("y.npy"),
                                   "--threads", t, "--binning", b, "--json")
                self.assertEqual(rc, 0, err)
                outs.add((b, out))
        self.assertEqual(len(outs), 2)


    def test_skip_bad_rows(self):
        rng = np.random.default_rng(8)
        conf, correct = toplabel_data(rng, 100)
        lines = ["%r,%d" % (c, k) for c, k in zip(conf.tolist(), correct.tolist())]
        lines[10] = "nan,1"
        lines[20] = "1.5,0"
        lines[30] = "0.5"
        p = self.path("bad.csv")
        with open(p, "w") as f:
            f.write("confidence,correct\n" + "\n".join(lines) + "\n")
        keep = np.array([i not in (10, 20, 30) for i in range(100)])
        for extra in ([], ["--binning", "mass"]):
            js = run_json("eval", p, "--skip-bad-rows", *extra)
            self.assertEqual((js["rows_read"], js["rows_used"], js["rows_rejected"]), (100, 97, 3))
            if not extra:
                self.assertMetrics(js, golden_toplabel(conf[keep], correct[keep]))
        self.assertFails(65, ["eval", p])

    def test_gzip_and_stdin(self):
        rng = np.random.default_rng(9)
        conf, correct = toplabel_data(rng, 500)
        text = "confidence,correct\n" + "".join(
            "%r,%d\n" % (c, k) for c, k in zip(conf.tolist(), correct.tolist()))
        with gzip.open(self.path("t.csv.gz"), "wt") as f:
            f.write(text)
        g = golden_toplabel(conf, correct)
        self.assertMetrics(run_json("eval", self.path("t.csv.gz")), g)
        self.assertMetrics(run_json("eval", "-", stdin=text.encode()), g)
        self.assertMetrics(run_json("eval", "-", "--format", "csv", stdin=text.encode()), g)
        self.assertMetrics(run_json("eval", "-", stdin=gzip.compress(text.encode())), g)
        tsv = text.replace(",", "\t")
        with open(self.path("t.tsv"), "w") as f:
            f.write(tsv)
        self.assertMetrics(run_json("eval", self.path("t.tsv")), g)

    def test_groups(self):
        rng = np.random.default_rng(10)
        n = 1500
        z = rng.normal(0, 2, (n, 4))
        y = rng.integers(0, 4, n)
        names = np.array(["math", "law", "history"])[rng.integers(0, 3, n)]
        header = ["logit_%d" % k for k in range(4)] + ["label", "subject"]
        rows = [z[i].tolist() + [int(y[i]), names[i]] for i in range(n)]
        write_csv(self.path("all.csv"), header, rows)
        for extra in ([], ["--binning", "mass"]):
            js = run_json("eval", self.path("all.csv"), "--group", "subject", *extra)
            self.assertEqual(sorted(js["groups"]), ["history", "law", "math"])
            for name in ("math", "law", "history"):
                sel = [r for r, s in zip(rows, names) if s == name]
                write_csv(self.path(name + ".csv"), header, sel)
                alone = run_json("eval", self.path(name + ".csv"), *extra)
                for key in ("n", "accuracy", "mean_confidence", "ece", "mce", "rmsce", "nll", "brier"):
                    self.assertClose(js["groups"][name][key], alone[key], what=name + " " + key)
                if not extra:
                    m = names == name
                    self.assertMetrics(js["groups"][name], golden_logits(z[m], y[m]))
        rc, out, err = run("eval", self.path("all.csv"), "--group", "subject")
        self.assertEqual(rc, 0, err)
        self.assertIn("overall", out)
        self.assertIn("history", out)


class TestFitApply(Case):
    def make(self, seed, n, t_true=2.5, k=4):
        rng = np.random.default_rng(seed)
        zt = rng.normal(0, 1.5, (n, k))
        y = np.array([rng.choice(k, p=p) for p in softmax(zt, axis=1)])
        return zt * t_true, y

    def golden_t(self, z, y):
        """Brent on log T (scipy), then Newton on beta = 1/T to polish."""
        idx = np.arange(len(y))
        nll = lambda lt: -log_softmax(z / math.exp(lt), axis=1)[idx, y].mean()
        beta = 1.0 / math.exp(minimize_scalar(nll, bracket=(-1.0, 1.0)).x)
        for _ in range(50):
            q = softmax(z * beta, axis=1)
            d = z - z[np.arange(len(y)), y][:, None]
            m1 = (q * d).sum(axis=1)
            g = m1.mean()
            h = ((q * d * d).sum(axis=1) - m1 ** 2).mean()
            step = g / h
            beta -= step
            if abs(step) < 1e-15 * beta:
                break
        return 1.0 / beta

    def test_round_trip(self):
        zv, yv = self.make(11, 2000)
        zt, yt = self.make(12, 1500)
        v, t = self.path("val.csv"), self.path("test.npy")
        write_csv(v, ["logit_%d" % k for k in range(4)] + ["label"],
                  (zv[i].tolist() + [int(yv[i])] for i in range(len(yv))))
        np.save(t, zt)
        np.save(self.path("yt.npy"), yt)
        cal = self.path("cal.json")
        rc, out, err = run("fit", v, "-o", cal)
        self.assertEqual((rc, out), (0, ""), err)
        with open(cal) as f:
            cj = json.load(f)
        for key in ("method", "objective", "temperature", "before", "after", "input", "diagnostics"):
            self.assertIn(key, cj)
        self.assertEqual(cj["method"], "temperature")
        self.assertEqual(cj["input"]["rows"], 2000)
        T = cj["temperature"]
        self.assertClose(T, self.golden_t(zv, yv), 1e-9, "T")
        self.assertMetrics(cj["before"], golden_logits(zv, yv))
        self.assertMetrics(cj["after"], golden_logits(zv / T, yv))
        # eval --calibrator: before/after on test, accuracy unchanged
        js = run_json("eval", t, "--labels", self.path("yt.npy"), "--calibrator", cal)
        self.assertIs(js["accuracy_unchanged"], True)
        self.assertEqual(js["before"]["accuracy"], js["after"]["accuracy"])
        self.assertMetrics(js["before"], golden_logits(zt, yt))
        self.assertMetrics(js["after"], golden_logits(zt / T, yt))
        self.assertClose(js["calibrator"]["temperature"], T, 0, "T")
        rc, out, err = run("eval", t, "--labels", self.path("yt.npy"), "--calibrator", cal)
        self.assertEqual(rc, 0, err)
        self.assertIn("before", out)
        self.assertIn("after", out)
        # apply: .npy rows are softmax(z / T)
        out = self.path("out.npy")
        rc, _, err = run("apply", cal, t, "--labels", self.path("yt.npy"), "-o", out)
        self.assertEqual(rc, 0, err)
        q = np.load(out)
        self.assertEqual(q.shape, zt.shape)
        np.testing.assert_allclose(q, softmax(zt / T, axis=1), rtol=0, atol=1e-12)
        outc = self.path("out.csv")
        rc, _, err = run("apply", cal, t, "--labels", self.path("yt.npy"), "-o", outc)
        self.assertEqual(rc, 0, err)
        with open(outc) as f:
            header = f.readline().strip().split(",")
        self.assertEqual(header, ["prob_0", "prob_1", "prob_2", "prob_3", "label"])
        tab = np.loadtxt(outc, delimiter=",", skiprows=1)
        np.testing.assert_allclose(tab[:, :4], softmax(zt / T, axis=1), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(tab[:, 4], yt)
        # the recalibrated CSV reads back as probabilities
        js = run_json("eval", outc)
        self.assertMetrics(js, golden_dist(tab[:, :4], yt), 1e-9)

    def test_fit_table_and_json(self):
        zv, yv = self.make(13, 800)
        v = self.path("val.npy")
        np.save(v, zv)
        np.save(self.path("yv.npy"), yv)
        rc, out, err = run("fit", v, "--labels", self.path("yv.npy"))
        self.assertEqual(rc, 0, err)
        for word in ("T", "objective", "iterations", "before", "after", "ECE"):
            self.assertIn(word, out)
        js = run_json("fit", v, "--labels", self.path("yv.npy"))
        self.assertEqual(js["objective"], "nll")
        js = run_json("fit", v, "--labels", self.path("yv.npy"), "--objective", "ece")
        self.assertEqual(js["objective"], "ece")
        self.assertLessEqual(js["after"]["ece"], js["before"]["ece"])

    def test_val_test_loop(self):
        zv, yv = self.make(14, 1000)
        zt, yt = self.make(15, 1000)
        np.save(self.path("zv.npy"), zv)
        np.save(self.path("yv.npy"), yv)
        np.save(self.path("zt.npy"), zt)
        np.save(self.path("yt.npy"), yt)
        args = ["--val", self.path("zv.npy"), "--val-labels", self.path("yv.npy"),
                "--test", self.path("zt.npy"), "--test-labels", self.path("yt.npy")]
        T = self.golden_t(zv, yv)
        for cmd in ("eval", "fit"):
            js = run_json(cmd, *args)
            self.assertClose(js["calibrator"]["temperature"], T, 1e-9, "T")
            self.assertIs(js["accuracy_unchanged"], True)
            self.assertMetrics(js["before"], golden_logits(zt, yt))
            self.assertMetrics(js["after"], golden_logits(zt / js["calibrator"]["temperature"], yt))
            rc, out, err = run(cmd, *args)
            self.assertEqual(rc, 0, err)
            self.assertIn("validation", out)
        cal = self.path("cal.json")
        rc, out, err = run("fit", *args, "-o", cal)
        self.assertEqual(rc, 0, err)
        with open(cal) as f:
            self.assertClose(json.load(f)["temperature"], T, 1e-9, "T")
        self.assertFails(64, ["eval", "--val", self.path("zv.npy")], "--test")

    def test_diagnostic_all_correct(self):
        # every row correct with a margin: T runs to its lower end; exit 0
        z = np.array([[5.0, 0.0], [0.0, 4.0], [3.0, 1.0]] * 10)
        y = np.array([0, 1, 0] * 10)
        np.save(self.path("z.npy"), z)
        np.save(self.path("y.npy"), y)
        rc, out, err = run("fit", self.path("z.npy"), "--labels", self.path("y.npy"), "--json")
        self.assertEqual(rc, 0, err)
        js = json.loads(out)
        self.assertTrue(js["diagnostics"])
        self.assertIn("calib: warning: ", err)

    def test_bad_calibrator_file(self):
        with open(self.path("cal.json"), "w") as f:
            f.write("{not json")
        write_csv(self.path("a.csv"), ["confidence", "correct"], [(0.5, 1)])
        self.assertFails(65, ["eval", self.path("a.csv"), "--calibrator", self.path("cal.json")], "cal.json")
        self.assertFails(66, ["eval", self.path("a.csv"), "--calibrator", self.path("none.json")], "none.json")


@unittest.skipUnless(os.path.isdir(DENSENET), "../shared/data not present")
class TestSharedData(Case):
    def d(self, name):
        return os.path.join(DENSENET, name)

    def check_readme(self, js):
        self.assertEqual(js["n"], 10000)
        self.assertClose(js["accuracy"], 0.9242, TOL, "accuracy")
        self.assertClose(js["ece"], 0.055002704373, 1e-6, "ece")
        self.assertClose(js["mce"], 0.333955179269, 1e-6, "mce")
        self.assertEqual(round(js["nll"], 6), 0.430059)

    def test_densenet_test_npy_and_csv(self):
        self.check_readme(run_json("eval", self.d("logits_test.npy"), "--labels", self.d("labels_test.npy")))
        self.check_readme(run_json("eval", self.d("test.csv")))

    def test_densenet_fit(self):
        js = run_json("fit", self.d("logits_val.npy"), "--labels", self.d("labels_val.npy"))
        after = js["after"]
        self.assertClose(after["ece"], 0.005947, 2e-6, "ece after")
        self.assertClose(after["nll"], 0.186612, 2e-6, "nll after")
        self.assertClose(1 - after["accuracy"], 0.0618, TOL, "error")


class TestDemo(Case):
    def test_demo(self):
        d = self.path("demo")
        rc, out, err = run("demo", "-o", d)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(os.listdir(d)), ["test.csv", "val.csv"])
        for word in ("ECE", "T ", "subject", "calib fit"):
            self.assertIn(word, out)
        with open(os.path.join(d, "test.csv")) as f:
            self.assertEqual(f.readline().strip(), "logit_0,logit_1,logit_2,logit_3,label,subject")
        js = run_json("eval", "--val", os.path.join(d, "val.csv"), "--test",
                      os.path.join(d, "test.csv"), "--group", "subject")
        b, a = js["before"], js["after"]
        self.assertTrue(0.6 <= b["accuracy"] <= 0.7, b["accuracy"])
        self.assertTrue(0.83 <= b["mean_confidence"] <= 0.92, b["mean_confidence"])
        self.assertGreater(b["ece"], 0.1)
        self.assertLess(a["ece"], b["ece"] / 3)
        self.assertEqual(len(b["groups"]), 4)
        # the same files on every run
        with open(os.path.join(d, "val.csv"), "rb") as f:
            first = f.read()
        rc, _, err = run("demo", "-o", d)
        with open(os.path.join(d, "val.csv"), "rb") as f:
            self.assertEqual(f.read(), first)


def main():
    if not os.access(CALIB, os.X_OK):
        print("cli tests: %s not found (build it with make)" % CALIB)
        return 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    # Further case files next to this one (tests/cli/test_*.py).
    here = os.path.dirname(os.path.abspath(__file__))
    suite.addTests(unittest.defaultTestLoader.discover(here, pattern="test_*.py",
                                                       top_level_dir=here))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
