"""Fuzz target: PANA ``decode_message``, EAP ``decode_eap`` and EAP-PSK ``decode_psk``, then a
``PanaServer`` (or a ``PanaClient``) fed datagrams cut from the input (Route B join).

The decoders take the whole input, and every datagram and EAP payload found in it: they either
decode or raise ``DecodeError`` (nothing else, not even another ``AmiError``). None of the three
codecs is canonical, so the round trips check what is: a PANA message encodes back to the
input with the fields ignored on receipt zeroed (Reserved, AVP flags but V, AVP Reserved,
padding); an EAP packet to the input up to its Length (octets past it are link padding); an
EAP-PSK message to its packet with the Flags octet's low six bits (ignored) cleared.

The same input, cut into datagrams, then drives one side of the join::

    octet 0: bit 7 clear = a PanaServer receives them (the PaC's side of the exchange),
             bit 7 set = a PanaClient, started at time 0, receives them (the PAA's side);
             bits 0-3: number of datagrams
    per datagram: step (1 octet, quarter seconds added to the clock) | length (2, big-endian)
                  | that many octets (fewer if the input ends)

At each datagram the clock moves on, ``on_timeout`` runs, then ``receive``: both must return a
list of octet strings, each a PANA message that decodes, or raise an ``AmiError``; the server
may only open a session for the B-route ID it knows. A client that reaches OPEN is made to
terminate. Randomness is seeded per input, so ``fuzz/make_corpus.py`` can record real
exchanges the machines replay exactly (keep ``RBID``, ``PASSWORD`` and the seeds equal there).
Anything else (another exception, a failed assertion, a hang or a memory blow-up) is a crash.
Run through ``fuzz/run.sh``, or alone: ``.venv/bin/python fuzz/fuzz_pana.py fuzz/corpus/pana``.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from functools import partial

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.errors import AmiError, DecodeError
    from openami.protocols.wisun.eap_psk import decode_eap, decode_psk, encode_eap, encode_psk
    from openami.protocols.wisun.pana import ClientState, PanaClient, PanaServer
    from openami.protocols.wisun.pana_message import (
        AvpCode,
        PanaMessage,
        decode_message,
        encode_message,
    )

RBID = "00112233445566778899AABBCCDDEEFF"
PASSWORD = "0123456789AB"  # noqa: S105 -- a test B-route password, guards nothing
CLIENT_SEED, SERVER_SEED = 1, 2
MAX_DATAGRAMS = 15
KNOWN = {RBID: PASSWORD}


def _zero_ignored(raw: bytes) -> bytes:
    """``raw`` (a PANA message that decoded) with every field the receiver ignores zeroed."""
    out = bytearray(raw)
    out[0:2] = bytes(2)  # Reserved
    pos = 16
    while pos < len(out):
        vendor = out[pos + 2] & 0x80
        out[pos + 2 : pos + 4] = bytes((vendor, 0))  # AVP flags: only V means something
        length = int.from_bytes(out[pos + 4 : pos + 6], "big")
        out[pos + 6 : pos + 8] = bytes(2)  # AVP Reserved
        end = pos + (12 if vendor else 8) + length
        padding = -length % 4
        out[end : end + padding] = bytes(padding)
        pos = end + padding
    return bytes(out)


def _check_eap(raw: bytes) -> None:
    try:
        packet = decode_eap(raw)
    except DecodeError:
        return
    length = int.from_bytes(raw[2:4], "big")
    assert encode_eap(packet) == raw[:length]
    try:
        message = decode_psk(packet)
    except DecodeError:
        return
    flags_cleared = raw[:5] + bytes((raw[5] & 0xC0,)) + raw[6:length]
    assert encode_psk(packet.identifier, message) == flags_cleared


def _check_pana(raw: bytes) -> PanaMessage | None:
    try:
        message = decode_message(raw)
    except DecodeError:
        return None
    assert encode_message(message) == _zero_ignored(raw)
    for payload in message.values(AvpCode.EAP_PAYLOAD):
        _check_eap(payload)
    return message


def _check_decoders(raw: bytes) -> None:
    _check_pana(raw)
    _check_eap(raw)


def _datagrams(data: bytes) -> list[tuple[float, bytes]]:
    count = min(data[0] & 0x0F, MAX_DATAGRAMS) if data else 0
    pos, now, out = 1, 0.0, []
    for _ in range(count):
        if pos + 3 > len(data):
            break
        now += data[pos] / 4
        length = int.from_bytes(data[pos + 1 : pos + 3], "big")
        out.append((now, data[pos + 3 : pos + 3 + length]))
        pos += 3 + length
    return out


def _sent(call: Callable[[], list[bytes]]) -> None:
    """Run one machine call: an ``AmiError`` is allowed; what it sends must be PANA."""
    try:
        out = call()
    except AmiError:
        return
    assert isinstance(out, list)
    for datagram in out:
        assert isinstance(datagram, bytes)
        assert _check_pana(datagram) is not None, "the machine sent a datagram that does not decode"


def _drive_server(datagrams: list[tuple[float, bytes]]) -> None:
    server = PanaServer(KNOWN.get, random=random.Random(SERVER_SEED).randbytes)
    for now, datagram in datagrams:
        _sent(partial(server.on_timeout, now))
        _sent(partial(server.receive, datagram, now))
        # a session only for the B-route ID the meter knows, proven by its password
        assert server.session is None or server.session.rbid == RBID


def _drive_client(datagrams: list[tuple[float, bytes]]) -> None:
    client = PanaClient(RBID, PASSWORD, random=random.Random(CLIENT_SEED).randbytes)
    _sent(partial(client.start, 0.0))
    for now, datagram in datagrams:
        _sent(partial(client.on_timeout, now))
        _sent(partial(client.receive, datagram, now))
        if client.state is ClientState.OPEN:
            assert client.session is not None
            assert client.session.rbid == RBID
            _sent(partial(client.terminate, now))


def TestOneInput(data: bytes) -> None:
    _check_decoders(data)
    datagrams = _datagrams(data)
    for _, datagram in datagrams:
        _check_decoders(datagram)
    if data and data[0] & 0x80:
        _drive_client(datagrams)
    else:
        _drive_server(datagrams)


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
