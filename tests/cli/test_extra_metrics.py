#!/usr/bin/python3
"""CLI tests for the metrics beyond the bins in `calib eval`: the JSON keys
(against tests/golden/gen_extra.py's numbers, computed with numpy and
scikit-learn), --coverage/--risk, their errors, the table block, and
--no-extra (which streams and leaves the sorted metrics null), and
--no-scores (NLL and Brier null).

Loaded by tests/cli/run.py, or alone:
    CALIB=build/calib CALIB_GOLDEN=build/golden /usr/bin/python3 tests/cli/test_extra_metrics.py
"""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
GOLDEN = os.environ.get("CALIB_GOLDEN", os.path.join(ROOT, "build", "golden"))


def run(*args):
    p = subprocess.run([CALIB] + [str(a) for a in args], capture_output=True,
                       timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def case(name):
    with open(os.path.join(GOLDEN, "extra_cases.json")) as f:
        return next(c for c in json.load(f) if c["name"] == name)


class ExtraMetrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="calib-extra-")
        cls.c = case("ties")
        cls.csv = os.path.join(cls.tmp, "ties.csv")
        with open(cls.csv, "w") as f:
            f.write("confidence,correct\n")
            for p, y in zip(cls.c["conf"], cls.c["correct"]):
                f.write("%r,%d\n" % (p, y))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def eval_json(self, *args):
        rc, out, err = run("eval", self.csv, "--json", *args)
        self.assertEqual(rc, 0, err)
        return json.loads(out)

    def test_keys_match_golden(self):
        js = self.eval_json("--coverage", "0.1,0.5,0.7,0.9,1",
                            "--risk", "0,0.05,0.2,0.5")
        for key, want in self.c["expect"].items():
            tol = 1e-4 * abs(want) + 1e-7 if key.startswith("smece") else 1e-11
            self.assertLessEqual(abs(js[key] - want), tol, key)
        got = js["accuracy_at_coverage"]
        self.assertEqual(list(got), ["0.1", "0.5", "0.7", "0.9", "1"])
        for v, want in zip(got.values(), self.c["acc_at_cov"]):
            self.assertAlmostEqual(v, want, places=12)
        got = js["coverage_at_risk"]
        self.assertEqual(list(got), ["0", "0.05", "0.2", "0.5"])
        for v, want in zip(got.values(), self.c["cov_at_risk"]):
            self.assertAlmostEqual(v, want, places=12)

    def test_table_block(self):
        rc, out, err = run("eval", self.csv, "--coverage", "0.9",
                           "--risk", "0.05", "--no-diagram")
        self.assertEqual(rc, 0, err)
        for text in ("ECE over | under", "ECE debiased L2", "smooth ECE",
                     "AUROC (correct)", "AURC", "HELM cov-acc area",
                     "accuracy @ cov 0.9", "coverage @ risk 0.05"):
            self.assertIn(text, out)

    def test_no_extra_streams(self):
        js = self.eval_json("--no-extra")
        for key in ("auroc", "aurc", "smece", "selective_cov_acc_area"):
            self.assertIsNone(js[key], key)
        self.assertAlmostEqual(js["ece_over"], self.c["expect"]["ece_over"],
                               places=12)

    def test_no_scores(self):
        # NLL and Brier null (n/a in the table), in the streamed form too;
        # the rest as without the option
        full = self.eval_json()
        self.assertIsNotNone(full["brier"])
        for extra in ([], ["--no-extra"]):
            js = self.eval_json("--no-scores", *extra)
            self.assertIsNone(js["nll"])
            self.assertIsNone(js["brier"])
            for key in ("ece", "mce", "rmsce", "accuracy", "mean_confidence",
                        "brier_reliability", "n"):
                self.assertEqual(js[key], full[key], key)
        rc, out, err = run("eval", self.csv, "--no-scores", "--no-diagram")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"Brier \(top-label\) +n/a")
        rc, _, err = run("fit", self.csv, "--no-scores")
        self.assertEqual(rc, 64, err)

    def test_bad_levels(self):
        for args in (["--coverage", "0"], ["--coverage", "1.5"],
                     ["--risk", "-0.1"], ["--risk", "0.1,x"],
                     ["--coverage", ""]):
            rc, _, err = run("eval", self.csv, *args)
            self.assertEqual(rc, 64, args)
            self.assertIn(args[0], err)
        rc, _, err = run("fit", self.csv, "--coverage", "0.5")
        self.assertEqual(rc, 64)


if __name__ == "__main__":
    unittest.main()
