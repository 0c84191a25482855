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

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec

import msgspec
import typer
from rich.console import Console

if TYPE_CHECKING:
    import polars as pl

    from openami.mdm.registry import Registry
    from openami.store.lake import IntervalLake
    from openami.store.validated import ValidatedStore

__all__ = ["app"]

P = ParamSpec("P")


def _reflowed(fn: Callable[P, None]) -> Callable[P, None]:
    """Join the lines of each paragraph of a command's docstring, so that ``--help``
    wraps them to the terminal instead of breaking where the source did."""
    import inspect

    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    fn.__doc__ = "\n\n".join(" ".join(p.split()) for p in paragraphs)
    return fn


app = typer.Typer(
    help="The MDMS: store, validate, bill and query the meters' reads.\n\n"
    "Start with:  openami demo --meters 200 --days 2 --data-dir /tmp/ami  then  "
    "openami mdm vee --data-dir /tmp/ami --day 2026-08-03",
    no_args_is_help=True,
)

READS_CONSUMER = "mdm-reads"
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

    from openami.bus.contract import SUBJECT_READS_ALL_SHARDS
    from openami.bus.factory import bus_from_url
    from openami.errors import BusError
    from openami.fleet.scenario import load_scenario
    from openami.mdm.ingest import ReadIngest
    from openami.mdm.recollect import GapWatcher
    from openami.store.lake import IntervalLake

    plan = load_scenario(scenario)
    err = Console(stderr=True)
    the_bus = bus_from_url(bus)
    lake = IntervalLake(data_dir / "lake")
    ingest = ReadIngest(lake, the_bus.subscribe(SUBJECT_READS_ALL_SHARDS, durable=READS_CONSUMER))
    meter_ids = np.arange(1, plan.meters + 1, dtype=np.int64)
    watcher = GapWatcher(lake, the_bus, meter_ids, plan.interval_minutes * 60, quiet_s=quiet)
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    began = last_data = last_line = time.monotonic()
    stored = 0
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
    if as_json:
        summary = {
            "reads_stored": stored,
            "duplicates": ingest.duplicates,
            "dead_letters": len(ingest.dead_letters),
            "gap_checks": watcher.checks,
            "collections_requested": watcher.requests,
            "first_interval_end": first_end,
            "last_interval_end": last_end,
            "elapsed_s": round(time.monotonic() - began, 3),
        }
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")


# --- shared by vee, billing and query ---------------------------------------------------------


DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="The data dir: its interval lake is DATA_DIR/lake, its registry "
        "DATA_DIR/registry.db (as `openami demo --data-dir` leaves them).",
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Where the partitions run: this process (default); 'local': a Dask LocalCluster "
        "of --workers processes on this machine; tcp://HOST:PORT: a running Dask scheduler "
        "(its workers must see the data dir at the same path).",
    ),
]
WorkersOpt = Annotated[
    int, typer.Option(min=1, max=256, help="Worker processes of --scheduler local.")
]
AMR_STATUS = {  # AMR profile status bits (IDIS): what a meter says about its own interval
    0x01: "critical_error",
    0x02: "clock_invalid",
    0x04: "data_not_valid",
    0x08: "daylight_saving",
    0x20: "clock_adjusted",
    0x80: "power_down",
}
CHANNEL_NAMES = {
    1: "import_wh",
    2: "export_wh",
    3: "import_register_wh",
    4: "export_register_wh",
    5: "gas_index_l",
    6: "water_index_l",
}


def _stores(data_dir: Path) -> tuple[IntervalLake, ValidatedStore]:
    from openami.errors import ConfigError
    from openami.store.lake import IntervalLake
    from openami.store.validated import ValidatedStore

    if not (data_dir / "lake" / "interval_reads").is_dir():
        raise ConfigError(
            f"--data-dir {data_dir} holds no interval lake (no lake/interval_reads); "
            f"make one with `openami demo --data-dir {data_dir}` or `openami mdm run`"
        )
    return IntervalLake(data_dir / "lake"), ValidatedStore(data_dir / "lake")


def _registry(data_dir: Path) -> Registry | None:
    from openami.mdm.registry import Registry

    if not (data_dir / "registry.db").is_file():
        return None
    return Registry.open(data_dir=data_dir)


def _day(text: str, option: str) -> date:
    from openami.errors import ConfigError

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date of the form YYYY-MM-DD") from None


def _instant(text: str, option: str) -> datetime:
    """An ISO 8601 date or date and time; without an offset it is UTC."""
    from openami.errors import ConfigError

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"{option} {text!r} is not an ISO 8601 time such as 2026-08-03T09:00+09:00"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _lake_days(lake: IntervalLake) -> list[date]:
    return lake.days()


@contextmanager
def _bar(label: str, unit: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr; yields the ``progress(done, total)`` callback."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    if not enabled:
        yield lambda _done, _total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


def _emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, default=str) + "\n")


# --- inputs from the registry -----------------------------------------------------------------


def _registry_sites(registry: Registry) -> pl.DataFrame:
    """Electric meters with the traits of the usage point each is installed at (the
    installation in force longest ago first: one row per meter, its latest installation)."""
    import polars as pl
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from openami.errors import StoreError
    from openami.mdm.registry.schema import meter, usage_point, usage_point_meter

    m, i, u = meter.c, usage_point_meter.c, usage_point.c
    query = (
        select(m.meter_id, u.generation_kw, u.occupied, i.valid_from)
        .select_from(meter)
        .outerjoin(usage_point_meter, i.meter_id == m.meter_id)
        .outerjoin(usage_point, u.mrid == i.usage_point)
        .where(m.commodity == "electricity")
    )
    try:
        with registry.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the registry: {exc}") from None
    frame = pl.DataFrame(
        rows,
        schema={
            "meter_id": pl.Int64,
            "generation_kw": pl.Float64,
            "occupied": pl.Boolean,
            "valid_from": pl.Datetime("us", "UTC"),
        },
        orient="row",
    )
    return (
        frame.sort("meter_id", "valid_from", nulls_last=False)
        .unique("meter_id", keep="last", maintain_order=True)
        .select(
            "meter_id",
            has_pv=pl.col("generation_kw") > 0,
            occupied=pl.col("occupied"),
        )
    )


def _registry_contracts(registry: Registry, reading_day: int, default_amps: int) -> pl.DataFrame:
    """The registry's retail contracts as billing's contract frame: one row per contract
    and meter installed at its usage point, over the overlap of the two spans (moved up to
    the 30-minute grid). The contract current is the contract's, else its tariff's, else
    ``default_amps``; the tariff-book code is the tariff's ``periods_ref``, else its code.
    The registry keeps no meter-reading day: every contract is read on ``reading_day``."""
    import polars as pl
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from openami.errors import StoreError
    from openami.mdm.registry.schema import customer_agreement, pricing_structure, usage_point_meter

    a, i, p = customer_agreement.c, usage_point_meter.c, pricing_structure.c
    query = (
        select(
            a.mrid,
            i.meter_id,
            a.tariff,
            p.periods_ref,
            a.contract_current_a,
            p.contract_current_a.label("tariff_amps"),
            a.valid_from,
            a.valid_to,
            i.valid_from.label("installed_from"),
            i.valid_to.label("installed_to"),
        )
        .select_from(customer_agreement)
        .join(usage_point_meter, i.usage_point == a.usage_point)
        .outerjoin(pricing_structure, p.code == a.tariff)
    )
    try:
        with registry.engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(query)]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the registry's contracts: {exc}") from None
    when = pl.Datetime("us", "UTC")
    frame = pl.DataFrame(
        rows,
        schema={
            "mrid": pl.String,
            "meter_id": pl.Int64,
            "tariff": pl.String,
            "periods_ref": pl.String,
            "amps": pl.Int64,
            "tariff_amps": pl.Int64,
            "from": when,
            "to": when,
            "installed_from": when,
            "installed_to": when,
        },
        orient="row",
    )
    grid = "30m"

    def up(column: str) -> pl.Expr:  # the next interval boundary at or after the instant
        c = pl.col(column)
        floor = c.dt.truncate(grid)
        return pl.when(floor == c).then(c).otherwise(floor + pl.duration(minutes=30))

    frame = frame.with_columns(
        valid_from=pl.max_horizontal(up("from"), up("installed_from")),
        valid_to=pl.min_horizontal(up("to"), up("installed_to")),
    ).filter(pl.col("valid_to").is_null() | (pl.col("valid_to") > pl.col("valid_from")))
    several = pl.col("mrid").is_duplicated()
    return frame.select(
        contract_id=pl.when(several)
        .then(pl.format("{}@{}", "mrid", "meter_id"))
        .otherwise(pl.col("mrid")),
        meter_id="meter_id",
        tariff=pl.coalesce("periods_ref", "tariff"),
        contract_amps=pl.coalesce("amps", "tariff_amps", pl.lit(default_amps, pl.Int64)),
        reading_day=pl.lit(reading_day, pl.Int32),
        valid_from="valid_from",
        valid_to="valid_to",
    ).sort("meter_id", "valid_from")


def _lake_meters(lake: IntervalLake, days: list[date]) -> pl.DataFrame:
    """The electricity meters with a raw read on any of ``days``."""
    import polars as pl

    files = [f for d in days for f in lake.day_files(d)]
    if not files:
        return pl.DataFrame(schema={"meter_id": pl.Int64})
    return (
        pl.scan_parquet(files)
        .filter(pl.col("channel").is_between(1, 4))
        .select(pl.col("meter_id").cast(pl.Int64).unique())
        .collect()
        .sort("meter_id")
    )


# --- vee ---------------------------------------------------------------------------------------


@app.command()
@_reflowed
def vee(
    data_dir: DataDir,
    day: Annotated[str, typer.Option(help="The UTC day of the lake to validate, YYYY-MM-DD.")],
    now: Annotated[
        str | None,
        typer.Option(
            help="The time VEE decides gaps at (ISO 8601; no offset: UTC; default: the "
            "current time). A gap is first asked for again (individual collection) and "
            "estimated only once the wait after the first request is over: run again later.",
        ),
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(
            help="The utility's own VEE rule table (TOML; keys it leaves out keep the "
            "shipped defaults of openami/mdm/vee/rules.toml).",
            dir_okay=False,
        ),
    ] = None,
    chunk_meters: Annotated[
        int,
        typer.Option(min=1, help="Meters per partition (about 2 GB of memory per 100,000 meters)."),
    ] = 100_000,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = 2,
    bus: Annotated[
        str | None,
        typer.Option(
            help="Publish the collection requests for the gaps on this bus "
            "(nats://HOST:PORT) for the head-end (default: only count them).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object.")
    ] = False,
) -> None:
    """Validate, estimate and edit one day of reads (VEE): every rule of the rule table on
    every meter, quality flags (IEC 61968-9 ReadingQuality) on every read, gaps asked for
    again and then estimated. New versions go to the validated store beside the raw lake;
    the raw reads stay as received. Running a day again writes only what changed.

    The meters are the registry's electricity meters (DATA_DIR/registry.db: PV and
    occupancy from their usage points), else every meter with a read that day.

    Example: openami mdm vee --data-dir /tmp/ami --day 2026-08-03 --scheduler local
    """
    from openami.errors import AmiError
    from openami.mdm.parallel import run_vee_day
    from openami.mdm.vee.config import load_config

    lake, store = _stores(data_dir)
    the_day = _day(day, "--day")
    at = _instant(now, "--now") if now is not None else datetime.now(UTC)
    config = load_config(rules)
    days = _lake_days(lake)
    if the_day not in days:
        stored = f"{days[0]} .. {days[-1]}" if days else "none"
        raise AmiError(f"no raw reads for {the_day} in {lake.reads_dir} (days stored: {stored})")
    registry = _registry(data_dir)
    attributes = None
    if registry is not None:
        try:
            attributes = _registry_sites(registry)
        finally:
            registry.close()
    meters_from = "registry"
    if attributes is None or attributes.height == 0:
        attributes = _lake_meters(lake, [the_day - timedelta(days=1), the_day])
        meters_from = "lake"
    err = Console(stderr=True)
    with _bar(f"VEE {the_day}", "meters", err.is_terminal and not as_json) as progress:
        summary = run_vee_day(
            lake,
            store,
            the_day,
            attributes,
            now=int(at.timestamp()),
            config=config,
            chunk_meters=chunk_meters,
            scheduler=scheduler,
            workers=workers,
            progress=progress,
        )
    published = 0
    if bus is not None and summary.requests:
        published = _publish(bus, summary.requests)
    counts = summary.counts
    rules_hit: dict[str, dict[str, int]] = {}
    for key, value in counts.items():
        rule, _, side = key.partition("/")
        if side in ("import", "export") and rule != "estimated":
            rules_hit.setdefault(rule, {"import": 0, "export": 0})[side] = value
    seconds = max(summary.seconds, 1e-9)
    doc = {
        "day": str(the_day),
        "meters": summary.meters,
        "meters_from": meters_from,
        "reads": summary.reads,
        "versions_written": summary.written,
        "seconds": round(summary.seconds, 3),
        "reads_per_s": round(summary.reads / seconds, 1),
        "scheduler": scheduler or "in-process",
        "flags": rules_hit,
        "estimated": {
            "import": counts.get("estimated/import", 0),
            "export": counts.get("estimated/export", 0),
        },
        "gaps": {
            "ask": counts.get("gaps/ask", 0),
            "wait": counts.get("gaps/wait", 0),
            "estimate": counts.get("gaps/estimate", 0),
        },
        "collection_requests": len(summary.requests),
        "collection_requests_published": published,
        "now": at.isoformat(),
    }
    if as_json:
        _emit_json(doc)
        return
    _print_vee(doc, bus)


def _publish(url: str, requests: list[Any]) -> int:
    from openami.bus.contract import SUBJECT_COLLECT, encode_message
    from openami.bus.factory import bus_from_url

    the_bus = bus_from_url(url)
    try:
        for request in requests:
            the_bus.publish(SUBJECT_COLLECT, encode_message(request))
        the_bus.flush()
    finally:
        the_bus.close()
    return len(requests)


def _print_vee(doc: dict[str, Any], bus: str | None) -> None:
    from rich.table import Table

    out = Console()
    out.print(
        f"VEE of {doc['day']}: {doc['meters']:,} meters (from the {doc['meters_from']}), "
        f"{doc['reads']:,} reads in {doc['seconds']:,.2f} s = {doc['reads_per_s']:,.0f} "
        f"reads/s ({doc['scheduler']}); {doc['versions_written']:,} versions written"
    )
    table = Table("rule", "import", "export", title="reads flagged, by rule")
    for rule, sides in sorted(doc["flags"].items()):
        if sides["import"] or sides["export"]:
            table.add_row(rule, f"{sides['import']:,}", f"{sides['export']:,}")
    est = doc["estimated"]
    table.add_row("[bold]estimated[/bold]", f"{est['import']:,}", f"{est['export']:,}")
    out.print(table)
    gaps = doc["gaps"]
    sent = (
        f"published on {bus}"
        if doc["collection_requests_published"]
        else "not sent: pass --bus to publish them"
    )
    out.print(
        f"gaps: {gaps['ask']:,} asked for again, {gaps['wait']:,} waiting, "
        f"{gaps['estimate']:,} estimated; {doc['collection_requests']:,} collection "
        f"requests ({sent})"
    )


# --- billing -----------------------------------------------------------------------------------


@app.command()
@_reflowed
def billing(
    data_dir: DataDir,
    cycle: Annotated[
        str,
        typer.Option(
            help="The billing month YYYY-MM: the cycle that the meter-reading day of that "
            "month closes (2026-09 with reading day 1 bills 1-31 August, Japan time)."
        ),
    ],
    tariff: Annotated[
        str,
        typer.Option(help="Tariff of the default contracts (see below): a tariff-book code."),
    ] = "jp-residential-tou",
    reading_day: Annotated[
        int, typer.Option(min=1, max=28, help="Meter-reading day (1..28) of every contract.")
    ] = 1,
    contract_amps: Annotated[
        int,
        typer.Option(
            min=1, help="Contract current of a default contract, or of one that names none."
        ),
    ] = 30,
    tariffs: Annotated[
        Path | None,
        typer.Option(help="Tariff book, TOML (default: the shipped one).", dir_okay=False),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Bill from the raw lake (validity only from the meters' status bits) "
            "instead of the validated store.",
        ),
    ] = False,
    shard_meters: Annotated[int, typer.Option(min=1, help="Meters per partition.")] = 100_000,
    scheduler: SchedulerOpt = None,
    workers: WorkersOpt = 2,
    limit: Annotated[int, typer.Option(min=0, help="Contracts shown in the table (0: all).")] = 20,
    output: Annotated[
        Path | None,
        typer.Option(
            help="Also write every contract's determinants to this file (.parquet or .csv).",
            dir_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print the summary and every contract as one JSON object."),
    ] = False,
) -> None:
    """Billing determinants per contract for one billing month: kWh per time-of-use period,
    total import and export, maximum 30-minute demand, and bill-ready (every interval of the
    cycle present and passed VEE; otherwise the reason).

    Which contracts: the registry's retail contracts (DATA_DIR/registry.db), each on its
    tariff and over its dates at the meter's usage point, all read on --reading-day (the
    registry keeps no reading day). A registry without contracts (as the demo leaves it),
    or no registry: one default contract per meter, every meter on --tariff, read on
    --reading-day, at --contract-amps, open-ended (so a month with days of data missing is
    not bill-ready, and says why).

    Example: openami mdm billing --data-dir /tmp/ami --cycle 2026-09 --reading-day 3
    """
    import polars as pl

    from openami.errors import AmiError, ConfigError
    from openami.mdm.billing import BillingError, BillingMonth, load_tariffs
    from openami.mdm.parallel import billing_for_cycle, cycle_span

    lake, store = _stores(data_dir)
    try:
        month = BillingMonth.parse(cycle)
    except BillingError as exc:
        raise ConfigError(f"--cycle: {exc}") from None
    book = load_tariffs(tariffs)
    if tariff not in book.codes:
        raise ConfigError(
            f"--tariff {tariff!r} is not in the tariff book ({', '.join(book.codes)})"
        )
    start, end = cycle_span(month, [reading_day], book.timezone)
    span_days = [(start + timedelta(days=k)).date() for k in range((end - start).days + 2)]
    if not raw and not any(store.files(d) for d in span_days):
        raise AmiError(
            f"no validated reads between {start:%Y-%m-%d} and {end:%Y-%m-%d} (the cycle of "
            f"{month}): run `openami mdm vee --data-dir {data_dir} --day ...` first, or "
            "pass --raw"
        )
    registry = _registry(data_dir)
    contracts = None
    sites = None
    if registry is not None:
        try:
            contracts = _registry_contracts(registry, reading_day, contract_amps)
            sites = _registry_sites(registry)
        finally:
            registry.close()
    if contracts is not None and contracts.height:
        contracts_from = f"the registry ({contracts.height:,} contracts, read on day {reading_day})"
    else:
        meters = sites if sites is not None and sites.height else _lake_meters(lake, span_days)
        if meters.height == 0:
            raise AmiError(f"no meters in the registry nor reads in the lake for {month}")
        contracts = meters.select(
            pl.col("meter_id"),
            tariff=pl.lit(tariff),
            contract_amps=pl.lit(contract_amps, pl.Int64),
            reading_day=pl.lit(reading_day, pl.Int32),
        )
        contracts_from = (
            f"default: every meter on {tariff}, read on day {reading_day}, {contract_amps} A "
            f"(the {'registry' if sites is not None and sites.height else 'lake'} has no contracts)"
        )
    err = Console(stderr=True)
    began = time.perf_counter()
    with _bar(f"billing {month}", "shards", err.is_terminal and not as_json) as progress:
        det = billing_for_cycle(
            lake if raw else store,
            month,
            contracts,
            book=book,
            shard_meters=shard_meters,
            scheduler=scheduler,
            workers=workers,
            progress=progress,
        )
    seconds = time.perf_counter() - began
    if output is not None:
        _write_determinants(det, output)
    summary = {
        "billing_month": str(month),
        "source": "raw lake" if raw else "validated store",
        "contracts_from": contracts_from,
        "contracts": det.height,
        "bill_ready": int(det["bill_ready"].sum()),
        "import_kwh": round(int(det["import_wh"].sum()) / 1000, 3),
        "export_kwh": round(int(det["export_wh"].sum()) / 1000, 3),
        "seconds": round(seconds, 3),
        "scheduler": scheduler or "in-process",
    }
    if as_json:
        _emit_json({**summary, "determinants": json.loads(det.write_json())})
        return
    _print_billing(summary, det, limit)


def _flat_determinants(det: pl.DataFrame) -> pl.DataFrame:
    """One column per TOU period (``<period>_wh``), events folded into their totals: for CSV."""
    import polars as pl

    periods = (
        det.select("contract_id", "cycle_start", "period_wh")
        .explode("period_wh")
        .unnest("period_wh")
        .drop_nulls("period")
        .pivot(on="period", index=["contract_id", "cycle_start"], values="wh")
    )
    renamed = periods.rename(
        {c: f"{c}_wh" for c in periods.columns if c not in ("contract_id", "cycle_start")}
    )
    flat = det.drop("period_wh", "events").join(
        renamed, on=["contract_id", "cycle_start"], how="left"
    )
    return flat.with_columns(pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%SZ"))


def _write_determinants(det: pl.DataFrame, path: Path) -> None:
    from openami.errors import ConfigError, StoreError

    try:
        if path.suffix == ".parquet":
            det.write_parquet(path)
        elif path.suffix == ".csv":
            _flat_determinants(det).write_csv(path)
        else:
            raise ConfigError(f"--output {path}: give a .parquet or .csv file")
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None


def _print_billing(summary: dict[str, Any], det: pl.DataFrame, limit: int) -> None:
    from rich.table import Table

    out = Console()
    out.print(
        f"Billing month {summary['billing_month']} from the {summary['source']}: "
        f"{summary['contracts']:,} contracts, {summary['bill_ready']:,} bill-ready; "
        f"{summary['import_kwh']:,.3f} kWh imported, {summary['export_kwh']:,.3f} kWh "
        f"exported ({summary['seconds']:,.2f} s, {summary['scheduler']})"
    )
    out.print(f"contracts: {summary['contracts_from']}")
    cycles = det.select("cycle_start", "cycle_end").unique().sort("cycle_start")
    if cycles.height == 1:
        out.print(f"cycle: {cycles.item(0, 0)} .. {cycles.item(0, 1)} (local dates)")
    table = Table("id", "meter", "import kWh", "by period kWh", "export kWh", "max kW")
    table.add_column("missing", justify="right")
    table.add_column("not valid", justify="right")
    table.add_column("ready")
    if cycles.height > 1:
        table.add_column("cycle")
    shown = det if limit == 0 else det.head(limit)
    for row in shown.iter_rows(named=True):
        periods = "\n".join(f"{p['period']} {p['wh'] / 1000:,.3f}" for p in row["period_wh"])
        peak = f"{row['max_demand_kw']:,.3f}" if row["max_demand_wh"] is not None else "-"
        present, valid = row["intervals_present"], row["intervals_valid"]
        cells = [
            str(row["contract_id"]),
            str(row["meter_id"]),
            f"{row['import_wh'] / 1000:,.3f}",
            periods,
            f"{row['export_wh'] / 1000:,.3f}",
            peak,
            f"{max(row['intervals_expected'] - present, 0):,}",
            f"{present - valid:,}",
            "yes" if row["bill_ready"] else "no",
        ]
        if cycles.height > 1:
            cells.append(f"{row['cycle_start']} .. {row['cycle_end']}")
        table.add_row(*cells)
    out.print(table)
    if shown.height < det.height:
        out.print(
            f"... {det.height - shown.height:,} more (--limit 0 shows all, --json or --output)"
        )


# --- query -------------------------------------------------------------------------------------


@app.command()
@_reflowed
def query(
    data_dir: DataDir,
    meter: Annotated[int, typer.Option(min=0, help="The meter id.")],
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First interval end shown (ISO 8601 date or time; no offset: UTC) "
            "(default: the first stored).",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(help="Last interval end shown, as --from (default: the last stored)."),
    ] = None,
    validated: Annotated[
        bool,
        typer.Option(
            "--validated",
            help="Show the validated reads (current version, VEE quality flags as CIM "
            "ReadingQuality codes, origin) instead of the raw reads as received.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the reads as JSON (one object per line).")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the reads as CSV.")] = False,
) -> None:
    """One meter's interval reads, one row per interval end (UTC), with their quality: for
    raw reads every channel and the meter's own AMR status bits (clock_invalid, power_down,
    ...); with --validated the import and export VEE made of them, each with its quality
    flags as IEC 61968-9 ReadingQuality codes (3.0.1 validated, 3.5.259 missing, 3.8.x
    estimated, ...), origin (measured, estimated, edited, missing) and version.

    Example: openami mdm query --data-dir /tmp/ami --meter 17 --from 2026-08-03T09:00+09:00 --csv
    """
    from openami.errors import AmiError, ConfigError

    if as_json and as_csv:
        raise ConfigError("--json and --csv exclude each other: choose one")
    lake, store = _stores(data_dir)
    lo = _instant(from_, "--from") if from_ is not None else None
    hi = _instant(to, "--to") if to is not None else None
    if lo is not None and hi is not None and hi < lo:
        raise ConfigError(f"--to {to} is before --from {from_}")
    days = [
        d
        for d in _lake_days(lake)
        if (lo is None or d >= lo.date() - timedelta(days=1))
        and (hi is None or d <= hi.date() + timedelta(days=1))
    ]
    rows = _validated_rows(store, meter, days) if validated else _raw_rows(lake, meter, days)
    if lo is not None:
        rows = rows.filter(rows["interval_end"] >= lo)
    if hi is not None:
        rows = rows.filter(rows["interval_end"] <= hi)
    if rows.height == 0:
        what = "validated reads (run `openami mdm vee` first?)" if validated else "reads"
        span = f" between {from_ or 'the start'} and {to or 'the end'}" if lo or hi else ""
        raise AmiError(f"meter {meter} has no {what}{span} in {data_dir}")
    if as_csv:
        sys.stdout.write(_plain_text(rows).write_csv())
    elif as_json:
        sys.stdout.write(_plain_text(rows).write_ndjson())
    else:
        _print_reads(rows, meter, validated)


def _raw_rows(lake: IntervalLake, meter: int, days: list[date]) -> pl.DataFrame:
    """Per interval end: the highest version of every channel, the status bits of the
    interval (any channel's) and how it came (push or re-collection)."""
    import polars as pl

    from openami.bus.contract import ReadSource

    files = [f for d in days for f in lake.day_files(d)]
    if not files:
        return pl.DataFrame(schema={"interval_end": pl.Datetime("us", "UTC")})
    reads = (
        pl.scan_parquet(files)
        .filter(pl.col("meter_id") == meter)
        .select("channel", "interval_end", "value_wh", "version", "source", "status")
        .collect()
        .sort("version")
        .unique(["channel", "interval_end"], keep="last")
    )
    if reads.height == 0:
        return pl.DataFrame(schema={"interval_end": pl.Datetime("us", "UTC")})
    wide = reads.pivot(on="channel", index="interval_end", values="value_wh", sort_columns=True)
    wide = wide.rename({c: CHANNEL_NAMES.get(int(c), f"channel_{c}") for c in wide.columns[1:]})
    per_end = reads.group_by("interval_end").agg(
        status=pl.col("status").cast(pl.Int64).bitwise_or(),
        source=pl.col("source").max(),
        version=pl.col("version").max(),
    )
    names = {int(s): s.name.lower() for s in ReadSource}
    out = wide.join(per_end, on="interval_end").sort("interval_end")
    return out.with_columns(
        pl.col("interval_end").cast(pl.Datetime("us", "UTC")),
        quality=pl.col("status").map_elements(_status_names, return_dtype=pl.String),
        source=pl.col("source").replace_strict(names, default="unknown", return_dtype=pl.String),
    )


def _status_names(status: int) -> str:
    return " ".join(name for bit, name in AMR_STATUS.items() if status & bit) or "ok"


def _validated_rows(store: ValidatedStore, meter: int, days: list[date]) -> pl.DataFrame:
    import polars as pl

    from openami.mdm.vee.flags import describe
    from openami.store.validated import Origin

    frames = [f for d in days if (f := store.current(d, [meter])).height]
    if not frames:
        return pl.DataFrame(schema={"interval_end": pl.Datetime("us", "UTC")})
    rows = pl.concat(frames).filter(pl.col("channel").is_in([1, 2]))
    rows = describe(rows)
    origins = {int(o): o.name.lower() for o in Origin}
    sides = []
    for channel, name in ((1, "import"), (2, "export")):
        sides.append(
            rows.filter(pl.col("channel") == channel).select(
                "interval_end",
                pl.col("value_wh").alias(f"{name}_wh"),
                pl.col("quality").list.join(" ").alias(f"{name}_quality"),
                pl.col("origin")
                .replace_strict(origins, default="unknown", return_dtype=pl.String)
                .alias(f"{name}_origin"),
                pl.col("version").alias(f"{name}_version"),
            )
        )
    out = sides[0].join(sides[1], on="interval_end", how="full", coalesce=True)
    return out.sort("interval_end").with_columns(
        pl.from_epoch("interval_end", "s").dt.replace_time_zone("UTC").alias("interval_end")
    )


def _plain_text(rows: pl.DataFrame) -> pl.DataFrame:
    import polars as pl

    return rows.with_columns(pl.col("interval_end").dt.to_string("%Y-%m-%dT%H:%M:%SZ"))


def _print_reads(rows: pl.DataFrame, meter: int, validated: bool) -> None:
    import polars as pl
    from rich.table import Table

    out = Console()
    text = _plain_text(rows)
    title = f"meter {meter}: {'validated' if validated else 'raw'} reads, interval ends in UTC"
    # the table keeps what a person reads; --csv and --json have every column
    text = text.drop("status", "import_version", "export_version", strict=False)
    if "version" in text.columns and text.get_column("version").max() == 1:
        text = text.drop("version")
    if validated:
        same = pl.col("import_origin").eq_missing(pl.col("export_origin"))
        text = text.with_columns(
            origin=pl.when(same)
            .then(pl.col("import_origin"))
            .otherwise(pl.format("{}/{}", "import_origin", "export_origin"))
        ).drop("import_origin", "export_origin")
    table = Table(title=title)
    for column in text.columns:
        short = column.removesuffix("_wh").replace("import", "imp").replace("export", "exp")
        table.add_column(short.replace("_", " "), no_wrap=column == "interval_end")
    text = text.with_columns(pl.col("interval_end").str.slice(0, 16).str.replace("T", " "))
    for row in text.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)
