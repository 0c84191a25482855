"""Per-meter security state kept by the head-end, held in columns.

For every meter: its own suite 0 keys, its system title and address, the newest invocation
counter accepted from it with a window of the 64 below it (datagrams reorder; each counter
is accepted once), and the counter the head-end uses for its own requests to it. Keys never
appear in ``repr`` or logs.

Columns, not one object per meter: a million meters cost about 80 MB (two 16-octet keys, a
title, an address and three counters each), and a batch of pushes is looked up and checked
for replay with array operations. ``attach_state`` puts the counters and addresses in files
mapped into memory, so a head-end killed at any instant comes back knowing every counter it
accepted: a datagram recorded before the crash is still a replay after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from openami.errors import ConfigError, SecurityError
from openami.protocols.dlms.security import SuiteZero
from openami.transport.memory import Address

__all__ = ["REPLAY_WINDOW", "KeyShipmentEntry", "KeyStore", "MeterSecurity", "title_key"]

REPLAY_WINDOW = 64  # counters below the newest still accepted once (datagrams reorder)
_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
_STATE_COLUMNS = ("last", "seen", "client", "ip", "port")


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


def title_key(system_title: bytes) -> int:
    """A system title (8 octets) as the unsigned integer the store sorts by."""
    return int.from_bytes(system_title, "big")


def _ip_int(text: str) -> int:
    parts = text.split(".")
    if len(parts) != 4:
        raise ConfigError(f"meter address {text!r} is not IPv4")
    value = 0
    for part in parts:
        value = value << 8 | int(part)
    return value


def _ip_text(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


class MeterSecurity:
    """One meter's row of the store, read and written in place."""

    __slots__ = ("_store", "row")

    def __init__(self, store: KeyStore, row: int) -> None:
        self._store = store
        self.row = row

    def __repr__(self) -> str:  # no keys in logs
        return f"MeterSecurity(meter_id={self.meter_id}, address={self.address})"

    @property
    def meter_id(self) -> int:
        return int(self._store.meter_id[self.row])

    @property
    def system_title(self) -> bytes:
        return int(self._store.title[self.row]).to_bytes(8, "big")

    @property
    def suite(self) -> SuiteZero:
        s = self._store
        return SuiteZero(s.ek[self.row].tobytes(), s.ak[self.row].tobytes())

    @property
    def address(self) -> Address:
        s = self._store
        return (_ip_text(int(s.ip[self.row])), int(s.port[self.row]))

    @address.setter
    def address(self, value: Address) -> None:
        self._store.ip[self.row] = _ip_int(value[0])
        self._store.port[self.row] = value[1]

    @property
    def last_meter_counter(self) -> int:
        return int(self._store.last[self.row])

    @property
    def seen_below(self) -> int:
        return int(self._store.seen[self.row])

    @property
    def client_counter(self) -> int:
        return int(self._store.client[self.row])

    @client_counter.setter
    def client_counter(self, value: int) -> None:
        self._store.client[self.row] = value


class KeyStore:
    def __init__(self) -> None:
        self.meter_id: IntArray = np.zeros(0, dtype=np.int64)
        self.title = np.zeros(0, dtype=np.uint64)
        self.ek = np.zeros((0, 16), dtype=np.uint8)
        self.ak = np.zeros((0, 16), dtype=np.uint8)
        self.ip = np.zeros(0, dtype=np.uint32)
        self.port = np.zeros(0, dtype=np.uint16)
        self.last: IntArray = np.zeros(0, dtype=np.int64)
        self.seen = np.zeros(0, dtype=np.uint64)
        self.client: IntArray = np.zeros(0, dtype=np.int64)
        # the access point that serves each meter (-1: unknown), for pacing collection
        self.access_point: IntArray = np.zeros(0, dtype=np.int64)
        self._pending: list[tuple[int, bytes, Address, bytes, bytes]] = []
        self._by_title: tuple[npt.NDArray[np.uint64], IntArray] | None = None
        self._by_id: tuple[IntArray, IntArray] | None = None
        self.state_path: Path | None = None

    def __len__(self) -> int:
        self._merge()
        return int(self.meter_id.size)

    # -- provisioning --------------------------------------------------------------------

    def provision(
        self, meter_id: int, system_title: bytes, address: Address, ek: bytes, ak: bytes
    ) -> None:
        """Install (or replace) a meter's keys; replay state restarts with new keys."""
        if len(system_title) != 8 or len(ek) != 16 or len(ak) != 16:
            raise ConfigError("a meter needs an 8-octet system title and two 16-octet keys")
        self._pending.append((meter_id, system_title, address, ek, ak))
        self._merge()

    def provision_all(self, shipment: Iterable[KeyShipmentEntry]) -> int:
        """Install every meter of a key shipment; return how many."""
        count = 0
        for e in shipment:
            if len(e.system_title) != 8 or len(e.ek) != 16 or len(e.ak) != 16:
                raise ConfigError("a meter needs an 8-octet system title and two 16-octet keys")
            self._pending.append((e.meter_id, e.system_title, e.address, e.ek, e.ak))
            count += 1
        self._merge()  # one merge for the whole shipment, not one per meter
        return count

    def provision_columns(
        self,
        meter_id: IntArray,
        title: npt.NDArray[np.uint64],
        ek: npt.NDArray[np.uint8],
        ak: npt.NDArray[np.uint8],
        ip: npt.NDArray[np.uint32],
        port: npt.NDArray[np.uint16],
        access_point: IntArray | None = None,
    ) -> int:
        """Install a whole shipment given as columns (a million meters in a blink)."""
        self._merge()
        n = int(meter_id.size)
        if not (title.shape == (n,) and ek.shape == ak.shape == (n, 16) and ip.shape == (n,)):
            raise ConfigError("key shipment columns differ in length")
        if access_point is not None and access_point.shape != (n,):
            raise ConfigError("key shipment columns differ in length")
        self._append(meter_id, title, ek, ak, ip, port, access_point)
        return n

    def _merge(self) -> None:
        if not self._pending:
            return
        rows = self._pending
        self._pending = []
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        titles = np.array([title_key(r[1]) for r in rows], dtype=np.uint64)
        ek = np.frombuffer(b"".join(r[3] for r in rows), dtype=np.uint8).reshape(-1, 16)
        ak = np.frombuffer(b"".join(r[4] for r in rows), dtype=np.uint8).reshape(-1, 16)
        ip = np.array([_ip_int(r[2][0]) for r in rows], dtype=np.uint32)
        port = np.array([r[2][1] for r in rows], dtype=np.uint16)
        self._append(ids, titles, ek, ak, ip, port)

    def _append(
        self,
        ids: IntArray,
        titles: npt.NDArray[np.uint64],
        ek: npt.NDArray[np.uint8],
        ak: npt.NDArray[np.uint8],
        ip: npt.NDArray[np.uint32],
        port: npt.NDArray[np.uint16],
        access_point: IntArray | None = None,
    ) -> None:
        if self.state_path is not None:
            raise ConfigError("provision every meter before attaching the state files")
        # a later entry for the same meter or title replaces the earlier one (new keys)
        all_ids = np.concatenate([self.meter_id, ids])
        all_titles = np.concatenate([self.title, titles])
        n = all_ids.size
        keep = np.ones(n, dtype=np.bool_)
        for column in (all_ids, all_titles):
            _, last_of = np.unique(column[::-1], return_index=True)
            latest = np.zeros(n, dtype=np.bool_)
            latest[n - 1 - last_of] = True
            keep &= latest

        def join(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
            return np.concatenate([a, b])[keep]

        self.meter_id = all_ids[keep]
        self.title = all_titles[keep]
        self.ek = np.asarray(join(self.ek, ek), dtype=np.uint8)
        self.ak = np.asarray(join(self.ak, ak), dtype=np.uint8)
        self.ip = np.asarray(join(self.ip, ip), dtype=np.uint32)
        self.port = np.asarray(join(self.port, port), dtype=np.uint16)
        # new keys start new replay state; meters already known keep theirs
        m = ids.size
        self.last = np.concatenate([self.last, np.full(m, -1, dtype=np.int64)])[keep]
        self.seen = np.concatenate([self.seen, np.zeros(m, dtype=np.uint64)])[keep]
        self.client = np.concatenate([self.client, np.zeros(m, dtype=np.int64)])[keep]
        aps = np.full(m, -1, dtype=np.int64) if access_point is None else access_point
        self.access_point = np.concatenate([self.access_point, aps.astype(np.int64)])[keep]
        self._by_title = self._by_id = None

    def attach_state(self, directory: Path) -> bool:
        """Keep counters and addresses in files under ``directory`` (mapped into memory), so
        they survive the process. Returns True when an earlier state was found and loaded."""
        self._merge()
        directory.mkdir(parents=True, exist_ok=True)
        ids_path = directory / "meter_id.npy"
        loaded = False
        if ids_path.exists():
            known = np.load(ids_path)
            if not np.array_equal(known, self.meter_id):
                raise ConfigError(
                    f"{directory} holds the state of another key shipment; move it away"
                )
            loaded = True
        else:
            np.save(ids_path, self.meter_id)
        for name in _STATE_COLUMNS:
            path = directory / f"{name}.npy"
            current = getattr(self, name)
            if not loaded or not path.exists():
                np.save(path, current)
            mapped = np.load(path, mmap_mode="r+")
            if mapped.shape != current.shape or mapped.dtype != current.dtype:
                raise ConfigError(f"{path} does not match the key shipment")
            setattr(self, name, mapped)
        self.state_path = directory
        return loaded

    def flush_state(self) -> None:
        """Write mapped state to disk now (it reaches the page cache at once regardless)."""
        for name in _STATE_COLUMNS:
            column = getattr(self, name)
            if isinstance(column, np.memmap):
                column.flush()

    # -- lookups -------------------------------------------------------------------------

    def rows_of_titles(self, titles: npt.NDArray[np.uint64]) -> IntArray:
        """Row of each system title (as ``title_key``); -1 where unknown."""
        self._merge()
        if self._by_title is None:
            order = np.argsort(self.title, kind="stable")
            self._by_title = (self.title[order], order.astype(np.int64))
        keys, order = self._by_title
        if keys.size == 0:
            return np.full(titles.shape, -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(keys, titles), keys.size - 1)
        return np.where(keys[at] == titles, order[at], -1)

    def _row_of_id(self, meter_id: int) -> int:
        self._merge()
        if self._by_id is None:
            order = np.argsort(self.meter_id, kind="stable")
            self._by_id = (self.meter_id[order], order.astype(np.int64))
        keys, order = self._by_id
        at = int(np.searchsorted(keys, meter_id))
        if at < keys.size and int(keys[at]) == meter_id:
            return int(order[at])
        return -1

    def by_title(self, system_title: bytes) -> MeterSecurity:
        row = -1
        if len(system_title) == 8:
            row = int(self.rows_of_titles(np.array([title_key(system_title)], np.uint64))[0])
        if row < 0:
            raise SecurityError(f"unknown system title {system_title.hex()}")
        return MeterSecurity(self, row)

    def by_id(self, meter_id: int) -> MeterSecurity:
        row = self._row_of_id(meter_id)
        if row < 0:
            raise SecurityError(f"no keys for meter {meter_id}")
        return MeterSecurity(self, row)

    # -- freshness -----------------------------------------------------------------------

    def open(self, system_title: bytes, content: bytes) -> tuple[MeterSecurity, bytes]:
        """Authenticate and decrypt content from a meter, enforcing counter freshness."""
        entry, plaintext, _newest = self.open_fresh(system_title, content)
        return entry, plaintext

    def open_fresh(self, system_title: bytes, content: bytes) -> tuple[MeterSecurity, bytes, bool]:
        """``open``, and whether the counter was the newest yet from that meter (a datagram
        that arrives late, inside the window, must not undo what newer ones told)."""
        entry = self.by_title(system_title)
        counter, plaintext = entry.suite.unprotect(system_title, content)
        return entry, plaintext, self.accept(entry.row, counter)

    def accept(self, row: int, counter: int) -> bool:
        """Take ``counter`` from an authenticated datagram of meter ``row``, or raise
        ``SecurityError`` when it was seen before or is older than the window. True when it
        is the newest counter yet, False when it came late, inside the window."""
        self._merge()
        last = int(self.last[row])
        seen = int(self.seen[row])
        if counter > last:
            # slide the window: bit k of ``seen`` stands for counter ``last - 1 - k``
            shift = counter - last
            seen = ((seen << shift) | (1 << (shift - 1))) & _WINDOW_MASK if last >= 0 else 0
            self.last[row] = counter
            self.seen[row] = seen
            return True
        age = last - counter  # 0 is the last counter itself
        if age == 0 or age > REPLAY_WINDOW or seen >> (age - 1) & 1:
            raise SecurityError(
                f"replayed invocation counter {counter} from meter {int(self.meter_id[row])}"
                f" (last accepted {last})"
            )
        # UDP may reorder: a fresh counter a little below the newest is still accepted once
        self.seen[row] = seen | 1 << (age - 1)
        return False

    def accept_many(self, rows: IntArray, counters: IntArray) -> tuple[BoolArray, BoolArray]:
        """``accept`` for a batch of authenticated datagrams, in order: which were fresh, and
        which of those carried the newest counter yet.

        The common case (each meter once in the batch, counter above its last) is decided
        with array operations; meters seen more than once and counters inside the window
        go through ``accept`` one by one, in arrival order.
        """
        self._merge()
        n = rows.size
        ok = np.zeros(n, dtype=np.bool_)
        newest = np.zeros(n, dtype=np.bool_)
        if n == 0:
            return ok, newest
        _, first, count = np.unique(rows, return_index=True, return_counts=True)
        single = np.zeros(n, dtype=np.bool_)
        single[first[count == 1]] = True
        last = self.last[rows]
        simple = single & (counters > last)
        r, c, prev = rows[simple], counters[simple], last[simple]
        shift = (c - prev).astype(np.uint64)
        old = self.seen[r]
        # as ``accept``: a shift of 64 keeps only the previous newest counter in view (bit
        # 63), a longer one nothing; NumPy shifts of 64 or more are not defined, so mask them
        one = np.uint64(1)
        narrow = shift < np.uint64(REPLAY_WINDOW)
        k = np.where(narrow, shift, one)
        slid = np.where(narrow, (old << k) | (one << (k - one)), np.uint64(0))
        slid = np.where(shift == np.uint64(REPLAY_WINDOW), one << np.uint64(63), slid)
        self.seen[r] = np.where(prev >= 0, slid, np.uint64(0))
        self.last[r] = c
        ok[simple] = newest[simple] = True
        for j in np.flatnonzero(~simple).tolist():
            try:
                newest[j] = self.accept(int(rows[j]), int(counters[j]))
                ok[j] = True
            except SecurityError:
                pass
        return ok, newest

    def next_client_counter(self, entry: MeterSecurity) -> int:
        entry.client_counter += 1
        return entry.client_counter
