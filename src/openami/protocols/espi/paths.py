"""ESPI resource paths, Atom link types and entry ids.

Every ESPI resource lives under ``/espi/1_1/resource``. Usage data hangs under the
subscription that authorises it::

    Subscription/{subscriptionId}/UsagePoint/{usagePointId}
        /MeterReading/{meterReadingId}
            /IntervalBlock/{intervalBlockId}

while shared resources have their own roots (``ReadingType/{id}``,
``LocalTimeParameters/{id}``, ``ApplicationInformation/{id}``, ``Authorization/{id}``).
An entry's ``up`` link names the collection it belongs to (the path without its last id) and
``related`` links name the collections and entries under or beside it; Atom ``type``
attributes are ``espi-entry/{Resource}`` for one resource and ``espi-feed/{Resource}`` for a
collection, as Green Button files carry them.

Entry ids are name-based (version 5) UUIDs of the resource's full href, so the same resource
at the same address always gets the same ``urn:uuid`` and two renders are byte-identical.
"""

from __future__ import annotations

import uuid

from openami.errors import LocalProtocolError
from openami.protocols.espi.model import check_id

__all__ = [
    "COLLECTIONS",
    "RESOURCE_ROOT",
    "collection_path",
    "entry_id",
    "entry_type",
    "feed_type",
    "resource_path",
]

RESOURCE_ROOT = "/espi/1_1/resource"

# Resource name -> its collection, below RESOURCE_ROOT; {names} are the parents' ids.
COLLECTIONS: dict[str, str] = {
    "UsagePoint": "Subscription/{subscription}/UsagePoint",
    "MeterReading": "Subscription/{subscription}/UsagePoint/{usage_point}/MeterReading",
    "IntervalBlock": (
        "Subscription/{subscription}/UsagePoint/{usage_point}"
        "/MeterReading/{meter_reading}/IntervalBlock"
    ),
    "ReadingType": "ReadingType",
    "LocalTimeParameters": "LocalTimeParameters",
    "ApplicationInformation": "ApplicationInformation",
    "Authorization": "Authorization",
    "Subscription": "Subscription",
}


def collection_path(resource: str, **parents: str) -> str:
    """The path of a resource's collection, e.g. ``collection_path("MeterReading",
    subscription="5", usage_point="1")``; a missing parent id raises ``LocalProtocolError``."""
    try:
        template = COLLECTIONS[resource]
    except KeyError:
        raise LocalProtocolError(f"no ESPI resource path for {resource!r}") from None
    for name, value in parents.items():
        check_id(f"{name} id", value)
    try:
        return f"{RESOURCE_ROOT}/{template.format(**parents)}"
    except KeyError as missing:
        raise LocalProtocolError(f"a {resource} path needs the {missing} id") from None


def resource_path(resource: str, resource_id: str, **parents: str) -> str:
    """The path of one resource: its collection and its id."""
    check_id(f"{resource} id", resource_id)
    return f"{collection_path(resource, **parents)}/{resource_id}"


def entry_type(resource: str) -> str:
    return f"espi-entry/{resource}"


def feed_type(resource: str) -> str:
    return f"espi-feed/{resource}"


def entry_id(href: str) -> str:
    """``urn:uuid`` of a resource, derived from its full href (base URL and path)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, href).urn
