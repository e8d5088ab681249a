#!/usr/bin/env python3
"""ref_torch.py — the PyTorch references, timed in-process.

    ref_torch.py width DIR                    torchmetrics-style binning
    ref_torch.py fit LOGITS LABELS ITERS CAP  gpleiss-style temperature fit

torchmetrics and gpleiss/temperature_scaling are not in Debian, so both are
re-implemented here on Debian's python3-torch, computation for computation
(none of their source is copied):

* width: what torchmetrics' binary/multiclass calibration error does in
  src/torchmetrics/functional/classification/calibration_error.py
  (_binning_bucketize + _ce_compute): float32 boundaries from
  torch.linspace(0, 1, M + 1), bin index torch.bucketize(conf, boundaries,
  right=True) - 1, three scatter_add_ into M + 1 bins (count, confidence,
  accuracy), nan_to_num of the means, ECE = sum |acc - conf| * prop.  The
  MCE (norm='max') and the accuracy come from the same bins here, which
  torchmetrics would compute in separate calls; that only favours torch.
* fit: ModelWithTemperature.set_temperature of gpleiss/temperature_scaling
  (temperature_scaling.py): T = nn.Parameter(ones(1) * 1.5), logits / T
  expanded as there, nn.CrossEntropyLoss, optim.LBFGS([T], lr=0.01,
  max_iter=ITERS), one optimizer.step(closure).  ITERS is 50 as there, or
  200.  CAP (seconds) bounds a run: the closure stops the step once CAP
  has passed and the row says so, with the T reached at that point.
  Timed after a 2-iteration warm-up; best of up to 3 runs when a run is
  short (REPEAT_BUDGET), else one run.

torch.set_num_threads(2): Debian's build starts with 1 thread here.
"""
import os
import sys
import time

import numpy as np
import torch
from torch import nn, optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_numpy import M, best_of, emit, load_logits, load_top, row  # noqa: E402

torch.set_num_threads(2)
REPEAT_BUDGET = 12.0


def tm_calibration_error(confidences, accuracies, n_bins):
    accuracies = accuracies.to(dtype=confidences.dtype)
    bounds = torch.linspace(0, 1, n_bins + 1, dtype=confidences.dtype)
    count_bin = torch.zeros(len(bounds), dtype=confidences.dtype)
    conf_bin = torch.zeros(len(bounds), dtype=confidences.dtype)
    acc_bin = torch.zeros(len(bounds), dtype=confidences.dtype)
    idx = torch.bucketize(confidences, bounds, right=True) - 1
    count_bin.scatter_add_(0, idx, torch.ones_like(confidences))
    conf_bin.scatter_add_(0, idx, confidences)
    acc_bin.scatter_add_(0, idx, accuracies)
    conf_bin = torch.nan_to_num(conf_bin / count_bin)
    acc_bin = torch.nan_to_num(acc_bin / count_bin)
    prop_bin = count_bin / count_bin.sum()
    gap = torch.abs(acc_bin - conf_bin)
    return {"n": float(len(confidences)),
            "accuracy": float(accuracies.mean()),
            "ece": float(torch.sum(gap * prop_bin)),
            "mce": float(torch.max(gap)),
            "rmsce": float(torch.sqrt(torch.sum(gap * gap * prop_bin))),
            "n_bins": float(int((count_bin > 0).sum()))}


def mode_width(d):
    conf, correct = load_top(d)
    c = torch.from_numpy(conf)
    a = torch.from_numpy(correct)
    t, v = best_of(lambda: tm_calibration_error(c, a, M))
    emit("width", [row("torch torchmetrics-style bucketize+scatter_add", t, v,
                       "float32, torch threads=%d" % torch.get_num_threads())])


class Capped(Exception):
    pass


def gpleiss_fit(logits, labels, max_iter, cap):
    temperature = nn.Parameter(torch.ones(1) * 1.5)
    nll_criterion = nn.CrossEntropyLoss()
    optimizer = optim.LBFGS([temperature], lr=0.01, max_iter=max_iter)
    n, k = logits.shape
    t0 = time.perf_counter()
    evals = [0]

    def closure():
        if cap and time.perf_counter() - t0 > cap:
            raise Capped()
        optimizer.zero_grad()
        scaled = logits / temperature.unsqueeze(1).expand(n, k)
        loss = nll_criterion(scaled, labels)
        loss.backward()
        evals[0] += 1
        return loss

    capped = False
    try:
        optimizer.step(closure)
    except Capped:
        capped = True
    state = optimizer.state[optimizer._params[0]]
    return {"T": float(temperature.item()),
            "iterations": float(state.get("n_iter", 0)),
            "evals": float(evals[0]), "capped": capped}


def mode_fit(zpath, ypath, max_iter, cap):
    z, y = load_logits(zpath, ypath)
    logits = torch.from_numpy(z)
    labels = torch.from_numpy(y.astype(np.int64))
    # warm-up: the same computation for 2 iterations (kernels, allocator);
    # then runs while they fit in REPEAT_BUDGET seconds, 3 at most: short
    # fits get a best of 3, long ones a single run
    gpleiss_fit(logits, labels, 2, 0)
    ts = []
    while True:
        t0 = time.perf_counter()
        v = gpleiss_fit(logits, labels, max_iter, cap)
        ts.append(time.perf_counter() - t0)
        if len(ts) == 3 or v["capped"] or sum(ts) + ts[-1] > REPEAT_BUDGET:
            break
    t = {"best": min(ts), "median": float(np.median(ts)), "reps": len(ts)}
    note = None
    if v.pop("capped"):
        note = "stopped at the %g s cap after %d evaluations" % (cap,
                                                                 v["evals"])
    emit("fit", [row("torch LBFGS max_iter=%d (gpleiss)" % max_iter, t, v,
                     note)])


def main(argv):
    if len(argv) == 3 and argv[1] == "width":
        mode_width(argv[2])
    elif len(argv) == 6 and argv[1] == "fit":
        mode_fit(argv[2], argv[3], int(argv[4]), float(argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
