"""The one boundary between pam_pykeyinit and the kernel.

Everything that crosses into C lives here: the ctypes handle on libc, the
system call table per architecture, the keyctl constants spelled as in
<linux/keyctl.h>, and the single place where a failed call becomes a
KernelError that names the call and its errno.

Credentials are changed with raw ``syscall()`` so that only the calling
thread changes: glibc's setresuid() wrapper broadcasts the change to every
thread of the process (the "setxid" signal dance), which is what Red Hat
bz 1997969 fixed in pam_keyinit 1.5.3. Python's os.setresuid is that
wrapper, so it is never used.

An architecture without a checked table fails closed: load() raises
UnsupportedABI and no system call is ever made with a guessed number.

The foreign functions are built on _ctypes, the extension the ctypes
package is written on, with the same classes ctypes.CDLL(None,
use_errno=True) would make. In paired pamtester runs a module importing
``ctypes`` cost 2.6 ms over a 24 ms floor, one importing ``_ctypes`` 0.1
to 0.5 ms (ctypes/__init__, struct and _endian make the difference).
tests/kernel/test_boundary.py checks these types against ctypes' own.
"""

from __future__ import annotations

import _ctypes
import errno as _errno
import os
import sys

# ---------------------------------------------------------------------------
# System call numbers, per architecture, as data. Each number is checked by
# tests/unit/test_headers.py against that architecture's UAPI headers
# (Debian's linux-libc-dev-*-cross packages). Where an architecture has both
# 16-bit and 32-bit uid calls (i386, armhf) the *32 variant is used: the
# 16-bit ones truncate uids above 65535. Keys are Debian multiarch tuples
# (sys.implementation._multiarch). Names of the calls, as in __NR_<name>:
SETRESUID = "setresuid"
SETRESGID = "setresgid"
SETFSUID = "setfsuid"
SETFSGID = "setfsgid"
KEYCTL = "keyctl"

# x86_64: arch/x86/entry/syscalls/syscall_64.tbl
_X86_64 = {SETRESUID: 117, SETRESGID: 119, SETFSUID: 122, SETFSGID: 123, KEYCTL: 250}
# i386 and armhf (EABI, __NR_SYSCALL_BASE 0) share the *32 numbers:
# setresuid32 208, setresgid32 210, setfsuid32 215, setfsgid32 216.
_I386 = {SETRESUID: 208, SETRESGID: 210, SETFSUID: 215, SETFSGID: 216, KEYCTL: 288}
_ARMHF = {SETRESUID: 208, SETRESGID: 210, SETFSUID: 215, SETFSGID: 216, KEYCTL: 311}
# arm64 and riscv64 use include/uapi/asm-generic/unistd.h.
_GENERIC = {SETRESUID: 147, SETRESGID: 149, SETFSUID: 151, SETFSGID: 152, KEYCTL: 219}
# ppc64el: arch/powerpc/kernel/syscalls/syscall.tbl
_PPC64 = {SETRESUID: 164, SETRESGID: 169, SETFSUID: 138, SETFSGID: 139, KEYCTL: 271}
# s390x: arch/s390/kernel/syscalls/syscall.tbl (64-bit names, 32-bit-era numbers)
_S390X = {SETRESUID: 208, SETRESGID: 210, SETFSUID: 215, SETFSGID: 216, KEYCTL: 280}

TABLES: dict[str, dict[str, int]] = {
    "x86_64-linux-gnu": _X86_64,
    "i386-linux-gnu": _I386,
    "arm-linux-gnueabihf": _ARMHF,
    "aarch64-linux-gnu": _GENERIC,
    "riscv64-linux-gnu": _GENERIC,
    "powerpc64le-linux-gnu": _PPC64,
    "s390x-linux-gnu": _S390X,
}

# uname machine and pointer size -> multiarch tuple, for interpreters built
# without a multiarch tuple. x32 (x86_64 kernel, 4-byte pointers from an
# x86_64 process) is deliberately absent: its calls need __X32_SYSCALL_BIT.
_FALLBACK = {
    ("x86_64", 8): "x86_64-linux-gnu",
    ("i686", 4): "i386-linux-gnu",
    ("i586", 4): "i386-linux-gnu",
    ("i386", 4): "i386-linux-gnu",
    ("aarch64", 8): "aarch64-linux-gnu",
    ("armv7l", 4): "arm-linux-gnueabihf",
    ("armv8l", 4): "arm-linux-gnueabihf",
    ("riscv64", 8): "riscv64-linux-gnu",
    ("ppc64le", 8): "powerpc64le-linux-gnu",
    ("s390x", 8): "s390x-linux-gnu",
}


def abi_name(multiarch: str | None, machine: str, pointer_size: int) -> str:
    """The table key for this process, or a description of it if unknown."""
    if multiarch:
        return multiarch
    return _FALLBACK.get((machine, pointer_size), f"{machine} ({pointer_size * 8}-bit)")


def table_for(abi: str) -> dict[str, int] | None:
    """The numbers for ``abi``, or None: the caller must fail closed."""
    return TABLES.get(abi)


# ---------------------------------------------------------------------------
# <linux/keyctl.h>: special keyring IDs
KEY_SPEC_THREAD_KEYRING = -1
KEY_SPEC_PROCESS_KEYRING = -2
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_USER_SESSION_KEYRING = -5

# <linux/keyctl.h>: keyctl operations used by the module
KEYCTL_GET_KEYRING_ID = 0
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_REVOKE = 3
KEYCTL_LINK = 8

KEYCTL_NAMES = {
    KEYCTL_GET_KEYRING_ID: "KEYCTL_GET_KEYRING_ID",
    KEYCTL_JOIN_SESSION_KEYRING: "KEYCTL_JOIN_SESSION_KEYRING",
    KEYCTL_REVOKE: "KEYCTL_REVOKE",
    KEYCTL_LINK: "KEYCTL_LINK",
}
KEY_SPEC_NAMES = {
    KEY_SPEC_THREAD_KEYRING: "KEY_SPEC_THREAD_KEYRING",
    KEY_SPEC_PROCESS_KEYRING: "KEY_SPEC_PROCESS_KEYRING",
    KEY_SPEC_SESSION_KEYRING: "KEY_SPEC_SESSION_KEYRING",
    KEY_SPEC_USER_KEYRING: "KEY_SPEC_USER_KEYRING",
    KEY_SPEC_USER_SESSION_KEYRING: "KEY_SPEC_USER_SESSION_KEYRING",
}

# uid_t/gid_t -1: "leave this ID unchanged" for setres*id(2), and an invalid
# ID that makes setfs*id(2) report the current value without changing it.
UNCHANGED = -1


def _four(fields: list[bytes]) -> Ids:
    r, e, s, fs = (int(x) for x in fields)
    return r, e, s, fs


class KernelError(OSError):
    """A system call failed; ``call`` says which one, with its arguments."""

    def __init__(self, call: str, err: int) -> None:
        super().__init__(err, os.strerror(err))
        self.call = call

    @property
    def errno_name(self) -> str:
        return _errno.errorcode.get(self.errno or 0, f"errno {self.errno}")

    def __str__(self) -> str:
        return f"{self.call} failed: {self.errno_name} ({self.strerror})"


class UnsupportedABI(Exception):
    """No checked system call table for this process's architecture."""


TYPE_CHECKING = False
if TYPE_CHECKING:
    from ctypes import _SimpleCData
    from ctypes import c_int as c_int
    from ctypes import c_long as c_long

    from .types import Ids
else:
    _SimpleCData = _ctypes._SimpleCData

    class c_long(_SimpleCData):  # as ctypes.c_long
        _type_ = "l"

    class c_int(_SimpleCData):  # as ctypes.c_int
        _type_ = "i"


class CFunction(_ctypes.CFuncPtr):
    """A cdecl function that saves errno for get_errno() (use_errno=True)."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


# The foreign ABI as data: libc function -> result type (None: void).
# Arguments are passed as explicit c_long/c_int or bytes; both functions
# are variadic, so no argtypes are declared.
LIBC_FUNCTIONS: dict[str, type[_SimpleCData[int]] | None] = {
    "syscall": c_long,
    "syslog": None,
}


class _GlobalSymbols:
    """dlopen(NULL): the symbols already mapped into the host process,
    libc's among them, as ctypes.CDLL(None) has them."""

    def __init__(self) -> None:
        # typeshed leaves out None, which dlopen(3) takes as NULL
        self._handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]


def _arg(value: int) -> str:
    return KEY_SPEC_NAMES.get(value, str(value))


class Kernel:
    """Typed system calls on one libc handle and one syscall table."""

    def __init__(self, syscall: CFunction, table: dict[str, int]) -> None:
        self._syscall = syscall
        self._nr = table

    def _call(self, name: str, shown: str, *args: int) -> int:
        # syscall(2) is variadic; every argument is passed as a C long, which
        # is how the kernel reads register arguments on every listed ABI.
        ret = self._syscall(c_long(self._nr[name]), *(c_long(a) for a in args))
        if ret == -1:
            raise KernelError(shown, _ctypes.get_errno())
        return int(ret)

    def keyctl(self, op: int, *args: int) -> int:
        shown = ", ".join([KEYCTL_NAMES.get(op, str(op))] + [_arg(a) for a in args])
        return self._call(KEYCTL, f"keyctl({shown})", op, *args)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._call(SETRESUID, f"setresuid({ruid}, {euid}, {suid})", ruid, euid, suid)

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._call(SETRESGID, f"setresgid({rgid}, {egid}, {sgid})", rgid, egid, sgid)

    def setfsuid(self, fsuid: int) -> int:
        # setfsuid(2) never reports failure; it returns the previous fsuid.
        return self._call(SETFSUID, f"setfsuid({fsuid})", fsuid) & 0xFFFFFFFF

    def setfsgid(self, fsgid: int) -> int:
        return self._call(SETFSGID, f"setfsgid({fsgid})", fsgid) & 0xFFFFFFFF

    # getres[ug]id(2) read the calling thread's credentials; glibc's wrappers
    # are plain system calls (no broadcast), so os's are used as they are.
    def getresuid(self) -> tuple[int, int, int]:
        return os.getresuid()

    def getresgid(self) -> tuple[int, int, int]:
        return os.getresgid()

    def thread_ids(self) -> tuple[Ids, Ids]:
        """(real, effective, saved, fs) uids and gids of the calling thread.

        Read from /proc/thread-self/status (Linux 3.17): reading the fs IDs
        with setfs[ug]id(-1) would prepare and drop new credentials each
        time (see creds.py on why that matters). Without /proc, falls back
        to exactly that.
        """
        try:
            with open("/proc/thread-self/status", "rb") as f:
                status = f.read()
            uid = status.split(b"\nUid:", 1)[1].split(b"\n", 1)[0].split()
            gid = status.split(b"\nGid:", 1)[1].split(b"\n", 1)[0].split()
            return _four(uid), _four(gid)
        except (OSError, IndexError, ValueError):
            uids, gids = os.getresuid(), os.getresgid()
            return (*uids, self.setfsuid(UNCHANGED)), (*gids, self.setfsgid(UNCHANGED))


_functions: dict[str, CFunction] = {}
_kernel: Kernel | None = None


def libc_function(name: str) -> CFunction:
    """One function of LIBC_FUNCTIONS, looked up once per process."""
    fn = _functions.get(name)
    if fn is None:
        # (name, library): CFuncPtr reads only the library's _handle
        fn = CFunction((name, _GlobalSymbols()))  # type: ignore[arg-type]
        fn.restype = LIBC_FUNCTIONS[name]
        _functions[name] = fn
    return fn


def current_abi() -> str:
    return abi_name(
        getattr(sys.implementation, "_multiarch", None),
        os.uname().machine,
        _ctypes.sizeof(_ctypes.POINTER(c_int)),  # sizeof(void *)
    )


def load() -> Kernel:
    """The process's Kernel; raises UnsupportedABI rather than guess."""
    global _kernel
    if _kernel is None:
        abi = current_abi()
        table = table_for(abi)
        if table is None:
            raise UnsupportedABI(
                f"no checked system call table for {abi}; supported: " + ", ".join(sorted(TABLES))
            )
        _kernel = Kernel(libc_function("syscall"), table)
    return _kernel
