"""Keyring operations, one keyctl(2) call each.

Every function takes the kernel boundary as its first argument (a Kernel or
a test double with the same keyctl method) and raises KernelError on failure.
"""

from __future__ import annotations

from .kernel import (
    KEY_SPEC_SESSION_KEYRING,
    KEY_SPEC_USER_KEYRING,
    KEY_SPEC_USER_SESSION_KEYRING,
    KEYCTL_GET_KEYRING_ID,
    KEYCTL_JOIN_SESSION_KEYRING,
    KEYCTL_LINK,
    KEYCTL_REVOKE,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .types import KernelLike


def get_keyring_id(kernel: KernelLike, key: int, create: bool = False) -> int:
    """KEYCTL_GET_KEYRING_ID: the serial behind a special ID (keyctl_get_keyring_ID(3))."""
    return kernel.keyctl(KEYCTL_GET_KEYRING_ID, key, int(create))


def session_keyring(kernel: KernelLike) -> int:
    """@s without creating anything; the user-session keyring if none is set."""
    return get_keyring_id(kernel, KEY_SPEC_SESSION_KEYRING)


def user_session_keyring(kernel: KernelLike) -> int:
    """@us, _uid_ses.<ruid> (user-session-keyring(7)), created on first access."""
    return get_keyring_id(kernel, KEY_SPEC_USER_SESSION_KEYRING)


def join_session_keyring(kernel: KernelLike) -> int:
    """KEYCTL_JOIN_SESSION_KEYRING with NULL: a new anonymous ``_ses`` keyring
    owned by the caller's real uid and gid becomes this thread's @s
    (session-keyring(7)). Returns its serial."""
    return kernel.keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0)


def link_user_keyring(kernel: KernelLike) -> None:
    """Link @u (_uid.<ruid>, created if missing) into @s, so that searches of
    the session keyring reach the user's keys (user-keyring(7))."""
    kernel.keyctl(KEYCTL_LINK, KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING)


def revoke(kernel: KernelLike, serial: int) -> None:
    """KEYCTL_REVOKE: every later use of the keyring fails with EKEYREVOKED."""
    kernel.keyctl(KEYCTL_REVOKE, serial)
