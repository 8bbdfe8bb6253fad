"""Capture the syslog datagrams a command sends, without touching the host.

    unshare --mount /usr/bin/python3 logcapture.py OUT.json -- COMMAND...

Inside the private mount namespace that unshare(1) gives, /dev is covered by
a tmpfs whose entries are symlinks to the host's /dev (bind-mounted aside),
except /dev/log, which becomes this program's datagram socket. The command
runs with that /dev; every datagram it sends to /dev/log is written to
OUT.json as {"facility", "severity", "text"}. Exits with the command's code.

Before the command runs, this program sends one line of its own through
libc's syslog(3), as the module does: CANARY. It is the first line of
OUT.json when the capture works, so a test that finds no log line can tell
"nothing was logged" from "nothing was captured" (tests/pamlib.py).
"""

import ctypes
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

CANARY = "logcapture: capture works"


def send_canary() -> None:
    libc = ctypes.CDLL(None)
    libc.syslog((10 << 3) | 6, b"%s", CANARY.encode())  # LOG_AUTHPRIV | LOG_INFO
    libc.closelog()  # the next syslog() of this process connects anew


def collect(sock: socket.socket, into: list[bytes]) -> None:
    while True:
        data = sock.recv(65536)
        if not data:  # shutdown() after the command ended
            return
        into.append(data)


def main() -> int:
    out, sep, *cmd = sys.argv[1:]
    assert sep == "--" and cmd, __doc__
    # Beside OUT, so that whoever cleans up OUT cleans this up too.
    host_dev = tempfile.mkdtemp(prefix="host-dev-", dir=os.path.dirname(os.path.abspath(out)))
    subprocess.run(["mount", "--rbind", "/dev", host_dev], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "pykt-dev", "/dev"], check=True)
    for name in os.listdir(host_dev):
        if name != "log":
            os.symlink(os.path.join(host_dev, name), os.path.join("/dev", name))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    os.chmod("/dev/log", 0o666)
    # Read while the command runs: a full socket buffer would block its
    # syslog() calls.
    received: list[bytes] = []
    reader = threading.Thread(target=collect, args=(sock, received), daemon=True)
    reader.start()
    send_canary()
    rc = subprocess.run(cmd).returncode
    sock.shutdown(socket.SHUT_RDWR)
    reader.join()
    lines = []
    for data in received:
        text = data.decode("utf-8", "replace")
        m = re.match(r"<(\d+)>(.*)", text, re.S)
        pri = int(m.group(1)) if m else -1
        lines.append({"facility": pri >> 3, "severity": pri & 7, "text": m.group(2) if m else text})
    with open(out, "w") as f:
        json.dump(lines, f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
