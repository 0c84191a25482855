"""The published schemas: shipped with the package, openami's own, and used by ``validate``."""

from __future__ import annotations

from importlib.resources import files

import pytest

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols import cim
from tests.protocols.cim.test_golden import DISCONNECT_REQUEST, LAST_GASP, METER_READINGS

SCHEMAS = ["message.xsd", "meter_readings.xsd", "end_device_events.xsd", "end_device_controls.xsd"]


@pytest.mark.parametrize("name", SCHEMAS)
def test_the_schemas_are_package_data_and_say_whose_they_are(name: str) -> None:
    text = (files("openami.protocols.cim") / "schemas" / name).read_text(encoding="utf-8")
    assert "openami's own schema" in text
    assert "IEC 61968" in text
    assert 'targetNamespace="http://openami.org/cim/2026/' in text


def test_schema_path_points_at_the_installed_files() -> None:
    for kind in cim.DocumentKind:
        path = cim.schema_path(kind)
        assert path.is_file()
        assert (path.parent / "message.xsd").is_file()


def test_the_namespaces() -> None:
    assert cim.METER_READINGS_NAMESPACE == "http://openami.org/cim/2026/MeterReadings#"
    assert cim.END_DEVICE_EVENTS_NAMESPACE == "http://openami.org/cim/2026/EndDeviceEvents#"
    assert cim.END_DEVICE_CONTROLS_NAMESPACE == "http://openami.org/cim/2026/EndDeviceControls#"
    assert cim.MESSAGE_NAMESPACE == "http://openami.org/cim/2026/Message#"


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        (METER_READINGS, cim.DocumentKind.END_DEVICE_EVENTS),
        (LAST_GASP, cim.DocumentKind.END_DEVICE_CONTROLS),
        (DISCONNECT_REQUEST, cim.DocumentKind.METER_READINGS),
    ],
)
def test_a_document_of_another_kind_is_refused(document: bytes, kind: cim.DocumentKind) -> None:
    with pytest.raises(DecodeError, match="root"):
        cim.validate(document, kind)


@pytest.mark.parametrize(
    ("document", "kind", "problem"),
    [
        (
            METER_READINGS.replace(b"<value>212</value>", b"<value>2.5</value>"),
            cim.DocumentKind.METER_READINGS,
            "at /MeterReadings/MeterReading/IntervalBlocks/IntervalReadings[1]/value",
        ),
        (
            METER_READINGS.replace(b'ref="3.8.0"', b'ref="3.8"'),
            cim.DocumentKind.METER_READINGS,
            "ReadingQualityType",
        ),
        (
            LAST_GASP.replace(b"03:14:15Z", b"03:14:15"),
            cim.DocumentKind.END_DEVICE_EVENTS,
            "createdDateTime",
        ),
        (
            LAST_GASP.replace(b"<ede:mRID>event-000007</ede:mRID>", b""),
            cim.DocumentKind.END_DEVICE_EVENTS,
            "Assets",
        ),
        (
            DISCONNECT_REQUEST.replace(b'ref="3.31.0.23"', b'ref="disconnect"'),
            cim.DocumentKind.END_DEVICE_CONTROLS,
            "EndDeviceControlType",
        ),
        (
            DISCONNECT_REQUEST.replace(b"<Source>", b"<Sauce>").replace(b"</Source>", b"</Sauce>"),
            cim.DocumentKind.END_DEVICE_CONTROLS,
            "Sauce",
        ),
    ],
)
def test_validate_names_the_first_problem(
    document: bytes, kind: cim.DocumentKind, problem: str
) -> None:
    with pytest.raises(DecodeError, match="does not match") as raised:
        cim.validate(document, kind)
    assert problem in str(raised.value)


def test_an_unknown_payload_is_refused() -> None:
    # a MeterReadings payload in an EndDeviceControls message: the envelope checks its payload
    payload = METER_READINGS.split(b"?>", 1)[1]
    document = DISCONNECT_REQUEST.split(b"<Payload>")[0] + b"<Payload>" + payload + b"</Payload>"
    document += b"</RequestMessage>"
    with pytest.raises(DecodeError, match="does not match"):
        cim.validate(document, cim.DocumentKind.END_DEVICE_CONTROLS)


def test_validate_accepts_the_kind_by_its_name() -> None:
    cim.validate(LAST_GASP, "EndDeviceEvents")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        cim.validate(LAST_GASP, "Events")  # type: ignore[arg-type]
