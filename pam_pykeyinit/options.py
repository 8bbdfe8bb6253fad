"""Module arguments, matched as pam_keyinit matches them.

Words are compared exactly and case-sensitively (strcmp in pam_keyinit.c);
any other word is ignored by the C module. pam_pykeyinit ignores it too but
reports it, once per process, so a typo such as ``Revoke`` gets noticed.
New opt-in words are added to KNOWN and given an attribute on Options.
"""

from __future__ import annotations

KNOWN = ("force", "debug", "revoke")


class Options:
    __slots__ = ("debug", "force", "revoke", "unknown")

    def __init__(self) -> None:
        self.force = False
        self.debug = False
        self.revoke = False
        self.unknown: list[str] = []


def parse(words: list[str]) -> Options:
    """Parse the words after the module path (pam_python's argv[1:])."""
    opts = Options()
    for word in words:
        if word in KNOWN:
            setattr(opts, word, True)
        else:
            opts.unknown.append(word)
    return opts
