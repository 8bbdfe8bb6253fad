"""The one boundary between pam_pykeyinit and the kernel.

Everything that crosses into C lives here: the ctypes handle on libc, the
system call numbers (from syscalls.py), the keyctl constants spelled as in
<linux/keyctl.h>, and the single place where a failed call becomes a
KernelError that names the call and its errno.

Credentials are changed with raw ``syscall()`` so that only the calling
thread changes: glibc's setresuid() wrapper broadcasts the change to every
thread of the process (the "setxid" signal dance), which is what Red Hat
bz 1997969 fixed in pam_keyinit 1.5.3. Python's os.setresuid() is that
wrapper, so it is never used.

An architecture without a checked table fails closed: load() raises
UnsupportedABI and no system call is ever made with a guessed number.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import os
import sys

from . import syscalls

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


def _arg(value: int) -> str:
    return KEY_SPEC_NAMES.get(value, str(value))


class Kernel:
    """Typed system calls on one libc handle and one syscall table."""

    def __init__(self, libc: ctypes.CDLL, table: dict[str, int]) -> None:
        self._syscall = libc.syscall
        self._syscall.restype = ctypes.c_long
        self._nr = table

    def _call(self, name: str, shown: str, *args: int) -> int:
        # syscall(2) is variadic; every argument is passed as a C long, which
        # is how the kernel reads register arguments on every listed ABI.
        ret = self._syscall(ctypes.c_long(self._nr[name]), *(ctypes.c_long(a) for a in args))
        if ret == -1:
            raise KernelError(shown, ctypes.get_errno())
        return int(ret)

    def keyctl(self, op: int, *args: int) -> int:
        shown = ", ".join([KEYCTL_NAMES.get(op, str(op))] + [_arg(a) for a in args])
        return self._call(syscalls.KEYCTL, f"keyctl({shown})", op, *args)

    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._call(syscalls.SETRESUID, f"setresuid({ruid}, {euid}, {suid})", ruid, euid, suid)

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._call(syscalls.SETRESGID, f"setresgid({rgid}, {egid}, {sgid})", rgid, egid, sgid)

    def setfsuid(self, fsuid: int) -> int:
        # setfsuid(2) never reports failure; it returns the previous fsuid.
        return self._call(syscalls.SETFSUID, f"setfsuid({fsuid})", fsuid) & 0xFFFFFFFF

    def setfsgid(self, fsgid: int) -> int:
        return self._call(syscalls.SETFSGID, f"setfsgid({fsgid})", fsgid) & 0xFFFFFFFF

    # getres[ug]id(2) read the calling thread's credentials; glibc's wrappers
    # are plain system calls (no broadcast), so os's are used as they are.
    def getresuid(self) -> tuple[int, int, int]:
        return os.getresuid()

    def getresgid(self) -> tuple[int, int, int]:
        return os.getresgid()


_libc: ctypes.CDLL | None = None
_kernel: Kernel | None = None


def libc() -> ctypes.CDLL:
    """libc as already mapped into the host process (dlopen(NULL))."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def current_abi() -> str:
    return syscalls.abi_name(
        getattr(sys.implementation, "_multiarch", None),
        os.uname().machine,
        ctypes.sizeof(ctypes.c_void_p),
    )


def load() -> Kernel:
    """The process's Kernel; raises UnsupportedABI rather than guess."""
    global _kernel
    if _kernel is None:
        abi = current_abi()
        table = syscalls.table_for(abi)
        if table is None:
            raise UnsupportedABI(
                f"no checked system call table for {abi}; supported: "
                + ", ".join(sorted(syscalls.TABLES))
            )
        _kernel = Kernel(libc(), table)
    return _kernel
