"""HDLC framing for DLMS/COSEM on the optical port (IEC 62056-46, Green Book HDLC data link layer).

One frame on the wire; there is no bit or byte stuffing, the length field delimits the frame::

    7E | format (2) | destination (1, 2, 4) | source (1, 2, 4) | control (1)
       | [HCS (2) | information (n)] | FCS (2) | 7E

* **Format field**, big-endian ``1010 S LLL LLLLLLLL``: frame format type 3 (0xA in the top
  nibble), the segmentation bit ``S`` (more segments of the same information follow), and the
  11-bit frame length: the octets between the two flags, format field and FCS included.
* **Addresses** use the HDLC extension bit: every octet carries seven address bits shifted left
  by one, and bit 0 is set on the last octet only. A client address is one octet. A server
  address is one octet (upper HDLC address, the logical device), two octets (upper and lower
  HDLC address, seven bits each) or four octets (upper and lower, fourteen bits each; the lower
  address is the physical device).
* **Control field** (bit 0 least significant, P/F is bit 4): I ``RRRPSSS0``, RR ``RRRP0001``,
  RNR ``RRRP0101``, and the unnumbered SNRM 0x83, DISC 0x43, UA 0x63, DM 0x0F, FRMR 0x87 and UI
  0x03, each with 0x10 added when P/F is set. ``SSS`` is N(S), ``RRR`` is N(R), both modulo 8.
* **HCS** covers format field to control field and is present only when the frame has an
  information field; **FCS** covers every octet between the flags before it. Both are the HDLC
  FCS of RFC 1662 (CRC-16/X.25: reflected polynomial 0x8408, initial value 0xFFFF, final XOR
  0xFFFF), sent least significant octet first.

Only I, UI, SNRM, UA and FRMR frames carry an information field and only I and UI frames are
segmented; anything else is refused both ways. The information field of an I frame carrying a
DLMS APDU starts with the LLC header (``E6 E6 00`` from the client, ``E6 E7 00`` from the
server) in its first segment only: LLC header and APDU together are what gets segmented.

``encode_*`` raise ``LocalProtocolError`` for values the standard forbids; ``decode_*`` raise
only ``DecodeError``, on any input. ``HdlcStreamDecoder`` *skips* frames that fail a check
(HCS, FCS, format, closing flag) instead of raising: ISO/IEC 13239 has the receiver discard
such frames and leaves recovery to the sender's retransmission (the peer gets no answer and
repeats), a corrupted frame on a noisy optical head is an expected event rather than a protocol
violation, and raising in the middle of a feed would lose the good frames that follow it in the
same chunk. The number of octets thrown away is kept in ``discarded_octets`` for diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

from openami.errors import DecodeError, LocalProtocolError

__all__ = [
    "DEFAULT_MAX_INFO_LENGTH",
    "FLAG",
    "LLC_FROM_CLIENT",
    "LLC_FROM_SERVER",
    "MANAGEMENT_LOGICAL_DEVICE",
    "MAX_FRAME_LENGTH",
    "PUBLIC_CLIENT",
    "FrameType",
    "HdlcAddress",
    "HdlcFrame",
    "HdlcParameters",
    "HdlcStreamDecoder",
    "SegmentReassembler",
    "add_llc",
    "decode_frame",
    "decode_parameters",
    "encode_frame",
    "encode_parameters",
    "fcs16",
    "split_information",
    "strip_llc",
]

FLAG = 0x7E
MAX_FRAME_LENGTH = 0x7FF  # the largest 11-bit frame length (octets between the flags)
DEFAULT_MAX_INFO_LENGTH = 128  # when SNRM/UA do not negotiate it
PUBLIC_CLIENT = 0x10
MANAGEMENT_LOGICAL_DEVICE = 0x01
LLC_FROM_CLIENT = b"\xe6\xe6\x00"  # destination LSAP, source LSAP (command), quality
LLC_FROM_SERVER = b"\xe6\xe7\x00"  # destination LSAP, source LSAP (response), quality

_FORMAT_TYPE_3 = 0xA
_SEGMENT_BIT = 0x0800
_LENGTH_MASK = 0x07FF
_MIN_LENGTH = 7  # format (2) + two one-octet addresses + control + FCS (2)


def _crc_of_octet(crc: int) -> int:
    for _ in range(8):
        crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1  # reflected polynomial 0x1021
    return crc


_CRC_TABLE = tuple(_crc_of_octet(octet) for octet in range(256))


def fcs16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/X.25, the HDLC FCS; send it with ``.to_bytes(2, "little")``."""
    crc = 0xFFFF
    for octet in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ octet) & 0xFF]
    return crc ^ 0xFFFF


class FrameType(IntEnum):
    """Frame kinds, valued by their control octet with P/F, N(S) and N(R) all zero."""

    I = 0x00  # noqa: E741 -- the standard's name for an information frame
    RR = 0x01
    RNR = 0x05
    SNRM = 0x83
    DISC = 0x43
    UA = 0x63
    DM = 0x0F
    FRMR = 0x87
    UI = 0x03


# Low two control bits: x0 information, 01 supervisory, 11 unnumbered.
_SUPERVISORY = {t.value: t for t in FrameType if t.value & 3 == 1}
_UNNUMBERED = {t.value: t for t in FrameType if t.value & 3 == 3}
_ACKNOWLEDGING = frozenset({FrameType.I, FrameType.RR, FrameType.RNR})  # carry N(R)
_MAY_CARRY_INFO = frozenset(
    {FrameType.I, FrameType.UI, FrameType.SNRM, FrameType.UA, FrameType.FRMR}
)
_MAY_SEGMENT = frozenset({FrameType.I, FrameType.UI})


@dataclass(frozen=True, slots=True)
class HdlcAddress:
    """An HDLC address: ``upper`` alone in one octet, or ``upper`` and ``lower`` in 2 or 4.

    ``HdlcAddress(0x10)`` is the public client; ``HdlcAddress(1, 0x11, 2)`` is logical device 1
    of physical device 0x11. One-octet values are 0..0x7F, two-octet parts 0..0x7F each and
    four-octet parts 0..0x3FFF each.
    """

    upper: int
    lower: int | None = None
    octets: int = 1


@dataclass(frozen=True, slots=True)
class HdlcFrame:
    """One HDLC frame. ``send_seq`` is N(S) (I frames only, else 0); ``recv_seq`` is N(R) (I, RR
    and RNR frames only, else 0); ``poll_final`` is the P/F bit; ``segmented`` is the format
    field's S bit (I and UI frames only)."""

    frame_type: FrameType
    destination: HdlcAddress
    source: HdlcAddress
    poll_final: bool = False
    send_seq: int = 0
    recv_seq: int = 0
    segmented: bool = False
    information: bytes = b""


def _encode_address(address: HdlcAddress) -> bytes:
    if address.octets == 1:
        if address.lower is not None or not 0 <= address.upper <= 0x7F:
            raise LocalProtocolError(f"{address} does not fit a one-octet address")
        septets = [address.upper]
    elif address.octets in (2, 4):
        bits = 7 if address.octets == 2 else 14
        lower = address.lower
        if lower is None or not (0 <= address.upper < 1 << bits and 0 <= lower < 1 << bits):
            raise LocalProtocolError(f"{address} needs upper and lower parts of {bits} bits")
        septets = [
            (part >> shift) & 0x7F
            for part in (address.upper, lower)
            for shift in range(bits - 7, -1, -7)
        ]
    else:
        raise LocalProtocolError(f"an HDLC address has 1, 2 or 4 octets, not {address.octets}")
    out = bytearray(septet << 1 for septet in septets)
    out[-1] |= 1
    return bytes(out)


def _decode_address(buf: bytes | bytearray, pos: int, end: int) -> tuple[HdlcAddress, int] | None:
    """Decode an address at ``pos``; None when it runs past ``end``."""
    septets: list[int] = []
    while True:
        if pos >= end:
            return None
        octet = buf[pos]
        pos += 1
        septets.append(octet >> 1)
        if octet & 1:
            break
        if len(septets) == 4:
            raise DecodeError("address field longer than four octets")
    if len(septets) == 1:
        return HdlcAddress(septets[0]), pos
    if len(septets) == 2:
        return HdlcAddress(septets[0], septets[1], 2), pos
    if len(septets) == 4:
        upper, lower = septets[0] << 7 | septets[1], septets[2] << 7 | septets[3]
        return HdlcAddress(upper, lower, 4), pos
    raise DecodeError("address field of three octets")


def _encode_control(frame: HdlcFrame) -> int:
    kind = frame.frame_type
    for name, value, used in (
        ("N(S)", frame.send_seq, kind is FrameType.I),
        ("N(R)", frame.recv_seq, kind in _ACKNOWLEDGING),
    ):
        if not 0 <= value <= 7:
            raise LocalProtocolError(f"{name} {value} is outside 0..7")
        if value and not used:
            raise LocalProtocolError(f"a {kind.name} frame has no {name}")
    return kind.value | int(frame.poll_final) << 4 | frame.recv_seq << 5 | frame.send_seq << 1


def _decode_control(control: int) -> tuple[FrameType, bool, int, int]:
    """Return (frame type, P/F, N(S), N(R)) of a control octet."""
    poll_final = bool(control & 0x10)
    if not control & 1:
        return FrameType.I, poll_final, (control >> 1) & 7, control >> 5
    if control & 3 == 1:
        kind = _SUPERVISORY.get(control & 0x0F)
        if kind is None:
            raise DecodeError(f"supervisory control 0x{control:02x} (REJ/SREJ) is not used")
        return kind, poll_final, 0, control >> 5
    kind = _UNNUMBERED.get(control & 0xEF)
    if kind is None:
        raise DecodeError(f"unnumbered control 0x{control:02x} is not used by DLMS")
    return kind, poll_final, 0, 0


def encode_frame(frame: HdlcFrame) -> bytes:
    """Encode one frame, opening and closing flags included."""
    kind = frame.frame_type
    control = _encode_control(frame)
    info = frame.information
    if info and kind not in _MAY_CARRY_INFO:
        raise LocalProtocolError(f"a {kind.name} frame has no information field")
    if frame.segmented and kind not in _MAY_SEGMENT:
        raise LocalProtocolError(f"a {kind.name} frame cannot be segmented")
    addresses = _encode_address(frame.destination) + _encode_address(frame.source)
    length = 2 + len(addresses) + 1 + (2 + len(info) if info else 0) + 2
    if length > MAX_FRAME_LENGTH:
        raise LocalProtocolError(f"frame of {length} octets exceeds {MAX_FRAME_LENGTH}")
    fmt = _FORMAT_TYPE_3 << 12 | (_SEGMENT_BIT if frame.segmented else 0) | length
    body = bytearray(fmt.to_bytes(2, "big"))
    body += addresses
    body.append(control)
    if info:
        body += fcs16(body).to_bytes(2, "little")
        body += info
    body += fcs16(body).to_bytes(2, "little")
    return bytes((FLAG, *body, FLAG))


class _Head(NamedTuple):
    total: int  # octets of the whole frame, both flags included
    header: int  # octets of format, addresses and control
    has_info: bool
    segmented: bool
    destination: HdlcAddress
    source: HdlcAddress
    control: tuple[FrameType, bool, int, int]


def _parse_head(buf: bytes | bytearray, start: int, end: int, max_length: int) -> _Head | None:
    """Check the header of a frame whose opening flag is ``buf[start]``, using ``buf[:end]``.

    Returns None when more octets are needed to tell; raises DecodeError as soon as the octets
    seen cannot start a valid frame (including a bad HCS).
    """
    if end - start < 3:
        return None
    fmt = buf[start + 1] << 8 | buf[start + 2]
    if fmt >> 12 != _FORMAT_TYPE_3:
        raise DecodeError(f"frame format type 0x{fmt >> 12:x} is not type 3 (0xa)")
    length = fmt & _LENGTH_MASK
    if not _MIN_LENGTH <= length <= max_length:
        raise DecodeError(f"frame length {length} outside {_MIN_LENGTH}..{max_length}")
    limit = start + 1 + length - 2  # where the FCS starts: the header must end before it
    avail = min(end, limit)
    pos = start + 3
    addresses: list[HdlcAddress] = []
    for _ in range(2):
        found = _decode_address(buf, pos, avail)
        if found is None:
            if avail == limit:
                raise DecodeError("address fields run into the FCS")
            return None
        addresses.append(found[0])
        pos = found[1]
    if pos >= avail:
        if avail == limit:
            raise DecodeError("no room for the control field")
        return None
    control = _decode_control(buf[pos])
    pos += 1
    header = pos - start - 1
    kind = control[0]
    segmented = bool(fmt & _SEGMENT_BIT)
    if segmented and kind not in _MAY_SEGMENT:
        raise DecodeError(f"segmentation bit set on a {kind.name} frame")
    has_info = length > header + 2
    if has_info:
        if kind not in _MAY_CARRY_INFO:
            raise DecodeError(f"a {kind.name} frame with an information field")
        if length < header + 5:
            raise DecodeError(f"frame length {length} leaves no room for HCS and information")
        if end < pos + 2:
            return None
        if buf[pos] | buf[pos + 1] << 8 != fcs16(buf[start + 1 : pos]):
            raise DecodeError("header check sequence (HCS) does not match")
    return _Head(length + 2, header, has_info, segmented, addresses[0], addresses[1], control)


def decode_frame(data: bytes | bytearray) -> HdlcFrame:
    """Decode exactly one frame, opening and closing flags included."""
    if not data or data[0] != FLAG:
        raise DecodeError("frame does not start with the 0x7e flag")
    head = _parse_head(data, 0, len(data), MAX_FRAME_LENGTH)
    if head is None or head.total > len(data):
        raise DecodeError(f"truncated frame: {len(data)} octets")
    if head.total != len(data):
        raise DecodeError(f"frame length field says {head.total} octets, got {len(data)}")
    if data[-1] != FLAG:
        raise DecodeError("frame does not end with the 0x7e flag")
    if data[-3] | data[-2] << 8 != fcs16(data[1:-3]):
        raise DecodeError("frame check sequence (FCS) does not match")
    kind, poll_final, send_seq, recv_seq = head.control
    info = bytes(data[1 + head.header + 2 : -3]) if head.has_info else b""
    return HdlcFrame(
        kind, head.destination, head.source, poll_final, send_seq, recv_seq, head.segmented, info
    )


class HdlcStreamDecoder:
    """Find frames in a byte stream, fed in chunks of any size (sans-IO).

    Octets outside frames are noise and dropped; a closing flag may also open the next frame;
    frames failing any check are skipped (see the module docstring) and the search resumes at
    the next flag. A candidate is given up as soon as its header or HCS is wrong, so stray 0x7E
    octets seldom hold up the frames behind them. One whose header and HCS pass (a frame the
    sender broke off, or noise matching by chance) is waited for until its announced length has
    arrived or the caller reports an inter-octet timeout with ``idle``. At most
    ``max_frame_length + 1`` octets stay buffered; set ``max_frame_length`` to the negotiated
    maximum to bound the wait.
    """

    def __init__(self, max_frame_length: int = MAX_FRAME_LENGTH) -> None:
        if not _MIN_LENGTH <= max_frame_length <= MAX_FRAME_LENGTH:
            raise LocalProtocolError(
                f"max_frame_length {max_frame_length} outside {_MIN_LENGTH}..{MAX_FRAME_LENGTH}"
            )
        self.max_frame_length = max_frame_length
        self.discarded_octets = 0  # noise and failed frames; shared closing flags not counted
        self._buf = bytearray()
        self._kept_flag = False  # the buffer starts with the closing flag of a good frame

    @property
    def buffered(self) -> int:
        """Octets held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[HdlcFrame]:
        """Add received octets; return the frames completed by them, in order."""
        return self._scan(data, idle=False)

    def idle(self) -> list[HdlcFrame]:
        """The line went quiet: drop the partial frame, return any frames buffered behind it."""
        return self._scan(b"", idle=True)

    def _scan(self, data: bytes, *, idle: bool) -> list[HdlcFrame]:
        buf = self._buf
        buf += data
        frames: list[HdlcFrame] = []
        pos = 0
        kept = 0 if self._kept_flag else -1  # index of a closing flag not to count as noise
        while True:
            flag = buf.find(FLAG, pos)
            nxt = len(buf) if flag < 0 else flag
            self.discarded_octets += nxt - pos
            pos = nxt
            if flag < 0:
                break
            try:
                head = _parse_head(buf, pos, len(buf), self.max_frame_length)
                if head is None or len(buf) - pos < head.total:
                    if not idle:
                        break  # wait for more octets
                    raise DecodeError("partial frame before an idle line")
                frame = decode_frame(buf[pos : pos + head.total])
            except DecodeError:
                self.discarded_octets += int(pos != kept)
                pos += 1  # this flag opens no good frame: look for the next one
                continue
            frames.append(frame)
            pos += head.total - 1  # keep the closing flag: it may open the next frame
            kept = pos
        del buf[:pos]
        self._kept_flag = kept == pos and bool(buf)
        return frames


@dataclass(frozen=True, slots=True)
class HdlcParameters:
    """The SNRM/UA information field, each value as seen by the frame's sender: the largest
    information field it will transmit and can receive, and its transmit and receive windows.
    Omitted parameters take these defaults."""

    max_info_tx: int = DEFAULT_MAX_INFO_LENGTH
    max_info_rx: int = DEFAULT_MAX_INFO_LENGTH
    window_tx: int = 1
    window_rx: int = 1


_FORMAT_ID = 0x81  # ISO/IEC 13239 format identifier
_GROUP_ID = 0x80  # HDLC parameter negotiation group
_MAX_INFO_TX, _MAX_INFO_RX, _WINDOW_TX, _WINDOW_RX = 0x05, 0x06, 0x07, 0x08


def _parameter_problem(params: HdlcParameters) -> str | None:
    for name in ("max_info_tx", "max_info_rx"):
        if not 1 <= getattr(params, name) <= 0xFFFF:
            return f"{name} {getattr(params, name)} outside 1..65535"
    for name in ("window_tx", "window_rx"):
        if not 1 <= getattr(params, name) <= 7:
            return f"{name} {getattr(params, name)} outside 1..7"
    return None


def encode_parameters(params: HdlcParameters) -> bytes:
    """Encode all four parameters: lengths in one octet when below 256, windows in four."""
    problem = _parameter_problem(params)
    if problem:
        raise LocalProtocolError(problem)
    body = bytearray()
    for ident, value, size in (
        (_MAX_INFO_TX, params.max_info_tx, 1 if params.max_info_tx < 0x100 else 2),
        (_MAX_INFO_RX, params.max_info_rx, 1 if params.max_info_rx < 0x100 else 2),
        (_WINDOW_TX, params.window_tx, 4),
        (_WINDOW_RX, params.window_rx, 4),
    ):
        body += bytes((ident, size)) + value.to_bytes(size, "big")
    return bytes((_FORMAT_ID, _GROUP_ID, len(body))) + body


def decode_parameters(info: bytes) -> HdlcParameters:
    """Decode a SNRM/UA information field; empty means all defaults. Unknown parameters of the
    group are skipped; values may take 1 to 4 octets."""
    if not info:
        return HdlcParameters()
    if len(info) < 3 or info[0] != _FORMAT_ID or info[1] != _GROUP_ID:
        raise DecodeError("negotiation field does not start with 81 80")
    if info[2] != len(info) - 3:
        raise DecodeError(f"group length {info[2]} but {len(info) - 3} octets follow")
    values: dict[int, int] = {}
    pos = 3
    while pos < len(info):
        if pos + 2 > len(info) or pos + 2 + info[pos + 1] > len(info):
            raise DecodeError("truncated negotiation parameter")
        ident, size = info[pos], info[pos + 1]
        pos += 2
        if _MAX_INFO_TX <= ident <= _WINDOW_RX:
            if not 1 <= size <= 4 or ident in values:
                raise DecodeError(f"parameter 0x{ident:02x}: bad size {size} or repeated")
            values[ident] = int.from_bytes(info[pos : pos + size], "big")
        pos += size
    defaults = HdlcParameters()
    params = HdlcParameters(
        values.get(_MAX_INFO_TX, defaults.max_info_tx),
        values.get(_MAX_INFO_RX, defaults.max_info_rx),
        values.get(_WINDOW_TX, defaults.window_tx),
        values.get(_WINDOW_RX, defaults.window_rx),
    )
    problem = _parameter_problem(params)
    if problem:
        raise DecodeError(problem)
    return params


def add_llc(apdu: bytes, *, from_client: bool) -> bytes:
    """Prefix an APDU with the LLC header of its direction."""
    return (LLC_FROM_CLIENT if from_client else LLC_FROM_SERVER) + apdu


def strip_llc(information: bytes, *, from_client: bool) -> bytes:
    """Remove the LLC header of the given direction; DecodeError if it is not there."""
    llc = LLC_FROM_CLIENT if from_client else LLC_FROM_SERVER
    if information[:3] != llc:
        raise DecodeError(f"expected LLC header {llc.hex()}, got {information[:3].hex()}")
    return information[3:]


def split_information(payload: bytes, max_info_length: int) -> list[tuple[bytes, bool]]:
    """Cut ``payload`` (LLC header + APDU) into information fields of at most
    ``max_info_length`` octets, each with its segmentation bit (set on all but the last)."""
    if max_info_length < 1:
        raise LocalProtocolError(f"max_info_length {max_info_length} must be positive")
    if not payload:
        raise LocalProtocolError("nothing to segment")
    chunks = [payload[i : i + max_info_length] for i in range(0, len(payload), max_info_length)]
    return [(chunk, i < len(chunks) - 1) for i, chunk in enumerate(chunks)]


class SegmentReassembler:
    """Join the information fields of segmented I or UI frames back into one payload.

    ``add`` returns the whole payload when a frame without the segmentation bit ends it, else
    None. A sequence longer than ``max_length`` or switching frame type raises DecodeError and
    starts over.
    """

    def __init__(self, max_length: int = 0xFFFF + len(LLC_FROM_CLIENT)) -> None:
        self.max_length = max_length
        self._parts = bytearray()
        self._kind: FrameType | None = None

    @property
    def pending(self) -> int:
        """Octets collected from segments so far."""
        return len(self._parts)

    def add(self, frame: HdlcFrame) -> bytes | None:
        if frame.frame_type not in _MAY_SEGMENT:
            raise LocalProtocolError(f"a {frame.frame_type.name} frame carries no segment")
        if self._kind is not None and frame.frame_type is not self._kind:
            self._reset()
            raise DecodeError(f"a {frame.frame_type.name} frame inside a segmented sequence")
        if len(self._parts) + len(frame.information) > self.max_length:
            self._reset()
            raise DecodeError(f"segmented information exceeds {self.max_length} octets")
        self._parts += frame.information
        if frame.segmented:
            self._kind = frame.frame_type
            return None
        whole = bytes(self._parts)
        self._reset()
        return whole

    def _reset(self) -> None:
        self._parts.clear()
        self._kind = None
