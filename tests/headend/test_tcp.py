"""Pushes over TCP: wrapper frames cut out of a byte stream, whatever the segmenting."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from openami.fleet.fleet import Fleet
from openami.fleet.pushgen import PushEncoder
from openami.headend.push_batch import PushBatchIngest
from openami.headend.tcp import TcpFrames
from tests.conftest import provisioned_keys

JST = timezone(timedelta(hours=9))


def _collect(frames: TcpFrames, want: int, within: float = 5.0) -> list[tuple[bytes, int, int]]:
    got: list[tuple[bytes, int, int]] = []
    until = time.monotonic() + within
    while len(got) < want and time.monotonic() < until:
        got += frames.poll(0.05)
    return got


def test_frames_come_out_whole_however_the_stream_is_cut() -> None:
    fleet = Fleet.simple(20, datetime(2026, 8, 3, tzinfo=JST), seed=4)
    values = fleet.advance()
    rows = [bytes(r) for r in PushEncoder(fleet).intervals(values, np.arange(20))]
    frames = TcpFrames(("127.0.0.1", 0))
    try:
        with socket.create_connection(frames.address) as client:
            stream = b"".join(rows)
            # cut the stream at awkward places: inside headers, across frames
            for lo, hi in [(0, 3), (3, 81), (81, 200), (200, len(stream))]:
                client.sendall(stream[lo:hi])
                time.sleep(0.01)
            got = _collect(frames, 20)
        assert [g[0] for g in got] == rows
        assert {g[1] for g in got} == {0x7F000001}  # the sender's address, as an integer
        # and they are pushes the ingest takes like datagrams
        ingest = PushBatchIngest(provisioned_keys(fleet))
        ingest.receive(
            [g[0] for g in got],
            np.array([g[1] for g in got], np.uint32),
            np.array([g[2] for g in got], np.uint16),
            frames.address,
        )
        assert ingest.accepted["push"] == 20
        batch = ingest.take()
        assert batch is not None and batch.value_wh[2::4] == values.import_register.tolist()
    finally:
        frames.close()


def test_a_stream_that_is_not_the_wrapper_is_closed() -> None:
    frames = TcpFrames(("127.0.0.1", 0))
    try:
        with socket.create_connection(frames.address) as client:
            client.sendall(b"GET / HTTP/1.1\r\n\r\n")
            _collect(frames, 1, within=0.5)
            client.settimeout(2.0)
            assert client.recv(10) == b""  # closed by the head-end
        assert frames.refused == 1 and frames.connections == 0
    finally:
        frames.close()


def test_connections_beyond_the_limit_are_refused() -> None:
    frames = TcpFrames(("127.0.0.1", 0), max_connections=2)
    clients = [socket.create_connection(frames.address) for _ in range(3)]
    try:
        _collect(frames, 1, within=0.5)
        assert frames.connections == 2 and frames.refused == 1
    finally:
        for c in clients:
            c.close()
        frames.close()


@settings(max_examples=40, deadline=None)
@given(
    frames=st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=6),
    tail=st.binary(max_size=40),
    cuts=st.lists(st.integers(1, 64), min_size=1, max_size=8),
)
def test_any_stream_gives_its_whole_frames_and_nothing_raises(
    frames: list[bytes], tail: bytes, cuts: list[int]
) -> None:
    # well-framed APDUs of any content, then arbitrary bytes (a broken header closes it)
    wrapped = [b"\x00\x01\x00\x01\x00\x01" + len(f).to_bytes(2, "big") + f for f in frames]
    stream = b"".join(wrapped) + tail
    server = TcpFrames(("127.0.0.1", 0))
    try:
        with socket.create_connection(server.address) as client:
            at, k = 0, 0
            while at < len(stream):
                step = cuts[k % len(cuts)]
                client.sendall(stream[at : at + step])
                at, k = at + step, k + 1
            got = _collect(server, len(wrapped), within=2.0)
        assert [g[0] for g in got[: len(wrapped)]] == wrapped
    finally:
        server.close()
