"""The registry's tables, named after IEC 61968 (CIM) classes, for SQLite and PostgreSQL.

Histories (which unit served a meter, where a meter was installed, which contract was in
force, which gas meter reported through which electric meter) are rows with a half-open span
``[valid_from, valid_to)``; the open row has ``valid_to`` NULL. What the database itself can
guard on both backends, it does: a partial unique index allows one open row per meter (and
per unit, per usage point for contracts), check constraints keep spans ordered and kinds
known. The rest of the rules (no overlap of closed spans, no gaps) need a look at
neighbouring rows and are checked by the repository under a lock.

No migrations: a layout change bumps ``SCHEMA_VERSION`` and an older database is refused.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

from openami.mdm.registry.model import Commodity, CustomerKind, MeterKind, TariffKind
from openami.store.sql import UtcDateTime

__all__ = [
    "COMPONENT",
    "SCHEMA_VERSION",
    "auxiliary_meter_link",
    "com_module",
    "customer",
    "customer_agreement",
    "metadata",
    "meter",
    "meter_com_module",
    "pricing_structure",
    "retailer",
    "usage_point",
    "usage_point_meter",
]

COMPONENT = "mdm.registry"
SCHEMA_VERSION = 1

# SQLite makes an INTEGER PRIMARY KEY the rowid itself (smaller, faster); it is 64-bit anyway
MeterId = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData()


def _one_of(column: str, values: type[MeterKind | Commodity | CustomerKind | TariffKind]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


def _span_columns(table: str, *, key: bool) -> list[Column[object] | CheckConstraint]:
    """``valid_from``/``valid_to``; with ``key``, ``valid_from`` completes the primary key
    (a history row is the subject and the instant it started)."""
    return [
        Column("valid_from", UtcDateTime, nullable=False, primary_key=key),
        Column("valid_to", UtcDateTime),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name=f"ck_{table}_span"),
    ]


def _open_unique(table: Table, column: str) -> Index:
    """At most one open row per ``column`` value: the current one."""
    open_row = table.c.valid_to.is_(None)
    return Index(
        f"ux_{table.name}_open_{column}",
        table.c[column],
        unique=True,
        sqlite_where=open_row,
        postgresql_where=open_row,
    )


meter = Table(
    "meter",
    metadata,
    Column("meter_id", MeterId, primary_key=True, autoincrement=False),
    Column("mrid", String(64), nullable=False, unique=True),
    Column("serial", String(32), nullable=False, unique=True),
    Column("system_title", LargeBinary(8), unique=True),  # NULL for gas and water meters
    Column("kind", String(16), nullable=False),
    Column("commodity", String(16), nullable=False),
    Column("manufacturer", String(64), nullable=False),
    Column("installed_at", UtcDateTime),
    Column("removed_at", UtcDateTime),
    CheckConstraint(_one_of("kind", MeterKind), name="ck_meter_kind"),
    CheckConstraint(_one_of("commodity", Commodity), name="ck_meter_commodity"),
)

com_module = Table(
    "com_module",
    metadata,
    Column("mrid", String(64), primary_key=True),
    Column("address", String(64), nullable=False, index=True),
)

meter_com_module = Table(
    "meter_com_module",
    metadata,
    Column("meter_id", MeterId, ForeignKey("meter.meter_id"), primary_key=True),
    Column("com_module", String(64), ForeignKey("com_module.mrid"), nullable=False, index=True),
    *_span_columns("meter_com_module", key=True),
)
_open_unique(meter_com_module, "meter_id")
_open_unique(meter_com_module, "com_module")

usage_point = Table(
    "usage_point",
    metadata,
    Column("mrid", String(64), primary_key=True),
    Column("address", String(256), nullable=False),
    Column("area", String(64), nullable=False, index=True),
    Column("latitude", Float),
    Column("longitude", Float),
    Column("occupied", Boolean, nullable=False),
    Column("generation_kw", Float, nullable=False),
    Column("all_electric", Boolean, nullable=False),
    Column("occupants", Integer),
)

usage_point_meter = Table(
    "usage_point_meter",
    metadata,
    Column("meter_id", MeterId, ForeignKey("meter.meter_id"), primary_key=True),
    Column("usage_point", String(64), ForeignKey("usage_point.mrid"), nullable=False),
    *_span_columns("usage_point_meter", key=True),
)
_open_unique(usage_point_meter, "meter_id")
Index("ix_usage_point_meter_point", usage_point_meter.c.usage_point, usage_point_meter.c.valid_from)

auxiliary_meter_link = Table(
    "auxiliary_meter_link",
    metadata,
    Column("meter_id", MeterId, ForeignKey("meter.meter_id"), primary_key=True),
    Column("host_meter_id", MeterId, ForeignKey("meter.meter_id"), nullable=False, index=True),
    *_span_columns("auxiliary_meter_link", key=True),
)
_open_unique(auxiliary_meter_link, "meter_id")

customer = Table(
    "customer",
    metadata,
    Column("mrid", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    CheckConstraint(_one_of("kind", CustomerKind), name="ck_customer_kind"),
)

retailer = Table(
    "retailer",
    metadata,
    Column("mrid", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("licence_id", String(32), nullable=False, unique=True),
)

pricing_structure = Table(
    "pricing_structure",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("contract_current_a", Integer),
    Column("periods_ref", String(64)),
    CheckConstraint(_one_of("kind", TariffKind), name="ck_pricing_structure_kind"),
)

customer_agreement = Table(
    "customer_agreement",
    metadata,
    Column("mrid", String(64), primary_key=True),
    Column("customer", String(64), ForeignKey("customer.mrid"), nullable=False, index=True),
    Column("usage_point", String(64), ForeignKey("usage_point.mrid"), nullable=False),
    Column("retailer", String(64), ForeignKey("retailer.mrid"), nullable=False, index=True),
    Column("tariff", String(64), ForeignKey("pricing_structure.code"), nullable=False),
    *_span_columns("customer_agreement", key=False),
    Column("contract_current_a", Integer),
)
Index(
    "ux_customer_agreement_point_start",
    customer_agreement.c.usage_point,
    customer_agreement.c.valid_from,
    unique=True,  # contracts of a usage point never overlap, so no two start together
)
_open_unique(customer_agreement, "usage_point")
