"""Numbers in the package checked against the C headers they come from.

Syscall numbers: each architecture's UAPI headers from Debian's
linux-libc-dev-*-cross packages (installed by `make deps`), run through the
host gcc's preprocessor with that architecture's defining macro.
PAM codes: Linux-PAM's <security/_pam_types.h> (libpam0g-dev).
keyctl constants: <linux/keyctl.h> (linux-libc-dev).
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from pam_pykeyinit import kernel, keyinit

from ..conftest import require

pytestmark = pytest.mark.unit

# abi -> (include folder, macros for the preprocessor, name of each call)
ARCHES = {
    "x86_64-linux-gnu": ("/usr/include/x86_64-linux-gnu", [], {}),
    "i386-linux-gnu": ("/usr/i686-linux-gnu/include", ["-U__x86_64__", "-D__i386__"], "32"),
    "arm-linux-gnueabihf": (
        "/usr/arm-linux-gnueabihf/include",
        ["-U__x86_64__", "-D__arm__", "-D__ARM_EABI__"],
        "32",
    ),
    "aarch64-linux-gnu": ("/usr/aarch64-linux-gnu/include", ["-U__x86_64__", "-D__aarch64__"], {}),
    "riscv64-linux-gnu": (
        "/usr/riscv64-linux-gnu/include",
        ["-U__x86_64__", "-D__riscv", "-D__riscv_xlen=64"],
        {},
    ),
    "powerpc64le-linux-gnu": (
        "/usr/powerpc64le-linux-gnu/include",
        ["-U__x86_64__", "-D__powerpc64__", "-D__powerpc__"],
        {},
    ),
    "s390x-linux-gnu": ("/usr/s390x-linux-gnu/include", ["-U__x86_64__", "-D__s390x__"], {}),
}
UID_CALLS = {kernel.SETRESUID, kernel.SETRESGID, kernel.SETFSUID, kernel.SETFSGID}


def preprocess(source: str, args: list[str]) -> str:
    return subprocess.run(
        ["gcc", "-E", "-P", "-x", "c", *args, "-"],
        input=source,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def evaluate(expr: str) -> int:
    # The headers give plain numbers, negatives, hex with a U suffix, or sums
    # such as (0 + 311).
    expr = re.sub(r"\b(0x[0-9a-fA-F]+|[0-9]+)[uU]\b", r"\1", expr)
    assert re.fullmatch(r"[\s()0-9a-fA-F+x-]+", expr), expr
    return int(eval(expr, {"__builtins__": {}}))  # noqa: S307 - digits, + and ( ) only


def test_every_listed_abi_is_checked():
    assert set(ARCHES) == set(kernel.TABLES)


@pytest.mark.parametrize("abi", sorted(ARCHES))
def test_syscall_numbers_match_kernel_headers(abi):
    include, macros, suffix = ARCHES[abi]
    require(os.path.isdir(include), f"{include} missing: apt-get install linux-libc-dev-*-cross")
    table = kernel.TABLES[abi]
    names = {name: name + (suffix if suffix and name in UID_CALLS else "") for name in table}
    source = "#include <asm/unistd.h>\n" + "".join(
        f"pykeyinit_{name} = __NR_{nr_name};\n" for name, nr_name in names.items()
    )
    out = preprocess(source, ["-nostdinc", "-I", include, *macros])
    found = dict(re.findall(r"pykeyinit_(\w+) = (.*?);", out))
    assert {name: evaluate(found[name]) for name in table} == table


def test_fallback_never_guesses_unlisted_abis():
    assert kernel.table_for(kernel.abi_name(None, "mips64", 8)) is None
    assert kernel.table_for(kernel.abi_name(None, "x86_64", 4)) is None  # x32
    assert kernel.abi_name(None, "x86_64", 8) == "x86_64-linux-gnu"
    assert kernel.abi_name("aarch64-linux-gnu", "x86_64", 8) == "aarch64-linux-gnu"


def _constants(header: str, names: list[str]) -> dict[str, int]:
    source = f"#include <{header}>\n" + "".join(f"pykeyinit_{n} = {n};\n" for n in names)
    out = preprocess(source, [])
    return {n: evaluate(v) for n, v in re.findall(r"pykeyinit_(\w+) = (.*?);", out)}


def test_pam_constants_match_linux_pam_header():
    require(os.path.exists("/usr/include/security/_pam_types.h"), "libpam0g-dev missing")
    names = [n for n in vars(keyinit) if n.startswith("PAM_")]
    assert _constants("security/_pam_types.h", names) == {n: getattr(keyinit, n) for n in names}


def test_keyctl_constants_match_linux_keyctl_h():
    names = [
        n
        for n, v in vars(kernel).items()
        if n.startswith(("KEY_SPEC_", "KEYCTL_")) and isinstance(v, int)
    ]
    assert _constants("linux/keyctl.h", names) == {n: getattr(kernel, n) for n in names}
