"""The only writer to syslog.

Lines go through libc's syslog(3) with LOG_AUTHPRIV in the priority, in the
form libpam's pam_syslog() gives C modules: ``pam_pykeyinit(SERVICE:TYPE):
message``. Python's syslog module is not used: its first syslog() call runs
openlog(), which replaces the host process's identity, options and facility
(sshd's later lines would change). A bare syslog(3) call leaves them as the
host set them.
"""

from __future__ import annotations

from . import kernel

# <syslog.h>
LOG_AUTHPRIV = 10 << 3
LOG_ERR = 3
LOG_WARNING = 4
LOG_NOTICE = 5
LOG_DEBUG = 7

MODULE_NAME = "pam_pykeyinit"


def _clean(text: str) -> bytes:
    # A user name may hold anything: never let it end the C string early.
    return text.replace("\0", "\\0").encode("utf-8", "backslashreplace")


def write(priority: int, line: str) -> None:
    """One syslog line at ``priority`` (a LOG_* level) in LOG_AUTHPRIV."""
    syslog = kernel.libc_function("syslog")
    # "%s" as the format: the line itself is never parsed for conversions.
    syslog(kernel.c_int(LOG_AUTHPRIV | priority), b"%s", _clean(line))


class Logger:
    """Prefixes lines as pam_syslog() does; debug lines follow a live flag."""

    def __init__(self, service: str, pam_type: str, debug_on: object) -> None:
        self.prefix = f"{MODULE_NAME}({service}:{pam_type}):"
        # An object with an ``xdebug`` attribute (the thread state), read at
        # each call because 'debug' can be switched on mid-call.
        self._debug_on = debug_on

    def error(self, message: str) -> None:
        write(LOG_ERR, f"{self.prefix} {message}")

    def notice(self, message: str) -> None:
        write(LOG_NOTICE, f"{self.prefix} {message}")

    def debug(self, message: str) -> None:
        if getattr(self._debug_on, "xdebug", False):
            write(LOG_DEBUG, f"{self.prefix} {message}")
