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
root-owned entry can rename it. Nothing runs before it was checked.

First, in the loader (pam_module.first_problem): the real folder of the
loader (the package), every folder above it, this file and its bytecode
in __pycache__. The loader then runs this file, and hands it the path
pam_python was given and the rule.

Second, here, handlers(): every other file in the package and in its
__pycache__ (package_problem), then the path pam_python was given, walked
symlink by symlink (walk_problem). Only then are the package and the
modules a login runs (LOGIN_MODULES) run, from that folder alone, by
_module(): no sys.path, no import hook of the host process is consulted,
and a package that this process already imported from elsewhere is
refused. If either step fails, every entry point logs why and returns
PAM_SERVICE_ERR (pam_module.refuse). Neither the working directory nor the
environment is read. Once both steps pass, keyinit.py's pam_sm_* functions
(keyinit.HANDLERS) become the loader's own.

walk_problem() walks the path entry by entry as the kernel's path walk does
(path_resolution(7)), applying the rule to every folder and symlink met, so
that a symlink in a folder others can write to is refused even though its
target is fine. The last entry, the file itself, gets the strict rule.
"""

import os
import stat
import sys
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
    """sys.modules[name], or the module run from ``path``: its bytecode if
    current, else its source, as the import system decides (SourceFileLoader,
    which also fixes the code's file name). A package gets its __path__.
    Registered with setdefault: two threads that load at once both run the
    module (none of them has effects on import), and both keep the first."""
    module = sys.modules.get(name)
    if module is None:
        fresh = type(sys)(name)
        fresh.__file__, fresh.__package__ = path, PACKAGE
        if package is None:
            fresh.__path__ = [os.path.dirname(path)]
        code = SourceFileLoader(name, path).get_code(name)
        assert code is not None  # always, for a .py file
        exec(code, vars(fresh))  # noqa: S102 - a file of the checked package
        module = sys.modules.setdefault(name, fresh)
        if package is not None:
            setattr(package, name.rpartition(".")[2], module)
    return module


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
