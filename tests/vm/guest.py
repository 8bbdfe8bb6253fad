"""Runs inside a Debian guest as root, right after boot (tools/vm/init).

Drives real logins with pam_pykeyinit and prints what it observed as one
JSON object between two marker lines on the serial console;
tests/vm/test_guest.py asserts on it from the host. Nothing is judged here:
the guest only records. The guest runs from an initramfs: nothing here
outlives the boot.
"""

import json
import os
import pty
import select
import subprocess
import time

REPORT: dict = {}
USER, UID, GID = "alice", 1001, 2001
PASSWORD = "pykt-Passw0rd"  # noqa: S105 - the throw-away guest user's
MOD = "pam_python.so pam_pykeyinit.py"
PROBE_FILE = "/usr/local/bin/pykt-probe"  # tests/tools/probe.sh, installed by run.sh
SESSION_PROBE = "/usr/local/bin/pykt-session-probe"  # PROBE, for pam_exec
# What the session holds; and a process that keeps the session keyring
# after logout (as tmux or screen would), so that the revoke can be seen.
PROBE = (
    "echo S=$(keyctl rdescribe @s 2>&1); echo ID=$(keyctl id @s 2>&1); "
    "for k in $(keyctl rlist @s 2>/dev/null); do echo L=$(keyctl rdescribe $k); done; "
    "setsid sleep 30 </dev/null >/dev/null 2>&1 &"
)


def sh(cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=180, **kw)


def as_user(cmd: str, stderr: bool = True) -> str:
    r = sh(f"setpriv --reuid={UID} --regid={GID} --clear-groups sh -c '{cmd}'")
    return (r.stdout + (r.stderr if stderr else "")).strip()


def parse(out: str) -> dict:
    found = {"s": None, "id": None, "links": []}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("S="):
            found["s"] = line[2:]
        elif line.startswith("ID="):
            found["id"] = line[3:]
        elif line.startswith("L="):
            found["links"].append(line[2:])
    return found


def after(observed: dict) -> dict:
    """What the user sees of the session keyring once the login is over."""
    if observed.get("id") and observed["id"].isdigit():
        observed["after_logout"] = as_user(f"keyctl rdescribe {observed['id']} 2>&1")
    return observed


def write(path: str, text: str, mode: int = 0o644) -> None:
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def pykeyinit(args: str) -> dict:
    r = sh(f"pykeyinit {args}")
    return {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr[-2000:]}


def scenario(name):
    def wrap(fn):
        print(f"PYKT-STEP {name}", flush=True)
        t0 = time.time()
        try:
            REPORT[name] = fn()
        except Exception as exc:
            REPORT[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"PYKT-STEP {name} done in {time.time() - t0:.1f} s", flush=True)
        return fn

    return wrap


def os_release() -> dict:
    fields = {}
    for line in open("/etc/os-release"):
        key, _, value = line.strip().partition("=")
        fields[key] = value.strip('"')
    return fields


def setup() -> dict:
    sh(f"groupadd -g {GID} staffers && useradd -m -u {UID} -g {GID} -s /bin/sh {USER}")
    sh(f"echo '{USER}:{PASSWORD}' | chpasswd")
    return {
        "kernel": os.uname().release,
        "suite": os_release().get("VERSION_CODENAME"),
        "user": sh(f"id {USER}").stdout.strip(),
        "deb": sh("dpkg-query -W -f='${Version} ${Status}' libpam-pykeyinit").stdout,
        "files": sh("dpkg -L libpam-pykeyinit").stdout.split(),
        "loader": os.path.realpath("/usr/lib/security/pam_pykeyinit.py"),
        "loader_via_lib": os.path.realpath("/lib/security/pam_pykeyinit.py"),
        "security_dir": sorted(os.listdir("/usr/lib/security")),
        "apt_log": open("/apt.log").read()[-8000:],
        # run.sh: the fresh package alone, beside Debian's libpam-python
        "apt_refused_rc": int(open("/apt-refused.rc").read()),
        "apt_refused_log": open("/apt-refused.log").read()[-3000:],
        "pam_python": sh("dpkg-query -W -f='${Version}' libpam-python").stdout,
        "libpam": sh("dpkg-query -W -f='${Version}' libpam0g").stdout,
        "python": sh("python3 --version").stdout.strip(),
        "common_session_before": open("/etc/pam.d/common-session").read(),
        "noninteractive_before": open("/etc/pam.d/common-session-noninteractive").read(),
        # pykeyinit check on the stacks as Debian ships them, before any change
        "check_shipped": pykeyinit("check --json login sshd su-l common-session cron"),
        "pykeyinit_version": pykeyinit("--version")["stdout"].strip(),
    }


REPORT["setup"] = setup()


@scenario("pamtester")
def _pamtester():
    write(SESSION_PROBE, f"#!/bin/sh\n{PROBE}\n", 0o755)
    write(
        "/etc/pam.d/pykt-pamtester",
        f"session required {MOD} force revoke\n"
        f"session optional pam_exec.so stdout quiet type=open_session {SESSION_PROBE}\n",
    )
    r = sh(f"pamtester pykt-pamtester {USER} open_session close_session")
    return after({**parse(r.stdout), "rc": r.returncode, "stderr": r.stderr})


def converted(service: str) -> dict:
    """`pykeyinit convert --write SERVICE` on Debian's own file."""
    return {**pykeyinit(f"convert --write {service}"), "stack": pam_lines(service)}


def pam_lines(service: str) -> list:
    return [x for x in open(f"/etc/pam.d/{service}").read().splitlines() if "pykeyinit" in x]


def su_like(service: str, cmd: str) -> dict:
    conversion = converted(service)
    r = sh(cmd)
    return after(
        {**parse(r.stdout), "rc": r.returncode, "stderr": r.stderr[-500:], "convert": conversion}
    )


@scenario("su_l")
def _su():
    return su_like("su-l", f"su -l {USER} -c '{PROBE}'")


@scenario("runuser_l")
def _runuser():
    return su_like("runuser-l", f"runuser -l {USER} -c '{PROBE}'")


def pty_login() -> dict:
    """login -f on a pseudo-terminal: the session part of a console login.
    login calls vhangup(2) and reopens its terminal, so a read of the
    master side can fail (EIO) while login is alive: only login's exit, or
    the deadline, ends the conversation."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv("/bin/login", ["login", "-f", USER])
    out = b""
    sent = False
    status = None
    start = time.time()
    while time.time() < start + 60 and status is None:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                out += os.read(fd, 4096)
            except OSError:
                time.sleep(0.1)
        if not sent and (b"$ " in out or time.time() > start + 10):
            os.write(fd, (PROBE + "\nexit\n").encode())
            sent = True
        done, code = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(code)
    if status is None:  # never wait forever
        os.kill(pid, 9)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    try:  # what the pty still holds after login ended
        while select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
    except OSError:
        pass
    text = out.decode("utf-8", "replace")
    return {**parse(text), "rc": status, "tail": text[-300:], "seconds": time.time() - start}


@scenario("login")
def _login():
    conversion = converted("login")
    return after({**pty_login(), "convert": conversion})


@scenario("sshd")
def _sshd():
    conversion = converted("sshd")
    os.makedirs("/run/sshd", exist_ok=True)
    sh("ssh-keygen -A")
    home = f"/home/{USER}"
    os.makedirs(f"{home}/.ssh", exist_ok=True)
    sh("ssh-keygen -q -t ed25519 -N '' -f /root/pykt_key")
    sh(
        f"cp /root/pykt_key.pub {home}/.ssh/authorized_keys && chown -R {USER}: {home}/.ssh "
        f"&& chmod 700 {home}/.ssh && chmod 600 {home}/.ssh/authorized_keys"
    )
    started = sh("/usr/sbin/sshd -o ListenAddress=127.0.0.1 -o UsePAM=yes")
    time.sleep(1)
    r = sh(
        "ssh -i /root/pykt_key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o BatchMode=yes {USER}@127.0.0.1 '{PROBE}'"
    )
    time.sleep(2)  # sshd closes the session after the channel ends
    return after(
        {
            **parse(r.stdout),
            "rc": r.returncode,
            "stderr": r.stderr[-500:],
            "sshd_start": started.returncode,
            "convert": conversion,
        }
    )


@scenario("su_plain")
def _su_plain():
    """Plain su keeps the caller's keyring (Debian's su has no keyinit line);
    with force=auto the target user gets one of its own. The caller is a
    root shell in an anonymous keyring of its own."""
    cmd = f"keyctl session - su {USER} -c 'keyctl rdescribe @s'"
    before = sh(cmd).stdout.strip()
    with open("/etc/pam.d/su", "a") as f:
        f.write(f"session optional {MOD} force=auto\n")
    r = sh(f"keyctl session - su {USER} -c '{PROBE}'")
    return {**parse(r.stdout), "rc": r.returncode, "without": before, "stack": pam_lines("su")}


@scenario("cron")
def _cron():
    """A real cron daemon runs the user's job through a cron stack with
    force=auto persistent. crond runs in a root-owned keyring of its own,
    as systemd's units do. The user parked a key in its persistent keyring
    beforehand."""
    text = open("/etc/pam.d/cron").read()
    line = f"session    optional     {MOD} force=auto persistent\n"
    marker = "@include common-session-noninteractive"
    write("/etc/pam.d/cron", text.replace(marker, line + marker) if marker in text else text + line)
    parked = as_user(
        'keyctl session - sh -c "keyctl add user pykt-cron secret \\$(keyctl get_persistent @s)"',
        stderr=False,
    )
    job = "/usr/local/bin/pykt-cron-job"
    write(
        job,
        "#!/bin/sh\n"
        "{ echo S=$(keyctl rdescribe @s 2>&1); echo ID=$(keyctl id @s 2>&1);"
        " for k in $(keyctl rlist @s 2>/dev/null); do echo L=$(keyctl rdescribe $k); done;"
        " echo R=$(keyctl request user pykt-cron 2>&1); } > /tmp/pykt-cron.out\n",
        0o755,
    )
    write("/tmp/pykt-crontab", f"* * * * * {job}\n")
    crontab = sh(f"crontab -u {USER} /tmp/pykt-crontab")
    # crond wakes at the next minute: start it 3 s before one
    sh('date -s "$(date +%Y-%m-%d) 12:00:57"')
    started = sh("keyctl session - /usr/sbin/cron")
    for _ in range(240):
        if os.path.exists("/tmp/pykt-cron.out"):
            time.sleep(1)
            break
        time.sleep(0.5)
    out = open("/tmp/pykt-cron.out").read() if os.path.exists("/tmp/pykt-cron.out") else ""
    found = parse(out)
    found["request"] = next((x[2:] for x in out.splitlines() if x.startswith("R=")), None)
    return {
        **found,
        "parked": parked,
        "crontab_rc": crontab.returncode,
        "cron_start": started.returncode,
        "stack": pam_lines("cron"),
        "check": pykeyinit("check --json cron"),
    }


# -- the suite's own pam_keyinit.so as the oracle --------------------------------

DIFF_OPTIONS = ["", "force", "revoke", "force revoke"]
DIFF_SEQUENCES = {
    "open-close": "open_session close_session",
    "setcred-delete": "setcred open_session 'setcred(~PAM_SILENT & 4)' close_session",
}
DIFF_STARTS = {
    "none": "",
    "anon": "keyctl session - ",
    "revoked": "keyctl session - sh -c 'keyctl revoke @s && exec \"$@\"' sh ",
}


@scenario("differential")
def _differential():
    """Each case once with pam_keyinit.so and once with pam_pykeyinit in its
    place; the host compares (tests/vm/test_guest.py)."""
    cases = []
    for args in DIFF_OPTIONS:
        for seq_name, ops in DIFF_SEQUENCES.items():
            for start_name, start in DIFF_STARTS.items():
                runs = {}
                for kind, module in (("c", "pam_keyinit.so"), ("py", MOD)):
                    svc = f"pykt-diff-{kind}"
                    write(
                        f"/etc/pam.d/{svc}",
                        f"auth optional {module} {args}\n"
                        f"session required {module} {args}\n"
                        f"session optional pam_exec.so stdout quiet {PROBE_FILE}\n",
                    )
                    r = sh(f"{start}pamtester -v {svc} {USER} {ops}")
                    runs[kind] = {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr}
                cases.append({"args": args, "sequence": seq_name, "start": start_name, **runs})
    return {"cases": cases}


# -- Python programs that drive PAM in-process ----------------------------------

GIL_CLIENT = r"""
import ctypes, json, subprocess, sys
pam = ctypes.PyDLL("libpam.so.0")  # keeps the GIL during the calls
class Conv(ctypes.Structure):
    _fields_ = [("conv", ctypes.c_void_p), ("appdata_ptr", ctypes.c_void_p)]
handle = ctypes.c_void_p()
conv = Conv(None, None)
codes = [pam.pam_start(b"pykt-py", sys.argv[1].encode(), ctypes.byref(conv), ctypes.byref(handle))]
codes.append(pam.pam_open_session(handle, 0))
s = subprocess.run(["keyctl", "rdescribe", "@s"], capture_output=True, text=True).stdout.strip()
codes.append(pam.pam_close_session(handle, 0))
codes.append(pam.pam_end(handle, 0))
print(json.dumps({"codes": codes, "s": s}))
"""


PAM_PYTHON_DEBS = "/pykt-pam-python"  # run.sh: Debian's libpam-python for the suite


def debians_pam_python() -> str:
    """Debian's pam_python.so, unpacked from its .deb (the package
    installed is this project's, which libpam-pykeyinit depends on)."""
    (deb,) = os.listdir(PAM_PYTHON_DEBS)
    sh(f"dpkg-deb -x {PAM_PYTHON_DEBS}/{deb} /pykt-debian-pam-python")
    found = sh("find /pykt-debian-pam-python -name pam_python.so").stdout.split()
    return found[0]


@scenario("python_pam")
def _python_pam():
    """pamela (python3-pamela) and python-pam (python3-pampy) call libpam
    through ctypes.CDLL, which releases the GIL; Debian's pam_python then
    calls the C API without it (pykt-debian: its pam_python.so named by
    path), the installed one (this project's) holds it (pykt-py). A client
    keeping the GIL (ctypes.PyDLL) is the control."""
    debians = debians_pam_python()
    common = "auth required pam_permit.so\naccount required pam_permit.so\n"
    ours = f"auth optional {MOD}\n{common}session optional {MOD} force revoke\n"
    debian_mod = f"{debians} /usr/lib/security/pam_pykeyinit.py"
    debian = f"auth optional {debian_mod}\n{common}session optional {debian_mod} force revoke\n"
    plain = f"{common}session optional pam_keyinit.so force revoke\n"
    write("/etc/pam.d/pykt-py", ours)
    write("/etc/pam.d/pykt-debian", debian)
    write("/etc/pam.d/pykt-nopy", plain)
    pamela = "import pamela, sys; pamela.open_session('{u}', service=sys.argv[1]); print('done')"
    pampy = "import pam, sys; print(pam.pam().authenticate('{u}', '{p}', service=sys.argv[1]))"
    out = {"debians": debians}
    for name, code in (("pamela", pamela), ("python_pam", pampy)):
        code = code.format(u=USER, p=PASSWORD)
        for svc in ("pykt-py", "pykt-debian", "pykt-nopy"):
            r = subprocess.run(  # (stdin not the console: python-pam asks ttyname(0))
                ["python3", "-c", code, svc],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
            )
            out[f"{name}:{svc}"] = {
                "rc": r.returncode,
                "stdout": r.stdout,
                "stderr": r.stderr[-500:],
            }
    r = subprocess.run(["python3", "-c", GIL_CLIENT, USER], capture_output=True, text=True)
    out["gil_client"] = {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr[-500:]}
    return out


CLIENT_SESSION = """
import json, subprocess, sys
lib, user, password, service = sys.argv[1:5]
def here():
    r = subprocess.run(["keyctl", "rdescribe", "@s"], capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()
out = {}
if lib == "pamela":
    import pamela
    pamela.open_session(user, service=service)
    out["opened"] = here()
    pamela.close_session(user, service=service)
else:
    import pam
    p = pam.pam()
    out["auth"] = p.authenticate(user, password, service=service, call_end=False)
    out["open"] = p.open_session()
    out["opened"] = here()
    p.end()
print(json.dumps(out))
"""


@scenario("gil_safe_pam_python")
def _gil_safe_pam_python():
    """With this project's libpam-python (installed with the package by the
    README's command), Debian's python3-pamela opens a session through the
    converted login stack, and python3-pampy through pykt-py (python_pam's
    stack above: python-pam 2.0.2 and 2.1.0 crash on login's session stack
    by themselves, with pam_keyinit.so and no pam_python line, in their
    conversation callback for pam_motd's and pam_mail's messages); apt would
    not go back to Debian's build without removing libpam-pykeyinit."""
    out = {"login_stack": pam_lines("login")}
    out["installed"] = sh("dpkg-query -W -f='${Version}' libpam-python").stdout
    for lib, service in (("pamela", "login"), ("python_pam", "pykt-py")):
        r = subprocess.run(
            ["python3", "-c", CLIENT_SESSION, lib, USER, PASSWORD, service],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out[lib] = {"rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr[-500:]}
    (deb,) = os.listdir(PAM_PYTHON_DEBS)
    r = sh(f"apt-get install -s --allow-downgrades {PAM_PYTHON_DEBS}/{deb}")
    out["downgrade_simulated"] = {"rc": r.returncode, "stdout": r.stdout[-2000:]}
    r = sh(f"pamtester login {USER} open_session close_session")
    out["login_after"] = {"rc": r.returncode, "stderr": r.stderr[-300:]}
    return out


@scenario("pam_auth_update")
def _profile():
    # Take the keyinit lines out of login so only the profile acts.
    text = open("/etc/pam.d/login").read()
    write("/etc/pam.d/login", "\n".join(x for x in text.splitlines() if "keyinit" not in x) + "\n")
    r = sh("pam-auth-update --package --enable pykeyinit")
    observed = pty_login()
    return after(
        {
            **observed,
            "enable_rc": r.returncode,
            "common_session": open("/etc/pam.d/common-session").read(),
            "noninteractive": open("/etc/pam.d/common-session-noninteractive").read(),
        }
    )


@scenario("user_keyring_lifetime")
def _lifetime():
    fresh = 4242
    before = open("/proc/key-users").read()
    first = sh(f"setpriv --reuid={fresh} --regid={fresh} --clear-groups keyctl id @u").stdout
    time.sleep(1)
    second = sh(f"setpriv --reuid={fresh} --regid={fresh} --clear-groups keyctl id @u").stdout
    return {
        "record_before": f"{fresh}:" in before,
        "first": first.strip(),
        "second": second.strip(),
        "key_users_after": f"{fresh}:" in open("/proc/key-users").read(),
    }


print("PYKT-REPORT-BEGIN")
print(json.dumps(REPORT))
print("PYKT-REPORT-END", flush=True)
