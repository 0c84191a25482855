"""A Commander wired to fleet meters in memory, with a wire that drops, copies and delays.

Nothing here opens a socket: the wire hands each request to ``MeterServer.handle_for`` and
the answer back to ``Commander.on_datagram``. Datagrams queue on the wire until ``deliver``,
so a test decides what happens to each one in between.
"""

from __future__ import annotations

import socket
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from openami.bus.commands import CommandKind, CommandRequest, CommandResult, Target
from openami.fleet.fleet import Fleet
from openami.fleet.meter import MeterServer
from openami.headend.command_store import CommandStore
from openami.headend.commands import Commander
from openami.headend.keystore import KeyStore
from openami.protocols.dlms.axdr import Data
from openami.protocols.dlms.cosem.model import ObjectModel
from openami.protocols.dlms.services import AttributeDescriptor, MethodDescriptor
from openami.store.sql import make_engine
from openami.transport.memory import Address
from tests.conftest import provisioned_keys

JST = timezone(timedelta(hours=9))
START = datetime(2026, 8, 3, tzinfo=JST)
HEADEND: Address = ("127.0.0.1", 4059)
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _postgres_problem() -> str | None:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1.0):
            return None
    except OSError as exc:
        return f"PostgreSQL is not reachable on 127.0.0.1:5432 ({exc})"


class Stores:
    """Opens command stores on one database, as successive head-end processes would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[CommandStore] = []

    def open(self) -> CommandStore:
        store = CommandStore.open(self.url)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


@contextmanager
def stores(backend: str, tmp_path: Path) -> Iterator[Stores]:
    """Command stores on a fresh SQLite file, or in a schema of its own on PostgreSQL (so
    that concurrent test runs never see each other's rows)."""
    if backend == "sqlite":
        factory = Stores(f"sqlite:///{tmp_path / 'commands.db'}")
        try:
            yield factory
        finally:
            factory.close()
        return
    problem = _postgres_problem()
    if problem is not None:
        pytest.skip(problem)
    schema = f"commands_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    factory = Stores(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        yield factory
    finally:
        factory.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@dataclass(frozen=True)
class Executed:
    meter: int
    what: str  # "set" or "action"
    target: AttributeDescriptor | MethodDescriptor
    value: Data | None


class CountingServer(MeterServer):
    """A meter server that logs every SET and ACTION its object models carry out."""

    def __init__(self, fleet: Fleet, **kwargs: Any) -> None:
        super().__init__(fleet, **kwargs)
        self.executed: list[Executed] = []

    def model(self, i: int) -> ObjectModel:
        model = super().model(i)  # writes kept from earlier models are replayed, not logged
        log = self.executed
        original_set, original_action = model.set, model.action

        def set_(d: AttributeDescriptor, value: Data) -> Any:
            log.append(Executed(i, "set", d, value))
            return original_set(d, value)

        def action(m: MethodDescriptor, parameters: Data | None) -> Any:
            log.append(Executed(i, "action", m, parameters))
            return original_action(m, parameters)

        model.set = set_  # type: ignore[method-assign]
        model.action = action  # type: ignore[method-assign]
        return model


class Wire:
    """Requests and answers between a Commander and the meters, held until ``deliver``."""

    def __init__(self, fleet: Fleet, server: MeterServer) -> None:
        self.fleet, self.server = fleet, server
        self.sent: list[bytes] = []  # every request the Commander sent, in order
        self.requests: deque[tuple[Address, bytes]] = deque()
        self.held: list[tuple[Address, bytes]] = []
        self.answers: deque[bytes] = deque()
        self.drop_requests = 0  # drop the next n requests
        self.drop_answers = 0  # drop the next n answers
        self.copy_requests = False  # every request arrives twice
        self.copy_answers = False  # every answer arrives twice
        self.hold_requests = False  # requests wait in ``held`` until ``release``
        self.answer_budget: int | None = None  # when set: answers beyond it are lost

    def sendto(self, payload: bytes, source: Address, destination: Address) -> None:
        self.sent.append(payload)
        if self.drop_requests:
            self.drop_requests -= 1
            return
        queue = self.held if self.hold_requests else self.requests
        queue.append((destination, payload))
        if self.copy_requests:
            queue.append((destination, payload))

    def release(self) -> None:
        self.requests.extend(self.held)
        self.held.clear()

    def inject(self, destination: Address, payload: bytes) -> None:
        """A datagram from the past (a late copy on the network) reaches a meter."""
        self.requests.append((destination, payload))

    def deliver(self, commander: Commander, now: float) -> None:
        while self.requests or self.answers:
            while self.requests:
                destination, payload = self.requests.popleft()
                i = self.fleet.index_of(destination)
                answer = None if i is None else self.server.handle_for(i, payload)
                if answer is None:
                    continue
                if self.drop_answers:
                    self.drop_answers -= 1
                    continue
                if self.answer_budget is not None:
                    if self.answer_budget <= 0:
                        continue
                    self.answer_budget -= 1
                self.answers.append(answer)
                if self.copy_answers:
                    self.answers.append(answer)
            while self.answers:
                commander.on_datagram(self.answers.popleft(), now)


class World:
    """A small fleet, its meters, the wire, and a Commander on a command store."""

    def __init__(self, stores: Stores, meters: int = 4, **options: Any) -> None:
        self.fleet = Fleet.simple(meters, START, seed=11)
        for _ in range(4):
            self.fleet.advance()
        self.server = CountingServer(self.fleet)
        self.wire = Wire(self.fleet, self.server)
        self.stores = stores
        self.options = options
        self.now = float(self.fleet.interval_end(self.fleet.now))
        self.keys: KeyStore = provisioned_keys(self.fleet)
        self.store = stores.open()
        self.commander = Commander(self.store, self.keys, self.wire, HEADEND, **options)
        self.results: list[CommandResult] = []
        self._ids = 0

    def restart(self, keep_keys: bool = False) -> None:
        """The head-end process dies and starts again: a new store connection and a new
        Commander; its key store starts over unless ``keep_keys`` (counters lost)."""
        self.store = self.stores.open()
        if not keep_keys:
            self.keys = provisioned_keys(self.fleet)
        self.commander = Commander(self.store, self.keys, self.wire, HEADEND, **self.options)

    def request(
        self, kind: CommandKind, meter: int = 1, ttl: float = 600.0, **fields: Any
    ) -> CommandRequest:
        self._ids += 1
        return CommandRequest(
            command_id=f"c{self._ids}",
            meter_id=self.fleet.identity(meter).meter_id,
            kind=kind,
            deadline=int(self.now + ttl),
            **fields,
        )

    def submit(self, kind: CommandKind, meter: int = 1, **fields: Any) -> CommandRequest:
        request = self.request(kind, meter, **fields)
        self.commander.submit(request, self.now)
        return request

    def run(self, seconds: float = 0.0) -> list[CommandResult]:
        """Let ``seconds`` pass, then one step of the Commander and of the wire."""
        self.now += seconds
        self.commander.step(self.now)
        self.wire.deliver(self.commander, self.now)
        fresh = self.commander.results()
        self.results += fresh
        return fresh

    def settle(self, limit: int = 40, seconds: float = 5.0) -> None:
        """Run until no command is left open (or ``limit`` steps)."""
        for _ in range(limit):
            self.run(seconds)
            if self.commander.pending() == 0:
                self.results += self.commander.results()
                return

    def result(self, command_id: str) -> CommandResult:
        found = [r for r in self.results if r.command_id == command_id]
        assert len(found) == 1, found
        return found[0]

    def executed(self, what: str, target: AttributeDescriptor | MethodDescriptor) -> int:
        return sum(1 for e in self.server.executed if e.what == what and e.target == target)


def target(class_id: int, obis: str, id_: int) -> Target:
    return Target(class_id=class_id, obis=obis, id=id_)
