"""`make bench`: pam_pykeyinit's cost per login, side by side, in one run.

Three stacks, each `session required MODULE force revoke`, are timed as
whole `pamtester SERVICE USER open_session close_session` runs:
  floor   - pam_python with a module that returns at once (bench/floor_module.py)
  pykeyinit - pam_python with pam_pykeyinit
  c       - Linux-PAM's pam_keyinit.so
Each round runs all three in a rotating order (paired runs, so drift and
noise hit every variant alike); the table gives medians over the rounds and
the ratios of the medians. Needs root: it writes /etc/pam.d files and a
user, and removes them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pamlib import REPO, Service, Users, install_tree


def timed(service: str, user: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        ["pamtester", service, user, "open_session", "close_session"],
        capture_output=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{service}: pamtester failed: {proc.stderr.decode()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=150)
    args = parser.parse_args()

    top = Path(tempfile.mkdtemp(prefix="pykt-bench-"))
    users = Users()
    services: dict[str, Service] = {}
    try:
        module = install_tree(top)
        floor = top / "floor_module.py"
        shutil.copyfile(REPO / "bench" / "floor_module.py", floor)
        floor.chmod(0o644)
        services = {
            "floor": Service([f"session required pam_python.so {floor} force revoke"]),
            "pykeyinit": Service([f"session required pam_python.so {module} force revoke"]),
            "c": Service(["session required pam_keyinit.so force revoke"]),
        }
        names = list(services)
        samples: dict[str, list[float]] = {n: [] for n in names}
        for name in names:  # warm the page cache once
            timed(services[name].name, Users.GID_USER)
        for i in range(args.rounds):
            order = names[i % 3 :] + names[: i % 3]
            for name in order:
                samples[name].append(timed(services[name].name, Users.GID_USER))
    finally:
        for svc in services.values():
            svc.close()
        users.remove()
        shutil.rmtree(top)

    med = {n: statistics.median(v) * 1000 for n, v in samples.items()}
    q = {n: statistics.quantiles(v, n=4) for n, v in samples.items()}
    print(f"pamtester open_session+close_session, {args.rounds} paired rounds, median ms")
    print(f"{'variant':<10} {'median':>8} {'p25':>8} {'p75':>8}")
    for n in samples:
        print(f"{n:<10} {med[n]:8.2f} {q[n][0] * 1000:8.2f} {q[n][2] * 1000:8.2f}")
    extra = statistics.median(a - b for a, b in zip(samples["pykeyinit"], samples["floor"]))
    print()
    print(f"pykeyinit - floor, median of paired differences = {extra * 1000:.2f} ms")
    print(f"pykeyinit / floor = {med['pykeyinit'] / med['floor']:.3f}  (target <= 1.10)")
    print(f"pykeyinit / c     = {med['pykeyinit'] / med['c']:.3f}")
    print(f"floor / c         = {med['floor'] / med['c']:.3f}  (pam_python's own price)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
