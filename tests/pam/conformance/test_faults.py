"""A failure at every system call the module makes, in a real login.

failinject.so (LD_PRELOAD) makes the Nth matching syscall() fail once with
a chosen errno: the module makes every call through libc's syscall(), so
each join, link, revoke, credential switch and restore can be hit alone.
Each case checks, from outside the module: the PAM code, a log line naming
the call and the errno, which keyring the thread holds (none created where
none should be), and the thread's uids and gids, saved and fs included.
"""

from __future__ import annotations

import errno

import pytest

from pam_pykeyinit import kernel

from ...pamlib import (
    CRED_ERR_TEXT,
    SESSION_ERR_TEXT,
    Users,
    harness,
    line,
    py_module,
    ses,
)

U, G = Users.GID_UID, Users.GID_GID
ANY, NONE = "*", 4294967295  # no match on this argument; uid_t -1
NR = kernel.table_for(kernel.current_abi()) or {}
SES = ses(U, G)
ENTRY = "show uid=0,0,0,0 gid=0,0,0,0"


def rule(call: str, args: tuple[object, object, object], err: int, nth: int = 1) -> str:
    return f"{NR[call]}:{','.join(str(a) for a in args)}:{err}:{nth}"


# name: (rule, words naming call and errno,
#        the keyring state afterwards: "none" | "unlinked" | "linked")
# The PAM code of a failing open is PAM_SESSION_ERR in every case.
OPEN_FAULTS = {
    "join": (
        rule("keyctl", (1, ANY, ANY), errno.EDQUOT),
        ["KEYCTL_JOIN_SESSION_KEYRING", "EDQUOT", "/proc/key-users"],
        "none",
    ),
    "link": (
        rule("keyctl", (8, ANY, ANY), errno.ENOMEM),
        ["KEYCTL_LINK", "ENOMEM"],
        "unlinked",
    ),
    "switch-gid": (
        rule("setresgid", (G, NONE, 0), errno.EPERM),
        [f"setresgid({G}, -1, 0)", "EPERM", "CAP_SETGID"],
        "none",
    ),
    "switch-uid": (
        rule("setresuid", (U, NONE, 0), errno.EAGAIN),
        [f"setresuid({U}, -1, 0)", "EAGAIN"],
        "none",
    ),
    "restore-uid": (
        rule("setresuid", (0, 0, 0), errno.EPERM),
        ["cannot restore the caller's uids", "setresuid(0, 0, 0)", "EPERM"],
        "linked",
    ),
    "restore-gid": (
        rule("setresgid", (0, 0, 0), errno.EPERM),
        ["cannot restore the caller's gids", "setresgid(0, 0, 0)", "EPERM"],
        "linked",
    ),
}
REVOKE_FAULTS = {
    "revoke": (rule("keyctl", (3, ANY, ANY), errno.EACCES), ["KEYCTL_REVOKE", "EACCES"]),
    "revoke-switch-gid": (
        rule("setresgid", (NONE, G, 0), errno.EPERM),
        [f"setresgid(-1, {G}, 0)", "EPERM"],
    ),
    "revoke-switch-uid": (
        rule("setresuid", (NONE, U, 0), errno.EPERM),
        [f"setresuid(-1, {U}, 0)", "EPERM"],
    ),
    "revoke-restore-uid": (
        rule("setresuid", (NONE, 0, NONE), errno.EPERM),
        ["cannot restore the caller's uids", "setresuid(-1, 0, -1)"],
    ),
    "revoke-restore-gid": (
        rule("setresgid", (NONE, 0, NONE), errno.EPERM),
        ["cannot restore the caller's gids", "setresgid(-1, 0, -1)"],
    ),
}


def run(tools, spec, words, tmp_path):
    env = {"LD_PRELOAD": str(tools.failinject), "FAILINJECT": spec}
    return harness(tools, words, env=env, capture_dir=tmp_path)


def error_lines(res) -> list[str]:
    return [e["text"] for e in res.logs if e["severity"] == 3 and e["facility"] == 10]


@pytest.mark.parametrize("point", sorted(OPEN_FAULTS))
def test_keyinit_fault(tools, tree, service, users, tmp_path, point):
    spec, words, keyring = OPEN_FAULTS[point]
    svc = service([line("session", "required", py_module(tree), "force")])
    before = harness(tools, ["show"]).shows()
    res = run(tools, spec, ["start", "0", svc, Users.GID_USER, "open", "0", "show"], tmp_path)
    assert res.rc == 0, res.stderr
    assert f"open 0 -> {SESSION_ERR_TEXT}" in res.lines
    errors = error_lines(res)
    assert errors and all(w in errors[0] for w in words), errors
    shows = res.shows()
    assert shows[0] == ENTRY  # every uid and gid back, even after a failed restore
    if keyring == "none":
        assert shows[1:] == before[1:]  # still the caller's own session keyring
    else:
        assert shows[1].endswith(SES)
        links = [s for s in shows if s.startswith("show link=")]
        assert bool(links and links[0].endswith(f"_uid.{U}")) == (keyring == "linked")


@pytest.mark.parametrize("point", sorted(REVOKE_FAULTS))
@pytest.mark.parametrize("via", ["close", "setcred"])
def test_revoke_fault(tools, tree, service, users, tmp_path, point, via):
    spec, words = REVOKE_FAULTS[point]
    svc = service(
        [line(t, "required", py_module(tree), "force revoke") for t in ("auth", "session")]
    )
    end = ["close", "0"] if via == "close" else ["setcred", "0", "delete"]
    script = ["start", "0", svc, Users.GID_USER, "open", "0", *end, "show"]
    res = run(tools, spec, script, tmp_path)
    assert res.rc == 0, res.stderr
    calls = res.calls()
    # close_session always succeeds; setcred(DELETE) reports PAM_CRED_ERR
    assert calls[-1] == (
        "close 0 -> 0 Success" if via == "close" else f"setcred 0 -> {CRED_ERR_TEXT}"
    )
    errors = error_lines(res)
    assert errors and all(w in errors[0] for w in words), errors
    shows = res.shows()
    assert shows[0] == ENTRY
    revoked = shows[1] == "show s=error:Key has been revoked"
    assert revoked == point.startswith("revoke-restore")  # the revoke itself went through
