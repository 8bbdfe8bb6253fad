"""The file pam_python executes for pam_pykeyinit: a thin, careful loader.

    session optional pam_python.so /lib/security/pam_pykeyinit.py force revoke

pam_python compiles this file from source at every login (it writes no
bytecode), so it holds only what must run before package code can be
trusted; `make bench` measured its compilation at X ms a login.

Trust, in two steps, as sshd's StrictModes: before anything is imported,
the real folder of this file (the package), every file in it and in its
__pycache__, and every folder above it must be owned by root and not
writable by group or others; a folder above may be writable if it is sticky
(like /tmp), since then only the owner of its root-owned entry can rename
it. Then the package's trust.py walks the path pam_python was given, symlink
by symlink, with the same rule (a symlink in a writable folder could point
elsewhere). If either step fails, every entry point logs why and returns
PAM_SERVICE_ERR. Nothing is added to sys.path; neither the working directory
nor the environment is read. Once both steps pass, the pam_sm_* functions of
keyinit.py are this file's own (see load() and the end).
"""

import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # function types are in comments: this file is compiled at every login
    from types import ModuleType  # noqa: F401 - used in a type comment


def unsafe(path, strict):  # type: (str, bool) -> str
    """Why ``path`` could be replaced by someone other than root, or ''."""
    st = os.lstat(path)
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    sticky = not strict and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode) and not sticky:
        return f"{path} is writable by group or others (mode {st.st_mode & 0o7777:04o})"
    return ""


def above_problem(path):  # type: (str) -> str
    """Why a folder above ``path`` is unsafe (sticky ones allowed), or ''."""
    why = ""
    while path != "/" and not why:
        path = os.path.dirname(path)
        why = unsafe(path, False)
    return why


def package_problem(pkgdir):  # type: (str) -> str
    """Why the package folder, a file in it or in its __pycache__, or a
    folder above it is unsafe, or ''."""
    folders, why = [pkgdir], above_problem(pkgdir)
    while folders and not why:
        folder = folders.pop()
        why = unsafe(folder, True)
        for entry in os.scandir(folder):
            why = why or unsafe(entry.path, True)
            if entry.name == "__pycache__" and entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    return why


def load(path):  # type: (str) -> tuple[ModuleType | None, str]
    """(pam_pykeyinit.keyinit, '') when the package is safe to run, else (None, why)."""
    pkgdir = os.path.dirname(os.path.realpath(path))
    why = package_problem(pkgdir)
    if why:
        return None, why
    package = sys.modules.get("pam_pykeyinit")
    if package is None:
        # importlib.util's steps with the modules CPython loads at start-up,
        # from the checked folder only: sys.path is neither read nor changed.
        import _frozen_importlib as bootstrap
        import _frozen_importlib_external as external

        init, inside = os.path.join(pkgdir, "__init__.py"), [pkgdir]
        spec = external.spec_from_file_location(
            "pam_pykeyinit", init, submodule_search_locations=inside
        )
        assert spec is not None and spec.loader is not None  # always, for a .py file
        package = bootstrap.module_from_spec(spec)
        sys.modules["pam_pykeyinit"] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules["pam_pykeyinit"]
            raise
    if list(package.__path__) != [pkgdir]:
        return None, f"another pam_pykeyinit is loaded in this process: {package.__path__}"
    # Second step, in the now trusted package: the path given, link by link.
    from pam_pykeyinit import trust

    why = trust.walk_problem(path, unsafe)
    if why:
        return None, why
    # The handoff: keyinit.py's pam_sm_* functions answer every call from now on.
    from pam_pykeyinit import keyinit

    return keyinit, ""


def refuse(pamh, flags, argv):  # type: (object, int, list[str]) -> int
    # No package code can be used: a bare syslog(3) call as kernel.syslog
    # makes (LOG_AUTHPRIV | LOG_ERR, no openlog()).
    try:
        import ctypes

        service = getattr(pamh, "service", None) or "<unknown>"
        line = f"pam_pykeyinit({service}): refusing to load {__file__}: {_refusal}"
        data = line.replace("\0", "\\0").encode("utf-8", "backslashreplace")
        ctypes.CDLL(None).syslog(ctypes.c_int((10 << 3) | 3), b"%s", data)
    except Exception:  # noqa: BLE001, S110 - refuse even if logging fails
        pass
    return 3  # PAM_SERVICE_ERR


_entry, _refusal = None, "imported as a package module, not run by pam_python"
if __name__ != "pam_pykeyinit.pam_module":  # not the pykeyinit command's import
    try:
        _entry, _refusal = load(__file__)
    except Exception as exc:  # noqa: BLE001 - a refusal, never a traceback
        _refusal = f"{type(exc).__name__}: {exc}"
pam_sm_authenticate = pam_sm_setcred = pam_sm_acct_mgmt = refuse
pam_sm_open_session = pam_sm_close_session = pam_sm_chauthtok = refuse
if _entry is not None:
    pam_sm_authenticate, pam_sm_setcred = _entry.pam_sm_authenticate, _entry.pam_sm_setcred
    pam_sm_acct_mgmt, pam_sm_chauthtok = _entry.pam_sm_acct_mgmt, _entry.pam_sm_chauthtok
    pam_sm_open_session = _entry.pam_sm_open_session
    pam_sm_close_session = _entry.pam_sm_close_session
