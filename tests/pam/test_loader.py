"""The loader (pam_module.py, then trust.py): its trust rule on real files,
and the refusals it gives in real logins.

Ownership and modes need root; the logins run through pamtester.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pam_pykeyinit import host, trust
from pam_pykeyinit.keyinit import PAM_SUCCESS

from ..conftest import require_root
from ..pamlib import (
    PACKAGE,
    TOOLS,
    Users,
    current_pyc,
    line,
    pam_python_so,
    pamtester,
    py_module,
    readable_folder,
    ses,
)

NOBODY = 65534
CLIENT = TOOLS / "pyclient.py"
USER_SES = ses(Users.GID_UID, Users.GID_GID)

# -- the rule, on real files -------------------------------------------------


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


def test_a_symlink_is_refused_as_a_file_and_judged_by_owner_on_the_way(loader, root_dir):
    """strict (a file the loader runs): a symbolic link is refused, root's
    or not; on the way (folders a walk follows): its mode means nothing,
    its owner does."""
    link = root_dir / "link"
    link.symlink_to("/etc/hostname")
    assert loader["unsafe"](str(link), True) == f"{link} is a symbolic link"
    assert loader["unsafe"](str(link), False) == ""
    os.lchown(link, NOBODY, -1)
    assert "owned by uid" in loader["unsafe"](str(link), False)


def test_a_second_copy_of_the_package_in_one_process_is_refused(loader, tmp_path):
    copy = tmp_path / "pkg"
    (copy / "pam_pykeyinit").mkdir(parents=True)
    for src in PACKAGE.glob("*.py"):
        (copy / "pam_pykeyinit" / src.name).write_text(src.read_text())
    entry, why = loader["load"](str(copy / "pam_pykeyinit" / "pam_module.py"))
    # tmp_path lies under pytest's 0700 root-owned folders: only the
    # duplicate package can be the reason
    assert entry == {} and "another pam_pykeyinit is loaded" in why, why


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


# -- the loader in real logins ------------------------------------------------


def refused(res) -> str:
    assert res.rc != 0 and "Error in service module" in res.stderr, res.stderr
    lines = [e for e in res.logs if "refusing to load" in e["text"]]
    assert lines and lines[0]["facility"] == 10 and lines[0]["severity"] == 3, res.logs
    return lines[0]["text"]


@pytest.mark.parametrize(
    "what", ["folder", "sticky", "file", "pycache", "owner", "trust", "trust-bytecode", "cli"]
)
def test_replaceable_package_is_refused(tmp_path, probe, service, users, own_tree, what):
    """Each file the loader's first step checks before it runs trust.py
    (the folder, trust.py, its bytecode), and files that only the second
    step checks (the login's modules, a file no login runs)."""
    module = own_tree
    (trust_bytecode,) = (module.parent / "__pycache__").glob("trust.*.pyc")
    target = {
        "folder": module.parent,
        "sticky": module.parent,
        "file": module.parent / "keyinit.py",
        "pycache": module.parent / "__pycache__",
        "owner": module.parent / "kernel.py",
        "trust": module.parent / "trust.py",
        "trust-bytecode": trust_bytecode,
        "cli": module.parent / "cli.py",
    }[what]
    if what == "owner":
        os.chown(target, Users.PEER_UID, -1)
    elif what == "sticky":
        os.chmod(target, 0o1777)
    else:
        os.chmod(target, 0o777 if target.is_dir() else 0o666)
    svc = service([line("session", "required", py_module(module), "force"), probe])
    text = refused(pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path))
    assert str(target) in text


PLANTED = 'open({marker!r}, "a").write("{name} ran\\n")\n'


@pytest.mark.parametrize(
    ("name", "form"),
    [("trust", "source"), ("trust", "bytecode"), ("keyinit", "source"), ("kernel", "bytecode")],
)
def test_no_file_of_the_package_runs_before_it_was_checked(
    tmp_path, service, users, own_tree, name, form
):
    """A file planted in the package, as source (its bytecode removed) or
    as bytecode that the import system takes as current: it runs while it
    is root's and private (the plant works), and never once it is writable
    by others. trust.py is checked by the loader's first step, the others
    by trust.py's second step before it runs them."""
    marker, module = tmp_path / "ran", own_tree
    source = module.parent / f"{name}.py"
    (bytecode,) = (module.parent / "__pycache__").glob(f"{name}.*.pyc")
    text = PLANTED.format(marker=str(marker), name=name)
    if form == "source":
        source.write_text(text)
        bytecode.unlink()
        target = source
    else:  # valid for the real source: its mtime and size in the header
        bytecode.write_bytes(current_pyc(source, text))
        target = bytecode
    svc = service([line("session", "required", py_module(module), "force")])
    refused(pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path))
    assert marker.read_text() == f"{name} ran\n"
    marker.unlink()
    os.chmod(target, 0o666)
    text = refused(pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path))
    assert f"{target} is writable by group or others" in text
    assert not marker.exists()


@pytest.fixture
def users_folder(users):
    """A folder of the test user's, as an attacker's own files are: the
    user owns it and everything put in it (chown_all)."""
    with readable_folder("pykt-users-") as top:
        folder = top / "mine"
        folder.mkdir()

        def chown_all() -> Path:
            for path in [folder, *folder.rglob("*")]:
                os.lchown(path, Users.GID_UID, Users.GID_GID)
            return folder

        yield folder, chown_all


@pytest.mark.parametrize("what", ["module", "pycache", "bytecode"])
def test_a_symlink_inside_the_package_is_refused(
    tmp_path, service, users, own_tree, users_folder, what
):
    """A root-owned symbolic link in the package that leads to a user's
    files: keyinit.py to the user's source, __pycache__ to the user's
    folder of bytecode, kernel's bytecode to the user's. Only root can make
    the link, but the user can change what it leads to, so the loader
    refuses it by name and the user's code never runs; pykeyinit check
    says the same (the loader's own verdict)."""
    from pam_pykeyinit import stacks

    marker, module = tmp_path / "ran", own_tree
    folder, chown_all = users_folder
    pycache = module.parent / "__pycache__"
    text = PLANTED.format(marker=str(marker), name=what)
    if what == "module":
        (folder / "keyinit.py").write_text(text)
        (module.parent / "keyinit.py").unlink()
        next(pycache.glob("keyinit.*.pyc")).unlink()
        link = module.parent / "keyinit.py"
        link.symlink_to(folder / "keyinit.py")
    elif what == "pycache":
        # all the bytecode but trust.py's, whose absence makes the loader
        # compile trust.py; kernel's runs the user's code
        for pyc in pycache.glob("*.pyc"):
            if not pyc.name.startswith("trust."):
                shutil.copyfile(pyc, folder / pyc.name)
        (kernel_pyc,) = folder.glob("kernel.*.pyc")
        kernel_pyc.write_bytes(current_pyc(module.parent / "kernel.py", text))
        shutil.rmtree(pycache)
        link = pycache
        link.symlink_to(folder)
    else:
        (kernel_pyc,) = pycache.glob("kernel.*.pyc")
        (folder / kernel_pyc.name).write_bytes(current_pyc(module.parent / "kernel.py", text))
        kernel_pyc.unlink()
        link = kernel_pyc
        link.symlink_to(folder / kernel_pyc.name)
    chown_all()
    svc = service([line("session", "required", py_module(module), "force")])
    text = refused(pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path))
    assert f"{link} is a symbolic link" in text
    assert not marker.exists(), marker.read_text()
    assert stacks.loader_refusal(str(module)) == f"{link} is a symbolic link"


def pamela_as_root(svc: str, *python_options: str, umask: int = 0o022) -> tuple[int, str]:
    """tests/tools/pyclient.py's pamela scenario (open and close, in this
    process), as root, in the test venv's Python with ``python_options``
    and ``umask``: a Python host program as JupyterHub is one."""
    proc = subprocess.run(
        [sys.executable, *python_options, str(CLIENT), "pamela", svc, Users.GID_USER],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        preexec_fn=lambda: os.umask(umask),
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_a_python_host_s_pycache_prefix_is_never_read(
    tmp_path, service, users, own_tree, gil_safe_so, users_folder
):
    """A Python host run with -X pycache_prefix=<a user's folder> (or
    PYTHONPYCACHEPREFIX), which the import system reads bytecode from
    instead of __pycache__: bytecode planted there for kernel.py, current
    for its source, never runs; the login works (GIL-safe pam_python:
    Debian's crashes a Python host)."""
    marker, module = tmp_path / "ran", own_tree
    prefix, chown_all = users_folder
    kernel_py = module.parent / "kernel.py"
    # where importlib.util.cache_from_source puts it under that prefix
    planted = prefix / str(module.parent).lstrip("/") / f"kernel.{sys.implementation.cache_tag}.pyc"
    planted.parent.mkdir(parents=True)
    planted.write_bytes(current_pyc(kernel_py, PLANTED.format(marker=str(marker), name="kernel")))
    chown_all()
    svc = service([line("session", "required", f"{gil_safe_so} {module}", "force revoke")])
    rc, said = pamela_as_root(svc, "-X", f"pycache_prefix={prefix}")
    assert rc == 0, said
    assert not marker.exists(), marker.read_text()


def test_a_python_host_writes_nothing_at_login(tmp_path, service, users, own_tree, gil_safe_so):
    """A root Python host that writes bytecode (no -B), with umask 002, on a
    package without bytecode: the login writes nothing (the import system
    would have made __pycache__ 0775, and every later login would have
    been refused), so the next login works too."""
    module = own_tree
    shutil.rmtree(module.parent / "__pycache__")
    before = sorted(p.name for p in module.parent.iterdir())
    svc = service([line("session", "required", f"{gil_safe_so} {module}", "force revoke")])
    for _ in range(2):
        rc, said = pamela_as_root(svc, umask=0o002)
        assert rc == 0, said
        assert sorted(p.name for p in module.parent.iterdir()) == before


def test_installed_as_a_symlink(tmp_path, tree, probe, service, users):
    top = Path(tempfile.mkdtemp(prefix="pykt-link-"))
    try:
        security = top / "security"
        security.mkdir()
        os.chmod(top, 0o755)
        (security / "pam_pykeyinit.py").symlink_to(tree)
        link = security / "pam_pykeyinit.py"
        svc = service([line("session", "required", py_module(link), "force"), probe])
        res = pamtester(svc, Users.GID_USER, ["open_session"])
        assert res.rc == 0, res.stderr
        assert f"s={USER_SES}" in res.probes
        os.chmod(security, 0o777)  # anyone could now point the symlink elsewhere
        text = refused(pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path))
        assert f"{security} is writable by group or others" in text
    finally:
        shutil.rmtree(top)


def test_hostile_environment_is_never_imported(tmp_path, tree, probe, service, users):
    """PYTHONPATH, PYTHONHOME, HOME and the working directory full of
    modules named like the ones the module imports: none may run."""
    marker = tmp_path / "imported"
    plant = tmp_path / "plant"
    for name in (
        *(f"pam_pykeyinit/{module}" for module in ("__init__", "trust", *trust.LOGIN_MODULES)),
        "_ctypes",
        "ctypes/__init__",
        "pwd",
        "sitecustomize",
        "usercustomize",
        "errno",
        "_thread",
        "os",
    ):
        f = plant / f"{name}.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\n")
    svc = service([line("session", "required", py_module(tree), "force revoke"), probe])
    env = {
        **os.environ,
        "PYTHONPATH": str(plant),
        "PYTHONHOME": str(plant),
        "HOME": str(plant),
        "PYTHONSTARTUP": str(plant / "pwd.py"),
    }
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"], cwd=plant, env=env)
    assert res.rc == 0, res.stderr
    assert f"s={USER_SES}" in res.probes
    assert not marker.exists(), marker.read_text()


# -- what a login imports ------------------------------------------------------

LOGIN_IMPORTS = """
import json, sys

class Recorder:  # asked for every module the import system loads
    asked = []

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        cls.asked.append(name)

sys.meta_path.insert(0, Recorder)
before = set(sys.modules)
path = sys.argv[1]
namespace = {"__name__": "pam_module", "__file__": path}
exec(compile(open(path).read(), path, "exec"), namespace)

class Handle:  # what pam_python's pamh offers the module
    service = "imports"
    class exception(Exception):
        pam_result = 7
    def get_user(self, prompt):
        return "nobody"

argv = [path, *sys.argv[2:]]
codes = [namespace[f](Handle(), 0, argv) for f in ("pam_sm_open_session", "pam_sm_close_session")]
loaded = sorted(set(sys.modules) - before)
print(json.dumps([namespace["_refusal"], codes, loaded, Recorder.asked]))
"""


@pytest.mark.parametrize("args", ["force revoke", "force=auto persistent unavailable=ignore"])
def test_a_login_runs_only_the_login_modules_itself(tree, args):
    """The loader run as pam_python runs it, on the interpreter pam_python
    embeds: of the package, only the package, kernel and keyinit are
    loaded, and the second step ran them itself (the import system, which
    asks sys.meta_path for every module it loads, was asked only for
    _ctypes and pwd); neither the pykeyinit command nor anything else is
    imported."""
    require_root()
    so = pam_python_so()
    interpreter = (so and host.embedded_python(so)) or "/usr/bin/python3"
    proc = subprocess.run(
        [str(interpreter), "-I", "-c", LOGIN_IMPORTS, str(tree), *args.split()],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    refusal, codes, loaded, asked = json.loads(proc.stdout)
    assert (refusal, codes) == ("", [PAM_SUCCESS, PAM_SUCCESS])
    assert loaded == [
        "_ctypes",
        "pam_pykeyinit",
        "pam_pykeyinit.kernel",
        "pam_pykeyinit.keyinit",
        "pwd",
    ]
    assert asked == ["_ctypes", "pwd"]
