"""ECHONET Lite frames, format 1 ("specified message format").

Layout: EHD1 (0x10), EHD2 (0x81), TID (2), SEOJ (3), DEOJ (3), ESV (1), OPC (1), then OPC
properties, each EPC (1), PDC (1) and PDC octets of EDT. The SetGet services (ESV 0x6E, 0x7E,
0x5E) carry two lists: OPCSet and its properties first, then OPCGet and its properties.

Format 2 (EHD2 0x82, "arbitrary message format") has no structure a generic node can act on,
so it is refused like any other unknown header. Decoding raises only ``DecodeError``; a frame
decodes to exactly one ``Frame`` and encodes back to the same octets.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from openami.errors import DecodeError, LocalProtocolError

__all__ = [
    "ECHONET_PORT",
    "EHD1",
    "EHD2_FORMAT1",
    "EHD2_FORMAT2",
    "EOJ",
    "ESV",
    "MULTICAST_IPV4",
    "MULTICAST_IPV6",
    "SETGET_ESVS",
    "Frame",
    "Property",
    "decode_frame",
    "encode_frame",
]

EHD1 = 0x10  # ECHONET Lite (the old ECHONET protocol used 0x80)
EHD2_FORMAT1 = 0x81
EHD2_FORMAT2 = 0x82
ECHONET_PORT = 3610
MULTICAST_IPV4 = "224.0.23.0"
MULTICAST_IPV6 = "ff02::1"

_HEADER_SIZE = 12  # EHD1 EHD2 TID(2) SEOJ(3) DEOJ(3) ESV OPC


class ESV(IntEnum):
    """ECHONET Lite service codes. 0x6x are requests, 0x7x responses and notifications,
    0x5x the "service not available" responses."""

    SETI = 0x60
    SETC = 0x61
    GET = 0x62
    INF_REQ = 0x63
    SETGET = 0x6E
    SET_RES = 0x71
    GET_RES = 0x72
    INF = 0x73
    INFC = 0x74
    INFC_RES = 0x7A
    SETGET_RES = 0x7E
    SETI_SNA = 0x50
    SETC_SNA = 0x51
    GET_SNA = 0x52
    INF_SNA = 0x53
    SETGET_SNA = 0x5E


SETGET_ESVS = frozenset({ESV.SETGET, ESV.SETGET_RES, ESV.SETGET_SNA})
_ESV_BY_CODE = {esv.value: esv for esv in ESV}


def _octet(value: int, what: str) -> None:
    if not 0 <= value <= 0xFF:
        raise LocalProtocolError(f"{what} {value} does not fit one octet")


@dataclass(frozen=True, slots=True)
class EOJ:
    """An ECHONET Lite object: class group, class and instance code (one octet each).
    Instance 0x00 in a DEOJ addresses every instance of the class."""

    class_group: int
    class_code: int
    instance: int

    def __post_init__(self) -> None:
        _octet(self.class_group, "class group code")
        _octet(self.class_code, "class code")
        _octet(self.instance, "instance code")

    @classmethod
    def from_bytes(cls, raw: bytes) -> EOJ:
        if len(raw) != 3:
            raise DecodeError(f"an EOJ is 3 octets, got {len(raw)}")
        return cls(raw[0], raw[1], raw[2])

    @classmethod
    def from_int(cls, value: int) -> EOJ:
        """``EOJ.from_int(0x028801)`` is the first low-voltage smart electric energy meter."""
        if not 0 <= value <= 0xFFFFFF:
            raise LocalProtocolError(f"EOJ 0x{value:X} does not fit 3 octets")
        return cls(value >> 16, (value >> 8) & 0xFF, value & 0xFF)

    def to_bytes(self) -> bytes:
        return bytes((self.class_group, self.class_code, self.instance))

    @property
    def code(self) -> int:
        """The 2-octet class (class group and class code), e.g. 0x0288."""
        return self.class_group << 8 | self.class_code

    def with_instance(self, instance: int) -> EOJ:
        return EOJ(self.class_group, self.class_code, instance)

    def __str__(self) -> str:
        return f"{self.class_group:02X}{self.class_code:02X}{self.instance:02X}"


@dataclass(frozen=True, slots=True)
class Property:
    """One processing target: EPC and its EDT (PDC is ``len(edt)``; a Get request and an
    accepted Set carry an empty EDT)."""

    epc: int
    edt: bytes = b""

    def __post_init__(self) -> None:
        _octet(self.epc, "EPC")
        if len(self.edt) > 0xFF:
            raise LocalProtocolError(
                f"EDT of EPC 0x{self.epc:02X} is {len(self.edt)} octets; PDC allows 255"
            )

    @property
    def pdc(self) -> int:
        return len(self.edt)


@dataclass(frozen=True, slots=True)
class Frame:
    """A format-1 frame. For the SetGet services ``set_properties`` is the OPCSet list and
    ``properties`` the OPCGet list; for every other service ``set_properties`` is empty."""

    tid: int
    seoj: EOJ
    deoj: EOJ
    esv: ESV
    properties: tuple[Property, ...] = ()
    set_properties: tuple[Property, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.tid <= 0xFFFF:
            raise LocalProtocolError(f"TID {self.tid} does not fit 2 octets")
        if self.set_properties and self.esv not in SETGET_ESVS:
            raise LocalProtocolError(f"only the SetGet services carry a Set list, not {self.esv}")
        for listed in (self.properties, self.set_properties):
            if len(listed) > 0xFF:
                raise LocalProtocolError(f"{len(listed)} properties; OPC allows 255")


def _encode_properties(properties: tuple[Property, ...]) -> bytes:
    out = bytearray((len(properties),))
    for prop in properties:
        out += bytes((prop.epc, len(prop.edt)))
        out += prop.edt
    return bytes(out)


def encode_frame(frame: Frame) -> bytes:
    head = bytes((EHD1, EHD2_FORMAT1)) + frame.tid.to_bytes(2, "big")
    head += frame.seoj.to_bytes() + frame.deoj.to_bytes() + bytes((frame.esv,))
    if frame.esv in SETGET_ESVS:
        return (
            head + _encode_properties(frame.set_properties) + _encode_properties(frame.properties)
        )
    return head + _encode_properties(frame.properties)


def _decode_properties(data: bytes, offset: int, label: str) -> tuple[tuple[Property, ...], int]:
    """Read an OPC octet at ``offset`` and that many properties; return them and the offset
    just past the last one."""
    if offset >= len(data):
        raise DecodeError(f"{label} missing: the frame ends at octet {len(data)}")
    count = data[offset]
    offset += 1
    properties = []
    for index in range(count):
        if offset + 2 > len(data):
            raise DecodeError(
                f"{label} is {count} but the frame ends inside property {index + 1} "
                f"(EPC and PDC need 2 octets, {len(data) - offset} remain)"
            )
        epc, pdc = data[offset], data[offset + 1]
        offset += 2
        if offset + pdc > len(data):
            raise DecodeError(
                f"PDC {pdc} of EPC 0x{epc:02X} overruns the frame: "
                f"{len(data) - offset} octets remain"
            )
        properties.append(Property(epc, bytes(data[offset : offset + pdc])))
        offset += pdc
    return tuple(properties), offset


def decode_frame(data: bytes) -> Frame:
    """Decode one ECHONET Lite frame that fills a whole datagram."""
    if len(data) < _HEADER_SIZE:
        raise DecodeError(
            f"ECHONET Lite frame truncated: the header needs 12 octets, got {len(data)}"
        )
    if data[0] != EHD1:
        raise DecodeError(f"EHD1 0x{data[0]:02X} is not 0x10 (ECHONET Lite)")
    if data[1] == EHD2_FORMAT2:
        raise DecodeError("EHD2 0x82: format 2 is not supported (only format 1, EHD2 0x81)")
    if data[1] != EHD2_FORMAT1:
        raise DecodeError(f"unknown EHD2 0x{data[1]:02X} (format 1 is 0x81)")
    esv = _ESV_BY_CODE.get(data[10])
    if esv is None:
        raise DecodeError(f"unknown ESV 0x{data[10]:02X}")
    tid = int.from_bytes(data[2:4], "big")
    seoj, deoj = EOJ.from_bytes(data[4:7]), EOJ.from_bytes(data[7:10])
    set_properties: tuple[Property, ...] = ()
    if esv in SETGET_ESVS:
        set_properties, offset = _decode_properties(data, 11, "OPCSet")
        properties, offset = _decode_properties(data, offset, "OPCGet")
    else:
        properties, offset = _decode_properties(data, 11, "OPC")
    if offset != len(data):
        raise DecodeError(f"{len(data) - offset} trailing octets after the last property")
    return Frame(tid, seoj, deoj, esv, properties, set_properties)
