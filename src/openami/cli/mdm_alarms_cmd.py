"""``openami mdm alarms``: outages and tamper, from the event store of a data dir."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from openami.cli.mdm_shared import DataDir, _emit_json, _instant, _reflowed, _registry

if TYPE_CHECKING:
    from openami.mdm.alarms import Alarm

__all__ = ["alarms_command"]


def _nowhere(_meters: list[int], _at: int) -> Mapping[str, int]:
    """Customers per area when there is no registry: none known."""
    return {}


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "open"
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _alarm_line(alarm: Alarm) -> str:
    where = ", ".join(f"{area or '(no area)'} {n:,}" for area, n in alarm.customers.items())
    state = "OPEN" if alarm.is_open else f"closed {_when(alarm.closed)}"
    return (
        f"{alarm.severity.value} {alarm.kind.value} {alarm.alarm_id}: {alarm.detail}; "
        f"customers: {where or 'unknown'}; {state}"
    )


@_reflowed
def alarms_command(
    data_dir: DataDir,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Replay the events from this time (ISO 8601, e.g. 2026-08-03T00:00+09:00); "
            "default: the last 7 days of stored events.",
        ),
    ] = None,
    open_only: Annotated[bool, typer.Option("--open", help="Only the alarms still open.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Outage and tamper alarms, from the meters' events stored in the data dir.

    An outage groups the meters whose last gasps came within 5 minutes of each other; it
    closes when its last meter reports power again. For each, the customers it touches per
    area come from the registry (DATA_DIR/registry.db). Tamper: a terminal cover opened, a
    strong magnetic field, or reverse flow at a meter without generation.

    Example: openami mdm alarms --data-dir /tmp/ami --open
    """
    from rich.table import Table

    from openami.errors import ConfigError
    from openami.mdm.alarms import AlarmBook, registry_customers, restore_from_reads
    from openami.store.events import EventStore
    from openami.store.lake import IntervalLake

    if not (data_dir / "lake" / "meter_events").is_dir():
        raise ConfigError(
            f"--data-dir {data_dir} holds no meter events (no lake/meter_events); "
            f"make some with `openami demo --data-dir {data_dir}` or `openami mdm run`"
        )
    store = EventStore(data_dir / "lake")
    end = datetime.now(UTC) + timedelta(days=3650)
    start = _instant(since, "--since") if since else None
    if start is None:
        files = store.files()
        last = files[-1].parent.name.removeprefix("day=") if files else None
        start = (
            datetime.fromisoformat(last).replace(tzinfo=UTC) - timedelta(days=6)
            if last
            else end - timedelta(days=7)
        )
    registry = _registry(data_dir)
    book = AlarmBook(registry_customers(registry) if registry is not None else _nowhere)
    book.observe(store.query(start, end))
    if (data_dir / "lake" / "interval_reads").is_dir():
        restore_from_reads(book, IntervalLake(data_dir / "lake"))
    chosen = book.alarms(open_only=open_only)
    if as_json:
        _emit_json(
            [
                {
                    "alarm_id": a.alarm_id,
                    "kind": a.kind.value,
                    "severity": a.severity.value,
                    "opened": _when(a.opened),
                    "closed": None if a.closed is None else _when(a.closed),
                    "meters": a.meters,
                    "down": a.down,
                    "customers": dict(a.customers),
                    "meter_id": a.meter_id,
                    "count": a.count,
                    "meter_minutes": a.meter_minutes,
                    "detail": a.detail,
                }
                for a in chosen
            ]
        )
        return
    table = Table(title=f"alarms since {start:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for column in ("opened (UTC)", "kind", "severity", "meters", "customers by area", "state"):
        table.add_column(column)
    for a in chosen:
        where = ", ".join(f"{area or '-'} {n:,}" for area, n in a.customers.items()) or "-"
        state = (
            f"open, {a.down:,} down"
            if a.is_open and a.down
            else ("open" if a.is_open else f"closed {_when(a.closed)}")
        )
        table.add_row(
            _when(a.opened),
            f"{a.kind.value}: {a.detail}",
            a.severity.value,
            f"{a.meters:,}",
            where,
            state,
        )
    Console().print(table if chosen else "no alarms")
