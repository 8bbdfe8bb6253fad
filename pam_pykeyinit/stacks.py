"""`pykeyinit check` and `pykeyinit convert`: PAM stacks as Linux-PAM reads them.

One model of a stack file, used by both commands: parse() turns a file into
Statements, the logical lines of libpam (a '#' ends the line, a trailing
backslash joins the next), each word keeping the physical line and column
it came from, so that convert() can rewrite one word and leave every other
byte of the file as it was. Words are split as _pam_tokenize splits them
(_split), every field of a line alike (type, control, module, arguments): a
word that starts with '[' runs to the first ']' not after a backslash and
is taken without its brackets ('[pam_keyinit.so]' is pam_keyinit.so; a
control '[success=ok ...]' is then read as a control). Where Linux-PAM
versions differ, the system's libpam decides (Rules, from host):
- a blank or comment line inside a continued line: skipped up to 1.5.3
  (pam_handlers.c, _pam_assemble_line), the end of the logical line since
  1.6.0 (e5e53ebe, "support arbitrarily long config lines");
- the blanks that start a continuing line (only a bracketed word shows
  them): kept up to 1.5.3, skipped since 1.6.0 (_pam_str_trim);
- a file that ends inside a continued line fails the service in both;
- the service file is /etc/pam.d/SERVICE, else the vendor folder's
  (/usr/lib/pam.d, _pam_open_config_file); upstream reads an included file
  the same way, Debian's libpam (patch 031_pam_include, which also adds
  '@include FILE') from /etc/pam.d only.
The module type, include and substack are compared case-insensitively
(strcasecmp); a type may start with '-' (skip the line silently when its
module is missing). '@include FILE' takes every line of FILE, and 'TYPE
include FILE' / 'TYPE substack FILE' take FILE's lines of that TYPE.
libpam runs a file nested at most MAX_NESTED levels deep: one a level
deeper is not run, and that TYPE's stack fails (at the call, not at
pam_start). Up to 1.5.x only substacks count as levels, and includes and
@includes nest without limit (1.5.2 ran 3000; a loop of includes alone
recurses until the program crashes); from 1.6.0 on every inclusion counts
(linux-pam pull request 633, "avoid infinite recursion with includes",
merged in November 2023, after 1.5.3 and before 1.6.0), so
Rules.every_inclusion_counts decides, from the version as for
blank_ends_line. The limit and what counts were measured, not read from
libpam's source: with pam_start_confdir on
Linux-PAM 1.5.2 (Debian 12) and 1.7.0 (Debian 13), by
tests/pam/test_stacks_libpam.py, which compares check with libpam on
either side of the limit on the system it runs on.
is_pykeyinit_file() is the one test of whether a pam_python line runs
pam_pykeyinit. A service without a file runs OTHER's stack, and so does a
service for each module type its file leaves out (Reader.dispatched);
setuid_callers() is the one decision of which set-user-ID programs run a
line.

Files are read by read_stack(): regular files only, at most MAX_BYTES. A
file that cannot be read, an include loop, and every other finding become
Findings; an unreadable stack folder, a service name that is not a plain
file name of that folder, or a service file convert cannot read is an
InputError (exit 2). A service name is lowered, as pam_start() lowers it.

The loader's trust rule is the loader's own (pam_module.unsafe,
pam_module.first_problem, trust.problem, trust.walk_problem), never a
second copy.
"""

from __future__ import annotations

import difflib
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import host, pam_module, trust
from .keyinit import C_WORDS, KNOWN

PAM_DIR = Path("/etc/pam.d")  # libpam's PAM_CONFIG_D: what convert writes into
TYPES = ("auth", "account", "password", "session")
MAX_NESTED = 15  # the deepest nesting libpam runs (measured: see above)
MAX_BYTES = 1 << 20  # no stack file is near this: a larger one is refused
LOADER_NAME = "pam_pykeyinit.py"  # what the packages install into the module folder
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
# Services of programs that run PAM as root for an unprivileged caller,
# with the caller's environment: su, sudo, pkexec, passwd, chfn, chsh and
# doas are set-user-ID (a pam_python that does not name its interpreter lets
# that caller's PATH choose Python's standard library). doas is OpenDoas's
# service (pam.c: PAM_SERVICE_NAME "doas"; Debian's opendoas installs
# /usr/bin/doas mode 4755 and /etc/pam.d/doas). runuser, login, sshd and
# cron are started by root and are not. One of these without a file, and any
# set-user-ID program without one, runs OTHER's stack (setuid_callers).
SETUID_SERVICES = ("su", "su-l", "sudo", "sudo-i", "polkit-1", "passwd", "chfn", "chsh", "doas")
# libpam's PAM_DEFAULT_SERVICE (pam_private.h): the stack of a service
# without a file, and of each module type a service's file leaves out
OTHER = "other"
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


@dataclass(frozen=True)
class Word:
    text: str  # as libpam takes it: a [bracketed] word without its brackets
    line: int  # physical line of its first character, from 1
    column: int  # its offset in that line
    # the file's characters it was read from: (physical line, start, end) on
    # each line it spans, brackets included, a continuation's backslash not
    spans: tuple[tuple[int, int, int], ...] = ()


@dataclass
class Statement:
    """One logical line of a stack file."""

    number: int  # its first physical line
    words: list[Word]
    complete: bool = True  # False: the file ended inside it (libpam fails the service)

    @property
    def texts(self) -> list[str]:
        return [w.text for w in self.words]

    def module_type(self) -> tuple[str, bool] | None:
        """(type in lower case, whether it had a '-') for a module line of
        one of the four types; None for anything else."""
        if len(self.words) < 3:
            return None
        first = self.words[0].text
        kind = first[1:] if first.startswith("-") else first
        return (kind.lower(), first.startswith("-")) if kind.lower() in TYPES else None


def parse(text: str, blank_ends_line: bool = True) -> list[Statement]:
    """The logical lines of a stack file, as libpam assembles them; with
    ``blank_ends_line`` (Linux-PAM 1.6.0 and later) a blank or comment line
    ends a continued line, else it is skipped. A logical line holds what
    libpam's buffer holds, which only a [bracketed] word can show (measured
    with pam_echo on 1.5.2): up to 1.5 the blanks that start a continuing
    line (_pam_assemble_line reads it whole with fgets(); 1.6.0's
    _pam_str_trim skips them), and the blanks and newline that end the
    logical line, or the blanks before its '#' (neither version removes
    them: '[a b  ' at the end of a line is the word 'a b  \\n')."""
    statements: list[Statement] = []
    # the logical line being built, and for each of its characters the
    # (physical line, column) it came from: None for the blank that stands
    # for a continuation's backslash and for the newline that ends the line
    chars: list[str] = []
    where: list[tuple[int, int] | None] = []
    start = 0

    def end_statement(complete: bool = True) -> None:
        words = []
        for first, end, word in _split("".join(chars)):
            # a word starts at a character of the file: the two stand-ins
            # are blanks, which end words
            spans = _spans(where[first:end])
            words.append(Word(word, spans[0][0], spans[0][1], spans))
        if words:
            statements.append(Statement(start, words, complete))
        chars.clear()
        where.clear()

    # Lines end at a newline only, as for fgets(): convert() counts them
    # alike; what follows the last newline is a line only if not empty.
    rows = text.split("\n")
    if rows[-1] == "":
        rows.pop()
    for number, raw in enumerate(rows, 1):
        body = raw.lstrip(" \t")
        if not body or body.startswith("#"):
            if blank_ends_line:
                end_statement()
            continue  # nothing here
        if chars and not blank_ends_line:
            body = raw  # a continuing line, whole: Linux-PAM up to 1.5
        offset = len(raw) - len(body)
        cut = body.find("#")
        content = body if cut < 0 else body[:cut]
        places: list[tuple[int, int] | None] = [(number, offset + k) for k in range(len(content))]
        continues = False
        if cut < 0:
            kept = content.rstrip(" \t")
            if kept.endswith("\\"):
                content, continues = kept[:-1] + " ", True
                places[len(kept) - 1 :] = [None]
            elif number < len(rows) or text.endswith("\n"):
                content += "\n"
                places.append(None)
        if not chars:
            start = number
        chars.extend(content)
        where.extend(places)
        if not continues:
            end_statement()
    end_statement(complete=False)  # words left: the file ended inside a continued line
    return statements


def _split(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) of each word of a logical line, as libpam takes
    them: _pam_tokenize (pam_misc.c; _pam_StrTok up to 1.5.3, the same
    rule) reads every field of a line and, through _pam_mkargv, each
    argument. Words end at a blank, tab or newline; one that starts with
    '[' ends at the first ']' that no backslash precedes, or at the end of
    the line, and is the text between, with each '\\]' taken as ']' (only a
    backslash right before a ']' goes: '[a\\\\]b]' is 'a\\]b'); the next
    word may start right after that ']'. A '[' or ']' elsewhere is an
    ordinary character: 'x[y]z' is one word. Measured with pam_echo on
    1.5.2; the code is the same in 1.7.0."""
    words: list[tuple[int, int, str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t\n":
            i += 1
            continue
        if text[i] == "[":
            inside: list[str] = []
            j = i + 1
            while j < n and text[j] != "]":
                if text[j] == "\\" and j + 1 < n and text[j + 1] == "]":
                    j += 1
                inside.append(text[j])
                j += 1
            end = min(j + 1, n)  # past the ']', if there is one
            words.append((i, end, "".join(inside)))
        else:
            end = i
            while end < n and text[end] not in " \t\n":
                end += 1
            words.append((i, end, text[i:end]))
        i = end
    return words


def _spans(places: list[tuple[int, int] | None]) -> tuple[tuple[int, int, int], ...]:
    """The (physical line, start, end) runs of a word's characters."""
    spans: list[tuple[int, int, int]] = []
    for place in places:
        if place is None:
            continue
        number, column = place
        if spans and spans[-1][0] == number and spans[-1][2] == column:
            spans[-1] = (number, spans[-1][1], column + 1)
        else:
            spans.append((number, column, column + 1))
    return tuple(spans)


def is_pykeyinit_file(target: str, pam_python_dir: str) -> bool:
    """Whether the file a pam_python line names runs pam_pykeyinit: the
    loader as the packages install it (pam_pykeyinit.py), or a package's
    pam_module.py, as written or once symlinks are resolved (a relative
    name is taken from pam_python's folder, as pam_python does)."""
    full = target if target.startswith("/") else pam_python_dir + target
    for path in (target, os.path.realpath(full)):
        if os.path.basename(path) == LOADER_NAME or path.endswith("/pam_pykeyinit/pam_module.py"):
            return True
    return False


def read_stack(path: str | Path) -> bytes:
    """A stack file's bytes: a regular file of at most MAX_BYTES. Anything
    else is refused before it is opened (opening a device can act on it),
    and again after, without blocking, should the name have changed
    between the two. Raises OSError."""
    import errno

    if not stat.S_ISREG(os.stat(path).st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = os.read(fd, MAX_BYTES + 1)
        while len(data) <= MAX_BYTES:
            more = os.read(fd, MAX_BYTES + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) > MAX_BYTES:
            raise OSError(errno.EFBIG, f"larger than {MAX_BYTES} bytes")
    finally:
        os.close(fd)
    return data


@dataclass(frozen=True)
class Rules:
    """How the system's libpam reads stacks: system_rules(), or rules() for
    the folders given on the command line."""

    dirs: tuple[Path, ...]  # where a service's file is looked for, in order
    debian_include: bool = False  # Debian's 031_pam_include (host.debian_include)
    blank_ends_line: bool = True  # Linux-PAM 1.6.0 and later
    every_inclusion_counts: bool = True  # towards MAX_NESTED: 1.6.0 and later; before, substacks

    def find(self, name: str, included: bool = False) -> Path:
        """The file libpam opens for a service or an included ``name``: an
        absolute name as it is; else the first folder that has it (a
        dangling link is passed over, as fopen() fails on it), but only the
        first folder for an include under Debian's patch."""
        if name.startswith("/"):
            return Path(name)
        dirs = self.dirs[:1] if included and self.debian_include else self.dirs
        for d in dirs:
            if os.path.exists(d / name):
                return d / name
        return dirs[0] / name


def system_rules() -> Rules:
    version = host.linux_pam_version()
    since_1_6 = version is None or version >= (1, 6)
    return Rules(tuple(host.pam_config_dirs()), host.debian_include(), since_1_6, since_1_6)


def rules(pam_dir: Path | None = None, vendor_dir: Path | None = None) -> Rules:
    """The system's rules, in the folders given: --pam-dir alone reads that
    folder alone (as pam_start_confdir(3) does), --vendor-dir adds a vendor
    folder after it (or after /etc/pam.d)."""
    system = system_rules()
    if pam_dir is None and vendor_dir is None:
        return system
    dirs = (pam_dir or PAM_DIR, *([vendor_dir] if vendor_dir else []))
    return Rules(dirs, system.debian_include, system.blank_ends_line, system.every_inclusion_counts)


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
    ours: bool  # a pam_python line that runs pam_pykeyinit (is_pykeyinit_file)

    @property
    def name(self) -> str:
        return os.path.basename(self.module)

    def is_c_keyinit(self) -> bool:
        return self.name == "pam_keyinit.so"

    def options(self) -> list[str]:
        return self.args[1:] if self.ours else self.args

    def where(self) -> str:
        return f"{self.file}:{self.number}"


class Reader:
    """Reads services as libpam does (Rules), following inclusions."""

    def __init__(self, rules: Rules, pam_python_dir: str = host.PAM_PYTHON_DEFAULT_DIR) -> None:
        self.rules = rules
        self.pam_python_dir = pam_python_dir

    def read(self, service: str) -> tuple[list[Line], list[Finding]]:
        lines: list[Line] = []
        findings: list[Finding] = []
        top = str(self.rules.find(service))
        first = self.rules.dirs[0] / service
        if top != str(first):
            note = f"read from the vendor folder: there is no {first}"
            findings.append(Finding(service, top, 0, "info", note))
        self._read(service, top, None, [], (top, 0), lines, findings, set())
        return lines, findings

    def dispatched(self, service: str) -> list[Line]:
        """The module lines libpam runs for ``service``, in its four stacks.
        libpam reads the service's file, the first folder's that has one
        (Rules.find; a file it cannot open counts as none), and then OTHER
        (pam_handlers.c, _pam_init_handlers: "now parse the
        PAM_DEFAULT_SERVICE", after "Some people want to always use
        'other'"); each module type then runs the service's own handlers
        if its file gave that type any, a failing one included, else
        OTHER's (pam_dispatch.c, _pam_dispatch: "there was no
        handlers.conf... entry; will use handlers.other..."). So a service
        without a file runs OTHER's stack whole. Findings are left to
        check_service."""
        own: list[Line] = []
        given: set[str] = set()
        path = self.rules.find(service)
        if service != OTHER and os.path.exists(path):
            self._read(service, str(path), None, [], (str(path), 0), own, [], given)
        other: list[Line] = []
        path = self.rules.find(OTHER)
        if os.path.exists(path):
            self._read(service, str(path), None, [], (str(path), 0), other, [], set())
        return own + [x for x in other if x.type not in given]

    def _include(self, name: str) -> tuple[str, str]:
        """The file an include names, and, when it is missing only because
        Debian's libpam does not look in the vendor folder, why."""
        target = self.rules.find(name, included=True)
        if os.path.exists(target) or name.startswith("/"):
            return str(target), ""
        for d in self.rules.dirs[1:]:
            if os.path.exists(d / name):
                return str(target), (
                    f"no {target}; Debian's libpam reads an included file from"
                    f" {self.rules.dirs[0]} only, not {d / name}: Linux-PAM fails the service"
                )
        return str(target), ""

    def _read(
        self,
        service: str,
        file: str,
        only: str | None,
        chain: list[str],
        origin: tuple[str, int],
        lines: list[Line],
        findings: list[Finding],
        given: set[str],
        level: int = 0,
    ) -> None:
        """Read ``file`` (only its lines of type ``only``, if given), included
        along ``chain`` by the line at ``origin``, ``level`` levels deep as
        libpam counts them (Rules.every_inclusion_counts); ``given`` collects the
        module types that libpam gives a handler (pam_handlers.c,
        _pam_parse_conf_file: each module line, each substack, and the
        handler that always fails, put in place of a line it cannot use or
        of an include that fails), for Reader.dispatched."""

        def found(severity: str, message: str, number: int = 0) -> None:
            where = (file, number) if number else origin
            findings.append(Finding(service, *where, severity, message))

        def failed_include() -> None:
            # the failing handler takes the include's type; an '@include'
            # at the top level has none, and libpam fails the service
            if chain and only is not None:
                given.add(only)

        if file in chain:
            found(
                "error", f"include loop: {' -> '.join([*chain, file])}; Linux-PAM fails the service"
            )
            failed_include()
            return
        if level > MAX_NESTED:
            counted = "inclusions" if self.rules.every_inclusion_counts else "substacks"
            found(
                "error",
                f"more than {MAX_NESTED} nested {counted} at {file}:"
                f" Linux-PAM fails {f'the {only} stack' if only else 'the service'}",
            )
            failed_include()
            return
        try:
            text = read_stack(file).decode("utf-8", "replace")
        except OSError as err:
            found("error", f"cannot read {file}: {err.strerror}; Linux-PAM fails the service")
            failed_include()
            return
        for statement in parse(text, self.rules.blank_ends_line):
            words, number = statement.texts, statement.number
            if not statement.complete:
                found(
                    "error",
                    "the file ends inside a continued line (a trailing backslash):"
                    " Linux-PAM fails the service",
                    number,
                )
                continue
            first = words[0][1:] if words[0].startswith("-") else words[0]
            if first.lower() == "@include" and self.rules.debian_include:
                if len(words) < 2:
                    found("error", "@include without a file", number)
                    continue
                target, why = self._include(words[1])
                if why:
                    found("error", why, number)
                    if only is not None:
                        given.add(only)
                    continue
                self._read(
                    service,
                    target,
                    only,
                    [*chain, file],
                    (file, number),
                    lines,
                    findings,
                    given,
                    level + self.rules.every_inclusion_counts,
                )
                continue
            typed = statement.module_type()
            if typed is None:
                if first.lower() not in TYPES:
                    # pam_handlers.c: an illegal type installs a handler
                    # that always fails, in the auth stack at the top level
                    found(
                        "error",
                        f"unknown module type {words[0][:40]!r}: Linux-PAM puts a module that"
                        f" always fails in the {only or 'auth'} stack in its place",
                        number,
                    )
                    given.add(only or "auth")
                else:
                    found("error", f"incomplete line: {' '.join(words)[:80]!r}", number)
                    if only in (None, first.lower()):
                        given.add(first.lower())
                continue
            kind, dash = typed
            control, module, args = words[1], words[2], words[3:]
            if only is not None and kind != only:
                continue
            if control.lower() in ("include", "substack"):
                target, why = self._include(module)
                if control.lower() == "substack" or why:
                    given.add(kind)  # a substack is a handler of its own
                if why:
                    found("error", why, number)
                    continue
                self._read(
                    service,
                    target,
                    kind,
                    [*chain, file],
                    (file, number),
                    lines,
                    findings,
                    given,
                    level + (control.lower() == "substack" or self.rules.every_inclusion_counts),
                )
                continue
            ours = (
                os.path.basename(module) == "pam_python.so"
                and bool(args)
                and is_pykeyinit_file(args[0], self.pam_python_dir)
            )
            lines.append(Line(file, number, kind, dash, control, module, args, ours))
            given.add(kind)


@dataclass
class Context:
    """What `check` knows of the host, found once."""

    module_dirs: list[Path]
    python: Path | None
    pam_python_dir: str  # where pam_python takes a relative file from
    import_path_problems: list[str] = field(default_factory=list)
    import_path_error: str = ""
    # (file, line) -> the SETUID_SERVICES, and OTHER, that run it, and the
    # SETUID_SERVICES without a file here; found on first need (setuid_callers)
    setuid_lines: dict[tuple[str, int], list[str]] | None = None
    setuid_missing: list[str] = field(default_factory=list)


def _existing(path: str) -> str:
    """``path``, or the nearest folder above it that exists: where it could
    be created."""
    while not os.path.lexists(path) and path != "/":
        path = os.path.dirname(path)
    return path


def import_path_problems(path: list[str]) -> list[str]:
    """The loader's rule applied to each folder of an import path: the folder
    itself (or, if missing, the nearest folder that exists, where it could be
    created) must be root's and not writable by others, and so must the
    folders and symlinks on the way to it, which may be sticky
    (trust.walk_problem). A symlink that leads nowhere is judged by the way
    to it and by where its target could be created."""
    problems: list[str] = []
    for entry in path:
        here = _existing(os.path.abspath(entry))
        try:
            why = trust.walk_problem(here, pam_module.unsafe)
        except FileNotFoundError:
            why = trust.walk_problem(os.path.dirname(here), pam_module.unsafe)
            why = why or trust.walk_problem(_existing(os.path.realpath(here)), pam_module.unsafe)
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
    pkgdir = os.path.dirname(real)
    # the path as pam_python hands it to the loader, not normalised: the
    # walk follows a symlink before a '..' after it, as the kernel does
    # (os.path.abspath would drop 'link/..' as text)
    given = target if target.startswith("/") else os.path.abspath(target)
    try:
        return pam_module.first_problem(pkgdir) or trust.problem(given, pkgdir, pam_module.unsafe)
    except OSError as err:  # the loader's refusal, in its words (a missing trust.py)
        return f"{type(err).__name__}: {err}"


def setuid_callers(x: Line, reader: Reader, ctx: Context) -> list[str]:
    """Who runs the line ``x`` (the same line of the same file, reached
    through includes) as root for an unprivileged caller: the one decision
    of check's set-user-ID rule. Each of SETUID_SERVICES that has a file
    here (Rules.find: the PAM folder, then the vendor folder), by the
    stacks libpam runs for it (Reader.dispatched: the module types its file
    leaves out are OTHER's, as for passwd on Debian), and OTHER itself,
    which libpam runs for every service without a file: one of
    SETUID_SERVICES not installed here (ctx.setuid_missing), or any
    set-user-ID program not listed. Read once per run, into
    ctx.setuid_lines."""
    if ctx.setuid_lines is None:
        ctx.setuid_lines = {}
        present = [s for s in SETUID_SERVICES if os.path.exists(reader.rules.find(s))]
        ctx.setuid_missing = [s for s in SETUID_SERVICES if s not in present]
        for service in [*present, OTHER]:
            for y in reader.dispatched(service):
                callers = ctx.setuid_lines.setdefault((y.file, y.number), [])
                if service not in callers:
                    callers.append(service)
    return ctx.setuid_lines.get((x.file, x.number), [])


def unfixed_startup(so: Path, callers: list[str], missing: list[str]) -> str:
    """check's words on a pam_python.so without the fixed start-up of patch
    3005 (host.fixed_startup), run by ``callers`` (setuid_callers), with
    ``missing`` the SETUID_SERVICES that have no file here."""
    said = (
        f"{so} has no fixed start-up (patch 3005): Python computes its paths from"
        " the environment of the program calling PAM, where PATH or PYTHONEXECUTABLE"
        " choose the standard library"
    )
    if callers:
        other = ""
        if OTHER in callers:
            who = "any set-user-ID program without one"
            if missing:
                who = f"here {', '.join(missing)}, and any other set-user-ID program without one"
            other = (
                f"; {OTHER} is what libpam reads for a service without a file of its own"
                f" ({who}) and for each module type a service's file leaves out"
            )
        return (
            f"{said}, and {', '.join(callers)} {'run' if len(callers) > 1 else 'runs'} this"
            " line as root with the caller's"
            f" environment: any local user can run code as root{other}; install the project's"
            " libpam-python or take pam_python out of this stack (README, Install)"
        )
    return (
        f"{said}; no set-user-ID program's service ({', '.join(SETUID_SERVICES)}, or"
        f" {OTHER}, which libpam reads for a service without a file of its own) runs"
        " this line here, but one that did would let its callers run code as root"
        " (README, Python PAM applications)"
    )


def check_service(service: str, reader: Reader, ctx: Context) -> list[Finding]:
    lines, findings = reader.read(service)

    def add(line: Line | None, severity: str, message: str) -> None:
        file, number = (line.file, line.number) if line else (str(reader.rules.find(service)), 0)
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
        # each line's build: fixed, or an error where a set-user-ID
        # program runs the line, else a note
        for x in python_lines:
            so = host.find_module(x.module, ctx.module_dirs)
            if so is None:
                continue
            mark = host.fixed_startup(so)
            if mark is not None:
                add(
                    x,
                    "info",
                    f"{so} starts Python from a path configuration fixed at build time"
                    f" ({mark}; patch 3005): the caller's environment does not choose it",
                )
                continue
            callers = setuid_callers(x, reader, ctx)
            message = unfixed_startup(so, callers, ctx.setuid_missing)
            add(x, "error" if callers else "info", message)
        for x in python_lines:
            so = host.find_module(x.module, ctx.module_dirs)
            if so is not None and not host.gil_safe(so):
                add(
                    x,
                    "info",
                    f"{so} is a pam_python without the GIL fix: a Python program that calls"
                    " PAM in-process (JupyterHub's PAMAuthenticator, pamela, python-pam)"
                    " crashes on this line; install the GIL-safe build or give the program"
                    " a service without pam_python (README, Python PAM applications)",
                )
                break
    for x in lines:
        if x.ours:
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
    keyinit = [x for x in session if x.is_c_keyinit() or x.ours]
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


def service_path(rules: Rules, name: str) -> tuple[str, Path]:
    """The service ``name`` as libpam takes it, and its file: a plain file
    name (no '/', not '.' or '..'), lowered as pam_start() lowers it, found
    in the first folder that has it (Rules.find). The one rule for every
    subcommand; InputError otherwise."""
    folders = " or ".join(map(str, rules.dirs))
    if "/" in name or "\0" in name or name in ("", ".", ".."):
        raise InputError(f"{name!r} is not a service name (a file name in {folders})")
    service = name.lower()
    path = rules.find(service)
    if not os.path.lexists(path):
        lowered = f" (libpam lowers service names: {name!r} is {service!r})"
        raise InputError(f"no service {service!r} in {folders}{lowered if service != name else ''}")
    return service, path


def services(rules: Rules, named: list[str]) -> list[str]:
    """The services to check: those named, or every file of the folders
    (the first must be readable) but the common-* fragments that services
    include."""
    if named:
        return [service_path(rules, name)[0] for name in named]
    entries: set[str] = set()
    for i, folder in enumerate(rules.dirs):
        try:
            entries.update(e for e in os.listdir(folder) if not (folder / e).is_dir())
        except FileNotFoundError:
            if i == 0:
                raise InputError(f"cannot read {folder}: no such folder") from None
        except OSError as err:
            raise InputError(f"cannot read {folder}: {err.strerror}") from err
    return sorted(
        e
        for e in entries
        if not e.startswith((".", "common-"))
        and not e.endswith(("~", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".ucf-dist"))
    )


def check(
    rules: Rules,
    named: list[str],
    module_dirs: list[Path] | None = None,
    python: Path | None = None,
) -> list[Finding]:
    ctx = host_context(module_dirs, python)
    reader = Reader(rules, ctx.pam_python_dir)
    findings: list[Finding] = []
    for service in services(rules, named):
        findings += check_service(service, reader, ctx)
    return findings


# -- convert -------------------------------------------------------------------


@dataclass
class Conversion:
    path: Path  # the file that --write writes
    old: str
    new: str
    refused: str = ""  # why nothing is converted (no diff is shown)
    not_written: str = ""  # why --write must not write the file (the diff is shown)
    source: Path | None = None  # the vendor file read, when --write makes path from it

    def diff(self) -> str:
        """A unified diff; from a vendor file, its header names both files
        and says that the vendor file is left as it is (after a tab, where
        patch(1) reads a date and ignores what it cannot parse)."""
        old, new = f"a{self.source or self.path}", f"b{self.path}"
        notes = ("(vendor file, left as it is)", "(new file)") if self.source else ("", "")
        return "".join(
            difflib.unified_diff(
                self.old.splitlines(keepends=True),
                self.new.splitlines(keepends=True),
                old,
                new,
                *notes,
            )
        )


def check_module_word(module: str, pam_python_dir: str) -> None:
    """--module must be one word that check recognises as pam_pykeyinit
    (is_pykeyinit_file), or what convert writes would not be checked."""
    if not module or _split(module) != [(0, len(module), module)] or "#" in module:
        raise InputError(f"--module {module!r}: not a single word of a PAM line")
    if not is_pykeyinit_file(module, pam_python_dir):
        raise InputError(
            f"--module {module}: not a pam_pykeyinit loader; name the installed"
            f" {LOADER_NAME} or a package's pam_pykeyinit/pam_module.py"
        )


def convert_text(text: str, module: str, blank_ends_line: bool = True) -> str:
    """Each pam_keyinit.so module word of a module line (parse(), the
    model check reads, with the same rule for blank lines) replaced by
    'pam_python.so MODULE'; every other byte kept: type, control, options,
    comments, spacing, continuations. A [bracketed] word, which libpam runs
    without its brackets, is replaced brackets and all: inside them,
    'pam_python.so MODULE' would be one word, a module path with a blank;
    when the next word followed its ']' directly (_pam_tokenize starts a
    word there), one blank after MODULE keeps them apart, the one byte
    added. A word across a continued line is replaced where it starts, its
    part on the following lines removed (each backslash stays). A line the
    file ends inside is left: libpam never uses it."""
    rows = text.split("\n")
    for statement in parse(text, blank_ends_line):
        if (
            not statement.complete
            or statement.module_type() is None
            or statement.words[1].text.lower() in ("include", "substack")
        ):
            continue
        word = statement.words[2]
        if os.path.basename(word.text) != "pam_keyinit.so":
            continue
        last, _, end = word.spans[-1]
        after = statement.words[3:4]
        glued = bool(after) and (after[0].line, after[0].column) == (last, end)
        for k, (number, start, stop) in enumerate(word.spans):
            new = f"pam_python.so {module}" if k == 0 else ""
            if glued and k == len(word.spans) - 1:
                new += " "
            row = rows[number - 1]
            rows[number - 1] = f"{row[:start]}{new}{row[stop:]}"
    return "\n".join(rows)


def convert(
    rules: Rules, name: str, module: str, pam_python_dir: str = host.PAM_PYTHON_DEFAULT_DIR
) -> Conversion:
    """The change to service ``name``'s file (the one libpam reads): that
    file, rewritten in place, or for a vendor file (from /usr/lib/pam.d) a
    new file of the first folder, which libpam then reads instead; the
    vendor file is never written."""
    check_module_word(module, pam_python_dir)
    service, path = service_path(rules, name)
    real = Path(os.path.realpath(path))
    try:
        old = read_stack(real).decode("utf-8")
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from err
    except UnicodeDecodeError as err:
        raise InputError(f"cannot read {path}: not UTF-8 text ({err.reason})") from err
    new = convert_text(old, module, rules.blank_ends_line)
    first = rules.dirs[0]
    if path.parent != first:
        target = first / service
        not_written = ""
        if os.path.lexists(target):
            not_written = f"{target} exists but cannot be opened: libpam reads {path} instead"
        return Conversion(target, old, new, "", not_written, source=path)
    if any(marker in old for marker in MANAGED_MARKERS):
        return Conversion(
            real,
            old,
            old,
            f"{path} is managed by pam-auth-update: enable the profile instead"
            " (pam-auth-update --enable pykeyinit) and leave this file to it",
        )
    not_written = ""
    if real.parent != Path(os.path.realpath(first)):
        not_written = (
            f"{path} is a symbolic link to {real}, outside {first}: --write replaces"
            " only files of the PAM folder; convert that file where it is, or put a"
            " copy in place of the link"
        )
    return Conversion(real, old, new, "", not_written)


def write(conversion: Conversion) -> None:
    """Write the file atomically: replace it keeping its mode and owner, or
    make it with the vendor file's, failing if anything took its name
    meanwhile (link(2) never replaces)."""
    path = conversion.path
    st = (conversion.source or path).stat()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(conversion.new)
            f.flush()
            os.fchmod(f.fileno(), st.st_mode & 0o7777)
            os.fchown(f.fileno(), st.st_uid, st.st_gid)
            os.fsync(f.fileno())
        if conversion.source:
            os.link(tmp, path)
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
