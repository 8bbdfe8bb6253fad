"""How the loader decides that it may run the package, and its second step.

pam_python runs pam_module.py, the loader, for every PAM handle: Debian's
build compiles it from source each time (it writes no bytecode), this
project's runs its bytecode when current (patch 3007). So the loader holds
only what must run before the first file of the package can be trusted,
and everything else is here, in bytecode that the .deb compiles once.
`make bench --stages` shows what each step costs (doc/speed.md).

    session optional pam_python.so /lib/security/pam_pykeyinit.py force revoke

Trust, in two steps, as sshd's StrictModes, one rule (pam_module.unsafe):
owned by root and not writable by group or others; a folder on the way may
be writable if it is sticky (like /tmp), since then only the owner of its
root-owned entry can rename it. A file the loader runs is judged by its
real path: the package folder is the real folder of the loader
(realpath), and a symbolic link among the package's files or in its
__pycache__ (or __pycache__ itself as one) is refused, not followed. A
package that dpkg, rpm, pip or install(1) put in place has none, and
judging a link's target would mean walking its whole way at every login.
No file of the package runs before it was checked.

The code of a file is read by pam_module.code, the one reader, from the
file itself (O_NOFOLLOW) and from its bytecode in the package's own
__pycache__ (never from sys.pycache_prefix, which a Python host program
may point anywhere): the bytecode is used when it is current as the import
system judges it (the source's mtime and size, or its hash), else the
source is compiled. Nothing is ever written: no bytecode, no __pycache__,
whatever the host's umask or sys.dont_write_bytecode.

First, in the loader (pam_module.first_problem): the package folder, every
folder above it, trust.py, the package's __pycache__ and trust.py's
bytecode in it. The loader then runs this file, and hands it the path
pam_python was given, the rule and the reader.

Second, here, handlers(): every other file in the package and in its
__pycache__ (package_problem), then the path pam_python was given, walked
symlink by symlink (walk_problem). Only then are the package and the
modules a login runs (LOGIN_MODULES) run, from that folder alone, by
_module(): the import system's finders (sys.path, sys.meta_path and the
host process's import hooks) are never asked for them, and a package that
this process already imported from elsewhere is refused. A module of the
package that a login needs only on failure (advice) is run the same way
when it is first needed (keyinit.module). If either step fails, every
entry point logs why and returns PAM_SERVICE_ERR (pam_module.refuse).
Neither the working directory nor the environment is read. Once both steps
pass, keyinit.py's pam_sm_* functions (keyinit.HANDLERS) become the
loader's own.

walk_problem() walks the path entry by entry as the kernel's path walk does
(path_resolution(7)), applying the rule to every folder and symlink met, so
that a symlink in a folder others can write to is refused even though its
target is fine. The entry it ends on, the file itself, gets the strict
rule. pam_python has read that file before any of this runs: the walk
refuses a setup in which others could change what pam_python runs, it
cannot undo a change made already.
"""

import os
import stat
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import SourceFileLoader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType, ModuleType

    Unsafe = Callable[[str, bool], str]  # pam_module.unsafe
    Code = Callable[[str, str], CodeType]  # pam_module.code

MAXSYMLINKS = 40  # the kernel's limit on symlinks in one path walk


def _components(path: str) -> "list[str]":
    """Components left to walk, in pop() order."""
    return [c for c in reversed(path.split("/")) if c not in ("", ".")]


def walk_problem(path: str, unsafe: "Unsafe") -> str:
    """Why some entry on the way to ``path`` is unsafe, or ''. Folders and
    symlinks on the way get ``unsafe(entry, False)`` (sticky folders
    allowed), the entry the walk ends on ``unsafe(entry, True)``."""
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
        link = stat.S_ISLNK(os.lstat(candidate).st_mode)
        why = unsafe(candidate, not todo and not link)
        if not link:
            current = candidate
            continue
        links += 1
        if links > MAXSYMLINKS:
            return f"too many symbolic links in {path}"
        target = os.readlink(candidate)
        current = "/" if target.startswith("/") else current
        todo.extend(_components(target))
    return why


def package_problem(pkgdir: str, unsafe: "Unsafe") -> str:
    """Why some file in the package or in its __pycache__ is unsafe, or ''.
    The folders themselves and those above are the loader's first step."""
    folders, why = [pkgdir], ""
    while folders and not why:
        for entry in os.scandir(folders.pop()):
            why = why or unsafe(entry.path, True)
            if entry.name == "__pycache__" and entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    return why


def problem(path: str, pkgdir: str, unsafe: "Unsafe") -> str:
    """The second step's verdict on the loader at ``path`` in ``pkgdir``."""
    return package_problem(pkgdir, unsafe) or walk_problem(path, unsafe)


# The package's modules that a login runs, in the order they import each
# other. _module() runs them: through the import system (finders, specs,
# module locks) each would cost every login some 0.2 million instructions
# more (doc/speed.md). A module that a login needs only on failure
# is run by _module() too, when keyinit.module() first asks for it;
# tests/pam/test_loader.py fails when a login loads any other way.
LOGIN_MODULES = ("kernel", "keyinit")
PACKAGE = "pam_pykeyinit"


def _module(name: str, pkgdir: str, package: "ModuleType | None", code: "Code") -> "ModuleType":
    """The package (``package`` None, ``name`` "__init__") or its module
    ``name`` from sys.modules, run from ``pkgdir`` first if it is not loaded
    yet, with the code ``code`` reads (pam_module.code: the file's current
    bytecode in pkgdir/__pycache__, else its source), and with the module
    spec and attributes the import system would give it (a package: its
    folder as __path__).

    Two threads may run a module at once (none has effects on import):
    setdefault keeps the first. A module that the host's own import
    registered is still running until __import__ returns it (the import
    system registers a module before running it, and __import__ waits)."""
    full = PACKAGE if package is None else f"{PACKAGE}.{name}"
    if full not in sys.modules:
        path = f"{pkgdir}/{name}.py"
        # The spec's loader is what the import system would name, for
        # tools that read it afterwards (linecache's get_source reads the
        # source); nothing here loads through it.
        loader = SourceFileLoader(full, path)
        spec = ModuleSpec(full, loader, origin=path, is_package=package is None)
        fresh = type(sys)(full)
        fresh.__spec__, fresh.__loader__, fresh.__file__ = spec, loader, path
        fresh.__package__ = spec.parent
        if package is None:
            fresh.__path__ = spec.submodule_search_locations = [pkgdir]
        exec(code(pkgdir, name), vars(fresh))  # noqa: S102 - a file of the checked package
        if sys.modules.setdefault(full, fresh) is fresh and package is not None:
            setattr(package, name, fresh)
    __import__(full)
    return sys.modules[full]


def handlers(
    path: str, pkgdir: str, unsafe: "Unsafe", code: "Code"
) -> "tuple[dict[str, object], str]":
    """The second step, then the handoff: keyinit.py's entry points by
    name, or ({}, why) when something is unsafe."""
    why = problem(path, pkgdir, unsafe)
    if why:
        return {}, why
    package = _module("__init__", pkgdir, None, code)
    if list(package.__path__) != [pkgdir]:
        return {}, f"another pam_pykeyinit is loaded in this process: {package.__path__}"

    def load(name: str) -> "ModuleType":
        return _module(name, pkgdir, package, code)

    modules = {name: load(name) for name in LOGIN_MODULES}
    modules["keyinit"].module = load  # type: ignore[attr-defined]  # keyinit.module
    return dict(modules["keyinit"].HANDLERS), ""
