"""The registry's typed API over one SQLAlchemy engine (SQLite or PostgreSQL).

Every method is one transaction. Writes go through ``write_transaction`` (the write lock
from the first statement on SQLite) and the modules ``bulk`` (set-based registration) and
``changes`` (single changes over time); reads are plain queries here. Database trouble
becomes ``StoreError``; a broken registry rule becomes ``RegistryError``; a naive datetime
is refused with ``LocalProtocolError`` before it reaches a query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from openami.errors import AmiError, RegistryError, StoreError
from openami.mdm.registry import bulk, changes
from openami.mdm.registry.legacy import MeterRecord
from openami.mdm.registry.model import (
    AuxiliaryLink,
    ComModule,
    ComModuleService,
    Customer,
    CustomerAgreement,
    CustomerKind,
    CustomerSite,
    FleetRegistration,
    Installation,
    Meter,
    MeterSite,
    PricingStructure,
    Retailer,
    RetailerSpan,
    UsagePoint,
    in_force,
    utc,
)
from openami.mdm.registry.rules import clip
from openami.mdm.registry.schema import (
    COMPONENT,
    SCHEMA_VERSION,
    auxiliary_meter_link,
    com_module,
    customer,
    customer_agreement,
    metadata,
    meter,
    meter_com_module,
    pricing_structure,
    retailer,
    usage_point,
    usage_point_meter,
)
from openami.store.sql import EngineStore, ensure_schema, load_rows, staging_table
from openami.store.sql import read_transaction as _read
from openami.store.sql import why as _why
from openami.store.sql import write_transaction as _write

__all__ = ["Registry"]

R = TypeVar("R")
_IN_CHUNK = 10_000  # ids per IN (...) list: under every backend's parameter limit


def _during(table: Any, at: datetime) -> Any:
    """Rows of a span table in force at ``at`` (half-open spans)."""
    return and_(table.c.valid_from <= at, or_(table.c.valid_to.is_(None), table.c.valid_to > at))


def _meter(row: Any) -> Meter:
    values = dict(row._mapping)
    if values["system_title"] is not None:
        values["system_title"] = bytes(values["system_title"])  # PostgreSQL: memoryview
    return Meter(**values)


def _point(row: Any) -> UsagePoint:
    return UsagePoint(**{c.name: row._mapping[c.name] for c in usage_point.columns})


class Registry(EngineStore):
    """Meters, units, usage points, customers, retailers, tariffs and contracts."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        super().__init__(engine, owns_engine=owns_engine)
        ensure_schema(engine, metadata, COMPONENT, SCHEMA_VERSION)

    # -- plumbing ----------------------------------------------------------------------------

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except IntegrityError as exc:
            raise RegistryError(f"the registry refused to {what}: {_why(exc)}") from None
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            if isinstance(orig, AmiError):  # raised on purpose by a value going in or out
                raise orig from None
            raise StoreError(f"the registry could not {what}: {_why(exc)}") from None

    def _write(self, what: str, work: Callable[[Connection], R]) -> R:
        with self._errors(what), _write(self.engine) as conn:
            return work(conn)

    def _read(self, what: str, work: Callable[[Connection], R]) -> R:
        with self._errors(what), _read(self.engine) as conn:
            return work(conn)

    def _rows(self, what: str, statement: Any) -> list[Any]:
        return self._read(what, lambda conn: list(conn.execute(statement)))

    # -- bulk registration -------------------------------------------------------------------

    def register_fleet(self, sites: Sequence[MeterSite], at: datetime) -> FleetRegistration:
        """Register meters with their units, usage points and co-metering links in one
        transaction; meters already registered are skipped (see ``bulk.register_fleet``)."""
        at = utc(at, "registration time")
        start = time.perf_counter()
        done = self._write("register the fleet", lambda c: bulk.register_fleet(c, sites, at))
        return FleetRegistration(
            done.meters, done.com_modules, done.usage_points, time.perf_counter() - start
        )

    def add_usage_points(self, points: Iterable[UsagePoint]) -> int:
        """Add premises without meters yet (new builds); like every ``add_*``, stored ones
        are left as they are and the count of new ones is returned."""
        rows = [
            bulk.point_row(p) for p in bulk.unique(points, lambda p: p.mrid, "usage point").values()
        ]
        return self._write(
            "add usage points", lambda c: bulk.add_rows(c, usage_point, "mrid", rows)
        )

    def add_customers(self, customers: Iterable[Customer]) -> int:
        batch = bulk.unique(customers, lambda c: c.mrid, "customer").values()
        rows = [{"mrid": c.mrid, "name": c.name, "kind": c.kind.value} for c in batch]
        return self._write("add customers", lambda c: bulk.add_rows(c, customer, "mrid", rows))

    def add_retailers(self, retailers: Iterable[Retailer]) -> int:
        batch = bulk.unique(retailers, lambda r: r.mrid, "retailer").values()
        rows = [{"mrid": r.mrid, "name": r.name, "licence_id": r.licence_id} for r in batch]
        return self._write("add retailers", lambda c: bulk.add_rows(c, retailer, "mrid", rows))

    def add_tariffs(self, tariffs: Iterable[PricingStructure]) -> int:
        batch = bulk.unique(tariffs, lambda t: t.code, "tariff").values()
        rows = [
            {
                "code": t.code,
                "name": t.name,
                "kind": t.kind.value,
                "contract_current_a": t.contract_current_a,
                "periods_ref": t.periods_ref,
            }
            for t in batch
        ]
        return self._write(
            "add tariffs", lambda c: bulk.add_rows(c, pricing_structure, "code", rows)
        )

    def add_contracts(
        self, contracts: Sequence[CustomerAgreement], *, allow_gap: bool = False
    ) -> int:
        """Add contracts (in bulk: an initial load of millions is one call); see
        ``bulk.add_contracts`` for the rules."""
        return self._write(
            "add contracts", lambda c: bulk.add_contracts(c, contracts, allow_gap=allow_gap)
        )

    def add_contract(self, contract: CustomerAgreement, *, allow_gap: bool = False) -> bool:
        return self.add_contracts([contract], allow_gap=allow_gap) == 1

    # -- changes over time -------------------------------------------------------------------

    def switch_retailer(
        self,
        usage_point: str,
        at: datetime,
        *,
        mrid: str,
        retailer: str,
        tariff: str,
        customer: str | None = None,
        contract_current_a: int | None = None,
        starts: datetime | None = None,
        allow_gap: bool = False,
    ) -> CustomerAgreement:
        """End the contract in force at ``usage_point`` at ``at`` and start contract
        ``mrid`` (same customer unless given) for the rest of its span; returns the new
        contract. Idempotent under the same ``mrid`` and terms."""
        return self._write(
            "switch the retailer",
            lambda c: changes.switch_retailer(
                c,
                usage_point,
                at,
                mrid=mrid,
                retailer_mrid=retailer,
                tariff=tariff,
                customer_mrid=customer,
                contract_current_a=contract_current_a,
                starts=starts,
                allow_gap=allow_gap,
            ),
        )

    def end_contract(
        self, mrid: str, at: datetime, *, allow_gap: bool = False
    ) -> CustomerAgreement:
        return self._write(
            "end the contract", lambda c: changes.end_contract(c, mrid, at, allow_gap=allow_gap)
        )

    def swap_com_module(self, meter_id: int, unit: ComModule, at: datetime) -> ComModuleService:
        return self._write(
            "swap the unit", lambda c: changes.swap_com_module(c, meter_id, unit, at)
        )

    def install_meter(self, meter_id: int, usage_point: str, at: datetime) -> Installation:
        return self._write(
            "install the meter", lambda c: changes.install_meter(c, meter_id, usage_point, at)
        )

    def remove_meter(self, meter_id: int, at: datetime) -> Installation:
        return self._write("remove the meter", lambda c: changes.remove_meter(c, meter_id, at))

    def link_auxiliary(self, meter_id: int, host_meter_id: int, at: datetime) -> AuxiliaryLink:
        return self._write(
            "link the meter", lambda c: changes.link_auxiliary(c, meter_id, host_meter_id, at)
        )

    def unlink_auxiliary(self, meter_id: int, at: datetime) -> AuxiliaryLink:
        return self._write("unlink the meter", lambda c: changes.unlink_auxiliary(c, meter_id, at))

    # -- meters ------------------------------------------------------------------------------

    def _one_meter(self, where: Any) -> Meter | None:
        rows = self._rows("find a meter", select(meter).where(where))
        return _meter(rows[0]) if rows else None

    def meter(self, meter_id: int) -> Meter | None:
        return self._one_meter(meter.c.meter_id == meter_id)

    def meter_by_serial(self, serial: str) -> Meter | None:
        return self._one_meter(meter.c.serial == serial)

    def meter_by_system_title(self, system_title: bytes) -> Meter | None:
        return self._one_meter(meter.c.system_title == system_title)

    def meter_by_address(self, address: str, at: datetime) -> Meter | None:
        """The meter whose unit answered at ``address`` at ``at``."""
        at = utc(at)
        h = meter_com_module.c
        return self._one_meter(
            meter.c.meter_id.in_(
                select(h.meter_id)
                .join(com_module, com_module.c.mrid == h.com_module)
                .where(com_module.c.address == address, _during(meter_com_module, at))
            )
        )

    def meter_ids(self) -> list[int]:
        return [
            r[0]
            for r in self._rows("list meters", select(meter.c.meter_id).order_by(meter.c.meter_id))
        ]

    def count(self) -> int:
        """How many meters are registered."""
        return int(self._rows("count meters", select(func.count()).select_from(meter))[0][0])

    def com_module_history(self, meter_id: int) -> list[ComModuleService]:
        """The units that served ``meter_id``, oldest first."""
        h = meter_com_module.c
        rows = self._rows(
            "read a unit history",
            select(h.meter_id, h.com_module, com_module.c.address, h.valid_from, h.valid_to)
            .join(com_module, com_module.c.mrid == h.com_module)
            .where(h.meter_id == meter_id)
            .order_by(h.valid_from),
        )
        return [ComModuleService(*r) for r in rows]

    def com_module_at(self, meter_id: int, at: datetime) -> ComModuleService | None:
        at = utc(at)
        history = self.com_module_history(meter_id)
        return next((s for s in history if in_force(s.valid_from, s.valid_to, at)), None)

    def installations(self, meter_id: int) -> list[Installation]:
        i = usage_point_meter.c
        rows = self._rows(
            "read installations",
            select(i.meter_id, i.usage_point, i.valid_from, i.valid_to)
            .where(i.meter_id == meter_id)
            .order_by(i.valid_from),
        )
        return [Installation(*r) for r in rows]

    def auxiliary_meters(self, host_meter_id: int, at: datetime) -> list[Meter]:
        """The gas and water meters reporting through ``host_meter_id`` at ``at``."""
        at = utc(at)
        x = auxiliary_meter_link.c
        rows = self._rows(
            "read co-metering links",
            select(meter)
            .join(auxiliary_meter_link, x.meter_id == meter.c.meter_id)
            .where(x.host_meter_id == host_meter_id, _during(auxiliary_meter_link, at))
            .order_by(meter.c.meter_id),
        )
        return [_meter(r) for r in rows]

    def host_meter(self, meter_id: int, at: datetime) -> int | None:
        at = utc(at)
        x = auxiliary_meter_link.c
        rows = self._rows(
            "read a co-metering link",
            select(x.host_meter_id).where(
                x.meter_id == meter_id, _during(auxiliary_meter_link, at)
            ),
        )
        return int(rows[0][0]) if rows else None

    # -- places, parties, contracts ----------------------------------------------------------

    def usage_point(self, mrid: str) -> UsagePoint | None:
        rows = self._rows(
            "find a usage point", select(usage_point).where(usage_point.c.mrid == mrid)
        )
        return _point(rows[0]) if rows else None

    def usage_point_at(self, meter_id: int, at: datetime) -> UsagePoint | None:
        """Where ``meter_id`` was installed at ``at``."""
        at = utc(at)
        i = usage_point_meter.c
        rows = self._rows(
            "find a usage point",
            select(usage_point)
            .join(usage_point_meter, i.usage_point == usage_point.c.mrid)
            .where(i.meter_id == meter_id, _during(usage_point_meter, at)),
        )
        return _point(rows[0]) if rows else None

    def customer(self, mrid: str) -> Customer | None:
        rows = self._rows("find a customer", select(customer).where(customer.c.mrid == mrid))
        return Customer(*rows[0]) if rows else None

    def retailer(self, mrid: str) -> Retailer | None:
        rows = self._rows("find a retailer", select(retailer).where(retailer.c.mrid == mrid))
        return Retailer(*rows[0]) if rows else None

    def tariff(self, code: str) -> PricingStructure | None:
        p = pricing_structure
        rows = self._rows("find a tariff", select(p).where(p.c.code == code))
        return PricingStructure(*rows[0]) if rows else None

    def contract(self, mrid: str) -> CustomerAgreement | None:
        a = customer_agreement
        rows = self._rows("find a contract", select(a).where(a.c.mrid == mrid))
        return bulk.agreement_of(rows[0]) if rows else None

    def contracts(self, usage_point: str) -> list[CustomerAgreement]:
        """Every contract of ``usage_point``, oldest first."""
        a = customer_agreement
        rows = self._rows(
            "read contracts",
            select(a).where(a.c.usage_point == usage_point).order_by(a.c.valid_from),
        )
        return [bulk.agreement_of(r) for r in rows]

    def contract_in_force(self, usage_point: str, at: datetime) -> CustomerAgreement | None:
        at = utc(at)
        a = customer_agreement
        rows = self._rows(
            "find a contract",
            select(a).where(a.c.usage_point == usage_point, _during(a, at)),
        )
        return bulk.agreement_of(rows[0]) if rows else None

    def contract_at(self, meter_id: int, at: datetime) -> CustomerAgreement | None:
        """The contract in force at ``at`` at the usage point where ``meter_id`` was then.
        For an interval read (identified by its end), ask at the interval's start."""
        at = utc(at)
        a, i = customer_agreement, usage_point_meter
        rows = self._rows(
            "find a contract",
            select(a)
            .join(i, i.c.usage_point == a.c.usage_point)
            .where(i.c.meter_id == meter_id, _during(i, at), _during(a, at)),
        )
        return bulk.agreement_of(rows[0]) if rows else None

    def retailer_spans(
        self, usage_point: str, start: datetime, end: datetime
    ) -> list[RetailerSpan]:
        """Who supplied ``usage_point`` over ``[start, end)``, split at switch dates: what
        each retailer may see of the data there. Time without a contract is in no span."""
        start, end = utc(start, "period start"), utc(end, "period end")
        if end <= start:
            raise RegistryError(f"the period ends at {end.isoformat()}, not after its start")
        return [
            RetailerSpan(c.retailer, c.mrid, c.customer, c.tariff, c.usage_point, lo, hi)
            for c, lo, hi in clip(self.contracts(usage_point), start, end)
        ]

    def meter_retailer_spans(
        self, meter_id: int, start: datetime, end: datetime
    ) -> list[RetailerSpan]:
        """Who may see the data of ``meter_id`` over ``[start, end)``: the contracts of the
        usage points where it was installed, each cut to the time it was there."""
        start, end = utc(start, "period start"), utc(end, "period end")
        if end <= start:
            raise RegistryError(f"the period ends at {end.isoformat()}, not after its start")
        spans: list[RetailerSpan] = []
        for place, lo, hi in clip(self.installations(meter_id), start, end):
            spans.extend(self.retailer_spans(place.usage_point, lo, hi))
        return spans

    def customers_in_area(self, area: str, at: datetime) -> list[CustomerSite]:
        """The customers with a contract in force at ``at`` at usage points of ``area``,
        with where they are and the electric meter there (for outage alarms)."""
        at = utc(at)
        a, p, c, i, m = customer_agreement, usage_point, customer, usage_point_meter, meter
        installed = (
            select(i.c.usage_point, i.c.meter_id)
            .join(m, and_(m.c.meter_id == i.c.meter_id, m.c.commodity == "electricity"))
            .where(_during(i, at))
            .subquery()
        )
        rows = self._rows(
            "list customers of an area",
            select(
                c.c.mrid,
                c.c.name,
                c.c.kind,
                p.c.mrid,
                p.c.address,
                p.c.area,
                p.c.latitude,
                p.c.longitude,
                installed.c.meter_id,
            )
            .select_from(a)
            .join(c, c.c.mrid == a.c.customer)
            .join(p, p.c.mrid == a.c.usage_point)
            .outerjoin(installed, installed.c.usage_point == p.c.mrid)
            .where(p.c.area == area, _during(a, at))
            .order_by(p.c.mrid),
        )
        return [
            CustomerSite(
                customer=r[0],
                name=r[1],
                kind=CustomerKind(r[2]),
                usage_point=r[3],
                address=r[4],
                area=r[5],
                latitude=r[6],
                longitude=r[7],
                meter_id=r[8],
            )
            for r in rows
        ]

    def customers_by_area(
        self, at: datetime, meter_ids: Iterable[int] | None = None
    ) -> dict[str, int]:
        """How many customers (distinct) had a contract in force at ``at``, per area; with
        ``meter_ids``, only where those meters were installed then (the customers an
        outage reported by those meters touches)."""
        at = utc(at)
        a, p, i = customer_agreement, usage_point, usage_point_meter
        query = (
            select(p.c.area, func.count(a.c.customer.distinct()))
            .select_from(a)
            .join(p, p.c.mrid == a.c.usage_point)
            .where(_during(a, at))
            .group_by(p.c.area)
        )
        if meter_ids is None:
            return {area: int(n) for area, n in self._rows("count customers", query)}
        ids = sorted(set(meter_ids))

        def work(conn: Connection) -> dict[str, int]:
            ids_col = meter.c.meter_id
            with staging_table(conn, "stage_outage", [ids_col]) as s:
                load_rows(conn, s, ["meter_id"], ((x,) for x in ids))
                # the usage points those meters were at, as a set the planner starts from
                points = select(i.c.usage_point).where(
                    i.c.meter_id.in_(select(s.c.meter_id)), _during(i, at)
                )
                hit = query.where(a.c.usage_point.in_(points))
                return {area: int(n) for area, n in conn.execute(hit)}

        return self._read("count customers", work) if ids else {}

    # -- the first registry's API, kept for callers written against it -----------------------

    def register(self, records: Sequence[MeterRecord]) -> int:
        """Register simulator meters (see ``MeterRecord``); returns how many were new."""
        now = datetime.now(UTC)
        return self.register_fleet([r.site() for r in records], now).meters
