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

from ...pamlib import Users, assert_same_as_c, ids_lines, pamtester

STACKS = {
    "one-line": ["session required MOD ARGS"],
    "two-lines": ["session required MOD ARGS", "session optional MOD force debug"],
    "auth-session": ["auth required MOD ARGS", "session required MOD"],
    "all-types": [
        "auth optional MOD ARGS",
        "account required MOD ARGS",
        "password optional MOD ARGS",
        "session required MOD ARGS",
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


def stack(name: str, module: str, args: str, probe: str) -> list[str]:
    lines = [line.replace("MOD", module).replace("ARGS", args).rstrip() for line in STACKS[name]]
    return [*lines, probe]


@pytest.mark.parametrize(
    "stack_name,args,sequence,caller,kernel",
    CASES,
    ids=["-".join([c[0], c[1].replace(" ", "+") or "noargs", *c[2:]]) for c in CASES],
)
def test_same_as_pam_keyinit(
    tools, tree, probe, service, users, stack_name, args, sequence, caller, kernel
):
    c_svc = service(stack(stack_name, "pam_keyinit.so", args, probe))
    py_svc = service(stack(stack_name, f"pam_python.so {tree}", args, probe))
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
    # (pamtester stops at the first failing call, so a sequence may show none)
    uids = [line for line in ids_lines(ours) if line.startswith("Uid")]
    assert all(line == f"Uid: {entry}" for line in uids), uids
