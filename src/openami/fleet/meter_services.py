"""The meter objects that carry behaviour beyond reading a value: demand, firmware image
transfer, tariff calendar, a disconnect schedule, and key transfer.

Each builder returns a ``CosemObject`` whose methods do what the Blue Book method does, on
the simulated meter's state. Time is passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from openami.errors import SecurityError
from openami.fleet.fleet import Fleet
from openami.protocols.dlms import obis
from openami.protocols.dlms.axdr import BitString, Data, DataType
from openami.protocols.dlms.cosem.model import CosemObject
from openami.protocols.dlms.cosem_datetime import encode_datetime
from openami.protocols.dlms.security import unwrap_key
from openami.protocols.dlms.services import ActionResult, DataAccessResult, Selection

__all__ = [
    "KeyRing",
    "activity_calendar",
    "demand_registers",
    "disconnect_schedule",
    "image_transfer",
    "key_transfer",
]

JST = timezone(timedelta(hours=9))
UNIT_W = 27
IMAGE_BLOCK_SIZE = 192
# image_transfer_status values (Blue Book, class 18)
NOT_INITIATED, INITIATED, VERIFY_SUCCESSFUL, VERIFY_FAILED, ACTIVATE_SUCCESSFUL = 0, 1, 3, 4, 6


def _ln(text: str) -> bytes:
    return obis.ObisCode.parse(text).to_bytes()


def _scaler_unit(scaler: int, unit: int) -> Data:
    return Data(DataType.STRUCTURE, (Data(DataType.INTEGER, scaler), Data(DataType.ENUM, unit)))


def _time(moment: datetime) -> Data:
    return Data(DataType.OCTET_STRING, encode_datetime(moment.astimezone(JST)))


def demand_registers(
    fleet: Fleet, index: int, closed: Callable[[], int], now: Callable[[], datetime]
) -> list[CosemObject]:
    # closed(): the number of the last interval closed at now() (its END is number * step)
    """Class 5 average import demand (1.0.1.4.0.255, per interval) and class 4 maximum demand
    since the start of the month (1.0.1.6.0.255, with the time it was reached)."""
    step = fleet.step_s

    def average(k: int) -> int:
        h = fleet.history(index, k, k, now=k)
        return int(h.import_wh[0]) * 3600 // step if h.numbers.size else 0

    def interval_start(k: int) -> datetime:
        return datetime.fromtimestamp(k * step - step, tz=UTC)

    demand = CosemObject(
        5,
        _ln("1.0.1.4.0.255"),
        values={
            4: _scaler_unit(0, UNIT_W),
            5: Data(DataType.UNSIGNED, 0),
            8: Data(DataType.DOUBLE_LONG_UNSIGNED, step),
            9: Data(DataType.LONG_UNSIGNED, 1),
        },
        readers={
            # the running interval's average is estimated from the last closed one
            2: lambda _s: Data(DataType.DOUBLE_LONG_UNSIGNED, average(closed())),
            3: lambda _s: Data(DataType.DOUBLE_LONG_UNSIGNED, average(closed())),
            6: lambda _s: _time(interval_start(closed()) + timedelta(seconds=step)),
            7: lambda _s: _time(now()),
        },
    )

    def maximum(_s: Selection | None) -> tuple[int, int]:
        t = closed()
        local = datetime.fromtimestamp(t * step, tz=UTC).astimezone(JST)
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        first = int(month_start.timestamp()) // step + 1
        window = fleet.history(index, first, t, now=t)
        if window.numbers.size == 0:
            return 0, -1
        k = int(np.argmax(window.import_wh))
        return int(window.import_wh[k]) * 3600 // step, int(window.numbers[k])

    def max_value(s: Selection | None) -> Data | DataAccessResult:
        return Data(DataType.DOUBLE_LONG_UNSIGNED, maximum(s)[0])

    def max_time(s: Selection | None) -> Data | DataAccessResult:
        k = maximum(s)[1]
        when = datetime.fromtimestamp(k * step, tz=UTC) if k >= 0 else now()
        return _time(when)

    maximum_demand = CosemObject(
        4,
        _ln("1.0.1.6.0.255"),
        values={3: _scaler_unit(0, UNIT_W), 4: Data(DataType.UNSIGNED, 0)},
        readers={2: max_value, 5: max_time},
    )
    return [demand, maximum_demand]


@dataclass
class _Image:
    blocks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    identifier: bytes = b""
    status: int = NOT_INITIATED
    active: bytes = b""


def image_transfer() -> CosemObject:
    """Class 18: firmware arrives in blocks, is verified (all blocks present, and the SHA-256
    named in the identifier "name:hex-digest" matches), then activated. The simulated meter
    keeps the image in memory."""
    image = _Image()
    obj = CosemObject(18, _ln("0.0.44.0.0.255"))

    def refresh() -> None:
        total = -(-image.size // IMAGE_BLOCK_SIZE)
        missing = next((n for n in range(total) if n not in image.blocks), total)
        bits = bytearray((total + 7) // 8)
        for n in image.blocks:
            if n < total:
                bits[n // 8] |= 0x80 >> (n % 8)
        obj.values.update(
            {
                2: Data(DataType.DOUBLE_LONG_UNSIGNED, IMAGE_BLOCK_SIZE),
                3: Data(DataType.BIT_STRING, BitString(total, bytes(bits))),
                4: Data(DataType.DOUBLE_LONG_UNSIGNED, missing),
                5: Data(DataType.BOOLEAN, True),
                6: Data(DataType.ENUM, image.status),
                7: Data(DataType.ARRAY, ()),
            }
        )

    def initiate(p: Data | None) -> tuple[ActionResult, Data | None]:
        # image_transfer_initiate: structure {image_identifier octet-string, image_size u32}
        if p is None or p.type is not DataType.STRUCTURE or len(p.value) != 2:
            return ActionResult.TYPE_UNMATCHED, None
        identifier, size = p.value
        if (
            identifier.type is not DataType.OCTET_STRING
            or size.type is not DataType.DOUBLE_LONG_UNSIGNED
        ):
            return ActionResult.TYPE_UNMATCHED, None
        image.blocks, image.size, image.identifier = {}, size.value, identifier.value
        image.status = INITIATED
        refresh()
        return ActionResult.SUCCESS, None

    def block(p: Data | None) -> tuple[ActionResult, Data | None]:
        # image_block_transfer: structure {image_block_number u32, image_block_value octets}
        if image.status != INITIATED or p is None or p.type is not DataType.STRUCTURE:
            return ActionResult.TEMPORARY_FAILURE, None
        if len(p.value) != 2:
            return ActionResult.TYPE_UNMATCHED, None
        number, value = p.value
        if value.type is not DataType.OCTET_STRING or len(value.value) > IMAGE_BLOCK_SIZE:
            return ActionResult.TYPE_UNMATCHED, None
        image.blocks[int(number.value)] = bytes(value.value)
        refresh()
        return ActionResult.SUCCESS, None

    def verify(_p: Data | None) -> tuple[ActionResult, Data | None]:
        data = b"".join(image.blocks[n] for n in sorted(image.blocks))
        _, _, digest = image.identifier.partition(b":")
        ok = len(data) == image.size and hashlib.sha256(data).hexdigest().encode() == digest
        image.status = VERIFY_SUCCESSFUL if ok else VERIFY_FAILED
        refresh()
        return (ActionResult.SUCCESS if ok else ActionResult.OTHER_REASON), None

    def activate(_p: Data | None) -> tuple[ActionResult, Data | None]:
        if image.status != VERIFY_SUCCESSFUL:
            return ActionResult.TEMPORARY_FAILURE, None
        image.status, image.active = ACTIVATE_SUCCESSFUL, image.identifier
        refresh()
        return ActionResult.SUCCESS, None

    obj.invokers = {1: initiate, 2: block, 3: verify, 4: activate}
    refresh()
    return obj


def activity_calendar() -> CosemObject:
    """Class 20: a time-of-use calendar; activate_passive_calendar makes the passive one
    active (a utility loads a new tariff calendar as passive, then switches)."""
    day_profile = Data(
        DataType.ARRAY,
        (
            Data(
                DataType.STRUCTURE,
                (
                    Data(DataType.UNSIGNED, 1),
                    Data(
                        DataType.ARRAY,
                        (
                            Data(
                                DataType.STRUCTURE,
                                (
                                    Data(DataType.OCTET_STRING, bytes((0, 0, 0, 0))),
                                    Data(DataType.OCTET_STRING, _ln("0.0.10.0.100.255")),
                                    Data(DataType.LONG_UNSIGNED, 1),
                                ),
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )
    season = Data(
        DataType.ARRAY,
        (
            Data(
                DataType.STRUCTURE,
                (
                    Data(DataType.OCTET_STRING, b"all-year"),
                    Data(
                        DataType.OCTET_STRING, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"
                    ),
                    Data(DataType.OCTET_STRING, b"week"),
                ),
            ),
        ),
    )
    week = Data(
        DataType.ARRAY,
        (
            Data(
                DataType.STRUCTURE,
                (
                    Data(DataType.OCTET_STRING, b"week"),
                    *(Data(DataType.UNSIGNED, 1) for _ in range(7)),
                ),
            ),
        ),
    )
    obj = CosemObject(
        20,
        _ln("0.0.13.0.0.255"),
        values={
            2: Data(DataType.OCTET_STRING, b"flat"),
            3: season,
            4: week,
            5: day_profile,
            6: Data(DataType.OCTET_STRING, b"flat"),
            7: season,
            8: week,
            9: day_profile,
            10: Data(DataType.OCTET_STRING, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"),
        },
    )

    def activate(_p: Data | None) -> tuple[ActionResult, Data | None]:
        for active, passive in ((2, 6), (3, 7), (4, 8), (5, 9)):
            obj.values[active] = obj.values[passive]
        return ActionResult.SUCCESS, None

    obj.invokers = {1: activate}
    return obj


def disconnect_schedule() -> CosemObject:
    """Class 22: a single action schedule that would run the disconnect script; empty until a
    utility sets an execution time."""
    return CosemObject(
        22,
        _ln("0.0.15.0.1.255"),
        values={
            2: Data(
                DataType.STRUCTURE,
                (
                    Data(DataType.OCTET_STRING, _ln("0.0.10.0.106.255")),
                    Data(DataType.LONG_UNSIGNED, 1),
                ),
            ),
            3: Data(DataType.ENUM, 1),  # size 1, wildcard not allowed
            4: Data(DataType.ARRAY, ()),
        },
    )


class KeyRing:
    """A meter's current keys; key transfer replaces them for the next association."""

    def __init__(self, ek: bytes, ak: bytes, kek: bytes) -> None:
        self.ek, self.ak, self.kek = ek, ak, kek
        self.changes = 0


def key_transfer(ring: KeyRing, security_setup: CosemObject) -> None:
    """Security setup method 2 (global_key_transfer): an array of {key_id enum, key_wrapped
    octet-string}; key_id 0 is the global unicast encryption key, 2 the authentication key.
    Keys are unwrapped with the meter's master key (KEK); a wrong wrap changes nothing."""

    def transfer(p: Data | None) -> tuple[ActionResult, Data | None]:
        if p is None or p.type is not DataType.ARRAY or not p.value:
            return ActionResult.TYPE_UNMATCHED, None
        new: dict[int, bytes] = {}
        for item in p.value:
            if item.type is not DataType.STRUCTURE or len(item.value) != 2:
                return ActionResult.TYPE_UNMATCHED, None
            key_id, wrapped = item.value
            if key_id.value not in (0, 2) or wrapped.type is not DataType.OCTET_STRING:
                return ActionResult.TYPE_UNMATCHED, None
            try:
                new[int(key_id.value)] = unwrap_key(ring.kek, bytes(wrapped.value))
            except SecurityError:
                return ActionResult.OTHER_REASON, None
        if any(len(key) != 16 for key in new.values()):
            return ActionResult.TYPE_UNMATCHED, None
        ring.ek = new.get(0, ring.ek)
        ring.ak = new.get(2, ring.ak)
        ring.changes += 1
        return ActionResult.SUCCESS, None

    security_setup.invokers = {2: transfer}
