#!/usr/bin/python3
"""gen_jsonl.py OUTDIR — LLM eval logs for tests/test_read_jsonl.c and the
CLI tests (tests/cli/test_llm.py).

Writes OUTDIR/jsonl/: lm-evaluation-harness --log_samples files in the
layouts of several versions, and OpenAI / vLLM responses with token
logprobs; and OUTDIR/jsonl.json with what each file holds, computed here
with numpy (scores per row, labels, sequence confidences).  Nothing here
comes from calib.

lm-eval layouts, as its writers produce them:
  v0.4.0-0.4.2  one indented JSON array (json.dumps(samples, indent=2)) in
                a file named .jsonl; filtered_resps [[-1.5, false], ...];
                arguments [[context, continuation], ...]; target an int.
  v0.4.3        one object per line; sanitize_list() turns every value
                into a string: [["-1.5", "False"], ...]; arguments
                {"gen_args_0": {"arg_0": ctx, "arg_1": " cont"}}.
  v0.4.4+       target a string ("3", or the answer text), a "filter"
                key, and one line per (doc, filter).
"""
import gzip
import json
import math
import os
import sys

import numpy as np

OUT = os.path.join(sys.argv[1], "jsonl")
os.makedirs(OUT, exist_ok=True)
GOLD = {}
RNG = np.random.default_rng(20240605)
LETTERS = "ABCDE"


def path(name):
    return os.path.join(OUT, name)


def write_lines(name, objs):
    data = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs)
    if name.endswith(".gz"):
        with gzip.open(path(name), "wt", encoding="utf-8") as f:
            f.write(data)
    else:
        with open(path(name), "w", encoding="utf-8") as f:
            f.write(data)


# ---------------------------------------------------------------------------
# lm-eval

def mc_doc(i, k):
    """One multiple-choice doc: choices' texts, logliks, gold."""
    choices = ["answer %s%s" % (LETTERS[j], "é" * (i % 3) + "x" * j)
               for j in range(k)]
    ll = -np.abs(RNG.normal(3.0, 2.0, size=k)) - 0.01
    gold = int(RNG.integers(0, k))
    if RNG.random() < 0.5:          # a model that is often right
        ll[gold] = ll.max() + abs(RNG.normal(0.5, 0.5))
    return choices, [float(x) for x in ll], gold


def acc_of(scores, golds):
    return 1.0 if int(np.argmax(scores)) in golds else 0.0


def norm_scores(ll, choices, how):
    if how == "chars":
        return [x / len(c) for x, c in zip(ll, choices)]
    if how == "bytes":
        return [x / len(c.encode("utf-8")) for x, c in zip(ll, choices)]
    return list(ll)


def sample_v043(i, choices, ll, gold, target, flt="none"):
    ctx = "Question %d: which one?\nAnswer:" % i
    return {
        "doc_id": i,
        "doc": {"question": "q%d" % i, "choices": choices, "answer": gold},
        "target": target,
        "arguments": {"gen_args_%d" % j: {"arg_0": ctx, "arg_1": " " + c}
                      for j, c in enumerate(choices)},
        "resps": [[[str(x), "False"]] for x in ll],
        "filtered_resps": [[str(x), "False"] for x in ll],
        "filter": flt,
        "metrics": ["acc", "acc_norm"],
        "doc_hash": "%064x" % i, "prompt_hash": "%064x" % (i + 1),
        "target_hash": "%064x" % (i + 2),
        "acc": acc_of(ll, [gold]),
        "acc_norm": acc_of(norm_scores(ll, choices, "chars"), [gold]),
    }


def record(name, rows, extra=None):
    g = {"scores": [r[0] for r in rows], "labels": [r[1] for r in rows]}
    g.update(extra or {})
    GOLD[name] = g


def lmeval_v043():
    """v0.4.3/0.4.4: strings, index targets, ragged, a repeated filter."""
    lines, rows, rows_chars, rows_bytes = [], [], [], []
    for i in range(40):
        k = 2 + i % 4
        choices, ll, gold = mc_doc(i, k)
        lines.append(sample_v043(i, choices, ll, gold, str(gold)))
        rows.append((ll, gold))
        rows_chars.append((norm_scores(ll, choices, "chars"), gold))
        rows_bytes.append((norm_scores(ll, choices, "bytes"), gold))
        if i % 10 == 3:   # the same doc again under a second filter
            other = [x - 1.0 for x in ll]
            lines.append(sample_v043(i, choices, other, gold, str(gold),
                                     "take_first"))
    write_lines("samples_arc_easy_2024-06-01T10-20-30.123456.jsonl", lines)
    write_lines("samples_arc_easy_2024-06-01T10-20-30.123456.jsonl.gz",
                lines)
    record("v043", rows, {"duplicates": 4})
    record("v043_chars", rows_chars)
    record("v043_bytes", rows_bytes)
    # The same file with three acc values flipped: cross-check.
    for j in (0, 5, 9):
        lines[j] = dict(lines[j], acc=1.0 - lines[j]["acc"])
    write_lines("samples_flipped_2024-06-01T10-20-30.jsonl", lines)


def lmeval_v040():
    """v0.4.0: one indented array, native numbers, int targets."""
    samples, rows = [], []
    for i in range(12):
        k = 3 + i % 3
        choices, ll, gold = mc_doc(100 + i, k)
        ctx = "Q%d" % i
        samples.append({
            "doc_id": i, "doc": {"q": i}, "target": gold,
            "arguments": [[ctx, " " + c] for c in choices],
            "resps": [[[x, False]] for x in ll],
            "filtered_resps": [[x, bool(j == 0)] for j, x in enumerate(ll)],
            "acc": acc_of(ll, [gold]),
        })
        rows.append((ll, gold))
    with open(path("pretrained__gpt2_hellaswag.jsonl"), "w") as f:
        f.write(json.dumps(samples, indent=2))
    record("v040", rows)


def lmeval_text_targets():
    """v0.4.4+ COPA-like: the target is the answer's text; list targets."""
    lines, rows = [], []
    for i in range(10):
        choices, ll, gold = mc_doc(200 + i, 2 + i % 2)
        target = choices[gold]
        golds = [gold]
        if i == 7:   # multiple targets: an index list
            golds = [gold, (gold + 1) % len(choices)]
            target = [str(g) for g in golds]
        s = sample_v043(i, choices, ll, gold, target)
        s["acc"] = acc_of(ll, golds)
        lines.append(s)
        pred = int(np.argmax(ll))
        rows.append((ll, pred if pred in golds else golds[0]))
    write_lines("samples_copa_2024-06-02T00-00-00.jsonl", lines)
    record("copa", rows)


def lmeval_special():
    """A generative task, acc_mutual_info (2K entries), a bad loglik."""
    gen = [{"doc_id": 0, "target": "42", "arguments": {"gen_args_0": {
        "arg_0": "Q", "arg_1": {"until": ["\n"]}}},
        "resps": [["The answer is 42"]], "filtered_resps": ["42"],
        "filter": "strict-match", "exact_match": 1.0}]
    write_lines("samples_gsm8k_2024-06-03T00-00-00.jsonl", gen)
    lines, rows = [], []
    for i in range(6):
        choices, ll, gold = mc_doc(300 + i, 4)
        uncond = [x - 2.0 for x in ll]
        s = sample_v043(i, choices, ll + uncond, gold, str(gold))
        s["arguments"] = {"gen_args_%d" % j: {"arg_0": "Q" if j < 4 else "",
                                              "arg_1": " " + (choices * 2)[j]}
                          for j in range(8)}
        s["acc_mutual_info"] = acc_of(np.array(ll) - np.array(uncond), [gold])
        s["acc"] = acc_of(ll, [gold])
        lines.append(s)
        rows.append((ll, gold))
    write_lines("samples_mutual_2024-06-03T00-00-00.jsonl", lines)
    record("mutual", rows)
    bad = [sample_v043(i, *mc_doc(400 + i, 3)[0:2], 0, "0") for i in range(4)]
    bad[2]["filtered_resps"][1][0] = "-nan-ish"
    write_lines("samples_bad_2024-06-03T00-00-00.jsonl", bad)
    # A member that is not JSON, in a line otherwise well formed: found
    # even though calib reads members only when it needs them.
    text = "".join(json.dumps(b) + "\n" for b in bad[:2])
    with open(path("samples_badjson_2024-06-03T00-00-00.jsonl"), "w") as f:
        f.write(text.replace('"acc": 1.0', '"acc": tru', 1)
                .replace('"acc": 0.0', '"acc": tru', 1))


# ---------------------------------------------------------------------------
# OpenAI / vLLM

SENTINEL = -9999.0


def seq_confs(lps, answer=None):
    """Every --seq-conf mode from known logprobs (None/-9999 dropped)."""
    known = np.array([x for x in lps if x is not None and x != SENTINEL])
    return {"geomean": float(np.exp(known.mean())),
            "product": float(np.exp(known.sum())),
            "mean": float(np.exp(known).mean()),
            "min": float(np.exp(known.min())),
            "answer": answer}


def answer_conf(chosen, alts):
    """p(chosen) / sum of the options' probabilities among alternatives."""
    q = {}
    for tok, lp in alts:
        t = tok.strip()
        if t in LETTERS[:4] and lp != SENTINEL:
            q[t] = q.get(t, 0.0) + math.exp(lp)
    return q[chosen] / sum(q.values())


def chat_response(i, tokens, lps, alts_at, fmt):
    content = []
    for j, (t, lp) in enumerate(zip(tokens, lps)):
        top = [{"token": a, "logprob": b, "bytes": list(a.encode())}
               for a, b in (alts_at if j == 1 else [(t, lp)])]
        content.append({"token": t, "logprob": lp,
                        "bytes": list(t.encode()), "top_logprobs": top})
    body = {"id": "chatcmpl-%d" % i, "object": "chat.completion",
            "model": "gpt-4o-mini", "choices": [{
                "index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "".join(tokens)},
                "logprobs": {"content": content, "refusal": None}}]}
    if fmt == "batch":
        return {"id": "batch_req_%d" % i, "custom_id": "q%d" % i,
                "response": {"status_code": 200, "body": body}}
    return body


def openai_files():
    chat, batch, legacy, vllm = [], [], [], []
    gold = {"chat": [], "legacy": [], "vllm": []}
    for i in range(30):
        letter = LETTERS[i % 4]
        tokens = ["Answer", " " + letter, "."]
        lps = [float(-abs(RNG.normal(0.1, 0.2))) for _ in tokens]
        alts = [(" " + letter, lps[1])]
        for other in LETTERS[:4]:
            if other != letter and RNG.random() < 0.7:
                alts.append((" " + other, float(lps[1] - abs(RNG.normal(2, 1)))))
        alts.append(("A" if letter != "A" else "B", float(lps[1] - 3.0)))
        correct = bool(RNG.random() < 0.6)
        r = chat_response(i, tokens, lps, alts, "chat")
        r["grade"] = {"correct": correct}
        chat.append(r)
        b = chat_response(i, tokens, lps, alts, "batch")
        b["grade"] = {"correct": int(correct)}
        batch.append(b)
        gold["chat"].append(dict(seq_confs(lps, answer_conf(letter, alts)),
                                 correct=int(correct)))
        # legacy Completions with echo: the first token's logprob is null
        ltoks = ["Q"] + tokens
        llps = [None] + lps
        top = [None] + [{t: lp} for t, lp in zip(tokens, lps)]
        top[2] = {a: b for a, b in alts}
        legacy.append({"id": "cmpl-%d" % i, "object": "text_completion",
                       "choices": [{"text": "".join(ltoks), "index": 0,
                                    "logprobs": {"tokens": ltoks,
                                                 "token_logprobs": llps,
                                                 "top_logprobs": top,
                                                 "text_offset": list(range(4))},
                                    "finish_reason": "stop"}],
                       "is_correct": "true" if correct else "false"})
        gold["legacy"].append(dict(seq_confs(llps, answer_conf(letter, alts)),
                                   correct=int(correct)))
        # vLLM's OpenAI server: -9999.0 for a logprob it cannot represent
        vl = list(lps) + [SENTINEL]
        vt = list(tokens) + ["<|eot|>"]
        v = chat_response(i, vt, vl, alts, "chat")
        v["correct"] = 1 if correct else 0
        vllm.append(v)
        gold["vllm"].append(dict(seq_confs(vl, answer_conf(letter, alts)),
                                 correct=int(correct)))
    write_lines("chat.jsonl", chat)
    write_lines("batch_output.jsonl", batch)
    write_lines("legacy.jsonl", legacy)
    write_lines("vllm.jsonl.gz", vllm)
    for k, rows in gold.items():
        GOLD["openai_" + k] = {m: [r[m] for r in rows] for m in rows[0]}
    GOLD["openai_vllm"]["unknown"] = 30
    GOLD["openai_legacy"]["unknown"] = 30
    bad = [dict(chat[0]), dict(chat[1])]
    bad[1] = json.loads(json.dumps(bad[1]))
    for t in bad[1]["choices"][0]["logprobs"]["content"]:
        t["logprob"] = None
    write_lines("openai_unknown.jsonl", bad)
    with open(path("broken.jsonl"), "w") as f:
        f.write(json.dumps(chat[0]) + "\n" + '{"choices": [1, 2,\n')


lmeval_v043()
lmeval_v040()
lmeval_text_targets()
lmeval_special()
openai_files()
with open(os.path.join(sys.argv[1], "jsonl.json"), "w") as f:
    json.dump(GOLD, f)
