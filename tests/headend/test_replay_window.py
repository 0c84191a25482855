"""The head-end's anti-replay window: UDP may reorder a meter's datagrams, so a counter a
little below the newest is accepted once; a counter seen before, or too old, never."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import SecurityError
from openami.headend.keystore import REPLAY_WINDOW, KeyStore
from openami.protocols.dlms.security import SuiteZero

TITLE = b"OAM\x00\x00\x00\x00\x01"
EK, AK = bytes(range(16)), bytes(range(16, 32))


def _store() -> KeyStore:
    keys = KeyStore()
    keys.provision(1, TITLE, ("127.1.0.1", 4059), EK, AK)
    return keys


def _accepts(keys: KeyStore, counter: int) -> bool:
    content = SuiteZero(EK, AK).protect(TITLE, counter, b"\x0f")
    try:
        keys.open(TITLE, content)
    except SecurityError:
        return False
    return True


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=60))
def test_each_counter_is_accepted_at_most_once_and_only_within_the_window(
    counters: list[int],
) -> None:
    keys = _store()
    seen: set[int] = set()
    newest = -1
    for c in counters:
        expected = c not in seen and (c > newest or newest - c <= REPLAY_WINDOW)
        assert _accepts(keys, c) is expected, (c, newest, sorted(seen))
        if expected:
            seen.add(c)
            newest = max(newest, c)


def test_reordered_pushes_are_accepted_and_their_replays_refused() -> None:
    keys = _store()
    assert _accepts(keys, 10)
    assert _accepts(keys, 12)
    assert _accepts(keys, 11)  # arrived late, first time: kept
    assert not _accepts(keys, 11)  # the same again: a replay
    assert not _accepts(keys, 12)
    assert _accepts(keys, 12 + REPLAY_WINDOW + 5)
    assert not _accepts(keys, 12)  # now too old to tell apart from a replay


@pytest.mark.parametrize("tampered", [0, 5, -1])
def test_a_tampered_frame_does_not_move_the_window(tampered: int) -> None:
    keys = _store()
    good = SuiteZero(EK, AK).protect(TITLE, 7, b"\x0f")
    bad = bytearray(SuiteZero(EK, AK).protect(TITLE, 50, b"\x0f"))
    bad[tampered] ^= 0x01
    with pytest.raises(SecurityError):
        keys.open(TITLE, bytes(bad))
    keys.open(TITLE, good)  # 7 still fresh: the forged 50 left no trace
