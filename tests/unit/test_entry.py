"""The six entry points' dispatch (keyinit.pam_sm_*), with a fake pamh and
fake kernel: the setcred flags, the session counter, the revoke guard, the
sticky options and the unknown-word report."""

from __future__ import annotations

import errno

import pytest

from pam_pykeyinit import kernel
from pam_pykeyinit import keyinit as entry
from pam_pykeyinit.keyinit import (
    PAM_CRED_ERR,
    PAM_DELETE_CRED,
    PAM_ESTABLISH_CRED,
    PAM_IGNORE,
    PAM_MODULE_UNKNOWN,
    PAM_REFRESH_CRED,
    PAM_REINITIALIZE_CRED,
    PAM_SESSION_ERR,
    PAM_SUCCESS,
    PAM_USER_UNKNOWN,
)

from .fakes import USERS, FakeKernel, FakeLog, FakePamh, FakeSlots

pytestmark = pytest.mark.unit
ARGV0 = "/usr/lib/security/pam_pykeyinit.py"


@pytest.fixture
def world(monkeypatch):
    """A fresh process state and thread state, a fake kernel and log."""
    monkeypatch.setattr(entry.kernel, "thread_slots", FakeSlots)
    monkeypatch.setattr(entry, "process_state", entry.new_process_state())
    fake = FakeKernel()
    log = FakeLog()
    monkeypatch.setattr(entry.kernel, "load", lambda: fake)
    monkeypatch.setattr(entry, "logger", lambda service, pam_type, debug_on: log)
    monkeypatch.setattr(entry, "_getpwnam", USERS.get)
    return fake, log


def state() -> entry.ThreadState:
    """The calling thread's state in this generation's slots (made here if
    no call made them yet)."""
    if entry.process_state.slots is None:
        entry.process_state.slots = FakeSlots(entry.SLOTS)
    return entry.ThreadState(entry.process_state.slots)


def test_authenticate_ignores(world):
    assert entry.pam_sm_authenticate(FakePamh(), 0, [ARGV0]) == PAM_IGNORE
    assert world[0].calls == []


@pytest.mark.parametrize("fn", [entry.pam_sm_acct_mgmt, entry.pam_sm_chauthtok])
def test_account_and_password_answer_module_unknown(world, fn):
    assert fn(FakePamh(), 0, [ARGV0]) == PAM_MODULE_UNKNOWN


def test_setcred_establish_then_delete_revokes_only_with_revoke(world):
    fake, _ = world
    pamh = FakePamh()
    assert entry.pam_sm_setcred(pamh, PAM_ESTABLISH_CRED, [ARGV0]) == PAM_SUCCESS
    serial = state().my_session_keyring
    assert serial > 0
    assert entry.pam_sm_setcred(pamh, PAM_DELETE_CRED, [ARGV0]) == PAM_IGNORE
    state().do_revoke = True
    assert entry.pam_sm_setcred(pamh, PAM_DELETE_CRED, [ARGV0]) == PAM_SUCCESS
    assert fake.keyrings[serial].revoked and state().my_session_keyring == 0
    assert entry.pam_sm_setcred(pamh, PAM_DELETE_CRED, [ARGV0]) == PAM_IGNORE


@pytest.mark.parametrize("flags", [0, PAM_REFRESH_CRED, PAM_REINITIALIZE_CRED])
def test_setcred_other_flags_ignore(world, flags):
    assert entry.pam_sm_setcred(FakePamh(), flags, [ARGV0, "revoke"]) == PAM_IGNORE
    assert world[0].calls == []


def test_establish_is_tested_before_delete(world):
    flags = PAM_ESTABLISH_CRED | PAM_DELETE_CRED
    assert entry.pam_sm_setcred(FakePamh(), flags, [ARGV0, "revoke"]) == PAM_SUCCESS
    assert state().my_session_keyring > 0


def test_error_codes_per_entry_point(world):
    fake, _ = world
    fake.fail["join"] = errno.EDQUOT
    assert entry.pam_sm_setcred(FakePamh(), PAM_ESTABLISH_CRED, [ARGV0]) == PAM_CRED_ERR
    assert entry.pam_sm_open_session(FakePamh(), 0, [ARGV0]) == PAM_SESSION_ERR


def test_open_close_counter_and_sticky_revoke(world):
    fake, _ = world
    pamh = FakePamh()
    assert entry.pam_sm_open_session(pamh, 0, [ARGV0, "revoke"]) == PAM_SUCCESS
    serial = state().my_session_keyring
    assert entry.pam_sm_open_session(pamh, 0, [ARGV0]) == PAM_SUCCESS  # second line
    assert entry.process_state.session_counter == 2
    assert entry.pam_sm_close_session(pamh, 0, [ARGV0]) == PAM_SUCCESS
    assert not fake.keyrings[serial].revoked  # counter still 1
    assert entry.pam_sm_close_session(pamh, 0, [ARGV0]) == PAM_SUCCESS
    assert fake.keyrings[serial].revoked


def test_close_without_open_and_failed_revoke_still_succeed(world):
    fake, _ = world
    pamh = FakePamh()
    assert entry.pam_sm_close_session(pamh, 0, [ARGV0]) == PAM_SUCCESS
    assert entry.process_state.session_counter == -1
    entry.pam_sm_open_session(pamh, 0, [ARGV0, "revoke"])
    entry.pam_sm_open_session(pamh, 0, [ARGV0])
    fake.fail["revoke"] = errno.EACCES
    assert entry.pam_sm_close_session(pamh, 0, [ARGV0]) == PAM_SUCCESS


def test_options_are_applied_before_the_early_return(world):
    pamh = FakePamh()
    assert entry.pam_sm_open_session(pamh, 0, [ARGV0]) == PAM_SUCCESS
    assert not state().do_revoke
    # a second line: the thread's keyring exists, its words still count
    assert entry.pam_sm_open_session(pamh, 0, [ARGV0, "revoke", "debug"]) == PAM_SUCCESS
    assert state().do_revoke and state().xdebug


def test_delete_with_nothing_created_ignores_and_touches_nothing(world):
    fake, _ = world
    state().do_revoke = True
    assert entry.pam_sm_setcred(FakePamh(), PAM_DELETE_CRED, [ARGV0]) == PAM_IGNORE
    assert entry.pam_sm_close_session(FakePamh(), 0, [ARGV0]) == PAM_SUCCESS
    assert fake.calls == []


def test_close_ignores_its_own_arguments(world):
    fake, _ = world
    pamh = FakePamh()
    entry.pam_sm_open_session(pamh, 0, [ARGV0])
    serial = state().my_session_keyring
    assert entry.pam_sm_close_session(pamh, 0, [ARGV0, "revoke"]) == PAM_SUCCESS
    assert not fake.keyrings[serial].revoked


def test_get_user_error_and_unknown_user(world):
    pamh = FakePamh(get_user_error=7)
    assert entry.pam_sm_open_session(pamh, 0, [ARGV0]) == 7
    assert entry.pam_sm_open_session(FakePamh(user="ghost"), 0, [ARGV0]) == PAM_USER_UNKNOWN
    assert entry.pam_sm_open_session(FakePamh(user=None), 0, [ARGV0]) == PAM_USER_UNKNOWN


def test_unknown_word_is_reported_once_per_process(world):
    _, log = world
    for _ in range(3):
        entry.pam_sm_open_session(FakePamh(), 0, [ARGV0, "Revoke", "force"])
    notices = [m for lv, m in log.lines if lv == "notice"]
    assert len(notices) == 1 and '"Revoke"' in notices[0]
    assert not state().do_revoke


def test_unsupported_abi_fails_closed(world, monkeypatch):
    def refuse():
        raise kernel.UnsupportedABI("no checked system call table for mips64el-linux-gnuabi64")

    monkeypatch.setattr(entry.kernel, "load", refuse)
    _, log = world
    assert entry.pam_sm_open_session(FakePamh(), 0, [ARGV0]) == PAM_SESSION_ERR
    assert entry.pam_sm_setcred(FakePamh(), PAM_ESTABLISH_CRED, [ARGV0]) == PAM_CRED_ERR
    assert "mips64el" in log.text()


def test_unexpected_exception_becomes_the_error_code(world, monkeypatch):
    def boom():
        raise RuntimeError("surprise")

    monkeypatch.setattr(entry.kernel, "load", boom)
    _, log = world
    assert entry.pam_sm_open_session(FakePamh(), 0, [ARGV0]) == PAM_SESSION_ERR
    assert "internal error RuntimeError: surprise" in log.text()
    state().my_session_keyring, state().do_revoke = 5, True
    assert entry.pam_sm_close_session(FakePamh(), 0, [ARGV0]) == PAM_SUCCESS


def test_service_read_failure_is_tolerated():
    class Broken(FakePamh):
        @property
        def service(self):
            raise RuntimeError("no item")

        @service.setter
        def service(self, value):
            pass

    assert entry._service(Broken()) == "<unknown>"
    assert entry._service(FakePamh(service=None)) == "<unknown>"


def test_real_getpwnam_treats_bad_names_as_unknown():
    assert entry._getpwnam("root").pw_uid == 0
    for name in ["", "no\0such", "x" * 5000, "ünïcödé-nobody"]:
        assert entry._getpwnam(name) is None


# -- handles ending: the state of an unloaded pam_keyinit.so ------------------


def test_state_starts_afresh_once_every_handle_ended(world):
    """A Python program's pamela: open in one handle, pam_end, close in
    another. pam_keyinit.so was unloaded in between (libpam's dlclose), so
    its close finds no keyring and no counter: nothing is revoked."""
    fake, _ = world
    first, second = FakePamh(), FakePamh()
    assert entry.pam_sm_open_session(first, 0, [ARGV0, "revoke"]) == PAM_SUCCESS
    serial = state().my_session_keyring
    entry.pam_sm_end(first)
    assert entry.pam_sm_close_session(second, 0, [ARGV0, "revoke"]) == PAM_SUCCESS
    assert not fake.keyrings[serial].revoked
    assert state().my_session_keyring == 0 and not state().do_revoke
    assert entry.process_state.session_counter == -1  # as in a freshly loaded module
    entry.pam_sm_end(second)


def test_state_is_kept_while_another_handle_lives(world):
    """Open in one handle, close in another that was started before the
    first ended: the module stayed loaded, the close revokes."""
    fake, _ = world
    first, second = FakePamh(), FakePamh()
    assert entry.pam_sm_open_session(first, 0, [ARGV0, "revoke"]) == PAM_SUCCESS
    serial = state().my_session_keyring
    assert entry.pam_sm_setcred(second, 0, [ARGV0]) == PAM_IGNORE  # calls in, stays alive
    entry.pam_sm_end(first)
    assert entry.pam_sm_close_session(second, 0, [ARGV0]) == PAM_SUCCESS
    assert fake.keyrings[serial].revoked
    entry.pam_sm_end(second)
    assert entry.process_state.handles == set()


def test_every_threads_state_starts_afresh(world):
    """The new generation reaches a thread that did not end the handle."""

    fake, _ = world
    pamh = FakePamh()
    seen: list[int] = []

    def in_thread(step: str) -> None:
        if step == "open":
            entry.pam_sm_open_session(pamh, 0, [ARGV0, "force", "revoke"])
        seen.append(entry.current_thread_state(pamh).my_session_keyring)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # the same worker thread twice
        pool.submit(in_thread, "open").result()
        entry.pam_sm_end(pamh)  # from the main thread, as pam_end may be
        pool.submit(in_thread, "look").result()
    assert seen[0] > 0 and seen[1] == 0
    assert not fake.keyrings[seen[0]].revoked  # left as an unloaded module leaves it
