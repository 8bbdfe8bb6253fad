#!/bin/bash
# Debian's autopkgtest, in a qemu guest of SUITE booted by systemd, against
# the given .deb(s):
#
#   run-autopkgtest.sh SUITE DEB...
#
# The guest image is build-image.sh's (built or reused from the cache).
# The source tree tested is PYKT_SRC if set (it must hold debian/control and
# debian/tests/control); otherwise one assembled in a temporary folder from
# the git checkout PYKT_REPO (default: this checkout; tracked and new
# files) with its packaging/debian, tests included, as debian/.
# Prints the time of each phase; exits with autopkgtest's status (0 only if
# every test passed; 2 some skipped, 4 some failed, 16 the testbed failed...).
# Results: $PYKT_OUT (default /var/cache/pam-pykeyinit-autopkgtest/results/SUITE).
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8
here=$(cd "$(dirname "$0")" && pwd)
suite=${1:?usage: run-autopkgtest.sh SUITE DEB...}
shift
[ $# -gt 0 ] || { echo "usage: run-autopkgtest.sh SUITE DEB..." >&2; exit 64; }
debs=()
for d in "$@"; do debs+=("$(readlink -f "$d")"); done
cache=${PYKT_AUTOPKGTEST_CACHE:-/var/cache/pam-pykeyinit-autopkgtest}
out=${PYKT_OUT:-$cache/results/$suite}
now() { date +%s; }

t0=$(now)
image=$(bash "$here/build-image.sh" "$suite")
t1=$(now)
echo "run-autopkgtest: $suite: image ready in $((t1 - t0)) s ($image)"

work=$(mktemp -d "$cache/run.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -n "${PYKT_SRC-}" ]; then
    src=$(readlink -f "$PYKT_SRC")
else
    repo=${PYKT_REPO:-$(cd "$here/../.." && pwd)}
    src=$work/src
    mkdir -p "$src"
    # the checkout's tracked and new files, as make deb takes them
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
        | tar --null -cf - -T -) | tar -xf - -C "$src"
    cp -r "$src/packaging/debian" "$src/debian"
fi
[ -f "$src/debian/tests/control" ] || { echo "no debian/tests/control in $src" >&2; exit 64; }

rm -rf "$out" && mkdir -p "$out"
upgrade=(-U)
[ "${PYKT_APT_UPGRADE:-1}" = 1 ] || upgrade=()
# -B: the tree is not built, the .debs are the package under test.
# The image is opened read-only (an overlay per boot), so it stays clean.
only=()  # PYKT_TESTS: the tests to run (names, space-separated), default all
for t in ${PYKT_TESTS-}; do only+=(--test-name "$t"); done
cmd=(nice -n 19 autopkgtest "${upgrade[@]}" "${only[@]}" -B --output-dir "$out/artifacts"
    --timeout-test="${PYKT_TIMEOUT_TEST:-1800}" "${debs[@]}" "$src/" --
    qemu -q "$here/qemu-wrapper" --boot=efi -c "${PYKT_CPUS:-2}"
    --ram-size "${PYKT_RAM:-2048}" --timeout-reboot 900 "$image")
# autopkgtest-virt-qemu copies the host's /etc/timezone into each guest it
# boots with `dpkg-reconfigure tzdata`, given 30 s: too short under TCG
# (the testbed fails with a Timeout in setup_config). Hide the file from it
# only, in a mount namespace of its own (the host's /etc is not touched):
# the guests keep UTC.
if [ -s /etc/timezone ] && [ "${PYKT_COPY_TIMEZONE:-0}" != 1 ]; then
    cmd=(unshare --mount --propagation private sh -c
        'mount --bind /dev/null /etc/timezone && exec "$@"' sh "${cmd[@]}")
fi
set +e
"${cmd[@]}" 2>&1 | tee "$out/log"
rc=${PIPESTATUS[0]}
set -e
t2=$(now)

echo "run-autopkgtest: $suite: phases (from autopkgtest's own [HH:MM:SS] stamps):"
python3 - "$out/log" <<'EOF' | tee "$out/times"
import re, sys
from datetime import datetime, timedelta
stamps = []
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"autopkgtest \[(\d\d:\d\d:\d\d)\]: (.*)", line)
    if m:
        stamps.append((datetime.strptime(m[1], "%H:%M:%S"), m[2].strip()))
if not stamps:
    sys.exit("no timestamps in the log")
day, prev, t = timedelta(days=1), stamps[0][0], []
for ts, msg in stamps:  # past midnight
    while ts < prev:
        ts += day
    t.append((ts, msg)); prev = ts
def first(pred, after=None):
    for ts, msg in t:
        if (after is None or ts >= after) and pred(msg):
            return ts
start = t[0][0]
setup = first(lambda m: "test bed setup" in m)
ready = first(lambda m: m.startswith("testbed running kernel"))
if setup and ready:
    print(f"  first boot: {(setup - start).seconds} s; apt update/upgrade and testbed checks: {(ready - setup).seconds} s")
tests = []
for ts, msg in t:
    m = re.match(r"test ([^:]+): preparing testbed", msg)
    if m:
        tests.append((m[1], ts))
for i, (name, begin) in enumerate(tests):
    nxt = tests[i + 1][1] if i + 1 < len(tests) else t[-1][0]
    rebooted = first(lambda m: "test bed setup" in m, begin)
    if rebooted and rebooted > nxt:
        rebooted = None
    started = first(lambda m, n=name: m.startswith(f"test {n}: [---"), begin)
    ended = first(lambda m, n=name: m.startswith(f"test {n}: --") and m.endswith("]"), begin)
    parts = []
    if rebooted:
        parts.append(f"reboot {(rebooted - begin).seconds} s")
    if started:
        parts.append(f"apt and test deps {(started - (rebooted or begin)).seconds} s")
    if started and ended:
        parts.append(f"test run {(ended - started).seconds} s")
    parts.append(f"in all {(nxt - begin).seconds} s")
    print(f"  test {name}: " + ", ".join(parts))
print(f"  autopkgtest total: {(t[-1][0] - start).seconds} s")
EOF
echo "run-autopkgtest: $suite: total $((t2 - t0)) s (image $((t1 - t0)) s, autopkgtest $((t2 - t1)) s); autopkgtest exit $rc"
[ -f "$out/artifacts/summary" ] && { echo "run-autopkgtest: $suite: summary:"; cat "$out/artifacts/summary"; }
exit "$rc"
