"""What the Route B tests of several folders share: a small scenario, ``openami routeb meter``
as a real process (with deadlines on everything read from it), and the Route A values the
ECHONET Lite values must equal.

Addresses: each test takes its own block of 127.36.0.0/16 (no other test uses it), so they
run beside other ECHONET Lite software on this host.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from openami.fleet.fleet import Fleet
from openami.fleet.meter import MeterServer
from openami.fleet.routeb import route_b_meter
from openami.fleet.scenario import Scenario, load_scenario
from openami.transport.echonet_udp import EchonetUdpServer
from tests.fleet.route_a import RouteA
from tests.processes import openami

__all__ = [
    "SCENARIO",
    "MeterProcess",
    "MovableClock",
    "route_a_at",
    "routeb_meter",
    "scenario_of",
    "serving_meters",
    "write_scenario",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIO = """\
[scenario]
name = "routeb-test"
seed = 5
start = 2026-08-03T00:00:00+09:00
interval_minutes = 30

[[area]]
name = "town"
kind = "suburban"
meters = 4
pv_share = 0.5
"""


def write_scenario(folder: Path) -> Path:
    path = folder / "routeb.toml"
    path.write_text(SCENARIO, encoding="utf-8")
    return path


def route_a_at(scenario: Scenario, at: datetime) -> tuple[Fleet, RouteA]:
    """The scenario's fleet advanced to the last interval closed at ``at``, and a Route A
    reader whose meters' clock is ``at`` (its fast profile path follows the fleet)."""
    fleet = Fleet(scenario)
    while fleet.now < fleet.number_of(at):
        fleet.advance()
    return fleet, RouteA(fleet, MeterServer(fleet, clock=lambda: at))


@dataclass
class MeterProcess:
    proc: subprocess.Popen[str]
    lines: list[str]

    def stop(self, timeout: float = 10.0) -> tuple[int, str]:
        """SIGTERM, then the exit code and what it wrote on stderr."""
        self.proc.send_signal(signal.SIGTERM)
        _out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err


def _read_lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[str]:
    """The first ``count`` lines of stdout, read by a thread so the wait has a deadline."""
    assert proc.stdout is not None
    stdout = proc.stdout
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for _ in range(count):
            found.put(stdout.readline())

    threading.Thread(target=read, daemon=True).start()
    lines: list[str] = []
    until = time.monotonic() + timeout
    while len(lines) < count:
        try:
            line = found.get(timeout=max(until - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError(f"the meter printed {lines} within {timeout} s") from None
        if not line:
            raise AssertionError(f"the meter exited after {lines}")
        lines.append(line.rstrip("\n"))
    return lines


@contextmanager
def routeb_meter(*args: str, meters: int = 1, timeout: float = 30.0) -> Iterator[MeterProcess]:
    """``openami routeb meter ARGS`` running until the block ends (killed if it lingers)."""
    proc = subprocess.Popen(
        openami("routeb", "meter", *args, "--duration", "120"),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        yield MeterProcess(proc, _read_lines(proc, meters, timeout))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)


def scenario_of(path: Path) -> Scenario:
    return load_scenario(path)


class MovableClock:
    """A meter clock a test moves (the server's thread reads it)."""

    def __init__(self, now: datetime) -> None:
        self._now = now
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def move(self, by: timedelta) -> None:
        with self._lock:
            self._now += by


@contextmanager
def serving_meters(
    fleet: Fleet, addresses: list[str], clock: MovableClock
) -> Iterator[EchonetUdpServer]:
    """Meters 1..len(addresses) of ``fleet`` served in a thread, each on its address."""
    server = EchonetUdpServer()
    with server:
        for index, address in enumerate(addresses):
            meter = route_b_meter(fleet, index, clock)
            server.add(address, meter.node, announce=meter.announcements)
        server.start()
        yield server
