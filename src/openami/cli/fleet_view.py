"""What the operator sees while a fleet or a head-end runs: Rich renderables, not output."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from openami.fleet.runner import RunTotals
from openami.headend.udp import HeadEndStats

__all__ = ["delivery_table", "fleet_status", "headend_status"]


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
