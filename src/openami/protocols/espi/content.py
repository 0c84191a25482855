"""The ESPI elements that go inside Atom ``<content>``, built from the model's values.

Each resource is a table of (element, attribute, format) rows in the schema's sequence
order: the schema's types are ``xs:sequence``, so order is part of validity, and a table
makes it visible at a glance. Values that are None are left out (every optional element is
``minOccurs="0"``), tuples repeat their element, intervals nest ``duration`` then ``start``.

Namespaces: ElementTree is given plain tag names and a literal ``xmlns`` attribute on the
resource element, so the output declares ESPI as the default namespace of that subtree
(``<UsagePoint xmlns="http://naesb.org/espi">``) without touching ElementTree's global
prefix registry. The tree is only ever serialised, never searched by namespace.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import Any

from openami.errors import LocalProtocolError
from openami.protocols.espi.model import (
    NOT_XML,
    ApplicationInformationInfo,
    AuthorizationInfo,
    DateTimeInterval,
    IntervalBlock,
    LocalTimeParameters,
    MeterReadingInfo,
    ReadingTypeInfo,
    UsagePointInfo,
)

__all__ = [
    "ESPI_NS",
    "application_information",
    "authorization",
    "interval_block",
    "local_time_parameters",
    "meter_reading",
    "reading_type",
    "usage_point",
]

ESPI_NS = "http://naesb.org/espi"

Field = tuple[str, str, Callable[[Any], str]]


def _int(value: int) -> str:
    return str(int(value))  # int() first: an IntEnum member must print as its number


def _hex32(value: int) -> str:
    return f"{value:08X}"  # HexBinary32: eight hex digits, 0xFFFFFFFF -> FFFFFFFF


def _str(value: str) -> str:
    return value


READING_TYPE_FIELDS: tuple[Field, ...] = (
    ("accumulationBehaviour", "accumulation_behaviour", _int),
    ("commodity", "commodity", _int),
    ("currency", "currency", _int),
    ("dataQualifier", "data_qualifier", _int),
    ("defaultQuality", "default_quality", _int),
    ("flowDirection", "flow_direction", _int),
    ("intervalLength", "interval_length", _int),
    ("kind", "kind", _int),
    ("powerOfTenMultiplier", "power_of_ten_multiplier", _int),
    ("uom", "uom", _int),
)

LOCAL_TIME_FIELDS: tuple[Field, ...] = (
    ("dstEndRule", "dst_end_rule", _hex32),
    ("dstOffset", "dst_offset", _int),
    ("dstStartRule", "dst_start_rule", _hex32),
    ("tzOffset", "tz_offset", _int),
)

APPLICATION_FIELDS: tuple[Field, ...] = (
    ("dataCustodianId", "data_custodian_id", _str),
    ("dataCustodianApplicationStatus", "data_custodian_application_status", _int),
    ("thirdPartyApplicationDescription", "third_party_application_description", _str),
    ("thirdPartyApplicationStatus", "third_party_application_status", _int),
    ("thirdPartyApplicationType", "third_party_application_type", _int),
    ("thirdPartyApplicationUse", "third_party_application_use", _int),
    ("thirdPartyPhone", "third_party_phone", _str),
    ("authorizationServerUri", "authorization_server_uri", _str),
    ("thirdPartyNotifyUri", "third_party_notify_uri", _str),
    (
        "authorizationServerAuthorizationEndpoint",
        "authorization_server_authorization_endpoint",
        _str,
    ),
    (
        "authorizationServerRegistrationEndpoint",
        "authorization_server_registration_endpoint",
        _str,
    ),
    ("authorizationServerTokenEndpoint", "authorization_server_token_endpoint", _str),
    ("dataCustodianBulkRequestURI", "data_custodian_bulk_request_uri", _str),
    ("dataCustodianResourceEndpoint", "data_custodian_resource_endpoint", _str),
    ("thirdPartyScopeSelectionScreenURI", "third_party_scope_selection_screen_uri", _str),
    ("thirdPartyUserPortalScreenURI", "third_party_user_portal_screen_uri", _str),
    ("client_secret", "client_secret", _str),
    ("logo_uri", "logo_uri", _str),
    ("client_name", "client_name", _str),
    ("client_uri", "client_uri", _str),
    ("redirect_uri", "redirect_uris", _str),
    ("client_id", "client_id", _str),
    ("tos_uri", "tos_uri", _str),
    ("policy_uri", "policy_uri", _str),
    ("software_id", "software_id", _str),
    ("software_version", "software_version", _str),
    ("client_id_issued_at", "client_id_issued_at", _int),
    ("client_secret_expires_at", "client_secret_expires_at", _int),
    ("contacts", "contacts", _str),
    ("token_endpoint_auth_method", "token_endpoint_auth_method", _str),
    ("scope", "scopes", _str),
    ("grant_types", "grant_types", _str),
    ("response_types", "response_types", _str),
    ("registration_client_uri", "registration_client_uri", _str),
    ("registration_access_token", "registration_access_token", _str),
    (
        "dataCustodianScopeSelectionScreenURI",
        "data_custodian_scope_selection_screen_uri",
        _str,
    ),
)

AUTHORIZATION_FIELDS: tuple[Field, ...] = (
    ("authorizedPeriod", "authorized_period", _int),  # intervals nest, see _emit
    ("publishedPeriod", "published_period", _int),
    ("status", "status", _int),
    ("expires_at", "expires_at", _int),
    ("grant_type", "grant_type", _str),
    ("scope", "scope", _str),
    ("token_type", "token_type", _str),
    ("error", "error", _str),
    ("error_description", "error_description", _str),
    ("error_uri", "error_uri", _str),
    ("resourceURI", "resource_uri", _str),
    ("authorizationURI", "authorization_uri", _str),
    ("customerResourceURI", "customer_resource_uri", _str),
)


def _leaf(parent: ET.Element, tag: str, text: str) -> None:
    if NOT_XML.search(text):
        raise LocalProtocolError(f"{tag} holds characters XML cannot carry intact: {text!r}")
    ET.SubElement(parent, tag).text = text


def _interval(parent: ET.Element, tag: str, start: int, duration: int) -> None:
    element = ET.SubElement(parent, tag)
    ET.SubElement(element, "duration").text = str(duration)
    ET.SubElement(element, "start").text = str(start)


def _emit(parent: ET.Element, value_source: object, fields: Sequence[Field]) -> None:
    for tag, attribute, fmt in fields:
        value = getattr(value_source, attribute)
        if value is None:
            continue
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, DateTimeInterval):
                _interval(parent, tag, item.start, item.duration)
            else:
                _leaf(parent, tag, fmt(item))


def _resource(name: str) -> ET.Element:
    return ET.Element(name, {"xmlns": ESPI_NS})


def usage_point(point: UsagePointInfo) -> ET.Element:
    element = _resource("UsagePoint")
    category = ET.SubElement(element, "ServiceCategory")
    ET.SubElement(category, "kind").text = _int(point.kind)
    if point.status is not None:
        ET.SubElement(element, "status").text = _int(point.status)
    return element


def meter_reading(_reading: MeterReadingInfo) -> ET.Element:
    # ESPI's MeterReading has no content of its own: it is the node the channel's reading
    # type and interval blocks link to.
    return _resource("MeterReading")


def reading_type(kind: ReadingTypeInfo) -> ET.Element:
    element = _resource("ReadingType")
    _emit(element, kind, READING_TYPE_FIELDS)
    return element


def local_time_parameters(params: LocalTimeParameters) -> ET.Element:
    element = _resource("LocalTimeParameters")
    _emit(element, params, LOCAL_TIME_FIELDS)
    return element


def application_information(app: ApplicationInformationInfo) -> ET.Element:
    element = _resource("ApplicationInformation")
    _emit(element, app, APPLICATION_FIELDS)
    return element


def authorization(auth: AuthorizationInfo) -> ET.Element:
    element = _resource("Authorization")
    _emit(element, auth, AUTHORIZATION_FIELDS)
    return element


def interval_block(block: IntervalBlock) -> ET.Element:
    # The hot path (48 readings a day, 395 days, two channels), so written out rather than
    # table-driven. IntervalReading's sequence is cost, ReadingQuality*, timePeriod, value.
    element = _resource("IntervalBlock")
    _interval(element, "interval", block.start, block.duration)
    sub = ET.SubElement
    for reading in block.readings:
        item = sub(element, "IntervalReading")
        if reading.quality is not None:
            sub(sub(item, "ReadingQuality"), "quality").text = _int(reading.quality)
        period = sub(item, "timePeriod")
        sub(period, "duration").text = str(reading.duration)
        sub(period, "start").text = str(reading.start)
        sub(item, "value").text = str(reading.value)
    return element
