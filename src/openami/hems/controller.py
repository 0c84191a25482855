"""The HEMS controller: finds ECHONET Lite nodes, reads a smart meter's properties with their
units, and follows its power and announcements, over an ``EchonetSocket``.

Requests are built and replies decoded by the sans-IO ``EchonetClient`` from the same property
tables the meter serves from. A reply is the datagram from the asked host with the request's
TID and a response ESV; announcements (INF) that arrive meanwhile are kept (the newest
``KEEP_NOTIFICATIONS``) for ``watch``.

Properties are named by their table names in lower case with dashes ("instantaneous power" is
``instantaneous-power``) or by EPC (``0xE7``). Energy registers come in kWh: the EDT times the
coefficient (0xD3) times the unit (0xE1), both read in the same request.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any

from openami.errors import ConfigError, DecodeError, RemoteProtocolError, TransportError
from openami.protocols.echonet import (
    CLASSES,
    EOJ,
    ESV,
    LOW_VOLTAGE_SMART_METER_CLASS,
    MULTICAST_IPV4,
    NODE_PROFILE,
    EchonetClient,
    FixedTimeReading,
    Frame,
    HalfHourlyHistory,
    History2,
    ObjectClass,
    PropertySpec,
    decode_frame,
)
from openami.transport.echonet_udp import EchonetSocket

__all__ = [
    "KEEP_NOTIFICATIONS",
    "METER",
    "Found",
    "HemsController",
    "Reading",
    "property_names",
    "resolve_property",
    "slug",
]

METER = LOW_VOLTAGE_SMART_METER_CLASS
METER_EOJ = EOJ(0x02, 0x88, 0x01)
KEEP_NOTIFICATIONS = 256
COEFFICIENT, UNIT = 0xD3, 0xE1
ENERGY = frozenset({0xE0, 0xE2, 0xE3, 0xE4, 0xEA, 0xEB, 0xEC})  # registers of 0x0288
UNITS: Mapping[int, str] = {0xE7: "W", 0xE8: "A"} | dict.fromkeys(ENERGY, "kWh")
POWER = 0xE7
HISTORY_DAY = 0xE5
_RESPONSES = frozenset(esv for esv in ESV if esv >= 0x70 or esv < 0x60)


def slug(name: str) -> str:
    """A table name as a command-line word: "cumulative energy (normal)" is
    ``cumulative-energy-normal``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def property_names(cls: ObjectClass = METER) -> list[str]:
    return [slug(spec.name) for spec in cls.properties]


def resolve_property(text: str, eoj: EOJ | None = None) -> tuple[EOJ, PropertySpec]:
    """The object and table row ``text`` names: an EPC (``0xE7``, ``E7``) of ``eoj`` (the
    meter by default), or a name of the meter's table, else of the node profile's."""
    if eoj is not None and eoj.code not in CLASSES:
        raise ConfigError(f"no property table for class {eoj.code:04X} (known: 0288, 0EF0)")
    if re.fullmatch(r"(0[xX])?[0-9A-Fa-f]{2}", text):
        target = eoj or METER_EOJ
        epc = int(text, 16)
        spec = CLASSES[target.code].spec(epc)
        if spec is None:
            raise ConfigError(f"EPC 0x{epc:02X} is not a property of class {target.code:04X}")
        return target, spec
    wanted = slug(text)
    choices = [eoj] if eoj is not None else [METER_EOJ, NODE_PROFILE]
    for target in choices:
        for spec in CLASSES[target.code].properties:
            if slug(spec.name) == wanted:
                return target, spec
    raise ConfigError(
        f"unknown property {text!r}; name one like instantaneous-power or give an EPC like 0xE7"
    )


@dataclass(frozen=True)
class Found:
    """A device object found on the network."""

    address: str
    eoj: EOJ
    class_name: str | None
    production_number: str | None


@dataclass(frozen=True)
class Reading:
    """One property value as read (or announced): ``value`` as decoded, ``shown`` in
    ``unit`` and JSON-able."""

    host: str
    eoj: EOJ
    epc: int
    name: str
    value: Any
    shown: Any
    unit: str | None
    at: datetime
    announced: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "eoj": str(self.eoj),
            "epc": f"0x{self.epc:02X}",
            "property": slug(self.name),
            "value": self.shown,
            "unit": self.unit,
            "at": self.at.isoformat(),
            "announced": self.announced,
        }


def plain(value: Any) -> Any:
    """A decoded EDT value as JSON-able Python."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if isinstance(value, EOJ):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, frozenset | set):
        return [f"0x{item:02X}" for item in sorted(value)]
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    return repr(value)


def _kwh(register: int | None, scale: Decimal) -> float | None:
    return None if register is None else float(register * scale)


# codes read best in hexadecimal, as EOJs are written: the manufacturer code, class codes
_HEXADECIMAL: Mapping[int, Callable[[Any], Any]] = {
    0x8A: lambda code: f"{code:06X}",
    0xD7: lambda codes: [f"{code:04X}" for code in codes],
}


def _node_shown(epc: int, value: Any) -> Any:
    """A node profile value as JSON-able Python."""
    render = _HEXADECIMAL.get(epc)
    return plain(value) if render is None else render(value)


def shown(epc: int, value: Any, scale: Decimal | None) -> Any:
    """``value`` of the meter's ``epc`` in its unit (kWh for registers given their scale)."""
    if epc in ENERGY and scale is not None:
        if isinstance(value, HalfHourlyHistory):
            return {"day": value.day, "values": [_kwh(v, scale) for v in value.values]}
        if isinstance(value, FixedTimeReading):
            return {"at": value.at.isoformat(), "value": _kwh(value.value, scale)}
        if isinstance(value, History2):
            start = None if value.start is None else value.start.isoformat()
            pairs = [[_kwh(n, scale), _kwh(r, scale)] for n, r in value.values]
            return {"start": start, "values": pairs}
        if isinstance(value, int) or value is None:
            return _kwh(value, scale)
    if epc == 0x8A:
        return _HEXADECIMAL[epc](value)
    if epc == 0xE8 and isinstance(value, tuple):
        r, t = value
        return {"r": None if r is None else r / 10, "t": None if t is None else t / 10}
    return plain(value)


class HemsController:
    """Talks to ECHONET Lite nodes through ``endpoint``; every wait is bounded by
    ``timeout`` seconds."""

    def __init__(
        self,
        endpoint: EchonetSocket,
        *,
        timeout: float = 2.0,
        client: EchonetClient | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.client = client or EchonetClient()
        self.clock = clock
        self.notifications: deque[tuple[str, Frame]] = deque(maxlen=KEEP_NOTIFICATIONS)

    # -- one exchange --------------------------------------------------------------------

    def _incoming(self, timeout: float) -> tuple[str, Frame] | None:
        """The next datagram that decodes, keeping announcements aside; None on timeout."""
        until = time.monotonic() + timeout
        while (left := until - time.monotonic()) > 0:
            got = self.endpoint.receive(left)
            if got is None:
                return None
            data, host = got
            try:
                frame = decode_frame(data)
            except DecodeError:
                continue
            if frame.esv in (ESV.INF, ESV.INFC):
                self.notifications.append((host, frame))
            return host, frame
        return None

    def exchange(self, host: str, request: Frame) -> Frame:
        """Send ``request`` to ``host`` and return its reply."""
        self.endpoint.send(request, host)
        until = time.monotonic() + self.timeout
        while (left := until - time.monotonic()) > 0:
            got = self._incoming(left)
            if got is None:
                break
            source, frame = got
            if (
                source == host
                and frame.tid == request.tid
                and frame.esv in _RESPONSES
                and frame.esv not in (ESV.INF, ESV.INFC)
            ):
                return frame
        raise TransportError(f"no answer from {host} within {self.timeout:g} s")

    def get(self, host: str, eoj: EOJ, epcs: Sequence[int]) -> dict[int, Any]:
        """The decoded values of ``epcs``; ``RemoteProtocolError`` when any is refused."""
        reply = self.exchange(host, self.client.get(eoj, epcs))
        values = self.client.parse(reply)
        refused = [epc for epc in epcs if epc not in values]
        if refused:
            listed = ", ".join(f"0x{epc:02X}" for epc in refused)
            raise RemoteProtocolError(f"{host} {eoj} refused to give EPC {listed}")
        return values

    def set(self, host: str, eoj: EOJ, values: Mapping[int, Any]) -> None:
        reply = self.exchange(host, self.client.set_c(eoj, values))
        if reply.esv is not ESV.SET_RES:
            listed = ", ".join(f"0x{p.epc:02X}" for p in reply.properties if p.edt)
            raise RemoteProtocolError(f"{host} {eoj} refused to set EPC {listed}")

    # -- discovery -----------------------------------------------------------------------

    def discover(self, hosts: Sequence[str] = (), timeout: float | None = None) -> list[Found]:
        """Every device object of the nodes that answer a Get of the node profile's instance
        list (0xD6): sent to ``hosts``, or to the multicast group when none are given. Waits
        ``timeout`` seconds for answers (less when every host has answered)."""
        wait = self.timeout if timeout is None else timeout
        request = self.client.get(NODE_PROFILE, [0xD6])
        targets = list(dict.fromkeys(hosts)) or [MULTICAST_IPV4]
        for target in targets:
            self.endpoint.send(request, target)
        lists: dict[str, tuple[EOJ, ...]] = {}
        until = time.monotonic() + wait
        while (left := until - time.monotonic()) > 0:
            if hosts and all(host in lists for host in targets):
                break
            got = self._incoming(left)
            if got is None:
                break
            source, frame = got
            if frame.tid != request.tid or frame.esv is not ESV.GET_RES:
                continue
            if frame.seoj != NODE_PROFILE or (hosts and source not in targets):
                continue
            instances = self.client.parse(frame).get(0xD6)
            if isinstance(instances, tuple):
                lists[source] = instances
        found: list[Found] = []
        for address in sorted(lists, key=_address_key):
            for eoj in lists[address]:
                found.append(self._describe(address, eoj))
        return found

    def _describe(self, address: str, eoj: EOJ) -> Found:
        cls = CLASSES.get(eoj.code)
        number: str | None = None
        try:
            value = self.client.parse(self.exchange(address, self.client.get(eoj, [0x8D])))
        except (TransportError, DecodeError):
            value = {}
        raw = value.get(0x8D)
        if isinstance(raw, str):
            number = raw
        elif isinstance(raw, bytes):  # a class without a table here: ASCII padded with NUL
            number = raw.rstrip(b"\0").decode("ascii", "replace")
        return Found(address, eoj, None if cls is None else cls.name, number)

    # -- reading -------------------------------------------------------------------------

    def read(
        self, host: str, prop: str, *, eoj: EOJ | None = None, day: int | None = None
    ) -> Reading:
        """Read one property by name or EPC; ``day`` (days back) is set into 0xE5 first for
        the historical data 1 (0xE2, 0xE4)."""
        target, spec = resolve_property(prop, eoj)
        if day is not None:
            if spec.epc not in (0xE2, 0xE4) or target.code != METER.code:
                raise ConfigError("--day goes with historical-data-1-normal or -reverse only")
            self.set(host, target, {HISTORY_DAY: day})
        epcs = [spec.epc]
        energy = target.code == METER.code and spec.epc in ENERGY
        if energy:
            epcs += [COEFFICIENT, UNIT]
        values = self.get(host, target, epcs)
        scale = _scale(values) if energy else None
        return self._reading(host, target, spec, values[spec.epc], scale, announced=False)

    def scale(self, host: str, eoj: EOJ = METER_EOJ) -> Decimal:
        """What one step of the meter's registers is in kWh."""
        return _scale(self.get(host, eoj, [COEFFICIENT, UNIT]))

    def _reading(
        self,
        host: str,
        eoj: EOJ,
        spec: PropertySpec,
        value: Any,
        scale: Decimal | None,
        *,
        announced: bool,
    ) -> Reading:
        unit = UNITS.get(spec.epc) if eoj.code == METER.code else None
        return Reading(
            host,
            eoj,
            spec.epc,
            spec.name,
            value,
            shown(spec.epc, value, scale)
            if eoj.code == METER.code
            else _node_shown(spec.epc, value),
            unit,
            self.clock(),
            announced,
        )

    def announced(self, host: str, scale: Decimal | None) -> list[Reading]:
        """The readings of the announcements kept from ``host`` (taken out of the queue)."""
        out: list[Reading] = []
        keep: list[tuple[str, Frame]] = []
        while self.notifications:
            source, frame = self.notifications.popleft()
            if source != host:
                keep.append((source, frame))
                continue
            cls = CLASSES.get(frame.seoj.code)
            try:
                values = self.client.parse(frame)
            except DecodeError:
                continue
            for epc, value in values.items():
                spec = None if cls is None else cls.spec(epc)
                if spec is not None:
                    out.append(self._reading(host, frame.seoj, spec, value, scale, announced=True))
        self.notifications.extend(keep)
        return out

    def watch(
        self, host: str, *, interval: float, count: int | None = None, eoj: EOJ = METER_EOJ
    ) -> Iterator[Reading]:
        """Instantaneous power every ``interval`` seconds (``count`` times, or for ever) and,
        between polls, what ``host`` announces."""
        scale = self.scale(host, eoj)
        spec = METER.spec(POWER)
        assert spec is not None
        polled = 0
        next_poll = time.monotonic()
        while count is None or polled < count:
            yield from self.announced(host, scale)
            left = next_poll - time.monotonic()
            if left > 0:
                self._incoming(left)
                continue
            value = self.get(host, eoj, [POWER])[POWER]
            polled += 1
            next_poll += interval
            yield self._reading(host, eoj, spec, value, scale, announced=False)
        yield from self.announced(host, scale)


def _scale(values: Mapping[int, Any]) -> Decimal:
    coefficient, unit = values.get(COEFFICIENT), values.get(UNIT)
    if not isinstance(coefficient, int) or not isinstance(unit, Decimal):
        raise RemoteProtocolError("the meter gave no coefficient (0xD3) or unit (0xE1)")
    return coefficient * unit


def _address_key(address: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in address.split("."))
    except ValueError:
        return (1 << 16,)
