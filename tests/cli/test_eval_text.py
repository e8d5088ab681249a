#!/usr/bin/python3
"""CLI tests for what `calib eval` prints as text: the terminal reliability
diagram after the metric table (Unicode, --ascii, --no-diagram), the
before/after diagram of --calibrator and --val/--test, the JSON that has
none; and the top-level help listing every command.

Loaded by tests/cli/run.py, or alone:
    CALIB=build/calib /usr/bin/python3 tests/cli/test_eval_text.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
COMMANDS = ["eval", "fit", "apply", "diagram", "report", "compare", "merge", "demo",
            "help"]
LEGEND = "perfect calibration"


def run(*args):
    p = subprocess.run([CALIB] + [str(a) for a in args], capture_output=True,
                       timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def ok(case, *args):
    rc, out, err = run(*args)
    case.assertEqual(rc, 0, "calib %s: %s" % (" ".join(map(str, args)), err))
    return out


def is_ascii(text):
    return all(ord(c) < 128 for c in text)


def chart_lines(out):
    """The diagram's first and last lines: from the headline ("ECE ...")
    to the x labels, or to the legend under them."""
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if "ECE 0." in l and "N " in l)
    end = next(i for i in range(start, len(lines))
               if lines[i].strip().startswith("0.0") and lines[i].strip().endswith("1.0"))
    if end + 1 < len(lines) and LEGEND in lines[end + 1]:
        end += 1
    return start, end


class EvalDiagram(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="calib-evaltext-")
        demo = os.path.join(cls.tmp, "demo")
        rc, _, err = run("demo", "-o", demo)
        if rc != 0:
            raise AssertionError("calib demo: exit %d: %s" % (rc, err))
        cls.val = os.path.join(demo, "val.csv")
        cls.test = os.path.join(demo, "test.csv")
        cls.cal = os.path.join(cls.tmp, "cal.json")
        rc, _, err = run("fit", cls.val, "-o", cls.cal)
        if rc != 0:
            raise AssertionError("calib fit: exit %d: %s" % (rc, err))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_diagram_after_metric_table(self):
        out = ok(self, "eval", self.test)
        self.assertIn(LEGEND, out)
        self.assertIn("\u2588", out)          # full block: a drawn bar
        self.assertIn("\u2524", out)          # the y axis ticks
        lines = out.splitlines()
        brier = next(i for i, l in enumerate(lines) if "Brier" in l)
        bins = next(i for i, l in enumerate(lines) if l.split()[:2] == ["bin", "lower"])
        start, end = chart_lines(out)
        self.assertLess(brier, start)
        self.assertLess(end, bins)
        self.assertTrue(all(l.startswith("  ") for l in lines[start:end + 1]))
        self.assertTrue(all(l == l.rstrip() for l in lines))

    def test_ascii_is_pure_ascii(self):
        out = ok(self, "eval", self.test, "--ascii", "--group", "subject")
        self.assertTrue(is_ascii(out), [c for c in out if ord(c) >= 128][:5])
        self.assertIn(LEGEND, out)
        self.assertIn("#", out)

    def test_no_diagram_is_the_table_alone(self):
        full = ok(self, "eval", self.test).splitlines()
        bare = ok(self, "eval", self.test, "--no-diagram")
        self.assertNotIn(LEGEND, bare)
        self.assertNotIn("\u2524", bare)
        start, end = chart_lines("\n".join(full))
        # the chart and the blank line before it are all that go
        self.assertEqual(full[:start - 1] + full[end + 1:], bare.splitlines())

    def test_json_has_no_diagram(self):
        for extra in ([], ["--ascii"], ["--no-diagram"]):
            out = ok(self, "eval", self.test, "--json", *extra)
            js = json.loads(out)
            self.assertNotIn(LEGEND, out)
            keys = list(js)
            self.assertEqual(keys[-3:], ["rows_disagree", "rows_duplicate",
                                         "values_unknown"])

    def test_diagram_to_file(self):
        path = os.path.join(self.tmp, "eval.txt")
        self.assertEqual(ok(self, "eval", self.test, "-o", path), "")
        with open(path, encoding="utf-8") as f:
            self.assertIn(LEGEND, f.read())

    def test_before_after(self):
        for args in (["eval", self.test, "--calibrator", self.cal],
                     ["eval", "--val", self.val, "--test", self.test]):
            out = ok(self, *args)
            lines = out.splitlines()
            self.assertEqual(len([l for l in lines if l.lstrip().startswith(
                ("\u25cf before: ECE", "before: ECE"))]), 1, out)
            self.assertEqual(len([l for l in lines if "after: ECE" in l]), 1, out)
            pair = next(i for i, l in enumerate(lines) if l.split() == ["before", "after"])
            head = next(i for i, l in enumerate(lines) if "before: ECE" in l)
            self.assertLess(pair, head)
            self.assertLess(head, lines.index("  accuracy unchanged: yes"))
            asc = ok(self, *args, "--ascii")
            self.assertTrue(is_ascii(asc))
            self.assertIn("before: ECE", asc)
            bare = ok(self, *args, "--no-diagram")
            self.assertNotIn("before: ECE", bare)
            self.assertIn("accuracy unchanged: yes", bare)
            js = json.loads(ok(self, *args, "--json"))
            self.assertIn("after", js)

    def test_fit_and_demo_unchanged(self):
        self.assertNotIn("before: ECE", ok(self, "fit", "--val", self.val,
                                             "--test", self.test))
        self.assertEqual(run("fit", self.val, "--ascii")[0], 64)
        self.assertEqual(run("compare", self.val, self.test, "--no-diagram")[0], 64)


class TopHelp(unittest.TestCase):
    def commands(self, out):
        """The names of the `commands:` section, one per line, each with a
        description after it."""
        lines = out.splitlines()
        i = lines.index("commands:") + 1
        names = []
        while i < len(lines) and lines[i].strip():
            words = lines[i].split()
            self.assertGreaterEqual(len(words), 3, lines[i])   # name + words
            names.append(words[0])
            i += 1
        return names

    def test_lists_every_command(self):
        rc, out, err = run("--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(self.commands(out), COMMANDS)
        for args in (["help"], ["-h"], ["help", "help"], ["help", "--help"]):
            rc, again, err = run(*args)
            self.assertEqual((rc, again, err), (0, out, ""), args)
        rc, _, err = run()
        self.assertEqual(rc, 64)
        self.assertEqual(self.commands(err), COMMANDS)

    def test_each_listed_command_has_help(self):
        for name in COMMANDS[:-1]:
            rc, out, err = run("help", name)
            self.assertEqual(rc, 0, (name, err))
            self.assertIn("usage: calib " + name, out)
        rc, _, err = run("help", "nope")
        self.assertEqual(rc, 64)
        self.assertIn("unknown command 'nope'", err)


def main():
    if not os.access(CALIB, os.X_OK):
        print("cli tests: %s not found (build it with make)" % CALIB)
        return 1
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
