"""pam_keyinit.c in Python: options, state, keyinit, revoke, the switch of
IDs they share, the entry points.

Read top to bottom as Linux-PAM's modules/pam_keyinit/pam_keyinit.c reads:
the PAM codes, the option words, the per-thread and per-process state, then
keyinit (do_keyinit, init_keyrings), revoke (kill_keyrings), the credential
switch both make (take, restore, _as_user), and at the bottom the pam_sm_*
functions that the loader (pam_module.py) takes as its own through
HANDLERS.

Every decision is made in this file: the setcred flag dispatch, the session
counter, the guard on revoking, the sticky options, the return codes (the
caller chooses the error code: PAM_CRED_ERR from setcred, PAM_SESSION_ERR
from the session calls). The entry points read pamh and build a Context of
collaborators (kernel, log, thread state, user lookup), so that the unit
tests drive every branch of the logic with fakes. System calls are in
kernel.py; the credential switch is here (take, restore), as the C module keeps
its own.
"""

import _thread
import pwd
import sys

from . import kernel
from .kernel import (
    KEY_SPEC_SESSION_KEYRING,
    KEY_SPEC_USER_KEYRING,
    KEY_SPEC_USER_SESSION_KEYRING,
    UNCHANGED,
    KernelError,
    Namespace,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

    from .interfaces import (
        Context,
        Ids,
        KernelLike,
        LogLike,
        Options,
        PasswdLike,
        ProcessState,
        SlotsLike,
    )

    Pamh = Any  # pam_python's PamHandle: no importable type

# PAM return codes and flags, spelled and numbered as in Linux-PAM's
# <security/_pam_types.h> (tests/unit/test_headers.py compares them).
PAM_SUCCESS = 0
PAM_SERVICE_ERR = 3
PAM_SYSTEM_ERR = 4
PAM_USER_UNKNOWN = 10
PAM_SESSION_ERR = 14
PAM_CRED_ERR = 17
PAM_IGNORE = 25
PAM_MODULE_UNKNOWN = 28
PAM_ESTABLISH_CRED = 0x0002
PAM_DELETE_CRED = 0x0004
PAM_REINITIALIZE_CRED = 0x0008
PAM_REFRESH_CRED = 0x0010

# ---------------------------------------------------------------------------
# Options. Words are compared exactly and case-sensitively (strcmp in
# pam_keyinit.c); any other word is ignored by the C module. pam_pykeyinit
# ignores it too but reports it, once per process, so that a typo such as
# ``Revoke`` gets noticed. pam_keyinit's three words come first; the others
# are pam_pykeyinit's own, opt-in (README.md, "Options"), and pam_keyinit.so
# ignores them. A malformed value ("force=sometimes") is an unknown word.
# word -> (attribute of Options, value); the last word for an attribute wins.
WORDS = {
    "force": ("force", True),
    "revoke": ("revoke", True),
    "debug": ("debug", True),
    "force=auto": ("force_auto", True),
    "persistent": ("persistent", True),
    "unavailable=ignore": ("unavailable_ignore", True),
    "unavailable=fail": ("unavailable_ignore", False),
}
KNOWN = tuple(WORDS)
C_WORDS = KNOWN[:3]  # the words pam_keyinit.so itself understands
# keyctl errnos that mean "keyrings are unavailable to this process" (a
# kernel without CONFIG_KEYS, a container's seccomp or LSM policy): what
# 'unavailable=ignore' forgives, and what `pykeyinit status` reports so.
UNAVAILABLE = ("ENOSYS", "EPERM", "EACCES")


def parse_options(words: "list[str]") -> "Options":
    """The words of one module line (pam_python's argv[1:]), as a namespace
    (interfaces.Options): a flag per attribute of WORDS, and the unknown
    words in ``unknown``."""
    opts = Namespace(
        force=False,
        revoke=False,
        debug=False,
        force_auto=False,
        persistent=False,
        unavailable_ignore=False,
        unknown=[],
    )
    for word in words:
        if word in WORDS:
            attribute, value = WORDS[word]
            setattr(opts, attribute, value)
        else:
            opts.unknown.append(word)
    return opts


# ---------------------------------------------------------------------------
# State, kept as pam_keyinit.c (Linux-PAM 1.5.3 and later) keeps it: the
# created keyring, the sticky flags and the revoke IDs per thread
# (_Thread_local there), the session counter per process, for as long as
# the module is loaded. libpam loads pam_keyinit.so with the first handle
# whose stack names it and unloads it (dlclose) at the pam_end() of the last
# such handle, which wipes that state in every thread. This module lives
# as long as the interpreter: in a C program pam_python starts and ends one
# with the same handles, but in a Python program (pamela, python-pam,
# JupyterHub) the interpreter is the program's and outlives every handle.
# So the module counts the handles that called it and have not ended
# (pam_sm_end, which pam_python calls at pam_end()), and when the last one
# ends it frees the per-thread slots: every thread's state starts afresh
# at its next call, as after a dlclose.
#
# The per-thread values live in the OS thread (kernel.thread_slots, POSIX
# thread-specific data), not in a Python thread state: a C program's thread
# that Python did not start gets a new Python thread state for each call
# (PyGILState_Ensure), and threading.local with it, so its close found
# nothing of its open. A thread that exits takes its values along; a new
# thread, whatever ID it gets, starts with none.


def _slot(index: int, offset: int = 0, kind: "type[int]" = int) -> "property":
    """One per-thread value: slot ``index`` of the thread slots, stored as
    value + ``offset`` so that the slot's 0 (never set) reads as the
    starting value (0, False, or -1 for the IDs). A ThreadState lives for
    one call of the thread, and only the thread itself sets its values: a
    slot is read once per ThreadState (each read is a call into libc).
    A property, not a descriptor class of its own: one class less to make
    at every login."""

    def get(st: "ThreadState") -> int:
        stored = st.read.get(index)
        if stored is None:
            stored = st.read[index] = st.slots.get(index)
        return kind(stored - offset)

    def set(st: "ThreadState", value: int) -> None:
        stored = int(value) + offset
        st.slots.set(index, stored)
        st.read[index] = stored

    return property(get, set)


class ThreadState:
    """The calling thread's values in ``slots`` (kernel.thread_slots() of
    SLOTS keys); each new thread starts at 0, False, -1."""

    if TYPE_CHECKING:  # what each _slot below reads as
        slots: SlotsLike
        read: dict[int, int]
        my_session_keyring: int
        do_revoke: bool
        xdebug: bool
        revoke_as_uid: int
        revoke_as_gid: int
    else:
        __slots__ = ("read", "slots")
        my_session_keyring = _slot(0)  # serial of the keyring this thread created, 0 if none
        do_revoke = _slot(1, kind=bool)  # sticky: once 'revoke' is seen it stays on
        xdebug = _slot(2, kind=bool)  # sticky: once 'debug' is seen it stays on
        revoke_as_uid = _slot(3, offset=1)  # uid_t (-1: none) + 1 fits an unsigned 32 bits
        revoke_as_gid = _slot(4, offset=1)

    def __init__(self, slots: "SlotsLike") -> None:
        self.slots = slots
        self.read = {}  # slot -> its stored value, as this call read or set it


SLOTS = 5


def new_process_state() -> "ProcessState":
    """The per-process state, as a freshly loaded module has it. The
    counter and the handles change under ``lock`` (C uses an _Atomic int
    for the counter): with the GIL-safe pam_python of packaging/pam-python,
    two threads' handlers interleave wherever one waits in a system call,
    and `+= 1` is a read and a write. Debian's pam_python does not take the
    GIL per call, so there PAM calls from two threads at the same moment
    are unsafe for any pam_python module. A namespace, whose shape type
    checkers know as interfaces.ProcessState: one class less to make at
    every login."""
    return Namespace(
        lock=_thread.allocate_lock(),
        session_counter=0,
        reported_words=set(),  # unknown option words already logged
        handles=set(),  # id() of the live pamh objects that called in
        slots=None,  # this generation's thread_slots(), made at its first call
    )


process_state = new_process_state()


def current_thread_state(pamh: "Pamh") -> "ThreadState":
    """Count ``pamh`` among the live handles; this thread's state (the
    slots are made at the first call after every handle had ended).
    Raises KernelError when the process has no thread-specific keys left."""
    with process_state.lock:
        process_state.handles.add(id(pamh))
        if process_state.slots is None:
            process_state.slots = kernel.thread_slots(SLOTS)
        slots = process_state.slots
    # Used outside the lock: the slots are freed only once no handle is
    # live (pam_sm_end), and this call's own handle is live until then.
    return ThreadState(slots)


# ---------------------------------------------------------------------------


def logger(service: str, pam_type: str, state: "ThreadState | None") -> "LogLike":
    """Lines as libpam's pam_syslog() prefixes them for C modules,
    ``pam_pykeyinit(SERVICE:TYPE): message``, written by kernel.syslog;
    debug lines only while ``state``'s xdebug is on, read at each line
    because 'debug' can be switched on mid-call."""
    prefix = f"pam_pykeyinit({service}:{pam_type}):"

    def at(priority: int) -> "Callable[[str], None]":
        return lambda message: kernel.syslog(priority, f"{prefix} {message}")

    def debug(message: str) -> None:
        if state is not None and state.xdebug:
            kernel.syslog(kernel.LOG_DEBUG, f"{prefix} {message}")

    return Namespace(
        error=at(kernel.LOG_ERR),
        warning=at(kernel.LOG_WARNING),
        notice=at(kernel.LOG_NOTICE),
        debug=debug,
    )


def new_context(
    kernel: "KernelLike",
    log: "LogLike",
    thread: "ThreadState",
    get_user: "Callable[[], tuple[int, str | None]]",
    getpwnam: "Callable[[str], PasswdLike | None]",
) -> "Context":
    """What one call of the logic works with (interfaces.Context): the
    kernel, the log, the thread's state, get_user() -> (PAM code, user
    name), and getpwnam(name) -> passwd entry, or None if unknown."""
    return Namespace(kernel=kernel, log=log, thread=thread, get_user=get_user, getpwnam=getpwnam)


# ---------------------------------------------------------------------------
# keyinit: setcred(PAM_ESTABLISH_CRED) and open_session


def keyinit(ctx: "Context", argv: "list[str]", error_ret: int, what: str) -> int:
    """Parse this line's options, then give the thread a session keyring.
    ``what`` names the call in the first debug line."""
    # pam_python puts the module file in argv[0]; the options follow it.
    opts = parse_options(list(argv[1:]))
    for word in opts.unknown:
        if word not in process_state.reported_words:
            process_state.reported_words.add(word)
            ctx.log.notice(
                f'ignoring unknown option "{word}" (known: {", ".join(KNOWN)};'
                " words are case-sensitive)"
            )
    # Sticky, and set before the "already created" return, as in C: a later
    # line's 'revoke' applies to the keyring an earlier line created.
    if opts.debug:
        ctx.thread.xdebug = True
    if opts.revoke:
        ctx.thread.do_revoke = True
    ctx.log.debug(what)
    return do_keyinit(ctx, opts, error_ret)


def do_keyinit(ctx: "Context", opts: "Options", error_ret: int) -> int:
    """Look the PAM user up, take its real IDs, and initialise the keyrings."""
    st, log = ctx.thread, ctx.log
    # Already done by this thread: a second stack line, or setcred then
    # open_session on the same handle.
    if st.my_session_keyring > 0:
        log.debug(f"session keyring {st.my_session_keyring} already created by this thread")
        return PAM_SUCCESS

    code, user = ctx.get_user()
    if code != PAM_SUCCESS:
        return code
    pw = ctx.getpwnam(user) if user is not None else None
    if pw is None:
        log.notice(f'Unable to look up user "{user}"')
        return PAM_USER_UNKNOWN

    uid, gid = pw.pw_uid, pw.pw_gid
    st.revoke_as_uid, st.revoke_as_gid = uid, gid
    # Only the *real* IDs move: the kernel gives a new keyring the caller's
    # real uid and gid and resolves @u and @us by the real uid, while the
    # effective uid 0 keeps the way back open.
    return _as_user(
        ctx,
        REAL,
        uid,
        gid,
        f'taking the real IDs of "{user}" (uid {uid}, gid {gid})',
        lambda: init_keyrings(ctx, opts, uid, error_ret),
        error_ret,
    )


def init_keyrings(ctx: "Context", opts: "Options", uid: int, error_ret: int) -> int:
    """Join a new session keyring for ``uid`` and link the user keyring (and
    with 'persistent' the persistent keyring) into it. Without 'force',
    keep a session keyring the process already has; with 'force=auto',
    keep it only if it is the user's own."""
    k, log = ctx.kernel, ctx.log
    if opts.force:
        log.debug("force: a new session keyring")
    elif opts.force_auto:
        why, err = _why_replace(ctx, uid)
        if err is not None and opts.unavailable_ignore and _unavailable(err):
            return _failed(ctx, opts, err, "reading the session keyring", error_ret)
        if not why:
            log.debug("force=auto: keeping the session keyring, the user's own")
            return PAM_SUCCESS
        log.debug(f"force=auto: replacing the session keyring: {why}")
    else:
        try:
            session = k.get_keyring_id(KEY_SPEC_SESSION_KEYRING)
        except KernelError as err:
            if not opts.unavailable_ignore and _is(err, "ENOSYS"):
                # As pam_keyinit: no key support in this kernel, nothing to do.
                log.debug(f"{err}: the kernel has no keyrings, nothing to do")
                return PAM_SUCCESS
            return _failed(ctx, opts, err, "reading the session keyring", error_ret)
        try:
            usession = k.get_keyring_id(KEY_SPEC_USER_SESSION_KEYRING)
        except KernelError as err:
            return _failed(ctx, opts, err, "reading the user-session keyring", error_ret)
        log.debug(f"session keyring {session}, user-session keyring {usession}")
        if session != usession:
            log.debug("the process already has a session keyring of its own: keeping it")
            return PAM_SUCCESS

    try:
        serial = k.join_session_keyring()
    except KernelError as err:
        return _failed(ctx, opts, err, "creating the session keyring", error_ret)
    # Remembered before linking, as pam_keyinit does: a failed link leaves
    # the joined keyring in place and a later revoke still finds it.
    ctx.thread.my_session_keyring = serial
    log.debug(f"joined new session keyring {serial}")
    try:
        k.link(KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING)
    except KernelError as err:
        _report(ctx, err, f"linking the user keyring into session keyring {serial}")
        return error_ret
    if opts.persistent:
        _link_persistent(ctx, uid, serial)
    return PAM_SUCCESS


def _why_replace(ctx: "Context", uid: int) -> "tuple[str, KernelError | None]":
    """force=auto's test: why the process's session keyring is not ``uid``'s
    own (with the error that showed it), or ('', None) to keep it. Kept only
    if it is not the user-session keyring, is neither revoked nor expired
    (reading it would fail), and is owned by ``uid``."""
    k = ctx.kernel
    try:
        session = k.get_keyring_id(KEY_SPEC_SESSION_KEYRING)
        if session == k.get_keyring_id(KEY_SPEC_USER_SESSION_KEYRING):
            return f"{session} is only the user-session keyring", None
        owner = k.describe(session).uid
    except KernelError as err:
        return f"it cannot be read: {err}", err
    if owner != uid:
        return f"{session} belongs to uid {owner}, not {uid}", None
    return "", None


def _link_persistent(ctx: "Context", uid: int, serial: int) -> None:
    """'persistent': link _persistent.<uid> into the new keyring. Its
    failure is a warning: the login goes on as without the option."""
    try:
        persistent = ctx.kernel.get_persistent(uid, serial)
    except KernelError as err:
        describe = module("advice").describe
        doing = f"linking the persistent keyring of uid {uid} into session keyring {serial}"
        ctx.log.warning(describe(err, doing) + "; the session goes on without it")
        return
    ctx.log.debug(f"linked persistent keyring {persistent} into session keyring {serial}")


def _is(err: KernelError, *names: str) -> bool:
    # errno is imported on failure only: one import less for every login.
    import errno

    return err.errno in [getattr(errno, name) for name in names]


def _unavailable(err: KernelError) -> bool:
    """keyctl refused as a kernel without keys or a container's policy
    refuses it: the errnos systemd's KeyringMode= set-up ignores too."""
    return err.call == kernel.KEYCTL and _is(err, *UNAVAILABLE)


def _failed(ctx: "Context", opts: "Options", err: KernelError, doing: str, error_ret: int) -> int:
    """The result of a keyctl call that failed before a keyring was made:
    with 'unavailable=ignore', success without a keyring where keyrings are
    unavailable; otherwise the error line and code."""
    if opts.unavailable_ignore and _unavailable(err):
        ctx.log.notice(
            f"keyrings are unavailable to this process: {err.errno_name} from"
            f" {err.shown_call()} ({doing}); the session has no keyring of its own"
        )
        return PAM_SUCCESS
    _report(ctx, err, doing)
    return error_ret


# ---------------------------------------------------------------------------
# revoke: setcred(PAM_DELETE_CRED) and close_session


def revoke_due(st: "ThreadState") -> bool:
    """The one guard on revoking: this thread created a keyring, and a line
    of the thread said 'revoke'."""
    return st.my_session_keyring > 0 and st.do_revoke


def kill_keyrings(ctx: "Context", error_ret: int) -> int:
    """Revoke the keyring this thread created, as the user that owns it
    (KEYCTL_REVOKE checks the effective IDs). Call when revoke_due()."""
    st = ctx.thread
    serial, uid, gid = st.my_session_keyring, st.revoke_as_uid, st.revoke_as_gid
    ctx.log.debug(f"REVOKE {serial}")

    def revoke() -> int:
        # pam_keyinit forgets the keyring once a revoke was attempted, and
        # keeps it when it could not even switch IDs (a later call may try).
        st.my_session_keyring = 0
        try:
            ctx.kernel.revoke(serial)
        except KernelError as err:
            _report(ctx, err, f"revoking session keyring {serial}")
            return error_ret
        return PAM_SUCCESS

    doing = f"taking the effective IDs uid {uid}, gid {gid} to revoke"
    return _as_user(ctx, EFFECTIVE, uid, gid, doing, revoke, error_ret)


# ---------------------------------------------------------------------------
# The credential switch: per thread, and always back exactly.
#
# pam_keyinit moves only the *real* IDs to create a keyring (the kernel gives
# a new session keyring the caller's real uid and gid, and resolves @u/@us by
# the real uid) and only the *effective* IDs to revoke one (KEYCTL_REVOKE
# checks the effective fsuid's permission). The effective uid stays 0 while
# creating, so coming back is always allowed.
#
# Differences from the C module, on purpose:
# - setres[ug]id(2) as raw system calls change only this thread (kernel.py).
# - The value an ID displaces is parked in the saved slot while switched (the
#   trick pam_keyinit's revoke uses with setresuid(-1, uid, old_euid)), so the
#   way back stays permitted even for a caller without CAP_SETUID.
# - On leaving, real, effective, saved and fs IDs are all set back to the
#   snapshot taken on entry and read back to check them, with a second try if
#   the first fails. Linux-PAM 1.5.2 and 1.7.0 leave the saved gid changed after
#   a revoke.
#
# Only calls that change something are made: every set*id call commits new
# credentials, and the old ones, which hold a reference to the session
# keyring, are freed after an RCU grace period (lazily, up to seconds, with
# CONFIG_RCU_LAZY). Extra commits keep revoked keyrings charged to the user's
# key quota for longer: 1,000 quick open/close cycles in one process reached
# EDQUOT with a few more commits per call than pam_keyinit makes.

RESTORE_TRIES = 2
# Which IDs take() moves: indexes into (real, effective, saved).
REAL = 0
EFFECTIVE = 1


# Functions, not a class: a class costs every login some 70,000
# instructions to make (doc/speed.md). The IDs on entry are
# kernel.thread_ids()'s ((real, effective, saved, fs) uids, then gids);
# ``moved`` collects "gid" and "uid" as take() moves them: restore() does
# nothing when nothing moved, and otherwise puts back every ID, also after
# a take() that failed halfway.


def take(
    k: "KernelLike", entry: "tuple[Ids, Ids]", slot: int, uid: int, gid: int, moved: "list[str]"
) -> None:
    """Move the REAL or EFFECTIVE gid, then uid, to the user's where they
    differ from the entry IDs: pam_keyinit's order and test."""
    uids, gids = entry
    if gid != gids[slot]:
        _move(k.setresgid, k.getresgid, slot, gid)
        moved.append("gid")
    if uid != uids[slot]:
        _move(k.setresuid, k.getresuid, slot, uid)
        moved.append("uid")


def _move(
    setres: "Callable[[int, int, int], None]",
    getres: "Callable[[], tuple[int, int, int]]",
    slot: int,
    value: int,
) -> None:
    # setres[ug]id(value, -1, old real) or (-1, value, old effective):
    # the displaced ID is parked in the saved slot, so the way back is
    # allowed even without CAP_SETUID (setresuid(2): an unprivileged
    # process may set any ID to its current real, effective or saved one).
    current = getres()
    ids = [UNCHANGED, UNCHANGED, current[slot]]
    ids[slot] = value
    setres(*ids)


def restore(
    k: "KernelLike", entry: "tuple[Ids, Ids]", moved: "list[str]", failures: "list[str]"
) -> None:
    """Put every ID back as on entry if take() moved any, and read them
    back. What could not be restored goes into the caller's ``failures``,
    as log-ready sentences, as soon as it is known: a BaseException (a
    KeyboardInterrupt in a Python host) that ends a later try leaves the
    earlier lines there for the caller to log. Raises nothing else."""
    if not moved:
        return
    uids, gids = entry
    for _ in range(RESTORE_TRIES):
        # Reverse order of switching: the uid first, which gives back
        # the privilege (effective uid 0) that restoring the gid needs.
        done = _restore("uid", uids, k.setresuid, k.getresuid, k.setfsuid, failures)
        done = _restore("gid", gids, k.setresgid, k.getresgid, k.setfsgid, failures) and done
        if not done:
            continue
        try:
            got = k.thread_ids()
        except KernelError as err:
            failures.append(f"cannot read back the caller's IDs after restoring them: {err}")
            continue
        if got == entry:
            return
        failures.append(
            f"the caller's IDs are {got} (real, effective, saved, fs; uids then"
            f" gids) after restoring, expected {entry}"
        )


def _restore(
    kind: str,
    want: "Ids",
    setres: "Callable[[int, int, int], None]",
    getres: "Callable[[], tuple[int, int, int]]",
    setfs: "Callable[[int], int]",
    failures: "list[str]",
) -> bool:
    r, e, s, fs = want
    try:
        if getres()[1] != e:
            # Effective first: regains CAP_SET[UG]ID when the old euid
            # was 0 (capabilities(7), "Effect of user ID changes on
            # capabilities").
            setres(UNCHANGED, e, UNCHANGED)
        if getres() != (r, e, s):
            setres(r, e, s)
        if fs != e:
            # set*id calls set the fs ID to the effective one; a caller
            # that had its own (setfsuid(2)) gets it back.
            setfs(fs)
    except KernelError as err:
        failures.append(f"cannot restore the caller's {kind}s: {err}")
        return False
    return True


# ---------------------------------------------------------------------------
# shared by keyinit and revoke


def _as_user(
    ctx: "Context",
    slot: int,
    uid: int,
    gid: int,
    doing: str,
    act: "Callable[[], int]",
    error_ret: int,
) -> int:
    """Switch, act, restore, report: move the thread's REAL or EFFECTIVE
    gid and uid to the user's, run ``act``, and put every ID back. A failed
    switch, an exception from ``act`` and every failed restore are logged,
    in that order, and give ``error_ret``: the restore report runs whatever
    happened before it, so a thread left with the user's IDs always says so."""
    k = ctx.kernel
    try:
        entry = k.thread_ids()
    except KernelError as err:
        _report(ctx, err, "reading the caller's IDs")
        return error_ret
    ret = error_ret
    moved: "list[str]" = []
    try:
        uids, gids = entry
        ctx.log.debug(f"UID:{uid} [{uids[slot]}]  GID:{gid} [{gids[slot]}]")
        try:
            take(k, entry, slot, uid, gid, moved)
        except KernelError as err:
            _report(ctx, err, doing)
        else:
            try:
                ret = act()
            except Exception as exc:  # noqa: BLE001 - reported, then the restore report
                internal_error(ctx.log, exc)
    finally:
        # Also on a BaseException (SystemExit, KeyboardInterrupt), which
        # then goes on to pam_python once these lines are out, even when it
        # comes in the middle of restore().
        failures: "list[str]" = []
        try:
            restore(k, entry, moved, failures)
        finally:
            for failure in failures:
                ctx.log.error(
                    f"{failure}; the process now runs with other IDs than it had: end it,"
                    " and report this with the line above"
                )
                ret = error_ret
    return ret


def internal_error(log: "LogLike", exc: Exception) -> None:
    """One line for an exception that is a bug of this module's."""
    try:
        log.error(f"internal error {type(exc).__name__}: {exc}; please report it")
    except Exception:  # noqa: BLE001, S110 - logging itself failed: nothing left to do
        pass


def module(name: str) -> "ModuleType":
    """This package's module ``name``, run on first use (advice: on failure
    only). At login trust.handlers puts its own loader here, so that such a
    module comes from the checked folder and its own bytecode like the
    others; elsewhere (the pykeyinit command, the tests) the import system
    loads it."""
    full = f"{__package__}.{name}"
    __import__(full)
    return sys.modules[full]


def _report(ctx: "Context", err: "KernelError", doing: str) -> None:
    # Loaded here, on failure only: spares every good login a module.
    ctx.log.error(module("advice").describe(err, doing))


# ---------------------------------------------------------------------------
# The PAM entry points: read pamh, build the Context, dispatch. No exception
# leaves them: anything unexpected is logged in one line and answered with
# the entry point's error code.


def _service(pamh: "Pamh") -> str:
    try:
        return str(pamh.service or "<unknown>")
    except Exception:  # noqa: BLE001 - an unreadable item must not stop the call
        return "<unknown>"


def _getpwnam(name: str) -> "pwd.struct_passwd | None":
    try:
        return pwd.getpwnam(name)
    except (KeyError, ValueError, TypeError, UnicodeError):
        # KeyError: no such user; ValueError: embedded NUL; the others: a
        # name that is no string. pam_keyinit treats them all as unknown.
        return None


def _context(pamh: "Pamh", pam_type: str, st: "ThreadState") -> "Context":
    def get_user() -> "tuple[int, str | None]":
        try:
            return PAM_SUCCESS, pamh.get_user("key user")
        except pamh.exception as exc:
            return int(exc.pam_result), None

    log = logger(_service(pamh), pam_type, st)
    # kernel.load() fails closed on an unknown architecture; the
    # UnsupportedABI it raises is turned into a log line by _guarded.
    return new_context(kernel.load(), log, st, get_user, _getpwnam)


def _guarded(pam_type: str, error_ret: int, pamh: "Pamh", body: "Callable[[], int]") -> int:
    try:
        return body()
    except kernel.UnsupportedABI as exc:
        logger(_service(pamh), pam_type, None).error(f"refusing to touch keyrings: {exc}")
    except KernelError as err:  # current_thread_state's: no thread-specific keys left
        doing = "keeping this thread's state"
        logger(_service(pamh), pam_type, None).error(module("advice").describe(err, doing))
    except Exception as exc:  # noqa: BLE001 - never a traceback in the host
        internal_error(logger(_service(pamh), pam_type, None), exc)
    return error_ret


def pam_sm_authenticate(pamh: "Pamh", flags: int, argv: "list[str]") -> int:
    # Present only so the module can sit in the auth stack and see setcred.
    process_state.handles.add(id(pamh))
    return PAM_IGNORE


def pam_sm_setcred(pamh: "Pamh", flags: int, argv: "list[str]") -> int:
    def body() -> int:
        st = current_thread_state(pamh)
        # ESTABLISH is tested first, as in pam_keyinit.c.
        if flags & PAM_ESTABLISH_CRED:
            return keyinit(_context(pamh, "setcred", st), argv, PAM_CRED_ERR, "ESTABLISH_CRED")
        if flags & PAM_DELETE_CRED and revoke_due(st):
            ctx = _context(pamh, "setcred", st)
            ctx.log.debug("DELETE_CRED")
            return kill_keyrings(ctx, PAM_CRED_ERR)
        return PAM_IGNORE

    return _guarded("setcred", PAM_CRED_ERR, pamh, body)


def pam_sm_open_session(pamh: "Pamh", flags: int, argv: "list[str]") -> int:
    def body() -> int:
        st = current_thread_state(pamh)
        with process_state.lock:
            process_state.session_counter += 1
            what = f"OPEN {process_state.session_counter}"
        return keyinit(_context(pamh, "session", st), argv, PAM_SESSION_ERR, what)

    return _guarded("session", PAM_SESSION_ERR, pamh, body)


def pam_sm_close_session(pamh: "Pamh", flags: int, argv: "list[str]") -> int:
    # Always PAM_SUCCESS: libpam replays open_session's control decisions
    # at close, so this line counts as required there. Like pam_keyinit,
    # the arguments are not read here.
    def body() -> int:
        st = current_thread_state(pamh)
        with process_state.lock:
            process_state.session_counter -= 1
            left = process_state.session_counter
        if left <= 0 and revoke_due(st):
            ctx = _context(pamh, "session", st)
            ctx.log.debug(f"CLOSE {left}: revoking")
            kill_keyrings(ctx, PAM_SESSION_ERR)
        return PAM_SUCCESS

    return _guarded("session", PAM_SUCCESS, pamh, body)


def pam_sm_end(pamh: "Pamh") -> None:
    """pam_python's call at pam_end(): this handle has ended. After the last
    live one, every thread's state and the counter start afresh, as after
    libpam's dlclose of pam_keyinit.so."""
    try:
        with process_state.lock:
            process_state.handles.discard(id(pamh))
            if not process_state.handles:
                process_state.session_counter = 0
                if process_state.slots is not None:
                    process_state.slots.delete()
                    process_state.slots = None
    except Exception:  # noqa: BLE001, S110 - nothing to report to: pam_end ignores it
        pass


def pam_sm_acct_mgmt(pamh: "Pamh", flags: int, argv: "list[str]") -> int:
    # pam_keyinit.so has no pam_sm_acct_mgmt; libpam answers a missing
    # symbol with PAM_MODULE_UNKNOWN, and so does this.
    process_state.handles.add(id(pamh))
    return PAM_MODULE_UNKNOWN


def pam_sm_chauthtok(pamh: "Pamh", flags: int, argv: "list[str]") -> int:
    process_state.handles.add(id(pamh))
    return PAM_MODULE_UNKNOWN


# What the loader takes as its own once the package is trusted (trust.handlers).
HANDLERS = {
    f.__name__: f
    for f in (
        pam_sm_authenticate,
        pam_sm_setcred,
        pam_sm_acct_mgmt,
        pam_sm_open_session,
        pam_sm_close_session,
        pam_sm_chauthtok,
        pam_sm_end,
    )
}
