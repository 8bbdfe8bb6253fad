"""Nothing a caller controls is read when pam_python starts: an invariant over
what the process does, not a list of cases.

A test user runs the real set-user-ID /bin/su to their own account, through
a stack whose session has a pam_python line (a stack of the test's,
bind-mounted over /etc/pam.d/su in a private mount namespace; the host's
file is never written), with the most hostile environment the test can
make:

- every environment variable the interpreter's start-up reads, taken from
  the interpreter itself (`--help-env`) and from its library (each PYTHON*
  name compiled into libpython, and the ENV_* names getpath.c reads), each
  pointing into the user's folder;
- PATH, HOME, TMPDIR and the working directory in the user's folder, which
  holds a planted standard library (bin/python3, lib/pythonX.Y/os.py and
  encodings/), pyvenv.cfg, site.py, sitecustomize.py, usercustomize.py and
  .pth files, each of which leaves a marker when it runs.

strace follows su (as root, with -u so that su keeps its set-user-ID
privilege). The invariant:

1. nothing planted runs;
2. su completes;
3. no path under the user's folder is even looked up (a relative path is
   one, since the working directory is that folder), up to the user's
   shell that su finally runs;
4. every file su opens once pam_python.so is loaded is root's and not
   writable by group or others along its whole real path (a sticky folder,
   such as /tmp, may be: only the owner of a root-owned entry can replace
   it); the kernel's own files (/proc, /sys, /dev) are not files anyone
   can plant.

It runs through a module that does nothing and through pam_pykeyinit's
line, with this project's build, and, as the premise that shows the
harness can see a hole, with Debian's build from the archive: there the
planted standard library runs with effective uid 0.

The same invariant in a Python host program (pamela, as root, with
-X pycache_prefix=<the user's folder> and umask 002): from the moment
pam_python.so is loaded, nothing is looked up under that folder, no Python
source or bytecode is read but the checked package's and the standard
library's, nothing is written, and the next login works.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pam_pykeyinit import host

from ..conftest import require
from ..pamlib import REPO, TOOLS, Users, line, readable_folder

FLOOR = REPO / "bench" / "floor_module.py"  # a pam_python module that returns at once
CLIENT = TOOLS / "pyclient.py"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# The variables that are paths to an interpreter, not to a folder.
EXECUTABLES = ("PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__")
NAME = re.compile(r"(?:PYTHON[A-Z0-9_]*[A-Z0-9]|__PYVENV_LAUNCHER__)")
# C strings, which may abut: the NULs around them are looked at, not taken
COMPILED = re.compile(rb"(?<=\x00)(PYTHON[A-Z0-9_]*[A-Z0-9]|__PYVENV_LAUNCHER__)(?=\x00)")
GETPATH = re.compile(rb"(?<=\x00)ENV_([A-Z_]+)(?=\x00)")  # getpath.c: env_to_dict(d, "ENV_X", ...)


def interpreter_of(so: Path) -> tuple[Path, Path, str]:
    """The interpreter a pam_python.so embeds, its libpython and version."""
    interpreter = host.embedded_python(so)
    require(interpreter is not None, f"no interpreter found for {so}")
    assert interpreter is not None
    code = (
        "import sysconfig as s, sys; v = s.get_config_var;"
        " print(v('LIBDIR') + '/' + v('INSTSONAME')); print('%d.%d' % sys.version_info[:2])"
    )
    out = subprocess.run(
        [str(interpreter), "-I", "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return interpreter, Path(out[0]), out[1]


def startup_variables(interpreter: Path, libpython: Path) -> list[str]:
    """Every environment variable the interpreter's start-up reads, as the
    interpreter itself tells (--help-env, Python 3.11 and later) and as its
    library holds them (the PYTHON* names compiled in, and the names
    getpath.c reads with getenv(), ENV_PATH among them)."""
    helped = subprocess.run(
        [str(interpreter), "--help-env"], capture_output=True, text=True, check=True
    ).stdout
    names = {m.group(0) for m in NAME.finditer(helped)}
    data = libpython.read_bytes()
    names |= {m.group(1).decode() for m in COMPILED.finditer(data)}
    names |= {m.group(1).decode() for m in GETPATH.finditer(data)}
    # a sanity floor: the variables the known holes went through
    assert {"PATH", "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__", "PYTHONHOME"} <= names, names
    return sorted(names)


# A root-owned .pth file of the kind a system may hold (a coverage start-up
# hook reads its paths from the environment): it runs the file a variable
# names. Put into the first site folder in su's private mount namespace (an
# overlay: the folder itself is not touched); the caller names their own
# file in the variable.
HOOK_VARIABLE = "PYKT_HOOK"
HOOK_PTH = f"import os; p = os.environ.get({HOOK_VARIABLE!r}); p and exec(open(p).read())\n"

PLANT = """import posix
posix.close(posix.open({marker!r}, posix.O_WRONLY | posix.O_CREAT, 0o644))
"""


@dataclass
class Planted:
    """A user's folder with everything an interpreter could be steered to."""

    top: Path
    version: str
    markers: Path = field(init=False)

    def __post_init__(self) -> None:
        self.markers = self.top / "ran"
        self.markers.mkdir()
        bin_ = self.top / "bin"
        bin_.mkdir()
        for name in ("python3", f"python{self.version}"):
            (bin_ / name).write_text("#!/bin/sh\n")
            (bin_ / name).chmod(0o755)
        lib = self.top / "lib" / f"python{self.version}"
        for package in ("encodings", "site-packages", "lib-dynload"):
            (lib / package).mkdir(parents=True)
        self.plant(lib / "os.py", "os")
        self.plant(lib / "encodings" / "__init__.py", "encodings")
        for name in ("site", "sitecustomize", "usercustomize"):
            self.plant(lib / f"{name}.py", name)
            self.plant(self.top / f"{name}.py", f"cwd-{name}")
        (lib / "site-packages" / "pykt.pth").write_text(self.plant_line("pth-venv"))
        (self.top / "pykt.pth").write_text(self.plant_line("pth-cwd"))
        (self.top / "pyvenv.cfg").write_text(
            f"home = {bin_}\ninclude-system-site-packages = false\n"
        )
        (bin_ / "pyvenv.cfg").write_text(f"home = {bin_}\n")
        user_site = self.top / ".local" / "lib" / f"python{self.version}" / "site-packages"
        user_site.mkdir(parents=True)
        (user_site / "pykt.pth").write_text(self.plant_line("pth-user"))
        self.plant(self.top / "hook.py", "pth-hook")  # what HOOK_PTH runs, if it can
        for path in [self.top, *self.top.rglob("*")]:
            os.lchown(path, Users.GID_UID, Users.GID_GID)

    def plant(self, path: Path, name: str) -> None:
        path.write_text(PLANT.format(marker=str(self.markers / name)))

    def plant_line(self, name: str) -> str:
        return f"import posix; posix.close(posix.open({str(self.markers / name)!r}, 65, 0o644))\n"

    def ran(self) -> dict[str, int]:
        """What ran: marker -> the uid it ran with (the marker's owner)."""
        return {m.name: m.stat().st_uid for m in self.markers.iterdir()}

    def environment(self, names: list[str]) -> dict[str, str]:
        env = {name: str(self.top) for name in names}
        for name in EXECUTABLES:
            env[name] = str(self.top / "bin" / "python3")
        env.update(
            {HOOK_VARIABLE: str(self.top / "hook.py")},
            PATH=f"{self.top / 'bin'}:{SYSTEM_PATH}",
            HOME=str(self.top),
            TMPDIR=str(self.top),
            PWD=str(self.top),
        )
        return env


@pytest.fixture
def planted_for(users) -> Iterator:
    with contextlib.ExitStack() as made:

        def make(version: str) -> Planted:
            outer = made.enter_context(readable_folder("pykt-hostile-"))
            (outer / "home").mkdir()
            return Planted(outer / "home", version)

        yield make


# -- reading strace's log ------------------------------------------------------

CALL = re.compile(r"^(\w+)\((.*)\)\s+= (-?\d+|\?)(?:<([^>]*)>)?")
SUN_PATH = re.compile(r'sun_path="((?:[^"\\]|\\.)*)"')  # connect(2) to a unix socket
DIRFD = re.compile(r"^(?:AT_FDCWD|-?\d+)<(.*)>$")


def _arguments(text: str) -> list[str]:
    """The top-level arguments of a call as strace prints it."""
    args, depth, quoted, escaped, start = [], 0, False, False, 0
    for i, c in enumerate(text):
        if quoted:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "[{(<":
            depth += 1
        elif c in "]})>":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    args.append(text[start:].strip())
    return args


def _unquote(arg: str) -> str | None:
    if len(arg) >= 2 and arg[0] == '"' and arg.rstrip(".")[-1] == '"':
        return arg.rstrip(".")[1:-1].encode().decode("unicode_escape")
    return None


@dataclass
class Call:
    pid: int
    name: str
    paths: list[str]  # the file names it looks up, made absolute
    result: str
    opened: str | None  # the real path of the fd it returned (strace -y)
    raw: str


def calls_of(log_prefix: Path, cwd: str, program: str) -> Iterator[Call]:
    """The calls in strace -ff -y's per-process logs, up to the moment a
    process runs another program than ``program`` (for su: the user's
    shell)."""
    for log in sorted(log_prefix.parent.glob(log_prefix.name + ".*")):
        pid = int(log.suffix[1:])
        for text in log.read_text(errors="replace").splitlines():
            m = CALL.match(text)
            if not m:
                continue
            name, args, result, fdpath = m.groups()
            paths: list[str] = []
            base = cwd
            looked = 0
            for arg in _arguments(args):
                d = DIRFD.match(arg)
                if d:
                    base = d.group(1)
                    continue
                path = _unquote(arg)
                if path is None:
                    continue
                looked += 1
                # readlink's second string is its answer; execve's and
                # symlink's first is the only name looked up
                if looked > 1 and not name.startswith(("rename", "link")):
                    break
                if path == "":  # AT_EMPTY_PATH: the descriptor's own file
                    paths.append(base)
                else:
                    paths.append(path if path.startswith("/") else os.path.join(base, path))
            if name == "connect":
                paths += [_unquote(f'"{m}"') or m for m in SUN_PATH.findall(args)]
            yield Call(pid, name, paths, result, fdpath, text)
            if name.startswith("execve") and result == "0" and paths[0] != program:
                break


def owner_problem(path: str) -> str:
    """Why the existing ``path`` (a real path) is not root's and unwritable
    by others all the way up, or ''."""
    parts = Path(path).parts
    for i in range(1, len(parts) + 1):
        step = os.path.join(*parts[:i]) if i > 1 else "/"
        st = os.lstat(step)
        sticky = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
        if st.st_uid != 0:
            return f"{step} is owned by uid {st.st_uid}"
        # (a symbolic link opened itself, O_PATH|O_NOFOLLOW: its mode is no
        # permission, only its owner and folder count)
        if st.st_mode & 0o022 and not sticky and not stat.S_ISLNK(st.st_mode):
            return f"{step} has mode {st.st_mode & 0o7777:04o}"
    return ""


def creatable_problem(path: str) -> str:
    """Why someone other than root could create the missing ``path``, or
    '': its nearest existing folder must be root's and writable by no one
    else, sticky or not (anyone may create a new name in /tmp), and root's
    all the way up."""
    folder = os.path.dirname(path)
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    real = os.path.realpath(folder)
    st = os.stat(real)
    if st.st_mode & 0o022:
        return f"{real} has mode {st.st_mode & 0o7777:04o}: others may create {path}"
    return owner_problem(real)


KERNEL_FILES = ("/proc/", "/sys/")


def path_problem(path: str) -> str:
    """Rule 4 for one path the process looked up, opened, ran or connected
    to: an existing one is root's and unwritable by others along its real
    path, a missing one could only be made by root. The kernel's own
    (/proc, /sys, device nodes) are not files anyone can plant."""
    if not path.startswith("/"):  # relative to a pipe's or socket's descriptor: no file
        return ""
    if path.startswith(KERNEL_FILES) or path in ("/proc", "/sys"):
        return ""
    if not os.path.lexists(path):
        return creatable_problem(path)
    real = os.path.realpath(path)
    if not os.path.exists(real):  # a dangling symbolic link: where it leads
        return owner_problem(os.path.dirname(path)) or creatable_problem(real)
    if stat.S_ISCHR(os.stat(real).st_mode) or stat.S_ISBLK(os.stat(real).st_mode):
        return ""
    return owner_problem(real)


def violations(calls: list[Call], folder: Path, so: Path) -> tuple[list[str], list[str]]:
    """(look-ups under ``folder``, as named or once symbolic links are
    resolved; every path met after pam_python.so was opened that breaks
    rule 4: looked up, opened, run or connected to, found or not)."""
    inside = f"{folder}/"
    looked = [
        c.raw
        for c in calls
        for p in c.paths
        if f"{p}/".startswith(inside) or f"{os.path.realpath(p)}/".startswith(inside)
    ]
    loaded, bad = False, []
    for c in calls:
        if not loaded:
            loaded = c.name.startswith("open") and c.opened == str(so.resolve())
            continue
        for path in c.paths:
            why = path_problem(path)
            if why:
                bad.append(f"{c.raw}: {why}")
    assert loaded, f"{so} was never opened: the trace does not show the login"
    return looked, bad


# strace: every process, a log each (no interleaving), paths of descriptors
# (-y), every call that names a file, runs a program or connects to a
# socket; then the log's name
TRACE = ["/usr/bin/strace", "-f", "-ff", "-y", "-qq", "-s", "4096"]
TRACE += ["-e", "trace=%file,%process,connect", "-o"]


# -- su ---------------------------------------------------------------------------


def su_stack(so: Path, module: str) -> str:
    """su's stack: the user is let in without a password (the escalation
    needs only the user's own, which the test does not know), and the
    session has the pam_python line."""
    return "\n".join(
        [
            line("auth", "sufficient", "pam_permit.so"),
            line("account", "sufficient", "pam_permit.so"),
            line("session", "required", f"{so} {module}"),
            "",
        ]
    )


def site_folder(interpreter: Path) -> str:
    """The first site folder of ``interpreter`` (isolated, as pam_python
    starts it) that exists: where HOOK_PTH goes."""
    code = "import os, site; print([p for p in site.getsitepackages() if os.path.isdir(p)][0])"
    return subprocess.run(
        [str(interpreter), "-I", "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def su_under_strace(
    so: Path,
    module: str,
    planted: Planted,
    names: list[str],
    work: Path,
    only: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess[str], list[Call]]:
    """su to oneself under strace, with Planted.environment(names), or, with
    ``only``, a system PATH and only those of its variables."""
    require(
        Path("/etc/pam.d/su").exists() and os.stat("/bin/su").st_mode & stat.S_ISUID != 0,
        "no set-user-ID su",
    )
    require(shutil.which("strace") is not None, "strace not installed (make deps)")
    stack = work / "su"
    stack.write_text(su_stack(so, module))
    stack.chmod(0o644)
    log = work / "trace" / "su"
    log.parent.mkdir()
    env = planted.environment(names)
    if only:
        env = {"PATH": SYSTEM_PATH, **{name: env[name] for name in only}}
    upper, overlay = work / "pth", work / "overlay"
    upper.mkdir(mode=0o755)
    overlay.mkdir(mode=0o755)
    (upper / "pykt-hook.pth").write_text(HOOK_PTH)
    (upper / "pykt-hook.pth").chmod(0o644)
    site = site_folder(interpreter_of(so)[0])
    script = (
        'mount --bind "$1" /etc/pam.d/su && mount -t overlay overlay'
        ' -o "lowerdir=$2,upperdir=$3,workdir=$4" "$2" && shift 4 && exec "$@"'
    )
    private = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    private += [str(stack), site, str(upper), str(overlay)]
    trace = [*TRACE, str(log), "-u", Users.GID_USER]
    proc = subprocess.run(
        [*private, "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()),
         *trace, "/bin/su", Users.GID_USER, "-c", "echo su ran"],
        capture_output=True, text=True, timeout=120, cwd=planted.top,
    )  # fmt: skip
    return proc, list(calls_of(log, str(planted.top), "/bin/su"))


MODULES = ["noop", "pam_pykeyinit"]


def module_words(which: str, tree: Path) -> str:
    return str(FLOOR) if which == "noop" else f"{tree} force revoke"


@pytest.mark.parametrize("which", MODULES)
def test_nothing_the_caller_controls_is_read_by_our_build(
    which, gil_safe_so, tree, planted_for, tmp_path
):
    tmp_path.chmod(0o755)
    interpreter, libpython, version = interpreter_of(gil_safe_so)
    names = startup_variables(interpreter, libpython)
    planted = planted_for(version)
    proc, calls = su_under_strace(gil_safe_so, module_words(which, tree), planted, names, tmp_path)
    looked, bad = violations(calls, planted.top, gil_safe_so)
    print(f"\n{len(names)} variables: {' '.join(names)}")
    print(f"{len(calls)} calls traced; su: rc {proc.returncode}, {proc.stdout.strip()!r}")
    assert planted.ran() == {}, planted.ran()
    assert proc.returncode == 0 and "su ran" in proc.stdout, proc.stderr
    assert looked == [], "\n".join(looked[:20])
    assert bad == [], "\n".join(bad[:20])


@pytest.mark.parametrize("which", MODULES)
def test_debians_build_runs_the_planted_library_as_root(
    which, debian_pam_python_so, tree, planted_for, tmp_path
):
    """The premise: the same harness, with Debian's build, shows the hole
    (PATH chooses the standard library), so a broken harness cannot pass
    the test above."""
    tmp_path.chmod(0o755)
    so = debian_pam_python_so
    interpreter, libpython, version = interpreter_of(so)
    names = startup_variables(interpreter, libpython)
    planted = planted_for(version)
    proc, calls = su_under_strace(so, module_words(which, tree), planted, names, tmp_path)
    looked, _ = violations(calls, planted.top, so)
    ran = planted.ran()
    print(f"\nDebian's build: planted code ran: {ran}; {len(looked)} look-ups in the folder")
    assert ran.get("encodings") == 0, (ran, proc.stderr)
    assert looked


@pytest.mark.parametrize("build", ["debian", "ours"])
def test_a_system_pth_never_sees_the_callers_environment(
    build, gil_safe_so, debian_pam_python_so, planted_for, tmp_path
):
    """The route a start-up that is otherwise fixed still leaves when Python
    starts in the caller's environment: a root-owned .pth file (HOOK_PTH)
    that runs the file a variable names. With Debian's build, the caller's
    file runs as root (the premise: the overlay and the hook work); with
    ours, which starts Python in an empty environment, it does not, and su
    completes."""
    tmp_path.chmod(0o755)
    so = {"debian": debian_pam_python_so, "ours": gil_safe_so}[build]
    _, _, version = interpreter_of(so)
    planted = planted_for(version)
    proc, _ = su_under_strace(so, str(FLOOR), planted, [], tmp_path, only=(HOOK_VARIABLE,))
    if build == "debian":
        assert planted.ran() == {"pth-hook": 0}, (planted.ran(), proc.stderr)
    else:
        assert planted.ran() == {}, planted.ran()
        assert proc.returncode == 0 and "su ran" in proc.stdout, proc.stderr


# -- a Python host ----------------------------------------------------------------


def test_a_python_host_reads_only_the_checked_package(
    gil_safe_so, own_tree, service, users, planted_for, tmp_path
):
    """pamela as root, -X pycache_prefix=<the user's folder>, umask 002, on a
    package without bytecode (so that a host's import system would write
    some): from pam_python.so's load on, no look-up under that folder, no
    .py or .pyc read but the checked package's and the standard library's
    (none, if the host has them loaded), nothing opened for writing, no
    folder made, and the next login works too."""
    require(shutil.which("strace") is not None, "strace not installed (make deps)")
    tmp_path.chmod(0o755)
    module = own_tree
    pkgdir = module.parent
    shutil.rmtree(pkgdir / "__pycache__")
    _, _, version = interpreter_of(gil_safe_so)
    planted = planted_for(version)
    svc = service([line("session", "required", f"{gil_safe_so} {module}", "force revoke")])
    stdlib = subprocess.run(
        [sys.executable, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    for attempt in range(2):
        log = tmp_path / f"trace-{attempt}" / "host"
        log.parent.mkdir()
        proc = subprocess.run(
            [*TRACE, str(log), sys.executable, "-X", f"pycache_prefix={planted.top}",
             str(CLIENT), "pamela", svc, Users.GID_USER],
            capture_output=True, text=True, timeout=120, cwd=planted.top,
            env={"PATH": SYSTEM_PATH}, preexec_fn=lambda: os.umask(0o002),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        calls = list(calls_of(log, str(planted.top), sys.executable))
        start = next(i for i, c in enumerate(calls) if c.opened == str(gil_safe_so.resolve()))
        window = calls[start:]
        looked = [c.raw for c in window for p in c.paths if p.startswith(f"{planted.top}/")]
        python = [
            c.raw
            for c in window
            if c.name.startswith("open")
            and c.opened
            and c.opened.endswith((".py", ".pyc"))
            and not c.opened.startswith((f"{pkgdir}/", f"{stdlib}/"))
        ]
        writes = [
            c.raw
            for c in window
            if (c.name.startswith("open") and re.search(r"O_(WRONLY|RDWR|CREAT)", c.raw))
            or c.name.startswith(("mkdir", "rename", "unlink", "link", "symlink"))
        ]
        assert looked == [], "\n".join(looked)
        assert python == [], "\n".join(python)
        assert writes == [], "\n".join(writes)
    assert sorted(p.name for p in pkgdir.iterdir()) == sorted(
        p.name for p in REPO.joinpath("pam_pykeyinit").glob("*.py")
    )
    assert planted.ran() == {}
