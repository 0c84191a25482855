"""EndDeviceEvents documents (IEC 61968-9 shaped): what happened at meters.

An ``EndDeviceEvent`` is one event of one meter: when the meter recorded it, what it was (an
EndDeviceEventType code: ``3.26.0.85`` for the power failure a last gasp reports; see
``codes.EVENT_TYPES`` for openami's events), the meter (``Assets``), optionally its usage
point, and name/value details (the import register at the event, the new communication
unit's number).

``event_from_dlms`` turns an event an openami meter pushed (DLMS event code, value) into one.

Left out of 61968-9's EndDeviceEvents, because openami does not produce them: issuerID,
issuerTrackingID, severity, userID, status, Names and the EndDeviceEventType's spelled-out
parts (the code carries them).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from openami.errors import DecodeError
from openami.protocols.cim import _xml
from openami.protocols.cim._xml import END_DEVICE_CODE
from openami.protocols.cim.codes import end_device_event_type
from openami.protocols.dlms.notification import EventCode

__all__ = [
    "NAMESPACE",
    "EndDeviceEvent",
    "EndDeviceEventDetail",
    "EndDeviceEvents",
    "decode_end_device_events",
    "encode_end_device_events",
    "event_from_dlms",
]

NAMESPACE = "http://openami.org/cim/2026/EndDeviceEvents#"
ET.register_namespace("ede", NAMESPACE)  # the prefix written for it (a process-wide table)


@dataclass(frozen=True, slots=True)
class EndDeviceEventDetail:
    name: str  # an identifier, e.g. "value" or "commUnit"
    value: str


@dataclass(frozen=True, slots=True)
class EndDeviceEvent:
    mrid: str
    created: datetime  # when the meter recorded the event (aware)
    event_type: str  # EndDeviceEventType code, "3.26.0.85"
    meter_mrid: str  # the asset the event happened on
    usage_point_mrid: str | None = None
    details: tuple[EndDeviceEventDetail, ...] = ()
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class EndDeviceEvents:
    events: tuple[EndDeviceEvent, ...] = ()


def event_from_dlms(
    mrid: str,
    created: datetime,
    code: EventCode,
    value: int,
    meter_mrid: str,
    usage_point_mrid: str | None = None,
) -> EndDeviceEvent:
    """The CIM event for a DLMS event an openami meter pushed; its value travels as the
    detail ``value`` (the meaning depends on the event, see ``EventCode``)."""
    return EndDeviceEvent(
        mrid,
        created,
        end_device_event_type(code),
        meter_mrid,
        usage_point_mrid,
        (EndDeviceEventDetail("value", str(value)),),
    )


def _q(name: str) -> str:
    return _xml.qname(NAMESPACE, name)


def encode_end_device_events(document: EndDeviceEvents) -> bytes:
    """The XML of ``document``; ``LocalProtocolError`` if the schema would refuse it."""
    root = _xml.element(None, NAMESPACE, "EndDeviceEvents")
    for event in document.events:
        node = _xml.element(root, NAMESPACE, "EndDeviceEvent")
        _xml.write_time(node, NAMESPACE, "createdDateTime", event.created, "createdDateTime")
        _xml.write_identifier(node, NAMESPACE, "mRID", event.mrid, "EndDeviceEvent mRID")
        if event.reason is not None:
            _xml.write_text(node, NAMESPACE, "reason", event.reason, "EndDeviceEvent reason")
        asset = _xml.element(node, NAMESPACE, "Assets")
        _xml.write_identifier(asset, NAMESPACE, "mRID", event.meter_mrid, "Assets mRID")
        for detail in event.details:
            item = _xml.element(node, NAMESPACE, "EndDeviceEventDetails")
            _xml.write_identifier(item, NAMESPACE, "name", detail.name, "detail name")
            _xml.write_text(item, NAMESPACE, "value", detail.value, "detail value")
        _xml.write_ref(
            node,
            NAMESPACE,
            "EndDeviceEventType",
            event.event_type,
            END_DEVICE_CODE,
            "EndDeviceEventType",
        )
        if event.usage_point_mrid is not None:
            point = _xml.element(node, NAMESPACE, "UsagePoint")
            _xml.write_identifier(point, NAMESPACE, "mRID", event.usage_point_mrid, "UsagePoint")
    return _xml.serialize(root)


def decode_end_device_events(document: bytes) -> EndDeviceEvents:
    """The model of an EndDeviceEvents document; ``DecodeError`` for anything else."""
    root = _xml.parse(document)
    if root.tag != _q("EndDeviceEvents"):
        raise DecodeError(f"not an EndDeviceEvents document: the root is {root.tag[:80]!r}")
    children = _xml.Children(root, "EndDeviceEvents")
    events = tuple(_decode_event(node) for node in children.repeated(_q("EndDeviceEvent")))
    children.done()
    return EndDeviceEvents(events)


def _only_mrid(node: ET.Element, what: str) -> str:
    children = _xml.Children(node, what)
    mrid = _xml.read_identifier(children.required(_q("mRID")), f"{what} mRID")
    children.done()
    return mrid


def _decode_detail(node: ET.Element) -> EndDeviceEventDetail:
    children = _xml.Children(node, "EndDeviceEventDetails")
    name = _xml.read_identifier(children.required(_q("name")), "detail name")
    value = _xml.read_text(children.required(_q("value")), "detail value")
    children.done()
    return EndDeviceEventDetail(name, value)


def _decode_event(node: ET.Element) -> EndDeviceEvent:
    children = _xml.Children(node, "EndDeviceEvent")
    created = _xml.read_time(children.required(_q("createdDateTime")), "createdDateTime")
    mrid = _xml.read_identifier(children.required(_q("mRID")), "EndDeviceEvent mRID")
    reason_node = children.optional(_q("reason"))
    reason = None if reason_node is None else _xml.read_text(reason_node, "reason")
    meter = _only_mrid(children.required(_q("Assets")), "Assets")
    details = tuple(_decode_detail(n) for n in children.repeated(_q("EndDeviceEventDetails")))
    event_type = _xml.read_ref(
        children.required(_q("EndDeviceEventType")), END_DEVICE_CODE, "EndDeviceEventType"
    )
    point_node = children.optional(_q("UsagePoint"))
    point = None if point_node is None else _only_mrid(point_node, "UsagePoint")
    children.done()
    return EndDeviceEvent(mrid, created, event_type, meter, point, details, reason)
