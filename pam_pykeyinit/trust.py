"""How the loader decides that it may run the package, and its second step.

pam_python runs pam_module.py, the loader, for every PAM handle, compiling
it from source each time (it writes no bytecode): so the loader holds only
what must run before any file of the package can be trusted, and all the
words about it are here, in bytecode that the .deb compiles once. `make
bench` shows what the loader costs (README.md, "Speed").

    session optional pam_python.so /lib/security/pam_pykeyinit.py force revoke

Trust, in two steps, as sshd's StrictModes. First, in the loader, before
anything is imported: the real folder of the loader (the package), every
file in it and in its __pycache__, and every folder above it must be owned
by root and not writable by group or others (pam_module.unsafe,
package_problem, above_problem); a folder above may be writable if it is
sticky (like /tmp), since then only the owner of its root-owned entry can
rename it. The loader then imports the package from that folder alone (no
sys.path is read or changed) and refuses one that this process already
imported from elsewhere. Second, here, handlers(): the path pam_python was
given is walked, symlink by symlink (walk_problem). If either step fails,
every entry point logs why and returns PAM_SERVICE_ERR (pam_module.refuse).
Neither the working directory nor the environment is read. Once both steps
pass, keyinit.py's pam_sm_* functions (keyinit.HANDLERS) become the
loader's own.

walk_problem() walks the path entry by entry as the kernel's path walk does
(path_resolution(7)), applying the loader's rule to every folder and
symlink met, so that a symlink in a folder others can write to is refused
even though its target is fine. As for the folders above the package, a
folder on the way may be writable by others if it is sticky: there only
the owner of an entry, root as checked, may rename or remove it. The last
entry, the file itself, gets the strict rule.
"""

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

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


def handlers(path: str, unsafe: "Callable[[str, bool], str]") -> "tuple[dict[str, object], str]":
    """The second step, then the handoff: keyinit.py's entry points by
    name, or ({}, why) when the path given is unsafe."""
    why = walk_problem(path, unsafe)
    if why:
        return {}, why
    from . import keyinit

    return dict(keyinit.HANDLERS), ""
