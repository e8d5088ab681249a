#!/usr/bin/python3
"""torch_allreduce.py — calib's metrics accumulated inside a PyTorch
evaluation loop on several ranks, exchanged with all_gather_object and
merged exactly.

Each rank (a process of a torch.distributed group) evaluates its shard of a
data set (DistributedSampler) with a model, turns every batch's logits into
a calib partial state, folds it into its running state (calib.merge with
partial=True: memory stays constant), and at the end the ranks exchange
their states — JSON text — with all_gather_object.  Every rank merges them
and gets the same metrics, bit for bit; rank 0 writes them.  Then this
script evaluates the same logits in one process with calib.evaluate and
checks that both agree bit for bit, for equal-width and equal-mass bins.

    PYTHONPATH=python CALIB_LIBRARY=build/libcalib.so \\
        /usr/bin/python3 examples/torch_allreduce.py --ranks 2

The ranks use the gloo backend on 127.0.0.1 (CPU); on GPUs with NCCL see
docs/distributed.md.  The model is a fixed random linear classifier on
synthetic features, so the run needs no data set or download.
"""
import argparse
import json
import os
import socket
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

import calib

CLASSES = 10


def problem(rows, seed=7):
    """A model and a data set, the same in every process."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 32, generator=g)
    w_true = torch.randn(32, CLASSES, generator=g)
    y = (x @ w_true + 2.0 * torch.randn(rows, CLASSES, generator=g)).argmax(1)
    model = torch.nn.Linear(32, CLASSES)
    with torch.no_grad():   # a fixed, over-confident model
        model.weight.copy_(3.0 * w_true.T)
        model.bias.zero_()
    return model.eval(), TensorDataset(x, y)


def loader(data, rank, ranks, batch):
    # rows must divide by the ranks: DistributedSampler pads a short rank
    # with repeated rows, which would then be counted twice
    sampler = DistributedSampler(data, num_replicas=ranks, rank=rank,
                                 shuffle=False)
    return DataLoader(data, batch_size=batch, sampler=sampler)


@torch.no_grad()
def evaluate_calibration(model, batches, bins=15):
    """The recipe: a running partial state per rank, merged across ranks.
    Returns the merged state (JSON text), the same on every rank."""
    state = None
    for x, y in batches:
        z = model(x).float().numpy()          # (B, K) float32, not copied
        part = calib.partial(logits=z, labels=y.numpy(), bins=bins)
        state = part if state is None else \
            calib.merge([state, part], partial=True)
    states = [None] * dist.get_world_size()
    dist.all_gather_object(states, state)     # every rank gets every state
    return calib.merge([s for s in states if s is not None], partial=True)


def rank_main(rank, ranks, port, rows, batch, out_dir):
    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port,
                            rank=rank, world_size=ranks)
    try:
        model, data = problem(rows)
        merged = evaluate_calibration(model, loader(data, rank, ranks, batch))
        result = {"width": calib.merge([merged]),
                  "mass": calib.merge([merged], binning="mass")}
        with open(os.path.join(out_dir, "rank%d.json" % rank), "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


def single_process(rows, batch, ranks):
    """The same logits, batch by batch as the ranks computed them (a row's
    logits can depend on its batch's shape), evaluated in one call."""
    model, data = problem(rows)
    z, y = [], []
    with torch.no_grad():
        for rank in range(ranks):
            for xb, yb in loader(data, rank, ranks, batch):
                z.append(model(xb).float().numpy())
                y.append(yb.numpy())
    z, y = np.concatenate(z), np.concatenate(y)
    return {b: calib.evaluate(logits=z, labels=y, binning=b)
            for b in ("width", "mass")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=500)
    a = ap.parse_args()
    if a.rows % a.ranks:
        ap.error("--rows must divide by --ranks (DistributedSampler pads)")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(rank_main, args=(a.ranks, free_port(), a.rows, a.batch, out),
                 nprocs=a.ranks, join=True)
        got = []
        for r in range(a.ranks):
            with open(os.path.join(out, "rank%d.json" % r)) as f:
                got.append(json.load(f))
    want = single_process(a.rows, a.batch, a.ranks)
    want = json.loads(json.dumps(want))   # as the ranks wrote it
    for m in want.values():   # need every row's scores: not in a state
        m.update(smece=None, smece_bandwidth=None, classwise_ece=None)
    ok = all(g == want for g in got)
    m = got[0]["width"]
    print("%d ranks, %d rows: accuracy %.4f  ECE %.4f  equal-mass ECE %.4f  "
          "NLL %.4f" % (a.ranks, m["n"], m["accuracy"], m["ece"],
                        got[0]["mass"]["ece"], m["nll"]))
    print("every rank's merged metrics equal one calib.evaluate, bit for bit"
          if ok else "MISMATCH between the ranks and one calib.evaluate")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
