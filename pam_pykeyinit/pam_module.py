"""The file pam_python executes for pam_pykeyinit: a thin, careful loader.

    session optional pam_python.so /lib/security/pam_pykeyinit.py force revoke

pam_python runs this file as root in every login, compiling it from source
each time (it writes no bytecode), so it holds only what must run before any
package code can be trusted; `make bench` measured each 100 lines here at
about 1 ms a login.

Trust, in two steps, as sshd's StrictModes: before anything is imported,
the real folder of this file (the package), every file in it and in its
__pycache__, and every folder above it must be owned by root and not
writable by group or others; a folder above may be writable if it is sticky
(like /tmp), since then only the owner of its root-owned entry can rename
it. Then the package's trust.py walks the path pam_python was given, symlink
by symlink, with the same rule (a symlink in a writable folder could point
elsewhere). If either step fails, every entry point logs why and returns
PAM_SERVICE_ERR. Nothing is added to sys.path; neither the working directory
nor the environment is read.
"""

import os
import stat
import sys


def unsafe(path: str, strict: bool) -> str:
    """Why ``path`` could be replaced by someone other than root, or ''."""
    st = os.lstat(path)
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    sticky = not strict and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode) and not sticky:
        return f"{path} is writable by group or others (mode {st.st_mode & 0o7777:04o})"
    return ""


def load(path: str):  # type: ignore[no-untyped-def]
    """(pam_pykeyinit.entry, '') when the package is safe to run, else (None, why)."""
    pkgdir = os.path.dirname(os.path.realpath(path))
    folders, above = [pkgdir], pkgdir
    why = ""
    while above != "/" and not why:
        above = os.path.dirname(above)
        why = unsafe(above, False)
    while folders and not why:
        folder = folders.pop()
        why = unsafe(folder, True)
        for entry in os.scandir(folder):
            why = why or unsafe(entry.path, True)
            if entry.name == "__pycache__" and entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    if why:
        return None, why
    package = sys.modules.get("pam_pykeyinit")
    if package is None:
        # importlib.util's steps with the modules CPython loads at start-up.
        import _frozen_importlib as bootstrap
        import _frozen_importlib_external as external

        spec = external.PathFinder.find_spec("pam_pykeyinit", [os.path.dirname(pkgdir)])
        if spec is None or spec.loader is None:
            return None, f"no pam_pykeyinit package in {pkgdir}"
        package = bootstrap.module_from_spec(spec)
        sys.modules["pam_pykeyinit"] = package
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules["pam_pykeyinit"]
            raise
    if list(package.__path__) != [pkgdir]:
        return None, f"another pam_pykeyinit is loaded in this process: {package.__path__}"
    from pam_pykeyinit import trust

    return trust.load_entry(path, unsafe)


def refuse(pamh, pam_type: str) -> int:  # type: ignore[no-untyped-def]
    # No package code can be used: the same bare syslog(3) call as log.py
    # (LOG_AUTHPRIV | LOG_ERR, no openlog()).
    try:
        import ctypes

        service = getattr(pamh, "service", None) or "<unknown>"
        line = f"pam_pykeyinit({service}:{pam_type}): refusing to load {__file__}: {_refusal}"
        data = line.replace("\0", "\\0").encode("utf-8", "backslashreplace")
        ctypes.CDLL(None).syslog(ctypes.c_int((10 << 3) | 3), b"%s", data)
    except Exception:  # noqa: BLE001, S110 - refuse even if logging fails
        pass
    return 3  # PAM_SERVICE_ERR


def _handler(name: str, pam_type: str):  # type: ignore[no-untyped-def]
    def handler(pamh, flags, argv):  # type: ignore[no-untyped-def]
        if _entry is None:
            return refuse(pamh, pam_type)
        return getattr(_entry, name)(pamh, flags, argv)

    return handler


try:
    _entry, _refusal = load(__file__)
except Exception as exc:  # noqa: BLE001 - a refusal, never a traceback
    _entry, _refusal = None, f"{type(exc).__name__}: {exc}"
pam_sm_authenticate = _handler("pam_sm_authenticate", "auth")
pam_sm_setcred = _handler("pam_sm_setcred", "setcred")
pam_sm_acct_mgmt = _handler("pam_sm_acct_mgmt", "account")
pam_sm_open_session = _handler("pam_sm_open_session", "session")
pam_sm_close_session = _handler("pam_sm_close_session", "session")
pam_sm_chauthtok = _handler("pam_sm_chauthtok", "chauthtok")
