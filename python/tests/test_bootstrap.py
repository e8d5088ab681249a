"""test_bootstrap.py — bootstrap intervals and the paired bootstrap through
the binding, against the golden cases of tests/golden/gen_bootstrap.py
(the generator of calib.h written again in Python, each replicate
evaluated with numpy, np.percentile): the same cases the C and CLI tests
run.
"""
import unittest

import numpy as np

import calib
from calib import _lib
from helpers import close, load_golden
from test_golden import case_source

CORE = ["accuracy", "mean_confidence", "ece", "mce", "rmsce", "nll", "brier"]
TOL = 1e-12


class TestBootstrap(unittest.TestCase):
    def setUp(self):
        self.g = load_golden("bootstrap_cases.json")
        if self.g is None:
            self.skipTest("no golden cases (make golden)")

    def assertInterval(self, got, want, what):
        for s in range(2):
            self.assertTrue(close(got[s], want[s], TOL),
                            "%s[%d]: %r vs numpy %r" % (what, s, got[s],
                                                        want[s]))

    def test_intervals_match_numpy(self):
        for c in self.g["intervals"]:
            o = c["options"]
            m = calib.evaluate(**case_source(c), bins=o["bins"],
                               binning=o["binning"], ci=c["level"],
                               bootstrap=c["resamples"], seed=int(c["seed"]))
            self.assertEqual(m["ci_resamples"], c["resamples"])
            for k in CORE:
                self.assertInterval(m[k + "_ci"], c["expected"][k],
                                    c["name"] + "." + k)
            for name, exp in c["groups_expected"].items():
                for k in CORE:
                    self.assertInterval(m["groups"][name][k + "_ci"], exp[k],
                                        name + "." + k)

    def test_level_spellings_and_threads(self):
        c = self.g["intervals"][0]
        kw = case_source(c)
        a = calib.evaluate(**kw, ci=0.9, bootstrap=60, threads=1)
        b = calib.evaluate(**kw, ci=90, bootstrap=60, threads=8)
        self.assertEqual(a, b)
        self.assertEqual(calib.evaluate(**kw, bootstrap=30)["ci_level"], 0.95)
        self.assertNotIn("ece_ci", calib.evaluate(**kw))
        for bad in (1, 0, 100, -3):
            with self.assertRaises(calib.CalibError) as e:
                calib.evaluate(**kw, ci=bad)
            self.assertEqual(e.exception.code, calib.EINVAL)

    def test_paired_matches_numpy(self):
        c = self.g["paired"]
        y = np.array(c["labels"])
        za = np.array(c["a"]).reshape(c["n"], c["k"])
        zb = np.array(c["b"]).reshape(c["n"], c["k"])
        p = calib.paired_bootstrap({"logits": za, "labels": y},
                                   {"logits": zb, "labels": y},
                                   ci=c["level"], bootstrap=c["resamples"],
                                   seed=int(c["seed"]), bins=10)
        for k in CORE:
            e = c["expected"][k]
            self.assertTrue(close(p["paired"][k]["diff"], e["diff"], TOL), k)
            self.assertInterval(p["paired"][k]["ci"], e["ci"], k)
            self.assertEqual(p["paired"][k]["p_le_0"], e["p_le_0"], k)
        self.assertEqual(p["paired_options"]["n"], c["n"])
        with self.assertRaises(calib.CalibError) as err:
            calib.paired_bootstrap({"logits": za, "labels": y},
                                   {"logits": zb[:-1], "labels": y[:-1]})
        self.assertEqual(err.exception.code, calib.EDATA)

    def test_metric_count_matches_the_library(self):
        # calib_paired's layout depends on CALIB_M_COUNT
        self.assertIsNotNone(_lib.lib.calib_metric_name(_lib.M_COUNT - 1))
        self.assertIsNone(_lib.lib.calib_metric_name(_lib.M_COUNT))


if __name__ == "__main__":
    unittest.main()
