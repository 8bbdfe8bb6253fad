"""The file pam_python executes for pam_pykeyinit: a thin, careful loader.

    session optional pam_python.so /lib/security/pam_pykeyinit.py force revoke

pam_python runs this file as root inside every login. Before anything else
is imported from the package next to it, the loader makes sure nobody but
root could have replaced any of it (the rule of sshd's StrictModes): this
file, every folder and symlink on the way to it, the package folder and
every file in it must be owned by root and not writable by group or others.
A folder above the package may be group/world-writable only if it is
sticky (like /tmp), since then only the owner of the next, root-owned entry
can rename it. Otherwise every entry point logs why and returns
PAM_SERVICE_ERR.

The package is loaded from its own folder only: nothing is added to
sys.path, and neither the working directory nor the environment is read.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

_PACKAGE = "pam_pykeyinit"
_MAX_SYMLINKS = 40  # as the kernel's path walk (path_resolution(7))
_ENTRY_POINTS = (
    "pam_sm_authenticate",
    "pam_sm_setcred",
    "pam_sm_acct_mgmt",
    "pam_sm_open_session",
    "pam_sm_close_session",
    "pam_sm_chauthtok",
)
_PAM_TYPES = {
    "pam_sm_authenticate": "auth",
    "pam_sm_setcred": "setcred",
    "pam_sm_acct_mgmt": "account",
    "pam_sm_open_session": "session",
    "pam_sm_close_session": "session",
    "pam_sm_chauthtok": "chauthtok",
}


class UnsafePath(Exception):
    """Something on the way to the module could be replaced by non-root."""


def _entry_problem(path: str, st: os.stat_result, sticky_ok: bool) -> str | None:
    """Why this one entry makes the path unsafe, or None."""
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    if stat.S_ISLNK(st.st_mode):
        return None  # a symlink's own mode bits mean nothing
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        if sticky_ok and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
            return None
        return f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def resolve_safely(path: str) -> str:
    """Walk ``path`` as the kernel would, checking every entry on the way.

    Returns the resolved path; raises UnsafePath with the reason.
    """
    if not path.startswith("/"):
        raise UnsafePath(f"{path!r} is not an absolute path")
    todo = [c for c in reversed(path.split("/")) if c]
    current = "/"
    links = 0
    problem = _entry_problem("/", os.lstat("/"), sticky_ok=True)
    while todo and problem is None:
        name = todo.pop()
        if name == ".":
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        st = os.lstat(candidate)
        problem = _entry_problem(candidate, st, sticky_ok=bool(todo))
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                raise UnsafePath(f"too many symbolic links resolving {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            todo.extend(c for c in reversed(target.split("/")) if c)
        else:
            current = candidate
    if problem:
        raise UnsafePath(problem)
    return current


def check_package(pkgdir: str) -> None:
    """The package folder and everything in it (one level, and
    __pycache__): root-owned and writable by nobody else, or UnsafePath."""
    problem = _entry_problem(pkgdir, os.lstat(pkgdir), sticky_ok=False)
    folders = [pkgdir]
    while folders and problem is None:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                problem = _entry_problem(entry.path, st, sticky_ok=False)
                if problem:
                    break
                if entry.name == "__pycache__" and stat.S_ISDIR(st.st_mode):
                    folders.append(entry.path)
    if problem:
        raise UnsafePath(problem)


def _import_package(root: str, pkgdir: str) -> tuple[ModuleType | None, str | None]:
    loaded = sys.modules.get(_PACKAGE)
    if loaded is None:
        # The machinery importlib.util uses, already loaded by every CPython
        # at start-up; importing importlib.util would cost each login ~3 ms.
        import _frozen_importlib as bootstrap
        import _frozen_importlib_external as external

        spec = external.PathFinder.find_spec(_PACKAGE, [root])
        if spec is None or spec.loader is None:
            return None, f"no {_PACKAGE} package in {root}"
        loaded = bootstrap.module_from_spec(spec)
        sys.modules[_PACKAGE] = loaded
        try:
            spec.loader.exec_module(loaded)
        except BaseException:
            del sys.modules[_PACKAGE]
            raise
    if list(getattr(loaded, "__path__", ())) != [pkgdir]:
        return None, f"another {_PACKAGE} is already loaded in this process from {loaded.__path__}"
    __import__(_PACKAGE + ".entry")
    return sys.modules[_PACKAGE + ".entry"], None


def load(path: str) -> tuple[ModuleType | None, str | None]:
    """(entry module, None) when ``path`` is safe to run, else (None, reason)."""
    try:
        pkgdir = os.path.dirname(resolve_safely(path))
        check_package(pkgdir)
        return _import_package(os.path.dirname(pkgdir), pkgdir)
    except UnsafePath as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a refusal, never a traceback
        return None, f"{type(exc).__name__}: {exc}"


def _log_refusal(pamh: Any, pam_type: str) -> None:
    # The package's own logger cannot be trusted yet; the same libc
    # syslog(3) call as log.py, LOG_AUTHPRIV | LOG_ERR, no openlog().
    import ctypes

    try:
        service = pamh.service or "<unknown>"
    except Exception:  # noqa: BLE001
        service = "<unknown>"
    line = f"{_PACKAGE}({service}:{pam_type}): refusing to load {__file__}: {_refusal}"
    data = line.replace("\0", "\\0").encode("utf-8", "backslashreplace")
    ctypes.CDLL(None).syslog(ctypes.c_int((10 << 3) | 3), b"%s", data)


def _make_handler(name: str) -> Callable[[Any, int, list[str]], int]:
    def handler(pamh: Any, flags: int, argv: list[str]) -> int:
        if _entry is None:
            try:
                _log_refusal(pamh, _PAM_TYPES[name])
            except Exception:  # noqa: BLE001, S110 - refuse even if logging fails
                pass
            return int(pamh.PAM_SERVICE_ERR)
        return int(getattr(_entry, name)(pamh, flags, argv))

    handler.__name__ = name
    return handler


_entry, _refusal = load(__file__)
for _name in _ENTRY_POINTS:
    globals()[_name] = _make_handler(_name)
del _name
