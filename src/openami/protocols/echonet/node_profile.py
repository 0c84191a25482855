"""The node profile object (class 0x0EF0, instance 0x01 "general node").

Every ECHONET Lite node has one; it tells a controller which device objects the node holds
(0xD3..0xD7) and announces them at start-up (INF of 0xD5 "instance list notification").
Formats follow ECHONET Lite specification part 2, chapter 6, as its Machine Readable Appendix
states them:

* 0x82 version: major, minor, a bitmap of the supported message formats (bit 0: format 1),
  0x00. ECHONET Lite 1.13 with format 1 is 01 0D 01 00.
* 0x83 identification number: 0xFE, the 3-octet manufacturer code, 13 unique octets.
* 0xD3 number of self-node instances: 3 octets, excluding the node profile itself. (The MRA's
  data block says 2 octets while its note and the specification say 3; 3 is used.)
* 0xD4 number of self-node classes: 2 octets, including the node profile class.
* 0xD5 / 0xD6 instance lists: a count (at most 84) then 3-octet EOJs of the device objects.
* 0xD7 self-node class list S: a count (at most 8) then 2-octet class codes, excluding the
  node profile class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet import edt
from openami.protocols.echonet.frame import EOJ
from openami.protocols.echonet.objects import Access, EchonetObject, ObjectClass, prop

__all__ = [
    "NODE_PROFILE",
    "NODE_PROFILE_CLASS",
    "IdentificationNumber",
    "NodeProfile",
    "Version",
]

NODE_PROFILE = EOJ(0x0E, 0xF0, 0x01)
MAX_INSTANCES = 84  # what one 253-octet instance list holds
MAX_CLASSES = 8  # what the 17-octet class list S holds

GET, SET, ANNO = Access.GET, Access.SET, Access.ANNO


@dataclass(frozen=True, slots=True)
class Version:
    """0x82 of the node profile: the ECHONET Lite version the node implements."""

    major: int
    minor: int
    formats: int = 0x01  # bitmap: bit 0 format 1 (specified), bit 1 format 2 (arbitrary)


@dataclass(frozen=True, slots=True)
class IdentificationNumber:
    """0x83: the node's unique identifier under its manufacturer code."""

    manufacturer_code: int
    unique_id: bytes  # 13 octets


def _version_codec() -> edt.Codec:
    def decode(data: bytes) -> Version:
        edt.expect_size(data, 4, "version information")
        if data[3]:
            raise DecodeError(f"version information ends 0x{data[3]:02X}, not 0x00")
        return Version(data[0], data[1], data[2])

    def encode(value: object) -> bytes:
        if not isinstance(value, Version) or not all(
            0 <= part <= 0xFF for part in (value.major, value.minor, value.formats)
        ):
            raise LocalProtocolError(f"not a Version: {value!r}")
        return bytes((value.major, value.minor, value.formats, 0))

    return edt.Codec(decode, encode)


def _identification_codec() -> edt.Codec:
    def decode(data: bytes) -> IdentificationNumber:
        edt.expect_size(data, 17, "identification number")
        if data[0] != 0xFE:
            raise DecodeError(f"identification number starts 0x{data[0]:02X}, not 0xFE")
        return IdentificationNumber(int.from_bytes(data[1:4], "big"), bytes(data[4:]))

    def encode(value: object) -> bytes:
        if (
            not isinstance(value, IdentificationNumber)
            or not 0 <= value.manufacturer_code <= 0xFFFFFF
            or len(value.unique_id) != 13
        ):
            raise LocalProtocolError(f"not an identification number: {value!r}")
        return b"\xfe" + value.manufacturer_code.to_bytes(3, "big") + value.unique_id

    return edt.Codec(decode, encode)


def _counted_list(item_size: int, most: int, what: str) -> edt.Codec:
    """A count octet then that many items of ``item_size`` octets: EOJs (3) or classes (2)."""

    def decode(data: bytes) -> tuple[Any, ...]:
        if not data or data[0] > most or len(data) != 1 + data[0] * item_size:
            raise DecodeError(f"{what}: count and length disagree ({data.hex()})")
        items = [data[1 + i : 1 + i + item_size] for i in range(0, data[0] * item_size, item_size)]
        if item_size == 3:
            return tuple(EOJ.from_bytes(item) for item in items)
        return tuple(int.from_bytes(item, "big") for item in items)

    def encode(value: object) -> bytes:
        if not isinstance(value, tuple) or len(value) > most:
            raise LocalProtocolError(f"{what} holds at most {most} entries: {value!r}")
        out = bytearray((len(value),))
        for item in value:
            if isinstance(item, EOJ) and item_size == 3:
                out += item.to_bytes()
            else:
                out += edt.require_int(item, what).to_bytes(item_size, "big")
        return bytes(out)

    return edt.Codec(decode, encode)


_INSTANCE_LIST = _counted_list(3, MAX_INSTANCES, "instance list")
_CLASS_LIST = _counted_list(2, MAX_CLASSES, "class list")

NODE_PROFILE_CLASS = ObjectClass(
    0x0EF0,
    "node profile",
    (
        prop(0x80, "operating status", GET | ANNO, edt.state({0x30: True, 0x31: False}), 1),
        prop(0x82, "version information", GET, _version_codec(), 4),
        prop(0x83, "identification number", GET, _identification_codec(), 17),
        prop(0x8A, "manufacturer code", GET, edt.unsigned(3), 3),
        prop(0x9D, "status change announcement property map", GET, edt.property_map(), (1, 17)),
        prop(0x9E, "Set property map", GET, edt.property_map(), (1, 17)),
        prop(0x9F, "Get property map", GET, edt.property_map(), (1, 17)),
        prop(0xD3, "number of self-node instances", GET, edt.unsigned(3), 3),
        prop(0xD4, "number of self-node classes", GET, edt.unsigned(2), 2),
        prop(0xD5, "instance list notification", ANNO, _INSTANCE_LIST, (1, 253)),
        prop(0xD6, "self-node instance list S", GET, _INSTANCE_LIST, (1, 253)),
        prop(0xD7, "self-node class list S", GET, _CLASS_LIST, (1, 17)),
    ),
)


class NodeProfile(EchonetObject):
    klass = NODE_PROFILE_CLASS

    def __init__(
        self,
        devices: Sequence[EOJ],
        *,
        manufacturer_code: int,
        unique_id: bytes = bytes(13),
        version: Version = Version(1, 13),
    ) -> None:
        super().__init__(NODE_PROFILE)
        if len(devices) > MAX_INSTANCES:
            raise LocalProtocolError(f"{len(devices)} device objects; one node lists at most 84")
        classes = tuple(dict.fromkeys(device.code for device in devices))
        if len(classes) > MAX_CLASSES:
            raise LocalProtocolError(f"{len(classes)} device classes; class list S holds 8")
        self.devices = tuple(devices)
        self.classes = classes
        self.identification = IdentificationNumber(manufacturer_code, unique_id)
        self.version = version
        # Encode once so a bad manufacturer code or unique id fails here, not on a Get.
        self.read(0x83)

    def value(self, epc: int) -> Any:
        return {
            0x80: True,  # the node is running
            0x82: self.version,
            0x83: self.identification,
            0x8A: self.identification.manufacturer_code,
            0xD3: len(self.devices),
            0xD4: len(self.classes) + 1,  # the node profile class counts here
            0xD5: self.devices,
            0xD6: self.devices,
            0xD7: self.classes,
        }[epc]
