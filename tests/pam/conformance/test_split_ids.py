"""Callers whose real and effective IDs differ, as set-user-ID and
set-group-ID programs are: the IDs each module holds at the moment it calls
keyctl, against pam_keyinit.so's.

pam_keyinit.c makes the session keyring with the user's REAL uid and gid
(init_keyrings: setregid(gid, -1) when the real gid differs, then
setreuid) and revokes it with the user's EFFECTIVE ones (kill_keyrings:
setregid(-1, gid) when the effective gid differs, then setresuid(-1, uid,
old)): each ID is compared with the caller's ID of the slot it moves.
Where a caller's real and effective IDs are the same (root, or a user for
itself; test_matrix.py, test_handles_threads.py) comparing with the wrong
slot changes nothing; here it does: a caller with the user's real gid and
effective gid 0 must still revoke with effective gid the user's.

Seen from outside both modules by tests/harness/idwatch.c (every keyctl
call and the thread's real, effective, saved and fs IDs at that moment),
with pamharness as the caller (its 'show': the IDs after each call).
"""

from __future__ import annotations

import re

import pytest

from ...pamlib import (
    C_MODULE,
    Users,
    comparable,
    harness,
    line,
    py_module,
)

KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_REVOKE = 1, 3  # linux/keyctl.h
WATCHED = re.compile(r"^idwatch keyctl (\d+) (uid=\S+ gid=\S+)$")
U, G, PEER = Users.GID_UID, Users.GID_GID, Users.PEER_UID
# pamharness's setids words (uids, then gids: real, effective, saved; -1
# unchanged): only the IDs named move, the effective ones stay root's
CALLERS = {
    # a set-group-ID program run by the user: real gid the user's
    "rgid-users": f"setids -1,-1,-1 {G},-1,-1",
    # a set-user-ID program (su) run by the user for itself
    "ruid-users": f"setids {U},-1,-1 -1,-1,-1",
    # su run by another user: real uid and gid the peer's
    "peer-su": f"setids {PEER},-1,-1 {PEER},-1,-1",
}
# each caller's real uid and gid; every other ID is 0
ENTRY = {"rgid-users": (0, G), "ruid-users": (U, 0), "peer-su": (PEER, PEER)}


def keyctl_ids(stderr: str) -> list[tuple[int, str]]:
    """(op, 'uid=... gid=...') of each keyctl call that makes or revokes a
    session keyring; other keyctl calls (reads) differ between the modules."""
    calls = [WATCHED.match(x) for x in stderr.splitlines()]
    ops = (KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_REVOKE)
    return [(int(m.group(1)), m.group(2)) for m in calls if m and int(m.group(1)) in ops]


@pytest.mark.parametrize("caller", CALLERS)
def test_revoke_and_keyinit_switch_the_slot_they_move(tools, tree, service, users, caller):
    results = []
    for module in (C_MODULE, py_module(tree)):
        svc = service([line("session", "required", module, "revoke")])
        words = (
            f"{CALLERS[caller]} show start 0 {svc} {Users.GID_USER} open 0 show close 0 show end 0"
        )
        res = harness(tools, words.split(), env={"LD_PRELOAD": str(tools.idwatch)})
        assert res.rc == 0, res.stderr
        results.append(res)
    theirs, ours = results
    print(
        "\n".join(
            [
                "pam_keyinit.so:",
                *theirs.lines,
                theirs.stderr,
                "pam_pykeyinit:",
                *ours.lines,
                ours.stderr,
            ]
        )
    )
    ruid, rgid = ENTRY[caller]
    entry = f"show uid={ruid},0,0,0 gid={rgid},0,0,0"
    assert [s for s in ours.shows() if s.startswith("show uid=")] == [entry] * 3
    assert theirs.calls() == ours.calls()
    assert all(c.split(" -> ")[1].split()[0] == "0" for c in ours.calls()), ours.calls()
    # the oracle: pam_keyinit.so's IDs at its join and at its revoke
    made, revoked = keyctl_ids(theirs.stderr)
    assert (made[0], revoked[0]) == (KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_REVOKE)
    # but for the saved IDs, the one deliberate difference (test_matrix.py):
    # ours parks the displaced ID there, pam_keyinit.so's setre[ug]id() the new one
    ids = [ids for _, ids in keyctl_ids(ours.stderr)]
    assert [op for op, _ in keyctl_ids(ours.stderr)] == [made[0], revoked[0]]
    assert comparable(ids) == comparable([made[1], revoked[1]])
    # and what pam_keyinit.c says it does: the user's real IDs to make the
    # keyring, the user's effective (and so fs) IDs to revoke it
    assert re.fullmatch(rf"uid={U},\d+,\d+,\d+ gid={G},\d+,\d+,\d+", made[1]), made
    assert re.fullmatch(rf"uid=\d+,{U},\d+,{U} gid=\d+,{G},\d+,{G}", revoked[1]), revoked
