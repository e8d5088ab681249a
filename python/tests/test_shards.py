"""test_shards.py — partial states and merge: shards merged in any order
and split give, bit for bit, what one calib.evaluate gives, with
equal-width and (from value tables) equal-mass bins; the Dask example
(examples/dask_shards.py) on a small local cluster; and the PyTorch
example (examples/torch_allreduce.py) on two gloo ranks."""
import importlib.util
import json
import os
import subprocess
import sys
import unittest

import numpy as np

import calib
from calib import _lib
from helpers import ROOT

HAVE_PARTIAL = _lib.has("calib_accum_to_json") and \
    _lib.has("calib_accum_from_json")
NO_PARTIAL = ("libcalib has no calib_accum_to_json/calib_accum_from_json "
              "yet (partial states): skipped")


def as_merged(m):
    """calib.evaluate's dict as a merge of its shards gives it: smooth and
    classwise ECE need every row's scores, which states do not hold."""
    m = dict(m, smece=None, smece_bandwidth=None, classwise_ece=None)
    if m.get("groups"):
        m["groups"] = {g: as_merged(v) for g, v in m["groups"].items()}
    return m


def splits(n, k, rng):
    """k shards of random sizes (some possibly empty) covering [0, n)."""
    cuts = np.sort(rng.integers(0, n + 1, k - 1))
    edges = np.concatenate([[0], cuts, [n]])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


@unittest.skipUnless(HAVE_PARTIAL, NO_PARTIAL)
class Merge(unittest.TestCase):

    def setUp(self):
        self.rng = np.random.default_rng(12)

    def check_split(self, kw, n, **opt):
        whole = as_merged(calib.evaluate(**kw, **opt))
        for k in (1, 2, 5):
            parts = []
            for sl in splits(n, k, self.rng):
                shard = {key: (v[sl] if key != "group_names" else v)
                         for key, v in kw.items()}
                if sl.stop > sl.start:
                    parts.append(calib.partial(**shard, **opt))
            self.rng.shuffle(parts)
            self.assertEqual(calib.merge(parts), whole, "%d shards" % k)
            # a tree: merge states, then merge the merged states
            if len(parts) > 2:
                left = calib.merge(parts[:2], partial=True)
                self.assertEqual(calib.merge([left] + parts[2:]), whole)

    def test_toplabel_groups_weights(self):
        n = 20000
        conf = (self.rng.uniform(0, 1, n) ** 0.4).astype(np.float32)
        correct = self.rng.uniform(0, 1, n) < conf * 0.9
        groups = self.rng.integers(0, 4, n)
        self.check_split(dict(conf=conf, correct=correct, groups=groups,
                              group_names=["a", "b", "c", "d"],
                              weights=self.rng.uniform(0, 2, n)), n)

    def test_logits_and_rules(self):
        n, k = 8000, 7
        z = self.rng.normal(0, 3, (n, k))
        y = self.rng.integers(0, k, n)
        for rule in ("sklearn", "torchmetrics", "hollance"):
            self.check_split(dict(logits=z, labels=y), n, bins=10,
                             bin_rule=rule)

    def test_probs(self):
        n, k = 5000, 3
        p = self.rng.dirichlet(np.ones(k), n)
        y = self.rng.integers(0, k, n)
        self.check_split(dict(probs=p, labels=y), n)

    def test_refusals(self):
        conf = self.rng.uniform(0, 1, 100)
        correct = conf > 0.5
        a = calib.partial(conf=conf, correct=correct, bins=15)
        b = calib.partial(conf=conf, correct=correct, bins=10)
        with self.assertRaises(calib.CalibError) as e:
            calib.merge([a, b])
        self.assertEqual(e.exception.code, calib.EINVAL)
        with self.assertRaises(calib.CalibError) as e:
            calib.merge(['{"not": "a state"}'])
        self.assertEqual(e.exception.code, calib.EDATA)
        with self.assertRaises(calib.CalibError) as e:
            calib.merge([])
        self.assertEqual(e.exception.code, calib.EINVAL)


HAVE_VALUES = _lib.has("calib_accum_result_mass")


@unittest.skipUnless(HAVE_VALUES, "libcalib has no value tables yet: skipped")
class MergeMass(unittest.TestCase):
    """merge(binning="mass") of states with value tables == evaluate(...,
    binning="mass") over every row, bit for bit."""

    def setUp(self):
        self.rng = np.random.default_rng(31)

    def test_equal_mass_any_split(self):
        n = 6000
        conf = np.sqrt(self.rng.uniform(0, 1, n))
        conf[::4] = np.round(conf[::4] * 25) / 25
        correct = self.rng.uniform(0, 1, n) < conf
        kw = dict(conf=conf, correct=correct,
                  groups=self.rng.integers(0, 3, n), group_names=["x", "y", "z"],
                  weights=self.rng.integers(0, 4, n) / 3)
        for f32 in (False, True):
            data = dict(kw, conf=conf.astype(np.float32) if f32 else conf)
            if f32:   # the integer fast path takes weight-1 rows only
                del data["weights"]
            whole = as_merged(calib.evaluate(**data, binning="mass", bins=12))
            for k in (1, 3, 6):
                parts = [calib.partial(**{key: (v[sl] if key != "group_names"
                                                else v)
                                          for key, v in data.items()},
                                       bins=12)
                         for sl in splits(n, k, self.rng)]
                self.rng.shuffle(parts)
                self.assertEqual(calib.merge(parts, binning="mass"), whole)
                tree = calib.merge(parts[:2], partial=True)
                self.assertEqual(calib.merge([tree] + parts[2:],
                                             binning="mass"), whole)

    def test_grid_and_refusals(self):
        conf = self.rng.uniform(0, 1, 5000)
        correct = self.rng.uniform(0, 1, 5000) < conf
        exact = calib.evaluate(conf=conf, correct=correct, binning="mass")
        m = calib.merge([calib.partial(conf=conf, correct=correct,
                                       value_limit=100)], binning="mass")
        self.assertEqual(m["value_grid"], 2 ** -6)
        self.assertIn("ece", m["approximate"])
        self.assertLessEqual(abs(m["ece"] - exact["ece"]), m["ece_error_bound"])
        self.assertEqual(m["accuracy"], exact["accuracy"])
        width = calib.merge([calib.partial(conf=conf, correct=correct,
                                           value_limit=100)])
        self.assertEqual(width["approximate"], list(calib._api.RANK_KEYS))
        self.assertEqual(width["ece"], calib.evaluate(conf=conf,
                                                      correct=correct)["ece"])
        plain = calib.partial(conf=conf, correct=correct, values=False)
        self.assertEqual(json.loads(plain)["version"], 1)
        with self.assertRaises(calib.CalibError) as e:
            calib.merge([plain], binning="mass")
        self.assertEqual(e.exception.code, calib.EINVAL)
        self.assertIn("value table", str(e.exception))


def run_example(test, name, *args, says):
    """Runs examples/<name> with args; it must exit 0 and print `says`."""
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name)]
                       + [str(a) for a in args], capture_output=True,
                       text=True, env=os.environ, timeout=300)
    test.assertEqual(r.returncode, 0, r.stdout + r.stderr)
    test.assertIn(says, r.stdout)


@unittest.skipUnless(HAVE_PARTIAL, NO_PARTIAL)
@unittest.skipUnless(importlib.util.find_spec("dask") and
                     importlib.util.find_spec("distributed"),
                     "dask/distributed not installed (Debian: python3-dask "
                     "python3-distributed): the Dask example is skipped")
class DaskExample(unittest.TestCase):

    def test_small_cluster(self):
        run_example(self, "dask_shards.py", "--workers", 2, "--partitions", 5,
                    "--rows", 60000, says="bit for bit")


@unittest.skipUnless(HAVE_VALUES, "libcalib has no value tables yet: skipped")
@unittest.skipUnless(importlib.util.find_spec("torch"),
                     "PyTorch not installed (Debian: python3-torch): the "
                     "torch.distributed example is skipped")
class TorchExample(unittest.TestCase):
    """examples/torch_allreduce.py: 2 ranks (gloo, localhost) accumulate
    states batch by batch, all_gather_object them, and every rank's merged
    metrics equal one calib.evaluate of the same logits, bit for bit."""

    def test_two_ranks(self):
        run_example(self, "torch_allreduce.py", "--ranks", 2, "--rows", 6000,
                    "--batch", 500,
                    says="equal one calib.evaluate, bit for bit")


if __name__ == "__main__":
    unittest.main()
