"""The head-end's per-datagram path, a batch at a time.

Almost every datagram a head-end receives is an interval push of the fixed 80-octet layout
(``protocols.dlms.push_layout``). A batch from one ``recvmmsg`` call is taken apart as a
NumPy array: the frame headers are checked, the system titles looked up in the key store and
the invocation counters read for every row at once; then each row is authenticated and
decrypted under its meter's own key (the one step that has to run per datagram); the fresh
ones pass the replay window together, and their plaintexts are decoded column by column.
Everything else (other lengths, other headers, co-metering pushes, events, answers to
requests, and pushes whose plaintext is not the expected entry) goes through the general
``Ingest`` one by one, so both paths accept and refuse the same inputs.

Reads come out as NumPy columns; ``take`` turns them into one bus message, ``take_by_shard``
into one per meter shard (what an ingest worker publishes). Either converts each value to a
Python int once: building the message lists is a large share of a worker's time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openami.bus.contract import SHARDS, Channel, ReadBatch, ReadSource
from openami.errors import DecodeError
from openami.headend.ingest import Ingest
from openami.headend.keystore import KeyStore
from openami.protocols.dlms.axdr import DataType
from openami.protocols.dlms.profile import interval_end_of
from openami.protocols.dlms.push_layout import (
    CIPHER_AT,
    COUNTER_AT,
    INTERVAL_PLAIN,
    TITLE_AT,
    UTILITY_PLAIN,
    frame_prefix,
    frame_size,
)
from openami.protocols.dlms.security import SC_AUTHENTICATED_ENCRYPTED, TAG_LEN
from openami.transport.memory import Address, Datagram

__all__ = ["PushBatchIngest", "ShardedReads", "split_by_shard"]

IntArray = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

PLAIN = INTERVAL_PLAIN.itemsize
SIZE = frame_size(PLAIN)
_PREFIX = np.frombuffer(frame_prefix(PLAIN), dtype=np.uint8)
# the co-metering push (gas and water indexes on the hour): the same frame, a shorter entry
U_PLAIN = UTILITY_PLAIN.itemsize
U_SIZE = frame_size(U_PLAIN)
_U_PREFIX = np.frombuffer(frame_prefix(U_PLAIN), dtype=np.uint8)
_U_TAGS = {
    "tag": 0x0F,
    "no_time": 0,
    "structure": DataType.STRUCTURE,
    "count": 4,
    "octets": DataType.OCTET_STRING,
    "size": 12,
    "t_status": DataType.UNSIGNED,
    "t_gas": DataType.DOUBLE_LONG_UNSIGNED,
    "t_water": DataType.DOUBLE_LONG_UNSIGNED,
}
# the octets every interval push's plaintext holds at fixed places (tags and lengths)
_TAGS = {
    "tag": 0x0F,
    "no_time": 0,
    "structure": DataType.STRUCTURE,
    "count": 6,
    "octets": DataType.OCTET_STRING,
    "size": 12,
    "t_status": DataType.UNSIGNED,
    "t_imp_reg": DataType.DOUBLE_LONG_UNSIGNED,
    "t_exp_reg": DataType.DOUBLE_LONG_UNSIGNED,
    "t_imp": DataType.DOUBLE_LONG_UNSIGNED,
    "t_exp": DataType.DOUBLE_LONG_UNSIGNED,
}
_CHANNELS = np.array(
    [
        Channel.IMPORT_INTERVAL,
        Channel.EXPORT_INTERVAL,
        Channel.IMPORT_REGISTER,
        Channel.EXPORT_REGISTER,
    ],
    dtype=np.int64,
)
_CHANNEL_LIST = _CHANNELS.tolist()
_PUSH = int(ReadSource.PUSH)


@dataclass
class _Entries:
    """Interval entries decoded from pushes: one row per push."""

    meter_id: IntArray
    interval_end: IntArray
    status: IntArray
    values: IntArray  # (n, 4): import, export interval energy; import, export register


class PushBatchIngest:
    """Batches of datagrams in, read columns out; the general ``Ingest`` takes the rest."""

    def __init__(self, keys: KeyStore, ingest: Ingest | None = None) -> None:
        self.keys = keys
        self.ingest = ingest or Ingest(keys)
        self._parts: list[_Entries] = []
        self._pending = 0
        self._ek = b""
        self._aad = b""
        self._rows_seen = -1

    @property
    def accepted(self) -> dict[str, int]:
        return self.ingest.accepted

    @property
    def rejected(self) -> dict[str, int]:
        return self.ingest.rejected

    def __len__(self) -> int:
        """Reads waiting to be taken (four per interval push)."""
        return 4 * self._pending + len(self.ingest.reads)

    def _key_blobs(self) -> tuple[bytes, bytes]:
        # Every meter's EK, and SC || AK (the GCM additional data), as one bytes object
        # each: slicing bytes is the cheapest way to hand a key to the cipher per row.
        n = len(self.keys)
        if n != self._rows_seen:
            self._ek = np.ascontiguousarray(self.keys.ek).tobytes()
            aad = np.empty((n, 17), dtype=np.uint8)
            aad[:, 0] = SC_AUTHENTICATED_ENCRYPTED
            aad[:, 1:] = self.keys.ak
            self._aad = aad.tobytes()
            self._rows_seen = n
        return self._ek, self._aad

    def receive(
        self,
        payloads: list[bytes],
        source_ip: npt.NDArray[np.uint32],
        source_port: npt.NDArray[np.uint16],
        here: Address,
    ) -> None:
        """Take one received batch (as ``BatchUdpSocket.recv_batch`` gives it)."""
        n = len(payloads)
        if n == 0:
            return
        lengths = np.fromiter(map(len, payloads), dtype=np.int64, count=n)
        fit = np.flatnonzero(lengths == SIZE)
        utility = np.flatnonzero(lengths == U_SIZE)
        general = np.flatnonzero((lengths != SIZE) & (lengths != U_SIZE)).tolist()
        if fit.size:
            general += self._pushes(payloads, fit, source_ip, source_port)
        if utility.size:
            general += self._utilities(payloads, utility, source_ip, source_port)
        if general:
            general.sort()
            ingest = self.ingest
            for k in general:
                ip = int(source_ip[k])
                source = (f"{ip >> 24 & 255}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}",)
                ingest.receive(Datagram(payloads[k], (source[0], int(source_port[k])), here))

    def _decoded(
        self,
        payloads: list[bytes],
        fit: IntArray,
        source_ip: npt.NDArray[np.uint32],
        source_port: npt.NDArray[np.uint16],
        layout: np.dtype[np.void],
        prefix: U8,
        tags: dict[str, int],
    ) -> tuple[list[int], npt.NDArray[np.void], IntArray, IntArray]:
        """The rows of ``fit`` that are pushes of ``layout``, as far as they agree: header
        check, title look-up, authentication, replay window, address follow-up, tags and
        clock. Returns the positions left for the general path, and the fresh entries with
        their meter ids and interval ends; what is refused is counted."""
        size = frame_size(layout.itemsize)
        blob = b"".join([payloads[k] for k in fit.tolist()])
        frames = np.frombuffer(blob, dtype=np.uint8).reshape(-1, size)
        header = np.concatenate([frames[:, :10], frames[:, 18:20]], axis=1)
        titles = np.ascontiguousarray(frames[:, TITLE_AT : TITLE_AT + 8]).view(">u8").ravel()
        rows = self.keys.rows_of_titles(titles.astype(np.uint64))
        ours = (header == prefix).all(axis=1) & (rows >= 0)
        candidate = np.flatnonzero(ours)
        others: list[int] = fit[~ours].tolist()
        none = np.zeros(0, dtype=layout), np.zeros(0, np.int64), np.zeros(0, np.int64)
        if candidate.size == 0:
            return (others, *none)
        counters = (
            np.ascontiguousarray(frames[candidate, COUNTER_AT : COUNTER_AT + 4])
            .view(">u4")
            .ravel()
            .astype(np.int64)
        )
        plain_all, authentic = self._open(blob, candidate, rows[candidate], size, layout.itemsize)
        forged = int(candidate.size - authentic.sum())
        if forged:  # a Counter gains no key for nothing refused, as on the one-by-one path
            self.ingest.rejected["security"] += forged
        ok_rows = rows[candidate[authentic]]
        fresh, newest = self.keys.accept_many(ok_rows, counters[authentic])
        replays = int(fresh.size - fresh.sum())
        if replays:
            self.ingest.rejected["security"] += replays
        if not fresh.any():
            return (others, *none)
        good = np.flatnonzero(fresh)
        meter_rows = ok_rows[good]
        plain = np.ascontiguousarray(plain_all[authentic][good]).view(layout).ravel()
        # positions in the received batch of the fresh pushes with the newest counters
        where = fit[candidate[authentic][good]]
        latest = newest[good]
        self._follow_addresses(
            meter_rows[latest], source_ip[where[latest]], source_port[where[latest]]
        )
        entry = np.ones(plain.size, dtype=np.bool_)
        for name, value in tags.items():
            entry &= plain[name] == value
        meter_ids = self.keys.meter_id[meter_rows]
        if not entry.all():
            # fresh and authentic but not this entry: the general decoder decides
            for k in np.flatnonzero(~entry).tolist():
                self.ingest.opened(int(meter_ids[k]), plain[k].tobytes())
        plain, meter_ids = plain[entry], meter_ids[entry]
        ends = self._interval_ends(plain["clock"])
        dated = ends >= 0
        if not dated.all():
            self.ingest.rejected["decode"] += int((~dated).sum())
        return others, plain[dated], meter_ids[dated], ends[dated]

    def _pushes(
        self,
        payloads: list[bytes],
        fit: IntArray,
        source_ip: npt.NDArray[np.uint32],
        source_port: npt.NDArray[np.uint16],
    ) -> list[int]:
        """Decode the rows of ``fit`` that are interval pushes; return the others."""
        others, plain, meter_ids, ends = self._decoded(
            payloads, fit, source_ip, source_port, INTERVAL_PLAIN, _PREFIX, _TAGS
        )
        if plain.size:
            values = np.stack(
                [plain["imp"], plain["exp"], plain["imp_reg"], plain["exp_reg"]], axis=1
            ).astype(np.int64)
            self._parts.append(_Entries(meter_ids, ends, plain["status"].astype(np.int64), values))
            self._pending += int(plain.size)
            self.ingest.accepted["push"] += int(plain.size)
        return others

    def _open(
        self, blob: bytes, at: IntArray, rows: IntArray, size: int = SIZE, plain_len: int = PLAIN
    ) -> tuple[U8, npt.NDArray[np.bool_]]:
        """Decrypt and authenticate the frames at positions ``at`` of ``blob`` under the keys
        of ``rows``: the plaintexts (one row each) and which are authentic.

        GCM is a counter-mode keystream plus a tag over the ciphertext, so the keystream is
        what encrypting zeros gives; XOR recovers every plaintext in one array operation, and
        sealing a plaintext again must reproduce the sender's tag (its first 12 octets, as
        DLMS truncates it). Two calls on one ``AESGCM`` object per row cost less than one
        decryptor that accepts a truncated tag, which is the per-datagram floor here.
        """
        ek, aad = self._key_blobs()
        n = int(at.size)
        frames = np.frombuffer(blob, dtype=np.uint8).reshape(-1, size)[at]
        ivs = list(
            _rows_of(
                np.concatenate(
                    [frames[:, TITLE_AT : TITLE_AT + 8], frames[:, COUNTER_AT:CIPHER_AT]], axis=1
                ).tobytes(),
                12,
                n,
            )
        )
        # per row, C-level iteration only (map): the Python loop cost as much as the cipher
        ciphers = list(map(AESGCM, _picks(ek, rows, 16)))
        sealed = plain_len + 16  # what AESGCM.encrypt returns: ciphertext, then the whole tag
        zeros = b"".join(
            map(AESGCM.encrypt, ciphers, ivs, repeat(bytes(plain_len), n), repeat(None))
        )
        stream = np.frombuffer(zeros, dtype=np.uint8).reshape(n, sealed)[:, :plain_len]
        plain = frames[:, CIPHER_AT : CIPHER_AT + plain_len] ^ stream
        again = b"".join(
            map(
                AESGCM.encrypt,
                ciphers,
                ivs,
                _rows_of(plain.tobytes(), plain_len, n),
                _picks(aad, rows, 17),
            )
        )
        expected = np.frombuffer(again, dtype=np.uint8).reshape(n, sealed)[
            :, plain_len : plain_len + TAG_LEN
        ]
        authentic = (expected == frames[:, CIPHER_AT + plain_len :]).all(axis=1)
        return plain, authentic

    def _utilities(
        self,
        payloads: list[bytes],
        fit: IntArray,
        source_ip: npt.NDArray[np.uint32],
        source_port: npt.NDArray[np.uint16],
    ) -> list[int]:
        """Decode the rows of ``fit`` that are co-metering pushes; their reads join the
        general path's columns. Return the others."""
        others, plain, meter_ids, times = self._decoded(
            payloads, fit, source_ip, source_port, UTILITY_PLAIN, _U_PREFIX, _U_TAGS
        )
        if plain.size:
            self.ingest.reads.add_utilities(
                meter_ids, times, plain["status"], plain["gas"], plain["water"]
            )
            self.ingest.accepted["utility"] += int(plain.size)
        return others

    def _follow_addresses(
        self,
        rows: IntArray,
        source_ip: npt.NDArray[np.uint32],
        source_port: npt.NDArray[np.uint16],
    ) -> None:
        """A fresh, authentic push proves its sender: a meter with a new communication unit
        is reached at the new address from now on."""
        keys = self.keys
        moved = (keys.ip[rows] != source_ip) | (keys.port[rows] != source_port)
        if moved.any():
            keys.ip[rows[moved]] = source_ip[moved]
            keys.port[rows[moved]] = source_port[moved]
            self.ingest.accepted["address_changed"] += int(moved.sum())

    @staticmethod
    def _interval_ends(clocks: npt.NDArray[np.bytes_]) -> IntArray:
        """Unix seconds of each clock value; -1 where it is not a valid date-time."""
        unique, inverse = np.unique(clocks, return_inverse=True)
        ends = np.empty(unique.size, dtype=np.int64)
        for k, raw in enumerate(unique.tolist()):
            try:
                # NumPy strips trailing NUL octets from S12 values: put them back
                ends[k] = interval_end_of(bytes(raw).ljust(12, b"\x00"))
            except DecodeError:
                ends[k] = -1
        return ends[inverse.ravel()]

    def _take_entries(self) -> _Entries | None:
        parts, self._parts, self._pending = self._parts, [], 0
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return _Entries(
            np.concatenate([p.meter_id for p in parts]),
            np.concatenate([p.interval_end for p in parts]),
            np.concatenate([p.status for p in parts]),
            np.concatenate([p.values for p in parts]),
        )

    def take(self) -> ReadBatch | None:
        """Every read since the last take, as one bus message (None when there are none)."""
        general = self.ingest.reads.take() if len(self.ingest.reads) else None
        entries = self._take_entries()
        if entries is None:
            return general
        batch = _read_batch(entries, 0, entries.meter_id.size)
        return batch if general is None else _joined(batch, general)

    def take_by_shard(self) -> ShardedReads | None:
        """Every read since the last take, as one bus message per meter shard
        (``meter_id % SHARDS``, see ``bus.contract``), each in ``take``'s order; None when
        there are none.

        The pushes are put in shard order while they are arrays, so each value becomes a
        Python int once (``split_by_shard(take())`` turns every list back into an array and
        then into lists again), and what the head-end counts of them comes from the arrays.
        """
        general = self.ingest.reads.take() if len(self.ingest.reads) else None
        entries = self._take_entries()
        if entries is None and general is None:
            return None
        batches: dict[int, ReadBatch] = {}
        ends: list[IntArray] = []  # of the import-interval reads
        extent: list[int] = []  # interval ends: the earliest and latest of each part
        reads = 0
        if entries is not None:
            shard = entries.meter_id % SHARDS
            order = np.argsort(shard, kind="stable")
            bounds = np.searchsorted(shard[order], np.arange(SHARDS + 1)).tolist()
            ordered = _Entries(
                entries.meter_id[order],
                entries.interval_end[order],
                entries.status[order],
                entries.values[order],
            )
            for s in range(SHARDS):
                if bounds[s] < bounds[s + 1]:
                    batches[s] = _read_batch(ordered, bounds[s], bounds[s + 1])
            reads += 4 * entries.meter_id.size
            ends.append(entries.interval_end)
            extent += [int(entries.interval_end.min()), int(entries.interval_end.max())]
        if general is not None:
            for s, part in split_by_shard(general).items():
                batches[s] = _joined(batches[s], part) if s in batches else part
            reads += len(general.meter_id)
            channel = np.asarray(general.channel, dtype=np.int64)
            general_ends = np.asarray(general.interval_end, dtype=np.int64)
            ends.append(general_ends[channel == Channel.IMPORT_INTERVAL])
            extent += [int(general_ends.min()), int(general_ends.max())]
        return ShardedReads(
            dict(sorted(batches.items())), reads, np.concatenate(ends), min(extent), max(extent)
        )


@dataclass(frozen=True)
class ShardedReads:
    """Reads taken for the bus, one message per meter shard, and what a head-end counts of
    them once the bus stored them."""

    batches: dict[int, ReadBatch]  # shard -> its reads
    reads: int
    import_ends: IntArray  # interval end of each import-interval read (deadline statistics)
    first_end: int  # earliest and latest interval end of any read
    last_end: int


def _rows_of(data: bytes, width: int, n: int) -> Iterator[bytes]:
    """The ``n`` consecutive ``width``-octet pieces of ``data``."""
    return map(
        data.__getitem__,
        map(slice, range(0, width * n, width), range(width, width * (n + 1), width)),
    )


def _picks(data: bytes, rows: IntArray, width: int) -> Iterator[bytes]:
    """Piece ``rows[i]`` of ``data`` cut in ``width``-octet pieces, for each i."""
    at = rows * width
    return map(data.__getitem__, map(slice, at.tolist(), (at + width).tolist()))


def _read_batch(entries: _Entries, lo: int, hi: int) -> ReadBatch:
    """The reads of the pushes ``lo:hi`` of ``entries``: four per push, in channel order."""
    k = hi - lo
    return ReadBatch(
        meter_id=np.repeat(entries.meter_id[lo:hi], 4).tolist(),
        channel=_CHANNEL_LIST * k,
        interval_end=np.repeat(entries.interval_end[lo:hi], 4).tolist(),
        value_wh=entries.values[lo:hi].ravel().tolist(),
        source=[_PUSH] * (4 * k),
        status=np.repeat(entries.status[lo:hi], 4).tolist(),
    )


def _joined(first: ReadBatch, then: ReadBatch) -> ReadBatch:
    return ReadBatch(
        meter_id=first.meter_id + then.meter_id,
        channel=first.channel + then.channel,
        interval_end=first.interval_end + then.interval_end,
        value_wh=first.value_wh + then.value_wh,
        source=first.source + then.source,
        status=first.status + then.status,
    )


def split_by_shard(batch: ReadBatch) -> dict[int, ReadBatch]:
    """One batch per meter shard (``meter_id % SHARDS``), each in the original order."""
    ids = np.asarray(batch.meter_id, dtype=np.int64)
    shard = ids % SHARDS
    columns = {
        name: np.asarray(getattr(batch, name), dtype=np.int64) for name in batch.__struct_fields__
    }
    out: dict[int, ReadBatch] = {}
    for s in np.unique(shard).tolist():
        pick = shard == s
        out[int(s)] = ReadBatch(**{name: col[pick].tolist() for name, col in columns.items()})
    return out
