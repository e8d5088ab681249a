"""_api.py — the package's functions: evaluate, fit and the Calibrator,
diagram, partial and merge, each a thin layer over one libcalib call.

Every function takes the data in one of three ways: numpy arrays by
keyword (conf/correct, logits/labels, probs/labels, weights, groups), a
calib.Data (from calib.read or calib.data) as the first argument, or a
dict of those keywords.  Options are named as the CLI's (--bins, --binning,
--bin-rule, --objective, --threads).
"""
import ctypes
import json
import math
import os

import numpy as np

from . import _lib
from ._data import Data, as_data, check, describe, fail
from ._lib import lib

BINNINGS = {"width": 0, "mass": 1}
PLOT_FORMATS = {"svg": 0, "png": 1, "pdf": 2, "text": 3, "txt": 3}
METHODS = {"temperature": 0, "platt": 1, "vector": 2, "histogram": 3,
           "isotonic": 4, "beta": 5}


def version():
    """Returns the version string of the libcalib actually loaded."""
    return lib.calib_version().decode()


def _eval_options(bins, binning, bin_rule, threads):
    o = _lib.EvalOptions()
    lib.calib_eval_options_init(ctypes.byref(o))
    if binning not in BINNINGS:
        fail(_lib.EINVAL, "unknown binning %r (width, mass)" % (binning,))
    rule = ctypes.c_int()
    if lib.calib_bin_rule_parse(str(bin_rule).encode(), ctypes.byref(rule)):
        fail(_lib.EINVAL, "unknown bin_rule %r (sklearn, netcal, "
             "torchmetrics, gpleiss, hollance)" % (bin_rule,))
    o.bins, o.binning, o.rule = int(bins), BINNINGS[binning], rule.value
    o.threads = int(threads)
    return o


def _ci_options(o, ci, bootstrap, seed):
    """Bootstrap intervals as the CLI's --ci/--bootstrap/--seed: ci alone
    means 1000 resamples, bootstrap alone a 0.95 level; ci is a fraction
    (0.95) or a percent (95)."""
    if ci is None and bootstrap is None:
        return o
    level = 0.95 if ci is None else float(ci)
    if 1.0 < level < 100.0:
        level /= 100.0
    if not 0.0 < level < 1.0:
        fail(_lib.EINVAL, "ci must be a fraction in (0, 1) such as 0.95, or "
             "a percent in (1, 100) such as 95, not %r" % (ci,))
    o.ci_level = level
    o.bootstrap = 1000 if bootstrap is None else int(bootstrap)
    if o.bootstrap < 1:
        fail(_lib.EINVAL, "bootstrap must be at least 1, not %r"
             % (bootstrap,))
    o.seed = int(seed)
    return o


class _Owned:
    """A library object freed with `free` when collected."""

    def __init__(self, ptr, free):
        self.ptr = ctypes.c_void_p(ptr)
        self._free = free

    def __del__(self):
        if self.ptr:
            self._free(self.ptr)
            self.ptr = ctypes.c_void_p()


def _metrics_json(m, stats):
    out = ctypes.c_void_p()
    err = _lib.Error()
    st = None if stats is None else ctypes.byref(stats)
    check(lib.calib_metrics_to_json(m, st, ctypes.byref(out),
                                    ctypes.byref(err)), err)
    return json.loads(_lib.take_bytes(out.value).decode("utf-8"))


def _evaluate(ds, opt):
    out = ctypes.c_void_p()
    err = _lib.Error()
    check(lib.calib_evaluate(ds.handle, ctypes.byref(opt), ctypes.byref(out),
                             ctypes.byref(err)), err)
    return _Owned(out.value, lib.calib_metrics_free)


def _with_data(source, arrays, fn):
    """Calls fn(Data) on the source, closing a Data made here."""
    ds, owned = as_data(source, **arrays)
    try:
        return fn(ds)
    finally:
        if owned:
            ds.close()


def _split_source(conf, kw):
    """evaluate(calib.read(...)) passes the source in conf's place."""
    if isinstance(conf, (Data, dict, str, os.PathLike)):
        return conf, kw
    kw["conf"] = conf
    return kw.pop("data", None), kw


def evaluate(conf=None, correct=None, logits=None, probs=None, labels=None,
             weights=None, groups=None, bins=15, binning="width",
             bin_rule="sklearn", threads=0, group_names=None, data=None,
             ci=None, bootstrap=None, seed=0, extra=True, scores=True):
    """Returns every metric as a dict with the keys of ``calib eval
    --json``: n, classes, accuracy, mean_confidence, ece, mce, rmsce, nll,
    nll_clipped_rows, nll_from_probs, brier, brier_kind, bins (a list of
    {lower, upper, count, weight, mean_confidence, accuracy}), binning,
    bin_rule, n_bins, weight, ece_n, rows_read, rows_used, rows_rejected,
    values_clamped, rows_sum_off, and groups (the same per group) when the
    rows have groups.  A metric that does not apply is None.

    The data: ``conf`` (N,) with ``correct`` (N,); or ``logits`` (N, K) or
    ``probs`` (N, K) with ``labels`` (N,); optional ``weights`` and
    ``groups`` (see calib.data, which says which arrays are used without
    copying).  Or a calib.Data, a dict of those keywords, or a file path,
    as the first argument (or ``data=``).  Arrays given here are checked
    and evaluated in one call (float32 top-label rows in one pass), with
    the same results and errors as through calib.data.

    Options: ``bins`` (M, default 15), ``binning`` ("width" or "mass"),
    ``bin_rule`` ("sklearn", "netcal", "torchmetrics", "gpleiss",
    "hollance"), ``threads`` (0 = every core; results are bit-identical
    for any count), ``extra`` (False: leave the smooth, selective and
    classwise metrics None, as ``calib eval --no-extra``; they need O(N)
    memory; merged partial states have the selective ones only, from
    their value tables), ``scores`` (False: leave NLL and Brier None, as
    ``calib eval --no-scores``: the binned metrics alone, a little faster).

    Intervals, as the CLI's --ci, --bootstrap, --seed: ``ci`` (a level,
    0.95 or 95) and/or ``bootstrap`` (resamples; ``ci`` alone means 1000,
    ``bootstrap`` alone a 0.95 level), ``seed`` (default 0) add
    ``<metric>_ci: [lower, upper]`` for every metric (None where the
    metric is None), ci_level, ci_resamples and ci_seed, per group too:
    percentile intervals of the resampled rows, bit-identical for a seed
    at any thread count (calib.h defines them).  Raises CalibError.
    """
    source, arrays = _split_source(conf, dict(
        correct=correct, logits=logits, probs=probs, labels=labels,
        weights=weights, groups=groups, group_names=group_names, data=data))
    opt = _ci_options(_eval_options(bins, binning, bin_rule, threads), ci,
                      bootstrap, seed)
    if not extra:
        opt.extra = 0
    if not scores:
        opt.scores = 0

    if source is None:
        # numpy arrays: checked and evaluated in one call (one pass over
        # float32 top-label rows); `keep` holds what `a` points into
        a, keep = describe(**arrays)
        out = ctypes.c_void_p()
        st = _lib.ReadStats()
        err = _lib.Error()
        check(lib.calib_evaluate_arrays(ctypes.byref(a), ctypes.byref(opt),
                                        ctypes.byref(out), ctypes.byref(st),
                                        ctypes.byref(err)), err)
        m = _Owned(out.value, lib.calib_metrics_free)
        return _metrics_json(m.ptr, st)

    def run(ds):
        m = _evaluate(ds, opt)
        st = _lib.ReadStats()
        lib.calib_dataset_stats(ds.handle, ctypes.byref(st))
        return _metrics_json(m.ptr, st)
    return _with_data(source, arrays, run)


def paired_bootstrap(a, b, ci=0.95, bootstrap=1000, seed=0, bins=15,
                     binning="width", bin_rule="sklearn", threads=0):
    """The paired bootstrap of two prediction sets of the same rows in the
    same order (two models on one benchmark), as ``calib compare A B
    --paired --json``: returns {"paired": {metric: {"diff", "ci",
    "p_le_0", "a", "b", "replicates"}}, "paired_options": {"n",
    "ci_level", "resamples", "seed"}} for every metric finite on both.
    diff is B - A; ci its percentile interval over ``bootstrap``
    replicates that each resample both sets with one draw; p_le_0 the
    fraction of replicates with B - A <= 0 (for ECE, NLL, Brier,
    1 - p_le_0 is a one-sided bootstrap p-value of "B is better").

    ``a`` and ``b``: a calib.Data, a dict of calib.data keywords, or a
    path each.  Raises CalibError (EDATA when the row counts differ or a
    row's label differs between them).
    """
    opt = _ci_options(_eval_options(bins, binning, bin_rule, threads), ci,
                      bootstrap, seed)
    da, own_a = as_data(a)
    try:
        db, own_b = as_data(b)
        try:
            return _paired(da, db, opt)
        finally:
            if own_b:
                db.close()
    finally:
        if own_a:
            da.close()


def _paired(da, db, opt):
    out = ctypes.POINTER(_lib.Paired)()
    err = _lib.Error()
    check(lib.calib_paired_bootstrap(da.handle, db.handle, ctypes.byref(opt),
                                     ctypes.byref(out), ctypes.byref(err)),
          err)
    try:
        p = out.contents

        def num(x):
            return None if math.isnan(x) or math.isinf(x) else float(x)
        paired = {}
        for i in range(_lib.M_COUNT):
            pm = p.m[i]
            name = lib.calib_metric_name(i).decode()
            if math.isnan(pm.diff):
                continue
            paired[name] = {"diff": num(pm.diff),
                            "ci": [num(pm.ci[0]), num(pm.ci[1])],
                            "p_le_0": num(pm.p_le_0), "a": num(pm.a),
                            "b": num(pm.b), "replicates": int(pm.replicates)}
        return {"paired": paired,
                "paired_options": {"n": int(p.n), "ci_level": p.ci_level,
                                   "resamples": int(p.resamples),
                                   "seed": int(p.seed)}}
    finally:
        lib.calib_paired_free(out)


# ---------------------------------------------------------------- fitting

class Calibrator:
    """A fitted recalibration map, from calib.fit() or
    Calibrator.from_json().

    Attributes: ``method`` ("temperature", "platt", "vector",
    "histogram", "isotonic" or "beta"), ``params`` (the fitted parameters
    as calib_calibrator_params lists them: [T]; platt [a, b]; beta
    [a, b, c]; vector [a_0..a_{K-1}, b_0..b_{K-1}]; histogram [edges...,
    values...]; isotonic [x..., y...]), ``temperature`` (T; temperature
    scaling only, NaN otherwise), ``toplabel`` (True for the methods that
    map a confidence and return top-label rows),
    ``objective`` ("nll", "ece" or "brier"), ``iterations``,
    ``objective_value`` (the objective at T), ``binary`` (True when fitted
    on top-label rows: p' = sigmoid(logit(p) / T)), ``diagnostics`` (the
    boundary cases and warnings, as sentences; T is clamped at the end of
    its search range when there is no finite optimum, never silently).
    """

    def __init__(self, ptr):
        self._c = _Owned(ptr, lib.calib_calibrator_free)

    @property
    def _ptr(self):
        return self._c.ptr

    @property
    def method(self):
        m = lib.calib_calibrator_method(self._ptr)
        return {v: k for k, v in METHODS.items()}.get(m, str(m))

    @property
    def temperature(self):
        if self.method != "temperature":
            return float("nan")
        return float(lib.calib_calibrator_temperature(self._ptr))

    @property
    def params(self):
        n = lib.calib_calibrator_params(self._ptr, None, 0)
        out = (ctypes.c_double * max(n, 1))()
        lib.calib_calibrator_params(self._ptr, out, n)
        return np.array(out[:n], dtype=np.float64)

    @property
    def toplabel(self):
        return bool(lib.calib_method_toplabel(METHODS[self.method]))

    @property
    def objective(self):
        return lib.calib_objective_name(
            lib.calib_calibrator_objective(self._ptr)).decode()

    @property
    def iterations(self):
        return int(lib.calib_calibrator_iterations(self._ptr))

    @property
    def objective_value(self):
        return float(lib.calib_calibrator_objective_value(self._ptr))

    @property
    def binary(self):
        return bool(lib.calib_calibrator_binary(self._ptr))

    @property
    def diagnostics(self):
        n = lib.calib_calibrator_diagnostic_count(self._ptr)
        return [lib.calib_calibrator_diagnostic(self._ptr, i).decode()
                for i in range(n)]

    def apply_data(self, data=None, **arrays):
        """Returns a new calib.Data with the calibrator applied to every row
        (logits become z / T, probabilities softmax(log p / T), top-label
        confidences sigmoid(logit(p) / T)); groups and weights are kept.
        Takes what calib.evaluate takes.  Raises CalibError (EINVAL for a
        top-label calibrator on distribution rows or the reverse)."""
        def run(ds):
            out = ctypes.c_void_p()
            err = _lib.Error()
            check(lib.calib_apply(self._ptr, ds.handle, ctypes.byref(out),
                                  ctypes.byref(err)), err)
            return Data(out.value)
        return _with_data(data, arrays, run)

    def apply(self, logits=None, probs=None, conf=None, labels=None,
              correct=None, data=None):
        """Returns the calibrated probabilities as a new float64 array:
        temperature scaling gives softmax(z / T) of ``logits`` (N, K),
        softmax(log p / T) of ``probs`` (N, K), or sigmoid(logit(p) / T) of
        ``conf`` (N,) confidences; vector scaling (N, K) probabilities; the
        top-label methods (platt, beta, histogram, isotonic) the (N,)
        calibrated confidences of ``conf``, or of each row's largest
        probability for ``logits``/``probs`` (then ``labels`` matter only
        for the correct flags, which apply() does not return).
        ``labels`` and ``correct`` are optional (they do not change the
        probabilities; given, they are checked).  A calib.Data may be
        passed instead (``data=``); ragged rows come back as one flat array
        of the rows one after the other.  The inputs are not copied when
        their layout allows it (see calib.data)."""
        if data is None:
            if logits is not None or probs is not None:
                n = len(logits if logits is not None else probs)
                if labels is None:
                    labels = np.zeros(n, dtype=np.int32)
            elif conf is not None and correct is None:
                correct = np.zeros(len(conf), dtype=np.uint8)
        cal = self.apply_data(data, logits=logits, probs=probs, conf=conf,
                              labels=labels, correct=correct)
        try:
            return cal.probabilities()
        finally:
            cal.close()

    def to_json(self):
        """Returns the calibrator as JSON text (method, objective,
        temperature, form, iterations, objective_value, diagnostics), the
        form `calib fit -o` writes and Calibrator.from_json reads."""
        out = ctypes.c_void_p()
        err = _lib.Error()
        check(lib.calib_calibrator_to_json(self._ptr, ctypes.byref(out),
                                           ctypes.byref(err)), err)
        return _lib.take_bytes(out.value).decode("utf-8")

    @classmethod
    def from_json(cls, text):
        """Returns the Calibrator that to_json() (or `calib fit -o`)
        wrote; extra keys are ignored.  Raises CalibError (EDATA)."""
        b = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        out = ctypes.c_void_p()
        err = _lib.Error()
        check(lib.calib_calibrator_from_json(b, len(b), ctypes.byref(out),
                                             ctypes.byref(err)), err)
        return cls(out.value)

    def __repr__(self):
        if self.method == "temperature":
            return "<calib.Calibrator temperature T=%.17g objective=%s>" % (
                self.temperature, self.objective)
        return "<calib.Calibrator %s, %d parameters>" % (
            self.method, len(self.params))


def fit(logits=None, labels=None, probs=None, conf=None, correct=None,
        weights=None, groups=None, method="temperature", objective="nll",
        bins=15, threads=0, t_min=None, t_max=None, hist_bins=15,
        hist_binning="width", data=None):
    """Fits a calibrator on validation data and returns a Calibrator.

    ``method``: "temperature" (default), "platt", "vector", "histogram"
    (``hist_bins`` bins, ``hist_binning`` "width" or "mass"), "isotonic"
    or "beta"; the methods other than temperature minimise NLL (see
    calib_fit in calib.h).  Top-label methods fitted on logits or
    probabilities work on the top-label view (the largest probability,
    and whether the argmax is the label).

    Temperature scaling: q = softmax(z / T) for ``logits`` (probabilities
    ``probs`` are taken as logits log p), p' = sigmoid(logit(p) / T) for
    top-label ``conf``/``correct``.  ``objective``: "nll" (default; Newton
    on log(1/T), exact derivatives), "ece" (with ``bins``) or "brier".
    ``t_min``/``t_max`` bound the search (default 1e-3 .. 1e3).  The data
    may also be a calib.Data or dict as the first argument or ``data=``.
    Raises CalibError (ECONVERGE when the solver fails; a case with no
    finite optimum is not an error but a diagnostic).
    """
    source = data
    if isinstance(logits, (Data, dict, str, os.PathLike)):
        source, logits = logits, None
    arrays = dict(logits=logits, labels=labels, probs=probs, conf=conf,
                  correct=correct, weights=weights, groups=groups)
    if method not in METHODS:
        fail(_lib.EINVAL, "unknown method %r (%s)"
             % (method, ", ".join(METHODS)))
    if hist_binning not in BINNINGS:
        fail(_lib.EINVAL, "unknown hist_binning %r (width, mass)"
             % (hist_binning,))
    o = _lib.FitOptions()
    lib.calib_fit_options_init(ctypes.byref(o))
    obj = ctypes.c_int()
    if lib.calib_objective_parse(str(objective).encode(), ctypes.byref(obj)):
        fail(_lib.EINVAL, "unknown objective %r (nll, ece, brier)"
             % (objective,))
    o.method, o.objective = METHODS[method], obj.value
    o.eval = _eval_options(bins, "width", "sklearn", threads)
    if t_min is not None:
        o.t_min = float(t_min)
    if t_max is not None:
        o.t_max = float(t_max)
    o.hist_bins, o.hist_binning = int(hist_bins), BINNINGS[hist_binning]

    def run(ds):
        out = ctypes.c_void_p()
        err = _lib.Error()
        check(lib.calib_fit(ds.handle, ctypes.byref(o), ctypes.byref(out),
                            ctypes.byref(err)), err)
        return Calibrator(out.value)
    return _with_data(source, arrays, run)


# ---------------------------------------------------------------- diagrams

def _is_one_source(s):
    return isinstance(s, (Data, dict, str, os.PathLike))


def diagram(sources=None, labels=None, format="svg", title=None, width=0,
            height=0, counts=True, headline=True, ascii=False, bins=15,
            binning="width", bin_rule="sklearn", threads=0, **arrays):
    """Returns a reliability diagram as bytes: SVG, PNG or PDF (cairo), or
    a terminal chart with ``format="text"`` (UTF-8; ``ascii=True`` for
    plain ASCII).

    ``sources``: one metric source or a list of up to 8, overlaid with a
    legend; a source is a calib.Data, a dict of calib.data keywords
    (``{"logits": z, "labels": y}``), or a file path.  Top-label arrays may
    also be given directly (``calib.diagram(conf=p, correct=c)``).
    ``labels`` names the series (a list, or one string), as the CLI's
    ``--label``: class labels therefore go inside a source.  ``title``,
    ``width`` and ``height`` (0 = 640 x 720 units, or 60 x 16 characters),
    ``counts`` (the per-bin counts panel), ``headline`` (ECE, MCE,
    accuracy, N) as calib_plot_options; ``bins``, ``binning``,
    ``bin_rule``, ``threads`` as calib.evaluate.  Raises CalibError.
    """
    if format not in PLOT_FORMATS:
        fail(_lib.EINVAL, "unknown format %r (svg, png, pdf, text)"
             % (format,))
    if sources is None:
        srcs = [None]
    elif _is_one_source(sources):
        srcs = [sources]
    else:
        srcs = list(sources)
    if isinstance(labels, str):
        labels = [labels]
    if labels is not None and len(labels) != len(srcs):
        fail(_lib.EINVAL, "%d labels for %d series" % (len(labels), len(srcs)))
    opt = _eval_options(bins, binning, bin_rule, threads)
    metrics = [_with_data(s, arrays if s is None else {},
                          lambda ds: _evaluate(ds, opt)) for s in srcs]
    po = _lib.PlotOptions()
    lib.calib_plot_options_init(ctypes.byref(po))
    po.width, po.height = int(width), int(height)
    title_b = None if title is None else str(title).encode("utf-8")
    po.title = title_b
    po.counts, po.headline, po.ascii = int(counts), int(headline), int(ascii)
    series = (ctypes.c_void_p * len(metrics))(*[m.ptr.value for m in metrics])
    names = None
    if labels is not None:
        names = (ctypes.c_char_p * len(labels))(
            *[None if x is None else str(x).encode("utf-8") for x in labels])
    out = ctypes.c_void_p()
    size = ctypes.c_size_t()
    err = _lib.Error()
    check(lib.calib_render_diagram(series, names, len(metrics),
                                   PLOT_FORMATS[format], ctypes.byref(po),
                                   ctypes.byref(out), ctypes.byref(size),
                                   ctypes.byref(err)), err)
    return _lib.take_bytes(out.value, size.value)


# ---------------------------------------------------------------- shards

def _need(name):
    if not _lib.has(name):
        raise NotImplementedError(
            "calib: %s is missing from %s (a library older than partial "
            "states)" % (name, _lib.path))


def partial(conf=None, correct=None, logits=None, probs=None, labels=None,
            weights=None, groups=None, bins=15, bin_rule="sklearn",
            threads=0, group_names=None, data=None, values=True,
            value_limit=0):
    """Returns the partial state of one shard as JSON text: what
    ``calib eval --partial`` writes (exact sums as integers, the options,
    the library's version and the read counts).  calib.merge() of the
    states of every shard gives, bit for bit, what calib.evaluate gives
    over all the rows, whatever the split and the order.

    Takes the data as calib.evaluate does; an empty shard is fine.  With
    ``values`` (the default) the state also holds each population's value
    table (distinct confidences with exact sums), from which
    ``calib.merge(..., binning="mass")`` gives equal-mass metrics; a table
    keeps at most ``value_limit`` entries (0: 2**20) and moves to a grid
    past it (see calib.merge).  ``values=False`` writes the smaller
    version-1 state, equal-width only.  Raises CalibError.
    """
    _need("calib_accum_to_json")
    source, arrays = _split_source(conf, dict(
        correct=correct, logits=logits, probs=probs, labels=labels,
        weights=weights, groups=groups, group_names=group_names, data=data))
    opt = _eval_options(bins, "width", bin_rule, threads)

    def run(ds):
        acc = _accum_new(opt)
        err = _lib.Error()
        if values:
            _need("calib_accum_keep_values")
            check(lib.calib_accum_keep_values(acc.ptr, int(value_limit),
                                              ctypes.byref(err)), err)
        check(lib.calib_accum_add(acc.ptr, ds.handle, ctypes.byref(err)), err)
        st = _lib.ReadStats()
        lib.calib_dataset_stats(ds.handle, ctypes.byref(st))
        out = ctypes.c_void_p()
        check(lib.calib_accum_to_json(acc.ptr, ctypes.byref(st),
                                      ctypes.byref(out), ctypes.byref(err)),
              err)
        return _lib.take_bytes(out.value).decode("utf-8")
    return _with_data(source, arrays, run)


def _accum_new(opt):
    out = ctypes.c_void_p()
    err = _lib.Error()
    check(lib.calib_accum_new(ctypes.byref(opt), ctypes.byref(out),
                              ctypes.byref(err)), err)
    return _Owned(out.value, lib.calib_accum_free)


def _part_bytes(p):
    if isinstance(p, os.PathLike):
        with open(p, "rb") as f:
            return f.read()
    if isinstance(p, str):
        return p.encode("utf-8")
    if isinstance(p, (bytes, bytearray, memoryview)):
        return bytes(p)
    raise TypeError("a partial state is JSON text (str or bytes) or a "
                    "pathlib.Path, not %s" % type(p).__name__)


def merge(parts, partial=False, binning="width"):
    """Merges partial states (JSON text from calib.partial or ``calib eval
    --partial``, as str or bytes, or pathlib.Path of such files) and
    returns the metrics dict of calib.evaluate over all their rows, with
    the read counts summed; with ``partial=True`` returns the merged
    partial state instead (JSON text), for merging in a tree.

    ``binning="mass"`` gives the equal-mass metrics, from the states' value
    tables (every state needs one), bit for bit calib.evaluate(...,
    binning="mass") over all the rows while the tables hold every
    confidence.  When a table outgrew its value_limit and moved to a grid,
    the dict says what is no longer exact: ``"approximate"`` lists the keys
    (e.g. ["ece", "mce", "rmsce", "bins"]), ``"value_grid"`` the grid step
    and ``"ece_error_bound"`` a bound on |ECE - exact ECE|; the same keys
    appear in a group's dict for that group.  Without "approximate" every
    metric is exact.

    Raises CalibError: EDATA for a malformed state or one from another
    version, EINVAL for states with different bins, rule or value limit,
    for binning="mass" without value tables, and when ``parts`` is empty.
    """
    if binning not in BINNINGS:
        fail(_lib.EINVAL, "unknown binning %r (width, mass)" % (binning,))
    _need("calib_accum_from_json")
    parts = list(parts)
    if not parts:
        fail(_lib.EINVAL, "merge: no partial states")
    total = _lib.ReadStats()
    acc = None
    for p in parts:
        b = _part_bytes(p)
        out = ctypes.c_void_p()
        st = _lib.ReadStats()
        err = _lib.Error()
        check(lib.calib_accum_from_json(b, len(b), ctypes.byref(out),
                                        ctypes.byref(st), ctypes.byref(err)),
              err)
        one = _Owned(out.value, lib.calib_accum_free)
        for name, _ in _lib.ReadStats._fields_:
            setattr(total, name, getattr(total, name) + getattr(st, name))
        if acc is None:
            acc = one
        else:
            check(lib.calib_accum_merge(acc.ptr, one.ptr, ctypes.byref(err)),
                  err)
    err = _lib.Error()
    if partial:
        out = ctypes.c_void_p()
        check(lib.calib_accum_to_json(acc.ptr, ctypes.byref(total),
                                      ctypes.byref(out), ctypes.byref(err)),
              err)
        return _lib.take_bytes(out.value).decode("utf-8")
    m = ctypes.c_void_p()
    if binning == "mass":
        _need("calib_accum_result_mass")
        check(lib.calib_accum_result_mass(acc.ptr, 0, ctypes.byref(m),
                                          ctypes.byref(err)), err)
    else:
        check(lib.calib_accum_result(acc.ptr, ctypes.byref(m),
                                     ctypes.byref(err)), err)
    result = _Owned(m.value, lib.calib_metrics_free)
    out = _metrics_json(result.ptr, total)
    if _lib.has("calib_accum_has_values") and \
            lib.calib_accum_has_values(acc.ptr):
        _mark_approximate(acc, out, None, binning == "mass")
        for i, name in enumerate(out.get("groups") or {}):
            _mark_approximate(acc, out["groups"][name], i, binning == "mass")
    return out


# What a value table on a grid leaves approximate (calib_exactness), by
# the JSON keys the CLI's `calib merge` uses too.
BIN_KEYS = ("ece", "mce", "rmsce", "ece_debiased_l2", "ece_over",
            "ece_under", "brier_reliability", "brier_resolution")
RANK_KEYS = ("auroc", "aurc", "selective_cov_acc_area",
             "selective_acc_at_10")


def _mark_approximate(acc, d, group, mass):
    x = _lib.Exactness()
    err = _lib.Error()
    where = 2 ** 64 - 1 if group is None else group
    check(lib.calib_accum_exactness(acc.ptr, 0, ctypes.c_size_t(where),
                                    ctypes.byref(x), ctypes.byref(err)), err)
    keys = []
    if not mass:   # equal-width bins come from exact cells
        x.bins_moved = x.edges_moved = 0
    if x.bins_moved:
        keys += [k for k in BIN_KEYS if d.get(k) is not None] + ["bins"]
    elif x.edges_moved:
        keys.append("bins")
    if x.ties_made:
        keys += [k for k in RANK_KEYS if d.get(k) is not None]
    if keys:
        d["approximate"] = keys
        d["value_grid"] = x.grid
        if x.bins_moved:
            d["ece_error_bound"] = x.ece_bound


