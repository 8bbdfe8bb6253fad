"""Several PAM handles in one process, and threads, through pamharness.

Handles: the same scripted sequence runs with pam_keyinit.so and with
pam_pykeyinit; every call's result and every 'show' (the thread's IDs, its
session keyring and what is linked in it) must match, serials normalised.
Threads: a second thread of the process watches its own IDs and session
keyring while the first opens and closes sessions.
"""

from __future__ import annotations

import itertools
import re

import pytest

from pam_pykeyinit import host

from ...conftest import require
from ...pamlib import (
    C_MODULE,
    Users,
    comparable,
    harness,
    line,
    normalise,
    py_module,
    ses,
    stack,
)

SEQUENCES = {
    # open in one handle, close in another: the same counter, the same keyring
    "open0-close1": "start 0 S U start 1 S U open 0 show close 1 show close 0 show end 0 end 1",
    # handles one after the other: the module (and pam_python's interpreter)
    # is unloaded at the first pam_end and state starts afresh
    "sequential": "start 0 S U open 0 show close 0 show end 0 "
    "start 1 S U open 1 show close 1 show end 1",
    # handles alive together, each opening a session
    "together": "start 0 S U start 1 S U open 0 open 1 show close 0 show close 1 show end 0 end 1",
    # setcred on one handle, a session on another, delete on the first
    "setcred-across": "start 0 S U start 1 S U setcred 0 establish open 1 show close 1 show "
    "setcred 0 delete show end 1 end 0",
    # the second handle for another user reuses the first one's keyring
    "two-users": "start 0 S U start 1 S root open 0 open 1 show close 1 close 0 show end 0 end 1",
}
OPTIONS = ["", "revoke", "force revoke"]
USERS = [Users.GID_USER, "root"]
CASES = list(itertools.product(SEQUENCES, OPTIONS, USERS))


@pytest.mark.parametrize(
    "sequence,args,user", CASES, ids=["-".join(c).replace(" ", "+") for c in CASES]
)
def test_handles_like_pam_keyinit(tools, tree, service, users, sequence, args, user):
    words = SEQUENCES[sequence]
    results = []
    for module in (C_MODULE, py_module(tree)):
        svc = service(stack(module, args, auth=True))
        script = words.replace(" S ", f" {svc} ").replace(" U ", f" {user} ").split()
        res = harness(tools, script)
        assert res.rc == 0, res.stderr
        results.append(res)
    theirs, ours = results
    assert comparable(ours.lines) == comparable(theirs.lines)
    for shown in ours.shows():
        if shown.startswith("show uid="):
            assert shown == "show uid=0,0,0,0 gid=0,0,0,0"


def watch_script(svc: str) -> list[str]:
    cycle = f"start 0 {svc} {Users.GID_USER} open 0 close 0 end 0"
    return ["watch-start", "repeat", "20", *cycle.split(), "endrepeat", "watch-stop"]


def test_other_threads_never_see_the_switch(tools, tree, service, users):
    svc = service([line("session", "required", py_module(tree), "force revoke")])
    res = harness(tools, watch_script(svc))
    assert res.rc == 0, res.stderr
    assert "repeat 20 failures=0" in res.lines
    watch = [line for line in res.lines if line.startswith("watch ")]
    samples, changes = (int(v) for v in re.findall(r"=(\d+)", watch[0]))
    print(f"\nwatcher thread: {samples} samples, {changes} changes while 20 sessions ran")
    assert samples > 100 and changes == 0


def test_the_c_module_per_linux_pam_version(tools, service, users):
    """The same watch on pam_keyinit.so, with the expectation of the
    installed Linux-PAM: before 1.5.3 its glibc setreuid() moves every
    thread, so the watch sees changes (which shows the test above can
    fail); from 1.5.3 on (Red Hat bz 1997969, raw syscalls) it moves none,
    and the test above shows pam_pykeyinit is at least as good."""
    version = host.linux_pam_version()
    require(version is not None, "the Linux-PAM version cannot be read (dpkg-query, rpm)")
    svc = service([line("session", "required", C_MODULE, "force revoke")])
    res = harness(tools, watch_script(svc))
    assert "repeat 20 failures=0" in res.lines, res.lines
    changes = int(re.findall(r"changes=(\d+)", "\n".join(res.lines))[0])
    print(f"\nLinux-PAM {version}: the watcher saw {changes} changes with pam_keyinit.so")
    if version < (1, 5, 3):
        assert changes > 0, "pam_keyinit.so before 1.5.3 no longer moves other threads?"
    else:
        assert changes == 0


def test_session_keyrings_stay_per_thread(tools, tree, service, users):
    svc = service([line("session", "required", py_module(tree), "force")])
    before = harness(tools, ["show"]).shows()
    res = harness(
        tools,
        ["thread", "start", "0", svc, Users.GID_USER, "open", "0", "show", "endthread", "show"],
    )
    assert res.rc == 0, res.stderr
    shows = res.shows()
    in_thread = shows[: len(shows) - len(before)]
    after = shows[len(in_thread) :]
    assert any(s.endswith(ses(Users.GID_UID, Users.GID_GID)) for s in in_thread)
    assert normalise(after) == normalise(before)  # the main thread's @s is untouched


# Threads of a C program that did not start Python: pam_python's interpreter
# belongs to the thread that first called it, and the GIL-safe build gives
# any other thread a new Python thread state for each call
# (PyGILState_Ensure). pam_keyinit.c keeps its state in __thread variables,
# which live exactly as long as the OS thread; the module must do the same.
THREAD_SEQUENCES = {
    # the main thread starts PAM (auth: pam_python's interpreter is its
    # own), a worker opens and closes: the worker's close revokes
    "main-starts-worker-closes": "start 0 S U auth 0 thread open 0 show close 0 show endthread "
    "end 0",
    # the worker starts PAM itself
    "worker-starts-worker-closes": "thread start 0 S U open 0 show close 0 show end 0 endthread",
    # a worker opens and exits; a new worker (its thread ID may be the
    # first one's) closes: it has no keyring of its own to revoke, and the
    # first worker's keyring stays as it was (recall: revoked or not)
    "worker-exits-new-worker-closes": "start 0 S U auth 0 thread open 0 show endthread "
    "thread close 0 recall endthread end 0",
    # setcred DELETE in a worker after its ESTABLISH, main started PAM
    "main-starts-worker-setcred": "start 0 S U auth 0 thread setcred 0 establish show "
    "setcred 0 delete show endthread end 0",
}


@pytest.mark.parametrize("sequence", THREAD_SEQUENCES)
def test_worker_threads_like_pam_keyinit(
    tools, tree, gil_safe_so, service, users, sequence, tmp_path
):
    """Through the GIL-safe pam_python (Debian's runs a foreign thread's
    calls on the main thread's Python state, unsafely), with 'force
    revoke': every call's result and every show/recall as with
    pam_keyinit.so, no error or warning logged (a close that took over the
    exited worker's state would try to revoke a keyring it cannot reach:
    EACCES), and in the sequences that close in the thread that opened,
    the keyring is revoked."""
    results = []
    for module in (C_MODULE, f"{gil_safe_so} {tree}"):
        svc = service(stack(module, "force revoke", auth=True))
        script = THREAD_SEQUENCES[sequence].replace(" S ", f" {svc} ").replace(" U ", " X ")
        script = script.replace(" X ", f" {Users.GID_USER} ")
        res = harness(tools, script.split(), capture_dir=tmp_path)
        assert res.rc == 0, res.stderr
        results.append(res)
    theirs, ours = results
    print("\n".join(["pam_keyinit.so:", *theirs.lines, "pam_pykeyinit:", *ours.lines]))
    assert comparable(ours.lines) == comparable(theirs.lines)
    for res in results:
        assert [e["text"] for e in res.logs if e["severity"] <= 4] == []
    revoked = [line for line in ours.lines if "Key has been revoked" in line]
    if sequence == "worker-exits-new-worker-closes":
        assert not revoked and any(line.startswith("recall s=") for line in ours.lines)
    else:
        assert revoked, ours.lines
