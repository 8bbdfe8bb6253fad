"""The loader's trust rule on real files: ownership and modes need root."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest

from pam_pykeyinit import trust

from ..conftest import require_root
from ..pamlib import PACKAGE

pytestmark = pytest.mark.root
NOBODY = 65534


@pytest.fixture
def loader():
    """The loader's functions, from executing it as pam_python does. In
    this process the package is already imported from the checkout, so its
    own load() refuses a second copy, which is checked too."""
    require_root()
    return runpy.run_path(str(PACKAGE / "pam_module.py"), run_name="pam_module")


@pytest.fixture
def root_dir(tmp_path: Path) -> Path:
    d = tmp_path / "d"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    return d


def test_root_owned_and_private_is_safe(loader, root_dir):
    assert loader["unsafe"](str(root_dir), True) == ""


def test_foreign_owner_is_unsafe(loader, root_dir):
    os.chown(root_dir, NOBODY, -1)
    assert f"owned by uid {NOBODY}" in loader["unsafe"](str(root_dir), False)


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777])
def test_group_or_world_writable_is_unsafe(loader, root_dir, mode):
    os.chmod(root_dir, mode)
    assert f"mode {mode:04o}" in loader["unsafe"](str(root_dir), False)


def test_sticky_folder_is_accepted_only_on_the_way(loader, root_dir):
    os.chmod(root_dir, 0o1777)
    assert loader["unsafe"](str(root_dir), False) == ""
    assert "writable" in loader["unsafe"](str(root_dir), True)


def test_writable_file_is_unsafe(loader, root_dir):
    f = root_dir / "x.py"
    f.write_text("")
    os.chmod(f, 0o666)
    assert "writable" in loader["unsafe"](str(f), True)


def test_symlink_mode_is_ignored_but_owner_is_not(loader, root_dir):
    link = root_dir / "link"
    link.symlink_to("/etc/hostname")
    assert loader["unsafe"](str(link), True) == ""
    os.lchown(link, NOBODY, -1)
    assert "owned by uid" in loader["unsafe"](str(link), True)


def test_a_second_copy_of_the_package_in_one_process_is_refused(loader, tmp_path):
    copy = tmp_path / "pkg"
    (copy / "pam_pykeyinit").mkdir(parents=True)
    for src in PACKAGE.glob("*.py"):
        (copy / "pam_pykeyinit" / src.name).write_text(src.read_text())
    entry, why = loader["load"](str(copy / "pam_pykeyinit" / "pam_module.py"))
    # tmp_path lies under pytest's 0700 root-owned folders: only the
    # duplicate package can be the reason
    assert entry is None and "another pam_pykeyinit is loaded" in why, why


def test_walk_follows_symlinks_and_checks_their_folders(loader, root_dir):
    unsafe = loader["unsafe"]
    (root_dir / "real").mkdir()
    (root_dir / "real" / "mod.py").write_text("")
    (root_dir / "pub").mkdir()
    (root_dir / "pub" / "mod.py").symlink_to(root_dir / "real" / "mod.py")
    (root_dir / "rel.py").symlink_to("pub/../real/mod.py")
    assert trust.walk_problem(str(root_dir / "pub" / "mod.py"), unsafe) == ""
    assert trust.walk_problem(str(root_dir / "rel.py"), unsafe) == ""
    os.chmod(root_dir / "pub", 0o777)  # anyone could swap the symlink
    assert "pub is writable" in trust.walk_problem(str(root_dir / "pub" / "mod.py"), unsafe)
    os.chmod(root_dir / "pub", 0o1777)  # sticky: the root-owned symlink stays
    assert trust.walk_problem(str(root_dir / "pub" / "mod.py"), unsafe) == ""
    # (a sticky package folder is refused by the loader's first step:
    # tests/pam/test_stacks.py::test_replaceable_package_is_refused[sticky])


def test_walk_refuses_relative_paths_and_symlink_loops(loader, root_dir):
    unsafe = loader["unsafe"]
    assert "not an absolute path" in trust.walk_problem("lib/x.py", unsafe)
    (root_dir / "a").symlink_to("b")
    (root_dir / "b").symlink_to("a")
    assert "too many symbolic links" in trust.walk_problem(str(root_dir / "a"), unsafe)
