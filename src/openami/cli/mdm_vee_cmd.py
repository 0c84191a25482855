"""``openami mdm vee``: validate, estimate and edit a day of the lake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    pass

from openami.cli.mdm_inputs import (
    _lake_meters,
    _registry_sites,
)
from openami.cli.mdm_shared import (
    DataDir,
    SchedulerOpt,
    WorkersOpt,
    _bar,
    _day,
    _emit_json,
    _instant,
    _lake_days,
    _reflowed,
    _registry,
    _stores,
)

# --- vee ---------------------------------------------------------------------------------------


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
