"""Interfaces of the collaborators the pure logic takes, for type checkers only.

Never imported at run time (``typing`` would cost every login an import).
The real implementations are kernel.Kernel, and the namespaces (types.
SimpleNamespace) that kernel.thread_slots, kernel.key_description,
keyinit.logger, keyinit.parse_options, keyinit.new_context and
keyinit.new_process_state make: a namespace where a class would do, because
each class made at import costs every login some 70,000 instructions
(doc/speed.md). The unit tests' doubles are in tests/unit/fakes.py.
"""

from __future__ import annotations

from _thread import LockType
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .keyinit import ThreadState

# (real, effective, saved, fs)
Ids = tuple[int, int, int, int]


class KeyDescription(Protocol):
    """kernel.key_description()'s namespace."""

    type: str
    uid: int
    gid: int
    perm: int
    description: str


class KernelLike(Protocol):
    def get_keyring_id(self, special: int, create: bool = False) -> int: ...
    def join_session_keyring(self) -> int: ...
    def link(self, key: int, keyring: int) -> None: ...
    def revoke(self, serial: int) -> None: ...
    def get_persistent(self, uid: int, keyring: int) -> int: ...
    def describe(self, key: int) -> KeyDescription: ...
    def setresuid(self, ruid: int, euid: int, suid: int) -> None: ...
    def setresgid(self, rgid: int, egid: int, sgid: int) -> None: ...
    def setfsuid(self, fsuid: int) -> int: ...
    def setfsgid(self, fsgid: int) -> int: ...
    def getresuid(self) -> tuple[int, int, int]: ...
    def getresgid(self) -> tuple[int, int, int]: ...
    def thread_ids(self) -> tuple[Ids, Ids]: ...


class SlotsLike(Protocol):
    def get(self, index: int) -> int: ...
    def set(self, index: int, value: int) -> None: ...
    def delete(self) -> None: ...


class ProcessState(Protocol):
    """keyinit.new_process_state()'s namespace."""

    lock: LockType
    session_counter: int
    reported_words: set[str]
    handles: set[int]
    slots: SlotsLike | None


class Options(Protocol):
    """keyinit.parse_options()'s namespace."""

    force: bool
    revoke: bool
    debug: bool
    force_auto: bool
    persistent: bool
    unavailable_ignore: bool
    unknown: list[str]


class LogLike(Protocol):
    def error(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def notice(self, message: str) -> None: ...
    def debug(self, message: str) -> None: ...


class PasswdLike(Protocol):
    @property
    def pw_uid(self) -> int: ...
    @property
    def pw_gid(self) -> int: ...


class Context(Protocol):
    """keyinit.new_context()'s namespace."""

    kernel: KernelLike
    log: LogLike
    thread: ThreadState
    get_user: Callable[[], tuple[int, str | None]]
    getpwnam: Callable[[str], PasswdLike | None]
