"""ESPI code tables: the enumerations of the NAESB REQ.21 ESPI 3.3 schema that openami uses.

Every ESPI enumeration is an ``xs:union`` of ``UInt16`` (``Int16`` for the multiplier) with a
restricted list, so any value of the base type validates; the lists below name only the
values openami renders or a caller is likely to need. The numbers are the schema's.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "DST_RULE_DISABLED",
    "GRANT_TYPES",
    "JST_OFFSET",
    "OAUTH_ERRORS",
    "RESPONSE_TYPES",
    "TOKEN_ENDPOINT_AUTH_METHODS",
    "TOKEN_TYPES",
    "AccumulationKind",
    "AuthorizationStatus",
    "CommodityKind",
    "Currency",
    "DataCustodianApplicationStatus",
    "FlowDirection",
    "MeasurementKind",
    "QualityOfReading",
    "ServiceKind",
    "ThirdPartyApplicationStatus",
    "ThirdPartyApplicationType",
    "ThirdPartyApplicationUse",
    "UnitSymbol",
]

# Japan Standard Time, UTC+9, in seconds (LocalTimeParameters.tzOffset).
JST_OFFSET = 9 * 3600

# DstRuleType is a 32-bit rule; the schema reserves 0xFFFFFFFF for "rule processing / DST
# correction disabled", which is what a zone without daylight saving time (Asia/Tokyo) needs:
# both rules are required elements, so they cannot simply be left out.
DST_RULE_DISABLED = 0xFFFFFFFF


class ServiceKind(IntEnum):
    """UsagePoint ServiceCategory kind."""

    ELECTRICITY = 0
    GAS = 1
    WATER = 2
    TIME = 3
    HEAT = 4


class AccumulationKind(IntEnum):
    """ReadingType accumulationBehaviour."""

    NONE = 0
    BULK_QUANTITY = 1
    CUMULATIVE = 3
    DELTA_DATA = 4  # interval data: the change over the interval
    INSTANTANEOUS = 12


class CommodityKind(IntEnum):
    """ReadingType commodity."""

    NONE = 0
    ELECTRICITY_SECONDARY_METERED = 1  # measured on the low-voltage side: household meters
    ELECTRICITY_PRIMARY_METERED = 2


class FlowDirection(IntEnum):
    """ReadingType flowDirection: forward is delivered to the customer (import), reverse is
    received from the customer (export, e.g. rooftop PV)."""

    NONE = 0
    FORWARD = 1
    NET = 4
    REVERSE = 19
    TOTAL = 20


class MeasurementKind(IntEnum):
    """ReadingType kind."""

    NONE = 0
    DEMAND = 8
    ENERGY = 12
    POWER = 37


class UnitSymbol(IntEnum):
    """ReadingType uom."""

    NONE = 0
    W = 38
    WH = 72
    VARH = 73


class Currency(IntEnum):
    """ReadingType currency (ISO 4217 numeric codes)."""

    OTHER = 0
    JPY = 392
    USD = 840


class QualityOfReading(IntEnum):
    """ReadingQuality quality, the whole list of the schema.

    An interval reading carries a ReadingQuality only when it differs from the ReadingType's
    defaultQuality, and readings are "assumed valid unless stated otherwise". Note that 17 is
    *validated* (passed VEE, possibly edited or estimated under approved procedures), not a
    failure: a reading that failed validation is QUESTIONABLE (10).
    """

    VALID = 0
    MANUALLY_EDITED = 7
    ESTIMATED_USING_REFERENCE_DAY = 8
    ESTIMATED_USING_LINEAR_INTERPOLATION = 9
    QUESTIONABLE = 10
    DERIVED = 11
    PROJECTED = 12
    MIXED = 13
    RAW = 14
    NORMALIZED_FOR_WEATHER = 15
    OTHER = 16
    VALIDATED = 17
    VERIFIED = 18
    REVENUE_QUALITY = 19


class AuthorizationStatus(IntEnum):
    REVOKED = 0
    ACTIVE = 1
    DENIED = 2


class DataCustodianApplicationStatus(IntEnum):
    REVIEW = 1
    PRODUCTION = 2
    ON_HOLD = 3
    REVOKED = 4


class ThirdPartyApplicationStatus(IntEnum):
    DEVELOPMENT = 1
    REVIEW_TEST = 2
    PRODUCTION = 3
    RETIRED = 4


class ThirdPartyApplicationType(IntEnum):
    WEB = 1
    DESKTOP = 2
    MOBILE = 3
    DEVICE = 4


class ThirdPartyApplicationUse(IntEnum):
    ENERGY_MANAGEMENT = 1
    COMPARISONS = 2
    GOVERNMENT = 3
    ACADEMIC = 4
    LAW_ENFORCEMENT = 5


# The OAuth 2.0 string enumerations of the schema (GrantType, TokenType, TokenEndPointMethod,
# ResponseType, OAuthError): the only values an ESPI document may carry there.
GRANT_TYPES = frozenset({"authorization_code", "client_credentials", "refresh_token"})
TOKEN_TYPES = frozenset({"Bearer"})
TOKEN_ENDPOINT_AUTH_METHODS = frozenset({"client_secret_basic"})
RESPONSE_TYPES = frozenset({"code"})
OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "invalid_redirect_uri",
        "invalid_client_metadata",
        "invalid_client_id",
        "access_denied",
        "unsupported_response_type",
        "server_error",
        "temporarily_unavailable",
    }
)
