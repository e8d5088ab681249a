#!/bin/sh
# deps.sh — installs the Debian packages calib needs to build and test,
# only those that are missing; silent when everything is there.
set -eu

PACKAGES="gcc make pkg-config libjansson-dev zlib1g-dev libcmocka-dev libcairo2-dev
python3-numpy python3-scipy python3-sklearn libxml2-utils poppler-utils
fonts-dejavu-core python3-pytest python3-setuptools"

missing=""
for p in $PACKAGES; do
    # "install ok installed" is dpkg's word for a package that is fully there.
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
    *" installed") ;;
    *) missing="$missing $p" ;;
    esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "deps.sh: missing:$missing; run as root or install sudo" >&2
    exit 1
fi
echo "deps.sh: installing$missing"
$sudo apt-get update
# shellcheck disable=SC2086  # the list is meant to split into words
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
