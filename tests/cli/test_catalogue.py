#!/usr/bin/python3
"""The bad-input catalogue: one table, one case a row, each with its input
(built at test time in a temporary directory, by catalogue_inputs.py),
the command, the exit code and the message it must print (file:line:col
and the words), or for a success the rows read/used/rejected.  What each
class of input gets, and why, is docs/bad-input.md; this file is its
test.

Every case also checks what holds for every run: a failure prints one
line "calib: ..." last on stderr and nothing on stdout, and leaves no
output file (nor a temporary one) behind; a success writes its output,
in which rows_read = rows_used + rows_rejected wherever they appear.

Loaded by tests/cli/run.py, or alone:
    CALIB=build/calib /usr/bin/python3 tests/cli/test_catalogue.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
from scipy.special import log_softmax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from catalogue_inputs import (CONF, DEEP, OK01, ROWS_70M, Y, Z, DENSE_BLOCK,  # noqa: E402
                              DENSE_BLOCKS, arr, bomb_csv, bomb_jsonl,
                              bomb_npy, cal, csv, dense_csv, edit, gz,
                              jsonl, line, lm, long_group, npy, oa,
                              wide_logits)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALIB = os.path.abspath(os.environ.get("CALIB", os.path.join(ROOT, "build", "calib")))
OUT = "out.json"

CASES = []


def case(name, args, code, *msgs, files=None, stdin=None, counts=None,
         check=None, out=True, skip=None, chmod=None):
    """One row of the table.  `args` run in the case's directory, where
    `files` are written first (name: bytes or a function giving them; a
    name ending in '/' is a directory); with `out`, eval/fit/merge get
    -o OUT (eval and merge with --json).  A success checks `counts`
    (rows read, used, rejected) and check(json, stderr)."""
    CASES.append(dict(name=name, args=args, code=code, msgs=msgs,
                      files=files or {}, stdin=stdin, counts=counts,
                      check=check, out=out, skip=skip, chmod=chmod))


TOP = csv("confidence,correct", "0.9,1", "0.6,0", "0.7,1")
LOG = csv("logit_0,logit_1,label", "2,0,0", "0,1,1", "0.5,1.5,1")


def top(*rows):
    return csv("confidence,correct", *rows)


def logits(*rows):
    return csv("logit_0,logit_1,label", *rows)


def probs(*rows):
    return csv("prob_0,prob_1,label", *rows)


def grouped(*rows):
    return csv("confidence,correct,g", *rows)


def ev(name, data, code, *msgs, **kw):
    """`calib eval a.csv` of `data`: the commonest row."""
    case(name, ["eval", "a.csv"], code, *msgs, files={"a.csv": data}, **kw)


def no_rows(name, data, cmd="eval"):
    case(name, [cmd, "a.csv"], 65, "a.csv: no data rows", files={"a.csv": data})


# -- CSV structure ----------------------------------------------------------
no_rows("empty_file", b"")
no_rows("header_only", b"confidence,correct\n")
no_rows("header_only_crlf", b"confidence,correct\r\n")
no_rows("blank_lines_only", b"\n\n\r\n")
no_rows("header_only_fit", b"logit_0,logit_1,label\n", "fit")
ev("bom", b"\xef\xbb\xbf" + TOP, 0, counts=(3, 3, 0))
ev("crlf", csv("confidence,correct", "0.5,1", "0.7,0", nl="\r\n"), 0, counts=(2, 2, 0))
ev("crlf_and_lf_mixed", b"confidence,correct\r\n0.5,1\n0.7,0\r\n", 0, counts=(2, 2, 0))
ev("no_final_newline", b"confidence,correct\n0.5,1\n0.7,0", 0, counts=(2, 2, 0))
ev("blank_lines_between_rows", b"\nconfidence,correct\n\n0.5,1\n\n0.7,0\n\n", 0, counts=(2, 2, 0))
case("quoted_separator", ["eval", "a.csv", "--group", "g"], 0,
     files={"a.csv": grouped('0.5,1,"law, tax"', "0.7,0,math")}, counts=(2, 2, 0),
     check=lambda js, err: sorted(js["groups"]) == ["law, tax", "math"])
case("quoted_newline", ["eval", "a.csv", "--group", "g"], 0,
     files={"a.csv": grouped('0.5,1,"two\nlines"', "0.7,0,x")}, counts=(2, 2, 0),
     check=lambda js, err: "two\nlines" in js["groups"])
case("line_after_quoted_newline", ["eval", "a.csv", "--group", "g"], 65, "a.csv:4:1: field 'confidence': NaN",
     files={"a.csv": grouped('0.5,1,"two\nlines"', "nan,0,x")})
case("quote_inside_unquoted", ["eval", "a.csv", "--group", "g"], 65, "a.csv:2:3: quote inside an unquoted field",
     files={"a.csv": grouped('0.5,1,a"b"')})
case("doubled_quote", ["eval", "a.csv", "--group", "g"], 0, files={"a.csv": grouped('0.5,1,"say ""hi"""')},
     counts=(1, 1, 0), check=lambda js, err: list(js["groups"]) == ['say "hi"'])
ev("quoted_number", top('"0.5","1"'), 0, counts=(1, 1, 0))
case("unclosed_quote", ["eval", "a.csv", "--group", "g"], 65, "a.csv:2: quoted field not closed",
     files={"a.csv": grouped('0.5,1,"open', "0.7,0,x")})
case("text_after_quote", ["eval", "a.csv", "--group", "g"], 65, "a.csv:2:3: text after a closing quote",
     files={"a.csv": grouped('0.5,1,"a"b')})
ev("too_many_fields", top("0.5,1", "0.7,0,9"), 65, "a.csv:3:3: 3 fields, expected 2")
ev("too_few_fields", top("0.5", "0.7,0"), 65, "a.csv:2:2: 1 field, expected 2")
case("wrong_counts_skipped", ["eval", "a.csv", "--skip-bad-rows"], 0,
     files={"a.csv": top("0.5,1", "0.5", "0.7,0,9", "0.2,0")}, counts=(4, 2, 2),
     check=lambda js, err: "2 bad rows skipped" in err)
ev("trailing_separators", csv("confidence,correct,", "0.5,1,"), 0, counts=(1, 1, 0))
ev("duplicate_column", csv("confidence,confidence,correct", "0.5,0.9,1"), 65,
   "a.csv:1:2: column 'confidence' appears twice")
case("missing_named_column", ["eval", "a.csv", "--conf", "nosuch"], 64, "a.csv:1: no such column 'nosuch'",
     files={"a.csv": TOP})
case("missing_label_column", ["eval", "a.csv", "--logits", "logit_*"], 64, "a.csv:1: cannot tell which columns",
     files={"a.csv": csv("logit_0,logit_1", "1,2")})
ev("no_usable_columns", csv("foo,bar", "1,2"), 64, "cannot tell which columns hold the predictions",
   "foo, bar")
case("tsv", ["eval", "a.tsv"], 0, files={"a.tsv": TOP.replace(b",", b"\t")}, counts=(3, 3, 0))
case("tsv_decimal_comma", ["eval", "a.tsv"], 65, "a.tsv:2:1: field 'confidence': '0,5' is not a number",
     files={"a.tsv": csv("confidence\tcorrect", "0,5\t1")})
case("line_10mb", ["eval", "a.csv", "--logits", "l[0-9]*", "--label", "label"], 0, files={"a.csv": wide_logits}, counts=(1, 1, 0),
     check=lambda js, err: js["classes"] == 1000000)
case("line_over_max_line", ["eval", "a.csv", "--group", "g", "--max-line", "1M"], 65,
     "a.csv:2: line longer than 1048576 bytes", files={"a.csv": long_group})
case("max_line_raised", ["eval", "a.csv", "--group", "g", "--max-line", "3M"], 0,
     files={"a.csv": long_group}, counts=(1, 1, 0))
ev("nul_byte", top("0.5,1\0"), 65, "a.csv:2:2: field 'correct': '1\\x00' is not 0/1")
case("not_csv_but_npy", ["eval", "-", "--labels", "y.npy"], 64, "<stdin>:1: this is not CSV but .npy",
     "--format npy", files={"y.npy": Y}, stdin=arr(Z))
case("not_csv_but_json", ["eval", "-"], 64, "this is not CSV but JSON", stdin=jsonl(lm(0)))

# -- UTF-8 in text fields -----------------------------------------------------
for name, bad in (("utf8_invalid", b"\xff\xfe"), ("utf8_overlong", b"\xc0\xaf"),
                  ("utf8_surrogate", b"\xed\xa0\x80"), ("utf8_truncated", b"\xe2\x82")):
    case(name, ["eval", "a.csv", "--group", "g"], 65, "a.csv:2:3: field 'g': invalid UTF-8",
         files={"a.csv": b"confidence,correct,g\n0.5,1," + bad + b"\n"})
case("utf8_invalid_skipped", ["eval", "a.csv", "--group", "g", "--skip-bad-rows"], 0,
     files={"a.csv": b"confidence,correct,g\n0.5,1,\xff\n0.6,0,b\n"}, counts=(2, 1, 1))
ev("utf8_in_unused_column", b"confidence,correct,note\n0.5,1,\xff\n", 0, counts=(1, 1, 0))
ev("utf8_in_number", b"confidence,correct\n\xff\xfe,1\n", 65,
   "a.csv:2:1: field 'confidence': '\\xff\\xfe' is not a number")
case("utf8_valid_group", ["eval", "a.csv", "--group", "g"], 0, files={"a.csv": grouped("0.5,1,théorie", "0.6,0,数学")},
     counts=(2, 2, 0), check=lambda js, err: sorted(js["groups"]) == ["théorie", "数学"])

# -- numbers -----------------------------------------------------------------
ev("nan", top("0.5,1", "nan,0"), 65, "a.csv:3:1: field 'confidence': NaN")
ev("inf", top("inf,0"), 65, "a.csv:2:1: field 'confidence': an infinity")
ev("minus_inf_logit", logits("0,-inf,0"), 65, "a.csv:2:2: field 'logit_1': negative infinity")
ev("overflow_to_inf", logits("1e400,0,0"), 65, "a.csv:2:1: field 'logit_0': an infinity")
case("nan_skipped", ["eval", "a.csv", "--skip-bad-rows"], 0, files={"a.csv": top("0.5,1", "nan,0", "0.7,0")},
     counts=(3, 2, 1))
ev("subnormal_confidence", top("1e-320,0", "0.5,1"), 0, counts=(2, 2, 0))
ev("subnormal_logit", logits("1e-320,0,0", "4.9e-324,-4.9e-324,1"), 0, counts=(2, 2, 0))
ev("huge_logits", logits("1e308,-1e308,0"), 0, counts=(1, 1, 0),
    check=lambda js, err: js["nll"] == 0 and js["accuracy"] == 1)
ev("hex_float", top("0x1p-1,1"), 65, "a.csv:2:1: field 'confidence': '0x1p-1' is not a number")
ev("empty_field", top(",1"), 65, "a.csv:2:1: field 'confidence': '' is not a number")
ev("number_forms", top(".5,1", "+0.5,0", "5e-1,1", " 0.5 , 0 "), 0, counts=(4, 4, 0),
    check=lambda js, err: js["mean_confidence"] == 0.5)
ev("percent_confidence", top("85%,1", "40.5 %,0"), 0, counts=(2, 2, 0),
    check=lambda js, err: js["mean_confidence"] == (0.85 + 0.405) / 2)
ev("percent_over_100", top("150%,0"), 65, "a.csv:2:1: field 'confidence': confidence 1.5 outside [0,1]")
ev("percent_in_logit", logits("50%,1,0"), 65, "a.csv:2:1: field 'logit_0': '50%' is not a number")

# -- ranges: [0,1], the 1e-3 clamp, sums, labels, flags, weights --------------
ev("clamped_above_1", top("1.0009,1", "0.5,0"), 0, counts=(2, 2, 0),
    check=lambda js, err: js["values_clamped"] == 1 and "clamped" in err)
ev("clamped_below_0", top("-0.0005,0"), 0, counts=(1, 1, 0),
    check=lambda js, err: js["values_clamped"] == 1 and js["mean_confidence"] == 0)
ev("above_1_beyond_clamp", top("1.0011,0"), 65, "a.csv:2:1: field 'confidence': confidence 1.0011",
   "outside [0,1]")
ev("below_0", top("-0.5,0"), 65, "a.csv:2:1:", "outside [0,1]")
ev("prob_clamped", probs("1.0005,0,0"), 0, counts=(1, 1, 0),
    check=lambda js, err: js["values_clamped"] == 1 and js["rows_sum_off"] == 1)
ev("prob_negative", probs("-0.5,1.5,0"), 65, "a.csv:2:1: field 'prob_0':", "outside [0,1]")
ev("prob_sum_off", probs("0.5,0.6,1"), 65, "a.csv:2:1: field 'prob_0': row sums to 1.1")
ev("prob_sum_slightly_off", probs("0.5,0.5004,1"), 0, counts=(1, 1, 0),
    check=lambda js, err: js["rows_sum_off"] == 1 and "not renormalised" in err)
ev("correct_not_01", top("0.5,2"), 65, "a.csv:2:2: field 'correct': '2' is not 0/1 or true/false")
ev("correct_spellings", top("0.5,true", "0.5,False", "0.5,1.0", "0.5,0.0"), 0, counts=(4, 4, 0),
    check=lambda js, err: js["accuracy"] == 0.5)
ev("label_too_big", logits("0,1,1", "0,1,2"), 65, "a.csv:3:3: field 'label': label 2 outside [0,2)")
ev("label_negative", logits("0,1,-1"), 65, "a.csv:2:3: field 'label': label -1 outside [0,2)")
ev("label_fraction", logits("0,1,1.5"), 65, "a.csv:2:3: field 'label': '1.5' is not an integer label")
ev("label_huge", logits("0,1,99999999999999999999"), 65,
   "a.csv:2:3: field 'label': '99999999999999999999' is not an integer")
case("label_skipped", ["eval", "a.csv", "--skip-bad-rows"], 0, files={"a.csv": logits("0,1,1", "0,1,7", "1,0,0")},
     counts=(3, 2, 1))
case("pred_label_mismatch_ok", ["eval", "a.csv", "--conf", "confidence", "--pred", "pred", "--label", "label"], 0,
     files={"a.csv": csv("confidence,pred,label", "0.8,3,3", "0.6,1,2")}, counts=(2, 2, 0),
     check=lambda js, err: js["accuracy"] == 0.5)
case("weight_negative", ["eval", "a.csv", "--weight", "w"], 65, "a.csv:2:3: field 'w': '-1' is not a finite weight >= 0",
     files={"a.csv": csv("confidence,correct,w", "0.5,1,-1")})
case("weight_nan", ["eval", "a.csv", "--weight", "w"], 65, "a.csv:2:3: field 'w': 'nan' is not a finite weight",
     files={"a.csv": csv("confidence,correct,w", "0.5,1,nan")})
case("weights_all_zero", ["eval", "a.csv", "--weight", "w"], 0, files={"a.csv": csv("confidence,correct,w", "0.5,1,0", "0.7,0,0")},
     counts=(2, 2, 0), check=lambda js, err: js["ece"] is None and js["accuracy"] is None and js["weight"] == 0)
# hollance leaves p = 0 out of the ECE's n: when the other rows weigh
# nothing, ECE/MCE/RMSCE are 0/0 (null), while accuracy (over every row) is
# defined: 1 row of weight 1, correct 0 -> 0.  gpleiss counts p = 0 in n: ECE
# is then 0 (no bin has weight), not null.
case("hollance_binned_weight_zero", ["eval", "a.csv", "--weight", "w", "--bin-rule", "hollance"], 0,
     files={"a.csv": csv("confidence,correct,w", "0.25,1,0", "0,0,1")}, counts=(2, 2, 0),
     check=lambda js, err: js["ece"] is None and js["mce"] is None and js["rmsce"] is None
     and js["accuracy"] == 0 and js["ece_n"] == 1)
case("gpleiss_binned_weight_zero", ["eval", "a.csv", "--weight", "w", "--bin-rule", "gpleiss"], 0,
     files={"a.csv": csv("confidence,correct,w", "0.25,1,0", "0,0,1")}, counts=(2, 2, 0),
     check=lambda js, err: js["ece"] == 0 and js["accuracy"] == 0 and js["ece_n"] == 2)
case("weights_all_zero_fit", ["fit", "a.csv", "--weight", "w"], 65, "every validation row has weight 0",
     files={"a.csv": csv("confidence,correct,w", "0.5,1,0", "0.7,0,0")})

# -- degenerate sets: K = 1, N = 0, N = 1, all-equal logits -------------------
ev("k1_eval", csv("logit_0,label", "0.3,0", "-2,0"), 0, counts=(2, 2, 0),
    check=lambda js, err: js["classes"] == 1 and js["accuracy"] == 1 and js["ece"] == 0 and js["nll"] == 0)
ev("k1_label_1", csv("logit_0,label", "0.3,1"), 65, "a.csv:2:2: field 'label': label 1 outside [0,1)")
case("k1_fit", ["fit", "a.csv"], 0, files={"a.csv": csv("logit_0,label", "0.3,0", "-2,0")}, counts=(2, 2, 0),
     check=lambda js, err: "a single class" in err and js["temperature"] == 1)
case("n0_partial", ["eval", "a.csv", "--partial"], 0, files={"a.csv": b"confidence,correct\n"}, counts=(0, 0, 0))
case("n0_after_skipping", ["eval", "a.csv", "--skip-bad-rows"], 65, "a.csv: no data rows",
     files={"a.csv": top("nan,1", "2,0")})
ev("n1_eval", top("0.8,1"), 0, counts=(1, 1, 0), check=lambda js, err: abs(js["ece"] - 0.2) < 1e-15)
case("n1_fit", ["fit", "a.csv"], 0, files={"a.csv": logits("2,0,0")}, counts=(1, 1, 0),
     check=lambda js, err: "single validation row" in err)
ev("equal_logits_eval", csv("logit_0,logit_1,logit_2,label", "1,1,1,0", "1,1,1,2"), 0, counts=(2, 2, 0),
    check=lambda js, err: js["accuracy"] == 0.5 and abs(js["mean_confidence"] - 1 / 3) < 1e-15)
case("equal_logits_fit", ["fit", "a.csv"], 0, files={"a.csv": logits("1,1,0", "-3,-3,1")}, counts=(2, 2, 0),
     check=lambda js, err: js["temperature"] == 1 and "does not depend on T" in err)
case("all_correct_fit", ["fit", "a.csv"], 0, files={"a.csv": logits("5,0,0", "0,4,1", "3,1,0")}, counts=(3, 3, 0),
     check=lambda js, err: js["temperature"] == 1e-3 and js["diagnostics"] and "calib: warning: " in err)

# -- mixed and conflicting inputs ---------------------------------------------
case("mixed_columns_options", ["eval", "a.csv", "--conf", "logit_0", "--correct", "label", "--logits", "logit_*"], 64,
     "a.csv: give top-label columns (conf, correct, pred) or score columns", files={"a.csv": LOG})
case("logits_and_probs", ["eval", "a.csv", "--logits", "logit_*", "--probs", "logit_*"], 64,
     "give logits or probs columns, not both", files={"a.csv": LOG})
case("mixed_files", ["eval", "top.csv", "log.csv"], 64, "cannot mix top-label and distribution rows",
     files={"top.csv": TOP, "log.csv": LOG})
case("mixed_val_test", ["eval", "--val", "top.csv", "--test", "log.csv"], 64,
     "log.csv: a calibrator fitted on top-label rows cannot scale distribution rows", files={"top.csv": TOP, "log.csv": LOG})

# -- .npy --------------------------------------------------------------------
def npy_case(name, code, *msgs, main=None, side=Y, opt="--labels", extra=(), counts=None, check=None):
    case(name, ["eval", "z.npy", opt, "y.npy", *extra], code, *msgs,
         files={"z.npy": main if main is not None else arr(Z), "y.npy": side}, counts=counts, check=check)


ZB = Z.astype("<f8").tobytes()
NLL_Z = -log_softmax(Z, axis=1)[np.arange(4), [0, 1, 1, 0]].mean()   # scipy
SAME_AS_C = (lambda js, err: abs(js["nll"] - NLL_Z) < 1e-15 and js["accuracy"] == 1)
# float32/float16 rows may be computed in single precision: same data, NLL to 1e-6
SAME_AS_C_F32 = (lambda js, err: abs(js["nll"] - NLL_Z) < 1e-6 and js["accuracy"] == 1)
npy_case("npy_shape_too_big", 65, "z.npy: shape (5, 2) of 8-byte values needs 80 bytes of data, the file holds 64",
         "truncated?", main=npy("(5, 2)", ZB))
npy_case("npy_shape_too_small", 65, "z.npy: shape (3, 2)", "the header does not describe the data",
         main=npy("(3, 2)", ZB), side=arr(np.array([0, 1, 1])))
npy_case("npy_size_overflow", 65, "z.npy: shape (4611686018427387904, 4) overflows",
         main=npy("(4611686018427387904, 4)", ZB))
npy_case("npy_dim_overflow", 65, "z.npy: shape dimension overflows", main=npy("(99999999999999999999999, 2)", ZB))
npy_case("npy_fortran", 0, main=arr(np.asfortranarray(Z)), counts=(4, 4, 0), check=SAME_AS_C)
npy_case("npy_big_endian", 0, main=arr(Z.astype(">f8")), counts=(4, 4, 0), check=SAME_AS_C)
npy_case("npy_big_endian_fortran_f4", 0, main=arr(np.asfortranarray(Z.astype(">f4"))), counts=(4, 4, 0),
         check=SAME_AS_C_F32)
npy_case("npy_float16", 0, main=arr(Z.astype(np.float16)), counts=(4, 4, 0), check=SAME_AS_C_F32)
npy_case("npy_object", 65, "z.npy: object arrays are refused (calib never unpickles)",
         main=arr(np.array([[1, None], ["a", 2.0]], dtype=object), allow_pickle=True))
npy_case("npy_unicode", 65, "z.npy: unsupported dtype '<U1'", main=arr(np.array([["a", "b"]] * 4)))
npy_case("npy_complex", 65, "z.npy: unsupported dtype '<c16'", main=arr(Z.astype(complex)))
npy_case("npy_structured", 65, "z.npy: structured dtypes are not supported",
         main=arr(np.zeros(4, dtype=[("a", "<f8"), ("b", "<f8")])))
npy_case("npy_3d", 65, "z.npy: arrays of more than 2 dimensions", main=arr(np.zeros((4, 2, 2))))
npy_case("npy_0d", 65, "z.npy: a 0-d array holds no rows", main=arr(np.float64(3)), opt="--correct")
npy_case("npy_no_classes", 65, "z.npy: shape (4, 0) has no classes", main=arr(np.zeros((4, 0))))
npy_case("npy_no_rows", 65, "z.npy: no data rows", main=arr(np.zeros((0, 2))), side=arr(np.zeros(0, int)))
npy_case("npy_labels_count", 65, "y.npy: 5 rows, but 'z.npy' has 4", side=arr(np.array([0, 1, 1, 0, 1])))
npy_case("npy_labels_2d", 65, "y.npy: expected shape (N,), found (4, 2)", side=arr(np.zeros((4, 2), int)))
npy_case("npy_label_fraction", 65, "y.npy: row 2, column 1: label 1.5 is not an integer",
         side=arr(np.array([0, 1.5, 1, 0])))
npy_case("npy_label_range", 65, "y.npy: row 3, column 1: label 2 outside [0,2)", side=arr(np.array([0, 1, 2, 0])))
npy_case("npy_label_range_skipped", 0, side=arr(np.array([0, 1, 2, 0])), extra=["--skip-bad-rows"],
         counts=(4, 3, 1))
npy_case("npy_nan", 65, "z.npy: row 3, column 2: NaN", main=arr(np.where(np.arange(8).reshape(4, 2) == 5, np.nan, Z)))
npy_case("npy_bad_magic", 65, "z.npy: not a .npy file (bad magic)", main=b"hello, not numpy at all")
npy_case("npy_version_9", 65, "z.npy: unsupported .npy version 9.0", main=b"\x93NUMPY\x09\x00" + arr(Z)[8:])
npy_case("npy_header_past_end", 65, "z.npy: the .npy header is longer than the file",
         main=b"\x93NUMPY\x01\x00\xff\xff{'descr'")
npy_case("npy_extra_key", 65, "z.npy: malformed .npy header: unexpected key 'extra'",
         main=npy("", ZB, header="{'descr': '<f8', 'fortran_order': False, 'shape': (4, 2), 'extra': 1, }"))
npy_case("npy_python_expression", 65, "z.npy: malformed .npy header",
         main=npy("", ZB, header="{'descr': '<f8', 'fortran_order': __import__('os'), 'shape': (4, 2), }"))
npy_case("npy_version_2", 0, main=npy("(4, 2)", ZB, ver=2), counts=(4, 4, 0), check=SAME_AS_C)
npy_case("npy_subnormal_confidence", 0, main=arr(np.array([1e-320, 0.5, 1.0, 0.0])), side=OK01, opt="--correct",
         counts=(4, 4, 0))
npy_case("npy_correct_not_01", 65, "y.npy: row 2, column 1: correct value 2 is not 0 or 1", main=CONF,
         side=arr(np.array([1, 2, 0, 1])), opt="--correct")
case("npy_without_labels", ["eval", "z.npy"], 64, "z.npy: an (N,K) .npy of scores needs a labels file (--labels)",
     files={"z.npy": arr(Z)})
case("npy_gz", ["eval", "z.npy.gz", "--labels", "y.npy"], 0, files={"z.npy.gz": gz(arr(Z)), "y.npy": Y},
     counts=(4, 4, 0), check=SAME_AS_C)
case("npy_stdin", ["eval", "-", "--format", "npy", "--labels", "y.npy"], 0, files={"y.npy": Y}, stdin=arr(Z),
     counts=(4, 4, 0), check=SAME_AS_C)

# -- gzip ----------------------------------------------------------------------
case("gzip_bomb_csv", ["eval", "a.csv.gz"], 65, "a.csv.gz: gzip data inflate more than 200 times",
     "--max-gzip-ratio", files={"a.csv.gz": bomb_csv})
case("gzip_bomb_csv_allowed", ["eval", "a.csv.gz", "--max-gzip-ratio", "0"], 0, files={"a.csv.gz": bomb_csv},
     counts=(ROWS_70M, ROWS_70M, 0))
case("gzip_bomb_npy", ["eval", "z.npy.gz", "--labels", "y.npy"], 65, "z.npy.gz: gzip data inflate more than 200",
     files={"z.npy.gz": bomb_npy, "y.npy": Y})
case("gzip_bomb_jsonl", ["eval", "a.jsonl.gz"], 65, "a.jsonl.gz: gzip data inflate more than 200",
     files={"a.jsonl.gz": bomb_jsonl})
case("gzip_bomb_line_limit", ["eval", "a.jsonl.gz", "--max-gzip-ratio", "0"], 65,
     "a.jsonl.gz:1: line longer than 67108864 bytes", files={"a.jsonl.gz": bomb_jsonl})
case("gzip_real_data_streams", ["eval", "a.csv.gz"], 0, files={"a.csv.gz": dense_csv},
     counts=(DENSE_BLOCK * DENSE_BLOCKS,) * 2 + (0,))
case("gzip_truncated", ["eval", "a.csv.gz"], 65, "a.csv.gz: truncated gzip data", files={"a.csv.gz": gz(TOP * 50)[:-30]})
case("gzip_corrupt", ["eval", "a.csv.gz"], 65, "a.csv.gz: corrupt gzip data",
     files={"a.csv.gz": gz(TOP)[:12] + b"\xff" * 20 + gz(TOP)[32:]})
case("gzip_members", ["eval", "a.csv.gz"], 0, files={"a.csv.gz": gz(TOP) + gz(b"0.2,0\n")}, counts=(4, 4, 0))
case("gzip_ratio_bad_value", ["eval", "a.csv", "--max-gzip-ratio", "0.5"], 64, "--max-gzip-ratio",
     files={"a.csv": TOP})

# -- JSON lines: lm-eval and OpenAI -------------------------------------------
OA = ["--correct", "grade.correct"]


def jl(name, objs, code, *msgs, extra=(), counts=None, check=None, fname="a.jsonl"):
    data = jsonl(*objs) if isinstance(objs, (list, tuple)) else objs
    case(name, ["eval", fname, *extra], code, *msgs, files={fname: data}, counts=counts, check=check)


jl("lmeval_ok", [lm(0), lm(1, gold=1)], 0, counts=(2, 2, 0), check=lambda js, err: js["accuracy"] == 0.5)
jl("lmeval_deep_used_member", [lm(0), edit(lm(1), b'"filtered_resps": [[', b'"filtered_resps": ' + DEEP
                                          + b', "x": [[')], 65, "a.jsonl:2:", "maximum parsing depth reached")
jl("lmeval_deep_unused_member", [lm(0), edit(lm(1), b'"doc": {"q": "question 1"}', b'"doc": ' + DEEP)], 0,
   counts=(2, 2, 0))
jl("openai_deep", [oa(), edit(oa(), b'"grade": {"correct": true}', b'"grade": ' + DEEP)], 65,
   "a.jsonl:2:", "maximum parsing depth reached", extra=OA)
jl("json_deep_line", [oa(), DEEP], 65, "a.jsonl:2:2049: malformed JSON: maximum parsing depth reached", extra=OA)
jl("lmeval_duplicate_key", [lm(0), line_dup := edit(lm(1), b'"filter": "none"', b'"target": 2, "filter": "none"')],
   65, "a.jsonl:2:", "duplicate object key near '\"target\"'")
jl("openai_duplicate_key", [oa(), edit(oa(), b'"grade": {"correct": true}',
                                       b'"grade": {"correct": true, "correct": false}')],
   65, "a.jsonl:2:", "duplicate object key", extra=OA)
jl("duplicate_key_skipped", [lm(0), line_dup, lm(2)], 0, extra=["--skip-bad-rows"], counts=(3, 2, 1))
jl("openai_utf8_used", [oa(), edit(oa(), b'"content": "ab"', b'"content": "a\xffb"')], 65,
   "a.jsonl:2:", "unable to decode byte 0xff", extra=OA)
jl("lmeval_utf8_unused", [lm(0), edit(lm(1), b'"question 1"', b'"q\xff\xfe"')], 0, counts=(2, 2, 0))
jl("lmeval_utf8_target_text", [lm(0), edit(lm(1), b'"target": 0', b'"target": "\xc3\x28"')], 65,
   "a.jsonl:2:", "unable to decode byte")
jl("truncated_line", [lm(0), line(lm(1))[:60]], 65, "a.jsonl:2:60: malformed JSON: premature end of input")
jl("truncated_line_skipped", [lm(0), line(lm(1))[:60], lm(2)], 0, extra=["--skip-bad-rows"], counts=(3, 2, 1))
jl("nan_literal", [lm(0), edit(lm(1), b'"filtered_resps": [["-1.0"', b'"filtered_resps": [[NaN')], 65,
   "a.jsonl:2:", "malformed JSON: invalid token near 'NaN'")
jl("nan_string", [lm(0), lm(1, ll=("nan", -1.0))], 65, "a.jsonl:2: filtered_resps: choice 0: NaN")
jl("bom_jsonl", b"\xef\xbb\xbf" + jsonl(lm(0), lm(1)), 0, counts=(2, 2, 0))
jl("crlf_jsonl", jsonl(lm(0), lm(1), nl=b"\r\n"), 0, counts=(2, 2, 0))
jl("empty_jsonl", b"", 65, "a.jsonl: no data rows")
jl("blank_jsonl", b"\n  \n\n", 65, "a.jsonl: no data rows")
jl("json_scalar_lines", b"1\n2\n", 65, "a.jsonl:1:1: malformed JSON")
jl("json_unknown_object", [{"a": 1}], 65, "a.jsonl: the first JSON line is neither an lm-eval sample")
jl("lmeval_target_range", [lm(0), lm(1, gold=5)], 65, "a.jsonl:2: target: neither an index below 3")
jl("lmeval_target_range_skipped", [lm(0), lm(1, gold=5)], 0, extra=["--skip-bad-rows"], counts=(2, 1, 1))
jl("lmeval_k1", [lm(0, ll=(-1.0,)), lm(1, ll=(-2.0,))], 0, counts=(2, 2, 0),
   check=lambda js, err: js["accuracy"] == 1 and js["ece"] == 0)
jl("lmeval_no_choices", [lm(0, ll=())], 65, "a.jsonl:1: filtered_resps: not a non-empty list")
jl("lmeval_array_truncated", json.dumps([lm(0), lm(1)], indent=2).encode()[:-3], 65, "a.jsonl:", "malformed JSON")
jl("openai_no_correct_path", [oa()], 64, "a.jsonl: OpenAI responses hold no correctness")
jl("openai_correct_null", [oa(), oa(correct=None)], 65, "a.jsonl:2: grade.correct: not true/false or 0/1", extra=OA)
jl("openai_logprob_positive", [oa(), oa(lps=(0.5, -0.1))], 65, "a.jsonl:2: choices[0].logprobs.content: token 0",
   extra=OA)
jl("openai_all_unknown", [oa(), oa(lps=(-9999.0, -9999.0))], 65, "a.jsonl:2:", "no token with a known logprob",
   extra=OA)
jl("openai_some_unknown", [oa(), oa(lps=(-9999.0, -0.5))], 0, extra=OA, counts=(2, 2, 0),
   check=lambda js, err: js["values_unknown"] == 1)
case("jsonl_stdin", ["eval", "-", "--format", "lm-eval"], 0, stdin=jsonl(lm(0), lm(1)), counts=(2, 2, 0))

# -- calibrator files ---------------------------------------------------------
def cal_case(name, text, code, *msgs, cmd="eval"):
    args = [cmd, "c.json", "a.csv", "-o", "out.npy"] if cmd == "apply" else ["eval", "a.csv", "--calibrator", "c.json"]
    case(name, args, code, *msgs, files={"a.csv": LOG, "c.json": text},
         counts=(3, 3, 0) if code == 0 and cmd == "eval" else None, out=cmd == "eval")


cal_case("cal_ok", cal(), 0)
cal_case("cal_t_zero", cal(b"0"), 65, "c.json: calibrator JSON: temperature 0 is not a positive finite number")
cal_case("cal_t_negative", cal(b"-1"), 65, "temperature -1 is not a positive finite number")
cal_case("cal_t_nan", cal(b"NaN"), 65, "c.json:1:", "invalid token near 'NaN'")
cal_case("cal_t_missing", b'{"method": "temperature"}', 65, "\"temperature\" is missing or not a number")
cal_case("cal_t_string", cal(b'"2"'), 65, "\"temperature\" is missing or not a number")
cal_case("cal_t_null", cal(b"null"), 65, "\"temperature\" is missing or not a number")
cal_case("cal_t_subnormal", cal(b"1e-320"), 65, "with a finite 1/T")
cal_case("cal_t_overflow", cal(b"1e400"), 65, "real number overflow")
cal_case("cal_duplicate_key", cal(b"2", b', "temperature": 3'), 65, "duplicate object key")
cal_case("cal_unknown_method", b'{"method": "bbq", "temperature": 2}', 65, "unknown method \"bbq\"")
cal_case("cal_not_object", b"[]", 65, "calibrator JSON: not a JSON object")
cal_case("cal_empty", b"", 65, "c.json:1: calibrator JSON:")
cal_case("cal_deep", DEEP, 65, "c.json:1:2049:", "maximum parsing depth reached")
cal_case("cal_binary_on_logits", cal(b"2", b', "form": "binary"'), 64, "a calibrator fitted on top-label rows")
cal_case("cal_apply_t_zero", cal(b"0"), 65, "temperature 0 is not a positive", cmd="apply")
case("cal_missing", ["eval", "a.csv", "--calibrator", "none.json"], 66, "none.json: cannot open: No such file",
     files={"a.csv": LOG})
case("cal_directory", ["eval", "a.csv", "--calibrator", "d"], 66, "d: cannot open: is a directory",
     files={"a.csv": LOG, "d/": None})

# -- options --------------------------------------------------------------------
def usage(name, extra, *msgs, cmd="eval"):
    case(name, [cmd, "a.csv", *extra], 64, *msgs, files={"a.csv": TOP})


usage("bins_zero", ["--bins", "0"], "--bins: expected an integer in 1..1000000, got '0'")
usage("bins_1e9", ["--bins", "1000000000"], "--bins: expected an integer in 1..1000000, got '1000000000'")
usage("bins_negative", ["--bins=-3"], "--bins: expected an integer")
usage("bins_text", ["--bins", "ten"], "--bins: expected an integer")
case("bins_no_value", ["eval", "a.csv", "--bins"], 64, "option '--bins' needs a value", files={"a.csv": TOP},
     out=False)
usage("unknown_option", ["--frobnicate"], "eval: unknown option '--frobnicate'")
usage("flag_with_value", ["--json=yes"], "option '--json' takes no value")
usage("threads_too_many", ["--threads", "5000"], "--threads: expected an integer in 0..4096")
usage("format_unknown", ["--format", "xml"], "--format: expected npy, csv")
usage("binning_unknown", ["--binning", "wide"], "--binning: expected width or mass")
usage("max_line_bad", ["--max-line", "1X"], "--max-line: expected a size")
usage("val_without_test", ["--val", "a.csv"], "--val and --test go together")
usage("option_of_other_command", ["--partial"], "fit: unknown option '--partial'", cmd="fit")
case("bins_1e6", ["eval", "a.csv", "--bins", "1000000"], 0, files={"a.csv": TOP}, counts=(3, 3, 0),
     check=lambda js, err: js["n_bins"] == 1000000)
case("unknown_extension", ["eval", "a.txt"], 64, "a.txt: cannot tell the format from the name", files={"a.txt": TOP})
case("unknown_command", ["frobnicate"], 64, "unknown command 'frobnicate'", out=False)

# -- files, directories, outputs ----------------------------------------------
case("missing_file", ["eval", "nope.csv"], 66, "nope.csv: cannot open: No such file or directory")
case("directory_without_inputs", ["eval", "d"], 66, "d: no .jsonl, .csv or .tsv files in the directory",
     files={"d/": None})
case("directory_of_inputs", ["eval", "d"], 0, files={"d/a.csv": TOP, "d/b.csv": top("0.2,0")}, counts=(4, 4, 0),
     check=lambda js, err: sorted(js["groups"]) == ["a", "b"])
case("not_a_directory", ["eval", "a.csv/b.csv"], 66, "a.csv/b.csv: cannot open: Not a directory", files={"a.csv": TOP})
ev("unreadable_file", TOP, 66, "a.csv: cannot open: Permission denied", chmod=("a.csv", 0),
   skip="root reads any file" if os.geteuid() == 0 else None)
case("dev_null_as_csv", ["eval", "/dev/null", "--format", "csv"], 65, "/dev/null: no data rows")
case("merge_directory", ["merge", "d"], 66, "d: cannot open: is a directory", files={"d/": None})
case("merge_not_a_state", ["merge", "a.csv"], 65, "a.csv:1:10: partial state: '[' or '{' expected",
     files={"a.csv": TOP})
case("output_dir_missing", ["eval", "a.csv", "--json", "-o", "no/such/out.json"], 73,
     "no/such/out.json: cannot create", files={"a.csv": TOP}, out=False)
case("output_is_directory", ["eval", "a.csv", "--json", "-o", "d"], 73, "d: cannot create: Is a directory",
     files={"a.csv": TOP, "d/": None}, out=False)
case("output_to_device", ["eval", "a.csv", "--json", "-o", "/dev/full"], 74, "/dev/full: write failed",
     files={"a.csv": TOP}, out=False, skip=None if os.path.exists("/dev/full") else "no /dev/full")

# -- standard input -------------------------------------------------------------
case("stdin_empty", ["eval", "-"], 65, "<stdin>: no data rows", stdin=b"")
case("stdin_csv", ["eval", "-"], 0, stdin=TOP, counts=(3, 3, 0))
case("stdin_gzip", ["eval", "-"], 0, stdin=gz(TOP), counts=(3, 3, 0))
case("stdin_truncated_gzip", ["eval", "-"], 65, "<stdin>: truncated gzip data", stdin=gz(TOP)[:-10])
case("stdin_bad_row", ["eval", "-"], 65, "<stdin>:3:1: field 'confidence': NaN", stdin=top("0.5,1", "nan,0"))
case("stdin_skip", ["eval", "-", "--skip-bad-rows"], 0, stdin=top("0.5,1", "nan,0"), counts=(2, 1, 1))


# ---------------------------------------------------------------------------

def counts_of(js):
    """The read counts of an output: a partial state's "read", a fit's or
    calibrator run's "before", else the top level."""
    for key in ("read", "before"):
        if isinstance(js.get(key), dict) and "rows_read" in js[key]:
            return js[key]
    return js


def write_files(d, files, chmod):
    for name, data in files.items():
        path = os.path.join(d, name)
        os.makedirs(os.path.dirname(path) if not name.endswith("/") else path, exist_ok=True)
        if not name.endswith("/"):
            with open(path, "wb") as f:
                f.write(data() if callable(data) else data)
    if chmod:
        os.chmod(os.path.join(d, chmod[0]), chmod[1])


class Catalogue(unittest.TestCase):
    maxDiff = None

    def assertBalanced(self, v):
        """rows_read = rows_used + rows_rejected wherever reported."""
        if isinstance(v, dict):
            if "rows_read" in v:
                self.assertEqual(v["rows_read"], v["rows_used"] + v["rows_rejected"], v)
            for x in v.values():
                self.assertBalanced(x)
        elif isinstance(v, list):
            for x in v:
                self.assertBalanced(x)

    def run_case(self, c):
        if c["skip"]:
            self.skipTest(c["skip"])
        d = tempfile.mkdtemp(prefix="calib-cat-")
        self.addCleanup(shutil.rmtree, d, True)
        write_files(d, c["files"], c["chmod"])
        args = list(c["args"])
        out = c["out"] and args[0] in ("eval", "fit", "merge")
        if out:
            args += (["--json"] if args[0] != "fit" else []) + ["-o", OUT]
        before = sorted(os.listdir(d))
        p = subprocess.run([CALIB] + args, cwd=d, capture_output=True, timeout=600,
                           input=c["stdin"], stdin=None if c["stdin"] is not None else subprocess.DEVNULL)
        err = p.stderr.decode("utf-8", "replace")
        what = "calib %s: exit %d, stderr %r" % (" ".join(args), p.returncode, err[-600:])
        self.assertEqual(p.returncode, c["code"], what)
        lines = err.splitlines()
        self.assertTrue(all(l.startswith("calib: ") for l in lines), what)
        if c["code"]:
            self.assertTrue(lines, what)
            for m in c["msgs"]:
                self.assertIn(m, lines[-1], what)
            self.assertEqual(p.stdout, b"", what)
            self.assertEqual(sorted(os.listdir(d)), before, "a failed run left output behind")
            return
        self.assertEqual(sorted(os.listdir(d)), sorted(before + ([OUT] if out else [])), what)
        if not out:
            return
        with open(os.path.join(d, OUT)) as f:
            js = json.load(f)
        self.assertBalanced(js)
        if c["counts"]:
            got = counts_of(js)
            self.assertEqual((got["rows_read"], got["rows_used"], got["rows_rejected"]), c["counts"], what)
        if c["check"]:
            self.assertTrue(c["check"](js, err), what)

    def test_catalogue_size(self):
        names = [c["name"] for c in CASES]
        self.assertEqual(len(names), len(set(names)), "case names must be unique")
        self.assertGreaterEqual(len(names), 90)


for _i, _c in enumerate(CASES):
    setattr(Catalogue, "test_%03d_%s" % (_i, _c["name"]), lambda self, c=_c: self.run_case(c))


if __name__ == "__main__":
    if not os.access(CALIB, os.X_OK):
        sys.exit("catalogue: %s not found (build it with make)" % CALIB)
    unittest.main(verbosity=2)
