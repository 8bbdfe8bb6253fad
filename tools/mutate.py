#!/usr/bin/env python3
"""A small mutation audit (make mutate): does the suite catch what it claims?

Each mutation below is a bug made by hand on purpose, found by a snippet of
source text that must occur exactly once in its file (not by line number:
the files change under other hands); the tool stops with status 2 when a
snippet is missing or not unique. For each mutation, a fresh copy of the
checkout (its tracked and new files, as the Makefile's SOURCE_FILES) is made
in a root-owned 0700 folder under /tmp, never the working tree: the
module's loader refuses files that anyone but root could replace, and the
working tree is someone's work. The copy gets the one mutation and runs the
tests that should catch it (a small selection per mutation, stopping at the
first failure); the report says, per mutation, "killed by TEST" or
"SURVIVED". First the union of the selections runs on an unmutated copy:
a selection that fails without a mutation proves nothing, and the tool
stops with status 2.

    tools/mutate.py [--list] [--commit REV] [NAME...]

--commit REV audits that commit's tree (git archive) instead of the
working tree: the working tree may be mid-edit.

Exit status: 0 all killed, 1 one or more survived, 2 the audit could not run.
The PAM tests create users and service files: run it as root, and not beside
another run of tests/pam.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the checkout
    old: str  # must occur exactly once in file
    new: str
    tests: tuple[str, ...]  # pytest arguments: the tests that should catch it
    why: str


MUTATIONS = (
    Mutation(
        "gid-slot-real",
        "pam_pykeyinit/keyinit.py",
        "if gid != gids[slot]:",
        "if gid != gids[REAL]:",
        ("tests/pam/conformance/test_split_ids.py",),
        "take() compares the gid with the real gid whatever slot it moves"
        " (issue 22's first survivor)",
    ),
    Mutation(
        "uid-slot-real",
        "pam_pykeyinit/keyinit.py",
        "if uid != uids[slot]:",
        "if uid != uids[REAL]:",
        ("tests/pam/conformance/test_split_ids.py",),
        "the same for the uid: a set-user-ID caller revokes as root",
    ),
    Mutation(
        "nesting-limit-plus-one",
        "pam_pykeyinit/stacks.py",
        "if level > MAX_NESTED:",
        "if level > MAX_NESTED + 1:",
        ("tests/pam/test_stacks_libpam.py", "tests/unit/test_stacks.py"),
        "check's nesting limit one level too deep (issue 22's second survivor)",
    ),
    Mutation(
        "nesting-limit-minus-one",
        "pam_pykeyinit/stacks.py",
        "if level > MAX_NESTED:",
        "if level >= MAX_NESTED:",
        ("tests/pam/test_stacks_libpam.py", "tests/unit/test_stacks.py"),
        "check's nesting limit one level too shallow",
    ),
    Mutation(
        "typed-include-every-type",
        "pam_pykeyinit/stacks.py",
        "if only is not None and kind != only:",
        "if False:",
        ("tests/pam/test_stacks_libpam.py",),
        "'TYPE include FILE' takes FILE's lines of every type (issue 22's third survivor)",
    ),
    Mutation(
        "at-include-case",
        "pam_pykeyinit/stacks.py",
        'if first.lower() == "@include" and self.rules.debian_include:',
        'if first == "@include" and self.rules.debian_include:',
        ("tests/unit/test_stacks.py",),
        "check reads '@INCLUDE' as an unknown type, where Debian's libpam takes any case",
    ),
    Mutation(
        "own-keyring-replaced",
        "pam_pykeyinit/keyinit.py",
        "if session != usession:",
        "if session == usession:",
        ("tests/pam/test_stacks.py",),
        "without 'force', a session keyring of the process's own is replaced",
    ),
    Mutation(
        "revoke-without-option",
        "pam_pykeyinit/keyinit.py",
        "return st.my_session_keyring > 0 and st.do_revoke",
        "return st.my_session_keyring > 0",
        ("tests/pam/test_stacks.py",),
        "close_session revokes the keyring without 'revoke'",
    ),
    Mutation(
        "user-session-keyring-linked",
        "pam_pykeyinit/keyinit.py",
        "k.link(KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING)",
        "k.link(KEY_SPEC_USER_SESSION_KEYRING, KEY_SPEC_SESSION_KEYRING)",
        ("tests/pam/test_stacks.py",),
        "the new session keyring gets the user-session keyring linked, not the user keyring",
    ),
)


class AuditError(Exception):
    """The audit cannot run: exit status 2."""


def source_files() -> list[str]:
    """The checkout's tracked and new files (the Makefile's SOURCE_FILES)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    return [name for name in out.decode().split("\0") if name]


def copy_tree(files: list[str]) -> Path:
    """A root-owned 0700 folder under /tmp with the files copied into it
    (a file of the index that the working tree no longer has is left out)."""
    top = Path(tempfile.mkdtemp(prefix="pykt-mutate-"))
    for name in files:
        src = REPO / name
        if not src.is_file():
            continue
        dest = top / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    return top


def archive(commit: str) -> Path:
    """A root-owned 0700 folder under /tmp holding ``commit``'s tree."""
    top = Path(tempfile.mkdtemp(prefix="pykt-mutate-"))
    tar = subprocess.run(["git", "archive", commit], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(top)], input=tar.stdout, check=True)
    return top


def copy_of(snapshot: Path) -> Path:
    """A fresh root-owned 0700 folder under /tmp holding a copy of ``snapshot``."""
    top = Path(tempfile.mkdtemp(prefix="pykt-mutate-"))
    shutil.copytree(snapshot, top, symlinks=True, dirs_exist_ok=True)
    return top


def mutated(text: str, m: Mutation) -> str:
    """``text`` with the mutation's snippet replaced; an AuditError unless
    the snippet occurs exactly once."""
    count = text.count(m.old)
    if count != 1:
        state = "not found" if count == 0 else f"found {count} times"
        raise AuditError(f"{m.name}: the snippet {m.old!r} is {state} in {m.file}")
    return text.replace(m.old, m.new)


def apply(top: Path, m: Mutation) -> None:
    path = top / m.file
    path.write_text(mutated(path.read_text(), m))


def run_tests(top: Path, tests: tuple[str, ...], first_failure: bool) -> list[str]:
    """Run ``tests`` in the copy at ``top`` with this interpreter's pytest;
    the ids of the tests that failed or erred (from pytest's JUnit XML)."""
    report = top / "mutate-report.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += ["-x"] if first_failure else []
    cmd += [f"--junitxml={report}", *tests]
    proc = subprocess.run(cmd, cwd=top, capture_output=True, text=True)
    if not report.exists():
        raise AuditError(f"pytest wrote no report ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    failed = []
    # pytest's own report, written into the root-owned 0700 copy: not untrusted
    for case in ET.parse(report).iter("testcase"):  # noqa: S314
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    if proc.returncode not in (0, 1) or (proc.returncode == 1) != bool(failed):
        raise AuditError(f"pytest exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return failed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--list", action="store_true", help="list the mutations and exit")
    p.add_argument("--commit", help="audit this commit's tree, not the working tree")
    p.add_argument("name", nargs="*", help="run only these mutations")
    args = p.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name}: {m.why} ({m.file}; {' '.join(m.tests)})")
        return 0
    known = {m.name for m in MUTATIONS}
    unknown = [n for n in args.name if n not in known]
    if unknown:
        print(f"mutate: no mutation named {', '.join(unknown)}", file=sys.stderr)
        return 2
    chosen = [m for m in MUTATIONS if not args.name or m.name in args.name]
    if os.geteuid() != 0:
        print("mutate: the PAM tests need root", file=sys.stderr)
        return 2
    # One snapshot of the checkout for the whole run, each mutation's copy
    # made from it: the baseline and every mutation see the same tree,
    # whatever is edited in the working tree meanwhile.
    snapshot = copy_tree(source_files()) if args.commit is None else archive(args.commit)
    try:
        for m in chosen:  # every snippet checked before anything runs
            mutated((snapshot / m.file).read_text(), m)
        selection = tuple(dict.fromkeys(t for m in chosen for t in m.tests))
        top = copy_of(snapshot)
        try:
            started = time.monotonic()
            failed = run_tests(top, selection, first_failure=False)
            if failed:
                raise AuditError(f"the tests fail without a mutation: {', '.join(failed)}")
            print(f"mutate: baseline passes ({time.monotonic() - started:.0f} s)", flush=True)
        finally:
            shutil.rmtree(top)
        survived = []
        for m in chosen:
            top = copy_of(snapshot)
            try:
                apply(top, m)
                started = time.monotonic()
                failed = run_tests(top, m.tests, first_failure=True)
            finally:
                shutil.rmtree(top)
            verdict = f"killed by {failed[0]}" if failed else "SURVIVED"
            print(f"mutate: {m.name}: {verdict} ({time.monotonic() - started:.0f} s)", flush=True)
            if not failed:
                survived.append(m.name)
    except AuditError as err:
        print(f"mutate: {err}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(snapshot)
    print(
        f"mutate: {len(chosen) - len(survived)} of {len(chosen)} killed"
        + (f"; survived: {', '.join(survived)}" if survived else "")
    )
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
