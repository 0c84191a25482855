"""fleet.generate: ciphered pushes the simulated fleet generates and sends, per second.

Value: pushes per second of one process running ``scenarios/tokyo-1m.toml`` (1,000,000
meters) through ``FleetSimulator.step`` - the load model for every meter, the fault plan, the
field-area and backhaul models of every area, the vectorised data-notification encoder and
AES-GCM sealing under each meter's own keys - and out of a real UDP socket (``sendmmsg`` with
each meter's own source address) to a sink on loopback that does not read them.
Baseline: bare AES-GCM-128 encryptions per second of plaintexts of the same size under the
same per-meter keys, measured in the same run: the one step no vectorising removes.

``params`` give the projected (or, with ``intervals=48``, measured) minutes for the
scenario's whole day and the peak resident memory of the process.
"""

from __future__ import annotations

import resource
import socket
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openami.bench import Benchmark, BenchResult, result
from openami.errors import BenchmarkError
from openami.fleet.runner import FleetRunner
from openami.fleet.scenario import load_scenario
from openami.fleet.simulator import FleetSimulator
from openami.transport.udp_batch import BatchUdpSocket

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "tokyo-1m.toml"
PLAIN_OCTETS = 44  # an interval push's data-notification


def _raw_encrypts(sim: FleetSimulator, count: int) -> float:
    ek, _ak = sim.fleet.key_columns()
    keys = [ek[i].tobytes() for i in range(min(count, sim.fleet.n))]
    plain = bytes(PLAIN_OCTETS)
    aad = bytes(17)
    iv = bytes(12)
    began = time.perf_counter()
    for key in keys:
        AESGCM(key).encrypt(iv, plain, aad)
    return len(keys) / (time.perf_counter() - began)


def run(params: Mapping[str, str]) -> BenchResult:
    try:
        intervals = int(params.get("intervals", "4"))
        scenario_path = Path(params.get("scenario", str(SCENARIO)))
    except ValueError as exc:
        raise BenchmarkError(f"fleet.generate parameter: {exc}") from None
    if not 1 <= intervals <= 48 * 45:
        raise BenchmarkError("fleet.generate parameter: intervals must be 1..2160")
    began = time.perf_counter()
    sim = FleetSimulator(load_scenario(scenario_path))
    build_s = time.perf_counter() - began
    per_day = 86_400 // sim.fleet.step_s

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))  # never read: the kernel drops what overflows
        # every address on the host, so each push can leave from its meter's own 127.1.x.y
        with BatchUdpSocket(("0.0.0.0", 0), sndbuf=4 * 1024 * 1024) as sock:  # noqa: S104
            runner = FleetRunner(sim, sock, sink.getsockname(), window_bytes=1 << 62)
            step_s: list[float] = []
            for _ in range(intervals):
                t = time.perf_counter()
                runner.run(1)
                step_s.append(time.perf_counter() - t)
    totals = runner.totals
    elapsed = sum(step_s)
    pushes_per_s = totals.pushes / elapsed
    baseline = max(_raw_encrypts(sim, 200_000) for _ in range(2))
    # a day is 48 intervals, half of them on the hour with the gas and water indexes too
    mean_step = float(np.mean(step_s))
    day_minutes = (build_s + mean_step * per_day) / 60.0
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result(
        "fleet.generate",
        round(pushes_per_s, 1),
        "pushes/s",
        "aes_gcm_encrypt",
        round(baseline, 1),
        scenario=sim.scenario.name,
        meters=sim.fleet.n,
        intervals=intervals,
        pushes=totals.pushes,
        sent=totals.sent,
        build_s=round(build_s, 2),
        day_minutes=round(day_minutes, 2),
        day_measured=intervals >= per_day,
        peak_rss_mib=round(peak_mib, 1),
        goal_day_minutes=5.0,
        goal_peak_rss_mib=4096.0,
    )


BENCHMARKS = [
    Benchmark(
        "fleet.generate",
        "pushes generated and sent/s by one process (1 M meters) vs raw AES-GCM encrypts/s",
        run,
    )
]
