"""DLMS/COSEM client built on Gurux, for interoperability tests only.

Gurux (gurux-dlms) is GPL: this script is an external test peer. Tests run it as its own
process with the venv's python; nothing under src/ may import it or copy from it.

It connects over TCP with the IEC 62056-4-7 wrapper (Gurux's InterfaceType.WRAPPER),
associates (AARQ/AARE; with HLS-GMAC Gurux then calls reply_to_HLS_authentication on
0.0.40.0.0.255), does the reads asked for, releases (RLRQ/RLRE), closes, and prints ONE JSON
object on stdout. On failure it prints one line on stderr and exits 1 (2 for bad usage).

    .venv/bin/python tests/interop/gurux_client.py --host 127.0.0.1 --port 4059 \
        --authentication high-gmac --security authentication-encryption \
        --system-title 4F414D0000000001 --block-cipher-key ... --authentication-key ... \
        --read 0.0.1.0.0.255:2 --read 1.0.1.8.0.255:2 --read 1.0.1.8.0.255:3 \
        --profile 1.0.99.1.0.255 --from 2024-06-01T00:00+09:00 --to 2024-06-01T23:30+09:00

--read takes OBIS:ATTR (interface class guessed from the OBIS code) or CLASS:OBIS:ATTR.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import socket
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from gurux_dlms import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    GXByteBuffer,
    GXDateTime,
    GXDLMSException,
    GXReplyData,
)
from gurux_dlms.enums import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    Authentication,
    Conformance,
    DataType,
    InterfaceType,
    ObjectType,
    Security,
)
from gurux_dlms.objects import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    GXDLMSProfileGeneric,
)
from gurux_dlms.secure import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
    GXDLMSSecureClient,
)

PROG = "gurux_client"
WRAPPER_HEADER = 8
WRAPPER_VERSION = 1

AUTHENTICATIONS = {
    "none": Authentication.NONE,
    "low": Authentication.LOW,
    "high-gmac": Authentication.HIGH_GMAC,
}
SECURITIES = {
    "none": Security.NONE,
    "authentication-encryption": Security.AUTHENTICATION_ENCRYPTION,
}
DEFAULT_CLIENT = {"none": 16, "low": 1, "high-gmac": 1}

# Common units of IEC 62056-6-2 (Blue Book) by their enum code.
UNIT_NAMES = {
    27: "W",
    28: "VA",
    29: "var",
    30: "Wh",
    31: "VAh",
    32: "varh",
    33: "A",
    35: "V",
    44: "Hz",
    255: "",
}


# Lines Gurux prints on stdout for every ciphered APDU it opens.
GURUX_CHATTER = frozenset({"Encryption is applied.", "Authentication is applied."})


class ClientError(Exception):
    """A failure reported on stderr as one line."""


# --- command line -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadSpec:
    """One attribute to read."""

    class_id: int
    obis: str
    attribute: int

    @property
    def key(self) -> str:
        return f"{self.obis}:{self.attribute}"


def _obis(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 6 or not all(p.isdigit() and 0 <= int(p) <= 255 for p in parts):
        raise argparse.ArgumentTypeError(f"not an OBIS code A.B.C.D.E.F: {text!r}")
    return ".".join(str(int(p)) for p in parts)


def guess_class(obis: str) -> int:
    """Interface class for the usual OBIS codes: enough for a test client, not a registry."""
    a, _b, c, d, _e, _f = (int(p) for p in obis.split("."))
    if (a, c, d) == (0, 1, 0):
        return int(ObjectType.CLOCK)
    if (a, c, d) == (0, 40, 0):
        return int(ObjectType.ASSOCIATION_LOGICAL_NAME)
    if c == 99 and d in (1, 2, 98, 99):
        return int(ObjectType.PROFILE_GENERIC)
    if a == 0:
        return int(ObjectType.DATA)
    if d == 6:  # maximum demand
        return int(ObjectType.EXTENDED_REGISTER)
    return int(ObjectType.REGISTER)


def _read_spec(text: str) -> ReadSpec:
    parts = text.split(":")
    try:
        if len(parts) == 2:
            obis = _obis(parts[0])
            return ReadSpec(guess_class(obis), obis, int(parts[1]))
        if len(parts) == 3:
            return ReadSpec(int(parts[0]), _obis(parts[1]), int(parts[2]))
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected OBIS:ATTR or CLASS:OBIS:ATTR, got {text!r}")


def _hex(size: int) -> Any:
    def parse(text: str) -> bytes:
        try:
            raw = bytes.fromhex(text.replace(":", "").replace(" ", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not hex: {text!r}") from None
        if len(raw) != size:
            raise argparse.ArgumentTypeError(f"need {size} bytes, got {len(raw)}")
        return raw

    return parse


def _aware(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not ISO 8601: {text!r}") from None
    if moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset: {text!r}")
    return moment


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: usage error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Gurux-based DLMS client over the TCP wrapper.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=4059)
    p.add_argument(
        "--client-address",
        type=int,
        default=None,
        help="client SAP; default 16 (public) with --authentication none, else 1 (management)",
    )
    p.add_argument("--server-address", type=int, default=1, help="server SAP (logical device)")
    p.add_argument("--authentication", choices=sorted(AUTHENTICATIONS), default="none")
    p.add_argument("--password", default=None, help="LLS password (--authentication low)")
    p.add_argument("--security", choices=sorted(SECURITIES), default="none")
    p.add_argument("--system-title", type=_hex(8), default=None, help="client's, 8 bytes hex")
    p.add_argument("--block-cipher-key", type=_hex(16), default=None, help="EK, 16 bytes hex")
    p.add_argument("--authentication-key", type=_hex(16), default=None, help="AK, 16 bytes hex")
    p.add_argument("--invocation-counter", type=int, default=0)
    p.add_argument("--max-pdu-size", type=int, default=0xFFFF, help="client's max receive PDU size")
    p.add_argument("--read", type=_read_spec, action="append", default=[], metavar="OBIS:ATTR")
    p.add_argument("--profile", type=_obis, default=None, metavar="OBIS")
    p.add_argument("--from", dest="start", type=_aware, default=None, metavar="ISO")
    p.add_argument("--to", dest="end", type=_aware, default=None, metavar="ISO")
    p.add_argument("--trace-frames", default=None, metavar="FILE", help="JSON lines of frames")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds for any one wait")
    return p


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.profile and (args.start is None or args.end is None):
        parser.error("--profile needs --from and --to")
    if (args.start or args.end) and not args.profile:
        parser.error("--from/--to need --profile")
    if args.authentication == "low" and not args.password:
        parser.error("--authentication low needs --password")
    needs_keys = args.authentication == "high-gmac" or args.security != "none"
    if needs_keys:
        missing = [
            name
            for name, value in (
                ("--system-title", args.system_title),
                ("--block-cipher-key", args.block_cipher_key),
                ("--authentication-key", args.authentication_key),
            )
            if value is None
        ]
        if missing:
            parser.error(f"{args.authentication}/{args.security} needs {', '.join(missing)}")
    if args.authentication == "high-gmac" and args.security == "none":
        parser.error("high-gmac needs --security authentication-encryption here")
    if not 0 <= args.invocation_counter <= 0xFFFFFFFF:
        parser.error("--invocation-counter must fit 32 bits")


# --- transport --------------------------------------------------------------------------


@dataclass
class WrapperLink:
    """TCP socket carrying whole wrapper frames, every wait bounded, every frame traced."""

    host: str
    port: int
    timeout: float
    frames: list[dict[str, str]] = field(default_factory=list)
    _sock: socket.socket | None = None

    def open(self) -> None:
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise ClientError(f"cannot connect to {self.host}:{self.port}: {exc}") from None

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def send(self, frame: bytes) -> None:
        assert self._sock is not None
        self.frames.append({"dir": "tx", "hex": frame.hex()})
        try:
            self._sock.sendall(frame)
        except OSError as exc:
            raise ClientError(f"send failed: {exc}") from None

    def receive(self) -> bytes:
        deadline = time.monotonic() + self.timeout
        header = self._exact(WRAPPER_HEADER, deadline)
        if int.from_bytes(header[0:2], "big") != WRAPPER_VERSION:
            raise ClientError(f"not a wrapper frame: {header.hex()}")
        payload = self._exact(int.from_bytes(header[6:8], "big"), deadline)
        frame = header + payload
        self.frames.append({"dir": "rx", "hex": frame.hex()})
        return frame

    def _exact(self, size: int, deadline: float) -> bytes:
        assert self._sock is not None
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ClientError(f"no reply within {self.timeout:g} s")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(size - len(data))
            except TimeoutError:
                raise ClientError(f"no reply within {self.timeout:g} s") from None
            except OSError as exc:
                raise ClientError(f"receive failed: {exc}") from None
            if not chunk:
                raise ClientError("server closed the connection")
            data.extend(chunk)
        return bytes(data)


# --- DLMS session -----------------------------------------------------------------------


class Session:
    """Drives a Gurux client over a WrapperLink."""

    def __init__(self, client: Any, link: WrapperLink) -> None:
        self.client = client
        self.link = link

    def exchange(self, request: Any, reply: Any) -> None:
        """Send one request frame and feed reply frames to Gurux until one PDU is complete."""
        self.link.send(bytes(request))
        buffer = GXByteBuffer()
        notify = GXReplyData()
        while not self.client.getData(buffer, reply, notify):
            buffer.set(self.link.receive())
        if reply.error != 0:
            raise GXDLMSException(reply.error)

    def transact(self, requests: Any) -> Any:
        """Send Gurux's request frame(s), following block transfer; return the reply."""
        reply = GXReplyData()
        frames = [requests] if isinstance(requests, bytes | bytearray) else list(requests or [])
        for frame in frames:
            reply.clear()
            self.exchange(frame, reply)
            while reply.isMoreData():
                self.exchange(self.client.receiverReady(reply), reply)
        return reply

    def associate(self) -> None:
        reply = self.transact(self.client.aarqRequest())
        self.client.parseAareResponse(reply.data)
        if self.client.getIsAuthenticationRequired():
            reply = self.transact(self.client.getApplicationAssociationRequest())
            self.client.parseApplicationAssociationResponse(reply.data)

    def release(self) -> None:
        self.transact(self.client.releaseRequest())
        tail = self.client.disconnectRequest()
        if tail:
            self.transact(tail)

    def read(self, spec: ReadSpec) -> Any:
        obj = self.client.createObject(ObjectType(spec.class_id))
        obj.logicalName = spec.obis
        try:
            reply = self.transact(self.client.read(obj, spec.attribute))
        except GXDLMSException as exc:
            raise ClientError(f"read {spec.class_id}:{spec.key}: {one_line(exc)}") from None
        value = reply.value
        if isinstance(value, bytes | bytearray):
            ui_type = obj.getUIDataType(spec.attribute)
            if ui_type in (DataType.DATETIME, DataType.DATE, DataType.TIME):
                value = self.client.changeType(
                    value, ui_type, self.client.settings.useUtc2NormalTime
                )
        return value

    def read_profile(self, obis: str, start: datetime, end: datetime) -> dict[str, Any]:
        pg = GXDLMSProfileGeneric(obis)
        reply = self.transact(self.client.read(pg, 3))
        self.client.updateValue(pg, 3, reply.value)
        reply = self.transact(self.client.readRowsByRange(pg, start, end))
        self.client.updateValue(pg, 2, reply.value)
        columns = [
            f"{int(obj.objectType)}:{obj.logicalName}:{co.attributeIndex}"
            for obj, co in pg.captureObjects
        ]
        return {
            "obis": obis,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "columns": columns,
            "rows": [[to_json(v) for v in row] for row in pg.buffer],
        }


def to_json(value: Any) -> Any:
    """Gurux value -> JSON: date-times as ISO 8601, octet strings as hex, lists as lists."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, GXDateTime):
        inner = value.value
        return inner.isoformat() if isinstance(inner, datetime) else str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, int):  # Gurux enums, GXUInt8...
        return int(value.value)
    with contextlib.suppress(TypeError, ValueError):
        return int(value)
    return str(value)


def make_client(args: argparse.Namespace) -> Any:
    authentication = AUTHENTICATIONS[args.authentication]
    client_address = args.client_address
    if client_address is None:
        client_address = DEFAULT_CLIENT[args.authentication]
    client = GXDLMSSecureClient(
        True,
        client_address,
        args.server_address,
        authentication,
        args.password,
        InterfaceType.WRAPPER,
    )
    cipher = client.ciphering
    cipher.security = SECURITIES[args.security]
    if args.system_title is not None:
        cipher.systemTitle = bytearray(args.system_title)
    if args.block_cipher_key is not None:
        cipher.blockCipherKey = bytearray(args.block_cipher_key)
    if args.authentication_key is not None:
        cipher.authenticationKey = bytearray(args.authentication_key)
    cipher.invocationCounter = args.invocation_counter
    client.maxReceivePDUSize = args.max_pdu_size
    return client


def attach_scalers(reads: dict[str, dict[str, Any]]) -> None:
    """Put a register's scaler and unit (attribute 3, if read) beside its value."""
    for key, entry in reads.items():
        obis, attr = key.rsplit(":", 1)
        su = reads.get(f"{obis}:3")
        if attr != "2" or su is None or not isinstance(su.get("value"), dict):
            continue
        scaler, unit = su["value"]["scaler"], su["value"]["unit"]
        entry.update(scaler=scaler, unit=unit, unit_name=su["value"]["unit_name"])
        if isinstance(entry["value"], int | float):
            scaled = entry["value"] * 10**scaler
            entry["scaled_value"] = int(scaled) if scaler >= 0 else scaled


def describe(spec: ReadSpec, value: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"class_id": spec.class_id, "value": to_json(value)}
    scaler_unit = spec.attribute == 3 and spec.class_id in (3, 4, 5)
    if scaler_unit and isinstance(entry["value"], list) and len(entry["value"]) == 2:
        scaler, unit = entry["value"]
        entry["value"] = {"scaler": scaler, "unit": unit, "unit_name": UNIT_NAMES.get(unit, "")}
    return entry


def run(args: argparse.Namespace) -> dict[str, Any]:
    client = make_client(args)
    link = WrapperLink(args.host, args.port, args.timeout)
    session = Session(client, link)
    result: dict[str, Any] = {}
    try:
        link.open()
        session.associate()
        reads: dict[str, dict[str, Any]] = {}
        for spec in args.read:
            reads[spec.key] = describe(spec, session.read(spec))
        attach_scalers(reads)
        result["reads"] = reads
        if args.profile:
            result["profile"] = session.read_profile(args.profile, args.start, args.end)
        session.release()
    finally:
        link.close()
        if args.trace_frames:
            write_trace(args.trace_frames, link.frames)
    source_title = client.settings.sourceSystemTitle
    titled = args.authentication == "high-gmac" or args.security != "none"
    result["association"] = {
        "client_address": client.clientAddress,
        "server_address": client.serverAddress,
        "authentication": args.authentication,
        "security": args.security,
        "client_system_title": bytes(client.ciphering.systemTitle).hex() if titled else None,
        "server_system_title": bytes(source_title).hex() if source_title else None,
        "negotiated_conformance": conformance(int(client.negotiatedConformance)),
        "max_pdu_size": int(client.maxReceivePDUSize),
        "next_invocation_counter": int(client.ciphering.invocationCounter),
    }
    result["frames"] = len(link.frames)
    return result


def conformance(value: int) -> dict[str, Any]:
    """Gurux keeps conformance bit n (Blue Book numbering) as 1 << n; on the wire bit 0 is the
    most significant of the 24."""
    names = [
        flag.name.lower().replace("_", "-")
        for flag in Conformance
        if flag.value and flag.name and value & flag.value
    ]
    wire = sum(1 << (23 - n) for n in range(24) if value & (1 << n))
    return {"wire": f"{wire:06x}", "names": names}


def write_trace(path: str, frames: Iterable[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for frame in frames:
            out.write(json.dumps(frame) + "\n")


def one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, GXDLMSException):
        text = f"DLMS error: {text}"
    elif not isinstance(exc, ClientError):
        text = f"{type(exc).__name__}: {text}"
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    chatter = io.StringIO()  # Gurux prints diagnostics on stdout; keep stdout for the JSON
    try:
        with contextlib.redirect_stdout(chatter):
            result = run(args)
    except Exception as exc:  # one line, no traceback
        extra = " ".join(
            line.strip()
            for line in chatter.getvalue().splitlines()
            if line.strip() and line.strip() not in GURUX_CHATTER
        )
        sys.stderr.write(f"{PROG}: {one_line(exc)}{f' ({extra})' if extra else ''}\n")
        return 1
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
