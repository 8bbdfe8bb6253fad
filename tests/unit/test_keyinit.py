"""Every branch of keyinit.py, against the fake kernel's rules."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import pytest

from pam_pykeyinit.kernel import KernelError
from pam_pykeyinit.keyinit import (
    PAM_CRED_ERR,
    PAM_SESSION_ERR,
    PAM_SUCCESS,
    PAM_SYSTEM_ERR,
    PAM_USER_UNKNOWN,
    SLOTS,
    ThreadState,
    do_keyinit,
    kill_keyrings,
    new_context,
    parse_options,
)

from .fakes import USERS, FakeKernel, FakeLog, FakeSlots

if TYPE_CHECKING:
    from pam_pykeyinit.interfaces import Options

pytestmark = pytest.mark.unit


def make(kernel: FakeKernel, user: str | None = "alice", get_user_code: int = PAM_SUCCESS):
    log = FakeLog()
    thread = ThreadState(FakeSlots(SLOTS))
    ctx = new_context(kernel, log, thread, lambda: (get_user_code, user), USERS.get)
    return ctx, log, thread


def opts(*words: str) -> Options:
    return parse_options(list(words))


def entry_ids(kernel: FakeKernel) -> tuple[list[int], list[int]]:
    return list(kernel.uid), list(kernel.gid)


def test_creates_user_owned_keyring_and_restores_every_id():
    kernel = FakeKernel()
    ctx, log, thread = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SUCCESS
    ring = kernel.keyrings[kernel.session]
    assert (ring.name, ring.uid, ring.gid) == ("_ses", 1001, 2002)
    assert [kernel.keyrings[s].name for s in ring.links] == ["_uid.1001"]
    assert thread.my_session_keyring == ring.serial
    assert (thread.revoke_as_uid, thread.revoke_as_gid) == (1001, 2002)
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])
    assert log.text() == ""


def test_root_target_needs_no_switch():
    kernel = FakeKernel()
    ctx, _, _ = make(kernel, user="root")
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SUCCESS
    assert not [c for c in kernel.calls if c[0].startswith("setres")]
    assert kernel.keyrings[kernel.session].uid == 0


def test_early_return_when_thread_already_created_one():
    kernel = FakeKernel()
    ctx, _, thread = make(kernel)
    thread.my_session_keyring = 42
    assert do_keyinit(ctx, opts("force"), PAM_CRED_ERR) == PAM_SUCCESS
    assert kernel.calls == []


def test_get_user_failure_code_is_returned_as_is():
    ctx, _, _ = make(FakeKernel(), user=None, get_user_code=PAM_SYSTEM_ERR)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SYSTEM_ERR


def test_unknown_user():
    kernel = FakeKernel()
    ctx, log, _ = make(kernel, user="nosuch")
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_USER_UNKNOWN
    assert log.text("notice") == 'Unable to look up user "nosuch"'
    assert kernel.calls == []


def test_own_session_keyring_is_kept_without_force():
    kernel = FakeKernel(session="own")
    before = kernel.session
    ctx, _, thread = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SUCCESS
    assert kernel.session == before and thread.my_session_keyring == 0
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_force_replaces_own_session_keyring():
    kernel = FakeKernel(session="own")
    before = kernel.session
    ctx, _, thread = make(kernel)
    assert do_keyinit(ctx, opts("force"), PAM_SESSION_ERR) == PAM_SUCCESS
    assert kernel.session != before and thread.my_session_keyring == kernel.session
    assert not [c for c in kernel.calls if c[0] == "get"]


def test_enosys_means_no_keyrings_and_success():
    kernel = FakeKernel(fail={"get": errno.ENOSYS})
    ctx, log, thread = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SUCCESS
    assert thread.my_session_keyring == 0 and log.text() == ""
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


@pytest.mark.parametrize(
    "nth,what", [(1, "reading the session keyring"), (2, "reading the user-session keyring")]
)
def test_get_keyring_id_failures(nth, what):
    kernel = FakeKernel(fail={"get": (errno.EACCES, nth)})
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_CRED_ERR) == PAM_CRED_ERR
    assert what in log.text() and "EACCES" in log.text() and "LSM" in log.text()
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_revoked_inherited_session_keyring_fails_without_force_only():
    kernel = FakeKernel(session="revoked")
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert "EKEYREVOKED" in log.text() and "'force'" in log.text()
    ctx, _, _ = make(kernel)
    assert do_keyinit(ctx, opts("force"), PAM_SESSION_ERR) == PAM_SUCCESS


def test_join_failure_names_the_quota():
    kernel = FakeKernel(fail={"join": errno.EDQUOT})
    ctx, log, thread = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    text = log.text()
    assert "EDQUOT" in text and "/proc/key-users" in text and "kernel.keys.maxkeys" in text
    assert thread.my_session_keyring == 0
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_link_failure_keeps_the_joined_keyring_remembered():
    kernel = FakeKernel(fail={"link": errno.ENOMEM})
    ctx, log, thread = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert thread.my_session_keyring == kernel.session > 0
    assert "linking the user keyring" in log.text() and "ENOMEM" in log.text()
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_gid_switch_failure():
    kernel = FakeKernel(fail={"setresgid": (errno.EPERM, 1)})
    ctx, log, thread = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert "setresgid(2002, -1, 0)" in log.text() and "CAP_SETGID" in log.text()
    assert kernel.session is None and thread.my_session_keyring == 0
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_uid_switch_failure_puts_the_gid_back():
    kernel = FakeKernel(fail={"setresuid": (errno.EAGAIN, 1)})
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert "setresuid(1001, -1, 0)" in log.text() and "EAGAIN" in log.text()
    assert kernel.session is None
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


@pytest.mark.parametrize(
    "call,nth,shown",
    [("setresuid", 2, "setresuid"), ("setresgid", 2, "setresgid"), ("thread_ids", 2, "setfsuid")],
)
def test_restore_failure_turns_success_into_the_error_code(call, nth, shown):
    kernel = FakeKernel(fail={call: (errno.EPERM, nth)})
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_CRED_ERR) == PAM_CRED_ERR
    assert "restor" in log.text() and shown in log.text() and "EPERM" in log.text()
    assert "end it" in log.text()
    # the second try put every ID back
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_restore_that_keeps_failing_is_reported_for_each_try():
    kernel = FakeKernel()
    ctx, log, _ = make(kernel)
    kernel.fail["setresuid"] = (errno.EPERM, 2)
    real = kernel.setresuid

    def setresuid(r, e, s):  # every restore step fails from the second call on
        if kernel.counts.get("setresuid", 0) >= 1:
            kernel.fail["setresuid"] = errno.EPERM
        real(r, e, s)

    kernel.setresuid = setresuid
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    failures = [m for lv, m in log.lines if lv == "err" and "cannot restore the caller's uids" in m]
    assert len(failures) == 2 and "end it" in failures[0]
    assert kernel.uid[0] == 1001  # the kernel refused: the log says so


def test_unprivileged_caller_for_another_user_gets_eperm():
    kernel = FakeKernel(uids=(1003, 1003, 1003), gids=(1003, 1003, 1003))
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert "EPERM" in log.text()
    assert entry_ids(kernel) == ([1003] * 4, [1003] * 4)


def test_unprivileged_caller_for_itself_switches_nothing():
    kernel = FakeKernel(uids=(1003, 1003, 1003), gids=(1003, 1003, 1003))
    ctx, _, _ = make(kernel, user="same")
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SUCCESS
    assert kernel.keyrings[kernel.session].uid == 1003
    assert not [c for c in kernel.calls if c[0].startswith("setres")]


def test_own_fs_ids_are_restored_and_a_failure_there_retried():
    kernel = FakeKernel(uids=(0, 0, 0), gids=(0, 0, 0))
    kernel.uid[3], kernel.gid[3] = 8, 6
    kernel.fail["setfsuid"] = (errno.EINVAL, 1)
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert "setfsuid(8) failed: EINVAL" in log.text()
    assert entry_ids(kernel) == ([0, 0, 0, 8], [0, 0, 0, 6])


def test_setuid_style_caller_gets_every_id_back():
    # A caller whose IDs all differ, with an fsuid of its own: the switch
    # parks the displaced real ID in the saved slot, so even the rules for
    # an unprivileged caller allow the way back.
    kernel = FakeKernel(uids=(0, 0, 7), gids=(5, 0, 9))
    kernel.uid[3], kernel.gid[3] = 8, 6
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SUCCESS, log.lines
    assert entry_ids(kernel) == ([0, 0, 7, 8], [5, 0, 9, 6])


# -- kill_keyrings ----------------------------------------------------------


def opened(kernel: FakeKernel, user: str = "alice"):
    ctx, log, thread = make(kernel, user=user)
    assert do_keyinit(ctx, opts("revoke"), PAM_SESSION_ERR) == PAM_SUCCESS
    return ctx, log, thread


def test_revoke_as_the_owner_and_restore():
    kernel = FakeKernel()
    ctx, _, thread = opened(kernel)
    serial = thread.my_session_keyring
    kernel.calls.clear()
    assert kill_keyrings(ctx, PAM_CRED_ERR) == PAM_SUCCESS
    assert kernel.keyrings[serial].revoked and thread.my_session_keyring == 0
    # switched the effective IDs (not the real ones), gid first
    switches = [c for c in kernel.calls if c[0].startswith("setres")][:2]
    assert switches == [("setresgid", -1, 2002, 0), ("setresuid", -1, 1001, 0)]
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


@pytest.mark.parametrize("call", ["setresgid", "setresuid"])
def test_revoke_switch_failure_keeps_the_keyring_remembered(call):
    kernel = FakeKernel()
    ctx, log, thread = opened(kernel)
    serial = thread.my_session_keyring
    kernel.fail[call] = (errno.EPERM, kernel.counts[call] + 1)
    assert kill_keyrings(ctx, PAM_CRED_ERR) == PAM_CRED_ERR
    assert thread.my_session_keyring == serial and not kernel.keyrings[serial].revoked
    assert "to revoke" in log.text() and "EPERM" in log.text()
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_revoke_failure_forgets_the_keyring_and_reports():
    kernel = FakeKernel()
    ctx, log, thread = opened(kernel)
    kernel.fail["revoke"] = errno.EACCES
    assert kill_keyrings(ctx, PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert thread.my_session_keyring == 0
    assert "revoking session keyring" in log.text()
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_revoke_restore_failure_is_reported():
    kernel = FakeKernel()
    ctx, log, _ = opened(kernel)
    kernel.fail["setresgid"] = (errno.EPERM, kernel.counts["setresgid"] + 2)
    assert kill_keyrings(ctx, PAM_CRED_ERR) == PAM_CRED_ERR
    assert "cannot restore the caller's gids" in log.text()


def test_revoke_for_root_switches_nothing():
    kernel = FakeKernel()
    ctx, _, _ = opened(kernel, user="root")
    kernel.calls.clear()
    assert kill_keyrings(ctx, PAM_CRED_ERR) == PAM_SUCCESS
    assert [c[0] for c in kernel.calls] == ["thread_ids", "revoke"]


@pytest.mark.parametrize("call", ["thread_ids"])
def test_failure_to_read_the_ids_stops_before_any_switch(call):
    kernel = FakeKernel(fail={call: (errno.ENOSYS, 1)})
    ctx, log, thread = make(kernel)
    assert do_keyinit(ctx, opts(), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert "reading the caller's IDs" in log.text() and kernel.session is None
    kernel = FakeKernel()
    ctx, log, thread = opened(kernel)
    kernel.fail[call] = (errno.ENOSYS, kernel.counts[call] + 1)
    assert kill_keyrings(ctx, PAM_CRED_ERR) == PAM_CRED_ERR
    assert thread.my_session_keyring > 0


# -- force=auto ----------------------------------------------------------------


def users_own(kernel: FakeKernel) -> int:
    """Make the process's session keyring alice's own; return its serial."""
    ring = kernel.keyrings[kernel.session]
    ring.uid, ring.gid = 1001, 2002
    return ring.serial


@pytest.mark.parametrize(
    "session,reason",
    [
        (None, "is only the user-session keyring"),
        ("own", "belongs to uid 0, not 1001"),
        ("revoked", "EKEYREVOKED"),
        ("expired", "EKEYEXPIRED"),
    ],
)
def test_force_auto_replaces_what_is_not_the_users_own(session, reason):
    kernel = FakeKernel(session=session)
    before = kernel.session
    ctx, log, thread = make(kernel)
    thread.xdebug = True
    assert do_keyinit(ctx, opts("force=auto"), PAM_SESSION_ERR) == PAM_SUCCESS
    ring = kernel.keyrings[kernel.session]
    assert kernel.session != before and (ring.name, ring.uid, ring.gid) == ("_ses", 1001, 2002)
    assert [kernel.keyrings[s].name for s in ring.links] == ["_uid.1001"]
    assert thread.my_session_keyring == ring.serial  # so 'revoke' revokes it
    assert reason in log.text("debug") and "force=auto: replacing" in log.text("debug")
    assert log.text() == ""
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_force_auto_keeps_the_users_own_and_touches_nothing():
    kernel = FakeKernel(session="own")
    serial = users_own(kernel)
    ctx, log, thread = make(kernel)
    thread.xdebug = True
    assert do_keyinit(ctx, opts("force=auto", "persistent"), PAM_SESSION_ERR) == PAM_SUCCESS
    assert kernel.session == serial and thread.my_session_keyring == 0  # never revoked
    assert kernel.keyrings[serial].links == []  # nothing linked into it
    assert not [c for c in kernel.calls if c[0] in ("join", "link", "persistent")]
    assert "keeping the session keyring, the user's own" in log.text("debug")


def test_force_auto_replaces_one_that_cannot_be_described():
    kernel = FakeKernel(session="own")
    users_own(kernel)
    kernel.fail["describe"] = errno.EACCES
    ctx, _, thread = make(kernel)
    assert do_keyinit(ctx, opts("force=auto"), PAM_SESSION_ERR) == PAM_SUCCESS
    assert thread.my_session_keyring == kernel.session > 0


def test_force_wins_over_force_auto():
    kernel = FakeKernel(session="own")
    serial = users_own(kernel)
    ctx, _, _ = make(kernel)
    assert do_keyinit(ctx, opts("force=auto", "force"), PAM_SESSION_ERR) == PAM_SUCCESS
    assert kernel.session != serial and not [c for c in kernel.calls if c[0] == "describe"]


def test_force_auto_where_keyctl_is_refused_fails_as_force_does():
    kernel = FakeKernel(fail={"get": errno.EPERM, "join": errno.EPERM})
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts("force=auto"), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert "creating the session keyring" in log.text() and "EPERM" in log.text()


# -- persistent ------------------------------------------------------------------


def test_persistent_is_linked_into_the_created_keyring():
    kernel = FakeKernel()
    ctx, _, _ = make(kernel)
    assert do_keyinit(ctx, opts("force", "persistent"), PAM_SESSION_ERR) == PAM_SUCCESS
    ring = kernel.keyrings[kernel.session]
    names = [kernel.keyrings[s].name for s in ring.links]
    assert names == ["_uid.1001", "_persistent.1001"]
    assert ("persistent", 1001, ring.serial) in kernel.calls
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


def test_persistent_leaves_a_kept_keyring_alone():
    kernel = FakeKernel(session="own")
    ctx, _, _ = make(kernel)
    assert do_keyinit(ctx, opts("persistent"), PAM_SESSION_ERR) == PAM_SUCCESS
    assert not [c for c in kernel.calls if c[0] == "persistent"]


@pytest.mark.parametrize("err", [errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.EDQUOT])
def test_persistent_failure_is_a_warning_not_a_failure(err):
    kernel = FakeKernel(fail={"persistent": err})
    ctx, log, thread = make(kernel)
    assert do_keyinit(ctx, opts("force", "persistent", "revoke"), PAM_CRED_ERR) == PAM_SUCCESS
    warning = log.text("warning")
    assert "KEYCTL_GET_PERSISTENT" in warning and errno.errorcode[err] in warning
    assert "goes on without it" in warning and log.text() == ""
    assert thread.my_session_keyring == kernel.session  # still revoked at close


def test_persistent_is_not_tried_after_a_failed_link():
    kernel = FakeKernel(fail={"link": errno.ENOMEM})
    ctx, _, _ = make(kernel)
    assert do_keyinit(ctx, opts("persistent"), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert not [c for c in kernel.calls if c[0] == "persistent"]


# -- unavailable=ignore ----------------------------------------------------------


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EPERM, errno.EACCES])
@pytest.mark.parametrize("force", [[], ["force"], ["force=auto"]])
def test_unavailable_ignore_gives_a_session_without_keyring(err, force):
    kernel = FakeKernel(fail={"get": err, "join": err})
    ctx, log, thread = make(kernel)
    words = [*force, "unavailable=ignore", "revoke"]
    assert do_keyinit(ctx, opts(*words), PAM_SESSION_ERR) == PAM_SUCCESS
    notices = [m for lv, m in log.lines if lv == "notice"]
    assert len(notices) == 1 and log.text() == ""
    assert notices[0].startswith(
        f"keyrings are unavailable to this process: {errno.errorcode[err]} from keyctl("
    )
    assert notices[0].endswith("; the session has no keyring of its own")
    assert thread.my_session_keyring == 0 and kernel.session is None  # nothing to revoke
    assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])


@pytest.mark.parametrize(
    "fail,words",
    [
        ({"join": errno.EDQUOT}, ["force"]),  # another errno
        ({"get": errno.ENOMEM}, []),
        ({"link": errno.EPERM}, ["force"]),  # after a keyring was made
    ],
)
def test_unavailable_ignore_keeps_other_failures(fail, words):
    kernel = FakeKernel(fail=fail)
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts(*words, "unavailable=ignore"), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert log.text() and not [m for lv, m in log.lines if lv == "notice"]


def test_unavailable_ignore_keeps_failing_on_a_revoked_inherited_keyring():
    kernel = FakeKernel(session="revoked")
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts("unavailable=ignore"), PAM_SESSION_ERR) == PAM_SESSION_ERR
    assert "EKEYREVOKED" in log.text()


def test_enosys_with_unavailable_fail_stays_silent_as_in_c():
    kernel = FakeKernel(fail={"get": errno.ENOSYS})
    ctx, log, _ = make(kernel)
    assert do_keyinit(ctx, opts("unavailable=fail"), PAM_SESSION_ERR) == PAM_SUCCESS
    assert log.lines == [] or all(lv == "debug" for lv, _ in log.lines)


# -- an exception inside the switch: the restore is still reported -----------


def fail_every_restore_of_the_uid(kernel: FakeKernel) -> None:
    """The next setresuid (the switch) works; every later one fails with
    EPERM, so no restore of the uid can succeed."""
    real = kernel.setresuid
    seen = []

    def setresuid(r, e, s):
        seen.append((r, e, s))
        if len(seen) > 1:
            kernel.fail["setresuid"] = errno.EPERM
        real(r, e, s)

    kernel.setresuid = setresuid  # type: ignore[method-assign]


def raise_value_error(*args: object) -> int:
    raise ValueError("a bug in the action")


@pytest.mark.parametrize("restore_fails", [False, True])
def test_an_exception_while_switched_is_logged_then_every_restore(restore_fails):
    kernel = FakeKernel()
    kernel.join_session_keyring = raise_value_error  # type: ignore[method-assign]
    if restore_fails:
        fail_every_restore_of_the_uid(kernel)
    ctx, log, thread = make(kernel)
    assert do_keyinit(ctx, opts("force"), PAM_SESSION_ERR) == PAM_SESSION_ERR
    errors = [m for lv, m in log.lines if lv == "err"]
    assert errors[0] == "internal error ValueError: a bug in the action; please report it"
    restores = [m for m in errors if "cannot restore the caller's uids" in m]
    if restore_fails:
        # both tries reported, each with the advice; the IDs are what the
        # kernel left: the user's real uid, as the lines say
        assert len(restores) == 2 and all("end it" in m for m in restores), errors
        assert len(errors) == 3
        assert kernel.uid == [1001, 0, 0, 0]
    else:
        assert restores == [] and len(errors) == 1
        assert entry_ids(kernel) == ([0, 0, 0, 0], [0, 0, 0, 0])
    assert thread.my_session_keyring == 0


def test_an_exception_while_revoking_is_logged_then_the_restore():
    kernel = FakeKernel()
    ctx, log, _ = opened(kernel)
    kernel.revoke = raise_value_error  # type: ignore[method-assign]
    fail_every_restore_of_the_uid(kernel)
    assert kill_keyrings(ctx, PAM_CRED_ERR) == PAM_CRED_ERR
    errors = [m for lv, m in log.lines if lv == "err"]
    assert errors[0].startswith("internal error ValueError")
    assert any("cannot restore the caller's uids" in m and "end it" in m for m in errors), errors
    assert kernel.uid[1] == 1001  # the effective uid the revoke took, still held


def test_a_failed_restore_is_logged_even_when_an_interrupt_ends_the_next_try():
    # The first try to restore the uid fails (EPERM); a KeyboardInterrupt
    # (SIGINT in a Python host) comes during the second. The thread is left
    # with the user's real uid, and the first failure must still be in the
    # log as the interrupt goes on to the host.
    kernel = FakeKernel()
    real = kernel.setresuid
    seen = []

    def setresuid(r, e, s):
        seen.append((r, e, s))
        if len(seen) == 2:  # the first restore
            raise KernelError("setresuid", (r, e, s), errno.EPERM)
        if len(seen) == 3:  # the second
            raise KeyboardInterrupt
        real(r, e, s)

    kernel.setresuid = setresuid  # type: ignore[method-assign]
    ctx, log, _ = make(kernel)
    with pytest.raises(KeyboardInterrupt):
        do_keyinit(ctx, opts("force"), PAM_SESSION_ERR)
    errors = [m for lv, m in log.lines if lv == "err"]
    assert len(errors) == 1 and "cannot restore the caller's uids" in errors[0], errors
    assert "EPERM" in errors[0] and "end it" in errors[0]
    assert kernel.uid[0] == 1001  # what the line says
