"""Per-thread credential switches that always come back exactly.

pam_keyinit moves only the *real* IDs to create a keyring (the kernel gives
a new session keyring the caller's real uid and gid, and resolves @u/@us by
the real uid) and only the *effective* IDs to revoke one (KEYCTL_REVOKE
checks the effective fsuid's permission). The effective uid stays 0 while
creating, so coming back is always allowed.

Differences from the C module, on purpose:
- setres[ug]id(2) as raw system calls change only this thread (kernel.py).
- The value an ID displaces is parked in the saved slot while switched (the
  trick pam_keyinit's revoke uses with setresuid(-1, uid, old_euid)), so the
  way back stays permitted even for a caller without CAP_SETUID.
- On leaving, real, effective, saved and fs IDs are all set back to the
  snapshot taken on entry and read back to check them. Debian's 1.5.2
  module leaves the saved gid changed after a revoke.
"""

from __future__ import annotations

from .kernel import UNCHANGED, KernelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from .types import KernelLike


RESTORE_TRIES = 2


def _ids(values: tuple[int, int, int], fs: int) -> tuple[int, int, int, int]:
    return (values[0], values[1], values[2], fs)


class Switch:
    """Snapshot the thread's IDs on entry; restore and verify them on exit.

    Use as ``with Switch(kernel) as sw: sw.real_uid(uid) ...``; leaving the
    block never raises: what could not be restored is in ``restore_failures``
    as log-ready sentences, for the caller to log and turn into its code.
    """

    def __init__(self, kernel: KernelLike) -> None:
        self._kernel = kernel
        self.uids = _ids(kernel.getresuid(), kernel.setfsuid(UNCHANGED))
        self.gids = _ids(kernel.getresgid(), kernel.setfsgid(UNCHANGED))
        self._uid_moved = False
        self._gid_moved = False
        self.restore_failures: list[str] = []

    def __enter__(self) -> Switch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Reverse order of switching: the uid first, which gives back the
        # privilege (effective uid 0) that restoring the gid needs.
        if self._uid_moved:
            self._restore(
                "uid",
                self.uids,
                self._kernel.setresuid,
                self._kernel.getresuid,
                self._kernel.setfsuid,
            )
        if self._gid_moved:
            self._restore(
                "gid",
                self.gids,
                self._kernel.setresgid,
                self._kernel.getresgid,
                self._kernel.setfsgid,
            )

    def real_gid(self, gid: int) -> None:
        r, _, _ = self._kernel.getresgid()
        self._kernel.setresgid(gid, UNCHANGED, r)
        self._gid_moved = True

    def real_uid(self, uid: int) -> None:
        r, _, _ = self._kernel.getresuid()
        self._kernel.setresuid(uid, UNCHANGED, r)
        self._uid_moved = True

    def effective_gid(self, gid: int) -> None:
        _, e, _ = self._kernel.getresgid()
        self._kernel.setresgid(UNCHANGED, gid, e)
        self._gid_moved = True

    def effective_uid(self, uid: int) -> None:
        _, e, _ = self._kernel.getresuid()
        self._kernel.setresuid(UNCHANGED, uid, e)
        self._uid_moved = True

    def _restore(
        self,
        kind: str,
        want: tuple[int, int, int, int],
        setres: Callable[[int, int, int], None],
        getres: Callable[[], tuple[int, int, int]],
        setfs: Callable[[int], int],
    ) -> None:
        r, e, s, fs = want
        # Two tries: a failure is reported either way (the caller turns it
        # into its error code), but a passing one must not leave the host
        # process with the user's IDs.
        for _ in range(RESTORE_TRIES):
            try:
                # Effective first: regains CAP_SET[UG]ID when the old euid
                # was 0 (capabilities(7), "Effect of user ID changes on
                # capabilities").
                setres(UNCHANGED, e, UNCHANGED)
                setres(r, e, s)
                setfs(fs)
                got = _ids(getres(), setfs(UNCHANGED))
            except KernelError as err:
                self.restore_failures.append(f"cannot restore the caller's {kind}s: {err}")
                continue
            if got == want:
                return
            self.restore_failures.append(
                f"the caller's {kind}s are {got} (real, effective, saved, fs) after restoring,"
                f" expected {want}"
            )
