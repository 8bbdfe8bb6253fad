"""pam_pykeyinit against pam_keyinit.so, the oracle, on the same input.

Each case runs one stack twice, once with the C module and once with
pam_python + pam_pykeyinit in its place, and compares what pamtester
reports: its exit status, its messages, and the probe's view of the
caller's session keyring after every session call (serials normalised to
their order of appearance). Two differences are deliberate and handled
explicitly rather than hidden: the saved uid/gid (Linux-PAM 1.5.2 and 1.7.0
leave the saved gid changed after a revoke; ours must restore it) is
compared for ours against the entry values only, and threads are covered
elsewhere.
"""

from __future__ import annotations

import itertools

import pytest

from ..pamlib import C_MODULE, Users, assert_same_as_c, ids_lines, pamtester, py_module, stack

DELETE = "setcred(~PAM_SILENT & 4)"
REFRESH = "setcred(~PAM_SILENT & 16)"
REINIT = "setcred(~PAM_SILENT & 8)"

OPTIONS = ["", "force", "revoke", "force revoke", "debug revoke"]
SEQUENCES = {
    "open-close": ["open_session", "close_session"],
    "setcred-open-close": ["setcred", "open_session", "close_session"],
    "setcred-delete-open-close": ["setcred", DELETE, "open_session", "close_session"],
    "open-delete-close": ["open_session", DELETE, "close_session"],
    "refresh-reinit-open-close": [REFRESH, REINIT, "open_session", "close_session"],
    "open-open-close-close": ["open_session", "open_session", "close_session", "close_session"],
    "close-open-close": ["close_session", "open_session", "close_session"],
}
USERS = [Users.GID_USER, "root", "pykt-unknown-user"]
STARTS = ["none", "anon", "revoked"]

CASES = list(itertools.product(OPTIONS, SEQUENCES, USERS, STARTS))


@pytest.mark.parametrize(
    "args,sequence,user,start",
    CASES,
    ids=[f"{a.replace(' ', '+') or 'noargs'}-{s}-{u}-{st}" for a, s, u, st in CASES],
)
def test_same_as_pam_keyinit(tree, probe, service, users, args, sequence, user, start):
    ops = SEQUENCES[sequence]
    c_svc = service(stack(C_MODULE, args, probe, auth=True))
    py_svc = service(stack(py_module(tree), args, probe, auth=True))
    theirs = pamtester(c_svc, user, ops, start=start)
    ours = pamtester(py_svc, user, ops, start=start)

    assert_same_as_c(ours, theirs, py_svc, c_svc)
    # The improvement: every ID of the caller, saved ones included, as on entry.
    for line in ids_lines(ours):
        assert line.split(": ")[1] == "0 0 0 0", line
