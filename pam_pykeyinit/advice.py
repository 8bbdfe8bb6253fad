"""What an administrator can do about a failed call, keyed on its fields.

Loaded on failure only (keyinit.module("advice")), never on a good login;
it imports nothing a login has not loaded already (errno is built in). The
advice is chosen from KernelError's ``call`` and ``errno`` (and, for keyctl,
its operation), never from the text of the error.
References: keyctl(2) ERRORS, keyrings(7) "Quotas", capabilities(7),
persistent-keyring(7).
"""

import errno

from .kernel import KEYCTL, KEYCTL_GET_PERSISTENT, KernelError

KEYCTL_ADVICE = {
    errno.EDQUOT: "the user's key quota is full: compare /proc/key-users with"
    " kernel.keys.maxkeys and kernel.keys.maxbytes (sysctl) and raise them or"
    " clear stale keys",
    errno.ENOSYS: "keyctl is not available: a kernel without CONFIG_KEYS, or a"
    " container's seccomp profile that blocks keyctl",
    errno.EPERM: "keyctl was refused: a container's seccomp profile (Docker,"
    " Flatpak, systemd-nspawn) blocks keyctl, or the key does not allow it",
    errno.EACCES: "permission denied: an LSM (SELinux, AppArmor) policy or the"
    " keyring's permissions refuse it",
    errno.EKEYREVOKED: "the session keyring inherited from the calling process"
    " has been revoked: add 'force' to replace it, or start the login from a"
    " process with a live session keyring",
    errno.EKEYEXPIRED: "the session keyring inherited from the calling process"
    " has expired: add 'force' to replace it",
    errno.ENOMEM: "the kernel is out of memory for keys",
}
# keyctl(KEYCTL_GET_PERSISTENT, ...) first, then the keyctl table (EDQUOT, ENOMEM...)
PERSISTENT_ADVICE = {
    errno.EOPNOTSUPP: "this kernel has no persistent keyrings (built without"
    " CONFIG_PERSISTENT_KEYRINGS): drop 'persistent', or park the keys in the"
    " user keyring instead",
    errno.EPERM: "keyctl was refused: a container's seccomp profile or an LSM"
    " policy blocks KEYCTL_GET_PERSISTENT; drop 'persistent' here",
    errno.EACCES: "permission denied: an LSM (SELinux, AppArmor) policy refuses"
    " the persistent keyring; drop 'persistent' here or allow it",
}
CREDENTIAL_ADVICE = {
    errno.EPERM: "the calling process may not take this user's IDs (no"
    " CAP_SETUID/CAP_SETGID): run the PAM application as root, or open"
    " sessions only for the caller's own user",
    errno.EINVAL: "the user's uid or gid is not valid in this user namespace",
}
# pthread_key_create(3): the per-thread state (kernel.thread_slots)
THREAD_KEY_ADVICE = {
    errno.EAGAIN: "the process has used up its thread-specific data keys"
    " (PTHREAD_KEYS_MAX): the PAM application or another of its libraries"
    " holds them; restart it, and report this to its maintainers",
    errno.ENOMEM: "the process is out of memory",
}
FALLBACK = "see the errno in keyctl(2) or setresuid(2)"


def for_error(err: KernelError) -> str:
    code = err.errno or 0
    if err.op == KEYCTL_GET_PERSISTENT and code in PERSISTENT_ADVICE:
        return PERSISTENT_ADVICE[code]
    if err.call == KEYCTL:
        table = KEYCTL_ADVICE
    elif err.call.startswith("pthread_"):
        table = THREAD_KEY_ADVICE
    else:
        table = CREDENTIAL_ADVICE
    return table.get(code, FALLBACK)


def describe(err: KernelError, doing: str) -> str:
    """``doing``: what the module was doing, e.g. 'creating the session keyring'."""
    return f"{doing}: {err}; {for_error(err)}"
