#!/usr/bin/python3
"""CLI tests for `calib report`: the page is written (atomically), exit
codes, nothing on stdout or on disk after a failure, the numbers agree
with `calib eval --json`, user strings are escaped, nothing is fetched,
and headless Chromium (Debian's `chromium`) renders it to a non-blank
screenshot.  Without a working chromium that test is SKIPPED, saying why.

Run alone as  CALIB=build/calib /usr/bin/python3 tests/cli/test_report.py
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))


def run(*args, cwd=None):
    p = subprocess.run([CALIB] + [str(a) for a in args], capture_output=True,
                       cwd=cwd, timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def fetchable(html):
    """What in the page a browser could fetch or run; SVG namespace names
    (xmlns="http://...") are names, never loaded, so they are left out."""
    text = re.sub(r'xmlns(:\w+)?="[^"]*"', "", html)
    banned = ["<script", "<link", "<iframe", "<img", "<object", "<embed",
              "http:", "https:", "//", "src=", "@import", "url(h", "url(/",
              "url(\"", "url('", "javascript:", "onload="]
    return [b for b in banned if b in text]


def read_png(path):
    """Decodes an 8-bit, non-interlaced RGB/RGBA/grey PNG into an (h, w, c)
    uint8 array with zlib and struct only."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    if depth != 8 or interlace:
        raise ValueError("unsupported PNG: depth %d interlace %d" % (depth, interlace))
    ch = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    prev = np.zeros(w * ch, np.int32)
    for y in range(h):
        ftype, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if ftype == 0:
            cur = line
        elif ftype == 1:
            cur = line.copy()
            for x in range(ch, w * ch):
                cur[x] = (cur[x] + cur[x - ch]) & 255
        elif ftype == 2:
            cur = (line + prev) & 255
        else:
            cur = line.copy()
            for x in range(w * ch):
                a = cur[x - ch] if x >= ch else 0
                b, c = prev[x], prev[x - ch] if x >= ch else 0
                if ftype == 3:
                    pred = (a + b) >> 1
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                cur[x] = (cur[x] + pred) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, ch).astype(np.uint8)


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_path, png_path, log_path):
    """Runs headless Chromium on a file URL; returns (exit code, stderr)."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--enable-logging=stderr", "--v=0",
               "--user-data-dir=" + profile, "--screenshot=" + png_path,
               "--window-size=1200,2000", "file://" + os.path.abspath(html_path)]
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=180)
        except subprocess.TimeoutExpired:
            return -1, "timed out after 180 s"
    err = p.stderr.decode("utf-8", "replace")
    with open(log_path, "w") as f:
        f.write(err)
    return p.returncode, err


class ReportCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="calib-report-")
        cls.demo = os.path.join(cls.tmp, "demo")
        rc, _, err = run("demo", "-o", cls.demo)
        if rc != 0:
            raise AssertionError("calib demo: exit %d: %s" % (rc, err))
        cls.val = os.path.join(cls.demo, "val.csv")
        cls.test = os.path.join(cls.demo, "test.csv")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def report(self, name, *extra):
        out = os.path.join(self.tmp, name)
        rc, so, err = run("report", "--val", self.val, "--test", self.test,
                          "--group", "subject", *extra, "-o", out)
        self.assertEqual(rc, 0, err)
        self.assertEqual(so, "")
        with open(out, encoding="utf-8") as f:
            return out, f.read()


class TestReport(ReportCase):
    def test_written_and_numbers(self):
        _, html = self.report("r.html", "--title", "Demo <b> & 'x'")
        self.assertTrue(html.startswith("<!DOCTYPE html>"))
        self.assertIn("<h1>Demo &lt;b&gt; &amp; &#39;x&#39;</h1>", html)
        rc, out, err = run("eval", "--val", self.val, "--test", self.test,
                           "--group", "subject", "--json")
        self.assertEqual(rc, 0, err)
        js = json.loads(out)
        for m in ("ece", "mce", "nll", "brier"):
            for side in ("before", "after"):
                self.assertIn("%.4f" % js[side][m], html, (side, m))
        t = js["calibrator"]["temperature"]
        self.assertIn("%.4g" % t, html)
        for g in js["before"]["groups"]:
            self.assertIn("<td>%s</td>" % g, html)
        for section in ("diagrams", "metrics", "fit", "groups", "inputs"):
            self.assertIn('id="%s"' % section, html)
        self.assertIn("calib report --val %s --test %s" % (self.val, self.test), html)
        self.assertEqual(fetchable(html), [])
        self.assertEqual(html.count("<svg"), 2 + 1 + 4)

    def test_well_formed(self):
        if not shutil.which("xmllint"):
            self.skipTest("xmllint not installed")
        path, _ = self.report("wf.html")
        p = subprocess.run(["xmllint", "--noout", "--nonet", path],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())

    def test_npy_sets(self):
        rng = np.random.default_rng(3)
        paths = {}
        for name in ("val", "test"):
            z = rng.normal(size=(400, 5)) * 3
            y = np.array([rng.choice(5, p=np.exp(r / 3) / np.exp(r / 3).sum()) for r in z])
            paths[name] = os.path.join(self.tmp, name + ".npy")
            np.save(paths[name], z)
            np.save(os.path.join(self.tmp, name + "_y.npy"), y)
        out = os.path.join(self.tmp, "npy.html")
        rc, so, err = run("report", "--val", paths["val"], "--test", paths["test"],
                          "--val-labels", os.path.join(self.tmp, "val_y.npy"),
                          "--test-labels", os.path.join(self.tmp, "test_y.npy"),
                          "--objective", "ece", "--bins", "10", "-o", out)
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            html = f.read()
        self.assertIn("grid on log T", html)
        self.assertIn("equal-width, 10 bins", html)
        self.assertNotIn('id="groups"', html)

    def test_with_calibrator(self):
        cal = os.path.join(self.tmp, "cal.json")
        rc, _, err = run("fit", self.val, "-o", cal)
        self.assertEqual(rc, 0, err)
        out = os.path.join(self.tmp, "cal.html")
        rc, so, err = run("report", "--calibrator", cal, "--test", self.test,
                          "--group", "subject", "-o", out)
        self.assertEqual((rc, so), (0, ""), err)
        with open(out, encoding="utf-8") as f:
            html = f.read()
        rc, js, err = run("eval", self.test, "--calibrator", cal, "--group",
                          "subject", "--json")
        self.assertEqual(rc, 0, err)
        js = json.loads(js)
        for m in ("ece", "mce", "nll", "brier"):
            for side in ("before", "after"):
                self.assertIn("%.4f" % js[side][m], html, (side, m))
        for section in ("diagrams", "metrics", "groups", "inputs"):
            self.assertIn('id="%s"' % section, html)
        self.assertNotIn('id="fit"', html)               # no fit section
        self.assertNotIn("Validation NLL over T", html)  # no curve
        self.assertNotIn("Validation (fit)", html)
        t = js["calibrator"]["temperature"]
        self.assertIn("T = %.4g from %s" % (t, cal), html)
        self.assertIn("calib report --calibrator %s --test %s" % (cal, self.test), html)
        self.assertEqual(fetchable(html), [])
        self.assertEqual(html.count("<svg"), 2 + 4)
        # --title wins over the default; a bad calibrator fails cleanly
        rc, _, err = run("report", "--calibrator", cal, "--test", self.test,
                         "--title", "Mine", "-o", out)
        self.assertEqual(rc, 0, err)
        with open(out, encoding="utf-8") as f:
            self.assertIn("<h1>Mine</h1>", f.read())
        missing = os.path.join(self.tmp, "none.json")
        rc, so, err = run("report", "--calibrator", missing, "--test",
                          self.test, "-o", os.path.join(self.tmp, "x.html"))
        self.assertEqual((rc, so), (66, ""), err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.html")))

    def test_every_method(self):
        """Each method's page: the test metrics before and after that
        `calib eval --val --test --method M` gives, the method named, its
        parameters as `calib fit --method M --json` gives them, and the
        NLL-over-T chart for temperature scaling only."""
        params = {"platt": ("a", "b"), "beta": ("a", "b", "c"),
                  "vector": ("scale", "bias")}
        for m in ("platt", "beta", "vector", "histogram", "isotonic"):
            path, html = self.report("m_%s.html" % m, "--method", m)
            rc, out, err = run("eval", "--val", self.val, "--test", self.test,
                               "--group", "subject", "--method", m, "--json")
            self.assertEqual(rc, 0, err)
            js = json.loads(out)
            for metric in ("ece", "mce", "brier"):
                for side in ("before", "after"):
                    self.assertIn("%.4f" % js[side][metric], html, (m, side, metric))
            name = js["calibrator"]["method"]
            self.assertEqual(name, m)
            self.assertIn('id="fit"', html)
            self.assertNotIn("Validation NLL over T", html)
            self.assertNotIn("temperature scaling", html.lower(), m)
            self.assertEqual(html.count("<svg"), 2 + 4, m)
            rc, out, err = run("fit", self.val, "--method", m, "--json")
            self.assertEqual(rc, 0, err)
            cal = json.loads(out)
            for key in params.get(m, ()):
                values = cal[m][key]
                for v in (values if isinstance(values, list) else [values])[:8]:
                    # the page writes a minus sign as U+2212
                    self.assertIn("%.6g" % abs(v), html, (m, key))
            if m == "histogram":
                self.assertIn("<dt>Bins</dt><dd>%d</dd>"
                              % len(cal["histogram"]["values"]), html)
            if m == "isotonic":
                self.assertIn("<dt>Fitted points</dt><dd>%d</dd>"
                              % len(cal["isotonic"]["x_thresholds"]), html)
            self.assertEqual(fetchable(html), [])
            if shutil.which("xmllint"):
                p = subprocess.run(["xmllint", "--noout", "--nonet", path],
                                   capture_output=True, timeout=60)
                self.assertEqual(p.returncode, 0, p.stderr.decode())
        # --method all: one page cannot show them all
        d = tempfile.mkdtemp(dir=self.tmp)
        rc, so, err = run("report", "--val", self.val, "--test", self.test,
                          "--method", "all", "-o", "x.html", cwd=d)
        self.assertEqual((rc, so), (64, ""), err)
        self.assertIn("calib fit --method all", err)
        self.assertEqual(os.listdir(d), [])

    def test_with_platt_calibrator(self):
        cal = os.path.join(self.tmp, "platt.json")
        rc, _, err = run("fit", self.val, "--method", "platt", "-o", cal)
        self.assertEqual(rc, 0, err)
        out = os.path.join(self.tmp, "platt.html")
        rc, so, err = run("report", "--calibrator", cal, "--test", self.test,
                          "-o", out)
        self.assertEqual((rc, so), (0, ""), err)
        with open(out, encoding="utf-8") as f:
            html = f.read()
        rc, js, err = run("eval", self.test, "--calibrator", cal, "--json")
        self.assertEqual(rc, 0, err)
        js = json.loads(js)
        for side in ("before", "after"):
            self.assertIn("%.4f" % js[side]["ece"], html, side)
        self.assertIn("Calibration report: platt from %s" % cal, html)
        self.assertIn("After Platt scaling", html)
        self.assertNotIn('id="fit"', html)

    def test_usage_errors(self):
        cases = [["--val", self.val, "--test", self.test],          # no -o
                 ["--val", self.val, "-o", "x.html"],                 # no --test
                 ["--test", self.test, "-o", "x.html"],               # no --val
                 ["--val", self.val, "--calibrator", "c.json", "--test", self.test,
                  "-o", "x.html"],                                     # both
                 ["--calibrator", "c.json", "-o", "x.html"],           # no --test
                 [self.val, "--test", self.test, "-o", "x.html"],     # positional
                 ["--val", self.val, "--test", self.test, "--title"],
                 ["--val", self.val, "--test", self.test, "--bogus", "-o", "x.html"]]
        for args in cases:
            d = tempfile.mkdtemp(dir=self.tmp)
            rc, so, err = run("report", *args, cwd=d)
            self.assertEqual(rc, 64, (args, err))
            self.assertEqual(so, "")
            self.assertTrue(err.startswith("calib: "), err)
            self.assertEqual(os.listdir(d), [], args)

    def test_failures_leave_nothing(self):
        bad = os.path.join(self.tmp, "bad.csv")
        with open(bad, "w") as f:
            f.write("logit_0,logit_1,label\n1,2,0\nnan,1,1\n")
        out = os.path.join(self.tmp, "keep.html")
        with open(out, "w") as f:
            f.write("old")
        for val, code in ((bad, 65), (os.path.join(self.tmp, "missing.csv"), 66)):
            rc, so, err = run("report", "--val", val, "--test", self.test,
                              "-o", out)
            self.assertEqual(rc, code, err)
            self.assertEqual(so, "")
            with open(out) as f:
                self.assertEqual(f.read(), "old")
        rc, so, err = run("report", "--val", self.val, "--test", self.test,
                          "-o", os.path.join(self.tmp, "no", "such", "dir.html"))
        self.assertEqual(rc, 73, err)
        self.assertEqual(so, "")
        leftovers = [n for n in os.listdir(self.tmp) if n.startswith(".keep")]
        self.assertEqual(leftovers, [])

    def test_help(self):
        rc, so, _ = run("report", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: calib report", so)
        rc, so, _ = run("help", "report")
        self.assertEqual(rc, 0)
        self.assertIn("--val VAL --test TEST", so)


class TestReportBrowser(ReportCase):
    def test_chromium_renders(self):
        if not chromium():
            self.skipTest("chromium not installed (apt-get install chromium)")
        path, html = self.report("browser.html")
        self.assertEqual(fetchable(html), [])
        png = os.path.join(self.tmp, "shot.png")
        rc, err = screenshot(path, png, os.path.join(self.tmp, "chromium.log"))
        if not os.path.exists(png):
            # Tell a broken report from a chromium that cannot run here.
            plain = os.path.join(self.tmp, "plain.html")
            with open(plain, "w") as f:
                f.write("<!DOCTYPE html><p>x</p>")
            rc2, err2 = screenshot(plain, os.path.join(self.tmp, "plain.png"),
                                   os.path.join(self.tmp, "plain.log"))
            if not os.path.exists(os.path.join(self.tmp, "plain.png")):
                self.skipTest("chromium cannot run here (exit %d): %s"
                              % (rc2, err2.strip()[-300:]))
            self.fail("chromium made no screenshot of the report (exit %d): %s"
                      % (rc, err[-500:]))
        for line in err.splitlines():
            self.assertNotIn("net::ERR_", line)
            self.assertNotIn("Failed to load", line)
        img = read_png(png)[:, :, :3].astype(float)
        self.assertEqual(img.shape[:2], (2000, 1200))
        grey = img.mean(axis=2)
        ink = (grey < 200).mean()          # text, bars, lines
        blue = ((img[:, :, 2] > 150) & (img[:, :, 0] < 100)).mean()
        self.assertGreater(grey.std(), 20.0)
        self.assertGreater(ink, 0.02)
        self.assertGreater(blue, 0.01)     # the diagrams' bars are drawn


if __name__ == "__main__":
    unittest.main(verbosity=2)
