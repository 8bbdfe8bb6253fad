"""The documentation's commands and examples, as tests and CI read them.

README.md and doc/*.md are Markdown: a ```sh block holds commands, a
```pam block stack lines, a ```console block one `$ pykeyinit ...` example
with its output and its exit status, `(exit N)` (0 when it says none). An
HTML comment right above a console block, `<!-- example: SETUP -->`, names
the keyring the example starts in (tests/pam/test_doc_examples.py:
``anon``, an anonymous session keyring without the user keyring; by
default one with it linked). The man pages (doc/*.rst) are read by their
literal blocks: a line that starts with a PAM module type is a stack line,
one that runs pykeyinit an example that exits 0.

Also a command: `python3 -m tests.doclib SECTION [PREFIX]` prints the
commands of the README's section (its ```sh blocks, subsections included),
one per line, or the one command that starts with PREFIX; .ci/run and
tools/vm/run.sh take the README's commands from it, so that what they run
is what the README says.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MARKDOWN = [README, *sorted((REPO / "doc").glob("*.md"))]
MAN_PAGES = sorted((REPO / "doc").glob("*.rst"))

FENCE = re.compile(r"^(`{3,})\s*([\w-]*)\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
MARKER = re.compile(r"^<!--\s*example:\s*(\S+)\s*-->\s*$")
EXIT = re.compile(r"^\(exit (\d+)\)$")
# a module line: a type (any case, '-' allowed), then at least two words
STACK_LINE = re.compile(r"^-?(session|auth|account|password)\s+\S+\s+\S+", re.IGNORECASE)
# where a line runs pykeyinit: up to the end of the line, a quote, a
# comment or a shell operator
PYKEYINIT = re.compile(r"(?:^|[\s'\"=])(pykeyinit\s+(?:status|check|convert|run)\b[^'\"#;&|\n]*)")


@dataclass
class Block:
    path: Path
    line: int  # the first line of its content, from 1
    lang: str  # a fence's info string; "literal" for a man page's block
    lines: list[str]
    sections: list[str] = field(default_factory=list)  # the headings it sits under
    marker: str | None = None  # <!-- example: MARKER --> right above it

    def where(self, offset: int = 0) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line + offset}"


def markdown_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file."""
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        heading = HEADING.match(lines[i])
        fence = FENCE.match(lines[i])
        if heading:
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, heading.group(2))]
        elif fence:
            marker = MARKER.match(lines[i - 1]) if i else None
            end = i + 1
            while end < len(lines) and lines[end].strip() != fence.group(1):
                end += 1
            blocks.append(
                Block(
                    path,
                    i + 2,
                    fence.group(2),
                    lines[i + 1 : end],
                    [h[1] for h in headings],
                    marker.group(1) if marker else None,
                )
            )
            i = end
        i += 1
    return blocks


def literal_blocks(path: Path) -> list[Block]:
    """The literal blocks of a reStructuredText file: the indented lines
    after a paragraph that ends with '::'."""
    blocks: list[Block] = []
    lines = path.read_text().splitlines()
    for i, text in enumerate(lines):
        if not text.rstrip().endswith("::"):
            continue
        start = i + 1
        while start < len(lines) and not lines[start].strip():
            start += 1
        end = start
        while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "\t"))):
            end += 1
        content = [line.strip() for line in lines[start:end]]
        while content and not content[-1]:
            content.pop()
        if content:
            blocks.append(Block(path, start + 1, "literal", content))
    return blocks


def blocks(path: Path) -> list[Block]:
    return literal_blocks(path) if path.suffix == ".rst" else markdown_blocks(path)


def commands(block: Block) -> list[str]:
    """The commands of a ```sh block: continuation lines joined, a comment
    after a command dropped (as the shell drops it)."""
    out: list[str] = []
    pending = ""
    for text in block.lines:
        if pending:
            text = pending + " " + text.strip()
            pending = ""
        if text.rstrip().endswith("\\"):
            pending = text.rstrip()[:-1].rstrip()
            continue
        text = re.sub(r"(^|\s)#.*$", "", text).strip()
        if text:
            out.append(text)
    return out


def section_commands(section: str, path: Path = README) -> list[str]:
    """The commands of the ```sh blocks under the heading ``section`` of
    ``path``, its subsections included."""
    found = [b for b in markdown_blocks(path) if section in b.sections]
    return [c for b in found if b.lang == "sh" for c in commands(b)]


def readme_command(section: str, prefix: str) -> str:
    """The one command of the README's ``section`` that starts with
    ``prefix`` (an AssertionError if there is not exactly one)."""
    found = [c for c in section_commands(section) if c.startswith(prefix)]
    assert len(found) == 1, f"README, {section}: commands starting with {prefix!r}: {found}"
    return found[0]


@dataclass
class StackLine:
    where: str
    text: str


def stack_lines(path: Path) -> list[StackLine]:
    """The stack lines a document shows: every line of its ```pam blocks;
    in a man page, the lines of its literal blocks that start with a type."""
    out: list[StackLine] = []
    for b in blocks(path):
        for n, text in enumerate(b.lines):
            if b.lang == "pam" and text.strip() and not text.lstrip().startswith("#"):
                out.append(StackLine(b.where(n), text))
            elif b.lang == "literal" and STACK_LINE.match(text):
                out.append(StackLine(b.where(n), text))
    return out


@dataclass
class Example:
    where: str
    command: str  # the pykeyinit invocation, "pykeyinit SUBCOMMAND ..."
    exit: int
    setup: str | None


def examples(path: Path) -> list[Example]:
    """The pykeyinit examples of a document: each ```console block's `$`
    line with its `(exit N)`; each man page literal line that runs it."""
    out: list[Example] = []
    for b in blocks(path):
        if b.lang == "console":
            statuses = [int(m.group(1)) for m in map(EXIT.match, b.lines) if m]
            for n, text in enumerate(b.lines):
                if text.startswith("$ "):
                    found = PYKEYINIT.search(text[2:])
                    if found:
                        exit = statuses[-1] if statuses else 0
                        out.append(Example(b.where(n), found.group(1).strip(), exit, b.marker))
        elif b.lang == "literal":
            for n, text in enumerate(b.lines):
                found = PYKEYINIT.search(text)
                if found:
                    out.append(Example(b.where(n), found.group(1).strip(), 0, None))
    return out


def stray_pykeyinit(path: Path) -> list[str]:
    """Lines of a Markdown file's code blocks, other than console blocks,
    that run pykeyinit: examples no test would run."""
    return [
        f"{b.where(n)}: {text}"
        for b in markdown_blocks(path)
        if b.lang != "console"
        for n, text in enumerate(b.lines)
        if PYKEYINIT.search(text)
    ]


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: python3 -m tests.doclib SECTION [PREFIX]", file=sys.stderr)
        return 2
    found = [readme_command(*argv)] if len(argv) == 2 else section_commands(argv[0])
    if not found:
        print(f"README.md has no commands under {argv[0]!r}", file=sys.stderr)
        return 1
    print("\n".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
