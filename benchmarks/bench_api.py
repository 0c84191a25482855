"""api.reads: interval reads the Route C service serves per second, over real HTTP.

The data: a validated store (``ValidatedStore``, as VEE leaves it) of ``meters`` meters
(default 10,000; ids 1..meters) x ``days`` days (default 31, from 2026-07-01 UTC) x 48
half-hour intervals x 2 channels (import, export): about 30 million reads, all measured,
version 1, no flags; a household's daily shape (morning and evening peaks, Japan time) and
PV export on a share of the homes, with noise. Written one day per ``append`` (a file per
day, as VEE writes it), next to an empty registry and an operator key (read-only role).

The service: ``openami.api`` as ``openami api serve`` runs it (uvicorn, one process), in a
child process on a free loopback port, but with the per-caller rate limit lifted (as the
API's tests do): at the default 20 requests/s the month figure would measure the limiter.
The client: one keep-alive HTTP/1.1 connection (``http.client``) with ``X-API-Key``,
one request at a time; a request's latency runs from sending it to having its whole body.

Timed, each for at most ``repeats`` requests and ``seconds`` s (at least 2, after one
untimed warm-up):

1. a month of one meter: ``GET /api/v1/meters/{id}/interval-reads`` over the whole span
   (``page_size=10000``: JSON, 2 x 48 x days reads a request), a different meter each time;
2. the bulk feed: ``GET /api/v1/interval-reads?meters=1-N&format=parquet`` for one day (the
   middle one) of all the meters (N = ``meters``, at most 10,000: 960,000 reads).

The spans name exactly the stored intervals: the API takes (start, end] over interval ends,
and a day's partition holds the intervals ending 00:00 to 23:30 UTC.

Value: reads/s of the bulk feed. Baseline: the same selections as a direct DuckDB query of
the same validated Parquet files (filter, sort, fetched as an Arrow table), in the same
run, in the benchmark's process (the service idles meanwhile). The month figures (requests
and reads per second, p50/p95 latency, of the API and of DuckDB) and the service's CPU
seconds per request are in ``params``. The API's bulk Parquet must hold the rows and the
``value_wh`` sum of the DuckDB query, and a month's JSON those of DuckDB's, else the run
fails.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import duckdb
import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from openami.api.state import ApiState
from openami.api.store import Role
from openami.bench import Benchmark, BenchResult, result, stop_child
from openami.errors import BenchmarkError
from openami.mdm.registry import Registry
from openami.store.sql import make_engine, sqlite_url
from openami.store.validated import ValidatedStore

FIRST_DAY = date(2026, 7, 1)
SLOTS = 48
STEP_S = 1800
JST_S = 9 * 3600
BULK_MAX = 10_000  # meters per bulk request, the endpoint's limit
MIN_RUNS = 2

# The service as ``openami api serve`` starts it, with the rate limit lifted.
_SERVER = """
import sys
from pathlib import Path
import uvicorn
from openami.api.access import Limits
from openami.api.app import create_app
from openami.api.state import ApiState
limits = Limits(per_second=1e9, burst=10**9, per_day=10**12)
state = ApiState.open(Path(sys.argv[1]), limits=limits)
uvicorn.run(create_app(state), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def _day0(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()


def _build(data_dir: Path, meters: int, days: int, seed: int) -> int:
    """The validated store (one ``append`` a day, rows by channel, meter and interval end,
    as VEE writes them), an empty registry; returns the rows written."""
    store = ValidatedStore(data_dir / "lake")
    rng = np.random.default_rng(seed)
    hours = ((np.arange(SLOTS) * STEP_S + JST_S) % 86_400) / 3600.0  # local time at the end
    shape = (
        0.35
        + 0.55 * np.exp(-(((hours - 7.5) / 1.5) ** 2))
        + 0.9 * np.exp(-(((hours - 19.5) / 2.5) ** 2))
    )
    sun = np.clip(np.sin(np.pi * (hours - 6.0) / 13.0), 0.0, None)
    scale = rng.lognormal(np.log(110.0), 0.35, meters)  # Wh per half hour at shape 1
    pv = np.where(rng.random(meters) < 0.3, rng.uniform(800.0, 1600.0, meters), 0.0)
    n = meters * SLOTS
    base_import = (scale[:, None] * shape[None, :]).ravel()
    base_export = (pv[:, None] * sun[None, :]).ravel()
    meter_col = np.tile(np.repeat(np.arange(1, meters + 1, dtype=np.int64), SLOTS), 2)
    channel_col = np.repeat(np.array([1, 2], dtype=np.int8), n)
    offsets = np.tile(np.arange(SLOTS, dtype=np.int64) * STEP_S, 2 * meters)
    written = 0
    for k in range(days):
        clouds = rng.uniform(0.2, 1.0)
        imported = base_import * rng.lognormal(0.0, 0.25, n)
        exported = base_export * clouds * rng.lognormal(0.0, 0.1, n)
        frame = pl.DataFrame(
            {
                "meter_id": meter_col,
                "channel": channel_col,
                "interval_end": offsets + _day0(FIRST_DAY + timedelta(days=k)),
                "value_wh": np.rint(np.concatenate([imported, exported])).astype(np.int64),
            }
        ).with_columns(
            version=pl.lit(1, pl.Int16),
            flags=pl.lit(0, pl.UInt32),
            origin=pl.lit(1, pl.Int8),  # measured
        )
        written += store.append(frame)
    Registry(make_engine(sqlite_url(data_dir / "registry.db"))).engine.dispose()
    return written


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


class _Server:
    """The service in a child process of its own session, stderr to a file."""

    def __init__(self, data_dir: Path, folder: Path) -> None:
        self.port = _free_port()
        self.err_path = folder / "api.err"
        with self.err_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _SERVER, str(data_dir), str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float) -> float:
        """Seconds until the service answers."""
        began = time.monotonic()
        while True:
            if self.process.poll() is not None:
                raise BenchmarkError(f"the API service exited: {self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5.0)
                try:
                    conn.request("GET", "/docs")
                    if conn.getresponse().status == 200:
                        return time.monotonic() - began
                finally:
                    conn.close()
            except OSError:
                pass
            if time.monotonic() - began > timeout:
                raise BenchmarkError(f"the API service did not answer in {timeout:g} s")
            time.sleep(0.1)

    def tail(self) -> str:
        return self.err_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        stop_child(self.process, 30.0)


class _Client:
    """One keep-alive connection to the service."""

    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300.0)
        self.headers = {"X-API-Key": key, "Accept-Encoding": "identity"}

    def get(self, path: str, query: dict[str, str]) -> bytes:
        self.conn.request("GET", f"{path}?{urlencode(query)}", headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise BenchmarkError(f"GET {path} answered {response.status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self.conn.close()


class _Timing(NamedTuple):
    latencies: list[float]  # s per request
    elapsed_s: float
    cpu_s: float  # the service's CPU seconds over the timed requests (0: not measured)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def per_s(self, reads_per_request: int) -> float:
        return self.requests * reads_per_request / self.elapsed_s

    def pct_ms(self, q: float) -> float:
        return round(1000.0 * float(np.percentile(self.latencies, q)), 2)


def _timed(
    call: Callable[[int], object], repeats: int, seconds: float, pid: int | None = None
) -> _Timing:
    """``call(i)`` for i = 0, 1, ... until ``repeats`` calls or ``seconds`` s (at least
    ``MIN_RUNS``), after one untimed warm-up call (``call(-1)``)."""
    call(-1)
    latencies: list[float] = []
    cpu0 = _cpu_s(pid) if pid else 0.0
    began = time.perf_counter()
    while len(latencies) < max(repeats, MIN_RUNS):
        t = time.perf_counter()
        call(len(latencies))
        latencies.append(time.perf_counter() - t)
        if len(latencies) >= MIN_RUNS and time.perf_counter() - began >= seconds:
            break
    elapsed = time.perf_counter() - began
    return _Timing(latencies, elapsed, (_cpu_s(pid) - cpu0) if pid else 0.0)


_COLUMNS = "meter_id, channel, interval_end, value_wh, flags, origin, version"
_MONTH_SQL = (
    f"SELECT {_COLUMNS} FROM validated WHERE meter_id = $meter "  # noqa: S608
    "AND interval_end > to_timestamp($lo) AND interval_end <= to_timestamp($hi) "
    "ORDER BY channel, interval_end"
)
_BULK_SQL = (
    f"SELECT {_COLUMNS} FROM validated WHERE meter_id BETWEEN $first AND $last "  # noqa: S608
    "AND interval_end > to_timestamp($lo) AND interval_end <= to_timestamp($hi) "
    "ORDER BY meter_id, channel, interval_end"
)


def _duckdb(store: ValidatedStore, days: list[date]) -> duckdb.DuckDBPyConnection:
    """A connection with the view ``validated`` over the store's files of ``days``."""
    files = [f for d in days for f in store.files(d)]
    listing = ", ".join("'" + f.as_posix().replace("'", "''") + "'" for f in files)
    con = duckdb.connect()
    # the listing holds only our own file paths
    con.execute(
        "CREATE VIEW validated AS SELECT * FROM "  # noqa: S608
        f"read_parquet([{listing}], hive_partitioning = false)"
    )
    return con


def _sum(table: pa.Table) -> int:
    total = pc.sum(table.column("value_wh")).as_py()
    return int(total or 0)


def run(params: Mapping[str, str]) -> BenchResult:
    try:
        meters = int(params.get("meters", "10000"))
        days = int(params.get("days", "31"))
        repeats = int(params.get("repeats", "1000"))
        seconds = float(params.get("seconds", "5"))
        seed = int(params.get("seed", "7"))
    except ValueError as exc:
        raise BenchmarkError(f"api.reads parameter: {exc}") from None
    if not (1 <= meters <= 100_000 and 1 <= days <= 400 and repeats >= 1 and seconds >= 0):
        raise BenchmarkError("api.reads: meters 1..100,000, days 1..400, repeats >= 1")
    load_before = os.getloadavg()
    day_list = [FIRST_DAY + timedelta(days=k) for k in range(days)]
    month_lo, month_hi = _day0(day_list[0]) - STEP_S, _day0(day_list[-1]) + 86_400 - STEP_S
    bulk_day = day_list[days // 2]
    bulk_lo, bulk_hi = _day0(bulk_day) - STEP_S, _day0(bulk_day) + 86_400 - STEP_S
    bulk_meters = min(meters, BULK_MAX)
    month_reads = 2 * SLOTS * days
    bulk_reads = 2 * SLOTS * bulk_meters
    order = np.random.default_rng(seed + 1).permutation(meters) + 1

    with tempfile.TemporaryDirectory(prefix="openami-bench-api-") as tmp:
        folder = Path(tmp)
        data_dir = folder / "data"
        began = time.perf_counter()
        rows = _build(data_dir, meters, days, seed)
        build_s = time.perf_counter() - began
        store = ValidatedStore(data_dir / "lake")
        stored = [f for d in day_list for f in store.files(d)]
        stored_bytes = sum(f.stat().st_size for f in stored)
        state = ApiState.open(data_dir)
        try:
            key = state.store.create_key("bench", Role.READ_ONLY)
        finally:
            state.close()

        server = _Server(data_dir, folder)
        try:
            startup_s = server.wait_ready(120.0)
            client = _Client(server.port, key)
            try:
                api_month, month_check, month_bytes = _api_month(
                    client, order, month_lo, month_hi, month_reads, repeats, seconds, server
                )
                api_bulk, bulk_body = _api_bulk(
                    client, bulk_meters, bulk_lo, bulk_hi, repeats, seconds, server
                )
            finally:
                client.close()
            server_peak = _peak_rss_mib(server.process.pid)
        finally:
            server.stop()

        con = _duckdb(store, day_list)
        try:
            duck_month, duck_month_check = _duck_month(
                con, order, month_lo, month_hi, month_reads, repeats, seconds
            )
            duck_bulk, duck_table = _duck_bulk(con, bulk_meters, bulk_lo, bulk_hi, repeats, seconds)
        finally:
            con.close()

    api_table = pq.read_table(io.BytesIO(bulk_body))
    if api_table.num_rows != bulk_reads or duck_table.num_rows != bulk_reads:
        raise BenchmarkError(
            f"api.reads: the bulk day gave {api_table.num_rows} reads over HTTP and "
            f"{duck_table.num_rows} from DuckDB, not {bulk_reads}"
        )
    if _sum(api_table) != _sum(duck_table):
        raise BenchmarkError(
            f"api.reads: the bulk day's value_wh sums differ: API {_sum(api_table)}, "
            f"DuckDB {_sum(duck_table)}"
        )
    if month_check != duck_month_check:
        raise BenchmarkError(
            f"api.reads: a month of meter {order[0]}: API (reads, Wh) {month_check}, "
            f"DuckDB {duck_month_check}"
        )
    return result(
        "api.reads",
        round(api_bulk.per_s(bulk_reads), 1),
        "reads/s (bulk feed, Parquet over HTTP)",
        "duckdb query",
        round(duck_bulk.per_s(bulk_reads), 1),
        meters=meters,
        days=days,
        rows=rows,
        build_s=round(build_s, 2),
        stored_bytes_per_read=round(stored_bytes / rows, 3),
        server_startup_s=round(startup_s, 2),
        server_peak_rss_mib=round(server_peak, 1),
        rate_limit="lifted",
        bulk_day=bulk_day.isoformat(),
        bulk_meters=bulk_meters,
        bulk_reads_per_request=bulk_reads,
        bulk_requests=api_bulk.requests,
        bulk_requests_per_s=round(api_bulk.requests / api_bulk.elapsed_s, 3),
        bulk_p50_ms=api_bulk.pct_ms(50),
        bulk_p95_ms=api_bulk.pct_ms(95),
        bulk_server_cpu_s_per_request=round(api_bulk.cpu_s / api_bulk.requests, 3),
        bulk_response_mib=round(len(bulk_body) / 2**20, 2),
        duckdb_bulk_requests=duck_bulk.requests,
        duckdb_bulk_p50_ms=duck_bulk.pct_ms(50),
        duckdb_bulk_p95_ms=duck_bulk.pct_ms(95),
        month_reads_per_request=month_reads,
        month_requests=api_month.requests,
        month_requests_per_s=round(api_month.requests / api_month.elapsed_s, 2),
        month_reads_per_s=round(api_month.per_s(month_reads), 1),
        month_p50_ms=api_month.pct_ms(50),
        month_p95_ms=api_month.pct_ms(95),
        month_server_cpu_s_per_request=round(api_month.cpu_s / api_month.requests, 4),
        month_response_kib=round(month_bytes / 1024, 1),
        duckdb_month_requests=duck_month.requests,
        duckdb_month_requests_per_s=round(duck_month.requests / duck_month.elapsed_s, 2),
        duckdb_month_reads_per_s=round(duck_month.per_s(month_reads), 1),
        duckdb_month_p50_ms=duck_month.pct_ms(50),
        duckdb_month_p95_ms=duck_month.pct_ms(95),
        month_ratio=round(api_month.per_s(month_reads) / duck_month.per_s(month_reads), 4),
        repeats=repeats,
        seconds=seconds,
        duckdb_threads=_duckdb_threads(),
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
    )


def _duckdb_threads() -> int:
    con = duckdb.connect()
    try:
        row = con.execute("SELECT current_setting('threads')").fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def _api_month(
    client: _Client,
    order: npt.NDArray[np.int64],
    lo: int,
    hi: int,
    reads: int,
    repeats: int,
    seconds: float,
    server: _Server,
) -> tuple[_Timing, tuple[int, int], int]:
    """A month of one meter after the other, JSON; returns the timing, (reads, Wh) of the
    first meter in ``order``, and a response's size."""
    seen: dict[str, Any] = {}

    def month(i: int) -> None:
        meter = int(order[(i + 1) % order.size])  # the warm-up (i = -1) takes order[0]
        body = client.get(
            f"/api/v1/meters/{meter}/interval-reads",
            {"start": _iso(lo), "end": _iso(hi), "page_size": "10000"},
        )
        if i < 0:
            seen["body"] = body
        elif len(body) < 1000:
            raise BenchmarkError(f"api.reads: a month of meter {meter}: {body!r}")

    timing = _timed(month, repeats, seconds, server.process.pid)
    document = json.loads(seen["body"])
    got = document["reads"]
    if document["total"] != reads or len(got) != reads or document["next_page"] is not None:
        raise BenchmarkError(
            f"api.reads: a month of one meter gave {document['total']} reads ({len(got)} on "
            f"the page), not {reads}"
        )
    wh = sum(int(r["value_wh"]) for r in got)
    return timing, (len(got), wh), len(seen["body"])


def _api_bulk(
    client: _Client, meters: int, lo: int, hi: int, repeats: int, seconds: float, server: _Server
) -> tuple[_Timing, bytes]:
    """The day of ``meters`` meters as Parquet; returns the timing and the last body."""
    seen: dict[str, bytes] = {}

    def bulk(_: int) -> None:
        seen["body"] = client.get(
            "/api/v1/interval-reads",
            {"meters": f"1-{meters}", "start": _iso(lo), "end": _iso(hi), "format": "parquet"},
        )

    return _timed(bulk, repeats, seconds, server.process.pid), seen["body"]


def _duck_month(
    con: duckdb.DuckDBPyConnection,
    order: npt.NDArray[np.int64],
    lo: int,
    hi: int,
    reads: int,
    repeats: int,
    seconds: float,
) -> tuple[_Timing, tuple[int, int]]:
    seen: dict[str, pa.Table] = {}

    def month(i: int) -> None:
        meter = int(order[(i + 1) % order.size])
        table = con.sql(_MONTH_SQL, params={"meter": meter, "lo": lo, "hi": hi}).to_arrow_table()
        if i < 0:
            seen["table"] = table
        elif table.num_rows != reads:
            raise BenchmarkError(f"api.reads: DuckDB gave {table.num_rows} reads of {meter}")

    timing = _timed(month, repeats, seconds)
    table = seen["table"]
    return timing, (table.num_rows, _sum(table))


def _duck_bulk(
    con: duckdb.DuckDBPyConnection, meters: int, lo: int, hi: int, repeats: int, seconds: float
) -> tuple[_Timing, pa.Table]:
    seen: dict[str, pa.Table] = {}

    def bulk(_: int) -> None:
        seen["table"] = con.sql(
            _BULK_SQL, params={"first": 1, "last": meters, "lo": lo, "hi": hi}
        ).to_arrow_table()

    return _timed(bulk, repeats, seconds), seen["table"]


BENCHMARKS = [
    Benchmark(
        "api.reads",
        "Route C reads/s over HTTP (a day of 10,000 meters; a month of one meter) vs DuckDB",
        run,
    )
]
