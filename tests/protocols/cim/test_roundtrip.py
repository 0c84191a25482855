"""Every model the encoder accepts comes back unchanged, and its document matches the XSD."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols import cim
from tests.protocols.cim import strategies as cs


@given(cs.meter_readings)
def test_meter_readings_round_trip(document: cim.MeterReadings) -> None:
    encoded = cim.encode_meter_readings(document)
    assert cim.decode_meter_readings(encoded) == document
    cim.validate(encoded, cim.DocumentKind.METER_READINGS)


@given(cs.end_device_events)
def test_end_device_events_round_trip(document: cim.EndDeviceEvents) -> None:
    encoded = cim.encode_end_device_events(document)
    assert cim.decode_end_device_events(encoded) == document
    cim.validate(encoded, cim.DocumentKind.END_DEVICE_EVENTS)


@given(cs.request_messages)
def test_request_messages_round_trip(request: cim.RequestMessage) -> None:
    encoded = cim.encode_request_message(request)
    assert cim.decode_request_message(encoded) == request
    cim.validate(encoded, cim.DocumentKind.END_DEVICE_CONTROLS)


@given(cs.response_messages)
def test_response_messages_round_trip(response: cim.ResponseMessage) -> None:
    encoded = cim.encode_response_message(response)
    assert cim.decode_response_message(encoded) == response
    cim.validate(encoded, cim.DocumentKind.END_DEVICE_CONTROLS)


def test_decoded_times_are_utc() -> None:
    jst = timezone(timedelta(hours=9))
    document = cim.EndDeviceEvents(
        (cim.EndDeviceEvent("e", datetime(2026, 1, 1, 9, tzinfo=jst), "3.26.0.85", "m"),)
    )
    decoded = cim.decode_end_device_events(cim.encode_end_device_events(document))
    assert decoded.events[0].created.tzinfo is UTC
    assert decoded.events[0].created == datetime(2026, 1, 1, 0, tzinfo=UTC)
    assert b"2026-01-01T00:00:00Z" in cim.encode_end_device_events(document)


def test_microseconds_survive() -> None:
    moment = datetime(2026, 1, 1, 0, 0, 0, 120, tzinfo=UTC)
    document = cim.EndDeviceEvents((cim.EndDeviceEvent("e", moment, "3.26.0.85", "m"),))
    encoded = cim.encode_end_device_events(document)
    assert b"2026-01-01T00:00:00.000120Z" in encoded
    assert cim.decode_end_device_events(encoded) == document


def test_a_partial_reply_names_each_failed_control() -> None:
    header = cim.Header(cim.Verb.REPLY, datetime(2026, 1, 1, tzinfo=UTC), "openami", "r", "q")
    reply = cim.Reply(
        cim.Result.PARTIAL,
        (
            cim.ReplyError("meter.unreachable", "no answer before the deadline", "control-2"),
            cim.ReplyError("control.unsupported", None, "control-3"),
        ),
    )
    response = cim.ResponseMessage(header, reply)
    encoded = cim.encode_response_message(response)
    cim.validate(encoded, cim.DocumentKind.END_DEVICE_CONTROLS)
    assert cim.decode_response_message(encoded) == response


# --- the encoder refuses what the schema would -----------------------------------------------

_WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _event(**changes: object) -> cim.EndDeviceEvents:
    fields: dict[str, object] = {
        "mrid": "e",
        "created": _WHEN,
        "event_type": "3.26.0.85",
        "meter_mrid": "m",
    }
    fields.update(changes)
    return cim.EndDeviceEvents((cim.EndDeviceEvent(**fields),))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"created": datetime(2026, 1, 1)},  # noqa: DTZ001 - the naive time under test
        {"event_type": "3.26.0"},
        {"event_type": "3.26.0.x"},
        {"mrid": ""},
        {"mrid": "two words"},
        {"meter_mrid": 42},
        {"reason": "line\r\nbreak"},
        {"reason": "nul\x00"},
        {"reason": "\ufffe"},
        {"details": (cim.EndDeviceEventDetail("value", "\ud800"),)},
    ],
    ids=repr,
)
def test_the_encoder_refuses_what_xml_or_the_schema_cannot_hold(changes: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        cim.encode_end_device_events(_event(**changes))


def test_the_encoder_refuses_bad_readings() -> None:
    meter = cim.Meter("m")
    too_big = cim.MeterReading(
        meter, readings=(cim.Reading(cim.BULK_FORWARD_WH.mrid, _WHEN, 2**63),)
    )
    bad_type = cim.MeterReading(meter, interval_blocks=(cim.IntervalBlock("0.0.5"),))
    bad_quality = cim.MeterReading(
        meter, readings=(cim.Reading(cim.BULK_FORWARD_WH.mrid, _WHEN, 1, ("3.8",)),)
    )
    for reading in (too_big, bad_type, bad_quality):
        with pytest.raises(LocalProtocolError):
            cim.encode_meter_readings(cim.MeterReadings((reading,)))
    with pytest.raises(LocalProtocolError):
        cim.encode_meter_readings(cim.MeterReadings((), (cim.ReadingType("1.2.3"),)))


def test_the_encoder_refuses_empty_controls_and_unknown_verbs() -> None:
    header = cim.Header(cim.Verb.CREATE, _WHEN, "s", "id")
    with pytest.raises(LocalProtocolError):
        cim.encode_request_message(cim.RequestMessage(header, cim.EndDeviceControls(())))
    no_devices = cim.EndDeviceControl("c", "3.31.0.23", ())
    with pytest.raises(LocalProtocolError):
        cim.encode_request_message(cim.RequestMessage(header, cim.EndDeviceControls((no_devices,))))
    control = cim.EndDeviceControl("c", "3.31.0.23", ("m",))
    odd = cim.Header("shout", _WHEN, "s", "id")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        cim.encode_request_message(cim.RequestMessage(odd, cim.EndDeviceControls((control,))))


def test_the_decoder_insists_on_the_noun() -> None:
    header = cim.Header(cim.Verb.CREATE, _WHEN, "s", "id")
    control = cim.EndDeviceControl("c", "3.31.0.23", ("m",))
    encoded = cim.encode_request_message(
        cim.RequestMessage(header, cim.EndDeviceControls((control,)))
    )
    with pytest.raises(DecodeError, match="Noun"):
        cim.decode_request_message(encoded.replace(b">EndDeviceControls<", b">MeterReadings<"))
