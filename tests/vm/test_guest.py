"""Assertions on the report of the Debian guest (`make vm-test`).

tools/vm/run.sh builds a Debian 12 guest, installs the freshly built .deb
with apt, boots it with qemu and leaves the report that tests/vm/guest.py
printed on the serial console in build/vm/report.json.
"""

from __future__ import annotations

import json

import pytest

from ..conftest import require
from ..pamlib import REPO, ses

pytestmark = pytest.mark.vm
REPORT = REPO / "build" / "vm" / "report.json"
UID, GID = 1001, 2001
SES = ses(UID, GID)
LINK = f"keyring;{UID};65534;1f3f0000;_uid.{UID}"
REVOKED = "keyctl_describe: Key has been revoked"


@pytest.fixture(scope="module")
def report() -> dict:
    require(REPORT.exists(), f"{REPORT} missing: run `make vm-test`")
    return json.loads(REPORT.read_text())


def test_the_package_was_installed_by_apt(report):
    setup = report["setup"]
    assert setup["deb"].endswith("install ok installed")
    assert setup["loader"] == "/usr/lib/python3/dist-packages/pam_pykeyinit/pam_module.py"
    assert setup["user"] == f"uid={UID}(alice) gid={GID}(staffers) groups={GID}(staffers)"


@pytest.mark.parametrize(
    "scenario", ["pamtester", "su_l", "runuser_l", "login", "sshd", "pam_auth_update"]
)
def test_login_gets_a_user_owned_keyring_revoked_at_logout(report, scenario):
    seen = report[scenario]
    assert "error" not in seen, seen
    assert seen["rc"] == 0, seen
    assert seen["s"] == SES, seen
    assert seen["links"] == [LINK], seen
    # a process of the session still holds the keyring: revoked, not gone
    assert seen["after_logout"] == REVOKED, seen


def test_su_and_runuser_ran_our_line(report):
    for scenario in ("su_l", "runuser_l"):
        assert report[scenario]["stack"] == [
            "session\t\toptional\tpam_python.so pam_pykeyinit.py force revoke"
        ]


def test_profile_reaches_interactive_sessions_only(report):
    seen = report["pam_auth_update"]
    line = "session\toptional\tpam_python.so pam_pykeyinit.py revoke"
    assert seen["enable_rc"] == 0
    assert line in seen["common_session"].splitlines()
    assert seen["noninteractive"] == report["setup"]["noninteractive_before"]
    assert line not in report["setup"]["common_session_before"]


def test_user_keyring_outlives_its_processes_on_this_kernel(report):
    """user-keyring(7) on a freshly booted kernel: created on first access,
    and (since Linux 5.3) kept after the last process of the uid exits."""
    life = report["user_keyring_lifetime"]
    assert report["setup"]["kernel"].startswith("6.")
    assert life["record_before"] is False
    assert life["first"].isdigit() and life["first"] == life["second"]
    assert life["key_users_after"] is True
