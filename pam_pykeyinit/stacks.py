"""`pykeyinit check` and `pykeyinit convert`: PAM stacks as Linux-PAM reads them.

Parsing follows Linux-PAM's libpam/pam_handlers.c: '#' starts a comment, a
trailing backslash continues a line, a control or an argument may be a
[bracketed group] with spaces, a type may start with '-' (skip the line
silently when its module is missing), '@include FILE' takes every line of
FILE, and 'TYPE include FILE' / 'TYPE substack FILE' take FILE's lines of
that TYPE, relative to the stack folder; more than PAM_SUBSTACK_MAX_LEVEL
(16) levels of inclusion fail the service. A file that cannot be read, an
include loop, and every other finding become Findings; only an unreadable
stack folder or a named service without a file is an InputError (exit 2).

The loader's trust rule is the loader's own (pam_module.unsafe,
pam_module.package_problem, trust.walk_problem), never a second copy.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import host, pam_module, trust
from .keyinit import KNOWN

TYPES = ("auth", "account", "password", "session")
MAX_LEVEL = 16  # Linux-PAM's PAM_SUBSTACK_MAX_LEVEL
C_WORDS = ("force", "revoke", "debug")  # what pam_keyinit.so understands
# Modules that put keys in the session keyring at open_session: placed
# before the keyinit line, their keys land in a keyring that is replaced.
KEY_MODULES = ("pam_cifscreds.so", "pam_ecryptfs.so", "pam_fscrypt.so", "pam_e4crypt.so")
# Services that start interactive logins and should give each one a keyring.
INTERACTIVE = (
    "login",
    "sshd",
    "su-l",
    "runuser-l",
    "systemd-user",
    "gdm-password",
    "gdm-autologin",
    "gdm-fingerprint",
    "gdm-smartcard",
    "lightdm",
    "lightdm-autologin",
    "sddm",
    "sddm-autologin",
    "xrdp-sesman",
)
# pam-auth-update's markers in the files it writes (pam-auth-update(8))
MANAGED_MARKERS = ("# here are the per-package modules", "# end of pam-auth-update config")


class InputError(Exception):
    """An input that cannot be read at all: the command exits with 2."""


@dataclass
class Finding:
    service: str
    file: str
    line: int
    severity: str  # error, warning or info
    message: str


@dataclass
class Line:
    """One module line, after includes were followed."""

    file: str
    number: int
    type: str
    dash: bool
    control: str
    module: str
    args: list[str]

    @property
    def name(self) -> str:
        return os.path.basename(self.module)

    def is_c_keyinit(self) -> bool:
        return self.name == "pam_keyinit.so"

    def is_pykeyinit(self) -> bool:
        if self.name != "pam_python.so" or not self.args:
            return False
        target = self.args[0]
        return os.path.basename(target) == "pam_pykeyinit.py" or target.endswith(
            "pam_pykeyinit/pam_module.py"
        )

    def options(self) -> list[str]:
        return self.args[1:] if self.is_pykeyinit() else self.args

    def where(self) -> str:
        return f"{self.file}:{self.number}"


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each logical line: comments cut,
    continuation lines joined (pam_handlers.c, _pam_assemble_line)."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        part = raw.split("#", 1)[0].rstrip()
        if not pending:
            start = number
        if part.endswith("\\"):
            pending += part[:-1] + " "
            continue
        joined = (pending + part).strip()
        pending = ""
        if joined:
            out.append((start, joined))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def tokens(text: str) -> list[str]:
    """Words, where a [bracketed group] (with \\] inside) is one word."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        j = i
        if text[i] == "[":
            while j < n and not (text[j] == "]" and text[j - 1] != "\\"):
                j += 1
            j = min(j + 1, n)
        else:
            while j < n and not text[j].isspace():
                j += 1
        words.append(text[i:j])
        i = j
    return words


class Reader:
    """Reads services from one stack folder, following inclusions."""

    def __init__(self, pam_dir: Path) -> None:
        self.pam_dir = pam_dir

    def path(self, name: str) -> Path:
        return Path(name) if name.startswith("/") else self.pam_dir / name

    def read(self, service: str) -> tuple[list[Line], list[Finding]]:
        lines: list[Line] = []
        findings: list[Finding] = []
        top = str(self.path(service))
        self._read(service, top, None, [], (top, 0), lines, findings)
        return lines, findings

    def _read(
        self,
        service: str,
        file: str,
        only: str | None,
        chain: list[str],
        origin: tuple[str, int],
        lines: list[Line],
        findings: list[Finding],
    ) -> None:
        """Read ``file`` (only its lines of type ``only``, if given), included
        along ``chain`` by the line at ``origin``."""

        def found(severity: str, message: str, number: int = 0) -> None:
            where = (file, number) if number else origin
            findings.append(Finding(service, *where, severity, message))

        if file in chain:
            found(
                "error", f"include loop: {' -> '.join([*chain, file])}; Linux-PAM fails the service"
            )
            return
        if len(chain) > MAX_LEVEL:
            found("error", f"more than {MAX_LEVEL} levels of inclusion at {file}")
            return
        try:
            text = Path(file).read_bytes().decode("utf-8", "replace")
        except OSError as err:
            found("error", f"cannot read {file}: {err.strerror}; Linux-PAM fails the service")
            return
        for number, logical in logical_lines(text):
            words = tokens(logical)
            if words[0] == "@include":
                if len(words) < 2:
                    found("error", "@include without a file", number)
                    continue
                target = str(self.path(words[1]))
                self._read(service, target, only, [*chain, file], (file, number), lines, findings)
                continue
            if len(words) < 3:
                found("error", f"incomplete line: {logical[:80]!r}", number)
                continue
            kind, control, module, args = words[0], words[1], words[2], words[3:]
            dash = kind.startswith("-")
            kind = kind.lstrip("-").lower()
            if kind not in TYPES:
                found(
                    "error",
                    f"unknown module type {words[0][:40]!r}; Linux-PAM skips the line",
                    number,
                )
                continue
            if only is not None and kind != only:
                continue
            if control in ("include", "substack"):
                target = str(self.path(module))
                self._read(service, target, kind, [*chain, file], (file, number), lines, findings)
                continue
            lines.append(Line(file, number, kind, dash, control, module, args))


@dataclass
class Context:
    """What `check` knows of the host, found once."""

    module_dirs: list[Path]
    python: Path | None
    pam_python_dir: str  # where pam_python takes a relative file from
    import_path_problems: list[str] = field(default_factory=list)
    import_path_error: str = ""


def import_path_problems(path: list[str]) -> list[str]:
    """The loader's rule applied to each folder of an import path: the folder
    itself (or, if missing, the nearest folder that exists, where it could be
    created) must be root's and not writable by others; the folders above
    may be sticky, as the loader allows."""
    problems: list[str] = []
    for entry in path:
        here = os.path.abspath(entry)
        while not os.path.lexists(here) and here != "/":
            here = os.path.dirname(here)
        why = pam_module.unsafe(here, True)
        above = here
        while not why and above != "/":
            above = os.path.dirname(above)
            why = pam_module.unsafe(above, False)
        if why and why not in problems:
            problems.append(why)
    return problems


def host_context(module_dirs: list[Path] | None, python: Path | None) -> Context:
    dirs = module_dirs if module_dirs is not None else host.module_dirs()
    so = host.pam_python(dirs)
    interpreter = python or (host.embedded_python(so) if so else None)
    ctx = Context(dirs, interpreter, host.pam_python_dir(so))
    if interpreter is None:
        ctx.import_path_error = "cannot tell which Python pam_python embeds"
        return ctx
    path = host.import_path(interpreter)
    if path is None:
        ctx.import_path_error = f"cannot ask {interpreter} for its import path"
    else:
        ctx.import_path_problems = import_path_problems(path)
    return ctx


def _suggest(word: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"


def loader_refusal(target: str) -> str:
    """Why the loader would refuse ``target`` (a pam_python file), or ''."""
    if not os.path.exists(target):
        return f"{target} does not exist"
    real = os.path.realpath(target)
    if not os.path.exists(os.path.join(os.path.dirname(real), "__init__.py")):
        return f"{target} is not the pam_module.py of a pam_pykeyinit package"
    return pam_module.package_problem(os.path.dirname(real)) or trust.walk_problem(
        os.path.abspath(target), pam_module.unsafe
    )


def check_service(service: str, reader: Reader, ctx: Context) -> list[Finding]:
    lines, findings = reader.read(service)

    def add(line: Line | None, severity: str, message: str) -> None:
        file, number = (line.file, line.number) if line else (str(reader.path(service)), 0)
        findings.append(Finding(service, file, number, severity, message))

    python_lines = [x for x in lines if x.name == "pam_python.so"]
    for x in python_lines:
        if host.find_module(x.module, ctx.module_dirs) is None:
            add(
                x,
                "warning" if x.dash else "error",
                f"{x.module} not found where libpam looks ({', '.join(map(str, ctx.module_dirs))})",
            )
    if python_lines:
        first = python_lines[0]
        for why in ctx.import_path_problems:
            add(
                first,
                "error",
                f"on the import path of the Python pam_python embeds ({ctx.python}): {why};"
                " a module or .pth file planted there runs as root in every login that"
                " reaches a pam_python line",
            )
        if ctx.import_path_error:
            add(first, "warning", ctx.import_path_error)
        add(
            first,
            "info",
            "a Python program that calls PAM in-process (JupyterHub's PAMAuthenticator,"
            " pamela, python-pam) crashes on this service's pam_python line: give it a"
            " service of its own without one (README, Python PAM applications)",
        )
    for x in lines:
        if x.is_pykeyinit():
            target = x.args[0]
            if not target.startswith("/"):
                target = ctx.pam_python_dir + target
            why = loader_refusal(target)
            if why:
                add(x, "error", f"the pam_pykeyinit loader would refuse {x.args[0]}: {why}")
            for word in x.options():
                if word not in KNOWN:
                    add(x, "warning", f"unknown option '{word}'" + _suggest(word, KNOWN))
        elif x.is_c_keyinit():
            for word in x.options():
                if word in KNOWN and word not in C_WORDS:
                    add(x, "warning", f"pam_keyinit.so ignores '{word}', a pam_pykeyinit option")
                elif word not in C_WORDS:
                    add(x, "warning", f"unknown option '{word}'" + _suggest(word, C_WORDS))

    session = [x for x in lines if x.type == "session"]
    keyinit = [x for x in session if x.is_c_keyinit() or x.is_pykeyinit()]
    kinds = {"pam_keyinit.so" if x.is_c_keyinit() else "pam_pykeyinit" for x in keyinit}
    if len(kinds) == 2:
        add(
            keyinit[1],
            "error",
            "pam_keyinit.so and pam_pykeyinit are both in the session stack"
            f" ({', '.join(x.where() for x in keyinit)}): keep one",
        )
    if not keyinit:
        if service in INTERACTIVE:
            add(
                None,
                "warning",
                "an interactive login service without pam_keyinit or pam_pykeyinit:"
                " its sessions share the user-session keyring or inherit the caller's",
            )
        return findings
    first = keyinit[0]
    name = "pam_keyinit.so" if first.is_c_keyinit() else "pam_pykeyinit"
    words = " ".join(first.options()) or "no options"
    add(first, "info", f"session keyring from {name} ({words})")
    for x in session[: session.index(first)]:
        if x.name in KEY_MODULES:
            add(
                x,
                "warning",
                f"{x.name} adds keys to the session keyring before {name} at"
                f" {first.where()} makes it: move it after that line",
            )
    return findings


def services(pam_dir: Path, named: list[str]) -> list[str]:
    """The services to check: those named, or every file of the folder but
    the common-* fragments that services include."""
    try:
        entries = sorted(os.listdir(pam_dir))
    except OSError as err:
        raise InputError(f"cannot read {pam_dir}: {err.strerror}") from err
    if named:
        for name in named:
            if "/" in name or name in ("", ".", "..") or name not in entries:
                raise InputError(f"no service {name!r} in {pam_dir}")
        return named
    return [
        e
        for e in entries
        if not e.startswith((".", "common-"))
        and not e.endswith(("~", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".ucf-dist"))
        and not (pam_dir / e).is_dir()
    ]


def check(
    pam_dir: Path,
    named: list[str],
    module_dirs: list[Path] | None = None,
    python: Path | None = None,
) -> list[Finding]:
    reader = Reader(pam_dir)
    ctx = host_context(module_dirs, python)
    findings: list[Finding] = []
    for service in services(pam_dir, named):
        findings += check_service(service, reader, ctx)
    return findings


# -- convert -------------------------------------------------------------------


@dataclass
class Conversion:
    path: Path
    old: str
    new: str
    refused: str = ""

    def diff(self) -> str:
        name = str(self.path).lstrip("/")
        return "".join(
            difflib.unified_diff(
                self.old.splitlines(keepends=True),
                self.new.splitlines(keepends=True),
                f"a/{name}",
                f"b/{name}",
            )
        )


def convert_text(text: str, module: str) -> str:
    """Each pam_keyinit.so line with pam_python.so MODULE in its place; type,
    control, options, comments and spacing kept."""
    out: list[str] = []
    for raw in text.splitlines(keepends=True):
        code = raw.split("#", 1)[0]
        words = tokens(code)
        if (
            len(words) >= 3
            and words[0].lstrip("-") in TYPES
            and os.path.basename(words[2]) == "pam_keyinit.so"
        ):
            # the third word, found after the first two, is replaced in place
            at = 0
            for word in words[:2]:
                at = code.index(word, at) + len(word)
            at = code.index(words[2], at)
            raw = raw[:at] + f"pam_python.so {module}" + raw[at + len(words[2]) :]
        out.append(raw)
    return "".join(out)


def convert(pam_dir: Path, service: str, module: str) -> Conversion:
    path = Path(os.path.realpath(pam_dir / service))
    try:
        old = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {pam_dir / service}: {err}") from err
    if any(marker in old for marker in MANAGED_MARKERS):
        return Conversion(
            path,
            old,
            old,
            f"{path} is managed by pam-auth-update: enable the profile instead"
            " (pam-auth-update --enable pykeyinit) and leave this file to it",
        )
    return Conversion(path, old, convert_text(old, module))


def write(conversion: Conversion) -> None:
    """Replace the file atomically, keeping its mode and owner."""
    path = conversion.path
    st = path.stat()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(conversion.new)
            f.flush()
            os.fchmod(f.fileno(), st.st_mode & 0o7777)
            os.fchown(f.fileno(), st.st_uid, st.st_gid)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
