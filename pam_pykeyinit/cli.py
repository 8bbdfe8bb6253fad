"""`pykeyinit`: what sessions and stacks do about keyrings (pykeyinit(1)).

    pykeyinit status [--json]
    pykeyinit check [--pam-dir DIR] [--vendor-dir DIR] [--module-dir DIR]... [--python PATH]
                    [--json] [SERVICE...]
    pykeyinit convert [--pam-dir DIR] [--vendor-dir DIR] [--module PATH] [--write] SERVICE...
    pykeyinit run [--persistent] -- COMMAND [ARGS...]

Exit codes (pykeyinit(1), EXIT STATUS), decided here and nowhere else:
0 everything fine; 1 problems found, or a file refused or not written; 2 a
usage error or an input that cannot be read; 70 (EX_SOFTWARE) an unexpected
error, which is a bug: one line on stderr, never a traceback. `run` exits
with COMMAND's status once COMMAND runs, and as env(1) otherwise: 125 for
its own failures (usage and keyring), 126 if COMMAND cannot be executed,
127 if it is not found. Options are never abbreviated (--w is not --write).

Never imported at login: the loader runs kernel.py and keyinit.py, which
import nothing of this (tests/pam/test_loader.py checks what a login loads).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn

from . import __version__

OK, PROBLEMS, USAGE = 0, 1, 2
SOFTWARE = 70  # sysexits.h EX_SOFTWARE: an internal error
RUN_FAILED, CANNOT_EXECUTE, NOT_FOUND = 125, 126, 127  # env(1)'s


class Parser(argparse.ArgumentParser):
    """argparse with no abbreviations and one exit code for usage errors
    (``usage_status``: USAGE, or RUN_FAILED for `run`)."""

    usage_status = USAGE

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # A word no parser knows is the usage error of the subcommand it was
        # given to, with that subcommand's code (`run --bogus` exits 125).
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(self.usage_status)


def add_folders(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pam-dir",
        type=Path,
        help="read stacks from DIR alone (default: /etc/pam.d, then the vendor folder,"
        " as libpam reads them)",
    )
    p.add_argument(
        "--vendor-dir",
        type=Path,
        help="the vendor folder read after --pam-dir (or /etc/pam.d), as /usr/lib/pam.d is",
    )


def parser() -> Parser:
    top = Parser(prog="pykeyinit", description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=f"pykeyinit {__version__}")
    sub = top.add_subparsers(dest="subcommand", required=True, parser_class=Parser)

    p = sub.add_parser("status", help="the calling process's session keyring")
    p.add_argument("--json", action="store_true", help="a JSON object instead of text")

    p = sub.add_parser("check", help="where each PAM service gets its session keyring")
    add_folders(p)
    p.add_argument(
        "--module-dir",
        type=Path,
        action="append",
        help="where libpam looks for modules (default: the folders compiled into libpam)",
    )
    p.add_argument(
        "--python",
        type=Path,
        help="the interpreter whose import path is checked (default: the one pam_python embeds)",
    )
    p.add_argument("--json", action="store_true", help="a JSON array instead of text")
    p.add_argument("service", nargs="*")

    p = sub.add_parser("convert", help="replace pam_keyinit.so lines with pam_pykeyinit")
    add_folders(p)
    p.add_argument(
        "--module",
        default="pam_pykeyinit.py",
        help="the file pam_python runs: pam_pykeyinit.py, or a package's"
        " pam_pykeyinit/pam_module.py",
    )
    p.add_argument("--write", action="store_true", help="apply the change (atomically)")
    p.add_argument("service", nargs="+")

    p = sub.add_parser("run", help="run COMMAND in a session keyring of its own")
    p.usage_status = RUN_FAILED
    p.add_argument("--persistent", action="store_true", help="link the persistent keyring too")
    p.add_argument("command", nargs=argparse.REMAINDER)
    return top


def cmd_status(args: argparse.Namespace) -> int:
    from . import session

    result = session.status()
    print(json.dumps(result.as_json(), indent=2) if args.json else session.render(result))
    return PROBLEMS if result.problems else OK


def cmd_check(args: argparse.Namespace) -> int:
    from . import stacks

    rules = stacks.rules(args.pam_dir, args.vendor_dir)
    findings = stacks.check(rules, args.service, args.module_dir, args.python)
    if args.json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        for f in findings:
            where = f"{f.file}:{f.line}" if f.line else f.file
            print(f"{f.service}: {where}: {f.severity}: {f.message}")
        counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
        print(", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items()))
    return PROBLEMS if any(f.severity in ("error", "warning") for f in findings) else OK


def cmd_convert(args: argparse.Namespace) -> int:
    from . import host, stacks

    so = host.pam_python()
    folder = host.pam_python_dir(so)
    rules = stacks.rules(args.pam_dir, args.vendor_dir)
    conversions = [stacks.convert(rules, s, args.module, folder) for s in args.service]
    rc = OK
    for c in conversions:
        if c.refused:
            print(f"pykeyinit: refused: {c.refused}", file=sys.stderr)
            rc = PROBLEMS
        elif c.new == c.old:
            print(f"pykeyinit: no pam_keyinit.so line in {c.source or c.path}", file=sys.stderr)
        else:
            print(c.diff(), end="")
            if not args.write:
                continue
            if c.not_written:
                print(f"pykeyinit: not written: {c.not_written}", file=sys.stderr)
                rc = PROBLEMS
                continue
            try:
                stacks.write(c)
            except OSError as err:
                print(f"pykeyinit: not written: {c.path}: {err.strerror}", file=sys.stderr)
                rc = PROBLEMS
                continue
            made = f" from {c.source}, which is left as it is" if c.source else ""
            print(f"pykeyinit: wrote {c.path}{made}", file=sys.stderr)
    return rc


def cmd_run(args: argparse.Namespace) -> int:
    from . import advice, kernel

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("pykeyinit run: no COMMAND given (pykeyinit run -- COMMAND)", file=sys.stderr)
        return RUN_FAILED
    try:
        k = kernel.load()
    except kernel.UnsupportedABI as err:
        print(f"pykeyinit run: {err}", file=sys.stderr)
        return RUN_FAILED
    try:
        k.join_session_keyring()
        k.link(kernel.KEY_SPEC_USER_KEYRING, kernel.KEY_SPEC_SESSION_KEYRING)
        if args.persistent:
            # uid -1: the caller's own persistent keyring (persistent-keyring(7))
            k.get_persistent(-1, kernel.KEY_SPEC_SESSION_KEYRING)
    except kernel.KernelError as err:
        print(f"pykeyinit run: {advice.describe(err, 'a keyring of its own')}", file=sys.stderr)
        return RUN_FAILED
    try:
        os.execvp(command[0], command)  # noqa: S606 - the command the user asked for
    except FileNotFoundError:
        print(f"pykeyinit run: {command[0]}: command not found", file=sys.stderr)
        return NOT_FOUND
    except OSError as err:
        print(f"pykeyinit run: {command[0]}: {err.strerror}", file=sys.stderr)
        return CANNOT_EXECUTE
    return OK  # not reached: execvp does not return


COMMANDS = {"status": cmd_status, "check": cmd_check, "convert": cmd_convert, "run": cmd_run}


def main(argv: list[str] | None = None) -> int:
    from .kernel import UnsupportedABI
    from .stacks import InputError

    args = parser().parse_args(argv)
    try:
        return COMMANDS[args.subcommand](args)
    except BrokenPipeError:
        return PROBLEMS
    except InputError as err:
        # an input that cannot be read, or a name that is not one
        print(f"pykeyinit {args.subcommand}: {err}", file=sys.stderr)
        return USAGE
    except UnsupportedABI as err:
        print(f"pykeyinit {args.subcommand}: {err}", file=sys.stderr)
        return PROBLEMS
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line, never a traceback
        print(
            f"pykeyinit {args.subcommand}: internal error {type(exc).__name__}: {exc};"
            " please report it",
            file=sys.stderr,
        )
        return SOFTWARE
