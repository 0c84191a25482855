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

import numpy as np
import numpy.typing as npt

from openami.bus.contract import Channel, EventBatch, ReadBatch, ReadSource
from openami.errors import DecodeError, RemoteProtocolError, SecurityError
from openami.headend.keystore import KeyStore
from openami.log import get_logger
from openami.protocols.dlms.apdu import (
    Apdu,
    DataNotification,
    GeneralGloCiphering,
    GetResponseNormal,
    decode_apdu,
)
from openami.protocols.dlms.notification import (
    decode_event,
    decode_utility_entry,
    notification_kind,
)
from openami.protocols.dlms.profile import (
    ProfileEntry,
    decode_entries,
    decode_entry,
    decode_push_fast,
)
from openami.protocols.dlms.wrapper import (
    CLIENT_MANAGEMENT_WPORT,
    METER_MANAGEMENT_WPORT,
    decode_wrapper,
)
from openami.transport.memory import Datagram

__all__ = ["EventColumns", "Ingest", "ReadColumns"]

log = get_logger("headend.ingest")
_WPORTS = (METER_MANAGEMENT_WPORT, CLIENT_MANAGEMENT_WPORT)  # every datagram a meter sends us


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

    def add_utility(self, meter_id: int, time: int, status: int, gas_l: int, water_l: int) -> None:
        """Co-metered gas and water indexes at ``time`` (the end of an hour)."""
        self.meter_id += (meter_id, meter_id)
        self.channel += (Channel.GAS_INDEX, Channel.WATER_INDEX)
        self.interval_end += (time, time)
        self.value_wh += (gas_l, water_l)
        self.source += (ReadSource.PUSH, ReadSource.PUSH)
        self.status += (status, status)

    def add_utilities(
        self,
        meter_id: npt.NDArray[np.int64],
        time: npt.NDArray[np.int64],
        status: npt.NDArray[np.generic],
        gas_l: npt.NDArray[np.generic],
        water_l: npt.NDArray[np.generic],
    ) -> None:
        """``add_utility`` for many pushes at once (the batch path's columns)."""
        n = int(meter_id.size)
        self.meter_id += np.repeat(meter_id, 2).tolist()
        self.channel += [int(Channel.GAS_INDEX), int(Channel.WATER_INDEX)] * n
        self.interval_end += np.repeat(time, 2).tolist()
        self.value_wh += np.stack([gas_l, water_l], axis=1).astype(np.int64).ravel().tolist()
        self.source += [int(ReadSource.PUSH)] * (2 * n)
        self.status += np.repeat(status.astype(np.int64), 2).tolist()

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


@dataclass
class EventColumns:
    """Meter events accumulated since the last flush."""

    meter_id: list[int] = field(default_factory=list)
    time: list[int] = field(default_factory=list)
    code: list[int] = field(default_factory=list)
    value: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.meter_id)

    def take(self) -> EventBatch:
        batch = EventBatch(self.meter_id, self.time, self.code, self.value)
        self.meter_id, self.time, self.code, self.value = [], [], [], []
        return batch


ResponseHandler = Callable[[int, GetResponseNormal], list[ProfileEntry] | None]


class Ingest:
    """Turns meter datagrams into reads; ``on_response`` claims get-responses for collection."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self.reads = ReadColumns()
        self.events = EventColumns()
        self.accepted = Counter[str]()
        self.rejected = Counter[str]()
        self.on_response: ResponseHandler | None = None
        # any other answer (to a command): True when the handler claimed it
        self.on_answer: Callable[[int, Apdu], bool] | None = None
        self.decode_samples: list[str] = []  # the first reasons, for an operator to see

    def receive(self, datagram: Datagram) -> None:
        try:
            frame = decode_wrapper(datagram.payload)
            if (frame.source_wport, frame.destination_wport) != _WPORTS:
                # the wPorts are outside what the key authenticates: a frame not from a
                # meter's management logical device to our management client is not ours
                raise DecodeError(
                    f"wrapper from wPort {frame.source_wport} to {frame.destination_wport}"
                )
            outer = decode_apdu(frame.apdu)
            if not isinstance(outer, GeneralGloCiphering):
                raise SecurityError("clear-text APDU refused on Route A")
            meter, plain, newest = self.keys.open_fresh(outer.system_title, outer.ciphered_content)
            if newest and meter.address != datagram.source:
                # the key proved who sent it (and the counter that it is fresh): the meter
                # has a new communication unit, so requests go to its new address from now on
                self.accepted["address_changed"] += 1
                meter.address = datagram.source
        except SecurityError as exc:
            self.rejected["security"] += 1
            log.info("rejected datagram", extra={"fields": {"reason": str(exc)}})
            return
        except RemoteProtocolError as exc:
            self._refused(exc)
            return
        self.opened(meter.meter_id, plain)

    def opened(self, meter_id: int, plain: bytes) -> None:
        """Take the plaintext of an authenticated, fresh datagram from meter ``meter_id``."""
        try:
            fast = decode_push_fast(plain)
            if fast is not None:  # the common case, decoded in one step
                self.reads.add(meter_id, fast, ReadSource.PUSH)
                self.accepted["push"] += 1
                return
            apdu = decode_apdu(plain)
            if isinstance(apdu, DataNotification):
                self._notification(meter_id, apdu)
            elif (
                isinstance(apdu, GetResponseNormal)
                and self.on_response is not None
                and ((entries := self.on_response(meter_id, apdu)) is not None)
            ):
                for entry in entries:
                    self.reads.add(meter_id, entry, ReadSource.RECOLLECT)
                self.accepted["response"] += 1
            elif self.on_answer is not None and self.on_answer(meter_id, apdu):
                self.accepted["command_answer"] += 1
            elif isinstance(apdu, GetResponseNormal) or self.on_answer is not None:
                # an answer to a request already answered or given up (retries cross late
                # answers): verified, so not an attack, but nothing to read
                self.rejected["unsolicited"] += 1
            else:
                raise DecodeError(f"unexpected {type(apdu).__name__} from a meter")
        except SecurityError as exc:
            self.rejected["security"] += 1
            log.info("rejected datagram", extra={"fields": {"reason": str(exc)}})
        except RemoteProtocolError as exc:
            self._refused(exc)

    def _refused(self, exc: RemoteProtocolError) -> None:
        self.rejected["decode"] += 1
        if len(self.decode_samples) < 8:
            self.decode_samples.append(str(exc))
        log.info("rejected datagram", extra={"fields": {"reason": str(exc)}})

    def _notification(self, meter_id: int, apdu: DataNotification) -> None:
        kind = notification_kind(apdu.body)
        if kind == "interval":
            self.reads.add(meter_id, decode_entry(apdu.body), ReadSource.PUSH)
            self.accepted["push"] += 1
        elif kind == "utility":
            u = decode_utility_entry(apdu.body)
            self.reads.add_utility(meter_id, u.time, u.status, u.gas_l, u.water_l)
            self.accepted["utility"] += 1
        else:
            e = decode_event(apdu.body)
            self.events.meter_id.append(meter_id)
            self.events.time.append(e.time)
            self.events.code.append(e.code)
            self.events.value.append(e.value)
            self.accepted["event"] += 1


def entries_of(response: GetResponseNormal) -> list[ProfileEntry]:
    """The profile entries in a successful load-profile get-response."""
    if not hasattr(response.result, "type"):
        raise DecodeError(f"meter refused the read: {response.result!r}")
    return decode_entries(response.result)  # type: ignore[arg-type]
