"""user-keyring(7)'s statements about pam_keyinit, through pam_pykeyinit.

Each test quotes the claim of ../shared/reference/user-keyring.7.txt it
checks, and drives the module to check it. The page's statements about the
kernel alone are in test_user_keyring_facts.py.
"""

from __future__ import annotations

import random

from ...pamlib import Users, line, pamtester, py_module, run_as


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
    user_keyring = run_as(Users.GID_UID, "keyctl", "id", "@u", gid=Users.GID_GID)
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
    added = run_as(uid, "keyctl", "add", "user", name, "secret", "@u", gid=gid)
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
        alone = run_as(uid, "keyctl", "session", "-", "keyctl", "request", "user", name, gid=gid)
        assert "Required key not available" in alone, alone
    finally:
        run_as(uid, "keyctl", "unlink", added, "@u", gid=gid)
