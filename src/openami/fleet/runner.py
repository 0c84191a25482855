"""The simulated fleet on a real network: every meter's datagrams over UDP on loopback.

One socket bound to ``0.0.0.0:4059`` plays every meter: each push leaves with its meter's
own source address (IP_PKTINFO; communication unit ``u`` is ``127.1.0.0 + u``), and a
request the head-end sends to a meter's address arrives on the same socket, which tells whose
address it was, so that meter answers from it. Datagrams go out in simulated time order: at
``speed`` times real time, or (``speed=None``) as fast as the head-end keeps up.

Keeping up: on loopback the head-end's socket is visible in ``/proc/net/udp``; the runner
waits while the head-end's receive queue holds more than ``window_bytes``, so a fleet that
can generate faster than one head-end can ingest does not overflow its buffer. Where the
head-end is not on this host, ``rate`` caps the datagrams per second instead.

As fast as possible, generating and sending overlap: a sender thread sends one interval
while the simulation computes the next (``sendmmsg`` releases the interpreter lock, so the
head-end ingests while the fleet computes, instead of the two taking turns). Requests are
answered by the main thread between intervals, so the fleet's state has one writer.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from openami.fleet.simulator import FleetSimulator, Outgoing, StepReport
from openami.transport.memory import Address
from openami.transport.udp_batch import BatchUdpSocket, ip_to_int

__all__ = ["FleetRunner", "HeadEndQueue", "RunTotals"]

CHUNK = 1024  # datagrams per sendmmsg call
PROC_UDP = Path("/proc/net/udp")


@dataclass
class RunTotals:
    intervals: int = 0
    pushes: int = 0  # left the meters
    sent: int = 0  # crossed the field network and were sent to the head-end
    requests: int = 0  # head-end requests that reached a meter
    answers: int = 0
    waited_s: float = 0.0  # time spent waiting for the head-end to keep up
    headend_drops: int = 0  # datagrams the head-end's socket dropped (loopback only)


class HeadEndQueue:
    """The head-end socket's receive queue and drop count, read from ``/proc/net/udp``."""

    def __init__(self, headend: Address, table: Path = PROC_UDP) -> None:
        ip = ip_to_int(headend[0])
        # /proc/net/udp prints the address as the little-endian hex of the in-memory word
        self._key = f"{int.from_bytes(ip.to_bytes(4, 'big'), 'little'):08X}:{headend[1]:04X}"
        self.table = table
        self._drops0: int | None = None

    def read(self) -> tuple[int, int] | None:
        """(bytes queued, drops since the first read), or None where the head-end's socket
        is not on this host."""
        try:
            text = self.table.read_text()
        except OSError:
            return None
        queued = drops = 0
        found = False
        for line in text.splitlines()[1:]:
            parts = line.split()
            if len(parts) > 12 and parts[1] == self._key:
                found = True
                queued += int(parts[4].split(":")[1], 16)
                drops += int(parts[12])
        if not found:
            return None
        if self._drops0 is None:
            self._drops0 = drops
        return queued, drops - self._drops0


class FleetRunner:
    def __init__(
        self,
        sim: FleetSimulator,
        sock: BatchUdpSocket,
        headend: Address,
        *,
        speed: float | None = None,
        rate: float | None = None,
        window_bytes: int = 256 * 1024,
    ) -> None:
        self.sim = sim
        if sim.server.true_time is None:
            # the head-end across the network keeps the wall clock, not the simulation's:
            # a time it sets is off from true time by the request's age, nothing more
            sim.server.true_time = lambda: datetime.now(UTC)
        self.sock = sock
        self.headend_ip = ip_to_int(headend[0])
        self.headend_port = headend[1]
        self.speed = speed
        self.rate = rate
        self.window_bytes = window_bytes
        self.queue = HeadEndQueue(headend)
        self.totals = RunTotals()
        self._sim0 = sim.fleet.start.timestamp()
        self._wall0 = time.monotonic()
        self._checks = 0
        self._last_sim, self._last_wall = self._sim0, time.monotonic()
        self._in_sender = threading.local()

    def _pause(self, seconds: float) -> None:
        """Wait a little: answering requests meanwhile, except on the sender thread (the
        fleet's state is the main thread's to change)."""
        if getattr(self._in_sender, "yes", False):
            time.sleep(seconds)
        else:
            self.serve(seconds)

    # -- pacing --------------------------------------------------------------------------

    def simulated_now(self) -> float:
        """Simulated time now: paced by ``speed``, or (as fast as possible) the arrival time
        of the last datagram sent plus the real time since it went."""
        if self.speed is not None:
            return self._sim0 + (time.monotonic() - self._wall0) * self.speed
        return self._last_sim + (time.monotonic() - self._last_wall)

    def _wait_until(self, sim_s: float) -> None:
        """Answer requests until simulated time ``sim_s`` is due (``speed``), or until the
        head-end has room (as fast as it keeps up)."""
        if self.speed is not None:
            due = self._wall0 + (sim_s - self._sim0) / self.speed
            while (left := due - time.monotonic()) > 0:
                self.serve(min(left, 0.05))
            return
        if self.rate is not None:
            due = self._wall0 + self.totals.sent / self.rate
            while (left := due - time.monotonic()) > 0:
                self.serve(min(left, 0.05))
        self._checks += 1
        if self._checks % 4:  # the queue moves little within a few chunks
            return
        began = time.monotonic()
        while True:
            state = self.queue.read()
            if state is None:
                break
            queued, drops = state
            self.totals.headend_drops = drops
            if queued <= self.window_bytes:
                break
            self._pause(0.002)
        self.totals.waited_s += time.monotonic() - began

    # -- sending -------------------------------------------------------------------------

    def _send(
        self,
        outgoing: list[Outgoing],
        sources: list[npt.NDArray[np.uint32]] | None = None,
    ) -> None:
        """Send ``outgoing`` in arrival order; ``sources`` are the senders' addresses, taken
        when the interval closed (a unit swapped later must not move earlier pushes)."""
        f = self.sim.fleet
        if sources is None:
            sources = [o.source_ip(f) for o in outgoing]
        kinds: list[tuple[npt.NDArray[np.uint8] | list[bytes], npt.NDArray[np.uint32]]] = []
        times: list[npt.NDArray[np.float64]] = []
        which: list[npt.NDArray[np.int64]] = []
        for o, source in zip(outgoing, sources, strict=True):
            if not len(o):
                continue
            payload = o.rows if o.rows is not None else list(o.datagrams or ())
            kinds.append((payload, source))
            times.append(o.arrive_s)
            which.append(np.full(len(o), len(kinds) - 1, dtype=np.int64))
        if not times:
            return
        arrive = np.concatenate(times)
        kind = np.concatenate(which)
        row = np.concatenate([np.arange(t.size, dtype=np.int64) for t in times])
        order = np.argsort(arrive, kind="stable")
        for lo in range(0, order.size, CHUNK):
            chunk = order[lo : lo + CHUNK]
            self._wait_until(float(arrive[chunk[0]]))
            self._last_sim, self._last_wall = float(arrive[chunk[-1]]), time.monotonic()
            for k in np.unique(kind[chunk]).tolist():
                rows = row[chunk[kind[chunk] == k]]
                payload, sources = kinds[k]
                self._send_some(payload, rows, sources[rows])

    def _send_some(
        self,
        payload: npt.NDArray[np.uint8] | list[bytes],
        rows: npt.NDArray[np.int64],
        sources: npt.NDArray[np.uint32],
    ) -> None:
        done = 0
        while done < rows.size:
            part = rows[done:]
            if isinstance(payload, np.ndarray):
                n = self.sock.send_rows(
                    payload[part], self.headend_ip, self.headend_port, sources[done:]
                )
            else:
                n = self.sock.send_batch(
                    [payload[i] for i in part.tolist()],
                    self.headend_ip,
                    self.headend_port,
                    sources[done:],
                )
            done += n
            if n == 0:
                self._pause(0.001)  # our own send buffer is full: let it drain
        self.totals.sent += int(rows.size)

    # -- answering -----------------------------------------------------------------------

    def serve(self, timeout: float) -> int:
        """Answer the head-end's requests that arrive within ``timeout`` seconds."""
        batch = self.sock.recv_batch(timeout)
        if not len(batch):
            return 0
        f, now_s = self.sim.fleet, self.simulated_now()
        answered = 0
        for payload, dest, ip, port in zip(
            batch.payloads,
            batch.dest_ip.tolist(),
            batch.source_ip.tolist(),
            batch.source_port.tolist(),
            strict=True,
        ):
            meter = f.index_of_ip(dest)
            if meter is None:
                continue  # an address no unit has (any more)
            self.totals.requests += 1
            result = self.sim.request(meter, payload, now_s)
            if result is None:
                continue  # lost on the field network, or the meter refused it
            sent = self.sock.send_batch([result[1]], ip, port, np.array([dest], np.uint32))
            answered += sent
        self.totals.answers += answered
        return answered

    # -- the run -------------------------------------------------------------------------

    def run(
        self,
        intervals: int,
        on_step: Callable[[StepReport, RunTotals], None] | None = None,
        linger_s: float = 0.0,
    ) -> RunTotals:
        """Simulate ``intervals`` intervals, sending as it goes; then keep answering requests
        (a head-end collecting what it missed) until none came for ``linger_s`` seconds."""
        self._wall0 = time.monotonic()
        if self.speed is None and intervals > 1:
            self._run_pipelined(intervals, on_step)
        else:
            for _ in range(intervals):
                outgoing, report = self.sim.step()
                self.totals.intervals += 1
                self.totals.pushes += report.pushes
                self._send(outgoing)
                self.serve(0.0)
                if on_step is not None:
                    on_step(report, self.totals)
        quiet_since = time.monotonic()
        while (left := quiet_since + linger_s - time.monotonic()) > 0:
            before = self.totals.requests
            self.serve(min(left, 0.1))
            if self.totals.requests != before:
                quiet_since = time.monotonic()
        return self.totals

    def _run_pipelined(
        self, intervals: int, on_step: Callable[[StepReport, RunTotals], None] | None
    ) -> None:
        """Compute interval k+1 while a sender thread sends interval k."""
        Item = tuple[list[Outgoing], list[npt.NDArray[np.uint32]], StepReport]
        work: queue.Queue[Item | None] = queue.Queue(maxsize=1)
        failure: list[BaseException] = []
        f = self.sim.fleet

        def sender() -> None:
            self._in_sender.yes = True
            try:
                while (item := work.get()) is not None:
                    outgoing, sources, report = item
                    self._send(outgoing, sources)
                    if on_step is not None:
                        on_step(report, self.totals)
            except BaseException as exc:  # handed to the main thread, raised there
                failure.append(exc)

        thread = threading.Thread(target=sender, name="fleet-sender", daemon=True)
        thread.start()
        try:
            for _ in range(intervals):
                outgoing, report = self.sim.step()
                self.totals.intervals += 1
                self.totals.pushes += report.pushes
                while not failure:
                    try:
                        sources = [o.source_ip(f) for o in outgoing]
                        work.put((outgoing, sources, report), timeout=0.01)
                        break
                    except queue.Full:
                        self.serve(0.0)  # requests keep being answered while we wait
                if failure:
                    break
                self.serve(0.0)
        finally:
            while thread.is_alive():
                try:
                    work.put(None, timeout=0.01)
                    break
                except queue.Full:
                    self.serve(0.0)
            while thread.is_alive():
                thread.join(0.01)
                self.serve(0.0)
        if failure:
            raise failure[0]
