#!/bin/bash
# `make vm-test`, the guest half: a minimal Debian 12 guest with the freshly
# built .deb installed by apt, booted with qemu, reporting over the serial
# console. Writes build/vm/report.json for tests/vm/test_guest.py.
#
# Cached in $PYKT_VM_CACHE (default /var/cache/pam-pykeyinit-vm): the
# debootstrapped root (keyed by suite, mirror and package list) and the
# kernel from Debian's linux-image package. Delete the folder to rebuild.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
repo=$(cd "$(dirname "$0")/../.." && pwd)
deb=$1
cache=${PYKT_VM_CACHE:-/var/cache/pam-pykeyinit-vm}
work=$repo/build/vm
suite=bookworm
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
packages=libpam-python,pamtester,keyutils,openssh-server,openssh-client,python3,iproute2,procps,libpam-runtime
key=$(printf '%s %s %s' "$suite" "$mirror" "$packages" | sha256sum | cut -c1-16)
base=$cache/root-$key.tar
mkdir -p "$cache"
t0=$(date +%s)

if [ ! -f "$base" ]; then
    echo "vm: debootstrap $suite from $mirror (first run; cached in $cache)"
    tmp=$(mktemp -d "$cache/root.XXXXXX")
    debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -20 "$cache/debootstrap.log"; exit 1; }
    rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*_Packages
    chmod 755 "$tmp"  # mktemp's 0700 would become the guest's /
    tar -C "$tmp" -cf "$base.part" . && mv "$base.part" "$base"
    rm -rf "$tmp"
fi
kernel=$cache/vmlinuz-$key
if [ ! -f "$kernel" ]; then
    echo "vm: fetching the kernel from Debian's linux-image package"
    image=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    tmp=$(mktemp -d "$cache/kernel.XXXXXX")
    (cd "$tmp" && apt-get download -q "$image" >/dev/null && dpkg-deb -x ./*.deb x)
    cp "$tmp"/x/boot/vmlinuz-* "$kernel.part" && mv "$kernel.part" "$kernel"
    rm -rf "$tmp"
fi
t1=$(date +%s)

rm -rf "$work" && mkdir -p "$work/root"
tar -C "$work/root" -xf "$base"
chmod 755 "$work/root"
cp "$deb" "$work/root/tmp/"
# apt resolves the package's dependencies as on a user's machine (they are
# already in the root, so no download is needed).
chroot "$work/root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$deb")" \
    >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log"; exit 1; }
rm -f "$work/root/tmp/$(basename "$deb")"
install -m 0755 "$repo/tools/vm/init" "$work/root/init"
install -m 0644 "$repo/tests/vm/guest.py" "$work/root/pykt-guest.py"
(cd "$work/root" && find . | cpio -o -H newc --quiet) >"$work/root.cpio"
t2=$(date +%s)

# KVM when /dev/kvm works: a guest that has printed no kernel line after
# 30 s (nested virtualisation can hang at the first instruction) is
# stopped, and the boot is done again under software emulation (TCG).
boot() {
    timeout 900 qemu-system-x86_64 "$@" -m 2048 -smp 2 -nographic -no-reboot \
        -kernel "$kernel" -initrd "$work/root.cpio" \
        -append "console=ttyS0 rdinit=/init panic=-1 loglevel=4" >"$work/serial.log" 2>&1 &
    qemu=$!
}
accel=tcg
if [ -w /dev/kvm ]; then
    boot -accel kvm
    for _ in $(seq 30); do
        grep -q "Linux version\|PYKT-REPORT" "$work/serial.log" 2>/dev/null && accel=kvm && break
        kill -0 $qemu 2>/dev/null || break
        sleep 1
    done
    if [ $accel = tcg ]; then
        kill $qemu 2>/dev/null || true
        wait $qemu 2>/dev/null || true
        echo "vm: KVM did not boot the guest within 30 s; using TCG"
    fi
fi
[ $accel = tcg ] && boot -accel tcg
echo "vm: booting with $accel"
wait $qemu || true
t3=$(date +%s)
# the report is the line after the marker (the console may put escape
# sequences in front of the marker itself)
tr -d '\r' <"$work/serial.log" | sed -n '/PYKT-REPORT-BEGIN/{n;p;q}' >"$work/report.json"
echo "vm: image $((t1 - t0)) s, guest root $((t2 - t1)) s, boot and scenarios $((t3 - t2)) s"
if [ ! -s "$work/report.json" ]; then
    echo "vm: no report on the serial console; its last lines:"
    tail -30 "$work/serial.log"
    exit 1
fi
