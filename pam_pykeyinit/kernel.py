"""The one boundary between pam_pykeyinit and libc: system calls and syslog.

Everything that crosses into C lives here: the foreign functions built on
_ctypes, the system call table per architecture, the keyctl constants
spelled as in <linux/keyctl.h>, each keyring operation as a method next to
the keyctl(2) call it makes, and the single place (Kernel._call) where a
failed call becomes a KernelError carrying the call, its arguments and the
errno as fields.

Credentials are changed with raw ``syscall()`` so that only the calling
thread changes: glibc's setresuid() wrapper broadcasts the change to every
thread of the process (the "setxid" signal dance), which is what Red Hat
bz 1997969 fixed in pam_keyinit 1.5.3. Python's os.setresuid is that
wrapper, so it is never used.

An architecture without a checked table fails closed: load() raises
UnsupportedABI and no system call is ever made with a guessed number.

The foreign functions are built on _ctypes, the extension the ctypes
package is written on, with the same classes ctypes.CDLL(None,
use_errno=True) would make: importing the ctypes package costs every login
several times what _ctypes does (ctypes/__init__, struct and _endian;
doc/speed.md has the measurement). tests/kernel/test_boundary.py
checks these types against ctypes' own.
"""

import _ctypes
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

TABLES: "dict[str, dict[str, int]]" = {
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


def abi_name(multiarch: "str | None", machine: str, pointer_size: int) -> str:
    """The table key for this process, or a description of it if unknown."""
    if multiarch:
        return multiarch
    return _FALLBACK.get((machine, pointer_size), f"{machine} ({pointer_size * 8}-bit)")


def table_for(abi: str) -> "dict[str, int] | None":
    """The numbers for ``abi``, or None: the caller must fail closed."""
    return TABLES.get(abi)


# ---------------------------------------------------------------------------
# <linux/keyctl.h>: special keyring IDs
KEY_SPEC_THREAD_KEYRING = -1
KEY_SPEC_PROCESS_KEYRING = -2
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_USER_SESSION_KEYRING = -5

# <linux/keyctl.h>: the keyctl operations used here
KEYCTL_GET_KEYRING_ID = 0
KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_REVOKE = 3
KEYCTL_DESCRIBE = 6
KEYCTL_LINK = 8
KEYCTL_READ = 11
KEYCTL_GET_PERSISTENT = 22

KEYCTL_NAMES = {
    KEYCTL_GET_KEYRING_ID: "KEYCTL_GET_KEYRING_ID",
    KEYCTL_JOIN_SESSION_KEYRING: "KEYCTL_JOIN_SESSION_KEYRING",
    KEYCTL_REVOKE: "KEYCTL_REVOKE",
    KEYCTL_DESCRIBE: "KEYCTL_DESCRIBE",
    KEYCTL_LINK: "KEYCTL_LINK",
    KEYCTL_READ: "KEYCTL_READ",
    KEYCTL_GET_PERSISTENT: "KEYCTL_GET_PERSISTENT",
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
    """A system call failed.

    Fields: ``call`` (the system call's name, e.g. "keyctl" or
    "setresuid"), ``arguments`` (the integer arguments it was given; for
    keyctl the operation first; a buffer and its length are left out) and
    ``errno``. Display and advice are derived from these fields, never from
    the text.
    """

    def __init__(self, call: str, arguments: "tuple[int, ...]", err: int) -> None:
        super().__init__(err, os.strerror(err))
        self.call = call
        self.arguments = arguments

    @property
    def op(self) -> "int | None":
        """The keyctl operation, or None for other calls."""
        return self.arguments[0] if self.call == KEYCTL and self.arguments else None

    @property
    def errno_name(self) -> str:
        import errno  # on failure only: errno is one more import for every login

        return errno.errorcode.get(self.errno or 0, f"errno {self.errno}")

    def shown_call(self) -> str:
        """The call as C would spell it, e.g. keyctl(KEYCTL_LINK, KEY_SPEC_USER_KEYRING, ...)."""
        if self.call == KEYCTL and self.arguments:
            op, *rest = self.arguments
            shown = [KEYCTL_NAMES.get(op, str(op))] + [KEY_SPEC_NAMES.get(a, str(a)) for a in rest]
        else:
            shown = [str(a) for a in self.arguments]
        return f"{self.call}({', '.join(shown)})"

    def __str__(self) -> str:
        return f"{self.shown_call()} failed: {self.errno_name} ({self.strerror})"


# A class made at import costs every login some 70,000 instructions, and
# most logins need neither of these two (doc/speed.md): UnsupportedABI is
# made when first named (module __getattr__, PEP 562: the import system
# calls it only for a name the module does not have yet, and an except
# clause names its class only once an exception is on its way), and a key's
# description is a namespace (key_description()), whose shape type checkers
# know as interfaces.KeyDescription.
TYPE_CHECKING = False
if TYPE_CHECKING:

    class UnsupportedABI(Exception): ...  # as _unsupported_abi() makes it

    from .interfaces import KeyDescription, SlotsLike


if not TYPE_CHECKING:  # type checkers see the class above, and no other name

    def __getattr__(name: str) -> "type[UnsupportedABI]":
        if name == "UnsupportedABI":
            return _unsupported_abi()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _unsupported_abi() -> "type[UnsupportedABI]":
    """The exception load() raises, made on first use."""
    doc = "No checked system call table for this process's architecture."
    made = type("UnsupportedABI", (Exception,), {"__module__": __name__, "__doc__": doc})
    # two threads may both get here: every caller gets the first one made
    return globals().setdefault("UnsupportedABI", made)  # type: ignore[no-any-return]


if TYPE_CHECKING:
    from types import SimpleNamespace as SimpleNamespace

    Namespace = SimpleNamespace
else:  # types.SimpleNamespace, without `import types`, which costs every
    # login some 0.7 million instructions
    Namespace = type(sys.implementation)


def key_description(text: str) -> "KeyDescription":
    """KEYCTL_DESCRIBE's "type;uid;gid;perm;description" (keyctl_describe(3))
    as a namespace with those five fields, perm as a number."""
    # The description itself may contain ';': split off the four fields.
    kind, uid, gid, perm, description = text.split(";", 4)
    return Namespace(
        type=kind, uid=int(uid), gid=int(gid), perm=int(perm, 16), description=description
    )


if TYPE_CHECKING:
    from ctypes import Array, _SimpleCData, c_char
    from ctypes import c_long as c_long

    from .interfaces import Ids
else:
    _SimpleCData = _ctypes._SimpleCData

    class c_long(_SimpleCData):  # as ctypes.c_long
        _type_ = "l"


class CFunction(_ctypes.CFuncPtr):
    """A cdecl function that saves errno for get_errno() (use_errno=True)."""

    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_long


# The foreign ABI as data: libc function -> result type (None: void). No
# argtypes are declared (syscall and syslog are variadic): syscall's
# arguments are passed as explicit c_long (a buffer as a c_char array),
# syslog's as a Python int (ctypes passes it as a C int, the type of its
# priority) and bytes. The pthread_* functions take a pthread_key_t
# (unsigned int: a Python int) and a pointer (a c_long's address, or a
# pointer-sized c_long: long and void * have one size on every Linux ABI),
# and return an int error number, read as a c_long and cut to its 32 bits
# (INT_MASK; no c_int type is made for it at every login), or
# (getspecific) a void *.
LIBC_FUNCTIONS: "dict[str, type[_SimpleCData[int]] | None]" = {
    "syscall": c_long,
    "syslog": None,
    "pthread_key_create": c_long,
    "pthread_key_delete": c_long,
    "pthread_getspecific": c_long,
    "pthread_setspecific": c_long,
}
POINTER_MASK = (1 << (8 * _ctypes.sizeof(c_long))) - 1
INT_MASK = 0xFFFFFFFF  # an int's 32 bits, on every Linux ABI
_char_types: "list[type[c_char]]" = []


def char_buffer(size: int) -> "Array[c_char]":
    """A zeroed char[size] for keyctl to fill. The c_char type is made on
    first use: a login reads no key unless 'force=auto' asks it to."""
    if not _char_types:
        char = type("c_char", (_SimpleCData,), {"_type_": "c"})  # as ctypes.c_char
        _char_types.append(char)
    return (_char_types[0] * size)()


class Kernel:
    """Typed system calls on one libc handle and one syscall table."""

    def __init__(self, syscall: int, table: "dict[str, int]") -> None:
        self._address = syscall  # of libc's syscall()
        self._syscall = CFunction(syscall)
        self._syscall.restype = LIBC_FUNCTIONS["syscall"]
        self._nr = table
        # syscall(2) with n + 1 C long arguments, declared (argtypes): ctypes
        # converts the Python ints itself, where a c_long object made for
        # each argument costs every call some 3,700 instructions more
        self._fixed: "dict[int, CFunction]" = {}

    def _call(self, name: str, *args: int, buffer: "Array[c_char] | None" = None) -> int:
        # syscall(2) is variadic; every argument is passed as a C long, which
        # is how the kernel reads register arguments on every listed ABI. A
        # buffer (a c_char array) follows as its address and its length.
        if buffer is None:
            fn = self._fixed.get(len(args))
            if fn is None:
                fn = self._fixed[len(args)] = CFunction(self._address)
                fn.restype = LIBC_FUNCTIONS["syscall"]
                fn.argtypes = (c_long,) * (len(args) + 1)
            ret = fn(self._nr[name], *args)
        else:
            cargs = [c_long(a) for a in args] + [buffer, c_long(len(buffer))]
            ret = self._syscall(c_long(self._nr[name]), *cargs)
        if ret == -1:
            raise KernelError(name, args, _ctypes.get_errno())
        return int(ret)

    # -- keyrings: one keyctl(2) operation each (keyctl(2), keyrings(7)) ----
    def get_keyring_id(self, special: int, create: bool = False) -> int:
        """KEYCTL_GET_KEYRING_ID: the serial behind a special ID. Without
        ``create``, @s of a process that has none is its user-session
        keyring (_uid_ses.<ruid>, user-session-keyring(7))."""
        return self._call(KEYCTL, KEYCTL_GET_KEYRING_ID, special, int(create))

    def join_session_keyring(self) -> int:
        """KEYCTL_JOIN_SESSION_KEYRING with NULL: a new anonymous ``_ses``
        keyring owned by the caller's real uid and gid becomes this thread's
        @s (session-keyring(7)). Returns its serial."""
        return self._call(KEYCTL, KEYCTL_JOIN_SESSION_KEYRING, 0)

    def link(self, key: int, keyring: int) -> None:
        """KEYCTL_LINK; linking @u (_uid.<ruid>, created if missing) into @s
        makes searches of the session keyring reach the user's keys
        (user-keyring(7))."""
        self._call(KEYCTL, KEYCTL_LINK, key, keyring)

    def revoke(self, serial: int) -> None:
        """KEYCTL_REVOKE: every later use of the keyring fails with EKEYREVOKED."""
        self._call(KEYCTL, KEYCTL_REVOKE, serial)

    def get_persistent(self, uid: int, keyring: int) -> int:
        """KEYCTL_GET_PERSISTENT: link _persistent.<uid> into ``keyring`` and
        push its expiry out by kernel.keys.persistent_keyring_expiry
        (persistent-keyring(7)); EOPNOTSUPP without
        CONFIG_PERSISTENT_KEYRINGS. Returns its serial."""
        return self._call(KEYCTL, KEYCTL_GET_PERSISTENT, uid, keyring)

    def describe(self, key: int) -> "KeyDescription":
        """KEYCTL_DESCRIBE (keyctl_describe(3)); EKEYREVOKED or EKEYEXPIRED
        for a revoked or expired key."""
        text = self._read_out(KEYCTL_DESCRIBE, key, 256).rstrip(b"\0")
        return key_description(text.decode("utf-8", "replace"))

    def read_keyring(self, keyring: int) -> "list[int]":
        """KEYCTL_READ on a keyring: the serials linked in it."""
        raw = self._read_out(KEYCTL_READ, keyring, 64)
        return [
            int.from_bytes(raw[i : i + 4], sys.byteorder, signed=True)
            for i in range(0, len(raw), 4)
        ]

    def _read_out(self, op: int, key: int, size: int) -> bytes:
        """What a keyctl operation that fills a buffer returns, in a buffer
        grown to the size the kernel asks for (it returns the full size
        and copies only what fits)."""
        while True:
            buf = char_buffer(size)
            need = self._call(KEYCTL, op, key, buffer=buf)
            if need <= size:
                return bytes(buf)[:need]
            size = need

    # -- credentials of the calling thread -----------------------------------
    def setresuid(self, ruid: int, euid: int, suid: int) -> None:
        self._call(SETRESUID, ruid, euid, suid)

    def setresgid(self, rgid: int, egid: int, sgid: int) -> None:
        self._call(SETRESGID, rgid, egid, sgid)

    def setfsuid(self, fsuid: int) -> int:
        # setfsuid(2) never reports failure; it returns the previous fsuid.
        return self._call(SETFSUID, fsuid) & 0xFFFFFFFF

    def setfsgid(self, fsgid: int) -> int:
        return self._call(SETFSGID, fsgid) & 0xFFFFFFFF

    # getres[ug]id(2) read the calling thread's credentials; glibc's wrappers
    # are plain system calls (no broadcast), so os's are used as they are.
    def getresuid(self) -> "tuple[int, int, int]":
        return os.getresuid()

    def getresgid(self) -> "tuple[int, int, int]":
        return os.getresgid()

    def thread_ids(self) -> "tuple[Ids, Ids]":
        """(real, effective, saved, fs) uids and gids of the calling thread.

        The fs IDs come from setfs[ug]id(2) with -1, an invalid ID: the
        call changes nothing and returns the current value. kernel/sys.c's
        __sys_setfsuid() returns on !uid_valid() before prepare_creds(), so
        no credentials are made or committed (keyinit.py says why that
        matters); reading /proc/thread-self/status instead cost 90 us a
        read here, four reads a login.
        """
        (r, e, s), (rg, eg, sg) = os.getresuid(), os.getresgid()
        return (r, e, s, self.setfsuid(UNCHANGED)), (rg, eg, sg, self.setfsgid(UNCHANGED))


def thread_slots(count: int) -> "SlotsLike":
    """``count`` integers that every OS thread has its own of, for as long
    as the thread lives: C's __thread, as pam_keyinit.c keeps its state
    (Linux-PAM 1.5.3 and later). Returns a namespace (interfaces.SlotsLike;
    one class less to make at every login) of get(index), set(index,
    value) and delete(). Raises KernelError when the process has no keys
    left.

    Python's own per-thread storage (threading.local) lives in a Python
    thread state, and a thread that Python did not start gets a fresh one
    for each call from C when nothing keeps one (PyGILState_Ensure(3)):
    a C program's worker thread that opened a session would find nothing
    at close. POSIX thread-specific data lives in the OS thread itself
    (pthread_key_create(3)): a thread starts with every value 0 (NULL),
    sets only its own, and the values go when it exits. No destructor is
    registered and nothing is allocated: each value is a pointer-sized
    integer, so an exiting thread leaves nothing behind and no function of
    this process's is called at its exit (the pam_python.so that would
    hold it may be unloaded by then). delete() frees the keys; their values
    in live threads are dropped with them (glibc's key sequence numbers
    keep a later key from reading them).
    """
    getspecific = libc_function("pthread_getspecific")
    setspecific = libc_function("pthread_setspecific")
    keys: "list[int]" = []

    def get(index: int) -> int:
        """The calling thread's value of slot ``index``: 0 until it sets one."""
        return int(getspecific(keys[index])) & POINTER_MASK

    def set(index: int, value: int) -> None:
        """Set the calling thread's value of slot ``index`` (0 <= value,
        below 2**32 on 32-bit ABIs)."""
        err = setspecific(keys[index], c_long(value)) & INT_MASK
        if err:
            raise KernelError("pthread_setspecific", (keys[index], value), err)

    def delete() -> None:
        """Free the keys; call only when no thread uses them any more."""
        delete = libc_function("pthread_key_delete")
        while keys:
            delete(keys.pop())

    create = libc_function("pthread_key_create")
    for _ in range(count):
        key = c_long(0)  # room for a pthread_key_t, an unsigned int, at its start
        err = create(_ctypes.byref(key), c_long(0)) & INT_MASK  # no destructor
        if err:
            delete()
            raise KernelError("pthread_key_create", (), err)
        keys.append(int.from_bytes(bytes(key)[:4], sys.byteorder))
    return Namespace(get=get, set=set, delete=delete, keys=keys)


# <syslog.h>
LOG_AUTHPRIV = 10 << 3
LOG_ERR = 3
LOG_WARNING = 4
LOG_NOTICE = 5
LOG_DEBUG = 7


def clean_line(text: str) -> bytes:
    """A log line as one C string: a user name may hold anything, so a NUL
    must never end it early."""
    return text.replace("\0", "\\0").encode("utf-8", "backslashreplace")


def syslog(priority: int, line: str) -> None:
    """One line through libc's syslog(3) at ``priority`` (a LOG_* level) in
    LOG_AUTHPRIV. Python's syslog module is not used: its first call runs
    openlog(), which replaces the host process's identity, options and
    facility (sshd's later lines would change); a bare syslog(3) call leaves
    them as the host set them. "%s" is the format: the line itself is never
    parsed for conversions."""
    libc_function("syslog")(LOG_AUTHPRIV | priority, b"%s", clean_line(line))


_functions: "dict[str, CFunction]" = {}
_handle: "list[int]" = []  # dlopen(NULL)'s, once per process
_kernel: "Kernel | None" = None


def libc_address(name: str) -> int:
    """The address of a function among the symbols already mapped into the
    host process (dlopen(NULL), as ctypes.CDLL(None) does), libc's among
    them."""
    if not _handle:
        # typeshed leaves out None, which dlopen(3) takes as NULL
        _handle.append(_ctypes.dlopen(None, 0))  # type: ignore[arg-type]
    return _ctypes.dlsym(_handle[0], name)


def libc_function(name: str) -> "CFunction":
    """One function of LIBC_FUNCTIONS, looked up once per process."""
    fn = _functions.get(name)
    if fn is None:
        fn = CFunction(libc_address(name))
        fn.restype = LIBC_FUNCTIONS[name]
        _functions[name] = fn
    return fn


def current_abi() -> str:
    return abi_name(
        getattr(sys.implementation, "_multiarch", None),
        os.uname().machine,
        8 if sys.maxsize > 2**32 else 4,  # sizeof(void *)
    )


def load() -> "Kernel":
    """The process's Kernel; raises UnsupportedABI rather than guess."""
    global _kernel
    if _kernel is None:
        abi = current_abi()
        table = table_for(abi)
        if table is None:
            raise _unsupported_abi()(
                f"no checked system call table for {abi}; supported: " + ", ".join(sorted(TABLES))
            )
        _kernel = Kernel(libc_address("syscall"), table)
    return _kernel
