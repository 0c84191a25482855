"""Per-meter security state kept by the head-end.

For every meter: its own suite 0 keys, its system title and address, the highest invocation
counter accepted from it (anything not above it is a replay), and the counter the head-end
uses for its own requests to it. Keys never appear in ``repr`` or logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from openami.errors import SecurityError
from openami.protocols.dlms.security import SuiteZero
from openami.transport.memory import Address

__all__ = ["KeyShipmentEntry", "KeyStore", "MeterSecurity"]


class KeyShipmentEntry(Protocol):
    """One meter of a manufacturer's key shipment, as the head-end receives it."""

    @property
    def meter_id(self) -> int: ...
    @property
    def system_title(self) -> bytes: ...
    @property
    def address(self) -> Address: ...
    @property
    def ek(self) -> bytes: ...
    @property
    def ak(self) -> bytes: ...


REPLAY_WINDOW = 64  # counters below the newest still accepted once (datagrams reorder)
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1


@dataclass(slots=True)
class MeterSecurity:
    meter_id: int
    system_title: bytes
    address: Address
    suite: SuiteZero = field(repr=False)
    last_meter_counter: int = -1
    seen_below: int = 0  # which of the REPLAY_WINDOW counters below the last were accepted
    client_counter: int = 0


class KeyStore:
    def __init__(self) -> None:
        self._by_title: dict[bytes, MeterSecurity] = {}
        self._by_id: dict[int, MeterSecurity] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def provision(
        self, meter_id: int, system_title: bytes, address: Address, ek: bytes, ak: bytes
    ) -> None:
        """Install (or replace) a meter's keys; replay state restarts with new keys."""
        entry = MeterSecurity(meter_id, system_title, address, SuiteZero(ek, ak))
        self._by_title[system_title] = entry
        self._by_id[meter_id] = entry

    def provision_all(self, shipment: Iterable[KeyShipmentEntry]) -> int:
        """Install every meter of a key shipment; return how many."""
        count = 0
        for entry in shipment:
            self.provision(entry.meter_id, entry.system_title, entry.address, entry.ek, entry.ak)
            count += 1
        return count

    def by_title(self, system_title: bytes) -> MeterSecurity:
        entry = self._by_title.get(system_title)
        if entry is None:
            raise SecurityError(f"unknown system title {system_title.hex()}")
        return entry

    def by_id(self, meter_id: int) -> MeterSecurity:
        entry = self._by_id.get(meter_id)
        if entry is None:
            raise SecurityError(f"no keys for meter {meter_id}")
        return entry

    def open(self, system_title: bytes, content: bytes) -> tuple[MeterSecurity, bytes]:
        """Authenticate and decrypt content from a meter, enforcing counter freshness."""
        entry = self.by_title(system_title)
        counter, plaintext = entry.suite.unprotect(system_title, content)
        last = entry.last_meter_counter
        if counter > last:
            # slide the window: bit k of ``seen_below`` stands for counter ``last - 1 - k``
            shift = counter - last
            entry.seen_below = (
                ((entry.seen_below << shift) | (1 << (shift - 1))) & _WINDOW_MASK
                if last >= 0
                else 0
            )
            entry.last_meter_counter = counter
            return entry, plaintext
        age = last - counter  # 0 is the last counter itself
        if age == 0 or age > REPLAY_WINDOW or entry.seen_below >> (age - 1) & 1:
            raise SecurityError(
                f"replayed invocation counter {counter} from meter {entry.meter_id}"
                f" (last accepted {last})"
            )
        # UDP may reorder: a fresh counter a little below the newest is still accepted once
        entry.seen_below |= 1 << (age - 1)
        return entry, plaintext

    def next_client_counter(self, entry: MeterSecurity) -> int:
        entry.client_counter += 1
        return entry.client_counter
