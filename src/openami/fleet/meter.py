"""What a meter does on the wire: push each interval's entry, answer load-profile reads.

Both directions are ciphered with the meter's own suite 0 keys (authenticated encryption);
a request whose invocation counter is not above the last one seen from the head-end is a
replay and gets no answer, as does one that fails authentication.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from openami.errors import DecodeError, RemoteProtocolError
from openami.fleet.fleet import Fleet
from openami.protocols.dlms.apdu import (
    DataAccessResult,
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
    encode_apdu,
)
from openami.protocols.dlms.axdr import Data, DataType, decode_data
from openami.protocols.dlms.obis import LOAD_PROFILE
from openami.protocols.dlms.profile import (
    CLASS_PROFILE_GENERIC,
    PROFILE_BUFFER_ATTRIBUTE,
    SELECTOR_BY_RANGE,
    encode_entry,
    entry_prefix,
    parse_range_descriptor,
)
from openami.protocols.dlms.wrapper import (
    CLIENT_MANAGEMENT_WPORT,
    METER_MANAGEMENT_WPORT,
    WrapperFrame,
    decode_wrapper,
    encode_wrapper,
)
from openami.transport.memory import Datagram

__all__ = ["MeterServer"]


class MeterServer:
    """The DLMS server side of every meter in a fleet (one object, per-meter state in columns).

    ``now_interval`` is how many intervals have closed: the load profile holds entries
    ``0 .. now_interval - 1`` and nothing from the future.
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.now_interval = 0
        self._prefix_cache: dict[int, bytes] = {}
        self.rejected = 0

    def _prefix(self, t: int) -> bytes:
        prefix = self._prefix_cache.get(t)
        if prefix is None:
            end = datetime.fromtimestamp(int(self.fleet.profiles.interval_end[t]), tz=UTC)
            prefix = entry_prefix(end.astimezone(self.fleet.start.tzinfo))
            self._prefix_cache[t] = prefix
        return prefix

    def _entry(self, i: int, t: int) -> bytes:
        f = self.fleet
        return encode_entry(
            self._prefix(t),
            0,
            int(f.import_register[i, t]),
            int(f.export_register[i, t]),
            int(f.profiles.import_wh[i, t]),
            int(f.profiles.export_wh[i, t]),
        )

    def _seal(self, i: int, apdu: bytes, client_wport: int = CLIENT_MANAGEMENT_WPORT) -> bytes:
        f = self.fleet
        title = f.system_title(i)
        content = f.suite(i).protect(title, f.next_invocation_counter(i), apdu)
        glo = encode_apdu(GeneralGloCiphering(title, content))
        return encode_wrapper(WrapperFrame(METER_MANAGEMENT_WPORT, client_wport, glo))

    def push(self, i: int, t: int) -> bytes:
        """The datagram meter ``i`` sends at the end of interval ``t``."""
        # data-notification: tag, long-invoke-id (the interval number), no date-time, body
        apdu = b"\x0f" + (t & 0xFFFFFFFF).to_bytes(4, "big") + b"\x00" + self._entry(i, t)
        return self._seal(i, apdu)

    def close_interval(self) -> None:
        self.now_interval += 1

    def handle(self, datagram: Datagram) -> bytes | None:
        """Answer one request addressed to a meter; ``None`` when it is refused silently."""
        i = self.fleet.index_of(datagram.destination)
        if i is None:
            return None
        try:
            frame = decode_wrapper(datagram.payload)
            glo = decode_apdu(frame.apdu)
            if not isinstance(glo, GeneralGloCiphering):
                raise DecodeError("meters accept only ciphered requests")
            counter, plain = self.fleet.suite(i).unprotect(glo.system_title, glo.ciphered_content)
            if counter <= self.fleet.last_client_counter[i]:
                raise RemoteProtocolError("replayed request")
            self.fleet.last_client_counter[i] = counter
            request = decode_apdu(plain)
        except RemoteProtocolError:
            self.rejected += 1
            return None
        if not isinstance(request, GetRequestNormal):
            return None
        response = encode_apdu(GetResponseNormal(request.invoke_id, self._get(i, request)))
        return self._seal(i, response, frame.source_wport)

    def _get(self, i: int, request: GetRequestNormal) -> Data | DataAccessResult:
        if (
            request.class_id != CLASS_PROFILE_GENERIC
            or request.instance_id != LOAD_PROFILE.to_bytes()
            or request.attribute_id != PROFILE_BUFFER_ATTRIBUTE
        ):
            return DataAccessResult.OBJECT_UNDEFINED
        ends = self.fleet.profiles.interval_end[: self.now_interval]
        if request.access_selector is None:
            wanted = np.arange(ends.shape[0])
        elif request.access_selector == SELECTOR_BY_RANGE and request.access_parameters:
            try:
                start, stop = parse_range_descriptor(request.access_parameters)
            except DecodeError:
                return DataAccessResult.TYPE_UNMATCHED
            wanted = np.flatnonzero((ends >= start) & (ends <= stop))
        else:
            return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
        entries = tuple(decode_data(self._entry(i, int(t))) for t in wanted)
        return Data(DataType.ARRAY, entries)
