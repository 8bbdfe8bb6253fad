"""Assertions on the reports of the Debian guests (`make vm-test`).

tools/vm/run.sh builds one guest per suite (SUITES, default bookworm and
trixie) with that suite's kernel and Debian's libpam-python, tries the
freshly built .deb alone (apt must refuse it), installs the 0.1.0 package,
upgrades it to 0.2.0, then runs the README's install command (this
project's libpam-python and the fresh .deb), boots it with qemu and leaves
the report that tests/vm/guest.py printed on the serial console in
build/vm/SUITE/report.json. Everything is judged here, on the host.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from ..conftest import require
from ..pamlib import IDS_LINE, REPO, REVOKED, normalise, ses

pytestmark = pytest.mark.vm
SUITES = os.environ.get("SUITES", "bookworm trixie").split()
UID, GID = 1001, 2001
SES = ses(UID, GID)
LINK = f"keyring;{UID};65534;1f3f0000;_uid.{UID}"
LOADER = "/usr/lib/python3/dist-packages/pam_pykeyinit/pam_module.py"


@pytest.fixture(scope="module", params=SUITES)
def report(request) -> dict:
    path = REPO / "build" / "vm" / request.param / "report.json"
    require(path.exists(), f"{path} missing: run `make vm-test`")
    got = json.loads(path.read_text())
    assert got["setup"]["suite"] == request.param
    return got


def test_beside_debians_libpam_python_the_package_is_refused(report):
    """apt will not put the package beside a pam_python that hands out root
    (Debian's): it needs libpam-python-fixed-startup, which only this
    project's libpam-python provides, and installs nothing."""
    setup = report["setup"]
    assert setup["apt_refused_rc"] != 0, setup["apt_refused_log"]
    assert "libpam-python-fixed-startup" in setup["apt_refused_log"]
    assert "Unpacking libpam-pykeyinit" not in setup["apt_refused_log"]


def test_the_package_was_upgraded_from_0_1_0_and_0_2_0_by_apt(report):
    """0.1.0, then 0.2.0, with Debian's libpam-python; then the README's
    command installs this project's libpam-python over Debian's and 0.3.0
    over 0.2.0 in one apt call."""
    setup = report["setup"]
    assert setup["deb"] == "0.3.0 install ok installed"
    assert "Unpacking libpam-pykeyinit (0.2.0) over (0.1.0)" in setup["apt_log"]
    assert "Unpacking libpam-pykeyinit (0.3.0) over (0.2.0)" in setup["apt_log"]
    assert "+pykeyinit" in setup["pam_python"], setup["pam_python"]
    assert f"Unpacking libpam-python ({setup['pam_python']}) over" in setup["apt_log"]
    # one loader, reached from /lib and /usr/lib alike, and nothing stale
    assert setup["loader"] == setup["loader_via_lib"] == LOADER
    assert "pam_pykeyinit.py" in setup["security_dir"]
    assert [f for f in setup["files"] if f.startswith(("/lib/", "/bin/", "/sbin/"))] == []
    assert "/usr/bin/pykeyinit" in setup["files"]
    assert setup["pykeyinit_version"] == "pykeyinit 0.3.0"
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


@pytest.mark.parametrize(
    "scenario,service",
    [("su_l", "su-l"), ("runuser_l", "runuser-l"), ("login", "login"), ("sshd", "sshd")],
)
def test_pykeyinit_convert_wrote_debians_files(report, scenario, service):
    conversion = report[scenario]["convert"]
    assert conversion["rc"] == 0, conversion
    removed = [x for x in conversion["stdout"].splitlines() if x.startswith("-session")]
    assert [x.split()[2:] for x in removed] == [["pam_keyinit.so", "force", "revoke"]]
    assert [x.split() for x in conversion["stack"]] == [
        ["session", "optional", "pam_python.so", "pam_pykeyinit.py", "force", "revoke"]
    ]


def findings(result: dict) -> list[tuple[str, str, str]]:
    return [(f["service"], f["severity"], f["message"]) for f in json.loads(result["stdout"])]


def test_pykeyinit_check_on_the_stacks_debian_ships(report):
    """login, sshd and su-l get their keyring from pam_keyinit.so (force
    revoke); common-session and cron have no keyinit line, and neither is
    an interactive login service: nothing to say about them."""
    result = report["setup"]["check_shipped"]
    assert result["rc"] == 0, result
    assert sorted(findings(result)) == [
        (service, "info", "session keyring from pam_keyinit.so (force revoke)")
        for service in ("login", "sshd", "su-l")
    ]


def test_plain_su_with_force_auto_gives_the_user_its_own_keyring(report):
    seen = report["su_plain"]
    assert seen["without"] == ses(0, 0)  # su keeps the caller's keyring...
    assert seen["rc"] == 0 and seen["s"] == SES, seen  # ...force=auto replaces it
    assert seen["links"] == [LINK]
    assert seen["stack"] == ["session optional pam_python.so pam_pykeyinit.py force=auto"]


def test_a_cron_job_finds_the_key_parked_in_the_persistent_keyring(report):
    seen = report["cron"]
    assert "error" not in seen, seen
    assert seen["crontab_rc"] == 0 and seen["cron_start"] == 0, seen
    assert seen["s"] == SES, seen  # the user's own _ses, not crond's root keyring
    assert seen["links"][0] == LINK
    persistent = seen["links"][1]
    assert persistent.startswith(f"keyring;{UID};") and persistent.endswith(f";_persistent.{UID}")
    assert seen["parked"].isdigit() and seen["request"] == seen["parked"], seen
    check = seen["check"]
    assert check["rc"] == 0, check
    assert ("cron", "info", "session keyring from pam_pykeyinit (force=auto persistent)") in (
        findings(check)
    )


def comparable(run: dict, service: str) -> tuple[int, list[str], list[str]]:
    """pamtester's status and messages and the probe's lines, serials
    normalised; the saved IDs are masked (the C module's are not restored,
    ours are: see tests/pam/test_differential.py)."""
    probes = [x[len("probe: ") :] for x in run["stdout"].splitlines() if x.startswith("probe: ")]
    probes = [IDS_LINE.sub(r"\1: \2 \3 - \5", p) for p in probes]
    messages = run["stderr"].replace(service, "SERVICE").splitlines()
    return run["rc"], normalise(messages), normalise(probes)


def test_the_suites_own_pam_keyinit_gives_the_same_results(report):
    cases = report["differential"]["cases"]
    assert len(cases) >= 20
    for case in cases:
        c, py = comparable(case["c"], "pykt-diff-c"), comparable(case["py"], "pykt-diff-py")
        assert py == c, case
    # the cases do reach keyrings: some session keyrings made, some revoked
    outputs = "".join(case["py"]["stdout"] for case in cases)
    assert f"probe: s={SES}" in outputs and f"probe: s={REVOKED}" in outputs


def test_python_pam_clients_crash_on_debians_pam_python_only(report):
    """pamela and python-pam (ctypes.CDLL, the GIL released) die with
    SIGSEGV when the stack reaches a line of Debian's pam_python (named by
    path; a fixed Debian package turns this red), and work through the
    installed one, this project's."""
    seen = report["python_pam"]
    for client in ("pamela", "python_pam"):
        assert seen[f"{client}:pykt-debian"]["rc"] == -signal.SIGSEGV, seen
        assert seen[f"{client}:pykt-py"]["rc"] == 0, seen
        assert seen[f"{client}:pykt-nopy"]["rc"] == 0, seen  # their own service: fine
    assert seen["python_pam:pykt-nopy"]["stdout"].strip() == "True"
    assert seen["pamela:pykt-nopy"]["stdout"].strip() == "done"


def test_a_client_that_keeps_the_gil_works(report):
    seen = report["python_pam"]["gil_client"]
    assert seen["rc"] == 0, seen
    assert json.loads(seen["stdout"]) == {"codes": [0, 0, 0, 0], "s": SES}


def test_the_gil_safe_pam_python_serves_python_clients(report):
    """With this project's libpam-python installed, pamela and python-pam,
    which crash with Debian's build (above), open a session through the
    converted login stack and get the user's _ses; going back to Debian's
    build would remove libpam-pykeyinit (apt's simulation says so), and
    logins work."""
    seen = report["gil_safe_pam_python"]
    assert "+pykeyinit" in seen["installed"], seen
    assert any("pam_python.so pam_pykeyinit.py" in x for x in seen["login_stack"]), seen
    for client in ("pamela", "python_pam"):
        assert seen[client]["rc"] == 0, seen[client]
        assert json.loads(seen[client]["stdout"])["opened"] == SES, seen[client]
    assert json.loads(seen["python_pam"]["stdout"])["auth"] is True
    simulated = seen["downgrade_simulated"]
    assert simulated["rc"] == 0 and "Remv libpam-pykeyinit" in simulated["stdout"], simulated
    assert seen["login_after"]["rc"] == 0, seen["login_after"]


def test_profile_reaches_interactive_sessions_only(report):
    seen = report["pam_auth_update"]
    line = "session\toptional\tpam_python.so pam_pykeyinit.py revoke"
    assert seen["enable_rc"] == 0
    assert line in seen["common_session"].splitlines()
    assert seen["noninteractive"] == report["setup"]["noninteractive_before"]
    assert line not in report["setup"]["common_session_before"]


def test_user_keyring_outlives_its_processes_on_this_kernel(report):
    """user-keyring(7) on a freshly booted kernel of the suite: created on
    first access, and (since Linux 5.3) kept after the last process of the
    uid exits."""
    life = report["user_keyring_lifetime"]
    assert report["setup"]["kernel"].startswith("6.")
    assert life["record_before"] is False
    assert life["first"].isdigit() and life["first"] == life["second"]
    assert life["key_users_after"] is True
