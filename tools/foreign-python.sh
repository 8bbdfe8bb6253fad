#!/bin/bash
# A CPython of another minor version than the one pam_python embeds, built
# from the archive's source of the other Debian suite's default Python:
#
#   tools/foreign-python.sh X.Y      (X.Y: the version pam_python embeds;
#                                     prints the path of the interpreter)
#
# tests/pam/test_python_clients.py runs a Python program of another version
# against pam_python (patch 3002 refuses it). Debian 12 ships only 3.11 and
# Debian 13 only 3.13, so the other suite's default Python (python3-defaults
# in its Sources: 3.13 for bookworm, 3.11 for trixie) is fetched with a
# private apt configuration (a deb-src line; /etc/apt is only read for the
# mirror), its orig tarball checked against the signed Sources index, and
# built (no optimisation passes, no test modules) into
# $PYKT_PYTHON_CACHE/pythonX.Y (default /var/cache/pam-pykeyinit-python),
# where later runs find it. Missing build dependencies are installed with apt.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
[ $# -eq 1 ] || { echo "usage: $0 X.Y (the version pam_python embeds)" >&2; exit 2; }
embedded=$1
cache=${PYKT_PYTHON_CACHE:-/var/cache/pam-pykeyinit-python}
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
case $suite in
    bookworm) other=trixie ;;
    trixie) other=bookworm ;;
    *) echo "$0: no other suite known for '$suite'" >&2; exit 1 ;;
esac
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
    | grep -v -- '-security' | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

work=$cache/apt-$other
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $other main" \
    >"$work/sources.list"
: >"$work/status"
apt=(apt-get -q -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::lists=$work/lists" -o "Dir::State::status=$work/status"
    -o "Dir::Cache=$work/cache" -o Dir::Etc::preferencesparts=- -o APT::Sandbox::User=root)
cached=$(ls "$cache"/python3.*/bin/python3.[0-9]* 2>/dev/null | grep -v -- "/python$embedded/" \
    | grep -E '/bin/python3\.[0-9]+$' | head -n 1 || true)
if [ -n "$cached" ] && "$cached" -c 'import ctypes' 2>/dev/null; then
    echo "$cached"
    exit 0
fi

"${apt[@]}" update >/dev/null
version=$("${apt[@]/apt-get/apt-cache}" showsrc python3-defaults 2>/dev/null \
    | sed -n 's/^Version: \([0-9]*\.[0-9]*\).*/\1/p' | head -n 1)
[ -n "$version" ] && [ "$version" != "$embedded" ] || {
    echo "$0: $other's default Python ('$version') is no other version than $embedded" >&2; exit 1; }
prefix=$cache/python$version

missing=$(for p in build-essential libffi-dev zlib1g-dev pkg-config xz-utils; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
done)
if [ -n "$missing" ]; then
    echo "foreign-python: installing build dependencies:" $missing >&2
    apt-get update -qq
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi

src=$cache/src-$version
rm -rf "$src" && mkdir -p "$src"
uris=$("${apt[@]}" source --print-uris "python$version" 2>/dev/null)
orig=$(awk '$2 ~ /\.orig\.tar\./ {print $2; exit}' <<<"$uris")
want=$(awk -v f="$orig" '$2 == f {sub(/^SHA256:/, "", $4); print $4}' <<<"$uris")
# the Debian diff may answer 404 (seen on this mirror), which fails apt-get
# source; the orig tarball arrives, and its hash is checked here
(cd "$src" && "${apt[@]}" source --download-only "python$version") >"$src/apt.log" 2>&1 || true
[ -n "$orig" ] && [ -f "$src/$orig" ] && echo "$want  $src/$orig" | sha256sum --quiet -c - || {
    echo "$0: no verified $orig for python$version:" >&2; cat "$src/apt.log" >&2; exit 1; }
mkdir "$src/tree"
tar -xf "$src/$orig" -C "$src/tree" --strip-components=1
echo "foreign-python: building Python $version from $other's $orig into $prefix" >&2
t0=$(date +%s)
(cd "$src/tree" && ./configure -q --prefix="$prefix" --without-ensurepip --disable-test-modules \
    && nice -n 19 make -s -j"$(nproc)" && make -s install) >"$src/build.log" 2>&1 || {
    tail -30 "$src/build.log" >&2; exit 1; }
rm -rf "$src/tree"
"$prefix/bin/python$version" -c 'import ctypes' || { echo "$0: the build has no ctypes" >&2; exit 1; }
echo "foreign-python: built in $(( $(date +%s) - t0 )) s" >&2
echo "$prefix/bin/python$version"
