"""ECHONET Lite on real UDP sockets: nodes on their own loopback addresses, port 3610. Every
wait has a deadline (receives time out, servers stop), so no test can hang. Tests that count
what a server did turn multicast off: other ECHONET Lite software of this host may multicast
discovery at any time, and every server in the group would answer it.

Every address is in 127.36.0.0/16 (no other test uses it), so the tests can run beside other
ECHONET Lite software on this host; the HEMS side binds an address too rather than 0.0.0.0
(a second 0.0.0.0:3610 socket on the host would take some of its replies).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from openami.errors import LocalProtocolError, TransportError
from openami.protocols.echonet import (
    EOJ,
    ESV,
    MULTICAST_IPV4,
    NODE_PROFILE,
    EchonetClient,
    EchonetNode,
    Frame,
    LowVoltageSmartMeter,
    decode_frame,
    encode_frame,
)
from openami.transport.echonet_udp import (
    BATCH,
    ECHONET_PORT,
    EchonetSocket,
    EchonetUdpServer,
)
from tests.protocols.echonet.fakes import FakeMeterSource

METER = EOJ(0x02, 0x88, 0x01)
HEMS = "127.36.0.1"


def _node(serial: str = "F24G366505", source: Any = None) -> EchonetNode:
    meter = LowVoltageSmartMeter(source or FakeMeterSource(serial=serial))
    return EchonetNode([meter], manufacturer_code=0x16)


@contextmanager
def serving(server: EchonetUdpServer) -> Iterator[EchonetUdpServer]:
    with server:
        thread = server.start()
        yield server
    assert not thread.is_alive()


def _replies(hems: EchonetSocket, wait: float = 1.0) -> list[tuple[str, Frame]]:
    out = []
    while (got := hems.receive(wait)) is not None:
        out.append((got[1], decode_frame(got[0])))
        wait = 0.3
    return out


def _ask(hems: EchonetSocket, host: str, frame: Frame) -> Frame:
    hems.send(frame, host)
    for source, reply in _replies(hems):
        if source == host and reply.tid == frame.tid and reply.esv is not ESV.INF:
            return reply
    raise AssertionError(f"no reply from {host}")


def test_each_node_answers_on_its_own_address_with_the_requests_tid() -> None:
    server = EchonetUdpServer(multicast=False)  # counted: no discovery from elsewhere
    for k in (1, 2, 3):
        server.add(f"127.36.1.{k}", _node(f"SERIAL{k}"))
    client = EchonetClient(first_tid=0x1234)
    with serving(server), EchonetSocket(HEMS) as hems:
        for k in (3, 1, 2):
            request = client.get(METER, [0x8D])
            reply = _ask(hems, f"127.36.1.{k}", request)
            assert reply.tid == request.tid and reply.esv is ESV.GET_RES
            assert client.parse(reply) == {0x8D: f"SERIAL{k}"}
    assert server.counts.answered == 3


def test_replies_go_to_port_3610_of_the_sender_whatever_port_it_sent_from() -> None:
    server = EchonetUdpServer()
    server.add("127.36.2.1", _node())
    with (
        serving(server),
        EchonetSocket("127.36.2.9", listen_multicast=False) as hems,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other,
    ):
        other.bind(("127.36.2.9", 0))
        other.settimeout(0.5)
        request = EchonetClient(first_tid=77).get(METER, [0xE7])
        other.sendto(encode_frame(request), ("127.36.2.1", ECHONET_PORT))
        got = hems.receive(2.0)
        assert got is not None and got[1] == "127.36.2.1"
        assert decode_frame(got[0]).tid == 77
        with pytest.raises(TimeoutError):
            other.recvfrom(100)


def test_multicast_reaches_every_node_and_each_answers_from_its_address() -> None:
    server = EchonetUdpServer()
    addresses = [f"127.36.3.{k}" for k in (1, 2, 3)]
    for address in addresses:
        server.add(address, _node())
    assert server.multicast.startswith("multicast: member of 224.0.23.0")
    client = EchonetClient()
    with EchonetSocket("127.36.3.100") as hems:
        with serving(server):
            startup = _replies(hems)
            request = client.get(NODE_PROFILE, [0xD6])
            hems.send(request, MULTICAST_IPV4)
            replies = _replies(hems)
        # the start-up announcement of each node: INF of 0xD5, to the group (where other
        # ECHONET Lite software of this host may speak too)
        startup = [(s, f) for s, f in startup if s in addresses]
        announced = {s for s, f in startup if f.esv is ESV.INF and f.seoj == NODE_PROFILE}
        assert announced == set(addresses)
        assert all(client.parse(f) == {0xD5: (METER,)} for s, f in startup if s in announced)
        answers = {s: f for s, f in replies if f.tid == request.tid and f.esv is ESV.GET_RES}
        assert set(answers) >= set(addresses)
        assert client.parse(answers[addresses[1]]) == {0xD6: (METER,)}


def test_admit_decides_who_is_answered() -> None:
    allowed = {"127.36.4.10"}
    server = EchonetUdpServer(admit=lambda host: host in allowed, multicast=False)
    server.add("127.36.4.1", _node())
    server.add("127.36.4.2", _node(), admit=lambda host: True)  # this node answers everyone
    client = EchonetClient()
    with (
        serving(server),
        EchonetSocket("127.36.4.10", listen_multicast=False) as friend,
        EchonetSocket("127.36.4.20", listen_multicast=False) as stranger,
    ):
        assert _ask(friend, "127.36.4.1", client.get(METER, [0xE7])).esv is ESV.GET_RES
        stranger.send(client.get(METER, [0xE7]), "127.36.4.1")
        assert stranger.receive(0.5) is None
        assert _ask(stranger, "127.36.4.2", client.get(METER, [0xE7])).esv is ESV.GET_RES
    assert server.counts.refused == 1


def test_a_broken_hook_or_data_source_refuses_without_stopping_the_server() -> None:
    class Broken(FakeMeterSource):
        def instantaneous_power_w(self) -> int:
            raise LocalProtocolError("sensor gone")

    def hook(host: str) -> bool:
        raise RuntimeError("hook bug")

    server = EchonetUdpServer(multicast=False)
    server.add("127.36.5.1", _node(source=Broken()))
    server.add("127.36.5.2", _node(), admit=hook)
    client = EchonetClient()
    with serving(server), EchonetSocket("127.36.5.10", listen_multicast=False) as hems:
        hems.send(client.get(METER, [0xE7]), "127.36.5.1")
        hems.send(client.get(METER, [0xE7]), "127.36.5.2")
        hems.send(b"\x10\x81 not a frame", "127.36.5.1")
        assert hems.receive(0.5) is None
        assert _ask(hems, "127.36.5.1", client.get(METER, [0xE0])).esv is ESV.GET_RES
    assert (server.counts.failed, server.counts.refused) == (1, 1)


def test_an_address_held_by_another_node_is_in_use() -> None:
    with EchonetUdpServer() as first:
        first.add("127.36.6.1", _node())
        with pytest.raises(TransportError, match=r"^cannot bind 127.36.6.1:3610: address in use"):
            first.add("127.36.6.1", _node())
        with EchonetUdpServer() as second:
            with pytest.raises(TransportError, match="address in use"):
                second.add("127.36.6.1", _node())
            second.add("127.36.6.2", _node())  # the next address is free
    with EchonetUdpServer() as third:
        third.add("127.36.6.1", _node())  # closed servers let go of their addresses


def test_nodes_share_the_port_with_a_hems_listening_on_every_address() -> None:
    # HEMS software (pychonet, for one) holds 0.0.0.0:3610 with SO_REUSEADDR
    with EchonetSocket(listen_multicast=False), EchonetUdpServer() as server:
        server.add("127.36.7.1", _node())


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.36.300.1", "is not an IPv4 address"),
        ("meter-1", "is not an IPv4 address"),
        ("203.0.113.5", "203.0.113.5 is not an address of this host"),
    ],
)
def test_bad_addresses_are_one_line_errors(address: str, problem: str) -> None:
    with EchonetUdpServer() as server, pytest.raises(TransportError, match=problem) as caught:
        server.add(address, _node())
    assert "\n" not in str(caught.value)
    with pytest.raises(TransportError, match=problem):
        EchonetSocket(address)


def test_serve_returns_on_stop_or_after_its_duration_and_close_releases_everything() -> None:
    server = EchonetUdpServer()
    server.add("127.36.8.1", _node())
    thread = server.start()
    with pytest.raises(LocalProtocolError):
        server.start()
    began = time.monotonic()
    server.stop()
    thread.join(2.0)
    assert not thread.is_alive() and time.monotonic() - began < 1.0
    server.close()
    server.close()  # twice is harmless
    with EchonetUdpServer() as again:
        again.add("127.36.8.1", _node())
        began = time.monotonic()
        again.serve(duration=0.3)
        assert 0.25 <= time.monotonic() - began < 1.5


def test_a_burst_beyond_one_batch_is_answered_and_other_nodes_are_not_starved() -> None:
    server = EchonetUdpServer()
    server.add("127.36.9.1", _node())
    server.add("127.36.9.2", _node())
    client = EchonetClient()
    burst = 3 * BATCH
    with serving(server), EchonetSocket("127.36.9.10", listen_multicast=False) as hems:
        for _ in range(burst):
            hems.send(client.get(METER, [0xE0]), "127.36.9.1")
        late = client.get(METER, [0x8D])
        hems.send(late, "127.36.9.2")
        got = _replies(hems, 2.0)
    from_first = [f for s, f in got if s == "127.36.9.1"]
    assert len(from_first) == burst
    assert [f.tid for s, f in got if s == "127.36.9.2"] == [late.tid]


def test_announcements_are_polled_and_multicast() -> None:
    pending: list[Frame] = []
    lock = threading.Lock()
    node = _node()

    def announce() -> list[Frame]:
        with lock:
            out, pending[:] = list(pending), []
        return out

    server = EchonetUdpServer()
    server.add("127.36.10.1", node, announce=announce)
    with EchonetSocket("127.36.10.50") as hems, serving(server):
        _replies(hems, 0.5)  # the start-up announcement
        meter = node.objects[1]
        with lock:
            pending.append(node.announcement(meter, (0xE0,)))
        got = [(s, f) for s, f in _replies(hems, 2.0) if s == "127.36.10.1"]
    assert [(f.esv, f.properties[0].epc) for s, f in got] == [(ESV.INF, 0xE0)]
    assert server.counts.announced == 2


def test_a_server_without_multicast_says_so_and_serves_unicast() -> None:
    with EchonetUdpServer(multicast=False) as server:
        server.add("127.36.11.1", _node())
        assert server.multicast == "multicast off: multicast is turned off"
        assert server.addresses == ["127.36.11.1"]
        server.start()
        with EchonetSocket("127.36.11.10", listen_multicast=False) as hems:
            reply = _ask(hems, "127.36.11.1", EchonetClient().get(METER, [0xE7]))
            assert reply.esv is ESV.GET_RES
