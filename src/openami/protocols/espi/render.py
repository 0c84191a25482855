"""Green Button documents: ESPI resources wrapped in Atom (RFC 4287) feeds and entries.

A Download My Data feed holds one entry per resource: the usage point, its local time
parameters, and per channel (import, export) the meter reading, its reading type and one
interval block per day. Entries find each other through links (``self``, ``up`` and
``related`` hrefs on the ESPI resource paths, see ``paths``), which is how Green Button
readers put the graph back together.

Rendering is pure: the ``published``/``updated`` stamps are passed in (aware datetimes,
written in UTC), ids derive from hrefs, and element and attribute order is fixed, so the
same values always give the same bytes.

What the Atom schema of the Green Button Alliance shapes here: every ``link`` has a ``type``
(the schema makes it required, RFC 4287 does not), an entry has at least two links (self and
up), and a feed has no ``published`` element (the schema's feed type has none).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from openami.errors import LocalProtocolError
from openami.protocols.espi import content
from openami.protocols.espi.model import (
    ApplicationInformationInfo,
    AuthorizationInfo,
    IntervalBlock,
    LocalTimeParameters,
    MeterReadingInfo,
    ReadingTypeInfo,
    UsagePointInfo,
    check_text,
)
from openami.protocols.espi.paths import (
    collection_path,
    entry_id,
    entry_type,
    feed_type,
    resource_path,
)

__all__ = [
    "ATOM_NS",
    "Resource",
    "application_information_entry",
    "atom_time",
    "authorization_entry",
    "entry_document",
    "usage_feed",
]

ATOM_NS = "http://www.w3.org/2005/Atom"
# Atom content holding one XML element (RFC 4287 4.1.3.3: an XML media type).
CONTENT_TYPE = "application/xml"

Resource = (
    UsagePointInfo
    | MeterReadingInfo
    | ReadingTypeInfo
    | IntervalBlock
    | LocalTimeParameters
    | ApplicationInformationInfo
    | AuthorizationInfo
)


@dataclass(frozen=True, slots=True)
class _Link:
    rel: str
    href: str
    type: str


@dataclass(frozen=True, slots=True)
class _Entry:
    links: tuple[_Link, ...]  # self first: the entry's id derives from it
    title: str
    body: ET.Element


def atom_time(moment: datetime) -> str:
    """An aware datetime as an Atom date (UTC, ``Z``); a naive one is refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise LocalProtocolError(f"Atom dates need an aware datetime, not {moment!r}")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _base(base_url: str) -> str:
    check_text("base URL", base_url)
    if any(c.isspace() for c in base_url):
        raise LocalProtocolError(f"base URL {base_url!r} holds white space")
    return base_url.rstrip("/")


def _need(what: str, value: str | None) -> str:
    if value is None:
        raise LocalProtocolError(f"this entry's links need {what}")
    return value


def _own_links(base: str, resource: str, resource_id: str, **parents: str) -> list[_Link]:
    return [
        _Link("self", base + resource_path(resource, resource_id, **parents), entry_type(resource)),
        _Link("up", base + collection_path(resource, **parents), feed_type(resource)),
    ]


def _usage_point_entry(
    point: UsagePointInfo, base: str, subscription: str, local_time_id: str | None
) -> _Entry:
    links = _own_links(base, "UsagePoint", point.id, subscription=subscription)
    links.append(
        _Link(
            "related",
            base + collection_path("MeterReading", subscription=subscription, usage_point=point.id),
            feed_type("MeterReading"),
        )
    )
    if local_time_id is not None:
        links.append(
            _Link(
                "related",
                base + resource_path("LocalTimeParameters", local_time_id),
                entry_type("LocalTimeParameters"),
            )
        )
    return _Entry(tuple(links), point.title, content.usage_point(point))


def _meter_reading_entry(
    reading: MeterReadingInfo, base: str, subscription: str, usage_point: str
) -> _Entry:
    parents = {"subscription": subscription, "usage_point": usage_point}
    links = _own_links(base, "MeterReading", reading.id, **parents)
    links.append(
        _Link(
            "related",
            base + collection_path("IntervalBlock", meter_reading=reading.id, **parents),
            feed_type("IntervalBlock"),
        )
    )
    links.append(
        _Link(
            "related",
            base + resource_path("ReadingType", reading.reading_type.id),
            entry_type("ReadingType"),
        )
    )
    return _Entry(tuple(links), reading.title, content.meter_reading(reading))


def _reading_type_entry(kind: ReadingTypeInfo, base: str) -> _Entry:
    links = _own_links(base, "ReadingType", kind.id)
    return _Entry(tuple(links), kind.title, content.reading_type(kind))


def _interval_block_entry(
    block: IntervalBlock, base: str, subscription: str, usage_point: str, meter_reading: str
) -> _Entry:
    links = _own_links(
        base,
        "IntervalBlock",
        block.id,
        subscription=subscription,
        usage_point=usage_point,
        meter_reading=meter_reading,
    )
    return _Entry(tuple(links), f"Interval block {block.id}", content.interval_block(block))


def _local_time_entry(params: LocalTimeParameters, base: str) -> _Entry:
    links = _own_links(base, "LocalTimeParameters", params.id)
    return _Entry(tuple(links), params.title, content.local_time_parameters(params))


def _application_entry(app: ApplicationInformationInfo, base: str) -> _Entry:
    links = _own_links(base, "ApplicationInformation", app.id)
    return _Entry(tuple(links), app.client_name, content.application_information(app))


def _authorization_entry(auth: AuthorizationInfo, base: str) -> _Entry:
    links = _own_links(base, "Authorization", auth.id)
    if auth.application_information_id is not None:
        links.append(
            _Link(
                "related",
                base + resource_path("ApplicationInformation", auth.application_information_id),
                entry_type("ApplicationInformation"),
            )
        )
    return _Entry(tuple(links), f"Authorization {auth.id}", content.authorization(auth))


def _entry_element(entry: _Entry, published: str, updated: str, *, root: bool) -> ET.Element:
    # A literal xmlns attribute makes Atom the default namespace of the document root
    # without ElementTree's global prefix registry (see content.py).
    element = ET.Element("entry", {"xmlns": ATOM_NS} if root else {})
    ET.SubElement(element, "id").text = entry_id(entry.links[0].href)
    for link in entry.links:
        ET.SubElement(element, "link", {"href": link.href, "rel": link.rel, "type": link.type})
    ET.SubElement(element, "title", {"type": "text"}).text = entry.title
    ET.SubElement(element, "content", {"type": CONTENT_TYPE}).append(entry.body)
    ET.SubElement(element, "published").text = published
    ET.SubElement(element, "updated").text = updated
    return element


def _serialise(root: ET.Element) -> bytes:
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def usage_feed(
    *,
    subscription_id: str,
    usage_point: UsagePointInfo,
    local_time: LocalTimeParameters,
    meter_readings: Sequence[MeterReadingInfo],
    published: datetime,
    updated: datetime,
    base_url: str = "",
    title: str = "Green Button Download My Data",
) -> bytes:
    """The Download My Data document of one usage point: an Atom feed with the usage point,
    its local time parameters and, per meter reading (channel), the meter reading, its
    reading type and its interval blocks. ``base_url`` (e.g.
    ``https://example.jp/DataCustodian``) prefixes every href; empty gives relative hrefs.
    """
    base = _base(base_url)
    check_text("feed title", title)
    stamps = atom_time(published), atom_time(updated)
    if len({m.id for m in meter_readings}) != len(meter_readings):
        raise LocalProtocolError("two meter readings of one usage point share an id")
    entries = [
        _usage_point_entry(usage_point, base, subscription_id, local_time.id),
        _local_time_entry(local_time, base),
    ]
    reading_types: dict[str, ReadingTypeInfo] = {}
    for reading in meter_readings:
        entries.append(_meter_reading_entry(reading, base, subscription_id, usage_point.id))
        kind = reading.reading_type
        known = reading_types.get(kind.id)
        if known is None:
            reading_types[kind.id] = kind
            entries.append(_reading_type_entry(kind, base))
        elif known != kind:
            raise LocalProtocolError(f"two different reading types share the id {kind.id}")
        entries.extend(
            _interval_block_entry(block, base, subscription_id, usage_point.id, reading.id)
            for block in reading.blocks
        )

    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    self_href = base + resource_path("Subscription", subscription_id)
    ET.SubElement(feed, "id").text = entry_id(self_href)
    ET.SubElement(feed, "title", {"type": "text"}).text = title
    ET.SubElement(feed, "updated").text = stamps[1]
    ET.SubElement(
        feed, "link", {"href": self_href, "rel": "self", "type": entry_type("Subscription")}
    )
    for entry in entries:
        feed.append(_entry_element(entry, *stamps, root=False))
    return _serialise(feed)


def entry_document(
    resource: Resource,
    *,
    published: datetime,
    updated: datetime,
    base_url: str = "",
    subscription_id: str | None = None,
    usage_point_id: str | None = None,
    meter_reading_id: str | None = None,
    local_time_id: str | None = None,
) -> bytes:
    """One resource as an Atom entry document (the per-resource endpoints). Resources under
    a subscription need their parents' ids for their links: a usage point needs
    ``subscription_id`` (and ``local_time_id`` for its related LocalTimeParameters link), a
    meter reading also ``usage_point_id``, an interval block also ``meter_reading_id``."""
    base = _base(base_url)
    entry: _Entry
    if isinstance(resource, UsagePointInfo):
        entry = _usage_point_entry(
            resource, base, _need("subscription_id", subscription_id), local_time_id
        )
    elif isinstance(resource, MeterReadingInfo):
        entry = _meter_reading_entry(
            resource,
            base,
            _need("subscription_id", subscription_id),
            _need("usage_point_id", usage_point_id),
        )
    elif isinstance(resource, IntervalBlock):
        entry = _interval_block_entry(
            resource,
            base,
            _need("subscription_id", subscription_id),
            _need("usage_point_id", usage_point_id),
            _need("meter_reading_id", meter_reading_id),
        )
    elif isinstance(resource, ReadingTypeInfo):
        entry = _reading_type_entry(resource, base)
    elif isinstance(resource, LocalTimeParameters):
        entry = _local_time_entry(resource, base)
    elif isinstance(resource, ApplicationInformationInfo):
        entry = _application_entry(resource, base)
    elif isinstance(resource, AuthorizationInfo):
        entry = _authorization_entry(resource, base)
    else:
        raise LocalProtocolError(f"no ESPI entry for {type(resource).__name__}")
    return _serialise(_entry_element(entry, atom_time(published), atom_time(updated), root=True))


def application_information_entry(
    app: ApplicationInformationInfo, *, published: datetime, updated: datetime, base_url: str = ""
) -> bytes:
    """The ApplicationInformation entry document of one registered application."""
    return entry_document(app, published=published, updated=updated, base_url=base_url)


def authorization_entry(
    auth: AuthorizationInfo, *, published: datetime, updated: datetime, base_url: str = ""
) -> bytes:
    """The Authorization entry document of one consent."""
    return entry_document(auth, published=published, updated=updated, base_url=base_url)
