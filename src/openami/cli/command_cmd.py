"""``openami headend command``: send one command to one meter and wait for its result."""

from __future__ import annotations

import sys
import time
import uuid
from typing import Annotated

import msgspec
import typer
from rich.console import Console

from openami.errors import ConfigError, DecodeError
from openami.protocols.dlms.axdr import BitString, Data, DataType

__all__ = ["command"]

_TEXT = (DataType.VISIBLE_STRING, DataType.UTF8_STRING)


def _target(text: str) -> tuple[int, str, int]:
    parts = text.split("/")
    if len(parts) != 3:
        raise ConfigError(f"--target {text!r}: expected CLASS/OBIS/ID, e.g. 70/0.0.96.3.10.255/2")
    try:
        return int(parts[0]), parts[1], int(parts[2])
    except ValueError:
        raise ConfigError(f"--target {text!r}: class and id must be numbers") from None


def plain(data: Data) -> object:
    """A meter's A-XDR value as plain JSON-able Python: numbers and booleans as they are,
    arrays and structures as lists, a 12-octet string that is a valid COSEM date-time as ISO
    text, other octet strings as hexadecimal."""
    from openami.protocols.dlms.cosem_datetime import decode_datetime

    value = data.value
    if isinstance(value, tuple) and data.type in (DataType.ARRAY, DataType.STRUCTURE):
        return [plain(item) for item in value if isinstance(item, Data)]
    if isinstance(value, BitString):
        return value.bits.hex()
    if isinstance(value, bytes):
        if data.type in _TEXT:
            return value.decode("utf-8", "replace")
        if len(value) == 12:
            try:
                return decode_datetime(value).isoformat()
            except DecodeError:
                pass
        return value.hex()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def command(
    kind: Annotated[
        str,
        typer.Argument(
            help="disconnect, reconnect, set_contract_current (--amps), set_interval "
            "(--minutes), time_sync, get/set/action (--target, --value)."
        ),
    ],
    meter: Annotated[int, typer.Option(min=1, help="The meter's id.")],
    bus: Annotated[str, typer.Option(help="The head-end's bus: nats://HOST:PORT.")] = (
        "nats://127.0.0.1:4222"
    ),
    amps: Annotated[int | None, typer.Option(help="Contract current, A.")] = None,
    minutes: Annotated[int | None, typer.Option(help="Interval: 60, 30, 15 or 5.")] = None,
    target: Annotated[
        str | None, typer.Option(help="CLASS/OBIS/ID of the attribute or method.")
    ] = None,
    value: Annotated[
        str | None, typer.Option(help="A-XDR value for set/action, hexadecimal.")
    ] = None,
    deadline: Annotated[
        float, typer.Option(min=1.0, help="Seconds from now after which it must not run.")
    ] = 600.0,
    wait: Annotated[
        float, typer.Option(min=0.0, help="Seconds to wait for the result (0: do not wait).")
    ] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Put a command on the bus for the head-end, which carries it out at most once (even
    when it has to send it again, or restarts) and reads back the meter's state; print the
    result. Exit code 0 on success, 1 when the command failed or expired.

    Example: openami headend command disconnect --meter 42
    """
    from openami.bus.commands import (
        SUBJECT_COMMAND_RESULTS,
        SUBJECT_COMMANDS,
        CommandKind,
        CommandRequest,
        CommandResult,
        CommandStatus,
        Target,
        decode_command_message,
        encode_command_message,
    )
    from openami.bus.factory import bus_from_url
    from openami.headend.command_plans import command_problem
    from openami.protocols.dlms.axdr import decode_data

    try:
        what = CommandKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in CommandKind)
        raise ConfigError(f"unknown command {kind!r}; one of {kinds}") from None
    try:
        raw = bytes.fromhex(value) if value is not None else None
    except ValueError:
        raise ConfigError(f"--value {value!r} is not hexadecimal") from None
    aim = None if target is None else Target(*_target(target))
    request = CommandRequest(
        f"cli-{uuid.uuid4().hex}", meter, what, int(time.time() + deadline), amps, minutes, aim, raw
    )
    # what the head-end would refuse for its input (a missing --amps, a target that is no
    # OBIS code) is said here and nothing is sent; a kind it does not support yet goes, to
    # be recorded and answered as failed
    problem = command_problem(request)
    if problem is not None and what not in (CommandKind.FIRMWARE, CommandKind.KEY_CHANGE):
        raise ConfigError(problem)
    err = Console(stderr=True)
    with bus_from_url(bus) as the_bus:
        results = the_bus.subscribe(SUBJECT_COMMAND_RESULTS)  # before publishing: none missed
        the_bus.publish(SUBJECT_COMMANDS, encode_command_message(request))
        the_bus.flush()
        err.print(
            f"command {request.command_id} ({what.value}) for meter {meter} is queued",
            soft_wrap=True,
        )
        result: CommandResult | None = None
        until = time.monotonic() + wait
        while result is None and time.monotonic() < until:
            for message in results.fetch(100, timeout=0.5):
                message.ack()
                decoded = decode_command_message(message.data)
                if isinstance(decoded, CommandResult) and decoded.command_id == request.command_id:
                    result = decoded
    if result is None:
        if wait:
            err.print(f"no result within {wait:g} s; the head-end carries on with it")
            raise typer.Exit(1)
        return
    state: object = None
    if result.state is not None:
        try:
            state = plain(decode_data(result.state))
        except DecodeError:
            state = result.state.hex()
    if as_json:
        out = msgspec.structs.asdict(result) | {
            "state": state,
            "state_axdr": None if result.state is None else result.state.hex(),
        }
        sys.stdout.write(msgspec.json.encode(out).decode() + "\n")
    else:
        err.print(
            f"{result.status.value}: {result.reason}"
            + (f" (state {state})" if state is not None else ""),
            soft_wrap=True,
        )
    if result.status is not CommandStatus.SUCCESS:
        raise typer.Exit(1)
