"""The public names of ``openami.protocols.cim``: what the HTTP service builds on."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from openami.protocols import cim


def test_the_public_names() -> None:
    assert sorted(cim.__all__) == sorted(
        [
            "BULK_FORWARD_WH",
            "BULK_REVERSE_WH",
            "CONTROL_TYPES",
            "END_DEVICE_CONTROLS_NAMESPACE",
            "END_DEVICE_EVENTS_NAMESPACE",
            "EVENT_TYPES",
            "MESSAGE_NAMESPACE",
            "METER_READINGS_NAMESPACE",
            "Accumulation",
            "Aggregate",
            "CodeChoice",
            "Commodity",
            "ControlKind",
            "Currency",
            "DateTimeInterval",
            "DocumentKind",
            "EndDeviceCode",
            "EndDeviceControl",
            "EndDeviceControlDetail",
            "EndDeviceControls",
            "EndDeviceDomain",
            "EndDeviceEvent",
            "EndDeviceEventDetail",
            "EndDeviceEventOrAction",
            "EndDeviceEvents",
            "EndDeviceSubdomain",
            "EndDeviceType",
            "FlowDirection",
            "Header",
            "IntervalBlock",
            "IntervalReading",
            "MacroPeriod",
            "MeasurementKind",
            "MeasuringPeriod",
            "Meter",
            "MeterReading",
            "MeterReadings",
            "Multiplier",
            "Phase",
            "Provenance",
            "QualityCategory",
            "QualitySystem",
            "Reading",
            "ReadingType",
            "ReadingTypeId",
            "Reply",
            "ReplyError",
            "RequestMessage",
            "ResponseMessage",
            "Result",
            "Unit",
            "UsagePoint",
            "Verb",
            "control_kind",
            "decode_end_device_events",
            "decode_meter_readings",
            "decode_request_message",
            "decode_response_message",
            "dlms_event_code",
            "encode_end_device_events",
            "encode_meter_readings",
            "encode_request_message",
            "encode_response_message",
            "end_device_control_type",
            "end_device_event_type",
            "event_from_dlms",
            "interval_energy",
            "quality_code",
            "schema_path",
            "validate",
        ]
    )
    assert len(set(cim.__all__)) == len(cim.__all__)
    for name in cim.__all__:
        assert getattr(cim, name) is not None, name


def test_the_models_are_frozen() -> None:
    meter = cim.Meter("m")
    with pytest.raises(FrozenInstanceError):
        meter.mrid = "n"  # type: ignore[misc]
