"""_lib.py — finding libcalib.so and declaring its C interface to ctypes.

The structures below mirror include/calib.h field for field (C enums are
ints); when the header changes, this file changes with it.  Nothing here is
public: the package's functions in calib/__init__.py are the interface.
"""
import ctypes
import ctypes.util
import os

_HERE = os.path.dirname(os.path.abspath(__file__))

c_size = ctypes.c_size_t
c_int = ctypes.c_int
c_double = ctypes.c_double
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
POINTER = ctypes.POINTER

# calib_status
OK, EINVAL, EDATA, EOPEN, ECREATE, EIO, ENOMEM, ECONVERGE, EINTERNAL = range(9)
# calib_kind, calib_dtype
TOPLABEL, LOGITS, PROBS = 1, 2, 3
F64, F32 = 0, 1


class Error(ctypes.Structure):
    _fields_ = [("code", c_int), ("file", ctypes.c_char * 512),
                ("line", c_size), ("row", c_size), ("column", c_size),
                ("message", ctypes.c_char * 512)]


class Arrays(ctypes.Structure):
    _fields_ = [("kind", c_int), ("n", c_size), ("k", c_size),
                ("offsets", POINTER(c_size)), ("dtype", c_int),
                ("scores", c_void_p), ("labels", c_void_p),
                ("conf", c_void_p), ("correct", c_void_p),
                ("weights", c_void_p), ("groups", c_void_p),
                ("n_groups", c_size), ("group_names", POINTER(c_char_p))]


class ReadStats(ctypes.Structure):
    _fields_ = [(name, c_size) for name in (
        "rows_read", "rows_used", "rows_rejected", "values_clamped",
        "rows_sum_off", "rows_disagree", "rows_duplicate", "values_unknown")]


class Exactness(ctypes.Structure):
    """calib_exactness: what a value table on a grid leaves exact."""
    _fields_ = [("grid", c_double), ("ties_made", c_int),
                ("bins_moved", c_int), ("edges_moved", c_int),
                ("ece_bound", c_double)]


class ReadOptions(ctypes.Structure):
    _fields_ = [("format", c_int),
                ("conf", c_char_p), ("correct", c_char_p), ("pred", c_char_p),
                ("label", c_char_p), ("logits", c_char_p),
                ("probs", c_char_p), ("group", c_char_p),
                ("weight", c_char_p), ("npy_probs", c_int),
                ("labels_path", c_char_p), ("correct_path", c_char_p),
                ("skip_bad_rows", c_int), ("max_line", c_size),
                ("chunk_rows", c_size), ("group_name", c_char_p),
                ("seq_conf", c_int), ("choices", c_char_p), ("norm", c_int),
                ("max_gzip_ratio", ctypes.c_double)]


class EvalOptions(ctypes.Structure):
    _fields_ = [("bins", c_int), ("binning", c_int), ("rule", c_int),
                ("threads", c_int), ("extra", ctypes.c_uint),
                ("bootstrap", c_int), ("ci_level", c_double),
                ("seed", ctypes.c_uint64), ("scores", c_int)]


M_COUNT = 19  # calib_metric_id's CALIB_M_COUNT (calib_paired's layout)


class PairedMetric(ctypes.Structure):
    _fields_ = [("a", c_double), ("b", c_double), ("diff", c_double),
                ("ci", c_double * 2), ("p_le_0", c_double),
                ("replicates", c_size)]


class Paired(ctypes.Structure):
    _fields_ = [("n", c_size), ("ci_level", c_double), ("resamples", c_int),
                ("seed", ctypes.c_uint64), ("m", PairedMetric * M_COUNT)]


class FitOptions(ctypes.Structure):
    _fields_ = [("method", c_int), ("objective", c_int),
                ("eval", EvalOptions), ("t_min", c_double),
                ("t_max", c_double), ("hist_bins", c_int),
                ("hist_binning", c_int)]


class PlotOptions(ctypes.Structure):
    _fields_ = [("width", c_int), ("height", c_int), ("title", c_char_p),
                ("counts", c_int), ("headline", c_int), ("ascii", c_int)]


def _candidates():
    env = os.environ.get("CALIB_LIBRARY")
    if env:
        yield env
        return
    # the source tree: python/calib/ -> ../../build/libcalib.so
    yield os.path.join(_HERE, os.pardir, os.pardir, "build", "libcalib.so")
    # where `make install-python` copies it: next to this file
    yield os.path.join(_HERE, "libcalib.so")
    found = ctypes.util.find_library("calib")
    if found:
        yield found


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            return ctypes.CDLL(os.path.normpath(path) if os.sep in path
                               else path)
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError("calib: cannot find libcalib.so; set CALIB_LIBRARY "
                      "or build it with `make` (tried: %s)" % ", ".join(tried))


lib = _load()
path = getattr(lib, "_name", "")

# (name, restype, argtypes); P is an opaque handle.
P = c_void_p
PP = POINTER(c_void_p)
ERR = POINTER(Error)
_PROTOTYPES = [
    ("calib_version", c_char_p, []),
    ("calib_strerror", c_char_p, [c_int]),
    ("calib_error_format", c_char_p, [ERR, ctypes.c_char_p, c_size]),
    ("calib_dataset_wrap", c_int, [POINTER(Arrays), PP, ERR]),
    ("calib_dataset_free", None, [P]),
    ("calib_dataset_kind", c_int, [P]),
    ("calib_dataset_rows", c_size, [P]),
    ("calib_dataset_classes", c_size, [P]),
    ("calib_dataset_group_count", c_size, [P]),
    ("calib_dataset_group_name", c_char_p, [P, c_size]),
    ("calib_dataset_stats", None, [P, POINTER(ReadStats)]),
    ("calib_dataset_export_len", c_size, [P]),
    ("calib_dataset_export", c_int, [P, c_void_p, c_size, ERR]),
    ("calib_read_options_init", None, [POINTER(ReadOptions)]),
    ("calib_read", c_int, [c_char_p, POINTER(ReadOptions), PP, ERR]),
    ("calib_seq_conf_parse", c_int, [c_char_p, POINTER(c_int)]),
    ("calib_bin_rule_parse", c_int, [c_char_p, POINTER(c_int)]),
    ("calib_bin_rule_name", c_char_p, [c_int]),
    ("calib_eval_options_init", None, [POINTER(EvalOptions)]),
    ("calib_evaluate", c_int, [P, POINTER(EvalOptions), PP, ERR]),
    ("calib_evaluate_arrays", c_int, [POINTER(Arrays), POINTER(EvalOptions),
                                      PP, POINTER(ReadStats), ERR]),
    ("calib_metrics_free", None, [P]),
    ("calib_metrics_to_json", c_int, [P, POINTER(ReadStats),
                                      POINTER(c_void_p), ERR]),
    ("calib_accum_new", c_int, [POINTER(EvalOptions), PP, ERR]),
    ("calib_accum_add", c_int, [P, P, ERR]),
    ("calib_accum_merge", c_int, [P, P, ERR]),
    ("calib_accum_result", c_int, [P, PP, ERR]),
    ("calib_accum_free", None, [P]),
    ("calib_objective_parse", c_int, [c_char_p, POINTER(c_int)]),
    ("calib_objective_name", c_char_p, [c_int]),
    ("calib_fit_options_init", None, [POINTER(FitOptions)]),
    ("calib_fit", c_int, [P, POINTER(FitOptions), PP, ERR]),
    ("calib_calibrator_free", None, [P]),
    ("calib_calibrator_method", c_int, [P]),
    ("calib_calibrator_objective", c_int, [P]),
    ("calib_calibrator_temperature", c_double, [P]),
    ("calib_calibrator_iterations", c_int, [P]),
    ("calib_calibrator_objective_value", c_double, [P]),
    ("calib_calibrator_binary", c_int, [P]),
    ("calib_calibrator_diagnostic_count", c_size, [P]),
    ("calib_calibrator_diagnostic", c_char_p, [P, c_size]),
    ("calib_apply", c_int, [P, P, PP, ERR]),
    ("calib_calibrator_to_json", c_int, [P, POINTER(c_void_p), ERR]),
    ("calib_calibrator_params", c_size, [P, POINTER(c_double), c_size]),
    ("calib_method_toplabel", c_int, [c_int]),
    ("calib_dataset_toplabel", c_int, [P, PP, ERR]),
    ("calib_cross_fit", c_int, [P, POINTER(FitOptions), c_int,
                                ctypes.c_uint64, PP, ERR]),
    ("calib_calibrator_from_json", c_int, [c_char_p, c_size, PP, ERR]),
    ("calib_plot_options_init", None, [POINTER(PlotOptions)]),
    ("calib_render_diagram", c_int, [POINTER(c_void_p), POINTER(c_char_p),
                                     c_size, c_int, POINTER(PlotOptions),
                                     POINTER(c_void_p), POINTER(c_size),
                                     ERR]),
]
# Declared in calib.h but possibly missing from an older library: looked
# up when called (has()).
_OPTIONAL = [
    ("calib_accum_to_json", c_int, [P, POINTER(ReadStats),
                                    POINTER(c_void_p), ERR]),
    ("calib_accum_from_json", c_int, [c_char_p, c_size, PP,
                                      POINTER(ReadStats), ERR]),
    ("calib_paired_bootstrap", c_int, [P, P, POINTER(EvalOptions),
                                       POINTER(POINTER(Paired)), ERR]),
    ("calib_paired_free", None, [POINTER(Paired)]),
    ("calib_metric_name", c_char_p, [c_int]),
    ("calib_accum_keep_values", c_int, [P, c_size, ERR]),
    ("calib_accum_has_values", c_int, [P]),
    ("calib_accum_result_mass", c_int, [P, c_int, PP, ERR]),
    ("calib_accum_exactness", c_int, [P, c_int, c_size,
                                      POINTER(Exactness), ERR]),
]

for _name, _res, _args in _PROTOTYPES:
    _f = getattr(lib, _name)
    _f.restype, _f.argtypes = _res, _args
for _name, _res, _args in _OPTIONAL:
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        continue
    _f.restype, _f.argtypes = _res, _args

_libc = ctypes.CDLL(None)
_libc.free.argtypes = [c_void_p]
_libc.free.restype = None


def has(name):
    """True when the loaded library exports the C function `name`."""
    try:
        getattr(lib, name)
        return True
    except AttributeError:
        return False


def take_bytes(ptr, size=None):
    """Copies a malloc'd buffer from the library into bytes, then frees it
    (with size None it is a NUL-terminated string)."""
    if not ptr:
        return b""
    try:
        if size is None:
            return ctypes.string_at(ptr)
        return ctypes.string_at(ptr, size)
    finally:
        _libc.free(ptr)
