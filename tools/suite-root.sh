#!/bin/bash
# A Debian root of another suite, to run the project's own commands in:
#
#   tools/suite-root.sh SUITE PACKAGES -- COMMAND...
#   tools/suite-root.sh --tar SUITE PACKAGES      (prints the cached tar's path)
#
# debootstraps SUITE (bookworm, trixie) from the mirror apt already uses,
# installs PACKAGES (space-separated) into it with apt (which orders
# pre-dependencies such as systemd's, where debootstrap --include does not),
# and caches the result as a tar in $PYKT_VM_CACHE (default
# /var/cache/pam-pykeyinit-vm), keyed by suite, mirror and package list; the
# guests of tools/vm/run.sh start from such a tar. Each run unpacks a fresh
# copy under build/, copies the checkout (tracked and new files, and .git) to
# /pykt/src in it and the host's dist/ to /pykt/dist, binds
# /proc, /sys and /dev, bind-mounts the root onto itself (so that
# `unshare --mount` works inside), runs COMMAND there as root with CI set as
# outside, and takes everything down again. The kernel, and so the kernel's
# keyrings, are the host's.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
repo=$(cd "$(dirname "$0")/.." && pwd)
tar_only=
[ "$1" = --tar ] && { tar_only=1; shift; }
suite=$1
packages=$2
shift 2
[ "${1:-}" = -- ] && shift
cache=${PYKT_VM_CACHE:-/var/cache/pam-pykeyinit-vm}
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
key=$(printf '%s %s %s' "$suite" "$mirror" "$packages" | sha256sum | cut -c1-16)
base=$cache/suite-$suite-$key.tar
work=$repo/build/suite-$suite
root=$work/root
mkdir -p "$cache"

mounts=()
cleanup() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount -l "${mounts[i]}" 2>/dev/null || true
    done
    mounts=()
}
trap cleanup EXIT

bind_system() {  # the system folders a chroot needs, slaves of the host's
    local target=$1
    mount --bind "$target" "$target" && mounts+=("$target")
    mount --make-private "$target"
    for fs in proc sys dev; do
        mount --rbind "/$fs" "$target/$fs" && mounts+=("$target/$fs")
        mount --make-rslave "$target/$fs"
    done
    # the host's network: its resolver, and the authorities it trusts (an
    # egress proxy may sign for PyPI)
    cp /etc/resolv.conf "$target/etc/resolv.conf"
    if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
        mkdir -p "$target/etc/ssl/certs"
        cp /etc/ssl/certs/ca-certificates.crt "$target/etc/ssl/certs/ca-certificates.crt"
    fi
}

t0=$(date +%s)
if [ ! -f "$base" ]; then
    echo "suite-root: debootstrap $suite from $mirror, then: $packages (first run; cached in $cache)" >&2
    tmp=$(mktemp -d "$cache/suite.XXXXXX")
    debootstrap --variant=minbase "$suite" "$tmp" "$mirror" >"$cache/debootstrap-$suite.log" 2>&1 \
        || { tail -20 "$cache/debootstrap-$suite.log"; exit 1; }
    chmod 755 "$tmp"
    bind_system "$tmp"
    chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086 # a list of package names
    chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        make git ca-certificates $packages >"$cache/apt-$suite.log" 2>&1 \
        || { tail -20 "$cache/apt-$suite.log"; exit 1; }
    chroot "$tmp" apt-get clean
    cleanup
    tar -C "$tmp" -cf "$base.part" . && mv "$base.part" "$base"
    rm -rf "$tmp"
fi
t1=$(date +%s)
if [ -n "$tar_only" ]; then
    echo "$base"
    exit 0
fi

rm -rf "$work" && mkdir -p "$root"
tar -C "$root" -xf "$base"
mkdir -p "$root/pykt/src"
(cd "$repo" && { git ls-files --cached --others --exclude-standard; find .git; } | sort -u \
    | tar -cf - --no-recursion -T -) | tar -xf - -C "$root/pykt/src"
# packages built on the host, for the suite's own tools to look at
if [ -d "$repo/dist" ]; then cp -r "$repo/dist" "$root/pykt/dist"; fi
bind_system "$root"
# The cache of tools/foreign-python.sh, at the same path: the CPython of
# the host's suite that test_python_clients.py runs against this suite's
# pam_python is built once from the archive's source and kept on the host.
pycache=${PYKT_PYTHON_CACHE:-/var/cache/pam-pykeyinit-python}
mkdir -p "$pycache" "$root$pycache"
mount --bind "$pycache" "$root$pycache" && mounts+=("$root$pycache")
echo "suite-root: $suite ready in $((t1 - t0)) s (root) + $(($(date +%s) - t1)) s (copy); running: $*"
rc=0
bundle=/etc/ssl/certs/ca-certificates.crt
chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    CI="${CI:-}" PIP_CERT=$bundle SSL_CERT_FILE=$bundle \
    bash -c 'cd /pykt/src && "$@"' bash "$@" || rc=$?
# PYKT_COLLECT: files of the root's dist/ (a glob) copied back to the
# checkout's dist/, e.g. the other suite's libpam-python for make vm-test
if [ "$rc" = 0 ] && [ -n "${PYKT_COLLECT:-}" ]; then
    mkdir -p "$repo/dist"
    # shellcheck disable=SC2086 # a glob
    cp "$root"/pykt/src/dist/$PYKT_COLLECT "$repo/dist/"
fi
cleanup
exit $rc
