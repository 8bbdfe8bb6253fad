"""Run a command with no session keyring of its own, as the kernel sees it.

    /usr/bin/python3 user_session.py USER -- COMMAND...

A process that has never had a session keyring gets the user-session
keyring of its real uid installed as its session keyring at its first @s
access (security/keys/process_keys.c, lookup_user_key(): "always install a
session keyring upon access if one doesn't exist yet"). pam_keyinit makes
that first access after taking the user's real uid, so in such a process
it finds @s == @us and creates a keyring (user-session-keyring(7)).

No call lets a process leave a session keyring it has, so this makes the
same state for USER (a name or a uid; an unknown name means root) from any
starting state: with USER's real and effective uid it looks @us up (created
if needed), joins it by name (KEYCTL_JOIN_SESSION_KEYRING, which finds a
keyring the caller may search), checks that it joined that very keyring,
takes uid and gid 0 back, and executes COMMAND. As root only; exits 125 on
a failure of its own, as env(1).
"""

import ctypes
import os
import pwd
import sys

KEYCTL_GET_KEYRING_ID = 0
KEYCTL_JOIN_SESSION_KEYRING = 1
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_SESSION_KEYRING = -5
NR_KEYCTL = {"x86_64": 250, "aarch64": 219, "i686": 288, "riscv64": 219, "ppc64le": 271}


def keyctl(*args: object) -> int:
    number = NR_KEYCTL.get(os.uname().machine)
    if number is None:
        raise OSError(0, f"no keyctl number for {os.uname().machine} here")
    libc = ctypes.CDLL(None, use_errno=True)
    ret = libc.syscall(ctypes.c_long(number), *args)
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"keyctl{args}: {os.strerror(err)}")
    return int(ret)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: user_session.py USER -- COMMAND...", file=sys.stderr)
        return 125
    user, command = argv[0], argv[2:]
    try:
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
    except KeyError:
        uid = 0
    try:
        os.setresuid(uid, uid, 0)
        want = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_SESSION_KEYRING, 1)
        # 0 when it already is this process's session keyring (join_session_keyring())
        keyctl(KEYCTL_JOIN_SESSION_KEYRING, f"_uid_ses.{uid}".encode())
        got = keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)
        os.setresuid(0, 0, 0)
    except OSError as err:
        print(f"user_session.py: {err}", file=sys.stderr)
        return 125
    if got != want or os.getresuid() != (0, 0, 0):
        print(f"user_session.py: joined {got}, not _uid_ses.{uid} ({want})", file=sys.stderr)
        return 125
    os.execvp(command[0], command)  # noqa: S606 - the command to run in that state
    return 125  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
