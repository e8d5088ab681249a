"""_data.py — errors, and prediction sets held by libcalib (calib.Data).

numpy arrays are handed to calib_dataset_wrap() without copying wherever
their dtype and layout allow it; the Data object keeps a reference to every
array it was built from for as long as the library may read them.
"""
import ctypes
import os

import numpy as np

from . import _lib
from ._lib import lib

KIND_NAMES = {_lib.TOPLABEL: "toplabel", _lib.LOGITS: "logits",
              _lib.PROBS: "probs"}
FORMATS = {"auto": 0, "npy": 1, "csv": 2, "tsv": 3, "lmeval": 4, "openai": 5}
NORMS = {"none": 0, "chars": 1, "bytes": 2}
_INT32 = np.iinfo(np.int32)


class CalibError(Exception):
    """An error reported by libcalib (or found by the binding before the
    call, in the same terms).

    Attributes: ``code`` (the calib_status number: 1 EINVAL, 2 EDATA,
    3 EOPEN, 4 ECREATE, 5 EIO, 6 ENOMEM, 7 ECONVERGE, 8 EINTERNAL), ``file``
    (the input it concerns, "" if none), ``line``, ``row`` and ``column``
    (1-based, 0 when not applicable) and ``message`` (one sentence).
    ``str(e)`` is "file:line:col: message" as the CLI prints it.
    """

    def __init__(self, code, message, file="", line=0, row=0, column=0,
                 formatted=None):
        self.code = int(code)
        self.message = message
        self.file = file
        self.line = int(line)
        self.row = int(row)
        self.column = int(column)
        super().__init__(formatted or message)

    @property
    def status(self):
        """The status as a short phrase ("bad input data", ...)."""
        return lib.calib_strerror(self.code).decode()


def check(rc, err):
    """Raises CalibError from a failed call's status and calib_error."""
    if rc == _lib.OK:
        return
    buf = ctypes.create_string_buffer(2048)
    lib.calib_error_format(ctypes.byref(err), buf, len(buf))
    message = err.message.decode("utf-8", "replace")
    if not message:
        message = lib.calib_strerror(rc).decode()
    raise CalibError(rc, message, err.file.decode("utf-8", "replace"),
                     err.line, err.row, err.column,
                     buf.value.decode("utf-8", "replace") or message)


def fail(code, message, row=0, column=0):
    """Raises a CalibError found by the binding itself."""
    raise CalibError(code, message, row=row, column=column)


def stats_dict(st):
    """A calib_read_stats as a dict."""
    return {name: int(getattr(st, name)) for name, _ in _lib.ReadStats._fields_}


class Data:
    """A prediction set held by libcalib: what calib.read() and
    calib.data() return, and what every function of the package accepts in
    place of arrays.

    Arrays it was made from are referenced, not copied, and must not be
    modified while it lives.  Attributes: ``kind`` ("toplabel", "logits" or
    "probs"), ``rows``, ``classes`` (K; 0 for ragged or top-label rows),
    ``groups`` (the group names), ``stats`` (the read counts: rows_read,
    rows_used, rows_rejected, values_clamped, rows_sum_off, ...).
    ``close()`` releases it now rather than when it is collected.
    """

    def __init__(self, ptr, keep=()):
        self._ptr = ctypes.c_void_p(ptr)
        self._keep = keep

    def close(self):
        """Releases the library's dataset (and what it keeps alive)."""
        if self._ptr:
            lib.calib_dataset_free(self._ptr)
            self._ptr = ctypes.c_void_p()
            self._keep = ()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def handle(self):
        """The calib_dataset pointer (raises if the Data was closed)."""
        if not self._ptr:
            raise ValueError("calib.Data: used after close()")
        return self._ptr

    @property
    def kind(self):
        return KIND_NAMES[lib.calib_dataset_kind(self.handle)]

    @property
    def rows(self):
        return int(lib.calib_dataset_rows(self.handle))

    def __len__(self):
        return self.rows

    @property
    def classes(self):
        return int(lib.calib_dataset_classes(self.handle))

    @property
    def groups(self):
        h = self.handle
        return [lib.calib_dataset_group_name(h, i).decode()
                for i in range(lib.calib_dataset_group_count(h))]

    @property
    def stats(self):
        st = _lib.ReadStats()
        lib.calib_dataset_stats(self.handle, ctypes.byref(st))
        return stats_dict(st)

    def probabilities(self):
        """Returns every row's probabilities as a new float64 array:
        (N, K) for rows of K classes, (N,) confidences for top-label rows,
        and one flat array of all the rows one after the other for ragged
        rows (calib_dataset_export)."""
        h = self.handle
        n = lib.calib_dataset_export_len(h)
        out = np.empty(n, dtype=np.float64)
        err = _lib.Error()
        check(lib.calib_dataset_export(h, out.ctypes.data, n,
                                       ctypes.byref(err)), err)
        k = self.classes
        if k and lib.calib_dataset_kind(h) != _lib.TOPLABEL:
            out = out.reshape(-1, k)
        return out

    def __repr__(self):
        if not self._ptr:
            return "<calib.Data closed>"
        return "<calib.Data %s rows=%d classes=%d groups=%d>" % (
            self.kind, self.rows, self.classes, len(self.groups))


# ---------------------------------------------------------------- arrays

def _floats(x, name):
    """x as a C-contiguous native float32/float64 array: the same memory
    when it already is one, else one converted copy."""
    a = np.asarray(x)
    if a.dtype.type not in (np.float32, np.float64):
        a = a.astype(np.float64)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return np.ascontiguousarray(a)


def _ragged(x, name):
    """A sequence of 1-D score rows of different lengths: (values, offsets),
    both copies."""
    rows = [np.asarray(r, dtype=np.float64).ravel() for r in x]
    offsets = np.zeros(len(rows) + 1, dtype=np.uintp)
    np.cumsum([len(r) for r in rows], out=offsets[1:])
    values = np.concatenate(rows) if rows else np.zeros(0)
    return values, offsets


def _scores(x, name):
    """(scores array, k, offsets or None) of logits= or probs=."""
    try:
        a = np.asarray(x)
        ragged = a.dtype == object
    except ValueError:  # numpy >= 1.24: inhomogeneous rows
        ragged = True
    if ragged:
        values, offsets = _ragged(x, name)
        return values, 0, offsets
    a = _floats(a, name)
    if a.ndim != 2:
        fail(_lib.EINVAL, "%s= must have shape (N, K), not %s"
             % (name, a.shape))
    return a, a.shape[1], None


def _first_bad(mask):
    return int(np.flatnonzero(mask)[0]) + 1


def _labels(y, n, k):
    """labels= as int32: the same memory when it already is C-contiguous
    native int32, else a copy whose values are checked to fit."""
    a = np.asarray(y)
    if a.ndim != 1 or len(a) != n:
        fail(_lib.EINVAL, "labels= must have shape (%d,), not %s"
             % (n, a.shape))
    col = k + 1 if k else 0
    if a.dtype == np.int32 and a.dtype.isnative:
        return np.ascontiguousarray(a)
    if a.dtype.kind == "b":
        return a.astype(np.int32)
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.floor(a))
        if bad.any():
            r = _first_bad(bad)
            fail(_lib.EDATA, "row %d: label %r is not an integer"
                 % (r, a[r - 1]), row=r, column=col)
    elif a.dtype.kind not in "iu":
        fail(_lib.EINVAL, "labels= must be integers, not %s" % a.dtype)
    if n:
        bad = (a < _INT32.min) | (a > _INT32.max)
        if bad.any():
            r = _first_bad(bad)
            fail(_lib.EDATA, "row %d: label %r outside the int32 range"
                 % (r, a[r - 1]), row=r, column=col)
    return a.astype(np.int32)


def _correct(c, n):
    """correct= as uint8 0/1: bool and uint8 arrays as they are (no copy),
    others checked and converted."""
    a = np.asarray(c)
    if a.ndim != 1 or len(a) != n:
        fail(_lib.EINVAL, "correct= must have shape (%d,), not %s"
             % (n, a.shape))
    if a.dtype == np.bool_:
        return np.ascontiguousarray(a).view(np.uint8)
    if a.dtype != np.uint8:
        bad = (a != 0) & (a != 1)
        if bad.any():
            r = _first_bad(bad)
            fail(_lib.EDATA, "row %d: correct %r is not 0 or 1"
                 % (r, a[r - 1]), row=r, column=2)
        a = a.astype(np.uint8)
    return np.ascontiguousarray(a)


def _weights(w, n):
    a = np.ascontiguousarray(np.asarray(w, dtype=np.float64))
    if not a.dtype.isnative:
        a = a.astype(np.float64)
    if a.ndim != 1 or len(a) != n:
        fail(_lib.EINVAL, "weights= must have shape (%d,), not %s"
             % (n, a.shape))
    return a


def _groups(g, names, n):
    """(uint32 indices, list of names) from groups= (strings or ints) and
    an optional group_names= for integer groups."""
    a = np.asarray(g)
    if a.ndim != 1 or len(a) != n:
        fail(_lib.EINVAL, "groups= must have shape (%d,), not %s"
             % (n, a.shape))
    if names is not None:
        if a.dtype.kind not in "iu":
            fail(_lib.EINVAL, "group_names= needs integer groups=")
        bad = (a < 0) | (a >= len(names))
        if n and bad.any():
            r = _first_bad(bad)
            fail(_lib.EDATA, "row %d: group %d has no name" % (r, a[r - 1]),
                 row=r)
        return (np.ascontiguousarray(a.astype(np.uint32, copy=False)),
                [str(s) for s in names])
    uniq, inv = np.unique(a, return_inverse=True)
    return (np.ascontiguousarray(inv.astype(np.uint32)),
            [str(u) for u in uniq.tolist()])


def _ptr(a):
    return None if a is None else a.ctypes.data


def data(conf=None, correct=None, logits=None, probs=None, labels=None,
         weights=None, groups=None, group_names=None):
    """Returns a calib.Data over numpy arrays, checked as calib reads files.

    Give exactly one of:
      ``conf`` (N,) confidences with ``correct`` (N,) 0/1 or bool: top-label
      rows;  ``logits`` (N, K) with ``labels`` (N,) in [0, K): distribution
      rows (a list of rows of different lengths gives ragged rows, as
      multiple-choice evals with varying choices);  ``probs`` (N, K)
      probabilities with ``labels``.
    ``weights`` (N,) finite and >= 0; ``groups`` (N,) strings or ints
    naming each row's group (subject, task, domain); with integer groups,
    ``group_names`` names group i.

    No copies where the layout allows: float32 or float64 C-contiguous
    ``conf``/``logits``/``probs``, int32 ``labels``, bool or uint8
    ``correct`` and float64 ``weights`` are referenced by the returned
    Data, which keeps them alive; do not modify them while it lives.  Any
    other dtype, a non-contiguous view or a non-native byte order is
    converted into one contiguous copy first (labels checked to fit int32,
    correct checked to be 0/1); ragged rows and groups are always copied.

    Raises CalibError (code 2, EDATA, with ``row`` and ``column``) for NaN,
    infinities, probabilities more than 1e-3 outside [0, 1], rows not
    summing to 1 within 1e-3, labels outside [0, K); code 1 (EINVAL) for
    inconsistent arguments.
    """
    a, keep = describe(conf, correct, logits, probs, labels, weights, groups,
                       group_names)
    out = ctypes.c_void_p()
    err = _lib.Error()
    check(lib.calib_dataset_wrap(ctypes.byref(a), ctypes.byref(out),
                                 ctypes.byref(err)), err)
    return Data(out.value, tuple(keep))


def describe(conf=None, correct=None, logits=None, probs=None, labels=None,
             weights=None, groups=None, group_names=None):
    """(calib_arrays, the arrays it points into) for data()'s arguments,
    not yet checked: the caller keeps the list alive while the
    description is in use."""
    given = [x is not None for x in (conf, logits, probs)]
    if sum(given) != 1:
        fail(_lib.EINVAL, "give exactly one of conf=, logits=, probs=")
    a = _lib.Arrays()
    keep = []
    if conf is not None:
        if correct is None:
            fail(_lib.EINVAL, "conf= needs correct=")
        c = _floats(conf, "conf")
        if c.ndim != 1:
            fail(_lib.EINVAL, "conf= must have shape (N,), not %s"
                 % (c.shape,))
        n = len(c)
        ok = _correct(correct, n)
        a.kind, a.n, a.conf, a.correct = _lib.TOPLABEL, n, _ptr(c), _ptr(ok)
        a.dtype = _lib.F32 if c.dtype == np.float32 else _lib.F64
        keep += [c, ok]
    else:
        s, k, offsets = _scores(logits if logits is not None else probs,
                                "logits" if logits is not None else "probs")
        if labels is None:
            fail(_lib.EINVAL, "logits= and probs= need labels=")
        n = len(offsets) - 1 if offsets is not None else s.shape[0]
        y = _labels(labels, n, k)
        a.kind = _lib.LOGITS if logits is not None else _lib.PROBS
        a.n, a.k, a.scores, a.labels = n, k, _ptr(s), _ptr(y)
        a.dtype = _lib.F32 if s.dtype == np.float32 else _lib.F64
        if offsets is not None:
            a.offsets = offsets.ctypes.data_as(ctypes.POINTER(ctypes.c_size_t))
        keep += [s, y, offsets]
    if weights is not None:
        w = _weights(weights, n)
        a.weights = _ptr(w)
        keep.append(w)
    if groups is not None:
        idx, names = _groups(groups, group_names, n)
        cnames = (ctypes.c_char_p * max(len(names), 1))(
            *[s.encode("utf-8") for s in names])
        a.groups, a.n_groups, a.group_names = _ptr(idx), len(names), cnames
        keep += [idx, cnames]
    return a, keep


def _cstr(v):
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        v = ",".join(v)
    return os.fsencode(v) if isinstance(v, os.PathLike) else str(v).encode()


def read(path, format="auto", conf=None, correct=None, pred=None,
         label=None, logits=None, probs=None, group=None, weight=None,
         labels=None, skip_bad_rows=False, max_line=0, group_name=None,
         seq_conf="geomean", choices=None, norm="none", max_gzip_ratio=0):
    """Reads a file (or "-" for standard input) into a calib.Data, with
    the options of the CLI's input options, named as they are there.

    ``format``: "auto" (from the extension, after ".gz"), "npy", "csv",
    "tsv", "lmeval", "openai".  CSV/TSV columns: ``conf`` and ``correct``
    (top-label), ``pred`` and ``label``, ``logits`` or ``probs`` (a comma
    list, a list of names, or one glob such as "logit_*") with ``label``;
    ``group``, ``weight``.  For .npy: ``labels`` names the (N,) labels
    file, ``probs=True`` says the (N, K) numbers are probabilities, and
    ``correct`` names the (N,) 0/1 file of a (N,) confidences file.
    ``skip_bad_rows`` skips and counts bad rows instead of failing;
    ``max_line`` (bytes, 0 = 64 MiB); ``max_gzip_ratio`` (0 = 200,
    ``math.inf`` = no limit: docs/bad-input.md); ``group_name`` gives every row this
    group.  JSONL: ``seq_conf`` ("geomean", "product", "mean", "min",
    "answer"), ``choices`` ("A,B,C,D"), ``norm`` ("none", "chars",
    "bytes"), and ``correct`` as a dotted path.  Native float32/float64
    .npy files are memory-mapped, not copied.

    Raises CalibError: code 3 (EOPEN) when the file cannot be opened, 2
    (EDATA, with file, line or row, column) for bad content, 1 (EINVAL)
    for options that do not fit the file.
    """
    o = _lib.ReadOptions()
    lib.calib_read_options_init(ctypes.byref(o))
    if format not in FORMATS:
        fail(_lib.EINVAL, "unknown format %r (one of %s)"
             % (format, ", ".join(FORMATS)))
    if norm not in NORMS:
        fail(_lib.EINVAL, "unknown norm %r (none, chars, bytes)" % (norm,))
    o.format, o.norm = FORMATS[format], NORMS[norm]
    sc = ctypes.c_int()
    if lib.calib_seq_conf_parse(str(seq_conf).encode(), ctypes.byref(sc)):
        fail(_lib.EINVAL, "unknown seq_conf %r" % (seq_conf,))
    o.seq_conf = sc.value
    p = os.fspath(path)
    is_npy = (format == "npy" or (format == "auto" and
              (p.endswith(".npy") or p.endswith(".npy.gz"))))
    keep = []

    def s(v):
        b = _cstr(v)
        keep.append(b)
        return b
    o.conf, o.pred, o.label = s(conf), s(pred), s(label)
    o.logits, o.group, o.weight = s(logits), s(group), s(weight)
    if probs is True:
        o.npy_probs = 1
    elif probs:
        o.probs = s(probs)
    if is_npy:
        o.correct_path = s(correct)
    else:
        o.correct = s(correct)
    o.labels_path = s(labels)
    o.skip_bad_rows = int(bool(skip_bad_rows))
    o.max_line = int(max_line)
    o.max_gzip_ratio = float(max_gzip_ratio)
    o.group_name = s(group_name)
    o.choices = s(choices)
    out = ctypes.c_void_p()
    err = _lib.Error()
    check(lib.calib_read(os.fsencode(p), ctypes.byref(o), ctypes.byref(out),
                         ctypes.byref(err)), err)
    return Data(out.value)


def as_data(source=None, **arrays):
    """(Data, owned) from a Data, a dict of data() keywords, a path, or
    the array keywords themselves; owned says the caller should close it."""
    arrays = {k: v for k, v in arrays.items() if v is not None}
    if isinstance(source, Data):
        if arrays:
            fail(_lib.EINVAL, "give a calib.Data or arrays, not both")
        return source, False
    if isinstance(source, dict):
        if arrays:
            fail(_lib.EINVAL, "give a dict of arrays or arrays, not both")
        return data(**source), True
    if isinstance(source, (str, os.PathLike)):
        return read(source, **arrays), True
    if source is not None:
        fail(_lib.EINVAL, "a source is a calib.Data, a dict of arrays or a "
             "path, not %s" % type(source).__name__)
    return data(**arrays), True
