"""An asyncio event loop in one background thread, called from synchronous code.

nats-py is asyncio and the rest of openami is synchronous: the JetStream backend runs its
client on this loop and crosses over with ``asyncio.run_coroutine_threadsafe``, so that
every nats-py object is created and touched on one thread only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats.errors

from openami.errors import BusError

__all__ = ["WIRE_ERRORS", "LoopThread", "describe_error"]

T = TypeVar("T")
WIRE_ERRORS = (nats.errors.Error, OSError)  # nats.errors.TimeoutError is an OSError too


class LoopThread:
    """An asyncio loop in one daemon thread, and synchronous calls onto it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            if tasks:
                self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float, what: str) -> T:
        """Run ``coro`` on the loop and wait for it; nats-py errors become BusError."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise BusError(f"{what}: called from the bus's own loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BusError:
            raise
        except concurrent.futures.CancelledError:
            raise BusError(f"{what}: cancelled (the bus is closing)") from None
        except TimeoutError as exc:
            if future.done():  # the coroutine's own time-out, not ours
                raise BusError(f"{what}: {describe_error(exc)}") from None
            future.cancel()
            raise BusError(f"{what}: no answer within {timeout:g} s") from None
        except WIRE_ERRORS as exc:
            raise BusError(f"{what}: {describe_error(exc)}") from None

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, nats.errors.NoRespondersError):
        return "no responders (is JetStream enabled on the server, nats-server -js?)"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
