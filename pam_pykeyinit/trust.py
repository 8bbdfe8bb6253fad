"""The second step of the loader's trust check: the path pam_python was given.

pam_module.py has already checked the package's real folder, its files and
every folder above it, so this module is trusted. It walks the path that
pam_python was given (often a symlink such as /lib/security/pam_pykeyinit.py
into dist-packages) entry by entry as the kernel's path walk does
(path_resolution(7)), applying the loader's rule (``unsafe``) to every
folder and symlink met, so that a symlink in a folder others can write to is
refused even though its target is fine. As for the folders above the
package, a folder on the way may be writable by others if it is sticky
(like /tmp): there only the owner of an entry, root as checked, may rename
or remove it. The last entry, the file itself, gets the strict rule.
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
