"""Fixtures for the conformance suite: the C helpers, built once."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from ...conftest import require
from ...pamlib import Tools


@pytest.fixture(scope="session")
def tools(prerequisites: None):
    require(shutil.which("gcc") is not None, "gcc not installed")
    require(Path("/usr/include/security/pam_appl.h").exists(), "libpam0g-dev not installed")
    top = Path(tempfile.mkdtemp(prefix="pykt-tools-"))
    top.chmod(0o755)
    try:
        yield Tools(top)
    finally:
        shutil.rmtree(top)
