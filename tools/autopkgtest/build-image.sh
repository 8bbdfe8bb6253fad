#!/bin/bash
# Build (or reuse) the autopkgtest qemu image of one Debian suite:
#
#   build-image.sh SUITE            # bookworm or trixie; prints the image path last
#
# /var/cache/pam-pykeyinit-autopkgtest/SUITE.img (override with
# PYKT_AUTOPKGTEST_CACHE), a sparse 8G raw EFI image made by trixie's
# mmdebstrap-autopkgtest-build-qemu, patched for a bookworm host
# (mmdebstrap-autopkgtest-build-qemu.patch beside this script):
#   - bash, not dash (it uses `set -o pipefail`);
#   - mmdebstrap --mode=root (no unshare needed), --format=directory;
#   - `mke2fs -d DIR` from the unpacked root (bookworm's mke2fs 1.47.0 fails
#     on `-d -`, a tar read from stdin).
# The tool comes from trixie's mmdebstrap .deb, fetched with a private apt
# configuration (the host's /etc/apt is not touched) and unpacked under the
# cache; the bootstrap itself is the host's mmdebstrap.
# The image is reused while SUITE.key (suite, package list, this script's,
# the patch's and the upstream tool's hashes) is unchanged; delete it to rebuild.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
here=$(cd "$(dirname "$0")" && pwd)
suite=${1:?usage: build-image.sh SUITE}
cache=${PYKT_AUTOPKGTEST_CACHE:-/var/cache/pam-pykeyinit-autopkgtest}
mirror=${PYKT_MIRROR:-http://deb.debian.org/debian}
size=${PYKT_IMAGE_SIZE:-8G}
# Baked in so that no test fetches its dependencies: what the scenarios use
# (ssh logins, keyctl, cron, the user manager through dbus, machinectl /
# systemd-run -M) and what libpam-pykeyinit depends on.
packages="openssh-server openssh-client keyutils cron tmux libpam-python pamtester python3
 libpam-runtime libpam-systemd dbus dbus-user-session systemd-container sudo procps iproute2"
# jupyterhub-session drives JupyterHub's PAMAuthenticator: Debian 13 has the
# package (5.2.1), Debian 12 none (the test is skipped there)
[ "$suite" = bookworm ] || packages="$packages jupyterhub"
packages=$(echo $packages | tr ' ' '\n' | sort -u | tr '\n' ' ')
host_packages="mmdebstrap autopkgtest qemu-system-x86 qemu-utils ovmf dosfstools mtools fdisk
 uidmap systemd-boot-efi binutils e2fsprogs dpkg-dev libarchive13 mount passwd patch
 debian-archive-keyring"
mkdir -p "$cache/tools"
now() { date +%s; }

missing=$(for p in $host_packages; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
done)
if [ -n "$missing" ]; then
    echo "build-image: apt-get install $(echo $missing)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
fi

# trixie's mmdebstrap .deb, with apt configured in $cache/tools/apt only
tool=$cache/tools/mmdebstrap-autopkgtest-build-qemu
get_tool() {
    local d=$cache/tools/apt deb
    mkdir -p "$d/etc/preferences.d" "$d/lists/partial" "$d/cache/archives/partial" "$d/debs"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
        >"$d/etc/sources.list"
    local o=(-o "Dir::Etc::sourcelist=$d/etc/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::Etc::preferencesparts=$d/etc/preferences.d" -o "Dir::State::lists=$d/lists"
        -o "Dir::Cache=$d/cache" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
    if [ ! -f "$d/debs/.done" ]; then
        apt-get "${o[@]}" update -qq >&2
        rm -f "$d/debs/"*.deb
        (cd "$d/debs" && apt-get "${o[@]}" download -q mmdebstrap >&2)
        touch "$d/debs/.done"
    fi
    deb=$(ls "$d/debs"/mmdebstrap_*_all.deb)
    rm -rf "$cache/tools/unpacked" && dpkg-deb -x "$deb" "$cache/tools/unpacked"
    cp "$cache/tools/unpacked/usr/bin/mmdebstrap-autopkgtest-build-qemu" "$tool.tmp"
    patch --quiet "$tool.tmp" "$here/mmdebstrap-autopkgtest-build-qemu.patch"
    chmod 0755 "$tool.tmp" && mv "$tool.tmp" "$tool"
    basename "$deb" >"$tool.from"
}
get_tool

image=$cache/$suite.img
key=$( { echo "suite=$suite mirror=$mirror size=$size"; echo "packages=$packages";
    cat "$tool.from"; sha256sum <"$0"; sha256sum <"$here/mmdebstrap-autopkgtest-build-qemu.patch";
    sha256sum </usr/share/autopkgtest/setup-commands/setup-testbed; } | sha256sum | cut -c1-16)
if [ -f "$image" ] && [ "$(cat "$image.key" 2>/dev/null)" = "$key" ]; then
    echo "build-image: $suite: reusing $image (key $key)" >&2
    echo "$image"
    exit 0
fi

echo "build-image: $suite: building $image (key $key; packages: $packages)" >&2
t0=$(now)
rm -f "$image" "$image.key" "$image.tmp"
export TMPDIR=$cache/tmp
# setup-testbed (autopkgtest's, run inside the tool) would write main,
# contrib, non-free and their deb-src lines: each boot's `apt-get update`
# then fetches 19 MB. Binary main only, and the lists kept in the image
# (--skip=cleanup/apt/lists), so that an update at boot is mostly "Hit".
export AUTOPKGTEST_APT_SOURCES="deb $mirror $suite main"
mkdir -p "$TMPDIR"
nice -n 19 "$tool" --boot=efi --size="$size" --mirror="$mirror" "$suite" "$image.tmp" -- \
    --include="$(echo $packages | tr ' ' ',')" --skip=cleanup/apt/lists \
    >"$cache/$suite.build.log" 2>&1 || {
    tail -40 "$cache/$suite.build.log" >&2
    echo "build-image: $suite: FAILED (log: $cache/$suite.build.log)" >&2
    exit 1
}
mv "$image.tmp" "$image"
echo "$key" >"$image.key"
t1=$(now)
echo "build-image: $suite: built in $((t1 - t0)) s; $(du -h --apparent-size "$image" | cut -f1) apparent, $(du -h "$image" | cut -f1) used" >&2
echo "$image"
