"""System call numbers, per architecture, as data.

Only the calls pam_pykeyinit makes are listed. Each number is checked by
tests/unit/test_syscall_table.py against the kernel UAPI headers of that
architecture (Debian's ``linux-libc-dev-*-cross`` packages), so a typo here
fails the suite instead of calling the wrong system call at login.

Where an architecture has both 16-bit and 32-bit uid calls (i386, armhf) the
32-bit ``*32`` variant is used: the 16-bit ones truncate uids above 65535.
Keys are Debian multiarch tuples (``sys.implementation._multiarch``).
"""

from __future__ import annotations

# Names used by kernel.py; each maps to the kernel's ``__NR_<name>`` entry
# named in the comment when it differs.
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
