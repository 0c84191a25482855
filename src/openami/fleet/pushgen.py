"""Ciphered pushes for many meters at once: the fleet's per-message path, vectorised.

Every openami push has a fixed layout, so a batch of them is a NumPy array with one row per
datagram: the plaintext data-notifications are filled column by column, each row is sealed
with its own meter's keys (AES-GCM, suite 0; the one step that must run per meter), and the
wrapper and general-glo-ciphering headers are written for all rows at once. The bytes are the
same the general codec produces (tests check that against ``encode_apdu``/``encode_wrapper``).

Datagram layout (80 octets for an interval entry): 4-7 wrapper header (8) | general-glo tag,
title length, system title (10) | content length (1) | security control 0x30, invocation
counter (5) | ciphertext | 12-octet tag.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openami.fleet.fleet import MANUFACTURER, Fleet, IntervalValues
from openami.protocols.dlms.apdu import GeneralGloCiphering, encode_apdu
from openami.protocols.dlms.axdr import DataType, encode_data
from openami.protocols.dlms.cosem_datetime import encode_datetime
from openami.protocols.dlms.notification import encode_event
from openami.protocols.dlms.push_layout import INTERVAL_PLAIN, UTILITY_PLAIN
from openami.protocols.dlms.security import SC_AUTHENTICATED_ENCRYPTED, TAG_LEN
from openami.protocols.dlms.wrapper import (
    CLIENT_MANAGEMENT_WPORT,
    METER_MANAGEMENT_WPORT,
    WrapperFrame,
    encode_wrapper,
)

__all__ = ["PushEncoder"]

JST = timezone(timedelta(hours=9))
U8 = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]

_INTERVAL_PLAIN, _UTILITY_PLAIN = INTERVAL_PLAIN, UTILITY_PLAIN


class PushEncoder:
    """Builds the fleet's pushes; invocation counters advance in the fleet's columns."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        ek, ak = fleet.key_columns()
        self._ek = np.ascontiguousarray(ek).tobytes()
        aad = np.empty((fleet.n, 17), dtype=np.uint8)
        aad[:, 0] = SC_AUTHENTICATED_ENCRYPTED
        aad[:, 1:] = ak
        self._aad = aad.tobytes()
        self._clocks: dict[int, bytes] = {}

    def _clock(self, end_s: int) -> bytes:
        clock = self._clocks.get(end_s)
        if clock is None:
            clock = encode_datetime(datetime.fromtimestamp(end_s, tz=UTC).astimezone(JST))
            if len(self._clocks) > 4096:
                self._clocks.clear()
            self._clocks[end_s] = clock
        return clock

    def _stamps(self, meters: IntArray, number: int) -> npt.NDArray[np.bytes_]:
        """Each meter's clock value for the end of interval ``number``: the true end, or
        shifted by whole intervals where the meter's clock went wrong."""
        shift = self.fleet.clock_shift[meters]
        out = np.full(meters.shape, self._clock(self.fleet.interval_end(number)), dtype="S12")
        for s in np.unique(shift[shift != 0]).tolist():
            out[shift == s] = self._clock(self.fleet.interval_end(number + s))
        return out

    def intervals(self, values: IntervalValues, meters: IntArray) -> U8:
        """The interval pushes of ``meters`` for ``values``: one 80-octet row each."""
        return self._entries(
            _INTERVAL_PLAIN,
            values,
            meters,
            {
                "imp_reg": values.import_register,
                "exp_reg": values.export_register,
                "imp": values.import_wh,
                "exp": values.export_wh,
            },
        )

    def utilities(
        self, values: IntervalValues, meters: IntArray, gas_index: IntArray, water_index: IntArray
    ) -> U8:
        """Co-metering pushes (gas and water indexes, litres) of ``meters`` at the end of the
        interval of ``values``, with the status each meter gives that interval (a meter whose
        clock is wrong says so here too); the index columns are per meter, fleet-wide."""
        return self._entries(
            _UTILITY_PLAIN, values, meters, {"gas": gas_index, "water": water_index}
        )

    def _entries(
        self,
        layout: np.dtype[np.void],
        values: IntervalValues,
        meters: IntArray,
        columns: dict[str, IntArray],
    ) -> U8:
        """One sealed push per meter: its clock at the end of the interval, its status for
        the interval, then ``columns`` (fleet-wide, in ``layout``'s order) as
        double-long-unsigned values."""
        plain = np.zeros(meters.shape[0], dtype=layout)
        plain["tag"] = 0x0F
        plain["invoke"] = values.number & 0xFFFFFF
        plain["structure"], plain["count"] = DataType.STRUCTURE, 2 + len(columns)
        plain["octets"], plain["size"] = DataType.OCTET_STRING, 12
        plain["clock"] = self._stamps(meters, values.number)
        plain["t_status"] = DataType.UNSIGNED
        plain["status"] = values.status[meters]
        for name, column in columns.items():
            plain[f"t_{name}"] = DataType.DOUBLE_LONG_UNSIGNED
            plain[name] = column[meters] & 0xFFFFFFFF
        return self.seal(meters, plain.view(np.uint8).reshape(meters.shape[0], -1))

    def seal(self, meters: IntArray, plain: U8) -> U8:
        """Cipher each row of ``plain`` under its meter's keys and frame it: one datagram per
        row, all the same length."""
        k, size = plain.shape
        fleet = self.fleet
        counters = fleet.invocation_counter[meters] + 1
        fleet.invocation_counter[meters] = counters
        if k and int(counters.max()) > 0xFFFFFFFF:
            raise OverflowError("an invocation counter is exhausted; the meter needs new keys")
        iv = np.empty((k, 12), dtype=np.uint8)
        iv[:, :3] = np.frombuffer(MANUFACTURER, dtype=np.uint8)
        ids = (meters + 1).astype(">u8").view(np.uint8).reshape(k, 8)
        iv[:, 3:8] = ids[:, 3:]
        iv[:, 8:] = counters.astype(">u4").view(np.uint8).reshape(k, 4)
        ivs, texts = iv.tobytes(), np.ascontiguousarray(plain).tobytes()
        ek, aad = self._ek, self._aad
        sealed = []
        for j, m in enumerate(meters.tolist()):
            sealed.append(
                AESGCM(ek[16 * m : 16 * m + 16]).encrypt(
                    ivs[12 * j : 12 * j + 12],
                    texts[size * j : size * (j + 1)],
                    aad[17 * m : 17 * m + 17],
                )
            )
        body = np.frombuffer(b"".join(sealed), dtype=np.uint8).reshape(k, size + 16)
        content = 5 + size + TAG_LEN
        apdu = 2 + 8 + 1 + content
        out = np.empty((k, 8 + apdu), dtype=np.uint8)
        out[:, 0:8] = np.frombuffer(
            bytes((0, 1, 0, METER_MANAGEMENT_WPORT, 0, CLIENT_MANAGEMENT_WPORT))
            + apdu.to_bytes(2, "big"),
            dtype=np.uint8,
        )
        out[:, 8:10] = (0xDB, 8)
        out[:, 10:18] = iv[:, :8]
        out[:, 18] = content
        out[:, 19] = SC_AUTHENTICATED_ENCRYPTED
        out[:, 20:24] = iv[:, 8:]
        out[:, 24:] = body[:, : size + TAG_LEN]
        return out

    def event(self, meter: int, moment: datetime, code: int, value: int) -> bytes:
        """One event push (rare: built with the general codec)."""
        fleet = self.fleet
        body = encode_data(encode_event(moment.astimezone(JST), code, value))
        apdu = b"\x0f" + (fleet.now & 0xFFFFFF).to_bytes(4, "big") + b"\x00" + body
        title = fleet.system_title(meter)
        content = fleet.suite(meter).protect(title, fleet.next_invocation_counter(meter), apdu)
        glo = encode_apdu(GeneralGloCiphering(title, content))
        return encode_wrapper(WrapperFrame(METER_MANAGEMENT_WPORT, CLIENT_MANAGEMENT_WPORT, glo))
