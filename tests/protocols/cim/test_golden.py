"""Golden documents, written by hand: the encoder must produce them (after canonicalisation,
so prefixes, attribute order and indentation do not matter), the decoder must read them
back into the same models, and they must match the published schemas."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from openami.protocols import cim
from openami.protocols.dlms.notification import EventCode

# A household meter (TEPCO-like): one register read and two 30-minute interval reads, the
# intervals ending 09:30 and 10:00 JST (00:30 and 01:00 UTC); the second was estimated by the
# MDMS after a gap.
METER_READINGS = b"""<?xml version="1.0" encoding="UTF-8"?>
<MeterReadings xmlns="http://openami.org/cim/2026/MeterReadings#">
  <MeterReading>
    <mRID>read-000001</mRID>
    <IntervalBlocks>
      <IntervalReadings>
        <timeStamp>2026-05-20T00:30:00Z</timeStamp>
        <value>212</value>
      </IntervalReadings>
      <IntervalReadings>
        <timeStamp>2026-05-20T01:00:00Z</timeStamp>
        <value>198</value>
        <ReadingQualities>
          <ReadingQualityType ref="3.8.0"/>
        </ReadingQualities>
      </IntervalReadings>
      <ReadingType ref="0.0.5.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0"/>
    </IntervalBlocks>
    <Meter>
      <mRID>meter-000042</mRID>
      <Names>
        <name>KX-42</name>
      </Names>
    </Meter>
    <Readings>
      <timeStamp>2026-05-20T01:00:00Z</timeStamp>
      <value>1234567</value>
      <ReadingType ref="0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"/>
    </Readings>
    <UsagePoint>
      <mRID>up-000042</mRID>
    </UsagePoint>
  </MeterReading>
  <ReadingType>
    <mRID>0.0.5.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0</mRID>
    <Names>
      <name>30-minute forward active energy (Wh)</name>
    </Names>
  </ReadingType>
  <ReadingType>
    <mRID>0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0</mRID>
    <Names>
      <name>forward active energy register (Wh)</name>
    </Names>
  </ReadingType>
</MeterReadings>
"""

_HALF_HOURLY = cim.interval_energy(30).mrid
METER_READINGS_MODEL = cim.MeterReadings(
    (
        cim.MeterReading(
            meter=cim.Meter("meter-000042", "KX-42"),
            usage_point=cim.UsagePoint("up-000042"),
            mrid="read-000001",
            readings=(
                cim.Reading(
                    cim.BULK_FORWARD_WH.mrid, datetime(2026, 5, 20, 1, 0, tzinfo=UTC), 1234567
                ),
            ),
            interval_blocks=(
                cim.IntervalBlock(
                    _HALF_HOURLY,
                    (
                        cim.IntervalReading(datetime(2026, 5, 20, 0, 30, tzinfo=UTC), 212),
                        cim.IntervalReading(
                            datetime(2026, 5, 20, 1, 0, tzinfo=UTC),
                            198,
                            (
                                cim.quality_code(
                                    cim.QualitySystem.MDM, cim.QualityCategory.ESTIMATED
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    ),
    (
        cim.ReadingType(_HALF_HOURLY, "30-minute forward active energy (Wh)"),
        cim.ReadingType(cim.BULK_FORWARD_WH.mrid, "forward active energy register (Wh)"),
    ),
)

# The last gasp of the same meter: a power failure, with the import register (Wh) the meter
# sent with it.
LAST_GASP = b"""<?xml version="1.0" encoding="UTF-8"?>
<ede:EndDeviceEvents xmlns:ede="http://openami.org/cim/2026/EndDeviceEvents#">
  <ede:EndDeviceEvent>
    <ede:createdDateTime>2026-05-20T03:14:15Z</ede:createdDateTime>
    <ede:mRID>event-000007</ede:mRID>
    <ede:Assets>
      <ede:mRID>meter-000042</ede:mRID>
    </ede:Assets>
    <ede:EndDeviceEventDetails>
      <ede:name>value</ede:name>
      <ede:value>1234789</ede:value>
    </ede:EndDeviceEventDetails>
    <ede:EndDeviceEventType ref="3.26.0.85"/>
    <ede:UsagePoint>
      <ede:mRID>up-000042</ede:mRID>
    </ede:UsagePoint>
  </ede:EndDeviceEvent>
</ede:EndDeviceEvents>
"""

LAST_GASP_MODEL = cim.EndDeviceEvents(
    (
        cim.event_from_dlms(
            "event-000007",
            datetime(2026, 5, 20, 3, 14, 15, tzinfo=UTC),
            EventCode.POWER_DOWN,
            1234789,
            "meter-000042",
            "up-000042",
        ),
    )
)

# A retailer's request to open the service switch of that meter by the end of the day (JST).
DISCONNECT_REQUEST = b"""<?xml version="1.0" encoding="UTF-8"?>
<RequestMessage xmlns="http://openami.org/cim/2026/Message#"
                xmlns:m="http://openami.org/cim/2026/EndDeviceControls#">
  <Header>
    <Verb>create</Verb>
    <Noun>EndDeviceControls</Noun>
    <Timestamp>2026-05-20T02:00:00Z</Timestamp>
    <Source>retailer-17 billing</Source>
    <MessageID>6f1c2a4e-8d1b-4c3e-9a55-0d2f4b8e7c10</MessageID>
  </Header>
  <Payload>
    <m:EndDeviceControls>
      <m:EndDeviceControl>
        <m:mRID>control-000101</m:mRID>
        <m:reason>move-out</m:reason>
        <m:scheduledInterval>
          <m:end>2026-05-20T15:00:00Z</m:end>
        </m:scheduledInterval>
        <m:EndDeviceControlType ref="3.31.0.23"/>
        <m:EndDevices>
          <m:mRID>meter-000042</m:mRID>
        </m:EndDevices>
      </m:EndDeviceControl>
    </m:EndDeviceControls>
  </Payload>
</RequestMessage>
"""

DISCONNECT_REQUEST_MODEL = cim.RequestMessage(
    cim.Header(
        cim.Verb.CREATE,
        datetime(2026, 5, 20, 2, 0, tzinfo=UTC),
        "retailer-17 billing",
        "6f1c2a4e-8d1b-4c3e-9a55-0d2f4b8e7c10",
    ),
    cim.EndDeviceControls(
        (
            cim.EndDeviceControl(
                "control-000101",
                cim.end_device_control_type(cim.ControlKind.DISCONNECT),
                ("meter-000042",),
                cim.DateTimeInterval(end=datetime(2026, 5, 20, 15, 0, tzinfo=UTC)),
                "move-out",
            ),
        )
    ),
)

# openami's answer: carried out.
DISCONNECT_REPLY = b"""<?xml version="1.0" encoding="UTF-8"?>
<ResponseMessage xmlns="http://openami.org/cim/2026/Message#">
  <Header>
    <Verb>reply</Verb>
    <Noun>EndDeviceControls</Noun>
    <Timestamp>2026-05-20T02:00:07Z</Timestamp>
    <Source>openami</Source>
    <MessageID>b3e0d7c2-5f4a-4e61-8c2d-7a9e1f3b6d45</MessageID>
    <CorrelationID>6f1c2a4e-8d1b-4c3e-9a55-0d2f4b8e7c10</CorrelationID>
  </Header>
  <Reply>
    <Result>OK</Result>
  </Reply>
</ResponseMessage>
"""

DISCONNECT_REPLY_MODEL = cim.ResponseMessage(
    cim.Header(
        cim.Verb.REPLY,
        datetime(2026, 5, 20, 2, 0, 7, tzinfo=UTC),
        "openami",
        "b3e0d7c2-5f4a-4e61-8c2d-7a9e1f3b6d45",
        "6f1c2a4e-8d1b-4c3e-9a55-0d2f4b8e7c10",
    ),
    cim.Reply(cim.Result.OK),
)

Encoder = Callable[[Any], bytes]
Decoder = Callable[[bytes], object]

GOLDEN = [
    pytest.param(
        METER_READINGS,
        METER_READINGS_MODEL,
        cim.encode_meter_readings,
        cim.decode_meter_readings,
        cim.DocumentKind.METER_READINGS,
        id="meter-readings",
    ),
    pytest.param(
        LAST_GASP,
        LAST_GASP_MODEL,
        cim.encode_end_device_events,
        cim.decode_end_device_events,
        cim.DocumentKind.END_DEVICE_EVENTS,
        id="last-gasp",
    ),
    pytest.param(
        DISCONNECT_REQUEST,
        DISCONNECT_REQUEST_MODEL,
        cim.encode_request_message,
        cim.decode_request_message,
        cim.DocumentKind.END_DEVICE_CONTROLS,
        id="disconnect-request",
    ),
    pytest.param(
        DISCONNECT_REPLY,
        DISCONNECT_REPLY_MODEL,
        cim.encode_response_message,
        cim.decode_response_message,
        cim.DocumentKind.END_DEVICE_CONTROLS,
        id="disconnect-reply",
    ),
]


def canonical(document: bytes) -> str:
    return ET.canonicalize(document.decode(), strip_text=True, rewrite_prefixes=True)


@pytest.mark.parametrize(("golden", "model", "encode", "decode", "kind"), GOLDEN)
def test_the_encoder_writes_the_golden_document(
    golden: bytes, model: object, encode: Encoder, decode: Decoder, kind: cim.DocumentKind
) -> None:
    assert canonical(encode(model)) == canonical(golden)


@pytest.mark.parametrize(("golden", "model", "encode", "decode", "kind"), GOLDEN)
def test_the_decoder_reads_the_golden_document(
    golden: bytes, model: object, encode: Encoder, decode: Decoder, kind: cim.DocumentKind
) -> None:
    assert decode(golden) == model


@pytest.mark.parametrize(("golden", "model", "encode", "decode", "kind"), GOLDEN)
def test_golden_documents_match_the_schema(
    golden: bytes, model: object, encode: Encoder, decode: Decoder, kind: cim.DocumentKind
) -> None:
    cim.validate(golden, kind)
    cim.validate(encode(model), kind)


def test_the_golden_codes_are_the_standards() -> None:
    # the identifiers the golden documents spell out, built from their named fields
    assert _HALF_HOURLY == "0.0.5.4.1.1.12.0.0.0.0.0.0.0.0.0.72.0"
    assert cim.BULK_FORWARD_WH.mrid == "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.0.72.0"
    assert cim.end_device_event_type(EventCode.POWER_DOWN) == "3.26.0.85"
    assert cim.end_device_control_type(cim.ControlKind.DISCONNECT) == "3.31.0.23"


def test_a_time_with_an_offset_is_the_same_moment_in_utc() -> None:
    jst = LAST_GASP.replace(b"2026-05-20T03:14:15Z", b"2026-05-20T12:14:15+09:00")
    assert cim.decode_end_device_events(jst) == LAST_GASP_MODEL
    assert canonical(cim.encode_end_device_events(cim.decode_end_device_events(jst))) == (
        canonical(LAST_GASP)
    )
