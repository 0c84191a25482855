"""The HEMS side of Route B: build requests and read replies with the same property tables
the node serves from, so a value decodes to exactly what the meter object encoded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from openami.errors import LocalProtocolError
from openami.protocols.echonet.frame import EOJ, ESV, Frame, Property, decode_frame
from openami.protocols.echonet.meter import LOW_VOLTAGE_SMART_METER_CLASS
from openami.protocols.echonet.node_profile import NODE_PROFILE_CLASS
from openami.protocols.echonet.objects import ObjectClass

__all__ = ["CLASSES", "CONTROLLER", "EchonetClient"]

CONTROLLER = EOJ(0x05, 0xFF, 0x01)  # the controller class, the usual SEOJ of a HEMS

# The services whose (Get) property list carries values of the sender's object. A Set
# response's EDTs are the requester's own refused values, not the object's.
VALUE_ESVS = frozenset(
    {ESV.GET_RES, ESV.GET_SNA, ESV.INF, ESV.INF_SNA, ESV.INFC, ESV.SETGET_RES, ESV.SETGET_SNA}
)

CLASSES: Mapping[int, ObjectClass] = {
    cls.code: cls for cls in (NODE_PROFILE_CLASS, LOW_VOLTAGE_SMART_METER_CLASS)
}


class EchonetClient:
    """Builds Get, SetC, SetI and INF_REQ frames with increasing TIDs and decodes replies
    into ``{epc: value}``. Sans-IO: the caller encodes and sends the frames."""

    def __init__(
        self,
        seoj: EOJ = CONTROLLER,
        *,
        first_tid: int = 1,
        classes: Mapping[int, ObjectClass] = CLASSES,
    ) -> None:
        if not 0 <= first_tid <= 0xFFFF:
            raise LocalProtocolError(f"TID {first_tid} does not fit 2 octets")
        self.seoj = seoj
        self.classes = classes
        self._tid = first_tid

    def get(self, deoj: EOJ, epcs: Iterable[int]) -> Frame:
        return self._request(deoj, ESV.GET, tuple(Property(epc) for epc in epcs))

    def inf_req(self, deoj: EOJ, epcs: Iterable[int]) -> Frame:
        return self._request(deoj, ESV.INF_REQ, tuple(Property(epc) for epc in epcs))

    def set_c(self, deoj: EOJ, values: Mapping[int, Any]) -> Frame:
        """A SetC of ``values``: each either raw EDT ``bytes`` or a value the class table
        encodes (e.g. ``{0xE5: 1}`` for yesterday's half-hourly history)."""
        return self._request(deoj, ESV.SETC, self._encode(deoj, values))

    def set_i(self, deoj: EOJ, values: Mapping[int, Any]) -> Frame:
        return self._request(deoj, ESV.SETI, self._encode(deoj, values))

    def parse(self, reply: Frame | bytes) -> dict[int, Any]:
        """The decoded values of a reply or notification, keyed by EPC: the properties of a
        Get or SetGet response, an INF or an INFC. Properties with PDC 0 (refused in an SNA)
        are left out, and a Set response has no values; EPCs the table does not know come
        back as raw bytes. A value that does not decode raises ``DecodeError``."""
        frame = decode_frame(reply) if isinstance(reply, bytes) else reply
        cls = self.classes.get(frame.seoj.code)
        values: dict[int, Any] = {}
        if frame.esv not in VALUE_ESVS:
            return values
        for prop in frame.properties:
            if not prop.edt:
                continue
            spec = cls.spec(prop.epc) if cls is not None else None
            values[prop.epc] = prop.edt if spec is None else spec.decode(prop.edt)
        return values

    def _encode(self, deoj: EOJ, values: Mapping[int, Any]) -> tuple[Property, ...]:
        cls = self.classes.get(deoj.code)
        properties = []
        for epc, value in values.items():
            if isinstance(value, bytes):
                properties.append(Property(epc, value))
                continue
            spec = cls.spec(epc) if cls is not None else None
            if spec is None:
                raise LocalProtocolError(f"no table entry to encode EPC 0x{epc:02X} of {deoj}")
            properties.append(Property(epc, spec.encode(value)))
        return tuple(properties)

    def _request(self, deoj: EOJ, esv: ESV, properties: tuple[Property, ...]) -> Frame:
        if not properties:
            raise LocalProtocolError(f"a {esv.name} request needs at least one property")
        frame = Frame(self._tid, self.seoj, deoj, esv, properties)
        self._tid = (self._tid + 1) & 0xFFFF
        return frame
