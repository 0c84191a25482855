"""The demo's last stage: compaction, VEE over the stored days, then bill-ready determinants.

What a utility's MDMS does after a day closes, on the demo's lake: every UTC day of the run
is compacted (its small ingest files made one per shard), then goes through VEE (validated
versions with quality flags, beside the raw reads); then the billing determinants of each
meter's contract over the run are computed from the validated reads. A contract is
bill-ready when every interval of its span is present and valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl

from openami.fleet.fleet import Fleet
from openami.mdm.billing import (
    BillingCalendar,
    BillingMonth,
    billing_determinants,
    load_tariffs,
    load_validated_reads,
)
from openami.mdm.vee import run_day
from openami.store.compaction import compact_day
from openami.store.lake import IntervalLake
from openami.store.validated import ValidatedStore, utc_days

__all__ = ["MdmOutcome", "vee_and_bill"]

TARIFF = "jp-residential-tou"
JST = timezone(timedelta(hours=9))


@dataclass
class MdmOutcome:
    vee_reads: int = 0  # reads on the grid of the days VEE ran (whole UTC days)
    vee_flags: dict[str, int] = field(default_factory=dict)  # findings by rule, non-zero
    valid_intervals: int = 0  # meter-intervals of the run that passed VEE (or were estimated)
    failed_intervals: int = 0  # and those that did not
    vee_seconds: float = 0.0
    contracts: int = 0
    bill_ready: int = 0
    billed_import_kwh: float = 0.0
    period_kwh: dict[str, float] = field(default_factory=dict)
    max_demand_kw: float = 0.0
    lake_files_before: int = 0  # the raw lake's files before compaction, and after
    lake_files_after: int = 0


def _utc_days(first: datetime, last: datetime) -> list[date]:
    return utc_days(first.astimezone(UTC).date(), last.astimezone(UTC).date())


def _billed(moment: datetime) -> BillingMonth:
    local = moment.astimezone(JST)
    return BillingMonth(local.year + local.month // 12, local.month % 12 + 1)


def vee_and_bill(lake: IntervalLake, fleet: Fleet, start: datetime, end: datetime) -> MdmOutcome:
    """VEE of every day between ``start`` and ``end`` (the run's first and last interval
    ends), then determinants of one contract per meter covering exactly the run."""
    out = MdmOutcome()
    store = ValidatedStore(lake.root)
    attributes = pl.DataFrame(
        {
            "meter_id": fleet.meter_ids,
            "has_pv": fleet.traits.pv_kw > 0,
            "occupied": [True] * fleet.n,
            "contract_amps": fleet.contract_amps.astype("int64"),
        }
    )
    # the run's intervals, in the meters' time: VEE works on UTC days of the lake
    now = int(end.timestamp()) + 86_400
    for day in _utc_days(start, end):
        out.lake_files_before += len(lake.day_files(day))
        compact_day(lake, day, grace=timedelta(0))  # the demo's own lake: no other reader
        out.lake_files_after += len(lake.day_files(day))
        summary = run_day(lake, store, day, attributes, now=now)
        out.vee_reads += summary.reads
        out.vee_seconds += summary.seconds
        for rule, count in summary.counts.items():
            # missing and gap findings also cover the hours of a UTC day outside the run
            if count and not rule.startswith(("missing/", "gaps/")) and rule != "reads":
                out.vee_flags[rule] = out.vee_flags.get(rule, 0) + count
    book = load_tariffs()
    calendar = BillingCalendar.build(book, start - timedelta(days=1), end + timedelta(days=1))
    span_from = start - timedelta(seconds=fleet.step_s)  # the first interval's start
    contracts = pl.DataFrame(
        {
            "meter_id": fleet.meter_ids,
            "tariff": [TARIFF] * fleet.n,
            "contract_amps": fleet.contract_amps.astype("int64"),
            "reading_day": [1] * fleet.n,
            "valid_from": [span_from] * fleet.n,
            "valid_to": [end] * fleet.n,
        }
    )
    reads = load_validated_reads(store, span_from, end)
    out.valid_intervals = int(reads["valid"].sum())
    out.failed_intervals = fleet.n * round((end - span_from).total_seconds() / fleet.step_s)
    out.failed_intervals -= out.valid_intervals
    # reading day 1: the billing month is the one the run's days are read in (the next)
    months = sorted({_billed(d) for d in (start, end)}, key=lambda m: (m.year, m.month))
    frames = [billing_determinants(reads, contracts, calendar, month=m) for m in months]
    det = pl.concat([f for f in frames if f.height])
    out.contracts = det.height
    out.bill_ready = int(det["bill_ready"].sum())
    out.billed_import_kwh = round(int(det["import_wh"].sum()) / 1000.0, 3)
    peak = det["max_demand_kw"].fill_null(0.0).to_numpy()
    out.max_demand_kw = round(float(peak.max()) if peak.size else 0.0, 3)
    periods = det.select("period_wh").explode("period_wh").unnest("period_wh")
    for row in periods.group_by("period").agg(pl.col("wh").sum()).iter_rows():
        out.period_kwh[str(row[0])] = round(int(row[1]) / 1000.0, 3)
    return out
