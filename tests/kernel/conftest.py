"""Kernel tests: the boundary against the running kernel, in child
processes (credential changes and session keyrings must not touch the test
runner), on the interpreter pam_python embeds."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from ..pamlib import REPO


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.kernel)


@pytest.fixture
def child():
    """Run a snippet in /usr/bin/python3 with the checkout importable; the
    snippet prints one JSON value, which is returned."""

    def run(code: str) -> object:
        source = f"import sys, json\nsys.path.insert(0, {str(REPO)!r})\n" + textwrap.dedent(code)
        proc = subprocess.run(
            ["/usr/bin/python3", "-I", "-c", source], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run
