"""The module in real stacks: pamtester, pam_python, libpam, the kernel.

Every assertion is made from outside the module: the probe's keyctl output
and /proc/<pamtester>/status, pamtester's exit status, captured syslog.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from ..conftest import require
from ..pamlib import Users, install_tree, pamtester

ENTRY_IDS = ["Uid: 0 0 0 0", "Gid: 0 0 0 0"]


def stack(tree, probe, args=""):
    return [f"session required pam_python.so {tree} {args}".rstrip(), probe]


def test_session_keyring_owned_by_user_with_user_keyring_linked(tree, probe, service, users):
    svc = service(stack(tree, probe, "force revoke"))
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"])
    assert res.rc == 0, res.stderr
    uid, gid = Users.GID_UID, Users.GID_GID
    opened = res.probes[: res.probes.index("type=close_session")]
    closed = res.probes[res.probes.index("type=close_session") :]
    assert f"s=keyring;{uid};{gid};3f030000;_ses" in opened
    assert any(p.startswith(f"link=keyring;{uid};") and p.endswith(f";_uid.{uid}") for p in opened)
    assert opened[-2:] == ENTRY_IDS  # every uid and gid back: real, effective, saved, fs
    assert "s=keyctl_describe: Key has been revoked" in closed
    assert closed[-2:] == ENTRY_IDS


def test_without_revoke_the_keyring_survives_close(tree, probe, service, users):
    svc = service(stack(tree, probe, "force"))
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"])
    assert res.rc == 0
    closed = res.probes[res.probes.index("type=close_session") :]
    assert f"s=keyring;{Users.GID_UID};{Users.GID_GID};3f030000;_ses" in closed


def test_root_target(tree, probe, service, users):
    svc = service(stack(tree, probe, "force revoke"))
    res = pamtester(svc, "root", ["open_session"])
    assert res.rc == 0
    assert "s=keyring;0;0;3f030000;_ses" in res.probes


def test_unknown_user_logs_and_returns_user_unknown(tree, probe, service, users, tmp_path):
    svc = service(stack(tree, probe))
    res = pamtester(svc, "pykt-no-such-user", ["open_session"], capture_dir=tmp_path)
    assert res.rc != 0 and "User not known" in res.stderr
    notice = [e for e in res.logs if 'Unable to look up user "pykt-no-such-user"' in e["text"]]
    assert notice and notice[0]["facility"] == 10 and notice[0]["severity"] == 5
    assert f"pam_pykeyinit({svc}:session):" in notice[0]["text"]


def test_non_force_keeps_an_own_session_keyring(tree, probe, service, users):
    svc = service(stack(tree, probe, "revoke"))
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"], start="anon")
    assert res.rc == 0
    assert res.probes.count("s=keyring;0;0;3f030000;_ses") == 2  # root's own, not revoked


def test_non_force_creates_one_when_the_caller_has_none(
    tree, probe, service, users, runner_session_keyring
):
    require(
        runner_session_keyring == "_uid_ses.0",
        f"the test runner has a session keyring of its own ({runner_session_keyring})",
    )
    svc = service(stack(tree, probe))
    res = pamtester(svc, Users.GID_USER, ["open_session"])
    assert f"s=keyring;{Users.GID_UID};{Users.GID_GID};3f030000;_ses" in res.probes


def test_revoked_inherited_keyring_fails_without_force_with_an_errno_line(
    tree, probe, service, users, tmp_path
):
    svc = service(stack(tree, probe))
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
            f"auth required pam_python.so {tree} revoke",
            f"session required pam_python.so {tree}",
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
    assert f"s=keyring;{Users.GID_UID};{Users.GID_GID};3f030000;_ses" in res.probes
    assert "s=keyctl_describe: Key has been revoked" in res.probes


def test_acct_mgmt_and_chauthtok_answer_like_a_module_without_them(tree, service, users):
    py = service(
        [f"account required pam_python.so {tree}", f"password required pam_python.so {tree}"]
    )
    c = service(["account required pam_keyinit.so", "password required pam_keyinit.so"])
    for op in ("acct_mgmt", "chauthtok"):
        ours, theirs = (pamtester(s, Users.GID_USER, [op]) for s in (py, c))
        assert "Module is unknown" in theirs.stderr
        assert (ours.rc, ours.stderr.replace(py, c)) == (theirs.rc, theirs.stderr)


def test_unprivileged_caller_for_another_user(tree, probe, service, users, tmp_path):
    svc = service(stack(tree, probe, "force"))
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
    svc = service(stack(tree, probe, "force revoke"))
    peer = Users.PEER_UID
    res = pamtester(svc, Users.PEER, ["open_session", "close_session"], caller=(peer, peer))
    assert res.rc == 0, res.stderr
    assert f"s=keyring;{peer};{peer};3f030000;_ses" in res.probes
    assert "s=keyctl_describe: Key has been revoked" in res.probes


def test_unknown_option_is_logged_once_and_ignored(tree, probe, service, users, tmp_path):
    svc = service(
        [
            f"session required pam_python.so {tree} Revoke force",
            f"session required pam_python.so {tree} Revoke",
            probe,
        ]
    )
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"], capture_dir=tmp_path)
    assert res.rc == 0
    assert sum('unknown option "Revoke"' in e["text"] for e in res.logs) == 1
    assert "s=keyctl_describe: Key has been revoked" not in res.probes


def test_debug_adds_lines_and_host_log_identity_is_untouched(tree, probe, service, users, tmp_path):
    svc = service(
        [
            f"session required pam_python.so {tree} force debug",
            "session optional pam_keyinit.so debug",
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
    alone = service(["session optional pam_keyinit.so debug", probe])
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


@pytest.mark.parametrize("args", ["", "force revoke"])
def test_two_lines_share_one_keyring(tree, probe, service, users, args):
    svc = service(
        [
            f"session required pam_python.so {tree} {args}",
            f"session required pam_python.so {tree} {args}",
            probe,
        ]
    )
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"])
    assert res.rc == 0
    sids = [p for p in res.probes if p.startswith("sid=")]
    assert len(set(sids)) <= 2  # the open one and (if revoked) nothing at close


# -- the loader in real logins ----------------------------------------------


def refused(res) -> str:
    assert res.rc != 0 and "Error in service module" in res.stderr, res.stderr
    lines = [e for e in res.logs if "refusing to load" in e["text"]]
    assert lines and lines[0]["facility"] == 10 and lines[0]["severity"] == 3, res.logs
    return lines[0]["text"]


@pytest.mark.parametrize("what", ["folder", "sticky", "file", "pycache", "owner"])
def test_replaceable_package_is_refused(tmp_path, probe, service, users, what):
    top = Path(tempfile.mkdtemp(prefix="pykt-unsafe-"))
    try:
        module = install_tree(top)
        target = {
            "folder": module.parent,
            "sticky": module.parent,
            "file": module.parent / "keyinit.py",
            "pycache": module.parent / "__pycache__",
            "owner": module.parent / "entry.py",
        }[what]
        if what == "owner":
            os.chown(target, Users.PEER_UID, -1)
        elif what == "sticky":
            os.chmod(target, 0o1777)
        else:
            os.chmod(target, 0o777 if target.is_dir() else 0o666)
        svc = service([f"session required pam_python.so {module} force", probe])
        text = refused(pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path))
        assert str(target) in text
    finally:
        shutil.rmtree(top)


def test_installed_as_a_symlink(tmp_path, tree, probe, service, users):
    top = Path(tempfile.mkdtemp(prefix="pykt-link-"))
    try:
        security = top / "security"
        security.mkdir()
        os.chmod(top, 0o755)
        (security / "pam_pykeyinit.py").symlink_to(tree)
        svc = service(
            [f"session required pam_python.so {security / 'pam_pykeyinit.py'} force", probe]
        )
        res = pamtester(svc, Users.GID_USER, ["open_session"])
        assert res.rc == 0, res.stderr
        assert f"s=keyring;{Users.GID_UID};{Users.GID_GID};3f030000;_ses" in res.probes
        os.chmod(security, 0o777)  # anyone could now point the symlink elsewhere
        text = refused(pamtester(svc, Users.GID_USER, ["open_session"], capture_dir=tmp_path))
        assert f"{security} is writable by group or others" in text
    finally:
        shutil.rmtree(top)


def test_hostile_environment_is_never_imported(tmp_path, tree, probe, service, users):
    """PYTHONPATH, PYTHONHOME, HOME and the working directory full of
    modules named like the ones the module imports: none may run."""
    marker = tmp_path / "imported"
    plant = tmp_path / "plant"
    for name in (
        "pam_pykeyinit/__init__",
        "pam_pykeyinit/entry",
        "_ctypes",
        "ctypes/__init__",
        "pwd",
        "sitecustomize",
        "usercustomize",
        "errno",
        "_thread",
        "os",
    ):
        f = plant / f"{name}.py"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(f"open({str(marker)!r}, 'a').write({name!r} + '\\n')\n")
    svc = service([f"session required pam_python.so {tree} force revoke", probe])
    env = {
        **os.environ,
        "PYTHONPATH": str(plant),
        "PYTHONHOME": str(plant),
        "HOME": str(plant),
        "PYTHONSTARTUP": str(plant / "pwd.py"),
    }
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"], cwd=plant, env=env)
    assert res.rc == 0, res.stderr
    assert f"s=keyring;{Users.GID_UID};{Users.GID_GID};3f030000;_ses" in res.probes
    assert not marker.exists(), marker.read_text()
