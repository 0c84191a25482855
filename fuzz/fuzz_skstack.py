"""Fuzz target: the ``SkStack`` dongle machine (SKSTACK-IP over a serial line, Route B).

The input is taken apart with ``atheris.FuzzedDataProvider`` (octet strings from the front,
one-octet numbers from the back): first whether the meter is live, then up to ``MAX_STEPS``
steps, each one of

* 0-3: serial bytes: a chunk of 1 to 64 octets given to ``feed``;
* 4: time: the clock moves 0 to 25.5 s, ``on_timeout`` (the meter's PAA's too) running at
  every deadline on the way and at the end;
* 5: ``pana_received``: up to 255 octets from one of ``SENDERS``;
* 6: ``udp_received``: up to 255 octets from one of ``SENDERS`` to one of ``LOCAL_PORTS``;
* 7: the serial port is closed and reopened (``discard_input``).

A live meter (``Beacon`` on channel 0x21, PAN ID 0x8888) answers the join with a
``PanaServer`` that knows ``RBID``/``PASSWORD`` and echoes the UDP that reaches it, all in
memory. Nothing but an ``AmiError`` may escape; every call returns an ``Output`` whose serial
text ends in CRLF and whose actions are well formed (PANA datagrams that decode, UDP payloads
of 1 to 0x4D0 octets); the join's ping-pong must settle within ``MAX_DATAGRAMS`` datagrams a
step, and the timers within ``MAX_WAKEUPS`` deadlines a wait. Randomness is seeded per input,
so a finding reproduces and ``fuzz/make_corpus.py`` can write inputs that join (keep the
constants equal there). Anything else (another exception, a failed assertion, a hang or a
memory blow-up) is a crash. Run through ``fuzz/run.sh``, or alone:
``.venv/bin/python fuzz/fuzz_skstack.py fuzz/corpus/skstack``.
"""

from __future__ import annotations

import random
import sys
from collections import deque
from collections.abc import Callable
from functools import partial

import atheris

with atheris.instrument_imports(include=["openami"]):  # type: ignore[attr-defined]
    from openami.errors import AmiError
    from openami.protocols.wisun.pana import PanaServer
    from openami.protocols.wisun.pana_message import MessageType, decode_message
    from openami.protocols.wisun.skstack import (
        MAX_DATALEN,
        Beacon,
        Output,
        SendPana,
        SendUdp,
        SkStack,
        format_ipv6,
        link_local,
    )

RBID = "00112233445566778899AABBCCDDEEFF"
PASSWORD = "0123456789AB"  # noqa: S105 -- a test B-route password, guards nothing
DONGLE_SEED, METER_SEED = 1, 2
OWN = bytes.fromhex("001D1290000AC890")
METER = bytes.fromhex("001D129012345678")
METER_LL = link_local(METER)
BEACONS = (Beacon(METER, 0x8888, 0x21),)
SENDERS = (METER_LL, "FE80:0000:0000:0000:0000:0000:0000:0001", "2001:db8::1")
LOCAL_PORTS = (3610, 716, 0x1234)
MAX_STEPS = 64
MAX_DATAGRAMS = 64
MAX_WAKEUPS = 64
KNOWN = {RBID: PASSWORD}


class _Rig:
    """The machine and, when live, the meter behind it."""

    def __init__(self, live: bool) -> None:
        self.machine = SkStack(OWN, beacons=BEACONS, random=random.Random(DONGLE_SEED).randbytes)
        self.live = live
        self.server: PanaServer | None = None
        self.now = 0.0

    def call(self, step: Callable[[], Output]) -> None:
        """Run one machine call and carry what it sends to the meter and back, to the end."""
        queue: deque[Callable[[], Output]] = deque([step])
        carried = 0
        while queue:
            try:
                out = queue.popleft()()
            except AmiError:
                continue
            self._check(out)
            for action in out.actions:
                carried += 1
                assert carried <= MAX_DATAGRAMS, "the exchange with the meter does not settle"
                if self.live and action.dest_ip == METER_LL:
                    queue.extend(self._meter(action))

    def _check(self, out: Output) -> None:
        assert isinstance(out, Output)
        assert isinstance(out.serial, bytes)
        assert not out.serial or out.serial.endswith(b"\r\n")
        assert isinstance(out.actions, tuple)
        for action in out.actions:
            assert format_ipv6(action.dest_ip) == action.dest_ip
            if isinstance(action, SendPana):
                decode_message(action.payload)  # the PaC sends only well-formed PANA
            else:
                assert isinstance(action, SendUdp)
                assert isinstance(action.payload, bytes)
                assert 1 <= len(action.payload) <= MAX_DATALEN
                assert 1 <= action.dest_port <= 0xFFFF
                assert action.src_port in (3610, 716)

    def _meter(self, action: SendPana | SendUdp) -> list[Callable[[], Output]]:
        machine, now = self.machine, self.now
        if isinstance(action, SendUdp):  # echoed back from the port it went to
            reply = (METER_LL, action.dest_port, action.src_port, action.payload, now)
            return [partial(machine.udp_received, *reply)]
        if decode_message(action.payload).type is MessageType.CLIENT_INITIATION:
            self.server = PanaServer(KNOWN.get, random=random.Random(METER_SEED).randbytes)
        if self.server is None:
            return []
        try:
            answers = self.server.receive(action.payload, now)
        except AmiError:
            return []
        return [self._from_meter(answer) for answer in answers]

    def _from_meter(self, answer: bytes) -> Callable[[], Output]:
        return partial(self.machine.pana_received, METER_LL, answer, self.now)

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass as a transport would: wake at every deadline on the way (the
        machine's and the meter's), then once more at the end."""
        end = self.now + seconds
        for _ in range(MAX_WAKEUPS):
            deadline = min(self._deadlines(), default=None)
            if deadline is None or deadline > end:
                break
            self._wake(max(self.now, deadline))
        else:
            raise AssertionError("the timers keep firing: a deadline does not move on")
        self._wake(end)

    def _deadlines(self) -> list[float]:
        times = [self.machine.next_deadline()]
        if self.live and self.server is not None:
            times.append(self.server.next_deadline())
        return [t for t in times if t is not None]

    def _wake(self, now: float) -> None:
        self.now = now
        self.call(partial(self.machine.on_timeout, now))
        if self.live and self.server is not None:
            try:
                answers = self.server.on_timeout(now)
            except AmiError:
                return
            for answer in answers:
                self.call(self._from_meter(answer))


def TestOneInput(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)  # type: ignore[attr-defined]
    rig = _Rig(live=fdp.ConsumeIntInRange(0, 1) == 1)
    machine = rig.machine
    for _ in range(MAX_STEPS):
        if fdp.remaining_bytes() == 0:
            break
        op = fdp.ConsumeIntInRange(0, 7)
        if op <= 3:
            size = fdp.ConsumeIntInRange(1, 64)
            chunk = fdp.ConsumeBytes(size)
            rig.call(partial(machine.feed, chunk, rig.now))
        elif op == 4:
            rig.wait(fdp.ConsumeIntInRange(0, 255) / 10)
        elif op == 5:
            sender = SENDERS[fdp.ConsumeIntInRange(0, len(SENDERS) - 1)]
            payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 255))
            rig.call(partial(machine.pana_received, sender, payload, rig.now))
        elif op == 6:
            sender = SENDERS[fdp.ConsumeIntInRange(0, len(SENDERS) - 1)]
            port = LOCAL_PORTS[fdp.ConsumeIntInRange(0, len(LOCAL_PORTS) - 1)]
            payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 255))
            rig.call(partial(machine.udp_received, sender, 3610, port, payload, rig.now))
        else:
            machine.discard_input()


def main() -> None:
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
