"""State kept the way pam_keyinit keeps it.

pam_keyinit.c (Linux-PAM 1.5.3 and later) keeps the created keyring, the
revoke and debug flags and the revoke IDs in _Thread_local variables and the
session counter in one process-wide atomic. This module is imported, not
executed by pam_python, so one copy serves every PAM handle of the process
for as long as the interpreter lives: from the first handle that loads
pam_python to the pam_end() of the last, like the C module's lifetime.
"""

from __future__ import annotations

import _thread

# _thread._local is the C type behind threading.local; using it directly
# spares every login the import of threading.
_local = _thread._local


class ThreadState(_local):
    """Per thread; class attributes are each new thread's starting values."""

    my_session_keyring = 0  # serial of the keyring this thread created, 0 if none
    do_revoke = False  # sticky: once 'revoke' is seen it stays on
    xdebug = False  # sticky: once 'debug' is seen it stays on
    revoke_as_uid = -1
    revoke_as_gid = -1


class ProcessState:
    """Per process. The counter is changed only inside handlers, one
    Python statement at a time in the one interpreter pam_python keeps per
    process; C uses an _Atomic int. (Debian's pam_python does not take the
    GIL per call, so PAM calls from two threads at the same moment are
    unsafe for any pam_python module, this one included.)"""

    def __init__(self) -> None:
        self.session_counter = 0
        self.reported_words: set[str] = set()


thread = ThreadState()
process = ProcessState()
