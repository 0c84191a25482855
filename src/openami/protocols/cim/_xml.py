"""XML plumbing shared by the CIM codecs: a parser that refuses what it need not trust, the
serialiser, and strict readers and writers for the few value kinds the documents hold.

Parsing goes through expat directly, not ``xml.etree.ElementTree.fromstring``: only there can
a DOCTYPE be refused before anything in it is looked at, which is what keeps entity expansion
("billion laughs") and external entities out. Our documents never need a DTD, so any DOCTYPE
or entity declaration is refused outright (defusedxml's policy, without the dependency).

Writing refuses what XML cannot carry back unchanged: characters outside XML 1.0, and carriage
returns, which every parser turns into line feeds. That, and UTC times, is what makes
``decode(encode(model)) == model`` hold for every model the encoder accepts.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pyexpat import ExpatError, ParserCreate
from typing import NoReturn

from openami.errors import DecodeError, LocalProtocolError

__all__ = [
    "END_DEVICE_CODE",
    "IDENTIFIER",
    "QUALITY_CODE",
    "READING_TYPE_CODE",
    "Children",
    "element",
    "parse",
    "qname",
    "read_code",
    "read_identifier",
    "read_int",
    "read_ref",
    "read_text",
    "read_time",
    "serialize",
    "write_code",
    "write_identifier",
    "write_int",
    "write_ref",
    "write_text",
    "write_time",
]

# Our deepest document (a RequestMessage) nests eight elements; the margin is generous, the
# limit is there so that no input can make a reader, or the schema validator, recurse deeply.
_MAX_DEPTH = 32

# The patterns of message.xsd, written with [0-9] because Python's \d, like XSD's, also
# matches digits of other scripts, which int() would then quietly accept.
IDENTIFIER = re.compile(r"[^ \t\n\r]+")
READING_TYPE_CODE = re.compile(r"-?[0-9]{1,9}(\.-?[0-9]{1,9}){17}")
END_DEVICE_CODE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9}){3}")
QUALITY_CODE = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9}){2}")

_NOT_XML = re.compile("[^\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_SPACE = " \t\n\r"
_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
    r"(Z|([+-])([0-9]{2}):([0-9]{2}))"
)
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")
_INT64 = range(-(2**63), 2**63)
_MAX_OFFSET = timedelta(hours=14)  # xs:dateTime's bound on a time zone offset


def qname(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


# --- parsing -------------------------------------------------------------------------------


def _refuse_doctype(*_: object) -> NoReturn:
    raise DecodeError("document has a DOCTYPE; DTDs and entities are refused")


def _refuse_entity(*_: object) -> NoReturn:
    raise DecodeError("document declares an entity; DTDs and entities are refused")


def _tag(name: str) -> str:
    # expat reports "uri}local" with namespace_separator="}"; ElementTree spells "{uri}local",
    # which cannot hold a namespace with a "}" in it (no openami namespace has one)
    if name.count("}") > 1:
        raise DecodeError("a namespace name holds '}'")
    return "{" + name if "}" in name else name


def parse(document: bytes) -> ET.Element:
    """The root element of ``document``; ``DecodeError`` if it is not well-formed XML, has a
    DOCTYPE or entity declaration, or nests deeper than any openami document does."""
    if not isinstance(document, bytes | bytearray | memoryview):
        raise DecodeError(f"a CIM document is bytes, not {type(document).__name__}")
    builder = ET.TreeBuilder()
    parser = ParserCreate(namespace_separator="}")
    depth = 0

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth > _MAX_DEPTH:
            raise DecodeError(f"document nests deeper than {_MAX_DEPTH} elements")
        builder.start(_tag(name), {_tag(key): value for key, value in attributes.items()})

    def end(name: str) -> None:
        nonlocal depth
        depth -= 1
        builder.end(_tag(name))

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_entity
    parser.buffer_text = True
    try:
        parser.Parse(bytes(document), True)
    except ExpatError as exc:
        raise DecodeError(f"not well-formed XML: {exc}") from None
    except (ValueError, LookupError) as exc:  # an encoding Python or expat cannot read
        raise DecodeError(f"not readable XML: {exc}") from None
    return builder.close()


class Children:
    """The children of an element-only element, taken in schema order.

    Each ``optional``/``required``/``repeated`` call consumes matching children from the
    front; ``done`` refuses whatever is left. This is an ``xs:sequence`` check without a
    schema: out-of-order, unknown or surplus elements are errors, not silently dropped data.
    """

    def __init__(self, parent: ET.Element, what: str) -> None:
        if (parent.text or "").strip(_XML_SPACE):
            raise DecodeError(f"{what} holds text where only elements belong")
        self._items = list(parent)
        for child in self._items:
            if (child.tail or "").strip(_XML_SPACE):
                raise DecodeError(f"{what} holds text where only elements belong")
        self._next = 0
        self._what = what

    def optional(self, tag: str) -> ET.Element | None:
        if self._next < len(self._items) and self._items[self._next].tag == tag:
            self._next += 1
            return self._items[self._next - 1]
        return None

    def required(self, tag: str) -> ET.Element:
        found = self.optional(tag)
        if found is None:
            if self._next < len(self._items):
                there = _local(self._items[self._next].tag)
                raise DecodeError(f"{self._what} holds {there} where {_local(tag)} belongs")
            raise DecodeError(f"{self._what} lacks {_local(tag)}")
        return found

    def repeated(self, tag: str) -> Iterator[ET.Element]:
        while (found := self.optional(tag)) is not None:
            yield found

    def done(self) -> None:
        if self._next < len(self._items):
            extra = self._items[self._next].tag
            raise DecodeError(f"{self._what} holds an unexpected {_local(extra)}")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def read_text(leaf: ET.Element, what: str) -> str:
    if len(leaf):
        raise DecodeError(f"{what} holds elements where only text belongs")
    return leaf.text or ""


def read_identifier(leaf: ET.Element, what: str) -> str:
    text = read_text(leaf, what)
    if not IDENTIFIER.fullmatch(text):
        raise DecodeError(f"{what} is not an identifier (empty, or holds white space)")
    return text


def read_int(leaf: ET.Element, what: str) -> int:
    text = read_text(leaf, what).strip(_XML_SPACE)
    if not _INTEGER.fullmatch(text) or (value := int(text)) not in _INT64:
        raise DecodeError(f"{what} is not a 64-bit integer: {text[:40]!r}")
    return value


def read_time(leaf: ET.Element, what: str) -> datetime:
    """A UTC ``datetime`` from an ``xs:dateTime`` that states its offset."""
    text = read_text(leaf, what).strip(_XML_SPACE)
    match = _TIME.fullmatch(text)
    if match is None:
        raise DecodeError(f"{what} is not a date and time with an offset: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, zone, sign, oh, om = match.groups()
    try:
        offset = timedelta()
        if zone != "Z":
            offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
            if abs(offset) > _MAX_OFFSET:
                raise ValueError("offset beyond 14 hours")
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=timezone(offset),
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise DecodeError(f"{what} is not a valid date and time {text!r}: {exc}") from None


def read_code(leaf: ET.Element, pattern: re.Pattern[str], what: str) -> str:
    text = read_text(leaf, what)
    if not pattern.fullmatch(text):
        raise DecodeError(f"{what} is not a valid code: {text[:60]!r}")
    return text


def read_ref(leaf: ET.Element, pattern: re.Pattern[str], what: str) -> str:
    """The ``ref`` attribute of an empty reference element such as ``<ReadingType ref=.../>``."""
    if len(leaf) or (leaf.text or "").strip(_XML_SPACE):
        raise DecodeError(f"{what} is a reference and holds nothing but its ref")
    ref = leaf.get("ref")
    if ref is None or not pattern.fullmatch(ref):
        raise DecodeError(f"{what} has no valid ref: {(ref or '')[:60]!r}")
    return ref


# --- writing -------------------------------------------------------------------------------


def element(parent: ET.Element | None, namespace: str, name: str) -> ET.Element:
    tag = qname(namespace, name)
    return ET.Element(tag) if parent is None else ET.SubElement(parent, tag)


def write_text(parent: ET.Element, namespace: str, name: str, value: str, what: str) -> None:
    if not isinstance(value, str):
        raise LocalProtocolError(f"{what} is {type(value).__name__}, not str")
    if _NOT_XML.search(value):  # carriage returns included: parsers turn them into \n
        raise LocalProtocolError(f"{what} holds a character XML cannot carry unchanged")
    element(parent, namespace, name).text = value


def write_identifier(parent: ET.Element, namespace: str, name: str, value: str, what: str) -> None:
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise LocalProtocolError(f"{what} must be a non-empty identifier without white space")
    write_text(parent, namespace, name, value, what)


def write_int(parent: ET.Element, namespace: str, name: str, value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in _INT64:
        raise LocalProtocolError(f"{what} must be a 64-bit integer, not {value!r}")
    element(parent, namespace, name).text = str(int(value))


def write_time(parent: ET.Element, namespace: str, name: str, value: datetime, what: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise LocalProtocolError(f"{what} must be an aware datetime (naive times are ambiguous)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise LocalProtocolError(f"{what} cannot be expressed in UTC: {value!r}") from None
    element(parent, namespace, name).text = utc.replace(tzinfo=None).isoformat() + "Z"


def write_code(
    parent: ET.Element, namespace: str, name: str, value: str, pattern: re.Pattern[str], what: str
) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise LocalProtocolError(f"{what} is not a valid code: {value!r}")
    element(parent, namespace, name).text = value


def write_ref(
    parent: ET.Element, namespace: str, name: str, value: str, pattern: re.Pattern[str], what: str
) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise LocalProtocolError(f"{what} is not a valid code: {value!r}")
    element(parent, namespace, name).set("ref", value)


def serialize(root: ET.Element) -> bytes:
    """The document as UTF-8 with an XML declaration. Elements carry the prefixes registered
    for their namespaces (``mr:``, ``ede:``, ``edc:``, ``msg:``), declared on the root: a
    default namespace is not an option, as ElementTree then refuses unqualified attributes
    such as ``ref``."""
    document: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return document
