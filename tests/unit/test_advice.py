from __future__ import annotations

import errno

import pytest

from pam_pykeyinit.advice import describe
from pam_pykeyinit.kernel import KernelError

pytestmark = pytest.mark.unit


def test_keyctl_quota_line_names_call_errno_and_remedy():
    err = KernelError("keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0)", errno.EDQUOT)
    line = describe(err, "creating the session keyring")
    assert line.startswith("creating the session keyring: keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0)")
    assert "EDQUOT (Disk quota exceeded)" in line
    assert "/proc/key-users" in line and "kernel.keys.maxkeys" in line


@pytest.mark.parametrize("err", [errno.EPERM, errno.ENOSYS])
def test_keyctl_blocked_mentions_seccomp(err):
    line = describe(KernelError("keyctl(KEYCTL_LINK)", err), "x")
    assert "seccomp" in line


def test_credential_eperm_mentions_capabilities():
    line = describe(KernelError("setresuid(5, -1, 0)", errno.EPERM), "x")
    assert "CAP_SETUID" in line and "setresuid(5, -1, 0) failed: EPERM" in line


def test_unknown_errno_still_readable():
    line = describe(KernelError("keyctl(X)", 9999), "x")
    assert "errno 9999" in line
