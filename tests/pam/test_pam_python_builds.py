"""Debian's pam_python and the GIL-safe build of packaging/pam-python, side
by side, for C programs: the isolation Debian fixed for CVE-2019-16729
(PYTHONPATH, PYTHONHOME and the user site ignored, sitecustomize and
usercustomize not run), pamh.env on Python 3, and PAM from several threads
of one C program at once (patch 3001's lock)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..pamlib import TOOLS, Users, line, pam_python_so, system

REPORT_MODULE = TOOLS / "interpreter_report.py"


def builds(gil_safe_so: Path) -> dict[str, Path]:
    installed = pam_python_so()
    assert installed is not None
    return {"installed": installed, "gil-safe": gil_safe_so}


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


def test_isolation_is_debians(service, gil_safe_so, tmp_path):
    """The same report, isolated, from both builds (pamtester, a C program)."""
    env = hostile_env(tmp_path)
    reports = {}
    for name, so in builds(gil_safe_so).items():
        out = tmp_path / f"report-{name}.json"
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
    ours, debians = reports["gil-safe"], reports["installed"]
    print(f"\ninstalled: {debians}\ngil-safe:  {ours}")
    assert ours == debians
    assert ours["planted"] == [] and ours["user_site"] is False and ours["env"] == "set"
    assert not any(str(tmp_path) in p for p in ours["path"])
    assert ours["flags"] == {
        "isolated": 1,
        "ignore_environment": 1,
        "no_user_site": 1,
        "dont_write_bytecode": 1,
    }


@pytest.fixture(scope="module")
def pam_threads(tmp_path_factory) -> Path:
    exe = tmp_path_factory.mktemp("threads") / "pam_threads"
    source = Path(__file__).parents[1] / "harness" / "pam_threads.c"
    system(
        "gcc",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O2",
        "-pthread",
        "-o",
        str(exe),
        str(source),
        "-lpam",
    )
    return exe


@pytest.mark.parametrize("threads", [1, 4, 8])
def test_a_c_program_calling_pam_from_threads(
    service, tree, gil_safe_so, users, pam_threads, threads
):
    """pam_start ... pam_end from several threads of a C program at once,
    through pam_pykeyinit on the GIL-safe build: every call succeeds, three
    times in a row. (Debian's build crashes here from two threads on on
    Debian 12, and from one on Debian 13: README, Python PAM applications.)"""
    svc = service([line("session", "required", f"{gil_safe_so} {tree}", "force revoke")])
    for _ in range(3):
        proc = subprocess.run(
            [str(pam_threads), svc, Users.GID_USER, str(threads), "50"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert (proc.returncode, proc.stdout.strip()) == (0, f"ok {threads * 50}"), proc.stderr
