"""test_binding.py — what the binding itself adds: arrays without copies,
apply's probabilities, errors with their positions, diagrams, files,
calibrator JSON, groups and ragged rows."""
import gc
import gzip
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest
import xml.etree.ElementTree as ET

import numpy as np

import calib
from helpers import ROOT

try:
    from scipy.special import expit, logit, softmax
    HAVE_SCIPY = True
except ImportError:  # pragma: no cover
    HAVE_SCIPY = False


def toplabel(rng, n):
    p = rng.uniform(0, 1, n) ** 0.5
    return p, rng.uniform(0, 1, n) < p * 0.9


@unittest.skipUnless(HAVE_SCIPY, "scipy not installed (python3-scipy)")
class Apply(unittest.TestCase):
    """Calibrator.apply == softmax(z / T), to 1e-12."""

    def setUp(self):
        self.rng = np.random.default_rng(3)
        self.z = self.rng.normal(0, 4, (2000, 6))
        self.y = self.rng.integers(0, 6, 2000)
        self.y[::3] = np.argmax(self.z[::3], axis=1)

    def test_logits(self):
        for dt in (np.float64, np.float32):
            z = self.z.astype(dt)
            cal = calib.fit(logits=z, labels=self.y)
            t = cal.temperature
            self.assertTrue(1e-3 < t < 1e3)
            q = cal.apply(logits=z)
            ref = softmax(z.astype(np.float64) / t, axis=1)
            self.assertEqual(q.shape, z.shape)
            self.assertEqual(q.dtype, np.float64)
            np.testing.assert_allclose(q, ref, rtol=0, atol=1e-12)
            # labels are optional and do not change the probabilities
            np.testing.assert_array_equal(q, cal.apply(logits=z,
                                                       labels=self.y))

    def test_probs_and_conf(self):
        p = softmax(self.z, axis=1)
        cal = calib.Calibrator.from_json(
            '{"method":"temperature","objective":"nll","temperature":1.7,'
            '"form":"softmax"}')
        np.testing.assert_allclose(cal.apply(probs=p),
                                   softmax(np.log(p) / 1.7, axis=1),
                                   rtol=0, atol=1e-12)
        conf, correct = toplabel(self.rng, 1000)
        conf = np.clip(conf, 1e-6, 1 - 1e-6)
        bcal = calib.fit(conf=conf, correct=correct)
        self.assertTrue(bcal.binary)
        np.testing.assert_allclose(bcal.apply(conf=conf),
                                   expit(logit(conf) / bcal.temperature),
                                   rtol=0, atol=1e-12)
        with self.assertRaises(calib.CalibError) as e:
            bcal.apply(logits=self.z)
        self.assertEqual(e.exception.code, calib.EINVAL)

    def test_accuracy_unchanged(self):
        cal = calib.fit(logits=self.z, labels=self.y)
        before = calib.evaluate(logits=self.z, labels=self.y)
        after = calib.evaluate(cal.apply_data(logits=self.z, labels=self.y))
        self.assertEqual(before["accuracy"], after["accuracy"])
        self.assertLessEqual(after["nll"], before["nll"])

    def test_json_round_trip(self):
        cal = calib.fit(logits=self.z, labels=self.y)
        text = cal.to_json()
        doc = json.loads(text)
        self.assertEqual(doc["method"], "temperature")
        self.assertEqual(doc["temperature"], cal.temperature)
        back = calib.Calibrator.from_json(text)
        self.assertEqual(back.temperature, cal.temperature)
        self.assertEqual(back.objective, "nll")
        with self.assertRaises(calib.CalibError) as e:
            calib.Calibrator.from_json('{"method":"temperature",'
                                       '"temperature":-1}')
        self.assertEqual(e.exception.code, calib.EDATA)

    def test_boundary_is_a_diagnostic(self):
        z = np.zeros((50, 3))
        z[:, 0] = 5.0
        cal = calib.fit(logits=z, labels=np.zeros(50, dtype=int))
        self.assertEqual(cal.temperature, 1e-3)
        self.assertTrue(cal.diagnostics)


# Run in a fresh interpreter, so that the peak RSS of earlier tests does not
# hide this one's: a 10^7-row float32 array must not be copied (a copy as
# float64 would add 80 MB).
RSS_SCRIPT = textwrap.dedent("""
    import resource, sys, numpy as np, calib
    n = 10_000_000
    dtype = sys.argv[1]
    rng = np.random.default_rng(0)
    conf = np.empty(n, dtype=dtype)
    correct = np.empty(n, dtype=bool)
    for i in range(0, n, 1 << 20):   # in chunks: no big temporaries
        conf[i:i + (1 << 20)] = rng.uniform(0, 1, len(conf[i:i + (1 << 20)]))
        correct[i:i + (1 << 20)] = rng.uniform(0, 1, len(conf[i:i + (1 << 20)])) < 0.7
    calib.evaluate(conf=conf[:10], correct=correct[:10], threads=2)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m = calib.evaluate(conf=conf, correct=correct, threads=2, extra=False)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert m["n"] == n
    print((after - before) / 1024.0)
""")


class NoCopy(unittest.TestCase):

    def peak_growth_mb(self, dtype):
        r = subprocess.run([sys.executable, "-c", RSS_SCRIPT, dtype],
                           capture_output=True, text=True, env=os.environ,
                           check=True)
        return float(r.stdout.strip())

    def test_float32_not_copied(self):
        grew = self.peak_growth_mb("float32")
        self.assertLess(grew, 10.0, "evaluate grew the peak RSS by %.1f MB"
                        % grew)
        # the measurement sees a copy: float16 is converted to float64
        # (80 MB, of which the peak shows 40-80 MB depending on what the
        # allocator had already touched)
        self.assertGreater(self.peak_growth_mb("float16"), 30.0)

    def test_data_keeps_arrays_alive(self):
        rng = np.random.default_rng(5)
        z = rng.normal(size=(1000, 3)).astype(np.float32)
        y = rng.integers(0, 3, 1000)
        expected = calib.evaluate(logits=z, labels=y)
        d = calib.data(logits=z.copy(), labels=y)   # the only reference
        gc.collect()
        junk = [np.ones((1000, 3), np.float32) * 7 for _ in range(50)]
        self.assertEqual(calib.evaluate(d), expected)
        self.assertEqual(d.kind, "logits")
        self.assertEqual((d.rows, d.classes), (1000, 3))
        del junk
        d.close()
        with self.assertRaises(ValueError):
            calib.evaluate(d)

    def test_non_contiguous_is_copied(self):
        rng = np.random.default_rng(6)
        z = rng.normal(size=(500, 8))
        y = rng.integers(0, 4, 500)
        view = z[:, ::2]
        self.assertFalse(view.flags.c_contiguous)
        self.assertEqual(calib.evaluate(logits=view, labels=y),
                         calib.evaluate(logits=np.ascontiguousarray(view),
                                        labels=y))


class OneCall(unittest.TestCase):
    """evaluate() on arrays checks and evaluates them in one call
    (calib_evaluate_arrays); it must give what a Data gives."""

    def setUp(self):
        rng = np.random.default_rng(11)
        n = 2 * 65536 + 999  # two threads' worth of top-label rows
        self.conf = (rng.uniform(0, 1, n) ** 0.3).astype(np.float32)
        self.conf[[5, 70000]] = [-5e-4, 1.0005]  # clamped, and counted
        self.correct = rng.uniform(0, 1, n) < self.conf

    def test_same_as_data(self):
        for dtype in (np.float32, np.float64):
            c = self.conf.astype(dtype)
            for kw in ({}, {"bin_rule": "gpleiss", "bins": 10, "threads": 1}):
                got = calib.evaluate(conf=c, correct=self.correct, **kw)
                want = calib.evaluate(calib.data(conf=c, correct=self.correct),
                                      **kw)
                self.assertEqual(got, want)
                self.assertEqual(got["values_clamped"], 2)

    def test_no_scores(self):
        # scores=False: NLL and Brier None, the rest unchanged, both ways
        want = calib.evaluate(conf=self.conf, correct=self.correct)
        self.assertIsNotNone(want["brier"])
        want.update(nll=None, brier=None)
        for got in (calib.evaluate(conf=self.conf, correct=self.correct,
                                   scores=False),
                    calib.evaluate(calib.data(conf=self.conf,
                                              correct=self.correct),
                                   scores=False)):
            self.assertEqual(got, want)

    def test_same_error(self):
        c = self.conf.copy()
        c[100000] = np.nan
        errs = []
        for call in (lambda: calib.evaluate(conf=c, correct=self.correct),
                     lambda: calib.data(conf=c, correct=self.correct)):
            with self.assertRaises(calib.CalibError) as e:
                call()
            errs.append(e.exception)
        self.assertEqual([(x.code, x.row, x.column, x.message) for x in errs],
                         [(errs[1].code, 100001, 1, errs[1].message)] * 2)


class Errors(unittest.TestCase):

    def setUp(self):
        rng = np.random.default_rng(8)
        self.z = rng.normal(size=(100, 4))
        self.y = rng.integers(0, 4, 100)

    def test_nan_row_and_column(self):
        z = self.z.copy()
        z[41, 2] = np.nan
        with self.assertRaises(calib.CalibError) as e:
            calib.evaluate(logits=z, labels=self.y)
        err = e.exception
        self.assertEqual(err.code, calib.EDATA)
        self.assertEqual((err.row, err.column), (42, 3))
        self.assertIn("NaN", err.message)
        self.assertEqual(err.status, "bad input data")

    def test_bad_label_and_conf(self):
        y = self.y.copy()
        y[9] = 4
        with self.assertRaises(calib.CalibError) as e:
            calib.evaluate(logits=self.z, labels=y)
        self.assertEqual((e.exception.code, e.exception.row), (calib.EDATA, 10))
        y[9] = 2 ** 40
        with self.assertRaises(calib.CalibError) as e:
            calib.evaluate(logits=self.z, labels=y)
        self.assertEqual((e.exception.code, e.exception.row), (calib.EDATA, 10))
        conf = np.full(10, 0.5)
        conf[3] = 1.5
        with self.assertRaises(calib.CalibError) as e:
            calib.evaluate(conf=conf, correct=np.ones(10, bool))
        self.assertEqual((e.exception.code, e.exception.row), (calib.EDATA, 4))
        with self.assertRaises(calib.CalibError) as e:
            calib.evaluate(conf=np.full(3, 0.5), correct=[1, 2, 0])
        self.assertEqual((e.exception.code, e.exception.row), (calib.EDATA, 2))

    def test_usage(self):
        for kw in ({"bins": 0}, {"bin_rule": "nope"}, {"binning": "nope"}):
            with self.assertRaises(calib.CalibError) as e:
                calib.evaluate(logits=self.z, labels=self.y, **kw)
            self.assertEqual(e.exception.code, calib.EINVAL, kw)
        with self.assertRaises(calib.CalibError) as e:
            calib.evaluate(logits=self.z)
        self.assertEqual(e.exception.code, calib.EINVAL)
        with self.assertRaises(calib.CalibError) as e:
            calib.evaluate(logits=self.z[:0], labels=self.y[:0])
        self.assertEqual(e.exception.code, calib.EDATA)

    def test_missing_file(self):
        with self.assertRaises(calib.CalibError) as e:
            calib.read("/nonexistent/x.csv")
        self.assertEqual(e.exception.code, calib.EOPEN)
        self.assertEqual(e.exception.file, "/nonexistent/x.csv")

    def test_gzip_bomb_limit(self):
        """max_gzip_ratio reaches the library: the default refuses a .npy.gz
        of zeros past 64 MiB; no limit inflates it all, and the header's
        lie (an 8 GB shape) is what fails then."""
        head = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000, 10), }"
        head += b" " * (117 - len(head)) + b"\n"
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "z.npy.gz")
            with open(path, "wb") as f:
                f.write(gzip.compress(b"\x93NUMPY\x01\x00\x76\x00" + head + bytes(80 << 20), 1))
            np.save(os.path.join(d, "y.npy"), np.zeros(4, dtype=np.int64))
            for ratio, words in ((0, "decompression bomb"), (math.inf, "truncated")):
                with self.assertRaises(calib.CalibError) as e:
                    calib.read(path, labels=os.path.join(d, "y.npy"), max_gzip_ratio=ratio)
                self.assertEqual(e.exception.code, calib.EDATA)
                self.assertIn(words, str(e.exception))


class Diagrams(unittest.TestCase):

    def setUp(self):
        rng = np.random.default_rng(9)
        self.conf, self.correct = toplabel(rng, 800)
        self.z = rng.normal(0, 3, (600, 4)).astype(np.float32)
        self.y = rng.integers(0, 4, 600)

    def test_svg(self):
        svg = calib.diagram(conf=self.conf, correct=self.correct,
                            title="one")
        root = ET.fromstring(svg)
        self.assertTrue(root.tag.endswith("svg"))
        two = calib.diagram([calib.data(logits=self.z, labels=self.y),
                             {"conf": self.conf, "correct": self.correct}],
                            labels=["logits & co", "top-label"])
        ET.fromstring(two)
        self.assertIn(b"logits &amp; co", two)

    def test_png_pdf_text(self):
        png = calib.diagram({"logits": self.z, "labels": self.y},
                            format="png", width=320, height=360)
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(png[12:16], b"IHDR")
        self.assertEqual(int.from_bytes(png[16:20], "big"), 320)
        pdf = calib.diagram(conf=self.conf, correct=self.correct,
                            format="pdf")
        self.assertTrue(pdf.startswith(b"%PDF-"))
        txt = calib.diagram(conf=self.conf, correct=self.correct,
                            format="text", ascii=True).decode("ascii")
        self.assertIn("ECE", txt)

    def test_too_many_series(self):
        with self.assertRaises(calib.CalibError) as e:
            calib.diagram([{"conf": self.conf, "correct": self.correct}] * 9)
        self.assertEqual(e.exception.code, calib.EINVAL)


class Inputs(unittest.TestCase):

    def test_csv_and_npy_equal_arrays(self):
        rng = np.random.default_rng(10)
        conf, correct = toplabel(rng, 300)
        subj = np.array(["math", "law", "bio"])[rng.integers(0, 3, 300)]
        want = calib.evaluate(conf=conf, correct=correct, groups=subj)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.csv")
            with open(path, "w") as f:
                f.write("confidence,correct,subject\n")
                for p, c, s in zip(conf, correct, subj):
                    f.write("%r,%d,%s\n" % (float(p), c, s))
            got = calib.evaluate(calib.read(path, group="subject"))
            self.assertEqual(got, want)
            np.save(os.path.join(d, "z.npy"), rng.normal(size=(50, 3)))
            np.save(os.path.join(d, "y.npy"), rng.integers(0, 3, 50))
            ds = calib.read(os.path.join(d, "z.npy"),
                            labels=os.path.join(d, "y.npy"))
            self.assertEqual((ds.kind, ds.rows, ds.classes), ("logits", 50, 3))
            self.assertEqual(ds.stats["rows_read"], 50)
            self.assertEqual(
                calib.evaluate(ds),
                calib.evaluate(logits=np.load(os.path.join(d, "z.npy")),
                               labels=np.load(os.path.join(d, "y.npy"))))

    def test_groups_strings_and_ints(self):
        rng = np.random.default_rng(11)
        conf, correct = toplabel(rng, 400)
        g = rng.integers(0, 3, 400)
        names = ["x", "y", "z"]
        a = calib.evaluate(conf=conf, correct=correct, groups=g,
                           group_names=names)
        b = calib.evaluate(conf=conf, correct=correct,
                           groups=[names[i] for i in g])
        self.assertEqual(a, b)
        self.assertEqual(sorted(a["groups"]), names)

    def test_ragged(self):
        rows = [[0.1, 2.0, -1.0, 0.3], [1.0, 0.5, 0.2], [3.0, 0.1, 0.0, 0.0, 1.0]]
        y = [1, 0, 4]
        m = calib.evaluate(logits=rows, labels=y)
        self.assertEqual((m["n"], m["classes"]), (3, None))
        self.assertEqual(m["accuracy"], 2 / 3)
        cal = calib.Calibrator.from_json(
            '{"method":"temperature","temperature":2,"form":"softmax"}')
        flat = cal.apply(data=calib.data(logits=rows, labels=y))
        self.assertEqual(flat.shape, (12,))
        self.assertAlmostEqual(flat[:4].sum(), 1.0, places=14)


if __name__ == "__main__":
    unittest.main()
