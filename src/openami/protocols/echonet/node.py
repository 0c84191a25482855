"""A sans-IO ECHONET Lite node: the node profile and its device objects, answering frames.

``EchonetNode.handle`` takes one received datagram and returns the frames to send back (the
caller encodes them and sends them to the requester). It follows the service rules of the
ECHONET Lite specification, part 2:

* the reply echoes the request's TID; its SEOJ is the answering object, its DEOJ the
  requester's SEOJ;
* a DEOJ with instance 0x00 addresses every instance of that class (one reply each); a DEOJ
  the node does not hold is discarded without a reply, as is anything that does not decode;
* Get -> Get_Res when every property is readable, else Get_SNA where each refused property
  comes back with PDC 0 (and the readable ones with their values);
* SetC -> Set_Res (every property with PDC 0), else SetC_SNA, where accepted properties have
  PDC 0 and refused ones echo the EDT of the request; SetI -> no reply on success, SetI_SNA
  (the same shape) on failure;
* INF_REQ -> INF (or INF_SNA), INFC -> INFC_Res (PDC 0), SetGet -> SetGet_Res / SetGet_SNA;
* responses and notifications from peers (ESV 0x5x and 0x7x, INF included) are not answered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from openami.errors import DecodeError, LocalProtocolError
from openami.protocols.echonet.frame import EOJ, ESV, Frame, Property, decode_frame
from openami.protocols.echonet.node_profile import NODE_PROFILE, NodeProfile
from openami.protocols.echonet.objects import EchonetObject

__all__ = ["EchonetNode"]


@dataclass(frozen=True, slots=True)
class _Outcome:
    properties: tuple[Property, ...]
    ok: bool


def _reads(obj: EchonetObject, request: tuple[Property, ...], *, announce: bool) -> _Outcome:
    out, ok = [], True
    for prop in request:
        edt = obj.read(prop.epc, announce=announce)
        if edt is None:
            out.append(Property(prop.epc))  # a refused read comes back with PDC 0
            ok = False
        else:
            out.append(Property(prop.epc, edt))
    return _Outcome(tuple(out), ok)


def _writes(obj: EchonetObject, request: tuple[Property, ...]) -> _Outcome:
    out, ok = [], True
    for prop in request:
        if obj.write(prop.epc, prop.edt):
            out.append(Property(prop.epc))
        else:
            out.append(prop)  # a refused Set echoes the requested EDT
            ok = False
    return _Outcome(tuple(out), ok)


class EchonetNode:
    """The node profile (0x0EF001) plus the given device objects."""

    def __init__(
        self,
        devices: Iterable[EchonetObject],
        *,
        manufacturer_code: int,
        unique_id: bytes = bytes(13),
    ) -> None:
        devices = tuple(devices)
        eojs = [device.eoj for device in devices]
        if len(set(eojs)) != len(eojs) or NODE_PROFILE in eojs:
            raise LocalProtocolError(f"device objects must have distinct EOJs: {eojs}")
        self.profile = NodeProfile(eojs, manufacturer_code=manufacturer_code, unique_id=unique_id)
        self.objects: tuple[EchonetObject, ...] = (self.profile, *devices)
        self._tid = 0

    def object(self, eoj: EOJ) -> EchonetObject | None:
        return next((obj for obj in self.objects if obj.eoj == eoj), None)

    def handle(self, datagram: bytes) -> list[Frame]:
        """The replies to one received datagram (often none). Nothing the peer sends makes
        this raise; only a device object's own data source can (``LocalProtocolError``)."""
        try:
            request = decode_frame(datagram)
        except DecodeError:
            return []
        return self.respond(request)

    def respond(self, request: Frame) -> list[Frame]:
        service = _SERVICES.get(request.esv)
        if service is None or not (request.properties or request.set_properties):
            return []
        replies = []
        for target in self._targets(request.deoj):
            reply = service(target, request)
            if reply is not None:
                replies.append(reply)
        return replies

    def startup_announcement(self) -> Frame:
        """The INF of 0xD5 (instance list notification) a node multicasts when it starts."""
        return self.announcement(self.profile, (0xD5,), deoj=NODE_PROFILE)

    def announcement(
        self, obj: EchonetObject, epcs: Iterable[int], *, deoj: EOJ = NODE_PROFILE
    ) -> Frame:
        """An INF of ``epcs`` from ``obj`` with the node's next TID (to multicast)."""
        properties = []
        for epc in epcs:
            edt = obj.read(epc, announce=True)
            if edt is None:
                raise LocalProtocolError(f"{obj.eoj} cannot announce EPC 0x{epc:02X}")
            properties.append(Property(epc, edt))
        return Frame(self._next_tid(), obj.eoj, deoj, ESV.INF, tuple(properties))

    def _next_tid(self) -> int:
        tid, self._tid = self._tid, (self._tid + 1) & 0xFFFF
        return tid

    def _targets(self, deoj: EOJ) -> list[EchonetObject]:
        if deoj.instance == 0:
            return [obj for obj in self.objects if obj.eoj.code == deoj.code]
        return [obj for obj in self.objects if obj.eoj == deoj]


def _reply(obj: EchonetObject, request: Frame, esv: ESV, outcome: _Outcome) -> Frame:
    return Frame(request.tid, obj.eoj, request.seoj, esv, outcome.properties)


def _get(obj: EchonetObject, request: Frame) -> Frame:
    outcome = _reads(obj, request.properties, announce=False)
    return _reply(obj, request, ESV.GET_RES if outcome.ok else ESV.GET_SNA, outcome)


def _inf_req(obj: EchonetObject, request: Frame) -> Frame:
    outcome = _reads(obj, request.properties, announce=True)
    return _reply(obj, request, ESV.INF if outcome.ok else ESV.INF_SNA, outcome)


def _setc(obj: EchonetObject, request: Frame) -> Frame:
    outcome = _writes(obj, request.properties)
    return _reply(obj, request, ESV.SET_RES if outcome.ok else ESV.SETC_SNA, outcome)


def _seti(obj: EchonetObject, request: Frame) -> Frame | None:
    outcome = _writes(obj, request.properties)
    return None if outcome.ok else _reply(obj, request, ESV.SETI_SNA, outcome)


def _infc(obj: EchonetObject, request: Frame) -> Frame:
    acknowledged = tuple(Property(prop.epc) for prop in request.properties)
    return _reply(obj, request, ESV.INFC_RES, _Outcome(acknowledged, True))


def _setget(obj: EchonetObject, request: Frame) -> Frame:
    sets = _writes(obj, request.set_properties)
    gets = _reads(obj, request.properties, announce=False)
    esv = ESV.SETGET_RES if sets.ok and gets.ok else ESV.SETGET_SNA
    return Frame(request.tid, obj.eoj, request.seoj, esv, gets.properties, sets.properties)


_SERVICES: Mapping[ESV, Callable[[EchonetObject, Frame], Frame | None]] = {
    ESV.GET: _get,
    ESV.INF_REQ: _inf_req,
    ESV.SETC: _setc,
    ESV.SETI: _seti,
    ESV.INFC: _infc,
    ESV.SETGET: _setget,
}
