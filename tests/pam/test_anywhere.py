"""The suite gives one result wherever it runs: a slice of it, run again
from a copy of the checkout in a folder only root can enter (as a clone
under /root is) and from a shell that has a session keyring of its own (as
an ssh login has) or only the user-session keyring, with and without
CI=true. Every test of the slice must pass; none may be skipped.

The slice is the tests that once depended on where the checkout was and
how the runner's shell began: code run as another uid, and starting states
of the caller's keyring.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ..pamlib import REPO, Users, user_session

SLICE = [
    "tests/pam/cli/test_status.py::test_user_session_fallback",
    "tests/pam/cli/test_check.py::test_an_unreadable_folder_exits_2",
    "tests/pam/cli/test_run.py::test_persistent_links_the_persistent_keyring",
    "tests/pam/test_stacks.py::test_non_force_creates_one_when_the_caller_has_none",
    "tests/pam/test_stacks.py::test_two_lines_share_one_keyring",
    "tests/pam/test_options.py::test_force_auto_replaces_a_keyring_that_is_not_the_users",
    "tests/pam/test_differential.py",
    "-k",
    "not test_same_as_pam_keyinit or (noargs and open-close)",
]
SHELLS = {
    "ssh-like": ["keyctl", "session", "-"],  # an anonymous keyring of its own
    "user-session-only": user_session("root"),  # _uid_ses.0, as a console login without one
}


def private_copy(top: Path) -> Path:
    """The checkout's tracked and new files, copied under ``top`` (0700)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    copy = top / "checkout"
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


@pytest.mark.parametrize(
    "shell,ci", [("ssh-like", True), ("user-session-only", False)], ids=["ssh-ci", "console"]
)
def test_a_slice_passes_from_a_private_checkout(prerequisites, users, shell, ci):
    top = Path(tempfile.mkdtemp(prefix="pykt-private-"))  # mode 0700
    assert top.stat().st_mode & 0o777 == 0o700
    try:
        copy = private_copy(top)
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        if ci:
            env["CI"] = "true"
        cmd = [
            *SHELLS[shell],
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
        ]
        proc = subprocess.run(
            [*cmd, *SLICE], cwd=copy, env=env, capture_output=True, text=True, timeout=900
        )
    finally:
        shutil.rmtree(top)
        Users()  # the inner run removed the test users at its end: make them again
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
    print(f"\n{shell}, CI={'true' if ci else 'unset'}: {summary}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 20, summary
    assert "skipped" not in summary and "SKIPPED" not in proc.stdout, summary
