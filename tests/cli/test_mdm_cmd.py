"""``openami mdm vee | billing | query`` in-process, on the lake of a small demo run.

The demo (200 meters, two days) leaves a lake, a registry without contracts and the
validated versions of its own MDMS stage. The tests run the commands on copies of it: VEE
of a day from which a few reads were taken away (asked for, then estimated, on a Dask
cluster reached by its address), billing with the default contracts and with contracts
from a registry, each cross-checked against the library, the query of one meter, and every
error as one line with its exit code.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster

from openami.cli.demo_run import DemoParams, run_demo
from openami.cli.main import main
from openami.mdm.billing import (
    BillingCalendar,
    BillingMonth,
    billing_determinants,
    load_tariffs,
    load_validated_reads,
)
from openami.mdm.parallel import cycle_span
from openami.mdm.registry import (
    Customer,
    CustomerAgreement,
    Meter,
    MeterSite,
    PricingStructure,
    Registry,
    Retailer,
    UsagePoint,
)
from openami.store.validated import ValidatedStore

METERS = 200
JST = timezone(timedelta(hours=9))
RUN_FROM = datetime(2026, 8, 3, tzinfo=JST)  # the demo's first interval starts here
RUN_TO = datetime(2026, 8, 5, tzinfo=JST)  # and its last ends here
DAY = "2026-08-03"  # a UTC day of the lake, whole inside the run
LOST_METER = 7
LOST = [datetime(2026, 8, 3, 10, tzinfo=UTC) + timedelta(minutes=30 * k) for k in range(3)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("demo")
    run_demo(DemoParams(meters=METERS, days=2, data_dir=data))
    return data


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a two-process Dask cluster, as a remote one would be given."""
    cluster = LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    yield str(cluster.scheduler_address)
    cluster.close()
    assert cluster.status.name == "closed"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["mdm", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = _cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _raw_only(demo: Path, to: Path) -> Path:
    """A copy of the demo's data dir without the validated store, and with three intervals
    of one meter lost for good."""
    shutil.copytree(demo, to)
    for name in ("validated_reads", "vee_stats", "vee_gaps"):
        shutil.rmtree(to / "lake" / name, ignore_errors=True)
    lost = pa.array(LOST, pa.timestamp("s", "UTC"))
    # the demo compacted its days: one file per shard folder, rewritten in place here
    for path in (to / "lake" / "interval_reads" / f"day={DAY}").glob("shard=*/*.parquet"):
        table = pq.read_table(path)
        gone = pc.and_(
            pc.equal(table["meter_id"], LOST_METER),
            pc.is_in(table["interval_end"].cast(pa.timestamp("s", "UTC")), value_set=lost),
        )
        if pc.any(gone).as_py():
            pq.write_table(table.filter(pc.invert(gone)), path)
    return to


def test_vee_asks_for_a_gap_then_estimates_it(
    demo: Path, scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _raw_only(demo, tmp_path / "data")
    args = ("vee", "--data-dir", str(data), "--day", DAY)
    asked = _json(capsys, *args, "--now", "2026-08-04T00:10Z", "--scheduler", scheduler)
    assert asked["meters"] == METERS and asked["meters_from"] == "registry"
    assert asked["reads"] == METERS * 48 * 4 - 3 * 4
    assert asked["versions_written"] == METERS * 48 * 2
    assert asked["scheduler"] == scheduler and asked["reads_per_s"] > 0
    assert asked["flags"]["missing"] == {"import": 3, "export": 3}
    assert asked["gaps"] == {"ask": 1, "wait": 0, "estimate": 0}
    assert asked["collection_requests"] == 1 and asked["collection_requests_published"] == 0
    assert asked["estimated"] == {"import": 0, "export": 0}

    later = _json(capsys, *args, "--now", "2026-08-04T05:00+00:00")
    assert later["gaps"] == {"ask": 0, "wait": 0, "estimate": 1}
    assert later["estimated"] == {"import": 3, "export": 3}
    assert later["versions_written"] == 3 * 2  # only the estimates are new versions
    assert later["scheduler"] == "in-process"

    code, out, _ = _cli(
        capsys,
        "query",
        "--data-dir",
        str(data),
        "--meter",
        str(LOST_METER),
        "--from",
        "2026-08-03T19:00+09:00",
        "--to",
        "2026-08-03T20:00+09:00",
        "--validated",
        "--csv",
    )
    assert code == 0
    rows = list(pl.read_csv(out.encode()).iter_rows(named=True))
    assert [r["interval_end"] for r in rows] == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in LOST]
    for row in rows:  # missing, then estimated (and prorated to the registers' change)
        assert row["import_origin"] == "estimated" and row["import_version"] == 2
        assert row["import_quality"].split()[:2] == ["3.5.259", "3.8.0"]
        assert "3.8.1003" in row["import_quality"].split()


def test_vee_prints_a_summary_by_rule(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _raw_only(demo, tmp_path / "data")
    code, out, err = _cli(
        capsys, "vee", "--data-dir", str(data), "--day", DAY, "--now", "2026-09-01"
    )
    assert code == 0, err
    assert f"VEE of {DAY}: {METERS} meters (from the registry)" in out
    assert "reads/s (in-process)" in " ".join(out.split())
    assert "missing" in out and "estimated" in out
    assert "1 collection requests (not sent: pass --bus" in " ".join(out.split())


def _direct(data: Path, contracts: pl.DataFrame, month: BillingMonth) -> pl.DataFrame:
    book = load_tariffs()
    start, end = cycle_span(month, [1], book.timezone)
    reads = load_validated_reads(ValidatedStore(data / "lake"), start, end)
    return billing_determinants(reads, contracts, BillingCalendar.for_month(book, month))


def _compare(doc: dict[str, Any], direct: pl.DataFrame) -> None:
    got = {r["contract_id"]: r for r in doc["determinants"]}
    assert len(got) == direct.height
    for row in direct.iter_rows(named=True):
        mine = got[row["contract_id"]]
        for key in ("meter_id", "import_wh", "export_wh", "max_demand_wh", "bill_ready", "tariff"):
            assert mine[key] == row[key], key
        assert {p["period"]: p["wh"] for p in mine["period_wh"]} == {
            p["period"]: p["wh"] for p in row["period_wh"]
        }


def test_billing_with_the_default_contracts(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the demo's registry holds a contract per meter: without it, the default contracts
    bare = tmp_path / "no-registry"
    shutil.copytree(demo, bare, ignore=shutil.ignore_patterns("registry.db"))
    args = ("billing", "--data-dir", str(bare), "--cycle", "2026-09")
    doc = _json(capsys, *args, "--tariff", "jp-residential-tou-seasonal")
    assert doc["contracts"] == METERS and doc["source"] == "validated store"
    assert doc["contracts_from"].startswith(
        "default: every meter on jp-residential-tou-seasonal, read on day 1, 30 A"
    )
    # open-ended contracts over a month with two days of data: none is bill-ready
    assert doc["bill_ready"] == 0
    assert {d["not_ready_reason"].split(":")[0] for d in doc["determinants"]} == {
        "intervals missing"
    }
    contracts = pl.DataFrame(
        {
            "meter_id": np.arange(1, METERS + 1),
            "tariff": ["jp-residential-tou-seasonal"] * METERS,
            "contract_amps": [30] * METERS,
            "reading_day": [1] * METERS,
        }
    )
    _compare(doc, _direct(demo, contracts, BillingMonth(2026, 9)))

    code, out, err = _cli(capsys, *args, "--limit", "3", "--output", str(tmp_path / "d.csv"))
    assert code == 0, err
    assert "Billing month 2026-09 from the validated store: 200 contracts, 0 bill-ready" in out
    assert "197 more" in out
    flat = pl.read_csv(tmp_path / "d.csv")
    assert flat.height == METERS and {"day_wh", "night_wh"} <= set(flat.columns)


def _registry_with_contracts(data: Path) -> pl.DataFrame:
    """A registry of the demo's meters installed since July, each on a contract over
    exactly the run; every tenth switches plan halfway. Returns the contracts as billing
    takes them."""
    (data / "registry.db").unlink()
    registry = Registry.open(data_dir=data)
    installed = datetime(2026, 7, 1, tzinfo=UTC)
    half = datetime(2026, 8, 4, tzinfo=JST)
    try:
        registry.register_fleet(
            [
                MeterSite(
                    meter=Meter(m, f"meter-{m}", f"S{m:08d}", installed_at=installed),
                    usage_point=UsagePoint(f"up-{m}", occupied=True),
                )
                for m in range(1, METERS + 1)
            ],
            installed,
        )
        registry.add_customers(Customer(f"cu-{m}", f"customer {m}") for m in range(1, METERS + 1))
        registry.add_retailers([Retailer("re-1", "Retailer One", "A0001")])
        registry.add_tariffs(
            [
                PricingStructure(
                    "night-owl", periods_ref="jp-residential-tou", contract_current_a=40
                ),
                PricingStructure("jp-residential-flat"),
            ]
        )
        agreements = []
        rows = []
        for m in range(1, METERS + 1):
            switch = m % 10 == 0
            spans = [(RUN_FROM, half, "night-owl"), (half, RUN_TO, "jp-residential-flat")]
            for k, (lo, hi, plan) in enumerate(
                spans if switch else [(RUN_FROM, RUN_TO, "night-owl")]
            ):
                agreements.append(
                    CustomerAgreement(f"ag-{m}-{k}", f"cu-{m}", f"up-{m}", "re-1", plan, lo, hi)
                )
                owl = plan == "night-owl"  # a plan of its own on the shipped day/night periods
                tariff = "jp-residential-tou" if owl else plan
                rows.append((f"ag-{m}-{k}", m, tariff, 40 if owl else 30, lo, hi))
        registry.add_contracts(agreements)
    finally:
        registry.close()
    return pl.DataFrame(
        rows,
        schema={
            "contract_id": pl.String,
            "meter_id": pl.Int64,
            "tariff": pl.String,
            "contract_amps": pl.Int64,
            "valid_from": pl.Datetime("us", "UTC"),
            "valid_to": pl.Datetime("us", "UTC"),
        },
        orient="row",
    ).with_columns(reading_day=pl.lit(1))


def test_billing_with_the_registry_contracts(
    demo: Path, scheduler: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    contracts = _registry_with_contracts(data)
    doc = _json(
        capsys, "billing", "--data-dir", str(data), "--cycle", "2026-09", "--scheduler", scheduler
    )
    assert doc["contracts_from"] == f"the registry ({contracts.height} contracts, read on day 1)"
    assert doc["contracts"] == METERS + METERS // 10
    # contracts over exactly the run: bill-ready where every interval passed VEE
    assert doc["bill_ready"] > METERS // 2
    for d in doc["determinants"]:  # a switch halves the span: 48 intervals each side
        assert d["intervals_expected"] == (48 if d["meter_id"] % 10 == 0 else 96)
    _compare(doc, _direct(data, contracts, BillingMonth(2026, 9)))


def test_query_shows_raw_reads_with_their_status(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(
        capsys,
        "query",
        "--data-dir",
        str(demo),
        "--meter",
        "17",
        "--from",
        DAY,
        "--to",
        "2026-08-03T23:59Z",
        "--json",
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 48
    assert rows[0]["interval_end"] == "2026-08-03T00:00:00Z"
    assert rows[0]["source"] in ("push", "recollect") and rows[0]["quality"]
    assert {"import_wh", "export_wh", "import_register_wh", "export_register_wh"} <= set(rows[0])
    regs = [r["import_register_wh"] for r in rows]
    assert all(b - a == r["import_wh"] for a, b, r in zip(regs, regs[1:], rows[1:], strict=False))

    code, out, _ = _cli(capsys, "query", "--data-dir", str(demo), "--meter", "17", "--to", DAY)
    assert code == 0 and "meter 17: raw reads, interval ends in UTC" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["vee", "--data-dir", "{missing}", "--day", DAY], 2, "holds no interval lake"),
        (["vee", "--data-dir", "{demo}", "--day", "03/08/2026"], 2, "not a date of the form"),
        (["vee", "--data-dir", "{demo}", "--day", "2026-09-30"], 1, "no raw reads for 2026-09-30"),
        (["vee", "--data-dir", "{demo}", "--day", DAY, "--scheduler", "lcoal"], 2, "not 'local'"),
        (["vee", "--data-dir", "{demo}", "--day", DAY, "--now", "noon"], 2, "not an ISO 8601"),
        (["billing", "--data-dir", "{demo}", "--cycle", "2026-9x"], 2, "is not YYYY-MM"),
        (
            ["billing", "--data-dir", "{demo}", "--cycle", "2026-09", "--tariff", "x"],
            2,
            "not in the tariff book",
        ),
        (
            ["billing", "--data-dir", "{demo}", "--cycle", "2027-09"],
            1,
            "no validated reads between",
        ),
        (
            ["billing", "--data-dir", "{demo}", "--cycle", "2026-09", "--reading-day", "29"],
            2,
            "--reading-day'",
        ),
        (["query", "--data-dir", "{demo}", "--meter", "9999"], 1, "meter 9999 has no reads"),
        (
            ["query", "--data-dir", "{demo}", "--meter", "1", "--json", "--csv"],
            2,
            "exclude each other",
        ),
        (
            ["query", "--data-dir", "{demo}", "--meter", "1", "--from", DAY, "--to", "2026-08-01"],
            2,
            "is before",
        ),
    ],
)
def test_every_error_is_one_line(
    demo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    filled = [a.format(demo=demo, missing=tmp_path / "nothing") for a in args]
    got, out, err = _cli(capsys, *filled)
    assert got == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert out == ""


def test_help_teaches_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("vee", "billing", "query"):
        code, out, _ = _cli(capsys, command, "--help")
        assert code == 0
        assert f"Example: openami mdm {command} --data-dir" in " ".join(out.split())
    _, out, _ = _cli(capsys, "billing", "--help")
    assert "every meter on --tariff" in " ".join(out.split())


def test_alarms_show_the_demo_s_outage_closed_with_customers_and_its_tamper(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's scenario cuts power to a part of one area for a while and opens some
    terminal covers: the MDMS shows one outage there, closed, with the registry's
    customers, and one tamper alarm per opened cover."""
    alarms = _json(capsys, "alarms", "--data-dir", str(demo))
    outages = [a for a in alarms if a["kind"] == "outage"]
    tamper = [a for a in alarms if a["kind"] == "tamper"]
    assert len(outages) == 1
    (outage,) = outages
    assert outage["closed"] is not None and outage["down"] == 0
    assert outage["meters"] > 0
    assert sum(outage["customers"].values()) == outage["meters"]  # one customer per meter
    assert len(outage["customers"]) == 1  # the outage is in one area
    assert tamper and all(a["detail"] == "terminal cover opened" for a in tamper)
    assert _json(capsys, "alarms", "--data-dir", str(demo), "--open") == tamper


def test_alarms_of_a_data_dir_without_events_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _cli(capsys, "alarms", "--data-dir", str(tmp_path))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "no meter events" in err


def test_billing_takes_the_registry_s_contracts(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _json(capsys, "billing", "--data-dir", str(demo), "--cycle", "2026-09")
    assert doc["contracts_from"] == f"the registry ({METERS} contracts, read on day 1)"
    assert doc["contracts"] == METERS
