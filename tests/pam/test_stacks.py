"""The module in real stacks: pamtester, pam_python, libpam, the kernel.

Every assertion is made from outside the module: the probe's keyctl output
and /proc/<pamtester>/status, pamtester's exit status, captured syslog.
"""

from __future__ import annotations

import pytest

from ..pamlib import C_MODULE, REVOKED, Users, line, pamtester, py_module, ses, stack

ENTRY_IDS = ["Uid: 0 0 0 0", "Gid: 0 0 0 0"]
USER_SES = ses(Users.GID_UID, Users.GID_GID)


def test_session_keyring_owned_by_user_with_user_keyring_linked(tree, probe, service, users):
    svc = service(stack(py_module(tree), "force revoke", probe))
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"])
    assert res.rc == 0, res.stderr
    uid, gid = Users.GID_UID, Users.GID_GID
    opened = res.probes[: res.probes.index("type=close_session")]
    closed = res.probes[res.probes.index("type=close_session") :]
    assert f"s={ses(uid, gid)}" in opened
    assert any(p.startswith(f"link=keyring;{uid};") and p.endswith(f";_uid.{uid}") for p in opened)
    assert opened[-2:] == ENTRY_IDS  # every uid and gid back: real, effective, saved, fs
    assert f"s={REVOKED}" in closed
    assert closed[-2:] == ENTRY_IDS


def test_without_revoke_the_keyring_survives_close(tree, probe, service, users):
    svc = service(stack(py_module(tree), "force", probe))
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"])
    assert res.rc == 0
    closed = res.probes[res.probes.index("type=close_session") :]
    assert f"s={USER_SES}" in closed


def test_root_target(tree, probe, service, users):
    svc = service(stack(py_module(tree), "force revoke", probe))
    res = pamtester(svc, "root", ["open_session"])
    assert res.rc == 0
    assert f"s={ses(0, 0)}" in res.probes


def test_unknown_user_logs_and_returns_user_unknown(tree, probe, service, users, tmp_path):
    svc = service(stack(py_module(tree), "", probe))
    res = pamtester(svc, "pykt-no-such-user", ["open_session"], capture_dir=tmp_path)
    assert res.rc != 0 and "User not known" in res.stderr
    notice = [e for e in res.logs if 'Unable to look up user "pykt-no-such-user"' in e["text"]]
    assert notice and notice[0]["facility"] == 10 and notice[0]["severity"] == 5
    assert f"pam_pykeyinit({svc}:session):" in notice[0]["text"]


def test_non_force_keeps_an_own_session_keyring(tree, probe, service, users):
    svc = service(stack(py_module(tree), "revoke", probe))
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"], start="anon")
    assert res.rc == 0
    assert res.probes.count(f"s={ses(0, 0)}") == 2  # root's own, not revoked


def test_non_force_creates_one_when_the_caller_has_none(tree, probe, service, users):
    svc = service(stack(py_module(tree), "", probe))
    res = pamtester(svc, Users.GID_USER, ["open_session"])
    assert f"s={USER_SES}" in res.probes


def test_revoked_inherited_keyring_fails_without_force_with_an_errno_line(
    tree, probe, service, users, tmp_path
):
    svc = service(stack(py_module(tree), "", probe))
    res = pamtester(svc, Users.GID_USER, ["open_session"], start="revoked", capture_dir=tmp_path)
    assert res.rc != 0 and "Cannot make/remove an entry for the specified session" in res.stderr
    errors = [e for e in res.logs if e["severity"] == 3]
    assert errors, res.logs
    assert "KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING" in errors[0]["text"]
    assert "EKEYREVOKED (Key has been revoked)" in errors[0]["text"]
    assert "'force'" in errors[0]["text"]


def test_setcred_establish_and_delete(tree, probe, service, users):
    svc = service(
        [
            line("auth", "required", py_module(tree), "revoke"),
            line("session", "required", py_module(tree)),
            probe,
        ]
    )
    res = pamtester(
        svc,
        Users.GID_USER,
        ["setcred", "open_session", "setcred(~PAM_SILENT & 4)", "close_session"],
    )
    assert res.rc == 0, res.stderr
    # open_session reused setcred's keyring; DELETE revoked it (sticky revoke)
    assert f"s={USER_SES}" in res.probes
    assert f"s={REVOKED}" in res.probes


def test_acct_mgmt_and_chauthtok_answer_like_a_module_without_them(tree, service, users):
    py = service([line(t, "required", py_module(tree)) for t in ("account", "password")])
    c = service([line(t, "required", C_MODULE) for t in ("account", "password")])
    for op in ("acct_mgmt", "chauthtok"):
        ours, theirs = (pamtester(s, Users.GID_USER, [op]) for s in (py, c))
        assert "Module is unknown" in theirs.stderr
        assert (ours.rc, ours.stderr.replace(py, c)) == (theirs.rc, theirs.stderr)


def test_unprivileged_caller_for_another_user(tree, probe, service, users, tmp_path):
    svc = service(stack(py_module(tree), "force", probe))
    res = pamtester(
        svc,
        Users.GID_USER,
        ["open_session"],
        caller=(Users.PEER_UID, Users.PEER_UID),
        capture_dir=tmp_path,
    )
    assert res.rc != 0
    text = res.log_text()
    assert "EPERM (Operation not permitted)" in text and "CAP_SET" in text, text
    peer = str(Users.PEER_UID)
    assert res.probes[-2:] == [
        f"Uid: {peer} {peer} {peer} {peer}",
        f"Gid: {peer} {peer} {peer} {peer}",
    ]


def test_unprivileged_caller_for_itself(tree, probe, service, users):
    svc = service(stack(py_module(tree), "force revoke", probe))
    peer = Users.PEER_UID
    res = pamtester(svc, Users.PEER, ["open_session", "close_session"], caller=(peer, peer))
    assert res.rc == 0, res.stderr
    assert f"s={ses(peer, peer)}" in res.probes
    assert f"s={REVOKED}" in res.probes


def test_unknown_option_is_logged_once_and_ignored(tree, probe, service, users, tmp_path):
    svc = service(
        [
            line("session", "required", py_module(tree), "Revoke force"),
            line("session", "required", py_module(tree), "Revoke"),
            probe,
        ]
    )
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"], capture_dir=tmp_path)
    assert res.rc == 0
    assert sum('unknown option "Revoke"' in e["text"] for e in res.logs) == 1
    assert f"s={REVOKED}" not in res.probes


def test_debug_adds_lines_and_host_log_identity_is_untouched(tree, probe, service, users, tmp_path):
    svc = service(
        [
            line("session", "required", py_module(tree), "force debug"),
            line("session", "optional", C_MODULE, "debug"),
            probe,
        ]
    )
    res = pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path)
    assert res.rc == 0
    ours = [e for e in res.logs if "pam_pykeyinit(" in e["text"]]
    c_lines = [e for e in res.logs if "pam_keyinit(" in e["text"]]
    assert len(ours) >= 3 and all(e["severity"] == 7 and e["facility"] == 10 for e in ours)
    # The C module's line after ours looks as it does without ours: the
    # same identity and facility (nothing called openlog() behind its back).
    alone = service([line("session", "optional", C_MODULE, "debug"), probe])
    plain = pamtester(alone, Users.GID_USER, ["open_session"], capture_dir=tmp_path)
    c_plain = [e for e in plain.logs if "pam_keyinit(" in e["text"]]

    def shape(entries: list[dict], svc: str) -> set[tuple[int, int, str]]:
        # facility, severity and "ident: module(service:type):" (the rest
        # of each line depends on what ran before)
        return {
            (e["facility"], e["severity"], ": ".join(e["text"][16:].split(": ")[:2]))
            for e in entries
        }

    assert c_lines and c_plain
    assert shape(c_lines, svc) == {
        (f, sev, text.replace(alone, svc)) for f, sev, text in shape(c_plain, alone)
    }
    assert all(" pamtester: " in e["text"] for e in c_lines), c_lines


@pytest.mark.parametrize("args", ["", "force", "force revoke"])
def test_two_lines_share_one_keyring(tree, probe, service, users, args):
    """The second line finds the keyring the first one made for the thread
    and keeps it: both probes see the same serial, the user's _ses."""
    module = py_module(tree)
    svc = service([line("session", "required", module, args), probe] * 2)
    res = pamtester(svc, Users.GID_USER, ["open_session"])
    assert res.rc == 0, res.stderr
    seen = [p for p in res.probes if p.startswith(("s=", "sid="))]
    first, second = seen[:2], seen[2:]
    assert first == [f"s={USER_SES}", first[1]] and first[1][len("sid=") :].isdigit(), seen
    assert second == first  # the same keyring, serial unchanged
