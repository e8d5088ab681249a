#!/usr/bin/python3
"""CLI tests for `calib diagram`: SVG/PNG/PDF/text outputs, xmllint, PNG
dimensions, pdfinfo page size, exit codes, and atomic outputs.

Runs alone as
    CALIB=build/calib /usr/bin/python3 tests/cli/test_diagram.py
or from another runner that loads this module's unittest cases.
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
DATA = os.path.join(ROOT, "..", "shared", "data")
TOP1 = os.path.join(DATA, "top1-confidence-imagenet-cifar10")


def run(*args):
    p = subprocess.run([CALIB] + [str(a) for a in args], capture_output=True,
                       timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def write_toplabel(path, n, seed, skew):
    """A top-label CSV with `n` rows, deterministic, accuracy = conf^skew."""
    state = seed
    with open(path, "w") as f:
        f.write("confidence,correct\n")
        for _ in range(n):
            state = (state * 6364136223846793005 + 1442695040888963407) % 2 ** 64
            conf = 0.3 + 0.7 * (state >> 11) / 2.0 ** 53
            state = (state * 6364136223846793005 + 1442695040888963407) % 2 ** 64
            correct = int((state >> 11) / 2.0 ** 53 < conf ** skew)
            f.write("%r,%d\n" % (conf, correct))


class Diagram(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="calib-diagram-")
        self.a = self.path("base.csv")
        self.b = self.path("tuned.csv")
        write_toplabel(self.a, 500, 1, 2.0)
        write_toplabel(self.b, 500, 2, 1.0)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_svg_one_series(self):
        out = self.path("d.svg")
        rc, _, err = run("diagram", self.a, "--bins", 10, "--title", "A & B", "-o", out)
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            svg = f.read()
        # confidences lie in [0.3, 1]: bins 0-2 are empty slots, not bars
        self.assertEqual(svg.count('<rect class="bar"'), 7)
        self.assertEqual(svg.count('<rect class="empty"'), 3)
        self.assertIn(">A &amp; B</text>", svg)
        self.assertIn(">base</text>", svg)          # the default label
        if shutil.which("xmllint"):
            p = subprocess.run(["xmllint", "--noout", out], capture_output=True)
            self.assertEqual(p.returncode, 0, p.stderr)
        else:
            print("xmllint not installed: SVG not parsed", file=sys.stderr)

    def test_svg_overlay_labels(self):
        out = self.path("d.svg")
        rc, _, err = run("diagram", self.a, self.b, "--label", "before",
                         "--label", "after", "--binning", "mass", "-o", out)
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            svg = f.read()
        self.assertEqual(svg.count('class="legend-label"'), 2)
        self.assertIn(">before</text>", svg)
        self.assertIn(">after</text>", svg)
        self.assertEqual(svg.count('<polyline class="curve"'), 2)

    def test_png_size(self):
        out = self.path("d.png")
        rc, _, err = run("diagram", self.a, self.b, "--width", 500, "--height", 400, "-o", out)
        self.assertEqual(rc, 0, err)
        with open(out, "rb") as f:
            head = f.read(24)
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        self.assertEqual(head[12:16], b"IHDR")
        self.assertEqual(struct.unpack(">II", head[16:24]), (500, 400))

    def test_pdf(self):
        out = self.path("d.pdf")
        rc, _, err = run("diagram", self.a, "-o", out)
        self.assertEqual(rc, 0, err)
        with open(out, "rb") as f:
            self.assertEqual(f.read(4), b"%PDF")
        if not shutil.which("pdfinfo"):
            print("pdfinfo not installed: PDF not parsed", file=sys.stderr)
            return
        p = subprocess.run(["pdfinfo", out], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r"Page size:\s+640 x 720 pts")

    def test_text_stdout_and_file(self):
        rc, out, err = run("diagram", self.a, "--ascii")
        self.assertEqual(rc, 0, err)
        self.assertIn("ECE 0.", out)
        self.assertTrue(all(ord(c) < 128 for c in out))
        txt = self.path("d.txt")
        rc, _, err = run("diagram", self.a, "-o", txt)
        self.assertEqual(rc, 0, err)
        with open(txt, encoding="utf-8") as f:
            self.assertIn("\u2588", f.read())

    def test_bad_extension(self):
        out = self.path("d.jpg")
        rc, _, err = run("diagram", self.a, "-o", out)
        self.assertEqual(rc, 64)
        self.assertIn("extension", err)
        self.assertFalse(os.path.exists(out))

    def test_usage_errors(self):
        self.assertEqual(run("diagram")[0], 64)
        self.assertEqual(run("diagram", self.a, self.b, "--label", "x",
                             "-o", self.path("d.svg"))[0], 64)
        self.assertEqual(run("diagram", self.a, "--width", "wide",
                             "-o", self.path("d.svg"))[0], 64)
        self.assertEqual(run("diagram", self.a, "--width", 10,
                             "-o", self.path("d.svg"))[0], 64)
        self.assertEqual(sorted(os.listdir(self.dir)), ["base.csv", "tuned.csv"])

    def test_failed_run_leaves_nothing(self):
        bad = self.path("bad.csv")
        with open(bad, "w") as f:
            f.write("confidence,correct\n0.5,1\n1.7,0\n")
        out = self.path("d.png")
        rc, _, err = run("diagram", self.a, bad, "-o", out)
        self.assertEqual(rc, 65, err)
        self.assertEqual(sorted(os.listdir(self.dir)),
                         ["bad.csv", "base.csv", "tuned.csv"])
        # an existing output survives a failed run untouched
        with open(out, "wb") as f:
            f.write(b"old")
        rc, _, _ = run("diagram", self.path("missing.csv"), "-o", out)
        self.assertEqual(rc, 66)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"old")

    def test_help(self):
        rc, out, _ = run("diagram", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: calib diagram", out)

    @unittest.skipUnless(os.path.isdir(TOP1), "../shared/data not present")
    def test_real_overlay(self):
        out = self.path("imagenet.svg")
        files = [os.path.join(TOP1, f) for f in
                 ("imagenet_timm_gluon_senet154.csv",
                  "imagenet_torchvision_resnext101_32x8d.csv")]
        rc, _, err = run("diagram", *files, "-o", out)
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            svg = f.read()
        self.assertIn(">imagenet_timm_gluon_senet154</text>", svg)
        self.assertEqual(svg.count('<polyline class="curve"'), 2)


def main():
    if not os.access(CALIB, os.X_OK):
        print("cli tests: %s not found (build it with make)" % CALIB)
        return 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
