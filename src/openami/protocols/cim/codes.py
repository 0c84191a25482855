"""IEC 61968-9 end device event and control type codes, and openami's tables into them.

Both kinds of code have four parts, ``endDeviceType.domain.subdomain.eventOrAction``:
``3.26.0.85`` is electric meter (3), power (26), no subdomain (0), failed (85): a power
failure, which an openami meter reports with its last gasp. The parts come from the
enumerations below (the values openami uses, numbered as in the standard's annex); codes are
built from them, never written as strings.

Every entry of ``EVENT_TYPES`` and ``CONTROL_TYPES`` says how sure we are of it:

* ``CONFIRMED`` - this exact code is used for this meaning by public 61968-9
  implementations (meter firmware alarm tables, head-end and MDM systems);
* ``DERIVED`` - those implementations use the same domain.subdomain.eventOrAction for this
  meaning, with another device type; we put 3, the electric meter, that reports it here;
* ``BEST_CHOICE`` - we found no public use and assembled the code from the enumerations: it
  is our reading of the standard, to be checked against its annex before a utility relies on
  it for interoperation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from types import MappingProxyType

from openami.errors import DecodeError
from openami.protocols.dlms.notification import EventCode

__all__ = [
    "CONTROL_TYPES",
    "EVENT_TYPES",
    "CodeChoice",
    "ControlKind",
    "EndDeviceCode",
    "EndDeviceDomain",
    "EndDeviceEventOrAction",
    "EndDeviceSubdomain",
    "EndDeviceType",
    "Provenance",
    "control_kind",
    "dlms_event_code",
    "end_device_control_type",
    "end_device_event_type",
]


class EndDeviceType(IntEnum):
    NOT_APPLICABLE = 0
    ELECTRIC_METER = 3
    GAS_METER = 4
    WATER_METER = 24
    COM_DEVICE = 26  # a communication unit


class EndDeviceDomain(IntEnum):
    NOT_APPLICABLE = 0
    COMMUNICATION = 1
    INSTALLATION = 6
    CONFIGURATION = 7
    DEMAND = 8
    SECURITY = 12
    LOAD_PROFILE = 16
    METROLOGY = 21
    POWER = 26
    RCD_SWITCH = 31  # remote connect/disconnect
    CLOCK = 36


class EndDeviceSubdomain(IntEnum):
    NOT_APPLICABLE = 0
    CURRENT = 6
    COVER = 29
    SECURITY_KEY = 32
    INTERVAL = 59
    MAGNETIC_SWITCH = 66
    READINGS = 87
    ROTATION = 93
    TIME_SYNC = 116
    SUPPLY_CAPACITY_LIMIT = 139


class EndDeviceEventOrAction(IntEnum):
    CHANGE = 13
    CONNECT = 18
    DISCONNECT = 23
    CHANGED = 24
    EXECUTE = 30
    READ = 46
    REPLACED = 52
    ERROR = 79
    FAILED = 85
    REMOVED = 212
    RESET = 214
    RESTORED = 216
    REVERSED = 219
    STARTED = 242


@dataclass(frozen=True, slots=True)
class EndDeviceCode:
    device_type: int
    domain: int
    subdomain: int
    event_or_action: int

    @property
    def code(self) -> str:
        return f"{self.device_type}.{self.domain}.{self.subdomain}.{self.event_or_action}"

    @classmethod
    def parse(cls, code: str) -> EndDeviceCode:
        parts = code.split(".") if isinstance(code, str) else []
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 9 for p in parts):
            raise DecodeError(f"an end device code is four dot-separated integers: {code!r}")
        device_type, domain, subdomain, event_or_action = (int(p) for p in parts)
        return cls(device_type, domain, subdomain, event_or_action)


class Provenance(StrEnum):
    CONFIRMED = "confirmed"
    DERIVED = "derived"
    BEST_CHOICE = "best choice"


@dataclass(frozen=True, slots=True)
class CodeChoice:
    code: EndDeviceCode
    provenance: Provenance
    note: str


_METER = EndDeviceType.ELECTRIC_METER
_D = EndDeviceDomain
_S = EndDeviceSubdomain
_A = EndDeviceEventOrAction
_P = Provenance


def _choice(
    device: EndDeviceType,
    domain: EndDeviceDomain,
    subdomain: EndDeviceSubdomain,
    action: EndDeviceEventOrAction,
    provenance: Provenance,
    note: str,
) -> CodeChoice:
    return CodeChoice(EndDeviceCode(device, domain, subdomain, action), provenance, note)


# What each event an openami meter pushes (DLMS event code) is called in 61968-9.
EVENT_TYPES: Mapping[EventCode, CodeChoice] = MappingProxyType(
    {
        EventCode.POWER_DOWN: _choice(
            _METER,
            _D.POWER,
            _S.NOT_APPLICABLE,
            _A.FAILED,
            _P.CONFIRMED,
            "power failure; the last gasp is how the meter gets to report it",
        ),
        EventCode.POWER_UP: _choice(
            _METER,
            _D.POWER,
            _S.NOT_APPLICABLE,
            _A.RESTORED,
            _P.DERIVED,
            "power restored; seen for communication modules (device type 26)",
        ),
        EventCode.CLOCK_ADJUSTED: _choice(
            _METER,
            _D.CLOCK,
            _S.TIME_SYNC,
            _A.CHANGED,
            _P.DERIVED,
            "clock set by time synchronisation; seen with device type 0",
        ),
        EventCode.TERMINAL_COVER_OPENED: _choice(
            _METER,
            _D.SECURITY,
            _S.COVER,
            _A.REMOVED,
            _P.CONFIRMED,
            "terminal cover removed (opened): a tamper indication",
        ),
        EventCode.STRONG_MAGNETIC_FIELD: _choice(
            _METER,
            _D.SECURITY,
            _S.MAGNETIC_SWITCH,
            _A.STARTED,
            _P.DERIVED,
            "strong magnetic field detected; seen with device type 0",
        ),
        EventCode.CLOCK_ERROR: _choice(
            _METER,
            _D.CLOCK,
            _S.NOT_APPLICABLE,
            _A.ERROR,
            _P.CONFIRMED,
            "the meter's clock failed; its reads carry 'clock invalid' until it is set",
        ),
        EventCode.REVERSE_FLOW: _choice(
            _METER,
            _D.POWER,
            _S.ROTATION,
            _A.REVERSED,
            _P.CONFIRMED,
            "energy received (reverse flow) where no generation is registered",
        ),
        EventCode.COMM_UNIT_REPLACED: _choice(
            EndDeviceType.COM_DEVICE,
            _D.INSTALLATION,
            _S.NOT_APPLICABLE,
            _A.REPLACED,
            _P.BEST_CHOICE,
            "the meter's separate communication unit was replaced; the event is about the "
            "communication unit, hence device type 26",
        ),
    }
)


class ControlKind(StrEnum):
    """The controls openami's head-end carries out (see ``openami.bus.commands``)."""

    DISCONNECT = "disconnect"
    CONNECT = "connect"
    SET_CONTRACT_CURRENT = "set_contract_current"
    SET_INTERVAL = "set_interval"
    TIME_SYNC = "time_sync"
    ON_DEMAND_READ = "on_demand_read"
    DEMAND_RESET = "demand_reset"
    KEY_CHANGE = "key_change"


CONTROL_TYPES: Mapping[ControlKind, CodeChoice] = MappingProxyType(
    {
        ControlKind.DISCONNECT: _choice(
            _METER,
            _D.RCD_SWITCH,
            _S.NOT_APPLICABLE,
            _A.DISCONNECT,
            _P.CONFIRMED,
            "open the service switch",
        ),
        ControlKind.CONNECT: _choice(
            _METER,
            _D.RCD_SWITCH,
            _S.NOT_APPLICABLE,
            _A.CONNECT,
            _P.CONFIRMED,
            "close the service switch",
        ),
        ControlKind.SET_CONTRACT_CURRENT: _choice(
            _METER,
            _D.RCD_SWITCH,
            _S.SUPPLY_CAPACITY_LIMIT,
            _A.CHANGE,
            _P.BEST_CHOICE,
            "change the contract current (ampere) limit; implementations enable and disable "
            "the supply capacity limit with this domain and subdomain",
        ),
        ControlKind.SET_INTERVAL: _choice(
            _METER,
            _D.LOAD_PROFILE,
            _S.INTERVAL,
            _A.CHANGE,
            _P.BEST_CHOICE,
            "change the load profile's interval (60/30/15/5 minutes)",
        ),
        ControlKind.TIME_SYNC: _choice(
            _METER,
            _D.CLOCK,
            _S.TIME_SYNC,
            _A.EXECUTE,
            _P.BEST_CHOICE,
            "synchronise the meter's clock",
        ),
        ControlKind.ON_DEMAND_READ: _choice(
            _METER,
            _D.METROLOGY,
            _S.READINGS,
            _A.READ,
            _P.BEST_CHOICE,
            "read the meter now; the standard's usual way is a MeterReadings 'get' request",
        ),
        ControlKind.DEMAND_RESET: _choice(
            _METER,
            _D.DEMAND,
            _S.NOT_APPLICABLE,
            _A.RESET,
            _P.DERIVED,
            "reset the maximum demand register; seen with device type 0",
        ),
        ControlKind.KEY_CHANGE: _choice(
            _METER,
            _D.SECURITY,
            _S.SECURITY_KEY,
            _A.CHANGE,
            _P.DERIVED,
            "change (renew) the meter's keys; seen with device type 0",
        ),
    }
)

_EVENT_BY_CODE = {choice.code.code: event for event, choice in EVENT_TYPES.items()}
_CONTROL_BY_CODE = {choice.code.code: kind for kind, choice in CONTROL_TYPES.items()}
assert len(_EVENT_BY_CODE) == len(EVENT_TYPES), "two events share a code"
assert len(_CONTROL_BY_CODE) == len(CONTROL_TYPES), "two controls share a code"


def end_device_event_type(event: EventCode) -> str:
    """The EndDeviceEventType code of an openami meter event."""
    return EVENT_TYPES[event].code.code


def dlms_event_code(event_type: str) -> EventCode | None:
    """The openami meter event an EndDeviceEventType code stands for, if it is one of ours."""
    return _EVENT_BY_CODE.get(event_type)


def end_device_control_type(kind: ControlKind) -> str:
    return CONTROL_TYPES[kind].code.code


def control_kind(control_type: str) -> ControlKind | None:
    """The openami control an EndDeviceControlType code asks for; ``None`` if we have none."""
    return _CONTROL_BY_CODE.get(control_type)
