"""A Python program that opens PAM sessions in-process, as JupyterHub's
PAMAuthenticator does: through pamela or python-pam (ctypes, which releases
the GIL around every libpam call), so that pam_python runs inside this
interpreter. Run by tests/pam/test_python_clients.py in a child process
(a crash, or a thread's credentials, must not reach the test runner):

    pyclient.py SCENARIO SERVICE USER... [--count N] [--watch N]

Scenarios (each prints one JSON object on stdout; exit 0 when every PAM
call succeeded):
    pamela        for each USER: pamela.open_session, then close_session
    python-pam    for each USER: authenticate (call_end=False), open_session,
                  close_session, end: one handle for the whole session
    repeat        --count sessions of USER with pamela; VmRSS after the
                  first tenth and at the end
    threads       one thread per USER, all at once, each: open_session, its
                  @s as keyctl(1) sees it in a child of that thread, then
                  close_session; meanwhile a watcher thread reads its own
                  uid and gid --watch times and counts any change
    executor      JupyterHub's pattern: open_session on a ThreadPoolExecutor
                  of --count workers, then close_session on it, for each
                  USER; which worker ran each, and @s of that worker
    authenticate  JupyterHub's authenticate: for each USER, a thread runs
                  pamela.authenticate (pam_start ... pam_end; no call
                  reaches a session line) and exits
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor


def keyring_here() -> str:
    """'SERIAL DESCRIPTION' of the calling thread's @s, as keyctl(1) in a
    child of it sees it: fork copies the calling thread's credentials."""
    script = 'echo "$(keyctl id @s 2>&1) $(keyctl rdescribe @s 2>&1)"'
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout.strip()


def state_from_here(serial: str) -> str:
    """What a process that does not possess keyring SERIAL learns of it:
    'Key has been revoked' once revoked, 'Permission denied' while valid
    (a user's _ses grants nothing to others)."""
    proc = subprocess.run(["keyctl", "rdescribe", serial], capture_output=True, text=True)
    return (proc.stdout + proc.stderr).strip().split(": ", 1)[-1]


def vm_rss_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def pamela_session(service: str, user: str) -> None:
    import pamela

    pamela.open_session(user, service=service)
    pamela.close_session(user, service=service)


def python_pam_session(service: str, user: str) -> dict[str, object]:
    import pam

    client = pam.pam()
    auth = client.authenticate(user, "unused", service=service, call_end=False)
    opened = client.open_session()
    closed = client.close_session()
    client.end()
    return {"user": user, "auth": auth, "open": opened, "close": closed}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("service")
    parser.add_argument("users", nargs="+")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--watch", type=int, default=0)
    args = parser.parse_args()
    out: dict[str, object] = {"python": sys.version.split()[0]}
    ok = True
    if args.scenario == "pamela":
        for user in args.users:
            pamela_session(args.service, user)
    elif args.scenario == "python-pam":
        results = [python_pam_session(args.service, user) for user in args.users]
        out["sessions"] = results
        ok = all(r["auth"] and r["open"] == 0 and r["close"] == 0 for r in results)
    elif args.scenario == "repeat":
        user = args.users[0]
        tenth = max(1, args.count // 10)
        for i in range(args.count):
            pamela_session(args.service, user)
            if i + 1 == tenth:
                out["rss_kib_after_tenth"] = vm_rss_kib()
        out["rss_kib_at_end"] = vm_rss_kib()
    elif args.scenario == "threads":
        start = threading.Barrier(len(args.users) + 1)
        done = threading.Event()
        seen: dict[str, str] = {}
        errors: list[str] = []
        watch = {"reads": 0, "changes": 0}

        def session(user: str) -> None:
            import pamela

            start.wait()
            try:
                pamela.open_session(user, service=args.service)
                seen[user] = keyring_here()
                pamela.close_session(user, service=args.service)
            except Exception as exc:
                errors.append(f"{user}: {exc!r}")

        def watcher() -> None:
            mine = (os.getresuid(), os.getresgid())
            start.wait()
            while watch["reads"] < args.watch or not done.is_set():
                watch["reads"] += 1
                if (os.getresuid(), os.getresgid()) != mine:
                    watch["changes"] += 1

        threads = [threading.Thread(target=session, args=(u,)) for u in args.users]
        looker = threading.Thread(target=watcher)
        for t in [*threads, looker]:
            t.start()
        for t in threads:
            t.join()
        done.set()
        looker.join()
        out.update(keyrings=seen, errors=errors, watch=watch)
        ok = not errors
    elif args.scenario == "executor":
        runs = []
        with ThreadPoolExecutor(args.count) as pool:
            for user in args.users:
                import pamela

                def opened(user: str = user) -> tuple[int, str]:
                    pamela.open_session(user, service=args.service)
                    return threading.get_ident(), keyring_here()

                def closed(user: str = user) -> tuple[int, str]:
                    pamela.close_session(user, service=args.service)
                    return threading.get_ident(), keyring_here()

                (open_thread, at_open) = pool.submit(opened).result()
                (close_thread, at_close) = pool.submit(closed).result()
                runs.append(
                    {
                        "user": user,
                        "same_thread": open_thread == close_thread,
                        "at_open": at_open,  # the opening worker's @s
                        "at_close": at_close,  # the closing worker's @s, after close
                        "opened_after_close": state_from_here(at_open.split()[0]),
                    }
                )
        out["runs"] = runs
    elif args.scenario == "authenticate":
        said: dict[str, str] = {}

        def authenticate(user: str) -> None:
            import pamela

            try:
                pamela.authenticate(user, "unused", service=args.service)
                said[user] = "ok"
            except pamela.PAMError as exc:
                said[user] = repr(exc)

        for user in args.users:
            worker = threading.Thread(target=authenticate, args=(user,))
            worker.start()
            worker.join()  # the thread has exited: its keys' destructors ran
        out["authenticated"] = said
        ok = all(v == "ok" for v in said.values())
    else:
        parser.error(f"unknown scenario {args.scenario}")
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
