"""The six PAM entry points, with pam_keyinit's results.

pam_module.py (the file pam_python executes) hands every call here. This is
where pamh is read and the real collaborators are built; the decisions are
in keyinit.py. No exception leaves this module: anything unexpected is
logged in one line and answered with the entry point's documented code.
"""

from __future__ import annotations

import pwd

from . import kernel, options, state
from .keyinit import Context, apply_sticky, do_keyinit, kill_keyrings
from .log import Logger
from .pamconst import (
    PAM_CRED_ERR,
    PAM_DELETE_CRED,
    PAM_ESTABLISH_CRED,
    PAM_IGNORE,
    PAM_MODULE_UNKNOWN,
    PAM_SESSION_ERR,
    PAM_SUCCESS,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Pamh = Any  # pam_python's PamHandle: no importable type


def _service(pamh: Pamh) -> str:
    try:
        return str(pamh.service or "<unknown>")
    except Exception:  # noqa: BLE001 - an unreadable item must not stop the call
        return "<unknown>"


def _getpwnam(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except (KeyError, ValueError, TypeError, UnicodeError):
        # KeyError: no such user; ValueError: embedded NUL; the others: a
        # name that is no string. pam_keyinit treats them all as unknown.
        return None


def _get_user(pamh: Pamh) -> Callable[[], tuple[int, str | None]]:
    def get_user() -> tuple[int, str | None]:
        try:
            return PAM_SUCCESS, pamh.get_user("key user")
        except pamh.exception as exc:
            return int(exc.pam_result), None

    return get_user


def _context(pamh: Pamh, pam_type: str) -> Context:
    log = Logger(_service(pamh), pam_type, state.thread)
    # kernel.load() fails closed on an unknown architecture; the
    # UnsupportedABI it raises is turned into a log line by _guarded.
    return Context(kernel.load(), log, state.thread, _get_user(pamh), _getpwnam)


def _options(ctx: Context, argv: list[str]) -> options.Options:
    # pam_python puts the module file in argv[0]; the options follow it.
    opts = options.parse(list(argv[1:]))
    for word in opts.unknown:
        if word not in state.process.reported_words:
            state.process.reported_words.add(word)
            ctx.log.notice(
                f'ignoring unknown option "{word}" (known: {", ".join(options.KNOWN)};'
                " words are case-sensitive)"
            )
    return opts


def _guarded(pam_type: str, error_ret: int, pamh: Pamh, body: Callable[[], int]) -> int:
    try:
        return body()
    except kernel.UnsupportedABI as exc:
        Logger(_service(pamh), pam_type, None).error(f"refusing to touch keyrings: {exc}")
    except Exception as exc:  # noqa: BLE001 - never a traceback in the host
        try:
            Logger(_service(pamh), pam_type, None).error(
                f"internal error {type(exc).__name__}: {exc}; please report it"
            )
        except Exception:  # noqa: BLE001, S110 - logging itself failed: nothing left to do
            pass
    return error_ret


def pam_sm_authenticate(pamh: Pamh, flags: int, argv: list[str]) -> int:
    # Present only so the module can sit in the auth stack and see setcred.
    return PAM_IGNORE


def pam_sm_setcred(pamh: Pamh, flags: int, argv: list[str]) -> int:
    def body() -> int:
        thread = state.thread
        if flags & PAM_ESTABLISH_CRED:
            ctx = _context(pamh, "setcred")
            ctx.log.debug("ESTABLISH_CRED")
            return do_keyinit(ctx, _options(ctx, argv), PAM_CRED_ERR)
        if flags & PAM_DELETE_CRED and thread.my_session_keyring > 0 and thread.do_revoke:
            ctx = _context(pamh, "setcred")
            ctx.log.debug("DELETE_CRED")
            return kill_keyrings(ctx, PAM_CRED_ERR)
        return PAM_IGNORE

    return _guarded("setcred", PAM_CRED_ERR, pamh, body)


def pam_sm_open_session(pamh: Pamh, flags: int, argv: list[str]) -> int:
    def body() -> int:
        state.process.session_counter += 1
        ctx = _context(pamh, "session")
        opts = _options(ctx, argv)
        apply_sticky(ctx, opts)
        ctx.log.debug(f"OPEN {state.process.session_counter}")
        return do_keyinit(ctx, opts, PAM_SESSION_ERR)

    return _guarded("session", PAM_SESSION_ERR, pamh, body)


def pam_sm_close_session(pamh: Pamh, flags: int, argv: list[str]) -> int:
    # Always PAM_SUCCESS: libpam replays open_session's control decisions
    # at close, so this line counts as required there. Like pam_keyinit,
    # the arguments are not read here.
    def body() -> int:
        thread, process = state.thread, state.process
        process.session_counter -= 1
        if process.session_counter <= 0 and thread.my_session_keyring > 0 and thread.do_revoke:
            ctx = _context(pamh, "session")
            ctx.log.debug(f"CLOSE {process.session_counter}: revoking")
            kill_keyrings(ctx, PAM_SESSION_ERR)
        return PAM_SUCCESS

    return _guarded("session", PAM_SUCCESS, pamh, body)


def pam_sm_acct_mgmt(pamh: Pamh, flags: int, argv: list[str]) -> int:
    # pam_keyinit.so has no pam_sm_acct_mgmt; libpam answers a missing
    # symbol with PAM_MODULE_UNKNOWN, and so does this.
    return PAM_MODULE_UNKNOWN


def pam_sm_chauthtok(pamh: Pamh, flags: int, argv: list[str]) -> int:
    return PAM_MODULE_UNKNOWN
