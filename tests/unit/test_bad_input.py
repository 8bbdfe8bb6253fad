"""Property-based: whatever pamh, argv and flags hold, every entry point
returns a PAM code and never raises (a traceback would reach the host's
log and pam_python would answer PAM_SERVICE_ERR instead of our code)."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pam_pykeyinit import kernel
from pam_pykeyinit import keyinit as entry
from pam_pykeyinit.keyinit import (
    PAM_CRED_ERR,
    PAM_IGNORE,
    PAM_MODULE_UNKNOWN,
    PAM_SESSION_ERR,
    PAM_SUCCESS,
    PAM_USER_UNKNOWN,
)

from .fakes import FakeKernel, FakeLog, FakePamh, FakeSlots

pytestmark = pytest.mark.unit

WORDS = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            ["force", "revoke", "debug", "Force", "revoke=1", "", " ", "debug\0x", "é", "x" * 5000]
        ),
    ),
    max_size=6,
)
NAMES = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.sampled_from(["root", "", "a=b", "no\0body", "\udcff", "ünïcödé", "x" * 10000]),
)
SERVICES = st.one_of(st.none(), st.text(max_size=50))
FLAGS = st.integers(min_value=-(2**31), max_value=2**31 - 1)
ERRORS = st.one_of(st.none(), st.integers(min_value=1, max_value=40))
FAULTS = st.dictionaries(
    st.sampled_from(
        [
            *("get", "join", "link", "revoke", "describe", "persistent"),
            *("setresuid", "setresgid", "thread_ids"),
        ]
    ),
    st.sampled_from([errno.EPERM, errno.ENOSYS, errno.EDQUOT]),
    max_size=2,
)
HANDLERS = [
    entry.pam_sm_authenticate,
    entry.pam_sm_setcred,
    entry.pam_sm_acct_mgmt,
    entry.pam_sm_open_session,
    entry.pam_sm_close_session,
    entry.pam_sm_chauthtok,
]
CODES = {
    PAM_SUCCESS,
    PAM_IGNORE,
    PAM_MODULE_UNKNOWN,
    PAM_SESSION_ERR,
    PAM_CRED_ERR,
    PAM_USER_UNKNOWN,
}


@settings(max_examples=400, deadline=None)
@given(
    words=WORDS,
    name=NAMES,
    service=SERVICES,
    flags=FLAGS,
    err=ERRORS,
    faults=FAULTS,
    calls=st.lists(st.sampled_from(range(6)), min_size=1, max_size=6),
)
def test_every_entry_point_returns_a_code(words, name, service, flags, err, faults, calls):
    fake = FakeKernel(fail=faults)
    sink = FakeLog()
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(entry.kernel, "load", lambda: fake)
        mp.setattr(entry, "logger", lambda service, pam_type, debug_on: sink)
        mp.setattr(entry.kernel, "thread_slots", FakeSlots)
        mp.setattr(entry, "process_state", entry.new_process_state())
        pamh = FakePamh(user=name, get_user_error=err, service=service)
        for i in calls:
            rc = HANDLERS[i](pamh, flags, ["/usr/lib/security/pam_pykeyinit.py", *words])
            assert isinstance(rc, int) and (rc in CODES or rc == err), rc
    finally:
        mp.undo()
    assert not [m for _, m in sink.lines if "internal error" in m], sink.lines


@settings(max_examples=500, deadline=None)
@given(text=st.text())
def test_log_lines_are_always_one_c_string(text):
    # (the real syslog(3) call with such lines runs in
    # tests/pam/conformance/test_bad_input.py, under a captured /dev/log)
    data = kernel.clean_line(text)
    assert isinstance(data, bytes) and b"\0" not in data
