from __future__ import annotations

import errno

import pytest

from pam_pykeyinit.advice import describe
from pam_pykeyinit.kernel import (
    KEY_SPEC_SESSION_KEYRING,
    KEY_SPEC_USER_KEYRING,
    KEYCTL,
    KEYCTL_JOIN_SESSION_KEYRING,
    KEYCTL_LINK,
    KernelError,
)

pytestmark = pytest.mark.unit


def test_keyctl_quota_line_names_call_errno_and_remedy():
    err = KernelError(KEYCTL, (KEYCTL_JOIN_SESSION_KEYRING, 0), errno.EDQUOT)
    line = describe(err, "creating the session keyring")
    assert line.startswith("creating the session keyring: keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0)")
    assert "EDQUOT (Disk quota exceeded)" in line
    assert "/proc/key-users" in line and "kernel.keys.maxkeys" in line


@pytest.mark.parametrize("err", [errno.EPERM, errno.ENOSYS])
def test_keyctl_blocked_mentions_seccomp(err):
    link = (KEYCTL_LINK, KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING)
    line = describe(KernelError(KEYCTL, link, err), "x")
    assert "seccomp" in line


def test_credential_eperm_mentions_capabilities():
    line = describe(KernelError("setresuid", (5, -1, 0), errno.EPERM), "x")
    assert "CAP_SETUID" in line and "setresuid(5, -1, 0) failed: EPERM" in line


def test_unknown_errno_still_readable():
    line = describe(KernelError(KEYCTL, (99,), 9999), "x")
    assert "keyctl(99) failed: errno 9999" in line


def test_fields_not_text_choose_the_advice():
    # the same errno: keyctl's table for keyctl, the credential table otherwise
    keyctl = KernelError(KEYCTL, (KEYCTL_LINK, KEY_SPEC_USER_KEYRING, -3), errno.EPERM)
    creds = KernelError("setresgid", (1, -1, 0), errno.EPERM)
    assert "seccomp" in describe(keyctl, "x") and "CAP_SETUID" in describe(creds, "x")
    assert keyctl.op == KEYCTL_LINK and creds.op is None
    assert keyctl.shown_call() == (
        "keyctl(KEYCTL_LINK, KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING)"
    )


def test_persistent_quota_gets_the_one_quota_advice():
    """EDQUOT has one text, in the keyctl table, for every keyctl operation."""
    from pam_pykeyinit.advice import KEYCTL_ADVICE, for_error
    from pam_pykeyinit.kernel import KEYCTL_GET_PERSISTENT

    err = KernelError(KEYCTL, (KEYCTL_GET_PERSISTENT, 47011, -3), errno.EDQUOT)
    assert for_error(err) == KEYCTL_ADVICE[errno.EDQUOT]
    assert "/proc/key-users" in for_error(err)
