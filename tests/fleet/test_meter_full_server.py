"""A fleet meter's full COSEM server, built only while something talks to it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from openami.fleet.fleet import Fleet
from openami.fleet.meter import MeterServer
from openami.headend.collection import HEADEND_SYSTEM_TITLE
from openami.protocols.dlms import obis
from openami.protocols.dlms.acse import Mechanism
from openami.protocols.dlms.apdu import Apdu, GeneralGloCiphering, decode_apdu, encode_apdu
from openami.protocols.dlms.association import (
    Associated,
    ClientAssociation,
    ClientSettings,
    HlsRequired,
    Released,
    Response,
)
from openami.protocols.dlms.axdr import Data, DataType, decode_data
from openami.protocols.dlms.security import SuiteZero
from openami.protocols.dlms.services import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    GetRequestNext,
    GetRequestNormal,
    GetResponseNormal,
    GetResponseWithDataBlock,
    MethodDescriptor,
    SetRequestNormal,
    SetResponseNormal,
)
from openami.protocols.dlms.wrapper import WrapperFrame, decode_wrapper, encode_wrapper

JST = timezone(timedelta(hours=9))
IMPORT = obis.ACTIVE_ENERGY_IMPORT.to_bytes()
DISCONNECT = obis.ObisCode.parse("0.0.96.3.10.255").to_bytes()
LIMITER = obis.ObisCode.parse("0.0.17.0.0.255").to_bytes()
ASSOCIATION = obis.ObisCode.parse("0.0.40.0.0.255").to_bytes()


@pytest.fixture
def fleet() -> Fleet:
    f = Fleet.simple(4, datetime(2026, 8, 3, tzinfo=JST), seed=11)
    for _ in range(4):
        f.advance()
    return f


class PreEstablished:
    """The head-end side of the pre-established association: glo-ciphered requests."""

    def __init__(self, fleet: Fleet, server: MeterServer, i: int) -> None:
        self.fleet, self.server, self.i = fleet, server, i
        self.counter = 0

    def frame(self, request: Apdu, counter: int | None = None) -> bytes:
        self.counter = self.counter + 1 if counter is None else counter
        suite = self.fleet.suite(self.i)
        content = suite.protect(HEADEND_SYSTEM_TITLE, self.counter, encode_apdu(request))
        glo = encode_apdu(GeneralGloCiphering(HEADEND_SYSTEM_TITLE, content))
        return encode_wrapper(WrapperFrame(1, 1, glo))

    def ask(self, request: Apdu, counter: int | None = None) -> Apdu | None:
        answer = self.server.handle_for(self.i, self.frame(request, counter))
        if answer is None:
            return None
        glo = decode_apdu(decode_wrapper(answer).apdu)
        assert isinstance(glo, GeneralGloCiphering)
        assert glo.system_title == self.fleet.system_title(self.i)
        _counter, plain = self.fleet.suite(self.i).unprotect(glo.system_title, glo.ciphered_content)
        return decode_apdu(plain)

    def get(self, class_id: int, ln: bytes, attribute: int) -> Data | DataAccessResult:
        response = self.ask(GetRequestNormal(0xC1, class_id, ln, attribute))
        assert isinstance(response, GetResponseNormal)
        return response.result


def test_any_attribute_reads_from_the_fleets_state_and_no_model_outlives_the_request(
    fleet: Fleet,
) -> None:
    server = MeterServer(fleet)
    head = PreEstablished(fleet, server, 2)
    value = head.get(3, IMPORT, 2)
    assert value == Data(DataType.DOUBLE_LONG_UNSIGNED, int(fleet.import_register[2]))
    assert server.models_built == 1
    assert server.open_sessions == 0
    fleet.advance()
    value = head.get(3, IMPORT, 2)
    assert value == Data(DataType.DOUBLE_LONG_UNSIGNED, int(fleet.import_register[2]))
    assert head.get(3, obis.ObisCode.parse("1.0.99.99.0.255").to_bytes(), 2) is (
        DataAccessResult.OBJECT_UNDEFINED
    )


def test_a_disconnect_action_opens_the_switch_in_the_fleet(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    head = PreEstablished(fleet, server, 1)
    response = head.ask(ActionRequestNormal(0xC1, MethodDescriptor(70, DISCONNECT, 1)))
    assert isinstance(response, ActionResponseNormal)
    assert response.result is ActionResult.SUCCESS
    assert not fleet.connected[1]
    assert head.get(70, DISCONNECT, 2) == Data(DataType.BOOLEAN, False)
    values = fleet.advance()
    assert values.import_wh[1] == 0 and values.import_wh[0] > 0  # no energy through an open switch
    head.ask(ActionRequestNormal(0xC1, MethodDescriptor(70, DISCONNECT, 2)))
    assert fleet.connected[1]
    assert fleet.connected.sum() == fleet.n


def test_a_written_attribute_outlives_the_model_that_took_it(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    head = PreEstablished(fleet, server, 0)
    new = Data(DataType.LONG_UNSIGNED, 4000)  # contract current 40 A
    response = head.ask(SetRequestNormal(0xC1, AttributeDescriptor(71, LIMITER, 4), None, new))
    assert isinstance(response, SetResponseNormal)
    assert response.result is DataAccessResult.SUCCESS
    assert head.get(71, LIMITER, 4) == new
    assert server.models_built == 2
    # another meter keeps its own value
    assert PreEstablished(fleet, server, 3).get(71, LIMITER, 4) == Data(
        DataType.LONG_UNSIGNED, 3000
    )
    # energy registers stay read-only
    wrong = Data(DataType.DOUBLE_LONG_UNSIGNED, 0)
    response = head.ask(SetRequestNormal(0xC1, AttributeDescriptor(3, IMPORT, 2), None, wrong))
    assert isinstance(response, SetResponseNormal)
    assert response.result is DataAccessResult.READ_WRITE_DENIED


def test_a_replayed_command_is_not_carried_out_twice(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    head = PreEstablished(fleet, server, 1)
    open_switch = ActionRequestNormal(0xC1, MethodDescriptor(70, DISCONNECT, 1))
    close_switch = ActionRequestNormal(0xC1, MethodDescriptor(70, DISCONNECT, 2))
    replay = head.frame(open_switch, counter=10)
    assert server.handle_for(1, replay) is not None
    head.ask(close_switch, counter=11)
    assert fleet.connected[1]
    assert server.handle_for(1, replay) is None  # the recorded disconnect does nothing
    assert fleet.connected[1]
    assert server.rejected == 1


def test_a_long_answer_comes_in_blocks_and_the_session_ends_with_the_last(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    head = PreEstablished(fleet, server, 0)
    first = head.ask(GetRequestNormal(0xC1, 15, ASSOCIATION, 2))  # the object list
    assert isinstance(first, GetResponseWithDataBlock)
    assert server.open_sessions == 1
    assert isinstance(first.raw_data, bytes)
    raw, block = bytearray(first.raw_data), first
    while not block.last_block:
        nxt = head.ask(GetRequestNext(0xC1, block.block_number))
        assert isinstance(nxt, GetResponseWithDataBlock)
        assert isinstance(nxt.raw_data, bytes)
        raw += nxt.raw_data
        block = nxt
    assert server.open_sessions == 0
    objects = decode_data(bytes(raw))
    names = {entry.value[2].value for entry in objects.value}
    assert {IMPORT, DISCONNECT, LIMITER, ASSOCIATION} <= names


def _client(fleet: Fleet, i: int, suite: SuiteZero | None = None) -> ClientAssociation:
    return ClientAssociation(
        ClientSettings(
            HEADEND_SYSTEM_TITLE,
            suite or fleet.suite(i),
            Mechanism.HIGH_GMAC,
            invocation_counter=int(fleet.last_client_counter[i]) + 1,
        )
    )


def _send(server: MeterServer, i: int, apdu: bytes) -> bytes | None:
    answer = server.handle_for(i, encode_wrapper(WrapperFrame(1, 1, apdu)))
    return None if answer is None else decode_wrapper(answer).apdu


def test_an_hls_association_reads_and_releases(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    client = _client(fleet, 3)
    aare = _send(server, 3, client.associate(b"client-challenge"))
    assert aare is not None and isinstance(client.receive(aare), HlsRequired)
    answer = _send(server, 3, client.reply_to_hls())
    assert answer is not None and isinstance(client.receive(answer), Associated)
    assert server.open_sessions == 1
    wire = _send(server, 3, client.request(GetRequestNormal(0xC1, 3, IMPORT, 2)))
    assert wire is not None
    event = client.receive(wire)
    assert isinstance(event, Response) and isinstance(event.apdu, GetResponseNormal)
    assert event.apdu.result == Data(DataType.DOUBLE_LONG_UNSIGNED, int(fleet.import_register[3]))
    released = _send(server, 3, client.release())
    assert released is not None and isinstance(client.receive(released), Released)
    assert server.open_sessions == 0
    # the meter's counters live on in the fleet: its next answer cannot reuse one
    assert fleet.invocation_counter[3] > 0 and fleet.last_client_counter[3] > 0


def test_an_association_under_the_wrong_keys_is_refused(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    thief = _client(fleet, 2, SuiteZero(bytes(16), bytes(16)))
    aare = _send(server, 2, thief.associate(b"client-challenge"))
    assert aare is not None
    event = thief.receive(aare)
    assert not isinstance(event, Associated)
    assert fleet.connected.all()


def test_sessions_are_bounded_oldest_first(fleet: Fleet) -> None:
    server = MeterServer(fleet, max_sessions=2)
    for i in range(3):
        _send(server, i, _client(fleet, i).associate(b"client-challenge"))
    assert server.open_sessions == 2


def test_idle_sessions_expire(fleet: Fleet) -> None:
    server = MeterServer(fleet, idle_s=0.0)
    _send(server, 0, _client(fleet, 0).associate(b"client-challenge"))
    _send(server, 1, _client(fleet, 1).associate(b"client-challenge"))
    assert server.open_sessions == 1  # the first expired when the second came in


def test_an_unpowered_meter_answers_nothing(fleet: Fleet) -> None:
    server = MeterServer(fleet)
    fleet.set_power(np.array([0]), False)
    assert PreEstablished(fleet, server, 0).ask(GetRequestNormal(0xC1, 3, IMPORT, 2)) is None
