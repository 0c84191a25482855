"""The MDMS registry: who and what a meter reading belongs to, and when.

Shaped after IEC 61968 (CIM): meters (integrated or separated, with the history of the
communication units that served them), usage points (premises), customers, retailers,
tariffs (pricing structures), retail contracts (customer agreements) and the gas and water
meters that report through an electric meter. Everything that changes over time is a
history with half-open spans, so "who supplied this premise at that instant" and "which
retailer may see this meter's data over that month" have one answer each.

SQLAlchemy Core on SQLite by default and PostgreSQL in production, one contract test suite
for both. Modules: ``model`` (the records), ``schema`` (the tables), ``rules`` (timeline
checks), ``bulk`` (set-based registration), ``changes`` (single changes over time),
``repository`` (the ``Registry`` API), ``legacy`` (the first registry's ``MeterRecord``).
"""

from __future__ import annotations

from openami.mdm.registry.legacy import MeterRecord
from openami.mdm.registry.model import (
    AuxiliaryLink,
    Commodity,
    ComModule,
    ComModuleService,
    Customer,
    CustomerAgreement,
    CustomerKind,
    CustomerSite,
    FleetRegistration,
    Installation,
    Meter,
    MeterKind,
    MeterSite,
    PricingStructure,
    Retailer,
    RetailerSpan,
    TariffKind,
    UsagePoint,
)
from openami.mdm.registry.repository import Registry
from openami.mdm.registry.schema import SCHEMA_VERSION, metadata

__all__ = [
    "SCHEMA_VERSION",
    "AuxiliaryLink",
    "ComModule",
    "ComModuleService",
    "Commodity",
    "Customer",
    "CustomerAgreement",
    "CustomerKind",
    "CustomerSite",
    "FleetRegistration",
    "Installation",
    "Meter",
    "MeterKind",
    "MeterRecord",
    "MeterSite",
    "PricingStructure",
    "Registry",
    "Retailer",
    "RetailerSpan",
    "TariffKind",
    "UsagePoint",
    "metadata",
]
