"""The columnar key store: lookups, batch freshness equal to one-by-one, state that
survives the process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.errors import ConfigError, SecurityError
from openami.headend.keystore import KeyStore, title_key


def _title(i: int) -> bytes:
    return b"OAM" + i.to_bytes(5, "big")


def _store(n: int) -> KeyStore:
    keys = KeyStore()
    for i in range(1, n + 1):
        keys.provision(i, _title(i), (f"127.1.0.{i}", 4059), bytes([i]) * 16, bytes([i + 1]) * 16)
    return keys


def test_lookups_by_title_and_id() -> None:
    keys = _store(5)
    assert len(keys) == 5
    m = keys.by_title(_title(3))
    assert (m.meter_id, m.system_title, m.address) == (3, _title(3), ("127.1.0.3", 4059))
    assert m.suite.ek == bytes([3]) * 16 and m.suite.ak == bytes([4]) * 16
    assert keys.by_id(5).system_title == _title(5)
    assert "ek" not in repr(m) and bytes([3]).hex() * 16 not in repr(m)
    rows = keys.rows_of_titles(
        np.array([title_key(_title(2)), 99, title_key(_title(5))], np.uint64)
    )
    assert rows[1] == -1 and keys.meter_id[rows[0]] == 2 and keys.meter_id[rows[2]] == 5
    with pytest.raises(SecurityError, match="unknown system title"):
        keys.by_title(_title(9))
    with pytest.raises(SecurityError, match="no keys for meter 9"):
        keys.by_id(9)


def test_new_keys_replace_the_old_and_restart_replay_state() -> None:
    keys = _store(3)
    keys.accept(keys.by_id(2).row, 50)
    keys.provision(2, _title(2), ("127.1.0.9", 4059), b"\x09" * 16, b"\x0a" * 16)
    assert len(keys) == 3
    m = keys.by_id(2)
    assert m.suite.ek == b"\x09" * 16 and m.address == ("127.1.0.9", 4059)
    assert m.last_meter_counter == -1
    keys.accept(m.row, 1)  # the new keys start a new count


def test_a_whole_shipment_in_columns() -> None:
    n = 10_000
    keys = KeyStore()
    ids = np.arange(1, n + 1, dtype=np.int64)
    titles = np.array([title_key(_title(i)) for i in range(1, n + 1)], np.uint64)
    rng = np.random.default_rng(1)
    ek = rng.integers(0, 256, (n, 16), dtype=np.uint8)
    assert (
        keys.provision_columns(
            ids, titles, ek, ek, np.full(n, 0x7F010001, np.uint32), np.full(n, 4059, np.uint16)
        )
        == n
    )
    assert keys.by_title(_title(777)).suite.ek == ek[776].tobytes()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), st.integers(0, 200)), min_size=0, max_size=80),
    st.integers(1, 80),
)
def test_a_batch_decides_exactly_as_one_by_one(arrivals: list[tuple[int, int]], batch: int) -> None:
    one, many = _store(4), _store(4)
    expected = []
    for meter, counter in arrivals:
        try:
            one.accept(one.by_id(meter).row, counter)
            expected.append(True)
        except SecurityError:
            expected.append(False)
    got: list[bool] = []
    for start in range(0, len(arrivals), batch):
        part = arrivals[start : start + batch]
        rows = np.array([many.by_id(m).row for m, _ in part], dtype=np.int64)
        counters = np.array([c for _, c in part], dtype=np.int64)
        got += many.accept_many(rows, counters)[0].tolist()
    assert got == expected
    assert np.array_equal(one.last, many.last) and np.array_equal(one.seen, many.seen)


def test_long_jumps_in_a_batch_keep_the_window_right() -> None:
    for jump in (63, 64, 65, 1000):
        one, many = _store(1), _store(1)
        for store in (one, many):
            store.accept(0, 10)
        one.accept(0, 10 + jump)
        many.accept_many(np.array([0]), np.array([10 + jump]))
        assert int(one.seen[0]) == int(many.seen[0]), jump


def test_counters_and_addresses_survive_the_process(tmp_path: Path) -> None:
    keys = _store(3)
    assert keys.attach_state(tmp_path / "state") is False
    keys.accept(keys.by_id(1).row, 40)
    keys.by_id(2).address = ("127.1.9.9", 4059)
    keys.next_client_counter(keys.by_id(3))
    # a new process: same shipment, state read back from the mapped files
    again = _store(3)
    assert again.attach_state(tmp_path / "state") is True
    assert again.by_id(1).last_meter_counter == 40
    with pytest.raises(SecurityError, match="replayed"):
        again.accept(again.by_id(1).row, 40)
    assert again.by_id(2).address == ("127.1.9.9", 4059)
    assert again.by_id(3).client_counter == 1


def test_state_of_another_shipment_is_refused(tmp_path: Path) -> None:
    _store(3).attach_state(tmp_path)
    with pytest.raises(ConfigError, match="another key shipment"):
        _store(4).attach_state(tmp_path)
    keys = _store(3)
    keys.attach_state(tmp_path)
    with pytest.raises(ConfigError, match="before attaching"):
        keys.provision(9, _title(9), ("127.1.0.9", 4059), bytes(16), bytes(16))
