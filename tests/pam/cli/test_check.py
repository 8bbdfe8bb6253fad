"""`pykeyinit check` on a fixture stack folder that holds every finding.

The folder is made per test under tmp_path; module folders and the
interpreter asked for the import path are stand-ins given on the command
line (--module-dir, --python), so that no real folder is loosened.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from ...pamlib import as_user, pykeyinit


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text.strip() + "\n")


@pytest.fixture
def hosts(tmp_path):
    """Stand-in module folder (empty files named like modules) and two
    stand-in interpreters: one whose import path holds a world-writable
    folder, one whose import path is clean."""
    modules = tmp_path / "modules"
    modules.mkdir()
    for name in ("pam_python.so", "pam_keyinit.so", "pam_permit.so", "pam_fscrypt.so"):
        (modules / name).touch()
    writable = tmp_path / "site-writable"
    writable.mkdir()
    writable.chmod(0o777)
    dirty, clean = tmp_path / "python-dirty", tmp_path / "python-clean"
    dirty.write_text(f'#!/bin/sh\necho \'["/usr/lib/python3", "{writable}"]\'\n')
    clean.write_text("#!/bin/sh\necho '[\"/usr/lib\"]'\n")
    for f in (dirty, clean):
        f.chmod(0o755)
    return modules, dirty, clean, writable


@pytest.fixture
def refused_tree(own_tree):
    """A package the loader refuses: one of its files is group-writable."""
    (own_tree.parent / "kernel.py").chmod(0o664)
    return own_tree


@pytest.fixture
def stacks(tmp_path, tree, refused_tree):
    pam = tmp_path / "pam.d"
    pam.mkdir()
    ours = f"pam_python.so {tree}"
    write(
        pam,
        "common-session",
        "session required pam_permit.so\nsession optional pam_keyinit.so revoke",
    )
    write(pam, "common-auth", "auth required pam_permit.so")
    # includes and substacks reach common-session's keyinit line
    write(pam, "login", "@include common-auth\n@include common-session")
    write(pam, "su-l", "auth include common-auth\nsession include common-session")
    write(pam, "runuser-l", "session substack common-session")
    write(pam, "both", f"session optional pam_keyinit.so force\nsession optional {ours} force")
    write(pam, "missing", "session optional pam_python.so /nonexistent/pam_pykeyinit/pam_module.py")
    write(pam, "refused", f"session optional pam_python.so {refused_tree} force")
    write(pam, "no-python", "session optional /nonexistent/pam_python.so /x/pam_pykeyinit.py")
    write(
        pam,
        "typo",
        f"session optional {ours} forse revoke\nsession optional pam_keyinit.so persistent",
    )
    write(pam, "early-keys", f"session optional pam_fscrypt.so\nsession optional {ours} force")
    write(pam, "sshd", "session required pam_permit.so")
    write(pam, "loopy", "@include loop-b")
    write(pam, "loop-b", "session include loopy")
    write(pam, "clean", f"# a good one\nsession    optional    {ours} force \\\n revoke")
    return pam


def check(
    pam: Path, modules: Path, python: Path, *services: str, vendor: Path | None = None
) -> tuple[int, list[dict]]:
    proc = pykeyinit(
        "check",
        "--pam-dir",
        str(pam),
        *(["--vendor-dir", str(vendor)] if vendor else []),
        "--module-dir",
        str(modules),
        "--python",
        str(python),
        "--json",
        *services,
    )
    return proc.returncode, json.loads(proc.stdout)


def by_service(findings: list[dict]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for f in findings:
        assert set(f) == {"service", "file", "line", "severity", "message"}
        out.setdefault(f["service"], []).append((f["severity"], f["message"]))
    return out


def has(found: list[tuple[str, str]], severity: str, *words: str) -> bool:
    return any(s == severity and all(w in m for w in words) for s, m in found)


def test_every_finding(stacks, hosts):
    modules, dirty, _, writable = hosts
    rc, findings = check(stacks, modules, dirty)
    assert rc == 1
    got = by_service(findings)
    # common-* are fragments, not services of their own
    assert "common-session" not in got and "loop-b" in got
    for service in ("login", "su-l", "runuser-l"):
        assert has(got[service], "info", "session keyring from pam_keyinit.so (revoke)"), got[
            service
        ]
        assert not [s for s, _ in got[service] if s != "info"], got[service]
    assert has(got["both"], "error", "pam_keyinit.so and pam_pykeyinit are both")
    assert has(got["missing"], "error", "loader would refuse", "does not exist")
    assert has(got["refused"], "error", "loader would refuse", "kernel.py is writable by group")
    assert has(got["no-python"], "error", "/nonexistent/pam_python.so not found")
    assert has(got["typo"], "warning", "unknown option 'forse'; did you mean 'force'?")
    assert has(got["typo"], "warning", "pam_keyinit.so ignores 'persistent'")
    assert has(got["early-keys"], "warning", "pam_fscrypt.so adds keys", "move it after")
    assert has(got["sshd"], "warning", "interactive login service without pam_keyinit")
    assert has(got["loopy"], "error", "include loop", "loopy -> ")
    for service in ("both", "refused", "typo", "early-keys", "clean"):
        assert has(got[service], "error", "import path", f"{writable} is writable"), got[service]
    lines = {(f["service"], f["line"]) for f in findings if "forse" in f["message"]}
    assert lines == {("typo", 1)}
    # a loop is reported at the line that closes it, and not followed again
    loops = [(f["file"], f["line"]) for f in findings if f["service"] == "loopy"]
    assert loops == [(str(stacks / "loop-b"), 1)]


def test_a_clean_service_has_no_error_or_warning(stacks, hosts):
    modules, _, clean, _ = hosts
    rc, findings = check(stacks, modules, clean, "clean")
    assert rc == 0, findings
    assert {f["severity"] for f in findings} == {"info"}
    assert any(
        "session keyring from pam_pykeyinit (force revoke)" in f["message"] for f in findings
    )


def test_text_output_and_counts(stacks, hosts):
    modules, dirty, _, _ = hosts
    proc = pykeyinit(
        "check",
        "--pam-dir",
        str(stacks),
        "--module-dir",
        str(modules),
        "--python",
        str(dirty),
        "both",
    )
    assert proc.returncode == 1
    assert f"both: {stacks}/both:2: error: pam_keyinit.so and pam_pykeyinit" in proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("2 errors, 0 warnings,")


@pytest.mark.parametrize("how", ["missing", "a file", "unreadable"])
def test_an_unreadable_folder_exits_2(tree, tmp_path, how):
    folder = tmp_path / "pam.d"
    prefix = None
    if how == "a file":
        folder.write_text("")
    elif how == "unreadable":
        folder.mkdir(mode=0o700)
        tmp_path.chmod(0o755)
        prefix = as_user(65534, 65534)
    proc = pykeyinit("check", "--pam-dir", str(folder), prefix=prefix, tree=tree)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("pykeyinit check: cannot read"), proc.stderr


def test_a_missing_service_exits_2(stacks):
    proc = pykeyinit("check", "--pam-dir", str(stacks), "no-such-service")
    assert proc.returncode == 2 and "no service 'no-such-service'" in proc.stderr


def test_the_loader_rule_is_the_loaders_own(refused_tree):
    """check's verdict on a tree is the loader's: run the loader itself on it."""
    from pam_pykeyinit import stacks

    why = stacks.loader_refusal(str(refused_tree))
    assert why == f"{refused_tree.parent / 'kernel.py'} is writable by group or others (mode 0664)"
    assert os.path.exists(refused_tree)


LOADER_REFUSAL = """
import sys
path = sys.argv[1]
namespace = {"__name__": "pam_module", "__file__": path}
exec(compile(open(path).read(), path, "exec"), namespace)
print(namespace["_refusal"])
"""


def test_a_package_without_trust_py_is_judged_as_the_loader_judges_it(own_tree):
    """A package that has no trust.py (as pam_pykeyinit 0.1.0 had none):
    check says what the loader itself says when it refuses, no crash."""
    from pam_pykeyinit import stacks

    module = own_tree
    (module.parent / "trust.py").unlink()
    for bytecode in (module.parent / "__pycache__").glob("trust.*.pyc"):
        bytecode.unlink()
    loader = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", LOADER_REFUSAL, str(module)],
        capture_output=True,
        text=True,
        check=True,
    )
    why = stacks.loader_refusal(str(module))
    assert why == loader.stdout.strip()
    assert why.startswith("FileNotFoundError") and str(module.parent / "trust.py") in why


def test_an_import_path_symlink_that_leads_nowhere(tmp_path):
    """Judged by where its target could be created: fine while only root
    could create it, a problem once others could."""
    from pam_pykeyinit import stacks

    folder = tmp_path / "lib"
    folder.mkdir(mode=0o755)
    (folder / "gone").symlink_to(tmp_path / "pub" / "site")
    assert stacks.import_path_problems([str(folder / "gone")]) == []
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub").chmod(0o777)
    problems = stacks.import_path_problems([str(folder / "gone")])
    assert problems == [f"{tmp_path / 'pub'} is writable by group or others (mode 0777)"]


@pytest.mark.parametrize("build", ["stock", "gil-safe"])
def test_which_pam_python_is_said(stacks, hosts, build):
    """A note on the first pam_python line whose pam_python.so lacks the GIL
    fix (Debian's build has no PyGILState_Ensure); none with the fixed one."""
    modules, _, clean, _ = hosts
    so = modules / "pam_python.so"
    so.write_bytes(
        b"\0libpython3.11.so.1.0\0" + (b"PyGILState_Ensure\0" if build == "gil-safe" else b"")
    )
    rc, findings = check(stacks, modules, clean, "clean")
    notes = [f for f in findings if "without the GIL fix" in f["message"]]
    if build == "stock":
        assert [(n["severity"], n["line"]) for n in notes] == [("info", 2)], findings
        assert str(so) in notes[0]["message"]
    else:
        assert notes == [] and rc == 0, findings


MARK = b"\0pam_python fixed start-up: executable /usr/bin/python3.11 home /usr\0"


@pytest.mark.parametrize("build", ["stock", "3005"])
def test_each_pam_python_line_says_whether_its_build_has_the_fixed_startup(
    stacks, hosts, tree, build
):
    """A pam_python.so without patch 3005's fixed start-up (without the
    mark the build carries: Debian's has none) lets the caller's
    environment choose Python's standard library: an error where a
    set-user-ID program's service (su, here through an include) runs the
    line, an info where none does (cron); with the patched build, an info
    on each line that says so, with what the mark says."""
    modules, _, clean, _ = hosts
    so = modules / "pam_python.so"
    so.write_bytes(
        b"\0libpython3.11.so.1.0\0PyGILState_Ensure\0" + (MARK if build == "3005" else b"")
    )
    write(stacks, "common-session-py", f"session optional pam_python.so {tree} force")
    write(stacks, "su", "auth include common-auth\nsession include common-session-py")
    write(stacks, "cron", f"session optional pam_python.so {tree} force=auto")
    # a line of its own first, then the one su runs too
    write(stacks, "mixed", f"session optional pam_python.so {tree}\n@include common-session-py")
    seen, said = {}, []
    for service in ("su", "cron", "mixed"):
        rc, findings = check(stacks, modules, clean, service)
        notes = [f for f in findings if "patch 3005" in f["message"]]
        seen[service] = rc, [(f["severity"], f["file"], f["line"]) for f in notes]
        said += [f["message"] for f in notes]
    session_py, cron, mixed = (str(stacks / f) for f in ("common-session-py", "cron", "mixed"))
    if build == "stock":
        assert seen == {
            "su": (1, [("error", session_py, 1)]),
            "cron": (0, [("info", cron, 1)]),
            "mixed": (1, [("info", mixed, 1), ("error", session_py, 1)]),
        }
        assert all(str(so) in message and "no fixed start-up" in message for message in said)
        assert "su runs this line as root" in said[0] and "any local user" in said[0]
    else:
        assert seen == {
            "su": (0, [("info", session_py, 1)]),
            "cron": (0, [("info", cron, 1)]),
            "mixed": (0, [("info", mixed, 1), ("info", session_py, 1)]),
        }
        assert all(
            "fixed at build time (executable /usr/bin/python3.11 home /usr" in message
            for message in said
        )


def unnamed_notes(
    pam: Path, modules: Path, python: Path, service: str, vendor: Path | None = None
) -> tuple[int, list[tuple[str, str, int]], list[str]]:
    """check's status, and where and what it says of a pam_python.so without
    patch 3005 (the stand-in written by stock_pam_python)."""
    rc, findings = check(pam, modules, python, service, vendor=vendor)
    notes = [f for f in findings if "no fixed start-up (patch 3005)" in f["message"]]
    return rc, [(f["severity"], f["file"], f["line"]) for f in notes], [f["message"] for f in notes]


def stock_pam_python(modules: Path) -> None:
    """A stand-in pam_python.so with the GIL fix and without patch 3005."""
    (modules / "pam_python.so").write_bytes(b"\0libpython3.11.so.1.0\0PyGILState_Ensure\0")


def test_doas_is_a_set_user_id_programs_service(stacks, hosts, tree):
    """OpenDoas starts PAM as pam_start("doas", ...) (pam.c, PAM_SERVICE_NAME),
    and Debian's opendoas installs /usr/bin/doas set-user-ID root and
    /etc/pam.d/doas: a line its stack runs is an error."""
    modules, _, clean, _ = hosts
    stock_pam_python(modules)
    write(stacks, "common-session-py", f"session optional pam_python.so {tree} force")
    write(stacks, "doas", "@include common-auth\n@include common-session-py")
    write(stacks, "cron", "@include common-session-py")
    for service in ("doas", "cron"):
        rc, where, said = unnamed_notes(stacks, modules, clean, service)
        assert (rc, where) == (1, [("error", str(stacks / "common-session-py"), 1)]), said
        assert "doas runs this line as root with the caller's environment" in said[0]


def test_other_is_the_stack_of_a_program_without_a_file(stacks, hosts, tree, tmp_path):
    """libpam reads 'other' for a service that has no file (in the PAM
    folder, then the vendor folder) and, for one that has a file, for each
    module type the file leaves out (pam_dispatch.c): a line 'other' runs is
    run by every set-user-ID program without a file of its own, listed
    (here su, sudo, sudo-i, chfn, chsh, doas) or not, and by passwd, whose
    file has only password lines."""
    modules, _, clean, _ = hosts
    stock_pam_python(modules)
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    py = stacks / "common-session-py"
    write(stacks, "common-session-py", f"session optional pam_python.so {tree} force")
    write(stacks, "other", "@include common-auth\n@include common-session-py")
    write(stacks, "cron", "@include common-session-py")  # not a set-user-ID program's
    write(stacks, "passwd", "password required pam_permit.so")
    write(vendor, "polkit-1", "session required pam_permit.so")  # a session stack of its own
    write(stacks, "lonely", f"session optional pam_python.so {tree}")
    for service in ("cron", "other"):
        rc, where, said = unnamed_notes(stacks, modules, clean, service, vendor)
        assert (rc, where) == (1, [("error", str(py), 1)]), said
        assert "passwd, other run this line as root with the caller's environment" in said[0]
        assert (
            "other is what libpam reads for a service without a file of its own"
            " (here su, sudo, sudo-i, chfn, chsh, doas, and any other set-user-ID program"
            " without one) and for each module type a service's file leaves out"
        ) in said[0], said[0]
    rc, where, said = unnamed_notes(stacks, modules, clean, "lonely", vendor)
    assert (rc, where) == (0, [("info", str(stacks / "lonely"), 1)]), said
    assert (
        "no set-user-ID program's service (su, su-l, sudo, sudo-i, polkit-1, passwd, chfn,"
        " chsh, doas, or other, which libpam reads for a service without a file of its own)"
        " runs this line here"
    ) in said[0], said[0]
    # without an 'other', a service without a file fails: nothing runs the line
    (stacks / "other").unlink()
    rc, where, said = unnamed_notes(stacks, modules, clean, "cron", vendor)
    assert (rc, where) == (0, [("info", str(py), 1)]), said


# -- the folders and line rules, against libpam itself --------------------------


def libpam_reads(service: str) -> tuple[int, list[str]]:
    """pamtester's status and what pam_echo lines said: the lines libpam read."""
    proc = subprocess.run(
        ["pamtester", service, "root", "open_session"], capture_output=True, text=True, timeout=60
    )
    said = [x for x in proc.stdout.splitlines() if x.startswith("said:")]
    return proc.returncode, said


def check_system(service: str) -> list[dict]:
    """check with the system's folders and rules (no --pam-dir)."""
    proc = pykeyinit("check", "--json", service)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def test_a_vendor_service_is_read_by_check_as_by_libpam(system_folders):
    etc, vendor, prefix = system_folders
    svc = f"{prefix}-svc"
    write(vendor, svc, "session optional pam_echo.so said: vendor\nsession optional pam_permit.so")
    write(vendor, f"{svc}-k", "session optional pam_keyinit.so force revoke")
    assert libpam_reads(svc) == (0, ["said: vendor"])
    found = check_system(f"{svc}-k")
    assert ("info", f"read from the vendor folder: there is no {etc / (svc + '-k')}") in [
        (f["severity"], f["message"]) for f in found
    ]
    assert [(f["file"], f["line"]) for f in found if "session keyring from" in f["message"]] == [
        (str(vendor / f"{svc}-k"), 1)
    ]
    write(etc, svc, "session optional pam_echo.so said: etc\nsession optional pam_permit.so")
    write(etc, f"{svc}-k", "session optional pam_keyinit.so force")
    assert libpam_reads(svc) == (0, ["said: etc"])
    found = check_system(f"{svc}-k")
    assert [(f["file"], f["message"]) for f in found if "session keyring" in f["message"]] == [
        (str(etc / f"{svc}-k"), "session keyring from pam_keyinit.so (force)")
    ]
    assert not any("vendor folder" in f["message"] for f in found)


@pytest.mark.parametrize("how", ["session include", "session substack", "@include"])
def test_an_include_of_a_vendor_file_is_judged_as_libpam_judges_it(system_folders, how):
    """An included file only in the vendor folder: libpam reads it or fails
    the service (Debian's patch), and check must say the same."""
    etc, vendor, prefix = system_folders
    svc = f"{prefix}-inc"
    write(etc, svc, f"session optional pam_echo.so said: top\n{how} {prefix}-part")
    write(vendor, f"{prefix}-part", "session optional pam_echo.so said: part")
    rc, said = libpam_reads(svc)
    errors = [f["message"] for f in check_system(svc) if f["severity"] == "error"]
    libpam_read_it = rc == 0 and said == ["said: top", "said: part"]
    assert libpam_read_it == (errors == []), (rc, said, errors)
    if not libpam_read_it:
        assert any(m.endswith("Linux-PAM fails the service") for m in errors), errors


@pytest.mark.parametrize("between", ["", "# a comment"])
def test_a_continued_line_is_joined_by_check_as_by_libpam(system_folders, between):
    """'revoke' after a blank or comment line: part of the keyinit line for
    Linux-PAM up to 1.5, a line of its own since 1.6; the same layout with
    pam_echo shows what this libpam does, and check must agree."""
    etc, _, prefix = system_folders
    layout = "session optional {} \\\n" + between + "\nrevoke\nsession optional pam_permit.so\n"
    (etc / f"{prefix}-echo").write_text(layout.format("pam_echo.so said:"))
    (etc / f"{prefix}-key").write_text(layout.format("pam_keyinit.so"))
    _, said = libpam_reads(f"{prefix}-echo")
    joined = {"said: revoke": True, "said:": False}[said[0].rstrip()]
    infos = [
        f["message"] for f in check_system(f"{prefix}-key") if "session keyring" in f["message"]
    ]
    expected = "(revoke)" if joined else "(no options)"
    assert infos == [f"session keyring from pam_keyinit.so {expected}"], (said, infos)


def test_brackets_are_stripped_by_check_as_by_libpam(system_folders):
    """libpam takes '[...]' as one word without its brackets, in every
    field of a line ('\\]' is a ']'): the same line with pam_echo shows the
    arguments libpam passes, and check must name the same options."""
    etc, _, prefix = system_folders
    layout = (
        "session optional [{}] [force] x[y]z [a\\]b] [revoke]\nsession optional pam_permit.so\n"
    )
    (etc / f"{prefix}-echo").write_text(layout.format("pam_echo.so] [said:"))
    (etc / f"{prefix}-key").write_text(layout.format("pam_keyinit.so"))
    rc, said = libpam_reads(f"{prefix}-echo")
    assert (rc, said) == (0, ["said: force x[y]z a]b revoke"])
    found = check_system(f"{prefix}-key")
    infos = [f["message"] for f in found if "session keyring" in f["message"]]
    assert infos == [f"session keyring from pam_keyinit.so ({said[0][len('said: ') :]})"], found
    unknown = sorted(f["message"] for f in found if "unknown option" in f["message"])
    assert [m.split("'")[1] for m in unknown] == ["a]b", "x[y]z"], unknown


def test_a_bracketed_word_across_a_continued_line_is_read_by_check_as_by_libpam(system_folders):
    """The blanks that start a continuing line: part of a bracketed word up
    to Linux-PAM 1.5 (measured on 1.5.2: 'a', six blanks, 'b'), skipped
    since 1.6.0 ('a', two blanks, 'b'); check must read what this libpam
    reads."""
    etc, _, prefix = system_folders
    layout = "session optional {} [a \\\n    b]\nsession optional pam_permit.so\n"
    (etc / f"{prefix}-echo").write_text(layout.format("pam_echo.so said:"))
    (etc / f"{prefix}-key").write_text(layout.format("pam_keyinit.so"))
    rc, said = libpam_reads(f"{prefix}-echo")
    assert rc == 0 and said[0] in ("said: a      b", "said: a  b"), said
    infos = [
        f["message"] for f in check_system(f"{prefix}-key") if "session keyring" in f["message"]
    ]
    assert infos == [f"session keyring from pam_keyinit.so ({said[0][len('said: ') :]})"], said


def test_a_dotdot_after_a_users_symlink_is_judged_as_the_kernel_walks_it(own_tree, users):
    """pam_python hands the loader the path as the line spells it; the
    kernel follows a symbolic link before the '..' after it. A user's
    symlink in a sticky folder on the way, followed by '..', is the user's
    to point elsewhere: check says what the loader says (it refuses), not
    what the text without 'link/..' would give."""
    from pam_pykeyinit import stacks

    from ...pamlib import Users

    pkgdir = own_tree.parent
    lib = pkgdir.parent
    lib.chmod(0o1777)  # sticky and writable by all: allowed on the way
    (lib / "sub").mkdir(mode=0o755)
    link = lib / "lnk"
    link.symlink_to(lib / "sub")
    os.lchown(link, Users.PEER_UID, -1)
    given = f"{lib}/lnk/../{pkgdir.name}/pam_module.py"
    loader = subprocess.run(
        ["/usr/bin/python3", "-I", "-c", LOADER_REFUSAL, given],
        capture_output=True,
        text=True,
        check=True,
    )
    said = stacks.loader_refusal(given)
    assert said == loader.stdout.strip() == f"{link} is owned by uid {Users.PEER_UID}, not root"
