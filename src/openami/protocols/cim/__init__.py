"""IEC 61968-9 shaped CIM XML messages for Route C, with openami's own published XSDs.

Three kinds of document, each a tree of frozen dataclasses with an encoder
(``model -> bytes``) and a decoder (``bytes -> model``, raising only ``DecodeError``):

* ``MeterReadings`` - register and interval reads (``encode_meter_readings``);
* ``EndDeviceEvents`` - meter events such as the last gasp (``encode_end_device_events``);
* ``EndDeviceControls`` in a ``RequestMessage`` and its ``ResponseMessage`` (61968-100
  shaped envelope: Header, Reply, Payload).

``validate(document, kind)`` checks a document against the XSDs in ``schemas/`` (target
namespaces ``http://openami.org/cim/2026/...#``). Those schemas are shaped after IEC
61968-9 and 61968-100 but are openami's own: they keep what a utility's meter data and
control exchange needs, and each module says what it leaves out.

Codes are built from named tables: reading type mRIDs from ``ReadingTypeId``'s 18 fields,
EndDeviceEventType and EndDeviceControlType codes from ``codes``, whose tables map openami's
DLMS events and head-end controls to them and say how sure we are of each.

Sans-IO: no clocks, files or sockets at encode/decode time (the schemas are read once, on
first ``validate``).
"""

from openami.protocols.cim.codes import (
    CONTROL_TYPES,
    EVENT_TYPES,
    CodeChoice,
    ControlKind,
    EndDeviceCode,
    EndDeviceDomain,
    EndDeviceEventOrAction,
    EndDeviceSubdomain,
    EndDeviceType,
    Provenance,
    control_kind,
    dlms_event_code,
    end_device_control_type,
    end_device_event_type,
)
from openami.protocols.cim.end_device_controls import NAMESPACE as END_DEVICE_CONTROLS_NAMESPACE
from openami.protocols.cim.end_device_controls import (
    DateTimeInterval,
    EndDeviceControl,
    EndDeviceControlDetail,
    EndDeviceControls,
    RequestMessage,
    ResponseMessage,
    decode_request_message,
    decode_response_message,
    encode_request_message,
    encode_response_message,
)
from openami.protocols.cim.end_device_events import NAMESPACE as END_DEVICE_EVENTS_NAMESPACE
from openami.protocols.cim.end_device_events import (
    EndDeviceEvent,
    EndDeviceEventDetail,
    EndDeviceEvents,
    decode_end_device_events,
    encode_end_device_events,
    event_from_dlms,
)
from openami.protocols.cim.message import NAMESPACE as MESSAGE_NAMESPACE
from openami.protocols.cim.message import Header, Reply, ReplyError, Result, Verb
from openami.protocols.cim.meter_readings import NAMESPACE as METER_READINGS_NAMESPACE
from openami.protocols.cim.meter_readings import (
    IntervalBlock,
    IntervalReading,
    Meter,
    MeterReading,
    MeterReadings,
    Reading,
    ReadingType,
    UsagePoint,
    decode_meter_readings,
    encode_meter_readings,
)
from openami.protocols.cim.reading_type import (
    BULK_FORWARD_WH,
    BULK_REVERSE_WH,
    Accumulation,
    Aggregate,
    Commodity,
    Currency,
    FlowDirection,
    MacroPeriod,
    MeasurementKind,
    MeasuringPeriod,
    Multiplier,
    Phase,
    QualityCategory,
    QualitySystem,
    ReadingTypeId,
    Unit,
    interval_energy,
    quality_code,
)
from openami.protocols.cim.schema import DocumentKind, schema_path, validate

__all__ = [
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
