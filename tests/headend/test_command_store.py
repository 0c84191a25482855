"""The command store's contract, held by SQLite and by a real PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from openami.errors import LocalProtocolError, StoreError
from openami.headend.command_store import FINAL_STATES, CommandState, CommandStore
from tests.headend.command_support import BACKENDS, Stores, stores

T0 = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    with stores(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def store(factory: Stores) -> CommandStore:
    return factory.open()


def _add(store: CommandStore, command_id: str, meter_id: int = 7, at: datetime = T0) -> bool:
    payload = b"payload-" + command_id.encode()
    return store.add(command_id, meter_id, "disconnect", payload, 1_900_000_000, at)


def test_a_new_command_is_accepted_with_aware_utc_times(store: CommandStore) -> None:
    jst = timezone(timedelta(hours=9))
    assert _add(store, "a", at=T0.astimezone(jst))
    record = store.get("a")
    assert record is not None
    assert record.state is CommandState.ACCEPTED and not record.final
    assert (record.meter_id, record.kind, record.deadline) == (7, "disconnect", 1_900_000_000)
    assert record.payload == b"payload-a"
    assert record.frame is None and record.counter is None and record.attempts == 0
    assert record.created_at == T0 and record.created_at.tzinfo is not None
    assert record.created_at.utcoffset() == timedelta(0)
    assert store.get("missing") is None


def test_the_same_id_twice_is_one_command(store: CommandStore) -> None:
    assert _add(store, "a")
    assert not store.add("a", 99, "reconnect", b"other", 1, T0)
    record = store.get("a")
    assert record is not None and record.meter_id == 7 and record.payload == b"payload-a"
    assert store.counts() == {CommandState.ACCEPTED: 1}


def test_accepted_commands_come_in_submission_order(store: CommandStore) -> None:
    for name in ("z", "b", "m"):
        _add(store, name)
    assert [r.command_id for r in store.in_state(CommandState.ACCEPTED)] == ["z", "b", "m"]
    assert [r.command_id for r in store.in_state(CommandState.ACCEPTED, limit=2)] == ["z", "b"]


def test_a_frame_is_persisted_once_then_the_read_back_frame(store: CommandStore) -> None:
    _add(store, "a")
    later = T0 + timedelta(seconds=5)
    store.allocate("a", b"frame-1", 41, later, 1_785_000_002.0)
    record = store.get("a")
    assert record is not None
    assert record.state is CommandState.SENT
    assert (record.frame, record.counter, record.attempts) == (b"frame-1", 41, 1)
    assert record.sent_at == later and record.next_attempt_at == 1_785_000_002.0
    assert not record.reading_back
    with pytest.raises(StoreError, match="cannot take a new frame"):
        store.allocate("a", b"frame-2", 42, later, 0.0)  # never a second frame
    store.attempted("a", 2, 1_785_000_006.0, later)
    store.allocate("a", b"readback", 43, later, 1_785_000_008.0, readback=True)
    with pytest.raises(StoreError):
        store.allocate("a", b"readback-2", 44, later, 0.0, readback=True)
    store.attempted("a", 3, 1_785_000_010.0, later)
    record = store.get("a")
    assert record is not None and record.reading_back
    assert (record.frame, record.counter, record.attempts) == (b"frame-1", 41, 2)
    assert (record.readback_frame, record.readback_counter) == (b"readback", 43)
    assert record.readback_attempts == 3 and record.next_attempt_at == 1_785_000_010.0
    assert store.max_counters() == {7: 43}


def test_a_command_ends_in_exactly_one_final_state(store: CommandStore) -> None:
    _add(store, "a")
    store.allocate("a", b"f", 1, T0, 0.0)
    done = T0 + timedelta(minutes=1)
    assert store.finish("a", CommandState.DONE, "success", "ok", b"\x16\x00", done)
    assert not store.finish("a", CommandState.EXPIRED, "expired", "late", None, done)
    record = store.get("a")
    assert record is not None and record.final
    assert (record.state, record.status, record.reason) == (CommandState.DONE, "success", "ok")
    assert record.state_after == b"\x16\x00" and record.completed_at == done
    assert record.next_attempt_at is None
    with pytest.raises(StoreError):
        store.allocate("a", b"g", 2, T0, 0.0)
    store.attempted("a", 9, 0.0, done)  # a late attempt record changes nothing
    again = store.get("a")
    assert again is not None and again.attempts == 1
    with pytest.raises(LocalProtocolError):
        store.finish("a", CommandState.SENT, "x", "x", None, done)


def test_results_are_handed_out_once(store: CommandStore) -> None:
    for name in ("a", "b", "c"):
        _add(store, name)
    store.finish("b", CommandState.FAILED, "failed", "no", None, T0)
    store.finish("a", CommandState.EXPIRED, "expired", "late", None, T0)
    assert [r.command_id for r in store.unpublished()] == ["a", "b"]
    store.mark_published(["a", "b"])
    store.mark_published([])
    assert store.unpublished() == []
    assert store.counts() == {
        CommandState.ACCEPTED: 1,
        CommandState.FAILED: 1,
        CommandState.EXPIRED: 1,
    }
    assert {CommandState.DONE, CommandState.FAILED, CommandState.EXPIRED} == FINAL_STATES


def test_max_counters_per_meter(store: CommandStore) -> None:
    _add(store, "a", meter_id=1)
    _add(store, "b", meter_id=1)
    _add(store, "c", meter_id=2)
    _add(store, "d", meter_id=3)  # nothing allocated: no counter
    store.allocate("a", b"f", 10, T0, 0.0)
    store.allocate("c", b"f", 4, T0, 0.0)
    store.finish("a", CommandState.DONE, "success", "", None, T0)
    store.allocate("b", b"f", 12, T0, 0.0)
    assert store.max_counters() == {1: 12, 2: 4}


def test_everything_survives_a_new_connection(factory: Stores) -> None:
    first = factory.open()
    _add(first, "a")
    first.allocate("a", b"\x00\xffframe", 5, T0, 1.5)
    first.close()
    second = factory.open()
    record = second.get("a")
    assert record is not None and record.frame == b"\x00\xffframe" and record.sent_at == T0


def test_naive_datetimes_are_refused(store: CommandStore) -> None:
    with pytest.raises(LocalProtocolError, match="naive"):
        store.add("a", 1, "get", b"", 0, datetime(2026, 8, 3))  # noqa: DTZ001


def test_a_sqlite_store_lives_in_the_data_dir(tmp_path: Path) -> None:
    store = CommandStore.open(data_dir=tmp_path / "data")
    try:
        _add(store, "a")
    finally:
        store.close()
    assert (tmp_path / "data" / "commands.db").exists()
    with pytest.raises(LocalProtocolError):
        CommandStore.open()


def test_an_unreachable_database_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the command store"):
        CommandStore.open("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1")
