"""An in-memory datagram network with loss: the in-process twin of UDP.

Endpoints own one or more addresses (a fleet simulator owns every meter's address; a head-end
owns its own). ``sendto`` drops a datagram with probability ``loss`` (seeded, so runs
repeat), and silently drops it when nobody owns the destination, as UDP does. Delivered
datagrams wait in the receiving endpoint's inbox until it drains them.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from openami.errors import LocalProtocolError, TransportError

__all__ = ["Address", "Datagram", "MemoryEndpoint", "MemoryNetwork", "NetworkStats"]

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Datagram:
    payload: bytes
    source: Address
    destination: Address


@dataclass(slots=True)
class NetworkStats:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    undeliverable: int = 0


class MemoryEndpoint:
    def __init__(self, network: MemoryNetwork, addresses: frozenset[Address]) -> None:
        self._network = network
        self.addresses = addresses
        self._inbox: deque[Datagram] = deque()
        self.closed = False

    def sendto(self, payload: bytes, source: Address, destination: Address) -> None:
        if self.closed:
            raise TransportError("endpoint is closed")
        if source not in self.addresses:
            raise LocalProtocolError(f"endpoint does not own source address {source}")
        self._network._route(Datagram(payload, source, destination))

    def receive_all(self) -> list[Datagram]:
        """Drain and return every datagram waiting for this endpoint."""
        out = list(self._inbox)
        self._inbox.clear()
        return out

    def pending(self) -> int:
        return len(self._inbox)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._network._unbind(self)


@dataclass
class MemoryNetwork:
    loss: float = 0.0
    seed: int = 0
    stats: NetworkStats = field(default_factory=NetworkStats)

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0:
            raise LocalProtocolError(f"loss must be in [0, 1), got {self.loss}")
        self._random = random.Random(self.seed)
        self._owners: dict[Address, MemoryEndpoint] = {}

    def bind(self, addresses: Iterable[Address]) -> MemoryEndpoint:
        owned = frozenset(addresses)
        taken = owned & self._owners.keys()
        if taken:
            raise TransportError(f"address already bound: {sorted(taken)[0]}")
        endpoint = MemoryEndpoint(self, owned)
        for address in owned:
            self._owners[address] = endpoint
        return endpoint

    def _unbind(self, endpoint: MemoryEndpoint) -> None:
        for address in endpoint.addresses:
            if self._owners.get(address) is endpoint:
                del self._owners[address]

    def _route(self, datagram: Datagram) -> None:
        self.stats.sent += 1
        if self.loss and self._random.random() < self.loss:
            self.stats.lost += 1
            return
        owner = self._owners.get(datagram.destination)
        if owner is None:
            self.stats.undeliverable += 1
            return
        owner._inbox.append(datagram)
        self.stats.delivered += 1
