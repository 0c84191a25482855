"""Sans-IO Wi-SUN Route B: PANA with EAP-PSK (the B-route join) and the SKSTACK-IP command
set of the USB dongles that HEMS software drives over a serial port."""

from openami.protocols.wisun.pana import (
    PANA_PORT,
    ClientState,
    PanaClient,
    PanaServer,
    PanaSession,
    Retransmit,
    ServerState,
)
from openami.protocols.wisun.skstack import (
    ECHONET_PORT,
    Beacon,
    Output,
    SendPana,
    SendUdp,
    SkStack,
    link_local,
)

__all__ = [
    "ECHONET_PORT",
    "PANA_PORT",
    "Beacon",
    "ClientState",
    "Output",
    "PanaClient",
    "PanaServer",
    "PanaSession",
    "Retransmit",
    "SendPana",
    "SendUdp",
    "ServerState",
    "SkStack",
    "link_local",
]
