"""Facts about the host's PAM, found the way the system finds them.

Never imported at login: used by the pykeyinit command, the Makefile and the
tests, so that no path or version of one distribution is assumed.

- The folders libpam loads relative module names from are compiled into
  libpam (DEFAULT_MODULE_PATH, and on Debian an ISA folder): they are read
  out of the libpam.so.0 that the dynamic linker loads.
- pam_python.so is looked up in those folders, as libpam would.
- The folders libpam reads stack files from (/etc/pam.d, then the vendor
  folder), and whether it carries Debian's @include patch, which reads
  includes from /etc/pam.d only: read out of libpam.so.0 as well.
- The folder pam_python takes a relative module file from
  (DEFAULT_SECURITY_DIR) and the libpython it embeds are compiled into
  pam_python.so: read out of it too, and so is whether it holds the GIL
  when libpam calls into Python (gil_safe).
- The Linux-PAM version comes from the package manager (dpkg, else rpm).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

# What libpam and pam_python fall back on when nothing can be read.
FALLBACK_MODULE_DIRS = (
    "/usr/lib64/security",
    "/lib64/security",
    "/usr/lib/security",
    "/lib/security",
)
PAM_PYTHON_DEFAULT_DIR = "/lib/security/"  # pam_python.c: DEFAULT_SECURITY_DIR
SECURITY_DIR = re.compile(rb"\x00(/[\w/.+-]*/security/?)\x00")
# libpam's PAM_CONFIG_DF, PAM_CONFIG_DIST_DF and (with VENDORDIR)
# PAM_CONFIG_DIST2_DF, in the order _pam_open_config_file tries them
CONFIG_DIR = re.compile(rb"(?<=\x00)(/[\w/.+-]*/pam\.d)/%s(?=\x00)")  # strings may abut
FALLBACK_CONFIG_DIRS = ("/etc/pam.d", "/usr/lib/pam.d")
LIBPYTHON = re.compile(rb"libpython(\d+\.\d+)[\w.]*\.so")
# patch 3005's python_startup_mark (pam_python.c), a C string
FIXED_STARTUP_MARK = re.compile(rb"\x00pam_python fixed start-up: ([^\x00]{1,512})\x00")
SYSTEM_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _run(*cmd: str) -> str | None:
    """A system tool's stdout, or None when it is missing or fails."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=SYSTEM_ENV)
    except OSError:
        return None
    return proc.stdout if proc.returncode == 0 else None


def libpam_path() -> Path | None:
    """The libpam.so.0 the dynamic linker gives this process."""
    import ctypes  # not on the login path: this module never is

    try:
        ctypes.CDLL("libpam.so.0")
    except OSError:
        return None
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and os.path.basename(fields[5]).startswith("libpam.so"):
            return Path(fields[5])
    return None


def _libpam_bytes() -> bytes:
    lib = libpam_path()
    try:
        return lib.read_bytes() if lib is not None else b""
    except OSError:
        return b""


def pam_config_dirs() -> list[Path]:
    """Where libpam looks for a service's stack file, in its order (for
    Linux-PAM since 1.4: /etc/pam.d, then the vendor folder /usr/lib/pam.d,
    then VENDORDIR/pam.d where built with one), read out of libpam.so.0;
    the first two for a libpam that could not be read."""
    found = [m.decode() for m in CONFIG_DIR.findall(_libpam_bytes())]
    return [Path(d) for d in dict.fromkeys(found or FALLBACK_CONFIG_DIRS)]


def debian_include() -> bool:
    """Whether libpam carries Debian's 031_pam_include patch: it alone knows
    the '@include FILE' line, and it reads every relative include
    (@include, include, substack) from /etc/pam.d only, where upstream
    looks in the vendor folders too. Measured with libpam 1.5.2-6+deb12u3
    and 1.7.0-5: a file only in /usr/lib/pam.d is found as a service and
    not as an include. The patch's string is in libpam.so.0."""
    return b"\x00@include\x00" in _libpam_bytes()


def module_dirs() -> list[Path]:
    """Where libpam looks for a module named without a path, in its order:
    the folders compiled into libpam (the multiarch one first), then the
    usual ones that exist, for a libpam that could not be read."""
    found = [m.decode() for m in SECURITY_DIR.findall(_libpam_bytes())]
    if found:
        found.sort(key=lambda d: "-linux-" not in d)  # DEFAULT_MODULE_PATH first
    found += [d for d in FALLBACK_MODULE_DIRS if d not in found]
    dirs: list[Path] = []
    seen: set[str] = set()
    for d in found:
        real = os.path.realpath(d)  # /lib is /usr/lib on merged-/usr systems
        if os.path.isdir(real) and real not in seen:
            seen.add(real)
            dirs.append(Path(d))
    return dirs


def find_module(name: str, dirs: list[Path] | None = None) -> Path | None:
    """The file libpam loads for a module line's path (absolute, or a name
    looked up in ``dirs``, by default module_dirs())."""
    if name.startswith("/"):
        return Path(name) if os.path.exists(name) else None
    for d in module_dirs() if dirs is None else dirs:
        if (d / name).exists():
            return d / name
    return None


def pam_python(dirs: list[Path] | None = None) -> Path | None:
    return find_module("pam_python.so", dirs)


def pam_python_dir(pam_python_so: Path | None) -> str:
    """The folder pam_python prefixes to a relative module file."""
    if pam_python_so is not None:
        m = SECURITY_DIR.search(pam_python_so.read_bytes())
        if m:
            return m.group(1).decode().rstrip("/") + "/"
    return PAM_PYTHON_DEFAULT_DIR


def fixed_startup(pam_python_so: Path) -> str | None:
    """What this pam_python.so says of its start-up when it starts Python
    from a path configuration fixed at build time, as the build of
    packaging/pam-python does (patch 3005): the mark the build itself
    carries in its read-only data, "executable /usr/bin/python3.X home
    /usr"; None for a build without it (Debian's), whose interpreter
    computes its paths from the environment of the program calling PAM
    (PATH, PYTHONEXECUTABLE, __PYVENV_LAUNCHER__: doc/pam-python.md,
    "3005: a fixed start-up")."""
    try:
        data = pam_python_so.read_bytes()
    except OSError:
        return None
    m = FIXED_STARTUP_MARK.search(data)
    return m.group(1).decode("utf-8", "replace") if m else None


def gil_safe(pam_python_so: Path) -> bool:
    """Whether this pam_python.so takes the GIL on entry from libpam, as the
    build of packaging/pam-python does (patch 3001) and Debian's does not:
    only then does it call PyGILState_Ensure, a name in its dynamic symbol
    table. A Python program calling PAM in-process (pamela, python-pam)
    crashes on a pam_python line of a build without it (README, Python PAM
    applications)."""
    try:
        return b"\0PyGILState_Ensure\0" in pam_python_so.read_bytes()
    except OSError:
        return False


def embedded_python(pam_python_so: Path) -> Path | None:
    """The interpreter matching the libpython pam_python.so loads, e.g.
    /usr/bin/python3.11."""
    m = LIBPYTHON.search(pam_python_so.read_bytes())
    if not m:
        return None
    for folder in ("/usr/bin", "/usr/local/bin", "/bin"):
        candidate = Path(folder) / f"python{m.group(1).decode()}"
        if candidate.exists():
            return candidate
    return None


def import_path(interpreter: Path) -> list[str] | None:
    """sys.path of ``interpreter`` started as pam_python starts it: isolated
    (-I: no environment, no user site) with site enabled, so that every
    .pth file has had its say. None if it cannot be asked."""
    out = _run(str(interpreter), "-I", "-c", "import json, sys; print(json.dumps(sys.path))")
    if out is None:
        return None
    try:
        path = json.loads(out)
    except ValueError:
        return None
    return [p for p in path if isinstance(p, str) and p]


def linux_pam_version() -> tuple[int, ...] | None:
    """Linux-PAM's upstream version, e.g. (1, 5, 2), from dpkg or rpm."""
    out = _run("dpkg-query", "-W", "-f=${Version}", "libpam0g") or _run(
        "rpm", "-q", "--qf", "%{VERSION}", "pam"
    )
    m = re.match(r"(?:\d+:)?(\d+(?:\.\d+)+)", out or "")
    return tuple(int(x) for x in m.group(1).split(".")) if m else None
