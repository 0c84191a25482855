"""``openami hems``: a HEMS controller on the command line: find ECHONET Lite meters, read
their properties with units, and watch their power."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from openami.errors import ConfigError

if TYPE_CHECKING:
    from openami.hems.controller import HemsController, Reading
    from openami.protocols.echonet import EOJ

__all__ = ["app"]

app = typer.Typer(
    help="The home side of Route B: a HEMS controller speaking ECHONET Lite on UDP 3610.",
    no_args_is_help=True,
)

InterfaceOpt = Annotated[
    str,
    typer.Option(
        "--interface",
        help="Local address to bind (port 3610, shared with other HEMS software) and to send "
        "multicast from; 0.0.0.0 sends multicast through loopback.",
    ),
]
TimeoutOpt = Annotated[float, typer.Option(min=0.1, max=60.0, help="Seconds to wait for answers.")]
HostOpt = Annotated[str, typer.Option("--host", help="The meter's address.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _address(value: str, flag: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not an IPv4 address") from None


def _eoj(text: str | None) -> EOJ | None:
    from openami.protocols.echonet import EOJ

    if text is None:
        return None
    try:
        return EOJ.from_int(int(text, 16))
    except ValueError:
        raise ConfigError(f"--eoj {text!r} is not 6 hexadecimal digits, e.g. 028801") from None


@contextlib.contextmanager
def _controller(interface: str, timeout: float) -> Any:
    from openami.hems.controller import HemsController
    from openami.transport.echonet_udp import EchonetSocket

    with EchonetSocket(_address(interface, "--interface")) as endpoint:
        yield HemsController(endpoint, timeout=timeout)


def _number(value: Any, unit: str | None = None) -> str:
    if value is None:
        return "no data"
    suffix = f" {unit}" if unit else ""
    if unit == "kWh" and isinstance(value, float):
        return f"{value:,.3f}{suffix}"  # the meter counts 0.001 kWh: show every digit
    if isinstance(value, int | float):
        return f"{value:,}{suffix}"
    return f"{value}{suffix}"


def _text(reading: Reading) -> str:
    """One reading for people: the value in its unit (a day's history as 48 lines)."""
    shown, unit = reading.shown, reading.unit
    head = f"{reading.name} (0x{reading.epc:02X})"
    if isinstance(shown, dict) and "values" in shown and "day" in shown:
        lines = [f"{head}, {shown['day']} day(s) back:"]
        for slot, value in enumerate(shown["values"]):
            lines.append(f"  {slot // 2:02d}:{slot % 2 * 30:02d}  {_number(value, unit)}")
        return "\n".join(lines)
    if isinstance(shown, dict) and "at" in shown:
        return f"{head}: {_number(shown['value'], unit)} at {shown['at']}"
    if isinstance(shown, dict) and set(shown) == {"r", "t"}:
        return f"{head}: R {_number(shown['r'], 'A')}, T {_number(shown['t'], 'A')}"
    if isinstance(shown, list | dict):
        return f"{head}: {json.dumps(shown)}"
    return f"{head}: {_number(shown, unit)}"


@app.command()
def discover(
    timeout: TimeoutOpt = 2.0,
    interface: InterfaceOpt = "0.0.0.0",  # noqa: S104 - as HEMS software binds
    host: Annotated[
        list[str] | None,
        typer.Option(help="Ask these addresses (repeat it) instead of multicast."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Find ECHONET Lite nodes: a Get of the node profile's instance list (0xD6) to the
    multicast group 224.0.23.0 (or to each --host), then each object's production number.
    Prints one line per object: address, EOJ, class and production number.

    Example: openami hems discover --timeout 1
    """
    hosts = [_address(h, "--host") for h in host or []]
    with _controller(interface, timeout) as controller:
        found = controller.discover(hosts, timeout)
    if as_json:
        out = [
            {
                "address": f.address,
                "eoj": str(f.eoj),
                "class": f.class_name,
                "production_number": f.production_number,
            }
            for f in found
        ]
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        for f in found:
            number = f.production_number or "-"
            sys.stdout.write(f"{f.address:15} {f.eoj} {f.class_name or 'unknown class'} {number}\n")
    if not found:
        sys.stderr.write(f"no ECHONET Lite node answered within {timeout:g} s\n")
        raise typer.Exit(1)


def _property_help() -> str:
    from openami.hems.controller import property_names

    return (
        "Property: an EPC like 0xE7, or a name: "
        + ", ".join(property_names())
        + " (node profile names with --eoj 0EF001)."
    )


@app.command()
def read(
    prop: Annotated[str, typer.Argument(metavar="PROPERTY", help=_property_help())],
    host: HostOpt,
    day: Annotated[
        int | None,
        typer.Option(
            min=0, max=99, help="Days back for historical-data-1-* (sets 0xE5 first; 0: today)."
        ),
    ] = None,
    eoj: Annotated[
        str | None, typer.Option(help="Object, e.g. 0EF001 (default: the meter, 028801).")
    ] = None,
    as_json: JsonOpt = False,
    interface: InterfaceOpt = "0.0.0.0",  # noqa: S104 - as HEMS software binds
    timeout: TimeoutOpt = 2.0,
) -> None:
    """Read one property of a meter and print it with its unit (energy in kWh: the register
    times the coefficient 0xD3 times the unit 0xE1, read in the same request).

    Example: openami hems read instantaneous-power --host 127.0.0.2
    """
    from openami.hems.controller import resolve_property

    target = _eoj(eoj)
    resolve_property(prop, target)  # a bad name fails before any socket is opened
    address = _address(host, "--host")
    with _controller(interface, timeout) as controller:
        reading = controller.read(address, prop, eoj=target, day=day)
    if as_json:
        sys.stdout.write(json.dumps(reading.as_json()) + "\n")
    else:
        sys.stdout.write(_text(reading) + "\n")


@app.command()
def watch(
    host: HostOpt,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between readings of the power.")
    ] = 5.0,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many readings (default: never).")
    ] = None,
    as_json: JsonOpt = False,
    interface: InterfaceOpt = "0.0.0.0",  # noqa: S104 - as HEMS software binds
    timeout: TimeoutOpt = 2.0,
) -> None:
    """Read a meter's instantaneous power (0xE7) every --interval seconds and print it, with
    whatever the meter announces meanwhile (its registers at each half-hour, 0xEA/0xEB).

    Example: openami hems watch --host 127.0.0.2 --interval 2 --count 5
    """
    address = _address(host, "--host")
    with _controller(interface, timeout) as controller, contextlib.suppress(KeyboardInterrupt):
        _follow(controller, address, interval, count, as_json)


def _follow(
    controller: HemsController, host: str, interval: float, count: int | None, as_json: bool
) -> None:
    from openami.protocols.echonet import JST

    for reading in controller.watch(host, interval=interval, count=count):
        if as_json:
            line = json.dumps(reading.as_json())
        else:
            stamp = f"{reading.at.astimezone(JST):%H:%M:%S}"
            kind = "announced" if reading.announced else "read"
            line = f"{stamp} {kind} {_text(reading)}"
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
