"""``openami routeb``: Route B, meter -> home over ECHONET Lite: the B-route credentials the
MDMS issues, and simulated meters serving their ECHONET Lite node on UDP 3610."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from openami.errors import ConfigError

if TYPE_CHECKING:
    from openami.mdm.broute import BRouteStore
    from openami.transport.pana_thread import PanaThread

__all__ = ["app"]

app = typer.Typer(
    help="Route B: what a meter tells the home's energy management system (HEMS) over "
    "ECHONET Lite, and the B-route credentials the customer needs for it.",
    no_args_is_help=True,
)
credentials = typer.Typer(
    help="B-route credentials (ID and password) the MDMS issues when a customer applies.",
    no_args_is_help=True,
)
app.add_typer(credentials, name="credentials")

MAX_METERS = 1000

MeterOpt = Annotated[int, typer.Option("--meter", min=1, help="The meter's id.")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data dir whose registry (DATA_DIR/registry.db) holds the meters and their "
        "credentials (default: the configured data dir, ./openami-data).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL of the registry instead, e.g. postgresql+psycopg://HOST/DB.",
    ),
]


def _store(data_dir: Path | None, db: str | None, *, default: bool = True) -> BRouteStore | None:
    """The credentials store of ``--data-dir`` or ``--db`` (or the configured data dir)."""
    from openami.mdm.broute import BRouteStore

    if data_dir is not None and db is not None:
        raise ConfigError("give --data-dir or --db, not both")
    if db is not None:
        return BRouteStore.open(db)
    if data_dir is None:
        if not default:
            return None
        from openami.cli.main import _config

        data_dir = Path(_config().data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise ConfigError(f"--data-dir {data_dir} is not a directory")
    if not (data_dir / "registry.db").is_file():  # rather than make an empty one
        raise ConfigError(
            f"--data-dir {data_dir} has no registry (registry.db); register meters with "
            f"`openami demo --data-dir {data_dir}`"
        )
    try:
        return BRouteStore.open(data_dir=data_dir)
    except OSError as exc:
        raise ConfigError(f"--data-dir {data_dir} is not usable: {exc.strerror}") from None


@credentials.command("issue")
def issue(
    meter: MeterOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
) -> None:
    """Issue a B-route ID (32 hexadecimal digits) and password (12 letters and digits) for a
    meter of the registry, and print them for the customer. A meter has one active pair:
    issuing again revokes the old one.

    Example: openami routeb credentials issue --meter 1 --json
    """
    store = _store(data_dir, db)
    assert store is not None
    with store:
        issued = store.issue(meter)
    if as_json:
        out = {"meter": meter, "rbid": issued.rbid, "password": issued.password}
        sys.stdout.write(json.dumps(out) + "\n")
        return
    for label, value in (
        ("meter", meter),
        ("B-route ID", issued.rbid),
        ("password", issued.password),
    ):
        sys.stdout.write(f"{label:<11}{value}\n")


@credentials.command("revoke")
def revoke(meter: MeterOpt, data_dir: DataDirOpt = None, db: DbOpt = None) -> None:
    """Revoke a meter's B-route credentials: its ID stops authenticating at once.

    Example: openami routeb credentials revoke --meter 1
    """
    from openami.errors import AmiError

    store = _store(data_dir, db)
    assert store is not None
    with store:
        if not store.revoke(meter):
            raise AmiError(f"meter {meter} has no active B-route credentials to revoke")
    Console(stderr=True).print(f"B-route credentials of meter {meter} revoked")


def _addresses(bind: str, count: int) -> list[str]:
    try:
        first = ipaddress.IPv4Address(bind)
    except ValueError:
        raise ConfigError(f"--bind {bind!r} is not an IPv4 address") from None
    if int(first) + count - 1 > int(ipaddress.IPv4Address("255.255.255.254")):
        raise ConfigError(f"--bind {bind} has no room for {count} consecutive addresses")
    return [str(first + k) for k in range(count)]


def _scenario_time(at: str | None) -> datetime | None:
    if at is None:
        return None
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise ConfigError(f"--at {at!r} is not an ISO date and time") from None
    if moment.tzinfo is None:
        raise ConfigError(f"--at {at!r} needs a UTC offset, e.g. 2026-08-03T12:10:00+09:00")
    return moment


def _join_service(store: BRouteStore | None, meters: dict[str, int]) -> PanaThread | None:
    """PANA on UDP 716 at every meter's address: a meter accepts only its own active B-route
    ID (so the ID of one meter's customer opens no other meter), asked afresh at each join,
    so a revoked ID stops working at once."""
    if store is None:
        return None
    from openami.transport.pana_thread import PanaThread

    def lookup_for(address: str) -> Callable[[str], str | None]:
        meter_id = meters[address]

        def lookup(rbid: str) -> str | None:
            active = store.for_meter(meter_id)
            if active is None or active.rbid != rbid.upper():
                return None
            return active.password

        return lookup

    return PanaThread(list(meters), lookup_for)


def _admission(joins: PanaThread, address: str) -> Callable[[str], bool]:
    def admit(host: str) -> bool:
        return joins.admitted(address, host)

    return admit


@app.command("meter")
def meter(
    bind: Annotated[
        str,
        typer.Option(
            help="Address of the first meter; with --meters N the others count up from it "
            "(127.0.1.1, 127.0.1.2, ...). Not 127.0.0.1: a HEMS on 0.0.0.0 sends from there.",
        ),
    ] = "127.0.0.2",
    meter_id: Annotated[
        int, typer.Option("--meter", min=1, help="Id of the (first) meter of the scenario.")
    ] = 1,
    meters: Annotated[
        int, typer.Option(min=1, max=MAX_METERS, help="How many meters, each on its own address.")
    ] = 1,
    scenario: Annotated[
        Path, typer.Option(help="Scenario TOML the fleet is built from.", dir_okay=False)
    ] = Path("scenarios/demo.toml"),
    at: Annotated[
        str | None,
        typer.Option(
            help="Scenario time to start at, e.g. 2026-08-03T12:10:00+09:00; it then runs "
            "at the wall clock's pace (default: the scenario's first day at the wall "
            "clock's time of day).",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Only serve meters whose B-route credentials the MDMS of DATA_DIR issued "
            "(default: serve without looking).",
        ),
    ] = None,
    db: DbOpt = None,
    duration: Annotated[
        float | None,
        typer.Option(min=0.1, help="Stop after this many seconds (default: until interrupted)."),
    ] = None,
) -> None:
    """Run simulated meters' ECHONET Lite nodes (node profile and low-voltage smart meter
    0x0288) on UDP 3610, each on its own address, until interrupted (Ctrl-C, SIGTERM).

    The values are the meter's Route A registers and load profile: 0xE0 (x 0.001 kWh) is its
    DLMS import register in Wh, 0xE2 its load profile at each half-hour of the day. The clock
    is the wall clock moved into the scenario (see --at), so registers advance as time passes.
    Prints one line per meter: its id, serial and address.

    Example: openami routeb meter --bind 127.0.0.2 --meters 3
    then:    openami hems discover
    """
    from openami.fleet.fleet import Fleet
    from openami.fleet.routeb import route_b_meter, scenario_clock
    from openami.fleet.scenario import load_scenario
    from openami.protocols.echonet import JST
    from openami.transport.echonet_udp import ECHONET_PORT, EchonetUdpServer

    addresses = _addresses(bind, meters)
    start_at = _scenario_time(at)
    spec = load_scenario(scenario)
    last = meter_id + meters - 1
    if last > spec.meters:
        unknown = meter_id if meter_id > spec.meters else last
        raise ConfigError(
            f"meter {unknown} is not in scenario {spec.name} (meters 1..{spec.meters})"
        )
    ids = range(meter_id, last + 1)
    store = _store(data_dir, db, default=False)
    if store is not None:
        missing = [m for m in ids if store.for_meter(m) is None]
        if missing:
            store.close()
            raise ConfigError(
                f"meter {missing[0]} has no B-route credentials; issue them first: "
                f"openami routeb credentials issue --meter {missing[0]}"
            )
    fleet = Fleet(spec)
    clock = scenario_clock(spec.start, at=start_at)
    err = Console(stderr=True)
    joins = _join_service(store, dict(zip(addresses, ids, strict=True)))
    with EchonetUdpServer() as server:
        for address, mid in zip(addresses, ids, strict=True):
            node = route_b_meter(fleet, mid - 1, clock)
            admit = None if joins is None else _admission(joins, address)
            server.add(address, node.node, announce=node.announcements, admit=admit)
        for address, mid in zip(addresses, ids, strict=True):
            sys.stdout.write(f"meter {mid} ({fleet.serial(mid - 1)}) on {address}:{ECHONET_PORT}\n")
        sys.stdout.flush()
        now = clock().astimezone(JST)
        err.print(f"meter clock {now:%Y-%m-%d %H:%M:%S} JST; {server.multicast}", soft_wrap=True)
        err.print(
            "answering only a HEMS that joined with the meter's B-route ID and password "
            "(PANA on UDP 716)"
            if joins is not None
            else "lab mode: no credentials store given (--data-dir/--db), answering every HEMS"
        )
        err.print("serving until interrupted (Ctrl-C)" if duration is None else "serving")

        def stop(_sig: int, _frame: FrameType | None) -> None:
            server.stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.serve(duration)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if joins is not None:
                joins.close()
            if store is not None:
                store.close()
        counts = server.counts
    err.print(
        f"stopped: {counts.answered:,} replies to {counts.received:,} datagrams, "
        f"{counts.refused:,} refused",
        soft_wrap=True,
    )


def meter_mac(meter_id: int) -> bytes:
    """The meter's Wi-SUN MAC address (EUI-64) as its beacon tells it: a fixed prefix and
    the meter id, so a HEMS scanning for meter N finds the same address every time."""
    return bytes.fromhex("001D1290") + meter_id.to_bytes(4, "big")


@app.command("dongle")
def dongle(
    meter_id: Annotated[int, typer.Option("--meter", min=1, help="The meter to reach.")],
    meter_address: Annotated[
        str,
        typer.Option(help="Where that meter's node runs (`openami routeb meter --bind`)."),
    ] = "127.0.0.2",
    bind: Annotated[
        str,
        typer.Option(help="The dongle's own loopback address (ports 3610 and 716 there)."),
    ] = "127.0.0.3",
    link: Annotated[
        Path | None, typer.Option(help="Also make this symlink to the pseudo-terminal.")
    ] = None,
    pan_id: Annotated[int, typer.Option(min=0, max=0xFFFF, help="The meter's PAN ID.")] = 0x8888,
    channel: Annotated[int, typer.Option(min=33, max=60, help="The meter's channel.")] = 0x21,
    duration: Annotated[
        float | None,
        typer.Option(min=0.1, help="Stop after this many seconds (default: until interrupted)."),
    ] = None,
) -> None:
    """An emulated Wi-SUN USB dongle for one meter: prints the path of its pseudo-terminal
    (one line), then serves until interrupted. HEMS software opens that path as its serial
    port and joins with SKSTACK-IP commands (SKSETPWD, SKSETRBID, SKSCAN, SKLL64, SKJOIN)
    using the B-route ID and password the utility issued for the meter.

    Example: openami routeb dongle --meter 1 --meter-address 127.0.0.2
    """
    import asyncio

    from openami.hems.dongle import Dongle

    _addresses(meter_address, 1)
    _addresses(bind, 1)

    async def serve() -> None:
        async with Dongle(
            meter_address,
            meter_mac(meter_id),
            pan_id,
            channel,
            bind_ipv4=bind,
            link=str(link) if link is not None else None,
        ) as emulated:
            sys.stdout.write(emulated.slave_path + "\n")
            sys.stdout.flush()
            await emulated.serve(duration)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
