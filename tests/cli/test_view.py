from __future__ import annotations

from pathlib import Path

from rich.console import Console

from openami.cli.demo_run import DemoResult
from openami.cli.view import summary_table

SNAPSHOT = Path(__file__).parent / "snapshots" / "summary.txt"


def _result(**changes: object) -> DemoResult:
    values: dict[str, object] = dict(
        meters=1000,
        days=2,
        seed=1,
        loss=0.02,
        start="2026-08-03T00:00:00+09:00",
        reads_expected=96_000,
        reads_received=94_070,
        reads_recollected=1_930,
        reads_stored=96_000,
        reads_missing=0,
        reads_new=96_000,
        reads_duplicate=0,
        energy_import_kwh=24_852.25,
        energy_export_kwh=5_176.4,
        reconciled=True,
        reconciliation_failures=0,
        datagrams_sent=98_100,
        datagrams_lost=1_962,
        rejected={"security": 0},
        collection_requests=1_940,
        collection_rounds=2,
        elapsed_s=3.2,
        data_dir="openami-data",
        deadlines={"by_10_min": 0.9799, "by_1_h": 0.98, "by_24_h": 1.0},
        vee_valid=96_000,
        vee_failed=0,
        vee_findings={"power_down/import": 120},
        contracts=1000,
        bill_ready=1000,
        billed_kwh_by_period={"day": 17_943.7, "night": 4_560.5},
        lake_files=(157, 3),
        alarms={
            "outages": 1,
            "outages_open": 0,
            "outage_meters": 40,
            "outage_customers": 40,
            "tamper": 5,
        },
    )
    values.update(changes)
    return DemoResult(**values)  # type: ignore[arg-type]


def _render(result: DemoResult) -> str:
    console = Console(record=True, width=80, color_system=None, force_terminal=False)
    console.print(summary_table(result))
    return console.export_text()


def test_summary_table_matches_the_snapshot() -> None:
    assert _render(_result()) == SNAPSHOT.read_text(encoding="utf-8")


def test_a_failed_reconciliation_is_shown_plainly() -> None:
    text = _render(_result(reconciled=False, reconciliation_failures=3, rejected={"security": 2}))
    assert "NO (3 meters)" in text
    assert "security 2" in text


def test_no_deadline_figures_show_as_a_dash() -> None:
    (row,) = [line for line in _render(_result(deadlines={})).splitlines() if "T+24 h" in line]
    assert row.rstrip().endswith("- │")
    assert "%" not in row
