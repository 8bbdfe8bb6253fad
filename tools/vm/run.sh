#!/bin/bash
# `make vm-test`, the guest half: for each suite (SUITES, default "bookworm
# trixie"), a minimal Debian guest with that suite's kernel and Debian's
# libpam-python, where apt first refuses the fresh .deb alone (it needs the
# fixed libpam-python), installs the OLD .debs one after the other (0.1.0,
# then 0.2.0), and then runs the README's install command, read from
# README.md: this project's libpam-python for the suite and the fresh .deb
# together. Booted with qemu,
# reporting over the serial console. Writes build/vm/SUITE/report.json for
# tests/vm/test_guest.py.
#
#   tools/vm/run.sh NEW.deb OLD.deb...
#
# Cached in $PYKT_VM_CACHE (default /var/cache/pam-pykeyinit-vm), keyed by
# suite, mirror and package list: the debootstrapped root and the kernel of
# the suite's linux-image-amd64 package. Delete the folder to rebuild.
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
repo=$(cd "$(dirname "$0")/../.." && pwd)
deb=$1
shift
old_debs=("$@")
suites=${SUITES:-bookworm trixie}
cache=${PYKT_VM_CACHE:-/var/cache/pam-pykeyinit-vm}
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
# What the scenarios use: logins, cron, keyctl, the Python PAM clients.
packages="libpam-python pamtester keyutils openssh-server openssh-client python3 iproute2 procps"
# (python3-pampy 2.0.2 imports six without depending on it)
packages="$packages libpam-runtime cron python3-pamela python3-pampy python3-six login util-linux"
mkdir -p "$cache"
# the README's install command (Install: apt install ./dist/install/*.deb)
install=$(cd "$repo" && /usr/bin/python3 -m tests.doclib Install "apt install")

prepare_root() {  # SUITE -> $base (the root's tar) and $kernel (its suite's vmlinuz)
    local suite=$1 tmp image
    base=$(bash "$repo/tools/suite-root.sh" --tar "$suite" "$packages")
    kernel=${base%.tar}.vmlinuz
    [ -f "$kernel" ] && return
    echo "vm: fetching $suite's kernel (linux-image-amd64; cached in $cache)"
    tmp=$(mktemp -d "$cache/kernel.XXXXXX")
    tar -C "$tmp" -xf "$base"
    cp /etc/resolv.conf "$tmp/etc/resolv.conf"
    image=$(chroot "$tmp" apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    chroot "$tmp" sh -c "cd /tmp && apt-get download -q $image" >/dev/null 2>&1
    dpkg-deb --fsys-tarfile "$tmp"/tmp/linux-image-*.deb | tar -xf - -C "$tmp/tmp" ./boot
    cp "$tmp"/tmp/boot/vmlinuz-* "$kernel.part" && mv "$kernel.part" "$kernel"
    rm -rf "$tmp"
}

# KVM when /dev/kvm works: a guest that has printed no kernel line after
# 30 s (nested virtualisation can hang at the first instruction) is
# stopped, and that boot and every later one use software emulation (TCG).
accel=
start_qemu() {  # ACCEL KERNEL CPIO LOG; sets $qemu
    timeout 1200 qemu-system-x86_64 -accel "$1" -m 2048 -smp 2 -nographic -no-reboot \
        -kernel "$2" -initrd "$3" \
        -append "console=ttyS0 rdinit=/init panic=-1 loglevel=4" >"$4" 2>&1 &
    qemu=$!
}
boot() {  # KERNEL CPIO LOG
    if [ -z "$accel" ] && [ -w /dev/kvm ]; then
        start_qemu kvm "$@"
        for _ in $(seq 30); do
            grep -q "Linux version\|PYKT-REPORT" "$3" 2>/dev/null && accel=kvm && break
            kill -0 "$qemu" 2>/dev/null || break
            sleep 1
        done
        if [ "$accel" != kvm ]; then
            kill "$qemu" 2>/dev/null || true
            wait "$qemu" 2>/dev/null || true
            echo "vm: KVM did not boot the guest within 30 s; using TCG from now on"
        fi
    fi
    accel=${accel:-tcg}
    [ "$accel" = tcg ] && start_qemu tcg "$@"
    echo "vm: booting with $accel"
    wait "$qemu" || true
}

status=0
for suite in $suites; do
    t0=$(date +%s)
    prepare_root "$suite"
    t1=$(date +%s)
    work=$repo/build/vm/$suite
    rm -rf "$work" && mkdir -p "$work/root"
    tar -C "$work/root" -xf "$base"
    chmod 755 "$work/root"
    # this project's libpam-python for the suite (make vm-test builds it)
    ours=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$repo/packaging/pam-python/suites/$suite/changelog")
    ours_deb=$repo/dist/libpam-python_${ours}_$(dpkg --print-architecture).deb
    cp "$deb" "${old_debs[@]}" "$ours_deb" "$work/root/tmp/"
    cp /etc/resolv.conf "$work/root/etc/resolv.conf"
    apt_get() {  # apt-get install in the root, its output appended to LOG
        local log=$1
        shift
        chroot "$work/root" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --allow-downgrades "$@" >>"$work/root/$log" 2>&1
    }
    # The fresh package alone, beside Debian's libpam-python: apt must refuse
    # it (and install nothing); the guest reports what apt said.
    rc=0
    apt_get apt-refused.log "/tmp/$(basename "$deb")" || rc=$?
    echo "$rc" >"$work/root/apt-refused.rc"
    # The earlier releases, as on a user's machine (with Debian's
    # libpam-python; the dependencies are in the root: nothing is fetched),
    # then the README's install command: both packages in one apt call.
    for pkg in "${old_debs[@]}"; do
        apt_get apt.log "/tmp/$(basename "$pkg")" || { tail -20 "$work/root/apt.log"; exit 1; }
    done
    # Debian's libpam-python, for the scenarios that show its crash, fetched
    # while the root still has its package lists and Debian's is the candidate
    mkdir -p "$work/root/pykt-pam-python"
    chroot "$work/root" sh -c 'cd /pykt-pam-python && apt-get download -q libpam-python' \
        >>"$work/root/apt.log" 2>&1 || { tail -20 "$work/root/apt.log"; exit 1; }
    # the README's install command as it writes it, taken from README.md, run
    # in a folder whose dist/install/ holds the two packages (as make deb
    # leaves them); apt's prompt answered by a configuration file, the
    # command itself unchanged
    mkdir -p "$work/root/pykt-install/dist/install"
    mv "$work/root/tmp/$(basename "$ours_deb")" "$work/root/tmp/$(basename "$deb")" \
        "$work/root/pykt-install/dist/install/"
    echo 'APT::Get::Assume-Yes "true";' >"$work/root/pykt-install/apt.conf"
    chroot "$work/root" env DEBIAN_FRONTEND=noninteractive APT_CONFIG=/pykt-install/apt.conf \
        sh -c "cd /pykt-install && $install" >>"$work/root/apt.log" 2>&1 \
        || { tail -20 "$work/root/apt.log"; exit 1; }
    rm -rf "$work/root/pykt-install"
    rm -f "$work/root/tmp/"*.deb
    # the guest needs no package lists: a smaller initramfs
    rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/var/cache/apt/*.bin
    install -m 0755 "$repo/tools/vm/init" "$work/root/init"
    install -m 0644 "$repo/tests/vm/guest.py" "$work/root/pykt-guest.py"
    install -D -m 0755 "$repo/tests/tools/probe.sh" "$work/root/usr/local/bin/pykt-probe"
    (cd "$work/root" && find . | cpio -o -H newc --quiet) >"$work/root.cpio"
    t2=$(date +%s)
    boot "$kernel" "$work/root.cpio" "$work/serial.log"
    t3=$(date +%s)
    # the report is the line after the marker (the console may put escape
    # sequences in front of the marker itself)
    tr -d '\r' <"$work/serial.log" | sed -n '/PYKT-REPORT-BEGIN/{n;p;q}' >"$work/report.json"
    rm -rf "$work/root" "$work/root.cpio"
    echo "vm: $suite: image $((t1 - t0)) s, guest root $((t2 - t1)) s, boot and scenarios $((t3 - t2)) s"
    if [ ! -s "$work/report.json" ]; then
        echo "vm: $suite: no report on the serial console; its last lines:"
        tail -30 "$work/serial.log"
        status=1
    fi
done
exit $status
