"""Test doubles for the unit tests: a kernel with credentials and keyrings,
a pamh, and a logger. They model only what pam_keyinit's logic depends on,
with the kernel's permission rules for setres[ug]id(2) (a caller is
privileged while its effective uid is 0), so that the restore paths are
checked against rules, not against hand-written results."""

from __future__ import annotations

import errno
import threading
from typing import TYPE_CHECKING

from pam_pykeyinit.kernel import (
    KEY_SPEC_SESSION_KEYRING,
    KEY_SPEC_USER_KEYRING,
    KEY_SPEC_USER_SESSION_KEYRING,
    KEYCTL,
    KEYCTL_DESCRIBE,
    KEYCTL_GET_KEYRING_ID,
    KEYCTL_GET_PERSISTENT,
    KEYCTL_JOIN_SESSION_KEYRING,
    KEYCTL_LINK,
    KEYCTL_REVOKE,
    KernelError,
    key_description,
)

if TYPE_CHECKING:
    from pam_pykeyinit.interfaces import KeyDescription


class Keyring:
    def __init__(self, serial: int, name: str, uid: int, gid: int) -> None:
        self.serial, self.name, self.uid, self.gid = serial, name, uid, gid
        self.revoked = False
        self.expired = False
        self.links: list[int] = []


class FakeKernel:
    """fail: {"join": errno} fails every join; {"setresuid": (errno, 2)}
    fails only the second setresuid call. Names: get, join, link, revoke,
    describe, persistent, setresuid, setresgid, setfsuid, setfsgid,
    thread_ids. session: None (the user-session fallback), "own" (an
    anonymous keyring of root's), "revoked", "expired"."""

    def __init__(self, uids=(0, 0, 0), gids=(0, 0, 0), fail=None, session=None) -> None:
        self.uid = [*uids, uids[1]]  # r, e, s, fs
        self.gid = [*gids, gids[1]]
        self.fail = dict(fail or {})
        self.counts: dict[str, int] = {}
        self.calls: list[tuple] = []
        self.keyrings: dict[int, Keyring] = {}
        self._serial = 100
        self.session = None
        if session == "own":
            self.session = self._new("_ses", 0, 0).serial
        elif session in ("revoked", "expired"):
            ring = self._new("_ses", 0, 0)
            setattr(ring, session, True)
            self.session = ring.serial

    # -- plumbing ---------------------------------------------------------
    def _new(self, name: str, uid: int, gid: int) -> Keyring:
        self._serial += 1
        ring = Keyring(self._serial, name, uid, gid)
        self.keyrings[ring.serial] = ring
        return ring

    def _named(self, name: str, uid: int, gid: int) -> Keyring:
        for ring in self.keyrings.values():
            if ring.name == name:
                return ring
        return self._new(name, uid, gid)

    def _check(self, name: str, call: str, args: tuple[int, ...]) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        rule = self.fail.get(name)
        if rule is None:
            return
        err, nth = rule if isinstance(rule, tuple) else (rule, None)
        if nth is None or nth == self.counts[name]:
            raise KernelError(call, args, err)

    @property
    def privileged(self) -> bool:
        return self.uid[1] == 0

    def _setres(self, ids: list[int], name: str, r: int, e: int, s: int) -> None:
        self.calls.append((name, r, e, s))
        self._check(name, name, (r, e, s))
        wanted = [v for v in (r, e, s) if v != -1]
        if not self.privileged and any(v not in ids[:3] for v in wanted):
            raise KernelError(name, (r, e, s), errno.EPERM)
        for i, v in enumerate((r, e, s)):
            if v != -1:
                ids[i] = v
        ids[3] = ids[1]  # the kernel sets fsuid/fsgid to the new effective ID

    # -- the KernelLike interface ------------------------------------------
    def setresuid(self, r: int, e: int, s: int) -> None:
        self._setres(self.uid, "setresuid", r, e, s)

    def setresgid(self, r: int, e: int, s: int) -> None:
        self._setres(self.gid, "setresgid", r, e, s)

    def _setfs(self, ids: list[int], name: str, value: int) -> int:
        self.calls.append((name, value))
        self._check(name, name, (value,))
        old = ids[3]
        if value != -1 and (self.privileged or value in ids):
            ids[3] = value
        return old

    def setfsuid(self, value: int) -> int:
        return self._setfs(self.uid, "setfsuid", value)

    def setfsgid(self, value: int) -> int:
        return self._setfs(self.gid, "setfsgid", value)

    def getresuid(self) -> tuple[int, int, int]:
        return tuple(self.uid[:3])  # type: ignore[return-value]

    def getresgid(self) -> tuple[int, int, int]:
        return tuple(self.gid[:3])  # type: ignore[return-value]

    def thread_ids(self):
        self.calls.append(("thread_ids",))
        self._check("thread_ids", "setfsuid", (-1,))
        return tuple(self.uid), tuple(self.gid)

    # -- keyrings, with the kernel's answers for what the logic meets --------
    def _keyctl(self, name: str, op: int, *args: int) -> None:
        self.calls.append((name, *args))
        self._check(name, KEYCTL, (op, *args))

    def _user_session(self) -> Keyring:
        return self._named(f"_uid_ses.{self.uid[0]}", self.uid[0], -1)

    def _alive(self, ring: Keyring, op: int, key: int) -> Keyring:
        if ring.revoked:
            raise KernelError(KEYCTL, (op, key), errno.EKEYREVOKED)
        if ring.expired:
            raise KernelError(KEYCTL, (op, key), errno.EKEYEXPIRED)
        return ring

    def _resolve(self, op: int, key: int) -> Keyring:
        if key == KEY_SPEC_USER_SESSION_KEYRING:
            return self._user_session()
        if key == KEY_SPEC_USER_KEYRING:
            return self._named(f"_uid.{self.uid[0]}", self.uid[0], -1)
        if key == KEY_SPEC_SESSION_KEYRING:
            if self.session is None:
                return self._user_session()
            return self._alive(self.keyrings[self.session], op, key)
        return self._alive(self.keyrings[key], op, key)

    def get_keyring_id(self, special: int, create: bool = False) -> int:
        self._keyctl("get", KEYCTL_GET_KEYRING_ID, special, int(create))
        return self._resolve(KEYCTL_GET_KEYRING_ID, special).serial

    def join_session_keyring(self) -> int:
        self._keyctl("join", KEYCTL_JOIN_SESSION_KEYRING, 0)
        self.session = self._new("_ses", self.uid[0], self.gid[0]).serial
        return self.session

    def link(self, key: int, keyring: int) -> None:
        self._keyctl("link", KEYCTL_LINK, key, keyring)
        target = self._resolve(KEYCTL_LINK, keyring)
        if keyring == KEY_SPEC_SESSION_KEYRING and self.session is None:
            # writing to the fallback joins a new, unlinked session keyring
            target = self.keyrings[self.join_session_keyring()]
        target.links.append(self._resolve(KEYCTL_LINK, key).serial)

    def revoke(self, serial: int) -> None:
        self._keyctl("revoke", KEYCTL_REVOKE, serial)
        ring = self.keyrings[serial]
        if not self.privileged and ring.uid != self.uid[1]:
            raise KernelError(KEYCTL, (KEYCTL_REVOKE, serial), errno.EACCES)
        ring.revoked = True

    def get_persistent(self, uid: int, keyring: int) -> int:
        self._keyctl("persistent", KEYCTL_GET_PERSISTENT, uid, keyring)
        ring = self._named(f"_persistent.{uid}", uid, -1)
        self._resolve(KEYCTL_GET_PERSISTENT, keyring).links.append(ring.serial)
        return ring.serial

    def describe(self, key: int) -> KeyDescription:
        self._keyctl("describe", KEYCTL_DESCRIBE, key)
        ring = self._resolve(KEYCTL_DESCRIBE, key)
        gid = ring.gid & 0xFFFFFFFF
        return key_description(f"keyring;{ring.uid};{gid};3f030000;{ring.name}")


class FakeSlots:
    """kernel.thread_slots in Python: a value per thread (threading's ident),
    0 until set; any use after delete() fails the test, as a freed
    pthread key must never be used."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.values: dict[tuple[int, int], int] | None = {}

    def get(self, index: int) -> int:
        assert self.values is not None and 0 <= index < self.count, "slots used after delete()"
        return self.values.get((threading.get_ident(), index), 0)

    def set(self, index: int, value: int) -> None:
        assert self.values is not None and 0 <= index < self.count, "slots used after delete()"
        assert 0 <= value < 2**32, value
        self.values[(threading.get_ident(), index)] = value

    def delete(self) -> None:
        self.values = None


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def error(self, message: str) -> None:
        self.lines.append(("err", message))

    def notice(self, message: str) -> None:
        self.lines.append(("notice", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def debug(self, message: str) -> None:
        self.lines.append(("debug", message))

    def text(self, level: str = "err") -> str:
        return "\n".join(m for lv, m in self.lines if lv == level)


class Passwd:
    def __init__(self, uid: int, gid: int) -> None:
        self.pw_uid, self.pw_gid = uid, gid


USERS = {"alice": Passwd(1001, 2002), "root": Passwd(0, 0), "same": Passwd(1003, 1003)}


class PamException(Exception):
    def __init__(self, pam_result: int) -> None:
        super().__init__(pam_result)
        self.pam_result = pam_result


class FakePamh:
    """What pam_python's PamHandle offers that keyinit.py's entry points read."""

    exception = PamException
    PAM_SERVICE_ERR = 3

    def __init__(
        self,
        user: str | None = "alice",
        get_user_error: int | None = None,
        service: str | None = "test",
    ) -> None:
        self.user, self.service = user, service
        self._error = get_user_error

    def get_user(self, prompt: str) -> str | None:
        assert prompt == "key user"
        if self._error is not None:
            raise PamException(self._error)
        return self.user
