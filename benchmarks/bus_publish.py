"""Measure JetStreamBus publishing by hand: ``python benchmarks/bus_publish.py``.

Publishes ``--count`` messages of ``--size`` bytes (default 20,000 of 10 KB, about what a
head-end's read batches weigh), then flushes, and prints messages/s and MB/s for publish plus
flush, that is until JetStream has acknowledged every message. For scale it also times
synchronous publishes (one round trip each) on the same server. Runs on a stream and subject
prefix of its own and deletes them afterwards. Not a unit test: it needs a NATS server
(``nats-server -js``) and its numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import nats
from nats.js import api

from openami.bus.nats import DEFAULT_URL, JetStreamBus


def pipelined(url: str, count: int, size: int) -> float:
    """Seconds to publish ``count`` messages through JetStreamBus and flush them."""
    unique = uuid.uuid4().hex[:12]
    payload = os.urandom(size)
    with JetStreamBus(url, f"BENCH_{unique}", prefix=f"bench{unique}.") as bus:
        try:
            began = time.perf_counter()
            for i in range(count):
                bus.publish(f"ami.reads.{i % 16}", payload)
            bus.flush(timeout=120.0)
            return time.perf_counter() - began
        finally:
            bus.delete_stream()


async def _synchronous(url: str, count: int, size: int) -> float:
    unique = uuid.uuid4().hex[:12]
    stream, subject = f"BENCH_{unique}", f"bench{unique}.ami.reads"
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(api.StreamConfig(name=stream, subjects=[subject]))
    payload = os.urandom(size)
    try:
        began = time.perf_counter()
        for _ in range(count):
            await js.publish(subject, payload)
        return time.perf_counter() - began
    finally:
        await js.delete_stream(stream)
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=10_240)
    parser.add_argument("--sync-count", type=int, default=2_000)
    args = parser.parse_args()

    seconds = pipelined(args.url, args.count, args.size)
    rate = args.count / seconds
    print(
        f"JetStreamBus publish+flush: {args.count:,} x {args.size:,} B in {seconds:.2f} s = "
        f"{rate:,.0f} messages/s, {rate * args.size / 1e6:,.0f} MB/s"
    )
    if args.sync_count > 0:
        sync_seconds = asyncio.run(_synchronous(args.url, args.sync_count, args.size))
        sync_rate = args.sync_count / sync_seconds
        print(
            f"synchronous js.publish:     {args.sync_count:,} x {args.size:,} B in "
            f"{sync_seconds:.2f} s = {sync_rate:,.0f} messages/s "
            f"(pipelined is {rate / sync_rate:.1f}x)"
        )


if __name__ == "__main__":
    main()
