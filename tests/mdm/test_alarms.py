"""Outage and tamper alarms from meter events, the event store beneath them, and the
ingest from the bus that joins the two."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.bus.contract import SUBJECT_EVENTS, EventBatch, encode_message
from openami.bus.memory import MemoryBus
from openami.errors import StoreError
from openami.mdm.alarms import AlarmBook, AlarmKind, AlarmPolicy, Severity
from openami.mdm.event_ingest import EventIngest
from openami.mdm.registry import Registry
from openami.protocols.dlms.notification import EventCode
from openami.store.events import EventStore

from .registry_support import BACKENDS, T0, contract, registry_on, site, with_parties

DOWN, UP = int(EventCode.POWER_DOWN), int(EventCode.POWER_UP)
COVER, REVERSE = int(EventCode.TERMINAL_COVER_OPENED), int(EventCode.REVERSE_FLOW)
AT = int(datetime(2026, 8, 3, 4, 0, tzinfo=UTC).timestamp())


def area_of(meter: int) -> str:
    return "north" if meter <= 100 else "south"


def by_area(meters: list[int], _at: int) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for m in meters:
        out[area_of(m)] = out.get(area_of(m), 0) + 1
    return out


def events(*rows: tuple[int, int, int]) -> pl.DataFrame:
    return pl.DataFrame(
        {name: [r[i] for r in rows] for i, name in enumerate(("meter_id", "time", "code"))},
        schema={"meter_id": pl.Int64, "time": pl.Int64, "code": pl.Int64},
    )


def test_last_gasps_close_in_time_are_one_outage_with_customers_per_area() -> None:
    book = AlarmBook(by_area)
    changed = book.observe(events((1, AT, DOWN), (2, AT + 2, DOWN), (150, AT + 40, DOWN)))
    (outage,) = changed
    assert outage.kind is AlarmKind.OUTAGE and outage.is_open
    assert (outage.meters, outage.down) == (3, 3)
    assert outage.customers == {"north": 2, "south": 1}
    assert outage.severity is Severity.MINOR
    # long after: another fault, another outage
    later = book.observe(events((7, AT + 3600, DOWN)))
    assert later[0].alarm_id != outage.alarm_id
    assert len(book.alarms(open_only=True)) == 2


def test_the_last_meter_restored_closes_the_outage_with_its_interruption() -> None:
    book = AlarmBook(by_area)
    book.observe(events((1, AT, DOWN), (2, AT, DOWN)))
    (partly,) = book.observe(events((1, AT + 600, UP)))
    assert partly.is_open and partly.down == 1
    (closed,) = book.observe(events((2, AT + 1200, UP)))
    assert closed.closed == AT + 1200 and closed.down == 0
    assert closed.meter_minutes == pytest.approx(10 + 20)
    assert book.alarms(open_only=True) == []


def test_repeated_last_gasps_and_power_up_without_outage_change_nothing() -> None:
    book = AlarmBook(by_area)
    book.observe(events((1, AT, DOWN)))
    again = book.observe(events((1, AT + 5, DOWN)))
    assert again[0].meters == 1
    assert AlarmBook(by_area).observe(events((9, AT, UP))) == []  # a cold start: no outage


def test_a_power_up_whose_last_gasp_was_lost_joins_the_open_outage() -> None:
    book = AlarmBook(by_area)
    book.observe(events((1, AT, DOWN)))
    (outage,) = book.observe(events((2, AT + 600, UP)))  # its gasp never arrived
    assert (outage.meters, outage.down) == (2, 1)
    assert outage.meter_minutes == pytest.approx(10)


def test_reads_after_the_last_gasp_restore_a_meter_whose_power_up_was_lost() -> None:
    book = AlarmBook(by_area)
    book.observe(events((1, AT, DOWN), (2, AT, DOWN)))
    book.observe(events((1, AT + 900, UP)))
    assert book.down_meters() == {2: AT}
    assert book.heard_from([2], AT) == []  # not after the gasp: still down
    (closed,) = book.heard_from([2, 3], AT + 1800)
    assert closed.closed == AT + 1800 and book.down_meters() == {}


def test_an_outage_of_many_meters_is_major() -> None:
    book = AlarmBook(by_area, AlarmPolicy(major_meters=50))
    (outage,) = book.observe(events(*((m, AT + m, DOWN) for m in range(1, 61))))
    assert outage.severity is Severity.MAJOR
    assert outage.customers == {"north": 60}


def test_tamper_opens_one_alarm_per_meter_and_kind_and_counts_the_rest() -> None:
    book = AlarmBook(by_area)
    book.observe(events((5, AT, COVER), (5, AT + 60, COVER), (5, AT + 90, REVERSE)))
    alarms = {a.alarm_id: a for a in book.alarms()}
    assert alarms["tamper-5-40"].count == 2
    assert alarms["tamper-5-40"].detail == "terminal cover opened"
    assert alarms["tamper-5-202"].count == 1
    assert all(a.kind is AlarmKind.TAMPER and a.meter_id == 5 for a in alarms.values())


gasps = st.lists(
    st.tuples(st.integers(1, 30), st.integers(0, 20_000), st.sampled_from([DOWN, UP, COVER])),
    max_size=80,
)


@settings(max_examples=60)
@given(gasps, st.integers(1, 6))
def test_the_alarms_do_not_depend_on_how_events_are_batched(
    rows: list[tuple[int, int, int]], pieces: int
) -> None:
    """Replaying the store in one go gives what watching the bus batch by batch gave."""
    # the order the book itself takes events in (time, meter, a gasp before a power-up): a
    # bus delivers in order, so its batches are consecutive pieces of that order
    rows = sorted(rows, key=lambda r: (r[1], r[0], r[2]))
    whole = AlarmBook(by_area)
    whole.observe(events(*rows))
    split = AlarmBook(by_area)
    size = max(1, -(-len(rows) // pieces))
    for lo in range(0, len(rows), size):
        split.observe(events(*rows[lo : lo + size]))
    assert whole.alarms() == split.alarms()
    for alarm in whole.alarms():
        assert alarm.down <= alarm.meters
        assert alarm.is_open == (alarm.kind is AlarmKind.TAMPER or alarm.down > 0)


# --- the event store ------------------------------------------------------------------------


def columns(rows: list[tuple[int, int, int, int]]) -> dict[str, list[int]]:
    return {k: [r[i] for r in rows] for i, k in enumerate(("meter_id", "time", "code", "value"))}


def test_the_store_keeps_each_event_once_across_restarts(tmp_path: Path) -> None:
    rows = [(1, AT, DOWN, 0), (2, AT, DOWN, 0), (1, AT + 86_400, UP, 0)]
    store = EventStore(tmp_path)
    assert store.append(columns(rows)).written == 3
    again = EventStore(tmp_path).append(columns([*rows, (1, AT, DOWN, 1)]))
    assert (again.written, again.duplicates, again.kept) == (1, 3, (3,))
    start = datetime.fromtimestamp(AT, tz=UTC)
    got = EventStore(tmp_path).query(start, start + timedelta(days=2))
    assert got.select("meter_id", "time", "code", "value").rows() == sorted(
        [*rows, (1, AT, DOWN, 1)], key=lambda r: (r[1], r[0])
    )
    hour = start + timedelta(hours=1)
    only = EventStore(tmp_path).query(start, hour, codes=[DOWN], meter_ids=[2])
    assert only["meter_id"].to_list() == [2]


def test_the_store_refuses_ragged_columns_and_naive_times(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    with pytest.raises(StoreError, match="length"):
        store.append({"meter_id": [1, 2], "time": [AT], "code": [1], "value": [0]})
    with pytest.raises(StoreError, match="aware"):
        store.query(datetime(2026, 8, 3), datetime(2026, 8, 4))  # noqa: DTZ001
    assert store.files() == []


@settings(max_examples=30)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 5), st.integers(0, 3 * 86_400), st.integers(1, 3), st.integers(0, 2)
        ),
        max_size=40,
    ),
    st.integers(0, 40),
)
def test_stored_events_are_the_distinct_events(
    rows: list[tuple[int, int, int, int]], cut: int
) -> None:
    rows = [(m, AT + t, c, v) for m, t, c, v in rows]
    with tempfile.TemporaryDirectory() as folder:
        EventStore(Path(folder)).append(columns(rows[:cut]))
        EventStore(Path(folder)).append(columns(rows))  # a redelivery, after a restart
        start = datetime.fromtimestamp(AT, tz=UTC)
        got = EventStore(Path(folder)).query(start, start + timedelta(days=4))
    assert sorted(got.select("meter_id", "time", "code", "value").rows()) == sorted(set(rows))


# --- from the bus, with the registry saying where -----------------------------------------


@pytest.fixture(params=BACKENDS)
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    with registry_on(request.param, tmp_path) as opened:
        opened.register_fleet(
            [site(i, area="north" if i <= 3 else "south") for i in range(1, 6)],
            T0 - timedelta(days=40),
        )
        with_parties(opened, 5)
        opened.add_contracts(
            [contract(f"k-{i}", f"up-{i}", T0, customer=f"c-{i}") for i in range(1, 6)]
        )
        yield opened


def test_events_from_the_bus_give_outage_alarms_with_the_registry_s_customers(
    registry: Registry, tmp_path: Path
) -> None:
    def customers(meters: list[int], at: int) -> Mapping[str, int]:
        return registry.customers_by_area(datetime.fromtimestamp(at, tz=UTC), meters)

    at = int((T0 + timedelta(days=1)).timestamp())
    bus = MemoryBus()
    subscription = bus.subscribe(SUBJECT_EVENTS, durable="mdm")
    ingest = EventIngest(EventStore(tmp_path), subscription, AlarmBook(customers))
    gasp = EventBatch(meter_id=[2, 3, 5], time=[at, at + 1, at + 3], code=[DOWN] * 3, value=[0] * 3)
    cover = EventBatch(meter_id=[4], time=[at + 9], code=[COVER], value=[0])
    for batch in (gasp, cover, gasp, cover):  # each delivered twice
        bus.publish(SUBJECT_EVENTS, encode_message(batch))
    ingest.poll()
    assert (ingest.stored, ingest.duplicates) == (4, 4)
    alarms = {a.kind: a for a in ingest.alarms.alarms()}
    assert alarms[AlarmKind.OUTAGE].customers == {"north": 2, "south": 1}
    assert alarms[AlarmKind.TAMPER].count == 1
    assert alarms[AlarmKind.TAMPER].customers == {"south": 1}
