"""``openami mdm``: the meter data management system beside a running head-end.

``run`` consumes the bus into the lake; ``vee`` validates a day of it (validated versions
with quality flags beside the raw reads); ``billing`` computes a billing month's
determinants per contract; ``query`` shows one meter's reads. ``vee`` and ``billing`` run
partition by partition, in this process or on Dask (``openami.mdm.parallel``).

A data dir holds the interval lake (``lake/interval_reads``), the validated store next to
it (``lake/validated_reads``, ``lake/vee_stats``, ``lake/vee_gaps``) and the registry
(``registry.db``), as ``openami demo`` leaves them.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import msgspec
import typer
from rich.console import Console

__all__ = ["app"]


from openami.cli.mdm_alarms_cmd import _alarm_line, _nowhere, alarms_command
from openami.cli.mdm_billing_cmd import billing
from openami.cli.mdm_compact_cmd import compact
from openami.cli.mdm_query_cmd import query
from openami.cli.mdm_shared import _reflowed, _registry
from openami.cli.mdm_vee_cmd import vee

app = typer.Typer(
    help="The MDMS: store, validate, bill and query the meters' reads.\n\n"
    "Start with:  openami demo --meters 200 --days 2 --data-dir /tmp/ami  then  "
    "openami mdm vee --data-dir /tmp/ami --day 2026-08-03",
    no_args_is_help=True,
)

READS_CONSUMER = "mdm-reads"
EVENTS_CONSUMER = "mdm-events"
MAX_BUS_FAILURES = 20  # consecutive failed fetches (about 10 s) before the MDMS gives up


@app.command()
@_reflowed
def run(
    scenario: Annotated[
        Path, typer.Option(help="Scenario whose meters this MDMS knows (ids and interval length).")
    ],
    data_dir: Annotated[Path, typer.Option(help="Where the interval lake lives.")],
    bus: Annotated[
        str, typer.Option(help="The bus the head-end publishes on: nats://HOST:PORT.")
    ] = "nats://127.0.0.1:4222",
    quiet: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Look for missing intervals once no read arrived for this many seconds, and "
            "ask the head-end to collect them again.",
        ),
    ] = 3.0,
    idle_exit: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            help="Stop once no read arrived for this many seconds and the last gap check "
            "found nothing missing (or gave up asking).",
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0.1, help="Stop after this many seconds.")
    ] = None,
    compact_every: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Every this many seconds, compact the lake's days before the newest day "
            "stored (`openami mdm compact`); 0: never.",
        ),
    ] = 3600.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the final statistics as one JSON object.")
    ] = False,
) -> None:
    """Consume reads from the bus (a durable consumer: what arrives while the MDMS is down
    waits for it), store each read once in the lake, and when the meters go quiet ask the
    head-end to collect every missing interval again.

    Example: openami mdm run --scenario scenarios/demo.toml --data-dir /tmp/ami --bus nats://127.0.0.1:4222
    """
    import numpy as np

    from openami.bus.contract import SUBJECT_EVENTS, SUBJECT_READS_ALL_SHARDS
    from openami.bus.factory import bus_from_url
    from openami.errors import BusError
    from openami.fleet.scenario import load_scenario
    from openami.mdm.alarms import AlarmBook, registry_customers
    from openami.mdm.event_ingest import EventIngest
    from openami.mdm.ingest import ReadIngest
    from openami.mdm.recollect import GapWatcher
    from openami.store.compaction import BackgroundCompactor
    from openami.store.events import EventStore
    from openami.store.lake import IntervalLake
    from openami.store.validated import day_of

    plan = load_scenario(scenario)
    err = Console(stderr=True)
    the_bus = bus_from_url(bus)
    lake = IntervalLake(data_dir / "lake")
    ingest = ReadIngest(lake, the_bus.subscribe(SUBJECT_READS_ALL_SHARDS, durable=READS_CONSUMER))
    registry = _registry(data_dir)
    alarms = AlarmBook(registry_customers(registry) if registry is not None else _nowhere)
    events = EventIngest(
        EventStore(data_dir / "lake"),
        the_bus.subscribe(SUBJECT_EVENTS, durable=EVENTS_CONSUMER),
        alarms,
    )
    meter_ids = np.arange(1, plan.meters + 1, dtype=np.int64)
    watcher = GapWatcher(lake, the_bus, meter_ids, plan.interval_minutes * 60, quiet_s=quiet)
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    began = last_data = last_line = last_compaction = time.monotonic()
    stored = 0
    compactor = BackgroundCompactor(lake)  # so that ingest never waits for it
    span = lake.interval_span()  # what an earlier run stored
    first_end, last_end = span if span is not None else (None, None)
    step = plan.interval_minutes * 60
    expected_first = int(plan.start.timestamp()) + step  # the first interval's end
    if first_end is not None:
        first_end = min(first_end, expected_first)
    last_requests = -1
    err.print(f"MDMS on {bus}: {plan.meters:,} meters, lake in {data_dir / 'lake'}")
    try:
        bus_failures = 0
        while not stopping:
            try:
                got = ingest.poll(200, timeout=0.2)
                for alarm in events.poll(200):
                    err.print(_alarm_line(alarm))
                bus_failures = 0
            except BusError as exc:
                # the bus slow or away for a moment: what was fetched and not acknowledged
                # comes again; give up only when it stays away
                bus_failures += 1
                if bus_failures >= MAX_BUS_FAILURES:
                    raise
                err.print(f"bus: {exc}; trying again")
                time.sleep(0.5)
                continue
            now = time.monotonic()
            if got:
                stored += got
                last_data = now
                lo, hi = ingest.first_end, ingest.last_end
                if lo is not None and hi is not None:
                    # every meter owes reads from the scenario's start, even for intervals
                    # of which not one read arrived (the head-end was down for all of them)
                    first_end = min(lo, expected_first)
                    last_end = hi if last_end is None else max(last_end, hi)
            if (
                first_end is not None
                and last_end is not None
                and watcher.due(now, last_data, first_end, last_end, stored)
            ):
                try:
                    last_requests = watcher.check(first_end, last_end, stored)
                    the_bus.flush()
                except BusError as exc:  # asked again at the next check
                    err.print(f"bus: {exc}; the gaps will be asked for again")
                last_data = now  # give the head-end time to answer before looking again
            if (not err.is_terminal and now - last_line >= 10.0) or (err.is_terminal and got):
                last_line = now
                err.print(
                    f"{now - began:,.0f} s: {stored:,} reads stored, {ingest.duplicates:,} "
                    f"duplicates absorbed, {watcher.requests:,} collections asked for"
                )
            if compact_every and last_end is not None and now - last_compaction >= compact_every:
                last_compaction = now
                newest = day_of(last_end)  # days before the newest are closed, in data time
                compactor.start([d for d in lake.days() if d < newest])
            while compactor.errors:
                err.print(compactor.errors.pop(0))
            if duration is not None and now - began >= duration:
                break
            done = last_requests == 0 or not watcher.due(
                now + 3600, last_data, first_end, last_end, stored
            )
            if idle_exit is not None and stored and now - last_data >= idle_exit and done:
                break
    except KeyboardInterrupt:
        pass
    finally:
        the_bus.close()
        if not compactor.join(60.0):
            err.print("compaction still running at exit; the next run goes on with it")
    if as_json:
        summary = {
            "reads_stored": stored,
            "duplicates": ingest.duplicates,
            "events_stored": events.stored,
            "alarms_open": len(alarms.alarms(open_only=True)),
            "dead_letters": len(ingest.dead_letters),
            "gap_checks": watcher.checks,
            "shard_folders_compacted": compactor.compacted,
            "collections_requested": watcher.requests,
            "first_interval_end": first_end,
            "last_interval_end": last_end,
            "elapsed_s": round(time.monotonic() - began, 3),
        }
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")


app.command()(vee)
app.command()(billing)
app.command()(query)
app.command("alarms")(alarms_command)
app.command()(compact)
