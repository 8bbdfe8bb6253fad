"""The documentation against what runs: links, commands, stack lines.

- every relative link of README.md and doc/*.md resolves: the file, and
  its #anchor by GitHub's rules for heading anchors;
- every command of the README's "Try it" and "Install" sections is run as
  written: "Try it" by .ci/run, which reads the section from the README;
  each Install command by a test or guest script that reads it from the
  README at run time (tests/pam/packaging/test_deb.py, tools/vm/run.sh);
- every stack line shown in the README, doc/*.md and the man pages parses
  with pam_pykeyinit.stacks, as check and convert read it: one complete
  module line of a known type and control, naming pam_keyinit.so or
  pam_python.so with the project's module file, with options the module
  knows (tests/pam/test_doc_examples.py loads them with the real libpam);
- every pykeyinit example is one that tests/pam/test_doc_examples.py runs,
  and its arguments are ones pykeyinit's parser takes.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pam_pykeyinit import cli, stacks
from pam_pykeyinit.keyinit import C_WORDS, KNOWN

from .. import doclib
from ..doclib import MAN_PAGES, MARKDOWN, README, REPO

pytestmark = pytest.mark.unit

LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")
CONTROLS = ("required", "requisite", "sufficient", "optional")
DOCS = [*MARKDOWN, *MAN_PAGES]


def prose(path: Path) -> str:
    """The Markdown text without its code blocks and code spans, which
    hold no links."""
    text = path.read_text()
    text = re.sub(r"^(`{3,}).*?^\1\s*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation out (what is
    not a letter, digit, blank, '-' or '_'), each blank a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The heading anchors of a Markdown file; a repeated one gets -1, -2..."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    text = re.sub(r"^(`{3,}).*?^\1\s*$", "", path.read_text(), flags=re.M | re.S)
    for line in text.splitlines():
        heading = doclib.HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(path: Path) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in LINK.finditer(prose(path))]


def test_slug_follows_githubs_rules() -> None:
    assert slug("The `pykeyinit` command") == "the-pykeyinit-command"
    assert slug("3005: a fixed start-up") == "3005-a-fixed-start-up"
    assert slug("JupyterHub, and hosts with Debian's build") == (
        "jupyterhub-and-hosts-with-debians-build"
    )
    assert slug("Fedora, RHEL and derivatives") == "fedora-rhel-and-derivatives"


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path: Path) -> None:
    checked = 0
    for text, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{path.name}: [{text}]({target}): no {dest}"
        if anchor:
            assert dest.suffix == ".md", (
                f"{path.name}: [{text}]({target}): an anchor into a non-Markdown file"
            )
            assert anchor in anchors(dest), (
                f"{path.name}: [{text}]({target}): no heading #{anchor} in {dest.name}"
                f" (it has {sorted(anchors(dest))})"
            )
        checked += 1
    assert checked, f"{path.name} has no relative link"


def test_a_broken_link_is_seen(tmp_path: Path) -> None:
    """The link check itself: a missing file and a missing anchor fail."""
    (tmp_path / "a.md").write_text("# Top\n\n## Two words\n\n[x](b.md) [y](#two-word) [z](#top)\n")
    found = links(tmp_path / "a.md")
    assert found == [("x", "b.md"), ("y", "#two-word"), ("z", "#top")]
    assert anchors(tmp_path / "a.md") == {"top", "two-words"}


def test_readme_links_into_doc() -> None:
    """The README points at each doc/ page (its depth lives there)."""
    targets = {t.partition("#")[0] for _, t in links(README)}
    for page in MARKDOWN[1:]:
        assert f"doc/{page.name}" in targets, f"README.md does not link doc/{page.name}"


# --- the README's commands -------------------------------------------------


def consumers() -> dict[str, list[str]]:
    """The Install commands each consumer takes from the README, by the
    prefix it asks doclib for: test_deb.py's readme("PREFIX"), run.sh's
    `python3 -m tests.doclib Install "PREFIX"`."""
    deb = (REPO / "tests" / "pam" / "packaging" / "test_deb.py").read_text()
    vm = (REPO / "tools" / "vm" / "run.sh").read_text()
    return {
        "tests/pam/packaging/test_deb.py": re.findall(r'\breadme\("([^"]+)"', deb),
        "tools/vm/run.sh": re.findall(r'-m tests\.doclib Install "([^"]+)"', vm),
    }


def test_ci_runs_try_it_from_the_readme() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r'-m tests\.doclib "Try it"\)', ci), ".ci/run does not read Try it"
    assert re.search(r'^\s*bash -c "\$command"$', ci, re.M), ".ci/run does not run each command"
    commands = doclib.section_commands("Try it")
    assert commands[:2] == ["make demo", "make check"], commands
    # CI's other duties come from the same list: the suite again in a root
    # of the other suite, and the packages in guests of both
    for duty in ("make check-suite", "make vm-test"):
        assert duty in commands, f"Try it lost {duty!r}: CI would no longer run it"
    for command in commands:
        assert re.fullmatch(r"make [a-z-]+", command), f"Try it: {command!r} is not a make target"
        target = command.split()[1]
        makefile = (REPO / "Makefile").read_text()
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"no make target {target}"


def test_every_install_command_is_run_as_written() -> None:
    commands = doclib.section_commands("Install")
    assert "apt install ./dist/install/*.deb" in commands
    taken = consumers()
    assert all(taken.values()), taken
    for command in commands:
        by = [f for f, prefixes in taken.items() for p in prefixes if command.startswith(p)]
        assert by, f"README, Install: {command!r} is run by no test or CI script"
    for file, prefixes in taken.items():
        for prefix in prefixes:  # each asks for exactly one command
            assert doclib.readme_command("Install", prefix), file


def test_commands_are_read_as_the_shell_reads_them() -> None:
    block = doclib.Block(
        README, 1, "sh", ["make deb   # both", "apt install \\", "  ./x.deb", "# a note"]
    )
    assert doclib.commands(block) == ["make deb", "apt install ./x.deb"]


# --- stack lines -----------------------------------------------------------


def stack_cases() -> list[doclib.StackLine]:
    return [s for path in DOCS for s in doclib.stack_lines(path)]


def check_stack_line(text: str) -> None:
    (statement,) = stacks.parse(text + "\n")
    assert statement.complete
    kind = statement.module_type()
    assert kind is not None, "not a module line of a known type"
    control, module, *args = statement.texts[1:]
    assert control in CONTROLS or "=" in control, f"control {control!r}"
    if module == "pam_python.so":
        assert args and stacks.is_pykeyinit_file(args[0], "/lib/security/"), (
            f"pam_python.so runs {args[:1]}, not pam_pykeyinit"
        )
        options = args[1:]
        known: tuple[str, ...] = KNOWN
    else:
        assert module == "pam_keyinit.so", f"module {module!r}: not one the docs should show"
        options, known = args, C_WORDS
    unknown = [o for o in options if o not in known]
    assert not unknown, f"unknown options {unknown}"


def test_the_documents_show_stack_lines() -> None:
    wheres = {s.where.split(":")[0] for s in stack_cases()}
    assert {"README.md", "doc/pam_pykeyinit.8.rst", "doc/install.md"} <= wheres, wheres


@pytest.mark.parametrize("case", stack_cases(), ids=lambda s: s.where)
def test_stack_line_parses(case: doclib.StackLine) -> None:
    check_stack_line(case.text)


@pytest.mark.parametrize(
    "text",
    [
        "session optional pam_python.so pam_pykeyinit.py forse revoke",
        "sesion optional pam_python.so pam_pykeyinit.py force",
        "session optinal pam_keyinit.so force",
        "session optional pam_python.so pam_pykeyinit.so force",
        "session optional pam_keyinit.so force=auto",
        "session optional pam_python.so [pam_pykeyinit.py force",
    ],
)
def test_a_broken_stack_line_is_seen(text: str) -> None:
    with pytest.raises((AssertionError, ValueError)):
        check_stack_line(text)


# --- pykeyinit examples ----------------------------------------------------


def example_cases() -> list[doclib.Example]:
    return [e for path in DOCS for e in doclib.examples(path)]


def test_every_pykeyinit_line_is_an_example() -> None:
    """A pykeyinit command in a Markdown code block is in a console block,
    where tests/pam/test_doc_examples.py runs it."""
    stray = [line for path in MARKDOWN for line in doclib.stray_pykeyinit(path)]
    assert not stray, stray


def test_the_readme_shows_each_subcommand() -> None:
    shown = {e.command.split()[1] for e in doclib.examples(README)}
    assert shown == {"status", "check", "convert", "run"}
    man = {e.command.split()[1] for e in doclib.examples(REPO / "doc" / "pykeyinit.1.rst")}
    assert man == {"status", "check", "convert", "run"}


@pytest.mark.parametrize("case", example_cases(), ids=lambda e: e.where)
def test_example_is_a_valid_command(case: doclib.Example) -> None:
    assert case.setup in (None, "anon"), f"unknown setup {case.setup!r}"
    words = shlex.split(case.command)
    assert words[0] == "pykeyinit"
    args = cli.parser().parse_args(words[1:])  # a usage error exits (SystemExit)
    assert args is not None
