"""Property-based: whatever a stack folder or the command line holds, the
pykeyinit command answers with findings or exit code 2, never a traceback.
In-process (cli.main), without root; `run` and `--write` are left out of
the argument fuzzing so that nothing real is executed or written."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pam_pykeyinit import cli

pytestmark = pytest.mark.unit
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

WORD = st.sampled_from(
    [
        "session",
        "-session",
        "auth",
        "account",
        "password",
        "bogus",
        "@include",
        "include",
        "substack",
        "optional",
        "required",
        "[default=1 success=ok]",
        "[unclosed",
        "pam_keyinit.so",
        "pam_python.so",
        "pam_pykeyinit.py",
        "/x/pam_pykeyinit/pam_module.py",
        "force",
        "forse",
        "revoke",
        "force=auto",
        "persistent",
        "unavailable=ignore",
        "\\",
        "#",
        "other",
        "loop",
        "missing",
        "é",
        "x" * 3000,
    ]
)
LINE = st.one_of(
    st.lists(WORD, max_size=7).map(" ".join),
    st.text(max_size=200),
)
FILE = st.one_of(
    st.lists(LINE, max_size=12).map(
        lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")
    ),
    st.binary(max_size=400),
)
NAMES = ["login", "sshd", "other", "loop", "common-session"]


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = cli.main(argv)
    except SystemExit as exit:  # argparse: --help, --version, usage errors
        rc = exit.code if isinstance(exit.code, int) else 2
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out


@contextlib.contextmanager
def folder(files: dict[str, bytes], links: list[tuple[str, str]]):
    top = Path(tempfile.mkdtemp(prefix="pykt-fuzz-"))
    try:
        pam = top / "pam.d"
        pam.mkdir()
        for name, data in files.items():
            (pam / name).write_bytes(data)
        for name, target in links:
            with contextlib.suppress(FileExistsError):
                os.symlink(target, pam / name)
        modules = top / "modules"
        modules.mkdir()
        (modules / "pam_python.so").write_bytes(b"\0libpython3.11.so.1.0\0")
        python = top / "python"
        python.write_text("#!/bin/sh\necho '[\"/usr/lib\"]'\n")
        python.chmod(0o755)
        yield pam, modules, python
    finally:
        shutil.rmtree(top)


@SETTINGS
@given(
    files=st.dictionaries(st.sampled_from(NAMES), FILE, max_size=5),
    links=st.lists(
        st.tuples(
            st.sampled_from(["loop", "l2", "sshd"]), st.sampled_from(["l2", "loop", "/nonexistent"])
        ),
        max_size=3,
    ),
    named=st.lists(st.sampled_from([*NAMES, "l2", "nosuch", "../x", ""]), max_size=2),
)
def test_check_answers_with_findings_or_2(capsys, files, links, named):
    with folder(files, links) as (pam, modules, python):
        argv = ["check", "--pam-dir", str(pam), "--module-dir", str(modules)]
        rc, out = run([*argv, "--python", str(python), "--json", *named], capsys)
    assert rc in (0, 1, 2)
    if rc != 2:
        findings = json.loads(out)
        assert all(f["severity"] in ("error", "warning", "info") for f in findings)
        assert rc == (1 if any(f["severity"] != "info" for f in findings) else 0)


@SETTINGS
@given(
    files=st.dictionaries(st.sampled_from(NAMES), FILE, min_size=1, max_size=3), write=st.booleans()
)
def test_convert_answers_with_a_diff_a_refusal_or_2(capsys, files, write):
    with folder(files, []) as (pam, _, _):
        argv = ["convert", "--pam-dir", str(pam), *(["--write"] if write else []), *files]
        rc, out = run(argv, capsys)
    assert rc in (0, 1, 2)
    assert out == "" or out.startswith("--- a/")


@SETTINGS
@given(
    argv=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "status",
                    "check",
                    "convert",
                    "--json",
                    "--pam-dir",
                    "--write",
                    "--module",
                    "--python",
                    "--module-dir",
                    "--help",
                    "--version",
                    "-x",
                    "/nonexistent",
                    "",
                    "--",
                ]
            ),
            st.text(max_size=20),
        ),
        max_size=5,
    )
)
def test_arguments_never_give_a_traceback(capsys, argv):
    if "run" in argv or "--write" in argv:  # never execute or write anything real
        return
    rc, _ = run(argv, capsys)
    assert rc in (0, 1, 2)
