"""The message envelope around CIM nouns: Header and Reply, shaped after IEC 61968-100.

A request is ``RequestMessage(Header, Payload)``; its answer is ``ResponseMessage(Header,
Reply, Payload?)``. The Header names the verb ("create" a control, "reply" to it), the noun
(which payload), when and by whom the message was made, its own id, and - in an answer - the
id of the message it answers (``CorrelationID``). The Reply says whether the request was
carried out: ``OK``, ``PARTIAL`` (some controls were, some were not: each failure is an
``Error`` naming the control) or ``FAILED``.

Left out of 61968-100's envelope, because nothing in openami uses them yet: Revision,
ReplayDetection, Context, AsyncReplyFlag, ReplyAddress, AckRequired, User, Comment and
Property in the Header; the Request element (get filters); Error's level, reason, xpath,
stackTrace and location; Reply's ID list and operation ids; and the EventMessage and
FaultMessage kinds. The noun is not a field: each message type carries one noun and the
decoder insists on it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.cim import _xml

__all__ = [
    "NAMESPACE",
    "Header",
    "Reply",
    "ReplyError",
    "Result",
    "Verb",
    "decode_header",
    "decode_reply",
    "encode_header",
    "encode_reply",
]

NAMESPACE = "http://openami.org/cim/2026/Message#"
ET.register_namespace("msg", NAMESPACE)  # the prefix written for it (a process-wide table)


class Verb(StrEnum):
    GET = "get"
    CREATE = "create"
    CANCEL = "cancel"
    REPLY = "reply"
    CREATED = "created"
    CANCELED = "canceled"  # sic: 61968-100 spells it with one l


class Result(StrEnum):
    OK = "OK"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Header:
    verb: Verb
    timestamp: datetime  # aware; written in UTC
    source: str  # the system that made the message
    message_id: str
    correlation_id: str | None = None  # the MessageID this message answers


@dataclass(frozen=True, slots=True)
class ReplyError:
    code: str
    details: str | None = None
    object_id: str | None = None  # the mRID of the control (or other object) it concerns


@dataclass(frozen=True, slots=True)
class Reply:
    result: Result
    errors: tuple[ReplyError, ...] = ()


def _q(name: str) -> str:
    return _xml.qname(NAMESPACE, name)


_E = TypeVar("_E", bound=StrEnum)


def _member(enum: type[_E], value: str, what: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        raise LocalProtocolError(f"{what} is not one of {[m.value for m in enum]}") from None


def encode_header(parent: ET.Element, header: Header, noun: str) -> None:
    node = _xml.element(parent, NAMESPACE, "Header")
    _xml.write_text(node, NAMESPACE, "Verb", _member(Verb, header.verb, "Verb"), "Header Verb")
    _xml.write_identifier(node, NAMESPACE, "Noun", noun, "Header Noun")
    _xml.write_time(node, NAMESPACE, "Timestamp", header.timestamp, "Header Timestamp")
    _xml.write_text(node, NAMESPACE, "Source", header.source, "Header Source")
    _xml.write_identifier(node, NAMESPACE, "MessageID", header.message_id, "Header MessageID")
    if header.correlation_id is not None:
        _xml.write_identifier(
            node, NAMESPACE, "CorrelationID", header.correlation_id, "Header CorrelationID"
        )


def decode_header(node: ET.Element, noun: str) -> Header:
    children = _xml.Children(node, "Header")
    verb_text = _xml.read_text(children.required(_q("Verb")), "Header Verb")
    try:
        verb = Verb(verb_text)
    except ValueError:
        raise DecodeError(f"Header Verb {verb_text[:40]!r} is not one openami knows") from None
    found = _xml.read_identifier(children.required(_q("Noun")), "Header Noun")
    if found != noun:
        raise DecodeError(f"Header Noun is {found[:40]!r}, expected {noun}")
    timestamp = _xml.read_time(children.required(_q("Timestamp")), "Header Timestamp")
    source = _xml.read_text(children.required(_q("Source")), "Header Source")
    message_id = _xml.read_identifier(children.required(_q("MessageID")), "Header MessageID")
    correlation = children.optional(_q("CorrelationID"))
    children.done()
    return Header(
        verb,
        timestamp,
        source,
        message_id,
        None if correlation is None else _xml.read_identifier(correlation, "CorrelationID"),
    )


def encode_reply(parent: ET.Element, reply: Reply) -> None:
    node = _xml.element(parent, NAMESPACE, "Reply")
    _xml.write_text(
        node, NAMESPACE, "Result", _member(Result, reply.result, "Result"), "Reply Result"
    )
    for error in reply.errors:
        item = _xml.element(node, NAMESPACE, "Error")
        _xml.write_identifier(item, NAMESPACE, "code", error.code, "Error code")
        if error.details is not None:
            _xml.write_text(item, NAMESPACE, "details", error.details, "Error details")
        if error.object_id is not None:
            _xml.write_identifier(item, NAMESPACE, "ID", error.object_id, "Error ID")


def decode_reply(node: ET.Element) -> Reply:
    children = _xml.Children(node, "Reply")
    result_text = _xml.read_text(children.required(_q("Result")), "Reply Result")
    try:
        result = Result(result_text)
    except ValueError:
        raise DecodeError(f"Reply Result {result_text[:40]!r} is not OK/PARTIAL/FAILED") from None
    errors = tuple(_decode_error(item) for item in children.repeated(_q("Error")))
    children.done()
    return Reply(result, errors)


def _decode_error(node: ET.Element) -> ReplyError:
    children = _xml.Children(node, "Error")
    code = _xml.read_identifier(children.required(_q("code")), "Error code")
    details = children.optional(_q("details"))
    object_id = children.optional(_q("ID"))
    children.done()
    return ReplyError(
        code,
        None if details is None else _xml.read_text(details, "Error details"),
        None if object_id is None else _xml.read_identifier(object_id, "Error ID"),
    )
