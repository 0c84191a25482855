"""Single changes over time: switch a retailer, end a contract, swap a communication unit,
install or remove a meter, link a gas or water meter to its host.

Each runs inside the caller's write transaction and follows one pattern: lock the subject
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers), load its timeline, apply the change in memory, let ``rules`` judge the result,
then write. Two changes of one usage point or one meter therefore never both pass their
checks on the same stale picture.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.engine import Connection

from openami.errors import RegistryError
from openami.mdm.registry.bulk import agreement_of, lock_tables
from openami.mdm.registry.model import (
    AuxiliaryLink,
    Commodity,
    ComModule,
    ComModuleService,
    CustomerAgreement,
    Installation,
    MeterKind,
    stamp,
    utc,
)
from openami.mdm.registry.rules import check_contracts, check_history
from openami.mdm.registry.schema import (
    auxiliary_meter_link,
    com_module,
    customer,
    customer_agreement,
    meter,
    meter_com_module,
    pricing_structure,
    retailer,
    usage_point,
    usage_point_meter,
)

__all__ = [
    "end_contract",
    "install_meter",
    "link_auxiliary",
    "remove_meter",
    "swap_com_module",
    "switch_retailer",
    "unlink_auxiliary",
]


def _locked(conn: Connection, table: Table, key: Any, value: Any, what: str) -> Any:
    """The row of ``table`` with ``key == value``, locked for this transaction; a missing
    one is a ``RegistryError`` naming ``what``."""
    row = conn.execute(select(table).where(key == value).with_for_update()).first()
    if row is None:
        raise RegistryError(f"{what} {value} is not registered")
    return row


def _require(conn: Connection, key: Any, value: Any, what: str) -> None:
    """``value`` is a registered ``key`` (checked here to name it, not leave it to a FK)."""
    if conn.execute(select(key).where(key == value)).first() is None:
        raise RegistryError(f"{what} {value} is not registered")


# -- contracts -------------------------------------------------------------------------------


def _contracts(conn: Connection, point: str) -> list[CustomerAgreement]:
    a = customer_agreement.c
    rows = conn.execute(select(customer_agreement).where(a.usage_point == point))
    return sorted((agreement_of(r) for r in rows), key=lambda c: c.valid_from)


def switch_retailer(
    conn: Connection,
    point: str,
    at: datetime,
    *,
    mrid: str,
    retailer_mrid: str,
    tariff: str,
    customer_mrid: str | None,
    contract_current_a: int | None,
    starts: datetime | None,
    allow_gap: bool,
) -> CustomerAgreement:
    """End the contract in force at ``point`` at ``at`` and start ``mrid`` with
    ``retailer_mrid`` on ``tariff`` at ``starts`` (``at`` by default; later only with
    ``allow_gap``), for the rest of the old contract's span. Asking again for a switch that
    is already recorded (same ``mrid``, same terms) returns it and changes nothing."""
    at = utc(at, "switch time")
    starts = at if starts is None else utc(starts, "new contract start")
    lock_tables(conn, [customer_agreement], "ROW EXCLUSIVE")
    _locked(conn, usage_point, usage_point.c.mrid, point, "usage point")
    timeline = _contracts(conn, point)
    known = conn.execute(
        select(customer_agreement).where(customer_agreement.c.mrid == mrid)
    ).first()
    if known is not None:
        done = agreement_of(known)
        if (done.usage_point, done.retailer, done.tariff, done.valid_from) == (
            point,
            retailer_mrid,
            tariff,
            starts,
        ) and customer_mrid in (None, done.customer):
            return done
        raise RegistryError(f"contract {mrid} is registered already, with other terms")
    current = next((c for c in timeline if c.in_force(at)), None)
    if current is None:
        raise RegistryError(f"usage point {point} has no contract in force at {stamp(at)}")
    if at == current.valid_from:
        raise RegistryError(
            f"usage point {point}: contract {current.mrid} starts at {stamp(at)}; a switch "
            "then would leave it empty: end it and add the new contract instead"
        )
    if starts < at:
        raise RegistryError(
            f"usage point {point}: the new contract would start at {stamp(starts)}, before "
            f"contract {current.mrid} ends at {stamp(at)}"
        )
    if current.valid_to is not None and starts >= current.valid_to:
        raise RegistryError(
            f"usage point {point}: the new contract would start at {stamp(starts)}, after "
            f"the span of contract {current.mrid} (to {stamp(current.valid_to)})"
        )
    _require(conn, retailer.c.mrid, retailer_mrid, "retailer")
    _require(conn, pricing_structure.c.code, tariff, "tariff")
    holder = current.customer if customer_mrid is None else customer_mrid
    _require(conn, customer.c.mrid, holder, "customer")
    ended = replace(current, valid_to=at)
    new = CustomerAgreement(
        mrid=mrid,
        customer=holder,
        usage_point=point,
        retailer=retailer_mrid,
        tariff=tariff,
        valid_from=starts,
        valid_to=current.valid_to,
        contract_current_a=contract_current_a,
    )
    others = [c for c in timeline if c.mrid != current.mrid]
    check_contracts(point, [*others, ended, new], {ended.mrid, new.mrid}, allow_gap=allow_gap)
    a = customer_agreement.c
    conn.execute(update(customer_agreement).where(a.mrid == current.mrid).values(valid_to=at))
    conn.execute(
        customer_agreement.insert(),
        [{c.name: getattr(new, c.name) for c in customer_agreement.columns}],
    )
    return new


def end_contract(
    conn: Connection, mrid: str, at: datetime, *, allow_gap: bool
) -> CustomerAgreement:
    """Set the end of contract ``mrid`` to ``at`` (a move-out, or a fixed-term end).
    Ending it before the next contract starts leaves a gap: refused unless ``allow_gap``."""
    at = utc(at, "contract end")
    lock_tables(conn, [customer_agreement], "ROW EXCLUSIVE")
    row = conn.execute(
        select(customer_agreement.c.usage_point).where(customer_agreement.c.mrid == mrid)
    ).first()
    if row is None:
        raise RegistryError(f"contract {mrid} is not registered")
    point = row.usage_point
    _locked(conn, usage_point, usage_point.c.mrid, point, "usage point")
    timeline = _contracts(conn, point)
    current = next(c for c in timeline if c.mrid == mrid)
    ended = replace(current, valid_to=at)  # refuses an end not after the start
    others = [c for c in timeline if c.mrid != mrid]
    check_contracts(point, [*others, ended], {mrid}, allow_gap=allow_gap)
    conn.execute(
        update(customer_agreement).where(customer_agreement.c.mrid == mrid).values(valid_to=at)
    )
    return ended


# -- meters: units, places, co-metering ---------------------------------------------------------


def _history(conn: Connection, table: Table, meter_id: int) -> list[Any]:
    return list(
        conn.execute(select(table).where(table.c.meter_id == meter_id).order_by(table.c.valid_from))
    )


def _close_open(conn: Connection, table: Table, meter_id: int, at: datetime, what: str) -> Any:
    """Close the open row of ``meter_id`` in ``table`` at ``at``; return the closed row."""
    open_row = next((r for r in _history(conn, table, meter_id) if r.valid_to is None), None)
    if open_row is None:
        raise RegistryError(f"meter {meter_id} has no {what} to end at {stamp(at)}")
    if at <= open_row.valid_from:
        raise RegistryError(
            f"meter {meter_id}: the {what} since {stamp(open_row.valid_from)} cannot end at "
            f"{stamp(at)}"
        )
    conn.execute(
        update(table)
        .where(and_(table.c.meter_id == meter_id, table.c.valid_to.is_(None)))
        .values(valid_to=at)
    )
    return open_row


def swap_com_module(
    conn: Connection, meter_id: int, unit: ComModule, at: datetime
) -> ComModuleService:
    """Fit ``unit`` to the separated meter ``meter_id`` from ``at``: the unit serving it is
    taken off at ``at`` (swaps are recorded in order, after the last one). The meter keeps
    its id, serial, keys and data; only the address the head-end reaches changes."""
    at = utc(at, "swap time")
    lock_tables(conn, [meter_com_module], "ROW EXCLUSIVE")
    row = _locked(conn, meter, meter.c.meter_id, meter_id, "meter")
    if row.kind != MeterKind.SEPARATED.value:
        raise RegistryError(
            f"meter {meter_id} is {row.kind}: its communication unit is not a separate part; "
            "exchange the meter instead"
        )
    h = meter_com_module.c
    serving = conn.execute(
        select(h.meter_id).where(h.com_module == unit.mrid, h.valid_to.is_(None)).with_for_update()
    ).first()
    if serving is not None:
        raise RegistryError(f"unit {unit.mrid} already serves meter {serving.meter_id}")
    stored = conn.execute(select(com_module).where(com_module.c.mrid == unit.mrid)).first()
    if stored is None:
        conn.execute(com_module.insert(), [{"mrid": unit.mrid, "address": unit.address}])
    elif stored.address != unit.address:
        raise RegistryError(f"unit {unit.mrid} is registered with address {stored.address}")
    history = _history(conn, meter_com_module, meter_id)
    if history and history[-1].valid_to is None:
        _close_open(conn, meter_com_module, meter_id, at, "communication unit")
    elif history and at < history[-1].valid_to:
        raise RegistryError(
            f"meter {meter_id}: its last unit served until {stamp(history[-1].valid_to)}; "
            f"a unit cannot be fitted at {stamp(at)}"
        )
    conn.execute(
        meter_com_module.insert(),
        [{"meter_id": meter_id, "com_module": unit.mrid, "valid_from": at, "valid_to": None}],
    )
    return ComModuleService(meter_id, unit.mrid, unit.address, at)


def install_meter(conn: Connection, meter_id: int, point: str, at: datetime) -> Installation:
    """Install ``meter_id`` at ``point`` from ``at``. The meter must not be installed
    anywhere then, and the point must not have another meter of the same commodity from
    ``at`` on."""
    at = utc(at, "installation time")
    lock_tables(conn, [usage_point_meter], "ROW EXCLUSIVE")
    row = _locked(conn, meter, meter.c.meter_id, meter_id, "meter")
    _locked(conn, usage_point, usage_point.c.mrid, point, "usage point")
    new = Installation(meter_id, point, at)
    mine = [_installation(r) for r in _history(conn, usage_point_meter, meter_id)]
    check_history([*mine, new], lambda i: f"installation at {i.usage_point}", f"meter {meter_id}")
    i, m = usage_point_meter.c, meter.c
    clash = conn.execute(
        select(i.meter_id, i.valid_from, i.valid_to)
        .join(meter, m.meter_id == i.meter_id)
        .where(i.usage_point == point, m.commodity == row.commodity)
        .where(or_(i.valid_to.is_(None), i.valid_to > at))
    ).first()
    if clash is not None:
        raise RegistryError(
            f"usage point {point} has {Commodity(row.commodity)} meter {clash.meter_id} "
            f"installed from {stamp(clash.valid_from)} to {stamp(clash.valid_to)}"
        )
    conn.execute(
        usage_point_meter.insert(),
        [{"meter_id": meter_id, "usage_point": point, "valid_from": at, "valid_to": None}],
    )
    return new


def remove_meter(conn: Connection, meter_id: int, at: datetime) -> Installation:
    """End the installation of ``meter_id`` where it is, at ``at``."""
    at = utc(at, "removal time")
    lock_tables(conn, [usage_point_meter], "ROW EXCLUSIVE")
    _locked(conn, meter, meter.c.meter_id, meter_id, "meter")
    closed = _close_open(conn, usage_point_meter, meter_id, at, "installation")
    return Installation(meter_id, closed.usage_point, closed.valid_from, at)


def _installation(row: Any) -> Installation:
    return Installation(row.meter_id, row.usage_point, row.valid_from, row.valid_to)


def link_auxiliary(
    conn: Connection, meter_id: int, host_meter_id: int, at: datetime
) -> AuxiliaryLink:
    """Link the gas or water meter ``meter_id`` to the electric meter ``host_meter_id``
    from ``at`` (its readings arrive through the host's unit)."""
    at = utc(at, "link time")
    lock_tables(conn, [auxiliary_meter_link], "ROW EXCLUSIVE")
    row = _locked(conn, meter, meter.c.meter_id, meter_id, "meter")
    if row.commodity == Commodity.ELECTRICITY.value:
        raise RegistryError(f"meter {meter_id} is an electric meter; link gas or water meters")
    host = conn.execute(select(meter.c.commodity).where(meter.c.meter_id == host_meter_id)).first()
    if host is None or host.commodity != Commodity.ELECTRICITY.value:
        raise RegistryError(f"host meter {host_meter_id} is not a registered electric meter")
    new = AuxiliaryLink(meter_id, host_meter_id, at)
    links = [
        AuxiliaryLink(r.meter_id, r.host_meter_id, r.valid_from, r.valid_to)
        for r in _history(conn, auxiliary_meter_link, meter_id)
    ]
    check_history([*links, new], lambda x: f"link to {x.host_meter_id}", f"meter {meter_id}")
    conn.execute(
        auxiliary_meter_link.insert(),
        [{"meter_id": meter_id, "host_meter_id": host_meter_id, "valid_from": at}],
    )
    return new


def unlink_auxiliary(conn: Connection, meter_id: int, at: datetime) -> AuxiliaryLink:
    at = utc(at, "unlink time")
    lock_tables(conn, [auxiliary_meter_link], "ROW EXCLUSIVE")
    _locked(conn, meter, meter.c.meter_id, meter_id, "meter")
    closed = _close_open(conn, auxiliary_meter_link, meter_id, at, "host link")
    return AuxiliaryLink(meter_id, closed.host_meter_id, closed.valid_from, at)
