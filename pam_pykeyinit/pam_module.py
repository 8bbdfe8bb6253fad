"""pam_pykeyinit's loader, which pam_python runs; trust.py says how it decides."""

import os
import stat
import sys


def unsafe(path, strict):  # type: (str, bool) -> str
    st = os.lstat(path)
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    sticky = not strict and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode) and not sticky:
        return f"{path} is writable by group or others (mode {st.st_mode & 0o7777:04o})"
    return ""


def above_problem(path):  # type: (str) -> str
    why = ""
    while path != "/" and not why:
        path = os.path.dirname(path)
        why = unsafe(path, False)
    return why


def package_problem(pkgdir):  # type: (str) -> str
    folders, why = [pkgdir], above_problem(pkgdir)
    while folders and not why:
        folder = folders.pop()
        why = unsafe(folder, True)
        for entry in os.scandir(folder):
            why = why or unsafe(entry.path, True)
            if entry.name == "__pycache__" and entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    return why


def load(path):  # type: (str) -> tuple[dict[str, object], str]
    pkgdir = os.path.dirname(os.path.realpath(path))
    why = package_problem(pkgdir)
    if why:
        return {}, why
    package = sys.modules.get("pam_pykeyinit")
    if package is None:
        import _frozen_importlib as bootstrap
        import _frozen_importlib_external as external

        spec = external.spec_from_file_location(
            "pam_pykeyinit", pkgdir + "/__init__.py", submodule_search_locations=[pkgdir]
        )
        assert spec is not None and spec.loader is not None  # always, for a .py file
        package = sys.modules["pam_pykeyinit"] = bootstrap.module_from_spec(spec)
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules["pam_pykeyinit"]
            raise
    if list(package.__path__) != [pkgdir]:
        return {}, f"another pam_pykeyinit is loaded in this process: {package.__path__}"
    from pam_pykeyinit import trust

    return trust.handlers(path, unsafe)


def refuse(pamh, flags, argv):  # type: (object, int, list[str]) -> int
    try:  # a bare syslog(3), LOG_AUTHPRIV | LOG_ERR, as kernel.syslog makes
        import ctypes

        line = f"pam_pykeyinit({getattr(pamh, 'service', None) or '<unknown>'}):"
        line += f" refusing to load {__file__}: {_refusal}"
        data = line.replace("\0", "\\0").encode("utf-8", "backslashreplace")
        ctypes.CDLL(None).syslog(ctypes.c_int(83), b"%s", data)
    except Exception:  # noqa: BLE001, S110 - refuse even if logging fails
        pass
    return 3  # PAM_SERVICE_ERR


_handlers = {}  # type: dict[str, object]
_refusal = "imported as a package module, not run by pam_python"
if __name__ != "pam_pykeyinit.pam_module":  # the pykeyinit command's import
    try:
        _handlers, _refusal = load(__file__)
    except Exception as exc:  # noqa: BLE001 - a refusal, never a traceback
        _refusal = f"{type(exc).__name__}: {exc}"
pam_sm_authenticate = pam_sm_setcred = pam_sm_acct_mgmt = refuse
pam_sm_open_session = pam_sm_close_session = pam_sm_chauthtok = refuse
globals().update(_handlers)
