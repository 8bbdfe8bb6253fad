from __future__ import annotations

import pytest

from pam_pykeyinit.keyinit import Options

pytestmark = pytest.mark.unit


def test_known_words():
    opts = Options(["force", "revoke", "debug"])
    assert (opts.force, opts.revoke, opts.debug, opts.unknown) == (True, True, True, [])


def test_empty():
    opts = Options([])
    assert (opts.force, opts.revoke, opts.debug, opts.unknown) == (False, False, False, [])


@pytest.mark.parametrize("word", ["Force", "REVOKE", "revoke=1", " debug", "", "forced"])
def test_words_match_exactly(word):
    opts = Options([word])
    assert not (opts.force or opts.revoke or opts.debug)
    assert opts.unknown == [word]
