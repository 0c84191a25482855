"""Checking documents against openami's published CIM schemas (``schemas/*.xsd``).

The decoders already refuse what they cannot turn into a model; ``validate`` is the other,
independent check: the document against the XSD a third party would use. The tests run every
encoded document through it, so the encoder and the published schema cannot drift apart.

The document is parsed by the same DTD-refusing parser as the decoders, and only the parsed
tree is handed to xmlschema, so no input reaches a second XML parser; the schemas are loaded
from the package's own files, with xmlschema kept to local files (no network).
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache
from importlib.resources import files
from pathlib import Path

import xmlschema

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.cim import _xml, message
from openami.protocols.cim import end_device_controls as edc
from openami.protocols.cim import end_device_events as ede
from openami.protocols.cim import meter_readings as mr

__all__ = ["DocumentKind", "schema_path", "validate"]


class DocumentKind(StrEnum):
    METER_READINGS = "MeterReadings"
    END_DEVICE_EVENTS = "EndDeviceEvents"
    END_DEVICE_CONTROLS = "EndDeviceControls"  # a RequestMessage or ResponseMessage


# kind: (schema file, the root elements a document of that kind may have)
_KINDS: dict[DocumentKind, tuple[str, frozenset[str]]] = {
    DocumentKind.METER_READINGS: (
        "meter_readings.xsd",
        frozenset({_xml.qname(mr.NAMESPACE, "MeterReadings")}),
    ),
    DocumentKind.END_DEVICE_EVENTS: (
        "end_device_events.xsd",
        frozenset({_xml.qname(ede.NAMESPACE, "EndDeviceEvents")}),
    ),
    DocumentKind.END_DEVICE_CONTROLS: (
        "end_device_controls.xsd",
        frozenset(_xml.qname(message.NAMESPACE, r) for r in ("RequestMessage", "ResponseMessage")),
    ),
}
assert set(_KINDS) == set(DocumentKind)
_NAMESPACES = re.compile(r"\{[^}]*\}")
# the Noun each kind's documents are, so that a kind names the XSD's root or payload element
assert DocumentKind.END_DEVICE_CONTROLS.value == edc.NOUN


def schema_path(kind: DocumentKind) -> Path:
    """Where the XSD for ``kind`` is installed (for publishing it, or for a peer's tools)."""
    directory = files("openami.protocols.cim") / "schemas"
    # openami installs as plain files (a wheel unpacked, or an editable checkout); xmlschema
    # resolves the xs:import of message.xsd relative to this path
    return Path(str(directory)) / _KINDS[DocumentKind(kind)][0]


@cache
def _schema(kind: DocumentKind) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(schema_path(kind)), allow="local")


def validate(document: bytes, kind: DocumentKind) -> None:
    """Check ``document`` against the schema of ``kind``; ``DecodeError`` naming the first
    problem (and where it is) if the document is not one."""
    try:
        kind = DocumentKind(kind)
    except ValueError:
        raise LocalProtocolError(f"no CIM document kind {kind!r}") from None
    root = _xml.parse(document)
    schema_file, roots = _KINDS[kind]
    if root.tag not in roots:
        raise DecodeError(f"not a {kind.value} document: the root is {root.tag[:80]!r}")
    try:
        error = next(iter(_schema(kind).iter_errors(root)), None)
    except (xmlschema.XMLSchemaException, ValueError, TypeError) as exc:
        raise DecodeError(f"{kind.value} document could not be checked: {exc}") from None
    if error is not None:
        # paths name elements as {namespace}local; the local names are what a reader needs
        where = f" at {_NAMESPACES.sub('', error.path)}" if error.path else ""
        reason = error.reason or "invalid"
        raise DecodeError(f"{kind.value} document does not match {schema_file}: {reason}{where}")
