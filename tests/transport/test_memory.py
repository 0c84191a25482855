from __future__ import annotations

import math

import pytest

from openami.errors import LocalProtocolError, TransportError
from openami.transport.memory import Address, Datagram, MemoryNetwork

HES: Address = ("10.255.255.1", 4059)
METER_A: Address = ("10.0.0.1", 4059)
METER_B: Address = ("10.0.0.2", 4059)
NOBODY: Address = ("10.9.9.9", 4059)


def test_a_datagram_reaches_the_endpoint_that_owns_its_destination() -> None:
    net = MemoryNetwork()
    hes = net.bind([HES])
    meters = net.bind([METER_A, METER_B])
    other = net.bind([("10.0.0.3", 4059)])

    meters.sendto(b"push-a", METER_A, HES)
    meters.sendto(b"push-b", METER_B, HES)
    hes.sendto(b"get", HES, METER_B)

    assert hes.pending() == 2
    assert hes.receive_all() == [
        Datagram(b"push-a", METER_A, HES),
        Datagram(b"push-b", METER_B, HES),
    ]
    assert hes.pending() == 0
    assert hes.receive_all() == []
    assert meters.receive_all() == [Datagram(b"get", HES, METER_B)]
    assert other.pending() == 0
    assert (net.stats.sent, net.stats.delivered, net.stats.lost, net.stats.undeliverable) == (
        3,
        3,
        0,
        0,
    )


def test_an_endpoint_can_send_to_an_address_it_owns_itself() -> None:
    net = MemoryNetwork()
    meters = net.bind([METER_A, METER_B])
    meters.sendto(b"x", METER_A, METER_B)
    assert meters.receive_all() == [Datagram(b"x", METER_A, METER_B)]


def _delivered_payloads(loss: float, seed: int, n: int) -> tuple[list[bytes], MemoryNetwork]:
    net = MemoryNetwork(loss=loss, seed=seed)
    sender = net.bind([METER_A])
    receiver = net.bind([HES])
    for i in range(n):
        sender.sendto(i.to_bytes(4, "big"), METER_A, HES)
    return [d.payload for d in receiver.receive_all()], net


def test_loss_is_deterministic_for_a_seed() -> None:
    first, _ = _delivered_payloads(0.3, seed=42, n=2_000)
    again, _ = _delivered_payloads(0.3, seed=42, n=2_000)
    other, _ = _delivered_payloads(0.3, seed=43, n=2_000)
    assert first == again
    assert first != other
    assert 0 < len(first) < 2_000


@pytest.mark.parametrize("loss", [0.05, 0.2, 0.5])
def test_loss_is_close_to_the_configured_rate(loss: float) -> None:
    n = 10_000
    payloads, net = _delivered_payloads(loss, seed=7, n=n)
    assert net.stats.sent == n
    assert net.stats.lost + net.stats.delivered == n
    assert net.stats.delivered == len(payloads)
    assert net.stats.undeliverable == 0
    # Five standard deviations of a binomial proportion: fails only if the rate is wrong.
    tolerance = 5 * math.sqrt(loss * (1 - loss) / n)
    assert abs(net.stats.lost / n - loss) < tolerance
    # What arrives arrives in order and unaltered.
    numbers = [int.from_bytes(p, "big") for p in payloads]
    assert numbers == sorted(set(numbers))


def test_no_loss_delivers_everything() -> None:
    payloads, net = _delivered_payloads(0.0, seed=1, n=1_000)
    assert len(payloads) == 1_000
    assert net.stats.lost == 0


def test_a_datagram_to_an_unknown_destination_is_counted_undeliverable() -> None:
    net = MemoryNetwork()
    hes = net.bind([HES])
    hes.sendto(b"hello?", HES, NOBODY)
    assert net.stats.sent == 1
    assert net.stats.undeliverable == 1
    assert net.stats.delivered == 0
    assert hes.pending() == 0


def test_a_closed_endpoints_addresses_become_undeliverable() -> None:
    net = MemoryNetwork()
    hes = net.bind([HES])
    meter = net.bind([METER_A])
    meter.close()
    hes.sendto(b"get", HES, METER_A)
    assert net.stats.undeliverable == 1


def test_binding_an_address_twice_is_refused() -> None:
    net = MemoryNetwork()
    net.bind([METER_A, METER_B])
    with pytest.raises(TransportError, match="already bound"):
        net.bind([METER_B, ("10.0.0.3", 4059)])
    # The refused bind took nothing: the third address is still free.
    net.bind([("10.0.0.3", 4059)])


def test_an_address_is_free_again_after_close() -> None:
    net = MemoryNetwork()
    first = net.bind([METER_A])
    first.close()
    second = net.bind([METER_A])
    hes = net.bind([HES])
    hes.sendto(b"x", HES, METER_A)
    assert second.receive_all() == [Datagram(b"x", HES, METER_A)]


def test_sending_from_an_address_not_owned_is_refused() -> None:
    net = MemoryNetwork()
    hes = net.bind([HES])
    net.bind([METER_A])
    with pytest.raises(LocalProtocolError):
        hes.sendto(b"spoofed", METER_A, HES)
    assert net.stats.sent == 0


@pytest.mark.parametrize("loss", [-0.01, 1.0, 1.5, math.nan])
def test_loss_outside_zero_to_one_is_refused(loss: float) -> None:
    with pytest.raises(LocalProtocolError):
        MemoryNetwork(loss=loss)


@pytest.mark.parametrize("loss", [0.0, 0.999])
def test_loss_at_the_edges_of_the_range_is_accepted(loss: float) -> None:
    assert MemoryNetwork(loss=loss).loss == loss


def test_a_closed_endpoint_refuses_to_send() -> None:
    net = MemoryNetwork()
    hes = net.bind([HES])
    net.bind([METER_A])
    hes.close()
    assert hes.closed
    with pytest.raises(TransportError, match="closed"):
        hes.sendto(b"x", HES, METER_A)
    assert net.stats.sent == 0


def test_closing_twice_does_not_unbind_a_new_owner() -> None:
    net = MemoryNetwork()
    old = net.bind([METER_A])
    old.close()
    new = net.bind([METER_A])
    old.close()
    hes = net.bind([HES])
    hes.sendto(b"x", HES, METER_A)
    assert new.receive_all() == [Datagram(b"x", HES, METER_A)]
