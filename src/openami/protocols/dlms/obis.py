"""OBIS codes (IEC 62056-6-1) and the ones this project's meters expose."""

from __future__ import annotations

from typing import NamedTuple

from openami.errors import DecodeError

__all__ = ["ObisCode"]


class ObisCode(NamedTuple):
    a: int
    b: int
    c: int
    d: int
    e: int
    f: int

    @classmethod
    def parse(cls, text: str) -> ObisCode:
        """Parse ``"1.0.1.8.0.255"`` (also ``1-0:1.8.0*255``)."""
        parts = text.replace("-", ".").replace(":", ".").replace("*", ".").split(".")
        if len(parts) != 6 or not all(p.isdigit() and int(p) <= 255 for p in parts):
            raise DecodeError(f"not an OBIS code: {text!r}")
        a, b, c, d, e, f = (int(p) for p in parts)
        return cls(a, b, c, d, e, f)

    @classmethod
    def from_bytes(cls, raw: bytes) -> ObisCode:
        if len(raw) != 6:
            raise DecodeError(f"OBIS code needs 6 octets, got {len(raw)}")
        a, b, c, d, e, f = raw
        return cls(a, b, c, d, e, f)

    def to_bytes(self) -> bytes:
        return bytes(self)

    def __str__(self) -> str:
        return ".".join(str(x) for x in self)


CLOCK = ObisCode.parse("0.0.1.0.0.255")
ACTIVE_ENERGY_IMPORT = ObisCode.parse("1.0.1.8.0.255")  # cumulative +A register
ACTIVE_ENERGY_EXPORT = ObisCode.parse("1.0.2.8.0.255")  # cumulative -A register
INTERVAL_ENERGY_IMPORT = ObisCode.parse("1.0.1.29.0.255")  # +A energy over the last period
INTERVAL_ENERGY_EXPORT = ObisCode.parse("1.0.2.29.0.255")  # -A energy over the last period
LOAD_PROFILE = ObisCode.parse("1.0.99.1.0.255")
AMR_PROFILE_STATUS = ObisCode.parse("0.0.96.10.1.255")
PUSH_SETUP_INTERVAL = ObisCode.parse("0.0.25.9.0.255")
