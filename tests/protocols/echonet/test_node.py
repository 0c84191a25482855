from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import LocalProtocolError
from openami.protocols.echonet import (
    EOJ,
    ESV,
    NODE_PROFILE,
    NODE_PROFILE_CLASS,
    Access,
    EchonetNode,
    Frame,
    IdentificationNumber,
    LowVoltageSmartMeter,
    Property,
    Version,
    decode_frame,
    encode_frame,
)
from tests.protocols.echonet.fakes import FakeMeterSource, import_at, properties

CONTROLLER = EOJ(0x05, 0xFF, 0x01)
METER = EOJ(0x02, 0x88, 0x01)
UNIQUE = bytes(range(1, 14))


def make_node(meters: int = 1) -> EchonetNode:
    devices = [LowVoltageSmartMeter(FakeMeterSource(), instance=i) for i in range(1, meters + 1)]
    return EchonetNode(devices, manufacturer_code=0x000016, unique_id=UNIQUE)


def request(
    esv: ESV, deoj: EOJ, *props: Property, tid: int = 0x0102, seoj: EOJ = CONTROLLER
) -> bytes:
    return encode_frame(Frame(tid, seoj, deoj, esv, props))


def only(replies: list[Frame]) -> Frame:
    assert len(replies) == 1, replies
    return replies[0]


def test_get_of_operating_status_answers_get_res() -> None:
    node = make_node()
    reply = only(node.handle(request(ESV.GET, NODE_PROFILE, Property(0x80))))
    assert encode_frame(reply) == bytes.fromhex("1081 0102 0EF001 05FF01 72 01 80 01 30")
    reply = only(node.handle(request(ESV.GET, METER, Property(0xE7), Property(0xE0))))
    assert reply == Frame(
        0x0102,
        METER,
        CONTROLLER,
        ESV.GET_RES,
        (Property(0xE7, bytes.fromhex("00000278")), Property(0xE0, bytes.fromhex("0000FE73"))),
    )


def test_a_get_with_a_refused_property_is_get_sna_with_pdc_0_for_it() -> None:
    node = make_node()
    raw = request(ESV.GET, METER, Property(0xE7), Property(0x83), Property(0xD5))
    reply = only(node.handle(raw))
    assert reply.esv is ESV.GET_SNA
    assert reply.properties == (
        Property(0xE7, bytes.fromhex("00000278")),
        Property(0x83),
        Property(0xD5),
    )
    # as a meter in the field answers a Get of 0x83 it does not have
    lone = only(node.handle(request(ESV.GET, METER, Property(0x83), tid=1)))
    assert encode_frame(lone) == bytes.fromhex("1081000102880105FF0152018300")


def test_setc_answers_set_res_with_pdc_0() -> None:
    node = make_node()
    reply = only(node.handle(request(ESV.SETC, METER, Property(0xE5, b"\x01"))))
    assert reply == Frame(0x0102, METER, CONTROLLER, ESV.SET_RES, (Property(0xE5),))
    after = only(node.handle(request(ESV.GET, METER, Property(0xE5), Property(0xE2))))
    assert after.properties[0].edt == b"\x01"
    assert after.properties[1].edt[:6] == b"\x00\x01" + import_at(1, 0).to_bytes(4, "big")


def test_setc_sna_echoes_refused_edts_and_gives_pdc_0_for_accepted_ones() -> None:
    node = make_node()
    raw = request(
        ESV.SETC,
        METER,
        Property(0xE5, b"\x02"),
        Property(0xE0, b"\x00\x00\x00\x05"),
        Property(0xE5, b"\x64"),
    )
    reply = only(node.handle(raw))
    assert reply.esv is ESV.SETC_SNA
    assert reply.properties == (
        Property(0xE5),
        Property(0xE0, b"\x00\x00\x00\x05"),
        Property(0xE5, b"\x64"),
    )


def test_seti_is_silent_on_success_and_answers_seti_sna_on_failure() -> None:
    node = make_node()
    assert node.handle(request(ESV.SETI, METER, Property(0xE5, b"\x05"))) == []
    meter = node.object(METER)
    assert isinstance(meter, LowVoltageSmartMeter) and meter.history_day == 5
    reply = only(node.handle(request(ESV.SETI, METER, Property(0x80, b"\x31"))))
    assert reply == Frame(0x0102, METER, CONTROLLER, ESV.SETI_SNA, (Property(0x80, b"\x31"),))


def test_a_deoj_the_node_does_not_hold_is_ignored() -> None:
    node = make_node()
    assert node.handle(request(ESV.GET, EOJ(0x02, 0x88, 0x02), Property(0x80))) == []
    assert node.handle(request(ESV.GET, EOJ(0x01, 0x30, 0x01), Property(0x80))) == []
    assert node.handle(request(ESV.GET, EOJ(0x0E, 0xF0, 0x02), Property(0x80))) == []


def test_instance_0_addresses_every_instance_of_the_class() -> None:
    node = make_node(meters=2)
    replies = node.handle(request(ESV.GET, EOJ(0x02, 0x88, 0x00), Property(0xE7)))
    assert [reply.seoj for reply in replies] == [METER, EOJ(0x02, 0x88, 0x02)]
    assert all(reply.esv is ESV.GET_RES and reply.deoj == CONTROLLER for reply in replies)
    profile = only(node.handle(request(ESV.GET, EOJ(0x0E, 0xF0, 0x00), Property(0xD3))))
    assert profile.seoj == NODE_PROFILE
    assert profile.properties == (Property(0xD3, b"\x00\x00\x02"),)
    silent = node.handle(request(ESV.SETI, EOJ(0x02, 0x88, 0x00), Property(0xE5, b"\x01")))
    assert silent == []


def test_inf_req_answers_inf_and_may_name_announce_only_properties() -> None:
    node = make_node()
    reply = only(node.handle(request(ESV.INF_REQ, NODE_PROFILE, Property(0xD5))))
    assert reply == Frame(
        0x0102, NODE_PROFILE, CONTROLLER, ESV.INF, (Property(0xD5, bytes.fromhex("01028801")),)
    )
    refused = only(node.handle(request(ESV.INF_REQ, METER, Property(0x88), Property(0x83))))
    assert refused.esv is ESV.INF_SNA
    assert refused.properties == (Property(0x88, b"\x42"), Property(0x83))
    get_d5 = only(node.handle(request(ESV.GET, NODE_PROFILE, Property(0xD5))))
    assert get_d5.esv is ESV.GET_SNA  # 0xD5 is an announcement, not a Get property


def test_infc_is_acknowledged_with_infc_res() -> None:
    node = make_node()
    raw = request(ESV.INFC, NODE_PROFILE, Property(0xD5, bytes.fromhex("0105FF01")))
    reply = only(node.handle(raw))
    assert reply == Frame(0x0102, NODE_PROFILE, CONTROLLER, ESV.INFC_RES, (Property(0xD5),))


def test_setget_sets_first_then_reads() -> None:
    node = make_node()
    raw = encode_frame(
        Frame(9, CONTROLLER, METER, ESV.SETGET, (Property(0xE5),), (Property(0xE5, b"\x07"),))
    )
    reply = only(node.handle(raw))
    assert reply == Frame(
        9, METER, CONTROLLER, ESV.SETGET_RES, (Property(0xE5, b"\x07"),), (Property(0xE5),)
    )
    refused = encode_frame(
        Frame(9, CONTROLLER, METER, ESV.SETGET, (Property(0x83),), (Property(0xE0, b"\x01"),))
    )
    reply = only(node.handle(refused))
    assert reply.esv is ESV.SETGET_SNA
    assert reply.set_properties == (Property(0xE0, b"\x01"),)
    assert reply.properties == (Property(0x83),)


@pytest.mark.parametrize(
    "esv",
    [ESV.GET_RES, ESV.GET_SNA, ESV.SET_RES, ESV.SETC_SNA, ESV.INF, ESV.INFC_RES, ESV.SETGET_RES],
)
def test_responses_and_notifications_from_peers_are_not_answered(esv: ESV) -> None:
    node = make_node()
    assert node.handle(request(esv, METER, Property(0x80, b"\x30"))) == []


def test_undecodable_and_empty_requests_are_discarded() -> None:
    node = make_node()
    assert node.handle(b"") == []
    assert node.handle(b"\x10\x82" + request(ESV.GET, METER, Property(0x80))[2:]) == []
    assert node.handle(request(ESV.GET, METER)) == []


def test_a_get_of_every_meter_property_is_answered_in_full() -> None:
    node = make_node()
    meter = node.object(METER)
    assert meter is not None
    wanted = sorted(meter.klass.epcs(Access.GET))
    reply = only(node.handle(request(ESV.GET, METER, *(Property(epc) for epc in wanted))))
    assert reply.esv is ESV.GET_RES
    assert [prop.epc for prop in reply.properties] == wanted
    assert all(0 < prop.pdc <= 255 for prop in reply.properties)
    raw = encode_frame(reply)
    assert len(raw) > 255
    assert decode_frame(raw) == reply


def test_the_node_profile_describes_the_node() -> None:
    node = make_node(meters=2)
    values = {}
    for prop in NODE_PROFILE_CLASS.properties:
        raw = node.profile.read(prop.epc, announce=True)
        assert raw is not None
        values[prop.epc] = prop.decode(raw)
        assert prop.encode(values[prop.epc]) == raw
    assert values[0x82] == Version(1, 13, 0x01)
    assert node.profile.read(0x82) == bytes.fromhex("010D0100")
    assert values[0x83] == IdentificationNumber(0x16, UNIQUE)
    assert node.profile.read(0x83) == b"\xfe\x00\x00\x16" + UNIQUE
    assert values[0x8A] == 0x16
    assert values[0xD3] == 2
    assert node.profile.read(0xD4) == b"\x00\x02"  # the meter class and the node profile
    assert values[0xD5] == values[0xD6] == (METER, EOJ(0x02, 0x88, 0x02))
    assert node.profile.read(0xD6) == bytes.fromhex("02 028801 028802")
    assert node.profile.read(0xD7) == bytes.fromhex("01 0288")
    assert values[0x9D] == {0x80, 0xD5}
    assert values[0x9E] == frozenset()
    assert values[0x9F] == {0x80, 0x82, 0x83, 0x8A, 0x9D, 0x9E, 0x9F, 0xD3, 0xD4, 0xD6, 0xD7}


def test_startup_announcement_is_what_a_field_meter_multicasts() -> None:
    node = make_node()
    first = node.startup_announcement()
    assert encode_frame(first) == bytes.fromhex("108100000EF0010EF0017301D50401028801")
    assert node.startup_announcement().tid == 1
    status = node.announcement(node.objects[1], (0x80, 0x88))
    assert (status.tid, status.seoj, status.esv) == (2, METER, ESV.INF)
    assert status.properties == (Property(0x80, b"\x30"), Property(0x88, b"\x42"))
    with pytest.raises(LocalProtocolError):
        node.announcement(node.objects[1], (0x83,))


def test_a_node_refuses_clashing_objects() -> None:
    with pytest.raises(LocalProtocolError):
        EchonetNode(
            [LowVoltageSmartMeter(FakeMeterSource()), LowVoltageSmartMeter(FakeMeterSource())],
            manufacturer_code=1,
        )
    with pytest.raises(LocalProtocolError):
        EchonetNode([], manufacturer_code=0x1000000)
    with pytest.raises(LocalProtocolError):
        EchonetNode([], manufacturer_code=1, unique_id=b"short")


@given(st.binary(max_size=120))
def test_handle_of_arbitrary_octets_never_raises(raw: bytes) -> None:
    for reply in make_node().handle(raw):
        encode_frame(reply)


_TARGETS = st.sampled_from(
    [METER, NODE_PROFILE, EOJ(0x02, 0x88, 0x00), EOJ(0x0E, 0xF0, 0x00), EOJ(0x02, 0x88, 0x05)]
)
_EPCS = st.sampled_from([0x80, 0x81, 0x83, 0x9F, 0xD5, 0xD6, 0xE2, 0xE5, 0xEC, 0xED, 0x00])
_AIMED = st.builds(Property, _EPCS, st.binary(max_size=8)) | properties


@given(
    st.sampled_from(list(ESV)),
    _TARGETS,
    st.lists(_AIMED, max_size=4).map(tuple),
    st.lists(_AIMED, max_size=3).map(tuple),
)
def test_handle_of_requests_aimed_at_the_node_never_raises(
    esv: ESV, deoj: EOJ, props: tuple[Property, ...], set_props: tuple[Property, ...]
) -> None:
    node = make_node()
    if esv not in (ESV.SETGET, ESV.SETGET_RES, ESV.SETGET_SNA):
        set_props = ()
    raw = encode_frame(Frame(5, CONTROLLER, deoj, esv, props, set_props))
    for reply in node.handle(raw) + node.handle(request(ESV.GET, METER, Property(0xEC))):
        assert reply.tid in (5, 0x0102)
        assert decode_frame(encode_frame(reply)) == reply
