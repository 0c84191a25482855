"""Ingest: datagrams from meters in, columnar read batches out.

Each datagram is unwrapped (4-7 wrapper), opened (suite 0, counter freshness), decoded and
turned into reads. Pushes carry one profile entry; get-responses carry the buffer a
collection asked for. Anything refused is counted by reason and dropped; nothing raises out
of ``receive``, because one bad meter must not stop the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from openami.bus.contract import Channel, ReadBatch, ReadSource
from openami.errors import DecodeError, RemoteProtocolError, SecurityError
from openami.headend.keystore import KeyStore
from openami.log import get_logger
from openami.protocols.dlms.apdu import (
    DataNotification,
    GeneralGloCiphering,
    GetResponseNormal,
    decode_apdu,
)
from openami.protocols.dlms.profile import (
    ProfileEntry,
    decode_entries,
    decode_entry,
    decode_push_fast,
)
from openami.protocols.dlms.wrapper import decode_wrapper
from openami.transport.memory import Datagram

__all__ = ["Ingest", "ReadColumns"]

log = get_logger("headend.ingest")


@dataclass
class ReadColumns:
    """Reads accumulated since the last flush, one list per field."""

    meter_id: list[int] = field(default_factory=list)
    channel: list[int] = field(default_factory=list)
    interval_end: list[int] = field(default_factory=list)
    value_wh: list[int] = field(default_factory=list)
    source: list[int] = field(default_factory=list)
    status: list[int] = field(default_factory=list)

    def add(self, meter_id: int, entry: ProfileEntry, source: ReadSource) -> None:
        # Four channels per entry: interval energy both ways and both registers.
        self.meter_id += (meter_id,) * 4
        self.channel += (
            Channel.IMPORT_INTERVAL,
            Channel.EXPORT_INTERVAL,
            Channel.IMPORT_REGISTER,
            Channel.EXPORT_REGISTER,
        )
        self.interval_end += (entry.interval_end,) * 4
        self.value_wh += (
            entry.import_wh,
            entry.export_wh,
            entry.import_register,
            entry.export_register,
        )
        self.source += (source,) * 4
        self.status += (entry.status,) * 4

    def __len__(self) -> int:
        return len(self.meter_id)

    def take(self) -> ReadBatch:
        batch = ReadBatch(
            self.meter_id, self.channel, self.interval_end, self.value_wh, self.source, self.status
        )
        # the batch now owns the lists; start new ones
        self.meter_id, self.channel, self.interval_end = [], [], []
        self.value_wh, self.source, self.status = [], [], []
        return batch


ResponseHandler = Callable[[int, GetResponseNormal], list[ProfileEntry] | None]


class Ingest:
    """Turns meter datagrams into reads; ``on_response`` claims get-responses for collection."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self.reads = ReadColumns()
        self.accepted = Counter[str]()
        self.rejected = Counter[str]()
        self.on_response: ResponseHandler | None = None

    def receive(self, datagram: Datagram) -> None:
        try:
            frame = decode_wrapper(datagram.payload)
            outer = decode_apdu(frame.apdu)
            if not isinstance(outer, GeneralGloCiphering):
                raise SecurityError("clear-text APDU refused on Route A")
            meter, plain = self.keys.open(outer.system_title, outer.ciphered_content)
            if meter.address != datagram.source:
                # the key proved who sent it; a changed address is worth knowing, not fatal
                self.accepted["address_changed"] += 1
            fast = decode_push_fast(plain)
            if fast is not None:  # the common case, decoded in one step
                self.reads.add(meter.meter_id, fast, ReadSource.PUSH)
                self.accepted["push"] += 1
                return
            apdu = decode_apdu(plain)
            if isinstance(apdu, DataNotification):
                self.reads.add(meter.meter_id, decode_entry(apdu.body), ReadSource.PUSH)
                self.accepted["push"] += 1
            elif isinstance(apdu, GetResponseNormal):
                entries = self.on_response(meter.meter_id, apdu) if self.on_response else None
                if entries is None:
                    raise DecodeError("get-response that no collection asked for")
                for entry in entries:
                    self.reads.add(meter.meter_id, entry, ReadSource.RECOLLECT)
                self.accepted["response"] += 1
            else:
                raise DecodeError(f"unexpected {type(apdu).__name__} from a meter")
        except SecurityError as exc:
            self.rejected["security"] += 1
            log.info("rejected datagram", extra={"fields": {"reason": str(exc)}})
        except RemoteProtocolError as exc:
            self.rejected["decode"] += 1
            log.info("rejected datagram", extra={"fields": {"reason": str(exc)}})


def entries_of(response: GetResponseNormal) -> list[ProfileEntry]:
    """The profile entries in a successful load-profile get-response."""
    if not hasattr(response.result, "type"):
        raise DecodeError(f"meter refused the read: {response.result!r}")
    return decode_entries(response.result)  # type: ignore[arg-type]
