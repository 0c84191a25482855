"""10,000 meters over all three media, through the head-end, as real processes on UDP.

``openami headend run`` (with its embedded MDMS) and ``openami fleet run`` run as two
processes on loopback. The fleet pushes six hours of reads with an outage and an hour of
jamming; the MDMS finds what the networks lost and the head-end collects it again from the
meters at their own addresses. Afterwards every meter's every interval is stored, and the
stored interval energy of each meter equals what the same simulation (same seed) says its
registers moved by.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from openami.fleet.scenario import load_scenario
from openami.fleet.simulator import FleetSimulator

pytestmark = pytest.mark.slow

SCENARIO = """
[scenario]
name = "e2e-10k"
seed = 5
start = 2026-08-03T12:00:00+09:00
interval_minutes = 30
push_spread_s = 600

[[area]]
name = "ward"
kind = "dense_residential"
meters = 5000
media = { rf_mesh = 1.0 }

[[area]]
name = "towers"
kind = "high_rise"
meters = 3000
media = { plc = 1.0 }

[[area]]
name = "hills"
kind = "mountainous"
meters = 2000
media = { star = 1.0 }
# cells planned for the hills: closer base stations, so no meter sits in a dead spot
network = { star = { cell_radius_m = 1200.0, shadowing_db = 2.0 } }

[[fault]]
kind = "outage"
area = "hills"
at = 2026-08-03T13:10:00+09:00
duration_minutes = 60
share = 0.05

[[fault]]
kind = "jamming"
area = "ward"
at = 2026-08-03T15:00:00+09:00
duration_minutes = 60
delivery_factor = 0.3
"""
INTERVALS = 12  # six hours


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openami(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "openami"), *args]


def test_ten_thousand_meters_over_mesh_star_and_plc_arrive_whole(tmp_path: Path) -> None:
    scenario = tmp_path / "e2e.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    port = _free_udp_port()
    data = tmp_path / "data"
    env = os.environ | {"COLUMNS": "120"}
    with subprocess.Popen(
        _openami(
            "headend",
            "run",
            "--scenario",
            str(scenario),
            "--listen",
            f"127.0.0.1:{port}",
            "--meter-port",
            str(port),
            "--data-dir",
            str(data),
            "--idle-exit",
            "6",
            "--duration",
            "400",
            "--json",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as headend:
        try:
            err = headend.stderr
            assert err is not None
            for line in iter(err.readline, b""):
                if b"listening on" in line:
                    break
            else:
                pytest.fail("the head-end did not start")
            fleet = subprocess.run(
                _openami(
                    "fleet",
                    "run",
                    "--scenario",
                    str(scenario),
                    "--days",
                    str(INTERVALS / 48),
                    "--speed",
                    "max",
                    "--headend",
                    f"127.0.0.1:{port}",
                    "--bind",
                    f"0.0.0.0:{port}",
                    "--linger",
                    "15",
                    "--json",
                ),
                capture_output=True,
                timeout=300,
                env=env,
                check=False,
            )
            assert fleet.returncode == 0, fleet.stderr.decode()[-2000:]
            out, errs = headend.communicate(timeout=120)
        finally:
            if headend.poll() is None:
                headend.kill()
                headend.communicate()
    assert headend.returncode == 0, errs.decode()[-2000:]
    sent = json.loads(fleet.stdout)
    received = json.loads(out)
    assert set(sent["delivery"]) == {"ward/rf_mesh", "towers/plc", "hills/star"}
    assert received["rejected"].get("decode", 0) == 0, received
    assert received["rejected"].get("security", 0) == 0, received
    assert received["accepted"]["event"] > 0  # last gasps and power-ups of the outage
    assert received["accepted"]["response"] > 0  # something was collected again

    # the truth: the same simulation, run again in this process
    sim = FleetSimulator(load_scenario(scenario))
    for _ in range(INTERVALS):
        sim.step()
    truth_import, truth_export = sim.fleet.energy_delta()

    ends = [sim.fleet.interval_end(sim.fleet.origin + k) for k in range(1, INTERVALS + 1)]
    con = duckdb.connect()
    rows = con.execute(
        "SELECT meter_id, count(*) AS n, sum(value_wh) AS wh FROM read_parquet(?) "
        "WHERE channel = 1 GROUP BY meter_id ORDER BY meter_id",
        [str(data / "lake" / "interval_reads" / "*" / "*" / "*.parquet")],
    ).fetchnumpy()
    exported = con.execute(
        "SELECT meter_id, sum(value_wh) AS wh FROM read_parquet(?) "
        "WHERE channel = 2 GROUP BY meter_id ORDER BY meter_id",
        [str(data / "lake" / "interval_reads" / "*" / "*" / "*.parquet")],
    ).fetchnumpy()
    span = con.execute(
        "SELECT min(epoch(interval_end)), max(epoch(interval_end)) FROM read_parquet(?) "
        "WHERE channel = 1",
        [str(data / "lake" / "interval_reads" / "*" / "*" / "*.parquet")],
    ).fetchone()
    assert span is not None and (int(span[0]), int(span[1])) == (ends[0], ends[-1])
    assert np.array_equal(rows["meter_id"], np.arange(1, 10_001))
    assert (rows["n"] == INTERVALS).all()  # every meter, every interval: nothing lost
    assert np.array_equal(rows["wh"].astype(np.int64), truth_import)
    assert np.array_equal(exported["wh"].astype(np.int64), truth_export)
