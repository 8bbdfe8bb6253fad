"""user-keyring(7), statement by statement, on the running kernel.

Each test quotes the claim of ../shared/reference/user-keyring.7.txt it
checks. Where this kernel behaves otherwise than the page says, the test
asserts what the kernel does and prints the difference with its version.
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from ...conftest import require
from ...pamlib import Users, key_users, line, pamtester, py_module

KERNEL = os.uname().release


def as_uid(uid: int, *cmd: str, gid: int | None = None) -> str:
    gid = uid if gid is None else gid
    proc = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return (proc.stdout + proc.stderr).strip()


@pytest.fixture
def fresh_uid():
    """A uid the kernel has no key record for. Kernels since 5.3 keep user
    keyrings after their processes exit, so afterwards both of its keyrings
    are invalidated by serial (a lookup of @u or @us would create them anew)
    and the record goes away."""
    while True:
        uid = random.randrange(1_500_000_000, 2_000_000_000)
        if key_users(uid) == (0, 0, 0):
            break
    yield uid
    serials = [as_uid(uid, "keyctl", "id", spec) for spec in ("@u", "@us")]
    as_uid(uid, "sh", "-c", "; ".join(f"keyctl invalidate {s}" for s in serials))


def test_name_is_uid_dot_uid(users):
    """'The user keyring has a name (description) of the form _uid.<UID>'"""
    uid = Users.GID_UID
    desc = as_uid(uid, "keyctl", "rdescribe", "@u", gid=Users.GID_GID)
    assert desc.startswith(f"keyring;{uid};") and desc.endswith(f";_uid.{uid}")


def test_shared_by_all_processes_of_the_uid(users):
    """'Each UID the kernel deals with has its own user keyring that is
    shared by all processes with that UID.'"""
    a = as_uid(Users.GID_UID, "keyctl", "id", "@u")
    b = as_uid(Users.GID_UID, "sh", "-c", "sleep 0.01; keyctl id @u")
    other = as_uid(Users.PEER_UID, "keyctl", "id", "@u")
    assert a == b and a != other and a.isdigit()


@pytest.mark.parametrize("spec", ["@u", "@us", "@s"])
def test_comes_into_existence_on_first_access(spec, runner_session_keyring, fresh_uid):
    """'It comes into existence upon the first attempt to access either the
    user keyring, the user-session-keyring(7), or the session-keyring(7).'
    and 'If a user keyring does not exist when it is accessed, it will be
    created.'"""
    if spec == "@s":
        require(
            runner_session_keyring == "_uid_ses.0",
            f"the runner has a session keyring of its own ({runner_session_keyring})",
        )
    uid = fresh_uid
    assert key_users(uid) == (0, 0, 0)
    as_uid(uid, "keyctl", "rdescribe", spec)
    assert key_users(uid)[0] >= 1
    assert as_uid(uid, "keyctl", "rdescribe", "@u").endswith(f";_uid.{uid}")


def script(folder, body: str):
    """An executable shell script for pam_exec, readable by every caller."""
    path = folder / "probe-script.sh"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    folder.chmod(0o755)
    return path


def test_reachable_as_at_u_and_key_spec_user_keyring(tmp_path, tree, service, users):
    """'A special serial number value, KEY_SPEC_USER_KEYRING, is defined that
    can be used in lieu of the actual serial number ... '@u' can be used'.
    The keyring the module links into the session is that same keyring."""
    user_keyring = as_uid(Users.GID_UID, "keyctl", "id", "@u", gid=Users.GID_GID)
    rlist = script(tmp_path, "keyctl rlist @s")
    svc = service(
        [
            line("session", "required", py_module(tree), "force"),
            f"session optional pam_exec.so stdout quiet {rlist}",
        ]
    )
    res = pamtester(svc, Users.GID_USER, ["open_session"])
    assert res.rc == 0, res.stderr
    assert user_keyring in res.stdout.split()


def test_found_from_a_module_session_not_from_one_without_the_link(tmp_path, tree, service, users):
    """'When pam_keyinit(8) creates a session keyring, it adds to it a link to
    the user keyring so that the user keyring will be searched when the
    session keyring is.' and 'The user keyring is not searched by default by
    request_key(2).'"""
    uid, gid = Users.GID_UID, Users.GID_GID
    name = f"pykt-man-{random.randrange(1 << 30)}"
    added = as_uid(uid, "keyctl", "add", "user", name, "secret", "@u", gid=gid)
    assert added.isdigit(), added
    try:
        request = script(tmp_path, f"echo request=$(keyctl request user {name} 2>&1)")
        svc = service(
            [
                line("session", "required", py_module(tree), "force"),
                f"session optional pam_exec.so stdout quiet {request}",
            ]
        )
        res = pamtester(svc, Users.GID_USER, ["open_session"])
        assert f"request={added}" in res.stdout, res.stdout
        # as the user, in an anonymous session keyring without the link
        alone = as_uid(uid, "keyctl", "session", "-", "keyctl", "request", "user", name, gid=gid)
        assert "Required key not available" in alone, alone
    finally:
        as_uid(uid, "keyctl", "unlink", added, "@u", gid=gid)


def test_independent_of_fork_and_exec(users):
    """'User keyrings are independent of clone(2), fork(2), vfork(2),
    execve(2), and _exit(2)'"""
    out = as_uid(Users.GID_UID, "sh", "-c", "keyctl id @u; (keyctl id @u); sh -c 'keyctl id @u'")
    ids = out.split()
    assert len(ids) == 3 and len(set(ids)) == 1


def test_lifetime_after_the_last_process_exits(capsys, fresh_uid):
    """'The keyring remains pinned in existence so long as there are
    processes running with that real UID ... the keyring is destroyed when
    the UID record is destroyed when the last process pinning it exits.'
    Since Linux 5.3 (commit 0f44e4d976f9, "keys: Move the user and
    user-session keyrings to the user_namespace") user keyrings hang off the
    user namespace's keyring register and outlive their processes."""
    uid = fresh_uid
    first = as_uid(uid, "keyctl", "id", "@u")
    # that process has exited; give the key garbage collector a moment
    subprocess.run(["sleep", "1"], check=True)
    record = key_users(uid)
    second = as_uid(uid, "keyctl", "id", "@u")
    major, minor = (int(x) for x in KERNEL.split(".")[:2])
    if (major, minor) >= (5, 3):
        assert record[0] >= 1 and first == second
        with capsys.disabled():
            print(
                f"\nuser-keyring(7) vs kernel {KERNEL}: _uid.{uid} ({first}) survived its last"
                " process; the page (man-pages 5.13) says it is destroyed with the UID record"
            )
    else:
        assert first != second
