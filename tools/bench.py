"""`make bench`: pam_pykeyinit's cost per login, side by side, in one run.

Four stacks, each `session required MODULE force revoke`, are timed as whole
`pamtester SERVICE nobody open_session close_session` runs:
  floor     pam_python with a module that returns at once (bench/floor_module.py)
  compiled  pam_pykeyinit byte-compiled by the interpreter pam_python embeds,
            as the .deb installs it and as `make bytecode` prepares a checkout
  checkout  pam_pykeyinit from a plain checkout: no __pycache__, so every
            login compiles every module it imports
  c         Linux-PAM's pam_keyinit.so
and, when `make pam-python-deb` has built the GIL-safe pam_python
(--pam-python-deb, which make bench gives), the floor and the compiled
module again with that pam_python.so (named by path): for C programs it
must cost what Debian's costs.
Each round runs all four in a rotating order (paired runs: drift and noise hit
every variant alike). The table gives medians over the rounds; the costs are
medians of the paired differences from the floor, and the ratios are those of
the medians. Then each of floor, compiled, checkout and c again, three
times, under valgrind's callgrind: the instructions of one login, a count
that other load on the machine does not change (runs differ by under
0.1%). The verdict on the target is taken on that count, not on the
ratio of wall-clock medians, which moves by several hundredths from one run
to the next on an idle machine (README.md, "Speed", has three runs in a
row). --stages prints the count of each step of a login instead.

pamtester runs with PATH alone, as systemd sets it for services (sshd, cron):
the interpreter's start-up reads the environment, and the shell bench is
started from must not move the floor. Needs root: it writes /etc/pam.d
files and removes them. It uses only the package itself, never the test
suite.
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
TARGET = 1.10
# PATH alone, as systemd sets it for services such as sshd and cron: the
# interpreter pam_python starts looks for its own files along PATH, and a
# shell whose PATH began with pyenv's python3 moved the floor by 5 million
# instructions (83.4 to 78.6).
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
# login, counted as above; each step costs the difference from the one
# before. In every copy refuse() answers PAM_SUCCESS at once (the stop
# leaves the loader without handlers), so only the steps are counted.
ANSWER = ("pam_module.py", "    try:  # a bare syslog", "    return 0\n    try:  # a bare syslog")
STOP = "    return {}, ''\n"


def stop_before(text: str, *also: str) -> "list[Edit]":
    """trust.py returns before ``text``, after the lines ``also``."""
    return [("trust.py", text, "".join(f"    {a}\n" for a in also) + STOP + text)]


LOGIN_MODULES = 'LOGIN_MODULES = ("kernel", "keyinit")'
STAGES: "list[tuple[str, list[Edit]]]" = [
    (
        "pam_python compiles the loader (none of it runs)",
        [("pam_module.py", 'if __name__ != "pam_pykeyinit.pam_module":', 'if __name__ == "":')],
    ),
    (
        "the first step: the package folder, the folders above it, trust.py and its bytecode",
        [
            (
                "pam_module.py",
                "    if why:\n        return {}, why\n    name",
                "    return {}, why\n    name",
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
            ("trust.py", '    return dict(modules["keyinit"].HANDLERS), ""\n', STOP),
        ],
    ),
    (
        "keyinit.py, with pwd",
        [("trust.py", '    return dict(modules["keyinit"].HANDLERS), ""\n', STOP)],
    ),
    ("open_session and close_session", []),
]


def stages(top: Path) -> None:
    """Print what each step of a login costs, in instructions."""
    modules = {"floor": f"pam_python.so {top / 'floor_module.py'}"}
    for i, (step, edits) in enumerate(STAGES):
        loader = tree(top, f"stage{i}", True, [ANSWER, *edits] if edits else [])
        modules[step] = f"pam_python.so {loader}"
    with services(modules) as names:
        counts = {n: counted(svc) for n, svc in names.items()}
    print("one login, step by step: instructions (valgrind's callgrind, median of 3), millions")
    before = counts["floor"]
    for step, _ in STAGES:
        print(f"{(counts[step] - before) / 1e6:+7.2f}  {step}")
        before = counts[step]
    total = counts[STAGES[-1][0]]
    print(
        f"{(total - counts['floor']) / 1e6:+7.2f}  in all, over the floor's"
        f" {counts['floor'] / 1e6:.2f}: {total / counts['floor']:.3f}"
    )


def gil_safe_pam_python(top: Path, deb: Path | None) -> Path | None:
    """pam_python.so of the GIL-safe .deb built for this host's suite (the
    Makefile names it: dist/ may also hold the other suite's, built by
    check-suite, which links another libpython), unpacked under top."""
    if deb is None or not deb.exists():
        return None
    subprocess.run(["dpkg-deb", "-x", str(deb), str(top / "pam-python")], check=True)
    found = sorted((top / "pam-python").rglob("pam_python.so"))
    return found[0] if found else None


def paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median and quartiles of the round-by-round differences a - b, in ms."""
    diffs = [(x - y) * 1000 for x, y in zip(a, b)]
    q1, _, q3 = statistics.quantiles(diffs, n=4)
    return statistics.median(diffs), q1, q3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=150)
    parser.add_argument("--pam-python-deb", type=Path, help="the GIL-safe build for this suite")
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
        if args.stages:
            stages(top)
        else:
            timings(top, args)
    finally:
        shutil.rmtree(top)
    return 0


def timings(top: Path, args: argparse.Namespace) -> None:
    """The paired timings and the instruction counts of the four variants
    (six with the GIL-safe pam_python), printed."""
    floor = top / "floor_module.py"
    modules = {
        "floor": f"pam_python.so {floor}",
        "compiled": f"pam_python.so {tree(top, 'compiled', True)}",
        "checkout": f"pam_python.so {tree(top, 'checkout', False)}",
        "c": "pam_keyinit.so",
    }
    gil_safe = gil_safe_pam_python(top, args.pam_python_deb)
    if gil_safe is not None:
        modules["floor-gil"] = f"{gil_safe} {floor}"
        modules["compiled-gil"] = f"{gil_safe} {modules['compiled'].split()[1]}"
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
        counts = {n: counted(service[n]) for n in ("floor", "compiled", "checkout", "c")}

    med = {n: statistics.median(v) * 1000 for n, v in samples.items()}
    print(f"pamtester open_session+close_session, {args.rounds} paired rounds, ms")
    print("wall clock: median of the variant; the paired difference from the floor,")
    print("round by round: its median and quartiles (the spread, to judge the noise)")
    print(f"{'variant':<12} {'median':>8} {'- floor':>8} {'p25':>7} {'p75':>7} {'/ floor':>8}")
    for n in names:
        extra, q1, q3 = paired(samples[n], samples["floor"])
        print(
            f"{n:<12} {med[n]:8.2f} {extra:+8.2f} {q1:+7.2f} {q3:+7.2f}"
            f" {med[n] / med['floor']:8.3f}"
        )
    print("CPU time of pamtester (user + system), the same way")
    cmed = {n: statistics.median(v) * 1000 for n, v in cpu.items()}
    for n in names:
        extra, q1, q3 = paired(cpu[n], cpu["floor"])
        print(
            f"{n:<12} {cmed[n]:8.2f} {extra:+8.2f} {q1:+7.2f} {q3:+7.2f}"
            f" {cmed[n] / cmed['floor']:8.3f}"
        )
    print("instructions of one login (valgrind's callgrind, median of 3 runs), millions")
    for n, count in counts.items():
        extra = (count - counts["floor"]) / 1e6
        print(f"{n:<12} {count / 1e6:8.2f} {extra:+8.2f} {'':>15} {count / counts['floor']:8.3f}")
    print()
    if gil_safe is not None:
        extra, q1, q3 = paired(samples["floor-gil"], samples["floor"])
        print(
            f"GIL-safe pam_python ({gil_safe.name} from dist/) for a C program: floor"
            f" {extra:+.2f} ms (p25 {q1:+.2f}, p75 {q3:+.2f}) against Debian's"
        )
    for n in ("compiled", "checkout"):
        ratio = counts[n] / counts["floor"]
        verdict = "meets" if ratio <= TARGET else "misses"
        print(
            f"{n} / floor = {ratio:.3f} in instructions ({med[n] / med['floor']:.3f} in wall"
            f" clock medians, which move by several hundredths from run to run):"
            f" {verdict} the target of {TARGET:.2f}"
        )
    print(f"floor / c = {med['floor'] / med['c']:.2f}  (pam_python's own price)")


if __name__ == "__main__":
    sys.exit(main())
