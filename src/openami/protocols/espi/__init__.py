"""Green Button (NAESB REQ.21 ESPI 3.3) documents, as a pure library: ESPI resources in Atom
feeds and entries rendered from frozen values, and a schema check that needs no network.

The HTTP service calls ``usage_feed`` for Download My Data and ``entry_document`` (or
``application_information_entry`` / ``authorization_entry``) for the per-resource
endpoints; ``validate`` checks any of them against the schema.
"""

from openami.protocols.espi.codes import (
    DST_RULE_DISABLED,
    JST_OFFSET,
    AccumulationKind,
    AuthorizationStatus,
    CommodityKind,
    Currency,
    DataCustodianApplicationStatus,
    FlowDirection,
    MeasurementKind,
    QualityOfReading,
    ServiceKind,
    ThirdPartyApplicationStatus,
    ThirdPartyApplicationType,
    ThirdPartyApplicationUse,
    UnitSymbol,
)
from openami.protocols.espi.content import ESPI_NS
from openami.protocols.espi.model import (
    ApplicationInformationInfo,
    AuthorizationInfo,
    DateTimeInterval,
    IntervalBlock,
    IntervalReading,
    LocalTimeParameters,
    MeterReadingInfo,
    ReadingTypeInfo,
    UsagePointInfo,
    daily_blocks,
    scope_string,
)
from openami.protocols.espi.paths import RESOURCE_ROOT, collection_path, resource_path
from openami.protocols.espi.render import (
    ATOM_NS,
    Resource,
    application_information_entry,
    authorization_entry,
    entry_document,
    usage_feed,
)
from openami.protocols.espi.schema import default_schema_path, validate

__all__ = [
    "ATOM_NS",
    "DST_RULE_DISABLED",
    "ESPI_NS",
    "JST_OFFSET",
    "RESOURCE_ROOT",
    "AccumulationKind",
    "ApplicationInformationInfo",
    "AuthorizationInfo",
    "AuthorizationStatus",
    "CommodityKind",
    "Currency",
    "DataCustodianApplicationStatus",
    "DateTimeInterval",
    "FlowDirection",
    "IntervalBlock",
    "IntervalReading",
    "LocalTimeParameters",
    "MeasurementKind",
    "MeterReadingInfo",
    "QualityOfReading",
    "ReadingTypeInfo",
    "Resource",
    "ServiceKind",
    "ThirdPartyApplicationStatus",
    "ThirdPartyApplicationType",
    "ThirdPartyApplicationUse",
    "UnitSymbol",
    "UsagePointInfo",
    "application_information_entry",
    "authorization_entry",
    "collection_path",
    "daily_blocks",
    "default_schema_path",
    "entry_document",
    "resource_path",
    "scope_string",
    "usage_feed",
    "validate",
]
