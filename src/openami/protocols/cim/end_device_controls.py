"""EndDeviceControls (IEC 61968-9 shaped) in request and response messages (61968-100 shaped).

A third party or the utility's own systems ask for controls with a ``RequestMessage`` (verb
``create``, noun ``EndDeviceControls``); the answer is a ``ResponseMessage`` (verb ``reply``,
``CorrelationID`` = the request's ``MessageID``) whose Reply says ``OK``, ``PARTIAL`` or
``FAILED``, with one Error per control that could not be carried out.

An ``EndDeviceControl`` asks for one kind of control (an EndDeviceControlType code, see
``codes.CONTROL_TYPES``: ``3.31.0.23`` opens the service switch) on one or more meters
(``EndDevices``), optionally within a ``scheduled`` interval (not before its start, not after
its end: the end becomes the head-end command's deadline) and with name/value ``details``
for the parameters some controls need (``intervalMinutes``, ``contractCurrentAmps``).
``details`` is openami's own addition, shaped like EndDeviceEventDetails.

Left out of 61968-9's EndDeviceControl: drProgramLevel, drProgramMandatory, issuerID,
issuerTrackingID, priceSignal, primaryDeviceTiming and secondaryDeviceTiming (demand
response timing; ``scheduled`` covers when a meter control may run), EndDeviceAction,
EndDeviceGroups, UsagePoints and UsagePointGroups (controls name meters one by one).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.cim import _xml, message
from openami.protocols.cim._xml import END_DEVICE_CODE
from openami.protocols.cim.message import Header, Reply

__all__ = [
    "NAMESPACE",
    "NOUN",
    "DateTimeInterval",
    "EndDeviceControl",
    "EndDeviceControlDetail",
    "EndDeviceControls",
    "RequestMessage",
    "ResponseMessage",
    "decode_request_message",
    "decode_response_message",
    "encode_request_message",
    "encode_response_message",
]

NAMESPACE = "http://openami.org/cim/2026/EndDeviceControls#"
NOUN = "EndDeviceControls"
ET.register_namespace("edc", NAMESPACE)  # the prefix written for it (a process-wide table)
_MSG = message.NAMESPACE


@dataclass(frozen=True, slots=True)
class DateTimeInterval:
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class EndDeviceControlDetail:
    name: str  # an identifier, e.g. "intervalMinutes"
    value: str


@dataclass(frozen=True, slots=True)
class EndDeviceControl:
    mrid: str
    control_type: str  # EndDeviceControlType code, "3.31.0.23"
    end_devices: tuple[str, ...]  # meter mRIDs, at least one
    scheduled: DateTimeInterval | None = None
    reason: str | None = None
    details: tuple[EndDeviceControlDetail, ...] = ()


@dataclass(frozen=True, slots=True)
class EndDeviceControls:
    controls: tuple[EndDeviceControl, ...]  # at least one


@dataclass(frozen=True, slots=True)
class RequestMessage:
    header: Header
    payload: EndDeviceControls


@dataclass(frozen=True, slots=True)
class ResponseMessage:
    header: Header
    reply: Reply
    payload: EndDeviceControls | None = None  # the controls as carried out, if echoed


def _q(name: str) -> str:
    return _xml.qname(NAMESPACE, name)


def _mq(name: str) -> str:
    return _xml.qname(_MSG, name)


# --- encoding ------------------------------------------------------------------------------


def encode_request_message(request: RequestMessage) -> bytes:
    """The XML of ``request``; ``LocalProtocolError`` if the schema would refuse it."""
    root = _xml.element(None, _MSG, "RequestMessage")
    message.encode_header(root, request.header, NOUN)
    _encode_controls(_xml.element(root, _MSG, "Payload"), request.payload)
    return _xml.serialize(root)


def encode_response_message(response: ResponseMessage) -> bytes:
    """The XML of ``response``; ``LocalProtocolError`` if the schema would refuse it."""
    root = _xml.element(None, _MSG, "ResponseMessage")
    message.encode_header(root, response.header, NOUN)
    message.encode_reply(root, response.reply)
    if response.payload is not None:
        _encode_controls(_xml.element(root, _MSG, "Payload"), response.payload)
    return _xml.serialize(root)


def _encode_controls(parent: ET.Element, payload: EndDeviceControls) -> None:
    if not payload.controls:
        raise LocalProtocolError("EndDeviceControls holds at least one EndDeviceControl")
    root = _xml.element(parent, NAMESPACE, NOUN)
    for control in payload.controls:
        node = _xml.element(root, NAMESPACE, "EndDeviceControl")
        _xml.write_identifier(node, NAMESPACE, "mRID", control.mrid, "EndDeviceControl mRID")
        if control.reason is not None:
            _xml.write_text(node, NAMESPACE, "reason", control.reason, "EndDeviceControl reason")
        if control.scheduled is not None:
            interval = _xml.element(node, NAMESPACE, "scheduledInterval")
            if control.scheduled.end is not None:
                _xml.write_time(interval, NAMESPACE, "end", control.scheduled.end, "end")
            if control.scheduled.start is not None:
                _xml.write_time(interval, NAMESPACE, "start", control.scheduled.start, "start")
        for detail in control.details:
            item = _xml.element(node, NAMESPACE, "EndDeviceControlDetails")
            _xml.write_identifier(item, NAMESPACE, "name", detail.name, "detail name")
            _xml.write_text(item, NAMESPACE, "value", detail.value, "detail value")
        _xml.write_ref(
            node,
            NAMESPACE,
            "EndDeviceControlType",
            control.control_type,
            END_DEVICE_CODE,
            "EndDeviceControlType",
        )
        if not control.end_devices:
            raise LocalProtocolError(f"control {control.mrid!r} names no EndDevices")
        for device in control.end_devices:
            item = _xml.element(node, NAMESPACE, "EndDevices")
            _xml.write_identifier(item, NAMESPACE, "mRID", device, "EndDevices mRID")


# --- decoding ------------------------------------------------------------------------------


def decode_request_message(document: bytes) -> RequestMessage:
    """The model of an EndDeviceControls RequestMessage; ``DecodeError`` for anything else."""
    root = _xml.parse(document)
    if root.tag != _mq("RequestMessage"):
        raise DecodeError(f"not a RequestMessage: the root is {root.tag[:80]!r}")
    children = _xml.Children(root, "RequestMessage")
    header = message.decode_header(children.required(_mq("Header")), NOUN)
    payload = _decode_payload(children.required(_mq("Payload")))
    children.done()
    return RequestMessage(header, payload)


def decode_response_message(document: bytes) -> ResponseMessage:
    """The model of an EndDeviceControls ResponseMessage; ``DecodeError`` for anything else."""
    root = _xml.parse(document)
    if root.tag != _mq("ResponseMessage"):
        raise DecodeError(f"not a ResponseMessage: the root is {root.tag[:80]!r}")
    children = _xml.Children(root, "ResponseMessage")
    header = message.decode_header(children.required(_mq("Header")), NOUN)
    reply = message.decode_reply(children.required(_mq("Reply")))
    payload_node = children.optional(_mq("Payload"))
    children.done()
    payload = None if payload_node is None else _decode_payload(payload_node)
    return ResponseMessage(header, reply, payload)


def _decode_payload(node: ET.Element) -> EndDeviceControls:
    outer = _xml.Children(node, "Payload")
    children = _xml.Children(outer.required(_q(NOUN)), NOUN)
    outer.done()
    controls = tuple(_decode_control(n) for n in children.repeated(_q("EndDeviceControl")))
    children.done()
    if not controls:
        raise DecodeError("EndDeviceControls holds no EndDeviceControl")
    return EndDeviceControls(controls)


def _decode_interval(node: ET.Element) -> DateTimeInterval:
    children = _xml.Children(node, "scheduledInterval")
    end = children.optional(_q("end"))
    start = children.optional(_q("start"))
    children.done()
    return DateTimeInterval(
        None if start is None else _xml.read_time(start, "scheduledInterval start"),
        None if end is None else _xml.read_time(end, "scheduledInterval end"),
    )


def _decode_detail(node: ET.Element) -> EndDeviceControlDetail:
    children = _xml.Children(node, "EndDeviceControlDetails")
    name = _xml.read_identifier(children.required(_q("name")), "detail name")
    value = _xml.read_text(children.required(_q("value")), "detail value")
    children.done()
    return EndDeviceControlDetail(name, value)


def _decode_device(node: ET.Element) -> str:
    children = _xml.Children(node, "EndDevices")
    mrid = _xml.read_identifier(children.required(_q("mRID")), "EndDevices mRID")
    children.done()
    return mrid


def _decode_control(node: ET.Element) -> EndDeviceControl:
    children = _xml.Children(node, "EndDeviceControl")
    mrid = _xml.read_identifier(children.required(_q("mRID")), "EndDeviceControl mRID")
    reason_node = children.optional(_q("reason"))
    interval_node = children.optional(_q("scheduledInterval"))
    details = tuple(_decode_detail(n) for n in children.repeated(_q("EndDeviceControlDetails")))
    control_type = _xml.read_ref(
        children.required(_q("EndDeviceControlType")), END_DEVICE_CODE, "EndDeviceControlType"
    )
    devices = tuple(_decode_device(n) for n in children.repeated(_q("EndDevices")))
    children.done()
    if not devices:
        raise DecodeError(f"EndDeviceControl {mrid!r} names no EndDevices")
    return EndDeviceControl(
        mrid,
        control_type,
        devices,
        None if interval_node is None else _decode_interval(interval_node),
        None if reason_node is None else _xml.read_text(reason_node, "reason"),
        details,
    )
