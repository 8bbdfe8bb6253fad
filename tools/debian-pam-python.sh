#!/bin/sh
# Debian's own pam_python.so for this host's suite, from the archive:
#
#   tools/debian-pam-python.sh DIR      (prints the path of pam_python.so)
#
# Downloads the libpam-python version the archive offers (apt-cache madison;
# never a +pykeyinit build, which a host may have installed) into DIR and
# unpacks it there. The tests show Debian's build's holes on it, and
# `make bench` measures it, whichever libpam-python the host has installed.
set -eu
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$1
mkdir -p "$dir"
archive_version() {
    apt-cache madison libpam-python | awk -F'|' '$2 !~ /pykeyinit/ {gsub(/ /, "", $2); print $2; exit}'
}
version=$(archive_version)
if [ -z "$version" ]; then  # no package lists yet (a fresh image may have none)
    apt-get update -qq >/dev/null
    version=$(archive_version)
fi
[ -n "$version" ] || { echo "$0: the archive offers no libpam-python" >&2; exit 1; }
(cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "libpam-python=$version" >/dev/null)
dpkg-deb -x "$dir"/libpam-python_*.deb "$dir/root"
find "$dir/root" -name pam_python.so | head -n 1
