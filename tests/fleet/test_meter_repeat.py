"""A fleet meter answers a copy of the request it last executed without executing it again,
and a time sync sets its clock right."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from openami.fleet.fleet import STATUS_CLOCK_INVALID, Fleet
from openami.fleet.meter import MeterServer
from openami.headend.collection import HEADEND_SYSTEM_TITLE
from openami.protocols.dlms import obis
from openami.protocols.dlms.apdu import Apdu, GeneralGloCiphering, decode_apdu, encode_apdu
from openami.protocols.dlms.axdr import Data, DataType
from openami.protocols.dlms.cosem_datetime import encode_datetime
from openami.protocols.dlms.profile import range_descriptor
from openami.protocols.dlms.services import (
    ActionRequestNormal,
    ActionResponseNormal,
    AttributeDescriptor,
    DataAccessResult,
    GetRequestNormal,
    MethodDescriptor,
    SetRequestNormal,
    SetResponseNormal,
)
from openami.protocols.dlms.wrapper import WrapperFrame, decode_wrapper, encode_wrapper

JST = timezone(timedelta(hours=9))
SWITCH = obis.ObisCode.parse("0.0.96.3.10.255").to_bytes()
OPEN_SWITCH = ActionRequestNormal(0xC1, MethodDescriptor(70, SWITCH, 1))
CLOSE_SWITCH = ActionRequestNormal(0xC2, MethodDescriptor(70, SWITCH, 2))
CLOCK = AttributeDescriptor(8, obis.CLOCK.to_bytes(), 2)


@pytest.fixture
def fleet() -> Fleet:
    f = Fleet.simple(4, datetime(2026, 8, 3, tzinfo=JST), seed=11)
    for _ in range(4):
        f.advance()
    return f


def _frame(fleet: Fleet, i: int, request: Apdu, counter: int) -> bytes:
    content = fleet.suite(i).protect(HEADEND_SYSTEM_TITLE, counter, encode_apdu(request))
    glo = encode_apdu(GeneralGloCiphering(HEADEND_SYSTEM_TITLE, content))
    return encode_wrapper(WrapperFrame(1, 1, glo))


def _open(fleet: Fleet, i: int, answer: bytes) -> tuple[int, Apdu]:
    glo = decode_apdu(decode_wrapper(answer).apdu)
    assert isinstance(glo, GeneralGloCiphering)
    counter, plain = fleet.suite(i).unprotect(glo.system_title, glo.ciphered_content)
    return counter, decode_apdu(plain)


def test_a_copy_of_the_last_request_gets_its_answer_again_without_executing(
    fleet: Fleet,
) -> None:
    server = MeterServer(fleet)
    request = _frame(fleet, 1, OPEN_SWITCH, 10)
    first = server.handle_for(1, request)
    assert first is not None and not fleet.connected[1]
    fleet.set_connected(np.array([1]), True)  # closed by hand: a re-execution would reopen it
    again = server.handle_for(1, request)
    assert again is not None
    assert fleet.connected[1]  # not executed again
    assert server.repeated == 1 and server.rejected == 0
    counter_1, apdu_1 = _open(fleet, 1, first)
    counter_2, apdu_2 = _open(fleet, 1, again)
    assert apdu_1 == apdu_2 and isinstance(apdu_1, ActionResponseNormal)
    assert counter_2 > counter_1  # sealed anew: every message from the meter is fresh


def test_a_copy_of_an_older_request_stays_a_silent_replay(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    old = _frame(fleet, 1, OPEN_SWITCH, 10)
    assert server.handle_for(1, old) is not None
    assert server.handle_for(1, _frame(fleet, 1, CLOSE_SWITCH, 11)) is not None
    assert fleet.connected[1]
    assert server.handle_for(1, old) is None
    assert fleet.connected[1] and server.rejected == 1 and server.repeated == 0
    # the same counter with other bytes is a replay too, not a copy
    forged = _frame(fleet, 1, OPEN_SWITCH, 11)
    assert server.handle_for(1, forged) is None and fleet.connected[1]


def test_a_profile_read_in_between_ends_the_copy_window(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    command = _frame(fleet, 2, OPEN_SWITCH, 5)
    assert server.handle_for(2, command) is not None
    end = datetime.fromtimestamp(fleet.interval_end(fleet.now), tz=JST)
    read = GetRequestNormal(
        0xC1, 7, obis.LOAD_PROFILE.to_bytes(), 2, 1, range_descriptor(end, end)
    )  # answered from the fleet's columns, not by the full server
    assert server.handle_for(2, _frame(fleet, 2, read, 6)) is not None
    assert server.handle_for(2, command) is None  # no longer the last request


def test_remembered_answers_are_bounded_oldest_meter_first(fleet: Fleet) -> None:
    server = MeterServer(fleet, max_remembered=2)
    frames = [_frame(fleet, i, CLOSE_SWITCH, 3) for i in range(3)]
    for i, frame in enumerate(frames):
        assert server.handle_for(i, frame) is not None
    assert server.handle_for(0, frames[0]) is None  # forgotten: silent, never executed twice
    assert server.handle_for(1, frames[1]) is not None
    assert server.handle_for(2, frames[2]) is not None


def test_a_clock_write_sets_the_clock_right_once(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    fleet.set_clock_error(np.array([3]), 3600.0)
    fleet.advance()
    true_time = datetime.fromtimestamp(fleet.interval_end(fleet.now), tz=JST)
    value = Data(DataType.OCTET_STRING, encode_datetime(true_time + timedelta(seconds=2)))
    answer = server.handle_for(3, _frame(fleet, 3, SetRequestNormal(0xC1, CLOCK, None, value), 1))
    assert answer is not None
    _counter, response = _open(fleet, 3, answer)
    assert isinstance(response, SetResponseNormal)
    assert response.result is DataAccessResult.SUCCESS
    assert not fleet.clock_fault[3] and fleet.clock_shift[3] == 0
    elapsed = fleet.interval_end(fleet.now) - fleet.start.timestamp()
    drifted = fleet.clock_offset_s[3] + fleet.drift_ppm[3] * 1e-6 * elapsed
    assert drifted == pytest.approx(2.0)  # what is left: the written time's own error
    fleet.advance()
    h = fleet.history(3, fleet.now - 1, fleet.now)
    assert h.status[0] & STATUS_CLOCK_INVALID and not h.status[1] & STATUS_CLOCK_INVALID
    # the write is not replayed into later object models: a new fault stays until synced
    fleet.set_clock_error(np.array([3]), 1800.0)
    server.model(3)
    assert fleet.clock_fault[3]


def test_a_clock_write_that_is_no_time_is_refused(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    fleet.set_clock_error(np.array([0]), 60.0)
    for counter, value in enumerate(
        [Data(DataType.OCTET_STRING, b"\x00" * 12), Data(DataType.LONG_UNSIGNED, 5)], start=1
    ):
        answer = server.handle_for(
            0, _frame(fleet, 0, SetRequestNormal(0xC1, CLOCK, None, value), counter)
        )
        assert answer is not None
        _c, response = _open(fleet, 0, answer)
        assert isinstance(response, SetResponseNormal)
        assert response.result is DataAccessResult.TYPE_UNMATCHED
    assert fleet.clock_fault[0]


def test_sync_clock_ends_the_clock_window_and_the_shift(fleet: Fleet) -> None:
    meters = np.array([0, 2])
    fleet.set_clock_error(meters, -1800.0)
    fleet.advance()
    fleet.sync_clock(meters)
    assert not fleet.clock_fault.any() and not fleet.clock_shift.any()
    assert fleet.clock_windows[0] == [[fleet.now, fleet.now]]
    assert not fleet.advance().status[meters].any()
