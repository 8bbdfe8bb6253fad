"""`pykeyinit convert`: pam_keyinit.so lines become pam_pykeyinit lines."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...pamlib import (
    REVOKED,
    Service,
    Users,
    pamtester,
    pykeyinit,
    ses,
)

MODULE = "/opt/site/pam_pykeyinit/pam_module.py"  # a package's loader, not installed here
# The session part of Debian 12's /etc/pam.d/sshd, as shipped.
DEBIAN_SSHD = """\
# PAM configuration for the Secure Shell service

# Standard Un*x authentication.
@include common-auth

# Disallow non-root logins when /etc/nologin exists.
account    required     pam_nologin.so

# Standard Un*x authorization.
@include common-account

# SELinux needs to be the first session rule.  This ensures that any
# lingering context has been cleared.  Without this it is possible that a
# module could execute code in the wrong domain.
session [success=ok ignore=ignore module_unknown=ignore default=bad]        pam_selinux.so close

# Set the loginuid process attribute.
session    required     pam_loginuid.so

# Create a new session keyring.
session    optional     pam_keyinit.so force revoke

# Standard Un*x session setup and teardown.
@include common-session
"""


def test_the_diff_for_debians_sshd(tmp_path):
    (tmp_path / "sshd").write_text(DEBIAN_SSHD)
    proc = pykeyinit("convert", "--pam-dir", str(tmp_path), "sshd")
    assert proc.returncode == 0, proc.stderr
    name = str(tmp_path / "sshd").lstrip("/")
    assert proc.stdout == (
        f"--- a/{name}\n"
        f"+++ b/{name}\n"
        "@@ -18,7 +18,7 @@\n"
        " session    required     pam_loginuid.so\n"
        " \n"
        " # Create a new session keyring.\n"
        "-session    optional     pam_keyinit.so force revoke\n"
        "+session    optional     pam_python.so pam_pykeyinit.py force revoke\n"
        " \n"
        " # Standard Un*x session setup and teardown.\n"
        " @include common-session\n"
    )
    assert (tmp_path / "sshd").read_text() == DEBIAN_SSHD  # without --write, untouched


def test_write_changes_one_line_and_keeps_mode_and_owner(tmp_path):
    path = tmp_path / "sshd"
    path.write_text(DEBIAN_SSHD)
    path.chmod(0o640)
    os.chown(path, 0, 42)
    proc = pykeyinit("convert", "--pam-dir", str(tmp_path), "--module", MODULE, "--write", "sshd")
    assert proc.returncode == 0, proc.stderr
    old, new = DEBIAN_SSHD.splitlines(), path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(old, new) if a != b]
    assert len(old) == len(new) and changed == [
        (
            "session    optional     pam_keyinit.so force revoke",
            f"session    optional     pam_python.so {MODULE} force revoke",
        )
    ]
    st = path.stat()
    assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (0o640, 0, 42)
    assert sorted(os.listdir(tmp_path)) == ["sshd"]  # no temporary file left


def test_a_login_through_the_written_file(tree, probe, users):
    svc = Service(["session required pam_keyinit.so force revoke", probe])
    try:
        proc = pykeyinit("convert", "--module", str(tree), "--write", svc.name)
        assert proc.returncode == 0, proc.stderr
        assert f"pam_python.so {tree} force revoke" in svc.path.read_text()
        res = pamtester(svc.name, Users.GID_USER, ["open_session", "close_session"])
        assert res.rc == 0, res.stderr
        opened = res.probes[: res.probes.index("type=close_session")]
        assert f"s={ses(Users.GID_UID, Users.GID_GID)}" in opened
        assert any(p.endswith(f";_uid.{Users.GID_UID}") for p in opened if p.startswith("link="))
        assert f"s={REVOKED}" in res.probes
    finally:
        svc.close()


def test_a_pam_auth_update_file_is_refused(tmp_path):
    text = (Path("/etc/pam.d/common-session")).read_text()
    assert "# end of pam-auth-update config" in text
    (tmp_path / "common-session").write_text(text + "session optional pam_keyinit.so\n")
    proc = pykeyinit("convert", "--pam-dir", str(tmp_path), "--write", "common-session")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "managed by pam-auth-update" in proc.stderr and "--enable pykeyinit" in proc.stderr
    assert (tmp_path / "common-session").read_text().endswith("pam_keyinit.so\n")


def test_a_vendor_stack_is_copied_to_etc_and_logs_in(tree, probe, users, system_folders):
    """As for systemd-user on Debian 13: the service's file is only in the
    vendor folder; convert --write makes /etc/pam.d's from it, leaves the
    vendor file as it is, and libpam then reads the new one."""
    etc, vendor, prefix = system_folders
    svc = f"{prefix}-login"
    text = f"# vendor\nsession required pam_keyinit.so force revoke\n{probe}\n"
    (vendor / svc).write_text(text)
    proc = pykeyinit("convert", "--module", str(tree), "--write", svc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:2] == [
        f"--- a{vendor / svc}\t(vendor file, left as it is)",
        f"+++ b{etc / svc}\t(new file)",
    ]
    assert f"wrote {etc / svc} from {vendor / svc}, which is left as it is" in proc.stderr
    assert (vendor / svc).read_text() == text
    assert (etc / svc).read_text() == text.replace("pam_keyinit.so", f"pam_python.so {tree}")
    res = pamtester(svc, Users.GID_USER, ["open_session", "close_session"])
    assert res.rc == 0, res.stderr
    assert f"s={ses(Users.GID_UID, Users.GID_GID)}" in res.probes
    assert f"s={REVOKED}" in res.probes
    again = pykeyinit("convert", "--module", str(tree), "--write", svc)
    assert again.returncode == 0 and again.stdout == ""
    assert f"no pam_keyinit.so line in {etc / svc}" in again.stderr


def test_a_bracketed_module_word_becomes_a_pam_pykeyinit_line(tree, probe, users):
    """libpam runs '[pam_keyinit.so]' as pam_keyinit.so (it strips the
    brackets of every word); convert replaces the word, brackets and all,
    and keeps the next word, which followed the ']' directly, apart: the
    written line runs pam_python.so with pam_pykeyinit, as check then says."""
    svc = Service(["session required [pam_keyinit.so][force] [revoke]", probe])
    try:
        proc = pykeyinit("convert", "--module", str(tree), "--write", svc.name)
        assert proc.returncode == 0, proc.stderr
        first = svc.path.read_text().splitlines()[0]
        assert first == f"session required pam_python.so {tree} [force] [revoke]"
        res = pamtester(svc.name, Users.GID_USER, ["open_session", "close_session"])
        assert res.rc == 0, res.stderr
        opened = res.probes[: res.probes.index("type=close_session")]
        assert f"s={ses(Users.GID_UID, Users.GID_GID)}" in opened
        assert f"s={REVOKED}" in res.probes  # 'revoke' reached pam_pykeyinit
        checked = pykeyinit("check", "--json", svc.name)
        infos = [f["message"] for f in json.loads(checked.stdout) if f["severity"] == "info"]
        assert "session keyring from pam_pykeyinit (force revoke)" in infos, checked.stdout
    finally:
        svc.close()
