"""Option words: matched exactly, as pam_keyinit matches them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from pam_pykeyinit.keyinit import KNOWN, parse_options

if TYPE_CHECKING:
    from pam_pykeyinit.interfaces import Options

pytestmark = pytest.mark.unit
FLAGS = ("force", "revoke", "debug", "force_auto", "persistent", "unavailable_ignore")


def flags(opts: Options) -> dict[str, bool]:
    return {name: getattr(opts, name) for name in FLAGS}


def test_pam_keyinits_words():
    opts = parse_options(["force", "revoke", "debug"])
    assert flags(opts) == {
        **dict.fromkeys(FLAGS, False),
        "force": True,
        "revoke": True,
        "debug": True,
    }
    assert opts.unknown == []


def test_pam_pykeyinits_own_words():
    opts = parse_options(["force=auto", "persistent", "unavailable=ignore"])
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
    opts = parse_options([])
    assert flags(opts) == dict.fromkeys(FLAGS, False) and opts.unknown == []


def test_the_last_unavailable_word_wins():
    assert parse_options(["unavailable=ignore", "unavailable=fail"]).unavailable_ignore is False
    assert parse_options(["unavailable=fail", "unavailable=ignore"]).unavailable_ignore is True


@pytest.mark.parametrize(
    "word",
    [
        *("Force", "REVOKE", "revoke=1", " debug", "", "forced"),
        *("force=sometimes", "unavailable=", "persistent=1", "force=", "unavailable=IGNORE"),
    ],
)
def test_words_match_exactly(word):
    opts = parse_options([word])
    assert flags(opts) == dict.fromkeys(FLAGS, False)
    assert opts.unknown == [word]
