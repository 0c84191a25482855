"""One ingest worker: a process that takes its share of the meters' pushes off UDP port 4059.

Several workers bind the same address with SO_REUSEPORT; the kernel spreads datagrams among
them by a hash of the source address, so each meter's pushes keep reaching the same worker
and every core ingests. A worker:

1. receives up to 1,024 datagrams per system call (``recvmmsg``);
2. takes them apart in batches (``PushBatchIngest``: look-up, authentication, decryption,
   replay window, decoding), with the meters' counters in the shared, memory-mapped state;
3. publishes reads (split by meter shard, ``ami.reads.<shard>``) and events on the bus, many
   reads per message, and counts them as acknowledged only once ``flush`` returns: the bus
   has them durably.

What a worker held but had not flushed when it died is lost to it; the MDMS finds the gap
and asks for it again (individual collection), which is why nothing acknowledged is lost and
nothing lost stays lost. Counters live in ``WorkerStats`` (a small memory-mapped array per
worker) so the supervisor can show them without talking to the worker.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from types import FrameType

import numpy as np
import numpy.typing as npt

from openami.bus.base import Bus
from openami.bus.contract import (
    SUBJECT_EVENTS,
    EventBatch,
    encode_message,
    reads_subject,
)
from openami.bus.factory import bus_from_url
from openami.headend.deadlines import DeadlineStats, mapped_zeros
from openami.headend.push_batch import PushBatchIngest, split_by_shard
from openami.headend.shipment import load_shipment
from openami.log import get_logger
from openami.transport.memory import Address
from openami.transport.udp_batch import BatchUdpSocket

__all__ = ["Stat", "WorkerConfig", "WorkerStats", "run_worker", "split_by_shard"]

log = get_logger("headend.worker")
PR_SET_PDEATHSIG = 1


class Stat(IntEnum):
    """The counters of one worker, in its stats file."""

    DATAGRAMS = 0
    PUSHES = 1
    READS_ACKED = 2  # on the bus, durably
    EVENTS_ACKED = 3
    REJECTED_SECURITY = 4
    REJECTED_DECODE = 5
    UNSOLICITED = 6
    ADDRESS_CHANGED = 7
    BUS_MESSAGES = 8
    HEARTBEAT_MS = 9  # wall clock of the worker's last turn, ms since the epoch
    PID = 10
    FIRST_END = 11  # earliest and latest interval end acknowledged
    LAST_END = 12


class WorkerStats:
    """A worker's counters, memory-mapped so another process can read them at any time."""

    SIZE = len(Stat)

    def __init__(self, path: Path, create: bool = False) -> None:
        """``create`` (the worker itself): a fresh file of zeros, mapped for writing.
        Otherwise (a reader such as the supervisor) the file as it is, read-only, or zeros
        when the worker has not written it yet; a reader never creates it, so it cannot
        replace the file a worker has just mapped."""
        self.values: npt.NDArray[np.int64]
        if create:
            self.values = mapped_zeros(path, (self.SIZE,), keep=False)
        elif path.exists():
            self.values = np.load(path, mmap_mode="r")
        else:
            self.values = np.zeros(self.SIZE, dtype=np.int64)

    def __getitem__(self, stat: Stat) -> int:
        return int(self.values[stat])

    def add(self, stat: Stat, amount: int) -> None:
        self.values[stat] += amount

    def set(self, stat: Stat, value: int) -> None:
        self.values[stat] = value


@dataclass(frozen=True)
class WorkerConfig:
    index: int
    listen: Address
    shipment: Path
    state_dir: Path
    bus_url: str
    rcvbuf: int = 4 * 1024 * 1024
    flush_reads: int = 40_000  # reads per flush at most
    flush_seconds: float = 0.2  # and at least this often while reads wait
    step_s: int = 1800  # the meters' interval, for the deadline statistics

    @property
    def stats_path(self) -> Path:
        return self.state_dir / f"worker-{self.index}.npy"

    @property
    def deadlines_path(self) -> Path:
        return self.state_dir / f"deadlines-{self.index}.npy"


def _die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux), so a supervisor
    killed with SIGKILL leaves no worker holding a share of the port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parent-pid check in the loop remains
        pass


def run_worker(config: WorkerConfig) -> None:
    """The worker's whole life: load keys and state, then ingest until SIGTERM."""
    _die_with_parent()
    parent = os.getppid()
    stopping = False

    def stop(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    keys = load_shipment(config.shipment)
    keys.attach_state(config.state_dir / "keys")
    stats = WorkerStats(config.stats_path, create=True)
    stats.set(Stat.PID, os.getpid())
    deadlines = DeadlineStats(config.step_s, path=config.deadlines_path)
    ingest = PushBatchIngest(keys)
    bus = bus_from_url(config.bus_url)
    # SO_REUSEADDR too: the fleet simulator may hold 0.0.0.0 on the same port for its meters
    sock = BatchUdpSocket(
        config.listen, reuse_addr=True, reuse_port=True, rcvbuf=config.rcvbuf, max_batch=1024
    )
    last_flush = time.monotonic()
    try:
        while not stopping and os.getppid() == parent:
            batch = sock.recv_batch(0.05)
            if len(batch):
                ingest.receive(batch.payloads, batch.source_ip, batch.source_port, sock.address)
                stats.add(Stat.DATAGRAMS, len(batch))
                _count(ingest, stats)
            now = time.monotonic()
            if len(ingest) >= config.flush_reads or (
                now - last_flush >= config.flush_seconds
                and (len(ingest) or len(ingest.ingest.events))
            ):
                _publish(ingest, bus, stats, deadlines)
                last_flush = now
            stats.set(Stat.HEARTBEAT_MS, int(time.time() * 1000))
        _publish(ingest, bus, stats, deadlines)
    finally:
        sock.close()
        bus.close()


def _publish(
    ingest: PushBatchIngest,
    bus: Bus,
    stats: WorkerStats,
    deadlines: DeadlineStats | None = None,
) -> None:
    """Reads and events to the bus; counted as acknowledged (and against their interval's
    deadlines) once the bus stored them."""
    reads = ingest.take_by_shard()
    events = ingest.ingest.events.take() if len(ingest.ingest.events) else None
    messages = 0
    if reads is not None:
        for shard, part in reads.batches.items():
            bus.publish(reads_subject(shard), encode_message(part))
            messages += 1
    if events is not None:
        bus.publish(SUBJECT_EVENTS, encode_message(events))
        messages += 1
    if not messages:
        return
    bus.flush()
    s = stats
    if reads is not None and deadlines is not None:
        deadlines.record(reads.import_ends, time.time())
    if reads is not None:
        s.add(Stat.READS_ACKED, reads.reads)
        if s[Stat.FIRST_END] == 0 or reads.first_end < s[Stat.FIRST_END]:
            s.set(Stat.FIRST_END, reads.first_end)
        s.set(Stat.LAST_END, max(reads.last_end, s[Stat.LAST_END]))
    if isinstance(events, EventBatch):
        s.add(Stat.EVENTS_ACKED, len(events.meter_id))
    s.add(Stat.BUS_MESSAGES, messages)


def _count(ingest: PushBatchIngest, s: WorkerStats) -> None:
    accepted, rejected = ingest.accepted, ingest.rejected
    s.set(Stat.PUSHES, accepted.get("push", 0) + accepted.get("utility", 0))
    s.set(Stat.ADDRESS_CHANGED, accepted.get("address_changed", 0))
    s.set(Stat.REJECTED_SECURITY, rejected.get("security", 0))
    s.set(Stat.REJECTED_DECODE, rejected.get("decode", 0))
    s.set(Stat.UNSOLICITED, rejected.get("unsolicited", 0))
