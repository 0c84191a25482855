"""A DLMS/COSEM client for the head-end and for engineers: associate, read, release.

Uses our association state machine (HLS-GMAC + suite 0) over the wrapper on TCP or UDP.
Reads follow get-response-with-datablock to the last block.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime

from openami.errors import RemoteProtocolError, SecurityError, TransportError
from openami.protocols.dlms.acse import Mechanism
from openami.protocols.dlms.apdu import Apdu
from openami.protocols.dlms.association import (
    Associated,
    ClientAssociation,
    ClientSettings,
    HlsRequired,
    Rejected,
    Response,
)
from openami.protocols.dlms.axdr import Data, decode_data
from openami.protocols.dlms.obis import ObisCode
from openami.protocols.dlms.profile import range_descriptor
from openami.protocols.dlms.security import SuiteZero
from openami.protocols.dlms.services import (
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    DataAccessResult,
    GetRequestNext,
    GetRequestNormal,
    GetResponseNormal,
    GetResponseWithDataBlock,
    MethodDescriptor,
)
from openami.transport.wrapper_io import TcpWrapperClient, UdpWrapperClient

__all__ = ["DlmsClient", "MeterKeys", "class_of"]

# Which interface class a well-known OBIS code belongs to (for reads by OBIS alone).
_CLASS_BY_OBIS = {
    "0.0.1.0.0.255": 8,
    "1.0.99.1.0.255": 7,
    "0.0.40.0.0.255": 15,
    "0.0.41.0.0.255": 17,
    "0.0.25.9.0.255": 40,
    "0.0.96.3.10.255": 70,
    "0.0.17.0.0.255": 71,
    "0.0.43.0.0.255": 64,
    "0.0.96.10.1.255": 1,
    "0.0.96.1.0.255": 1,
}
INVOKE = 0xC1
MAX_BLOCKS = 10_000


def class_of(code: ObisCode) -> int:
    """The interface class of a known object; registers (class 3) otherwise."""
    return _CLASS_BY_OBIS.get(str(code), 3)


@dataclass(frozen=True)
class MeterKeys:
    ek: bytes
    ak: bytes
    client_title: bytes = b"OAMHES01"


class DlmsClient:
    def __init__(
        self, keys: MeterKeys, *, udp: bool = False, timeout: float = 5.0, counter: int = 0
    ) -> None:
        self.association = ClientAssociation(
            ClientSettings(
                keys.client_title,
                SuiteZero(keys.ek, keys.ak),
                Mechanism.HIGH_GMAC,
                invocation_counter=counter,
            )
        )
        self.link: TcpWrapperClient | UdpWrapperClient = (
            UdpWrapperClient(timeout=timeout) if udp else TcpWrapperClient(timeout=timeout)
        )

    async def __aenter__(self) -> DlmsClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.link.close()

    async def open(self, host: str, port: int) -> Associated:
        await self.link.connect(host, port)
        event = self.association.receive(
            await self.link.request(self.association.associate(os.urandom(16)))
        )
        if isinstance(event, Rejected):
            raise SecurityError(f"meter refused the association (diagnostic {event.diagnostic})")
        if not isinstance(event, HlsRequired):
            raise RemoteProtocolError(f"expected an HLS challenge, got {event!r}")
        done = self.association.receive(await self.link.request(self.association.reply_to_hls()))
        if not isinstance(done, Associated):
            raise RemoteProtocolError(f"HLS did not complete: {done!r}")
        return done

    async def _ask(self, apdu: Apdu) -> Apdu:
        event = self.association.receive(await self.link.request(self.association.request(apdu)))
        if not isinstance(event, Response):
            raise RemoteProtocolError(f"expected a response, got {event!r}")
        return event.apdu

    async def get(
        self,
        code: ObisCode,
        attribute: int = 2,
        *,
        class_id: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Data:
        selector = params = None
        if start is not None and end is not None:
            selector, params = 1, range_descriptor(start, end)
        request = GetRequestNormal(
            INVOKE, class_id or class_of(code), code.to_bytes(), attribute, selector, params
        )
        answer = await self._ask(request)
        if isinstance(answer, GetResponseNormal):
            if isinstance(answer.result, DataAccessResult):
                raise RemoteProtocolError(
                    f"meter answered {answer.result.name.lower()} for {code}:{attribute}"
                )
            return answer.result
        raw = bytearray()
        for _ in range(MAX_BLOCKS):
            if not isinstance(answer, GetResponseWithDataBlock) or isinstance(
                answer.raw_data, DataAccessResult
            ):
                raise RemoteProtocolError(f"block transfer broke off: {answer!r}")
            raw += answer.raw_data
            if answer.last_block:
                return decode_data(bytes(raw))
            answer = await self._ask(GetRequestNext(INVOKE, answer.block_number))
        raise TransportError(f"more than {MAX_BLOCKS} blocks")

    async def action(
        self, method: MethodDescriptor, parameters: Data | None = None
    ) -> ActionResult:
        """Invoke a method; return its result (refusals are results, not exceptions)."""
        answer = await self._ask(ActionRequestNormal(INVOKE, method, parameters))
        if not isinstance(answer, ActionResponseNormal):
            raise RemoteProtocolError(f"expected an action-response, got {answer!r}")
        return answer.result

    async def close(self) -> None:
        try:
            self.association.receive(await self.link.request(self.association.release()))
        finally:
            await self.link.close()
