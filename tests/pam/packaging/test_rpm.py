"""The RPM: built with `make rpm`, its payload checked and run.

Debian has rpmbuild but not Fedora's pyproject macros, so `make rpm` uses
packaging/rpm/macros.debian; what is checked here is what that build gives:
a noarch package with the Python package and the loader, no scriptlets
(authselect owns Fedora's PAM stacks), and a payload that works as a module
when pam_python is pointed at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from ...conftest import require_root
from ...pamlib import REPO, REVOKED, Users, line, pamtester, py_module, ses, system

pytestmark = [pytest.mark.root, pytest.mark.packaging]


@pytest.fixture(scope="module")
def rpm() -> Path:
    require_root()
    system("make", "-C", str(REPO), "rpm")
    rpms = sorted((REPO / "dist").glob("pam_pykeyinit-*.noarch.rpm"))
    assert rpms
    return rpms[-1]


def test_contents_and_no_scriptlets(rpm):
    files = system("rpm", "-qlp", str(rpm)).split()
    assert "/usr/lib/security/pam_pykeyinit.py" in files
    assert any(f.endswith("/pam_pykeyinit/keyinit.py") for f in files)
    # (Debian 13's rpm compresses man pages, Debian 12's does not)
    pages = {f.rsplit(".", 1)[0] if f.endswith((".gz", ".xz", ".bz2")) else f for f in files}
    assert {"/usr/share/man/man8/pam_pykeyinit.8", "/usr/share/man/man1/pykeyinit.1"} <= pages
    assert "/usr/bin/pykeyinit" in files
    assert system("rpm", "-qp", "--qf", "%{ARCH}", str(rpm)) == "noarch"
    assert system("rpm", "-qp", "--scripts", str(rpm)).strip() == ""
    # only a pam_python with the fixed start-up (patch 3005) will do
    requires = system("rpm", "-qp", "--requires", str(rpm)).splitlines()
    assert "pam_python-fixed-startup >= 1" in requires, requires


def test_payload_runs_as_a_module(rpm, probe, service, users):
    top = Path(tempfile.mkdtemp(prefix="pykt-rpm-"))
    try:
        top.chmod(0o755)
        cpio = subprocess.run(["rpm2cpio", str(rpm)], capture_output=True, check=True).stdout
        subprocess.run(["cpio", "-idm", "--quiet"], input=cpio, cwd=top, check=True)
        link = os.readlink(top / "usr/lib/security/pam_pykeyinit.py")
        module = top / link.lstrip("/")
        assert module.name == "pam_module.py" and module.exists()
        svc = service([line("session", "required", py_module(module), "force revoke"), probe])
        res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"])
        assert res.rc == 0, res.stderr
        assert f"s={ses(Users.GID_UID, Users.GID_GID)}" in res.probes
        assert f"s={REVOKED}" in res.probes
    finally:
        shutil.rmtree(top)


# -- pam_python for Fedora and RHEL (packaging/rpm/pam_python.spec) ----------


@pytest.fixture(scope="module")
def pam_python_rpm() -> Path:
    require_root()
    system("make", "-C", str(REPO), "pam-python-rpm")
    (rpm,) = sorted((REPO / "dist").glob("pam_python-[0-9]*.rpm"))
    return rpm


def test_the_spec_applies_the_series(pam_python_rpm):
    """The spec's patches are packaging/pam-python/patches/series, in order."""
    series = REPO / "packaging" / "pam-python" / "patches" / "series"
    wanted = [x for x in series.read_text().splitlines() if x and not x.startswith("#")]
    spec = (REPO / "packaging" / "rpm" / "pam_python.spec").read_text().splitlines()
    assert [x.split()[1] for x in spec if x.startswith("Patch")] == wanted
    log = (REPO / "build" / "rpm-pam-python" / "build.log").read_text()
    assert [name for name in wanted if f"SOURCES/{name}" not in log] == []  # all applied


def test_the_rpm_pam_python_is_gil_safe_and_runs_the_module(
    pam_python_rpm, tree, probe, service, users
):
    from pam_pykeyinit import host

    assert (
        system("rpm", "-qlp", str(pam_python_rpm))
        .split()
        .count("/usr/lib64/security/pam_python.so")
        == 1
    )
    provides = system("rpm", "-qp", "--provides", str(pam_python_rpm)).splitlines()
    assert "pam_python-fixed-startup = 1" in provides, provides
    top = Path(tempfile.mkdtemp(prefix="pykt-rpm-"))
    try:
        top.chmod(0o755)
        cpio = subprocess.run(["rpm2cpio", str(pam_python_rpm)], capture_output=True, check=True)
        subprocess.run(["cpio", "-idm", "--quiet"], input=cpio.stdout, cwd=top, check=True)
        so = top / "usr/lib64/security/pam_python.so"
        assert host.gil_safe(so)
        svc = service([line("session", "required", f"{so} {tree}", "force revoke"), probe])
        res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"])
        assert res.rc == 0, res.stderr
        assert f"s={ses(Users.GID_UID, Users.GID_GID)}" in res.probes
        assert f"s={REVOKED}" in res.probes
    finally:
        shutil.rmtree(top)
