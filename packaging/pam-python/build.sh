#!/bin/bash
# Build libpam-python with pam_pykeyinit's patches for the host's suite:
#
#   packaging/pam-python/build.sh DIST_DIR
#
# Gets Debian's source of pam-python for the host's suite (VERSION_CODENAME
# of /etc/os-release: bookworm or trixie) with a private apt configuration
# (its own sources.list with a deb-src line, its own lists and cache under
# the work folder; /etc/apt is only read for the mirror), unpacks the orig
# tarball, replaces upstream's old debian/ folder with ours
# (packaging/pam-python/debian, the suite's changelog, patches/), applies the
# series, builds with dpkg-buildpackage -us -uc -b and copies
# libpam-python_<debian version>+pykeyinitN_<arch>.deb to DIST_DIR (N: our revision).
# Missing build dependencies are installed with apt-get.
#
# Environment: WORK (default build/pam-python next to packaging/),
# MIRROR (default: the first Debian URI of the host's apt sources).
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C.UTF-8

[ $# -eq 1 ] || { echo "usage: $0 DIST_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
dist=$(cd "$1" && pwd)
work=${WORK:-$(cd "$here/../.." && pwd)/build/pam-python}
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -f "$here/suites/$suite/changelog" ] || {
    echo "pam-python: no changelog for suite '$suite' (have: $(ls "$here/suites"))" >&2; exit 1; }
# The version our patches were made for, from our changelog: X+pykeyinitN
ours=$(dpkg-parsechangelog -l "$here/suites/$suite/changelog" -SVersion 2>/dev/null \
    || sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$here/suites/$suite/changelog")
debver=${ours%+pykeyinit*}
upver=${debver%-*}
arch=$(dpkg --print-architecture)
deb=libpam-python_${ours}_${arch}.deb

if [ -z "${MIRROR:-}" ]; then
    MIRROR=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
        | grep -v -- '-security' | head -n 1 || true)
    [ -n "$MIRROR" ] || MIRROR=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ {print $2; exit}' \
        /etc/apt/sources.list 2>/dev/null || true)
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
fi

# --- build dependencies (apt-get only when one is missing) ---
build_deps="build-essential dpkg-dev debhelper libpam0g-dev python3 python3-dev python3-setuptools"
missing=$(for p in $build_deps; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
done)
if [ -n "$missing" ]; then
    echo "pam-python: installing build dependencies:" $missing
    apt-get update -qq
    # shellcheck disable=SC2086 # a list of package names
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

# --- source, through a private apt configuration ---
rm -rf "$work"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb-src [signed-by=$keyring] $MIRROR $suite main" > "$work/apt/sources.list"
: > "$work/apt/status"
apt_private=(-o "Dir::Etc::sourcelist=$work/apt/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::lists=$work/apt/lists" -o "Dir::State::status=$work/apt/status"
    -o "Dir::Cache=$work/apt/cache" -o Dir::Etc::preferencesparts=- -o APT::Sandbox::User=root)
echo "pam-python: $suite source from $MIRROR"
apt-get "${apt_private[@]}" -qq update
available=$(apt-get "${apt_private[@]}" source --print-uris pam-python 2>/dev/null \
    | sed -n "s/^'[^']*' pam-python_\([^ ]*\)\.dsc .*/\1/p")
[ "$available" = "$debver" ] || {
    echo "pam-python: the archive has $available, the patches are for $debver:" \
        "check them and add a changelog entry" >&2; exit 1; }
# The .dsc and the .debian.tar.xz may answer 404 (seen on this mirror); apt
# verifies what it fetches against the signed Sources index and removes
# what does not match, and we check the orig tarball's hash ourselves.
(cd "$work/src" && apt-get "${apt_private[@]}" -q source --download-only "pam-python=$debver") \
    >"$work/apt-source.log" 2>&1 || true
orig=pam-python_${upver}.orig.tar.xz
want=$(apt-get "${apt_private[@]}" source --print-uris "pam-python=$debver" 2>/dev/null \
    | awk -v f="$orig" '$2 == f {sub(/^SHA256:/, "", $4); print $4}')
[ -f "$work/src/$orig" ] && [ -n "$want" ] \
    && echo "$want  $work/src/$orig" | sha256sum --quiet -c - || {
    echo "pam-python: could not fetch a verified $orig:" >&2; cat "$work/apt-source.log" >&2; exit 1; }
if [ -f "$work/src/pam-python_${debver}.debian.tar.xz" ]; then
    echo "pam-python: note: Debian's pam-python_${debver}.debian.tar.xz is served now;" \
        "compare its patches with ours (this build still uses ours)"
fi

# --- unpack, our debian/ and patches ---
tree=$work/pam-python-$upver
mkdir -p "$tree"
tar -xf "$work/src/$orig" -C "$tree" --strip-components=1
cp "$work/src/$orig" "$work/$orig"
rm -rf "$tree/debian"                  # upstream's own, python2-era 1.0.8
cp -r "$here/debian" "$tree/debian"
cp "$here/suites/$suite/changelog" "$tree/debian/changelog"
cp -r "$here/patches" "$tree/debian/patches"
(cd "$tree" && dpkg-source --before-build .)   # applies debian/patches/series
echo "pam-python: applied $(grep -c . "$tree/.pc/applied-patches") patches"

# --- build ---
t0=$(date +%s)
(cd "$tree" && nice -n 19 dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
    tail -40 "$work/build.log" >&2; exit 1; }
cp "$work/$deb" "$dist/$deb"
echo "pam-python: $dist/$deb ($(( $(date +%s) - t0 ))s; log $work/build.log)"
