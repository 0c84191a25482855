from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.errors import DecodeError
from openami.protocols.dlms.acse import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseResult,
    ApplicationContext,
    InitiateRequest,
    InitiateResponse,
    Mechanism,
    decode_initiate_request,
    decode_initiate_response,
    encode_initiate_request,
    encode_initiate_response,
)
from openami.protocols.dlms.apdu import Apdu, GeneralDedCiphering, decode_apdu, encode_apdu
from openami.protocols.dlms.services import (
    CIPHERED_TAGS,
    ActionRequestNextPBlock,
    ActionRequestNormal,
    ActionRequestWithFirstPBlock,
    ActionRequestWithList,
    ActionRequestWithPBlock,
    ActionResponseNextPBlock,
    ActionResponseNormal,
    ActionResponseWithList,
    ActionResponseWithPBlock,
    ActionResult,
    AttributeDescriptor,
    CipheredService,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestWithList,
    GetResponseWithDataBlock,
    GetResponseWithList,
    MethodDescriptor,
    Selection,
    SetRequestNormal,
    SetRequestWithDataBlock,
    SetRequestWithFirstDataBlock,
    SetRequestWithList,
    SetResponseDataBlock,
    SetResponseLastDataBlock,
    SetResponseNormal,
    SetResponseWithList,
)
from tests.protocols.dlms.strategies import data

u8 = st.integers(0, 255)
u32 = st.integers(0, 2**32 - 1)
obis = st.binary(min_size=6, max_size=6)
attrs = st.builds(AttributeDescriptor, st.integers(0, 65535), obis, st.integers(-128, 127))
methods = st.builds(MethodDescriptor, st.integers(0, 65535), obis, st.integers(-128, 127))
selections = st.one_of(st.none(), st.builds(Selection, u8, data))
items = st.lists(st.tuples(attrs, selections), max_size=4).map(tuple)
raw = st.binary(max_size=200)
results = st.sampled_from(DataAccessResult)
get_data_results = st.one_of(data, results)

services = st.one_of(
    st.builds(GetRequestNext, u8, u32),
    st.builds(GetRequestWithList, u8, items),
    st.builds(GetResponseWithDataBlock, u8, st.booleans(), u32, st.one_of(raw, results)),
    st.builds(GetResponseWithList, u8, st.lists(get_data_results, max_size=4).map(tuple)),
    st.builds(SetRequestNormal, u8, attrs, selections, data),
    st.builds(SetRequestWithFirstDataBlock, u8, attrs, selections, st.booleans(), u32, raw),
    st.builds(SetRequestWithDataBlock, u8, st.booleans(), u32, raw),
    st.builds(SetRequestWithList, u8, items, st.lists(data, max_size=4).map(tuple)),
    st.builds(SetResponseNormal, u8, results),
    st.builds(SetResponseDataBlock, u8, u32),
    st.builds(SetResponseLastDataBlock, u8, results, u32),
    st.builds(SetResponseWithList, u8, st.lists(results, max_size=5).map(tuple)),
    st.builds(ActionRequestNormal, u8, methods, st.one_of(st.none(), data)),
    st.builds(ActionRequestNextPBlock, u8, u32),
    st.builds(
        ActionRequestWithList,
        u8,
        st.lists(methods, max_size=3).map(tuple),
        st.lists(data, max_size=3).map(tuple),
    ),
    st.builds(ActionRequestWithFirstPBlock, u8, methods, st.booleans(), u32, raw),
    st.builds(ActionRequestWithPBlock, u8, st.booleans(), u32, raw),
    st.builds(
        ActionResponseNormal,
        u8,
        st.sampled_from(ActionResult),
        st.one_of(st.none(), get_data_results),
    ),
    st.builds(ActionResponseWithPBlock, u8, st.booleans(), u32, raw),
    st.builds(
        ActionResponseWithList,
        u8,
        st.lists(
            st.tuples(st.sampled_from(ActionResult), st.one_of(st.none(), get_data_results)),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(ActionResponseNextPBlock, u8, u32),
    st.builds(ExceptionResponse, st.integers(1, 2), st.integers(1, 5)),
    st.builds(ExceptionResponse, st.integers(1, 2), st.just(6), u32),
    st.builds(CipheredService, st.sampled_from(sorted(CIPHERED_TAGS)), raw),
    st.builds(GeneralDedCiphering, st.binary(min_size=8, max_size=8), raw),
)

titles = st.one_of(st.none(), st.binary(min_size=8, max_size=8))
acse = st.one_of(
    st.builds(
        AARQ,
        st.sampled_from(ApplicationContext),
        titles,
        st.one_of(st.none(), st.sampled_from(Mechanism)),
        st.one_of(st.none(), st.binary(max_size=64)),
        st.one_of(st.none(), st.binary(max_size=300)),
    ),
    st.builds(
        AARE,
        st.sampled_from(AcseResult),
        st.integers(0, 14),
        st.booleans(),
        st.sampled_from(ApplicationContext),
        titles,
        st.one_of(st.none(), st.sampled_from(Mechanism)),
        st.one_of(st.none(), st.binary(max_size=64)),
        st.one_of(st.none(), st.binary(max_size=300)),
    ),
    st.builds(RLRQ, st.one_of(st.none(), st.sampled_from([0, 1, 30])), st.one_of(st.none(), raw)),
    st.builds(RLRE, st.one_of(st.none(), st.sampled_from([0, 1, 30])), st.one_of(st.none(), raw)),
)


@given(st.one_of(services, acse))
def test_every_service_and_acse_apdu_round_trips(apdu: Apdu) -> None:
    assert decode_apdu(encode_apdu(apdu)) == apdu


@given(st.one_of(services, acse), st.data())
def test_single_bit_flips_of_plain_apdus_raise_only_decode_error(
    apdu: Apdu, draw: st.DataObject
) -> None:
    # Plain APDUs carry no integrity check (a flipped boolean octet is still TRUE), so the
    # property is "never crash"; ciphered APDUs reject every flip (see test_security.py).
    encoded = bytearray(encode_apdu(apdu))
    bit = draw.draw(st.integers(0, len(encoded) * 8 - 1))
    encoded[bit // 8] ^= 1 << (bit % 8)
    with contextlib.suppress(DecodeError):
        decode_apdu(bytes(encoded))


@given(
    st.sampled_from([0x60, 0x61, 0x62, 0x63, 0xC1, 0xC3, 0xC5, 0xC7, 0xD8, 0xC8, 0xDC]),
    st.binary(max_size=80),
)
def test_known_tags_with_random_bodies_raise_only_decode_error(tag: int, body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_apdu(bytes([tag]) + body)


@given(
    st.builds(
        InitiateRequest,
        st.integers(0, 2**24 - 1),
        st.integers(0, 65535),
        st.one_of(st.none(), st.binary(min_size=16, max_size=16)),
        st.booleans(),
        st.one_of(st.none(), u8),
        u8,
    )
)
def test_initiate_request_round_trips(request: InitiateRequest) -> None:
    assert decode_initiate_request(encode_initiate_request(request)) == request


@given(
    st.builds(
        InitiateResponse,
        st.integers(0, 2**24 - 1),
        st.integers(0, 65535),
        st.one_of(st.none(), u8),
        u8,
        st.integers(-32768, 32767),
    )
)
def test_initiate_response_round_trips(response: InitiateResponse) -> None:
    assert decode_initiate_response(encode_initiate_response(response)) == response


@given(st.binary(max_size=40))
def test_initiate_decoders_raise_only_decode_error(raw_bytes: bytes) -> None:
    for decode in (decode_initiate_request, decode_initiate_response):
        with contextlib.suppress(DecodeError):
            decode(raw_bytes)


def test_initiate_request_matches_the_green_book_layout() -> None:
    # no dedicated key, response-allowed default, no QoS, version 6, conformance 007E1F,
    # client max receive PDU size 0x04B0
    assert encode_initiate_request(InitiateRequest(0x007E1F, 0x04B0)).hex() == (
        "01000000065f1f0400007e1f04b0"
    )


def test_aare_accepting_a_plain_ln_association_byte_for_byte() -> None:
    response = encode_initiate_response(InitiateResponse(0x00501F, 0x01F4))
    aare = AARE(AcseResult.ACCEPTED, user_information=response)
    assert encode_apdu(aare).hex() == (
        "6129"  # AARE, 41 octets
        "a109060760857405080101"  # application-context-name: LN, no ciphering
        "a203020100"  # result: accepted
        "a305a103020100"  # result-source-diagnostic: acse-service-user, null
        "be10040e0800065f1f040000501f01f40007"  # user-information: initiate-response
    )


def test_aarq_with_hls_gmac_carries_title_mechanism_and_challenge() -> None:
    aarq = AARQ(
        ApplicationContext.LOGICAL_NAME_CIPHERED,
        bytes.fromhex("4d4d4d0000bc614e"),
        Mechanism.HIGH_GMAC,
        b"K56iVagY",
        bytes.fromhex("21"),
    )
    encoded = encode_apdu(aarq).hex()
    assert "a109060760857405080103" in encoded  # LN with ciphering
    assert "a60a04084d4d4d0000bc614e" in encoded  # calling-AP-title
    assert "8a0207808b0760857405080205" in encoded  # acse-requirements, mechanism 5
    assert "ac0a80084b35366956616759" in encoded  # calling-authentication-value


def test_release_request_layout() -> None:
    assert encode_apdu(RLRQ(0)).hex() == "6203800100"


def test_exception_response_with_invocation_counter() -> None:
    apdu = ExceptionResponse(1, 6, 0x01020304)
    assert encode_apdu(apdu).hex() == "d8010601020304"
    with pytest.raises(DecodeError):
        decode_apdu(bytes.fromhex("d80106010203"))


def test_unsupported_choices_are_refused() -> None:
    with pytest.raises(DecodeError, match="choice"):
        decode_apdu(bytes.fromhex("c009c1"))
    with pytest.raises(DecodeError, match="presence flag"):
        decode_apdu(bytes.fromhex("c001c100080000010000ff0202"))
