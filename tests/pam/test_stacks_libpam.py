"""`pykeyinit check` against libpam itself, on stacks that only libpam can
settle: how deep includes and substacks may nest, and which lines of an
included file a 'TYPE include' takes.

tests/harness/pam_confdir.c runs a service from a temporary folder with
pam_start_confdir(3), so libpam, not the test, follows every include; the
deepest file of a chain says "reached" through pam_echo, so a chain libpam
cut short shows. The limits are measured on the running system (a
chain of 1, 2, ... levels until libpam refuses one, up to CAP), never
taken from libpam's source, and check must agree with libpam on each side
of them: no error where libpam runs the chain, an error where it does not.
Measured: Linux-PAM 1.5.2 (Debian 12) runs 15 nested substacks and
refuses 16 (open_session: PAM_PERM_DENIED; pam_start succeeds), and
includes and @includes neither count towards that nor have a limit of
their own up to CAP (it ran 3000; a loop of includes makes it recurse until
the program crashes); Linux-PAM 1.7.0 (Debian 13) counts every inclusion:
15 nested levels of any kind run, 16 are refused (stacks.py, MAX_NESTED).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pam_pykeyinit import host

from ..conftest import require
from ..pamlib import pykeyinit, system

CAP = 40  # the deepest chain tried
REACHED = "conv: reached"  # what the deepest file's pam_echo line says
# one level of each way of nesting: the line that names the next file
LEVEL = {
    "include": "session include {}",
    "substack": "session substack {}",
    "@include": "@include {}",  # Debian's libpam only (031_pam_include)
}


def write_chain(folder: Path, levels: list[str]) -> None:
    """folder/svc, nesting the files f1, f2... one per entry of ``levels``
    (keys of LEVEL), named by absolute path (so Debian's rule that an
    include is read from /etc/pam.d does not apply); the last one echoes
    and permits."""
    current = folder / "svc"
    for number, kind in enumerate(levels, 1):
        nested = folder / f"f{number}"
        current.write_text(LEVEL[kind].format(nested) + "\n")
        current = nested
    current.write_text("session required pam_echo.so reached\nsession required pam_permit.so\n")


def libpam_output(tool: Path, folder: Path, *calls: str) -> list[str]:
    return system(str(tool), str(folder), "svc", "root", *calls).splitlines()


def libpam_runs_chain(tool: Path, folder: Path) -> bool:
    """Whether libpam ran the chain to its end: the deepest file's echo,
    and open_session's PAM_SUCCESS."""
    out = libpam_output(tool, folder, "open")
    opened = [x.split() for x in out if x.startswith("open -> ")]
    return REACHED in out and opened[0][2] == "0"


def check_findings(folder: Path) -> list[dict]:
    """`pykeyinit check --json` of the service svc read from ``folder``
    alone, as pam_start_confdir reads it."""
    proc = pykeyinit("check", "--pam-dir", str(folder), "--json", "svc")
    return json.loads(proc.stdout)


def check_fails(folder: Path) -> bool:
    return any(f["severity"] == "error" for f in check_findings(folder))


def kinds() -> list[str]:
    return [k for k in LEVEL if k != "@include" or host.debian_include()]


@pytest.fixture(scope="module")
def limits(confdir_tool: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int | None]:
    """For each way of nesting, the first depth libpam refuses, or None
    if it takes CAP."""
    found: dict[str, int | None] = {}
    for kind in kinds():
        found[kind] = None
        for depth in range(1, CAP + 1):
            folder = tmp_path_factory.mktemp(f"depth-{kind.lstrip('@')}-{depth}")
            write_chain(folder, [kind] * depth)
            if not libpam_runs_chain(confdir_tool, folder):
                found[kind] = depth
                break
    print(f"\nLinux-PAM {host.linux_pam_version()}: first depth refused {found} (None: CAP={CAP})")
    return found


def boundary(limit: int | None) -> list[int]:
    """The depths to compare: either side of a measured limit; else the
    depths where a limit of 16 levels would show, and CAP."""
    return [limit - 1, limit, limit + 1] if limit else [15, 16, 17, CAP]


@pytest.mark.parametrize("kind", list(LEVEL))
def test_check_fails_a_chain_exactly_where_libpam_does(confdir_tool, limits, kind, tmp_path):
    require(kind in limits, "libpam without Debian's @include")
    for depth in boundary(limits[kind]):
        folder = tmp_path / str(depth)
        folder.mkdir()
        write_chain(folder, [kind] * depth)
        runs = libpam_runs_chain(confdir_tool, folder)
        assert check_fails(folder) == (not runs), (kind, depth, runs, check_findings(folder))


def mixed_chains(limit: int, between: str) -> list[list[str]]:
    """Chains of substacks with ``between`` (an include) after them, around
    a substack ``limit``: as many levels in all, or as many substacks."""
    pairs = ["substack", between]
    return [
        pairs * ((limit - 1) // 2) + ["substack"],  # limit - 1 levels
        [between, "substack"] * (limit // 2),  # limit levels, half of them substacks
        pairs * (limit - 1),  # limit - 1 substacks
        pairs * limit,  # limit substacks
    ]


@pytest.mark.parametrize("between", ["include", "@include"])
def test_includes_between_substacks(confdir_tool, limits, between, tmp_path):
    """Substacks with includes between them, around libpam's substack
    limit: check counts levels as libpam does (includes too, or not)."""
    require(between in limits, "libpam without Debian's @include")
    limit = limits["substack"]
    require(limit is not None, f"no substack limit up to {CAP}")
    assert limit is not None
    ran = []
    for number, levels in enumerate(mixed_chains(limit, between)):
        folder = tmp_path / str(number)
        folder.mkdir()
        write_chain(folder, levels)
        runs = libpam_runs_chain(confdir_tool, folder)
        ran.append(runs)
        assert check_fails(folder) == (not runs), (levels, runs, check_findings(folder))
    assert ran[0] and not ran[-1], ran  # both sides were tried


COMMON = (
    "auth required pam_permit.so\n"
    "session optional pam_echo.so common-session\n"
    "session optional pam_keyinit.so revoke\n"
)
KEYINIT_LINE = 3  # of COMMON


@pytest.mark.parametrize("control", ["include", "substack"])
@pytest.mark.parametrize("pam_type", ["auth", "session"])
def test_a_typed_include_takes_only_lines_of_its_type(confdir_tool, control, pam_type, tmp_path):
    """'auth include FILE' takes FILE's auth lines alone (and so does a
    substack): FILE's session lines, pam_keyinit.so's among them, run only
    from a session include. Check names that pam_keyinit.so line for the
    service exactly when libpam runs FILE's session lines."""
    common = tmp_path / "common-all"
    common.write_text(COMMON)
    (tmp_path / "svc").write_text(
        f"{pam_type} {control} {common}\nsession required pam_permit.so\n"
    )
    out = libpam_output(confdir_tool, tmp_path, "open")
    runs_session_lines = "conv: common-session" in out
    assert runs_session_lines == (pam_type == "session"), out
    named = [f for f in check_findings(tmp_path) if f["file"] == str(common)]
    assert any(f["line"] == KEYINIT_LINE for f in named) == runs_session_lines, named
