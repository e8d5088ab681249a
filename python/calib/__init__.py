"""calib — how far a model's confidence is from its competence, and the
repair: a ctypes binding over libcalib (include/calib.h is the manual).

    import calib
    m = calib.evaluate(logits=z, labels=y)            # the CLI's JSON keys
    m["ece"], m["nll"], m["bins"][0]["accuracy"]
    cal = calib.fit(logits=z_val, labels=y_val)       # temperature scaling
    q = cal.apply(logits=z_test)                      # softmax(z / T)
    svg = calib.diagram([calib.data(logits=z, labels=y),
                         {"conf": p, "correct": c}], labels=["a", "b"])
    state = calib.partial(conf=p_shard, correct=c_shard)   # per shard
    calib.merge(states)                               # == one evaluate

Arrays are passed to the library without copying where their dtype and
layout allow (see calib.data).  Errors raise calib.CalibError with the
library's status code, file, line, row, column and message.  The library
is found through $CALIB_LIBRARY, else the source tree's build/libcalib.so,
else the copy next to this package (`make install-python`), else the
system's (ctypes.util.find_library("calib")); calib.library_path says which.
"""
from ._lib import path as library_path
from ._lib import OK, EINVAL, EDATA, EOPEN, ECREATE, EIO, ENOMEM, \
    ECONVERGE, EINTERNAL
from ._data import CalibError, Data, data, read
from ._api import Calibrator, diagram, evaluate, fit, merge, partial, \
    paired_bootstrap, version

__version__ = "0.1.0"

__all__ = ["CalibError", "Calibrator", "Data", "data", "diagram",
           "evaluate", "fit", "merge", "paired_bootstrap", "partial",
           "read", "version",
           "library_path", "OK", "EINVAL", "EDATA", "EOPEN", "ECREATE",
           "EIO", "ENOMEM", "ECONVERGE", "EINTERNAL"]
