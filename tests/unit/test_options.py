"""Option words: matched exactly, as pam_keyinit matches them."""

from __future__ import annotations

import pytest

from pam_pykeyinit.keyinit import KNOWN, Options

pytestmark = pytest.mark.unit
FLAGS = ("force", "revoke", "debug", "force_auto", "persistent", "unavailable_ignore")


def flags(opts: Options) -> dict[str, bool]:
    return {name: getattr(opts, name) for name in FLAGS}


def test_pam_keyinits_words():
    opts = Options(["force", "revoke", "debug"])
    assert flags(opts) == {
        **dict.fromkeys(FLAGS, False),
        "force": True,
        "revoke": True,
        "debug": True,
    }
    assert opts.unknown == []


def test_pam_pykeyinits_own_words():
    opts = Options(["force=auto", "persistent", "unavailable=ignore"])
    assert flags(opts) == {
        **dict.fromkeys(FLAGS, False),
        "force_auto": True,
        "persistent": True,
        "unavailable_ignore": True,
    }
    assert set(KNOWN) == {
        "force",
        "revoke",
        "debug",
        "force=auto",
        "persistent",
        "unavailable=ignore",
        "unavailable=fail",
    }


def test_empty_is_every_default():
    opts = Options([])
    assert flags(opts) == dict.fromkeys(FLAGS, False) and opts.unknown == []


def test_the_last_unavailable_word_wins():
    assert Options(["unavailable=ignore", "unavailable=fail"]).unavailable_ignore is False
    assert Options(["unavailable=fail", "unavailable=ignore"]).unavailable_ignore is True


@pytest.mark.parametrize(
    "word",
    [
        *("Force", "REVOKE", "revoke=1", " debug", "", "forced"),
        *("force=sometimes", "unavailable=", "persistent=1", "force=", "unavailable=IGNORE"),
    ],
)
def test_words_match_exactly(word):
    opts = Options([word])
    assert flags(opts) == dict.fromkeys(FLAGS, False)
    assert opts.unknown == [word]
