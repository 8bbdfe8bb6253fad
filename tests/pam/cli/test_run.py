"""`pykeyinit run`: a keyring of the command's own that outlives the login's."""

from __future__ import annotations

import random
import subprocess

import pytest

from ...pamlib import Users, as_user, pykeyinit, system

UID, GID = Users.GID_UID, Users.GID_GID
USER = as_user(UID, GID)


def pykeyinit_as_user(tree, *cmd: str):
    """``cmd`` (a shell that runs python3 -m pam_pykeyinit) as the user,
    with the package of the test tree, which the user can read."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(tree.parents[1])}
    return subprocess.run([*USER, *cmd], capture_output=True, text=True, env=env)


@pytest.fixture
def user_key(users):
    """A key in the user's @u, removed afterwards."""
    name = f"pykt-run-{random.randrange(1 << 30)}"
    serial = system(*USER, "keyctl", "add", "user", name, "secret", "@u").strip()
    assert serial.isdigit(), serial
    yield name, serial
    system(*USER, "keyctl", "unlink", serial, "@u")


def test_keyring_outlives_the_revoked_login_keyring(tree, user_key):
    """The login's keyring (a session of the user's) is revoked while the
    command runs: the command's own keyring stays valid, _uid.N linked, and
    request_key still finds the key in @u."""
    name, serial = user_key
    inner = (
        "sleep 1; echo S=$(keyctl rdescribe @s); "
        "for k in $(keyctl rlist @s); do echo L=$(keyctl rdescribe $k); done; "
        f"echo R=$(keyctl request user {name} 2>&1)"
    )
    outer = (
        f"/usr/bin/python3 -m pam_pykeyinit run -- sh -c '{inner}' & "
        "sleep 0.3; keyctl revoke @s; echo OUTER=$(keyctl rdescribe @s 2>&1); wait"
    )
    proc = pykeyinit_as_user(tree, "keyctl", "session", "-", "sh", "-c", outer)
    out = proc.stdout.splitlines()
    assert "OUTER=keyctl_describe: Key has been revoked" in out, proc.stdout + proc.stderr
    assert f"S=keyring;{UID};{GID};3f030000;_ses" in out
    assert [x for x in out if x.startswith("L=")] == [f"L=keyring;{UID};65534;1f3f0000;_uid.{UID}"]
    assert f"R={serial}" in out


def test_persistent_links_the_persistent_keyring(tree, users):
    listing = "for k in $(keyctl rlist @s); do keyctl rdescribe $k; done"
    proc = pykeyinit("run", "--persistent", "--", "sh", "-c", listing, tree=tree, prefix=USER)
    assert proc.returncode == 0, proc.stderr
    names = [x.rsplit(";", 1)[-1] for x in proc.stdout.split()]
    assert names == [f"_uid.{UID}", f"_persistent.{UID}"]


@pytest.mark.parametrize("status", [0, 3, 77])
def test_the_exit_status_is_the_commands(prerequisites, status):
    assert pykeyinit("run", "--", "sh", "-c", f"exit {status}").returncode == status


def test_a_command_that_cannot_run(prerequisites, tmp_path):
    missing = pykeyinit("run", "--", "/nonexistent/command")
    assert missing.returncode == 127 and "command not found" in missing.stderr
    plain = tmp_path / "not-executable"
    plain.write_text("echo hi\n")
    plain.chmod(0o644)
    not_executable = pykeyinit("run", "--", str(plain))
    assert not_executable.returncode == 126 and "Permission denied" in not_executable.stderr
    nothing = pykeyinit("run")
    assert nothing.returncode == 125 and "no COMMAND given" in nothing.stderr
