"""Driving real PAM stacks: temporary services, test users, pamtester runs.

Everything here acts on the real system as root and undoes what it did.
pam_python stacks are driven by pamtester (a C program): a Python program
calling libpam in-process crashes as soon as pam_python runs in it.
"""

from __future__ import annotations

import contextlib
import grp
import json
import marshal
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from importlib.util import MAGIC_NUMBER
from pathlib import Path

from pam_pykeyinit import host
from pam_pykeyinit.keyinit import PAM_CRED_ERR, PAM_SESSION_ERR

from .conftest import require

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "pam_pykeyinit"
TOOLS = REPO / "tests" / "tools"
C_MODULE = "pam_keyinit.so"
# pamtester's and pamharness's words for the codes the module returns
SESSION_ERR_TEXT = f"{PAM_SESSION_ERR} Cannot make/remove an entry for the specified session"
CRED_ERR_TEXT = f"{PAM_CRED_ERR} Failure setting user credentials"
REVOKED = "keyctl_describe: Key has been revoked"


def ses(uid: int, gid: int) -> str:
    """`keyctl rdescribe` of a session keyring the module made for uid:gid
    (an anonymous keyring: possessor all, user view+read)."""
    return f"keyring;{uid};{gid};3f030000;_ses"


def line(pam_type: str, control: str, module: str, args: str = "") -> str:
    """One /etc/pam.d line; ``module`` is e.g. C_MODULE or py_module(tree)."""
    return f"{pam_type} {control} {module} {args}".rstrip()


def py_module(tree: Path) -> str:
    """The module path words for pam_pykeyinit at ``tree`` (a pam_module.py)."""
    return f"pam_python.so {tree}"


def stack(module: str, args: str = "", probe: str | None = None, auth: bool = False) -> list[str]:
    """[auth optional MODULE ARGS,] session required MODULE ARGS[, probe]."""
    lines = [line("auth", "optional", module, args)] if auth else []
    lines.append(line("session", "required", module, args))
    return lines + ([probe] if probe else [])


@contextlib.contextmanager
def readable_folder(prefix: str) -> Iterator[Path]:
    """A new root-owned folder under /tmp that every uid may enter (pytest's
    own temporary folders are 0700), removed with everything in it."""
    top = Path(tempfile.mkdtemp(prefix=prefix))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top)


def current_pyc(source: Path, text: str) -> bytes:
    """Bytecode of ``text`` that the import system takes as current for
    ``source``: a timestamp pyc with the source's mtime and size."""
    st = source.stat()
    header = MAGIC_NUMBER + bytes(4)
    header += (int(st.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little")
    header += (st.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    return header + marshal.dumps(compile(text, str(source), "exec"))


def embedded_version(so: Path) -> str:
    """The Python version the pam_python.so ``so`` embeds, e.g. "3.11"."""
    interpreter = host.embedded_python(so)
    require(interpreter is not None, f"no interpreter found for {so}")
    assert interpreter is not None
    return interpreter.name.removeprefix("python")


def pam_python_so() -> Path | None:
    """pam_python.so where libpam finds it on this host (pam_pykeyinit.host)."""
    return host.pam_python()


def install_tree(dest: Path) -> Path:
    """Copy the package and the probe into a root-owned tree under ``dest``;
    return the path of the module file for pam_python lines."""
    lib = dest / "lib" / "pam_pykeyinit"
    lib.mkdir(parents=True)
    for src in PACKAGE.glob("*.py"):
        shutil.copyfile(src, lib / src.name)
        os.chmod(lib / src.name, 0o644)
    shutil.copyfile(TOOLS / "probe.sh", dest / "probe.sh")
    os.chmod(dest / "probe.sh", 0o755)
    for folder in (dest, dest / "lib", lib):
        os.chmod(folder, 0o755)
    # Byte-compiled by the interpreter pam_python embeds, as Debian's
    # py3compile does for an installed package (pam_python writes none).
    system("/usr/bin/python3", "-m", "compileall", "-q", str(lib))
    return lib / "pam_module.py"


class Service:
    """A temporary /etc/pam.d file; removed by close()."""

    def __init__(self, lines: list[str]) -> None:
        self.name = f"pykt-{secrets.token_hex(4)}"
        self.path = Path("/etc/pam.d") / self.name
        self.path.write_text("\n".join(lines) + "\n")

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


class Users:
    """Users made for the run: 'pykt-gid' (primary gid differs from uid) and
    'pykt-peer' (another unprivileged user, uid == gid)."""

    GID_USER, GID_UID, GID_GID, GID_GROUP = "pykt-gid", 47011, 47099, "pykt-grp"
    PEER, PEER_UID = "pykt-peer", 47012

    def __init__(self) -> None:
        self.remove()
        system("groupadd", "-g", str(self.GID_GID), self.GID_GROUP)
        system(
            "useradd",
            "-M",
            "-N",
            "-s",
            "/bin/sh",
            "-u",
            str(self.GID_UID),
            "-g",
            str(self.GID_GID),
            self.GID_USER,
        )
        system("useradd", "-M", "-U", "-s", "/bin/sh", "-u", str(self.PEER_UID), self.PEER)

    def remove(self) -> None:
        for user in (self.GID_USER, self.PEER):
            try:
                pwd.getpwnam(user)
            except KeyError:
                continue
            system("userdel", user)
        try:
            grp.getgrnam(self.GID_GROUP)
            system("groupdel", self.GID_GROUP)
        except KeyError:
            pass


# Starting keyrings: how the process that runs pamtester begins. Each is
# made by the test, whatever session keyring the test runner has.
def in_own_keyring(script: str) -> list[str]:
    """Start in an anonymous session keyring of root's, run ``script`` (sh)
    on it, then exec the command."""
    return ["keyctl", "session", "-", "sh", "-c", f'{script} && exec "$@"', "sh"]


def user_session(user: str) -> list[str]:
    """No session keyring of its own: the state of a process that never had
    one, as the module meets it after taking ``user``'s real uid
    (tests/tools/user_session.py)."""
    return ["/usr/bin/python3", "-I", str(TOOLS / "user_session.py"), user, "--"]


STARTS = {
    "anon": ["keyctl", "session", "-"],  # an anonymous _ses of its own
    "revoked": in_own_keyring("keyctl revoke @s"),
    # a timeout of 1 s, then 1.5 s of waiting: EKEYEXPIRED from then on
    "expired": in_own_keyring("keyctl timeout @s 1 && sleep 1.5"),
    # root's keyring given to the pykt-gid user: that user's own keyring
    "users-own": in_own_keyring(
        f"keyctl chown @s {Users.GID_UID} && keyctl chgrp @s {Users.GID_GID}"
        " && echo before=$(keyctl id @s)"
    ),
}
START_NAMES = ("none", *STARTS)


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str], logs: list[dict] | None) -> None:
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.logs = logs or []
        self.probes = [
            line[len("probe: ") :]
            for line in proc.stdout.splitlines()
            if line.startswith("probe: ")
        ]

    def log_text(self) -> str:
        return "\n".join(entry["text"] for entry in self.logs)


def captured(cmd: list[str], capture_dir: Path | None) -> tuple[list[str], Path | None]:
    """``cmd`` run inside logcapture.py when ``capture_dir`` is given, and the
    file its syslog datagrams will be written to."""
    if capture_dir is None:
        return cmd, None
    out = capture_dir / f"log-{secrets.token_hex(4)}.json"
    wrapper = ["unshare", "--mount", "/usr/bin/python3", str(TOOLS / "logcapture.py"), str(out)]
    return [*wrapper, "--", *cmd], out


CAPTURE_CANARY = "logcapture: capture works"  # tests/tools/logcapture.py sends it first


def read_capture(out: Path | None) -> list[dict] | None:
    """The lines logcapture.py caught, its canary removed; an assertion
    error when the canary is missing, since then an empty list would mean
    nothing was captured rather than nothing logged."""
    if out is None:
        return None
    lines = json.loads(out.read_text())
    assert lines and lines[0]["text"].endswith(CAPTURE_CANARY), f"log capture failed: {lines}"
    return lines[1:]


def system(*cmd: str) -> str:
    """Run a system tool with Debian's PATH (not a virtualenv's or pyenv's
    python3 first); its stdout, or an assertion error with its output."""
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive"},
    )
    assert proc.returncode == 0, f"{cmd}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def pamtester(
    service: str,
    user: str,
    ops: list[str],
    start: str = "none",
    caller: tuple[int, int] | None = None,
    capture_dir: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    prefix: list[str] | None = None,
) -> Result:
    """Run ``pamtester -v SERVICE USER OPS...`` from the ``start`` state
    ("none": no session keyring of its own, see user_session(); else one of
    STARTS, made as ``caller``); with ``caller`` as that uid/gid; behind
    ``prefix`` (e.g. seccomp_fail); with ``capture_dir`` inside
    logcapture.py to collect syslog."""
    cmd = ["pamtester", "-v", service, user, *ops]
    if start != "none":
        cmd = [*STARTS[start], *cmd]
    if caller is not None:
        cmd = [*as_user(*caller), *cmd]
    cmd = [*(prefix or []), *cmd]
    if start == "none":
        # made as root and before ``prefix``: only the user's real uid may
        # join the user's keyring by name, and seccomp_fail may refuse keyctl
        cmd = [*user_session(user), *cmd]
    cmd, out = captured(cmd, capture_dir)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=cwd, env=env)
    return Result(proc, read_capture(out))


SERIAL = re.compile(r"\b\d{5,}\b")
IDS_LINE = re.compile(r"^(Uid|Gid): (\S+) (\S+) (\S+) (\S+)$")


def assert_same_as_c(ours: Result, theirs: Result, py_svc: str, c_svc: str) -> None:
    """pamtester's status and messages, and the probe's lines, alike but for
    serial numbers and the saved IDs (which pam_keyinit.so does not restore:
    ours are checked against the caller's entry IDs by the caller)."""

    def lines(res: Result, svc: str) -> tuple[int, list[str], list[str]]:
        stderr = normalise(res.stderr.replace(svc, "SERVICE").splitlines())
        return res.rc, stderr, probe_shape(res.probes)

    mine, c = lines(ours, py_svc), lines(theirs, c_svc)
    assert mine == c, f"pam_pykeyinit: {mine}\npam_keyinit.so: {c}"


def probe_shape(probes: list[str]) -> list[str]:
    """The probe's lines as compared with the C module's: saved IDs left out
    (checked on their own), serials normalised."""
    return normalise([IDS_LINE.sub(r"\1: \2 \3 - \5", p) for p in probes])


def ids_lines(res: Result) -> list[str]:
    """The probe's 'Uid: r e s fs' and 'Gid: ...' lines."""
    return [p for p in res.probes if IDS_LINE.match(p)]


def normalise(lines: list[str]) -> list[str]:
    """Serial numbers replaced by their order of first appearance, so two
    runs compare by shape: which keyring is the same as which."""
    seen: dict[str, str] = {}

    def name(m: re.Match[str]) -> str:
        return seen.setdefault(m.group(0), f"#{len(seen) + 1}")

    return [SERIAL.sub(name, line) for line in lines]


SAVED_IDS = re.compile(r"(uid|gid)=(\d+),(\d+),(\d+),(\d+)")


def comparable(lines: list[str]) -> list[str]:
    """pamharness lines of the C module and of ours, made comparable:
    serials normalised, and the saved IDs, the one deliberate difference
    (doc/design.md, "One difference you might meet"), left out."""
    return normalise([SAVED_IDS.sub(r"\1=\2,\3,-,\5", line) for line in lines])


HARNESS_SOURCES = REPO / "tests" / "harness"


class Tools:
    """The C helpers of tests/harness/, built with gcc into ``dest``."""

    def __init__(self, dest: Path) -> None:
        src = HARNESS_SOURCES
        self.harness = dest / "pamharness"
        self.failinject = dest / "failinject.so"
        self.seccomp_fail = dest / "seccomp_fail"
        self.pam_threads = dest / "pam_threads"
        self.racy_version = dest / "racy_version.so"
        self.pam_confdir = dest / "pam_confdir"
        self.idwatch = dest / "idwatch.so"
        cc = ["gcc", "-Wall", "-Wextra", "-Werror", "-O2"]
        system(*cc, "-o", str(self.harness), str(src / "pamharness.c"), "-lpam", "-lpthread")
        system(
            *cc, "-shared", "-fPIC", "-o", str(self.failinject), str(src / "failinject.c"), "-ldl"
        )
        system(*cc, "-o", str(self.seccomp_fail), str(src / "seccomp_fail.c"))
        system(*cc, "-pthread", "-o", str(self.pam_threads), str(src / "pam_threads.c"), "-lpam")
        system(*cc, "-shared", "-fPIC", "-o", str(self.racy_version), str(src / "racy_version.c"))
        system(*cc, "-o", str(self.pam_confdir), str(src / "pam_confdir.c"), "-lpam")
        system(*cc, "-shared", "-fPIC", "-o", str(self.idwatch), str(src / "idwatch.c"), "-ldl")


class HarnessResult:
    def __init__(self, proc: subprocess.CompletedProcess[str], logs: list[dict] | None) -> None:
        self.rc = proc.returncode
        self.lines = proc.stdout.splitlines()
        self.stderr = proc.stderr
        self.logs = logs or []

    def calls(self) -> list[str]:
        """'CALL H -> RC NAME' lines."""
        return [line for line in self.lines if " -> " in line]

    def shows(self) -> list[str]:
        return [line for line in self.lines if line.startswith("show ")]

    def log_text(self) -> str:
        return "\n".join(entry["text"] for entry in self.logs)


def harness(
    tools: Tools,
    words: list[str],
    prefix: list[str] | None = None,
    env: dict[str, str] | None = None,
    capture_dir: Path | None = None,
    stdin: str | None = None,
    start_user: str = Users.GID_USER,
) -> HarnessResult:
    """Run pamharness WORDS with no session keyring of its own, as the
    module meets it for ``start_user`` (user_session()), behind ``prefix``
    (setpriv, seccomp_fail...), with ``env`` (e.g. LD_PRELOAD) set for the
    harness alone."""
    settings = [f"{name}={value}" for name, value in (env or {}).items()]
    cmd = [*user_session(start_user), *(prefix or []), "env", *settings, str(tools.harness), *words]
    cmd, out = captured(cmd, capture_dir)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, input=stdin)
    return HarnessResult(proc, read_capture(out))


def key_users(uid: int) -> tuple[int, int, int]:
    """(keys, keys charged to the quota, bytes charged to the quota) of
    ``uid`` from /proc/key-users; zeros when the kernel has no record."""
    for line in Path("/proc/key-users").read_text().splitlines():
        fields = line.split()
        if fields[0] == f"{uid}:":
            return (
                int(fields[2].split("/")[0]),
                int(fields[3].split("/")[0]),
                int(fields[4].split("/")[0]),
            )
    return 0, 0, 0


def pykeyinit(
    *args: str, prefix: list[str] | None = None, tree: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the pykeyinit command as `python3 -m pam_pykeyinit ARGS` behind
    ``prefix`` (setpriv, keyctl session, seccomp_fail...), with the package
    of the checkout, or of ``tree`` (the tree fixture's root-owned copy,
    which every uid can read) for a prefix that takes another uid: the
    checkout may sit in a folder only root can enter, as /root is."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "PYTHONPATH": str(tree.parents[1] if tree is not None else REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    cmd = [*(prefix or []), "/usr/bin/python3", "-m", "pam_pykeyinit", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "No module named" not in proc.stderr, proc.stderr
    return proc


def as_user(uid: int, gid: int) -> list[str]:
    """A prefix that runs a command with all of the user's IDs."""
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


def run_as(uid: int, *cmd: str, gid: int | None = None) -> str:
    """``cmd`` with all IDs of ``uid`` (and ``gid``, by default the uid):
    its stdout and stderr together, stripped."""
    prefix = as_user(uid, uid if gid is None else gid)
    proc = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=30)
    return (proc.stdout + proc.stderr).strip()
