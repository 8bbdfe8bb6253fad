"""A second differential matrix against pam_keyinit.so: stacks, option
words (unknown and mis-cased ones included), callers, and kernels whose
keyctl fails as in containers or without key support.

Generated: 4 stacks x 5 option sets x 2 call sequences x 3 callers x 4
kernels = 480 cases, each its own test (select one with -k). Compared as in
tests/pam/test_differential.py; the caller's IDs after every session call
must be exactly its entry IDs.
"""

from __future__ import annotations

import errno
import itertools

import pytest

from ...pamlib import C_MODULE, Users, assert_same_as_c, ids_lines, line, pamtester, py_module

# (type, control, words): ARGS stands for the case's option words
STACKS = {
    "one-line": [("session", "required", "ARGS")],
    "two-lines": [("session", "required", "ARGS"), ("session", "optional", "force debug")],
    "auth-session": [("auth", "required", "ARGS"), ("session", "required", "")],
    "all-types": [
        ("auth", "optional", "ARGS"),
        ("account", "required", "ARGS"),
        ("password", "optional", "ARGS"),
        ("session", "required", "ARGS"),
    ],
}
OPTIONS = ["", "force revoke", "Revoke FORCE bogus", "revoke=yes force", "debug revoke"]
SEQUENCES = {
    "open-close": ["open_session", "close_session"],
    "everything": [
        "setcred",
        "acct_mgmt",
        "chauthtok",
        "open_session",
        "close_session",
        "setcred(~PAM_SILENT & 4)",
    ],
}
CALLERS = {
    "root": None,
    "self": (Users.GID_UID, Users.GID_GID),
    "peer": (Users.PEER_UID, Users.PEER_UID),
}
KERNELS = {"keys": None, "ENOSYS": errno.ENOSYS, "EPERM": errno.EPERM, "EACCES": errno.EACCES}
CASES = list(itertools.product(STACKS, OPTIONS, SEQUENCES, CALLERS, KERNELS))


def matrix_stack(name: str, module: str, args: str, probe: str) -> list[str]:
    lines = [line(t, c, module, words.replace("ARGS", args)) for t, c, words in STACKS[name]]
    return [*lines, probe]


@pytest.mark.parametrize(
    "stack_name,args,sequence,caller,kernel",
    CASES,
    ids=["-".join([c[0], c[1].replace(" ", "+") or "noargs", *c[2:]]) for c in CASES],
)
def test_same_as_pam_keyinit(
    tools, tree, probe, service, users, stack_name, args, sequence, caller, kernel
):
    c_svc = service(matrix_stack(stack_name, C_MODULE, args, probe))
    py_svc = service(matrix_stack(stack_name, py_module(tree), args, probe))
    err = KERNELS[kernel]
    prefix = [str(tools.seccomp_fail), str(err), "all"] if err else None
    ops = SEQUENCES[sequence]
    runs = [
        pamtester(svc, Users.GID_USER, ops, caller=CALLERS[caller], prefix=prefix)
        for svc in (c_svc, py_svc)
    ]
    theirs, ours = runs
    assert_same_as_c(ours, theirs, py_svc, c_svc)
    entry = "0 0 0 0" if caller == "root" else " ".join([str(CALLERS[caller][0])] * 4)
    # One probe run per session call that pamtester reached: it stops at
    # the first failing call, so a failed sequence may show none, a
    # successful one shows both (open_session and close_session).
    probe_runs = [p for p in ours.probes if p.startswith("type=")]
    uids = [p for p in ids_lines(ours) if p.startswith("Uid")]
    assert len(uids) == len(probe_runs) and (ours.rc != 0 or len(probe_runs) == 2), ours.probes
    assert uids.count(f"Uid: {entry}") == len(uids), uids
