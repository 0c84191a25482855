"""``openami headend``: the head-end on a real UDP socket, with live statistics."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import msgspec
import numpy as np
import typer
from rich.console import Console
from rich.live import Live

from openami.cli.command_cmd import command

__all__ = ["app"]

app = typer.Typer(help="The head-end: secure collection from the meters.", no_args_is_help=True)
app.command(name="command")(command)


@app.command()
def run(
    scenario: Annotated[
        Path,
        typer.Option(
            help="Scenario whose meters this head-end serves: their key shipment is taken from it."
        ),
    ],
    listen: Annotated[
        str, typer.Option(help="IPV4-ADDRESS:PORT to receive on (UDP).")
    ] = "127.0.0.1:4059",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Run the embedded MDMS: store reads in DATA_DIR's lake, find gaps when the "
            "meters go quiet and collect them again. Without it, reads go to the bus only.",
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="Stop after this many seconds.")
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Stop once nothing arrived for this many seconds and no collection is "
            "pending (after the first datagram).",
        ),
    ] = None,
    meter_port: Annotated[
        int, typer.Option(min=1, max=65535, help="The port the meters listen on.")
    ] = 4059,
    rcvbuf: Annotated[
        int, typer.Option(min=65536, help="Receive buffer to ask the kernel for, bytes.")
    ] = 32 * 1024 * 1024,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final statistics as one JSON object.")
    ] = False,
    bus: Annotated[
        str,
        typer.Option(
            help="'memory' (one process, embedded MDMS with --data-dir) or "
            "'nats://HOST:PORT' (NATS JetStream: ingest workers publish reads durably; run "
            "the MDMS as 'openami mdm run' against the same bus).",
        ),
    ] = "memory",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Ingest processes sharing the port (SO_REUSEPORT); needs --bus nats.",
        ),
    ] = 1,
    state_dir: Annotated[
        Path,
        typer.Option(
            help="Where the head-end keeps the meters' counters and addresses across restarts "
            "(with --bus nats)."
        ),
    ] = Path("openami-headend"),
    db: Annotated[
        str | None,
        typer.Option(
            help="Database URL for the commands (SQLAlchemy form, e.g. "
            "postgresql+psycopg://user@127.0.0.1/ami); SQLite under --state-dir by default.",
        ),
    ] = None,
    collect_rate: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Collection requests a second to the meters behind one access point (with "
            "--bus nats), so a re-collection storm cannot flood a mesh.",
        ),
    ] = 10.0,
    collect_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Collect every meter's profile every so many hours of the meters' time, as "
            "a safety net under the pushes (with --bus nats; 0: off).",
        ),
    ] = 0.0,
) -> None:
    """Receive every meter's pushes on UDP (IEC 62056-4-7 wrapper), verify and decrypt them
    with the meter's own keys (replays and tampering refused and counted), publish the reads
    on the bus, and collect again what the MDMS finds missing. Stops on Ctrl-C or SIGTERM.

    Example: openami headend run --scenario scenarios/demo.toml --data-dir /tmp/ami
    then:    openami fleet run --scenario scenarios/demo.toml --speed max
    """
    from openami.bus.contract import SUBJECT_READS
    from openami.bus.memory import MemoryBus
    from openami.cli.fleet_cmd import parse_address
    from openami.cli.fleet_view import headend_line, headend_status
    from openami.errors import ConfigError
    from openami.fleet.fleet import Fleet
    from openami.fleet.scenario import load_scenario
    from openami.headend.keystore import KeyStore
    from openami.headend.udp import UdpHeadEnd
    from openami.mdm.ingest import ReadIngest
    from openami.mdm.recollect import GapWatcher
    from openami.store.lake import IntervalLake
    from openami.transport.udp_batch import BatchUdpSocket

    address = parse_address(listen, "--listen")
    plan = load_scenario(scenario)
    if bus != "memory":
        if data_dir is not None:
            raise ConfigError(
                "--data-dir runs the embedded MDMS, which needs --bus memory; with a NATS bus "
                "run 'openami mdm run --bus ...' beside the head-end"
            )
        from openami.bus.factory import bus_from_url
        from openami.cli.headend_supervised import run_supervised

        every_s, step_s = round(collect_every * 3600), plan.interval_minutes * 60
        if every_s and (every_s < step_s or every_s % step_s):
            raise ConfigError(
                f"--collect-every {collect_every:g} h is not a whole number of the scenario's "
                f"{plan.interval_minutes}-minute intervals"
            )
        bus_from_url(bus).close()  # a wrong URL or a bus that is down: say so before starting
        run_supervised(
            plan,
            address,
            bus_url=bus,
            workers=workers,
            state_dir=state_dir,
            meter_port=meter_port,
            rcvbuf=rcvbuf,
            duration=duration,
            idle_exit=idle_exit,
            as_json=as_json,
            db_url=db,
            collect_rate=collect_rate,
            collect_every_s=every_s,
        )
        return
    if workers > 1:
        raise ConfigError(
            "--workers above 1 needs a bus the workers share: --bus nats://127.0.0.1:4222"
        )
    err = Console(stderr=True)
    err.print(f"loading the key shipment of {plan.meters:,} meters")
    fleet = Fleet(plan)
    fleet.port = meter_port
    keys = KeyStore()
    keys.provision_all(fleet.identities())
    meter_ids = np.asarray(fleet.meter_ids, dtype=np.int64)
    step = fleet.step_s
    del fleet
    memory = MemoryBus()
    sock = BatchUdpSocket(address, reuse_addr=True, rcvbuf=rcvbuf, max_batch=1024)
    headend = UdpHeadEnd(keys, sock, memory)
    mdm = None
    if data_dir is not None:
        mdm = ReadIngest(IntervalLake(data_dir / "lake"), memory.subscribe(SUBJECT_READS))

    watcher = None
    if mdm is not None:
        watcher = GapWatcher(mdm.lake, memory, meter_ids, step)
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    began = last_data = last_line = time.monotonic()
    window_start, window_count, rate = began, 0, 0.0
    err.print(f"listening on {address[0]}:{address[1]} (UDP)")
    live = Live(headend_status(headend.stats, 0.0, 0.0), console=err, transient=as_json)
    if err.is_terminal:
        live.start()
    try:
        while not stopping:
            got = headend.poll(timeout=0.1)
            now = time.monotonic()
            window_count += got
            if now - window_start >= 1.0:
                rate = window_count / (now - window_start)
                window_start, window_count = now, 0
                live.update(headend_status(headend.stats, now - began, rate))
            if not err.is_terminal and now - last_line >= 10.0:  # logs: a line every 10 s
                last_line = now
                err.print(headend_line(headend.stats, now - began, rate))
            if got:
                last_data = now
            if mdm is not None and watcher is not None:
                mdm.poll(1000)
                s = headend.stats
                idle = not headend.collector.pending()  # ask again only when done
                if idle and watcher.due(
                    now, last_data, s.first_interval_end, s.last_interval_end, s.reads_published
                ):
                    headend.flush()
                    while mdm.poll(1000):
                        pass
                    first = s.first_interval_end
                    assert first is not None  # due() is False until reads arrived
                    watcher.check(first, s.last_interval_end or first, s.reads_published)
            if duration is not None and now - began >= duration:
                break
            if (
                idle_exit is not None
                and headend.stats.datagrams
                and now - last_data >= idle_exit
                and not headend.collector.pending()
            ):
                break
        headend.flush()
        if mdm is not None:
            while mdm.poll(1000):
                pass
        live.update(headend_status(headend.stats, time.monotonic() - began, rate))
    except KeyboardInterrupt:
        headend.flush()
    finally:
        live.stop()
        sock.close()
    s = headend.stats
    if as_json:
        summary = {
            "datagrams": s.datagrams,
            "accepted": dict(s.accepted),
            "rejected": dict(s.rejected),
            "decode_errors": headend.ingest.decode_samples,
            "reads_published": s.reads_published,
            "events_published": s.events_published,
            "collections_completed": s.collections_completed,
            "collections_failed": s.collections_failed,
            "elapsed_s": round(time.monotonic() - began, 3),
        }
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
