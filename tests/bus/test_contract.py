from __future__ import annotations

import contextlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from openami.bus.contract import (
    Channel,
    CollectRequest,
    ReadBatch,
    ReadSource,
    decode_message,
    encode_message,
)
from openami.errors import DecodeError

INT64 = st.integers(-(2**63), 2**63 - 1)


@st.composite
def read_batches(draw: st.DrawFn) -> ReadBatch:
    n = draw(st.integers(0, 20))
    column = st.lists(INT64, min_size=n, max_size=n)
    return ReadBatch(
        meter_id=draw(column),
        channel=draw(column),
        interval_end=draw(column),
        value_wh=draw(column),
        source=draw(column),
        status=draw(column),
    )


collect_requests = st.builds(
    CollectRequest, meter_id=INT64, from_end=INT64, to_end=INT64, request_id=st.text()
)


def test_a_read_batch_round_trips() -> None:
    batch = ReadBatch(
        meter_id=[1, 1, 2],
        channel=[Channel.IMPORT_INTERVAL, Channel.IMPORT_REGISTER, Channel.EXPORT_INTERVAL],
        interval_end=[1_785_000_600, 1_785_000_600, 1_785_002_400],
        value_wh=[120, 1_234_567, 0],
        source=[ReadSource.PUSH, ReadSource.PUSH, ReadSource.RECOLLECT],
        status=[0, 0, 0x80],
    )
    decoded = decode_message(encode_message(batch))
    assert isinstance(decoded, ReadBatch)
    assert decoded == batch
    assert decoded.channel == [1, 3, 2]


def test_a_collect_request_round_trips() -> None:
    request = CollectRequest(
        meter_id=7, from_end=1_785_000_600, to_end=1_785_004_200, request_id="ab"
    )
    decoded = decode_message(encode_message(request))
    assert isinstance(decoded, CollectRequest)
    assert decoded == request


def test_the_two_messages_are_told_apart_by_their_tag() -> None:
    assert msgspec.msgpack.decode(encode_message(CollectRequest(1, 2, 3, "x")))["type"] == "collect"
    empty = ReadBatch([], [], [], [], [], [])
    assert msgspec.msgpack.decode(encode_message(empty))["type"] == "reads"


@given(read_batches())
def test_any_read_batch_round_trips(batch: ReadBatch) -> None:
    assert decode_message(encode_message(batch)) == batch


@given(collect_requests)
def test_any_collect_request_round_trips(request: CollectRequest) -> None:
    assert decode_message(encode_message(request)) == request


@given(st.binary(max_size=300))
def test_decoding_any_bytes_raises_only_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_message(raw)


msgpack_values = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "type",
        "meter_id",
        "channel",
        "interval_end",
        "value_wh",
        "source",
        "status",
        "from_end",
        "to_end",
        "request_id",
        "other",
    ]
)


@given(
    st.sampled_from(["reads", "collect", "nonsense", 1]),
    st.dictionaries(field_names, msgpack_values, max_size=8),
)
def test_decoding_well_formed_msgpack_raises_only_decode_error(
    tag: object, fields: dict[str, object]
) -> None:
    raw = msgspec.msgpack.encode({**fields, "type": tag})
    try:
        decoded = decode_message(raw)
    except DecodeError:
        return
    assert isinstance(decoded, ReadBatch | CollectRequest)


@given(st.one_of(read_batches(), collect_requests), st.data())
def test_truncated_messages_are_refused(
    message: ReadBatch | CollectRequest, data: st.DataObject
) -> None:
    encoded = encode_message(message)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(DecodeError):
        decode_message(encoded[:cut])


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "reads", "meter_id": [1]},  # missing columns
        {
            "type": "reads",
            "meter_id": ["x"],
            "channel": [1],
            "interval_end": [1],
            "value_wh": [1],
            "source": [1],
            "status": [1],
        },  # wrong element type
        {"type": "collect", "meter_id": 1, "from_end": 2, "to_end": 3},  # no request_id
        {"type": "unknown"},
        {"meter_id": 1},  # no tag
        [1, 2, 3],
    ],
)
def test_wrong_shapes_are_refused(payload: object) -> None:
    with pytest.raises(DecodeError):
        decode_message(msgspec.msgpack.encode(payload))


def test_channel_numbers_are_the_documented_ones() -> None:
    assert {c.name: int(c) for c in Channel} == {
        "IMPORT_INTERVAL": 1,
        "EXPORT_INTERVAL": 2,
        "IMPORT_REGISTER": 3,
        "EXPORT_REGISTER": 4,
        "GAS_INDEX": 5,
        "WATER_INDEX": 6,
    }
    assert [int(s) for s in ReadSource] == [1, 2]
