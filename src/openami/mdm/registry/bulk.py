"""Bulk registration: a whole fleet, its customers, retailers, tariffs and contracts.

Set-based rather than row by row, because a utility registers millions at once: the batch
is loaded into a temporary staging table at the backend's own speed (``COPY`` on PostgreSQL,
``executemany`` on SQLite), checked against what is stored with a handful of joins, and
moved into the real tables with one ``INSERT ... SELECT`` each. Registration is idempotent:
what is already registered is recognised and skipped (a meter registered again with other
identity details is refused, never silently ignored), so a second run adds nothing.

Each function takes a connection inside the caller's write transaction: the batch lands
whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    Table,
    and_,
    exists,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from openami.errors import RegistryError
from openami.mdm.registry.model import (
    Commodity,
    CustomerAgreement,
    FleetRegistration,
    MeterSite,
    UsagePoint,
    utc,
)
from openami.mdm.registry.rules import check_contracts
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
from openami.store.sql import load_rows, staging_table

__all__ = [
    "add_contracts",
    "add_rows",
    "agreement_of",
    "lock_tables",
    "point_row",
    "register_fleet",
    "unique",
]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def lock_tables(conn: Connection, tables: Sequence[Table], mode: str) -> None:
    """On PostgreSQL, ``LOCK TABLE`` in ``mode`` (SQLite's ``BEGIN IMMEDIATE`` already
    holds the one database-wide write lock). Bulk work takes SHARE ROW EXCLUSIVE on the
    tables its checks read; single changes take ROW EXCLUSIVE: bulk runs alone, single
    changes run side by side and lock their own rows."""
    if conn.dialect.name != "postgresql":
        return
    names = ", ".join(conn.dialect.identifier_preparer.format_table(t) for t in tables)
    conn.exec_driver_sql(f"LOCK TABLE {names} IN {mode} MODE")


_ANALYZE_AFTER = 10_000  # rows added to a table before its planner statistics are renewed


def analyze(conn: Connection, added: dict[Table, int]) -> None:
    """Renew PostgreSQL's planner statistics of tables a bulk load grew a lot. Until
    autovacuum gets to it a freshly filled table looks empty to the planner, and a look-up
    such as "the contract of meter m" then scans a million rows (100 ms instead of 0.1)."""
    if conn.dialect.name != "postgresql":
        return  # SQLite plans from its indexes without statistics, well enough here
    grown = [t for t, n in added.items() if n >= _ANALYZE_AFTER]
    if grown:
        names = ", ".join(conn.dialect.identifier_preparer.format_table(t) for t in grown)
        conn.exec_driver_sql(f"ANALYZE {names}")


def unique(records: Iterable[T], key: Callable[[T], K], what: str) -> dict[K, T]:
    """``records`` by key; the same record twice is kept once, two different ones with one
    key are refused (which one was meant is not ours to guess)."""
    listed = list(records)
    out = {key(r): r for r in listed}
    if len(out) == len(listed):  # the usual case, checked at C speed
        return out
    out = {}
    for record in listed:
        k = key(record)
        seen = out.setdefault(k, record)
        if seen is not record and seen != record:
            raise RegistryError(f"{what} {k} appears twice in one batch with different details")
    return out


def _distinct(keys: Sequence[Hashable], what: str) -> None:
    """No key twice among ``keys`` (each belongs to a different record)."""
    if len(set(keys)) != len(keys):
        seen: set[Hashable] = set()
        for k in keys:
            if k in seen:
                raise RegistryError(f"{what} {k} is given to two meters in one batch")
            seen.add(k)


def _inserted(conn: Connection, statement: Any) -> int:
    """Run an ``INSERT ... SELECT``; return how many rows it added (SQLAlchemy keeps an
    INSERT's row count only when asked to)."""
    result = conn.execute(statement.execution_options(preserve_rowcount=True))
    return int(result.rowcount)


def _insert_new(
    conn: Connection, table: Table, key: str, names: Sequence[str], rows: Select[Any]
) -> int:
    """``INSERT ... SELECT ... ON CONFLICT (key) DO NOTHING``: rows whose key is stored
    already are skipped by the unique index itself. (A ``NOT EXISTS`` against the table
    being filled leaves the plan to PostgreSQL's statistics of that table, which are wrong
    while it fills: one such plan took a minute for 100,000 rows.) SQLite needs a WHERE
    in the SELECT to parse the ON CONFLICT, hence the ``true``."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(table)
        .from_select(list(names), rows.where(true()))
        .on_conflict_do_nothing(index_elements=[key])
    )
    return _inserted(conn, statement)


def _first(conn: Connection, statement: Any) -> Any:
    return conn.execute(statement.limit(1)).first()


def add_rows(
    conn: Connection,
    table: Table,
    key: str,
    rows: Sequence[dict[str, Any]],
) -> int:
    """Insert the ``rows`` whose ``key`` is not stored yet; return how many were new.

    Stored rows are left as they are: adding the same customers twice is a no-op."""
    if not rows:
        return 0
    columns = list(rows[0])
    with staging_table(conn, f"stage_{table.name}", [table.c[c] for c in columns]) as stage:
        load_rows(conn, stage, columns, ([row[c] for c in columns] for row in rows))
        added = _insert_new(conn, table, key, columns, select(*(stage.c[c] for c in columns)))
        analyze(conn, {table: added})
        return added


# -- the fleet ---------------------------------------------------------------------------------

_METER = [c.name for c in meter.columns]
_POINT = [c.name for c in usage_point.columns]
_STAGE = [
    *(meter.c[name] for name in _METER),
    Column("com_module", com_module.c.mrid.type),
    Column("com_address", com_module.c.address.type),
    *(Column(f"up_{c.name}", c.type) for c in usage_point.columns),
    Column("host_meter_id", meter.c.meter_id.type),
    Column("fresh", meter.c.meter_id.type),  # 1: not registered before this batch
]


def _site_row(site: MeterSite, at: datetime) -> tuple[Any, ...]:
    m, unit, point = site.meter, site.com_module, site.usage_point
    installed = m.installed_at or at
    up = (None,) * len(_POINT) if point is None else tuple(getattr(point, n) for n in _POINT)
    return (
        m.meter_id,
        m.mrid,
        m.serial,
        m.system_title,
        m.kind.value,
        m.commodity.value,
        m.manufacturer,
        installed,
        m.removed_at,
        None if unit is None else unit.mrid,
        None if unit is None else unit.address,
        *up,
        site.host_meter_id,
        0,
    )


def _check_batch(sites: Sequence[MeterSite]) -> None:
    """Rules one batch must keep among its own rows, before anything is stored."""
    _distinct([s.meter.serial for s in sites], "serial")
    _distinct([s.meter.mrid for s in sites], "meter mRID")
    _distinct([s.meter.system_title for s in sites if s.meter.system_title], "system title")
    _distinct([s.com_module.mrid for s in sites if s.com_module], "unit")
    unique((s.usage_point for s in sites if s.usage_point), lambda p: p.mrid, "usage point")
    _distinct(
        [(s.usage_point.mrid, s.meter.commodity) for s in sites if s.usage_point],
        "usage point and commodity",
    )
    for site in sites:
        if site.host_meter_id is not None and site.meter.commodity is Commodity.ELECTRICITY:
            raise RegistryError(
                f"meter {site.meter.meter_id} is an electric meter; only gas and water "
                "meters are linked to a host meter"
            )


def _says(template: str) -> Callable[[Any], str]:
    """A message for ``_refuse``: ``template`` filled with the offending row's values."""
    return lambda row: template.format(*row)


def _refuse(conn: Connection, statement: Any, message: Callable[[Any], str]) -> None:
    row = _first(conn, statement)
    if row is not None:
        raise RegistryError(message(row))


def register_fleet(conn: Connection, sites: Sequence[MeterSite], at: datetime) -> FleetRegistration:
    """Register ``sites``: meters, their units, usage points, and the history rows that
    say which unit serves which meter, where each is installed and which gas or water meter
    reports through which electric meter. Meters already registered (by ``meter_id``, with
    the same identity) are skipped whole, their units and places included: later changes
    go through swaps and installations, not through registration."""
    at = utc(at, "registration time")
    batch = unique(sites, lambda s: s.meter.meter_id, "meter")
    if not batch:
        return FleetRegistration()
    _check_batch(list(batch.values()))
    lock_tables(
        conn,
        [meter, com_module, meter_com_module, usage_point, usage_point_meter, auxiliary_meter_link],
        "SHARE ROW EXCLUSIVE",
    )
    columns = [c.name for c in _STAGE]
    with staging_table(conn, "stage_meter_site", _STAGE) as s:
        load_rows(conn, s, columns, (_site_row(site, at) for site in batch.values()))
        m = meter.c
        same_id = and_(m.meter_id == s.c.meter_id)
        _refuse(
            conn,
            select(s.c.meter_id, m.serial, s.c.serial)
            .join(meter, same_id)
            .where(
                or_(
                    m.serial != s.c.serial,
                    m.mrid != s.c.mrid,
                    m.kind != s.c.kind,
                    m.commodity != s.c.commodity,
                    ~m.system_title.is_not_distinct_from(s.c.system_title),
                )
            ),
            lambda r: (
                f"meter {r[0]} is registered with other identity details "
                f"(stored serial {r[1]}, this batch {r[2]})"
            ),
        )
        conn.execute(update(s).values(fresh=1).where(~exists().where(same_id)))
        fresh = s.c.fresh == 1
        new_meters = int(conn.execute(select(func.count()).where(fresh)).scalar_one())
        if new_meters == 0:
            return FleetRegistration()
        for name in ("serial", "mrid", "system_title"):  # a new meter with a taken identity
            _refuse(
                conn,
                select(s.c.meter_id, m.meter_id, s.c[name])
                .join(meter, m[name] == s.c[name])
                .where(fresh),
                _says("meter {0}: " + name + " {2!r} belongs to meter {1}"),
            )
        _check_places(conn, s, fresh)

        unit_rows = select(s.c.com_module, s.c.com_address).where(
            fresh, s.c.com_module.is_not(None)
        )
        new_units = _insert_new(conn, com_module, "mrid", ["mrid", "address"], unit_rows)
        point_rows = select(*(s.c[f"up_{n}"] for n in _POINT)).where(
            fresh, s.c.up_mrid.is_not(None)
        )
        new_points = _insert_new(conn, usage_point, "mrid", _POINT, point_rows.distinct())
        _insert(conn, meter, {n: s.c[n] for n in _METER}, fresh)
        _refuse(
            conn,
            select(s.c.meter_id, s.c.host_meter_id)
            .outerjoin(meter, m.meter_id == s.c.host_meter_id)
            .where(fresh, s.c.host_meter_id.is_not(None))
            .where(or_(m.meter_id.is_(None), m.commodity != Commodity.ELECTRICITY.value)),
            lambda r: f"meter {r[0]}: host meter {r[1]} is not a registered electric meter",
        )
        since = {"meter_id": s.c.meter_id, "valid_from": s.c.installed_at}
        histories = {
            meter_com_module: ("com_module", s.c.com_module),
            usage_point_meter: ("usage_point", s.c.up_mrid),
            auxiliary_meter_link: ("host_meter_id", s.c.host_meter_id),
        }
        added = {meter: new_meters, com_module: new_units, usage_point: new_points}
        for table, (name, source) in histories.items():
            where = and_(fresh, source.is_not(None))
            added[table] = _insert(conn, table, {**since, name: source}, where)
        analyze(conn, added)
    return FleetRegistration(meters=new_meters, com_modules=new_units, usage_points=new_points)


def _insert(conn: Connection, table: Table, values: dict[str, Any], where: Any) -> int:
    names = list(values)
    rows = select(*(values[n].label(n) for n in names)).where(where)
    return _inserted(conn, table.insert().from_select(names, rows))


def _check_places(conn: Connection, s: Table, fresh: ColumnElement[bool]) -> None:
    """A unit in the batch must not already serve a meter, nor be registered with another
    address; a usage point must not already have a meter of the same commodity."""
    h, u = meter_com_module.c, com_module.c
    _refuse(
        conn,
        select(s.c.meter_id, s.c.com_module, h.meter_id)
        .join(meter_com_module, and_(h.com_module == s.c.com_module, h.valid_to.is_(None)))
        .where(fresh),
        lambda r: f"meter {r[0]}: unit {r[1]} already serves meter {r[2]}",
    )
    _refuse(
        conn,
        select(s.c.meter_id, s.c.com_module, u.address)
        .join(com_module, and_(u.mrid == s.c.com_module, u.address != s.c.com_address))
        .where(fresh),
        lambda r: f"meter {r[0]}: unit {r[1]} is registered with address {r[2]}",
    )
    i, m = usage_point_meter.c, meter.c
    _refuse(
        conn,
        select(s.c.meter_id, s.c.up_mrid, i.meter_id)
        .join(usage_point_meter, and_(i.usage_point == s.c.up_mrid, i.valid_to.is_(None)))
        .join(meter, and_(m.meter_id == i.meter_id, m.commodity == s.c.commodity))
        .where(fresh),
        lambda r: f"meter {r[0]}: usage point {r[1]} already has meter {r[2]} installed",
    )


# -- contracts ---------------------------------------------------------------------------------

_AGREEMENT = [c.name for c in customer_agreement.columns]


def agreement_of(row: Any) -> CustomerAgreement:
    return CustomerAgreement(**{name: row._mapping[name] for name in _AGREEMENT})


def add_contracts(
    conn: Connection, contracts: Sequence[CustomerAgreement], *, allow_gap: bool
) -> int:
    """Add contracts not stored yet (the same contract again is a no-op; another one under a
    stored mRID is refused), keeping every usage point's contracts free of overlaps, and of
    gaps next to the new ones unless ``allow_gap``. Returns how many were new."""
    batch = unique(contracts, lambda c: c.mrid, "contract")
    if not batch:
        return 0
    lock_tables(conn, [customer_agreement], "SHARE ROW EXCLUSIVE")
    columns = _AGREEMENT
    with staging_table(conn, "stage_agreement", list(customer_agreement.columns)) as s:
        load_rows(conn, s, columns, ([getattr(c, n) for n in columns] for c in batch.values()))
        a = customer_agreement.c
        stored = a.mrid == s.c.mrid
        differs = [~a[n].is_not_distinct_from(s.c[n]) for n in columns if n != "mrid"]
        _refuse(
            conn,
            select(s.c.mrid).join(customer_agreement, stored).where(or_(*differs)),
            _says("contract {0} is registered with other details"),
        )
        for known in conn.execute(select(s.c.mrid).join(customer_agreement, stored)).scalars():
            del batch[known]  # the same contract again: nothing to do
        if not batch:
            return 0
        fresh = ~exists().where(stored)
        for ref, key in (
            ("customer", customer.c.mrid),
            ("usage point", usage_point.c.mrid),
            ("retailer", retailer.c.mrid),
            ("tariff", pricing_structure.c.code),
        ):
            column = s.c[ref.replace(" ", "_")]
            _refuse(
                conn,
                select(s.c.mrid, column).where(fresh, ~exists().where(key == column)),
                _says("contract {0} names " + ref + " {1}, which is not registered"),
            )
        by_point: dict[str, list[CustomerAgreement]] = {}
        for c in batch.values():
            by_point.setdefault(c.usage_point, []).append(c)
        touched = select(s.c.usage_point).where(fresh).distinct().scalar_subquery()
        for row in conn.execute(select(customer_agreement).where(a.usage_point.in_(touched))):
            by_point[row.usage_point].append(agreement_of(row))
        new = set(batch)
        for point, timeline in by_point.items():
            check_contracts(point, timeline, new, allow_gap=allow_gap)
        added = _insert_new(conn, customer_agreement, "mrid", columns, select(s))
        analyze(conn, {customer_agreement: added})
        return added


def point_row(point: UsagePoint) -> dict[str, Any]:
    return {n: getattr(point, n) for n in _POINT}
