"""What each kind of command sends to a meter, what answers it, and what the answer means.

Declarative: one ``Plan`` per ``CommandKind`` names the request to send, the answer types
that match it, and the read-back that follows a confirmed change (the state the MDMS gets in
the result). Each builder takes the command, the invoke id and the time (Unix seconds), so
the same plan serves the first send and nothing else: resends reuse the stored bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from openami.bus.commands import CommandKind, CommandRequest
from openami.errors import DecodeError
from openami.headend.collection import CONFIRMED_HIGH_PRIORITY
from openami.protocols.dlms import obis
from openami.protocols.dlms.apdu import Apdu
from openami.protocols.dlms.axdr import Data, DataType, decode_data, encode_data
from openami.protocols.dlms.cosem_datetime import encode_datetime
from openami.protocols.dlms.services import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
    MethodDescriptor,
    SetRequestNormal,
    SetRequestWithList,
    SetResponseNormal,
    SetResponseWithList,
)

__all__ = [
    "INTERVAL_MINUTES",
    "MAX_AMPS",
    "PLANS",
    "PUSH_SPREAD_SHARE",
    "Builder",
    "Plan",
    "command_problem",
    "invoke_id",
    "judge",
]

JST = timezone(timedelta(hours=9))
SWITCH = obis.ObisCode.parse("0.0.96.3.10.255").to_bytes()
LIMITER = obis.ObisCode.parse("0.0.17.0.0.255").to_bytes()
CLOCK = obis.CLOCK.to_bytes()
LOAD_PROFILE = obis.LOAD_PROFILE.to_bytes()
PUSH_SETUP = obis.PUSH_SETUP_INTERVAL.to_bytes()
INTERVAL_MINUTES = (60, 30, 15, 5)
# An interval change also narrows the push setup's randomisation_start_interval (attribute 5)
# to this share of the interval, so that the meters' pushes spread over the first sixth of
# each interval (300 s at 30 minutes, the meters' default) and never run into the next.
PUSH_SPREAD_SHARE = 6
MAX_AMPS = 655  # the limiter's threshold is long-unsigned in 0.01 A

_NOT_SUPPORTED = {
    CommandKind.FIRMWARE: (
        "firmware update is not supported yet: the command engine does not yet drive an "
        "image transfer (class 18 block transfer, verify, activate)"
    ),
    CommandKind.KEY_CHANGE: (
        "key change is not supported yet: the command engine does not yet wrap new keys "
        "under the meter's master key and switch the head-end's key store with the meter"
    ),
}


def _ln(text: str) -> bytes:
    return obis.ObisCode.parse(text).to_bytes()


def command_problem(request: CommandRequest) -> str | None:
    """Why ``request`` cannot be carried out as given, or None. Checked once, at submit."""
    kind = request.kind
    if kind in _NOT_SUPPORTED:
        return _NOT_SUPPORTED[kind]
    if kind is CommandKind.SET_CONTRACT_CURRENT:
        if request.amps is None:
            return "set_contract_current needs amps"
        if not 1 <= request.amps <= MAX_AMPS:
            return f"contract current {request.amps} A is outside 1..{MAX_AMPS} A"
    if kind is CommandKind.SET_INTERVAL and request.minutes not in INTERVAL_MINUTES:
        return f"interval {request.minutes} minutes is not one of {INTERVAL_MINUTES}"
    if kind in (CommandKind.GET, CommandKind.SET, CommandKind.ACTION):
        if request.target is None:
            return f"{kind} needs a target (class, OBIS code, attribute or method)"
        try:
            _ln(request.target.obis)
        except DecodeError as exc:
            return f"target: {exc}"
        if kind is CommandKind.SET and request.value is None:
            return "set needs a value (A-XDR)"
        if kind is not CommandKind.GET and request.value is not None:
            try:
                decode_data(request.value)
            except DecodeError as exc:
                return f"value is not A-XDR data: {exc}"
    return None


# -- what each kind sends, and what answers it ---------------------------------------------

Builder = Callable[[CommandRequest, int, float], Apdu]  # (request, invoke id, now) -> APDU


def _target(request: CommandRequest) -> tuple[int, bytes, int]:
    t = request.target
    if t is None:  # command_problem refused it at submit
        raise DecodeError("command has no target")
    return t.class_id, _ln(t.obis), t.id


def _switch(method: int) -> Builder:
    def build(_r: CommandRequest, invoke: int, _now: float) -> Apdu:
        # remote_disconnect / remote_reconnect (data) with data ::= integer(0)
        return ActionRequestNormal(
            invoke, MethodDescriptor(70, SWITCH, method), Data(DataType.INTEGER, 0)
        )

    return build


def _limit(r: CommandRequest, invoke: int, _now: float) -> Apdu:
    amps = Data(DataType.LONG_UNSIGNED, int(r.amps or 0) * 100)  # threshold_normal, 0.01 A
    return SetRequestNormal(invoke, AttributeDescriptor(71, LIMITER, 4), None, amps)


_INTERVAL_ITEMS = (
    (AttributeDescriptor(7, LOAD_PROFILE, 4), None),  # capture_period, seconds
    (AttributeDescriptor(40, PUSH_SETUP, 5), None),  # randomisation_start_interval, seconds
)


def _interval(r: CommandRequest, invoke: int, _now: float) -> Apdu:
    seconds = int(r.minutes or 0) * 60
    return SetRequestWithList(
        invoke,
        _INTERVAL_ITEMS,
        (
            Data(DataType.DOUBLE_LONG_UNSIGNED, seconds),
            Data(DataType.LONG_UNSIGNED, seconds // PUSH_SPREAD_SHARE),
        ),
    )


def _time(_r: CommandRequest, invoke: int, now: float) -> Apdu:
    moment = datetime.fromtimestamp(now, tz=UTC).astimezone(JST)
    value = Data(DataType.OCTET_STRING, encode_datetime(moment))
    return SetRequestNormal(invoke, AttributeDescriptor(8, CLOCK, 2), None, value)


def _get(r: CommandRequest, invoke: int, _now: float) -> Apdu:
    return GetRequestNormal(invoke, *_target(r))


def _set(r: CommandRequest, invoke: int, _now: float) -> Apdu:
    value = decode_data(r.value or b"")
    return SetRequestNormal(invoke, AttributeDescriptor(*_target(r)), None, value)


def _action(r: CommandRequest, invoke: int, _now: float) -> Apdu:
    parameters = decode_data(r.value) if r.value is not None else None
    return ActionRequestNormal(invoke, MethodDescriptor(*_target(r)), parameters)


def _read(class_id: int, ln: bytes, attribute: int) -> Builder:
    def build(_r: CommandRequest, invoke: int, _now: float) -> Apdu:
        return GetRequestNormal(invoke, class_id, ln, attribute)

    return build


def _read_interval(_r: CommandRequest, invoke: int, _now: float) -> Apdu:
    return GetRequestWithList(invoke, _INTERVAL_ITEMS)


@dataclass(frozen=True, slots=True)
class Plan:
    """The request a kind sends, the answers that match it, and the read-back (if any)."""

    command: Builder
    answers: tuple[type[Any], ...]
    readback: Builder | None = None
    readback_answers: tuple[type[Any], ...] = (GetResponseNormal,)


PLANS: dict[CommandKind, Plan] = {
    CommandKind.DISCONNECT: Plan(_switch(1), (ActionResponseNormal,), _read(70, SWITCH, 3)),
    CommandKind.RECONNECT: Plan(_switch(2), (ActionResponseNormal,), _read(70, SWITCH, 3)),
    CommandKind.SET_CONTRACT_CURRENT: Plan(_limit, (SetResponseNormal,), _read(71, LIMITER, 4)),
    CommandKind.SET_INTERVAL: Plan(
        _interval, (SetResponseWithList,), _read_interval, (GetResponseWithList,)
    ),
    CommandKind.TIME_SYNC: Plan(_time, (SetResponseNormal,), _read(8, CLOCK, 2)),
    CommandKind.GET: Plan(_get, (GetResponseNormal, GetResponseWithDataBlock)),
    CommandKind.SET: Plan(
        _set,
        (SetResponseNormal,),
        lambda r, invoke, _now: GetRequestNormal(invoke, *_target(r)),
    ),
    CommandKind.ACTION: Plan(_action, (ActionResponseNormal,)),
}


def judge(answer: Apdu) -> tuple[bool, str, bytes | None]:
    """(carried out?, why not, the state it reports as A-XDR) for one answer."""
    if isinstance(answer, ExceptionResponse):
        return (
            False,
            (
                f"the meter refused the request (exception: state-error {answer.state_error}, "
                f"service-error {answer.service_error})"
            ),
            None,
        )
    if isinstance(answer, ActionResponseNormal):
        data = answer.return_data
        state = encode_data(data) if isinstance(data, Data) else None
        if answer.result is ActionResult.SUCCESS:
            return True, "", state
        return False, f"the meter answered {answer.result.name.lower()}", None
    if isinstance(answer, SetResponseNormal):
        if answer.result is DataAccessResult.SUCCESS:
            return True, "", None
        return False, f"the meter answered {answer.result.name.lower()}", None
    if isinstance(answer, SetResponseWithList):
        wrong = [f"item {k + 1}: {r.name.lower()}" for k, r in enumerate(answer.results) if r]
        return (not wrong), ("the meter answered " + ", ".join(wrong)) if wrong else "", None
    if isinstance(answer, GetResponseNormal):
        if isinstance(answer.result, DataAccessResult):
            return False, f"the meter answered {answer.result.name.lower()}", None
        return True, "", encode_data(answer.result)
    if isinstance(answer, GetResponseWithList):
        wrong = [
            f"item {k + 1}: {r.name.lower()}"
            for k, r in enumerate(answer.results)
            if isinstance(r, DataAccessResult)
        ]
        if wrong:
            return False, "the meter answered " + ", ".join(wrong), None
        values = tuple(r for r in answer.results if not isinstance(r, DataAccessResult))
        return True, "", encode_data(Data(DataType.STRUCTURE, values))
    if isinstance(answer, GetResponseWithDataBlock):
        return False, "the answer comes in blocks, which commands do not fetch yet", None
    return False, f"unexpected answer {type(answer).__name__}", None


def invoke_id(counter: int) -> int:
    """The invoke id goes with the counter, so it is known again after a restart."""
    return CONFIRMED_HIGH_PRIORITY | (counter & 0x0F)
