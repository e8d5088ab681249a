#!/usr/bin/python3
"""Golden cases for temperature scaling, computed by numpy and scipy.

T is found by scipy.optimize.minimize_scalar (bounded Brent on log T over
[1e-3, 1e3]) on the mean NLL written with scipy.special.logsumexp; the ECE
case's reference is the best ECE (15 equal-width bins, scikit-learn's
(lo, hi] rule) over a dense grid of T.  Never computed by calib.
Usage: gen_temperature.py OUTDIR   (writes OUTDIR/temperature.json)
"""
import json
import sys

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp, log_expit

LOG_LO, LOG_HI = np.log(1e-3), np.log(1e3)


def softmax_nll(z, y, t):
    s = z / t
    return float(np.mean(logsumexp(s, axis=1) - s[np.arange(len(y)), y]))


def binary_nll(x, c, t):
    sign = np.where(c == 1, 1.0, -1.0)
    return float(-np.mean(log_expit(sign * x / t)))


def fit(fun):
    r = minimize_scalar(fun, bounds=(LOG_LO, LOG_HI), method='bounded',
                        options={'xatol': 1e-12, 'maxiter': 5000})
    return float(np.exp(r.x)), float(r.fun)


def ece15(conf, correct):
    edges = np.arange(16) / 15.0
    b = np.searchsorted(edges[1:-1], conf, side='left')
    e = 0.0
    for i in range(15):
        m = b == i
        if m.any():
            e += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return e


def softmax_case(rng, name, n, k, scale, spread=2.0):
    base = rng.normal(size=(n, k)) * spread
    p = np.exp(base - logsumexp(base, axis=1, keepdims=True))
    y = np.array([rng.choice(k, p=row) for row in p])
    z = base * scale
    t, nll = fit(lambda u: softmax_nll(z, y, np.exp(u)))
    return {'name': name, 'n': n, 'k': k, 'logits': z.ravel().tolist(),
            'labels': y.tolist(), 't_scipy': t, 'nll_scipy': nll}


def binary_case(rng, n, scale):
    x = rng.normal(size=n) * 2.0
    c = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    conf = 1 / (1 + np.exp(-x * scale))
    lx = np.log(conf) - np.log1p(-conf)
    t, nll = fit(lambda u: binary_nll(lx, c, np.exp(u)))
    return {'conf': conf.tolist(), 'correct': c.tolist(), 't_scipy': t,
            'nll_scipy': nll}


def ece_case(rng, n, k, scale):
    c = softmax_case(rng, 'ece', n, k, scale)
    z = np.array(c['logits']).reshape(n, k)
    y = np.array(c['labels'])
    correct = (z.argmax(axis=1) == y).astype(float)
    best = np.inf
    for lt in np.linspace(LOG_LO, LOG_HI, 4001):
        s = z / np.exp(lt)
        conf = np.exp(s.max(axis=1) - logsumexp(s, axis=1))
        best = min(best, ece15(conf, correct))
    c['ece_grid_best'] = best
    return c


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'build/golden'
    rng = np.random.default_rng(20240611)
    cases = [softmax_case(rng, 'k2-over', 2000, 2, 3.0),
             softmax_case(rng, 'k10-under', 1000, 10, 0.5),
             softmax_case(rng, 'k10-over', 3000, 10, 1.7),
             softmax_case(rng, 'k100-over', 500, 100, 2.5, spread=1.0)]
    doc = {'softmax': cases, 'binary': binary_case(rng, 2000, 2.2),
           'ece': ece_case(rng, 2000, 10, 2.0)}
    with open(out + '/temperature.json', 'w') as f:
        json.dump(doc, f)


if __name__ == '__main__':
    main()
