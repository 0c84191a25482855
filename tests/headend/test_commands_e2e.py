"""Commands to meters through the real processes, and a head-end killed in the middle of one.

``openami fleet run`` plays 50 meters on loopback (from an evening on, one 30-minute interval
every two seconds), ``openami headend run`` (a supervisor and two ingest workers, commands in
SQLite under its state directory) carries out the commands that ``openami headend command``
puts on NATS JetStream, and ``openami mdm run`` stores every read in the lake. The tests run
in order against that one system:

1. a disconnect stops one meter's energy in its pushes (its neighbours go on), a reconnect
   brings it back;
2. contract current, interval, time sync and a GET of the import register succeed and report
   the meter's state;
3. the exit codes of ``openami headend command``, and one-line errors for bad input, which
   sends nothing;
4. a command for a meter the head-end does not know fails, one whose deadline passes while
   the head-end is down expires, and one sent while it is down is carried out once it is back;
5. the head-end is killed with SIGKILL while a command is in flight and started again on the
   same state directory: (a) with the request still on its way to the meter (the meter
   carries it out while the head-end is dead, and its answer is lost), (b) as soon as the
   command is in the store, (c) as (a) with a collection of the same meter asked for
   meanwhile; each command succeeds;
6. at the end the fleet is stopped and says what each meter carried out: exactly what the
   commands needed (so no command ran twice, even across the kills); every command has one
   outcome on the bus; and every read in the lake, the time-synced meter's too, is stamped
   on the simulation's intervals.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from openami.bus.commands import SUBJECT_COMMAND_RESULTS, CommandResult, decode_command_message
from openami.bus.contract import (
    SUBJECT_COLLECT,
    Channel,
    CollectRequest,
    ReadSource,
    encode_message,
)
from openami.bus.nats import JetStreamBus
from openami.store.lake import IntervalLake
from tests.processes import free_headend_port, nats_reason, openami

pytestmark = [pytest.mark.slow, pytest.mark.nats]

METERS = 50
STEP_S = 1800
SPEED = 900.0  # one interval every 2 s
INTERVAL_WALL_S = STEP_S / SPEED
INTERVALS = 40  # more than the tests need: the last one stops the fleet (SIGTERM)
LINGER_S = 30.0
START = "2026-08-03T18:00:00+09:00"  # test 1 runs in the evening: no import is zero by PV
SCENARIO = f"""
[scenario]
name = "commands-e2e"
seed = 23
start = {START}
interval_minutes = {STEP_S // 60}
push_spread_s = 60

[[area]]
name = "ward"
kind = "suburban"
meters = {METERS}
media = {{ star = 1.0 }}
gas_share = 0.0
water_share = 0.0
"""
FIRST_END = int(datetime.fromisoformat(START).timestamp()) + STEP_S
LAST_END = FIRST_END + (INTERVALS - 1) * STEP_S
ENV = os.environ | {"COLUMNS": "200"}


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A process whose JSON summary comes on stdout and whose progress goes to ``log``."""
    with log.open("wb") as err:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, env=ENV)


def _wait_for(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    every: float = 0.1,
    explain: Callable[[], str] | None = None,
) -> Any:
    """``check()``'s first true value within ``timeout`` seconds; fails the test if none
    (saying ``explain()``)."""
    until = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > until:
            pytest.fail(f"{what}: not within {timeout:g} s" + (f"; {explain()}" if explain else ""))
        time.sleep(every)


class HeadEnd:
    """``openami headend run`` in a process group of its own, to kill it whole."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                self.args, stdout=out, stderr=out, start_new_session=True, env=ENV
            )
        self.starts += 1
        # ready once it says it listens (the log keeps the lines of every start)
        _wait_for(
            "the head-end to start",
            lambda: self.log.read_text(errors="replace").count("listening on") >= self.starts,
            30.0,
        )

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@dataclass
class Outcome:
    rc: int
    result: dict[str, Any] | None
    err: str
    out: str


@dataclass
class System:
    root: Path
    stream: str
    bus: str
    scenario: Path
    state_dir: Path
    lake: Path
    headend: HeadEnd
    fleet: subprocess.Popen[bytes]
    mdm: subprocess.Popen[bytes]
    # what each meter must have carried out by the end (command and read-back count one each)
    expected: Counter[int] = field(default_factory=Counter)
    synced_at: float | None = None  # the time-synced meter's clock after the sync
    command_ids: set[str] = field(default_factory=set)

    # -- openami headend command -----------------------------------------------------------

    def start_command(self, kind: str, meter: int, *extra: str, wait: float = 40.0) -> Any:
        """``openami headend command`` in the background; ``finish`` collects it."""
        args = openami(
            "headend", "command", kind, "--meter", str(meter), "--bus", self.bus, "--json"
        )
        return subprocess.Popen(
            [*args, "--wait", f"{wait:g}", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )

    def finish(self, process: subprocess.Popen[bytes], timeout: float = 60.0) -> Outcome:
        out, err = process.communicate(timeout=timeout)
        text = out.decode()
        result = json.loads(text) if text.strip() else None
        if result is not None:
            self.command_ids.add(result["command_id"])
        return Outcome(process.returncode, result, err.decode(), text)

    def command(self, kind: str, meter: int, *extra: str, wait: float = 40.0) -> Outcome:
        return self.finish(self.start_command(kind, meter, *extra, wait=wait))

    def run_cli(self, *many: tuple[str, ...]) -> list[Outcome]:
        """``openami headend command ARGS`` exactly as given, for each ARGS, all at once."""
        processes = [
            subprocess.Popen(
                openami("headend", "command", *args, "--bus", self.bus),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=ENV,
            )
            for args in many
        ]
        outcomes = []
        for process in processes:
            out, err = (b.decode() for b in process.communicate(timeout=60))
            self.command_ids.update(re.findall(r"command (cli-[0-9a-f]+) ", err))
            outcomes.append(Outcome(process.returncode, None, err, out))
        return outcomes

    # -- what the processes hold -----------------------------------------------------------

    def command_rows(self, meter: int) -> list[sqlite3.Row]:
        """The head-end's stored commands for ``meter``, oldest first."""
        path = self.state_dir / "commands.db"
        if not path.exists():
            return []
        with contextlib.closing(sqlite3.connect(path, timeout=5.0)) as con:
            con.row_factory = sqlite3.Row
            return list(
                con.execute(
                    "SELECT command_id, state, status, attempts, readback_attempts, published, "
                    "frame IS NOT NULL AS has_frame, readback_frame IS NOT NULL AS reading_back "
                    "FROM commands WHERE meter_id = ? ORDER BY seq",
                    (meter,),
                )
            )

    def reads(self, meters: list[int], channel: Channel) -> dict[int, dict[int, tuple[int, int]]]:
        """Per meter, interval end -> (value, source) of the stored reads of ``channel``."""
        files = IntervalLake(self.lake).files()
        out: dict[int, dict[int, tuple[int, int]]] = {m: {} for m in meters}
        if not files:
            return out
        con = duckdb.connect()
        rows = con.execute(
            "SELECT meter_id, epoch(interval_end)::BIGINT, value_wh, source "
            "FROM read_parquet(?) WHERE channel = ? AND list_contains(?, meter_id)",
            [[str(f) for f in files], int(channel), meters],
        ).fetchall()
        for meter, end, value, source in rows:
            out[int(meter)][int(end)] = (int(value), int(source))
        return out


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    reason = nats_reason()
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("commands_e2e")
    stream = f"cmd_{uuid.uuid4().hex[:10]}"
    bus = f"nats://127.0.0.1:4222/{stream}"
    scenario = root / "commands.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    port = free_headend_port()
    state_dir = root / "headend"
    headend = HeadEnd(
        openami(
            "headend",
            "run",
            "--scenario",
            str(scenario),
            "--listen",
            f"127.0.0.1:{port}",
            "--meter-port",
            str(port),
            "--bus",
            bus,
            "--workers",
            "2",
            "--state-dir",
            str(state_dir),
        ),
        root / "headend.log",
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        mdm = _spawn(
            openami(
                "mdm",
                "run",
                "--scenario",
                str(scenario),
                "--data-dir",
                str(root / "mdm"),
                "--bus",
                bus,
                "--quiet",
                "2.5",  # pushes arrive every 2 s: look for gaps only when they stop
                "--json",
            ),
            root / "mdm.log",
        )
        processes.append(mdm)
        headend.start()
        fleet = _spawn(
            openami(
                "fleet",
                "run",
                "--scenario",
                str(scenario),
                "--days",
                str(INTERVALS / 48),
                "--speed",
                f"{SPEED:g}",
                "--headend",
                f"127.0.0.1:{port}",
                "--bind",
                f"0.0.0.0:{port}",
                "--linger",
                f"{LINGER_S:g}",
                "--json",
            ),
            root / "fleet.log",
        )
        processes.append(fleet)
        yield System(
            root, stream, bus, scenario, state_dir, root / "mdm" / "lake", headend, fleet, mdm
        )
    finally:
        for process in processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGCONT)  # a test may have stopped it
                process.kill()
                process.communicate()
        if headend.process is not None and headend.process.poll() is None:
            headend.kill()
        cleanup = JetStreamBus(stream=stream, prefix=f"{stream}.")
        cleanup.delete_stream()
        cleanup.close()


def _succeeded(outcome: Outcome) -> dict[str, Any]:
    assert outcome.rc == 0, outcome
    assert outcome.result is not None, outcome
    assert outcome.result["status"] == "success", outcome.result
    return outcome.result


# -- 1. disconnect and reconnect ----------------------------------------------------------


def test_disconnect_zeroes_the_meters_energy_and_reconnect_brings_it_back(
    system: System,
) -> None:
    meter, neighbours = 7, [6, 8]
    everyone = [meter, *neighbours]
    # some intervals before, so that there is energy to lose
    _wait_for(
        "the first pushes in the lake",
        lambda: len(system.reads([meter], Channel.IMPORT_INTERVAL)[meter]) >= 2,
        30.0,
        every=0.25,
    )

    off = _succeeded(system.command("disconnect", meter))
    system.expected[meter] += 2  # the action, and the read of the switch afterwards
    off_at = time.monotonic()
    assert off["state"] == 0, off  # control_state: disconnected
    assert off["reason"] == "carried out and read back"
    time.sleep(3 * INTERVAL_WALL_S)
    on = _succeeded(system.command("reconnect", meter))
    system.expected[meter] += 2
    on_at = time.monotonic()
    assert on["state"] == 1, on  # connected

    def settled() -> dict[int, dict[int, tuple[int, int]]] | None:
        reads = system.reads(everyone, Channel.IMPORT_INTERVAL)
        mine = reads[meter]
        zeros = [end for end, (wh, _s) in mine.items() if wh == 0]
        if not zeros:
            return None
        after = [end for end, (wh, _s) in mine.items() if end > max(zeros) and wh > 0]
        ends = set(range(min(mine), max(zeros) + 3 * STEP_S, STEP_S))
        complete = all(ends <= set(reads[m]) for m in everyone)
        return reads if len(after) >= 2 and complete else None

    reads = _wait_for("the intervals after the reconnect in the lake", settled, 30.0, 0.5)
    mine = reads[meter]
    zeros = sorted(end for end, (wh, _s) in mine.items() if wh == 0)
    # one run of intervals without energy, as long as the switch was open
    assert zeros == list(range(zeros[0], zeros[-1] + STEP_S, STEP_S)), zeros
    open_intervals = (on_at - off_at) / INTERVAL_WALL_S
    assert abs(len(zeros) - open_intervals) <= 2, (len(zeros), open_intervals)
    assert any(mine[end][0] > 0 for end in mine if end < zeros[0]), "no energy before"
    assert all(mine[end][0] > 0 for end in mine if end > zeros[-1]), "energy did not come back"
    # the meter said so itself: the zeros came in its pushes
    assert any(mine[end][1] == ReadSource.PUSH for end in zeros), mine
    for other in neighbours:
        for end in zeros:
            assert reads[other][end][0] > 0, (other, end, reads[other][end])


# -- 2. the other kinds -------------------------------------------------------------------


def test_contract_current_interval_time_sync_and_get_report_the_meters_state(
    system: System,
) -> None:
    # four meters at once (the head-end keeps one command in flight per meter, not in all)
    running = [
        system.start_command("set_contract_current", 30, "--amps", "40"),
        system.start_command("set_interval", 31, "--minutes", "15"),
        system.start_command("time_sync", 32),
        system.start_command("get", 33, "--target", "3/1.0.1.8.0.255/2"),
    ]
    limit, interval, synced, got = (_succeeded(system.finish(p)) for p in running)
    system.expected.update({30: 2, 31: 2, 32: 2, 33: 1})  # a GET has no read-back

    assert limit["state"] == 4000, limit  # the limiter's threshold, 0.01 A
    assert interval["state"] == [900, 150], interval  # capture period, push spread (s)

    clock = datetime.fromisoformat(synced["state"]).timestamp()
    system.synced_at = clock
    # the meter's clock is on the simulation's time line, where its reads are stamped
    stored = system.reads([32], Channel.IMPORT_INTERVAL)[32]
    assert stored, "no reads of meter 32 yet"
    assert abs(clock - max(stored)) <= 2 * STEP_S, (synced["state"], max(stored))

    register = got["state"]
    assert isinstance(register, int) and register > 0, got
    assert got["reason"] == "done"
    # what the meter answered is its register at an interval end, which it pushes too
    _wait_for(
        "meter 33's pushed register to match the one it answered",
        lambda: (
            register in {v for v, _s in system.reads([33], Channel.IMPORT_REGISTER)[33].values()}
        ),
        3 * INTERVAL_WALL_S + 10.0,
        every=0.5,
    )


# -- 3. exit codes ------------------------------------------------------------------------


def test_exit_codes_and_one_line_errors_for_bad_input(system: System) -> None:
    (done,) = system.run_cli(("get", "--meter", "34", "--target", "3/1.0.1.8.0.255/2"))
    system.expected[34] += 1
    assert done.rc == 0, done
    assert "success: done (state " in done.err, done.err

    bad = [
        ("bogus", "--meter", "1"),
        ("get", "--meter", "1", "--target", "3/1.0.1.8.0/2"),  # five groups: no OBIS code
        ("get", "--meter", "1", "--target", "x/y"),
        ("get", "--meter", "1", "--target", "3/1.0.1.8.0.255/two"),
        ("get", "--meter", "1"),  # no target
        ("set_contract_current", "--meter", "1"),  # no amps
        ("set_interval", "--meter", "1", "--minutes", "7"),
        ("set", "--meter", "1", "--target", "3/1.0.1.8.0.255/2", "--value", "zz"),
    ]
    for args, outcome in zip(bad, system.run_cli(*bad), strict=True):
        assert outcome.rc == 2, (args, outcome)
        lines = outcome.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, outcome.err)
        assert outcome.out == ""
    assert system.command_rows(1) == []  # none of them was sent


# -- 4. failed and expired ----------------------------------------------------------------


def test_an_unknown_meter_fails_and_a_deadline_passed_while_down_expires(
    system: System,
) -> None:
    unknown = system.command("disconnect", 999)
    assert unknown.rc == 1, unknown
    assert unknown.result is not None
    assert unknown.result["status"] == "failed"
    assert "999" in unknown.result["reason"] and "no keys" in unknown.result["reason"]

    system.headend.kill()
    late = system.start_command("reconnect", 40, "--deadline", "2")
    waiting = system.start_command("set_contract_current", 41, "--amps", "50")
    time.sleep(3.5)  # the first one's deadline passes while the head-end is down
    system.headend.start()
    expired = system.finish(late)
    assert expired.rc == 1, expired
    assert expired.result is not None and expired.result["status"] == "expired", expired
    assert expired.result["reason"] == "the deadline passed before the command could be sent"
    # a command that waited on the bus for the head-end is carried out once it is back
    limit = _succeeded(system.finish(waiting))
    system.expected[41] += 2
    assert limit["state"] == 5000


# -- 5. SIGKILL in the middle of a command ------------------------------------------------


def test_a_headend_killed_mid_command_carries_it_out_once(system: System) -> None:
    # (a) the request is on its way: the meters are frozen, so it waits in their socket; the
    # head-end dies; the meter carries it out while nobody listens for the answer; the new
    # head-end sends the stored frame again and the meter answers the copy without acting
    os.kill(system.fleet.pid, signal.SIGSTOP)
    try:
        frozen = system.start_command("disconnect", 20)
        row = _wait_for(
            "the command to be sent",
            lambda: [r for r in system.command_rows(20) if r["state"] == "sent"],
            15.0,
            every=0.01,
        )[0]
        system.headend.kill()
    finally:
        os.kill(system.fleet.pid, signal.SIGCONT)
    assert row["attempts"] == 1 and not row["reading_back"]
    time.sleep(0.5)  # the meter acts on it and answers a dead socket
    system.headend.start()
    first = _succeeded(system.finish(frozen))
    system.expected[20] += 2
    assert first["state"] == 0
    (after,) = system.command_rows(20)
    assert after["state"] == "done" and after["attempts"] >= 2, dict(after)

    # (b) killed as soon as the command is in the store, wherever it is then
    racing = system.start_command("disconnect", 21)
    seen = _wait_for("the command in the store", lambda: system.command_rows(21), 15.0, 0.001)
    system.headend.kill()
    killed_in = seen[0]["state"]
    system.headend.start()
    second = _succeeded(system.finish(racing))
    system.expected[21] += 2
    assert second["state"] == 0, (killed_in, second)

    # (c) as (a), but the MDMS asks to collect the same meter again meanwhile (as it does
    # after an outage): nothing may reach the meter between the command and its copy, or the
    # meter takes the copy for a replay and the command fails though it was carried out
    os.kill(system.fleet.pid, signal.SIGSTOP)
    try:
        crossing = system.start_command("disconnect", 22)
        _wait_for(
            "the command to be sent",
            lambda: [r for r in system.command_rows(22) if r["state"] == "sent"],
            15.0,
            every=0.01,
        )
        with JetStreamBus(stream=system.stream, prefix=f"{system.stream}.") as bus:
            ask = CollectRequest(22, FIRST_END, FIRST_END + STEP_S, f"e2e-{uuid.uuid4().hex}")
            bus.publish(SUBJECT_COLLECT, encode_message(ask))
            bus.flush()
        time.sleep(0.5)  # the head-end takes the request (and must hold it for now)
        system.headend.kill()
        system.headend.start()
        _wait_for(
            "the stored frame to be sent again",
            lambda: system.command_rows(22)[0]["attempts"] >= 2,
            15.0,
        )
    finally:
        os.kill(system.fleet.pid, signal.SIGCONT)
    third = _succeeded(system.finish(crossing))
    system.expected[22] += 2
    assert third["state"] == 0, third


# -- 6. once, and one outcome, for everything ---------------------------------------------


def test_every_command_ran_once_with_one_outcome(system: System) -> None:
    # the time-synced meter goes on stamping its reads on the simulation's time line
    synced_at = system.synced_at
    assert synced_at is not None, "the time sync did not succeed"

    def pushed_since_sync() -> list[int]:
        ends = system.reads([32], Channel.IMPORT_INTERVAL)[32]
        return [end for end in ends if end > synced_at]

    _wait_for("a push of meter 32 after its time sync", pushed_since_sync, 30.0, every=0.5)
    con = duckdb.connect()
    files = [str(f) for f in IntervalLake(system.lake).files()]
    outside, misaligned = con.execute(
        "SELECT count(*) FILTER (WHERE e < ? OR e > ?), count(*) FILTER (WHERE (e - ?) % ? <> 0) "
        "FROM (SELECT epoch(interval_end)::BIGINT AS e FROM read_parquet(?))",
        [FIRST_END, LAST_END, FIRST_END, STEP_S, files],
    ).fetchone() or (None, None)
    assert (outside, misaligned) == (0, 0), "a read stamped off the simulation's intervals"

    # the fleet says what each meter carried out
    system.fleet.send_signal(signal.SIGTERM)
    fleet_out, _ = system.fleet.communicate(timeout=60)
    assert system.fleet.returncode == 0, (system.root / "fleet.log").read_text()[-2000:]
    totals = json.loads(fleet_out)
    executed = {int(k): v for k, v in totals["executed"].items()}
    assert executed == {m: n for m, n in system.expected.items() if n}, (executed, totals)
    assert totals["repeated"] >= 2, totals  # (a) and (c): copies answered, not carried out

    system.mdm.send_signal(signal.SIGTERM)
    mdm_out, _ = system.mdm.communicate(timeout=60)
    stored = json.loads(mdm_out)
    assert stored["last_interval_end"] <= LAST_END, stored  # no read from a wrong clock
    assert stored["dead_letters"] == 0
    assert system.headend.stop() == 0, system.headend.log.read_text()[-2000:]

    # every command has exactly one outcome on the bus (published again after a kill, the
    # copies are the same result)
    bus = JetStreamBus(stream=system.stream, prefix=f"{system.stream}.")
    try:
        sub = bus.subscribe(SUBJECT_COMMAND_RESULTS, durable="e2e-check")
        results: dict[str, set[CommandResult]] = {}
        copies = Counter[str]()
        while batch := sub.fetch(1_000, timeout=1.0):
            for message in batch:
                message.ack()
                result = decode_command_message(message.data)
                assert isinstance(result, CommandResult)
                results.setdefault(result.command_id, set()).add(result)
                copies[result.command_id] += 1
    finally:
        bus.close()
    assert set(results) == system.command_ids
    assert all(len(outcomes) == 1 for outcomes in results.values()), (results, copies)
