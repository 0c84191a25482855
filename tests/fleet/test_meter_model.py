from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from openami.fleet.fleet import Fleet, MeterHistory
from openami.fleet.meter_model import build_meter_model
from openami.protocols.dlms.acse import Mechanism
from openami.protocols.dlms.association import (
    Associated,
    ClientAssociation,
    ClientSettings,
    HlsRequired,
    Response,
    ServerAssociation,
    ServerSettings,
)
from openami.protocols.dlms.axdr import Data, DataType, decode_data
from openami.protocols.dlms.cosem.server import CosemSession
from openami.protocols.dlms.cosem_datetime import decode_datetime
from openami.protocols.dlms.profile import decode_entries, range_descriptor
from openami.protocols.dlms.security import SuiteZero
from openami.protocols.dlms.services import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
    MethodDescriptor,
    SetRequestNormal,
    SetResponseNormal,
)

JST = timezone(timedelta(hours=9))
START = datetime(2026, 8, 3, tzinfo=JST)
NOW = START + timedelta(days=2, minutes=10)  # 96 intervals closed, the 97th running


def ln(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


class Lab:
    """Our client and one meter's COSEM session, talking HLS-GMAC + suite 0 in memory."""

    def __init__(self, max_pdu: int = 0xFFFF) -> None:
        self.fleet = Fleet.simple(3, START, seed=4)
        self.now = NOW  # the meter's clock; tests may move it on
        keys = self.fleet.identity(1)
        suite = SuiteZero(keys.ek, keys.ak)
        self.model = build_meter_model(self.fleet, 1, lambda: self.now)
        self.session = CosemSession(
            self.model,
            ServerAssociation(
                ServerSettings(keys.system_title, suite, Mechanism.HIGH_GMAC, ciphered=True)
            ),
        )
        self.client = ClientAssociation(
            ClientSettings(b"OAMHES01", suite, Mechanism.HIGH_GMAC, max_receive_pdu_size=max_pdu)
        )
        assert isinstance(
            self.client.receive(
                self.session.receive(self.client.associate(b"client-ch"), b"server-ch")
            ),
            HlsRequired,
        )
        assert isinstance(
            self.client.receive(self.session.receive(self.client.reply_to_hls())), Associated
        )

    def ask(self, apdu: object) -> object:
        event = self.client.receive(self.session.receive(self.client.request(apdu)))  # type: ignore[arg-type]
        assert isinstance(event, Response)
        return event.apdu

    def get(self, class_id: int, obis_text: str, attribute: int) -> Data | DataAccessResult:
        answer = self.ask(GetRequestNormal(0xC1, class_id, ln(obis_text), attribute))
        assert isinstance(answer, GetResponseNormal)
        return answer.result

    @property
    def closed(self) -> int:
        """The last interval closed on the meter's clock (the fleet itself never advances)."""
        return self.fleet.number_of(self.now)

    def profile(self, first: int = 0, last: int | None = None) -> MeterHistory:
        """What the meter's load profile holds, computed independently of the model."""
        last = self.closed if last is None else last
        return self.fleet.history(1, first, last, now=self.closed)


@pytest.fixture
def lab() -> Lab:
    return Lab()


def test_clock_reads_now_in_japan_time(lab: Lab) -> None:
    value = lab.get(8, "0.0.1.0.0.255", 2)
    assert isinstance(value, Data)
    assert decode_datetime(value.value) == NOW.astimezone(UTC).replace(microsecond=0)
    assert value.value[9:11] == (-540).to_bytes(2, "big", signed=True)


def test_registers_match_the_fleet_at_the_last_closed_interval(lab: Lab) -> None:
    assert lab.closed == lab.fleet.origin + 96
    last = lab.profile(lab.closed)
    value = lab.get(3, "1.0.1.8.0.255", 2)
    assert value == Data(DataType.DOUBLE_LONG_UNSIGNED, int(last.import_register[0]))
    assert int(last.import_register[0]) > lab.fleet.import_base[1]  # two days since the origin
    exported = lab.get(3, "1.0.2.8.0.255", 2)
    assert exported == Data(DataType.DOUBLE_LONG_UNSIGNED, int(last.export_register[0]))
    power = lab.get(3, "1.0.1.7.0.255", 2)
    assert power == Data(DataType.DOUBLE_LONG_UNSIGNED, int(last.import_wh[0]) * 2)
    assert lab.get(3, "1.0.1.8.0.255", 3) == Data(
        DataType.STRUCTURE, (Data(DataType.INTEGER, 0), Data(DataType.ENUM, 30))
    )


def test_load_profile_by_range_matches_the_pushes(lab: Lab) -> None:
    fleet = lab.fleet
    first, last = fleet.origin + 10, fleet.origin + 20
    selection = range_descriptor(
        datetime.fromtimestamp(fleet.interval_end(first), tz=UTC),
        datetime.fromtimestamp(fleet.interval_end(last), tz=UTC),
    )
    answer = lab.ask(GetRequestNormal(0xC1, 7, ln("1.0.99.1.0.255"), 2, 1, selection))
    assert isinstance(answer, GetResponseNormal)
    assert isinstance(answer.result, Data)
    entries = decode_entries(answer.result)
    ends = [fleet.interval_end(k) for k in range(first, last + 1)]
    assert [e.interval_end for e in entries] == ends
    # what the meter would have pushed: the fleet advancing through the same intervals
    pushed = [fleet.advance() for _ in range(20)][9:]
    assert [
        (e.status, e.import_register, e.export_register, e.import_wh, e.export_wh) for e in entries
    ] == [
        (
            int(v.status[1]),
            int(v.import_register[1]),
            int(v.export_register[1]),
            int(v.import_wh[1]),
            int(v.export_wh[1]),
        )
        for v in pushed
    ]


def test_load_profile_by_entry(lab: Lab) -> None:
    by_entry = Data(
        DataType.STRUCTURE,
        (
            Data(DataType.DOUBLE_LONG_UNSIGNED, 2),
            Data(DataType.DOUBLE_LONG_UNSIGNED, 4),
            Data(DataType.LONG_UNSIGNED, 1),
            Data(DataType.LONG_UNSIGNED, 3),
        ),
    )
    answer = lab.ask(GetRequestNormal(0xC1, 7, ln("1.0.99.1.0.255"), 2, 2, by_entry))
    assert isinstance(answer, GetResponseNormal)
    assert isinstance(answer.result, Data)
    rows = answer.result.value
    assert len(rows) == 3
    assert len(rows[0].value) == 3  # clock, status, +A register
    profile = lab.profile()
    assert [r.value[2].value for r in rows] == [int(v) for v in profile.import_register[1:4]]


def test_a_whole_profile_larger_than_the_pdu_comes_in_blocks() -> None:
    lab = Lab(max_pdu=512)
    first = lab.ask(GetRequestNormal(0xC1, 7, ln("1.0.99.1.0.255"), 2))
    assert isinstance(first, GetResponseWithDataBlock)
    raw = bytearray()
    block = first
    while True:
        assert isinstance(block.raw_data, bytes)
        raw += block.raw_data
        if block.last_block:
            break
        block = lab.ask(GetRequestNext(0xC1, block.block_number))  # type: ignore[assignment]
        assert isinstance(block, GetResponseWithDataBlock)
    entries = decode_entries(decode_data(bytes(raw)))
    # the whole 45-day buffer: the meter was in service long before the origin
    profile = lab.profile()
    assert len(entries) == lab.fleet.profile_depth == profile.numbers.size
    assert entries[-1].interval_end == lab.fleet.interval_end(lab.closed)
    assert [e.import_register for e in entries] == profile.import_register.tolist()
    assert [e.import_wh for e in entries] == profile.import_wh.tolist()


def test_undefined_objects_attributes_and_denied_writes(lab: Lab) -> None:
    assert lab.get(3, "1.0.99.99.0.255", 2) is DataAccessResult.OBJECT_UNDEFINED
    assert lab.get(3, "1.0.1.8.0.255", 9) is DataAccessResult.OBJECT_UNDEFINED
    denied = lab.ask(
        SetRequestNormal(
            0xC1,
            AttributeDescriptor(3, ln("1.0.1.8.0.255"), 2),
            None,
            Data(DataType.DOUBLE_LONG_UNSIGNED, 0),
        )
    )
    assert denied == SetResponseNormal(0xC1, DataAccessResult.READ_WRITE_DENIED)


def test_capture_period_is_changeable_to_the_allowed_intervals(lab: Lab) -> None:
    period = AttributeDescriptor(7, ln("1.0.99.1.0.255"), 4)
    ok = lab.ask(SetRequestNormal(0xC1, period, None, Data(DataType.DOUBLE_LONG_UNSIGNED, 900)))
    assert ok == SetResponseNormal(0xC1, DataAccessResult.SUCCESS)
    assert lab.get(7, "1.0.99.1.0.255", 4) == Data(DataType.DOUBLE_LONG_UNSIGNED, 900)
    bad = lab.ask(SetRequestNormal(0xC1, period, None, Data(DataType.DOUBLE_LONG_UNSIGNED, 1000)))
    assert bad == SetResponseNormal(0xC1, DataAccessResult.TYPE_UNMATCHED)


def test_disconnect_and_reconnect(lab: Lab) -> None:
    switch = ln("0.0.96.3.10.255")
    register = lab.get(3, "1.0.1.8.0.255", 2)
    before = lab.profile()
    off = lab.ask(
        ActionRequestNormal(0xC1, MethodDescriptor(70, switch, 1), Data(DataType.INTEGER, 0))
    )
    assert off == ActionResponseNormal(0xC1, ActionResult.SUCCESS, None)
    assert lab.get(70, "0.0.96.3.10.255", 2) == Data(DataType.BOOLEAN, False)
    assert lab.get(70, "0.0.96.3.10.255", 3) == Data(DataType.ENUM, 0)
    # the switch acts from now on: the past and the register stay as they were
    assert lab.get(3, "1.0.1.8.0.255", 2) == register
    assert np.array_equal(lab.profile().import_register, before.import_register)
    lab.now += timedelta(hours=1)  # two intervals close with the switch open
    assert lab.get(3, "1.0.1.8.0.255", 2) == register
    assert lab.profile(lab.closed - 1).import_wh.tolist() == [0, 0]
    lab.ask(ActionRequestNormal(0xC1, MethodDescriptor(70, switch, 2), Data(DataType.INTEGER, 0)))
    assert lab.get(70, "0.0.96.3.10.255", 3) == Data(DataType.ENUM, 1)
    lab.now += timedelta(hours=2)
    after = lab.get(3, "1.0.1.8.0.255", 2)
    assert isinstance(after, Data) and isinstance(register, Data)
    assert after.value > register.value
    assert lab.profile(lab.closed - 5, lab.closed - 4).import_wh.tolist() == [0, 0]


def test_get_with_list_and_object_list(lab: Lab) -> None:
    items = (
        (AttributeDescriptor(3, ln("1.0.1.8.0.255"), 2), None),
        (AttributeDescriptor(3, ln("1.0.2.8.0.255"), 2), None),
        (AttributeDescriptor(1, ln("9.9.9.9.9.9"), 2), None),
    )
    answer = lab.ask(GetRequestWithList(0xC1, items))
    assert isinstance(answer, GetResponseWithList)
    assert answer.results[2] is DataAccessResult.OBJECT_UNDEFINED
    objects = lab.get(15, "0.0.40.0.0.255", 2)
    assert isinstance(objects, Data)
    classes = sorted({entry.value[0].value for entry in objects.value})
    assert classes == [1, 3, 4, 5, 7, 8, 15, 17, 18, 20, 22, 40, 64, 70, 71]


def test_set_with_data_blocks_reassembles_the_value(lab: Lab) -> None:
    from openami.protocols.dlms.axdr import encode_data
    from openami.protocols.dlms.services import (
        SetRequestWithDataBlock,
        SetRequestWithFirstDataBlock,
        SetResponseDataBlock,
        SetResponseLastDataBlock,
    )

    name = encode_data(Data(DataType.OCTET_STRING, b"winter-time-of-use-2027" * 4))
    parts = [name[i : i + 20] for i in range(0, len(name), 20)]
    target = AttributeDescriptor(20, ln("0.0.13.0.0.255"), 6)
    answer = lab.ask(SetRequestWithFirstDataBlock(0xC1, target, None, False, 1, parts[0]))
    assert answer == SetResponseDataBlock(0xC1, 1)
    for n, part in enumerate(parts[1:], start=2):
        answer = lab.ask(SetRequestWithDataBlock(0xC1, n == len(parts), n, part))
    assert answer == SetResponseLastDataBlock(0xC1, DataAccessResult.SUCCESS, len(parts))
    assert lab.get(20, "0.0.13.0.0.255", 6) == Data(
        DataType.OCTET_STRING, b"winter-time-of-use-2027" * 4
    )


def test_a_skipped_block_number_is_refused(lab: Lab) -> None:
    from openami.protocols.dlms.services import (
        SetRequestWithDataBlock,
        SetRequestWithFirstDataBlock,
        SetResponseLastDataBlock,
    )

    target = AttributeDescriptor(20, ln("0.0.13.0.0.255"), 6)
    lab.ask(SetRequestWithFirstDataBlock(0xC1, target, None, False, 1, b"\x09\x05ab"))
    answer = lab.ask(SetRequestWithDataBlock(0xC1, True, 3, b"cde"))
    assert answer == SetResponseLastDataBlock(0xC1, DataAccessResult.DATA_BLOCK_NUMBER_INVALID, 3)


def test_action_with_parameter_blocks(lab: Lab) -> None:
    import hashlib

    from openami.protocols.dlms.axdr import encode_data
    from openami.protocols.dlms.services import (
        ActionRequestWithFirstPBlock,
        ActionRequestWithPBlock,
        ActionResponseNextPBlock,
    )

    image = b"firmware" * 10
    identifier = b"fw:" + hashlib.sha256(image).hexdigest().encode()
    params = encode_data(
        Data(
            DataType.STRUCTURE,
            (
                Data(DataType.OCTET_STRING, identifier),
                Data(DataType.DOUBLE_LONG_UNSIGNED, len(image)),
            ),
        )
    )
    initiate = MethodDescriptor(18, ln("0.0.44.0.0.255"), 1)
    first = lab.ask(ActionRequestWithFirstPBlock(0xC1, initiate, False, 1, params[:30]))
    assert first == ActionResponseNextPBlock(0xC1, 1)
    done = lab.ask(ActionRequestWithPBlock(0xC1, True, 2, params[30:]))
    assert done == ActionResponseNormal(0xC1, ActionResult.SUCCESS, None)
    assert lab.get(18, "0.0.44.0.0.255", 6) == Data(DataType.ENUM, 1)  # initiated
