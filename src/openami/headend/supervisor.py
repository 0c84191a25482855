"""The head-end as a group of processes: ingest workers, and one supervisor that collects.

``HeadEndSupervisor`` starts ``workers`` ingest processes (``worker.run_worker``) that share
the UDP port with SO_REUSEPORT, and starts them again when one dies. It keeps for itself the
part that must be done once: individual collection. Requests from the MDMS arrive on the bus
(``ami.collect``, a durable consumer, so none is lost while the head-end is down); they leave
from the supervisor's own UDP socket, so the meters' answers come back to it and not to a
worker. Collected reads go to the bus like pushed ones, and a request is acknowledged on the
bus only after it finished and its reads were stored by the bus: a head-end killed half-way
through is handed the request again when it comes back.

All processes share the meters' security state (counters, addresses) through memory-mapped
files under ``state_dir``, so the counters the head-end uses towards a meter keep rising
across restarts (the meters would refuse a reused one) and a recorded datagram stays a
replay. Statistics are summed from the workers' stats files.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np

from openami.bus.base import BusMessage
from openami.bus.commands import (
    SUBJECT_COMMAND_RESULTS,
    SUBJECT_COMMANDS,
    CommandRequest,
    decode_command_message,
    encode_command_message,
)
from openami.bus.contract import SUBJECT_COLLECT, CollectRequest, decode_message
from openami.bus.factory import bus_from_url
from openami.errors import DecodeError
from openami.headend.collection import AccessPointPacer, Collector
from openami.headend.command_store import CommandStore
from openami.headend.commands import Commander
from openami.headend.deadlines import DeadlineShares, DeadlineStats
from openami.headend.push_batch import PushBatchIngest
from openami.headend.schedule import CollectionSchedule
from openami.headend.shipment import load_shipment
from openami.headend.tcp import TcpFrames
from openami.headend.udp import (
    BACKOFF_S,
    MAX_ATTEMPTS,
    MAX_BACKOFF_S,
    RETRY_SECONDS,
    UdpSender,
)
from openami.headend.worker import Stat, WorkerConfig, WorkerStats, _publish, run_worker
from openami.log import get_logger
from openami.transport.memory import Address
from openami.transport.udp_batch import BatchUdpSocket

__all__ = ["HeadEndConfig", "HeadEndSupervisor", "SupervisorStats"]

log = get_logger("headend.supervisor")
COLLECT_CONSUMER = "headend-collect"
COMMAND_CONSUMER = "headend-commands"


@dataclass(frozen=True)
class HeadEndConfig:
    listen: Address
    shipment: Path
    state_dir: Path
    bus_url: str
    workers: int = 2
    rcvbuf: int = 4 * 1024 * 1024
    flush_seconds: float = 0.2
    db_url: str | None = None  # commands' store; SQLite under state_dir when None
    step_s: int = 1800  # the meters' interval
    collect_rate_per_ap: float = 10.0  # collection requests a second behind one access point
    collect_every_s: int = 0  # whole-fleet collection every so many seconds of meter time
    tcp: bool = True  # also take pushes over TCP on the listen address


@dataclass
class SupervisorStats:
    """The whole head-end's counters, workers summed; what an operator watches."""

    datagrams: int = 0
    pushes: int = 0
    reads_acked: int = 0
    events_acked: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    worker_restarts: int = 0
    workers_alive: int = 0
    collections_pending: int = 0
    collections_completed: int = 0
    collections_failed: int = 0
    collected_reads: int = 0
    commands_pending: int = 0
    first_interval_end: int | None = None
    last_interval_end: int | None = None


class HeadEndSupervisor:
    def __init__(self, config: HeadEndConfig) -> None:
        if config.workers < 1:
            raise ValueError("a head-end needs at least one ingest worker")
        self.config = config
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess | None] = [None] * config.workers
        self.restarts = 0
        self.keys = load_shipment(config.shipment)
        self.keys.attach_state(config.state_dir / "keys")
        self.bus = bus_from_url(config.bus_url)
        self._collect = self.bus.subscribe(SUBJECT_COLLECT, durable=COLLECT_CONSUMER)
        self._requests: dict[str, BusMessage] = {}
        # requests leave from (and answers come back to) a socket of the supervisor's own
        self.sock = BatchUdpSocket((config.listen[0], 0), rcvbuf=config.rcvbuf, max_batch=256)
        self.ingest = PushBatchIngest(self.keys)
        # meters that push over TCP: the same port number, a stream of wrapper frames
        self.tcp = TcpFrames(config.listen) if config.tcp else None
        pacer = AccessPointPacer(config.collect_rate_per_ap, 2 * config.collect_rate_per_ap)
        self.collector = Collector(
            self.keys,
            UdpSender(self.sock),
            self.sock.address,
            pacer,
            backoff_s=BACKOFF_S,
            max_backoff_s=MAX_BACKOFF_S,
        )
        self.ingest.ingest.on_response = self.collector.on_response
        # commands: stored before they are acknowledged on the bus, carried out at most once
        self.commands = CommandStore.open(config.db_url, data_dir=config.state_dir)
        self.commander = Commander(
            self.commands, self.keys, UdpSender(self.sock), self.sock.address
        )
        self.ingest.ingest.on_answer = lambda meter_id, apdu: self.commander.on_response(
            meter_id, apdu, time.time()
        )
        # one request in flight per meter across both: a collection sent between a command
        # and its copy would make the meter take the copy for a replay
        self.collector.hold = self.commander.busy
        self.commander.hold = self.collector.in_flight
        self._command_inbox = self.bus.subscribe(SUBJECT_COMMANDS, durable=COMMAND_CONSUMER)
        self.schedule = (
            CollectionSchedule(self.keys.meter_id, config.collect_every_s, config.step_s)
            if config.collect_every_s
            else None
        )
        self._own = WorkerStats(config.state_dir / "supervisor.npy", create=True)
        self._deadlines = DeadlineStats(
            config.step_s, path=config.state_dir / "deadlines-supervisor.npy"
        )
        self._last_flush = self._last_retry = time.monotonic()

    def worker_config(self, index: int) -> WorkerConfig:
        c = self.config
        return WorkerConfig(
            index,
            c.listen,
            c.shipment,
            c.state_dir,
            c.bus_url,
            c.rcvbuf,
            flush_seconds=c.flush_seconds,
            step_s=c.step_s,
        )

    def start(self) -> None:
        for index in range(self.config.workers):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        process = self._context.Process(
            target=run_worker, args=(self.worker_config(index),), name=f"ingest-{index}"
        )
        process.daemon = True
        process.start()
        self._workers[index] = process

    def _watch_workers(self) -> None:
        for index, process in enumerate(self._workers):
            if process is not None and not process.is_alive():
                log.warning(
                    "ingest worker died; starting it again",
                    extra={"fields": {"worker": index, "exitcode": process.exitcode}},
                )
                self.restarts += 1
                self._spawn(index)

    def poll(self, timeout: float = 0.1) -> int:
        """One turn: watch the workers, take answers, move collection on. Returns the
        datagrams the supervisor itself took (answers to its requests)."""
        self._watch_workers()
        batch = self.sock.recv_batch(timeout)
        if len(batch):
            self.ingest.receive(
                batch.payloads, batch.source_ip, batch.source_port, self.sock.address
            )
        self._take_requests()
        self._scheduled()
        self._take_commands()
        self.commander.step(time.time())
        now = time.monotonic()
        if now - self._last_retry >= RETRY_SECONDS:
            self._last_retry = now
            self.collector.retry_pending(MAX_ATTEMPTS)
        self.collector.dispatch()
        if now - self._last_flush >= self.config.flush_seconds:
            self.flush()
        return len(batch)

    def _take_requests(self) -> None:
        for message in self._collect.fetch(1_000):
            try:
                request = decode_message(message.data)
            except DecodeError as exc:
                log.warning("refused a collection request", extra={"fields": {"reason": str(exc)}})
                message.ack()  # it can never be carried out; keeping it would block nothing
                continue
            if not isinstance(request, CollectRequest) or request.request_id in self._requests:
                message.ack()
                continue
            self._requests[request.request_id] = message
            self.collector.submit(request)

    def _scheduled(self) -> None:
        """The next slice of the periodic collection, once the collector has room for it
        (its queue is walked on every turn, so it is kept short)."""
        if self.schedule is None or self.collector.pending() > self.schedule.slice_size:
            return
        newest = max(
            (
                WorkerStats(self.config.state_dir / f"worker-{i}.npy")[Stat.LAST_END]
                for i in range(self.config.workers)
            ),
            default=0,
        )
        for request in self.schedule.due(newest or None):
            self.collector.submit(request)

    def _take_commands(self) -> None:
        now = time.time()
        for message in self._command_inbox.fetch(1_000):
            try:
                request = decode_command_message(message.data)
            except DecodeError as exc:
                log.warning("refused a command", extra={"fields": {"reason": str(exc)}})
                message.ack()
                continue
            if isinstance(request, CommandRequest):
                self.commander.submit(request, now)  # in the store before the ack
            message.ack()

    def flush(self) -> None:
        """Collected reads and command results to the bus, stored; then finished requests
        are acknowledged and results marked as published."""
        self._last_flush = time.monotonic()
        results = self.commander.unpublished_results()
        for result in results:
            self.bus.publish(SUBJECT_COMMAND_RESULTS, encode_command_message(result))
        _publish(self.ingest, self.bus, self._own, self._deadlines)
        if results:
            self.bus.flush()
            self.commander.mark_published(r.command_id for r in results)
        active = self.collector.active()
        for request_id in [r for r in self._requests if r not in active]:
            self._requests.pop(request_id).ack()

    def stats(self) -> SupervisorStats:
        s = SupervisorStats(worker_restarts=self.restarts)
        c = self.config
        sources = [WorkerStats(c.state_dir / f"worker-{i}.npy") for i in range(c.workers)]
        for w in [*sources, self._own]:
            s.datagrams += w[Stat.DATAGRAMS]
            s.pushes += w[Stat.PUSHES]
            s.reads_acked += w[Stat.READS_ACKED]
            s.events_acked += w[Stat.EVENTS_ACKED]
            s.rejected["security"] += w[Stat.REJECTED_SECURITY]
            s.rejected["decode"] += w[Stat.REJECTED_DECODE]
            s.rejected["unsolicited"] += w[Stat.UNSOLICITED]
            first, last = w[Stat.FIRST_END], w[Stat.LAST_END]
            if first and (s.first_interval_end is None or first < s.first_interval_end):
                s.first_interval_end = first
            if last and (s.last_interval_end is None or last > s.last_interval_end):
                s.last_interval_end = last
        s.collected_reads = self._own[Stat.READS_ACKED]
        s.workers_alive = sum(1 for p in self._workers if p is not None and p.is_alive())
        s.collections_pending = self.collector.pending()
        s.collections_completed = self.collector.completed
        s.collections_failed = self.collector.failed
        s.commands_pending = self.commander.pending()
        return s

    def deadline_shares(self, expected: int) -> list[DeadlineShares]:
        """Per interval seen, the share of ``expected`` reads stored by each deadline."""
        c = self.config
        tables = [self._deadlines.table]
        for i in range(c.workers):
            path = c.state_dir / f"deadlines-{i}.npy"
            if path.exists():
                tables.append(np.load(path, mmap_mode="r"))
        return DeadlineStats.shares(tables, c.step_s, expected)

    def stop(self, timeout: float = 10.0) -> None:
        """Workers stop (flushing what they hold), then the supervisor flushes and closes."""
        for process in self._workers:
            if process is not None and process.is_alive():
                process.terminate()  # SIGTERM: the worker publishes what it holds first
        deadline = time.monotonic() + timeout
        for process in self._workers:
            if process is not None:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
        self.flush()
        if self.tcp is not None:
            self.tcp.close()
        self.sock.close()
        self.bus.close()
        self.commands.close()
        self.keys.flush_state()


def configured(config: HeadEndConfig, **changes: object) -> HeadEndConfig:
    """``config`` with ``changes`` (for tests and the command line)."""
    return replace(config, **changes)  # type: ignore[arg-type]
