"""`pykeyinit`: what sessions and stacks do about keyrings (pykeyinit(1)).

    pykeyinit status [--json]
    pykeyinit check [--pam-dir DIR] [--module-dir DIR]... [--python PATH] [--json] [SERVICE...]
    pykeyinit convert [--pam-dir DIR] [--module PATH] [--write] SERVICE...
    pykeyinit run [--persistent] -- COMMAND [ARGS...]

Exit codes, for every subcommand: 0 everything fine, 1 problems found (or a
file refused), 2 usage error or an input that cannot be read (message on
stderr, never a traceback); `run` exits with COMMAND's status once COMMAND
runs, 126 if it cannot be executed and 127 if it is not found, as env(1).

Never imported at login: pam_module.py imports keyinit.py, which imports
nothing of this (tests/pam/test_loader.py checks what a login imports).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from . import __version__

OK, PROBLEMS, USAGE = 0, 1, 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(USAGE)


def parser() -> Parser:
    top = Parser(prog="pykeyinit", description=__doc__.splitlines()[0])
    top.add_argument("--version", action="version", version=f"pykeyinit {__version__}")
    sub = top.add_subparsers(dest="subcommand", required=True, parser_class=Parser)

    p = sub.add_parser("status", help="the calling process's session keyring")
    p.add_argument("--json", action="store_true", help="a JSON object instead of text")

    p = sub.add_parser("check", help="where each PAM service gets its session keyring")
    p.add_argument("--pam-dir", type=Path, default=Path("/etc/pam.d"))
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
    p.add_argument("--pam-dir", type=Path, default=Path("/etc/pam.d"))
    p.add_argument("--module", default="pam_pykeyinit.py", help="the file pam_python runs")
    p.add_argument("--write", action="store_true", help="apply the change (atomically)")
    p.add_argument("service", nargs="+")

    p = sub.add_parser("run", help="run COMMAND in a session keyring of its own")
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

    findings = stacks.check(args.pam_dir, args.service, args.module_dir, args.python)
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
    from . import stacks

    conversions = [stacks.convert(args.pam_dir, s, args.module) for s in args.service]
    rc = OK
    for c in conversions:
        if c.refused:
            print(f"pykeyinit: refused: {c.refused}", file=sys.stderr)
            rc = PROBLEMS
        elif c.new == c.old:
            print(f"pykeyinit: no pam_keyinit.so line in {c.path}", file=sys.stderr)
        else:
            print(c.diff(), end="")
            if args.write:
                stacks.write(c)
                print(f"pykeyinit: wrote {c.path}", file=sys.stderr)
    return rc


def cmd_run(args: argparse.Namespace) -> int:
    from . import advice, kernel

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("pykeyinit run: no COMMAND given (pykeyinit run -- COMMAND)", file=sys.stderr)
        return USAGE
    k = kernel.load()
    try:
        k.join_session_keyring()
        k.link(kernel.KEY_SPEC_USER_KEYRING, kernel.KEY_SPEC_SESSION_KEYRING)
        if args.persistent:
            # uid -1: the caller's own persistent keyring (persistent-keyring(7))
            k.get_persistent(-1, kernel.KEY_SPEC_SESSION_KEYRING)
    except kernel.KernelError as err:
        print(f"pykeyinit run: {advice.describe(err, 'a keyring of its own')}", file=sys.stderr)
        return PROBLEMS
    try:
        os.execvp(command[0], command)  # noqa: S606 - the command the user asked for
    except FileNotFoundError:
        print(f"pykeyinit run: {command[0]}: command not found", file=sys.stderr)
        return 127
    except OSError as err:
        print(f"pykeyinit run: {command[0]}: {err.strerror}", file=sys.stderr)
        return 126
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
    except (InputError, OSError) as err:
        # an input that cannot be read, or a file that cannot be written
        print(f"pykeyinit {args.subcommand}: {err}", file=sys.stderr)
        return USAGE
    except UnsupportedABI as err:
        print(f"pykeyinit {args.subcommand}: {err}", file=sys.stderr)
        return PROBLEMS
    except KeyboardInterrupt:
        return 130
