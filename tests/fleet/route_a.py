"""Reading a fleet meter over Route A in memory, as the head-end would: ciphered DLMS/COSEM
GETs under the pre-established association, answered by ``MeterServer``. The Route B tests
compare what ECHONET Lite reports with what this reads."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from openami.fleet.fleet import Fleet
from openami.fleet.meter import MeterServer
from openami.headend.collection import HEADEND_SYSTEM_TITLE
from openami.protocols.dlms import obis
from openami.protocols.dlms.apdu import (
    Apdu,
    GeneralGloCiphering,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
    encode_apdu,
)
from openami.protocols.dlms.axdr import Data
from openami.protocols.dlms.obis import LOAD_PROFILE
from openami.protocols.dlms.profile import ProfileEntry, decode_entries, range_descriptor
from openami.protocols.dlms.wrapper import WrapperFrame, decode_wrapper, encode_wrapper

__all__ = ["IMPORT", "POWER", "RouteA"]

IMPORT = obis.ACTIVE_ENERGY_IMPORT.to_bytes()
EXPORT = obis.ACTIVE_ENERGY_EXPORT.to_bytes()
POWER = obis.ObisCode.parse("1.0.1.7.0.255").to_bytes()


class RouteA:
    """The head-end's view of ``fleet``'s meters through ``server``."""

    def __init__(self, fleet: Fleet, server: MeterServer) -> None:
        self.fleet, self.server = fleet, server
        self.counters: Counter[int] = Counter()

    def ask(self, i: int, request: Apdu) -> GetResponseNormal:
        self.counters[i] += 1
        suite = self.fleet.suite(i)
        content = suite.protect(HEADEND_SYSTEM_TITLE, self.counters[i], encode_apdu(request))
        glo = encode_apdu(GeneralGloCiphering(HEADEND_SYSTEM_TITLE, content))
        answer = self.server.handle_for(i, encode_wrapper(WrapperFrame(1, 1, glo)))
        assert answer is not None
        reply = decode_apdu(decode_wrapper(answer).apdu)
        assert isinstance(reply, GeneralGloCiphering)
        _counter, plain = suite.unprotect(reply.system_title, reply.ciphered_content)
        response = decode_apdu(plain)
        assert isinstance(response, GetResponseNormal)
        return response

    def value(self, i: int, ln: bytes, class_id: int = 3) -> int:
        result = self.ask(i, GetRequestNormal(0xC1, class_id, ln, 2)).result
        assert isinstance(result, Data)
        assert isinstance(result.value, int)
        return result.value

    def import_register(self, i: int) -> int:
        return self.value(i, IMPORT)

    def export_register(self, i: int) -> int:
        return self.value(i, EXPORT)

    def power(self, i: int) -> int:
        return self.value(i, POWER)

    def profile(self, i: int, start: datetime, end: datetime) -> list[ProfileEntry]:
        """Load profile entries whose interval ends between ``start`` and ``end``."""
        request = GetRequestNormal(
            0xC2,
            7,
            LOAD_PROFILE.to_bytes(),
            2,
            1,
            range_descriptor(start.astimezone(UTC), end.astimezone(UTC)),
        )
        result = self.ask(i, request).result
        assert isinstance(result, Data)
        return decode_entries(result)
