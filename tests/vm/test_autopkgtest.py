"""Assertions on Debian's autopkgtest runs in guests booted by systemd
(`make vm-test`, tools/autopkgtest/run-autopkgtest.sh, tests in
packaging/debian/tests). The make target fails on autopkgtest's status
unless it is 0 or 2 (a test skipped); here each test's verdict is checked
per suite, so a skip where a test must run fails, and the reports are read
again on the host, so that a scenario that passed for the wrong reason
still shows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ..conftest import require

pytestmark = pytest.mark.vm
SUITES = os.environ.get("SUITES", "bookworm trixie").split()
RESULTS = Path(os.environ.get("PYKT_AUTOPKGTEST_CACHE", "/var/cache/pam-pykeyinit-autopkgtest"))
# jupyterhub-session needs Debian 13's jupyterhub package: Debian 12 has none
TESTS = {
    "bookworm": {
        "keyring-scenarios": "PASS",
        "pam-auth-update": "PASS",
        "jupyterhub-session": "SKIP",
    },
    "trixie": {
        "keyring-scenarios": "PASS",
        "pam-auth-update": "PASS",
        "jupyterhub-session": "PASS",
    },
}


@pytest.fixture(scope="module", params=SUITES)
def artifacts(request) -> Path:
    path = RESULTS / "results" / request.param / "artifacts"
    require((path / "summary").exists(), f"{path}/summary missing: run `make vm-test`")
    return path


def test_every_test_passed(artifacts):
    verdicts = dict(line.split()[:2] for line in (artifacts / "summary").read_text().splitlines())
    assert verdicts == TESTS[artifacts.parent.name]


def test_jupyterhub_opens_and_closes_a_session_through_each_module(artifacts):
    if TESTS[artifacts.parent.name]["jupyterhub-session"] == "SKIP":
        assert not (artifacts / "artifacts" / "jupyterhub-session.json").exists()
        return
    report = json.loads((artifacts / "artifacts" / "jupyterhub-session.json").read_text())
    assert report["failures"] == []
    assert "+pykeyinit" in report["install"]
    assert report["pam_pykeyinit, Debian's pam_python"]["rc"] in (-11, -6)  # the crash
    # patch 3003: the authenticating thread's exit once libpython had moved
    assert report["pam_pykeyinit, GIL-safe pam_python, busy executor"]["rc"] == 0
    for workers in ("1", "4"):
        for seen in report[f"outcome, {workers} worker(s)"].values():
            assert seen["authenticated"] == "pykt-jh" and seen["open"] is True, seen
    one = report["outcome, 1 worker(s)"]
    assert one["pam_keyinit.so"] == one["pam_pykeyinit"]


def test_keyring_scenarios_agree_and_cron_finds_the_parked_key(artifacts):
    report = json.loads((artifacts / "artifacts" / "keyring-scenarios.json").read_text())
    assert report["suite"] == artifacts.parent.name
    assert report["failures"] == []
    c, py = report["pam_keyinit.so"], report["pam_pykeyinit"]
    same = {k for k in c if not k.startswith("cron job")}
    assert len(same) >= 18 and {k: py[k] for k in same} == {k: c[k] for k in same}
    assert c["ssh: @s"] == "user's _ses" and c["ssh: after logout"] == "revoked"
    assert c["tmux with pykeyinit run: the key after logout and login"] == "kept"
    assert c["tmux without: its @s then"] == "Key has been revoked"
    # the written-down improvement (README, Options): the example cron stack
    assert py["cron job: @s"] == "user's _ses" and py["cron job: the parked key"] == "parked"
    assert c["cron job: @s"] == "root's _ses" and c["cron job: the parked key"] != "parked"
