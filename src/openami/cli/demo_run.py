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
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from openami.bus.contract import SUBJECT_COLLECT, SUBJECT_READS, ReadSource, encode_message
from openami.bus.memory import MemoryBus
from openami.errors import ConfigError
from openami.fleet.fleet import Fleet
from openami.fleet.meter import MeterServer
from openami.headend.keystore import KeyStore
from openami.headend.service import HeadEnd
from openami.mdm.gaps import find_gaps, gap_requests, stored_totals
from openami.mdm.ingest import ReadIngest
from openami.mdm.registry import MeterRecord, Registry
from openami.store.lake import IntervalLake
from openami.store.sql import make_engine, sqlite_url
from openami.transport.memory import MemoryNetwork

__all__ = ["DemoParams", "DemoResult", "prepare_data_dir", "run_demo"]

JST = timezone(timedelta(hours=9))
HEADEND_ADDRESS = ("10.255.255.1", 4059)
CHANNELS_PER_ENTRY = 4
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


def run_demo(params: DemoParams, progress: Progress | None = None) -> DemoResult:
    began = time.perf_counter()
    report = progress or (lambda _stage, _done, _total: None)
    prepare_data_dir(params)

    start = datetime(params.start.year, params.start.month, params.start.day, tzinfo=JST)
    per_day = 24 * 60 // params.interval_minutes
    n_intervals = params.days * per_day
    report("building fleet", 0, n_intervals)
    fleet = Fleet(params.meters, start, n_intervals, params.interval_minutes, params.seed)
    meters = MeterServer(fleet)

    network = MemoryNetwork(loss=params.loss, seed=params.seed)
    fleet_port = network.bind(fleet.addresses)
    bus = MemoryBus()
    keys = KeyStore()
    keys.provision_all(fleet.identities())
    headend = HeadEnd(keys, network.bind([HEADEND_ADDRESS]), HEADEND_ADDRESS, bus)

    registry = Registry(make_engine(sqlite_url(params.data_dir / "registry.db")))
    registry.register(
        [
            MeterRecord(
                int(fleet.meter_ids[i]),
                fleet.serial(i),
                fleet.system_title(i),
                fleet.addresses[i][0],
                int(fleet.traits.household_size[i]),
                bool(fleet.traits.all_electric[i]),
                float(fleet.traits.pv_kw[i]),
            )
            for i in range(fleet.n)
        ]
    )
    lake = IntervalLake(params.data_dir / "lake")
    mdm = ReadIngest(lake, bus.subscribe(SUBJECT_READS))
    meter_ids = np.asarray(registry.meter_ids(), dtype=np.int64)
    meter_ids = meter_ids[np.isin(meter_ids, fleet.meter_ids)]
    ends = fleet.profiles.interval_end

    def pump() -> None:
        for datagram in fleet_port.receive_all():
            answer = meters.handle(datagram)
            if answer is not None:
                fleet_port.sendto(answer, datagram.destination, datagram.source)
        headend.poll_network()
        headend.flush()
        mdm.poll()

    requests_sent = 0
    rounds = 0

    def recollect(upto: int) -> None:
        nonlocal requests_sent, rounds
        window = ends[:upto]
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

    addresses = fleet.addresses
    for t in range(n_intervals):
        meters.close_interval()
        for i in range(fleet.n):
            fleet_port.sendto(meters.push(i, t), addresses[i], HEADEND_ADDRESS)
        pump()
        if (t + 1) % per_day == 0 or t + 1 == n_intervals:
            recollect(t + 1)  # the MDMS's daily check for gaps
        report("simulating", t + 1, n_intervals)

    report("checking", n_intervals, n_intervals)
    missing = find_gaps(lake, meter_ids, ends)
    reads_missing = int(missing.sum())
    first_end = int(ends[0]) - fleet.interval_s
    truth_import, truth_export = fleet.energy_delta(n_intervals)
    totals = stored_totals(lake, meter_ids, first_end, int(ends[-1]))
    # 1) the stored intervals add up to each meter's own register change over the run
    truth_ok = (totals.import_sum_wh == truth_import) & (totals.export_sum_wh == truth_export)
    # 2) and to the change between the registers the MDMS itself stored
    inner = stored_totals(lake, meter_ids, int(ends[0]), int(ends[-1]))
    failures = np.union1d(meter_ids[~truth_ok], inner.failures())

    curve = _load_curve(lake, ends)
    pushes = headend.ingest.accepted["push"]
    return DemoResult(
        meters=params.meters,
        days=params.days,
        seed=params.seed,
        loss=params.loss,
        start=start.isoformat(),
        reads_expected=int(meter_ids.size * n_intervals),
        reads_received=int(pushes),
        reads_recollected=mdm.stored[ReadSource.RECOLLECT] // CHANNELS_PER_ENTRY,
        reads_stored=int(meter_ids.size * n_intervals - reads_missing),
        reads_missing=reads_missing,
        reads_new=sum(mdm.stored.values()) // CHANNELS_PER_ENTRY,
        reads_duplicate=mdm.duplicates // CHANNELS_PER_ENTRY,
        energy_import_kwh=round(float(curve["import_wh"].sum()) / 1000.0, 3),
        energy_export_kwh=round(float(curve["export_wh"].sum()) / 1000.0, 3),
        reconciled=bool(failures.size == 0 and reads_missing == 0),
        reconciliation_failures=int(failures.size),
        datagrams_sent=network.stats.sent,
        datagrams_lost=network.stats.lost,
        rejected=dict(headend.ingest.rejected) | {"meter": meters.rejected},
        collection_requests=requests_sent,
        collection_rounds=rounds,
        elapsed_s=round(time.perf_counter() - began, 3),
        data_dir=str(params.data_dir),
        load_curve={k: v.tolist() for k, v in curve.items()},
    )


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
