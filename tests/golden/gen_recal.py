#!/usr/bin/python3
"""Golden cases for Platt scaling, beta calibration and vector scaling,
computed by scikit-learn and scipy.  Never computed by calib.

- Platt: LogisticRegression(penalty=None, solver="newton-cholesky") (
  scikit-learn 1.2 spells "no penalty" None) on logit(p), p clipped into
  [2^-52, 1 - 2^-52].
- Beta: the same on [ln p, -ln(1 - p)], then betacal's "abm" rule (its
  python/betacal/beta_calibration.py): if the ln p coefficient is negative,
  refit on -ln(1 - p) alone; else if the other is negative, on ln p alone.
- Vector scaling: scipy.optimize.minimize(method='L-BFGS-B') on the mean
  NLL written with scipy.special.logsumexp, exact gradient, tight
  tolerances, from a = 1, b = 0.
Each case records the reference's parameters and its NLL, computed here.
Usage: gen_recal.py OUTDIR   (writes OUTDIR/recal.json)
"""
import json
import sys
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_expit, logsumexp
from sklearn.linear_model import LogisticRegression

EPS = 2.0 ** -52


def logistic(x, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = LogisticRegression(penalty=None, solver="newton-cholesky", tol=1e-14,
                                max_iter=100000)
        lr.fit(x, y)
    theta = np.r_[lr.coef_[0], lr.intercept_]
    return theta, binary_nll(x @ theta[:-1] + theta[-1], y)


def binary_nll(eta, y):
    return float(-np.mean(np.where(y == 1, log_expit(eta), log_expit(-eta))))


def features(conf):
    p = np.clip(conf, EPS, 1 - EPS)
    return np.log(p), -np.log1p(-p)


def platt_case(rng, n, slope):
    x = rng.normal(size=n) * 2.0
    y = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(int)
    conf = 1 / (1 + np.exp(-slope * x))
    lp, lq = features(conf)
    theta, nll = logistic((lp + lq).reshape(-1, 1), y)
    return {"conf": conf.tolist(), "correct": y.tolist(),
            "a": theta[0], "b": theta[1], "nll": nll}


def beta_case(rng, n, a, b, c):
    conf = rng.beta(2.0, 1.2, size=n)
    lp, lq = features(conf)
    truth = 1 / (1 + np.exp(-(a * lp + b * lq + c)))
    y = (rng.random(n) < truth).astype(int)
    theta, nll = logistic(np.c_[lp, lq], y)
    coef = [theta[0], theta[1], theta[2]]
    rule = "full"
    if theta[0] < 0:        # betacal: refit on -ln(1-p) alone, a = 0
        t1, nll = logistic(lq.reshape(-1, 1), y)
        coef, rule = [0.0, t1[0], t1[1]], "drop-a"
    elif theta[1] < 0:      # else refit on ln p alone, b = 0
        t1, nll = logistic(lp.reshape(-1, 1), y)
        coef, rule = [t1[0], 0.0, t1[1]], "drop-b"
    return {"conf": conf.tolist(), "correct": y.tolist(), "a": coef[0],
            "b": coef[1], "c": coef[2], "nll": nll, "rule": rule}


def vector_nll(theta, z, y):
    k = z.shape[1]
    s = z * theta[:k] + theta[k:]
    lse = logsumexp(s, axis=1)
    q = np.exp(s - lse[:, None])
    q[np.arange(len(y)), y] -= 1
    n = len(y)
    f = float(np.mean(lse - s[np.arange(n), y]))
    return f, np.r_[(q * z).mean(axis=0), q.mean(axis=0)]


def vector_case(rng, n, k, spread):
    z = rng.normal(size=(n, k)) * spread + rng.normal(size=k) * 0.5
    truth = z * rng.uniform(0.3, 0.9, size=k) + rng.normal(size=k) * 0.3
    p = np.exp(truth - logsumexp(truth, axis=1, keepdims=True))
    y = np.array([rng.choice(k, p=row) for row in p])
    x0 = np.r_[np.ones(k), np.zeros(k)]
    r = minimize(vector_nll, x0, args=(z, y), jac=True, method="L-BFGS-B",
                 options={"ftol": 1e-16, "gtol": 1e-12, "maxiter": 100000,
                          "maxcor": 30})
    return {"k": k, "logits": z.ravel().tolist(), "labels": y.tolist(),
            "scale": r.x[:k].tolist(), "bias": r.x[k:].tolist(),
            "nll": float(r.fun)}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build/golden"
    rng = np.random.default_rng(20240612)
    doc = {"platt": [platt_case(rng, 3000, 1.7), platt_case(rng, 800, 0.4)],
           "beta": [beta_case(rng, 3000, 0.7, 1.4, 0.2),
                    beta_case(rng, 3000, -0.9, 1.5, 0.3),
                    beta_case(rng, 3000, 1.2, -0.8, 0.5)],
           "vector": [vector_case(rng, 2000, 5, 2.5),
                      vector_case(rng, 1500, 10, 3.0)]}
    with open(out + "/recal.json", "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
