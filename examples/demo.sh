#!/bin/sh
# demo.sh — `make demo`: runs calib's bundled example and says where its
# files are.  Usage: sh examples/demo.sh path/to/calib
set -eu
calib=${1:-build/calib}
dir=build/demo
"$calib" demo -o "$dir"
echo
echo "The example's files are in $dir/: val.csv and test.csv"
echo "(columns logit_0..logit_3, label, subject)."
