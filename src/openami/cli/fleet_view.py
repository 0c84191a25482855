"""What the operator sees while a fleet or a head-end runs: Rich renderables, not output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from rich.console import Group
from rich.table import Table
from rich.text import Text

from openami.fleet.runner import RunTotals
from openami.fleet.simulator import FleetSimulator
from openami.headend.udp import HeadEndStats

JST = timezone(timedelta(hours=9))

__all__ = ["delivery_table", "fleet_status", "headend_line", "headend_status", "status_line"]


def delivery_table(rows: list[tuple[str, str, int, int]]) -> Table:
    """Delivery ratio over the field network (first tries), per area and medium."""
    table = Table(title_justify="left", expand=False)
    table.add_column("area")
    table.add_column("medium")
    table.add_column("sent", justify="right")
    table.add_column("delivered", justify="right")
    for area, medium, sent, delivered in rows:
        ratio = f"{delivered / sent:.2%}" if sent else "-"
        table.add_row(area, medium, f"{sent:,}", ratio)
    return table


def fleet_status(
    totals: RunTotals,
    intervals_total: int,
    elapsed_s: float,
    simulated: str,
    rows: list[tuple[str, str, int, int]],
) -> Group:
    rate = totals.sent / elapsed_s if elapsed_s > 0 else 0.0
    head = Text.assemble(
        ("intervals ", "bold"),
        f"{totals.intervals}/{intervals_total}  ",
        ("simulated ", "bold"),
        f"{simulated}  ",
        ("pushes ", "bold"),
        f"{totals.pushes:,}  ",
        ("sent ", "bold"),
        f"{totals.sent:,} ({rate:,.0f}/s)  ",
        ("requests answered ", "bold"),
        f"{totals.answers:,}/{totals.requests:,}  ",
        ("waited for head-end ", "bold"),
        f"{totals.waited_s:.1f} s",
    )
    return Group(head, delivery_table(rows))


def status_line(
    totals: RunTotals, intervals_total: int, elapsed_s: float, sim: FleetSimulator
) -> str:
    """One line per interval, for logs: progress and the worst-delivering network."""
    moment = datetime.fromtimestamp(sim.now_s, tz=UTC).astimezone(JST)
    rows = [(d / s, f"{a}/{m}") for a, m, s, d in sim.delivery_by_group() if s]
    worst = min(rows, default=(1.0, "-"))
    rate = totals.sent / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"interval {totals.intervals}/{intervals_total} ({moment:%Y-%m-%d %H:%M} JST): "
        f"pushes {totals.pushes:,}, sent {totals.sent:,} ({rate:,.0f}/s), "
        f"lowest delivery {worst[0]:.2%} on {worst[1]}, "
        f"waited for head-end {totals.waited_s:.0f} s"
    )


def headend_line(stats: HeadEndStats, elapsed_s: float, rate: float) -> str:
    """One line of head-end statistics, for logs."""
    rejected = sum(stats.rejected.values())
    return (
        f"{elapsed_s:,.0f} s: {stats.datagrams:,} datagrams ({rate:,.0f}/s), "
        f"{stats.accepted['push']:,} pushes, {rejected:,} rejected, "
        f"{stats.reads_published:,} reads published, "
        f"{stats.pending_collections:,} collections pending"
    )


def headend_status(stats: HeadEndStats, elapsed_s: float, rate: float) -> Table:
    table = Table(title="openami head-end", title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rejected = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.rejected.items())) or "none"
    rows = [
        ("datagrams received", f"{stats.datagrams:,}"),
        ("datagrams/s (last second)", f"{rate:,.0f}"),
        ("interval pushes", f"{stats.accepted['push']:,}"),
        ("gas/water index pushes", f"{stats.accepted['utility']:,}"),
        ("events", f"{stats.accepted['event']:,}"),
        ("answers to collections", f"{stats.accepted['response']:,}"),
        ("rejected", rejected),
        ("reads published", f"{stats.reads_published:,}"),
        (
            "collections pending / done / failed",
            f"{stats.pending_collections:,} / {stats.collections_completed:,} / "
            f"{stats.collections_failed:,}",
        ),
        ("running", f"{elapsed_s:,.0f} s"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table
