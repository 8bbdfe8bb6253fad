"""The documentation's examples, run: README.md, doc/*.md and the man pages.

Every stack line they show (tests/doclib.py finds them: ```pam blocks, and
module lines in the man pages' literal blocks) is loaded by the real
libpam from a service file in a temporary folder (pam_start_confdir(3),
tests/harness/pam_confdir.c), twice:
- with its module word replaced by pam_echo.so, which says the arguments
  libpam gave it: they must be what pam_pykeyinit.stacks reads (check and
  convert read stacks with it);
- as it is written, the module named existing on this system (pam_python.so
  or pam_keyinit.so where libpam looks for modules), and pam_pykeyinit's
  file named by the path of the project's module (a root-owned copy, the
  tree fixture): open_session and close_session succeed, and the probe
  after the line sees the session keyring the line made, the user's `_ses`.

Every `pykeyinit` example runs (tests/doclib.py: the `$` line of a console
block, with its `(exit N)`; a man page's literal line, exit 0) as
`python3 -m pam_pykeyinit`, with the exit status the document gives. check
and convert read a sandbox, never /etc: a copy of the system's PAM folders
given with --pam-dir and --vendor-dir (a service the documents name that
this system lacks is added from the file Debian ships: sshd, systemd-user).
status starts in an anonymous session keyring of its own, with the user
keyring linked unless the block's marker says `anon`; run's command is kept
when harmless (keyctl) and replaced by `true` otherwise (tmux).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from pam_pykeyinit import host, stacks

from .. import doclib
from ..pamlib import Users, pykeyinit, ses, user_session
from .cli.test_convert import DEBIAN_SSHD

DOCS = [*doclib.MARKDOWN, *doclib.MAN_PAGES]
# Debian's vendor file of systemd (252 in Debian 12's updates, 257 in 13),
# for a system without systemd (a suite root)
DEBIAN_SYSTEMD_USER = """\
# This file is part of systemd.
#
# Used by systemd --user instances.

@include common-account

session  required pam_selinux.so close
session  required pam_selinux.so nottys open
session  required pam_loginuid.so
session  required pam_limits.so
@include common-session-noninteractive
session  optional pam_keyinit.so force revoke
session  optional pam_systemd.so
"""
HARMLESS = ("keyctl", "true")  # commands an example of `run` may run as it is


def unique_stack_lines() -> list[doclib.StackLine]:
    seen: dict[str, doclib.StackLine] = {}
    for path in DOCS:
        for s in doclib.stack_lines(path):
            seen.setdefault(s.text, s)
    return list(seen.values())


def run_service(tool: Path, folder: Path, text: str, user: str, prefix: list[str]) -> list[str]:
    """libpam's output for a service of the one stack ``text``, read from
    ``folder``: open_session, then close_session, behind ``prefix``."""
    (folder / "svc").write_text(text)
    cmd = [*prefix, str(tool), str(folder), "svc", user, "open", "close"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize("case", unique_stack_lines(), ids=lambda s: s.where)
def test_libpam_reads_the_line_as_stacks_does(
    case: doclib.StackLine, confdir_tool: Path, tmp_path: Path
) -> None:
    (statement,) = stacks.parse(case.text + "\n")
    module, args = statement.texts[2], statement.texts[3:]
    echo = case.text.replace(f" {module}", " pam_echo.so", 1)
    assert echo != case.text
    out = run_service(confdir_tool, tmp_path, echo + "\n", "root", [])
    assert out[:3] == ["start -> 0", f"conv: {' '.join(args)}", "open -> 0 Success"], out


@pytest.mark.parametrize("case", unique_stack_lines(), ids=lambda s: s.where)
def test_the_line_opens_a_session(
    case: doclib.StackLine,
    confdir_tool: Path,
    tree: Path,
    probe: str,
    users: Users,
    tmp_path: Path,
) -> None:
    (statement,) = stacks.parse(case.text + "\n")
    module, args = statement.texts[2], statement.texts[3:]
    assert host.find_module(module) is not None, f"{module} is not where libpam looks"
    text = case.text
    if module == "pam_python.so":  # the project's module, wherever the line puts it
        text = text.replace(f" {args[0]}", f" {tree}", 1)
    user = Users.GID_USER
    out = run_service(confdir_tool, tmp_path, f"{text}\n{probe}\n", user, user_session(user))
    assert "open -> 0 Success" in out and "close -> 0 Success" in out, out
    opened = out[: out.index("open -> 0 Success")]
    assert f"conv: probe: s={ses(Users.GID_UID, Users.GID_GID)}" in opened, out


# --- pykeyinit examples ----------------------------------------------------


def example_cases() -> list[doclib.Example]:
    return [e for path in DOCS for e in doclib.examples(path)]


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the system's PAM folders (/etc/pam.d and the vendor one);
    sshd and systemd-user as Debian ships them where this system has none."""
    etc, vendor = tmp_path / "etc", tmp_path / "vendor"
    system_dirs = host.pam_config_dirs()
    shutil.copytree(system_dirs[0], etc, symlinks=True)
    if len(system_dirs) > 1 and system_dirs[1].is_dir():
        shutil.copytree(system_dirs[1], vendor, symlinks=True)
    else:
        vendor.mkdir()
    for name, folder, text in (
        ("sshd", etc, DEBIAN_SSHD),
        ("systemd-user", vendor, DEBIAN_SYSTEMD_USER),
    ):
        if not (etc / name).exists() and not (vendor / name).exists():
            (folder / name).write_text(text)
    return etc, vendor


def arguments(command: str, etc: Path, vendor: Path) -> list[str]:
    """The example's words after `pykeyinit`, in the sandbox."""
    words = shlex.split(command)[1:]
    if words[0] in ("check", "convert"):
        return [words[0], "--pam-dir", str(etc), "--vendor-dir", str(vendor), *words[1:]]
    if words[0] == "run":
        cut = words.index("--") + 1
        if words[cut] not in HARMLESS:
            return [*words[:cut], "true"]
    return words


@pytest.mark.parametrize("case", example_cases(), ids=lambda e: e.where)
def test_example_exits_as_documented(
    case: doclib.Example, sandbox: tuple[Path, Path], prerequisites: None
) -> None:
    etc, vendor = sandbox
    before = {p: p.read_bytes() for p in Path("/etc/pam.d").iterdir() if p.is_file()}
    if case.setup == "anon":
        prefix = ["keyctl", "session", "-"]
    else:
        prefix = [
            "keyctl",
            "session",
            "-",
            "sh",
            "-c",
            'keyctl link @u @s >/dev/null && exec "$@"',
            "sh",
        ]
    proc = pykeyinit(*arguments(case.command, etc, vendor), prefix=prefix)
    assert proc.returncode == case.exit, (
        f"{case.where}: {case.command}\n{proc.stdout}\n{proc.stderr}"
    )
    after = {p: p.read_bytes() for p in Path("/etc/pam.d").iterdir() if p.is_file()}
    assert after == before, "an example changed /etc/pam.d"
