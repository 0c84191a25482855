"""What an operator sees of a head-end run with ingest workers (rendering only)."""

from __future__ import annotations

from rich.table import Table

from openami.headend.supervisor import SupervisorStats

__all__ = ["supervisor_line", "supervisor_status", "supervisor_summary"]


def supervisor_line(s: SupervisorStats, elapsed_s: float, rate: float) -> str:
    """One line of statistics, for logs."""
    return (
        f"{elapsed_s:,.0f} s: {s.datagrams:,} datagrams ({rate:,.0f}/s), {s.pushes:,} pushes, "
        f"{sum(s.rejected.values()):,} rejected, {s.reads_acked:,} reads on the bus, "
        f"{s.workers_alive} workers, {s.collections_pending:,} collections pending"
    )


def supervisor_status(s: SupervisorStats, elapsed_s: float, rate: float) -> Table:
    table = Table(title="openami head-end", title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rejected = ", ".join(f"{k} {v:,}" for k, v in sorted(s.rejected.items()) if v) or "none"
    rows = [
        ("datagrams received", f"{s.datagrams:,}"),
        ("datagrams/s (last second)", f"{rate:,.0f}"),
        ("pushes (interval, gas/water)", f"{s.pushes:,}"),
        ("rejected", rejected),
        ("reads stored by the bus", f"{s.reads_acked:,}"),
        ("events stored by the bus", f"{s.events_acked:,}"),
        ("ingest workers alive / restarted", f"{s.workers_alive} / {s.worker_restarts}"),
        (
            "collections pending / done / failed",
            f"{s.collections_pending:,} / {s.collections_completed:,} / {s.collections_failed:,}",
        ),
        ("commands pending", f"{s.commands_pending:,}"),
        ("running", f"{elapsed_s:,.0f} s"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table


def supervisor_summary(s: SupervisorStats, elapsed_s: float) -> dict[str, object]:
    """The final statistics as plain data (``--json``)."""
    return {
        "datagrams": s.datagrams,
        "pushes": s.pushes,
        "rejected": {k: v for k, v in s.rejected.items() if v},
        "reads_acked": s.reads_acked,
        "events_acked": s.events_acked,
        "collected_reads": s.collected_reads,
        "collections_completed": s.collections_completed,
        "collections_failed": s.collections_failed,
        "worker_restarts": s.worker_restarts,
        "commands_pending": s.commands_pending,
        "elapsed_s": round(elapsed_s, 3),
    }
