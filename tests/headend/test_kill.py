"""The head-end killed with SIGKILL again and again while a fleet pushes: nothing lost.

Real processes on loopback and the real NATS JetStream server: ``openami fleet run`` pushes
half a day of reads from 2,000 meters; ``openami mdm run`` stores what reaches the bus and
asks for what is missing; ``openami headend run`` (a supervisor and two ingest workers) is
killed with SIGKILL - the whole process group, at random moments - ``KILLS`` times and
started again each time. At the end the lake must hold exactly the reads the simulation
generated: every meter, every interval, each read once, with the values the same simulation
(same seed) computes. ``make soak`` runs it with 1,000 kills (``SOAK_KILLS``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest

from openami.fleet.scenario import load_scenario
from openami.fleet.simulator import FleetSimulator
from tests.processes import free_headend_port, nats_stream, openami

pytestmark = [pytest.mark.slow, pytest.mark.nats]

KILLS = int(os.environ.get("SOAK_KILLS", "50"))
METERS = 2_000
INTERVALS = 24  # twelve hours
SCENARIO = f"""
[scenario]
name = "kill-test"
seed = 17
start = 2026-08-03T06:00:00+09:00
interval_minutes = 30
push_spread_s = 600

[[area]]
name = "ward"
kind = "dense_residential"
meters = {METERS // 2}
media = {{ rf_mesh = 1.0 }}
gas_share = 0.0  # co-metered indexes are pushed, not kept in a profile to collect again
water_share = 0.0

[[area]]
name = "towers"
kind = "high_rise"
meters = {METERS // 2}
media = {{ plc = 1.0 }}
gas_share = 0.0
water_share = 0.0
"""


@pytest.fixture
def stream() -> Iterator[str]:
    yield from nats_stream("kill")


class HeadEnd:
    """``openami headend run`` in a process group of its own, to kill it whole."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, stdout=out, stderr=out, start_new_session=True
            )
        self.starts += 1

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def test_sigkill_during_ingest_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, stream: str
) -> None:
    scenario = tmp_path / "kill.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    port = free_headend_port()
    bus = f"nats://127.0.0.1:4222/{stream}"
    data = tmp_path / "mdm"
    env = os.environ | {"COLUMNS": "120"}
    rng = random.Random(KILLS)
    headend = HeadEnd(
        openami(
            "headend",
            "run",
            "--scenario",
            str(scenario),
            "--listen",
            f"127.0.0.1:{port}",
            "--meter-port",
            str(port),
            "--bus",
            bus,
            "--workers",
            "2",
            "--state-dir",
            str(tmp_path / "headend"),
            "--collect-rate",  # the storm after 50 kills, paced per access point
            "200",
        ),
        tmp_path / "headend.log",
    )
    mdm = subprocess.Popen(
        openami(
            "mdm",
            "run",
            "--scenario",
            str(scenario),
            "--data-dir",
            str(data),
            "--bus",
            bus,
            "--quiet",
            "3",
            "--idle-exit",
            "20",
            "--duration",
            "1500",
            "--json",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    # about 0.5-2.5 s between kills: long enough for a restarted head-end to ingest a
    # little, short enough that each kill lands in the middle of something
    kill_s = 1.5 * KILLS
    speed = INTERVALS * 1800 / (kill_s + 20.0)
    fleet = None
    try:
        headend.start()
        time.sleep(2.0)
        fleet = subprocess.Popen(
            openami(
                "fleet",
                "run",
                "--scenario",
                str(scenario),
                "--days",
                str(INTERVALS / 48),
                "--speed",
                f"{speed:.1f}",
                "--headend",
                f"127.0.0.1:{port}",
                "--bind",
                f"0.0.0.0:{port}",
                "--linger",
                "30",
                "--json",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.5))
            headend.kill()
            headend.start()
        fleet_out, fleet_err = fleet.communicate(timeout=kill_s + 600)
        assert fleet.returncode == 0, fleet_err.decode()[-2000:]
        mdm_out, mdm_err = mdm.communicate(timeout=600)
        assert mdm.returncode == 0, mdm_err.decode()[-2000:]
        assert headend.stop() == 0, headend.log.read_text()[-2000:]
    finally:
        for process in (fleet, mdm):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
        if headend.process is not None and headend.process.poll() is None:
            headend.kill()
    assert headend.starts == KILLS + 1
    sent = json.loads(fleet_out)
    stored = json.loads(mdm_out)
    assert sent["answers"] > 0, sent  # the killing lost reads, and they were collected again
    assert stored["collections_requested"] > 0, stored

    # the truth: the same simulation, run again in this process
    sim = FleetSimulator(load_scenario(scenario))
    for _ in range(INTERVALS):
        sim.step()
    truth_import, truth_export = sim.fleet.energy_delta()
    lake = str(data / "lake" / "interval_reads" / "*" / "*" / "*.parquet")
    con = duckdb.connect()
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (meter_id, channel, interval_end)) FROM read_parquet(?)",
        [lake],
    ).fetchone() or (0, 0)
    assert total == distinct, "a read was stored twice"
    rows = con.execute(
        "SELECT meter_id, count(*) AS n, sum(value_wh) AS wh FROM read_parquet(?) "
        "WHERE channel = 1 GROUP BY meter_id ORDER BY meter_id",
        [lake],
    ).fetchnumpy()
    exported = con.execute(
        "SELECT meter_id, sum(value_wh) AS wh FROM read_parquet(?) "
        "WHERE channel = 2 GROUP BY meter_id ORDER BY meter_id",
        [lake],
    ).fetchnumpy()
    assert np.array_equal(rows["meter_id"], np.arange(1, METERS + 1))
    assert (rows["n"] == INTERVALS).all(), "an interval of some meter was lost"
    assert np.array_equal(rows["wh"].astype(np.int64), truth_import)
    assert np.array_equal(exported["wh"].astype(np.int64), truth_export)
    assert total == METERS * INTERVALS * 4  # four channels per interval, nothing else
