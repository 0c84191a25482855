"""Lab meters: simulated meters answering DLMS/COSEM on real sockets, on the host's clock.

Each meter starts as one in the field would: its load profile already holds the past days
and its registers agree with it; new intervals close as the host's clock passes their end.
It accepts the management client (SAP 1) with HLS-GMAC and suite 0 authenticated encryption
only. Counters persist across associations, so a recorded session cannot be replayed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from openami.fleet.fleet import Fleet, MeterIdentity
from openami.fleet.meter_model import build_meter_model
from openami.fleet.meter_services import KeyRing
from openami.protocols.dlms.acse import Mechanism
from openami.protocols.dlms.association import ServerAssociation, ServerSettings
from openami.protocols.dlms.cosem.model import ObjectModel
from openami.protocols.dlms.cosem.server import CosemSession
from openami.protocols.dlms.security import SuiteZero
from openami.transport.wrapper_io import Address, Session, serve_tcp, serve_udp

__all__ = ["LabMeter", "LabMeterSession", "lab_fleet", "start_lab_meters"]

MANAGEMENT_CLIENT_SAP = 1
SERVER_SAP = 1


@dataclass
class LabMeter:
    identity: MeterIdentity
    host: str
    port: int
    model: ObjectModel
    ring: KeyRing
    counters: tuple[int, int] = (0, -1)  # server's last, client's last accepted

    def description(self) -> dict[str, object]:
        """What an engineer needs to talk to this meter (lab keys included, on purpose)."""
        return {
            "meter_id": self.identity.meter_id,
            "serial": self.identity.serial,
            "address": self.host,
            "port": self.port,
            "client_sap": MANAGEMENT_CLIENT_SAP,
            "server_sap": SERVER_SAP,
            "authentication": "hls-gmac",
            "security": "suite0-authenticated-encrypted",
            "system_title": self.identity.system_title.hex(),
            "ek": self.identity.ek.hex(),
            "ak": self.identity.ak.hex(),
            "kek": self.identity.kek.hex(),
        }


class LabMeterSession:
    """One connection's association with a lab meter."""

    def __init__(self, meter: LabMeter, challenge: Callable[[], bytes]) -> None:
        self.meter = meter
        self.challenge = challenge
        ident = meter.identity
        self.session = CosemSession(
            meter.model,
            ServerAssociation(
                ServerSettings(
                    ident.system_title,
                    SuiteZero(meter.ring.ek, meter.ring.ak),  # keys may have been transferred
                    Mechanism.HIGH_GMAC,
                    ciphered=True,
                    invocation_counter=meter.counters[0],
                    client_invocation_counter=meter.counters[1],
                )
            ),
        )

    def handle(self, apdu: bytes, source_wport: int) -> bytes | None:
        if source_wport != MANAGEMENT_CLIENT_SAP:
            return None  # only the management client is configured on lab meters
        try:
            return self.session.receive(apdu, self.challenge())
        finally:
            self.meter.counters = self.session.association.counters

    def closed(self) -> None:
        self.meter.counters = self.session.association.counters


def lab_fleet(n: int, seed: int, now: datetime, days_back: int) -> Fleet:
    """A fleet whose registers start ``days_back`` days before ``now`` (on a half-hour); its
    meters follow the wall clock, with their 45-day profile computed on demand."""
    half_hour = 1800
    first = int(now.timestamp()) // half_hour * half_hour - days_back * 86_400
    return Fleet.simple(n, datetime.fromtimestamp(first, tz=UTC), seed)


async def start_lab_meters(
    n: int,
    bind: str,
    port: int,
    *,
    tcp: bool = True,
    seed: int = 1,
    days_back: int = 10,
    per_port: bool = False,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[list[LabMeter], list[asyncio.AbstractServer | asyncio.BaseTransport]]:
    """Start ``n`` meters: on consecutive 127.0.0.x addresses from ``bind`` (same port), or
    on consecutive ports of ``bind`` when ``per_port``."""
    fleet = lab_fleet(n, seed, clock(), days_back)
    base = [int(x) for x in bind.split(".")] if bind.count(".") == 3 else None
    meters: list[LabMeter] = []
    servers: list[asyncio.AbstractServer | asyncio.BaseTransport] = []
    for i, ident in enumerate(fleet.identities()):
        if per_port or base is None:
            host, meter_port = bind, port + i
        else:
            host, meter_port = ".".join(map(str, [*base[:3], base[3] + i])), port
        ring = KeyRing(ident.ek, ident.ak, ident.kek)
        model = build_meter_model(fleet, i, clock, ring=ring)
        meter = LabMeter(ident, host, meter_port, model, ring)

        def factory(_peer: Address, meter: LabMeter = meter) -> Session:
            return LabMeterSession(meter, lambda: os.urandom(16))

        if tcp:
            servers.append(await serve_tcp(host, meter_port, factory))
        else:
            servers.append(await serve_udp(host, meter_port, factory))
        meters.append(meter)
    return meters, servers
