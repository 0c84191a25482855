"""``openami dlms``: decode frames and read meters, the tools an engineer reaches for."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Annotated, Any

import typer

from openami.cli.dlms_view import plain, render
from openami.errors import ConfigError, DecodeError
from openami.protocols.dlms.apdu import GeneralDedCiphering, GeneralGloCiphering, decode_apdu
from openami.protocols.dlms.hdlc import decode_frame, strip_llc
from openami.protocols.dlms.obis import ObisCode
from openami.protocols.dlms.security import SuiteZero
from openami.protocols.dlms.services import CipheredService
from openami.protocols.dlms.wrapper import decode_wrapper

__all__ = ["app", "decode_hex"]

app = typer.Typer(help="DLMS/COSEM tools: decode frames, read meters.", no_args_is_help=True)


def _hex(text: str, what: str, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(text.replace(" ", "").replace(":", ""))
    except ValueError:
        raise ConfigError(f"{what} is not hexadecimal") from None
    if size is not None and len(raw) != size:
        raise ConfigError(f"{what} must be {size} octets, got {len(raw)}")
    return raw


def decode_hex(raw: bytes, suite: SuiteZero | None, title: bytes | None) -> dict[str, Any]:
    """Decode a wrapper frame, an HDLC frame or a bare APDU; open it when keys are given."""
    out: dict[str, Any] = {}
    apdu_bytes = raw
    if len(raw) >= 8 and raw[:2] == b"\x00\x01":
        frame = decode_wrapper(raw)
        out["wrapper"] = {
            "source_wport": frame.source_wport,
            "destination_wport": frame.destination_wport,
        }
        apdu_bytes = frame.apdu
    elif raw[:1] == b"\x7e":
        hdlc = decode_frame(raw)
        out["hdlc"] = plain(hdlc) | {"information": None}
        info = hdlc.information
        # E6 E6 00 from a client, E6 E7 00 from a server
        apdu_bytes = strip_llc(info, from_client=info[1:2] == b"\xe6") if info else b""
    apdu = decode_apdu(apdu_bytes)
    out["apdu"] = plain(apdu)
    if suite is not None:
        sender = title
        content = None
        if isinstance(apdu, GeneralGloCiphering | GeneralDedCiphering):
            sender, content = apdu.system_title, apdu.ciphered_content
        elif isinstance(apdu, CipheredService):
            content = apdu.ciphered_content
        if content is not None:
            if sender is None:
                raise ConfigError(
                    "this APDU does not carry the sender's system title: pass --system-title"
                )
            counter, inner = suite.unprotect(sender, content)
            out["invocation_counter"] = counter
            try:
                out["deciphered"] = plain(decode_apdu(inner))
            except DecodeError:
                out["deciphered"] = {"initiate": inner.hex()}
    return out


@app.command()
def decode(
    frame: Annotated[
        str, typer.Argument(help="The frame in hex: a 4-7 wrapper frame, an HDLC frame or an APDU.")
    ],
    key: Annotated[
        str | None,
        typer.Option("--key", help="Encryption key (EK), 16 octets hex, to open ciphered APDUs."),
    ] = None,
    auth_key: Annotated[
        str | None, typer.Option("--auth-key", help="Authentication key (AK), 16 octets hex.")
    ] = None,
    system_title: Annotated[
        str | None,
        typer.Option(
            "--system-title",
            help="Sender's system title (8 octets hex) for service-specific ciphered APDUs.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Decode any DLMS frame and show what is in it.

    Example: openami dlms decode 000100010001000dc001c100080000010000ff0200
    """
    raw = _hex(frame, "FRAME")
    if not raw:
        raise ConfigError("FRAME is empty")
    suite = None
    if key or auth_key:
        if not (key and auth_key):
            raise ConfigError("--key and --auth-key go together")
        suite = SuiteZero(_hex(key, "--key", 16), _hex(auth_key, "--auth-key", 16))
    title = _hex(system_title, "--system-title", 8) if system_title else None
    result = decode_hex(raw, suite, title)
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write("\n".join(render(result)) + "\n")


def _when(text: str | None, what: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what} {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ConfigError(f"{what} needs a time zone, e.g. 2026-11-25T09:00+09:00")
    return moment


@app.command()
def read(
    host: Annotated[str, typer.Argument(help="The meter's address.")],
    target: Annotated[
        str,
        typer.Argument(
            metavar="OBIS[:ATTR]",
            help="Object and attribute, e.g. 1.0.1.8.0.255:2 (attribute 2 by default).",
        ),
    ],
    port: Annotated[int, typer.Option(min=1, max=65535, help="The meter's port.")] = 4059,
    ek: Annotated[str | None, typer.Option("--ek", help="The meter's encryption key, hex.")] = None,
    ak: Annotated[
        str | None, typer.Option("--ak", help="The meter's authentication key, hex.")
    ] = None,
    keys: Annotated[
        str | None,
        typer.Option(
            "--keys",
            help="One JSON line from 'openami meter serve --print-keys' (or @FILE holding it).",
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Profile range start, ISO 8601 with zone.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Profile range end, ISO 8601 with zone.")
    ] = None,
    udp: Annotated[bool, typer.Option("--udp", help="Use UDP instead of TCP.")] = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=120, help="Seconds to wait for each answer.")
    ] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Read one value, or a load-profile range, from a meter with HLS-GMAC and suite 0.

    Example: openami dlms read 127.0.0.1 1.0.99.1.0.255 --keys @meter1.json \\
             --from 2026-11-25T00:00+09:00 --to 2026-11-25T06:00+09:00
    """
    from openami.headend.dlms_client import DlmsClient, MeterKeys

    if keys:
        text = keys
        if keys.startswith("@"):
            try:
                with open(keys[1:], encoding="utf-8") as handle:
                    text = handle.readline()
            except OSError as exc:
                raise ConfigError(f"cannot read {keys[1:]}: {exc.strerror}") from None
        try:
            desc = json.loads(text)
            ek, ak = desc["ek"], desc["ak"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError("--keys is not a JSON object with 'ek' and 'ak'") from None
    if not (ek and ak):
        raise ConfigError("give the meter's keys: --ek and --ak, or --keys")
    obis_text, _, attr_text = target.partition(":")
    code = ObisCode.parse(obis_text) if obis_text.count(".") == 5 or "-" in obis_text else None
    if code is None:
        raise ConfigError(f"{obis_text!r} is not an OBIS code like 1.0.1.8.0.255")
    if attr_text and not attr_text.isdigit():
        raise ConfigError(f"attribute {attr_text!r} is not a number")
    begin, finish = _when(start, "--from"), _when(end, "--to")
    if (begin is None) != (finish is None):
        raise ConfigError("--from and --to go together")

    async def go() -> Any:
        async with DlmsClient(
            MeterKeys(_hex(ek, "--ek", 16), _hex(ak, "--ak", 16)), udp=udp, timeout=timeout
        ) as client:
            await client.open(host, port)
            value = await client.get(code, int(attr_text or 2), start=begin, end=finish)
            await client.close()
            return value

    value = plain(asyncio.run(go()))
    if as_json:
        sys.stdout.write(json.dumps(value) + "\n")
    else:
        sys.stdout.write("\n".join(render(value)) + "\n")
