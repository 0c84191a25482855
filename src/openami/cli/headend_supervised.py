"""``openami headend run --bus nats://...``: ingest workers and a collecting supervisor."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType

import msgspec
from rich.console import Console
from rich.live import Live

from openami.cli.headend_view import supervisor_line, supervisor_status, supervisor_summary
from openami.fleet.scenario import Scenario
from openami.fleet.simulator import FleetSimulator
from openami.headend.deadlines import DeadlineStats
from openami.headend.shipment import save_shipment
from openami.headend.supervisor import HeadEndConfig, HeadEndSupervisor
from openami.transport.memory import Address

__all__ = ["run_supervised"]


def run_supervised(
    plan: Scenario,
    address: Address,
    *,
    bus_url: str,
    workers: int,
    state_dir: Path,
    meter_port: int,
    rcvbuf: int,
    duration: float | None,
    idle_exit: float | None,
    as_json: bool,
    db_url: str | None = None,
    collect_rate: float = 10.0,
    collect_every_s: int = 0,
) -> None:
    err = Console(stderr=True)
    err.print(f"loading the key shipment of {plan.meters:,} meters")
    # the meters' keys, and the access point that serves each (from network management)
    sim = FleetSimulator(plan)
    sim.fleet.port = meter_port
    shipment = state_dir / "keys.npz"
    save_shipment(shipment, sim.fleet.key_shipment() | {"access_point": sim.access_points()})
    del sim
    config = HeadEndConfig(
        address,
        shipment,
        state_dir,
        bus_url,
        workers,
        rcvbuf,
        db_url=db_url,
        step_s=plan.interval_minutes * 60,
        collect_rate_per_ap=collect_rate,
        collect_every_s=collect_every_s,
    )
    supervisor = HeadEndSupervisor(config)
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    supervisor.start()
    err.print(
        f"listening on {address[0]}:{address[1]} (UDP) with {workers} ingest workers; "
        f"bus {bus_url}; collection from {supervisor.sock.address[0]}:{supervisor.sock.address[1]}"
    )
    began = last_line = window_start = time.monotonic()
    last_data, last_seen, window_count, rate = began, 0, 0, 0.0
    stats = supervisor.stats()
    live = Live(supervisor_status(stats, 0.0, 0.0), console=err, transient=as_json)
    if err.is_terminal:
        live.start()
    try:
        while not stopping:
            supervisor.poll(0.1)
            now = time.monotonic()
            if now - window_start >= 1.0:
                stats = supervisor.stats()
                window_count, last_seen = stats.datagrams - last_seen, stats.datagrams
                if window_count:
                    last_data = now
                rate = window_count / (now - window_start)
                window_start = now
                live.update(supervisor_status(stats, now - began, rate))
                if not err.is_terminal and now - last_line >= 10.0:
                    last_line = now
                    err.print(supervisor_line(stats, now - began, rate))
            if duration is not None and now - began >= duration:
                break
            if (
                idle_exit is not None
                and stats.datagrams
                and now - last_data >= idle_exit
                and not supervisor.collector.pending()
                and not stats.commands_pending
            ):
                break
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
        stats = supervisor.stats()
        live.update(supervisor_status(stats, time.monotonic() - began, rate))
        live.stop()
    if as_json:
        summary = supervisor_summary(stats, time.monotonic() - began)
        shares = supervisor.deadline_shares(plan.meters)
        summary["deadlines"] = DeadlineStats.overall(shares)
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
