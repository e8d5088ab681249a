#!/usr/bin/python3
"""CLI tests for shards: `calib eval FILE --partial -o PART` and
`calib merge PART... [--json]`.

Every case splits a data set into shards (here, at test time), writes each
shard's partial state, merges them, and requires the merged JSON to equal
`calib eval --json` over the whole file key for key, every float exactly
(compared as %.17g strings): on the DenseNet-40 CIFAR-10 logits of
../shared/data (skipped when absent) and on generated top-label, logit,
weighted, grouped and float32 data.  Also: an empty shard is fine; states of
different settings refuse to merge (65, naming both files); malformed,
truncated or missing states fail (65, 66) naming the file and JSON path;
and a failed run leaves no output file.

Loaded by tests/cli/run.py, or alone:
    CALIB=build/calib /usr/bin/python3 tests/cli/test_merge.py
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
DENSENET = os.path.join(ROOT, "..", "shared", "data", "densenet40-cifar10-logits")


def run(*args):
    p = subprocess.run([CALIB] + [str(a) for a in args], capture_output=True,
                       timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def exact(v):
    """A JSON value with every float as its %.17g string: == is bit for bit."""
    if isinstance(v, float):
        return "%.17g" % v
    if isinstance(v, dict):
        return {k: exact(x) for k, x in v.items()}
    if isinstance(v, list):
        return [exact(x) for x in v]
    return v


# Smooth and classwise ECE need every row's confidence and scores, which
# partial states do not hold: a merge writes them null.
NOT_IN_STATES = ("smece", "smece_bandwidth", "classwise_ece")


def as_merged(js):
    """eval's JSON as a merge of its shards gives it."""
    js = dict(js)
    for k in NOT_IN_STATES:
        if k in js:
            js[k] = None
    if isinstance(js.get("groups"), dict):
        js["groups"] = {g: as_merged(v) for g, v in js["groups"].items()}
    return js


def text_as_merged(text):
    return [line for line in text.splitlines()
            if not line.lstrip().startswith(("smooth ECE", "classwise ECE"))]


def split_csv(path, out_dir, n_shards, rng, empty=False):
    """Writes the data rows of `path` into n_shards CSV files with its
    header, cut at random places (and one header-only file with `empty`);
    returns their paths."""
    with open(path) as f:
        header = f.readline()
        rows = f.readlines()
    cuts = sorted(rng.sample(range(1, len(rows)), n_shards - 1))
    bounds = [0] + cuts + [len(rows)]
    paths = []
    for i in range(n_shards):
        p = os.path.join(out_dir, "shard%d.csv" % i)
        with open(p, "w") as f:
            f.write(header)
            f.writelines(rows[bounds[i]:bounds[i + 1]])
        paths.append(p)
    if empty:
        p = os.path.join(out_dir, "empty.csv")
        with open(p, "w") as f:
            f.write(header)
        paths.insert(rng.randrange(len(paths) + 1), p)
    return paths


class Case(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="calib-merge-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def ok(self, *args):
        rc, out, err = run(*args)
        self.assertEqual(rc, 0, "calib %s: %s" % (" ".join(map(str, args)), err))
        return out

    def fails(self, code, args, *contains):
        rc, out, err = run(*args)
        self.assertEqual(rc, code, "calib %s: %s" % (" ".join(map(str, args)), err))
        self.assertEqual(out, "")
        self.assertTrue(err.startswith("calib: "), err)
        self.assertEqual(err.count("\n"), 1, err)
        for c in contains:
            self.assertIn(c, err)
        return err

    def partials(self, shards, *options):
        parts = []
        for i, s in enumerate(shards):
            p = self.path("part%d.json" % i)
            self.assertEqual(self.ok("eval", s, *options, "--partial", "-o", p), "")
            parts.append(p)
        return parts

    def assertMergeEqualsEval(self, whole, shards, *options, eval_args=()):
        """merge --json of the shards' states == eval --json of `whole`,
        every key, every float exactly, whatever the order of the states;
        and, merged in shard order (groups are listed in order of first
        appearance), the tables agree but for the line naming the input."""
        parts = self.partials(shards, *options)
        shuffled = list(parts)
        random.Random(len(parts)).shuffle(shuffled)
        merged = json.loads(self.ok("merge", *shuffled, "--json"))
        one = as_merged(json.loads(self.ok("eval", *(eval_args or (whole,)),
                                           *options, "--json")))
        self.assertEqual(sorted(merged), sorted(one))
        for key in one:
            self.assertEqual(exact(merged[key]), exact(one[key]), key)
        text_m = self.ok("merge", *parts).splitlines()
        text_e = text_as_merged(self.ok("eval", *(eval_args or (whole,)),
                                        *options))
        self.assertEqual(text_m[1:], text_e[1:])
        self.assertIn("partial states" if len(parts) > 1 else parts[0], text_m[0])
        return merged


@unittest.skipUnless(os.path.isdir(DENSENET), "../shared/data not present")
class TestDenseNetShards(Case):
    def test_three_shards_bit_for_bit(self):
        whole = os.path.join(DENSENET, "test.csv")
        shards = split_csv(whole, self.dir, 3, random.Random(3))
        js = self.assertMergeEqualsEval(whole, shards)
        self.assertEqual(js["n"], 10000)
        self.assertEqual(js["rows_read"], 10000)
        self.assertEqual(round(js["nll"], 6), 0.430059)

    def test_shards_with_an_empty_one_and_other_settings(self):
        whole = os.path.join(DENSENET, "test.csv")
        shards = split_csv(whole, self.dir, 3, random.Random(4), empty=True)
        self.assertMergeEqualsEval(whole, shards, "--bins", "10",
                                   "--bin-rule", "torchmetrics")


class TestGeneratedShards(Case):
    def write(self, name, header, rows):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(",".join(header) + "\n")
            for r in rows:
                f.write(",".join(repr(x) if isinstance(x, float) else str(x)
                                 for x in r) + "\n")
        return p

    def top_label(self, n, seed):
        rng = np.random.default_rng(seed)
        conf = rng.uniform(0, 1, n)
        conf[:6] = [0.0, 1.0, 0.2, 0.8, 1 / 3, 2 / 15]   # on edges
        correct = (rng.uniform(size=n) < conf ** 1.5).astype(int)
        weight = rng.uniform(0, 3, n)
        subject = rng.choice(["algebra", "biology", "chemistry", "law"], n)
        return self.write("top.csv", ["confidence", "correct", "weight", "subject"],
                          zip(conf.tolist(), correct.tolist(), weight.tolist(),
                              subject.tolist()))

    def test_top_label_every_rule(self):
        whole = self.top_label(3000, 1)
        for i, rule in enumerate(["sklearn", "netcal", "torchmetrics", "gpleiss",
                                  "hollance"]):
            shards = split_csv(whole, self.dir, 1 + i, random.Random(i))
            self.assertMergeEqualsEval(whole, shards, "--bin-rule", rule)

    def test_weighted_and_grouped(self):
        whole = self.top_label(4000, 2)
        shards = split_csv(whole, self.dir, 5, random.Random(5), empty=True)
        js = self.assertMergeEqualsEval(whole, shards, "--weight", "weight",
                                        "--group", "subject", "--bins", "12")
        self.assertEqual(sorted(js["groups"]),
                         ["algebra", "biology", "chemistry", "law"])

    def test_logits_and_probabilities(self):
        rng = np.random.default_rng(3)
        z = rng.normal(0, 2.5, (2500, 4))
        y = rng.integers(0, 4, 2500)
        whole = self.write("logits.csv", ["logit_%d" % k for k in range(4)] + ["label"],
                           (z[i].tolist() + [int(y[i])] for i in range(len(y))))
        self.assertMergeEqualsEval(whole, split_csv(whole, self.dir, 4, random.Random(6)))
        q = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        q[:20, 0] = 0.0   # NLL clipped at 1e-15 on some rows
        q[:20] /= q[:20].sum(axis=1, keepdims=True)
        whole = self.write("probs.csv", ["prob_%d" % k for k in range(4)] + ["label"],
                           (q[i].tolist() + [int(y[i])] for i in range(len(y))))
        js = self.assertMergeEqualsEval(whole, split_csv(whole, self.dir, 3, random.Random(7)))
        self.assertGreater(js["nll_clipped_rows"], 0)

    def test_float32_npy_shards(self):
        # float32 confidences of weight 1 take calib's integer fast path
        rng = np.random.default_rng(4)
        conf = rng.uniform(0, 1, 5000).astype(np.float32)
        correct = (rng.uniform(size=5000) < conf).astype(np.uint8)
        np.save(self.path("conf.npy"), conf)
        np.save(self.path("correct.npy"), correct)
        cuts = [0, 1234, 1234, 4000, 5000]    # one empty shard
        for i in range(4):
            np.save(self.path("c%d.npy" % i), conf[cuts[i]:cuts[i + 1]])
            np.save(self.path("k%d.npy" % i), correct[cuts[i]:cuts[i + 1]])
        parts = []
        for i in range(4):
            p = self.path("p%d.json" % i)
            self.ok("eval", self.path("c%d.npy" % i), "--correct",
                    self.path("k%d.npy" % i), "--partial", "-o", p)
            parts.append(p)
        merged = json.loads(self.ok("merge", *parts, "--json"))
        one = as_merged(json.loads(self.ok("eval", self.path("conf.npy"),
                                           "--correct",
                                           self.path("correct.npy"),
                                           "--json")))
        self.assertEqual(exact(merged), exact(one))

    def test_several_files_become_groups(self):
        whole = self.top_label(900, 5)
        a, b = split_csv(whole, self.dir, 2, random.Random(8))
        p = self.path("ab.json")
        self.ok("eval", a, b, "--partial", "-o", p)
        merged = json.loads(self.ok("merge", p, "--json"))
        one = as_merged(json.loads(self.ok("eval", a, b, "--json")))
        self.assertEqual(exact(merged), exact(one))
        self.assertEqual(sorted(merged["groups"]), ["shard0", "shard1"])


class TestMassShards(Case):
    """merge --binning mass of states with value tables == eval --binning
    mass over every row, key for key, bit for bit."""

    @unittest.skipUnless(os.path.isdir(DENSENET), "../shared/data not present")
    def test_densenet_three_shards(self):
        whole = os.path.join(DENSENET, "test.csv")
        shards = split_csv(whole, self.dir, 3, random.Random(9))
        parts = self.partials(shards)
        merged = json.loads(self.ok("merge", parts[2], parts[0], parts[1],
                                    "--binning", "mass", "--json"))
        one = as_merged(json.loads(self.ok("eval", whole, "--binning", "mass",
                                           "--json")))
        self.assertEqual(exact(merged), exact(one))
        for k in NOT_IN_STATES:
            self.assertIsNone(merged[k])
        self.assertEqual(exact(merged["auroc"]), exact(one["auroc"]))
        self.assertEqual(merged["binning"], "mass")
        self.assertNotIn("approximate", merged)
        text_m = self.ok("merge", *parts, "--binning", "mass").splitlines()
        text_e = text_as_merged(self.ok("eval", whole, "--binning", "mass"))
        self.assertEqual(text_m[1:], text_e[1:])

    def test_ties_weights_groups(self):
        rng = np.random.default_rng(21)
        n = 3000
        conf = np.sqrt(rng.uniform(0, 1, n))
        conf[::3] = np.floor(conf[::3] * 20) / 20      # ties across shards
        conf[:4] = [0.0, 1.0, 1.0, 0.5]
        correct = (rng.uniform(size=n) < conf).astype(int)
        weight = rng.integers(0, 5, n) / 2
        subject = rng.choice(["algebra", "law", "music"], n)
        whole = self.path("top.csv")
        with open(whole, "w") as f:
            f.write("confidence,correct,weight,subject\n")
            for row in zip(conf.tolist(), correct, weight.tolist(), subject):
                f.write("%r,%d,%r,%s\n" % row)
        for opts in ([], ["--weight", "weight", "--group", "subject",
                          "--bins", "10"]):
            shards = split_csv(whole, self.dir, 4, random.Random(len(opts)))
            parts = self.partials(shards, *opts)
            merged = json.loads(self.ok("merge", *parts[::-1], "--binning",
                                        "mass", "--json"))
            one = as_merged(json.loads(self.ok("eval", whole, *opts,
                                               "--binning", "mass", "--json")))
            self.assertEqual(exact(merged), exact(one))

    def test_grid_says_what_is_approximate(self):
        # 2000 distinct confidences in [0, 1) into 64-entry tables: 64 cells
        # of 2^-6
        rng = np.random.default_rng(22)
        whole = self.path("g.csv")
        conf = rng.uniform(0, 1, 2000)
        with open(whole, "w") as f:
            f.write("confidence,correct\n")
            for p in conf.tolist():
                f.write("%r,%d\n" % (p, rng.uniform() < p))
        shards = split_csv(whole, self.dir, 2, random.Random(1))
        parts = self.partials(shards, "--value-limit", "64")
        merged = json.loads(self.ok("merge", *parts, "--binning", "mass",
                                    "--json"))
        one = json.loads(self.ok("eval", whole, "--binning", "mass", "--json"))
        self.assertEqual(merged["value_grid"], 2 ** -6)
        self.assertIn("ece", merged["approximate"])
        self.assertIn("bins", merged["approximate"])
        self.assertLessEqual(abs(merged["ece"] - one["ece"]),
                             merged["ece_error_bound"])
        for key in ("accuracy", "mean_confidence", "brier", "n"):
            self.assertEqual(exact(merged[key]), exact(one[key]), key)
        rc, out, err = run("merge", *parts, "--binning", "mass")
        self.assertEqual(rc, 0)
        self.assertIn("approximate: value tables on a grid of 0.015625", err)
        # equal-width bins stay exact; the rank metrics see cells as ties
        width = json.loads(self.ok("merge", *parts, "--json"))
        one = json.loads(self.ok("eval", whole, "--json"))
        self.assertEqual(width["approximate"],
                         ["auroc", "aurc", "selective_cov_acc_area",
                          "selective_acc_at_10"])
        self.assertNotIn("ece_error_bound", width)
        self.assertEqual(exact(width["ece"]), exact(one["ece"]))
        self.assertNotEqual(width["auroc"], one["auroc"])

    def test_states_without_tables(self):
        csv = self.path("a.csv")
        with open(csv, "w") as f:
            f.write("confidence,correct\n0.25,0\n0.75,1\n")
        p, q = self.path("p.json"), self.path("q.json")
        self.ok("eval", csv, "--partial", "-o", p)
        self.ok("eval", csv, "--partial", "--no-values", "-o", q)
        with open(q) as f:
            js = json.load(f)
        self.assertEqual(js["version"], 1)
        self.assertNotIn("values", js["overall"])
        self.fails(65, ["merge", p, q, "--binning", "mass"], "q.json: no value "
                   "tables", "--binning mass needs them")
        # equal-width: a state with tables and one without merge as before
        self.assertEqual(exact(json.loads(self.ok("merge", p, q, "--json"))),
                         exact(json.loads(self.ok("merge", q, q, "--json"))))
        r = self.path("r.json")
        self.ok("eval", csv, "--partial", "--value-limit", "100", "-o", r)
        self.fails(65, ["merge", p, r, "--binning", "mass"], "r.json",
                   "value tables of at most 100")


class TestMergeErrors(Case):
    def setUp(self):
        super().setUp()
        rows = ["%r,%d" % (i / 97.0, i % 3 == 0) for i in range(97)]
        self.csv = self.path("a.csv")
        with open(self.csv, "w") as f:
            f.write("confidence,correct\n" + "\n".join(rows) + "\n")

    def part(self, name, *options, src=None):
        p = self.path(name)
        self.ok("eval", src or self.csv, *options, "--partial", "-o", p)
        return p

    def test_different_bins_refuse(self):
        p15, p20 = self.part("p15.json"), self.part("p20.json", "--bins", "20")
        out = self.path("out.json")
        self.fails(65, ["merge", p15, p20, "--json", "-o", out],
                   "p20.json: 20 bins, ", "p15.json: 15 bins")
        self.assertFalse(os.path.exists(out))
        self.assertEqual(sorted(os.listdir(self.dir)), ["a.csv", "p15.json", "p20.json"])

    def test_different_rule_and_kind_refuse(self):
        p = self.part("p.json")
        q = self.part("q.json", "--bin-rule", "netcal")
        self.fails(65, ["merge", p, q], "q.json: bin rule netcal, ", "p.json: bin rule sklearn")
        logits = self.path("l.csv")
        with open(logits, "w") as f:
            f.write("logit_0,logit_1,label\n0.5,0.1,1\n")
        r = self.part("r.json", src=logits)
        self.fails(65, ["merge", p, r], "r.json: distribution rows, ", "p.json: top-label rows")

    def test_empty_shard(self):
        empty = self.path("empty.csv")
        with open(empty, "w") as f:
            f.write("confidence,correct\n")
        e = self.part("e.json", src=empty)
        with open(e) as f:
            js = json.load(f)
        self.assertEqual((js["format"], js["version"], js["read"]["rows_read"]),
                         ("calib-partial", 2, 0))
        self.assertEqual(js["overall"]["values"], {"grid": None, "runs": []})
        p = self.part("p.json")
        self.assertEqual(exact(json.loads(self.ok("merge", e, p, "--json"))),
                         exact(as_merged(json.loads(self.ok("eval", self.csv,
                                                            "--json")))))
        self.fails(65, ["merge", e], "e.json: no data rows")
        self.fails(65, ["merge", e, e], "no data rows")

    def test_malformed_states(self):
        p = self.part("p.json")
        with open(p) as f:
            good = json.load(f)
        out = self.path("out.json")

        def bad(name, mutate, *contains):
            js = json.loads(json.dumps(good))
            mutate(js)
            q = self.path(name)
            with open(q, "w") as f:
                json.dump(js, f)
            self.fails(65, ["merge", p, q, "-o", out], name, *contains)
            self.assertFalse(os.path.exists(out))

        def first_cell(js):
            return next(c for c in js["overall"]["cells"] if c)
        bad("v3.json", lambda js: js.update(version=3), "version 3",
            "reads versions 1 and 2")
        bad("neg.json", lambda js: first_cell(js).update(count=-4),
            "overall.cells[", "].count: -4 is negative")
        bad("short.json", lambda js: js["overall"]["cells"].pop(), "overall.cells:",
            "17 cells")
        bad("digits.json", lambda js: first_cell(js)["conf"].pop(), "].conf:")
        bad("fmt.json", lambda js: js.update(format="other"), "format")
        with open(self.path("trunc.json"), "w") as f:
            f.write(json.dumps(good)[:200])
        self.fails(65, ["merge", self.path("trunc.json")], "trunc.json:1:")
        self.fails(66, ["merge", p, self.path("none.json")], "none.json")

    def test_partial_usage(self):
        self.fails(64, ["eval", self.csv, "--partial", "--binning", "mass"],
                   "give --binning mass to calib merge")
        self.fails(64, ["eval", self.csv, "--value-limit", "100"],
                   "go with --partial")
        self.fails(64, ["eval", self.csv, "--partial", "--value-limit", "8"],
                   "--value-limit")
        self.fails(64, ["merge", "x.json", "--binning", "both"], "--binning")
        self.fails(64, ["eval", "--partial", "--val", self.csv, "--test", self.csv],
                   "--partial")
        self.fails(64, ["merge"], "missing PART")
        self.fails(64, ["merge", "x.json", "--bins", "3"], "unknown option")
        rc, out, err = run("merge", "--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("usage: calib merge", out)

    def test_partial_to_stdout_and_bad_input(self):
        js = json.loads(self.ok("eval", self.csv, "--partial"))
        self.assertEqual(js["kind"], "top-label")
        bad = self.path("bad.csv")
        with open(bad, "w") as f:
            f.write("confidence,correct\n0.5,1\nnan,0\n")
        out = self.path("bad.json")
        self.fails(65, ["eval", bad, "--partial", "-o", out], "bad.csv:3")
        self.assertFalse(os.path.exists(out))


def main():
    if not os.access(CALIB, os.X_OK):
        print("cli tests: %s not found (build it with make)" % CALIB)
        return 1
    result = unittest.main(exit=False).result
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
