from __future__ import annotations

import numpy as np

from openami.mdm.vee.synthetic import FAULTS, measure, synthetic_day


def test_clean_day_registers_add_up() -> None:
    day = synthetic_day(50, seed=1, fault_share=0.0)
    r = day.reads
    assert r["meter_id"].size == 50 * 48 * 4
    imp = r["value_wh"][r["channel"] == 1].reshape(48, 50)
    reg = r["value_wh"][r["channel"] == 3].reshape(48, 50)
    assert np.array_equal(np.diff(reg, axis=0), imp[1:])
    assert all(keys.size == 0 for keys in day.faults.values())


def test_faults_go_to_separate_meters() -> None:
    day = synthetic_day(2_000, seed=2, fault_share=0.01)
    owners = [set((keys // 48).tolist()) for keys in day.faults.values()]
    assert all(len(o) == 20 for o in owners)
    assert len(set().union(*owners)) == 20 * len(FAULTS)


def test_measure_reports_a_bench_record() -> None:
    record = measure(400, seed=3, chunk=150)
    assert set(record) == {
        "name",
        "value",
        "unit",
        "baseline_name",
        "baseline_value",
        "ratio",
        "params",
    }
    assert record["name"] == "mdm.vee" and record["value"] > 0
    params = record["params"]
    assert params["meters"] == 400 and params["raw_rows"] > 400 * 48 * 4 * 0.9
    assert params["flagged"]["spike/import"] >= 4
    assert 0 < params["validated_bytes_per_read"] < 20


def test_two_worker_processes_flag_the_same() -> None:
    one = measure(400, seed=4, chunk=100)
    two = measure(400, seed=4, chunk=100, workers=2)
    assert one["params"]["flagged"] == two["params"]["flagged"]
    assert two["params"]["workers"] == 2
