"""The mdm.compact benchmark on a small day: both scans agree, one file per shard after."""

from __future__ import annotations

from pathlib import Path

import pytest

from openami.bench import discover
from openami.errors import BenchmarkError

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


def test_mdm_compact_runs_on_a_small_day() -> None:
    got = discover(BENCH_DIR)["mdm.compact"].run({"meters": "300", "files": "40", "repeat": "1"})
    assert got.name == "mdm.compact"
    assert got.value > 0 and got.baseline_value > 0
    assert got.ratio == pytest.approx(got.value / got.baseline_value, rel=1e-3)
    p = got.params
    assert p["interval_reads"] == 300 * 48 * 2
    assert (p["files_before"], p["files_after"], p["removed"]) == (40, 1, 40)
    assert 0 < p["bytes_after"] < p["bytes_before"]


def test_mdm_compact_refuses_parameters_out_of_range() -> None:
    bench = discover(BENCH_DIR)["mdm.compact"]
    with pytest.raises(BenchmarkError, match="files"):
        bench.run({"files": "0"})
    with pytest.raises(BenchmarkError, match="parameter"):
        bench.run({"meters": "many"})
