"""Debian's pam_python and the GIL-safe build of packaging/pam-python, side
by side, for C programs: the isolation Debian fixed for CVE-2019-16729
(PYTHONPATH, PYTHONHOME and the user site ignored, sitecustomize and
usercustomize not run), pamh.env on Python 3, PAM from several threads of
one C program at once (patch 3001's lock), and which standard library the
interpreter takes (patch 3005).

Without a program name, Python looks for "python3" along PATH and takes its
prefix from there, and PATH is the environment of the program calling PAM:
for su, a set-user-ID program, the invoking user's. A build without patch
3005 (Debian's) is asserted to run a planted standard library, so that the
README's warning stays true and a fixed Debian package shows up here; one
with it (ours), not to. The su test runs the real set-user-ID /bin/su as a
test user, in a private mount namespace where a stack of the test's is
bind-mounted over /etc/pam.d/su (the host's file is never written); the
marker's owner, read from outside, says with which effective uid the
planted code ran."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pam_pykeyinit import host

from ..conftest import require
from ..pamlib import (
    REPO,
    TOOLS,
    Tools,
    Users,
    as_user,
    captured,
    embedded_version,
    line,
    pam_python_so,
    pamtester,
    read_capture,
)

REPORT_MODULE = TOOLS / "interpreter_report.py"
FLOOR = REPO / "bench" / "floor_module.py"  # a pam_python module that returns at once
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def builds(debian_so: Path, gil_safe_so: Path) -> dict[str, Path]:
    """Debian's build, from the archive (whichever the host has installed),
    and this project's."""
    return {"debian": debian_so, "gil-safe": gil_safe_so}


def hostile_env(top: Path) -> dict[str, str]:
    """PYTHONPATH, PYTHONHOME, a user site with a .pth file, and
    sitecustomize/usercustomize modules, each of which would import a
    module named pykt_planted_*."""
    plant = top / "plant"
    plant.mkdir()
    for name in ("sitecustomize", "usercustomize"):
        (plant / f"{name}.py").write_text(f"import pykt_planted_{name}\n")
        (plant / f"pykt_planted_{name}.py").write_text("")
    version = "{}.{}".format(*sys.version_info[:2])  # pam_python embeds the same
    user_site = top / "home" / ".local" / "lib" / f"python{version}" / "site-packages"
    user_site.mkdir(parents=True)
    (user_site / "pykt.pth").write_text("import pykt_planted_pth\n")
    (user_site / "pykt_planted_pth.py").write_text("")
    for folder in [top, *top.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o755)
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONPATH": str(plant),
        "PYTHONHOME": str(plant),
        "PYTHONUSERBASE": str(top / "home" / ".local"),
        "HOME": str(top / "home"),
        "PYTHONSTARTUP": str(plant / "sitecustomize.py"),
    }


def reports_of(
    service, debian_so: Path, gil_safe_so: Path, env: dict[str, str], folder: Path
) -> tuple[dict, dict]:
    """interpreter_report.py's report from each build (pamtester, a C
    program), run with ``env``: (ours, Debian's)."""
    reports = {}
    for name, so in builds(debian_so, gil_safe_so).items():
        out = folder / f"report-{name}.json"
        svc = service([line("session", "required", f"{so} {REPORT_MODULE}", f"report={out}")])
        proc = subprocess.run(
            ["pamtester", svc, "root", "open_session", "close_session"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        reports[name] = json.loads(out.read_text())
    return reports["gil-safe"], reports["debian"]


def test_a_module_sees_what_debians_build_shows_on_a_clean_environment(
    service, debian_pam_python_so, gil_safe_so, tmp_path
):
    """sys.path (site's folders and .pth files included), the prefixes, the
    site folders, every sys.flags field, the user site, and os.environ (the
    program's environment, which Python started without): as with Debian's
    build, from the fixed start-up of patch 3005. sys.executable is the
    documented difference: the interpreter by its versioned name, where
    Debian's build takes the python3 it finds along PATH."""
    env = {"PATH": SYSTEM_PATH, "PYKT_SEEN": "by the module"}
    ours, debians = reports_of(service, debian_pam_python_so, gil_safe_so, env, tmp_path)
    print(f"\nDebian's: {debians}\nours:     {ours}")
    version = "{}.{}".format(*ours["version"])
    assert (ours["executable"], debians["executable"]) == (
        f"/usr/bin/python{version}",
        "/usr/bin/python3",
    )
    for report in (ours, debians):
        del report["executable"]
    assert ours == debians
    assert ours["environ"] == {"PYKT_SEEN": "by the module"}


def test_isolation_is_debians(service, debian_pam_python_so, gil_safe_so, tmp_path):
    """The same report, isolated, from both builds, in an environment that
    names a planted PYTHONPATH, PYTHONHOME, user site and startup file."""
    env = hostile_env(tmp_path)
    ours, debians = reports_of(service, debian_pam_python_so, gil_safe_so, env, tmp_path)
    print(f"\nDebian's: {debians}\ngil-safe: {ours}")
    for report in (ours, debians):
        del report["executable"]  # the documented difference (above)
    assert ours == debians
    assert ours["planted"] == [] and ours["user_site"] is False and ours["env"] == "set"
    assert not any(str(tmp_path) in p for p in ours["path"])
    assert ours["flags"] == {
        "isolated": 1,
        "ignore_environment": 1,
        "no_user_site": 1,
        "dont_write_bytecode": 1,
    }


def threads_run(
    tools: Tools, svc: str, threads: int, rounds: int, folder: Path, *env: str
) -> tuple[tuple[int, str], str]:
    """pam_threads SVC pykt-gid THREADS ROUNDS (with the environment words
    ``env`` given to it alone, through env(1)) inside the log capture: its
    (status, stdout), and its stderr with the module's log for a message."""
    words = [str(tools.pam_threads), svc, Users.GID_USER, str(threads), str(rounds)]
    cmd, out = captured(["env", *env, *words], folder)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env={"PATH": SYSTEM_PATH}
    )
    logs = read_capture(out) or []
    said = proc.stderr + "\n".join(entry["text"] for entry in logs[:20])
    return (proc.returncode, proc.stdout.strip()), said


@pytest.mark.parametrize("threads", [1, 4, 8])
def test_a_c_program_calling_pam_from_threads(
    service, tree, gil_safe_so, users, tools, threads, tmp_path
):
    """pam_start ... pam_end from several threads of a C program at once,
    through pam_pykeyinit on the GIL-safe build: every call succeeds, three
    times in a row. (Debian's build crashes here from two threads on on
    Debian 12, and from one on Debian 13: README, Python PAM applications.)
    A failure shows the harness's failed calls and the module's log."""
    svc = service([line("session", "required", f"{gil_safe_so} {tree}", "force revoke")])
    for _ in range(3):
        got, said = threads_run(tools, svc, threads, 50, tmp_path)
        assert got == (0, f"ok {threads * 50}"), said


def test_threads_starting_at_once_all_read_the_python_version(
    service, tree, gil_safe_so, users, tools, tmp_path
):
    """Patch 3002 compares the version the Py_* calls reach with the one
    built in. Python 3.13's Py_GetVersion() marks its buffer filled before
    filling it, so a thread that asks while another fills it reads "" and
    was refused (the threads test above failed that way in 1 of about 400
    fresh processes on Debian 13). Here racy_version.so, preloaded, is that
    Py_GetVersion() with a window of 200 ms: eight threads start at once,
    and with the version read once (pthread_once) every session opens."""
    version = f"{embedded_version(gil_safe_so)}.0 (racy_version.so)"
    svc = service([line("session", "required", f"{gil_safe_so} {tree}", "force revoke")])
    preload = [f"LD_PRELOAD={tools.racy_version}", f"RACY_PY_VERSION={version}"]
    got, said = threads_run(tools, svc, 8, 1, tmp_path, *preload)
    assert got == (0, "ok 8"), said


class Planted:
    """A prefix a user could make: bin/python3 and, for the Python version
    pam_python embeds, lib/pythonX.Y/os.py (the landmark Python looks for)
    and an encodings package (the first module Python imports) that creates
    ``marker`` and stops the interpreter."""

    def __init__(self, top: Path, version: str, owner: int) -> None:
        self.bin = top / "bin"
        self.marker = top / "ran"
        lib = top / "lib" / f"python{version}"
        (lib / "encodings").mkdir(parents=True)
        self.bin.mkdir()
        (self.bin / "python3").write_text("#!/bin/sh\n")
        (self.bin / "python3").chmod(0o755)
        (lib / "os.py").write_text("")
        create = f"posix.open({str(self.marker)!r}, posix.O_WRONLY | posix.O_CREAT, 0o644)"
        (lib / "encodings" / "__init__.py").write_text(
            f'import posix\nposix.close({create})\nraise SystemExit("planted standard library")\n'
        )
        for path in [top, *top.rglob("*")]:
            os.lchown(path, owner, -1)

    def path(self) -> str:
        return f"{self.bin}:{SYSTEM_PATH}"


@pytest.fixture
def planted(users) -> Iterator[Planted]:
    """A planted prefix owned by the test user, in a folder everyone may
    enter (the user's own files, as an attacker's would be)."""
    so = pam_python_so()
    require(so is not None, "pam_python.so not installed")
    assert so is not None
    top = Path(tempfile.mkdtemp(prefix="pykt-planted-"))
    top.chmod(0o755)
    try:
        yield Planted(top / "prefix", embedded_version(so), Users.GID_UID)
    finally:
        shutil.rmtree(top)


def planted_code_runs(build: str, so: Path) -> bool:
    """What to expect of a build: ours has the fixed start-up, and Debian's
    runs the planted code (the premise: a Debian build with the fix makes
    the assertion on it fail, and this file says so)."""
    assert (host.fixed_startup(so) is not None) == (build == "gil-safe"), so
    return build == "debian"


@pytest.mark.parametrize("build", ["debian", "gil-safe"])
def test_path_chooses_the_standard_library_unless_fixed(
    build, planted, service, debian_pam_python_so, gil_safe_so
):
    so = builds(debian_pam_python_so, gil_safe_so)[build]
    svc = service([line("session", "required", f"{so} {FLOOR}")])
    res = pamtester(svc, Users.GID_USER, ["open_session"], env={"PATH": planted.path()})
    if planted_code_runs(build, so):
        assert planted.marker.exists(), res.stderr
    else:
        assert not planted.marker.exists() and res.rc == 0, res.stderr
        # the same stack without the planted PATH, to show that the
        # assertion above can fail only through the PATH
        assert pamtester(svc, Users.GID_USER, ["open_session"]).rc == 0


def su_stack(so: Path) -> str:
    """su's stack for the test: the user is let in without a password (the
    escalation needs only the user's own, which the test does not know),
    and the session loads a pam_python module that does nothing."""
    return "\n".join(
        [
            line("auth", "sufficient", "pam_permit.so"),
            line("account", "sufficient", "pam_permit.so"),
            line("session", "required", f"{so} {FLOOR}"),
            "",
        ]
    )


@pytest.mark.parametrize("build", ["debian", "gil-safe"])
def test_su_to_oneself_runs_the_users_code_as_root_unless_fixed(
    build, planted, debian_pam_python_so, gil_safe_so, tmp_path
):
    su = Path("/etc/pam.d/su")
    require(su.exists() and Path("/bin/su").stat().st_mode & 0o4000 != 0, "no set-user-ID su")
    so = builds(debian_pam_python_so, gil_safe_so)[build]
    stack = tmp_path / "su"
    stack.write_text(su_stack(so))
    stack.chmod(0o644)
    user = [*as_user(Users.GID_UID, Users.GID_GID), "env", "-i", f"PATH={planted.path()}"]
    script = 'mount --bind "$1" /etc/pam.d/su && shift && exec "$@"'
    private = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    proc = subprocess.run(
        [*private, str(stack), *user, "/bin/su", Users.GID_USER, "-c", "echo su ran"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if planted_code_runs(build, so):
        assert planted.marker.exists(), proc.stderr
        assert planted.marker.stat().st_uid == 0, "the planted code ran, but not as root"
    else:
        assert not planted.marker.exists(), proc.stderr
        assert proc.returncode == 0 and "su ran" in proc.stdout, proc.stderr
