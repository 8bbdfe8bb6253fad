"""The Debian package, installed the way an administrator installs it.

Builds dist/libpam-pykeyinit_*.deb and this suite's libpam-python with
the README's `make deb` (lintian must report no error and no warning); apt
must refuse the package alone beside Debian's libpam-python (it depends on
libpam-python-fixed-startup, which only this project's build provides);
installs both with the README's command, enables the pam-auth-update
profile with the README's command (each read from README.md, run as it is
written), logs in through it, disables it, removes and purges the package,
and checks that /etc/pam.d/common-session* and /var/lib/pam are byte for
byte as before and that no file of the package is left.

It changes the host's PAM configuration and its libpam-python for a few
seconds; everything is put back in a finally block even when an assertion
fails (libpam-python: the version installed before, from the archive).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from ...conftest import require, require_root
from ...doclib import readme_command
from ...pamlib import REPO, REVOKED, Service, Users, pamtester, ses, system

pytestmark = [pytest.mark.root, pytest.mark.packaging]
PACKAGE = "libpam-pykeyinit"
STATE = [
    Path("/etc/pam.d/common-session"),
    Path("/etc/pam.d/common-session-noninteractive"),
    *sorted(Path("/var/lib/pam").iterdir()),
]
PROFILE_LINE = "pam_python.so pam_pykeyinit.py revoke"


def installed(package: str = PACKAGE) -> str | None:
    """The installed version of ``package``, or None."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", package], capture_output=True, text=True
    ).stdout
    return out.split()[-1] if out.startswith("install ok installed") else None


def readme(prefix: str, tmp: Path | None = None) -> None:
    """Run the command of the README's Install section that starts with
    ``prefix``, as written, in the checkout, as root's shell would; with
    ``tmp``, apt's question answered yes by a configuration file there
    (APT_CONFIG), the command itself unchanged."""
    command = readme_command("Install", prefix)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"}
    if tmp is not None:
        (tmp / "apt.conf").write_text('APT::Get::Assume-Yes "true";\n')
        env["APT_CONFIG"] = str(tmp / "apt.conf")
    proc = subprocess.run(
        ["sh", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{command}: {proc.stdout}\n{proc.stderr}"


def digest() -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in STATE if p.is_file()}


@pytest.fixture(scope="module")
def deb() -> Path:
    require_root()
    readme("make deb")
    debs = sorted((REPO / "dist").glob(f"{PACKAGE}_*_all.deb"))
    assert debs
    return debs[-1]


def test_install_enable_use_disable_remove_purge(deb, users, tmp_path):
    require(not installed(), f"{PACKAGE} is installed on this machine already")
    pam_python = installed("libpam-python")
    require(
        pam_python is not None and "+pykeyinit" not in pam_python,
        "this test starts from Debian's libpam-python (make deps installs it)",
    )
    before = digest()
    backup = {p: p.read_bytes() for p in STATE if p.is_file()}
    probe = tmp_path / "probe.sh"
    shutil.copyfile(REPO / "tests" / "tools" / "probe.sh", probe)
    probe.chmod(0o755)
    services: list[Service] = []
    try:
        # beside Debian's libpam-python: refused, nothing installed
        alone = subprocess.run(
            ["apt-get", "install", "-y", "-q", str(deb)], capture_output=True, text=True
        )
        assert alone.returncode != 0, alone.stdout
        assert "libpam-python-fixed-startup" in alone.stdout + alone.stderr
        assert installed() is None and installed("libpam-python") == pam_python
        # the README's command
        pair = sorted(p.name for p in (REPO / "dist" / "install").glob("*.deb"))
        assert [p.split("_")[0] for p in pair] == ["libpam-pykeyinit", "libpam-python"]
        readme("apt install", tmp_path)
        assert "+pykeyinit" in (installed("libpam-python") or "")
        # the package's files and symlinks (its folders are shared with others)
        listed = system("dpkg", "-L", PACKAGE).split()
        files = [Path(f) for f in listed if not Path(f).is_dir()]
        # nothing under an aliased location (/lib is /usr/lib on merged-/usr)
        assert [f for f in listed if f.startswith(("/lib", "/bin", "/sbin"))] == []
        assert Path("/usr/lib/security/pam_pykeyinit.py").resolve() == Path(
            "/usr/lib/python3/dist-packages/pam_pykeyinit/pam_module.py"
        )
        assert Path("/usr/share/man/man8/pam_pykeyinit.8.gz").exists()
        assert Path("/usr/share/man/man1/pykeyinit.1.gz").exists()
        version = system("/usr/bin/pykeyinit", "--version").strip()
        assert version == f"pykeyinit {deb.name.split('_')[1]}"
        # byte-compiled by py3compile, root-owned, as the loader demands
        assert list(Path("/usr/lib/python3/dist-packages/pam_pykeyinit/__pycache__").glob("*.pyc"))
        # (pam-auth-update notes the new profile in /var/lib/pam/seen)
        stacks = [k for k in before if k.startswith("/etc/pam.d/")]
        now = digest()
        assert [now[k] for k in stacks] == [before[k] for k in stacks], (
            "installing must not change the PAM stacks (Default: no)"
        )

        readme("pam-auth-update")
        session = Path("/etc/pam.d/common-session").read_text()
        assert PROFILE_LINE in session
        assert PROFILE_LINE not in Path("/etc/pam.d/common-session-noninteractive").read_text()

        via_profile = Service(
            ["@include common-session", f"session optional pam_exec.so stdout quiet {probe}"]
        )
        by_name = Service(
            [
                "session required pam_python.so pam_pykeyinit.py force revoke",
                f"session optional pam_exec.so stdout quiet {probe}",
            ]
        )
        services += [via_profile, by_name]
        uid, gid = Users.GID_UID, Users.GID_GID
        for svc in services:
            res = pamtester(svc.name, Users.GID_USER, ["open_session", "close_session"])
            assert res.rc == 0, res.stderr
            assert f"s={ses(uid, gid)}" in res.probes, res.probes
            assert f"s={REVOKED}" in res.probes

        system("pam-auth-update", "--package", "--disable", "pykeyinit")
        assert PROFILE_LINE not in Path("/etc/pam.d/common-session").read_text()
        system("apt-get", "remove", "-y", "-q", PACKAGE)
        system("dpkg", "--purge", PACKAGE)  # apt forgets a package without conffiles at remove
        left = [f for f in files if f.exists() or f.is_symlink()]
        assert left == [], left
        assert not Path("/usr/lib/python3/dist-packages/pam_pykeyinit").exists()
        assert digest() == before
    finally:
        for svc in services:
            svc.close()
        if installed():
            subprocess.run(["apt-get", "purge", "-y", "-q", PACKAGE], capture_output=True)
        if installed("libpam-python") != pam_python:
            system(
                "apt-get",
                "install",
                "-y",
                "-q",
                "--allow-downgrades",
                f"libpam-python={pam_python}",
            )
        for path, data in backup.items():
            if path.read_bytes() != data:
                path.write_bytes(data)
