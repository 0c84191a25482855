"""Property maps (EPC 0x9D status-change announcement, 0x9E Set, 0x9F Get).

Two description forms (Appendix, annex 1 "property map description format"):

* fewer than 16 properties: the count, then each EPC as one octet;
* 16 or more: 17 octets, the count and then a 16-octet bitmap. The EPC 0xXY is bit (X - 8) of
  octet 1 + Y: the low nibble picks the octet, the high nibble (8..F) the bit, bit 0 being the
  least significant. So octet 1 bit 0 is 0x80, octet 1 bit 7 is 0xF0, octet 16 bit 7 is 0xFF.

The bitmap layout was checked against a low-voltage smart meter's captured Get property map
(25 properties, see the tests) and against the layout the specification's figure describes.
Every EPC is 0x80..0xFF: EPCs below 0x80 do not exist, and the bitmap cannot express them.
"""

from __future__ import annotations

from collections.abc import Iterable

from openami.errors import DecodeError, LocalProtocolError

__all__ = ["BITMAP_THRESHOLD", "decode_property_map", "encode_property_map"]

BITMAP_THRESHOLD = 16  # from this many properties on, the 17-octet bitmap form is used


def encode_property_map(epcs: Iterable[int]) -> bytes:
    """Encode a set of EPCs in the form the count calls for (list below 16, bitmap from 16)."""
    chosen = sorted(set(epcs))
    for epc in chosen:
        if not 0x80 <= epc <= 0xFF:
            raise LocalProtocolError(f"EPC 0x{epc:X} cannot be in a property map (0x80..0xFF)")
    if len(chosen) < BITMAP_THRESHOLD:
        return bytes((len(chosen), *chosen))
    bitmap = bytearray(17)
    bitmap[0] = len(chosen)
    for epc in chosen:
        bitmap[1 + (epc & 0x0F)] |= 1 << ((epc >> 4) - 8)
    return bytes(bitmap)


def decode_property_map(edt: bytes) -> frozenset[int]:
    """Decode either form; a count that disagrees with the EPCs listed is refused."""
    if not edt:
        raise DecodeError("property map is empty: it needs at least the count octet")
    count = edt[0]
    if count < BITMAP_THRESHOLD:
        if len(edt) != 1 + count:
            raise DecodeError(
                f"property map lists {count} EPCs in {len(edt)} octets; the list form takes "
                f"{1 + count}"
            )
        listed = edt[1:]
        low = [epc for epc in listed if epc < 0x80]
        if low:
            raise DecodeError(f"property map lists EPC 0x{low[0]:02X}; EPCs start at 0x80")
        epcs = frozenset(listed)
        if len(epcs) != count:
            raise DecodeError(f"property map lists {count} EPCs but only {len(epcs)} differ")
        return epcs
    if len(edt) != 17:
        raise DecodeError(
            f"property map of {count} EPCs must use the 17-octet bitmap form, got {len(edt)} octets"
        )
    epcs = frozenset(
        0x80 + (bit << 4) + low
        for low, octet in enumerate(edt[1:])
        for bit in range(8)
        if octet >> bit & 1
    )
    if len(epcs) != count:
        raise DecodeError(f"property map count {count} but the bitmap sets {len(epcs)} bits")
    return epcs
