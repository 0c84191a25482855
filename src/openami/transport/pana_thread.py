"""The meters' side of the B-route join, for a process whose ECHONET Lite loop is not
asyncio: PANA servers (``pana_udp``) for several meter addresses on an event loop of their
own, in a thread, and the question the ECHONET Lite side asks: has the HEMS at this host
joined the meter at that address?"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence

from openami.errors import TransportError
from openami.protocols.wisun.pana import PanaServer
from openami.transport.pana_udp import PanaUdpServer, serve_pana

__all__ = ["PanaThread"]


def _factory(lookup: Callable[[str], str | None]) -> Callable[[tuple[str, int]], PanaServer]:
    def make(_peer: tuple[str, int]) -> PanaServer:
        return PanaServer(lookup)

    return make


class PanaThread:
    def __init__(
        self,
        addresses: Sequence[str],
        lookup_for: Callable[[str], Callable[[str], str | None]],
    ) -> None:
        """``lookup_for(address)`` gives the meter at ``address`` its way to find the
        password of a B-route ID (None: unknown or revoked)."""
        self._loop = asyncio.new_event_loop()
        self._servers: dict[str, PanaUdpServer] = {}
        self._failed: BaseException | None = None
        ready = threading.Event()

        async def start() -> None:
            for address in addresses:
                self._servers[address] = await serve_pana(address, _factory(lookup_for(address)))

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(start())
            except BaseException as exc:  # reported to the constructor's caller
                self._failed = exc
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="pana", daemon=True)
        self._thread.start()
        if not ready.wait(10.0):
            raise TransportError("the B-route join service did not start within 10 s")
        if self._failed is not None:
            self.close()
            raise self._failed

    def admitted(self, address: str, host: str, wait: float = 0.5) -> bool:
        """Whether the HEMS at ``host`` joined the meter at ``address``. On the air, a
        join's last answer and the HEMS's first request travel one link in order; here they
        come on two sockets served by two threads, so a request that overtakes the answer
        waits for it (at most ``wait`` s) instead of being refused."""
        server = self._servers.get(address)
        if server is None:
            return False
        deadline = time.monotonic() + wait
        while server.session_for(host) is None:
            if not server.completing(host) or time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def forget(self, rbid: str) -> int:
        return sum(server.forget(rbid) for server in self._servers.values())

    def close(self) -> None:
        async def shutdown() -> None:
            for server in self._servers.values():
                server.close()
            await asyncio.sleep(0.05)  # the transports finish closing on the loop

        if self._loop.is_running():
            done = asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
            done.result(5.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._loop.is_running():
            self._loop.close()
