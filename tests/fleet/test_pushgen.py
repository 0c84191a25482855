from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt
import pytest

from openami.bus.contract import Channel, ReadSource
from openami.fleet.fleet import STATUS_CLOCK_INVALID, Fleet, IntervalValues
from openami.fleet.pushgen import PushEncoder
from openami.headend.ingest import Ingest
from openami.protocols.dlms.apdu import DataNotification, GeneralGloCiphering, encode_apdu
from openami.protocols.dlms.axdr import Data, decode_data
from openami.protocols.dlms.notification import EventCode, encode_event, encode_utility_entry
from openami.protocols.dlms.profile import encode_entry, entry_prefix
from openami.protocols.dlms.wrapper import (
    CLIENT_MANAGEMENT_WPORT,
    METER_MANAGEMENT_WPORT,
    WrapperFrame,
    encode_wrapper,
)
from openami.transport.memory import Datagram
from tests.conftest import provisioned_keys

JST = timezone(timedelta(hours=9))
START = datetime(2026, 8, 3, tzinfo=JST)
HES = ("10.255.255.1", 4059)
IntArray = npt.NDArray[np.int64]


@pytest.fixture
def fleet() -> Fleet:
    return Fleet.simple(12, START, seed=5)


def _meters(*indices: int) -> IntArray:
    return np.array(indices, dtype=np.int64)


def _end(fleet: Fleet, number: int) -> datetime:
    return datetime.fromtimestamp(fleet.interval_end(number), tz=UTC).astimezone(JST)


def _sealed(fleet: Fleet, i: int, counter: int, body: Data, invoke: int) -> bytes:
    """What the general codec makes of a push: the reference for the vectorised rows."""
    plain = encode_apdu(DataNotification(invoke, None, body))
    title = fleet.system_title(i)
    content = fleet.suite(i).protect(title, counter, plain)
    glo = encode_apdu(GeneralGloCiphering(title, content))
    return encode_wrapper(WrapperFrame(METER_MANAGEMENT_WPORT, CLIENT_MANAGEMENT_WPORT, glo))


def _interval_body(fleet: Fleet, values: IntervalValues, i: int, stamp: int) -> Data:
    raw = encode_entry(
        entry_prefix(_end(fleet, stamp)),
        int(values.status[i]),
        int(values.import_register[i]),
        int(values.export_register[i]),
        int(values.import_wh[i]),
        int(values.export_wh[i]),
    )
    return decode_data(raw)


def test_interval_rows_are_byte_for_byte_the_general_codec(fleet: Fleet) -> None:
    encoder = PushEncoder(fleet)
    fleet.set_clock_error(_meters(7), 3600.0)  # its clock runs an hour ahead: two intervals
    meters = _meters(3, 0, 11, 7, 5)  # any subset, in any order
    for step in range(3):
        values = fleet.advance()
        rows = encoder.intervals(values, meters)
        assert rows.dtype == np.uint8
        assert rows.shape == (meters.size, 80)
        for row, i in zip(rows, meters.tolist(), strict=True):
            stamp = values.number + (2 if i == 7 else 0)
            body = _interval_body(fleet, values, i, stamp)
            expected = _sealed(fleet, i, step + 1, body, values.number & 0xFFFFFF)
            assert bytes(row) == expected, (step, i)
    assert int(values.status[7]) == STATUS_CLOCK_INVALID


def test_utility_rows_are_byte_for_byte_the_general_codec(fleet: Fleet) -> None:
    encoder = PushEncoder(fleet)
    meters = fleet.utility_meters
    assert meters.size >= 2
    wrong = int(meters[1])
    fleet.advance()
    fleet.set_clock_error(_meters(wrong), 3600.0)  # an hour ahead: two intervals
    values = fleet.advance()  # on the hour: gas and water indexes moved
    rows = encoder.utilities(values, meters, fleet.gas_index, fleet.water_index)
    assert rows.shape[0] == meters.size
    for row, i in zip(rows, meters.tolist(), strict=True):
        # stamped and flagged like the same meter's interval push
        late = i == wrong
        stamp = values.number + (2 if late else 0)
        status = STATUS_CLOCK_INVALID if late else 0
        body = encode_utility_entry(
            _end(fleet, stamp), status, int(fleet.gas_index[i]), int(fleet.water_index[i])
        )
        assert bytes(row) == _sealed(fleet, i, 1, body, values.number & 0xFFFFFF), i
    assert int(values.status[wrong]) == STATUS_CLOCK_INVALID


def test_event_push_is_the_general_codec(fleet: Fleet) -> None:
    encoder = PushEncoder(fleet)
    moment = START + timedelta(minutes=7)
    raw = encoder.event(4, moment, EventCode.TERMINAL_COVER_OPENED, 1234)
    body = encode_event(moment.astimezone(JST), EventCode.TERMINAL_COVER_OPENED, 1234)
    assert raw == _sealed(fleet, 4, 1, body, fleet.now & 0xFFFFFF)


def test_invocation_counters_advance_per_meter(fleet: Fleet) -> None:
    encoder = PushEncoder(fleet)
    values = fleet.advance()
    encoder.intervals(values, _meters(1, 2))
    encoder.intervals(values, _meters(2, 9))
    encoder.utilities(values, _meters(9), fleet.gas_index, fleet.water_index)
    encoder.event(1, START, EventCode.POWER_UP, 0)
    expected = np.zeros(fleet.n, dtype=np.int64)
    expected[[1, 2, 9]] = [2, 2, 2]
    assert np.array_equal(fleet.invocation_counter, expected)
    # the counter travels in clear in the security header: octets 20..23 of every row
    row = encoder.intervals(values, _meters(2))[0]
    assert int.from_bytes(bytes(row[20:24]), "big") == 3
    fleet.invocation_counter[5] = 0xFFFFFFFF
    with pytest.raises(OverflowError, match="new keys"):
        encoder.intervals(values, _meters(5))


def test_the_head_end_reads_every_kind_of_push(fleet: Fleet) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    encoder = PushEncoder(fleet)
    fleet.advance()
    values = fleet.advance()
    everyone = np.arange(fleet.n, dtype=np.int64)
    for i, row in enumerate(encoder.intervals(values, everyone)):
        ingest.receive(Datagram(bytes(row), fleet.address(i), HES))
    end = fleet.interval_end(values.number)
    reads = ingest.reads.take()
    assert ingest.accepted["push"] == fleet.n
    assert len(reads.meter_id) == 4 * fleet.n
    assert reads.meter_id[:4] == [1] * 4
    assert reads.value_wh[:4] == [
        int(values.import_wh[0]),
        int(values.export_wh[0]),
        int(values.import_register[0]),
        int(values.export_register[0]),
    ]
    assert set(reads.interval_end) == {end}

    utility = fleet.utility_meters
    rows = encoder.utilities(values, utility, fleet.gas_index, fleet.water_index)
    for i, row in zip(utility.tolist(), rows, strict=True):
        ingest.receive(Datagram(bytes(row), fleet.address(i), HES))
    reads = ingest.reads.take()
    assert ingest.accepted["utility"] == utility.size
    assert reads.channel == [Channel.GAS_INDEX, Channel.WATER_INDEX] * utility.size
    assert reads.meter_id == [int(i) + 1 for i in utility for _ in range(2)]
    assert reads.value_wh == [
        int(index[i]) for i in utility for index in (fleet.gas_index, fleet.water_index)
    ]
    assert set(reads.interval_end) == {end}
    assert set(reads.source) == {ReadSource.PUSH}

    moment = START + timedelta(minutes=40, seconds=12)
    raw = encoder.event(6, moment, EventCode.POWER_DOWN, 777)
    ingest.receive(Datagram(raw, fleet.address(6), HES))
    events = ingest.events.take()
    assert (events.meter_id, events.code, events.value) == ([7], [EventCode.POWER_DOWN], [777])
    assert events.time == [int(moment.timestamp())]
    assert ingest.rejected.total() == 0
    assert ingest.accepted["address_changed"] == 0


@pytest.mark.parametrize("position", [0, 9, 15, 20, 30, 60, 79])
def test_a_tampered_row_is_rejected(fleet: Fleet, position: int) -> None:
    ingest = Ingest(provisioned_keys(fleet))
    encoder = PushEncoder(fleet)
    row = encoder.intervals(fleet.advance(), _meters(3))[0].copy()
    row[position] ^= 0x10
    ingest.receive(Datagram(bytes(row), fleet.address(3), HES))
    assert len(ingest.reads) == 0
    assert ingest.rejected.total() == 1
    # a row sealed under another meter's name is refused too
    other = encoder.intervals(fleet.advance(), _meters(4))[0].copy()
    other[10:18] = np.frombuffer(fleet.system_title(3), dtype=np.uint8)
    ingest.receive(Datagram(bytes(other), fleet.address(3), HES))
    assert len(ingest.reads) == 0
    assert ingest.rejected.total() == 2
