"""What the user sees: the demo summary as a Rich table, kept apart from printing it."""

from __future__ import annotations

from rich.table import Table

from openami.cli.demo_run import DemoResult

__all__ = ["summary_table"]


def summary_table(result: DemoResult) -> Table:
    table = Table(
        title=f"openami demo: {result.meters:,} meters, {result.days} days", title_justify="left"
    )
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    rows = [
        ("reads expected", f"{result.reads_expected:,}"),
        ("reads received by push", f"{result.reads_received:,}"),
        ("reads re-collected", f"{result.reads_recollected:,}"),
        ("reads stored", f"{result.reads_stored:,}"),
        ("reads missing", f"{result.reads_missing:,}"),
        ("new this run / already stored", f"{result.reads_new:,} / {result.reads_duplicate:,}"),
        ("datagrams sent / lost", f"{result.datagrams_sent:,} / {result.datagrams_lost:,}"),
        (
            "collection requests (rounds)",
            f"{result.collection_requests:,} ({result.collection_rounds})",
        ),
        ("rejected by head-end / meters", _rejected(result.rejected)),
        ("reads in by T+10 min / T+1 h / T+24 h", _deadlines(result.deadlines)),
        ("lake files before / after compaction", "{:,} / {:,}".format(*result.lake_files)),
        ("intervals valid after VEE / failing", f"{result.vee_valid:,} / {result.vee_failed:,}"),
        ("VEE findings", _findings(result.vee_findings)),
        ("alarms: outages (meters, customers) / tamper", _alarms(result.alarms)),
        ("bill-ready contracts", f"{result.bill_ready:,} of {result.contracts:,}"),
        ("billed by time of use", _periods(result.billed_kwh_by_period)),
        ("energy imported", f"{result.energy_import_kwh:,.1f} kWh"),
        ("energy exported", f"{result.energy_export_kwh:,.1f} kWh"),
        (
            "registers reconcile",
            "yes, every meter"
            if result.reconciled
            else f"NO ({result.reconciliation_failures:,} meters)",
        ),
        ("elapsed", f"{result.elapsed_s:.1f} s"),
    ]
    for what, value in rows:
        table.add_row(what, value)
    return table


def _alarms(alarms: dict[str, int]) -> str:
    if not alarms:
        return "none"
    still = f", {alarms['outages_open']} open" if alarms.get("outages_open") else ""
    return (
        f"{alarms.get('outages', 0)} ({alarms.get('outage_meters', 0):,}, "
        f"{alarms.get('outage_customers', 0):,}{still}) / {alarms.get('tamper', 0)}"
    )


def _rejected(rejected: dict[str, int]) -> str:
    total = sum(rejected.values())
    if not total:
        return "0"
    return ", ".join(f"{k} {v:,}" for k, v in sorted(rejected.items()) if v)


def _deadlines(shares: dict[str, float]) -> str:
    if not shares:
        return "-"
    return " / ".join(f"{shares[k]:.2%}" for k in ("by_10_min", "by_1_h", "by_24_h"))


def _findings(findings: dict[str, int]) -> str:
    if not findings:
        return "none"
    return ", ".join(f"{k} {v:,}" for k, v in sorted(findings.items()))


def _periods(periods: dict[str, float]) -> str:
    if not periods:
        return "-"
    return ", ".join(f"{k} {v:,.1f} kWh" for k, v in sorted(periods.items()))
