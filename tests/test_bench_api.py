"""The api.reads benchmark on a tiny store: listed with the others, served over real HTTP,
checked against DuckDB, and reporting its figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from openami.bench import discover
from openami.errors import BenchmarkError

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def test_api_reads_runs_on_a_small_store() -> None:
    bench = discover(BENCH_DIR)["api.reads"]
    got = bench.run({"meters": "200", "days": "2", "repeats": "3", "seconds": "60"})

    assert got.name == "api.reads"
    assert got.unit.startswith("reads/s")
    assert got.baseline_name == "duckdb query"
    assert got.value > 0
    assert got.baseline_value > 0
    assert got.ratio == pytest.approx(got.value / got.baseline_value, rel=1e-3)
    p = got.params
    assert (p["meters"], p["days"]) == (200, 2)
    assert p["rows"] == 200 * 2 * 48 * 2
    assert p["bulk_meters"] == 200
    assert p["bulk_reads_per_request"] == 200 * 48 * 2
    assert p["month_reads_per_request"] == 2 * 48 * 2
    # repeats bounds every measurement when the time budget does not
    counts = ("bulk_requests", "month_requests", "duckdb_bulk_requests", "duckdb_month_requests")
    assert [p[k] for k in counts] == [3, 3, 3, 3]
    assert p["month_reads_per_s"] > 0
    assert p["duckdb_month_reads_per_s"] > 0
    assert 0 < p["month_p50_ms"] <= p["month_p95_ms"]
    assert 0 < p["bulk_p50_ms"] <= p["bulk_p95_ms"]
    assert p["build_s"] >= 0
    assert len(p["loadavg_before"]) == len(p["loadavg_after"]) == 3


def test_api_reads_refuses_bad_parameters() -> None:
    bench = discover(BENCH_DIR)["api.reads"]
    with pytest.raises(BenchmarkError):
        bench.run({"meters": "0"})
    with pytest.raises(BenchmarkError):
        bench.run({"days": "two"})
