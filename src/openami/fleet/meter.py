"""What a meter does on the wire: push each interval's entry, answer load-profile reads.

Both directions are ciphered with the meter's own suite 0 keys (authenticated encryption);
a request whose invocation counter is not above the last one seen from the head-end is a
replay and gets no answer, as does one that fails authentication.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

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

JST = timezone(timedelta(hours=9))


class MeterServer:
    """The DLMS server side of every meter in a fleet (one object, per-meter state in columns).

    Requests are answered from the meter's load profile as of the fleet's last closed
    interval; the profile is computed on demand, so no per-meter object outlives a request.
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._prefix_cache: dict[int, bytes] = {}
        self.rejected = 0

    def _prefix(self, number: int) -> bytes:
        prefix = self._prefix_cache.get(number)
        if prefix is None:
            end = datetime.fromtimestamp(self.fleet.interval_end(number), tz=UTC)
            prefix = entry_prefix(end.astimezone(JST))
            if len(self._prefix_cache) > 10_000:
                self._prefix_cache.clear()
            self._prefix_cache[number] = prefix
        return prefix

    def _seal(self, i: int, apdu: bytes, client_wport: int = CLIENT_MANAGEMENT_WPORT) -> bytes:
        f = self.fleet
        title = f.system_title(i)
        content = f.suite(i).protect(title, f.next_invocation_counter(i), apdu)
        glo = encode_apdu(GeneralGloCiphering(title, content))
        return encode_wrapper(WrapperFrame(METER_MANAGEMENT_WPORT, client_wport, glo))

    def handle(self, datagram: Datagram) -> bytes | None:
        """Answer one request addressed to a meter; ``None`` when it is refused silently."""
        i = self.fleet.index_of(datagram.destination)
        return None if i is None else self.handle_for(i, datagram.payload)

    def handle_for(self, i: int, payload: bytes) -> bytes | None:
        """Answer a request that reached meter ``i``."""
        if not (self.fleet.powered[i]):
            return None  # no power, no answer
        try:
            frame = decode_wrapper(payload)
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
        step = self.fleet.step_s
        if request.access_selector is None:
            first, last = 0, self.fleet.now
        elif request.access_selector == SELECTOR_BY_RANGE and request.access_parameters:
            try:
                start, stop = parse_range_descriptor(request.access_parameters)
            except DecodeError:
                return DataAccessResult.TYPE_UNMATCHED
            first, last = -(-start // step), stop // step
        else:
            return DataAccessResult.SCOPE_OF_ACCESS_VIOLATED
        h = self.fleet.history(i, first, last)
        entries = tuple(
            decode_data(
                encode_entry(
                    self._prefix(int(h.numbers[k])),
                    int(h.status[k]),
                    int(h.import_register[k]),
                    int(h.export_register[k]),
                    int(h.import_wh[k]),
                    int(h.export_wh[k]),
                )
            )
            for k in range(h.numbers.size)
        )
        return Data(DataType.ARRAY, entries)
