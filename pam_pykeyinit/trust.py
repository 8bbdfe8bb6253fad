"""How the loader decides that it may run the package, and its second step.

pam_python runs pam_module.py, the loader, for every PAM handle, compiling
it from source each time (it writes no bytecode): so the loader holds only
what must run before the first file of the package can be trusted, and
everything else is here, in bytecode that the .deb compiles once. `make
bench` shows what each step costs (README.md, "Speed").

    session optional pam_python.so /lib/security/pam_pykeyinit.py force revoke

Trust, in two steps, as sshd's StrictModes, one rule (pam_module.unsafe):
owned by root and not writable by group or others; a folder on the way may
be writable if it is sticky (like /tmp), since then only the owner of its
root-owned entry can rename it. No file of the package runs before it
was checked.

First, in the loader (pam_module.first_problem): the real folder of the
loader (the package), every folder above it, this file and its bytecode
in __pycache__. The loader then runs this file, and hands it the path
pam_python was given and the rule.

Second, here, handlers(): every other file in the package and in its
__pycache__ (package_problem), then the path pam_python was given, walked
symlink by symlink (walk_problem). Only then are the package and the
modules a login runs (LOGIN_MODULES) run, from that folder alone, by
_module(): the import system's finders (sys.path, sys.meta_path and the
host process's import hooks) are never asked for them, and a package that
this process already imported from elsewhere is refused. If either step
fails, every entry point logs why and returns
PAM_SERVICE_ERR (pam_module.refuse). Neither the working directory nor the
environment is read. Once both steps pass, keyinit.py's pam_sm_* functions
(keyinit.HANDLERS) become the loader's own.

walk_problem() walks the path entry by entry as the kernel's path walk does
(path_resolution(7)), applying the rule to every folder and symlink met, so
that a symlink in a folder others can write to is refused even though its
target is fine. The last entry, the file itself, gets the strict rule.
pam_python has read that file before any of this runs: the walk refuses a
setup in which others could change what pam_python runs, it cannot undo a
change made already.
"""

import os
import stat
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import SourceFileLoader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

MAXSYMLINKS = 40  # the kernel's limit on symlinks in one path walk


def _components(path: str) -> "list[str]":
    """Components left to walk, in pop() order."""
    return [c for c in reversed(path.split("/")) if c not in ("", ".")]


def walk_problem(path: str, unsafe: "Callable[[str, bool], str]") -> str:
    """Why some entry on the way to ``path`` is unsafe, or ''. Folders and
    symlinks on the way get ``unsafe(entry, False)`` (sticky folders
    allowed), the final entry ``unsafe(entry, True)``."""
    if not path.startswith("/"):
        return f"{path!r} is not an absolute path"
    todo = _components(path)
    current, links = "/", 0
    why = unsafe("/", False)
    while todo and not why:
        name = todo.pop()
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        why = unsafe(candidate, len(todo) == 0)
        if not stat.S_ISLNK(os.lstat(candidate).st_mode):
            current = candidate
            continue
        links += 1
        if links > MAXSYMLINKS:
            return f"too many symbolic links in {path}"
        target = os.readlink(candidate)
        current = "/" if target.startswith("/") else current
        todo.extend(_components(target))
    return why


def package_problem(pkgdir: str, unsafe: "Callable[[str, bool], str]") -> str:
    """Why some file in the package or in its __pycache__ is unsafe, or ''.
    The folders themselves and those above are the loader's first step."""
    folders, why = [pkgdir], ""
    while folders and not why:
        for entry in os.scandir(folders.pop()):
            why = why or unsafe(entry.path, True)
            if entry.name == "__pycache__" and entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    return why


def problem(path: str, pkgdir: str, unsafe: "Callable[[str, bool], str]") -> str:
    """The second step's verdict on the loader at ``path`` in ``pkgdir``."""
    return package_problem(pkgdir, unsafe) or walk_problem(path, unsafe)


# The package's modules that a login runs, in the order they import each
# other. _module() runs them: through the import system (finders, specs,
# module locks) each would cost every login some 0.2 million instructions
# more (README.md, "Speed"). A module of the package that is not listed
# still loads, through the import system, from the package's __path__ (the
# checked folder); tests/pam/test_loader.py fails until it is listed.
LOGIN_MODULES = ("kernel", "keyinit")
PACKAGE = "pam_pykeyinit"


def _module(name: str, path: str, package: "ModuleType | None") -> "ModuleType":
    """sys.modules[name], run from ``path`` first if it is not loaded yet:
    from its bytecode if current, else from its source, as the import system
    decides (SourceFileLoader.get_code, which also fixes the code's file
    name), with the module spec and attributes the import system would give
    it (a package: ``package`` None, its folder as __path__).

    Two threads may run a module at once (none has effects on import):
    setdefault keeps the first. A module that the host's own import
    registered is still running until __import__ returns it (the import
    system registers a module before running it, and __import__ waits)."""
    if name not in sys.modules:
        loader = SourceFileLoader(name, path)
        spec = ModuleSpec(name, loader, origin=path, is_package=package is None)
        fresh = type(sys)(name)
        fresh.__spec__, fresh.__loader__, fresh.__file__ = spec, loader, path
        fresh.__package__ = spec.parent
        if package is None:
            fresh.__path__ = spec.submodule_search_locations = [os.path.dirname(path)]
        code = loader.get_code(name)
        assert code is not None  # always, for a .py file
        exec(code, vars(fresh))  # noqa: S102 - a file of the checked package
        if sys.modules.setdefault(name, fresh) is fresh and package is not None:
            setattr(package, name.rpartition(".")[2], fresh)
    __import__(name)
    return sys.modules[name]


def handlers(
    path: str, pkgdir: str, unsafe: "Callable[[str, bool], str]"
) -> "tuple[dict[str, object], str]":
    """The second step, then the handoff: keyinit.py's entry points by
    name, or ({}, why) when something is unsafe."""
    why = problem(path, pkgdir, unsafe)
    if why:
        return {}, why
    package = _module(PACKAGE, pkgdir + "/__init__.py", None)
    if list(package.__path__) != [pkgdir]:
        return {}, f"another pam_pykeyinit is loaded in this process: {package.__path__}"
    modules = {
        name: _module(f"{PACKAGE}.{name}", f"{pkgdir}/{name}.py", package) for name in LOGIN_MODULES
    }
    return dict(modules["keyinit"].HANDLERS), ""
