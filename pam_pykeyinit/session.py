"""`pykeyinit status`: what the calling process has, and what is wrong with it.

Read-only: every keyctl call here looks (KEYCTL_GET_KEYRING_ID without
create, KEYCTL_DESCRIBE, KEYCTL_READ); none links, joins or creates a
keyring, except that naming @u makes the kernel create the user keyring if
the uid has none yet (user-keyring(7)). The kernel boundary is kernel.py's.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import advice, kernel
from .kernel import (
    KEY_SPEC_SESSION_KEYRING,
    KEY_SPEC_USER_KEYRING,
    KEY_SPEC_USER_SESSION_KEYRING,
    KernelError,
)
from .keyinit import UNAVAILABLE

if TYPE_CHECKING:
    from .interfaces import KeyDescription

MAX_KEYRINGS = 200  # a search of the tree from @s stops after this many keyrings
STATES = {"EKEYREVOKED": "revoked", "EKEYEXPIRED": "expired"}
SECCOMP_MODES = {"0": "disabled", "1": "strict", "2": "filter"}
RUN_ADVICE = (
    "start programs that outlive the login (tmux, screen, nohup jobs) in a keyring of"
    " their own: `pykeyinit run -- COMMAND`, e.g. alias tmux='pykeyinit run -- tmux';"
    " for this shell: `exec pykeyinit run -- $SHELL`"
)


@dataclass
class Problem:
    message: str
    advice: str


@dataclass
class Status:
    session_keyring: dict[str, Any]
    own_session_keyring: bool
    user_keyring_linked: bool
    persistent_keyring_linked: bool
    quota: dict[str, Any]
    keyctl: dict[str, Any]
    problems: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _proc_field(name: str) -> str | None:
    """A field of /proc/self/status, e.g. Seccomp."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == name:
                return value.strip()
    except OSError:
        return None
    return None


def _sysctl(name: str) -> int | None:
    try:
        return int(Path("/proc/sys/kernel/keys", name).read_text())
    except (OSError, ValueError):
        return None


def quota(uid: int) -> dict[str, Any]:
    """The uid's keys and bytes against its quota, from /proc/key-users
    (keyrings(7): "qnkeys/maxkeys qnbytes/maxbytes"), and the sysctls."""
    found: dict[str, Any] = {"uid": uid, "keys": 0, "maxkeys": None, "bytes": 0, "maxbytes": None}
    try:
        lines = Path("/proc/key-users").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 5 and fields[0] == f"{uid}:":
            keys, maxkeys = fields[3].split("/")
            nbytes, maxbytes = fields[4].split("/")
            found.update(keys=int(keys), maxkeys=int(maxkeys))
            found.update(bytes=int(nbytes), maxbytes=int(maxbytes))
    prefix = "root_" if uid == 0 else ""
    found["sysctl_maxkeys"] = _sysctl(f"{prefix}maxkeys")
    found["sysctl_maxbytes"] = _sysctl(f"{prefix}maxbytes")
    return found


def _reachable(k: kernel.Kernel, start: int) -> list[tuple[int, KeyDescription]]:
    """Every keyring reachable from ``start`` through links, as searches
    (request_key(2)) walk them, with its description."""
    seen: dict[int, KeyDescription] = {}
    todo = [start]
    while todo and len(seen) < MAX_KEYRINGS:
        serial = todo.pop()
        if serial in seen:
            continue
        try:
            desc = k.describe(serial)
        except KernelError:
            continue  # not viewable, revoked or gone: searches skip it too
        if desc.type != "keyring":
            continue
        seen[serial] = desc
        try:
            todo.extend(k.read_keyring(serial))
        except KernelError:
            continue
    return list(seen.items())


def status(k: kernel.Kernel | None = None) -> Status:
    """The calling process's session keyring and what it reaches."""
    k = k or kernel.load()
    uid = os.getuid()
    seccomp = _proc_field("Seccomp")
    keyctl: dict[str, Any] = {
        "works": True,
        "errno": None,
        "seccomp": seccomp,
        "seccomp_mode": SECCOMP_MODES.get(seccomp or "", "unknown"),
    }
    ring: dict[str, Any] = dict.fromkeys(("serial", "description", "uid", "gid", "perm"))
    result = Status(ring, False, False, False, quota(uid), keyctl)
    try:
        serial = k.get_keyring_id(KEY_SPEC_SESSION_KEYRING)
    except KernelError as err:
        ring["state"] = STATES.get(err.errno_name, "unavailable")
        if err.errno_name in UNAVAILABLE:  # keyinit.py's set
            keyctl.update(works=False, errno=err.errno_name)
        result.problems.append(_unreadable(err, ring["state"]))
        return result

    ring["serial"], ring["state"] = serial, "valid"
    try:
        desc = k.describe(serial)
        ring.update(description=desc.description, uid=desc.uid, gid=desc.gid)
        ring["perm"] = f"{desc.perm:08x}"
        result.own_session_keyring = serial != k.get_keyring_id(KEY_SPEC_USER_SESSION_KEYRING)
        user = k.get_keyring_id(KEY_SPEC_USER_KEYRING)
        reached = _reachable(k, serial)
    except KernelError as err:
        ring["state"] = STATES.get(err.errno_name, "valid")
        result.problems.append(_unreadable(err, ring["state"]))
        return result
    result.user_keyring_linked = any(s == user for s, _ in reached)
    result.persistent_keyring_linked = any(
        d.description == f"_persistent.{uid}" for _, d in reached
    )
    if not result.own_session_keyring:
        result.problems.append(
            Problem(
                f"no session keyring of its own: @s is the user-session keyring"
                f" {ring['description']}, shared by every process of uid {uid} that has none",
                "your login did not go through pam_keyinit or pam_pykeyinit: check the"
                " service with `pykeyinit check SERVICE`; for now `pykeyinit run -- $SHELL`",
            )
        )
    elif not result.user_keyring_linked:
        result.problems.append(
            Problem(
                f"the user keyring _uid.{uid} is not reachable from the session keyring"
                f" {serial}: request_key(2) does not find the user's keys",
                "for now `keyctl link @u @s`; for new logins add pam_keyinit or"
                " pam_pykeyinit to the service's session stack (`pykeyinit check SERVICE`)",
            )
        )
    return result


def _unreadable(err: KernelError, state: str) -> Problem:
    if state == "revoked":
        return Problem(
            "the session keyring has been revoked (EKEYREVOKED): the login that created"
            " it ended with pam_keyinit's 'revoke' while this process lives on",
            RUN_ADVICE,
        )
    if state == "expired":
        return Problem("the session keyring has expired (EKEYEXPIRED)", RUN_ADVICE)
    return Problem(f"keyctl does not work here: {err}", advice.for_error(err))


def render(result: Status) -> str:
    """The text form of ``result``."""
    ring, q, keyctl = result.session_keyring, result.quota, result.keyctl
    if ring["serial"] is None:
        session = ring["state"]
    else:
        session = (
            f"{ring['serial']} {ring['description']}, owner uid {ring['uid']} gid"
            f" {ring['gid']}, perm {ring['perm']}, {ring['state']}"
        )
    works = "works" if keyctl["works"] else f"refused ({keyctl['errno']})"
    rows = [
        ("session keyring", session),
        ("own keyring", "yes" if result.own_session_keyring else "no"),
        ("user keyring", "reachable" if result.user_keyring_linked else "not reachable"),
        ("persistent", "linked" if result.persistent_keyring_linked else "not linked"),
        (
            "quota",
            f"uid {q['uid']}: {q['keys']}/{q['maxkeys']} keys, {q['bytes']}/{q['maxbytes']} bytes",
        ),
        ("keyctl", f"{works}; seccomp {keyctl['seccomp']} ({keyctl['seccomp_mode']})"),
        ("problems", str(len(result.problems)) if result.problems else "none"),
    ]
    out = [f"{name:<16} {value}" for name, value in rows]
    for problem in result.problems:
        out += [f"problem: {problem.message}", f"  what to do: {problem.advice}"]
    return "\n".join(out)
