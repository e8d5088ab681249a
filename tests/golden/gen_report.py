#!/usr/bin/python3
"""Golden NLL-over-T curves for calib_temperature_curve, computed by numpy
and scipy (never by calib).

Each case is a small prediction set and a list of temperatures with the
weighted mean NLL of the set scaled by each T:
  logits:  mean_i w_i (logsumexp(z_i / T) - z_{i,y_i} / T) / sum_i w_i
  probs:   the same with z = log p (rows are not renormalised)
  binary:  top-label rows as logits (logit p, 0), class 0 = correct:
           -log sigmoid(+-logit(p) / T)
Usage: gen_report.py OUTDIR   (writes OUTDIR/report.json)
"""
import json
import sys

import numpy as np
from scipy.special import log_expit, logsumexp

TS = [0.05, 0.25, 0.5, 0.9, 1.0, 1.7, 3.0, 10.0, 250.0]


def mean_nll(per_row, w):
    return float(np.sum(w * per_row) / np.sum(w))


def softmax_curve(z, y, w):
    out = []
    for t in TS:
        s = z / t
        out.append(mean_nll(logsumexp(s, axis=1) - s[np.arange(len(y)), y], w))
    return out


def logits_case(rng, n, k, weighted):
    z = rng.normal(size=(n, k)) * 3.0
    y = rng.integers(0, k, size=n)
    w = rng.random(n) * 2.0 if weighted else np.ones(n)
    case = {'kind': 'logits', 'n': n, 'k': k, 'scores': z.ravel().tolist(),
            'labels': y.tolist(), 't': TS, 'nll': softmax_curve(z, y, w)}
    if weighted:
        case['weights'] = w.tolist()
    return case


def probs_case(rng, n, k):
    z = rng.normal(size=(n, k)) * 2.0
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    y = rng.integers(0, k, size=n)
    return {'kind': 'probs', 'n': n, 'k': k, 'scores': p.ravel().tolist(),
            'labels': y.tolist(), 't': TS,
            'nll': softmax_curve(np.log(p), y, np.ones(n))}


def binary_case(rng, n):
    conf = rng.uniform(0.02, 0.98, size=n)
    c = (rng.random(n) < conf ** 0.5).astype(int)
    lx = np.log(conf) - np.log1p(-conf)
    sign = np.where(c == 1, 1.0, -1.0)
    nll = [mean_nll(-log_expit(sign * lx / t), np.ones(n)) for t in TS]
    return {'kind': 'binary', 'n': n, 'conf': conf.tolist(),
            'correct': c.tolist(), 't': TS, 'nll': nll}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'build/golden'
    rng = np.random.default_rng(4)
    doc = {'cases': [logits_case(rng, 300, 4, False),
                     logits_case(rng, 200, 7, True),
                     probs_case(rng, 250, 3),
                     binary_case(rng, 400)]}
    with open(out + '/report.json', 'w') as f:
        json.dump(doc, f)


if __name__ == '__main__':
    main()
