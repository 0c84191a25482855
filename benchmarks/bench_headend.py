"""headend.ingest: secured interval reads the head-end ingests per second, end to end.

Value: interval pushes (one meter's read: 4 channel values) per second that the real
head-end (``openami headend run --bus nats://...`` as a subprocess: a supervisor and
``workers`` ingest processes sharing the UDP port) receives over UDP on loopback,
authenticates, decrypts, checks against replay, decodes and has stored by NATS JetStream,
from the first datagram sent until the workers' stats files show the last read acknowledged
(bus-stored). The fleet's pushes are generated and sealed beforehand (not timed) from the
same scenario the head-end takes its key shipment from, and replayed with ``sendmmsg``, each
with its meter's own source address, as fast as the head-end keeps up without loss: the
sender waits while the head-end's receive queues (``/proc/net/udp``) hold more than a
window. ``lost`` = pushes sent - pushes acknowledged - pushes rejected; must be 0.
Baseline: bare AES-GCM-128 decrypt-and-verify per second (``SuiteZero.unprotect``, one
process, one core) of a sample of the very same datagrams, measured in the same run.

Parameters (``-p KEY=VALUE``): ``meters`` (200,000), ``intervals`` (4: every meter pushes
once per interval), ``workers`` (2 ingest processes), ``bus`` (``nats://127.0.0.1:4222``: a
NATS server with JetStream; the benchmark runs on a stream of its own and deletes it
afterwards), ``window_kib`` (receive-queue bytes the sender lets build up; default half a
socket's receive buffer), ``seed``. Besides ``lost`` and the sockets' ``drops``, ``params``
give the CPU seconds of the workers, the sender (with the kernel's loopback delivery, which
runs in the sending process) and nats-server over the run, and the load average before and
after: the sender and the server share the machine's cores with the head-end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import msgspec
import nats
import numpy as np
import numpy.typing as npt

from openami.bench import Benchmark, BenchResult, result, stop_child
from openami.bus.nats import JetStreamBus
from openami.errors import BenchmarkError
from openami.fleet.fleet import Fleet
from openami.fleet.pushgen import PushEncoder
from openami.fleet.scenario import load_scenario
from openami.headend.worker import Stat, WorkerStats
from openami.protocols.dlms.push_layout import CIPHER_AT, TITLE_AT
from openami.transport.udp_batch import BatchUdpSocket, ip_to_int

SCENARIO = """
[scenario]
name = "bench-headend"
seed = {seed}
start = 2026-08-03T00:00:00+09:00
interval_minutes = 30

[[area]]
name = "ward"
kind = "suburban"
meters = {meters}
"""
CHUNK = 1024  # datagrams per sendmmsg
PROC_UDP = Path("/proc/net/udp")
BASELINE_SAMPLE = 100_000
SETTLE_S = 3.0  # the acknowledged count has stopped growing once it stood still this long


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_key(ip: str, port: int) -> str:
    """How ``/proc/net/udp`` prints a local address: little-endian hex of the word, port."""
    word = ip_to_int(ip).to_bytes(4, "big")
    return f"{int.from_bytes(word, 'little'):08X}:{port:04X}"


def _queues(key: str) -> tuple[list[int], int]:
    """Bytes queued on each socket bound to ``key`` (the workers'), and their drops summed."""
    queued: list[int] = []
    drops = 0
    for line in PROC_UDP.read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) > 12 and parts[1] == key:
            queued.append(int(parts[4].split(":")[1], 16))
            drops += int(parts[12])
    return queued, drops


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _nats_server_pid() -> int | None:
    """The local nats-server's pid, to report its CPU share (None if not found)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "nats-server":
                    return int(entry.name)
    return None


def _generate(
    scenario: Path, intervals: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint32], Fleet]:
    """Every meter's interval pushes for ``intervals`` intervals, as they would be sent (one
    interval after the other), and each row's source address."""
    fleet = Fleet(load_scenario(scenario))
    encoder = PushEncoder(fleet)
    everyone = np.arange(fleet.n, dtype=np.int64)
    rows = np.concatenate([encoder.intervals(fleet.advance(), everyone) for _ in range(intervals)])
    ips = fleet.key_shipment()["ip"].astype(np.uint32)
    return rows, np.tile(ips, intervals), fleet


def _raw_decrypts(fleet: Fleet, rows: npt.NDArray[np.uint8]) -> float:
    """SuiteZero.unprotect per second over (a sample of) the same datagrams, one core."""
    sample = rows[:BASELINE_SAMPLE]
    titles = [bytes(r[TITLE_AT : TITLE_AT + 8]) for r in sample]
    contents = [bytes(r[CIPHER_AT - 5 :]) for r in sample]
    index = [int.from_bytes(t[3:], "big") - 1 for t in titles]  # system title: maker, id
    suites = {i: fleet.suite(i) for i in set(index)}
    work = [(suites[i], t, c) for i, t, c in zip(index, titles, contents, strict=True)]
    began = time.perf_counter()
    for suite, title, content in work:
        suite.unprotect(title, content)
    return len(work) / (time.perf_counter() - began)


class _HeadEnd:
    """``openami headend run`` as a subprocess of its own session, output to files."""

    def __init__(self, args: list[str], folder: Path) -> None:
        self.err_path = folder / "headend.err"
        self.out_path = folder / "headend.out"
        with self.err_path.open("wb") as err, self.out_path.open("wb") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=err, start_new_session=True)

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while b"listening on" not in self.err_path.read_bytes():
            if self.process.poll() is not None:
                raise BenchmarkError(f"the head-end exited: {self._tail()}")
            if time.monotonic() > deadline:
                raise BenchmarkError(f"the head-end did not start in {timeout:g} s")
            time.sleep(0.05)

    def stop(self) -> dict[str, object]:
        """SIGTERM, wait, and its final statistics (its ``--json`` line)."""
        if not stop_child(self.process, 60.0):
            raise BenchmarkError("the head-end did not stop on SIGTERM within 60 s")
        lines = self.out_path.read_bytes().strip().splitlines()
        try:
            summary = msgspec.json.decode(lines[-1]) if lines else {}
        except msgspec.DecodeError:
            summary = {}
        return summary if isinstance(summary, dict) else {}

    def _tail(self) -> str:
        return self.err_path.read_text(errors="replace")[-2000:]


@contextlib.contextmanager
def _stream(bus_url: str) -> Iterator[tuple[str, str, str]]:
    """A stream of the benchmark's own on the server of ``bus_url``: (server, stream name,
    the bus URL naming it); deleted afterwards."""
    parts = urlsplit(bus_url)
    if parts.scheme != "nats" or parts.path not in ("", "/"):
        raise BenchmarkError(f"headend.ingest: bus must be nats://HOST[:PORT], not {bus_url!r}")
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        socket.create_connection((host, port), timeout=2.0).close()
    except OSError as exc:
        raise BenchmarkError(
            f"headend.ingest needs NATS with JetStream at {host}:{port} ({exc.strerror}); "
            "start one with: nats-server -js"
        ) from None
    server = f"nats://{host}:{port}"
    name = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        yield server, name, f"{server}/{name}"
    finally:
        with (
            contextlib.suppress(Exception),
            JetStreamBus(server, stream=name, prefix=f"{name}.") as bus,
        ):
            bus.delete_stream()


def _stream_state(server: str, name: str) -> tuple[int, int]:
    """(messages, bytes) the stream holds: what the head-end stored on the bus."""

    async def state() -> tuple[int, int]:
        nc = await nats.connect(server)
        try:
            info = await nc.jetstream().stream_info(name)
            return int(info.state.messages), int(info.state.bytes)
        finally:
            await nc.close()

    return asyncio.run(state())


def _acked(stats: list[WorkerStats]) -> tuple[int, int, int, int]:
    """(pushes acknowledged, pushes accepted, rejected, datagrams) summed over workers."""
    reads = sum(s[Stat.READS_ACKED] for s in stats)
    pushes = sum(s[Stat.PUSHES] for s in stats)
    rejected = sum(
        s[Stat.REJECTED_SECURITY] + s[Stat.REJECTED_DECODE] + s[Stat.UNSOLICITED] for s in stats
    )
    datagrams = sum(s[Stat.DATAGRAMS] for s in stats)
    return reads // 4, pushes, rejected, datagrams


def run(params: Mapping[str, str]) -> BenchResult:
    try:
        meters = int(params.get("meters", "200000"))
        intervals = int(params.get("intervals", "4"))
        workers = int(params.get("workers", "2"))
        bus_url = params.get("bus", "nats://127.0.0.1:4222")
        window = int(params.get("window_kib", "0")) * 1024
        seed = int(params.get("seed", "11"))
    except ValueError as exc:
        raise BenchmarkError(f"headend.ingest parameter: {exc}") from None
    if not (1 <= meters <= 2_000_000 and 1 <= intervals <= 48 and 1 <= workers <= 16):
        raise BenchmarkError("headend.ingest: meters 1..2e6, intervals 1..48, workers 1..16")
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="openami-bench-headend-") as tmp,
        _stream(bus_url) as (server, stream, stream_url),
    ):
        folder = Path(tmp)
        scenario = folder / "bench.toml"
        scenario.write_text(SCENARIO.format(seed=seed, meters=meters), encoding="utf-8")
        began = time.perf_counter()
        rows, sources, fleet = _generate(scenario, intervals)
        generate_s = time.perf_counter() - began
        baseline = max(_raw_decrypts(fleet, rows) for _ in range(2))
        del fleet
        port = _free_udp_port()
        state = folder / "state"
        headend = _HeadEnd(
            [
                str(Path(sys.executable).parent / "openami"),
                "headend",
                "run",
                "--scenario",
                str(scenario),
                "--listen",
                f"127.0.0.1:{port}",
                "--meter-port",
                str(port),
                "--bus",
                stream_url,
                "--workers",
                str(workers),
                "--state-dir",
                str(state),
                "--json",
            ],
            folder,
        )
        try:
            outcome = _drive(headend, state, port, workers, rows, sources, window)
        finally:
            summary = headend.stop()
        stream_messages, stream_bytes = _stream_state(server, stream)
    o = outcome
    lost = o.sent - o.acked - o.rejected
    value = o.acked / o.elapsed_s if o.elapsed_s > 0 else 0.0
    return result(
        "headend.ingest",
        round(value, 1),
        "reads/s",
        "aes_gcm_decrypt",
        round(baseline, 1),
        bus="nats",
        workers=workers,
        meters=meters,
        intervals=intervals,
        sent=o.sent,
        received=o.received,
        acked=o.acked,
        rejected=o.rejected,
        lost=lost,
        drops=o.drops,
        elapsed_s=round(o.elapsed_s, 3),
        send_s=round(o.send_s, 3),
        sender_waited_s=round(o.waited_s, 3),
        sender_cpu_s=round(o.sender_cpu_s, 3),
        worker_cpu_s=round(o.worker_cpu_s, 3),
        worker_cpu_us_per_read=round(1e6 * o.worker_cpu_s / max(o.acked, 1), 2),
        nats_cpu_s=round(o.nats_cpu_s, 3),
        channel_values_acked=summary.get("reads_acked"),  # the head-end's own count, 4 a push
        bus_messages=stream_messages,
        bus_mib=round(stream_bytes / 2**20, 1),
        generate_s=round(generate_s, 2),
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        goal_reads_per_s=100_000,
    )


class _Outcome(NamedTuple):  # not a dataclass: discover() loads this file outside sys.modules
    sent: int  # pushes
    acked: int  # pushes whose reads the bus stored
    rejected: int
    received: int  # datagrams the workers took off their sockets
    drops: int  # datagrams the workers' sockets dropped
    elapsed_s: float  # first datagram sent to last read acknowledged
    send_s: float
    waited_s: float  # the sender waiting for the head-end's queues to drain
    sender_cpu_s: float
    worker_cpu_s: float
    nats_cpu_s: float


def _drive(
    headend: _HeadEnd,
    state: Path,
    port: int,
    workers: int,
    rows: npt.NDArray[np.uint8],
    sources: npt.NDArray[np.uint32],
    window: int,
) -> _Outcome:
    """Wait for every worker to listen, replay ``rows``, wait for the acknowledgements."""
    headend.wait_listening(120.0)
    paths = [state / f"worker-{i}.npy" for i in range(workers)]
    key = _proc_key("127.0.0.1", port)
    deadline = time.monotonic() + 60.0
    while True:  # a worker beats once its socket is bound
        ready = all(p.exists() for p in paths) and all(
            WorkerStats(p)[Stat.HEARTBEAT_MS] for p in paths
        )
        if ready and len(_queues(key)[0]) == workers:
            break
        if headend.process.poll() is not None or time.monotonic() > deadline:
            raise BenchmarkError(f"the head-end's workers did not start: {headend._tail()}")
        time.sleep(0.05)
    stats = [WorkerStats(p) for p in paths]
    pids = [s[Stat.PID] for s in stats]
    nats_pid = _nats_server_pid()
    if not window:
        # half of one socket's receive buffer, over all of them: no queue can overflow
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024 * 1024)
            window = probe.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    _, drops0 = _queues(key)
    headend_ip = ip_to_int("127.0.0.1")
    n = rows.shape[0]
    # the meters' socket: the meter port on every address, as ``openami fleet run`` holds it
    with BatchUdpSocket(
        ("0.0.0.0", port),  # noqa: S104
        reuse_addr=True,
        pktinfo=True,
        sndbuf=4 * 1024 * 1024,
    ) as sock:
        cpu0 = [_cpu_s(p) for p in pids]
        nats0 = _cpu_s(nats_pid) if nats_pid else 0.0
        self0 = resource.getrusage(resource.RUSAGE_SELF)
        waited = 0.0
        began = time.perf_counter()
        for lo in range(0, n, CHUNK):
            queued, _ = _queues(key)
            if queued and max(queued) > window:
                t = time.perf_counter()
                while max(_queues(key)[0] or [0]) > window:
                    time.sleep(0.001)
                waited += time.perf_counter() - t
            hi = min(lo + CHUNK, n)
            done = lo
            while done < hi:
                done += sock.send_rows(rows[done:hi], headend_ip, port, sources[done:hi])
        send_s = time.perf_counter() - began
        self1 = resource.getrusage(resource.RUSAGE_SELF)
    # until the acknowledged count reaches the sent one, or stands still
    last, last_at = _acked(stats)[0], time.perf_counter()
    while True:
        acked, _, rejected, _ = _acked(stats)
        now = time.perf_counter()
        if acked != last:
            last, last_at = acked, now
        if acked + rejected >= n or now - last_at > SETTLE_S:
            break
        time.sleep(0.002)
    end = last_at
    acked, _accepted, rejected, datagrams = _acked(stats)
    _, drops = _queues(key)
    return _Outcome(
        sent=n,
        acked=acked,
        rejected=rejected,
        received=datagrams,
        drops=drops - drops0,
        elapsed_s=end - began,
        send_s=send_s,
        waited_s=waited,
        sender_cpu_s=(self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime),
        worker_cpu_s=sum(_cpu_s(p) - c for p, c in zip(pids, cpu0, strict=True)),
        nats_cpu_s=(_cpu_s(nats_pid) - nats0) if nats_pid else 0.0,
    )


BENCHMARKS = [
    Benchmark(
        "headend.ingest",
        "secured reads/s through the head-end over UDP + NATS vs raw AES-GCM decrypts/s",
        run,
    )
]
