"""Load and leaks, counted in /proc/key-users (keyrings(7), "Quotas").

The figures are printed with the results (run pytest with -s, or see CI's
output, where they are shown regardless of capture).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from ...pamlib import C_MODULE, SESSION_ERR_TEXT, Users, harness, key_users, line, py_module, ses

UID = Users.GID_UID


def settle(start: int, timeout: float = 20.0) -> tuple[int, float]:
    """Wait for the user's key count to come back to ``start``: revoked and
    unreferenced keyrings are freed by the key garbage collector once the
    credentials that pin them are released after an RCU grace period."""
    t0 = time.monotonic()
    while True:
        now = key_users(UID)[0]
        if now <= start or time.monotonic() - t0 > timeout:
            return now, time.monotonic() - t0
        time.sleep(0.1)


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[load] {text}")


def warm(tools, svc: str) -> int:
    """Make sure _uid.N and _uid_ses.N exist; the user's key count once it
    has been the same for three readings 0.2 s apart."""
    harness(tools, ["start", "0", svc, Users.GID_USER, "open", "0", "end", "0"])
    last, same = key_users(UID), 0
    while same < 3:
        time.sleep(0.2)
        now = key_users(UID)
        same = same + 1 if now == last else 0
        last = now
    return last[0]


def test_1000_cycles_with_revoke_leave_nothing(tools, tree, service, users, capsys):
    svc = service([line("session", "required", py_module(tree), "force revoke")])
    start = warm(tools, svc)
    t0 = time.monotonic()
    res = harness(
        tools,
        [
            "start",
            "0",
            svc,
            Users.GID_USER,
            "repeat",
            "1000",
            "open",
            "0",
            "close",
            "0",
            "sleep-ms",
            "1",
            "endrepeat",
            "show",
            "end",
            "0",
        ],
    )
    took = time.monotonic() - t0
    assert "repeat 1000 failures=0" in res.lines, res.lines
    assert "show s=error:Key has been revoked" in res.shows()
    end, waited = settle(start)
    report(
        capsys,
        f"1000 open/close cycles with revoke in one process: {took:.2f} s, 0 failures;"
        f" keys of uid {UID}: {start} before, {end} after {waited:.1f} s",
    )
    assert end == start


def test_without_revoke_keyrings_go_with_their_processes(tools, tree, service, users, capsys):
    svc = service([line("session", "required", py_module(tree), "force")])
    start = warm(tools, svc)
    for _ in range(50):
        res = harness(tools, ["start", "0", svc, Users.GID_USER, "open", "0", "end", "0"])
        assert "open 0 -> 0 Success" in res.lines
    end, waited = settle(start)
    report(
        capsys,
        f"50 logins without revoke, one process each: keys of uid {UID}:"
        f" {start} before, {end} {waited:.1f} s after the last exited",
    )
    assert end == start


def test_50_sessions_held_open_at_once(tools, tree, service, users, capsys):
    svc = service([line("session", "required", py_module(tree), "force revoke")])
    start = warm(tools, svc)
    words = [
        str(tools.harness),
        "start",
        "0",
        svc,
        Users.GID_USER,
        "open",
        "0",
        "show",
        "wait",
        "close",
        "0",
        "show",
        "end",
        "0",
    ]
    procs = [
        subprocess.Popen(words, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(50)
    ]
    try:
        opened = []
        for p in procs:
            assert p.stdout is not None
            lines = [p.stdout.readline().strip() for _ in range(4)]
            opened.append(lines)
        during = key_users(UID)[0]
    finally:
        outs = [p.communicate(timeout=60)[0] for p in procs]
    assert all(lines[1] == "open 0 -> 0 Success" for lines in opened), opened[:3]
    serials = {lines[3].split()[1] for lines in opened}
    assert len(serials) == 50 and all(
        lines[3].endswith(ses(UID, Users.GID_GID)) for lines in opened
    )
    assert all("close 0 -> 0 Success" in out and "Key has been revoked" in out for out in outs)
    end, waited = settle(start)
    report(
        capsys,
        f"50 sessions open at once: 50 distinct _ses keyrings; keys of uid {UID}:"
        f" {start} before, {during} during, {end} {waited:.1f} s after",
    )
    assert during >= start + 50 and end == start


def test_exhausted_quota_gives_the_c_code_and_names_the_quota(
    tools, tree, service, users, tmp_path, capsys
):
    """Lowers kernel.keys.maxbytes (a limit for every non-root uid) to what
    the user already holds, for the length of two logins, and puts it back.
    maxbytes, not maxkeys: this kernel allocates an anonymous session
    keyring past the key-count quota (KEY_ALLOC_QUOTA_OVERRUN), so the quota
    bites when the link to _uid.N reserves its bytes in the new keyring."""
    maxbytes = Path("/proc/sys/kernel/keys/maxbytes")
    c_svc = service([line("session", "required", C_MODULE, "force")])
    py_svc = service([line("session", "required", py_module(tree), "force")])
    warm(tools, py_svc)
    held = key_users(UID)[2]
    old = maxbytes.read_text()
    try:
        maxbytes.write_text(f"{held}\n")
        script = ["start", "0", "SVC", Users.GID_USER, "open", "0", "end", "0"]
        c = harness(tools, [w.replace("SVC", c_svc) for w in script])
        py = harness(tools, [w.replace("SVC", py_svc) for w in script], capture_dir=tmp_path)
    finally:
        maxbytes.write_text(old)
    assert f"open 0 -> {SESSION_ERR_TEXT}" in c.lines
    assert [line.replace(c_svc, "S") for line in c.calls()] == [
        line.replace(py_svc, "S") for line in py.calls()
    ]
    text = py.log_text()
    assert "EDQUOT" in text and "/proc/key-users" in text and "kernel.keys.maxbytes" in text
    report(
        capsys,
        f"maxbytes {held} (what uid {UID} holds): both modules answer"
        " PAM_SESSION_ERR; pam_pykeyinit logs: " + text.split(": ", 2)[-1][:160],
    )
