"""pam_pykeyinit's loader, which pam_python runs; trust.py says how it decides."""

import os
import stat
from _frozen_importlib_external import SourceFileLoader, cache_from_source


def unsafe(path, strict):  # type: (str, bool) -> str
    st = os.lstat(path)
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    sticky = not strict and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode) and not sticky:
        return f"{path} is writable by group or others (mode {st.st_mode & 0o7777:04o})"
    return ""


# Before trust.py runs: the package folder, trust.py, the folders above, and
# the bytecode SourceFileLoader would read instead of trust.py.
def first_problem(pkgdir):  # type: (str) -> str
    trust, folder = pkgdir + "/trust.py", pkgdir
    why = unsafe(pkgdir, True) or unsafe(trust, True)
    while folder != "/" and not why:
        folder = os.path.dirname(folder)
        why = unsafe(folder, False)
    for entry in (pkgdir + "/__pycache__", cache_from_source(trust)):
        if not why and os.path.lexists(entry):
            why = unsafe(entry, True)
    return why


def load(path):  # type: (str) -> tuple[dict[str, object], str]
    pkgdir = os.path.dirname(os.path.realpath(path))
    why = first_problem(pkgdir)
    if why:
        return {}, why
    name = "pam_pykeyinit.trust"
    trust = {"__name__": name}  # type: dict[str, object]
    code = SourceFileLoader(name, pkgdir + "/trust.py").get_code(name)
    exec(code, trust)  # type: ignore[arg-type]  # noqa: S102 - checked by first_problem
    return trust["handlers"](path, pkgdir, unsafe)  # type: ignore[operator,no-any-return]


def refuse(pamh, flags, argv):  # type: (object, int, list[str]) -> int
    try:  # a bare syslog(3) at LOG_AUTHPRIV | LOG_ERR, as kernel.syslog makes; the
        import ctypes  # line holds paths and the service name, C strings: no NUL

        line = f"pam_pykeyinit({pamh.service or '<unknown>'}):"  # type: ignore[attr-defined]
        line += f" refusing to load {__file__}: {_refusal}"
        ctypes.CDLL(None).syslog(83, b"%s", line.encode("utf-8", "backslashreplace"))
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
