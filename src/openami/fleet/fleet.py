"""A fleet of simulated household meters, held column by column.

Per-meter state lives in NumPy arrays (registers, invocation counters, traits) and the whole
run's load profile is generated up front, vectorised; Python touches one meter at a time only
on the wire, to build its push or answer a request. Keys and system titles are derived from
the seed so that a run repeats exactly; a utility would load them from the manufacturer's
key shipment instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from openami.fleet.loadshape import HouseholdTraits, LoadProfiles, draw_traits, simulate
from openami.protocols.dlms.security import SuiteZero
from openami.transport.memory import Address

__all__ = ["Fleet", "MeterIdentity"]

MANUFACTURER = b"OAM"  # three-letter manufacturer flag at the head of every system title
DLMS_PORT = 4059


@dataclass(frozen=True)
class MeterIdentity:
    """What the utility's key shipment says about one meter (secrets kept out of repr)."""

    meter_id: int
    serial: str
    system_title: bytes
    address: Address
    ek: bytes = field(repr=False)
    ak: bytes = field(repr=False)
    kek: bytes = field(repr=False)


def meter_address(index: int) -> Address:
    """Each meter's own IP address in 10.0.0.0/8 (index 0 -> 10.0.0.1)."""
    n = index + 1
    return (f"10.{(n >> 16) & 0xFF}.{(n >> 8) & 0xFF}.{n & 0xFF}", DLMS_PORT)


class Fleet:
    """``n`` household meters simulated over ``n_intervals`` intervals from ``start``."""

    def __init__(
        self,
        n: int,
        start: datetime,
        n_intervals: int,
        interval_minutes: int = 30,
        seed: int = 1,
    ) -> None:
        if n < 1 or n >= 2**24:
            raise ValueError(f"fleet size {n} outside 1..16,777,215")
        rng = np.random.default_rng(seed)
        self.n = n
        self.start = start
        self.interval_s = interval_minutes * 60
        self.meter_ids = np.arange(1, n + 1, dtype=np.int64)
        keys = rng.integers(0, 256, size=(n, 48), dtype=np.uint8)
        self._ek = keys[:, :16]
        self._ak = keys[:, 16:32]
        self._kek = keys[:, 32:]  # master key: wraps new keys sent to the meter
        self.traits: HouseholdTraits = draw_traits(n, rng)
        self.profiles: LoadProfiles = simulate(
            self.traits, start, n_intervals, interval_minutes, rng
        )
        self.import_register_start = rng.integers(1_000_000, 30_000_000, n, dtype=np.int64)
        self.export_register_start = np.where(
            self.traits.pv_kw > 0, rng.integers(500_000, 10_000_000, n, dtype=np.int64), 0
        )
        # Cumulative registers at each interval END: what the meter shows after that interval.
        self.import_register = self.import_register_start[:, None] + np.cumsum(
            self.profiles.import_wh, axis=1
        )
        self.export_register = self.export_register_start[:, None] + np.cumsum(
            self.profiles.export_wh, axis=1
        )
        self.invocation_counter = np.zeros(n, dtype=np.int64)  # meter -> head-end
        self.last_client_counter = np.full(n, -1, dtype=np.int64)  # head-end -> meter
        self._suites: dict[int, SuiteZero] = {}
        self.addresses = [meter_address(i) for i in range(n)]
        self._index_by_address = {a: i for i, a in enumerate(self.addresses)}

    @property
    def n_intervals(self) -> int:
        return int(self.profiles.interval_end.shape[0])

    def system_title(self, index: int) -> bytes:
        return MANUFACTURER + int(index + 1).to_bytes(5, "big")

    def serial(self, index: int) -> str:
        return f"OAM{index + 1:010d}"

    def suite(self, index: int) -> SuiteZero:
        suite = self._suites.get(index)
        if suite is None:
            suite = SuiteZero(self._ek[index].tobytes(), self._ak[index].tobytes())
            self._suites[index] = suite
        return suite

    def index_of(self, address: Address) -> int | None:
        return self._index_by_address.get(address)

    def identities(self) -> list[MeterIdentity]:
        """The key shipment handed to the head-end at installation."""
        return [
            MeterIdentity(
                int(self.meter_ids[i]),
                self.serial(i),
                self.system_title(i),
                self.addresses[i],
                self._ek[i].tobytes(),
                self._ak[i].tobytes(),
                self._kek[i].tobytes(),
            )
            for i in range(self.n)
        ]

    def next_invocation_counter(self, index: int) -> int:
        self.invocation_counter[index] += 1
        return int(self.invocation_counter[index])

    def energy_delta(self, upto: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Register change per meter from the start to the end of interval ``upto`` (exclusive
        bound on the count: ``upto`` intervals)."""
        if upto == 0:
            zeros = np.zeros(self.n, dtype=np.int64)
            return zeros, zeros
        return (
            self.import_register[:, upto - 1] - self.import_register_start,
            self.export_register[:, upto - 1] - self.export_register_start,
        )
