"""IEC 62056-4-7 wrapper: version (1), source wPort, destination wPort, length, APDU."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from openami.errors import DecodeError, LocalProtocolError

__all__ = [
    "WRAPPER_VERSION",
    "WrapperFrame",
    "WrapperStreamDecoder",
    "decode_wrapper",
    "encode_wrapper",
]

WRAPPER_VERSION = 0x0001
_HEADER = struct.Struct(">HHHH")

CLIENT_MANAGEMENT_WPORT = 0x01  # the head-end's management client
METER_MANAGEMENT_WPORT = 0x01  # the meter's management logical device
DLMS_PORT = 4059


@dataclass(frozen=True, slots=True)
class WrapperFrame:
    source_wport: int
    destination_wport: int
    apdu: bytes


def encode_wrapper(frame: WrapperFrame) -> bytes:
    if len(frame.apdu) > 0xFFFF:
        raise LocalProtocolError(f"APDU of {len(frame.apdu)} octets does not fit a wrapper")
    return (
        _HEADER.pack(WRAPPER_VERSION, frame.source_wport, frame.destination_wport, len(frame.apdu))
        + frame.apdu
    )


def decode_wrapper(datagram: bytes) -> WrapperFrame:
    """Decode one wrapper frame that fills a whole datagram."""
    if len(datagram) < _HEADER.size:
        raise DecodeError(f"wrapper header needs 8 octets, got {len(datagram)}")
    version, source, destination, length = _HEADER.unpack_from(datagram)
    if version != WRAPPER_VERSION:
        raise DecodeError(f"wrapper version {version} is not 1")
    if length != len(datagram) - _HEADER.size:
        raise DecodeError(
            f"wrapper length field {length} but {len(datagram) - _HEADER.size} octets follow"
        )
    return WrapperFrame(source, destination, bytes(datagram[_HEADER.size :]))


class WrapperStreamDecoder:
    """Finds wrapper frames in a TCP byte stream (sans-IO): ``feed`` bytes as they arrive,
    get back every frame completed so far. A bad header raises ``DecodeError``: a stream that
    lost its framing cannot be resynchronised, so the connection must be closed."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[WrapperFrame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= _HEADER.size:
            version, source, destination, length = _HEADER.unpack_from(self._buffer)
            if version != WRAPPER_VERSION:
                raise DecodeError(f"wrapper version {version} is not 1; stream out of step")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append(
                WrapperFrame(source, destination, bytes(self._buffer[_HEADER.size : end]))
            )
            del self._buffer[:end]
        return frames

    @property
    def buffered(self) -> int:
        return len(self._buffer)
