"""test_extra.py — the metrics beyond the bins through the binding:
calib.evaluate returns the JSON keys (smece, auroc, aurc, ...) with the
numbers of tests/golden/gen_extra.py (numpy, scikit-learn)."""
import unittest

import numpy as np

import calib
from helpers import load_golden

KEYS = ("ece_debiased_l2", "ece_over", "ece_under", "smece",
        "smece_bandwidth", "classwise_ece", "brier_reliability",
        "brier_resolution", "brier_uncertainty", "auroc", "aurc",
        "selective_cov_acc_area", "selective_acc_at_10")


class ExtraGolden(unittest.TestCase):
    def setUp(self):
        self.cases = load_golden("extra_cases.json")
        if self.cases is None:
            self.skipTest("golden cases missing (make golden)")

    def test_cases(self):
        for c in self.cases:
            if c["kind"] == "top":
                kw = dict(conf=np.array(c["conf"]),
                          correct=np.array(c["correct"], dtype=np.uint8))
            else:
                kw = {c["kind"]: np.array(c["scores"]).reshape(-1, c["k"]),
                      "labels": np.array(c["labels"])}
            if "weights" in c:
                kw["weights"] = np.array(c["weights"])
            m = calib.evaluate(bins=c["bins"], binning=c["binning"], **kw)
            for key in KEYS:
                self.assertIn(key, m)
            for key, want in c["expect"].items():
                tol = 1e-3 * abs(want) + 1e-7 if want is not None and \
                    key.startswith("smece") else 1e-11
                if want is None:
                    self.assertIsNone(m[key], (c["name"], key))
                else:
                    self.assertLessEqual(abs(m[key] - want), tol,
                                         (c["name"], key))


if __name__ == "__main__":
    unittest.main()
