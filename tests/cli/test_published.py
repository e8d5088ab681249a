#!/usr/bin/python3
"""Published numbers of ../shared/data reproduced through the CLI.

Each expected value is quoted from a README in ../shared/data or read off the
published figure next to it, never computed by calib.  Skipped where
../shared/data is absent (a user's clone); CI has it.
"""
import json
import os
import subprocess
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
DATA = os.path.join(ROOT, "..", "shared", "data")
TOP1 = os.path.join(DATA, "top1-confidence-imagenet-cifar10")
CLEANLAB = os.path.join(DATA, "cleanlab-crossval-probs")


def calib_json(*args):
    p = subprocess.run([CALIB, "eval", *map(str, args), "--json"], capture_output=True,
                       timeout=300)
    if p.returncode != 0:
        raise AssertionError("calib %s: exit %d: %s" %
                             (" ".join(map(str, args)), p.returncode,
                              p.stderr.decode()))
    return json.loads(p.stdout)


@unittest.skipUnless(os.path.isdir(TOP1), "../shared/data is not here")
class TestHollanceFigure(unittest.TestCase):
    def test_senet154_ece_20_bins(self):
        # reference_figure_gluon_senet154_ECE20bins.png prints "ECE=5.14"
        # (20 bins, hollance's rule); its accuracy line sits at 0.81 and its
        # average-confidence line at 0.76.
        m = calib_json(os.path.join(TOP1, "imagenet_timm_gluon_senet154.csv"),
                       "--bins", 20, "--bin-rule", "hollance")
        self.assertEqual(round(100 * m["ece"], 2), 5.14)
        self.assertEqual(m["n"], 50000)
        self.assertEqual(round(m["accuracy"], 2), 0.81)
        self.assertEqual(round(m["mean_confidence"], 2), 0.76)

    def test_cifar10_top1_is_the_densenet_test_set(self):
        # The README says this file is the same model and test set as
        # densenet40-cifar10-logits, whose README quotes accuracy 92.42 and
        # ECE 0.055002704373 (15 bins); the confidences here were written
        # from a float32 softmax, hence 1e-6.
        m = calib_json(os.path.join(TOP1, "cifar10_markus93_densenet40.csv"))
        self.assertEqual(m["n"], 10000)
        self.assertAlmostEqual(m["accuracy"], 0.9242, places=12)
        self.assertAlmostEqual(m["ece"], 0.055002704373, delta=1e-6)
        self.assertAlmostEqual(m["mce"], 0.333955179269, delta=1e-6)


@unittest.skipUnless(os.path.isdir(CLEANLAB), "../shared/data is not here")
class TestCleanlabQuirks(unittest.TestCase):
    def test_20news_zero_probabilities_clipped(self):
        # The README: 20news has labels whose probability is exactly 0, so
        # NLL is +inf unless clipped; calib clips at 1e-15 and says so.
        m = calib_json(os.path.join(CLEANLAB, "20news_test_set_pyx.npy"),
                       "--probs", "--labels",
                       os.path.join(CLEANLAB, "20news_test_set_original_labels.npy"))
        self.assertEqual(m["n"], 7532)
        self.assertTrue(m["nll_from_probs"])
        self.assertGreater(m["nll_clipped_rows"], 0)
        self.assertIsNotNone(m["nll"])

    def test_imdb_rows_not_normalised_counted(self):
        # The README: imdb rows sum to 1.00002: used as given and counted.
        m = calib_json(os.path.join(CLEANLAB, "imdb_test_set_pyx.npy"),
                       "--probs", "--labels",
                       os.path.join(CLEANLAB, "imdb_test_set_original_labels.npy"))
        self.assertEqual(m["rows_read"], 25000)
        self.assertEqual(m["rows_rejected"], 0)
        self.assertGreater(m["rows_sum_off"], 0)


if __name__ == "__main__":
    unittest.main()
