"""Fixtures for real PAM stacks: root, pamtester, pam_python, users."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pam_pykeyinit import host

from ..conftest import require, require_root
from ..pamlib import (
    REPO,
    Service,
    Tools,
    Users,
    install_tree,
    pam_python_so,
    readable_folder,
    system,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.pam)
            item.add_marker(pytest.mark.root)


@pytest.fixture(scope="session")
def prerequisites() -> None:
    require_root()
    for tool in ("pamtester", "keyctl", "setpriv", "unshare"):
        require(shutil.which(tool) is not None, f"{tool} not installed (make deps)")
    require(pam_python_so() is not None, "pam_python.so not found where libpam looks (make deps)")


def installed_tree(prefix: str):
    """install_tree() in a readable_folder() of its own; yields pam_module.py."""
    with readable_folder(prefix) as top:
        yield install_tree(top)


@pytest.fixture(scope="session")
def tree(prerequisites: None):
    """A root-owned copy of the package that any caller can read, shared by
    the session; yields its pam_module.py path."""
    yield from installed_tree("pykt-tree-")


@pytest.fixture
def own_tree():
    """A copy like ``tree``, the test's own to damage."""
    yield from installed_tree("pykt-own-")


@pytest.fixture(scope="session")
def probe(tree: Path) -> str:
    return f"session optional pam_exec.so stdout quiet {tree.parents[2] / 'probe.sh'}"


@pytest.fixture(scope="session")
def users(prerequisites: None):
    made = Users()
    yield made
    made.remove()


@pytest.fixture
def service():
    made: list[Service] = []

    def make(lines: list[str]) -> str:
        svc = Service(lines)
        made.append(svc)
        return svc.name

    yield make
    for svc in made:
        svc.close()


@pytest.fixture(scope="session")
def tools(prerequisites: None):
    """The C helpers of tests/harness/, built once."""
    require(shutil.which("gcc") is not None, "gcc not installed")
    require(Path("/usr/include/security/pam_appl.h").exists(), "libpam0g-dev not installed")
    with readable_folder("pykt-tools-") as top:
        yield Tools(top)


@pytest.fixture(scope="session")
def confdir_tool(tools: Tools) -> Path:
    """tests/harness/pam_confdir: one service run by pam_start_confdir."""
    return tools.pam_confdir


@pytest.fixture(scope="session")
def gil_safe_so(prerequisites):
    """pam_python.so of the GIL-safe build for this suite, unpacked from
    dist/ into a root-owned folder that every caller can read."""
    suite = system("sh", "-c", ". /etc/os-release && echo $VERSION_CODENAME").strip()
    changelog = REPO / "packaging" / "pam-python" / "suites" / suite / "changelog"
    require(changelog.exists(), f"no GIL-safe pam_python packaging for {suite}")
    version = changelog.read_text().split("(", 1)[1].split(")", 1)[0]  # the first entry's
    arch = system("dpkg", "--print-architecture").strip()
    deb = REPO / "dist" / f"libpam-python_{version}_{arch}.deb"
    require(deb.exists(), f"{deb} missing: make pam-python-deb")
    with readable_folder("pykt-pam-python-") as top:
        system("dpkg-deb", "-x", str(deb), str(top))
        (so,) = top.rglob("pam_python.so")
        assert host.gil_safe(so)
        yield so


@pytest.fixture(scope="session")
def debian_pam_python_so(prerequisites):
    """pam_python.so of Debian's libpam-python for this suite, from the
    archive (tools/debian-pam-python.sh: the version the archive has, never
    this project's build), in a root-owned folder that every caller can
    read: the build whose holes the tests show as their premise, whichever
    build the host has installed."""
    with readable_folder("pykt-debian-pam-python-") as top:
        out = system("sh", str(REPO / "tools" / "debian-pam-python.sh"), str(top))
        so = Path(out.strip())
        assert not host.gil_safe(so), f"{so} holds the GIL: not Debian's build"
        yield so


@pytest.fixture
def system_folders():
    """libpam's own folders (/etc/pam.d and the vendor folder, found as
    check finds them), with files named pykt-fold-PID-*; the vendor folder
    is made if the system has none (Debian 12) and removed again."""

    etc, vendor = host.pam_config_dirs()[:2]
    made = not vendor.exists()
    vendor.mkdir(exist_ok=True)
    prefix = f"pykt-fold-{os.getpid()}"
    try:
        yield etc, vendor, prefix
    finally:
        for folder in (etc, vendor):
            for name in os.listdir(folder):
                if name.startswith(prefix):
                    (folder / name).unlink()
        if made:
            vendor.rmdir()
