#!/bin/sh
# run.sh — `make bench`: times calib against numpy, scikit-learn, PyTorch and
# SciPy on the same inputs and prints one table (bench/README.md says what
# each row measures).  Usage: sh bench/run.sh [BUILD_DIR]  (default: build)
#
# Every timing is taken inside its own process, after the inputs are loaded
# and a warm-up run, so start-up and disk never count.  Steps run one at a
# time (the machine has 2 cores, and calib uses both).  Raw results go to
# BUILD_DIR/bench-raw/, the summary to BUILD_DIR/bench.json; nothing is
# written inside the repository except the data in bench/data/ (gitignored).
#
# Environment: PY (default /usr/bin/python3, Debian's, with numpy, scipy,
# sklearn), CALIB_BENCH_TORCH_CAP (seconds one torch LBFGS run may take,
# default 60), CALIB_BENCH_ONLY (space-separated subset of: width mass nll
# csv fit).
set -u

O=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PY:-/usr/bin/python3}
DATA=$HERE/data
RAW=$O/bench-raw
BENCH=$O/calib-bench
CAP=${CALIB_BENCH_TORCH_CAP:-60}
ONLY=${CALIB_BENCH_ONLY:-width mass nll csv fit}
export PYTHONDONTWRITEBYTECODE=1

# Python steps run with the machine's OpenBLAS tuning variables unset (they
# may be set here and are not what a user would have); only in those
# commands.
py() {
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$@"
}

mkdir -p "$RAW" || exit 1
rm -f "$RAW"/*.json "$RAW"/*.err

if [ ! -x "$BENCH" ]; then
    echo "bench: $BENCH is missing: run 'make bench'" >&2
    exit 1
fi

# PyTorch: Debian's python3-torch, installed when missing (as root).
TORCH=1
if ! $PY -c 'import torch' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "bench: installing Debian's python3-torch (once) ..."
        apt-get update -qq >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch \
            >/dev/null 2>&1
    fi
    if ! $PY -c 'import torch' 2>/dev/null; then
        echo "bench: NOTE: python3-torch is not available (apt-get failed or" \
             "not root): the torch columns are skipped."
        TORCH=0
    fi
fi

$PY "$HERE/gen.py" "$DATA" || { echo "bench: gen.py failed" >&2; exit 1; }
BENCH_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# step NAME COMMAND...: runs one timing process, its JSON into RAW/NAME.json
step() {
    name=$1
    shift
    printf 'bench: %-34s' "$name"
    t0=$(date +%s)
    if "$@" >"$RAW/$name.json" 2>"$RAW/$name.err"; then
        echo " ok ($(($(date +%s) - t0)) s)"
    else
        echo " FAILED ($(($(date +%s) - t0)) s; see $RAW/$name.err)"
        tail -n 3 "$RAW/$name.err" | sed 's/^/bench:     /'
        rm -f "$RAW/$name.json"
    fi
}

wants() {
    case " $ONLY " in *" $1 "*) return 0 ;; esac
    return 1
}

if wants width; then
    step width__calib "$BENCH" width "$DATA"
    step width__numpy py "$HERE/ref_numpy.py" width "$DATA"
    step width__sklearn py "$HERE/ref_sklearn.py" width "$DATA"
    [ "$TORCH" = 1 ] && step width__torch py "$HERE/ref_torch.py" width "$DATA"
fi
if wants mass; then
    step mass__calib "$BENCH" mass "$DATA"
    step mass__numpy py "$HERE/ref_numpy.py" mass "$DATA"
fi
if wants nll; then
    step nll__calib "$BENCH" nll "$DATA"
    step nll__numpy py "$HERE/ref_numpy.py" nll "$DATA"
    step nll__sklearn py "$HERE/ref_sklearn.py" nll "$DATA"
fi
if wants csv; then
    for f in top.csv logits_1000000x10.csv; do
        b=${f%.csv}
        step "csv-$b"__calib "$BENCH" csv "$DATA/$f"
        step "csv-$b"__numpy py "$HERE/ref_numpy.py" csv "$DATA/$f"
    done
fi
if wants fit; then
    for s in 100000x10 100000x100 10000x1000 1000000x10; do
        z=$DATA/logits_$s.npy
        y=$DATA/labels_$s.npy
        step "fit-$s"__calib "$BENCH" fit "$z" "$y"
        if [ "$TORCH" = 1 ]; then
            step "fit-$s"__torch50 py "$HERE/ref_torch.py" fit "$z" "$y" 50 "$CAP"
            step "fit-$s"__torch200 py "$HERE/ref_torch.py" fit "$z" "$y" 200 "$CAP"
        fi
        step "fit-$s"__scipy py "$HERE/ref_scipy.py" fit "$z" "$y"
    done
fi

# The table, the ratios, and O/bench.json.
export BENCH_LOAD
py - "$HERE" "$RAW" "$O/bench.json" "$DATA" "$TORCH" "$CAP" <<'EOF'
import glob, json, math, os, platform, sys

here, raw, out_json, data, torch_ok, cap = sys.argv[1:7]
sys.path.insert(0, here)
import numpy as np
from ref_numpy import load_logits, nll_at

res = {}                    # section -> tool -> parsed JSON
for path in sorted(glob.glob(os.path.join(raw, "*.json"))):
    sect, tool = os.path.basename(path)[:-5].split("__")
    try:
        with open(path) as f:
            res.setdefault(sect, {})[tool] = json.load(f)
    except ValueError:
        print("bench: %s is not JSON; skipped" % path)

summary = {"machine": {"cpu": "", "cores": os.cpu_count(),
                       "python": platform.python_version(),
                       "numpy": np.__version__},
           "sections": {}, "bars": {}, "notes": []}
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        summary["machine"]["cpu"] = line.split(":", 1)[1].strip()
        break
for mod in ("scipy", "sklearn", "torch"):
    try:
        summary["machine"][mod] = __import__(mod).__version__
    except ImportError:
        summary["machine"][mod] = None
if res.get("width", {}).get("calib"):
    summary["machine"]["calib"] = res["width"]["calib"].get("version")


def rows_of(sect, *tools):
    out = []
    for t in tools:
        for r in res.get(sect, {}).get(t, {}).get("rows", []):
            r = dict(r, tool=t)
            out.append(r)
    return out


def find(rows, prefix):
    for r in rows:
        if r["impl"].startswith(prefix):
            return r
    return None


def ms(x):
    return "%10.1f" % (x * 1e3) if x is not None else "       n/a"


def ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fmt_ratio(x):
    if x is None:
        return "      n/a"
    return "%8.1fx" % x if x >= 0.95 else "%8.3fx" % x


def val(r, k, fmt="%.6g"):
    v = r.get("values", {}).get(k) if r else None
    return fmt % v if isinstance(v, (int, float)) else "-"


def table(title, rows, ref, cols):
    print()
    print("== " + title)
    head = "%-52s %10s %10s %4s %9s" % ("implementation", "best ms",
                                         "median ms", "reps", "vs calib")
    for hdr, _, _ in cols:
        head += " %12s" % hdr
    print(head)
    for r in rows:
        line = "%-52s %s %s %4d %s" % (
            r["impl"][:52], ms(r["best"]), ms(r["median"]), r["reps"],
            fmt_ratio(ratio(r["best"], ref["best"] if ref else None)))
        for _, key, fmt in cols:
            line += " %12s" % val(r, key, fmt)
        print(line)
        if r.get("note"):
            print("%-52s   note: %s" % ("", r["note"]))
        r["vs_calib"] = ratio(r["best"], ref["best"] if ref else None)
    if not rows:
        print("(no results: the step failed or was not run)")


def fastest(rows, tool):
    rs = [r for r in rows if r["tool"] == tool]
    return min(rs, key=lambda r: r["best"]) if rs else None


print()
print("calib benchmark — %s, %s cores; numpy %s, scipy %s, sklearn %s, "
      "torch %s" % (summary["machine"]["cpu"], summary["machine"]["cores"],
                    np.__version__, summary["machine"]["scipy"],
                    summary["machine"]["sklearn"],
                    summary["machine"]["torch"] or "(not installed)"))
print("load average at the start: %s (other work on the machine makes "
      "times noisy)" % os.environ.get("BENCH_LOAD", "?"))
print("times: best of the repetitions after a warm-up, inside each process; "
      "'vs calib' = that time / calib's first row (>1: calib is faster)")
if torch_ok != "1":
    print("NOTE: python3-torch was not available: the torch rows are skipped")

# --- equal width -----------------------------------------------------
rows = rows_of("width", "calib", "numpy", "sklearn", "torch")
calib_rows = [r for r in rows if r["tool"] == "calib"
              and not r["impl"].startswith("streaming")]
stream = [r for r in rows if r["impl"].startswith("streaming")]
others = [r for r in rows if r["tool"] != "calib"]
# the bar is judged on the metrics the references compute (the binned ones);
# the rows with NLL and Brier too are printed, and their ratios below
REF_IMPL = ("calib equal-width, binned metrics only (no scores; check+evaluate "
            "in one call, threads=2)")
ref = find(rows, REF_IMPL)
table("Equal-width ECE/MCE/accuracy, 15 bins, 10^7 top-label rows "
      "(float32 conf + uint8 correct)", calib_rows + others + stream, ref,
      [("ECE", "ece", "%.10f"), ("MCE", "mce", "%.8f"),
       ("accuracy", "accuracy", "%.7f")])
sect = {"rows": rows}
if ref:
    # the bound from memory (a buffer no cache holds), as the issue
    # defines it; re-reading the inputs themselves is printed too
    s2 = ([r for r in stream if r["impl"].startswith("streaming bound from "
                                                      "memory")
           and r["impl"].endswith("threads=2)")] or [None])[0]
    rr = ([r for r in stream if r["impl"].startswith("streaming, re-reading")
           and r["impl"].endswith("threads=2)")] or [None])[0]
    print("ratios (time / calib binned metrics only, check+evaluate in one "
          "call, threads=2):")
    for tool in ("numpy", "sklearn", "torch"):
        f = fastest(rows, tool)
        if f:
            print("  %-8s %-58s %8.1fx" % (tool, f["impl"][:58],
                                          f["best"] / ref["best"]))
            sect["ratio_" + tool] = f["best"] / ref["best"]
    if s2:
        full = find(rows, "calib equal-width (check+evaluate in one call, "
                          "threads=2)")
        ev = find(rows, "calib equal-width (evaluate only, threads=2)")
        we = find(rows, "calib equal-width (wrap+evaluate, threads=2)")
        k = ref["best"] / s2["best"]
        print("  streaming bound from memory (2 threads): %.2f ms; calib "
              "binned metrics, check+evaluate in one call = %.2fx the bound "
              "(bar: <= 4x): %s"
              % (s2["best"] * 1e3, k, "PASS" if k <= 4 else "FAIL"))
        if rr:
            print("  re-reading the inputs themselves (partly cached): %.2f ms,"
                  " calib = %.2fx that" % (rr["best"] * 1e3,
                                            ref["best"] / rr["best"]))
        print("  with NLL and Brier as well:%s%s%s" % (
            " in one call %.2fx" % (full["best"] / s2["best"]) if full else "",
            ", wrap then evaluate %.2fx" % (we["best"] / s2["best"])
            if we else "",
            ", evaluate alone %.2fx" % (ev["best"] / s2["best"])
            if ev else ""))
        summary["bars"]["width_vs_stream"] = {
            "calib_s": ref["best"], "stream_s": s2["best"], "ratio": k,
            "bar": 4, "pass": k <= 4,
            "with_scores_s": full["best"] if full else None,
            "reread_s": rr["best"] if rr else None}
    print("  (torch follows torchmetrics' rule: [e_b, e_b+1), p = 1 in an "
          "extra bin, float32 sums, so its ECE differs; calib/numpy/sklearn "
          "use (e_b, e_b+1])")
summary["sections"]["width"] = sect

# --- equal mass ------------------------------------------------------
rows = rows_of("mass", "calib", "numpy")
ref = find(rows, "calib equal-mass (wrap+evaluate, threads=2)")
table("Equal-mass bins (15), 10^7 top-label rows", rows, ref,
      [("ECE", "ece", "%.10f"), ("bins", "n_bins", "%g")])
summary["sections"]["mass"] = {"rows": rows}
f = fastest(rows, "numpy")
if ref and f:
    k = find(rows, "numpy Kumar")
    print("ratios: numpy Kumar (np.sort) / calib = %s; fastest numpy / calib "
          "= %.1fx" % ("%.1fx" % (k["best"] / ref["best"]) if k else "n/a",
                       f["best"] / ref["best"]))

# --- NLL + Brier -----------------------------------------------------
rows = rows_of("nll", "calib", "numpy", "sklearn")
ref = find(rows, "calib all metrics (wrap+evaluate, threads=2)")
table("NLL + Brier, 10^6 x 10 float32 logits (calib computes every metric "
      "in the same call)", rows, ref,
      [("NLL", "nll", "%.12f"), ("Brier", "brier", "%.12f")])
summary["sections"]["nll"] = {"rows": rows}
if ref:
    for tool in ("numpy", "sklearn"):
        f = fastest(rows, tool)
        if f:
            print("ratio: %-7s %-50s %8.1fx" % (tool, f["impl"][:50],
                                               f["best"] / ref["best"]))

# --- CSV -------------------------------------------------------------
for name in ("top", "logits_1000000x10"):
    rows = rows_of("csv-" + name, "calib", "numpy")
    ref = find(rows, "calib")
    table("CSV ingest, %s.csv (one thread; MB/s of file bytes)" % name,
          rows, ref, [("MB/s", "mb_per_s", "%.1f"), ("rows", "rows", "%d")])
    summary["sections"]["csv-" + name] = {"rows": rows}
    lt = find(rows, "np.loadtxt")
    if ref and lt:
        print("ratio: np.loadtxt / calib_read = %.1fx (calib %.0f MB/s per "
              "core)" % (lt["best"] / ref["best"],
                         ref["values"].get("mb_per_s", float("nan"))))

# --- temperature fits ------------------------------------------------
print()
print("Temperature fits, objective NLL.  NLL(T) for every row is computed "
      "by this runner in float64 numpy (exact row sum), so rows compare; "
      "'dNLL' = NLL - the smallest NLL in the table.")
for size in ("100000x10", "100000x100", "10000x1000", "1000000x10"):
    rows = rows_of("fit-" + size, "calib", "torch50", "torch200", "scipy")
    if not rows:
        print("\n== fit %s: no results" % size)
        continue
    z, y = load_logits(os.path.join(data, "logits_%s.npy" % size),
                       os.path.join(data, "labels_%s.npy" % size))
    for r in rows:
        t = r["values"].get("T")
        r["values"]["nll64"] = (nll_at(z, y, float(t))
                                if isinstance(t, (int, float))
                                and t > 0 and math.isfinite(t) else None)
    best = min([r["values"]["nll64"] for r in rows
                if r["values"]["nll64"] is not None] or [float("nan")])
    for r in rows:
        v = r["values"]["nll64"]
        r["values"]["dNLL"] = v - best if v is not None else None
    ref = find(rows, "calib_fit (wrap+fit, threads=2)")
    n, k = size.split("x")
    table("Temperature fit, %s x %s logits" % (n, k), rows, ref,
          [("T", "T", "%.9f"), ("iters", "iterations", "%g"),
           ("NLL(T) f64", "nll64", "%.12f"), ("dNLL", "dNLL", "%.3g")])
    summary["sections"]["fit-" + size] = {"rows": rows}
    if size == "100000x100":
        t50 = find(rows, "torch LBFGS max_iter=50")
        sp = find(rows, "scipy")
        fo = find(rows, "calib_fit (fit only, threads=2)")
        bar = {}
        if ref:
            bar["calib_ms"] = ref["best"] * 1e3
            bar["calib_le_20ms"] = ref["best"] <= 0.020
        if ref and t50:
            bar["vs_lbfgs50"] = t50["best"] / ref["best"]
            bar["ge_500x_lbfgs50"] = bar["vs_lbfgs50"] >= 500
        if ref and sp:
            bar["vs_scipy"] = sp["best"] / ref["best"]
            bar["ge_50x_scipy"] = bar["vs_scipy"] >= 50
        if ref:
            mine = ref["values"]["nll64"]
            others = [r["values"]["nll64"] for r in (t50, sp)
                      if r and r["values"]["nll64"] is not None]
            bar["nll_at_or_below"] = (mine is not None and bool(others) and
                                      all(mine <= o * (1 + 1e-12)
                                          for o in others))
        checks = ("calib_le_20ms", "ge_500x_lbfgs50", "ge_50x_scipy",
                  "nll_at_or_below")
        ok = all(bar.get(kk) is True for kk in checks)
        print("issue bar (10^5 x 100): calib %s ms <= 20 ms: %s; %s x faster "
              "than LBFGS-50 (>= 500x): %s; %s x faster than scipy (>= 50x): "
              "%s; NLL at or below both (1e-12 relative): %s => %s" % (
                  "%.2f" % bar["calib_ms"] if "calib_ms" in bar else "n/a",
                  bar.get("calib_le_20ms", "n/a"),
                  "%.0f" % bar["vs_lbfgs50"] if "vs_lbfgs50" in bar else "n/a",
                  bar.get("ge_500x_lbfgs50", "n/a"),
                  "%.0f" % bar["vs_scipy"] if "vs_scipy" in bar else "n/a",
                  bar.get("ge_50x_scipy", "n/a"),
                  bar.get("nll_at_or_below", "n/a"),
                  "PASS" if ok else "FAIL"))
        if fo:
            print("  (calib fit alone, without wrap's input checks: %.2f ms)"
                  % (fo["best"] * 1e3))
        bar["pass"] = ok
        summary["bars"]["fit_100000x100"] = bar

failed = sorted(os.path.basename(p)[:-4] for p in
                glob.glob(os.path.join(raw, "*.err"))
                if not os.path.exists(p[:-4] + ".json"))
if failed:
    print("\nFAILED steps (stderr in %s/NAME.err): %s" % (raw, ", ".join(failed)))
summary["failed"] = failed
summary["machine"]["load_average_at_start"] = os.environ.get("BENCH_LOAD")
summary["notes"] = [
    "torch rows re-implement torchmetrics' calibration_error binning and "
    "gpleiss/temperature_scaling's set_temperature on Debian's "
    "python3-torch (neither package is in Debian)",
    "torch LBFGS runs are capped at %s s each" % cap,
]
with open(out_json, "w") as f:
    json.dump(summary, f, indent=1)
print("\nJSON: %s" % out_json)
EOF
