"""Python programs that open PAM sessions in-process, as real drivers:
pamela and python-pam (the PyPI releases pinned in requirements-dev.txt)
in a child Python (tests/tools/pyclient.py), through the GIL-safe pam_python
of packaging/pam-python (`make pam-python-deb`; a private copy of its
pam_python.so, named by path in the stacks, so the system's package is never
replaced), side by side with pam_keyinit.so on the same stack. Keyrings are
read from outside the module: keyctl(1) in pam_exec's probe and in children
of the client's threads.

With the pam_python the system has, Debian's build, the same client dies
with SIGSEGV: that is asserted too, so that the README's claim stays true
and a fixed Debian package shows up here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pam_pykeyinit import host

from ..conftest import require
from ..pamlib import (
    C_MODULE,
    REPO,
    REVOKED,
    TOOLS,
    Users,
    embedded_version,
    key_users,
    line,
    probe_shape,
    ses,
    system,
)

CLIENT = TOOLS / "pyclient.py"
THREAD_USERS = [(f"pykt-c{i:02}", 47100 + i) for i in range(16)]


@pytest.fixture(scope="session")
def thread_users(prerequisites):
    def remove() -> None:
        for name, _ in THREAD_USERS:
            subprocess.run(["userdel", name], capture_output=True)
            subprocess.run(["groupdel", name], capture_output=True)

    remove()
    for name, uid in THREAD_USERS:
        system("useradd", "-M", "-U", "-s", "/bin/sh", "-u", str(uid), name)
    yield THREAD_USERS
    remove()


def client(scenario: str, service: str, users: list[str], *options: str) -> tuple[int, dict, str]:
    """pyclient.py in the test venv's Python (pamela and python-pam are
    installed there; the same Python version as pam_python's libpython)."""
    proc = subprocess.run(
        [sys.executable, str(CLIENT), scenario, service, *users, *options],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )
    out = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, out, proc.stderr


class Stacks:
    """The same stack twice, with pam_keyinit.so and with pam_pykeyinit on
    the GIL-safe pam_python; the probe appends to a file per stack."""

    def __init__(self, service, tree: Path, so: Path, args: str, folder: Path) -> None:
        self.out = {"c": folder / "probe-c", "ours": folder / "probe-ours"}
        probe = tree.parents[2] / "probe.sh"
        modules = {"c": C_MODULE, "ours": f"{so} {tree}"}
        self.service = {
            name: service(
                [
                    line("auth", "optional", "pam_permit.so"),
                    line("session", "required", module, args),
                    line("session", "optional", "pam_exec.so", f"quiet {probe} {self.out[name]}"),
                ]
            )
            for name, module in modules.items()
        }

    def probes(self, name: str) -> list[str]:
        path = self.out[name]
        lines = path.read_text().splitlines() if path.exists() else []
        return [x[len("probe: ") :] for x in lines if x.startswith("probe: ")]


@pytest.fixture
def stacks(service, tree, gil_safe_so, tmp_path):
    tmp_path.chmod(0o755)
    tmp_path.parent.chmod(0o755)

    def make(args: str = "force revoke") -> Stacks:
        return Stacks(service, tree, gil_safe_so, args, tmp_path)

    return make


# -- open and close, two users -------------------------------------------------


@pytest.mark.parametrize("library", ["pamela", "python-pam"])
def test_two_users_like_pam_keyinit(stacks, users, library):
    """Each user's session gets a _ses of the user's with _uid.N linked, as
    keyctl sees it from the probe; pamela opens and closes in two handles
    (pam_keyinit.so is unloaded in between, so nothing is revoked),
    python-pam in one (the keyring is revoked at close)."""
    made = stacks()
    names = [Users.GID_USER, Users.PEER]
    for name in ("c", "ours"):
        rc, out, err = client(library, made.service[name], names)
        assert rc == 0, (name, out, err)
    ours, theirs = made.probes("ours"), made.probes("c")
    assert probe_shape(ours) == probe_shape(theirs)
    runs = probe_runs(ours)
    opened = [r for r in runs if r["type"] == "open_session"]
    assert [r["s"] for r in opened] == [
        ses(Users.GID_UID, Users.GID_GID),
        ses(Users.PEER_UID, Users.PEER_UID),
    ]
    assert [[x.rsplit(";", 1)[-1] for x in r["links"]] for r in opened] == [
        [f"_uid.{Users.GID_UID}"],
        [f"_uid.{Users.PEER_UID}"],
    ]
    closed = [r["s"] for r in runs if r["type"] == "close_session"]
    revoked = library == "python-pam"
    assert [c == REVOKED for c in closed] == [revoked, revoked], closed
    for r in runs:  # every ID of the client as it was, saved ones included
        assert (r["Uid"], r["Gid"]) == ("0 0 0 0", "0 0 0 0"), r


def probe_runs(probes: list[str]) -> list[dict]:
    """The probe's runs: type, s, links, Uid and Gid of the client."""
    runs: list[dict] = []
    for p in probes:
        if p.startswith("type="):
            runs.append({"type": p[5:], "links": []})
        elif p.startswith("s="):
            runs[-1]["s"] = p[2:]
        elif p.startswith("link="):
            runs[-1]["links"].append(p[5:])
        elif p.startswith(("Uid: ", "Gid: ")):
            runs[-1][p[:3]] = p[5:]
    return runs


# -- a long-lived process -------------------------------------------------------


def settled_keys(uid: int) -> int:
    """The uid's key count once it has been the same for 3 readings 0.5 s apart."""
    import time

    last, same, waited = key_users(uid)[0], 0, 0.0
    while same < 3 and waited < 30:
        time.sleep(0.5)
        waited += 0.5
        now = key_users(uid)[0]
        same, last = (same + 1, now) if now == last else (0, now)
    return last


def test_500_sessions_in_one_process(stacks, service, users, gil_safe_so, capsys):
    """500 pamela sessions (1,000 handles) in one process: the user's keys
    back at their baseline with either module, and the process's memory
    flat with pam_pykeyinit, with pam_keyinit.so and with a pam_python
    module that does nothing (before patch 3004 pam_python itself kept
    about 17 KB per handle)."""
    made = stacks()
    noop = service(
        [line("session", "required", f"{gil_safe_so} {REPO / 'bench' / 'floor_module.py'}")]
    )
    uid = Users.GID_UID
    client("pamela", made.service["ours"], [Users.GID_USER])  # _uid.N and _uid_ses.N exist
    baseline = settled_keys(uid)
    results = {}
    for name, svc in (("ours", made.service["ours"]), ("c", made.service["c"]), ("noop", noop)):
        rc, out, err = client("repeat", svc, [Users.GID_USER], "--count", "500")
        assert rc == 0, (name, out, err)
        results[name] = (out, settled_keys(uid))
    growth = {
        n: out["rss_kib_at_end"] - out["rss_kib_after_tenth"] for n, (out, _) in results.items()
    }
    with capsys.disabled():
        for name, (out, keys) in results.items():
            print(
                f"\n[python client] {name}: 500 pamela sessions in one process: VmRSS"
                f" {out['rss_kib_after_tenth']} KiB after 50, {out['rss_kib_at_end']} KiB"
                f" after 500 (+{growth[name]}); keys of uid {uid}: {baseline} before, {keys} after"
            )
    assert results["ours"][1] == baseline and results["c"][1] == baseline
    assert all(g < 1024 for g in growth.values()), growth  # KiB over 450 sessions


def test_16_threads_each_with_its_own_user(stacks, thread_users, capsys):
    """16 threads open and close at once, each its own handle and user, each
    finds its own user's _ses (keyctl in a child of that thread); a watcher
    thread reading its own uid and gid sees no change with pam_pykeyinit.
    With pam_keyinit.so before Linux-PAM 1.5.3, glibc moves every thread."""
    made = stacks()
    names = [name for name, _ in thread_users]
    version = host.linux_pam_version() or (0,)
    for name in ("ours", "c"):
        rc, out, err = client("threads", made.service[name], names, "--watch", "10000")
        assert rc == 0, (name, out, err)
        wrong = [u for u, uid in thread_users if not out["keyrings"][u].endswith(ses(uid, uid))]
        watch = out["watch"]
        with capsys.disabled():
            print(
                f"\n[python client] {name} (Linux-PAM {version}): 16 threads, watcher: {watch};"
                f" {len(wrong)} threads with another owner's keyring"
            )
        assert watch["reads"] >= 10000
        if name == "ours" or version >= (1, 5, 3):
            assert watch["changes"] == 0 and wrong == [], (name, watch, out["keyrings"])


@pytest.mark.parametrize("workers", [1, 4])
def test_jupyterhubs_executor(stacks, users, workers, capsys):
    """open_session and, later, close_session on a ThreadPoolExecutor, as
    JupyterHub's PAMAuthenticator does (1 worker up to 5.0, 4 from 5.2).
    Each in a handle of its own, ended before the next: the close finds
    nothing to revoke, with either module, and the keyring made at open
    stays the session keyring of the worker that opened it."""
    made = stacks()
    names = [Users.GID_USER, Users.PEER, Users.GID_USER]
    runs = {}
    for name in ("c", "ours"):
        rc, out, err = client("executor", made.service[name], names, "--count", str(workers))
        assert rc == 0, (name, out, err)
        runs[name] = out["runs"]
    with capsys.disabled():
        for name, rows in runs.items():
            print(f"\n[python client] {name}, {workers} worker(s): {rows}")
    for name, rows in runs.items():
        for row, user, uid, gid in zip(
            rows,
            names,
            (Users.GID_UID, Users.PEER_UID, Users.GID_UID),
            (Users.GID_GID, Users.PEER_UID, Users.GID_GID),
        ):
            assert row["at_open"].endswith(ses(uid, gid)), (name, user, row)
            assert row["opened_after_close"] == "Permission denied", (name, row)  # not revoked
            if row["same_thread"]:
                assert row["at_close"] == row["at_open"], (name, row)
    if workers == 1:
        assert all(r["same_thread"] for rows in runs.values() for r in rows), runs


def test_a_thread_that_only_authenticated_exits(service, tree, gil_safe_so, users):
    """JupyterHub's authenticate on a service whose pam_python line is in the
    session stack only: pam_start loads pam_python.so (and the libpython it
    needs) without calling it, and pam_end unloads it. With Python 3.13,
    libpython's constructor (mimalloc's) gives the loading thread a key
    whose destructor lies in libpython, so that thread's exit jumped into
    the unmapped library (SIGSEGV) until patch 3003 pinned libpython at
    load time (with the 3003 that pinned it at pam_python's first call,
    this test crashed every time on Debian 13). Python 3.11 (Debian 12) has
    no such constructor: there it passes with either build."""
    svc = service(
        [
            line("auth", "required", "pam_permit.so"),
            line("account", "required", "pam_permit.so"),
            line("session", "required", f"{gil_safe_so} {tree}", "force revoke"),
        ]
    )
    rc, out, err = client("authenticate", svc, [Users.GID_USER, Users.PEER])
    assert (rc, out.get("authenticated")) == (
        0,
        {Users.GID_USER: "ok", Users.PEER: "ok"},
    ), err


# -- the host's interpreter ------------------------------------------------------


def test_debians_pam_python_crashes_a_python_client(service, tree, users):
    """The pam_python the system has: Debian's build kills the client with
    SIGSEGV at the first pam_python line; a GIL-safe one (this project's,
    or a fixed Debian package) lets it open and close the session."""
    installed = host.pam_python()
    require(installed is not None, "pam_python.so not found where libpam looks")
    assert installed is not None
    svc = service([line("session", "required", f"pam_python.so {tree}", "force revoke")])
    rc, _, err = client("pamela", svc, [Users.GID_USER])
    if host.gil_safe(installed):
        assert rc == 0, err
    else:
        assert rc == -11, (rc, err)


def test_a_pam_pykeyinit_the_host_imported_from_elsewhere_is_refused(
    service, tree, gil_safe_so, users, tmp_path
):
    """The host imported its own pam_pykeyinit (here: a copy of the package
    on PYTHONPATH): the login is refused with one line, the host's copy is
    never used to log in, and sys.path/PYTHONPATH change nothing else."""
    other = tmp_path / "other"
    shutil.copytree(REPO / "pam_pykeyinit", other / "pam_pykeyinit")
    marker = tmp_path / "marker"
    (other / "pam_pykeyinit" / "keyinit.py").write_text(f"open({str(marker)!r}, 'w')\n")
    svc = service([line("session", "required", f"{gil_safe_so} {tree}", "force revoke")])
    script = (
        "import sys, pamela; sys.path.insert(0, sys.argv[1]); import pam_pykeyinit\n"
        "try:\n    pamela.open_session(sys.argv[2], service=sys.argv[3])\n"
        "except pamela.PAMError as e:\n    print(e.errno)\n"
    )
    from ..pamlib import captured, read_capture

    cmd, out = captured([sys.executable, "-c", script, str(other), Users.GID_USER, svc], tmp_path)
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(other)},
    )
    assert proc.stdout.strip() == "3", (proc.stdout, proc.stderr)  # PAM_SERVICE_ERR
    assert not marker.exists()
    logs = read_capture(out) or []
    refusals = [e["text"] for e in logs if "refusing to load" in e["text"]]
    assert len(refusals) == 1, logs
    assert (
        f"another pam_pykeyinit is loaded in this process: ['{other / 'pam_pykeyinit'}']"
        in (refusals[0])
    ), refusals


@pytest.fixture(scope="session")
def foreign_python(gil_safe_so) -> Path:
    """A CPython of another minor version than the one pam_python embeds:
    the other Debian suite's default Python, built from the archive's
    source by tools/foreign-python.sh (cached in /var/cache; `make check`
    builds it before the suite runs)."""
    version = embedded_version(gil_safe_so)
    out = system("bash", str(REPO / "tools" / "foreign-python.sh"), version)
    return Path(out.strip().splitlines()[-1])


def test_a_program_on_another_python_is_refused(
    service, tree, gil_safe_so, users, foreign_python, tmp_path
):
    """A Python program of another version than pam_python's libpython: the
    GIL-safe build refuses it with PAM_SERVICE_ERR and one syslog line,
    and neither crashes nor runs the module (patch 3002)."""
    import pamela

    from ..pamlib import captured, read_capture

    svc = service([line("session", "required", f"{gil_safe_so} {tree}", "force debug")])
    pamela_dir = str(Path(pamela.__file__).parent)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import pamela\n"
        "try:\n    pamela.open_session(sys.argv[2], service=sys.argv[3]); print(0)\n"
        "except pamela.PAMError as e:\n    print(e.errno)\n"
    )
    python = foreign_python
    cmd, out = captured(
        [str(python), "-I", "-c", script, pamela_dir, Users.GID_USER, svc], tmp_path
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    logs = read_capture(out) or []
    refusals = [e["text"] for e in logs if "refusing" in e["text"]]
    print(f"\n{python}: exit {proc.returncode}, PAM {proc.stdout.strip()}: {refusals}")
    assert (proc.returncode, proc.stdout.strip()) == (0, "3"), (python, proc.stderr)
    assert len(refusals) == 1 and "built for Python" in refusals[0], logs
    assert not [e for e in logs if "pam_pykeyinit(" in e["text"]], logs  # never ran
