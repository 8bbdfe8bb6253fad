"""pam_pykeyinit's loader, which pam_python runs; trust.py says how it decides."""

import _imp
import marshal
import os
import stat
import sys
from _frozen_importlib_external import MAGIC_NUMBER

TYPE_CHECKING = False
if TYPE_CHECKING:
    import types  # noqa: F401 - for the type comments


def unsafe(path, strict):  # type: (str, bool) -> str
    st = os.lstat(path)
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    if stat.S_ISLNK(st.st_mode):  # its mode means nothing; where it leads, strict or not
        return f"{path} is a symbolic link" if strict else ""
    sticky = not strict and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
    if st.st_mode & 0o022 and not sticky:
        return f"{path} is writable by group or others (mode {st.st_mode & 0o7777:04o})"
    return ""


def pyc(pkgdir, name):  # type: (str, str) -> str
    # the package's own __pycache__, whatever sys.pycache_prefix says
    return f"{pkgdir}/__pycache__/{name}.{sys.implementation.cache_tag}.pyc"


def read(path):  # type: (str) -> bytes
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return os.read(fd, os.fstat(fd).st_size + 1)
    finally:
        os.close(fd)


def code(pkgdir, name):  # type: (str, str) -> types.CodeType
    source = f"{pkgdir}/{name}.py"
    st = os.lstat(source)  # (checked before: no symbolic link)
    try:
        cached = read(pyc(pkgdir, name))
    except OSError:
        cached = b""
    flags = int.from_bytes(cached[4:8], "little")
    key = (st.st_mtime_ns // 10**9 & 0xFFFFFFFF) | (st.st_size & 0xFFFFFFFF) << 32
    # Current as the import system judges it (importlib._bootstrap_external):
    # a timestamp pyc with the source's mtime and size, or a checked-hash
    # one with its hash. An unchecked-hash pyc proves nothing: the source.
    current = cached[:4] == MAGIC_NUMBER and flags == 0
    current = current and int.from_bytes(cached[8:16], "little") == key
    data = b"" if current else read(source)
    if cached[:4] == MAGIC_NUMBER and flags == 3:
        current = cached[8:16] == _imp.source_hash(int.from_bytes(MAGIC_NUMBER, "little"), data)
    if current:
        found = marshal.loads(memoryview(cached)[16:])  # noqa: S302 - checked above
        _imp._fix_co_filename(found, source)  # type: ignore[attr-defined]
        return found  # type: ignore[no-any-return]
    return compile(data, source, "exec", dont_inherit=True)


# Before trust.py runs: the package folder, trust.py, the folders above, and
# the package's __pycache__ with trust.py's bytecode in it.
def first_problem(pkgdir):  # type: (str) -> str
    trust, folder = pkgdir + "/trust.py", pkgdir
    why = unsafe(pkgdir, True) or unsafe(trust, True)
    while folder != "/" and not why:
        folder = os.path.dirname(folder)
        why = unsafe(folder, False)
    for entry in (pkgdir + "/__pycache__", pyc(pkgdir, "trust")):
        if not why and os.path.lexists(entry):
            why = unsafe(entry, True)
    return why


def load(path):  # type: (str) -> tuple[dict[str, object], str]
    pkgdir = os.path.dirname(os.path.realpath(path))
    why = first_problem(pkgdir)
    if why:
        return {}, why
    trust = {"__name__": "pam_pykeyinit.trust"}  # type: dict[str, object]
    exec(code(pkgdir, "trust"), trust)  # noqa: S102 - checked by first_problem
    return trust["handlers"](path, pkgdir, unsafe, code)  # type: ignore[operator,no-any-return]


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
