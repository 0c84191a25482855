"""ECHONET Lite objects as declarative property tables.

A class is a table of ``PropertySpec`` rows: EPC, name, access rule (Get, Set, status-change
announcement), EDT size and the codec. The base ``EchonetObject`` walks the table to serve
Get, Set and INF_REQ and to build its own property maps (0x9D/0x9E/0x9F), so a subclass only
says where each value comes from (``value``) and what a Set does (``store``).

``DEVICE_SUPERCLASS`` holds the device object super class properties that openami's devices
carry, as the Appendix (Detailed Requirements for ECHONET Device Objects) and its Machine
Readable Appendix define them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Flag, auto
from typing import Any, ClassVar

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet import edt
from openami.protocols.echonet.frame import EOJ

__all__ = [
    "DEVICE_SUPERCLASS",
    "Access",
    "EchonetObject",
    "ObjectClass",
    "PropertySpec",
    "prop",
]


class Access(Flag):
    GET = auto()
    SET = auto()
    ANNO = auto()  # announced at status change: listed in the 0x9D map


GET, SET, ANNO = Access.GET, Access.SET, Access.ANNO


@dataclass(frozen=True, slots=True)
class PropertySpec:
    epc: int
    name: str
    access: Access
    codec: edt.Codec
    min_size: int
    max_size: int

    def decode(self, data: bytes) -> Any:
        if not self.min_size <= len(data) <= self.max_size:
            raise DecodeError(
                f"EPC 0x{self.epc:02X} ({self.name}) takes {self._sizes()} octets, got {len(data)}"
            )
        return self.codec.decode(data)

    def encode(self, value: Any) -> bytes:
        data = self.codec.encode(value)
        if not self.min_size <= len(data) <= self.max_size:
            raise LocalProtocolError(
                f"EPC 0x{self.epc:02X} ({self.name}) encoded to {len(data)} octets, "
                f"not {self._sizes()}"
            )
        return data

    def _sizes(self) -> str:
        if self.min_size == self.max_size:
            return str(self.min_size)
        return f"{self.min_size}..{self.max_size}"


def prop(
    epc: int, name: str, access: Access, codec: edt.Codec, size: int | tuple[int, int]
) -> PropertySpec:
    low, high = (size, size) if isinstance(size, int) else size
    return PropertySpec(epc, name, access, codec, low, high)


# The property map EPCs and the access each lists.
_MAPS = {0x9D: ANNO, 0x9E: SET, 0x9F: GET}


@dataclass(frozen=True)
class ObjectClass:
    code: int  # class group and class code, e.g. 0x0288
    name: str
    properties: tuple[PropertySpec, ...]
    _by_epc: Mapping[int, PropertySpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_epc = {spec.epc: spec for spec in self.properties}
        if len(by_epc) != len(self.properties):
            raise LocalProtocolError(f"{self.name}: an EPC is listed twice")
        object.__setattr__(self, "_by_epc", by_epc)

    def spec(self, epc: int) -> PropertySpec | None:
        return self._by_epc.get(epc)

    def epcs(self, access: Access) -> frozenset[int]:
        """The EPCs whose access includes ``access`` (what the property maps list)."""
        return frozenset(spec.epc for spec in self.properties if access & spec.access)


class EchonetObject(ABC):
    """One object instance of a node. Subclasses set ``klass`` and implement ``value``."""

    klass: ClassVar[ObjectClass]

    def __init__(self, eoj: EOJ) -> None:
        if eoj.code != self.klass.code:
            raise LocalProtocolError(f"EOJ {eoj} is not of class 0x{self.klass.code:04X}")
        if eoj.instance == 0:
            raise LocalProtocolError("instance 0x00 addresses all instances; use 0x01..0x7F")
        self.eoj = eoj

    @abstractmethod
    def value(self, epc: int) -> Any:
        """The current value of a property of the table (the maps are answered here)."""

    def store(self, epc: int, value: Any) -> bool:
        """Apply a decoded Set; return False to refuse it. Nothing is settable by default."""
        return False

    def read(self, epc: int, *, announce: bool = False) -> bytes | None:
        """The EDT of ``epc`` for a Get (or, with ``announce``, for an INF_REQ or INF, which
        may also name announce-only properties); None if the object refuses."""
        spec = self.klass.spec(epc)
        allowed = GET | ANNO if announce else GET
        if spec is None or not spec.access & allowed:
            return None
        current = self.klass.epcs(_MAPS[epc]) if epc in _MAPS else self.value(epc)
        return spec.encode(current)

    def write(self, epc: int, data: bytes) -> bool:
        """Apply a Set of ``epc``; False (refused) for an unknown, read-only or bad value."""
        spec = self.klass.spec(epc)
        if spec is None or SET not in spec.access:
            return False
        try:
            decoded = spec.decode(data)
        except DecodeError:
            return False
        return self.store(epc, decoded)


def _check_location(data: bytes) -> None:
    # One octet (a location code bitmap), or 17 octets starting 0x01 (Appendix release C on).
    if len(data) == 17 and data[0] != 0x01:
        raise DecodeError("a 17-octet installation location starts with 0x01")
    if len(data) not in (1, 17):
        raise DecodeError(f"installation location is 1 or 17 octets, got {len(data)}")


def _check_release(data: bytes) -> None:
    # Octets 1, 2 and 4 are 0x00; octet 3 is the Appendix release letter in ASCII.
    edt.expect_size(data, 4, "standard version information")
    if data[0] or data[1] or data[3] or not 0x41 <= data[2] <= 0x7A:
        raise DecodeError(f"standard version information {data.hex()} is not 00 00 <release> 00")


def _release_codec() -> edt.Codec:
    checked = edt.raw(_check_release)

    def decode(data: bytes) -> str:
        return chr(checked.decode(data)[2])

    def encode(value: object) -> bytes:
        if not isinstance(value, str) or len(value) != 1:
            raise LocalProtocolError(f"a release is one letter, got {value!r}")
        return checked.encode(bytes((0, 0, ord(value), 0)))

    return edt.Codec(decode, encode)


OPERATION_STATUS = edt.state({0x30: True, 0x31: False})
FAULT_STATUS = edt.state({0x41: True, 0x42: False})

DEVICE_SUPERCLASS = (
    prop(0x80, "operation status", GET | ANNO, OPERATION_STATUS, 1),
    prop(0x81, "installation location", GET | SET | ANNO, edt.raw(_check_location), (1, 17)),
    prop(0x82, "standard version information", GET, _release_codec(), 4),
    prop(0x88, "fault status", GET | ANNO, FAULT_STATUS, 1),
    prop(0x8A, "manufacturer code", GET, edt.unsigned(3), 3),
    prop(0x8D, "production number", GET, edt.text(12), 12),
    prop(0x97, "current time setting", GET, edt.time_of_day(), 2),
    prop(0x98, "current date setting", GET, edt.calendar_date(), 4),
    prop(0x9D, "status change announcement property map", GET, edt.property_map(), (1, 17)),
    prop(0x9E, "Set property map", GET, edt.property_map(), (1, 17)),
    prop(0x9F, "Get property map", GET, edt.property_map(), (1, 17)),
)
