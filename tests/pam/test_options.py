"""pam_pykeyinit's own option words in real logins: force=auto, persistent,
unavailable=ignore (README.md, "Options"). pamtester drives each stack; the
probe's keyctl output, pamtester's status and the captured syslog lines are
the evidence. pam_keyinit.so ignores these words, so there is no oracle to
compare with: each test states the expected keyrings itself."""

from __future__ import annotations

import errno
import random

import pytest

from ..pamlib import (
    REVOKED,
    SESSION_ERR_TEXT,
    Users,
    as_user,
    line,
    pamtester,
    py_module,
    ses,
    stack,
    system,
)

UID, GID = Users.GID_UID, Users.GID_GID
USER_SES = ses(UID, GID)
OPEN_CLOSE = ["open_session", "close_session"]


def opened(res) -> list[str]:
    return res.probes[: res.probes.index("type=close_session")]


def closed(res) -> list[str]:
    return res.probes[res.probes.index("type=close_session") :]


def links(probes: list[str]) -> list[str]:
    return [p[len("link=") :] for p in probes if p.startswith("link=")]


def notices(res) -> list[str]:
    return [e["text"] for e in res.logs if e["severity"] == 5 and "pam_pykeyinit(" in e["text"]]


# -- force=auto ----------------------------------------------------------------


@pytest.mark.parametrize("start", ["none", "anon", "revoked", "expired"])
def test_force_auto_replaces_a_keyring_that_is_not_the_users(tree, probe, service, users, start):
    """The user-session fallback, root's own keyring (as crond's), a revoked
    and an expired one: each replaced by a new _ses of the user's, with
    _uid.N linked, revoked at close."""
    svc = service(stack(py_module(tree), "force=auto revoke", probe))
    res = pamtester(svc, Users.GID_USER, OPEN_CLOSE, start=start)
    assert res.rc == 0, res.stderr
    assert f"s={USER_SES}" in opened(res)
    assert [x for x in links(opened(res)) if x.endswith(f";_uid.{UID}")], res.probes
    assert f"s={REVOKED}" in closed(res)


def test_force_auto_keeps_the_users_own_keyring(tree, probe, service, users):
    """The same serial before, during and after, never revoked, nothing
    linked into it."""
    svc = service(stack(py_module(tree), "force=auto revoke persistent", probe))
    res = pamtester(svc, Users.GID_USER, OPEN_CLOSE, start="users-own")
    assert res.rc == 0, res.stderr
    before = next(x for x in res.stdout.splitlines() if x.startswith("before="))[len("before=") :]
    assert before.isdigit()
    assert res.probes.count(f"sid={before}") == 2  # at open and at close
    assert res.probes.count(f"s={USER_SES}") == 2  # not revoked at close
    assert links(res.probes) == []


def test_force_auto_through_setcred(tree, probe, service, users):
    svc = service([line("auth", "required", py_module(tree), "force=auto"), probe])
    res = pamtester(svc, Users.GID_USER, ["setcred", "open_session"], start="anon")
    assert res.rc == 0, res.stderr
    assert f"s={USER_SES}" in res.probes


# -- persistent ------------------------------------------------------------------


def user_script(script: str) -> str:
    """``script`` run by the user, in a session keyring of its own."""
    return system(*as_user(UID, GID), "keyctl", "session", "-", "sh", "-c", script).strip()


@pytest.fixture
def parked_key(users):
    """A user key the user parked in its persistent keyring beforehand (as
    user-keyring(7) advises for cron jobs); unlinked afterwards."""
    name = f"pykt-parked-{random.randrange(1 << 30)}"
    serial = user_script(f"keyctl add user {name} secret $(keyctl get_persistent @s)")
    assert serial.isdigit(), serial
    yield name, serial
    user_script(f"keyctl unlink {serial} $(keyctl get_persistent @s)")


def request_probe(tmp_path, name: str) -> str:
    script = tmp_path / "request.sh"
    script.write_text(f"#!/bin/sh\necho probe: request=$(keyctl request user {name} 2>&1)\n")
    script.chmod(0o755)
    tmp_path.chmod(0o755)
    return line("session", "optional", "pam_exec.so", f"stdout quiet {script}")


def test_persistent_keyring_is_linked_and_its_keys_found(
    tree, probe, service, users, parked_key, tmp_path
):
    name, serial = parked_key
    with_it = service(
        [*stack(py_module(tree), "force persistent", probe), request_probe(tmp_path, name)]
    )
    without = service([*stack(py_module(tree), "force", probe), request_probe(tmp_path, name)])
    res = pamtester(with_it, Users.GID_USER, ["open_session"])
    assert res.rc == 0, res.stderr
    persistent = [x for x in links(res.probes) if x.endswith(f";_persistent.{UID}")]
    assert persistent and persistent[0].startswith(f"keyring;{UID};"), res.probes  # the user's
    assert f"request={serial}" in res.probes
    res = pamtester(without, Users.GID_USER, ["open_session"])
    assert res.rc == 0, res.stderr
    assert not [x for x in links(res.probes) if "_persistent." in x]
    assert "request=request_key: Required key not available" in res.probes


def test_persistent_leaves_a_kept_keyring_untouched(tree, probe, service, users):
    svc = service(stack(py_module(tree), "persistent", probe))
    res = pamtester(svc, Users.GID_USER, ["open_session"], start="anon")
    assert res.rc == 0, res.stderr
    assert f"s={ses(0, 0)}" in res.probes and links(res.probes) == []


@pytest.mark.parametrize("err", [errno.EOPNOTSUPP, errno.EPERM, errno.EACCES])
def test_persistent_refused_is_a_warning_and_the_login_goes_on(
    tools, tree, probe, service, users, tmp_path, err
):
    """Only KEYCTL_GET_PERSISTENT (22) fails, under a seccomp filter."""
    svc = service(stack(py_module(tree), "force persistent revoke", probe))
    prefix = [str(tools.seccomp_fail), str(err), "22"]
    res = pamtester(svc, Users.GID_USER, OPEN_CLOSE, prefix=prefix, capture_dir=tmp_path)
    assert res.rc == 0, res.stderr
    assert f"s={USER_SES}" in opened(res) and f"s={REVOKED}" in closed(res)
    warnings = [e["text"] for e in res.logs if e["severity"] == 4]
    assert len(warnings) == 1, res.logs
    assert "KEYCTL_GET_PERSISTENT" in warnings[0] and errno.errorcode[err] in warnings[0]
    assert not [e for e in res.logs if e["severity"] <= 3]


# -- unavailable=ignore ----------------------------------------------------------


@pytest.mark.parametrize("err", [errno.ENOSYS, errno.EPERM, errno.EACCES])
@pytest.mark.parametrize("args", ["unavailable=ignore", "force revoke unavailable=ignore"])
def test_unavailable_ignore_opens_a_session_without_keyring(
    tools, tree, probe, service, users, tmp_path, err, args
):
    svc = service(stack(py_module(tree), args, probe))
    prefix = [str(tools.seccomp_fail), str(err), "all"]
    res = pamtester(svc, Users.GID_USER, OPEN_CLOSE, prefix=prefix, capture_dir=tmp_path)
    assert res.rc == 0, res.stderr
    found = notices(res)
    assert len(found) == 1, res.logs
    assert f"keyrings are unavailable to this process: {errno.errorcode[err]}" in found[0]
    assert found[0].endswith("the session has no keyring of its own")
    assert not [e for e in res.logs if e["severity"] <= 4]


@pytest.mark.parametrize("err", [errno.ENOMEM, errno.EDQUOT])
def test_unavailable_ignore_leaves_other_errnos_failing(
    tools, tree, probe, service, users, tmp_path, err
):
    svc = service(stack(py_module(tree), "force unavailable=ignore", probe))
    prefix = [str(tools.seccomp_fail), str(err), "all"]
    res = pamtester(svc, Users.GID_USER, ["open_session"], prefix=prefix, capture_dir=tmp_path)
    assert res.rc != 0 and "Cannot make/remove an entry" in res.stderr
    assert SESSION_ERR_TEXT.split(" ", 1)[1] in res.stderr
    assert notices(res) == [] and [e for e in res.logs if e["severity"] == 3]


def test_without_unavailable_ignore_force_fails_as_the_c_module(tools, tree, probe, service, users):
    svc = service(stack(py_module(tree), "force", probe))
    prefix = [str(tools.seccomp_fail), str(errno.EPERM), "all"]
    res = pamtester(svc, Users.GID_USER, ["open_session"], prefix=prefix)
    assert res.rc != 0 and "Cannot make/remove an entry" in res.stderr
