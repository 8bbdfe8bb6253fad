"""Bad input to the pykeyinit command: whatever a stack folder or the
command line holds, it answers with the documented code, never a traceback.
In-process (cli.main), without root, on temporary folders only: the default
PAM folder is pointed at one for the argument fuzzing, and `run` is left out
of it so that nothing is executed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pam_pykeyinit import cli, stacks

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
        "[pam_keyinit.so]",
        "[pam_keyinit.so]force",
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


def assert_no_traceback(err: str, argv: list[str]) -> None:
    """No traceback in what the command wrote to stderr.

    A usage error quotes the caller's words back (argparse: ``invalid choice:
    'Traceback'``), so they are taken out first, and the test looks for the
    header line Python prints above a traceback, not for a word.
    """
    for word in sorted(argv, key=len, reverse=True):
        if word:
            err = err.replace(word, "")
    assert not re.search(r"^Traceback \(most recent call last\):$", err, re.M), err


def run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = cli.main(argv)
    except SystemExit as exit:  # argparse: --help, --version, usage errors
        rc = exit.code if isinstance(exit.code, int) else 2
    out = capsys.readouterr()
    assert_no_traceback(out.err, argv)
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
        present = set(os.listdir(pam))
        argv = ["check", "--pam-dir", str(pam), "--module-dir", str(modules)]
        rc, out = run([*argv, "--python", str(python), "--json", *named], capsys)
    if any(name not in present for name in named):  # "", "../x", "nosuch", a missing one
        assert (rc, out) == (2, "")
        return
    findings = json.loads(out)
    assert all(f["severity"] in ("error", "warning", "info") for f in findings)
    assert rc == (1 if any(f["severity"] != "info" for f in findings) else 0)


def converted_as_documented(old: str, new: str) -> bool:
    """The oracle for --write, from outside stacks.py: the same lines, and
    each changed line is the old one with one pam_keyinit.so module word
    replaced by pam_python.so pam_pykeyinit.py (at any of its places: the
    same word may also stand in another column); a bracketed one, which
    libpam takes without its brackets ('\\]' is ']'), brackets and all, with
    a blank after it where the next word followed its ']' directly."""
    ours = "pam_python.so pam_pykeyinit.py"
    rows_old, rows_new = old.split("\n"), new.split("\n")
    if len(rows_old) != len(rows_new):
        return False
    for a, b in zip(rows_old, rows_new):
        if a == b:
            continue
        words = {w for w in a.split() if os.path.basename(w) == "pam_keyinit.so"}
        words |= {
            m[0]
            for m in re.finditer(r"\[(?:[^\]\\]|\\\]|\\(?!\]))*\]", a)
            if os.path.basename(m[0][1:-1].replace("\\]", "]")) == "pam_keyinit.so"
        }
        places = [(m.start(), w) for w in words for m in re.finditer(re.escape(w), a)]
        replaced = [a[:i] + ours + sep + a[i + len(w) :] for i, w in places for sep in ("", " ")]
        if b not in replaced:
            return False
    return True


@SETTINGS
@given(
    files=st.dictionaries(st.sampled_from(NAMES), FILE, min_size=1, max_size=3), write=st.booleans()
)
# the same word as control and module: convert rewrites the module column
@example(files={"login": b"session pam_keyinit.so pam_keyinit.so"}, write=True)
def test_convert_answers_with_a_diff_a_refusal_or_2(capsys, files, write):
    with folder(files, []) as (pam, _, _):
        argv = ["convert", "--pam-dir", str(pam), *(["--write"] if write else []), *files]
        rc, out = run(argv, capsys)
        after = {name: (pam / name).read_bytes() for name in files}
        left = sorted(os.listdir(pam))
    assert left == sorted(files)  # no temporary file left, nothing else made
    texts = {}
    for name, data in files.items():
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if len(texts) < len(files):  # one file that is not text: nothing is read further
        assert (rc, out, after) == (2, "", files)
        return
    managed = {n for n, t in texts.items() if "# end of pam-auth-update config" in t}
    managed |= {n for n, t in texts.items() if "# here are the per-package modules" in t}
    assert rc == (1 if managed else 0)
    assert out == "" or out.startswith("--- a/")
    for name, text in texts.items():
        got = after[name].decode("utf-8")
        if not write or name in managed:
            assert got == text
        else:
            assert converted_as_documented(text, got), (text, got)
            assert stacks.convert_text(got, "pam_pykeyinit.py") == got  # none left


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
                    "--vendor-dir",
                    "--write",
                    "--w",
                    "--module",
                    "--python",
                    "--module-dir",
                    "--help",
                    "--version",
                    "-x",
                    "/nonexistent",
                    "login",
                    "",
                    "--",
                ]
            ),
            st.text(max_size=20),
        ),
        max_size=5,
    )
)
# argparse quotes a word it refuses: the word "Traceback" is not a traceback
@example(argv=["Traceback"])
@example(argv=["check", "Traceback (most recent call last):"])
def test_arguments_get_the_documented_code(capsys, argv):
    if "run" in argv:  # never execute anything
        return
    top = Path(tempfile.mkdtemp(prefix="pykt-args-"))
    try:
        (top / "login").write_text("session optional pam_keyinit.so\n")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(stacks, "PAM_DIR", top)
            patch.setattr(stacks, "system_rules", lambda: stacks.Rules((top,)))
            try:
                cli.parser().parse_args(argv)
                accepted = 0
            except SystemExit as exit:
                accepted = 1 if exit.code else 0
            capsys.readouterr()
            rc, out = run(argv, capsys)
        # the default folder was the temporary one: --write touched nothing else
        assert sorted(os.listdir(top)) == ["login"]
    finally:
        shutil.rmtree(top)
    if accepted:
        assert (rc, out) == (2, "")  # a usage error, on stderr
    else:
        assert rc in (0, 1, 2)  # the subcommand's own answer; 70 would be a bug


# -- the command cannot be pointed at the wrong file ---------------------------

STACK = "session optional pam_keyinit.so force revoke\n"
CONVERTED = "session optional pam_python.so pam_pykeyinit.py force revoke\n"


def run_err(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = cli.main(argv)
    except SystemExit as exit:
        rc = exit.code if isinstance(exit.code, int) else -1
    out = capsys.readouterr()
    assert_no_traceback(out.err, argv)
    return rc, out.out, out.err


@pytest.mark.parametrize("name", ["../../../etc/hostname", "/etc/hostname", "..", ".", ""])
@pytest.mark.parametrize("subcommand", ["check", "convert"])
def test_a_service_is_a_file_name_of_the_folder(tmp_path, capsys, subcommand, name):
    (tmp_path / "pam.d").mkdir()
    rc, out, err = run_err([subcommand, "--pam-dir", str(tmp_path / "pam.d"), name], capsys)
    assert (rc, out) == (2, "")
    assert f"{name!r} is not a service name" in err


@pytest.mark.parametrize("word", ["--w", "--wr", "--writ", "--mod=x", "--pam=/tmp"])
def test_options_are_never_abbreviated(tmp_path, capsys, word):
    (tmp_path / "svc").write_text(STACK)
    rc, out, err = run_err(["convert", "--pam-dir", str(tmp_path), word, "svc"], capsys)
    assert (rc, out) == (2, "") and "unrecognized arguments" in err
    assert (tmp_path / "svc").read_text() == STACK


def test_a_symlink_out_of_the_folder_is_not_written(tmp_path, capsys):
    pam, elsewhere = tmp_path / "pam.d", tmp_path / "elsewhere"
    pam.mkdir()
    elsewhere.mkdir()
    (elsewhere / "target").write_text(STACK)
    (pam / "svc").symlink_to(elsewhere / "target")
    rc, out, err = run_err(["convert", "--pam-dir", str(pam), "--write", "svc"], capsys)
    assert rc == 1 and out.startswith("--- a/")  # the diff is shown, nothing written
    assert f"is a symbolic link to {elsewhere / 'target'}, outside {pam}" in err
    assert (elsewhere / "target").read_text() == STACK
    assert (pam / "svc").is_symlink()


def test_a_symlink_inside_the_folder_writes_its_target(tmp_path, capsys):
    (tmp_path / "real").write_text(STACK)
    (tmp_path / "svc").symlink_to("real")
    rc, _, err = run_err(["convert", "--pam-dir", str(tmp_path), "--write", "svc"], capsys)
    assert rc == 0, err
    assert f"wrote {tmp_path / 'real'}" in err
    assert (tmp_path / "real").read_text() == CONVERTED and (tmp_path / "svc").is_symlink()


@pytest.mark.parametrize("kind", ["fifo", "device", "big", "not-utf8"])
@pytest.mark.parametrize("subcommand", ["check", "convert"])
def test_reads_stop_at_what_is_not_a_small_regular_file(tmp_path, capsys, subcommand, kind):
    svc = tmp_path / "svc"
    if kind == "fifo":
        os.mkfifo(svc)
    elif kind == "device":
        svc.symlink_to("/dev/zero")
    elif kind == "big":
        svc.write_bytes(STACK.encode() + b"#" * (1 << 20))
    else:
        svc.write_bytes(b"session optional pam_keyinit.so \xff\n")
    argv = [subcommand, "--pam-dir", str(tmp_path)]
    if subcommand == "check":
        argv += ["--module-dir", str(tmp_path), "--python", "/nonexistent"]
    rc, out, err = run_err([*argv, "svc"], capsys)
    if subcommand == "convert":
        assert (rc, out) == (2, ""), err
        reason = {"big": "larger than", "not-utf8": "not UTF-8"}.get(kind, "not a regular file")
        assert f"cannot read {svc}: " in err and reason in err
    elif kind == "not-utf8":  # check reads it as libpam would, bytes and all
        assert rc == 1 and "session keyring from pam_keyinit.so" in out, out
    else:
        reason = "larger than" if kind == "big" else "not a regular file"
        assert rc == 1 and f"cannot read {svc}: {reason}" in out


def test_an_unexpected_error_is_one_line_and_70(tmp_path, capsys, monkeypatch):
    from pam_pykeyinit import stacks

    def broken(*args: object) -> None:
        raise OSError(5, "a bug that looks like I/O")

    monkeypatch.setattr(stacks, "check", broken)
    rc, out, err = run_err(["check", "--pam-dir", str(tmp_path)], capsys)
    assert (rc, out) == (70, "")
    assert err == (
        "pykeyinit check: internal error OSError: [Errno 5] a bug that looks like I/O;"
        " please report it\n"
    )


@pytest.mark.parametrize("argv", [["run"], ["run", "--bogus", "--", "true"], ["run", "--"]])
def test_runs_own_usage_failures_are_125(capsys, argv):
    rc, out, err = run_err(argv, capsys)
    assert (rc, out) == (125, "") and err, err
