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
  snapshot taken on entry and read back to check them, with a second try if
  the first fails. Linux-PAM 1.5.2 and 1.7.0 leave the saved gid changed after
  a revoke.

Only calls that change something are made: every set*id call commits new
credentials, and the old ones, which hold a reference to the session
keyring, are freed after an RCU grace period (lazily, up to seconds, with
CONFIG_RCU_LAZY). Extra commits keep revoked keyrings charged to the user's
key quota for longer: 1,000 quick open/close cycles in one process reached
EDQUOT with a few more commits per call than pam_keyinit makes.
"""

from .kernel import UNCHANGED, KernelError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from .interfaces import Ids, KernelLike

RESTORE_TRIES = 2
# Which IDs Switch.take moves: indexes into (real, effective, saved).
REAL = 0
EFFECTIVE = 1


class Switch:
    """Snapshot the thread's IDs on entry; restore and verify them on exit.

    Use as ``with Switch(kernel) as sw: sw.take(uid, gid, REAL) ...``; leaving the
    block never raises: what could not be restored is in ``restore_failures``
    as log-ready sentences, for the caller to log and turn into its code.
    """

    def __init__(self, kernel: "KernelLike") -> None:
        self._kernel = kernel
        # (real, effective, saved, fs) for uids, then for gids
        self.uids, self.gids = kernel.thread_ids()
        self._uid_moved = False
        self._gid_moved = False
        self.restore_failures: "list[str]" = []

    def __enter__(self) -> "Switch":
        return self

    def __exit__(
        self,
        exc_type: "type[BaseException] | None",
        exc: "BaseException | None",
        tb: "TracebackType | None",
    ) -> None:
        if not (self._uid_moved or self._gid_moved):
            return
        k = self._kernel
        for _ in range(RESTORE_TRIES):
            # Reverse order of switching: the uid first, which gives back
            # the privilege (effective uid 0) that restoring the gid needs.
            done = self._restore("uid", self.uids, k.setresuid, k.getresuid, k.setfsuid)
            done = self._restore("gid", self.gids, k.setresgid, k.getresgid, k.setfsgid) and done
            if not done:
                continue
            try:
                got = k.thread_ids()
            except KernelError as err:
                self.restore_failures.append(
                    f"cannot read back the caller's IDs after restoring them: {err}"
                )
                continue
            if got == (self.uids, self.gids):
                return
            self.restore_failures.append(
                f"the caller's IDs are {got} (real, effective, saved, fs; uids then"
                f" gids) after restoring, expected {(self.uids, self.gids)}"
            )

    def take(self, uid: int, gid: int, slot: int = REAL) -> None:
        """Move the REAL or EFFECTIVE gid, then uid, to the user's where they
        differ from the entry IDs: pam_keyinit's order and test."""
        k = self._kernel
        if gid != self.gids[slot]:
            self._move(k.setresgid, k.getresgid, slot, gid)
            self._gid_moved = True
        if uid != self.uids[slot]:
            self._move(k.setresuid, k.getresuid, slot, uid)
            self._uid_moved = True

    @staticmethod
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

    def _restore(
        self,
        kind: str,
        want: "Ids",
        setres: "Callable[[int, int, int], None]",
        getres: "Callable[[], tuple[int, int, int]]",
        setfs: "Callable[[int], int]",
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
            self.restore_failures.append(f"cannot restore the caller's {kind}s: {err}")
            return False
        return True
