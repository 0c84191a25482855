"""The mdm.vee benchmark on a small fleet: both passes do the same work, and the
extrapolation counts the cold pass once."""

from __future__ import annotations

from pathlib import Path

import pytest

from openami.bench import discover
from openami.errors import BenchmarkError

BENCH_DIR = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_mdm_vee_runs_cold_then_warm_on_a_small_fleet() -> None:
    got = discover(BENCH_DIR)["mdm.vee"].run({"meters": "2000", "chunk": "1000", "workers": "1"})
    p = got.params
    assert got.name == "mdm.vee" and got.value > 0 and got.baseline_value > 0
    assert p["interval_reads"] == 2000 * 48
    warm = p["vee_s"] + p["determinants_s"]
    cold = p["cold_vee_s"] + p["cold_determinants_s"]
    # params are rounded to 10 ms: on a run this short that is a few per cent
    assert got.value == pytest.approx(2000 * 48 / warm, rel=0.1)
    assert p["extrapolated_27m_minutes"] == pytest.approx(
        (cold + (27_000_000 - 2000) / 2000 * warm) / 60, rel=0.1
    )
    # the warm pass found no VEE output of the day: it wrote every read again
    assert p["written"] == p["validated_rows"] == 2000 * 48 * 2
    assert p["contracts"] == 2000
    assert 0 < p["bytes_per_read"] <= 2.0


def test_mdm_vee_refuses_parameters_out_of_range() -> None:
    bench = discover(BENCH_DIR)["mdm.vee"]
    with pytest.raises(BenchmarkError, match="meters"):
        bench.run({"meters": "10"})
    with pytest.raises(BenchmarkError, match="parameter"):
        bench.run({"workers": "two"})
