"""`make bench`: what a login costs through pam_pykeyinit, side by side, in one run.

Five stacks, each `session required MODULE force revoke`, are timed as whole
`pamtester SERVICE nobody open_session close_session` runs:
  debian-floor  Debian's pam_python (its .so from the archive,
                tools/debian-pam-python.sh) with a module that returns at
                once (bench/floor_module.py): what any pam_python module
                costs on a Debian host today
  floor         the same module on this project's pam_python (the .deb
                `make pam-python-deb` built, --pam-python-deb)
  ours          pam_pykeyinit, byte-compiled by the interpreter pam_python
                embeds (as the .deb installs it and as `make bytecode`
                prepares a checkout), on this project's pam_python
  ours-debian   the same package on Debian's pam_python
  c             Linux-PAM's pam_keyinit.so
Each round runs all five in a rotating order (paired runs: drift and noise
hit every variant alike). The table gives medians over the rounds and the
medians of the paired differences from debian-floor. Then each variant
again, three times, under valgrind's callgrind: the instructions of one
login, a count that other load on the machine does not change (runs differ
by under 0.1%). The verdict is taken on that count, not on the wall clock,
whose medians move by several hundredths from one run to the next: `ours`
at most 0.60 times `debian-floor` (stretch: 0.55) and at most 1.15 times
`floor`. --stages prints the count of each step of a login through `ours`
instead.

pamtester runs with PATH alone, as systemd sets it for services (sshd, cron):
the interpreter's start-up must not depend on the shell bench is started
from. Needs root: it writes /etc/pam.d files and removes them. It uses only
the package itself, never the test suite.
"""

import argparse
import contextlib
import os
import pwd
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pam_pykeyinit import host  # noqa: E402 - after the checkout is importable

USER = "nobody"  # uid and gid differ from root's: both IDs are switched
# the verdict: ours / debian-floor (and the stretch), ours / floor
TARGET_DEBIAN, STRETCH_DEBIAN, TARGET_FLOOR = 0.60, 0.55, 1.15
# PATH alone, as systemd sets it for services such as sshd and cron (with
# Debian's pam_python a shell whose PATH began with pyenv's python3 moved
# the floor by 5 million instructions, 83.4 to 78.6).
LOGIN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
LOGIN = [USER, "open_session", "close_session"]


Edit = tuple[str, str, str]  # (file of the package, text, its replacement)


def tree(top: Path, name: str, compiled: bool, edits: "list[Edit] | None" = None) -> Path:
    """A root-owned copy of the package (0755/0644, as installed), with
    ``edits`` made; returns the path of its loader."""
    dest = top / name / "pam_pykeyinit"
    shutil.copytree(REPO / "pam_pykeyinit", dest, ignore=shutil.ignore_patterns("__pycache__"))
    for file, old, new in edits or []:
        text = (dest / file).read_text()
        if old not in text:
            raise SystemExit(f"bench --stages: {file} no longer has {old!r}; update STAGES")
        (dest / file).write_text(text.replace(old, new, 1))
    for folder in (top / name, dest):
        folder.chmod(0o755)
    for f in dest.iterdir():
        f.chmod(0o644)
    if compiled:
        so = host.pam_python()
        interpreter = (host.embedded_python(so) if so else None) or Path("/usr/bin/python3")
        subprocess.run([str(interpreter), "-m", "compileall", "-q", str(dest)], check=True)
    return dest / "pam_module.py"


def timed(service: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one login: CPU is pamtester's user and system
    time, which another process's load disturbs less than the wall clock."""
    start = time.perf_counter()
    with open(os.devnull, "wb") as null:
        pid = os.posix_spawnp(
            "pamtester",
            ["pamtester", service, *LOGIN],
            LOGIN_ENV,
            file_actions=[(os.POSIX_SPAWN_DUP2, null.fileno(), 1)],
        )
        _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{service}: pamtester failed ({status:#x}); run it by hand to see why")
    return elapsed, usage.ru_utime + usage.ru_stime


def instructions(service: str) -> int:
    """Instructions of one login, counted by valgrind's callgrind."""
    callgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    run = subprocess.run(
        [*callgrind, "pamtester", service, *LOGIN],
        capture_output=True,
        text=True,
        env=LOGIN_ENV,
    )
    counted = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or counted is None:
        raise SystemExit(f"{service}: pamtester under valgrind failed: {run.stderr[-500:]}")
    return int(counted.group(1))


def counted(service: str) -> float:
    """The median of three counts of instructions()."""
    return statistics.median(instructions(service) for _ in range(3))


@contextlib.contextmanager
def services(modules: "dict[str, str]") -> "Iterator[dict[str, str]]":
    """A service of one line, `session required MODULE force revoke`, for
    each variant's module words; yields variant -> service name, and removes
    the files again."""
    names = {name: f"pykt-bench-{secrets.token_hex(4)}" for name in modules}
    try:
        for name, module in modules.items():
            Path("/etc/pam.d", names[name]).write_text(f"session required {module} force revoke\n")
        yield names
    finally:
        for svc in names.values():
            Path("/etc/pam.d", svc).unlink(missing_ok=True)


# --stages: copies of the compiled package that stop after each step of a
# login, counted as above on this project's pam_python; each step costs the
# difference from the one before. In every copy refuse() answers
# PAM_SUCCESS at once (the stop leaves the loader without handlers), so
# only the steps are counted.
ANSWER = ("pam_module.py", "    try:  # a bare syslog", "    return 0\n    try:  # a bare syslog")
STOP = "    return {}, ''\n"
HANDOFF = (
    '    modules["keyinit"].module = load  # type: ignore[attr-defined]  # keyinit.module\n'
    '    return dict(modules["keyinit"].HANDLERS), ""\n'
)


def stop_before(text: str, *also: str) -> "list[Edit]":
    """trust.py returns before ``text``, after the lines ``also``."""
    return [("trust.py", text, "".join(f"    {a}\n" for a in also) + STOP + text)]


LOGIN_MODULES = 'LOGIN_MODULES = ("kernel", "keyinit")'
STAGES: "list[tuple[str, list[Edit]]]" = [
    (
        "pam_python runs the loader's bytecode (none of its work)",
        [("pam_module.py", 'if __name__ != "pam_pykeyinit.pam_module":', 'if __name__ == "":')],
    ),
    (
        "the first step: the package folder, the folders above it, trust.py and its bytecode",
        [
            (
                "pam_module.py",
                "    if why:\n        return {}, why\n    trust =",
                "    return {}, why\n    trust =",
            )
        ],
    ),
    ("trust.py, from its bytecode", stop_before("    why = problem(path, pkgdir, unsafe)\n")),
    (
        "the second step: every other file of the package, the walk of the path",
        stop_before("    package = _module("),
    ),
    ("the package itself (__init__.py)", stop_before("    modules = {")),
    (
        "_ctypes (dlopen of the extension and libffi)",
        stop_before("    modules = {", "import _ctypes"),
    ),
    (
        "kernel.py",
        [
            ("trust.py", LOGIN_MODULES, 'LOGIN_MODULES = ("kernel",)'),
            ("trust.py", HANDOFF, STOP),
        ],
    ),
    ("keyinit.py, with pwd", [("trust.py", HANDOFF, STOP)]),
    ("open_session and close_session", []),
]


def stages(top: Path, ours: Path) -> None:
    """Print what each step of a login through ``ours`` (this project's
    pam_python.so) costs, in instructions."""
    modules = {"floor": f"{ours} {top / 'floor_module.py'}"}
    for i, (step, edits) in enumerate(STAGES):
        loader = tree(top, f"stage{i}", True, [ANSWER, *edits] if edits else [])
        modules[step] = f"{ours} {loader}"
    with services(modules) as names:
        counts = {n: counted(svc) for n, svc in names.items()}
    print("one login through pam_pykeyinit on this project's pam_python, step by step:")
    print("instructions (valgrind's callgrind, median of 3), millions")
    before = counts["floor"]
    for step, _ in STAGES:
        print(f"{(counts[step] - before) / 1e6:+7.2f}  {step}")
        before = counts[step]
    total = counts[STAGES[-1][0]]
    print(
        f"{(total - counts['floor']) / 1e6:+7.2f}  in all, over the floor's"
        f" {counts['floor'] / 1e6:.2f}: {total / counts['floor']:.3f}"
    )


def pam_python_sos(top: Path, deb: Path) -> tuple[Path, Path]:
    """(this project's pam_python.so, from ``deb``: the Makefile names the
    one built for this host's suite, dist/ may also hold the other suite's;
    Debian's, from the archive), unpacked under ``top``."""
    if not deb.exists():
        raise SystemExit(f"{deb} is missing: make pam-python-deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(top / "pam-python")], check=True)
    (ours,) = sorted((top / "pam-python").rglob("pam_python.so"))
    script = REPO / "tools" / "debian-pam-python.sh"
    found = subprocess.run(["sh", str(script), str(top / "debian")], capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"Debian's pam_python: {found.stderr.strip()}")
    return ours, Path(found.stdout.strip())


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the round-by-round differences a - b, in ms."""
    diffs = [(x - y) * 1000 for x, y in zip(a, b)]
    q1, _, q3 = statistics.quantiles(diffs, n=4)
    return statistics.median(diffs), q1, q3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument(
        "--pam-python-deb", type=Path, required=True, help="this project's build for this suite"
    )
    parser.add_argument(
        "--stages", action="store_true", help="only the instructions of each step of a login"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("make bench must run as root (it writes /etc/pam.d files)")
    pwd.getpwnam(USER)

    top = Path(tempfile.mkdtemp(prefix="pykt-bench-"))
    top.chmod(0o755)
    floor = top / "floor_module.py"
    shutil.copyfile(REPO / "bench" / "floor_module.py", floor)
    floor.chmod(0o644)
    try:
        ours, debians = pam_python_sos(top, args.pam_python_deb)
        if args.stages:
            stages(top, ours)
        else:
            timings(top, args, ours, debians)
    finally:
        shutil.rmtree(top)
    return 0


def timings(top: Path, args: argparse.Namespace, ours: Path, debians: Path) -> None:
    """The paired timings and the instruction counts of the five variants,
    printed, and the verdict."""
    floor = top / "floor_module.py"
    package = tree(top, "compiled", True)
    modules = {
        "debian-floor": f"{debians} {floor}",
        "floor": f"{ours} {floor}",
        "ours": f"{ours} {package}",
        "ours-debian": f"{debians} {package}",
        "c": "pam_keyinit.so",
    }
    names = list(modules)
    samples: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    with services(modules) as service:
        for name in names:  # warm the page cache once
            timed(service[name])
        for i in range(args.rounds):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                wall, used = timed(service[name])
                samples[name].append(wall)
                cpu[name].append(used)
        counts = {n: counted(service[n]) for n in names}

    base = "debian-floor"
    print(f"pamtester open_session+close_session; {args.rounds} paired rounds")
    print("instructions of one login (valgrind's callgrind, median of 3 runs)")
    print(f"{'variant':<13} {'millions':>9} {'/ debian-floor':>15} {'/ floor':>8}")
    for n in names:
        ratio, to_ours = counts[n] / counts[base], counts[n] / counts["floor"]
        print(f"{n:<13} {counts[n] / 1e6:9.2f} {ratio:15.3f} {to_ours:8.3f}")
    print("wall clock, ms: the variant's median, and the median and quartiles of its")
    print("round-by-round differences from debian-floor; pamtester's CPU time (median)")
    print(f"{'variant':<13} {'median':>8} {'- debian':>9} {'p25':>7} {'p75':>7} {'CPU':>7}")
    for n in names:
        extra, q1, q3 = paired(samples[n], samples[base])
        wall, used = statistics.median(samples[n]) * 1000, statistics.median(cpu[n]) * 1000
        print(f"{n:<13} {wall:8.2f} {extra:+9.2f} {q1:+7.2f} {q3:+7.2f} {used:7.2f}")
    to_debian = counts["ours"] / counts[base]
    to_floor = counts["ours"] / counts["floor"]
    wall = statistics.median(samples["ours"]) / statistics.median(samples[base])
    met = to_debian <= TARGET_DEBIAN and to_floor <= TARGET_FLOOR
    print(
        f"ours / debian-floor = {to_debian:.3f} in instructions ({wall:.3f} in wall clock"
        f" medians), target {TARGET_DEBIAN:.2f}, stretch {STRETCH_DEBIAN:.2f}"
        f"{' (met)' if to_debian <= STRETCH_DEBIAN else ''};"
        f" ours / floor = {to_floor:.3f}, target {TARGET_FLOOR:.2f}:"
        f" {'meets' if met else 'misses'} the targets"
    )


if __name__ == "__main__":
    sys.exit(main())
