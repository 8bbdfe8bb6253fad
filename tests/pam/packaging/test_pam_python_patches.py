"""The pam-python patch series applies as its headers say: to the archive's
source of each suite (Debian 12's and Debian 13's pam-python share one orig
tarball), every patch after the ones before it in the series, with
`patch --dry-run -F0` (no fuzz) before it is applied.

The source comes from the archive through a private apt configuration (a
deb-src line for the suite; /etc/apt is only read for the mirror), as
packaging/pam-python/build.sh gets it, and is checked against the sha256
that the suite's signed Sources index gives.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ...conftest import require, require_root
from ...pamlib import REPO

pytestmark = [pytest.mark.root, pytest.mark.packaging]
PATCHES = REPO / "packaging" / "pam-python" / "patches"
SUITES = ("bookworm", "trixie")
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
APPLIES = re.compile(r"^Applies-To: (\S+), the upstream\n source of", re.M)


def series() -> list[str]:
    return [x for x in (PATCHES / "series").read_text().splitlines() if x and x[0] != "#"]


def mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def archive() -> Iterator[dict[str, tuple[Path, str]]]:
    """suite -> (the orig tarball of its pam-python source, its version)."""
    require_root()
    require(KEYRING.exists(), "debian-archive-keyring is not installed")
    top = Path(tempfile.mkdtemp(prefix="pykt-pam-python-src-"))
    got: dict[str, tuple[Path, str]] = {}
    try:
        for suite in SUITES:
            work = top / suite
            for d in ("lists/partial", "cache/archives/partial"):
                (work / d).mkdir(parents=True)
            (work / "sources.list").write_text(
                f"deb-src [signed-by={KEYRING}] {mirror()} {suite} main\n"
            )
            (work / "status").touch()
            apt = ["apt-get", "-q", "-o", f"Dir::Etc::sourcelist={work}/sources.list"]
            apt += ["-o", "Dir::Etc::sourceparts=-", "-o", f"Dir::State::lists={work}/lists"]
            apt += ["-o", f"Dir::State::status={work}/status", "-o", f"Dir::Cache={work}/cache"]
            apt += ["-o", "Dir::Etc::preferencesparts=-", "-o", "APT::Sandbox::User=root"]
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            subprocess.run([*apt, "update"], check=True, capture_output=True, env=env)
            uris = subprocess.run(
                [*apt, "source", "--print-uris", "pam-python"],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            # 'URI' NAME SIZE SHA256:HASH, for the .dsc and each file of it
            fields = [f for f in map(str.split, uris.splitlines()) if len(f) == 4]
            files = {f[1]: f[3].split(":", 1)[1] for f in fields}
            (dsc,) = [name for name in files if name.endswith(".dsc")]
            version = dsc.removeprefix("pam-python_").removesuffix(".dsc")
            (orig,) = [name for name in files if ".orig.tar." in name]
            sha = files[orig]
            # as build.sh: the Debian diff may answer 404 here, which fails
            # apt-get source; the orig tarball arrives, and is checked
            subprocess.run(
                [*apt, "source", "--download-only", f"pam-python={version}"],
                cwd=work,
                capture_output=True,
                env=env,
            )
            path = work / orig
            assert path.exists(), f"{orig} of {suite} was not fetched"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, f"{orig} of {suite}"
            got[suite] = (path, version)
        yield got
    finally:
        shutil.rmtree(top)


@pytest.mark.parametrize("suite", SUITES)
def test_the_series_applies_to_the_suites_source_without_fuzz(archive, suite, tmp_path):
    tarball, version = archive[suite]
    top = tmp_path / "src"
    top.mkdir()
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(top), "--strip-components=1"], check=True)
    names = series()
    print(f"\n{suite}: pam-python {version}, {tarball.name}: {len(names)} patches")
    for name in names:
        patch = (PATCHES / name).read_bytes()
        said = APPLIES.search(patch.decode())
        assert said and said.group(1) == tarball.name, (
            f"{name}: its Applies-To names another source"
        )
        for dry in (True, False):
            proc = subprocess.run(
                ["patch", "-p1", "-F0", "--no-backup-if-mismatch", *(["--dry-run"] * dry)],
                input=patch,
                cwd=top,
                capture_output=True,
            )
            assert proc.returncode == 0, f"{name}: {proc.stdout.decode()}{proc.stderr.decode()}"
