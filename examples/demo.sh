#!/bin/sh
# demo.sh — `make demo`: runs calib's bundled example, writes its HTML
# report, and says where the files are.  Usage: sh examples/demo.sh path/to/calib
set -eu
calib=${1:-build/calib}
dir=build/demo
"$calib" demo -o "$dir"
"$calib" report --val "$dir/val.csv" --test "$dir/test.csv" --group subject \
    --title "calib demo: an over-confident 4-choice model" -o "$dir/report.html"
echo
echo "The example's files are in $dir/: val.csv and test.csv"
echo "(columns logit_0..logit_3, label, subject)."
echo "The report (open it in a browser): $dir/report.html"
