"""How pam_python runs a module file, with Debian's build and this project's
side by side (pamtester, a C program):

- patch 3006: traceback is imported only when a traceback is printed, so a
  module starts with traceback (and what it imports) out of sys.modules;
  a module that raises still logs its whole traceback, line for line as
  with Debian's build;
- patch 3007: the module file runs from its bytecode (__pycache__ beside
  its real path) when that is current and held to the source's rule (owned
  by root or the source's owner, not writable by group or others, no
  symbolic link); a stale, foreign, loosely kept or hash-based file is
  ignored and the source runs; nothing is written.

Which code ran is told by the module itself: the source and the bytecode
write different markers.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from importlib.util import source_hash
from pathlib import Path

import pytest

from ..pamlib import Users, current_pyc, line, pamtester, readable_folder

MODULE = """\
import sys
AT_START = ["traceback" in sys.modules, len(sys.modules)]

def pam_sm_open_session(pamh, flags, argv):
    import json

    with open({marker!r}, "a") as f:
        f.write(json.dumps([{which!r}, *AT_START]) + "\\n")
    return pamh.PAM_SUCCESS

def pam_sm_close_session(pamh, flags, argv):
    return pamh.PAM_SUCCESS
"""

RAISING = """\
def deeper(n):
    if n == 0:
        raise ValueError("pykt: the module raised")
    return deeper(n - 1)

def pam_sm_open_session(pamh, flags, argv):
    return deeper(2)
"""


class ModuleFile:
    """A module file mod.py in a root-owned folder that every caller can
    read, its marker file, and bytecode planted for it."""

    def __init__(self, top: Path) -> None:
        self.folder = top / "lib"
        self.folder.mkdir(mode=0o755)
        self.path = self.folder / "mod.py"
        self.marker = top / "ran"
        self.path.write_text(MODULE.format(marker=str(self.marker), which="source"))
        self.path.chmod(0o644)
        self.pycache = self.folder / "__pycache__"

    def pyc(self, tag: str = "cpython-{}{}") -> Path:
        import sys

        name = tag.format(*sys.version_info[:2])
        return self.pycache / f"mod.{name}.pyc"

    def plant(self) -> Path:
        """Bytecode that writes 'bytecode', with the header the import
        system takes as current for the source."""
        self.pycache.mkdir(mode=0o755, exist_ok=True)
        pyc = self.pyc()
        text = MODULE.format(marker=str(self.marker), which="bytecode")
        pyc.write_bytes(current_pyc(self.path, text))
        pyc.chmod(0o644)
        return pyc

    def ran(self) -> list[list]:
        import json

        if not self.marker.exists():
            return []
        runs = [json.loads(x) for x in self.marker.read_text().splitlines()]
        self.marker.unlink()
        return runs


@pytest.fixture
def module_file() -> Iterator[ModuleFile]:
    with readable_folder("pykt-modfile-") as top:
        yield ModuleFile(top)


def which_ran(service, so: Path, module: ModuleFile) -> str:
    svc = service([line("session", "required", f"{so} {module.path}")])
    res = pamtester(svc, Users.GID_USER, ["open_session"])
    assert res.rc == 0, res.stderr
    (run,) = module.ran()
    return run[0]


def test_current_bytecode_runs_in_place_of_the_source(
    service, users, module_file, gil_safe_so, debian_pam_python_so
):
    module_file.plant()
    assert which_ran(service, gil_safe_so, module_file) == "bytecode"
    assert which_ran(service, debian_pam_python_so, module_file) == "source"


def test_the_bytecode_of_the_real_path_runs_for_a_symlink(
    service, users, module_file, gil_safe_so, tmp_path
):
    """A module named through a symbolic link (as the package installs
    /usr/lib/security/pam_pykeyinit.py): the bytecode beside the file it
    leads to."""
    module_file.plant()
    link = module_file.folder.parent / "link.py"
    link.symlink_to(module_file.path)
    svc = service([line("session", "required", f"{gil_safe_so} {link}")])
    res = pamtester(svc, Users.GID_USER, ["open_session"])
    assert res.rc == 0, res.stderr
    assert [run[0] for run in module_file.ran()] == ["bytecode"]


def loosen(module: ModuleFile, how: str) -> None:
    pyc = module.pyc()
    if how == "stale":  # the source changed after it was compiled
        module.path.write_text(module.path.read_text() + "# changed\n")
    elif how == "group-writable-file":
        pyc.chmod(0o664)
    elif how == "world-writable-folder":
        module.pycache.chmod(0o777)
    elif how == "another-users-file":
        os.chown(pyc, Users.PEER_UID, -1)
    elif how == "another-users-folder":
        os.chown(module.pycache, Users.PEER_UID, -1)
    elif how == "symlink":
        real = module.folder.parent / "elsewhere.pyc"
        pyc.rename(real)
        pyc.symlink_to(real)
    elif how == "wrong-magic":
        data = bytearray(pyc.read_bytes())
        data[0] ^= 0xFF
        pyc.write_bytes(bytes(data))
    elif how == "unchecked-hash":  # current for the import system, by no check
        data = pyc.read_bytes()
        key = source_hash(module.path.read_bytes())
        pyc.write_bytes(data[:4] + (1).to_bytes(4, "little") + key + data[16:])
    elif how == "truncated":
        pyc.write_bytes(pyc.read_bytes()[:40])


LOOSE = [
    "stale",
    "group-writable-file",
    "world-writable-folder",
    "another-users-file",
    "another-users-folder",
    "symlink",
    "wrong-magic",
    "unchecked-hash",
    "truncated",
]


@pytest.mark.parametrize("how", LOOSE)
def test_bytecode_not_current_or_not_held_to_the_sources_rule_is_ignored(
    service, users, module_file, gil_safe_so, how
):
    """Each bytecode file that could run another code than the source's, or
    that someone other than the source's owner (root) could have replaced:
    the source runs. (The same file, current and kept as the source is,
    runs: the first test.)"""
    module_file.plant()
    loosen(module_file, how)
    assert which_ran(service, gil_safe_so, module_file) == "source"


def test_bytecode_of_the_sources_owner_runs(service, users, module_file, gil_safe_so):
    """The rule is the source's: a module file of another owner's (here the
    peer user's, in a root folder) runs from bytecode that owner keeps,
    and not from bytecode of a third user's."""
    os.chown(module_file.path, Users.PEER_UID, -1)
    pyc = module_file.plant()
    os.chown(module_file.pycache, Users.PEER_UID, -1)
    os.chown(pyc, Users.PEER_UID, -1)
    assert which_ran(service, gil_safe_so, module_file) == "bytecode"
    os.chown(pyc, Users.GID_UID, -1)
    assert which_ran(service, gil_safe_so, module_file) == "source"


def test_nothing_is_written(service, users, module_file, gil_safe_so):
    """Without bytecode the source runs, and no __pycache__ or file is made."""
    before = sorted(p.name for p in module_file.folder.iterdir())
    assert which_ran(service, gil_safe_so, module_file) == "source"
    assert sorted(p.name for p in module_file.folder.iterdir()) == before


# -- 3006: traceback ---------------------------------------------------------------


def test_a_module_starts_without_traceback_imported(
    service, users, module_file, gil_safe_so, debian_pam_python_so
):
    """With Debian's build traceback and the modules it imports are in
    sys.modules before the module's first line; with ours they are not
    (the documented difference: 25 fewer modules on Debian 12's 3.11)."""
    runs = {}
    for name, so in (("debian", debian_pam_python_so), ("ours", gil_safe_so)):
        svc = service([line("session", "required", f"{so} {module_file.path}")])
        assert pamtester(svc, Users.GID_USER, ["open_session"]).rc == 0
        (runs[name],) = module_file.ran()
    print(f"\nmodules at the module's start: Debian's {runs['debian'][2]}, ours {runs['ours'][2]}")
    assert runs["debian"][1] is True and runs["ours"][1] is False
    assert runs["debian"][2] - runs["ours"][2] >= 20


ADDRESS = re.compile(r"0x[0-9a-f]+")


def test_a_module_that_raises_logs_its_whole_traceback_as_with_debians_build(
    service, users, gil_safe_so, debian_pam_python_so, tmp_path
):
    tmp_path.chmod(0o755)
    module = tmp_path / "raising.py"
    module.write_text(RAISING)
    module.chmod(0o644)
    logged = {}
    for name, so in (("debian", debian_pam_python_so), ("ours", gil_safe_so)):
        svc = service([line("session", "required", f"{so} {module}")])
        res = pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path)
        assert res.rc != 0
        logged[name] = [ADDRESS.sub("0x-", e["text"].split(": ", 1)[-1]) for e in res.logs]
    print("\n" + "\n".join(logged["ours"]))
    assert logged["ours"] == logged["debian"]
    text = "\n".join(logged["ours"])
    assert "Traceback (most recent call last):" in text
    assert text.count("in deeper") == 3 and "ValueError: pykt: the module raised" in text
