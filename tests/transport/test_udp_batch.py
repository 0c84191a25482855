from __future__ import annotations

import contextlib
import ctypes
import errno
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from openami.errors import LocalProtocolError, TransportError
from openami.transport import udp_batch
from openami.transport.udp_batch import BatchUdpSocket, ReceivedBatch, int_to_ip, ip_to_int

LOCALHOST = 0x7F000001
# The wildcard is the point: one socket answers for every meter in 127.0.0.0/8. Nothing here
# leaves loopback: every datagram is sent to a 127.x.y.z address.
ANY = "0.0.0.0"  # noqa: S104
WAIT = 2.0  # seconds: the longest any test waits for loopback datagrams

needs_mmsg = pytest.mark.skipif(udp_batch._MMSG is None, reason="needs Linux sendmmsg/recvmmsg")


def drain(sock: BatchUdpSocket, count: int, timeout: float = WAIT) -> ReceivedBatch:
    """Receive until ``count`` datagrams arrived or ``timeout`` passed; one merged batch."""
    batches: list[ReceivedBatch] = []
    got = 0
    deadline = time.monotonic() + timeout
    while got < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        batch = sock.recv_batch(timeout=left)
        assert len(batch) <= sock.max_batch
        batches.append(batch)
        got += len(batch)
    return ReceivedBatch(
        [p for b in batches for p in b.payloads],
        np.concatenate([b.source_ip for b in batches] or [np.zeros(0, np.uint32)]),
        np.concatenate([b.source_port for b in batches] or [np.zeros(0, np.uint16)]),
        np.concatenate([b.dest_ip for b in batches] or [np.zeros(0, np.uint32)]),
    )


@pytest.fixture(params=["mmsg", "fallback"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on the sendmmsg/recvmmsg path and on the one-at-a-time fallback."""
    if request.param == "mmsg" and udp_batch._MMSG is None:
        pytest.skip("needs Linux sendmmsg/recvmmsg")
    if request.param == "fallback":
        monkeypatch.setattr(udp_batch, "_MMSG", None)
    return str(request.param)


def test_a_batch_makes_the_round_trip_in_order(path: str) -> None:
    payloads = [bytes([i]) * (i * 7) for i in range(40)]
    with BatchUdpSocket(("127.0.0.1", 0)) as rx, BatchUdpSocket(("127.0.0.1", 0)) as tx:
        assert tx.send_batch(payloads, LOCALHOST, rx.address[1]) == len(payloads)
        got = drain(rx, len(payloads))
    assert got.payloads == payloads
    assert (got.source_ip == LOCALHOST).all()
    assert (got.source_port == tx.address[1]).all()
    assert got.source_ip.dtype == np.uint32
    assert got.source_port.dtype == np.uint16
    assert (got.dest_ip == 0).all()


def test_each_datagram_leaves_from_its_own_source_address_seen_by_a_plain_socket(
    path: str,
) -> None:
    sources = 0x7F010000 + np.arange(1, 31, dtype=np.uint32)  # 127.1.0.1 .. 127.1.0.30
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain,
        BatchUdpSocket((ANY, 0)) as fleet,
    ):
        plain.bind(("127.0.0.1", 0))
        plain.settimeout(WAIT)
        payloads = [f"meter {int_to_ip(int(s))}".encode() for s in sources]
        assert fleet.send_batch(payloads, LOCALHOST, plain.getsockname()[1], sources) == 30
        seen = [plain.recvfrom(100) for _ in range(30)]
    assert seen == [
        (p, (int_to_ip(int(s)), fleet.address[1])) for p, s in zip(payloads, sources, strict=True)
    ]


def test_each_datagram_leaves_from_its_own_source_address_seen_by_recv_batch(path: str) -> None:
    sources = 0x7F020000 + np.arange(100, dtype=np.uint32) * 257
    with BatchUdpSocket(("127.0.0.1", 0)) as rx, BatchUdpSocket((ANY, 0)) as fleet:
        payloads = [int(s).to_bytes(4, "big") for s in sources]
        assert fleet.send_batch(payloads, LOCALHOST, rx.address[1], sources) == 100
        got = drain(rx, 100)
    assert got.payloads == payloads
    np.testing.assert_array_equal(got.source_ip, sources)
    assert (got.source_port == fleet.address[1]).all()


def test_pktinfo_tells_which_local_address_a_datagram_was_sent_to(path: str) -> None:
    meters = np.array([ip_to_int("127.5.6.7"), ip_to_int("127.0.0.1"), 0x7FFFFFFE], np.uint32)
    meters = np.repeat(meters, 5)
    with (
        BatchUdpSocket((ANY, 0), pktinfo=True) as fleet,
        BatchUdpSocket((ANY, 0)) as blind,
        BatchUdpSocket(("127.0.0.1", 0)) as hes,
    ):
        payloads = [b"get %d" % i for i in range(len(meters))]
        assert hes.send_batch(payloads, meters, fleet.address[1]) == len(meters)
        assert hes.send_batch(payloads, meters, blind.address[1]) == len(meters)
        got = drain(fleet, len(meters))
        unknown = drain(blind, len(meters))
    assert got.payloads == payloads
    np.testing.assert_array_equal(got.dest_ip, meters)
    assert got.dest_ip.dtype == np.uint32
    assert unknown.payloads == payloads
    assert (unknown.dest_ip == 0).all()


def test_a_simulated_fleet_answers_from_the_address_each_request_was_sent_to(path: str) -> None:
    """The fleet's loop: requests in with pktinfo, answers out with source = request's dest."""
    meters = 0x7F000000 + np.arange(2, 202, dtype=np.uint32)
    with (
        BatchUdpSocket((ANY, 0), pktinfo=True) as fleet,
        BatchUdpSocket(("127.0.0.1", 0)) as hes,
    ):
        requests = [b"read %08x" % m for m in meters.tolist()]
        assert hes.send_batch(requests, meters, fleet.address[1]) == len(meters)
        asked = drain(fleet, len(meters))
        answers = [b"value for " + p[5:] for p in asked.payloads]
        sent = fleet.send_batch(answers, asked.source_ip, asked.source_port, asked.dest_ip)
        assert sent == len(meters)
        got = drain(hes, len(meters))
    assert sorted(got.source_ip.tolist()) == meters.tolist()
    assert (got.source_port == fleet.address[1]).all()
    for payload, source in zip(got.payloads, got.source_ip.tolist(), strict=True):
        assert payload == b"value for %08x" % source


def test_batches_longer_than_max_batch_go_out_and_come_in_in_chunks(path: str) -> None:
    payloads = [b"%d" % i for i in range(50)]
    with (
        BatchUdpSocket(("127.0.0.1", 0), max_batch=8) as rx,
        BatchUdpSocket(("127.0.0.1", 0), max_batch=8) as tx,
    ):
        assert tx.send_batch(payloads, LOCALHOST, np.full(50, rx.address[1], np.uint16)) == 50
        time.sleep(0.05)  # all 50 queued: every recv_batch is then full but for the last
        sizes = [len(rx.recv_batch(timeout=WAIT)) for _ in range(7)]
        rest = rx.recv_batch()
    assert sizes == [8, 8, 8, 8, 8, 8, 2]
    assert len(rest) == 0


def test_an_empty_batch_and_an_empty_queue(path: str) -> None:
    with BatchUdpSocket(("127.0.0.1", 0)) as sock:
        assert sock.send_batch([], LOCALHOST, sock.address[1]) == 0
        assert sock.send_batch([], np.zeros(0, np.uint32), 9, np.zeros(0, np.uint32)) == 0
        empty = sock.recv_batch()
        started = time.monotonic()
        waited = sock.recv_batch(timeout=0.05)
        elapsed = time.monotonic() - started
    assert len(empty) == len(waited) == 0
    assert empty.source_ip.dtype == np.uint32 and empty.source_port.dtype == np.uint16
    assert 0.04 <= elapsed < 1.0


def test_zero_length_datagrams_arrive(path: str) -> None:
    with BatchUdpSocket(("127.0.0.1", 0)) as sock:
        assert sock.send_batch([b"", b"", b"x", b""], LOCALHOST, sock.address[1]) == 4
        assert drain(sock, 4).payloads == [b"", b"", b"x", b""]


def test_truncated_datagrams_are_dropped_and_counted(path: str) -> None:
    payloads = [b"a" * 10, b"b" * 64, b"c" * 65, b"d" * 1000, b"e"]
    with (
        BatchUdpSocket(("127.0.0.1", 0), max_datagram=64) as rx,
        BatchUdpSocket(("127.0.0.1", 0)) as tx,
    ):
        assert tx.send_batch(payloads, LOCALHOST, rx.address[1]) == 5
        got = drain(rx, 3)
        assert rx.recv_batch(timeout=0.05).payloads == []
        assert rx.truncated == 2
    assert got.payloads == [b"a" * 10, b"b" * 64, b"e"]
    assert (got.source_port == tx.address[1]).all()


def test_reuse_port_sockets_share_the_datagrams_by_source_address() -> None:
    sources = 0x7F030000 + np.arange(200, dtype=np.uint32)
    with BatchUdpSocket(("127.0.0.1", 0), reuse_port=True) as one:
        port = one.address[1]
        with (
            BatchUdpSocket(("127.0.0.1", port), reuse_port=True) as two,
            BatchUdpSocket((ANY, 0)) as fleet,
        ):
            payloads = [b"push"] * len(sources)
            assert fleet.send_batch(payloads, LOCALHOST, port, sources) == len(sources)
            time.sleep(0.05)
            got_one = drain(one, len(sources), timeout=0.2)
            got_two = drain(two, len(sources), timeout=0.2)
    assert len(got_one) > 0 and len(got_two) > 0
    assert len(got_one) + len(got_two) == len(sources)
    assert not set(got_one.source_ip.tolist()) & set(got_two.source_ip.tolist())


def test_a_specific_address_and_the_wildcard_share_one_port() -> None:
    """How the fleet (0.0.0.0:4059) and the head-end (127.0.0.1:4059) live on one host."""
    with BatchUdpSocket((ANY, 0), reuse_addr=True, pktinfo=True) as fleet:
        port = fleet.address[1]
        with (
            BatchUdpSocket(("127.0.0.1", port), reuse_addr=True, reuse_port=True) as hes,
            BatchUdpSocket(("127.0.0.1", 0)) as other,
        ):
            assert fleet.address == (ANY, port) and hes.address == ("127.0.0.1", port)
            other.send_batch([b"to the head-end"], LOCALHOST, port)
            other.send_batch([b"to a meter"], ip_to_int("127.5.6.7"), port)
            at_hes = drain(hes, 1)
            at_fleet = drain(fleet, 1)
            assert hes.recv_batch(timeout=0.05).payloads == []
            assert fleet.recv_batch(timeout=0.05).payloads == []
    assert at_hes.payloads == [b"to the head-end"]
    assert at_fleet.payloads == [b"to a meter"]
    assert at_fleet.dest_ip.tolist() == [ip_to_int("127.5.6.7")]


@needs_mmsg
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    explicit=st.lists(st.binary(max_size=1400), max_size=20),
    count=st.integers(0, 3000),
    longest=st.integers(0, 1400),
    seed=st.integers(0, 2**32 - 1),
)
@example(explicit=[b"", bytes(1400)], count=3000, longest=1400, seed=1)
def test_any_payloads_arrive_intact(
    explicit: list[bytes], count: int, longest: int, seed: int
) -> None:
    """Up to 3000 payloads of 0..1400 octets arrive as sent (as a multiset).

    Hypothesis picks a few payloads itself and how many more to draw, how long and from which
    seed: a drawn list of 3000 binaries would overflow its entropy buffer. Slices that fit the
    receive buffer are drained before the next goes out, so nothing is dropped.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, longest + 1, count)
    blob = rng.bytes(int(lengths.sum()))
    ends = np.cumsum(lengths).tolist()
    drawn = [blob[e - n : e] for e, n in zip(ends, lengths.tolist(), strict=True)]
    payloads = (explicit + drawn)[:3000]
    received: list[bytes] = []
    with (
        BatchUdpSocket(("127.0.0.1", 0), rcvbuf=4 << 20) as rx,
        BatchUdpSocket((ANY, 0)) as tx,
    ):
        # A 1400-octet datagram costs the receive buffer about 2.3 KiB on loopback; the kernel
        # may have granted less than asked (net.core.rmem_max), so the slice follows the grant.
        step = max(1, rx.rcvbuf_effective // 4096)
        for start in range(0, len(payloads), step):
            part = payloads[start : start + step]
            sources = rng.integers(LOCALHOST, 0x7FFFFFFE, len(part)).astype(np.uint32)
            assert tx.send_batch(part, LOCALHOST, rx.address[1], sources) == len(part)
            got = drain(rx, len(part))
            np.testing.assert_array_equal(np.sort(got.source_ip), np.sort(sources))
            received += got.payloads
        assert rx.recv_batch().payloads == []
        assert rx.truncated == 0
    assert Counter(received) == Counter(payloads)


# -- errors -------------------------------------------------------------------------------


def test_binding_a_taken_port_is_a_transport_error() -> None:
    with (
        BatchUdpSocket(("127.0.0.1", 0)) as first,
        pytest.raises(TransportError, match=r"bind on udp 127\.0\.0\.1:\d+ failed: EADDRINUSE"),
    ):
        BatchUdpSocket(first.address)


def test_a_source_address_that_is_not_local_is_a_transport_error(path: str) -> None:
    """The kernel refuses it (EINVAL, or ENETUNREACH where there is no route off the host)."""
    with (
        BatchUdpSocket((ANY, 0)) as sock,
        pytest.raises(TransportError, match=r"send(m)?msg on udp .* failed: E[A-Z]+ \(") as caught,
    ):
        sock.send_batch([b"x"], LOCALHOST, 9, np.array([ip_to_int("192.0.2.1")], np.uint32))
    assert "\n" not in str(caught.value)


def test_columns_must_match_the_payloads() -> None:
    with BatchUdpSocket(("127.0.0.1", 0)) as sock:
        with pytest.raises(LocalProtocolError, match="dest_ip has shape"):
            sock.send_batch([b"a", b"b"], np.array([LOCALHOST], np.uint32), 9)
        with pytest.raises(LocalProtocolError, match="source_ip has shape"):
            sock.send_batch([b"a"], LOCALHOST, 9, np.zeros(2, np.uint32))


@pytest.mark.parametrize(("max_batch", "max_datagram"), [(0, 2048), (1025, 2048), (8, 0)])
def test_sizes_out_of_range_are_refused(max_batch: int, max_datagram: int) -> None:
    with pytest.raises(LocalProtocolError, match="must be in"):
        BatchUdpSocket(("127.0.0.1", 0), max_batch=max_batch, max_datagram=max_datagram)


def test_a_closed_socket_refuses_work() -> None:
    sock = BatchUdpSocket(("127.0.0.1", 0))
    assert not sock.closed
    sock.close()
    sock.close()
    assert sock.closed
    for call in (sock.fileno, sock.recv_batch, lambda: sock.send_batch([b"x"], LOCALHOST, 9)):
        with pytest.raises(TransportError, match="is closed"):
            call()


def fake_sendmmsg(results: list[tuple[int, int]]) -> Callable[..., int]:
    """A stand-in for libc sendmmsg returning ``(result, errno)`` pairs in turn."""

    def call(fd: int, headers: int, vlen: int, flags: int) -> int:
        result, code = results.pop(0)
        ctypes.set_errno(code)
        return min(result, vlen)

    return call


@needs_mmsg
@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([(3, 0), (-1, errno.EAGAIN)], 3),
        ([(-1, errno.ENOBUFS)], 0),
        ([(-1, errno.EINTR), (2, 0), (-1, errno.EINTR), (8, 0)], 10),
    ],
)
def test_a_full_send_buffer_returns_the_count_so_far(
    results: list[tuple[int, int]], expected: int
) -> None:
    with BatchUdpSocket(("127.0.0.1", 0), blocking=False) as sock:
        assert udp_batch._MMSG is not None
        sock._mmsg = (fake_sendmmsg(results), udp_batch._MMSG[1])
        assert sock.send_batch([b"x"] * 10, LOCALHOST, 9) == expected


@needs_mmsg
def test_another_send_error_is_one_line_naming_the_errno() -> None:
    with BatchUdpSocket(("127.0.0.1", 0)) as sock:
        assert udp_batch._MMSG is not None
        sock._mmsg = (fake_sendmmsg([(-1, errno.EPERM)]), udp_batch._MMSG[1])
        with pytest.raises(
            TransportError, match=r"^sendmmsg on udp 127\.0\.0\.1:\d+ failed: EPERM"
        ):
            sock.send_batch([b"x"], LOCALHOST, 9)


def test_ip_conversions() -> None:
    assert ip_to_int("127.1.2.3") == 0x7F010203
    assert int_to_ip(0x7F010203) == "127.1.2.3"
    assert int_to_ip(ip_to_int("255.255.255.255")) == "255.255.255.255"
    for bad in ("127.1", "256.0.0.1", "::1", ""):
        with pytest.raises(LocalProtocolError):
            ip_to_int(bad)
    with pytest.raises(LocalProtocolError):
        int_to_ip(1 << 32)


@needs_mmsg
def test_the_header_layouts_match_the_c_structs() -> None:
    """The NumPy dtypes against ctypes renderings of the Linux structs (x86_64/aarch64)."""

    class Iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    class Msghdr(ctypes.Structure):
        _fields_ = [
            ("name", ctypes.c_void_p),
            ("namelen", ctypes.c_uint32),
            ("iov", ctypes.c_void_p),
            ("iovlen", ctypes.c_size_t),
            ("control", ctypes.c_void_p),
            ("controllen", ctypes.c_size_t),
            ("flags", ctypes.c_int),
        ]

    class Mmsghdr(ctypes.Structure):
        _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]

    class Cmsghdr(ctypes.Structure):
        _fields_ = [("len", ctypes.c_size_t), ("level", ctypes.c_int), ("type", ctypes.c_int)]

    class InPktinfo(ctypes.Structure):
        _fields_ = [
            ("ifindex", ctypes.c_int),
            ("spec_dst", ctypes.c_uint32),
            ("addr", ctypes.c_uint32),
        ]

    assert ctypes.sizeof(Iovec) == udp_batch._IOVEC.itemsize == 16
    assert ctypes.sizeof(Mmsghdr) == udp_batch._MMSGHDR.itemsize == 64
    fields: dict[str, Any] = dict(udp_batch._MMSGHDR.fields or {})
    for name, *_ in Msghdr._fields_:
        assert fields[name][1] == getattr(Msghdr, name).offset, name
    assert fields["len"][1] == Mmsghdr.len.offset == 56
    assert ctypes.sizeof(Cmsghdr) == 16 and ctypes.sizeof(InPktinfo) == 12
    assert socket.CMSG_LEN(12) == udp_batch._PKTINFO_LEN
    assert socket.CMSG_SPACE(12) == udp_batch._PKTINFO_CMSG.itemsize
    assert udp_batch._SOCKADDR_IN.itemsize == 16


# -- timing ---------------------------------------------------------------------------------


@needs_mmsg
@pytest.mark.slow
def test_print_datagrams_per_second() -> None:
    """Prints send/recv rates over 200,000 datagrams against a plain sendto/recvfrom loop."""
    total = 200_000
    with BatchUdpSocket(("127.0.0.1", 0), rcvbuf=8 << 20) as probe:
        # Rounds small enough for the receive buffer the kernel grants (net.core.rmem_max).
        round_size = min(4096, probe.rcvbuf_effective // 2048)
    payload = bytes(range(120))  # about one pushed interval read
    sources = 0x7F100000 + np.arange(round_size, dtype=np.uint32)

    def batched(with_sources: bool) -> tuple[float, float, int]:
        send_s = recv_s = 0.0
        got = 0
        with (
            BatchUdpSocket(("127.0.0.1", 0), rcvbuf=8 << 20) as rx,
            BatchUdpSocket((ANY, 0)) as tx,
        ):
            for _ in range(total // round_size):
                t0 = time.perf_counter()
                tx.send_batch(
                    [payload] * round_size,
                    LOCALHOST,
                    rx.address[1],
                    sources if with_sources else None,
                )
                t1 = time.perf_counter()
                want = got + round_size
                while got < want:
                    batch = rx.recv_batch(timeout=0.5)
                    if not batch:
                        break
                    got += len(batch)
                recv_s += time.perf_counter() - t1
                send_s += t1 - t0
        sent = total // round_size * round_size
        return sent / send_s, got / recv_s, sent - got

    def plain(with_sources: bool) -> tuple[float, float]:
        """One ``sendto`` (or ``sendmsg`` with IP_PKTINFO) and one ``recvfrom`` per datagram."""
        send_s = recv_s = 0.0
        infos = [
            [
                (
                    socket.IPPROTO_IP,
                    udp_batch.IP_PKTINFO,
                    bytes(4) + int(s).to_bytes(4, "big") + bytes(4),
                )
            ]
            for s in sources
        ]
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
        ):
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(0.5)
            where = rx.getsockname()
            for _ in range(total // round_size):
                t0 = time.perf_counter()
                if with_sources:
                    for info in infos:
                        tx.sendmsg([payload], info, 0, where)
                else:
                    for _ in range(round_size):
                        tx.sendto(payload, where)
                t1 = time.perf_counter()
                with contextlib.suppress(TimeoutError):
                    for _ in range(round_size):
                        rx.recvfrom(2048)
                recv_s += time.perf_counter() - t1
                send_s += t1 - t0
        n = total // round_size * round_size
        return n / send_s, n / recv_s

    base_send, base_recv = plain(with_sources=False)
    base_sendmsg, _ = plain(with_sources=True)
    send_src, recv_rate, lost = batched(with_sources=True)
    send_plain, _, lost_plain = batched(with_sources=False)
    rows = [
        ("plain sendto", base_send, 0.0),
        ("plain sendmsg +pktinfo", base_sendmsg, 0.0),
        ("plain recvfrom", base_recv, 0.0),
        ("send_batch", send_plain, base_send),
        ("send_batch +pktinfo", send_src, base_sendmsg),
        ("recv_batch", recv_rate, base_recv),
    ]
    print(f"\n{round_size} datagrams of {len(payload)} octets per round, {total:,} in all")
    for name, rate, baseline in rows:
        ratio = f"  x{rate / baseline:.2f} of the plain loop" if baseline else ""
        print(f"{name:24} {rate:12,.0f} datagrams/s{ratio}")
    print(f"lost in the receive buffer: {lost + lost_plain}")
