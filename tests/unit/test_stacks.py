"""One model of a stack file for `check` and `convert` (stacks.parse): the
same logical lines, case rule, continuations and recognition of our line;
`convert` changes the module word and keeps every other byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pam_pykeyinit import stacks

pytestmark = pytest.mark.unit
OURS = "pam_python.so pam_pykeyinit.py"


def lines_of(tmp_path: Path, text: str) -> list[stacks.Line]:
    (tmp_path / "svc").write_text(text)
    lines, findings = stacks.Reader(tmp_path, "/lib/security/").read("svc")
    assert [f for f in findings if f.severity == "error"] == []
    return lines


def keyinit_lines(lines: list[stacks.Line]) -> list[tuple[int, str, bool]]:
    return [(x.number, x.type, x.ours) for x in lines if x.is_c_keyinit() or x.ours]


@pytest.mark.parametrize(
    "text,number",
    [
        ("Session optional pam_keyinit.so force\n", 1),
        ("SESSION optional pam_keyinit.so\n", 1),
        ("-session optional pam_keyinit.so revoke\n", 1),
        ("session optional \\\n    pam_keyinit.so force revoke\n", 1),
        ("session \\\n# a comment inside\n\n  optional \\\n pam_keyinit.so\n", 1),
        ("# head\nsession [success=ok \\\n default=ignore] /lib/security/pam_keyinit.so\n", 2),
    ],
)
def test_check_and_convert_see_the_same_line(tmp_path, text, number):
    assert keyinit_lines(lines_of(tmp_path, text)) == [(number, "session", False)]
    converted = stacks.convert_text(text, "pam_pykeyinit.py")
    assert converted != text
    assert keyinit_lines(lines_of(tmp_path, converted)) == [(number, "session", True)]
    # only the module word changed, in the physical line it was on
    old_rows, new_rows = text.split("\n"), converted.split("\n")
    changed = [(a, b) for a, b in zip(old_rows, new_rows) if a != b]
    assert len(old_rows) == len(new_rows) and len(changed) == 1
    before, after = changed[0]
    module = "/lib/security/pam_keyinit.so" if "/lib" in before else "pam_keyinit.so"
    assert after == before.replace(module, OURS, 1)


@pytest.mark.parametrize(
    "text",
    [
        "session optional pam_exec.so /bin/true pam_keyinit.so\n",  # an argument
        "# session optional pam_keyinit.so\n",  # a comment
        "session optional pam_unix.so # pam_keyinit.so\n",
        "bogus optional pam_keyinit.so\n",  # Linux-PAM skips the line
        "session include pam_keyinit.so\n",  # a file name, not a module
        "session optional\n",
        "session optional pam_keyinit.so.old\n",
    ],
)
def test_lines_that_are_not_a_keyinit_line_are_left_alone(tmp_path, text):
    assert stacks.convert_text(text, "pam_pykeyinit.py") == text


def test_every_other_byte_is_kept():
    text = (
        "#%PAM-1.0\r\n"
        "auth\trequired   pam_unix.so  \n"
        "session  optional\tpam_keyinit.so\tforce  revoke   # keep me\n"
        "\n"
        "session optional pam_keyinit.so  "  # no newline at the end
    )
    converted = stacks.convert_text(text, "/opt/x/pam_pykeyinit/pam_module.py")
    module = "pam_python.so /opt/x/pam_pykeyinit/pam_module.py"
    assert converted == text.replace("pam_keyinit.so", module)


@pytest.mark.parametrize(
    "module,ours",
    [
        ("pam_pykeyinit.py", True),
        ("/usr/lib/security/pam_pykeyinit.py", True),
        ("/opt/x/pam_pykeyinit/pam_module.py", True),
        ("/x/m.py", False),
        ("pam_pykeyinit/other.py", False),
    ],
)
def test_one_recognition_for_check_and_convert(tmp_path, module, ours):
    lines = lines_of(tmp_path, f"session optional pam_python.so {module} force\n")
    assert lines[0].ours is ours
    if ours:
        stacks.check_module_word(module, "/lib/security/")
    else:
        with pytest.raises(stacks.InputError, match="not a pam_pykeyinit loader"):
            stacks.check_module_word(module, "/lib/security/")


def test_a_symlink_to_the_loader_is_recognised(tmp_path):
    package = tmp_path / "pkg" / "pam_pykeyinit"
    package.mkdir(parents=True)
    (package / "pam_module.py").write_text("")
    link = tmp_path / "m.py"
    link.symlink_to(package / "pam_module.py")
    assert stacks.is_pykeyinit_file(str(link), "/lib/security/")
    stacks.check_module_word(str(link), "/lib/security/")


@pytest.mark.parametrize("module", ["two words", "a#b", "[x]", ""])
def test_a_module_that_is_not_one_word_is_refused(module):
    with pytest.raises(stacks.InputError, match="not a single word"):
        stacks.check_module_word(module, "/lib/security/")


# -- reading: regular files only, at most MAX_BYTES -----------------------------


def test_a_fifo_is_refused_without_waiting(tmp_path):
    fifo = tmp_path / "svc"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        stacks.read_stack(fifo)


def test_a_device_is_refused(tmp_path):
    with pytest.raises(OSError, match="not a regular file"):
        stacks.read_stack("/dev/zero")


def test_a_file_over_the_limit_is_refused_and_one_at_it_is_read(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"#" * stacks.MAX_BYTES)
    assert len(stacks.read_stack(big)) == stacks.MAX_BYTES
    with big.open("ab") as f:
        f.write(b"#")
    with pytest.raises(OSError, match="larger than"):
        stacks.read_stack(big)


def test_check_reports_an_unreadable_include_as_a_finding(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "svc").write_text("@include fifo\n")
    _, findings = stacks.Reader(tmp_path).read("svc")
    assert [(f.severity, f.message) for f in findings] == [
        ("error", f"cannot read {tmp_path}/fifo: not a regular file; Linux-PAM fails the service")
    ]
