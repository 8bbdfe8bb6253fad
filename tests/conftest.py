"""Shared test plumbing.

Markers (pyproject.toml): unit, kernel, pam, root. Under CI (CI=true) a
missing prerequisite fails the test instead of skipping it: CI installs
everything with `make deps` and runs as root, so a skip there would hide a
test that never ran.
"""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """Skip outside CI, fail in CI, when ``condition`` does not hold."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing in CI: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (EUID is not 0)")
