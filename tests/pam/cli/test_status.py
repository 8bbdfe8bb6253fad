"""`pykeyinit status` against real keyrings, checked with keyctl(1)."""

from __future__ import annotations

import errno
import json
import subprocess

from ...pamlib import (
    Users,
    as_user,
    line,
    pamtester,
    py_module,
    pykeyinit,
    ses,
    user_session,
)

UID, GID = Users.GID_UID, Users.GID_GID
SESSION = ["keyctl", "session", "-"]


def status(prefix: list[str] | None = None, tree=None) -> tuple[int, dict]:
    proc = pykeyinit("status", "--json", prefix=prefix, tree=tree)
    return proc.returncode, json.loads(proc.stdout)


def keyctl_id(spec: str, prefix: list[str]) -> int:
    out = subprocess.run([*prefix, "keyctl", "id", spec], capture_output=True, text=True)
    return int(out.stdout)


def test_own_keyring_without_the_user_keyring_is_a_problem(prerequisites):
    rc, got = status(SESSION)
    assert rc == 1
    ring = got["session_keyring"]
    assert (ring["description"], ring["uid"], ring["gid"], ring["state"]) == ("_ses", 0, 0, "valid")
    assert ring["perm"] == "3f030000"
    assert got["own_session_keyring"] is True and got["user_keyring_linked"] is False
    assert len(got["problems"]) == 1 and "keyctl link @u @s" in got["problems"][0]["advice"]


def test_own_keyring_with_the_user_keyring_is_fine(prerequisites):
    rc, got = status([*SESSION, "sh", "-c", 'keyctl link @u @s >/dev/null && exec "$@"', "sh"])
    assert rc == 0, got
    assert got["user_keyring_linked"] is True and got["problems"] == []
    assert got["keyctl"] == {
        "works": True,
        "errno": None,
        "seccomp": "0",
        "seccomp_mode": "disabled",
    }
    quota = got["quota"]
    assert quota["uid"] == 0 and quota["keys"] >= 2 and quota["maxkeys"] > quota["keys"]


def test_text_form_names_the_same_facts(prerequisites):
    proc = pykeyinit("status", prefix=SESSION)
    assert proc.returncode == 1
    assert "own keyring      yes" in proc.stdout and "not reachable" in proc.stdout
    assert "problem: the user keyring _uid.0 is not reachable" in proc.stdout


def test_revoked_keyring(prerequisites):
    rc, got = status([*SESSION, "sh", "-c", 'keyctl revoke @s && exec "$@"', "sh"])
    assert rc == 1
    assert got["session_keyring"]["state"] == "revoked" and got["keyctl"]["works"] is True
    assert "pykeyinit run --" in got["problems"][0]["advice"]


def test_user_session_fallback(tree, users):
    """A process of the user's with no session keyring of its own."""
    rc, got = status([*user_session(str(UID)), *as_user(UID, GID)], tree)
    assert rc == 1
    assert got["own_session_keyring"] is False
    assert got["session_keyring"]["description"] == f"_uid_ses.{UID}"
    assert got["session_keyring"]["serial"] == keyctl_id("@us", as_user(UID, GID))
    assert "pykeyinit check SERVICE" in got["problems"][0]["advice"]


def test_keyctl_refused_by_seccomp(tools):
    rc, got = status([str(tools.seccomp_fail), str(errno.EPERM), "all"])
    assert rc == 1
    assert got["session_keyring"]["state"] == "unavailable"
    assert got["keyctl"] == {
        "works": False,
        "errno": "EPERM",
        "seccomp": "2",
        "seccomp_mode": "filter",
    }
    assert "seccomp" in got["problems"][0]["advice"]


def test_inside_a_session_the_module_opened(tree, service, users, tmp_path):
    """pam_exec runs status as the user inside the session: the user's own
    _ses, _uid.N reachable, the persistent keyring linked."""
    lib = tree.parents[1]
    out = tmp_path / "status.json"
    script = tmp_path / "status.sh"
    cmd = " ".join([*as_user(UID, GID), "env", f"PYTHONPATH={lib}", "/usr/bin/python3"])
    script.write_text(f"#!/bin/sh\n{cmd} -m pam_pykeyinit status --json > {out}\n")
    script.chmod(0o755)  # (the output is written by pam_exec's root shell)
    svc = service(
        [
            line("session", "required", py_module(tree), "force persistent"),
            line("session", "optional", "pam_exec.so", f"quiet {script}"),
        ]
    )
    res = pamtester(svc, Users.GID_USER, ["open_session"])
    assert res.rc == 0, res.stderr
    got = json.loads(out.read_text())
    ring = got["session_keyring"]
    assert f"keyring;{ring['uid']};{ring['gid']};{ring['perm']};{ring['description']}" == ses(
        UID, GID
    )
    assert got["own_session_keyring"] and got["user_keyring_linked"]
    assert got["persistent_keyring_linked"] is True and got["problems"] == []
