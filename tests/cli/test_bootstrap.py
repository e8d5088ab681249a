#!/usr/bin/python3
"""Bootstrap intervals through the CLI: `eval --ci`, `compare --paired`.

Expected intervals come from tests/golden/gen_bootstrap.py (the generator
of calib.h written again in Python, every replicate evaluated with numpy,
np.percentile), read from $CALIB_GOLDEN/bootstrap_cases.json; the inputs
are written here as CSV with %.17g so they read back exactly.
"""
import json
import os
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
GOLDEN = os.environ.get("CALIB_GOLDEN", os.path.join(ROOT, "build", "golden"))
CORE = ["accuracy", "mean_confidence", "ece", "mce", "rmsce", "nll", "brier"]


def run(*args):
    p = subprocess.run([CALIB] + [str(a) for a in args], capture_output=True,
                       timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def run_json(*args):
    rc, out, err = run(*args, "--json")
    if rc != 0:
        raise AssertionError("calib %s: exit %d: %s" % (args, rc, err))
    return json.loads(out)


def golden():
    with open(os.path.join(GOLDEN, "bootstrap_cases.json")) as f:
        return json.load(f)


class TestBootstrapCli(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.g = golden()

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def assertInterval(self, got, want, what):
        for s in range(2):
            if want[s] is None:
                self.assertIsNone(got[s], what)
            else:
                self.assertLessEqual(abs(got[s] - want[s]),
                                     1e-12 * max(1.0, abs(want[s])),
                                     "%s[%d]: %r vs numpy %r" % (what, s,
                                                                 got[s], want[s]))

    def toplabel_csv(self):
        c = self.g["intervals"][0]
        self.assertEqual(c["name"], "toplabel_groups")
        p = self.path("top.csv")
        with open(p, "w") as f:
            f.write("confidence,correct,topic\n")
            for x, y, g in zip(c["conf"], c["correct"], c["groups"]):
                f.write("%.17g,%d,%s\n" % (x, y, c["group_names"][g]))
        return p, c

    def logits_csv(self, name, z, labels, k):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(",".join("logit_%d" % j for j in range(k)) + ",label\n")
            for i, y in enumerate(labels):
                f.write(",".join("%.17g" % x for x in z[i * k:(i + 1) * k]))
                f.write(",%d\n" % y)
        return p

    def test_eval_intervals_match_numpy(self):
        p, c = self.toplabel_csv()
        js = run_json("eval", p, "--group", "topic", "--ci", "90",
                      "--bootstrap", c["resamples"], "--seed", c["seed"])
        self.assertEqual(js["ci_level"], 0.9)
        self.assertEqual(js["ci_resamples"], c["resamples"])
        for m in CORE:
            self.assertInterval(js[m + "_ci"], c["expected"][m], m)
        for name, exp in c["groups_expected"].items():
            for m in CORE:
                self.assertInterval(js["groups"][name][m + "_ci"], exp[m],
                                    name + "." + m)

    def test_level_spellings_and_defaults(self):
        p, _ = self.toplabel_csv()
        a = run("eval", p, "--ci", "0.95", "--bootstrap", 40, "--json")
        b = run("eval", p, "--ci", "95", "--bootstrap", 40, "--json")
        c = run("eval", p, "--ci", "95%", "--bootstrap", 40, "--json")
        d = run("eval", p, "--bootstrap", 40, "--json")
        self.assertEqual(a[0], 0)
        self.assertEqual(a[1], b[1])
        self.assertEqual(a[1], c[1])
        self.assertEqual(a[1], d[1])  # --bootstrap alone: 95 %
        js = json.loads(a[1])
        self.assertEqual(js["ci_level"], 0.95)
        self.assertEqual(js["ci_seed"], 0)
        self.assertEqual(run_json("eval", p, "--ci", "0.5")["ci_resamples"],
                         1000)
        self.assertNotIn("ece_ci", run_json("eval", p))

    def test_bad_values(self):
        p, _ = self.toplabel_csv()
        for args in (["--ci", "1"], ["--ci", "100"], ["--ci", "0"],
                     ["--ci", "-5"], ["--ci", "x"], ["--bootstrap", "0"],
                     ["--seed", "-1"], ["--seed", "1.5"]):
            rc, out, err = run("eval", p, *args)
            self.assertEqual(rc, 64, args)
            self.assertEqual(out, "")
        rc, _, err = run("eval", p, "--ci", "1")
        self.assertIn("0.95", err)
        rc, _, err = run("eval", p, "--partial", "--ci", "0.9")
        self.assertEqual(rc, 64)
        self.assertIn("every row", err)

    def test_threads_and_seed(self):
        p, _ = self.toplabel_csv()
        one = run("eval", p, "--group", "topic", "--bootstrap", 80,
                  "--threads", 1, "--json")
        eight = run("eval", p, "--group", "topic", "--bootstrap", 80,
                    "--threads", 8, "--json")
        other = run("eval", p, "--group", "topic", "--bootstrap", 80,
                    "--seed", 1, "--json")
        self.assertEqual(one[1], eight[1])
        self.assertNotEqual(json.loads(one[1])["ece_ci"],
                            json.loads(other[1])["ece_ci"])

    def test_table_shows_intervals(self):
        p, _ = self.toplabel_csv()
        rc, out, _ = run("eval", p, "--group", "topic", "--ci", "90",
                         "--bootstrap", 50, "--no-diagram")
        self.assertEqual(rc, 0)
        line = [l for l in out.splitlines() if l.strip().startswith("ECE")][0]
        js = run_json("eval", p, "--ci", "90", "--bootstrap", 50)
        self.assertIn("[%9.6f, %9.6f]" % tuple(js["ece_ci"]), line)
        self.assertIn("90 % bootstrap percentile intervals, 50 resamples", out)
        self.assertIn("ECE interval", out)

    def test_paired_matches_numpy(self):
        c = self.g["paired"]
        a = self.logits_csv("a.csv", c["a"], c["labels"], c["k"])
        b = self.logits_csv("b.csv", c["b"], c["labels"], c["k"])
        js = run_json("compare", a, b, "--paired", "--bins", 10,
                      "--bootstrap", c["resamples"], "--seed", c["seed"],
                      "--ci", c["level"])
        for m in CORE:
            e, got = c["expected"][m], js["paired"][m]
            self.assertLessEqual(abs(got["diff"] - e["diff"]), 1e-12, m)
            self.assertInterval(got["ci"], e["ci"], m)
            self.assertEqual(got["p_le_0"], e["p_le_0"], m)
        self.assertEqual(js["paired_options"]["resamples"], c["resamples"])
        self.assertIn("ece_ci", js["sets"][0]["metrics"])  # --bootstrap
        alone = run_json("compare", a, b, "--paired")  # 1000, no set CIs
        self.assertEqual(alone["paired_options"]["resamples"], 1000)
        self.assertNotIn("ece_ci", alone["sets"][0]["metrics"])
        rc, out, _ = run("compare", a, b, "--paired", "--bootstrap", 30)
        self.assertEqual(rc, 0)
        self.assertIn("paired bootstrap: b - a on the same 240 rows", out)

    def test_paired_self_and_mismatch(self):
        c = self.g["paired"]
        a = self.logits_csv("a.csv", c["a"], c["labels"], c["k"])
        js = run_json("compare", a, a, "--paired", "--bootstrap", 20)
        for m in CORE:
            self.assertEqual(js["paired"][m]["diff"], 0)
            self.assertEqual(js["paired"][m]["ci"], [0, 0])
        short = self.logits_csv("short.csv", c["a"], c["labels"][:-1], c["k"])
        rc, out, err = run("compare", a, short, "--paired", "--bootstrap", 5)
        self.assertEqual(rc, 65)
        self.assertIn("same rows in the same order", err)
        self.assertEqual(out, "")
        rc, _, err = run("compare", a, a, a, "--paired")
        self.assertEqual(rc, 64)


if __name__ == "__main__":
    unittest.main()
