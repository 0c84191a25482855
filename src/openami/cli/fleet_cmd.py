"""``openami fleet``: the simulated fleet of a scenario, on a real network."""

from __future__ import annotations

import ipaddress
import signal
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Annotated

import msgspec
import typer
from rich.console import Console, Group
from rich.live import Live

from openami.errors import ConfigError

__all__ = ["app", "parse_address", "parse_speed"]

app = typer.Typer(
    help="The simulated fleet: meters of a scenario pushing over UDP to a head-end.",
    no_args_is_help=True,
)
JST = timezone(timedelta(hours=9))


class _Stopped(Exception):
    """SIGTERM: stop where the run is and report what was done."""


def _stop(_sig: int, _frame: FrameType | None) -> None:
    raise _Stopped


def parse_address(text: str, what: str, default_port: int = 4059) -> tuple[str, int]:
    """HOST[:PORT] with an IPv4 HOST; a one-line ConfigError naming ``what`` otherwise."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, str(default_port)
    try:
        ipaddress.IPv4Address(host)
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not IPV4-ADDRESS[:PORT]") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{what} {text!r}: port must be 1..65535")
    return host, port


def parse_speed(text: str) -> float | None:
    """``max`` (None: as fast as the head-end keeps up) or a factor over real time."""
    if text.strip().lower() == "max":
        return None
    try:
        speed = float(text)
    except ValueError:
        raise ConfigError(f"--speed {text!r} is neither a number nor 'max'") from None
    if not speed > 0 or speed != speed or speed == float("inf"):
        raise ConfigError(f"--speed {text!r} must be a number above 0, or 'max'")
    return speed


@app.command()
def run(
    scenario: Annotated[Path, typer.Option(help="Scenario TOML file (see scenarios/demo.toml).")],
    speed: Annotated[
        str,
        typer.Option(
            help="Simulated time over real time (60: an hour a minute), or 'max': as fast as "
            "the head-end keeps up."
        ),
    ] = "max",
    headend: Annotated[
        str, typer.Option(help="The head-end's HOST:PORT (UDP).")
    ] = "127.0.0.1:4059",
    days: Annotated[float, typer.Option(min=0.0, max=45.0, help="Simulated days.")] = 1.0,
    bind: Annotated[
        str,
        typer.Option(
            help="Where the meters listen; 0.0.0.0:4059 lets each meter answer at its own "
            "127.1.x.y address."
        ),
    ] = "0.0.0.0:4059",
    rate: Annotated[
        float | None,
        typer.Option(
            min=1.0, help="At most this many datagrams/s (for a head-end on another host)."
        ),
    ] = None,
    linger: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="After the last interval, keep answering the head-end's requests until "
            "none came for this many seconds.",
        ),
    ] = 0.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the totals as one JSON object at the end.")
    ] = False,
) -> None:
    """Run a scenario's fleet: every meter pushes its interval reads over UDP (IEC 62056-4-7
    wrapper, port 4059), ciphered with its own keys, from its own 127.1.x.y address, and
    answers the head-end's requests at that address. Faults of the scenario happen on time;
    the field networks lose and delay what their physics says. SIGTERM stops it early, with
    the totals of what it did.

    Example: openami fleet run --scenario scenarios/demo.toml --days 1 --speed max

    Start the head-end first: openami headend run --scenario scenarios/demo.toml
    """
    from openami.cli.fleet_view import fleet_status, status_line
    from openami.fleet.runner import FleetRunner
    from openami.fleet.scenario import load_scenario
    from openami.fleet.simulator import FleetSimulator
    from openami.transport.udp_batch import BatchUdpSocket

    pace = parse_speed(speed)
    target = parse_address(headend, "--headend")
    listen = parse_address(bind, "--bind")
    plan = load_scenario(scenario)
    intervals = round(days * 86_400 / (plan.interval_minutes * 60))
    if intervals < 1:
        raise ConfigError(f"--days {days} is shorter than one {plan.interval_minutes}-min interval")
    err = Console(stderr=True)
    err.print(f"building {plan.meters:,} meters of scenario {plan.name!r}")
    sim = FleetSimulator(plan)
    sim.fleet.port = listen[1]
    sock = BatchUdpSocket(
        listen, reuse_addr=True, pktinfo=True, sndbuf=4 * 1024 * 1024, blocking=True
    )
    runner = FleetRunner(sim, sock, target, speed=pace, rate=rate)
    began = time.monotonic()

    def view() -> Group:
        moment = datetime.fromtimestamp(sim.now_s, tz=UTC).astimezone(JST)
        return fleet_status(
            runner.totals,
            intervals,
            time.monotonic() - began,
            f"{moment:%Y-%m-%d %H:%M} JST",
            sim.delivery_by_group(),
        )

    signal.signal(signal.SIGTERM, _stop)
    try:
        if err.is_terminal:
            with Live(view(), console=err, refresh_per_second=4, transient=as_json) as live:
                totals = runner.run(intervals, lambda _r, _t: live.update(view()), linger_s=linger)
        else:  # a log file or a pipe: one line per interval instead of a redrawn screen
            totals = runner.run(
                intervals,
                lambda _r, t: err.print(status_line(t, intervals, time.monotonic() - began, sim)),
                linger_s=linger,
            )
    except _Stopped:
        totals = runner.totals
        err.print("stopped (SIGTERM)")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sock.close()
    elapsed = time.monotonic() - began
    summary = {
        "scenario": plan.name,
        "meters": plan.meters,
        "intervals": totals.intervals,
        "pushes": totals.pushes,
        "sent": totals.sent,
        "requests": totals.requests,
        "answers": totals.answers,
        "elapsed_s": round(elapsed, 3),
        "sent_per_s": round(totals.sent / elapsed, 1) if elapsed > 0 else 0.0,
        "waited_for_headend_s": round(totals.waited_s, 3),
        "headend_drops": totals.headend_drops,
        # per meter id, the head-end's requests (other than load profile reads) the meter
        # carried out, and the copies it answered again without carrying them out
        "executed": {
            str(int(sim.fleet.meter_ids[i])): n for i, n in sim.server.carried_out.items()
        },
        "repeated": sim.server.repeated,
        "delivery": {
            f"{a}/{m}": round(d / s, 4) if s else 1.0 for a, m, s, d in sim.delivery_by_group()
        },
    }
    if as_json:
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    else:
        Console().print(
            f"{totals.intervals} intervals, {totals.sent:,} datagrams sent in {elapsed:,.1f} s "
            f"({summary['sent_per_s']:,}/s); head-end socket drops: {totals.headend_drops:,}"
        )
