"""The keyinit and revoke logic of pam_keyinit.c, free of pamh and ctypes.

Every collaborator arrives in a Context so that unit tests can drive each
branch with fakes; entry.py builds the real one. Return codes and the order
of checks follow Linux-PAM's modules/pam_keyinit/pam_keyinit.c (do_keyinit,
init_keyrings, kill_keyrings); the caller chooses the error code
(PAM_CRED_ERR from setcred, PAM_SESSION_ERR from the session calls).
"""

from __future__ import annotations

import errno

from . import keyring
from .creds import Switch
from .kernel import KernelError
from .pamconst import PAM_SUCCESS, PAM_USER_UNKNOWN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .options import Options
    from .state import ThreadState
    from .types import KernelLike, LogLike, PasswdLike


class Context:
    """What one call of the logic works with."""

    __slots__ = ("get_user", "getpwnam", "kernel", "log", "thread")

    def __init__(
        self,
        kernel: KernelLike,
        log: LogLike,
        thread: ThreadState,
        get_user: Callable[[], tuple[int, str | None]],
        getpwnam: Callable[[str], PasswdLike | None],
    ) -> None:
        self.kernel = kernel
        self.log = log
        self.thread = thread
        self.get_user = get_user  # -> (PAM code, user name)
        self.getpwnam = getpwnam  # -> passwd entry, or None if unknown


def apply_sticky(ctx: Context, opts: Options) -> None:
    """'debug' and 'revoke' stay on for the thread once seen."""
    if opts.debug:
        ctx.thread.xdebug = True
    if opts.revoke:
        ctx.thread.do_revoke = True


def do_keyinit(ctx: Context, opts: Options, error_ret: int) -> int:
    """Give the thread a session keyring owned by the PAM user."""
    apply_sticky(ctx, opts)
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
    sw = _snapshot(ctx)
    if sw is None:
        return error_ret
    with sw:
        log.debug(f"UID:{uid} [{sw.uids[0]}]  GID:{gid} [{sw.gids[0]}]")
        try:
            sw.take(uid, gid)
        except KernelError as err:
            _report(ctx, err, f'taking the real IDs of "{user}" (uid {uid}, gid {gid})')
            ret = error_ret
        else:
            ret = init_keyrings(ctx, opts.force, error_ret)
    return _checked_restore(ctx, sw, ret, error_ret)


def init_keyrings(ctx: Context, force: bool, error_ret: int) -> int:
    """Join a new session keyring and link the user keyring into it."""
    kernel, log = ctx.kernel, ctx.log
    if not force:
        try:
            session = keyring.session_keyring(kernel)
        except KernelError as err:
            if err.errno == errno.ENOSYS:
                # As pam_keyinit: no key support in this kernel, nothing to do.
                log.debug(f"{err}: the kernel has no keyrings, nothing to do")
                return PAM_SUCCESS
            _report(ctx, err, "reading the session keyring")
            return error_ret
        try:
            usession = keyring.user_session_keyring(kernel)
        except KernelError as err:
            _report(ctx, err, "reading the user-session keyring")
            return error_ret
        log.debug(f"session keyring {session}, user-session keyring {usession}")
        if session != usession:
            log.debug("the process already has a session keyring of its own: keeping it")
            return PAM_SUCCESS

    try:
        serial = keyring.join_session_keyring(kernel)
    except KernelError as err:
        _report(ctx, err, "creating the session keyring")
        return error_ret
    # Remembered before linking, as pam_keyinit does: a failed link leaves
    # the joined keyring in place and a later revoke still finds it.
    ctx.thread.my_session_keyring = serial
    log.debug(f"joined new session keyring {serial}")
    try:
        keyring.link_user_keyring(kernel)
    except KernelError as err:
        _report(ctx, err, f"linking the user keyring into session keyring {serial}")
        return error_ret
    return PAM_SUCCESS


def kill_keyrings(ctx: Context, error_ret: int) -> int:
    """Revoke the keyring this thread created, as the user that owns it."""
    st, log = ctx.thread, ctx.log
    serial = st.my_session_keyring
    if serial <= 0:
        return PAM_SUCCESS
    uid, gid = st.revoke_as_uid, st.revoke_as_gid
    attempted = False
    sw = _snapshot(ctx)
    if sw is None:
        return error_ret
    with sw:
        log.debug(f"REVOKE {serial} UID:{uid} [{sw.uids[1]}]  GID:{gid} [{sw.gids[1]}]")
        try:
            sw.take(uid, gid, effective=True)
        except KernelError as err:
            _report(ctx, err, f"taking the effective IDs uid {uid}, gid {gid} to revoke")
            ret = error_ret
        else:
            attempted = True
            try:
                keyring.revoke(ctx.kernel, serial)
                ret = PAM_SUCCESS
            except KernelError as err:
                _report(ctx, err, f"revoking session keyring {serial}")
                ret = error_ret
    # pam_keyinit forgets the keyring once a revoke was attempted, and keeps
    # it when it could not even switch IDs (a later call may try again).
    if attempted:
        st.my_session_keyring = 0
    return _checked_restore(ctx, sw, ret, error_ret)


def _report(ctx: Context, err: KernelError, doing: str) -> None:
    # Imported here, on failure only: spares every good login an import.
    from .advice import describe

    ctx.log.error(describe(err, doing))


def _snapshot(ctx: Context) -> Switch | None:
    try:
        return Switch(ctx.kernel)
    except KernelError as err:
        _report(ctx, err, "reading the caller's IDs")
        return None


def _checked_restore(ctx: Context, sw: Switch, ret: int, error_ret: int) -> int:
    for failure in sw.restore_failures:
        ctx.log.error(
            f"{failure}; the process now runs with other IDs than it had: end it,"
            " and report this with the line above"
        )
        ret = error_ret
    return ret
