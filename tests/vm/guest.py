"""Runs inside the Debian guest as root, right after boot (tools/vm/init).

Drives real logins with pam_pykeyinit in place of pam_keyinit and prints
what it observed as one JSON object between two marker lines on the serial
console; tests/vm/test_guest.py asserts on it. The guest runs from an
initramfs: nothing here outlives the boot.
"""

import json
import os
import pty
import re
import select
import subprocess
import time

REPORT: dict = {}
USER, UID, GID = "alice", 1001, 2001
MOD = "pam_python.so pam_pykeyinit.py"
# What the session holds; and a process that keeps the session keyring
# after logout (as tmux or screen would), so that the revoke can be seen.
PROBE = (
    "echo S=$(keyctl rdescribe @s 2>&1); echo ID=$(keyctl id @s 2>&1); "
    "for k in $(keyctl rlist @s 2>/dev/null); do echo L=$(keyctl rdescribe $k); done; "
    "setsid sleep 30 </dev/null >/dev/null 2>&1 &"
)


def sh(cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120, **kw)


def as_user(cmd: str) -> str:
    r = sh(f"setpriv --reuid={UID} --regid={GID} --clear-groups sh -c '{cmd}'")
    return (r.stdout + r.stderr).strip()


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


def replace_keyinit(path: str) -> None:
    text = open(path).read()
    new = re.sub(r"pam_keyinit\.so", MOD, text)
    open(path, "w").write(new)


def scenario(name):
    def wrap(fn):
        print(f"PYKT-STEP {name}", flush=True)
        try:
            REPORT[name] = fn()
        except Exception as exc:
            REPORT[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return fn

    return wrap


def setup() -> dict:
    sh(f"groupadd -g {GID} staffers && useradd -m -u {UID} -g {GID} -s /bin/sh {USER}")
    sh(f"echo '{USER}:pykt-Passw0rd' | chpasswd")
    return {
        "kernel": os.uname().release,
        "user": sh(f"id {USER}").stdout.strip(),
        "deb": sh("dpkg-query -W -f='${Version} ${Status}' libpam-pykeyinit").stdout,
        "loader": os.path.realpath("/lib/security/pam_pykeyinit.py"),
        "common_session_before": open("/etc/pam.d/common-session").read(),
        "noninteractive_before": open("/etc/pam.d/common-session-noninteractive").read(),
    }


REPORT["setup"] = setup()


@scenario("pamtester")
def _pamtester():
    probe = "/usr/local/bin/pykt-probe"
    with open(probe, "w") as f:
        f.write(f"#!/bin/sh\n{PROBE}\n")
    os.chmod(probe, 0o755)
    with open("/etc/pam.d/pykt-pamtester", "w") as f:
        f.write(
            f"session required {MOD} force revoke\n"
            f"session optional pam_exec.so stdout quiet type=open_session {probe}\n"
        )
    r = sh(f"pamtester pykt-pamtester {USER} open_session close_session")
    return after({**parse(r.stdout), "rc": r.returncode, "stderr": r.stderr})


def su_like(pam_file: str, cmd: str) -> dict:
    replace_keyinit(pam_file)
    r = sh(cmd)
    return after(
        {
            **parse(r.stdout),
            "rc": r.returncode,
            "stderr": r.stderr[-500:],
            "stack": [x for x in open(pam_file).read().splitlines() if "pykeyinit" in x],
        }
    )


@scenario("su_l")
def _su():
    return su_like("/etc/pam.d/su-l", f"su -l {USER} -c '{PROBE}'")


@scenario("runuser_l")
def _runuser():
    return su_like("/etc/pam.d/runuser-l", f"runuser -l {USER} -c '{PROBE}'")


def pty_login(extra_env=None) -> dict:
    """login -f on a pseudo-terminal: the session part of a console login."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv("/bin/login", ["login", "-f", USER])
    out = b""
    sent = False
    deadline = time.time() + 30
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if not sent and (b"$ " in out or time.time() > deadline - 25):
            os.write(fd, (PROBE + "\nexit\n").encode())
            sent = True
    status = None
    for _ in range(100):  # login ends when its shell exits; never wait forever
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    text = out.decode("utf-8", "replace")
    return {**parse(text), "rc": status, "tail": text[-300:]}


@scenario("login")
def _login():
    replace_keyinit("/etc/pam.d/login")
    return after(pty_login())


@scenario("sshd")
def _sshd():
    replace_keyinit("/etc/pam.d/sshd")
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
    time.sleep(1)  # sshd closes the session after the channel ends
    return after(
        {
            **parse(r.stdout),
            "rc": r.returncode,
            "stderr": r.stderr[-500:],
            "sshd_start": started.returncode,
        }
    )


@scenario("pam_auth_update")
def _profile():
    # Take the C and Python lines out of login so only the profile acts.
    text = open("/etc/pam.d/login").read()
    open("/etc/pam.d/login", "w").write(
        "\n".join(x for x in text.splitlines() if "keyinit" not in x) + "\n"
    )
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
