"""Route A's network misbehaving between the meters and the real head-end processes.

Real processes on loopback and the real NATS JetStream server: ``openami headend run`` (a
supervisor and two ingest workers sharing the UDP port) and ``openami mdm run`` (the lake,
and collection requests for what is missing). The meters are this test process: one socket
on ``0.0.0.0:<meter port>`` sends each meter's datagrams from the meter's own address and
answers the head-end's requests as that meter would (``MeterServer``). 240 meters push six
intervals through a network that duplicates every datagram (some copies right behind the
original, the rest after the last interval), shuffles them across and within meters, delays
some past later intervals, corrupts them, and lets an attacker replay captured frames, push
under the meters' system titles with other keys and send clear text. Afterwards the lake
holds exactly the genuine reads, each once, with the values the meters captured, and the
head-end's ``--json`` statistics count every refusal by its reason.

Where each refusal lands (``headend/push_batch.py``, ``headend/ingest.py``,
``headend/keystore.py``):

- *security* (``SecurityError``, or the fast path's ``forged``/``replays`` counts): an
  invocation counter already accepted or more than 64 below the newest (copies, replays,
  a push delayed too long: ``KeyStore.accept``/``accept_many``); a frame that does not
  authenticate under the keys of its system title (other keys; a flipped bit in octets
  10..17 the system title, 19 the security control, 20..23 the counter, 24..79 the
  ciphertext and GCM tag; noise behind a valid header); an unknown system title
  (``KeyStore.by_title``); an APDU that is not general-glo-ciphering (clear text,
  ``Ingest.receive``).
- *decode* (``DecodeError``): a datagram that is not one whole 4-7 wrapper frame
  (truncated, extra octets, a flipped bit in the version or length field: ``decode_wrapper``),
  a wrapper not from the meter's management logical device to the head-end's management
  client (a flipped bit in the wPorts, which the key does not cover), or bytes that are no
  APDU (a flipped bit in the glo tag, the title length or the content length, random
  bytes: ``decode_apdu``).

A corrupted datagram's reason is also derived here from the sans-IO codecs (``_verdict``),
which must agree; none may authenticate.

Each phase is sent, then waited for until both workers took every datagram of it and turned
once more; their live statistics (``state_dir/worker-N.npy``) give the phase's accepted
pushes and refusals by reason, checked phase by phase, and the final ``--json`` statistics
are checked against the sums. Last, a head-end started again on the same state directory is
sent captured frames (from the meters' addresses and others): the counters it kept make
them replays still.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pytest

from openami.bus.contract import Channel, ReadSource
from openami.errors import DecodeError, SecurityError
from openami.fleet.fleet import ADDRESS_BASE, MANUFACTURER, Fleet, IntervalValues
from openami.fleet.meter import MeterServer
from openami.fleet.pushgen import PushEncoder
from openami.fleet.scenario import load_scenario
from openami.headend.keystore import REPLAY_WINDOW
from openami.headend.worker import Stat
from openami.protocols.dlms.apdu import GeneralGloCiphering, decode_apdu
from openami.protocols.dlms.push_layout import CIPHER_AT, COUNTER_AT, TITLE_AT
from openami.protocols.dlms.wrapper import (
    CLIENT_MANAGEMENT_WPORT,
    METER_MANAGEMENT_WPORT,
    WrapperFrame,
    decode_wrapper,
    encode_wrapper,
)
from openami.transport.udp_batch import BatchUdpSocket, ip_to_int
from tests.processes import free_headend_port, nats_stream, openami

pytestmark = [pytest.mark.slow, pytest.mark.nats]

U8 = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]

METERS = 240
INTERVALS = 6
WORKERS = 2
SIZE = 80  # an interval push
CHUNK = 128  # datagrams per send call; each phase is waited for as a whole
SCENARIO = """
[scenario]
name = "faults"
seed = {seed}
start = 2026-08-03T06:00:00+09:00
interval_minutes = 30

[[area]]
name = "ward"
kind = "dense_residential"
meters = {meters}
gas_share = 0.0  # co-metered indexes are pushed, not kept in a profile to collect again
water_share = 0.0
"""
FOREIGN = ip_to_int("127.254.0.1")  # an attacker's addresses: FOREIGN + k

SECURITY, DECODE, AUTHENTIC = "security", "decode", "authentic"


@pytest.fixture
def stream() -> Iterator[str]:
    yield from nats_stream("faults")


def _verdict(datagram: bytes, fleet: Fleet) -> str:
    """What Route A's rules make of a datagram, counters aside: refused for ``decode``,
    refused for ``security``, or ``authentic`` (then only the replay window can refuse it)."""
    try:
        frame = decode_wrapper(datagram)
        if (frame.source_wport, frame.destination_wport) != (
            METER_MANAGEMENT_WPORT,
            CLIENT_MANAGEMENT_WPORT,
        ):
            return DECODE
        apdu = decode_apdu(frame.apdu)
    except DecodeError:
        return DECODE
    if not isinstance(apdu, GeneralGloCiphering):
        return SECURITY  # clear text
    title = apdu.system_title
    meter = int.from_bytes(title[3:], "big") - 1
    if len(title) != 8 or title[:3] != MANUFACTURER or not 0 <= meter < fleet.n:
        return SECURITY  # unknown system title
    try:
        fleet.suite(meter).unprotect(title, apdu.ciphered_content)
    except SecurityError:
        return SECURITY
    except DecodeError:
        return DECODE
    return AUTHENTIC


def _counter(row: U8) -> int:
    return int.from_bytes(row[COUNTER_AT:CIPHER_AT].tobytes(), "big")


Sent = tuple[bytes, int]  # a datagram and the address it leaves from


@dataclass
class Phase:
    """Datagrams sent together, with what the head-end must make of each."""

    name: str
    units: list[list[Sent]] = field(default_factory=list)  # each unit stays back to back
    pushes: int = 0  # genuine and fresh: accepted
    refused: Counter[str] = field(default_factory=Counter)  # reason -> datagrams
    kinds: Counter[str] = field(default_factory=Counter)  # what was sent, by kind

    def add(self, *items: tuple[Sent, str, str | None]) -> None:
        """Datagrams sent back to back: (datagram, kind, None when accepted else the reason
        it is refused for)."""
        self.units.append([d for d, _, _ in items])
        for _, kind, reason in items:
            self.kinds[kind] += 1
            if reason is None:
                self.pushes += 1
            else:
                self.refused[reason] += 1

    def datagrams(self, rng: np.random.Generator) -> list[Sent]:
        """The units in a random order: datagrams reordered across and within meters."""
        return [d for k in rng.permutation(len(self.units)) for d in self.units[int(k)]]


class Meters:
    """Every meter's end of the wire: one socket on ``0.0.0.0:PORT`` sends datagrams from
    each meter's own address and answers requests sent to it as that meter."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.server = MeterServer(fleet)
        self.sock = BatchUdpSocket(("0.0.0.0", 0), pktinfo=True, sndbuf=4 * 1024 * 1024)  # noqa: S104
        self.port = self.sock.address[1]
        self.answers = 0

    def address(self, meters: IntArray) -> npt.NDArray[np.uint32]:
        return (ADDRESS_BASE + self.fleet.comm_unit[meters]).astype(np.uint32)

    def send(self, datagrams: list[Sent], headend: tuple[str, int]) -> None:
        ip = ip_to_int(headend[0])
        for lo in range(0, len(datagrams), CHUNK):
            part = datagrams[lo : lo + CHUNK]
            payloads = [p for p, _ in part]
            sources = np.array([s for _, s in part], dtype=np.uint32)
            done = 0
            while done < len(part):
                n = self.sock.send_batch(payloads[done:], ip, headend[1], sources[done:])
                done += n
                if n == 0:
                    time.sleep(0.001)

    def serve(self, timeout: float) -> None:
        """Answer the head-end's requests (collection) arriving within ``timeout`` s."""
        batch = self.sock.recv_batch(timeout)
        for payload, dest, ip, port in zip(
            batch.payloads,
            batch.dest_ip.tolist(),
            batch.source_ip.tolist(),
            batch.source_port.tolist(),
            strict=True,
        ):
            meter = self.fleet.index_of_ip(dest)
            answer = None if meter is None else self.server.handle_for(meter, payload)
            if answer is not None:
                self.sock.send_batch([answer], ip, port, np.array([dest], np.uint32))
                self.answers += 1

    def close(self) -> None:
        self.sock.close()


class HeadEnd:
    """``openami headend run --json`` in a process group of its own; its workers' live
    statistics read from the state directory."""

    def __init__(self, args: list[str], state: Path, log: Path) -> None:
        self.args, self.state, self.log = args, state, log
        self.process: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []

    def start(self) -> None:
        with self.log.open("ab") as err:
            self.process = subprocess.Popen(
                self.args, stdout=subprocess.PIPE, stderr=err, start_new_session=True
            )
        # every worker turning, since now (files of an earlier run hold older heartbeats)
        since = time.time() * 1000
        deadline = time.monotonic() + 60
        while (stats := self._stats()) is None or stats["heartbeat"] <= since:
            assert self.process.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the head-end's workers did not start"
            time.sleep(0.05)
        self.pids = self._pids()

    def _pids(self) -> list[int]:
        return [int(np.load(self.state / f"worker-{i}.npy")[Stat.PID]) for i in range(WORKERS)]

    def _stats(self) -> dict[str, int] | None:
        """The workers' counters summed (heartbeat: the oldest), None until all started."""
        total: Counter[str] = Counter()
        beats = []
        for i in range(WORKERS):
            try:
                v = np.load(self.state / f"worker-{i}.npy")
            except (OSError, ValueError, EOFError):
                return None
            if v.shape != (len(Stat),):
                return None
            total["datagrams"] += int(v[Stat.DATAGRAMS])
            total["pushes"] += int(v[Stat.PUSHES])
            total[SECURITY] += int(v[Stat.REJECTED_SECURITY])
            total[DECODE] += int(v[Stat.REJECTED_DECODE])
            total["unsolicited"] += int(v[Stat.UNSOLICITED])
            beats.append(int(v[Stat.HEARTBEAT_MS]))
        return {**total, "heartbeat": min(beats)}

    def settled(self, datagrams: int, timeout: float = 30.0) -> dict[str, int]:
        """The workers' counters once they took ``datagrams`` in all and finished a turn
        after that (a worker counts refusals just after the datagrams)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self._stats()
            if stats is not None and stats["datagrams"] >= datagrams:
                break
            assert time.monotonic() < deadline, f"the workers took {stats} of {datagrams}"
            time.sleep(0.01)
        after = time.time() * 1000 + 1
        while (stats := self._stats()) is None or stats["heartbeat"] <= after:
            assert time.monotonic() < deadline, "a worker stopped turning"
            time.sleep(0.01)
        assert self._pids() == self.pids, "an ingest worker died and was started again"
        return stats

    def stop(self) -> dict[str, object]:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, self.log.read_text()[-2000:]
        summary: dict[str, object] = json.loads(out)
        return summary

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.communicate()


@dataclass
class Traffic:
    phases: list[Phase]
    truth: list[IntervalValues]  # what the meters captured, interval by interval
    collect: IntArray  # meters whose interval-2 push came too late: collected again
    captured: list[Sent]  # frames an attacker recorded, replayed to a restarted head-end


def _traffic(fleet: Fleet, impostor: Fleet, home: npt.NDArray[np.uint32], seed: int) -> Traffic:
    rng = np.random.default_rng(seed)
    n = fleet.n
    everyone = np.arange(n, dtype=np.int64)
    order = rng.permutation(n)
    late_mid, late_edge = order[:24], order[24:32]  # delayed inside the window: accepted
    late_out, late_far = order[32:40], order[40:44]  # delayed beyond it: refused
    late = order[:44]
    # between their interval-2 and -3 pushes these meters spent counters the head-end never
    # saw (answers to a hand-held terminal, events lost on the way), so that interval 2,
    # arriving after interval 5, is this old: the window's oldest, one older, far older
    age = {REPLAY_WINDOW: late_edge, REPLAY_WINDOW + 1: late_out, REPLAY_WINDOW + 999: late_far}

    encoder = PushEncoder(fleet)
    truth: list[IntervalValues] = []
    rows: list[U8] = []
    for k in range(INTERVALS):
        truth.append(fleet.advance())
        rows.append(encoder.intervals(truth[-1], everyone))
        if k == 1:
            for a, group in age.items():
                fleet.invocation_counter[group] += a - 3  # intervals 3, 4, 5 come after
    for a, group in [(3, late_mid), *age.items()]:
        assert all(_counter(rows[4][m]) - _counter(rows[1][m]) == a for m in group.tolist())

    def push(k: int, m: int) -> Sent:
        return rows[k][m].tobytes(), int(home[m])

    later: list[tuple[Sent, str, str | None]] = []  # copies the network delivers last

    def genuine(phase: Phase, k: int, m: int, fresh: bool = True) -> None:
        """Meter ``m``'s push of interval ``k``, and its copy: right behind it or much
        later. The copy is refused as a replay."""
        original = (push(k, m), "push" if fresh else "push too old", None if fresh else SECURITY)
        copy = (push(k, m), "copy", SECURITY)
        if rng.random() < 0.5:
            phase.add(original, copy)
        else:
            phase.add(original)
            later.append((push(k, m), "copy much later", SECURITY))

    def corrupted(
        phase: Phase, kind: str, data: bytes, source: int, reason: str | None = None
    ) -> None:
        """A datagram refused for ``reason`` (by Route A's rules when not given)."""
        verdict = _verdict(data, fleet)
        assert verdict != AUTHENTIC, (kind, data.hex())
        assert reason in (None, verdict), (kind, data.hex())
        phase.add(((data, source), kind, verdict))

    def pick(k: int) -> tuple[bytearray, int]:
        m = int(rng.integers(n))
        return bytearray(rows[k][m].tobytes()), int(home[m])

    # 1. every datagram duplicated
    p1 = Phase("interval 1, each push twice")
    for m in range(n):
        genuine(p1, 0, m)

    # 2. reordered, some held back, corrupted datagrams among them
    p2 = Phase("intervals 2 and 3 shuffled, corrupted datagrams among them")
    for m in range(n):
        genuine(p2, 2, m)
        if m not in late:
            genuine(p2, 1, m)
    flips = [*range(SIZE), *rng.integers(0, SIZE, 48).tolist()]  # every octet, then any
    for position in flips:
        raw, source = pick(int(rng.integers(1, 3)))
        raw[position] ^= 1 << int(rng.integers(8))
        # framing (wrapper, glo tag, title length, content length) does not decode; the
        # title, security control, counter, ciphertext and tag do not authenticate
        framing = position < TITLE_AT or position == TITLE_AT + 8
        corrupted(p2, "bit flip", bytes(raw), source, DECODE if framing else SECURITY)
    for length in [0, 1, 7, 8, 9, 18, 19, 23, 24, 67, 68, 79, *rng.integers(0, SIZE, 12)]:
        raw, source = pick(int(rng.integers(1, 3)))
        corrupted(p2, "truncated", bytes(raw[: int(length)]), source, DECODE)
    for extra in [1, 2, 12, SIZE, *rng.integers(1, 64, 12)]:
        raw, source = pick(int(rng.integers(1, 3)))
        corrupted(p2, "extra octets", bytes(raw) + rng.bytes(int(extra)), source, DECODE)
    for j in range(24):
        _, source = pick(1)
        corrupted(p2, "garbage", rng.bytes(SIZE), source if j % 2 else FOREIGN + j)
    for j in range(24):
        # a valid header with a known title and a counter far ahead, then noise: if an
        # unauthenticated counter moved the window, that meter's next pushes would be lost
        raw, source = pick(int(rng.integers(1, 3)))
        raw[COUNTER_AT:CIPHER_AT] = (0xFFFFFF00 + j).to_bytes(4, "big")
        noise = rng.bytes(SIZE - CIPHER_AT)
        corrupted(p2, "forged", bytes(raw[:CIPHER_AT]) + noise, source, SECURITY)

    # 3. an impostor with the meters' system titles but other keys (and counters far
    # ahead), and clear text, ahead of interval 4
    p3 = Phase("wrong keys and clear text")
    impostor.invocation_counter += 1_000_000
    forged = PushEncoder(impostor).intervals(impostor.advance(), everyone)
    for m in range(n):
        corrupted(p3, "wrong keys", forged[m].tobytes(), int(home[m]), SECURITY)
    for m in everyone[::4].tolist():
        # interval 4's push as its plaintext, the data-notification in clear
        title, content = rows[3][m][TITLE_AT : TITLE_AT + 8].tobytes(), rows[3][m][19:].tobytes()
        _, plain = fleet.suite(m).unprotect(title, content)
        frame = WrapperFrame(METER_MANAGEMENT_WPORT, CLIENT_MANAGEMENT_WPORT, plain)
        corrupted(p3, "clear text", encode_wrapper(frame), int(home[m]), SECURITY)
    p4 = Phase("interval 4")
    for m in range(n):
        genuine(p4, 3, m)

    # 4. interval 5, then the delayed interval-2 pushes
    p5 = Phase("interval 5")
    for m in range(n):
        genuine(p5, 4, m)
    p6 = Phase("interval 2 delayed past interval 5")
    for m in late.tolist():
        genuine(p6, 1, m, fresh=m in late_mid or m in late_edge)

    # 5. interval 6, then every copy held back and replays of captured frames
    p7 = Phase("interval 6")
    for m in range(n):
        genuine(p7, 5, m)
    p8 = Phase("copies much later, and replays")
    for item in later:
        p8.add(item)
    for j in range(48):
        k = int(rng.choice([0, 2, 3, 5]))
        data, _ = push(k, int(rng.integers(n)))
        p8.add(((data, FOREIGN + 100 + j), "replay", SECURITY))

    captured = [push(int(rng.integers(INTERVALS)), int(rng.integers(n))) for _ in range(40)]
    captured += [(d, FOREIGN + 200 + j) for j, (d, _) in enumerate(captured[:20])]
    return Traffic(
        [p1, p2, p3, p4, p5, p6, p7, p8],
        truth,
        np.sort(np.concatenate([late_out, late_far])),
        captured,
    )


def test_a_misbehaving_network_leaves_exactly_the_genuine_reads(
    tmp_path: Path, stream: str
) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(SCENARIO.format(seed=23, meters=METERS), encoding="utf-8")
    other = tmp_path / "impostor.toml"
    other.write_text(SCENARIO.format(seed=24, meters=METERS), encoding="utf-8")
    fleet, impostor = Fleet(load_scenario(path)), Fleet(load_scenario(other))
    assert fleet.system_title(7) == impostor.system_title(7)
    assert fleet.suite(7).ek != impostor.suite(7).ek
    meters = Meters(fleet)
    home = meters.address(np.arange(fleet.n, dtype=np.int64))
    traffic = _traffic(fleet, impostor, home, seed=5)
    genuine = METERS * INTERVALS
    collect = traffic.collect
    replayed = len(traffic.captured)

    listen = ("127.0.0.1", free_headend_port())
    bus = f"nats://127.0.0.1:4222/{stream}"
    data = tmp_path / "mdm"
    state = tmp_path / "headend"
    env = os.environ | {"COLUMNS": "120"}
    headend = HeadEnd(
        openami(
            "headend",
            "run",
            "--scenario",
            str(path),
            "--listen",
            f"{listen[0]}:{listen[1]}",
            "--meter-port",
            str(meters.port),
            "--bus",
            bus,
            "--workers",
            str(WORKERS),
            "--state-dir",
            str(state),
            "--json",
        ),
        state,
        tmp_path / "headend.log",
    )
    mdm: subprocess.Popen[bytes] | None = None
    rng = np.random.default_rng(6)
    try:
        with (tmp_path / "mdm.log").open("wb") as mdm_log:
            mdm = subprocess.Popen(
                openami(
                    "mdm",
                    "run",
                    "--scenario",
                    str(path),
                    "--data-dir",
                    str(data),
                    "--bus",
                    bus,
                    "--quiet",
                    "2",
                    "--idle-exit",
                    "2",
                    "--duration",
                    "120",
                    "--json",
                ),
                stdout=subprocess.PIPE,
                stderr=mdm_log,
                env=env,
            )
        headend.start()
        before = headend.settled(0)
        sent = 0
        for phase in traffic.phases:
            datagrams = phase.datagrams(rng)
            meters.send(datagrams, listen)
            sent += len(datagrams)
            after = headend.settled(sent)
            took = {
                "pushes": after["pushes"] - before["pushes"],
                SECURITY: after[SECURITY] - before[SECURITY],
                DECODE: after[DECODE] - before[DECODE],
            }
            expected = {
                "pushes": phase.pushes,
                SECURITY: phase.refused[SECURITY],
                DECODE: phase.refused[DECODE],
            }
            assert took == expected, (phase.name, dict(phase.kinds))
            assert after["unsolicited"] == 0
            before = after
        # the MDMS finds the pushes the window refused missing and asks for them; the
        # meters answer the head-end's requests until the MDMS is satisfied and stops
        deadline = time.monotonic() + 60
        while mdm.poll() is None:
            assert time.monotonic() < deadline, "the MDMS did not finish"
            meters.serve(0.05)
        mdm_out, _ = mdm.communicate(timeout=10)
        assert mdm.returncode == 0, (tmp_path / "mdm.log").read_text()[-2000:]
        first = headend.stop()

        # a head-end started again on the same state: captured frames are still replays
        headend.start()
        meters.send(traffic.captured, listen)
        headend.settled(replayed)
        second = headend.stop()
        assert meters.answers >= collect.size
    finally:
        meters.close()
        if mdm is not None and mdm.poll() is None:
            mdm.kill()
            mdm.communicate()
        headend.kill()

    refused: Counter[str] = Counter()
    for phase in traffic.phases:
        refused += phase.refused
    assert sum(p.pushes for p in traffic.phases) == genuine - collect.size
    # the head-end's own account: every datagram taken, each genuine push accepted once,
    # every refusal counted by its reason; the refused late pushes collected again
    assert first["datagrams"] == sent
    assert first["pushes"] == genuine - collect.size
    rejected = first["rejected"]
    assert isinstance(rejected, dict)
    # a collection request sent again just before its answer arrived is answered twice
    assert set(rejected) - {"unsolicited"} == {SECURITY, DECODE}
    assert {k: rejected[k] for k in (SECURITY, DECODE)} == refused
    assert first["collections_completed"] == collect.size
    assert first["collections_failed"] == 0
    assert first["collected_reads"] == 4 * collect.size
    assert first["reads_acked"] == 4 * genuine
    assert first["worker_restarts"] == 0
    assert second["datagrams"] == replayed
    assert second["pushes"] == 0
    assert second["rejected"] == {SECURITY: replayed}

    stored = json.loads(mdm_out)
    assert stored["reads_stored"] == 4 * genuine
    assert stored["duplicates"] == 0  # the head-end passed on no read twice
    assert stored["dead_letters"] == 0
    assert stored["collections_requested"] == collect.size

    lake = str(data / "lake" / "interval_reads" / "*" / "*" / "*.parquet")
    con = duckdb.connect()
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (meter_id, channel, interval_end)) FROM read_parquet(?)",
        [lake],
    ).fetchone() or (0, 0)
    assert total == distinct == 4 * genuine
    got = con.execute(
        "SELECT meter_id, epoch(interval_end)::BIGINT AS t, channel, value_wh, source "
        "FROM read_parquet(?) ORDER BY meter_id, t, channel",
        [lake],
    ).fetchnumpy()
    # the same order built from what the meters captured
    channels = [
        (Channel.IMPORT_INTERVAL, "import_wh"),
        (Channel.EXPORT_INTERVAL, "export_wh"),
        (Channel.IMPORT_REGISTER, "import_register"),
        (Channel.EXPORT_REGISTER, "export_register"),
    ]
    values = np.stack(
        [np.stack([getattr(v, name) for _, name in channels], axis=1) for v in traffic.truth],
        axis=1,
    )  # (meter, interval, channel)
    ends = np.array([fleet.interval_end(v.number) for v in traffic.truth], dtype=np.int64)
    shape = values.shape
    assert np.array_equal(got["meter_id"], np.repeat(np.arange(1, METERS + 1), shape[1] * 4))
    assert np.array_equal(got["t"], np.tile(np.repeat(ends, 4), METERS))
    assert np.array_equal(got["channel"], np.tile([int(c) for c, _ in channels], genuine))
    assert np.array_equal(got["value_wh"], values.ravel())
    source = np.full(shape, int(ReadSource.PUSH))
    source[collect, 1, :] = int(ReadSource.RECOLLECT)
    assert np.array_equal(got["source"], source.ravel())
