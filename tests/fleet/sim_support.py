"""A small simulated world for the simulator and fault tests: two areas on an RF mesh whose
hops never fail on their own (so whatever is lost, a fault or a jammer lost it), and a
head-end ingest that reads everything that arrives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from openami.bus.contract import CollectRequest
from openami.fleet.fleet import DLMS_PORT, ip_text
from openami.fleet.scenario import Area, AreaKind, Fault, Scenario
from openami.fleet.simulator import FleetSimulator, Outgoing, StepReport
from openami.headend.collection import Collector
from openami.headend.ingest import Ingest
from openami.headend.keystore import KeyStore
from openami.transport.memory import Address, Datagram

__all__ = ["HES", "JST", "START", "Arrival", "Outbox", "World", "arrivals", "minutes", "scenario"]

JST = timezone(timedelta(hours=9))
START = datetime(2026, 8, 3, tzinfo=JST)  # a Monday, on the hour
HES = ("10.255.255.1", 4059)
PERFECT_MESH = {"rf_mesh": {"hop_delivery": 1.0}}


def scenario(*faults: Fault, seed: int = 3, push_spread_s: float = 600.0) -> Scenario:
    """``town`` (120 meters) and ``hills`` (60 meters, half of them with PV)."""
    return Scenario(
        name="test",
        start=START,
        seed=seed,
        push_spread_s=push_spread_s,
        area=[
            Area(
                name="town",
                kind=AreaKind.DENSE_RESIDENTIAL,
                meters=120,
                media={"rf_mesh": 1.0},
                network=PERFECT_MESH,
            ),
            Area(
                name="hills",
                kind=AreaKind.SUBURBAN,
                meters=60,
                media={"rf_mesh": 1.0},
                network=PERFECT_MESH,
                pv_share=0.5,
            ),
        ],
        fault=list(faults),
    )


@dataclass(frozen=True)
class Arrival:
    """One datagram that reached the head-end."""

    kind: str  # "interval", "utility" or "event"
    meter: int  # fleet index
    arrive_s: float
    payload: bytes
    source: Address


def arrivals(sim: FleetSimulator, out: list[Outgoing]) -> Iterator[Arrival]:
    """What ``step()`` returned, datagram by datagram, in the order it was produced."""
    for o in out:
        ips = o.source_ip(sim.fleet).tolist()
        meters, times = o.meter.tolist(), o.arrive_s.tolist()
        if o.datagrams is not None:
            payloads, kind = o.datagrams, "event"
        else:
            assert o.rows is not None
            kind = "interval" if o.rows.shape[1] == 80 else "utility"
            payloads = [bytes(row) for row in o.rows]
        for m, t, p, ip in zip(meters, times, payloads, ips, strict=True):
            yield Arrival(kind, m, t, p, (ip_text(ip), DLMS_PORT))


class Outbox:
    """Where the head-end's requests go: kept for the test to carry to the simulator."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Address]] = []

    def sendto(self, payload: bytes, source: Address, destination: Address) -> None:
        self.sent.append((payload, destination))


@dataclass
class World:
    """A simulator and a head-end (ingest and collector) reading all it delivers."""

    sim: FleetSimulator
    keys: KeyStore = field(default_factory=KeyStore)
    steps: list[tuple[StepReport, list[Arrival]]] = field(default_factory=list)
    outbox: Outbox = field(default_factory=Outbox)

    def __post_init__(self) -> None:
        self.keys.provision_all(self.sim.fleet.identities())
        self.ingest = Ingest(self.keys)
        self.collector = Collector(self.keys, self.outbox, HES)
        self.ingest.on_response = self.collector.on_response

    @classmethod
    def of(cls, *faults: Fault, seed: int = 3, push_spread_s: float = 600.0) -> World:
        return cls(FleetSimulator(scenario(*faults, seed=seed, push_spread_s=push_spread_s)))

    def step(self) -> tuple[StepReport, list[Arrival]]:
        out, report = self.sim.step()
        got = list(arrivals(self.sim, out))
        for a in got:
            self.ingest.receive(Datagram(a.payload, a.source, HES))
        self.steps.append((report, got))
        return report, got

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def collect(self, meter: int, first: int, last: int, at_s: float) -> float | None:
        """Ask ``meter`` for intervals ``first..last`` at ``at_s``; the answer (if any comes
        back) goes into the ingest. Returns when it arrived."""
        fleet = self.sim.fleet
        request = CollectRequest(
            meter + 1, fleet.interval_end(first), fleet.interval_end(last), f"r{at_s}"
        )
        self.collector.submit(request)
        self.collector.dispatch()
        payload, destination = self.outbox.sent[-1]
        assert destination == fleet.address(meter)
        answer = self.sim.request(meter, payload, at_s)
        if answer is None:
            self.collector.retry_pending(0)  # give up: the next request starts afresh
            return None
        self.ingest.receive(Datagram(answer[1], fleet.address(meter), HES))
        return answer[0]


def minutes(m: float) -> datetime:
    return START + timedelta(minutes=m)
