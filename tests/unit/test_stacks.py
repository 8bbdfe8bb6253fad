"""One model of a stack file for `check` and `convert` (stacks.parse): the
same logical lines, case rule, continuations and recognition of our line;
`convert` changes the module word and keeps every other byte."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from pam_pykeyinit import stacks

pytestmark = pytest.mark.unit
OURS = "pam_python.so pam_pykeyinit.py"


def lines_of(tmp_path: Path, text: str, blank_ends_line: bool = True) -> list[stacks.Line]:
    (tmp_path / "svc").write_text(text)
    rules = stacks.Rules((tmp_path,), blank_ends_line=blank_ends_line)
    lines, findings = stacks.Reader(rules, "/lib/security/").read("svc")
    assert [f for f in findings if f.severity == "error"] == []
    return lines


def findings_of(rules: stacks.Rules, service: str = "svc") -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in stacks.Reader(rules).read(service)[1]]


def keyinit_lines(lines: list[stacks.Line]) -> list[tuple[int, str, bool]]:
    return [(x.number, x.type, x.ours) for x in lines if x.is_c_keyinit() or x.ours]


@pytest.mark.parametrize(
    "text,number",
    [
        ("Session optional pam_keyinit.so force\n", 1),
        ("SESSION optional pam_keyinit.so\n", 1),
        ("-session optional pam_keyinit.so revoke\n", 1),
        ("session optional \\\n    pam_keyinit.so force revoke\n", 1),
        ("session \\\n  optional \\\n pam_keyinit.so\n", 1),
        ("# head\nsession [success=ok \\\n default=ignore] /lib/security/pam_keyinit.so\n", 2),
    ],
)
@pytest.mark.parametrize("blank_ends_line", [True, False], ids=["1.6+", "1.5"])
def test_check_and_convert_see_the_same_line(tmp_path, text, number, blank_ends_line):
    def seen(text: str) -> list[tuple[int, str, bool]]:
        return keyinit_lines(lines_of(tmp_path, text, blank_ends_line))

    assert seen(text) == [(number, "session", False)]
    converted = stacks.convert_text(text, "pam_pykeyinit.py", blank_ends_line)
    assert converted != text
    assert seen(converted) == [(number, "session", True)]
    # only the module word changed, in the physical line it was on
    old_rows, new_rows = text.split("\n"), converted.split("\n")
    changed = [(a, b) for a, b in zip(old_rows, new_rows) if a != b]
    assert len(old_rows) == len(new_rows) and len(changed) == 1
    before, after = changed[0]
    module = re.search(r"\S*pam_keyinit\.so", before)  # the word as the line spells it
    assert module is not None and after == before.replace(module[0], OURS, 1)


@pytest.mark.parametrize(
    "text",
    [
        "session optional pam_exec.so /bin/true pam_keyinit.so\n",  # an argument
        "# session optional pam_keyinit.so\n",  # a comment
        "session optional pam_unix.so # pam_keyinit.so\n",
        "bogus optional pam_keyinit.so\n",  # Linux-PAM puts a failing handler there
        "session include pam_keyinit.so\n",  # a file name, not a module
        "session Substack pam_keyinit.so\n",  # the same, in any case (strcasecmp)
        "session optional \\\n pam_keyinit.so \\\n",  # the file ends inside it
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


# -- words: brackets as _pam_tokenize takes them --------------------------------
# Each case measured with pamtester and pam_echo on Debian 12's libpam 1.5.2
# (pam_echo prints its arguments with one blank between them): the words
# after 'session optional pam_echo.so' are what the module was given.

BRACKETS = [
    ("[hello world]", ["hello world"]),
    ("[a\\]b]", ["a]b"]),  # '\]' is a ']' that does not end the word
    ("[a\\\\]b]", ["a\\]b"]),  # only the backslash right before ']' goes
    ("x[y]z", ["x[y]z"]),  # a word that does not start with '[' is kept whole
    ("<[a\\]b]>", ["<[a\\]b]>"]),
    ("[a]b", ["a", "b"]),  # the next word starts right after the ']'
    ("[a[b]c]", ["a[b", "c]"]),  # the first ']' ends the word
    ("> [] <", [">", "", "<"]),  # an empty word
    ("> [a b  \n", [">", "a b  \n"]),  # unclosed: to the end of the line, newline too
    ("> [a b  ", [">", "a b  "]),  # the file's last line, without a newline
    ("> [a b  # comment\n", [">", "a b  "]),
]


@pytest.mark.parametrize("words,expected", BRACKETS)
def test_a_bracketed_word_is_taken_as_libpam_takes_it(words, expected):
    for blank_ends_line in (True, False):
        (statement,) = stacks.parse("session optional pam_echo.so " + words, blank_ends_line)
        assert statement.texts == ["session", "optional", "pam_echo.so", *expected]


@pytest.mark.parametrize(
    "blank_ends_line,expected", [(False, "a      b"), (True, "a  b")], ids=["1.5", "1.6+"]
)
def test_a_bracketed_word_across_a_continued_line(blank_ends_line, expected):
    """Linux-PAM up to 1.5 keeps the blanks that start the next physical
    line (_pam_assemble_line reads it into the buffer whole; measured:
    'a', 6 blanks, 'b'), 1.6.0 and later skip them (_pam_str_trim)."""
    text = "session optional pam_echo.so > [a \\\n    b] <\n"
    (statement,) = stacks.parse(text, blank_ends_line)
    assert statement.texts == ["session", "optional", "pam_echo.so", ">", expected, "<"]


@pytest.mark.parametrize(
    "text",
    [
        "session optional [pam_keyinit.so] [force] revoke\n",
        "[session] [optional] [/lib/security/pam_keyinit.so] force [revoke]\n",
        "session [success=ok default=ignore] [pam_keyinit.so]force revoke\n",
        "[-session] optional pam_keyinit.so force revoke\n",
    ],
)
def test_check_reads_a_bracketed_keyinit_line(tmp_path, text):
    """Every field of a line is one _pam_tokenize word, brackets stripped:
    type, control, module and arguments alike."""
    (line,) = lines_of(tmp_path, text)
    assert (line.type, line.name, line.args) == ("session", "pam_keyinit.so", ["force", "revoke"])
    assert line.dash is text.startswith("[-")


def test_a_bracketed_control_is_still_a_control(tmp_path):
    (line,) = lines_of(tmp_path, "session [success=ok default=ignore] pam_keyinit.so\n")
    assert line.control == "success=ok default=ignore" and line.name == "pam_keyinit.so"


def test_a_bracketed_pam_python_line_runs_pam_pykeyinit(tmp_path):
    (line,) = lines_of(tmp_path, "session optional [pam_python.so] [pam_pykeyinit.py] [force]\n")
    assert line.ours and line.options() == ["force"]


@pytest.mark.parametrize(
    "text",
    [
        "session [include] [part]\n",
        "session [substack] part\n",
        "[@include] part\n",
        "@include [part]\n",
    ],
)
def test_a_bracketed_include(tmp_path, text):
    """Measured: 'session [include] [FILE]', '@include [FILE]' and
    '[@include] FILE' all read FILE (Debian's 031_pam_include takes its
    words from _pam_StrTok too)."""
    (tmp_path / "svc").write_text(text)
    (tmp_path / "part").write_text("session optional pam_keyinit.so\n")
    lines, findings = stacks.Reader(stacks.Rules((tmp_path,), debian_include=True)).read("svc")
    assert [x.name for x in lines] == ["pam_keyinit.so"] and findings == []


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "session optional [pam_keyinit.so] force revoke\n",
            f"session optional {OURS} force revoke\n",
        ),
        (
            "session\toptional [/lib/security/pam_keyinit.so]\t[force]  # c\n",
            f"session\toptional {OURS}\t[force]  # c\n",
        ),
        # the next word followed the ']' directly: a blank keeps it apart
        (
            "session optional [pam_keyinit.so]force revoke\n",
            f"session optional {OURS} force revoke\n",
        ),
        ("[session][optional][pam_keyinit.so][force]", f"[session][optional]{OURS} [force]"),
        # unclosed on the last line, without a newline: libpam's word is pam_keyinit.so
        ("session optional [pam_keyinit.so", f"session optional {OURS}"),
        # a word across a continued line: its part on the next line goes, the backslash stays
        (
            "session optional [/a \\\n  b/pam_keyinit.so] force\n",
            f"session optional {OURS}\\\n   force\n",
        ),
    ],
)
def test_convert_replaces_a_bracketed_module_word_brackets_and_all(tmp_path, text, expected):
    """'[pam_keyinit.so]' is libpam's pam_keyinit.so: convert replaces the
    word with its brackets (inside them 'pam_python.so MODULE' would be one
    word, a module path with a blank), and check then reads pam_pykeyinit."""
    assert keyinit_lines(lines_of(tmp_path, text)) == [(1, "session", False)]
    converted = stacks.convert_text(text, "pam_pykeyinit.py")
    assert converted == expected
    (line,) = lines_of(tmp_path, converted)
    assert line.ours and line.options() == [w for w in ("force", "revoke") if w in text]


@pytest.mark.parametrize(
    "text",
    [
        "session optional [pam_keyinit.so\n",  # libpam's word is 'pam_keyinit.so\n'
        "session optional [pam_keyinit.so ] force\n",
        "session optional [pam_keyinit.so\\]] force\n",
        "session optional x[pam_keyinit.so]\n",
    ],
)
def test_a_bracketed_word_that_is_not_pam_keyinit_is_left_alone(tmp_path, text):
    assert stacks.convert_text(text, "pam_pykeyinit.py") == text
    assert keyinit_lines(lines_of(tmp_path, text)) == []


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
    assert findings_of(stacks.Rules((tmp_path,), debian_include=True)) == [
        ("error", f"cannot read {tmp_path}/fifo: not a regular file; Linux-PAM fails the service")
    ]


# -- continued lines: the rule of the Linux-PAM version ------------------------

CONTINUED = "session optional pam_keyinit.so \\\n{between}force\nsession optional pam_env.so\n"


@pytest.mark.parametrize("between", ["\n", "# a comment\n", "   \n"])
def test_a_blank_or_comment_line_ends_a_continued_line_since_1_6(tmp_path, between):
    """Measured with pamtester and pam_echo: libpam 1.5.2 joins 'force' to
    the keyinit line, 1.7.0 ends the line at the blank and reads 'force'
    as a line of its own (an unknown module type)."""
    text = CONTINUED.format(between=between)
    (tmp_path / "svc").write_text(text)
    old = stacks.Reader(stacks.Rules((tmp_path,), blank_ends_line=False)).read("svc")
    assert [(x.name, x.args) for x in old[0]] == [
        ("pam_keyinit.so", ["force"]),
        ("pam_env.so", []),
    ]
    assert old[1] == []
    new = stacks.Reader(stacks.Rules((tmp_path,), blank_ends_line=True)).read("svc")
    assert [(x.name, x.args) for x in new[0]] == [("pam_keyinit.so", []), ("pam_env.so", [])]
    assert [(f.line, f.message) for f in new[1]] == [
        (
            3,
            "unknown module type 'force': Linux-PAM puts a module that always fails in the"
            " auth stack in its place",
        )
    ]


@pytest.mark.parametrize("blank_ends_line", [True, False])
def test_a_file_that_ends_inside_a_continued_line_fails_the_service(tmp_path, blank_ends_line):
    (tmp_path / "svc").write_text("session optional pam_env.so\nsession optional \\\n")
    lines, findings = stacks.Reader(stacks.Rules((tmp_path,), False, blank_ends_line)).read("svc")
    assert [x.name for x in lines] == ["pam_env.so"]
    assert [(f.severity, f.line) for f in findings] == [("error", 2)]
    assert "ends inside a continued line" in findings[0].message


def test_an_unknown_type_is_a_failing_handler_in_the_stack_that_reads_it(tmp_path):
    (tmp_path / "svc").write_text("bogus optional pam_env.so\nsession include part\n")
    (tmp_path / "part").write_text("bogus optional pam_env.so\n")
    assert [m for _, m in findings_of(stacks.Rules((tmp_path,)))] == [
        "unknown module type 'bogus': Linux-PAM puts a module that always fails in the"
        " auth stack in its place",
        "unknown module type 'bogus': Linux-PAM puts a module that always fails in the"
        " session stack in its place",
    ]


# -- folders: /etc/pam.d, then the vendor folder -------------------------------


@pytest.fixture
def folders(tmp_path):
    etc, vendor = tmp_path / "etc", tmp_path / "vendor"
    etc.mkdir()
    vendor.mkdir()
    return etc, vendor


def test_a_service_is_read_from_the_first_folder_that_has_it(folders):
    etc, vendor = folders
    (vendor / "svc").write_text("session optional pam_keyinit.so force revoke\n")
    rules = stacks.Rules((etc, vendor))
    lines, findings = stacks.Reader(rules).read("svc")
    assert [(x.file, x.name) for x in lines] == [(str(vendor / "svc"), "pam_keyinit.so")]
    assert [(f.file, f.message) for f in findings] == [
        (str(vendor / "svc"), f"read from the vendor folder: there is no {etc / 'svc'}")
    ]
    (etc / "svc").write_text("session optional pam_env.so\n")
    lines, findings = stacks.Reader(rules).read("svc")
    assert [(x.file, x.name) for x in lines] == [(str(etc / "svc"), "pam_env.so")]
    assert findings == []
    (etc / "svc").unlink()
    (etc / "svc").symlink_to(etc / "gone")  # fopen() fails on it: the vendor file is read
    assert stacks.Reader(rules).read("svc")[0][0].file == str(vendor / "svc")


@pytest.mark.parametrize("debian", [True, False], ids=["debian", "upstream"])
@pytest.mark.parametrize("how", ["@include part", "session include part", "session substack part"])
def test_an_include_of_a_vendor_file(folders, debian, how):
    """Debian's libpam (031_pam_include) reads an include from /etc/pam.d
    only, upstream's from the vendor folder too (_pam_open_config_file)."""
    etc, vendor = folders
    (etc / "svc").write_text(how + "\n")
    (vendor / "part").write_text("session optional pam_keyinit.so\n")
    rules = stacks.Rules((etc, vendor), debian_include=debian)
    lines, findings = stacks.Reader(rules).read("svc")
    if debian:
        assert lines == []
        assert [(f.severity, f.line, f.message) for f in findings] == [
            (
                "error",
                1,
                f"no {etc / 'part'}; Debian's libpam reads an included file from {etc} only,"
                f" not {vendor / 'part'}: Linux-PAM fails the service",
            )
        ]
    elif how.startswith("@"):  # upstream has no @include: a failing auth handler
        assert lines == [] and "unknown module type '@include'" in findings[0].message
    else:
        assert [(x.file, x.name) for x in lines] == [(str(vendor / "part"), "pam_keyinit.so")]
        assert findings == []


@pytest.mark.parametrize("word", ["@INCLUDE", "-@include"])
def test_debians_include_word_in_any_case(tmp_path, word):
    (tmp_path / "svc").write_text(f"{word} part\n")
    (tmp_path / "part").write_text("session optional pam_keyinit.so\n")
    lines, _ = stacks.Reader(stacks.Rules((tmp_path,), debian_include=True)).read("svc")
    assert [x.name for x in lines] == ["pam_keyinit.so"]


def test_a_service_name_is_lowered_as_pam_start_lowers_it(folders):
    etc, vendor = folders
    (etc / "svc").write_text("session optional pam_keyinit.so\n")
    (etc / "Other").write_text("session optional pam_keyinit.so\n")
    rules = stacks.Rules((etc, vendor))
    assert stacks.service_path(rules, "SVC") == ("svc", etc / "svc")
    with pytest.raises(stacks.InputError, match="libpam lowers service names"):
        stacks.service_path(rules, "Other")


def test_every_service_of_both_folders_is_listed_once(folders):
    etc, vendor = folders
    for folder, name in ((etc, "a"), (vendor, "a"), (vendor, "b"), (vendor, "common-x")):
        (folder / name).write_text("\n")
    assert stacks.services(stacks.Rules((etc, vendor)), []) == ["a", "b"]
    assert stacks.services(stacks.Rules((etc, vendor / "none")), []) == ["a"]
    with pytest.raises(stacks.InputError, match="no such folder"):
        stacks.services(stacks.Rules((vendor / "none", etc)), [])


def test_convert_makes_the_first_folders_file_from_the_vendor_file(folders):
    etc, vendor = folders
    text = "# vendor\nsession optional pam_keyinit.so force revoke\n"
    (vendor / "svc").write_text(text)
    (vendor / "svc").chmod(0o640)
    rules = stacks.Rules((etc, vendor))
    c = stacks.convert(rules, "svc", "pam_pykeyinit.py")
    assert (c.path, c.source, c.not_written) == (etc / "svc", vendor / "svc", "")
    head = c.diff().splitlines()[:2]
    assert head == [
        f"--- a{vendor}/svc\t(vendor file, left as it is)",
        f"+++ b{etc}/svc\t(new file)",
    ]
    stacks.write(c)
    assert (vendor / "svc").read_text() == text
    assert (etc / "svc").read_text() == text.replace("pam_keyinit.so", OURS)
    assert (etc / "svc").stat().st_mode & 0o7777 == 0o640
    assert sorted(os.listdir(etc)) == ["svc"]
    again = stacks.convert(rules, "svc", "pam_pykeyinit.py")
    assert again.source is None and again.new == again.old  # now the first folder's


def test_convert_does_not_write_over_a_name_taken_meanwhile(folders):
    etc, vendor = folders
    (vendor / "svc").write_text("session optional pam_keyinit.so\n")
    c = stacks.convert(stacks.Rules((etc, vendor)), "svc", "pam_pykeyinit.py")
    (etc / "svc").write_text("mine\n")
    with pytest.raises(FileExistsError):
        stacks.write(c)
    assert (etc / "svc").read_text() == "mine\n"
    assert sorted(os.listdir(etc)) == ["svc"]


def test_convert_names_a_dangling_link_in_the_first_folder(folders):
    etc, vendor = folders
    (vendor / "svc").write_text("session optional pam_keyinit.so\n")
    (etc / "svc").symlink_to(etc / "gone")
    c = stacks.convert(stacks.Rules((etc, vendor)), "svc", "pam_pykeyinit.py")
    assert (
        c.not_written
        == f"{etc / 'svc'} exists but cannot be opened: libpam reads {vendor / 'svc'} instead"
    )


def test_rules_for_the_folders_given(monkeypatch, folders):
    etc, vendor = folders
    system = stacks.Rules((Path("/etc/pam.d"), Path("/usr/lib/pam.d")), True, False)
    monkeypatch.setattr(stacks, "system_rules", lambda: system)
    assert stacks.rules() == system
    assert stacks.rules(etc) == stacks.Rules((etc,), True, False)
    assert stacks.rules(etc, vendor) == stacks.Rules((etc, vendor), True, False)
    assert stacks.rules(None, vendor).dirs == (Path("/etc/pam.d"), vendor)


# -- the stacks libpam runs: a module type a file leaves out is other's ---------


@pytest.mark.parametrize(
    "own,others",
    [
        (None, True),  # no file (measured: common-session's pam_unix ran, through other)
        ("auth required pam_permit.so\n", True),  # measured the same
        ("session required pam_deny.so\n", False),  # measured: rc 1, its own stack
        ("session required pam_nonexistent.so\n", False),  # measured: "Module is unknown"
        ("session required\n", False),  # a line libpam cannot use: a failing handler
        ("session substack part\n", False),  # a substack is a handler of its own
        ("session include part\n", True),  # an include of no session line adds none
        ("session include missing\n", False),  # a failing include: a failing handler
    ],
)
def test_a_module_type_a_file_leaves_out_is_others(tmp_path, own, others):
    """pam_dispatch.c: a type with no handler from the service's file runs
    other's handlers of that type; a service without a file runs other's
    whole stack."""
    (tmp_path / "other").write_text("auth required pam_env.so\nsession optional pam_keyinit.so\n")
    (tmp_path / "part").write_text("auth required pam_permit.so\n")
    if own is not None:
        (tmp_path / "svc").write_text(own)
    lines = stacks.Reader(stacks.Rules((tmp_path,))).dispatched("svc")
    session = [(x.file, x.name) for x in lines if x.type == "session"]
    assert ((str(tmp_path / "other"), "pam_keyinit.so") in session) is others, session
    assert [x.name for x in lines if x.type == "auth"] == (
        ["pam_env.so"] if own is None or not own.startswith("auth") else ["pam_permit.so"]
    )


# -- nesting: what counts towards libpam's limit, by Linux-PAM version ---------
# (tests/pam/test_stacks_libpam.py measures the host's libpam; this shows
# both rules on any host)


@pytest.mark.parametrize("every_inclusion_counts", [True, False])
@pytest.mark.parametrize("kind", ["session include", "session substack", "@include"])
def test_nesting_deeper_than_libpam_runs_is_an_error(tmp_path, kind, every_inclusion_counts):
    rules = stacks.Rules((tmp_path,), True, every_inclusion_counts=every_inclusion_counts)
    counts = kind.endswith("substack") or every_inclusion_counts
    for depth in (stacks.MAX_NESTED, stacks.MAX_NESTED + 1):
        current = tmp_path / "svc"
        for number in range(1, depth + 1):
            current.write_text(f"{kind} {tmp_path}/{depth}-{number}\n")
            current = tmp_path / f"{depth}-{number}"
        current.write_text("session required pam_permit.so\n")
        lines, findings = stacks.Reader(rules).read("svc")
        fails = depth > stacks.MAX_NESTED and counts
        assert [f.severity for f in findings] == (["error"] if fails else []), findings
        assert [x.name for x in lines] == ([] if fails else ["pam_permit.so"])
