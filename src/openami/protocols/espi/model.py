"""The values a Green Button document is rendered from: plain frozen dataclasses.

They hold what the MDMS knows, in ESPI's own units (Unix seconds, UInt16 codes, Wh with a
power-of-ten multiplier), and refuse at construction what the schema would refuse, so a
renderer never emits an invalid document from a value that exists. Errors are
``LocalProtocolError``: the caller asked for something ESPI cannot say.

ESPI stamps an interval by its START (``timePeriod.start``); openami identifies reads by the
END of their interval, so the caller converts (``start = end - duration``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from openami.errors import LocalProtocolError
from openami.protocols.espi.codes import (
    DST_RULE_DISABLED,
    GRANT_TYPES,
    JST_OFFSET,
    OAUTH_ERRORS,
    RESPONSE_TYPES,
    TOKEN_ENDPOINT_AUTH_METHODS,
    TOKEN_TYPES,
    AccumulationKind,
    CommodityKind,
    Currency,
    MeasurementKind,
    ServiceKind,
    UnitSymbol,
)

__all__ = [
    "ApplicationInformationInfo",
    "AuthorizationInfo",
    "DateTimeInterval",
    "IntervalBlock",
    "IntervalReading",
    "LocalTimeParameters",
    "MeterReadingInfo",
    "ReadingTypeInfo",
    "UsagePointInfo",
    "daily_blocks",
    "scope_string",
]

# Bounds of the schema's simple types.
UINT8 = (0, 0xFF)
UINT16 = (0, 0xFFFF)
UINT32 = (0, 0xFFFF_FFFF)
INT16 = (-0x8000, 0x7FFF)
TIME = (-(2**63), 2**63 - 1)  # TimeType is xs:long seconds since 1970
INT48 = (-(2**47), 2**47)  # the schema's Int48 bounds, as written there

DAY = 86400
# A resource id becomes one segment of an ESPI resource path, so it is limited to the
# characters a URI path segment carries unescaped (RFC 3986 "unreserved").
_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
# Characters an XML document cannot carry intact: those XML 1.0 forbids (ElementTree would
# write them and break the file), and the carriage return, which every XML parser turns
# into a line feed (ElementTree writes it raw in text).
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\r\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def check_int(what: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LocalProtocolError(f"{what} must be an integer in {low}..{high}, not {value!r}")


def check_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise LocalProtocolError(
            f"{what} {value!r} cannot be a resource path segment: use 1..128 of A-Z a-z 0-9 . _ ~ -"
        )


def check_text(what: str, value: str, max_length: int | None = None) -> None:
    if not isinstance(value, str) or NOT_XML.search(value):
        raise LocalProtocolError(f"{what} holds characters XML cannot carry intact: {value!r}")
    if max_length is not None and len(value) > max_length:
        raise LocalProtocolError(f"{what} is {len(value)} characters; ESPI allows {max_length}")


def _check_choice(what: str, value: str, allowed: frozenset[str]) -> None:
    if value not in allowed:
        raise LocalProtocolError(f"{what} {value!r} is not one of {sorted(allowed)}")


@dataclass(frozen=True, slots=True)
class DateTimeInterval:
    """ESPI DateTimeInterval: ``start`` in Unix seconds, ``duration`` in seconds."""

    start: int
    duration: int

    def __post_init__(self) -> None:
        check_int("interval start", self.start, TIME)
        check_int("interval duration", self.duration, UINT32)


@dataclass(frozen=True, slots=True)
class IntervalReading:
    """One interval: ``start`` Unix seconds, ``duration`` seconds, ``value`` in the reading
    type's unit (Wh), ``quality`` an ESPI QualityOfReading code, or None for a reading with
    nothing to say (valid, no ReadingQuality element)."""

    start: int
    duration: int
    value: int
    quality: int | None = None

    def __post_init__(self) -> None:
        check_int("reading start", self.start, TIME)
        check_int("reading duration", self.duration, UINT32)
        check_int("reading value", self.value, INT48)
        if self.quality is not None:
            check_int("reading quality", self.quality, UINT16)


@dataclass(frozen=True, slots=True)
class IntervalBlock:
    """The readings of one block (a local day in openami's feeds), in time order, each inside
    the block's interval; missing intervals are simply absent."""

    id: str
    start: int
    duration: int
    readings: tuple[IntervalReading, ...]

    def __post_init__(self) -> None:
        check_id("interval block id", self.id)
        check_int("block start", self.start, TIME)
        check_int("block duration", self.duration, UINT32)
        end = self.start + self.duration
        previous_end = self.start
        for reading in self.readings:
            if reading.start < previous_end or reading.start + reading.duration > end:
                raise LocalProtocolError(
                    f"block {self.id}: reading at {reading.start} overlaps the one before it "
                    f"or lies outside {self.start}..{end}"
                )
            previous_end = reading.start + reading.duration


@dataclass(frozen=True, slots=True)
class ReadingTypeInfo:
    """What one channel measures. The defaults are openami's 30-minute energy channel:
    delta data, secondary-metered electricity, energy in Wh (multiplier 0), yen; pass
    ``FlowDirection.FORWARD`` for import and ``FlowDirection.REVERSE`` for export."""

    id: str
    flow_direction: int
    title: str = ""
    interval_length: int = 1800
    uom: int = UnitSymbol.WH
    power_of_ten_multiplier: int = 0
    accumulation_behaviour: int = AccumulationKind.DELTA_DATA
    commodity: int = CommodityKind.ELECTRICITY_SECONDARY_METERED
    kind: int = MeasurementKind.ENERGY
    currency: int | None = Currency.JPY
    default_quality: int | None = None
    data_qualifier: int | None = None

    def __post_init__(self) -> None:
        check_id("reading type id", self.id)
        check_text("reading type title", self.title)
        check_int("interval length", self.interval_length, UINT32)
        check_int("power of ten multiplier", self.power_of_ten_multiplier, INT16)
        for what, code in (
            ("flow direction", self.flow_direction),
            ("uom", self.uom),
            ("accumulation behaviour", self.accumulation_behaviour),
            ("commodity", self.commodity),
            ("kind", self.kind),
            ("currency", self.currency),
            ("default quality", self.default_quality),
            ("data qualifier", self.data_qualifier),
        ):
            if code is not None:
                check_int(what, code, UINT16)


@dataclass(frozen=True, slots=True)
class MeterReadingInfo:
    """One channel of a usage point (import or export) with its blocks in time order."""

    id: str
    title: str
    reading_type: ReadingTypeInfo
    blocks: tuple[IntervalBlock, ...] = ()

    def __post_init__(self) -> None:
        check_id("meter reading id", self.id)
        check_text("meter reading title", self.title)
        previous_end: int | None = None
        for block in self.blocks:
            if previous_end is not None and block.start < previous_end:
                raise LocalProtocolError(
                    f"meter reading {self.id}: block {block.id} starts before the one before "
                    "it ends (blocks go in time order without overlap)"
                )
            previous_end = block.start + block.duration
        if len({b.id for b in self.blocks}) != len(self.blocks):
            raise LocalProtocolError(f"meter reading {self.id}: two blocks share an id")


@dataclass(frozen=True, slots=True)
class UsagePointInfo:
    """A usage point (a premise's service). ``status``: ESPI UsagePoint status, 1 on, 0 off,
    None to leave it out."""

    id: str
    title: str
    kind: int = ServiceKind.ELECTRICITY
    status: int | None = None

    def __post_init__(self) -> None:
        check_id("usage point id", self.id)
        check_text("usage point title", self.title)
        check_int("service kind", self.kind, UINT16)
        if self.status is not None:
            check_int("usage point status", self.status, UINT8)


@dataclass(frozen=True, slots=True)
class LocalTimeParameters:
    """ESPI LocalTimeParameters (TimeConfiguration). The defaults are Asia/Tokyo: UTC+9, no
    daylight saving time, so both DST rules are the schema's "disabled" value."""

    id: str
    title: str = "Asia/Tokyo (UTC+9, no daylight saving time)"
    tz_offset: int = JST_OFFSET
    dst_offset: int = 0
    dst_start_rule: int = DST_RULE_DISABLED
    dst_end_rule: int = DST_RULE_DISABLED

    def __post_init__(self) -> None:
        check_id("local time parameters id", self.id)
        check_text("local time parameters title", self.title)
        check_int("tz offset", self.tz_offset, TIME)
        check_int("dst offset", self.dst_offset, TIME)
        check_int("dst start rule", self.dst_start_rule, UINT32)
        check_int("dst end rule", self.dst_end_rule, UINT32)


# String lengths of ApplicationInformation (the schema's String32/64/256/512 types).
_APPLICATION_LIMITS = {
    "data_custodian_id": 64,
    "client_id": 64,
    "client_name": 256,
    "software_id": 256,
    "third_party_application_description": 256,
    "software_version": 32,
    "third_party_phone": 32,
    "client_secret": 512,
}


@dataclass(frozen=True, slots=True)
class ApplicationInformationInfo:
    """A registered third-party application (ESPI ApplicationInformation). The required
    fields come first; times are Unix seconds. It carries the client secret and the
    registration access token, as ESPI defines it: only that application may see it."""

    id: str
    data_custodian_id: str
    data_custodian_application_status: int
    third_party_notify_uri: str
    authorization_server_authorization_endpoint: str
    authorization_server_token_endpoint: str
    data_custodian_bulk_request_uri: str
    data_custodian_resource_endpoint: str
    client_secret: str
    client_name: str
    redirect_uris: tuple[str, ...]
    client_id: str
    software_id: str
    software_version: str
    client_id_issued_at: int
    client_secret_expires_at: int
    scopes: tuple[str, ...]
    registration_client_uri: str
    registration_access_token: str
    grant_types: tuple[str, ...] = ("authorization_code", "client_credentials", "refresh_token")
    token_endpoint_auth_method: str = "client_secret_basic"  # noqa: S105 - a method name
    response_types: str = "code"
    third_party_application_description: str | None = None
    third_party_application_status: int | None = None
    third_party_application_type: int | None = None
    third_party_application_use: int | None = None
    third_party_phone: str | None = None
    authorization_server_uri: str | None = None
    authorization_server_registration_endpoint: str | None = None
    third_party_scope_selection_screen_uri: str | None = None
    third_party_user_portal_screen_uri: str | None = None
    logo_uri: str | None = None
    client_uri: str | None = None
    tos_uri: str | None = None
    policy_uri: str | None = None
    contacts: tuple[str, ...] = ()
    data_custodian_scope_selection_screen_uri: str | None = None

    def __post_init__(self) -> None:
        check_id("application information id", self.id)
        for name, limit in _APPLICATION_LIMITS.items():
            value = getattr(self, name)
            if value is not None:
                check_text(name, value, limit)
        for scope in self.scopes:
            check_text("scope", scope, 256)
        for contact in self.contacts:
            check_text("contact", contact, 256)
        if not self.redirect_uris or not self.scopes:
            raise LocalProtocolError("an application needs at least one redirect URI and scope")
        if len(self.grant_types) < 2:
            raise LocalProtocolError("ESPI requires at least two grant types per application")
        for grant in self.grant_types:
            _check_choice("grant type", grant, GRANT_TYPES)
        _check_choice(
            "token endpoint auth method",
            self.token_endpoint_auth_method,
            TOKEN_ENDPOINT_AUTH_METHODS,
        )
        _check_choice("response type", self.response_types, RESPONSE_TYPES)
        check_int("application status", self.data_custodian_application_status, UINT16)
        for what, code in (
            ("third party application status", self.third_party_application_status),
            ("third party application type", self.third_party_application_type),
            ("third party application use", self.third_party_application_use),
        ):
            if code is not None:
                check_int(what, code, UINT16)
        check_int("client_id_issued_at", self.client_id_issued_at, TIME)
        check_int("client_secret_expires_at", self.client_secret_expires_at, TIME)


@dataclass(frozen=True, slots=True)
class AuthorizationInfo:
    """A customer's consent to one application (ESPI Authorization). ``expires_at`` is Unix
    seconds; ``scope`` is the function-block string (see ``scope_string``)."""

    id: str
    status: int
    scope: str
    expires_at: int
    resource_uri: str
    authorization_uri: str
    authorized_period: DateTimeInterval | None = None
    published_period: DateTimeInterval | None = None
    grant_type: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - the token type, not a token
    error: str | None = None
    error_description: str | None = None
    error_uri: str | None = None
    customer_resource_uri: str | None = None
    application_information_id: str | None = None  # for the entry's related link

    def __post_init__(self) -> None:
        check_id("authorization id", self.id)
        check_int("authorization status", self.status, UINT16)
        check_text("scope", self.scope, 256)
        check_int("expires_at", self.expires_at, TIME)
        if self.grant_type is not None:
            _check_choice("grant type", self.grant_type, GRANT_TYPES)
        _check_choice("token type", self.token_type, TOKEN_TYPES)
        if self.error is not None:
            _check_choice("OAuth error", self.error, OAUTH_ERRORS)
        if self.error_description is not None:
            check_text("error description", self.error_description, 256)
        if self.application_information_id is not None:
            check_id("application information id", self.application_information_id)


def daily_blocks(
    readings: Iterable[IntervalReading], *, tz_offset: int = JST_OFFSET
) -> tuple[IntervalBlock, ...]:
    """Group readings into one block per local day (the scope's BlockDuration=daily): the
    block runs from local midnight for 86,400 s (Japan has no DST, so every day is that long)
    and its id is the local date, ``2025-04-01``. Days without readings get no block; a
    reading that crosses local midnight is refused."""
    by_day: dict[int, list[IntervalReading]] = {}
    for reading in sorted(readings, key=lambda r: r.start):
        day = (reading.start + tz_offset) // DAY
        if (reading.start + reading.duration - 1 + tz_offset) // DAY != day:
            raise LocalProtocolError(f"reading at {reading.start} crosses local midnight")
        by_day.setdefault(day, []).append(reading)
    epoch = date(1970, 1, 1)
    return tuple(
        IntervalBlock(
            id=(epoch + timedelta(days=day)).isoformat(),
            start=day * DAY - tz_offset,
            duration=DAY,
            readings=tuple(day_readings),
        )
        for day, day_readings in sorted(by_day.items())
    )


def scope_string(
    function_blocks: Iterable[int],
    *,
    interval_duration: int = 1800,
    block_duration: str = "daily",
    history_length: int = 34_128_000,
) -> str:
    """The ESPI scope string of an authorization, e.g.
    ``FB=1_3_4_5_13_14_39;IntervalDuration=1800;BlockDuration=daily;HistoryLength=34128000``
    (function blocks in ascending order; the default history is 395 days in seconds)."""
    blocks = "_".join(str(fb) for fb in sorted(set(function_blocks)))
    if not blocks:
        raise LocalProtocolError("a scope names at least one function block")
    return (
        f"FB={blocks};IntervalDuration={interval_duration};"
        f"BlockDuration={block_duration};HistoryLength={history_length}"
    )
