"""The fixed byte layout of openami meters' pushes, as NumPy record types.

Every interval push is the same 80 octets; so are the co-metering pushes at 70. Laid out as
records, a batch of them is built (fleet) or taken apart (head-end) column by column instead
of one datagram at a time. What the layout fixes:

    4-7 wrapper (8) | general-glo tag 0xDB, title length 8, system title (10)
    | content length (1) | security control 0x30, invocation counter (5)
    | ciphertext of the data-notification | 12-octet GCM tag

and the data-notification plaintext: tag 0x0F, invoke id, no date-time, then a structure of
the clock (octet-string of 12), the AMR status (unsigned) and double-long-unsigned values.
"""

from __future__ import annotations

import numpy as np

from openami.protocols.dlms.security import SC_AUTHENTICATED_ENCRYPTED, TAG_LEN
from openami.protocols.dlms.wrapper import CLIENT_MANAGEMENT_WPORT, METER_MANAGEMENT_WPORT

__all__ = [
    "CIPHER_AT",
    "COUNTER_AT",
    "INTERVAL_PLAIN",
    "TITLE_AT",
    "UTILITY_PLAIN",
    "frame_prefix",
    "frame_size",
    "plain_layout",
]

# data-notification header and the entry's first two values (clock, AMR status), common to
# the interval and co-metering pushes; each then appends its own double-long-unsigned values
_PLAIN_HEAD: list[tuple[str, str]] = [
    ("tag", "u1"),
    ("invoke", ">u4"),
    ("no_time", "u1"),
    ("structure", "u1"),
    ("count", "u1"),
    ("octets", "u1"),
    ("size", "u1"),
    ("clock", "S12"),
    ("t_status", "u1"),
    ("status", "u1"),
]


def plain_layout(*values: str) -> np.dtype[np.void]:
    """The plaintext layout of a push whose entry ends with ``values`` (each a tagged
    double-long-unsigned: a ``t_<name>`` tag octet, then the big-endian value)."""
    tail = [field for name in values for field in ((f"t_{name}", "u1"), (name, ">u4"))]
    return np.dtype(_PLAIN_HEAD + tail)


INTERVAL_PLAIN = plain_layout("imp_reg", "exp_reg", "imp", "exp")
UTILITY_PLAIN = plain_layout("gas", "water")

TITLE_AT = 10  # system title, 8 octets
COUNTER_AT = 20  # invocation counter, 4 octets big-endian
CIPHER_AT = 24  # ciphertext, then the tag


def frame_size(plain_size: int) -> int:
    """Octets of the datagram that carries ``plain_size`` octets of plaintext."""
    return CIPHER_AT + plain_size + TAG_LEN


def frame_prefix(plain_size: int) -> bytes:
    """The first 10 octets every such datagram starts with (wrapper header, glo tag, title
    length), then octets 18..19 (content length, security control) as the last two."""
    apdu = frame_size(plain_size) - 8
    head = bytes((0, 1, 0, METER_MANAGEMENT_WPORT, 0, CLIENT_MANAGEMENT_WPORT))
    return head + apdu.to_bytes(2, "big") + bytes((0xDB, 8, apdu - 11, SC_AUTHENTICATED_ENCRYPTED))
