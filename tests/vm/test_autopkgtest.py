"""Assertions on Debian's autopkgtest runs in guests booted by systemd
(`make vm-test`, tools/autopkgtest/run-autopkgtest.sh, tests in
packaging/debian/tests). autopkgtest's own verdict fails the make target
first; here the report of keyring-scenarios is read again on the host, so
that a scenario that passed for the wrong reason still shows."""

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
        assert not (artifacts / "jupyterhub-session.json").exists()
        return
    report = json.loads((artifacts / "jupyterhub-session.json").read_text())
    assert report["failures"] == []
    assert "+pykeyinit" in report["install"]
    for name in ("pam_keyinit.so, Debian's pam_python", "pam_pykeyinit, GIL-safe pam_python"):
        for run in report[name].values():
            assert run["rc"] == 0 and run["authenticated"] == "pykt-jh", run
            assert run["open_sessions_still_on"] is True, run  # no PAM error disabled them


def test_the_two_modules_give_the_same_keyrings(artifacts):
    report = json.loads((artifacts / "keyring-scenarios.json").read_text())
    assert report["failures"] == []
    c, py = report["pam_keyinit.so"], report["pam_pykeyinit"]
    assert c.keys() == py.keys()
    differ = {k for k in c if c[k] != py[k]}
    assert differ <= {"cron job: @s", "cron job: the parked key"}  # the documented improvement
    for seen in (c, py):
        assert seen["ssh: @s"] == "user's _ses" and seen["ssh: _uid linked"] is True
        assert seen["ssh: after logout"] == "revoked"
        assert seen["tmux with pykeyinit run: the key after logout and login"] == "kept"
    assert py["cron job: the parked key"] == "parked" != c["cron job: the parked key"]


def test_check_reads_systemd_user_where_libpam_does(artifacts):
    report = json.loads((artifacts / "keyring-scenarios.json").read_text())
    shipped = report["check, as shipped"]["systemd-user"]
    converted = report["check, converted"]["systemd-user"]
    keyring = [f for f in shipped if "session keyring from" in f["message"]]
    assert len(keyring) == 1 and "pam_keyinit.so (force revoke)" in keyring[0]["message"]
    vendor = [f for f in shipped if "read from the vendor folder" in f["message"]]
    if keyring[0]["file"] == "/usr/lib/pam.d/systemd-user":  # the vendor file, as shipped
        assert vendor, shipped
    ours = [f for f in converted if "session keyring from pam_pykeyinit" in f["message"]]
    assert [f["file"] for f in ours] == ["/etc/pam.d/systemd-user"], converted
