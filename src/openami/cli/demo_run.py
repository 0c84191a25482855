"""The end-to-end demo: fleet -> lossy network -> head-end -> bus -> MDMS -> re-collection.

Everything runs in one process in accelerated time, each part real: meters encode and cipher
DLMS pushes under their own keys, the network loses a share of datagrams, the head-end
verifies and decodes them and publishes reads on the bus, the MDMS stores them idempotently
in the Parquet lake, finds what is missing and has the head-end collect it from the meters
again. At the end the stored data is checked against the meters' own registers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from openami.bus.contract import (
    SUBJECT_COLLECT,
    SUBJECT_EVENTS,
    SUBJECT_READS,
    ReadSource,
    encode_message,
)
from openami.bus.memory import MemoryBus
from openami.cli.demo_mdm import vee_and_bill
from openami.cli.demo_registry import demo_registry
from openami.errors import ConfigError
from openami.fleet.fleet import ADDRESS_BASE, ip_text
from openami.fleet.scenario import Area, AreaKind, Fault, FaultKind, Scenario
from openami.fleet.simulator import FleetSimulator, Outgoing
from openami.headend.deadlines import DeadlineStats
from openami.headend.keystore import KeyStore
from openami.headend.service import HeadEnd
from openami.mdm.alarms import AlarmBook, AlarmKind, registry_customers, restore_from_reads
from openami.mdm.event_ingest import EventIngest
from openami.mdm.gaps import find_gaps, gap_requests, stored_totals
from openami.mdm.ingest import ReadIngest
from openami.protocols.dlms.notification import EventCode
from openami.store.events import EventStore
from openami.store.lake import IntervalLake
from openami.transport.memory import Address, MemoryEndpoint, MemoryNetwork

__all__ = ["DemoParams", "DemoResult", "demo_scenario", "prepare_data_dir", "run_demo"]

JST = timezone(timedelta(hours=9))
HEADEND_ADDRESS = ("10.255.255.1", 4059)
CHANNELS_PER_ENTRY = 4
ENERGY_CHANNELS = (1, 2, 3, 4)  # what one interval entry carries; 5 and 6 are gas and water
MAX_ROUNDS = 40  # re-collection rounds before the demo reports what is still missing
MANIFEST = "demo-run.json"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoParams:
    meters: int = 1000
    days: int = 2
    seed: int = 1
    loss: float = 0.02
    start: date = date(2026, 8, 3)
    data_dir: Path = Path("openami-data")
    interval_minutes: int = 30


@dataclass
class DemoResult:
    meters: int
    days: int
    seed: int
    loss: float
    start: str
    reads_expected: int
    reads_received: int
    reads_recollected: int
    reads_stored: int
    reads_missing: int
    reads_new: int
    reads_duplicate: int
    energy_import_kwh: float
    energy_export_kwh: float
    reconciled: bool
    reconciliation_failures: int
    datagrams_sent: int
    datagrams_lost: int
    rejected: dict[str, int]
    collection_requests: int
    collection_rounds: int
    elapsed_s: float
    data_dir: str
    plot: str = ""
    delivery: dict[str, float] = field(default_factory=dict)  # per area/medium, first tries
    events: dict[str, int] = field(default_factory=dict)
    # outages (meters, customers) and tamper from the events, as the MDMS raised them
    alarms: dict[str, int] = field(default_factory=dict)
    utility_reads: int = 0  # hourly gas + water index pairs from co-metered meters
    # mean share of each interval's reads stored by T+10 min, T+1 h, T+24 h (simulated time)
    deadlines: dict[str, float] = field(default_factory=dict)
    # after VEE: meter-intervals of the run valid (or estimated) and failing; findings by rule
    vee_valid: int = 0
    vee_failed: int = 0
    vee_findings: dict[str, int] = field(default_factory=dict)
    contracts: int = 0  # one per meter, over the run, on the time-of-use plan
    bill_ready: int = 0
    billed_kwh_by_period: dict[str, float] = field(default_factory=dict)
    lake_files: tuple[int, int] = (0, 0)  # the raw lake's files before and after compaction
    load_curve: dict[str, Any] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("load_curve")
        return out


def prepare_data_dir(params: DemoParams) -> None:
    """Check the data dir is writable and holds no run of a different fleet."""
    try:
        params.data_dir.mkdir(parents=True, exist_ok=True)
        probe = params.data_dir / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(
            f"--data-dir {params.data_dir} is not writable: {exc.strerror or exc}"
        ) from None
    identity = {
        "meters": params.meters,
        "days": params.days,
        "seed": params.seed,
        "start": params.start.isoformat(),
        "interval_minutes": params.interval_minutes,
    }
    manifest = params.data_dir / MANIFEST
    if manifest.exists():
        try:
            earlier = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = None
        if earlier != identity:
            raise ConfigError(
                f"--data-dir {params.data_dir} holds a demo of another fleet ({earlier}); "
                "run with the same --meters/--days/--seed or choose another --data-dir"
            )
    else:
        manifest.write_text(json.dumps(identity), encoding="utf-8")


def demo_scenario(params: DemoParams) -> Scenario:
    """The demo's embedded fleet: ``scenarios/demo.toml`` scaled to ``params.meters``.

    Half the meters stand in a dense residential ward on an RF mesh, three tenths in high-rise
    apartments on PLC, a fifth in the mountains on a wireless star over LTE. The faults of the
    file happen at the same times after the start: an outage, a cover opened, communication
    units swapped and an hour of jamming.
    """
    n = params.meters
    counts = [max(1, n * 5 // 10), max(1, n * 3 // 10)]
    counts.append(n - sum(counts))
    start = datetime(params.start.year, params.start.month, params.start.day, tzinfo=JST)
    areas = [
        Area(name="setagaya", kind=AreaKind.DENSE_RESIDENTIAL, meters=counts[0]),
        Area(name="shinjuku-towers", kind=AreaKind.HIGH_RISE, meters=counts[1]),
        Area(name="okutama", kind=AreaKind.MOUNTAINOUS, meters=counts[2], media={"star": 1.0}),
    ]
    areas = [a for a in areas if a.meters > 0]
    names = {a.name for a in areas}
    faults = [
        Fault(FaultKind.OUTAGE, start + timedelta(hours=14), "okutama", 90.0, 0.2),
        Fault(FaultKind.TAMPER_COVER, start + timedelta(hours=22, minutes=10), "setagaya"),
        Fault(FaultKind.COMM_UNIT_SWAP, start + timedelta(hours=34, minutes=5), "setagaya"),
        Fault(
            FaultKind.JAMMING, start + timedelta(hours=27), "setagaya", 60.0, delivery_factor=0.05
        ),
    ]
    return Scenario(
        name="demo",
        start=start,
        area=areas,
        seed=params.seed,
        interval_minutes=params.interval_minutes,
        fault=[f for f in faults if f.area in names],
    )


class _FleetSide:
    """The fleet's end of the in-memory network: every communication unit's address, growing
    when units are swapped (a new unit has a new address)."""

    def __init__(self, sim: FleetSimulator, network: MemoryNetwork) -> None:
        self.sim = sim
        self.network = network
        self.endpoints = [network.bind(sim.fleet.addresses)]
        self.bound_units = sim.fleet.next_comm_unit

    def bind_new_units(self) -> None:
        f = self.sim.fleet
        if f.next_comm_unit > self.bound_units:
            fresh = range(self.bound_units, f.next_comm_unit)
            self.endpoints.append(
                self.network.bind((ip_text(ADDRESS_BASE + u), f.port) for u in fresh)
            )
            self.bound_units = f.next_comm_unit

    def send(self, outgoing: list[Outgoing]) -> None:
        """Everything that reached the head-end's side of the field network, in order of
        arrival."""
        f = self.sim.fleet
        frames: list[tuple[float, int, bytes]] = []
        for o in outgoing:
            payloads = [bytes(r) for r in o.rows] if o.rows is not None else list(o.datagrams or ())
            frames += zip(o.arrive_s.tolist(), o.meter.tolist(), payloads, strict=True)
        frames.sort(key=lambda x: x[0])
        send = self.endpoints[-1].sendto if len(self.endpoints) == 1 else None
        for _, meter, payload in frames:
            source = f.address(meter)
            if send is not None:
                send(payload, source, HEADEND_ADDRESS)
            else:
                self._owner(source).sendto(payload, source, HEADEND_ADDRESS)

    def _owner(self, address: Address) -> MemoryEndpoint:
        for endpoint in reversed(self.endpoints):
            if address in endpoint.addresses:
                return endpoint
        raise LookupError(address)  # every unit's address is bound; this cannot happen

    def answer_requests(self) -> None:
        """Requests from the head-end reach a meter over its field network, and back."""
        f = self.sim.fleet
        for endpoint in self.endpoints:
            for datagram in endpoint.receive_all():
                meter = f.index_of(datagram.destination)
                if meter is None:
                    continue  # an old unit's address: nobody there any more
                answer = self.sim.request(meter, datagram.payload, float(self.sim.now_s))
                if answer is not None:
                    endpoint.sendto(answer[1], datagram.destination, datagram.source)


def run_demo(params: DemoParams, progress: Progress | None = None) -> DemoResult:
    began = time.perf_counter()
    report = progress or (lambda _stage, _done, _total: None)
    prepare_data_dir(params)

    scenario = demo_scenario(params)
    per_day = 24 * 60 // params.interval_minutes
    n_intervals = params.days * per_day
    report("building fleet", 0, n_intervals)
    sim = FleetSimulator(scenario)
    fleet = sim.fleet

    network = MemoryNetwork(loss=params.loss, seed=params.seed)
    fleet_side = _FleetSide(sim, network)
    bus = MemoryBus()
    keys = KeyStore()
    keys.provision_all(fleet.identities())
    headend = HeadEnd(
        keys, network.bind([HEADEND_ADDRESS]), HEADEND_ADDRESS, bus, step_s=fleet.step_s
    )

    registry = demo_registry(params.data_dir, fleet, scenario)
    lake = IntervalLake(params.data_dir / "lake")
    mdm = ReadIngest(lake, bus.subscribe(SUBJECT_READS))
    alarm_book = AlarmBook(registry_customers(registry))
    events = EventIngest(
        EventStore(params.data_dir / "lake"), bus.subscribe(SUBJECT_EVENTS), alarm_book
    )
    meter_ids = np.asarray(registry.meter_ids(), dtype=np.int64)
    meter_ids = meter_ids[np.isin(meter_ids, fleet.meter_ids)]
    first_number = fleet.origin + 1
    step = fleet.step_s

    def pump() -> None:
        fleet_side.answer_requests()
        headend.poll_network()
        # the simulated clock: every push of the last interval is in (they are spread over
        # push_spread_s after its end); re-collection runs at the end of the day
        headend.flush(fleet.interval_end(fleet.now) + scenario.push_spread_s)
        mdm.poll()
        events.poll(10_000)

    requests_sent = 0
    rounds = 0

    def recollect(window: npt.NDArray[np.int64]) -> None:
        nonlocal requests_sent, rounds
        for _ in range(MAX_ROUNDS):
            missing = find_gaps(lake, meter_ids, window)
            if not missing.any():
                return
            rounds += 1
            for request in gap_requests(missing, meter_ids, window):
                bus.publish(SUBJECT_COLLECT, encode_message(request))
                requests_sent += 1
            headend.poll_bus()
            headend.collector.dispatch()
            while headend.collector.pending():
                pump()
                headend.collection_tick()

    for t in range(n_intervals):
        outgoing, _ = sim.step()
        fleet_side.bind_new_units()
        fleet_side.send(outgoing)
        pump()
        if (t + 1) % per_day == 0 or t + 1 == n_intervals:
            # the MDMS's daily check for gaps
            recollect(np.arange(first_number, fleet.now + 1, dtype=np.int64) * step)
        report("simulating", t + 1, n_intervals)

    report("checking", n_intervals, n_intervals)
    ends = np.arange(first_number, fleet.now + 1, dtype=np.int64) * step
    missing = find_gaps(lake, meter_ids, ends)
    reads_missing = int(missing.sum())
    # meters that sent reads after their last gasp have power: closes what lost power-ups
    # left open, as `openami mdm alarms` does
    restore_from_reads(alarm_book, lake)
    first_end = int(ends[0]) - step
    truth_import, truth_export = fleet.energy_delta()
    totals = stored_totals(lake, meter_ids, first_end, int(ends[-1]))
    # 1) the stored intervals add up to each meter's own register change over the run
    truth_ok = (totals.import_sum_wh == truth_import) & (totals.export_sum_wh == truth_export)
    # 2) and to the change between the registers the MDMS itself stored
    inner = stored_totals(lake, meter_ids, int(ends[0]), int(ends[-1]))
    failures = np.union1d(meter_ids[~truth_ok], inner.failures())

    report("validating and billing", n_intervals, n_intervals)
    first_end_at = datetime.fromtimestamp(int(ends[0]), tz=UTC)
    mdm_outcome = vee_and_bill(
        lake, fleet, first_end_at, datetime.fromtimestamp(int(ends[-1]), tz=UTC)
    )
    curve = _load_curve(lake, ends)
    utility_rows = _utility_rows(lake)  # in the lake, from this run and earlier ones
    pushes = headend.ingest.accepted["push"]
    fan_sent = sum(sim.sent_by_group.values())
    fan_lost = fan_sent - sum(sim.delivered_by_group.values())
    return DemoResult(
        meters=params.meters,
        days=params.days,
        seed=params.seed,
        loss=params.loss,
        start=scenario.start.isoformat(),
        reads_expected=int(meter_ids.size * n_intervals),
        reads_received=int(pushes),
        reads_recollected=mdm.stored[ReadSource.RECOLLECT] // CHANNELS_PER_ENTRY,
        reads_stored=int(meter_ids.size * n_intervals - reads_missing),
        reads_missing=reads_missing,
        reads_new=sum(mdm.stored_by_channel[c] for c in ENERGY_CHANNELS) // CHANNELS_PER_ENTRY,
        reads_duplicate=sum(mdm.duplicates_by_channel[c] for c in ENERGY_CHANNELS)
        // CHANNELS_PER_ENTRY,
        energy_import_kwh=round(float(curve["import_wh"].sum()) / 1000.0, 3),
        energy_export_kwh=round(float(curve["export_wh"].sum()) / 1000.0, 3),
        reconciled=bool(failures.size == 0 and reads_missing == 0),
        reconciliation_failures=int(failures.size),
        datagrams_sent=network.stats.sent + fan_lost,
        datagrams_lost=network.stats.lost + fan_lost,
        rejected=dict(headend.ingest.rejected) | {"meter": sim.server.rejected},
        collection_requests=requests_sent,
        collection_rounds=rounds,
        elapsed_s=round(time.perf_counter() - began, 3),
        data_dir=str(params.data_dir),
        delivery={
            f"{area}/{medium}": round(delivered / sent, 4) if sent else 1.0
            for area, medium, sent, delivered in sim.delivery_by_group()
        },
        events=dict(sorted((_event_name(c), n) for c, n in events.by_code.items())),
        alarms=_alarm_summary(alarm_book),
        utility_reads=utility_rows // 2,
        vee_valid=mdm_outcome.valid_intervals,
        vee_failed=mdm_outcome.failed_intervals,
        vee_findings=mdm_outcome.vee_flags,
        contracts=mdm_outcome.contracts,
        bill_ready=mdm_outcome.bill_ready,
        billed_kwh_by_period=mdm_outcome.period_kwh,
        lake_files=(mdm_outcome.lake_files_before, mdm_outcome.lake_files_after),
        deadlines=DeadlineStats.overall(
            DeadlineStats.shares([headend.deadlines.table], step, int(meter_ids.size))
        ),
        load_curve={k: v.tolist() for k, v in curve.items()},
    )


def _utility_rows(lake: IntervalLake) -> int:
    con = lake.connect()
    row = con.execute("SELECT count(*) FROM interval_reads WHERE channel IN (5, 6)").fetchone()
    con.close()
    return int(row[0]) if row else 0


def _alarm_summary(book: AlarmBook) -> dict[str, int]:
    alarms = book.alarms()
    outages = [a for a in alarms if a.kind is AlarmKind.OUTAGE]
    return {
        "outages": len(outages),
        "outages_open": sum(a.is_open for a in outages),
        "outage_meters": sum(a.meters for a in outages),
        "outage_customers": sum(a.customers_total for a in outages),
        "tamper": sum(a.kind is AlarmKind.TAMPER for a in alarms),
    }


def _event_name(code: int) -> str:
    try:
        return EventCode(code).name.lower()
    except ValueError:
        return f"code_{code}"


def _load_curve(lake: IntervalLake, ends: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[Any]]:
    """The fleet's stored import and export per interval of the run."""
    con = lake.connect()
    rows = con.execute(
        "SELECT epoch(interval_end)::BIGINT AS t, "
        "sum(value_wh) FILTER (WHERE channel = 1) AS imp, "
        "sum(value_wh) FILTER (WHERE channel = 2) AS exp "
        "FROM interval_reads WHERE interval_end BETWEEN to_timestamp(?) AND to_timestamp(?) "
        "GROUP BY 1 ORDER BY 1",
        [int(ends[0]), int(ends[-1])],
    ).fetchnumpy()
    con.close()
    imp = np.zeros(ends.size, dtype=np.int64)
    exp = np.zeros(ends.size, dtype=np.int64)
    pos = np.searchsorted(ends, np.asarray(rows["t"], dtype=np.int64))
    imp[pos] = np.nan_to_num(np.asarray(rows["imp"], dtype=np.float64)).astype(np.int64)
    exp[pos] = np.nan_to_num(np.asarray(rows["exp"], dtype=np.float64)).astype(np.int64)
    return {"interval_end": ends.copy(), "import_wh": imp, "export_wh": exp}
