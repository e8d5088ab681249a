#!/usr/bin/python3
"""CLI tests for LLM eval logs: lm-evaluation-harness samples, OpenAI/vLLM
logprobs, several files or a directory at once, and `calib compare`.

Expected numbers come from numpy over what tests/golden/gen_jsonl.py
wrote (never from calib).  Loaded by tests/cli/run.py, or alone:
    CALIB=build/calib CALIB_GOLDEN=build/golden /usr/bin/python3 tests/cli/test_llm.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from scipy.special import log_softmax, softmax

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
MMLU = os.path.join(ROOT, "..", "shared", "data", "mmlu-pro-llm-confidence")
VERBAL = ["--conf", "Verbal Numerical Confidence", "--correct", "Accuracy"]
ARC = "samples_arc_easy_2024-06-01T10-20-30.123456.jsonl"
COPA = "samples_copa_2024-06-02T00-00-00.jsonl"
_GOLDEN = {}


def golden_dir():
    """$CALIB_GOLDEN with jsonl fixtures, or a fresh one made here."""
    if "dir" not in _GOLDEN:
        d = os.environ.get("CALIB_GOLDEN")
        if not d or not os.path.exists(os.path.join(d, "jsonl.json")):
            d = tempfile.mkdtemp(prefix="calib-llm-")
            subprocess.run([sys.executable, os.path.join(
                ROOT, "tests", "golden", "gen_jsonl.py"), d], check=True)
        _GOLDEN["dir"] = d
        with open(os.path.join(d, "jsonl.json")) as f:
            _GOLDEN["gold"] = json.load(f)
    return _GOLDEN["dir"]


def fx(name):
    return os.path.join(golden_dir(), "jsonl", name)


def gold(key):
    golden_dir()
    return _GOLDEN["gold"][key]


def run(*args):
    p = subprocess.run([CALIB] + [str(a) for a in args], capture_output=True,
                       timeout=300)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def run_json(*args):
    rc, out, err = run(*args, "--json")
    if rc != 0:
        raise AssertionError("calib %s: exit %d: %s" % (" ".join(map(str, args)), rc, err))
    return json.loads(out)


def ece_toplabel(conf, correct, m=15):
    """sklearn's rule: bin b covers (b/M, (b+1)/M], p = 0 in bin 0."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, float)
    idx = np.clip(np.searchsorted(np.arange(m + 1) / m, conf, side="left") - 1, 0, m - 1)
    ece = 0.0
    for b in range(m):
        sel = idx == b
        if sel.any():
            ece += sel.sum() / len(conf) * abs(correct[sel].mean() - conf[sel].mean())
    return ece


def ragged_metrics(scores, labels):
    """accuracy, mean confidence, ECE, NLL, Brier of ragged logit rows."""
    conf, correct, nll, brier = [], [], [], []
    for z, y in zip(scores, labels):
        q = softmax(np.asarray(z))
        conf.append(q.max())
        correct.append(float(int(np.argmax(q)) == y))
        nll.append(-log_softmax(np.asarray(z))[y])
        onehot = np.zeros(len(z))
        onehot[y] = 1
        brier.append(((q - onehot) ** 2).sum())
    return {"accuracy": np.mean(correct), "mean_confidence": np.mean(conf),
            "ece": ece_toplabel(conf, correct), "nll": np.mean(nll),
            "brier": np.mean(brier)}


class Case(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="calib-llm-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def assertMetrics(self, js, want, tol=1e-12):
        for k, v in want.items():
            self.assertTrue(abs(js[k] - v) <= tol * max(1.0, abs(v)),
                            "%s: %r, expected %r" % (k, js[k], v))


class TestLmEval(Case):
    def test_v043_metrics(self):
        g = gold("v043")
        js = run_json("eval", fx(ARC))
        self.assertEqual(js["n"], 40)
        self.assertEqual(js["rows_duplicate"], 4)
        self.assertEqual(js["norm"], "none")
        self.assertMetrics(js, ragged_metrics(g["scores"], g["labels"]))

    def test_gzip_and_norm_chars(self):
        g = gold("v043_chars")
        js = run_json("eval", fx(ARC + ".gz"), "--norm", "chars")
        self.assertEqual(js["norm"], "chars")
        self.assertEqual(js["rows_disagree"], 0)
        self.assertMetrics(js, ragged_metrics(g["scores"], g["labels"]))

    def test_old_array_layout_and_text_targets(self):
        for name, key in (("pretrained__gpt2_hellaswag.jsonl", "v040"),
                          (COPA, "copa")):
            g = gold(key)
            self.assertMetrics(run_json("eval", fx(name)),
                               ragged_metrics(g["scores"], g["labels"]))

    def test_several_files_are_groups(self):
        js = run_json("eval", fx(ARC), fx(COPA))
        self.assertEqual(list(js["groups"]), ["arc_easy", "copa"])
        for name, key in ((ARC, "arc_easy"), (COPA, "copa")):
            one = run_json("eval", fx(name))
            self.assertAlmostEqual(js["groups"][key]["ece"], one["ece"], places=15)
        both = gold("v043"), gold("copa")
        self.assertMetrics(js, ragged_metrics(both[0]["scores"] + both[1]["scores"],
                                              both[0]["labels"] + both[1]["labels"]))
        mass = run_json("eval", fx(ARC), fx(COPA), "--binning", "mass")
        self.assertEqual(mass["n"], 50)
        self.assertEqual(list(mass["groups"]), ["arc_easy", "copa"])

    def test_directory(self):
        d = os.path.join(self.tmp, "run")
        os.mkdir(d)
        for name in (ARC, COPA):
            shutil.copy(fx(name), d)
        with open(os.path.join(d, "results_2024-06-01T10-20-30.json"), "w") as f:
            f.write("{}")
        js = run_json("eval", d)
        self.assertEqual(sorted(js["groups"]), ["arc_easy", "copa"])
        self.assertEqual(js["n"], 50)

    def test_generative_refused(self):
        rc, _, err = run("eval", fx("samples_gsm8k_2024-06-03T00-00-00.jsonl"))
        self.assertEqual(rc, 65)
        self.assertIn("samples_gsm8k_2024-06-03T00-00-00.jsonl:1:", err)
        self.assertIn("filtered_resps[0]", err)
        self.assertIn("generative", err)

    def test_bad_row_skipped(self):
        f = fx("samples_bad_2024-06-03T00-00-00.jsonl")
        rc, _, err = run("eval", f)
        self.assertEqual(rc, 65)
        self.assertIn(":3:", err)
        js = run_json("eval", f, "--skip-bad-rows")
        self.assertEqual((js["rows_read"], js["rows_rejected"]), (4, 1))

    def test_disagreement_warned(self):
        rc, out, err = run("eval", fx("samples_flipped_2024-06-01T10-20-30.jsonl"))
        self.assertEqual(rc, 0, err)
        self.assertIn("3 rows disagree with the acc lm-eval logged", err)
        js = run_json("eval", fx("samples_flipped_2024-06-01T10-20-30.jsonl"))
        self.assertEqual(js["rows_disagree"], 3)

    def test_temperature_scaling_on_choices(self):
        rc, out, err = run("fit", fx(ARC), "--json")
        self.assertEqual(rc, 0, err)
        js = json.loads(out)
        self.assertGreater(js["temperature"], 0)
        self.assertEqual(js["before"]["accuracy"], js["after"]["accuracy"])
        self.assertLessEqual(js["after"]["nll"], js["before"]["nll"] + 1e-12)


class TestOpenAI(Case):
    def test_modes_chat_legacy_vllm(self):
        cases = (("chat.jsonl", "openai_chat", "grade.correct"),
                 ("batch_output.jsonl", "openai_chat", "grade.correct"),
                 ("legacy.jsonl", "openai_legacy", "is_correct"),
                 ("vllm.jsonl.gz", "openai_vllm", "correct"))
        for name, key, correct in cases:
            g = gold(key)
            for mode in ("geomean", "product", "mean", "min", "answer"):
                js = run_json("eval", fx(name), "--correct", correct,
                              "--seq-conf", mode, "--choices", "A,B,C,D")
                self.assertEqual(js["seq_conf"], mode)
                self.assertMetrics(js, {
                    "mean_confidence": np.mean(g[mode]),
                    "accuracy": np.mean(g["correct"]),
                    "ece": ece_toplabel(g[mode], g["correct"])}, tol=1e-12)
            if "unknown" in g:
                js = run_json("eval", fx(name), "--correct", correct)
                self.assertEqual(js["values_unknown"], g["unknown"])

    def test_forced_format_and_errors(self):
        js = run_json("eval", fx("vllm.jsonl.gz"), "--format", "openai",
                      "--correct", "correct")
        self.assertEqual(js["n"], 30)
        rc, _, err = run("eval", fx("chat.jsonl"))
        self.assertEqual(rc, 64)
        self.assertIn("--correct", err)
        rc, _, err = run("eval", fx("chat.jsonl"), "--correct", "grade.nope")
        self.assertEqual(rc, 65)
        self.assertIn("grade.nope", err)
        rc, _, err = run("eval", fx("chat.jsonl"), "--seq-conf", "median")
        self.assertEqual(rc, 64)
        rc, _, err = run("eval", fx("broken.jsonl"), "--correct", "grade.correct")
        self.assertEqual(rc, 65)
        self.assertIn("broken.jsonl:2:", err)
        rc, _, err = run("eval", fx("openai_unknown.jsonl"), "--correct", "grade.correct")
        self.assertEqual(rc, 65)
        self.assertIn("no token with a known logprob", err)


class TestRealData(Case):
    @unittest.skipUnless(os.path.isdir(MMLU), "no mmlu-pro-llm-confidence data")
    def test_eval_mmlu_pro_columns(self):
        for col in ("Verbal Numerical Confidence", "Logit Perplexity Confidence",
                    "Linguistic Confidence"):
            path = os.path.join(MMLU, "gpt-4.1-nano.csv")
            js = run_json("eval", path, "--conf", col, "--correct", "Accuracy")
            data = np.genfromtxt(path, delimiter=",", names=True)
            conf = data[col.replace(" ", "_")]
            correct = data["Accuracy"]
            self.assertEqual(js["n"], 12032)
            self.assertMetrics(js, {"accuracy": correct.mean(),
                                    "mean_confidence": conf.mean(),
                                    "ece": ece_toplabel(conf, correct)}, tol=1e-9)

    @unittest.skipUnless(os.path.isdir(MMLU), "no mmlu-pro-llm-confidence data")
    def test_compare_two_models(self):
        a = os.path.join(MMLU, "gpt-4.1-nano.csv")
        b = os.path.join(MMLU, "Meta-Llama-3.1-8B-Instruct-Turbo.csv")
        js = run_json("compare", a, b, *VERBAL, "--label", "nano", "--label", "llama")
        ea = run_json("eval", a, *VERBAL)
        eb = run_json("eval", b, *VERBAL)
        self.assertEqual([s["label"] for s in js["sets"]], ["nano", "llama"])
        self.assertEqual(js["sets"][1]["metrics"]["ece"], eb["ece"])
        d = js["differences"][0]
        self.assertEqual(d["reference"], "nano")
        self.assertAlmostEqual(d["ece"], eb["ece"] - ea["ece"], places=15)
        rc, out, err = run("compare", a, b, *VERBAL)
        self.assertEqual(rc, 0, err)
        self.assertIn("d:Meta-Llama", out)


class TestCompare(Case):
    def write_sets(self):
        """base: calibrated everywhere; ft: over-confident on law only."""
        rng = np.random.default_rng(7)
        for model, over in (("base", 0.0), ("ft", 0.3)):
            os.mkdir(os.path.join(self.tmp, model))
            for task in ("algebra", "law", "medicine"):
                conf = rng.uniform(0.5, 0.7, 300)
                correct = rng.random(300) < conf
                if task == "law":
                    conf = np.minimum(conf + over, 1.0)
                with open(os.path.join(self.tmp, model, task + ".csv"), "w") as f:
                    f.write("confidence,correct\n")
                    for c, k in zip(conf, correct):
                        f.write("%r,%d\n" % (c, k))
        return os.path.join(self.tmp, "base"), os.path.join(self.tmp, "ft")

    def test_groups_sorted_by_gap(self):
        base, ft = self.write_sets()
        js = run_json("compare", base, ft)
        names = [g["group"] for g in js["groups"]]
        self.assertEqual(names[0], "law")
        gaps = [g["sets"][1]["gap"] for g in js["groups"]]
        self.assertEqual(gaps, sorted(gaps, reverse=True))
        law = js["groups"][0]["sets"]
        self.assertGreater(law[1]["gap"], law[0]["gap"] + 0.2)
        rc, out, err = run("compare", base, ft)
        self.assertEqual(rc, 0, err)
        self.assertIn("most over-confident first", out)

    def test_group_column(self):
        base, ft = self.write_sets()
        rows = []
        for task in ("algebra", "law"):
            with open(os.path.join(ft, task + ".csv")) as f:
                next(f)
                rows += [line.strip() + "," + task for line in f]
        path = os.path.join(self.tmp, "ft.csv")
        with open(path, "w") as f:
            f.write("confidence,correct,topic\n" + "\n".join(rows) + "\n")
        js = run_json("compare", path, path, "--group", "topic")
        self.assertEqual([g["group"] for g in js["groups"]], ["law", "algebra"])
        self.assertEqual(js["differences"][0]["ece"], 0.0)

    def test_usage(self):
        base, ft = self.write_sets()
        self.assertEqual(run("compare", base)[0], 64)
        self.assertEqual(run("compare", base, ft, "--label", "x")[0], 64)
        rc, out, _ = run("compare", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("calib compare", out)

    def test_diagram(self):
        base, ft = self.write_sets()
        out = os.path.join(self.tmp, "cmp.svg")
        rc, _, err = run("compare", base, ft, "--diagram", out)
        self.assertEqual(rc, 0, err)
        with open(out) as f:
            svg = f.read()
        self.assertIn("<svg", svg)
        self.assertIn("ft", svg)


if __name__ == "__main__":
    unittest.main()
