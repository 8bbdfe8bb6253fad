"""user-keyring(7)'s statements about the kernel, on the running kernel.

These are kernel facts pam_keyinit and pam_pykeyinit rely on, not tests of
the module: they pass with the package deleted, by design, and fail when a
kernel stops behaving as the module assumes. Each quotes the claim of
../shared/reference/user-keyring.7.txt it checks; where this kernel behaves
otherwise than the page says, the test asserts what the kernel does and
prints the difference with its version.
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from ...pamlib import Users, key_users, run_as

pytestmark = pytest.mark.kernel_fact
KERNEL = os.uname().release


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
    serials = [run_as(uid, "keyctl", "id", spec) for spec in ("@u", "@us")]
    run_as(uid, "sh", "-c", "; ".join(f"keyctl invalidate {s}" for s in serials))


def test_name_is_uid_dot_uid(users):
    """'The user keyring has a name (description) of the form _uid.<UID>'"""
    uid = Users.GID_UID
    desc = run_as(uid, "keyctl", "rdescribe", "@u", gid=Users.GID_GID)
    assert desc.startswith(f"keyring;{uid};") and desc.endswith(f";_uid.{uid}")


def test_shared_by_all_processes_of_the_uid(users):
    """'Each UID the kernel deals with has its own user keyring that is
    shared by all processes with that UID.'"""
    a = run_as(Users.GID_UID, "keyctl", "id", "@u")
    b = run_as(Users.GID_UID, "sh", "-c", "sleep 0.01; keyctl id @u")
    other = run_as(Users.PEER_UID, "keyctl", "id", "@u")
    assert a == b and a != other and a.isdigit()


# "@s" too, in the page: a process that has no session keyring at all has
# its @s resolved to @us (security/keys/process_keys.c, lookup_user_key()),
# and no process that has a session keyring can make one without (there is
# no call to leave it), so the @us case is that case.
@pytest.mark.parametrize("spec", ["@u", "@us"])
def test_comes_into_existence_on_first_access(spec, fresh_uid):
    """'It comes into existence upon the first attempt to access either the
    user keyring, the user-session-keyring(7), or the session-keyring(7).'
    and 'If a user keyring does not exist when it is accessed, it will be
    created.'"""
    uid = fresh_uid
    assert key_users(uid) == (0, 0, 0)
    run_as(uid, "keyctl", "rdescribe", spec)
    assert key_users(uid)[0] >= 1
    assert run_as(uid, "keyctl", "rdescribe", "@u").endswith(f";_uid.{uid}")


def test_independent_of_fork_and_exec(users):
    """'User keyrings are independent of clone(2), fork(2), vfork(2),
    execve(2), and _exit(2)'"""
    out = run_as(Users.GID_UID, "sh", "-c", "keyctl id @u; (keyctl id @u); sh -c 'keyctl id @u'")
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
    first = run_as(uid, "keyctl", "id", "@u")
    # that process has exited; give the key garbage collector a moment
    subprocess.run(["sleep", "1"], check=True)
    record = key_users(uid)
    second = run_as(uid, "keyctl", "id", "@u")
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
